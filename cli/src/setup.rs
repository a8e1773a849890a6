//! From the command line and the environment to a client: the key (EXONA_API_KEY or
//! --key-file), the URL, and the state directory the command uses by default.

use std::path::PathBuf;

use exona::{Client, ClientConfig};

use crate::args::Connection;
use crate::Failure;

const KEY_HELP: &str = "keys look like exo_live_… or exo_test_… (Developers dashboard: \
                        https://platform.exonalab.com/developers)";

/// The state directory: EXONA_STATE_DIR (`off`: none), else $XDG_STATE_HOME/exona, else
/// ~/.local/state/exona. The command, unlike the library, keeps state unasked: a portfolio's
/// results and learned durations are what makes the next run cheap.
pub fn state_dir() -> Option<PathBuf> {
    match std::env::var_os("EXONA_STATE_DIR") {
        Some(v) if v == "off" => None,
        Some(v) if !v.is_empty() => Some(PathBuf::from(v)),
        _ => std::env::var_os("XDG_STATE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
            .map(|base| base.join("exona")),
    }
}

pub fn client(connection: &Connection) -> Result<Client, Failure> {
    let key = match &connection.key_file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| Failure::usage(format!("cannot read the key file {}: {e}", path.display())))?
            .trim()
            .to_owned(),
        None => match std::env::var("EXONA_API_KEY") {
            Ok(k) if !k.trim().is_empty() => k.trim().to_owned(),
            _ => {
                return Err(Failure::usage(format!(
                    "no API key: set EXONA_API_KEY or pass --key-file; {KEY_HELP}"
                )))
            }
        },
    };
    let mut config = ClientConfig::from_env().map_err(|e| Failure::usage(e.message))?;
    config.api_key = Some(key.into());
    if let Some(url) = &connection.base_url {
        config.base_url = Some(url.clone());
    }
    config.state_dir = state_dir();
    config.build().map_err(|e| {
        // The library refuses a key of the wrong shape before any request; say how it should look.
        let hint = if e.message.contains("key") && !e.message.contains("dashboard") {
            format!(" ({KEY_HELP})")
        } else {
            String::new()
        };
        Failure::usage(format!("{}{hint}", e.message))
    })
}
