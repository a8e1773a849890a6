//! A client's configuration: the one place where settings are gathered (defaults, then the
//! environment, then the caller's overrides) and checked, for the Rust API, the C surface and
//! the bindings alike.

use std::time::Duration;

use zeroize::Zeroizing;

use crate::client::{Client, ConnectOptions, DEFAULT_BASE_URL};
use crate::error::Error;
use crate::Policy;

/// Everything a client is made from.
#[derive(Clone, Default)]
pub struct ClientConfig {
    /// `None`: none was given (building then fails, naming `EXONA_API_KEY`).
    pub api_key: Option<Zeroizing<String>>,
    /// `None`: the production URL.
    pub base_url: Option<String>,
    pub policy: Policy,
    pub connect: ConnectOptions,
    /// Where the state store lives (src/store); `None`: no store, no files written.
    pub state_dir: Option<std::path::PathBuf>,
    /// The fleet store's database (`postgresql://...`); when set it is the store, in place of
    /// the directory's SQLite file (batch journals still live beside their output).
    pub state_url: Option<StateUrl>,
}

/// A fleet store's URL: wiped from memory when dropped, shown without its password.
#[derive(Clone)]
pub struct StateUrl(Zeroizing<String>);

impl StateUrl {
    pub fn new(url: &str) -> StateUrl {
        StateUrl(Zeroizing::new(url.trim().to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for StateUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::store::redact_url(&self.0))
    }
}

impl std::fmt::Debug for ClientConfig {
    // Says whether a key is set, never which.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .field("base_url", &self.base_url)
            .field("policy", &self.policy)
            .field("state_url", &self.state_url)
            .finish_non_exhaustive()
    }
}

/// The environment variables a client reads (see the README).
pub const ENV_API_KEY: &str = "EXONA_API_KEY";
pub const ENV_BASE_URL: &str = "EXONA_BASE_URL";
pub const ENV_SCAN_DURATION_MS: &str = "EXONA_SCAN_DURATION_MS";
pub const ENV_CA_BUNDLE: &str = "EXONA_CA_BUNDLE";
pub const ENV_STATE_DIR: &str = "EXONA_STATE_DIR";
pub const ENV_POLL_MODE: &str = "EXONA_POLL_MODE";
pub const ENV_STATE_URL: &str = "EXONA_STATE_URL";

/// A state URL setting as every entry reads it (the environment, the command's flag, the C
/// setter, `exona store init`): trimmed; empty or "off" means no fleet store.
pub fn state_url_setting(text: &str) -> Option<&str> {
    let text = text.trim();
    (!text.is_empty() && !text.eq_ignore_ascii_case("off")).then_some(text)
}

/// The state directory a setting names: `off` (or empty) turns the store off.
pub fn state_dir_setting(value: &str) -> Option<std::path::PathBuf> {
    let v = value.trim();
    (!v.is_empty() && !v.eq_ignore_ascii_case("off")).then(|| std::path::PathBuf::from(v))
}

impl ClientConfig {
    /// The defaults, overlaid with the environment: `EXONA_API_KEY`, `EXONA_BASE_URL`,
    /// `EXONA_SCAN_DURATION_MS` ("MIN-MAX" in milliseconds), `EXONA_CA_BUNDLE` (a PEM file of
    /// extra CAs), `EXONA_STATE_DIR` (the state store's directory; `off` for none) and
    /// `EXONA_POLL_MODE` (`adaptive`, `latency`, `balanced` or `frugal`: the client's default
    /// poll mode) and `EXONA_STATE_URL` (a `postgresql://` URL: the fleet store, in place of the
    /// directory's). A variable that is set but unusable is an error naming it.
    pub fn from_env() -> Result<ClientConfig, Error> {
        let mut config = ClientConfig {
            api_key: env_var(ENV_API_KEY)?.map(Zeroizing::new),
            base_url: env_var(ENV_BASE_URL)?,
            ..ClientConfig::default()
        };
        if let Some(text) = env_var(ENV_SCAN_DURATION_MS)? {
            config.policy.expected_duration = parse_duration_range(&text).ok_or_else(|| {
                Error::invalid_argument(format!(
                    "{ENV_SCAN_DURATION_MS} is {text:?}: use MIN-MAX in milliseconds, e.g. 30000-120000"
                ))
            })?;
        }
        if let Some(path) = env_var(ENV_CA_BUNDLE)? {
            config.connect.extra_ca_pem = Some(read_ca_bundle(&path, ENV_CA_BUNDLE)?);
        }
        if let Some(dir) = env_var(ENV_STATE_DIR)? {
            config.state_dir = state_dir_setting(&dir);
        }
        if let Some(url) = env_var(ENV_STATE_URL)?.as_deref().and_then(state_url_setting) {
            config.state_url = Some(StateUrl::new(url));
        }
        if let Some(text) = env_var(ENV_POLL_MODE)? {
            config.policy.mode =
                text.parse().map_err(|e| Error::invalid_argument(format!("{ENV_POLL_MODE}: {e}")))?;
        }
        Ok(config)
    }

