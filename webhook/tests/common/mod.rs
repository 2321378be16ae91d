//! Test worlds: real Git repositories made with the `git` program, the captured AdmissionReviews
//! of ../shared/fixtures/admission, and provenance stamped on their objects as a sync would.
#![allow(dead_code, clippy::unwrap_used)]

pub mod https;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};

use gitops_shared::provenance::{
    APPLYSET_PART_OF_LABEL, APP_LABEL, MANAGED_BY_LABEL, PROVENANCE_ANNOTATIONS,
};
use gitops_webhook::config::Config;
use gitops_webhook::decision::{decide, AppClaim, Decision, Desired, GitFacts};
use gitops_webhook::metrics::Metrics;
use gitops_webhook::review::AdmissionRequest;
use gitops_webhook::store::GitStore;

/// The captured reviews.
pub const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/fixtures/admission"
);

/// Reads one captured review.
pub fn fixture(name: &str) -> Value {
    let path = Path::new(FIXTURES).join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

pub use gitops_test_support::git;

pub const APP_FILE: &str = "apps:\n  web:\n    path: apps/web\n    namespace: demo\n";

/// The Deployment of the captured scenario, at an image and a commit annotation.
pub fn deployment(image: &str, commit_note: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {{app: web}}
  annotations:
    example.io/commit: "{commit_note}"
    example.io/source: "git@example.io:team/app.git"
spec:
  replicas: 1
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
        - name: web
          image: {image}
          ports: [{{containerPort: 80}}]
          envFrom: [{{configMapRef: {{name: app-config}}}}]
          resources: {{requests: {{cpu: 0.05, memory: 64Mi}}}}
"#
    )
}

/// The ConfigMap of the captured scenario.
pub fn configmap(log_level: &str, commit_note: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
  labels: {{app: web}}
  annotations:
    example.io/commit: "{commit_note}"
    example.io/source: "git@example.io:team/app.git"
data:
  FEATURE_X: "off"
  LOG_LEVEL: {log_level}
"#
    )
}

pub const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  labels: {app: web}\n  annotations: {example.io/commit: abc123}\nspec:\n  selector: {app: web}\n  ports: [{name: http, port: 80, targetPort: 80}]\n";

/// A repository with the scenario's history:
/// main: c1 (nginx:1.25) → c2 (nginx:1.26) → c3 (nginx:1.27); branch `feature` off c2: f1.
pub struct Repo {
    pub dir: tempfile::TempDir,
    pub c1: String,
    pub c2: String,
    pub c3: String,
    pub f1: String,
}

