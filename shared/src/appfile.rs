//! The app file: `gitops.yaml` at the repository root lists apps by name, each with its path,
//! target namespace, renderer and values files.
//!
//! The webhook renders exactly what the plugin rendered only if every render option comes from the
//! commit, so nothing here can be set from the command line alone.
//!
//! ```yaml
//! apps:
//!   shop:
//!     path: examples/tera-app        # folder, relative to the repository root
//!     namespace: shop                # for namespaced objects that name none
//!     renderer: tera                 # auto (default), plain, tera, kustomize, helm
//!     values: [values-production.yaml]   # relative to the app's folder, merged in this order
//!     takeOverManagers: [default, deploy-script]  # whose fields sync takes over (see crate::takeover)
//!   guestbook:
//!     path: apps/guestbook           # holds *.jsonnet files: the jsonnet renderer
//!     jsonnet:                       # strings pass as strings, other values as JSON
//!       tlas: {replicas: 2}          # top-level arguments
//!       extVars: {env: production}   # std.extVar('env')
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::git::{join_path, normalize_path, FileTree, GitError};
use crate::render::JsonnetOptions;
use crate::takeover::TakeOverManagers;

/// The app file's name at the repository root.
pub const APP_FILE: &str = "gitops.yaml";

/// What is wrong with the app file, or with the app asked for.
#[derive(Debug, thiserror::Error)]
pub enum AppFileError {
    /// The app file is not valid YAML or does not have the expected shape.
    #[error("{file}: {message}")]
    Invalid {
        /// The app file, relative to the repository root.
        file: String,
        /// What is wrong, naming the key (and line where known).
        message: String,
    },
    /// The app asked for is not listed in the app file.
    #[error("{file}: no app named {app:?}; the apps are: {}", known.join(", "))]
    UnknownApp {
        /// The app file.
        file: String,
        /// The app asked for.
        app: String,
        /// The apps the file lists.
        known: Vec<String>,
    },
    /// No app was named and the choice is ambiguous, or the app and path given disagree.
    #[error("{0}")]
    NoAppSelected(String),
    /// Reading the app file from the commit failed, or a path given for the app is not allowed.
    #[error(transparent)]
    Git(#[from] GitError),
}

/// Result with [`AppFileError`].
type Result<T, E = AppFileError> = std::result::Result<T, E>;

/// How an app's folder becomes Kubernetes objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Renderer {
    /// Decide from the folder: `kustomization.yaml` → kustomize, `Chart.yaml` → helm,
    /// `values.yaml` with `templates/` → tera, a `.jsonnet` file → jsonnet, anything else → plain.
    #[default]
    Auto,
    /// YAML and JSON files, read as they are.
    Plain,
    /// Tera templates with values files (a Helm-like chart layout).
    Tera,
    /// `kubectl kustomize` (or `kustomize build`).
    Kustomize,
    /// `helm template`.
    Helm,
    /// Jsonnet, evaluated natively (jrsonnet), with the YAML and JSON files beside it.
    Jsonnet,
}

impl Renderer {
    /// The renderer's name as written in the app file.
    pub fn name(self) -> &'static str {
        match self {
            Renderer::Auto => "auto",
            Renderer::Plain => "plain",
            Renderer::Tera => "tera",
            Renderer::Kustomize => "kustomize",
            Renderer::Helm => "helm",
            Renderer::Jsonnet => "jsonnet",
        }
    }

    /// Resolves `Auto` by looking at the files of the app folder `path`.
    pub fn detect(self, path: &str, files: &FileTree) -> Renderer {
        if self != Renderer::Auto {
            return self;
        }
        let at = |name: &str| {
            if path.is_empty() {
                name.to_owned()
            } else {
                format!("{path}/{name}")
            }
        };
        let has = |name: &str| files.contains_key(&at(name));
        if has("kustomization.yaml") || has("kustomization.yml") || has("Kustomization") {
            Renderer::Kustomize
        } else if has("Chart.yaml") {
            Renderer::Helm
        } else if has("values.yaml") && files.keys().any(|f| f.starts_with(&at("templates/"))) {
            Renderer::Tera
        } else if crate::render::has_jsonnet_files(files, path) {
            Renderer::Jsonnet
        } else {
            Renderer::Plain
        }
    }
}

