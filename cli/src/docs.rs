//! `oc2mqtt completions` and `oc2mqtt man`: generated from the clap
//! definitions, so that they cannot drift from the flags.

use clap::CommandFactory;

use crate::Cli;
use crate::common::{EXIT_OK, Failure, print_text};

/// The completion script for `shell`, on stdout.
pub(crate) fn completions(shell: clap_complete::Shell) -> Result<u8, Failure> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "oc2mqtt", &mut script);
    print_text(&script)?;
    Ok(EXIT_OK)
}

/// The man page of oc2mqtt, or of one of its subcommands (`oc2mqtt-send(1)`), on stdout.
pub(crate) fn man_page(subcommand: Option<&str>) -> Result<u8, Failure> {
    let mut command = Cli::command();
    // Built, subcommands carry their full names ("oc2mqtt-send") and the
    // flags they inherit.
    command.build();
    let page = match subcommand {
        None => command,
        Some(name) => command
            .find_subcommand(name)
            .ok_or_else(|| Failure::usage(format!("no subcommand '{name}'")))?
            .clone(),
    };
    let mut roff = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut roff)
        .map_err(|e| Failure::runtime(format!("cannot render the man page: {e}")))?;
    print_text(&roff)?;
    Ok(EXIT_OK)
}
