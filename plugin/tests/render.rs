//! `kubectl gitops render` as a user runs it: the built binary, real Git repositories.

mod common;

use common::{documents, run_in, stderr, stdout, TestRepo};
use serde_json::Value;

const CM: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  level: \"LEVEL\"\n";

fn annotation<'a>(object: &'a Value, key: &str) -> &'a str {
    object["metadata"]["annotations"][key]
        .as_str()
        .unwrap_or_default()
}

#[test]
fn examples_render_at_head_with_provenance_and_the_same_bytes_twice() {
    let repo = TestRepo::new();
    repo.copy_from_workspace("examples");
    std::fs::copy(
        common::workspace_root().join("gitops.yaml"),
        repo.path().join("gitops.yaml"),
    )
    .expect("copy");
    let head = repo.commit("examples");
    for app in ["examples/plain-app", "examples/tera-app"] {
        let first = run_in(repo.path(), &["render", "--repo", ".", "--path", app]);
        assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
        let second = run_in(repo.path(), &["render", "--repo", ".", "--path", app]);
        assert_eq!(first.stdout, second.stdout, "render is deterministic");
        let objects = documents(&stdout(&first));
        assert_eq!(objects.len(), 4, "{app}");
        for object in &objects {
            assert_eq!(annotation(object, "kubectl-gitops.io/revision"), head);
            assert_eq!(annotation(object, "kubectl-gitops.io/path"), app);
            assert!(annotation(object, "kubectl-gitops.io/digest").starts_with("sha256:"));
            assert_eq!(
                object["metadata"]["labels"]["app.kubernetes.io/managed-by"],
                "kubectl-gitops"
            );
        }
    }
    // The tera app is in gitops.yaml with the production values merged over values.yaml.
    let out = run_in(repo.path(), &["render", "shop", "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let list: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(list["kind"], "List");
    let deployment = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|o| o["kind"] == "Deployment")
        .expect("deployment");
    assert_eq!(deployment["spec"]["replicas"], 3);
    assert_eq!(deployment["metadata"]["namespace"], "shop");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"],
        "500m"
    );
    let config = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|o| o["kind"] == "ConfigMap")
        .expect("cm");
    assert_eq!(config["data"]["LOG_LEVEL"], "warn", "production values win");
    assert_eq!(config["data"]["FEATURE_CHECKOUT"], "false", "defaults stay");
}

