//! `kubectl gitops status`: the app's revision in the cluster against the branch head, then one
//! row per object with its sync status, health and the commit it was last applied from; with
//! `--tree`, the live objects the cluster made from each; with no app, every app of gitops.yaml
//! one line each; with `--watch`, all of it again whenever the cluster changes.

use std::collections::BTreeSet;
use std::io::{IsTerminal as _, Write};

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
use crate::colour::{self, Palette};
use crate::exit;
use crate::source::SourceArgs;
use crate::status::apps::{apps_report, load_all, write_apps_table, AppsReport};
use crate::status::tree::{read_pool, LiveNode};
use crate::status::watch::{collections, next_change, Collection, Watches};

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
    after_help = "Examples:\n  kubectl gitops status shop --repo https://git.example/deploy.git --revision main\n  kubectl gitops status --path apps/web -o json\n  kubectl gitops status --all            # every app of gitops.yaml, one line each\n  kubectl gitops status shop --tree --watch\n\nWith no app and no --path, every app is shown when gitops.yaml lists several (its only app when it lists one).\n\nExit codes: 0 synced and healthy (every app, for --all), 1 otherwise, 2 error."
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
    /// Every app of gitops.yaml at the revision, one line each.
    #[arg(long, conflicts_with_all = ["app", "path", "tree"])]
    pub all: bool,
    /// Under each object, the live objects it owns (ReplicaSets, Pods, Jobs, EndpointSlices).
    #[arg(long)]
    pub tree: bool,
    /// Show it again whenever the cluster changes (API watches), until Ctrl-C. On a terminal the
    /// screen is redrawn; otherwise a line is printed per change.
    #[arg(short, long)]
    pub watch: bool,
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
    /// The live objects it owns (with `--tree`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<crate::status::tree::LiveNode>,
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
    runtime.block_on(status(args))
}

/// What one look at the cluster shows: every app, or one app (with its tree when asked).
enum View {
    Apps(AppsReport),
    App(Box<StatusReport>),
}

impl View {
    fn ok(&self) -> bool {
        match self {
            View::Apps(report) => report.ok,
            View::App(report) => report.ok,
        }
    }
}

/// Looks once: loads the states and builds the view; also says what to watch.
async fn look(
    args: &StatusArgs,
    all: bool,
    client: &kube::Client,
    namespace: &str,
) -> anyhow::Result<(View, BTreeSet<Collection>)> {
    let mut wanted = BTreeSet::new();
    if all {
        let (head, states) = load_all(&args.source, client, namespace).await?;
        for state in states.iter().flatten() {
            wanted.extend(collections(state));
        }
        return Ok((View::Apps(apps_report(head, &states)), wanted));
    }
    let resolved = args.source.resolve()?;
    let state = AppState::load_with(resolved, client.clone(), namespace).await?;
    let mut report = report(&state);
    if args.tree {
        attach_tree(&mut report, &state).await?;
    }
    wanted.extend(collections(&state));
    Ok((View::App(Box::new(report)), wanted))
}

/// Fills each object's `children` with the live objects it owns.
pub async fn attach_tree(
    report: &mut StatusReport,
    state: &AppState,
) -> Result<(), crate::cluster::ClusterError> {
    let pool = read_pool(state).await?;
    let mut seen = std::collections::HashSet::new();
    for row in &mut report.objects {
        let key = gitops_shared::object::ObjectKey {
            group: row.group.clone(),
            kind: row.kind.clone(),
            namespace: row.namespace.clone(),
            name: row.name.clone(),
        };
        if let Some(live) = state.live.get(&key) {
            row.children = crate::status::tree::children(live, &pool, &mut seen, 0);
        }
    }
    Ok(())
}

/// Whether `status` shows every app: `--all`, or no app and no `--path` with a gitops.yaml that
/// lists several (a single-app repository keeps its one-app view, as before).
fn wants_all(args: &StatusArgs) -> anyhow::Result<bool> {
    if args.all {
        return Ok(true);
    }
    if args.source.app.is_some() || args.source.path.is_some() || args.tree {
        return Ok(false);
    }
    let resolved = args.source.resolve_all();
    Ok(matches!(resolved, Ok(apps) if apps.len() > 1))
}

fn write_view(
    out: &mut dyn Write,
    view: &View,
    format: StatusFormat,
    palette: Palette,
) -> std::io::Result<()> {
    match (format, view) {
        (StatusFormat::Table, View::Apps(report)) => write_apps_table(out, report, palette),
        (StatusFormat::Table, View::App(report))
            if report.objects.iter().any(|o| !o.children.is_empty()) =>
        {
            write_tree(out, report, palette)
        }
        (StatusFormat::Table, View::App(report)) => write_table(out, report, palette),
        (StatusFormat::Json, View::Apps(report)) => json_to(out, report),
        (StatusFormat::Json, View::App(report)) => json_to(out, report),
        (StatusFormat::Yaml, View::Apps(report)) => yaml_to(out, report),
        (StatusFormat::Yaml, View::App(report)) => yaml_to(out, report),
    }
}

