//! Validating admission webhooks: which registrations match a write, and calling them.

use super::*;

/// A copy of what admission reads from the store, so webhooks can be called without its lock.
pub(super) struct Admission {
    pub(super) namespace_labels: Value,
    pub(super) configurations: Vec<Value>,
}

impl Shared {
    /// Calls every registered ValidatingWebhookConfiguration webhook that matches, the way
    /// kube-apiserver does; a denial (or a failed call under `failurePolicy: Fail`) becomes the
    /// error response. The store is unlocked while the webhooks are called, as kube-apiserver
    /// holds no lock then: a webhook may read this server (gitops-webhook reads the members an
    /// inventory write drops). A write that lands meanwhile is overwritten by this one (the
    /// real server would retry on the resourceVersion conflict); the tests write each object
    /// from one place at a time.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn admit(
        &self,
        store: &mut StoreGuard<'_>,
        target: &Target,
        operation: &str,
        name: &str,
        old: Option<&Value>,
        new: Option<&Value>,
        user: &User,
        query: &HashMap<String, String>,
    ) -> Option<Response> {
        let admission = Shared::admission(store, target, new.or(old))?;
        parking_lot::MutexGuard::unlocked(store, || {
            self.call_webhooks(
                &admission, target, None, operation, name, old, new, user, query,
            )
        })
    }

    /// What admission needs from the store: the namespace's labels and the registered
    /// ValidatingWebhookConfigurations. `None` for the configurations themselves, which are never
    /// sent to webhooks.
    pub(super) fn admission(
        store: &Store,
        target: &Target,
        object: Option<&Value>,
    ) -> Option<Admission> {
        if target.resource.group == "admissionregistration.k8s.io" {
            return None;
        }
        let namespace_labels = if !target.resource.namespaced {
            object
                .map(|o| o["metadata"]["labels"].clone())
                .unwrap_or(Value::Null)
        } else {
            let key = (
                String::new(),
                "namespaces".to_owned(),
                String::new(),
                target.namespace.clone(),
            );
            store
                .objects
                .get(&key)
                .map(|n| n["metadata"]["labels"].clone())
                .unwrap_or(Value::Null)
        };
        let configurations = store
            .objects
            .iter()
            .filter(|((group, plural, _, _), _)| {
                group == "admissionregistration.k8s.io"
                    && plural == "validatingwebhookconfigurations"
            })
            .map(|(_, configuration)| configuration.clone())
            .collect();
        Some(Admission {
            namespace_labels,
            configurations,
        })
    }

    /// Calls the matching webhooks of `admission` one after another; the first denial (or failed
    /// call under `failurePolicy: Fail`) becomes the error response.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn call_webhooks(
        &self,
        admission: &Admission,
        target: &Target,
        subresource: Option<&str>,
        operation: &str,
        name: &str,
        old: Option<&Value>,
        new: Option<&Value>,
        user: &User,
        query: &HashMap<String, String>,
    ) -> Option<Response> {
        let namespace_labels = &admission.namespace_labels;
        let attributes = Attributes {
            operation,
            group: &target.resource.group,
            version: &target.resource.version,
            kind: &target.resource.kind,
            resource: &target.resource.plural,
            namespaced: target.resource.namespaced,
            namespace: &target.namespace,
            name,
            subresource,
        };
        for configuration in &admission.configurations {
            for webhook in configuration["webhooks"].as_array().into_iter().flatten() {
                let webhook_name = webhook["name"].as_str().unwrap_or_default();
                let object_labels_match = [new, old].into_iter().flatten().any(|o| {
                    selector_matches(&webhook["objectSelector"], &o["metadata"]["labels"])
                });
                if !rules_match(webhook, &attributes)
                    || !selector_matches(&webhook["namespaceSelector"], namespace_labels)
                    || !object_labels_match
                {
                    continue;
                }
                let Some(url) = webhook["clientConfig"]["url"].as_str() else {
                    continue; // service references are not modelled
                };
                let uid = format!(
                    "00000000-0000-4000-8000-{:012x}",
                    self.resource_version.fetch_add(1, Ordering::SeqCst)
                );
                let body = review(
                    &uid,
                    &attributes,
                    user,
                    new,
                    old,
                    is_dry_run(query),
                    query.get("fieldManager").map(String::as_str),
                );
                let timeout = std::time::Duration::from_secs(
                    webhook["timeoutSeconds"].as_u64().unwrap_or(10),
                );
                let ca = webhook["clientConfig"]["caBundle"].as_str();
                // On a runtime of its own: this server's workers may all be waiting for the store.
                let answer = std::thread::scope(|scope| {
                    scope
                        .spawn(|| {
                            tokio::runtime::Builder::new_current_thread()
                                .enable_all()
                                .build()
                                .map_err(|e| CallError::Transport(e.to_string()))
                                .and_then(|runtime| runtime.block_on(call(url, ca, &body, timeout)))
                        })
                        .join()
                        .unwrap_or_else(|_| {
                            Err(CallError::Transport("webhook client panicked".into()))
                        })
                });
                lock(&self.log.admissions).push(body.clone());
                let fail_open = webhook["failurePolicy"].as_str() == Some("Ignore");
                let response = match answer {
                    Ok(response) => response,
                    Err(_) if fail_open => continue,
                    Err(error) => {
                        return Some(status(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "InternalError",
                            format!("Internal error occurred: failed calling webhook \"{webhook_name}\": failed to call webhook: Post \"{url}\": {error}"),
                            json!({"causes": [{"message": format!("failed calling webhook \"{webhook_name}\": {error}")}]}),
                        ));
                    }
                };
                let result = &response["response"];
                if result["allowed"].as_bool() == Some(true) {
                    continue;
                }
                let st = &result["status"];
                let code = u16::try_from(st["code"].as_u64().unwrap_or(0).max(400)).unwrap_or(400);
                let denied_by = format!("admission webhook \"{webhook_name}\" denied the request");
                let message = match (st["message"].as_str(), st["reason"].as_str()) {
                    (Some(m), _) if !m.is_empty() => format!("{denied_by}: {m}"),
                    (_, Some(r)) if !r.is_empty() => format!("{denied_by}: {r}"),
                    _ => format!("{denied_by} without explanation"),
                };
                let code = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
                let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": message, "reason": st["reason"].as_str().unwrap_or_default(),
                    "details": st["details"].clone(), "code": code.as_u16()});
                return Some(
                    (
                        code,
                        [("content-type", "application/json")],
                        body.to_string(),
                    )
                        .into_response(),
                );
            }
        }
        None
    }
}