#[test]
fn other_revisions_render_their_own_content_not_the_working_tree() {
    let repo = TestRepo::new();
    repo.write("app/cm.yaml", &CM.replace("LEVEL", "one"));
    let first = repo.commit("one");
    repo.git(&["tag", "v1"]);
    repo.write("app/cm.yaml", &CM.replace("LEVEL", "two"));
    repo.commit("two");
    repo.git(&["checkout", "-q", "-b", "feature"]);
    repo.write("app/cm.yaml", &CM.replace("LEVEL", "three"));
    let feature = repo.commit("three");
    repo.git(&["checkout", "-q", "main"]);
    repo.write("app/cm.yaml", &CM.replace("LEVEL", "dirty working tree"));

    let level = |revision: &str| {
        let out = run_in(
            repo.path(),
            &["render", "--path", "app", "--revision", revision],
        );
        assert_eq!(out.status.code(), Some(0), "{revision}: {}", stderr(&out));
        let objects = documents(&stdout(&out));
        (
            objects[0]["data"]["level"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            annotation(&objects[0], "kubectl-gitops.io/revision").to_owned(),
        )
    };
    assert_eq!(level("HEAD").0, "two");
    assert_eq!(level("main").0, "two");
    assert_eq!(level("v1"), ("one".to_owned(), first.clone()));
    assert_eq!(level(&first[..8]), ("one".to_owned(), first.clone()));
    assert_eq!(level("feature"), ("three".to_owned(), feature));
}

/// Each kind of bad input: exit code 2, and one message naming the file, document and field.
#[test]
fn bad_input_exits_2_with_a_message_naming_the_place() {
    // (case, files, arguments, fragments the message must contain)
    type Case<'a> = (
        &'a str,
        &'a [(&'a str, &'a str)],
        &'a [&'a str],
        &'a [&'a str],
    );
    let cases: &[Case] = &[
        ("malformed yaml", &[("app/a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [oops\n")],
            &["--path", "app"], &["app/a.yaml", "document 1", "line"]),
        ("no kind", &[("app/a.yaml", "apiVersion: v1\nmetadata:\n  name: x\n")],
            &["--path", "app"], &["app/a.yaml (document 1)", "kind is missing"]),
        ("no name", &[("app/a.yaml", "---\nkind: ConfigMap\napiVersion: v1\nmetadata: {name: ok}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels: {a: b}\n")],
            &["--path", "app"], &["app/a.yaml (document 2)", "metadata.name is missing"]),
        ("duplicate", &[("app/a.yaml", CM), ("app/sub/b.yaml", CM)],
            &["--path", "app"], &["ConfigMap/default/settings is declared twice", "app/a.yaml (document 1)", "app/sub/b.yaml (document 1)"]),
        ("missing path", &[("app/a.yaml", CM)], &["--path", "nope"], &["path \"nope\" does not exist in commit"]),
        ("unknown revision", &[("app/a.yaml", CM)], &["--path", "app", "--revision", "no-such-branch"],
            &["unknown revision \"no-such-branch\""]),
        ("template error", &[
            ("gitops.yaml", "apps:\n  web:\n    path: chart\n    renderer: tera\n"),
            ("chart/values.yaml", "replicas: 1\n"),
            ("chart/templates/d.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  r: \"{{ values.replicas }}\"\n  i: \"{{ values.image.tag }}\"\n"),
        ], &["web"], &["template chart/templates/d.yaml line 7", "values.image.tag"]),
        ("missing values file", &[
            ("gitops.yaml", "apps:\n  web:\n    path: chart\n    renderer: tera\n    values: [prod.yaml]\n"),
            ("chart/values.yaml", "replicas: 1\n"),
            ("chart/templates/d.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"),
        ], &["web"], &["values file \"chart/prod.yaml\"", "app \"web\"", "does not exist"]),
        ("bad app file", &[("gitops.yaml", "apps:\n  web:\n    path: chart\n    renderr: tera\n"), ("chart/a.yaml", CM)],
            &["web"], &["gitops.yaml", "renderr", "line 4"]),
    ];
    for (name, files, args, expected) in cases {
        let repo = TestRepo::new();
        for (file, content) in *files {
            repo.write(file, content);
        }
        repo.commit(name);
        let mut full = vec!["render"];
        full.extend_from_slice(args);
        let out = run_in(repo.path(), &full);
        let message = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {message}");
        assert!(out.stdout.is_empty(), "{name}: nothing on stdout");
        assert!(!message.contains("panicked"), "{name}: {message}");
        for fragment in *expected {
            assert!(
                message.contains(fragment),
                "{name}: expected {fragment:?} in:\n{message}"
            );
        }
    }
}

