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
