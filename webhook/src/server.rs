//! The HTTP side: `POST /validate` over TLS, and `/livez`, `/readyz`, `/metrics` on a plain-HTTP
//! admin port. The handler only parses, calls [`decide`] and wraps the answer.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::config::Config;
use crate::decision::{
    decide_from_peeks, decide_within, scale_parent_to_read, Decision, Denial, GitFacts, Live,
    Outcome, Window,
};
use crate::error::{Error, Result};
use crate::inventory::dropped_members_to_read;
use crate::metrics::Metrics;
use crate::parent::ParentReader;
use crate::review::{
    may_name_kubectl_gitops, response_bytes, AdmissionRequest, AdmissionReview, RawObject,
};
use crate::store::GitStore;
use crate::tls::{handshake, provider, server_config, ReloadingCert};

/// The largest request accepted: an UPDATE carries two objects of up to 3 MiB each (the API
/// server's own limit) plus the envelope. Larger bodies get 413.
pub const BODY_LIMIT: usize = 8 * 1024 * 1024;

/// How long in-flight requests get to finish after SIGTERM.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// What the handlers share.
#[derive(Clone)]
pub struct WebhookState {
    /// The configuration.
    pub config: Arc<Config>,
    /// Git facts (the store in production, real test repositories in tests).
    pub facts: Arc<dyn GitFacts + Send + Sync>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Reads a scale's parent from the API server when the head index does not know it; `None`
    /// without API access.
    pub parents: Option<ParentReader>,
}

/// The webhook router: `POST /validate`.
pub fn router(state: WebhookState) -> Router {
    Router::new()
        .route("/validate", post(validate))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

fn bad_request(message: String) -> Response {
    tracing::warn!(%message, "unreadable review");
    (StatusCode::BAD_REQUEST, Json(json!({"error": message}))).into_response()
}

fn too_large() -> Response {
    let message = format!(
        "the request body is larger than {} MiB, more than the API server sends for an UPDATE of two objects at its own 3 MiB limit",
        BODY_LIMIT / (1024 * 1024)
    );
    tracing::warn!(%message, "review too large");
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        Json(json!({"error": message})),
    )
        .into_response()
}

async fn validate(State(state): State<WebhookState>, request: Request) -> Response {
    // Refuse an announced oversize body at once rather than after reading 8 MiB of it.
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if announced.is_some_and(|length| length > BODY_LIMIT) {
        return too_large();
    }
    let body: Bytes = match axum::body::to_bytes(request.into_body(), BODY_LIMIT).await {
        Ok(body) => body,
        Err(_) => return too_large(),
    };
    let started = Instant::now();
    let request = if may_name_kubectl_gitops(&body) {
        // Something in the review may be managed: read it whole at once.
        match serde_json::from_slice::<AdmissionReview>(&body) {
            Ok(AdmissionReview {
                request: Some(request),
                ..
            }) => Arc::new(request),
            Ok(_) => return no_request(),
            Err(error) => return not_a_review(&error),
        }
    } else {
        // Most reviews are about objects no app manages: their objects are scanned, not
        // built, and the answer comes from the peeks alone.
        let request = match serde_json::from_slice::<AdmissionReview<RawObject>>(&body) {
            Ok(AdmissionReview {
                request: Some(request),
                ..
            }) => request,
            Ok(_) => return no_request(),
            Err(error) => return not_a_review(&error),
        };
        let (new, old) = request.peeks();
        if let Some(decision) = decide_from_peeks(&request, new, old, &state.config) {
            return respond(&state, &request, &decision, started);
        }
        match request.parse_objects() {
            Ok(request) => Arc::new(request),
            Err(error) => return not_a_review(&error),
        }
    };
    let window = Window::starting_at(started, state.config.decision_deadline);
    // A scale of a parent outside the head index reads the parent first. Warm requests are
    // decided from memory on the event loop; anything needing Git goes to a blocking thread,
    // under the deadline.
    let decision = match decide_with_live_parent(&state, &request, window).await {
        Some(decision) => decision,
        None => match state.facts.decide_in_memory(&request, &state.config) {
            Some(decision) => decision,
            None => decide_blocking(&state, request.clone(), window).await,
        },
    };
    respond(&state, &request, &decision, started)
}

