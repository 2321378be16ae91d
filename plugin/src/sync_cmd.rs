//! `kubectl gitops sync`: render a commit, server-side-apply what changed in phases, record the
//! inventory, prune what Git no longer declares, and optionally wait for health.
//!
//! Phases: Namespaces and CustomResourceDefinitions first; custom resources once their CRD is
//! Established (and discovery knows them); then the rest. Within a phase, applies run with a
//! bounded concurrency. An object whose live digest annotation equals the desired digest, whose
//! declared fields still match and that holds no field a taken-over manager wrote by hand is
//! skipped without a request, unless `--force`.
//!
//! Hand-made changes are undone ([`crate::revert`]): the fields of the app's `takeOverManagers`
//! (kubectl's, by default) are handed to `sync`'s own apply entry first, so the apply puts Git's
//! values back and removes what Git does not declare. Such objects count as "reverted".

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use futures::stream::{self, StreamExt as _};
use gitops_shared::drift::declared_drift;
use gitops_shared::health::{health_of, Health, HealthStatus};
use gitops_shared::object::ObjectKey;
use gitops_shared::provenance::DIGEST_ANNOTATION;
use gitops_shared::scope::scopes_from_crds;
use gitops_shared::scope::Scope as _;
use gitops_shared::takeover::{hand_fields, HandField, Remedy};
use serde_json::Value;

use crate::app_state::{runtime, AppState, CONCURRENCY};
use crate::cluster::{ClusterArgs, ClusterError, Discovery, DryRun};
use crate::exit;
use crate::hooks::{run_wave, HookRecord, HookResult};
use crate::inventory::{now_rfc3339, prune_refusal, Inventory};
use crate::revert::taken_over;
use crate::source::SourceArgs;
use crate::waves::{Plan, PHASES};
use gitops_shared::hooks::HookPhase;

/// `--dry-run` modes, like kubectl's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DryRunMode {
    /// Compute the plan locally; send nothing that changes the cluster.
    Client,
    /// Send the applies with `dryRun=All`: the server validates and admits, persists nothing.
    Server,
}

/// Flags of `sync`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  # Apply the app at the branch head, delete what Git no longer declares, wait for health\n  kubectl gitops sync shop --repo https://git.example/deploy.git --revision main --prune --wait\n\n  # What would change, without changing anything\n  kubectl gitops sync --path apps/web --dry-run=server\n\nWaves and hooks: objects go wave by wave (annotation kubectl-gitops.io/sync-wave or argocd.argoproj.io/sync-wave, lowest first; each wave Healthy before the next); hooks (kubectl-gitops.io/hook, argocd.argoproj.io/hook, helm.sh/hook) run PreSync before anything is applied, Sync with their wave, PostSync once all is Healthy, SyncFail when the sync fails. --dry-run prints the plan.\n\nExit codes:\n  0  all applied (and Healthy with --wait)\n  1  a change was refused or failed: an apply, a hook (named in the message), an object Degraded\n  2  error: bad input or usage, unknown revision, unreachable cluster\n  3  all applied, but not every object was Healthy within --timeout (with --wait, between waves, before PostSync hooks)"
)]
pub struct SyncArgs {
    /// Which repository, revision and app.
    #[command(flatten)]
    pub source: SourceArgs,
    /// Which cluster.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Also take over fields that managers outside the app's takeOverManagers own, such as
    /// controllers (server-side apply `force`); people's tools are taken over without it.
    #[arg(long)]
    pub force_conflicts: bool,
    /// Apply every object, even those whose digest and fields already match.
    #[arg(long)]
    pub force: bool,
    /// Delete objects of the last sync's inventory that Git no longer declares.
    #[arg(long)]
    pub prune: bool,
    /// Allow a sync (and prune) when the render has no objects at all.
    #[arg(long)]
    pub allow_empty: bool,
    /// Show what would happen and change nothing.
    #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "client", require_equals = true)]
    pub dry_run: Option<DryRunMode>,
    /// Wait until every object is healthy; stop early when one is Degraded.
    #[arg(long)]
    pub wait: bool,
    /// How long the sync may take from its start: waves and hooks, and --wait (and how long a
    /// CRD may take to become Established): 90s, 5m, 1h.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// Durations as everywhere else (`90s`, `1m30s`, `1.5h`, plain seconds): one grammar.
pub use gitops_shared::duration::parse_duration;

/// What happened to one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Did not exist; applied.
    Created,
    /// Existed and differed; applied.
    Configured,
    /// Existed with hand-made fields; they were taken over and put back to Git (these ones).
    Reverted(Vec<HandField>),
    /// Digest and declared fields already matched; no request.
    Unchanged,
    /// Deleted by --prune.
    Pruned,
    /// The API server refused it, with its message.
    Failed(String),
}

impl Outcome {
    fn word(&self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Configured => "configured",
            Outcome::Reverted(_) => "reverted",
            Outcome::Unchanged => "unchanged",
            Outcome::Pruned => "pruned",
            Outcome::Failed(_) => "failed",
        }
    }
}

