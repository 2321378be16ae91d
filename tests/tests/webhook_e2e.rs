//! End to end with the admission webhook: the built `gitops-webhook` binary, registered by URL in a
//! ValidatingWebhookConfiguration, in front of a Kubernetes API, with the built `kubectl-gitops`
//! syncing from a repository served by a real `git daemon` on loopback.
//!
//! What it proves (DESIGN.md, "The webhook's decision"):
//! - `kubectl gitops sync` of a commit on the trusted branch passes through the webhook, and so does
//!   a later sync of a descendant commit (revisions move forward); a sync of an ancestor commit
//!   (a rollback) is refused, and a `sync --prune` after Git dropped an object may delete it;
//! - a person's merge patch of a field Git declares (`kubectl patch`, or the API with the person's
//!   own credentials; also as a dry run) is refused by the API server with the webhook's sentence
//!   naming the field, the cluster's value and Git's value, and nothing changes;
//! - a person adding a label Git does not declare is refused — the admin too, since the admin is a
//!   person and not one of the exempt controllers — while the exempt deployment controller may
//!   change what Git does not declare;
//! - deleting an object the branch head still declares is refused; unmanaged objects pass;
//! - the webhook's own metrics count those reviews, so the API server did call it by URL.
//!
//! `prune_right_after_the_push_is_allowed`: a prune right after the push passes, because the
//! webhook fetches once before refusing a DELETE the (possibly stale) branch head declares.

//!
//! `scale_of_a_folder_apps_deployment_is_refused_and_of_an_unmanaged_one_passes`: a Scale carries
//! no labels and a folder app (a path gitops.yaml does not list) is not in the webhook's head
//! index, so the webhook reads the parent from the API server: a person's `kubectl scale` (and the
//! same merge patch on `/scale`) of the folder app's Deployment is refused with the webhook's
//! sentence, while scaling an unmanaged Deployment passes. The webhook reads with the kubeconfig
//! of a reader identity (`reader-token`, standing in for its service account) on the test server,
//! and with `GITOPS_E2E_KUBECONFIG` on a real cluster.
//!
//! Where it runs: against the test API server of this crate by default (tokens `admin-token`,
//! `alice-token`, `breakglass-token`, `controller-token`), or unchanged against a real cluster
//! when `GITOPS_E2E_KUBECONFIG` names its kubeconfig (its user must be allowed to create
//! namespaces, RoleBindings and ValidatingWebhookConfigurations). There alice is the bundle's
//! `editor` (`editor.kubeconfig` beside the admin's, as `../shared/kube/start` writes it) and the
//! break-glass member its `breakglass`, both given the `edit` ClusterRole in the test namespace;
//! without those files the admin impersonates `gitops-e2e-alice` and `gitops-e2e-breakglass`
//! (group `gitops:break-glass`). The controller is the impersonated
//! `system:serviceaccount:kube-system:deployment-controller`. The webhook listens on port 0 and
//! the test reads its addresses from its log.
//! A real API server must reach the webhook, which runs on this machine: set
//! `GITOPS_E2E_WEBHOOK_HOST` to an address of this machine the API server can reach (for kind on
//! Linux, the Docker bridge gateway such as `172.18.0.1`); the webhook listens there and the
//! address goes into the URL and the serving certificate. It defaults to `127.0.0.1`. The Git
//! daemon and the webhook's admin port stay on 127.0.0.1. The webhook only sees the test's own
//! namespace (namespaceSelector on `kubernetes.io/metadata.name`), and the
//! ValidatingWebhookConfiguration is deleted first on drop, so a failing test never locks the
//! cluster. `kubectl patch` is run when `kubectl` is on PATH; the same patch is always also sent
//! through the API.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use gitops_e2e::harness::{
    built_binary, eventually, send, username, Ca, Cluster, DeleteOnDrop, GitDaemon, Repo, Run,
};
use gitops_test_support::address_in_log;
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{json, Value};

/// The address the webhook listens on and the API server calls.
const WEBHOOK_HOST_ENV: &str = "GITOPS_E2E_WEBHOOK_HOST";
/// The webhook's name in the ValidatingWebhookConfiguration.
const WEBHOOK_NAME: &str = "validate.kubectl-gitops.io";
const MERGE: &str = "application/merge-patch+json";

/// A plain-HTTP GET on the webhook's admin port: status code and body.
fn admin_get(address: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((code, body))
}

/// The real `gitops-webhook` process with an rcgen CA and serving certificate, killed on drop.
struct Webhook {
    child: Child,
    /// `https://<host>:<port>/validate`.
    url: String,
    /// The CA's certificate (PEM), for `caBundle`.
    ca_pem: String,
    /// The plain-HTTP admin address.
    admin: SocketAddr,
    log: PathBuf,
}

