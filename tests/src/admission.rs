//! How the test API server calls validating admission webhooks: which registered webhooks match a
//! request (rules, scope, namespace and object selectors), the AdmissionReview v1 it posts to
//! `clientConfig.url` (HTTPS trusting `caBundle`, or plain HTTP), and how a denial becomes the
//! error the client sees — the same shape as kube-apiserver's
//! (`admission webhook "<name>" denied the request: <message>`, the webhook's code, at least 400).

use std::time::Duration;

use base64::Engine as _;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};

/// Why a webhook could not be called.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The URL is not usable.
    #[error("invalid webhook URL {0:?}")]
    Url(String),
    /// The caBundle holds no usable certificate.
    #[error("invalid caBundle")]
    CaBundle,
    /// Connecting, TLS or HTTP failed.
    #[error("{0}")]
    Transport(String),
    /// No answer in time.
    #[error("context deadline exceeded")]
    Timeout,
    /// The answer is not an AdmissionReview.
    #[error("unreadable AdmissionReview response: {0}")]
    Response(String),
}

/// One label selector (`matchLabels` and `matchExpressions`) matched against `labels`. A missing
/// selector matches everything.
pub fn selector_matches(selector: &Value, labels: &Value) -> bool {
    let get = |k: &str| labels.get(k).and_then(Value::as_str);
    if let Some(map) = selector.get("matchLabels").and_then(Value::as_object) {
        if !map.iter().all(|(k, v)| get(k) == v.as_str()) {
            return false;
        }
    }
    for expression in selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = expression["key"].as_str().unwrap_or_default();
        let values: Vec<&str> = expression["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let ok = match expression["operator"].as_str().unwrap_or_default() {
            "In" => get(key).is_some_and(|v| values.contains(&v)),
            "NotIn" => !get(key).is_some_and(|v| values.contains(&v)),
            "Exists" => get(key).is_some(),
            "DoesNotExist" => get(key).is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// What is being admitted.
pub struct Attributes<'a> {
    /// CREATE, UPDATE or DELETE.
    pub operation: &'a str,
    /// API group.
    pub group: &'a str,
    /// Version.
    pub version: &'a str,
    /// Kind.
    pub kind: &'a str,
    /// Plural resource.
    pub resource: &'a str,
    /// Whether the resource is namespaced.
    pub namespaced: bool,
    /// Namespace ("" when cluster-scoped).
    pub namespace: &'a str,
    /// Name.
    pub name: &'a str,
    /// The subresource addressed (`scale`), if any.
    pub subresource: Option<&'a str>,
}

/// Whether one webhook's rules match.
pub fn rules_match(webhook: &Value, attributes: &Attributes<'_>) -> bool {
    let has = |list: &Value, value: &str| {
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .any(|v| v == "*" || v == value)
    };
    webhook["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|rule| {
            let scope = rule["scope"].as_str().unwrap_or("*");
            let scope_ok = match scope {
                "Cluster" => !attributes.namespaced,
                "Namespaced" => attributes.namespaced,
                _ => true,
            };
            // `*` is every resource but no subresource; `*/*` both; `*/scale` every scale.
            let resource_ok = rule["resources"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .any(|r| match attributes.subresource {
                    None => r == "*" || r == "*/*" || r == attributes.resource,
                    Some(sub) => {
                        r == "*/*"
                            || r.split_once('/').is_some_and(|(resource, rest)| {
                                (resource == "*" || resource == attributes.resource) && rest == sub
                            })
                    }
                });
            scope_ok
                && resource_ok
                && has(&rule["operations"], attributes.operation)
                && has(&rule["apiGroups"], attributes.group)
                && has(&rule["apiVersions"], attributes.version)
        })
}

/// The AdmissionReview v1 request body, as kube-apiserver builds it.
#[allow(clippy::too_many_arguments)]
pub fn review(
    uid: &str,
    attributes: &Attributes<'_>,
    user: &crate::apiserver::User,
    object: Option<&Value>,
    old_object: Option<&Value>,
    dry_run: bool,
    field_manager: Option<&str>,
) -> Value {
    // The scale subresource of every kind it models is an autoscaling/v1 Scale, as kube-apiserver
    // serves it for the built-in workloads.
    let kind = match attributes.subresource {
        Some("scale") => json!({"group": "autoscaling", "version": "v1", "kind": "Scale"}),
        _ => {
            json!({"group": attributes.group, "version": attributes.version, "kind": attributes.kind})
        }
    };
    let resource = json!({"group": attributes.group, "version": attributes.version, "resource": attributes.resource});
    let options_kind = match attributes.operation {
        "CREATE" => "CreateOptions",
        "UPDATE" => "UpdateOptions",
        _ => "DeleteOptions",
    };
    let mut options = json!({"kind": options_kind, "apiVersion": "meta.k8s.io/v1"});
    if let Some(manager) = field_manager {
        options["fieldManager"] = json!(manager);
    }
    let mut request = json!({"uid": uid, "kind": kind.clone(), "resource": resource.clone()});
    if let Some(subresource) = attributes.subresource {
        request["subResource"] = json!(subresource);
    }
    request["requestKind"] = kind;
    request["requestResource"] = resource;
    if let Some(subresource) = attributes.subresource {
        request["requestSubResource"] = json!(subresource);
    }
    request["name"] = json!(attributes.name);
    if attributes.namespaced {
        request["namespace"] = json!(attributes.namespace);
    }
    let rest = json!({
        "operation": attributes.operation,
        "userInfo": {"username": user.name, "groups": user.groups},
        "object": object.cloned().unwrap_or(Value::Null),
        "oldObject": old_object.cloned().unwrap_or(Value::Null),
        "dryRun": dry_run,
        "options": options,
    });
    if let (Some(request), Value::Object(rest)) = (request.as_object_mut(), rest) {
        request.extend(rest);
    }
    json!({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": request})
}

/// Posts a review to `url` and returns the response review.
pub async fn call(
    url: &str,
    ca_bundle: Option<&str>,
    body: &Value,
    timeout: Duration,
) -> Result<Value, CallError> {
    match tokio::time::timeout(timeout, post(url, ca_bundle, body)).await {
        Ok(result) => result,
        Err(_) => Err(CallError::Timeout),
    }
}

async fn post(url: &str, ca_bundle: Option<&str>, body: &Value) -> Result<Value, CallError> {
    let uri: http::Uri = url.parse().map_err(|_| CallError::Url(url.to_owned()))?;
    let host = uri
        .host()
        .ok_or_else(|| CallError::Url(url.to_owned()))?
        .to_owned();
    let https = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let stream = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|e| CallError::Transport(e.to_string()))?;
    let request = http::Request::post(
        uri.path_and_query()
            .map(ToString::to_string)
            .unwrap_or_else(|| "/".into()),
    )
    .header("host", format!("{host}:{port}"))
    .header("content-type", "application/json")
    .header("accept", "application/json")
    .body(Full::new(Bytes::from(
        serde_json::to_vec(body).unwrap_or_default(),
    )))
    .map_err(|e| CallError::Transport(e.to_string()))?;
    let response = if https {
        let mut roots = rustls::RootCertStore::empty();
        if let Some(bundle) = ca_bundle {
            let pem = base64::engine::general_purpose::STANDARD
                .decode(bundle)
                .map_err(|_| CallError::CaBundle)?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                roots
                    .add(cert.map_err(|_| CallError::CaBundle)?)
                    .map_err(|_| CallError::CaBundle)?;
            }
        }
        let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| CallError::Transport(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
        let name = ServerName::try_from(host.trim_matches(['[', ']']).to_owned())
            .map_err(|_| CallError::Url(url.to_owned()))?;
        let tls = connector
            .connect(name, stream)
            .await
            .map_err(|e| CallError::Transport(format!("tls: {e}")))?;
        send(TokioIo::new(tls), request).await?
    } else {
        send(TokioIo::new(stream), request).await?
    };
    serde_json::from_slice(&response).map_err(|e| CallError::Response(e.to_string()))
}

async fn send<T>(io: T, request: http::Request<Full<Bytes>>) -> Result<Bytes, CallError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| CallError::Transport(e.to_string()))?;
    tokio::spawn(connection);
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| CallError::Transport(e.to_string()))?;
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| CallError::Transport(e.to_string()))?
        .to_bytes();
    if !status.is_success() {
        return Err(CallError::Response(format!("HTTP {status}")));
    }
    Ok(bytes)
}
