//! One bare Git mirror per trusted repository: fetched at start, on an interval, and once on a
//! miss for an unknown commit (de-duplicated and rate-limited). When the remote is down the
//! webhook keeps deciding from what the mirror holds.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use git2::Oid;
use gitops_shared::git::{Credentials, GitRepo};

use crate::config::Repository;
use crate::error::{Error, Result};
use crate::metrics::Metrics;

/// How the last fetch went.
#[derive(Debug, Clone, Default)]
pub struct FetchStatus {
    /// When a fetch last succeeded.
    pub last_success: Option<SystemTime>,
    /// The last fetch's error, when it failed.
    pub last_error: Option<String>,
}

/// How many commit facts are remembered before starting over.
const MAX_KNOWN_COMMITS: usize = 4096;

/// Facts about commits, valid for one head.
#[derive(Debug, Default)]
struct CommitFacts {
    head: Option<Oid>,
    on_branch: HashMap<Oid, bool>,
    ancestry: HashMap<(Oid, Oid), bool>,
}

/// A trusted repository's mirror.
pub struct Mirror {
    /// The repository's URL, as in provenance annotations.
    pub url: String,
    /// The tracked branch.
    pub branch: String,
    config: Repository,
    cache_dir: PathBuf,
    miss_fetch_interval: Duration,
    /// Open handles; `git2::Repository` is not `Sync`, so each use takes one out.
    handles: Mutex<Vec<GitRepo>>,
    /// Held while fetching: concurrent misses wait for the one fetch instead of starting more.
    fetching: Mutex<Option<Instant>>,
    status: Mutex<FetchStatus>,
    /// Facts that only a fetch can change, kept in memory so a warm decision touches no disk:
    /// the head, and which commits are on the branch at that head.
    facts: Mutex<CommitFacts>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Mirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mirror")
            .field("url", &self.url)
            .field("branch", &self.branch)
            .finish_non_exhaustive()
    }
}

