//! `kubectl gitops webhook manifests`: print everything that installs `gitops-webhook`, with a
//! fresh CA and serving certificate (rcgen) in the Secret and the CA in the caBundle, so the output
//! can be piped to `kubectl apply -f -` with nothing else to prepare.
//!
//! The objects are the ones in `manifests/base/`, compiled in, so the printed manifests and
//! `kubectl apply -k manifests/` never disagree.

use jiff::civil::Date;
use jiff::ToSpan;
use std::io::Write as _;

use base64::Engine as _;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::exit;

/// The base manifests, in apply order.
const BASE: &[(&str, &str)] = &[
    (
        "namespace.yaml",
        include_str!("../../manifests/base/namespace.yaml"),
    ),
    (
        "serviceaccount.yaml",
        include_str!("../../manifests/base/serviceaccount.yaml"),
    ),
    ("rbac.yaml", include_str!("../../manifests/base/rbac.yaml")),
    (
        "configmap.yaml",
        include_str!("../../manifests/base/configmap.yaml"),
    ),
    (
        "service.yaml",
        include_str!("../../manifests/base/service.yaml"),
    ),
    (
        "deployment.yaml",
        include_str!("../../manifests/base/deployment.yaml"),
    ),
    ("pdb.yaml", include_str!("../../manifests/base/pdb.yaml")),
    (
        "validatingwebhookconfiguration.yaml",
        include_str!("../../manifests/base/validatingwebhookconfiguration.yaml"),
    ),
];

/// The namespace the manifests install into.
pub const NAMESPACE: &str = "gitops-webhook";
/// The Service (and so the certificate's DNS name) of the webhook.
pub const SERVICE: &str = "gitops-webhook";
/// The Secret holding the serving certificate.
pub const TLS_SECRET: &str = "gitops-webhook-tls";
/// The image used unless `--image` says otherwise.
pub const DEFAULT_IMAGE: &str = "ghcr.io/kubectl-gitops/gitops-webhook:0.1.0";

/// Flags of `webhook`.
#[derive(Debug, Args)]
pub struct WebhookArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: WebhookCommand,
}

/// `webhook` subcommands.
#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Print the webhook's manifests with a fresh CA, serving certificate and caBundle.
    #[command(
        after_help = "Examples:\n  kubectl gitops webhook manifests --repo https://git.example/shop.git --branch main | kubectl apply -f -\n\nLockout recovery: kubectl delete validatingwebhookconfiguration gitops-webhook"
    )]
    Manifests(ManifestsArgs),
}

/// Flags of `webhook manifests`.
#[derive(Debug, Args)]
pub struct ManifestsArgs {
    /// The trusted repository, exactly as `kubectl gitops sync` records it.
    #[arg(long)]
    pub repo: String,
    /// The branch whose history is trusted.
    #[arg(long, default_value = "main")]
    pub branch: String,
    /// The webhook's container image.
    #[arg(long, default_value = DEFAULT_IMAGE)]
    pub image: String,
    /// How long the serving certificate is valid, in days.
    #[arg(long, default_value_t = 365)]
    pub days: u32,
}

/// Why the manifests could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum ManifestsError {
    /// A compiled-in manifest is not valid YAML (a build defect).
    #[error("manifests/base/{file}: {message}")]
    ParseManifest {
        /// The file.
        file: &'static str,
        /// The parser's message.
        message: String,
    },
    /// The certificates could not be made.
    #[error("cannot create the {what} certificate")]
    Certificate {
        /// CA or serving.
        what: &'static str,
        /// What rcgen said.
        #[source]
        source: rcgen::Error,
    },
    /// A flag is unusable.
    #[error("{0}")]
    InvalidFlag(String),
    /// Writing the output failed.
    #[error("cannot write the manifests")]
    Write(#[source] std::io::Error),
}

/// Runs `webhook`.
pub fn run(args: &WebhookArgs) -> anyhow::Result<u8> {
    match &args.command {
        WebhookCommand::Manifests(args) => {
            let documents = manifests(args)?;
            let mut out = std::io::stdout().lock();
            out.write_all(documents.as_bytes())
                .map_err(ManifestsError::Write)?;
            Ok(exit::OK)
        }
    }
}

/// The CA and serving certificate, PEM.
struct Pki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

