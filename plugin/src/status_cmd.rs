//! `kubectl gitops status`: the app's revision in the cluster against the branch head, then one
//! row per object with its sync status, health and the commit it was last applied from.

use std::io::Write;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use gitops_shared::drift::declared_drift;
use gitops_shared::health::{health_of, Health, HealthStatus};
use gitops_shared::provenance::REVISION_ANNOTATION;
use gitops_shared::takeover::{hand_fields, HandField};
use serde::Serialize;
use serde_json::Value;

use crate::app_state::{runtime, AppState};
use crate::cluster::ClusterArgs;
use crate::exit;
use crate::source::SourceArgs;

/// Output formats of `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusFormat {
    /// A table, like kubectl.
    Table,
    /// JSON, for scripts.
    Json,
    /// YAML, for scripts.
    Yaml,
}

/// Flags of `status`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  kubectl gitops status shop --repo https://git.example/deploy.git --revision main\n  kubectl gitops status --path apps/web -o json\n\nExit codes: 0 synced and healthy, 1 otherwise, 2 error."
)]
pub struct StatusArgs {
    /// Which repository, revision (the branch to compare with) and app.
    #[command(flatten)]
    pub source: SourceArgs,
    /// Which cluster.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: StatusFormat,
}

/// Sync status of one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SyncStatus {
    /// Declared fields match.
    Synced,
    /// Some declared field differs, or a field was added by hand.
    OutOfSync,
    /// In Git, not in the cluster.
    Missing,
    /// In the cluster with the app's labels, not in Git.
    Extraneous,
}

/// One row.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStatus {
    /// Kind.
    pub kind: String,
    /// API group.
    pub group: String,
    /// Namespace (empty when cluster-scoped).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Sync status.
    pub sync: SyncStatus,
    /// The fields that differ (OutOfSync); a hand-made one names its manager and what sync does.
    pub fields: Vec<String>,
    /// The hand-made fields with their manager and what sync does about each (`remedy`:
    /// `Revert`, `ForceConflicts` or `Kept`); no values, which may be a Secret's.
    pub hand_fields: Vec<HandField>,
    /// Health.
    pub health: HealthStatus,
    /// Why not Healthy.
    pub health_reason: String,
    /// The commit the object was last applied from (its revision annotation).
    pub revision: String,
}

/// The whole report (`-o json|yaml`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    /// App name.
    pub app: String,
    /// App namespace (where the inventory lives).
    pub namespace: String,
    /// Repository.
    pub repo: String,
    /// App path.
    pub path: String,
    /// The commit the revision flag resolved to (the branch head).
    pub head: String,
    /// The commit of the last complete sync, from the inventory.
    pub cluster_revision: Option<String>,
    /// When the last sync wrote the inventory.
    pub synced_at: Option<String>,
    /// Who ran it.
    pub synced_by: Option<String>,
    /// How many commits the cluster is behind the head (None when unknown).
    pub behind: Option<usize>,
    /// The hooks the last sync ran, with their results (absent when none ran).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<crate::hooks::HookRecord>,
    /// Every object's status.
    pub objects: Vec<ObjectStatus>,
    /// Whether everything is synced and healthy.
    pub ok: bool,
}

/// Runs `status`.
pub fn run(args: &StatusArgs) -> anyhow::Result<u8> {
    let runtime = runtime().context("cannot start the async runtime")?;
    let state = runtime.block_on(AppState::load(&args.source, &args.cluster))?;
    let report = report(&state);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.output {
        StatusFormat::Table => write_table(&mut out, &report),
        StatusFormat::Json => serde_json::to_writer_pretty(&mut out, &report)
            .map_err(std::io::Error::other)
            .and_then(|()| out.write_all(b"\n")),
        StatusFormat::Yaml => serde_yaml::to_string(&report)
            .map_err(std::io::Error::other)
            .and_then(|text| out.write_all(text.as_bytes())),
    }
    .context("cannot write to stdout")?;
    out.flush().context("cannot write to stdout")?;
    Ok(if report.ok {
        exit::OK
    } else {
        exit::DIFFERENCE
    })
}

