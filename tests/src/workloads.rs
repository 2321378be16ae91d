//! Apps whose objects controllers derive others from, for the `status` and `ui` suites: a
//! Deployment and a Service, with the ReplicaSet, Pod and EndpointSlice the controller-manager
//! makes of them (written by the test where no controllers run), and the Pod statuses a kubelet
//! would write.
//!
//! Test support: failures panic with a message saying what is missing.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{Cluster, Repo};

const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: web\n        image: registry.invalid/web:1\n";
const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector:\n    app: web\n  ports:\n  - name: http\n    port: 80\n    targetPort: 8080\n";

/// Two apps in the test's namespace: `web` (Namespace, Deployment, Service) and `settings`
/// (a ConfigMap). Returns the first commit.
pub fn two_apps(repo: &Repo, ns: &str, level: &str) -> String {
    repo.write(
        "gitops.yaml",
        &format!("apps:\n  web:\n    path: apps/web\n    namespace: {ns}\n  settings:\n    path: apps/settings\n    namespace: {ns}\n"),
    );
    repo.write(
        "apps/web/namespace.yaml",
        &format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"),
    );
    repo.write("apps/web/deployment.yaml", DEPLOYMENT);
    repo.write("apps/web/service.yaml", SERVICE);
    repo.write(
        "apps/settings/settings.yaml",
        &format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  LOG_LEVEL: {level}\n"),
    );
    repo.commit(&format!("settings at {level}"))
}

fn items(cluster: &Cluster, path: &str) -> Vec<Value> {
    cluster
        .get(path)
        .and_then(|list| list["items"].as_array().cloned())
        .unwrap_or_default()
}

/// Waits for `what` to return something, up to 60 s; panics naming it when it never does.
pub fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{what} never came"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The Deployment's Pod: made by the real controllers, or written here as they would.
pub fn controller_objects(cluster: &Cluster) -> Value {
    let ns = &cluster.namespace;
    let deployment = cluster
        .get(&format!("/apis/apps/v1/namespaces/{ns}/deployments/web"))
        .expect("the Deployment");
    if !cluster.is_real() {
        eprintln!("status_all: the test API server has no controllers; the test writes the ReplicaSet, Pod and EndpointSlice they would make");
        let owner = |kind: &str, api: &str, object: &Value| {
            json!([{"apiVersion": api, "kind": kind, "name": object["metadata"]["name"],
                "uid": object["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true}])
        };
        let (code, rs) = cluster.request(
            "POST",
            &format!("/apis/apps/v1/namespaces/{ns}/replicasets"),
            Some("application/json"),
            &json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": "web-5d4f8", "namespace": ns, "labels": {"app": "web"},
                    "ownerReferences": owner("Deployment", "apps/v1", &deployment)},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                    "template": deployment["spec"]["template"]}}),
        );
        assert!(matches!(code, 200 | 201), "{code} {rs}");
        let (code, pod) = cluster.request(
            "POST",
            &format!("/api/v1/namespaces/{ns}/pods"),
            Some("application/json"),
            &json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "web-5d4f8-x7k2p", "namespace": ns, "labels": {"app": "web"},
                    "ownerReferences": owner("ReplicaSet", "apps/v1", &rs)},
                "spec": deployment["spec"]["template"]["spec"],
                "status": {"phase": "Pending"}}),
        );
        assert!(matches!(code, 200 | 201), "{code} {pod}");
        let service = cluster
            .get(&format!("/api/v1/namespaces/{ns}/services/web"))
            .expect("the Service");
        let (code, slice) = cluster.request(
            "POST",
            &format!("/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices"),
            Some("application/json"),
            &json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": "web-abcde", "namespace": ns,
                    "labels": {"kubernetes.io/service-name": "web"},
                    "ownerReferences": owner("Service", "v1", &service)},
                "addressType": "IPv4", "endpoints": [], "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}),
        );
        assert!(matches!(code, 200 | 201), "{code} {slice}");
    }
    wait_for("the controller-made Pod and EndpointSlice", || {
        let pods = items(cluster, &format!("/api/v1/namespaces/{ns}/pods"));
        let slices = items(
            cluster,
            &format!("/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices"),
        );
        (!slices.is_empty()).then_some(())?;
        pods.into_iter().next()
    })
}

/// Plays the kubelet: writes the Pod's status (the status subresource on a real server).
pub fn set_pod_status(cluster: &Cluster, pod: &str, status: Value) {
    let ns = &cluster.namespace;
    let mut path = format!("/api/v1/namespaces/{ns}/pods/{pod}");
    if cluster.is_real() {
        path.push_str("/status");
    }
    let (code, body) = cluster.request(
        "PATCH",
        &format!("{path}?fieldManager=kubelet"),
        Some("application/merge-patch+json"),
        &json!({"status": status}),
    );
    assert_eq!(code, 200, "{body}");
}

/// A Pod status: Running and Ready.
pub fn running_ready() -> Value {
    json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [{"name": "web", "ready": true, "restartCount": 0, "image": "registry.invalid/web:1", "imageID": "",
            "state": {"running": {"startedAt": "2026-12-03T12:00:00Z"}}}]})
}

/// A Pod status: its container in CrashLoopBackOff.
pub fn crash_looping() -> Value {
    json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
        "containerStatuses": [{"name": "web", "ready": false, "restartCount": 4, "image": "registry.invalid/web:1", "imageID": "",
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}}}]})
}
