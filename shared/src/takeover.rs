//! Which hand-made changes `sync` undoes, and how: the field managers it takes over
//! (`takeOverManagers` in `gitops.yaml`), and the plan for each hand-made field of an object.
//!
//! Server-side apply removes a field only when the applier owned it and stops applying it, and it
//! refuses (409) to change a field another manager owns. So a field a person added with
//! `kubectl patch` survives every apply, and a value set with `kubectl set image` needs `force`.
//! Like Flux's `ssa` package (`PatchReplaceFieldsManagers`), `sync` first hands the fields of
//! people's tools to its own apply entry in `metadata.managedFields`; the next apply then puts
//! Git's values back and removes what Git does not declare. Controllers and anything not on the
//! list keep their fields: an HPA's `spec.replicas`, an injected sidecar, defaulted fields.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::compare::FieldDiff;
use crate::drift::{declared_drift, hand_drift_by, HAND_MANAGERS};
use crate::provenance::FIELD_MANAGER;

/// The managers `sync` takes over when an app names none: kubectl's, as a person uses them, and
/// `before-first-apply` (the API server's name for what a client-side `kubectl apply` owned
/// before the first server-side apply). `kubectl` alone is `kubectl apply --server-side` and
/// `kubectl scale` on the `scale` subresource.
pub const DEFAULT_TAKE_OVER: &[&str] = &[
    "kubectl",
    "kubectl-annotate",
    "kubectl-client-side-apply",
    "kubectl-create",
    "kubectl-edit",
    "kubectl-label",
    "kubectl-patch",
    "kubectl-replace",
    "kubectl-rollout",
    "kubectl-scale",
    "kubectl-set",
    "before-first-apply",
];

/// The entry of `takeOverManagers` that stands for [`DEFAULT_TAKE_OVER`].
pub const DEFAULT_ENTRY: &str = "default";

/// The field managers whose fields `sync` takes over: exact names, or prefixes written `name*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct TakeOverManagers {
    patterns: Vec<String>,
}

impl Default for TakeOverManagers {
    fn default() -> TakeOverManagers {
        TakeOverManagers {
            patterns: DEFAULT_TAKE_OVER.iter().map(|m| (*m).to_owned()).collect(),
        }
    }
}

impl TakeOverManagers {
    /// The list as `gitops.yaml` writes it: it replaces the default, and the entry `default`
    /// stands for [`DEFAULT_TAKE_OVER`] (`[default, deploy-script]` extends it, `[]` takes over
    /// nothing). The error says which entry is wrong.
    pub fn parse(entries: &[String]) -> Result<TakeOverManagers, String> {
        let mut patterns = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            if entry == DEFAULT_ENTRY {
                patterns.extend(DEFAULT_TAKE_OVER.iter().map(|m| (*m).to_owned()));
                continue;
            }
            let name = entry.strip_suffix('*').unwrap_or(entry);
            if name.is_empty() || name.contains('*') {
                return Err(format!(
                    "[{index}]: {entry:?} is not a field manager name (a name, or a prefix ending in '*')"
                ));
            }
            if entry == FIELD_MANAGER {
                return Err(format!(
                    "[{index}]: {entry:?} names {FIELD_MANAGER} itself, whose fields are Git's already"
                ));
            }
            patterns.push(entry.clone());
        }
        patterns.dedup();
        Ok(TakeOverManagers { patterns })
    }

    /// The names and prefixes, `default` expanded.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Whether `sync` takes over the fields of `manager` (never its own).
    pub fn covers(&self, manager: &str) -> bool {
        manager != FIELD_MANAGER
            && self.patterns.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => manager.starts_with(prefix),
                None => p == manager,
            })
    }
}

/// What `sync` does about a hand-made field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Remedy {
    /// Its manager is taken over: a plain `sync` puts Git's value back, or removes the field
    /// when Git does not declare it.
    Revert,
    /// Git declares it and a manager that is not taken over owns it: applying conflicts, and
    /// only `sync --force-conflicts` puts Git's value back.
    ForceConflicts,
    /// Git does not declare it and its manager is not taken over: `sync` leaves it.
    Kept,
}

