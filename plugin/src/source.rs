//! Where an app comes from: which repository, which commit, which app. Shared by every command
//! that starts from Git.

use std::path::PathBuf;

use clap::Args;
use git2::Oid;
use gitops_shared::appfile::{App, AppFile, AppFileError};
use gitops_shared::git::{Credentials, GitError, GitRepo};
use gitops_shared::render::load_app_file;

/// The flags that pick a repository, a revision and an app.
#[derive(Debug, Clone, Args)]
pub struct SourceArgs {
    /// App name from the repository's gitops.yaml. Optional with --path, or when gitops.yaml lists
    /// exactly one app.
    pub app: Option<String>,
    /// Repository: a local path, or a URL (https://, ssh://, git://, file://, user@host:path) that is
    /// mirrored into the cache folder. Default: the repository containing the current folder.
    #[arg(long, env = "GITOPS_REPO")]
    pub repo: Option<String>,
    /// Branch, tag, or commit (short or full SHA) to render. Default: HEAD.
    #[arg(long, default_value = "HEAD")]
    pub revision: String,
    /// Folder of the app in the repository, for a folder with no gitops.yaml entry.
    #[arg(long)]
    pub path: Option<String>,
    /// Where mirrors of remote repositories are kept.
    #[arg(long, env = "GITOPS_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
}

/// A resolved source: the repository opened, the commit found, the app chosen.
pub struct ResolvedSource {
    /// The repository.
    pub repo: GitRepo,
    /// The commit the revision names.
    pub commit: Oid,
    /// The app to render.
    pub app: App,
}

/// Why a source could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The current folder is not in a repository and no --repo was given.
    #[error("no --repo given and the current folder is not inside a Git repository")]
    NoRepository(#[source] GitError),
    /// Every app was asked for, and the commit lists none.
    #[error("every app of gitops.yaml was asked for, but {revision} has no gitops.yaml; name a folder with --path")]
    NoAppFile {
        /// The revision as given.
        revision: String,
    },
    /// Opening the repository or resolving the revision failed.
    #[error(transparent)]
    Git(#[from] GitError),
    /// Reading the app file or choosing the app from it failed.
    #[error(transparent)]
    AppFile(#[from] AppFileError),
}

impl SourceArgs {
    /// Opens the repository, resolves the revision and selects the app.
    pub fn resolve(&self) -> Result<ResolvedSource, SourceError> {
        let repo = match &self.repo {
            Some(spec) => GitRepo::open(spec, &self.cache_dir(), &credentials_from_env())?,
            None => {
                GitRepo::open_local(std::path::Path::new(".")).map_err(SourceError::NoRepository)?
            }
        };
        let commit = repo.resolve(&self.revision)?;
        let app_file: Option<AppFile> = load_app_file(&repo, commit)?;
        let app = AppFile::select(app_file.as_ref(), self.app.as_deref(), self.path.as_deref())?;
        Ok(ResolvedSource { repo, commit, app })
    }

    /// Every app of the commit's gitops.yaml, in name order, each with its own handle on the
    /// repository (a remote one is fetched once, for the first).
    pub fn resolve_all(&self) -> Result<Vec<ResolvedSource>, SourceError> {
        let first = self.open(true)?;
        let commit = first.resolve(&self.revision)?;
        let Some(app_file) = load_app_file(&first, commit)? else {
            return Err(SourceError::NoAppFile {
                revision: self.revision.clone(),
            });
        };
        let mut out = Vec::with_capacity(app_file.apps.len());
        let mut first = Some(first);
        for app in app_file.apps.into_values() {
            let repo = match first.take() {
                Some(repo) => repo,
                None => self.open(false)?,
            };
            out.push(ResolvedSource { repo, commit, app });
        }
        Ok(out)
    }

    /// Opens the repository; a remote one is fetched only when `fetch`.
    fn open(&self, fetch: bool) -> Result<GitRepo, SourceError> {
        Ok(match &self.repo {
            Some(spec) if fetch || !gitops_shared::git::is_remote(spec) => {
                GitRepo::open(spec, &self.cache_dir(), &credentials_from_env())?
            }
            Some(spec) => GitRepo::mirror(spec, &self.cache_dir())?,
            None => {
                GitRepo::open_local(std::path::Path::new(".")).map_err(SourceError::NoRepository)?
            }
        })
    }

    fn cache_dir(&self) -> PathBuf {
        if let Some(dir) = &self.cache_dir {
            return dir.clone();
        }
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(std::env::temp_dir);
        base.join("kubectl-gitops").join("repos")
    }
}

/// Credentials for remote repositories from `GITOPS_GIT_TOKEN`, `GITOPS_GIT_USERNAME` and
/// `GITOPS_GIT_SSH_KEY`, so secrets never appear on a command line.
fn credentials_from_env() -> Credentials {
    Credentials {
        username: std::env::var("GITOPS_GIT_USERNAME").ok(),
        token: std::env::var("GITOPS_GIT_TOKEN").ok(),
        ssh_key: std::env::var_os("GITOPS_GIT_SSH_KEY").map(PathBuf::from),
    }
}