/// Why a sync stopped before it started applying.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// A CRD did not become Established in time.
    #[error("CustomResourceDefinition {name} did not become Established within {timeout:?}")]
    NotEstablished {
        /// The CRD's name.
        name: String,
        /// How long we waited.
        timeout: Duration,
    },
    /// An admission webhook refused the commit before anything was applied, twice.
    #[error("an admission webhook refused {key} at {revision} (a server-side dry run before the first write{}); nothing was applied: {message}", if *retried { format!(", asked again {}s later", retry_after.as_secs()) } else { String::new() })]
    RefusedBeforeApply {
        /// The object tried.
        key: ObjectKey,
        /// The commit.
        revision: String,
        /// The API server's message, with the webhook's sentence.
        message: String,
        /// How long the sync waited before trying again.
        retry_after: Duration,
        /// Whether it asked twice.
        retried: bool,
    },
    /// Talking to the cluster.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// How long `sync` waits before asking an admission webhook again about a commit it refused:
/// long enough for a webhook that fetches at most once a second to fetch a commit pushed a moment
/// ago.
const PREFLIGHT_RETRY_AFTER: Duration = Duration::from_secs(2);

/// True for the API server's relay of an admission webhook's denial that a moment may cure:
/// gitops-webhook's "commit … does not exist in …" for a commit pushed a moment ago.
fn webhook_denied_unknown_commit(error: &ClusterError) -> bool {
    let text = error.to_string();
    text.contains("admission webhook")
        && text.contains("denied the request")
        && text.contains("does not exist in")
}

/// True for the API server's relay of any admission webhook's denial.
fn webhook_denied(error: &ClusterError) -> bool {
    let text = error.to_string();
    text.contains("admission webhook") && text.contains("denied the request")
}

/// Before the first write, a server-side dry run of the first object the sync would apply: an
/// admission webhook that does not know the commit yet (pushed a moment ago) refuses it here,
/// before anything changed, so a refusal never leaves the app split across two commits. A
/// refusal of an unknown commit is asked once more after [`PREFLIGHT_RETRY_AFTER`]; any other
/// refusal stops the sync at once, and any other failure of the dry run (a Namespace not created
/// yet, say) is left for the real apply to report.
async fn preflight(
    state: &AppState,
    key: &ObjectKey,
    object: &Value,
    force_conflicts: bool,
) -> Result<(), SyncError> {
    let Ok(resource) = state.discovery.resource_of(object) else {
        return Ok(());
    };
    let mut retried = false;
    loop {
        match state
            .rest
            .apply(resource, object, force_conflicts, DryRun::Server)
            .await
        {
            Err(error) if webhook_denied(&error) => {
                if retried || !webhook_denied_unknown_commit(&error) {
                    return Err(SyncError::RefusedBeforeApply {
                        key: key.clone(),
                        revision: state.rendered.provenance.revision.clone(),
                        message: error.to_string(),
                        retry_after: PREFLIGHT_RETRY_AFTER,
                        retried,
                    });
                }
                eprintln!(
                    "{key}: an admission webhook refused the commit; asking again in {}s: {error}",
                    PREFLIGHT_RETRY_AFTER.as_secs()
                );
                tokio::time::sleep(PREFLIGHT_RETRY_AFTER).await;
                retried = true;
            }
            _ => return Ok(()),
        }
    }
}

/// Applies in flight at once. Measured with `cargo bench -p gitops-e2e --bench sync_1000` against
/// kube-apiserver v1.36: 8 left the sync at about 1.7× the API server's own ceiling (1,000 applies,
/// 32 in flight); the API server's priority and fairness admits 32 from one client, and a 429 is
/// waited out as it asks ([`crate::cluster`]'s apply).
const APPLY_CONCURRENCY: usize = 32;

/// Runs `sync`.
pub fn run(args: &SyncArgs) -> anyhow::Result<u8> {
    let runtime = runtime().context("cannot start the async runtime")?;
    runtime.block_on(sync(args))
}

/// Which phase an object is applied in: Namespaces and CRDs, custom resources, the rest.
pub fn phase_of(
    key: &ObjectKey,
    custom: &HashSet<(String, String)>,
    discovery: &Discovery,
) -> usize {
    match (key.group.as_str(), key.kind.as_str()) {
        ("", "Namespace") | ("apiextensions.k8s.io", "CustomResourceDefinition") => 0,
        (group, kind) if custom.contains(&(group.to_owned(), kind.to_owned())) => 1,
        (group, kind) if discovery.is_namespaced(group, kind).is_none() => 1,
        _ => 2,
    }
}

async fn sync(args: &SyncArgs) -> anyhow::Result<u8> {
    let state = AppState::load(&args.source, &args.cluster).await?;
    sync_state(args, state).await
}

