//! Which fields of an UPDATE changed without Git declaring them (rule 4).
//!
//! Both the old and the new object are stripped of everything Git declares (at the new commit and
//! at the old object's commit), of metadata bookkeeping and of provenance annotations; what is
//! left is the part only the cluster owns. If those remnants differ, someone changed a field that
//! no commit explains.

use serde_json::{Map, Value};

use gitops_shared::compare::{merge_key, IdentityRef, MergeKey};
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

/// One changed field that Git does not declare.
#[derive(Debug, Clone, PartialEq)]
pub struct UndeclaredChange {
    /// The field for people: `metadata.labels.tier`.
    pub path: String,
    /// Its value before; `None` when absent.
    pub old: Option<Value>,
    /// Its value after; `None` when removed.
    pub new: Option<Value>,
}

/// The fields that differ between `old` and `new` and that none of `declared` declares.
pub fn undeclared_changes(old: &Value, new: &Value, declared: &[&Value]) -> Vec<UndeclaredChange> {
    // The warm path (a sync where everything that changed is declared) is told apart without
    // copying anything.
    if nothing_undeclared(Some(old), Some(new), declared, Level::Top, None) {
        return Vec::new();
    }
    // Members equal on both sides cannot differ after pruning (pruning is the same function of
    // the same value and the same declaration on both sides), so they become `null` on both
    // sides before anything is copied further: the same keys in the same order, far less to copy.
    let (old, new) = without_common(old, new);
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

/// Where a walk is, for the members [`cluster_owned`] removes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Top,
    Metadata,
    Annotations,
    Other,
}

impl Level {
    /// Whether [`cluster_owned`] removes member `key` at this level.
    fn removes(self, key: &str) -> bool {
        match self {
            Level::Top => matches!(key, "status" | "apiVersion" | "kind"),
            Level::Metadata => BOOKKEEPING.contains(&key),
            Level::Annotations => {
                PROVENANCE_ANNOTATIONS.contains(&key)
                    || key == "kubectl.kubernetes.io/last-applied-configuration"
            }
            Level::Other => false,
        }
    }

    fn below(self, key: &str) -> Level {
        match (self, key) {
            (Level::Top, "metadata") => Level::Metadata,
            (Level::Metadata, "annotations") => Level::Annotations,
            _ => Level::Other,
        }
    }
}

/// True only when the full comparison would find no undeclared change, decided without copying:
/// a cheap, conservative look (the warm path of a sync, where everything that changed is
/// declared). Members equal on both sides prune alike; a member the first declaration that
/// reaches it drops (a scalar, a plain list, a type Git declares differently) is gone on both
/// sides. Anything else (a keyed list that changed, a member on one side only) answers false
/// and the full comparison decides.
fn nothing_undeclared(
    old: Option<&Value>,
    new: Option<&Value>,
    declared: &[&Value],
    level: Level,
    field: Option<&str>,
) -> bool {
    let equal = match (old, new) {
        (Some(a), Some(b)) => same(a, b),
        (a, b) => a == b,
    };
    if equal {
        return true;
    }
    if let (Some(Value::Object(a)), Some(Value::Object(b))) = (old, new) {
        // Pruning by a declaration that is not a map drops a map on both sides.
        if declared.iter().any(|d| !d.is_object()) {
            return true;
        }
        let mut below: Vec<&Value> = Vec::with_capacity(declared.len());
        let mut check = |key: &str, x: Option<&Value>, y: Option<&Value>| {
            if level.removes(key) {
                return true;
            }
            below.clear();
            below.extend(declared.iter().filter_map(|d| d.get(key)));
            nothing_undeclared(x, y, &below, level.below(key), Some(key))
        };
        // The API server writes both objects in the same member order, so the new side's
        // member is usually the next one: a look-up only when the orders part.
        let mut cursor = b.iter();
        let mut aligned = a.len() == b.len();
        for (key, x) in a {
            let y = match cursor.next() {
                Some((other, y)) if aligned && other == key => Some(y),
                _ => {
                    aligned = false;
                    b.get(key)
                }
            };
            if !check(key, Some(x), y) {
                return false;
            }
        }
        if !aligned {
            for (key, y) in b {
                if !a.contains_key(key) && !check(key, None, Some(y)) {
                    return false;
                }
            }
        }
        return true;
    }
    if let (Some(Value::Array(a)), Some(Value::Array(b)), Some(Value::Array(_))) =
        (old, new, declared.first())
    {
        return keyed_nothing_undeclared(a, b, declared, field);
    }
    // Not maps on both sides: fine only when the first declaration here drops both.
    let Some(first) = declared.first() else {
        return false;
    };
    let dropped = |live: Option<&Value>| match (live, first) {
        (None, _) => true,
        (Some(Value::Object(_)), Value::Object(_)) => false,
        (Some(Value::Array(items)), Value::Array(_)) => merge_key(field, items.iter()).is_none(),
        _ => true,
    };
    dropped(old) && dropped(new)
}

