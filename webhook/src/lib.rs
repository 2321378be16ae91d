//! `gitops-webhook`: a validating admission webhook that rejects every change to a managed object
//! that no commit on a trusted Git branch explains.
//!
//! [`decision::decide`] is the pure heart (the eight rules of DESIGN.md); [`store::GitStore`]
//! answers its questions from Git mirrors and a bounded render cache; [`server`] parses
//! AdmissionReviews over TLS and wraps the answers.
#![warn(missing_docs)]
// `gitops_shared::Error` is large; closures that hand it through to be mapped are not hot paths.
#![allow(clippy::result_large_err)]

pub mod config;
pub mod decision;
pub mod declared;
pub mod error;
pub mod index;
pub mod metrics;
pub mod mirror;
pub mod review;
pub mod server;
pub mod store;
pub mod tls;

pub use error::{Error, Result};
