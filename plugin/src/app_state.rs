//! What `sync`, `diff` and `status` all start from: the app rendered from Git with the cluster's
//! discovery, its inventory, and the live objects that matter — the ones Git declares, the ones the
//! last sync recorded, and any other object labelled as a member of the app's ApplySet.
//!
//! Live objects are read with one LIST per resource and namespace (label selector on the ApplySet
//! id), plus a GET for each declared object the lists did not return that exists (where many are
//! missing, one metadata-only LIST per collection says which), so a large unchanged app and a
//! large new one each cost a handful of requests.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use futures::stream::{self, StreamExt as _};
use gitops_shared::hooks::is_hook;
use gitops_shared::object::{ObjectKey, RenderedObject};
use gitops_shared::provenance::{inventory_parent, APPLYSET_PART_OF_LABEL};
use gitops_shared::render::{render_app, RenderOptions, Rendered};
use gitops_shared::scope::{BuiltinScope, Scope as _};
use serde_json::Value;

use crate::cluster::{ClusterArgs, ClusterError, Discovery, Rest, ServedResource};
use crate::inventory::Inventory;
use crate::source::{ResolvedSource, SourceArgs, SourceError};

/// How many requests run at once.
pub const CONCURRENCY: usize = 8;

/// Why the app's state could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AppStateError {
    /// Repository, revision or app.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Rendering the commit.
    #[error("cannot render the app")]
    Render(#[source] gitops_shared::render::RenderError),
    /// Talking to the cluster.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The render and the cluster disagree on a kind's scope.
    #[error("{key} ({source_ref}): {message}")]
    Scope {
        /// The object.
        key: String,
        /// Where Git declares it.
        source_ref: String,
        /// What disagrees and how to fix it.
        message: String,
    },
}

/// The render and the cluster disagree on whether a kind is namespaced.
///
/// Rendering decides scope from Git alone (the built-in table, CRDs in the render, the app's
/// `clusterScopedKinds`), because the webhook renders the same commit without asking the cluster
/// and both must produce the same objects. When the cluster knows better, the sync stops and
/// says how to put that knowledge into Git.
fn check_scopes(rendered: &Rendered, discovery: &Discovery) -> Result<(), AppStateError> {
    for object in &rendered.objects {
        let key = object.key();
        let Some(namespaced) = discovery.is_namespaced(&key.group, &key.kind) else {
            continue;
        };
        let has_namespace = !key.namespace.is_empty();
        if namespaced != has_namespace {
            let fix = if namespaced {
                format!(
                    "give it metadata.namespace in Git (or drop {}.{} from clusterScopedKinds)",
                    key.kind, key.group
                )
            } else {
                format!(
                    "add clusterScopedKinds: [{}.{}] to app {:?} in gitops.yaml",
                    key.kind, key.group, rendered.app.name
                )
            };
            return Err(AppStateError::Scope {
                key: key.to_string(),
                source_ref: object.source.to_string(),
                message: format!(
                    "the cluster serves {} {}, but the render {} — {fix}",
                    key.kind,
                    if namespaced {
                        "in namespaces"
                    } else {
                        "cluster-scoped"
                    },
                    if has_namespace {
                        format!("put it in namespace {}", key.namespace)
                    } else {
                        "left it without a namespace".to_owned()
                    },
                ),
            });
        }
    }
    Ok(())
}

/// The app as Git declares it and as the cluster holds it.
pub struct AppState {
    /// Repository, commit and app.
    pub source: ResolvedSource,
    /// REST calls on the cluster.
    pub rest: Rest,
    /// What the cluster serves.
    pub discovery: Discovery,
    /// The render of the commit, without its hooks.
    pub rendered: Rendered,
    /// The hooks Git declares (objects with a hook annotation): run by `sync` at their moment,
    /// never inventory members, so not in `rendered.objects`.
    pub hooks: Vec<RenderedObject>,
    /// The ApplySet parent as it is in the cluster.
    pub parent: Option<Value>,
    /// The inventory the last sync recorded.
    pub inventory: Option<Inventory>,
    /// Live objects by key: declared ones that exist, inventory members that exist, and other
    /// objects labelled as members of the set.
    pub live: HashMap<ObjectKey, Value>,
}

impl AppState {
    /// Resolves the source, connects, discovers, renders and reads the live state.
    pub async fn load(
        source: &SourceArgs,
        cluster: &ClusterArgs,
    ) -> Result<AppState, AppStateError> {
        let resolved = source.resolve()?;
        let (client, namespace) = cluster.connect().await?;
        AppState::load_with(resolved, client, &namespace).await
    }

    /// Discovers, renders and reads the live state with a given client (tests put a mock
    /// behind it).
    pub async fn load_with(
        resolved: ResolvedSource,
        client: kube::Client,
        namespace: &str,
    ) -> Result<AppState, AppStateError> {
        let rest = Rest { client };
        let discovery = Discovery::fetch(&rest.client).await?;
        let options = RenderOptions {
            scope: &BuiltinScope,
            folder_namespace: Some(namespace),
        };
        let mut rendered = render_app(&resolved.repo, resolved.commit, &resolved.app, &options)
            .map_err(AppStateError::Render)?;
        let (hooks, objects) = std::mem::take(&mut rendered.objects)
            .into_iter()
            .partition(|o| is_hook(&o.object));
        rendered.objects = objects;
        check_scopes(&rendered, &discovery)?;
        tracing::info!(app = %rendered.app.name, commit = %resolved.commit, objects = rendered.objects.len(), "rendered");
        let mut state = AppState {
            source: resolved,
            rest,
            discovery,
            rendered,
            hooks,
            parent: None,
            inventory: None,
            live: HashMap::new(),
        };
        state.read_live().await?;
        Ok(state)
    }

