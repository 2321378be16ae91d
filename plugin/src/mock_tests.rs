//! Kubernetes call sequences checked request by request: a `tower_test` mock stands in for the API
//! server (as kube-rs does in `kube/src/mock_tests.rs`), answers from the captured discovery
//! documents, and records method, path, query, headers and body for the assertions.

use std::path::Path;

use gitops_test_support::git;
use http::{Request, Response};
use kube::client::Body;
use kube::Client;
use serde_json::{json, Value};

use crate::app_state::AppState;
use crate::cluster::{ClusterArgs, Discovery};
use crate::source::SourceArgs;
use crate::sync_cmd::{sync_state, SyncArgs};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/fixtures/discovery"
);

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    uri: String,
    content_type: String,
    accept: String,
    body: Value,
}

impl Seen {
    fn line(&self) -> String {
        format!("{} {}", self.method, self.uri)
    }
}

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// Answers every request with `respond` and returns what it saw once the client is gone.
fn verifier(
    mut handle: Handle,
    respond: impl Fn(&Seen) -> (u16, Value) + Send + 'static,
) -> tokio::task::JoinHandle<Vec<Seen>> {
    tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some((request, send)) = handle.next_request().await {
            let (method, uri) = (request.method().to_string(), request.uri().to_string());
            let (content_type, accept) = {
                let header = |name: &str| {
                    request
                        .headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                (header("content-type"), header("accept"))
            };
            let bytes = request.into_body().collect_bytes().await.expect("body");
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let entry = Seen {
                method,
                uri,
                content_type,
                accept,
                body,
            };
            let (code, answer) = respond(&entry);
            seen.push(entry);
            let response = Response::builder()
                .status(code)
                .body(Body::from(serde_json::to_vec(&answer).expect("json")))
                .expect("response");
            send.send_response(response);
        }
        seen
    })
}

fn fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(format!("{FIXTURES}/{name}")).expect("fixture");
    serde_json::from_str(&text).expect("json")
}

fn not_found() -> (u16, Value) {
    (
        404,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"}),
    )
}

/// Answers discovery from the captured aggregated documents.
fn discovery(seen: &Seen) -> Option<(u16, Value)> {
    match (seen.method.as_str(), seen.uri.as_str()) {
        ("GET", "/api") => Some((200, fixture("api.aggregated-v2.json"))),
        ("GET", "/apis") => Some((200, fixture("apis.aggregated-v2.json"))),
        _ => None,
    }
}

/// A repository with a folder app: a Namespace and a ConfigMap.
fn repo() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp");
    let path = dir.path();
    git(path, &["init", "-q", "-b", "main"]);
    git(path, &["config", "user.email", "t@example.invalid"]);
    git(path, &["config", "user.name", "t"]);
    std::fs::create_dir_all(path.join("app")).expect("mkdir");
    std::fs::write(
        path.join("app/a-namespace.yaml"),
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n",
    )
    .expect("write");
    std::fs::write(
        path.join("app/settings.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  LOG_LEVEL: info\n",
    )
    .expect("write");
    git(path, &["add", "-A"]);
    git(path, &["commit", "-q", "-m", "app"]);
    let head = git(path, &["rev-parse", "HEAD"]);
    (dir, head)
}

fn source(dir: &Path) -> SourceArgs {
    SourceArgs {
        app: None,
        repo: Some(dir.display().to_string()),
        revision: "HEAD".into(),
        path: Some("app".into()),
        cache_dir: None,
    }
}

fn sync_args(dir: &Path) -> SyncArgs {
    SyncArgs {
        source: source(dir),
        cluster: ClusterArgs {
            kubeconfig: None,
            context: None,
            namespace: None,
        },
        force_conflicts: false,
        force: false,
        prune: true,
        allow_empty: false,
        dry_run: None,
        wait: false,
        timeout: std::time::Duration::from_secs(5),
    }
}

async fn run_sync(
    dir: &Path,
    respond: impl Fn(&Seen) -> (u16, Value) + Send + 'static,
) -> (u8, Vec<Seen>) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let server = verifier(handle, respond);
    let client = Client::new(service, "default");
    let args = sync_args(dir);
    let resolved = args.source.resolve().expect("source");
    let state = AppState::load_with(resolved, client, "shop")
        .await
        .expect("state");
    let code = sync_state(&args, state).await.expect("sync");
    let seen = server.await.expect("verifier");
    (code, seen)
}

