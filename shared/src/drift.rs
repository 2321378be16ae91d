//! Drift between Git and the cluster, beyond [`crate::compare`]: the comparison of declared fields
//! without the provenance annotations (which name a commit, not content), and the fields that Git
//! does not declare but that a person added by hand, found through `metadata.managedFields`.
//!
//! A field owned by a manager such as `kubectl-edit`, `kubectl-patch` or
//! `kubectl-client-side-apply` was written by a person at a terminal. When Git does not declare
//! it, [`crate::compare::compare`] cannot see it (it only looks at declared fields), yet it is drift.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::compare::{compare, duplicate_keys, FieldDiff};
use crate::defaults::{Judgement, ServerDefaults};

/// Field managers that mean "a person changed this by hand".
pub const HAND_MANAGERS: &[&str] = &[
    "kubectl-edit",
    "kubectl-patch",
    "kubectl-client-side-apply",
    "kubectl-label",
    "kubectl-annotate",
    "kubectl-scale",
    "kubectl-set",
    "kubectl-rollout",
    "kubectl-replace",
    "kubectl-create",
];

/// A field Git does not declare, written by a hand manager.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HandDrift {
    /// The manager that owns the field (`kubectl-edit`).
    pub manager: String,
    /// The field for people: `data.LOG_LEVEL`, `spec.template.spec.containers[name=web].env`.
    pub path: String,
    /// The value in the cluster, when it can be located.
    pub live: Option<Value>,
}

/// `desired` without the provenance annotations: what the digest covers.
pub use crate::provenance::without_provenance;

/// The declared fields of `desired` that `live` does not hold, provenance annotations left out
/// (an object rendered from a newer commit with the same content is not drifted), then every
/// merge key that a live list Git declares holds twice ([`duplicate_keys`]; last, so that a
/// reader patching Git's object with the cluster's values ends with the cluster's whole list).
pub fn declared_drift(desired: &Value, live: &Value) -> Vec<FieldDiff> {
    let desired = without_provenance(desired);
    let mut drift = compare(&desired, live);
    drift.extend(duplicate_keys(&desired, live));
    drift
}

/// Fields of `live` owned by a [`HAND_MANAGERS`] manager that `desired` does not declare.
/// Fields the API server set by default ([`ServerDefaults`]) are no one's hand-made change, even
/// when `managedFields` records them as owned by the `kubectl-create` that created the object.
pub fn hand_drift(desired: &Value, live: &Value) -> Vec<HandDrift> {
    hand_drift_by(desired, live, &|manager| HAND_MANAGERS.contains(&manager))
}

/// [`hand_drift`] with the managers that count as a person's tools given by `by_hand`: `sync`
/// also looks at the app's `takeOverManagers` ([`crate::takeover`]).
pub fn hand_drift_by(
    desired: &Value,
    live: &Value,
    by_hand: &dyn Fn(&str) -> bool,
) -> Vec<HandDrift> {
    let defaults = ServerDefaults::of(live);
    let mut found = Vec::new();
    let entries = live
        .get("metadata")
        .and_then(|m| m.get("managedFields"))
        .and_then(Value::as_array);
    for entry in entries.into_iter().flatten() {
        let manager = entry
            .get("manager")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let written_by_hand = by_hand(manager);
        let subresource = entry
            .get("subresource")
            .and_then(Value::as_str)
            .unwrap_or_default();
        // Status writes are the controllers' business, never drift.
        if !written_by_hand || subresource == "status" {
            continue;
        }
        let Some(fields) = entry.get("fieldsV1").and_then(Value::as_object) else {
            continue;
        };
        let mut walk = Walk {
            manager,
            found: &mut found,
            path: String::new(),
            pattern: Vec::new(),
            defaults: &defaults,
            root: live,
        };
        walk.fields(fields, Some(desired), Some(live), None);
    }
    found
}

struct Walk<'a> {
    manager: &'a str,
    found: &'a mut Vec<HandDrift>,
    path: String,
    /// The path as [`ServerDefaults`] matches it: field names, `*` for a list entry.
    pattern: Vec<String>,
    defaults: &'a ServerDefaults,
    root: &'a Value,
}

