//! Helm chart dependencies must be vendored under `charts/` in the commit: the webhook renders
//! without network, so the plugin must too, and `helm template` is never asked to download.
//!
//! Every dependency that `Chart.yaml` (or a v1 chart's `requirements.yaml`) lists must be there,
//! whatever its `condition`, `tags` or `enabled` say — as `helm template` itself requires. A
//! dependency is vendored when `charts/` holds a folder with a `Chart.yaml` of that name (or a
//! folder of that name), or an archive `<name>-<version>.tgz` as `helm dependency build` writes it.

use serde::Deserialize;

use crate::git::FileTree;
use crate::render::external::ExternalError;
use crate::render::plain::ParseError;

#[derive(Deserialize)]
struct ChartDependencies {
    #[serde(default)]
    dependencies: Option<Vec<Dependency>>,
}

#[derive(Deserialize)]
struct Dependency {
    name: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    repository: Option<String>,
}

#[derive(Deserialize)]
struct ChartName {
    #[serde(default)]
    name: Option<String>,
}

/// Checks that every dependency of the chart at `chart_dir` is vendored in `tree`.
pub fn check(tree: &FileTree, chart_dir: &str) -> Result<(), ExternalError> {
    let at = |name: &str| {
        if chart_dir.is_empty() {
            name.to_owned()
        } else {
            format!("{chart_dir}/{name}")
        }
    };
    let charts_dir = at("charts");
    for file in [at("Chart.yaml"), at("requirements.yaml")] {
        let Some(bytes) = tree.get(&file) else {
            continue;
        };
        let listed: ChartDependencies = crate::yaml::from_slice(bytes).map_err(|e| ParseError {
            file: file.clone(),
            document: 1,
            line: e.line,
            message: e.message,
        })?;
        for dependency in listed.dependencies.unwrap_or_default() {
            if !is_vendored(tree, &charts_dir, &dependency.name) {
                let origin: Vec<String> = [
                    dependency.version.map(|v| format!("version {v}")),
                    dependency.repository.map(|r| format!("from {r}")),
                ]
                .into_iter()
                .flatten()
                .collect();
                return Err(ExternalError::HelmDependencyMissing {
                    chart_file: file,
                    chart_dir: chart_dir.to_owned(),
                    name: dependency.name,
                    origin: (!origin.is_empty()).then(|| origin.join(" ")),
                });
            }
        }
    }
    Ok(())
}

fn is_vendored(tree: &FileTree, charts_dir: &str, name: &str) -> bool {
    let prefix = format!("{charts_dir}/");
    tree.iter().any(|(file, bytes)| {
        let Some(inside) = file.strip_prefix(&prefix) else {
            return false;
        };
        match inside.split_once('/') {
            // charts/<folder>/Chart.yaml
            Some((folder, "Chart.yaml")) => {
                folder == name
                    || crate::yaml::from_slice::<ChartName>(bytes)
                        .ok()
                        .and_then(|c| c.name)
                        .is_some_and(|n| n == name)
            }
            Some(_) => false,
            // charts/<name>-<version>.tgz
            None => inside.strip_suffix(".tgz").is_some_and(|stem| {
                stem == name
                    || stem
                        .strip_prefix(name)
                        .and_then(|rest| rest.strip_prefix('-'))
                        .is_some_and(|version| version.starts_with(|c: char| c.is_ascii_digit()))
            }),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::render::test_tree as tree;

    const CHART: &str = "apiVersion: v2\nname: web\nversion: 1.0.0\ndependencies:\n  - name: redis\n    version: 17.3.7\n    repository: https://charts.example.com\n    condition: redis.enabled\n";

    #[test]
    fn a_listed_dependency_must_be_vendored() {
        let err = check(&tree(&[("app/Chart.yaml", CHART)]), "app")
            .expect_err("missing")
            .to_string();
        assert_eq!(
            err,
            "app/Chart.yaml: dependency \"redis\" (version 17.3.7 from https://charts.example.com) is not in app/charts/: run `helm dependency build app` and commit it (the webhook renders without network, so the plugin does too)"
        );
        // Vendored as `helm dependency build` does, as a folder, or as a folder of another name.
        for vendored in [
            ("app/charts/redis-17.3.7.tgz", ""),
            ("app/charts/redis/Chart.yaml", "name: redis\n"),
            ("app/charts/cache/Chart.yaml", "name: redis\n"),
        ] {
            check(&tree(&[("app/Chart.yaml", CHART), vendored]), "app")
                .unwrap_or_else(|e| panic!("{vendored:?}: {e}"));
        }
        // Another chart's archive whose name merely starts alike does not count.
        assert!(check(
            &tree(&[
                ("app/Chart.yaml", CHART),
                ("app/charts/redis-cluster-9.0.0.tgz", "")
            ]),
            "app"
        )
        .is_err());
        // v1 charts list them in requirements.yaml.
        let err = check(
            &tree(&[
                ("Chart.yaml", "apiVersion: v1\nname: old\nversion: 1.0.0\n"),
                ("requirements.yaml", "dependencies:\n  - name: pg\n"),
            ]),
            "",
        )
        .expect_err("missing")
        .to_string();
        assert!(err.starts_with("requirements.yaml: dependency \"pg\" is not in charts/: run `helm dependency build .`"), "{err}");
    }
}
