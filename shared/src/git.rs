//! Git access: open a local repository or keep a bare mirror of a remote one, fetch, resolve
//! revisions, and read folders straight from a commit's tree.
//!
//! Rendering never touches a working tree: what a commit says is read from the object database,
//! so the plugin renders exactly what the webhook will later verify, whatever is checked out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use git2::{Oid, Repository};
use sha2::{Digest as _, Sha256};

/// What can go wrong opening, fetching or reading a repository. Each variant is the step that
/// failed; paths and revisions are named as the user gave them, so the message says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// A local repository could not be opened.
    #[error("cannot open Git repository at {path}")]
    OpenRepository {
        /// The path given.
        path: PathBuf,
        /// What libgit2 said.
        #[source]
        source: git2::Error,
    },
    /// The folder for a bare mirror could not be created.
    #[error("cannot create mirror folder {}", dir.display())]
    CreateMirrorFolder {
        /// The mirror's folder.
        dir: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
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
}

impl GitError {
    /// Builds a [`GitError::ReadRepository`] for `what`.
    fn read(what: impl Into<String>) -> impl FnOnce(git2::Error) -> GitError {
        let what = what.into();
        move |source| GitError::ReadRepository { what, source }
    }
}

/// Result with [`GitError`].
type Result<T, E = GitError> = std::result::Result<T, E>;

/// Files of one folder of a commit, keyed by their path relative to the repository root, in byte
/// order of that path (so every walk over it is deterministic).
pub type FileTree = BTreeMap<String, Vec<u8>>;

/// How to authenticate to a remote. Empty means anonymous (or the SSH agent for ssh URLs).
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// User name for HTTPS tokens and SSH keys; defaults to the URL's user or `git`.
    pub username: Option<String>,
    /// An HTTPS token (GitHub, GitLab, Gitea personal access or deploy token).
    pub token: Option<String>,
    /// A private SSH key file.
    pub ssh_key: Option<PathBuf>,
}

/// A repository to read apps from: either a local repository (with or without a working tree) or
/// a bare mirror of a remote one kept in a cache folder.
pub struct GitRepo {
    repo: Repository,
    /// Where it came from, as the user named it (path or URL), for messages.
    location: String,
    /// The URL recorded in provenance annotations.
    source_url: String,
    /// Set for mirrors: the remote to fetch from.
    remote_url: Option<String>,
}

impl std::fmt::Debug for GitRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitRepo")
            .field("location", &self.location)
            .field("source_url", &self.source_url)
            .finish_non_exhaustive()
    }
}

/// True when `spec` names a remote (`scheme://…` or scp-like `user@host:path`) rather than a
/// local path.
pub fn is_remote(spec: &str) -> bool {
    if spec.starts_with("file://") {
        return true;
    }
    if spec.contains("://") {
        return true;
    }
    // scp-like syntax: user@host:path, with no slash before the colon.
    match (spec.find('@'), spec.find(':')) {
        (Some(at), Some(colon)) => at < colon && !spec[..colon].contains('/'),
        _ => false,
    }
}

impl GitRepo {
    /// Opens `spec`: a local path is opened in place (searching upwards for `.git`), a URL is
    /// mirrored into `cache_dir` and fetched.
    pub fn open(spec: &str, cache_dir: &Path, credentials: &Credentials) -> Result<GitRepo> {
        if is_remote(spec) {
            let repo = GitRepo::mirror(spec, cache_dir)?;
            repo.fetch(credentials)?;
            Ok(repo)
        } else {
            GitRepo::open_local(Path::new(spec))
        }
    }

    /// Opens the local repository containing `path`.
    pub fn open_local(path: &Path) -> Result<GitRepo> {
        let repo = Repository::discover(path).map_err(|source| GitError::OpenRepository {
            path: path.to_owned(),
            source,
        })?;
        let origin = repo
            .find_remote("origin")
            .ok()
            .and_then(|remote| remote.url().map(str::to_owned));
        let source_url = match origin {
            Some(url) => url,
            None => {
                let dir = repo.workdir().unwrap_or_else(|| repo.path());
                let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
                format!("file://{}", dir.display().to_string().trim_end_matches('/'))
            }
        };
        Ok(GitRepo {
            repo,
            location: path.display().to_string(),
            source_url,
            remote_url: None,
        })
    }

