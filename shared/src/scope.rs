//! Which kinds are namespaced. From discovery when a cluster is at hand; otherwise from a built-in
//! table of the standard kinds (taken from a real kube-apiserver's discovery documents) plus the
//! CustomResourceDefinitions in the same render.

use std::collections::HashMap;

use serde_json::Value;

/// Answers whether a kind is namespaced. `None` means "don't know".
pub trait Scope {
    /// Whether objects of `group`/`kind` live in a namespace.
    fn is_namespaced(&self, group: &str, kind: &str) -> Option<bool>;
}

/// Cluster-scoped standard kinds, from the discovery documents of kube-apiserver v1.36
/// (../shared/fixtures/discovery). Every other standard kind is namespaced.
const CLUSTER_SCOPED: &[(&str, &str)] = &[
    ("", "ComponentStatus"),
    ("", "Namespace"),
    ("", "Node"),
    ("", "PersistentVolume"),
    ("admissionregistration.k8s.io", "MutatingAdmissionPolicy"),
    (
        "admissionregistration.k8s.io",
        "MutatingAdmissionPolicyBinding",
    ),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
    ),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
    ),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("apiregistration.k8s.io", "APIService"),
    ("authentication.k8s.io", "SelfSubjectReview"),
    ("authentication.k8s.io", "TokenReview"),
    ("authorization.k8s.io", "SelfSubjectAccessReview"),
    ("authorization.k8s.io", "SelfSubjectRulesReview"),
    ("authorization.k8s.io", "SubjectAccessReview"),
    ("certificates.k8s.io", "CertificateSigningRequest"),
    ("certificates.k8s.io", "ClusterTrustBundle"),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
    ("networking.k8s.io", "IPAddress"),
    ("networking.k8s.io", "IngressClass"),
    ("networking.k8s.io", "ServiceCIDR"),
    ("node.k8s.io", "RuntimeClass"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("resource.k8s.io", "DeviceClass"),
    ("resource.k8s.io", "ResourceSlice"),
    ("scheduling.k8s.io", "PriorityClass"),
    ("storage.k8s.io", "CSIDriver"),
    ("storage.k8s.io", "CSINode"),
    ("storage.k8s.io", "StorageClass"),
    ("storage.k8s.io", "VolumeAttachment"),
    ("storage.k8s.io", "VolumeAttributesClass"),
];

/// Cluster-scoped kinds of widely used add-ons, whose CRDs usually live in another app than the
/// objects that use them. Scope must come from Git alone (the webhook renders without asking the
/// cluster), so the ones people meet most are listed here; others are declared per app with
/// `clusterScopedKinds` in gitops.yaml.
const WELL_KNOWN_CLUSTER_SCOPED: &[(&str, &str)] = &[
    ("apiextensions.crossplane.io", "Composition"),
    ("apiextensions.crossplane.io", "CompositionRevision"),
    ("apiextensions.crossplane.io", "CompositeResourceDefinition"),
    ("apiextensions.crossplane.io", "EnvironmentConfig"),
    ("argoproj.io", "ClusterWorkflowTemplate"),
    ("cert-manager.io", "ClusterIssuer"),
    ("cilium.io", "CiliumClusterwideNetworkPolicy"),
    ("cilium.io", "CiliumLoadBalancerIPPool"),
    ("crd.projectcalico.org", "GlobalNetworkPolicy"),
    ("crd.projectcalico.org", "GlobalNetworkSet"),
    ("crd.projectcalico.org", "IPPool"),
    ("external-secrets.io", "ClusterExternalSecret"),
    ("external-secrets.io", "ClusterSecretStore"),
    ("gateway.networking.k8s.io", "GatewayClass"),
    ("karpenter.k8s.aws", "EC2NodeClass"),
    ("karpenter.sh", "NodeClaim"),
    ("karpenter.sh", "NodePool"),
    ("kueue.x-k8s.io", "ClusterQueue"),
    ("kueue.x-k8s.io", "ResourceFlavor"),
    ("kyverno.io", "ClusterCleanupPolicy"),
    ("kyverno.io", "ClusterPolicy"),
    ("pkg.crossplane.io", "Configuration"),
    ("pkg.crossplane.io", "DeploymentRuntimeConfig"),
    ("pkg.crossplane.io", "Function"),
    ("pkg.crossplane.io", "Provider"),
    ("policy.sigstore.dev", "ClusterImagePolicy"),
    ("projectcalico.org", "GlobalNetworkPolicy"),
    ("projectcalico.org", "IPPool"),
    ("snapshot.storage.k8s.io", "VolumeSnapshotClass"),
    ("snapshot.storage.k8s.io", "VolumeSnapshotContent"),
    ("templates.gatekeeper.sh", "ConstraintTemplate"),
    ("trust.cert-manager.io", "Bundle"),
    ("wgpolicyk8s.io", "ClusterPolicyReport"),
];

