//! Child processes of a test: stopped with it, and asked where they listen.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

/// A child process killed (and reaped) on drop.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The address in the first line of the log file `log` that contains `message` and a field
/// `address=<ip:port>` — how a server told to listen on port 0 says which port it got. Waits up
/// to `timeout` for the line; panics with the log when `child` exits first or time runs out.
pub fn address_in_log(
    log: &Path,
    message: &str,
    child: &mut Child,
    timeout: Duration,
) -> SocketAddr {
    let deadline = Instant::now() + timeout;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let found = text
            .lines()
            .filter(|line| line.contains(message))
            .find_map(|line| {
                let plain = strip_ansi(line);
                let (_, rest) = plain.split_once("address=")?;
                rest.split_whitespace().next()?.parse().ok()
            });
        if let Some(address) = found {
            return address;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{message}: the process exited ({status}) first:\n{text}");
        }
        assert!(
            Instant::now() < deadline,
            "{message}: no such line in {} after {timeout:?}:\n{text}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `line` without ANSI colour escapes (`ESC [ ... m`).
fn strip_ansi(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}
