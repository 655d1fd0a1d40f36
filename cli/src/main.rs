//! The `oc2mqtt` command line.
fn main() {}
