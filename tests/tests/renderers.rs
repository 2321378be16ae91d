//! End to end for the renderers issue 11 added: Argo CD's `jsonnet-guestbook` shape (Jsonnet,
//! evaluated natively) and `helm-dependency` shape (a chart whose dependency is vendored under
//! `charts/`) sync, and a re-sync of the same commit writes nothing (0 PATCH on the wire). The two
//! folders that used to render zero objects and exit 0 now make `sync` and `diff` exit 2 with a
//! message naming the renderer, the files and the cause; `--allow-empty` still syncs an app that
//! is empty on purpose.
//!
//! The files are this repository's examples, written into a fresh repository per test. Runs
//! against the test API server by default, or a real cluster given by `GITOPS_E2E_KUBECONFIG`.
//! The same examples pass through the admission webhook in `webhook_e2e.rs`
//! (`jsonnet_and_helm_dependency_examples_pass_through_the_webhook`), where its helpers live.

use gitops_e2e::harness::{Cluster, Repo};
use serde_json::Value;

const GUESTBOOK: &str = include_str!("../../examples/jsonnet-guestbook/guestbook-ui.jsonnet");
const PARAMS: &str = include_str!("../../examples/jsonnet-guestbook/params.libsonnet");
const CHART: &str = include_str!("../../examples/helm-dependency/Chart.yaml");
const CHART_VALUES: &str = include_str!("../../examples/helm-dependency/values.yaml");
const CHART_CONFIGMAP: &str =
    include_str!("../../examples/helm-dependency/templates/configmap.yaml");
const VENDORED: &[u8] = include_bytes!("../../examples/helm-dependency/charts/cache-1.2.0.tgz");

/// A repository in the cluster's folder holding the guestbook and helm-dependency examples, with
/// `gitops.yaml` listing `apps` (YAML under `apps:`).
fn repository(cluster: &Cluster, apps: &str, vendored: bool) -> Repo {
    let repo = Repo::init(&cluster.dir.path().join("repo"));
    repo.write("examples/jsonnet-guestbook/guestbook-ui.jsonnet", GUESTBOOK);
    repo.write("examples/jsonnet-guestbook/params.libsonnet", PARAMS);
    repo.write("examples/jsonnet-guestbook/README.md", "# guestbook\n");
    repo.write("examples/helm-dependency/Chart.yaml", CHART);
    repo.write("examples/helm-dependency/values.yaml", CHART_VALUES);
    repo.write(
        "examples/helm-dependency/templates/configmap.yaml",
        CHART_CONFIGMAP,
    );
    if vendored {
        let charts = repo.path.join("examples/helm-dependency/charts");
        std::fs::create_dir_all(&charts).expect("charts/");
        std::fs::write(charts.join("cache-1.2.0.tgz"), VENDORED).expect("the vendored archive");
    }
    repo.write("gitops.yaml", &format!("apps:\n{apps}"));
    repo.commit("examples");
    repo
}

fn apps(ns: &str, guestbook_extra: &str) -> String {
    format!(
        "  guestbook:\n    path: examples/jsonnet-guestbook\n    namespace: {ns}\n{guestbook_extra}  shop:\n    path: examples/helm-dependency\n    namespace: {ns}\n    renderer: helm\n"
    )
}

fn deployment(cluster: &Cluster, name: &str) -> Value {
    cluster
        .get(&format!(
            "/apis/apps/v1/namespaces/{}/deployments/{name}",
            cluster.namespace
        ))
        .unwrap_or_else(|| panic!("Deployment {name} exists"))
}

/// Syncs `app`, then syncs it again through a recording proxy: the second sync writes nothing.
fn sync_then_resync_writes_nothing(cluster: &Cluster, repo: &Repo, app: &str, objects: usize) {
    let url = repo.path.display().to_string();
    let run = cluster.run(&["sync", app, "--repo", &url]);
    assert_eq!(run.code, 0, "{app}: {run}");
    assert!(
        run.stdout
            .contains(&format!(": {objects} created, 0 configured,")),
        "{app}: {run}"
    );
    let recorder = cluster.recorder();
    let run = cluster.run_with(&recorder.kubeconfig, &["sync", app, "--repo", &url]);
    assert_eq!(run.code, 0, "{app} again: {run}");
    assert!(
        run.stdout
            .contains(&format!(": 0 created, 0 configured, {objects} unchanged,")),
        "{app}: {run}"
    );
    assert_eq!(
        recorder.count("PATCH"),
        0,
        "{app}: a re-sync writes nothing: {:?}",
        recorder.all()
    );
}

