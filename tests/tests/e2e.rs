//! End to end: the built `kubectl-gitops` against a Kubernetes API — a real cluster when
//! `GITOPS_E2E_KUBECONFIG` is set (each test in its own namespace, deleted afterwards), the test
//! API server otherwise — with Git repositories made by the `git` program.

use base64::Engine as _;
use gitops_e2e::harness::{
    api_server_line, serve_https, Ca, Cluster, DeleteOnDrop, GitDaemon, Repo,
};
use serde_json::{json, Value};

fn namespace_yaml(ns: &str) -> String {
    format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n")
}

fn configmap_yaml(name: &str, data: &[(&str, &str)]) -> String {
    let mut text = format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n");
    for (k, v) in data {
        text.push_str(&format!("  {k}: \"{v}\"\n"));
    }
    text
}

const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector:\n    app: web\n  ports:\n  - name: http\n    port: 80\n    targetPort: 8080\n";
const SERVICE_ACCOUNT: &str = "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: app\n";

fn annotation<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object["metadata"]["annotations"][key].as_str()
}

fn label<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object["metadata"]["labels"][key].as_str()
}

/// The standard app of these tests: a Namespace, two ConfigMaps, a Service, a ServiceAccount.
fn standard_app(repo: &Repo, ns: &str) -> String {
    repo.write("app/namespace.yaml", &namespace_yaml(ns));
    repo.write(
        "app/settings.yaml",
        &configmap_yaml("settings", &[("LOG_LEVEL", "info"), ("REGION", "eu")]),
    );
    repo.write("app/extra.yaml", &configmap_yaml("extra", &[("A", "1")]));
    repo.write("app/service.yaml", SERVICE);
    repo.write("app/serviceaccount.yaml", SERVICE_ACCOUNT);
    repo.commit("app v1")
}

