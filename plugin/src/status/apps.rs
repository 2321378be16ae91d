//! Every app of `gitops.yaml` at one revision, one line each: where the cluster is against the
//! branch, how many objects differ, the worst health and why. Built from the per-app
//! [`StatusReport`], so the table, `-o json` and the web view's cards cannot disagree with
//! `status APP`.

use gitops_shared::health::HealthStatus;
use serde::Serialize;

use crate::app_state::{AppState, AppStateError};
use crate::source::{SourceArgs, SourceError};
use crate::status_cmd::{report, StatusReport, SyncStatus};

/// Why the apps could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum AppsError {
    /// Repository, revision or gitops.yaml.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Connecting to the cluster.
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
}

/// An app's sync state as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AppSync {
    /// Every declared object is in the cluster as Git declares it, and nothing extra.
    Synced,
    /// Some objects differ, are missing or are extraneous (`outOfSync` counts them).
    OutOfSync,
    /// None of the declared objects is in the cluster: never synced here.
    Missing,
    /// The app could not be read (`error` says why).
    Unknown,
}

/// One app's line.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppSummary {
    /// App name.
    pub app: String,
    /// App namespace.
    pub namespace: String,
    /// App path in the repository.
    pub path: String,
    /// The commit of the last complete sync (full SHA).
    pub cluster_revision: Option<String>,
    /// Commits the cluster is behind the head (None when unknown or never synced).
    pub behind: Option<usize>,
    /// Sync state as a whole.
    pub sync: AppSync,
    /// How many objects are not Synced (OutOfSync, Missing or Extraneous).
    pub out_of_sync: usize,
    /// The worst health among the objects.
    pub health: HealthStatus,
    /// `Kind/name: reason` of the object with the worst health (empty when all are Healthy).
    pub health_reason: String,
    /// How many objects Git declares.
    pub objects: usize,
    /// Synced and Healthy.
    pub ok: bool,
    /// Why the app could not be read, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Every app (`status --all -o json|yaml`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppsReport {
    /// The commit the revision resolved to (the branch head).
    pub head: String,
    /// One line per app, in name order.
    pub apps: Vec<AppSummary>,
    /// Every app Synced and Healthy.
    pub ok: bool,
}

/// Rank of a health verdict, worst highest: what a person should look at first.
pub fn severity(status: HealthStatus) -> u8 {
    match status {
        HealthStatus::Healthy => 0,
        HealthStatus::Unknown => 1,
        HealthStatus::Progressing => 2,
        HealthStatus::Missing => 3,
        HealthStatus::Degraded => 4,
    }
}

/// One app's line from its full report.
pub fn summarize(report: &StatusReport) -> AppSummary {
    let declared = report
        .objects
        .iter()
        .filter(|o| o.sync != SyncStatus::Extraneous)
        .count();
    let out_of_sync = report
        .objects
        .iter()
        .filter(|o| o.sync != SyncStatus::Synced)
        .count();
    let all_missing = declared > 0
        && report
            .objects
            .iter()
            .filter(|o| o.sync != SyncStatus::Extraneous)
            .all(|o| o.sync == SyncStatus::Missing);
    let sync = if all_missing {
        AppSync::Missing
    } else if out_of_sync > 0 {
        AppSync::OutOfSync
    } else {
        AppSync::Synced
    };
    let worst = report
        .objects
        .iter()
        .max_by_key(|o| severity(o.health))
        .filter(|o| o.health != HealthStatus::Healthy);
    AppSummary {
        app: report.app.clone(),
        namespace: report.namespace.clone(),
        path: report.path.clone(),
        cluster_revision: report.cluster_revision.clone(),
        behind: report.behind,
        sync,
        out_of_sync,
        health: worst.map_or(HealthStatus::Healthy, |o| o.health),
        health_reason: worst
            .map(|o| {
                if o.health_reason.is_empty() {
                    format!("{}/{}", o.kind, o.name)
                } else {
                    format!("{}/{}: {}", o.kind, o.name, o.health_reason)
                }
            })
            .unwrap_or_default(),
        objects: declared,
        ok: report.ok,
        error: None,
    }
}

