//! `exona`: the command line of libexona (DESIGN.md 7.3), written on the Rust API.
//!
//!   exona scan NAME WEBSITE [--max-age-days N] [--force-refresh] [--citations] [--timeout 5m] [--json]
//!   exona get SCAN_ID [--json]
//!   exona wait SCAN_ID [--timeout 5m] [--json]
//!   exona batch INPUT --output OUTPUT [--state FILE] [--max-age-days N] [--reconcile]

mod args;
mod batch;
mod commands;
mod interrupt;
mod setup;
mod status;
mod summary;

use clap::Parser;

use args::{Cli, Command};

/// Why the command did not end with status 0, and what it says about it on stderr.
#[derive(Debug)]
pub struct Failure {
    pub status: u8,
    pub message: String,
}

impl Failure {
    /// Status 1: a scan failed, or a request or row ended in error.
    pub fn failed(message: impl Into<String>) -> Failure {
        Failure { status: 1, message: message.into() }
    }
    /// Status 2: the command cannot run as given (arguments, input, key, files).
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure { status: 2, message: message.into() }
    }
    /// Status 3: the output or the batch's state file cannot be used or written (in use by
    /// another run, the input itself, not a regular file, not our output, a full disk).
    pub fn output(message: impl Into<String>) -> Failure {
        Failure { status: 3, message: message.into() }
    }
    /// Status 130 (Ctrl-C) or 143 (SIGTERM): stopped by that signal.
    pub fn interrupted(by: &interrupt::Interrupt, message: impl Into<String>) -> Failure {
        Failure { status: by.status(), message: message.into() }
    }
}

/// The library's warnings and errors (a state store bypassed or re-attached, a journal no
/// longer written) go to stderr even without EXONA_LOG: an operator must see that a 20-hour
/// batch runs without its shared ledger. EXONA_LOG, when set, decides instead.
fn show_the_librarys_warnings() {
    if std::env::var_os("EXONA_LOG").is_some() {
        return;
    }
    exona::log::set_hook(Some((
        exona::log::Level::Warn,
        Box::new(|level, line| eprintln!("exona: {}: {line}", level.name())),
    )));
}

fn run(cli: Cli) -> Result<(), Failure> {
    show_the_librarys_warnings();
    let interrupt = interrupt::Interrupt::install();
    let connection = &cli.connection;
    let client = |mode| setup::client(connection, mode);
    match cli.command {
        Command::Scan { name, website, max_age_days, force_refresh, citations, timeout, mode, json } => {
            let a =
                commands::ScanArgs { name, website, max_age_days, force_refresh, citations, timeout, json };
            commands::scan(&client(mode)?, a, &interrupt)
        }
        Command::Get { scan_id, json } => commands::get(&client(None)?, &scan_id, json, &interrupt),
        Command::Wait { scan_id, timeout, mode, json } => {
            commands::wait(&client(mode)?, &scan_id, timeout, json, &interrupt)
        }
        // No client: no request, no store opened for writing, no lease taken.
        Command::Status { json } => status::show(setup::config(connection, None)?, json),
        Command::Store { action: args::StoreAction::Init } => {
            // No key needed: this talks to the database only.
            let url = connection
                .state_url
                .clone()
                .or_else(|| std::env::var(exona::config::ENV_STATE_URL).ok())
                .and_then(|u| exona::config::state_url_setting(&u).map(str::to_owned));
            let Some(url) = url else {
                return Err(Failure::usage(
                    "exona store init needs the fleet store's URL: --state-url postgresql://... or EXONA_STATE_URL",
                ));
            };
            exona::store::check_url(&url).map_err(|e| Failure::usage(format!("the state URL: {e}")))?;
            let done = exona::store::init_url(&url).map_err(Failure::failed)?;
            println!("{done}");
            Ok(())
        }
        Command::Batch { input, output, state, max_age_days, reconcile, timeout, mode } => {
            let a = batch::BatchArgs { input, output, state, max_age_days, reconcile, timeout };
            batch::run(&client(mode)?, a, &interrupt)
        }
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(f) => {
            if !f.message.is_empty() {
                eprintln!("exona: {}", f.message);
            }
            std::process::ExitCode::from(f.status)
        }
    }
}
