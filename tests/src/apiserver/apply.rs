//! Server-side apply and field ownership (`managedFields`).

use super::*;

/// A field path as fieldsV1 keys: `["f:spec", "f:template", …, "k:{\"name\":\"web\"}", "f:image"]`.
pub(super) type FieldPath = Vec<String>;

#[derive(Debug, Clone)]
pub(super) struct ManagedEntry {
    pub(super) manager: String,
    pub(super) operation: String,
    pub(super) fields: Vec<FieldPath>,
    pub(super) api_version: String,
    pub(super) time: String,
}

/// The key fields of a list item, when the list is merged by key.
pub(super) fn item_key(item: &Value) -> Option<Value> {
    let map = item.as_object()?;
    for keys in [
        &["containerPort", "protocol"][..],
        &["port", "protocol"][..],
        &["name"][..],
        &["type"][..],
    ] {
        if keys
            .iter()
            .all(|k| map.contains_key(*k) || *k == "protocol")
            && map.contains_key(keys[0])
        {
            let mut key = Map::new();
            for k in keys {
                let value = map.get(*k).cloned().unwrap_or_else(|| Value::from("TCP"));
                key.insert((*k).to_owned(), value);
            }
            return Some(Value::Object(key));
        }
    }
    None
}

pub(super) fn keyed(list: &[Value]) -> Option<Vec<Value>> {
    list.iter().map(item_key).collect()
}

/// The leaf field paths an object sets (identity and bookkeeping left out).
pub(super) fn field_set(object: &Value, _create: bool) -> Vec<FieldPath> {
    let mut out = Vec::new();
    let Some(map) = object.as_object() else {
        return out;
    };
    for (key, value) in map {
        match key.as_str() {
            "apiVersion" | "kind" | "status" => {}
            "metadata" => {
                for (field, value) in value.as_object().into_iter().flatten() {
                    if matches!(
                        field.as_str(),
                        "name"
                            | "namespace"
                            | "uid"
                            | "resourceVersion"
                            | "generation"
                            | "creationTimestamp"
                            | "managedFields"
                    ) {
                        continue;
                    }
                    collect(
                        value,
                        vec!["f:metadata".into(), format!("f:{field}")],
                        &mut out,
                    );
                }
            }
            _ => collect(value, vec![format!("f:{key}")], &mut out),
        }
    }
    out
}

pub(super) fn collect(value: &Value, path: FieldPath, out: &mut Vec<FieldPath>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let mut p = path.clone();
                p.push(format!("f:{k}"));
                collect(v, p, out);
            }
        }
        Value::Array(items) if !items.is_empty() => match keyed(items) {
            Some(keys) => {
                for (item, key) in items.iter().zip(keys) {
                    let mut p = path.clone();
                    p.push(format!("k:{key}"));
                    out.push(p.clone());
                    collect_item(item, p, out);
                }
            }
            None => out.push(path),
        },
        _ => out.push(path),
    }
}

pub(super) fn collect_item(item: &Value, path: FieldPath, out: &mut Vec<FieldPath>) {
    for (k, v) in item.as_object().into_iter().flatten() {
        let mut p = path.clone();
        p.push(format!("f:{k}"));
        collect(v, p, out);
    }
}

pub(super) fn step<'a>(value: &'a Value, token: &str) -> Option<&'a Value> {
    if let Some(field) = token.strip_prefix("f:") {
        return value.get(field);
    }
    if let Some(key) = token.strip_prefix("k:") {
        let key: Value = serde_json::from_str(key).ok()?;
        return value
            .as_array()?
            .iter()
            .find(|item| item_key(item).as_ref() == Some(&key));
    }
    None
}

pub(super) fn value_at<'a>(object: &'a Value, path: &FieldPath) -> Option<&'a Value> {
    let mut at = object;
    for token in path {
        at = step(at, token)?;
    }
    Some(at)
}

pub(super) fn remove_at(object: &mut Value, path: &FieldPath) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut at = object;
    for token in parents {
        let next = if let Some(field) = token.strip_prefix("f:") {
            at.get_mut(field)
        } else if let Some(key) = token.strip_prefix("k:") {
            let key: Option<Value> = serde_json::from_str(key).ok();
            at.as_array_mut()
                .and_then(|items| items.iter_mut().find(|item| item_key(item) == key))
        } else {
            None
        };
        match next {
            Some(next) => at = next,
            None => return,
        }
    }
    if let Some(field) = last.strip_prefix("f:") {
        if let Some(map) = at.as_object_mut() {
            map.remove(field);
        }
    } else if let Some(key) = last.strip_prefix("k:") {
        let key: Option<Value> = serde_json::from_str(key).ok();
        if let Some(items) = at.as_array_mut() {
            items.retain(|item| item_key(item) != key);
        }
    }
}

pub(super) fn path_text(path: &FieldPath) -> String {
    let mut out = String::new();
    for token in path {
        if let Some(field) = token.strip_prefix("f:") {
            out.push('.');
            out.push_str(field);
        } else if let Some(key) = token.strip_prefix("k:") {
            out.push_str(&format!("[{key}]"));
        }
    }
    out
}

