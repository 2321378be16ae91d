//! When to look again: one API watch per collection an app's objects and their derived objects
//! live in, each event a tick on a [`tokio::sync::watch`] channel. `status --watch` and the web
//! view reload the app on a tick (after a short pause, so a rollout's burst of events is one
//! reload), never on a timer.
//!
//! A watch the server ends (its timeout, a restart) is opened again from the last resourceVersion
//! seen; one that is too old (410 Gone) starts over from a fresh list. A failed connection waits
//! two seconds before the next try, so an unreachable server is not hammered.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::StreamExt as _;
use kube::api::{Api, DynamicObject, WatchEvent, WatchParams};

use crate::app_state::AppState;
use crate::cluster::ServedResource;
use crate::status::tree::derived_collections;

/// How long the server keeps one watch open (below the API server's own 30-minute cap).
const WATCH_TIMEOUT_SECS: u32 = 290;
/// Pause before reconnecting after a failure.
const RETRY_AFTER: Duration = Duration::from_secs(2);
/// Quiet time after a tick before reloading, so a burst of events is one reload.
pub const SETTLE: Duration = Duration::from_millis(150);

/// A collection to watch: a resource, in a namespace or cluster-wide.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Collection {
    /// The collection URL (the identity of the watch).
    pub url: String,
    /// apiVersion.
    pub api_version: String,
    /// Kind.
    pub kind: String,
    /// Plural.
    pub plural: String,
    /// Namespace, or empty for cluster-wide.
    pub namespace: String,
}

impl Collection {
    fn of(resource: &ServedResource, namespace: &str) -> Collection {
        let ns = if resource.namespaced { namespace } else { "" };
        Collection {
            url: resource.collection_url(ns),
            api_version: resource.api_version().to_owned(),
            kind: resource.kind().to_owned(),
            plural: resource.api.plural.clone(),
            namespace: ns.to_owned(),
        }
    }
}

/// What to watch for an app: the collections of its declared objects, of its inventory, and of
/// the kinds controllers derive from them.
pub fn collections(state: &AppState) -> BTreeSet<Collection> {
    let mut out = BTreeSet::new();
    for object in &state.rendered.objects {
        if let Ok(resource) = state.discovery.resource_of(&object.object) {
            out.insert(Collection::of(resource, &object.key().namespace));
        }
    }
    if let Ok(configmaps) = state.configmaps() {
        out.insert(Collection::of(configmaps, &state.rendered.namespace));
    }
    for (resource, ns) in derived_collections(state) {
        out.insert(Collection::of(&resource, &ns));
    }
    out
}

/// Watches that tick `changes` on every event; add collections as apps grow.
pub struct Watches {
    client: kube::Client,
    changes: tokio::sync::watch::Sender<u64>,
    running: BTreeSet<String>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Watches {
    /// No watches yet; ticks go to `changes`.
    pub fn new(client: kube::Client, changes: tokio::sync::watch::Sender<u64>) -> Watches {
        Watches {
            client,
            changes,
            running: BTreeSet::new(),
            tasks: Vec::new(),
        }
    }

    /// Starts a watch for each collection not watched yet.
    pub fn ensure(&mut self, wanted: &BTreeSet<Collection>) {
        for collection in wanted {
            if self.running.insert(collection.url.clone()) {
                tracing::debug!(url = %collection.url, "watch");
                let task = tokio::spawn(watch_collection(
                    self.client.clone(),
                    collection.clone(),
                    self.changes.clone(),
                ));
                self.tasks.push(task);
            }
        }
    }
}

impl Drop for Watches {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn watch_collection(
    client: kube::Client,
    collection: Collection,
    changes: tokio::sync::watch::Sender<u64>,
) {
    let (group, version) = match collection.api_version.split_once('/') {
        Some((g, v)) => (g.to_owned(), v.to_owned()),
        None => (String::new(), collection.api_version.clone()),
    };
    let resource = kube::discovery::ApiResource {
        group,
        version,
        api_version: collection.api_version.clone(),
        kind: collection.kind.clone(),
        plural: collection.plural.clone(),
    };
    let api: Api<DynamicObject> = if collection.namespace.is_empty() {
        Api::all_with(client, &resource)
    } else {
        Api::namespaced_with(client, &collection.namespace, &resource)
    };
    // "0": the server starts with the objects it holds (as ADDED), then follows changes.
    let mut version = "0".to_owned();
    loop {
        let params = WatchParams::default().timeout(WATCH_TIMEOUT_SECS);
        let stream = match api.watch(&params, &version).await {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(url = %collection.url, %error, "cannot watch; trying again");
                tokio::time::sleep(RETRY_AFTER).await;
                continue;
            }
        };
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o)) => {
                    if let Some(rv) = o.metadata.resource_version {
                        version = rv;
                    }
                    changes.send_modify(|n| *n += 1);
                }
                Ok(WatchEvent::Bookmark(b)) => version = b.metadata.resource_version,
                Ok(WatchEvent::Error(status)) => {
                    tracing::debug!(url = %collection.url, code = status.code, message = %status.message, "watch ended");
                    if status.code == 410 {
                        version = "0".to_owned();
                    }
                    break;
                }
                Err(error) => {
                    tracing::debug!(url = %collection.url, %error, "watch stream failed");
                    tokio::time::sleep(RETRY_AFTER).await;
                    break;
                }
            }
        }
    }
}

/// Waits for the next tick, then for [`SETTLE`] more of quiet, draining ticks meanwhile.
/// Returns false when every sender is gone.
pub async fn next_change(changes: &mut tokio::sync::watch::Receiver<u64>) -> bool {
    if changes.changed().await.is_err() {
        return false;
    }
    loop {
        match tokio::time::timeout(SETTLE, changes.changed()).await {
            Ok(Ok(())) => continue,
            Ok(Err(_)) => return false,
            Err(_) => return true,
        }
    }
}
