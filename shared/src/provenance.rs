//! Provenance: the labels and annotations that say where an object came from (repository, commit,
//! path, app) and a digest of what Git declared. All keys live under one domain, defined here.

use base64::Engine as _;
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::canonical::to_canonical_json;
use crate::object::ObjectKey;

/// The domain that owns every label and annotation key of this project.
pub const DOMAIN: &str = "kubectl-gitops.io";
/// The standard label that marks an object as managed by us.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// The value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY: &str = "kubectl-gitops";
/// The field manager used for server-side apply.
pub const FIELD_MANAGER: &str = "kubectl-gitops";
/// Label naming the app an object belongs to.
pub const APP_LABEL: &str = "kubectl-gitops.io/app";
/// Annotation: the repository URL the object was rendered from.
pub const REPO_ANNOTATION: &str = "kubectl-gitops.io/repo";
/// Annotation: the full 40-hex commit the object was rendered from.
pub const REVISION_ANNOTATION: &str = "kubectl-gitops.io/revision";
/// Annotation: the app's folder in the repository.
pub const PATH_ANNOTATION: &str = "kubectl-gitops.io/path";
/// Annotation: `sha256:<hex>` over the canonical JSON of the object without these annotations.
pub const DIGEST_ANNOTATION: &str = "kubectl-gitops.io/digest";
/// The annotations that are left out of the digest (they describe the object, not its content).
pub const PROVENANCE_ANNOTATIONS: [&str; 4] = [
    REPO_ANNOTATION,
    REVISION_ANNOTATION,
    PATH_ANNOTATION,
    DIGEST_ANNOTATION,
];
/// KEP-3659 label on each member of an ApplySet, naming the set's id.
pub const APPLYSET_PART_OF_LABEL: &str = "applyset.kubernetes.io/part-of";
/// KEP-3659 label on the ApplySet parent, holding the set's id.
pub const APPLYSET_ID_LABEL: &str = "applyset.kubernetes.io/id";
/// KEP-3659 annotation on the parent naming the tool that manages the set.
pub const APPLYSET_TOOLING_ANNOTATION: &str = "applyset.kubernetes.io/tooling";
/// KEP-3659 annotation on the parent listing the group-kinds in the set.
pub const APPLYSET_GROUP_KINDS_ANNOTATION: &str = "applyset.kubernetes.io/contains-group-kinds";
/// KEP-3659 annotation on the parent listing namespaces beyond the parent's own.
pub const APPLYSET_NAMESPACES_ANNOTATION: &str = "applyset.kubernetes.io/additional-namespaces";

/// Where a render came from: what the provenance annotations record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Provenance {
    /// Repository URL.
    pub repo: String,
    /// Full 40-hex commit.
    pub revision: String,
    /// App folder, relative to the repository root.
    pub path: String,
    /// App name.
    pub app: String,
}

impl Provenance {
    /// Reads the provenance an object claims. `None` when any part is missing. A claim, not a
    /// proof: anyone who can write the object can write these.
    pub fn of(object: &Value) -> Option<Provenance> {
        let metadata = object.get("metadata")?;
        let annotation = |key: &str| {
            metadata
                .get("annotations")?
                .get(key)?
                .as_str()
                .map(str::to_owned)
        };
        let app = metadata.get("labels")?.get(APP_LABEL)?.as_str()?.to_owned();
        Some(Provenance {
            repo: annotation(REPO_ANNOTATION)?,
            revision: annotation(REVISION_ANNOTATION)?,
            path: annotation(PATH_ANNOTATION)?,
            app,
        })
    }
}

/// True when the object carries our managed-by label.
pub fn is_managed(object: &Value) -> bool {
    object
        .get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(|l| l.get(MANAGED_BY_LABEL))
        .and_then(Value::as_str)
        == Some(MANAGED_BY)
}

/// The ApplySet parent that holds an app's inventory: ConfigMap `gitops-<app>` in `namespace`.
pub fn inventory_parent(app: &str, namespace: &str) -> ObjectKey {
    ObjectKey {
        group: String::new(),
        kind: "ConfigMap".to_owned(),
        namespace: namespace.to_owned(),
        name: format!("gitops-{app}"),
    }
}

