//! Health of a live object, by kind, following the kstatus rules
//! (sigs.k8s.io/cli-utils/pkg/kstatus): an object whose controller has not yet observed its latest
//! generation is Progressing; workloads are Healthy once every replica is updated, ready and
//! available; Jobs once Complete; Pods once Ready (or Succeeded); PersistentVolumeClaims once Bound;
//! LoadBalancer Services and Ingresses once they have an address; CustomResourceDefinitions once
//! Established; anything else by its `Ready`, `Stalled` and `Reconciling` conditions, and Healthy
//! when it has no status to judge (a ConfigMap, a Role).
//!
//! Pure functions of the object: the caller fetches it.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

/// The health verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum HealthStatus {
    /// Fully reconciled: what was asked for is running.
    Healthy,
    /// Still being reconciled; expected to become Healthy.
    Progressing,
    /// Failed or stuck; needs a person.
    Degraded,
    /// Declared in Git, absent from the cluster.
    Missing,
    /// Cannot be judged (unreadable status).
    Unknown,
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            HealthStatus::Healthy => "Healthy",
            HealthStatus::Progressing => "Progressing",
            HealthStatus::Degraded => "Degraded",
            HealthStatus::Missing => "Missing",
            HealthStatus::Unknown => "Unknown",
        };
        f.write_str(text)
    }
}

/// A verdict and, for anything not Healthy, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    /// The verdict.
    pub status: HealthStatus,
    /// Why, in one line (empty when there is nothing to say).
    pub reason: String,
}

impl Health {
    fn new(status: HealthStatus, reason: impl Into<String>) -> Health {
        Health {
            status,
            reason: reason.into(),
        }
    }
    /// Healthy, nothing to say.
    pub fn healthy() -> Health {
        Health::new(HealthStatus::Healthy, "")
    }
    /// The health of an object that Git declares and the cluster does not hold.
    pub fn missing() -> Health {
        Health::new(HealthStatus::Missing, "not found in the cluster")
    }
}

/// The health of a live object.
pub fn health_of(object: &Value) -> Health {
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let group = api_version.split_once('/').map(|(g, _)| g).unwrap_or("");
    let status = object.get("status").unwrap_or(&Value::Null);
    if object
        .get("metadata")
        .and_then(|m| m.get("deletionTimestamp"))
        .is_some_and(|t| !t.is_null())
    {
        return Health::new(HealthStatus::Progressing, "being deleted");
    }
    // kstatus: a controller that has not seen the latest spec says nothing about it yet.
    if let (Some(generation), Some(observed)) = (
        object
            .get("metadata")
            .and_then(|m| m.get("generation"))
            .and_then(Value::as_i64),
        status.get("observedGeneration").and_then(Value::as_i64),
    ) {
        if observed < generation {
            return Health::new(
                HealthStatus::Progressing,
                format!("observed generation {observed} is behind generation {generation}"),
            );
        }
    }
    match (group, kind) {
        ("apps", "Deployment") => deployment(object, status),
        ("apps", "StatefulSet") => stateful_set(object, status),
        ("apps", "DaemonSet") => daemon_set(object, status),
        ("apps", "ReplicaSet") => replica_set(object, status),
        ("", "Pod") => pod(status),
        ("batch", "Job") => job(status),
        ("", "PersistentVolumeClaim") => pvc(status),
        ("", "Service") => service(object, status),
        ("networking.k8s.io", "Ingress") => ingress(status),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd(status),
        _ => generic(status),
    }
}

fn int(value: &Value, key: &str) -> i64 {
    value.get(key).and_then(Value::as_i64).unwrap_or(0)
}

fn spec_replicas(object: &Value) -> i64 {
    object
        .get("spec")
        .and_then(|s| s.get("replicas"))
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

/// The condition of `type` in `status.conditions`: (status, reason, message).
fn condition<'a>(status: &'a Value, kind: &str) -> Option<(&'a str, &'a str, &'a str)> {
    status
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
        .map(|c| {
            let text = |key: &str| c.get(key).and_then(Value::as_str).unwrap_or_default();
            (text("status"), text("reason"), text("message"))
        })
}

fn has_status(status: &Value) -> bool {
    status.as_object().is_some_and(|m| !m.is_empty())
}

