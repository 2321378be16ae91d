//! The app's inventory: a KEP-3659 ApplySet parent, ConfigMap `gitops-<app>` in the app's
//! namespace, so `kubectl` understands the set. Beyond the standard labels and annotations it
//! records the app's repository, path, revision, sync time and user, and the exact member list,
//! so pruning deletes what the last sync applied and nothing else.

use std::collections::BTreeSet;

use gitops_shared::object::ObjectKey;
use gitops_shared::provenance::{
    inventory_members, inventory_parent, APPLYSET_GROUP_KINDS_ANNOTATION, APPLYSET_ID_LABEL,
    APPLYSET_NAMESPACES_ANNOTATION, APPLYSET_TOOLING_ANNOTATION, APP_LABEL, MANAGED_BY,
    MANAGED_BY_LABEL, PATH_ANNOTATION, REPO_ANNOTATION, REVISION_ANNOTATION,
};
use serde_json::{json, Value};

/// Annotation on the parent: when the last sync wrote it (RFC 3339, UTC).
pub const SYNCED_AT_ANNOTATION: &str = "kubectl-gitops.io/synced-at";
/// Annotation on the parent: the hooks of the last sync that ran hooks, as JSON (see
/// [`HookRecord`]); `status` shows them.
pub const HOOKS_ANNOTATION: &str = "kubectl-gitops.io/hooks";
pub use crate::hooks::HookRecord;
pub use gitops_shared::provenance::{INVENTORY_MEMBERS_KEY as MEMBERS_KEY, SYNCED_BY_ANNOTATION};

/// The parent's content as this module reads and writes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Inventory {
    /// Repository URL of the last sync.
    pub repo: String,
    /// App path of the last sync.
    pub path: String,
    /// Commit of the last sync.
    pub revision: String,
    /// When the last sync wrote the parent.
    pub synced_at: String,
    /// Who ran it.
    pub synced_by: String,
    /// The members.
    pub members: BTreeSet<ObjectKey>,
    /// The hooks the last sync that ran hooks ran, with their results (never members).
    pub hooks: Vec<HookRecord>,
}

impl Inventory {
    /// Reads a parent ConfigMap. Members that cannot be read are skipped.
    pub fn from_parent(parent: &Value) -> Inventory {
        let annotation = |key: &str| {
            parent
                .get("metadata")
                .and_then(|m| m.get("annotations"))
                .and_then(|a| a.get(key))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let members = inventory_members(parent);
        Inventory {
            repo: annotation(REPO_ANNOTATION),
            path: annotation(PATH_ANNOTATION),
            revision: annotation(REVISION_ANNOTATION),
            synced_at: annotation(SYNCED_AT_ANNOTATION),
            synced_by: annotation(SYNCED_BY_ANNOTATION),
            members,
            hooks: serde_json::from_str(&annotation(HOOKS_ANNOTATION)).unwrap_or_default(),
        }
    }

    /// Equal in everything but time and user: a sync that would write only those skips the write.
    pub fn same_content(&self, other: &Inventory) -> bool {
        self.repo == other.repo
            && self.path == other.path
            && self.revision == other.revision
            && self.members == other.members
            && self.hooks == other.hooks
    }

    /// The parent ConfigMap for `app` in `namespace` with ApplySet id `applyset`.
    pub fn to_parent(&self, app: &str, namespace: &str, applyset: &str) -> Value {
        let key = inventory_parent(app, namespace);
        let group_kinds: BTreeSet<String> = self
            .members
            .iter()
            .map(|m| {
                if m.group.is_empty() {
                    m.kind.clone()
                } else {
                    format!("{}.{}", m.kind, m.group)
                }
            })
            .collect();
        let namespaces: BTreeSet<&str> = self
            .members
            .iter()
            .map(|m| m.namespace.as_str())
            .filter(|ns| !ns.is_empty() && *ns != namespace)
            .collect();
        let members: Vec<[&str; 4]> = self
            .members
            .iter()
            .map(|m| {
                [
                    m.group.as_str(),
                    m.kind.as_str(),
                    m.namespace.as_str(),
                    m.name.as_str(),
                ]
            })
            .collect();
        let mut parent = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": key.name,
                "namespace": namespace,
                // Managed like the app's objects: the webhook holds its writes to Git (rule 6).
                "labels": {
                    APPLYSET_ID_LABEL: applyset,
                    MANAGED_BY_LABEL: MANAGED_BY,
                    APP_LABEL: app,
                },
                "annotations": {
                    APPLYSET_TOOLING_ANNOTATION: format!("kubectl-gitops/v{}", env!("CARGO_PKG_VERSION")),
                    APPLYSET_GROUP_KINDS_ANNOTATION: group_kinds.into_iter().collect::<Vec<_>>().join(","),
                    APPLYSET_NAMESPACES_ANNOTATION: namespaces.into_iter().collect::<Vec<_>>().join(","),
                    REPO_ANNOTATION: self.repo,
                    PATH_ANNOTATION: self.path,
                    REVISION_ANNOTATION: self.revision,
                    SYNCED_AT_ANNOTATION: self.synced_at,
                    SYNCED_BY_ANNOTATION: self.synced_by,
                },
            },
            "data": { MEMBERS_KEY: serde_json::to_string(&members).unwrap_or_default() },
        });
        // Only when hooks ran, so apps without hooks keep the parent they always had.
        if !self.hooks.is_empty() {
            if let Some(annotations) = parent
                .pointer_mut("/metadata/annotations")
                .and_then(Value::as_object_mut)
            {
                annotations.insert(
                    HOOKS_ANNOTATION.to_owned(),
                    Value::from(serde_json::to_string(&self.hooks).unwrap_or_default()),
                );
            }
        }
        parent
    }
}