impl Webhook {
    /// Starts the webhook trusting `repo_url` on branch main, fetching it every `fetch_interval`
    /// (and once on a miss), reading scale parents with `kubeconfig`, and waits for `/readyz`.
    fn start(
        dir: &Path,
        host: &str,
        repo_url: &str,
        fetch_interval: &str,
        kubeconfig: &Path,
        extra: &str,
    ) -> Webhook {
        // A CA and a serving certificate for the host, localhost and 127.0.0.1.
        let ca = Ca::new("gitops-webhook e2e CA");
        let mut names = vec!["localhost", "127.0.0.1"];
        if !names.contains(&host) {
            names.push(host);
        }
        let serving = ca.serving(&names);
        let tls = dir.join("tls");
        std::fs::create_dir_all(&tls).expect("tls folder");
        std::fs::write(tls.join("tls.crt"), &serving.cert_pem).expect("write tls.crt");
        std::fs::write(tls.join("tls.key"), &serving.key_pem).expect("write tls.key");

        let config = dir.join("config.yaml");
        std::fs::write(
            &config,
            format!(
                "repositories:\n  - url: {repo_url}\n    branch: main\ncacheDir: {}\nfetchInterval: {fetch_interval}\ndecisionDeadline: 4s\n{extra}",
                dir.join("cache").display()
            ),
        )
        .expect("write config");
        // Port 0 for both listeners: the webhook logs the addresses it got.
        let listen = if host.contains(':') {
            format!("[{host}]:0")
        } else {
            format!("{host}:0")
        };
        let log = dir.join("webhook.log");
        let mut child = Command::new(built_binary("gitops-webhook", "gitops-webhook"))
            .arg("--config")
            .arg(&config)
            .arg("--tls-cert")
            .arg(tls.join("tls.crt"))
            .arg("--tls-key")
            .arg(tls.join("tls.key"))
            .args(["--listen", &listen, "--admin-listen", "127.0.0.1:0"])
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .env_remove("KUBECONFIG")
            .env_remove("GITOPS_WEBHOOK_KUBECONFIG")
            .env("GITOPS_HELM", gitops_e2e::harness::helm_stand_in())
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("webhook log"))
            .spawn()
            .expect("gitops-webhook starts");
        let admin = address_in_log(&log, "admin listening", &mut child, Duration::from_secs(60));
        let mut webhook = Webhook {
            child,
            url: String::new(),
            ca_pem: ca.pem.clone(),
            admin,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok((200, _)) = admin_get(admin, "/readyz") {
                break;
            }
            if let Ok(Some(status)) = webhook.child.try_wait() {
                panic!("gitops-webhook exited: {status}\n{}", webhook.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "gitops-webhook not ready in 60s\n{}",
                webhook.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // Ready means the TLS listener is bound, so its line is in the log.
        let address = address_in_log(
            &webhook.log,
            "webhook listening (TLS)",
            &mut webhook.child,
            Duration::from_secs(5),
        );
        webhook.url = format!("https://{address}/validate");
        webhook
    }

    /// Waits until the webhook has indexed `commit` as its branch head (its log says so).
    fn wait_for_head(&self, commit: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self
            .log_text()
            .lines()
            .any(|l| l.contains("indexed branch head") && l.contains(commit))
        {
            assert!(
                Instant::now() < deadline,
                "the webhook did not fetch {commit} in 30s\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Every denial the webhook counted (`gitops_webhook_reviews_total{decision="denied"}`),
    /// with the log lines that say why.
    fn denials(&self) -> (u64, Vec<String>) {
        let (code, text) = admin_get(self.admin, "/metrics").expect("GET /metrics");
        assert_eq!(code, 200, "{text}");
        let count = text
            .lines()
            .filter(|l| l.starts_with("gitops_webhook_reviews_total{"))
            .filter(|l| l.contains("decision=\"denied\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum();
        let why = self
            .log_text()
            .lines()
            .filter(|l| l.contains("denied"))
            .map(str::to_owned)
            .collect();
        (count, why)
    }

    /// Asserts that the webhook denied nothing so far, showing the denials' log lines if it did.
    fn assert_no_denials(&self) {
        let (denied, why) = self.denials();
        assert_eq!(denied, 0, "{why:#?}");
    }

    /// The value of `gitops_webhook_reviews_total` for one operation, kind and decision.
    fn reviews(&self, operation: &str, kind: &str, decision: &str) -> u64 {
        let (code, text) = admin_get(self.admin, "/metrics").expect("GET /metrics");
        assert_eq!(code, 200, "{text}");
        text.lines()
            .filter(|l| l.starts_with("gitops_webhook_reviews_total{"))
            .filter(|l| {
                l.contains(&format!("operation=\"{operation}\""))
                    && l.contains(&format!("kind=\"{kind}\""))
                    && l.contains(&format!("decision=\"{decision}\""))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Who sends a request.
#[derive(Clone, Copy, Debug)]
enum Who {
    Admin,
    /// A person with `edit` in the test namespace.
    Alice,
    /// The deployment controller, an exempt identity.
    Controller,
    /// A person in the break-glass group, with `edit` in the test namespace.
    BreakGlass,
}

/// How a person reaches the API: their own credentials, or the admin impersonating them.
enum Identity {
    /// A kubeconfig of the person's own (the test server's token, or the real cluster's
    /// `editor.kubeconfig` and `breakglass.kubeconfig` beside the admin's).
    Own(Box<Kubeconfig>, Option<PathBuf>),
    /// The admin's kubeconfig, impersonating a user (with groups), on a real cluster that has no
    /// kubeconfig for the person.
    Impersonated(String, Vec<String>),
}

/// Clients of the same API as the admin, a person with `edit`, the deployment controller and a
/// member of the break-glass group.
struct Api {
    runtime: tokio::runtime::Runtime,
    clients: Vec<kube::Client>,
    /// Alice's user name as the API server authenticates her.
    alice: String,
    /// The break-glass member's user name.
    breakglass: String,
    /// Alice's kubeconfig file when she has one on a real cluster (for `kubectl`).
    alice_kubeconfig: Option<PathBuf>,
}

impl Api {
    fn new(cluster: &Cluster) -> Api {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let read = |path: &Path| Kubeconfig::read_from(path).expect("a readable kubeconfig");
        let own = |token: &str, bundle: &str| -> Option<Identity> {
            match &cluster.server {
                Some(server) => Some(Identity::Own(
                    Box::new(
                        Kubeconfig::from_yaml(&server.kubeconfig(token, &cluster.namespace))
                            .expect("the test server's kubeconfig"),
                    ),
                    None,
                )),
                None => cluster
                    .identity(bundle)
                    .map(|path| Identity::Own(Box::new(read(&path)), Some(path))),
            }
        };
        let impersonated = |user: &str, groups: &[&str]| {
            Identity::Impersonated(
                user.to_owned(),
                groups.iter().map(|g| (*g).to_owned()).collect(),
            )
        };
        let admin = Identity::Own(
            Box::new(match &cluster.server {
                Some(server) => {
                    Kubeconfig::from_yaml(&server.kubeconfig("admin-token", &cluster.namespace))
                        .expect("the test server's kubeconfig")
                }
                None => read(&cluster.kubeconfig),
            }),
            None,
        );
        let alice =
            own("alice-token", "editor").unwrap_or_else(|| impersonated("gitops-e2e-alice", &[]));
        let controller = own("controller-token", "")
            .filter(|_| !cluster.is_real())
            .unwrap_or_else(|| {
                impersonated(
                    "system:serviceaccount:kube-system:deployment-controller",
                    &[
                        "system:serviceaccounts",
                        "system:serviceaccounts:kube-system",
                    ],
                )
            });
        let breakglass = own("breakglass-token", "breakglass")
            .unwrap_or_else(|| impersonated("gitops-e2e-breakglass", &["gitops:break-glass"]));
        let alice_kubeconfig = match &alice {
            Identity::Own(_, path) => path.clone(),
            Identity::Impersonated(..) => None,
        };
        let clients = runtime.block_on(async {
            let mut clients = Vec::new();
            for identity in [admin, alice, controller, breakglass] {
                let (kubeconfig, impersonate) = match identity {
                    Identity::Own(kubeconfig, _) => (*kubeconfig, None),
                    Identity::Impersonated(user, groups) => {
                        (read(&cluster.kubeconfig), Some((user, groups)))
                    }
                };
                let mut config =
                    kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                        .await
                        .expect("a usable kubeconfig");
                if let Some((user, groups)) = impersonate {
                    config.auth_info.impersonate = Some(user);
                    config.auth_info.impersonate_groups = (!groups.is_empty()).then_some(groups);
                }
                clients.push(kube::Client::try_from(config).expect("a client"));
            }
            clients
        });
        let mut api = Api {
            runtime,
            clients,
            alice: String::new(),
            breakglass: String::new(),
            alice_kubeconfig,
        };
        api.alice = api.username(Who::Alice);
        api.breakglass = api.username(Who::BreakGlass);
        api
    }

    /// Sends a request as `who`: the status code and the JSON body (a Status on failure).
    fn request(
        &self,
        who: Who,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &Value,
    ) -> (u16, Value) {
        let client = &self.clients[who as usize];
        send(&self.runtime, client, method, path, content_type, body)
    }

    /// Who the API server says `who` is.
    fn username(&self, who: Who) -> String {
        username(&self.runtime, &self.clients[who as usize])
    }

    fn merge_patch(&self, who: Who, path: &str, patch: Value) -> (u16, Value) {
        self.request(who, "PATCH", path, Some(MERGE), &patch)
    }

    /// `kubectl` as alice, when the program is installed: on a real cluster with her own
    /// kubeconfig (else by impersonation), on the test server with her token through a
    /// [`gitops_e2e::harness::Front`].
    fn kubectl_as_alice(&self, cluster: &Cluster, args: &[&str]) -> Option<Run> {
        let found = Command::new("kubectl")
            .args(["version", "--client"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            eprintln!("kubectl is not installed: the kubectl patch step is left out");
            return None;
        }
        let mut command = Command::new("kubectl");
        command
            .env_remove("KUBECONFIG")
            .env("HOME", cluster.dir.path())
            .args(["-n", &cluster.namespace]);
        let _front = match (&cluster.server, &self.alice_kubeconfig) {
            (Some(_), _) => {
                let front = cluster.front(&cluster.with_token("alice-token"));
                command.arg("--kubeconfig").arg(&front.kubeconfig);
                Some(front)
            }
            (None, Some(path)) => {
                command.arg("--kubeconfig").arg(path);
                None
            }
            (None, None) => {
                command
                    .arg("--kubeconfig")
                    .arg(&cluster.kubeconfig)
                    .args(["--as", &self.alice]);
                None
            }
        };
        Some(Run::from(
            command.args(args).output().expect("kubectl runs"),
        ))
    }
}

/// The denial the API server relays: `admission webhook "<name>" denied the request: <sentence>`.
fn denied(sentence: &str) -> String {
    format!("admission webhook \"{WEBHOOK_NAME}\" denied the request: {sentence}")
}

/// Asserts a refusal by the webhook with exactly this sentence.
fn assert_denied(answer: &(u16, Value), sentence: &str) {
    let (code, body) = answer;
    assert_eq!(*code, 403, "{body:#}");
    assert_eq!(body["message"], json!(denied(sentence)), "{body:#}");
}

fn annotation<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object["metadata"]["annotations"][key].as_str()
}

fn configmap_yaml(name: &str, data: &[(&str, &str)]) -> String {
    let mut text = format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n");
    for (k, v) in data {
        text.push_str(&format!("  {k}: \"{v}\"\n"));
    }
    text
}

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: registry.k8s.io/pause:3.10
";

fn short(commit: &str) -> &str {
    &commit[..7]
}

/// A test's world, dropped in field order: the registration first, then the webhook, the Git
/// daemon, and the repository (the cluster, borrowed, goes last).
struct World<'a> {
    /// The ValidatingWebhookConfiguration, deleted on drop (before the webhook stops and the
    /// namespace goes), so a failing test never leaves the cluster refusing writes.
    registration: DeleteOnDrop<'a>,
    webhook: Webhook,
    _daemon: GitDaemon,
    api: Api,
    repo: Repo,
    /// The `git://` URL the webhook trusts and the plugin syncs from.
    url: String,
    /// The first commit: app `web` with ConfigMaps `settings` and `extra` and Deployment `web`.
    v1: String,
}

impl<'a> World<'a> {
    /// The namespace (and on a real cluster alice's and the break-glass member's `edit` there),
    /// the repository behind a Git daemon, the webhook fetching it every `fetch_interval`, and
    /// its registration.
    fn new(cluster: &'a Cluster, fetch_interval: &str) -> World<'a> {
        World::configured(cluster, fetch_interval, "")
    }

    /// [`World::new`] with `extra` appended to the webhook's configuration.
    fn configured(cluster: &'a Cluster, fetch_interval: &str, extra: &str) -> World<'a> {
        let ns = cluster.namespace.clone();
        let api = Api::new(cluster);
        let host = std::env::var(WEBHOOK_HOST_ENV).unwrap_or_else(|_| "127.0.0.1".to_owned());

        // The namespace, unmanaged, labelled as a real API server labels it (the selector's key).
        let (code, body) = cluster.request(
            "POST",
            "/api/v1/namespaces",
            Some("application/json"),
            &json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}}}),
        );
        assert_eq!(code, 200, "{body}");
        if cluster.is_real() {
            // Alice and the break-glass member get `edit` in the test namespace, so only the
            // webhook can refuse them.
            let (code, body) = cluster.request(
                "POST",
                &format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings"),
                Some("application/json"),
                &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                    "metadata": {"name": "gitops-e2e-people-edit"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
                    "subjects": [
                        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": api.alice},
                        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": api.breakglass}]}),
            );
            assert_eq!(code, 200, "{body}");
        }

        // The repository: gitops.yaml with app `web` in the test namespace, served by git daemon.
        let base = cluster.dir.path().join("served");
        let repo = Repo::init(&base.join("deploy"));
        repo.write(
            "gitops.yaml",
            &format!("apps:\n  web:\n    path: app\n    namespace: {ns}\n"),
        );
        repo.write(
            "app/settings.yaml",
            &configmap_yaml("settings", &[("LOG_LEVEL", "info"), ("REGION", "eu")]),
        );
        repo.write("app/extra.yaml", &configmap_yaml("extra", &[("A", "1")]));
        repo.write("app/deployment.yaml", DEPLOYMENT);
        let v1 = repo.commit("web v1");
        let daemon = GitDaemon::start(&base);
        let url = format!("git://127.0.0.1:{}/deploy", daemon.port);

        // The webhook, registered by URL with its CA. It reads scale parents as a reader of the
        // test server (the webhook's service account), or with the real cluster's kubeconfig.
        let webhook_kubeconfig = match &cluster.server {
            Some(server) => {
                let path = cluster.dir.path().join("webhook-kubeconfig");
                std::fs::write(&path, server.kubeconfig("reader-token", "default"))
                    .expect("write the webhook's kubeconfig");
                path
            }
            None => cluster.kubeconfig.clone(),
        };
        let webhook = Webhook::start(
            &cluster.dir.path().join("webhook"),
            &host,
            &url,
            fetch_interval,
            &webhook_kubeconfig,
            extra,
        );
        let name = format!("gitops-{ns}");
        let registration = DeleteOnDrop {
            cluster,
            path: format!(
                "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/{name}"
            ),
        };
        let ca_bundle = base64::engine::general_purpose::STANDARD.encode(&webhook.ca_pem);
        let (code, body) = cluster.request(
            "POST",
            "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
            Some("application/json"),
            &json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
                "metadata": {"name": name},
                "webhooks": [{
                    "name": WEBHOOK_NAME,
                    "admissionReviewVersions": ["v1"],
                    "sideEffects": "None",
                    "failurePolicy": "Fail",
                    "timeoutSeconds": 5,
                    "clientConfig": {"url": webhook.url, "caBundle": ca_bundle},
                    "rules": [{"operations": ["CREATE", "UPDATE", "DELETE"], "apiGroups": ["*"],
                        "apiVersions": ["*"], "resources": ["*", "*/scale", "pods/eviction", "pods/ephemeralcontainers"], "scope": "*"}],
                    "namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name",
                        "operator": "In", "values": [ns]}]}
                }]}),
        );
        assert_eq!(code, 200, "{body}");
        World {
            registration,
            webhook,
            _daemon: daemon,
            api,
            repo,
            url,
            v1,
        }
    }

    /// `kubectl gitops sync web --repo <url>` with `extra` arguments, as the admin.
    fn sync(&self, extra: &[&str]) -> Run {
        let mut args = vec!["sync", "web", "--repo", self.url.as_str()];
        args.extend_from_slice(extra);
        self.registration.cluster.run(&args)
    }
}

#[test]
fn webhook_registered_by_url_admits_syncs_and_refuses_out_of_band_changes() {
    let cluster = Cluster::new("webhook-e2e");
    let ns = cluster.namespace.clone();
    let world = World::new(&cluster, "1s");
    let (api, repo, url, v1, webhook) = (
        &world.api,
        &world.repo,
        &world.url,
        &world.v1,
        &world.webhook,
    );
    let alice = api.alice.clone();
    let configmap = |name: &str| format!("/api/v1/namespaces/{ns}/configmaps/{name}");
    let deployment = format!("/apis/apps/v1/namespaces/{ns}/deployments/web");
    let sync = |extra: &[&str]| world.sync(extra);

    // 1. The admin syncs commit v1 of main: it passes through the webhook.
    let run = sync(&[]);
    assert_eq!(run.code, 0, "{run}\n{}", webhook.log_text());
    for object in [
        format!("created ConfigMap/{ns}/settings"),
        format!("created ConfigMap/{ns}/extra"),
        format!("created Deployment/{ns}/web"),
    ] {
        assert!(run.stdout.contains(&object), "{object}: {run}");
    }
    let settings = cluster.configmap("settings").expect("settings exists");
    assert_eq!(settings["data"]["LOG_LEVEL"], "info");
    assert_eq!(
        annotation(&settings, "kubectl-gitops.io/revision"),
        Some(v1.as_str())
    );
    assert_eq!(
        annotation(&settings, "kubectl-gitops.io/repo"),
        Some(url.as_str())
    );
    assert_eq!(
        settings["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "kubectl-gitops"
    );
    let web = cluster.get(&deployment).expect("web exists");
    assert_eq!(web["spec"]["replicas"], 2);
    assert_eq!(
        annotation(&web, "kubectl-gitops.io/revision"),
        Some(v1.as_str())
    );
    // The webhook decided those creations (the API server did call it).
    assert!(
        webhook.reviews("CREATE", "ConfigMap", "allowed") >= 2,
        "{}",
        admin_get(webhook.admin, "/metrics")
            .map(|m| m.1)
            .unwrap_or_default()
    );
    assert!(webhook.reviews("CREATE", "Deployment", "allowed") >= 1);

    // 2. Alice patches a declared field: refused with the field, the cluster's and Git's values.
    let cm_says = |value: &str, commit: &str, git: &str| {
        format!(
            "ConfigMap/{ns}/settings: data.LOG_LEVEL is {value}, commit {} on main says {git} — change it in Git",
            short(commit)
        )
    };
    let patch = json!({"data": {"LOG_LEVEL": "debug"}});
    let answer = api.merge_patch(Who::Alice, &configmap("settings"), patch.clone());
    assert_denied(&answer, &cm_says("debug", v1, "info"));
    // The same as a dry run gets the same answer.
    let answer = api.merge_patch(
        Who::Alice,
        &format!("{}?dryRun=All", configmap("settings")),
        patch.clone(),
    );
    assert_denied(&answer, &cm_says("debug", v1, "info"));
    // And with the kubectl program.
    if let Some(run) = api.kubectl_as_alice(
        &cluster,
        &[
            "patch",
            "configmap",
            "settings",
            "--type",
            "merge",
            "-p",
            r#"{"data":{"LOG_LEVEL":"debug"}}"#,
        ],
    ) {
        assert_eq!(run.code, 1, "{run}");
        assert!(
            run.stderr.contains(&format!(
                "Error from server (Forbidden): {}",
                denied(&cm_says("debug", v1, "info"))
            )),
            "{run}"
        );
        assert!(!run.stdout.contains("patched"), "{run}");
    }
    assert_eq!(
        cluster.configmap("settings").expect("settings")["data"]["LOG_LEVEL"],
        "info"
    );
    // spec.replicas of the Deployment, declared as 2.
    let answer = api.merge_patch(Who::Alice, &deployment, json!({"spec": {"replicas": 5}}));
    assert_denied(
        &answer,
        &format!(
            "Deployment/{ns}/web: spec.replicas is 5, commit {} on main says 2 — change it in Git",
            short(v1)
        ),
    );
    assert_eq!(
        cluster.get(&deployment).expect("web")["spec"]["replicas"],
        2
    );

    // 3. A label Git does not declare: refused for alice, and for the admin too (a person, not an
    // exempt controller).
    let label = json!({"metadata": {"labels": {"team": "blue"}}});
    let undeclared = |user: &str| {
        format!(
            "ConfigMap/{ns}/settings: metadata.labels.team changed from absent to blue by {user}, but Git (commit {} on main) does not declare it; out-of-band changes such as kubectl edit, label, annotate, scale or rollout restart are refused — make the change in Git",
            short(v1)
        )
    };
    let answer = api.merge_patch(Who::Alice, &configmap("settings"), label.clone());
    assert_denied(&answer, &undeclared(&alice));
    let answer = api.merge_patch(Who::Admin, &configmap("settings"), label.clone());
    assert_denied(&answer, &undeclared(&api.username(Who::Admin)));
    let settings = cluster.configmap("settings").expect("settings");
    assert_eq!(settings["metadata"]["labels"]["team"], Value::Null);
    // The deployment controller is exempt: it may change what Git does not declare (an update,
    // which its RBAC allows on a real cluster; retried when a real controller wrote in between).
    let mut updated = None;
    for _ in 0..5 {
        let mut web = cluster.get(&deployment).expect("web");
        web["metadata"]["annotations"]["example.io/seen-by"] = json!("controller");
        let answer = api.request(
            Who::Controller,
            "PUT",
            &deployment,
            Some("application/json"),
            &web,
        );
        if answer.0 != 409 {
            updated = Some(answer);
            break;
        }
    }
    let (code, body) = updated.expect("the controller's update went through within 5 tries");
    assert_eq!(code, 200, "{body:#}");
    assert_eq!(
        annotation(&body, "example.io/seen-by"),
        Some("controller"),
        "{body:#}"
    );

    // 3b. Break glass: a member of the break-glass group may make the change anyone else is
    // refused (allowed with a warning, counted); taking the label off again is Git's state.
    let answer = api.merge_patch(Who::BreakGlass, &configmap("settings"), label.clone());
    assert_eq!(answer.0, 200, "{:#}", answer.1);
    assert_eq!(answer.1["metadata"]["labels"]["team"], "blue");
    assert!(webhook.reviews("UPDATE", "ConfigMap", "break-glass") >= 1);
    let answer = api.merge_patch(
        Who::BreakGlass,
        &configmap("settings"),
        json!({"metadata": {"labels": {"team": null}}}),
    );
    assert_eq!(answer.0, 200, "{:#}", answer.1);
    assert_eq!(answer.1["metadata"]["labels"]["team"], Value::Null);

    // 4. Unmanaged objects pass: alice may create and delete her own ConfigMap.
    let (code, body) = api.request(
        Who::Alice,
        "POST",
        &format!("/api/v1/namespaces/{ns}/configmaps"),
        Some("application/json"),
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "scratch"},
            "data": {"note": "mine"}}),
    );
    assert_eq!(code, 200, "{body:#}");
    assert_eq!(body["data"]["note"], "mine");
    let (code, body) = api.request(
        Who::Alice,
        "DELETE",
        &configmap("scratch"),
        None,
        &Value::Null,
    );
    assert_eq!(code, 200, "{body:#}");

    // 5. Deleting what the branch head still declares is refused.
    let answer = api.request(
        Who::Alice,
        "DELETE",
        &configmap("settings"),
        None,
        &Value::Null,
    );
    assert_denied(
        &answer,
        &format!(
            "ConfigMap/{ns}/settings: app web still declares it at commit {} (head of main, fetched just now); delete it by removing it from Git and syncing",
            short(v1)
        ),
    );
    assert!(cluster.configmap("settings").is_some());

    // 6. A new commit in Git: the sync of the descendant passes, and the webhook now judges
    // against it.
    repo.write(
        "app/settings.yaml",
        &configmap_yaml("settings", &[("LOG_LEVEL", "warn"), ("REGION", "eu")]),
    );
    let v2 = repo.commit("web v2: warn");
    let run = sync(&[]);
    assert_eq!(run.code, 0, "{run}\n{}", webhook.log_text());
    assert!(
        run.stdout
            .contains(&format!("configured ConfigMap/{ns}/settings")),
        "{run}"
    );
    let settings = cluster.configmap("settings").expect("settings");
    assert_eq!(settings["data"]["LOG_LEVEL"], "warn");
    assert_eq!(
        annotation(&settings, "kubectl-gitops.io/revision"),
        Some(v2.as_str())
    );
    let answer = api.merge_patch(
        Who::Alice,
        &configmap("settings"),
        json!({"data": {"LOG_LEVEL": "info"}}),
    );
    assert_denied(&answer, &cm_says("info", &v2, "warn"));

    // 7. Syncing the older commit again is a rollback: revisions only move forward.
    let run = sync(&["--revision", v1]);
    assert_eq!(run.code, 1, "{run}");
    // Refused by the dry run before the first write: nothing was applied.
    assert!(run.stderr.contains("nothing was applied"), "{run}");
    assert!(
        run.stderr.contains(&denied(&format!(
            "ConfigMap/{ns}/settings: commit {} is not a descendant of the object's current commit {}; revisions only move forward on main — to roll back, git revert and sync the new commit",
            short(v1),
            short(&v2)
        ))),
        "{run}"
    );
    let settings = cluster.configmap("settings").expect("settings");
    assert_eq!(settings["data"]["LOG_LEVEL"], "warn");
    assert_eq!(
        annotation(&settings, "kubectl-gitops.io/revision"),
        Some(v2.as_str())
    );

    // 8. Git drops `extra`: once the webhook has fetched that head, the prune may delete it.
    // (Right after the push it may not yet: see `prune_right_after_the_push_is_allowed`.)
    repo.remove("app/extra.yaml");
    let v3 = repo.commit("web v3: no extra");
    webhook.wait_for_head(&v3);
    let run = sync(&["--prune"]);
    assert_eq!(run.code, 0, "{run}\n{}", webhook.log_text());
    assert!(
        run.stdout.contains(&format!("pruned ConfigMap/{ns}/extra")),
        "{run}"
    );
    assert!(cluster.configmap("extra").is_none());
    assert_eq!(
        cluster.configmap("settings").expect("settings")["data"]["LOG_LEVEL"],
        "warn"
    );
    assert!(webhook.reviews("DELETE", "ConfigMap", "allowed") >= 1);
    assert!(webhook.reviews("DELETE", "ConfigMap", "denied") >= 1);
    assert!(webhook.reviews("UPDATE", "ConfigMap", "denied") >= 6);
    assert!(webhook.reviews("UPDATE", "Deployment", "denied") >= 1);
}

/// DESIGN rule 5: a DELETE is a prune "when the tracked branch's head no longer declares it".
/// `git push` then `kubectl gitops sync --prune` at once, with nothing else changed: the webhook's
/// last periodic fetch (1h here) still has the old head, so it must fetch before refusing.
#[test]
fn prune_right_after_the_push_is_allowed() {
    let cluster = Cluster::new("webhook-prune");
    let ns = cluster.namespace.clone();
    // A long fetch interval makes "right after the push" certain.
    let world = World::new(&cluster, "1h");
    let run = world.sync(&[]);
    assert_eq!(run.code, 0, "{run}\n{}", world.webhook.log_text());
    assert!(cluster.configmap("extra").is_some());

    world.repo.remove("app/extra.yaml");
    world.repo.commit("no extra");
    let run = world.sync(&["--prune"]);
    assert_eq!(run.code, 0, "{run}\n{}", world.webhook.log_text());
    assert!(
        run.stdout.contains(&format!("pruned ConfigMap/{ns}/extra")),
        "{run}"
    );
    assert!(cluster.configmap("extra").is_none());
}

/// A Deployment of a folder app: `folder/storefront` is not listed in gitops.yaml.
const STOREFRONT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: storefront
spec:
  replicas: 2
  selector:
    matchLabels:
      app: storefront
  template:
    metadata:
      labels:
        app: storefront
    spec:
      containers:
      - name: storefront
        image: registry.k8s.io/pause:3.10
";

/// DESIGN rule 8 for a folder app: a Scale carries no labels and the head index covers only the
/// apps of gitops.yaml, so the webhook reads the parent from the API server. `kubectl scale` (and
/// the same merge patch on `/scale`) of a folder app's Deployment by a person is refused with the
/// webhook's sentence; a scale of an unmanaged Deployment passes, and so does a scale to Git's value.
#[test]
fn scale_of_a_folder_apps_deployment_is_refused_and_of_an_unmanaged_one_passes() {
    let cluster = Cluster::new("webhook-scale");
    let ns = cluster.namespace.clone();
    let world = World::new(&cluster, "1h");
    let (api, webhook) = (&world.api, &world.webhook);
    world
        .repo
        .write("folder/storefront/deployment.yaml", STOREFRONT);
    let head = world.repo.commit("folder app storefront");

    // A folder app's namespace comes from the command line, not from Git: the webhook cannot
    // verify it and refuses to let one in, before anything is applied.
    let sync_storefront = || {
        cluster.run(&[
            "sync",
            "--repo",
            &world.url,
            "--path",
            "folder/storefront",
            "-n",
            &ns,
        ])
    };
    let run = sync_storefront();
    assert_eq!(run.code, 1, "{run}");
    assert!(
        run.stderr
            .contains("list its folder as an app in gitops.yaml")
            && run.stderr.contains("nothing was applied"),
        "{run}"
    );
    // One synced before the webhook enforced is still guarded against scaling.
    let run = without_the_webhook(&world, sync_storefront);
    assert_eq!(run.code, 0, "{run}\n{}", webhook.log_text());
    assert!(
        run.stdout
            .contains(&format!("created Deployment/{ns}/storefront")),
        "{run}"
    );
    let storefront = format!("/apis/apps/v1/namespaces/{ns}/deployments/storefront");
    let deployment = cluster.get(&storefront).expect("storefront exists");
    assert_eq!(
        annotation(&deployment, "kubectl-gitops.io/path"),
        Some("folder/storefront")
    );
    assert_eq!(deployment["spec"]["replicas"], 2);

    // Alice scales it (the merge patch kubectl scale sends): refused, nothing changes.
    let says = |replicas: u32| {
        format!(
            "Deployment/{ns}/storefront: spec.replicas is {replicas}, commit {} on main says 2 — change it in Git (kubectl scale is an out-of-band change)",
            short(&head)
        )
    };
    let scale = format!("{storefront}/scale");
    let answer = api.merge_patch(Who::Alice, &scale, json!({"spec": {"replicas": 5}}));
    assert_denied(&answer, &says(5));
    assert_eq!(
        cluster.get(&storefront).expect("storefront")["spec"]["replicas"],
        2
    );
    if let Some(server) = &cluster.server {
        // What the webhook got has the captured shape (fixture 0076).
        let reviews = server.requests().admission_reviews();
        let sent = &reviews.last().expect("a review")["request"];
        assert_eq!(
            sent["kind"],
            json!({"group": "autoscaling", "version": "v1", "kind": "Scale"})
        );
        assert_eq!(
            sent["resource"],
            json!({"group": "apps", "version": "v1", "resource": "deployments"})
        );
        assert_eq!(sent["subResource"], "scale");
        assert_eq!(sent["operation"], "UPDATE");
        assert_eq!(sent["userInfo"]["username"], "alice");
        assert_eq!(sent["oldObject"]["spec"]["replicas"], 2);
        assert_eq!(sent["object"]["spec"]["replicas"], 5);
        assert_eq!(sent["object"]["status"]["selector"], "app=storefront");
    }
    // And with the kubectl program.
    if let Some(run) = api.kubectl_as_alice(
        &cluster,
        &["scale", "deployment", "storefront", "--replicas=4"],
    ) {
        assert_eq!(run.code, 1, "{run}");
        assert!(
            run.stderr.contains(&format!(
                "Error from server (Forbidden): {}",
                denied(&says(4))
            )),
            "{run}"
        );
        assert!(!run.stdout.contains("scaled"), "{run}");
    }
    assert_eq!(
        cluster.get(&storefront).expect("storefront")["spec"]["replicas"],
        2
    );
    // Scaling to Git's value is no change and passes.
    let (code, body) = api.merge_patch(Who::Alice, &scale, json!({"spec": {"replicas": 2}}));
    assert_eq!(code, 200, "{body:#}");

    // An unmanaged Deployment: alice may scale it, through the API and with kubectl.
    let (code, body) = api.request(
        Who::Alice,
        "POST",
        &format!("/apis/apps/v1/namespaces/{ns}/deployments"),
        Some("application/json"),
        &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "scratch"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "scratch"}},
                "template": {"metadata": {"labels": {"app": "scratch"}},
                    "spec": {"containers": [{"name": "scratch", "image": "registry.k8s.io/pause:3.10"}]}}}}),
    );
    assert_eq!(code, 200, "{body:#}");
    let scratch = format!("/apis/apps/v1/namespaces/{ns}/deployments/scratch");
    let (code, body) = api.merge_patch(
        Who::Alice,
        &format!("{scratch}/scale"),
        json!({"spec": {"replicas": 3}}),
    );
    assert_eq!(code, 200, "{body:#}\n{}", webhook.log_text());
    assert_eq!(body["kind"], "Scale");
    assert_eq!(body["spec"]["replicas"], 3);
    assert_eq!(
        cluster.get(&scratch).expect("scratch")["spec"]["replicas"],
        3
    );
    if let Some(run) = api.kubectl_as_alice(
        &cluster,
        &["scale", "deployment", "scratch", "--replicas=4"],
    ) {
        assert_eq!(run.code, 0, "{run}");
        assert!(
            run.stdout.contains("deployment.apps/scratch scaled"),
            "{run}"
        );
        assert_eq!(
            cluster.get(&scratch).expect("scratch")["spec"]["replicas"],
            4
        );
    }
    // The webhook decided those Scales (the API server called it for */scale).
    assert!(webhook.reviews("UPDATE", "Scale", "denied") >= 1);
    assert!(webhook.reviews("UPDATE", "Scale", "allowed") >= 2);
}