/// Syncs an app whose state is loaded; returns the exit code.
pub async fn sync_state(args: &SyncArgs, mut state: AppState) -> anyhow::Result<u8> {
    let revision = state.rendered.provenance.revision.clone();
    state.rendered.ensure_not_empty(args.allow_empty)?;
    let dry_run = args.dry_run;
    let server_dry_run = if dry_run == Some(DryRunMode::Server) {
        DryRun::Server
    } else {
        DryRun::No
    };
    let app = state.rendered.app.name.clone();
    let namespace = state.rendered.namespace.clone();
    let applyset = state.rendered.applyset.clone();
    let desired_keys: BTreeSet<ObjectKey> =
        state.rendered.objects.iter().map(|o| o.key()).collect();
    let previous = state.inventory.clone().unwrap_or_default();
    // Asked only when the inventory is written, so a no-op resync costs no extra request.
    let mut user: Option<String> = None;

    // Record new members before applying them, so an interrupted sync leaves no orphan behind.
    let mut inventory = Inventory {
        members: previous.members.union(&desired_keys).cloned().collect(),
        ..previous.clone()
    };
    if inventory.revision.is_empty() {
        inventory.repo = state.rendered.provenance.repo.clone();
        inventory.path = state.rendered.provenance.path.clone();
        inventory.revision = revision.clone();
    }
    // Written once Namespaces exist (after phase 0), before any other object is applied.
    let mut pre_write =
        dry_run.is_none() && (state.parent.is_none() || inventory.members != previous.members);
    // The inventory the cluster holds: the parent read, until the sync writes one.
    let mut in_cluster = state.parent.as_ref().map(Inventory::from_parent);

    // Plan and apply, phase by phase, wave by wave.
    let custom: HashSet<(String, String)> =
        scopes_from_crds(state.rendered.objects.iter().map(|o| &o.object))
            .0
            .into_keys()
            .collect();
    let plan = Plan::of(&state.rendered.objects, &state.hooks, |key| {
        phase_of(key, &custom, &state.discovery)
    })?;
    // The objects a sync leaves as they are, worked out once: the preflight, the hooks' decision
    // and every apply ask, and each answer compares the whole object and its managedFields.
    let settled: HashSet<ObjectKey> = state
        .rendered
        .objects
        .iter()
        .filter(|o| unchanged(&state, &o.key(), &o.object))
        .map(|o| o.key())
        .collect();
    let skips = |key: &ObjectKey| !args.force && settled.contains(key);
    if dry_run.is_none() {
        let first = (0..PHASES).find_map(|phase| {
            // An object to adopt is left out: its apply follows a rewrite of its managedFields,
            // which a dry run cannot show.
            state.rendered.objects.iter().find(|o| {
                phase_of(&o.key(), &custom, &state.discovery) == phase
                    && !skips(&o.key())
                    && !state.live.get(&o.key()).is_some_and(adopts)
            })
        });
        if let Some(first) = first {
            let checked =
                preflight(&state, &first.key(), &first.object, args.force_conflicts).await;
            if let Err(refused @ SyncError::RefusedBeforeApply { .. }) = checked {
                // A refused change, like a refused apply: exit 1, with nothing applied.
                eprintln!("error: {refused}");
                return Ok(exit::DIFFERENCE);
            }
            checked?;
        }
    }
    print_hand_plan(&state, dry_run.is_some());
    if dry_run.is_some() && plan.is_ordered() {
        for line in plan.lines() {
            println!("{line}");
        }
    }
    // Hooks run on a sync that changes something (or is forced), never on a no-op resync.
    let applies_something = args.force
        || state
            .rendered
            .objects
            .iter()
            .any(|o| !settled.contains(&o.key()))
        || (args.prune && previous.members.difference(&desired_keys).next().is_some());
    let run_hooks = dry_run.is_none() && applies_something;
    let deadline = Instant::now() + args.timeout;
    let mut hook_records: Vec<HookRecord> = Vec::new();
    let mut stop: Option<Stop> = None;

    let mut outcomes: Vec<(ObjectKey, Outcome)> = Vec::new();
    // A PreSync hook cannot run in a namespace that does not exist yet: the Namespaces Git
    // declares for them and the cluster lacks go first (as Argo CD's CreateNamespace does).
    let early = if run_hooks {
        namespaces_for_presync(&state, &plan)
    } else {
        BTreeSet::new()
    };
    for key in &early {
        if let Some(object) = state.rendered.objects.iter().find(|o| o.key() == *key) {
            let outcome = apply_one(
                &state,
                key,
                &object.object,
                skips(key),
                args,
                dry_run,
                server_dry_run,
            )
            .await;
            if matches!(outcome, Outcome::Failed(_)) {
                stop = Some(Stop::Failed(format!("{key} did not apply")));
            }
            outcomes.push((key.clone(), outcome));
        }
    }
    if run_hooks && stop.is_none() {
        stop = run_hook_phase(
            &state,
            &plan,
            HookPhase::PreSync,
            deadline,
            &mut hook_records,
        )
        .await;
    }
    'phases: for phase in 0..PHASES {
        let waves = plan.waves(phase);
        if stop.is_some() || waves.is_empty() {
            continue;
        }
        if phase > 0 && pre_write {
            inventory.synced_at = now_rfc3339();
            inventory.synced_by = who(&state, &mut user).await;
            write_parent(&state, &inventory, &app, &namespace, &applyset).await?;
            in_cluster = Some(inventory.clone());
            pre_write = false;
        }
        if phase == 1 {
            // Custom resources need their CRD Established and discovery to know their resource.
            wait_established(&state, &custom, args.timeout, dry_run.is_some()).await?;
            // A real API server may serve a new CRD's resource a moment after Established.
            let phase_objects: Vec<&Value> = plan
                .objects
                .iter()
                .filter(|o| o.phase == phase)
                .map(|o| &state.rendered.objects[o.index].object)
                .collect();
            let deadline = Instant::now() + args.timeout.min(Duration::from_secs(30));
            while dry_run.is_none()
                && phase_objects
                    .iter()
                    .any(|o| state.discovery.resource_of(o).is_err())
            {
                state.discovery = Discovery::fetch(&state.rest.client).await?;
                let known = phase_objects
                    .iter()
                    .all(|o| state.discovery.resource_of(o).is_ok());
                if known || Instant::now() > deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        for (i, &wave) in waves.iter().enumerate() {
            let batch: Vec<(ObjectKey, Value)> = plan
                .objects_at(phase, wave)
                .into_iter()
                .filter(|o| !early.contains(&o.key))
                .map(|o| {
                    (
                        o.key.clone(),
                        state.rendered.objects[o.index].object.clone(),
                    )
                })
                .collect();
            let state_ref = &state;
            let results: Vec<(ObjectKey, Outcome)> = stream::iter(&batch)
                .map(|(key, object)| async move {
                    let outcome = apply_one(
                        state_ref,
                        key,
                        object,
                        skips(key),
                        args,
                        dry_run,
                        server_dry_run,
                    )
                    .await;
                    (key.clone(), outcome)
                })
                .buffer_unordered(APPLY_CONCURRENCY)
                .collect()
                .await;
            let wave_failed = results.iter().any(|(_, o)| matches!(o, Outcome::Failed(_)));
            // A wave the sync left as it was and that the cluster already holds Healthy needs no
            // wait: a no-op resync reads nothing more.
            let settled = results.iter().all(|(_, o)| *o == Outcome::Unchanged)
                && batch.iter().all(|(key, _)| {
                    state
                        .live
                        .get(key)
                        .is_some_and(|live| health_of(live).status == HealthStatus::Healthy)
                });
            for (key, outcome) in &results {
                if let Outcome::Failed(message) = outcome {
                    tracing::warn!(object = %key, %message, "apply failed");
                }
            }
            outcomes.extend(results);
            if run_hooks && phase == PHASES - 1 {
                let hooks = plan.hooks_at(HookPhase::Sync, wave);
                if !hooks.is_empty() {
                    let records = run_wave(&state, HookPhase::Sync, &hooks, deadline).await;
                    stop = first_failure(&records);
                    hook_records.extend(records);
                    if stop.is_some() {
                        break 'phases;
                    }
                }
            }
            // The next wave starts once this one is applied and Healthy.
            if i + 1 < waves.len() && dry_run.is_none() && !batch.is_empty() && !settled {
                if wave_failed {
                    stop = Some(Stop::Failed(format!(
                        "wave {wave} did not apply; waves after it were not applied"
                    )));
                    break 'phases;
                }
                eprintln!(
                    "wave {wave}: waiting for {} objects to be Healthy",
                    batch.len()
                );
                match watch_health(&state, &batch, deadline).await {
                    WaitEnd::Healthy => {}
                    WaitEnd::Degraded(message) => {
                        stop = Some(Stop::Failed(format!(
                            "{message}; waves after {wave} were not applied"
                        )));
                        break 'phases;
                    }
                    WaitEnd::TimedOut(message) => {
                        stop = Some(Stop::NotHealthy(format!(
                            "wave {wave}: {message}; waves after it were not applied"
                        )));
                        break 'phases;
                    }
                }
            }
        }
    }
    let failed = stop.is_some()
        || outcomes
            .iter()
            .any(|(_, o)| matches!(o, Outcome::Failed(_)));

    // Prune: only members of the last inventory, only if they still carry this app's labels and
    // their provenance names this repository and path (see `prune_refusal`).
    let mut gone: BTreeSet<ObjectKey> = BTreeSet::new();
    if args.prune {
        if failed {
            eprintln!("not pruning: the sync did not complete");
        } else {
            for key in previous.members.difference(&desired_keys) {
                let Some(live) = state.live.get(key) else {
                    gone.insert(key.clone());
                    continue;
                };
                let provenance = &state.rendered.provenance;
                if let Some(why) =
                    prune_refusal(live, &app, &applyset, &provenance.repo, &provenance.path)
                {
                    eprintln!("not pruning {key}: {why}");
                    gone.insert(key.clone());
                    continue;
                }
                let outcome = match (dry_run, state.discovery.resource_for_key(key)) {
                    (Some(DryRunMode::Client), _) => Outcome::Pruned,
                    (_, Ok(resource)) => match state
                        .rest
                        .delete(resource, &key.namespace, &key.name, server_dry_run)
                        .await
                    {
                        Ok(()) => Outcome::Pruned,
                        Err(error) => Outcome::Failed(error.to_string()),
                    },
                    (_, Err(error)) => Outcome::Failed(error.to_string()),
                };
                if outcome == Outcome::Pruned {
                    gone.insert(key.clone());
                }
                outcomes.push((key.clone(), outcome));
            }
        }
    }
    let mut failed = stop.is_some()
        || outcomes
            .iter()
            .any(|(_, o)| matches!(o, Outcome::Failed(_)));

    // PostSync hooks once every object is Healthy.
    if run_hooks && !failed && !plan.hook_waves(HookPhase::PostSync).is_empty() {
        let watched = watched_objects(&state, &outcomes);
        eprintln!(
            "PostSync: waiting for {} objects to be Healthy",
            watched.len()
        );
        stop = match watch_health(&state, &watched, deadline).await {
            WaitEnd::Healthy => {
                run_hook_phase(
                    &state,
                    &plan,
                    HookPhase::PostSync,
                    deadline,
                    &mut hook_records,
                )
                .await
            }
            WaitEnd::Degraded(message) => Some(Stop::Failed(message)),
            WaitEnd::TimedOut(message) => Some(Stop::NotHealthy(format!(
                "{message}; PostSync hooks not run"
            ))),
        };
        failed = stop.is_some();
    }
    // SyncFail hooks when the sync failed (not when it only timed out waiting for health), with
    // a --timeout of their own: the failure may have used up the sync's.
    let sync_failed = matches!(stop, Some(Stop::Failed(_)))
        || outcomes
            .iter()
            .any(|(_, o)| matches!(o, Outcome::Failed(_)));
    if run_hooks && sync_failed {
        let deadline = Instant::now() + args.timeout;
        if let Some(Stop::Failed(message)) = run_hook_phase(
            &state,
            &plan,
            HookPhase::SyncFail,
            deadline,
            &mut hook_records,
        )
        .await
        {
            eprintln!("error: {message}");
        }
    }

    // The final inventory: what Git declares plus what is still there from before.
    let mut final_inventory = Inventory {
        members: inventory.members.difference(&gone).cloned().collect(),
        ..inventory.clone()
    };
    if !hook_records.is_empty() {
        final_inventory.hooks = hook_records;
    }
    if !failed {
        final_inventory.repo = state.rendered.provenance.repo.clone();
        final_inventory.path = state.rendered.provenance.path.clone();
        final_inventory.revision = revision.clone();
    }
    // A first sync that changed nothing since its early write (the same members, revision and
    // hooks) does not write the parent again.
    let unchanged_parent = in_cluster
        .as_ref()
        .is_some_and(|w| w.same_content(&final_inventory));
    if dry_run.is_none() && !unchanged_parent {
        final_inventory.synced_at = now_rfc3339();
        final_inventory.synced_by = who(&state, &mut user).await;
        write_parent(&state, &final_inventory, &app, &namespace, &applyset).await?;
    }

    print_summary(&outcomes, &revision, dry_run);
    match stop {
        Some(Stop::Failed(message)) => {
            eprintln!("error: {message}");
            return Ok(exit::DIFFERENCE);
        }
        Some(Stop::NotHealthy(message)) => {
            eprintln!("error: {message}");
            return Ok(exit::NOT_HEALTHY);
        }
        None => {}
    }
    if failed {
        return Ok(exit::DIFFERENCE);
    }
    if args.wait && dry_run.is_none() {
        return wait_healthy(&state, &outcomes, deadline).await;
    }
    Ok(exit::OK)
}

/// Why a sync stopped before its end.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stop {
    /// A hook failed, an apply was refused, an object went Degraded: exit 1.
    Failed(String),
    /// Objects were applied but not Healthy within --timeout: exit [`exit::NOT_HEALTHY`].
    NotHealthy(String),
}

