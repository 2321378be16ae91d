//! What the app page draws: one flat list of nodes (Git's objects and the live objects under
//! them, each naming its parent), with each node's health, sync state, the commit it was applied
//! from, and — for the side panel — its live YAML, its Git YAML and the semantic diff, made by
//! the same code as `kubectl gitops diff`.

use gitops_shared::drift::without_provenance;
use gitops_shared::health::HealthStatus;
use gitops_shared::object::ObjectKey;
use serde::Serialize;
use serde_json::Value;

use crate::app_state::AppState;
use crate::diff_cmd::write_object_diff;
use crate::status::apps::{summarize, AppSummary};
use crate::status::tree::LiveNode;
use crate::status_cmd::{StatusReport, SyncStatus};

/// A commit as the page shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitInfo {
    /// Full SHA.
    pub sha: String,
    /// First 7 hex digits.
    pub short: String,
    /// First line of the message.
    pub subject: String,
    /// Author name.
    pub author: String,
    /// Commit time, seconds since the Unix epoch.
    pub time: i64,
}

/// One box of the graph.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeView {
    /// Index in the list.
    pub id: usize,
    /// The owner's index (none for Git's objects).
    pub parent: Option<usize>,
    /// Kind.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Whether Git declares it (else the cluster made it).
    pub in_git: bool,
    /// Sync state (Git's objects only).
    pub sync: Option<SyncStatus>,
    /// Fields that differ.
    pub fields: Vec<String>,
    /// Health.
    pub health: HealthStatus,
    /// Why not Healthy.
    pub health_reason: String,
    /// The commit it was applied from (Git's objects that carry one).
    pub commit: Option<CommitInfo>,
    /// Live YAML (managedFields left out), empty when absent.
    pub live_yaml: String,
    /// Git's YAML (Git's objects only).
    pub git_yaml: String,
    /// The semantic diff (empty when in sync, or not Git's).
    pub diff: String,
}

/// The app page's data.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppDetail {
    /// The card's line.
    pub summary: AppSummary,
    /// Repository.
    pub repo: String,
    /// The branch head.
    pub head: Option<CommitInfo>,
    /// The commit of the last sync.
    pub cluster_commit: Option<CommitInfo>,
    /// When the last sync ran, and who ran it.
    pub synced_at: Option<String>,
    /// Who ran it.
    pub synced_by: Option<String>,
    /// The graph's nodes, parents before children.
    pub nodes: Vec<NodeView>,
}

/// A commit's details from the repository, when it holds it.
pub fn commit_info(state: &AppState, sha: &str) -> Option<CommitInfo> {
    let oid = git2::Oid::from_str(sha).ok()?;
    let commit = state.source.repo.raw().find_commit(oid).ok()?;
    let author = commit.author().name().unwrap_or_default().to_owned();
    Some(CommitInfo {
        sha: sha.to_owned(),
        short: sha.chars().take(7).collect(),
        subject: commit.summary().unwrap_or_default().to_owned(),
        author,
        time: commit.time().seconds(),
    })
}

fn yaml_of(object: &Value) -> String {
    let mut object = object.clone();
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.remove("managedFields");
    }
    gitops_shared::yaml::to_string(&object)
}

/// The page's data for an app whose report has its tree attached.
pub fn app_detail(state: &AppState, report: &StatusReport) -> AppDetail {
    fn add_live(nodes: &mut Vec<NodeView>, parent: usize, children: &[LiveNode]) {
        for child in children {
            let id = nodes.len();
            nodes.push(NodeView {
                id,
                parent: Some(parent),
                kind: child.kind.clone(),
                namespace: child.namespace.clone(),
                name: child.name.clone(),
                in_git: false,
                sync: None,
                fields: Vec::new(),
                health: child.health,
                health_reason: child.health_reason.clone(),
                commit: None,
                live_yaml: yaml_of(&child.object),
                git_yaml: String::new(),
                diff: String::new(),
            });
            add_live(nodes, id, &child.children);
        }
    }
    let desired: std::collections::HashMap<ObjectKey, &Value> =
        state.desired().into_iter().collect();
    let mut nodes = Vec::new();
    for row in &report.objects {
        let key = ObjectKey {
            group: row.group.clone(),
            kind: row.kind.clone(),
            namespace: row.namespace.clone(),
            name: row.name.clone(),
        };
        let git = desired.get(&key).copied();
        let diff = match git {
            Some(git) if row.sync != SyncStatus::Synced => {
                let mut out = Vec::new();
                match write_object_diff(&mut out, state, &key, git, false) {
                    Ok(_) => String::from_utf8_lossy(&out).into_owned(),
                    Err(error) => format!("cannot show the diff: {error}"),
                }
            }
            _ => String::new(),
        };
        let id = nodes.len();
        nodes.push(NodeView {
            id,
            parent: None,
            kind: row.kind.clone(),
            namespace: row.namespace.clone(),
            name: row.name.clone(),
            in_git: git.is_some(),
            sync: Some(row.sync),
            fields: row.fields.clone(),
            health: row.health,
            health_reason: row.health_reason.clone(),
            commit: commit_info(state, &row.revision),
            live_yaml: state.live.get(&key).map(yaml_of).unwrap_or_default(),
            git_yaml: git
                .map(|g| yaml_of(&without_provenance(g)))
                .unwrap_or_default(),
            diff,
        });
        add_live(&mut nodes, id, &row.children);
    }
    AppDetail {
        summary: summarize(report),
        repo: report.repo.clone(),
        head: commit_info(state, &report.head),
        cluster_commit: report
            .cluster_revision
            .as_deref()
            .and_then(|r| commit_info(state, r)),
        synced_at: report.synced_at.clone(),
        synced_by: report.synced_by.clone(),
        nodes,
    }
}
