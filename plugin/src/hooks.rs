//! Running hooks: objects Git declares to run once at a moment of the sync (a migration Job
//! before the Deployment changes), created, waited for and deleted per their delete policy.
//!
//! A hook is created with POST, not server-side apply: a hook made from `generateName` has no
//! name to apply to, and a hook is a run, not a state to converge to. Hooks are never inventory
//! members and never pruned; the last run's results are recorded on the inventory for `status`.

use std::fmt;
use std::time::{Duration, Instant};

use gitops_shared::health::{health_of, HealthStatus};
use gitops_shared::hooks::{object_label, DeletePolicy, Hook, HookPhase};
use gitops_shared::object::ObjectKey;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::app_state::AppState;
use crate::cluster::{ClusterError, DryRun, ServedResource};

/// How often a running hook is read.
const POLL: Duration = Duration::from_millis(500);

/// How a hook run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HookResult {
    /// Job Complete, Pod Succeeded, any other kind Healthy.
    Succeeded,
    /// Job Failed, Pod Failed, Degraded, refused, or not finished in time.
    Failed,
}

impl fmt::Display for HookResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HookResult::Succeeded => "Succeeded",
            HookResult::Failed => "Failed",
        })
    }
}

/// One hook run, as the inventory records it and `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookRecord {
    /// The phase it ran in.
    pub phase: HookPhase,
    /// `Kind/namespace/name`, with the name the API server generated.
    pub object: String,
    /// How it ended.
    pub result: HookResult,
    /// Why it failed (empty when it succeeded).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

impl fmt::Display for HookRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} hook {}: {}", self.phase, self.object, self.result)?;
        if !self.reason.is_empty() {
            write!(f, " ({})", self.reason)?;
        }
        Ok(())
    }
}

/// The lines `status` prints for the last sync's hooks: one per hook, in the order they ran.
/// The status command calls this with the inventory's records.
pub fn status_lines(records: &[HookRecord]) -> Vec<String> {
    records.iter().map(ToString::to_string).collect()
}

/// A hook to run: the rendered object and how it runs.
#[derive(Debug, Clone)]
pub struct PlannedHook {
    /// The rendered object (stamped with provenance).
    pub object: Value,
    /// Its phases and delete policies.
    pub hook: Hook,
    /// Its wave (or Helm hook weight).
    pub wave: i64,
}

impl PlannedHook {
    /// `Kind/namespace/name`, or `…/generateName*`.
    pub fn label(&self) -> String {
        object_label(&self.object)
    }

    fn generate_name(&self) -> Option<&str> {
        self.object
            .pointer("/metadata/name")
            .is_none()
            .then(|| self.object.pointer("/metadata/generateName"))
            .flatten()
            .and_then(Value::as_str)
    }
}

/// Runs the hooks of one phase and wave at once and waits for each to end by `deadline`.
pub async fn run_wave(
    state: &AppState,
    phase: HookPhase,
    hooks: &[&PlannedHook],
    deadline: Instant,
) -> Vec<HookRecord> {
    let runs = hooks
        .iter()
        .map(|hook| run_one(state, phase, hook, deadline));
    futures::future::join_all(runs).await
}

async fn run_one(
    state: &AppState,
    phase: HookPhase,
    hook: &PlannedHook,
    deadline: Instant,
) -> HookRecord {
    let failed = |object: String, reason: String| HookRecord {
        phase,
        object,
        result: HookResult::Failed,
        reason,
    };
    let resource = match state.discovery.resource_of(&hook.object) {
        Ok(resource) => resource,
        Err(error) => return failed(hook.label(), error.to_string()),
    };
    if hook
        .hook
        .delete_policies
        .contains(&DeletePolicy::BeforeHookCreation)
    {
        if let Err(error) = delete_previous(state, resource, hook, deadline).await {
            return failed(hook.label(), error.to_string());
        }
    }
    let created = match state.rest.create(resource, &hook.object).await {
        Ok(created) => created,
        Err(error) => return failed(hook.label(), error.to_string()),
    };
    let Some(key) = ObjectKey::of(&created) else {
        return failed(hook.label(), "the API server returned no name".to_owned());
    };
    tracing::info!(%phase, hook = %key, "hook created");
    eprintln!("{phase} hook {key}: created");
    let (result, reason) = wait_for(state, resource, &key, deadline).await;
    eprintln!(
        "{phase} hook {key}: {result}{}",
        if reason.is_empty() {
            String::new()
        } else {
            format!(" ({reason})")
        }
    );
    let delete = match result {
        HookResult::Succeeded => DeletePolicy::HookSucceeded,
        HookResult::Failed => DeletePolicy::HookFailed,
    };
    if hook.hook.delete_policies.contains(&delete) {
        if let Err(error) = state
            .rest
            .delete(resource, &key.namespace, &key.name, DryRun::No)
            .await
        {
            eprintln!("{phase} hook {key}: not deleted: {error}");
        }
    }
    HookRecord {
        phase,
        object: key.to_string(),
        result,
        reason,
    }
}