const SELECTOR: &str = "applyset.kubernetes.io%2Fpart-of%3D";

#[tokio::test]
async fn first_sync_discovers_lists_and_applies_in_phases() {
    let (dir, head) = repo();
    let (code, seen) = run_sync(dir.path(), |seen| {
        if let Some(answer) = discovery(seen) {
            return answer;
        }
        match seen.method.as_str() {
            "GET" if seen.uri.contains("labelSelector") => {
                (200, json!({"kind": "List", "items": []}))
            }
            "GET" => not_found(),
            "POST" => (201, json!({"status": {"userInfo": {"username": "alice"}}})),
            _ => (200, seen.body.clone()),
        }
    })
    .await;
    assert_eq!(code, 0);
    let lines: Vec<String> = seen.iter().map(Seen::line).collect();
    let id = gitops_shared::provenance::applyset_id(&gitops_shared::provenance::inventory_parent(
        "app", "shop",
    ));
    let apply = "fieldManager=kubectl-gitops";
    let parent =
        "/api/v1/namespaces/shop/configmaps/gitops-app?&force=true&fieldManager=kubectl-gitops";
    assert_eq!(
        lines,
        [
            // kube's aggregated discovery: /apis, then /api.
            "GET /apis".to_owned(),
            "GET /api".to_owned(),
            "GET /api/v1/namespaces/shop/configmaps/gitops-app".to_owned(),
            format!("GET /api/v1/namespaces?&labelSelector={SELECTOR}{id}"),
            format!("GET /api/v1/namespaces/shop/configmaps?&labelSelector={SELECTOR}{id}"),
            "GET /api/v1/namespaces/shop".to_owned(),
            "GET /api/v1/namespaces/shop/configmaps/settings".to_owned(),
            // Before the first write, a server-side dry run of the first object (an admission
            // webhook that does not know the commit yet refuses it here, with nothing applied).
            "PATCH /api/v1/namespaces/shop?&dryRun=All&fieldManager=kubectl-gitops".to_owned(),
            // Phase 0: the Namespace; then who we are, for the inventory; then the rest.
            format!("PATCH /api/v1/namespaces/shop?&{apply}"),
            "POST /apis/authentication.k8s.io/v1/selfsubjectreviews?".to_owned(),
            format!("PATCH {parent}"),
            format!("PATCH /api/v1/namespaces/shop/configmaps/settings?&{apply}"),
            // No second write of the inventory: it would say what the first said.
        ]
    );
    assert!(
        seen[0].accept.contains("as=APIGroupDiscoveryList"),
        "{:?}",
        seen[0]
    );
    let patches: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.method == "PATCH" && !s.uri.contains("dryRun"))
        .collect();
    assert!(patches
        .iter()
        .all(|p| p.content_type == "application/apply-patch+yaml"));
    let settings = &patches[2].body;
    assert_eq!(
        settings["metadata"]["annotations"]["kubectl-gitops.io/revision"],
        json!(head)
    );
    assert_eq!(
        settings["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "kubectl-gitops"
    );
    assert_eq!(
        settings["metadata"]["labels"]["applyset.kubernetes.io/part-of"],
        json!(id)
    );
    let inventory = &patches[1].body;
    assert_eq!(
        inventory["metadata"]["labels"]["applyset.kubernetes.io/id"],
        json!(id)
    );
    assert_eq!(
        inventory["metadata"]["annotations"]["kubectl-gitops.io/synced-by"],
        "alice"
    );
    assert_eq!(
        inventory["metadata"]["annotations"]["applyset.kubernetes.io/contains-group-kinds"],
        "ConfigMap,Namespace"
    );
    assert_eq!(
        inventory["data"]["members"],
        r#"[["","ConfigMap","shop","settings"],["","Namespace","","shop"]]"#
    );
}

