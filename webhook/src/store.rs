//! What the server knows about Git: the mirrors, the bounded render cache and the index of the
//! branch heads. It answers the decision's [`GitFacts`].

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, RwLock};

use git2::Oid;
use lru::LruCache;

use gitops_shared::appfile::{AppFile, AppFileError};
use gitops_shared::git::GitError;
use gitops_shared::object::ObjectKey;
use gitops_shared::render::{load_app_file, render_app, RenderError, RenderOptions};
use gitops_shared::scope::BuiltinScope;

use crate::config::Config;
use crate::decision::{
    decide, AppClaim, CommitPlace, Decision, Desired, FactError, GitFacts, HeadDeclaration, Window,
};
use crate::error::Result;
use crate::index::HeadIndex;
use crate::metrics::Metrics;
use crate::mirror::{error_chain, lock, Freshness, Mirror};
use crate::review::AdmissionRequest;

/// A render cache key (see [`cache_key`]): a commit never changes, so an entry never goes stale.
type CacheKey = String;

/// Writes the cache key of (repository, commit, app, path, namespace) into `key`: one string, so
/// a lookup borrows a reused buffer instead of cloning five strings. NUL cannot occur in any of
/// the parts (they come from Git paths, URLs, names and hex ids), so keys cannot collide.
fn cache_key(key: &mut String, repo: &str, commit: &str, claim: &AppClaim, namespace: &str) {
    key.clear();
    for part in [repo, commit, &claim.app, &claim.path, namespace] {
        key.push_str(part);
        key.push('\0');
    }
}

/// At most a fixed number of renders at once: the others wait for a slot, up to a time limit.
/// A render past the decision deadline cannot be stopped (it runs Git reads or a child
/// program), but it keeps its slot until it ends, so abandoned renders never pile up.
#[derive(Debug)]
struct RenderSlots {
    free: Mutex<usize>,
    freed: std::sync::Condvar,
    wait: std::time::Duration,
}

/// A render slot, given back on drop.
struct RenderSlot<'a>(&'a RenderSlots);

impl RenderSlots {
    fn take(&self) -> Option<RenderSlot<'_>> {
        let deadline = std::time::Instant::now() + self.wait;
        let mut free = lock(&self.free);
        while *free == 0 {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return None;
            }
            free = self
                .freed
                .wait_timeout(free, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        *free -= 1;
        Some(RenderSlot(self))
    }
}

impl Drop for RenderSlot<'_> {
    fn drop(&mut self) {
        *lock(&self.0.free) += 1;
        self.0.freed.notify_one();
    }
}

/// Mirrors, render cache and head index.
#[derive(Debug)]
pub struct GitStore {
    mirrors: HashMap<String, Arc<Mirror>>,
    cache: Mutex<LruCache<CacheKey, Arc<Desired>>>,
    slots: RenderSlots,
    index: RwLock<HashMap<String, (Oid, Arc<HeadIndex>)>>,
    metrics: Arc<Metrics>,
}

fn read_lock<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The namespace part of a folder app's cache key. A folder app renders per namespace, and its
/// render for no namespace (a cluster-scoped object's claim) must not be taken for the
/// app-file slot, which is the empty namespace.
fn folder_slot(namespace: &str) -> &str {
    if namespace.is_empty() {
        "\u{1}no namespace"
    } else {
        namespace
    }
}

impl GitStore {
    /// Opens (without fetching) a mirror per trusted repository.
    pub fn open(config: &Config, metrics: Arc<Metrics>) -> Result<GitStore> {
        let mut mirrors = HashMap::new();
        for repo in &config.repositories {
            let mirror = Mirror::open(
                repo,
                &config.cache_dir,
                config.miss_fetch_interval,
                metrics.clone(),
            )?;
            mirrors.insert(repo.url.clone(), Arc::new(mirror));
        }
        let capacity = NonZeroUsize::new(config.render_cache_entries).unwrap_or(NonZeroUsize::MIN);
        Ok(GitStore {
            mirrors,
            cache: Mutex::new(LruCache::new(capacity)),
            slots: RenderSlots {
                free: Mutex::new(config.render_concurrency),
                freed: std::sync::Condvar::new(),
                wait: config.decision_deadline,
            },
            index: RwLock::new(HashMap::new()),
            metrics,
        })
    }