#[test]
fn remote_repositories_are_mirrored_over_git_daemon() {
    let repo = TestRepo::new();
    repo.write("apps/web/cm.yaml", &CM.replace("LEVEL", "served"));
    let head = repo.commit("served");
    let base = repo.path().parent().expect("parent").to_owned();
    let daemon = gitops_test_support::GitDaemon::start(&base);
    let repo_name = repo
        .path()
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let url = daemon.url(&repo_name);
    let cache = tempfile::tempdir().expect("cache");
    let out = run_in(
        cache.path(),
        &[
            "render",
            "--repo",
            &url,
            "--path",
            "apps/web",
            "--cache-dir",
            &cache.path().display().to_string(),
        ],
    );
    drop(daemon);
    assert!(out.status.success(), "{}", stderr(&out));
    let objects = documents(&stdout(&out));
    assert_eq!(objects[0]["data"]["level"], "served");
    assert_eq!(annotation(&objects[0], "kubectl-gitops.io/repo"), url);
    assert_eq!(annotation(&objects[0], "kubectl-gitops.io/revision"), head);
    // The mirror is bare and kept: a second render reads it again (file:// this time).
    let file_url = format!("file://{}", repo.path().display());
    let out = run_in(
        cache.path(),
        &[
            "render",
            "--repo",
            &file_url,
            "--path",
            "apps/web",
            "--cache-dir",
            &cache.path().display().to_string(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_dir(cache.path()).expect("cache").count(),
        2,
        "one mirror per URL"
    );
}

#[test]
fn kustomize_renders_overlays_from_the_commit() {
    let repo = TestRepo::new();
    repo.copy_from_workspace("examples/kustomize-app");
    repo.commit("kustomize");
    let out = run_in(
        repo.path(),
        &[
            "render",
            "--path",
            "examples/kustomize-app/overlays/production",
            "-n",
            "shop",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let objects = documents(&stdout(&out));
    let deployment = objects
        .iter()
        .find(|o| o["kind"] == "Deployment")
        .expect("deployment");
    assert_eq!(
        deployment["spec"]["replicas"], 3,
        "overlay applied to ../../base"
    );
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27.1"
    );
    assert_eq!(deployment["metadata"]["namespace"], "shop");
    assert!(objects.iter().any(|o| o["metadata"]["name"]
        .as_str()
        .is_some_and(|n| n.starts_with("shop-config-"))));
}

#[test]
fn a_missing_renderer_program_is_named() {
    let repo = TestRepo::new();
    repo.copy_from_workspace("examples/helm-app");
    repo.copy_from_workspace("examples/kustomize-app");
    repo.commit("external");
    let out = common::plugin()
        .args(["render", "--path", "examples/helm-app"])
        .env("GITOPS_HELM", "helm-not-installed")
        .current_dir(repo.path())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let message = stderr(&out);
    assert!(
        message.contains("the helm renderer needs the program \"helm-not-installed\""),
        "{message}"
    );
    let out = common::plugin()
        .args(["render", "--path", "examples/kustomize-app/base"])
        .env("GITOPS_KUSTOMIZE", "/nonexistent/kubectl")
        .current_dir(repo.path())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("the kustomize renderer needs the program \"/nonexistent/kubectl\""),
        "{}",
        stderr(&out)
    );
}

/// Helm through Helm's own engine (tests/support/helm, built on the helm-python-sdk package).
#[test]
fn helm_charts_render_through_helm_template() {
    let stand_in = common::workspace_root().join("plugin/tests/support/helm");
    let available = std::process::Command::new("python3")
        .args(["-c", "import helm_python"])
        .status()
        .is_ok_and(|s| s.success());
    if !available {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI installs helm-python-sdk; it is missing"
        );
        eprintln!("helm-python-sdk not installed: skipping (pip install helm-python-sdk)");
        return;
    }
    let repo = TestRepo::new();
    repo.copy_from_workspace("examples/helm-app");
    repo.write("gitops.yaml", "apps:\n  shop:\n    path: examples/helm-app\n    namespace: shop\n    values: [values-production.yaml]\n");
    repo.commit("helm");
    let out = common::plugin()
        .args(["render", "shop"])
        .env("GITOPS_HELM", &stand_in)
        .current_dir(repo.path())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let objects = documents(&stdout(&out));
    assert_eq!(objects.len(), 1, "NOTES.txt is not an object");
    assert_eq!(
        objects[0]["metadata"]["name"], "shop",
        "release name is the app name"
    );
    assert_eq!(objects[0]["metadata"]["namespace"], "shop");
    assert_eq!(objects[0]["spec"]["replicas"], 3, "production values");
    assert_eq!(
        objects[0]["metadata"]["labels"]["helm.sh/chart"],
        "shop-0.1.0"
    );
}

/// True when the helm stand-in can run (helm-python-sdk installed); CI must have it.
fn helm_engine_available() -> bool {
    let available = std::process::Command::new("python3")
        .args(["-c", "import helm_python"])
        .status()
        .is_ok_and(|s| s.success());
    if !available {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI installs helm-python-sdk; it is missing"
        );
        eprintln!("helm-python-sdk not installed: skipping (pip install helm-python-sdk)");
    }
    available
}

