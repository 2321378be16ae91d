//! Sync waves and hooks: where an object falls in a sync's order, read from its annotations.
//!
//! One reading for the plugin (which orders and runs them) and the webhook (which must recognise a
//! hook made from `generateName`). Our own annotations come first, then Argo CD's, then Helm's, so
//! repositories written for Argo CD or Helm sync unchanged.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Our wave annotation: an integer, lowest first, default 0.
pub const SYNC_WAVE_ANNOTATION: &str = "kubectl-gitops.io/sync-wave";
/// Argo CD's wave annotation, honoured when ours is absent.
pub const ARGO_SYNC_WAVE_ANNOTATION: &str = "argocd.argoproj.io/sync-wave";
/// Our hook annotation: `PreSync`, `Sync`, `PostSync`, `SyncFail`, comma-separated.
pub const HOOK_ANNOTATION: &str = "kubectl-gitops.io/hook";
/// Argo CD's hook annotation (same phase names, plus `Skip`).
pub const ARGO_HOOK_ANNOTATION: &str = "argocd.argoproj.io/hook";
/// Helm's hook annotation (`pre-install`, `post-upgrade`, …).
pub const HELM_HOOK_ANNOTATION: &str = "helm.sh/hook";
/// Helm's hook weight: orders hooks within a phase the way a wave does.
pub const HELM_HOOK_WEIGHT_ANNOTATION: &str = "helm.sh/hook-weight";
/// Our delete-policy annotation.
pub const HOOK_DELETE_POLICY_ANNOTATION: &str = "kubectl-gitops.io/hook-delete-policy";
/// Argo CD's delete-policy annotation.
pub const ARGO_HOOK_DELETE_POLICY_ANNOTATION: &str = "argocd.argoproj.io/hook-delete-policy";
/// Helm's delete-policy annotation.
pub const HELM_HOOK_DELETE_POLICY_ANNOTATION: &str = "helm.sh/hook-delete-policy";

/// The hook annotations, ours first: the first one present decides.
const HOOK_ANNOTATIONS: [&str; 3] = [HOOK_ANNOTATION, ARGO_HOOK_ANNOTATION, HELM_HOOK_ANNOTATION];

/// When a hook runs in a sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum HookPhase {
    /// Before anything is applied (a database migration).
    PreSync,
    /// With the objects of its wave.
    Sync,
    /// After every object is applied and Healthy.
    PostSync,
    /// When a sync fails (a hook failed, or an apply was refused).
    SyncFail,
}

impl fmt::Display for HookPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HookPhase::PreSync => "PreSync",
            HookPhase::Sync => "Sync",
            HookPhase::PostSync => "PostSync",
            HookPhase::SyncFail => "SyncFail",
        })
    }
}

/// When a hook object is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeletePolicy {
    /// Before the next run creates it again (the default: the last run stays to be read).
    BeforeHookCreation,
    /// Once it succeeded.
    HookSucceeded,
    /// Once it failed.
    HookFailed,
}

/// A hook: the phases it runs in and when it is deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// The phases, in the order the annotation names them, without repeats.
    pub phases: Vec<HookPhase>,
    /// Delete policies; [`DeletePolicy::BeforeHookCreation`] when none is given.
    pub delete_policies: Vec<DeletePolicy>,
}

/// Where an object falls in a sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncOrder {
    /// The wave (or Helm's hook weight): lowest first.
    pub wave: i64,
    /// How it is used as a hook, if it is one.
    pub role: Role,
}

/// What a sync does with an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// An ordinary object: applied, an inventory member, pruned when Git drops it.
    Resource,
    /// A hook: created at its moment, waited for, never a member.
    Hook(Hook),
    /// A hook of a kind sync never runs (Argo CD's `Skip`, Helm's `pre-delete`, `test`, …):
    /// neither applied nor a member.
    Skipped(String),
}

/// An annotation sync cannot read.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// A wave or hook weight that is not an integer.
    #[error("{object}: annotation {annotation}: {value:?} is not an integer (waves and hook weights are whole numbers, negative allowed)")]
    BadWave {
        /// The object (`Kind/namespace/name`).
        object: String,
        /// The annotation.
        annotation: &'static str,
        /// Its value.
        value: String,
        /// The parser's word.
        #[source]
        source: std::num::ParseIntError,
    },
    /// A hook phase or delete policy nobody defines.
    #[error("{object}: annotation {annotation}: unknown value {value:?} (known: {known})")]
    UnknownValue {
        /// The object.
        object: String,
        /// The annotation.
        annotation: &'static str,
        /// The value not understood.
        value: String,
        /// The values understood.
        known: &'static str,
    },
}

fn annotation<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object.pointer("/metadata/annotations")?.get(key)?.as_str()
}