    /// The mirrors.
    pub fn mirrors(&self) -> impl Iterator<Item = &Arc<Mirror>> {
        self.mirrors.values()
    }

    /// Fetches every mirror and refreshes the head index; returns the failures (url, error).
    pub fn refresh(&self) -> Vec<(String, String)> {
        let mut failures = Vec::new();
        for mirror in self.mirrors.values() {
            if let Err(error) = mirror.fetch() {
                failures.push((mirror.url.clone(), error_chain(&error)));
            }
            self.reindex(mirror);
        }
        failures
    }

    /// Rebuilds the index of one mirror's branch head when the head moved.
    pub fn reindex(&self, mirror: &Mirror) {
        let Ok(Some(head)) = mirror.head() else {
            return;
        };
        if read_lock(&self.index)
            .get(&mirror.url)
            .is_some_and(|(at, _)| *at == head)
        {
            return;
        }
        let mut index = HeadIndex::new();
        let apps = mirror
            .with_repo(|repo| load_app_file(repo, head))
            .ok()
            .and_then(|r| r.ok())
            .flatten()
            .map(|file| file.apps.into_values().collect::<Vec<_>>())
            .unwrap_or_default();
        for app in apps {
            let claim = AppClaim {
                app: app.name.clone(),
                path: app.path.clone(),
                folder_namespace: String::new(),
            };
            match self.render(&mirror.url, &head.to_string(), &claim) {
                Ok(desired) => index.add(&mirror.url, &mirror.branch, &desired),
                Err(error) => {
                    tracing::warn!(url = %mirror.url, app = %app.name, %error, "cannot index app at the branch head")
                }
            }
        }
        tracing::info!(url = %mirror.url, head = %head, objects = index.len(), "indexed branch head");
        self.index
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(mirror.url.clone(), (head, Arc::new(index)));
    }

    /// A cached render. Apps of the app file render the same for every namespace, so they are
    /// kept once, under an empty namespace; folder apps per namespace.
    fn cached_render(&self, repo: &str, commit: &str, claim: &AppClaim) -> Option<Arc<Desired>> {
        thread_local! {
            static KEY: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
        }
        let hit = KEY.with_borrow_mut(|key| {
            let mut cache = lock(&self.cache);
            // The app-file entry first: it serves every namespace, and most apps are there.
            cache_key(key, repo, commit, claim, "");
            if let Some(hit) = cache.get(key.as_str()) {
                return Some(hit.clone());
            }
            cache_key(
                key,
                repo,
                commit,
                claim,
                folder_slot(&claim.folder_namespace),
            );
            cache.get(key.as_str()).cloned()
        });
        if hit.is_some() {
            self.metrics.cache(true);
        }
        hit
    }

    fn mirror(&self, repo: &str) -> Result<&Arc<Mirror>, FactError> {
        self.mirrors
            .get(repo)
            .ok_or_else(|| FactError::Failed(format!("repository {repo} is not trusted")))
    }

    /// Renders without the cache; also says whether the app comes from the app file.
    fn render_uncached(
        &self,
        mirror: &Mirror,
        commit: Oid,
        claim: &AppClaim,
    ) -> Result<(Desired, bool), FactError> {
        let rendered = mirror
            .with_repo(|repo| {
                let file = load_app_file(repo, commit)?;
                let app = AppFile::for_provenance(file.as_ref(), &claim.app, &claim.path)?;
                let namespace =
                    (!claim.folder_namespace.is_empty()).then_some(claim.folder_namespace.as_str());
                let options = RenderOptions {
                    scope: &BuiltinScope,
                    folder_namespace: namespace,
                };
                render_app(repo, commit, &app, &options)
            })
            .map_err(|e| FactError::Failed(error_chain(&e)))?;
        let rendered = rendered.map_err(|error| match error {
            RenderError::Git(GitError::PathNotFound { .. })
            | RenderError::AppFile(AppFileError::UnknownApp { .. })
            | RenderError::AppFile(AppFileError::NoAppSelected(_)) => {
                FactError::AppGone(error_chain(&error))
            }
            other => FactError::Failed(error_chain(&other)),
        })?;
        let from_app_file = rendered.app.from_app_file;
        let desired = Desired {
            commit: commit.to_string(),
            app: rendered.app.name.clone(),
            path: rendered.app.path.clone(),
            from_app_file,
            objects: rendered
                .objects
                .into_iter()
                .map(|o| (o.key(), o.object))
                .collect(),
        };
        Ok((desired, from_app_file))
    }
}

