//! The Rust API: a client bound to one API key and base URL.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::engine::cancel::CancelToken;
use crate::engine::clock::{Clock, SystemClock};
use crate::engine::flow::{self, Call, Policy};
use crate::error::{Code, Error};
use crate::model::{Scan, ScanRequest};
use crate::transport::{HttpConfig, HttpTransport, Transport};

pub const DEFAULT_BASE_URL: &str = "https://platform.exonalab.com/api/v1";
/// How long `scan_and_wait` and `wait` wait unless told otherwise (the docs suggest 5 minutes).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// Limits of one waiting call.
#[derive(Clone, Debug)]
pub struct WaitOptions {
    /// `None`: no deadline. Default: [`DEFAULT_TIMEOUT`].
    pub timeout: Option<Duration>,
    pub cancel: Option<CancelToken>,
    /// How long this scan is expected to take (shortest, longest); `None`: the client's.
    pub expected_duration: Option<(Duration, Duration)>,
}

impl Default for WaitOptions {
    fn default() -> Self {
        WaitOptions { timeout: Some(DEFAULT_TIMEOUT), cancel: None, expected_duration: None }
    }
}

/// A client of the Exona API. Cheap to clone; safe to share between threads.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    base_url: String,
    transport: Arc<dyn Transport>,
    clock: Arc<dyn Clock>,
    policy: Policy,
}

impl fmt::Debug for Client {
    // Says where the client points, never which key it holds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").field("base_url", &self.inner.base_url).finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `api_key` at `base_url` (`None`: the production URL).
    ///
    /// Refuses an empty key, a key that cannot go in a header, a base URL that is not a URL,
    /// and plain `http://` to anything but a loopback address.
    pub fn new(api_key: &str, base_url: Option<&str>) -> Result<Client, Error> {
        let api_key = Zeroizing::new(api_key.to_owned());
        if api_key.is_empty() {
            return Err(Error::invalid_argument("api_key is empty"));
        }
        if api_key.bytes().any(|b| !(0x21..=0x7e).contains(&b)) {
            // Control characters (CR, LF), spaces and non-ASCII cannot be sent in a header.
            return Err(Error::invalid_argument(
                "api_key holds a character that cannot go in an HTTP header (space, control or non-ASCII)",
            ));
        }
        let base_url = check_base_url(base_url.unwrap_or(DEFAULT_BASE_URL))?;
        let transport = HttpTransport::new(HttpConfig {
            base_url: base_url.clone(),
            api_key,
            connect_timeout: Duration::from_secs(10),
            user_agent: format!("libexona/{}", crate::VERSION),
        })
        .map_err(Error::invalid_argument)?;
        Ok(Client::with_transport(base_url, Arc::new(transport), Arc::new(SystemClock::new())))
    }

    /// A client over any transport and clock: how tests run the engine on virtual time.
    pub fn with_transport(base_url: String, transport: Arc<dyn Transport>, clock: Arc<dyn Clock>) -> Client {
        Client { inner: Arc::new(Inner { base_url, transport, clock, policy: Policy::default() }) }
    }

    /// The same connection with other engine tunables (attempt timeout, poll fallback, ...).
    pub fn with_policy(&self, policy: Policy) -> Client {
        let inner = &self.inner;
        Client {
            inner: Arc::new(Inner {
                base_url: inner.base_url.clone(),
                transport: Arc::clone(&inner.transport),
                clock: Arc::clone(&inner.clock),
                policy,
            }),
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    fn call<'a>(&'a self, options: &WaitOptions, cancel: &'a CancelToken) -> Call<'a> {
        let inner = &*self.inner;
        Call {
            transport: inner.transport.as_ref(),
            clock: inner.clock.as_ref(),
            policy: &inner.policy,
            deadline: options.timeout.map(|t| inner.clock.now().saturating_add(t)),
            cancel,
            expected_duration: options.expected_duration.unwrap_or(inner.policy.expected_duration),
        }
    }

    /// POST /scans: a new scan (`processing`), or a cached one (`completed`, `cached()`).
    pub fn create_scan(&self, request: &ScanRequest) -> Result<Scan, Error> {
        self.create_scan_with(request, &WaitOptions::default())
    }

    /// `create_scan` with a deadline and cancel token for its retries.
    pub fn create_scan_with(&self, request: &ScanRequest, options: &WaitOptions) -> Result<Scan, Error> {
        let cancel = options.cancel.clone().unwrap_or_default();
        flow::create(&self.call(options, &cancel), request)
    }

    /// GET /scans/{id}, once, whatever the scan's status.
    pub fn get_scan(&self, scan_id: &str) -> Result<Scan, Error> {
        let cancel = CancelToken::new();
        flow::get(&self.call(&WaitOptions::default(), &cancel), scan_id)
    }

    /// Waits for an existing scan: how a program resumes after a crash, with no new POST.
    pub fn wait(&self, scan_id: &str, options: &WaitOptions) -> Result<Scan, Error> {
        let cancel = options.cancel.clone().unwrap_or_default();
        flow::wait(&self.call(options, &cancel), scan_id, Duration::ZERO)
    }

    /// Creates a scan and waits until it completes or fails.
    pub fn scan_and_wait(&self, request: &ScanRequest, options: &WaitOptions) -> Result<Scan, Error> {
        let cancel = options.cancel.clone().unwrap_or_default();
        flow::scan_and_wait(&self.call(options, &cancel), request)
    }
}

/// Checks the base URL and returns it without a trailing slash.
fn check_base_url(base_url: &str) -> Result<String, Error> {
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
        return Err(Error::invalid_argument(format!("base_url {base_url:?} must not have a query or fragment")));
    }
    Ok(base_url.trim_end_matches('/').to_owned())
}

fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

impl Code {
    /// True for the codes that leave a scan in existence (its id is in the error).
    pub fn scan_may_exist(self) -> bool {
        matches!(self, Code::Timeout | Code::Cancelled | Code::ScanFailed | Code::AmbiguousCreate)
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
    fn keys_that_cannot_be_sent_are_refused_and_never_echoed() {
        for bad in ["", "exo_test_a\r\nX-Evil: 1", "exo test", "exo_tést"] {
            let err = Client::new(bad, Some("http://127.0.0.1:9/api/v1")).unwrap_err();
            assert_eq!(err.code, Code::InvalidArgument);
            if !bad.is_empty() {
                assert!(!err.message.contains(bad), "{}", err.message);
            }
        }
        let c = Client::new("exo_test_secret_value_123", Some("http://127.0.0.1:9/api/v1")).unwrap();
        assert!(!format!("{c:?}").contains("secret_value"));
    }
}