fn kinds_and_names(objects: &[Value]) -> Vec<String> {
    objects
        .iter()
        .map(|o| {
            format!(
                "{}/{}",
                o["kind"].as_str().unwrap_or("?"),
                o["metadata"]["name"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

/// Argo CD's `jsonnet-guestbook` shape: guestbook-ui.jsonnet importing params.libsonnet, rendered
/// natively; the top-level argument comes from gitops.yaml.
#[test]
fn jsonnet_guestbook_renders_natively_with_arguments_from_the_app_file() {
    let repo = TestRepo::new();
    repo.copy_from_workspace("examples/jsonnet-guestbook");
    repo.write(
        "gitops.yaml",
        "apps:\n  guestbook:\n    path: examples/jsonnet-guestbook\n    namespace: guestbook\n    jsonnet:\n      tlas:\n        replicas: 2\n",
    );
    let head = repo.commit("jsonnet guestbook");
    let first = run_in(repo.path(), &["render", "guestbook"]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let second = run_in(repo.path(), &["render", "guestbook"]);
    assert_eq!(first.stdout, second.stdout, "render is deterministic");
    let objects = documents(&stdout(&first));
    assert_eq!(
        kinds_and_names(&objects),
        vec![
            "Service/jsonnet-guestbook-ui",
            "Deployment/jsonnet-guestbook-ui"
        ],
        "the file's output order"
    );
    let deployment = &objects[1];
    assert_eq!(deployment["spec"]["replicas"], 2, "tlas.replicas");
    assert_eq!(deployment["metadata"]["namespace"], "guestbook");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"], 8080,
        "from params.libsonnet"
    );
    for object in &objects {
        assert_eq!(annotation(object, "kubectl-gitops.io/revision"), head);
        assert!(annotation(object, "kubectl-gitops.io/digest").starts_with("sha256:"));
    }
    // As a folder app the renderer is detected, and the parameter keeps its default.
    repo.remove("gitops.yaml");
    repo.commit("no app file");
    let out = run_in(
        repo.path(),
        &[
            "render",
            "--path",
            "examples/jsonnet-guestbook",
            "-n",
            "web",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let objects = documents(&stdout(&out));
    assert_eq!(
        objects[1]["spec"]["replicas"], 1,
        "params.libsonnet's default"
    );
    assert_eq!(objects[1]["metadata"]["namespace"], "web");
}

#[test]
fn jsonnet_imports_resolve_in_the_commit_and_errors_name_file_and_line() {
    let repo = TestRepo::new();
    repo.write("lib/labels.libsonnet", "{ team(name):: { team: name } }\n");
    repo.write(
        "apps/web/main.jsonnet",
        "local labels = import '../../lib/labels.libsonnet';\n{\n  apiVersion: 'v1',\n  kind: 'ConfigMap',\n  metadata: { name: 'web', labels: labels.team(std.extVar('team')) },\n}\n",
    );
    repo.write(
        "gitops.yaml",
        "apps:\n  web:\n    path: apps/web\n    namespace: web\n    jsonnet:\n      extVars: {team: payments}\n",
    );
    repo.commit("jsonnet with a library");
    // The working tree is not what renders: only the commit.
    repo.write(
        "lib/labels.libsonnet",
        "{ team(name):: { team: 'uncommitted' } }\n",
    );
    let out = run_in(repo.path(), &["render", "web", "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let list: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(list["items"][0]["metadata"]["labels"]["team"], "payments");

    repo.write(
        "apps/web/main.jsonnet",
        "local x = 1;\n{\n  apiVersion: 'v1',\n  kind: 'ConfigMap',\n  metadata: { name: error 'name me' },\n}\n",
    );
    repo.commit("broken");
    let out = run_in(repo.path(), &["render", "web"]);
    assert_eq!(out.status.code(), Some(2));
    let message = stderr(&out);
    assert!(
        message
            .contains("apps/web/main.jsonnet: Jsonnet evaluation failed: runtime error: name me"),
        "{message}"
    );
    assert!(message.contains("apps/web/main.jsonnet:5:"), "{message}");

    repo.write(
        "apps/web/main.jsonnet",
        "import '../../../outside.libsonnet'\n",
    );
    repo.commit("escape");
    let out = run_in(repo.path(), &["render", "web"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("leads outside the repository"),
        "{}",
        stderr(&out)
    );
}

/// The two cases issue 11 saw render zero objects and exit 0.
#[test]
fn zero_objects_is_an_error_naming_the_renderer_and_the_files() {
    let repo = TestRepo::new();
    repo.copy_from_workspace("examples/jsonnet-guestbook");
    repo.write("examples/jsonnet-guestbook/README.md", "# guestbook\n");
    repo.write(
        "gitops.yaml",
        "apps:\n  guestbook:\n    path: examples/jsonnet-guestbook\n    renderer: plain\n",
    );
    repo.commit("jsonnet under the plain renderer");
    let out = run_in(repo.path(), &["render", "guestbook"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out).trim(),
        "error: examples/jsonnet-guestbook rendered 0 objects with the plain renderer (set in gitops.yaml) from 3 files (README.md, guestbook-ui.jsonnet, params.libsonnet): the plain renderer ignores .jsonnet files: they need the jsonnet renderer (drop `renderer: plain` from the app in gitops.yaml, or set `renderer: jsonnet`); if the app is empty on purpose, pass --allow-empty"
    );
    let out = run_in(repo.path(), &["render", "guestbook", "--allow-empty"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(documents(&stdout(&out)).is_empty());

    // helm-dependency with its dependency not vendored: refused before helm runs (no helm needed).
    repo.copy_from_workspace("examples/helm-dependency");
    repo.remove("examples/helm-dependency/charts/cache-1.2.0.tgz");
    repo.commit("dependency not vendored");
    let out = common::plugin()
        .args(["render", "--path", "examples/helm-dependency"])
        .env("GITOPS_HELM", "helm-not-installed")
        .current_dir(repo.path())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out).trim(),
        "error: examples/helm-dependency/Chart.yaml: dependency \"cache\" (version 1.2.0 from https://charts.example.com) is not in examples/helm-dependency/charts/: run `helm dependency build examples/helm-dependency` and commit it (the webhook renders without network, so the plugin does too)"
    );
}

/// Argo CD's `helm-dependency` shape: the chart's work is done by a dependency vendored under
/// charts/, as an archive (what `helm dependency build` writes) or as a folder.
#[test]
fn helm_dependencies_vendored_as_archive_or_folder_render() {
    if !helm_engine_available() {
        return;
    }
    let stand_in = common::workspace_root().join("plugin/tests/support/helm");
    let repo = TestRepo::new();
    repo.copy_from_workspace("examples/helm-dependency");
    repo.write(
        "gitops.yaml",
        "apps:\n  shop:\n    path: examples/helm-dependency\n    namespace: shop\n    renderer: helm\n",
    );
    repo.commit("vendored archive");
    let render = || {
        let out = common::plugin()
            .args(["render", "shop"])
            .env("GITOPS_HELM", &stand_in)
            .current_dir(repo.path())
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        documents(&stdout(&out))
    };
    let objects = render();
    let mut names = kinds_and_names(&objects);
    names.sort();
    assert_eq!(
        names,
        vec![
            "ConfigMap/shop-settings",
            "Deployment/shop-cache",
            "Service/shop-cache"
        ]
    );
    let deployment = objects
        .iter()
        .find(|o| o["kind"] == "Deployment")
        .expect("the dependency's Deployment");
    assert_eq!(
        deployment["spec"]["replicas"], 2,
        "parent values reach the dependency"
    );
    assert_eq!(deployment["metadata"]["namespace"], "shop");

    // The same dependency vendored as a folder.
    repo.remove("examples/helm-dependency/charts/cache-1.2.0.tgz");
    repo.write(
        "examples/helm-dependency/charts/cache/Chart.yaml",
        "apiVersion: v2\nname: cache\nversion: 1.2.0\n",
    );
    repo.write(
        "examples/helm-dependency/charts/cache/values.yaml",
        "replicaCount: 1\n",
    );
    repo.write(
        "examples/helm-dependency/charts/cache/templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cache\ndata:\n  replicas: \"{{ .Values.replicaCount }}\"\n",
    );
    repo.commit("vendored folder");
    let objects = render();
    let cache = objects
        .iter()
        .find(|o| o["metadata"]["name"] == "shop-cache")
        .expect("the folder dependency's ConfigMap");
    assert_eq!(cache["data"]["replicas"], "2");
}