const SERVICE: &str = "apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
  - name: http
    port: 80
    targetPort: 8080
";

/// Replaces an object (PUT, as the controllers write: their roles have no patch) as one of
/// kube-controller-manager's controllers: on a real cluster the admin impersonates
/// `system:serviceaccount:kube-system:<controller>`; the test API server has one controller
/// identity, its `controller-token`.
fn update_as_controller(
    world: &World,
    controller: &str,
    path: &str,
    object: Value,
) -> (u16, Value) {
    let cluster = world.registration.cluster;
    if !cluster.is_real() {
        return world.api.request(
            Who::Controller,
            "PUT",
            path,
            Some("application/json"),
            &object,
        );
    }
    let client = world.api.runtime.block_on(async {
        let file = Kubeconfig::read_from(&cluster.kubeconfig).expect("a readable kubeconfig");
        let mut config = kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
            .await
            .expect("a usable kubeconfig");
        config.auth_info.impersonate =
            Some(format!("system:serviceaccount:kube-system:{controller}"));
        kube::Client::try_from(config).expect("a client")
    });
    send(
        &world.api.runtime,
        &client,
        "PUT",
        path,
        Some("application/json"),
        &object,
    )
}

/// Whether the API server sends this namespace's writes to the webhook now: a dry-run create of
/// a ConfigMap labelled managed but without provenance is refused only by the webhook.
fn webhook_enforces(world: &World) -> bool {
    let cluster = world.registration.cluster;
    let (code, _) = cluster.request(
        "POST",
        &format!(
            "/api/v1/namespaces/{}/configmaps?dryRun=All",
            cluster.namespace
        ),
        Some("application/json"),
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "probe",
            "labels": {"app.kubernetes.io/managed-by": "kubectl-gitops"}}}),
    );
    code == 403
}

