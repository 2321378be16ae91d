//! Golden tests: what `kubectl gitops render` prints, byte for byte, for every example app of this
//! repository (the apps of `gitops.yaml`, each folder of `examples/` and `tests/apps/`, and the
//! edge cases of `tests/golden/apps/`), in YAML and in JSON, and the digest of every object.
//!
//! Digests are a contract with objects already in clusters: the webhook and the next sync compare
//! against what earlier releases stamped, so the digest of what a commit declares must never
//! change, whatever YAML library or renderer version sits underneath. The rendered bytes are the
//! stable `-o yaml|json` output scripts read.
//!
//! The repository is built inside the test from the workspace's folders with a fixed author,
//! committer, date and origin URL, so its commit SHA (stamped as the revision) is the same on
//! every machine. Helm renders through `tests/support/helm` (Helm's own engine), Kustomize through
//! `kubectl kustomize`; a missing program fails the test, it is never skipped.
//!
//! When a golden file differs, the test writes what it got under `target/tmp/golden/` and prints
//! the `diff -u` command that shows the change. The tests never rewrite golden files: a change to
//! them is a change of contract, made by hand and explained in its commit. See
//! `tests/golden/README.md`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{documents, plugin, stderr, workspace_root, TestRepo};
use serde_json::Value;

/// Author and committer date of the golden repository's one commit.
const DATE: &str = "2026-01-01T00:00:00Z";
/// The golden repository's `origin`, stamped as the repository URL.
const ORIGIN: &str = "https://example.invalid/kubectl-gitops.git";

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// The examples, the test apps, `gitops.yaml` and the golden edge cases (as `golden-apps/`),
/// committed once with fixed signatures.
fn golden_repo() -> TestRepo {
    let repo = TestRepo::new();
    repo.copy_from_workspace("examples");
    repo.copy_from_workspace("tests/apps");
    repo.copy_from_workspace("plugin/tests/golden/apps");
    std::fs::rename(
        repo.path().join("plugin/tests/golden/apps"),
        repo.path().join("golden-apps"),
    )
    .expect("move the edge cases");
    std::fs::remove_dir_all(repo.path().join("plugin")).expect("remove plugin/");
    std::fs::copy(
        workspace_root().join("gitops.yaml"),
        repo.path().join("gitops.yaml"),
    )
    .expect("copy gitops.yaml");
    repo.git(&["remote", "add", "origin", ORIGIN]);
    repo.commit_dated("examples and test apps as of cf54dd1", DATE);
    repo
}

/// Runs `render` in the golden repository with the renderers' programs pinned.
fn render(repo: &TestRepo, args: &[&str], format: &str) -> Output {
    let root = workspace_root();
    plugin()
        .arg("render")
        .args(args)
        .args(["--repo", &repo.spec(), "-o", format])
        .current_dir(repo.path())
        .env("GITOPS_HELM", root.join("plugin/tests/support/helm"))
        .env("GITOPS_KUSTOMIZE", "kubectl")
        .env_remove("GITOPS_CACHE_DIR")
        .output()
        .expect("plugin runs")
}

/// Compares `actual` with the golden file `name`; on a difference, writes `actual` beside the
/// build and says how to see the diff.
fn compare(name: &str, actual: &[u8]) -> Option<String> {
    let golden = golden_dir().join(name);
    let expected = std::fs::read(&golden).ok();
    if expected.as_deref() == Some(actual) {
        return None;
    }
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("golden");
    std::fs::create_dir_all(&out_dir).expect("create target/tmp/golden");
    let got = out_dir.join(name);
    std::fs::write(&got, actual).expect("write the actual output");
    let relative = format!("plugin/tests/golden/{name}");
    Some(match expected {
        None => format!(
            "{relative} is missing; what the render gave is in {} (review it before adding it)",
            got.display()
        ),
        Some(expected) => {
            let expected = String::from_utf8_lossy(&expected);
            let actual = String::from_utf8_lossy(actual);
            let first = expected
                .lines()
                .zip(actual.lines())
                .position(|(e, a)| e != a)
                .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
            format!(
                "{relative} differs from line {}: expected {:?}, got {:?}\n  see: diff -u {relative} {}",
                first + 1,
                expected.lines().nth(first).unwrap_or("<end>"),
                actual.lines().nth(first).unwrap_or("<end>"),
                got.display()
            )
        }
    })
}

/// One line per object: its digest as stamped, apiVersion, kind and namespace/name. Checks that
/// the stamped digest is the digest of the object as printed.
fn digest_lines(items: &[Value]) -> String {
    let mut lines = String::new();
    for item in items {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        let metadata = &item["metadata"];
        let stamped = text(&metadata["annotations"]["kubectl-gitops.io/digest"]);
        assert_eq!(
            stamped,
            gitops_shared::provenance::digest(item),
            "the stamped digest covers the object as printed: {item:#}"
        );
        lines.push_str(&format!(
            "{stamped}  {} {} {}/{}\n",
            text(&item["apiVersion"]),
            text(&item["kind"]),
            text(&metadata["namespace"]),
            text(&metadata["name"]),
        ));
    }
    lines
}

