//! `gitops-webhook`: a validating admission webhook that rejects every change to a managed object
//! that no commit on a trusted Git branch explains.
//!
//! [`decision::decide`] is the pure heart (the eight rules of DESIGN.md); [`store::GitStore`]
//! answers its questions from Git mirrors and a bounded render cache; [`server`] parses
//! AdmissionReviews over TLS and wraps the answers.
//!
//! Choices worth knowing:
//! - Folder apps (not listed in `gitops.yaml`) carry no namespace in Git; they are rendered for
//!   the incoming object's own namespace, as the plugin rendered them for the namespace it synced.
//! - The head index covers the apps of each tracked branch's `gitops.yaml`. A DELETE of a folder
//!   app's object is checked by rendering the claimed app at the head. A Scale carries no labels,
//!   so for a parent the index does not know the server reads the parent from the API server
//!   ([`parent`]) and renders the app it claims at the head; without API access such a Scale
//!   passes (start-up warns and `/readyz` says so).
//! - Exempt identities may change what Git does not declare, and are not blamed for drift that
//!   the old object already had; what they change must still agree with Git where Git declares it.
//! - Warm requests (commit facts and renders in memory) are decided on the event loop; anything
//!   needing Git runs on a blocking thread under `decisionDeadline`.
#![warn(missing_docs)]

pub mod config;
pub mod decision;
pub mod declared;
pub mod denial;
pub mod error;
pub mod fields;
pub mod index;
pub mod inventory;
pub mod metrics;
pub mod mirror;
pub mod parent;
pub mod review;
pub mod server;
pub mod store;
pub mod tls;

pub use error::{Error, Result};