/// Annotation on the inventory: who ran the last sync. The webhook holds it to the user who
/// writes the inventory, so it must read it where the plugin writes it.
pub const SYNCED_BY_ANNOTATION: &str = "kubectl-gitops.io/synced-by";
/// The inventory's data key holding its member list, a JSON array of
/// `[group, kind, namespace, name]`.
pub const INVENTORY_MEMBERS_KEY: &str = "members";

/// The members an inventory parent lists; entries that cannot be read are left out.
pub fn inventory_members(parent: &Value) -> std::collections::BTreeSet<ObjectKey> {
    parent
        .get("data")
        .and_then(|d| d.get(INVENTORY_MEMBERS_KEY))
        .and_then(Value::as_str)
        .and_then(|text| serde_json::from_str::<Vec<[String; 4]>>(text).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|[group, kind, namespace, name]| ObjectKey {
            group,
            kind,
            namespace,
            name,
        })
        .collect()
}

/// Why a member of the last inventory must not be pruned by this app, or `None` when it may.
/// The plugin's prune asks it of each live member; the webhook asks it of a member an inventory
/// write drops (a drop is honest only when a prune would not delete the object).
///
/// A prune deletes only objects that still carry this app's labels (app and ApplySet id) and whose
/// provenance names the same repository and path as the render. The path check is what keeps
/// apps apart where names once met: before folder apps were named after their whole path,
/// `a/x/web` and `a/y/web` were both app `web` with inventory `gitops-web`. Such an old inventory
/// is never deleted or rewritten by another app; an app that finds its name's inventory written
/// for another path (or objects in it stamped with another path or repository URL spelling)
/// leaves those objects alone and says so.
pub fn prune_refusal(
    live: &Value,
    app: &str,
    applyset: &str,
    repo: &str,
    path: &str,
) -> Option<String> {
    let metadata = live.get("metadata");
    let label = |name: &str| {
        metadata
            .and_then(|m| m.get("labels"))
            .and_then(|l| l.get(name))
            .and_then(Value::as_str)
    };
    if label(APP_LABEL) != Some(app) || label(APPLYSET_PART_OF_LABEL) != Some(applyset) {
        return Some(format!("it no longer carries the labels of app {app}"));
    }
    match Provenance::of(live) {
        Some(claim) if claim.repo == repo && claim.path == path => None,
        Some(claim) => Some(format!(
            "its provenance names {} path {:?}, not {repo} path {path:?}",
            claim.repo, claim.path
        )),
        None => Some("it carries no provenance of this app's repository and path".to_owned()),
    }
}

/// The KEP-3659 ApplySet id of a parent: `applyset-` + unpadded URL-safe base64 of
/// sha256(`<name>.<namespace>.<kind>.<group>`) + `-v1`, as kubectl computes it.
pub fn applyset_id(parent: &ObjectKey) -> String {
    let unencoded = format!(
        "{}.{}.{}.{}",
        parent.name, parent.namespace, parent.kind, parent.group
    );
    let hash = Sha256::digest(unencoded.as_bytes());
    format!(
        "applyset-{}-v1",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash)
    )
}

/// `sha256:<hex>` over the canonical JSON of `object` with the provenance annotations removed
/// (and `metadata.annotations` dropped when nothing else is left in it).
pub fn digest(object: &Value) -> String {
    let hash = Sha256::digest(to_canonical_json(&without_provenance(object)).as_bytes());
    format!("sha256:{}", hex::encode(hash))
}

/// `object` without the provenance annotations (and without `metadata.annotations` when nothing
/// else is left in it): what the digest covers, and what Git said apart from where it came from.
pub fn without_provenance(object: &Value) -> Value {
    let mut content = object.clone();
    if let Some(metadata) = content.get_mut("metadata").and_then(Value::as_object_mut) {
        let now_empty = match metadata
            .get_mut("annotations")
            .and_then(Value::as_object_mut)
        {
            Some(annotations) => {
                for key in PROVENANCE_ANNOTATIONS {
                    annotations.remove(key);
                }
                annotations.is_empty()
            }
            None => false,
        };
        if now_empty {
            metadata.remove("annotations");
        }
    }
    content
}

