//! One HTTP exchange. The engine above decides what to retry; this layer only reports
//! what happened, including whether a failed request can have reached the server.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use zeroize::Zeroizing;

use crate::redact::Redactor;

/// Bodies larger than this are refused: a scan object is a few kilobytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

/// A request to the API: the path below the base URL (e.g. `/scans`), and a JSON body for POST.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: Method,
    pub path: String,
    pub body: Option<Vec<u8>>,
    /// Limit for the whole exchange, already clipped to the caller's deadline.
    pub timeout: Duration,
}

/// The response headers the engine reads, as raw text (parsing belongs to the engine).
#[derive(Clone, Debug, Default)]
pub struct Headers {
    pub retry_after: Option<String>,
    pub date: Option<String>,
    pub request_id: Option<String>,
    pub rate_limit_limit: Option<String>,
    pub rate_limit_remaining: Option<String>,
    pub rate_limit_reset: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Headers,
    pub body: Vec<u8>,
}

/// Why no usable response came back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransportError {
    /// The connection was never established: the server cannot have seen the request.
    NotSent(String),
    /// The request may have reached the server (timeout, reset, truncated response).
    Failed { message: String, timed_out: bool },
    /// A response came but cannot be used (larger than the cap).
    Unusable(String),
}

impl TransportError {
    pub fn message(&self) -> &str {
        match self {
            TransportError::NotSent(m) => m,
            TransportError::Failed { message, .. } => message,
            TransportError::Unusable(m) => m,
        }
    }
}

/// Sends requests. Implemented over HTTP by [`HttpTransport`], and by fakes in tests.
pub trait Transport: Send + Sync {
    fn send(&self, request: &Request) -> Result<Response, TransportError>;
}

/// Where and how to send: the base URL, the key and the connection settings.
pub struct HttpConfig {
    pub base_url: String,
    pub api_key: Zeroizing<String>,
    pub connect_timeout: Duration,
    pub user_agent: String,
    /// PEM certificates trusted besides the system's store (e.g. a corporate proxy's CA).
    pub extra_ca_pem: Option<Vec<u8>>,
    /// `None`: the environment's proxy settings; `Some("")`: none; `Some(url)`: this one.
    pub proxy: Option<String>,
}

/// The production transport: reqwest's client over rustls, on a runtime of its own (one I/O
/// thread). Each exchange runs as a task there while the calling thread waits for its answer
/// with a bound that a paused process does not spend (`src/awake.rs`).
pub struct HttpTransport {
    client: reqwest::Client,
    /// Declared after `client`: the runtime ends (joining its thread, ending what still runs)
    /// once the client is gone.
    runtime: tokio::runtime::Runtime,
    base_url: String,
    /// The only long-lived copy of the key, wiped when the transport is dropped. Each request
    /// builds its header from it; the HTTP stack's transient copies are beyond our reach.
    api_key: Zeroizing<String>,
    /// Takes the key out of everything a response carries, before anyone reads it.
    redactor: Redactor,
}

impl HttpTransport {
    /// Builds the transport on a short-lived helper thread. The HTTP stack's builders ask std
    /// for the current thread's handle, which std then keeps for the life of the thread; on a
    /// C program's main thread that is forever, and valgrind reports it "possibly lost". A
    /// thread of our own frees its handle when it ends, so the caller's thread keeps nothing.
    pub fn new(config: HttpConfig) -> Result<HttpTransport, String> {
        // A plain spawn and join: a scoped thread would ask for the caller's handle itself.
        std::thread::Builder::new()
            .name("exona-init".into())
            .spawn(move || HttpTransport::build(config))
            .map_err(|e| format!("cannot start a thread to build the HTTP client: {e}"))?
            .join()
            .map_err(|_| "building the HTTP client panicked".to_string())?
    }

    fn build(config: HttpConfig) -> Result<HttpTransport, String> {
        let api_key = config.api_key;
        auth_header(&api_key)?;
        let mut defaults = HeaderMap::new();
        defaults.insert(
            USER_AGENT,
            HeaderValue::from_str(&config.user_agent).map_err(|_| "invalid user agent".to_string())?,
        );
        let mut builder = reqwest::Client::builder();
        match config.proxy.as_deref() {
            None => {} // reqwest reads HTTPS_PROXY / HTTP_PROXY / NO_PROXY itself
            Some("") => builder = builder.no_proxy(),
            Some(url) => {
                let proxy = reqwest::Proxy::all(url)
                    .map_err(|e| format!("proxy {url:?} is not a proxy URL ({e})"))?;
                builder = builder.proxy(proxy);
            }
        }
        if let Some(pem) = &config.extra_ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| format!("the extra CA bundle is not PEM certificates ({e})"))?;
            if certs.is_empty() {
                return Err("the extra CA bundle holds no certificate".into());
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder
            .default_headers(defaults)
            .connect_timeout(config.connect_timeout)
            // The API never redirects; following one could carry the key to another host.
            .redirect(reqwest::redirect::Policy::none())
            // No timeout of reqwest's: it checks its timers before the answer, so a process
            // paused with a request on the wire found it timed out with its answer unread.
            // Each exchange is bounded by `crate::awake` instead.
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("exona-io")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the HTTP client's thread: {e}"))?;
        let redactor = Redactor::new(&api_key);
        Ok(HttpTransport {
            client,
            runtime,
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            api_key,
            redactor,
        })
    }
}

