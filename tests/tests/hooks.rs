//! End to end (issue 11): sync waves and hooks with the built `kubectl-gitops`, against the real
//! API server given by `GITOPS_E2E_KUBECONFIG` or the test API server.
//!
//! There is no kubelet: the test plays it, writing a Pod's phase (Running and Ready, Succeeded,
//! Failed) through the `status` subresource as the kubelet would. Hooks here are Pods, as in
//! Argo CD's `pre-post-sync` shape with a Pod: a Job's status on a real control plane is the Job
//! controller's to write (it would overwrite a test's), while no controller touches a Pod's.

use std::process::{Child, Stdio};
use std::time::Duration;

use base64::Engine as _;
use gitops_e2e::harness::{eventually, serve_https, Ca, Cluster, DeleteOnDrop, Repo, Run};
use serde_json::{json, Value};

const MERGE: &str = "application/merge-patch+json";

fn namespace_yaml(ns: &str) -> String {
    format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n")
}

/// A Pod; `generate` makes it from `generateName`; `annotations` as YAML flow mapping entries.
fn pod_yaml(name: &str, generate: bool, annotations: &str) -> String {
    let naming = if generate { "generateName" } else { "name" };
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  {naming}: {name}\n  annotations: {{{annotations}}}\nspec:\n  restartPolicy: Never\n  containers:\n  - name: main\n    image: registry.k8s.io/pause:3.10\n"
    )
}

fn deployment_yaml(image: &str) -> String {
    format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: web\n        image: {image}\n")
}

