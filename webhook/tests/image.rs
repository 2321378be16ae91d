//! The webhook's image holds all it needs: built with `webhook/image/build.sh` and podman,
//! unpacked, and run with nothing from the host (webhook/image/run-unpacked.sh: chrooted as the
//! image's user on a read-only root as root, else through the image's own dynamic loader). It
//! must become ready, fetch from a `git daemon` on loopback and answer AdmissionReviews over TLS.
//!
//! Containers themselves may not run where the tests do (crun cannot set up cgroups or rlimits
//! inside some virtual machines), so the image is run unpacked. Without podman the test says so
//! and passes. `GITOPS_WEBHOOK_IMAGE=name` tests an image built before (the release image, whose
//! size is then checked too); otherwise an image is built from this test's own binary.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::https::{client_config, get, Connection};
use common::{fixture, Repo, World};
use gitops_shared::provenance::REVISION_ANNOTATION;
use gitops_test_support::pki::LOOPBACK;
use gitops_test_support::{address_in_log, git, Ca, GitDaemon, Killed};
use serde_json::{json, Value};

/// The largest image shipped (issue 13).
const MAX_IMAGE_BYTES: u64 = 40 * 1000 * 1000;

const IMAGE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/image");

/// Removes the image this test built, whatever the outcome.
struct BuiltImage(String);

impl Drop for BuiltImage {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["rmi", "--force", &self.0])
            .output();
    }
}

fn run(command: &mut Command) -> Output {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(command: &mut Command) -> String {
    String::from_utf8_lossy(&run(command).stdout)
        .trim()
        .to_owned()
}

/// Lists a directory tree with sizes, for the test's output.
fn tree(root: &Path, dir: &Path, lines: &mut Vec<String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let metadata = std::fs::symlink_metadata(&path).unwrap();
        let name = path.strip_prefix(root).unwrap().display().to_string();
        if metadata.is_dir() {
            lines.push(format!("{:>10}  /{name}/", ""));
            tree(root, &path, lines);
        } else {
            lines.push(format!("{:>10}  /{name}", metadata.len()));
        }
    }
}

