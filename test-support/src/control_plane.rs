//! The API server a benchmark runs against: `GITOPS_E2E_KUBECONFIG`'s (its user must be cluster
//! admin), else a control plane started from `../shared/kube` for the run and stopped when the
//! returned guard drops. The e2e suites get theirs from `tests/run`; benchmarks run alone.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A control plane started for this run, stopped when dropped.
#[derive(Debug)]
pub struct StartedControlPlane {
    start: PathBuf,
    state: tempfile::TempDir,
}

impl Drop for StartedControlPlane {
    fn drop(&mut self) {
        let _ = Command::new(self.start.with_file_name("stop"))
            .arg(self.state.path())
            .output();
    }
}

/// The admin kubeconfig of a real API server, and the control plane to stop afterwards when this
/// call started one. `kube` is the `../shared/kube` folder (its `start` script). `Err` says why
/// there is none (no `GITOPS_E2E_KUBECONFIG`, no `start`, or starting failed).
pub fn admin_kubeconfig(kube: &Path) -> Result<(PathBuf, Option<StartedControlPlane>), String> {
    if let Some(path) = std::env::var_os("GITOPS_E2E_KUBECONFIG") {
        return Ok((PathBuf::from(path), None));
    }
    let start = kube.join("start");
    if !start.exists() {
        return Err(format!(
            "no GITOPS_E2E_KUBECONFIG and no {}",
            start.display()
        ));
    }
    let state = tempfile::tempdir().map_err(|e| e.to_string())?;
    let output = Command::new(&start)
        .arg(state.path())
        .output()
        .map_err(|e| format!("{}: {e}", start.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} failed: {}",
            start.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let kubeconfig = state.path().join("admin.kubeconfig");
    Ok((kubeconfig, Some(StartedControlPlane { start, state })))
}
