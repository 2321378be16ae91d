//! From a commit to stamped Kubernetes objects.
//!
//! [`render_app`] reads the app's folder from the commit, runs its renderer, checks that every
//! document is a Kubernetes object, gives namespaced objects without a namespace the app's
//! namespace, rejects duplicates, and stamps provenance. Plugin and webhook both call it, so they
//! agree byte for byte on what a commit renders to.

mod chart_dependencies;
mod emptiness;
mod external;
mod jsonnet;
pub mod jsonnet_child;
mod plain;
mod tera;

use std::collections::HashMap;

use git2::Oid;
use serde::Serialize;
use serde_json::Value;

use crate::appfile::{split_group_kind, App, AppFile, AppFileError, Renderer, APP_FILE};
use crate::git::{FileTree, GitError, GitRepo};
use crate::object::{group_of, ObjectKey, RenderedObject, Source};
use crate::provenance::{applyset_id, inventory_parent, stamp, Provenance};
use crate::scope::{scopes_from_crds, Scope};

pub use self::emptiness::EmptyRender;
pub use self::external::{find_program, ExternalError};
pub use self::jsonnet::{
    has_jsonnet_files, render as render_jsonnet, JsonValue, JsonnetError, JsonnetOptions,
    MAX_STACK_DEPTH,
};
pub use self::plain::{parse_documents, ParseError};
pub use self::tera::TeraError;

