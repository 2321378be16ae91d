//! The crate's one error type. Each variant is named after the step that failed, and its message
//! names what a person needs to fix it: the file, the document, the object and the field.

use std::path::PathBuf;

use crate::object::{ObjectKey, Source};

/// Everything that can go wrong in `gitops-shared`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A local repository could not be opened.
    #[error("cannot open Git repository at {path}")]
    OpenRepository {
        /// The path given.
        path: PathBuf,
        /// What libgit2 said.
        #[source]
        source: git2::Error,
    },
    /// The bare mirror of a remote repository could not be created or opened.
    #[error("cannot prepare the local mirror of {url} in {dir}")]
    PrepareMirror {
        /// The remote URL.
        url: String,
        /// The mirror's folder.
        dir: PathBuf,
        /// What libgit2 said.
        #[source]
        source: git2::Error,
    },
    /// Fetching from a remote failed.
    #[error("cannot fetch {url}")]
    Fetch {
        /// The remote URL.
        url: String,
        /// What libgit2 said.
        #[source]
        source: git2::Error,
    },
    /// A revision (branch, tag, SHA) does not name a commit in the repository.
    #[error("unknown revision {revision:?} in {repo}: no branch, tag or commit has that name")]
    UnknownRevision {
        /// The revision asked for.
        revision: String,
        /// The repository (path or URL).
        repo: String,
    },
    /// A path does not exist in the commit.
    #[error("path {path:?} does not exist in commit {commit}")]
    PathNotFound {
        /// The path asked for, relative to the repository root.
        path: String,
        /// The commit searched.
        commit: String,
    },
    /// A path that must stay inside the repository points outside it or is otherwise malformed.
    #[error("path {path:?} is not allowed: {reason}")]
    InvalidPath {
        /// The offending path.
        path: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// Reading objects (trees, blobs, commits) from the repository failed.
    #[error("cannot read {what} from the repository")]
    ReadRepository {
        /// What was being read.
        what: String,
        /// What libgit2 said.
        #[source]
        source: git2::Error,
    },
    /// The app file is not valid YAML or does not have the expected shape.
    #[error("{file}: {message}")]
    AppFile {
        /// The app file, relative to the repository root.
        file: String,
        /// What is wrong, naming the key (and line where known).
        message: String,
    },
    /// The app asked for is not listed in the app file.
    #[error("{file}: no app named {app:?}; the apps are: {}", known.join(", "))]
    UnknownApp {
        /// The app file.
        file: String,
        /// The app asked for.
        app: String,
        /// The apps the file lists.
        known: Vec<String>,
    },
    /// No app was named and the choice is ambiguous.
    #[error("{0}")]
    NoAppSelected(String),
    /// A manifest file is not valid YAML or JSON.
    #[error("{file}: document {document}: invalid YAML{}: {message}", line.map(|l| format!(" at line {l}")).unwrap_or_default())]
    ParseManifest {
        /// The file, relative to the repository root (or the template that produced it).
        file: String,
        /// The 1-based index of the document in the file.
        document: usize,
        /// The 1-based line in the file, where the parser knows it.
        line: Option<usize>,
        /// The parser's message.
        message: String,
    },
    /// A document is valid YAML but not a Kubernetes object.
    #[error("{source_ref}: {field} {reason}")]
    InvalidObject {
        /// Where the document came from.
        source_ref: Source,
        /// The field at fault (`kind`, `metadata.name`, ...).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Two documents declare the same object.
    #[error("{key} is declared twice: in {first} and in {second}")]
    DuplicateObject {
        /// The object declared twice (boxed: it is large and errors should stay small).
        key: Box<ObjectKey>,
        /// The first declaration.
        first: Source,
        /// The second declaration.
        second: Source,
    },
    /// A values file named by the app does not exist in the commit.
    #[error("values file {file:?} (listed for app {app:?}) does not exist in commit {commit}")]
    ValuesFileMissing {
        /// The values file, relative to the repository root.
        file: String,
        /// The app that lists it.
        app: String,
        /// The commit searched.
        commit: String,
    },
    /// A values file is not a YAML mapping.
    #[error("values file {file}: {message}")]
    ValuesFile {
        /// The values file, relative to the repository root.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// A Tera template failed to parse or render.
    #[error("template {template}{}: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Template {
        /// The template, relative to the repository root.
        template: String,
        /// The 1-based line of the failing expression, where it can be found.
        line: Option<usize>,
        /// What Tera said, all causes joined.
        message: String,
    },
    /// An external renderer (`kubectl kustomize`, `helm template`) is not installed.
    #[error("the {renderer} renderer needs the program {program:?}, which is not on PATH; install it or set {env_var} to its path")]
    MissingProgram {
        /// The program looked for.
        program: String,
        /// The renderer that needs it.
        renderer: &'static str,
        /// The environment variable that overrides the program's path.
        env_var: &'static str,
    },
    /// An external renderer ran and failed.
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
    /// The jsonnet renderer failed.
    #[error(transparent)]
    Jsonnet(#[from] crate::render::JsonnetError),
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
    /// A render produced no objects and the caller did not allow it (boxed: errors stay small).
    #[error(transparent)]
    EmptyRender(Box<crate::render::EmptyRender>),
    /// A local file operation failed (exporting a tree for an external renderer).
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Builds an [`Error::ReadRepository`] for `what`.
    pub(crate) fn read(what: impl Into<String>) -> impl FnOnce(git2::Error) -> Error {
        let what = what.into();
        move |source| Error::ReadRepository { what, source }
    }
}