/// The first failed hook of a wave, as the reason the sync stops.
fn first_failure(records: &[HookRecord]) -> Option<Stop> {
    records
        .iter()
        .find(|r| r.result == HookResult::Failed)
        .map(|r| {
            Stop::Failed(format!(
                "{} hook {} failed: {}; nothing after it was applied",
                r.phase, r.object, r.reason
            ))
        })
}

/// The Namespaces Git declares that PreSync hooks live in and the cluster does not hold yet.
fn namespaces_for_presync(state: &AppState, plan: &Plan) -> BTreeSet<ObjectKey> {
    let wanted: BTreeSet<&str> = plan
        .hooks
        .iter()
        .filter(|h| h.hook.phases.contains(&HookPhase::PreSync))
        .filter_map(|h| {
            h.object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
        })
        .collect();
    state
        .rendered
        .objects
        .iter()
        .map(|o| o.key())
        .filter(|k| {
            k.group.is_empty()
                && k.kind == "Namespace"
                && wanted.contains(k.name.as_str())
                && !state.live.contains_key(k)
        })
        .collect()
}

/// Runs a hook phase wave by wave; stops at the first wave with a failed hook.
async fn run_hook_phase(
    state: &AppState,
    plan: &Plan,
    phase: HookPhase,
    deadline: Instant,
    records: &mut Vec<HookRecord>,
) -> Option<Stop> {
    for wave in plan.hook_waves(phase) {
        let ran = run_wave(state, phase, &plan.hooks_at(phase, wave), deadline).await;
        let failure = first_failure(&ran);
        records.extend(ran);
        if failure.is_some() {
            return failure;
        }
    }
    None
}

