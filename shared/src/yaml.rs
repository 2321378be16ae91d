//! YAML, read and written one way for the whole workspace: manifests, app files, values files,
//! the webhook's configuration and what the plugin prints.
//!
//! Reading uses serde-saphyr, the YAML library kube itself uses. Digests are computed over what
//! YAML parses to, and objects in clusters carry digests computed by earlier releases (which read
//! YAML with serde_yaml 0.9), so every plain scalar must keep being read as it was: the YAML 1.2
//! core schema, with serde_yaml's choices where readers differ. [`read_options`] says which
//! option holds which choice; `plugin/tests/golden` pins the result on YAML that readers disagree on.
//! One difference has no option: a block scalar that ends the input without a line break
//! ([`documents`] corrects it). The choices were checked by reading 793 YAML files of public
//! GitOps repositories (Argo CD's and Flux's examples, podinfo, kubernetes/examples, kustomize)
//! with both crates: 739 read the same values, 54 (Helm templates) fail in both, none differ; the
//! `AS_SERDE_YAML_READ` table in the tests holds serde_yaml's own readings of each case.
//!
//! Writing is our own emitter (`yaml/emit.rs`): it writes serde_yaml 0.9's bytes, which are the stable
//! `-o yaml` output and, where a Tera template embeds `to_yaml` text in a string, part of an
//! object and its digest. serde-saphyr's emitter quotes with double quotes, also quotes YAML 1.1
//! spellings (`yes`, dates) and folds long strings, and no option gives those bytes back.

use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_saphyr::granit_parser::{self, Event, Parser, ScalarStyle};
use serde_saphyr::{DuplicateKeyPolicy, MergeKeyPolicy, NonFiniteFloatPolicy, Options, Spanned};

mod emit;

/// YAML that cannot be read: the parser's message and where it stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}{}", at(*line, *column))]
pub struct ReadError {
    /// What the parser said, without the location.
    pub message: String,
    /// The 1-based line in the text, where the parser knows it.
    pub line: Option<usize>,
    /// The 1-based column in the text, where the parser knows it.
    pub column: Option<usize>,
    /// The 1-based document of a multi-document text where it failed (counting empty documents).
    pub document: usize,
}

fn at(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!(" at line {line} column {column}"),
        (Some(line), None) => format!(" at line {line}"),
        _ => String::new(),
    }
}

/// One document of a multi-document text.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// 1-based position in the text, counting empty documents as the `---` lines do.
    pub number: usize,
    /// What it parses to; never null (empty and null documents are left out).
    pub value: Value,
}

/// How YAML is read, so that every value reads as serde_yaml 0.9 read it:
/// - `yes`, `no`, `on`, `off`, `y`, `n` stay strings (YAML 1.2 booleans only);
/// - `0755`, `-007` (leading zeros) and `1_000` (underscores) stay strings;
/// - `<<` is an ordinary key, not a merge; a repeated key keeps its last value;
/// - `.inf` and `.nan` become null, as serde_json has no such numbers, while a decimal literal
///   beyond f64's range (`1e400`) stays the string it is (`read` sees to both);
/// - `!!binary` text stays the base64 text it is (a Secret's data is base64 already);
/// - a null-looking key (`~`, `null`) is that text, as a JSON key must be a string.
///
/// Budgets: no limit on documents or nodes that a large chart or CRD bundle could reach; the
/// nesting limit is serde_yaml's 128; alias expansion keeps serde-saphyr's caps against alias
/// bombs, without the alias-to-anchor ratio that hand-written YAML may exceed.
pub fn read_options() -> Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: 128,
            max_documents: usize::MAX,
            max_nodes: usize::MAX,
            max_events: usize::MAX,
            max_total_scalar_bytes: usize::MAX,
            enforce_alias_anchor_ratio: false,
        },
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        underscored_numbers_as_strings: true,
        merge_keys: MergeKeyPolicy::AsOrdinary,
        duplicate_keys: DuplicateKeyPolicy::PassThrough,
        non_finite_float_policy: NonFiniteFloatPolicy::Reject,
        ignore_binary_tag_for_string: true,
        null_as_string: true,
        with_snippet: false,
    }
}

