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
/// EXONA_STATE_DIR is read by the library's own parser (`off` in any case, or empty, is none),
/// so the command and every binding agree on what a value means.
pub fn state_dir() -> Option<PathBuf> {
    match std::env::var(exona::config::ENV_STATE_DIR) {
        Ok(v) if !v.trim().is_empty() => exona::config::state_dir_setting(&v),
        _ => std::env::var_os("XDG_STATE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
            .map(|base| base.join("exona")),
    }
}

/// The client's configuration: the key (file or environment), the URL, the state directory,
/// the poll mode (`--mode` over `EXONA_POLL_MODE`).
pub fn config(connection: &Connection, mode: Option<exona::Mode>) -> Result<ClientConfig, Failure> {
    if let Some(path) = &connection.key_file {
        warn_if_others_can_read(path);
    }
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
    if let Some(url) = connection.state_url.as_deref() {
        config.state_url = exona::config::state_url_setting(url).map(exona::config::StateUrl::new);
    }
    if let Some(mode) = mode {
        config.policy.mode = mode;
    }
    Ok(config)
}

pub fn client(connection: &Connection, mode: Option<exona::Mode>) -> Result<Client, Failure> {
    let config = config(connection, mode)?;
    let wanted = if config.state_url.is_some() { None } else { config.state_dir.clone() };
    let client = config.build().map_err(|e| {
        // The library refuses a key of the wrong shape before any request; say how it should look.
        let hint = if e.message.contains("key") && !e.message.contains("dashboard") {
            format!(" ({KEY_HELP})")
        } else {
            String::new()
        };
        Failure::usage(format!("{}{hint}", e.message))
    })?;
    if let (Some(dir), false) = (&wanted, client.uses_state_store()) {
        eprintln!(
            "exona: warning: running without the state store in {} (see the warning above): this run \
             shares no budget, results or claims with other processes",
            dir.display()
        );
    }
    Ok(client)
}

/// A key file that the group or others can read lets them spend the key's budget and credits:
/// said on stderr (the command still runs, as ssh does not for its keys, because refusing
/// would stop a scheduled job that worked yesterday).
fn warn_if_others_can_read(path: &std::path::Path) {
    if let Some(mode) = others_can_read(path) {
        eprintln!(
            "exona: warning: the key file {} can be read by others (mode {mode:o}); chmod 600 it",
            path.display()
        );
    }
}

/// The file's permission bits when its group or others may read it.
pub fn others_can_read(path: &std::path::Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o044 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_dir_is_parsed_as_the_library_parses_it() {
        // EXONA_STATE_DIR=OFF made a directory ./OFF (the command parsed "off" itself).
        for off in ["off", "OFF", "Off", " off "] {
            assert_eq!(exona::config::state_dir_setting(off), None, "{off:?}");
        }
        let _guard = ENV.lock().unwrap();
        std::env::set_var("EXONA_STATE_DIR", "OFF");
        assert_eq!(state_dir(), None);
        std::env::set_var("EXONA_STATE_DIR", "/var/lib/exona");
        assert_eq!(state_dir(), Some(PathBuf::from("/var/lib/exona")));
        std::env::remove_var("EXONA_STATE_DIR");
    }

    static ENV: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_can_read_is_noticed() {
        use std::os::unix::fs::PermissionsExt;
        let p = std::env::temp_dir().join(format!("exona-key-{}", std::process::id()));
        std::fs::write(&p, "exo_test_x").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(others_can_read(&p), Some(0o644));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(others_can_read(&p), None);
        std::fs::remove_file(&p).unwrap();
    }
}