fn revision_of(object: &Value) -> String {
    object
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(REVISION_ANNOTATION))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Builds the report from the state.
pub fn report(state: &AppState) -> StatusReport {
    let mut objects = Vec::new();
    for (key, desired) in state.desired() {
        let row = match state.live.get(&key) {
            None => ObjectStatus {
                kind: key.kind.clone(),
                group: key.group.clone(),
                namespace: key.namespace.clone(),
                name: key.name.clone(),
                sync: SyncStatus::Missing,
                fields: Vec::new(),
                hand_fields: Vec::new(),
                health: HealthStatus::Missing,
                health_reason: Health::missing().reason,
                revision: String::new(),
            },
            Some(live) => {
                let hand = hand_fields(desired, live, &state.rendered.app.take_over_managers);
                let said =
                    |h: &HandField| format!("{} (by {}; {})", h.path, h.manager, h.remedy.short());
                let mut fields: Vec<String> = declared_drift(desired, live)
                    .into_iter()
                    .map(|d| match d.duplicates {
                        Some(n) => format!("{} ({n} entries with this key)", d.path),
                        None => hand
                            .iter()
                            .find(|h| h.declared && h.path == d.path)
                            .map_or(d.path, said),
                    })
                    .collect();
                fields.extend(hand.iter().filter(|h| !h.declared).map(said));
                let health = health_of(live);
                ObjectStatus {
                    kind: key.kind.clone(),
                    group: key.group.clone(),
                    namespace: key.namespace.clone(),
                    name: key.name.clone(),
                    sync: if fields.is_empty() {
                        SyncStatus::Synced
                    } else {
                        SyncStatus::OutOfSync
                    },
                    fields,
                    hand_fields: hand,
                    health: health.status,
                    health_reason: health.reason,
                    revision: revision_of(live),
                }
            }
        };
        objects.push(row);
    }
    for (key, _) in state.extraneous() {
        let live = state.live.get(&key);
        let health = live.map(health_of).unwrap_or_else(Health::missing);
        objects.push(ObjectStatus {
            kind: key.kind.clone(),
            group: key.group.clone(),
            namespace: key.namespace.clone(),
            name: key.name.clone(),
            sync: SyncStatus::Extraneous,
            fields: Vec::new(),
            hand_fields: Vec::new(),
            health: health.status,
            health_reason: health.reason,
            revision: live.map(revision_of).unwrap_or_default(),
        });
    }
    let head = state.source.commit;
    let cluster_revision = state
        .inventory
        .as_ref()
        .map(|i| i.revision.clone())
        .filter(|r| !r.is_empty());
    let behind = cluster_revision
        .as_deref()
        .and_then(|r| git2::Oid::from_str(r).ok())
        .filter(|oid| state.source.repo.has_commit(*oid))
        .and_then(|oid| state.source.repo.ahead_behind(oid, head).ok())
        .map(|(_, behind)| behind);
    let ok = objects
        .iter()
        .all(|o| o.sync == SyncStatus::Synced && o.health == HealthStatus::Healthy);
    StatusReport {
        app: state.rendered.app.name.clone(),
        namespace: state.rendered.namespace.clone(),
        repo: state.rendered.provenance.repo.clone(),
        path: state.rendered.provenance.path.clone(),
        head: head.to_string(),
        cluster_revision,
        synced_at: state
            .inventory
            .as_ref()
            .map(|i| i.synced_at.clone())
            .filter(|s| !s.is_empty()),
        synced_by: state
            .inventory
            .as_ref()
            .map(|i| i.synced_by.clone())
            .filter(|s| !s.is_empty()),
        behind,
        hooks: state
            .inventory
            .as_ref()
            .map(|i| i.hooks.clone())
            .unwrap_or_default(),
        objects,
        ok,
    }
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

/// The table, like kubectl's: the header, then aligned columns.
pub fn write_table(out: &mut dyn Write, report: &StatusReport) -> std::io::Result<()> {
    writeln!(
        out,
        "APP:       {} (namespace {})",
        report.app, report.namespace
    )?;
    writeln!(out, "SOURCE:    {} {}", report.repo, report.path)?;
    let cluster = match (&report.cluster_revision, report.behind) {
        (None, _) => "never synced".to_owned(),
        (Some(rev), Some(0)) => format!("{} (up to date)", short(rev)),
        (Some(rev), Some(n)) => format!(
            "{} ({n} commit{} behind)",
            short(rev),
            if n == 1 { "" } else { "s" }
        ),
        (Some(rev), None) => format!("{} (not in the history of the head)", short(rev)),
    };
    writeln!(
        out,
        "REVISION:  head {}, cluster {cluster}",
        short(&report.head)
    )?;
    if let (Some(at), Some(by)) = (&report.synced_at, &report.synced_by) {
        writeln!(out, "SYNCED:    {at} by {by}")?;
    }
    for line in crate::hooks::status_lines(&report.hooks) {
        writeln!(out, "HOOK:      {line}")?;
    }
    writeln!(out)?;
    let mut rows = vec![[
        "KIND".to_owned(),
        "NAMESPACE".to_owned(),
        "NAME".to_owned(),
        "SYNC".to_owned(),
        "HEALTH".to_owned(),
        "REVISION".to_owned(),
        "MESSAGE".to_owned(),
    ]];
    for o in &report.objects {
        let sync = match o.sync {
            SyncStatus::Synced => "Synced",
            SyncStatus::OutOfSync => "OutOfSync",
            SyncStatus::Missing => "Missing",
            SyncStatus::Extraneous => "Extraneous",
        };
        let mut message = Vec::new();
        if !o.fields.is_empty() {
            message.push(format!("differs: {}", o.fields.join(", ")));
        }
        if !o.health_reason.is_empty() && o.health != HealthStatus::Healthy {
            message.push(o.health_reason.clone());
        }
        rows.push([
            o.kind.clone(),
            if o.namespace.is_empty() {
                "-".to_owned()
            } else {
                o.namespace.clone()
            },
            o.name.clone(),
            sync.to_owned(),
            o.health.to_string(),
            if o.revision.is_empty() {
                "-".to_owned()
            } else {
                short(&o.revision).to_owned()
            },
            message.join("; "),
        ]);
    }
    let mut widths = [0usize; 7];
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}   ", width = widths[i]));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(
        kind: &str,
        name: &str,
        sync: SyncStatus,
        health: HealthStatus,
        reason: &str,
    ) -> ObjectStatus {
        ObjectStatus {
            kind: kind.into(),
            group: String::new(),
            namespace: if kind == "Namespace" {
                String::new()
            } else {
                "shop".into()
            },
            name: name.into(),
            sync,
            fields: if sync == SyncStatus::OutOfSync {
                vec!["data.LOG_LEVEL".into()]
            } else {
                Vec::new()
            },
            hand_fields: Vec::new(),
            health,
            health_reason: reason.into(),
            revision: if sync == SyncStatus::Missing {
                String::new()
            } else {
                "a".repeat(40)
            },
        }
    }

    #[test]
    fn table_like_kubectl() {
        let report = StatusReport {
            app: "shop".into(),
            namespace: "shop".into(),
            repo: "https://git.example/deploy.git".into(),
            path: "apps/shop".into(),
            head: "b".repeat(40),
            cluster_revision: Some("a".repeat(40)),
            synced_at: Some("2026-11-26T17:00:00Z".into()),
            synced_by: Some("alice".into()),
            behind: Some(2),
            hooks: vec![],
            objects: vec![
                row(
                    "Namespace",
                    "shop",
                    SyncStatus::Synced,
                    HealthStatus::Healthy,
                    "",
                ),
                row(
                    "ConfigMap",
                    "settings",
                    SyncStatus::OutOfSync,
                    HealthStatus::Healthy,
                    "",
                ),
                row(
                    "Deployment",
                    "web",
                    SyncStatus::Missing,
                    HealthStatus::Missing,
                    "not found in the cluster",
                ),
            ],
            ok: false,
        };
        let mut out = Vec::new();
        write_table(&mut out, &report).expect("write");
        let text = String::from_utf8(out).expect("utf8");
        let expected = "\
APP:       shop (namespace shop)
SOURCE:    https://git.example/deploy.git apps/shop
REVISION:  head bbbbbbbbbbbb, cluster aaaaaaaaaaaa (2 commits behind)
SYNCED:    2026-11-26T17:00:00Z by alice

KIND         NAMESPACE   NAME       SYNC        HEALTH    REVISION       MESSAGE
Namespace    -           shop       Synced      Healthy   aaaaaaaaaaaa
ConfigMap    shop        settings   OutOfSync   Healthy   aaaaaaaaaaaa   differs: data.LOG_LEVEL
Deployment   shop        web        Missing     Missing   -              not found in the cluster
";
        assert_eq!(text, expected);
        let json = serde_json::to_value(&report).expect("json");
        assert_eq!(json["objects"][1]["sync"], "OutOfSync");
        assert_eq!(
            json["objects"][2]["healthReason"],
            "not found in the cluster"
        );
        assert_eq!(json["clusterRevision"], "a".repeat(40));
    }
}
