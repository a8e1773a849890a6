//! `exona_client_options`: how a client connects and waits, beyond its key and base URL.

use std::ffi::{c_char, c_int};
use std::time::Duration;

use super::args::{free, into_raw, optional_str, update};
use super::boundary::boundary;
use super::codes::exona_code;
use super::scan_options::{duration_range, poll_mode};
use crate::config::{check_proxy, read_ca_bundle};
use crate::error::Error;
use crate::ClientConfig;
use crate::Mode;

/// Client settings (an opaque handle), for `exona_client_create_with_options`. Defaults:
/// connect timeout 10 s, attempt timeout 30 s, User-Agent `libexona/<version>`, the
/// environment's proxy (`HTTPS_PROXY`, `NO_PROXY`), the system's CA store (plus
/// `EXONA_CA_BUNDLE`), adaptive polling (or `EXONA_POLL_MODE`), scan durations expected 30–120 s (or
/// `EXONA_SCAN_DURATION_MS`). Settings made here win over the environment. Not thread-safe
/// while being modified; the client copies what it needs, so free the options any time.
#[derive(Clone, Debug, Default)]
pub struct exona_client_options {
    /// Each `Some` overrides the default and the environment; `None` leaves them.
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) user_agent_suffix: Option<String>,
    pub(crate) proxy: Option<String>,
    pub(crate) extra_ca_pem: Option<Vec<u8>>,
    pub(crate) attempt_timeout: Option<Duration>,
    pub(crate) mode: Option<Mode>,
    pub(crate) expected: Option<(Duration, Duration)>,
    /// `Some(None)`: no store, whatever the environment says.
    pub(crate) state_dir: Option<Option<std::path::PathBuf>>,
    /// `Some(None)`: no fleet store, whatever `EXONA_STATE_URL` says.
    pub(crate) state_url: Option<Option<crate::config::StateUrl>>,
}

impl exona_client_options {
    /// Lays the options over a configuration (defaults and environment).
    pub(crate) fn apply(&self, config: &mut ClientConfig) {
        let (policy, connect) = (&mut config.policy, &mut config.connect);
        if let Some(t) = self.connect_timeout {
            connect.connect_timeout = t;
        }
        if let Some(s) = &self.user_agent_suffix {
            connect.user_agent_suffix = Some(s.clone());
        }
        if let Some(p) = &self.proxy {
            connect.proxy = Some(p.clone());
        }
        if let Some(pem) = &self.extra_ca_pem {
            connect.extra_ca_pem = Some(pem.clone());
        }
        if let Some(t) = self.attempt_timeout {
            policy.attempt_timeout = t;
        }
        if let Some(m) = self.mode {
            policy.mode = m;
        }
        if let Some(e) = self.expected {
            policy.expected_duration = e;
        }
        if let Some(dir) = &self.state_dir {
            config.state_dir = dir.clone();
        }
        if let Some(url) = &self.state_url {
            config.state_url = url.clone();
        }
    }
}

fn positive_ms(ms: u64, name: &str) -> Result<Duration, Error> {
    if ms == 0 {
        return Err(Error::invalid_argument(format!("{name} is 0")));
    }
    Ok(Duration::from_millis(ms))
}

/// New client options with the defaults above; free with `exona_client_options_free`.
#[no_mangle]
pub extern "C" fn exona_client_options_new() -> *mut exona_client_options {
    boundary(|| into_raw(exona_client_options::default()))
}

/// Frees client options. NULL is a no-op.
#[no_mangle]
pub extern "C" fn exona_client_options_free(options: *mut exona_client_options) {
    boundary(|| unsafe { free(options) })
}

/// Time allowed to open a connection (TCP and TLS), in ms. 0 is refused. Returns `EXONA_OK`
/// or `EXONA_ERR_INVALID_ARGUMENT` (options unchanged).
#[no_mangle]
pub extern "C" fn exona_client_options_set_connect_timeout_ms(
    options: *mut exona_client_options,
    ms: u64,
) -> exona_code {
    boundary(|| {
        update(options, |o| {
            o.connect_timeout = Some(positive_ms(ms, "connect_timeout_ms")?);
            Ok(())
        })
    })
}