/// The objects and inventory a first sync left, as a LIST/GET would return them: the Namespace,
/// the inventory, the ConfigMap.
async fn synced_cluster(dir: &Path) -> Vec<Seen> {
    run_sync(dir, |seen| {
        if let Some(answer) = discovery(seen) {
            return answer;
        }
        empty_cluster(seen)
    })
    .await
    .1
    .into_iter()
    // The applies as stored: without the server-side dry run checked before the first write.
    .filter(|s| s.method == "PATCH" && !s.uri.contains("dryRun=All"))
    .collect()
}

#[tokio::test]
async fn a_no_op_resync_reads_and_sends_no_patch() {
    let (dir, _) = repo();
    let applied = synced_cluster(dir.path()).await;
    let namespace = applied[0].body.clone();
    let parent = applied[1].body.clone();
    let settings = applied[2].body.clone();
    let (code, seen) = run_sync(dir.path(), move |seen| {
        if let Some(answer) = discovery(seen) {
            return answer;
        }
        match (
            seen.method.as_str(),
            seen.uri.split('?').next().unwrap_or_default(),
        ) {
            ("GET", "/api/v1/namespaces/shop/configmaps/gitops-app") => (200, parent.clone()),
            ("GET", "/api/v1/namespaces") => (200, json!({"items": [namespace.clone()]})),
            ("GET", "/api/v1/namespaces/shop/configmaps") => {
                (200, json!({"items": [settings.clone()]}))
            }
            ("POST", _) => (201, json!({})),
            _ => (500, json!({"message": "unexpected"})),
        }
    })
    .await;
    assert_eq!(code, 0);
    assert!(
        seen.iter().all(|s| s.method == "GET"),
        "only reads, not even who we are: {seen:#?}"
    );
    assert_eq!(
        seen.iter().filter(|s| s.method == "GET").count(),
        5,
        "discovery, parent, two lists"
    );
}

#[tokio::test]
async fn a_conflict_fails_the_object_and_prevents_the_prune() {
    let (dir, _) = repo();
    let applied = synced_cluster(dir.path()).await;
    let namespace = applied[0].body.clone();
    // The last inventory also lists a ConfigMap `old` that Git no longer declares.
    let mut parent = applied[1].body.clone();
    parent["data"]["members"] = json!(
        r#"[["","ConfigMap","shop","old"],["","ConfigMap","shop","settings"],["","Namespace","","shop"]]"#
    );
    let mut old = applied[2].body.clone();
    old["metadata"]["name"] = json!("old");
    let mut drifted = applied[2].body.clone();
    drifted["data"]["LOG_LEVEL"] = json!("trace");
    let (code, seen) = run_sync(dir.path(), move |seen| {
        if let Some(answer) = discovery(seen) {
            return answer;
        }
        match (seen.method.as_str(), seen.uri.split('?').next().unwrap_or_default()) {
            ("GET", "/api/v1/namespaces/shop/configmaps/gitops-app") => (200, parent.clone()),
            ("GET", "/api/v1/namespaces") => (200, json!({"items": [namespace.clone()]})),
            ("GET", "/api/v1/namespaces/shop/configmaps") => {
                (200, json!({"items": [drifted.clone(), old.clone()]}))
            }
            ("PATCH", "/api/v1/namespaces/shop/configmaps/settings") => (
                409,
                json!({"kind": "Status", "status": "Failure", "reason": "Conflict", "code": 409,
                    "message": "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using v1: .data.LOG_LEVEL"}),
            ),
            ("POST", _) => (201, json!({})),
            _ => (200, seen.body.clone()),
        }
    })
    .await;
    assert_eq!(code, 1);
    assert!(
        seen.iter().all(|s| s.method != "DELETE"),
        "nothing pruned: {seen:#?}"
    );
    let patched: Vec<String> = seen
        .iter()
        .filter(|s| s.method == "PATCH")
        .map(Seen::line)
        .collect();
    assert_eq!(
        patched,
        [
            "PATCH /api/v1/namespaces/shop/configmaps/settings?&dryRun=All&fieldManager=kubectl-gitops",
            "PATCH /api/v1/namespaces/shop/configmaps/settings?&fieldManager=kubectl-gitops",
        ],
        "the dry run before the first write, then only the drifted object; the inventory keeps its revision"
    );
}

