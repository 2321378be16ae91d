//! `kubectl gitops diff`: the semantic difference between Git and the cluster, per object, as a
//! unified diff of YAML (live as `-`, Git as `+`, colored on a terminal only).
//!
//! Only differences that mean something are shown: the "live" side is the desired object with
//! each drifted field replaced by the cluster's value, so server defaults, status and bookkeeping
//! never appear. Fields Git does not declare but a person added by hand (owned in managedFields
//! by `kubectl-edit`, `kubectl-patch`, …) are shown too, marked as hand-made drift. Every
//! hand-made field says what `sync` does about it: undo it, or leave it to `--force-conflicts`
//! or to the app's `takeOverManagers`.

use std::io::Write;

use anyhow::Context as _;
use clap::Args;
use gitops_shared::drift::{declared_drift, without_provenance};
use gitops_shared::object::ObjectKey;
use gitops_shared::takeover::{hand_fields, HandField};
use serde_json::Value;
use similar::{ChangeTag, TextDiff};

use crate::app_state::{runtime, AppState};
use crate::cluster::ClusterArgs;
use crate::colour::{self, Palette};
use crate::exit;
use crate::source::SourceArgs;

/// Flags of `diff`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  kubectl gitops diff shop --repo https://git.example/deploy.git --revision main\n  kubectl gitops diff --path apps/web\n\nExit codes: 0 no difference, 1 difference found, 2 error (like kubectl diff)."
)]
pub struct DiffArgs {
    /// Which repository, revision and app.
    #[command(flatten)]
    pub source: SourceArgs,
    /// Which cluster.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Diff an app that renders no objects (else an error: such a render is most often a mistake).
    #[arg(long)]
    pub allow_empty: bool,
}

/// Runs `diff`.
pub fn run(args: &DiffArgs) -> anyhow::Result<u8> {
    let runtime = runtime().context("cannot start the async runtime")?;
    let state = runtime.block_on(AppState::load(&args.source, &args.cluster))?;
    state.rendered.ensure_not_empty(args.allow_empty)?;
    crate::waves::print_plan(&state)?;
    let color = crate::colour::stdout_enabled();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let differs = write_diff(&mut out, &state, color).context("cannot write to stdout")?;
    out.flush().context("cannot write to stdout")?;
    Ok(if differs { exit::DIFFERENCE } else { exit::OK })
}

/// Writes the diff of every object; true when anything differs.
pub fn write_diff(out: &mut dyn Write, state: &AppState, color: bool) -> std::io::Result<bool> {
    let mut differs = false;
    for (key, desired) in state.desired() {
        differs |= write_object_diff(out, state, &key, desired, color)?;
    }
    for (key, in_inventory) in state.extraneous() {
        differs = true;
        let why = if in_inventory {
            "in the last sync's inventory, no longer in Git: sync --prune deletes it"
        } else {
            "labelled as part of the app, not in its inventory: never pruned"
        };
        writeln!(out, "Extraneous: {key} ({why})")?;
    }
    Ok(differs)
}

/// Writes the diff of one declared object (in Git as `desired`); true when it differs. The web
/// view shows it per selected node.
pub fn write_object_diff(
    out: &mut dyn Write,
    state: &AppState,
    key: &ObjectKey,
    desired: &Value,
    color: bool,
) -> std::io::Result<bool> {
    let Some(live) = state.live.get(key) else {
        writeln!(out, "Missing: {key} (in Git, not in the cluster)")?;
        let text = gitops_shared::yaml::to_string(&without_provenance(desired));
        write_unified(out, key, "", &text, color)?;
        return Ok(true);
    };
    let fields = declared_drift(desired, live);
    let hand = hand_fields(desired, live, &state.rendered.app.take_over_managers);
    let by_hand: Vec<&HandField> = hand.iter().filter(|f| !f.declared).collect();
    if fields.is_empty() && by_hand.is_empty() {
        return Ok(false);
    }
    let git = without_provenance(desired);
    let mut cluster = git.clone();
    for field in &fields {
        set_pointer(&mut cluster, &field.pointer, field.live.clone());
    }
    let git_text = gitops_shared::yaml::to_string(&git);
    let mut cluster_text = gitops_shared::yaml::to_string(&cluster);
    if !by_hand.is_empty() {
        // Hand-made fields have no place in Git's YAML: they show as lines only the cluster has.
        cluster_text.push_str(&hand_lines(&by_hand));
    }
    for field in &fields {
        if let Some(n) = field.duplicates {
            writeln!(
                out,
                "# {key}: {} is held by {n} entries in the cluster; a list may hold one entry per key",
                field.path
            )?;
            continue;
        }
        let live = field
            .live
            .as_ref()
            .map_or("<absent>".to_owned(), Value::to_string);
        let owner = hand
            .iter()
            .find(|h| h.declared && h.path == field.path)
            .map(|h| format!(" — set by {}; {}", h.manager, h.plan()))
            .unwrap_or_default();
        writeln!(
            out,
            "# {key}: {} is {live} in the cluster, {} in Git{owner}",
            field.path, field.desired
        )?;
    }
    for drift in &by_hand {
        let live = drift
            .live
            .as_ref()
            .map_or("<absent>".to_owned(), Value::to_string);
        writeln!(
            out,
            "# {key}: {} = {live} was set by hand ({}), Git does not declare it — {}",
            drift.path,
            drift.manager,
            drift.plan()
        )?;
    }
    write_unified(out, key, &cluster_text, &git_text, color)?;
    Ok(true)
}

