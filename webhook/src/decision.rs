//! The admission decision: a pure function of the request, the configuration and the facts Git
//! gives (where a commit is, what it renders to). No I/O happens here; [`GitFacts`] is the only
//! window onto Git, so tests feed it renders of real repositories and the server feeds it the
//! mirrors and the render cache.
//!
//! One file per rule group under `decision/`: `scale.rs` (7), `delete.rs` (5), `write.rs` for
//! creates and updates, with `revisions.rs` (3) and `ownership.rs` (2); [`crate::fields`] (4, what a write adds and who
//! owns it), [`crate::inventory`] (6), [`crate::denial`] (every refusal's sentence).
//!
//! The rules of DESIGN.md, in the order they apply: status subresources pass; exempt identities
//! pass, whatever labels they copied (0); break-glass members pass with a warning; the scale
//! subresource is checked against the branch heads' index, or against the parent the server read
//! from the API server when the index does not know it (7); DELETE needs a branch head fetched
//! after the request arrived not to declare the object (5); unmanaged objects pass except when
//! created in a Git-only namespace (1); the claimed repository, commit and branch must check out
//! (an unknown commit waits for a fresh fetch within the deadline) and revisions only move
//! forward (3); Git's head binds the object to the claimed app and path, and a create needs the
//! head to declare it (2); every declared field must equal the object, and a person may not
//! change what Git does not declare (4). Dry-runs get the same answer (8).

mod delete;
mod hooks;
mod ownership;
mod revisions;
mod scale;
mod write;

use delete::{decide_delete, decide_delete_of};
use scale::decide_scale;
pub use scale::scale_parent_to_read;
use write::decide_write;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use gitops_shared::compare::{compare, duplicate_keys};
use gitops_shared::git::normalize_path;
use gitops_shared::object::ObjectKey;
use gitops_shared::provenance::{is_managed, Provenance, FIELD_MANAGER};

use crate::config::{Config, RevisionMode};
use crate::declared::undeclared_changes;
pub use crate::denial::Denial;
use crate::fields::{
    gained_foreign_ownership, only_field_ownership_changed, unexplained_new_fields,
};
use crate::inventory;
use crate::mirror::Freshness;
use crate::review::{AdmissionRequest, Operation, Peek, Verdict};

/// What a commit of an app declares, by object.
#[derive(Debug, Clone, Default)]
pub struct Desired {
    /// The full commit rendered.
    pub commit: String,
    /// The app rendered.
    pub app: String,
    /// The app's folder, normalised.
    pub path: String,
    /// True when the app is listed in the commit's `gitops.yaml`; false for a folder app, whose
    /// namespace came from the command line and so cannot be verified from Git.
    pub from_app_file: bool,
    /// Each object as rendered and stamped.
    pub objects: HashMap<ObjectKey, Value>,
}

/// The app an object claims to come from, and the namespace a folder app is rendered for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AppClaim {
    /// The app label.
    pub app: String,
    /// The path annotation.
    pub path: String,
    /// For folder apps (not in `gitops.yaml`) the namespace is not in Git; the plugin renders
    /// them for the namespace they were synced to, so the webhook renders them for the incoming
    /// object's own namespace.
    pub folder_namespace: String,
}

/// Where a commit stands relative to a trusted repository's tracked branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitPlace {
    /// Reachable from the tracked branch.
    OnBranch,
    /// In the mirror but not reachable from the tracked branch, after a fetch.
    NotOnBranch,
    /// Not in the mirror; whether a fetch since the request arrived could change that.
    Unknown(Freshness),
}

/// When a review arrived and when its answer is due. A fact that needs a fresher view of Git
/// (an unknown commit, a DELETE the head still declares) counts only a fetch that started after
/// `arrived`, and waits for one no later than `until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// When the review arrived.
    pub arrived: Instant,
    /// When the answer is due.
    pub until: Instant,
}

impl Window {
    /// A review arriving now with `deadline` to answer.
    pub fn starting_now(deadline: Duration) -> Window {
        Window::starting_at(Instant::now(), deadline)
    }

    /// A review that arrived at `arrived` with `deadline` to answer.
    pub fn starting_at(arrived: Instant, deadline: Duration) -> Window {
        Window {
            arrived,
            until: arrived + deadline,
        }
    }
}

/// Why a fact could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FactError {
    /// The app (its folder or app file entry) does not exist at that commit.
    #[error("{0}")]
    AppGone(String),
    /// Anything else (render error, Git error, timeout).
    #[error("{0}")]
    Failed(String),
}

/// What a tracked branch's head declares for one object.
#[derive(Debug, Clone)]
pub struct HeadDeclaration {
    /// The repository.
    pub repo: String,
    /// The tracked branch.
    pub branch: String,
    /// The head commit.
    pub commit: String,
    /// The app declaring it.
    pub app: String,
    /// The app's folder.
    pub path: String,
    /// The object as rendered.
    pub object: Arc<Value>,
}