/// Locks a mutex, recovering the data if a panicking holder poisoned it.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Mirror {
    /// Creates (or opens) the mirror folder under `cache_dir`; does not fetch.
    pub fn open(
        config: &Repository,
        cache_dir: &Path,
        miss_fetch_interval: Duration,
        metrics: Arc<Metrics>,
    ) -> Result<Mirror> {
        let repo = GitRepo::mirror(&config.url, cache_dir).map_err(|source| Error::Mirror {
            url: config.url.clone(),
            source: Box::new(source),
        })?;
        Ok(Mirror {
            url: config.url.clone(),
            branch: config.branch.clone(),
            config: config.clone(),
            cache_dir: cache_dir.to_owned(),
            miss_fetch_interval,
            handles: Mutex::new(vec![repo]),
            facts: Mutex::new(CommitFacts::default()),
            fetching: Mutex::new(None),
            status: Mutex::new(FetchStatus::default()),
            metrics,
        })
    }

    /// Runs `f` with a repository handle.
    pub fn with_repo<T>(&self, f: impl FnOnce(&GitRepo) -> T) -> Result<T> {
        let handle = lock(&self.handles).pop();
        let repo = match handle {
            Some(repo) => repo,
            None => {
                GitRepo::mirror(&self.url, &self.cache_dir).map_err(|source| Error::Mirror {
                    url: self.url.clone(),
                    source: Box::new(source),
                })?
            }
        };
        let out = f(&repo);
        lock(&self.handles).push(repo);
        Ok(out)
    }

    fn credentials(&self) -> Result<Credentials> {
        let token = match &self.config.token_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|source| Error::ReadCredentials {
                        what: "token file",
                        path: path.clone(),
                        source,
                    })?
                    .trim()
                    .to_owned(),
            ),
            None => None,
        };
        Ok(Credentials {
            username: self.config.username.clone(),
            token,
            ssh_key: self.config.ssh_key_file.clone(),
        })
    }

    /// Fetches now, waiting for a fetch already under way. Records the outcome.
    pub fn fetch(&self) -> Result<()> {
        let _guard = lock(&self.fetching);
        self.fetch_locked()
    }

    fn fetch_locked(&self) -> Result<()> {
        let started = Instant::now();
        let result = self.credentials().and_then(|credentials| {
            self.with_repo(|repo| repo.fetch(&credentials))?
                .map_err(|source| Error::Mirror {
                    url: self.url.clone(),
                    source: Box::new(source),
                })
        });
        let mut status = lock(&self.status);
        match &result {
            Ok(()) => {
                status.last_success = Some(SystemTime::now());
                status.last_error = None;
                if let Err(error) = self.read_head() {
                    tracing::warn!(url = %self.url, %error, "cannot read the branch head after fetching");
                }
                tracing::debug!(url = %self.url, elapsed_ms = started.elapsed().as_millis() as u64, "fetched");
            }
            Err(error) => {
                let message = error_chain(error);
                tracing::warn!(url = %self.url, error = %message, "fetch failed; deciding from the mirror as it is");
                status.last_error = Some(message);
            }
        }
        self.metrics.fetch(&self.url, result.is_err());
        result
    }

    /// True when the commit is in the mirror; on a miss, fetches once (at most once per
    /// `missFetchInterval`, and never twice at the same time) and looks again.
    pub fn has_commit_or_fetch(&self, commit: Oid) -> Result<bool> {
        if self.with_repo(|r| r.has_commit(commit))? {
            return Ok(true);
        }
        let mut last = lock(&self.fetching);
        // Someone else's fetch may have brought it while we waited.
        if self.with_repo(|r| r.has_commit(commit))? {
            return Ok(true);
        }
        if last.is_some_and(|at| at.elapsed() < self.miss_fetch_interval) {
            return Ok(false);
        }
        *last = Some(Instant::now());
        // A failed fetch leaves the answer "unknown"; the error is in the status and metrics.
        let _ = self.fetch_locked();
        self.with_repo(|r| r.has_commit(commit))
    }

    /// Fetches unless a fetch of this kind ran less than `missFetchInterval` ago; true when it
    /// fetched (successfully or not: the status says).
    pub fn fetch_rate_limited(&self) -> bool {
        let mut last = lock(&self.fetching);
        if last.is_some_and(|at| at.elapsed() < self.miss_fetch_interval) {
            return false;
        }
        *last = Some(Instant::now());
        self.fetch_locked().is_ok()
    }

    /// The tracked branch's head, as of the last fetch.
    pub fn head(&self) -> Result<Option<Oid>> {
        if let Some(head) = lock(&self.facts).head {
            return Ok(Some(head));
        }
        self.read_head()
    }

    /// Reads the head from the mirror and, when it moved, forgets what was known at the old one.
    fn read_head(&self) -> Result<Option<Oid>> {
        let branch = format!("refs/heads/{}", self.branch);
        let head = self.with_repo(|r| r.raw().refname_to_id(&branch).ok())?;
        let mut facts = lock(&self.facts);
        if facts.head != head {
            facts.head = head;
            facts.on_branch.clear();
        }
        Ok(head)
    }

    /// The head as of the last fetch, if read already.
    pub fn cached_head(&self) -> Option<Oid> {
        lock(&self.facts).head
    }

    /// Whether `ancestor` is an ancestor of `descendant`, if already known.
    pub fn cached_ancestry(&self, ancestor: Oid, descendant: Oid) -> Option<bool> {
        if ancestor == descendant {
            return Some(true);
        }
        lock(&self.facts)
            .ancestry
            .get(&(ancestor, descendant))
            .copied()
    }

    /// Whether `commit` is reachable from the head (`None` when not known yet).
    pub fn known_on_branch(&self, commit: Oid) -> Option<bool> {
        lock(&self.facts).on_branch.get(&commit).copied()
    }

    /// Remembers whether `commit` is reachable from `head`, if `head` is still the head.
    pub fn remember_on_branch(&self, commit: Oid, head: Oid, on_branch: bool) {
        let mut facts = lock(&self.facts);
        if facts.head == Some(head) {
            if facts.on_branch.len() >= MAX_KNOWN_COMMITS {
                facts.on_branch.clear();
            }
            facts.on_branch.insert(commit, on_branch);
        }
    }

    /// Whether `ancestor` is an ancestor of `descendant` (or the same); cached, since history
    /// never changes.
    pub fn is_ancestor(&self, ancestor: Oid, descendant: Oid) -> Result<bool> {
        if let Some(known) = lock(&self.facts).ancestry.get(&(ancestor, descendant)) {
            return Ok(*known);
        }
        let answer = self.with_repo(|r| {
            r.has_commit(ancestor) && r.is_ancestor(ancestor, descendant).unwrap_or(false)
        })?;
        let mut facts = lock(&self.facts);
        if facts.ancestry.len() >= MAX_KNOWN_COMMITS {
            facts.ancestry.clear();
        }
        facts.ancestry.insert((ancestor, descendant), answer);
        Ok(answer)
    }

    /// The last fetch's outcome.
    pub fn status(&self) -> FetchStatus {
        lock(&self.status).clone()
    }
}

/// An error and its causes on one line.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}