    /// A configuration of `api_key` at `base_url` (`None`: the production URL), no environment.
    pub fn new(api_key: &str, base_url: Option<&str>) -> ClientConfig {
        ClientConfig {
            api_key: Some(Zeroizing::new(api_key.to_owned())),
            base_url: base_url.map(str::to_owned),
            ..ClientConfig::default()
        }
    }

    /// Checks everything that can be checked before connecting, and returns the key and the
    /// base URL (without a trailing slash) as the client will use them.
    /// What the state store knows of this configuration's key (its budget across processes,
    /// claims, scans in flight, learned durations), read only: no request, no file written.
    /// `Ok(None)`: no store has been made in the state directory yet.
    pub fn state_snapshot(&self) -> Result<Option<crate::store::snapshot::Snapshot>, Error> {
        let (api_key, base_url) = self.validate()?;
        if let Some(url) = &self.state_url {
            let shown = crate::store::redact_url(url.as_str());
            return crate::store::snapshot_url(url.as_str(), &crate::store::fingerprint(api_key, &base_url))
                .map_err(|e| {
                    Error::invalid_argument(format!("cannot read the state store at {shown}: {e}"))
                });
        }
        let dir = self.state_dir.as_deref().ok_or_else(|| {
            Error::invalid_argument(format!("no state directory: set {ENV_STATE_DIR} (it is off)"))
        })?;
        crate::store::snapshot(dir, &crate::store::fingerprint(api_key, &base_url)).map_err(|e| {
            Error::invalid_argument(format!("cannot read the state store in {}: {e}", dir.display()))
        })
    }

    pub fn validate(&self) -> Result<(&str, String), Error> {
        let api_key = self.api_key.as_deref().ok_or_else(|| {
            Error::invalid_argument(format!("api_key is NULL and {ENV_API_KEY} is not set"))
        })?;
        check_api_key(api_key)?;
        let base_url = check_base_url(self.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL))?;
        if let Some(p) = self.connect.proxy.as_deref().filter(|p| !p.is_empty()) {
            check_proxy(p)?;
        }
        if let Some(url) = &self.state_url {
            crate::store::check_url(url.as_str())
                .map_err(|e| Error::invalid_argument(format!("state_url ({ENV_STATE_URL}): {e}")))?;
        }
        Ok((api_key, base_url))
    }

    /// The client this configuration describes.
    pub fn build(self) -> Result<Client, Error> {
        Client::from_config(self)
    }
}

fn env_var(name: &str) -> Result<Option<String>, Error> {
    match std::env::var(name) {
        Ok(v) => Ok(Some(v)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(Error::invalid_argument(format!("{name} is not valid UTF-8")))
        }
    }
}

/// Reads a PEM bundle; `what` names where its path came from, for the error.
pub fn read_ca_bundle(path: &str, what: &str) -> Result<Vec<u8>, Error> {
    std::fs::read(path)
        .map_err(|e| Error::invalid_argument(format!("{what} names {path:?}, which cannot be read ({e})")))
}