/// `jsonnet-guestbook`: Jsonnet with a `.libsonnet` import and a top-level argument from
/// gitops.yaml, evaluated natively.
#[test]
fn jsonnet_guestbook_syncs_and_resyncs_without_a_write() {
    let cluster = Cluster::new("jsonnet-guestbook");
    cluster.create_namespace();
    let repo = repository(
        &cluster,
        &apps(
            &cluster.namespace,
            "    jsonnet:\n      tlas:\n        replicas: 2\n",
        ),
        true,
    );
    sync_then_resync_writes_nothing(&cluster, &repo, "guestbook", 2);
    let live = deployment(&cluster, "jsonnet-guestbook-ui");
    assert_eq!(live["spec"]["replicas"], 2, "the top-level argument");
    assert_eq!(
        live["metadata"]["annotations"]["kubectl-gitops.io/path"],
        "examples/jsonnet-guestbook"
    );
    let service = cluster
        .get(&format!(
            "/api/v1/namespaces/{}/services/jsonnet-guestbook-ui",
            cluster.namespace
        ))
        .expect("the Service");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], 8080);
}

/// `helm-dependency`: the chart's Deployment and Service come from its vendored dependency.
#[test]
fn helm_dependency_syncs_and_resyncs_without_a_write() {
    let cluster = Cluster::new("helm-dependency");
    cluster.create_namespace();
    let repo = repository(&cluster, &apps(&cluster.namespace, ""), true);
    sync_then_resync_writes_nothing(&cluster, &repo, "shop", 3);
    let live = deployment(&cluster, "shop-cache");
    assert_eq!(
        live["spec"]["replicas"], 2,
        "the parent's values reach the dependency"
    );
}

/// Issue 11's two silent empty renders: `.jsonnet` files under the plain renderer, and a chart
/// whose dependency is not vendored. Both now stop `sync` and `diff` with exit 2.
#[test]
fn empty_renders_stop_sync_and_diff_unless_allowed() {
    let cluster = Cluster::new("empty-renders");
    cluster.create_namespace();
    let repo = repository(
        &cluster,
        &apps(&cluster.namespace, "    renderer: plain\n"),
        false,
    );
    let url = repo.path.display().to_string();
    for command in ["sync", "diff"] {
        let run = cluster.run(&[command, "guestbook", "--repo", &url]);
        assert_eq!(run.code, 2, "{command}: {run}");
        assert_eq!(
            run.stderr.trim(),
            "error: examples/jsonnet-guestbook rendered 0 objects with the plain renderer (set in gitops.yaml) from 3 files (README.md, guestbook-ui.jsonnet, params.libsonnet): the plain renderer ignores .jsonnet files: they need the jsonnet renderer (drop `renderer: plain` from the app in gitops.yaml, or set `renderer: jsonnet`); if the app is empty on purpose, pass --allow-empty",
            "{command}"
        );
        let run = cluster.run(&[command, "shop", "--repo", &url]);
        assert_eq!(run.code, 2, "{command}: {run}");
        assert_eq!(
            run.stderr.trim(),
            "error: cannot render the app\n\nCaused by:\n    examples/helm-dependency/Chart.yaml: dependency \"cache\" (version 1.2.0 from https://charts.example.com) is not in examples/helm-dependency/charts/: run `helm dependency build examples/helm-dependency` and commit it (the webhook renders without network, so the plugin does too)",
            "{command}"
        );
    }
    // An app empty on purpose still syncs, and records an empty inventory.
    let run = cluster.run(&["sync", "guestbook", "--repo", &url, "--allow-empty"]);
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stdout.contains(": 0 created, 0 configured,"), "{run}");
    let run = cluster.run(&["diff", "guestbook", "--repo", &url, "--allow-empty"]);
    assert_eq!(run.code, 0, "{run}");
    assert!(
        cluster
            .get(&format!(
                "/apis/apps/v1/namespaces/{}/deployments/jsonnet-guestbook-ui",
                cluster.namespace
            ))
            .is_none(),
        "nothing from the .jsonnet files was applied"
    );
}
