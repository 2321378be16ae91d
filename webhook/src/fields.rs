//! Every field a person writes is Git's (rule 4) for what is new in a write: a whole object on
//! CREATE (or when a sync adopts an object that was not managed), and on UPDATE every member or
//! keyed list item that the old object lacked — a container, a port, an env entry, a volume, a
//! `securityContext` — since nothing older explains it.
//!
//! Such a new part may hold only what Git declares at the claimed commit, provenance and metadata
//! bookkeeping, and what the API server itself set. What the server set is known from the server,
//! never from Git's silence: a field is the server's when its value is the default kube-apiserver
//! v1.36 puts there ([`ServerDefaults`]), or when `metadata.managedFields` — which the API server
//! computes itself on a write, whatever the client sent — give it to no field manager (a default
//! or an allocation under a server-side apply) or only to writers of the status subresource. Without managedFields only the defaults count.
//! Git's `[]`, `{}` and `null` declare emptiness: whatever fills them is judged like an
//! undeclared field.

use serde_json::Value;

use gitops_shared::compare::merge_key;
use gitops_shared::defaults::{Judgement, ServerDefaults};
use gitops_shared::provenance::PROVENANCE_ANNOTATIONS;

/// Metadata the API server writes, or that names the object; never a person's field.
const METADATA_BOOKKEEPING: &[&str] = &[
    "name",
    "namespace",
    "generateName",
    "resourceVersion",
    "managedFields",
    "generation",
    "uid",
    "creationTimestamp",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// One step of a path: a member, or an entry of a list.
#[derive(Debug, Clone, Copy)]
enum Step<'a> {
    Member(&'a str),
    Entry { index: usize, item: &'a Value },
}

/// A field of a new part that neither Git nor the API server explains.
#[derive(Debug, Clone, PartialEq)]
pub struct UnexplainedField {
    /// The field for people: `spec.template.spec.volumes[name=root].hostPath`.
    pub path: String,
    /// Its value.
    pub value: Value,
}

/// The fields of `new` that are new (absent from `old`; everything when `old` is `None`) and that
/// neither `declared` (Git's object at the claimed commit) nor the API server explains.
pub fn unexplained_new_fields(
    new: &Value,
    old: Option<&Value>,
    declared: &Value,
) -> Vec<UnexplainedField> {
    let walk = Walk {
        root: new,
        defaults: std::cell::OnceCell::new(),
        // Writers through the main resource. What only status writers own came through the
        // status subresource (a controller's `deployment.kubernetes.io/revision`), which `edit`
        // cannot write and this webhook passes: the API server assigns every field a request
        // changes to that request's own entry, so a person cannot file a field of theirs there.
        owners: new
            .pointer("/metadata/managedFields")
            .and_then(Value::as_array)
            .filter(|entries| !entries.is_empty())
            .map(|entries| {
                entries
                    .iter()
                    .filter(|e| e.get("subresource").and_then(Value::as_str) != Some("status"))
                    .filter_map(|e| e.get("fieldsV1"))
                    .collect::<Vec<_>>()
            }),
    };
    let mut found = Vec::new();
    let mut at = Vec::new();
    let (Some(members), declared_map) = (new.as_object(), declared.as_object()) else {
        return found;
    };
    for (key, value) in members {
        if matches!(key.as_str(), "apiVersion" | "kind" | "status") {
            continue;
        }
        let old_value = old.and_then(|o| o.get(key));
        let declared_value = declared_map.and_then(|d| d.get(key));
        at.push(Step::Member(key));
        if key == "metadata" {
            walk.metadata(value, old_value, declared_value, &mut at, &mut found);
        } else {
            walk.part(value, old_value, declared_value, &mut at, &mut found);
        }
        at.pop();
    }
    found
}

struct Walk<'v> {
    root: &'v Value,
    /// Built when the first undeclared field is judged: most writes have none.
    defaults: std::cell::OnceCell<ServerDefaults>,
    /// The `fieldsV1` of every managedFields entry; `None` when the object has none.
    owners: Option<Vec<&'v Value>>,
}

impl<'v> Walk<'v> {
    fn metadata(
        &self,
        new: &'v Value,
        old: Option<&Value>,
        declared: Option<&Value>,
        at: &mut Vec<Step<'v>>,
        found: &mut Vec<UnexplainedField>,
    ) {
        let Some(members) = new.as_object() else {
            return;
        };
        for (key, value) in members {
            if METADATA_BOOKKEEPING.contains(&key.as_str()) {
                continue;
            }
            at.push(Step::Member(key));
            let (old_value, declared_value) = (
                old.and_then(|o| o.get(key)),
                declared.and_then(|d| d.get(key)),
            );
            match (key.as_str(), value) {
                ("labels" | "annotations", Value::Object(entries)) => {
                    for (name, entry) in entries {
                        let bookkeeping = key == "annotations"
                            && (PROVENANCE_ANNOTATIONS.contains(&name.as_str())
                                || name == "kubectl.kubernetes.io/last-applied-configuration");
                        if bookkeeping {
                            continue;
                        }
                        at.push(Step::Member(name));
                        self.part(
                            entry,
                            old_value.and_then(|o| o.get(name)),
                            declared_value.and_then(|d| d.get(name)),
                            at,
                            found,
                        );
                        at.pop();
                    }
                }
                _ => self.part(value, old_value, declared_value, at, found),
            }
            at.pop();
        }
    }

    /// Judges `new` at `at`: parts `old` already had are left to the comparison of changes;
    /// parts Git declares are walked into; the rest must be the server's.
    fn part(
        &self,
        new: &'v Value,
        old: Option<&Value>,
        declared: Option<&Value>,
        at: &mut Vec<Step<'v>>,
        found: &mut Vec<UnexplainedField>,
    ) {
        if old.is_some_and(|old| old == new) {
            return;
        }
        // Git's `null`, `{}` and `[]` declare emptiness, not "anything".
        if declared.is_some_and(is_empty) {
            // Whatever fills what Git declares empty is new, whatever the old object held.
            if !is_empty(new) {
                self.undeclared(new, at, found);
            }
            return;
        }
        match (new, declared) {
            (Value::Object(members), Some(Value::Object(declared_members))) => {
                for (key, value) in members {
                    at.push(Step::Member(key));
                    self.part(
                        value,
                        old.and_then(|o| o.get(key)),
                        declared_members.get(key),
                        at,
                        found,
                    );
                    at.pop();
                }
            }
            (Value::Array(items), Some(Value::Array(declared_items))) => {
                let field = match at.last() {
                    Some(Step::Member(name)) => Some(*name),
                    _ => None,
                };
                let Some(key) = merge_key(field, items.iter().chain(declared_items)) else {
                    // A plain list is declared as a whole; the comparison holds it to Git's.
                    return;
                };
                let old_items = old.and_then(Value::as_array);
                for (index, item) in items.iter().enumerate() {
                    let identity = key.identity_ref(item);
                    let old_item = old_items
                        .and_then(|list| list.iter().find(|o| key.identity_ref(o) == identity));
                    let declared_item = declared_items
                        .iter()
                        .find(|d| key.identity_ref(d) == identity);
                    at.push(Step::Entry { index, item });
                    self.part(item, old_item, declared_item, at, found);
                    at.pop();
                }
            }
            // A scalar or a whole list Git declares: the comparison holds it to Git's value.
            (_, Some(_)) => {}
            (_, None) => match old {
                None => self.undeclared(new, at, found),
                // What changed of what the old object had is the comparison of changes'
                // business; only members and keyed entries it lacked are new.
                Some(old) => self.new_within(new, old, at, found),
            },
        }
    }

    /// The members and keyed list entries of `new` that `old` lacks, judged as undeclared.
    fn new_within(
        &self,
        new: &'v Value,
        old: &Value,
        at: &mut Vec<Step<'v>>,
        found: &mut Vec<UnexplainedField>,
    ) {
        match (new, old) {
            (Value::Object(members), Value::Object(old_members)) => {
                for (key, value) in members {
                    at.push(Step::Member(key));
                    match old_members.get(key) {
                        None => self.undeclared(value, at, found),
                        Some(old_value) if old_value != value => {
                            self.new_within(value, old_value, at, found)
                        }
                        Some(_) => {}
                    }
                    at.pop();
                }
            }
            (Value::Array(items), Value::Array(old_items)) => {
                let field = match at.last() {
                    Some(Step::Member(name)) => Some(*name),
                    _ => None,
                };
                let Some(key) = merge_key(field, items.iter().chain(old_items)) else {
                    return;
                };
                for (index, item) in items.iter().enumerate() {
                    let identity = key.identity_ref(item);
                    at.push(Step::Entry { index, item });
                    match old_items.iter().find(|o| key.identity_ref(o) == identity) {
                        None => {
                            let mut inside = Vec::new();
                            self.undeclared(item, at, &mut inside);
                            if !inside.is_empty() {
                                found.push(UnexplainedField {
                                    path: human(at),
                                    value: item.clone(),
                                });
                            }
                        }
                        Some(old_item) if old_item != item => {
                            self.new_within(item, old_item, at, found)
                        }
                        Some(_) => {}
                    }
                    at.pop();
                }
            }
            _ => {}
        }
    }

    /// A part Git does not declare: the server's default, or the server's own write, or a
    /// person's.
    fn undeclared(
        &self,
        new: &'v Value,
        at: &mut Vec<Step<'v>>,
        found: &mut Vec<UnexplainedField>,
    ) {
        let path: Vec<&str> = at
            .iter()
            .map(|step| match step {
                Step::Member(name) => *name,
                Step::Entry { .. } => "*",
            })
            .collect();
        let parent = self.parent(at);
        let defaults = self.defaults.get_or_init(|| ServerDefaults::of(self.root));
        match defaults.judge(&path, Some(new), parent, self.root) {
            Judgement::Defaulted => return,
            Judgement::Descend => return self.children(new, at, found),
            Judgement::NotDefaulted => {}
        }
        match new {
            // A map or list may hold the server's and a person's fields side by side.
            Value::Object(members) if !members.is_empty() => self.children(new, at, found),
            // A keyed list holds entries written by different hands; any other list a manager
            // owns was written as a whole.
            Value::Array(items) if !items.is_empty() && self.owned(at) && keyed(at, items) => {
                self.children(new, at, found)
            }
            _ if self.owners.is_some() && !self.owned(at) => {}
            _ => found.push(UnexplainedField {
                path: human(at),
                value: new.clone(),
            }),
        }
    }

    fn children(&self, new: &'v Value, at: &mut Vec<Step<'v>>, found: &mut Vec<UnexplainedField>) {
        match new {
            Value::Object(members) => {
                for (key, value) in members {
                    at.push(Step::Member(key));
                    self.undeclared(value, at, found);
                    at.pop();
                }
            }
            Value::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    at.push(Step::Entry { index, item });
                    // An entry with anything unexplained is named as a whole: "containers[name=evil]".
                    let mut inside = Vec::new();
                    self.undeclared(item, at, &mut inside);
                    if !inside.is_empty() {
                        found.push(UnexplainedField {
                            path: human(at),
                            value: item.clone(),
                        });
                    }
                    at.pop();
                }
            }
            _ => {}
        }
    }

    /// The map or list entry holding the field at `at`.
    fn parent(&self, at: &[Step<'v>]) -> Option<&'v Value> {
        let mut node = self.root;
        for step in at.iter().take(at.len().saturating_sub(1)) {
            node = match step {
                Step::Member(name) => node.get(*name)?,
                Step::Entry { item, .. } => item,
            };
        }
        Some(node)
    }

    /// Whether some field manager owns the field at `at` (or something below it).
    fn owned(&self, at: &[Step<'_>]) -> bool {
        self.owners
            .as_ref()
            .is_some_and(|owners| owners.iter().any(|fields| owns(fields, at)))
    }
}

/// Whether the `fieldsV1` trie `fields` holds the path `at`: `f:<name>` for a member,
/// `k:{…}` (the entry's key fields), `v:<value>` or `i:<index>` for a list entry.
fn owns(fields: &Value, at: &[Step<'_>]) -> bool {
    let Some((step, rest)) = at.split_first() else {
        return true;
    };
    let Some(children) = fields.as_object() else {
        return false;
    };
    match step {
        Step::Member(name) => children
            .get(&format!("f:{name}"))
            .is_some_and(|below| owns(below, rest)),
        Step::Entry { index, item } => children.iter().any(|(key, below)| {
            let matches = if let Some(json) = key.strip_prefix("k:") {
                serde_json::from_str::<Value>(json).is_ok_and(|fields| {
                    fields.as_object().is_some_and(|fields| {
                        fields
                            .iter()
                            .all(|(name, value)| item.get(name) == Some(value))
                    })
                })
            } else if let Some(json) = key.strip_prefix("v:") {
                serde_json::from_str::<Value>(json).is_ok_and(|value| &value == *item)
            } else if let Some(position) = key.strip_prefix("i:") {
                position.parse::<usize>() == Ok(*index)
            } else {
                false
            };
            matches && owns(below, rest)
        }),
    }
}

/// Whether the list at `at` is keyed (containers by name, ports by port, …).
fn keyed(at: &[Step<'_>], items: &[Value]) -> bool {
    let field = match at.last() {
        Some(Step::Member(name)) => Some(*name),
        _ => None,
    };
    merge_key(field, items.iter()).is_some()
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(members) => members.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

/// `spec.template.spec.containers[name=web].ports[containerPort=80]`.
fn human(at: &[Step<'_>]) -> String {
    let mut out = String::new();
    let mut field: Option<&str> = None;
    for step in at {
        match step {
            Step::Member(name) => {
                let plain = !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if plain {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(name);
                } else {
                    out.push_str(&format!("[{}]", Value::from(*name)));
                }
                field = Some(name);
            }
            Step::Entry { index, item } => {
                match merge_key(field, std::iter::once(*item)) {
                    Some(key) => out.push_str(&format!("[{}={}]", key.field, key.identity(item).0)),
                    None => out.push_str(&format!("[{index}]")),
                }
                field = None;
            }
        }
    }
    out
}

/// True when `new` differs from `old` only in `metadata.managedFields` (and the bookkeeping the
/// API server moves on every write): a write that changes who owns which field, not a value.
pub fn only_field_ownership_changed(old: &Value, new: &Value) -> bool {
    // Compared member by member, without copying either object (this runs on every UPDATE).
    const MOVED: [&str; 3] = ["managedFields", "resourceVersion", "generation"];
    fn same_except(old: &Value, new: &Value, skip: &[&str]) -> bool {
        match (old.as_object(), new.as_object()) {
            (Some(old), Some(new)) => {
                let counted = |map: &serde_json::Map<String, Value>| {
                    map.keys().filter(|k| !skip.contains(&k.as_str())).count()
                };
                counted(old) == counted(new)
                    && old
                        .iter()
                        .filter(|(k, _)| !skip.contains(&k.as_str()))
                        .all(|(k, v)| new.get(k) == Some(v))
            }
            _ => old == new,
        }
    }
    let (Some(old_map), Some(new_map)) = (old.as_object(), new.as_object()) else {
        return old == new;
    };
    let top = |map: &serde_json::Map<String, Value>| {
        map.keys()
            .filter(|k| !matches!(k.as_str(), "status" | "metadata"))
            .count()
    };
    top(old_map) == top(new_map)
        && old_map
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "status" | "metadata"))
            .all(|(k, v)| new_map.get(k) == Some(v))
        && match (old_map.get("metadata"), new_map.get("metadata")) {
            (Some(old), Some(new)) => same_except(old, new, &MOVED),
            (old, new) => old == new,
        }
}

/// Field managers the API server itself names: `before-first-apply` holds what an object's
/// first server-side apply found written by updates.
const SERVER_MANAGERS: &[&str] = &["before-first-apply"];

/// A field manager other than `own` (and not a status writer, nor the server's) that owns, in
/// `new`, a field Git declares in `declared` and did not own it in `old`: a co-owner pins the
/// field, so Git's next change to it conflicts and a field Git drops survives a sync. What a
/// manager owned before this write is the history of the object, not this write's doing.
pub fn gained_foreign_ownership(
    new: &Value,
    old: Option<&Value>,
    declared: &Value,
    own: &str,
) -> Option<(String, String)> {
    let entries = new.pointer("/metadata/managedFields")?.as_array()?;
    let old_entries: Vec<&Value> = old
        .and_then(|o| o.pointer("/metadata/managedFields"))
        .and_then(Value::as_array)
        .map(|entries| entries.iter().collect())
        .unwrap_or_default();
    // Built when an entry could have gained something: on most writes none has.
    let leaves = std::cell::OnceCell::new();
    for entry in entries {
        let manager = entry
            .get("manager")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if manager == own
            || SERVER_MANAGERS.contains(&manager)
            || entry.get("subresource").and_then(Value::as_str) == Some("status")
        {
            continue;
        }
        let Some(fields) = entry.get("fieldsV1") else {
            continue;
        };
        // The same entry as before the write gained nothing.
        let unchanged = old_entries.iter().any(|o| {
            o.get("manager").and_then(Value::as_str) == Some(manager)
                && o.get("fieldsV1") == Some(fields)
        });
        if unchanged {
            continue;
        }
        let leaves = leaves.get_or_init(|| {
            let mut leaves = Vec::new();
            declared_leaves(declared, &mut Vec::new(), &mut leaves, true);
            leaves
        });
        let owned_before = |path: &[Step<'_>]| {
            old_entries.iter().any(|o| {
                o.get("manager").and_then(Value::as_str) == Some(manager)
                    && o.get("fieldsV1").is_some_and(|f| owns(f, path))
            })
        };
        if let Some(path) = leaves
            .iter()
            .find(|path| owns(fields, path) && !owned_before(path))
        {
            return Some((manager.to_owned(), human(path)));
        }
    }
    None
}

/// The paths of the leaves Git declares: members, keyed entries by their identity, whole plain
/// lists and scalars; never the object's identity or provenance.
fn declared_leaves<'v>(
    declared: &'v Value,
    at: &mut Vec<Step<'v>>,
    out: &mut Vec<Vec<Step<'v>>>,
    top: bool,
) {
    match declared {
        Value::Object(members) if !members.is_empty() => {
            for (key, value) in members {
                let skip = top && matches!(key.as_str(), "apiVersion" | "kind" | "status");
                let identity = at.len() == 1
                    && matches!(at.first(), Some(Step::Member("metadata")))
                    && METADATA_BOOKKEEPING.contains(&key.as_str());
                let provenance = at.len() == 2
                    && matches!(at.get(1), Some(Step::Member("annotations")))
                    && PROVENANCE_ANNOTATIONS.contains(&key.as_str());
                if skip || identity || provenance {
                    continue;
                }
                at.push(Step::Member(key));
                declared_leaves(value, at, out, false);
                at.pop();
            }
        }
        Value::Array(items) if keyed(at, items) => {
            for (index, item) in items.iter().enumerate() {
                at.push(Step::Entry { index, item });
                declared_leaves(item, at, out, false);
                at.pop();
            }
        }
        _ => out.push(at.clone()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    /// A Deployment as kube-apiserver v1.36.2 stored it after `kubectl apply --server-side
    /// --field-manager kubectl-gitops` of `declared` (defaults unowned).
    fn stored(extra_container_field: Option<(&str, Value)>) -> (Value, Value) {
        let declared = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"tolerations": [], "containers": [{"name": "web", "image": "nginx"}]}}}});
        let mut container = json!({"name": "web", "image": "nginx", "imagePullPolicy": "Always",
            "resources": {}, "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File"});
        let mut owned = json!({".": {}, "f:image": {}, "f:name": {}});
        if let Some((field, value)) = extra_container_field {
            container[field] = value;
            owned[format!("f:{field}")] = json!({});
        }
        let new = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "uid": "u", "generation": 1,
                "managedFields": [{"manager": "kubectl-gitops", "operation": "Apply",
                    "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:selector": {},
                        "f:template": {"f:metadata": {"f:labels": {"f:app": {}}},
                            "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": owned},
                                "f:tolerations": {}}}}}}]},
            "spec": {"replicas": 1, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [container], "dnsPolicy": "ClusterFirst",
                        "restartPolicy": "Always", "schedulerName": "default-scheduler",
                        "securityContext": {}, "terminationGracePeriodSeconds": 30}}}});
        (new, declared)
    }

    #[test]
    fn a_sync_create_is_all_git_or_server() {
        let (new, declared) = stored(None);
        assert_eq!(unexplained_new_fields(&new, None, &declared), Vec::new());
    }

    #[test]
    fn an_extra_field_in_a_created_container_is_named() {
        let (new, declared) = stored(Some(("command", json!(["sh", "-c", "evil"]))));
        let found = unexplained_new_fields(&new, None, &declared);
        assert_eq!(
            found,
            vec![UnexplainedField {
                path: "spec.template.spec.containers[name=web].command".into(),
                value: json!(["sh", "-c", "evil"]),
            }]
        );
    }

    #[test]
    fn filling_an_empty_declaration_is_named_even_when_no_manager_is_recorded() {
        let (mut new, declared) = stored(None);
        new["spec"]["template"]["spec"]["tolerations"] = json!([{"operator": "Exists"}]);
        new["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("managedFields");
        let found = unexplained_new_fields(&new, None, &declared);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].path, "spec.template.spec.tolerations");
    }

    #[test]
    fn what_the_old_object_had_is_left_to_the_comparison_of_changes() {
        let (new, declared) = stored(Some(("command", json!(["sh"]))));
        assert_eq!(
            unexplained_new_fields(&new, Some(&new), &declared),
            Vec::new()
        );
    }

    #[test]
    fn a_co_owner_of_a_declared_field_is_found_and_status_writers_are_not() {
        let (mut new, declared) = stored(None);
        assert_eq!(
            gained_foreign_ownership(&new, None, &declared, "kubectl-gitops"),
            None
        );
        let before = new.clone();
        let entries = new["metadata"]["managedFields"].as_array_mut().unwrap();
        entries.push(
            json!({"manager": "kube-controller-manager", "operation": "Update",
            "subresource": "status", "fieldsV1": {"f:spec": {"f:selector": {}}}}),
        );
        entries.push(json!({"manager": "pinner", "operation": "Apply",
            "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers":
                {"k:{\"name\":\"web\"}": {"f:image": {}}}}}}}}));
        assert_eq!(
            gained_foreign_ownership(&new, Some(&before), &declared, "kubectl-gitops"),
            Some((
                "pinner".to_owned(),
                "spec.template.spec.containers[name=web].image".to_owned()
            ))
        );
        // What it owned before this write is history, not this write's doing.
        assert_eq!(
            gained_foreign_ownership(&new, Some(&new), &declared, "kubectl-gitops"),
            None
        );
        let mut moved = new.clone();
        moved["metadata"]["managedFields"] = json!([]);
        assert!(only_field_ownership_changed(&moved, &new));
        moved["spec"]["replicas"] = json!(3);
        assert!(!only_field_ownership_changed(&moved, &new));
    }

    #[test]
    fn owned_paths_follow_keys_values_and_indexes() {
        let item = json!({"name": "web", "image": "x"});
        let fields = json!({"f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {"f:image": {}}},
            "f:finalizers": {"v:\"a\"": {}}, "f:args": {"i:1": {}}}});
        let at = [
            Step::Member("spec"),
            Step::Member("containers"),
            Step::Entry {
                index: 0,
                item: &item,
            },
            Step::Member("image"),
        ];
        assert!(owns(&fields, &at));
        let other = json!({"name": "sidecar"});
        let at = [
            Step::Member("spec"),
            Step::Member("containers"),
            Step::Entry {
                index: 0,
                item: &other,
            },
        ];
        assert!(!owns(&fields, &at));
        let value = json!("a");
        let at = [
            Step::Member("spec"),
            Step::Member("finalizers"),
            Step::Entry {
                index: 3,
                item: &value,
            },
        ];
        assert!(owns(&fields, &at));
    }
}