#[test]
fn sync_status_diff_change_and_prune() {
    let cluster = Cluster::new("flow");
    let ns = cluster.namespace.clone();
    let repo = Repo::init(&cluster.dir.path().join("repo"));
    let v1 = standard_app(&repo, &ns);
    let spec = repo.spec();
    let source = ["--repo", spec.as_str(), "--path", "app", "-n", ns.as_str()];
    let with = |cmd: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = cmd.iter().map(|s| (*s).to_owned()).collect();
        args.extend(source.iter().map(|s| (*s).to_owned()));
        args
    };
    let run = |cmd: &[&str]| {
        let args = with(cmd);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        cluster.run(&refs)
    };
    // Syncs whose requests are counted go through a recording proxy.
    let recorder = cluster.recorder();
    let recorded = |cmd: &[&str]| {
        recorder.clear();
        let args = with(cmd);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        cluster.run_with(&recorder.kubeconfig, &refs)
    };

    // Sync an app.
    let sync = run(&["sync"]);
    assert_eq!(sync.code, 0, "{sync}");
    assert!(
        sync.stdout
            .contains(&format!("created ConfigMap/{ns}/settings")),
        "{sync}"
    );
    assert!(
        sync.stdout
            .contains("5 created, 0 configured, 0 unchanged, 0 pruned, 0 failed"),
        "{sync}"
    );

    // Provenance with the right commit.
    let settings = cluster.configmap("settings").expect("settings exists");
    assert_eq!(
        annotation(&settings, "kubectl-gitops.io/revision"),
        Some(v1.as_str())
    );
    assert_eq!(annotation(&settings, "kubectl-gitops.io/path"), Some("app"));
    assert!(
        annotation(&settings, "kubectl-gitops.io/digest").is_some_and(|d| d.starts_with("sha256:"))
    );
    assert_eq!(
        label(&settings, "app.kubernetes.io/managed-by"),
        Some("kubectl-gitops")
    );
    let managers: Vec<&str> = settings["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert!(managers.contains(&"kubectl-gitops"), "{managers:?}");
    // The ApplySet parent records the inventory.
    let parent = cluster
        .configmap("gitops-app")
        .expect("the inventory parent");
    assert_eq!(
        annotation(&parent, "kubectl-gitops.io/revision"),
        Some(v1.as_str())
    );
    assert!(annotation(&parent, "applyset.kubernetes.io/tooling")
        .is_some_and(|t| t.starts_with("kubectl-gitops/v")));
    assert_eq!(
        annotation(&parent, "applyset.kubernetes.io/contains-group-kinds"),
        Some("ConfigMap,Namespace,Service,ServiceAccount")
    );
    assert_eq!(
        label(&settings, "applyset.kubernetes.io/part-of"),
        label(&parent, "applyset.kubernetes.io/id")
    );

    // Status: Synced and Healthy (no controller-driven health here).
    let status = run(&["status", "-o", "json"]);
    assert_eq!(status.code, 0, "{status}");
    let report: Value = serde_json::from_str(&status.stdout).expect("status json");
    assert_eq!(report["clusterRevision"], json!(v1));
    assert_eq!(report["behind"], json!(0));
    let rows = report["objects"].as_array().expect("objects");
    assert_eq!(rows.len(), 5, "{report:#}");
    for row in rows {
        assert_eq!(row["sync"], "Synced", "{row}");
        assert_eq!(row["health"], "Healthy", "{row}");
        assert_eq!(row["revision"], json!(v1), "{row}");
    }
    let table = run(&["status"]);
    assert_eq!(table.code, 0, "{table}");
    assert!(
        table.stdout.contains("KIND") && table.stdout.contains("Synced"),
        "{table}"
    );

    // A resync changes nothing and sends no PATCH.
    let again = recorded(&["sync"]);
    assert_eq!(again.code, 0, "{again}");
    assert!(
        again
            .stdout
            .contains("0 created, 0 configured, 5 unchanged"),
        "{again}"
    );
    assert_eq!(recorder.count("PATCH"), 0, "{:?}", recorder.all());

    // Change one value in Git: diff shows exactly that field, sync applies only that object.
    repo.write(
        "app/settings.yaml",
        &configmap_yaml("settings", &[("LOG_LEVEL", "debug"), ("REGION", "eu")]),
    );
    let v2 = repo.commit("debug logging");
    let diff = run(&["diff"]);
    assert_eq!(diff.code, 1, "{diff}");
    assert!(
        diff.stdout
            .contains("-  LOG_LEVEL: info\n+  LOG_LEVEL: debug\n"),
        "{diff}"
    );
    assert_eq!(diff.stdout.matches("--- live/").count(), 1, "{diff}");
    assert_eq!(
        diff.stdout
            .lines()
            .filter(|l| l.starts_with('-') && !l.starts_with("---"))
            .count(),
        1,
        "{diff}"
    );
    assert_eq!(
        diff.stdout
            .lines()
            .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
            .count(),
        1,
        "{diff}"
    );
    assert!(diff.stdout.contains("data.LOG_LEVEL"), "{diff}");
    let status = run(&["status", "-o", "json"]);
    assert_eq!(status.code, 1, "{status}");
    let report: Value = serde_json::from_str(&status.stdout).expect("status json");
    assert_eq!(report["behind"], json!(1), "{report:#}");

    let sync = recorded(&["sync"]);
    assert_eq!(sync.code, 0, "{sync}");
    assert!(
        sync.stdout
            .contains(&format!("configured ConfigMap/{ns}/settings")),
        "{sync}"
    );
    assert!(
        sync.stdout
            .contains("0 created, 1 configured, 4 unchanged, 0 pruned, 0 failed"),
        "{sync}"
    );
    let patches: Vec<String> = recorder
        .all()
        .into_iter()
        .filter(|(m, _)| m == "PATCH")
        .map(|(_, p)| p)
        .collect();
    assert_eq!(
        patches.len(),
        3,
        "the dry run before the first write, settings and the inventory parent: {patches:?}"
    );
    assert!(
        patches[0].contains("/configmaps/settings?") && patches[0].contains("dryRun=All"),
        "the first PATCH is the webhook check, a server-side dry run: {patches:?}"
    );
    assert!(
        patches.iter().any(|p| p.contains("/configmaps/settings?")),
        "{patches:?}"
    );
    assert!(
        patches
            .iter()
            .any(|p| p.contains("/configmaps/gitops-app?")),
        "{patches:?}"
    );
    let settings = cluster.configmap("settings").expect("settings");
    assert_eq!(settings["data"]["LOG_LEVEL"], "debug");
    assert_eq!(
        annotation(&settings, "kubectl-gitops.io/revision"),
        Some(v2.as_str())
    );
    let extra = cluster.configmap("extra").expect("extra");
    assert_eq!(
        annotation(&extra, "kubectl-gitops.io/revision"),
        Some(v1.as_str()),
        "untouched"
    );
    let diff = run(&["diff"]);
    assert_eq!(diff.code, 0, "{diff}");

    // An object made by hand with the app's labels, never in the inventory.
    let applyset = label(&settings, "applyset.kubernetes.io/part-of")
        .expect("part-of")
        .to_owned();
    let handmade = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "handmade", "namespace": ns,
        "labels": {"app.kubernetes.io/managed-by": "kubectl-gitops", "kubectl-gitops.io/app": "app",
                   "applyset.kubernetes.io/part-of": applyset}}, "data": {"x": "1"}});
    let (code, body) = cluster.request(
        "POST",
        &format!("/api/v1/namespaces/{ns}/configmaps?fieldManager=kubectl-create"),
        Some("application/json"),
        &handmade,
    );
    assert_eq!(code, 200, "{body}");

    // Remove an object from Git: sync --prune deletes it and nothing else.
    repo.remove("app/extra.yaml");
    repo.commit("drop extra");
    let sync = run(&["sync", "--prune"]);
    assert_eq!(sync.code, 0, "{sync}");
    assert!(
        sync.stdout
            .contains(&format!("pruned ConfigMap/{ns}/extra")),
        "{sync}"
    );
    assert!(
        sync.stdout
            .contains("0 created, 0 configured, 4 unchanged, 1 pruned, 0 failed"),
        "{sync}"
    );
    assert!(cluster.configmap("extra").is_none(), "extra pruned");
    assert!(
        cluster.configmap("handmade").is_some(),
        "handmade never pruned"
    );
    assert!(cluster.configmap("settings").is_some());
    assert!(cluster
        .get(&format!("/api/v1/namespaces/{ns}/services/web"))
        .is_some());
    assert!(cluster
        .get(&format!("/api/v1/namespaces/{ns}/serviceaccounts/app"))
        .is_some());
    let parent = cluster.configmap("gitops-app").expect("parent");
    assert_eq!(
        annotation(&parent, "applyset.kubernetes.io/contains-group-kinds"),
        Some("ConfigMap,Namespace,Service,ServiceAccount")
    );
    assert!(
        !parent["data"]["members"]
            .as_str()
            .unwrap_or_default()
            .contains("extra"),
        "{parent}"
    );

    // A second prune still leaves the handmade object alone; status shows it as Extraneous.
    let sync = run(&["sync", "--prune"]);
    assert_eq!(sync.code, 0, "{sync}");
    assert!(
        cluster.configmap("handmade").is_some(),
        "handmade never pruned"
    );
    let status = run(&["status", "-o", "json"]);
    assert_eq!(status.code, 1, "{status}");
    let report: Value = serde_json::from_str(&status.stdout).expect("status json");
    let extraneous: Vec<&Value> = report["objects"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| o["sync"] == "Extraneous")
        .collect();
    assert_eq!(extraneous.len(), 1, "{report:#}");
    assert_eq!(extraneous[0]["name"], "handmade");
    let diff = run(&["diff"]);
    assert_eq!(diff.code, 1, "{diff}");
    assert!(
        diff.stdout
            .contains(&format!("Extraneous: ConfigMap/{ns}/handmade")),
        "{diff}"
    );
}

