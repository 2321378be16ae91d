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
use gitops_e2e::workloads::{
    controller_objects, crash_looping, running_ready, set_pod_status, two_apps,
};
use serde_json::{json, Value};

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