fn spawn_sync(cluster: &Cluster, repo: &Repo, extra: &[&str]) -> Child {
    let spec = repo.spec();
    let mut args = vec!["sync", "--repo", spec.as_str(), "--path", "app", "-n"];
    args.push(cluster.namespace.as_str());
    args.extend_from_slice(extra);
    cluster
        .command(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sync starts")
}

fn finish(child: Child) -> Run {
    Run::from(child.wait_with_output().expect("sync ends"))
}

/// The names of the namespace's Pods made from `generate_name`, oldest first.
fn pods_from(cluster: &Cluster, generate_name: &str) -> Vec<String> {
    let list = cluster
        .get(&format!("/api/v1/namespaces/{}/pods", cluster.namespace))
        .unwrap_or(Value::Null);
    let mut pods: Vec<(String, String)> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["metadata"]["generateName"] == json!(generate_name))
        .map(|p| {
            (
                p["metadata"]["creationTimestamp"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                p["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    pods.sort();
    pods.into_iter().map(|(_, name)| name).collect()
}

/// Plays the kubelet: the Pod's phase through the status subresource.
fn set_pod_phase(cluster: &Cluster, name: &str, phase: &str) {
    let mut status = json!({"phase": phase});
    if phase == "Running" {
        status["conditions"] = json!([{"type": "Ready", "status": "True"}]);
    }
    if phase == "Failed" {
        status["reason"] = json!("Error");
        status["message"] = json!("migration failed: table exists");
    }
    let (code, body) = cluster.request(
        "PATCH",
        &format!(
            "/api/v1/namespaces/{}/pods/{name}/status",
            cluster.namespace
        ),
        Some(MERGE),
        &json!({ "status": status }),
    );
    assert_eq!(code, 200, "{body}");
}

fn deployment_image(cluster: &Cluster) -> Option<String> {
    cluster
        .get(&format!(
            "/apis/apps/v1/namespaces/{}/deployments/web",
            cluster.namespace
        ))
        .map(|d| {
            d["spec"]["template"]["spec"]["containers"][0]["image"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
}

/// A PreSync migration runs before the Deployment changes; a failing one stops the sync with
/// exit 1 before anything later is applied, and the SyncFail hook runs. A no-op resync runs no
/// hook. `status` shows the last sync's hooks.
#[test]
fn a_presync_migration_runs_first_and_a_failed_one_stops_the_sync() {
    let cluster = Cluster::new("presync");
    let ns = cluster.namespace.clone();
    let repo = Repo::init(&cluster.dir.path().join("repo"));
    repo.write("app/namespace.yaml", &namespace_yaml(&ns));
    repo.write(
        "app/migrate.yaml",
        &pod_yaml(
            "migrate-",
            true,
            "argocd.argoproj.io/hook: PreSync, argocd.argoproj.io/hook-delete-policy: BeforeHookCreation",
        ),
    );
    repo.write(
        "app/notify.yaml",
        &pod_yaml("notify-", true, "kubectl-gitops.io/hook: SyncFail"),
    );
    repo.write(
        "app/web.yaml",
        &deployment_yaml("registry.k8s.io/pause:3.9"),
    );
    repo.commit("v1 with a migration");
    // The app's Namespace does not exist yet: sync applies it before the PreSync hook in it.

    let dry = cluster.run(&[
        "sync",
        "--repo",
        &repo.spec(),
        "--path",
        "app",
        "-n",
        &ns,
        "--dry-run",
    ]);
    assert_eq!(dry.code, 0, "{dry}");
    assert!(
        dry.stdout.contains(&format!(
            "plan 1: PreSync hooks (wave 0): Pod/{ns}/migrate-*"
        )),
        "{dry}"
    );
    assert!(
        dry.stdout.contains(&format!(
            "SyncFail hooks (wave 0), if the sync fails: Pod/{ns}/notify-*"
        )),
        "{dry}"
    );

    let child = spawn_sync(&cluster, &repo, &["--timeout", "60s"]);
    let first = eventually("the migration Pod", || {
        pods_from(&cluster, "migrate-").pop()
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        deployment_image(&cluster),
        None,
        "the Deployment waits for the migration"
    );
    set_pod_phase(&cluster, &first, "Succeeded");
    let run = finish(child);
    assert_eq!(run.code, 0, "{run}");
    assert!(
        run.stderr
            .contains(&format!("PreSync hook Pod/{ns}/{first}: Succeeded")),
        "{run}"
    );
    assert_eq!(
        deployment_image(&cluster).as_deref(),
        Some("registry.k8s.io/pause:3.9")
    );
    assert!(
        pods_from(&cluster, "notify-").is_empty(),
        "SyncFail runs only on failure"
    );

    // A no-op resync runs no hook.
    let again = cluster.run(&["sync", "--repo", &repo.spec(), "--path", "app", "-n", &ns]);
    assert_eq!(again.code, 0, "{again}");
    assert!(
        again.stdout.contains(" 0 created, 0 configured,"),
        "{again}"
    );
    assert_eq!(pods_from(&cluster, "migrate-"), vec![first.clone()]);

    // v2's migration fails: the Deployment keeps v1, SyncFail runs, exit 1 names the hook.
    repo.write(
        "app/web.yaml",
        &deployment_yaml("registry.k8s.io/pause:3.10"),
    );
    repo.commit("v2");
    let child = spawn_sync(&cluster, &repo, &["--timeout", "60s"]);
    let second = eventually("the second migration Pod", || {
        pods_from(&cluster, "migrate-")
            .into_iter()
            .find(|name| *name != first)
    });
    // BeforeHookCreation: the previous run went before this one was made.
    assert!(
        cluster
            .get(&format!("/api/v1/namespaces/{ns}/pods/{first}"))
            .is_none_or(|p| p["metadata"]["deletionTimestamp"].is_string()),
        "the previous run is deleted"
    );
    set_pod_phase(&cluster, &second, "Failed");
    let notify = eventually("the SyncFail Pod", || pods_from(&cluster, "notify-").pop());
    set_pod_phase(&cluster, &notify, "Succeeded");
    let run = finish(child);
    assert_eq!(run.code, 1, "{run}");
    assert!(
        run.stderr.contains(&format!(
            "error: PreSync hook Pod/{ns}/{second} failed: pod failed: Error migration failed: table exists; nothing after it was applied"
        )),
        "{run}"
    );
    assert!(
        run.stderr
            .contains(&format!("SyncFail hook Pod/{ns}/{notify}: Succeeded")),
        "{run}"
    );
    assert_eq!(
        deployment_image(&cluster).as_deref(),
        Some("registry.k8s.io/pause:3.9"),
        "nothing after the failed hook was applied"
    );

    let status = cluster.run(&["status", "--repo", &repo.spec(), "--path", "app", "-n", &ns]);
    assert!(
        status.stdout.contains(&format!(
            "HOOK:      PreSync hook Pod/{ns}/{second}: Failed (pod failed: Error migration failed: table exists)"
        )),
        "{status}"
    );
    assert!(
        status.stdout.contains(&format!(
            "HOOK:      SyncFail hook Pod/{ns}/{notify}: Succeeded"
        )),
        "{status}"
    );
}

/// Waves: wave 1 is applied only once wave 0 is applied and Healthy; a wave that is not
/// Healthy in time stops the sync with exit 3 and nothing later applied.
#[test]
fn wave_one_waits_for_wave_zero_to_be_healthy() {
    let cluster = Cluster::new("waves");
    let ns = cluster.namespace.clone();
    let repo = Repo::init(&cluster.dir.path().join("repo"));
    repo.write("app/namespace.yaml", &namespace_yaml(&ns));
    repo.write(
        "app/db.yaml",
        &pod_yaml("db", false, "argocd.argoproj.io/sync-wave: \"0\""),
    );
    repo.write(
        "app/web.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n  annotations:\n    kubectl-gitops.io/sync-wave: \"1\"\ndata:\n  db: db\n",
    );
    repo.commit("db in wave 0, web in wave 1");

    let child = spawn_sync(&cluster, &repo, &["--timeout", "60s"]);
    let pod = format!("/api/v1/namespaces/{ns}/pods/db");
    eventually("the wave 0 Pod", || cluster.get(&pod));
    std::thread::sleep(Duration::from_millis(2000));
    assert!(
        cluster.configmap("web").is_none(),
        "wave 1 waits for wave 0"
    );
    set_pod_phase(&cluster, "db", "Running");
    let run = finish(child);
    assert_eq!(run.code, 0, "{run}");
    assert!(
        run.stderr
            .contains("wave 0: waiting for 1 objects to be Healthy"),
        "{run}"
    );
    assert!(
        cluster.configmap("web").is_some(),
        "wave 1 applied after wave 0 is Healthy"
    );
    // A no-op resync waits for nothing: the waves are unchanged and Healthy as listed.
    let again = cluster.run(&["sync", "--repo", &repo.spec(), "--path", "app", "-n", &ns]);
    assert_eq!(again.code, 0, "{again}");
    assert!(!again.stderr.contains("waiting"), "{again}");
    // diff shows the plan (on stderr: stdout is the diff).
    let diff = cluster.run(&["diff", "--repo", &repo.spec(), "--path", "app", "-n", &ns]);
    assert_eq!(diff.code, 0, "{diff}");
    assert!(
        diff.stderr.contains(&format!(
            "plan 2: apply (wave 0): Pod/{ns}/db\nplan 3: apply (wave 1): ConfigMap/{ns}/web"
        )),
        "{diff}"
    );

    // A wave 0 that never becomes Healthy: exit 3, wave 1 not applied.
    repo.write(
        "app/db.yaml",
        &pod_yaml("db2", false, "argocd.argoproj.io/sync-wave: \"0\""),
    );
    repo.write(
        "app/web.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n  annotations:\n    kubectl-gitops.io/sync-wave: \"1\"\ndata:\n  db: db2\n",
    );
    repo.commit("db2");
    let run = finish(spawn_sync(&cluster, &repo, &["--timeout", "3s"]));
    assert_eq!(run.code, 3, "{run}");
    assert!(run.stderr.contains("wave 0: timed out after"), "{run}");
    assert_eq!(cluster.configmap("web").expect("web")["data"]["db"], "db");

    // A bad wave is an error naming the object and the annotation.
    repo.write(
        "app/web.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n  annotations:\n    kubectl-gitops.io/sync-wave: \"one\"\n",
    );
    repo.commit("a bad wave");
    let run = cluster.run(&["sync", "--repo", &repo.spec(), "--path", "app", "-n", &ns]);
    assert_eq!(run.code, 2, "{run}");
    assert!(
        run.stderr.contains(&format!(
            "ConfigMap/{ns}/web: annotation kubectl-gitops.io/sync-wave: \"one\" is not an integer"
        )),
        "{run}"
    );
}

/// What a validating webhook sees when a hook is made from `generateName`, asked of the API
/// server itself: a webhook that records every review, registered for the test namespace's
/// ConfigMaps, and a ConfigMap created with `generateName` only. The name is generated before
/// validating admission, so the review's object and `request.name` carry it, beside the
/// `generateName` — which is why gitops-webhook matches a hook by its `generateName`.
#[test]
fn a_validating_webhook_sees_the_generated_name() {
    let cluster = Cluster::new("generated");
    let ns = cluster.namespace.clone();
    let (code, body) = cluster.request(
        "POST",
        "/api/v1/namespaces",
        Some("application/json"),
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns,
            "labels": {"kubernetes.io/metadata.name": ns}}}),
    );
    assert_eq!(code, 200, "{body}");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let reviews = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let seen = reviews.clone();
    let app = axum::Router::new().route(
        "/validate",
        axum::routing::post(move |axum::Json(review): axum::Json<Value>| {
            let seen = seen.clone();
            async move {
                let uid = review["request"]["uid"].clone();
                seen.lock().expect("lock").push(review);
                axum::Json(
                    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                    "response": {"uid": uid, "allowed": true}}),
                )
            }
        }),
    );
    let ca = Ca::new("recording webhook CA");
    let address = serve_https(&runtime, &ca.serving(&["127.0.0.1"]), app);
    let name = format!("record-{ns}");
    let _registration = DeleteOnDrop {
        cluster: &cluster,
        path: format!(
            "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/{name}"
        ),
    };
    let (code, body) = cluster.request(
        "POST",
        "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
        Some("application/json"),
        &json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": name},
            "webhooks": [{"name": "record.example.io", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                "clientConfig": {"url": format!("https://{address}/validate"),
                    "caBundle": base64::engine::general_purpose::STANDARD.encode(&ca.pem)},
                "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                    "resources": ["configmaps"], "scope": "Namespaced"}],
                "namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name",
                    "operator": "In", "values": [ns]}]}}]}),
    );
    assert_eq!(code, 200, "{body}");
    // A registration takes a moment to reach the API server's admission chain.
    let created = eventually("a review of a generateName create", || {
        let (code, created) = cluster.request(
            "POST",
            &format!("/api/v1/namespaces/{ns}/configmaps"),
            Some("application/json"),
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "migrate-"}}),
        );
        assert!(matches!(code, 200 | 201), "{code} {created}");
        let reviews = reviews.lock().expect("lock");
        let generated = created["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        reviews
            .iter()
            .any(|r| r["request"]["name"] == json!(generated))
            .then(|| created.clone())
    });
    let generated = created["metadata"]["name"]
        .as_str()
        .expect("a generated name");
    assert!(
        generated.starts_with("migrate-") && generated.len() == "migrate-".len() + 5,
        "{generated}"
    );
    let reviews = reviews.lock().expect("lock");
    let review = reviews
        .iter()
        .find(|r| r["request"]["name"] == json!(generated))
        .expect("the review");
    assert_eq!(
        review["request"]["object"]["metadata"]["name"],
        json!(generated)
    );
    assert_eq!(
        review["request"]["object"]["metadata"]["generateName"],
        "migrate-"
    );
    assert_eq!(review["request"]["operation"], "CREATE");
}
