//! The index of what each tracked branch's head declares: object → app, commit and the rendered
//! object. A Scale carries neither the parent's labels nor its kind, and a DELETE must know
//! whether the head still declares the object; both look here.

use std::collections::HashMap;
use std::sync::Arc;

use gitops_shared::object::ObjectKey;

use crate::decision::{Desired, HeadDeclaration};

/// Head declarations by object, and by (group, plural resource, namespace, name) for scale.
#[derive(Debug, Default, Clone)]
pub struct HeadIndex {
    by_key: HashMap<ObjectKey, HeadDeclaration>,
    /// Every app declaring each object: one is Git's binding, more is a conflict.
    owners: HashMap<ObjectKey, Vec<HeadDeclaration>>,
    by_resource: HashMap<(String, String, String, String), ObjectKey>,
}

impl HeadIndex {
    /// An empty index.
    pub fn new() -> HeadIndex {
        HeadIndex::default()
    }

    /// Adds every object of one app's render at a branch head.
    pub fn add(&mut self, repo: &str, branch: &str, desired: &Desired) {
        for (key, object) in &desired.objects {
            self.by_resource.insert(
                (
                    key.group.clone(),
                    plural(&key.kind),
                    key.namespace.clone(),
                    key.name.clone(),
                ),
                key.clone(),
            );
            let declaration = HeadDeclaration {
                repo: repo.to_owned(),
                branch: branch.to_owned(),
                commit: desired.commit.clone(),
                app: desired.app.clone(),
                path: desired.path.clone(),
                object: Arc::new(object.clone()),
            };
            self.owners
                .entry(key.clone())
                .or_default()
                .push(declaration.clone());
            self.by_key.entry(key.clone()).or_insert(declaration);
        }
    }

    /// The declaration of `key`.
    pub fn get(&self, key: &ObjectKey) -> Option<&HeadDeclaration> {
        self.by_key.get(key)
    }

    /// Every app declaring `key` at the head.
    pub fn owners(&self, key: &ObjectKey) -> &[HeadDeclaration] {
        self.owners.get(key).map_or(&[], Vec::as_slice)
    }

    /// The declaration of the object a scale request addresses.
    pub fn scale_parent(
        &self,
        group: &str,
        resource: &str,
        namespace: &str,
        name: &str,
    ) -> Option<&HeadDeclaration> {
        let key = self.by_resource.get(&(
            group.to_owned(),
            resource.to_owned(),
            namespace.to_owned(),
            name.to_owned(),
        ))?;
        self.by_key.get(key)
    }

    /// How many objects are indexed.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// True when nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

/// The resource name the API server derives from a kind (lowercase plural), following the rules
/// of `k8s.io/apimachinery`'s `UnsafeGuessKindToResource`.
pub fn plural(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    if lower.is_empty() {
        return lower;
    }
    if lower.ends_with("endpoints") {
        return lower;
    }
    if lower.ends_with('s')
        || lower.ends_with("ch")
        || lower.ends_with("sh")
        || lower.ends_with('x')
        || lower.ends_with('z')
    {
        return format!("{lower}es");
    }
    if let Some(stem) = lower.strip_suffix('y') {
        if !stem.ends_with(['a', 'e', 'i', 'o', 'u']) {
            return format!("{stem}ies");
        }
    }
    format!("{lower}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals_like_the_api_server() {
        assert_eq!(plural("Deployment"), "deployments");
        assert_eq!(plural("StatefulSet"), "statefulsets");
        assert_eq!(plural("NetworkPolicy"), "networkpolicies");
        assert_eq!(plural("Ingress"), "ingresses");
        assert_eq!(plural("Endpoints"), "endpoints");
        assert_eq!(plural("Gateway"), "gateways");
    }
}
