//! The webhook's configuration: one YAML file, read at start-up. Unknown keys and invalid values
//! fail start-up with the key and the reason.
//!
//! ```yaml
//! repositories:
//!   - url: https://git.example/shop.git
//!     branch: main
//!     tokenFile: /etc/gitops/token      # optional; or sshKeyFile
//! exemptUsers: [system:kube-controller-manager, system:serviceaccount:kube-system:deployment-controller]
//! exemptGroups: [system:nodes]
//! breakGlassGroup: gitops:break-glass
//! gitOnlyNamespaces: [shop]
//! revisionMode: forward                 # or head
//! fetchInterval: 60s
//! missFetchInterval: 1s               # at most one on-demand fetch per interval; below decisionDeadline
//! renderCacheEntries: 256
//! renderConcurrency: 2                  # renders at once; more wait within the deadline
//! decisionDeadline: 4s
//! cacheDir: /var/cache/gitops-webhook
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};

/// The users exempt by default: the control plane's own identities and, by name, the service
/// accounts kube-controller-manager runs its controllers as (`--use-service-account-credentials`,
/// as read from a v1.36 control plane). Never a whole population such as "every service account
/// of kube-system": add-ons installed there would be exempt too, and anyone with `edit` in a
/// namespace can run a pod as any service account of it.
pub const DEFAULT_EXEMPT_USERS: &[&str] = &[
    "system:kube-controller-manager",
    "system:kube-scheduler",
    "system:apiserver",
    "system:serviceaccount:kube-system:attachdetach-controller",
    "system:serviceaccount:kube-system:certificate-controller",
    "system:serviceaccount:kube-system:clusterrole-aggregation-controller",
    "system:serviceaccount:kube-system:cronjob-controller",
    "system:serviceaccount:kube-system:daemon-set-controller",
    "system:serviceaccount:kube-system:deployment-controller",
    "system:serviceaccount:kube-system:device-taint-eviction-controller",
    "system:serviceaccount:kube-system:disruption-controller",
    "system:serviceaccount:kube-system:endpoint-controller",
    "system:serviceaccount:kube-system:endpointslice-controller",
    "system:serviceaccount:kube-system:endpointslicemirroring-controller",
    "system:serviceaccount:kube-system:ephemeral-volume-controller",
    "system:serviceaccount:kube-system:expand-controller",
    "system:serviceaccount:kube-system:generic-garbage-collector",
    "system:serviceaccount:kube-system:horizontal-pod-autoscaler",
    "system:serviceaccount:kube-system:job-controller",
    "system:serviceaccount:kube-system:legacy-service-account-token-cleaner",
    "system:serviceaccount:kube-system:namespace-controller",
    "system:serviceaccount:kube-system:node-controller",
    "system:serviceaccount:kube-system:persistent-volume-binder",
    "system:serviceaccount:kube-system:pod-garbage-collector",
    "system:serviceaccount:kube-system:pv-protection-controller",
    "system:serviceaccount:kube-system:pvc-protection-controller",
    "system:serviceaccount:kube-system:replicaset-controller",
    "system:serviceaccount:kube-system:replication-controller",
    "system:serviceaccount:kube-system:resource-claim-controller",
    "system:serviceaccount:kube-system:resourcequota-controller",
    "system:serviceaccount:kube-system:root-ca-cert-publisher",
    "system:serviceaccount:kube-system:service-account-controller",
    "system:serviceaccount:kube-system:service-cidrs-controller",
    "system:serviceaccount:kube-system:statefulset-controller",
    "system:serviceaccount:kube-system:ttl-after-finished-controller",
    "system:serviceaccount:kube-system:ttl-controller",
    "system:serviceaccount:kube-system:validatingadmissionpolicy-status-controller",
    "system:serviceaccount:kube-system:volumeattributesclass-protection-controller",
];

/// The groups exempt by default: the kubelets, which delete a Pod for good once it has stopped
/// and may only touch their own node's Pods (NodeRestriction); no person is in this group.
pub const DEFAULT_EXEMPT_GROUPS: &[&str] = &["system:nodes"];

/// Groups that hold whole populations of users or service accounts; exempting one would exempt
/// people (or pods anyone with `edit` can run).
const POPULATION_GROUPS: &[&str] = &[
    "system:authenticated",
    "system:unauthenticated",
    "system:serviceaccounts",
    "system:masters",
];

/// The break-glass group by default.
pub const DEFAULT_BREAK_GLASS_GROUP: &str = "gitops:break-glass";

