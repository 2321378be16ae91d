//! `kubectl gitops ui`: the all-apps view and each app's tree in a browser, live, with a Sync
//! button — served from this process on 127.0.0.1 with the user's kubeconfig, nothing installed
//! in the cluster.
//!
//! - `GET /` the page (HTML, CSS and JS are inside the binary: no CDN, works offline);
//! - `GET /api/apps` every app's card ([`crate::status::apps`]), `GET /api/apps/{app}` one app's
//!   graph ([`view`]), `GET /api/apps/{app}/diff` the diff shown before a sync;
//! - `GET /api/events` server-sent events: `change` whenever a watch on the cluster reports one
//!   ([`crate::status::watch`]), and the page fetches what it shows again — no reload;
//! - `POST /api/apps/{app}/sync[?prune=true]` runs `kubectl gitops sync` and streams its output.
//!
//! Every request passes [`guard`]: the random token of the printed URL and a loopback Host.
//!
//! The Sync button runs this same binary as a child process (`kubectl-gitops sync APP …` with
//! the UI's repository, revision and cluster flags) rather than calling `sync_state` in-process:
//! `sync` reports progress on stdout and stderr, and a child is the one way to stream exactly
//! those lines — the same code, the same output and exit code as in a terminal — without
//! threading a writer through every line `sync` prints.

pub mod guard;
pub mod view;

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Args;
use futures::Stream;
use tokio::io::AsyncBufReadExt as _;

use crate::app_state::AppState;
use crate::cluster::ClusterArgs;
use crate::source::SourceArgs;
use crate::status::apps::{apps_report, load_all};
use crate::status::watch::{collections, next_change, Watches};
use crate::status_cmd::{attach_tree, report};

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/style.css");

/// Flags of `ui`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  kubectl gitops ui --repo . --revision main --open\n  kubectl gitops ui --port 8080\n\nThe URL printed carries a random token; requests without it are refused (403)."
)]
pub struct UiArgs {
    /// Which repository and revision (the branch to compare with); the app argument opens its page.
    #[command(flatten)]
    pub source: SourceArgs,
    /// Which cluster.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Port on 127.0.0.1 (default: a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Open the page in the default browser.
    #[arg(long)]
    pub open: bool,
}

/// Why the web view could not start or answer.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// No random source for the token.
    #[error("cannot make the access token")]
    Token(#[source] getrandom::Error),
    /// The port is taken.
    #[error("cannot listen on 127.0.0.1:{port}")]
    Bind {
        /// The port asked for.
        port: u16,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

struct Ui {
    source: SourceArgs,
    cluster: ClusterArgs,
    client: kube::Client,
    namespace: String,
    changes: tokio::sync::watch::Receiver<u64>,
    watches: Mutex<Watches>,
}

type Shared = Arc<Ui>;

/// Runs `ui` until interrupted.
pub fn run(args: &UiArgs) -> anyhow::Result<u8> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: &UiArgs) -> anyhow::Result<u8> {
    let (client, namespace) = args.cluster.connect().await?;
    let listener =
        tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, args.port)))
            .await
            .map_err(|source| UiError::Bind {
                port: args.port,
                source,
            })?;
    let port = listener
        .local_addr()
        .context("cannot read the bound address")?
        .port();
    let guard = guard::Guard {
        token: guard::new_token().map_err(UiError::Token)?,
        port,
    };
    let (sender, changes) = tokio::sync::watch::channel(0u64);
    let ui = Arc::new(Ui {
        source: args.source.clone(),
        cluster: args.cluster.clone(),
        client: client.clone(),
        namespace,
        changes,
        watches: Mutex::new(Watches::new(client, sender)),
    });
    let page = args
        .source
        .app
        .as_deref()
        .map(|app| format!("#/app/{app}"))
        .unwrap_or_default();
    let url = format!("http://127.0.0.1:{port}/?token={}{page}", guard.token);
    {
        // The URL is the command's data (stdout); a closed stdout must not stop the server.
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "kubectl gitops ui: {url}");
        let _ = out.flush();
    }
    eprintln!("Serving on 127.0.0.1:{port}; press Ctrl-C to stop.");
    if args.open {
        open_browser(&url);
    }
    let app = router(ui, guard);
    axum::serve(listener, app)
        .await
        .context("the web server stopped")?;
    Ok(crate::exit::OK)
}