/// `Kind/namespace/name` for messages; the `generateName` (with `*`) when there is no name.
pub fn object_label(object: &Value) -> String {
    let text = |pointer: &str| object.pointer(pointer).and_then(Value::as_str);
    let kind = text("/kind").unwrap_or("object");
    let name = match text("/metadata/name") {
        Some(name) => name.to_owned(),
        None => format!("{}*", text("/metadata/generateName").unwrap_or_default()),
    };
    match text("/metadata/namespace").filter(|ns| !ns.is_empty()) {
        Some(namespace) => format!("{kind}/{namespace}/{name}"),
        None => format!("{kind}/{name}"),
    }
}

/// The hook annotation that decides, and its value, when the object is a hook.
fn hook_annotation(object: &Value) -> Option<(&'static str, &str)> {
    HOOK_ANNOTATIONS
        .iter()
        .find_map(|key| annotation(object, key).map(|value| (*key, value)))
        .filter(|(_, value)| !value.trim().is_empty())
}

/// True when the object carries a hook annotation (ours, Argo CD's or Helm's). Rendering accepts
/// `generateName` for these objects only.
pub fn is_hook(object: &Value) -> bool {
    hook_annotation(object).is_some()
}

/// The hook annotation's raw value as the object spells it, for matching a generated hook to its
/// declaration.
pub fn hook_value(object: &Value) -> Option<(&'static str, &str)> {
    hook_annotation(object)
}

/// Reads an object's wave and hook annotations.
pub fn sync_order(object: &Value) -> Result<SyncOrder, HookError> {
    let role = role(object)?;
    let mut wave_keys = vec![SYNC_WAVE_ANNOTATION, ARGO_SYNC_WAVE_ANNOTATION];
    if matches!(role, Role::Hook(_)) {
        wave_keys.push(HELM_HOOK_WEIGHT_ANNOTATION);
    }
    let wave = match wave_keys
        .iter()
        .find_map(|key| annotation(object, key).map(|value| (*key, value)))
    {
        None => 0,
        Some((key, value)) => value
            .trim()
            .parse::<i64>()
            .map_err(|source| HookError::BadWave {
                object: object_label(object),
                annotation: key,
                value: value.to_owned(),
                source,
            })?,
    };
    Ok(SyncOrder { wave, role })
}

fn role(object: &Value) -> Result<Role, HookError> {
    let Some((key, value)) = hook_annotation(object) else {
        return Ok(Role::Resource);
    };
    let mut phases = Vec::new();
    for word in value.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let phase = if key == HELM_HOOK_ANNOTATION {
            match word {
                "pre-install" | "pre-upgrade" | "crd-install" => Some(HookPhase::PreSync),
                "post-install" | "post-upgrade" => Some(HookPhase::PostSync),
                "pre-delete" | "post-delete" | "pre-rollback" | "post-rollback" | "test"
                | "test-success" | "test-failure" => None,
                _ => {
                    return Err(HookError::UnknownValue {
                        object: object_label(object),
                        annotation: key,
                        value: word.to_owned(),
                        known: "pre-install, pre-upgrade, post-install, post-upgrade, crd-install (and pre-delete, post-delete, pre-rollback, post-rollback, test, which sync skips)",
                    })
                }
            }
        } else {
            match word {
                "PreSync" => Some(HookPhase::PreSync),
                "Sync" => Some(HookPhase::Sync),
                "PostSync" => Some(HookPhase::PostSync),
                "SyncFail" => Some(HookPhase::SyncFail),
                "Skip" | "PostDelete" | "PreDelete" => None,
                _ => {
                    return Err(HookError::UnknownValue {
                        object: object_label(object),
                        annotation: key,
                        value: word.to_owned(),
                        known: "PreSync, Sync, PostSync, SyncFail (and Skip, PreDelete, PostDelete, which sync skips)",
                    })
                }
            }
        };
        match phase {
            Some(phase) if !phases.contains(&phase) => phases.push(phase),
            Some(_) | None => {}
        }
    }
    if phases.is_empty() {
        return Ok(Role::Skipped(format!("{key}: {value}")));
    }
    Ok(Role::Hook(Hook {
        phases,
        delete_policies: delete_policies(object)?,
    }))
}

