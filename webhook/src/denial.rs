//! Why the webhook refuses a change: one variant per reason. `Display` is the one sentence a
//! person reads (the API server relays it after `admission webhook "…" denied the request: `),
//! and [`Denial::reason`] — the variant's name — is the `reason` label of
//! `gitops_webhook_reviews_total`, so a dashboard counts refusals by cause.
//!
//! Values in a sentence are already shown for people (strings bare, others as JSON, long ones
//! cut, a Secret's values never): the decision formats them, this type only words them.

use gitops_shared::object::ObjectKey;
use gitops_shared::provenance::{MANAGED_BY, MANAGED_BY_LABEL};

/// A refusal, with what its sentence names.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // The fields are the sentence's blanks; the variants say what they mean.
pub enum Denial {
    /// A scale sets `spec.replicas` to another value than Git declares.
    ScaleOffGit {
        parent: ObjectKey,
        replicas: String,
        commit: String,
        branch: String,
        declared: String,
    },
    /// A person scales an object whose replicas Git leaves to controllers.
    ScaleOfUndeclaredReplicas {
        parent: ObjectKey,
        from: String,
        to: String,
        user: String,
        commit: String,
        branch: String,
    },
    /// The parent of a scale could not be read from the API server.
    ScaleParentUnreadable { target: String, reason: String },
    /// The branch head could not be rendered for a scale's parent.
    ScaleHeadUnreadable { key: ObjectKey, reason: String },
    /// A DELETE of an object the branch head still declares.
    StillDeclared {
        key: ObjectKey,
        app: String,
        commit: String,
        branch: String,
        fetched: String,
    },
    /// A DELETE when the branch head cannot be read.
    DeleteHeadUnreadable { key: ObjectKey, reason: String },
    /// An unmanaged HPA targets a managed object.
    AutoscalerOfManagedObject { key: ObjectKey, target: ObjectKey },
    /// A person's create of an unmanaged object in a Git-only namespace.
    GitOnlyNamespace { key: ObjectKey },
    /// A person removes the managed-by label.
    Unmanaging { key: ObjectKey },
    /// The managed-by label without the rest of the provenance.
    MissingProvenance { key: ObjectKey },
    /// A repository this webhook does not trust.
    UntrustedRepository {
        key: ObjectKey,
        repo: String,
        trusted: String,
    },
    /// A revision that is not a full commit id.
    NotAFullCommit { key: ObjectKey, revision: String },
    /// A commit the mirror does not hold, after the fetch the request could wait for.
    UnknownCommit {
        key: ObjectKey,
        commit: String,
        repo: String,
        branch: String,
        fetched: String,
    },
    /// A commit that is not on the tracked branch.
    NotOnBranch {
        key: ObjectKey,
        commit: String,
        repo: String,
        branch: String,
    },
    /// Where a commit stands could not be established.
    CommitUncheckable {
        key: ObjectKey,
        commit: String,
        repo: String,
        error: String,
    },
    /// `revisionMode: head` and the commit is not the head.
    NotTheHead {
        key: ObjectKey,
        commit: String,
        head: String,
        branch: String,
    },
    /// `revisionMode: head` and the head could not be read.
    HeadUnreadable {
        key: ObjectKey,
        branch: String,
        error: String,
    },
    /// A move to a commit that does not descend from the object's current one.
    Rollback {
        key: ObjectKey,
        commit: String,
        current: String,
        branch: String,
    },
    /// Ancestry could not be established.
    AncestryUncheckable {
        key: ObjectKey,
        current: String,
        commit: String,
        error: String,
    },
    /// A claimed path not written the one way the plugin writes it.
    PathNotNormal { key: ObjectKey, path: String },
    /// No app of the head's gitops.yaml declares the object.
    NoOwner { key: ObjectKey, branch: String },
    /// The claim names another app, path or repository than Git binds the object to.
    WrongOwner {
        key: ObjectKey,
        owner_app: String,
        owner_path: String,
        app: String,
        path: String,
        branch: String,
    },
    /// Several apps declare the object.
    SeveralOwners {
        key: ObjectKey,
        apps: String,
        branch: String,
    },
    /// The claimed app could not be rendered.
    RenderFailed {
        key: ObjectKey,
        app: String,
        commit: String,
        repo: String,
        error: String,
    },
    /// The claimed app does not declare the object.
    NotDeclared {
        key: ObjectKey,
        app: String,
        commit: String,
    },
    /// A keyed list holds two entries with one key.
    DuplicateKey {
        key: ObjectKey,
        path: String,
        entries: usize,
        commit: String,
        branch: String,
    },
    /// A field Git declares holds another value.
    FieldDiffers {
        key: ObjectKey,
        path: String,
        live: String,
        commit: String,
        branch: String,
        declared: String,
        more: String,
    },
    /// Something new (an object, container, entry) holds a field neither Git nor the server
    /// explains.
    UnexplainedField {
        key: ObjectKey,
        path: String,
        value: String,
        more: String,
        commit: String,
        branch: String,
    },
    /// A field Git does not declare changed.
    UndeclaredChange {
        key: ObjectKey,
        path: String,
        from: String,
        to: String,
        user: String,
        more: String,
        commit: String,
        branch: String,
    },
    /// A field manager other than kubectl-gitops would own a field Git declares.
    CoOwnership {
        key: ObjectKey,
        manager: String,
        path: String,
    },
    /// An inventory that is not the claimed app's own parent or ApplySet.
    NotTheAppsInventory { key: ObjectKey, app: String },
    /// An inventory whose `synced-by` is not the user writing it.
    InventorySignedByAnother {
        key: ObjectKey,
        synced_by: String,
        user: String,
    },
    /// An inventory write that drops a member the app still declares.
    InventoryDropsDeclared {
        key: ObjectKey,
        member: ObjectKey,
        app: String,
        commit: String,
    },
    /// An inventory write that adds a member the app does not declare at the commit.
    InventoryAddsUndeclared {
        key: ObjectKey,
        member: ObjectKey,
        app: String,
        commit: String,
    },
    /// An inventory write that drops a member a prune would still delete: the object runs on,
    /// hidden from the next prune.
    InventoryHidesLiveMember { key: ObjectKey, member: ObjectKey },
    /// An inventory write that drops a member the webhook could not read.
    InventoryDropUnverified {
        key: ObjectKey,
        member: ObjectKey,
        reason: String,
    },
    /// A DELETE of an inventory whose app the branch head still lists.
    InventoryInUse {
        key: ObjectKey,
        app: String,
        commit: String,
    },
    /// The decision failed or ran past its deadline (the server's own refusals).
    Undecided { reason: String },
}

