//! Command-line parsing and dispatch. Errors print a headline and each cause once under
//! "Caused by:", and map to the documented exit codes in [`crate::exit`].

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::exit;
use crate::render_cmd::RenderArgs;

#[path = "webhook_cmd.rs"]
pub mod webhook_cmd;

/// `kubectl gitops`: Git is the only way anything changes in the cluster.
#[derive(Debug, Parser)]
#[command(
    name = "kubectl-gitops",
    bin_name = "kubectl gitops",
    version,
    about = "Render apps from Git with provenance, sync them to the cluster, and show their sync and health status",
    after_help = "Examples:\n  kubectl gitops render --repo . --path examples/plain-app\n  kubectl gitops render shop --repo https://git.example/shop.git --revision v1.2.0 -o json\n\nExit codes: 0 ok, 1 difference or failure found, 2 error."
)]
pub struct Cli {
    /// Log more to stderr (-v debug, -vv trace). RUST_LOG overrides it.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// When to colour output: auto (a terminal, unless NO_COLOR is set), always, never.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "auto",
        value_name = "WHEN"
    )]
    pub color: crate::colour::ColorMode,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The plugin's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the objects an app renders to at a commit, stamped with provenance.
    Render(RenderArgs),
    /// Server-side-apply an app from Git, prune what Git dropped, optionally wait for health.
    Sync(crate::sync_cmd::SyncArgs),
    /// Show the semantic difference between Git and the cluster (exit 1 when they differ).
    Diff(crate::diff_cmd::DiffArgs),
    /// Show the app's revision and each object's sync status and health.
    Status(crate::status_cmd::StatusArgs),
    /// Serve the all-apps view, each app's tree and a Sync button as a web page on 127.0.0.1.
    Ui(crate::ui::UiArgs),
    /// Print a shell completion script.
    Completion(crate::completion_cmd::CompletionArgs),
    /// Answer kubectl's plugin completion protocol (used by kubectl_complete-gitops).
    #[command(name = "__complete", hide = true)]
    Complete(crate::completion_cmd::CompleteArgs),
    /// Install the admission webhook: print its manifests with a fresh certificate.
    Webhook(webhook_cmd::WebhookArgs),
    /// Print the plugin's version.
    #[command(after_help = "Examples:\n  kubectl gitops version")]
    Version,
}

/// Parses the command line, runs the command and returns its exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    crate::colour::set_mode(cli.color);
    let result = match cli.command {
        Command::Render(args) => crate::render_cmd::run(&args),
        Command::Sync(args) => crate::sync_cmd::run(&args),
        Command::Diff(args) => crate::diff_cmd::run(&args),
        Command::Status(args) => crate::status_cmd::run(&args),
        Command::Ui(args) => crate::ui::run(&args),
        Command::Completion(args) => crate::completion_cmd::run(&args),
        Command::Complete(args) => crate::completion_cmd::run_complete(&args),
        Command::Webhook(args) => webhook_cmd::run(&args),
        Command::Version => {
            println!("kubectl-gitops {}", env!("CARGO_PKG_VERSION"));
            Ok(exit::OK)
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            report(&error);
            ExitCode::from(exit::ERROR)
        }
    }
}

/// Prints an error as a headline, then each distinct cause once.
pub fn report(error: &anyhow::Error) {
    eprintln!("error: {error}");
    let mut seen = error.to_string();
    let causes: Vec<String> = error
        .chain()
        .skip(1)
        .map(ToString::to_string)
        .filter(|cause| {
            let new = !seen.contains(cause.as_str());
            seen.push_str(cause);
            new
        })
        .collect();
    if !causes.is_empty() {
        eprintln!("\nCaused by:");
        for cause in causes {
            eprintln!("    {cause}");
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .try_init();
}