/// [`nothing_undeclared`] for two lists where the first declaration is a list too: keyed lists
/// whose items match one to one, by the same identity fields, each item with nothing undeclared.
fn keyed_nothing_undeclared(
    a: &[Value],
    b: &[Value],
    declared: &[&Value],
    field: Option<&str>,
) -> bool {
    // A later declaration that is not a list drops what the first left.
    if declared.iter().any(|d| !d.is_array()) {
        return true;
    }
    let (Some(key), Some(other)) = (merge_key(field, a.iter()), merge_key(field, b.iter())) else {
        // Lists without merge keys are declared as wholes: dropped, unless only one side is.
        return merge_key(field, a.iter()).is_none() && merge_key(field, b.iter()).is_none();
    };
    if key.field != other.field || key.with_protocol != other.with_protocol {
        return false;
    }
    let mut items: Vec<&Value> = Vec::with_capacity(declared.len());
    for item in a.iter().chain(b) {
        let identity = key.identity_ref(item);
        let (Some(x), Some(y)) = (find(a, &key, identity), find(b, &key, identity)) else {
            return false;
        };
        // Pruning puts the identity fields back as they are on each side.
        if x.get(key.field) != y.get(key.field) || x.get("protocol") != y.get("protocol") {
            return false;
        }
        items.clear();
        items.extend(
            declared
                .iter()
                .filter_map(|d| d.as_array().and_then(|list| find(list, &key, identity))),
        );
        if !nothing_undeclared(Some(x), Some(y), &items, Level::Other, None) {
            return false;
        }
    }
    true
}

/// Copies of `old` and `new` in which every object member holding the same value on both sides
/// is `null` on both sides. Keys and their order are kept on each side, so removing keys later
/// (which swaps with the last key) orders what is left as it would the full objects. Members
/// that are objects on both sides and differ are treated the same way, recursively; lists are
/// copied whole.
fn without_common(old: &Value, new: &Value) -> (Value, Value) {
    let (Value::Object(a), Value::Object(b)) = (old, new) else {
        return (old.clone(), new.clone());
    };
    let mut left = Map::new();
    // The new side of members that were split recursively (few: only differing objects).
    let mut split: Vec<(&str, Value)> = Vec::new();
    for (key, value) in a {
        let kept = match b.get(key) {
            Some(other) if value == other => Value::Null,
            Some(other @ Value::Object(_)) if value.is_object() => {
                let (mine, theirs) = without_common(value, other);
                split.push((key, theirs));
                mine
            }
            _ => value.clone(),
        };
        left.insert(key.clone(), kept);
    }
    let mut right = Map::new();
    for (key, value) in b {
        let kept = if let Some(at) = split.iter().position(|(k, _)| *k == key.as_str()) {
            split.swap_remove(at).1
        } else if a.get(key) == Some(value) {
            Value::Null
        } else {
            value.clone()
        };
        right.insert(key.clone(), kept);
    }
    (Value::Object(left), Value::Object(right))
}

/// The object without status, bookkeeping and provenance annotations.
fn cluster_owned(mut object: Value) -> Value {
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
                let identity = key.identity_ref(item);
                match desired_items
                    .iter()
                    .find(|d| key.identity_ref(d) == identity)
                {
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
            match merge_key(field, a.iter().chain(b.iter())) {
                Some(key) => {
                    let mut seen = Vec::new();
                    for item in a.iter().chain(b.iter()) {
                        let identity = key.identity(item);
                        if seen.contains(&identity) {
                            continue;
                        }
                        seen.push(identity.clone());
                        let len = at.len();
                        at.push_str(&format!("[{}={}]", key.field, identity.0));
                        let found = |list| find(list, &key, key.identity_ref(item));
                        let (old_item, new_item) = (found(a), found(b));
                        diff(old_item, new_item, at, None, out);
                        at.truncate(len);
                    }
                }
                None if !same_when_clean_lists(a, b) => record(old, new, at, out),
                None => {}
            }
        }
        (a, b) if a != b => record(a, b, at, out),
        _ => {}
    }
}