fn json_to(out: &mut dyn Write, value: &impl Serialize) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(std::io::Error::other)?;
    out.write_all(b"\n")
}

fn yaml_to(out: &mut dyn Write, value: &impl Serialize) -> std::io::Result<()> {
    let value = serde_json::to_value(value).map_err(std::io::Error::other)?;
    out.write_all(gitops_shared::yaml::to_string(&value).as_bytes())
}

async fn status(args: &StatusArgs) -> anyhow::Result<u8> {
    let all = wants_all(args)?;
    let (client, namespace) = args.cluster.connect().await?;
    let palette = Palette::stdout();
    let (view, wanted) = look(args, all, &client, &namespace).await?;
    if !args.watch {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        write_view(&mut out, &view, args.output, palette).context("cannot write to stdout")?;
        out.flush().context("cannot write to stdout")?;
        return Ok(if view.ok() {
            exit::OK
        } else {
            exit::DIFFERENCE
        });
    }
    watch_loop(args, all, &client, &namespace, view, wanted, palette).await
}

/// `--watch`: redraw (a terminal) or print what changed (anything else) on every change the
/// watches report, until the process is interrupted.
async fn watch_loop(
    args: &StatusArgs,
    all: bool,
    client: &kube::Client,
    namespace: &str,
    mut view: View,
    mut wanted: BTreeSet<Collection>,
    palette: Palette,
) -> anyhow::Result<u8> {
    let terminal = std::io::stdout().is_terminal() && args.output == StatusFormat::Table;
    let (sender, mut changes) = tokio::sync::watch::channel(0u64);
    let mut watches = Watches::new(client.clone(), sender);
    let mut before: Vec<String> = Vec::new();
    loop {
        watches.ensure(&wanted);
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        if terminal || args.output != StatusFormat::Table {
            if terminal {
                // Clear the screen and home the cursor: the view is drawn afresh.
                out.write_all(b"\x1b[2J\x1b[H")
                    .context("cannot write to stdout")?;
            } else if args.output == StatusFormat::Yaml && !before.is_empty() {
                out.write_all(b"---\n").context("cannot write to stdout")?;
            }
            write_view(&mut out, &view, args.output, palette).context("cannot write to stdout")?;
            before = vec![String::new()];
        } else {
            let now = change_lines(&view);
            let stamp = crate::inventory::now_rfc3339();
            if before.is_empty() {
                write_view(&mut out, &view, args.output, palette)
                    .context("cannot write to stdout")?;
            } else {
                let old: BTreeSet<&String> = before.iter().collect();
                for line in now.iter().filter(|l| !old.contains(l)) {
                    writeln!(out, "{stamp} {line}").context("cannot write to stdout")?;
                }
                let new: BTreeSet<&String> = now.iter().collect();
                for line in before.iter().filter(|l| !new.contains(l)) {
                    if let Some((what, _)) = line.split_once(' ') {
                        if !now.iter().any(|l| l.starts_with(&format!("{what} "))) {
                            writeln!(out, "{stamp} {what} gone")
                                .context("cannot write to stdout")?;
                        }
                    }
                }
            }
            before = now;
        }
        out.flush().context("cannot write to stdout")?;
        drop(out);
        if !next_change(&mut changes).await {
            return Ok(if view.ok() {
                exit::OK
            } else {
                exit::DIFFERENCE
            });
        }
        match look(args, all, client, namespace).await {
            Ok((next, next_wanted)) => {
                view = next;
                wanted = next_wanted;
            }
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), "cannot read the state; waiting for the next change")
            }
        }
    }
}

/// One line per thing shown, `what state`, for printing what changed on a non-terminal.
fn change_lines(view: &View) -> Vec<String> {
    let mut lines = Vec::new();
    match view {
        View::Apps(report) => {
            for a in &report.apps {
                lines.push(format!(
                    "app/{} {:?} {} {}{}",
                    a.app,
                    a.sync,
                    a.health,
                    a.cluster_revision.as_deref().map(short).unwrap_or("-"),
                    if a.health_reason.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", a.health_reason)
                    }
                ));
            }
        }
        View::App(report) => {
            fn walk(lines: &mut Vec<String>, nodes: &[crate::status::tree::LiveNode]) {
                for n in nodes {
                    lines.push(format!(
                        "{}/{} {}{}",
                        n.kind,
                        n.name,
                        n.health,
                        if n.health_reason.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", n.health_reason)
                        }
                    ));
                    walk(lines, &n.children);
                }
            }
            for o in &report.objects {
                lines.push(format!(
                    "{}/{} {:?} {}{}",
                    o.kind,
                    o.name,
                    o.sync,
                    o.health,
                    if o.health_reason.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", o.health_reason)
                    }
                ));
                walk(&mut lines, &o.children);
            }
        }
    }
    lines
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
                children: Vec::new(),
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
                    children: Vec::new(),
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
            children: Vec::new(),
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

