//! The `oc2mqtt` binary: the command line of the `oc2mqtt_cli` library.

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(oc2mqtt_cli::run(std::env::args_os()))
}
