//! Rule 2: Git, not the object, says which app owns it — the one app of the tracked branch
//! head's `gitops.yaml` whose render declares the object. A claim naming another app, path or
//! repository is refused, and so is an object two apps declare, or none (a folder app synced with
//! `--path` cannot be verified; an object the head dropped may not be created again).

use super::*;

/// Checks that Git binds `key` to the app `claim` names. `old_claim` is the object's claim
/// before this write (an update of an object the head no longer declares keeps its binding
/// until the prune); `create` for a CREATE.
pub(super) fn check_owner(
    key: &ObjectKey,
    claim: &Provenance,
    old_claim: Option<&Provenance>,
    create: bool,
    branch: &str,
    facts: &dyn GitFacts,
) -> Result<(), Box<Denial>> {
    // The path written the one way the plugin writes it, so `./apps/web` cannot mint a fresh
    // render per spelling.
    match normalize_path(&claim.path) {
        Ok(path) if path == claim.path => {}
        _ => {
            return Err(Box::new(Denial::PathNotNormal {
                key: key.clone(),
                path: claim.path.clone(),
            }))
        }
    }
    match facts.owners(key).as_slice() {
        [] => {
            let same_binding =
                old_claim.is_some_and(|o| o.app == claim.app && o.path == claim.path);
            if create || !same_binding {
                return Err(Box::new(Denial::NoOwner {
                    key: key.clone(),
                    branch: branch.to_owned(),
                }));
            }
            Ok(())
        }
        [owner]
            if owner.repo != claim.repo || owner.app != claim.app || owner.path != claim.path =>
        {
            Err(Box::new(Denial::WrongOwner {
                key: key.clone(),
                owner_app: owner.app.clone(),
                owner_path: owner.path.clone(),
                app: claim.app.clone(),
                path: claim.path.clone(),
                branch: branch.to_owned(),
            }))
        }
        [_] => Ok(()),
        several => {
            let apps: Vec<String> = several
                .iter()
                .map(|o| format!("{} (path {})", o.app, o.path))
                .collect();
            Err(Box::new(Denial::SeveralOwners {
                key: key.clone(),
                apps: apps.join(", "),
                branch: branch.to_owned(),
            }))
        }
    }
}
