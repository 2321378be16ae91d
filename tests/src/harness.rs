//! What the e2e tests and the benchmark share: a Kubernetes API to run against (a real cluster
//! when `GITOPS_E2E_KUBECONFIG` is set, the [`TestApiServer`] otherwise), Git repositories made
//! with the `git` program and served by `git daemon` (from `gitops-test-support`, shared with the
//! other crates' tests), and the built binaries.
//!
//! Each test executable says once, on stderr and past libtest's capture, which API server it runs
//! against and that server's version from `/version` (see [`api_server_line`]).
//!
//! Test support: failures to set up panic with a message saying what is missing.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;

use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::Value;

pub use gitops_test_support::{Ca, GitDaemon, Repo};

use crate::apiserver::TestApiServer;

/// The environment variable naming a real cluster's kubeconfig.
pub const REAL_CLUSTER_ENV: &str = "GITOPS_E2E_KUBECONFIG";

/// A Kubernetes API for one test: its kubeconfig, a namespace of its own, and a client.
pub struct Cluster {
    /// The test API server, when no real cluster is given.
    pub server: Option<TestApiServer>,
    /// The kubeconfig file the binary is given.
    pub kubeconfig: PathBuf,
    /// The test's own namespace (created by the app's Namespace object or by [`Cluster::new`]).
    pub namespace: String,
    /// Temporary files (kubeconfig, repositories, caches).
    pub dir: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
    client: kube::Client,
    /// The API server's URL, as the kubeconfig names it.
    url: String,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl Cluster {
    /// A cluster for a test named `name`: a real one when [`REAL_CLUSTER_ENV`] is set.
    pub fn new(name: &str) -> Cluster {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let unique = format!(
            "{}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_micros())
                .unwrap_or(0)
        );
        let namespace = format!("e2e-{name}-{unique}");
        let namespace = namespace[..namespace.len().min(63)]
            .trim_end_matches('-')
            .to_owned();
        let (server, kubeconfig) = match std::env::var_os(REAL_CLUSTER_ENV) {
            Some(path) => (None, PathBuf::from(path)),
            None => {
                let server = TestApiServer::start().expect("the test API server starts");
                let path = dir.path().join("kubeconfig");
                std::fs::write(&path, server.kubeconfig("admin-token", "default"))
                    .expect("write kubeconfig");
                (Some(server), path)
            }
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let (client, url) = client_of(&runtime, &kubeconfig);
        let cluster = Cluster {
            server,
            kubeconfig,
            namespace,
            dir,
            runtime,
            client,
            url,
        };
        static SAID: Once = Once::new();
        SAID.call_once(|| {
            // Straight to the process's stderr: libtest captures `eprintln!` of passing tests.
            let line = format!("{}: API server: {}\n", suite(), api_server_line(&cluster));
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        });
        cluster
    }

    /// The kubeconfig of another identity of the same real cluster: `<name>.kubeconfig` beside
    /// the admin's, as `../shared/kube/start` writes `editor` and `breakglass`. `None` on the test
    /// API server and on a cluster whose folder has no such file.
    pub fn identity(&self, name: &str) -> Option<PathBuf> {
        if !self.is_real() {
            return None;
        }
        let path = self.kubeconfig.with_file_name(format!("{name}.kubeconfig"));
        path.is_file().then_some(path)
    }

    /// Who the API server says this cluster's kubeconfig is (see [`username`]).
    pub fn username(&self) -> String {
        username(&self.runtime, &self.client)
    }

    /// Who the API server says the user of `kubeconfig` is.
    pub fn username_of(&self, kubeconfig: &Path) -> String {
        let (client, _) = client_of(&self.runtime, kubeconfig);
        username(&self.runtime, &client)
    }

    /// A kubeconfig file for a person: on the test API server its `token`; on a real cluster the
    /// bundle's `<bundle>.kubeconfig` ([`Cluster::identity`]), else the admin's impersonating
    /// `fallback` (a cluster given by `GITOPS_E2E_KUBECONFIG` with no such file).
    pub fn person(&self, token: &str, bundle: &str, fallback: &str) -> PathBuf {
        if self.server.is_some() {
            return self.with_token(token);
        }
        if let Some(path) = self.identity(bundle) {
            return path;
        }
        self.rewritten_kubeconfig(&format!("as-{fallback}"), |user| {
            user.insert("as".into(), fallback.into());
        })
    }

    /// A kubeconfig for this cluster's server whose only credential is the bearer `token`.
    pub fn with_token(&self, token: &str) -> PathBuf {
        if let Some(server) = &self.server {
            let path = self.dir.path().join(format!("token-{token}.kubeconfig"));
            std::fs::write(&path, server.kubeconfig(token, "default")).expect("write kubeconfig");
            return path;
        }
        self.rewritten_kubeconfig(&format!("token-{token}"), |user| {
            user.clear();
            user.insert("token".into(), token.into());
        })
    }

    /// The cluster's kubeconfig with every user entry changed by `change`, written to the test's
    /// folder as `<name>.kubeconfig`.
    fn rewritten_kubeconfig(
        &self,
        name: &str,
        change: impl Fn(&mut serde_json::Map<String, Value>),
    ) -> PathBuf {
        let text = std::fs::read_to_string(&self.kubeconfig).expect("a readable kubeconfig");
        let mut config: Value = gitops_shared::yaml::from_str(&text).expect("kubeconfig YAML");
        for entry in config["users"].as_array_mut().into_iter().flatten() {
            if let Some(user) = entry["user"].as_object_mut() {
                change(user);
            }
        }
        let path = self.dir.path().join(format!("{name}.kubeconfig"));
        std::fs::write(&path, gitops_shared::yaml::to_string(&config)).expect("write kubeconfig");
        path
    }

    /// Whether this runs against a real cluster.
    pub fn is_real(&self) -> bool {
        self.server.is_none()
    }

    /// Sends a request; the answer's status code and JSON body.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &Value,
    ) -> (u16, Value) {
        send(
            &self.runtime,
            &self.client,
            method,
            path,
            content_type,
            body,
        )
    }

    /// GET an object; `None` on 404.
    pub fn get(&self, path: &str) -> Option<Value> {
        match self.request("GET", path, None, &Value::Null) {
            (200, value) => Some(value),
            (404, _) => None,
            (code, body) => panic!("GET {path}: {code} {body}"),
        }
    }

    /// Creates the test namespace itself, for tests whose app does not declare it.
    pub fn create_namespace(&self) {
        let (code, body) = self.request(
            "POST",
            "/api/v1/namespaces",
            Some("application/json"),
            &serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}}),
        );
        assert!(
            code == 200 || code == 201,
            "create namespace: {code} {body}"
        );
    }

    /// A ConfigMap of the test namespace.
    pub fn configmap(&self, name: &str) -> Option<Value> {
        self.get(&format!(
            "/api/v1/namespaces/{}/configmaps/{name}",
            self.namespace
        ))
    }

    /// Runs the built `kubectl-gitops` with `args` and this cluster's kubeconfig.
    pub fn run(&self, args: &[&str]) -> Run {
        let output = self.command(args).output().expect("kubectl-gitops runs");
        Run::from(output)
    }

    /// The command [`Cluster::run`] runs, for starting it in the background.
    pub fn command(&self, args: &[&str]) -> Command {
        self.command_with(&self.kubeconfig, args)
    }

    /// Runs the binary with another kubeconfig (another identity).
    pub fn run_with(&self, kubeconfig: &Path, args: &[&str]) -> Run {
        let output = self
            .command_with(kubeconfig, args)
            .output()
            .expect("kubectl-gitops runs");
        Run::from(output)
    }

    fn command_with(&self, kubeconfig: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(binary());
        command
            .args(args)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .env_remove("KUBECONFIG")
            .env("GITOPS_CACHE_DIR", self.dir.path().join("cache"))
            .env("GITOPS_HELM", helm_stand_in())
            .env("NO_COLOR", "1");
        command
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.is_real() {
            let path = format!("/api/v1/namespaces/{}", self.namespace);
            let _ = self.request("DELETE", &path, None, &Value::Null);
        }
    }
}

