//! Rule 6: the inventory — an app's ApplySet parent, ConfigMap `gitops-<app>` — is a managed
//! object. `status` reads the app's revision from it and `sync --prune` deletes what it lists, so
//! a person who could rewrite it could make `status` lie or a prune leave dropped objects running.
//!
//! A write of it (the plugin's, or a person's that must look exactly like one) claims a commit on
//! the tracked branch that moves forward like any object's (checked before this rule), names the
//! app's own parent and ApplySet id, is signed by the authenticated user (`synced-by`), and its
//! member list moves the way a sync moves it: a member joins only when the commit or the branch
//! head declares it (a sync records new members before applying them), and leaves only when the commit no longer
//! declares it *and* a prune would not delete it any more — the object is gone, being deleted, or
//! no longer carries the app's labels and provenance (the same test the plugin's prune applies,
//! [`prune_refusal`]). Git cannot say whether an object is gone, so the server reads each
//! dropped member from the API server first ([`dropped_members_to_read`]). A DELETE passes only
//! once the app is gone from the branch head's `gitops.yaml`.

use std::collections::BTreeMap;

use serde_json::Value;

use gitops_shared::object::ObjectKey;
use gitops_shared::provenance::{
    applyset_id, inventory_members as members, inventory_parent, prune_refusal, Provenance,
    APPLYSET_ID_LABEL, APP_LABEL, SYNCED_BY_ANNOTATION,
};

use crate::decision::{AppClaim, Decision, Desired, FactError, GitFacts, LiveParent};
use crate::denial::Denial;
use crate::review::{AdmissionRequest, Operation};

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

/// The members an inventory UPDATE drops, which the server reads from the API server before
/// deciding (empty for every other request, so nothing is read for them). At most `limit`: a
/// longer list is read only in part, and the rest is refused as unverified.
pub fn dropped_members_to_read(request: &AdmissionRequest, limit: usize) -> Vec<ObjectKey> {
    let (Some(new), Some(old)) = (request.object.as_ref(), request.old_object.as_ref()) else {
        return Vec::new();
    };
    if request.operation != Operation::Update || request.sub_resource.is_some() {
        return Vec::new();
    }
    let key = ObjectKey {
        group: request.kind.group.clone(),
        kind: request.kind.kind.clone(),
        namespace: request.namespace.clone(),
        name: request.name.clone(),
    };
    if !is_inventory(&key, new) {
        return Vec::new();
    }
    let now = members(new);
    members(old)
        .into_iter()
        .filter(|m| !now.contains(m))
        .take(limit)
        .collect()
}

/// A person's CREATE or UPDATE of an inventory whose claim (`claim`, on the tracked branch and
/// moving forward) has been checked: the rest of rule 6. `new` is the object as sent (its
/// repository spelled as the plugin spelled it for the members); `dropped` the members it drops
/// as the server read them (`None`: not read).
pub fn decide_write(
    key: &ObjectKey,
    claim: &Provenance,
    new: &Value,
    old: Option<&Value>,
    user: &str,
    facts: &dyn GitFacts,
    dropped: Option<&BTreeMap<ObjectKey, LiveParent>>,
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
    let now = members(new);
    let before = old.map(members).unwrap_or_default();
    // A member joins when Git declares it. A sync records the members of the commit it is
    // about to apply before applying them, while the inventory still names the last synced
    // commit: so a new member must be declared at the claimed commit or at the branch head.
    let mut added = now
        .iter()
        .filter(|m| !before.contains(*m) && !desired.objects.contains_key(*m))
        .peekable();
    if added.peek().is_some() {
        let at_head = facts
            .head(&claim.repo)
            .ok()
            .and_then(|head| facts.render(&claim.repo, &head, &app).ok());
        let declared_at_head =
            |m: &ObjectKey| at_head.as_ref().is_some_and(|d| d.objects.contains_key(m));
        if let Some(undeclared) = added.find(|m| !declared_at_head(m)) {
            return Decision::deny(Denial::InventoryAddsUndeclared {
                key: key.clone(),
                member: undeclared.clone(),
                app: claim.app.clone(),
                commit: claim.revision.clone(),
            });
        }
    }
    // A member the app still declares may not leave the list: a prune would then skip it.
    let leaving: Vec<&ObjectKey> = before.iter().filter(|m| !now.contains(*m)).collect();
    if let Some(declared) = leaving.iter().find(|m| desired.objects.contains_key(**m)) {
        return Decision::deny(Denial::InventoryDropsDeclared {
            key: key.clone(),
            member: (*declared).clone(),
            app: claim.app.clone(),
            commit: claim.revision.clone(),
        });
    }
    // One Git dropped leaves only when a prune would not delete it any more.
    let spelled = Provenance::of(new).map_or_else(|| claim.repo.clone(), |p| p.repo);
    let applyset = applyset_id(key);
    for member in leaving {
        let unverified = |reason: &str| {
            Decision::deny(Denial::InventoryDropUnverified {
                key: key.clone(),
                member: member.clone(),
                reason: reason.to_owned(),
            })
        };
        match dropped.and_then(|read| read.get(member)) {
            None if dropped.is_none() => {
                return unverified("it has no API access to read it");
            }
            None => return unverified("too many members dropped at once to read them all"),
            Some(LiveParent::Unreadable(reason)) => return unverified(reason),
            Some(LiveParent::Absent) => {}
            Some(LiveParent::Found(live)) => {
                let deleting = live.pointer("/metadata/deletionTimestamp").is_some();
                let prunable =
                    prune_refusal(live, &claim.app, &applyset, &spelled, &claim.path).is_none();
                if prunable && !deleting {
                    return Decision::deny(Denial::InventoryHidesLiveMember {
                        key: key.clone(),
                        member: member.clone(),
                    });
                }
            }
        }
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
