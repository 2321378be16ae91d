//! Benchmarks of gitops-webhook, all on loopback with bounded request loops:
//!
//! 1. cold render + decision of a 100-object app (goal < 50 ms);
//! 2. in-process decision latency with a warm cache, p50/p99 (goal p99 < 1 ms);
//! 3. HTTPS keep-alive throughput of the real `gitops-webhook` binary (warm cache) against a
//!    no-op axum + rustls server answering "allowed", in the same run (goal ≥ 0.8×), and two more
//!    baselines on the same stack: one that only scans the review for its uid (the least a
//!    correct answer needs) and one that parses it into the webhook's types; for a minimal
//!    forward-sync review, the same carrying managedFields and status as the API server sends
//!    it, and a captured controller write of an unmanaged object, with each server's CPU time
//!    per request;
//! 4. resident memory of the real binary with a 1,000-object app cached (goal < 64 MiB);
//! 5. through a real kube-apiserver (`support/apiserver_load.rs`): 1,000 no-op server-side applies of
//!    managed ConfigMaps, 32 in flight, with the webhook registered by URL and then a uid-echo
//!    server, alternating; each server's CPU per review and the API server's time per call
//!    (goal: the webhook ≤ 2× the uid echo's CPU). `GITOPS_BENCH_PART=apiserver` runs it alone.
//!
//! Run: `cargo bench -p gitops-webhook --bench webhook` (release build). The baseline servers run
//! as child processes of this benchmark (`webhook-<hash> --noop-server ...`), like the webhook
//! does, so all are measured the same way. The load generator shares the machine's cores with
//! the server under test.
#![allow(clippy::unwrap_used, missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

#[path = "support/apiserver_load.rs"]
mod apiserver_load;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::git;
use common::https::{self, get, Connection};
use gitops_test_support::pki::LOOPBACK;
use gitops_test_support::{address_in_log, Ca, Killed};
use gitops_webhook::config::Config;
use gitops_webhook::decision::{decide, AppClaim, GitFacts};
use gitops_webhook::metrics::Metrics;
use gitops_webhook::review::AdmissionRequest;
use gitops_webhook::store::GitStore;
use serde_json::{json, Value};

/// The same allocator as the real binary, so the no-op servers (children of this binary) are
/// not measured with a slower one.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Connections of the load generator, and requests per connection (bounded).
const CONNECTIONS: usize = 8;
const REQUESTS_PER_CONNECTION: usize = 1_500;

/// `count` objects (half ConfigMaps, half Deployments) in one file per object.
fn write_app(dir: &Path, count: usize, image: &str) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..count {
        let text = if i % 2 == 0 {
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings-{i}\n  labels: {{app: bench}}\ndata:\n  LOG_LEVEL: info\n  INDEX: \"{i}\"\n")
        } else {
            format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web-{i}\n  labels: {{app: web-{i}}}\nspec:\n  replicas: 2\n  selector: {{matchLabels: {{app: web-{i}}}}}\n  template:\n    metadata: {{labels: {{app: web-{i}}}}}\n    spec:\n      containers:\n        - name: web\n          image: {image}\n          ports: [{{containerPort: 8080}}]\n          resources: {{requests: {{cpu: 0.1, memory: 64Mi}}, limits: {{memory: 128Mi}}}}\n          env: [{{name: INDEX, value: \"{i}\"}}]\n"
            )
        };
        std::fs::write(dir.join(format!("object-{i:04}.yaml")), text).unwrap();
    }
}

struct Repo {
    _dir: tempfile::TempDir,
    url: String,
    c1: String,
    c2: String,
}

fn make_repo() -> Repo {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    git(&src, &["init", "-q", "-b", "main"]);
    std::fs::write(
        src.join("gitops.yaml"),
        "apps:\n  hundred:\n    path: apps/hundred\n    namespace: bench\n  thousand:\n    path: apps/thousand\n    namespace: big\n",
    )
    .unwrap();
    write_app(&src.join("apps/hundred"), 100, "nginx:1.26");
    write_app(&src.join("apps/thousand"), 1_000, "nginx:1.26");
    git(&src, &["add", "-A"]);
    git(&src, &["commit", "-q", "-m", "v1"]);
    let c1 = git(&src, &["rev-parse", "HEAD"]);
    write_app(&src.join("apps/hundred"), 100, "nginx:1.27");
    git(&src, &["add", "-A"]);
    git(&src, &["commit", "-q", "-m", "v2"]);
    let c2 = git(&src, &["rev-parse", "HEAD"]);
    Repo {
        url: format!("file://{}", src.display()),
        _dir: dir,
        c1,
        c2,
    }
}