/// The `helm template` the e2e tests render Helm charts with: Helm's own engine behind
/// `plugin/tests/support/helm` (the helm binary cannot be fetched here), for the plugin and the
/// webhook alike.
pub fn helm_stand_in() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin/tests/support/helm")
}

/// The outcome of one run of the binary.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// A client of the API that `kubeconfig` names, made on `runtime`, and the server's URL.
pub fn client_of(runtime: &tokio::runtime::Runtime, kubeconfig: &Path) -> (kube::Client, String) {
    runtime.block_on(async {
        let file = Kubeconfig::read_from(kubeconfig).expect("a readable kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
            .await
            .expect("a usable kubeconfig");
        let url = config.cluster_url.to_string();
        (kube::Client::try_from(config).expect("a client"), url)
    })
}

/// Sends a request with `client` on `runtime`: the status code and the JSON body (a Status on
/// failure). Panics when no answer comes.
pub fn send(
    runtime: &tokio::runtime::Runtime,
    client: &kube::Client,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &Value,
) -> (u16, Value) {
    let mut builder = http::Request::builder().method(method).uri(path);
    if let Some(content_type) = content_type {
        builder = builder.header("content-type", content_type);
    }
    let bytes = if body.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(body).expect("json")
    };
    let request = builder.body(bytes).expect("a request");
    runtime.block_on(async {
        match client.request::<Value>(request).await {
            Ok(value) => (200, value),
            Err(kube::Error::Api(status)) => (
                status.code,
                serde_json::to_value(&*status).unwrap_or_default(),
            ),
            Err(error) => panic!("{method} {path}: {error}"),
        }
    })
}

