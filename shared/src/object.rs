//! What identifies a Kubernetes object, and where a rendered one came from.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where a rendered document came from: a file (relative to the repository root) and the 1-based
/// index of the document in it. Error messages and duplicate reports use it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// File path relative to the repository root (for templates: the template's path).
    pub file: String,
    /// 1-based document index within the file.
    pub document: usize,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (document {})", self.file, self.document)
    }
}

/// The identity of an object: API group, kind, namespace (empty when cluster-scoped) and name.
///
/// The version is not part of it: `apps/v1` and `apps/v1beta2` Deployments are the same object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ObjectKey {
    /// API group, empty for the core group.
    pub group: String,
    /// Kind, as in the object's `kind`.
    pub kind: String,
    /// Namespace, empty for cluster-scoped objects.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
}

impl ObjectKey {
    /// The key of a JSON object, if it has `apiVersion`, `kind` and `metadata.name`.
    pub fn of(object: &Value) -> Option<ObjectKey> {
        let api_version = object.get("apiVersion")?.as_str()?;
        let kind = object.get("kind")?.as_str()?;
        let metadata = object.get("metadata")?;
        let name = metadata.get("name")?.as_str()?;
        let namespace = metadata
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or_default();
        Some(ObjectKey {
            group: group_of(api_version).to_owned(),
            kind: kind.to_owned(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })
    }
}

impl ObjectKey {
    /// The key of an object made from `metadata.generateName`, with the `generateName` in place
    /// of the name: how a hook's declaration is found again (see [`crate::hooks`]).
    pub fn generated(object: &Value) -> Option<ObjectKey> {
        let metadata = object.get("metadata")?;
        Some(ObjectKey {
            group: group_of(object.get("apiVersion")?.as_str()?).to_owned(),
            kind: object.get("kind")?.as_str()?.to_owned(),
            namespace: metadata
                .get("namespace")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            name: metadata.get("generateName")?.as_str()?.to_owned(),
        })
    }
}

impl fmt::Display for ObjectKey {
    /// `Kind/namespace/name`, or `Kind/name` when cluster-scoped; the group is added to the kind
    /// (`Widget.example.io/name`) except for the core and well-known groups where it is obvious.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() || !self.group.contains('.') {
            write!(f, "{}", self.kind)?;
        } else {
            write!(f, "{}.{}", self.kind, self.group)?;
        }
        if !self.namespace.is_empty() {
            write!(f, "/{}", self.namespace)?;
        }
        write!(f, "/{}", self.name)
    }
}

/// The group part of an `apiVersion` (`apps/v1` → `apps`, `v1` → ``).
pub fn group_of(api_version: &str) -> &str {
    match api_version.split_once('/') {
        Some((group, _)) => group,
        None => "",
    }
}

/// A rendered object together with where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenderedObject {
    /// The file and document it was read or templated from.
    pub source: Source,
    /// The object as JSON.
    pub object: Value,
}

impl RenderedObject {
    /// The object's identity. Every rendered object has one: rendering rejects documents without
    /// `apiVersion`, `kind` or `metadata.name`, except hooks with `generateName`, whose key
    /// carries the `generateName` (the API server picks the name at each run).
    pub fn key(&self) -> ObjectKey {
        ObjectKey::of(&self.object)
            .or_else(|| ObjectKey::generated(&self.object))
            .unwrap_or_else(|| ObjectKey {
                group: String::new(),
                kind: String::new(),
                namespace: String::new(),
                name: String::new(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_and_display() {
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop"}});
        let key = ObjectKey::of(&deployment).expect("key");
        assert_eq!(key.group, "apps");
        assert_eq!(key.to_string(), "Deployment/shop/web");
        let widget =
            json!({"apiVersion": "example.io/v1", "kind": "Widget", "metadata": {"name": "blue"}});
        assert_eq!(
            ObjectKey::of(&widget).expect("key").to_string(),
            "Widget.example.io/blue"
        );
        assert_eq!(ObjectKey::of(&json!({"kind": "ConfigMap"})), None);
    }
}
