//! Benchmarks of the webhook (load generator, decision latency, cold render, memory): added in
//! the following commit.
fn main() {}
