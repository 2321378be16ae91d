//! The `scale` subresource of Deployments, StatefulSets and ReplicaSets.

use super::*;

/// Whether the test server serves a `scale` subresource for `resource`: the built-in workloads
/// that have one (ReplicationControllers and custom resources' scale are not modelled).
pub(super) fn has_scale(resource: &Resource) -> bool {
    resource.group == "apps"
        && matches!(
            resource.plural.as_str(),
            "deployments" | "statefulsets" | "replicasets"
        )
}

/// The `autoscaling/v1` Scale of a parent, as kube-apiserver serves it for the built-in kinds:
/// the parent's identity, its `spec.replicas` (1 when absent, the default this server does not
/// apply) and `status.replicas`, and the selector of `spec.selector.matchLabels` (sorted by key;
/// `matchExpressions` are not modelled).
pub(super) fn scale_of(parent: &Value) -> Value {
    let mut metadata = Map::new();
    for key in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(value) = parent["metadata"].get(key) {
            metadata.insert(key.to_owned(), value.clone());
        }
    }
    let mut labels: Vec<String> = parent["spec"]["selector"]["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    labels.sort();
    let mut status = json!({"replicas": parent["status"]["replicas"].as_i64().unwrap_or(0)});
    if !labels.is_empty() {
        status["selector"] = json!(labels.join(","));
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": metadata,
        "spec": {"replicas": parent["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": status,
    })
}

impl Shared {
    /// The `scale` subresource: GET answers the parent as a Scale; PUT and merge PATCH (what
    /// `kubectl scale` sends) set the parent's `spec.replicas` once the webhooks matching
    /// `<resource>/scale` allowed it, with an AdmissionReview shaped like kube-apiserver's
    /// (kind `autoscaling/v1` Scale, the parent's resource, subResource `scale`, Scales as object
    /// and oldObject). The webhooks are called without the store lock, since a webhook may read
    /// the parent back; the write then checks that the parent's resourceVersion is still the one
    /// read, and answers 409 like an update precondition when it is not.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn scale(
        &self,
        method: &Method,
        target: &Target,
        name: &str,
        content_type: &str,
        query: &HashMap<String, String>,
        body: &[u8],
        user: &User,
    ) -> Response {
        let key = Shared::key(target, name);
        let (parent, admission) = {
            let store = self.store.lock();
            let Some(parent) = store.objects.get(&key).cloned() else {
                return Shared::not_found(target, name);
            };
            let admission = Shared::admission(&store, target, Some(&parent));
            (parent, admission)
        };
        let old = scale_of(&parent);
        let requested = match method.as_str() {
            "GET" => return ok_json(StatusCode::OK, &old),
            "PUT" => match serde_json::from_slice::<Value>(body) {
                Ok(scale) => scale,
                Err(error) => return bad_request(&error),
            },
            "PATCH"
                if content_type.starts_with("application/merge-patch+json")
                    || content_type.starts_with("application/strategic-merge-patch+json") =>
            {
                match serde_json::from_slice::<Value>(body) {
                    Ok(patch) => {
                        let mut scale = old.clone();
                        merge(&mut scale, &patch);
                        scale
                    }
                    Err(error) => return bad_request(&error),
                }
            }
            "PATCH" => {
                return status(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "UnsupportedMediaType",
                    format!("the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/strategic-merge-patch+json (got {content_type:?})"),
                    json!({}),
                )
            }
            _ => {
                return status(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "MethodNotAllowed",
                    format!("the server does not allow this method on the requested resource ({method})"),
                    json!({}),
                )
            }
        };
        let conflict = || {
            status(
                StatusCode::CONFLICT,
                "Conflict",
                format!("Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again", target.resource.plural),
                json!({"name": name, "kind": target.resource.plural}),
            )
        };
        if let Some(rv) = requested["metadata"]["resourceVersion"].as_str() {
            if Some(rv) != old["metadata"]["resourceVersion"].as_str() {
                return conflict();
            }
        }
        let replicas = match requested["spec"]["replicas"].as_i64() {
            Some(replicas) if replicas >= 0 => replicas,
            _ => {
                let shown = requested["spec"]["replicas"].to_string();
                let message = format!("Invalid value: {shown}: must be greater than or equal to 0");
                return status(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Invalid",
                    format!("Scale.autoscaling \"{name}\" is invalid: spec.replicas: {message}"),
                    json!({"name": name, "group": "autoscaling", "kind": "Scale",
                        "causes": [{"reason": "FieldValueInvalid", "message": message, "field": "spec.replicas"}]}),
                );
            }
        };
        let mut new = old.clone();
        new["spec"]["replicas"] = json!(replicas);
        if let Some(admission) = &admission {
            if let Some(denied) = self.call_webhooks(
                admission,
                target,
                Some("scale"),
                "UPDATE",
                name,
                Some(&old),
                Some(&new),
                user,
                query,
            ) {
                return denied;
            }
        }
        let mut store = self.store.lock();
        let Some(current) = store.objects.get(&key).cloned() else {
            return Shared::not_found(target, name);
        };
        if current["metadata"]["resourceVersion"] != parent["metadata"]["resourceVersion"] {
            return conflict();
        }
        let mut object = current.clone();
        object["spec"]["replicas"] = json!(replicas);
        let changed = changed_fields(&current, &object);
        let manager = query
            .get("fieldManager")
            .cloned()
            .unwrap_or_else(|| "unknown".into());
        take_ownership(&mut object, &manager, "Update", &changed);
        let stored = self.commit(&mut store, key, &current, object, query);
        ok_json(StatusCode::OK, &scale_of(&stored))
    }
}