/// Deletes the previous run: the object of that name, or for a `generateName` hook every live
/// object of the app made from the same `generateName` that carries a hook annotation. A fixed
/// name must be gone before it can be created again, so that deletion is waited for.
async fn delete_previous(
    state: &AppState,
    resource: &ServedResource,
    hook: &PlannedHook,
    deadline: Instant,
) -> Result<(), ClusterError> {
    let Some(key) = ObjectKey::of(&hook.object).or_else(|| ObjectKey::generated(&hook.object))
    else {
        return Ok(());
    };
    if let Some(generate_name) = hook.generate_name() {
        for (live_key, live) in &state.live {
            let same = live_key.group == key.group
                && live_key.kind == key.kind
                && live_key.namespace == key.namespace
                && live
                    .pointer("/metadata/generateName")
                    .and_then(Value::as_str)
                    == Some(generate_name)
                && gitops_shared::hooks::is_hook(live);
            if same {
                state
                    .rest
                    .delete(resource, &live_key.namespace, &live_key.name, DryRun::No)
                    .await?;
            }
        }
        return Ok(());
    }
    if state
        .rest
        .get(resource, &key.namespace, &key.name)
        .await?
        .is_none()
    {
        return Ok(());
    }
    state
        .rest
        .delete(resource, &key.namespace, &key.name, DryRun::No)
        .await?;
    while Instant::now() < deadline {
        if state
            .rest
            .get(resource, &key.namespace, &key.name)
            .await?
            .is_none()
        {
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(())
}

/// Reads the hook until it ends: Complete/Succeeded/Healthy, or Failed/Degraded, or the deadline.
async fn wait_for(
    state: &AppState,
    resource: &ServedResource,
    key: &ObjectKey,
    deadline: Instant,
) -> (HookResult, String) {
    loop {
        match state.rest.get(resource, &key.namespace, &key.name).await {
            Ok(Some(live)) => {
                let health = health_of(&live);
                match health.status {
                    HealthStatus::Healthy => return (HookResult::Succeeded, String::new()),
                    HealthStatus::Degraded => return (HookResult::Failed, health.reason),
                    _ => {}
                }
            }
            Ok(None) => return (HookResult::Failed, "deleted before it finished".to_owned()),
            Err(error) => return (HookResult::Failed, error.to_string()),
        }
        if Instant::now() >= deadline {
            return (
                HookResult::Failed,
                "did not finish within the sync's --timeout".to_owned(),
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_like_a_sentence_and_keep_their_json_shape() {
        let records = vec![
            HookRecord {
                phase: HookPhase::PreSync,
                object: "Job/shop/migrate-x7k2p".into(),
                result: HookResult::Failed,
                reason: "job failed: BackoffLimitExceeded".into(),
            },
            HookRecord {
                phase: HookPhase::SyncFail,
                object: "Pod/shop/notify".into(),
                result: HookResult::Succeeded,
                reason: String::new(),
            },
        ];
        assert_eq!(
            status_lines(&records),
            vec![
                "PreSync hook Job/shop/migrate-x7k2p: Failed (job failed: BackoffLimitExceeded)",
                "SyncFail hook Pod/shop/notify: Succeeded",
            ]
        );
        assert_eq!(
            serde_json::to_string(&records).expect("json"),
            r#"[{"phase":"PreSync","object":"Job/shop/migrate-x7k2p","result":"Failed","reason":"job failed: BackoffLimitExceeded"},{"phase":"SyncFail","object":"Pod/shop/notify","result":"Succeeded"}]"#
        );
    }
}