/// The line of an app that could not be read.
pub fn failed(name: &str, namespace: &str, path: &str, error: &AppStateError) -> AppSummary {
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        let more = inner.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = inner.source();
    }
    AppSummary {
        app: name.to_owned(),
        namespace: namespace.to_owned(),
        path: path.to_owned(),
        cluster_revision: None,
        behind: None,
        sync: AppSync::Unknown,
        out_of_sync: 0,
        health: HealthStatus::Unknown,
        health_reason: String::new(),
        objects: 0,
        ok: false,
        error: Some(text),
    }
}

/// An app that could not be read: its name, namespace and path from gitops.yaml, and why.
#[derive(Debug)]
pub struct Unreadable {
    /// App name.
    pub name: String,
    /// App namespace.
    pub namespace: String,
    /// App path.
    pub path: String,
    /// Why.
    pub error: AppStateError,
}

/// An app's state, or why it could not be read.
pub type Loaded = Result<AppState, Unreadable>;

/// Every app's state (or why it could not be read), with one client for all.
pub async fn load_all(
    source: &SourceArgs,
    client: &kube::Client,
    namespace: &str,
) -> Result<(String, Vec<Loaded>), AppsError> {
    let resolved = source.resolve_all()?;
    let head = resolved
        .first()
        .map(|r| r.commit.to_string())
        .unwrap_or_default();
    let mut out = Vec::with_capacity(resolved.len());
    for one in resolved {
        let (name, ns, path) = (
            one.app.name.clone(),
            one.app.namespace.clone().unwrap_or_default(),
            one.app.path.clone(),
        );
        match AppState::load_with(one, client.clone(), namespace).await {
            Ok(state) => out.push(Ok(state)),
            Err(error) => out.push(Err(Unreadable {
                name,
                namespace: ns,
                path,
                error,
            })),
        }
    }
    Ok((head, out))
}

/// The report of every app from their states.
pub fn apps_report(head: String, states: &[Loaded]) -> AppsReport {
    let apps: Vec<AppSummary> = states
        .iter()
        .map(|state| match state {
            Ok(state) => summarize(&report(state)),
            Err(u) => failed(&u.name, &u.namespace, &u.path, &u.error),
        })
        .collect();
    let ok = apps.iter().all(|a| a.ok);
    AppsReport { head, apps, ok }
}