fn router(ui: Shared, guard: guard::Guard) -> Router {
    Router::new()
        .route("/", get(index))
        .route(
            "/app.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    SCRIPT,
                )
            }),
        )
        .route(
            "/style.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE) }),
        )
        .route("/api/apps", get(apps))
        .route("/api/apps/{app}", get(app_page))
        .route("/api/apps/{app}/diff", get(app_diff))
        .route("/api/apps/{app}/sync", post(app_sync))
        .route("/api/events", get(events))
        .layer(axum::middleware::from_fn_with_state(
            guard.clone(),
            guard::check,
        ))
        .with_state(ui)
        .layer(axum::Extension(guard))
}

async fn index(axum::Extension(guard): axum::Extension<guard::Guard>) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "no-store")],
        Html(INDEX.replace("__TOKEN__", &guard.token)),
    )
}

/// An error for the page: the message and its causes, as `kubectl gitops` prints them.
fn failure(status: StatusCode, error: &anyhow::Error) -> Response {
    (
        status,
        Json(serde_json::json!({"error": format!("{error:#}")})),
    )
        .into_response()
}

impl Ui {
    fn watch(&self, state: &AppState) {
        let wanted = collections(state);
        match self.watches.lock() {
            Ok(mut watches) => watches.ensure(&wanted),
            Err(poisoned) => poisoned.into_inner().ensure(&wanted),
        }
    }

    async fn load(&self, app: &str) -> anyhow::Result<AppState> {
        let mut source = self.source.clone();
        source.app = Some(app.to_owned());
        let resolved = source.resolve()?;
        let state = AppState::load_with(resolved, self.client.clone(), &self.namespace).await?;
        self.watch(&state);
        Ok(state)
    }
}

/// Runs `work` on a blocking thread with the runtime's handle: an app's state holds its Git
/// repository, which may not be shared between threads, so it never crosses an await of a
/// request handler.
async fn off_thread<F, Fut>(ui: Shared, work: F) -> Response
where
    F: FnOnce(Shared) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Response>,
{
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || handle.block_on(work(ui)))
        .await
        .unwrap_or_else(|error| {
            failure(
                StatusCode::INTERNAL_SERVER_ERROR,
                &anyhow::Error::from(error),
            )
        })
}

async fn apps(State(ui): State<Shared>) -> Response {
    off_thread(ui, |ui| async move { apps_now(&ui).await }).await
}

async fn app_page(State(ui): State<Shared>, Path(app): Path<String>) -> Response {
    off_thread(ui, |ui| async move { app_page_now(&ui, &app).await }).await
}

async fn app_diff(State(ui): State<Shared>, Path(app): Path<String>) -> Response {
    off_thread(ui, |ui| async move { app_diff_now(&ui, &app).await }).await
}

async fn apps_now(ui: &Ui) -> Response {
    let loaded = if ui.source.path.is_some() {
        // A folder app with no gitops.yaml entry: the one app.
        match ui.source.resolve() {
            Ok(resolved) => {
                let head = resolved.commit.to_string();
                let (name, ns, path) = (
                    resolved.app.name.clone(),
                    resolved.app.namespace.clone().unwrap_or_default(),
                    resolved.app.path.clone(),
                );
                let state = AppState::load_with(resolved, ui.client.clone(), &ui.namespace)
                    .await
                    .map_err(|error| crate::status::apps::Unreadable {
                        name,
                        namespace: ns,
                        path,
                        error,
                    });
                Ok((head, vec![state]))
            }
            Err(error) => Err(anyhow::Error::from(error)),
        }
    } else {
        load_all(&ui.source, &ui.client, &ui.namespace)
            .await
            .map_err(anyhow::Error::from)
    };
    match loaded {
        Ok((head, states)) => {
            for state in states.iter().flatten() {
                ui.watch(state);
            }
            Json(apps_report(head, &states)).into_response()
        }
        Err(error) => failure(StatusCode::INTERNAL_SERVER_ERROR, &error),
    }
}

async fn app_page_now(ui: &Ui, app: &str) -> Response {
    let result = async {
        let state = ui.load(app).await?;
        let mut status = report(&state);
        attach_tree(&mut status, &state).await?;
        anyhow::Ok(view::app_detail(&state, &status))
    }
    .await;
    match result {
        Ok(detail) => Json(detail).into_response(),
        Err(error) => failure(StatusCode::INTERNAL_SERVER_ERROR, &error),
    }
}

