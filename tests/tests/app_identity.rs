//! End to end, issue 8 items 3 and 4: folder apps that share their last folder name keep apart
//! (each its own inventory, a prune takes only its own objects), and `status`/`diff` read two
//! hand-made states right: a duplicated `env` key, and an object created with `kubectl create -f`
//! from Git's YAML whose server defaults are nobody's hand-made change.
//!
//! Against a real cluster when `GITOPS_E2E_KUBECONFIG` is set, the test API server otherwise. The
//! test API server neither defaults fields nor takes JSON patches, so there the hand-made writes are
//! sent the way it can take them (said where it happens); what they must show is the same.

use std::process::Command;

use gitops_e2e::harness::{Cluster, Repo};
use serde_json::{json, Value};

fn configmap_yaml(name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: \"{value}\"\n"
    )
}

fn label<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object["metadata"]["labels"][key].as_str()
}

/// Runs `kubectl-gitops <cmd> --repo <repo> --path <path> -n <ns> [extra]`.
fn gitops(
    cluster: &Cluster,
    repo: &Repo,
    cmd: &str,
    path: &str,
    extra: &[&str],
) -> gitops_e2e::harness::Run {
    let spec = repo.spec();
    let mut args = vec![
        cmd,
        "--repo",
        spec.as_str(),
        "--path",
        path,
        "-n",
        cluster.namespace.as_str(),
    ];
    args.extend_from_slice(extra);
    cluster.run(&args)
}

/// kubectl as the cluster's admin, when this runs against a real cluster and kubectl is there.
fn kubectl(cluster: &Cluster) -> Option<Command> {
    if !cluster.is_real() {
        return None;
    }
    let found = Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("kubectl is not on PATH: writing through the API instead");
        return None;
    }
    let mut command = Command::new("kubectl");
    command.arg("--kubeconfig").arg(&cluster.kubeconfig);
    Some(command)
}

fn status_json(cluster: &Cluster, repo: &Repo, path: &str) -> (i32, Value) {
    let status = gitops(cluster, repo, "status", path, &["-o", "json"]);
    let report: Value = serde_json::from_str(&status.stdout)
        .unwrap_or_else(|e| panic!("status -o json is JSON ({e}): {status}"));
    (status.code, report)
}

fn row<'a>(report: &'a Value, kind: &str, name: &str) -> &'a Value {
    report["objects"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["kind"] == kind && r["name"] == name))
        .unwrap_or_else(|| panic!("no {kind}/{name} in {report:#}"))
}