/// The store's facts from memory only: a miss is recorded instead of touching Git.
struct MemoryOnly<'a> {
    store: &'a GitStore,
    missed: std::cell::Cell<bool>,
}

impl MemoryOnly<'_> {
    fn miss<T>(&self) -> Result<T, FactError> {
        self.missed.set(true);
        Err(FactError::Failed("not in memory".to_owned()))
    }
}

impl GitFacts for MemoryOnly<'_> {
    fn locate(&self, repo: &str, commit: &str, _window: Window) -> Result<CommitPlace, FactError> {
        let mirror = self.store.mirror(repo)?;
        // "Not on the branch" needs a fetch before it is an answer: not from memory.
        match mirror.known_on_branch(parse_oid(commit)?) {
            Some(true) => Ok(CommitPlace::OnBranch),
            _ => self.miss(),
        }
    }

    fn head(&self, repo: &str) -> Result<String, FactError> {
        match self.store.mirror(repo)?.cached_head() {
            Some(head) => Ok(head.to_string()),
            None => self.miss(),
        }
    }

    fn is_ancestor(&self, repo: &str, ancestor: &str, descendant: &str) -> Result<bool, FactError> {
        let mirror = self.store.mirror(repo)?;
        match mirror.cached_ancestry(parse_oid(ancestor)?, parse_oid(descendant)?) {
            Some(answer) => Ok(answer),
            None => self.miss(),
        }
    }

    fn render(
        &self,
        repo: &str,
        commit: &str,
        claim: &AppClaim,
    ) -> Result<Arc<Desired>, FactError> {
        match self.store.cached_render(repo, commit, claim) {
            Some(desired) => Ok(desired),
            None => self.miss(),
        }
    }

    fn head_declaration(&self, key: &ObjectKey) -> Option<HeadDeclaration> {
        self.store.head_declaration(key)
    }

    fn owners(&self, key: &ObjectKey) -> Vec<HeadDeclaration> {
        self.store.owners(key)
    }

    fn refresh_head(&self, _repo: &str, _window: Window) -> Result<Freshness, FactError> {
        self.miss()
    }

    fn scale_parent(
        &self,
        group: &str,
        resource: &str,
        namespace: &str,
        name: &str,
    ) -> Option<HeadDeclaration> {
        self.store.scale_parent(group, resource, namespace, name)
    }
}

/// Whether `oid` is reachable from the mirror's head, remembered for that head.
fn on_branch(mirror: &Mirror, oid: Oid) -> Result<bool, FactError> {
    let failed = |e: crate::error::Error| FactError::Failed(error_chain(&e));
    let head = mirror.head().map_err(failed)?.ok_or_else(|| {
        FactError::Failed(format!(
            "branch {} does not exist in {}",
            mirror.branch, mirror.url
        ))
    })?;
    let on_branch = mirror.is_ancestor(oid, head).map_err(failed)?;
    mirror.remember_on_branch(oid, head, on_branch);
    Ok(on_branch)
}

fn parse_oid(commit: &str) -> Result<Oid, FactError> {
    Oid::from_str(commit).map_err(|_| FactError::Failed(format!("{commit:?} is not a commit id")))
}

