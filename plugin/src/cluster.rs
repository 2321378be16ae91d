//! Cluster access like kubectl: `--kubeconfig`, `--context`, `-n/--namespace`, `KUBECONFIG`,
//! in-cluster config; discovery of which resource serves each group/version/kind; and the few
//! calls the commands make (get, list by label, server-side apply, create, delete).
//!
//! All of it is kube's: [`kube::discovery::Discovery`] (aggregated, two requests) and
//! `Api<DynamicObject>` build every URL, query and body, so unit tests put a `tower_test` mock
//! behind the [`Client`] and check what kube sends. What is ours: the index of what is served,
//! waiting out 429s, and error messages that name the object.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use gitops_shared::object::{group_of, ObjectKey};
use gitops_shared::provenance::FIELD_MANAGER;
use gitops_shared::scope::Scope;
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, ObjectMeta};
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, PartialObjectMeta, Patch, PatchParams, PostParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::{ApiGroup, Scope as ResourceScope};
use kube::{Client, Config};
use serde_json::Value;

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
    /// Discovery (`/api`, `/apis` and, on servers without aggregated discovery, each group
    /// version) failed.
    #[error("discovery failed")]
    Discovery(#[source] kube::Error),
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
        /// Which object (`Kind/namespace/name`), or which collection for a list.
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
        let mut config = match (&self.kubeconfig, &self.context) {
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
        // 429s are waited out here ([`patiently`]), at most TOO_MANY_RETRIES times; kube's own
        // retry layer (15 tries, and also on 503/504) would multiply that.
        config.default_retry = false;
        let namespace = self
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        tracing::debug!(url = %config.cluster_url, %namespace, "cluster");
        let client = Client::try_from(config).map_err(ClusterError::Client)?;
        Ok((client, namespace))
    }
}

/// One served resource: kube's [`kube::api::ApiResource`] (what `Api<DynamicObject>` needs to
/// build URLs) and its scope, which kube keeps apart in its capabilities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedResource {
    /// Group, version, kind and plural.
    pub api: kube::api::ApiResource,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
}

impl ServedResource {
    /// `v1` or `group/version`.
    pub fn api_version(&self) -> &str {
        &self.api.api_version
    }

    /// The object's kind.
    pub fn kind(&self) -> &str {
        &self.api.kind
    }

    /// The collection's URL path, in `namespace` when namespaced (for naming a collection, as
    /// watches and lists are keyed).
    pub fn collection_url(&self, namespace: &str) -> String {
        let ns = (self.namespaced && !namespace.is_empty()).then_some(namespace);
        <DynamicObject as kube::Resource>::url_path(&self.api, ns)
    }

    /// An object's key, for messages.
    fn key(&self, namespace: &str, name: &str) -> String {
        ObjectKey {
            group: self.api.group.clone(),
            kind: self.api.kind.clone(),
            namespace: if self.namespaced {
                namespace.to_owned()
            } else {
                String::new()
            },
            name: name.to_owned(),
        }
        .to_string()
    }
}

/// What the cluster serves, indexed by group/version/kind and by group/kind.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    by_gvk: HashMap<(String, String, String), ServedResource>,
    /// The resource to use for a group/kind when no version is named (inventory entries): the
    /// group's preferred version, else the most stable one serving the kind.
    by_gk: HashMap<(String, String), ServedResource>,
}

impl Scope for Discovery {
    fn is_namespaced(&self, group: &str, kind: &str) -> Option<bool> {
        self.by_gk
            .get(&(group.to_owned(), kind.to_owned()))
            .map(|r| r.namespaced)
    }
}

impl Discovery {
    /// Runs kube's aggregated discovery (two requests: `/apis`, `/api`), falling back to its
    /// per-group-version discovery on servers without aggregated discovery (kube then reads
    /// an empty `APIGroupDiscoveryList`: no core group).
    pub async fn fetch(client: &Client) -> Result<Discovery, ClusterError> {
        let aggregated = kube::discovery::Discovery::new(client.clone())
            .run_aggregated()
            .await
            .map_err(ClusterError::Discovery)?;
        let found = if aggregated.has_group(ApiGroup::CORE_GROUP) {
            aggregated
        } else {
            tracing::debug!("no aggregated discovery; asking each group version");
            kube::discovery::Discovery::new(client.clone())
                .run()
                .await
                .map_err(ClusterError::Discovery)?
        };
        let discovery = Discovery::index(found.groups());
        tracing::debug!(kinds = discovery.by_gk.len(), "discovered");
        Ok(discovery)
    }