/// The API server's `timeoutSeconds` for the webhook; the decision deadline must stay below it.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// Which revisions an UPDATE may move an object to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RevisionMode {
    /// The old object's revision or any descendant of it on the tracked branch.
    #[default]
    Forward,
    /// Only the tracked branch's head.
    Head,
}

/// One trusted repository and the branch it tracks.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Repository {
    /// The URL exactly as the plugin records it in the repo annotation.
    pub url: String,
    /// The tracked branch: only commits reachable from it are trusted.
    pub branch: String,
    /// Other spellings of the same repository's URL (`git@host:org/repo.git` beside
    /// `https://host/org/repo.git`): claims under any of them are one repository, so revisions
    /// move forward across spellings. The mirror fetches `url`.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// User name for HTTPS tokens and SSH keys.
    #[serde(default)]
    pub username: Option<String>,
    /// A file holding an HTTPS token.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// A private SSH key file.
    #[serde(default)]
    pub ssh_key_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawConfig {
    repositories: Vec<Repository>,
    #[serde(default)]
    exempt_users: Option<Vec<String>>,
    #[serde(default)]
    exempt_groups: Option<Vec<String>>,
    #[serde(default)]
    break_glass_group: Option<String>,
    #[serde(default)]
    git_only_namespaces: Vec<String>,
    #[serde(default)]
    revision_mode: RevisionMode,
    #[serde(default)]
    fetch_interval: Option<String>,
    #[serde(default)]
    miss_fetch_interval: Option<String>,
    #[serde(default)]
    render_cache_entries: Option<usize>,
    #[serde(default)]
    render_concurrency: Option<usize>,
    #[serde(default)]
    decision_deadline: Option<String>,
    #[serde(default)]
    cache_dir: Option<PathBuf>,
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Trusted repositories.
    pub repositories: Vec<Repository>,
    /// Users that may change what Git does not declare and delete managed objects. A trailing
    /// `*` matches any suffix.
    pub exempt_users: Vec<String>,
    /// Groups whose members are exempt like [`Config::exempt_users`].
    pub exempt_groups: Vec<String>,
    /// Members pass every check, with a warning, a log line and a metric.
    pub break_glass_group: String,
    /// Namespaces where unmanaged objects may not be created.
    pub git_only_namespaces: Vec<String>,
    /// Forward or head-only revisions.
    pub revision_mode: RevisionMode,
    /// How often mirrors are fetched.
    pub fetch_interval: Duration,
    /// At most one fetch per repository triggered by an unknown commit in this interval.
    pub miss_fetch_interval: Duration,
    /// How many renders (commit, app) are kept.
    pub render_cache_entries: usize,
    /// How many renders run at once; more wait (within the decision deadline), so made-up
    /// claims cannot fork `kubectl kustomize` or `helm` without bound.
    pub render_concurrency: usize,
    /// A decision that takes longer becomes a denial.
    pub decision_deadline: Duration,
    /// Where the mirrors live.
    pub cache_dir: PathBuf,
}

