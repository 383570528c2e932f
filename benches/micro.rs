//! criterion micro-benchmarks (filled in below as features land).
fn main() {}