/// Stamps an object with the labels (managed-by, app, ApplySet membership) and annotations
/// (repository, revision, path, digest) of `provenance`. `applyset` is the id of the app's
/// inventory. Returns the digest.
pub fn stamp(object: &mut Value, provenance: &Provenance, applyset: &str) -> String {
    let Some(root) = object.as_object_mut() else {
        return String::new();
    };
    let metadata = object_entry(root, "metadata");
    let labels = object_entry(metadata, "labels");
    labels.insert(MANAGED_BY_LABEL.to_owned(), Value::from(MANAGED_BY));
    labels.insert(APP_LABEL.to_owned(), Value::from(provenance.app.as_str()));
    labels.insert(APPLYSET_PART_OF_LABEL.to_owned(), Value::from(applyset));
    let annotations = object_entry(metadata, "annotations");
    annotations.insert(
        REPO_ANNOTATION.to_owned(),
        Value::from(provenance.repo.as_str()),
    );
    annotations.insert(
        REVISION_ANNOTATION.to_owned(),
        Value::from(provenance.revision.as_str()),
    );
    annotations.insert(
        PATH_ANNOTATION.to_owned(),
        Value::from(provenance.path.as_str()),
    );
    annotations.remove(DIGEST_ANNOTATION);
    let digest = digest(object);
    if let Some(annotations) = object
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(Value::as_object_mut)
    {
        annotations.insert(DIGEST_ANNOTATION.to_owned(), Value::from(digest.as_str()));
    }
    digest
}

/// The object map under `key`, created (or replacing a non-object) when needed.
fn object_entry<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let entry = map
        .entry(key.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    match entry {
        Value::Object(inner) => inner,
        _ => unreachable!("just made an object"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn provenance() -> Provenance {
        Provenance {
            repo: "https://git.example/shop.git".into(),
            revision: "4f2a9c1e0d5b6a7980112233445566778899aabb".into(),
            path: "apps/shop".into(),
            app: "shop".into(),
        }
    }

    #[test]
    fn stamps_and_reads_back() {
        let mut cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
        let digest = stamp(&mut cm, &provenance(), "applyset-x-v1");
        assert!(
            digest.starts_with("sha256:") && digest.len() == 71,
            "{digest}"
        );
        assert!(is_managed(&cm));
        assert_eq!(Provenance::of(&cm), Some(provenance()));
        assert_eq!(cm["metadata"]["annotations"][DIGEST_ANNOTATION], digest);
        assert_eq!(
            cm["metadata"]["labels"][APPLYSET_PART_OF_LABEL],
            "applyset-x-v1"
        );
    }

    #[test]
    fn digest_ignores_provenance_and_key_order_but_not_content() {
        let mut a = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}});
        let b: Value = serde_json::from_str(r#"{"data":{"b":"2","a":"1"},"metadata":{"name":"c"},"kind":"ConfigMap","apiVersion":"v1"}"#).expect("json");
        let plain = digest(&a);
        assert_eq!(plain, digest(&b));
        let stamped = stamp(&mut a, &provenance(), "applyset-x-v1");
        let mut other_commit = provenance();
        other_commit.revision = "0".repeat(40);
        let mut c = b.clone();
        assert_eq!(
            stamp(&mut c, &other_commit, "applyset-x-v1"),
            stamped,
            "revision is not content"
        );
        let mut d = b.clone();
        d["data"]["a"] = json!("changed");
        assert_ne!(stamp(&mut d, &provenance(), "applyset-x-v1"), stamped);
    }

    #[test]
    fn applyset_id_has_kubectl_shape() {
        let id = applyset_id(&inventory_parent("shop", "shop"));
        assert!(id.starts_with("applyset-") && id.ends_with("-v1"), "{id}");
        // 32 bytes of sha256 in unpadded base64 are 43 characters.
        assert_eq!(id.len(), "applyset-".len() + 43 + "-v1".len());
        assert!(id.len() <= 63, "a label value");
    }
}