/// A commit as the tables show it.
pub fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

/// A table cell: its text and, when it is a state, its colour.
pub type Cell = (String, Option<anstyle::Style>);

/// Writes rows in aligned columns, the last one unpadded; the first row is the heading. Widths
/// are measured on the plain text, so colour never breaks alignment.
pub fn write_columns(
    out: &mut dyn Write,
    rows: &[Vec<Cell>],
    palette: Palette,
) -> std::io::Result<()> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; columns];
    for row in rows {
        for (i, (cell, _)) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    for (r, row) in rows.iter().enumerate() {
        let mut line = String::new();
        for (i, (cell, style)) in row.iter().enumerate() {
            let style = if r == 0 {
                Some(colour::HEADING)
            } else {
                *style
            };
            let painted = match style {
                Some(style) if !cell.is_empty() => palette.paint(style, cell),
                _ => cell.clone(),
            };
            line.push_str(&painted);
            if i + 1 < row.len() {
                let pad = widths[i] - cell.chars().count() + 3;
                line.push_str(&" ".repeat(pad));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

fn sync_cell(sync: SyncStatus) -> Cell {
    let (text, style) = match sync {
        SyncStatus::Synced => ("Synced", colour::GOOD),
        SyncStatus::OutOfSync => ("OutOfSync", colour::WARN),
        SyncStatus::Missing => ("Missing", colour::BAD),
        SyncStatus::Extraneous => ("Extraneous", colour::WARN),
    };
    (text.to_owned(), Some(style))
}

fn health_cell(health: HealthStatus) -> Cell {
    (health.to_string(), Some(Palette::health_style(health)))
}

fn plain(text: impl Into<String>) -> Cell {
    (text.into(), None)
}

fn write_header(out: &mut dyn Write, report: &StatusReport) -> std::io::Result<()> {
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
    writeln!(out)
}

fn message_of(o: &ObjectStatus) -> String {
    let mut message = Vec::new();
    if !o.fields.is_empty() {
        message.push(format!("differs: {}", o.fields.join(", ")));
    }
    if !o.health_reason.is_empty() && o.health != HealthStatus::Healthy {
        message.push(o.health_reason.clone());
    }
    message.join("; ")
}

fn or_dash(text: &str) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        text.to_owned()
    }
}

/// The table, like kubectl's: the header, then aligned columns.
pub fn write_table(
    out: &mut dyn Write,
    report: &StatusReport,
    palette: Palette,
) -> std::io::Result<()> {
    write_header(out, report)?;
    let mut rows: Vec<Vec<Cell>> = vec![[
        "KIND",
        "NAMESPACE",
        "NAME",
        "SYNC",
        "HEALTH",
        "REVISION",
        "MESSAGE",
    ]
    .into_iter()
    .map(plain)
    .collect()];
    for o in &report.objects {
        rows.push(vec![
            plain(o.kind.clone()),
            plain(or_dash(&o.namespace)),
            plain(o.name.clone()),
            sync_cell(o.sync),
            health_cell(o.health),
            plain(or_dash(short(&o.revision))),
            plain(message_of(o)),
        ]);
    }
    write_columns(out, &rows, palette)
}

/// The tree: each Git object, then the live objects it owns, indented with tree lines.
pub fn write_tree(
    out: &mut dyn Write,
    report: &StatusReport,
    palette: Palette,
) -> std::io::Result<()> {
    fn walk(rows: &mut Vec<Vec<Cell>>, nodes: &[LiveNode], prefix: &str) {
        for (i, n) in nodes.iter().enumerate() {
            let last = i + 1 == nodes.len();
            let branch = if last { "└─ " } else { "├─ " };
            rows.push(vec![
                plain(format!("{prefix}{branch}{}/{}", n.kind, n.name)),
                plain(""),
                health_cell(n.health),
                plain(""),
                plain(if n.health == HealthStatus::Healthy {
                    String::new()
                } else {
                    n.health_reason.clone()
                }),
            ]);
            let deeper = format!("{prefix}{}", if last { "   " } else { "│  " });
            walk(rows, &n.children, &deeper);
        }
    }
    write_header(out, report)?;
    let mut rows: Vec<Vec<Cell>> = vec![["OBJECT", "SYNC", "HEALTH", "REVISION", "MESSAGE"]
        .into_iter()
        .map(plain)
        .collect()];
    for o in &report.objects {
        rows.push(vec![
            plain(format!("{}/{}", o.kind, o.name)),
            sync_cell(o.sync),
            health_cell(o.health),
            plain(or_dash(short(&o.revision))),
            plain(message_of(o)),
        ]);
        walk(&mut rows, &o.children, "");
    }
    write_columns(out, &rows, palette)
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
            children: Vec::new(),
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
        write_table(&mut out, &report, Palette::new(false)).expect("write");
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
