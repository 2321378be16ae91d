//! What the API server writes into an object on its own when a field is left out: the defaults of
//! kube-apiserver v1.36, so that drift attributed to a person ([`crate::drift::hand_drift`]) leaves
//! them out.
//!
//! A `kubectl create -f` (or a client-side `kubectl apply` that creates) is recorded in
//! `managedFields` as owning every field of the object as stored, defaults included: from Git's
//! own YAML it owns `spec.progressDeadlineSeconds`, `spec.template.spec.dnsPolicy`, … as if a
//! person had written them. A default is a fact about the API server, so it is written down here
//! as the server showed it — each rule below was read from what kube-apiserver v1.36.2 stored (and
//! recorded as owned by `kubectl-create`) for minimal objects created from YAML that left the field
//! out (`kubectl create --dry-run=server -o json --show-managed-fields`; see also
//! `../shared/fixtures`). A table rather than a server-side dry-run of Git's object per status
//! call: `status` and `diff` stay read-only (a dry-run create needs create rights and passes
//! through admission webhooks, ours included), cost no request, and give the same answer offline
//! in unit tests. What the table lacks shows as hand drift, which errs on the side of telling.
//!
//! Git's silence is never taken for a default: a field counts as defaulted only when its live value
//! is the one the server would have set.

use serde_json::Value;