/// The all-apps table, like kubectl's: aligned columns, colour on the sync and health cells.
pub fn write_apps_table(
    out: &mut dyn std::io::Write,
    report: &AppsReport,
    palette: crate::colour::Palette,
) -> std::io::Result<()> {
    use crate::colour::{Palette, BAD, DIM, GOOD, WARN};
    use crate::status_cmd::{short, write_columns, Cell};
    let mut rows: Vec<Vec<Cell>> = vec![[
        "APP",
        "NAMESPACE",
        "REVISION",
        "SYNC",
        "HEALTH",
        "OBJECTS",
        "MESSAGE",
    ]
    .into_iter()
    .map(|h| (h.to_owned(), None))
    .collect()];
    for a in &report.apps {
        let revision = match (&a.cluster_revision, a.behind) {
            (None, _) => "-".to_owned(),
            (Some(rev), Some(0)) => short(rev).to_owned(),
            (Some(rev), Some(n)) => format!("{} ({n} behind)", short(rev)),
            (Some(rev), None) => format!("{} (not in history)", short(rev)),
        };
        let (sync, sync_style) = match a.sync {
            AppSync::Synced => ("Synced".to_owned(), GOOD),
            AppSync::OutOfSync => (format!("OutOfSync ({})", a.out_of_sync), WARN),
            AppSync::Missing => ("Missing".to_owned(), BAD),
            AppSync::Unknown => ("Unknown".to_owned(), DIM),
        };
        let message = a.error.clone().unwrap_or_else(|| a.health_reason.clone());
        rows.push(vec![
            (a.app.clone(), None),
            (a.namespace.clone(), None),
            (revision, None),
            (sync, Some(sync_style)),
            (a.health.to_string(), Some(Palette::health_style(a.health))),
            (a.objects.to_string(), None),
            (message, None),
        ]);
    }
    write_columns(out, &rows, palette)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::colour::Palette;
    use crate::status_cmd::ObjectStatus;

    fn object(kind: &str, sync: SyncStatus, health: HealthStatus, reason: &str) -> ObjectStatus {
        ObjectStatus {
            kind: kind.into(),
            group: String::new(),
            namespace: "shop".into(),
            name: "web".into(),
            sync,
            fields: Vec::new(),
            hand_fields: Vec::new(),
            health,
            health_reason: reason.into(),
            revision: String::new(),
            children: Vec::new(),
        }
    }

    fn app(name: &str, objects: Vec<ObjectStatus>, behind: Option<usize>) -> StatusReport {
        let ok = objects
            .iter()
            .all(|o| o.sync == SyncStatus::Synced && o.health == HealthStatus::Healthy);
        StatusReport {
            app: name.into(),
            namespace: name.into(),
            repo: "file:///repo".into(),
            path: format!("apps/{name}"),
            head: "b".repeat(40),
            cluster_revision: behind.map(|_| "a".repeat(40)),
            synced_at: None,
            synced_by: None,
            behind,
            objects,
            ok,
            hooks: Vec::new(),
        }
    }

    #[test]
    fn summary_counts_and_worst_health() {
        let shop = app(
            "shop",
            vec![
                object(
                    "ConfigMap",
                    SyncStatus::OutOfSync,
                    HealthStatus::Healthy,
                    "",
                ),
                object(
                    "Deployment",
                    SyncStatus::Synced,
                    HealthStatus::Progressing,
                    "1 of 2 updated",
                ),
                object(
                    "Pod",
                    SyncStatus::Extraneous,
                    HealthStatus::Degraded,
                    "CrashLoopBackOff",
                ),
            ],
            Some(2),
        );
        let line = summarize(&shop);
        assert_eq!(line.sync, AppSync::OutOfSync);
        assert_eq!(line.out_of_sync, 2);
        assert_eq!(line.objects, 2);
        assert_eq!(line.health, HealthStatus::Degraded);
        assert_eq!(line.health_reason, "Pod/web: CrashLoopBackOff");
        let never = app(
            "web",
            vec![object(
                "Deployment",
                SyncStatus::Missing,
                HealthStatus::Missing,
                "not found in the cluster",
            )],
            None,
        );
        assert_eq!(summarize(&never).sync, AppSync::Missing);
    }

    #[test]
    fn table_aligns_with_and_without_colour() {
        let report = AppsReport {
            head: "b".repeat(40),
            apps: vec![
                summarize(&app(
                    "shop",
                    vec![object(
                        "Deployment",
                        SyncStatus::OutOfSync,
                        HealthStatus::Progressing,
                        "Pod is Pending",
                    )],
                    Some(2),
                )),
                summarize(&app(
                    "web",
                    vec![object(
                        "ConfigMap",
                        SyncStatus::Synced,
                        HealthStatus::Healthy,
                        "",
                    )],
                    Some(0),
                )),
            ],
            ok: false,
        };
        let mut plain = Vec::new();
        write_apps_table(&mut plain, &report, Palette::new(false)).expect("write");
        let expected = "\
APP    NAMESPACE   REVISION                  SYNC            HEALTH        OBJECTS   MESSAGE
shop   shop        aaaaaaaaaaaa (2 behind)   OutOfSync (1)   Progressing   1         Deployment/web: Pod is Pending
web    web         aaaaaaaaaaaa              Synced          Healthy       1
";
        assert_eq!(String::from_utf8(plain).expect("utf8"), expected);
        let mut painted = Vec::new();
        write_apps_table(&mut painted, &report, Palette::new(true)).expect("write");
        let painted = String::from_utf8(painted).expect("utf8");
        assert!(
            painted.contains("\x1b[33mOutOfSync (1)\x1b[0m   "),
            "{painted:?}"
        );
        let stripped: String = anstream::adapter::strip_str(&painted).to_string();
        assert_eq!(stripped, expected);
    }
}