/// Posts `review`; returns the AdmissionReview's response.
async fn answer(connection: &mut Connection, review: &Value) -> Value {
    let body = serde_json::to_vec(review).unwrap();
    let (status, body) = connection.post("/validate", body).await.unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let review: Value = serde_json::from_slice(&body).unwrap();
    review["response"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_holds_all_the_webhook_needs() {
    if Command::new("podman").arg("--version").output().is_err() {
        eprintln!(
            "skipping: podman is not installed, so the webhook's image cannot be built here (apt-get install podman)"
        );
        return;
    }
    let work = tempfile::tempdir().unwrap();

    // The image: given, or built now from this test's binary with the release recipe.
    let (image, _built) = match std::env::var("GITOPS_WEBHOOK_IMAGE") {
        Ok(image) => (image, None),
        Err(_) => {
            let image = "localhost/gitops-webhook:image-test".to_owned();
            let started = Instant::now();
            run(Command::new(Path::new(IMAGE_DIR).join("build.sh"))
                .args(["--binary", env!("CARGO_BIN_EXE_gitops-webhook")])
                .args(["--tag", &image])
                .arg("--context")
                .arg(work.path().join("context")));
            eprintln!(
                "built {image} from the test binary in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            (image.clone(), Some(BuiltImage(image)))
        }
    };
    let inspect = |format: &str| {
        stdout(Command::new("podman").args(["image", "inspect", "--format", format, &image]))
    };
    let size: u64 = inspect("{{.Size}}").parse().unwrap();
    eprintln!("{image}: {:.1} MB", size as f64 / 1e6);
    if std::env::var_os("GITOPS_WEBHOOK_IMAGE").is_some() {
        assert!(
            size < MAX_IMAGE_BYTES,
            "{image} is {size} bytes, above 40 MB"
        );
    }
    assert_eq!(inspect("{{.Config.User}}"), "65532:65532");
    assert_eq!(
        inspect("{{json .Config.Entrypoint}}"),
        r#"["/usr/local/bin/gitops-webhook"]"#
    );

    // Its file system, unpacked with owners and modes.
    let root = work.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let container = stdout(Command::new("podman").args(["create", &image]));
    let export = Command::new("sh")
        .arg("-c")
        .arg(r#"podman export "$1" | tar --extract --numeric-owner --directory "$2""#)
        .args(["export", &container])
        .arg(&root)
        .output();
    let _ = Command::new("podman").args(["rm", &container]).output();
    assert!(export.unwrap().status.success(), "podman export failed");
    let mut lines = Vec::new();
    tree(&root, &root, &mut lines);
    eprintln!("the image's files:\n{}", lines.join("\n"));
    assert!(!root.join("bin/sh").exists(), "a shell in the image");
    assert!(root.join("etc/ssl/certs/ca-certificates.crt").is_file());
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    assert!(passwd.contains(":65532:65532:"), "{passwd}");

    // A repository behind git daemon, as a remote the webhook fetches over the network.
    let repo = Repo::new();
    let served = tempfile::tempdir().unwrap();
    git(
        served.path(),
        &[
            "clone",
            "-q",
            "--bare",
            &repo.path().display().to_string(),
            "shop.git",
        ],
    );
    let daemon = GitDaemon::start(served.path());
    let url = format!("git://127.0.0.1:{}/shop.git", daemon.port);
    let (c1, c2) = (repo.c1.clone(), repo.c2.clone());
    let world = World::serving(repo, &url, "");

    // Configuration and certificates where the Deployment mounts them. As root the webhook runs
    // chrooted, so paths are the image's; through the loader they are the host's.
    let chrooted = stdout(Command::new("id").arg("-u")) == "0";
    let mode = if chrooted { "chroot" } else { "loader" };
    let inside = |path: &str| -> PathBuf {
        if chrooted {
            PathBuf::from(path)
        } else {
            root.join(path.trim_start_matches('/'))
        }
    };
    let etc = root.join("etc/gitops-webhook");
    std::fs::create_dir_all(etc.join("tls")).unwrap();
    let ca = Ca::new("gitops-webhook image test CA");
    let serving = ca.serving(&LOOPBACK);
    std::fs::write(etc.join("tls/tls.crt"), &serving.cert_pem).unwrap();
    std::fs::write(etc.join("tls/tls.key"), &serving.key_pem).unwrap();
    std::fs::write(
        etc.join("config.yaml"),
        format!(
            "repositories:\n  - url: {url}\n    branch: main\ncacheDir: {}\nmissFetchInterval: 0s\n",
            inside("/var/cache/gitops-webhook").display()
        ),
    )
    .unwrap();
    if !chrooted {
        // The image's cache directory belongs to its user; here the test's user runs it.
        std::fs::create_dir_all(root.join("var/cache/gitops-webhook")).unwrap();
    }

    let log_path = work.path().join("webhook.log");
    let mut webhook = Killed(
        Command::new(Path::new(IMAGE_DIR).join("run-unpacked.sh"))
            .args(["--mode", mode])
            .arg(&root)
            .arg("--config")
            .arg(inside("/etc/gitops-webhook/config.yaml"))
            .arg("--tls-cert")
            .arg(inside("/etc/gitops-webhook/tls/tls.crt"))
            .arg("--tls-key")
            .arg(inside("/etc/gitops-webhook/tls/tls.key"))
            // Port 0: the webhook logs the addresses it got.
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .unwrap(),
    );
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let started = Instant::now();
    let admin = address_in_log(
        &log_path,
        "admin listening",
        &mut webhook.0,
        Duration::from_secs(60),
    );
    let address = address_in_log(
        &log_path,
        "webhook listening (TLS)",
        &mut webhook.0,
        Duration::from_secs(60),
    );
    loop {
        if let Ok((200, _)) = get(admin, "/readyz").await {
            break;
        }
        if let Some(status) = webhook.0.try_wait().unwrap() {
            panic!("the webhook from the image exited: {status}\n{}", log());
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "not ready\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "ready after {:.1} s ({mode} mode)",
        started.elapsed().as_secs_f64()
    );

    // Reviews over TLS: a forward sync allowed, a commit nobody pushed denied after a fetch
    // over git://, an unmanaged object allowed.
    let mut forward = fixture("0021-UPDATE-Deployment-web.json");
    world.sync(&mut forward["request"]["oldObject"], &c1);
    world.sync(&mut forward["request"]["object"], &c2);
    let mut made_up = forward.clone();
    made_up["request"]["object"]["metadata"]["annotations"][REVISION_ANNOTATION] =
        json!("1111111111111111111111111111111111111111");
    let unmanaged = fixture("0005-CREATE-ConfigMap-app-config.json");

    let mut connection = Connection::open(address, client_config(&ca.pem))
        .await
        .unwrap();
    let response = answer(&mut connection, &forward).await;
    eprintln!("forward sync: {response}");
    assert_eq!(response["uid"], forward["request"]["uid"]);
    assert_eq!(response["allowed"], true, "{response}\n{}", log());
    let response = answer(&mut connection, &made_up).await;
    eprintln!("made-up commit: {response}");
    assert_eq!(response["allowed"], false);
    assert_eq!(
        response["status"]["message"],
        format!("Deployment/demo/web: commit 1111111 does not exist in {url} (fetched just now, still unknown); push it to main and sync")
    );
    let response = answer(&mut connection, &unmanaged).await;
    eprintln!("unmanaged ConfigMap: {response}");
    assert_eq!(response["allowed"], true);

    let (status, body) = get(admin, "/readyz").await.unwrap();
    assert_eq!(status, 200, "{body}");
    eprintln!("/readyz: {}", body.trim_end().replace('\n', " | "));
    assert!(webhook.0.try_wait().unwrap().is_none(), "{}", log());
}