#[tokio::test]
async fn prune_deletes_only_labelled_members_of_the_last_inventory() {
    let (dir, _) = repo();
    let applied = synced_cluster(dir.path()).await;
    let namespace = applied[0].body.clone();
    let settings = applied[2].body.clone();
    let mut parent = applied[1].body.clone();
    parent["data"]["members"] = json!(
        r#"[["","ConfigMap","shop","elsewhere"],["","ConfigMap","shop","gone"],["","ConfigMap","shop","relabelled"],["","ConfigMap","shop","settings"],["","Namespace","","shop"]]"#
    );
    // In the inventory with the app's labels, but stamped from another path of the repository
    // (issue 8: folder apps once shared a name and so an inventory).
    let mut elsewhere = settings.clone();
    elsewhere["metadata"]["name"] = json!("elsewhere");
    elsewhere["metadata"]["annotations"]["kubectl-gitops.io/path"] = json!("other/app");
    let mut gone = settings.clone();
    gone["metadata"]["name"] = json!("gone");
    // In the inventory, but someone took it over: no longer labelled for the app.
    let mut relabelled = settings.clone();
    relabelled["metadata"]["name"] = json!("relabelled");
    relabelled["metadata"]["labels"]["kubectl-gitops.io/app"] = json!("other");
    // Labelled for the app, never in the inventory.
    let mut handmade = settings.clone();
    handmade["metadata"]["name"] = json!("handmade");
    let (code, seen) = run_sync(dir.path(), move |seen| {
        if let Some(answer) = discovery(seen) {
            return answer;
        }
        match (seen.method.as_str(), seen.uri.split('?').next().unwrap_or_default()) {
            ("GET", "/api/v1/namespaces/shop/configmaps/gitops-app") => (200, parent.clone()),
            ("GET", "/api/v1/namespaces") => (200, json!({"items": [namespace.clone()]})),
            ("GET", "/api/v1/namespaces/shop/configmaps") => (
                200,
                json!({"items": [settings.clone(), gone.clone(), relabelled.clone(), handmade.clone(), elsewhere.clone()]}),
            ),
            ("POST", _) => (201, json!({})),
            ("DELETE", _) => (200, json!({"kind": "Status", "status": "Success"})),
            _ => (200, seen.body.clone()),
        }
    })
    .await;
    assert_eq!(code, 0);
    let deletes: Vec<&Seen> = seen.iter().filter(|s| s.method == "DELETE").collect();
    assert_eq!(deletes.len(), 1, "{seen:#?}");
    assert_eq!(deletes[0].uri, "/api/v1/namespaces/shop/configmaps/gone?");
    assert_eq!(deletes[0].content_type, "application/json");
    assert_eq!(deletes[0].body, json!({"propagationPolicy": "Background"}));
    let last = seen
        .iter()
        .rev()
        .find(|s| s.method == "PATCH")
        .expect("inventory written");
    assert_eq!(
        last.body["data"]["members"],
        r#"[["","ConfigMap","shop","settings"],["","Namespace","","shop"]]"#
    );
}

#[tokio::test]
async fn legacy_discovery_when_aggregated_is_not_served() {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let server = verifier(handle, |seen| match seen.uri.as_str() {
        "/api" => (200, fixture("api.json")),
        "/apis" => (200, fixture("apis.json")),
        "/api/v1" => (200, fixture("api-v1.json")),
        "/apis/apps/v1" => (200, fixture("apis-apps-v1.json")),
        "/apis/example.io/v1" => (200, fixture("apis-example.io-v1.json")),
        _ => (200, json!({"kind": "APIResourceList", "resources": []})),
    });
    let client = Client::new(service, "default");
    let discovery = Discovery::fetch(&client).await.expect("discovery");
    drop(client);
    let seen = server.await.expect("verifier");
    // Aggregated discovery first (kube's order: /apis, then /api); the server answers with the
    // legacy documents, so kube's per-group-version discovery follows: /apis, every version of
    // every group it lists, then /api and its versions.
    let mut expected = vec!["GET /apis", "GET /api", "GET /apis"]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    for group in fixture("apis.json")["groups"].as_array().expect("groups") {
        for version in group["versions"].as_array().expect("versions") {
            expected.push(format!(
                "GET /apis/{}",
                version["groupVersion"].as_str().expect("groupVersion")
            ));
        }
    }
    expected.extend(["GET /api".to_owned(), "GET /api/v1".to_owned()]);
    let lines: Vec<String> = seen.iter().map(Seen::line).collect();
    assert_eq!(lines, expected);
    assert!(seen[0].accept.contains("as=APIGroupDiscoveryList"));
    assert!(seen[1].accept.contains("as=APIGroupDiscoveryList"));
    assert!(!seen[2].accept.contains("as=APIGroupDiscoveryList"));
    let deployments = discovery
        .resource("apps/v1", "Deployment")
        .expect("deployments");
    assert_eq!(deployments.api.plural, "deployments");
    assert!(deployments.namespaced);
    let namespaces = discovery.resource("v1", "Namespace").expect("namespaces");
    assert!(!namespaces.namespaced);
    assert_eq!(
        deployments.collection_url("ns"),
        "/apis/apps/v1/namespaces/ns/deployments"
    );
    // A group the server does not list is not served.
    assert!(discovery.resource("example.io/v1", "Widget").is_err());
}