/// Merges an applied configuration into an object: maps field by field, keyed lists item by
/// item, anything else replaced.
pub(super) fn apply_merge(object: &mut Value, applied: &Value) {
    match (object, applied) {
        (Value::Object(target), Value::Object(source)) => {
            for (k, v) in source {
                match target.get_mut(k) {
                    Some(existing) if k != "managedFields" => apply_merge(existing, v),
                    _ => {
                        target.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Array(target), Value::Array(source)) => match (keyed(target), keyed(source)) {
            (Some(target_keys), Some(_)) if !target.is_empty() => {
                for item in source {
                    let key = item_key(item);
                    match target_keys.iter().position(|k| Some(k) == key.as_ref()) {
                        Some(i) => apply_merge(&mut target[i], item),
                        None => target.push(item.clone()),
                    }
                }
            }
            _ => *target = source.clone(),
        },
        (target, source) => *target = source.clone(),
    }
}

pub(super) fn changed_fields(old: &Value, new: &Value) -> Vec<FieldPath> {
    let old_fields = field_set(old, false);
    field_set(new, false)
        .into_iter()
        .filter(|p| !old_fields.contains(p) || value_at(old, p) != value_at(new, p))
        .collect()
}

pub(super) fn managed_entries(object: &Value) -> Vec<ManagedEntry> {
    let mut out = Vec::new();
    for entry in object["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let mut fields = Vec::new();
        flatten_fields(&entry["fieldsV1"], Vec::new(), &mut fields);
        out.push(ManagedEntry {
            manager: entry["manager"].as_str().unwrap_or_default().to_owned(),
            operation: entry["operation"].as_str().unwrap_or_default().to_owned(),
            fields,
            api_version: entry["apiVersion"].as_str().unwrap_or_default().to_owned(),
            time: entry["time"].as_str().unwrap_or_default().to_owned(),
        });
    }
    out
}

pub(super) fn flatten_fields(set: &Value, path: FieldPath, out: &mut Vec<FieldPath>) {
    let Some(map) = set.as_object() else {
        return;
    };
    if map.contains_key(".") && !path.is_empty() {
        out.push(path.clone());
    }
    if map.is_empty() && !path.is_empty() {
        out.push(path.clone());
    }
    for (k, v) in map {
        if k == "." {
            continue;
        }
        let mut p = path.clone();
        p.push(k.clone());
        flatten_fields(v, p, out);
    }
}

pub(super) fn fields_tree(paths: &[FieldPath]) -> Value {
    let mut root = Map::new();
    for path in paths {
        let mut at = &mut root;
        for (i, token) in path.iter().enumerate() {
            let entry = at
                .entry(token.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            let is_last = i + 1 == path.len();
            let Some(map) = entry.as_object_mut() else {
                break;
            };
            if is_last && token.starts_with("k:") {
                map.insert(".".into(), json!({}));
            }
            at = map;
        }
    }
    Value::Object(root)
}

pub(super) fn write_managed(object: &mut Value, entries: &[ManagedEntry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            json!({"manager": e.manager, "operation": e.operation, "apiVersion": e.api_version,
                "time": e.time, "fieldsType": "FieldsV1", "fieldsV1": fields_tree(&e.fields)})
        })
        .collect();
    object["metadata"]["managedFields"] = Value::Array(list);
}

pub(super) fn set_managed(
    object: &mut Value,
    manager: &str,
    operation: &str,
    fields: Vec<FieldPath>,
) {
    let api_version = object["apiVersion"].as_str().unwrap_or_default().to_owned();
    write_managed(
        object,
        &[ManagedEntry {
            manager: manager.to_owned(),
            operation: operation.to_owned(),
            fields,
            api_version,
            time: now(),
        }],
    );
}

/// An Update by `manager` takes the changed fields from everyone else.
pub(super) fn take_ownership(
    object: &mut Value,
    manager: &str,
    operation: &str,
    changed: &[FieldPath],
) {
    if changed.is_empty() {
        return;
    }
    let mut entries = managed_entries(object);
    for entry in &mut entries {
        entry.fields.retain(|f| !changed.contains(f));
    }
    let api_version = object["apiVersion"].as_str().unwrap_or_default().to_owned();
    match entries
        .iter_mut()
        .find(|e| e.manager == manager && e.operation == operation)
    {
        Some(entry) => {
            entry.fields.extend(changed.iter().cloned());
            entry.time = now();
        }
        None => entries.push(ManagedEntry {
            manager: manager.to_owned(),
            operation: operation.to_owned(),
            fields: changed.to_vec(),
            api_version,
            time: now(),
        }),
    }
    write_managed(object, &entries);
}

impl Shared {
    /// Server-side apply.
    pub(super) fn apply(
        &self,
        target: &Target,
        name: &str,
        query: &HashMap<String, String>,
        body: &[u8],
        user: &User,
    ) -> Response {
        let applied: Value = match gitops_shared::yaml::from_slice(body) {
            Ok(applied) => applied,
            Err(error) => return bad_request(&error),
        };
        let Some(manager) = query.get("fieldManager").filter(|m| !m.is_empty()).cloned() else {
            return status(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch".into(),
                json!({}),
            );
        };
        let force = query.get("force").is_some_and(|f| f == "true");
        let mut store = self.store.lock();
        let key = Shared::key(target, name);
        let old = store.objects.get(&key).cloned();
        let mut applied = applied;
        if let Some(map) = applied.as_object_mut() {
            map.remove("status");
        }
        let new_fields = field_set(&applied, false);
        let api_version = applied["apiVersion"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut object = match &old {
            None => {
                let mut object = applied.clone();
                set_identity(&mut object, target);
                if let Some(denied) = self.validate(target, name, &object, &store) {
                    return denied;
                }
                stamp_new(&mut object, &self.next_rv());
                set_managed(&mut object, &manager, "Apply", new_fields);
                post_process(&mut object, target);
                if let Some(denied) = self.admit(
                    &mut store,
                    target,
                    "CREATE",
                    name,
                    None,
                    Some(&object),
                    user,
                    query,
                ) {
                    return denied;
                }
                if !is_dry_run(query) {
                    store.objects.insert(key, object.clone());
                }
                return ok_json(StatusCode::CREATED, &object);
            }
            Some(old) => old.clone(),
        };
        // Conflicts: fields this apply sets that another manager owns with a different value.
        let mut conflicts: Vec<(String, String)> = Vec::new();
        let entries = managed_entries(&object);
        for entry in &entries {
            if entry.manager == manager && entry.operation == "Apply" {
                continue;
            }
            for path in new_fields.iter().filter(|p| entry.fields.contains(*p)) {
                if value_at(&object, path) != value_at(&applied, path) {
                    conflicts.push((entry.manager.clone(), path_text(path)));
                }
            }
        }
        if !conflicts.is_empty() && !force {
            let count = conflicts.len();
            let message = if count == 1 {
                format!(
                    "Apply failed with 1 conflict: conflict with \"{}\" using {api_version}: {}",
                    conflicts[0].0, conflicts[0].1
                )
            } else {
                let lines: Vec<String> = conflicts
                    .iter()
                    .map(|(m, p)| format!("- conflict with \"{m}\": {p}"))
                    .collect();
                format!("Apply failed with {count} conflicts: conflicts with other managers using {api_version}:\n{}", lines.join("\n"))
            };
            let causes: Vec<Value> = conflicts
                .iter()
                .map(|(m, p)| json!({"reason": "FieldManagerConflict", "message": format!("conflict with \"{m}\" using {api_version}"), "field": p}))
                .collect();
            return status(
                StatusCode::CONFLICT,
                "Conflict",
                message,
                json!({"name": name, "group": target.resource.group, "kind": target.resource.plural, "causes": causes}),
            );
        }
        // Fields this manager applied before and no longer applies go, unless someone else owns them.
        let previous: Vec<Vec<String>> = entries
            .iter()
            .find(|e| e.manager == manager && e.operation == "Apply")
            .map(|e| e.fields.clone())
            .unwrap_or_default();
        for path in previous.iter().filter(|p| !new_fields.contains(*p)) {
            let owned_elsewhere = entries.iter().any(|e| {
                !(e.manager == manager && e.operation == "Apply") && e.fields.contains(path)
            });
            if !owned_elsewhere {
                remove_at(&mut object, path);
            }
        }
        let old = object.clone();
        apply_merge(&mut object, &applied);
        if let Some(denied) = self.validate(target, name, &object, &store) {
            return denied;
        }
        // Ownership: this manager owns what it applied; forced fields leave their old owners.
        let mut entries = entries;
        for entry in &mut entries {
            if !(entry.manager == manager && entry.operation == "Apply") && force {
                let taken: Vec<Vec<String>> = conflicts
                    .iter()
                    .filter(|(m, _)| *m == entry.manager)
                    .filter_map(|(_, p)| new_fields.iter().find(|f| path_text(f) == *p).cloned())
                    .collect();
                entry.fields.retain(|f| !taken.contains(f));
            }
        }
        entries.retain(|e| !(e.manager == manager && e.operation == "Apply"));
        entries.push(ManagedEntry {
            manager: manager.clone(),
            operation: "Apply".into(),
            fields: new_fields,
            api_version: api_version.clone(),
            time: now(),
        });
        write_managed(&mut object, &entries);
        let old_stored = store.objects.get(&key).cloned().unwrap_or(old);
        if let Some(denied) = self.admit(
            &mut store,
            target,
            "UPDATE",
            name,
            Some(&old_stored),
            Some(&object),
            user,
            query,
        ) {
            return denied;
        }
        let response = self.commit(&mut store, key, &old_stored, object, query);
        ok_json(StatusCode::OK, &response)
    }
}
