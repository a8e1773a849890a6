//! The command line, as DESIGN.md 7.3 fixes it (outside scripts depend on it).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use exona::Mode;

#[derive(Parser, Debug)]
#[command(
    name = "exona",
    version = exona::BUILD_VERSION,
    about = "Scan companies with the Exona AI-risk API: one company, a scan by id, or a whole portfolio",
    after_help = "The key comes from EXONA_API_KEY (or --key-file), the URL from EXONA_BASE_URL (or --base-url).\n\
                  What the command learns is kept in $XDG_STATE_HOME/exona (EXONA_STATE_DIR; \"off\" turns it off).\n\
                  Exit status: 0 done (every row completed, or failed as a scan), 1 some scan or row ended in\n\
                  error, 2 usage (arguments, key, input), 3 the output or state file cannot be used or written\n\
                  (in use by another run, the input itself, not a regular file, unwritable), 130 interrupted\n\
                  by Ctrl-C, 143 stopped by SIGTERM."
)]
pub struct Cli {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug)]
pub struct Connection {
    /// A file holding the API key (instead of EXONA_API_KEY).
    #[arg(long, global = true, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// The API's base URL (instead of EXONA_BASE_URL; default: the production URL).
    #[arg(long, global = true, value_name = "URL")]
    pub base_url: Option<String>,
    /// The fleet store: a postgresql:// URL shared by the hosts of a fleet on one key, in place
    /// of the state directory's file (instead of EXONA_STATE_URL, which keeps the password out
    /// of the process list; "off" for none). The password is never printed.
    #[arg(long, global = true, value_name = "URL")]
    pub state_url: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Scan a company and print its risk assessment.
    Scan {
        /// The company's name.
        name: String,
        /// Its website (https://...).
        website: String,
        /// Reuse a completed scan of the website at most N days old (no new scan).
        #[arg(long, value_name = "N")]
        max_age_days: Option<u32>,
        /// Always create a new scan.
        #[arg(long)]
        force_refresh: bool,
        /// Ask for per-field citations.
        #[arg(long)]
        citations: bool,
        /// How long to wait in all (5m, 90s, 1h).
        #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
        timeout: Duration,
        #[arg(long, value_name = "MODE", help = MODE_HELP, value_parser = parse_mode)]
        mode: Option<Mode>,
        /// Print the scan object (JSON) instead of a summary.
        #[arg(long)]
        json: bool,
    },
    /// Fetch a scan by id, once.
    Get {
        /// The scan's id (scn_...), as `exona scan --json`, a batch's output or an error printed it.
        scan_id: String,
        /// Print the scan object (JSON) instead of a summary.
        #[arg(long)]
        json: bool,
    },
    /// Wait for an existing scan (resume by id: no new scan).
    Wait {
        /// The scan's id (scn_...): the one an interrupted `exona scan`, a timeout or a batch's
        /// output handed back. Only GET requests are sent; no scan is created.
        scan_id: String,
        /// How long to wait in all (5m, 90s, 1h); the scan goes on at the API after it.
        #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
        timeout: Duration,
        #[arg(long, value_name = "MODE", help = MODE_HELP, value_parser = parse_mode)]
        mode: Option<Mode>,
        /// Print the scan object (JSON) instead of a summary.
        #[arg(long)]
        json: bool,
    },
    /// What the state store knows of the key, with no request sent: its window (limit, left,
    /// reset), what each process holds, claims and scans in flight, learned durations.
    Status {
        /// Print it as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The fleet store's schema (a postgresql:// state URL): `exona store init` creates or
    /// migrates it, once, as a role that may; the hosts then need only DML rights on it.
    Store {
        #[command(subcommand)]
        action: StoreAction,
    },
    /// Scan a portfolio: CSV (company_name, company_website, other columns carried through) or
    /// JSON Lines in; JSON Lines (or CSV, by extension) out, one line per row as it ends.
    /// Run the same command again after a crash or Ctrl-C to resume.
    Batch {
        /// The portfolio: .csv, or .jsonl / .ndjson.
        input: PathBuf,
        /// Where rows go as they end: .jsonl (default) or .csv.
        #[arg(long, short)]
        output: PathBuf,
        /// The batch's journal (default: OUTPUT.state).
        #[arg(long, value_name = "FILE")]
        state: Option<PathBuf>,
        /// Reuse completed scans of a website at most N days old.
        #[arg(long, value_name = "N")]
        max_age_days: Option<u32>,
        /// Re-create rows a crash left in their create, with max_age_days (a completed twin is
        /// reused), instead of reporting them EXONA_ERR_AMBIGUOUS_CREATE.
        #[arg(long)]
        reconcile: bool,
        /// How long each row may wait once its scan is created.
        #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
        timeout: Duration,
        #[arg(long, value_name = "MODE", help = MODE_HELP, value_parser = parse_mode)]
        mode: Option<Mode>,
    },
}

#[derive(Subcommand, Debug)]
pub enum StoreAction {
    /// Create the store's schema in the database --state-url (or EXONA_STATE_URL) names, or
    /// migrate an older one. Safe to run again, and by several hosts at once.
    Init,
}

const MODE_HELP: &str =
    "How to poll: adaptive (default: quick while the key's window has room, thrifty as it \
                         tightens), latency, balanced or frugal (fewest requests). Overrides EXONA_POLL_MODE";

/// A poll mode by name (the library's parser, as EXONA_POLL_MODE is read).
pub fn parse_mode(text: &str) -> Result<Mode, String> {
    text.parse()
}

/// `5m`, `90s`, `1h30m`, or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if let Ok(secs) = text.trim().parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|_| format!("{text:?} is not a duration"));
    }
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not a duration ({e}); try 5m, 90s or 1h"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("exona").chain(args.iter().copied()))
    }

    #[test]
    fn the_contract_forms_parse() {
        let cli = parse(&[
            "scan",
            "Acme",
            "https://acme.ai",
            "--max-age-days",
            "30",
            "--citations",
            "--timeout",
            "2m",
            "--mode",
            "Frugal",
            "--json",
        ])
        .unwrap();
        match cli.command {
            Command::Scan { name, website, max_age_days, force_refresh, citations, timeout, mode, json } => {
                assert_eq!((name.as_str(), website.as_str()), ("Acme", "https://acme.ai"));
                assert_eq!((max_age_days, force_refresh, citations, json), (Some(30), false, true, true));
                assert_eq!(timeout, Duration::from_secs(120));
                assert_eq!(mode, Some(exona::Mode::Frugal));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse(&["get", "scn_1"]).unwrap().command, Command::Get { json: false, .. }));
        match parse(&["wait", "scn_1", "--timeout", "90"]).unwrap().command {
            Command::Wait { timeout, .. } => assert_eq!(timeout, Duration::from_secs(90)),
            other => panic!("{other:?}"),
        }
        match parse(&["batch", "in.csv", "--output", "out.jsonl", "--reconcile", "--max-age-days", "7"])
            .unwrap()
            .command
        {
            Command::Batch { input, output, state, max_age_days, reconcile, .. } => {
                assert_eq!((input.to_str(), output.to_str()), (Some("in.csv"), Some("out.jsonl")));
                assert_eq!((state, max_age_days, reconcile), (None, Some(7), true));
            }
            other => panic!("{other:?}"),
        }
        let cli =
            parse(&["--base-url", "http://127.0.0.1:1/api/v1", "get", "scn_1", "--key-file", "k"]).unwrap();
        assert_eq!(cli.connection.base_url.as_deref(), Some("http://127.0.0.1:1/api/v1"));
        assert!(cli.connection.key_file.is_some());
    }

    #[test]
    fn bad_forms_are_usage_errors() {
        for args in [
            &["scan", "Acme"][..],
            &["batch", "in.csv"],
            &["scan", "Acme", "https://acme.ai", "--timeout", "soon"],
            &["scan", "Acme", "https://acme.ai", "--max-age-days", "-1"],
            &["frobnicate"],
        ] {
            let e = parse(args).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}");
        }
    }
}