#[test]
fn failing_apply_is_reported_and_nothing_is_pruned() {
    let cluster = Cluster::new("fail");
    let ns = cluster.namespace.clone();
    let repo = Repo::init(&cluster.dir.path().join("repo"));
    repo.write("app/namespace.yaml", &namespace_yaml(&ns));
    repo.write("app/a.yaml", &configmap_yaml("a", &[("v", "1")]));
    repo.write("app/b.yaml", &configmap_yaml("b", &[("v", "1")]));
    repo.commit("v1");
    let spec = repo.spec();
    let sync = cluster.run(&["sync", "--repo", &spec, "--path", "app", "-n", &ns]);
    assert_eq!(sync.code, 0, "{sync}");

    // Drop b, change a, add an invalid Deployment (no selector).
    repo.remove("app/b.yaml");
    repo.write("app/a.yaml", &configmap_yaml("a", &[("v", "2")]));
    repo.write(
        "app/broken.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: broken\nspec:\n  replicas: 1\n  template:\n    metadata:\n      labels:\n        app: broken\n    spec:\n      containers:\n      - name: app\n        image: registry.invalid/app:1\n",
    );
    repo.commit("v2 with an invalid deployment");
    let sync = cluster.run(&[
        "sync", "--prune", "--repo", &spec, "--path", "app", "-n", &ns,
    ]);
    assert_eq!(sync.code, 1, "{sync}");
    let failed = sync
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("failed Deployment/{ns}/broken")))
        .unwrap_or_else(|| panic!("no failure line: {sync}"));
    assert!(failed.contains("spec.selector: Required value"), "{failed}");
    assert!(failed.contains("is invalid"), "{failed}");
    assert!(
        sync.stdout
            .contains(&format!("configured ConfigMap/{ns}/a")),
        "{sync}"
    );
    assert!(sync.stdout.contains("0 pruned, 1 failed"), "{sync}");
    assert!(sync.stderr.contains("not pruning"), "{sync}");
    assert_eq!(
        cluster.configmap("a").expect("a")["data"]["v"],
        "2",
        "the others are applied"
    );
    assert!(cluster.configmap("b").is_some(), "nothing pruned");
}