/// Who the API server says `client`'s user is (a SelfSubjectReview).
pub fn username(runtime: &tokio::runtime::Runtime, client: &kube::Client) -> String {
    let (code, body) = send(
        runtime,
        client,
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        Some("application/json"),
        &serde_json::json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}),
    );
    assert_eq!(code, 200, "{body:#}");
    body["status"]["userInfo"]["username"]
        .as_str()
        .unwrap_or_else(|| panic!("no username: {body:#}"))
        .to_owned()
}

/// Which API server `cluster` is, in one line: what it is, its version (`gitVersion` of
/// `/version`) and its URL, e.g. `kube-apiserver v1.36.2 at https://127.0.0.1:26443 (real
/// cluster, GITOPS_E2E_KUBECONFIG=...)`.
pub fn api_server_line(cluster: &Cluster) -> String {
    let version = match cluster.request("GET", "/version", None, &Value::Null) {
        (200, body) => body["gitVersion"]
            .as_str()
            .map_or_else(|| format!("without gitVersion ({body})"), str::to_owned),
        (code, body) => format!("unknown (GET /version: {code} {body})"),
    };
    match &cluster.server {
        Some(server) => format!(
            "test API server (tests/src/apiserver.rs) answering /version with {version} at {}",
            server.url()
        ),
        None => format!(
            "kube-apiserver {version} at {} (real cluster, {REAL_CLUSTER_ENV}={})",
            cluster.url,
            cluster.kubeconfig.display()
        ),
    }
}

/// The running test executable's name without cargo's hash (`e2e`, `webhook_e2e`).
fn suite() -> String {
    let exe = std::env::current_exe().unwrap_or_default();
    let stem = exe
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    match stem.rsplit_once('-') {
        Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => name.to_owned(),
        _ => stem,
    }
}

/// The built `kubectl-gitops` (see [`built_binary`]).
pub fn binary() -> PathBuf {
    built_binary("kubectl-gitops", "kubectl-gitops")
}

/// The built binary `name` of package `package`, beside the test executable's folder
/// (`target/<profile>/`), built with cargo when it is not there yet.
pub fn built_binary(package: &str, name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    // target/<profile>/deps/<test> → target/<profile>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test runs from target/<profile>/deps")
        .to_path_buf();
    let binary = profile_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if !binary.exists() {
        let target_dir = profile_dir.parent().expect("target dir").to_path_buf();
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cargo
            .args(["build", "-p", package, "--bin", name])
            .env("CARGO_TARGET_DIR", &target_dir);
        if release {
            cargo.arg("--release");
        }
        let status = cargo.status().expect("cargo runs");
        assert!(status.success(), "cannot build {name}");
    }
    binary
}

/// An object of the cluster deleted on drop: a cluster-scoped registration (a
/// ValidatingWebhookConfiguration) that must not outlive the test that made it, or the cluster
/// would go on calling a webhook that is gone.
pub struct DeleteOnDrop<'a> {
    /// The cluster holding it.
    pub cluster: &'a Cluster,
    /// The object's API path.
    pub path: String,
}

