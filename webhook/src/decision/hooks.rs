//! Hooks (issue 11): a hook made from `generateName` gets a name from the API server that no
//! commit holds, so it is matched to Git's declaration by kind, namespace, `generateName` and
//! hook annotation — and only a hook may be matched so. A hook's run is deleted by the sync that
//! runs it again (or once it ends), so deleting a run of a hook the head declares is no prune.

use gitops_shared::hooks::{hook_value, is_hook};

use super::*;

/// The key Git declares the written object under: its own, or for a hook made from
/// `generateName` that Git declares by no name of its own, the key carrying the `generateName`
/// (how rendering keys such a hook).
pub(super) fn declared_key(key: &ObjectKey, new: &Value, facts: &dyn GitFacts) -> ObjectKey {
    if !is_hook(new) || !facts.owners(key).is_empty() {
        return key.clone();
    }
    match ObjectKey::generated(new) {
        Some(generated) if generated != *key => generated,
        _ => key.clone(),
    }
}

/// True when `desired`, found under a `generateName` key, declares a hook made from that same
/// `generateName` with the same hook annotation as `new`: an object Git names, or a non-hook,
/// is never matched by a made-up name.
pub(super) fn same_hook(desired: &Value, new: &Value) -> bool {
    let generate_name = |o: &Value| {
        o.pointer("/metadata/generateName")
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    desired.pointer("/metadata/name").is_none()
        && generate_name(desired).is_some()
        && generate_name(desired) == generate_name(new)
        && hook_value(desired).is_some()
        && hook_value(desired) == hook_value(new)
}

/// True when deleting `old` deletes a run of a hook the head declares (by its name, or by its
/// `generateName`): what a sync does before it runs the hook again or once it ended.
pub(super) fn is_hook_run(old: &Value, declared: &HeadDeclaration) -> bool {
    if !is_hook(old) || !is_hook(&declared.object) {
        return false;
    }
    match declared.object.pointer("/metadata/name") {
        Some(_) => true,
        None => same_hook(&declared.object, old),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(name: Option<&str>, generate_name: &str, hook: Option<&str>) -> Value {
        let mut object = json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"generateName": generate_name, "namespace": "shop", "annotations": {}}});
        if let Some(name) = name {
            object["metadata"]["name"] = Value::from(name);
        }
        if let Some(hook) = hook {
            object["metadata"]["annotations"]["argocd.argoproj.io/hook"] = Value::from(hook);
        }
        object
    }

    #[test]
    fn only_a_hook_from_the_same_generate_name_and_phase_matches() {
        let declared = job(None, "migrate-", Some("PreSync"));
        let run = job(Some("migrate-x7k2p"), "migrate-", Some("PreSync"));
        assert!(same_hook(&declared, &run));
        assert!(!same_hook(
            &declared,
            &job(Some("migrate-x7k2p"), "migrate-", Some("PostSync"))
        ));
        assert!(!same_hook(
            &declared,
            &job(Some("migrate-x7k2p"), "migrate-", None)
        ));
        assert!(!same_hook(
            &declared,
            &job(Some("other-x7k2p"), "other-", Some("PreSync"))
        ));
        // A Job Git names "migrate-" is no template for made-up names.
        let named = job(Some("migrate-"), "migrate-", Some("PreSync"));
        assert!(!same_hook(&named, &run));
    }
}
