//! Semantic comparison of what Git declares for an object with what the cluster holds.
//!
//! The API server defaults and normalises every object it stores (`0.5` CPU becomes `500m`, empty
//! maps disappear, a Secret's `stringData` becomes `data`), so byte equality would call almost
//! everything drifted. Only the fields Git declares are compared, each by meaning:
//! - fields only the cluster has (defaults, status, bookkeeping) are not differences;
//! - `null`, absent, `{}` and `[]` are equal;
//! - quantities compare by value (`0.5` = `500m`, `1Gi` = `1024Mi`);
//! - an integer and the same integer written as a string are equal (int-or-string fields);
//! - lists with merge keys (containers, env and volumes by name, ports by port and protocol, …)
//!   are matched by key, not position; other lists are compared as wholes.

use std::fmt::Write as _;

use base64::Engine as _;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::quantity::quantity_of;

/// One field where Git and the cluster disagree.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldDiff {
    /// The field for people: `spec.template.spec.containers[name=web].image`.
    pub path: String,
    /// The field as an RFC 6901 JSON pointer into the desired object:
    /// `/spec/template/spec/containers/0/image`.
    pub pointer: String,
    /// What Git declares.
    pub desired: Value,
    /// What the cluster has; `None` when the field is absent there.
    pub live: Option<Value>,
    /// Set when the cluster's list holds this many entries (two or more) with the one merge key
    /// that `path` names: then `pointer`, `desired` and `live` are the whole list. See
    /// [`duplicate_keys`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicates: Option<usize>,
}

/// Metadata fields the API server owns; Git declaring them is meaningless.
const METADATA_BOOKKEEPING: &[&str] = &[
    "creationTimestamp",
    "deletionGracePeriodSeconds",
    "deletionTimestamp",
    "generation",
    "managedFields",
    "resourceVersion",
    "selfLink",
    "uid",
];

/// Keys whose values are quantities (resource lists and sizes).
const QUANTITY_PARENTS: &[&str] = &[
    "limits",
    "requests",
    "capacity",
    "allocatable",
    "hard",
    "overhead",
    "max",
    "min",
    "default",
    "defaultRequest",
    "maxLimitRequestRatio",
];

/// Every field Git declares in `desired` that `live` does not hold with the same meaning.
pub fn compare(desired: &Value, live: &Value) -> Vec<FieldDiff> {
    let desired = normalize_desired(desired);
    let mut diffs = Vec::new();
    let (Some(desired_map), Some(live_map)) = (desired.as_object(), live.as_object()) else {
        diffs.push(FieldDiff {
            path: String::new(),
            pointer: String::new(),
            desired: desired.clone().into_owned(),
            live: Some(live.clone()),
            duplicates: None,
        });
        return diffs;
    };
    let mut at = Path::default();
    for (key, value) in desired_map {
        match key.as_str() {
            // Identity and server-written parts.
            "apiVersion" | "kind" | "status" => continue,
            "metadata" => {
                let Some(metadata) = value.as_object() else {
                    continue;
                };
                let live_metadata = live_map.get("metadata").unwrap_or(&Value::Null);
                at.push_key("metadata");
                for (field, value) in metadata {
                    if METADATA_BOOKKEEPING.contains(&field.as_str()) {
                        continue;
                    }
                    at.push_key(field);
                    walk(value, live_metadata.get(field), &mut at, &mut diffs);
                    at.pop();
                }
                at.pop();
            }
            _ => {
                at.push_key(key);
                walk(value, live_map.get(key), &mut at, &mut diffs);
                at.pop();
            }
        }
    }
    diffs
}