/// Who runs the sync: what the cluster says (SelfSubjectReview), else `$USER`; asked once.
async fn who(state: &AppState, user: &mut Option<String>) -> String {
    if user.is_none() {
        let name = state
            .rest
            .whoami()
            .await
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_default();
        *user = Some(name);
    }
    user.clone().unwrap_or_default()
}

async fn write_parent(
    state: &AppState,
    inventory: &Inventory,
    app: &str,
    namespace: &str,
    applyset: &str,
) -> Result<(), ClusterError> {
    let parent = inventory.to_parent(app, namespace, applyset);
    state
        .rest
        .apply(state.configmaps()?, &parent, true, DryRun::No)
        .await?;
    tracing::debug!(%app, members = inventory.members.len(), "inventory written");
    Ok(())
}

/// Applies one object; `skip` when it is unchanged (see [`unchanged`]) and not forced.
async fn apply_one(
    state: &AppState,
    key: &ObjectKey,
    object: &Value,
    skip: bool,
    args: &SyncArgs,
    dry_run: Option<DryRunMode>,
    server_dry_run: DryRun,
) -> Outcome {
    if skip {
        return Outcome::Unchanged;
    }
    let live = state.live.get(key);
    let take_over = &state.rendered.app.take_over_managers;
    let hand = live
        .map(|live| hand_fields(object, live, take_over))
        .unwrap_or_default();
    let reverted: Vec<HandField> = hand
        .iter()
        .filter(|f| {
            f.remedy == Remedy::Revert
                || (f.remedy == Remedy::ForceConflicts && args.force_conflicts)
        })
        .cloned()
        .collect();
    let conflicts: Vec<&HandField> = hand
        .iter()
        .filter(|f| f.remedy == Remedy::ForceConflicts && !args.force_conflicts)
        .collect();
    let outcome = match live {
        None => Outcome::Created,
        Some(_) if reverted.is_empty() => Outcome::Configured,
        Some(_) => Outcome::Reverted(reverted),
    };
    if dry_run == Some(DryRunMode::Client) {
        if !conflicts.is_empty() {
            return Outcome::Failed(format!("would conflict: {}", conflict_clause(&conflicts)));
        }
        return outcome;
    }
    let resource = match state.discovery.resource_of(object) {
        Ok(resource) => resource,
        Err(error) => return Outcome::Failed(error.to_string()),
    };
    let mut force = args.force_conflicts;
    let takes_over = hand.iter().any(|f| f.remedy == Remedy::Revert) || live.is_some_and(adopts);
    let mut pinned = None;
    if let (Some(live), true) = (live, takes_over) {
        if server_dry_run == DryRun::Server {
            // A dry run cannot show the apply a rewrite it did not persist: the fields taken over
            // are conflicts no more, the others still are.
            force = force || conflicts.is_empty();
        } else {
            match take_over_fields(state, resource, key, live).await {
                // The apply names the version the rewrite made: an update starts from the API
                // server's watch cache, and an attempt on a copy from before the rewrite would
                // reach admission webhooks with the old owners (the server then retries on a
                // fresh read, but a webhook has refused an attempt meanwhile). With the version
                // named, such an attempt is a conflict the server retries before admission.
                Ok(Some(version)) => pinned = Some(with_resource_version(object, &version)),
                Ok(None) => {}
                Err(error) => return Outcome::Failed(error.to_string()),
            }
        }
    }
    let mut result = state
        .rest
        .apply(
            resource,
            pinned.as_ref().unwrap_or(object),
            force,
            server_dry_run,
        )
        .await;
    if pinned.is_some() && result.as_ref().is_err_and(|e| e.code() == Some(409)) {
        // Written meanwhile (a controller's status, say): apply on the current version.
        result = state
            .rest
            .apply(resource, object, force, server_dry_run)
            .await;
    }
    match result {
        Ok(_) => outcome,
        Err(error) if error.code() == Some(409) => Outcome::Failed(format!(
            "{error}; a field manager that sync does not take over owns these fields ({}): change them in Git, add the manager to takeOverManagers in gitops.yaml, or pass --force-conflicts to take them over",
            if conflicts.is_empty() { "see above".to_owned() } else { conflict_clause(&conflicts) }
        )),
        Err(error) => Outcome::Failed(error.to_string()),
    }
}

