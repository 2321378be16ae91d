//! `gitops-webhook`: parses flags and runs the server; everything else lives in the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use gitops_webhook::config::parse_duration;
use gitops_webhook::server::{run, ConnectionLimits, ServeOptions};

/// mimalloc instead of glibc's malloc: a review is parsed into many small allocations and freed
/// at once, on whichever worker thread ran it; mimalloc's thread-local free lists make that
/// about a third cheaper (measured with `cargo bench -p gitops-webhook --bench webhook`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Validating admission webhook: rejects every change that no commit on a trusted Git branch explains.
#[derive(Debug, Parser)]
#[command(name = "gitops-webhook", version)]
struct Args {
    /// The configuration file (YAML).
    #[arg(
        long,
        env = "GITOPS_WEBHOOK_CONFIG",
        default_value = "/etc/gitops-webhook/config.yaml"
    )]
    config: PathBuf,
    /// The TLS certificate (PEM), re-read when it changes.
    #[arg(
        long,
        env = "GITOPS_WEBHOOK_TLS_CERT",
        default_value = "/etc/gitops-webhook/tls/tls.crt"
    )]
    tls_cert: PathBuf,
    /// The TLS private key (PEM), re-read when it changes.
    #[arg(
        long,
        env = "GITOPS_WEBHOOK_TLS_KEY",
        default_value = "/etc/gitops-webhook/tls/tls.key"
    )]
    tls_key: PathBuf,
    /// The HTTPS address for POST /validate.
    #[arg(long, env = "GITOPS_WEBHOOK_LISTEN", default_value = "0.0.0.0:8443")]
    listen: SocketAddr,
    /// The plain-HTTP address for /livez, /readyz and /metrics.
    #[arg(
        long,
        env = "GITOPS_WEBHOOK_ADMIN_LISTEN",
        default_value = "0.0.0.0:8080"
    )]
    admin_listen: SocketAddr,
    /// The kubeconfig for reading a scale's parent from the API server; without it the
    /// in-cluster service account (or KUBECONFIG) is used.
    #[arg(long, env = "GITOPS_WEBHOOK_KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// How long a client has to complete the TLS handshake (`500ms`, `10s`, `1m`); a client
    /// that connects and stays silent is disconnected after it.
    #[arg(long, env = "GITOPS_WEBHOOK_TLS_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = timeout)]
    tls_handshake_timeout: Duration,
    /// How long a client has to send a request's headers; an idle keep-alive connection is
    /// closed after it too.
    #[arg(long, env = "GITOPS_WEBHOOK_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = timeout)]
    header_read_timeout: Duration,
}

/// A positive duration in the configuration file's grammar.
fn timeout(text: &str) -> Result<Duration, String> {
    match parse_duration(text) {
        Ok(duration) if !duration.is_zero() => Ok(duration),
        Ok(_) => Err("must be more than zero".to_owned()),
        Err(error) => Err(error.to_string()),
    }
}

/// The flag that makes this binary evaluate one Jsonnet render and exit (the server starts itself
/// so, see [`gitops_shared::render::jsonnet_child`]); not a user-facing option.
const JSONNET_CHILD_FLAG: &str = "--jsonnet-child";

/// How long an isolated Jsonnet render may run before its child is killed.
const JSONNET_TIMEOUT: Duration = Duration::from_secs(30);

fn main() -> anyhow::Result<()> {
    if std::env::args().nth(1).as_deref() == Some(JSONNET_CHILD_FLAG) {
        std::process::exit(gitops_shared::render::jsonnet_child::serve_child());
    }
    // Jsonnet from a commit is evaluated in a child: a runaway evaluation that overflows the
    // native stack aborts the child, not the server.
    // Without a path to this binary (no /proc), Jsonnet is evaluated in-process, as the plugin
    // does; the server says so once it logs.
    let isolated = std::env::current_exe().map(|program| {
        gitops_shared::render::jsonnet_child::isolate_in(
            gitops_shared::render::jsonnet_child::Isolation {
                program,
                args: vec![JSONNET_CHILD_FLAG.to_owned()],
                timeout: JSONNET_TIMEOUT,
            },
        )
    });
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve(isolated.err()))
}

async fn serve(not_isolated: Option<std::io::Error>) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    if let Some(error) = not_isolated {
        tracing::warn!(%error, "Jsonnet is evaluated in this process: the path of this binary is unknown");
    }
    let args = Args::parse();
    run(ServeOptions {
        config: args.config,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
        listen: args.listen,
        admin_listen: args.admin_listen,
        kubeconfig: args.kubeconfig,
        limits: ConnectionLimits {
            tls_handshake: args.tls_handshake_timeout,
            header_read: args.header_read_timeout,
        },
    })
    .await?;
    Ok(())
}