impl Config {
    /// Reads and validates the file.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadConfig {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses and validates YAML text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config> {
        let invalid = |message: String| Error::InvalidConfig {
            path: path.to_owned(),
            message,
        };
        let raw: RawConfig =
            gitops_shared::yaml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if raw.repositories.is_empty() {
            return Err(invalid(
                "repositories: list at least one trusted repository (url and branch)".into(),
            ));
        }
        for (i, repo) in raw.repositories.iter().enumerate() {
            if repo.url.trim().is_empty() {
                return Err(invalid(format!("repositories[{i}].url: must not be empty")));
            }
            if repo.branch.trim().is_empty() || repo.branch.starts_with('-') {
                return Err(invalid(format!(
                    "repositories[{i}].branch: must name a branch, such as main"
                )));
            }
            if repo.token_file.is_some() && repo.ssh_key_file.is_some() {
                return Err(invalid(format!(
                    "repositories[{i}]: give tokenFile or sshKeyFile, not both"
                )));
            }
            if raw.repositories[..i].iter().any(|r| r.url == repo.url) {
                return Err(invalid(format!(
                    "repositories[{i}].url: {} is listed twice",
                    repo.url
                )));
            }
            let spellings = || std::iter::once(&repo.url).chain(&repo.aliases);
            if let Some(twice) = spellings().find(|url| {
                raw.repositories[..i]
                    .iter()
                    .any(|r| r.url == **url || r.aliases.contains(url))
            }) {
                return Err(invalid(format!(
                    "repositories[{i}]: {twice} is already a URL or alias of an earlier repository; one repository, one entry"
                )));
            }
        }
        let exempt_users = raw.exempt_users.unwrap_or_else(|| {
            DEFAULT_EXEMPT_USERS
                .iter()
                .map(|s| (*s).to_owned())
                .collect()
        });
        for (i, user) in exempt_users.iter().enumerate() {
            if user.contains('*') || user.trim().is_empty() {
                return Err(invalid(format!(
                    "exemptUsers[{i}]: {user:?} is a pattern; name each identity instead (system:serviceaccount:<namespace>:<name>) — a pattern exempts a whole population, such as every add-on of kube-system, and anyone with edit in a namespace can run a pod as any of its service accounts"
                )));
            }
        }
        let exempt_groups = raw.exempt_groups.unwrap_or_else(|| {
            DEFAULT_EXEMPT_GROUPS
                .iter()
                .map(|s| (*s).to_owned())
                .collect()
        });
        for (i, group) in exempt_groups.iter().enumerate() {
            let population = POPULATION_GROUPS.contains(&group.as_str())
                || group.starts_with("system:serviceaccounts:")
                || group.contains('*')
                || group.trim().is_empty();
            if population {
                return Err(invalid(format!(
                    "exemptGroups[{i}]: {group:?} holds a whole population of users or service accounts and is far too broad to exempt; name single identities in exemptUsers"
                )));
            }
        }
        let duration = |key: &str, value: Option<&str>, default: Duration| match value {
            None => Ok(default),
            Some(text) => parse_duration(text).map_err(|error| invalid(format!("{key}: {error}"))),
        };
        let fetch_interval = duration(
            "fetchInterval",
            raw.fetch_interval.as_deref(),
            Duration::from_secs(60),
        )?;
        if fetch_interval < Duration::from_secs(1) {
            return Err(invalid("fetchInterval: must be at least 1s".into()));
        }
        let miss_fetch_interval = duration(
            "missFetchInterval",
            raw.miss_fetch_interval.as_deref(),
            Duration::from_secs(1),
        )?;
        let decision_deadline = duration(
            "decisionDeadline",
            raw.decision_deadline.as_deref(),
            Duration::from_secs(4),
        )?;
        if decision_deadline.is_zero() || decision_deadline >= WEBHOOK_TIMEOUT {
            return Err(invalid(format!(
                "decisionDeadline: must be above 0 and below the webhook's timeoutSeconds ({}s), so a slow render becomes a clear denial rather than an API server timeout",
                WEBHOOK_TIMEOUT.as_secs()
            )));
        }
        if miss_fetch_interval >= decision_deadline {
            return Err(invalid(format!(
                "missFetchInterval: {} ms is not below decisionDeadline ({} ms); a review naming a commit pushed a moment ago waits for the next fetch, which must fit the deadline",
                miss_fetch_interval.as_millis(),
                decision_deadline.as_millis()
            )));
        }
        let render_concurrency = raw.render_concurrency.unwrap_or(2);
        if render_concurrency == 0 {
            return Err(invalid("renderConcurrency: must be at least 1".into()));
        }
        let render_cache_entries = raw.render_cache_entries.unwrap_or(256);
        if render_cache_entries == 0 {
            return Err(invalid("renderCacheEntries: must be at least 1".into()));
        }
        let break_glass_group = raw
            .break_glass_group
            .unwrap_or_else(|| DEFAULT_BREAK_GLASS_GROUP.to_owned());
        if break_glass_group.trim().is_empty() {
            return Err(invalid("breakGlassGroup: must not be empty".into()));
        }
        Ok(Config {
            repositories: raw.repositories,
            exempt_users,
            exempt_groups,
            break_glass_group,
            git_only_namespaces: raw.git_only_namespaces,
            revision_mode: raw.revision_mode,
            fetch_interval,
            miss_fetch_interval,
            render_cache_entries,
            render_concurrency,
            decision_deadline,
            cache_dir: raw
                .cache_dir
                .unwrap_or_else(|| PathBuf::from("/var/cache/gitops-webhook")),
        })
    }

    /// The trusted repository with this URL.
    /// The trusted repository with this URL, or with it among its aliases.
    pub fn repository(&self, url: &str) -> Option<&Repository> {
        self.repositories
            .iter()
            .find(|r| r.url == url || r.aliases.iter().any(|a| a == url))
    }

    /// True when the user (or one of the groups) is exempt: names match exactly.
    pub fn is_exempt(&self, username: &str, groups: &[String]) -> bool {
        self.exempt_users.iter().any(|u| u == username)
            || groups.iter().any(|g| self.exempt_groups.contains(g))
    }
}