/// One app, fully resolved: every path relative to the repository root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct App {
    /// The app's name: a DNS label, used in the app label and the inventory's name.
    pub name: String,
    /// The app's folder, relative to the repository root (empty for the root).
    pub path: String,
    /// The namespace given to namespaced objects that name none.
    pub namespace: Option<String>,
    /// How to render it.
    pub renderer: Renderer,
    /// Values files, relative to the repository root, in merge order.
    pub values: Vec<String>,
    /// True when the app comes from the app file, false for a plain `--path` app.
    pub from_app_file: bool,
    /// Custom kinds (`Kind.group`) that are cluster-scoped although neither the built-in table nor
    /// a CRD in the render says so. Scope is decided from Git alone, so the webhook renders the
    /// same objects as the plugin.
    pub cluster_scoped_kinds: Vec<String>,
    /// The field managers whose fields `sync` takes over, so that hand-made changes are undone
    /// and not only reported (`takeOverManagers`; kubectl's by default).
    pub take_over_managers: TakeOverManagers,
    /// Top-level arguments and external variables for the jsonnet renderer (`jsonnet:`).
    #[serde(skip_serializing_if = "JsonnetOptions::is_empty")]
    pub jsonnet: JsonnetOptions,
}

impl App {
    /// An app that is just a folder (`--path`), named by [`folder_app_name`] from its whole path,
    /// auto-detected renderer, no values files.
    pub fn from_path(path: &str) -> Result<App> {
        let path = normalize_path(path)?;
        let name = folder_app_name(&path);
        Ok(App {
            name,
            path,
            namespace: None,
            renderer: Renderer::Auto,
            values: Vec::new(),
            from_app_file: false,
            cluster_scoped_kinds: Vec::new(),
            take_over_managers: TakeOverManagers::default(),
            jsonnet: JsonnetOptions::default(),
        })
    }
}

