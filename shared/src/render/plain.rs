//! The plain renderer: YAML and JSON files under the app folder, read as they are.

use serde_json::Value;

use crate::appfile::APP_FILE;
use crate::git::FileTree;
use crate::object::{RenderedObject, Source};

/// A manifest file that is not valid YAML or JSON. Every renderer reads manifests through
/// [`parse_documents`], so this one type names the file, document and line for all of them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: document {document}: invalid YAML{}: {message}", line.map(|l| format!(" at line {l}")).unwrap_or_default())]
pub struct ParseError {
    /// The file, relative to the repository root (or the template or program that produced it).
    pub file: String,
    /// The 1-based index of the document in the file.
    pub document: usize,
    /// The 1-based line in the file, where the parser knows it.
    pub line: Option<usize>,
    /// The parser's message (kept as text: the YAML reader's error already is).
    pub message: String,
}

/// Every `.yaml`, `.yml` and `.json` file below `path` (hidden files and folders skipped, and the
/// app file itself), in byte order of their paths; every document in each, in file order.
pub fn render(files: &FileTree, path: &str) -> Result<Vec<RenderedObject>, ParseError> {
    let mut objects = Vec::new();
    for (name, bytes) in files {
        if is_hidden_or_app_file(name, path) {
            continue;
        }
        let is_json = name.ends_with(".json");
        if !(is_json || name.ends_with(".yaml") || name.ends_with(".yml")) {
            continue;
        }
        objects.extend(parse_documents(name, bytes, is_json)?);
    }
    Ok(objects)
}

/// True for a file no renderer reads: below a hidden file or folder of the app folder `path`, or
/// the app file itself.
pub(crate) fn is_hidden_or_app_file(name: &str, path: &str) -> bool {
    let relative = if path.is_empty() {
        name
    } else {
        name.strip_prefix(path)
            .map(|r| r.trim_start_matches('/'))
            .unwrap_or(name)
    };
    relative.split('/').any(|part| part.starts_with('.')) || name == APP_FILE
}

/// Parses one file's documents (YAML multi-document, or one JSON value), skipping empty ones and
/// expanding `kind: List`. `file` is used for [`Source`] and in errors.
pub fn parse_documents(
    file: &str,
    bytes: &[u8],
    is_json: bool,
) -> Result<Vec<RenderedObject>, ParseError> {
    let mut objects = Vec::new();
    if is_json {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| ParseError {
            file: file.to_owned(),
            document: 1,
            line: Some(e.line()),
            message: e.to_string(),
        })?;
        push_document(&mut objects, file, 1, value);
        return Ok(objects);
    }
    let documents = crate::yaml::documents(bytes).map_err(|e| ParseError {
        file: file.to_owned(),
        document: e.document,
        line: e.line,
        message: e.message,
    })?;
    for document in documents {
        push_document(&mut objects, file, document.number, document.value);
    }
    Ok(objects)
}

/// Adds one document to `objects`: nothing for `null`, the items of a `kind: List`, else itself.
pub(crate) fn push_document(
    objects: &mut Vec<RenderedObject>,
    file: &str,
    document: usize,
    value: Value,
) {
    if value.is_null() {
        return;
    }
    let is_list = value
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k == "List")
        && value.get("items").is_some_and(Value::is_array);
    if let (true, Value::Object(mut map)) = (is_list, value.clone()) {
        if let Some(Value::Array(items)) = map.remove("items") {
            for item in items.into_iter().filter(|i| !i.is_null()) {
                objects.push(RenderedObject {
                    source: Source {
                        file: file.to_owned(),
                        document,
                    },
                    object: item,
                });
            }
            return;
        }
    }
    objects.push(RenderedObject {
        source: Source {
            file: file.to_owned(),
            document,
        },
        object: value,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::render::test_tree as tree;

    #[test]
    fn reads_documents_recursively_in_order() {
        let files = tree(&[
            ("app/b.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"),
            ("app/a/x.json", r#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"}}]}"#),
            ("app/.hidden/y.yaml", "not: a k8s object"),
            ("app/README.md", "# hi"),
        ]);
        let objects = render(&files, "app").expect("render");
        let names: Vec<_> = objects
            .iter()
            .map(|o| o.object["metadata"]["name"].as_str().unwrap_or("?"))
            .collect();
        assert_eq!(names, vec!["s", "b", "c"]);
        assert_eq!(
            objects[2].source,
            Source {
                file: "app/b.yaml".into(),
                document: 3
            }
        );
    }

    #[test]
    fn malformed_yaml_names_file_document_and_line() {
        let files = tree(&[(
            "app/bad.yaml",
            "apiVersion: v1\nkind: ConfigMap\n---\nmetadata:\n  name: [unclosed\n",
        )]);
        let err = render(&files, "app").expect_err("bad yaml").to_string();
        assert!(err.contains("app/bad.yaml: document 2"), "{err}");
        assert!(err.contains("line"), "{err}");
    }
}