impl Walk<'_> {
    /// Walks a fieldsV1 set. `desired` and `live` are the values at the current path (`None` when
    /// absent there), `parent` the live map or entry holding it. The first field on a path that
    /// `desired` does not declare is drift, reported once with everything under it — unless it
    /// holds what the API server sets by default there, or only defaults and fields judged one by
    /// one below it.
    fn fields(
        &mut self,
        set: &Map<String, Value>,
        desired: Option<&Value>,
        live: Option<&Value>,
        parent: Option<&Value>,
    ) {
        if desired.is_none() && !self.path.is_empty() {
            let pattern: Vec<&str> = self.pattern.iter().map(String::as_str).collect();
            let has_fields = set.keys().any(|k| k != ".");
            match self.defaults.judge(&pattern, live, parent, self.root) {
                Judgement::Defaulted => return,
                Judgement::Descend if has_fields => {}
                Judgement::Descend | Judgement::NotDefaulted => {
                    self.found.push(HandDrift {
                        manager: self.manager.to_owned(),
                        path: self.path.clone(),
                        live: live.cloned(),
                    });
                    return;
                }
            }
        }
        for (key, child) in set {
            let Some(child) = child.as_object() else {
                continue;
            };
            let saved = self.path.len();
            let pattern_len = self.pattern.len();
            if let Some(field) = key.strip_prefix("f:") {
                if self.path.is_empty() && matches!(field, "status") {
                    continue;
                }
                let plain = field
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if plain {
                    if !self.path.is_empty() {
                        self.path.push('.');
                    }
                    self.path.push_str(field);
                } else {
                    self.path.push_str(&format!("[{}]", Value::from(field)));
                }
                self.pattern.push(field.to_owned());
                let d = desired.and_then(|v| v.get(field));
                let l = live.and_then(|v| v.get(field));
                self.fields(child, d, l, live);
            } else if let Some(item) = key.strip_prefix("k:") {
                let Ok(Value::Object(item_key)) = serde_json::from_str::<Value>(item) else {
                    continue;
                };
                let label: Vec<String> = item_key
                    .iter()
                    .map(|(k, v)| match v {
                        Value::String(s) => format!("{k}={s}"),
                        other => format!("{k}={other}"),
                    })
                    .collect();
                self.path.push_str(&format!("[{}]", label.join(",")));
                self.pattern.push("*".to_owned());
                let matches =
                    |element: &&Value| item_key.iter().all(|(k, v)| key_equal(element.get(k), v));
                let d = desired
                    .and_then(Value::as_array)
                    .and_then(|a| a.iter().find(matches));
                let l = live
                    .and_then(Value::as_array)
                    .and_then(|a| a.iter().find(matches));
                self.fields(child, d, l, live);
            } else if let Some(value) = key.strip_prefix("v:") {
                let Ok(wanted) = serde_json::from_str::<Value>(value) else {
                    continue;
                };
                self.path.push_str(&format!("[{wanted}]"));
                self.pattern.push("*".to_owned());
                let d = desired
                    .and_then(Value::as_array)
                    .and_then(|a| a.iter().find(|e| **e == wanted));
                let l = live
                    .and_then(Value::as_array)
                    .and_then(|a| a.iter().find(|e| **e == wanted));
                self.fields(child, d, l, live);
            } else if let Some(index) = key.strip_prefix("i:") {
                let index: usize = index.parse().unwrap_or(usize::MAX);
                self.path.push_str(&format!("[{index}]"));
                self.pattern.push("*".to_owned());
                let d = desired.and_then(|v| v.get(index));
                let l = live.and_then(|v| v.get(index));
                self.fields(child, d, l, live);
            }
            self.path.truncate(saved);
            self.pattern.truncate(pattern_len);
        }
    }
}