/// Durations as everywhere else (`500ms`, `4s`, `1m30s`, `1h`): one grammar, Go's.
pub use gitops_shared::duration::parse_duration;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config> {
        Config::parse(text, Path::new("config.yaml"))
    }

    #[test]
    fn defaults_and_exemptions() {
        let config =
            parse("repositories:\n  - url: https://git.example/shop.git\n    branch: main\n")
                .expect("valid");
        assert_eq!(config.decision_deadline, Duration::from_secs(4));
        assert_eq!(config.revision_mode, RevisionMode::Forward);
        assert!(config.is_exempt(
            "system:serviceaccount:kube-system:generic-garbage-collector",
            &[]
        ));
        assert!(config.is_exempt("system:kube-controller-manager", &[]));
        assert!(config.is_exempt(
            "system:serviceaccount:kube-system:endpointslice-controller",
            &[]
        ));
        assert!(config.is_exempt("system:node:n1", &["system:nodes".to_owned()]));
        // An add-on in kube-system is not a controller of the control plane.
        assert!(!config.is_exempt("system:serviceaccount:kube-system:some-addon", &[]));
        assert!(!config.is_exempt("system:serviceaccount:shop:default", &[]));
        assert!(!config.is_exempt("alice", &["system:masters".to_owned()]));
        assert_eq!(config.break_glass_group, "gitops:break-glass");
    }

    #[test]
    fn bad_files_name_the_key_and_reason() {
        let err = parse("repositories:\n  - url: u\n    branch: main\n    tokenfile: x\n")
            .expect_err("unknown key");
        assert!(err.to_string().contains("tokenfile"), "{err}");
        let err = parse("repositories:\n  - url: u\n    branch: main\ndecisionDeadline: 5s\n")
            .expect_err("deadline");
        assert!(
            err.to_string()
                .contains("decisionDeadline: must be above 0 and below"),
            "{err}"
        );
        let err = parse("repositories:\n  - url: u\n    branch: main\nfetchInterval: soon\n")
            .expect_err("duration");
        assert!(
            err.to_string()
                .contains("fetchInterval: not a duration: \"soon\""),
            "{err}"
        );
        for users in [
            "['system:serviceaccount:*']",
            "['system:*']",
            "[x, 'system:serviceaccount:kube-system:*']",
        ] {
            let err = parse(&format!(
                "repositories:\n  - url: u\n    branch: main\nexemptUsers: {users}\n"
            ))
            .expect_err("a pattern");
            assert!(err.to_string().contains("is a pattern"), "{users}: {err}");
        }
        for groups in [
            "['system:serviceaccounts:shop']",
            "[system:authenticated]",
            "[system:serviceaccounts]",
        ] {
            let err = parse(&format!(
                "repositories:\n  - url: u\n    branch: main\nexemptGroups: {groups}\n"
            ))
            .expect_err("a population");
            assert!(
                err.to_string().contains("whole population"),
                "{groups}: {err}"
            );
        }
        let err = parse(
            "repositories:\n  - url: u\n    branch: main\nmissFetchInterval: 4s\ndecisionDeadline: 4s\n",
        )
        .expect_err("interval past the deadline");
        assert!(
            err.to_string()
                .contains("missFetchInterval: 4000 ms is not below"),
            "{err}"
        );
        let err = parse(
            "repositories:\n  - url: a\n    aliases: [b]\n    branch: main\n  - url: b\n    branch: main\n",
        )
        .expect_err("an alias of two repositories");
        assert!(
            err.to_string()
                .contains("repositories[1]: b is already a URL or alias of an earlier repository"),
            "{err}"
        );
        let config = parse("repositories:\n  - url: a\n    aliases: [b]\n    branch: main\n")
            .expect("valid");
        assert_eq!(config.repository("b").map(|r| r.url.as_str()), Some("a"));
        let err = parse("repositories: []\n").expect_err("empty");
        assert!(
            err.to_string().contains("repositories: list at least one"),
            "{err}"
        );
        let err = parse("repositories:\n  - url: u\n    branch: main\nrevisionMode: backward\n")
            .expect_err("mode");
        assert!(err.to_string().contains("backward"), "{err}");
    }
}