fn config_text(url: &str, cache: &Path) -> String {
    format!(
        "repositories:\n  - url: {url}\n    branch: main\ncacheDir: {}\nrenderCacheEntries: 64\nfetchInterval: 10m\n",
        cache.display()
    )
}

fn claim(app: &str, path: &str, namespace: &str) -> AppClaim {
    AppClaim {
        app: app.into(),
        path: path.into(),
        folder_namespace: namespace.into(),
    }
}

/// A forward-sync UPDATE of `web-1` in the 100-object app: c1 → c2, objects as rendered.
fn forward_review(store: &GitStore, repo: &Repo) -> Value {
    let hundred = claim("hundred", "apps/hundred", "bench");
    let key = |desired: &gitops_webhook::decision::Desired| {
        desired
            .objects
            .iter()
            .find(|(k, _)| k.name == "web-1")
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let mut old = key(&store.render(&repo.url, &repo.c1, &hundred).unwrap());
    let mut new = key(&store.render(&repo.url, &repo.c2, &hundred).unwrap());
    for object in [&mut old, &mut new] {
        object["metadata"]["uid"] = json!("4f7c2c9e-0000-4000-8000-000000000001");
        object["metadata"]["resourceVersion"] = json!("1234");
        object["status"] = json!({"replicas": 2});
    }
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "b0a7e0f2-0000-4000-8000-000000000002",
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "name": "web-1", "namespace": "bench", "operation": "UPDATE",
            "userInfo": {"username": "ci-bot", "groups": ["system:authenticated"]},
            "object": new, "oldObject": old, "dryRun": false,
            "options": {"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "kubectl-gitops"}
        }
    })
}

/// `review` as the API server really sends it: both objects also carry the `metadata.managedFields`
/// and `status` of the captured Deployment UPDATE `0021` (the rules read neither).
fn as_sent(review: &Value) -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures/admission/0021-UPDATE-Deployment-web.json"
    );
    let captured: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let mut review = review.clone();
    for name in ["object", "oldObject"] {
        let source = &captured["request"][name];
        let object = &mut review["request"][name];
        object["metadata"]["managedFields"] = source["metadata"]["managedFields"].clone();
        object["status"] = source["status"].clone();
        assert!(object["metadata"]["managedFields"].is_array() && object["status"].is_object());
    }
    review
}