/// Reads one YAML document into `T`.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ReadError> {
    let bytes = next_line_as_line_feed(bytes);
    read(&bytes, |text, options| {
        serde_saphyr::from_slice_with_options(text, options)
    })
    .map_err(|e| read_error(&e, 1))
}

/// Reads one YAML document into `T`.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, ReadError> {
    from_slice(text.as_bytes())
}

/// Reads every document of a multi-document text, in order, leaving out empty and null ones.
pub fn documents(bytes: &[u8]) -> Result<Vec<Document>, ReadError> {
    let bytes = next_line_as_line_feed(bytes);
    let starts = DocumentStarts::of(&bytes);
    let spanned: Vec<Spanned<Value>> = read(&bytes, |text, options| {
        serde_saphyr::from_slice_multiple_with_options(text, options)
    })
    .map_err(|e| {
        let line = e.location().map(|l| l.line()).unwrap_or(1);
        read_error(&e, starts.number_at(line))
    })?;
    let mut documents: Vec<Document> = spanned
        .into_iter()
        .filter(|document| !document.value.is_null())
        .map(|document| Document {
            number: starts.number_at(document.referenced.line()),
            value: document.value,
        })
        .collect();
    if let Some(last) = documents.last_mut() {
        keep_missing_final_line_break(&bytes, &mut last.value);
    }
    Ok(documents)
}

