//! Rule 6: the inventory — an app's ApplySet parent, ConfigMap `gitops-<app>` — is a managed
//! object. `status` reads the app's revision from it and `sync --prune` deletes what it lists, so
//! a person who could rewrite it could make `status` lie or a prune leave dropped objects running.
//!
//! A write of it (the plugin's, or a person's that must look exactly like one) claims a commit on
//! the tracked branch that moves forward like any object's (checked before this rule), names the
//! app's own parent and ApplySet id, is signed by the authenticated user (`synced-by`), and keeps
//! every member the app declares at that commit. A DELETE passes only once the app is gone from
//! the branch head's `gitops.yaml`.

use serde_json::Value;

use gitops_shared::object::ObjectKey;
use gitops_shared::provenance::{
    applyset_id, inventory_members as members, inventory_parent, Provenance, APPLYSET_ID_LABEL,
    APP_LABEL, SYNCED_BY_ANNOTATION,
};

use crate::decision::{AppClaim, Decision, Desired, FactError, GitFacts};
use crate::denial::Denial;

/// True for an inventory: a ConfigMap carrying an ApplySet id (members carry `part-of`).
pub fn is_inventory(key: &ObjectKey, object: &Value) -> bool {
    key.group.is_empty()
        && key.kind == "ConfigMap"
        && object
            .pointer("/metadata/labels")
            .and_then(|labels| labels.get(APPLYSET_ID_LABEL))
            .is_some()
}

fn annotation<'a>(object: &'a Value, key: &str) -> &'a str {
    object
        .pointer("/metadata/annotations")
        .and_then(|annotations| annotations.get(key))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// A person's CREATE or UPDATE of an inventory whose claim (`claim`, on the tracked branch and
/// moving forward) has been checked: the rest of rule 6.
pub fn decide_write(
    key: &ObjectKey,
    claim: &Provenance,
    new: &Value,
    old: Option<&Value>,
    user: &str,
    facts: &dyn GitFacts,
) -> Decision {
    let parent = inventory_parent(&claim.app, &key.namespace);
    let label = new
        .pointer("/metadata/labels")
        .and_then(|labels| labels.get(APPLYSET_ID_LABEL))
        .and_then(Value::as_str)
        .unwrap_or_default();
    if parent != *key || label != applyset_id(&parent) {
        return Decision::deny(Denial::NotTheAppsInventory {
            key: key.clone(),
            app: claim.app.clone(),
        });
    }
    let synced_by = annotation(new, SYNCED_BY_ANNOTATION);
    if synced_by != user {
        return Decision::deny(Denial::InventorySignedByAnother {
            key: key.clone(),
            synced_by: synced_by.to_owned(),
            user: user.to_owned(),
        });
    }
    let app = AppClaim {
        app: claim.app.clone(),
        path: claim.path.clone(),
        folder_namespace: key.namespace.clone(),
    };
    let desired: std::sync::Arc<Desired> = match facts.render(&claim.repo, &claim.revision, &app) {
        Ok(desired) if desired.from_app_file => desired,
        Ok(_) | Err(FactError::AppGone(_)) => {
            return Decision::deny(Denial::NoOwner {
                key: key.clone(),
                branch: "the tracked branch".to_owned(),
            })
        }
        Err(FactError::Failed(error)) => {
            return Decision::deny(Denial::RenderFailed {
                key: key.clone(),
                app: claim.app.clone(),
                commit: claim.revision.clone(),
                repo: claim.repo.clone(),
                error,
            })
        }
    };
    // A member the app still declares may not leave the list: a prune would then skip it. (New
    // members may come: a sync records them before applying them.)
    let now = members(new);
    let before = old.map(members).unwrap_or_default();
    if let Some(dropped) = before
        .iter()
        .find(|m| desired.objects.contains_key(*m) && !now.contains(*m))
    {
        return Decision::deny(Denial::InventoryDropsDeclared {
            key: key.clone(),
            member: dropped.clone(),
            app: claim.app.clone(),
            commit: claim.revision.clone(),
        });
    }
    Decision::allow("the app's inventory at its commit")
}

/// A person's DELETE of an inventory: allowed once the app is gone from the branch head.
pub fn decide_delete(
    key: &ObjectKey,
    old: &Value,
    trusted: bool,
    facts: &dyn GitFacts,
) -> Decision {
    let app = old
        .pointer("/metadata/labels")
        .and_then(|labels| labels.get(APP_LABEL))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(claim) = Provenance::of(old).filter(|_| trusted) else {
        return Decision::allow("inventory of no trusted repository");
    };
    let head = match facts.head(&claim.repo) {
        Ok(head) => head,
        Err(error) => {
            return Decision::deny(Denial::DeleteHeadUnreadable {
                key: key.clone(),
                reason: error.to_string(),
            })
        }
    };
    let at_head = AppClaim {
        app: app.to_owned(),
        path: claim.path.clone(),
        folder_namespace: key.namespace.clone(),
    };
    match facts.render(&claim.repo, &head, &at_head) {
        Err(FactError::AppGone(_)) => Decision::allow("inventory of an app the head dropped"),
        Ok(_) => Decision::deny(Denial::InventoryInUse {
            key: key.clone(),
            app: app.to_owned(),
            commit: head,
        }),
        Err(FactError::Failed(reason)) => Decision::deny(Denial::DeleteHeadUnreadable {
            key: key.clone(),
            reason,
        }),
    }
}