fn no_request() -> Response {
    bad_request("the AdmissionReview has no request".to_owned())
}

fn not_a_review(error: &serde_json::Error) -> Response {
    bad_request(format!(
        "the request body is not an AdmissionReview v1 JSON document: {error}"
    ))
}

/// Counts, logs and answers a decision taken `started` ago.
fn respond<O>(
    state: &WebhookState,
    request: &AdmissionRequest<O>,
    decision: &Decision,
    started: Instant,
) -> Response {
    let seconds = started.elapsed().as_secs_f64();
    let operation = request.operation.as_str();
    state.metrics.review(
        operation,
        &request.kind.kind,
        decision.outcome.label(),
        decision.outcome.reason(),
        seconds,
    );
    // No span per request: with the deployed log level (info) an allowed review logs nothing,
    // and building a span's fields for nothing costs more than the decision. Each event carries
    // what identifies the review instead.
    let elapsed_us = (seconds * 1e6) as u64;
    macro_rules! review_event {
        ($level:ident, $decision:expr, $($extra:tt)*) => {
            tracing::$level!(
                uid = %request.uid,
                operation,
                kind = %request.kind.kind,
                namespace = %request.namespace,
                name = %request.name,
                user = %request.user_info.username,
                dry_run = request.dry_run,
                decision = $decision,
                elapsed_us,
                $($extra)*
            )
        };
    }
    match decision.outcome {
        Outcome::Denied(reason) => {
            review_event!(
                info,
                "denied",
                reason,
                message = decision.message(),
                "review"
            )
        }
        Outcome::BreakGlass => {
            review_event!(warn, "break-glass", message = decision.message(), "review")
        }
        Outcome::Allowed(reason) => review_event!(debug, "allowed", reason, "review"),
    }
    (
        [(header::CONTENT_TYPE, "application/json")],
        response_bytes(&request.uid, &decision.verdict),
    )
        .into_response()
}

async fn decide_blocking(
    state: &WebhookState,
    request: Arc<crate::review::AdmissionRequest>,
    window: Window,
) -> Decision {
    let (config, facts) = (state.config.clone(), state.facts.clone());
    let task = tokio::task::spawn_blocking(move || {
        decide_within(&request, &config, facts.as_ref(), &Live::default(), window)
    });
    within(window, task).await
}

/// Reviews Git alone cannot decide read the API server first, and the decision gets what was
/// read as a fact: a `kubectl scale` of a parent the head index does not know (a folder app's
/// object; a Scale carries no labels), an eviction's Pod, the members an inventory write drops
/// (whether a prune would still delete them). Reading and deciding share the decision deadline.
/// `None` for every other request, and when the webhook has no API access.
async fn decide_with_live_parent(
    state: &WebhookState,
    request: &Arc<crate::review::AdmissionRequest>,
    window: Window,
) -> Option<Decision> {
    let reader = state.parents.as_ref()?;
    // Half the deadline for the reads, so a slow API server still leaves time to answer.
    let timeout = state.config.decision_deadline / 2;
    let live = if let Some(target) = scale_parent_to_read(request, state.facts.as_ref()) {
        let parent = reader.read(&target, timeout).await;
        tracing::debug!(parent = %target, ?parent, "read the scale's parent");
        Live {
            parent: Some(parent),
            dropped_members: None,
        }
    } else {
        let dropped = dropped_members_to_read(request, MAX_DROPPED_MEMBER_READS);
        if dropped.is_empty() {
            return None;
        }
        let read = reader.read_members(&dropped, timeout).await;
        tracing::debug!(
            members = read.len(),
            "read the members an inventory write drops"
        );
        Live {
            parent: None,
            dropped_members: Some(read),
        }
    };
    let (config, facts, request) = (state.config.clone(), state.facts.clone(), request.clone());
    let task = tokio::task::spawn_blocking(move || {
        decide_within(&request, &config, facts.as_ref(), &live, window)
    });
    Some(within(window, task).await)
}