#[test]
fn hand_edits_are_drift_and_conflicts_name_the_manager() {
    let cluster = Cluster::new("hand");
    let ns = cluster.namespace.clone();
    let repo = Repo::init(&cluster.dir.path().join("repo"));
    standard_app(&repo, &ns);
    let spec = repo.spec();
    let args = ["--repo", spec.as_str(), "--path", "app", "-n", ns.as_str()];
    let run = |cmd: &str, extra: &[&str]| {
        let mut all = vec![cmd];
        all.extend_from_slice(extra);
        all.extend_from_slice(&args);
        cluster.run(&all)
    };
    assert_eq!(run("sync", &[]).code, 0);

    // A person adds a field Git does not declare: hand-made drift.
    let path = format!("/api/v1/namespaces/{ns}/configmaps/extra?fieldManager=kubectl-patch");
    let (code, body) = cluster.request(
        "PATCH",
        &path,
        Some("application/merge-patch+json"),
        &json!({"data": {"DEBUG": "true"}}),
    );
    assert_eq!(code, 200, "{body}");
    let diff = run("diff", &[]);
    assert_eq!(diff.code, 1, "{diff}");
    assert!(diff.stdout.contains("data.DEBUG"), "{diff}");
    assert!(diff.stdout.contains("kubectl-patch"), "{diff}");
    let status = run("status", &["-o", "json"]);
    assert_eq!(status.code, 1, "{status}");
    let report: Value = serde_json::from_str(&status.stdout).expect("json");
    let extra = report["objects"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|o| o["name"] == "extra")
        .expect("extra row");
    assert_eq!(extra["sync"], "OutOfSync", "{extra}");

    // A tool that is not one of the people's tools sync takes over (kubectl's are: see
    // drift_revert.rs) changes a declared field: sync conflicts and names the field and the
    // manager.
    let path = format!("/api/v1/namespaces/{ns}/configmaps/settings?fieldManager=deploy-bot");
    let (code, body) = cluster.request(
        "PATCH",
        &path,
        Some("application/merge-patch+json"),
        &json!({"data": {"LOG_LEVEL": "trace"}}),
    );
    assert_eq!(code, 200, "{body}");
    let sync = run("sync", &[]);
    assert_eq!(sync.code, 1, "{sync}");
    let failed = sync
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("failed ConfigMap/{ns}/settings")))
        .unwrap_or_else(|| panic!("no conflict: {sync}"));
    assert!(
        failed.contains("deploy-bot") && failed.contains(".data.LOG_LEVEL"),
        "{failed}"
    );
    assert!(failed.contains("--force-conflicts"), "{failed}");
    let sync = run("sync", &["--force-conflicts"]);
    assert_eq!(sync.code, 0, "{sync}");
    assert_eq!(
        cluster.configmap("settings").expect("settings")["data"]["LOG_LEVEL"],
        "info"
    );
}

#[test]
fn remote_repository_over_git_daemon_and_dry_runs() {
    let cluster = Cluster::new("remote");
    let ns = cluster.namespace.clone();
    let base = cluster.dir.path().join("served");
    let repo = Repo::init(&base.join("deploy"));
    let v1 = standard_app(&repo, &ns);
    let daemon = GitDaemon::start(&base);
    let url = format!("git://127.0.0.1:{}/deploy", daemon.port);

    // Dry runs change nothing.
    let dry = cluster.run(&[
        "sync",
        "--dry-run",
        "--repo",
        &url,
        "--path",
        "app",
        "-n",
        &ns,
    ]);
    assert_eq!(dry.code, 0, "{dry}");
    assert!(
        dry.stdout.contains("5 created") && dry.stdout.contains("(dry run)"),
        "{dry}"
    );
    assert!(cluster.configmap("settings").is_none());

    let sync = cluster.run(&[
        "sync",
        "--wait",
        "--timeout",
        "30s",
        "--repo",
        &url,
        "--path",
        "app",
        "-n",
        &ns,
    ]);
    assert_eq!(sync.code, 0, "{sync}");
    assert!(sync.stderr.contains("all 5 objects healthy"), "{sync}");
    let settings = cluster.configmap("settings").expect("settings");
    assert_eq!(
        annotation(&settings, "kubectl-gitops.io/revision"),
        Some(v1.as_str())
    );
    assert_eq!(
        annotation(&settings, "kubectl-gitops.io/repo"),
        Some(url.as_str())
    );

    // A new commit upstream: the cluster is one behind.
    repo.write(
        "app/settings.yaml",
        &configmap_yaml("settings", &[("LOG_LEVEL", "warn"), ("REGION", "eu")]),
    );
    repo.commit("warn");
    let status = cluster.run(&["status", "--repo", &url, "--path", "app", "-n", &ns]);
    assert_eq!(status.code, 1, "{status}");
    assert!(status.stdout.contains("(1 commit behind)"), "{status}");
    assert!(status.stdout.contains("OutOfSync"), "{status}");

    let server_dry = cluster.run(&[
        "sync",
        "--dry-run=server",
        "--repo",
        &url,
        "--path",
        "app",
        "-n",
        &ns,
    ]);
    assert_eq!(server_dry.code, 0, "{server_dry}");
    assert!(server_dry.stdout.contains("1 configured"), "{server_dry}");
    assert_eq!(
        cluster.configmap("settings").expect("settings")["data"]["LOG_LEVEL"],
        "info"
    );
}

/// A validating webhook for the test, over HTTPS on loopback (a real API server calls webhooks
/// only over HTTPS): denies objects labelled `deny: "yes"`, records every review.
struct DenyingWebhook {
    url: String,
    /// The CA of its serving certificate (PEM), for `caBundle`.
    ca_pem: String,
    reviews: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
    _runtime: tokio::runtime::Runtime,
}

