//! Routing: a request's method and path to the handler, and the shapes of the answers.

use super::*;

/// An error answer in the shape of the real server's `Status`.
/// 400 for a body the server cannot read, with the parser's message, as kube-apiserver answers.
pub(super) fn bad_request(error: &dyn std::fmt::Display) -> Response {
    status(
        StatusCode::BAD_REQUEST,
        "BadRequest",
        error.to_string(),
        json!({}),
    )
}

pub(super) fn status(code: StatusCode, reason: &str, message: String, details: Value) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "details": details, "code": code.as_u16(),
    });
    (
        code,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

pub(super) fn ok_json(code: StatusCode, body: &Value) -> Response {
    typed_json(code, "application/json", body)
}

pub(super) fn typed_json(code: StatusCode, content_type: &'static str, body: &Value) -> Response {
    (code, [("content-type", content_type)], body.to_string()).into_response()
}

/// A parsed resource request.
#[derive(Debug, Clone)]
pub(super) struct Target {
    pub(super) resource: Resource,
    pub(super) namespace: String,
    pub(super) name: Option<String>,
    pub(super) subresource: Option<String>,
}

pub(super) fn query_params(uri: &Uri) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for pair in uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(percent_decode(k), percent_decode(v));
    }
    out
}

pub(super) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(super) fn not_found_path() -> Response {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        "the server could not find the requested resource".into(),
        json!({}),
    )
}

pub(super) fn is_dry_run(query: &HashMap<String, String>) -> bool {
    query.get("dryRun").is_some_and(|d| d == "All")
}

