//! Part 5 of the webhook bench: the load a real API server puts on the webhook (issue 9).
//!
//! 1,000 no-op server-side applies of managed ConfigMaps, 32 in flight, through a real
//! kube-apiserver that calls the webhook registered by URL — and, in the same run, alternating
//! round by round, the same load with a server that only echoes the review's uid registered
//! instead (the least a correct webhook does). Reported per review: each server's own CPU time
//! (from `/proc/PID/stat`) and the API server's mean time per call.
//!
//! The API server is `GITOPS_E2E_KUBECONFIG`'s (its user must be cluster admin), else one started
//! from `../shared/kube` for this run (ports `KUBE_LOCAL_PORT` / `KUBE_LOCAL_ETCD_PORT`, the
//! defaults of its `start`), else this part is left out with a line saying why.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures::{stream, StreamExt};
use gitops_test_support::{address_in_log, Ca, Killed};
use gitops_webhook::config::Config;
use gitops_webhook::decision::GitFacts;
use gitops_webhook::metrics::Metrics;
use gitops_webhook::store::GitStore;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use serde_json::{json, Value};

use super::{claim, config_text, cpu_seconds, git, wait_ready};

/// Objects applied per round, and applies in flight (the figures).
const OBJECTS: usize = 1_000;
const IN_FLIGHT: usize = 32;
const NAMESPACE: &str = "gitops-bench-ssa";
const REGISTRATION: &str = "gitops-bench-ssa";

async fn client(kubeconfig: &Path) -> Client {
    let file = Kubeconfig::read_from(kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

fn configmaps() -> ApiResource {
    ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&())
}

fn registrations() -> ApiResource {
    ApiResource {
        group: "admissionregistration.k8s.io".into(),
        version: "v1".into(),
        api_version: "admissionregistration.k8s.io/v1".into(),
        kind: "ValidatingWebhookConfiguration".into(),
        plural: "validatingwebhookconfigurations".into(),
    }
}

/// The registration of one server for ConfigMaps in the bench's namespace only.
fn registration(url: &str, ca_pem: &str) -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": REGISTRATION},
        "webhooks": [{
            "name": "bench.kubectl-gitops.io",
            "clientConfig": {
                "url": url,
                "caBundle": base64::engine::general_purpose::STANDARD.encode(ca_pem),
            },
            "rules": [{
                "operations": ["CREATE", "UPDATE", "DELETE"],
                "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"],
                "scope": "Namespaced",
            }],
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": NAMESPACE}},
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "failurePolicy": "Fail",
            "timeoutSeconds": 10,
        }],
    })
}

/// Registers `url` (replacing the previous registration).
async fn register(client: &Client, url: &str, ca_pem: &str) {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &registrations());
    let object: DynamicObject = serde_json::from_value(registration(url, ca_pem)).unwrap();
    api.patch(
        REGISTRATION,
        &PatchParams::apply("gitops-bench").force(),
        &Patch::Apply(&object),
    )
    .await
    .unwrap();
}