/// `settings` as the API server returns it after a sync, with its managedFields: ours, a
/// controller's and, when `by_hand`, a `kubectl patch` that added `data.extra`.
fn settings_with_owners(applied: &Value, by_hand: bool) -> Value {
    let mut settings = applied.clone();
    settings["metadata"]["resourceVersion"] = json!("41");
    let mut entries = vec![
        json!({"manager": "kubectl-gitops", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {"f:LOG_LEVEL": {}}}}),
        json!({"manager": "config-reloader", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:annotations": {"f:reloader/last": {}}}}}),
    ];
    settings["metadata"]["annotations"]["reloader/last"] = json!("today");
    if by_hand {
        settings["data"]["extra"] = json!("by-hand");
        entries.push(
            json!({"manager": "kubectl-patch", "operation": "Update", "apiVersion": "v1",
            "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:extra": {}}}}),
        );
    }
    settings["metadata"]["managedFields"] = Value::Array(entries);
    settings
}

#[tokio::test]
async fn a_no_op_resync_reads_managed_fields_from_the_lists_and_sends_nothing() {
    let (dir, _) = repo();
    let applied = synced_cluster(dir.path()).await;
    let namespace = applied[0].body.clone();
    let parent = applied[1].body.clone();
    // A controller's annotation is not a hand-made field: the object stays skipped.
    let settings = settings_with_owners(&applied[2].body, false);
    let (code, seen) = run_sync(dir.path(), move |seen| {
        if let Some(answer) = discovery(seen) {
            return answer;
        }
        match (
            seen.method.as_str(),
            seen.uri.split('?').next().unwrap_or_default(),
        ) {
            ("GET", "/api/v1/namespaces/shop/configmaps/gitops-app") => (200, parent.clone()),
            ("GET", "/api/v1/namespaces") => (200, json!({"items": [namespace.clone()]})),
            ("GET", "/api/v1/namespaces/shop/configmaps") => {
                (200, json!({"items": [settings.clone()]}))
            }
            _ => (500, json!({"message": "unexpected"})),
        }
    })
    .await;
    assert_eq!(code, 0);
    let lines: Vec<String> = seen
        .iter()
        .filter(|s| !s.uri.starts_with("/api?") && s.uri != "/api" && s.uri != "/apis")
        .map(Seen::line)
        .collect();
    assert_eq!(
        lines.len(),
        3,
        "the parent and one list per resource, nothing per object: {lines:#?}"
    );
    assert!(seen.iter().all(|s| s.method == "GET"), "{seen:#?}");
}

