//! A test Kubernetes API server, for running the e2e suite without a cluster.
//!
//! ## What it is still for
//!
//! `tests/run` gives every run the real kube-apiserver v1.36.2 of `../shared/kube` when that
//! folder is beside the checkout, and the e2e suites pass there unchanged: nothing in them skips
//! on a real cluster any more (requests are counted by the harness's recording proxy, people are
//! the bundle's `editor` and `breakglass`). Measured in one CI run on 2 cores: `e2e` (11 tests)
//! takes about 15 s there against about 7 s here (the thousand-object sync meets etcd), and
//! `webhook_e2e` (3 tests) about 4 s on both, after a 12 s start once per run — too small a gain
//! for speed alone to keep this server. It stays for:
//! - machines without `../shared/kube`: a checkout on its own, a machine that is not Linux on
//!   amd64 (the bundle's only build), `cargo test --workspace` run directly — the suites must
//!   still run, and they do, against this server;
//! - the `sync_1000` benchmark, which measures the plugin's own cost and counts its requests
//!   ([`RequestLog`]) without etcd's latency in the numbers;
//! - checks of its own fidelity against captures of the real server (the Scale AdmissionReview
//!   of `webhook_e2e` against fixture 0076; the unit tests below).
//!
//! What the real server shows and this one does not (RBAC: an `edit` user cannot list
//! namespaces; controllers; defaulting) is tested on the real server only; code for it is not
//! added here. The files: `routing.rs` (method and path to handler, answer shapes), `auth.rs`
//! (tokens and users), `discovery.rs`, `storage.rs` (objects, CRUD, selectors), `apply.rs`
//! (server-side apply and field ownership), `webhooks.rs` (admission), `scale.rs`.
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
//! back into this server then), RBAC objects (roles are not evaluated), watch history (see `watch.rs`), field selectors,
//! pagination, other subresources (status; scale of ReplicationControllers and of custom
//! resources; a Scale's selector from `matchExpressions`; defaulting of an absent
//! `spec.replicas`, shown as 1), finalizers and graceful deletion, JSON patch, protobuf, TLS,
//! structured-merge-diff's schema (all lists are atomic except lists of objects with a `name`
//! key, and ports keyed by `containerPort`/`port` and `protocol`, which are merged by key).

mod apply;
mod auth;
mod discovery;
mod routing;
mod scale;
mod storage;
mod watch;
mod webhooks;

use apply::*;
pub use auth::{User, Users};
use discovery::*;
use routing::*;
use scale::*;
use storage::*;

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

/// The store, locked.
type StoreGuard<'a> = parking_lot::MutexGuard<'a, Store>;

struct Store {
    builtin: Vec<Resource>,
    objects: ObjectMap,
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
    /// parking_lot's, so admission can let go of it while a webhook (which may read this
    /// server, as the real one allows) is called: see [`Shared::admit`].
    store: parking_lot::Mutex<Store>,
    users: Users,
    log: Arc<RequestLog>,
    discovery: BTreeMap<&'static str, Value>,
    resource_version: AtomicU64,
    /// Ticks on every write, for watches (see `watch.rs`).
    changed: tokio::sync::watch::Sender<u64>,
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
            store: parking_lot::Mutex::new(Store {
                builtin,
                objects: BTreeMap::new(),
            }),
            users: Users::default(),
            log: Arc::new(RequestLog::default()),
            discovery,
            resource_version: AtomicU64::new(1000),
            changed: tokio::sync::watch::Sender::new(0),
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
                                let handler = shared.clone();
                                let response = tokio::task::spawn_blocking(move || {
                                    handler.handle(method, uri, headers, body)
                                })
                                .await
                                .unwrap_or_else(|error| {
                                    status(
                                        StatusCode::INTERNAL_SERVER_ERROR,
                                        "InternalError",
                                        format!("the handler failed: {error}"),
                                        json!({}),
                                    )
                                });
                                match response.extensions().get::<watch::WatchRequest>() {
                                    Some(request) => watch::stream(shared, request.clone()).await,
                                    None => response,
                                }
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
        self.shared
            .store
            .lock()
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
