//! AdmissionReview v1: the request the API server sends and the response it expects.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The envelope the API server posts.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionReview {
    /// `admission.k8s.io/v1`.
    #[serde(default)]
    pub api_version: String,
    /// `AdmissionReview`.
    #[serde(default)]
    pub kind: String,
    /// The request; absent only in malformed reviews.
    pub request: Option<AdmissionRequest>,
}

/// Group, version and kind.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct GroupVersionKind {
    /// API group, empty for core.
    #[serde(default)]
    pub group: String,
    /// Version.
    #[serde(default)]
    pub version: String,
    /// Kind.
    #[serde(default)]
    pub kind: String,
}

/// Group, version and resource (plural).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct GroupVersionResource {
    /// API group, empty for core.
    #[serde(default)]
    pub group: String,
    /// Version.
    #[serde(default)]
    pub version: String,
    /// Resource, plural (`deployments`).
    #[serde(default)]
    pub resource: String,
}

/// The operation under review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Operation {
    /// CREATE.
    Create,
    /// UPDATE.
    Update,
    /// DELETE.
    Delete,
    /// CONNECT (exec, attach, port-forward); never about Git-declared content.
    Connect,
}

impl Operation {
    /// The operation as Kubernetes writes it, for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }
}

/// Who asks: authenticated by the API server, so the only part of a request to trust.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct UserInfo {
    /// The user name.
    #[serde(default)]
    pub username: String,
    /// The groups.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// One admission request.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionRequest {
    /// Echoed in the response.
    pub uid: String,
    /// Kind of `object` (a Scale for the scale subresource).
    #[serde(default)]
    pub kind: GroupVersionKind,
    /// The resource addressed (the parent's for subresources).
    #[serde(default)]
    pub resource: GroupVersionResource,
    /// `status`, `scale`, `finalize`, … or absent.
    #[serde(default)]
    pub sub_resource: Option<String>,
    /// The object's name; empty for deletes by the namespace controller.
    #[serde(default)]
    pub name: String,
    /// The namespace; empty for cluster-scoped objects.
    #[serde(default)]
    pub namespace: String,
    /// What is being done.
    pub operation: Operation,
    /// Who does it.
    #[serde(default)]
    pub user_info: UserInfo,
    /// The new object; `null` for DELETE.
    #[serde(default)]
    pub object: Option<Value>,
    /// The current object for UPDATE and DELETE.
    #[serde(default)]
    pub old_object: Option<Value>,
    /// True for `--dry-run=server`.
    #[serde(default)]
    pub dry_run: bool,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Allowed or denied.
    pub allowed: bool,
    /// The denial's one sentence (also set for break-glass, which is allowed).
    pub message: Option<String>,
    /// Warnings shown to the client (break-glass).
    pub warnings: Vec<String>,
}

/// The response envelope for `uid`.
pub fn response(uid: &str, verdict: &Verdict) -> Value {
    let mut response = json!({"uid": uid, "allowed": verdict.allowed});
    if !verdict.allowed {
        response["status"] = json!({
            "code": 403,
            "reason": "Forbidden",
            "message": verdict.message.clone().unwrap_or_default(),
        });
    }
    if !verdict.warnings.is_empty() {
        response["warnings"] = json!(verdict.warnings);
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
}