/// Time allowed for one request and its response, in ms (also clipped to each call's
/// deadline). Only time the process runs counts: a process stopped meanwhile (SIGSTOP, a
/// suspended VM) reads an answer that came while it was stopped instead of timing out. 0 is
/// refused. Returns `EXONA_OK` or `EXONA_ERR_INVALID_ARGUMENT`.
#[no_mangle]
pub extern "C" fn exona_client_options_set_attempt_timeout_ms(
    options: *mut exona_client_options,
    ms: u64,
) -> exona_code {
    boundary(|| {
        update(options, |o| {
            o.attempt_timeout = Some(positive_ms(ms, "attempt_timeout_ms")?);
            Ok(())
        })
    })
}

/// Appends `suffix` to the User-Agent (`libexona/<version> <suffix>`), e.g. "acme-uw/2.1";
/// NULL removes it. Printable ASCII only: anything else gives `EXONA_ERR_INVALID_ARGUMENT`.
#[no_mangle]
pub extern "C" fn exona_client_options_set_user_agent_suffix(
    options: *mut exona_client_options,
    suffix: *const c_char,
) -> exona_code {
    boundary(|| {
        update(options, |o| {
            let suffix = unsafe { optional_str(suffix, "suffix") }?;
            if suffix.is_some_and(|s| s.bytes().any(|b| !(0x20..=0x7e).contains(&b))) {
                return Err(Error::invalid_argument("suffix holds a character that cannot go in a header"));
            }
            o.user_agent_suffix = suffix.map(str::to_owned);
            Ok(())
        })
    })
}

/// The proxy for every request: a URL ("http://proxy:3128"), "" for no proxy at all, or NULL
/// for the environment's `HTTPS_PROXY` / `NO_PROXY` (the default). Returns `EXONA_OK`, or
/// `EXONA_ERR_INVALID_ARGUMENT` for a string that is not UTF-8 or not a URL.
#[no_mangle]
pub extern "C" fn exona_client_options_set_proxy(
    options: *mut exona_client_options,
    proxy: *const c_char,
) -> exona_code {
    boundary(|| {
        update(options, |o| {
            let proxy = unsafe { optional_str(proxy, "proxy") }?;
            if let Some(p) = proxy.filter(|p| !p.is_empty()) {
                check_proxy(p)?;
            }
            o.proxy = proxy.map(str::to_owned);
            Ok(())
        })
    })
}

/// A PEM file of CA certificates to trust besides the system's store (TLS verification is
/// always on); read now. NULL goes back to the default (`EXONA_CA_BUNDLE`, if set). Returns
/// `EXONA_OK`, or `EXONA_ERR_INVALID_ARGUMENT` when the file cannot be read.
#[no_mangle]
pub extern "C" fn exona_client_options_set_ca_bundle_file(
    options: *mut exona_client_options,
    path: *const c_char,
) -> exona_code {
    boundary(|| {
        update(options, |o| {
            o.extra_ca_pem = match unsafe { optional_str(path, "path") }? {
                Some(p) => Some(read_ca_bundle(p, "path")?),
                None => None,
            };
            Ok(())
        })
    })
}

/// The client's default poll mode (an `exona_poll_mode`); scan options may override it.
/// Returns `EXONA_OK`, or `EXONA_ERR_INVALID_ARGUMENT` for unknown values.
#[no_mangle]
pub extern "C" fn exona_client_options_set_poll_mode(
    options: *mut exona_client_options,
    mode: c_int,
) -> exona_code {
    boundary(|| {
        update(options, |o| {
            o.mode = Some(poll_mode(mode)?);
            Ok(())
        })
    })
}

