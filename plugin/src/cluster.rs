//! Cluster access like kubectl: `--kubeconfig`, `--context`, `-n/--namespace`, `KUBECONFIG`,
//! in-cluster config; discovery of which resource serves each group/version/kind; and the few REST
//! calls the commands make (get, list by label, server-side apply, delete).
//!
//! Requests are plain REST paths sent through [`kube::Client`], so unit tests can put a
//! `tower_test` mock behind the client and check every method, path, query and body.

use std::collections::HashMap;
use std::path::PathBuf;

use clap::Args;
use gitops_shared::object::{group_of, ObjectKey};
use gitops_shared::scope::Scope;
use http::{Method, Request};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, ObjectMeta};
use kube::api::{Api, DynamicObject, PartialObjectMeta, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::Value;

/// Accept header asking for aggregated discovery (one request per root), falling back to the
/// legacy documents on servers that do not serve it.
const AGGREGATED: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";

/// Flags that pick the cluster, like kubectl's.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// Path to the kubeconfig file. Default: $KUBECONFIG, then ~/.kube/config, then in-cluster.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long)]
    pub context: Option<String>,
    /// Namespace for a folder app's namespaced objects that name none (apps in gitops.yaml take
    /// theirs from there). Default: the context's namespace.
    #[arg(short, long)]
    pub namespace: Option<String>,
}

/// Why talking to the cluster failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The kubeconfig could not be read or used.
    #[error("cannot load kubeconfig")]
    Kubeconfig(#[source] kube::config::KubeconfigError),
    /// Neither a kubeconfig nor in-cluster config was found.
    #[error("no cluster configured (no kubeconfig, not running in a cluster)")]
    Infer(#[source] kube::config::InferConfigError),
    /// The client could not be built from the config.
    #[error("cannot build a Kubernetes client")]
    Client(#[source] kube::Error),
    /// A discovery document could not be fetched or read.
    #[error("discovery failed at {path}")]
    Discovery {
        /// The document's path.
        path: String,
        /// What went wrong.
        #[source]
        source: kube::Error,
    },
    /// The cluster serves no resource for a kind.
    #[error(
        "the cluster serves no resource for kind {kind} in {api_version} (is its CRD installed?)"
    )]
    UnknownKind {
        /// `apiVersion` of the object.
        api_version: String,
        /// `kind` of the object.
        kind: String,
    },
    /// A request about one object failed.
    #[error("{verb} {key}: {}", api_message(&source.0))]
    Request {
        /// What was being done (`get`, `apply`, `delete`, `list`).
        verb: &'static str,
        /// Which object (or `Kind in namespace` for a list).
        key: String,
        /// What went wrong.
        #[source]
        source: RequestFailure,
    },
}

/// A failed request's cause. The API server's answer is already in [`ClusterError::Request`]'s
/// message, so it is not repeated as a cause (kube's `Status` debug dump helps nobody); transport
/// errors keep their chain (connection refused, TLS, …).
#[derive(Debug)]
pub struct RequestFailure(pub kube::Error);

impl std::fmt::Display for RequestFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&api_message(&self.0))
    }
}

impl std::error::Error for RequestFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0 {
            kube::Error::Api(_) => None,
            other => std::error::Error::source(other),
        }
    }
}

impl ClusterError {
    /// The HTTP status code when the API server answered with an error.
    pub fn code(&self) -> Option<u16> {
        match self {
            ClusterError::Request {
                source: RequestFailure(kube::Error::Api(status)),
                ..
            } => Some(status.code),
            _ => None,
        }
    }
}

/// The API server's own message for an API error, the error otherwise.
pub fn api_message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) if !status.message.is_empty() => {
            format!("{} ({} {})", status.message, status.code, status.reason)
        }
        other => other.to_string(),
    }
}

