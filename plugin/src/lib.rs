//! The `kubectl gitops` plugin: render apps from Git with provenance (and, in later commands,
//! sync them and show their status).
//!
//! `main.rs` only calls [`cli::main`]; each command lives in a module named after it.

pub mod cli;
pub mod exit;
pub mod output;
pub mod render_cmd;
pub mod source;