/// Groups whose kinds the table covers completely: a kind of these groups that is not in
/// [`CLUSTER_SCOPED`] is namespaced.
const STANDARD_GROUPS: &[&str] = &[
    "",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "apiregistration.k8s.io",
    "apps",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "events.k8s.io",
    "flowcontrol.apiserver.k8s.io",
    "networking.k8s.io",
    "node.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "resource.k8s.io",
    "scheduling.k8s.io",
    "storage.k8s.io",
];

/// The built-in table of standard kinds.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuiltinScope;

impl Scope for BuiltinScope {
    fn is_namespaced(&self, group: &str, kind: &str) -> Option<bool> {
        if CLUSTER_SCOPED.contains(&(group, kind))
            || WELL_KNOWN_CLUSTER_SCOPED.contains(&(group, kind))
        {
            Some(false)
        } else if STANDARD_GROUPS.contains(&group) {
            Some(true)
        } else {
            None
        }
    }
}

/// Scope learnt from discovery (or any other source): `(group, kind) → namespaced`.
#[derive(Debug, Clone, Default)]
pub struct TableScope(pub HashMap<(String, String), bool>);

impl Scope for TableScope {
    fn is_namespaced(&self, group: &str, kind: &str) -> Option<bool> {
        self.0.get(&(group.to_owned(), kind.to_owned())).copied()
    }
}

/// The scopes that the CustomResourceDefinitions among `objects` declare.
pub fn scopes_from_crds<'a>(objects: impl IntoIterator<Item = &'a Value>) -> TableScope {
    let mut table = HashMap::new();
    for object in objects {
        if object.get("kind").and_then(Value::as_str) != Some("CustomResourceDefinition") {
            continue;
        }
        let spec = object.get("spec");
        let group = spec.and_then(|s| s.get("group")).and_then(Value::as_str);
        let kind = spec
            .and_then(|s| s.get("names"))
            .and_then(|n| n.get("kind"))
            .and_then(Value::as_str);
        let scope = spec.and_then(|s| s.get("scope")).and_then(Value::as_str);
        if let (Some(group), Some(kind)) = (group, kind) {
            table.insert(
                (group.to_owned(), kind.to_owned()),
                scope != Some("Cluster"),
            );
        }
    }
    TableScope(table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_agrees_with_real_discovery() {
        // Every kind in the captured discovery documents gets the scope the API server reports.
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/fixtures/discovery"
        );
        let mut checked = 0;
        for file in ["api.aggregated-v2.json", "apis.aggregated-v2.json"] {
            let text = std::fs::read_to_string(format!("{dir}/{file}"))
                .expect("../shared/fixtures beside the checkout");
            let doc: Value = serde_json::from_str(&text).expect("discovery json");
            for group in doc["items"].as_array().expect("items") {
                let name = group["metadata"]["name"].as_str().unwrap_or_default();
                for version in group["versions"].as_array().expect("versions") {
                    for resource in version["resources"].as_array().expect("resources") {
                        let kind = resource["responseKind"]["kind"].as_str().expect("kind");
                        let namespaced = resource["scope"] == "Namespaced";
                        assert_eq!(
                            BuiltinScope.is_namespaced(name, kind),
                            Some(namespaced),
                            "{name}/{kind}"
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 50, "only {checked} kinds checked");
    }

    #[test]
    fn crds_in_the_render_count() {
        let crd = json!({"kind": "CustomResourceDefinition", "spec": {"group": "example.io",
            "scope": "Cluster", "names": {"kind": "Widget"}}});
        let table = scopes_from_crds([&crd]);
        assert_eq!(table.is_namespaced("example.io", "Widget"), Some(false));
        assert_eq!(BuiltinScope.is_namespaced("example.io", "Widget"), None);
        assert_eq!(
            BuiltinScope.is_namespaced("cert-manager.io", "ClusterIssuer"),
            Some(false)
        );
        assert_eq!(
            BuiltinScope.is_namespaced("cert-manager.io", "Issuer"),
            None
        );
    }
}
