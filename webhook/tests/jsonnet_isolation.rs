//! The webhook evaluates Jsonnet in a child process of its own binary: a commit whose Jsonnet
//! overflows the native stack (a recursion through object fields, which jrsonnet's call limit
//! does not catch) or runs too long fails one render, and the server process goes on.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use gitops_shared::git::FileTree;
use gitops_shared::render::jsonnet_child::{isolate_in, Isolation};
use gitops_shared::render::{render_jsonnet, JsonnetOptions};

fn tree(main: &str) -> FileTree {
    let mut tree = FileTree::new();
    tree.insert("app/main.jsonnet".to_owned(), main.as_bytes().to_vec());
    tree
}

const GOOD: &str = r#"function(replicas=1) [
  {apiVersion: "v1", kind: "ConfigMap", metadata: {name: "settings"}, data: {replicas: std.toString(replicas)}},
]"#;

/// Overflows the native stack through lazy fields: an abort when evaluated in-process.
const RUNAWAY: &str = r#"local f(x) = if x > 500000 then {a: []} else {a: f(x + 1).a + [x]};
[{apiVersion: "v1", kind: "ConfigMap", metadata: {name: "deep"}, data: {n: std.toString(std.length(f(0).a))}}]"#;

/// Exponential: runs far longer than the limit.
const SLOW: &str = r#"local f(n) = if n == 0 then 1 else f(n - 1) + f(n - 1);
[{apiVersion: "v1", kind: "ConfigMap", metadata: {name: "slow"}, data: {n: std.toString(f(60))}}]"#;

#[test]
fn a_runaway_or_endless_evaluation_fails_one_render_and_the_process_goes_on() {
    isolate_in(Isolation {
        program: env!("CARGO_BIN_EXE_gitops-webhook").into(),
        args: vec!["--jsonnet-child".to_owned()],
        timeout: Duration::from_secs(3),
    });
    let options = JsonnetOptions::default();

    // A well-formed app renders in the child as it would here.
    let objects = render_jsonnet(tree(GOOD), "app", &options).unwrap();
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0].object["metadata"]["name"], "settings");
    assert_eq!(objects[0].object["data"]["replicas"], "1");
    assert_eq!(objects[0].source.file, "app/main.jsonnet");

    // The stack overflow ends the child, not this process.
    let error = render_jsonnet(tree(RUNAWAY), "app", &options)
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("app: Jsonnet evaluation failed: the evaluation crashed"),
        "{error}"
    );

    // The endless one is stopped at the limit.
    let started = Instant::now();
    let error = render_jsonnet(tree(SLOW), "app", &options)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("ran longer than 3 s and was stopped"),
        "{error}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));

    // A Jsonnet error is reported with its place, as in-process.
    let error = render_jsonnet(tree("{a: }"), "app", &options)
        .unwrap_err()
        .to_string();
    assert!(error.contains("app/main.jsonnet"), "{error}");

    // And the process still renders.
    assert_eq!(
        render_jsonnet(tree(GOOD), "app", &options).unwrap().len(),
        1
    );
}