/// serde-saphyr reads a literal or folded block scalar that ends the input without a line break
/// as if the line break were there (`"key: |\n  text"` gives `"text\n"`, as the YAML test suite
/// expects); serde_yaml, like libyaml and Kubernetes' go-yaml, gave `"text"`. A file in Git that
/// ends that way would change its value and its digest. serde-saphyr 2.2 does not pass its
/// parser's option for this on, so when the input has no final line break the events are read
/// once more with that option and the last block scalar gets libyaml's value.
fn keep_missing_final_line_break(bytes: &[u8], last_document: &mut Value) {
    if bytes.ends_with(b"\n") || bytes.ends_with(b"\r") {
        return;
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    if let Some((path, libyaml)) = last_block_scalar_at_eof(text) {
        if let Some(Value::String(read)) = at_path(last_document, &path) {
            *read = libyaml;
        }
    }
}

/// Writes `value` as one YAML document, as serde_yaml 0.9 wrote it (see `yaml/emit.rs`). Any
/// JSON value can be written; a `Serialize` type goes through [`serde_json::to_value`] first.
pub fn to_string(value: &Value) -> String {
    emit::to_string(value)
}

/// Runs `parse` with [`read_options`], which refuse non-finite floats, and rewrites each one it
/// meets as serde_yaml read it: `.inf` and `.nan` spellings as null (`~`), a decimal literal
/// beyond f64's range as a quoted string. serde-saphyr would read both as infinity, which
/// serde_json makes null, so the literal's digest would change. The text only changes where such
/// a scalar is, and is read again after each rewrite; past [`MAX_REWRITES`] the rest read as null.
fn read<R>(
    bytes: &[u8],
    parse: impl Fn(&[u8], Options) -> Result<R, serde_saphyr::Error>,
) -> Result<R, serde_saphyr::Error> {
    let mut rewritten: Option<Vec<u8>> = None;
    for _ in 0..MAX_REWRITES {
        let text = rewritten.as_deref().unwrap_or(bytes);
        let error = match parse(text, read_options()) {
            Err(error) => error,
            read => return read,
        };
        match rewrite_non_finite(text, &error) {
            Some(next) => rewritten = Some(next),
            None => return Err(error),
        }
    }
    let mut options = read_options();
    options.non_finite_float_policy = NonFiniteFloatPolicy::PassThrough;
    parse(rewritten.as_deref().unwrap_or(bytes), options)
}

/// How many non-finite floats one text may hold before the rest are read as null.
const MAX_REWRITES: usize = 256;

/// `text` with the non-finite float `error` names replaced as serde_yaml read it, or `None`
/// when `error` is about something else or its place in the text is unknown.
fn rewrite_non_finite(text: &[u8], error: &serde_saphyr::Error) -> Option<Vec<u8>> {
    let mut error = error;
    while let serde_saphyr::Error::AliasError { error: inner, .. }
    | serde_saphyr::Error::WithSnippet { error: inner, .. } = error
    {
        error = inner;
    }
    let serde_saphyr::Error::NonFiniteFloat { value, location } = error else {
        return None;
    };
    let span = location.span();
    let start = usize::try_from(span.byte_offset()?).ok()?;
    let end = start.checked_add(usize::try_from(span.byte_len()?).ok()?)?;
    if end <= start || end > text.len() {
        return None;
    }
    let unsigned = value.trim_start_matches(['+', '-']);
    let replacement = if unsigned.starts_with('.') {
        // .inf, .Inf, .INF, .nan, .NaN, .NAN (signed or not): null to serde_json.
        "~".to_owned()
    } else {
        // A numeric literal holds no quote, so single quotes keep it as it is.
        format!("'{value}'")
    };
    let mut out = Vec::with_capacity(text.len() + 2);
    out.extend_from_slice(&text[..start]);
    out.extend_from_slice(replacement.as_bytes());
    out.extend_from_slice(&text[end..]);
    Some(out)
}

/// YAML 1.1 (serde_yaml's libyaml) reads a raw NEL (U+0085) as a line break, exactly as a line
/// feed, everywhere; YAML 1.2 reads it as content. A NEL in a quoted or multi-line scalar would
/// otherwise read differently, and so change a digest.
///
/// Raw LS and PS (U+2028, U+2029) differ too, and are not handled: YAML 1.1 reads them as line
/// breaks kept in the text, which no rewrite of the input reproduces in every context. Where one
/// ends a line inside a quoted or plain scalar, the line feed after it now reads as a space where
/// it read as a line feed; elsewhere they read as before, or are now accepted where they were an
/// error.
fn next_line_as_line_feed(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    const NEL: [u8; 2] = [0xc2, 0x85];
    if !bytes.windows(2).any(|pair| pair == NEL) {
        return std::borrow::Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while let Some(at) = rest.windows(2).position(|pair| pair == NEL) {
        out.extend_from_slice(&rest[..at]);
        out.push(b'\n');
        rest = &rest[at + 2..];
    }
    out.extend_from_slice(rest);
    std::borrow::Cow::Owned(out)
}

fn read_error(error: &serde_saphyr::Error, document: usize) -> ReadError {
    let location = error.location();
    let rendered = error
        .without_snippet()
        .render_with_options(serde_saphyr::render_options! {
            snippets: serde_saphyr::SnippetMode::Off,
        });
    // The plain rendering ends with " at line L, column C"; the location is kept apart.
    let message = match rendered.rfind(" at line ") {
        Some(at) if location.is_some() => rendered[..at].to_owned(),
        _ => rendered,
    };
    let number = |n: u64| usize::try_from(n).ok().filter(|n| *n > 0);
    ReadError {
        message,
        line: location.and_then(|l| number(l.line())),
        column: location.and_then(|l| number(l.column())),
        document,
    }
}

/// The lines on which the documents of a text start, to number documents as the `---` lines
/// do, empty ones included. A `---` or `...` at the start of a line is always a marker in YAML
/// (no scalar may hold one), so lines tell where documents start without parsing.
struct DocumentStarts(Vec<u64>);

impl DocumentStarts {
    fn of(bytes: &[u8]) -> DocumentStarts {
        let text = String::from_utf8_lossy(bytes);
        let is_marker = |line: &str, marker: &str| {
            line.strip_prefix(marker)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r']))
        };
        let mut starts = Vec::new();
        let mut inside = false;
        for (index, line) in text.lines().enumerate() {
            let number = u64::try_from(index + 1).unwrap_or(u64::MAX);
            let line = line.trim_start_matches('\u{feff}');
            if is_marker(line, "---") {
                starts.push(number);
                inside = true;
            } else if is_marker(line, "...") {
                inside = false;
            } else if !inside {
                let content = line.trim_start();
                // Outside a document only blank lines, comments and directives carry no content.
                if !(content.is_empty() || content.starts_with('#') || line.starts_with('%')) {
                    starts.push(number);
                    inside = true;
                }
            }
        }
        DocumentStarts(starts)
    }

    /// The 1-based number of the document holding `line` (1 before any document).
    fn number_at(&self, line: u64) -> usize {
        self.0
            .iter()
            .take_while(|start| **start <= line)
            .count()
            .max(1)
    }
}

/// One step from a document's root to a node.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

/// A collection being read, and its path from the document's root (`None` when the path has no
/// JSON spelling: a collection used as a key, or a value under a key that is not a plain scalar).
struct Frame {
    path: Option<Vec<Step>>,
    kind: FrameKind,
}

enum FrameKind {
    /// A mapping: the key of the value to come once it is read; `expecting_key` between entries.
    Mapping {
        expecting_key: bool,
        key: Option<String>,
    },
    /// A sequence: the index of the next item.
    Sequence { next: usize },
}

/// When the last node of the input is a literal or folded block scalar, its path in the last
/// document and its value as libyaml reads it (no line break added at the end of the input).
/// `None` when it is not, when its path has no JSON spelling, or when the input does not parse.
fn last_block_scalar_at_eof(text: &str) -> Option<(Vec<Step>, String)> {
    let mut parser_options = granit_parser::Options::default();
    parser_options.block_scalar_eof_without_line_feed = true;
    let parser = Parser::new_from_str_with_options(text, parser_options);
    let mut stack: Vec<Frame> = Vec::new();
    let mut last: Option<(Vec<Step>, String)> = None;
    for event in parser {
        let (event, _span) = event.ok()?;
        match event {
            Event::DocumentStart(..) => {
                stack.clear();
                last = None;
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                stack.pop();
                continue;
            }
            Event::Scalar(..)
            | Event::Alias(_)
            | Event::SequenceStart(..)
            | Event::MappingStart(..) => {}
            _ => continue,
        }
        let path = match stack.last_mut() {
            None => Some(Vec::new()),
            Some(frame) => {
                let step = match &mut frame.kind {
                    FrameKind::Mapping { expecting_key, key } if *expecting_key => {
                        *expecting_key = false;
                        *key = match &event {
                            Event::Scalar(text, ..) => Some(text.to_string()),
                            _ => None,
                        };
                        None
                    }
                    FrameKind::Mapping { expecting_key, key } => {
                        *expecting_key = true;
                        key.take().map(Step::Key)
                    }
                    FrameKind::Sequence { next } => {
                        *next += 1;
                        Some(Step::Index(*next - 1))
                    }
                };
                match (&frame.path, step) {
                    (Some(parent), Some(step)) => {
                        let mut path = parent.clone();
                        path.push(step);
                        Some(path)
                    }
                    _ => None,
                }
            }
        };
        last = None;
        match event {
            Event::Scalar(value, ScalarStyle::Literal | ScalarStyle::Folded, _, None) => {
                last = path.map(|path| (path, value.into_owned()));
            }
            Event::SequenceStart(..) => stack.push(Frame {
                path,
                kind: FrameKind::Sequence { next: 0 },
            }),
            Event::MappingStart(..) => stack.push(Frame {
                path,
                kind: FrameKind::Mapping {
                    expecting_key: true,
                    key: None,
                },
            }),
            _ => {}
        }
    }
    last
}

/// The node at `path` below `root`.
fn at_path<'a>(root: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    path.iter().try_fold(root, |node, step| match step {
        Step::Key(key) => node.as_object_mut()?.get_mut(key),
        Step::Index(index) => node.as_array_mut()?.get_mut(*index),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn values(text: &str) -> Vec<(usize, Value)> {
        documents(text.as_bytes())
            .expect("yaml")
            .into_iter()
            .map(|d| (d.number, d.value))
            .collect()
    }

    #[test]
    fn numbers_documents_as_the_markers_do() {
        assert_eq!(
            values("a: 1\n---\n---\n# only a comment\n---\nb: 2\n...\nc: 3\n"),
            vec![
                (1, json!({"a": 1})),
                (4, json!({"b": 2})),
                (5, json!({"c": 3}))
            ]
        );
        assert_eq!(
            values("---\n# Source: x.yaml\n---\n--- x\n"),
            vec![(3, json!("x"))]
        );
        assert_eq!(values(""), vec![]);
    }

    #[test]
    fn reads_plain_scalars_as_serde_yaml_did() {
        let text = "a: yes\nb: 0755\nc: 1_000\nd: .inf\ne: 0x1F\nf: 1e3\n~: tilde\n<<: {m: 1}\ng: !!binary aGk=\nh: 1\nh: 2\n";
        assert_eq!(
            values("a: 1e400\nb: .inf\nc: [-.INF, 1e999, .NaN, x]\nd: -1e400\ne: &big 2e400\nf: *big\n"),
            vec![(
                1,
                json!({"a": "1e400", "b": null, "c": [null, "1e999", null, "x"], "d": "-1e400", "e": "2e400", "f": "2e400"})
            )]
        );
        assert_eq!(
            values(text),
            vec![(
                1,
                json!({"a": "yes", "b": "0755", "c": "1_000", "d": null, "e": 31, "f": 1000.0, "~": "tilde", "<<": {"m": 1}, "g": "aGk=", "h": 2})
            )]
        );
    }

    #[test]
    fn a_next_line_character_is_a_line_break_as_serde_yaml_read_it() {
        assert_eq!(
            values("a: \"x\u{85}y\"\nb: 'x\u{85}\n  y'\n"),
            vec![(1, json!({"a": "x y", "b": "x\ny"}))]
        );
        assert!(documents("a: x\u{85}y\n".as_bytes()).is_err());
    }

    #[test]
    fn errors_name_the_document_line_and_column() {
        let err = documents(b"a: 1\n---\nb: [unclosed\n").expect_err("bad");
        assert_eq!(err.document, 2);
        assert_eq!(err.line, Some(3));
        assert!(err.column.is_some(), "{err:?}");
        assert!(!err.message.contains("line"), "{err:?}");
        assert!(err.to_string().ends_with(" at line 3 column 4"), "{err}");
    }

    #[test]
    fn bad_input_is_an_error_never_a_panic() {
        for text in ["a: -\nb: 1\n", "a: *missing", "[[[[[[", "? [a]\n: b\n"] {
            assert!(documents(text.as_bytes()).is_err(), "{text:?}");
        }
        assert!(documents(&[0xff, 0xfe, 0x00]).is_err());
        // Nesting is capped at 128 levels, as serde_yaml capped it. A release build reads them
        // on a 2 MiB thread; a debug build needs more stack for that depth, hence the thread.
        let deep = std::thread::Builder::new()
            .stack_size(16 << 20)
            .spawn(|| {
                let nested = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
                (
                    documents(nested(128).as_bytes()).is_ok(),
                    documents(nested(200).as_bytes()).is_err(),
                )
            })
            .expect("thread")
            .join()
            .expect("no panic");
        assert_eq!(deep, (true, true), "128 levels read, 200 refused");
    }

    /// Inputs and what serde_yaml 0.9.34 read from them (as JSON, empty documents left out),
    /// printed by serde_yaml itself when this module was written.
    const AS_SERDE_YAML_READ: &[(&str, &str)] = &[
        (
            "a: yes\nb: on\nc: No\nd: true\ne: False",
            r##"[{"a":"yes","b":"on","c":"No","d":true,"e":false}]"##,
        ),
        (
            "defaultMode: 0755\nb: 08\nc: -007\nd: 0o17\ne: 0x1F\nf: 10\ng: 1.50\nh: 1e3",
            r##"[{"defaultMode":"0755","b":"08","c":"-007","d":15,"e":31,"f":10,"g":1.5,"h":1000.0}]"##,
        ),
        ("a: 1_000\nb: 0xFF_FF", r##"[{"a":"1_000","b":"0xFF_FF"}]"##),
        ("a: 1\nb: 2\na: 3", r##"[{"a":3,"b":2}]"##),
        (
            "base: &b {x: 1}\nc:\n  <<: *b\n  y: 2",
            r##"[{"base":{"x":1},"c":{"<<":{"x":1},"y":2}}]"##,
        ),
        (
            "a: .inf\nb: -.inf\nc: .nan",
            r##"[{"a":null,"b":null,"c":null}]"##,
        ),
        (
            "a: ~\nb: null\nc:\nd: \"\"",
            r##"[{"a":null,"b":null,"c":null,"d":""}]"##,
        ),
        ("a: &x 1\nb: *x", r##"[{"a":1,"b":1}]"##),
        (
            "data:\n  script: |\n    #!/bin/sh\n    echo hi",
            r##"[{"data":{"script":"#!/bin/sh\necho hi"}}]"##,
        ),
        (
            "data:\n  script: |\n    echo hi\n",
            r##"[{"data":{"script":"echo hi\n"}}]"##,
        ),
        (
            "data:\n  script: |-\n    echo hi",
            r##"[{"data":{"script":"echo hi"}}]"##,
        ),
        (
            "data:\n  folded: >\n    one\n    two",
            r##"[{"data":{"folded":"one two"}}]"##,
        ),
        ("data:\n  kept: |+\n    x", r##"[{"data":{"kept":"x"}}]"##),
        (
            "items:\n- |\n  first\n- |\n  last",
            r##"[{"items":["first\n","last"]}]"##,
        ),
        ("a: |\n  x\n# trailing comment", r##"[{"a":"x\n"}]"##),
        ("a: |\n  x\n---\nb: |\n  y", r##"[{"a":"x\n"},{"b":"y"}]"##),
        ("---\n---\na: 1\n...\n", r##"[{"a":1}]"##),
        ("a: |\n  x\nb: plain", r##"[{"a":"x\n","b":"plain"}]"##),
        (
            "m:\n  ? complex\n  : |\n    x",
            r##"[{"m":{"complex":"x"}}]"##,
        ),
        ("\"quoted key\": |\n  x", r##"[{"quoted key":"x"}]"##),
        ("a: 'x'", r##"[{"a":"x"}]"##),
    ];

    #[test]
    fn reads_what_serde_yaml_read() {
        let mut wrong = Vec::new();
        for (input, expected) in AS_SERDE_YAML_READ {
            let read = documents(input.as_bytes()).map(|docs| {
                let values: Vec<&Value> = docs.iter().map(|d| &d.value).collect();
                serde_json::to_string(&values).expect("JSON")
            });
            let expected = (*expected).to_owned();
            if read.as_ref().ok() != Some(&expected) {
                wrong.push(format!(
                    "{input:?}\n  serde_yaml: {expected}\n  now:        {read:?}"
                ));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn a_block_scalar_ending_the_file_keeps_its_missing_line_break_at_any_depth() {
        let text = "a:\n  - b:\n      c: |\n        one\n        two";
        let docs = documents(text.as_bytes()).expect("YAML");
        assert_eq!(docs[0].value["a"][0]["b"]["c"], "one\ntwo");
        // The same text with its line break reads the line break.
        let docs = documents(format!("{text}\n").as_bytes()).expect("YAML");
        assert_eq!(docs[0].value["a"][0]["b"]["c"], "one\ntwo\n");
    }
}
