//! Test support shared by the tests of every crate of the workspace (`plugin/tests`,
//! `webhook/tests`, `webhook/benches` and the end-to-end crate `tests/`), so that each thing is
//! done one way: Git repositories made with the `git` program ([`git`]), a `git daemon` on a port
//! of its own choosing ([`daemon`]), a certificate authority and serving certificates
//! ([`pki`]), child processes that stop with the test and tell where they listen
//! ([`process`]), and a benchmark's API server ([`control_plane`]).
//!
//! Test support: a failure to set up panics with a message saying what is missing.

pub mod control_plane;
pub mod daemon;
pub mod git;
pub mod pki;
pub mod process;

pub use daemon::GitDaemon;
pub use git::{git, Repo};
pub use pki::{Ca, Serving};
pub use process::{address_in_log, Killed};
