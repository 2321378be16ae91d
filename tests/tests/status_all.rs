//! `status` beyond one app's table: every app of gitops.yaml at a glance (`--all`, `-o json`),
//! the tree of live objects the cluster made from Git's (`--tree`), `--watch` printing a line per
//! change on a non-terminal, and `--color`.
//!
//! On a real API server the controller-manager makes the ReplicaSet and the Pod of the
//! Deployment and the EndpointSlice of the Service; with no kubelet the Pod stays Pending and the
//! test plays the kubelet by writing its status. The test API server has no controllers: there
//! the test writes the ReplicaSet, Pod and EndpointSlice itself, with the ownerReferences and
//! labels the controllers would give them (said on stderr when it does).

use std::io::{BufRead as _, BufReader};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use gitops_e2e::harness::{Cluster, Repo};
use serde_json::{json, Value};

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

/// Waits for `what` to return something, up to 60 s.
fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
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

pub fn running_ready() -> Value {
    json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [{"name": "web", "ready": true, "restartCount": 0, "image": "registry.invalid/web:1", "imageID": "",
            "state": {"running": {"startedAt": "2026-12-03T12:00:00Z"}}}]})
}

pub fn crash_looping() -> Value {
    json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
        "containerStatuses": [{"name": "web", "ready": false, "restartCount": 4, "image": "registry.invalid/web:1", "imageID": "",
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}}}]})
}

fn app<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["apps"]
        .as_array()
        .and_then(|apps| apps.iter().find(|a| a["app"] == name))
        .unwrap_or_else(|| panic!("app {name} in {report:#}"))
}

fn node<'a>(nodes: &'a Value, kind: &str) -> &'a Value {
    nodes
        .as_array()
        .and_then(|n| n.iter().find(|o| o["kind"] == kind))
        .unwrap_or_else(|| panic!("{kind} in {nodes:#}"))
}

