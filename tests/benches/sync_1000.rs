//! Benchmark: `kubectl gitops sync` of an app of 1,000 ConfigMaps into an empty namespace, next to
//! the API server's own ceiling for the same work, then a no-op resync of the same app (which
//! must change nothing and take less than 2 s).
//!
//! The ceiling (issue 13): the same 1,000 rendered objects sent as server-side apply PATCHes over
//! 32 keep-alive connections by one client, into another empty namespace, in the same round. Three
//! rounds alternate ceiling and sync; each prints both times and their ratio (goal ≤ 1.25).
//!
//! The API server is `GITOPS_E2E_KUBECONFIG`'s (its user must be cluster admin), else one started
//! from `../shared/kube` for this run (stopped at the end), else the test API server of
//! `tests/src/apiserver`, which also counts the resync's PATCH requests (it must send none).
//!
//! Run: `cargo build --release -p kubectl-gitops && cargo bench -p gitops-e2e --bench sync_1000`

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use futures::{stream, StreamExt};
use gitops_e2e::apiserver::TestApiServer;
use gitops_e2e::harness::{binary, client_of, Repo, Run};
use gitops_test_support::control_plane::{admin_kubeconfig, StartedControlPlane};
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::Api;
use serde_json::{json, Value};

const OBJECTS: usize = 1000;
const ROUNDS: usize = 3;
/// Applies in flight for the ceiling.
const CEILING_IN_FLIGHT: usize = 32;

/// Where the benchmark runs.
enum Target {
    /// A real API server; the control plane this run started, if it did.
    Real {
        kubeconfig: PathBuf,
        _started: Option<StartedControlPlane>,
    },
    /// The test API server.
    Test {
        server: TestApiServer,
        kubeconfig: PathBuf,
    },
}

impl Target {
    fn find(dir: &Path) -> Target {
        let kube = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/kube");
        if std::env::var_os("GITOPS_E2E_NO_KUBE").is_none() {
            if let Ok((kubeconfig, started)) = admin_kubeconfig(&kube) {
                return Target::Real {
                    kubeconfig,
                    _started: started,
                };
            }
        }
        let server = TestApiServer::start().expect("test API server");
        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(&kubeconfig, server.kubeconfig("admin-token", "default"))
            .expect("kubeconfig");
        Target::Test { server, kubeconfig }
    }

    fn kubeconfig(&self) -> &Path {
        match self {
            Target::Real { kubeconfig, .. } | Target::Test { kubeconfig, .. } => kubeconfig,
        }
    }
}

