//! Rule 3: the claimed commit is a full commit id, on the tracked branch (fetched for if the
//! mirror lacks it), and moves forward from the object's current commit (or is the head, in
//! `revisionMode: head`).

use super::*;

/// Checks the revision `claim` names for an object whose old version is `old`; the old
/// object's claim on the same repository, for what follows.
pub(super) fn check_revision(
    key: &ObjectKey,
    claim: &Provenance,
    old: Option<&Value>,
    config: &Config,
    branch: &str,
    facts: &dyn GitFacts,
    window: Window,
) -> Result<Option<Provenance>, Box<Denial>> {
    let key = || key.clone();
    if claim.revision.len() != 40 || !claim.revision.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Box::new(Denial::NotAFullCommit {
            key: key(),
            revision: claim.revision.clone(),
        }));
    }
    match facts.locate(&claim.repo, &claim.revision, window) {
        Ok(CommitPlace::OnBranch) => {}
        Ok(CommitPlace::Unknown(freshness)) => {
            return Err(Box::new(Denial::UnknownCommit {
                key: key(),
                commit: claim.revision.clone(),
                repo: claim.repo.clone(),
                branch: branch.to_owned(),
                fetched: match freshness {
                    Freshness::Fetched => "fetched just now, still unknown".to_owned(),
                    other => other.clause(),
                },
            }))
        }
        Ok(CommitPlace::NotOnBranch) => {
            return Err(Box::new(Denial::NotOnBranch {
                key: key(),
                commit: claim.revision.clone(),
                repo: claim.repo.clone(),
                branch: branch.to_owned(),
            }))
        }
        Err(error) => {
            return Err(Box::new(Denial::CommitUncheckable {
                key: key(),
                commit: claim.revision.clone(),
                repo: claim.repo.clone(),
                error: error.to_string(),
            }))
        }
    }
    let old_claim = old
        .and_then(|old| trusted_claim(old, config))
        .filter(|p| p.repo == claim.repo);
    let moved = old_claim
        .as_ref()
        .is_none_or(|o| o.revision != claim.revision);
    if moved && config.revision_mode == RevisionMode::Head {
        match facts.head(&claim.repo) {
            Ok(head) if head == claim.revision => {}
            Ok(head) => {
                return Err(Box::new(Denial::NotTheHead {
                    key: key(),
                    commit: claim.revision.clone(),
                    head,
                    branch: branch.to_owned(),
                }))
            }
            Err(error) => {
                return Err(Box::new(Denial::HeadUnreadable {
                    key: key(),
                    branch: branch.to_owned(),
                    error: error.to_string(),
                }))
            }
        }
    }
    if let Some(old_claim) = old_claim.as_ref().filter(|o| o.revision != claim.revision) {
        match facts.is_ancestor(&claim.repo, &old_claim.revision, &claim.revision) {
            Ok(true) => {}
            Ok(false) => {
                return Err(Box::new(Denial::Rollback {
                    key: key(),
                    commit: claim.revision.clone(),
                    current: old_claim.revision.clone(),
                    branch: branch.to_owned(),
                }))
            }
            Err(error) => {
                return Err(Box::new(Denial::AncestryUncheckable {
                    key: key(),
                    current: old_claim.revision.clone(),
                    commit: claim.revision.clone(),
                    error: error.to_string(),
                }))
            }
        }
    }
    Ok(old_claim)
}