/// The most members one inventory write may drop and still be read (a prune of more at once is
/// refused as unverified and can be run again: the next sync drops the rest).
const MAX_DROPPED_MEMBER_READS: usize = 2_000;

/// The decision of `task`, or a denial when it fails or is not done by the window's end.
async fn within(window: Window, task: tokio::task::JoinHandle<Decision>) -> Decision {
    let deadline = window.until.saturating_duration_since(window.arrived);
    match tokio::time::timeout_at(window.until.into(), task).await {
        Ok(Ok(decision)) => decision,
        Ok(Err(error)) => denied(format!("the webhook failed while deciding ({error}); try again")),
        Err(_) => denied(format!(
            "the webhook could not decide within {} ms (a Git fetch or render is slow); try again shortly",
            deadline.as_millis()
        )),
    }
}

fn denied(reason: String) -> Decision {
    Decision::deny(Denial::Undecided { reason })
}

/// Readiness: the mirrors are loaded and the TLS listener is bound.
#[derive(Debug, Default)]
pub struct Readiness {
    tls_bound: AtomicBool,
    mirrors_loaded: AtomicBool,
    draining: AtomicBool,
}

#[derive(Clone)]
struct AdminState {
    readiness: Arc<Readiness>,
    metrics: Arc<Metrics>,
    store: Arc<GitStore>,
    /// Why the webhook has no API access, when it has none (readiness stays: Git still decides).
    no_api_access: Option<Arc<str>>,
}