/// Runs `f` with the webhook's registration taken away (as before the webhook was installed),
/// then puts it back, each time waiting until the API server acts on the change.
fn without_the_webhook<T>(world: &World, f: impl FnOnce() -> T) -> T {
    let cluster = world.registration.cluster;
    let path = world.registration.path.clone();
    let mut saved = cluster.get(&path).expect("the registration");
    let (code, body) = cluster.request("DELETE", &path, None, &Value::Null);
    assert_eq!(code, 200, "{body}");
    eventually("the webhook's registration gone", || {
        (!webhook_enforces(world)).then_some(())
    });
    let out = f();
    let metadata = saved["metadata"].as_object_mut().expect("metadata");
    metadata.retain(|key, _| key == "name");
    let (code, body) = cluster.request(
        "POST",
        "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
        Some("application/json"),
        &saved,
    );
    assert_eq!(code, 200, "{body}");
    eventually("the webhook's registration back", || {
        webhook_enforces(world).then_some(())
    });
    out
}

/// The first item of a list whose labels include `key=value`.
fn labelled(list: Option<Value>, key: &str, value: &str) -> Option<Value> {
    list?["items"]
        .as_array()?
        .iter()
        .find(|item| item["metadata"]["labels"][key] == json!(value))
        .cloned()
}

/// Issue 8, item 1: the EndpointSlice and Endpoints controllers copy a managed Service's labels
/// (managed-by included) onto what they write, and the ReplicaSet controller derives ReplicaSets
/// from a managed Deployment. Exempt identities are decided first, so all of it passes. On a real
/// control plane the controllers write them; the test then writes an endpoint as the controller
/// would if a Pod became ready (there is no kubelet). On the test API server, which runs no
/// controllers, the test writes them as the controller. The webhook denies nothing.
#[test]
fn controllers_write_what_they_derive_from_managed_objects() {
    let cluster = Cluster::new("webhook-derived");
    let ns = cluster.namespace.clone();
    let world = World::new(&cluster, "1h");
    world.repo.write("app/service.yaml", SERVICE);
    world.repo.commit("web service");
    let run = world.sync(&[]);
    assert_eq!(run.code, 0, "{run}\n{}", world.webhook.log_text());
    let service = cluster
        .get(&format!("/api/v1/namespaces/{ns}/services/web"))
        .expect("the Service");
    assert_eq!(
        service["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "kubectl-gitops"
    );
    let slices = format!("/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices");
    let slice = if cluster.is_real() {
        // The EndpointSlice controller's own slice, with the Service's labels copied.
        eventually("the controller's EndpointSlice", || {
            labelled(cluster.get(&slices), "kubernetes.io/service-name", "web")
        })
    } else {
        let (code, body) = world.api.request(
            Who::Controller,
            "POST",
            &slices,
            Some("application/json"),
            &json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": "web-abcde", "labels": {
                    "kubernetes.io/service-name": "web",
                    "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                    "app.kubernetes.io/managed-by": "kubectl-gitops"}},
                "addressType": "IPv4", "endpoints": [], "ports": []}),
        );
        assert_eq!(code, 200, "{body}");
        body
    };
    assert_eq!(
        slice["metadata"]["labels"]["app.kubernetes.io/managed-by"], "kubectl-gitops",
        "the controller copies the Service's labels: {slice:#}"
    );
    // A Pod became ready: the controller adds its address.
    let name = slice["metadata"]["name"]
        .as_str()
        .expect("a name")
        .to_owned();
    let mut ready = slice.clone();
    ready["endpoints"] = json!([{"addresses": ["10.0.0.7"], "conditions": {"ready": true}}]);
    ready["ports"] = json!([{"name": "http", "port": 8080, "protocol": "TCP"}]);
    let (code, body) = update_as_controller(
        &world,
        "endpointslice-controller",
        &format!("{slices}/{name}"),
        ready,
    );
    assert_eq!(code, 200, "{body}");
    // The Endpoints object, written by the Endpoints controller with the same labels.
    let endpoints = format!("/api/v1/namespaces/{ns}/endpoints");
    let (code, body) = if cluster.is_real() {
        let mut written = eventually("the controller's Endpoints", || {
            cluster.get(&format!("{endpoints}/web"))
        });
        assert_eq!(
            written["metadata"]["labels"]["app.kubernetes.io/managed-by"], "kubectl-gitops",
            "the controller copies the Service's labels: {written:#}"
        );
        written["subsets"] = json!([{"addresses": [{"ip": "10.0.0.7"}],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}]);
        update_as_controller(
            &world,
            "endpoint-controller",
            &format!("{endpoints}/web"),
            written,
        )
    } else {
        world.api.request(
            Who::Controller,
            "POST",
            &endpoints,
            Some("application/json"),
            &json!({"apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": "web", "labels": {"app.kubernetes.io/managed-by": "kubectl-gitops"}},
                "subsets": [{"addresses": [{"ip": "10.0.0.7"}], "ports": [{"name": "http", "port": 8080}]}]}),
        )
    };
    assert_eq!(code, 200, "{body}");
    if cluster.is_real() {
        // The Deployment's ReplicaSet, made by the ReplicaSet's controller.
        let replicasets = format!("/apis/apps/v1/namespaces/{ns}/replicasets");
        let replicaset = eventually("the Deployment's ReplicaSet", || {
            labelled(cluster.get(&replicasets), "app", "web")
        });
        assert_eq!(replicaset["metadata"]["ownerReferences"][0]["name"], "web");
    }
    world.webhook.assert_no_denials();
}

/// Issue 8, item 2: six rounds of push-then-sync back to back, each changing one object and
/// deleting another with `--prune` at once. The webhook fetches at most once a second (the
/// default `missFetchInterval`) and its periodic fetch is an hour away: every sync's commit
/// arrives inside the rate limit of the round before, waits for the next fetch, and passes.
#[test]
fn six_push_then_sync_rounds_back_to_back_pass() {
    let cluster = Cluster::new("webhook-rounds");
    let ns = cluster.namespace.clone();
    let world = World::new(&cluster, "1h");
    world.repo.write(
        "app/round-0.yaml",
        &configmap_yaml("round-0", &[("N", "0")]),
    );
    world.repo.commit("round 0");
    let run = world.sync(&["--prune"]);
    assert_eq!(run.code, 0, "{run}\n{}", world.webhook.log_text());
    for round in 1..=6 {
        world.repo.write(
            "app/settings.yaml",
            &configmap_yaml(
                "settings",
                &[("LOG_LEVEL", "info"), ("ROUND", &round.to_string())],
            ),
        );
        world.repo.remove(&format!("app/round-{}.yaml", round - 1));
        world.repo.write(
            &format!("app/round-{round}.yaml"),
            &configmap_yaml(&format!("round-{round}"), &[("N", &round.to_string())]),
        );
        let commit = world.repo.commit(&format!("round {round}"));
        let run = world.sync(&["--prune"]);
        assert_eq!(
            run.code,
            0,
            "round {round}: {run}\n{}",
            world.webhook.log_text()
        );
        assert!(
            run.stdout
                .contains(&format!("pruned ConfigMap/{ns}/round-{}", round - 1)),
            "round {round}: {run}"
        );
        let settings = cluster.configmap("settings").expect("settings");
        assert_eq!(settings["data"]["ROUND"], json!(round.to_string()));
        assert_eq!(
            annotation(&settings, "kubectl-gitops.io/revision"),
            Some(commit.as_str())
        );
        assert!(cluster.configmap(&format!("round-{}", round - 1)).is_none());
        assert!(cluster.configmap(&format!("round-{round}")).is_some());
    }
    world.webhook.assert_no_denials();
}

/// The Deployment of the attack tests: Git declares empty tolerations and an empty template
/// annotations map (declarations of emptiness) and one `DB_HOST`.
const GUARDED: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
      annotations: {}
    spec:
      tolerations: []
      containers:
      - name: web
        image: registry.k8s.io/pause:3.10
        env:
        - name: DB_HOST
          value: db
";

/// A Secret Git declares; its value must never show in a denial.
const SECRET: &str = "apiVersion: v1
kind: Secret
metadata:
  name: db
data:
  password: Z2l0LXNlY3JldA==
";

/// The rendered object of `kind`/`name` of app `app` at the head of the world's repository.
fn rendered(world: &World, app: &str, kind: &str, name: &str) -> Value {
    let run = Run::from(
        Command::new(gitops_e2e::harness::binary())
            .args(["render", app, "--repo", &world.url, "-o", "json"])
            .env(
                "GITOPS_CACHE_DIR",
                world.registration.cluster.dir.path().join("cache"),
            )
            .output()
            .expect("kubectl-gitops runs"),
    );
    assert_eq!(run.code, 0, "{run}");
    let list: Value = serde_json::from_str(&run.stdout).expect("render -o json");
    list["items"]
        .as_array()
        .and_then(|items| {
            items.iter().find(|o| {
                o["kind"] == kind
                    && (o["metadata"]["name"] == name || o["metadata"]["generateName"] == name)
            })
        })
        .cloned()
        .unwrap_or_else(|| panic!("{app} renders no {kind}/{name}: {list:#}"))
}

/// A server-side apply of `object` by alice under the field manager `kubectl-gitops` (any name
/// would do: a person chooses it).
fn apply_as_alice(world: &World, path: &str, object: &Value) -> (u16, Value) {
    let answer = world.api.request(
        Who::Alice,
        "PATCH",
        &format!("{path}?fieldManager=kubectl-gitops&force=true"),
        Some("application/apply-patch+yaml"),
        object,
    );
    if answer.0 != 403 {
        eprintln!("the webhook's log:\n{}", world.webhook.log_text());
    }
    answer
}

/// Asserts a refusal by the webhook whose sentence contains `part`; the message.
fn assert_refused(answer: &(u16, Value), part: &str) -> String {
    let (code, body) = answer;
    assert_eq!(*code, 403, "{body:#}");
    let message = body["message"].as_str().unwrap_or_default().to_owned();
    assert!(
        message.starts_with(&denied("")) && message.contains(part),
        "expected a refusal naming {part:?}: {message}"
    );
    message
}