impl ClusterArgs {
    /// Builds a client the way kubectl would, and returns it with the namespace to use.
    pub async fn connect(&self) -> Result<(Client, String), ClusterError> {
        let options = KubeConfigOptions {
            context: self.context.clone(),
            cluster: None,
            user: None,
        };
        let config = match (&self.kubeconfig, &self.context) {
            (Some(path), _) => {
                let file = Kubeconfig::read_from(path).map_err(ClusterError::Kubeconfig)?;
                Config::from_custom_kubeconfig(file, &options)
                    .await
                    .map_err(ClusterError::Kubeconfig)?
            }
            (None, Some(_)) => Config::from_kubeconfig(&options)
                .await
                .map_err(ClusterError::Kubeconfig)?,
            (None, None) => Config::infer().await.map_err(ClusterError::Infer)?,
        };
        let namespace = self
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        tracing::debug!(url = %config.cluster_url, %namespace, "cluster");
        let client = Client::try_from(config).map_err(ClusterError::Client)?;
        Ok((client, namespace))
    }
}

/// One served resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiResource {
    /// API group (empty for core).
    pub group: String,
    /// Version.
    pub version: String,
    /// Kind.
    pub kind: String,
    /// The plural resource name in URLs.
    pub plural: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
}

impl ApiResource {
    /// `v1` or `group/version`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The collection URL, in `namespace` when namespaced.
    pub fn collection(&self, namespace: Option<&str>) -> String {
        let base = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        match namespace {
            Some(ns) if self.namespaced && !ns.is_empty() => {
                format!("{base}/namespaces/{ns}/{}", self.plural)
            }
            _ => format!("{base}/{}", self.plural),
        }
    }

    /// One object's URL.
    pub fn object_url(&self, namespace: &str, name: &str) -> String {
        format!("{}/{name}", self.collection(Some(namespace)))
    }
}

/// What the cluster serves: group/version/kind → resource.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    by_gvk: HashMap<(String, String, String), ApiResource>,
    /// Preferred resource per group/kind (the first version the server lists).
    by_gk: HashMap<(String, String), ApiResource>,
}

impl Scope for Discovery {
    fn is_namespaced(&self, group: &str, kind: &str) -> Option<bool> {
        self.by_gk
            .get(&(group.to_owned(), kind.to_owned()))
            .map(|r| r.namespaced)
    }
}

