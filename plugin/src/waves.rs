//! The order of a sync: PreSync hooks, then the apply phases (Namespaces and CRDs, custom
//! resources, the rest) each wave by wave, lowest first, with the Sync hooks in the last phase's
//! waves; then PostSync hooks once everything is Healthy; SyncFail hooks when the sync fails.
//!
//! Argo CD orders by phase, then wave, then kind; we keep our apply phases (a custom resource
//! cannot be applied before its CRD is Established, whatever its wave says) and order waves
//! within them, as issue 11 asks.

use std::collections::BTreeSet;

use gitops_shared::hooks::{object_label, sync_order, HookError, HookPhase, Role};
use gitops_shared::object::{ObjectKey, RenderedObject};

use crate::hooks::PlannedHook;

/// How many apply phases there are (see [`crate::sync_cmd`]).
pub const PHASES: usize = 3;

/// The phase the Sync hooks run in: the last one, with the ordinary objects.
const SYNC_HOOK_PHASE: usize = PHASES - 1;

/// An object to apply at its phase and wave.
#[derive(Debug, Clone)]
pub struct PlannedObject {
    /// Its index in the render's objects.
    pub index: usize,
    /// Its key.
    pub key: ObjectKey,
    /// The apply phase.
    pub phase: usize,
    /// The wave.
    pub wave: i64,
}

/// What one step of the sync does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Run the hooks of a phase and wave.
    Hooks(HookPhase, i64),
    /// Apply the objects of a phase and wave, then run that wave's Sync hooks (last phase only).
    Apply(usize, i64),
}

/// The whole order.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Objects to apply.
    pub objects: Vec<PlannedObject>,
    /// Hooks to run, one entry per hook (a hook of several phases runs in each).
    pub hooks: Vec<PlannedHook>,
    /// Hooks sync never runs (Argo CD's `Skip`, Helm's `test`…), with why.
    pub skipped: Vec<String>,
}

impl Plan {
    /// Reads every object's wave and hook annotations. `phase_of` gives an object's apply phase.
    pub fn of(
        objects: &[RenderedObject],
        hooks: &[RenderedObject],
        phase_of: impl Fn(&ObjectKey) -> usize,
    ) -> Result<Plan, HookError> {
        let mut plan = Plan::default();
        for (index, object) in objects.iter().enumerate() {
            let key = object.key();
            plan.objects.push(PlannedObject {
                index,
                phase: phase_of(&key),
                wave: sync_order(&object.object)?.wave,
                key,
            });
        }
        for object in hooks {
            let order = sync_order(&object.object)?;
            match order.role {
                Role::Hook(hook) => plan.hooks.push(PlannedHook {
                    object: object.object.clone(),
                    hook,
                    wave: order.wave,
                }),
                Role::Skipped(why) => plan
                    .skipped
                    .push(format!("{} ({why})", object_label(&object.object))),
                Role::Resource => {}
            }
        }
        Ok(plan)
    }

    /// True when the order differs from a plain sync's: some hook, or a wave other than 0.
    pub fn is_ordered(&self) -> bool {
        !self.hooks.is_empty() || self.objects.iter().any(|o| o.wave != 0)
    }

    /// The hooks of `phase` in `wave`.
    pub fn hooks_at(&self, phase: HookPhase, wave: i64) -> Vec<&PlannedHook> {
        self.hooks
            .iter()
            .filter(|h| h.wave == wave && h.hook.phases.contains(&phase))
            .collect()
    }

    /// The waves `phase`'s hooks run in, lowest first.
    pub fn hook_waves(&self, phase: HookPhase) -> Vec<i64> {
        let waves: BTreeSet<i64> = self
            .hooks
            .iter()
            .filter(|h| h.hook.phases.contains(&phase))
            .map(|h| h.wave)
            .collect();
        waves.into_iter().collect()
    }

    /// The objects of `phase` in `wave`.
    pub fn objects_at(&self, phase: usize, wave: i64) -> Vec<&PlannedObject> {
        self.objects
            .iter()
            .filter(|o| o.phase == phase && o.wave == wave)
            .collect()
    }

    /// The waves of an apply phase, lowest first (the last phase includes the Sync hooks' waves).
    pub fn waves(&self, phase: usize) -> Vec<i64> {
        let mut waves: BTreeSet<i64> = self
            .objects
            .iter()
            .filter(|o| o.phase == phase)
            .map(|o| o.wave)
            .collect();
        if phase == SYNC_HOOK_PHASE {
            waves.extend(self.hook_waves(HookPhase::Sync));
        }
        waves.into_iter().collect()
    }

    /// Every step of a sync that succeeds, in order (SyncFail hooks are shown apart).
    pub fn steps(&self) -> Vec<Step> {
        let mut steps: Vec<Step> = self
            .hook_waves(HookPhase::PreSync)
            .into_iter()
            .map(|wave| Step::Hooks(HookPhase::PreSync, wave))
            .collect();
        for phase in 0..PHASES {
            steps.extend(self.waves(phase).into_iter().map(|w| Step::Apply(phase, w)));
        }
        steps.extend(
            self.hook_waves(HookPhase::PostSync)
                .into_iter()
                .map(|wave| Step::Hooks(HookPhase::PostSync, wave)),
        );
        steps
    }

