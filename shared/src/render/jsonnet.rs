//! The Jsonnet renderer, native (jrsonnet): no program to install, so the webhook renders Jsonnet
//! apps exactly as the plugin does.
//!
//! Every `.jsonnet` file below the app folder is evaluated (hidden files and folders skipped), and
//! YAML and JSON files beside them are read as the plain renderer reads them, all in byte order of
//! their paths — the files Argo CD's directory apps render. Imports (`import`, `importstr`,
//! `importbin`) resolve against the commit's tree, relative to the importing file; `../lib` works,
//! a path out of the repository is an error. Top-level arguments and external variables come from
//! the app file ([`JsonnetOptions`]), never from the command line.
//!
//! The webhook evaluates whatever a commit holds, so evaluation is bounded: recursion deeper than
//! [`MAX_STACK_DEPTH`] calls is an error, not a crashed process, whatever the caller's stack
//! (jrsonnet moves deep calls to stack segments of its own).
//!
//! Known gaps of jrsonnet 0.5.0-pre98: the limit counts the function calls still running, so a
//! recursion through the lazy fields of objects that calls returned (`local f(x) = { a: f(x +
//! 1).a }; f(0).a`) escapes it, exhausts the native stack and aborts the process; and CPU time is
//! not bounded. The webhook therefore evaluates in a child process that is killed after a time
//! limit ([`super::jsonnet_child`]); the plugin evaluates here.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use jrsonnet_evaluator::error::ErrorKind;
use jrsonnet_evaluator::manifest::JsonFormat;
use jrsonnet_evaluator::stack::limit_stack_depth;
use jrsonnet_evaluator::tla::TlaArg;
use jrsonnet_evaluator::trace::{CompactFormat, PathResolver, TraceFormat as _};
use jrsonnet_evaluator::{apply_tla, AsPathLike, IStr, ImportResolver, SourcePath, State, Val};
use jrsonnet_gcmodule::Acyclic;
use jrsonnet_ir::{SourceFifo, SourceFile};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::git::{join_path, FileTree};
use crate::object::RenderedObject;
use crate::render::plain::{is_hidden_or_app_file, parse_documents, push_document, ParseError};

/// The deepest call stack an evaluation may build; the `jsonnet` program's own default. Deeper
/// recursion (`local f(x) = f(x + 1)`) ends as an error naming the file and line.
pub const MAX_STACK_DEPTH: usize = 500;

/// How many frames of a Jsonnet stack trace an error shows: the innermost ones say where, and a
/// runaway recursion would otherwise print hundreds of identical lines.
const MAX_TRACE_LINES: usize = 12;

/// Jsonnet settings of an app, from `gitops.yaml`'s `jsonnet:` key. A string is passed as a
/// Jsonnet string (`--tla-str`, `--ext-str`); any other value (number, boolean, list, mapping) as
/// that JSON value (`--tla-code`, `--ext-code`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonnetOptions {
    /// Top-level arguments, passed to every file that evaluates to a function.
    #[serde(default, rename = "tlas", skip_serializing_if = "BTreeMap::is_empty")]
    pub tlas: BTreeMap<String, JsonValue>,
    /// External variables, read with `std.extVar(name)`.
    #[serde(
        default,
        rename = "extVars",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub ext_vars: BTreeMap<String, JsonValue>,
}

impl JsonnetOptions {
    /// True when the app file sets nothing.
    pub fn is_empty(&self) -> bool {
        self.tlas.is_empty() && self.ext_vars.is_empty()
    }
}

/// A JSON value that compares by its canonical text, so [`JsonnetOptions`] can be `Eq` like the
/// rest of [`crate::appfile::App`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JsonValue(pub Value);

impl Eq for JsonValue {}