/// Rewrites what the API server would rewrite on the way in: a Secret's `stringData` becomes
/// base64 `data`.
fn normalize_desired(desired: &Value) -> std::borrow::Cow<'_, Value> {
    let is_secret = desired.get("kind").and_then(Value::as_str) == Some("Secret")
        && desired.get("stringData").is_some_and(Value::is_object);
    if !is_secret {
        return std::borrow::Cow::Borrowed(desired);
    }
    let mut owned = desired.clone();
    if let Some(map) = owned.as_object_mut() {
        let string_data = map.remove("stringData");
        let data = map
            .entry("data".to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if let (Some(Value::Object(strings)), Some(data)) = (string_data, data.as_object_mut()) {
            for (key, value) in strings {
                let text = value
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| value.to_string());
                let encoded = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
                data.insert(key, Value::from(encoded));
            }
        }
    }
    std::borrow::Cow::Owned(owned)
}

/// A path being walked, kept both for people and as a JSON pointer.
#[derive(Default)]
struct Path<'a> {
    segments: Vec<Segment<'a>>,
}

/// Segments borrow from the desired object: a walk that finds no difference allocates nothing.
enum Segment<'a> {
    Key(&'a str),
    Index(usize),
    Keyed {
        index: usize,
        key: &'static str,
        value: IdentityRef<'a>,
    },
}

impl<'a> Path<'a> {
    fn push_key(&mut self, key: &'a str) {
        self.segments.push(Segment::Key(key));
    }
    fn pop(&mut self) {
        self.segments.pop();
    }
    fn last_key(&self) -> Option<&str> {
        match self.segments.last() {
            Some(Segment::Key(k)) => Some(k),
            _ => None,
        }
    }
    fn parent_key(&self) -> Option<&str> {
        match self
            .segments
            .len()
            .checked_sub(2)
            .map(|i| &self.segments[i])
        {
            Some(Segment::Key(k)) => Some(k),
            _ => None,
        }
    }
    fn human(&self) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Key(k) => {
                    let plain = !k.is_empty()
                        && k.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    if plain {
                        if !out.is_empty() {
                            out.push('.');
                        }
                        out.push_str(k);
                    } else {
                        let _ = write!(out, "[{}]", Value::from(*k));
                    }
                }
                Segment::Index(i) => {
                    let _ = write!(out, "[{i}]");
                }
                Segment::Keyed { key, value, .. } => {
                    let _ = write!(out, "[{key}={}]", value.value_text());
                }
            }
        }
        out
    }
    fn pointer(&self) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            out.push('/');
            match segment {
                Segment::Key(k) => out.push_str(&k.replace('~', "~0").replace('/', "~1")),
                Segment::Index(i) | Segment::Keyed { index: i, .. } => {
                    let _ = write!(out, "{i}");
                }
            }
        }
        out
    }
}

/// `null`, `{}` and `[]`: what the API server treats as absent, and Git declares nothing with.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

fn walk<'a>(
    desired: &'a Value,
    live: Option<&Value>,
    at: &mut Path<'a>,
    diffs: &mut Vec<FieldDiff>,
) {
    // `null`, `{}` and `[]` declare nothing: the API server drops them, so there is nothing to hold
    // the cluster to.
    if is_empty(desired) {
        return;
    }
    match desired {
        Value::Object(map) => {
            let Some(live_map) = live.and_then(Value::as_object) else {
                record(desired, live, at, diffs);
                return;
            };
            for (key, value) in map {
                at.push_key(key);
                walk(value, live_map.get(key), at, diffs);
                at.pop();
            }
        }
        Value::Array(items) => {
            let Some(live_items) = live.and_then(Value::as_array) else {
                record(desired, live, at, diffs);
                return;
            };
            match merge_key(at.last_key(), items.iter()) {
                Some(key) => walk_keyed(items, live_items, key, at, diffs),
                None => {
                    if items.len() != live_items.len() {
                        record(desired, live, at, diffs);
                        return;
                    }
                    for (index, (item, live_item)) in items.iter().zip(live_items).enumerate() {
                        at.segments.push(Segment::Index(index));
                        walk(item, Some(live_item), at, diffs);
                        at.pop();
                    }
                }
            }
        }
        scalar => {
            let equal = live.is_some_and(|live| scalars_equal(scalar, live, at));
            if !equal {
                record(desired, live, at, diffs);
            }
        }
    }
}