/// What the server puts at a defaulted field.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Default {
    /// This string.
    Str(&'static str),
    /// This integer.
    Int(i64),
    /// This boolean.
    Bool(bool),
    /// An empty map (or nothing).
    Empty,
    /// Whatever it is: allocated by the server (a clusterIP, a nodePort) or derived from a uid it
    /// generated (a Job's selector), so no person chose it.
    Any,
    /// `imagePullPolicy`: `Always` for an image without a tag or tagged `latest`, else
    /// `IfNotPresent` (from the sibling `image`).
    PullPolicy,
    /// The value of the sibling field (a Service port's `targetPort` is its `port`).
    SameAs(&'static str),
    /// A NetworkPolicy's `policyTypes`: `[Ingress]`, plus `Egress` when it has egress rules.
    PolicyTypes,
}

/// Defaults of a Pod spec, wherever one is (a Pod, a workload's template).
const POD_SPEC: &[(&[&str], Default)] = &[
    (&["dnsPolicy"], Default::Str("ClusterFirst")),
    (&["restartPolicy"], Default::Str("Always")),
    (&["schedulerName"], Default::Str("default-scheduler")),
    (&["securityContext"], Default::Empty),
    (&["terminationGracePeriodSeconds"], Default::Int(30)),
    (&["enableServiceLinks"], Default::Bool(true)),
    // The deprecated alias, which the server fills in from `serviceAccountName`.
    (&["serviceAccount"], Default::SameAs("serviceAccountName")),
    (
        &["volumes", "*", "configMap", "defaultMode"],
        Default::Int(420),
    ),
    (
        &["volumes", "*", "secret", "defaultMode"],
        Default::Int(420),
    ),
    (
        &["volumes", "*", "projected", "defaultMode"],
        Default::Int(420),
    ),
    (
        &["volumes", "*", "downwardAPI", "defaultMode"],
        Default::Int(420),
    ),
    (&["volumes", "*", "hostPath", "type"], Default::Str("")),
];

/// Defaults of a container, in `containers` and `initContainers`.
const CONTAINER: &[(&[&str], Default)] = &[
    (&["imagePullPolicy"], Default::PullPolicy),
    (&["resources"], Default::Empty),
    (
        &["terminationMessagePath"],
        Default::Str("/dev/termination-log"),
    ),
    (&["terminationMessagePolicy"], Default::Str("File")),
    (&["ports", "*", "protocol"], Default::Str("TCP")),
];

/// Defaults of a probe, in `livenessProbe`, `readinessProbe` and `startupProbe`.
const PROBE: &[(&[&str], Default)] = &[
    (&["failureThreshold"], Default::Int(3)),
    (&["periodSeconds"], Default::Int(10)),
    (&["successThreshold"], Default::Int(1)),
    (&["timeoutSeconds"], Default::Int(1)),
    (&["httpGet", "scheme"], Default::Str("HTTP")),
];

/// Defaults of kinds, by `group/Kind` (`/Kind` for the core group), outside Pod specs.
const KINDS: &[(&str, &[&str], Default)] = &[
    (
        "/Namespace",
        &["metadata", "labels", "kubernetes.io/metadata.name"],
        Default::Any,
    ),
    ("/Namespace", &["spec", "finalizers"], Default::Any),
    ("/Secret", &["type"], Default::Str("Opaque")),
    ("/Service", &["spec", "type"], Default::Str("ClusterIP")),
    (
        "/Service",
        &["spec", "sessionAffinity"],
        Default::Str("None"),
    ),
    (
        "/Service",
        &["spec", "internalTrafficPolicy"],
        Default::Str("Cluster"),
    ),
    (
        "/Service",
        &["spec", "externalTrafficPolicy"],
        Default::Str("Cluster"),
    ),
    (
        "/Service",
        &["spec", "allocateLoadBalancerNodePorts"],
        Default::Bool(true),
    ),
    (
        "/Service",
        &["spec", "ipFamilyPolicy"],
        Default::Str("SingleStack"),
    ),
    ("/Service", &["spec", "ipFamilies"], Default::Any),
    ("/Service", &["spec", "clusterIP"], Default::Any),
    ("/Service", &["spec", "clusterIPs"], Default::Any),
    ("/Service", &["spec", "healthCheckNodePort"], Default::Any),
    (
        "/Service",
        &["spec", "ports", "*", "protocol"],
        Default::Str("TCP"),
    ),
    (
        "/Service",
        &["spec", "ports", "*", "targetPort"],
        Default::SameAs("port"),
    ),
    (
        "/Service",
        &["spec", "ports", "*", "nodePort"],
        Default::Any,
    ),
    (
        "/PersistentVolumeClaim",
        &["spec", "volumeMode"],
        Default::Str("Filesystem"),
    ),
    // Set by the DefaultStorageClass admission plugin when the cluster has a default class.
    (
        "/PersistentVolumeClaim",
        &["spec", "storageClassName"],
        Default::Any,
    ),
    (
        "/ReplicationController",
        &["spec", "replicas"],
        Default::Int(1),
    ),
    ("apps/Deployment", &["spec", "replicas"], Default::Int(1)),
    (
        "apps/Deployment",
        &["spec", "progressDeadlineSeconds"],
        Default::Int(600),
    ),
    (
        "apps/Deployment",
        &["spec", "revisionHistoryLimit"],
        Default::Int(10),
    ),
    (
        "apps/Deployment",
        &["spec", "strategy", "type"],
        Default::Str("RollingUpdate"),
    ),
    (
        "apps/Deployment",
        &["spec", "strategy", "rollingUpdate", "maxSurge"],
        Default::Str("25%"),
    ),
    (
        "apps/Deployment",
        &["spec", "strategy", "rollingUpdate", "maxUnavailable"],
        Default::Str("25%"),
    ),
    ("apps/ReplicaSet", &["spec", "replicas"], Default::Int(1)),
    ("apps/StatefulSet", &["spec", "replicas"], Default::Int(1)),
    (
        "apps/StatefulSet",
        &["spec", "podManagementPolicy"],
        Default::Str("OrderedReady"),
    ),
    (
        "apps/StatefulSet",
        &["spec", "revisionHistoryLimit"],
        Default::Int(10),
    ),
    (
        "apps/StatefulSet",
        &["spec", "updateStrategy", "type"],
        Default::Str("RollingUpdate"),
    ),
    (
        "apps/StatefulSet",
        &["spec", "updateStrategy", "rollingUpdate", "partition"],
        Default::Int(0),
    ),
    (
        "apps/StatefulSet",
        &[
            "spec",
            "persistentVolumeClaimRetentionPolicy",
            "whenDeleted",
        ],
        Default::Str("Retain"),
    ),
    (
        "apps/StatefulSet",
        &["spec", "persistentVolumeClaimRetentionPolicy", "whenScaled"],
        Default::Str("Retain"),
    ),
    (
        "apps/DaemonSet",
        &["spec", "revisionHistoryLimit"],
        Default::Int(10),
    ),
    (
        "apps/DaemonSet",
        &["spec", "updateStrategy", "type"],
        Default::Str("RollingUpdate"),
    ),
    (
        "apps/DaemonSet",
        &["spec", "updateStrategy", "rollingUpdate", "maxSurge"],
        Default::Int(0),
    ),
    (
        "apps/DaemonSet",
        &["spec", "updateStrategy", "rollingUpdate", "maxUnavailable"],
        Default::Int(1),
    ),
    (
        "apps/DaemonSet",
        &[
            "metadata",
            "annotations",
            "deprecated.daemonset.template.generation",
        ],
        Default::Any,
    ),
    ("batch/Job", &["spec", "backoffLimit"], Default::Int(6)),
    (
        "batch/Job",
        &["spec", "completionMode"],
        Default::Str("NonIndexed"),
    ),
    ("batch/Job", &["spec", "completions"], Default::Int(1)),
    ("batch/Job", &["spec", "parallelism"], Default::Int(1)),
    (
        "batch/Job",
        &["spec", "manualSelector"],
        Default::Bool(false),
    ),
    (
        "batch/Job",
        &["spec", "podReplacementPolicy"],
        Default::Str("TerminatingOrFailed"),
    ),
    ("batch/Job", &["spec", "suspend"], Default::Bool(false)),
    // Derived from the uid the server generates for the Job.
    ("batch/Job", &["spec", "selector"], Default::Any),
    (
        "batch/Job",
        &["metadata", "labels", "controller-uid"],
        Default::Any,
    ),
    (
        "batch/Job",
        &["metadata", "labels", "job-name"],
        Default::Any,
    ),
    (
        "batch/Job",
        &["metadata", "labels", "batch.kubernetes.io/controller-uid"],
        Default::Any,
    ),
    (
        "batch/Job",
        &["metadata", "labels", "batch.kubernetes.io/job-name"],
        Default::Any,
    ),
    (
        "batch/Job",
        &["spec", "template", "metadata", "labels", "controller-uid"],
        Default::Any,
    ),
    (
        "batch/Job",
        &["spec", "template", "metadata", "labels", "job-name"],
        Default::Any,
    ),
    (
        "batch/Job",
        &[
            "spec",
            "template",
            "metadata",
            "labels",
            "batch.kubernetes.io/controller-uid",
        ],
        Default::Any,
    ),
    (
        "batch/Job",
        &[
            "spec",
            "template",
            "metadata",
            "labels",
            "batch.kubernetes.io/job-name",
        ],
        Default::Any,
    ),
    (
        "batch/CronJob",
        &["spec", "concurrencyPolicy"],
        Default::Str("Allow"),
    ),
    (
        "batch/CronJob",
        &["spec", "failedJobsHistoryLimit"],
        Default::Int(1),
    ),
    (
        "batch/CronJob",
        &["spec", "successfulJobsHistoryLimit"],
        Default::Int(3),
    ),
    ("batch/CronJob", &["spec", "suspend"], Default::Bool(false)),
    (
        "networking.k8s.io/NetworkPolicy",
        &["spec", "policyTypes"],
        Default::PolicyTypes,
    ),
    (
        "autoscaling/HorizontalPodAutoscaler",
        &["spec", "minReplicas"],
        Default::Int(1),
    ),
];

/// Where a kind keeps its Pod spec.
fn pod_spec_prefix(group: &str, kind: &str) -> Option<&'static [&'static str]> {
    match (group, kind) {
        ("", "Pod") => Some(&["spec"]),
        ("", "PodTemplate") => Some(&["template", "spec"]),
        ("", "ReplicationController")
        | ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet")
        | ("batch", "Job") => Some(&["spec", "template", "spec"]),
        ("batch", "CronJob") => Some(&["spec", "jobTemplate", "spec", "template", "spec"]),
        _ => None,
    }
}