    /// Indexes kube's discovered groups.
    pub fn index<'a>(groups: impl Iterator<Item = &'a ApiGroup>) -> Discovery {
        let mut discovery = Discovery::default();
        for group in groups {
            // Preferred version first: its resource is the group/kind's.
            let preferred = group.preferred_version_or_latest().to_owned();
            let versions = std::iter::once(preferred.as_str())
                .chain(group.versions().filter(|v| *v != preferred));
            for version in versions {
                for (api, capabilities) in group.versioned_resources(version) {
                    let served = ServedResource {
                        namespaced: capabilities.scope == ResourceScope::Namespaced,
                        api,
                    };
                    discovery
                        .by_gk
                        .entry((served.api.group.clone(), served.api.kind.clone()))
                        .or_insert_with(|| served.clone());
                    discovery.by_gvk.insert(
                        (
                            served.api.group.clone(),
                            served.api.version.clone(),
                            served.api.kind.clone(),
                        ),
                        served,
                    );
                }
            }
        }
        discovery
    }

    /// The resource serving objects of `api_version` and `kind`.
    pub fn resource(&self, api_version: &str, kind: &str) -> Result<&ServedResource, ClusterError> {
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
    pub fn resource_of(&self, object: &Value) -> Result<&ServedResource, ClusterError> {
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
    pub fn resource_for_key(&self, key: &ObjectKey) -> Result<&ServedResource, ClusterError> {
        self.by_gk
            .get(&(key.group.clone(), key.kind.clone()))
            .ok_or_else(|| ClusterError::UnknownKind {
                api_version: key.group.clone(),
                kind: key.kind.clone(),
            })
    }
}

/// Whether a server-side apply is a dry run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DryRun {
    /// Really change the cluster.
    No,
    /// Ask the server to validate and admit, without persisting (`dryRun=All`).
    Server,
}

/// The calls the commands make, on one client.
#[derive(Clone)]
pub struct Rest {
    /// The client.
    pub client: Client,
}

/// Items per page of a metadata-only LIST ([`Rest::names`]).
const PAGE: u32 = 500;

/// How many times a request answered 429 is sent again.
const TOO_MANY_RETRIES: usize = 5;

/// Sends a request again while the API server answers 429 (priority and fairness, or
/// max-requests-inflight), after waiting as long as it asks (`retryAfterSeconds`, else a
/// second), at most [`TOO_MANY_RETRIES`] times: waited out, rather than reported or hammered.
async fn patiently<T, F, Fut>(what: &str, mut send: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut attempt = 0;
    loop {
        match send().await {
            Err(kube::Error::Api(status)) if status.code == 429 && attempt < TOO_MANY_RETRIES => {
                attempt += 1;
                let seconds = status
                    .details
                    .as_ref()
                    .map(|d| d.retry_after_seconds)
                    .filter(|s| *s > 0)
                    .unwrap_or(1);
                tracing::debug!(%what, seconds, attempt, "429 from the API server; waiting");
                tokio::time::sleep(Duration::from_secs(u64::from(seconds))).await;
            }
            answer => return answer,
        }
    }
}

/// A kube object as JSON, with `apiVersion` and `kind` (which list items leave out).
fn to_value(object: DynamicObject, resource: &ServedResource) -> Result<Value, kube::Error> {
    let mut value = serde_json::to_value(object).map_err(kube::Error::SerdeError)?;
    if let Some(map) = value.as_object_mut() {
        map.insert(
            "apiVersion".to_owned(),
            Value::from(resource.api.api_version.as_str()),
        );
        map.insert("kind".to_owned(), Value::from(resource.api.kind.as_str()));
    }
    Ok(value)
}

/// The string at `pointer` in `object`, or `""` where there is none (a field Kubernetes omits
/// when empty reads the same as an empty one).
pub(crate) fn text<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

impl Rest {
    /// The API of `resource`, in `namespace` when namespaced.
    fn api(&self, resource: &ServedResource, namespace: &str) -> Api<DynamicObject> {
        if resource.namespaced && !namespace.is_empty() {
            Api::namespaced_with(self.client.clone(), namespace, &resource.api)
        } else {
            Api::all_with(self.client.clone(), &resource.api)
        }
    }

    /// GET one object; `None` when it does not exist.
    pub async fn get(
        &self,
        resource: &ServedResource,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Value>, ClusterError> {
        let key = resource.key(namespace, name);
        let api = self.api(resource, namespace);
        patiently(&key, || api.get_opt(name))
            .await
            .and_then(|found| found.map(|o| to_value(o, resource)).transpose())
            .map_err(|source| ClusterError::Request {
                verb: "get",
                key,
                source: RequestFailure(source),
            })
    }

    /// LIST objects of `resource` (in `namespace`, or everywhere when cluster-scoped) matching a
    /// label selector. Items get their `apiVersion` and `kind`, which lists leave out.
    pub async fn list(
        &self,
        resource: &ServedResource,
        namespace: Option<&str>,
        selector: &str,
    ) -> Result<Vec<Value>, ClusterError> {
        let namespace = namespace.unwrap_or_default();
        let api = self.api(resource, namespace);
        let key = api.resource_url().to_owned();
        let params = ListParams::default().labels(selector);
        patiently(&key, || api.list(&params))
            .await
            .and_then(|list| {
                list.items
                    .into_iter()
                    .map(|o| to_value(o, resource))
                    .collect()
            })
            .map_err(|source| ClusterError::Request {
                verb: "list",
                key: format!("{} ({key})", resource.api.kind),
                source: RequestFailure(source),
            })
    }

    /// The names of every object in a collection (in `namespace` when namespaced), from
    /// metadata-only LISTs of at most [`PAGE`] items each: what exists, without the objects.
    pub async fn names(
        &self,
        resource: &ServedResource,
        namespace: &str,
    ) -> Result<HashSet<String>, ClusterError> {
        let api = self.api(resource, namespace);
        let key = api.resource_url().to_owned();
        let mut names = HashSet::new();
        let mut params = ListParams::default().limit(PAGE);
        loop {
            let page = patiently(&key, || api.list_metadata(&params))
                .await
                .map_err(|source| ClusterError::Request {
                    verb: "list",
                    key: format!("{} ({key})", resource.api.kind),
                    source: RequestFailure(source),
                })?;
            names.extend(page.items.into_iter().filter_map(|o| o.metadata.name));
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => return Ok(names),
            }
        }
    }

