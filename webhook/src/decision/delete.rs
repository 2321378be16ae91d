//! Rule 5: a person deletes a managed object (or evicts a managed Pod) only as a prune, once a
//! branch head fetched after the request arrived no longer declares it; a head that cannot be
//! read is a refusal, never a licence.

use super::*;

pub(super) fn decide_delete(
    request: &AdmissionRequest,
    config: &Config,
    facts: &dyn GitFacts,
    window: Window,
) -> Decision {
    let Some(old) = &request.old_object else {
        return Decision::allow("delete without oldObject");
    };
    decide_delete_of(request, old, config, facts, window)
}

/// Rule 5 for the object `old` as it is before it goes (a DELETE's oldObject, an evicted Pod).
pub(super) fn decide_delete_of(
    request: &AdmissionRequest,
    old: &Value,
    config: &Config,
    facts: &dyn GitFacts,
    window: Window,
) -> Decision {
    if !is_managed(old) {
        return Decision::allow("unmanaged");
    }
    let key = key_of(old, request);
    let provenance = trusted_claim(old, config);
    if inventory::is_inventory(&key, old) {
        return inventory::decide_delete(&key, old, provenance.is_some(), facts);
    }
    let declared = match declared_at_head(&key, provenance.as_ref(), config, facts) {
        Ok(declared) => declared,
        Err(reason) => return head_unknown(&key, &reason),
    };
    let Some(first) = declared else {
        return Decision::allow("prune: the branch head no longer declares it");
    };
    if super::hooks::is_hook_run(old, &first) {
        return Decision::allow("a run of a hook the head declares");
    }
    // What the head declares is as of the last fetch: a prune usually follows a push at once,
    // so judge by a head fetched after the request arrived.
    let repo = provenance
        .as_ref()
        .map_or(first.repo.as_str(), |p| p.repo.as_str());
    match facts.refresh_head(repo, window) {
        Ok(Freshness::Fetched) => {
            match declared_at_head(&key, provenance.as_ref(), config, facts) {
                Ok(Some(still)) => Decision::deny(Denial::StillDeclared {
                    key,
                    app: still.app,
                    commit: still.commit,
                    branch: still.branch,
                    fetched: "fetched just now".to_owned(),
                }),
                Ok(None) => Decision::allow("prune: the branch head no longer declares it"),
                Err(reason) => head_unknown(&key, &reason),
            }
        }
        Ok(stale) => Decision::deny(Denial::StillDeclared {
            key,
            app: first.app,
            commit: first.commit,
            branch: first.branch,
            fetched: format!("as of the last fetch; {}", stale.clause()),
        }),
        Err(error) => head_unknown(&key, &error.to_string()),
    }
}

/// Who at a branch head declares `key`: the index of app-file apps, else the claimed (folder)
/// app rendered at the head. `Err` says why the head could not be rendered.
pub(super) fn declared_at_head(
    key: &ObjectKey,
    provenance: Option<&Provenance>,
    config: &Config,
    facts: &dyn GitFacts,
) -> Result<Option<HeadDeclaration>, String> {
    if let Some(head) = facts.head_declaration(key) {
        return Ok(Some(head));
    }
    let Some(provenance) = provenance else {
        return Ok(None);
    };
    // A head that cannot be read is no licence to delete.
    let head = facts.head(&provenance.repo).map_err(|e| e.to_string())?;
    let claim = AppClaim {
        app: provenance.app.clone(),
        path: provenance.path.clone(),
        folder_namespace: key.namespace.clone(),
    };
    match facts.render(&provenance.repo, &head, &claim) {
        Ok(desired) => Ok(desired.objects.get(key).map(|object| HeadDeclaration {
            repo: provenance.repo.clone(),
            branch: config
                .repository(&provenance.repo)
                .map_or_else(|| "its tracked branch".to_owned(), |r| r.branch.clone()),
            commit: head.clone(),
            app: provenance.app.clone(),
            path: desired.path.clone(),
            object: Arc::new(object.clone()),
        })),
        Err(FactError::AppGone(_)) => Ok(None),
        Err(FactError::Failed(reason)) => Err(reason),
    }
}

pub(super) fn head_unknown(key: &ObjectKey, reason: &str) -> Decision {
    Decision::deny(Denial::DeleteHeadUnreadable {
        key: key.clone(),
        reason: reason.to_owned(),
    })
}