#[tokio::test]
async fn a_hand_made_field_is_taken_over_then_applied_away() {
    let (dir, _) = repo();
    let applied = synced_cluster(dir.path()).await;
    let namespace = applied[0].body.clone();
    let parent = applied[1].body.clone();
    let settings = settings_with_owners(&applied[2].body, true);
    let (code, seen) = run_sync(dir.path(), move |seen| {
        if let Some(answer) = discovery(seen) {
            return answer;
        }
        match (
            seen.method.as_str(),
            seen.uri.split('?').next().unwrap_or_default(),
        ) {
            ("GET", "/api/v1/namespaces/shop/configmaps/gitops-app") => (200, parent.clone()),
            ("GET", "/api/v1/namespaces") => (200, json!({"items": [namespace.clone()]})),
            ("GET", "/api/v1/namespaces/shop/configmaps") => {
                (200, json!({"items": [settings.clone()]}))
            }
            ("POST", _) => (201, json!({})),
            _ => (200, settings.clone()),
        }
    })
    .await;
    assert_eq!(code, 0);
    let writes: Vec<&Seen> = seen.iter().filter(|s| s.method != "GET").collect();
    let lines: Vec<String> = writes.iter().map(|s| s.line()).collect();
    let url = "/api/v1/namespaces/shop/configmaps/settings";
    assert_eq!(
        lines,
        [
            format!("PATCH {url}?&dryRun=All&fieldManager=kubectl-gitops"),
            format!("PATCH {url}?&fieldManager=kubectl-gitops"),
            format!("PATCH {url}?&fieldManager=kubectl-gitops"),
        ],
        "preflight, the managedFields rewrite, the apply; the inventory is unchanged"
    );
    let rewrite = writes[1];
    assert_eq!(rewrite.content_type, "application/merge-patch+json");
    assert_eq!(rewrite.body["metadata"]["resourceVersion"], "41");
    assert_eq!(
        rewrite.body["metadata"]["managedFields"],
        json!([
            {"manager": "config-reloader", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:annotations": {"f:reloader/last": {}}}}},
            {"manager": "kubectl-gitops", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:data": {"f:LOG_LEVEL": {}, "f:extra": {}}}}
        ]),
        "kubectl-patch's entry merged into ours; the controller's kept"
    );
    assert!(
        writes[2].body["data"].get("extra").is_none(),
        "the apply leaves out what Git does not declare"
    );
}

/// The API server's relay of a webhook's denial, as kube-apiserver words it.
fn webhook_denial(sentence: &str) -> (u16, Value) {
    (
        403,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403,
            "message": format!("admission webhook \"validate.kubectl-gitops.io\" denied the request: {sentence}")}),
    )
}

