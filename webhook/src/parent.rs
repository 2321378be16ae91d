//! Reading a scale subresource's parent from the API server.
//!
//! A `kubectl scale` arrives as an `autoscaling/v1` Scale: no labels, no annotations, no kind of
//! its parent. When the head index does not know the parent (a folder app's object is not in it),
//! only the parent itself can say whether it is managed and which app claims it, so the server
//! reads it with a GET before deciding. The decision stays pure: what was read becomes a
//! [`LiveParent`] fact.
//!
//! Without API access (no in-cluster service account, no kubeconfig) nothing is read and such a
//! scale passes as before; start-up logs a warning and `/readyz` says so.

use std::path::Path;
use std::time::Duration;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::{stream, StreamExt};
use gitops_shared::object::ObjectKey;
use kube::api::{ApiResource, DynamicObject};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::ApiGroup;
use kube::{Api, Client};

use crate::decision::{LiveParent, ScaleParentRef};
use crate::error::{Error, Result};

/// Reads scale parents with one client built at start-up.
#[derive(Clone)]
pub struct ParentReader {
    client: Client,
}

impl std::fmt::Debug for ParentReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParentReader").finish_non_exhaustive()
    }
}

impl ParentReader {
    /// A reader using `client` (tests hand in a mocked one).
    pub fn new(client: Client) -> ParentReader {
        ParentReader { client }
    }

    /// A reader for the API server of `kubeconfig`, or, without one, the usual inference
    /// (`KUBECONFIG`, `~/.kube/config`, then the in-cluster service account).
    pub async fn connect(kubeconfig: Option<&Path>) -> Result<ParentReader> {
        let what = kubeconfig.map_or_else(
            || "from KUBECONFIG or the in-cluster service account".to_owned(),
            |p| format!("from {}", p.display()),
        );
        let failed = |source: Box<dyn std::error::Error + Send + Sync>| Error::ApiClient {
            what: what.clone(),
            source,
        };
        let client = match kubeconfig {
            None => Client::try_default()
                .await
                .map_err(|e| failed(Box::new(e)))?,
            Some(path) => {
                let file = Kubeconfig::read_from(path).map_err(|e| failed(Box::new(e)))?;
                let config =
                    kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                        .await
                        .map_err(|e| failed(Box::new(e)))?;
                Client::try_from(config).map_err(|e| failed(Box::new(e)))?
            }
        };
        Ok(ParentReader { client })
    }

    /// GETs the parent within `timeout`. 404 means there is nothing to protect; every other
    /// failure is reported as a reason a person can act on.
    pub async fn read(&self, target: &ScaleParentRef, timeout: Duration) -> LiveParent {
        let api_version = if target.group.is_empty() {
            target.version.clone()
        } else {
            format!("{}/{}", target.group, target.version)
        };
        // The kind is not known from a Scale; a GET addresses the resource by its plural only.
        let resource = ApiResource {
            group: target.group.clone(),
            version: target.version.clone(),
            api_version,
            kind: String::new(),
            plural: target.resource.clone(),
        };
        let api: Api<DynamicObject> = if target.namespace.is_empty() {
            Api::all_with(self.client.clone(), &resource)
        } else {
            Api::namespaced_with(self.client.clone(), &target.namespace, &resource)
        };
        match tokio::time::timeout(timeout, api.get(&target.name)).await {
            Err(_) => LiveParent::Unreadable(format!(
                "the API server did not answer within {} ms",
                timeout.as_millis()
            )),
            Ok(Ok(object)) => match serde_json::to_value(object) {
                Ok(object) => LiveParent::Found(object),
                Err(error) => LiveParent::Unreadable(format!("unreadable answer: {error}")),
            },
            Ok(Err(kube::Error::Api(status))) if status.code == 404 => LiveParent::Absent,
            Ok(Err(kube::Error::Api(status))) => LiveParent::Unreadable(format!(
                "the API server answered {} ({})",
                status.code, status.message
            )),
            Ok(Err(error)) => LiveParent::Unreadable(crate::mirror::error_chain(&error)),
        }
    }

    /// Reads the metadata of each of `members` (the members an inventory write drops), a few at
    /// a time, all within `timeout`. Each kind's resource comes from its group's discovery,
    /// asked once per group; a kind the API server no longer serves has no objects (`Absent`).
    /// Only metadata is fetched: a Secret's values never reach the webhook this way.
    pub async fn read_members(
        &self,
        members: &[ObjectKey],
        timeout: Duration,
    ) -> BTreeMap<ObjectKey, LiveParent> {
        let groups: BTreeSet<String> = members.iter().map(|m| m.group.clone()).collect();
        let work = async {
            let discovered: BTreeMap<String, Result<ApiGroup, String>> = stream::iter(groups)
                .map(|group| {
                    let client = self.client.clone();
                    async move {
                        let found = kube::discovery::group(&client, &group)
                            .await
                            .map_err(|error| crate::mirror::error_chain(&error));
                        (group, found)
                    }
                })
                .buffer_unordered(MEMBER_READS_IN_FLIGHT)
                .collect()
                .await;
            let discovered = Arc::new(discovered);
            stream::iter(members.to_vec())
                .map(|member| {
                    let (reader, discovered) = (self.clone(), discovered.clone());
                    async move {
                        let read = reader
                            .read_member(&member, discovered.get(&member.group))
                            .await;
                        (member, read)
                    }
                })
                .buffer_unordered(MEMBER_READS_IN_FLIGHT)
                .collect::<BTreeMap<_, _>>()
                .await
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(read) => read,
            Err(_) => members
                .iter()
                .map(|m| {
                    let why = format!(
                        "the API server did not answer within {} ms",
                        timeout.as_millis()
                    );
                    (m.clone(), LiveParent::Unreadable(why))
                })
                .collect(),
        }
    }