/// A field of the cluster's object that someone other than `sync` wrote, and what `sync` does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HandField {
    /// The field for people: `data.extra`, `spec.template.spec.containers[name=web].image`.
    pub path: String,
    /// The manager that owns it (`kubectl-patch`).
    pub manager: String,
    /// Whether Git declares the field (with another value).
    pub declared: bool,
    /// The cluster's value, when it can be located. Never serialized: a Secret's value must not
    /// reach `status -o json`.
    #[serde(skip_serializing)]
    pub live: Option<Value>,
    /// What `sync` does about it.
    pub remedy: Remedy,
}

impl Remedy {
    /// A few words for a table cell.
    pub fn short(self) -> &'static str {
        match self {
            Remedy::Revert => "sync undoes it",
            Remedy::ForceConflicts => "needs sync --force-conflicts",
            Remedy::Kept => "sync leaves it",
        }
    }
}

impl HandField {
    /// One clause for people: what `sync` does about the field.
    pub fn plan(&self) -> String {
        let manager = &self.manager;
        match (self.remedy, self.declared) {
            (Remedy::Revert, true) => {
                format!("sync takes it over from {manager} and puts Git's value back")
            }
            (Remedy::Revert, false) => format!("sync takes it over from {manager} and removes it"),
            (Remedy::ForceConflicts, _) => format!(
                "{manager} is not in takeOverManagers: sync --force-conflicts puts Git's value back"
            ),
            (Remedy::Kept, _) => format!(
                "{manager} is not in takeOverManagers: sync leaves it (add {manager} to takeOverManagers in gitops.yaml to undo it)"
            ),
        }
    }
}

/// Every hand-made field of `live` against Git's `desired`, with what `sync` does about it:
/// fields Git does not declare owned by a person's tool ([`HAND_MANAGERS`] or a manager taken
/// over), and declared fields whose cluster value another manager owns. A declared field that
/// differs while only `sync` owns it is no one's hand-made change (a plain apply fixes it).
pub fn hand_fields(desired: &Value, live: &Value, take_over: &TakeOverManagers) -> Vec<HandField> {
    let by_hand = |manager: &str| HAND_MANAGERS.contains(&manager) || take_over.covers(manager);
    let mut fields: Vec<HandField> = hand_drift_by(desired, live, &by_hand)
        .into_iter()
        .map(|d| HandField {
            remedy: if take_over.covers(&d.manager) {
                Remedy::Revert
            } else {
                Remedy::Kept
            },
            path: d.path,
            manager: d.manager,
            declared: false,
            live: d.live,
        })
        .collect();
    let declared = declared_drift(desired, live);
    if declared.is_empty() {
        return fields;
    }
    let owned = owned_paths(live);
    for diff in declared.iter().filter(|d| d.duplicates.is_none()) {
        if let Some(field) = declared_owner(diff, &owned, take_over) {
            fields.push(field);
        }
    }
    fields
}

/// The hand-made field a declared difference is, when another manager owns its cluster value:
/// the first owner not taken over (a conflict), else the first taken over. A field the cluster
/// lacks (or holds as `null`) has no value anyone could own: the apply just adds it.
fn declared_owner(
    diff: &FieldDiff,
    owned: &[(String, Vec<String>)],
    take_over: &TakeOverManagers,
) -> Option<HandField> {
    if diff.live.as_ref().is_none_or(Value::is_null) {
        return None;
    }
    let owners: Vec<&str> = owned
        .iter()
        .filter(|(_, paths)| paths.iter().any(|p| related(p, &diff.path)))
        .map(|(manager, _)| manager.as_str())
        .filter(|m| *m != FIELD_MANAGER)
        .collect();
    let (manager, remedy) = match owners.iter().find(|m| !take_over.covers(m)) {
        Some(other) => (*other, Remedy::ForceConflicts),
        None => (*owners.first()?, Remedy::Revert),
    };
    Some(HandField {
        path: diff.path.clone(),
        manager: manager.to_owned(),
        declared: true,
        live: diff.live.clone(),
        remedy,
    })
}

/// True when one path is the other or lies under it.
fn related(a: &str, b: &str) -> bool {
    let under = |long: &str, short: &str| {
        long.strip_prefix(short)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
    };
    under(a, b) || under(b, a)
}