fn delete_policies(object: &Value) -> Result<Vec<DeletePolicy>, HookError> {
    let found = [
        HOOK_DELETE_POLICY_ANNOTATION,
        ARGO_HOOK_DELETE_POLICY_ANNOTATION,
        HELM_HOOK_DELETE_POLICY_ANNOTATION,
    ]
    .iter()
    .find_map(|key| annotation(object, key).map(|value| (*key, value)));
    let Some((key, value)) = found else {
        return Ok(vec![DeletePolicy::BeforeHookCreation]);
    };
    let mut policies = Vec::new();
    for word in value.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let policy = match word {
            "BeforeHookCreation" | "before-hook-creation" => DeletePolicy::BeforeHookCreation,
            "HookSucceeded" | "hook-succeeded" => DeletePolicy::HookSucceeded,
            "HookFailed" | "hook-failed" => DeletePolicy::HookFailed,
            _ => {
                return Err(HookError::UnknownValue {
                    object: object_label(object),
                    annotation: key,
                    value: word.to_owned(),
                    known: "BeforeHookCreation, HookSucceeded, HookFailed (Helm: before-hook-creation, hook-succeeded, hook-failed)",
                })
            }
        };
        if !policies.contains(&policy) {
            policies.push(policy);
        }
    }
    if policies.is_empty() {
        policies.push(DeletePolicy::BeforeHookCreation);
    }
    Ok(policies)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn annotated(pairs: &[(&str, &str)]) -> Value {
        let annotations: serde_json::Map<String, Value> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
            .collect();
        json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"generateName": "migrate-", "namespace": "shop", "annotations": annotations}})
    }

    #[test]
    fn waves_default_to_zero_and_ours_win_over_argo_cds() {
        assert_eq!(sync_order(&annotated(&[])).expect("order").wave, 0);
        let both = annotated(&[
            (SYNC_WAVE_ANNOTATION, "-2"),
            (ARGO_SYNC_WAVE_ANNOTATION, "5"),
        ]);
        assert_eq!(sync_order(&both).expect("order").wave, -2);
        let argo = annotated(&[(ARGO_SYNC_WAVE_ANNOTATION, " 3 ")]);
        assert_eq!(sync_order(&argo).expect("order").wave, 3);
        assert_eq!(sync_order(&argo).expect("order").role, Role::Resource);
    }

    #[test]
    fn a_bad_wave_names_the_object_and_the_annotation() {
        let bad = annotated(&[(ARGO_SYNC_WAVE_ANNOTATION, "first")]);
        let error = sync_order(&bad).expect_err("not a number");
        assert_eq!(
            error.to_string(),
            "Job/shop/migrate-*: annotation argocd.argoproj.io/sync-wave: \"first\" is not an integer (waves and hook weights are whole numbers, negative allowed)"
        );
    }

    #[test]
    fn argo_cd_hooks_with_their_delete_policies() {
        let hook = annotated(&[
            (ARGO_HOOK_ANNOTATION, "PreSync, SyncFail"),
            (ARGO_HOOK_DELETE_POLICY_ANNOTATION, "HookSucceeded"),
        ]);
        assert_eq!(
            sync_order(&hook).expect("order").role,
            Role::Hook(Hook {
                phases: vec![HookPhase::PreSync, HookPhase::SyncFail],
                delete_policies: vec![DeletePolicy::HookSucceeded],
            })
        );
        assert!(is_hook(&hook));
        let skip = annotated(&[(ARGO_HOOK_ANNOTATION, "Skip")]);
        assert!(matches!(
            sync_order(&skip).expect("order").role,
            Role::Skipped(_)
        ));
    }

    #[test]
    fn helm_hooks_map_to_phases_and_weights_order_them() {
        let hook = annotated(&[
            (HELM_HOOK_ANNOTATION, "pre-install,pre-upgrade"),
            (HELM_HOOK_WEIGHT_ANNOTATION, "-5"),
            (
                HELM_HOOK_DELETE_POLICY_ANNOTATION,
                "before-hook-creation,hook-succeeded",
            ),
        ]);
        let order = sync_order(&hook).expect("order");
        assert_eq!(order.wave, -5);
        assert_eq!(
            order.role,
            Role::Hook(Hook {
                phases: vec![HookPhase::PreSync],
                delete_policies: vec![
                    DeletePolicy::BeforeHookCreation,
                    DeletePolicy::HookSucceeded
                ],
            })
        );
        let post = annotated(&[(HELM_HOOK_ANNOTATION, "post-install")]);
        assert_eq!(
            sync_order(&post).expect("order").role,
            Role::Hook(Hook {
                phases: vec![HookPhase::PostSync],
                delete_policies: vec![DeletePolicy::BeforeHookCreation],
            })
        );
        let test = annotated(&[(HELM_HOOK_ANNOTATION, "test")]);
        assert!(matches!(
            sync_order(&test).expect("order").role,
            Role::Skipped(_)
        ));
    }

    #[test]
    fn unknown_phases_and_policies_are_errors() {
        let phase = annotated(&[(HOOK_ANNOTATION, "PreSnyc")]);
        let message = sync_order(&phase).expect_err("typo").to_string();
        assert!(
            message.starts_with(
                "Job/shop/migrate-*: annotation kubectl-gitops.io/hook: unknown value \"PreSnyc\""
            ),
            "{message}"
        );
        let policy = annotated(&[
            (HOOK_ANNOTATION, "PostSync"),
            (HOOK_DELETE_POLICY_ANNOTATION, "Never"),
        ]);
        let message = sync_order(&policy).expect_err("unknown").to_string();
        assert!(
            message.contains("kubectl-gitops.io/hook-delete-policy"),
            "{message}"
        );
    }
}