    /// Opens (creating when needed) the bare mirror of `url` under `cache_dir`, without fetching.
    pub fn mirror(url: &str, cache_dir: &Path) -> Result<GitRepo> {
        let dir = cache_dir.join(mirror_dir_name(url));
        let prepare = |source| GitError::PrepareMirror {
            url: url.to_owned(),
            dir: dir.clone(),
            source,
        };
        let repo = match Repository::open_bare(&dir) {
            Ok(repo) => repo,
            Err(_) => {
                std::fs::create_dir_all(&dir).map_err(|source| GitError::CreateMirrorFolder {
                    dir: dir.clone(),
                    source,
                })?;
                Repository::init_bare(&dir).map_err(prepare)?
            }
        };
        Ok(GitRepo {
            repo,
            location: url.to_owned(),
            source_url: url.to_owned(),
            remote_url: Some(url.to_owned()),
        })
    }

    /// Fetches all branches and tags of a mirror (and its default branch as `HEAD`). A local
    /// repository is not fetched: it is read as it is.
    pub fn fetch(&self, credentials: &Credentials) -> Result<()> {
        let Some(url) = &self.remote_url else {
            return Ok(());
        };
        let fetch_error = |source| GitError::Fetch {
            url: url.clone(),
            source,
        };
        let mut remote = self.repo.remote_anonymous(url).map_err(fetch_error)?;
        let refspecs = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"];
        let mut options = git2::FetchOptions::new();
        options.remote_callbacks(callbacks(credentials));
        options.download_tags(git2::AutotagOption::None);
        options.prune(git2::FetchPrune::On);
        tracing::debug!(%url, "fetching");
        remote
            .fetch(&refspecs, Some(&mut options), None)
            .map_err(fetch_error)?;
        // Point HEAD at the remote's default branch, so `HEAD` means what it means upstream.
        if let Ok(default_branch) = remote.default_branch() {
            if let Some(name) = default_branch.as_str() {
                if self.repo.find_reference(name).is_ok() {
                    self.repo
                        .set_head(name)
                        .map_err(GitError::read(format!("HEAD of {url}")))?;
                }
            }
        }
        Ok(())
    }

    /// The repository as the user named it (path or URL).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The URL that provenance annotations record: the remote's URL for a mirror, `origin`'s URL
    /// for a local clone, else `file://` and the repository's absolute path.
    pub fn source_url(&self) -> &str {
        &self.source_url
    }

    /// The folder holding the repository's object database (`.git`, or the bare mirror).
    pub fn git_dir(&self) -> &Path {
        self.repo.path()
    }

    /// The underlying libgit2 handle, for callers that need more than this API offers.
    pub fn raw(&self) -> &Repository {
        &self.repo
    }

    /// Resolves a branch, tag, short or full SHA, `HEAD` or any rev-parse expression to a commit.
    pub fn resolve(&self, revision: &str) -> Result<Oid> {
        let unknown = || GitError::UnknownRevision {
            revision: revision.to_owned(),
            repo: self.location.clone(),
        };
        if revision.is_empty() || revision.starts_with('-') {
            return Err(unknown());
        }
        let candidates = [
            revision.to_owned(),
            format!("refs/remotes/origin/{revision}"),
        ];
        for candidate in &candidates {
            if let Ok(object) = self.repo.revparse_single(candidate) {
                if let Ok(commit) = object.peel_to_commit() {
                    return Ok(commit.id());
                }
            }
        }
        Err(unknown())
    }

    /// True when the commit is in the object database.
    pub fn has_commit(&self, commit: Oid) -> bool {
        self.repo.find_commit(commit).is_ok()
    }

    /// True when `ancestor` is `descendant` or one of its ancestors.
    pub fn is_ancestor(&self, ancestor: Oid, descendant: Oid) -> Result<bool> {
        if ancestor == descendant {
            return Ok(true);
        }
        self.repo
            .graph_descendant_of(descendant, ancestor)
            .map_err(GitError::read(format!(
                "history between {ancestor} and {descendant}"
            )))
    }

