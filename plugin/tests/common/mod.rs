//! Test support: real Git repositories made with the `git` program, and runs of the built
//! `kubectl-gitops` binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gitops_test_support::Repo;

/// A throwaway repository with a working tree, removed on drop: the workspace's test
/// [`Repo`] (git, write, remove, commit) plus what only these tests need.
pub struct TestRepo(Repo);

impl std::ops::Deref for TestRepo {
    type Target = Repo;

    fn deref(&self) -> &Repo {
        &self.0
    }
}

impl TestRepo {
    pub fn new() -> TestRepo {
        TestRepo(Repo::temporary())
    }

    pub fn path(&self) -> &Path {
        &self.0.path
    }

    /// Copies a folder of this workspace (e.g. `examples`) into the repository.
    pub fn copy_from_workspace(&self, folder: &str) {
        let from = workspace_root().join(folder);
        copy_dir(&from, &self.path().join(folder));
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_owned()
}

/// The built plugin binary.
pub fn plugin() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kubectl-gitops"));
    command.env_remove("GITOPS_REPO").env_remove("RUST_LOG");
    command
}

/// Runs the plugin in `dir` with `args`.
pub fn run_in(dir: &Path, args: &[&str]) -> Output {
    plugin()
        .args(args)
        .current_dir(dir)
        .output()
        .expect("plugin runs")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Parses multi-document YAML output into JSON values.
pub fn documents(yaml: &str) -> Vec<serde_json::Value> {
    gitops_shared::yaml::documents(yaml.as_bytes())
        .expect("yaml documents")
        .into_iter()
        .map(|document| document.value)
        .collect()
}