impl DenyingWebhook {
    fn start() -> DenyingWebhook {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let reviews = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = reviews.clone();
        let app = axum::Router::new().route(
            "/validate",
            axum::routing::post(move |axum::Json(review): axum::Json<Value>| {
                let seen = seen.clone();
                async move {
                    let request = &review["request"];
                    let object = if request["object"].is_null() { &request["oldObject"] } else { &request["object"] };
                    let deny = object["metadata"]["labels"]["deny"] == "yes";
                    seen.lock().expect("lock").push(review.clone());
                    let mut response = json!({"uid": request["uid"], "allowed": !deny});
                    if deny {
                        response["status"] = json!({"code": 403, "reason": "Forbidden",
                            "message": "objects labelled deny=yes are not allowed"});
                    }
                    axum::Json(json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}))
                }
            }),
        );
        let ca = Ca::new("denying webhook CA");
        let address = serve_https(&runtime, &ca.serving(&["127.0.0.1"]), app);
        DenyingWebhook {
            url: format!("https://{address}/validate"),
            ca_pem: ca.pem,
            reviews,
            _runtime: runtime,
        }
    }
}

#[test]
fn sync_through_a_validating_webhook() {
    let cluster = Cluster::new("webhook");
    let ns = cluster.namespace.clone();
    let webhook = DenyingWebhook::start();
    // Registered for the test's namespace only (a real cluster is shared), and deleted on drop.
    let registration = DeleteOnDrop {
        cluster: &cluster,
        path: format!(
            "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/deny-{ns}"
        ),
    };
    let ca_bundle = base64::engine::general_purpose::STANDARD.encode(&webhook.ca_pem);
    let configuration = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": format!("deny-{ns}")},
        "webhooks": [{"name": "deny.example.io", "admissionReviewVersions": ["v1"], "sideEffects": "None",
            "clientConfig": {"url": webhook.url, "caBundle": ca_bundle},
            "rules": [{"operations": ["CREATE", "UPDATE", "DELETE"], "apiGroups": [""], "apiVersions": ["v1"],
                "resources": ["configmaps"], "scope": "Namespaced"}],
            "namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name",
                "operator": "In", "values": [ns]}]},
            "objectSelector": {"matchExpressions": [{"key": "app.kubernetes.io/managed-by", "operator": "Exists"}]}}]});
    let (code, body) = cluster.request(
        "POST",
        "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
        Some("application/json"),
        &configuration,
    );
    assert_eq!(code, 200, "{body}");

    let repo = Repo::init(&cluster.dir.path().join("repo"));
    // Labelled by name as a real API server labels every namespace (the selector's key).
    repo.write(
        "app/namespace.yaml",
        &format!(
            "{}  labels:\n    kubernetes.io/metadata.name: {ns}\n",
            namespace_yaml(&ns)
        ),
    );
    repo.write("app/ok.yaml", &configmap_yaml("ok", &[("v", "1")]));
    repo.write(
        "app/denied.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: denied\n  labels:\n    deny: \"yes\"\ndata:\n  v: \"1\"\n",
    );
    let commit = repo.commit("one denied object");
    let spec = repo.spec();
    let sync = cluster.run(&["sync", "--repo", &spec, "--path", "app", "-n", &ns]);
    assert_eq!(sync.code, 1, "{sync}");
    let failed = sync
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("failed ConfigMap/{ns}/denied")))
        .unwrap_or_else(|| panic!("no denial: {sync}"));
    assert!(
        failed.contains("admission webhook \"deny.example.io\" denied the request: objects labelled deny=yes are not allowed"),
        "{failed}"
    );
    assert!(failed.contains("403"), "{failed}");
    assert!(cluster.configmap("ok").is_some());
    assert!(cluster.configmap("denied").is_none());

    // What the webhook saw has the shape of the captured reviews.
    let captured: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/fixtures/admission/0005-CREATE-ConfigMap-app-config.json"
        ))
        .expect("fixture"),
    )
    .expect("json");
    let reviews = webhook.reviews.lock().expect("lock").clone();
    let ok = reviews
        .iter()
        .find(|r| r["request"]["name"] == "ok")
        .expect("a review of ok");
    let request = &ok["request"];
    for key in captured["request"].as_object().expect("request").keys() {
        assert!(request.get(key).is_some(), "missing {key} in {request:#}");
    }
    assert_eq!(ok["apiVersion"], captured["apiVersion"]);
    assert_eq!(request["operation"], "CREATE");
    assert_eq!(request["namespace"], json!(ns));
    assert_eq!(request["userInfo"]["username"], json!(cluster.username()));
    assert_eq!(request["options"]["kind"], "CreateOptions");
    assert_eq!(request["options"]["fieldManager"], "kubectl-gitops");
    assert_eq!(request["dryRun"], false);
    assert_eq!(
        request["kind"],
        json!({"group": "", "version": "v1", "kind": "ConfigMap"})
    );
    assert_eq!(
        request["object"]["metadata"]["annotations"]["kubectl-gitops.io/revision"],
        json!(commit)
    );

    // Server-side dry runs reach the webhook with dryRun: true; the inventory parent is not
    // matched (no managed-by label).
    webhook.reviews.lock().expect("lock").clear();
    repo.write("app/ok.yaml", &configmap_yaml("ok", &[("v", "2")]));
    repo.commit("v2");
    let dry = cluster.run(&[
        "sync",
        "--dry-run=server",
        "--repo",
        &spec,
        "--path",
        "app",
        "-n",
        &ns,
    ]);
    assert_eq!(dry.code, 1, "the denied object still fails: {dry}");
    let reviews = webhook.reviews.lock().expect("lock").clone();
    let update = reviews
        .iter()
        .find(|r| r["request"]["name"] == "ok")
        .expect("a review of ok");
    assert_eq!(update["request"]["operation"], "UPDATE");
    assert_eq!(update["request"]["dryRun"], true);
    assert_eq!(update["request"]["oldObject"]["data"]["v"], "1");
    assert!(reviews.iter().all(|r| r["request"]["name"] != "gitops-app"));
    assert_eq!(cluster.configmap("ok").expect("ok")["data"]["v"], "1");
    drop(registration);
}

