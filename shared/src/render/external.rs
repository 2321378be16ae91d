//! Renderers that run another program: `kubectl kustomize` (or `kustomize build`) and
//! `helm template`. The commit's tree is exported to a temporary folder first, so the program sees
//! exactly the commit (bases in `../` included), never a working tree.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::appfile::App;
use crate::git::FileTree;
use crate::object::RenderedObject;
use crate::render::plain::{parse_documents, ParseError};

/// Environment variable naming the kustomize program (`kustomize` or `kubectl`).
pub const KUSTOMIZE_ENV: &str = "GITOPS_KUSTOMIZE";
/// Environment variable naming the helm program.
pub const HELM_ENV: &str = "GITOPS_HELM";

/// What can go wrong rendering with `kustomize` or `helm`.
#[derive(Debug, thiserror::Error)]
pub enum ExternalError {
    /// The renderer's program is not installed.
    #[error("the {renderer} renderer needs the program {program:?}, which is not on PATH; install it or set {env_var} to its path")]
    MissingProgram {
        /// The program looked for.
        program: String,
        /// The renderer that needs it.
        renderer: &'static str,
        /// The environment variable that overrides the program's path.
        env_var: &'static str,
    },
    /// A chart names a dependency that is not vendored under its `charts/` folder.
    #[error("{chart_file}: dependency {name:?}{} is not in {}: run `helm dependency build {}` and commit it (the webhook renders without network, so the plugin does too)", origin.as_deref().map(|o| format!(" ({o})")).unwrap_or_default(), if chart_dir.is_empty() { "charts/".to_owned() } else { format!("{chart_dir}/charts/") }, if chart_dir.is_empty() { "." } else { chart_dir.as_str() })]
    HelmDependencyMissing {
        /// `Chart.yaml` (or `requirements.yaml`) that names it, relative to the repository root.
        chart_file: String,
        /// The chart folder, relative to the repository root (empty for the root).
        chart_dir: String,
        /// The dependency's name.
        name: String,
        /// Its version and repository, as the file gives them.
        origin: Option<String>,
    },
    /// The commit's tree could not be written to a temporary folder for the program.
    #[error("{what}")]
    Export {
        /// What was being done.
        what: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The program could not be started.
    #[error("cannot run {}", program.display())]
    Start {
        /// The program.
        program: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The program ran and failed.
    #[error("{program} failed on {path} ({status}): {stderr}")]
    ProgramFailed {
        /// The command that ran.
        program: String,
        /// The app path it rendered.
        path: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// `Chart.yaml` or `requirements.yaml`, or the program's output, is not valid YAML.
    #[error(transparent)]
    Parse(#[from] ParseError),
}

/// Result with [`ExternalError`].
type Result<T, E = ExternalError> = std::result::Result<T, E>;

/// Finds `name` on `PATH` (or takes it as is when it contains a slash and exists).
pub fn find_program(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let path = PathBuf::from(name);
        return path.is_file().then_some(path);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// Runs kustomize on the app folder.
pub fn kustomize(tree: &FileTree, path: &str) -> Result<Vec<RenderedObject>> {
    let (program, mut args) = match std::env::var(KUSTOMIZE_ENV) {
        Ok(program) if program.ends_with("kubectl") => (program, vec!["kustomize".to_owned()]),
        Ok(program) => (program, vec!["build".to_owned()]),
        Err(_) => {
            if find_program("kustomize").is_some() {
                ("kustomize".to_owned(), vec!["build".to_owned()])
            } else {
                ("kubectl".to_owned(), vec!["kustomize".to_owned()])
            }
        }
    };
    let program_path = find_program(&program).ok_or_else(|| ExternalError::MissingProgram {
        program: program.clone(),
        renderer: "kustomize",
        env_var: KUSTOMIZE_ENV,
    })?;
    let dir = export(tree)?;
    args.push(dir.path().join(path).display().to_string());
    let output = run(&program_path, &args, dir.path(), path)?;
    Ok(parse_documents(
        &format!("{path} (kustomize output)"),
        &output,
        false,
    )?)
}

/// Runs `helm template <app> <folder> --namespace <ns> --include-crds -f <values>…`.
/// Dependencies named by the chart must be vendored in the commit ([`super::chart_dependencies`]).
pub fn helm(tree: &FileTree, app: &App, namespace: &str) -> Result<Vec<RenderedObject>> {
    super::chart_dependencies::check(tree, &app.path)?;
    let program = std::env::var(HELM_ENV).unwrap_or_else(|_| "helm".to_owned());
    let program_path = find_program(&program).ok_or_else(|| ExternalError::MissingProgram {
        program: program.clone(),
        renderer: "helm",
        env_var: HELM_ENV,
    })?;
    let dir = export(tree)?;
    let mut args = vec![
        "template".to_owned(),
        app.name.clone(),
        dir.path().join(&app.path).display().to_string(),
        "--namespace".to_owned(),
        namespace.to_owned(),
        "--include-crds".to_owned(),
    ];
    for values in &app.values {
        args.push("--values".to_owned());
        args.push(dir.path().join(values).display().to_string());
    }
    let output = run(&program_path, &args, dir.path(), &app.path)?;
    Ok(parse_documents(
        &format!("{} (helm output)", app.path),
        &output,
        false,
    )?)
}

fn run(program: &Path, args: &[String], cwd: &Path, app_path: &str) -> Result<Vec<u8>> {
    tracing::debug!(program = %program.display(), ?args, "running renderer");
    let output = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .output()
        .map_err(|source| ExternalError::Start {
            program: program.to_owned(),
            source,
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        // Temporary folder names mean nothing to the reader.
        let stderr = stderr
            .replace(&format!("{}/", cwd.display()), "")
            .trim()
            .to_owned();
        return Err(ExternalError::ProgramFailed {
            program: format!(
                "{} {}",
                program.display(),
                args.first().map(String::as_str).unwrap_or_default()
            ),
            path: app_path.to_owned(),
            status: output.status.to_string(),
            stderr,
        });
    }
    Ok(output.stdout)
}

/// Writes the tree to a fresh temporary folder.
fn export(tree: &FileTree) -> Result<tempfile::TempDir> {
    let io = |what: String| move |source| ExternalError::Export { what, source };
    let dir = tempfile::Builder::new()
        .prefix("gitops-render-")
        .tempdir()
        .map_err(io("cannot create a temporary folder".to_owned()))?;
    for (name, bytes) in tree {
        let target = dir.path().join(name);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(io(format!("cannot create {}", parent.display())))?;
        }
        std::fs::write(&target, bytes).map_err(io(format!("cannot write {}", target.display())))?;
    }
    Ok(dir)
}