/// CPU seconds (user + system) used so far by process `pid`.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn wait_ready(admin: Option<SocketAddr>, https: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let ready = match admin {
            Some(admin) => matches!(get(admin, "/readyz").await, Ok((200, _))),
            None => tokio::net::TcpStream::connect(https).await.is_ok(),
        };
        if ready {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "server {https} (admin {admin:?}) did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Posts `body` over `CONNECTIONS` keep-alive connections, `REQUESTS_PER_CONNECTION` each;
/// returns requests per second.
async fn load(address: SocketAddr, client: Arc<rustls::ClientConfig>, body: Arc<Vec<u8>>) -> f64 {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let (client, body) = (client.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let mut connection = Connection::open(address, client).await.unwrap();
            for _ in 0..REQUESTS_PER_CONNECTION {
                let (status, response) = connection.post("/validate", body.to_vec()).await.unwrap();
                assert_eq!(status, 200);
                assert!(response.windows(14).any(|w| w == b"\"allowed\":true"));
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    (CONNECTIONS * REQUESTS_PER_CONNECTION) as f64 / started.elapsed().as_secs_f64()
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// What a baseline server does with a review before answering "allowed".
#[derive(Clone, Copy, PartialEq)]
enum Baseline {
    /// Nothing: a constant answer (the issue's no-op server; not a valid answer, it lacks the uid).
    Constant,
    /// Scans the review for its uid and builds nothing else: the least any correct webhook does.
    Uid,
    /// Parses the review into the webhook's own types and echoes the uid.
    Parse,
}

#[derive(serde::Deserialize)]
struct UidOnly<'a> {
    #[serde(borrow)]
    request: UidRequest<'a>,
}

#[derive(serde::Deserialize)]
struct UidRequest<'a> {
    #[serde(borrow)]
    uid: std::borrow::Cow<'a, str>,
}

/// A baseline server: the same axum + rustls + hyper stack and TLS set-up as the webhook.
/// It listens on port 0 and says where on stderr, as the webhook does.
fn noop_server(cert: &Path, key: &Path, mode: Baseline) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use axum::routing::post;
        let provider = gitops_webhook::tls::provider();
        let resolver = Arc::new(gitops_webhook::tls::ReloadingCert::new(cert, key, provider.clone()).unwrap());
        let config = gitops_webhook::tls::server_config(resolver, provider).unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let app = axum::Router::new().route(
            "/validate",
            post(move |body: axum::body::Bytes| async move {
                let uid = match mode {
                    Baseline::Constant => String::new(),
                    Baseline::Uid => serde_json::from_slice::<UidOnly>(&body).unwrap().request.uid.into_owned(),
                    Baseline::Parse => {
                        let review: gitops_webhook::review::AdmissionReview = serde_json::from_slice(&body).unwrap();
                        review.request.map(|r| r.uid).unwrap_or_default()
                    }
                };
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    format!(r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{{"uid":"{uid}","allowed":true}}}}"#),
                )
            }),
        );
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        eprintln!("no-op server listening address={}", listener.local_addr().unwrap());
        let (_stop, stop_rx) = tokio::sync::watch::channel(false);
        gitops_webhook::server::serve_tls(listener, acceptor, app, stop_rx, Default::default()).await.unwrap();
    });
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--noop-server") {
        let mode = match args.get(i + 3).map(String::as_str) {
            Some("parse") => Baseline::Parse,
            Some("uid") => Baseline::Uid,
            _ => Baseline::Constant,
        };
        noop_server(Path::new(&args[i + 1]), Path::new(&args[i + 2]), mode);
        return;
    }
    // `cargo test --benches` runs this with --test-ish flags; only `cargo bench` measures.
    if !args.iter().any(|a| a == "--bench") {
        println!("webhook bench: run with `cargo bench -p gitops-webhook --bench webhook`");
        return;
    }
    // Part 5 alone (it needs a real API server): GITOPS_BENCH_PART=apiserver.
    let only = std::env::var("GITOPS_BENCH_PART").unwrap_or_default();
    if only == "apiserver" {
        apiserver_load::run(&std::env::current_exe().unwrap());
        return;
    }
    let repo = make_repo();
    let work = tempfile::tempdir().unwrap();

    // 1. Cold render + decision of the 100-object app. Each round starts a fresh store as after
    //    start-up (mirror fetched, branch head indexed: that renders the head's apps, c2), then
    //    times one decision that must render the app at c1, which nothing has rendered yet.
    let cache = work.path().join("cache");
    let config = Config::parse(&config_text(&repo.url, &cache), Path::new("bench.yaml")).unwrap();
    let warm = GitStore::open(&config, Arc::new(Metrics::new())).unwrap();
    assert!(warm.refresh().is_empty());
    let review = forward_review(&warm, &repo);
    let request: AdmissionRequest = serde_json::from_value(review["request"].clone()).unwrap();
    let mut create = review["request"].clone();
    create["operation"] = json!("CREATE");
    create["object"] = create["oldObject"].take();
    let create: AdmissionRequest = serde_json::from_value(create).unwrap();
    for (label, request) in [
        ("CREATE at c1", &create),
        ("forward-sync UPDATE c1 -> c2", &request),
    ] {
        let mut cold = Vec::new();
        for _ in 0..20 {
            let store = GitStore::open(&config, Arc::new(Metrics::new())).unwrap();
            assert!(store.refresh().is_empty());
            let started = Instant::now();
            let decision = decide(request, &config, &store);
            cold.push(started.elapsed());
            assert!(decision.allowed(), "{}", decision.message());
        }
        cold.sort();
        println!(
            "cold render + decision, 100-object app, {label} (renders c1): median {:.2} ms, max {:.2} ms (goal < 50 ms)",
            ms(percentile(&cold, 0.5)),
            ms(*cold.last().unwrap())
        );
    }
    let started = Instant::now();
    let store = GitStore::open(&config, Arc::new(Metrics::new())).unwrap();
    assert!(store.refresh().is_empty());
    println!(
        "  (start-up work per store: fetch of a file:// mirror and indexing 1,100 objects at the head: {:.1} ms)",
        ms(started.elapsed())
    );

    // 2. Warm in-process decisions.
    let mut warm_times = Vec::with_capacity(20_000);
    for _ in 0..20_000 {
        let started = Instant::now();
        let decision = decide(&request, &config, &warm);
        warm_times.push(started.elapsed());
        assert!(decision.allowed());
    }
    warm_times.sort();
    println!(
        "in-process decision, warm cache: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms over {} decisions (goal p99 < 1 ms)",
        ms(percentile(&warm_times, 0.5)),
        ms(percentile(&warm_times, 0.99)),
        ms(*warm_times.last().unwrap()),
        warm_times.len()
    );
    let body = serde_json::to_vec(&review).unwrap();
    let sent_body = serde_json::to_vec(&as_sent(&review)).unwrap();
    for (label, body) in [("minimal", &body), ("as sent", &sent_body)] {
        let started = Instant::now();
        for _ in 0..2_000 {
            let review: gitops_webhook::review::AdmissionReview =
                serde_json::from_slice(body).unwrap();
            assert!(review.request.is_some());
        }
        println!(
            "  (parsing the {label} review, {} bytes: {:.4} ms each)",
            body.len(),
            ms(started.elapsed()) / 2_000.0
        );
    }

    // 3 and 4: the real binary and the no-op server, over HTTPS keep-alive.
    let ca = Ca::new("gitops-webhook bench CA");
    let serving = ca.serving(&LOOPBACK);
    let (cert_path, key_path) = (work.path().join("tls.crt"), work.path().join("tls.key"));
    std::fs::write(&cert_path, &serving.cert_pem).unwrap();
    std::fs::write(&key_path, &serving.key_pem).unwrap();
    let config_path = work.path().join("config.yaml");
    std::fs::write(
        &config_path,
        config_text(&repo.url, &work.path().join("server-cache")),
    )
    .unwrap();
    // Every server listens on port 0 and logs the address it got.
    let log = |name: &str| {
        let path = work.path().join(format!("{name}.log"));
        (std::fs::File::create(&path).unwrap(), path)
    };
    let (webhook_log, webhook_log_path) = log("webhook");
    let mut webhook = Killed(
        Command::new(env!("CARGO_BIN_EXE_gitops-webhook"))
            .args(["--config", &config_path.display().to_string()])
            .args([
                "--tls-cert",
                &cert_path.display().to_string(),
                "--tls-key",
                &key_path.display().to_string(),
            ])
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            // The level the manifests deploy it with.
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stderr(webhook_log)
            .spawn()
            .unwrap(),
    );
    let started = Duration::from_secs(120);
    let admin = address_in_log(
        &webhook_log_path,
        "admin listening",
        &mut webhook.0,
        started,
    );
    let address = address_in_log(
        &webhook_log_path,
        "webhook listening (TLS)",
        &mut webhook.0,
        started,
    );
    let exe: PathBuf = std::env::current_exe().unwrap();
    let noop_child = |mode: &str| {
        let (stderr, path) = log(mode);
        let mut child = Killed(
            Command::new(&exe)
                .args([
                    "--noop-server",
                    &cert_path.display().to_string(),
                    &key_path.display().to_string(),
                    mode,
                ])
                .stderr(stderr)
                .spawn()
                .unwrap(),
        );
        let address = address_in_log(&path, "no-op server listening", &mut child.0, started);
        (child, address)
    };
    let (noop_process, noop) = noop_child("constant");
    let (parsing_process, parsing) = noop_child("parse");
    let (uid_process, uid_only) = noop_child("uid");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        wait_ready(Some(admin), address).await;
        wait_ready(None, noop).await;
        wait_ready(None, parsing).await;
        wait_ready(None, uid_only).await;
        let client = https::client_config(&ca.pem);
        let servers = [
            ("gitops-webhook", address, webhook.0.id()),
            ("no-op server", noop, noop_process.0.id()),
            ("parse-only server", parsing, parsing_process.0.id()),
            ("uid-only server", uid_only, uid_process.0.id()),
        ];
        // A controller's write of an object no app manages (the deployment controller scaling a
        // ReplicaSet down), exactly as captured: most of what a cluster sends the webhook.
        let controller_body = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/fixtures/admission/0034-UPDATE-ReplicaSet-web-74d99b47c9.json"
        ))
        .unwrap();
        let controller_body = serde_json::to_vec(&serde_json::from_slice::<Value>(&controller_body).unwrap()).unwrap();
        for (label, body) in [
            ("minimal managed", body.clone()),
            ("managed, as the API server sends it,", sent_body.clone()),
            ("unmanaged (captured controller UPDATE of a ReplicaSet)", controller_body),
        ] {
            let body = Arc::new(body);
            // Warm all three (the webhook renders c1 and c2 once).
            for (_, at, _) in servers {
                load(at, client.clone(), body.clone()).await;
            }
            let mut rps = vec![Vec::new(); servers.len()];
            let mut cpu = vec![0.0; servers.len()];
            let mut generator = vec![0.0; servers.len()];
            for _ in 0..3 {
                for (i, (_, at, pid)) in servers.iter().enumerate() {
                    let (server_before, load_before) = (cpu_seconds(*pid), cpu_seconds(std::process::id()));
                    rps[i].push(load(*at, client.clone(), body.clone()).await);
                    cpu[i] += cpu_seconds(*pid) - server_before;
                    generator[i] += cpu_seconds(std::process::id()) - load_before;
                }
            }
            let requests = (3 * CONNECTIONS * REQUESTS_PER_CONNECTION) as f64;
            let best = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
            println!(
                "HTTPS keep-alive, {CONNECTIONS} connections x {REQUESTS_PER_CONNECTION} requests, {label} review ({} bytes), 3 alternating rounds:",
                body.len()
            );
            for (i, (name, _, _)) in servers.iter().enumerate() {
                println!(
                    "  {name:<18} {:?} req/s (best {:.0}); server CPU {:.1} us/request, load generator {:.1} us/request",
                    rps[i].iter().map(|r| r.round()).collect::<Vec<_>>(),
                    best(&rps[i]),
                    cpu[i] / requests * 1e6,
                    generator[i] / requests * 1e6
                );
            }
            println!(
                "  ratio to no-op (best/best): {:.2} (goal >= 0.80); to parse-only: {:.2}; uid-only to no-op: {:.2}",
                best(&rps[0]) / best(&rps[1]),
                best(&rps[0]) / best(&rps[2]),
                best(&rps[3]) / best(&rps[1])
            );
        }

        // 4. Memory: the 1,000-object app is rendered by the index at start-up; ask about one of
        //    its objects so the request path has it cached too.
        let store = GitStore::open(&config, Arc::new(Metrics::new())).unwrap();
        let thousand = claim("thousand", "apps/thousand", "big");
        let desired = store.render(&repo.url, &repo.c2, &thousand).unwrap();
        assert_eq!(desired.objects.len(), 1_000);
        let mut object = desired.objects.values().next().unwrap().clone();
        object["metadata"]["uid"] = json!("u");
        let create = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": "u", "kind": {"group": "", "version": "v1", "kind": object["kind"]},
            "resource": {"group": "", "version": "v1", "resource": "x"}, "operation": "CREATE",
            "name": object["metadata"]["name"], "namespace": "big",
            "userInfo": {"username": "ci-bot"}, "object": object}});
        let mut connection = Connection::open(address, client.clone()).await.unwrap();
        let (status, response) = connection.post("/validate", serde_json::to_vec(&create).unwrap()).await.unwrap();
        assert_eq!(status, 200);
        assert!(String::from_utf8_lossy(&response).contains("\"allowed\":true"), "{}", String::from_utf8_lossy(&response));
        let (_, metrics) = get(admin, "/metrics").await.unwrap();
        let misses = metrics.lines().find(|l| l.starts_with("gitops_webhook_render_cache_misses_total")).unwrap_or_default().to_owned();
        println!(
            "RSS of gitops-webhook with the 1,000-object app (and the 100-object app at two commits) cached: {:.1} MiB (goal < 64 MiB); {misses}",
            rss_kib(webhook.0.id()) as f64 / 1024.0
        );
    });
    // 5. Through a real API server, next to a uid echo (its own webhook and repository).
    apiserver_load::run(&exe);
}
