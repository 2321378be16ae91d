//! CREATE and UPDATE of managed objects by a person: the claimed repository, commit and branch
//! (rule 3, revisions only forward), Git's binding of the object to its app (rule 2), the
//! inventory (rule 6), and every field Git's (rule 4, with [`crate::fields`]).

use super::hooks;
use super::ownership::check_owner;
use super::revisions::check_revision;
use super::*;

use std::collections::BTreeMap;

pub(super) fn decide_write(
    request: &AdmissionRequest,
    config: &Config,
    facts: &dyn GitFacts,
    window: Window,
    dropped_members: Option<&BTreeMap<ObjectKey, LiveParent>>,
) -> Decision {
    let Some(new) = &request.object else {
        return Decision::allow("no object");
    };
    let old = request
        .old_object
        .as_ref()
        .filter(|_| request.operation == Operation::Update);
    let key = key_of(new, request);
    let managed_new = is_managed(new);
    let managed_old = old.is_some_and(is_managed);
    if !managed_new && !managed_old {
        // A write that only moves field ownership (a sync taking over the fields of an HPA it
        // is about to adopt) changes nothing the HPA controller acts on.
        let ownership_only = old.is_some_and(|old| only_field_ownership_changed(old, new));
        if let Some(target) = managed_scale_target(new, &key, facts).filter(|_| !ownership_only) {
            return Decision::deny(Denial::AutoscalerOfManagedObject { key, target });
        }
        let git_only = config.git_only_namespaces.contains(&key.namespace);
        if request.operation == Operation::Create && git_only {
            return Decision::deny(Denial::GitOnlyNamespace { key });
        }
        return Decision::allow("unmanaged");
    }
    if !managed_new {
        return Decision::deny(Denial::Unmanaging { key });
    }
    let Some(mut claim) = Provenance::of(new) else {
        return Decision::deny(Denial::MissingProvenance { key });
    };
    let Some(repository) = config.repository(&claim.repo) else {
        let trusted: Vec<&str> = config.repositories.iter().map(|r| r.url.as_str()).collect();
        return Decision::deny(Denial::UntrustedRepository {
            key,
            repo: claim.repo,
            trusted: trusted.join(", "),
        });
    };
    let branch = repository.branch.as_str();
    // One repository, whichever of its URLs the claim spells.
    let respelled;
    let new = if claim.repo == repository.url {
        new
    } else {
        claim.repo = repository.url.clone();
        respelled = spelled_as(new, &claim.repo);
        &respelled
    };
    let old_claim = match check_revision(&key, &claim, old, config, branch, facts, window) {
        Ok(old_claim) => old_claim,
        Err(denial) => return Decision::deny(*denial),
    };
    // Rule 6: the app's inventory, at a commit that checked out above.
    if inventory::is_inventory(&key, new) {
        return inventory::decide_write(
            &key,
            &claim,
            request.object.as_ref().unwrap_or(new),
            old.filter(|_| managed_old),
            &request.user_info.username,
            facts,
            dropped_members,
        );
    }
    // Rule 2: Git, not the object, says which app owns it; a hook made from `generateName`
    // by the key Git declares it under.
    let create = request.operation == Operation::Create;
    let declared_key = hooks::declared_key(&key, new, facts);
    if let Err(denial) = check_owner(
        &declared_key,
        &claim,
        old_claim.as_ref(),
        create,
        branch,
        facts,
    ) {
        return Decision::deny(*denial);
    }
    let app_claim = AppClaim {
        app: claim.app.clone(),
        path: claim.path.clone(),
        folder_namespace: key.namespace.clone(),
    };
    let desired_set = match facts.render(&claim.repo, &claim.revision, &app_claim) {
        Ok(set) => set,
        Err(error) => {
            return Decision::deny(Denial::RenderFailed {
                key,
                app: claim.app,
                commit: claim.revision,
                repo: claim.repo,
                error: error.to_string(),
            })
        }
    };
    let Some(desired) = desired_set
        .objects
        .get(&declared_key)
        .filter(|desired| declared_key == key || hooks::same_hook(desired, new))
    else {
        return Decision::deny(Denial::NotDeclared {
            key,
            app: claim.app,
            commit: claim.revision,
        });
    };
    // Rule 4 for field managers: a person's write may not give a manager other than
    // kubectl-gitops a field Git declares (even at Git's value: a co-owner pins it). A write that
    // only moves ownership (a sync taking over what people's tools own, before it applies Git's
    // values) changes no value and needs nothing more.
    let history = old.filter(|_| managed_old);
    let co_owner = gained_foreign_ownership(new, history, desired, FIELD_MANAGER);
    if history.is_some_and(|old| only_field_ownership_changed(old, new)) {
        return match co_owner {
            Some((manager, path)) => Decision::deny(Denial::CoOwnership { key, manager, path }),
            None => Decision::allow("only field ownership changed"),
        };
    }
    // Rule 3. A list Git declares may not hold two entries with one merge key: the API server
    // only warns, and the later entry (a hand-added `DB_HOST`, say) is the one that takes effect.
    if let Some(duplicate) = duplicate_keys(desired, new).first() {
        return Decision::deny(Denial::DuplicateKey {
            path: duplicate.path.clone(),
            entries: duplicate.duplicates.unwrap_or(2),
            commit: claim.revision,
            branch: branch.to_owned(),
            key,
        });
    }
    let diffs = compare(desired, new);
    if let Some(first) = diffs.first() {
        let more = match diffs.len() {
            1 => String::new(),
            2 => " (and 1 more field)".to_owned(),
            n => format!(" (and {} more fields)", n - 1),
        };
        return Decision::deny(Denial::FieldDiffers {
            path: first.path.clone(),
            live: shown_for(&key, &first.path, first.live.as_ref()),
            commit: claim.revision,
            branch: branch.to_owned(),
            declared: shown_for(&key, &first.path, Some(&first.desired)),
            more,
            key,
        });
    }
    let adopting = old.is_some() && !managed_old;
    // Rule 4.
    if let Some(old) = old.filter(|_| !adopting) {
        let old_desired = match &old_claim {
            Some(o)
                if o.revision != claim.revision || o.app != claim.app || o.path != claim.path =>
            {
                let old_app = AppClaim {
                    app: o.app.clone(),
                    path: o.path.clone(),
                    folder_namespace: key.namespace.clone(),
                };
                facts.render(&o.repo, &o.revision, &old_app).ok()
            }
            _ => None,
        };
        let mut declared: Vec<&Value> = vec![desired];
        if let Some(object) = old_desired.as_ref().and_then(|d| d.objects.get(&key)) {
            declared.push(object);
        }
        // A field no commit declares that disappears moves the object towards Git (a sync
        // undoing a hand-made change); only what protects the object from deletion may not go.
        let changes: Vec<_> = undeclared_changes(old, new, &declared)
            .into_iter()
            .filter(|change| {
                change.new.is_some()
                    || change.path.starts_with("metadata.finalizers")
                    || change.path.starts_with("metadata.ownerReferences")
            })
            .collect();
        if let Some(first) = changes.first() {
            let more = match changes.len() {
                1 => String::new(),
                n => format!(" (and {} more)", n - 1),
            };
            return Decision::deny(Denial::UndeclaredChange {
                path: first.path.clone(),
                from: shown_for(&key, &first.path, first.old.as_ref()),
                to: shown_for(&key, &first.path, first.new.as_ref()),
                user: request.user_info.username.clone(),
                more,
                commit: claim.revision,
                branch: branch.to_owned(),
                key,
            });
        }
    }
    // Rule 4 for what is new: a created object, an adopted one (its old fields were never
    // Git's), and the members and entries an update adds hold only Git's fields and the
    // server's.
    let unexplained = unexplained_new_fields(new, old.filter(|_| !adopting), desired);
    if let Some(first) = unexplained.first() {
        let more = match unexplained.len() {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        return Decision::deny(Denial::UnexplainedField {
            path: first.path.clone(),
            value: shown_for(&key, &first.path, Some(&first.value)),
            more,
            commit: claim.revision,
            branch: branch.to_owned(),
            key,
        });
    }
    if let Some((manager, path)) = co_owner {
        return Decision::deny(Denial::CoOwnership { key, manager, path });
    }
    Decision::allow("matches Git")
}
