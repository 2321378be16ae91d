//! `kubectl gitops ui` in a real browser: headless Chromium (Debian's `chromium`, driven through
//! `chromedriver` over WebDriver) loads the page the built binary serves, against a real API
//! server (or the test API server with GITOPS_E2E_NO_KUBE=1). The test asserts the app list,
//! the tree's nodes with their health, that a change in the cluster shows up without a reload,
//! that Sync applies a new commit, and that requests without the token (or with a foreign Host)
//! are refused. It keeps a screenshot of the app page in `target/ui-screenshot/app.png`.
//!
//! Chromium missing is a failure with a message saying what to install, never a silent skip.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use gitops_e2e::harness::{Cluster, Repo};
use gitops_e2e::workloads::{
    controller_objects, crash_looping, running_ready, set_pod_status, two_apps,
};
use serde_json::{json, Value};

/// Kills a child process when dropped (the server, chromedriver), also when the test fails.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn program(names: &[&str]) -> PathBuf {
    for name in names {
        for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
            let path = dir.join(name);
            if path.is_file() {
                return path;
            }
        }
    }
    panic!(
        "{} not found on PATH: the ui test needs headless Chromium and its WebDriver \
         (Debian: apt-get install -y chromium chromium-driver; .ci/run installs them)",
        names.join(" or ")
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// chromedriver on a free port, once it accepts connections.
fn start_chromedriver() -> (Kill, u16) {
    program(&["chromium", "chromium-browser", "google-chrome"]);
    let driver = program(&["chromedriver"]);
    let port = free_port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let child = Kill(child);
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "chromedriver never listened on {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (child, port)
}

/// A raw HTTP/1.1 request to the UI server: the status line's code.
fn raw_status(port: u16, request: &str) -> u16 {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the ui");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream.write_all(request.as_bytes()).expect("send");
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).expect("an answer");
    let text = String::from_utf8_lossy(&head);
    text[9..12]
        .parse()
        .unwrap_or_else(|_| panic!("a status line: {text}"))
}

/// `target/ui-screenshot/<name>`.
fn screenshot_path(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("ui-screenshot").join(name)
}

async fn save_screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("a screenshot");
    assert_eq!(&png[1..4], b"PNG");
    let path = screenshot_path(name);
    std::fs::create_dir_all(path.parent().expect("a folder")).expect("create the folder");
    std::fs::write(&path, &png).expect("write the screenshot");
    eprintln!("ui: screenshot in {}", path.display());
}