    /// How many commits `local` is ahead of and behind `upstream`.
    pub fn ahead_behind(&self, local: Oid, upstream: Oid) -> Result<(usize, usize)> {
        self.repo
            .graph_ahead_behind(local, upstream)
            .map_err(GitError::read(format!(
                "history between {local} and {upstream}"
            )))
    }

    /// Reads one file of a commit; `None` when the path does not exist or is not a file.
    pub fn read_file(&self, commit: Oid, path: &str) -> Result<Option<Vec<u8>>> {
        let path = normalize_path(path)?;
        let tree = self.commit_tree(commit)?;
        let entry = match tree.get_path(Path::new(&path)) {
            Ok(entry) => entry,
            Err(_) => return Ok(None),
        };
        if entry.kind() != Some(git2::ObjectType::Blob) {
            return Ok(None);
        }
        let blob = self
            .repo
            .find_blob(entry.id())
            .map_err(GitError::read(format!("{path} at {commit}")))?;
        Ok(Some(blob.content().to_vec()))
    }

    /// Reads every file below `path` (the whole commit for `""` or `.`), keyed by path relative to
    /// the repository root. Symbolic links and submodules are skipped: they point outside what
    /// the commit itself says.
    pub fn read_tree(&self, commit: Oid, path: &str) -> Result<FileTree> {
        let path = normalize_path(path)?;
        let root = self.commit_tree(commit)?;
        let tree = if path.is_empty() {
            root
        } else {
            let not_found = || GitError::PathNotFound {
                path: path.clone(),
                commit: commit.to_string(),
            };
            let entry = root.get_path(Path::new(&path)).map_err(|_| not_found())?;
            match entry.kind() {
                Some(git2::ObjectType::Tree) => self
                    .repo
                    .find_tree(entry.id())
                    .map_err(GitError::read(format!("{path} at {commit}")))?,
                Some(git2::ObjectType::Blob) => {
                    // A single file is a folder of one.
                    let blob = self
                        .repo
                        .find_blob(entry.id())
                        .map_err(GitError::read(format!("{path} at {commit}")))?;
                    return Ok(FileTree::from([(path, blob.content().to_vec())]));
                }
                _ => return Err(not_found()),
            }
        };
        let prefix = if path.is_empty() {
            String::new()
        } else {
            format!("{path}/")
        };
        let mut blobs = Vec::new();
        tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
            if entry.kind() == Some(git2::ObjectType::Blob) && entry.filemode() != 0o120000 {
                if let Some(name) = entry.name() {
                    blobs.push((format!("{prefix}{dir}{name}"), entry.id()));
                }
            }
            git2::TreeWalkResult::Ok
        })
        .map_err(GitError::read(format!("tree {path} at {commit}")))?;
        let mut files = FileTree::new();
        for (name, id) in blobs {
            let blob = self
                .repo
                .find_blob(id)
                .map_err(GitError::read(format!("{name} at {commit}")))?;
            files.insert(name, blob.content().to_vec());
        }
        Ok(files)
    }

    fn commit_tree(&self, commit: Oid) -> Result<git2::Tree<'_>> {
        self.repo
            .find_commit(commit)
            .and_then(|c| c.tree())
            .map_err(|_| GitError::UnknownRevision {
                revision: commit.to_string(),
                repo: self.location.clone(),
            })
    }
}

/// Normalises a repository-relative path: strips `./` and trailing `/`, resolves `..` inside the
/// repository, and refuses absolute paths and paths that climb out of the repository.
pub fn normalize_path(path: &str) -> Result<String> {
    if path.starts_with('/') {
        return Err(GitError::InvalidPath {
            path: path.to_owned(),
            reason: "paths are relative to the repository root",
        });
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(GitError::InvalidPath {
                        path: path.to_owned(),
                        reason: "it leads outside the repository",
                    });
                }
            }
            other => parts.push(other),
        }
    }
    Ok(parts.join("/"))
}