/// The parsed app file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppFile {
    /// The apps by name.
    pub apps: BTreeMap<String, App>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAppFile {
    #[serde(default)]
    apps: BTreeMap<String, RawApp>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApp {
    path: String,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    renderer: Renderer,
    #[serde(default)]
    values: Vec<String>,
    #[serde(default, rename = "clusterScopedKinds")]
    cluster_scoped_kinds: Vec<String>,
    #[serde(default, rename = "takeOverManagers")]
    take_over_managers: Option<Vec<String>>,
    #[serde(default)]
    jsonnet: Option<JsonnetOptions>,
}

impl AppFile {
    /// Parses and validates the app file's bytes. Errors name the file, the app and the key.
    pub fn parse(bytes: &[u8]) -> Result<AppFile> {
        let invalid = |message: String| AppFileError::Invalid {
            file: APP_FILE.to_owned(),
            message,
        };
        let raw: RawAppFile = crate::yaml::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
        let mut apps = BTreeMap::new();
        for (name, raw_app) in raw.apps {
            if !is_dns_label(&name) {
                return Err(invalid(format!(
                    "apps.{name}: the app name must be a DNS label (lowercase letters, digits and '-', at most 63 characters)"
                )));
            }
            let path = normalize_path(&raw_app.path)
                .map_err(|e| invalid(format!("apps.{name}.path: {e}")))?;
            if let Some(namespace) = &raw_app.namespace {
                if !is_dns_label(namespace) {
                    return Err(invalid(format!(
                        "apps.{name}.namespace: {namespace:?} is not a valid namespace name"
                    )));
                }
            }
            let mut values = Vec::new();
            for (index, file) in raw_app.values.iter().enumerate() {
                let joined = join_path(&path, file)
                    .map_err(|e| invalid(format!("apps.{name}.values[{index}]: {e}")))?;
                values.push(joined);
            }
            if !values.is_empty()
                && !matches!(
                    raw_app.renderer,
                    Renderer::Auto | Renderer::Tera | Renderer::Helm
                )
            {
                return Err(invalid(format!(
                    "apps.{name}.values: the {} renderer takes no values files",
                    raw_app.renderer.name()
                )));
            }
            for (index, kind) in raw_app.cluster_scoped_kinds.iter().enumerate() {
                if split_group_kind(kind).is_none() {
                    return Err(invalid(format!(
                        "apps.{name}.clusterScopedKinds[{index}]: {kind:?} is not Kind.group (for example ClusterIssuer.cert-manager.io)"
                    )));
                }
            }
            let take_over_managers = match &raw_app.take_over_managers {
                None => TakeOverManagers::default(),
                Some(entries) => TakeOverManagers::parse(entries)
                    .map_err(|e| invalid(format!("apps.{name}.takeOverManagers{e}")))?,
            };
            let jsonnet = raw_app.jsonnet.unwrap_or_default();
            if !jsonnet.is_empty()
                && !matches!(raw_app.renderer, Renderer::Auto | Renderer::Jsonnet)
            {
                return Err(invalid(format!(
                    "apps.{name}.jsonnet: the {} renderer takes no jsonnet settings",
                    raw_app.renderer.name()
                )));
            }
            if let Some(key) = jsonnet.tlas.keys().find(|k| !is_jsonnet_identifier(k)) {
                return Err(invalid(format!(
                    "apps.{name}.jsonnet.tlas.{key}: a top-level argument is a Jsonnet parameter name (letters, digits and '_', not starting with a digit)"
                )));
            }
            if jsonnet.ext_vars.contains_key("") {
                return Err(invalid(format!(
                    "apps.{name}.jsonnet.extVars: an external variable needs a name"
                )));
            }
            apps.insert(
                name.clone(),
                App {
                    name,
                    path,
                    namespace: raw_app.namespace,
                    renderer: raw_app.renderer,
                    values,
                    from_app_file: true,
                    cluster_scoped_kinds: raw_app.cluster_scoped_kinds,
                    take_over_managers,
                    jsonnet,
                },
            );
        }
        Ok(AppFile { apps })
    }

    /// Chooses the app to render, the same way in the plugin and the webhook:
    /// by name when one is given; else the app file's app at `path` when exactly one has it; else
    /// a plain folder app at `path`; with neither, the app file's only app.
    pub fn select(file: Option<&AppFile>, name: Option<&str>, path: Option<&str>) -> Result<App> {
        let listed = |file: &AppFile| file.apps.keys().cloned().collect::<Vec<_>>();
        if let Some(name) = name {
            let Some(file) = file else {
                return Err(AppFileError::NoAppSelected(format!(
                    "app {name:?} asked for, but the commit has no {APP_FILE}; name a folder with --path instead"
                )));
            };
            let app = file
                .apps
                .get(name)
                .ok_or_else(|| AppFileError::UnknownApp {
                    file: APP_FILE.to_owned(),
                    app: name.to_owned(),
                    known: listed(file),
                })?;
            if let Some(path) = path {
                if normalize_path(path)? != app.path {
                    return Err(AppFileError::NoAppSelected(format!(
                        "app {name:?} lives at {:?} in {APP_FILE}, not at {path:?}; drop --path or fix it",
                        app.path
                    )));
                }
            }
            return Ok(app.clone());
        }
        if let Some(path) = path {
            let normalized = normalize_path(path)?;
            if let Some(file) = file {
                let at_path: Vec<&App> = file
                    .apps
                    .values()
                    .filter(|app| app.path == normalized)
                    .collect();
                match at_path.as_slice() {
                    [] => {}
                    [app] => return Ok((*app).clone()),
                    several => {
                        let names: Vec<&str> = several.iter().map(|a| a.name.as_str()).collect();
                        return Err(AppFileError::NoAppSelected(format!(
                            "{APP_FILE} lists several apps at {normalized:?} ({}); name one",
                            names.join(", ")
                        )));
                    }
                }
            }
            let folder = App::from_path(&normalized)?;
            // One name, one inventory: a folder app may not take the name of a listed app.
            if let Some(listed) = file.and_then(|f| f.apps.get(&folder.name)) {
                return Err(AppFileError::NoAppSelected(format!(
                    "the folder {normalized:?} would be app {:?}, which {APP_FILE} gives to the app at {:?}; list the folder in {APP_FILE} under another name",
                    folder.name, listed.path
                )));
            }
            return Ok(folder);
        }
        match file {
            Some(file) if file.apps.len() == 1 => {
                Ok(file.apps.values().next().cloned().ok_or_else(|| {
                    AppFileError::NoAppSelected(format!("{APP_FILE} lists no apps"))
                })?)
            }
            Some(file) if file.apps.is_empty() => Err(AppFileError::NoAppSelected(format!(
                "{APP_FILE} lists no apps; name a folder with --path"
            ))),
            Some(file) => Err(AppFileError::NoAppSelected(format!(
                "{APP_FILE} lists several apps ({}); name one",
                listed(file).join(", ")
            ))),
            None => Err(AppFileError::NoAppSelected(format!(
                "no app named, no --path given, and the commit has no {APP_FILE}"
            ))),
        }
    }
}

impl AppFile {
    /// The app an object's provenance claims (its app label and path annotation), resolved the
    /// way `render` resolved it: the app file's entry of that name, which must live at that
    /// path; else a folder app at that path, whose derived name must be the label.
    pub fn for_provenance(file: Option<&AppFile>, app: &str, path: &str) -> Result<App> {
        if let Some(entry) = file.and_then(|f| f.apps.get(app)) {
            if entry.path != normalize_path(path)? {
                return Err(AppFileError::NoAppSelected(format!(
                    "app {app:?} lives at {:?} in {APP_FILE}, not at {path:?}",
                    entry.path
                )));
            }
            return Ok(entry.clone());
        }
        let folder = App::from_path(path)?;
        if folder.name != app {
            return Err(AppFileError::NoAppSelected(format!(
                "no app {app:?} in {APP_FILE}, and the folder {path:?} would be app {:?}",
                folder.name
            )));
        }
        Ok(folder)
    }
}

/// How many hex digits of sha256(path) a folder app name carries when its path alone would not
/// name it unambiguously: 40 bits, so two paths of one repository never meet in practice.
const FOLDER_NAME_HASH_LEN: usize = 10;

/// The longest folder app name: a DNS label would allow 63, but the helm renderer passes the app
/// name as the release name, which Helm caps at 53.
pub const FOLDER_NAME_MAX_LEN: usize = 53;

/// The name of a folder app (one not listed in the app file), from its whole normalised path.
///
/// The name becomes the app label, the inventory `gitops-<name>` and so the ApplySet id, so it
/// must differ for every path of a repository: named after the last folder alone, `a/x/web` and
/// `a/y/web` shared one inventory and a prune of one deleted the other's objects. The plugin
/// (selecting the app) and the webhook (resolving a claimed app with
/// [`AppFile::for_provenance`]) both call this one function, so they always agree.
///
/// - a path of lowercase letters and digits only, at most [`FOLDER_NAME_MAX_LEN`] characters with
///   its folders joined by
///   `-`, is that: `a/x/web` → `a-x-web`, `web` → `web`. That mapping cannot meet another path,
///   because `-` then only ever stands for `/`;
/// - any other path (a `-`, `_`, `.` or upper-case letter in a folder name, or too long) gets a
///   readable prefix plus `-` and `FOLDER_NAME_HASH_LEN` hex digits of sha256 of the path:
///   `apps/my-web` → `apps-my-web-<hash>`. Two such paths share a name only through a sha256
///   collision in those digits; a plain path could only meet one by ending in a folder named
///   exactly like its hash;
/// - the repository root is `root` (as before), so the folder `root` itself is hashed.
///
/// Always an RFC 1123 label of at most [`FOLDER_NAME_MAX_LEN`] characters, and a function of the
/// path alone.
pub fn folder_app_name(normalized_path: &str) -> String {
    const ROOT: &str = "root";
    if normalized_path.is_empty() {
        return ROOT.to_owned();
    }
    let plain = normalized_path != ROOT
        && normalized_path.split('/').all(|folder| {
            !folder.is_empty()
                && folder
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    let joined = normalized_path.replace('/', "-");
    if plain && joined.len() <= FOLDER_NAME_MAX_LEN {
        return joined;
    }
    let hash = hex::encode(Sha256::digest(normalized_path.as_bytes()));
    let hash = &hash[..FOLDER_NAME_HASH_LEN];
    let readable = dns_label_from(&joined);
    let room = FOLDER_NAME_MAX_LEN - FOLDER_NAME_HASH_LEN - 1;
    let prefix: String = readable.chars().take(room).collect();
    let prefix = prefix.trim_end_matches('-');
    format!("{prefix}-{hash}")
}

/// Splits `Kind.group` into `(group, kind)`; the kind must start with an upper-case letter and
/// the group must not be empty.
pub fn split_group_kind(text: &str) -> Option<(&str, &str)> {
    let (kind, group) = text.split_once('.')?;
    let valid = kind.starts_with(|c: char| c.is_ascii_uppercase())
        && kind.chars().all(|c| c.is_ascii_alphanumeric())
        && !group.is_empty();
    valid.then_some((group, kind))
}

/// True for a Jsonnet identifier, the only names a top-level argument can bind.
fn is_jsonnet_identifier(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// True for an RFC 1123 label: lowercase alphanumerics and '-', starting and ending alphanumeric,
/// at most 63 characters.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn dns_label_from(s: &str) -> String {
    let mapped: String = s
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed: String = mapped.trim_matches('-').chars().take(63).collect();
    let trimmed = trimmed.trim_end_matches('-').to_owned();
    if trimmed.is_empty() {
        "root".to_owned()
    } else {
        trimmed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "apps:\n  shop:\n    path: examples/tera-app\n    namespace: shop\n    renderer: tera\n    values: [values-production.yaml]\n    clusterScopedKinds: [ClusterThing.example.io]\n  plain:\n    path: ./examples/plain-app/\n";

    #[test]
    fn take_over_managers_default_extend_or_replace() {
        let file = AppFile::parse(
            b"apps:\n  a:\n    path: a\n  b:\n    path: b\n    takeOverManagers: [default, deploy-bot]\n  c:\n    path: c\n    takeOverManagers: []\n",
        )
        .expect("parse");
        assert_eq!(
            file.apps["a"].take_over_managers,
            TakeOverManagers::default()
        );
        assert!(file.apps["b"].take_over_managers.covers("deploy-bot"));
        assert!(file.apps["b"].take_over_managers.covers("kubectl-edit"));
        assert!(!file.apps["c"].take_over_managers.covers("kubectl-edit"));
        let err = AppFile::parse(b"apps:\n  w:\n    path: a\n    takeOverManagers: [\"a*b\"]\n")
            .expect_err("bad entry");
        assert!(
            err.to_string().contains("apps.w.takeOverManagers[0]"),
            "{err}"
        );
    }

    #[test]
    fn parses_and_resolves_values_paths() {
        let file = AppFile::parse(FILE.as_bytes()).expect("parse");
        let shop = &file.apps["shop"];
        assert_eq!(
            shop.values,
            vec!["examples/tera-app/values-production.yaml"]
        );
        assert_eq!(shop.renderer, Renderer::Tera);
        assert_eq!(file.apps["plain"].path, "examples/plain-app");
        assert_eq!(file.apps["plain"].renderer, Renderer::Auto);
        assert_eq!(shop.cluster_scoped_kinds, vec!["ClusterThing.example.io"]);
        let err =
            AppFile::parse(b"apps:\n  web:\n    path: a\n    clusterScopedKinds: [clusterthing]\n")
                .expect_err("bad kind");
        assert!(
            err.to_string().contains("apps.web.clusterScopedKinds[0]"),
            "{err}"
        );
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let err =
            AppFile::parse(b"apps:\n  web:\n    path: a\n    namespce: x\n").expect_err("bad key");
        let msg = err.to_string();
        assert!(msg.contains("gitops.yaml"), "{msg}");
        assert!(msg.contains("namespce"), "{msg}");
        assert!(msg.contains("line 4"), "{msg}");
    }

    #[test]
    fn bad_names_and_paths_are_refused() {
        let err = AppFile::parse(b"apps:\n  Web_1:\n    path: a\n").expect_err("bad name");
        assert!(err.to_string().contains("apps.Web_1"), "{err}");
        let err = AppFile::parse(b"apps:\n  web:\n    path: ../outside\n").expect_err("bad path");
        assert!(err.to_string().contains("apps.web.path"), "{err}");
        let err = AppFile::parse(
            b"apps:\n  web:\n    path: a\n    renderer: plain\n    values: [v.yaml]\n",
        )
        .expect_err("values on plain");
        assert!(err.to_string().contains("apps.web.values"), "{err}");
        let err = AppFile::parse(b"apps:\n  web:\n    path: a\n    renderer: jsonet\n")
            .expect_err("renderer");
        assert!(err.to_string().contains("jsonet"), "{err}");
    }

    #[test]
    fn selection_rules() {
        let file = AppFile::parse(FILE.as_bytes()).expect("parse");
        assert_eq!(
            AppFile::select(Some(&file), Some("shop"), None)
                .expect("by name")
                .name,
            "shop"
        );
        let by_path =
            AppFile::select(Some(&file), None, Some("examples/tera-app")).expect("by path");
        assert_eq!(by_path.namespace.as_deref(), Some("shop"));
        let plain = AppFile::select(Some(&file), None, Some("other/My_App")).expect("folder");
        assert_eq!(plain.name, folder_app_name("other/My_App"));
        assert!(plain.name.starts_with("other-my-app-"), "{}", plain.name);
        assert!(!plain.from_app_file);
        let err = AppFile::select(Some(&file), None, None).expect_err("ambiguous");
        assert!(err.to_string().contains("plain, shop"), "{err}");
        let err = AppFile::select(Some(&file), Some("nope"), None).expect_err("unknown");
        assert!(err.to_string().contains("no app named \"nope\""), "{err}");
        assert!(AppFile::select(None, Some("shop"), None).is_err());
    }

    #[test]
    fn provenance_resolves_like_render() {
        let file = AppFile::parse(FILE.as_bytes()).expect("parse");
        assert_eq!(
            AppFile::for_provenance(Some(&file), "shop", "examples/tera-app")
                .expect("app")
                .values
                .len(),
            1
        );
        assert!(AppFile::for_provenance(Some(&file), "shop", "examples/plain-app").is_err());
        let folder =
            AppFile::for_provenance(Some(&file), "deploy-web", "deploy/web").expect("folder app");
        assert!(!folder.from_app_file);
        assert_eq!(folder.path, "deploy/web");
        // The old name (the last folder) no longer resolves: the webhook refuses such a claim.
        assert!(AppFile::for_provenance(Some(&file), "web", "deploy/web").is_err());
        assert!(AppFile::for_provenance(None, "deploy-web", "deploy/api").is_err());
    }

    /// Issue 8: `a/x/web` and `a/y/web` were both app `web`, with one inventory.
    #[test]
    fn folder_apps_are_named_by_their_whole_path() {
        let x = App::from_path("a/x/web").expect("x");
        let y = App::from_path("./a/y/web/").expect("y");
        assert_eq!(x.name, "a-x-web");
        assert_eq!(y.name, "a-y-web");
        assert_eq!(App::from_path("web").expect("web").name, "web");
        assert_eq!(App::from_path("").expect("root").name, "root");
        // Paths whose plain join would meet get a hash, so each keeps a name of its own.
        let hyphen = App::from_path("a/x-web").expect("hyphen").name;
        let upper = App::from_path("A/X/Web").expect("upper").name;
        let long = App::from_path(&"abcdefghij/".repeat(8)).expect("long").name;
        let names = [
            x.name.clone(),
            y.name.clone(),
            hyphen.clone(),
            upper.clone(),
            long.clone(),
            App::from_path("a/x_web").expect("underscore").name,
            App::from_path("").expect("root").name,
            App::from_path("root").expect("folder root").name,
            App::from_path("repo/root").expect("repo/root").name,
            App::from_path("repo-root").expect("repo-root").name,
        ];
        let distinct: std::collections::BTreeSet<&String> = names.iter().collect();
        assert_eq!(distinct.len(), names.len(), "{names:?}");
        for name in &names {
            assert!(is_dns_label(name), "{name:?} is not a DNS label");
        }
        assert!(hyphen.starts_with("a-x-web-"), "{hyphen}");
        assert_eq!(hyphen.len(), "a-x-web-".len() + FOLDER_NAME_HASH_LEN);
        assert!(
            long.len() <= FOLDER_NAME_MAX_LEN && long.starts_with("abcdefghij-"),
            "{long}"
        );
        // Deterministic: the same path, however spelled, is the same name.
        assert_eq!(App::from_path("a/./x-web/").expect("again").name, hyphen);
        // The plugin selects and the webhook resolves through the same function.
        let resolved = AppFile::for_provenance(None, &hyphen, "a/x-web").expect("resolves");
        assert_eq!(resolved, App::from_path("a/x-web").expect("same"));
    }

    #[test]
    fn a_folder_app_may_not_take_a_listed_name() {
        let file = AppFile::parse(b"apps:\n  a-x-web:\n    path: elsewhere\n").expect("parse");
        let err = AppFile::select(Some(&file), None, Some("a/x/web")).expect_err("taken");
        assert!(err.to_string().contains("elsewhere"), "{err}");
        assert!(AppFile::for_provenance(Some(&file), "a-x-web", "a/x/web").is_err());
    }

    #[test]
    fn detects_renderers() {
        let files = |names: &[&str]| {
            names
                .iter()
                .map(|n| (n.to_string(), Vec::new()))
                .collect::<FileTree>()
        };
        assert_eq!(
            Renderer::Auto.detect("a", &files(&["a/kustomization.yaml"])),
            Renderer::Kustomize
        );
        assert_eq!(
            Renderer::Auto.detect("a", &files(&["a/Chart.yaml"])),
            Renderer::Helm
        );
        assert_eq!(
            Renderer::Auto.detect("a", &files(&["a/values.yaml", "a/templates/x.yaml"])),
            Renderer::Tera
        );
        assert_eq!(
            Renderer::Auto.detect("a", &files(&["a/x.yaml"])),
            Renderer::Plain
        );
        assert_eq!(
            Renderer::Plain.detect("a", &files(&["a/Chart.yaml"])),
            Renderer::Plain
        );
        assert_eq!(
            Renderer::Auto.detect("a", &files(&["a/README.md", "a/sub/main.jsonnet"])),
            Renderer::Jsonnet
        );
        assert_eq!(
            Renderer::Auto.detect("a", &files(&["a/x.yaml", "a/.old/main.jsonnet"])),
            Renderer::Plain
        );
    }

    #[test]
    fn jsonnet_settings_are_read_and_checked() {
        let file = AppFile::parse(
            b"apps:\n  gb:\n    path: a\n    jsonnet:\n      tlas: {replicas: 2, name: web}\n      extVars: {env: prod}\n",
        )
        .expect("parse");
        let jsonnet = &file.apps["gb"].jsonnet;
        assert_eq!(jsonnet.tlas["replicas"].0, serde_json::json!(2));
        assert_eq!(jsonnet.tlas["name"].0, serde_json::json!("web"));
        assert_eq!(jsonnet.ext_vars["env"].0, serde_json::json!("prod"));
        let err = AppFile::parse(b"apps:\n  gb:\n    path: a\n    jsonnet:\n      tla: {x: 1}\n")
            .expect_err("unknown key")
            .to_string();
        assert!(err.contains("tla") && err.contains("line 5"), "{err}");
        let err =
            AppFile::parse(b"apps:\n  gb:\n    path: a\n    jsonnet:\n      tlas: {my-arg: 1}\n")
                .expect_err("bad tla name")
                .to_string();
        assert!(err.contains("apps.gb.jsonnet.tlas.my-arg"), "{err}");
        let err = AppFile::parse(
            b"apps:\n  gb:\n    path: a\n    renderer: helm\n    jsonnet:\n      extVars: {a: b}\n",
        )
        .expect_err("wrong renderer")
        .to_string();
        assert!(err.contains("apps.gb.jsonnet: the helm renderer"), "{err}");
    }
}