fn configmaps() -> ApiResource {
    ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&())
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("sync_1000: run with `cargo bench -p gitops-e2e --bench sync_1000`");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let repo = Repo::init(&dir.path().join("repo"));
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
    let target = Target::find(dir.path());
    let kubeconfig = target.kubeconfig().to_path_buf();
    let spec = repo.spec();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (client, url) = client_of(&runtime, &kubeconfig);
    println!(
        "sync_1000 against {} at {url} ({} objects, kubectl-gitops {})",
        match &target {
            Target::Real { .. } => "a real kube-apiserver",
            Target::Test { .. } => "the test API server",
        },
        OBJECTS,
        binary().display()
    );
    // `render` asks no cluster; the other commands get the kubeconfig.
    let run = |args: &[&str]| -> (Run, Duration) {
        let start = Instant::now();
        let mut command = Command::new(binary());
        command.args(args);
        if args.first() != Some(&"render") {
            command.arg("--kubeconfig").arg(&kubeconfig);
        }
        let output = command.output().expect("kubectl-gitops runs");
        (Run::from(output), start.elapsed())
    };
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let make_namespace = |name: &str| {
        runtime.block_on(async {
            let namespace =
                serde_json::from_value(json!({"metadata": {"name": name}})).expect("a namespace");
            namespaces
                .create(&Default::default(), &namespace)
                .await
                .expect("namespace created");
        });
    };
    let tag = std::process::id();
    let (mut ceilings, mut syncs, mut resyncs) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let (ceiling_ns, sync_ns) = (
            format!("bench-ceiling-{tag}-{round}"),
            format!("bench-sync-{tag}-{round}"),
        );
        make_namespace(&ceiling_ns);
        make_namespace(&sync_ns);

        // The ceiling: what sync would apply, as SSA PATCHes, 32 in flight.
        let (rendered, _) = run(&[
            "render",
            "--repo",
            &spec,
            "--path",
            "app",
            "-n",
            &ceiling_ns,
            "-o",
            "json",
        ]);
        assert_eq!(rendered.code, 0, "{rendered}");
        let list: Value = serde_json::from_str(&rendered.stdout).expect("render -o json");
        let objects: Vec<DynamicObject> = list["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|o| serde_json::from_value(o.clone()).expect("an object"))
            .collect();
        assert_eq!(objects.len(), OBJECTS);
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &ceiling_ns, &configmaps());
        let params = PatchParams::apply("kubectl-gitops").force();
        let started = Instant::now();
        runtime.block_on(async {
            stream::iter(&objects)
                .map(|object| {
                    let (api, params) = (&api, &params);
                    async move {
                        let name = object.metadata.name.clone().unwrap_or_default();
                        api.patch(&name, params, &Patch::Apply(object))
                            .await
                            .unwrap_or_else(|e| panic!("apply of {name}: {e}"));
                    }
                })
                .buffer_unordered(CEILING_IN_FLIGHT)
                .collect::<Vec<()>>()
                .await;
        });
        let ceiling = started.elapsed();

        // The sync, into its own empty namespace.
        let requests = match &target {
            Target::Test { server, .. } => Some(server.requests()),
            Target::Real { .. } => None,
        };
        let args = ["sync", "--repo", &spec, "--path", "app", "-n", &sync_ns];
        let (first, took) = run(&args);
        assert_eq!(first.code, 0, "{first}");
        assert!(
            first.stdout.contains(&format!("{OBJECTS} created")),
            "{}",
            first.stdout.lines().last().unwrap_or_default()
        );
        if let Some(log) = &requests {
            log.clear();
        }
        let (again, resync) = run(&args);
        assert_eq!(again.code, 0, "{again}");
        assert!(
            again.stdout.contains(&format!("{OBJECTS} unchanged")),
            "{}",
            again.stdout.lines().last().unwrap_or_default()
        );
        let patches = requests.as_ref().map(|log| log.count("PATCH"));
        assert!(
            patches.is_none_or(|n| n == 0),
            "a no-op resync sent {patches:?} PATCH requests"
        );
        println!(
            "round {}: ceiling {:.3} s, sync {:.3} s, ratio {:.2} (goal <= 1.25); no-op resync {:.3} s{}",
            round + 1,
            ceiling.as_secs_f64(),
            took.as_secs_f64(),
            took.as_secs_f64() / ceiling.as_secs_f64(),
            resync.as_secs_f64(),
            patches.map_or(String::new(), |n| format!(" ({n} PATCH)"))
        );
        ceilings.push(ceiling);
        syncs.push(took);
        resyncs.push(resync);
        runtime.block_on(async {
            for name in [&ceiling_ns, &sync_ns] {
                let _ = namespaces.delete(name, &Default::default()).await;
            }
        });
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (ceiling, sync, resync) = (
        median(&mut ceilings),
        median(&mut syncs),
        median(&mut resyncs),
    );
    println!(
        "median of {ROUNDS}: ceiling {:.3} s, sync {:.3} s, ratio {:.2}; no-op resync {:.3} s, slowest {:.3} s",
        ceiling.as_secs_f64(),
        sync.as_secs_f64(),
        sync.as_secs_f64() / ceiling.as_secs_f64(),
        resync.as_secs_f64(),
        resyncs.iter().max().copied().unwrap_or_default().as_secs_f64()
    );
    assert!(
        resyncs.iter().all(|t| *t < Duration::from_secs(2)),
        "a no-op resync took 2 s or more: {resyncs:?}"
    );
}