#[tokio::test]
async fn a_webhook_that_does_not_know_the_commit_yet_is_asked_again_before_the_first_write() {
    let (dir, _) = repo();
    let dry_runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = dry_runs.clone();
    let (code, seen) = run_sync(dir.path(), move |seen| {
        if let Some(answer) = discovery(seen) {
            return answer;
        }
        if seen.uri.contains("dryRun=All")
            && counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0
        {
            return webhook_denial("Namespace/shop: commit 1234567 does not exist in file:///repo (not fetched: …); push it to main and sync");
        }
        empty_cluster(seen)
    })
    .await;
    assert_eq!(code, 0);
    let patches: Vec<String> = seen
        .iter()
        .filter(|s| s.method == "PATCH")
        .map(Seen::line)
        .collect();
    assert_eq!(dry_runs.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert!(patches[0].contains("?&dryRun=All&") && patches[1].contains("?&dryRun=All&"));
    assert_eq!(
        patches.len(),
        2 + 3,
        "two checks, then the sync: {patches:#?}"
    );
}

#[tokio::test]
async fn a_webhook_refusal_before_the_first_write_applies_nothing() {
    let (dir, _) = repo();
    let (code, seen) = run_sync(dir.path(), move |seen| {
        if let Some(answer) = discovery(seen) {
            return answer;
        }
        if seen.uri.contains("dryRun=All") {
            return webhook_denial("Namespace/shop: commit 1234567 is not a descendant of the object's current commit 89abcde; revisions only move forward on main — to roll back, git revert and sync the new commit");
        }
        match seen.method.as_str() {
            "GET" if seen.uri.contains("labelSelector") => (200, json!({"items": []})),
            "GET" => not_found(),
            _ => (200, seen.body.clone()),
        }
    })
    .await;
    assert_eq!(code, 1);
    let writes: Vec<String> = seen
        .iter()
        .filter(|s| s.method != "GET")
        .map(Seen::line)
        .collect();
    assert_eq!(
        writes,
        ["PATCH /api/v1/namespaces/shop?&dryRun=All&fieldManager=kubectl-gitops"],
        "one check, not asked again (a rollback is no matter of time), nothing applied"
    );
}

/// Issue 11: a PreSync hook (a ConfigMap made from `generateName`, Healthy once it exists) is
/// created with POST — after the server-side dry run and its Namespace, before any other apply —
/// read until it ends, and recorded on the inventory; it is no member.
#[tokio::test]
async fn a_presync_hook_is_created_and_read_before_the_first_apply() {
    let (dir, _) = repo();
    std::fs::write(
        dir.path().join("app/migrate.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: migrate-\n  annotations:\n    argocd.argoproj.io/hook: PreSync\ndata:\n  step: \"1\"\n",
    )
    .expect("write");
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-q", "-m", "a PreSync hook"]);
    let (code, seen) = run_sync(dir.path(), |seen| {
        if let Some(answer) = discovery(seen) {
            return answer;
        }
        match (
            seen.method.as_str(),
            seen.uri.split('?').next().unwrap_or_default(),
        ) {
            ("GET", _) if seen.uri.contains("labelSelector") => (200, json!({"items": []})),
            ("GET", "/api/v1/namespaces/shop/configmaps/migrate-x7k2p") => (
                200,
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "migrate-x7k2p", "namespace": "shop"}}),
            ),
            ("GET", _) => not_found(),
            ("POST", "/api/v1/namespaces/shop/configmaps") => {
                let mut created = seen.body.clone();
                created["metadata"]["name"] = json!("migrate-x7k2p");
                (201, created)
            }
            ("POST", _) => (201, json!({"status": {"userInfo": {"username": "alice"}}})),
            _ => (200, seen.body.clone()),
        }
    })
    .await;
    assert_eq!(code, 0);
    let lines: Vec<String> = seen.iter().skip(7).map(Seen::line).collect();
    let apply = "fieldManager=kubectl-gitops";
    let parent =
        "/api/v1/namespaces/shop/configmaps/gitops-app?&force=true&fieldManager=kubectl-gitops";
    assert_eq!(
        lines,
        [
            "PATCH /api/v1/namespaces/shop?&dryRun=All&fieldManager=kubectl-gitops".to_owned(),
            // The hook's Namespace does not exist yet: it goes first, then the hook.
            format!("PATCH /api/v1/namespaces/shop?&{apply}"),
            "POST /api/v1/namespaces/shop/configmaps?&fieldManager=kubectl-gitops".to_owned(),
            "GET /api/v1/namespaces/shop/configmaps/migrate-x7k2p".to_owned(),
            "POST /apis/authentication.k8s.io/v1/selfsubjectreviews?".to_owned(),
            format!("PATCH {parent}"),
            format!("PATCH /api/v1/namespaces/shop/configmaps/settings?&{apply}"),
            format!("PATCH {parent}"),
        ]
    );
    let hook = &seen[9].body;
    assert_eq!(hook["metadata"]["generateName"], "migrate-");
    assert!(hook["metadata"].get("name").is_none());
    assert_eq!(
        hook["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "kubectl-gitops"
    );
    let inventory = &seen.last().expect("the inventory").body;
    assert_eq!(
        inventory["data"]["members"],
        r#"[["","ConfigMap","shop","settings"],["","Namespace","","shop"]]"#,
        "a hook is no member"
    );
    assert_eq!(
        inventory["metadata"]["annotations"]["kubectl-gitops.io/hooks"],
        r#"[{"phase":"PreSync","object":"ConfigMap/shop/migrate-x7k2p","result":"Succeeded"}]"#
    );
}

/// The API server's 429 as priority and fairness words it, asking to wait a second.
fn too_many_requests() -> (u16, Value) {
    (
        429,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "TooManyRequests", "code": 429,
            "message": "Too many requests, please try again later.", "details": {"retryAfterSeconds": 1}}),
    )
}

/// An empty cluster's answer: nothing listed, nothing found, every create and apply accepted as
/// sent.
fn empty_cluster(seen: &Seen) -> (u16, Value) {
    match seen.method.as_str() {
        "GET" if seen.uri.contains("labelSelector") => (200, json!({"items": []})),
        "GET" => not_found(),
        "POST" => (201, json!({})),
        _ => (200, seen.body.clone()),
    }
}