/// What went wrong evaluating Jsonnet.
#[derive(Debug, thiserror::Error)]
pub enum JsonnetError {
    /// Evaluation failed: a syntax error, a runtime error, a failed import, too deep a recursion.
    /// jrsonnet's error holds reference-counted source text (not `Send`), so its message and stack
    /// trace (file:line:column per frame) are kept as text.
    #[error("{file}: Jsonnet evaluation failed: {message}")]
    Evaluate {
        /// The `.jsonnet` file evaluated, relative to the repository root.
        file: String,
        /// jrsonnet's message and the innermost frames of its stack trace.
        message: String,
    },
    /// The evaluation in a child process failed, crashed or ran too long (the webhook's way).
    #[error("{path}: Jsonnet evaluation failed: {message}")]
    Isolated {
        /// The app folder.
        path: String,
        /// What the child said, or how it ended.
        message: String,
    },
    /// The file evaluated to something that is not objects.
    #[error("{file}: {found}: a .jsonnet file must evaluate to an object, a list of objects (lists may nest) or a `kind: List`")]
    NotObjects {
        /// The `.jsonnet` file, relative to the repository root.
        file: String,
        /// What it evaluated to, and where in the output.
        found: String,
    },
    /// A `.jsonnet` file is not UTF-8.
    #[error("{file}: not UTF-8 text")]
    NotText {
        /// The file, relative to the repository root.
        file: String,
        /// The decoding error.
        #[source]
        source: std::str::Utf8Error,
    },
    /// The evaluated value could not be turned into JSON (for example a function left in it).
    #[error("{file}: cannot read Jsonnet's output as JSON")]
    Output {
        /// The `.jsonnet` file, relative to the repository root.
        file: String,
        /// serde_json's error.
        #[source]
        source: serde_json::Error,
    },
    /// A plain YAML or JSON file beside the Jsonnet files failed to parse.
    #[error(transparent)]
    Manifest(#[from] ParseError),
}

/// Renders the app folder `path` of `tree` (the whole commit's tree, so imports may reach
/// `../lib`) with `options`: in a child process when this process isolates Jsonnet (the webhook,
/// see [`super::jsonnet_child`]), else here.
pub fn render(
    tree: FileTree,
    path: &str,
    options: &JsonnetOptions,
) -> Result<Vec<RenderedObject>, JsonnetError> {
    match super::jsonnet_child::isolation() {
        Some(isolation) => super::jsonnet_child::render_in_child(isolation, &tree, path, options),
        None => render_here(tree, path, options),
    }
}

/// [`render`] in this process.
pub(crate) fn render_here(
    tree: FileTree,
    path: &str,
    options: &JsonnetOptions,
) -> Result<Vec<RenderedObject>, JsonnetError> {
    let prefix = if path.is_empty() {
        String::new()
    } else {
        format!("{path}/")
    };
    let files: Vec<String> = tree
        .keys()
        .filter(|name| name.starts_with(&prefix))
        .filter(|name| !is_hidden_or_app_file(name, path))
        .cloned()
        .collect();
    let tree = std::rc::Rc::new(tree);
    let mut objects = Vec::new();
    for name in files {
        if name.ends_with(".jsonnet") {
            let value = evaluate(&tree, &name, options)?;
            collect(&mut objects, &name, value)?;
        } else if name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".json") {
            let bytes = tree.get(&name).map(Vec::as_slice).unwrap_or_default();
            let documents = parse_documents(&name, bytes, name.ends_with(".json"))?;
            objects.extend(documents);
        }
    }
    Ok(objects)
}

/// True when the folder `path` of `files` holds a `.jsonnet` file (hidden folders aside): what
/// auto-detection looks for.
pub fn has_jsonnet_files(files: &FileTree, path: &str) -> bool {
    files
        .keys()
        .any(|name| name.ends_with(".jsonnet") && !is_hidden_or_app_file(name, path))
}