    /// The ConfigMap resource (for the parent).
    pub fn configmaps(&self) -> Result<&ServedResource, ClusterError> {
        self.discovery.resource("v1", "ConfigMap")
    }

    /// Declared objects by key, in render order.
    pub fn desired(&self) -> Vec<(ObjectKey, &Value)> {
        self.rendered
            .objects
            .iter()
            .map(|o| (o.key(), &o.object))
            .collect()
    }

    /// Reads the parent and the live objects.
    pub async fn read_live(&mut self) -> Result<(), ClusterError> {
        let parent_key = inventory_parent(&self.rendered.app.name, &self.rendered.namespace);
        let configmaps = self.configmaps()?.clone();
        self.parent = self
            .rest
            .get(&configmaps, &parent_key.namespace, &parent_key.name)
            .await?;
        self.inventory = self.parent.as_ref().map(Inventory::from_parent);

        // One LIST per resource and namespace that declared objects or members live in.
        let mut collections: BTreeMap<String, (ServedResource, Option<String>)> = BTreeMap::new();
        let mut add = |resource: &ServedResource, namespace: &str| {
            let ns = resource.namespaced.then(|| namespace.to_owned());
            collections
                .entry(resource.collection_url(ns.as_deref().unwrap_or_default()))
                .or_insert_with(|| (resource.clone(), ns));
        };
        // Hooks' collections too: a hook's previous runs are deleted before it runs again.
        for object in self.rendered.objects.iter().chain(&self.hooks) {
            if let Ok(resource) = self.discovery.resource_of(&object.object) {
                add(resource, &object.key().namespace);
            }
        }
        for member in self.inventory.iter().flat_map(|i| i.members.iter()) {
            if let Ok(resource) = self.discovery.resource_for_key(member) {
                add(resource, &member.namespace);
            }
        }
        let selector = format!("{APPLYSET_PART_OF_LABEL}={}", self.rendered.applyset);
        let rest = &self.rest;
        let lists: Vec<Result<Vec<Value>, ClusterError>> = stream::iter(collections.values())
            .map(|(resource, ns)| rest.list(resource, ns.as_deref(), &selector))
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let mut live = HashMap::new();
        for list in lists {
            for object in list? {
                if let Some(key) = ObjectKey::of(&object) {
                    live.insert(key, object);
                }
            }
        }
        // Declared objects that exist without our labels (made by hand, or by another tool), or
        // not at all. Where many are missing from one collection (a first sync), one metadata-only
        // LIST says which exist, so only those are read: 1,000 new objects cost a request, not
        // 1,000 GETs. A collection the user may not list is read object by object.
        let mut missing: BTreeMap<String, (ServedResource, String, Vec<ObjectKey>)> =
            BTreeMap::new();
        for object in &self.rendered.objects {
            let key = object.key();
            if live.contains_key(&key) {
                continue;
            }
            if let Ok(resource) = self.discovery.resource_of(&object.object) {
                missing
                    .entry(resource.collection_url(&key.namespace))
                    .or_insert_with(|| (resource.clone(), key.namespace.clone(), Vec::new()))
                    .2
                    .push(key);
            }
        }
        let mut to_read: Vec<(ObjectKey, ServedResource)> = Vec::new();
        for (resource, namespace, keys) in missing.into_values() {
            let existing = if keys.len() > CONCURRENCY {
                match rest.names(&resource, &namespace).await {
                    Ok(names) => Some(names),
                    Err(error) => {
                        tracing::debug!(%error, "cannot list names; reading each object");
                        None
                    }
                }
            } else {
                None
            };
            to_read.extend(
                keys.into_iter()
                    .filter(|k| {
                        existing
                            .as_ref()
                            .is_none_or(|names| names.contains(&k.name))
                    })
                    .map(|k| (k, resource.clone())),
            );
        }
        let missing = to_read;
        let found: Vec<Result<Option<Value>, ClusterError>> = stream::iter(missing.iter())
            .map(|(key, resource)| rest.get(resource, &key.namespace, &key.name))
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        for object in found {
            if let Some(object) = object? {
                if let Some(key) = ObjectKey::of(&object) {
                    live.insert(key, object);
                }
            }
        }
        self.live = live;
        Ok(())
    }

    /// Live objects that Git does not declare: members of the last inventory still present, and
    /// objects labelled as members of the set. The flag says whether the inventory lists it (only
    /// those are ever pruned).
    pub fn extraneous(&self) -> Vec<(ObjectKey, bool)> {
        let declared: BTreeSet<ObjectKey> = self.rendered.objects.iter().map(|o| o.key()).collect();
        let members: BTreeSet<&ObjectKey> = self
            .inventory
            .iter()
            .flat_map(|i| i.members.iter())
            .collect();
        let mut out: Vec<(ObjectKey, bool)> = self
            .live
            .iter()
            // A hook's runs carry the set's labels but are never members.
            .filter(|(k, object)| !declared.contains(*k) && !is_hook(object))
            .map(|(k, _)| k)
            .map(|k| (k.clone(), members.contains(k)))
            .collect();
        out.sort();
        out
    }
}

/// A single-threaded runtime for a command: the work is waiting on the network.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}