impl Discovery {
    /// Reads aggregated discovery from `/api` and `/apis`, falling back to the per-version
    /// documents on servers without it.
    pub async fn fetch(client: &Client) -> Result<Discovery, ClusterError> {
        let mut discovery = Discovery::default();
        for root in ["/api", "/apis"] {
            let doc = get_json(client, root, AGGREGATED).await?;
            match doc.get("kind").and_then(Value::as_str) {
                Some("APIGroupDiscoveryList") => discovery.add_aggregated(&doc),
                Some("APIVersions") => {
                    for version in strings(doc.get("versions")) {
                        let path = format!("/api/{version}");
                        let list = get_json(client, &path, "application/json").await?;
                        discovery.add_resource_list("", &version, &list);
                    }
                }
                _ => {
                    for group in doc
                        .get("groups")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        let name = group
                            .get("name")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        let preferred = group
                            .get("preferredVersion")
                            .and_then(|p| p.get("version"))
                            .and_then(Value::as_str);
                        let mut versions: Vec<String> = group
                            .get("versions")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                            .filter_map(|v| {
                                v.get("version").and_then(Value::as_str).map(str::to_owned)
                            })
                            .collect();
                        versions.sort_by_key(|v| Some(v.as_str()) != preferred);
                        for version in versions {
                            let path = format!("/apis/{name}/{version}");
                            let list = get_json(client, &path, "application/json").await?;
                            discovery.add_resource_list(name, &version, &list);
                        }
                    }
                }
            }
        }
        tracing::debug!(kinds = discovery.by_gk.len(), "discovered");
        Ok(discovery)
    }

    /// Adds an `APIGroupDiscoveryList` (aggregated discovery v2).
    pub fn add_aggregated(&mut self, doc: &Value) {
        for group in doc
            .get("items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = group
                .get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            for version in group
                .get("versions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let v = version
                    .get("version")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                for resource in version
                    .get("resources")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let kind = resource
                        .get("responseKind")
                        .and_then(|k| k.get("kind"))
                        .and_then(Value::as_str);
                    let plural = resource.get("resource").and_then(Value::as_str);
                    if let (Some(kind), Some(plural)) = (kind, plural) {
                        self.insert(ApiResource {
                            group: name.to_owned(),
                            version: v.to_owned(),
                            kind: kind.to_owned(),
                            plural: plural.to_owned(),
                            namespaced: resource.get("scope").and_then(Value::as_str)
                                == Some("Namespaced"),
                        });
                    }
                }
            }
        }
    }

    /// Adds an `APIResourceList` (legacy discovery of one group version).
    pub fn add_resource_list(&mut self, group: &str, version: &str, list: &Value) {
        for resource in list
            .get("resources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = resource
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if name.contains('/') {
                continue; // a subresource
            }
            if let Some(kind) = resource.get("kind").and_then(Value::as_str) {
                self.insert(ApiResource {
                    group: group.to_owned(),
                    version: version.to_owned(),
                    kind: kind.to_owned(),
                    plural: name.to_owned(),
                    namespaced: resource.get("namespaced").and_then(Value::as_bool) == Some(true),
                });
            }
        }
    }

    fn insert(&mut self, resource: ApiResource) {
        self.by_gk
            .entry((resource.group.clone(), resource.kind.clone()))
            .or_insert_with(|| resource.clone());
        self.by_gvk.insert(
            (
                resource.group.clone(),
                resource.version.clone(),
                resource.kind.clone(),
            ),
            resource,
        );
    }

    /// The resource serving objects of `api_version` and `kind`.
    pub fn resource(&self, api_version: &str, kind: &str) -> Result<&ApiResource, ClusterError> {
        let group = group_of(api_version);
        let version = api_version.rsplit('/').next().unwrap_or(api_version);
        self.by_gvk
            .get(&(group.to_owned(), version.to_owned(), kind.to_owned()))
            .ok_or_else(|| ClusterError::UnknownKind {
                api_version: api_version.to_owned(),
                kind: kind.to_owned(),
            })
    }

    /// The resource of an object.
    pub fn resource_of(&self, object: &Value) -> Result<&ApiResource, ClusterError> {
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        self.resource(api_version, kind)
    }

    /// The preferred resource of a group/kind (for inventory entries, which carry no version).
    pub fn resource_for_key(&self, key: &ObjectKey) -> Result<&ApiResource, ClusterError> {
        self.by_gk
            .get(&(key.group.clone(), key.kind.clone()))
            .ok_or_else(|| ClusterError::UnknownKind {
                api_version: key.group.clone(),
                kind: key.kind.clone(),
            })
    }
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

async fn get_json(client: &Client, path: &str, accept: &str) -> Result<Value, ClusterError> {
    let request = Request::builder()
        .method(Method::GET)
        .uri(path)
        .header(http::header::ACCEPT, accept)
        .body(Vec::new())
        .map_err(|e| ClusterError::Discovery {
            path: path.to_owned(),
            source: kube::Error::HttpError(e),
        })?;
    client
        .request::<Value>(request)
        .await
        .map_err(|source| ClusterError::Discovery {
            path: path.to_owned(),
            source,
        })
}

/// Whether a server-side apply is a dry run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DryRun {
    /// Really change the cluster.
    No,
    /// Ask the server to validate and admit, without persisting (`dryRun=All`).
    Server,
}

/// The REST calls the commands make, on one client.
#[derive(Clone)]
pub struct Rest {
    /// The client.
    pub client: Client,
}

/// How many times an apply answered 429 is sent again.
const TOO_MANY_RETRIES: usize = 5;