/// Evaluates one file, applies top-level arguments, and returns its output as JSON.
fn evaluate(
    tree: &std::rc::Rc<FileTree>,
    file: &str,
    options: &JsonnetOptions,
) -> Result<Value, JsonnetError> {
    let failed = |message: String| JsonnetError::Evaluate {
        file: file.to_owned(),
        message,
    };
    let context = jrsonnet_stdlib::ContextInitializer::new(PathResolver::Absolute);
    for (name, value) in &options.ext_vars {
        match &value.0 {
            Value::String(text) => context.add_ext_str(name.as_str().into(), text.as_str().into()),
            other => context
                .add_ext_code(name, other.to_string())
                .map_err(|e| failed(describe(&e)))?,
        }
    }
    let mut builder = State::builder();
    builder
        .import_resolver(CommitTree {
            files: tree.clone(),
        })
        .context_initializer(context);
    let state = builder.build();
    // One evaluation at a time per thread: jrsonnet keeps the current state in a thread-local.
    let Some(_entered) = state.try_enter() else {
        return Err(failed(
            "another Jsonnet evaluation is running on this thread".to_owned(),
        ));
    };
    let _depth = limit_stack_depth(MAX_STACK_DEPTH);
    // IStr is an interned string whose hash never changes; clippy cannot see that.
    #[allow(clippy::mutable_key_type)]
    let tlas: HashMap<IStr, TlaArg> = options
        .tlas
        .iter()
        .map(|(name, value)| {
            let arg = match &value.0 {
                Value::String(text) => TlaArg::String(text.as_str().into()),
                other => TlaArg::InlineCode(other.to_string()),
            };
            (IStr::from(name.as_str()), arg)
        })
        .collect();
    let value = state
        .import(PathBuf::from(file).as_path())
        .map_err(|e| failed(describe(&e)))?;
    let value = if matches!(value, Val::Func(_)) {
        apply_tla(&tlas, value).map_err(|e| {
            failed(format!(
                "{}\n(the file is a function: its parameters take the top-level arguments of the app's jsonnet.tlas in gitops.yaml)",
                describe(&e)
            ))
        })?
    } else {
        value
    };
    let json = value
        .manifest(JsonFormat::minify())
        .map_err(|e| failed(describe(&e)))?;
    serde_json::from_str(&json).map_err(|source| JsonnetError::Output {
        file: file.to_owned(),
        source,
    })
}

/// jrsonnet's error as text: the message, then the innermost frames as `file:line:column`.
fn describe(error: &jrsonnet_evaluator::Error) -> String {
    let format = CompactFormat {
        resolver: PathResolver::Absolute,
        max_trace: MAX_TRACE_LINES,
        padding: 2,
    };
    let text = format
        .format(error)
        .unwrap_or_else(|_| error.error().to_string());
    let mut lines: Vec<&str> = text.lines().collect();
    let too_deep = format!(
        "stack overflow: recursion deeper than {MAX_STACK_DEPTH} calls (the limit is fixed: the webhook evaluates every commit it is shown)"
    );
    if matches!(error.error(), ErrorKind::StackOverflow) && !lines.is_empty() {
        // jrsonnet suggests a --max-stack flag that kubectl-gitops does not have.
        lines[0] = &too_deep;
    }
    let text = lines.join("\n");
    if lines.len() <= MAX_TRACE_LINES + 1 {
        return text.trim_end().to_owned();
    }
    let mut kept = lines[..=MAX_TRACE_LINES].join("\n");
    kept.push_str(&format!(
        "\n  ... and {} more frames",
        lines.len() - MAX_TRACE_LINES - 1
    ));
    kept
}