    /// The plan as lines for `sync --dry-run` and `diff`: one per step, then the SyncFail hooks
    /// and the hooks sync skips.
    pub fn lines(&self) -> Vec<String> {
        let hooks = |phase: HookPhase, wave: i64| -> String {
            let labels: Vec<String> = self
                .hooks_at(phase, wave)
                .iter()
                .map(|h| h.label())
                .collect();
            labels.join(", ")
        };
        let mut lines = Vec::new();
        for step in self.steps() {
            match step {
                Step::Hooks(phase, wave) => {
                    lines.push(format!(
                        "{phase} hooks (wave {wave}): {}",
                        hooks(phase, wave)
                    ));
                }
                Step::Apply(phase, wave) => {
                    let mut keys: Vec<String> = self
                        .objects_at(phase, wave)
                        .iter()
                        .map(|o| o.key.to_string())
                        .collect();
                    keys.sort();
                    if !keys.is_empty() {
                        lines.push(format!("apply (wave {wave}): {}", keys.join(", ")));
                    }
                    if phase == SYNC_HOOK_PHASE && !self.hooks_at(HookPhase::Sync, wave).is_empty()
                    {
                        lines.push(format!(
                            "Sync hooks (wave {wave}): {}",
                            hooks(HookPhase::Sync, wave)
                        ));
                    }
                }
            }
        }
        for wave in self.hook_waves(HookPhase::SyncFail) {
            lines.push(format!(
                "SyncFail hooks (wave {wave}), if the sync fails: {}",
                hooks(HookPhase::SyncFail, wave)
            ));
        }
        for skipped in &self.skipped {
            lines.push(format!("skipped hook: {skipped}"));
        }
        lines
            .into_iter()
            .enumerate()
            .map(|(i, line)| format!("plan {}: {line}", i + 1))
            .collect()
    }
}

/// For `diff`: the order a sync would follow, on stderr (stdout is the diff), when the app has
/// hooks or waves; an unreadable wave or hook annotation is an error, as it is for `sync`.
pub fn print_plan(state: &crate::app_state::AppState) -> Result<(), HookError> {
    let custom: std::collections::HashSet<(String, String)> =
        gitops_shared::scope::scopes_from_crds(state.rendered.objects.iter().map(|o| &o.object))
            .0
            .into_keys()
            .collect();
    let plan = Plan::of(&state.rendered.objects, &state.hooks, |key| {
        crate::sync_cmd::phase_of(key, &custom, &state.discovery)
    })?;
    if plan.is_ordered() {
        for line in plan.lines() {
            eprintln!("{line}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use gitops_shared::object::Source;
    use serde_json::{json, Value};

    fn rendered(object: Value) -> RenderedObject {
        RenderedObject {
            source: Source {
                file: "app/all.yaml".into(),
                document: 1,
            },
            object,
        }
    }

    fn object(kind: &str, name: &str, annotations: Value) -> RenderedObject {
        rendered(json!({"apiVersion": "v1", "kind": kind,
            "metadata": {"name": name, "namespace": "shop", "annotations": annotations}}))
    }

    #[test]
    fn hooks_and_waves_in_order() {
        let objects = vec![
            object("Namespace", "shop", json!({})),
            object(
                "ConfigMap",
                "late",
                json!({"argocd.argoproj.io/sync-wave": "2"}),
            ),
            object(
                "ConfigMap",
                "early",
                json!({"kubectl-gitops.io/sync-wave": "-1"}),
            ),
            object("Service", "web", json!({})),
        ];
        let hooks = vec![
            rendered(json!({"apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"generateName": "migrate-", "namespace": "shop",
                    "annotations": {"helm.sh/hook": "pre-upgrade", "helm.sh/hook-weight": "-1"}}})),
            object(
                "Pod",
                "smoke",
                json!({"argocd.argoproj.io/hook": "PostSync"}),
            ),
            object(
                "Pod",
                "between",
                json!({"argocd.argoproj.io/hook": "Sync", "argocd.argoproj.io/sync-wave": "1"}),
            ),
            object(
                "Pod",
                "page",
                json!({"argocd.argoproj.io/hook": "SyncFail"}),
            ),
            object("Pod", "test", json!({"helm.sh/hook": "test"})),
        ];
        let plan =
            Plan::of(&objects, &hooks, |k| usize::from(k.kind != "Namespace") * 2).expect("plan");
        assert!(plan.is_ordered());
        assert_eq!(
            plan.lines(),
            vec![
                "plan 1: PreSync hooks (wave -1): Job/shop/migrate-*",
                "plan 2: apply (wave 0): Namespace/shop/shop",
                "plan 3: apply (wave -1): ConfigMap/shop/early",
                "plan 4: apply (wave 0): Service/shop/web",
                "plan 5: Sync hooks (wave 1): Pod/shop/between",
                "plan 6: apply (wave 2): ConfigMap/shop/late",
                "plan 7: PostSync hooks (wave 0): Pod/shop/smoke",
                "plan 8: SyncFail hooks (wave 0), if the sync fails: Pod/shop/page",
                "plan 9: skipped hook: Pod/shop/test (helm.sh/hook: test)",
            ]
        );
    }

    #[test]
    fn a_bad_wave_stops_the_plan() {
        let objects = vec![object(
            "ConfigMap",
            "c",
            json!({"kubectl-gitops.io/sync-wave": "1.5"}),
        )];
        let error = Plan::of(&objects, &[], |_| 2).expect_err("bad wave");
        assert!(
            error
                .to_string()
                .starts_with("ConfigMap/shop/c: annotation kubectl-gitops.io/sync-wave: \"1.5\""),
            "{error}"
        );
        let plain = vec![object("ConfigMap", "c", json!({}))];
        assert!(!Plan::of(&plain, &[], |_| 2).expect("plan").is_ordered());
    }
}