fn fields(row: &Value) -> Vec<String> {
    row["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str().map(str::to_owned))
        .collect()
}

#[test]
fn folder_apps_with_one_last_name_prune_only_their_own_objects() {
    let cluster = Cluster::new("identity");
    cluster.create_namespace();
    let repo = Repo::init(&cluster.dir.path().join("repo"));
    for side in ["x", "y"] {
        repo.write(
            &format!("a/{side}/web/keep.yaml"),
            &configmap_yaml(&format!("{side}-keep"), side),
        );
        repo.write(
            &format!("a/{side}/web/drop.yaml"),
            &configmap_yaml(&format!("{side}-drop"), side),
        );
    }
    repo.commit("two folder apps named web");
    for side in ["x", "y"] {
        let sync = gitops(&cluster, &repo, "sync", &format!("a/{side}/web"), &[]);
        assert_eq!(sync.code, 0, "{sync}");
        assert!(sync.stdout.contains("2 created"), "{sync}");
    }

    // Each app its own name, label, inventory and ApplySet.
    let x_parent = cluster
        .configmap("gitops-a-x-web")
        .expect("inventory of a/x/web");
    let y_parent = cluster
        .configmap("gitops-a-y-web")
        .expect("inventory of a/y/web");
    assert!(
        cluster.configmap("gitops-web").is_none(),
        "no inventory named after the last folder"
    );
    let id = |parent: &Value| {
        label(parent, "applyset.kubernetes.io/id")
            .expect("id")
            .to_owned()
    };
    assert_ne!(id(&x_parent), id(&y_parent));
    assert_eq!(
        x_parent["metadata"]["annotations"]["kubectl-gitops.io/path"],
        "a/x/web"
    );
    assert_eq!(
        y_parent["metadata"]["annotations"]["kubectl-gitops.io/path"],
        "a/y/web"
    );
    let y_keep = cluster.configmap("y-keep").expect("y-keep");
    assert_eq!(label(&y_keep, "kubectl-gitops.io/app"), Some("a-y-web"));
    assert_eq!(
        label(&y_keep, "applyset.kubernetes.io/part-of"),
        Some(id(&y_parent).as_str())
    );
    assert_eq!(
        label(
            &cluster.configmap("x-keep").expect("x-keep"),
            "kubectl-gitops.io/app"
        ),
        Some("a-x-web")
    );

    // a/x/web drops one object and prunes: only its own goes.
    repo.remove("a/x/web/drop.yaml");
    repo.commit("x drops x-drop");
    let prune = gitops(&cluster, &repo, "sync", "a/x/web", &["--prune"]);
    assert_eq!(prune.code, 0, "{prune}");
    let ns = cluster.namespace.clone();
    assert!(
        prune
            .stdout
            .contains(&format!("pruned ConfigMap/{ns}/x-drop")),
        "{prune}"
    );
    assert!(prune.stdout.contains("1 pruned"), "{prune}");
    assert!(cluster.configmap("x-drop").is_none(), "x-drop was pruned");
    for survivor in ["x-keep", "y-keep", "y-drop"] {
        assert!(
            cluster.configmap(survivor).is_some(),
            "{survivor} survives a/x/web's prune"
        );
    }
    let y_status = status_json(&cluster, &repo, "a/y/web").1;
    assert_eq!(y_status["app"], "a-y-web");
    assert_eq!(row(&y_status, "ConfigMap", "y-drop")["sync"], "Synced");

    // And the other way round.
    repo.remove("a/y/web/drop.yaml");
    repo.commit("y drops y-drop");
    let prune = gitops(&cluster, &repo, "sync", "a/y/web", &["--prune"]);
    assert_eq!(prune.code, 0, "{prune}");
    assert!(
        prune
            .stdout
            .contains(&format!("pruned ConfigMap/{ns}/y-drop")),
        "{prune}"
    );
    assert!(cluster.configmap("y-drop").is_none());
    assert!(cluster.configmap("x-keep").is_some() && cluster.configmap("y-keep").is_some());
    let members = |name: &str| {
        cluster.configmap(name).expect("inventory")["data"]["members"]
            .as_str()
            .expect("members")
            .to_owned()
    };
    assert_eq!(
        members("gitops-a-x-web"),
        format!(r#"[["","ConfigMap","{ns}","x-keep"]]"#)
    );
    assert_eq!(
        members("gitops-a-y-web"),
        format!(r#"[["","ConfigMap","{ns}","y-keep"]]"#)
    );
}

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: 1
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
        image: nginx:1.27
        ports:
        - containerPort: 80
        env:
        - name: DB_HOST
          value: db
";

const SERVICE: &str = "apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
  - port: 80
";

#[test]
fn a_duplicated_env_key_is_out_of_sync_and_named() {
    let cluster = Cluster::new("dupenv");
    cluster.create_namespace();
    let repo = Repo::init(&cluster.dir.path().join("repo"));
    repo.write("app/deployment.yaml", DEPLOYMENT);
    repo.commit("web");
    let sync = gitops(&cluster, &repo, "sync", "app", &[]);
    assert_eq!(sync.code, 0, "{sync}");
    let (_, before) = status_json(&cluster, &repo, "app");
    assert_eq!(
        row(&before, "Deployment", "web")["sync"],
        "Synced",
        "{before:#}"
    );

    // A second DB_HOST appended by hand.
    let ns = cluster.namespace.clone();
    let url = format!("/apis/apps/v1/namespaces/{ns}/deployments/web");
    let extra = json!({"name": "DB_HOST", "value": "evil"});
    match kubectl(&cluster) {
        Some(mut kubectl) => {
            let patch = json!([{"op": "add", "path": "/spec/template/spec/containers/0/env/-", "value": extra}]);
            let out = kubectl
                .args([
                    "patch",
                    "deployment",
                    "web",
                    "-n",
                    &ns,
                    "--type=json",
                    "-p",
                    &patch.to_string(),
                ])
                .output()
                .expect("kubectl runs");
            assert!(
                out.status.success(),
                "kubectl patch: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        None => {
            // The test API server takes no JSON patch: an update with the same result.
            let mut live = cluster.get(&url).expect("deployment");
            live["spec"]["template"]["spec"]["containers"][0]["env"]
                .as_array_mut()
                .expect("env")
                .push(extra);
            let (code, body) = cluster.request(
                "PUT",
                &format!("{url}?fieldManager=kubectl-patch"),
                Some("application/json"),
                &live,
            );
            assert_eq!(code, 200, "{body}");
        }
    }
    let live = cluster.get(&url).expect("deployment");
    let env = &live["spec"]["template"]["spec"]["containers"][0]["env"];
    assert_eq!(
        env.as_array().map(Vec::len),
        Some(2),
        "the cluster holds both: {env}"
    );

    let (code, report) = status_json(&cluster, &repo, "app");
    assert_eq!(code, 1, "{report:#}");
    let web = row(&report, "Deployment", "web");
    assert_eq!(web["sync"], "OutOfSync", "{web:#}");
    assert_eq!(
        fields(web),
        ["spec.template.spec.containers[name=web].env[name=DB_HOST] (2 entries with this key)"]
    );
    assert_eq!(report["ok"], false);

    let diff = gitops(&cluster, &repo, "diff", "app", &[]);
    assert_eq!(diff.code, 1, "{diff}");
    assert!(
        diff.stdout.contains(
            "spec.template.spec.containers[name=web].env[name=DB_HOST] is held by 2 entries in the cluster"
        ),
        "{diff}"
    );
    assert!(
        diff.stdout
            .lines()
            .any(|l| l.starts_with('-') && l.contains("value: evil")),
        "the cluster's second entry is shown: {diff}"
    );
}

/// What kube-apiserver v1.36.2 stores for `DEPLOYMENT` and `SERVICE` (captured in
/// `shared/testdata`): the test API server does no defaulting, so there the create sends it.
fn as_the_server_stores(kind: &str, ns: &str) -> Value {
    let file = match kind {
        "Deployment" => "kubectl-create-deployment-web.json",
        _ => "kubectl-create-service-web.json",
    };
    let path = format!("{}/../shared/testdata/{file}", env!("CARGO_MANIFEST_DIR"));
    let stored: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("testdata")).expect("json");
    let mut spec = stored["spec"].clone();
    if let Some(spec) = spec.as_object_mut() {
        for allocated in ["clusterIP", "clusterIPs"] {
            spec.remove(allocated);
        }
    }
    json!({"apiVersion": stored["apiVersion"], "kind": kind,
        "metadata": {"name": "web", "namespace": ns, "labels": stored["metadata"]["labels"]},
        "spec": spec})
}

#[test]
fn kubectl_create_of_git_yaml_shows_no_hand_made_defaults() {
    let cluster = Cluster::new("created");
    cluster.create_namespace();
    let ns = cluster.namespace.clone();
    let repo = Repo::init(&cluster.dir.path().join("repo"));
    repo.write("app/deployment.yaml", DEPLOYMENT);
    repo.write("app/service.yaml", SERVICE);
    repo.commit("web");

    match kubectl(&cluster) {
        Some(mut kubectl) => {
            let out = kubectl
                .args(["create", "-n", &ns, "-f"])
                .arg(repo.path.join("app"))
                .output()
                .expect("kubectl runs");
            assert!(
                out.status.success(),
                "kubectl create: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        None => {
            for (kind, collection) in [
                (
                    "Deployment",
                    format!("/apis/apps/v1/namespaces/{ns}/deployments"),
                ),
                ("Service", format!("/api/v1/namespaces/{ns}/services")),
            ] {
                let (code, body) = cluster.request(
                    "POST",
                    &format!("{collection}?fieldManager=kubectl-create"),
                    Some("application/json"),
                    &as_the_server_stores(kind, &ns),
                );
                assert_eq!(code, 200, "{body}");
            }
        }
    }
    let deployment = cluster
        .get(&format!("/apis/apps/v1/namespaces/{ns}/deployments/web"))
        .expect("created");
    assert_eq!(
        deployment["spec"]["progressDeadlineSeconds"], 600,
        "the server's default"
    );
    let owned = serde_json::to_string(&deployment["metadata"]["managedFields"]).expect("json");
    assert!(
        owned.contains("kubectl-create") && owned.contains("f:dnsPolicy"),
        "{owned}"
    );

    // Before a sync: only our labels and annotations are missing; no field is "by kubectl-create".
    let (_, report) = status_json(&cluster, &repo, "app");
    for kind in ["Deployment", "Service"] {
        let fields = fields(row(&report, kind, "web"));
        assert!(
            !fields.is_empty(),
            "{kind} lacks the provenance labels: {report:#}"
        );
        assert!(
            fields
                .iter()
                .all(|f| f.starts_with("metadata.") && !f.contains("(by ")),
            "{kind}: {fields:?}"
        );
    }
    let diff = gitops(&cluster, &repo, "diff", "app", &[]);
    assert!(!diff.stdout.contains("kubectl-create"), "{diff}");

    // Once synced, nothing differs: the defaults kubectl-create still owns are no drift.
    // (--force-conflicts: the test API server, without the schema's list keys, calls applying the
    // same port entry a conflict; the fields taken over hold Git's values either way.)
    let sync = gitops(&cluster, &repo, "sync", "app", &["--force-conflicts"]);
    assert_eq!(sync.code, 0, "{sync}");
    let (_, report) = status_json(&cluster, &repo, "app");
    for kind in ["Deployment", "Service"] {
        let web = row(&report, kind, "web");
        assert_eq!(web["sync"], "Synced", "{web:#}");
        assert_eq!(fields(web), Vec::<String>::new());
    }
    let diff = gitops(&cluster, &repo, "diff", "app", &[]);
    assert_eq!(diff.code, 0, "{diff}");
    assert_eq!(diff.stdout, "", "{diff}");
}