/// Joins a path relative to `base` (itself relative to the repository root) and normalises it.
pub fn join_path(base: &str, relative: &str) -> Result<String> {
    if base.is_empty() {
        normalize_path(relative)
    } else {
        normalize_path(&format!("{base}/{relative}")).map_err(|_| GitError::InvalidPath {
            path: relative.to_owned(),
            reason: "it leads outside the repository",
        })
    }
}

/// The folder name of a URL's mirror: readable, and unique through a hash of the whole URL.
fn mirror_dir_name(url: &str) -> String {
    let readable: String = url
        .rsplit(['/', ':'])
        .find(|s| !s.is_empty())
        .unwrap_or("repo")
        .trim_end_matches(".git")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let hash = hex::encode(Sha256::digest(url.as_bytes()));
    format!("{readable}-{}.git", &hash[..16])
}

fn callbacks(credentials: &Credentials) -> git2::RemoteCallbacks<'static> {
    let credentials = credentials.clone();
    let mut attempts = 0u32;
    let mut callbacks = git2::RemoteCallbacks::new();
    callbacks.credentials(move |_url, username_from_url, allowed| {
        // libgit2 asks again after a refused credential; give up instead of looping forever.
        attempts += 1;
        if attempts > 3 {
            return Err(git2::Error::from_str("authentication failed"));
        }
        let username = credentials
            .username
            .as_deref()
            .or(username_from_url)
            .unwrap_or("git");
        if let (Some(token), true) = (
            &credentials.token,
            allowed.contains(git2::CredentialType::USER_PASS_PLAINTEXT),
        ) {
            return git2::Cred::userpass_plaintext(username, token);
        }
        if allowed.contains(git2::CredentialType::SSH_KEY) {
            if let Some(key) = &credentials.ssh_key {
                return git2::Cred::ssh_key(username, None, key, None);
            }
            return git2::Cred::ssh_key_from_agent(username);
        }
        if allowed.contains(git2::CredentialType::USERNAME) {
            return git2::Cred::username(username);
        }
        git2::Cred::default()
    });
    callbacks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_paths() {
        assert_eq!(normalize_path("./a//b/").expect("ok"), "a/b");
        assert_eq!(normalize_path("a/../b").expect("ok"), "b");
        assert_eq!(normalize_path(".").expect("ok"), "");
        assert!(normalize_path("../x").is_err());
        assert!(normalize_path("/etc").is_err());
        assert_eq!(
            join_path("apps/web", "../values/prod.yaml").expect("ok"),
            "apps/values/prod.yaml"
        );
        assert!(join_path("apps", "../../x").is_err());
    }

    #[test]
    fn tells_remotes_from_paths() {
        assert!(is_remote("https://github.com/o/r.git"));
        assert!(is_remote("git@github.com:o/r.git"));
        assert!(is_remote("file:///tmp/r"));
        assert!(!is_remote("."));
        assert!(!is_remote("/tmp/r"));
        assert!(!is_remote("dir/with@at:colon/x"));
    }

    #[test]
    fn mirror_names_are_distinct_and_readable() {
        let a = mirror_dir_name("https://github.com/o/app.git");
        let b = mirror_dir_name("https://gitlab.com/o/app.git");
        assert!(a.starts_with("app-"), "{a}");
        assert_ne!(a, b);
    }
    /// A repository made by the `git` program in a temporary folder.
    fn git_repo() -> (tempfile::TempDir, impl Fn(&[&str]) -> String) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_owned();
        let git = move |args: &[&str]| gitops_test_support::git(&path, args);
        git(&["init", "-q", "-b", "main"]);
        (dir, git)
    }

    #[test]
    fn resolves_reads_and_walks_history_of_a_real_repository() {
        let (dir, git) = git_repo();
        std::fs::create_dir_all(dir.path().join("app/sub")).expect("mkdir");
        std::fs::write(dir.path().join("app/a.yaml"), "a: 1\n").expect("write");
        std::fs::write(dir.path().join("app/sub/b.yaml"), "b: 1\n").expect("write");
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("app/link.yaml"))
            .expect("symlink");
        git(&["add", "-A"]);
        git(&["commit", "-q", "-m", "one"]);
        let one = git(&["rev-parse", "HEAD"]);
        git(&["tag", "-a", "v1", "-m", "v1"]);
        std::fs::write(dir.path().join("app/a.yaml"), "a: 2\n").expect("write");
        git(&["commit", "-q", "-am", "two"]);
        let two = git(&["rev-parse", "HEAD"]);

        let repo =
            GitRepo::open_local(&dir.path().join("app/sub")).expect("discover from a subfolder");
        assert!(
            repo.source_url().starts_with("file://"),
            "{}",
            repo.source_url()
        );
        let one_oid = repo
            .resolve("v1")
            .expect("annotated tag peels to its commit");
        assert_eq!(one_oid.to_string(), one);
        assert_eq!(repo.resolve(&one[..7]).expect("short sha").to_string(), one);
        assert_eq!(repo.resolve("main").expect("branch").to_string(), two);
        assert_eq!(
            repo.resolve("HEAD~1")
                .expect("rev-parse expression")
                .to_string(),
            one
        );
        assert!(matches!(
            repo.resolve("nope"),
            Err(GitError::UnknownRevision { .. })
        ));
        assert!(matches!(
            repo.resolve("--upload-pack=x"),
            Err(GitError::UnknownRevision { .. })
        ));

        let two_oid = repo.resolve("HEAD").expect("head");
        let tree = repo.read_tree(one_oid, "app").expect("tree");
        assert_eq!(
            tree.keys().collect::<Vec<_>>(),
            vec!["app/a.yaml", "app/sub/b.yaml"],
            "symlinks skipped"
        );
        assert_eq!(tree["app/a.yaml"], b"a: 1\n");
        assert_eq!(
            repo.read_file(two_oid, "app/a.yaml").expect("read"),
            Some(b"a: 2\n".to_vec())
        );
        assert_eq!(
            repo.read_file(two_oid, "app/none.yaml").expect("read"),
            None
        );
        assert!(matches!(
            repo.read_tree(two_oid, "missing"),
            Err(GitError::PathNotFound { .. })
        ));

        assert!(repo.is_ancestor(one_oid, two_oid).expect("ancestry"));
        assert!(!repo.is_ancestor(two_oid, one_oid).expect("ancestry"));
        assert!(repo.is_ancestor(two_oid, two_oid).expect("ancestry"));
        assert_eq!(repo.ahead_behind(one_oid, two_oid).expect("count"), (0, 1));
    }

    #[test]
    fn mirrors_follow_the_remote_default_branch_and_new_commits() {
        let (dir, git) = git_repo();
        std::fs::write(dir.path().join("x.yaml"), "x: 1\n").expect("write");
        git(&["add", "-A"]);
        git(&["commit", "-q", "-m", "one"]);
        git(&["checkout", "-q", "-b", "trunk"]);
        std::fs::write(dir.path().join("x.yaml"), "x: 2\n").expect("write");
        git(&["commit", "-q", "-am", "two"]);
        let trunk = git(&["rev-parse", "HEAD"]);
        let url = format!("file://{}", dir.path().display());
        let cache = tempfile::tempdir().expect("cache");

        let mirror = GitRepo::open(&url, cache.path(), &Credentials::default()).expect("mirror");
        assert_eq!(mirror.source_url(), url);
        assert_eq!(
            mirror.resolve("HEAD").expect("head").to_string(),
            trunk,
            "HEAD is the remote's HEAD"
        );
        assert!(mirror.resolve("main").is_ok());

        std::fs::write(dir.path().join("x.yaml"), "x: 3\n").expect("write");
        git(&["commit", "-q", "-am", "three"]);
        let three = git(&["rev-parse", "HEAD"]);
        let three_oid = Oid::from_str(&three).expect("oid");
        assert!(!mirror.has_commit(three_oid), "not fetched yet");
        mirror.fetch(&Credentials::default()).expect("fetch");
        assert!(mirror.has_commit(three_oid));
        assert_eq!(
            mirror.read_file(three_oid, "x.yaml").expect("read"),
            Some(b"x: 3\n".to_vec())
        );

        let broken = GitRepo::mirror("file:///nonexistent/repo", cache.path()).expect("mirror dir");
        assert!(matches!(
            broken.fetch(&Credentials::default()),
            Err(GitError::Fetch { .. })
        ));
    }
}
