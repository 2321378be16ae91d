//! Jsonnet evaluated in a child process, for the webhook.
//!
//! The webhook evaluates whatever a commit of a trusted branch holds. jrsonnet bounds the depth of
//! running calls, but a recursion through the lazy fields of returned objects escapes that bound
//! and overflows the native stack, which aborts the whole process; and nothing bounds CPU time.
//! In a server registered with `failurePolicy: Fail` an abort is an outage, so the webhook calls
//! [`isolate_in`] at start-up: from then on every Jsonnet render of this process runs in a child
//! (the webhook's own binary, started with a flag that makes it [`serve_child`]), which is killed
//! after a time limit. A crash or a timeout is then one failed render — a clear denial — and the
//! server stays up. The plugin evaluates in its own process: a crash there ends one command.
//!
//! The exchange is one JSON document each way over the child's stdin and stdout: the commit's
//! files (base64), the app folder and the app's Jsonnet options in; the rendered objects or the
//! error's text out.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::git::FileTree;
use crate::object::RenderedObject;
use crate::render::jsonnet::{render_here, JsonnetError, JsonnetOptions};

/// How this process evaluates Jsonnet when it isolates it: the program to start (with `args`),
/// and how long a render may take before the child is killed.
#[derive(Debug, Clone)]
pub struct Isolation {
    /// The program, usually the running binary (`std::env::current_exe()`).
    pub program: PathBuf,
    /// Arguments that make it [`serve_child`].
    pub args: Vec<String>,
    /// Longest a render may run.
    pub timeout: Duration,
}

static ISOLATION: OnceLock<Isolation> = OnceLock::new();

/// From now on, Jsonnet renders of this process run in children as `isolation` says. Only the
/// first call counts (a server sets it once, at start-up).
pub fn isolate_in(isolation: Isolation) {
    let _ = ISOLATION.set(isolation);
}

/// The isolation this process renders Jsonnet with, if any.
pub(crate) fn isolation() -> Option<&'static Isolation> {
    ISOLATION.get()
}

#[derive(Serialize, Deserialize)]
struct Request {
    path: String,
    options: JsonnetOptions,
    /// File name → base64 of its bytes.
    files: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize)]
enum Answer {
    Rendered(Vec<RenderedObject>),
    Failed(String),
}

/// Renders in a child process as `isolation` says (see the module doc).
pub(crate) fn render_in_child(
    isolation: &Isolation,
    tree: &FileTree,
    path: &str,
    options: &JsonnetOptions,
) -> Result<Vec<RenderedObject>, JsonnetError> {
    let failed = |message: String| JsonnetError::Isolated {
        path: path.to_owned(),
        message,
    };
    let engine = base64::engine::general_purpose::STANDARD;
    let request = Request {
        path: path.to_owned(),
        options: options.clone(),
        files: tree
            .iter()
            .map(|(name, bytes)| (name.clone(), engine.encode(bytes)))
            .collect(),
    };
    let body = serde_json::to_vec(&request)
        .map_err(|e| failed(format!("cannot encode the request: {e}")))?;
    let mut child = Command::new(&isolation.program)
        .args(&isolation.args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            failed(format!(
                "cannot start {} for the evaluation: {e}",
                isolation.program.display()
            ))
        })?;
    // Writer and reader on their own threads: neither pipe may fill up while the other waits.
    let stdin = child.stdin.take();
    let writer = std::thread::spawn(move || {
        if let Some(mut stdin) = stdin {
            let _ = stdin.write_all(&body);
        }
    });
    let stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        if let Some(mut stdout) = stdout {
            let _ = stdout.read_to_end(&mut out);
        }
        out
    });
    let deadline = Instant::now() + isolation.timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!(
                    "it ran longer than {} s and was stopped",
                    isolation.timeout.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => break Err(format!("cannot wait for the evaluation: {e}")),
        }
    };
    let _ = writer.join();
    let out = reader.join().unwrap_or_default();
    let status = status.map_err(failed)?;
    if !status.success() {
        return Err(failed(format!(
            "the evaluation crashed ({status}): a recursion too deep for the stack (recursion through object fields is not caught by the call limit) or too much memory"
        )));
    }
    match serde_json::from_slice::<Answer>(&out) {
        Ok(Answer::Rendered(objects)) => Ok(objects),
        Ok(Answer::Failed(message)) => Err(failed(message)),
        Err(e) => Err(failed(format!(
            "unreadable answer from the evaluation: {e}"
        ))),
    }
}

/// The child's side: reads one request from stdin, renders it in this process, writes the answer
/// to stdout. Returns the process exit code.
pub fn serve_child() -> i32 {
    let mut input = Vec::new();
    if std::io::stdin().read_to_end(&mut input).is_err() {
        return 2;
    }
    let answer = match serde_json::from_slice::<Request>(&input) {
        Err(e) => Answer::Failed(format!("unreadable request: {e}")),
        Ok(request) => {
            let engine = base64::engine::general_purpose::STANDARD;
            let mut tree = FileTree::new();
            let mut bad = None;
            for (name, text) in request.files {
                match engine.decode(text) {
                    Ok(bytes) => {
                        tree.insert(name, bytes);
                    }
                    Err(e) => bad = Some(format!("{name}: unreadable content: {e}")),
                }
            }
            match bad {
                Some(message) => Answer::Failed(message),
                None => match render_here(tree, &request.path, &request.options) {
                    Ok(objects) => Answer::Rendered(objects),
                    Err(error) => Answer::Failed(error.to_string()),
                },
            }
        }
    };
    let mut stdout = std::io::stdout().lock();
    match serde_json::to_writer(&mut stdout, &answer) {
        Ok(()) if stdout.flush().is_ok() => 0,
        _ => 2,
    }
}
