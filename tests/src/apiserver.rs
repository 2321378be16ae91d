//! A test Kubernetes API server, for running the e2e suite without a cluster.
//!
//! It serves the discovery documents captured from a real kube-apiserver v1.36
//! (`../shared/fixtures/discovery`) and keeps objects in memory with `uid`, `resourceVersion`,
//! `generation`, `creationTimestamp` and `managedFields`. It speaks plain HTTP on 127.0.0.1.
//!
//! What it models, the way the real server does it:
//! - discovery: aggregated v2 (`/api`, `/apis` with the `as=APIGroupDiscoveryList` Accept header),
//!   legacy `/api`, `/apis`, and per group-version resource lists; served CustomResourceDefinitions
//!   add their resources; custom resources of a group no stored CRD serves are 404;
//! - get, list (label selectors `=`, `==`, `!=`, `in`, `notin`, exists, `!`-not-exists), create
//!   (POST), update (PUT, with resourceVersion preconditions), delete (a Namespace takes its objects
//!   with it), merge patch (`application/merge-patch+json`; strategic merge patch is treated as a
//!   merge patch), and server-side apply (`application/apply-patch+yaml` with `fieldManager` and
//!   `force`): field ownership per manager in `managedFields`, conflicts with other managers that
//!   own a field with a different value answered 409 with the real message shape, fields a manager
//!   stops applying removed when nobody else owns them, no write (same resourceVersion) when an
//!   apply changes nothing; `dryRun=All` on every write;
//! - namespaced objects need their Namespace to exist (404 otherwise);
//! - validation: `metadata.name` must be an RFC 1123 subdomain, a Deployment, ReplicaSet,
//!   StatefulSet or DaemonSet needs `spec.selector` — both 422 Invalid with the real messages;
//! - authentication by bearer token (see [`Users`]); an unknown token gets 401; authorization is
//!   two roles: members of `system:masters` may do anything, everyone else may not write
//!   cluster-scoped objects (403), which stands in for RBAC's `edit`;
//! - CustomResourceDefinitions become Established at once.
//! - SelfSubjectReview (`POST /apis/authentication.k8s.io/v1/selfsubjectreviews`);
//! - validating admission webhooks registered by URL (see [`crate::admission`]): for every CREATE,
//!   UPDATE (apply, merge patch, update) and DELETE that a stored ValidatingWebhookConfiguration's
//!   rules, namespaceSelector and objectSelector match, an AdmissionReview v1 (object, oldObject,
//!   userInfo, operation, dryRun, options with the field manager) is posted to
//!   `clientConfig.url` over HTTPS trusting `caBundle` (plain `http://` is accepted too, which the
//!   real server refuses); a denial becomes `admission webhook "<name>" denied the request: …`
//!   with the webhook's code (at least 400), a failed call a 500 unless `failurePolicy: Ignore`.
//! - the `scale` subresource of Deployments, StatefulSets and ReplicaSets (listed in the group's
//!   resource list as `<plural>/scale`, kind `autoscaling/v1` Scale, as `kubectl scale` looks it
//!   up): GET answers the parent as a Scale; PUT and merge patch (what `kubectl scale` sends)
//!   set the parent's `spec.replicas`, after the webhooks whose rules match `<plural>/scale`,
//!   `*/scale` or `*/*` (not `*`) allowed an AdmissionReview shaped like the captured one
//!   (`../shared/fixtures/admission/0076-UPDATE-Scale-web-scale.json`: kind Scale, the parent's
//!   resource, subResource `scale`, Scales as object and oldObject). Those webhooks are called
//!   without the store locked, so a webhook may read the parent back; the write then needs the
//!   parent's resourceVersion to be the one read (409 otherwise), and negative replicas are 422.
//!
//! What it does not model: controllers (no Deployment ever gets a status, no Pod is created, no
//! Service gets a clusterIP), defaulting (objects are stored as sent), schema validation beyond the
//! checks above, mutating webhooks, admission policies, webhooks referenced by `service`,
//! `matchConditions`, `matchPolicy` (version conversion), webhook calls in parallel (they run one
//! after another, and for every write but scale with the store locked, so a webhook must not call
//! back into this server then), RBAC objects (roles are not evaluated), watches, field selectors,
//! pagination, other subresources (status; scale of ReplicationControllers and of custom
//! resources; a Scale's selector from `matchExpressions`; defaulting of an absent
//! `spec.replicas`, shown as 1), finalizers and graceful deletion, JSON patch, protobuf, TLS,
//! structured-merge-diff's schema (all lists are atomic except lists of objects with a `name`
//! key, and ports keyed by `containerPort`/`port` and `protocol`, which are merged by key).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use crate::admission::{call, review, rules_match, selector_matches, Attributes, CallError};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/fixtures/discovery"
);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A discovery fixture could not be read.
    #[error("cannot read discovery fixture {file}")]
    Fixture {
        /// The file.
        file: String,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// A discovery fixture is not JSON.
    #[error("discovery fixture {file} is not JSON")]
    FixtureJson {
        /// The file.
        file: String,
        /// What went wrong.
        #[source]
        source: serde_json::Error,
    },
    /// The listener could not be bound.
    #[error("cannot listen on 127.0.0.1")]
    Bind(#[source] std::io::Error),
    /// The server thread could not be started.
    #[error("cannot start the server thread")]
    Thread(#[source] std::io::Error),
}

/// A user the server authenticates.
#[derive(Debug, Clone)]
pub struct User {
    /// Username.
    pub name: String,
    /// Groups.
    pub groups: Vec<String>,
}

/// Bearer tokens and whom they authenticate.
#[derive(Debug, Clone)]
pub struct Users(pub HashMap<String, User>);

impl Default for Users {
    /// `admin-token` → admin (system:masters); `alice-token` → alice (group developers, standing in
    /// for RBAC `edit`); `breakglass-token` → breakglass (group `gitops:break-glass`, with `edit`
    /// like alice); `controller-token` → the kube-system deployment controller;
    /// `reader-token` → the gitops webhook's service account, which reads scale parents.
    fn default() -> Users {
        let mut users = HashMap::new();
        let mut add = |token: &str, name: &str, groups: &[&str]| {
            users.insert(
                token.to_owned(),
                User {
                    name: name.to_owned(),
                    groups: groups.iter().map(|g| (*g).to_owned()).collect(),
                },
            );
        };
        add(
            "admin-token",
            "admin",
            &["system:masters", "system:authenticated"],
        );
        add(
            "alice-token",
            "alice",
            &["developers", "system:authenticated"],
        );
        add(
            "breakglass-token",
            "breakglass",
            &["gitops:break-glass", "system:authenticated"],
        );
        add(
            "controller-token",
            "system:serviceaccount:kube-system:deployment-controller",
            &[
                "system:serviceaccounts",
                "system:serviceaccounts:kube-system",
                "system:authenticated",
            ],
        );
        add(
            "reader-token",
            "system:serviceaccount:gitops-webhook:gitops-webhook",
            &[
                "system:serviceaccounts",
                "system:serviceaccounts:gitops-webhook",
                "system:authenticated",
            ],
        );
        Users(users)
    }
}

/// One served resource.
#[derive(Debug, Clone)]
struct Resource {
    group: String,
    version: String,
    plural: String,
    kind: String,
    namespaced: bool,
}

/// Objects keyed by (group, plural, namespace, name).
type ObjectMap = BTreeMap<(String, String, String, String), Value>;

struct Store {
    builtin: Vec<Resource>,
    objects: ObjectMap,
}

/// A copy of what admission reads from the store, so webhooks can be called without its lock.
struct Admission {
    namespace_labels: Value,
    configurations: Vec<Value>,
}

/// Counts of requests by method, for assertions such as "a no-op sync sends no PATCH".
#[derive(Debug, Default)]
pub struct RequestLog {
    entries: Mutex<Vec<(String, String)>>,
    admissions: Mutex<Vec<Value>>,
}

impl RequestLog {
    /// How many requests of `method` were served.
    pub fn count(&self, method: &str) -> usize {
        lock(&self.entries)
            .iter()
            .filter(|(m, _)| m == method)
            .count()
    }
    /// Every request so far: (method, path and query).
    pub fn all(&self) -> Vec<(String, String)> {
        lock(&self.entries).clone()
    }
    /// Forgets what was logged.
    pub fn clear(&self) {
        lock(&self.entries).clear();
        lock(&self.admissions).clear();
    }

    /// Every AdmissionReview sent to a webhook so far.
    pub fn admission_reviews(&self) -> Vec<Value> {
        lock(&self.admissions).clone()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct Shared {
    store: Mutex<Store>,
    users: Users,
    log: Arc<RequestLog>,
    discovery: BTreeMap<&'static str, Value>,
    resource_version: AtomicU64,
}

/// A running test API server.
pub struct TestApiServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestApiServer {
    /// Starts a server on a free port of 127.0.0.1, in its own thread.
    pub fn start() -> Result<TestApiServer, ServerError> {
        let mut discovery = BTreeMap::new();
        for file in [
            "api.json",
            "apis.json",
            "api.aggregated-v2.json",
            "apis.aggregated-v2.json",
            "version.json",
        ] {
            let path = format!("{FIXTURES}/{file}");
            let text = std::fs::read_to_string(&path).map_err(|source| ServerError::Fixture {
                file: path.clone(),
                source,
            })?;
            let doc: Value =
                serde_json::from_str(&text).map_err(|source| ServerError::FixtureJson {
                    file: path.clone(),
                    source,
                })?;
            discovery.insert(file, doc);
        }
        let mut builtin = Vec::new();
        for file in ["api.aggregated-v2.json", "apis.aggregated-v2.json"] {
            builtin.extend(resources_of_aggregated(&discovery[file]));
        }
        let shared = Arc::new(Shared {
            store: Mutex::new(Store {
                builtin,
                objects: BTreeMap::new(),
            }),
            users: Users::default(),
            log: Arc::new(RequestLog::default()),
            discovery,
            resource_version: AtomicU64::new(1000),
        });
        // Namespaces every cluster has.
        for ns in ["default", "kube-system", "kube-public"] {
            let object = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            shared.insert_direct("", "namespaces", "", ns, object);
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(ServerError::Bind)?;
        listener.set_nonblocking(true).map_err(ServerError::Bind)?;
        let addr = listener.local_addr().map_err(ServerError::Bind)?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("test-apiserver".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        tracing::error!(%error, "cannot start the test API server runtime");
                        return;
                    }
                };
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    let app = axum::Router::new().fallback(
                        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                            let shared = app_shared.clone();
                            // Off the runtime's workers: a handler may wait for the store or for
                            // a webhook that calls back into this server.
                            async move {
                                tokio::task::spawn_blocking(move || {
                                    shared.handle(method, uri, headers, body)
                                })
                                .await
                                .unwrap_or_else(|error| {
                                    status(
                                        StatusCode::INTERNAL_SERVER_ERROR,
                                        "InternalError",
                                        format!("the handler failed: {error}"),
                                        json!({}),
                                    )
                                })
                            }
                        },
                    );
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async {
                            let _ = stopped.await;
                        })
                        .await;
                });
            })
            .map_err(ServerError::Thread)?;
        Ok(TestApiServer {
            addr,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The request log.
    pub fn requests(&self) -> Arc<RequestLog> {
        self.shared.log.clone()
    }

    /// A kubeconfig for this server authenticating with `token`, with `namespace` as the
    /// context's namespace.
    pub fn kubeconfig(&self, token: &str, namespace: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n    namespace: {namespace}\ncurrent-context: test\nusers:\n- name: test\n  user:\n    token: {token}\n",
            self.url()
        )
    }

    /// A stored object, by apiVersion-less coordinates (`""`, `configmaps`, `ns`, `name`).
    pub fn object(&self, group: &str, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        lock(&self.shared.store)
            .objects
            .get(&(
                group.to_owned(),
                plural.to_owned(),
                namespace.to_owned(),
                name.to_owned(),
            ))
            .cloned()
    }
}