#[test]
fn all_apps_tree_watch_and_colour() {
    let cluster = Cluster::new("status-all");
    let ns = cluster.namespace.clone();
    let repo = Repo::init(&cluster.dir.path().join("repo"));
    let v1 = two_apps(&repo, &ns, "info");
    let spec = repo.spec();
    let run = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--repo", spec.as_str(), "--revision", "HEAD"]);
        cluster.run(&all)
    };

    // Nothing synced: every app Missing, exit 1. No app named and two apps: the all-apps view.
    let before = run(&["status", "-o", "json"]);
    assert_eq!(before.code, 1, "{before}");
    let report: Value = serde_json::from_str(&before.stdout).expect("json");
    assert_eq!(report["head"], json!(v1));
    assert_eq!(app(&report, "web")["sync"], "Missing");
    assert_eq!(app(&report, "web")["clusterRevision"], Value::Null);
    assert_eq!(app(&report, "settings")["objects"], 1);

    for name in ["web", "settings"] {
        let sync = run(&["sync", name]);
        assert_eq!(sync.code, 0, "{sync}");
    }
    let pod = controller_objects(&cluster);
    let pod_name = pod["metadata"]["name"]
        .as_str()
        .expect("pod name")
        .to_owned();
    let v2 = two_apps(&repo, &ns, "debug");

    // One line per app: settings is a commit behind and OutOfSync, web a commit behind, Synced,
    // and not Healthy (its Pod is Pending).
    let all = run(&["status", "--all", "-o", "json"]);
    assert_eq!(all.code, 1, "{all}");
    let report: Value = serde_json::from_str(&all.stdout).expect("json");
    assert_eq!(report["head"], json!(v2));
    let settings = app(&report, "settings");
    assert_eq!(settings["sync"], "OutOfSync", "{settings}");
    assert_eq!(settings["outOfSync"], 1);
    assert_eq!(settings["behind"], 1);
    assert_eq!(settings["clusterRevision"], json!(v1));
    assert_eq!(settings["health"], "Healthy");
    let web = app(&report, "web");
    assert_eq!(web["sync"], "Synced", "{web}");
    assert_eq!(web["behind"], 1);
    assert_eq!(web["objects"], 3);
    assert_eq!(web["health"], "Progressing", "{web}");
    assert!(
        web["healthReason"]
            .as_str()
            .is_some_and(|r| r.starts_with("Deployment/web")),
        "{web}"
    );

    let table = run(&["status", "--all"]);
    assert_eq!(table.code, 1, "{table}");
    let short = &v1[..12];
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(
        lines[0].starts_with("APP ")
            && lines[0].contains("REVISION")
            && lines[0].contains("OBJECTS"),
        "{table}"
    );
    let settings_line = lines
        .iter()
        .find(|l| l.starts_with("settings "))
        .expect("settings row");
    assert!(
        settings_line.contains(&format!("{short} (1 behind)")),
        "{table}"
    );
    assert!(settings_line.contains("OutOfSync (1)"), "{table}");
    assert!(
        !table.stdout.contains('\x1b'),
        "NO_COLOR: no colour\n{table}"
    );
    let coloured = run(&["status", "--all", "--color", "always"]);
    assert!(
        coloured.stdout.contains("\x1b[33mOutOfSync (1)\x1b[0m"),
        "{coloured}"
    );

    // The tree: Deployment → ReplicaSet → Pod, Service → EndpointSlice, each with its health.
    let tree = run(&["status", "web", "--tree", "-o", "json"]);
    let report: Value = serde_json::from_str(&tree.stdout).expect("json");
    let deployment = node(&report["objects"], "Deployment");
    let replicaset = node(&deployment["children"], "ReplicaSet");
    let pod_node = node(&replicaset["children"], "Pod");
    assert_eq!(pod_node["name"], json!(pod_name));
    assert_eq!(pod_node["health"], "Progressing", "{pod_node}");
    let service = node(&report["objects"], "Service");
    let slice = node(&service["children"], "EndpointSlice");
    assert!(
        slice["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("web-")),
        "{slice}"
    );
    assert!(node(&report["objects"], "Namespace")
        .get("children")
        .is_none());

    // --watch on a pipe: the view once, then a line per change. The kubelet's writes show.
    let mut child = cluster
        .command(&["status", "web", "--tree", "--watch", "--repo", &spec])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("status --watch starts");
    let stdout = child.stdout.take().expect("stdout");
    let (lines_tx, lines_rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let expect_line = |what: &str, wanted: &dyn Fn(&str) -> bool| -> String {
        let started = Instant::now();
        let mut seen = Vec::new();
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok(line) = lines_rx.recv_timeout(Duration::from_millis(200)) {
                if wanted(&line) {
                    return line;
                }
                seen.push(line);
            }
        }
        panic!(
            "no line {what} from status --watch; saw:\n{}",
            seen.join("\n")
        );
    };
    expect_line("with the Pod in the tree", &|l| {
        l.contains(&format!("Pod/{pod_name}"))
    });
    set_pod_status(&cluster, &pod_name, running_ready());
    let healthy = expect_line("saying the Pod is Healthy", &|l| {
        l.contains(&format!("Pod/{pod_name} Healthy"))
    });
    assert!(
        healthy.starts_with("20"),
        "a line per change starts with its time: {healthy}"
    );
    set_pod_status(&cluster, &pod_name, crash_looping());
    let degraded = expect_line("saying the Pod is Degraded", &|l| {
        l.contains(&format!("Pod/{pod_name} Degraded"))
    });
    assert!(
        degraded.contains("container web: CrashLoopBackOff"),
        "{degraded}"
    );
    let _ = child.kill();
    let _ = child.wait();

    // The table form of the tree, with the Degraded Pod under its ReplicaSet.
    let table = run(&["status", "web", "--tree"]);
    assert_eq!(table.code, 1, "{table}");
    let pod_line = table
        .stdout
        .lines()
        .find(|l| l.contains(&format!("Pod/{pod_name}")))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        pod_line.starts_with("│  └─ Pod/") || pod_line.starts_with("   └─ Pod/"),
        "{table}"
    );
    assert!(
        pod_line.contains("Degraded") && pod_line.contains("CrashLoopBackOff"),
        "{table}"
    );
    assert!(table.stdout.contains("└─ EndpointSlice/web-"), "{table}");
}