impl Shared {
    pub(super) fn handle(
        &self,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> Response {
        let path = uri.path().trim_end_matches('/').to_owned();
        lock(&self.log.entries).push((
            method.to_string(),
            uri.path_and_query()
                .map(ToString::to_string)
                .unwrap_or_default(),
        ));
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        let Some(user) = self.users.0.get(token).cloned() else {
            return status(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "Unauthorized".into(),
                json!({}),
            );
        };
        tracing::debug!(%method, %path, user = %user.name, "request");
        let accept = headers
            .get("accept")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let aggregated = accept.contains("as=APIGroupDiscoveryList");
        match (method.as_str(), path.as_str()) {
            ("GET", "/version") => return ok_json(StatusCode::OK, &self.discovery["version.json"]),
            ("GET", "/api") if aggregated => {
                return typed_json(
                    StatusCode::OK,
                    AGGREGATED_DISCOVERY,
                    &self.discovery["api.aggregated-v2.json"],
                )
            }
            ("GET", "/api") => return ok_json(StatusCode::OK, &self.discovery["api.json"]),
            ("GET", "/apis") if aggregated => {
                return typed_json(
                    StatusCode::OK,
                    AGGREGATED_DISCOVERY,
                    &self.aggregated_apis(),
                )
            }
            ("GET", "/apis") => return ok_json(StatusCode::OK, &self.discovery["apis.json"]),
            ("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews") => {
                return ok_json(
                    StatusCode::CREATED,
                    &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview",
                        "metadata": {"creationTimestamp": null},
                        "status": {"userInfo": {"username": user.name, "groups": user.groups}}}),
                );
            }
            _ => {}
        }
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let (group, version, rest) = match segments.as_slice() {
            ["api", version, rest @ ..] => ("", *version, rest),
            ["apis", group, version, rest @ ..] => (*group, *version, rest),
            _ => return not_found_path(),
        };
        let served = Shared::served(&self.store.lock());
        if rest.is_empty() {
            if method != Method::GET {
                return not_found_path();
            }
            return self.resource_list(&served, group, version);
        }
        let find = |plural: &str| {
            served
                .iter()
                .find(|r| r.group == group && r.version == version && r.plural == plural)
                .cloned()
        };
        let target = match rest {
            ["namespaces", ns, plural, tail @ ..] if find(plural).is_some_and(|r| r.namespaced) => {
                Target {
                    resource: find(plural).unwrap_or_else(unreachable_resource),
                    namespace: (*ns).to_owned(),
                    name: tail.first().map(|s| (*s).to_owned()),
                    subresource: tail.get(1).map(|s| (*s).to_owned()),
                }
            }
            [plural, tail @ ..] => match find(plural) {
                Some(resource) => Target {
                    resource,
                    namespace: String::new(),
                    name: tail.first().map(|s| (*s).to_owned()),
                    subresource: tail.get(1).map(|s| (*s).to_owned()),
                },
                None => return not_found_path(),
            },
            [] => return not_found_path(),
        };
        if let Some(subresource) = target.subresource.clone() {
            if subresource == "scale" && has_scale(&target.resource) {
                if let Some(name) = target.name.clone() {
                    let content_type = headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    let query = query_params(&uri);
                    return self.scale(&method, &target, &name, content_type, &query, &body, &user);
                }
            }
            if let (true, "PATCH", Some(name)) = (
                subresource == "status",
                method.as_str(),
                target.name.clone(),
            ) {
                let query = query_params(&uri);
                return self.status_patch(&target, &name, &query, &body);
            }
            return status(
                StatusCode::NOT_FOUND,
                "NotFound",
                "of the subresources only scale (of deployments, statefulsets and replicasets) and status (merge patch) are modelled by the test API server".into(),
                json!({}),
            );
        }
        let query = query_params(&uri);
        let writes = !matches!(method.as_str(), "GET");
        if writes
            && !target.resource.namespaced
            && !user.groups.iter().any(|g| g == "system:masters")
        {
            let what = if target.resource.group.is_empty() {
                target.resource.plural.clone()
            } else {
                format!("{}.{}", target.resource.plural, target.resource.group)
            };
            return status(
                StatusCode::FORBIDDEN,
                "Forbidden",
                format!(
                    "{what} \"{}\" is forbidden: User \"{}\" cannot {} resource \"{}\" in API group \"{}\" at the cluster scope",
                    target.name.clone().unwrap_or_default(),
                    user.name,
                    method.as_str().to_lowercase(),
                    target.resource.plural,
                    target.resource.group
                ),
                json!({"name": target.name, "group": target.resource.group, "kind": target.resource.plural}),
            );
        }
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        match (method.as_str(), &target.name) {
            ("GET", Some(name)) => self.get(&target, name),
            ("GET", None) if query.get("watch").is_some_and(|w| w == "true" || w == "1") => {
                self.watch_request(&target, &query)
            }
            ("GET", None) => self.list(
                &target,
                query.get("labelSelector").map(String::as_str).unwrap_or_default(),
                accept.contains("as=PartialObjectMetadataList"),
            ),
            ("POST", None) => self.create(&target, &query, &body, &user),
            ("PUT", Some(name)) => self.update(&target, name, &query, &body, &user),
            ("PATCH", Some(name)) if content_type.starts_with("application/apply-patch") => {
                self.apply(&target, name, &query, &body, &user)
            }
            ("PATCH", Some(name))
                if content_type.starts_with("application/merge-patch+json")
                    || content_type.starts_with("application/strategic-merge-patch+json") =>
            {
                self.merge_patch(&target, name, &query, &body, &user)
            }
            ("PATCH", Some(_)) => status(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                format!("the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/apply-patch+yaml (got {content_type:?})"),
                json!({}),
            ),
            ("DELETE", Some(name)) => {
                // DeleteOptions in the body may ask for a dry run too (kube sends it there).
                let mut query = query;
                let options: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                if options["dryRun"]
                    .as_array()
                    .is_some_and(|d| d.iter().any(|v| v == "All"))
                {
                    query.insert("dryRun".to_owned(), "All".to_owned());
                }
                self.delete(&target, name, &query, &user)
            }
            _ => status(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                format!("the server does not allow this method on the requested resource ({method})"),
                json!({}),
            ),
        }
    }
}
