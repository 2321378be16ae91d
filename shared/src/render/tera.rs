//! The Tera renderer: a chart-like folder with `values.yaml` and `templates/`.
//!
//! Values: the folder's `values.yaml`, then each of the app's values files in the order the app
//! file lists them, merged deeply (maps merge key by key; lists and scalars are replaced).
//! Templates see `values`, `app.name` and `app.namespace`. Files in `templates/` whose name starts
//! with `_` are partials (macros, includes) and render nothing themselves. Extra filters:
//! `to_yaml`, `nindent(n=N)` and `b64encode`, for the habits Helm charts taught.

use std::collections::HashMap;

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::appfile::App;
use crate::git::FileTree;
use crate::object::RenderedObject;
use crate::render::plain::{parse_documents, ParseError};

/// What can go wrong rendering Tera templates.
#[derive(Debug, thiserror::Error)]
pub enum TeraError {
    /// A values file is not a YAML mapping.
    #[error("values file {file}: {message}")]
    ValuesFile {
        /// The values file, relative to the repository root.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// A template failed to parse or render.
    #[error("template {template}{}: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Template {
        /// The template, relative to the repository root.
        template: String,
        /// The 1-based line of the failing expression, where it can be found.
        line: Option<usize>,
        /// What Tera said: its innermost cause, on one line.
        message: String,
    },
    /// A template rendered text that is not valid YAML.
    #[error(transparent)]
    Output(#[from] ParseError),
}

/// Renders the templates of the app folder with the merged values.
pub fn render(
    files: &FileTree,
    values: &[(String, Vec<u8>)],
    app: &App,
    namespace: &str,
) -> Result<Vec<RenderedObject>, TeraError> {
    let at = |name: &str| {
        if app.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}/{name}", app.path)
        }
    };
    let mut merged = Value::Object(Map::new());
    let chart_values = at("values.yaml");
    if let Some(bytes) = files.get(&chart_values) {
        merge(&mut merged, parse_values(&chart_values, bytes)?);
    }
    for (file, bytes) in values {
        merge(&mut merged, parse_values(file, bytes)?);
    }

    let prefix = at("templates/");
    let templates: Vec<(&String, &Vec<u8>)> = files
        .iter()
        .filter(|(name, _)| name.starts_with(&prefix))
        .collect();
    let mut sources: HashMap<&str, &str> = HashMap::new();
    let mut raw = Vec::with_capacity(templates.len());
    for (name, bytes) in &templates {
        let text = std::str::from_utf8(bytes).map_err(|_| TeraError::Template {
            template: (*name).clone(),
            line: None,
            message: "is not UTF-8 text".to_owned(),
        })?;
        sources.insert(name.as_str(), text);
        raw.push((name.as_str(), text));
    }
    let mut tera = tera::Tera::default();
    tera.autoescape_on(Vec::new());
    tera.register_filter("to_yaml", to_yaml);
    tera.register_filter("nindent", nindent);
    tera.register_filter("b64encode", b64encode);
    tera.add_raw_templates(raw)
        .map_err(|e| template_error(&e, &sources))?;

    let mut context = tera::Context::new();
    context.insert("values", &merged);
    context.insert(
        "app",
        &serde_json::json!({"name": app.name, "namespace": namespace}),
    );

    let mut objects = Vec::new();
    for (name, _) in templates {
        let file_name = name.rsplit('/').next().unwrap_or_default();
        let renders = !file_name.starts_with('_')
            && [".yaml", ".yml", ".json"]
                .iter()
                .any(|ext| file_name.ends_with(ext));
        if !renders {
            continue;
        }
        let output = tera
            .render(name, &context)
            .map_err(|e| template_error(&e, &sources))?;
        objects.extend(
            parse_documents(name, output.as_bytes(), false).map_err(|e| ParseError {
                file: format!("{} (rendered output)", e.file),
                ..e
            })?,
        );
    }
    Ok(objects)
}

fn parse_values(file: &str, bytes: &[u8]) -> Result<Value, TeraError> {
    let value: Value = crate::yaml::from_slice(bytes).map_err(|e| TeraError::ValuesFile {
        file: file.to_owned(),
        message: e.to_string(),
    })?;
    match value {
        Value::Object(_) => Ok(value),
        Value::Null => Ok(Value::Object(Map::new())),
        _ => Err(TeraError::ValuesFile {
            file: file.to_owned(),
            message: "must be a mapping of values".to_owned(),
        }),
    }
}

/// Deep merge: maps merge key by key, anything else in `overlay` replaces what `base` had.
pub(crate) fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

/// Turns a Tera error into one naming the template and, where it can be found, the line.
fn template_error(error: &tera::Error, sources: &HashMap<&str, &str>) -> TeraError {
    let mut messages = vec![error.to_string()];
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        messages.push(inner.to_string());
        cause = inner.source();
    }
    let joined = messages.join(": ");
    // Tera names the template in quotes: "Failed to render 'path'" / "Failed to parse 'path'".
    let template = sources
        .keys()
        .filter(|name| joined.contains(&format!("'{name}'")))
        .max_by_key(|name| name.len())
        .map(|name| (*name).to_owned())
        .unwrap_or_default();
    // Parse errors carry " --> line:column"; render errors name the failing expression in
    // backticks, which we look up in the template's source.
    let line = parse_error_line(&joined).or_else(|| {
        let source = sources.get(template.as_str())?;
        let expression = joined.split('`').nth(1)?;
        source
            .lines()
            .position(|l| l.contains(expression))
            .map(|i| i + 1)
    });
    let message = messages
        .last()
        .map(|m| m.trim().replace('\n', " "))
        .unwrap_or_default();
    TeraError::Template {
        template,
        line,
        message,
    }
}