fn walk_keyed<'a>(
    items: &'a [Value],
    live_items: &[Value],
    key: MergeKey,
    at: &mut Path<'a>,
    diffs: &mut Vec<FieldDiff>,
) {
    for (index, item) in items.iter().enumerate() {
        let identity = key.identity_ref(item);
        let live_item = live_items.iter().find(|l| key.identity_ref(l) == identity);
        at.segments.push(Segment::Keyed {
            index,
            key: key.field,
            value: identity,
        });
        match live_item {
            Some(live_item) => walk(item, Some(live_item), at, diffs),
            None => record(item, None, at, diffs),
        }
        at.pop();
    }
}

fn record(desired: &Value, live: Option<&Value>, at: &Path, diffs: &mut Vec<FieldDiff>) {
    diffs.push(FieldDiff {
        path: at.human(),
        pointer: at.pointer(),
        desired: desired.clone(),
        live: live.cloned(),
        duplicates: None,
    });
}

/// Every merge key held by two or more entries of a live list, in the keyed lists Git declares.
///
/// The API server stores such lists when they come through an update or a JSON patch (it only
/// warns "hides previous definition"), the workload then sees the last entry, and matching by key
/// sees only the first: [`compare`] alone calls the list in sync. Each finding names the entry
/// (`spec.template.spec.containers[name=web].env[name=DB_HOST]`), with the whole list as Git
/// declares it and as the cluster holds it, and the number of entries in
/// [`FieldDiff::duplicates`].
pub fn duplicate_keys(desired: &Value, live: &Value) -> Vec<FieldDiff> {
    let desired = normalize_desired(desired);
    let mut found = Vec::new();
    let (Some(desired_map), Some(live_map)) = (desired.as_object(), live.as_object()) else {
        return found;
    };
    let mut at = Path::default();
    for (key, value) in desired_map {
        if matches!(key.as_str(), "apiVersion" | "kind" | "status" | "metadata") {
            continue;
        }
        at.push_key(key);
        walk_duplicates(value, live_map.get(key), &mut at, &mut found);
        at.pop();
    }
    found
}

fn walk_duplicates<'a>(
    desired: &'a Value,
    live: Option<&Value>,
    at: &mut Path<'a>,
    found: &mut Vec<FieldDiff>,
) {
    match (desired, live) {
        (Value::Object(map), Some(Value::Object(live_map))) => {
            for (key, value) in map {
                at.push_key(key);
                walk_duplicates(value, live_map.get(key), at, found);
                at.pop();
            }
        }
        (Value::Array(items), Some(Value::Array(live_items))) => {
            let Some(key) = merge_key(at.last_key(), items.iter()) else {
                if items.len() == live_items.len() {
                    for (index, (item, live_item)) in items.iter().zip(live_items).enumerate() {
                        at.segments.push(Segment::Index(index));
                        walk_duplicates(item, Some(live_item), at, found);
                        at.pop();
                    }
                }
                return;
            };
            let mut reported: Vec<IdentityRef<'_>> = Vec::new();
            for (position, entry) in live_items.iter().enumerate() {
                if entry.get(key.field).is_none() {
                    continue;
                }
                let identity = key.identity_ref(entry);
                if reported.contains(&identity)
                    || live_items[..position]
                        .iter()
                        .all(|earlier| key.identity_ref(earlier) != identity)
                {
                    continue;
                }
                let count = live_items
                    .iter()
                    .filter(|other| key.identity_ref(other) == identity)
                    .count();
                found.push(FieldDiff {
                    path: format!("{}[{}={}]", at.human(), key.field, identity.value_text()),
                    pointer: at.pointer(),
                    desired: desired.clone(),
                    live: Some(Value::Array(live_items.clone())),
                    duplicates: Some(count),
                });
                reported.push(identity);
            }
            for (index, item) in items.iter().enumerate() {
                let identity = key.identity_ref(item);
                let Some(live_item) = live_items.iter().find(|l| key.identity_ref(l) == identity)
                else {
                    continue;
                };
                at.segments.push(Segment::Keyed {
                    index,
                    key: key.field,
                    value: identity,
                });
                walk_duplicates(item, Some(live_item), at, found);
                at.pop();
            }
        }
        _ => {}
    }
}