/// Issue 9: what a person with `edit` tries, through the API server, against managed objects —
/// each refused with the webhook's sentence naming the field — while the admin's syncs of the
/// same commits pass.
#[test]
fn attacks_by_a_person_with_edit_are_refused() {
    let cluster = Cluster::new("webhook-attacks");
    let ns = cluster.namespace.clone();
    let world = World::new(&cluster, "1h");
    let (api, repo) = (&world.api, &world.repo);
    repo.write("app/deployment.yaml", GUARDED);
    repo.write("app/secret.yaml", SECRET);
    let v2 = repo.commit("guarded web, a secret");
    let deployments = format!("/apis/apps/v1/namespaces/{ns}/deployments");
    let web = format!("{deployments}/web");
    let deployment = rendered(&world, "web", "Deployment", "web");

    // 2. Creating a declared object with an extra container, or a hostPath volume.
    let mut evil = deployment.clone();
    evil["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .expect("containers")
        .push(json!({"name": "evil", "image": "registry.k8s.io/pause:3.10"}));
    assert_refused(
        &apply_as_alice(&world, &web, &evil),
        "spec.template.spec.containers[name=evil]",
    );
    let mut evil = deployment.clone();
    evil["spec"]["template"]["spec"]["volumes"] =
        json!([{"name": "root", "hostPath": {"path": "/"}}]);
    assert_refused(
        &apply_as_alice(&world, &web, &evil),
        "spec.template.spec.volumes",
    );
    assert!(cluster.get(&web).is_none());

    // The admin's sync of the same commit passes.
    let run = world.sync(&[]);
    assert_eq!(run.code, 0, "{run}\n{}", world.webhook.log_text());

    // 8. The inventory: who synced, and the members Git declares, are the sync's to write;
    // it goes only with its app.
    let inventory = format!("/api/v1/namespaces/{ns}/configmaps/gitops-web");
    assert_refused(
        &api.merge_patch(
            Who::Alice,
            &inventory,
            json!({"metadata": {"annotations": {"kubectl-gitops.io/synced-by": "someone-else"}}}),
        ),
        "the inventory says it was synced by \"someone-else\"",
    );
    let listed = cluster.get(&inventory).expect("the inventory");
    let members: Vec<Value> =
        serde_json::from_str(listed["data"]["members"].as_str().expect("members")).expect("a list");
    let fewer: Vec<&Value> = members.iter().filter(|m| m[1] != "Deployment").collect();
    assert_eq!(fewer.len() + 1, members.len(), "{members:?}");
    assert_refused(
        &api.merge_patch(
            Who::Alice,
            &inventory,
            json!({"metadata": {"annotations": {"kubectl-gitops.io/synced-by": api.alice}},
                "data": {"members": serde_json::to_string(&fewer).expect("json")}}),
        ),
        &format!("the inventory would drop Deployment/{ns}/web"),
    );
    assert_refused(
        &api.request(Who::Alice, "DELETE", &inventory, None, &Value::Null),
        "which the branch head",
    );

    // 4. Filling what Git declares empty: tolerations, the template's annotations (what
    // `kubectl rollout restart` writes).
    assert_refused(
        &api.merge_patch(
            Who::Alice,
            &web,
            json!({"spec": {"template": {"spec": {"tolerations": [{"operator": "Exists"}]}}}}),
        ),
        "spec.template.spec.tolerations",
    );
    assert_refused(
        &api.merge_patch(
            Who::Alice,
            &web,
            json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2026-12-03T08:00:00Z"}}}}}),
        ),
        "kubectl.kubernetes.io/restartedAt",
    );
    // 5. A second DB_HOST appended by a JSON patch (the API server only warns). The test API
    // server takes no JSON patch: there the same list goes in by a PUT.
    let duplicate = json!({"name": "DB_HOST", "value": "evil.example"});
    let answer = if cluster.is_real() {
        api.request(
            Who::Alice,
            "PATCH",
            &web,
            Some("application/json-patch+json"),
            &json!([{"op": "add", "path": "/spec/template/spec/containers/0/env/-",
                "value": duplicate}]),
        )
    } else {
        let mut live = cluster.get(&web).expect("web");
        live["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array_mut()
            .expect("env")
            .push(duplicate);
        api.request(Who::Alice, "PUT", &web, Some("application/json"), &live)
    };
    assert_refused(&answer, "env[name=DB_HOST] holds 2 entries");
    // 9. A guess at the Secret's value, as a dry run: refused without quoting either value.
    let message = assert_refused(
        &api.merge_patch(
            Who::Alice,
            &format!("/api/v1/namespaces/{ns}/secrets/db?dryRun=All"),
            json!({"data": {"password": "Z3Vlc3M="}}),
        ),
        "data.password is (a Secret value, not shown)",
    );
    assert!(
        !message.contains("Z3Vlc3M=") && !message.contains("Z2l0LXNlY3JldA=="),
        "{message}"
    );

    // 14. A managed Pod may not be evicted while Git declares it, nor get an ephemeral
    // container. (The test API server models neither subresource.)
    if cluster.is_real() {
        let pods = format!("/api/v1/namespaces/{ns}/pods");
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "probe", "namespace": ns},
            "spec": {"containers": [{"name": "probe", "image": "registry.k8s.io/pause:3.10"}]}});
        repo.write("app/pod.yaml", &serde_json::to_string(&pod).expect("json"));
        repo.commit("a bare Pod");
        let run = world.sync(&[]);
        assert_eq!(run.code, 0, "{run}\n{}", world.webhook.log_text());
        assert_refused(
            &api.request(
                Who::Alice,
                "POST",
                &format!("{pods}/probe/eviction"),
                Some("application/json"),
                &json!({"apiVersion": "policy/v1", "kind": "Eviction",
                    "metadata": {"name": "probe", "namespace": ns}}),
            ),
            &format!("Pod/{ns}/probe: app web still declares it"),
        );
        // `edit` grants no ephemeral containers: the admin, a person too, tries.
        assert_refused(
            &api.request(
                Who::Admin,
                "PATCH",
                &format!("{pods}/probe/ephemeralcontainers"),
                Some("application/strategic-merge-patch+json"),
                &json!({"spec": {"ephemeralContainers": [{"name": "debug",
                    "image": "registry.k8s.io/pause:3.10", "targetContainerName": "probe"}]}}),
            ),
            "ephemeralContainers",
        );
        repo.remove("app/pod.yaml");
        repo.commit("no bare Pod");
        let run = world.sync(&["--prune"]);
        assert_eq!(run.code, 0, "{run}\n{}", world.webhook.log_text());
    }

    // 10. A confused deputy: an HPA of the managed Deployment pinned at 5, for the exempt HPA
    // controller to scale it.
    assert_refused(
        &api.request(
            Who::Alice,
            "POST",
            &format!("/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers"),
            Some("application/json"),
            &json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": "web"},
                "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                    "minReplicas": 5, "maxReplicas": 5}}),
        ),
        "it scales Deployment",
    );

    // The next commit drops ConfigMap `extra`, adds a sidecar, and a dev copy of the app in
    // another namespace that also declares a Deployment `web`.
    repo.remove("app/extra.yaml");
    repo.write(
        "app/deployment.yaml",
        &format!("{GUARDED}      - name: sidecar\n        image: registry.k8s.io/pause:3.10\n"),
    );
    repo.write("app-dev/deployment.yaml", DEPLOYMENT);
    repo.write(
        "gitops.yaml",
        &format!("apps:\n  web:\n    path: app\n    namespace: {ns}\n  web-dev:\n    path: app-dev\n    namespace: {ns}-dev\n"),
    );
    repo.commit("drop extra, add a sidecar, a dev copy");

    // 3. Applying the new commit by hand, with more in the new container than Git declares.
    let mut evil = rendered(&world, "web", "Deployment", "web");
    evil["spec"]["template"]["spec"]["containers"][1]["command"] = json!(["sh", "-c", "id"]);
    assert_refused(
        &apply_as_alice(&world, &web, &evil),
        "spec.template.spec.containers[name=sidecar].command",
    );
    // 1. The dev copy's Deployment, claimed for this namespace's `web`.
    let mut other = rendered(&world, "web-dev", "Deployment", "web");
    other["metadata"]["namespace"] = json!(ns);
    assert_refused(
        &apply_as_alice(&world, &web, &other),
        "Git binds it to app web (path app)",
    );
    // 7. Resurrection: `extra` may be deleted now (a prune), not created again from v2.
    let extra = format!("/api/v1/namespaces/{ns}/configmaps/extra");
    let mut old_extra = cluster.get(&extra).expect("extra");
    let (code, body) = api.request(Who::Alice, "DELETE", &extra, None, &Value::Null);
    assert_eq!(code, 200, "{body:#}");
    let metadata = old_extra["metadata"].as_object_mut().expect("metadata");
    metadata.retain(|key, _| matches!(key.as_str(), "name" | "labels" | "annotations"));
    assert_eq!(
        annotation(&old_extra, "kubectl-gitops.io/revision"),
        Some(v2.as_str())
    );
    assert_refused(
        &apply_as_alice(&world, &extra, &old_extra),
        "no app of gitops.yaml at the head of main declares it",
    );

    // The admin's sync of v3 (a new container) passes; nothing refused was applied.
    let run = world.sync(&["--prune"]);
    assert_eq!(run.code, 0, "{run}\n{}", world.webhook.log_text());
    let live = cluster.get(&web).expect("web");
    let containers = live["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers");
    assert_eq!(containers.len(), 2);
    assert!(containers[1].get("command").is_none());
    // Git's empty tolerations (the real API server drops the empty list).
    let tolerations = &live["spec"]["template"]["spec"]["tolerations"];
    assert!(
        tolerations.is_null() || tolerations == &json!([]),
        "{tolerations}"
    );
    assert!(cluster.configmap("extra").is_none());
}

/// The inventory lists what Git declares until a prune (issue 9, item 8): a person may neither
/// add a member the commit does not declare nor drop one Git dropped while it still runs (the
/// next prune would skip it); the sync's own prune, which reads as the same person, passes.
#[test]
fn the_inventory_keeps_what_a_prune_must_delete() {
    let cluster = Cluster::new("webhook-inventory");
    let ns = cluster.namespace.clone();
    let world = World::new(&cluster, "1h");
    let (api, repo) = (&world.api, &world.repo);
    let run = world.sync(&[]);
    assert_eq!(run.code, 0, "{run}\n{}", world.webhook.log_text());
    let inventory = format!("/api/v1/namespaces/{ns}/configmaps/gitops-web");
    let members_of = |parent: &Value| -> Vec<Value> {
        serde_json::from_str(parent["data"]["members"].as_str().expect("members")).expect("a list")
    };
    let listed = members_of(&cluster.get(&inventory).expect("the inventory"));
    assert!(listed.iter().any(|m| m[3] == "extra"), "{listed:?}");
    let signed = json!({"kubectl-gitops.io/synced-by": api.alice});

    // A member Git does not declare, added for the next prune to delete.
    let mut more = listed.clone();
    more.push(json!(["", "ConfigMap", ns, "stranger"]));
    assert_refused(
        &api.merge_patch(
            Who::Alice,
            &inventory,
            json!({"metadata": {"annotations": signed},
                "data": {"members": serde_json::to_string(&more).expect("json")}}),
        ),
        &format!(
            "the inventory would list ConfigMap/{ns}/stranger, which app web declares neither"
        ),
    );

    // Git drops `extra`; the inventory moved to that commit without it, while it still runs.
    repo.remove("app/extra.yaml");
    let v2 = repo.commit("drop extra");
    let fewer: Vec<&Value> = listed.iter().filter(|m| m[3] != "extra").collect();
    let hide = json!({"metadata": {"annotations": {"kubectl-gitops.io/synced-by": api.alice,
            "kubectl-gitops.io/revision": v2}},
        "data": {"members": serde_json::to_string(&fewer).expect("json")}});
    assert_refused(
        &api.merge_patch(Who::Alice, &inventory, hide.clone()),
        &format!("the inventory would drop ConfigMap/{ns}/extra, which still exists and carries this app's labels"),
    );
    assert!(cluster.configmap("extra").is_some());

    // The sync's prune deletes it, then drops it from the list: the webhook read it gone.
    let run = world.sync(&["--prune"]);
    assert_eq!(run.code, 0, "{run}\n{}", world.webhook.log_text());
    assert!(run.stdout.contains(" 1 pruned,"), "{run}");
    assert!(cluster.configmap("extra").is_none());
    let parent = cluster.get(&inventory).expect("the inventory");
    let after = members_of(&parent);
    assert_eq!(after.len(), fewer.len(), "{after:?}");
    assert_eq!(
        annotation(&parent, "kubectl-gitops.io/revision"),
        Some(v2.as_str())
    );
    // Exactly the two refusals, each counted under its variant.
    assert_eq!(world.webhook.denials().0, 2, "{}", world.webhook.log_text());
    let (_, metrics) = admin_get(world.webhook.admin, "/metrics").expect("GET /metrics");
    for reason in ["InventoryAddsUndeclared", "InventoryHidesLiveMember"] {
        assert!(
            metrics.contains(&format!("reason=\"{reason}\"")),
            "{reason}: {metrics}"
        );
    }
}