impl Repo {
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("src")
    }

    pub fn url(&self) -> String {
        format!("file://{}", self.path().display())
    }

    /// Writes files (None deletes) and commits on the current branch; returns the commit.
    pub fn commit(&self, files: &[(&str, Option<&str>)], message: &str) -> String {
        let src = self.path();
        for (name, content) in files {
            let path = src.join(name);
            match content {
                Some(content) => {
                    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                    std::fs::write(&path, content).unwrap();
                }
                None => {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        git(&src, &["add", "-A"]);
        git(&src, &["commit", "-q", "-m", message]);
        git(&src, &["rev-parse", "HEAD"])
    }

    pub fn new() -> Repo {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        git(&src, &["init", "-q", "-b", "main"]);
        let mut repo = Repo {
            dir,
            c1: String::new(),
            c2: String::new(),
            c3: String::new(),
            f1: String::new(),
        };
        repo.c1 = repo.commit(
            &[
                ("gitops.yaml", Some(APP_FILE)),
                (
                    "apps/web/deployment.yaml",
                    Some(&deployment("nginx:1.25", "abc123")),
                ),
                (
                    "apps/web/configmap.yaml",
                    Some(&configmap("info", "abc123")),
                ),
                ("apps/web/service.yaml", Some(SERVICE)),
            ],
            "web v1",
        );
        repo.c2 = repo.commit(
            &[
                (
                    "apps/web/deployment.yaml",
                    Some(&deployment("nginx:1.26", "def456")),
                ),
                (
                    "apps/web/configmap.yaml",
                    Some(&configmap("info", "def456")),
                ),
            ],
            "web v2: nginx 1.26",
        );
        git(&repo.path(), &["checkout", "-q", "-b", "feature"]);
        repo.f1 = repo.commit(
            &[(
                "apps/web/deployment.yaml",
                Some(&deployment("nginx:1.99", "feature")),
            )],
            "feature: unreviewed image",
        );
        git(&repo.path(), &["checkout", "-q", "main"]);
        repo.c3 = repo.commit(
            &[
                (
                    "apps/web/deployment.yaml",
                    Some(&deployment("nginx:1.27", "0a1b2c3")),
                ),
                (
                    "apps/web/configmap.yaml",
                    Some(&configmap("info", "0a1b2c3")),
                ),
            ],
            "web v3: nginx 1.27",
        );
        repo
    }
}

/// A repository, a configuration trusting it and the store deciding from its mirror.
pub struct World {
    pub repo: Repo,
    pub cache: tempfile::TempDir,
    pub config: Config,
    pub store: Arc<GitStore>,
}

impl World {
    pub fn new() -> World {
        World::with_config("")
    }

    /// `extra` is appended to the configuration YAML.
    pub fn with_config(extra: &str) -> World {
        let repo = Repo::new();
        let url = repo.url();
        World::serving(repo, &url, extra)
    }

    /// A world whose repository is reached at `url` (a `git daemon`, say).
    pub fn serving(repo: Repo, url: &str, extra: &str) -> World {
        let cache = tempfile::tempdir().unwrap();
        // No rate limit on fetches unless a test sets one.
        let miss = if extra.contains("missFetchInterval") {
            ""
        } else {
            "missFetchInterval: 0s\n"
        };
        let text = format!(
            "repositories:\n  - url: {url}\n    branch: main\ncacheDir: {}\n{miss}{extra}",
            cache.path().display()
        );
        let config = Config::parse(&text, Path::new("test-config.yaml")).unwrap();
        let store = Arc::new(GitStore::open(&config, Arc::new(Metrics::new())).unwrap());
        let failures = store.refresh();
        assert!(failures.is_empty(), "{failures:?}");
        World {
            repo,
            cache,
            config,
            store,
        }
    }

    /// Fetches again (after new commits) and re-indexes the head.
    pub fn refresh(&self) {
        let failures = self.store.refresh();
        assert!(failures.is_empty(), "{failures:?}");
    }

    /// What app `web` renders to at `commit`.
    pub fn render(&self, commit: &str) -> Arc<Desired> {
        let claim = AppClaim {
            app: "web".into(),
            path: "apps/web".into(),
            folder_namespace: "demo".into(),
        };
        let url = self.config.repositories[0].url.clone();
        self.store.render(&url, commit, &claim).unwrap()
    }

    /// Stamps `object` with the provenance that a sync of `commit` gives the same object, the way
    /// server-side apply of the rendered object would leave it.
    pub fn sync(&self, object: &mut Value, commit: &str) {
        let desired = self.render(commit);
        let key = gitops_shared::object::ObjectKey::of(object).unwrap();
        let rendered = desired
            .objects
            .get(&key)
            .or_else(|| desired.objects.values().next())
            .unwrap()
            .clone();
        copy_provenance(object, &rendered);
    }

    pub fn decide(&self, review: &Value) -> Decision {
        let request: AdmissionRequest = serde_json::from_value(review["request"].clone()).unwrap();
        decide(&request, &self.config, self.store.as_ref())
    }
}

/// Copies provenance labels and annotations from `from` onto `object`, and gives what the
/// captured server-side applies recorded under kubectl's default manager name (`kubectl`) to
/// `kubectl-gitops`, as the plugin's apply would have.
pub fn copy_provenance(object: &mut Value, from: &Value) {
    if let Some(entries) = object
        .pointer_mut("/metadata/managedFields")
        .and_then(Value::as_array_mut)
    {
        for entry in entries {
            if entry["manager"] == "kubectl" && entry["operation"] == "Apply" {
                entry["manager"] = json!("kubectl-gitops");
            }
        }
    }
    let metadata = object["metadata"].as_object_mut().unwrap();
    let labels = metadata.entry("labels").or_insert_with(|| json!({}));
    for key in [MANAGED_BY_LABEL, APP_LABEL, APPLYSET_PART_OF_LABEL] {
        labels[key] = from["metadata"]["labels"][key].clone();
    }
    let annotations = metadata.entry("annotations").or_insert_with(|| json!({}));
    for key in PROVENANCE_ANNOTATIONS {
        annotations[key] = from["metadata"]["annotations"][key].clone();
    }
}

/// The manifest Git would hold for `object` as the cluster stores it: without status,
/// server bookkeeping and the controller's revision annotation.
pub fn manifest_of(object: &Value, drop: &[&str]) -> String {
    let mut object = object.clone();
    let map = object.as_object_mut().unwrap();
    map.remove("status");
    for key in drop {
        map.remove(*key);
    }
    let metadata = map["metadata"].as_object_mut().unwrap();
    for key in [
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "managedFields",
        "namespace",
    ] {
        metadata.remove(key);
    }
    if let Some(annotations) = metadata
        .get_mut("annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.remove("deployment.kubernetes.io/revision");
    }
    serde_json::to_string_pretty(&object).unwrap()
}

/// Short form of a commit, as messages show it.
pub fn short(commit: &str) -> &str {
    &commit[..7]
}