/// The first item of `list` with `identity`.
fn find<'v>(list: &'v [Value], key: &MergeKey, identity: IdentityRef<'_>) -> Option<&'v Value> {
    list.iter().find(|item| key.identity_ref(item) == identity)
}

/// `a == b`, walking maps in their member order first: the API server writes the old and the
/// new object in the same order, so this avoids a hashed look-up per member. When the orders
/// part, the maps are compared by look-up like `==` does.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            if x.len() != y.len() {
                return false;
            }
            for ((k, v), (l, w)) in x.iter().zip(y) {
                if k != l {
                    return x == y;
                }
                if !same(v, w) {
                    return false;
                }
            }
            true
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same(v, w))
        }
        _ => a == b,
    }
}

/// `clean(a) == clean(b)` without building either.
fn same_when_clean(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let members = |m: &Map<String, Value>| m.keys().filter(|k| *k != MARK).count();
            members(x) == members(y)
                && x.iter()
                    .filter(|(k, _)| *k != MARK)
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_when_clean(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => same_when_clean_lists(x, y),
        _ => a == b,
    }
}

fn same_when_clean_lists(a: &[Value], b: &[Value]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_when_clean(x, y))
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

#[cfg(test)]
#[path = "declared_reference.rs"]
mod reference;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A small deterministic generator (xorshift), so failures reproduce.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    fn base() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "uid": "u1", "resourceVersion": "7", "generation": 3,
                "labels": {"app": "web", "app.kubernetes.io/managed-by": "kubectl-gitops", "tier": "front"},
                "annotations": {"gitops.kubectl.io/revision": "abc", "kubectl.kubernetes.io/last-applied-configuration": "{}", "note": "x"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}, "annotations": {"restartedAt": "t0"}},
                    "spec": {"containers": [
                        {"name": "web", "image": "nginx:1.26", "args": ["-a", "-b"],
                         "ports": [{"containerPort": 8080, "protocol": "TCP"}, {"containerPort": 9090}],
                         "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                         "resources": {"requests": {"cpu": "100m"}, "limits": {"memory": "128Mi"}}},
                        {"name": "side", "image": "busybox", "volumeMounts": [{"mountPath": "/data", "name": "d"}]}],
                        "volumes": [{"name": "d", "emptyDir": {}}], "tolerations": [{"key": "k", "effect": "NoSchedule"}]}}},
            "status": {"replicas": 2, "conditions": [{"type": "Available", "status": "True"}]}})
    }

    fn paths(value: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        out.push(at.clone());
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    at.push(k.clone());
                    paths(v, at, out);
                    at.pop();
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    at.push(i.to_string());
                    paths(v, at, out);
                    at.pop();
                }
            }
            _ => {}
        }
    }

    fn at_mut<'v>(value: &'v mut Value, path: &[String]) -> Option<&'v mut Value> {
        path.iter().try_fold(value, |v, p| match v {
            Value::Object(map) => map.get_mut(p),
            Value::Array(items) => items.get_mut(p.parse::<usize>().ok()?),
            _ => None,
        })
    }

    /// Changes one random place of `value`: a new scalar, a removal, an added member or item, a
    /// change of type, a copy of another part, or the same members in reverse order.
    fn mutate(value: &mut Value, rng: &mut Rng) {
        let mut all = Vec::new();
        paths(value, &mut Vec::new(), &mut all);
        let path = all[rng.below(all.len())].clone();
        let scalars = [
            json!("nginx:1.27"),
            json!(3),
            json!("3"),
            json!(null),
            json!(true),
            json!("web"),
            json!({}),
            json!([]),
            json!({"x": 1}),
            json!(["-a"]),
        ];
        let choice = rng.below(6);
        if choice == 0 && !path.is_empty() {
            let (parent, last) = path.split_at(path.len() - 1);
            if let Some(parent) = at_mut(value, parent) {
                match parent {
                    Value::Object(map) => {
                        map.shift_remove(&last[0]);
                    }
                    Value::Array(items) => {
                        if let Ok(i) = last[0].parse::<usize>() {
                            items.remove(i);
                        }
                    }
                    _ => {}
                }
            }
            return;
        }
        let Some(target) = at_mut(value, &path) else {
            return;
        };
        match (choice, target) {
            (1, Value::Object(map)) => {
                let names = [
                    "name",
                    "image",
                    "tier",
                    "imagePullPolicy",
                    "protocol",
                    "containerPort",
                    "zz",
                ];
                map.insert(
                    names[rng.below(names.len())].to_owned(),
                    scalars[rng.below(scalars.len())].clone(),
                );
            }
            (2, Value::Array(items)) => {
                let item = items.first().cloned().unwrap_or(json!({"name": "new"}));
                items.push(item);
            }
            (3, Value::Array(items)) if items.len() > 1 => items.swap(0, 1),
            // The same members in another order (the fast paths walk members in order).
            (4, Value::Object(map)) if map.len() > 1 => {
                let members: Vec<(String, Value)> = std::mem::take(map).into_iter().rev().collect();
                map.extend(members);
            }
            (_, target) => *target = scalars[rng.below(scalars.len())].clone(),
        }
    }

    #[test]
    fn answers_exactly_as_the_reference_implementation() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut nonempty = 0;
        for round in 0..20_000 {
            let mut desired = base();
            for _ in 0..rng.below(3) {
                mutate(&mut desired, &mut rng);
            }
            // Git declares only part of what the cluster holds.
            if let Some(map) = desired.as_object_mut() {
                map.remove("status");
                if rng.below(2) == 0 {
                    if let Some(m) = map.get_mut("metadata").and_then(Value::as_object_mut) {
                        m.remove("annotations");
                    }
                }
            }
            let mut old = base();
            for _ in 0..rng.below(4) {
                mutate(&mut old, &mut rng);
            }
            let mut new = if rng.below(4) == 0 {
                base()
            } else {
                old.clone()
            };
            for _ in 0..1 + rng.below(4) {
                mutate(&mut new, &mut rng);
            }
            let mut other = desired.clone();
            mutate(&mut other, &mut rng);
            let declared: Vec<&Value> = match round % 3 {
                0 => vec![&desired],
                1 => vec![&desired, &other],
                _ => vec![],
            };
            let expected = reference::undeclared_changes(&old, &new, &declared);
            let got = undeclared_changes(&old, &new, &declared);
            assert_eq!(
                got, expected,
                "round {round}\nold {old}\nnew {new}\ndeclared {declared:?}"
            );
            nonempty += usize::from(!expected.is_empty());
        }
        // The generator does exercise changes, not only equal objects.
        assert!(nonempty > 5_000, "{nonempty}");
    }

    #[test]
    fn declared_and_bookkeeping_changes_do_not_count() {
        let old = json!({"metadata": {"name": "w", "resourceVersion": "1", "labels": {"app": "w"}},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "web", "image": "a", "imagePullPolicy": "Always"}]}}}});
        let new = json!({"metadata": {"name": "w", "resourceVersion": "2", "labels": {"app": "w"}},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "web", "image": "b", "imagePullPolicy": "Always"}]}}}});
        let git = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "b"}]}}}});
        assert!(undeclared_changes(&old, &new, &[&git]).is_empty());
    }

    #[test]
    fn defaults_inside_what_git_adds_come_with_it() {
        let old = json!({"spec": {"containers": [{"name": "web", "image": "a"}]}});
        let new = json!({"spec": {"containers": [{"name": "web", "image": "a",
            "ports": [{"containerPort": 80, "protocol": "TCP"}],
            "livenessProbe": {"httpGet": {"path": "/", "port": 80, "scheme": "HTTP"}, "periodSeconds": 10}}]}});
        let git = json!({"spec": {"containers": [{"name": "web", "image": "a", "ports": [{"containerPort": 80}],
            "livenessProbe": {"httpGet": {"path": "/", "port": 80}}}]}});
        assert_eq!(undeclared_changes(&old, &new, &[&git]), vec![]);
        // But a field added by hand inside a map Git declares is counted.
        let new = json!({"spec": {"containers": [{"name": "web", "image": "a", "imagePullPolicy": "Never"}]}});
        let changes = undeclared_changes(&old, &new, &[&git]);
        assert_eq!(changes[0].path, "spec.containers[name=web].imagePullPolicy");
    }

    #[test]
    fn undeclared_changes_are_named() {
        let old = json!({"metadata": {"labels": {"app": "w"}}, "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "a", "imagePullPolicy": "Always"}]}}}});
        let new = json!({"metadata": {"labels": {"app": "w", "tier": "x"}}, "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "a", "imagePullPolicy": "Never"}]}}}});
        let git = json!({"metadata": {"labels": {"app": "w"}}, "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "a"}]}}}});
        let changes = undeclared_changes(&old, &new, &[&git]);
        let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "metadata.labels.tier",
                "spec.template.spec.containers[name=web].imagePullPolicy"
            ]
        );
        assert_eq!(changes[0].new, Some(json!("x")));
        assert_eq!(changes[0].old, None);
    }
}