/// Copies the folder `from` into `to`, recursively.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("a folder");
    for entry in std::fs::read_dir(from).expect("a readable folder") {
        let entry = entry.expect("an entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy a file");
        }
    }
}

/// Replaces `from` by `to` in a file of the repository (which must contain it).
fn edit(repo: &gitops_e2e::harness::Repo, file: &str, from: &str, to: &str) {
    let path = repo.path.join(file);
    let text = std::fs::read_to_string(&path).expect("a file to edit");
    assert!(text.contains(from), "{file} has no {from:?}");
    std::fs::write(&path, text.replace(from, to)).expect("write");
}

/// One example app of this repository (`folder`, relative to the workspace, copied to the same
/// place in the test's repository), through the webhook on its own namespace: sync, a no-op
/// re-sync, a sync of the next commit (`forward` edits the copy), and a `--prune` of a commit
/// that drops an object (`drop` edits it) — with no denial. The example's own Namespace object
/// is left out (`namespace_files`): the test's namespace exists already.
fn example_app_through_the_webhook(
    app: &str,
    folder: &str,
    entry: &str,
    namespace_files: &[&str],
    setup: impl Fn(&gitops_e2e::harness::Repo),
    forward: impl Fn(&gitops_e2e::harness::Repo),
    drop: impl Fn(&gitops_e2e::harness::Repo),
) {
    let cluster = Cluster::new(&format!("webhook-example-{app}"));
    let ns = cluster.namespace.clone();
    let world = World::new(&cluster, "1h");
    let repo = &world.repo;
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    copy_dir(&workspace.join(folder), &repo.path.join(folder));
    for file in namespace_files {
        let file = Path::new(folder).join(file);
        repo.remove(&file.display().to_string());
        // A kustomization lists its resources: the file goes from the list too.
        let kustomization = file.with_file_name("kustomization.yaml");
        if repo.path.join(&kustomization).exists() {
            let name = file
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            edit(
                repo,
                &kustomization.display().to_string(),
                &format!("  - {name}\n"),
                "",
            );
        }
    }
    repo.write(
        "gitops.yaml",
        &format!("apps:\n  web:\n    path: app\n    namespace: {ns}\n  {app}:\n    namespace: {ns}-unused\n{entry}"),
    );
    // The app gets the test's namespace; `web` goes, so nothing else declares objects there.
    edit(repo, "gitops.yaml", &format!("{ns}-unused"), &ns);
    edit(
        repo,
        "gitops.yaml",
        &format!("  web:\n    path: app\n    namespace: {ns}\n"),
        "",
    );
    setup(repo);
    repo.commit(&format!("{app} from the examples"));
    let sync = |extra: &[&str]| {
        let mut args = vec!["sync", app, "--repo", world.url.as_str()];
        args.extend_from_slice(extra);
        cluster.run(&args)
    };
    let run = sync(&[]);
    assert_eq!(run.code, 0, "{app}: {run}\n{}", world.webhook.log_text());
    let run = sync(&[]);
    assert_eq!(run.code, 0, "{app} again: {run}");
    assert!(
        run.stdout.contains(" 0 created, 0 configured,"),
        "{app}: a re-sync changes nothing: {run}"
    );
    forward(repo);
    repo.commit("forward");
    let run = sync(&[]);
    assert_eq!(
        run.code,
        0,
        "{app} forward: {run}\n{}",
        world.webhook.log_text()
    );
    assert!(run.stdout.contains(" 1 configured,"), "{app}: {run}");
    drop(repo);
    repo.commit("drop an object");
    let run = sync(&["--prune"]);
    assert_eq!(
        run.code,
        0,
        "{app} prune: {run}\n{}",
        world.webhook.log_text()
    );
    assert!(run.stdout.contains(" 1 pruned,"), "{app}: {run}");
    world.webhook.assert_no_denials();
}

/// No false denial (issue 9): the example apps — plain YAML, Tera templates with values, a
/// Kustomize overlay and a Helm chart — sync, re-sync, move forward and prune through the
/// webhook.
#[test]
fn example_apps_pass_through_the_webhook() {
    example_app_through_the_webhook(
        "plain-app",
        "examples/plain-app",
        "    path: examples/plain-app\n",
        &["namespace.yaml"],
        |_| {},
        |repo| {
            edit(
                repo,
                "examples/plain-app/configmap.yaml",
                "LOG_LEVEL: info",
                "LOG_LEVEL: debug",
            )
        },
        |repo| repo.remove("examples/plain-app/service.yaml"),
    );
    example_app_through_the_webhook(
        "shop",
        "examples/tera-app",
        "    path: examples/tera-app\n    renderer: tera\n    values: [values-production.yaml]\n",
        &["templates/namespace.yaml"],
        |_| {},
        |repo| {
            edit(
                repo,
                "examples/tera-app/values-production.yaml",
                "replicas: 3",
                "replicas: 2",
            )
        },
        |repo| repo.remove("examples/tera-app/templates/service.yaml"),
    );
    let kustomize = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if kustomize {
        example_app_through_the_webhook(
            "shop-kustomize",
            "examples/kustomize-app",
            "    path: examples/kustomize-app/overlays/production\n    renderer: kustomize\n",
            &["overlays/production/namespace.yaml"],
            |_| {},
            |repo| {
                edit(
                    repo,
                    "examples/kustomize-app/overlays/production/kustomization.yaml",
                    "count: 3",
                    "count: 2",
                )
            },
            |repo| {
                edit(
                    repo,
                    "examples/kustomize-app/base/kustomization.yaml",
                    "configMapGenerator:\n  - name: shop-config\n    literals:\n      - LOG_LEVEL=info\n",
                    "",
                )
            },
        );
    } else {
        eprintln!("kubectl is not installed: the kustomize example is left out");
    }
    // The Helm chart, with a second template to prune.
    example_app_through_the_webhook(
        "shop-helm",
        "examples/helm-app",
        "    path: examples/helm-app\n    renderer: helm\n    values: [values-production.yaml]\n",
        &[],
        |repo| {
            repo.write(
                "examples/helm-app/templates/settings.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-settings\ndata:\n  LOG_LEVEL: info\n",
            )
        },
        |repo| {
            edit(
                repo,
                "examples/helm-app/values-production.yaml",
                "replicaCount: 3",
                "replicaCount: 2",
            )
        },
        |repo| repo.remove("examples/helm-app/templates/settings.yaml"),
    );
}

/// No false denial (issue 9): a real-world Kustomize layout — a base of five services (each a
/// ServiceAccount, Deployment and Service), Ingress, NetworkPolicies, PodDisruptionBudgets, an
/// HPA, RBAC, a CronJob, a generated ConfigMap and Secret, and a production overlay with images,
/// replicas, a merged generator, a strategic-merge and a JSON 6902 patch: 26 objects — syncs,
/// re-syncs, moves forward and prunes through the webhook.
#[test]
fn a_kustomize_overlay_of_26_objects_passes_through_the_webhook() {
    let kustomize = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        kustomize,
        "kubectl (for `kubectl kustomize`) is not installed"
    );
    let overlay = "tests/apps/kustomize-shop/overlays/production";
    example_app_through_the_webhook(
        "shop",
        "tests/apps/kustomize-shop",
        &format!("    path: {overlay}\n    renderer: kustomize\n"),
        &[],
        |_| {},
        |repo| {
            edit(
                repo,
                &format!("{overlay}/kustomization.yaml"),
                "count: 3",
                "count: 4",
            )
        },
        |repo| {
            edit(
                repo,
                "tests/apps/kustomize-shop/base/kustomization.yaml",
                "- report.yaml\n",
                "",
            )
        },
    );
}

/// How break glass ends (DESIGN, issue 14): a break-glass member's hand edits pass with a
/// warning; the next plain sync undoes them — taking over what kubectl's managers own, then
/// applying Git's values — through the webhook, with no denial.
#[test]
fn the_next_sync_undoes_break_glass_changes_through_the_webhook() {
    let cluster = Cluster::new("webhook-undo");
    let ns = cluster.namespace.clone();
    let world = World::new(&cluster, "1h");
    let run = world.sync(&[]);
    assert_eq!(run.code, 0, "{run}\n{}", world.webhook.log_text());
    let settings = format!("/api/v1/namespaces/{ns}/configmaps/settings");
    let web = format!("/apis/apps/v1/namespaces/{ns}/deployments/web");
    // `kubectl patch` adds a key and `kubectl set image` changes the image, as break glass.
    let (code, body) = world.api.merge_patch(
        Who::BreakGlass,
        &format!("{settings}?fieldManager=kubectl-patch"),
        json!({"data": {"EXTRA": "by-hand", "LOG_LEVEL": "trace"}}),
    );
    assert_eq!(code, 200, "{body:#}");
    let (code, body) = world.api.request(
        Who::BreakGlass,
        "PATCH",
        &format!("{web}?fieldManager=kubectl-set"),
        Some("application/strategic-merge-patch+json"),
        &json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "registry.k8s.io/pause:3.9"}]}}}}),
    );
    assert_eq!(code, 200, "{body:#}");
    assert_eq!(
        world.webhook.reviews("UPDATE", "ConfigMap", "break-glass"),
        1
    );

    let run = world.sync(&[]);
    assert_eq!(run.code, 0, "{run}\n{}", world.webhook.log_text());
    let live = cluster.get(&settings).expect("settings");
    assert_eq!(live["data"]["LOG_LEVEL"], "info");
    assert!(live["data"].get("EXTRA").is_none(), "{live:#}");
    let live = cluster.get(&web).expect("web");
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.k8s.io/pause:3.10"
    );
    world.webhook.assert_no_denials();
}

/// A plain multi-document app of many kinds, as teams write them (issue 9, "no false denial").
fn many_kinds(image: &str, with_cron: bool) -> String {
    let mut text = format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: api, labels: {{app: api}}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: api}}}}
  strategy: {{}}
  template:
    metadata: {{labels: {{app: api}}, annotations: {{}}}}
    spec:
      serviceAccountName: api
      securityContext: {{runAsNonRoot: true}}
      containers:
      - name: api
        image: {image}
        args: []
        ports: [{{containerPort: 8080, name: http}}]
        env: [{{name: DB_HOST, value: db}}, {{name: PASSWORD, valueFrom: {{secretKeyRef: {{name: api, key: password}}}}}}]
        resources: {{requests: {{cpu: 100m, memory: 64Mi}}, limits: {{memory: 128Mi}}}}
        readinessProbe: {{httpGet: {{path: /ready, port: http}}}}
        volumeMounts: [{{name: config, mountPath: /etc/api}}]
      volumes: [{{name: config, configMap: {{name: api}}}}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: db}}
spec:
  serviceName: db
  selector: {{matchLabels: {{app: db}}}}
  template:
    metadata: {{labels: {{app: db}}}}
    spec:
      containers: [{{name: db, image: registry.k8s.io/pause:3.10, ports: [{{containerPort: 5432}}]}}]
  volumeClaimTemplates:
  - metadata: {{name: data}}
    spec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: api}}
spec:
  selector: {{app: api}}
  ports: [{{name: http, port: 80, targetPort: http}}]
---
apiVersion: v1
kind: Service
metadata: {{name: db}}
spec:
  clusterIP: None
  selector: {{app: db}}
  ports: [{{port: 5432}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: api}}
spec:
  rules:
  - host: api.example
    http:
      paths: [{{path: /, pathType: Prefix, backend: {{service: {{name: api, port: {{name: http}}}}}}}}]
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: api}}
data: {{LOG_LEVEL: info}}
---
apiVersion: v1
kind: Secret
metadata: {{name: api}}
type: Opaque
stringData: {{password: not-a-real-one}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: api}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: api}}
rules: [{{apiGroups: [""], resources: [configmaps], verbs: [get, list]}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: api}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: api}}
subjects: [{{kind: ServiceAccount, name: api}}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {{name: api}}
spec: {{minAvailable: 1, selector: {{matchLabels: {{app: api}}}}}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {{name: api}}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: api}}
  minReplicas: 2
  maxReplicas: 4
  metrics: [{{type: Resource, resource: {{name: cpu, target: {{type: Utilization, averageUtilization: 80}}}}}}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: api}}
spec:
  podSelector: {{matchLabels: {{app: api}}}}
  ingress: [{{ports: [{{port: 8080}}]}}]
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: scratch}}
spec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}}}
"#
    );
    if with_cron {
        text.push_str(
            r#"---
apiVersion: batch/v1
kind: CronJob
metadata: {name: report}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: report, image: registry.k8s.io/pause:3.10}]
"#,
        );
    }
    text
}

