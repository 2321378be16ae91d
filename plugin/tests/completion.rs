//! Plugin conventions, on the built binary: shell completion scripts, kubectl's plugin completion
//! protocol through `kubectl_complete-gitops`, and the krew manifest.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_kubectl-gitops");

fn run(program: &str, args: &[&str], path: Option<&str>) -> (i32, String) {
    let mut command = Command::new(program);
    command.args(args);
    if let Some(path) = path {
        command.env("PATH", path);
    }
    let output = command.output().expect("runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn completion_scripts_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let (code, script) = run(BIN, &["completion", shell], None);
        assert_eq!(code, 0, "{shell}");
        assert!(script.contains("kubectl-gitops"), "{shell}: {script}");
        assert!(
            script.contains("sync") && script.contains("status"),
            "{shell}"
        );
    }
}

#[test]
fn kubectl_complete_script_answers_the_cobra_protocol() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/kubectl_complete-gitops");
    let bin_dir = Path::new(BIN)
        .parent()
        .expect("bin dir")
        .display()
        .to_string();
    let path = format!("{bin_dir}:{}", std::env::var("PATH").unwrap_or_default());
    let (code, out) = run(script, &["sy"], Some(&path));
    assert_eq!(code, 0);
    assert_eq!(out, "sync\n:4\n");
    let (_, out) = run(script, &["diff", "--rev"], Some(&path));
    assert_eq!(out, "--revision\n:4\n");
    // kubectl may pass its own __complete first.
    let (_, out) = run(script, &["__complete", "st"], Some(&path));
    assert_eq!(out, "status\n:4\n");
}

#[test]
fn krew_manifest_names_the_binary_and_the_completion_script() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/krew/gitops.yaml"))
        .expect("manifest");
    let manifest: serde_json::Value = gitops_shared::yaml::from_str(&text).expect("yaml");
    assert_eq!(manifest["kind"], "Plugin");
    assert_eq!(manifest["metadata"]["name"], "gitops");
    let version = format!("v{}", env!("CARGO_PKG_VERSION"));
    assert_eq!(manifest["spec"]["version"].as_str(), Some(version.as_str()));
    for platform in manifest["spec"]["platforms"].as_array().expect("platforms") {
        assert_eq!(platform["bin"], "kubectl-gitops");
        let files: Vec<&str> = platform["files"]
            .as_array()
            .expect("files")
            .iter()
            .filter_map(|f| f["from"].as_str())
            .collect();
        assert!(files.contains(&"kubectl_complete-gitops"), "{files:?}");
    }
}
