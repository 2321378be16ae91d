//! The `kubectl gitops` plugin: render apps from Git with provenance (and, in later commands,
//! sync them and show their status).
//!
//! `main.rs` only calls [`cli::main`]; each command lives in a module named after it.

pub mod app_state;
pub mod cli;
pub mod cluster;
pub mod colour;
pub mod completion_cmd;
pub mod diff_cmd;
pub mod exit;
pub mod hooks;
pub mod inventory;
#[cfg(test)]
mod mock_tests;
pub mod output;
pub mod render_cmd;
pub mod revert;
pub mod source;
pub mod status;
pub mod status_cmd;
pub mod sync_cmd;
pub mod ui;
pub mod waves;