    /// Server-side apply of `object` with field manager `kubectl-gitops`.
    pub async fn apply(
        &self,
        resource: &ServedResource,
        object: &Value,
        force: bool,
        dry_run: DryRun,
    ) -> Result<(), ClusterError> {
        let (namespace, name) = (
            text(object, "/metadata/namespace"),
            text(object, "/metadata/name"),
        );
        let key = resource.key(namespace, name);
        let mut params = PatchParams::apply(FIELD_MANAGER);
        params.force = force;
        params.dry_run = dry_run == DryRun::Server;
        let api = self.api(resource, namespace);
        let patch = Patch::Apply(object);
        patiently(&key, || api.patch(name, &params, &patch))
            .await
            .map(drop)
            .map_err(|source| ClusterError::Request {
                verb: "apply",
                key,
                source: RequestFailure(source),
            })
    }

    /// POST (create) `object` with field manager `kubectl-gitops`: for hooks, which may have
    /// only a `generateName` and so cannot be server-side applied. Returns the created object.
    pub async fn create(
        &self,
        resource: &ServedResource,
        object: &Value,
    ) -> Result<Value, ClusterError> {
        let wrap = |source| ClusterError::Request {
            verb: "create",
            key: gitops_shared::hooks::object_label(object),
            source: RequestFailure(source),
        };
        let data: DynamicObject =
            serde_json::from_value(object.clone()).map_err(|e| wrap(kube::Error::SerdeError(e)))?;
        let api = self.api(resource, text(object, "/metadata/namespace"));
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PostParams::default()
        };
        patiently(&gitops_shared::hooks::object_label(object), || {
            api.create(&params, &data)
        })
        .await
        .and_then(|created| to_value(created, resource))
        .map_err(wrap)
    }

    /// Replaces an object's `metadata.managedFields` with `entries` (see [`crate::revert`]): a
    /// merge patch that carries the `resourceVersion` read, so the API server answers 409 when
    /// the object changed since, instead of dropping a newer manager's entry. Returns the
    /// resourceVersion the rewrite made.
    pub async fn write_managed_fields(
        &self,
        resource: &ServedResource,
        namespace: &str,
        name: &str,
        resource_version: &str,
        entries: Vec<ManagedFieldsEntry>,
        dry_run: DryRun,
    ) -> Result<Option<String>, ClusterError> {
        let key = resource.key(namespace, name);
        let api = self.api(resource, namespace);
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            dry_run: dry_run == DryRun::Server,
            ..PatchParams::default()
        };
        let patch = Patch::Merge(PartialObjectMeta::<DynamicObject> {
            types: None,
            metadata: ObjectMeta {
                resource_version: Some(resource_version.to_owned()),
                managed_fields: Some(entries),
                ..ObjectMeta::default()
            },
            _phantom: std::marker::PhantomData,
        });
        patiently(&key, || api.patch_metadata(name, &params, &patch))
            .await
            .map(|written| written.metadata.resource_version)
            .map_err(|source| ClusterError::Request {
                verb: "take over the hand-made fields of",
                key,
                source: RequestFailure(source),
            })
    }

    /// DELETE one object (background propagation). A 404 counts as deleted.
    pub async fn delete(
        &self,
        resource: &ServedResource,
        namespace: &str,
        name: &str,
        dry_run: DryRun,
    ) -> Result<(), ClusterError> {
        let key = resource.key(namespace, name);
        let api = self.api(resource, namespace);
        let params = DeleteParams {
            dry_run: dry_run == DryRun::Server,
            ..DeleteParams::background()
        };
        match patiently(&key, || api.delete(name, &params)).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(source) => Err(ClusterError::Request {
                verb: "delete",
                key,
                source: RequestFailure(source),
            }),
        }
    }

    /// Who the cluster says we are (SelfSubjectReview); `None` when the server does not tell.
    pub async fn whoami(&self) -> Option<String> {
        // Asked a few times: a busy API server may drop one request, and the inventory's
        // `synced-by` must be the authenticated user (the webhook holds it to that).
        let api: Api<SelfSubjectReview> = Api::all(self.client.clone());
        for attempt in 0..3u64 {
            match api
                .create(&PostParams::default(), &SelfSubjectReview::default())
                .await
            {
                Ok(review) => return review.status?.user_info?.username,
                Err(error) => {
                    tracing::debug!(%error, attempt, "SelfSubjectReview failed");
                    tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
                }
            }
        }
        None
    }
}