/// Per `managedFields` entry (status writes left out), its manager and the paths of the leaves
/// it owns, written like [`FieldDiff::path`].
fn owned_paths(live: &Value) -> Vec<(String, Vec<String>)> {
    let entries = live
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array);
    let mut out = Vec::new();
    for entry in entries.into_iter().flatten() {
        if entry.get("subresource").and_then(Value::as_str) == Some("status") {
            continue;
        }
        let manager = entry.get("manager").and_then(Value::as_str).unwrap_or("");
        let mut paths = Vec::new();
        if let Some(set) = entry.get("fieldsV1").and_then(Value::as_object) {
            leaves(set, &mut String::new(), &mut paths);
        }
        out.push((manager.to_owned(), paths));
    }
    out
}

fn leaves(set: &Map<String, Value>, path: &mut String, out: &mut Vec<String>) {
    if set.keys().all(|k| k == ".") {
        if !path.is_empty() {
            out.push(path.clone());
        }
        return;
    }
    for (key, child) in set {
        let Some(child) = child.as_object() else {
            continue;
        };
        let saved = path.len();
        if let Some(field) = key.strip_prefix("f:") {
            if path.is_empty() && field == "status" {
                continue;
            }
            let plain = !field.is_empty()
                && field
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if plain {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(field);
            } else {
                path.push_str(&format!("[{}]", Value::from(field)));
            }
        } else if let Some(item) = key.strip_prefix("k:") {
            // Written as compare names keyed entries: by their key, without the protocol.
            let Ok(Value::Object(item_key)) = serde_json::from_str::<Value>(item) else {
                continue;
            };
            let Some((k, v)) = item_key
                .iter()
                .find(|(k, _)| *k != "protocol")
                .or_else(|| item_key.iter().next())
            else {
                continue;
            };
            match v {
                Value::String(s) => path.push_str(&format!("[{k}={s}]")),
                other => path.push_str(&format!("[{k}={other}]")),
            }
        } else if let Some(value) = key.strip_prefix("v:") {
            path.push_str(&format!("[{value}]"));
        } else if let Some(index) = key.strip_prefix("i:") {
            path.push_str(&format!("[{index}]"));
        } else {
            continue;
        }
        leaves(child, path, out);
        path.truncate(saved);
    }
}

