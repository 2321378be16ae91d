//! What the e2e tests and the benchmark share: a Kubernetes API to run against (a real cluster
//! when `GITOPS_E2E_KUBECONFIG` is set, the [`TestApiServer`] otherwise), Git repositories made
//! with the `git` program, and the built `kubectl-gitops` binary.
//!
//! Test support: failures to set up panic with a message saying what is missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::Value;

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
        let client = runtime.block_on(async {
            let file = Kubeconfig::read_from(&kubeconfig).expect("a readable kubeconfig");
            let config = kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                .await
                .expect("a usable kubeconfig");
            kube::Client::try_from(config).expect("a client")
        });
        Cluster {
            server,
            kubeconfig,
            namespace,
            dir,
            runtime,
            client,
        }
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
        self.runtime.block_on(async {
            match self.client.request::<Value>(request).await {
                Ok(value) => (200, value),
                Err(kube::Error::Api(status)) => (
                    status.code,
                    serde_json::to_value(&*status).unwrap_or_default(),
                ),
                Err(error) => panic!("{method} {path}: {error}"),
            }
        })
    }

    /// GET an object; `None` on 404.
    pub fn get(&self, path: &str) -> Option<Value> {
        match self.request("GET", path, None, &Value::Null) {
            (200, value) => Some(value),
            (404, _) => None,
            (code, body) => panic!("GET {path}: {code} {body}"),
        }
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

/// The built `kubectl-gitops`, beside the test executable's folder (`target/<profile>/`), built
/// with cargo when it is not there yet.
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    // target/<profile>/deps/<test> → target/<profile>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test runs from target/<profile>/deps")
        .to_path_buf();
    let binary = profile_dir.join(format!("kubectl-gitops{}", std::env::consts::EXE_SUFFIX));
    if !binary.exists() {
        let target_dir = profile_dir.parent().expect("target dir").to_path_buf();
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cargo
            .args(["build", "-p", "kubectl-gitops", "--bin", "kubectl-gitops"])
            .env("CARGO_TARGET_DIR", &target_dir);
        if release {
            cargo.arg("--release");
        }
        let status = cargo.status().expect("cargo runs");
        assert!(status.success(), "cannot build kubectl-gitops");
    }
    binary
}

/// A Git repository in a temporary folder, written with the `git` program.
pub struct Repo {
    /// The working tree.
    pub path: PathBuf,
}

impl Repo {
    /// `git init -b main` in `path`.
    pub fn init(path: &Path) -> Repo {
        std::fs::create_dir_all(path).expect("repo folder");
        let repo = Repo {
            path: path.to_path_buf(),
        };
        repo.git(&["init", "-q", "-b", "main"]);
        repo.git(&["config", "user.email", "e2e@example.invalid"]);
        repo.git(&["config", "user.name", "e2e"]);
        repo
    }

    /// Runs git in the repository; its trimmed stdout.
    pub fn git(&self, args: &[&str]) -> String {
        let output = Command::new("git")
            .args(args)
            .current_dir(&self.path)
            .output()
            .expect("the git program");
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// Writes a file (creating folders).
    pub fn write(&self, file: &str, text: &str) {
        let path = self.path.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("folder");
        }
        std::fs::write(path, text).expect("write");
    }

    /// Removes a file.
    pub fn remove(&self, file: &str) {
        std::fs::remove_file(self.path.join(file)).expect("remove");
    }

    /// Commits everything; the new commit's full SHA.
    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }

    /// The path as a string, for `--repo`.
    pub fn spec(&self) -> String {
        self.path.display().to_string()
    }
}

/// A `git daemon` serving a folder on 127.0.0.1, stopped on drop.
pub struct GitDaemon {
    child: std::process::Child,
    /// The port.
    pub port: u16,
}

impl GitDaemon {
    /// Serves every repository under `base` (read-only).
    pub fn start(base: &Path) -> GitDaemon {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        // Run git-daemon itself: `git daemon` is a wrapper whose child would outlive a kill.
        let exec_path = Command::new("git")
            .arg("--exec-path")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .expect("git --exec-path");
        let child = Command::new(Path::new(&exec_path).join("git-daemon"))
            .args([
                "--reuseaddr",
                "--export-all",
                "--listen=127.0.0.1",
                &format!("--port={port}"),
                &format!("--base-path={}", base.display()),
            ])
            .arg(base)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("git daemon starts");
        // Wait until it accepts connections.
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        GitDaemon { child, port }
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
