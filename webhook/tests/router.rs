//! The HTTP layer without a network: `router().oneshot(...)` with captured AdmissionReviews.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{fixture, short, World};
use gitops_webhook::metrics::Metrics;
use gitops_webhook::server::{router, WebhookState};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

fn state(world: &World) -> WebhookState {
    WebhookState {
        config: Arc::new(world.config.clone()),
        facts: world.store.clone(),
        metrics: Arc::new(Metrics::new()),
        parents: None,
    }
}

async fn post(world: &World, body: Vec<u8>) -> (StatusCode, Value) {
    let request = Request::post("/validate")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    let response = router(state(world)).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn answers_with_the_same_uid_and_a_status_for_denials() {
    let world = World::new();
    let mut review = fixture("0065-UPDATE-ConfigMap-app-config.json");
    world.sync(&mut review["request"]["oldObject"], &world.repo.c1);
    world.sync(&mut review["request"]["object"], &world.repo.c1);
    let (status, answer) = post(&world, serde_json::to_vec(&review).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(answer["response"]["uid"], review["request"]["uid"]);
    assert_eq!(answer["response"]["allowed"], false);
    assert_eq!(answer["response"]["status"]["code"], 403);
    assert_eq!(
        answer["response"]["status"]["message"],
        format!(
            "ConfigMap/demo/app-config: data.LOG_LEVEL is debug, commit {} on main says info — change it in Git",
            short(&world.repo.c1)
        )
    );
}

#[tokio::test]
async fn unreadable_and_oversize_bodies_get_clear_errors() {
    let world = World::new();
    let (status, answer) = post(&world, b"not json".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        answer["error"].as_str().unwrap().starts_with(
            "the request body is not an AdmissionReview v1 JSON document: expected ident"
        ),
        "{answer}"
    );
    let (status, answer) = post(
        &world,
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"], "the AdmissionReview has no request");
    let (status, answer) = post(&world, vec![b' '; 8 * 1024 * 1024 + 1]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("the request body is larger than 8 MiB"),
        "{answer}"
    );
}

/// A scale of a folder app's Deployment: the server GETs the parent from the API server (a
/// `tower_test` mock here, answering with the Deployment as synced) and denies; a scale whose
/// parent the head index knows is decided without any request.
#[tokio::test]
async fn scale_of_a_parent_outside_the_index_reads_it_from_the_api_server() {
    use http::{Request as HttpRequest, Response as HttpResponse};
    use kube::client::Body as KubeBody;

    let world = World::new();
    let head = world.repo.commit(
        &[(
            "folder/storefront/deployment.yaml",
            Some("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: web, image: nginx}]}\n"),
        )],
        "folder app",
    );
    world.refresh();
    let claim = gitops_webhook::decision::AppClaim {
        app: "folder-storefront".into(),
        path: "folder/storefront".into(),
        folder_namespace: "default".into(),
    };
    let desired = gitops_webhook::decision::GitFacts::render(
        world.store.as_ref(),
        &world.repo.url(),
        &head,
        &claim,
    )
    .unwrap();
    let parent = desired.objects.values().next().unwrap().clone();

    let (service, mut handle) =
        tower_test::mock::pair::<HttpRequest<KubeBody>, HttpResponse<KubeBody>>();
    let seen = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some((request, send)) = handle.next_request().await {
            seen.push(format!("{} {}", request.method(), request.uri()));
            let body = KubeBody::from(serde_json::to_vec(&parent).unwrap());
            send.send_response(HttpResponse::builder().status(200).body(body).unwrap());
        }
        seen
    });
    let mut state = state(&world);
    state.parents = Some(gitops_webhook::parent::ParentReader::new(
        kube::Client::new(service, "default"),
    ));
    let app = router(state);
    let send = |review: Value| {
        let app = app.clone();
        async move {
            let request = Request::post("/validate")
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&review).unwrap()))
                .unwrap();
            let response = app.oneshot(request).await.unwrap();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            serde_json::from_slice::<Value>(&bytes).unwrap()
        }
    };
    let answer = send(fixture("0210-UPDATE-Scale-web-scale.json")).await;
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
    assert_eq!(
        answer["response"]["status"]["message"],
        format!(
            "Deployment/default/web: spec.replicas is 3, commit {} on main says 1 — change it in Git (kubectl scale is an out-of-band change)",
            short(&head)
        )
    );
    // demo/web is app web's, in the index: no GET.
    let answer = send(fixture("0076-UPDATE-Scale-web-scale.json")).await;
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
    drop(app);
    assert_eq!(
        seen.await.unwrap(),
        vec!["GET /apis/apps/v1/namespaces/default/deployments/web"]
    );
}

/// Through the router, which answers reviews that cannot name kubectl-gitops from the peeks and
/// reads the rest whole: every captured review, as captured and with the managed-by label stamped
/// on its objects (so both paths are taken), gets exactly the answer of `decide`, with and
/// without Git-only namespaces.
#[tokio::test]
async fn both_reading_paths_answer_every_captured_review_like_decide() {
    use gitops_shared::provenance::MANAGED_BY_LABEL;
    use gitops_webhook::review::response;
    for config in ["", "gitOnlyNamespaces: [default]\n"] {
        let world = World::with_config(config);
        let mut answered = 0;
        for entry in std::fs::read_dir(common::FIXTURES).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let captured: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let mut stamped = captured.clone();
            for side in ["object", "oldObject"] {
                if stamped["request"][side].is_object() {
                    stamped["request"][side]["metadata"]["labels"][MANAGED_BY_LABEL] =
                        serde_json::json!("kubectl-gitops");
                }
            }
            for review in [&captured, &stamped] {
                let (status, answer) = post(&world, serde_json::to_vec(review).unwrap()).await;
                assert_eq!(status, StatusCode::OK, "{}", path.display());
                let uid = review["request"]["uid"].as_str().unwrap();
                let expected = response(uid, &world.decide(review).verdict);
                assert_eq!(answer, expected, "{}", path.display());
                answered += 1;
            }
        }
        assert!(answered > 700, "{answered}");
    }
}
