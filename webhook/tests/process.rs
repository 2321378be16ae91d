//! The webhook as a process: the real binary with rcgen certificates, a repository behind a real
//! `git daemon` on loopback, AdmissionReviews posted over HTTPS, the certificate rotated while
//! requests flow, and the Git daemon stopped.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::https::{get, Connection};
use common::{fixture, git, Repo, World};
use gitops_shared::provenance::REVISION_ANNOTATION;
use gitops_test_support::pki::LOOPBACK;
use gitops_test_support::{address_in_log, Ca, GitDaemon, Killed};
use serde_json::{json, Value};

/// A Secret mounted the way the kubelet does it: files are links through `..data`, which is
/// swapped atomically on rotation.
struct MountedSecret {
    dir: PathBuf,
    version: usize,
}

impl MountedSecret {
    fn new(dir: &Path, cert: &str, key: &str) -> MountedSecret {
        std::fs::create_dir_all(dir).unwrap();
        let mut secret = MountedSecret {
            dir: dir.to_owned(),
            version: 0,
        };
        secret.write(cert, key);
        std::os::unix::fs::symlink("..data/tls.crt", dir.join("tls.crt")).unwrap();
        std::os::unix::fs::symlink("..data/tls.key", dir.join("tls.key")).unwrap();
        secret
    }