impl Denial {
    /// The variant's name: the `reason` label of `gitops_webhook_reviews_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            Denial::ScaleOffGit { .. } => "ScaleOffGit",
            Denial::ScaleOfUndeclaredReplicas { .. } => "ScaleOfUndeclaredReplicas",
            Denial::ScaleParentUnreadable { .. } => "ScaleParentUnreadable",
            Denial::ScaleHeadUnreadable { .. } => "ScaleHeadUnreadable",
            Denial::StillDeclared { .. } => "StillDeclared",
            Denial::DeleteHeadUnreadable { .. } => "DeleteHeadUnreadable",
            Denial::AutoscalerOfManagedObject { .. } => "AutoscalerOfManagedObject",
            Denial::GitOnlyNamespace { .. } => "GitOnlyNamespace",
            Denial::Unmanaging { .. } => "Unmanaging",
            Denial::MissingProvenance { .. } => "MissingProvenance",
            Denial::UntrustedRepository { .. } => "UntrustedRepository",
            Denial::NotAFullCommit { .. } => "NotAFullCommit",
            Denial::UnknownCommit { .. } => "UnknownCommit",
            Denial::NotOnBranch { .. } => "NotOnBranch",
            Denial::CommitUncheckable { .. } => "CommitUncheckable",
            Denial::NotTheHead { .. } => "NotTheHead",
            Denial::HeadUnreadable { .. } => "HeadUnreadable",
            Denial::Rollback { .. } => "Rollback",
            Denial::AncestryUncheckable { .. } => "AncestryUncheckable",
            Denial::PathNotNormal { .. } => "PathNotNormal",
            Denial::NoOwner { .. } => "NoOwner",
            Denial::WrongOwner { .. } => "WrongOwner",
            Denial::SeveralOwners { .. } => "SeveralOwners",
            Denial::RenderFailed { .. } => "RenderFailed",
            Denial::NotDeclared { .. } => "NotDeclared",
            Denial::DuplicateKey { .. } => "DuplicateKey",
            Denial::FieldDiffers { .. } => "FieldDiffers",
            Denial::UnexplainedField { .. } => "UnexplainedField",
            Denial::UndeclaredChange { .. } => "UndeclaredChange",
            Denial::CoOwnership { .. } => "CoOwnership",
            Denial::NotTheAppsInventory { .. } => "NotTheAppsInventory",
            Denial::InventorySignedByAnother { .. } => "InventorySignedByAnother",
            Denial::InventoryDropsDeclared { .. } => "InventoryDropsDeclared",
            Denial::InventoryAddsUndeclared { .. } => "InventoryAddsUndeclared",
            Denial::InventoryHidesLiveMember { .. } => "InventoryHidesLiveMember",
            Denial::InventoryDropUnverified { .. } => "InventoryDropUnverified",
            Denial::InventoryInUse { .. } => "InventoryInUse",
            Denial::Undecided { .. } => "Undecided",
        }
    }
}

