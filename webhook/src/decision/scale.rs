//! Rule 7 for `kubectl scale`: a Scale carries no labels, so its parent says whether it is
//! managed — from the branch heads' index, else as read from the API server — and only Git (or a
//! controller such as the HPA, for replicas Git leaves out) sets `spec.replicas`.

use super::delete::declared_at_head;
use super::*;

/// The parent a scale request addresses when the decision would consult the API server for it:
/// an UPDATE of the `scale` subresource that changes `spec.replicas` of a parent the head index
/// does not know. `None` otherwise, so the server reads nothing for every other request.
pub fn scale_parent_to_read(
    request: &AdmissionRequest,
    facts: &dyn GitFacts,
) -> Option<ScaleParentRef> {
    if is_eviction(request) {
        // An Eviction names its Pod and carries none of its labels: the Pod says.
        return Some(ScaleParentRef {
            group: String::new(),
            version: request.resource.version.clone(),
            resource: "pods".to_owned(),
            namespace: request.namespace.clone(),
            name: request.name.clone(),
        });
    }
    if request.sub_resource.as_deref() != Some("scale") || request.operation != Operation::Update {
        return None;
    }
    let (new, old) = (request.object.as_ref()?, request.old_object.as_ref()?);
    if new.pointer("/spec/replicas") == old.pointer("/spec/replicas") {
        return None;
    }
    let name = scale_name(request, new);
    let known = facts.scale_parent(
        &request.resource.group,
        &request.resource.resource,
        &request.namespace,
        name,
    );
    known.is_none().then(|| ScaleParentRef {
        group: request.resource.group.clone(),
        version: request.resource.version.clone(),
        resource: request.resource.resource.clone(),
        namespace: request.namespace.clone(),
        name: name.to_owned(),
    })
}

/// The name of a scale request's parent: the request's, else the Scale's own.
pub(super) fn scale_name<'a>(request: &'a AdmissionRequest, scale: &'a Value) -> &'a str {
    if request.name.is_empty() {
        scale
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    } else {
        request.name.as_str()
    }
}

pub(super) fn decide_scale(
    request: &AdmissionRequest,
    config: &Config,
    facts: &dyn GitFacts,
    live_parent: Option<&LiveParent>,
) -> Decision {
    let (Some(new), Some(old)) = (&request.object, &request.old_object) else {
        return Decision::allow("scale without objects");
    };
    let replicas = |o: &Value| o.pointer("/spec/replicas").cloned();
    let (new_replicas, old_replicas) = (replicas(new), replicas(old));
    if new_replicas == old_replicas {
        return Decision::allow("scale unchanged");
    }
    let name = scale_name(request, new);
    let parent = match facts.scale_parent(
        &request.resource.group,
        &request.resource.resource,
        &request.namespace,
        name,
    ) {
        Some(parent) => parent,
        None => match live_parent_declaration(request, name, config, facts, live_parent) {
            Ok(parent) => parent,
            Err(decision) => return *decision,
        },
    };
    let parent_key = ObjectKey::of(&parent.object).unwrap_or_default_key();
    let declared = parent.object.pointer("/spec/replicas");
    match declared {
        Some(declared) => {
            let equal = new_replicas
                .as_ref()
                .is_some_and(|n| n.as_i64() == declared.as_i64());
            if equal {
                Decision::allow("scale to Git's value")
            } else {
                Decision::deny(Denial::ScaleOffGit {
                    parent: parent_key,
                    replicas: shown(new_replicas.as_ref()),
                    commit: parent.commit.clone(),
                    branch: parent.branch.clone(),
                    declared: shown(Some(declared)),
                })
            }
        }
        None => Decision::deny(Denial::ScaleOfUndeclaredReplicas {
            parent: parent_key,
            from: shown(old_replicas.as_ref()),
            to: shown(new_replicas.as_ref()),
            user: request.user_info.username.clone(),
            commit: parent.commit.clone(),
            branch: parent.branch.clone(),
        }),
    }
}

/// What the branch head declares for a scale parent the index does not know, judged from the
/// parent the server read from the API server; `Err` is the decision when there is nothing to
/// compare with (unmanaged, gone, unreadable, or declared by no trusted branch head).
fn live_parent_declaration(
    request: &AdmissionRequest,
    name: &str,
    config: &Config,
    facts: &dyn GitFacts,
    live_parent: Option<&LiveParent>,
) -> Result<HeadDeclaration, Box<Decision>> {
    let target = ScaleParentRef {
        group: request.resource.group.clone(),
        version: request.resource.version.clone(),
        resource: request.resource.resource.clone(),
        namespace: request.namespace.clone(),
        name: name.to_owned(),
    };
    let parent = match live_parent {
        // Not read: the webhook has no API access (a documented limitation) or nothing to read.
        None => return Err(Box::new(Decision::allow("scale of an unmanaged object"))),
        Some(LiveParent::Absent) => {
            return Err(Box::new(Decision::allow(
                "scale of an object that does not exist",
            )))
        }
        Some(LiveParent::Unreadable(reason)) => {
            return Err(Box::new(Decision::deny(Denial::ScaleParentUnreadable {
                target: target.to_string(),
                reason: reason.clone(),
            })))
        }
        Some(LiveParent::Found(parent)) => parent,
    };
    if !is_managed(parent) {
        return Err(Box::new(Decision::allow("scale of an unmanaged object")));
    }
    let key = ObjectKey::of(parent).unwrap_or_else(|| ObjectKey {
        group: target.group.clone(),
        kind: target.resource.clone(),
        namespace: target.namespace.clone(),
        name: target.name.clone(),
    });
    // Like a DELETE: only a trusted repository's claim is rendered.
    let provenance = trusted_claim(parent, config);
    match declared_at_head(&key, provenance.as_ref(), config, facts) {
        Ok(Some(head)) => Ok(head),
        Ok(None) => Err(Box::new(Decision::allow(
            "scale of an object no trusted branch head declares",
        ))),
        Err(reason) => Err(Box::new(Decision::deny(Denial::ScaleHeadUnreadable {
            key,
            reason,
        }))),
    }
}

trait KeyOrDefault {
    fn unwrap_or_default_key(self) -> ObjectKey;
}

impl KeyOrDefault for Option<ObjectKey> {
    fn unwrap_or_default_key(self) -> ObjectKey {
        self.unwrap_or(ObjectKey {
            group: String::new(),
            kind: String::new(),
            namespace: String::new(),
            name: String::new(),
        })
    }
}