/// A scale subresource's parent as the API server holds it, read by the server because the head
/// index does not know the parent (a folder app's object, or an unmanaged one). A Scale carries
/// no labels, so only the parent says whether it is managed.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveParent {
    /// The API server has no such object: there is nothing to protect.
    Absent,
    /// The parent as read.
    Found(Value),
    /// Reading it failed (network, RBAC, timeout); why, as one clause.
    Unreadable(String),
}

/// What the server read from the API server before deciding, because Git alone cannot say.
/// Tests build it by hand; [`Live::default`] is "nothing read".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Live {
    /// A scale's or an eviction's parent (see [`scale_parent_to_read`]).
    pub parent: Option<LiveParent>,
    /// The members an inventory write drops, as read (see
    /// [`crate::inventory::dropped_members_to_read`]); `None` when nothing was read (no API
    /// access).
    pub dropped_members: Option<std::collections::BTreeMap<ObjectKey, LiveParent>>,
}

/// Where a scale request's parent lives, for reading it from the API server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleParentRef {
    /// API group of the parent, empty for core.
    pub group: String,
    /// Version of the parent's resource, as the request addressed it.
    pub version: String,
    /// Plural resource (`deployments`).
    pub resource: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl std::fmt::Display for ScaleParentRef {
    /// `deployments/web in shop`, the way a person names it on the command line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.resource, self.name)?;
        if !self.namespace.is_empty() {
            write!(f, " in {}", self.namespace)?;
        }
        Ok(())
    }
}

/// The provenance an object claims, with its repository named by the trusted entry's URL (the
/// identity the mirror and the head index use), whichever alias the object spells; `None` for
/// an untrusted repository or no claim.
fn trusted_claim(object: &Value, config: &Config) -> Option<Provenance> {
    let mut claim = Provenance::of(object)?;
    claim.repo = config.repository(&claim.repo)?.url.clone();
    Some(claim)
}

/// `object` with its repository annotation spelled `repo`, so a claim made under an alias
/// compares with what Git renders under the repository's URL.
fn spelled_as(object: &Value, repo: &str) -> Value {
    let mut object = object.clone();
    if let Some(annotations) = object
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.insert(
            gitops_shared::provenance::REPO_ANNOTATION.to_owned(),
            Value::from(repo),
        );
    }
    object
}

/// True for `kubectl drain`'s and the like's request to evict a Pod (`pods/eviction`, CREATE).
fn is_eviction<O>(request: &AdmissionRequest<O>) -> bool {
    request.sub_resource.as_deref() == Some("eviction")
        && request.operation == Operation::Create
        && request.resource.resource == "pods"
}

/// Facts about Git the decision needs. The server answers from its mirrors (fetching once on a
/// miss) and its render cache; tests answer from real repositories.
pub trait GitFacts {
    /// Where `commit` stands relative to `repo`'s tracked branch. A commit the mirror does not
    /// hold, or holds off the branch, is looked for again after a fetch that started within
    /// `window`.
    fn locate(&self, repo: &str, commit: &str, window: Window) -> Result<CommitPlace, FactError>;
    /// The tracked branch's head commit of `repo`.
    fn head(&self, repo: &str) -> Result<String, FactError>;
    /// True when `ancestor` is `descendant` or one of its ancestors.
    fn is_ancestor(&self, repo: &str, ancestor: &str, descendant: &str) -> Result<bool, FactError>;
    /// What `claim` renders to at `commit` of `repo`.
    fn render(&self, repo: &str, commit: &str, claim: &AppClaim)
        -> Result<Arc<Desired>, FactError>;
    /// The branch heads' declaration of `key`, from the index of app-file apps.
    fn head_declaration(&self, key: &ObjectKey) -> Option<HeadDeclaration>;
    /// Every app of a trusted branch head's `gitops.yaml` that declares `key`: Git's binding
    /// of the object to its app (one owner), or a conflict (several), or none.
    fn owners(&self, key: &ObjectKey) -> Vec<HeadDeclaration>;
    /// The branch heads' declaration of a scale subresource's parent, addressed by the request's
    /// resource (group and plural) since a Scale carries no kind of its parent.
    fn scale_parent(
        &self,
        group: &str,
        resource: &str,
        namespace: &str,
        name: &str,
    ) -> Option<HeadDeclaration>;
    /// Makes sure `repo` was fetched after the review arrived (joining a fetch under way,
    /// waiting for the rate limit within the window) and brings the head index up to date.
    fn refresh_head(&self, _repo: &str, _window: Window) -> Result<Freshness, FactError> {
        Ok(Freshness::NotFetched(
            "this webhook keeps no mirror".to_owned(),
        ))
    }
    /// Decides from what is already in memory, without any Git or disk access, so the server can
    /// answer on its event loop; `None` when some fact is not in memory (the server then decides
    /// on a blocking thread).
    fn decide_in_memory(&self, _request: &AdmissionRequest, _config: &Config) -> Option<Decision> {
        None
    }
}