impl Drop for TestApiServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn resources_of_aggregated(doc: &Value) -> Vec<Resource> {
    let mut out = Vec::new();
    for group in doc["items"].as_array().into_iter().flatten() {
        let name = group["metadata"]["name"].as_str().unwrap_or_default();
        for version in group["versions"].as_array().into_iter().flatten() {
            let v = version["version"].as_str().unwrap_or_default();
            for resource in version["resources"].as_array().into_iter().flatten() {
                out.push(Resource {
                    group: name.to_owned(),
                    version: v.to_owned(),
                    plural: resource["resource"].as_str().unwrap_or_default().to_owned(),
                    kind: resource["responseKind"]["kind"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    namespaced: resource["scope"] == "Namespaced",
                });
            }
        }
    }
    out
}

/// Whether a group is served by the API server itself (custom groups need a CRD).
fn is_builtin_group(group: &str) -> bool {
    !group.contains('.') || group.ends_with(".k8s.io")
}

/// An error answer in the shape of the real server's `Status`.
/// 400 for a body the server cannot read, with the parser's message, as kube-apiserver answers.
fn bad_request(error: &dyn std::fmt::Display) -> Response {
    status(
        StatusCode::BAD_REQUEST,
        "BadRequest",
        error.to_string(),
        json!({}),
    )
}

fn status(code: StatusCode, reason: &str, message: String, details: Value) -> Response {
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

fn ok_json(code: StatusCode, body: &Value) -> Response {
    typed_json(code, "application/json", body)
}

/// Aggregated discovery is answered with the media type that says so, as kube-apiserver does;
/// clients (kubectl among them) read the body by it.
const AGGREGATED_DISCOVERY: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

fn typed_json(code: StatusCode, content_type: &'static str, body: &Value) -> Response {
    (code, [("content-type", content_type)], body.to_string()).into_response()
}

fn now() -> String {
    gitops_shared::timestamp::now_rfc3339()
}

/// A parsed resource request.
struct Target {
    resource: Resource,
    namespace: String,
    name: Option<String>,
    subresource: Option<String>,
}

fn query_params(uri: &Uri) -> HashMap<String, String> {
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

fn percent_decode(text: &str) -> String {
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

impl Shared {
    fn next_rv(&self) -> String {
        self.resource_version
            .fetch_add(1, Ordering::SeqCst)
            .to_string()
    }

    fn insert_direct(
        &self,
        group: &str,
        plural: &str,
        namespace: &str,
        name: &str,
        mut object: Value,
    ) {
        stamp_new(&mut object, &self.next_rv());
        lock(&self.store).objects.insert(
            (group.into(), plural.into(), namespace.into(), name.into()),
            object,
        );
    }

    /// Every served resource: the built-in ones and those of stored CRDs.
    fn served(store: &Store) -> Vec<Resource> {
        let mut out: Vec<Resource> = store
            .builtin
            .iter()
            .filter(|r| is_builtin_group(&r.group))
            .cloned()
            .collect();
        for ((group, plural, _, _), crd) in &store.objects {
            if group != "apiextensions.k8s.io" || plural != "customresourcedefinitions" {
                continue;
            }
            let spec = &crd["spec"];
            for version in spec["versions"].as_array().into_iter().flatten() {
                if version["served"] == Value::Bool(false) {
                    continue;
                }
                out.push(Resource {
                    group: spec["group"].as_str().unwrap_or_default().to_owned(),
                    version: version["name"].as_str().unwrap_or_default().to_owned(),
                    plural: spec["names"]["plural"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    kind: spec["names"]["kind"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    namespaced: spec["scope"] != "Cluster",
                });
            }
        }
        out
    }

    fn handle(&self, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
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
        let served = Shared::served(&lock(&self.store));
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
            return status(
                StatusCode::NOT_FOUND,
                "NotFound",
                "of the subresources only scale (of deployments, statefulsets and replicasets) is modelled by the test API server".into(),
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
            ("GET", None) => self.list(&target, query.get("labelSelector").map(String::as_str).unwrap_or_default()),
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
            ("DELETE", Some(name)) => self.delete(&target, name, &query, &user),
            _ => status(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                format!("the server does not allow this method on the requested resource ({method})"),
                json!({}),
            ),
        }
    }

    fn aggregated_apis(&self) -> Value {
        let mut doc = self.discovery["apis.aggregated-v2.json"].clone();
        let store = lock(&self.store);
        let served = Shared::served(&store);
        let mut items: Vec<Value> = doc["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|g| is_builtin_group(g["metadata"]["name"].as_str().unwrap_or_default()))
            .collect();
        let mut custom: BTreeMap<String, BTreeMap<String, Vec<Value>>> = BTreeMap::new();
        for r in served.iter().filter(|r| !is_builtin_group(&r.group)) {
            custom.entry(r.group.clone()).or_default().entry(r.version.clone()).or_default().push(json!({
                "resource": r.plural, "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
                "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
                "verbs": ["create", "delete", "get", "list", "patch", "update"],
            }));
        }
        for (group, versions) in custom {
            let versions: Vec<Value> = versions
                .into_iter()
                .map(|(version, resources)| json!({"version": version, "resources": resources, "freshness": "Current"}))
                .collect();
            items.push(json!({"metadata": {"name": group}, "versions": versions}));
        }
        doc["items"] = Value::Array(items);
        doc
    }

    fn resource_list(&self, served: &[Resource], group: &str, version: &str) -> Response {
        let resources: Vec<Value> = served
            .iter()
            .filter(|r| r.group == group && r.version == version)
            .flat_map(|r| {
                let mut entries = vec![json!({"name": r.plural, "singularName": "", "namespaced": r.namespaced, "kind": r.kind,
                    "verbs": ["create", "delete", "get", "list", "patch", "update"]})];
                if has_scale(r) {
                    // kubectl scale finds the Scale's group, version and kind here.
                    entries.push(json!({"name": format!("{}/scale", r.plural), "singularName": "", "namespaced": r.namespaced,
                        "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}));
                }
                entries
            })
            .collect();
        if resources.is_empty() {
            return not_found_path();
        }
        let group_version = if group.is_empty() {
            version.to_owned()
        } else {
            format!("{group}/{version}")
        };
        ok_json(
            StatusCode::OK,
            &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}),
        )
    }

    fn key(target: &Target, name: &str) -> (String, String, String, String) {
        (
            target.resource.group.clone(),
            target.resource.plural.clone(),
            target.namespace.clone(),
            name.to_owned(),
        )
    }

    fn not_found(target: &Target, name: &str) -> Response {
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

    fn get(&self, target: &Target, name: &str) -> Response {
        match lock(&self.store).objects.get(&Shared::key(target, name)) {
            Some(object) => ok_json(StatusCode::OK, object),
            None => Shared::not_found(target, name),
        }
    }

    fn list(&self, target: &Target, selector: &str) -> Response {
        let selector = match parse_selector(selector) {
            Ok(selector) => selector,
            Err(message) => {
                return status(StatusCode::BAD_REQUEST, "BadRequest", message, json!({}))
            }
        };
        let store = lock(&self.store);
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
        ok_json(
            StatusCode::OK,
            &json!({"kind": format!("{}List", target.resource.kind), "apiVersion": api_version,
                "metadata": {"resourceVersion": rv}, "items": items}),
        )
    }

    /// Checks what the real server checks (of what is modelled) before any write.
    fn validate(
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

    fn create(
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
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut store = lock(&self.store);
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
            &store,
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

    fn update(
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
        let store = lock(&self.store);
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

    fn merge_patch(
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
        let store = lock(&self.store);
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

    /// The end of an update by PUT or merge patch: the changed fields go to the request's field
    /// manager, admission decides, then the object is written.
    #[allow(clippy::too_many_arguments)]
    fn finish_update(
        &self,
        mut store: MutexGuard<'_, Store>,
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
            &store,
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

    /// Server-side apply.
    fn apply(
        &self,
        target: &Target,
        name: &str,
        query: &HashMap<String, String>,
        body: &[u8],
        user: &User,
    ) -> Response {
        let applied: Value = match serde_yaml::from_slice(body) {
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
        let mut store = lock(&self.store);
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
                    &store,
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
            &store,
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

    /// Stores `object` as the new version of `old`, bumping resourceVersion (and generation when
    /// anything but metadata and status changed) only if something changed.
    fn commit(
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

    /// Calls every registered ValidatingWebhookConfiguration webhook that matches, the way
    /// kube-apiserver does; a denial (or a failed call under `failurePolicy: Fail`) becomes the
    /// error response. Runs with the store locked: a webhook that calls back into this server
    /// would deadlock (the gitops webhook reads Git, not the API, for these; the scale subresource
    /// calls [`Shared::call_webhooks`] without the lock).
    #[allow(clippy::too_many_arguments)]
    fn admit(
        &self,
        store: &Store,
        target: &Target,
        operation: &str,
        name: &str,
        old: Option<&Value>,
        new: Option<&Value>,
        user: &User,
        query: &HashMap<String, String>,
    ) -> Option<Response> {
        let admission = Shared::admission(store, target, new.or(old))?;
        self.call_webhooks(
            &admission, target, None, operation, name, old, new, user, query,
        )
    }

    /// What admission needs from the store: the namespace's labels and the registered
    /// ValidatingWebhookConfigurations. `None` for the configurations themselves, which are never
    /// sent to webhooks.
    fn admission(store: &Store, target: &Target, object: Option<&Value>) -> Option<Admission> {
        if target.resource.group == "admissionregistration.k8s.io" {
            return None;
        }
        let namespace_labels = if !target.resource.namespaced {
            object
                .map(|o| o["metadata"]["labels"].clone())
                .unwrap_or(Value::Null)
        } else {
            let key = (
                String::new(),
                "namespaces".to_owned(),
                String::new(),
                target.namespace.clone(),
            );
            store
                .objects
                .get(&key)
                .map(|n| n["metadata"]["labels"].clone())
                .unwrap_or(Value::Null)
        };
        let configurations = store
            .objects
            .iter()
            .filter(|((group, plural, _, _), _)| {
                group == "admissionregistration.k8s.io"
                    && plural == "validatingwebhookconfigurations"
            })
            .map(|(_, configuration)| configuration.clone())
            .collect();
        Some(Admission {
            namespace_labels,
            configurations,
        })
    }

    /// Calls the matching webhooks of `admission` one after another; the first denial (or failed
    /// call under `failurePolicy: Fail`) becomes the error response.
    #[allow(clippy::too_many_arguments)]
    fn call_webhooks(
        &self,
        admission: &Admission,
        target: &Target,
        subresource: Option<&str>,
        operation: &str,
        name: &str,
        old: Option<&Value>,
        new: Option<&Value>,
        user: &User,
        query: &HashMap<String, String>,
    ) -> Option<Response> {
        let namespace_labels = &admission.namespace_labels;
        let attributes = Attributes {
            operation,
            group: &target.resource.group,
            version: &target.resource.version,
            kind: &target.resource.kind,
            resource: &target.resource.plural,
            namespaced: target.resource.namespaced,
            namespace: &target.namespace,
            name,
            subresource,
        };
        for configuration in &admission.configurations {
            for webhook in configuration["webhooks"].as_array().into_iter().flatten() {
                let webhook_name = webhook["name"].as_str().unwrap_or_default();
                let object_labels_match = [new, old].into_iter().flatten().any(|o| {
                    selector_matches(&webhook["objectSelector"], &o["metadata"]["labels"])
                });
                if !rules_match(webhook, &attributes)
                    || !selector_matches(&webhook["namespaceSelector"], namespace_labels)
                    || !object_labels_match
                {
                    continue;
                }
                let Some(url) = webhook["clientConfig"]["url"].as_str() else {
                    continue; // service references are not modelled
                };
                let uid = format!(
                    "00000000-0000-4000-8000-{:012x}",
                    self.resource_version.fetch_add(1, Ordering::SeqCst)
                );
                let body = review(
                    &uid,
                    &attributes,
                    user,
                    new,
                    old,
                    is_dry_run(query),
                    query.get("fieldManager").map(String::as_str),
                );
                let timeout = std::time::Duration::from_secs(
                    webhook["timeoutSeconds"].as_u64().unwrap_or(10),
                );
                let ca = webhook["clientConfig"]["caBundle"].as_str();
                // On a runtime of its own: this server's workers may all be waiting for the store.
                let answer = std::thread::scope(|scope| {
                    scope
                        .spawn(|| {
                            tokio::runtime::Builder::new_current_thread()
                                .enable_all()
                                .build()
                                .map_err(|e| CallError::Transport(e.to_string()))
                                .and_then(|runtime| runtime.block_on(call(url, ca, &body, timeout)))
                        })
                        .join()
                        .unwrap_or_else(|_| {
                            Err(CallError::Transport("webhook client panicked".into()))
                        })
                });
                lock(&self.log.admissions).push(body.clone());
                let fail_open = webhook["failurePolicy"].as_str() == Some("Ignore");
                let response = match answer {
                    Ok(response) => response,
                    Err(_) if fail_open => continue,
                    Err(error) => {
                        return Some(status(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "InternalError",
                            format!("Internal error occurred: failed calling webhook \"{webhook_name}\": failed to call webhook: Post \"{url}\": {error}"),
                            json!({"causes": [{"message": format!("failed calling webhook \"{webhook_name}\": {error}")}]}),
                        ));
                    }
                };
                let result = &response["response"];
                if result["allowed"].as_bool() == Some(true) {
                    continue;
                }
                let st = &result["status"];
                let code = u16::try_from(st["code"].as_u64().unwrap_or(0).max(400)).unwrap_or(400);
                let denied_by = format!("admission webhook \"{webhook_name}\" denied the request");
                let message = match (st["message"].as_str(), st["reason"].as_str()) {
                    (Some(m), _) if !m.is_empty() => format!("{denied_by}: {m}"),
                    (_, Some(r)) if !r.is_empty() => format!("{denied_by}: {r}"),
                    _ => format!("{denied_by} without explanation"),
                };
                let code = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
                let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": message, "reason": st["reason"].as_str().unwrap_or_default(),
                    "details": st["details"].clone(), "code": code.as_u16()});
                return Some(
                    (
                        code,
                        [("content-type", "application/json")],
                        body.to_string(),
                    )
                        .into_response(),
                );
            }
        }
        None
    }

    /// The `scale` subresource: GET answers the parent as a Scale; PUT and merge PATCH (what
    /// `kubectl scale` sends) set the parent's `spec.replicas` once the webhooks matching
    /// `<resource>/scale` allowed it, with an AdmissionReview shaped like kube-apiserver's
    /// (kind `autoscaling/v1` Scale, the parent's resource, subResource `scale`, Scales as object
    /// and oldObject). The webhooks are called without the store lock, since a webhook may read
    /// the parent back; the write then checks that the parent's resourceVersion is still the one
    /// read, and answers 409 like an update precondition when it is not.
    #[allow(clippy::too_many_arguments)]
    fn scale(
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
            let store = lock(&self.store);
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
        let mut store = lock(&self.store);
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

    fn delete(
        &self,
        target: &Target,
        name: &str,
        query: &HashMap<String, String>,
        user: &User,
    ) -> Response {
        let mut store = lock(&self.store);
        let key = Shared::key(target, name);
        let Some(object) = store.objects.get(&key).cloned() else {
            return Shared::not_found(target, name);
        };
        if let Some(denied) = self.admit(
            &store,
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
        }
        ok_json(StatusCode::OK, &object)
    }
}

/// Whether the test server serves a `scale` subresource for `resource`: the built-in workloads
/// that have one (ReplicationControllers and custom resources' scale are not modelled).
fn has_scale(resource: &Resource) -> bool {
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
fn scale_of(parent: &Value) -> Value {
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

fn unreachable_resource() -> Resource {
    Resource {
        group: String::new(),
        version: String::new(),
        plural: String::new(),
        kind: String::new(),
        namespaced: false,
    }
}

fn not_found_path() -> Response {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        "the server could not find the requested resource".into(),
        json!({}),
    )
}

fn is_dry_run(query: &HashMap<String, String>) -> bool {
    query.get("dryRun").is_some_and(|d| d == "All")
}

fn is_dns_subdomain(name: &str) -> bool {
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

fn set_identity(object: &mut Value, target: &Target) {
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        if target.resource.namespaced {
            metadata.insert("namespace".into(), Value::from(target.namespace.as_str()));
        } else {
            metadata.remove("namespace");
        }
    }
}

fn stamp_new(object: &mut Value, rv: &str) {
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
fn post_process(object: &mut Value, target: &Target) {
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
}

fn carry_bookkeeping(old: &Value, object: &mut Value) {
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

fn without_volatile(object: &Value) -> Value {
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

/// A field path as fieldsV1 keys: `["f:spec", "f:template", …, "k:{\"name\":\"web\"}", "f:image"]`.
type FieldPath = Vec<String>;

#[derive(Debug, Clone)]
struct ManagedEntry {
    manager: String,
    operation: String,
    fields: Vec<FieldPath>,
    api_version: String,
    time: String,
}

/// The key fields of a list item, when the list is merged by key.
fn item_key(item: &Value) -> Option<Value> {
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

fn keyed(list: &[Value]) -> Option<Vec<Value>> {
    list.iter().map(item_key).collect()
}

/// The leaf field paths an object sets (identity and bookkeeping left out).
fn field_set(object: &Value, _create: bool) -> Vec<FieldPath> {
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

fn collect(value: &Value, path: FieldPath, out: &mut Vec<FieldPath>) {
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

fn collect_item(item: &Value, path: FieldPath, out: &mut Vec<FieldPath>) {
    for (k, v) in item.as_object().into_iter().flatten() {
        let mut p = path.clone();
        p.push(format!("f:{k}"));
        collect(v, p, out);
    }
}

fn step<'a>(value: &'a Value, token: &str) -> Option<&'a Value> {
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

fn value_at<'a>(object: &'a Value, path: &FieldPath) -> Option<&'a Value> {
    let mut at = object;
    for token in path {
        at = step(at, token)?;
    }
    Some(at)
}

fn remove_at(object: &mut Value, path: &FieldPath) {
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

fn path_text(path: &FieldPath) -> String {
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
fn apply_merge(object: &mut Value, applied: &Value) {
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

/// RFC 7386 merge patch.
fn merge(target: &mut Value, patch: &Value) {
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

fn changed_fields(old: &Value, new: &Value) -> Vec<FieldPath> {
    let old_fields = field_set(old, false);
    field_set(new, false)
        .into_iter()
        .filter(|p| !old_fields.contains(p) || value_at(old, p) != value_at(new, p))
        .collect()
}

fn managed_entries(object: &Value) -> Vec<ManagedEntry> {
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

fn flatten_fields(set: &Value, path: FieldPath, out: &mut Vec<FieldPath>) {
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

fn fields_tree(paths: &[FieldPath]) -> Value {
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

fn write_managed(object: &mut Value, entries: &[ManagedEntry]) {
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

fn set_managed(object: &mut Value, manager: &str, operation: &str, fields: Vec<FieldPath>) {
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
fn take_ownership(object: &mut Value, manager: &str, operation: &str, changed: &[FieldPath]) {
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

/// One label selector requirement.
#[derive(Debug)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

impl Requirement {
    fn matches(&self, labels: &Value) -> bool {
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

fn parse_selector(text: &str) -> Result<Vec<Requirement>, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The captured `kubectl scale deployment web --replicas=3` of kube-apiserver v1.36.
    fn captured_scale() -> Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/fixtures/admission/0076-UPDATE-Scale-web-scale.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture 0076")).expect("JSON")
    }

    /// The review for a scale is the captured one, field for field (but `userInfo.extra`, which
    /// this server's token users do not have).
    #[test]
    fn scale_review_is_shaped_like_kube_apiservers() {
        let captured = captured_scale();
        let request = &captured["request"];
        // The parent as the real server held it when the Scale was captured.
        let parent = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "demo", "uid": request["oldObject"]["metadata"]["uid"],
                "resourceVersion": "377", "creationTimestamp": "2026-11-26T14:29:45Z", "generation": 1,
                "labels": {"app": "web"}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}},
            "status": {"replicas": 2}});
        let old = scale_of(&parent);
        assert_eq!(old, request["oldObject"]);
        let mut new = old.clone();
        new["spec"]["replicas"] = json!(3);
        assert_eq!(new, request["object"]);
        let attributes = Attributes {
            operation: "UPDATE",
            group: "apps",
            version: "v1",
            kind: "Deployment",
            resource: "deployments",
            namespaced: true,
            namespace: "demo",
            name: "web",
            subresource: Some("scale"),
        };
        let admin = User {
            name: "admin".into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
        };
        let sent = crate::admission::review(
            request["uid"].as_str().expect("uid"),
            &attributes,
            &admin,
            Some(&new),
            Some(&old),
            false,
            None,
        );
        let mut expected = captured.clone();
        expected["request"]["userInfo"]
            .as_object_mut()
            .expect("userInfo")
            .remove("extra");
        assert_eq!(sent, expected);
        let keys =
            |v: &Value| -> Vec<String> { v.as_object().expect("object").keys().cloned().collect() };
        assert_eq!(keys(&sent["request"]), keys(&captured["request"]));
    }

    #[test]
    fn scale_rules_match_like_kube_apiservers() {
        let attributes = |subresource| Attributes {
            operation: "UPDATE",
            group: "apps",
            version: "v1",
            kind: "Deployment",
            resource: "deployments",
            namespaced: true,
            namespace: "demo",
            name: "web",
            subresource,
        };
        let webhook = |resources: Value| {
            json!({"rules": [{"operations": ["UPDATE"], "apiGroups": ["*"], "apiVersions": ["*"],
                "resources": resources}]})
        };
        let scale = attributes(Some("scale"));
        assert!(rules_match(&webhook(json!(["*/scale"])), &scale));
        assert!(rules_match(&webhook(json!(["deployments/scale"])), &scale));
        assert!(rules_match(&webhook(json!(["*/*"])), &scale));
        assert!(!rules_match(&webhook(json!(["*"])), &scale));
        assert!(!rules_match(&webhook(json!(["deployments"])), &scale));
        assert!(!rules_match(
            &webhook(json!(["statefulsets/scale"])),
            &scale
        ));
        assert!(!rules_match(&webhook(json!(["*/status"])), &scale));
        let object = attributes(None);
        assert!(rules_match(&webhook(json!(["*"])), &object));
        assert!(!rules_match(&webhook(json!(["*/scale"])), &object));
    }

    #[test]
    fn selectors() {
        let labels = json!({"app": "web", "tier": "front"});
        let matches = |s: &str| {
            parse_selector(s)
                .expect("parse")
                .iter()
                .all(|r| r.matches(&labels))
        };
        assert!(matches("app=web"));
        assert!(matches("app==web,tier"));
        assert!(matches("app in (web, db),!missing"));
        assert!(!matches("app notin (web)"));
        assert!(!matches("tier!=front"));
        assert!(matches(""));
    }

    #[test]
    fn field_sets_key_lists_by_name_and_port() {
        let object = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"a": "b"}},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "web", "image": "nginx",
            "ports": [{"containerPort": 80}], "args": ["a", "b"]}]}}}});
        let fields: Vec<String> = field_set(&object, false).iter().map(path_text).collect();
        assert!(
            fields.contains(&".metadata.labels.a".to_owned()),
            "{fields:?}"
        );
        assert!(
            fields.contains(&".spec.template.spec.containers[{\"name\":\"web\"}].image".to_owned()),
            "{fields:?}"
        );
        assert!(fields.contains(&".spec.template.spec.containers[{\"name\":\"web\"}].ports[{\"containerPort\":80,\"protocol\":\"TCP\"}].containerPort".to_owned()), "{fields:?}");
        assert!(
            fields.contains(&".spec.template.spec.containers[{\"name\":\"web\"}].args".to_owned()),
            "{fields:?}"
        );
        let tree = fields_tree(&field_set(&object, false));
        let mut back = Vec::new();
        flatten_fields(&tree, Vec::new(), &mut back);
        let mut expected = field_set(&object, false);
        // Keyed items are recorded themselves too.
        back.sort();
        expected.sort();
        expected.dedup();
        assert_eq!(back, expected);
    }
}
