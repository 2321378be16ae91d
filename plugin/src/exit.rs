//! Documented exit codes, the same for every command (like `kubectl diff`).

/// Success: rendered, applied, in sync and healthy.
pub const OK: u8 = 0;
/// The command worked and found a difference (drift, failed objects, unhealthy objects). For
/// `sync`: a change was refused or failed (a failed hook, an object Degraded).
pub const DIFFERENCE: u8 = 1;
/// The command could not do its job: bad input, unknown revision, unreachable cluster.
pub const ERROR: u8 = 2;
/// `sync` only: everything was applied, but not every object was Healthy within `--timeout`
/// (with `--wait`, or between waves, or before PostSync hooks). CI may wait longer; nothing failed.
pub const NOT_HEALTHY: u8 = 3;