/// Applies every object once, `IN_FLIGHT` at a time; returns the mean time per call.
async fn apply_all(api: &Api<DynamicObject>, objects: &[DynamicObject]) -> Duration {
    let params = PatchParams::apply("kubectl-gitops").force();
    let times: Vec<Duration> = stream::iter(objects)
        .map(|object| {
            let params = params.clone();
            async move {
                let started = Instant::now();
                let name = object.metadata.name.clone().unwrap_or_default();
                api.patch(&name, &params, &Patch::Apply(object))
                    .await
                    .unwrap_or_else(|e| panic!("apply of ConfigMap {name}: {e}"));
                started.elapsed()
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    times.iter().sum::<Duration>() / times.len() as u32
}

/// `gitops_webhook_reviews_total` summed over its labels, from the admin port.
async fn reviews_total(admin: std::net::SocketAddr) -> f64 {
    let (_, metrics) = super::get(admin, "/metrics").await.unwrap();
    metrics
        .lines()
        .filter(|l| l.starts_with("gitops_webhook_reviews_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Runs part 5 (see the module doc). `exe` is this bench binary (it serves the uid echo).
pub fn run(exe: &Path) {
    let kube = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/kube");
    let (kubeconfig, _started) = match gitops_test_support::control_plane::admin_kubeconfig(&kube) {
        Ok(found) => found,
        Err(why) => {
            println!("through a real API server: left out ({why})");
            return;
        }
    };
    let work = tempfile::tempdir().unwrap();
    // A repository with one app of OBJECTS ConfigMaps.
    let src = work.path().join("src");
    let app = src.join("apps/ssa");
    std::fs::create_dir_all(&app).unwrap();
    git(&src, &["init", "-q", "-b", "main"]);
    std::fs::write(
        src.join("gitops.yaml"),
        format!("apps:\n  ssa:\n    path: apps/ssa\n    namespace: {NAMESPACE}\n"),
    )
    .unwrap();
    for i in 0..OBJECTS {
        std::fs::write(
            app.join(format!("settings-{i:04}.yaml")),
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings-{i:04}\n  labels: {{app: bench}}\ndata:\n  LOG_LEVEL: info\n  INDEX: \"{i}\"\n"),
        )
        .unwrap();
    }
    git(&src, &["add", "-A"]);
    git(&src, &["commit", "-q", "-m", "ssa"]);
    let commit = git(&src, &["rev-parse", "HEAD"]);
    let url = format!("file://{}", src.display());
    let config_path = work.path().join("config.yaml");
    std::fs::write(&config_path, config_text(&url, &work.path().join("cache"))).unwrap();
    let config = Config::parse(
        &config_text(&url, &work.path().join("render")),
        &config_path,
    )
    .unwrap();
    let store = GitStore::open(&config, Arc::new(Metrics::new())).unwrap();
    assert!(store.refresh().is_empty());
    let desired = store
        .render(&url, &commit, &claim("ssa", "apps/ssa", NAMESPACE))
        .unwrap();
    let objects: Vec<DynamicObject> = desired
        .objects
        .values()
        .map(|o| serde_json::from_value(o.clone()).unwrap())
        .collect();
    assert_eq!(objects.len(), OBJECTS);

    // Both servers, with one serving certificate for 127.0.0.1.
    let ca = Ca::new("gitops-webhook bench CA (API server load)");
    let serving = ca.serving(&gitops_test_support::pki::LOOPBACK);
    let (cert, key) = (work.path().join("tls.crt"), work.path().join("tls.key"));
    std::fs::write(&cert, &serving.cert_pem).unwrap();
    std::fs::write(&key, &serving.key_pem).unwrap();
    let log = |name: &str| {
        let path = work.path().join(format!("{name}.log"));
        (std::fs::File::create(&path).unwrap(), path)
    };
    let started = Duration::from_secs(120);
    let (webhook_log, webhook_log_path) = log("webhook");
    let mut webhook = Killed(
        Command::new(env!("CARGO_BIN_EXE_gitops-webhook"))
            .args(["--config", &config_path.display().to_string()])
            .args(["--tls-cert", &cert.display().to_string()])
            .args(["--tls-key", &key.display().to_string()])
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stderr(webhook_log)
            .spawn()
            .unwrap(),
    );
    let admin = address_in_log(
        &webhook_log_path,
        "admin listening",
        &mut webhook.0,
        started,
    );
    let webhook_at = address_in_log(
        &webhook_log_path,
        "webhook listening (TLS)",
        &mut webhook.0,
        started,
    );
    let (uid_log, uid_log_path) = log("uid");
    let mut uid = Killed(
        Command::new(exe)
            .args([
                "--noop-server",
                &cert.display().to_string(),
                &key.display().to_string(),
                "uid",
            ])
            .stderr(uid_log)
            .spawn()
            .unwrap(),
    );
    let uid_at = address_in_log(&uid_log_path, "no-op server listening", &mut uid.0, started);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        wait_ready(Some(admin), webhook_at).await;
        wait_ready(None, uid_at).await;
        let client = client(&kubeconfig).await;
        let version = client.apiserver_version().await.unwrap();
        let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
        let _ = namespaces
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": NAMESPACE}})).unwrap(),
            )
            .await;
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), NAMESPACE, &configmaps());
        // The objects exist before any server is registered: every later apply is a no-op.
        apply_all(&api, &objects).await;
        let servers = [
            ("gitops-webhook", format!("https://{webhook_at}/validate"), webhook.0.id()),
            ("uid-echo server", format!("https://{uid_at}/validate"), uid.0.id()),
        ];
        println!(
            "through kube-apiserver {} (as {}): {OBJECTS} no-op server-side applies of managed ConfigMaps, {IN_FLIGHT} in flight, the server registered by URL; 3 alternating rounds after a warm-up:",
            version.git_version,
            kubeconfig.display()
        );
        let mut cpu = [0.0f64; 2];
        let mut reviews = [0.0f64; 2];
        let mut mean = [Duration::ZERO; 2];
        let mut wall = [Duration::ZERO; 2];
        for round in 0..4 {
            for (i, (_, url, pid)) in servers.iter().enumerate() {
                register(&client, url, &ca.pem).await;
                // The API server picks a registration change up from its informer; the warm-up
                // (a tenth of the load, not counted) spans that.
                tokio::time::sleep(Duration::from_millis(1_500)).await;
                apply_all(&api, &objects[..OBJECTS / 10]).await;
                let (cpu_before, reviews_before) = (cpu_seconds(*pid), reviews_total(admin).await);
                let began = Instant::now();
                let per_call = apply_all(&api, &objects).await;
                let took = began.elapsed();
                let used = cpu_seconds(*pid) - cpu_before;
                let judged = reviews_total(admin).await - reviews_before;
                // The webhook's counter proves which server the API server called.
                if i == 0 {
                    assert!(judged >= OBJECTS as f64, "the webhook judged {judged} of {OBJECTS} applies");
                } else {
                    assert_eq!(judged, 0.0, "the webhook was called while the uid echo was registered");
                }
                if round > 0 {
                    cpu[i] += used;
                    reviews[i] += OBJECTS as f64;
                    mean[i] += per_call;
                    wall[i] += took;
                }
            }
        }
        for (i, (name, _, _)) in servers.iter().enumerate() {
            println!(
                "  {name:<16} CPU {:.1} us/review; API server mean {:.2} ms/call; {:.2} s per {OBJECTS} applies",
                cpu[i] / reviews[i] * 1e6,
                mean[i].as_secs_f64() * 1e3 / 3.0,
                wall[i].as_secs_f64() / 3.0
            );
        }
        println!(
            "  webhook CPU / uid echo CPU: {:.2} (goal <= 2.0)",
            (cpu[0] / reviews[0]) / (cpu[1] / reviews[1])
        );
        let _ = Api::<DynamicObject>::all_with(client.clone(), &registrations())
            .delete(REGISTRATION, &Default::default())
            .await;
        let _ = namespaces.delete(NAMESPACE, &Default::default()).await;
    });
}