/// `Authorization: Bearer <key>`, marked sensitive: kept out of reqwest's Debug output and
/// never indexed by HPACK.
fn auth_header(api_key: &str) -> Result<HeaderValue, String> {
    let text = Zeroizing::new(format!("Bearer {api_key}"));
    let mut value = HeaderValue::from_str(&text)
        .map_err(|_| "the API key holds characters that cannot go in an HTTP header".to_string())?;
    value.set_sensitive(true);
    Ok(value)
}

impl Transport for HttpTransport {
    fn send(&self, request: &Request) -> Result<Response, TransportError> {
        let started = std::time::Instant::now();
        let create = request.method == Method::Post;
        if create {
            crate::crash::point("create_sent");
        }
        // Scrubbed here, where the key is known, so no layer above ever holds an echo of it.
        let outcome = self.exchange(request).map(|r| self.scrub_response(r)).map_err(|e| self.scrub_error(e));
        if create && outcome.as_ref().is_ok_and(|r| r.status == 201 || r.status == 200) {
            crate::crash::point("create_answered");
        }
        crate::log::log(crate::log::Level::Debug, || {
            let method = if request.method == Method::Get { "GET" } else { "POST" };
            let ms = started.elapsed().as_millis();
            match &outcome {
                Ok(r) => format!(
                    "{method} {} -> {} in {ms} ms (request id {})",
                    request.path,
                    r.status,
                    r.headers.request_id.as_deref().unwrap_or("-")
                ),
                Err(e) => format!("{method} {} failed after {ms} ms: {}", request.path, e.message()),
            }
        });
        outcome
    }
}

impl HttpTransport {
    /// The response with the key removed from its body and every header the engine reads.
    fn scrub_response(&self, mut r: Response) -> Response {
        let h = &mut r.headers;
        for value in [
            &mut h.retry_after,
            &mut h.date,
            &mut h.request_id,
            &mut h.rate_limit_limit,
            &mut h.rate_limit_remaining,
            &mut h.rate_limit_reset,
        ] {
            if let Some(v) = value.as_mut() {
                *v = self.redactor.scrub(v);
            }
        }
        r.body = self.redactor.scrub_bytes(&r.body);
        r
    }

    fn scrub_error(&self, e: TransportError) -> TransportError {
        match e {
            TransportError::NotSent(m) => TransportError::NotSent(self.redactor.scrub(&m)),
            TransportError::Failed { message, timed_out } => {
                TransportError::Failed { message: self.redactor.scrub(&message), timed_out }
            }
            TransportError::Unusable(m) => TransportError::Unusable(self.redactor.scrub(&m)),
        }
    }

    /// One exchange: run on the I/O thread, waited for here. The wait's bound counts only
    /// time this process was awake (`src/awake.rs`); when it runs out, the exchange is
    /// abandoned (its task aborted) and reported as timed out.
    fn exchange(&self, request: &Request) -> Result<Response, TransportError> {
        let url = format!("{}{}", self.base_url, request.path);
        let builder = match request.method {
            Method::Get => self.client.get(&url),
            Method::Post => self
                .client
                .post(&url)
                .header(CONTENT_TYPE, "application/json")
                .body(request.body.clone().unwrap_or_default()),
        };
        let auth = auth_header(&self.api_key).map_err(TransportError::NotSent)?;
        let pending = builder.header(AUTHORIZATION, auth).send();
        let (tx, rx) = std::sync::mpsc::channel();
        let task = self.runtime.spawn(async move {
            let _ = tx.send(receive(pending).await);
        });
        let outcome = crate::awake::wait(&rx, request.timeout);
        task.abort();
        match outcome {
            crate::awake::Waited::Answer(outcome) => outcome,
            crate::awake::Waited::TimedOut => Err(TransportError::Failed {
                message: format!("operation timed out (no answer within {:?})", request.timeout),
                timed_out: true,
            }),
            crate::awake::Waited::Gone => Err(TransportError::Failed {
                message: "the HTTP client stopped before the answer came".into(),
                timed_out: false,
            }),
        }
    }
}

/// The answer to a sent request: status, the headers the engine reads, and the body.
async fn receive(
    pending: impl std::future::Future<Output = Result<reqwest::Response, reqwest::Error>>,
) -> Result<Response, TransportError> {
    let mut response = pending.await.map_err(classify)?;
    let status = response.status().as_u16();
    let header =
        |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(|s| s.trim().to_owned());
    let headers = Headers {
        retry_after: header("retry-after"),
        date: header("date"),
        request_id: header("x-request-id"),
        rate_limit_limit: header("x-ratelimit-limit"),
        rate_limit_remaining: header("x-ratelimit-remaining"),
        rate_limit_reset: header("x-ratelimit-reset"),
    };
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| TransportError::Failed {
        message: format!("reading the response body failed: {}", chain(&e)),
        timed_out: e.is_timeout(),
    })? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(TransportError::Unusable(format!(
                "the response body is larger than {MAX_BODY_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Response { status, headers, body })
}

/// An error and its sources, in one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

fn classify(e: reqwest::Error) -> TransportError {
    // reqwest errors name the URL, which holds no secret; the key travels in a header only.
    let message = chain(&e);
    // A connect error (refused, DNS, TLS handshake, connect timeout) means no request bytes
    // were written, so even a POST may be sent again.
    if e.is_connect() {
        TransportError::NotSent(message)
    } else {
        TransportError::Failed { timed_out: e.is_timeout(), message }
    }
}
