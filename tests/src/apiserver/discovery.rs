//! Discovery: the captured documents of a real kube-apiserver plus what stored CRDs serve.

use super::*;

pub(super) fn resources_of_aggregated(doc: &Value) -> Vec<Resource> {
    let mut out = Vec::new();
    for group in doc["items"].as_array().into_iter().flatten() {
        let name = group["metadata"]["name"].as_str().unwrap_or_default();
        for version in group["versions"].as_array().into_iter().flatten() {
            let v = version["version"].as_str().unwrap_or_default();
            for resource in version["resources"].as_array().into_iter().flatten() {
                out.push(Resource {
                    group: name.to_owned(),
                    version: v.to_owned(),
                    plural: resource["resource"].as_str().unwrap_or_default().to_owned(),
                    kind: resource["responseKind"]["kind"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    namespaced: resource["scope"] == "Namespaced",
                });
            }
        }
    }
    out
}

/// Whether a group is served by the API server itself (custom groups need a CRD).
pub(super) fn is_builtin_group(group: &str) -> bool {
    !group.contains('.') || group.ends_with(".k8s.io")
}

/// Aggregated discovery is answered with the media type that says so, as kube-apiserver does;
/// clients (kubectl among them) read the body by it.
pub(super) const AGGREGATED_DISCOVERY: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

pub(super) fn unreachable_resource() -> Resource {
    Resource {
        group: String::new(),
        version: String::new(),
        plural: String::new(),
        kind: String::new(),
        namespaced: false,
    }
}

impl Shared {
    /// Every served resource: the built-in ones and those of stored CRDs.
    pub(super) fn served(store: &Store) -> Vec<Resource> {
        let mut out: Vec<Resource> = store
            .builtin
            .iter()
            .filter(|r| is_builtin_group(&r.group))
            .cloned()
            .collect();
        for ((group, plural, _, _), crd) in &store.objects {
            if group != "apiextensions.k8s.io" || plural != "customresourcedefinitions" {
                continue;
            }
            let spec = &crd["spec"];
            for version in spec["versions"].as_array().into_iter().flatten() {
                if version["served"] == Value::Bool(false) {
                    continue;
                }
                out.push(Resource {
                    group: spec["group"].as_str().unwrap_or_default().to_owned(),
                    version: version["name"].as_str().unwrap_or_default().to_owned(),
                    plural: spec["names"]["plural"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    kind: spec["names"]["kind"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    namespaced: spec["scope"] != "Cluster",
                });
            }
        }
        out
    }

    pub(super) fn aggregated_apis(&self) -> Value {
        let mut doc = self.discovery["apis.aggregated-v2.json"].clone();
        let store = self.store.lock();
        let served = Shared::served(&store);
        let mut items: Vec<Value> = doc["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|g| is_builtin_group(g["metadata"]["name"].as_str().unwrap_or_default()))
            .collect();
        let mut custom: BTreeMap<String, BTreeMap<String, Vec<Value>>> = BTreeMap::new();
        for r in served.iter().filter(|r| !is_builtin_group(&r.group)) {
            custom.entry(r.group.clone()).or_default().entry(r.version.clone()).or_default().push(json!({
                "resource": r.plural, "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
                "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
                "verbs": ["create", "delete", "get", "list", "patch", "update"],
            }));
        }
        for (group, versions) in custom {
            let versions: Vec<Value> = versions
                .into_iter()
                .map(|(version, resources)| json!({"version": version, "resources": resources, "freshness": "Current"}))
                .collect();
            items.push(json!({"metadata": {"name": group}, "versions": versions}));
        }
        doc["items"] = Value::Array(items);
        doc
    }

    pub(super) fn resource_list(
        &self,
        served: &[Resource],
        group: &str,
        version: &str,
    ) -> Response {
        let resources: Vec<Value> = served
            .iter()
            .filter(|r| r.group == group && r.version == version)
            .flat_map(|r| {
                let mut entries = vec![json!({"name": r.plural, "singularName": "", "namespaced": r.namespaced, "kind": r.kind,
                    "verbs": ["create", "delete", "get", "list", "patch", "update"]})];
                if has_scale(r) {
                    // kubectl scale finds the Scale's group, version and kind here.
                    entries.push(json!({"name": format!("{}/scale", r.plural), "singularName": "", "namespaced": r.namespaced,
                        "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}));
                }
                entries
            })
            .collect();
        if resources.is_empty() {
            return not_found_path();
        }
        let group_version = if group.is_empty() {
            version.to_owned()
        } else {
            format!("{group}/{version}")
        };
        ok_json(
            StatusCode::OK,
            &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}),
        )
    }
}