impl Drop for DeleteOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self
            .cluster
            .request("DELETE", &self.path, None, &Value::Null);
    }
}

/// An HTTPS server on 127.0.0.1 with `serving` as its certificate, serving `app` (HTTP/1.1) on
/// `runtime` until the runtime is dropped; its address. It listens on port 0, so the address is
/// its own from the start.
pub fn serve_https(
    runtime: &tokio::runtime::Runtime,
    serving: &gitops_test_support::Serving,
    app: axum::Router,
) -> std::net::SocketAddr {
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(serving.key_der.clone().into());
    let mut config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_no_client_auth()
    .with_single_cert(vec![serving.cert_der.clone().into()], key)
    .expect("TLS configuration");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind a loopback port");
    let address = listener.local_addr().expect("the listener's address");
    runtime.spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    address
}

/// An HTTPS proxy in front of a cluster's API that forwards every request with the credentials of
/// an upstream kubeconfig and records it, so a test can count what the binary sent (e.g. "a
/// no-op resync sends no PATCH") on a real API server as on the test one; its client is given a
/// kubeconfig naming the proxy and a token the proxy drops ([`Front::kubeconfig`]; a kubeconfig
/// without credentials makes `kubectl` prompt for a password). It also gives the
/// `kubectl` program HTTPS to the test API server, which speaks plain HTTP only (client-go sends
/// no bearer token over plain HTTP).
pub struct Front {
    /// A kubeconfig for the proxy.
    pub kubeconfig: PathBuf,
    requests: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Front {
    /// Every request so far: (method, path and query).
    pub fn all(&self) -> Vec<(String, String)> {
        self.requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// How many requests of `method` were sent.
    pub fn count(&self, method: &str) -> usize {
        self.all().iter().filter(|(m, _)| m == method).count()
    }

    /// Forgets what was recorded.
    pub fn clear(&self) {
        self.requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

impl Cluster {
    /// A [`Front`] forwarding as this cluster's admin.
    pub fn recorder(&self) -> Front {
        self.front(&self.kubeconfig)
    }

    /// A [`Front`] forwarding with the credentials of `upstream`, a kubeconfig of this cluster.
    pub fn front(&self, upstream: &Path) -> Front {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let (client, _) = client_of(&runtime, upstream);
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = requests.clone();
        let forward = move |request: axum::extract::Request| {
            let (client, seen) = (client.clone(), seen.clone());
            async move {
                let target = request
                    .uri()
                    .path_and_query()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                seen.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push((request.method().to_string(), target));
                let (mut parts, body) = request.into_parts();
                parts.headers.remove(http::header::HOST);
                parts.headers.remove(http::header::AUTHORIZATION);
                let bytes = axum::body::to_bytes(body, usize::MAX)
                    .await
                    .map_err(|_| http::StatusCode::BAD_REQUEST)?;
                let request = http::Request::from_parts(parts, kube::client::Body::from(bytes));
                let response = client
                    .send(request)
                    .await
                    .map_err(|_| http::StatusCode::BAD_GATEWAY)?;
                Ok::<_, http::StatusCode>(response.map(axum::body::Body::new))
            }
        };
        let ca = Ca::new("API front CA");
        let address = serve_https(
            &runtime,
            &ca.serving(&["127.0.0.1"]),
            axum::Router::new().fallback(forward),
        );
        let kubeconfig = self.dir.path().join(format!(
            "front-{}.kubeconfig",
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let ca_data = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &ca.pem);
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: recorder\n  cluster:\n    server: https://{address}\n    certificate-authority-data: {ca_data}\ncontexts:\n- name: recorder\n  context:\n    cluster: recorder\n    user: nobody\n    namespace: default\ncurrent-context: recorder\nusers:\n- name: nobody\n  user:\n    token: dropped-by-the-front\n"
            ),
        )
        .expect("write the front's kubeconfig");
        Front {
            kubeconfig,
            requests,
            _runtime: runtime,
        }
    }
}

/// Polls `get` every 100 ms for up to 30 s until it gives a value; fails the test naming `what`
/// otherwise.
pub fn eventually<T>(what: &str, mut get: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(value) = get() {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not happen in 30s"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
