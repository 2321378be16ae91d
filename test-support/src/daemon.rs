//! A `git daemon` serving a folder on loopback, on a port it chose itself.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Serves every repository below a folder over `git://127.0.0.1:<port>/` (read-only) until
/// dropped.
///
/// The listening socket is ours, bound to port 0, so the port is known before anything connects
/// and no other process can take it in between; each connection is handed to `git-daemon
/// --inetd`. After drop nothing listens on the port any more.
pub struct GitDaemon {
    /// The port.
    pub port: u16,
    stop: Arc<AtomicBool>,
    children: Arc<Mutex<Vec<Child>>>,
    accepting: Option<JoinHandle<()>>,
}

impl GitDaemon {
    /// Serves every repository under `base`.
    pub fn start(base: &Path) -> GitDaemon {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap_or_else(|e| panic!("bind a loopback port for git daemon: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("git daemon's address: {e}"))
            .port();
        // git-daemon itself, not `git daemon`: a wrapper whose child would outlive a kill.
        let program = PathBuf::from(crate::git(base, &["--exec-path"])).join("git-daemon");
        let base = base.to_path_buf();
        let stop = Arc::new(AtomicBool::new(false));
        let children: Arc<Mutex<Vec<Child>>> = Arc::new(Mutex::new(Vec::new()));
        let accepting = {
            let (stop, children) = (stop.clone(), children.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    if let Some(child) = serve(&program, &base, stream) {
                        if let Ok(mut children) = children.lock() {
                            children.retain_mut(|c| matches!(c.try_wait(), Ok(None)));
                            children.push(child);
                        }
                    }
                }
            })
        };
        GitDaemon {
            port,
            stop,
            children,
            accepting: Some(accepting),
        }
    }

    /// `git://127.0.0.1:<port>/<name>`.
    pub fn url(&self, name: &str) -> String {
        format!("git://127.0.0.1:{}/{name}", self.port)
    }
}

/// One connection, served by `git-daemon --inetd` on its stdin and stdout.
fn serve(program: &Path, base: &Path, stream: TcpStream) -> Option<Child> {
    let input = stream.try_clone().ok()?;
    Command::new(program)
        .args(["--inetd", "--export-all"])
        .arg(format!("--base-path={}", base.display()))
        .arg(base)
        .stdin(Stdio::from(OwnedFd::from(input)))
        .stdout(Stdio::from(OwnedFd::from(stream)))
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accepting thread, which then drops the listener.
        let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port));
        if let Some(accepting) = self.accepting.take() {
            let _ = accepting.join();
        }
        if let Ok(mut children) = self.children.lock() {
            for child in children.iter_mut() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