fn pki(days: u32) -> Result<Pki, ManifestsError> {
    let ca_error = |source| ManifestsError::Certificate { what: "CA", source };
    let serving_error = |source| ManifestsError::Certificate {
        what: "serving",
        source,
    };
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(ca_error)?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "gitops-webhook CA");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    set_validity(&mut ca_params, 10 * 365);
    let ca = rcgen::CertifiedIssuer::self_signed(
        ca_params,
        rcgen::KeyPair::generate().map_err(ca_error)?,
    )
    .map_err(ca_error)?;
    let names = vec![
        format!("{SERVICE}.{NAMESPACE}.svc"),
        format!("{SERVICE}.{NAMESPACE}.svc.cluster.local"),
    ];
    let mut params = rcgen::CertificateParams::new(names).map_err(serving_error)?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("{SERVICE}.{NAMESPACE}.svc"),
    );
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    set_validity(&mut params, days);
    let key = rcgen::KeyPair::generate().map_err(serving_error)?;
    let cert = params.signed_by(&key, &ca).map_err(serving_error)?;
    Ok(Pki {
        ca_pem: ca.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// The serving certificate's validity, from yesterday (for clocks slightly behind) through
/// `days` days after today, as the dates rcgen takes.
fn validity(today: Date, days: u32) -> (Date, Date) {
    let start = today.yesterday().unwrap_or(today);
    let end = today
        .checked_add(i64::from(days).days())
        .unwrap_or(Date::MAX);
    (start, end)
}

/// Sets validity from yesterday for `days` days after today (UTC).
fn set_validity(params: &mut rcgen::CertificateParams, days: u32) {
    let (start, end) = validity(gitops_shared::timestamp::today(), days);
    let rcgen_date = |date: Date| {
        rcgen::date_time_ymd(
            i32::from(date.year()),
            u8::try_from(date.month()).unwrap_or(1),
            u8::try_from(date.day()).unwrap_or(1),
        )
    };
    params.not_before = rcgen_date(start);
    params.not_after = rcgen_date(end);
}

/// The manifests as multi-document YAML.
pub fn manifests(args: &ManifestsArgs) -> Result<String, ManifestsError> {
    if args.repo.trim().is_empty() {
        return Err(ManifestsError::InvalidFlag(
            "--repo must name the trusted repository".into(),
        ));
    }
    if args.branch.trim().is_empty() || args.branch.starts_with('-') {
        return Err(ManifestsError::InvalidFlag(
            "--branch must name a branch, such as main".into(),
        ));
    }
    if args.days == 0 {
        return Err(ManifestsError::InvalidFlag(
            "--days must be at least 1".into(),
        ));
    }
    let pki = pki(args.days)?;
    let encode = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let mut objects: Vec<Value> = Vec::new();
    for (file, text) in BASE {
        let documents = gitops_shared::yaml::documents(text.as_bytes()).map_err(|e| {
            ManifestsError::ParseManifest {
                file,
                message: e.to_string(),
            }
        })?;
        objects.extend(documents.into_iter().map(|document| document.value));
        if *file == "service.yaml" {
            objects.push(json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": TLS_SECRET},
                "type": "kubernetes.io/tls",
                "data": {"tls.crt": encode(&pki.cert_pem), "tls.key": encode(&pki.key_pem), "ca.crt": encode(&pki.ca_pem)},
            }));
        }
    }
    let mut out = String::new();
    for mut object in objects {
        let kind = object["kind"].as_str().unwrap_or_default().to_owned();
        let cluster_scoped = matches!(
            kind.as_str(),
            "Namespace" | "ValidatingWebhookConfiguration" | "ClusterRole" | "ClusterRoleBinding"
        );
        if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            if !cluster_scoped {
                metadata.insert("namespace".into(), json!(NAMESPACE));
            }
            let labels = metadata.entry("labels").or_insert_with(|| json!({}));
            labels["app.kubernetes.io/name"] = json!("gitops-webhook");
            labels["app.kubernetes.io/part-of"] = json!("kubectl-gitops");
        }
        match kind.as_str() {
            "ConfigMap" => {
                if let Some(config) = object.pointer_mut("/data/config.yaml") {
                    let text = config.as_str().unwrap_or_default();
                    // Keep the commented file; only the repository and branch change. JSON strings
                    // are valid YAML scalars, so the URL is quoted safely.
                    let text = text
                        .replace(
                            "url: https://git.example/shop.git",
                            &format!("url: {}", Value::from(args.repo.as_str())),
                        )
                        .replace(
                            "branch: main",
                            &format!("branch: {}", Value::from(args.branch.as_str())),
                        );
                    *config = json!(text);
                }
            }
            "Deployment" => {
                if let Some(containers) = object
                    .pointer_mut("/spec/template/spec/containers")
                    .and_then(Value::as_array_mut)
                {
                    for container in containers {
                        container["image"] = json!(args.image);
                    }
                }
            }
            "ValidatingWebhookConfiguration" => {
                if let Some(webhooks) = object.get_mut("webhooks").and_then(Value::as_array_mut) {
                    for webhook in webhooks {
                        webhook["clientConfig"]["caBundle"] = json!(encode(&pki.ca_pem));
                    }
                }
            }
            _ => {}
        }
        out.push_str("---\n");
        out.push_str(&gitops_shared::yaml::to_string(&object));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn documents(text: &str) -> Vec<Value> {
        gitops_shared::yaml::documents(text.as_bytes())
            .unwrap()
            .into_iter()
            .map(|document| document.value)
            .collect()
    }

    #[test]
    fn prints_everything_with_a_working_certificate_and_ca_bundle() {
        let args = ManifestsArgs {
            repo: "https://git.example/shop.git#x".into(),
            branch: "release".into(),
            image: "registry.local/gitops-webhook:dev".into(),
            days: 30,
        };
        let text = manifests(&args).unwrap();
        let objects = documents(&text);
        let kinds: Vec<&str> = objects
            .iter()
            .map(|o| o["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            vec![
                "Namespace",
                "ServiceAccount",
                "Role",
                "RoleBinding",
                "ClusterRole",
                "ClusterRoleBinding",
                "ClusterRole",
                "ClusterRoleBinding",
                "ConfigMap",
                "Service",
                "Secret",
                "Deployment",
                "PodDisruptionBudget",
                "ValidatingWebhookConfiguration"
            ]
        );
        let find = |kind: &str| objects.iter().find(|o| o["kind"] == kind).unwrap();
        let decode = |v: &Value| {
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(v.as_str().unwrap())
                    .unwrap(),
            )
            .unwrap()
        };
        let secret = find("Secret");
        assert_eq!(secret["metadata"]["namespace"], NAMESPACE);
        let ca = decode(
            &find("ValidatingWebhookConfiguration")["webhooks"][0]["clientConfig"]["caBundle"],
        );
        assert_eq!(ca, decode(&secret["data"]["ca.crt"]));
        assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(find("ValidatingWebhookConfiguration")["metadata"]["namespace"].is_null());
        assert_eq!(
            find("Deployment")["spec"]["template"]["spec"]["containers"][0]["image"],
            "registry.local/gitops-webhook:dev"
        );

        // The serving certificate chains to the caBundle for the Service's DNS name.
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls_pki_types::CertificateDer::from_pem_slice(ca.as_bytes()).unwrap())
            .unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            std::sync::Arc::new(roots),
            provider,
        )
        .build()
        .unwrap();
        let leaf = rustls_pki_types::CertificateDer::from_pem_slice(
            decode(&secret["data"]["tls.crt"]).as_bytes(),
        )
        .unwrap();
        let name =
            rustls_pki_types::ServerName::try_from("gitops-webhook.gitops-webhook.svc").unwrap();
        rustls::client::danger::ServerCertVerifier::verify_server_cert(
            verifier.as_ref(),
            &leaf,
            &[],
            &name,
            &[],
            rustls_pki_types::UnixTime::now(),
        )
        .unwrap();

        // The configuration names the repository and branch and is valid for the webhook.
        let config = find("ConfigMap")["data"]["config.yaml"]
            .as_str()
            .unwrap()
            .to_owned();
        let parsed =
            gitops_webhook::config::Config::parse(&config, std::path::Path::new("config.yaml"))
                .unwrap();
        assert_eq!(parsed.repositories[0].url, "https://git.example/shop.git#x");
        assert_eq!(parsed.repositories[0].branch, "release");
        assert!(
            config.contains("# Trusted repositories"),
            "comments are kept"
        );
    }

    fn printed() -> Vec<Value> {
        documents(
            &manifests(&ManifestsArgs {
                repo: "https://git.example/shop.git".into(),
                branch: "main".into(),
                image: DEFAULT_IMAGE.into(),
                days: 30,
            })
            .unwrap(),
        )
    }

    #[test]
    fn grants_get_on_scale_parents_and_pods_and_on_inventory_members() {
        let objects = printed();
        let find = |kind: &str| objects.iter().find(|o| o["kind"] == kind).unwrap();
        let named = |kind: &str, name: &str| {
            objects
                .iter()
                .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
                .unwrap()
        };
        // Only reads: the members an inventory write drops may be of any kind.
        let members = named("ClusterRole", "gitops-webhook-inventory-members");
        assert_eq!(
            members["rules"],
            json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["get"]}])
        );
        let binding = named("ClusterRoleBinding", "gitops-webhook-inventory-members");
        assert_eq!(
            binding["roleRef"]["name"],
            "gitops-webhook-inventory-members"
        );
        assert_eq!(
            binding["subjects"],
            json!([{"kind": "ServiceAccount", "name": "gitops-webhook", "namespace": NAMESPACE}])
        );
        let role = named("ClusterRole", "gitops-webhook-scale-parents");
        assert!(role["metadata"]["namespace"].is_null());
        assert_eq!(
            role["rules"],
            json!([
                {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets", "replicasets"], "verbs": ["get"]},
                {"apiGroups": [""], "resources": ["replicationcontrollers", "pods"], "verbs": ["get"]}
            ])
        );
        let binding = named("ClusterRoleBinding", "gitops-webhook-scale-parents");
        assert!(binding["metadata"]["namespace"].is_null());
        assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
        assert_eq!(
            binding["subjects"],
            json!([{"kind": "ServiceAccount", "name": "gitops-webhook", "namespace": NAMESPACE}])
        );
        // The pod gets the token that reads with it.
        assert_eq!(find("ServiceAccount")["automountServiceAccountToken"], true);
        assert_eq!(
            find("Deployment")["spec"]["template"]["spec"]["automountServiceAccountToken"],
            true
        );
    }

    /// `kubectl gitops webhook manifests` and `kubectl apply -k manifests/` grant the same: the
    /// service account and its RBAC objects are equal, as `kubectl kustomize` builds the base.
    #[test]
    fn prints_the_same_rbac_as_the_kustomize_base() {
        let base = concat!(env!("CARGO_MANIFEST_DIR"), "/../manifests");
        let Ok(output) = std::process::Command::new("kubectl")
            .args(["kustomize", base])
            .output()
        else {
            eprintln!(
                "kubectl is not installed: the comparison with kubectl kustomize is left out"
            );
            return;
        };
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let built = documents(&String::from_utf8(output.stdout).unwrap());
        let rbac = |objects: &[Value]| -> Vec<Value> {
            let mut out: Vec<Value> = objects
                .iter()
                .filter(|o| {
                    matches!(
                        o["kind"].as_str(),
                        Some(
                            "ServiceAccount"
                                | "Role"
                                | "RoleBinding"
                                | "ClusterRole"
                                | "ClusterRoleBinding"
                        )
                    )
                })
                .cloned()
                .collect();
            out.sort_by_key(|o| {
                (
                    o["kind"].as_str().unwrap().to_owned(),
                    o["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                )
            });
            out
        };
        let (printed, built) = (rbac(&printed()), rbac(&built));
        assert_eq!(printed.len(), 7);
        assert_eq!(printed, built);
    }

    #[test]
    fn validity_runs_from_yesterday_for_the_days_asked() {
        let date = |s: &str| s.parse::<Date>().unwrap();
        assert_eq!(
            validity(date("2000-03-01"), 30),
            (date("2000-02-29"), date("2000-03-31"))
        );
        assert_eq!(
            validity(date("2026-12-31"), 1),
            (date("2026-12-30"), date("2027-01-01"))
        );
        assert_eq!(
            validity(date("2026-01-01"), 365),
            (date("2025-12-31"), date("2027-01-01"))
        );
    }

    #[test]
    fn refuses_unusable_flags() {
        let args = ManifestsArgs {
            repo: " ".into(),
            branch: "main".into(),
            image: DEFAULT_IMAGE.into(),
            days: 1,
        };
        assert_eq!(
            manifests(&args).unwrap_err().to_string(),
            "--repo must name the trusted repository"
        );
    }
}