/// No false denial (issue 9): a plain multi-document app of many kinds — Deployment,
/// StatefulSet with a claim template, Services (one headless), Ingress, ConfigMap, a Secret
/// written as stringData, ServiceAccount, Role and binding, PodDisruptionBudget, HPA,
/// NetworkPolicy, PVC, CronJob — with Git's empty declarations, syncs, re-syncs, moves forward
/// and prunes through the webhook, while the controllers write what they derive, with no denial.
#[test]
fn an_app_of_many_kinds_passes_through_the_webhook() {
    let cluster = Cluster::new("webhook-kinds");
    let ns = cluster.namespace.clone();
    let world = World::new(&cluster, "1h");
    let repo = &world.repo;
    repo.remove("app/deployment.yaml");
    repo.write(
        "app/all.yaml",
        &many_kinds("registry.k8s.io/pause:3.10", true),
    );
    repo.commit("an app of many kinds");
    let run = world.sync(&[]);
    assert_eq!(run.code, 0, "{run}\n{}", world.webhook.log_text());
    let run = world.sync(&[]);
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stdout.contains(" 0 created, 0 configured,"), "{run}");
    repo.write(
        "app/all.yaml",
        &many_kinds("registry.k8s.io/pause:3.9", false),
    );
    repo.commit("a new image, no more CronJob");
    let run = world.sync(&["--prune"]);
    assert_eq!(run.code, 0, "{run}\n{}", world.webhook.log_text());
    assert!(
        run.stdout.contains(&format!("pruned CronJob/{ns}/report")),
        "{run}"
    );
    let api = cluster
        .get(&format!("/apis/apps/v1/namespaces/{ns}/deployments/api"))
        .expect("the Deployment");
    assert_eq!(
        api["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.k8s.io/pause:3.9"
    );
    world.webhook.assert_no_denials();
}

/// No false denial on adoption (issue 9): every object of the many-kinds app first made by hand
/// the way `kubectl create -f` makes it (field manager `kubectl-create`, which the API server
/// records as owning the defaults it filled in too), then adopted by a sync through the webhook.
/// What the server defaulted must be told from what a person wrote (shared/src/defaults.rs).
#[test]
fn objects_made_with_kubectl_create_are_adopted_through_the_webhook() {
    let cluster = Cluster::new("webhook-adopt");
    let ns = cluster.namespace.clone();
    let world = World::new(&cluster, "1h");
    let (api, repo) = (&world.api, &world.repo);
    let text = many_kinds("registry.k8s.io/pause:3.10", true);
    repo.remove("app/deployment.yaml");
    repo.remove("app/extra.yaml");
    repo.write("app/all.yaml", &text);
    repo.commit("an app of many kinds, made by hand first");
    let plural = |kind: &str| match kind {
        "Ingress" => "ingresses".to_owned(),
        "NetworkPolicy" => "networkpolicies".to_owned(),
        "PodDisruptionBudget" => "poddisruptionbudgets".to_owned(),
        _ => format!("{}s", kind.to_lowercase()),
    };
    let mut made = 0;
    for document in gitops_shared::yaml::documents(text.as_bytes()).expect("yaml") {
        let object = document.value;
        let (api_version, kind) = (
            object["apiVersion"].as_str().expect("apiVersion"),
            object["kind"].as_str().expect("kind"),
        );
        let base = if api_version.contains('/') {
            format!("/apis/{api_version}")
        } else {
            format!("/api/{api_version}")
        };
        let path = format!(
            "{base}/namespaces/{ns}/{}?fieldManager=kubectl-create",
            plural(kind)
        );
        let (code, body) =
            api.request(Who::Admin, "POST", &path, Some("application/json"), &object);
        assert!(code == 200 || code == 201, "{kind}: {code} {body:#}");
        made += 1;
    }
    assert_eq!(made, 15);
    let run = world.sync(&[]);
    assert_eq!(run.code, 0, "{run}\n{}", world.webhook.log_text());
    // Each object made by hand is adopted (configured, or reverted where kubectl-create's
    // fields differ from Git's spelling, as a Secret's stringData does), none made again.
    let adopted = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("configured ") || l.starts_with("reverted "))
        .count();
    assert_eq!(adopted, made, "{run}");
    assert!(run.stdout.contains(" 0 failed,"), "{run}");
    let again = world.sync(&[]);
    assert_eq!(again.code, 0, "{again}");
    assert!(
        again.stdout.contains(" 0 created, 0 configured,") && again.stdout.contains(" 0 failed,"),
        "{again}"
    );
    // No attempt refused either: the apply after the takeover names the version the takeover
    // made, so the API server never runs admission on a cached copy from before it.
    let (denied, why) = world.webhook.denials();
    assert_eq!(
        denied, 0,
        "{why:#?}\nfirst sync: {run}\nsecond sync: {again}"
    );
}

/// Git-only namespaces work (issue 9, item 12): a sync creates the app and its inventory there;
/// the controllers create what they derive (on a real control plane, the Deployment's
/// ReplicaSet and its Pods; the test API server runs no controllers); a person's create of an
/// unmanaged object is refused.
#[test]
fn a_git_only_namespace_takes_syncs_and_controllers_and_refuses_the_rest() {
    let cluster = Cluster::new("webhook-gitonly");
    let ns = cluster.namespace.clone();
    let world = World::configured(&cluster, "1h", &format!("gitOnlyNamespaces: [{ns}]\n"));
    let run = world.sync(&[]);
    assert_eq!(run.code, 0, "{run}\n{}", world.webhook.log_text());
    assert!(cluster
        .get(&format!("/api/v1/namespaces/{ns}/configmaps/gitops-web"))
        .is_some());
    if cluster.is_real() {
        let pods = format!("/api/v1/namespaces/{ns}/pods");
        eventually("the ReplicaSet's Pods", || {
            cluster
                .get(&pods)
                .and_then(|list| list["items"].as_array().map(Vec::len))
                .filter(|n| *n == 2)
        });
    }
    let answer = world.api.request(
        Who::Alice,
        "POST",
        &format!("/api/v1/namespaces/{ns}/configmaps"),
        Some("application/json"),
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "scratch"}, "data": {"a": "1"}}),
    );
    assert_refused(&answer, &format!("namespace {ns} is Git-only"));
    let (denied, _) = world.webhook.denials();
    assert_eq!(denied, 1, "only the person's unmanaged create");
}

/// Issue 11: Argo CD's `jsonnet-guestbook` shape (Jsonnet, rendered natively by plugin and
/// webhook alike) and `helm-dependency` shape (its dependency vendored under `charts/`) sync,
/// re-sync, move forward and prune through the webhook with no denial — beside an app of
/// gitops.yaml that renders nothing on purpose.
#[test]
fn jsonnet_and_helm_dependency_examples_pass_through_the_webhook() {
    example_app_through_the_webhook(
        "guestbook-jsonnet",
        "examples/jsonnet-guestbook",
        "    path: examples/jsonnet-guestbook\n    jsonnet:\n      tlas:\n        replicas: 2\n",
        &[],
        |repo| {
            repo.write(
                "examples/jsonnet-guestbook/settings.jsonnet",
                "{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'guestbook-settings' }, data: { MODE: 'demo' } }\n",
            );
            // An app empty on purpose: the webhook's branch-head index renders it too, and an
            // empty render is no error there (only the plugin's commands refuse one).
            repo.write("examples/placeholder/README.md", "# filled later\n");
            let path = repo.path.join("gitops.yaml");
            let text = std::fs::read_to_string(&path).expect("gitops.yaml");
            std::fs::write(
                path,
                format!("{text}  placeholder:\n    path: examples/placeholder\n"),
            )
            .expect("write gitops.yaml");
        },
        |repo| edit(repo, "gitops.yaml", "replicas: 2", "replicas: 3"),
        |repo| repo.remove("examples/jsonnet-guestbook/settings.jsonnet"),
    );
    example_app_through_the_webhook(
        "shop-helm-dependency",
        "examples/helm-dependency",
        "    path: examples/helm-dependency\n    renderer: helm\n",
        &[],
        |_| {},
        |repo| {
            edit(
                repo,
                "examples/helm-dependency/values.yaml",
                "replicaCount: 2",
                "replicaCount: 3",
            )
        },
        |repo| repo.remove("examples/helm-dependency/templates/configmap.yaml"),
    );
}

/// A hook Pod: `generateName`, Argo CD's hook annotation and delete policy.
fn hook_pod_yaml(generate_name: &str, hook: &str, policy: &str, image: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  generateName: {generate_name}\n  annotations:\n    argocd.argoproj.io/hook: {hook}\n    argocd.argoproj.io/hook-delete-policy: {policy}\nspec:\n  restartPolicy: Never\n  containers:\n  - name: main\n    image: {image}\n"
    )
}

/// Plays the kubelet for every Pod of the test namespace made from `generate_name`: Succeeded.
fn succeed_pods_from(world: &World, generate_name: &str) -> usize {
    let cluster = world.registration.cluster;
    let ns = &cluster.namespace;
    let list = cluster
        .get(&format!("/api/v1/namespaces/{ns}/pods"))
        .unwrap_or(Value::Null);
    let mut done = 0;
    for pod in list["items"].as_array().into_iter().flatten() {
        if pod["metadata"]["generateName"] != json!(generate_name)
            || pod["status"]["phase"] == json!("Succeeded")
        {
            continue;
        }
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        let (code, body) = cluster.request(
            "PATCH",
            &format!("/api/v1/namespaces/{ns}/pods/{name}/status"),
            Some(MERGE),
            &json!({"status": {"phase": "Succeeded"}}),
        );
        assert_eq!(code, 200, "{body}");
        done += 1;
    }
    done
}