    async fn read_member(
        &self,
        member: &ObjectKey,
        group: Option<&Result<ApiGroup, String>>,
    ) -> LiveParent {
        let group = match group {
            Some(Ok(group)) => group,
            Some(Err(error)) => return LiveParent::Unreadable(error.clone()),
            // The API server serves no such group: it holds no such object.
            None => return LiveParent::Absent,
        };
        let Some((resource, _)) = group.recommended_kind(&member.kind) else {
            return LiveParent::Absent;
        };
        let api: Api<DynamicObject> = if member.namespace.is_empty() {
            Api::all_with(self.client.clone(), &resource)
        } else {
            Api::namespaced_with(self.client.clone(), &member.namespace, &resource)
        };
        match api.get_metadata_opt(&member.name).await {
            Ok(None) => LiveParent::Absent,
            Ok(Some(object)) => match serde_json::to_value(object) {
                Ok(object) => LiveParent::Found(object),
                Err(error) => LiveParent::Unreadable(format!("unreadable answer: {error}")),
            },
            Err(kube::Error::Api(status)) => LiveParent::Unreadable(format!(
                "the API server answered {} ({})",
                status.code, status.message
            )),
            Err(error) => LiveParent::Unreadable(crate::mirror::error_chain(&error)),
        }
    }
}

/// Member reads in flight at once.
const MEMBER_READS_IN_FLIGHT: usize = 16;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use http::{Request, Response};
    use kube::client::Body;
    use serde_json::{json, Value};

    type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

    /// Answers each request with `(code, body)` and returns the method and URI it saw.
    fn verifier(
        mut handle: Handle,
        code: u16,
        body: Value,
    ) -> tokio::task::JoinHandle<Vec<String>> {
        tokio::spawn(async move {
            let mut seen = Vec::new();
            while let Some((request, send)) = handle.next_request().await {
                seen.push(format!("{} {}", request.method(), request.uri()));
                let response = Response::builder()
                    .status(code)
                    .body(Body::from(serde_json::to_vec(&body).unwrap()))
                    .unwrap();
                send.send_response(response);
            }
            seen
        })
    }

    fn web() -> ScaleParentRef {
        ScaleParentRef {
            group: "apps".into(),
            version: "v1".into(),
            resource: "deployments".into(),
            namespace: "shop".into(),
            name: "web".into(),
        }
    }

    async fn read_with(code: u16, body: Value) -> (LiveParent, Vec<String>) {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let seen = verifier(handle, code, body);
        let reader = ParentReader::new(Client::new(service, "default"));
        let parent = reader.read(&web(), Duration::from_secs(5)).await;
        drop(reader);
        (parent, seen.await.unwrap())
    }

    #[tokio::test]
    async fn gets_the_parent_by_group_version_and_plural() {
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
            "spec": {"replicas": 2}});
        let (parent, seen) = read_with(200, deployment.clone()).await;
        assert_eq!(
            seen,
            vec!["GET /apis/apps/v1/namespaces/shop/deployments/web"]
        );
        assert_eq!(parent, LiveParent::Found(deployment));
    }

    #[tokio::test]
    async fn not_found_is_absent_and_forbidden_is_unreadable() {
        let status = |code: u16, reason: &str, message: &str| {
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": reason, "code": code})
        };
        let (parent, _) = read_with(
            404,
            status(404, "NotFound", "deployments.apps \"web\" not found"),
        )
        .await;
        assert_eq!(parent, LiveParent::Absent);
        let message = "deployments.apps \"web\" is forbidden: User \"system:serviceaccount:gitops-webhook:gitops-webhook\" cannot get resource \"deployments\" in API group \"apps\" in the namespace \"shop\"";
        let (parent, _) = read_with(403, status(403, "Forbidden", message)).await;
        assert_eq!(
            parent,
            LiveParent::Unreadable(format!("the API server answered 403 ({message})"))
        );
    }

    #[tokio::test]
    async fn no_answer_in_time_is_unreadable() {
        let (service, _handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let reader = ParentReader::new(Client::new(service, "default"));
        let parent = reader.read(&web(), Duration::from_millis(50)).await;
        assert_eq!(
            parent,
            LiveParent::Unreadable("the API server did not answer within 50 ms".into())
        );
    }
}