fn deployment(object: &Value, status: &Value) -> Health {
    if let Some(("False", "ProgressDeadlineExceeded", message)) = condition(status, "Progressing") {
        return Health::new(
            HealthStatus::Degraded,
            format!("progress deadline exceeded: {message}"),
        );
    }
    if !has_status(status) || status.get("observedGeneration").is_none() {
        return Health::new(
            HealthStatus::Progressing,
            "not yet observed by its controller",
        );
    }
    let want = spec_replicas(object);
    let updated = int(status, "updatedReplicas");
    let total = int(status, "replicas");
    let ready = int(status, "readyReplicas");
    let available = int(status, "availableReplicas");
    if updated < want {
        return Health::new(
            HealthStatus::Progressing,
            format!("updated replicas: {updated}/{want}"),
        );
    }
    if total > updated {
        return Health::new(
            HealthStatus::Progressing,
            format!("old replicas pending termination: {}", total - updated),
        );
    }
    if available < want {
        return Health::new(
            HealthStatus::Progressing,
            format!("available replicas: {available}/{want}"),
        );
    }
    if ready < want {
        return Health::new(
            HealthStatus::Progressing,
            format!("ready replicas: {ready}/{want}"),
        );
    }
    if let Some(("False", _, message)) = condition(status, "Available") {
        return Health::new(
            HealthStatus::Progressing,
            format!("not available: {message}"),
        );
    }
    Health::healthy()
}

fn stateful_set(object: &Value, status: &Value) -> Health {
    if !has_status(status) || status.get("observedGeneration").is_none() {
        return Health::new(
            HealthStatus::Progressing,
            "not yet observed by its controller",
        );
    }
    let want = spec_replicas(object);
    let ready = int(status, "readyReplicas");
    let current = int(status, "currentReplicas");
    let updated = int(status, "updatedReplicas");
    if int(status, "replicas") < want {
        return Health::new(
            HealthStatus::Progressing,
            format!("replicas: {}/{want}", int(status, "replicas")),
        );
    }
    if ready < want {
        return Health::new(
            HealthStatus::Progressing,
            format!("ready replicas: {ready}/{want}"),
        );
    }
    let on_delete = object
        .get("spec")
        .and_then(|s| s.get("updateStrategy"))
        .and_then(|u| u.get("type"))
        .and_then(Value::as_str)
        == Some("OnDelete");
    if on_delete {
        return Health::healthy();
    }
    let current_revision = status.get("currentRevision").and_then(Value::as_str);
    let update_revision = status.get("updateRevision").and_then(Value::as_str);
    if update_revision.is_some() && current_revision != update_revision {
        return Health::new(
            HealthStatus::Progressing,
            format!("rolling out: {updated}/{want} replicas updated"),
        );
    }
    if current < want && update_revision.is_none() {
        return Health::new(
            HealthStatus::Progressing,
            format!("current replicas: {current}/{want}"),
        );
    }
    Health::healthy()
}

fn daemon_set(_object: &Value, status: &Value) -> Health {
    if !has_status(status) || status.get("observedGeneration").is_none() {
        return Health::new(
            HealthStatus::Progressing,
            "not yet observed by its controller",
        );
    }
    let desired = int(status, "desiredNumberScheduled");
    let checks = [
        ("currentNumberScheduled", "scheduled"),
        ("updatedNumberScheduled", "updated"),
        ("numberAvailable", "available"),
        ("numberReady", "ready"),
    ];
    for (key, what) in checks {
        let have = int(status, key);
        if have < desired {
            return Health::new(
                HealthStatus::Progressing,
                format!("{what} pods: {have}/{desired}"),
            );
        }
    }
    Health::healthy()
}

fn replica_set(object: &Value, status: &Value) -> Health {
    if let Some(("True", reason, message)) = condition(status, "ReplicaFailure") {
        return Health::new(HealthStatus::Degraded, format!("{reason}: {message}"));
    }
    if !has_status(status) {
        return Health::new(
            HealthStatus::Progressing,
            "not yet observed by its controller",
        );
    }
    let want = spec_replicas(object);
    for (key, what) in [
        ("replicas", "replicas"),
        ("readyReplicas", "ready replicas"),
        ("availableReplicas", "available replicas"),
    ] {
        let have = int(status, key);
        if have < want {
            return Health::new(HealthStatus::Progressing, format!("{what}: {have}/{want}"));
        }
    }
    Health::healthy()
}