/// The client's prior for scan durations, in ms (the API documents 30,000–120,000): no poll
/// is sent before `min_ms`. Returns `EXONA_OK`, or `EXONA_ERR_INVALID_ARGUMENT` when
/// `min_ms > max_ms`.
#[no_mangle]
pub extern "C" fn exona_client_options_set_expected_duration_ms(
    options: *mut exona_client_options,
    min_ms: u64,
    max_ms: u64,
) -> exona_code {
    boundary(|| {
        update(options, |o| {
            o.expected = Some(duration_range(min_ms, max_ms)?);
            Ok(())
        })
    })
}

/// The state store's directory: a SQLite file there, shared by every process of the host that
/// uses it, keeps learned scan durations, completed results (a call with `max_age_days` is
/// answered from it with no request; `exona_result_from_store`) and scans in flight (a second
/// process waits on the running scan instead of creating a twin). The directory is created if
/// missing. "off" turns the store off whatever `EXONA_STATE_DIR` says; NULL leaves the
/// environment's setting (`EXONA_STATE_DIR`; unset: no store, no files written). A store that
/// cannot be opened or fails later is logged once and bypassed: it never fails a scan.
/// Returns `EXONA_OK`, or `EXONA_ERR_INVALID_ARGUMENT` for NULL options or a path that is not
/// UTF-8 (options unchanged), or when the library was built without the `store` feature.
#[no_mangle]
pub extern "C" fn exona_client_options_set_state_dir(
    options: *mut exona_client_options,
    path: *const c_char,
) -> exona_code {
    boundary(|| {
        update(options, |o| {
            if !cfg!(feature = "store") {
                return Err(Error::invalid_argument(
                    "this libexona was built without the state store (feature `store`)",
                ));
            }
            o.state_dir = unsafe { optional_str(path, "path") }?.map(crate::config::state_dir_setting);
            Ok(())
        })
    })
}

/// The fleet store: a PostgreSQL database (`postgresql://user:password@host:port/db`, read as
/// libpq reads it: `sslmode` (libpq's six, `prefer` by default), `sslrootcert`, `sslcert`,
/// `sslkey`, the PG* variables and `~/.pgpass`; and `schema=NAME` for a schema other than
/// `exona`) shared by the processes of every host that names it, in place of the state
/// directory's SQLite file: the key's budget, claims, scans in flight, results and learned
/// durations (docs/store.md). Its schema must exist: `exona_store_init` creates it, once, as
/// a role that may; clients need only DML rights on it. The database is reached on first use;
/// while it cannot be (down at start, gone mid-run, silent for more than seconds, its schema
/// missing) it is bypassed with one warning naming why and tried again, and no scan fails for
/// it. The URL's password (and a `password=` parameter) never appears in a message or a log line, and is wiped from
/// memory with the options and the client. "" or "off" turns the fleet store off whatever
/// `EXONA_STATE_URL` says; NULL leaves the environment's setting. Returns `EXONA_OK`, or
/// `EXONA_ERR_INVALID_ARGUMENT` for NULL options, a string that is not UTF-8 or not a
/// `postgresql://` URL (the message names what, without the password; options unchanged), or
/// when the library was built without the `fleet` feature.
#[no_mangle]
pub extern "C" fn exona_client_options_set_state_url(
    options: *mut exona_client_options,
    url: *const c_char,
) -> exona_code {
    boundary(|| {
        update(options, |o| {
            if !cfg!(feature = "fleet") {
                return Err(Error::invalid_argument(
                    "this libexona was built without the fleet store (feature `fleet`)",
                ));
            }
            let Some(text) = (unsafe { optional_str(url, "url") })? else {
                o.state_url = None;
                return Ok(());
            };
            let Some(text) = crate::config::state_url_setting(text) else {
                o.state_url = Some(None);
                return Ok(());
            };
            crate::store::check_url(text).map_err(Error::invalid_argument)?;
            o.state_url = Some(Some(crate::config::StateUrl::new(text)));
            Ok(())
        })
    })
}