fn parse_error_line(message: &str) -> Option<usize> {
    let after = &message[message.find("--> ")? + 4..];
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn to_yaml(value: &tera::Value, _: &HashMap<String, tera::Value>) -> tera::Result<tera::Value> {
    let text = crate::yaml::to_string(value);
    Ok(tera::Value::from(text.trim_end_matches('\n')))
}

fn nindent(value: &tera::Value, args: &HashMap<String, tera::Value>) -> tera::Result<tera::Value> {
    let n = args
        .get("n")
        .and_then(tera::Value::as_u64)
        .ok_or_else(|| tera::Error::msg("nindent takes n=<spaces>"))?;
    let text = value
        .as_str()
        .ok_or_else(|| tera::Error::msg("nindent takes a string"))?;
    let pad = " ".repeat(usize::try_from(n).unwrap_or(0));
    let mut out = String::with_capacity(text.len() + 16);
    for line in text.lines() {
        out.push('\n');
        if !line.is_empty() {
            out.push_str(&pad);
        }
        out.push_str(line);
    }
    Ok(tera::Value::from(out))
}

fn b64encode(value: &tera::Value, _: &HashMap<String, tera::Value>) -> tera::Result<tera::Value> {
    let text = match value {
        tera::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Ok(tera::Value::from(
        base64::engine::general_purpose::STANDARD.encode(text),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::appfile::Renderer;
    use serde_json::json;

    fn app() -> App {
        App {
            name: "shop".into(),
            path: "chart".into(),
            namespace: Some("shop".into()),
            renderer: Renderer::Tera,
            values: vec![],
            from_app_file: true,
            cluster_scoped_kinds: vec![],
            take_over_managers: Default::default(),
            jsonnet: Default::default(),
        }
    }

    fn tree(entries: &[(&str, &str)]) -> FileTree {
        entries
            .iter()
            .map(|(n, c)| (n.to_string(), c.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn values_merge_deeply_in_order() {
        let mut base =
            json!({"image": {"repo": "nginx", "tag": "1.26"}, "ports": [80], "replicas": 1});
        merge(
            &mut base,
            json!({"image": {"tag": "1.27"}, "ports": [8080]}),
        );
        assert_eq!(
            base,
            json!({"image": {"repo": "nginx", "tag": "1.27"}, "ports": [8080], "replicas": 1})
        );
    }

    #[test]
    fn renders_with_values_app_and_filters() {
        let files = tree(&[
            ("chart/values.yaml", "replicas: 1\nlabels: {tier: web}\n"),
            ("chart/templates/_macros.tera", "{% macro name(app) %}{{ app.name }}-web{% endmacro name %}"),
            ("chart/templates/deploy.yaml", "{% import \"chart/templates/_macros.tera\" as m %}apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ m::name(app=app) }}\n  labels: {{ values.labels | to_yaml | nindent(n=4) }}\nspec:\n  replicas: {{ values.replicas }}\n"),
        ]);
        let prod = (
            "chart/values-prod.yaml".to_owned(),
            b"replicas: 3\n".to_vec(),
        );
        let objects = render(&files, &[prod], &app(), "shop").expect("render");
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0].object["metadata"]["name"], "shop-web");
        assert_eq!(objects[0].object["metadata"]["labels"]["tier"], "web");
        assert_eq!(objects[0].object["spec"]["replicas"], 3);
    }

    #[test]
    fn undefined_value_names_template_and_line() {
        let files = tree(&[
            ("chart/values.yaml", "a: 1\n"),
            ("chart/templates/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  k: \"{{ values.missing }}\"\n"),
        ]);
        let err = render(&files, &[], &app(), "shop").expect_err("undefined");
        match &err {
            TeraError::Template { template, line, .. } => {
                assert_eq!(template, "chart/templates/cm.yaml");
                assert_eq!(*line, Some(6));
            }
            other => panic!("unexpected {other}"),
        }
        assert!(err.to_string().contains("values.missing"), "{err}");
    }

    #[test]
    fn syntax_error_names_template_and_line() {
        let files = tree(&[
            ("chart/values.yaml", "a: 1\n"),
            (
                "chart/templates/cm.yaml",
                "apiVersion: v1\nkind: ConfigMap\n{% if %}\n",
            ),
        ]);
        let err = render(&files, &[], &app(), "shop").expect_err("syntax");
        match &err {
            TeraError::Template { template, line, .. } => {
                assert_eq!(template, "chart/templates/cm.yaml");
                assert_eq!(*line, Some(3));
            }
            other => panic!("unexpected {other}"),
        }
    }
}