fn pod(status: &Value) -> Health {
    // A container that cannot start is a failure a person must fix, whatever the phase says.
    let statuses = ["initContainerStatuses", "containerStatuses"]
        .iter()
        .filter_map(|key| status.get(*key).and_then(Value::as_array))
        .flatten();
    for container in statuses {
        let waiting = container.get("state").and_then(|s| s.get("waiting"));
        let reason = waiting
            .and_then(|w| w.get("reason"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        if matches!(
            reason,
            "CrashLoopBackOff"
                | "ImagePullBackOff"
                | "ErrImagePull"
                | "CreateContainerConfigError"
                | "InvalidImageName"
        ) {
            let name = container
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            return Health::new(
                HealthStatus::Degraded,
                format!("container {name}: {reason}"),
            );
        }
    }
    match status.get("phase").and_then(Value::as_str) {
        Some("Succeeded") => Health::healthy(),
        Some("Failed") => {
            let reason = status
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or("Failed");
            let message = status
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default();
            Health::new(
                HealthStatus::Degraded,
                format!("pod failed: {reason} {message}").trim().to_owned(),
            )
        }
        Some("Running") => match condition(status, "Ready") {
            Some(("True", _, _)) => Health::healthy(),
            _ => Health::new(HealthStatus::Progressing, "running, not ready"),
        },
        Some(phase) => {
            if let Some(("False", "Unschedulable", message)) = condition(status, "PodScheduled") {
                return Health::new(
                    HealthStatus::Progressing,
                    format!("unschedulable: {message}"),
                );
            }
            Health::new(HealthStatus::Progressing, format!("phase {phase}"))
        }
        None => Health::new(HealthStatus::Progressing, "not yet scheduled"),
    }
}

fn job(status: &Value) -> Health {
    if let Some(("True", reason, message)) = condition(status, "Failed") {
        return Health::new(
            HealthStatus::Degraded,
            format!("job failed: {reason} {message}").trim().to_owned(),
        );
    }
    if let Some(("True", _, _)) = condition(status, "Complete") {
        return Health::healthy();
    }
    let active = int(status, "active");
    let succeeded = int(status, "succeeded");
    Health::new(
        HealthStatus::Progressing,
        format!("running: {active} active, {succeeded} succeeded"),
    )
}

fn pvc(status: &Value) -> Health {
    match status.get("phase").and_then(Value::as_str) {
        Some("Bound") => Health::healthy(),
        Some("Lost") => Health::new(HealthStatus::Degraded, "volume lost"),
        Some(phase) => Health::new(
            HealthStatus::Progressing,
            format!("phase {phase}, not Bound"),
        ),
        None => Health::new(HealthStatus::Progressing, "not Bound"),
    }
}

fn has_address(status: &Value) -> bool {
    status
        .get("loadBalancer")
        .and_then(|l| l.get("ingress"))
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
}

fn service(object: &Value, status: &Value) -> Health {
    let kind = object
        .get("spec")
        .and_then(|s| s.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP");
    if kind == "LoadBalancer" && !has_address(status) {
        return Health::new(
            HealthStatus::Progressing,
            "waiting for a load balancer address",
        );
    }
    Health::healthy()
}

fn ingress(status: &Value) -> Health {
    if has_address(status) {
        Health::healthy()
    } else {
        Health::new(HealthStatus::Progressing, "waiting for an address")
    }
}

fn crd(status: &Value) -> Health {
    if let Some(("False", reason, message)) = condition(status, "NamesAccepted") {
        return Health::new(
            HealthStatus::Degraded,
            format!("names not accepted: {reason} {message}")
                .trim()
                .to_owned(),
        );
    }
    match condition(status, "Established") {
        Some(("True", _, _)) => Health::healthy(),
        _ => Health::new(HealthStatus::Progressing, "not yet Established"),
    }
}

fn generic(status: &Value) -> Health {
    if let Some(("True", reason, message)) = condition(status, "Stalled") {
        return Health::new(
            HealthStatus::Degraded,
            format!("stalled: {reason} {message}").trim().to_owned(),
        );
    }
    if let Some(("True", reason, message)) = condition(status, "Reconciling") {
        return Health::new(
            HealthStatus::Progressing,
            format!("reconciling: {reason} {message}").trim().to_owned(),
        );
    }
    match condition(status, "Ready") {
        Some(("False", reason, message)) => Health::new(
            HealthStatus::Progressing,
            format!("not ready: {reason} {message}").trim().to_owned(),
        ),
        Some(("Unknown", reason, _)) => Health::new(
            HealthStatus::Progressing,
            format!("readiness unknown: {reason}"),
        ),
        _ => Health::healthy(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures");

    fn object_file(name: &str) -> Value {
        let text = std::fs::read_to_string(format!("{FIXTURES}/objects/{name}")).expect("fixture");
        crate::yaml::from_str(&text).expect("yaml")
    }

    fn admission_object(name: &str) -> Value {
        let text =
            std::fs::read_to_string(format!("{FIXTURES}/admission/{name}")).expect("fixture");
        let review: Value = serde_json::from_str(&text).expect("json");
        review["request"]["object"].clone()
    }

    #[test]
    fn stored_objects_from_a_real_api_server() {
        // No scheduler or kubelet ran: the Deployment's pod never became available.
        let deployment = health_of(&object_file("verify-deployment-web.yaml"));
        assert_eq!(
            deployment.status,
            HealthStatus::Progressing,
            "{deployment:?}"
        );
        assert!(deployment.reason.contains("available"), "{deployment:?}");
        assert_eq!(
            health_of(&object_file("crd-widgets.example.io.yaml")),
            Health::healthy()
        );
        assert_eq!(
            health_of(&object_file("verify-configmap-app-config.yaml")),
            Health::healthy()
        );
        assert_eq!(
            health_of(&object_file("verify-service-web.yaml")),
            Health::healthy()
        );
        assert_eq!(
            health_of(&object_file("verify-secret-app-secret.yaml")),
            Health::healthy()
        );
        assert_eq!(
            health_of(&object_file("verify-widget-blue.yaml")),
            Health::healthy()
        );
    }

    #[test]
    fn status_blocks_seen_in_admission_reviews() {
        // A Deployment whose controller just created its ReplicaSet: not observed yet.
        let fresh = health_of(&admission_object("0010-UPDATE-Deployment-web-status.json"));
        assert_eq!(fresh.status, HealthStatus::Progressing, "{fresh:?}");
        // A Pod that no scheduler placed.
        let pod = health_of(&admission_object(
            "0011-CREATE-Pod-web-74d99b47c9-t7s49.json",
        ));
        assert_eq!(pod.status, HealthStatus::Progressing, "{pod:?}");
        // A ReplicaSet with no ready replica yet.
        let rs = health_of(&admission_object(
            "0014-UPDATE-ReplicaSet-web-74d99b47c9-status.json",
        ));
        assert_eq!(rs.status, HealthStatus::Progressing, "{rs:?}");
        assert!(rs.reason.contains("0/1"), "{rs:?}");
    }

    #[test]
    fn every_deployment_status_in_the_fixtures_is_judged_progressing() {
        // Without kubelets no Deployment in the capture ever became available.
        let dir = format!("{FIXTURES}/admission");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).expect("dir") {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            if !name.contains("-Deployment-") || name.contains("DELETE") {
                continue;
            }
            let object = admission_object(&name);
            if object.get("status").is_none() {
                continue;
            }
            let health = health_of(&object);
            assert_ne!(health.status, HealthStatus::Healthy, "{name}: {health:?}");
            seen += 1;
        }
        assert!(seen > 10, "{seen}");
    }

    #[test]
    fn kstatus_rules() {
        let ready = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"generation": 2}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2}});
        assert_eq!(health_of(&ready), Health::healthy());
        let mut old = ready.clone();
        old["metadata"]["generation"] = json!(3);
        assert_eq!(health_of(&old).status, HealthStatus::Progressing);
        let stuck = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"generation": 1},
            "status": {"observedGeneration": 1, "conditions": [{"type": "Progressing", "status": "False",
            "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"web-1\" has timed out progressing."}]}});
        assert_eq!(health_of(&stuck).status, HealthStatus::Degraded);
        let failed_job = json!({"apiVersion": "batch/v1", "kind": "Job", "status": {"conditions": [
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}});
        assert_eq!(health_of(&failed_job).status, HealthStatus::Degraded);
        let done = json!({"apiVersion": "batch/v1", "kind": "Job", "status": {"conditions": [{"type": "Complete", "status": "True"}]}});
        assert_eq!(health_of(&done), Health::healthy());
        let crash = json!({"apiVersion": "v1", "kind": "Pod", "status": {"phase": "Running",
            "containerStatuses": [{"name": "web", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}});
        assert_eq!(health_of(&crash).status, HealthStatus::Degraded);
        let pending_pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "status": {"phase": "Pending"}});
        assert_eq!(health_of(&pending_pvc).status, HealthStatus::Progressing);
        let lb = json!({"apiVersion": "v1", "kind": "Service", "spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {}}});
        assert_eq!(health_of(&lb).status, HealthStatus::Progressing);
        let not_ready = json!({"apiVersion": "example.io/v1", "kind": "Widget", "status": {"conditions": [
            {"type": "Ready", "status": "False", "reason": "Waiting"}]}});
        assert_eq!(health_of(&not_ready).status, HealthStatus::Progressing);
        let stalled = json!({"apiVersion": "example.io/v1", "kind": "Widget", "status": {"conditions": [
            {"type": "Stalled", "status": "True", "reason": "Broken"}]}});
        assert_eq!(health_of(&stalled).status, HealthStatus::Degraded);
    }
}
