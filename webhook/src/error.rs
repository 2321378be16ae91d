//! The crate's error type: each variant is named after the step that failed.

use std::path::PathBuf;

/// Everything that can stop the webhook from starting or serving.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration file could not be read.
    #[error("cannot read the configuration file {path}")]
    ReadConfig {
        /// The file named by `--config`.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The configuration file is not valid: the message names the key and the reason.
    #[error("configuration file {path}: {message}")]
    InvalidConfig {
        /// The file named by `--config` (or `<inline>` in tests).
        path: PathBuf,
        /// The key at fault and why.
        message: String,
    },
    /// A credentials file named by the configuration could not be read.
    #[error("cannot read {what} {path}")]
    ReadCredentials {
        /// What the file holds (token, SSH key).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A Git operation on a mirror failed.
    #[error("Git mirror of {url}")]
    Mirror {
        /// The repository URL.
        url: String,
        /// What the shared Git code said.
        #[source]
        source: Box<gitops_shared::git::GitError>,
    },
    /// The TLS certificate or key could not be loaded.
    #[error("cannot load the TLS {what} from {path}: {reason}")]
    Tls {
        /// `certificate` or `key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// No Kubernetes API client could be built to read scale parents.
    #[error("cannot build a Kubernetes API client {what}")]
    ApiClient {
        /// Where the configuration was looked for.
        what: String,
        /// What kube said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A listening socket could not be bound.
    #[error("cannot listen on {address}")]
    Bind {
        /// The address asked for.
        address: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("server error on {what}")]
    Serve {
        /// Which listener.
        what: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