/// How the decision came out, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Allowed; the reason.
    Allowed(&'static str),
    /// Denied; the [`Denial`] variant's name.
    Denied(&'static str),
    /// Would have been denied; allowed for a break-glass member.
    BreakGlass,
}

impl Outcome {
    /// The `reason` label: the [`Denial`] variant's name, the allow reason, or the refusal that
    /// break glass overrode (in the decision's message).
    pub fn reason(self) -> &'static str {
        match self {
            Outcome::Allowed(reason) | Outcome::Denied(reason) => reason,
            Outcome::BreakGlass => "BreakGlass",
        }
    }

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Allowed(_) => "allowed",
            Outcome::Denied(_) => "denied",
            Outcome::BreakGlass => "break-glass",
        }
    }
}

/// A decision: the verdict for the API server and how it came about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// What the API server is told.
    pub verdict: Verdict,
    /// Why.
    pub outcome: Outcome,
    /// The refusal, when denied (or allowed for break glass).
    pub denial: Option<Denial>,
}

impl Decision {
    /// An allowance, and why (the `reason` label).
    pub(crate) fn allow(reason: &'static str) -> Decision {
        Decision {
            verdict: Verdict {
                allowed: true,
                message: None,
                warnings: Vec::new(),
            },
            outcome: Outcome::Allowed(reason),
            denial: None,
        }
    }

    /// A refusal: its sentence for the API server, its variant for metrics and tests.
    pub fn deny(denial: Denial) -> Decision {
        Decision {
            verdict: Verdict {
                allowed: false,
                message: Some(denial.to_string()),
                warnings: Vec::new(),
            },
            outcome: Outcome::Denied(denial.reason()),
            denial: Some(denial),
        }
    }

    /// True when allowed (break-glass included).
    pub fn allowed(&self) -> bool {
        self.verdict.allowed
    }

    /// The denial's message, or the break-glass warning's.
    pub fn message(&self) -> &str {
        self.verdict.message.as_deref().unwrap_or_default()
    }
}

/// Decides one admission request arriving now.
pub fn decide(request: &AdmissionRequest, config: &Config, facts: &dyn GitFacts) -> Decision {
    let window = Window::starting_now(config.decision_deadline);
    decide_within(request, config, facts, &Live::default(), window)
}

/// [`decide`] for a review that arrived at the start of `window`, with what the server read
/// from the API server because Git cannot say: a scale's parent the head index does not know
/// (see [`scale_parent_to_read`]), the members an inventory write drops. What was read is one
/// more input: the decision stays a function of what it is given.
pub fn decide_within(
    request: &AdmissionRequest,
    config: &Config,
    facts: &dyn GitFacts,
    live: &Live,
    window: Window,
) -> Decision {
    let (new, old) = (
        Peek::of(request.object.as_ref()),
        Peek::of(request.old_object.as_ref()),
    );
    if let Some(decision) = decide_from_peeks(request, new, old, config) {
        return decision;
    }
    let decision = evaluate(request, config, facts, live, window);
    let user = &request.user_info;
    if !decision.allowed() && user.groups.contains(&config.break_glass_group) {
        let warning = format!(
            "break-glass by {}: {} The object is OutOfSync until Git catches up.",
            user.username,
            decision.message()
        );
        return Decision {
            verdict: Verdict {
                allowed: true,
                message: Some(warning.clone()),
                warnings: vec![warning],
            },
            outcome: Outcome::BreakGlass,
            denial: decision.denial,
        };
    }
    decision
}

/// The decision for a review about objects without the managed-by label, from the two peeks
/// alone (see [`crate::review::RawObject`]): most reviews in a cluster are about objects no app
/// manages, and answering them needs no tree. `None` when the objects must be read: one of them
/// is managed, a scale (whose parent says), or a create where Git-only namespaces are configured.
/// [`decide`] starts with this same function, so both paths answer alike.
pub fn decide_from_peeks<O>(
    request: &AdmissionRequest<O>,
    new: Peek,
    old: Peek,
    config: &Config,
) -> Option<Decision> {
    if request.operation == Operation::Connect {
        return Some(Decision::allow("connect"));
    }
    match request.sub_resource.as_deref() {
        Some("status") => return Some(Decision::allow("status")),
        Some("scale") => return None,
        _ if is_eviction(request) => return None,
        _ => {}
    }
    // An HPA scales its target through the exempt HPA controller: who may point one at a
    // managed object is decided on the object.
    let autoscaler = request.kind.group == "autoscaling"
        && request.kind.kind == "HorizontalPodAutoscaler"
        && matches!(request.operation, Operation::Create | Operation::Update);
    match request.operation {
        _ if autoscaler && new.present => None,
        Operation::Delete if !old.present => Some(Decision::allow("delete without oldObject")),
        Operation::Delete if !old.maybe_managed => Some(Decision::allow("unmanaged")),
        Operation::Delete => None,
        Operation::Create | Operation::Update if !new.present => Some(Decision::allow("no object")),
        Operation::Update if new.maybe_managed || old.maybe_managed => None,
        Operation::Create if new.maybe_managed || !config.git_only_namespaces.is_empty() => None,
        _ => Some(Decision::allow("unmanaged")),
    }
}