impl GitFacts for GitStore {
    fn locate(&self, repo: &str, commit: &str, window: Window) -> Result<CommitPlace, FactError> {
        let mirror = self.mirror(repo)?;
        let oid = parse_oid(commit)?;
        if mirror.known_on_branch(oid) == Some(true) {
            return Ok(CommitPlace::OnBranch);
        }
        let failed = |e: crate::error::Error| FactError::Failed(error_chain(&e));
        let mut fetched = false;
        if !mirror.has_commit(oid).map_err(failed)? {
            // Pushed a moment ago, most likely: judge by a fetch newer than the request.
            let freshness = mirror.fetch_since(window.arrived, window.until);
            self.reindex(mirror);
            if !mirror.has_commit(oid).map_err(failed)? {
                return Ok(CommitPlace::Unknown(freshness));
            }
            fetched = true;
        }
        if on_branch(mirror, oid)? {
            return Ok(CommitPlace::OnBranch);
        }
        if !fetched {
            // Known, but off the branch as of the last fetch: the branch may have just moved to
            // it (a merge of a branch the mirror already had).
            let _ = mirror.fetch_since(window.arrived, window.until);
            self.reindex(mirror);
            if on_branch(mirror, oid)? {
                return Ok(CommitPlace::OnBranch);
            }
        }
        Ok(CommitPlace::NotOnBranch)
    }

    fn head(&self, repo: &str) -> Result<String, FactError> {
        let mirror = self.mirror(repo)?;
        match mirror.head() {
            Ok(Some(head)) => Ok(head.to_string()),
            Ok(None) => Err(FactError::Failed(format!(
                "branch {} does not exist in {repo}",
                mirror.branch
            ))),
            Err(e) => Err(FactError::Failed(error_chain(&e))),
        }
    }

    fn is_ancestor(&self, repo: &str, ancestor: &str, descendant: &str) -> Result<bool, FactError> {
        let mirror = self.mirror(repo)?;
        let (a, d) = (parse_oid(ancestor)?, parse_oid(descendant)?);
        // An ancestor the mirror does not hold cannot be an ancestor of a commit on the branch.
        mirror
            .is_ancestor(a, d)
            .map_err(|e| FactError::Failed(error_chain(&e)))
    }

    fn render(
        &self,
        repo: &str,
        commit: &str,
        claim: &AppClaim,
    ) -> Result<Arc<Desired>, FactError> {
        if let Some(hit) = self.cached_render(repo, commit, claim) {
            return Ok(hit);
        }
        self.metrics.cache(false);
        let mirror = self.mirror(repo)?;
        let oid = parse_oid(commit)?;
        let slot = self.slots.take().ok_or_else(|| {
            FactError::Failed(
                "every render slot stayed busy for the whole decision deadline".to_owned(),
            )
        })?;
        // Another request may have rendered it while this one waited.
        if let Some(hit) = self.cached_render(repo, commit, claim) {
            return Ok(hit);
        }
        let rendered = self.render_uncached(mirror, oid, claim);
        drop(slot);
        let (desired, from_app_file) = rendered?;
        let desired = Arc::new(desired);
        let namespace = if from_app_file {
            ""
        } else {
            folder_slot(&claim.folder_namespace)
        };
        let mut key = String::new();
        cache_key(&mut key, repo, commit, claim, namespace);
        lock(&self.cache).put(key, desired.clone());
        Ok(desired)
    }

    fn refresh_head(&self, repo: &str, window: Window) -> Result<Freshness, FactError> {
        let mirror = self.mirror(repo)?;
        let freshness = mirror.fetch_since(window.arrived, window.until);
        self.reindex(mirror);
        Ok(freshness)
    }

    fn decide_in_memory(&self, request: &AdmissionRequest, config: &Config) -> Option<Decision> {
        let memory = MemoryOnly {
            store: self,
            missed: std::cell::Cell::new(false),
        };
        let decision = decide(request, config, &memory);
        (!memory.missed.get()).then_some(decision)
    }

    fn head_declaration(&self, key: &ObjectKey) -> Option<HeadDeclaration> {
        read_lock(&self.index)
            .values()
            .find_map(|(_, index)| index.get(key).cloned())
    }

    fn owners(&self, key: &ObjectKey) -> Vec<HeadDeclaration> {
        read_lock(&self.index)
            .values()
            .flat_map(|(_, index)| index.owners(key).iter().cloned())
            .collect()
    }

    fn scale_parent(
        &self,
        group: &str,
        resource: &str,
        namespace: &str,
        name: &str,
    ) -> Option<HeadDeclaration> {
        read_lock(&self.index).values().find_map(|(_, index)| {
            index
                .scale_parent(group, resource, namespace, name)
                .cloned()
        })
    }
}
