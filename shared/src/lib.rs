//! The core that `kubectl-gitops` and `gitops-webhook` share.
//!
//! Plugin and webhook must agree byte for byte on what a Git commit renders to, so everything that
//! decides that — Git access, the app file, the renderers, provenance stamping, canonical digests
//! and the semantic comparison of desired with live objects — lives here, once. Nothing in this
//! crate talks to a network except Git fetches, and every decision is a pure function of its inputs.
#![warn(missing_docs)]

pub mod appfile;
pub mod canonical;
pub mod compare;
pub mod defaults;
pub mod drift;
pub mod duration;
pub mod git;
pub mod health;
pub mod hooks;
pub mod object;
pub mod provenance;
pub mod quantity;
pub mod render;
pub mod scope;
pub mod takeover;
pub mod timestamp;
pub mod yaml;
