//! `kubectl gitops render`: print what an app renders to at a commit, with provenance.

use std::io::Write;

use anyhow::Context as _;
use clap::Args;
use gitops_shared::render::{render_app, RenderOptions};
use gitops_shared::scope::BuiltinScope;

use crate::exit;
use crate::output::{write_objects, Format};
use crate::source::SourceArgs;

/// Flags of `render`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  # A folder of plain YAML in the repository of the current folder, at HEAD\n  kubectl gitops render --path examples/plain-app\n\n  # An app from gitops.yaml, at a tag, as JSON\n  kubectl gitops render shop --repo . --revision v1.0.0 -o json\n\n  # A remote repository (mirrored under ~/.cache/kubectl-gitops)\n  kubectl gitops render --repo https://github.com/org/deploy.git --path apps/web --revision main"
)]
pub struct RenderArgs {
    /// Which repository, revision and app.
    #[command(flatten)]
    pub source: SourceArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "yaml")]
    pub output: Format,
    /// Namespace for a folder app's namespaced objects that name none (apps in gitops.yaml take
    /// their namespace from there). Default: default.
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Print an app that renders no objects (else an error: such a render is most often a
    /// mistake, like .jsonnet files under the plain renderer).
    #[arg(long)]
    pub allow_empty: bool,
}

/// Runs `render`.
pub fn run(args: &RenderArgs) -> anyhow::Result<u8> {
    let source = args.source.resolve()?;
    let options = RenderOptions {
        scope: &BuiltinScope,
        folder_namespace: args.namespace.as_deref(),
    };
    let rendered = render_app(&source.repo, source.commit, &source.app, &options)?;
    rendered.ensure_not_empty(args.allow_empty)?;
    tracing::info!(app = %rendered.app.name, commit = %source.commit, objects = rendered.objects.len(), "rendered");
    let objects: Vec<_> = rendered.objects.iter().map(|o| &o.object).collect();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    write_objects(&mut out, &objects, args.output).context("cannot write to stdout")?;
    out.flush().context("cannot write to stdout")?;
    Ok(exit::OK)
}
