//! The admission decision: a pure function of the request, the configuration and the facts Git
//! gives (where a commit is, what it renders to). No I/O happens here; [`GitFacts`] is the only
//! window onto Git, so tests feed it renders of real repositories and the server feeds it the
//! mirrors and the render cache.
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

/// The parent a scale request addresses when the decision would consult the API server for it:
/// an UPDATE of the `scale` subresource that changes `spec.replicas` of a parent the head index
/// does not know. `None` otherwise, so the server reads nothing for every other request.
pub fn scale_parent_to_read(
    request: &AdmissionRequest,
    facts: &dyn GitFacts,
) -> Option<ScaleParentRef> {
    if is_eviction(request) {
        // An Eviction names its Pod and carries none of its labels: the Pod says.
        return Some(ScaleParentRef {
            group: String::new(),
            version: request.resource.version.clone(),
            resource: "pods".to_owned(),
            namespace: request.namespace.clone(),
            name: request.name.clone(),
        });
    }
    if request.sub_resource.as_deref() != Some("scale") || request.operation != Operation::Update {
        return None;
    }
    let (new, old) = (request.object.as_ref()?, request.old_object.as_ref()?);
    if new.pointer("/spec/replicas") == old.pointer("/spec/replicas") {
        return None;
    }
    let name = scale_name(request, new);
    let known = facts.scale_parent(
        &request.resource.group,
        &request.resource.resource,
        &request.namespace,
        name,
    );
    known.is_none().then(|| ScaleParentRef {
        group: request.resource.group.clone(),
        version: request.resource.version.clone(),
        resource: request.resource.resource.clone(),
        namespace: request.namespace.clone(),
        name: name.to_owned(),
    })
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

/// The name of a scale request's parent: the request's, else the Scale's own.
fn scale_name<'a>(request: &'a AdmissionRequest, scale: &'a Value) -> &'a str {
    if request.name.is_empty() {
        scale
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    } else {
        request.name.as_str()
    }
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
    decide_within(request, config, facts, None, window)
}

/// [`decide`] for a review that arrived at the start of `window`, with the scale parent the
/// server read from the API server because the head index does not know it (see
/// [`scale_parent_to_read`]). The read parent is one more input: the decision stays a function
/// of what it is given. `None`: nothing was read.
pub fn decide_within(
    request: &AdmissionRequest,
    config: &Config,
    facts: &dyn GitFacts,
    live_parent: Option<&LiveParent>,
    window: Window,
) -> Decision {
    let (new, old) = (
        Peek::of(request.object.as_ref()),
        Peek::of(request.old_object.as_ref()),
    );
    if let Some(decision) = decide_from_peeks(request, new, old, config) {
        return decision;
    }
    let decision = evaluate(request, config, facts, live_parent, window);
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
    live_parent: Option<&LiveParent>,
    window: Window,
) -> Decision {
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
        Operation::Create | Operation::Update => decide_write(request, config, facts, window),
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

fn decide_scale(
    request: &AdmissionRequest,
    config: &Config,
    facts: &dyn GitFacts,
    live_parent: Option<&LiveParent>,
) -> Decision {
    let (Some(new), Some(old)) = (&request.object, &request.old_object) else {
        return Decision::allow("scale without objects");
    };
    let replicas = |o: &Value| o.pointer("/spec/replicas").cloned();
    let (new_replicas, old_replicas) = (replicas(new), replicas(old));
    if new_replicas == old_replicas {
        return Decision::allow("scale unchanged");
    }
    let name = scale_name(request, new);
    let parent = match facts.scale_parent(
        &request.resource.group,
        &request.resource.resource,
        &request.namespace,
        name,
    ) {
        Some(parent) => parent,
        None => match live_parent_declaration(request, name, config, facts, live_parent) {
            Ok(parent) => parent,
            Err(decision) => return decision,
        },
    };
    let parent_key = ObjectKey::of(&parent.object).unwrap_or_default_key();
    let declared = parent.object.pointer("/spec/replicas");
    match declared {
        Some(declared) => {
            let equal = new_replicas
                .as_ref()
                .is_some_and(|n| n.as_i64() == declared.as_i64());
            if equal {
                Decision::allow("scale to Git's value")
            } else {
                Decision::deny(Denial::ScaleOffGit {
                    parent: parent_key,
                    replicas: shown(new_replicas.as_ref()),
                    commit: parent.commit.clone(),
                    branch: parent.branch.clone(),
                    declared: shown(Some(declared)),
                })
            }
        }
        None => Decision::deny(Denial::ScaleOfUndeclaredReplicas {
            parent: parent_key,
            from: shown(old_replicas.as_ref()),
            to: shown(new_replicas.as_ref()),
            user: request.user_info.username.clone(),
            commit: parent.commit.clone(),
            branch: parent.branch.clone(),
        }),
    }
}

/// What the branch head declares for a scale parent the index does not know, judged from the
/// parent the server read from the API server; `Err` is the decision when there is nothing to
/// compare with (unmanaged, gone, unreadable, or declared by no trusted branch head).
fn live_parent_declaration(
    request: &AdmissionRequest,
    name: &str,
    config: &Config,
    facts: &dyn GitFacts,
    live_parent: Option<&LiveParent>,
) -> Result<HeadDeclaration, Decision> {
    let target = ScaleParentRef {
        group: request.resource.group.clone(),
        version: request.resource.version.clone(),
        resource: request.resource.resource.clone(),
        namespace: request.namespace.clone(),
        name: name.to_owned(),
    };
    let parent = match live_parent {
        // Not read: the webhook has no API access (a documented limitation) or nothing to read.
        None => return Err(Decision::allow("scale of an unmanaged object")),
        Some(LiveParent::Absent) => {
            return Err(Decision::allow("scale of an object that does not exist"))
        }
        Some(LiveParent::Unreadable(reason)) => {
            return Err(Decision::deny(Denial::ScaleParentUnreadable {
                target: target.to_string(),
                reason: reason.clone(),
            }))
        }
        Some(LiveParent::Found(parent)) => parent,
    };
    if !is_managed(parent) {
        return Err(Decision::allow("scale of an unmanaged object"));
    }
    let key = ObjectKey::of(parent).unwrap_or_else(|| ObjectKey {
        group: target.group.clone(),
        kind: target.resource.clone(),
        namespace: target.namespace.clone(),
        name: target.name.clone(),
    });
    // Like a DELETE: only a trusted repository's claim is rendered.
    let provenance = trusted_claim(parent, config);
    match declared_at_head(&key, provenance.as_ref(), config, facts) {
        Ok(Some(head)) => Ok(head),
        Ok(None) => Err(Decision::allow(
            "scale of an object no trusted branch head declares",
        )),
        Err(reason) => Err(Decision::deny(Denial::ScaleHeadUnreadable { key, reason })),
    }
}

trait KeyOrDefault {
    fn unwrap_or_default_key(self) -> ObjectKey;
}

impl KeyOrDefault for Option<ObjectKey> {
    fn unwrap_or_default_key(self) -> ObjectKey {
        self.unwrap_or(ObjectKey {
            group: String::new(),
            kind: String::new(),
            namespace: String::new(),
            name: String::new(),
        })
    }
}

fn decide_delete(
    request: &AdmissionRequest,
    config: &Config,
    facts: &dyn GitFacts,
    window: Window,
) -> Decision {
    let Some(old) = &request.old_object else {
        return Decision::allow("delete without oldObject");
    };
    decide_delete_of(request, old, config, facts, window)
}

/// Rule 5 for the object `old` as it is before it goes (a DELETE's oldObject, an evicted Pod).
fn decide_delete_of(
    request: &AdmissionRequest,
    old: &Value,
    config: &Config,
    facts: &dyn GitFacts,
    window: Window,
) -> Decision {
    if !is_managed(old) {
        return Decision::allow("unmanaged");
    }
    let key = key_of(old, request);
    let provenance = trusted_claim(old, config);
    if inventory::is_inventory(&key, old) {
        return inventory::decide_delete(&key, old, provenance.is_some(), facts);
    }
    let declared = match declared_at_head(&key, provenance.as_ref(), config, facts) {
        Ok(declared) => declared,
        Err(reason) => return head_unknown(&key, &reason),
    };
    let Some(first) = declared else {
        return Decision::allow("prune: the branch head no longer declares it");
    };
    // What the head declares is as of the last fetch: a prune usually follows a push at once,
    // so judge by a head fetched after the request arrived.
    let repo = provenance
        .as_ref()
        .map_or(first.repo.as_str(), |p| p.repo.as_str());
    match facts.refresh_head(repo, window) {
        Ok(Freshness::Fetched) => {
            match declared_at_head(&key, provenance.as_ref(), config, facts) {
                Ok(Some(still)) => Decision::deny(Denial::StillDeclared {
                    key,
                    app: still.app,
                    commit: still.commit,
                    branch: still.branch,
                    fetched: "fetched just now".to_owned(),
                }),
                Ok(None) => Decision::allow("prune: the branch head no longer declares it"),
                Err(reason) => head_unknown(&key, &reason),
            }
        }
        Ok(stale) => Decision::deny(Denial::StillDeclared {
            key,
            app: first.app,
            commit: first.commit,
            branch: first.branch,
            fetched: format!("as of the last fetch; {}", stale.clause()),
        }),
        Err(error) => head_unknown(&key, &error.to_string()),
    }
}

/// Who at a branch head declares `key`: the index of app-file apps, else the claimed (folder)
/// app rendered at the head. `Err` says why the head could not be rendered.
fn declared_at_head(
    key: &ObjectKey,
    provenance: Option<&Provenance>,
    config: &Config,
    facts: &dyn GitFacts,
) -> Result<Option<HeadDeclaration>, String> {
    if let Some(head) = facts.head_declaration(key) {
        return Ok(Some(head));
    }
    let Some(provenance) = provenance else {
        return Ok(None);
    };
    // A head that cannot be read is no licence to delete.
    let head = facts.head(&provenance.repo).map_err(|e| e.to_string())?;
    let claim = AppClaim {
        app: provenance.app.clone(),
        path: provenance.path.clone(),
        folder_namespace: key.namespace.clone(),
    };
    match facts.render(&provenance.repo, &head, &claim) {
        Ok(desired) => Ok(desired.objects.get(key).map(|object| HeadDeclaration {
            repo: provenance.repo.clone(),
            branch: config
                .repository(&provenance.repo)
                .map_or_else(|| "its tracked branch".to_owned(), |r| r.branch.clone()),
            commit: head.clone(),
            app: provenance.app.clone(),
            path: desired.path.clone(),
            object: Arc::new(object.clone()),
        })),
        Err(FactError::AppGone(_)) => Ok(None),
        Err(FactError::Failed(reason)) => Err(reason),
    }
}

fn head_unknown(key: &ObjectKey, reason: &str) -> Decision {
    Decision::deny(Denial::DeleteHeadUnreadable {
        key: key.clone(),
        reason: reason.to_owned(),
    })
}

fn decide_write(
    request: &AdmissionRequest,
    config: &Config,
    facts: &dyn GitFacts,
    window: Window,
) -> Decision {
    let Some(new) = &request.object else {
        return Decision::allow("no object");
    };
    let old = request
        .old_object
        .as_ref()
        .filter(|_| request.operation == Operation::Update);
    let key = key_of(new, request);
    let managed_new = is_managed(new);
    let managed_old = old.is_some_and(is_managed);
    if !managed_new && !managed_old {
        if let Some(target) = managed_scale_target(new, &key, facts) {
            return Decision::deny(Denial::AutoscalerOfManagedObject { key, target });
        }
        let git_only = config.git_only_namespaces.contains(&key.namespace);
        if request.operation == Operation::Create && git_only {
            return Decision::deny(Denial::GitOnlyNamespace { key });
        }
        return Decision::allow("unmanaged");
    }
    if !managed_new {
        return Decision::deny(Denial::Unmanaging { key });
    }
    let Some(mut claim) = Provenance::of(new) else {
        return Decision::deny(Denial::MissingProvenance { key });
    };
    let Some(repository) = config.repository(&claim.repo) else {
        let trusted: Vec<&str> = config.repositories.iter().map(|r| r.url.as_str()).collect();
        return Decision::deny(Denial::UntrustedRepository {
            key,
            repo: claim.repo,
            trusted: trusted.join(", "),
        });
    };
    let branch = repository.branch.as_str();
    // One repository, whichever of its URLs the claim spells.
    let respelled;
    let new = if claim.repo == repository.url {
        new
    } else {
        claim.repo = repository.url.clone();
        respelled = spelled_as(new, &claim.repo);
        &respelled
    };
    if claim.revision.len() != 40 || !claim.revision.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Decision::deny(Denial::NotAFullCommit {
            key,
            revision: claim.revision,
        });
    }
    match facts.locate(&claim.repo, &claim.revision, window) {
        Ok(CommitPlace::OnBranch) => {}
        Ok(CommitPlace::Unknown(freshness)) => {
            return Decision::deny(Denial::UnknownCommit {
                key,
                commit: claim.revision,
                repo: claim.repo,
                branch: branch.to_owned(),
                fetched: match freshness {
                    Freshness::Fetched => "fetched just now, still unknown".to_owned(),
                    other => other.clause(),
                },
            })
        }
        Ok(CommitPlace::NotOnBranch) => {
            return Decision::deny(Denial::NotOnBranch {
                key,
                commit: claim.revision,
                repo: claim.repo,
                branch: branch.to_owned(),
            })
        }
        Err(error) => {
            return Decision::deny(Denial::CommitUncheckable {
                key,
                commit: claim.revision,
                repo: claim.repo,
                error: error.to_string(),
            })
        }
    }
    let old_claim = old
        .and_then(|old| trusted_claim(old, config))
        .filter(|p| p.repo == claim.repo);
    let moved = old_claim
        .as_ref()
        .is_none_or(|o| o.revision != claim.revision);
    if moved && config.revision_mode == RevisionMode::Head {
        match facts.head(&claim.repo) {
            Ok(head) if head == claim.revision => {}
            Ok(head) => {
                return Decision::deny(Denial::NotTheHead {
                    key,
                    commit: claim.revision,
                    head,
                    branch: branch.to_owned(),
                })
            }
            Err(error) => {
                return Decision::deny(Denial::HeadUnreadable {
                    key,
                    branch: branch.to_owned(),
                    error: error.to_string(),
                })
            }
        }
    }
    if let Some(old_claim) = &old_claim {
        if old_claim.revision != claim.revision {
            match facts.is_ancestor(&claim.repo, &old_claim.revision, &claim.revision) {
                Ok(true) => {}
                Ok(false) => {
                    return Decision::deny(Denial::Rollback {
                        key,
                        commit: claim.revision,
                        current: old_claim.revision.clone(),
                        branch: branch.to_owned(),
                    })
                }
                Err(error) => {
                    return Decision::deny(Denial::AncestryUncheckable {
                        key,
                        current: old_claim.revision.clone(),
                        commit: claim.revision,
                        error: error.to_string(),
                    })
                }
            }
        }
    }
    // Rule 6: the app's inventory, at a commit that checked out above.
    if inventory::is_inventory(&key, new) {
        return inventory::decide_write(
            &key,
            &claim,
            new,
            old.filter(|_| managed_old),
            &request.user_info.username,
            facts,
        );
    }
    // Rule 2: Git, not the object, says which app owns it. The claimed path must be written
    // the one way the plugin writes it, so `./apps/web` cannot mint a fresh render per spelling.
    match normalize_path(&claim.path) {
        Ok(path) if path == claim.path => {}
        _ => {
            return Decision::deny(Denial::PathNotNormal {
                key,
                path: claim.path,
            })
        }
    }
    match facts.owners(&key).as_slice() {
        [] => {
            let same_binding = old_claim
                .as_ref()
                .is_some_and(|o| o.app == claim.app && o.path == claim.path);
            if request.operation == Operation::Create || !same_binding {
                return Decision::deny(Denial::NoOwner {
                    key,
                    branch: branch.to_owned(),
                });
            }
        }
        [owner] => {
            if owner.repo != claim.repo || owner.app != claim.app || owner.path != claim.path {
                return Decision::deny(Denial::WrongOwner {
                    key,
                    owner_app: owner.app.clone(),
                    owner_path: owner.path.clone(),
                    app: claim.app,
                    path: claim.path,
                    branch: branch.to_owned(),
                });
            }
        }
        several => {
            let apps: Vec<String> = several
                .iter()
                .map(|o| format!("{} (path {})", o.app, o.path))
                .collect();
            return Decision::deny(Denial::SeveralOwners {
                key,
                apps: apps.join(", "),
                branch: branch.to_owned(),
            });
        }
    }
    let app_claim = AppClaim {
        app: claim.app.clone(),
        path: claim.path.clone(),
        folder_namespace: key.namespace.clone(),
    };
    let desired_set = match facts.render(&claim.repo, &claim.revision, &app_claim) {
        Ok(set) => set,
        Err(error) => {
            return Decision::deny(Denial::RenderFailed {
                key,
                app: claim.app,
                commit: claim.revision,
                repo: claim.repo,
                error: error.to_string(),
            })
        }
    };
    let Some(desired) = desired_set.objects.get(&key) else {
        return Decision::deny(Denial::NotDeclared {
            key,
            app: claim.app,
            commit: claim.revision,
        });
    };
    // Rule 4 for field managers: a person's write may not give a manager other than
    // kubectl-gitops a field Git declares (even at Git's value: a co-owner pins it). A write that
    // only moves ownership (a sync taking over what people's tools own, before it applies Git's
    // values) changes no value and needs nothing more.
    let history = old.filter(|_| managed_old);
    let co_owner = gained_foreign_ownership(new, history, desired, FIELD_MANAGER);
    if history.is_some_and(|old| only_field_ownership_changed(old, new)) {
        return match co_owner {
            Some((manager, path)) => Decision::deny(Denial::CoOwnership { key, manager, path }),
            None => Decision::allow("only field ownership changed"),
        };
    }
    // Rule 3. A list Git declares may not hold two entries with one merge key: the API server
    // only warns, and the later entry (a hand-added `DB_HOST`, say) is the one that takes effect.
    if let Some(duplicate) = duplicate_keys(desired, new).first() {
        return Decision::deny(Denial::DuplicateKey {
            path: duplicate.path.clone(),
            entries: duplicate.duplicates.unwrap_or(2),
            commit: claim.revision,
            branch: branch.to_owned(),
            key,
        });
    }
    let diffs = compare(desired, new);
    if let Some(first) = diffs.first() {
        let more = match diffs.len() {
            1 => String::new(),
            2 => " (and 1 more field)".to_owned(),
            n => format!(" (and {} more fields)", n - 1),
        };
        return Decision::deny(Denial::FieldDiffers {
            path: first.path.clone(),
            live: shown_for(&key, &first.path, first.live.as_ref()),
            commit: claim.revision,
            branch: branch.to_owned(),
            declared: shown_for(&key, &first.path, Some(&first.desired)),
            more,
            key,
        });
    }
    let adopting = old.is_some() && !managed_old;
    // Rule 4.
    if let Some(old) = old.filter(|_| !adopting) {
        let old_desired = match &old_claim {
            Some(o)
                if o.revision != claim.revision || o.app != claim.app || o.path != claim.path =>
            {
                let old_app = AppClaim {
                    app: o.app.clone(),
                    path: o.path.clone(),
                    folder_namespace: key.namespace.clone(),
                };
                facts.render(&o.repo, &o.revision, &old_app).ok()
            }
            _ => None,
        };
        let mut declared: Vec<&Value> = vec![desired];
        if let Some(object) = old_desired.as_ref().and_then(|d| d.objects.get(&key)) {
            declared.push(object);
        }
        // A field no commit declares that disappears moves the object towards Git (a sync
        // undoing a hand-made change); only what protects the object from deletion may not go.
        let changes: Vec<_> = undeclared_changes(old, new, &declared)
            .into_iter()
            .filter(|change| {
                change.new.is_some()
                    || change.path.starts_with("metadata.finalizers")
                    || change.path.starts_with("metadata.ownerReferences")
            })
            .collect();
        if let Some(first) = changes.first() {
            let more = match changes.len() {
                1 => String::new(),
                n => format!(" (and {} more)", n - 1),
            };
            return Decision::deny(Denial::UndeclaredChange {
                path: first.path.clone(),
                from: shown_for(&key, &first.path, first.old.as_ref()),
                to: shown_for(&key, &first.path, first.new.as_ref()),
                user: request.user_info.username.clone(),
                more,
                commit: claim.revision,
                branch: branch.to_owned(),
                key,
            });
        }
    }
    // Rule 4 for what is new: a created object, an adopted one (its old fields were never
    // Git's), and the members and entries an update adds hold only Git's fields and the
    // server's.
    let unexplained = unexplained_new_fields(new, old.filter(|_| !adopting), desired);
    if let Some(first) = unexplained.first() {
        let more = match unexplained.len() {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        return Decision::deny(Denial::UnexplainedField {
            path: first.path.clone(),
            value: shown_for(&key, &first.path, Some(&first.value)),
            more,
            commit: claim.revision,
            branch: branch.to_owned(),
            key,
        });
    }
    if let Some((manager, path)) = co_owner {
        return Decision::deny(Denial::CoOwnership { key, manager, path });
    }
    Decision::allow("matches Git")
}
