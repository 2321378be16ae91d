//! End-to-end tests of `kubectl-gitops` and the test API server they run against when no real
//! cluster is given (see [`apiserver`]); [`harness`] holds what the tests and the benchmark share.

pub mod admission;
pub mod apiserver;
pub mod harness;
pub mod workloads;