fn build(
    method: Method,
    uri: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Result<Request<Vec<u8>>, kube::Error> {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(content_type) = content_type {
        builder = builder.header(http::header::CONTENT_TYPE, content_type);
    }
    builder.body(body).map_err(kube::Error::HttpError)
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl Rest {
    /// GET one object; `None` when it does not exist.
    pub async fn get(
        &self,
        resource: &ApiResource,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Value>, ClusterError> {
        let url = resource.object_url(namespace, name);
        let wrap = |source| ClusterError::Request {
            verb: "get",
            key: url.clone(),
            source: RequestFailure(source),
        };
        let request = build(Method::GET, &url, None, Vec::new()).map_err(wrap)?;
        match self.client.request::<Value>(request).await {
            Ok(object) => Ok(Some(object)),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
            Err(source) => Err(wrap(source)),
        }
    }

    /// LIST objects of `resource` (in `namespace`, or everywhere when cluster-scoped) matching a
    /// label selector. Items get their `apiVersion` and `kind`, which lists leave out.
    pub async fn list(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        selector: &str,
    ) -> Result<Vec<Value>, ClusterError> {
        let url = format!(
            "{}?labelSelector={}",
            resource.collection(namespace),
            percent_encode(selector)
        );
        let wrap = |source| ClusterError::Request {
            verb: "list",
            key: url.clone(),
            source: RequestFailure(source),
        };
        let request = build(Method::GET, &url, None, Vec::new()).map_err(wrap)?;
        let list: Value = self.client.request(request).await.map_err(wrap)?;
        let mut items = match list.get("items") {
            Some(Value::Array(items)) => items.clone(),
            _ => Vec::new(),
        };
        for item in &mut items {
            if let Some(map) = item.as_object_mut() {
                map.insert("apiVersion".to_owned(), Value::from(resource.api_version()));
                map.insert("kind".to_owned(), Value::from(resource.kind.as_str()));
            }
        }
        Ok(items)
    }

    /// Server-side apply of `object` with field manager `kubectl-gitops`.
    pub async fn apply(
        &self,
        resource: &ApiResource,
        object: &Value,
        force: bool,
        dry_run: DryRun,
    ) -> Result<Value, ClusterError> {
        let key = ObjectKey::of(object)
            .map(|k| k.to_string())
            .unwrap_or_default();
        let wrap = |source| ClusterError::Request {
            verb: "apply",
            key: key.clone(),
            source: RequestFailure(source),
        };
        let namespace = object
            .get("metadata")
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let name = object
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let mut url = format!(
            "{}?fieldManager={}&force={force}",
            resource.object_url(namespace, name),
            gitops_shared::provenance::FIELD_MANAGER
        );
        if dry_run == DryRun::Server {
            url.push_str("&dryRun=All");
        }
        let body = serde_json::to_vec(object).map_err(|e| wrap(kube::Error::SerdeError(e)))?;
        // A 429 (API priority and fairness, or max-requests-inflight) is waited out as the API
        // server asks (Retry-After), a few times, rather than reported or hammered.
        let mut attempt = 0;
        loop {
            let request = build(
                Method::PATCH,
                &url,
                Some("application/apply-patch+yaml"),
                body.clone(),
            )
            .map_err(wrap)?;
            match self.client.request::<Value>(request).await {
                Err(kube::Error::Api(status))
                    if status.code == 429 && attempt < TOO_MANY_RETRIES =>
                {
                    attempt += 1;
                    let seconds = status
                        .details
                        .as_ref()
                        .map(|d| d.retry_after_seconds)
                        .filter(|s| *s > 0)
                        .unwrap_or(1);
                    tracing::debug!(%key, seconds, attempt, "429 from the API server; waiting");
                    tokio::time::sleep(std::time::Duration::from_secs(u64::from(seconds))).await;
                }
                answer => return answer.map_err(wrap),
            }
        }
    }

    /// POST (create) `object` with field manager `kubectl-gitops`: for hooks, which may have
    /// only a `generateName` and so cannot be server-side applied. Returns the created object.
    pub async fn create(
        &self,
        resource: &ApiResource,
        object: &Value,
    ) -> Result<Value, ClusterError> {
        let namespace = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let url = format!(
            "{}?fieldManager={}",
            resource.collection(Some(namespace)),
            gitops_shared::provenance::FIELD_MANAGER
        );
        let wrap = |source| ClusterError::Request {
            verb: "create",
            key: gitops_shared::hooks::object_label(object),
            source: RequestFailure(source),
        };
        let body = serde_json::to_vec(object).map_err(|e| wrap(kube::Error::SerdeError(e)))?;
        let request = build(Method::POST, &url, Some("application/json"), body).map_err(wrap)?;
        self.client.request::<Value>(request).await.map_err(wrap)
    }

    /// Replaces an object's `metadata.managedFields` with `entries` (see [`crate::revert`]): a
    /// merge patch that carries the `resourceVersion` read, so the API server answers 409 when
    /// the object changed since, instead of dropping a newer manager's entry.
    pub async fn write_managed_fields(
        &self,
        resource: &ApiResource,
        namespace: &str,
        name: &str,
        resource_version: &str,
        entries: Vec<ManagedFieldsEntry>,
        dry_run: DryRun,
    ) -> Result<Option<String>, ClusterError> {
        let erased = kube::api::ApiResource {
            group: resource.group.clone(),
            version: resource.version.clone(),
            api_version: resource.api_version(),
            kind: resource.kind.clone(),
            plural: resource.plural.clone(),
        };
        let api: Api<DynamicObject> = if resource.namespaced {
            Api::namespaced_with(self.client.clone(), namespace, &erased)
        } else {
            Api::all_with(self.client.clone(), &erased)
        };
        let params = PatchParams {
            field_manager: Some(gitops_shared::provenance::FIELD_MANAGER.to_owned()),
            dry_run: dry_run == DryRun::Server,
            ..PatchParams::default()
        };
        let patch = PartialObjectMeta::<DynamicObject> {
            types: None,
            metadata: ObjectMeta {
                resource_version: Some(resource_version.to_owned()),
                managed_fields: Some(entries),
                ..ObjectMeta::default()
            },
            _phantom: std::marker::PhantomData,
        };
        api.patch_metadata(name, &params, &Patch::Merge(&patch))
            .await
            .map(|written| written.metadata.resource_version)
            .map_err(|source| ClusterError::Request {
                verb: "take over the hand-made fields of",
                key: format!(
                    "{}/{}",
                    resource.kind,
                    if namespace.is_empty() {
                        name.to_owned()
                    } else {
                        format!("{namespace}/{name}")
                    }
                ),
                source: RequestFailure(source),
            })
    }

    /// DELETE one object (background propagation). A 404 counts as deleted.
    pub async fn delete(
        &self,
        resource: &ApiResource,
        namespace: &str,
        name: &str,
        dry_run: DryRun,
    ) -> Result<(), ClusterError> {
        let mut url = resource.object_url(namespace, name);
        if dry_run == DryRun::Server {
            url.push_str("?dryRun=All");
        }
        let wrap = |source| ClusterError::Request {
            verb: "delete",
            key: url.clone(),
            source: RequestFailure(source),
        };
        let body =
            br#"{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Background"}"#
                .to_vec();
        let request = build(Method::DELETE, &url, Some("application/json"), body).map_err(wrap)?;
        match self.client.request::<Value>(request).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(source) => Err(wrap(source)),
        }
    }

    /// Who the cluster says we are (SelfSubjectReview); `None` when the server does not tell.
    pub async fn whoami(&self) -> Option<String> {
        // Asked a few times: a busy API server may drop one request, and the inventory's
        // `synced-by` must be the authenticated user (the webhook holds it to that).
        let mut review: Option<Value> = None;
        for attempt in 0..3u64 {
            let body =
                br#"{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}"#.to_vec();
            let request = build(
                Method::POST,
                "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                Some("application/json"),
                body,
            )
            .ok()?;
            match self.client.request::<Value>(request).await {
                Ok(answer) => {
                    review = Some(answer);
                    break;
                }
                Err(error) => {
                    tracing::debug!(%error, attempt, "SelfSubjectReview failed");
                    tokio::time::sleep(std::time::Duration::from_millis(200 * (attempt + 1))).await;
                }
            }
        }
        review?
            .get("status")?
            .get("userInfo")?
            .get("username")?
            .as_str()
            .map(str::to_owned)
    }
}
