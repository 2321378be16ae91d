//! The error for a render of zero objects: which renderer ran, on which files, and what probably
//! went wrong. An app that renders nothing by mistake would otherwise sync as "nothing to do" —
//! or, with `--prune`, delete everything it had.

use std::fmt;

use crate::appfile::{App, Renderer};

/// How many file names the message lists before it says "and N more".
const LISTED_FILES: usize = 8;

/// A render of zero objects that the caller did not allow (`--allow-empty`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmptyRender {
    /// The app's folder, relative to the repository root.
    pub path: String,
    /// The renderer that ran.
    pub renderer: Renderer,
    /// Whether the renderer was chosen in `gitops.yaml` (else it was detected from the files).
    pub explicit: bool,
    /// The files of the folder, relative to the folder.
    pub files: Vec<String>,
}

impl EmptyRender {
    /// Describes the empty render of `app` (with its renderer resolved) over `files_seen`
    /// (relative to the repository root).
    pub fn new(app: &App, files_seen: &[String]) -> EmptyRender {
        let prefix = if app.path.is_empty() {
            String::new()
        } else {
            format!("{}/", app.path)
        };
        EmptyRender {
            path: app.path.clone(),
            renderer: app.renderer,
            explicit: app.from_app_file && app.renderer != Renderer::Auto,
            files: files_seen
                .iter()
                .map(|f| f.strip_prefix(&prefix).unwrap_or(f).to_owned())
                .collect(),
        }
    }

    /// The likely cause, from the files seen and the renderer that ran.
    fn hint(&self) -> String {
        let has = |suffixes: &[&str]| {
            self.files
                .iter()
                .any(|f| suffixes.iter().any(|s| f.ends_with(s)))
        };
        let manifests = has(&[".yaml", ".yml", ".json"]);
        match self.renderer {
            _ if self.files.is_empty() => "the folder holds no files".to_owned(),
            Renderer::Plain | Renderer::Auto if has(&[".jsonnet"]) => {
                "the plain renderer ignores .jsonnet files: they need the jsonnet renderer (drop `renderer: plain` from the app in gitops.yaml, or set `renderer: jsonnet`)".to_owned()
            }
            Renderer::Plain | Renderer::Auto if !manifests => {
                "the plain renderer reads only .yaml, .yml and .json files".to_owned()
            }
            Renderer::Plain | Renderer::Auto => {
                "its YAML and JSON files hold no documents (only comments or `---`)".to_owned()
            }
            Renderer::Helm => {
                "`helm template` printed no manifests: check the chart's templates and the conditions its values switch off".to_owned()
            }
            Renderer::Kustomize => {
                "kustomize printed no manifests: check `resources:` in kustomization.yaml".to_owned()
            }
            Renderer::Tera => {
                "the templates rendered only empty documents: check the conditions in templates/ against the values files".to_owned()
            }
            Renderer::Jsonnet => {
                "the .jsonnet files evaluate to empty lists or null".to_owned()
            }
        }
    }
}

impl fmt::Display for EmptyRender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "the repository root"
        } else {
            self.path.as_str()
        };
        let listed: Vec<&str> = self
            .files
            .iter()
            .take(LISTED_FILES)
            .map(String::as_str)
            .collect();
        let more = self.files.len().saturating_sub(LISTED_FILES);
        write!(
            f,
            "{path} rendered 0 objects with the {} renderer ({}) from {} file{}",
            self.renderer.name(),
            if self.explicit {
                "set in gitops.yaml"
            } else {
                "detected"
            },
            self.files.len(),
            if self.files.len() == 1 { "" } else { "s" },
        )?;
        if !listed.is_empty() {
            write!(f, " ({}", listed.join(", "))?;
            if more > 0 {
                write!(f, " and {more} more")?;
            }
            write!(f, ")")?;
        }
        write!(
            f,
            ": {}; if the app is empty on purpose, pass --allow-empty",
            self.hint()
        )
    }
}

impl std::error::Error for EmptyRender {}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty(renderer: Renderer, from_app_file: bool, files: &[&str]) -> String {
        let mut app = App::from_path("apps/x").expect("app");
        app.renderer = renderer;
        app.from_app_file = from_app_file;
        let files: Vec<String> = files.iter().map(|f| format!("apps/x/{f}")).collect();
        EmptyRender::new(&app, &files).to_string()
    }

    #[test]
    fn names_renderer_files_and_cause() {
        assert_eq!(
            empty(Renderer::Plain, true, &["README.md", "main.jsonnet"]),
            "apps/x rendered 0 objects with the plain renderer (set in gitops.yaml) from 2 files (README.md, main.jsonnet): the plain renderer ignores .jsonnet files: they need the jsonnet renderer (drop `renderer: plain` from the app in gitops.yaml, or set `renderer: jsonnet`); if the app is empty on purpose, pass --allow-empty"
        );
        assert_eq!(
            empty(Renderer::Plain, false, &[]),
            "apps/x rendered 0 objects with the plain renderer (detected) from 0 files: the folder holds no files; if the app is empty on purpose, pass --allow-empty"
        );
        let many: Vec<String> = (0..10).map(|i| format!("f{i}.txt")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let text = empty(Renderer::Plain, false, &many);
        assert!(text.contains("from 10 files (f0.txt, f1.txt, f2.txt, f3.txt, f4.txt, f5.txt, f6.txt, f7.txt and 2 more): the plain renderer reads only .yaml"), "{text}");
        let text = empty(Renderer::Helm, false, &["Chart.yaml"]);
        assert!(text.contains("with the helm renderer (detected) from 1 file (Chart.yaml): `helm template` printed no manifests"), "{text}");
    }
}