#[test]
fn wait_stops_early_when_an_object_is_degraded() {
    let cluster = Cluster::new("wait");
    let ns = cluster.namespace.clone();
    let repo = Repo::init(&cluster.dir.path().join("repo"));
    repo.write("app/namespace.yaml", &namespace_yaml(&ns));
    repo.write("app/config.yaml", &configmap_yaml("config", &[("v", "1")]));
    repo.write(
        "app/web.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  progressDeadlineSeconds: 3\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: web\n        image: registry.invalid/web:1\n",
    );
    repo.commit("a deployment");
    let spec = repo.spec();
    let child = cluster
        .command(&[
            "sync",
            "--wait",
            "--timeout",
            "60s",
            "--repo",
            &spec,
            "--path",
            "app",
            "-n",
            &ns,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("sync starts");
    let path = format!("/apis/apps/v1/namespaces/{ns}/deployments/web");
    let started = std::time::Instant::now();
    while cluster.get(&path).is_none() {
        assert!(
            started.elapsed().as_secs() < 30,
            "the Deployment never appeared"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // A real deployment controller gives up after progressDeadlineSeconds, since no Pod ever
    // runs (no scheduler, no kubelet). On the test server the test plays that controller: it
    // lets sync see the Deployment Progressing first, then gives up.
    if !cluster.is_real() {
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let status = json!({"status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "unavailableReplicas": 1,
            "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                "message": "ReplicaSet \"web-5d4f\" has timed out progressing."}]}});
        let (code, body) = cluster.request(
            "PATCH",
            &format!("{path}?fieldManager=kube-controller-manager"),
            Some("application/merge-patch+json"),
            &status,
        );
        assert_eq!(code, 200, "{body}");
    }
    let run = gitops_e2e::harness::Run::from(child.wait_with_output().expect("sync ends"));
    assert_eq!(run.code, 1, "{run}");
    assert!(started.elapsed().as_secs() < 30, "stopped early");
    assert!(
        run.stderr
            .contains(&format!("Deployment/{ns}/web: Progressing")),
        "{run}"
    );
    assert!(
        run.stderr.contains(&format!(
            "Deployment/{ns}/web is Degraded: progress deadline exceeded"
        )),
        "{run}"
    );
    assert!(
        run.stderr
            .contains(&format!("ConfigMap/{ns}/config: Healthy")),
        "{run}"
    );
}

#[test]
fn custom_resources_are_applied_once_their_crd_is_established() {
    let cluster = Cluster::new("crd");
    let ns = cluster.namespace.clone();
    // A group of its own per run, so runs against a real cluster do not collide.
    let group = format!("{ns}.example.io");
    let repo = Repo::init(&cluster.dir.path().join("repo"));
    repo.write("app/namespace.yaml", &namespace_yaml(&ns));
    repo.write(
        "app/crd.yaml",
        &format!(
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: gadgets.{group}\nspec:\n  group: {group}\n  scope: Namespaced\n  names:\n    plural: gadgets\n    singular: gadget\n    kind: Gadget\n    listKind: GadgetList\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema:\n        type: object\n        properties:\n          spec:\n            type: object\n            x-kubernetes-preserve-unknown-fields: true\n"
        ),
    );
    repo.write(
        "app/gadget.yaml",
        &format!(
            "apiVersion: {group}/v1\nkind: Gadget\nmetadata:\n  name: blue\nspec:\n  color: blue\n"
        ),
    );
    repo.commit("a CRD and a custom resource");
    let spec = repo.spec();
    let sync = cluster.run(&["sync", "--repo", &spec, "--path", "app", "-n", &ns]);
    // Cluster-scoped CRDs outlive the namespace: remove it whatever happens next.
    let crd_path =
        format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gadgets.{group}");
    let _cleanup = Defer(|| {
        let _ = cluster.request("DELETE", &crd_path, None, &Value::Null);
    });
    assert_eq!(sync.code, 0, "{sync}");
    assert!(
        sync.stdout
            .contains(&format!("created Gadget.{group}/{ns}/blue")),
        "{sync}"
    );
    let gadget = cluster
        .get(&format!("/apis/{group}/v1/namespaces/{ns}/gadgets/blue"))
        .expect("the custom resource exists");
    assert_eq!(gadget["spec"]["color"], "blue");
    let again = cluster.run(&["sync", "--repo", &spec, "--path", "app", "-n", &ns]);
    assert_eq!(again.code, 0, "{again}");
    assert!(
        again
            .stdout
            .contains("0 created, 0 configured, 3 unchanged"),
        "{again}"
    );
    let status = cluster.run(&[
        "status", "--repo", &spec, "--path", "app", "-n", &ns, "-o", "yaml",
    ]);
    assert_eq!(status.code, 0, "{status}");
}

/// Runs a closure when dropped.
struct Defer<F: FnMut()>(F);

impl<F: FnMut()> Drop for Defer<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

#[test]
fn a_no_op_resync_of_a_thousand_objects_sends_no_patch() {
    let cluster = Cluster::new("thousand");
    let recorder = cluster.recorder();
    let ns = cluster.namespace.clone();
    let repo = Repo::init(&cluster.dir.path().join("repo"));
    repo.write("app/namespace.yaml", &namespace_yaml(&ns));
    let mut text = String::new();
    for i in 0..1000 {
        text.push_str("---\n");
        text.push_str(&configmap_yaml(
            &format!("config-{i:04}"),
            &[("index", &i.to_string())],
        ));
    }
    repo.write("app/configs.yaml", &text);
    repo.commit("1000 configmaps");
    let spec = repo.spec();
    let args = [
        "sync",
        "--repo",
        spec.as_str(),
        "--path",
        "app",
        "-n",
        ns.as_str(),
    ];
    let first = cluster.run(&args);
    assert_eq!(first.code, 0, "{first}");
    assert!(
        first.stdout.contains("1001 created"),
        "{}",
        first.stdout.lines().last().unwrap_or_default()
    );
    let again = cluster.run_with(&recorder.kubeconfig, &args);
    assert_eq!(again.code, 0, "{again}");
    assert!(
        again.stdout.contains("1001 unchanged"),
        "{}",
        again.stdout.lines().last().unwrap_or_default()
    );
    let requests = recorder.all();
    assert!(
        requests.iter().all(|(method, _)| method == "GET"),
        "{requests:?}"
    );
    assert!(
        requests.len() <= 5,
        "discovery, parent and one list per resource: {requests:?}"
    );
}

#[test]
fn identities_come_from_bearer_tokens() {
    let cluster = Cluster::new("auth");
    let ns = cluster.namespace.clone();
    let repo = Repo::init(&cluster.dir.path().join("repo"));
    repo.write("app/namespace.yaml", &namespace_yaml(&ns));
    repo.write(
        "app/settings.yaml",
        &configmap_yaml("settings", &[("v", "1")]),
    );
    repo.commit("v1");
    let spec = repo.spec();
    let args = [
        "sync",
        "--repo",
        spec.as_str(),
        "--path",
        "app",
        "-n",
        ns.as_str(),
    ];

    // An unknown token: the server says Unauthorized, the command fails with exit 2.
    let stranger = cluster.with_token("no-such-token");
    let run = cluster.run_with(&stranger, &args);
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stderr.contains("Unauthorized"), "{run}");

    // The admin creates the namespace; alice (edit) may not change it, but may change the rest.
    assert_eq!(cluster.run(&args).code, 0);
    repo.write(
        "app/namespace.yaml",
        &format!("{}  labels:\n    team: shop\n", namespace_yaml(&ns)),
    );
    repo.write(
        "app/settings.yaml",
        &configmap_yaml("settings", &[("v", "2")]),
    );
    repo.commit("v2");
    let alice = cluster.person("alice-token", "editor", "gitops-e2e-alice");
    let alice_name = cluster.username_of(&alice);
    // On a real cluster RBAC gives alice `edit` in the test namespace, and reading namespaces
    // (the sync lists the app's kinds cluster-wide to find what it owns; with `edit` alone that
    // list is forbidden and the sync stops with exit 2 before writing anything).
    let rbac = "/apis/rbac.authorization.k8s.io/v1";
    let _reader = cluster.is_real().then(|| {
        let subjects = json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": alice_name}]);
        for (path, object) in [
            (format!("{rbac}/namespaces/{ns}/rolebindings"), json!({"kind": "RoleBinding",
                "metadata": {"name": "alice-edit"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
                "subjects": subjects})),
            (format!("{rbac}/clusterroles"), json!({"kind": "ClusterRole",
                "metadata": {"name": format!("{ns}-namespace-reader")},
                "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]}]})),
            (format!("{rbac}/clusterrolebindings"), json!({"kind": "ClusterRoleBinding",
                "metadata": {"name": format!("{ns}-namespace-reader")},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": format!("{ns}-namespace-reader")},
                "subjects": subjects})),
        ] {
            let mut object = object;
            object["apiVersion"] = json!("rbac.authorization.k8s.io/v1");
            let (code, body) = cluster.request("POST", &path, Some("application/json"), &object);
            assert_eq!(code, 200, "{body}");
        }
        [
            DeleteOnDrop { cluster: &cluster, path: format!("{rbac}/clusterrolebindings/{ns}-namespace-reader") },
            DeleteOnDrop { cluster: &cluster, path: format!("{rbac}/clusterroles/{ns}-namespace-reader") },
        ]
    });
    let run = cluster.run_with(&alice, &args);
    assert_eq!(run.code, 1, "{run}");
    let failed = run
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("failed Namespace/{ns}")))
        .unwrap_or_else(|| panic!("no failure: {run}"));
    assert!(
        failed.contains(&format!(
            "User \"{alice_name}\" cannot patch resource \"namespaces\""
        )),
        "{failed}"
    );
    assert!(
        run.stdout
            .contains(&format!("configured ConfigMap/{ns}/settings")),
        "{run}"
    );
    let parent = cluster.configmap("gitops-app").expect("parent");
    assert_eq!(
        annotation(&parent, "kubectl-gitops.io/synced-by"),
        Some(cluster.username().as_str()),
        "not rewritten after a failure"
    );
}

/// Scope comes from Git alone (the webhook renders without asking the cluster): a cluster-scoped
/// custom resource whose CRD lives in another app is refused with the fix, until the app file
/// declares the kind cluster-scoped.
#[test]
fn a_cluster_scoped_kind_from_another_app_must_be_declared_in_git() {
    let cluster = Cluster::new("scope");
    let ns = cluster.namespace.clone();
    let group = format!("{ns}.example.io");
    let repo = Repo::init(&cluster.dir.path().join("repo"));
    repo.write("crds/namespace.yaml", &namespace_yaml(&ns));
    repo.write(
        "crds/crd.yaml",
        &format!(
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: globals.{group}\nspec:\n  group: {group}\n  scope: Cluster\n  names:\n    plural: globals\n    singular: global\n    kind: Global\n    listKind: GlobalList\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema:\n        type: object\n        x-kubernetes-preserve-unknown-fields: true\n"
        ),
    );
    repo.write(
        "users/global.yaml",
        &format!(
            "apiVersion: {group}/v1\nkind: Global\nmetadata:\n  name: shared\nspec:\n  size: 3\n"
        ),
    );
    repo.commit("a cluster-scoped CRD in one app, its custom resource in another");
    let spec = repo.spec();
    let crd_path =
        format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/globals.{group}");
    let _cleanup = Defer(|| {
        let _ = cluster.request("DELETE", &crd_path, None, &Value::Null);
    });
    let crds = cluster.run(&["sync", "--repo", &spec, "--path", "crds", "-n", &ns]);
    assert_eq!(crds.code, 0, "{crds}");

    let refused = cluster.run(&["sync", "--repo", &spec, "--path", "users", "-n", &ns]);
    assert_eq!(refused.code, 2, "{refused}");
    assert!(
        refused.stderr.contains(&format!("Global.{group}/{ns}/shared (users/global.yaml (document 1)): the cluster serves Global cluster-scoped, but the render put it in namespace {ns}")),
        "{refused}"
    );
    assert!(
        refused.stderr.contains(&format!(
            "add clusterScopedKinds: [Global.{group}] to app \"users\" in gitops.yaml"
        )),
        "{refused}"
    );

    repo.write(
        "gitops.yaml",
        &format!("apps:\n  users:\n    path: users\n    namespace: {ns}\n    clusterScopedKinds: [Global.{group}]\n"),
    );
    repo.commit("declare Global cluster-scoped");
    let synced = cluster.run(&["sync", "users", "--repo", &spec]);
    assert_eq!(synced.code, 0, "{synced}");
    assert!(
        synced
            .stdout
            .contains(&format!("created Global.{group}/shared")),
        "{synced}"
    );
    let global = cluster
        .get(&format!("/apis/{group}/v1/globals/shared"))
        .expect("created cluster-scoped");
    assert_eq!(global["spec"]["size"], 3);
    let _ = cluster.request(
        "DELETE",
        &format!("/apis/{group}/v1/globals/shared"),
        None,
        &Value::Null,
    );
}

/// Every suite names the API server it runs against: its version is read from `/version`.
#[test]
fn the_api_server_line_names_a_version() {
    let cluster = Cluster::new("version");
    let line = api_server_line(&cluster);
    let version = line
        .split_whitespace()
        .find(|word| word.starts_with('v') && word[1..].starts_with(|c: char| c.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no version in {line:?}"));
    assert!(version.contains('.'), "{line}");
    let real = line.starts_with("kube-apiserver ");
    assert_eq!(real, cluster.is_real(), "{line}");
}