/// The text of the first element matching `css`, waiting for it; asked again when the page
/// redraws (a live update) between finding the element and reading it.
async fn text_of(client: &Client, css: &str) -> String {
    let started = Instant::now();
    loop {
        let found = client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(css))
            .await;
        let read = match found {
            Ok(element) => element.text().await,
            Err(error) => Err(error),
        };
        match read {
            Ok(text) => return text,
            Err(error) if started.elapsed() > Duration::from_secs(20) => {
                panic!("text of {css}: {error}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// The text of `css` once `wanted` holds for it (the page redraws after a click's fetch).
async fn text_until(client: &Client, css: &str, wanted: impl Fn(&str) -> bool) -> String {
    let started = Instant::now();
    loop {
        let text = text_of(client, css).await;
        if wanted(&text) {
            return text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{css} never showed what was expected; it shows:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_css(client: &Client, css: &str, within: Duration) -> Duration {
    let started = Instant::now();
    client
        .wait()
        .at_most(within)
        .every(Duration::from_millis(50))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} within {within:?}: {e}"));
    started.elapsed()
}

/// An attribute of the first element matching `css`, read in one step in the page (a live
/// redraw between finding an element and reading it would leave a stale reference).
async fn attr_of(client: &Client, css: &str, name: &str) -> Option<String> {
    let value = client
        .execute(
            "const e = document.querySelector(arguments[0]); return e ? e.getAttribute(arguments[1]) : null",
            vec![json!(css), json!(name)],
        )
        .await
        .unwrap_or_else(|e| panic!("{name} of {css}: {e}"));
    value.as_str().map(str::to_owned)
}

/// Clicks through the page's own handler (SVG groups are not all "interactable" to WebDriver).
async fn click(client: &Client, css: &str) {
    wait_css(client, css, Duration::from_secs(20)).await;
    client
        .execute(
            "document.querySelector(arguments[0]).dispatchEvent(new MouseEvent('click', {bubbles: true}))",
            vec![json!(css)],
        )
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

/// Runs blocking harness calls (which have their own runtime) off the browser's runtime.
fn outside<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| scope.spawn(work).join().expect("the harness call"))
}

#[test]
fn web_view_in_headless_chromium() {
    let (_driver, driver_port) = start_chromedriver();
    let cluster = Cluster::new("ui");
    let ns = cluster.namespace.clone();
    let repo = Repo::init(&cluster.dir.path().join("repo"));
    let v1 = two_apps(&repo, &ns, "info");
    let spec = repo.spec();
    for name in ["web", "settings"] {
        let sync = cluster.run(&["sync", name, "--repo", &spec]);
        assert_eq!(sync.code, 0, "{sync}");
    }
    let pod = controller_objects(&cluster);
    let pod_name = pod["metadata"]["name"]
        .as_str()
        .expect("pod name")
        .to_owned();
    let v2 = two_apps(&repo, &ns, "debug");

    // The server: its first line is the URL with the token.
    let mut server = cluster
        .command(&["ui", "--repo", &spec])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("kubectl gitops ui starts");
    let stdout = server.stdout.take().expect("stdout");
    let _server = Kill(server);
    let mut first = String::new();
    // Kept open for the server's lifetime: its stdout stays a live pipe.
    let mut server_out = BufReader::new(stdout);
    server_out.read_line(&mut first).expect("the URL line");
    let url = first
        .trim()
        .strip_prefix("kubectl gitops ui: ")
        .unwrap_or_else(|| panic!("a URL line, got {first:?}"))
        .to_owned();
    let port: u16 = url
        .strip_prefix("http://127.0.0.1:")
        .and_then(|rest| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("a loopback URL: {url}"));
    let token = url
        .split("token=")
        .nth(1)
        .expect("a token in the URL")
        .to_owned();
    assert!(token.len() >= 32, "a long random token: {token}");

    // No token, a wrong token, or a foreign Host: 403, for the page, the API, the events and Sync.
    let host = format!("127.0.0.1:{port}");
    for (request, what) in [
        (format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"), "the page without token"),
        (format!("GET /api/apps HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"), "the API without token"),
        (format!("GET /api/events?token=0{token} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"), "events with a wrong token"),
        (format!("POST /api/apps/settings/sync HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"), "Sync without token"),
        (format!("GET /api/apps?token={token} HTTP/1.1\r\nHost: rebind.example:{port}\r\nConnection: close\r\n\r\n"), "a DNS-rebinding Host"),
    ] {
        assert_eq!(raw_status(port, &request), 403, "{what} must be refused");
    }
    assert_eq!(
        raw_status(
            port,
            &format!(
                "GET /api/apps?token={token} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
            )
        ),
        200,
        "with the token the API answers"
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1500,900"]}),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{driver_port}"))
            .await
            .expect("a Chromium session through chromedriver");

        // The app list: a card per app, sync and health as coloured labels with text.
        client.goto(&url).await.expect("the page loads");
        let settings_sync = text_of(&client, ".card[data-app='settings'] .sync-label").await;
        assert!(settings_sync.contains("OutOfSync (1)"), "{settings_sync}");
        let web_health = text_of(&client, ".card[data-app='web'] .health-label").await;
        assert!(web_health.contains("Progressing"), "{web_health}");
        let web_card = text_of(&client, ".card[data-app='web']").await;
        assert!(web_card.contains("1 commit behind") && web_card.contains(&v1[..7]), "{web_card}");
        save_screenshot(&client, "apps.png").await;

        // The app page: the graph with Git's objects and the live ones under them.
        click(&client, ".card[data-app='web']").await;
        wait_css(&client, "g.node.git[data-kind='Deployment'][data-health='Progressing']", Duration::from_secs(20)).await;
        wait_css(&client, "g.node.live[data-kind='ReplicaSet']", Duration::from_secs(20)).await;
        wait_css(&client, "g.node.live[data-kind='EndpointSlice']", Duration::from_secs(20)).await;
        let pod_css = format!("g.node.live[data-kind='Pod'][data-name='{pod_name}']");
        wait_css(&client, &pod_css, Duration::from_secs(20)).await;
        let before = attr_of(&client, &pod_css, "data-health").await;
        assert_eq!(before.as_deref(), Some("Progressing"));

        // A change in the cluster shows without a reload: the kubelet reports the Pod Ready.
        client
            .execute("window.__sameDocument = 'yes'", vec![])
            .await
            .expect("mark the document");
        outside(|| set_pod_status(&cluster, &pod_name, running_ready()));
        let took = wait_css(
            &client,
            &format!("g.node.live[data-kind='Pod'][data-name='{pod_name}'][data-health='Healthy']"),
            Duration::from_secs(5),
        )
        .await;
        eprintln!("ui: the Pod's new health showed in the page {} ms after the status write", took.as_millis());
        let same = client
            .execute("return window.__sameDocument || null", vec![])
            .await
            .expect("read the mark");
        assert_eq!(same, Value::from("yes"), "the page was not reloaded");
        // And back to red: the container crash-loops.
        outside(|| set_pod_status(&cluster, &pod_name, crash_looping()));
        wait_css(
            &client,
            &format!("g.node.live[data-kind='Pod'][data-name='{pod_name}'][data-health='Degraded']"),
            Duration::from_secs(5),
        )
        .await;

        // Selecting a node shows its live YAML, its Git YAML and the diff.
        click(&client, "g.node.git[data-kind='Deployment']").await;
        click(&client, ".tab[data-tab='live']").await;
        // Live: what the server holds (its uid); Git: what the commit declares (no uid).
        text_until(&client, "#node-code", |t| t.contains("kind: Deployment") && t.contains("uid:")).await;
        click(&client, ".tab[data-tab='git']").await;
        text_until(&client, "#node-code", |t| {
            t.contains("image: registry.invalid/web:1") && !t.contains("uid:")
        })
        .await;
        let side = text_of(&client, "#side").await;
        assert!(side.contains(&v1[..7]) && side.contains("settings at info"), "the commit it was applied from: {side}");
        save_screenshot(&client, "app.png").await;

        // Sync: the diff first, then the run's output, then the cluster at the new commit.
        client.goto(&format!("{url}#/app/settings")).await.expect("the settings page");
        let started = Instant::now();
        while text_of(&client, "#app-name").await != "settings" {
            assert!(started.elapsed() < Duration::from_secs(20), "the settings page never showed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        click(&client, "#sync-button").await;
        wait_css(&client, "#sync-confirm", Duration::from_secs(20)).await;
        let diff = text_of(&client, "#modal-body").await;
        assert!(diff.contains("LOG_LEVEL: info") && diff.contains("LOG_LEVEL: debug"), "{diff}");
        click(&client, "#sync-confirm").await;
        wait_css(&client, "#sync-done", Duration::from_secs(60)).await;
        let done = attr_of(&client, "#sync-done", "data-exit").await;
        let log = text_until(&client, "#sync-log", |t| t.contains("configured")).await;
        assert_eq!(done.as_deref(), Some("0"), "{log}");
        assert!(log.contains(&format!("configured ConfigMap/{ns}/settings")), "{log}");
        let settings = outside(|| cluster.configmap("settings")).expect("settings");
        assert_eq!(settings["data"]["LOG_LEVEL"], "debug");
        assert_eq!(settings["metadata"]["annotations"]["kubectl-gitops.io/revision"], json!(v2));
        click(&client, "#modal-actions .btn.primary").await;
        wait_css(&client, "#app-badges .sync-label.Synced", Duration::from_secs(10)).await;
        client.close().await.expect("close the session");
    });
    drop(server_out);
}