/// What sync does about each hand-made field, the plan `diff` and `status` show too: with
/// `--dry-run` every field on stdout; otherwise, on stderr, the fields it leaves alone (the
/// others show as reverted or failed in the summary). No value is printed: it may be a Secret's.
fn print_hand_plan(state: &AppState, dry_run: bool) {
    let take_over = &state.rendered.app.take_over_managers;
    for (key, desired) in state.desired() {
        let Some(live) = state.live.get(&key) else {
            continue;
        };
        for field in hand_fields(desired, live, take_over) {
            if dry_run {
                println!("hand-made {key}: {}: {}", field.path, field.plan());
            } else if field.remedy == Remedy::Kept {
                eprintln!("hand-made {key}: {}: {}", field.path, field.plan());
            }
        }
    }
}

/// `spec.replicas (horizontal-pod-autoscaler), …`: conflicting fields and their owners.
fn conflict_clause(fields: &[&HandField]) -> String {
    let named: Vec<String> = fields
        .iter()
        .map(|f| format!("{} ({})", f.path, f.manager))
        .collect();
    format!(
        "{}; pass --force-conflicts to take them over",
        named.join(", ")
    )
}

/// True when the sync adopts `live`, an object it did not make (no managed-by label): what the
/// app's take-over managers own there (`kubectl create`'s fields, defaults included) goes to
/// `sync` before it applies, even at Git's values, so no co-owner pins Git's fields (the webhook
/// refuses a write that leaves one).
fn adopts(live: &Value) -> bool {
    !gitops_shared::provenance::is_managed(live)
}

