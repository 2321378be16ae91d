//! One bare Git mirror per trusted repository: fetched at start, on an interval, and on demand
//! when a review needs a fresher view than the mirror has (an unknown commit, a DELETE the head
//! still declares). On-demand fetches are de-duplicated and rate-limited: a request waits for a
//! fetch that started after it arrived, joining one under way or waiting for the rate limit, as
//! long as that fits its deadline. When the remote is down the webhook keeps deciding from what
//! the mirror holds.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
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

/// Whether the mirror was fetched after a request arrived, as [`Mirror::fetch_since`] answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freshness {
    /// A fetch that started after the request arrived succeeded.
    Fetched,
    /// A fetch that started after the request arrived failed; why.
    FetchFailed(String),
    /// No fetch could start and finish before the deadline; why, as one clause.
    NotFetched(String),
}

impl Freshness {
    /// How a sentence says what happened, after "fetched again, still unknown" or the like.
    pub fn clause(&self) -> String {
        match self {
            Freshness::Fetched => "fetched just now".to_owned(),
            Freshness::FetchFailed(error) => format!("fetching it failed: {error}"),
            Freshness::NotFetched(why) => format!("not fetched: {why}"),
        }
    }
}

/// Who is fetching and when fetches happened, behind one lock with [`Mirror::fetched`].
#[derive(Debug, Default)]
struct FetchGate {
    /// A fetch is under way (its start).
    running: Option<Instant>,
    /// When the last on-demand fetch started: the rate limit counts from there.
    last_on_demand: Option<Instant>,
    /// The last finished fetch of any kind: when it started and how it went.
    last_done: Option<(Instant, Result<(), String>)>,
    /// How long the last fetch took, to tell whether a wait for the next one fits a deadline.
    last_duration: Duration,
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
    /// Fetch bookkeeping: concurrent requests wait for the one fetch instead of starting more.
    gate: Mutex<FetchGate>,
    /// Signalled when a fetch finishes.
    fetched: Condvar,
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
            gate: Mutex::new(FetchGate::default()),
            fetched: Condvar::new(),
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

    /// Fetches now (the interval fetch), after a fetch already under way. Records the outcome.
    pub fn fetch(&self) -> Result<()> {
        let mut gate = lock(&self.gate);
        while gate.running.is_some() {
            gate = self
                .fetched
                .wait(gate)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        self.run_fetch(gate)
    }

    /// Runs one fetch with the gate marked busy (and unlocked meanwhile), records it and wakes
    /// the waiters.
    fn run_fetch(&self, mut gate: MutexGuard<'_, FetchGate>) -> Result<()> {
        let started = Instant::now();
        gate.running = Some(started);
        drop(gate);
        let result = self.fetch_unguarded();
        let mut gate = lock(&self.gate);
        gate.running = None;
        gate.last_duration = started.elapsed();
        gate.last_done = Some((
            started,
            result.as_ref().map(|_| ()).map_err(|e| error_chain(e)),
        ));
        drop(gate);
        self.fetched.notify_all();
        result
    }

    fn fetch_unguarded(&self) -> Result<()> {
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

    /// Makes sure a fetch that started at or after `arrived` has finished, waiting until `until`
    /// at most: the result of such a fetch if one already ran, else the one under way, else a
    /// new one as soon as the rate limit (`missFetchInterval` between on-demand fetches) allows.
    /// Every request waiting meanwhile is served by the same fetch, so a flood of made-up
    /// commits costs the remote one fetch per interval and delays a real commit by at most one
    /// interval.
    pub fn fetch_since(&self, arrived: Instant, until: Instant) -> Freshness {
        let mut gate = lock(&self.gate);
        loop {
            if let Some((started, result)) = &gate.last_done {
                if *started >= arrived {
                    return match result {
                        Ok(()) => Freshness::Fetched,
                        Err(error) => Freshness::FetchFailed(error.clone()),
                    };
                }
            }
            let now = Instant::now();
            if now >= until {
                return Freshness::NotFetched(
                    "the decision deadline passed while waiting for a fetch".to_owned(),
                );
            }
            if gate.running.is_some() {
                gate = self
                    .fetched
                    .wait_timeout(gate, until - now)
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0;
                continue;
            }
            let allowed_at = gate
                .last_on_demand
                .map_or(now, |at| at + self.miss_fetch_interval);
            if allowed_at <= now {
                gate.last_on_demand = Some(now);
                // A failure is in the gate, the status and the metrics.
                let _ = self.run_fetch(gate);
                gate = lock(&self.gate);
                continue;
            }
            if allowed_at + gate.last_duration > until {
                return Freshness::NotFetched(format!(
                    "the webhook fetches at most once every {} ms and the next fetch would end after the decision deadline",
                    self.miss_fetch_interval.as_millis()
                ));
            }
            gate = self
                .fetched
                .wait_timeout(gate, allowed_at - now)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }

    /// True when the commit is in the mirror.
    pub fn has_commit(&self, commit: Oid) -> Result<bool> {
        self.with_repo(|r| r.has_commit(commit))
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