/// Adds a file's output to `objects`: an object (a `kind: List` expanded), or a list of them,
/// lists nesting; `null` entries are skipped like empty YAML documents.
fn collect(
    objects: &mut Vec<RenderedObject>,
    file: &str,
    value: Value,
) -> Result<(), JsonnetError> {
    fn walk(
        out: &mut Vec<(usize, Value)>,
        file: &str,
        at: &str,
        value: Value,
    ) -> Result<(), JsonnetError> {
        match value {
            Value::Array(items) => {
                for (index, item) in items.into_iter().enumerate() {
                    walk(out, file, &format!("{at}[{index}]"), item)?;
                }
                Ok(())
            }
            Value::Object(_) => {
                let number = out.len() + 1;
                out.push((number, value));
                Ok(())
            }
            Value::Null => Ok(()),
            other => Err(JsonnetError::NotObjects {
                file: file.to_owned(),
                found: format!(
                    "the output{} is {}",
                    if at.is_empty() {
                        String::new()
                    } else {
                        format!(" at {at}")
                    },
                    kind_of(&other)
                ),
            }),
        }
    }
    let mut found = Vec::new();
    walk(&mut found, file, "", value)?;
    for (number, value) in found {
        push_document(objects, file, number, value);
    }
    Ok(())
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Resolves imports against the commit's files: relative to the importing file, never out of the
/// repository, never onto the disk or the network.
#[derive(Acyclic)]
struct CommitTree {
    files: std::rc::Rc<FileTree>,
}

impl CommitTree {
    fn lookup(&self, path: &str) -> Option<&Vec<u8>> {
        self.files.get(path)
    }
}

impl ImportResolver for CommitTree {
    fn resolve_from(
        &self,
        from: &SourcePath,
        path: &dyn AsPathLike,
    ) -> jrsonnet_evaluator::Result<SourcePath> {
        let wanted = path.as_path();
        let wanted_text = AsRef::<std::path::Path>::as_ref(&wanted)
            .to_string_lossy()
            .into_owned();
        let base = match from.downcast_ref::<SourceFile>() {
            Some(file) => file
                .path()
                .parent()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default(),
            // The files this renderer evaluates are named from the repository root.
            None => String::new(),
        };
        let outside = || {
            jrsonnet_evaluator::Error::from(ErrorKind::RuntimeError(
                format!("import {wanted_text:?}: it leads outside the repository; imports resolve inside the commit's tree").into(),
            ))
        };
        if wanted_text.starts_with('/') {
            return Err(outside());
        }
        let joined = join_path(&base, &wanted_text).map_err(|_| outside())?;
        if self.lookup(&joined).is_some() {
            return Ok(SourcePath::new(SourceFile::new(PathBuf::from(joined))));
        }
        Err(ErrorKind::ImportFileNotFound(from.clone(), wanted.to_owned()).into())
    }

    fn load_file_contents(&self, resolved: &SourcePath) -> jrsonnet_evaluator::Result<Vec<u8>> {
        if let Some(fifo) = resolved.downcast_ref::<SourceFifo>() {
            // Inline code: top-level arguments and external variables that are not strings.
            return Ok(fifo.1.to_vec());
        }
        resolved
            .downcast_ref::<SourceFile>()
            .and_then(|file| self.lookup(&file.path().to_string_lossy()))
            .cloned()
            .ok_or_else(|| ErrorKind::ResolvedFileNotFound(resolved.clone()).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::Source;

    use crate::render::test_tree as tree;

    fn names(objects: &[RenderedObject]) -> Vec<String> {
        objects
            .iter()
            .map(|o| {
                format!(
                    "{}/{}",
                    o.object["kind"].as_str().unwrap_or("?"),
                    o.object["metadata"]["name"].as_str().unwrap_or("?")
                )
            })
            .collect()
    }

    const CM: &str =
        "function(name) { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: name } }";

    #[test]
    fn objects_lists_nested_lists_and_kind_list_in_path_order() {
        let files = tree(&[
            ("lib/cm.libsonnet", CM),
            ("app/b.jsonnet", "local cm = import '../lib/cm.libsonnet'; [cm('b1'), [cm('b2'), null, [cm('b3')]]]"),
            ("app/a.jsonnet", "local cm = import '../lib/cm.libsonnet'; cm('a')"),
            ("app/c.jsonnet", "local cm = import '../lib/cm.libsonnet'; { apiVersion: 'v1', kind: 'List', items: [cm('c1'), cm('c2')] }"),
            ("app/d.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: d}\n"),
            ("app/params.libsonnet", "{ replicas: 3 }"),
            ("app/.hidden/x.jsonnet", "error 'never evaluated'"),
        ]);
        let objects = render(files, "app", &JsonnetOptions::default()).expect("render");
        assert_eq!(
            names(&objects),
            vec![
                "ConfigMap/a",
                "ConfigMap/b1",
                "ConfigMap/b2",
                "ConfigMap/b3",
                "ConfigMap/c1",
                "ConfigMap/c2",
                "Secret/d"
            ]
        );
        assert_eq!(
            objects[3].source,
            Source {
                file: "app/b.jsonnet".into(),
                document: 3
            }
        );
    }

    #[test]
    fn tlas_and_ext_vars_come_from_options() {
        let files = tree(&[(
            "app/main.jsonnet",
            "function(name, replicas) { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: name, labels: std.extVar('labels') }, spec: { replicas: replicas, paused: std.extVar('paused'), env: std.extVar('env') } }",
        )]);
        let options: JsonnetOptions = crate::yaml::from_str(
            "tlas: {name: web, replicas: 3}\nextVars: {env: prod, paused: false, labels: {tier: front}}\n",
        )
        .expect("options");
        let objects = render(files, "app", &options).expect("render");
        let object = &objects[0].object;
        assert_eq!(object["metadata"]["name"], "web");
        assert_eq!(object["spec"]["replicas"], serde_json::json!(3));
        assert!(object["spec"]["replicas"].is_u64(), "an integer, not 3.0");
        assert_eq!(object["spec"]["paused"], false);
        assert_eq!(object["spec"]["env"], "prod");
        assert_eq!(object["metadata"]["labels"]["tier"], "front");
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let err = render(
            tree(&[(
                "app/x.jsonnet",
                "{\n  a: 1,\n  b: error 'broken here',\n}.b",
            )]),
            "app",
            &JsonnetOptions::default(),
        )
        .expect_err("error")
        .to_string();
        assert!(
            err.starts_with("app/x.jsonnet: Jsonnet evaluation failed"),
            "{err}"
        );
        assert!(err.contains("broken here"), "{err}");
        assert!(err.contains("app/x.jsonnet:3:"), "{err}");

        let err = render(
            tree(&[("app/x.jsonnet", "{\n  a: 1,\n  b: ,\n}")]),
            "app",
            &JsonnetOptions::default(),
        )
        .expect_err("syntax")
        .to_string();
        assert!(err.contains("app/x.jsonnet:3:"), "{err}");

        let err = render(
            tree(&[("app/x.jsonnet", "[{a: 1}, 'text']")]),
            "app",
            &JsonnetOptions::default(),
        )
        .expect_err("not objects")
        .to_string();
        assert!(err.contains("the output at [1] is a string"), "{err}");

        let err = render(
            tree(&[("app/x.jsonnet", "function(name) {}")]),
            "app",
            &JsonnetOptions::default(),
        )
        .expect_err("tla missing")
        .to_string();
        assert!(err.contains("argument is not passed: name"), "{err}");
        assert!(err.contains("jsonnet.tlas"), "{err}");
    }

    #[test]
    fn imports_stay_in_the_commit() {
        let escape = render(
            tree(&[("app/x.jsonnet", "import '../../etc/passwd'")]),
            "app",
            &JsonnetOptions::default(),
        )
        .expect_err("outside")
        .to_string();
        assert!(escape.contains("outside the repository"), "{escape}");
        let absolute = render(
            tree(&[("app/x.jsonnet", "importstr '/etc/hostname'")]),
            "app",
            &JsonnetOptions::default(),
        )
        .expect_err("absolute")
        .to_string();
        assert!(absolute.contains("outside the repository"), "{absolute}");
        let missing = render(
            tree(&[("app/x.jsonnet", "import 'nope.libsonnet'")]),
            "app",
            &JsonnetOptions::default(),
        )
        .expect_err("missing")
        .to_string();
        assert!(missing.contains("nope.libsonnet"), "{missing}");
    }

    #[test]
    fn runaway_recursion_is_an_error_not_a_crash() {
        let err = render(
            tree(&[("app/x.jsonnet", "local f(x) = f(x + 1);\nf(0)")]),
            "app",
            &JsonnetOptions::default(),
        )
        .expect_err("stack")
        .to_string();
        assert!(err.contains("app/x.jsonnet"), "{err}");
        assert!(err.to_lowercase().contains("stack overflow"), "{err}");
        assert!(err.lines().count() <= MAX_TRACE_LINES + 3, "{err}");
        // The limit is per evaluation: the next render on this thread works.
        let objects = render(
            tree(&[(
                "app/x.jsonnet",
                "{apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'ok'}}",
            )]),
            "app",
            &JsonnetOptions::default(),
        )
        .expect("render after overflow");
        assert_eq!(names(&objects), vec!["ConfigMap/ok"]);
    }

    /// A caller with a small stack (the webhook renders on worker threads) gets the same error,
    /// not a crashed process: jrsonnet moves deep calls to stack segments of its own.
    #[test]
    fn runaway_recursion_on_a_small_stack_is_an_error() {
        let files = tree(&[("app/x.jsonnet", "local f(x) = f(x + 1);\nf(0)")]);
        let outcome = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                render(files, "app", &JsonnetOptions::default()).map_err(|e| e.to_string())
            })
            .expect("a thread")
            .join()
            .expect("no panic");
        let err = outcome.expect_err("stack");
        assert!(err.contains("recursion deeper than 500 calls"), "{err}");
    }
}
