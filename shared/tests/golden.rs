//! Golden digests of every object captured from a real API server (`../shared/fixtures` beside the
//! checkout): the `object` and `oldObject` of each AdmissionReview, each stored object (YAML, read
//! as the plain renderer reads it) and each discovery document; and of the captured objects in
//! this crate's `testdata/`.
//!
//! A digest is a contract with objects already in clusters, so the digest of a given object must
//! never change. When this test fails it writes what it computed under `target/tmp/golden/` and
//! prints the `diff -u` command that shows the change; it never rewrites the golden file (see
//! `tests/golden/README.md`).

use std::path::{Path, PathBuf};

use gitops_shared::provenance::digest;
use gitops_shared::render::parse_documents;
use serde_json::Value;

const GOLDEN: &str = "fixture-digests.txt";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures")
}

/// The files of a fixture folder, in name order.
fn files(folder: &str, extension: &str) -> Vec<PathBuf> {
    let dir = fixtures().join(folder);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "{} (../shared/fixtures beside the checkout): {e}",
                dir.display()
            )
        })
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == extension))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no .{extension} file in {}",
        dir.display()
    );
    files
}

fn name(path: &Path) -> String {
    let relative = path.strip_prefix(fixtures()).unwrap_or(path);
    relative.display().to_string()
}

/// One line per object: `<digest>  <fixture file> <which object>`.
fn digest_lines() -> String {
    let mut lines = String::new();
    for path in files("admission", "json") {
        let review: Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("JSON");
        for field in ["object", "oldObject"] {
            let object = &review["request"][field];
            if !object.is_null() {
                lines.push_str(&format!("{}  {} {field}\n", digest(object), name(&path)));
            }
        }
    }
    for path in files("objects", "yaml") {
        let bytes = std::fs::read(&path).expect("read");
        let file = name(&path);
        let objects = parse_documents(&file, &bytes, false).expect("YAML");
        assert!(!objects.is_empty(), "{file} holds objects");
        for object in objects {
            lines.push_str(&format!(
                "{}  {file} document {}\n",
                digest(&object.object),
                object.source.document
            ));
        }
    }
    for path in files("discovery", "json") {
        let document: Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("JSON");
        lines.push_str(&format!("{}  {}\n", digest(&document), name(&path)));
    }
    let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut captured: Vec<PathBuf> = std::fs::read_dir(&testdata)
        .expect("testdata")
        .map(|entry| entry.expect("entry").path())
        .collect();
    captured.sort();
    for path in captured {
        let file = format!(
            "testdata/{}",
            path.file_name().unwrap_or_default().to_string_lossy()
        );
        let bytes = std::fs::read(&path).expect("read");
        if file.ends_with(".json") {
            let document: Value = serde_json::from_slice(&bytes).expect("JSON");
            lines.push_str(&format!("{}  {file}\n", digest(&document)));
        } else if file.ends_with(".yaml") {
            for object in parse_documents(&file, &bytes, false).expect("YAML") {
                lines.push_str(&format!(
                    "{}  {file} document {}\n",
                    digest(&object.object),
                    object.source.document
                ));
            }
        }
    }
    lines
}

#[test]
fn digests_of_captured_objects_never_change() {
    let actual = digest_lines();
    let golden = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(GOLDEN);
    let expected = std::fs::read_to_string(&golden).unwrap_or_default();
    if expected == actual {
        return;
    }
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("golden");
    std::fs::create_dir_all(&out_dir).expect("create target/tmp/golden");
    let got = out_dir.join(GOLDEN);
    std::fs::write(&got, &actual).expect("write");
    let changed: Vec<&str> = actual
        .lines()
        .filter(|line| !expected.lines().any(|e| e == *line))
        .take(5)
        .collect();
    panic!(
        "shared/tests/golden/{GOLDEN} differs ({} lines expected, {} computed); first new lines:\n{}\n  see: diff -u shared/tests/golden/{GOLDEN} {}",
        expected.lines().count(),
        actual.lines().count(),
        changed.join("\n"),
        got.display()
    );
}
