//! Storage: objects in memory with the bookkeeping the real server adds; get, list, create,
//! update, merge patch and delete; label selectors.

use super::*;

pub(super) fn now() -> String {
    gitops_shared::timestamp::now_rfc3339()
}

pub(super) fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

pub(super) fn set_identity(object: &mut Value, target: &Target) {
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        if target.resource.namespaced {
            metadata.insert("namespace".into(), Value::from(target.namespace.as_str()));
        } else {
            metadata.remove("namespace");
        }
    }
}

pub(super) fn stamp_new(object: &mut Value, rv: &str) {
    let uid = format!(
        "{:08x}-0000-4000-8000-{:012x}",
        rv.parse::<u64>().unwrap_or(0),
        rv.parse::<u64>().unwrap_or(0)
    );
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.insert("uid".into(), Value::from(uid));
        metadata.insert("resourceVersion".into(), Value::from(rv));
        metadata.insert("creationTimestamp".into(), Value::from(now()));
        metadata.insert("generation".into(), Value::from(1));
    }
}

/// What the real server's controllers or registry strategies would add at once.
pub(super) fn post_process(object: &mut Value, target: &Target) {
    if target.resource.group == "apiextensions.k8s.io"
        && target.resource.kind == "CustomResourceDefinition"
    {
        let names = object["spec"]["names"].clone();
        object["status"] = json!({
            "acceptedNames": names,
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now()},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now()}
            ],
            "storedVersions": [object["spec"]["versions"][0]["name"].clone()],
        });
    }
    if target.resource.group.is_empty() && target.resource.kind == "Namespace" {
        object["status"] = json!({"phase": "Active"});
    }
    if target.resource.group.is_empty() && target.resource.kind == "Secret" {
        // As kube-apiserver stores a Secret: `stringData` is merged into `data`, base64-encoded.
        if let Some(Value::Object(strings)) = object
            .as_object_mut()
            .and_then(|map| map.remove("stringData"))
        {
            use base64::Engine as _;
            for (key, value) in strings {
                let text = value.as_str().map(str::to_owned).unwrap_or_default();
                object["data"][key] =
                    json!(base64::engine::general_purpose::STANDARD.encode(text.as_bytes()));
            }
        }
    }
}

pub(super) fn carry_bookkeeping(old: &Value, object: &mut Value) {
    for key in [
        "uid",
        "creationTimestamp",
        "generation",
        "resourceVersion",
        "managedFields",
    ] {
        object["metadata"][key] = old["metadata"][key].clone();
    }
    if object.get("status").is_none() {
        if let Some(status) = old.get("status") {
            object["status"] = status.clone();
        }
    }
}

pub(super) fn without_volatile(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.remove("resourceVersion");
        if let Some(Value::Array(entries)) = metadata.get_mut("managedFields") {
            for entry in entries {
                if let Some(entry) = entry.as_object_mut() {
                    entry.remove("time");
                }
            }
        }
    }
    object
}