/// List keys compare by meaning: `80` and `"80"` name the same port.
fn key_equal(element: Option<&Value>, wanted: &Value) -> bool {
    match (element, wanted) {
        (Some(a), b) if a == b => true,
        (Some(Value::Number(a)), Value::String(b)) | (Some(Value::String(b)), Value::Number(a)) => {
            a.to_string() == *b
        }
        // The server fills in defaulted keys (protocol TCP) that Git may leave out.
        (None, Value::String(s)) => s == "TCP",
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn admission_object(name: &str) -> Value {
        let path = format!(
            "{}/../../shared/fixtures/admission/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let review: Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json");
        review["request"]["object"].clone()
    }

    #[test]
    fn a_real_kubectl_edit_is_hand_drift() {
        // The captured `kubectl edit` added data.LOG_LEVEL to a ConfigMap that its apply did not declare.
        let live = admission_object("0065-UPDATE-ConfigMap-app-config.json");
        let desired = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "app-config", "labels": {"app": "web"}},
            "data": {"FEATURE_X": live["data"]["FEATURE_X"].clone()}});
        let drift = hand_drift(&desired, &live);
        assert_eq!(drift.len(), 1, "{drift:?}");
        assert_eq!(drift[0].manager, "kubectl-edit");
        assert_eq!(drift[0].path, "data.LOG_LEVEL");
        assert_eq!(drift[0].live, live["data"].get("LOG_LEVEL").cloned());
        // Once Git declares the field, it is no longer hand drift (compare() judges its value).
        let mut declared = desired.clone();
        declared["data"]["LOG_LEVEL"] = json!("debug");
        assert!(hand_drift(&declared, &live).is_empty());
    }

    #[test]
    fn keyed_list_items_and_controllers() {
        let live = json!({"metadata": {"managedFields": [
            {"manager": "kubectl-patch", "operation": "Update", "fieldsV1": {"f:spec": {"f:template": {"f:spec": {
                "f:containers": {"k:{\"name\":\"web\"}": {"f:env": {".": {}, "k:{\"name\":\"DEBUG\"}": {".": {}, "f:name": {}, "f:value": {}}}}}}}}}},
            {"manager": "kube-controller-manager", "operation": "Update", "fieldsV1": {"f:spec": {"f:paused": {}}}},
            {"manager": "kubectl-edit", "operation": "Update", "subresource": "status", "fieldsV1": {"f:status": {"f:x": {}}}}
        ]}, "spec": {"template": {"spec": {"containers": [{"name": "web", "env": [{"name": "DEBUG", "value": "1"}]}]}}}});
        let desired = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx"}]}}}});
        let drift = hand_drift(&desired, &live);
        let paths: Vec<_> = drift.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(paths, ["spec.template.spec.containers[name=web].env"]);
        assert_eq!(drift[0].manager, "kubectl-patch");
    }

    fn captured(name: &str) -> Value {
        let path = format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).expect("testdata")).expect("json")
    }

    fn git_objects() -> Vec<Value> {
        let path = format!(
            "{}/testdata/kubectl-create-git.yaml",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(path).expect("testdata");
        crate::yaml::documents(text.as_bytes())
            .expect("yaml")
            .into_iter()
            .map(|document| document.value)
            .collect()
    }

    /// Issue 8: `kubectl create -f` of Git's own YAML made the API server's defaults look like
    /// hand-made changes "by kubectl-create". Real objects from kube-apiserver v1.36.2.
    #[test]
    fn defaults_written_by_the_server_are_not_hand_drift() {
        let git = git_objects();
        let deployment = captured("kubectl-create-deployment-web.json");
        let service = captured("kubectl-create-service-web.json");
        // What the captured managedFields give kubectl-create beyond Git: the defaults.
        let owned = serde_json::to_string(&deployment["metadata"]["managedFields"]).expect("json");
        for default in [
            "progressDeadlineSeconds",
            "dnsPolicy",
            "terminationMessagePath",
            "imagePullPolicy",
        ] {
            assert!(
                owned.contains(default),
                "{default} is owned by kubectl-create"
            );
        }
        assert_eq!(hand_drift(&git[0], &deployment), vec![]);
        assert_eq!(hand_drift(&git[1], &service), vec![]);
        assert!(declared_drift(&git[0], &deployment).is_empty());

        // A value that is not the default is still a person's, and is named alone.
        let mut changed = deployment.clone();
        changed["spec"]["progressDeadlineSeconds"] = json!(30);
        changed["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = json!("Always");
        changed["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = json!(1);
        let drift = hand_drift(&git[0], &changed);
        let paths: Vec<_> = drift.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "spec.progressDeadlineSeconds",
                "spec.strategy.rollingUpdate.maxSurge",
                "spec.template.spec.containers[name=web].imagePullPolicy"
            ]
        );
        assert!(drift.iter().all(|d| d.manager == "kubectl-create"));
        assert_eq!(drift[0].live, Some(json!(30)));

        // A Service port's targetPort defaults to its port, and to nothing else.
        let mut retargeted = service.clone();
        retargeted["spec"]["ports"][0]["targetPort"] = json!(8080);
        let drift = hand_drift(&git[1], &retargeted);
        assert_eq!(drift.len(), 1, "{drift:?}");
        assert_eq!(drift[0].path, "spec.ports[port=80,protocol=TCP].targetPort");
    }

    /// The captured Namespace and Secret creates: the label the server adds to every Namespace and
    /// a Secret's default type, both owned by kubectl-create.
    #[test]
    fn captured_namespace_and_secret_creates_have_no_hand_drift() {
        let namespace = admission_object("0002-CREATE-Namespace-demo.json");
        let desired =
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}});
        assert_eq!(hand_drift(&desired, &namespace), vec![]);
        let secret = admission_object("0152-CREATE-Secret-db-creds.json");
        let desired = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db-creds"}, "data": secret["data"].clone()});
        assert_eq!(hand_drift(&desired, &secret), vec![]);
        let mut typed = secret.clone();
        typed["type"] = json!("kubernetes.io/basic-auth");
        let drift = hand_drift(&desired, &typed);
        assert_eq!(drift.len(), 1, "{drift:?}");
        assert_eq!(drift[0].path, "type");
    }

    /// Issue 8: a second `DB_HOST` appended with a JSON patch on the real server.
    #[test]
    fn a_json_patched_duplicate_env_entry_is_drift() {
        let git = git_objects();
        let live = captured("json-patch-duplicate-env-deployment-web.json");
        let drift = declared_drift(&git[0], &live);
        assert_eq!(drift.len(), 1, "{drift:?}");
        assert_eq!(
            drift[0].path,
            "spec.template.spec.containers[name=web].env[name=DB_HOST]"
        );
        assert_eq!(drift[0].duplicates, Some(2));
        assert_eq!(hand_drift(&git[0], &live), vec![]);
    }

    #[test]
    fn provenance_is_not_content() {
        let desired = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c",
            "annotations": {"kubectl-gitops.io/revision": "b".repeat(40)}}, "data": {"a": "1"}});
        let live = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c",
            "annotations": {"kubectl-gitops.io/revision": "a".repeat(40)}}, "data": {"a": "1"}});
        assert!(declared_drift(&desired, &live).is_empty());
        assert_eq!(compare(&desired, &live).len(), 1);
    }
}