/// "MIN-MAX" (or one number for both), in milliseconds, MIN <= MAX.
pub fn parse_duration_range(text: &str) -> Option<(Duration, Duration)> {
    let (lo, hi) = text.split_once('-').unwrap_or((text, text));
    let (lo, hi): (u64, u64) = (lo.trim().parse().ok()?, hi.trim().parse().ok()?);
    (lo <= hi).then(|| (Duration::from_millis(lo), Duration::from_millis(hi)))
}

/// The documented key prefixes and the length of what follows them (exona-api.md §3).
pub const KEY_PREFIXES: [&str; 2] = ["exo_live_", "exo_test_"];
pub const KEY_SECRET_CHARS: usize = 36;

/// A key must have the documented shape, `exo_live_` or `exo_test_` and 36 letters and digits,
/// so a key mistyped or cut short is refused before it costs anything (a batch would otherwise
/// collect one 401 per row). The message never repeats the key.
pub fn check_api_key(api_key: &str) -> Result<(), Error> {
    if api_key.is_empty() {
        return Err(Error::invalid_argument("api_key is empty"));
    }
    if api_key.bytes().any(|b| !(0x21..=0x7e).contains(&b)) {
        // Control characters (CR, LF), spaces and non-ASCII cannot be sent in a header.
        return Err(Error::invalid_argument(
            "api_key holds a character that cannot go in an HTTP header (space, control or non-ASCII)",
        ));
    }
    let secret = KEY_PREFIXES.iter().find_map(|p| api_key.strip_prefix(p));
    let shaped =
        secret.is_some_and(|s| s.len() == KEY_SECRET_CHARS && s.bytes().all(|b| b.is_ascii_alphanumeric()));
    if !shaped {
        // Counted as the rule counts: what follows the prefix, when there is one.
        let what = match secret {
            Some(s) if s.bytes().all(|b| b.is_ascii_alphanumeric()) => {
                format!("{} letters and digits follow its prefix", s.len())
            }
            Some(_) => "what follows its prefix is not only letters and digits".to_owned(),
            None => format!("it starts with neither prefix ({} characters in all)", api_key.len()),
        };
        return Err(Error::invalid_argument(format!(
            "api_key does not have the shape of an Exona key (exo_live_ or exo_test_ followed by \
             {KEY_SECRET_CHARS} letters and digits; {what}); it was not sent. Keys are issued in the \
             Developers dashboard of the Exona platform"
        )));
    }
    Ok(())
}

/// A proxy URL, checked by the same parser that will use it.
pub fn check_proxy(proxy: &str) -> Result<(), Error> {
    reqwest::Proxy::all(proxy)
        .map(|_| ())
        .map_err(|e| Error::invalid_argument(format!("proxy {proxy:?} is not a proxy URL ({e})")))
}

