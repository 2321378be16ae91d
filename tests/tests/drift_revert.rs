//! End to end, issue 14: `sync` puts the cluster back to Git. `kubectl patch`, `kubectl edit`,
//! `kubectl set image`, `kubectl label`, `kubectl scale` and a client-side `kubectl apply` each
//! drift an object of a synced app; `diff` shows them with what sync will do; one plain `sync`
//! undoes every one, after which `diff` is silent. An HPA's `spec.replicas` (Git declares none)
//! and a manager left out of `takeOverManagers` are left alone.
//!
//! Against a real cluster when `GITOPS_E2E_KUBECONFIG` is set, with the real `kubectl`. The test
//! API server cannot run kubectl's requests as kubectl sends them (strategic merge patches of
//! lists, JSON patches, an editor), so there each hand-made write is sent as the merge patch it
//! amounts to, with kubectl's field manager — the managedFields the sync reads are the same.

use std::path::Path;
use std::process::Command;

use gitops_e2e::harness::{Cluster, Repo, Run};
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

fn deployment_yaml(name: &str, replicas: Option<u32>) -> String {
    let replicas = replicas
        .map(|r| format!("  replicas: {r}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  labels:\n    app: {name}\nspec:\n{replicas}  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n      containers:\n      - name: shop\n        image: nginx:1.27\n"
    )
}

/// The app: a Namespace, three ConfigMaps, a Deployment with replicas and one without (its
/// replicas are an HPA's).
fn shop_app(repo: &Repo, ns: &str) {
    repo.write("shop/namespace.yaml", &namespace_yaml(ns));
    repo.write(
        "shop/config.yaml",
        &configmap_yaml("shop-config", &[("greeting", "hello")]),
    );
    repo.write(
        "shop/settings.yaml",
        &configmap_yaml("shop-settings", &[("LOG_LEVEL", "info")]),
    );
    repo.write(
        "shop/applied.yaml",
        &configmap_yaml("shop-applied", &[("mode", "prod")]),
    );
    repo.write("shop/deployment.yaml", &deployment_yaml("shop", Some(2)));
    repo.write("shop/scaled.yaml", &deployment_yaml("shop-hpa", None));
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
    assert!(found, "kubectl must be on PATH for the real-cluster test");
    let mut command = Command::new("kubectl");
    command
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .arg("-n")
        .arg(&cluster.namespace)
        .env_remove("KUBECONFIG");
    Some(command)
}

fn run_kubectl(mut command: Command, args: &[&str]) {
    let output = command.args(args).output().expect("kubectl runs");
    assert!(
        output.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A merge patch with a field manager, for the test API server (or the HPA's write).
fn merge_patch(cluster: &Cluster, path: &str, manager: &str, patch: &Value) {
    let url = format!("{path}?fieldManager={manager}");
    let (code, body) = cluster.request("PATCH", &url, Some("application/merge-patch+json"), patch);
    assert_eq!(code, 200, "PATCH {url}: {body}");
}

fn gitops(cluster: &Cluster, repo: &Repo, cmd: &str, extra: &[&str]) -> Run {
    let spec = repo.spec();
    let mut args = vec![cmd];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        "--repo",
        spec.as_str(),
        "--path",
        "shop",
        "-n",
        cluster.namespace.as_str(),
    ]);
    cluster.run(&args)
}

fn deployment(cluster: &Cluster, name: &str) -> Value {
    cluster
        .get(&format!(
            "/apis/apps/v1/namespaces/{}/deployments/{name}",
            cluster.namespace
        ))
        .unwrap_or_else(|| panic!("deployment {name}"))
}

fn write_editor_script(dir: &Path) -> String {
    let script = dir.join("editor.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nsed -i 's/LOG_LEVEL: info/LOG_LEVEL: debug/' \"$1\"\n",
    )
    .expect("write the editor script");
    let made = Command::new("chmod")
        .arg("+x")
        .arg(&script)
        .status()
        .is_ok_and(|s| s.success());
    assert!(made, "chmod the editor script");
    script.display().to_string()
}

/// The six hand-made changes, each the way a person makes it.
fn drift_everything(cluster: &Cluster) {
    let ns = cluster.namespace.as_str();
    let cm = |name: &str| format!("/api/v1/namespaces/{ns}/configmaps/{name}");
    let deploy = format!("/apis/apps/v1/namespaces/{ns}/deployments/shop");
    match kubectl(cluster) {
        Some(_) => {
            let k = || kubectl(cluster).expect("kubectl");
            run_kubectl(
                k(),
                &[
                    "patch",
                    "configmap",
                    "shop-config",
                    "--type",
                    "merge",
                    "-p",
                    r#"{"data":{"extra":"by-hand"}}"#,
                ],
            );
            let editor = write_editor_script(cluster.dir.path());
            let mut edit = k();
            edit.env("EDITOR", &editor).env("KUBE_EDITOR", &editor);
            run_kubectl(edit, &["edit", "configmap", "shop-settings"]);
            run_kubectl(k(), &["set", "image", "deployment/shop", "shop=nginx:9.9"]);
            run_kubectl(k(), &["label", "deployment", "shop", "hand=yes"]);
            run_kubectl(k(), &["scale", "deployment/shop", "--replicas=5"]);
            let file = cluster.dir.path().join("applied.yaml");
            let mut yaml = configmap_yaml("shop-applied", &[("mode", "prod"), ("debug", "true")]);
            yaml = yaml.replace("metadata:\n", &format!("metadata:\n  namespace: {ns}\n"));
            std::fs::write(&file, yaml).expect("write");
            let path = file.display().to_string();
            run_kubectl(k(), &["apply", "-f", &path]);
        }
        None => {
            merge_patch(
                cluster,
                &cm("shop-config"),
                "kubectl-patch",
                &json!({"data": {"extra": "by-hand"}}),
            );
            merge_patch(
                cluster,
                &cm("shop-settings"),
                "kubectl-edit",
                &json!({"data": {"LOG_LEVEL": "debug"}}),
            );
            merge_patch(
                cluster,
                &deploy,
                "kubectl-set",
                &json!({"spec": {"template": {"spec": {"containers": [{"name": "shop", "image": "nginx:9.9"}]}}}}),
            );
            merge_patch(
                cluster,
                &deploy,
                "kubectl-label",
                &json!({"metadata": {"labels": {"hand": "yes"}}}),
            );
            // kubectl scale writes the scale subresource as field manager `kubectl`.
            merge_patch(
                cluster,
                &format!("{deploy}/scale"),
                "kubectl",
                &json!({"spec": {"replicas": 5}}),
            );
            merge_patch(
                cluster,
                &cm("shop-applied"),
                "kubectl-client-side-apply",
                &json!({"metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
                    "data": {"debug": "true"}}),
            );
        }
    }
}

/// What the HPA controller writes: `spec.replicas` of a Deployment whose Git declares none.
fn hpa_scales(cluster: &Cluster) {
    let path = format!(
        "/apis/apps/v1/namespaces/{}/deployments/shop-hpa",
        cluster.namespace
    );
    merge_patch(
        cluster,
        &path,
        "horizontal-pod-autoscaler",
        &json!({"spec": {"replicas": 3}}),
    );
}

#[test]
fn one_plain_sync_undoes_every_hand_made_change() {
    let cluster = Cluster::new("revert");
    let ns = cluster.namespace.clone();
    let repo = Repo::init(&cluster.dir.path().join("repo"));
    shop_app(&repo, &ns);
    repo.commit("shop");
    let first = gitops(&cluster, &repo, "sync", &[]);
    assert_eq!(first.code, 0, "{first}");
    hpa_scales(&cluster);
    let clean = gitops(&cluster, &repo, "diff", &[]);
    assert_eq!(clean.code, 0, "the HPA's replicas are no drift: {clean}");

    drift_everything(&cluster);
    let settings = cluster.configmap("shop-settings").expect("settings");
    assert_eq!(settings["data"]["LOG_LEVEL"], "debug", "the edit took");
    assert_eq!(deployment(&cluster, "shop")["spec"]["replicas"], 5);

    // diff shows every change and what sync does about it.
    let diff = gitops(&cluster, &repo, "diff", &[]);
    assert_eq!(diff.code, 1, "{diff}");
    for (field, manager) in [
        ("data.extra", "kubectl-patch"),
        ("data.LOG_LEVEL", "kubectl-edit"),
        (
            "spec.template.spec.containers[name=shop].image",
            "kubectl-set",
        ),
        ("metadata.labels.hand", "kubectl-label"),
        ("spec.replicas", "kubectl"),
        ("data.debug", "kubectl-client-side-apply"),
    ] {
        let line = diff
            .stdout
            .lines()
            .find(|l| l.starts_with("# ") && l.contains(field) && l.contains(manager))
            .unwrap_or_else(|| panic!("{field} by {manager} not in the diff: {diff}"));
        assert!(
            line.contains(&format!("sync takes it over from {manager}")),
            "{line}"
        );
    }
    assert!(!diff.stdout.contains("shop-hpa"), "{diff}");

    // status names them too, with the remedy for scripts.
    let status = gitops(&cluster, &repo, "status", &["-o", "json"]);
    let report: Value = serde_json::from_str(&status.stdout).expect("status json");
    let config = report["objects"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["name"] == "shop-config"))
        .expect("shop-config row");
    assert_eq!(config["sync"], "OutOfSync", "{config:#}");
    assert_eq!(
        config["handFields"],
        json!([{"path": "data.extra", "manager": "kubectl-patch", "declared": false, "remedy": "Revert"}])
    );

    // The dry run shows the same plan and changes nothing.
    let dry = gitops(&cluster, &repo, "sync", &["--dry-run"]);
    assert_eq!(dry.code, 0, "{dry}");
    assert!(
        dry.stdout.contains(&format!(
            "hand-made ConfigMap/{ns}/shop-config: data.extra: sync takes it over from kubectl-patch and removes it"
        )),
        "{dry}"
    );
    assert!(dry.stdout.contains("4 reverted (dry run)"), "{dry}");
    assert_eq!(
        cluster.configmap("shop-config").expect("config")["data"]["extra"],
        "by-hand"
    );

    // One plain sync: every object back to Git.
    let sync = gitops(&cluster, &repo, "sync", &[]);
    assert_eq!(sync.code, 0, "{sync}");
    assert!(
        sync.stdout
            .contains("0 created, 0 configured, 2 unchanged, 0 pruned, 0 failed, 4 reverted"),
        "{sync}"
    );
    let reverted = sync
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("reverted ConfigMap/{ns}/shop-config")))
        .unwrap_or_else(|| panic!("{sync}"));
    assert!(
        reverted.contains("data.extra (by kubectl-patch)"),
        "{reverted}"
    );

    let config = cluster.configmap("shop-config").expect("config");
    assert_eq!(
        config["data"],
        json!({"greeting": "hello"}),
        "the key is gone"
    );
    let settings = cluster.configmap("shop-settings").expect("settings");
    assert_eq!(
        settings["data"],
        json!({"LOG_LEVEL": "info"}),
        "the edit undone"
    );
    let applied = cluster.configmap("shop-applied").expect("applied");
    assert_eq!(
        applied["data"],
        json!({"mode": "prod"}),
        "the applied key gone"
    );
    assert!(
        applied["metadata"]["annotations"]
            .get("kubectl.kubernetes.io/last-applied-configuration")
            .is_none(),
        "kubectl's annotation gone: {applied:#}"
    );
    let shop = deployment(&cluster, "shop");
    assert_eq!(
        shop["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );
    assert_eq!(shop["spec"]["replicas"], 2, "replicas back");
    assert!(
        shop["metadata"]["labels"].get("hand").is_none(),
        "the label gone: {:#}",
        shop["metadata"]["labels"]
    );
    let scaled = deployment(&cluster, "shop-hpa");
    assert_eq!(scaled["spec"]["replicas"], 3, "the HPA's replicas stay");

    let diff = gitops(&cluster, &repo, "diff", &[]);
    assert_eq!(diff.code, 0, "{diff}");
    assert_eq!(diff.stdout, "", "{diff}");
    let again = gitops(&cluster, &repo, "sync", &[]);
    assert_eq!(again.code, 0, "{again}");
    assert!(
        again
            .stdout
            .contains("0 configured, 6 unchanged, 0 pruned, 0 failed, 0 reverted"),
        "{again}"
    );
}

#[test]
fn managers_left_out_of_take_over_need_force_conflicts_or_are_kept() {
    let cluster = Cluster::new("keep");
    let ns = cluster.namespace.clone();
    let repo = Repo::init(&cluster.dir.path().join("repo"));
    shop_app(&repo, &ns);
    // The app file narrows the list to kubectl-patch: other managers' fields are not taken over.
    repo.write(
        "gitops.yaml",
        &format!(
            "apps:\n  shop:\n    path: shop\n    namespace: {ns}\n    takeOverManagers: [kubectl-patch]\n"
        ),
    );
    repo.commit("shop");
    let first = gitops(&cluster, &repo, "sync", &[]);
    assert_eq!(first.code, 0, "{first}");
    let cm = |name: &str| format!("/api/v1/namespaces/{ns}/configmaps/{name}");
    // A declared value changed by a tool not taken over, a field added by one, one by kubectl patch.
    merge_patch(
        &cluster,
        &cm("shop-settings"),
        "deploy-bot",
        &json!({"data": {"LOG_LEVEL": "trace"}}),
    );
    merge_patch(
        &cluster,
        &cm("shop-applied"),
        "kubectl-edit",
        &json!({"data": {"kept": "yes"}}),
    );
    merge_patch(
        &cluster,
        &cm("shop-config"),
        "kubectl-patch",
        &json!({"data": {"extra": "by-hand"}}),
    );

    let diff = gitops(&cluster, &repo, "diff", &[]);
    assert_eq!(diff.code, 1, "{diff}");
    assert!(
        diff.stdout.contains(
            "deploy-bot is not in takeOverManagers: sync --force-conflicts puts Git's value back"
        ),
        "{diff}"
    );
    assert!(
        diff.stdout
            .contains("kubectl-edit is not in takeOverManagers: sync leaves it"),
        "{diff}"
    );

    // A plain sync undoes kubectl patch, reports the conflict, leaves the kept field.
    let sync = gitops(&cluster, &repo, "sync", &[]);
    assert_eq!(sync.code, 1, "{sync}");
    let failed = sync
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("failed ConfigMap/{ns}/shop-settings")))
        .unwrap_or_else(|| panic!("no conflict: {sync}"));
    assert!(
        failed.contains("deploy-bot") && failed.contains("--force-conflicts"),
        "{failed}"
    );
    assert!(
        sync.stderr
            .contains("data.kept: kubectl-edit is not in takeOverManagers"),
        "{sync}"
    );
    assert_eq!(
        cluster.configmap("shop-config").expect("config")["data"],
        json!({"greeting": "hello"})
    );
    assert_eq!(
        cluster.configmap("shop-settings").expect("settings")["data"]["LOG_LEVEL"],
        "trace"
    );

    let forced = gitops(&cluster, &repo, "sync", &["--force-conflicts"]);
    assert_eq!(forced.code, 0, "{forced}");
    assert_eq!(
        cluster.configmap("shop-settings").expect("settings")["data"]["LOG_LEVEL"],
        "info"
    );
    assert_eq!(
        cluster.configmap("shop-applied").expect("applied")["data"]["kept"],
        "yes",
        "a manager not taken over keeps a field Git does not declare"
    );
}
