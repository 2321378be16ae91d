//! The live objects the cluster made from Git's: each object's owned objects, transitively, by
//! `metadata.ownerReferences` (Deployment → ReplicaSet → Pod, CronJob → Job → Pod), and a
//! Service's EndpointSlices by the `kubernetes.io/service-name` label (which the EndpointSlice
//! controller sets, and which is what `kubectl` and Argo CD use too).
//!
//! Only the kinds controllers make from an app's objects are read — one LIST per kind and
//! namespace the app lives in — so the tree costs a handful of requests, not a cluster scan.

use std::collections::{BTreeSet, HashSet};

use futures::stream::{self, StreamExt as _};
use gitops_shared::health::{health_of, HealthStatus};
use serde::Serialize;
use serde_json::Value;

use crate::app_state::{AppState, CONCURRENCY};
use crate::cluster::{text, ClusterError, ServedResource};

/// The label the EndpointSlice controller puts on a Service's slices.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The kinds controllers derive from an app's objects: (apiVersion, kind).
pub const DERIVED_KINDS: [(&str, &str); 4] = [
    ("apps/v1", "ReplicaSet"),
    ("v1", "Pod"),
    ("batch/v1", "Job"),
    ("discovery.k8s.io/v1", "EndpointSlice"),
];

/// Ownership chains longer than this are cut (a loop in ownerReferences must not hang us).
const MAX_DEPTH: usize = 6;

/// A live object the cluster made, with what it made in turn.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveNode {
    /// Kind.
    pub kind: String,
    /// API group.
    pub group: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Health.
    pub health: HealthStatus,
    /// Why not Healthy.
    pub health_reason: String,
    /// What it owns.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<LiveNode>,
    /// The object as the cluster holds it (for the web view's YAML; not in `-o json`).
    #[serde(skip)]
    pub object: Value,
}

/// The resources of [`DERIVED_KINDS`] the cluster serves, with the namespaces to list them in.
pub fn derived_collections(state: &AppState) -> Vec<(ServedResource, String)> {
    let namespaces: BTreeSet<String> = state
        .live
        .keys()
        .map(|k| k.namespace.clone())
        .filter(|ns| !ns.is_empty())
        .collect();
    let mut out = Vec::new();
    for (api_version, kind) in DERIVED_KINDS {
        if let Ok(resource) = state.discovery.resource(api_version, kind) {
            for ns in &namespaces {
                out.push((resource.clone(), ns.clone()));
            }
        }
    }
    out
}

/// Reads the objects that may hang under the app's objects.
pub async fn read_pool(state: &AppState) -> Result<Vec<Value>, ClusterError> {
    let collections = derived_collections(state);
    let rest = &state.rest;
    let lists: Vec<Result<Vec<Value>, ClusterError>> = stream::iter(collections.iter())
        .map(|(resource, ns)| rest.list(resource, Some(ns), ""))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut pool = Vec::new();
    for list in lists {
        pool.extend(list?);
    }
    Ok(pool)
}

fn owned_by(object: &Value, uid: &str) -> bool {
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| refs.iter().any(|r| text(r, "/uid") == uid))
}

fn node(object: &Value, pool: &[Value], seen: &mut HashSet<String>, depth: usize) -> LiveNode {
    let health = health_of(object);
    let api_version = text(object, "/apiVersion");
    LiveNode {
        kind: text(object, "/kind").to_owned(),
        group: api_version
            .split_once('/')
            .map(|(g, _)| g)
            .unwrap_or("")
            .to_owned(),
        namespace: text(object, "/metadata/namespace").to_owned(),
        name: text(object, "/metadata/name").to_owned(),
        health: health.status,
        health_reason: health.reason,
        children: children(object, pool, seen, depth + 1),
        object: object.clone(),
    }
}

