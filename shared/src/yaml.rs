//! Reading YAML with serde-saphyr exactly as serde_yaml 0.9 read it.
//!
//! Digests are a contract with objects already in clusters: the same bytes in Git must keep giving
//! the same values. serde-saphyr reads some spellings differently from serde_yaml 0.9 by default,
//! and each of those would change a value (and its digest) in someone's repository:
//!
//! | input | serde_yaml 0.9 | serde-saphyr default | here |
//! |---|---|---|---|
//! | `labeled: yes` | `"yes"` | `true` (YAML 1.1) | `"yes"` (`strict_booleans`) |
//! | `defaultMode: 0755` | `"0755"` | `755.0` | `"0755"` (`leading_zero_numbers_as_strings`) |
//! | `size: 1_000` | `"1_000"` | `1000` | `"1_000"` (`underscored_numbers_as_strings`) |
//! | `a: 1` twice | last value, first place | error | the same as serde_yaml (`PassThrough`) |
//! | `<<: *base` | a key named `<<` | merged | a key named `<<` (`AsOrdinary`) |
//! | `x: .inf` | `null` | error | `null` (`PassThrough`) |
//! | `a: \|` block at the end of a file with no final line break | no line break | one added | none (below) |
//!
//! These were found by reading 793 YAML files of public GitOps repositories (Argo CD's and Flux's
//! examples, podinfo, kubernetes/examples, kustomize) with both crates; each row is a test below.
//!
//! The last row has no option in serde-saphyr 2.2: its parser (granit-parser) can read a block
//! scalar that ends the input without a line break as libyaml does, but serde-saphyr does not pass
//! that option on. So when the input does not end with a line break, [`documents`] reads the
//! events once more with that option and puts the last block scalar's libyaml value in its place.

use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_saphyr::granit_parser::{self, Event, Parser, ScalarStyle};
use serde_saphyr::options::{DuplicateKeyPolicy, MergeKeyPolicy, NonFiniteFloatPolicy};

/// serde-saphyr's parse error (it names line and column, with a snippet of the input).
pub type Error = serde_saphyr::Error;

/// serde-saphyr's options that read what serde_yaml 0.9 read (see the module's table).
pub fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        underscored_numbers_as_strings: true,
        duplicate_keys: DuplicateKeyPolicy::PassThrough,
        merge_keys: MergeKeyPolicy::AsOrdinary,
        non_finite_float_policy: NonFiniteFloatPolicy::PassThrough,
    }
}

/// Reads one document into `T` (an app file, a configuration). A block scalar that ends the input
/// without a line break keeps serde-saphyr's reading (one line break); only [`documents`], which
/// reads what gets digested, corrects it.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, Error> {
    serde_saphyr::from_str_with_options(text, options())
}

/// Reads every document of a stream as JSON values, as serde_yaml 0.9 did. Empty documents are
/// left out.
pub fn documents(text: &str) -> Result<Vec<Value>, Error> {
    let mut values: Vec<Value> = serde_saphyr::from_multiple_with_options(text, options())?;
    if !text.ends_with(['\n', '\r']) {
        if let (Some((path, libyaml)), Some(last)) =
            (last_block_scalar_at_eof(text), values.last_mut())
        {
            if let Some(Value::String(read)) = at_path(last, &path) {
                *read = libyaml;
            }
        }
    }
    Ok(values)
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
    #![allow(clippy::unwrap_used)]
    use super::*;

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
            let read = documents(input).map(|docs| serde_json::to_string(&docs).unwrap());
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
        let docs = documents(text).unwrap();
        assert_eq!(docs[0]["a"][0]["b"]["c"], "one\ntwo");
        // The same text with its line break reads the line break.
        let docs = documents(&format!("{text}\n")).unwrap();
        assert_eq!(docs[0]["a"][0]["b"]["c"], "one\ntwo\n");
    }

    #[test]
    fn errors_name_line_and_column() {
        let error = documents("a: 1\n b: 2").unwrap_err().to_string();
        assert!(error.contains("line 2 column 3"), "{error}");
    }

    #[test]
    fn typed_reads_use_the_same_options() {
        #[derive(serde::Deserialize)]
        struct Flags {
            enabled: String,
            mode: String,
        }
        let flags: Flags = from_str("enabled: yes\nmode: 0644\n").unwrap();
        assert_eq!(
            (flags.enabled.as_str(), flags.mode.as_str()),
            ("yes", "0644")
        );
    }
}