/// Checks the base URL and returns it without a trailing slash.
pub fn check_base_url(base_url: &str) -> Result<String, Error> {
    let url = reqwest::Url::parse(base_url)
        .map_err(|e| Error::invalid_argument(format!("base_url {base_url:?} is not a URL ({e})")))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(Error::invalid_argument(format!(
                "base_url {base_url:?} uses plain http:// to a host that is not loopback; the API key would travel unencrypted"
            )))
        }
        other => return Err(Error::invalid_argument(format!("base_url {base_url:?} has the scheme '{other}'; use https://"))),
    }
    if url.host_str().is_none() {
        return Err(Error::invalid_argument(format!("base_url {base_url:?} has no host")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::invalid_argument(format!(
            "base_url {base_url:?} must not have a query or fragment"
        )));
    }
    // Normalized (scheme and host lower-cased, a default port dropped, dot segments resolved,
    // no trailing slash): one service, however it is written, is one key's ledger in the state
    // store, whose fingerprint covers the URL.
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_rules() {
        assert_eq!(check_base_url("https://x.example/api/v1/").unwrap(), "https://x.example/api/v1");
        assert!(check_base_url("http://127.0.0.1:8080/api/v1").is_ok());
        assert!(check_base_url("http://localhost/api/v1").is_ok());
        assert!(check_base_url("http://[::1]:9/api/v1").is_ok());
        for bad in ["http://example.com/api/v1", "ftp://x/", "not a url", "", "https://x/?a=1"] {
            assert!(check_base_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_of_the_wrong_shape_are_refused_without_echo() {
        assert!(check_api_key("exo_live_abcdefghijklmnopqrstuvwxyz0123456789").is_ok());
        assert!(check_api_key("exo_test_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789").is_ok());
        for bad in [
            "exo_test_bad",
            "exo_prod_abcdefghijklmnopqrstuvwxyz0123456789",
            "exo_test_abcdefghijklmnopqrstuvwxyz012345678",
            "exo_test_abcdefghijklmnopqrstuvwxyz01234567890",
            "exo_test_abcdefghijklmnopqrstuvwxyz-123456789",
            "sk-abcdefghijklmnopqrstuvwxyz0123456789",
        ] {
            let e = check_api_key(bad).unwrap_err();
            assert!(e.message.contains("exo_live_"), "{}", e.message);
            assert!(!e.message.contains(&bad[4..]), "the key is echoed: {}", e.message);
        }
        // Counted as the rule counts (issue 36: a key of 46 characters was said to have 46
        // where the rule speaks of the 36 after the prefix).
        let e = check_api_key("exo_test_abcdefghijklmnopqrstuvwxyz01234567890").unwrap_err();
        assert!(e.message.contains("37 letters and digits follow its prefix"), "{}", e.message);
        let e = check_api_key("sk-abcdefghijklmnopqrstuvwxyz0123456789").unwrap_err();
        assert!(e.message.contains("starts with neither prefix"), "{}", e.message);
    }

    #[test]
    fn one_service_written_two_ways_is_one_base_url() {
        let a = check_base_url("HTTPS://Platform.ExonaLab.com:443/api/v1/").unwrap();
        let b = check_base_url("https://platform.exonalab.com/api/v1").unwrap();
        assert_eq!(a, b);
        assert_eq!(b, "https://platform.exonalab.com/api/v1");
        assert_eq!(check_base_url("http://127.0.0.1:8080/api/v1/").unwrap(), "http://127.0.0.1:8080/api/v1");
    }

    #[test]
    fn poll_modes_are_read_by_name_in_any_case() {
        use crate::engine::schedule::Mode;
        for mode in [Mode::Adaptive, Mode::Latency, Mode::Balanced, Mode::Frugal] {
            assert_eq!(mode.name().parse::<Mode>(), Ok(mode));
            assert_eq!(format!(" {} ", mode.name().to_uppercase()).parse::<Mode>(), Ok(mode));
        }
        let e = "fast".parse::<Mode>().unwrap_err();
        assert!(e.contains("\"fast\"") && e.contains("adaptive, latency, balanced or frugal"), "{e}");
    }

    #[test]
    fn state_dir_settings() {
        assert_eq!(state_dir_setting("/var/lib/exona"), Some(std::path::PathBuf::from("/var/lib/exona")));
        assert_eq!(state_dir_setting("off"), None);
        assert_eq!(state_dir_setting("OFF"), None);
        assert_eq!(state_dir_setting(""), None);
    }

    #[test]
    fn duration_ranges() {
        assert_eq!(parse_duration_range("3000-8000"), Some((Duration::from_secs(3), Duration::from_secs(8))));
        assert_eq!(
            parse_duration_range("500"),
            Some((Duration::from_millis(500), Duration::from_millis(500)))
        );
        assert_eq!(parse_duration_range("8-3"), None);
        assert_eq!(parse_duration_range("x"), None);
    }

    #[test]
    fn a_missing_key_names_the_variable_and_debug_hides_the_key() {
        let e = ClientConfig::default().validate().unwrap_err();
        assert!(e.message.contains(ENV_API_KEY), "{}", e.message);
        let c = ClientConfig::new("exo_test_secret_value_123", None);
        assert!(!format!("{c:?}").contains("secret_value"));
        let c = ClientConfig {
            connect: ConnectOptions { proxy: Some("::not a proxy".into()), ..ConnectOptions::default() },
            ..ClientConfig::new("exo_test_abcdefghijklmnopqrstuvwxyz0123456789", None)
        };
        assert!(c.validate().unwrap_err().message.contains("proxy"));
    }
}