async fn app_diff_now(ui: &Ui, app: &str) -> Response {
    match ui.load(app).await {
        Ok(state) => {
            let mut out = Vec::new();
            match crate::diff_cmd::write_diff(&mut out, &state, false) {
                Ok(_) => {
                    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], out).into_response()
                }
                Err(error) => failure(StatusCode::INTERNAL_SERVER_ERROR, &error.into()),
            }
        }
        Err(error) => failure(StatusCode::INTERNAL_SERVER_ERROR, &error),
    }
}

async fn events(State(ui): State<Shared>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let changes = ui.changes.clone();
    let stream = futures::stream::unfold(changes, |mut changes| async move {
        if !next_change(&mut changes).await {
            return None;
        }
        let n = *changes.borrow_and_update();
        Some((
            Ok(Event::default().event("change").data(n.to_string())),
            changes,
        ))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// `?prune=true`.
#[derive(Debug, serde::Deserialize)]
struct SyncQuery {
    #[serde(default)]
    prune: bool,
}

/// The command line of the sync child: the UI's own source and cluster flags, for `app`.
fn sync_command(ui: &Ui, app: &str, prune: bool) -> std::io::Result<tokio::process::Command> {
    let mut command = tokio::process::Command::new(std::env::current_exe()?);
    command
        .arg("sync")
        .arg(app)
        .arg("--revision")
        .arg(&ui.source.revision);
    if let Some(repo) = &ui.source.repo {
        command.arg("--repo").arg(repo);
    }
    if let Some(path) = &ui.source.path {
        command.arg("--path").arg(path);
    }
    if let Some(dir) = &ui.source.cache_dir {
        command.arg("--cache-dir").arg(dir);
    }
    if let Some(kubeconfig) = &ui.cluster.kubeconfig {
        command.arg("--kubeconfig").arg(kubeconfig);
    }
    if let Some(context) = &ui.cluster.context {
        command.arg("--context").arg(context);
    }
    if let Some(namespace) = &ui.cluster.namespace {
        command.arg("--namespace").arg(namespace);
    }
    if prune {
        command.arg("--prune");
    }
    command
        .arg("--color=never")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    Ok(command)
}

async fn app_sync(
    State(ui): State<Shared>,
    Path(app): Path<String>,
    Query(query): Query<SyncQuery>,
) -> Response {
    let mut child = match sync_command(&ui, &app, query.prune).and_then(|mut c| c.spawn()) {
        Ok(child) => child,
        Err(error) => {
            return failure(
                StatusCode::INTERNAL_SERVER_ERROR,
                &anyhow::Error::from(error).context("cannot start kubectl-gitops sync"),
            )
        }
    };
    tracing::info!(%app, prune = query.prune, "sync from the web view");
    let (lines, receiver) = tokio::sync::mpsc::channel::<String>(64);
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let out_lines = lines.clone();
    let err_lines = lines.clone();
    let readers = async move {
        let pump = |reader: Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>>,
                    to: tokio::sync::mpsc::Sender<String>| async move {
            let Some(reader) = reader else { return };
            let mut reader = tokio::io::BufReader::new(reader).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if to.send(format!("{line}\n")).await.is_err() {
                    break;
                }
            }
        };
        tokio::join!(
            pump(
                stdout.map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
                out_lines
            ),
            pump(
                stderr.map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
                err_lines
            ),
        );
        let code = match child.wait().await {
            Ok(status) => status.code().map_or("killed".to_owned(), |c| c.to_string()),
            Err(error) => format!("unknown ({error})"),
        };
        let _ = lines.send(format!("\u{1e}exit {code}\n")).await;
    };
    tokio::spawn(readers);
    let stream = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver
            .recv()
            .await
            .map(|line| (Ok::<_, Infallible>(line), receiver))
    });
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

/// Opens `url` with the desktop's opener; a failure is only a warning (the URL is printed).
fn open_browser(url: &str) {
    let (program, args): (&str, Vec<&str>) = if cfg!(target_os = "macos") {
        ("open", vec![url])
    } else if cfg!(windows) {
        ("cmd", vec!["/C", "start", "", url])
    } else {
        ("xdg-open", vec![url])
    };
    if let Err(error) = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        eprintln!("cannot open a browser ({program}: {error}); open the URL above");
    }
}