/// The union of two `fieldsV1` sets: what two managers' entries own together.
pub fn union_fields(into: &mut Value, other: &Value) {
    let (Some(into), Some(other)) = (into.as_object_mut(), other.as_object()) else {
        return;
    };
    for (key, child) in other {
        match into.get_mut(key) {
            Some(existing) => union_fields(existing, child),
            None => {
                into.insert(key.clone(), child.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_list_replaces_the_default_and_default_stands_for_it() {
        let default = TakeOverManagers::default();
        assert!(default.covers("kubectl-edit") && default.covers("kubectl"));
        assert!(!default.covers("horizontal-pod-autoscaler"));
        assert!(!default.covers(FIELD_MANAGER));
        let extended = TakeOverManagers::parse(&strings(&["default", "deploy-*"])).expect("valid");
        assert!(extended.covers("kubectl-set") && extended.covers("deploy-bot"));
        let narrowed = TakeOverManagers::parse(&strings(&["kubectl-edit"])).expect("valid");
        assert!(narrowed.covers("kubectl-edit") && !narrowed.covers("kubectl-set"));
        let none = TakeOverManagers::parse(&[]).expect("valid");
        assert!(!none.covers("kubectl-edit"));
        let kubectl = TakeOverManagers::parse(&strings(&["kubectl-*"])).expect("valid");
        assert!(kubectl.covers("kubectl-edit") && !kubectl.covers(FIELD_MANAGER));
        for bad in ["", "*", "a*b", "kubectl-gitops"] {
            let error = TakeOverManagers::parse(&strings(&[bad]));
            assert!(error.is_err(), "{bad:?} is refused");
        }
    }

    fn deployment() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "shop", "labels": {"app": "shop", "hand": "yes"}, "managedFields": [
                {"manager": "kubectl-gitops", "operation": "Apply", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:selector": {}, "f:template": {"f:spec": {"f:containers": {
                    "k:{\"name\":\"shop\"}": {".": {}, "f:name": {}}}}}}}},
                {"manager": "kubectl-label", "operation": "Update", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:hand": {}}}}},
                {"manager": "kubectl-set", "operation": "Update", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {
                    "k:{\"name\":\"shop\"}": {"f:image": {}}}}}}}},
                {"manager": "horizontal-pod-autoscaler", "operation": "Update", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:spec": {"f:replicas": {}}}},
                {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:status": {"f:replicas": {}}}}
            ]},
            "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "shop"}},
                "template": {"spec": {"containers": [{"name": "shop", "image": "nginx:9.9"}]}}}})
    }

    fn git() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "shop", "labels": {"app": "shop"}},
            "spec": {"selector": {"matchLabels": {"app": "shop"}},
                "template": {"spec": {"containers": [{"name": "shop", "image": "nginx:1.27"}]}}}})
    }

    #[test]
    fn people_s_fields_are_reverted_controllers_keep_theirs() {
        let fields = hand_fields(&git(), &deployment(), &TakeOverManagers::default());
        let plan: Vec<(&str, &str, Remedy)> = fields
            .iter()
            .map(|f| (f.path.as_str(), f.manager.as_str(), f.remedy))
            .collect();
        assert_eq!(
            plan,
            [
                ("metadata.labels.hand", "kubectl-label", Remedy::Revert),
                (
                    "spec.template.spec.containers[name=shop].image",
                    "kubectl-set",
                    Remedy::Revert
                ),
            ],
            "the HPA's spec.replicas is not Git's business: {fields:#?}"
        );
        assert!(fields[1].declared && !fields[0].declared);
        assert_eq!(fields[1].live, Some(json!("nginx:9.9")));
    }

    #[test]
    fn managers_not_taken_over_conflict_or_are_kept() {
        let take_over = TakeOverManagers::parse(&strings(&["kubectl-edit"])).expect("valid");
        let mut desired = git();
        desired["spec"]["replicas"] = json!(2);
        let fields = hand_fields(&desired, &deployment(), &take_over);
        let mut plan: Vec<(&str, Remedy)> =
            fields.iter().map(|f| (f.path.as_str(), f.remedy)).collect();
        plan.sort_by_key(|(path, _)| *path);
        assert_eq!(
            plan,
            [
                ("metadata.labels.hand", Remedy::Kept),
                ("spec.replicas", Remedy::ForceConflicts),
                (
                    "spec.template.spec.containers[name=shop].image",
                    Remedy::ForceConflicts
                ),
            ]
        );
        let replicas = fields
            .iter()
            .find(|f| f.path == "spec.replicas")
            .expect("replicas");
        assert_eq!(replicas.manager, "horizontal-pod-autoscaler");
        assert!(replicas.plan().contains("--force-conflicts"));
        assert!(fields[0].plan().contains("sync leaves it"));
    }

    #[test]
    fn a_declared_field_only_sync_owns_is_no_hand_field() {
        let mut live = deployment();
        live["metadata"]["managedFields"] = json!([]);
        live["metadata"]["labels"] = json!({"app": "shop"});
        assert_eq!(
            hand_fields(&git(), &live, &TakeOverManagers::default()),
            vec![]
        );
    }

    #[test]
    fn a_declared_field_the_cluster_lacks_is_no_hand_field() {
        // The object was created by hand without labels: the label Git adds is no one's.
        let mut live = deployment();
        live["metadata"]
            .as_object_mut()
            .expect("metadata")
            .remove("labels");
        live["metadata"]["managedFields"][1]["fieldsV1"] = json!({"f:metadata": {"f:labels": {}}});
        let fields = hand_fields(&git(), &live, &TakeOverManagers::default());
        assert!(
            fields
                .iter()
                .all(|f| !f.path.starts_with("metadata.labels")),
            "{fields:#?}"
        );
        live["metadata"]["labels"] = Value::Null;
        let fields = hand_fields(&git(), &live, &TakeOverManagers::default());
        assert!(
            fields
                .iter()
                .all(|f| !f.path.starts_with("metadata.labels")),
            "null is absent too: {fields:#?}"
        );
    }

    #[test]
    fn field_sets_unite() {
        let mut ours = json!({"f:data": {"f:a": {}}, "f:metadata": {"f:labels": {"f:x": {}}}});
        union_fields(
            &mut ours,
            &json!({"f:data": {".": {}, "f:b": {}}, "f:spec": {"f:replicas": {}}}),
        );
        assert_eq!(
            ours,
            json!({"f:data": {"f:a": {}, ".": {}, "f:b": {}}, "f:metadata": {"f:labels": {"f:x": {}}},
                "f:spec": {"f:replicas": {}}})
        );
    }
}