/// The admin router: `/livez`, `/readyz`, `/metrics`.
fn admin_router(state: AdminState) -> Router {
    Router::new()
        .route("/livez", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn readyz(State(state): State<AdminState>) -> Response {
    let r = &state.readiness;
    if r.draining.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    if !r.tls_bound.load(Ordering::SeqCst) || !r.mirrors_loaded.load(Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: Git mirrors not loaded or TLS not bound\n",
        )
            .into_response();
    }
    // Still ready when a fetch fails: the mirror keeps deciding; say so.
    let mut body = String::from("ready\n");
    for mirror in state.store.mirrors() {
        if let Some(error) = mirror.status().last_error {
            body.push_str(&format!("last fetch of {} failed: {error}\n", mirror.url));
        }
    }
    if let Some(reason) = &state.no_api_access {
        body.push_str(&format!(
            "no Kubernetes API access ({reason}): a scale of an object the head index does not know, such as a folder app's, is not checked\n"
        ));
    }
    (StatusCode::OK, body).into_response()
}

async fn metrics(State(state): State<AdminState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

/// Where to listen and what to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The configuration file.
    pub config: PathBuf,
    /// The TLS certificate (PEM, leaf first).
    pub tls_cert: PathBuf,
    /// The TLS private key (PEM).
    pub tls_key: PathBuf,
    /// The HTTPS address.
    pub listen: SocketAddr,
    /// The admin (plain HTTP) address.
    pub admin_listen: SocketAddr,
    /// The kubeconfig for reading scale parents; `None` infers one (in-cluster service account,
    /// or `KUBECONFIG`).
    pub kubeconfig: Option<PathBuf>,
    /// Time limits on each HTTPS connection.
    pub limits: ConnectionLimits,
}

/// Runs the webhook until SIGTERM or SIGINT, then drains in-flight requests.
pub async fn run(options: ServeOptions) -> Result<()> {
    let config = Arc::new(Config::load(&options.config)?);
    let tls_provider = provider();
    let resolver = Arc::new(ReloadingCert::new(
        &options.tls_cert,
        &options.tls_key,
        tls_provider.clone(),
    )?);
    let metrics = Arc::new(Metrics::new());
    let store = Arc::new(GitStore::open(&config, metrics.clone())?);
    let readiness = Arc::new(Readiness::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let (parents, no_api_access) = match ParentReader::connect(options.kubeconfig.as_deref()).await
    {
        Ok(reader) => (Some(reader), None),
        Err(error) => {
            let reason = crate::mirror::error_chain(&error);
            tracing::warn!(error = %reason, "no Kubernetes API access: a scale of an object the head index does not know (a folder app's) passes unchecked");
            (None, Some(Arc::from(reason)))
        }
    };

    let admin_listener = bind(options.admin_listen).await?;
    tracing::info!(address = %local(&admin_listener), "admin listening");
    let admin_state = AdminState {
        readiness: readiness.clone(),
        metrics: metrics.clone(),
        store: store.clone(),
        no_api_access,
    };
    let mut admin_stop = stop_rx.clone();
    let admin = tokio::spawn(async move {
        axum::serve(admin_listener, admin_router(admin_state))
            .with_graceful_shutdown(async move {
                let _ = admin_stop.wait_for(|stop| *stop).await;
            })
            .await
    });

    // Load the mirrors before serving: decisions need them.
    let initial = store.clone();
    let failures = tokio::task::spawn_blocking(move || initial.refresh())
        .await
        .unwrap_or_default();
    for (url, error) in &failures {
        tracing::warn!(%url, %error, "initial fetch failed");
    }
    let loaded = store.mirrors().all(|m| m.head().ok().flatten().is_some());
    if !loaded {
        tracing::warn!("a mirror has no tracked branch yet; not ready until a fetch succeeds");
    }
    readiness.mirrors_loaded.store(loaded, Ordering::SeqCst);

    let fetcher = {
        let (store, readiness, interval, mut stop) = (
            store.clone(),
            readiness.clone(),
            config.fetch_interval,
            stop_rx.clone(),
        );
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.tick().await;
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    _ = stop.wait_for(|stop| *stop) => break,
                }
                let store = store.clone();
                let loaded = tokio::task::spawn_blocking(move || {
                    store.refresh();
                    store.mirrors().all(|m| m.head().ok().flatten().is_some())
                })
                .await
                .unwrap_or(false);
                readiness.mirrors_loaded.store(loaded, Ordering::SeqCst);
            }
        })
    };

    let listener = bind(options.listen).await?;
    tracing::info!(address = %local(&listener), "webhook listening (TLS)");
    readiness.tls_bound.store(true, Ordering::SeqCst);
    let acceptor = TlsAcceptor::from(Arc::new(server_config(resolver, tls_provider)?));
    let state = WebhookState {
        config: config.clone(),
        facts: store.clone(),
        metrics,
        parents,
    };
    let serving = serve_tls(
        listener,
        acceptor,
        router(state),
        stop_rx.clone(),
        options.limits,
    );

    tokio::pin!(serving);
    tokio::select! {
        result = &mut serving => { result?; }
        () = shutdown_signal() => {
            tracing::info!("shutting down: draining in-flight requests");
            readiness.draining.store(true, Ordering::SeqCst);
            let _ = stop_tx.send(true);
            serving.await?;
        }
    }
    fetcher.abort();
    match admin.await {
        Ok(result) => result.map_err(|source| Error::Serve {
            what: "admin port",
            source,
        })?,
        Err(error) => tracing::warn!(%error, "admin server task failed"),
    }
    tracing::info!("stopped");
    Ok(())
}

async fn bind(address: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .map_err(|source| Error::Bind {
            address: address.to_string(),
            source,
        })
}

fn local(listener: &TcpListener) -> String {
    listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default()
}