/// How the elements of a list are matched: by `field` (and, for ports, the protocol, TCP by
/// default). The webhook's rule 4 matches lists the same way, so it uses this too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MergeKey {
    /// The field that identifies an element (`name`, `containerPort`, `mountPath`, …).
    pub field: &'static str,
    /// Whether the protocol is part of the identity (ports).
    pub with_protocol: bool,
}

/// An element's identity, borrowed: [`MergeKey::identity`] without copying, for matching
/// elements (the hot part of comparing two objects). Equal exactly when the owned identities are.
#[derive(Debug, Clone, Copy)]
pub struct IdentityRef<'v> {
    value: Option<&'v Value>,
    protocol: &'v str,
}

impl IdentityRef<'_> {
    /// The key field's value as [`MergeKey::identity`] writes it.
    pub fn value_text(&self) -> std::borrow::Cow<'_, str> {
        match self.value {
            Some(Value::String(s)) => std::borrow::Cow::Borrowed(s),
            Some(other) => std::borrow::Cow::Owned(other.to_string()),
            None => std::borrow::Cow::Borrowed(""),
        }
    }
}

impl PartialEq for IdentityRef<'_> {
    fn eq(&self, other: &Self) -> bool {
        if self.protocol != other.protocol {
            return false;
        }
        match (self.value, other.value) {
            (Some(Value::String(a)), Some(Value::String(b))) => a == b,
            (None, None) => true,
            (Some(Value::Number(a)), Some(Value::Number(b))) => match (a.as_i64(), b.as_i64()) {
                (Some(a), Some(b)) => a == b,
                _ => a.to_string() == b.to_string(),
            },
            // A string against a number (`"80"` and `80`) or an absent field against `""`: rare,
            // compared as the owned identities would be.
            _ => self.value_text() == other.value_text(),
        }
    }
}

impl MergeKey {
    /// The borrowed identity of an element (see [`IdentityRef`]).
    pub fn identity_ref<'v>(&self, item: &'v Value) -> IdentityRef<'v> {
        let protocol = if self.with_protocol {
            item.get("protocol")
                .and_then(Value::as_str)
                .unwrap_or("TCP")
        } else {
            ""
        };
        IdentityRef {
            value: item.get(self.field),
            protocol,
        }
    }

    /// The identity of an element: the key field's value and the protocol (empty when unused).
    pub fn identity(&self, item: &Value) -> (String, String) {
        let value = match item.get(self.field) {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        };
        let protocol = if self.with_protocol {
            item.get("protocol")
                .and_then(Value::as_str)
                .unwrap_or("TCP")
                .to_owned()
        } else {
            String::new()
        };
        (value, protocol)
    }
}

/// The merge key of a list, from the field that holds it and its elements; `None` for lists
/// compared as wholes (or when an element lacks the key).
pub fn merge_key<'v>(
    list_field: Option<&str>,
    items: impl Iterator<Item = &'v Value> + Clone,
) -> Option<MergeKey> {
    let all_have = |field: &str| items.clone().all(|i| i.get(field).is_some());
    let key = |field: &'static str| MergeKey {
        field,
        with_protocol: false,
    };
    let chosen = match list_field? {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims"
        | "webhooks"
        | "versions" => key("name"),
        "volumeMounts" => key("mountPath"),
        "volumeDevices" => key("devicePath"),
        "hostAliases" => key("ip"),
        "ports" if all_have("containerPort") => MergeKey {
            field: "containerPort",
            with_protocol: true,
        },
        "ports" if all_have("port") => MergeKey {
            field: "port",
            with_protocol: true,
        },
        _ => return None,
    };
    all_have(chosen.field).then_some(chosen)
}

