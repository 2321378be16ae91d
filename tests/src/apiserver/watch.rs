//! Watches (`GET <collection>?watch=true`), as the real server streams them: one JSON event per
//! line, `{"type": "ADDED"|"MODIFIED"|"DELETED", "object": …}`, for objects of the collection
//! that match the label selector, until `timeoutSeconds` passes.
//!
//! From `resourceVersion` `0` (or none) the stream starts with every matching object as ADDED;
//! from a given resourceVersion it starts with the objects written since as MODIFIED (this
//! server keeps no history, so a delete before the watch opened is not replayed — the real
//! server would replay it, or answer 410 Gone for a version too old). After that, every write
//! wakes the watch, which compares what it saw with what the store now holds and sends the
//! differences: what `kubectl gitops status --watch` and `ui` need, which only ask "did anything
//! change".

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::*;

/// A watch asked for: what [`Shared::handle`] hands to the async side in the answer's extensions.
#[derive(Debug, Clone)]
pub(super) struct WatchRequest {
    pub(super) target: Target,
    pub(super) selector: Vec<Requirement>,
    pub(super) resource_version: String,
    pub(super) timeout: Duration,
}

impl Shared {
    /// The marker answer for a watch request (streamed by [`stream`]).
    pub(super) fn watch_request(
        &self,
        target: &Target,
        query: &HashMap<String, String>,
    ) -> Response {
        let selector = match parse_selector(
            query
                .get("labelSelector")
                .map(String::as_str)
                .unwrap_or_default(),
        ) {
            Ok(selector) => selector,
            Err(message) => {
                return status(StatusCode::BAD_REQUEST, "BadRequest", message, json!({}))
            }
        };
        let timeout = query
            .get("timeoutSeconds")
            .and_then(|t| t.parse::<u64>().ok())
            .unwrap_or(1800);
        let mut response = StatusCode::OK.into_response();
        response.extensions_mut().insert(WatchRequest {
            target: target.clone(),
            selector,
            resource_version: query.get("resourceVersion").cloned().unwrap_or_default(),
            timeout: Duration::from_secs(timeout),
        });
        response
    }

    /// Objects of the watched collection that match, by (namespace, name), as a watch sends
    /// them (with apiVersion and kind).
    fn watched(&self, request: &WatchRequest) -> BTreeMap<(String, String), Value> {
        let target = &request.target;
        let api_version = if target.resource.group.is_empty() {
            target.resource.version.clone()
        } else {
            format!("{}/{}", target.resource.group, target.resource.version)
        };
        self.store
            .lock()
            .objects
            .iter()
            .filter(|((g, p, ns, _), _)| {
                *g == target.resource.group
                    && *p == target.resource.plural
                    && (target.namespace.is_empty() || *ns == target.namespace)
            })
            .filter(|(_, o)| {
                request
                    .selector
                    .iter()
                    .all(|r| r.matches(&o["metadata"]["labels"]))
            })
            .map(|((_, _, ns, name), o)| {
                let mut o = o.clone();
                o["apiVersion"] = Value::from(api_version.clone());
                o["kind"] = Value::from(target.resource.kind.clone());
                ((ns.clone(), name.clone()), o)
            })
            .collect()
    }
}

fn rv_of(object: &Value) -> u64 {
    object["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|rv| rv.parse().ok())
        .unwrap_or(0)
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut text = json!({"type": kind, "object": object}).to_string();
    text.push('\n');
    Bytes::from(text)
}

struct Progress {
    shared: Arc<Shared>,
    request: WatchRequest,
    changes: tokio::sync::watch::Receiver<u64>,
    seen: BTreeMap<(String, String), Value>,
    pending: VecDeque<Bytes>,
    deadline: tokio::time::Instant,
}

/// The streamed answer to a watch.
pub(super) async fn stream(shared: Arc<Shared>, request: WatchRequest) -> Response {
    let changes = shared.changed.subscribe();
    let reader = shared.clone();
    let asked = request.clone();
    let seen = tokio::task::spawn_blocking(move || reader.watched(&asked))
        .await
        .unwrap_or_default();
    let since: u64 = request.resource_version.parse().unwrap_or(0);
    let pending: VecDeque<Bytes> = seen
        .values()
        .filter(|o| since == 0 || rv_of(o) > since)
        .map(|o| line(if since == 0 { "ADDED" } else { "MODIFIED" }, o))
        .collect();
    let deadline = tokio::time::Instant::now() + request.timeout;
    let progress = Progress {
        shared,
        request,
        changes,
        seen,
        pending,
        deadline,
    };
    let body = futures::stream::unfold(progress, |mut p| async move {
        loop {
            if let Some(next) = p.pending.pop_front() {
                return Some((Ok::<_, std::convert::Infallible>(next), p));
            }
            match tokio::time::timeout_at(p.deadline, p.changes.changed()).await {
                Ok(Ok(())) => {}
                _ => return None,
            }
            let reader = p.shared.clone();
            let asked = p.request.clone();
            let now = tokio::task::spawn_blocking(move || reader.watched(&asked))
                .await
                .unwrap_or_default();
            for (key, object) in &now {
                match p.seen.get(key) {
                    None => p.pending.push_back(line("ADDED", object)),
                    Some(old) if rv_of(old) != rv_of(object) => {
                        p.pending.push_back(line("MODIFIED", object));
                    }
                    Some(_) => {}
                }
            }
            for (key, object) in &p.seen {
                if !now.contains_key(key) {
                    p.pending.push_back(line("DELETED", object));
                }
            }
            p.seen = now;
        }
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response()
}