/// The live objects under `parent` (a live object), nearest first, sorted by kind and name.
pub fn children(
    parent: &Value,
    pool: &[Value],
    seen: &mut HashSet<String>,
    depth: usize,
) -> Vec<LiveNode> {
    if depth > MAX_DEPTH {
        return Vec::new();
    }
    let uid = text(parent, "/metadata/uid");
    let namespace = text(parent, "/metadata/namespace");
    let is_service = text(parent, "/apiVersion") == "v1" && text(parent, "/kind") == "Service";
    let name = text(parent, "/metadata/name");
    let mut found: Vec<&Value> = pool
        .iter()
        .filter(|o| {
            (!uid.is_empty() && owned_by(o, uid))
                || (is_service
                    && text(o, "/kind") == "EndpointSlice"
                    && text(o, "/metadata/namespace") == namespace
                    && o.pointer("/metadata/labels")
                        .and_then(|l| l.get(SERVICE_NAME_LABEL))
                        .and_then(Value::as_str)
                        == Some(name))
        })
        .collect();
    found.sort_by(|a, b| {
        (text(a, "/kind"), text(a, "/metadata/name"))
            .cmp(&(text(b, "/kind"), text(b, "/metadata/name")))
    });
    let mut out = Vec::new();
    for object in found {
        let key = format!(
            "{}/{}",
            text(object, "/kind"),
            text(object, "/metadata/uid")
        );
        if !seen.insert(key) {
            continue;
        }
        out.push(node(object, pool, seen, depth));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn owned(api_version: &str, kind: &str, name: &str, uid: &str, owner: &str) -> Value {
        json!({"apiVersion": api_version, "kind": kind,
            "metadata": {"name": name, "namespace": "shop", "uid": uid,
                "ownerReferences": [{"uid": owner, "controller": true}]}})
    }

    #[test]
    fn deployment_to_pods_and_service_to_slices() {
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "uid": "d1", "generation": 1},
            "spec": {"replicas": 1},
            "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1}});
        let service = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "shop", "uid": "s1"}, "spec": {"type": "ClusterIP"}});
        let mut pending = owned("v1", "Pod", "web-abc-1", "p1", "r1");
        pending["status"] = json!({"phase": "Pending"});
        let pool = vec![
            owned("apps/v1", "ReplicaSet", "web-abc", "r1", "d1"),
            pending,
            owned("v1", "Pod", "other", "p9", "r9"),
            json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": "web-x1", "namespace": "shop", "uid": "e1",
                    "labels": {SERVICE_NAME_LABEL: "web"}}}),
            json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": "api-x1", "namespace": "shop", "uid": "e2",
                    "labels": {SERVICE_NAME_LABEL: "api"}}}),
        ];
        let mut seen = HashSet::new();
        let tree = children(&deployment, &pool, &mut seen, 0);
        assert_eq!(tree.len(), 1);
        assert_eq!(
            (tree[0].kind.as_str(), tree[0].name.as_str()),
            ("ReplicaSet", "web-abc")
        );
        let pods = &tree[0].children;
        assert_eq!(pods.len(), 1);
        assert_eq!(pods[0].name, "web-abc-1");
        assert_ne!(
            pods[0].health,
            HealthStatus::Healthy,
            "a Pending Pod is not Healthy"
        );
        let slices = children(&service, &pool, &mut seen, 0);
        let names: Vec<&str> = slices.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["web-x1"]);
    }

    #[test]
    fn an_ownership_loop_ends() {
        let a = owned("v1", "Pod", "a", "u1", "u2");
        let b = owned("v1", "Pod", "b", "u2", "u1");
        let pool = vec![a.clone(), b];
        let tree = children(&a, &pool, &mut HashSet::new(), 0);
        // a owns b, b owns a: each shows once.
        assert_eq!(tree.len(), 1);
        assert_eq!(tree[0].name, "b");
        assert_eq!(tree[0].children.len(), 1);
        assert_eq!(tree[0].children[0].name, "a");
        assert!(tree[0].children[0].children.is_empty());
    }
}