    fn write(&mut self, cert: &str, key: &str) {
        self.version += 1;
        let version = format!("..v{}", self.version);
        let target = self.dir.join(&version);
        std::fs::create_dir_all(&target).unwrap();
        std::fs::write(target.join("tls.crt"), cert).unwrap();
        std::fs::write(target.join("tls.key"), key).unwrap();
        let tmp = self.dir.join("..data_tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&version, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.join("..data")).unwrap();
    }
}

fn review_json(review: &Value) -> Vec<u8> {
    serde_json::to_vec(review).unwrap()
}

async fn wait_ready(admin: SocketAddr, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok((200, _)) = get(admin, "/readyz").await {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("webhook exited early: {status}");
        }
        assert!(Instant::now() < deadline, "webhook did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn response_of(body: &[u8]) -> Value {
    let review: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(review["kind"], "AdmissionReview");
    review["response"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_binary_over_https_with_git_daemon_rotation_and_outage() {
    // A repository served by git daemon.
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
    let mut daemon = Some(GitDaemon::start(served.path()));
    let git_port = daemon.as_ref().map(|d| d.port).unwrap();
    let url = format!("git://127.0.0.1:{git_port}/shop.git");
    let (c1, c2, c3) = (repo.c1.clone(), repo.c2.clone(), repo.c3.clone());
    // The same store code, in-process, to stamp reviews as a sync would.
    let world = World::serving(repo, &url, "");

    let forward = {
        let mut review = fixture("0021-UPDATE-Deployment-web.json");
        world.sync(&mut review["request"]["oldObject"], &c1);
        world.sync(&mut review["request"]["object"], &c2);
        review
    };
    let made_up = |sha: &str| {
        let mut review = forward.clone();
        review["request"]["object"]["metadata"]["annotations"][REVISION_ANNOTATION] = json!(sha);
        review
    };

    // Certificates and configuration.
    let work = tempfile::tempdir().unwrap();
    let ca = Ca::new("gitops-webhook test CA");
    let first = ca.serving(&LOOPBACK);
    let der1 = first.cert_der.clone();
    let mut secret = MountedSecret::new(&work.path().join("tls"), &first.cert_pem, &first.key_pem);
    let config = work.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "repositories:\n  - url: {url}\n    branch: main\ncacheDir: {}\nfetchInterval: 1s\nmissFetchInterval: 0s\ndecisionDeadline: 3s\n",
            work.path().join("cache").display()
        ),
    )
    .unwrap();
    let log_path = work.path().join("webhook.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut guard = Killed(
        Command::new(env!("CARGO_BIN_EXE_gitops-webhook"))
            .env("GITOPS_WEBHOOK_CONFIG", &config)
            .args([
                "--tls-cert",
                &work.path().join("tls/tls.crt").display().to_string(),
            ])
            .args([
                "--tls-key",
                &work.path().join("tls/tls.key").display().to_string(),
            ])
            // Port 0: the webhook logs the addresses it got.
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            // No API access: the webhook still serves, and /readyz says what it cannot check.
            .env(
                "GITOPS_WEBHOOK_KUBECONFIG",
                work.path().join("no-such-kubeconfig"),
            )
            .env_remove("KUBECONFIG")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let child = &mut guard.0;
    let started = Duration::from_secs(60);
    let admin = address_in_log(&log_path, "admin listening", child, started);
    wait_ready(admin, child).await;
    let address = address_in_log(&log_path, "webhook listening (TLS)", child, started);
    let (status, body) = get(admin, "/livez").await.unwrap();
    assert_eq!((status, body.as_str()), (200, "ok\n"));

    let client = common::https::client_config(&ca.pem);
    let mut connection = Connection::open(address, client.clone()).await.unwrap();
    assert_eq!(connection.peer_certificate, der1);

    // A forward sync is allowed, with the same uid.
    let (status, body) = connection
        .post("/validate", review_json(&forward))
        .await
        .unwrap();
    assert_eq!(status, 200);
    let response = response_of(&body);
    assert_eq!(response["uid"], forward["request"]["uid"]);
    assert_eq!(response["allowed"], true, "{response}");

    // A made-up commit is denied, after one fetch.
    let (_, body) = connection
        .post(
            "/validate",
            review_json(&made_up("1111111111111111111111111111111111111111")),
        )
        .await
        .unwrap();
    let response = response_of(&body);
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["code"], 403);
    assert_eq!(
        response["status"]["message"],
        format!("Deployment/demo/web: commit 1111111 does not exist in {url} (fetched just now, still unknown); push it to main and sync")
    );

    // Unreadable JSON: a clear 400. Too large: 413. Two objects of ~3.4 MiB: accepted.
    let (status, body) = connection
        .post("/validate", b"{\"request\": ".to_vec())
        .await
        .unwrap();
    assert_eq!(status, 400);
    let error: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .starts_with("the request body is not an AdmissionReview v1 JSON document: "),
        "{error}"
    );
    let (status, _) = connection
        .post("/validate", b"[1, 2]".to_vec())
        .await
        .unwrap();
    assert_eq!(status, 400);
    let mut big = fixture("0005-CREATE-ConfigMap-app-config.json");
    big["request"]["object"]["data"]["blob"] = json!("x".repeat(3_400_000));
    big["request"]["oldObject"] = big["request"]["object"].clone();
    big["request"]["operation"] = json!("UPDATE");
    let big_body = review_json(&big);
    assert!(big_body.len() > 6_800_000, "{}", big_body.len());
    let mut fresh = Connection::open(address, client.clone()).await.unwrap();
    let (status, body) =
        tokio::time::timeout(Duration::from_secs(20), fresh.post("/validate", big_body))
            .await
            .expect("big review answered in time")
            .unwrap();
    assert_eq!(status, 200);
    assert_eq!(response_of(&body)["allowed"], true);
    // 9 MiB announced: refused with 413 before the body is read.
    let status_line = common::https::raw_exchange(
        address,
        client.clone(),
        b"POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 9437184\r\n\r\n{\"apiVersion\":",
    )
    .await
    .unwrap();
    assert!(status_line.starts_with("HTTP/1.1 413"), "{status_line}");

    // Rotate the certificate while requests flow: no request may fail.
    let second = ca.serving(&LOOPBACK);
    let der2 = second.cert_der.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let saw_new = Arc::new(AtomicBool::new(false));
    let load = {
        let (stop, failures, client, body) = (
            stop.clone(),
            failures.clone(),
            client.clone(),
            review_json(&forward),
        );
        let (saw_new, der2) = (saw_new.clone(), der2.clone());
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut requests = 0usize;
            while !stop.load(Ordering::SeqCst) && requests < 50_000 {
                // A new connection every 5 requests: rotation applies to new handshakes.
                let mut connection = match Connection::open(address, client.clone()).await {
                    Ok(c) => c,
                    Err(_) => {
                        failures.fetch_add(1, Ordering::SeqCst);
                        continue;
                    }
                };
                if seen.last() != Some(&connection.peer_certificate) {
                    seen.push(connection.peer_certificate.clone());
                }
                if connection.peer_certificate == der2 {
                    saw_new.store(true, Ordering::SeqCst);
                }
                for _ in 0..5 {
                    requests += 1;
                    match connection.post("/validate", body.clone()).await {
                        Ok((200, body)) if response_of(&body)["allowed"] == true => {}
                        _ => {
                            failures.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
            }
            (seen, requests)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    secret.write(&second.cert_pem, &second.key_pem);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !saw_new.load(Ordering::SeqCst) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Keep the load on a little longer with the new certificate.
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::SeqCst);
    let (seen, requests) = load.await.unwrap();
    assert_eq!(
        failures.load(Ordering::SeqCst),
        0,
        "failed requests during rotation"
    );
    assert!(requests > 10, "{requests}");
    assert_eq!(
        seen,
        vec![der1.clone(), der2.clone()],
        "served the old, then the new certificate"
    );

    // The Git daemon goes away: known commits are still decided from the mirror (c3 was never
    // asked about before), unknown ones are denied with a clear reason.
    drop(daemon.take());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", git_port)).is_err(),
        "git daemon still listening"
    );
    let mut connection = Connection::open(address, client.clone()).await.unwrap();
    assert_eq!(connection.peer_certificate, der2);
    let mut next = forward.clone();
    world.sync(&mut next["request"]["oldObject"], &c2);
    world.sync(&mut next["request"]["object"], &c3);
    next["request"]["object"]["spec"]["template"]["spec"]["containers"][0]["image"] =
        json!("nginx:1.27");
    next["request"]["object"]["metadata"]["annotations"]["example.io/commit"] = json!("0a1b2c3");
    let (_, body) = connection
        .post("/validate", review_json(&next))
        .await
        .unwrap();
    assert_eq!(
        response_of(&body)["allowed"],
        true,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let (_, body) = connection
        .post("/validate", review_json(&forward))
        .await
        .unwrap();
    assert_eq!(response_of(&body)["allowed"], true);
    let (_, body) = connection
        .post(
            "/validate",
            review_json(&made_up("2222222222222222222222222222222222222222")),
        )
        .await
        .unwrap();
    let response = response_of(&body);
    assert_eq!(response["allowed"], false);
    // The remote is down: the sentence says the fetch failed, not that the commit is unknown.
    let message = response["status"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(&format!(
            "Deployment/demo/web: commit 2222222 does not exist in {url} (fetching it failed: "
        )) && message.ends_with("); push it to main and sync"),
        "{message}"
    );
    // Readiness stays (the mirror still decides) and says the fetch failed; so does a metric.
    let (status, body) = get(admin, "/readyz").await.unwrap();
    assert_eq!(status, 200);
    assert!(
        body.contains(&format!("last fetch of {url} failed")),
        "{body}"
    );
    assert!(
        body.contains("no Kubernetes API access (cannot build a Kubernetes API client from ")
            && body.contains("no-such-kubeconfig")
            && body.contains("): a scale of an object the head index does not know, such as a folder app's, is not checked"),
        "{body}"
    );
    let (_, metrics) = get(admin, "/metrics").await.unwrap();
    let failed_gauge = format!("gitops_webhook_git_last_fetch_failed{{repo=\"{url}\"}} 1");
    assert!(metrics.contains(&failed_gauge), "{metrics}");
    assert!(metrics.contains("gitops_webhook_reviews_total{operation=\"UPDATE\",kind=\"Deployment\",decision=\"denied\",reason=\"UnknownCommit\"} 2"), "{metrics}");
    assert!(
        metrics.contains("gitops_webhook_decision_seconds_count"),
        "{metrics}"
    );
    assert!(
        metrics.contains("gitops_webhook_render_cache_hits_total"),
        "{metrics}"
    );

    // SIGTERM: drains and exits cleanly.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(25);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "webhook did not stop after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "{exit}");
    let log = std::fs::read_to_string(work.path().join("webhook.log")).unwrap();
    assert!(log.contains("serving certificate reloaded"), "{log}");
    assert!(log.contains("stopped"), "{log}");
}

#[test]
fn bad_config_fails_start_up_naming_the_key() {
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("config.yaml");
    std::fs::write(&config, "repositories:\n  - url: https://git.example/shop.git\n    branch: main\ndecisionDeadline: 9s\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gitops-webhook"))
        .args(["--config", &config.display().to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "decisionDeadline: must be above 0 and below the webhook's timeoutSeconds (5s)"
        ),
        "{stderr}"
    );
}