/// RFC 7386 merge patch.
pub(super) fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(patch) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Some(map) = target.as_object_mut() {
                for (k, v) in patch {
                    if v.is_null() {
                        map.remove(k);
                    } else {
                        merge(map.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// One label selector requirement.
#[derive(Debug, Clone)]
pub(super) enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

impl Requirement {
    pub(super) fn matches(&self, labels: &Value) -> bool {
        let get = |k: &str| labels.get(k).and_then(Value::as_str);
        match self {
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Requirement::NotIn(k, vs) => !get(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
        }
    }
}

pub(super) fn parse_selector(text: &str) -> Result<Vec<Requirement>, String> {
    let mut out = Vec::new();
    // Split on commas outside parentheses.
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    for part in parts.into_iter().map(str::trim).filter(|p| !p.is_empty()) {
        let set = |rest: &str| -> Result<Vec<String>, String> {
            let inner = rest
                .trim()
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'));
            inner
                .map(|i| i.split(',').map(|v| v.trim().to_owned()).collect())
                .ok_or_else(|| format!("unable to parse requirement: {part}"))
        };
        let requirement = if let Some((k, v)) = part.split_once("!=") {
            Requirement::NotEquals(k.trim().into(), v.trim().into())
        } else if let Some((k, v)) = part.split_once("==") {
            Requirement::Equals(k.trim().into(), v.trim().into())
        } else if let Some((k, v)) = part.split_once('=') {
            Requirement::Equals(k.trim().into(), v.trim().into())
        } else if let Some((k, rest)) = part.split_once(" notin ") {
            Requirement::NotIn(k.trim().into(), set(rest)?)
        } else if let Some((k, rest)) = part.split_once(" in ") {
            Requirement::In(k.trim().into(), set(rest)?)
        } else if let Some(k) = part.strip_prefix('!') {
            Requirement::NotExists(k.trim().into())
        } else {
            Requirement::Exists(part.into())
        };
        out.push(requirement);
    }
    Ok(out)
}

impl Shared {
    pub(super) fn next_rv(&self) -> String {
        let rv = self
            .resource_version
            .fetch_add(1, Ordering::SeqCst)
            .to_string();
        // Watches wake and look (they wait for the store's lock, so they see this write).
        self.changed.send_modify(|n| *n += 1);
        rv
    }

    pub(super) fn insert_direct(
        &self,
        group: &str,
        plural: &str,
        namespace: &str,
        name: &str,
        mut object: Value,
    ) {
        stamp_new(&mut object, &self.next_rv());
        self.store.lock().objects.insert(
            (group.into(), plural.into(), namespace.into(), name.into()),
            object,
        );
    }

    pub(super) fn key(target: &Target, name: &str) -> (String, String, String, String) {
        (
            target.resource.group.clone(),
            target.resource.plural.clone(),
            target.namespace.clone(),
            name.to_owned(),
        )
    }

    pub(super) fn not_found(target: &Target, name: &str) -> Response {
        let what = if target.resource.group.is_empty() {
            target.resource.plural.clone()
        } else {
            format!("{}.{}", target.resource.plural, target.resource.group)
        };
        status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("{what} \"{name}\" not found"),
            json!({"name": name, "group": target.resource.group, "kind": target.resource.plural}),
        )
    }

    pub(super) fn get(&self, target: &Target, name: &str) -> Response {
        match self.store.lock().objects.get(&Shared::key(target, name)) {
            Some(object) => ok_json(StatusCode::OK, object),
            None => Shared::not_found(target, name),
        }
    }

    /// A LIST. `metadata_only` when the client asked for a `PartialObjectMetadataList` (kube's
    /// `list_metadata`): kube-apiserver then answers with each item's metadata only.
    pub(super) fn list(&self, target: &Target, selector: &str, metadata_only: bool) -> Response {
        let selector = match parse_selector(selector) {
            Ok(selector) => selector,
            Err(message) => {
                return status(StatusCode::BAD_REQUEST, "BadRequest", message, json!({}))
            }
        };
        let store = self.store.lock();
        let items: Vec<Value> = store
            .objects
            .iter()
            .filter(|((g, p, ns, _), _)| {
                *g == target.resource.group
                    && *p == target.resource.plural
                    && (target.namespace.is_empty() || *ns == target.namespace)
            })
            .filter(|(_, o)| selector.iter().all(|r| r.matches(&o["metadata"]["labels"])))
            .map(|(_, o)| {
                let mut item = o.clone();
                if is_builtin_group(&target.resource.group) {
                    // Lists of built-in kinds leave out each item's apiVersion and kind.
                    if let Some(map) = item.as_object_mut() {
                        map.remove("apiVersion");
                        map.remove("kind");
                    }
                }
                item
            })
            .collect();
        let api_version = if target.resource.group.is_empty() {
            target.resource.version.clone()
        } else {
            format!("{}/{}", target.resource.group, target.resource.version)
        };
        let rv = self.resource_version.load(Ordering::SeqCst).to_string();
        if metadata_only {
            let items: Vec<Value> = items
                .into_iter()
                .map(|o| json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]}))
                .collect();
            return typed_json(
                StatusCode::OK,
                "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
                &json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                    "metadata": {"resourceVersion": rv}, "items": items}),
            );
        }
        ok_json(
            StatusCode::OK,
            &json!({"kind": format!("{}List", target.resource.kind), "apiVersion": api_version,
                "metadata": {"resourceVersion": rv}, "items": items}),
        )
    }

    /// Checks what the real server checks (of what is modelled) before any write.
    pub(super) fn validate(
        &self,
        target: &Target,
        name: &str,
        object: &Value,
        store: &Store,
    ) -> Option<Response> {
        let kind = &target.resource.kind;
        let qualified = if target.resource.group.is_empty() {
            kind.clone()
        } else {
            format!("{kind}.{}", target.resource.group)
        };
        let invalid = |field: &str, message: String| {
            status(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid",
                format!("{qualified} \"{name}\" is invalid: {field}: {message}"),
                json!({"name": name, "group": target.resource.group, "kind": kind,
                    "causes": [{"reason": "FieldValueInvalid", "message": message, "field": field}]}),
            )
        };
        if !is_dns_subdomain(name) {
            return Some(invalid(
                "metadata.name",
                format!("Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"),
            ));
        }
        let workload = target.resource.group == "apps"
            && matches!(
                kind.as_str(),
                "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet"
            );
        if workload && object["spec"]["selector"].is_null() {
            return Some(invalid("spec.selector", "Required value".into()));
        }
        if target.resource.namespaced {
            let ns_key = (
                String::new(),
                "namespaces".to_owned(),
                String::new(),
                target.namespace.clone(),
            );
            if !store.objects.contains_key(&ns_key) {
                return Some(status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("namespaces \"{}\" not found", target.namespace),
                    json!({"name": target.namespace, "kind": "namespaces"}),
                ));
            }
        }
        None
    }

    pub(super) fn create(
        &self,
        target: &Target,
        query: &HashMap<String, String>,
        body: &[u8],
        user: &User,
    ) -> Response {
        let mut object: Value = match serde_json::from_slice(body) {
            Ok(object) => object,
            Err(error) => return bad_request(&error),
        };
        let mut name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        // Like the real server, the name is generated before admission: a validating webhook
        // sees it filled in, beside the generateName.
        if let (true, Some(prefix)) = (name.is_empty(), object["metadata"]["generateName"].as_str())
        {
            const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
            let mut n: usize = self.next_rv().parse().unwrap_or_default();
            let mut suffix = String::new();
            for _ in 0..5 {
                suffix.push(char::from(ALPHABET[n % ALPHABET.len()]));
                n = n / ALPHABET.len() + 7;
            }
            name = format!("{prefix}{suffix}");
            object["metadata"]["name"] = Value::from(name.as_str());
        }
        let mut store = self.store.lock();
        if let Some(denied) = self.validate(target, &name, &object, &store) {
            return denied;
        }
        let key = Shared::key(target, &name);
        if store.objects.contains_key(&key) {
            return status(
                StatusCode::CONFLICT,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", target.resource.plural),
                json!({"name": name, "kind": target.resource.plural}),
            );
        }
        set_identity(&mut object, target);
        let manager = query
            .get("fieldManager")
            .cloned()
            .unwrap_or_else(|| "unknown".into());
        let fields = field_set(&object, true);
        stamp_new(&mut object, &self.next_rv());
        set_managed(&mut object, &manager, "Update", fields);
        post_process(&mut object, target);
        if let Some(denied) = self.admit(
            &mut store,
            target,
            "CREATE",
            &name,
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
        ok_json(StatusCode::CREATED, &object)
    }

    pub(super) fn update(
        &self,
        target: &Target,
        name: &str,
        query: &HashMap<String, String>,
        body: &[u8],
        user: &User,
    ) -> Response {
        let mut object: Value = match serde_json::from_slice(body) {
            Ok(object) => object,
            Err(error) => return bad_request(&error),
        };
        let store = self.store.lock();
        let key = Shared::key(target, name);
        let Some(old) = store.objects.get(&key).cloned() else {
            return Shared::not_found(target, name);
        };
        if let Some(rv) = object["metadata"]["resourceVersion"].as_str() {
            if Some(rv) != old["metadata"]["resourceVersion"].as_str() {
                return status(
                    StatusCode::CONFLICT,
                    "Conflict",
                    format!("Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again", target.resource.plural),
                    json!({"name": name, "kind": target.resource.plural}),
                );
            }
        }
        if let Some(denied) = self.validate(target, name, &object, &store) {
            return denied;
        }
        set_identity(&mut object, target);
        let changed = changed_fields(&old, &object);
        carry_bookkeeping(&old, &mut object);
        self.finish_update(store, target, name, key, old, object, &changed, query, user)
    }

    pub(super) fn merge_patch(
        &self,
        target: &Target,
        name: &str,
        query: &HashMap<String, String>,
        body: &[u8],
        user: &User,
    ) -> Response {
        let patch: Value = match serde_json::from_slice(body) {
            Ok(patch) => patch,
            Err(error) => return bad_request(&error),
        };
        let store = self.store.lock();
        let key = Shared::key(target, name);
        let Some(old) = store.objects.get(&key).cloned() else {
            return Shared::not_found(target, name);
        };
        let mut object = old.clone();
        merge(&mut object, &patch);
        if let Some(denied) = self.validate(target, name, &object, &store) {
            return denied;
        }
        let changed = changed_fields(&old, &object);
        self.finish_update(store, target, name, key, old, object, &changed, query, user)
    }

    /// A merge patch of the `status` subresource: only `status` changes, as the kubelet and the
    /// Job controller write it. Not sent to admission: the webhook passes status writes anyway.
    pub(super) fn status_patch(
        &self,
        target: &Target,
        name: &str,
        query: &HashMap<String, String>,
        body: &[u8],
    ) -> Response {
        let patch: Value = match serde_json::from_slice(body) {
            Ok(patch) => patch,
            Err(error) => return bad_request(&error),
        };
        let mut store = self.store.lock();
        let key = Shared::key(target, name);
        let Some(old) = store.objects.get(&key).cloned() else {
            return Shared::not_found(target, name);
        };
        let mut object = old.clone();
        if let Some(status) = patch.get("status") {
            merge(&mut object, &json!({ "status": status }));
        }
        let response = self.commit(&mut store, key, &old, object, query);
        ok_json(StatusCode::OK, &response)
    }

    /// The end of an update by PUT or merge patch: the changed fields go to the request's field
    /// manager, admission decides, then the object is written.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn finish_update(
        &self,
        mut store: StoreGuard<'_>,
        target: &Target,
        name: &str,
        key: (String, String, String, String),
        old: Value,
        mut object: Value,
        changed: &[FieldPath],
        query: &HashMap<String, String>,
        user: &User,
    ) -> Response {
        let manager = query
            .get("fieldManager")
            .cloned()
            .unwrap_or_else(|| "unknown".into());
        take_ownership(&mut object, &manager, "Update", changed);
        if let Some(denied) = self.admit(
            &mut store,
            target,
            "UPDATE",
            name,
            Some(&old),
            Some(&object),
            user,
            query,
        ) {
            return denied;
        }
        let response = self.commit(&mut store, key, &old, object, query);
        ok_json(StatusCode::OK, &response)
    }

    /// Stores `object` as the new version of `old`, bumping resourceVersion (and generation when
    /// anything but metadata and status changed) only if something changed.
    pub(super) fn commit(
        &self,
        store: &mut Store,
        key: (String, String, String, String),
        old: &Value,
        mut object: Value,
        query: &HashMap<String, String>,
    ) -> Value {
        if without_volatile(old) == without_volatile(&object) {
            return old.clone();
        }
        let spec_changed = {
            let strip = |v: &Value| {
                let mut v = v.clone();
                if let Some(map) = v.as_object_mut() {
                    map.remove("metadata");
                    map.remove("status");
                }
                v
            };
            strip(old) != strip(&object)
        };
        object["metadata"]["resourceVersion"] = Value::from(self.next_rv());
        if spec_changed {
            let generation = old["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
            object["metadata"]["generation"] = Value::from(generation);
        }
        if !is_dry_run(query) {
            store.objects.insert(key, object.clone());
        }
        object
    }

    pub(super) fn delete(
        &self,
        target: &Target,
        name: &str,
        query: &HashMap<String, String>,
        user: &User,
    ) -> Response {
        let mut store = self.store.lock();
        let key = Shared::key(target, name);
        let Some(object) = store.objects.get(&key).cloned() else {
            return Shared::not_found(target, name);
        };
        if let Some(denied) = self.admit(
            &mut store,
            target,
            "DELETE",
            name,
            Some(&object),
            None,
            user,
            query,
        ) {
            return denied;
        }
        if !is_dry_run(query) {
            store.objects.remove(&key);
            if target.resource.group.is_empty() && target.resource.plural == "namespaces" {
                store.objects.retain(|(_, _, ns, _), _| ns != name);
            }
            self.changed.send_modify(|n| *n += 1);
        }
        ok_json(StatusCode::OK, &object)
    }
}