/// The server's defaults for one kind, as paths (`*` for any list entry) and what they hold.
#[derive(Debug, Clone)]
pub struct ServerDefaults {
    rules: Vec<(Vec<&'static str>, Default)>,
}

/// How a field that Git does not declare relates to the server's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judgement {
    /// The live value is what the server sets there: nobody chose it.
    Defaulted,
    /// Fields below it have defaults: judge them one by one.
    Descend,
    /// No default explains it.
    NotDefaulted,
}

impl ServerDefaults {
    /// The defaults of the live object's kind (none for kinds the table does not know).
    pub fn of(live: &Value) -> ServerDefaults {
        let group = live
            .get("apiVersion")
            .and_then(Value::as_str)
            .and_then(|v| v.rsplit_once('/'))
            .map_or("", |(group, _)| group);
        let kind = live.get("kind").and_then(Value::as_str).unwrap_or_default();
        ServerDefaults::for_kind(group, kind)
    }

    /// The defaults of `group`/`kind` (`""` for the core group).
    pub fn for_kind(group: &str, kind: &str) -> ServerDefaults {
        let mut rules = Vec::new();
        let wanted = format!("{group}/{kind}");
        for (at, path, default) in KINDS {
            if *at == wanted {
                rules.push((path.to_vec(), *default));
            }
        }
        if let Some(prefix) = pod_spec_prefix(group, kind) {
            let under = |tail: &[&'static str]| {
                let mut path = prefix.to_vec();
                path.extend_from_slice(tail);
                path
            };
            for (path, default) in POD_SPEC {
                rules.push((under(path), *default));
            }
            for list in ["containers", "initContainers"] {
                for (path, default) in CONTAINER {
                    rules.push((under(&[&[list, "*"], *path].concat()), *default));
                }
                for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
                    for (path, default) in PROBE {
                        rules.push((under(&[&[list, "*", probe], *path].concat()), *default));
                    }
                }
            }
        }
        ServerDefaults { rules }
    }

    /// Judges the field at `path` (field names, `*` for a list entry) whose live value is `live`,
    /// in the map or entry `parent`, of the object `root`.
    pub fn judge(
        &self,
        path: &[&str],
        live: Option<&Value>,
        parent: Option<&Value>,
        root: &Value,
    ) -> Judgement {
        let mut below = false;
        for (rule, default) in &self.rules {
            if rule.as_slice() == path {
                return if holds(*default, live, parent, root) {
                    Judgement::Defaulted
                } else {
                    Judgement::NotDefaulted
                };
            }
            below |= rule.len() > path.len() && rule[..path.len()] == *path;
        }
        if below {
            Judgement::Descend
        } else {
            Judgement::NotDefaulted
        }
    }
}