#[tokio::test]
async fn an_apply_answered_429_is_sent_again_after_the_wait_asked() {
    let (dir, _) = repo();
    let refused = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = refused.clone();
    let started = std::time::Instant::now();
    let (code, seen) = run_sync(dir.path(), move |seen| {
        if let Some(answer) = discovery(seen) {
            return answer;
        }
        if seen.uri == "/api/v1/namespaces/shop/configmaps/settings?&fieldManager=kubectl-gitops"
            && counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2
        {
            return too_many_requests();
        }
        empty_cluster(seen)
    })
    .await;
    assert_eq!(code, 0);
    let settings: Vec<&Seen> = seen
        .iter()
        .filter(|s| {
            s.uri == "/api/v1/namespaces/shop/configmaps/settings?&fieldManager=kubectl-gitops"
        })
        .collect();
    assert_eq!(settings.len(), 3, "two 429s, then the apply: {seen:#?}");
    assert!(settings.iter().all(|s| s.body == settings[0].body));
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(2),
        "a second's wait before each retry, as asked"
    );
}

#[tokio::test]
async fn an_apply_answered_429_is_retried_at_most_five_times() {
    let (dir, _) = repo();
    let (code, seen) = run_sync(dir.path(), move |seen| {
        if let Some(answer) = discovery(seen) {
            return answer;
        }
        if seen.uri == "/api/v1/namespaces/shop/configmaps/settings?&fieldManager=kubectl-gitops" {
            return too_many_requests();
        }
        empty_cluster(seen)
    })
    .await;
    assert_eq!(code, 1, "the apply fails");
    let settings = seen
        .iter()
        .filter(|s| {
            s.uri == "/api/v1/namespaces/shop/configmaps/settings?&fieldManager=kubectl-gitops"
        })
        .count();
    assert_eq!(settings, 1 + 5);
}

/// Issue 13: a first sync of many objects asks which exist with one metadata-only LIST per
/// collection, and reads only those, instead of a GET per object.
#[tokio::test]
async fn many_missing_objects_are_looked_up_with_one_metadata_list() {
    let (dir, _) = repo();
    let mut text = String::new();
    for i in 0..10 {
        text.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config-{i}\ndata:\n  i: \"{i}\"\n"
        ));
    }
    std::fs::write(dir.path().join("app/many.yaml"), text).expect("write");
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-q", "-m", "ten more"]);
    let (code, seen) = run_sync(dir.path(), |seen| {
        if let Some(answer) = discovery(seen) {
            return answer;
        }
        match (seen.method.as_str(), seen.uri.as_str()) {
            ("GET", "/api/v1/namespaces/shop/configmaps?&limit=500") => (
                200,
                // One made by hand, one that is no declared object.
                json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": {},
                    "items": [
                        {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": {"name": "config-3", "namespace": "shop"}},
                        {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": {"name": "kube-root-ca.crt", "namespace": "shop"}}
                    ]}),
            ),
            ("GET", "/api/v1/namespaces/shop/configmaps/config-3") => (
                200,
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "config-3", "namespace": "shop", "resourceVersion": "7"},
                    "data": {"i": "3"}}),
            ),
            ("GET", uri) if uri.contains("labelSelector") => (200, json!({"items": []})),
            ("GET", _) => not_found(),
            ("POST", _) => (201, json!({})),
            _ => (200, seen.body.clone()),
        }
    })
    .await;
    assert_eq!(code, 0);
    let reads: Vec<String> = seen
        .iter()
        .filter(|s| s.method == "GET" && s.uri != "/api" && s.uri != "/apis")
        .filter(|s| !s.uri.contains("labelSelector") && !s.uri.ends_with("/gitops-app"))
        .map(Seen::line)
        .collect();
    assert_eq!(
        reads,
        [
            // Eleven ConfigMaps missing: one LIST says which exist; the one Namespace is read
            // with a GET, as is the one ConfigMap that exists.
            "GET /api/v1/namespaces/shop/configmaps?&limit=500",
            "GET /api/v1/namespaces/shop",
            "GET /api/v1/namespaces/shop/configmaps/config-3",
        ],
    );
    let list = seen
        .iter()
        .find(|s| s.uri.ends_with("?&limit=500"))
        .expect("the metadata list");
    assert!(
        list.accept.contains("as=PartialObjectMetadataList"),
        "{list:?}"
    );
}