/// Time limits on a client connection, so that slow or silent clients cannot hold tasks and file
/// descriptors (a slow-loris client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// How long a client has to complete the TLS handshake after connecting.
    pub tls_handshake: Duration,
    /// How long a client has to send a request's headers. hyper starts this clock whenever it
    /// waits for a request, so an idle keep-alive connection is also closed after it; the API
    /// server then opens a new one.
    pub header_read: Duration,
}

impl Default for ConnectionLimits {
    /// 10 s each: far above what the API server needs on a cluster network.
    fn default() -> ConnectionLimits {
        ConnectionLimits {
            tls_handshake: Duration::from_secs(10),
            header_read: Duration::from_secs(10),
        }
    }
}

/// The pause after a failed `accept`. Errors such as EMFILE (out of file descriptors) persist
/// until connections close: retrying at once would spin a core, and exiting would drop every
/// open connection. So the pause doubles with each failure in a row, up to a ceiling, and
/// starts again from the floor after an accept succeeds.
#[derive(Debug, Clone)]
pub struct AcceptBackoff {
    next: Duration,
}

impl AcceptBackoff {
    /// The first pause.
    pub const FIRST: Duration = Duration::from_millis(5);
    /// The longest pause.
    pub const MAX: Duration = Duration::from_secs(1);

    /// A backoff at its first pause.
    pub fn new() -> AcceptBackoff {
        AcceptBackoff { next: Self::FIRST }
    }

    /// The pause after one more failure in a row.
    pub fn failed(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        pause
    }

    /// An accept succeeded: the next failure pauses briefly again.
    pub fn succeeded(&mut self) {
        self.next = Self::FIRST;
    }
}

impl Default for AcceptBackoff {
    fn default() -> AcceptBackoff {
        AcceptBackoff::new()
    }
}

/// True for accept errors about one connection (the client gave up before it was accepted):
/// the listener is fine and the next accept needs no pause.
fn is_connection_error(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::Interrupted
    )
}

/// Serves HTTPS on `listener` until `stop` turns true, then waits (up to [`DRAIN_TIMEOUT`]) for
/// open connections to finish their requests. Each connection is held to `limits`.
pub async fn serve_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: Router,
    mut stop: watch::Receiver<bool>,
    limits: ConnectionLimits,
) -> Result<()> {
    let graceful = GracefulShutdown::new();
    let mut backoff = AcceptBackoff::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|stop| *stop) => break,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => {
                backoff.succeeded();
                pair
            }
            Err(error) if is_connection_error(&error) => {
                tracing::debug!(%error, "a client left before its connection was accepted");
                continue;
            }
            Err(error) => {
                let pause = backoff.failed();
                tracing::warn!(%error, pause_ms = pause.as_millis() as u64, "accept failed; pausing before the next accept");
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    _ = stop.wait_for(|stop| *stop) => break,
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(app.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls = match handshake(&acceptor, stream, limits.tls_handshake).await {
                Ok(tls) => tls,
                Err(error) => {
                    tracing::debug!(%peer, %error, "no TLS connection");
                    return;
                }
            };
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read)
                .keep_alive(true)
                .serve_connection(TokioIo::new(tls), service);
            if let Err(error) = watcher.watch(connection).await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("drain timed out; closing remaining connections");
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_pauses_double_up_to_the_ceiling_and_start_over_after_a_success() {
        let mut backoff = AcceptBackoff::new();
        let pauses: Vec<u64> = (0..10)
            .map(|_| backoff.failed().as_millis() as u64)
            .collect();
        assert_eq!(pauses, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        backoff.succeeded();
        assert_eq!(backoff.failed(), AcceptBackoff::FIRST);
    }

    #[test]
    fn a_client_leaving_early_is_no_reason_to_pause() {
        use std::io::{Error, ErrorKind};
        assert!(is_connection_error(&Error::from(
            ErrorKind::ConnectionAborted
        )));
        // EMFILE: the process is out of file descriptors.
        assert!(!is_connection_error(&Error::from_raw_os_error(24)));
    }
}