fn hand_lines(drift: &[&HandField]) -> String {
    let mut text = String::from("# fields set by hand, not declared in Git:\n");
    for d in drift {
        let live = d
            .live
            .as_ref()
            .map_or("<absent>".to_owned(), Value::to_string);
        text.push_str(&format!("# {}: {live}  (by {})\n", d.path, d.manager));
    }
    text
}

/// Sets (or removes, for `None`) the value at an RFC 6901 pointer, creating maps on the way.
fn set_pointer(target: &mut Value, pointer: &str, value: Option<Value>) {
    let tokens: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect();
    let Some((last, parents)) = tokens.split_last() else {
        if let Some(value) = value {
            *target = value;
        }
        return;
    };
    let mut at = target;
    for token in parents {
        at = match at {
            Value::Object(map) => map
                .entry(token.clone())
                .or_insert_with(|| Value::Object(Default::default())),
            Value::Array(items) => match token.parse::<usize>().ok().and_then(|i| items.get_mut(i))
            {
                Some(item) => item,
                None => return,
            },
            _ => return,
        };
    }
    match (at, value) {
        (Value::Object(map), Some(value)) => {
            map.insert(last.clone(), value);
        }
        (Value::Object(map), None) => {
            map.remove(last);
        }
        (Value::Array(items), value) => {
            if let Some(i) = last.parse::<usize>().ok().filter(|i| *i < items.len()) {
                match value {
                    Some(value) => items[i] = value,
                    None => {
                        items.remove(i);
                    }
                }
            }
        }
        _ => {}
    }
}

fn write_unified(
    out: &mut dyn Write,
    key: &ObjectKey,
    live: &str,
    git: &str,
    color: bool,
) -> std::io::Result<()> {
    let diff = TextDiff::from_lines(live, git);
    let palette = Palette::new(color);
    writeln!(
        out,
        "{}",
        palette.paint(colour::HEADING, &format!("--- live/{key}"))
    )?;
    writeln!(
        out,
        "{}",
        palette.paint(colour::HEADING, &format!("+++ git/{key}"))
    )?;
    for hunk in diff.unified_diff().context_radius(3).iter_hunks() {
        writeln!(
            out,
            "{}",
            palette.paint(colour::HUNK, &hunk.header().to_string())
        )?;
        for change in hunk.iter_changes() {
            let (sign, style) = match change.tag() {
                ChangeTag::Delete => ('-', Some(colour::REMOVED)),
                ChangeTag::Insert => ('+', Some(colour::ADDED)),
                ChangeTag::Equal => (' ', None),
            };
            let text = change.value();
            let newline = if text.ends_with('\n') { "" } else { "\n" };
            match style.filter(|_| palette.enabled()) {
                None => write!(out, "{sign}{text}{newline}")?,
                Some(style) => writeln!(
                    out,
                    "{}",
                    palette.paint(style, &format!("{sign}{}", text.trim_end_matches('\n')))
                )?,
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pointer_edits() {
        let mut v = json!({"spec": {"containers": [{"name": "a", "image": "x"}]}});
        set_pointer(&mut v, "/spec/containers/0/image", Some(json!("y")));
        set_pointer(&mut v, "/spec/replicas", Some(json!(3)));
        set_pointer(&mut v, "/data/a~1b", None);
        assert_eq!(
            v,
            json!({"spec": {"containers": [{"name": "a", "image": "y"}], "replicas": 3}, "data": {}})
        );
    }

    #[test]
    fn unified_diff_shows_only_the_changed_line() {
        let mut out = Vec::new();
        let key = ObjectKey {
            group: String::new(),
            kind: "ConfigMap".into(),
            namespace: "ns".into(),
            name: "c".into(),
        };
        write_unified(
            &mut out,
            &key,
            "data:\n  a: '1'\n  b: '2'\n",
            "data:\n  a: '1'\n  b: '3'\n",
            false,
        )
        .expect("write");
        let text = String::from_utf8(out).expect("utf8");
        assert!(text.contains("-  b: '2'\n+  b: '3'\n"), "{text}");
        assert!(!text.contains('\x1b'), "no color when not a terminal");
    }
}
