//! Benchmark: `kubectl gitops sync` of an app of 1,000 ConfigMaps (plus its Namespace) against the
//! test API server, then a no-op resync of the same app, which must send no PATCH at all and take
//! less than 2 s.
//!
//! Run: `cargo build --release -p kubectl-gitops && cargo bench -p gitops-e2e --bench sync_1000`

use std::process::Command;
use std::time::{Duration, Instant};

use gitops_e2e::apiserver::TestApiServer;
use gitops_e2e::harness::{binary, Repo, Run};

const OBJECTS: usize = 1000;

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let repo = Repo::init(&dir.path().join("repo"));
    repo.write(
        "app/namespace.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: bench\n",
    );
    for file in 0..10 {
        let mut text = String::new();
        for i in 0..OBJECTS / 10 {
            let n = file * (OBJECTS / 10) + i;
            text.push_str(&format!(
                "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config-{n:04}\n  labels:\n    tier: bench\ndata:\n  index: \"{n}\"\n  settings: |\n    log_level=info\n    region=eu-west-1\n    replicas=3\n"
            ));
        }
        repo.write(&format!("app/configs-{file}.yaml"), &text);
    }
    repo.commit("1000 configmaps");
    let server = TestApiServer::start().expect("test API server");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, server.kubeconfig("admin-token", "bench")).expect("kubeconfig");
    let spec = repo.spec();
    let sync = || -> (Run, Duration) {
        let start = Instant::now();
        let output = Command::new(binary())
            .args([
                "sync",
                "--repo",
                &spec,
                "--path",
                "app",
                "-n",
                "bench",
                "--kubeconfig",
            ])
            .arg(&kubeconfig)
            .output()
            .expect("kubectl-gitops runs");
        (Run::from(output), start.elapsed())
    };

    let log = server.requests();
    let (first, first_time) = sync();
    assert_eq!(first.code, 0, "{first}");
    assert!(
        first.stdout.contains(&format!("{} created", OBJECTS + 1)),
        "{}",
        first.stdout.lines().last().unwrap_or_default()
    );
    let first_patches = log.count("PATCH");
    log.clear();

    let mut resync_times = Vec::new();
    for _ in 0..5 {
        log.clear();
        let (again, time) = sync();
        assert_eq!(again.code, 0, "{again}");
        assert!(
            again.stdout.contains(&format!("{} unchanged", OBJECTS + 1)),
            "{}",
            again.stdout.lines().last().unwrap_or_default()
        );
        let patches = log.count("PATCH");
        assert_eq!(
            patches,
            0,
            "a no-op resync sent PATCH requests: {:?}",
            log.all()
        );
        resync_times.push(time);
    }
    let requests = log.all().len();
    resync_times.sort();
    let median = resync_times[resync_times.len() / 2];
    let worst = resync_times[resync_times.len() - 1];
    println!(
        "sync of {} objects:            {:>8.3} s ({first_patches} PATCH requests)",
        OBJECTS + 1,
        first_time.as_secs_f64()
    );
    println!(
        "no-op resync (median of 5):     {:>8.3} s (0 PATCH, {requests} requests in all)",
        median.as_secs_f64()
    );
    println!(
        "no-op resync (slowest of 5):    {:>8.3} s",
        worst.as_secs_f64()
    );
    assert!(
        worst < Duration::from_secs(2),
        "a no-op resync took {worst:?}"
    );
}
