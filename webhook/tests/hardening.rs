//! The real binary against clients that misbehave: one that connects and never starts TLS, one
//! that completes TLS and then sends its headers too slowly or not at all, and a flood of
//! connections that runs the process out of file descriptors. None may hold the server's tasks
//! for ever, and the server must keep answering afterwards.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::https::{client_config, get, Connection};
use common::{fixture, Repo};
use gitops_test_support::pki::LOOPBACK;
use gitops_test_support::{address_in_log, Ca, Killed};
use rustls_pki_types::ServerName;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A webhook process serving a local repository with small connection limits.
struct Webhook {
    process: Killed,
    address: SocketAddr,
    admin: SocketAddr,
    client: std::sync::Arc<rustls::ClientConfig>,
    log: std::path::PathBuf,
    _work: tempfile::TempDir,
    _repo: Repo,
}

impl Webhook {
    /// Starts the binary (behind `wrapper`, a command such as `prlimit`, when given) and waits
    /// for `/readyz`.
    async fn start(handshake: &str, header_read: &str, wrapper: &[&str]) -> Webhook {
        let repo = Repo::new();
        let work = tempfile::tempdir().unwrap();
        let ca = Ca::new("gitops-webhook hardening CA");
        let serving = ca.serving(&LOOPBACK);
        std::fs::write(work.path().join("tls.crt"), &serving.cert_pem).unwrap();
        std::fs::write(work.path().join("tls.key"), &serving.key_pem).unwrap();
        let config = work.path().join("config.yaml");
        std::fs::write(
            &config,
            format!(
                "repositories:\n  - url: {}\n    branch: main\ncacheDir: {}\n",
                repo.url(),
                work.path().join("cache").display()
            ),
        )
        .unwrap();
        let log = work.path().join("webhook.log");
        let binary = env!("CARGO_BIN_EXE_gitops-webhook");
        let mut command = match wrapper {
            [] => Command::new(binary),
            [program, args @ ..] => {
                let mut command = Command::new(program);
                command.args(args).arg(binary);
                command
            }
        };
        command
            .arg("--config")
            .arg(&config)
            .arg("--tls-cert")
            .arg(work.path().join("tls.crt"))
            .arg("--tls-key")
            .arg(work.path().join("tls.key"))
            // Port 0: the webhook logs the addresses it got.
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .args(["--tls-handshake-timeout", handshake])
            .env("GITOPS_WEBHOOK_HEADER_READ_TIMEOUT", header_read)
            .env(
                "GITOPS_WEBHOOK_KUBECONFIG",
                work.path().join("no-such-kubeconfig"),
            )
            .env_remove("KUBECONFIG")
            .env("RUST_LOG", "info,gitops_webhook::server=debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        let mut process = Killed(command.spawn().unwrap());
        let started = Duration::from_secs(60);
        let admin = address_in_log(&log, "admin listening", &mut process.0, started);
        let address = address_in_log(&log, "webhook listening (TLS)", &mut process.0, started);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !matches!(get(admin, "/readyz").await, Ok((200, _))) {
            if let Some(status) = process.0.try_wait().unwrap() {
                panic!(
                    "webhook exited early: {status}\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "webhook did not become ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Webhook {
            process,
            address,
            admin,
            client: client_config(&ca.pem),
            log,
            _work: work,
            _repo: repo,
        }
    }

    /// Posts an unmanaged object's captured review on a new connection; true when allowed.
    async fn answers(&self) -> bool {
        let Ok(mut connection) = Connection::open(self.address, self.client.clone()).await else {
            return false;
        };
        let review = fixture("0005-CREATE-ConfigMap-app-config.json");
        match connection
            .post("/validate", serde_json::to_vec(&review).unwrap())
            .await
        {
            Ok((200, body)) => {
                let answer: Value = serde_json::from_slice(&body).unwrap();
                answer["response"]["allowed"] == true
            }
            _ => false,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Reads until the server closes the connection (end of file or reset); returns what it sent.
async fn until_closed<S: AsyncReadExt + Unpin>(stream: &mut S, limit: Duration) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buffer = [0u8; 1024];
    let outcome = tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    assert!(
        outcome.is_ok(),
        "the server kept the connection open for {limit:?}"
    );
    received
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_slow_clients_are_cut_off_and_the_server_keeps_answering() {
    let webhook = Webhook::start("1s", "1500ms", &[]).await;
    assert!(webhook.answers().await);

    // A TCP connection that never sends a ClientHello is closed after the handshake timeout.
    let started = Instant::now();
    let mut silent = TcpStream::connect(webhook.address).await.unwrap();
    let sent = until_closed(&mut silent, Duration::from_secs(8)).await;
    let waited = started.elapsed();
    assert!(sent.is_empty(), "{sent:?}");
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
        "closed after {waited:?}, expected about 1 s"
    );

    // TLS done, then half a request head and silence: closed after the header-read timeout.
    let connector = tokio_rustls::TlsConnector::from(webhook.client.clone());
    let tcp = TcpStream::connect(webhook.address).await.unwrap();
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let started = Instant::now();
    tls.write_all(b"POST /validate HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    tls.flush().await.unwrap();
    let sent = until_closed(&mut tls, Duration::from_secs(8)).await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1400) && waited < Duration::from_secs(5),
        "closed after {waited:?}, expected about 1.5 s"
    );
    // Closed without an answer, or with 408; never a 200 to an incomplete request.
    let text = String::from_utf8_lossy(&sent);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );

    // Trickling the head a byte every 200 ms: the limit is on the whole head, not per read.
    let tcp = TcpStream::connect(webhook.address).await.unwrap();
    let tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let (mut reader, mut writer) = tokio::io::split(tls);
    let started = Instant::now();
    let trickle = tokio::spawn(async move {
        for byte in
            b"POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\r\n"
        {
            if writer.write_all(&[*byte]).await.is_err() || writer.flush().await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    until_closed(&mut reader, Duration::from_secs(8)).await;
    let waited = started.elapsed();
    trickle.abort();
    assert!(
        waited >= Duration::from_millis(1400) && waited < Duration::from_secs(5),
        "closed after {waited:?}, expected about 1.5 s"
    );

    // Still serving, and ready.
    assert!(webhook.answers().await);
    assert_eq!(get(webhook.admin, "/readyz").await.unwrap().0, 200);
    drop(silent);
    let log = webhook.log();
    assert!(
        log.contains("the client did not complete the TLS handshake within 1000 ms"),
        "{log}"
    );
    drop(webhook.process);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_file_descriptors_the_server_pauses_accepting_and_recovers() {
    if Command::new("prlimit").arg("--version").output().is_err() {
        eprintln!("skipping: `prlimit` (util-linux) is not installed; it caps the webhook's file descriptors");
        return;
    }
    // Few descriptors, and handshakes that may wait long: silent clients use them all up.
    let webhook = Webhook::start("60s", "10s", &["prlimit", "--nofile=64:64", "--"]).await;
    assert!(webhook.answers().await);
    let mut silent = Vec::new();
    for _ in 0..100 {
        // Connections beyond what the process can accept wait in the listen backlog.
        silent.push(TcpStream::connect(webhook.address).await.unwrap());
    }
    // Two seconds out of descriptors: with pauses doubling from 5 ms, about ten failed accepts;
    // retrying at once would log thousands.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let failures = webhook.log().matches("accept failed").count();
    assert!(
        (1..=20).contains(&failures),
        "{failures} failed accepts in 2 s\n{}",
        webhook.log()
    );
    // The clients leave: their descriptors come back and the server answers again.
    drop(silent);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !webhook.answers().await {
        assert!(
            Instant::now() < deadline,
            "the server did not recover\n{}",
            webhook.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = webhook.log();
    assert!(log.contains("Too many open files"), "{log}");
}
