//! Git repositories written with the `git` program, isolated from the user's and the system's
//! Git configuration.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `git args` in `dir` with a fixed author and no user or system configuration; its trimmed
/// stdout. Panics with git's stderr when git fails.
pub fn git(dir: &Path, args: &[&str]) -> String {
    git_with_env(dir, args, &[])
}

/// [`git`] with more environment variables, e.g. `GIT_COMMITTER_DATE`.
pub fn git_with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let output = Command::new("git")
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "test")
        .env("GIT_AUTHOR_EMAIL", "test@example.invalid")
        .env("GIT_COMMITTER_NAME", "test")
        .env("GIT_COMMITTER_EMAIL", "test@example.invalid")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap_or_else(|e| panic!("the git program runs: {e}"));
    assert!(
        output.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A Git repository with a working tree on branch `main`.
pub struct Repo {
    /// The working tree.
    pub path: PathBuf,
    /// The temporary folder holding it, when [`Repo::temporary`] made it.
    _dir: Option<tempfile::TempDir>,
}

impl Repo {
    /// `git init -b main` in `path` (created when missing).
    pub fn init(path: &Path) -> Repo {
        std::fs::create_dir_all(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        git(path, &["init", "-q", "-b", "main"]);
        Repo {
            path: path.to_path_buf(),
            _dir: None,
        }
    }

    /// A repository in a temporary folder of its own, removed on drop.
    pub fn temporary() -> Repo {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("a temporary folder: {e}"));
        let mut repo = Repo::init(dir.path());
        repo._dir = Some(dir);
        repo
    }

    /// Runs git in the repository; its trimmed stdout.
    pub fn git(&self, args: &[&str]) -> String {
        git(&self.path, args)
    }

    /// Writes a file (creating folders).
    pub fn write(&self, file: &str, text: &str) {
        let path = self.path.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("create {}: {e}", parent.display()));
        }
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// Removes a file.
    pub fn remove(&self, file: &str) {
        let path = self.path.join(file);
        std::fs::remove_file(&path).unwrap_or_else(|e| panic!("remove {}: {e}", path.display()));
    }

    /// Commits everything; the new commit's full SHA.
    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }

    /// Commits everything with `date` (a Git date such as `2026-01-01T00:00:00Z`) as author and
    /// committer date; the new commit's full SHA. The SHA then depends only on the content and
    /// the history, so golden tests can pin what a render stamps.
    pub fn commit_dated(&self, message: &str, date: &str) -> String {
        self.git(&["add", "-A"]);
        let dates = [("GIT_AUTHOR_DATE", date), ("GIT_COMMITTER_DATE", date)];
        git_with_env(&self.path, &["commit", "-q", "-m", message], &dates);
        self.git(&["rev-parse", "HEAD"])
    }

    /// The path as a string, for `--repo`.
    pub fn spec(&self) -> String {
        self.path.display().to_string()
    }
}
