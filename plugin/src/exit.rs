//! Documented exit codes, the same for every command (like `kubectl diff`).

/// Success: rendered, applied, in sync and healthy.
pub const OK: u8 = 0;
/// The command worked and found a difference (drift, failed objects, unhealthy objects).
pub const DIFFERENCE: u8 = 1;
/// The command could not do its job: bad input, unknown revision, unreachable cluster.
pub const ERROR: u8 = 2;
