//! The implementation of `undeclared_changes` before it skipped members equal on both sides,
//! kept for tests only: the faster one must answer exactly as it did.
#![allow(dead_code, missing_docs, clippy::all)]

use serde_json::{Map, Value};

pub use crate::declared::UndeclaredChange;

use gitops_shared::compare::merge_key;
use gitops_shared::provenance::PROVENANCE_ANNOTATIONS;

/// Metadata the API server writes; never counted as a change.
const BOOKKEEPING: &[&str] = &[
    "resourceVersion",
    "managedFields",
    "generation",
    "uid",
    "creationTimestamp",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// The fields that differ between `old` and `new` and that none of `declared` declares.
pub fn undeclared_changes(old: &Value, new: &Value, declared: &[&Value]) -> Vec<UndeclaredChange> {
    let mut old = cluster_owned(old);
    let mut new = cluster_owned(new);
    for desired in declared {
        old = prune(&old, desired, None).unwrap_or(Value::Null);
        new = prune(&new, desired, None).unwrap_or(Value::Null);
    }
    let mut changes = Vec::new();
    diff(
        Some(&old),
        Some(&new),
        &mut String::new(),
        None,
        &mut changes,
    );
    changes
}

/// The object without status, bookkeeping and provenance annotations.
fn cluster_owned(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
        map.remove("apiVersion");
        map.remove("kind");
        if let Some(metadata) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            for key in BOOKKEEPING {
                metadata.remove(*key);
            }
            if let Some(annotations) = metadata
                .get_mut("annotations")
                .and_then(Value::as_object_mut)
            {
                for key in PROVENANCE_ANNOTATIONS {
                    annotations.remove(key);
                }
                // kubectl's own bookkeeping of client-side apply.
                annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
            }
        }
    }
    object
}

/// Marks a remnant of something Git declares. When such a thing appears or disappears as a whole
/// (Git added a container, a port, a probe), the fields the API server defaulted inside it come
/// with Git's change and are not counted.
const MARK: &str = "\u{0}declared";

/// `live` without what `desired` declares; `None` when Git declares it as a whole.
fn prune(live: &Value, desired: &Value, field: Option<&str>) -> Option<Value> {
    match (live, desired) {
        (Value::Object(live_map), Value::Object(desired_map)) => {
            let mut left = Map::new();
            for (key, value) in live_map {
                match desired_map.get(key) {
                    Some(declared) => {
                        if let Some(rest) = prune(value, declared, Some(key)) {
                            left.insert(key.clone(), rest);
                        }
                    }
                    None => {
                        left.insert(key.clone(), value.clone());
                    }
                }
            }
            left.insert(MARK.to_owned(), Value::Bool(true));
            Some(Value::Object(left))
        }
        (Value::Array(live_items), Value::Array(desired_items)) => {
            let key = merge_key(field, live_items.iter())?;
            // Keyed list: items Git declares are pruned field by field, the others stay whole.
            let mut left = Vec::new();
            for item in live_items {
                let identity = key.identity(item);
                match desired_items.iter().find(|d| key.identity(d) == identity) {
                    Some(declared) => {
                        let mut rest =
                            prune(item, declared, None).unwrap_or(Value::Object(Map::new()));
                        // Keep the identity so the item can be matched and named.
                        if let Some(map) = rest.as_object_mut() {
                            for id_field in [key.field, "protocol"] {
                                if let Some(id) = item.get(id_field) {
                                    map.insert(id_field.to_owned(), id.clone());
                                }
                            }
                            map.insert(MARK.to_owned(), Value::Bool(true));
                        }
                        left.push(rest);
                    }
                    None => left.push(item.clone()),
                }
            }
            Some(Value::Array(left))
        }
        // Git declares this field as a whole (a scalar, a plain list, or null meaning absent).
        _ => None,
    }
}

fn is_marked(value: Option<&Value>) -> bool {
    value.and_then(|v| v.get(MARK)).is_some()
}

fn is_empty(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::Object(map)) => map.keys().all(|k| k == MARK),
        Some(Value::Array(items)) => items.is_empty(),
        _ => false,
    }
}

/// The value without marks, for messages.
fn clean(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| *k != MARK)
                .map(|(k, v)| (k.clone(), clean(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(clean).collect()),
        other => other.clone(),
    }
}

fn diff(
    old: Option<&Value>,
    new: Option<&Value>,
    at: &mut String,
    field: Option<&str>,
    out: &mut Vec<UndeclaredChange>,
) {
    if is_empty(old) && is_empty(new) {
        return;
    }
    // Git added or dropped this whole thing; what the server defaulted inside it comes along.
    if (old.is_none() && is_marked(new)) || (new.is_none() && is_marked(old)) {
        return;
    }
    let empty_map = Value::Object(Map::new());
    let empty_list = Value::Array(Vec::new());
    let (old, new) = match (old, new) {
        (None | Some(Value::Null), Some(b @ Value::Object(_))) => (Some(&empty_map), Some(b)),
        (Some(a @ Value::Object(_)), None | Some(Value::Null)) => (Some(a), Some(&empty_map)),
        (None | Some(Value::Null), Some(b @ Value::Array(_))) => (Some(&empty_list), Some(b)),
        (Some(a @ Value::Array(_)), None | Some(Value::Null)) => (Some(a), Some(&empty_list)),
        pair => pair,
    };
    match (old, new) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let mut keys: Vec<&String> = a.keys().filter(|k| *k != MARK).collect();
            keys.extend(b.keys().filter(|k| !a.contains_key(*k) && *k != MARK));
            for key in keys {
                let len = at.len();
                push_key(at, key);
                diff(a.get(key), b.get(key), at, Some(key), out);
                at.truncate(len);
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) => {
            let all: Vec<Value> = a.iter().chain(b.iter()).cloned().collect();
            match merge_key(field, all.iter()) {
                Some(key) => {
                    let mut seen = Vec::new();
                    for item in a.iter().chain(b.iter()) {
                        let identity = key.identity(item);
                        if seen.contains(&identity) {
                            continue;
                        }
                        seen.push(identity.clone());
                        let find = |list: &[Value]| {
                            list.iter().find(|i| key.identity(i) == identity).cloned()
                        };
                        let len = at.len();
                        at.push_str(&format!("[{}={}]", key.field, identity.0));
                        diff(find(a).as_ref(), find(b).as_ref(), at, None, out);
                        at.truncate(len);
                    }
                }
                None if clean(&Value::Array(a.clone())) != clean(&Value::Array(b.clone())) => {
                    record(old, new, at, out)
                }
                None => {}
            }
        }
        (a, b) if a != b => record(a, b, at, out),
        _ => {}
    }
}

fn record(old: Option<&Value>, new: Option<&Value>, at: &str, out: &mut Vec<UndeclaredChange>) {
    out.push(UndeclaredChange {
        path: at.to_owned(),
        old: old.filter(|v| !is_empty(Some(v))).map(clean),
        new: new.filter(|v| !is_empty(Some(v))).map(clean),
    });
}

fn push_key(at: &mut String, key: &str) {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        if !at.is_empty() {
            at.push('.');
        }
        at.push_str(key);
    } else {
        at.push_str(&format!("[{}]", Value::from(key)));
    }
}