/// Whether `live` is what `default` puts there.
fn holds(default: Default, live: Option<&Value>, parent: Option<&Value>, root: &Value) -> bool {
    match default {
        Default::Any => true,
        Default::Empty => {
            live.is_none_or(|v| v.is_null() || v.as_object().is_some_and(serde_json::Map::is_empty))
        }
        Default::Str(s) => live.and_then(Value::as_str) == Some(s),
        Default::Int(n) => live.and_then(Value::as_i64) == Some(n),
        Default::Bool(b) => live.and_then(Value::as_bool) == Some(b),
        Default::PullPolicy => {
            let image = parent
                .and_then(|p| p.get("image"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            live.and_then(Value::as_str) == Some(pull_policy_for(image))
        }
        Default::SameAs(field) => live.is_some() && live == parent.and_then(|p| p.get(field)),
        Default::PolicyTypes => {
            let egress = root
                .get("spec")
                .and_then(|s| s.get("egress"))
                .is_some_and(|e| !e.is_null());
            let expected: &[&str] = if egress {
                &["Ingress", "Egress"]
            } else {
                &["Ingress"]
            };
            live.and_then(Value::as_array).is_some_and(|types| {
                types.len() == expected.len()
                    && types
                        .iter()
                        .zip(expected)
                        .all(|(t, e)| t.as_str() == Some(e))
            })
        }
    }
}

/// The pull policy the server defaults for `image`: `Always` when it names no tag or the tag
/// `latest`, `IfNotPresent` otherwise (a digest counts as pinned). A registry's `:port` is not a
/// tag.
fn pull_policy_for(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, tag)) if tag != "latest" => "IfNotPresent",
        _ => "Always",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pull_policies_like_the_server() {
        // As kube-apiserver v1.36.2 defaulted them.
        assert_eq!(pull_policy_for("nginx"), "Always");
        assert_eq!(pull_policy_for("nginx:latest"), "Always");
        assert_eq!(pull_policy_for("nginx:1.27"), "IfNotPresent");
        assert_eq!(pull_policy_for("reg.example:5000/nginx"), "Always");
        assert_eq!(
            pull_policy_for(
                "busybox@sha256:0000000000000000000000000000000000000000000000000000000000000000"
            ),
            "IfNotPresent"
        );
    }

    #[test]
    fn judges_paths_below_and_at_defaults() {
        let defaults = ServerDefaults::for_kind("apps", "Deployment");
        let root = json!({});
        assert_eq!(
            defaults.judge(&["spec", "strategy"], None, None, &root),
            Judgement::Descend
        );
        assert_eq!(
            defaults.judge(
                &["spec", "strategy", "type"],
                Some(&json!("RollingUpdate")),
                None,
                &root
            ),
            Judgement::Defaulted
        );
        assert_eq!(
            defaults.judge(
                &["spec", "strategy", "type"],
                Some(&json!("Recreate")),
                None,
                &root
            ),
            Judgement::NotDefaulted
        );
        let container = json!({"name": "web", "image": "nginx:1.27"});
        let path = [
            "spec",
            "template",
            "spec",
            "containers",
            "*",
            "imagePullPolicy",
        ];
        assert_eq!(
            defaults.judge(&path, Some(&json!("IfNotPresent")), Some(&container), &root),
            Judgement::Defaulted
        );
        assert_eq!(
            defaults.judge(&path, Some(&json!("Always")), Some(&container), &root),
            Judgement::NotDefaulted
        );
        assert_eq!(
            defaults.judge(&["spec", "paused"], Some(&json!(true)), None, &root),
            Judgement::NotDefaulted
        );
        assert_eq!(
            ServerDefaults::for_kind("", "ConfigMap").judge(&["data"], None, None, &root),
            Judgement::NotDefaulted
        );
    }
}
