//! Who may talk to the web view: requests that carry the random token of the printed URL (as
//! Jupyter does), so another site open in the same browser cannot read the cluster's state or
//! press Sync, and whose `Host` is this loopback address, so a DNS-rebinding name that resolves
//! to 127.0.0.1 gets nothing either.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The token's query parameter (`?token=`); the page's scripts add it to every request.
pub const TOKEN_PARAM: &str = "token";
/// The header a script may send the token in instead.
pub const TOKEN_HEADER: &str = "x-gitops-token";

/// What the guard checks against.
#[derive(Debug, Clone)]
pub struct Guard {
    /// The random token.
    pub token: String,
    /// The port served, for the Host check.
    pub port: u16,
}

/// A fresh token: 24 bytes from the operating system's random source, as hex.
pub fn new_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Equal in time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Guard {
    /// Whether `host` (the Host header) names this server on loopback.
    pub fn host_allowed(&self, host: &str) -> bool {
        let port = self.port.to_string();
        ["127.0.0.1", "localhost", "[::1]"]
            .iter()
            .any(|name| host == format!("{name}:{port}"))
    }

    /// Whether the request carries the token, in the query or the header.
    pub fn token_in(&self, query: Option<&str>, header: Option<&str>) -> bool {
        if header.is_some_and(|h| same(h, &self.token)) {
            return true;
        }
        query
            .unwrap_or_default()
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .any(|(key, value)| key == TOKEN_PARAM && same(value, &self.token))
    }
}

/// The middleware: 403 for a foreign Host or a missing or wrong token.
pub async fn check(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if !guard.host_allowed(host) {
        tracing::warn!(%host, path = %request.uri().path(), "refused: not a loopback Host");
        return (
            StatusCode::FORBIDDEN,
            "403 Forbidden: this server answers only to 127.0.0.1 and localhost\n",
        )
            .into_response();
    }
    let header = request
        .headers()
        .get(TOKEN_HEADER)
        .and_then(|h| h.to_str().ok());
    if !guard.token_in(request.uri().query(), header) {
        tracing::warn!(path = %request.uri().path(), "refused: no token");
        return (
            StatusCode::FORBIDDEN,
            "403 Forbidden: open the URL kubectl gitops ui printed (it carries the token)\n",
        )
            .into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_token() {
        let guard = Guard {
            token: new_token().expect("random"),
            port: 8123,
        };
        assert_eq!(guard.token.len(), 48);
        assert_ne!(guard.token, new_token().expect("random"));
        assert!(guard.host_allowed("127.0.0.1:8123"));
        assert!(guard.host_allowed("localhost:8123"));
        assert!(!guard.host_allowed("evil.example:8123"));
        assert!(!guard.host_allowed("127.0.0.1:8124"));
        let query = format!("a=1&token={}", guard.token);
        assert!(guard.token_in(Some(&query), None));
        assert!(guard.token_in(None, Some(&guard.token)));
        assert!(!guard.token_in(Some("token=0"), None));
        assert!(!guard.token_in(Some(&format!("token={}x", guard.token)), None));
        assert!(!guard.token_in(None, None));
    }
}