/// Issue 11: Argo CD's `pre-post-sync` shape (hooks made from `generateName`) syncs through the
/// webhook with no denial: the webhook sees the generated name filled in beside the
/// `generateName` and matches the hook to Git's declaration by kind, namespace, `generateName`
/// and hook annotation; the HookSucceeded deletions pass. A re-sync is a no-op that runs no
/// hook. A person's hook Pod whose spec differs from Git, or a made-up `generateName`, is denied.
#[test]
fn hooks_made_from_generate_name_pass_through_the_webhook() {
    let cluster = Cluster::new("webhook-hooks");
    let ns = cluster.namespace.clone();
    let world = World::new(&cluster, "1h");
    let repo = &world.repo;
    let image = "registry.k8s.io/pause:3.10";
    repo.write(
        "app/presync.yaml",
        &hook_pod_yaml("before-", "PreSync", "HookSucceeded", image),
    );
    repo.write(
        "app/postsync.yaml",
        &hook_pod_yaml("after-", "PostSync", "HookSucceeded", image),
    );
    repo.remove("app/deployment.yaml");
    repo.commit("pre-post-sync shape");
    let child = cluster
        .command(&["sync", "web", "--repo", &world.url, "--timeout", "60s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sync starts");
    // Play the kubelet for each hook as it appears.
    eventually("the PreSync Pod", || {
        (succeed_pods_from(&world, "before-") > 0).then_some(())
    });
    eventually("the PostSync Pod", || {
        (succeed_pods_from(&world, "after-") > 0).then_some(())
    });
    let run = Run::from(child.wait_with_output().expect("sync ends"));
    assert_eq!(run.code, 0, "{run}\n{}", world.webhook.log_text());
    let pre = run.stderr.find("PreSync hook Pod/").expect("PreSync ran");
    let post = run.stderr.find("PostSync hook Pod/").expect("PostSync ran");
    assert!(pre < post, "{run}");
    let again = world.sync(&[]);
    assert_eq!(again.code, 0, "{again}");
    assert!(
        again.stdout.contains(" 0 created, 0 configured,"),
        "{again}"
    );
    assert!(
        !again.stderr.contains("hook"),
        "no hook on a no-op: {again}"
    );
    world.webhook.assert_no_denials();

    // A person's hook Pod from Git's generateName but another image, and a made-up generateName.
    let declared = rendered(&world, "web", "Pod", "before-");
    let mut other = declared.clone();
    other["spec"]["containers"][0]["image"] = json!("registry.k8s.io/pause:3.9");
    let answer = world.api.request(
        Who::Alice,
        "POST",
        &format!("/api/v1/namespaces/{ns}/pods"),
        Some("application/json"),
        &other,
    );
    assert_refused(&answer, "spec.containers");
    let mut made_up = declared.clone();
    made_up["metadata"]["generateName"] = json!("sneaky-");
    let answer = world.api.request(
        Who::Alice,
        "POST",
        &format!("/api/v1/namespaces/{ns}/pods"),
        Some("application/json"),
        &made_up,
    );
    assert_refused(&answer, "");
}

/// A Job (a hook when `annotations` say so), as argocd-example-apps writes its migrations.
fn job_yaml(naming: &str, name: &str, annotations: &[(&str, &str)]) -> String {
    let mut text = format!("apiVersion: batch/v1\nkind: Job\nmetadata:\n  {naming}: {name}\n");
    if !annotations.is_empty() {
        text.push_str("  annotations:\n");
        for (key, value) in annotations {
            text.push_str(&format!("    {key}: \"{value}\"\n"));
        }
    }
    text.push_str("spec:\n  backoffLimit: 0\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: main\n        image: registry.k8s.io/pause:3.10\n");
    text
}

/// A Deployment and its Service, in `wave` when given.
fn web_tier_yaml(name: &str, image: &str, wave: Option<&str>) -> String {
    let annotations = wave
        .map(|w| format!("  annotations:\n    argocd.argoproj.io/sync-wave: \"{w}\"\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n{annotations}spec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n      containers:\n      - name: {name}\n        image: {image}\n        ports:\n        - containerPort: 80\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n{annotations}spec:\n  ports:\n  - port: 80\n    targetPort: 80\n  selector:\n    app: {name}\n"
    )
}

/// Plays the kubelet and, where the API has no controllers, the Job and Deployment controllers,
/// once over the test namespace: Jobs not finished become Complete (on Kubernetes 1.36 the
/// Complete condition needs SuccessCriteriaMet beside it, and the counts), Pods of ReplicaSets
/// become Running and Ready (the real ReplicaSet and Deployment controllers then make their
/// Deployment Available), and on the test API server Deployments get the status the deployment
/// controller would write.
fn play_the_node(cluster: &Cluster) {
    let ns = &cluster.namespace;
    let now = gitops_shared::timestamp::now_rfc3339();
    let items = |path: &str| -> Vec<Value> {
        cluster.get(path).unwrap_or(Value::Null)["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let set_status = |path: String, status: Value| {
        let (code, body) =
            cluster.request("PATCH", &path, Some(MERGE), &json!({ "status": status }));
        // A Job or Pod deleted meanwhile (a hook's delete policy) is no failure.
        assert!(code == 200 || code == 404, "{path}: {code} {body}");
    };
    for job in items(&format!("/apis/batch/v1/namespaces/{ns}/jobs")) {
        let finished = job["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Complete" || c["type"] == "Failed");
        if finished || job["metadata"]["deletionTimestamp"].is_string() {
            continue;
        }
        let name = job["metadata"]["name"].as_str().unwrap_or_default();
        let condition = |kind: &str| {
            json!({"type": kind, "status": "True", "reason": "CompletionsReached",
            "message": "Reached expected number of succeeded pods", "lastProbeTime": now, "lastTransitionTime": now})
        };
        set_status(
            format!("/apis/batch/v1/namespaces/{ns}/jobs/{name}/status"),
            json!({"conditions": [condition("SuccessCriteriaMet"), condition("Complete")],
                "startTime": job["status"]["startTime"].as_str().unwrap_or(&now),
                "completionTime": now, "succeeded": 1, "active": 0, "ready": 0, "terminating": 0}),
        );
    }
    for pod in items(&format!("/api/v1/namespaces/{ns}/pods")) {
        let of_replica_set = pod["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|o| o["kind"] == "ReplicaSet");
        if !of_replica_set || pod["status"]["phase"] == "Running" {
            continue;
        }
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        set_status(
            format!("/api/v1/namespaces/{ns}/pods/{name}/status"),
            json!({"phase": "Running", "startTime": now, "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": now},
                {"type": "ContainersReady", "status": "True", "lastTransitionTime": now}]}),
        );
    }
    if cluster.is_real() {
        return;
    }
    for deployment in items(&format!("/apis/apps/v1/namespaces/{ns}/deployments")) {
        let generation = deployment["metadata"]["generation"].as_i64().unwrap_or(1);
        if deployment["status"]["observedGeneration"].as_i64() == Some(generation) {
            continue;
        }
        let name = deployment["metadata"]["name"].as_str().unwrap_or_default();
        let replicas = deployment["spec"]["replicas"].as_i64().unwrap_or(1);
        set_status(
            format!("/apis/apps/v1/namespaces/{ns}/deployments/{name}/status"),
            json!({"observedGeneration": generation, "replicas": replicas, "updatedReplicas": replicas,
                "readyReplicas": replicas, "availableReplicas": replicas, "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "lastTransitionTime": now},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "lastTransitionTime": now}]}),
        );
    }
}

/// Runs `sync <app>` with `extra` arguments while playing the node; the run.
fn sync_playing_the_node(world: &World, app: &str, extra: &[&str]) -> Run {
    let cluster = world.registration.cluster;
    let mut args = vec![
        "sync",
        app,
        "--repo",
        world.url.as_str(),
        "--timeout",
        "90s",
    ];
    args.extend_from_slice(extra);
    let mut child = cluster
        .command(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sync starts");
    while child.try_wait().expect("sync runs").is_none() {
        play_the_node(cluster);
        std::thread::sleep(Duration::from_millis(200));
    }
    Run::from(child.wait_with_output().expect("sync ends"))
}

/// The hook and wave lines of a sync's stderr, in order: what ran when.
fn order_of(run: &Run) -> Vec<String> {
    run.stderr
        .lines()
        .filter(|l| {
            (l.contains(" hook ") && (l.ends_with(": created") || l.contains(": Succeeded")))
                || l.starts_with("wave ")
                || l.starts_with("PostSync: waiting")
        })
        .map(str::to_owned)
        .collect()
}

/// Renders, syncs (playing the node), re-syncs as a no-op running no hook, and optionally moves
/// forward, an app of upstream shape through the webhook; no denial. Returns the first sync's
/// order of hooks and waves.
fn upstream_shape_through_the_webhook(
    name: &str,
    files: &[(&str, String)],
    hooks: usize,
    forward: Option<(&str, String)>,
) -> Vec<String> {
    let cluster = Cluster::new(&format!("webhook-{name}"));
    let ns = cluster.namespace.clone();
    let world = World::new(&cluster, "1h");
    let repo = &world.repo;
    repo.remove("app/deployment.yaml");
    repo.remove("app/settings.yaml");
    repo.remove("app/extra.yaml");
    for (file, text) in files {
        repo.write(&format!("app/{file}"), text);
    }
    repo.commit(&format!("{name}, upstream's shape"));
    let render = Run::from(
        Command::new(gitops_e2e::harness::binary())
            .args(["render", "web", "--repo", &world.url, "-o", "json"])
            .env("GITOPS_CACHE_DIR", cluster.dir.path().join("cache"))
            .output()
            .expect("kubectl-gitops runs"),
    );
    assert_eq!(render.code, 0, "{name}: {render}");
    let rendered: Value = serde_json::from_str(&render.stdout).expect("render -o json");
    let kinds = rendered["items"].as_array().map_or(0, Vec::len);
    assert_eq!(
        kinds,
        files.len()
            + files
                .iter()
                .filter(|(_, t)| t.contains("kind: Service"))
                .count(),
        "{name}: every object renders, hooks too"
    );
    let run = sync_playing_the_node(&world, "web", &[]);
    assert_eq!(run.code, 0, "{name}: {run}\n{}", world.webhook.log_text());
    let order = order_of(&run);
    assert_eq!(
        order.iter().filter(|l| l.ends_with(": created")).count(),
        hooks,
        "{name}: every hook ran once: {run}"
    );
    let again = world.sync(&[]);
    assert_eq!(again.code, 0, "{name}: {again}");
    assert!(
        again.stdout.contains(" 0 created, 0 configured,"),
        "{name}: {again}"
    );
    assert!(
        !again.stderr.contains(" hook "),
        "{name}: no hook on a no-op: {again}"
    );
    if let Some((file, text)) = forward {
        repo.write(&format!("app/{file}"), &text);
        repo.commit("forward");
        let run = sync_playing_the_node(&world, "web", &[]);
        assert_eq!(
            run.code,
            0,
            "{name} forward: {run}\n{}",
            world.webhook.log_text()
        );
        assert!(run.stdout.contains(" 1 configured,"), "{name}: {run}");
    }
    let status = cluster.run(&["status", "web", "--repo", &world.url]);
    assert!(status.stdout.contains("HOOK:"), "{name}: {status}");
    world.webhook.assert_no_denials();
    eprintln!("{name} in {ns}: {order:#?}");
    order
}

/// Issue 11: argocd-example-apps' `sync-waves` shape (written here, not copied): a PreSync schema
/// upgrade Job from generateName, the backend in wave 0, a maintenance page up (Sync hook, wave
/// 1), the frontend in wave 2, the page down (Sync hook, wave 3).
#[test]
fn sync_waves_shape_passes_through_the_webhook() {
    let files = [
        (
            "upgrade-sql-schema.yaml",
            job_yaml(
                "generateName",
                "upgrade-sql-schema-",
                &[("argocd.argoproj.io/hook", "PreSync")],
            ),
        ),
        (
            "backend.yaml",
            web_tier_yaml("backend", "registry.k8s.io/pause:3.10", None),
        ),
        (
            "maint-page-up.yaml",
            job_yaml(
                "generateName",
                "maint-page-up-",
                &[
                    ("argocd.argoproj.io/hook", "Sync"),
                    (
                        "argocd.argoproj.io/hook-delete-policy",
                        "BeforeHookCreation",
                    ),
                    ("argocd.argoproj.io/sync-wave", "1"),
                ],
            ),
        ),
        (
            "frontend.yaml",
            web_tier_yaml("frontend", "registry.k8s.io/pause:3.10", Some("2")),
        ),
        (
            "maint-page-down.yaml",
            job_yaml(
                "generateName",
                "maint-page-down-",
                &[
                    ("argocd.argoproj.io/hook", "Sync"),
                    (
                        "argocd.argoproj.io/hook-delete-policy",
                        "BeforeHookCreation",
                    ),
                    ("argocd.argoproj.io/sync-wave", "3"),
                ],
            ),
        ),
    ];
    let order = upstream_shape_through_the_webhook("sync-waves", &files, 3, None);
    let at = |part: &str| {
        order
            .iter()
            .position(|l| l.contains(part))
            .unwrap_or_else(|| panic!("{part} not in {order:#?}"))
    };
    assert!(at("PreSync hook Job/") < at("wave 0: waiting"));
    assert!(at("wave 0: waiting") < at("maint-page-up-"));
    assert!(at("maint-page-up-") < at("wave 2: waiting"));
    assert!(at("wave 2: waiting") < at("maint-page-down-"));
}

/// Issue 11: the `pre-post-sync` shape: a PreSync Job `before-` and a PostSync Job `after-`, both
/// from generateName and deleted once they succeed, around the guestbook Deployment and Service.
#[test]
fn pre_post_sync_shape_passes_through_the_webhook() {
    let files = [
        (
            "pre-sync-job.yaml",
            job_yaml(
                "generateName",
                "before-",
                &[
                    ("argocd.argoproj.io/hook", "PreSync"),
                    ("argocd.argoproj.io/hook-delete-policy", "HookSucceeded"),
                ],
            ),
        ),
        (
            "guestbook-ui.yaml",
            web_tier_yaml("guestbook-ui", "registry.k8s.io/pause:3.10", None),
        ),
        (
            "post-sync-job.yaml",
            job_yaml(
                "generateName",
                "after-",
                &[
                    ("argocd.argoproj.io/hook", "PostSync"),
                    ("argocd.argoproj.io/hook-delete-policy", "HookSucceeded"),
                ],
            ),
        ),
    ];
    let order = upstream_shape_through_the_webhook("pre-post-sync", &files, 2, None);
    assert!(order[0].starts_with("PreSync hook Job/"), "{order:#?}");
    assert!(
        order
            .last()
            .is_some_and(|l| l.starts_with("PostSync hook Job/")),
        "{order:#?}"
    );
}

/// Issue 11: the `helm-hooks` shape: Helm's annotations on plain manifests — a pre-install and
/// pre-upgrade Job with a fixed name, weight -1 and before-hook-creation, and a post-install Job
/// from generateName deleted on success. Moving forward runs the hooks again: the fixed-name
/// Job's earlier run is deleted through the webhook before it is created again.
#[test]
fn helm_hooks_shape_passes_through_the_webhook() {
    let files = [
        (
            "upgrade-sql-schema.yaml",
            job_yaml(
                "name",
                "upgrade-sql-schema",
                &[
                    ("helm.sh/hook", "pre-install,pre-upgrade"),
                    ("helm.sh/hook-weight", "-1"),
                    ("helm.sh/hook-delete-policy", "before-hook-creation"),
                ],
            ),
        ),
        (
            "guestbook.yaml",
            web_tier_yaml("guestbook", "registry.k8s.io/pause:3.10", None),
        ),
        (
            "smoke-test.yaml",
            job_yaml(
                "generateName",
                "smoke-test-",
                &[
                    ("helm.sh/hook", "post-install"),
                    ("helm.sh/hook-delete-policy", "hook-succeeded"),
                ],
            ),
        ),
    ];
    let forward = (
        "guestbook.yaml",
        web_tier_yaml("guestbook", "registry.k8s.io/pause:3.9", None),
    );
    let order = upstream_shape_through_the_webhook("helm-hooks", &files, 2, Some(forward));
    assert!(
        order[0].contains("PreSync hook Job/") && order[0].contains("/upgrade-sql-schema"),
        "{order:#?}"
    );
    assert!(
        order
            .last()
            .is_some_and(|l| l.starts_with("PostSync hook Job/")),
        "{order:#?}"
    );
}