/// `object` carrying `metadata.resourceVersion`: an apply that must land on that version.
fn with_resource_version(object: &Value, version: &str) -> Value {
    let mut object = object.clone();
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.insert("resourceVersion".to_owned(), Value::from(version));
    }
    object
}

/// Hands the fields of the app's take-over managers to `sync`'s apply entry; returns the
/// resourceVersion the rewrite made (`None` when nothing was rewritten). The rewrite is
/// guarded by the resourceVersion read; when a controller wrote the object meanwhile (a
/// Deployment's status after `kubectl set image`), it is read again and the rewrite retried.
async fn take_over_fields(
    state: &AppState,
    resource: &crate::cluster::ServedResource,
    key: &ObjectKey,
    live: &Value,
) -> anyhow::Result<Option<String>> {
    const ATTEMPTS: usize = 3;
    let take_over = &state.rendered.app.take_over_managers;
    let mut current = live.clone();
    for attempt in 1..=ATTEMPTS {
        let Some(entries) = taken_over(&current, take_over)
            .with_context(|| format!("{key}: cannot take over its hand-made fields"))?
        else {
            return Ok(None);
        };
        let resource_version = current
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        match state
            .rest
            .write_managed_fields(
                resource,
                &key.namespace,
                &key.name,
                &resource_version,
                entries,
                DryRun::No,
            )
            .await
        {
            Ok(version) => {
                tracing::debug!(object = %key, "hand-made fields taken over");
                return Ok(version);
            }
            Err(error) if error.code() == Some(409) && attempt < ATTEMPTS => {
                tracing::debug!(object = %key, attempt, "changed meanwhile; reading it again");
                match state.rest.get(resource, &key.namespace, &key.name).await? {
                    Some(fresh) => current = fresh,
                    None => return Ok(None),
                }
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok(None)
}

/// True when the live object already carries the desired digest and every declared field, so
/// applying it would change nothing (`--force` applies it anyway: see `skips` in [`sync_state`]).
fn unchanged(state: &AppState, key: &ObjectKey, object: &Value) -> bool {
    let Some(live) = state.live.get(key) else {
        return false;
    };
    let digest = |o: &Value| {
        o.get("metadata")
            .and_then(|m| m.get("annotations"))
            .and_then(|a| a.get(DIGEST_ANNOTATION))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    // Hand-made fields are read from the listed objects' managedFields: no request per object.
    digest(live).is_some()
        && digest(live) == digest(object)
        && declared_drift(object, live).is_empty()
        && !hand_fields(object, live, &state.rendered.app.take_over_managers)
            .iter()
            .any(|f| f.remedy == Remedy::Revert)
}

async fn wait_established(
    state: &AppState,
    custom: &HashSet<(String, String)>,
    timeout: Duration,
    dry_run: bool,
) -> Result<(), SyncError> {
    if dry_run || custom.is_empty() {
        return Ok(());
    }
    let crds: Vec<String> = state
        .rendered
        .objects
        .iter()
        .filter(|o| o.key().kind == "CustomResourceDefinition")
        .map(|o| o.key().name)
        .collect();
    let resource = state
        .discovery
        .resource("apiextensions.k8s.io/v1", "CustomResourceDefinition")?;
    let deadline = Instant::now() + timeout;
    for name in crds {
        loop {
            let crd = state.rest.get(resource, "", &name).await?;
            if crd
                .as_ref()
                .map(health_of)
                .is_some_and(|h| h.status == HealthStatus::Healthy)
            {
                break;
            }
            if Instant::now() > deadline {
                return Err(SyncError::NotEstablished { name, timeout });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    Ok(())
}

fn print_summary(outcomes: &[(ObjectKey, Outcome)], revision: &str, dry_run: Option<DryRunMode>) {
    let mut sorted: Vec<&(ObjectKey, Outcome)> = outcomes.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let suffix = match dry_run {
        Some(DryRunMode::Client) => " (dry run)",
        Some(DryRunMode::Server) => " (server dry run)",
        None => "",
    };
    let mut counts = [0usize; 6];
    for word in [
        "created",
        "configured",
        "reverted",
        "unchanged",
        "pruned",
        "failed",
    ] {
        for (key, outcome) in sorted.iter().filter(|(_, o)| o.word() == word) {
            match outcome {
                Outcome::Failed(message) => println!("{word} {key}: {message}"),
                Outcome::Reverted(fields) => {
                    let named: Vec<String> = fields
                        .iter()
                        .map(|f| format!("{} (by {})", f.path, f.manager))
                        .collect();
                    println!("{word} {key}: {}{suffix}", named.join(", "));
                }
                _ => println!("{word} {key}{suffix}"),
            }
        }
    }
    for (_, outcome) in outcomes {
        let i = match outcome {
            Outcome::Created => 0,
            Outcome::Configured => 1,
            Outcome::Unchanged => 2,
            Outcome::Pruned => 3,
            Outcome::Failed(_) => 4,
            Outcome::Reverted(_) => 5,
        };
        counts[i] += 1;
    }
    // "reverted" comes last so that the counts scripts already read keep their places.
    println!(
        "sync {}: {} created, {} configured, {} unchanged, {} pruned, {} failed, {} reverted{suffix}",
        &revision[..revision.len().min(12)],
        counts[0],
        counts[1],
        counts[2],
        counts[3],
        counts[4],
        counts[5]
    );
}

/// The declared objects the sync applied or found unchanged (not pruned), to watch for health.
fn watched_objects(state: &AppState, outcomes: &[(ObjectKey, Outcome)]) -> Vec<(ObjectKey, Value)> {
    state
        .rendered
        .objects
        .iter()
        .filter(|o| {
            outcomes
                .iter()
                .any(|(k, out)| *k == o.key() && *out != Outcome::Pruned)
        })
        .map(|o| (o.key(), o.object.clone()))
        .collect()
}

/// How watching health ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum WaitEnd {
    /// Every object Healthy.
    Healthy,
    /// One went Degraded (the sentence says which and why).
    Degraded(String),
    /// The deadline passed first (the sentence says how many were not Healthy).
    TimedOut(String),
}

/// `--wait`: exit 0 when all are Healthy, 1 when one is Degraded, [`exit::NOT_HEALTHY`] when
/// the --timeout passes first.
async fn wait_healthy(
    state: &AppState,
    outcomes: &[(ObjectKey, Outcome)],
    deadline: Instant,
) -> anyhow::Result<u8> {
    let watched = watched_objects(state, outcomes);
    Ok(match watch_health(state, &watched, deadline).await {
        WaitEnd::Healthy => exit::OK,
        WaitEnd::Degraded(_) => exit::DIFFERENCE,
        WaitEnd::TimedOut(_) => exit::NOT_HEALTHY,
    })
}

/// Reads the objects once a second, printing each change of health, until all are Healthy,
/// one is Degraded, or `deadline`.
async fn watch_health(
    state: &AppState,
    watched: &[(ObjectKey, Value)],
    deadline: Instant,
) -> WaitEnd {
    let start = Instant::now();
    let mut last: Vec<Option<Health>> = vec![None; watched.len()];
    loop {
        let rest = &state.rest;
        let discovery = &state.discovery;
        let healths: Vec<Health> = stream::iter(watched.iter())
            .map(|(key, object)| async move {
                match discovery.resource_of(object) {
                    Ok(resource) => match rest.get(resource, &key.namespace, &key.name).await {
                        Ok(Some(live)) => health_of(&live),
                        Ok(None) => Health::missing(),
                        Err(error) => Health {
                            status: HealthStatus::Unknown,
                            reason: error.to_string(),
                        },
                    },
                    Err(error) => Health {
                        status: HealthStatus::Unknown,
                        reason: error.to_string(),
                    },
                }
            })
            .buffered(CONCURRENCY)
            .collect()
            .await;
        let elapsed = start.elapsed().as_secs();
        for (i, health) in healths.iter().enumerate() {
            if last[i].as_ref() != Some(health) {
                let key = &watched[i].0;
                if health.reason.is_empty() {
                    eprintln!("[{elapsed:>3}s] {key}: {}", health.status);
                } else {
                    eprintln!(
                        "[{elapsed:>3}s] {key}: {} ({})",
                        health.status, health.reason
                    );
                }
                last[i] = Some(health.clone());
            }
        }
        if let Some((i, health)) = healths
            .iter()
            .enumerate()
            .find(|(_, h)| h.status == HealthStatus::Degraded)
        {
            let message = format!("{} is Degraded: {}", watched[i].0, health.reason);
            eprintln!("{message}");
            return WaitEnd::Degraded(message);
        }
        let waiting = healths
            .iter()
            .filter(|h| h.status != HealthStatus::Healthy)
            .count();
        if waiting == 0 {
            eprintln!("all {} objects healthy after {elapsed}s", watched.len());
            return WaitEnd::Healthy;
        }
        if Instant::now() >= deadline {
            let message =
                format!("timed out after {elapsed}s (--timeout): {waiting} objects not healthy");
            eprintln!("{message}");
            return WaitEnd::TimedOut(message);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("5x").is_err());
    }
}