fn scalars_equal(desired: &Value, live: &Value, at: &Path) -> bool {
    if desired == live {
        return true;
    }
    let is_quantity = at.last_key() == Some("sizeLimit")
        || at.last_key() == Some("storage")
            && at
                .parent_key()
                .is_some_and(|p| QUANTITY_PARENTS.contains(&p))
        || at
            .parent_key()
            .is_some_and(|p| QUANTITY_PARENTS.contains(&p));
    if is_quantity {
        if let (Some(a), Some(b)) = (quantity_of(desired), quantity_of(live)) {
            return a == b;
        }
    }
    match (desired, live) {
        (Value::Number(a), Value::Number(b)) => match (a.as_i64(), b.as_i64()) {
            (Some(a), Some(b)) => a == b,
            _ => a.as_f64() == b.as_f64(),
        },
        // int-or-string: 8080 and "8080" name the same port.
        (Value::Number(n), Value::String(s)) | (Value::String(s), Value::Number(n)) => {
            n.as_i64().is_some_and(|n| s.parse::<i64>() == Ok(n))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The borrowed identity matches exactly when the owned one does, over values that meet in
    /// real lists: names, ports as numbers and as strings, absent fields, explicit protocols.
    #[test]
    fn borrowed_identities_match_like_owned_ones() {
        let items = [
            json!({"name": "web"}),
            json!({"name": "web", "image": "x"}),
            json!({"name": "db"}),
            json!({"name": ""}),
            json!({}),
            json!({"name": 80}),
            json!({"name": "80"}),
            json!({"name": 80.0}),
            json!({"name": -1}),
            json!({"name": "web", "protocol": "TCP"}),
            json!({"name": "web", "protocol": "UDP"}),
            json!({"name": 80, "protocol": "UDP"}),
            json!({"name": true}),
            json!({"name": null}),
        ];
        for with_protocol in [false, true] {
            let key = MergeKey {
                field: "name",
                with_protocol,
            };
            for a in &items {
                for b in &items {
                    assert_eq!(
                        key.identity_ref(a) == key.identity_ref(b),
                        key.identity(a) == key.identity(b),
                        "{a} vs {b} (protocol: {with_protocol})"
                    );
                }
                assert_eq!(key.identity_ref(a).value_text(), key.identity(a).0);
            }
        }
    }
    use serde_json::json;

    fn paths(diffs: &[FieldDiff]) -> Vec<&str> {
        diffs.iter().map(|d| d.path.as_str()).collect()
    }

    #[test]
    fn defaults_and_empties_are_not_differences() {
        let desired = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "labels": {}},
            "spec": {"selector": {"app": "s"}, "ports": [{"port": 80, "targetPort": "8080"}], "clusterIP": null}});
        let live = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "uid": "u", "resourceVersion": "9"},
            "spec": {"selector": {"app": "s"}, "ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080}],
                     "clusterIP": "10.0.0.1", "type": "ClusterIP"}, "status": {"loadBalancer": {}}});
        // clusterIP: null and labels: {} declare nothing, whatever the cluster holds.
        assert_eq!(compare(&desired, &live), vec![]);
    }

    #[test]
    fn quantities_compare_by_value() {
        let desired = json!({"spec": {"containers": [{"name": "a", "resources": {"limits": {"cpu": 0.5, "memory": "1Gi"}}}]}});
        let live = json!({"spec": {"containers": [{"name": "a", "resources": {"limits": {"cpu": "500m", "memory": "1024Mi"}}}]}});
        assert!(compare(&desired, &live).is_empty());
        let live = json!({"spec": {"containers": [{"name": "a", "resources": {"limits": {"cpu": "600m", "memory": "1024Mi"}}}]}});
        let diffs = compare(&desired, &live);
        assert_eq!(
            paths(&diffs),
            vec!["spec.containers[name=a].resources.limits.cpu"]
        );
        assert_eq!(diffs[0].pointer, "/spec/containers/0/resources/limits/cpu");
        assert_eq!(diffs[0].live, Some(json!("600m")));
    }

    #[test]
    fn keyed_lists_match_by_key_not_position() {
        let desired = json!({"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}, {"name": "side", "image": "s:1"}]}});
        let live = json!({"spec": {"containers": [{"name": "side", "image": "s:1"}, {"name": "web", "image": "nginx:1.26"}, {"name": "injected", "image": "x"}]}});
        let diffs = compare(&desired, &live);
        assert_eq!(paths(&diffs), vec!["spec.containers[name=web].image"]);
        assert_eq!(diffs[0].desired, json!("nginx:1.27"));
        assert_eq!(diffs[0].live, Some(json!("nginx:1.26")));
    }

    #[test]
    fn plain_lists_compare_as_wholes() {
        let desired = json!({"spec": {"args": ["a", "b"]}});
        assert!(compare(&desired, &json!({"spec": {"args": ["a", "b"]}})).is_empty());
        assert_eq!(
            paths(&compare(
                &desired,
                &json!({"spec": {"args": ["a", "b", "c"]}})
            )),
            vec!["spec.args"]
        );
        assert_eq!(
            paths(&compare(&desired, &json!({"spec": {"args": ["b", "a"]}}))),
            vec!["spec.args[0]", "spec.args[1]"]
        );
    }

    /// Issue 8: a second `DB_HOST` appended by hand with a JSON patch. The live object is the
    /// captured Deployment (`0006`) with that entry added as the API server stores it.
    #[test]
    fn a_duplicated_merge_key_in_a_live_list_is_named() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/fixtures/admission/0006-CREATE-Deployment-web.json"
        );
        let review: Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json");
        let mut live = review["request"]["object"].clone();
        let container = &mut live["spec"]["template"]["spec"]["containers"][0];
        let name = container["name"].as_str().expect("name").to_owned();
        let image = container["image"].clone();
        container["env"] = json!([{"name": "DB_HOST", "value": "db"}]);
        let desired = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": live["metadata"]["name"]},
            "spec": {"template": {"spec": {"containers": [{"name": name, "image": image,
                "env": [{"name": "DB_HOST", "value": "db"}]}]}}}});
        assert!(compare(&desired, &live).is_empty());
        assert!(duplicate_keys(&desired, &live).is_empty());

        live["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array_mut()
            .expect("env")
            .push(json!({"name": "DB_HOST", "value": "evil"}));
        // Matching by key sees the first entry only, so compare() alone says nothing.
        assert!(compare(&desired, &live).is_empty());
        let found = duplicate_keys(&desired, &live);
        assert_eq!(
            paths(&found),
            vec![format!(
                "spec.template.spec.containers[name={name}].env[name=DB_HOST]"
            )]
        );
        assert_eq!(found[0].duplicates, Some(2));
        assert_eq!(found[0].pointer, "/spec/template/spec/containers/0/env");
        assert_eq!(
            found[0].live,
            Some(json!([{"name": "DB_HOST", "value": "db"}, {"name": "DB_HOST", "value": "evil"}]))
        );
        // Ports are keyed by port and protocol: 80/TCP and 80/UDP are two keys, not one twice.
        let desired = json!({"spec": {"ports": [{"port": 80}]}});
        let live = json!({"spec": {"ports": [{"port": 80, "protocol": "TCP"}, {"port": 80, "protocol": "UDP"}]}});
        assert!(duplicate_keys(&desired, &live).is_empty());
        let live = json!({"spec": {"ports": [{"port": 80, "protocol": "TCP"}, {"port": 80}]}});
        assert_eq!(
            paths(&duplicate_keys(&desired, &live)),
            vec!["spec.ports[port=80]"]
        );
    }

    #[test]
    fn secret_string_data_is_data_in_the_cluster() {
        let desired = json!({"kind": "Secret", "metadata": {"name": "s"}, "stringData": {"password": "hunter2"}});
        let live = json!({"kind": "Secret", "metadata": {"name": "s"}, "data": {"password": "aHVudGVyMg=="}, "type": "Opaque"});
        assert!(compare(&desired, &live).is_empty());
    }

    #[test]
    fn annotation_keys_are_quoted_in_paths() {
        let desired = json!({"metadata": {"annotations": {"example.com/owner": "a"}}});
        let live = json!({"metadata": {"annotations": {"example.com/owner": "b"}}});
        let diffs = compare(&desired, &live);
        assert_eq!(
            paths(&diffs),
            vec!["metadata.annotations[\"example.com/owner\"]"]
        );
        assert_eq!(diffs[0].pointer, "/metadata/annotations/example.com~1owner");
    }
    /// The real API server's stored objects against what the client applied: every captured
    /// client-side apply carries the applied manifest in `last-applied-configuration`, and the
    /// server's defaulting and normalisation of it must not count as a difference.
    #[test]
    fn real_api_server_objects_equal_what_was_applied() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/fixtures/admission"
        );
        let mut checked = 0;
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("fixtures beside the checkout")
            .flatten()
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".json") || name.contains("-status") {
                continue;
            }
            let review: Value =
                serde_json::from_str(&std::fs::read_to_string(entry.path()).expect("read"))
                    .expect("json");
            let request = &review["request"];
            let manager = request["options"]["fieldManager"]
                .as_str()
                .unwrap_or_default();
            if manager != "kubectl-client-side-apply" {
                continue;
            }
            let object = &request["object"];
            let Some(applied) = object["metadata"]["annotations"]
                ["kubectl.kubernetes.io/last-applied-configuration"]
                .as_str()
            else {
                continue;
            };
            let desired: Value = serde_json::from_str(applied).expect("applied json");
            let diffs = compare(&desired, object);
            assert!(diffs.is_empty(), "{name}: {diffs:?}");

            // And a real change is found, named, with both values.
            if object["kind"] == "Deployment" {
                let mut changed = desired.clone();
                changed["spec"]["template"]["spec"]["containers"][0]["image"] =
                    json!("registry.example/other:9");
                let diffs = compare(&changed, object);
                assert_eq!(diffs.len(), 1, "{name}: {diffs:?}");
                let container = desired["spec"]["template"]["spec"]["containers"][0]["name"]
                    .as_str()
                    .expect("name");
                assert_eq!(
                    diffs[0].path,
                    format!("spec.template.spec.containers[name={container}].image")
                );
                assert_eq!(
                    diffs[0].live,
                    Some(object["spec"]["template"]["spec"]["containers"][0]["image"].clone())
                );
            }
            checked += 1;
        }
        assert!(checked >= 4, "only {checked} client-side applies found");
    }

    /// Server-side applied objects: the fields the `kubectl` manager owns (managedFields) are what
    /// was applied; rebuilt from the stored object with quantities and ports rewritten the way
    /// people write them in Git, they compare equal.
    #[test]
    fn real_server_side_applied_deployment_equals_git_spelling() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/fixtures/admission/0006-CREATE-Deployment-web.json"
        );
        let review: Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json");
        let live = &review["request"]["object"];
        let mut desired = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": live["metadata"]["name"], "namespace": live["metadata"]["namespace"],
                         "labels": live["metadata"]["labels"], "annotations": {}},
            "spec": {"replicas": live["spec"]["replicas"], "selector": live["spec"]["selector"],
                     "template": {"metadata": {"labels": live["spec"]["template"]["metadata"]["labels"]},
                                  "spec": {"containers": live["spec"]["template"]["spec"]["containers"].clone()}}},
            "status": {"replicas": 99}
        });
        // Strip what the server defaulted from the containers, as Git would not say it.
        for container in desired["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .expect("containers")
        {
            let map = container.as_object_mut().expect("container");
            for defaulted in [
                "terminationMessagePath",
                "terminationMessagePolicy",
                "imagePullPolicy",
                "resources",
            ] {
                map.remove(defaulted);
            }
            if let Some(ports) = map.get_mut("ports").and_then(Value::as_array_mut) {
                for port in ports {
                    port.as_object_mut().expect("port").remove("protocol");
                }
            }
        }
        assert_eq!(
            compare(&desired, live),
            vec![],
            "defaults, status and empty annotations are no drift"
        );
        desired["spec"]["replicas"] =
            json!(live["spec"]["replicas"].as_i64().expect("replicas") + 1);
        let diffs = compare(&desired, live);
        assert_eq!(paths(&diffs), vec!["spec.replicas"]);
    }
}