fn evaluate(
    request: &AdmissionRequest,
    config: &Config,
    facts: &dyn GitFacts,
    live: &Live,
    window: Window,
) -> Decision {
    let live_parent = live.parent.as_ref();
    // Identity first: the control plane's controllers write objects they derive from managed
    // ones (an EndpointSlice copying a Service's labels, a ReplicaSet from a Deployment) and are
    // trusted by who they are, never asked for provenance.
    if config.is_exempt(&request.user_info.username, &request.user_info.groups) {
        return Decision::allow("exempt identity");
    }
    if request.sub_resource.as_deref() == Some("scale") {
        return decide_scale(request, config, facts, live_parent);
    }
    if is_eviction(request) {
        // Evicting a Pod deletes it: judged like a DELETE of the Pod as read.
        return match live_parent {
            None => Decision::allow("eviction without API access"),
            Some(LiveParent::Absent) => Decision::allow("eviction of a Pod that does not exist"),
            Some(LiveParent::Unreadable(reason)) => Decision::deny(Denial::ScaleParentUnreadable {
                target: format!("pods/{} in {}", request.name, request.namespace),
                reason: reason.clone(),
            }),
            Some(LiveParent::Found(pod)) => decide_delete_of(request, pod, config, facts, window),
        };
    }
    match request.operation {
        Operation::Delete => decide_delete(request, config, facts, window),
        Operation::Create | Operation::Update => decide_write(
            request,
            config,
            facts,
            window,
            live.dropped_members.as_ref(),
        ),
        Operation::Connect => Decision::allow("connect"),
    }
}

/// The managed object an unmanaged HorizontalPodAutoscaler targets, if any: its
/// `scaleTargetRef` in the HPA's namespace, looked up in the branch heads' index.
fn managed_scale_target(
    object: &Value,
    key: &ObjectKey,
    facts: &dyn GitFacts,
) -> Option<ObjectKey> {
    if key.group != "autoscaling" || key.kind != "HorizontalPodAutoscaler" {
        return None;
    }
    let target = object.pointer("/spec/scaleTargetRef")?;
    let api_version = target
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
    let target = ObjectKey {
        group: group.to_owned(),
        kind: target.get("kind").and_then(Value::as_str)?.to_owned(),
        namespace: key.namespace.clone(),
        name: target.get("name").and_then(Value::as_str)?.to_owned(),
    };
    facts.head_declaration(&target).map(|_| target)
}

/// A value for a sentence: strings bare, others as JSON, absence as "absent"; long values are
/// cut so the sentence stays readable.
fn shown(value: Option<&Value>) -> String {
    const MAX: usize = 100;
    let text = match value {
        None | Some(Value::Null) => return "absent".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    if text.chars().count() <= MAX {
        return text;
    }
    let cut: String = text.chars().take(MAX).collect();
    format!("{cut}…")
}

/// True for a field whose value no message may show: a Secret's `data` and `stringData`. A
/// denial quoting Git's value would let anyone with `edit` guess a secret by dry-runs.
fn is_secret_value(key: &ObjectKey, path: &str) -> bool {
    key.group.is_empty()
        && key.kind == "Secret"
        && ["data", "stringData"].iter().any(|field| {
            path.strip_prefix(field)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
        })
}

/// [`shown`], or "(hidden)" for a Secret's values.
fn shown_for(key: &ObjectKey, path: &str, value: Option<&Value>) -> String {
    if is_secret_value(key, path) {
        "(a Secret value, not shown)".to_owned()
    } else {
        shown(value)
    }
}

/// The object's key, taking the name from the request when the object has none.
fn key_of(object: &Value, request: &AdmissionRequest) -> ObjectKey {
    ObjectKey::of(object).unwrap_or_else(|| ObjectKey {
        group: request.kind.group.clone(),
        kind: request.kind.kind.clone(),
        namespace: request.namespace.clone(),
        name: request.name.clone(),
    })
}