pub use gitops_shared::provenance::prune_refusal;

/// Now as RFC 3339 UTC (`2026-11-26T17:00:00Z`).
pub use gitops_shared::timestamp::now_rfc3339;

#[cfg(test)]
mod tests {
    use super::*;
    use gitops_shared::provenance::Provenance;

    #[test]
    fn parent_round_trips_and_has_applyset_shape() {
        let mut inventory = Inventory {
            repo: "file:///repo".into(),
            path: "apps/shop".into(),
            revision: "a".repeat(40),
            synced_at: now_rfc3339(),
            synced_by: "admin".into(),
            members: BTreeSet::new(),
            hooks: vec![HookRecord {
                phase: gitops_shared::hooks::HookPhase::PreSync,
                object: "Job/shop/migrate-x7k2p".into(),
                result: crate::hooks::HookResult::Succeeded,
                reason: String::new(),
            }],
        };
        inventory.members.insert(ObjectKey {
            group: "apps".into(),
            kind: "Deployment".into(),
            namespace: "shop".into(),
            name: "web".into(),
        });
        inventory.members.insert(ObjectKey {
            group: String::new(),
            kind: "Namespace".into(),
            namespace: String::new(),
            name: "shop".into(),
        });
        inventory.members.insert(ObjectKey {
            group: String::new(),
            kind: "ConfigMap".into(),
            namespace: "other".into(),
            name: "c".into(),
        });
        let parent = inventory.to_parent("shop", "shop", "applyset-x-v1");
        let annotations = &parent["metadata"]["annotations"];
        assert_eq!(
            annotations[APPLYSET_GROUP_KINDS_ANNOTATION],
            "ConfigMap,Deployment.apps,Namespace"
        );
        assert_eq!(annotations[APPLYSET_NAMESPACES_ANNOTATION], "other");
        assert_eq!(
            annotations[APPLYSET_TOOLING_ANNOTATION],
            format!("kubectl-gitops/v{}", env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(
            parent["metadata"]["labels"][APPLYSET_ID_LABEL],
            "applyset-x-v1"
        );
        assert_eq!(Inventory::from_parent(&parent), inventory);
        assert_eq!(now_rfc3339().len(), 20);
    }

    /// Issue 8: the objects of `a/y/web` carried app `web` and the ApplySet of `gitops-web`, as
    /// `a/x/web`'s did; only the path in their provenance tells them apart.
    #[test]
    fn prune_takes_only_objects_of_the_same_repository_and_path() {
        let object = |repo: &str, path: &str| {
            let mut cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "c", "namespace": "ns"}, "data": {"a": "1"}});
            let provenance = Provenance {
                repo: repo.into(),
                revision: "a".repeat(40),
                path: path.into(),
                app: "web".into(),
            };
            gitops_shared::provenance::stamp(&mut cm, &provenance, "applyset-w-v1");
            cm
        };
        let ours = object("file:///repo", "a/x/web");
        assert_eq!(
            prune_refusal(&ours, "web", "applyset-w-v1", "file:///repo", "a/x/web"),
            None
        );
        let theirs = object("file:///repo", "a/y/web");
        let why = prune_refusal(&theirs, "web", "applyset-w-v1", "file:///repo", "a/x/web")
            .expect("refused");
        assert!(why.contains("\"a/y/web\""), "{why}");
        let other_repo = object("file:///other", "a/x/web");
        assert!(prune_refusal(
            &other_repo,
            "web",
            "applyset-w-v1",
            "file:///repo",
            "a/x/web"
        )
        .is_some());
        assert!(
            prune_refusal(&ours, "a-x-web", "applyset-w-v1", "file:///repo", "a/x/web")
                .is_some_and(|why| why.contains("labels"))
        );
        let mut bare = ours.clone();
        bare["metadata"]["annotations"] = json!({});
        assert!(
            prune_refusal(&bare, "web", "applyset-w-v1", "file:///repo", "a/x/web")
                .is_some_and(|why| why.contains("no provenance"))
        );
    }
}