/// The first seven characters of a commit, as people write it.
fn short(commit: &str) -> &str {
    commit.get(..7).unwrap_or(commit)
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Denial::ScaleOffGit { parent, replicas, commit, branch, declared } => write!(
                f,
                "{parent}: spec.replicas is {replicas}, commit {} on {branch} says {declared} — change it in Git (kubectl scale is an out-of-band change)",
                short(commit)
            ),
            Denial::ScaleOfUndeclaredReplicas { parent, from, to, user, commit, branch } => write!(
                f,
                "{parent}: spec.replicas changed from {from} to {to} by {user}, but Git (commit {} on {branch}) does not declare it; only controllers such as the HorizontalPodAutoscaler may change it — declare replicas in Git instead",
                short(commit)
            ),
            Denial::ScaleParentUnreadable { target, reason } => {
                write!(f, "cannot tell whether {target} is managed: {reason}; try again")
            }
            Denial::ScaleHeadUnreadable { key, reason } => write!(
                f,
                "{key}: cannot tell whether the branch head declares spec.replicas ({reason}); try again, or change replicas in Git"
            ),
            Denial::StillDeclared { key, app, commit, branch, fetched } => write!(
                f,
                "{key}: app {app} still declares it at commit {} (head of {branch}, {fetched}); delete it by removing it from Git and syncing",
                short(commit)
            ),
            Denial::DeleteHeadUnreadable { key, reason } => write!(
                f,
                "{key}: cannot tell whether the branch head still declares it ({reason}); try again, or delete it by removing it from Git"
            ),
            Denial::AutoscalerOfManagedObject { key, target } => write!(
                f,
                "{key}: it scales {target}, which Git manages, but is not in Git itself; an autoscaler of a managed object is declared in Git next to it (otherwise the HPA controller would scale it on a person's behalf)"
            ),
            Denial::GitOnlyNamespace { key } => write!(
                f,
                "{key}: namespace {} is Git-only and this object carries no kubectl-gitops provenance; add it to Git and run kubectl gitops sync",
                key.namespace
            ),
            Denial::Unmanaging { key } => write!(
                f,
                "{key}: removing the label {MANAGED_BY_LABEL}={MANAGED_BY} is refused; an object leaves GitOps by being removed from Git"
            ),
            Denial::MissingProvenance { key } => write!(
                f,
                "{key}: it is labelled {MANAGED_BY_LABEL}={MANAGED_BY} but lacks the repository, revision or path annotation or the app label; sync it with kubectl gitops sync"
            ),
            Denial::UntrustedRepository { key, repo, trusted } => write!(
                f,
                "{key}: repository {repo} is not trusted by this webhook (trusted: {trusted}); sync from a trusted repository"
            ),
            Denial::NotAFullCommit { key, revision } => write!(
                f,
                "{key}: revision {revision:?} is not a full 40-hex commit; sync it with kubectl gitops sync"
            ),
            Denial::UnknownCommit { key, commit, repo, branch, fetched } => write!(
                f,
                "{key}: commit {} does not exist in {repo} ({fetched}); push it to {branch} and sync",
                short(commit)
            ),
            Denial::NotOnBranch { key, commit, repo, branch } => write!(
                f,
                "{key}: commit {} of {repo} is not on branch {branch} (it exists only on another branch or a fork); merge it into {branch} and sync",
                short(commit)
            ),
            Denial::CommitUncheckable { key, commit, repo, error } => write!(
                f,
                "{key}: cannot check commit {} of {repo}: {error}",
                short(commit)
            ),
            Denial::NotTheHead { key, commit, head, branch } => write!(
                f,
                "{key}: commit {} is not the head of {branch} ({}); this webhook accepts only the branch head — sync the head",
                short(commit),
                short(head)
            ),
            Denial::HeadUnreadable { key, branch, error } => {
                write!(f, "{key}: cannot read the head of {branch}: {error}")
            }
            Denial::Rollback { key, commit, current, branch } => write!(
                f,
                "{key}: commit {} is not a descendant of the object's current commit {}; revisions only move forward on {branch} — to roll back, git revert and sync the new commit",
                short(commit),
                short(current)
            ),
            Denial::AncestryUncheckable { key, current, commit, error } => write!(
                f,
                "{key}: cannot compare commits {} and {}: {error}",
                short(current),
                short(commit)
            ),
            Denial::PathNotNormal { key, path } => write!(
                f,
                "{key}: path {path:?} is not a normalised path of the repository; sync it with kubectl gitops sync"
            ),
            Denial::NoOwner { key, branch } => write!(
                f,
                "{key}: no app of gitops.yaml at the head of {branch} declares it, so Git binds it to no app (a folder app synced with --path cannot be verified, and an object the head no longer declares may not come back); list its folder as an app in gitops.yaml and sync"
            ),
            Denial::WrongOwner { key, owner_app, owner_path, app, path, branch } => write!(
                f,
                "{key}: Git binds it to app {owner_app} (path {owner_path}) at the head of {branch}, not to app {app} (path {path}); sync app {owner_app}"
            ),
            Denial::SeveralOwners { key, apps, branch } => write!(
                f,
                "{key}: apps {apps} all declare it at the head of {branch}; Git must bind an object to one app — keep it in one of them"
            ),
            Denial::RenderFailed { key, app, commit, repo, error } => write!(
                f,
                "{key}: cannot render app {app} at commit {} of {repo}: {error}",
                short(commit)
            ),
            Denial::NotDeclared { key, app, commit } => write!(
                f,
                "{key}: app {app} at commit {} does not declare this object, so its provenance does not apply to it (annotations copied from another object?); add it to Git and sync",
                short(commit)
            ),
            Denial::DuplicateKey { key, path, entries, commit, branch } => write!(
                f,
                "{key}: {path} holds {entries} entries with this key, commit {} on {branch} declares one — a second entry with the same key is an out-of-band change",
                short(commit)
            ),
            Denial::FieldDiffers { key, path, live, commit, branch, declared, more } => write!(
                f,
                "{key}: {path} is {live}, commit {} on {branch} says {declared}{more} — change it in Git",
                short(commit)
            ),
            Denial::UnexplainedField { key, path, value, more, commit, branch } => write!(
                f,
                "{key}: {path} is {value}{more}, but Git (commit {} on {branch}) does not declare it and the API server did not set it; an object, container or entry a person writes holds only what Git declares — make the change in Git",
                short(commit)
            ),
            Denial::UndeclaredChange { key, path, from, to, user, more, commit, branch } => write!(
                f,
                "{key}: {path} changed from {from} to {to} by {user}{more}, but Git (commit {} on {branch}) does not declare it; out-of-band changes such as kubectl edit, label, annotate, scale or rollout restart are refused — make the change in Git",
                short(commit)
            ),
            Denial::CoOwnership { key, manager, path } => write!(
                f,
                "{key}: field manager {manager} would own {path}, which Git declares; only kubectl-gitops may own what Git declares (a co-owner pins the field against Git's next change) — leave it to kubectl gitops sync"
            ),
            Denial::NotTheAppsInventory { key, app } => write!(
                f,
                "{key}: it is not the inventory of app {app} (its name and ApplySet id follow from the app and namespace); kubectl gitops sync writes it"
            ),
            Denial::InventorySignedByAnother { key, synced_by, user } => write!(
                f,
                "{key}: the inventory says it was synced by {synced_by:?}, but {user} writes it; kubectl gitops sync signs it with the user who runs it"
            ),
            Denial::InventoryDropsDeclared { key, member, app, commit } => write!(
                f,
                "{key}: the inventory would drop {member}, which app {app} still declares at commit {}; a member leaves it when Git drops the object and a prune deletes it",
                short(commit)
            ),
            Denial::InventoryAddsUndeclared { key, member, app, commit } => write!(
                f,
                "{key}: the inventory would list {member}, which app {app} declares neither at commit {} nor at the branch head; a member joins it when Git declares the object",
                short(commit)
            ),
            Denial::InventoryHidesLiveMember { key, member } => write!(
                f,
                "{key}: the inventory would drop {member}, which still exists and carries this app's labels, so no prune would delete it; run kubectl gitops sync --prune"
            ),
            Denial::InventoryDropUnverified { key, member, reason } => write!(
                f,
                "{key}: the inventory would drop {member}, and the webhook cannot tell whether it is gone ({reason}); try again, or ask an operator"
            ),
            Denial::InventoryInUse { key, app, commit } => write!(
                f,
                "{key}: it is the inventory of app {app}, which the branch head (commit {}) still lists; remove the app from gitops.yaml first",
                short(commit)
            ),
            Denial::Undecided { reason } => f.write_str(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key(kind: &str, name: &str) -> ObjectKey {
        ObjectKey {
            group: if kind == "Deployment" {
                "apps".into()
            } else {
                String::new()
            },
            kind: kind.into(),
            namespace: "shop".into(),
            name: name.into(),
        }
    }

    /// One of every refusal, as a person reads it.
    fn every_denial() -> Vec<Denial> {
        let web = || key("Deployment", "web");
        let (c, d) = (
            "4f2a9c1e0b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39".to_owned(),
            "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567".to_owned(),
        );
        let (repo, branch) = ("https://git.example/shop.git".to_owned(), "main".to_owned());
        vec![
            Denial::ScaleOffGit { parent: web(), replicas: "5".into(), commit: c.clone(), branch: branch.clone(), declared: "2".into() },
            Denial::ScaleOfUndeclaredReplicas { parent: web(), from: "2".into(), to: "5".into(), user: "alice".into(), commit: c.clone(), branch: branch.clone() },
            Denial::ScaleParentUnreadable { target: "deployments/web in shop".into(), reason: "the API server answered 403".into() },
            Denial::ScaleHeadUnreadable { key: web(), reason: "render failed".into() },
            Denial::StillDeclared { key: key("ConfigMap", "settings"), app: "shop".into(), commit: c.clone(), branch: branch.clone(), fetched: "fetched just now".into() },
            Denial::DeleteHeadUnreadable { key: key("ConfigMap", "settings"), reason: "branch main does not exist".into() },
            Denial::AutoscalerOfManagedObject { key: ObjectKey { group: "autoscaling".into(), kind: "HorizontalPodAutoscaler".into(), namespace: "shop".into(), name: "web".into() }, target: web() },
            Denial::GitOnlyNamespace { key: key("ConfigMap", "scratch") },
            Denial::Unmanaging { key: web() },
            Denial::MissingProvenance { key: web() },
            Denial::UntrustedRepository { key: web(), repo: "https://git.example/fork.git".into(), trusted: repo.clone() },
            Denial::NotAFullCommit { key: web(), revision: "main".into() },
            Denial::UnknownCommit { key: web(), commit: d.clone(), repo: repo.clone(), branch: branch.clone(), fetched: "fetched just now, still unknown".into() },
            Denial::NotOnBranch { key: web(), commit: d.clone(), repo: repo.clone(), branch: branch.clone() },
            Denial::CommitUncheckable { key: web(), commit: d.clone(), repo: repo.clone(), error: "the mirror is unreadable".into() },
            Denial::NotTheHead { key: web(), commit: d.clone(), head: c.clone(), branch: branch.clone() },
            Denial::HeadUnreadable { key: web(), branch: branch.clone(), error: "branch main does not exist".into() },
            Denial::Rollback { key: web(), commit: d.clone(), current: c.clone(), branch: branch.clone() },
            Denial::AncestryUncheckable { key: web(), current: c.clone(), commit: d.clone(), error: "the mirror is unreadable".into() },
            Denial::PathNotNormal { key: web(), path: "./apps/web".into() },
            Denial::NoOwner { key: web(), branch: branch.clone() },
            Denial::WrongOwner { key: web(), owner_app: "shop".into(), owner_path: "apps/shop".into(), app: "shop-dev".into(), path: "apps/shop-dev".into(), branch: branch.clone() },
            Denial::SeveralOwners { key: web(), apps: "shop (path apps/shop), shop-dev (path apps/shop-dev)".into(), branch: branch.clone() },
            Denial::RenderFailed { key: web(), app: "shop".into(), commit: c.clone(), repo: repo.clone(), error: "values.yaml: not a map".into() },
            Denial::NotDeclared { key: key("Secret", "db"), app: "shop".into(), commit: c.clone() },
            Denial::DuplicateKey { key: web(), path: "spec.template.spec.containers[name=web].env[name=DB_HOST]".into(), entries: 2, commit: c.clone(), branch: branch.clone() },
            Denial::FieldDiffers { key: web(), path: "spec.template.spec.containers[name=web].image".into(), live: "nginx:1.27".into(), commit: c.clone(), branch: branch.clone(), declared: "nginx:1.26".into(), more: " (and 1 more field)".into() },
            Denial::UnexplainedField { key: web(), path: "spec.template.spec.volumes[name=root]".into(), value: "{\"hostPath\":{\"path\":\"/\"},\"name\":\"root\"}".into(), more: String::new(), commit: c.clone(), branch: branch.clone() },
            Denial::UndeclaredChange { key: web(), path: "metadata.labels.tier".into(), from: "absent".into(), to: "frontend".into(), user: "alice".into(), more: String::new(), commit: c, branch },
            Denial::CoOwnership { key: web(), manager: "deploy-bot".into(), path: "spec.template.spec.containers[name=web].image".into() },
            Denial::NotTheAppsInventory { key: key("ConfigMap", "gitops-other"), app: "shop".into() },
            Denial::InventorySignedByAnother { key: key("ConfigMap", "gitops-shop"), synced_by: "ci-bot".into(), user: "alice".into() },
            Denial::InventoryDropsDeclared { key: key("ConfigMap", "gitops-shop"), member: web(), app: "shop".into(), commit: "4f2a9c1e0b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39".into() },
            Denial::InventoryAddsUndeclared { key: key("ConfigMap", "gitops-shop"), member: key("Secret", "db"), app: "shop".into(), commit: "4f2a9c1e0b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39".into() },
            Denial::InventoryHidesLiveMember { key: key("ConfigMap", "gitops-shop"), member: web() },
            Denial::InventoryDropUnverified { key: key("ConfigMap", "gitops-shop"), member: web(), reason: "the API server answered 403 (forbidden)".into() },
            Denial::InventoryInUse { key: key("ConfigMap", "gitops-shop"), app: "shop".into(), commit: "4f2a9c1e0b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39".into() },
            Denial::Undecided { reason: "the webhook could not decide within 4000 ms (a Git fetch or render is slow); try again shortly".into() },
        ]
    }

    /// Every sentence, in one reviewed file: a change of wording shows in the diff.
    /// `UPDATE_SNAPSHOTS=1 cargo test -p gitops-webhook denial` rewrites it.
    #[test]
    fn every_sentence_a_person_reads() {
        let text: String = every_denial()
            .iter()
            .map(|d| format!("{}: {d}\n", d.reason()))
            .collect();
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/denial-sentences.txt");
        if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
            std::fs::write(path, &text).unwrap();
        }
        let kept = std::fs::read_to_string(path).unwrap_or_default();
        assert_eq!(
            text, kept,
            "run with UPDATE_SNAPSHOTS=1 and review the diff"
        );
    }

    #[test]
    fn every_variant_is_listed_once_with_its_own_reason() {
        let reasons: Vec<&str> = every_denial().iter().map(Denial::reason).collect();
        let mut unique = reasons.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), reasons.len());
        assert_eq!(reasons.len(), 38);
    }
}