/// Equal, except strings holding a raw LS or PS (U+2028, U+2029): the YAML writer (serde_yaml's
/// bytes, shared/src/yaml/emit.rs) takes them for line breaks, as YAML 1.1 does, and folds a
/// line after one, which the YAML reader (serde-saphyr, YAML 1.2) reads back with a space.
fn same_but_separators(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(a), Value::String(b)) => {
            a == b || [a, b].iter().all(|s| s.contains(['\u{2028}', '\u{2029}']))
        }
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same_but_separators(a, b))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|((ka, va), (kb, vb))| ka == kb && same_but_separators(va, vb))
        }
        _ => a == b,
    }
}

/// Renders one case in YAML and JSON and compares both, and the digests, with the golden files
/// `<case>.yaml`, `<case>.json` and `<case>.digests`.
fn golden(case: &str, args: &[&str]) {
    let repo = golden_repo();
    let mut failures = Vec::new();
    let yaml = render(&repo, args, "yaml");
    assert_eq!(yaml.status.code(), Some(0), "{case}: {}", stderr(&yaml));
    let json = render(&repo, args, "json");
    assert_eq!(json.status.code(), Some(0), "{case}: {}", stderr(&json));
    failures.extend(compare(&format!("{case}.yaml"), &yaml.stdout));
    failures.extend(compare(&format!("{case}.json"), &json.stdout));
    let list: Value = serde_json::from_slice(&json.stdout).expect("JSON output");
    let items = list["items"].as_array().cloned().unwrap_or_default();
    assert!(!items.is_empty(), "{case} renders objects");
    let reread = documents(&String::from_utf8_lossy(&yaml.stdout));
    assert!(
        reread.len() == items.len()
            && reread.iter().zip(&items).all(|(y, j)| same_but_separators(y, j)),
        "{case}: the YAML and the JSON output hold the same objects\nYAML: {reread:#?}\nJSON: {items:#?}"
    );
    failures.extend(compare(
        &format!("{case}.digests"),
        digest_lines(&items).as_bytes(),
    ));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

macro_rules! golden_cases {
    ($($test:ident: $case:literal => [$($arg:literal),*];)*) => {
        $(
            #[test]
            fn $test() {
                golden($case, &[$($arg),*]);
            }
        )*

        /// Every golden file belongs to a case: none is left behind when a case goes.
        #[test]
        fn every_golden_file_has_a_case() {
            let cases = [$($case),*];
            for entry in std::fs::read_dir(golden_dir()).expect("tests/golden") {
                let name = entry.expect("entry").file_name().to_string_lossy().into_owned();
                let Some((case, _)) = name.rsplit_once('.') else { continue };
                if name == "README.md" || name == "apps" {
                    continue;
                }
                assert!(cases.contains(&case), "tests/golden/{name} has no case");
            }
        }
    };
}

golden_cases! {
    // The apps of gitops.yaml, by name.
    app_plain_app: "app-plain-app" => ["plain-app"];
    app_shop_tera: "app-shop" => ["shop"];
    app_shop_kustomize: "app-shop-kustomize" => ["shop-kustomize"];
    app_shop_helm: "app-shop-helm" => ["shop-helm"];
    app_guestbook_jsonnet: "app-guestbook-jsonnet" => ["guestbook-jsonnet"];
    app_shop_helm_dependency: "app-shop-helm-dependency" => ["shop-helm-dependency"];
    // Every example folder as a folder app (renderer detected, namespace default).
    path_examples_plain_app: "path-examples-plain-app" => ["--path", "examples/plain-app"];
    path_examples_tera_app: "path-examples-tera-app" => ["--path", "examples/tera-app"];
    path_examples_kustomize_base: "path-examples-kustomize-app-base" => ["--path", "examples/kustomize-app/base"];
    path_examples_kustomize_production: "path-examples-kustomize-app-overlays-production" => ["--path", "examples/kustomize-app/overlays/production"];
    path_examples_helm_app: "path-examples-helm-app" => ["--path", "examples/helm-app"];
    path_examples_helm_dependency: "path-examples-helm-dependency" => ["--path", "examples/helm-dependency"];
    path_examples_jsonnet_guestbook: "path-examples-jsonnet-guestbook" => ["--path", "examples/jsonnet-guestbook"];
    path_tests_kustomize_shop_base: "path-tests-apps-kustomize-shop-base" => ["--path", "tests/apps/kustomize-shop/base"];
    path_tests_kustomize_shop_production: "path-tests-apps-kustomize-shop-overlays-production" => ["--path", "tests/apps/kustomize-shop/overlays/production"];
    // Edge cases of YAML reading (plain) and of `to_yaml` text inside a string (Tera).
    path_golden_yaml_scalars: "path-golden-apps-yaml-scalars" => ["--path", "golden-apps/yaml-scalars"];
    path_golden_tera_to_yaml: "path-golden-apps-tera-to-yaml" => ["--path", "golden-apps/tera-to-yaml"];
}