/// Why an app could not be rendered: the step that failed, each keeping its cause. The renderers'
/// own errors pass through unchanged, so a message reads the same whichever caller prints it.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// Reading the app's folder or values files from the commit.
    #[error(transparent)]
    Git(#[from] GitError),
    /// The app file, or choosing the app from it, for callers that load, select and render in
    /// one step (the webhook resolving a claimed app).
    #[error(transparent)]
    AppFile(#[from] AppFileError),
    /// A values file named by the app does not exist in the commit.
    #[error("values file {file:?} (listed for app {app:?}) does not exist in commit {commit}")]
    ValuesFileMissing {
        /// The values file, relative to the repository root.
        file: String,
        /// The app that lists it.
        app: String,
        /// The commit searched.
        commit: String,
    },
    /// The plain renderer found a file that is not valid YAML or JSON.
    #[error(transparent)]
    Plain(#[from] ParseError),
    /// The Tera renderer failed.
    #[error(transparent)]
    Tera(#[from] TeraError),
    /// The kustomize or helm renderer failed.
    #[error(transparent)]
    External(#[from] ExternalError),
    /// The jsonnet renderer failed.
    #[error(transparent)]
    Jsonnet(#[from] JsonnetError),
    /// A document is valid YAML but not a Kubernetes object.
    #[error("{source_ref}: {field} {reason}")]
    InvalidObject {
        /// Where the document came from.
        source_ref: Source,
        /// The field at fault (`kind`, `metadata.name`, ...).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Two documents declare the same object.
    #[error("{key} is declared twice: in {first} and in {second}")]
    DuplicateObject {
        /// The object declared twice (boxed: it is large and errors should stay small).
        key: Box<ObjectKey>,
        /// The first declaration.
        first: Source,
        /// The second declaration.
        second: Source,
    },
}

/// Result with [`RenderError`].
type Result<T, E = RenderError> = std::result::Result<T, E>;

/// The namespace used for a plain folder app when none is given.
pub const DEFAULT_NAMESPACE: &str = "default";

/// What one render produced.
#[derive(Debug, Clone, Serialize)]
pub struct Rendered {
    /// The app as rendered (with its renderer resolved from `auto`).
    pub app: App,
    /// The namespace namespaced objects were given when they named none, and where the
    /// inventory lives.
    pub namespace: String,
    /// Provenance stamped on every object.
    pub provenance: Provenance,
    /// The ApplySet id stamped on every object.
    pub applyset: String,
    /// The objects, in the renderer's deterministic order.
    pub objects: Vec<RenderedObject>,
    /// The files of the app folder (hidden ones aside), relative to the repository root: what an
    /// empty render's error lists ([`Rendered::ensure_not_empty`]).
    pub files_seen: Vec<String>,
}

impl Rendered {
    /// Refuses a render of zero objects unless `allow_empty`: an error naming the renderer that ran
    /// and the files it saw, with a hint. A caller's decision, not the renderer's: the webhook
    /// renders every app of the branch head for its index, and an app empty on purpose must not
    /// make it fail.
    pub fn ensure_not_empty(&self, allow_empty: bool) -> Result<(), EmptyRender> {
        if allow_empty || !self.objects.is_empty() {
            return Ok(());
        }
        Err(EmptyRender::new(&self.app, &self.files_seen))
    }
}

/// Render settings that do not come from the commit.
pub struct RenderOptions<'a> {
    /// Where kinds are namespaced or not (discovery, or the built-in table).
    pub scope: &'a dyn Scope,
    /// The namespace for a plain folder app, which has no app file to say it. Ignored for apps
    /// from the app file, whose namespace Git decides.
    pub folder_namespace: Option<&'a str>,
}

/// Reads the app file of a commit, if it has one.
pub fn load_app_file(repo: &GitRepo, commit: Oid) -> Result<Option<AppFile>, AppFileError> {
    match repo.read_file(commit, APP_FILE)? {
        Some(bytes) => AppFile::parse(&bytes).map(Some),
        None => Ok(None),
    }
}

/// Renders `app` at `commit` of `repo` and stamps provenance.
pub fn render_app(
    repo: &GitRepo,
    commit: Oid,
    app: &App,
    options: &RenderOptions<'_>,
) -> Result<Rendered> {
    let files = repo.read_tree(commit, &app.path)?;
    let renderer = app.renderer.detect(&app.path, &files);
    let mut values = Vec::new();
    for file in &app.values {
        let bytes =
            repo.read_file(commit, file)?
                .ok_or_else(|| RenderError::ValuesFileMissing {
                    file: file.clone(),
                    app: app.name.clone(),
                    commit: commit.to_string(),
                })?;
        values.push((file.clone(), bytes));
    }
    let namespace = target_namespace(app, options);
    let documents = match renderer {
        Renderer::Plain | Renderer::Auto => plain::render(&files, &app.path)?,
        Renderer::Tera => tera::render(&files, &values, app, &namespace)?,
        Renderer::Kustomize => {
            let whole = repo.read_tree(commit, "")?;
            external::kustomize(&whole, &app.path)?
        }
        Renderer::Helm => {
            let whole = repo.read_tree(commit, "")?;
            external::helm(&whole, app, &namespace)?
        }
        Renderer::Jsonnet => {
            let whole = repo.read_tree(commit, "")?;
            jsonnet::render(whole, &app.path, &app.jsonnet)?
        }
    };
    let files_seen = seen_files(&files, &app.path);
    let provenance = Provenance {
        repo: repo.source_url().to_owned(),
        revision: commit.to_string(),
        path: app.path.clone(),
        app: app.name.clone(),
    };
    let mut resolved = app.clone();
    resolved.renderer = renderer;
    finish(
        resolved,
        namespace,
        provenance,
        documents,
        files_seen,
        options.scope,
    )
}

/// Renders from files already read (for benchmarks and callers that cache trees): `files` holds
/// the app folder, `values` the app's values files in order.
pub fn render_files(
    files: &FileTree,
    values: &[(String, Vec<u8>)],
    app: &App,
    provenance: Provenance,
    options: &RenderOptions<'_>,
) -> Result<Rendered> {
    let renderer = app.renderer.detect(&app.path, files);
    let namespace = target_namespace(app, options);
    let documents = match renderer {
        Renderer::Plain | Renderer::Auto => plain::render(files, &app.path)?,
        Renderer::Tera => tera::render(files, values, app, &namespace)?,
        Renderer::Kustomize => external::kustomize(files, &app.path)?,
        Renderer::Helm => external::helm(files, app, &namespace)?,
        Renderer::Jsonnet => jsonnet::render(files.clone(), &app.path, &app.jsonnet)?,
    };
    let mut resolved = app.clone();
    resolved.renderer = renderer;
    let files_seen = seen_files(files, &app.path);
    finish(
        resolved,
        namespace,
        provenance,
        documents,
        files_seen,
        options.scope,
    )
}

/// The app folder's files that a renderer could read: hidden ones and the app file aside.
fn seen_files(files: &FileTree, path: &str) -> Vec<String> {
    let prefix = if path.is_empty() {
        String::new()
    } else {
        format!("{path}/")
    };
    files
        .keys()
        .filter(|name| name.starts_with(&prefix) || name.as_str() == path)
        .filter(|name| !plain::is_hidden_or_app_file(name, path))
        .cloned()
        .collect()
}

fn target_namespace(app: &App, options: &RenderOptions<'_>) -> String {
    match (&app.namespace, app.from_app_file) {
        (Some(namespace), _) => namespace.clone(),
        (None, false) => options
            .folder_namespace
            .unwrap_or(DEFAULT_NAMESPACE)
            .to_owned(),
        (None, true) => DEFAULT_NAMESPACE.to_owned(),
    }
}

/// Validation, namespace defaulting, duplicate detection and stamping: the steps every renderer
/// shares.
fn finish(
    app: App,
    namespace: String,
    provenance: Provenance,
    documents: Vec<RenderedObject>,
    files_seen: Vec<String>,
    scope: &dyn Scope,
) -> Result<Rendered> {
    for document in &documents {
        validate(document)?;
    }
    let crd_scopes = scopes_from_crds(documents.iter().map(|d| &d.object));
    let applyset = applyset_id(&inventory_parent(&app.name, &namespace));
    let mut seen: HashMap<ObjectKey, Source> = HashMap::with_capacity(documents.len());
    let mut objects = Vec::with_capacity(documents.len());
    for mut document in documents {
        let (group, kind) = {
            let api_version = document.object["apiVersion"].as_str().unwrap_or_default();
            let kind = document.object["kind"].as_str().unwrap_or_default();
            (group_of(api_version).to_owned(), kind.to_owned())
        };
        let declared_cluster_scoped = app
            .cluster_scoped_kinds
            .iter()
            .filter_map(|k| split_group_kind(k))
            .any(|(g, k)| g == group && k == kind);
        let namespaced = crd_scopes
            .is_namespaced(&group, &kind)
            .or((declared_cluster_scoped).then_some(false))
            .or_else(|| scope.is_namespaced(&group, &kind))
            // A kind nobody knows is most likely a namespaced custom resource.
            .unwrap_or(true);
        if let Some(metadata) = document
            .object
            .get_mut("metadata")
            .and_then(Value::as_object_mut)
        {
            if namespaced {
                let has_namespace = metadata
                    .get("namespace")
                    .and_then(Value::as_str)
                    .is_some_and(|ns| !ns.is_empty());
                if !has_namespace {
                    // Right after the name, where people look for it.
                    let at = metadata
                        .keys()
                        .position(|k| k == "name")
                        .map_or(0, |i| i + 1);
                    metadata.shift_insert(
                        at,
                        "namespace".to_owned(),
                        Value::from(namespace.as_str()),
                    );
                }
            } else if metadata.contains_key("namespace") {
                // The API server ignores a namespace on cluster-scoped objects; so do we.
                metadata.remove("namespace");
            }
        }
        let key = document.key();
        if let Some(first) = seen.get(&key) {
            return Err(RenderError::DuplicateObject {
                key: Box::new(key),
                first: first.clone(),
                second: document.source.clone(),
            });
        }
        seen.insert(key, document.source.clone());
        stamp(&mut document.object, &provenance, &applyset);
        objects.push(document);
    }
    Ok(Rendered {
        app,
        namespace,
        provenance,
        applyset,
        objects,
        files_seen,
    })
}

/// Checks that a document is a Kubernetes object we can apply: `apiVersion`, `kind` and
/// `metadata.name` are non-empty strings.
fn validate(document: &RenderedObject) -> Result<()> {
    let invalid = |field: &'static str, reason: &str| RenderError::InvalidObject {
        source_ref: document.source.clone(),
        field,
        reason: reason.to_owned(),
    };
    let object = &document.object;
    if !object.is_object() {
        return Err(invalid(
            "document",
            "is not a mapping: a Kubernetes object is a mapping with apiVersion, kind and metadata",
        ));
    }
    for field in ["apiVersion", "kind"] {
        match object.get(field) {
            Some(Value::String(s)) if !s.is_empty() => {}
            Some(_) => {
                return Err(invalid(
                    if field == "kind" {
                        "kind"
                    } else {
                        "apiVersion"
                    },
                    "must be a non-empty string",
                ))
            }
            None => {
                return Err(invalid(
                    if field == "kind" {
                        "kind"
                    } else {
                        "apiVersion"
                    },
                    "is missing: every Kubernetes object needs apiVersion and kind",
                ))
            }
        }
    }
    let metadata = match object.get("metadata") {
        Some(Value::Object(m)) => m,
        Some(_) => return Err(invalid("metadata", "must be a mapping")),
        None => {
            return Err(invalid(
                "metadata.name",
                "is missing: every object needs a name",
            ))
        }
    };
    match metadata.get("name") {
        Some(Value::String(s)) if !s.is_empty() => Ok(()),
        Some(_) => Err(invalid("metadata.name", "must be a non-empty string")),
        // A hook runs once per sync, so a fresh name each time is what it wants; any other
        // object must keep its name for the next sync to find it.
        None if crate::hooks::is_hook(object)
            && metadata
                .get("generateName")
                .and_then(Value::as_str)
                .is_some_and(|g| !g.is_empty()) =>
        {
            Ok(())
        }
        None if metadata.contains_key("generateName") => Err(invalid(
            "metadata.name",
            "is missing (generateName is set): GitOps needs a fixed name to find the object again",
        )),
        None => Err(invalid(
            "metadata.name",
            "is missing: every object needs a name",
        )),
    }
}

/// A file tree from (name, text) pairs, for the renderers' tests.
#[cfg(test)]
pub(crate) fn test_tree(entries: &[(&str, &str)]) -> FileTree {
    entries
        .iter()
        .map(|(n, c)| (n.to_string(), c.as_bytes().to_vec()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::BuiltinScope;

    fn render(files: &[(&str, &str)], app: &App) -> Result<Rendered> {
        let tree: FileTree = files
            .iter()
            .map(|(n, c)| (n.to_string(), c.as_bytes().to_vec()))
            .collect();
        let provenance = Provenance {
            repo: "file:///repo".into(),
            revision: "a".repeat(40),
            path: app.path.clone(),
            app: app.name.clone(),
        };
        let options = RenderOptions {
            scope: &BuiltinScope,
            folder_namespace: None,
        };
        render_files(&tree, &[], app, provenance, &options)
    }

    fn app(cluster_scoped_kinds: &[&str]) -> App {
        App {
            name: "shop".into(),
            path: "app".into(),
            namespace: Some("shop".into()),
            renderer: Renderer::Plain,
            values: vec![],
            from_app_file: true,
            cluster_scoped_kinds: cluster_scoped_kinds.iter().map(|s| s.to_string()).collect(),
            take_over_managers: Default::default(),
            jsonnet: Default::default(),
        }
    }

    const OBJECTS: &str = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, namespace: ignored}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: globals.example.io}\nspec: {group: example.io, scope: Cluster, names: {kind: Global}}\n---\napiVersion: example.io/v1\nkind: Global\nmetadata: {name: g}\n---\napiVersion: other.io/v1\nkind: Widget\nmetadata: {name: w}\n---\napiVersion: cert-manager.io/v1\nkind: ClusterIssuer\nmetadata: {name: le}\n---\napiVersion: other.io/v1\nkind: ClusterThing\nmetadata: {name: t}\n";

    fn namespaces(rendered: &Rendered) -> Vec<(String, String)> {
        rendered
            .objects
            .iter()
            .map(|o| (o.key().kind, o.key().namespace))
            .collect()
    }

    #[test]
    fn namespaces_come_from_the_table_crds_in_the_render_and_the_app_file() {
        let rendered = render(
            &[("app/all.yaml", OBJECTS)],
            &app(&["ClusterThing.other.io"]),
        )
        .expect("render");
        let expected = [
            ("Namespace", ""),
            ("ConfigMap", "shop"),
            ("CustomResourceDefinition", ""),
            ("Global", ""),
            ("Widget", "shop"),
            ("ClusterIssuer", ""),
            ("ClusterThing", ""),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(k, n)| (k.to_string(), n.to_string()))
            .collect();
        assert_eq!(namespaces(&rendered), expected);
        assert!(
            rendered.objects[0].object["metadata"]
                .get("namespace")
                .is_none(),
            "stripped from a cluster-scoped kind"
        );
        // Without the app file's word, an unknown kind is taken for a namespaced custom resource.
        let rendered = render(&[("app/all.yaml", OBJECTS)], &app(&[])).expect("render");
        assert_eq!(
            namespaces(&rendered)[6],
            ("ClusterThing".to_owned(), "shop".to_owned())
        );
    }

    #[test]
    fn an_explicit_namespace_and_a_defaulted_one_can_collide() {
        let files = [
            (
                "app/a.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
            ),
            (
                "app/b.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: shop}\n",
            ),
        ];
        let err = render(&files, &app(&[])).expect_err("duplicate");
        assert_eq!(
            err.to_string(),
            "ConfigMap/shop/c is declared twice: in app/a.yaml (document 1) and in app/b.yaml (document 1)"
        );
    }

    #[test]
    fn generate_name_is_accepted_for_hooks_only() {
        let hook = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  generateName: migrate-\n  annotations: {argocd.argoproj.io/hook: PreSync}\nspec: {}\n";
        let rendered = render(&[("app/hook.yaml", hook)], &app(&[])).expect("a hook renders");
        assert_eq!(rendered.objects[0].key().to_string(), "Job/shop/migrate-");
        let plain =
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  generateName: migrate-\nspec: {}\n";
        let err = render(&[("app/job.yaml", plain)], &app(&[])).expect_err("not a hook");
        assert_eq!(
            err.to_string(),
            "app/job.yaml (document 1): metadata.name is missing (generateName is set): GitOps needs a fixed name to find the object again"
        );
    }
}
