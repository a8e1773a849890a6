//! The Rust API: a client bound to one API key and base URL.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::config::ClientConfig;
use crate::engine::cancel::CancelToken;
use crate::engine::clock::{Clock, SystemClock};
use crate::engine::core::{Core, Progress, Sink};
use crate::engine::driver::Engine;
use crate::engine::gate::CreateGate;
use crate::engine::governor::{self, Governor};
use crate::engine::policy::Policy;
use crate::engine::schedule::Mode;
use crate::engine::task::{Goal, Settings, Task};
use crate::error::{Code, Error};
use crate::model::ScanRequest;
use crate::scan::Scan;
use crate::transport::{HttpConfig, HttpTransport, Transport};

pub const DEFAULT_BASE_URL: &str = "https://platform.exonalab.com/api/v1";
/// How long `scan_and_wait` and `wait` may take unless told otherwise (the docs suggest 5
/// minutes). Words used throughout: the *deadline* bounds a whole call; the *attempt timeout*
/// (`Policy::attempt_timeout`) bounds one HTTP exchange within it.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(300);

/// Limits and preferences of one call.
#[derive(Clone, Debug)]
pub struct WaitOptions {
    /// How long the whole call may take, from its start. `None`: no deadline. Default:
    /// [`DEFAULT_DEADLINE`]. (One HTTP exchange is bounded by `Policy::attempt_timeout`.)
    pub deadline: Option<Duration>,
    pub cancel: Option<CancelToken>,
    /// How long this scan is expected to take (shortest, longest); `None`: the client's.
    pub expected_duration: Option<(Duration, Duration)>,
    /// Poll mode of this call; `None`: the client's.
    pub mode: Option<Mode>,
    /// Plan this call's polls at a fixed thrift, from 0 (as often as `Retry-After` allows, like
    /// [`Mode::Latency`]) to 1 (like [`Mode::Frugal`]), whatever the key's window: the
    /// adaptive schedule without the adaptation, for callers who know their trade-off
    /// (docs/waiting.md has the curve). Implies [`Mode::Adaptive`]; the key's budget still
    /// admits requests. `None`: the mode decides.
    pub thrift: Option<f64>,
    /// The longest 429 wait worth sleeping through; `None`: the client's (15 minutes).
    pub max_rate_limit_wait: Option<Duration>,
    /// Count `deadline` from the scan's creation rather than from the call's start: a create
    /// then waits for the key's budget as long as it must (how batch rows wait their turn).
    pub deadline_from_creation: bool,
    /// Send the first request no sooner than this (a reconciled batch row waits until a twin a
    /// crash may have created would have completed).
    pub start_after: Option<Duration>,
}

impl Default for WaitOptions {
    fn default() -> Self {
        WaitOptions {
            deadline: Some(DEFAULT_DEADLINE),
            cancel: None,
            expected_duration: None,
            mode: None,
            thrift: None,
            max_rate_limit_wait: None,
            deadline_from_creation: false,
            start_after: None,
        }
    }
}

/// How a client connects, besides the engine's policy.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// PEM certificates to trust besides the system's store. TLS verification stays on.
    pub extra_ca_pem: Option<Vec<u8>>,
    pub connect_timeout: Duration,
    /// Appended to the `User-Agent` (`libexona/<version> <suffix>`).
    pub user_agent_suffix: Option<String>,
    /// `None`: the environment's proxy (`HTTPS_PROXY`, `NO_PROXY`); `Some("")`: no proxy at
    /// all; `Some(url)`: this proxy for every request.
    pub proxy: Option<String>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            extra_ca_pem: None,
            connect_timeout: Duration::from_secs(10),
            user_agent_suffix: None,
            proxy: None,
        }
    }
}

/// A client of the Exona API. Cheap to clone; safe to share between threads. One scheduler
/// thread and a few HTTP workers serve every call on it.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
}

/// A client as every process that holds it sees it (DESIGN.md 9.2): the process that made it
/// uses `born`; a child forked from it makes its own engine, HTTP client and store connection
/// from `recipe` on its first call, and never touches the parent's (whose threads it does not
/// have, and whose locks may have been held at the fork).
struct Shared {
    pid: u32,
    /// Dropped only in the process that made it (see `Drop for Shared`).
    born: std::mem::ManuallyDrop<Inner>,
    /// What the client was made from; `None` for a client over a given transport (tests),
    /// which a child uses as it is.
    recipe: Option<ClientConfig>,
    forked: crate::process::PerProcess<Inner>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        if crate::process::id() == self.pid {
            unsafe { std::mem::ManuallyDrop::drop(&mut self.born) };
        } else {
            let born = unsafe { std::mem::ManuallyDrop::take(&mut self.born) };
            crate::process::keep_unfreed(Box::new(born));
        }
        // In a forked child the parent's engine is left as it is: joining its threads (which
        // the child does not have) would fail, and closing its store connection could drop
        // file locks the parent still holds. The child's own state (`forked`) is freed.
    }
}

struct Inner {
    base_url: String,
    engine: Engine,
    /// The state store, when a state directory was given (and could be opened).
    store: Option<Arc<crate::store::Guarded>>,
    /// Declared after `engine`, so it drops after the engine released the governor.
    _registration: Option<governor::Registration>,
}

impl fmt::Debug for Client {
    // Says where the client points, never which key it holds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").field("base_url", &self.shared.born.base_url).finish_non_exhaustive()
    }
}

impl Client {
    fn from_inner(inner: Inner, recipe: Option<ClientConfig>) -> Client {
        Client {
            shared: Arc::new(Shared {
                pid: crate::process::id(),
                born: std::mem::ManuallyDrop::new(inner),
                recipe,
                forked: crate::process::PerProcess::new(),
            }),
        }
    }

    /// This process's client: the one made, or in a forked child its own, made afresh from the
    /// same settings on first use (a new engine, HTTP client and store connection; the
    /// parent's calls in flight are not the child's).
    fn inner(&self) -> &Inner {
        let shared = &*self.shared;
        if crate::process::id() == shared.pid {
            return &shared.born;
        }
        let Some(recipe) = &shared.recipe else { return &shared.born };
        shared
            .forked
            .get_or_try_init(|| {
                crate::log::log(crate::log::Level::Info, || {
                    format!(
                        "this process (pid {}) was forked from the one that made its client (pid {}): \
                     it uses a client of its own, made with the same settings",
                        crate::process::id(),
                        shared.pid
                    )
                });
                Client::build_inner(recipe.clone())
            })
            .unwrap_or_else(|e| panic!("cannot make the client afresh after fork(): {e}"))
    }
}

impl Client {
    /// A client for `api_key` at `base_url` (`None`: `EXONA_BASE_URL`, else the production
    /// URL), with the settings of the environment ([`ClientConfig::from_env`]: expected scan
    /// durations, extra CA bundle) as the C surface and the bindings have them.
    ///
    /// Refuses an empty key, a key that cannot go in a header, a base URL that is not a URL,
    /// and plain `http://` to anything but a loopback address.
    pub fn new(api_key: &str, base_url: Option<&str>) -> Result<Client, Error> {
        let mut config = ClientConfig::from_env()?;
        config.api_key = Some(Zeroizing::new(api_key.to_owned()));
        if let Some(url) = base_url {
            config.base_url = Some(url.to_owned());
        }
        config.build()
    }

    /// A client with its own engine tunables (poll mode, expected durations, timeouts, ...),
    /// and no settings from the environment.
    pub fn with_policy(api_key: &str, base_url: Option<&str>, policy: Policy) -> Result<Client, Error> {
        Client::with_options(api_key, base_url, policy, ConnectOptions::default())
    }

    /// A client with engine tunables and connection settings (extra trusted CAs), and no
    /// settings from the environment.
    pub fn with_options(
        api_key: &str,
        base_url: Option<&str>,
        policy: Policy,
        connect: ConnectOptions,
    ) -> Result<Client, Error> {
        ClientConfig { policy, connect, ..ClientConfig::new(api_key, base_url) }.build()
    }

    /// The client a configuration describes (see [`ClientConfig::build`]).
    pub(crate) fn from_config(config: ClientConfig) -> Result<Client, Error> {
        let recipe = config.clone();
        Ok(Client::from_inner(Client::build_inner(config)?, Some(recipe)))
    }

    fn build_inner(config: ClientConfig) -> Result<Inner, Error> {
        let (api_key, base_url) = config.validate()?;
        let api_key = Zeroizing::new(api_key.to_owned());
        let store_fingerprint = crate::store::fingerprint(&api_key, &base_url);
        let store = match &config.state_url {
            Some(url) => Some(
                crate::store::open_url(url.as_str(), &store_fingerprint).map_err(Error::invalid_argument)?,
            ),
            None => config.state_dir.as_deref().and_then(|dir| crate::store::open(dir, &store_fingerprint)),
        };
        let ClientConfig { policy, connect, .. } = config;
        let fingerprint = fingerprint(&api_key, &base_url);
        let transport = HttpTransport::new(HttpConfig {
            base_url: base_url.clone(),
            api_key,
            connect_timeout: connect.connect_timeout,
            user_agent: match &connect.user_agent_suffix {
                Some(suffix) => format!("libexona/{} {suffix}", crate::VERSION),
                None => format!("libexona/{}", crate::VERSION),
            },
            extra_ca_pem: connect.extra_ca_pem,
            proxy: connect.proxy,
        })
        .map_err(Error::invalid_argument)?;
        let governor = governor::for_key(fingerprint, &policy.limits);
        let clock = Arc::new(SystemClock::new());
        if let Some(store) = &store {
            // The key's window as every process of the host sees it.
            governor.share(store.clone(), clock.now());
        }
        let mut core = Core::new(policy, governor);
        if let Some(store) = &store {
            // What earlier processes learned: a new process polls on it from its first scan.
            core.model.seed(&store.seed_durations(512));
        }
        let engine = Engine::threaded(core, Arc::new(transport), clock)
            .map_err(|e| Error::new(Code::Internal, format!("cannot start the scheduler thread: {e}")))?;
        Ok(Inner { base_url, engine, store, _registration: Some(governor::Registration) })
    }

    /// A client over any transport and clock, driven on the calling thread, with its own
    /// governor: how tests run the engine on virtual time.
    pub fn with_transport(
        base_url: String,
        transport: Arc<dyn Transport>,
        clock: Arc<dyn Clock>,
        policy: Policy,
    ) -> Client {
        let governor = Arc::new(Governor::new(policy.limits.clone()));
        let core = Core::new(policy, governor);
        Client::from_inner(
            Inner {
                base_url,
                engine: Engine::inline(core, transport, clock),
                store: None,
                _registration: None,
            },
            None,
        )
    }

    /// [`Client::with_transport`], its governor sharing the key's window through `ledger` as
    /// a process with a state store does: how tests run several processes on one key on
    /// virtual time (each client one process, driven with [`Client::drive_due`]).
    #[doc(hidden)]
    pub fn with_transport_sharing(
        base_url: String,
        transport: Arc<dyn Transport>,
        clock: Arc<dyn Clock>,
        policy: Policy,
        ledger: Arc<dyn crate::engine::ledger::Ledger>,
    ) -> Client {
        // One anchor for every client on the clock: the wall time of its origin.
        let origin_ms =
            clock.wall().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
                - clock.now().as_millis() as i64;
        let anchor = crate::engine::ledger::WallAnchor { monotonic: Duration::ZERO, wall_ms: origin_ms };
        let client = Client::with_transport(base_url, transport, clock, policy);
        client.inner().engine.with_core(|c| c.governor.share_anchored(ledger, anchor));
        client
    }

    /// Inline driving on a clock other clients share: sends what is due now and says when this
    /// client next has something to do (`None`: nothing waits); never sleeps.
    #[doc(hidden)]
    pub fn drive_due(&self) -> Option<Duration> {
        self.inner().engine.step_due()
    }

    /// A client over any transport, driven by its own scheduler and worker threads as a
    /// production client is: how tests check what the threads do when a transport misbehaves.
    pub fn threaded_with_transport(
        base_url: String,
        transport: Arc<dyn Transport>,
        policy: Policy,
    ) -> Result<Client, Error> {
        let governor = Arc::new(Governor::new(policy.limits.clone()));
        let core = Core::new(policy, governor);
        let engine = Engine::threaded(core, transport, Arc::new(SystemClock::new()))
            .map_err(|e| Error::new(Code::Internal, format!("cannot start the scheduler thread: {e}")))?;
        Ok(Client::from_inner(Inner { base_url, engine, store: None, _registration: None }, None))
    }

    pub fn base_url(&self) -> &str {
        &self.inner().base_url
    }

    /// The engine's tunables.
    pub fn policy(&self) -> Policy {
        self.inner().engine.with_core(|c| c.policy.clone())
    }

    /// Requests the key's budget allows now, and requests granted by this client's governor.
    pub fn budget(&self) -> (u32, u64) {
        let now = self.inner().engine.clock().now();
        let governor = self.inner().engine.with_core(|c| c.governor.clone());
        // The ledger is read here, off the engine's lock (at most once a second).
        governor.refresh(now);
        governor.budget(now)
    }

    /// The key's window now, and the median scan duration learned (for estimates of when a
    /// batch ends).
    pub(crate) fn outlook(&self) -> (crate::engine::governor::Outlook, Duration) {
        let now = self.inner().engine.clock().now();
        let (governor, median) = self
            .inner()
            .engine
            .with_core(|c| (c.governor.clone(), c.model.quantile(0.5, c.policy.expected_duration)));
        governor.refresh(now);
        (governor.outlook(now), median)
    }

    /// Requests one scan is expected to need before any row of a batch has ended: its create
    /// and the polls the schedule expects at the current thrift (the mode's reservation, which
    /// covers the longest plausible scan, made a 40-row batch's first estimates twice too long).
    pub(crate) fn requests_per_scan_planned(&self) -> f64 {
        self.inner().engine.with_core(|c| c.expected_requests_per_scan())
    }

    fn task(&self, goal: Goal, options: &WaitOptions) -> Result<Task, Error> {
        let engine = &self.inner().engine;
        let now = engine.clock().now();
        let settings = engine.with_core(|c| Settings {
            deadline: options
                .deadline
                .map(|t| now.saturating_add(t))
                .filter(|_| !options.deadline_from_creation),
            deadline_after_create: options.deadline.filter(|_| options.deadline_from_creation),
            start_after: options.start_after,
            mode: if options.thrift.is_some() {
                Mode::Adaptive
            } else {
                options.mode.unwrap_or(c.policy.mode)
            },
            expected: options.expected_duration.unwrap_or(c.policy.expected_duration),
            max_rate_limit_wait: options.max_rate_limit_wait.unwrap_or(c.policy.max_rate_limit_wait),
            fixed_thrift: options.thrift,
        });
        Task::new(goal, now, settings)
    }

    fn run(
        &self,
        goal: Goal,
        options: &WaitOptions,
        on_progress: &mut dyn FnMut(&Progress) -> bool,
    ) -> Result<Scan, Error> {
        match &self.inner().store {
            Some(store) => self.run_remembered(store, goal, options, on_progress),
            None => self.run_engine(goal, options, None, on_progress),
        }
    }

    fn run_engine(
        &self,
        goal: Goal,
        options: &WaitOptions,
        gate: Option<Arc<crate::store::calls::StoreGate>>,
        on_progress: &mut dyn FnMut(&Progress) -> bool,
    ) -> Result<Scan, Error> {
        let engine = &self.inner().engine;
        let task = self.task(goal, options)?.with_gate(gate.map(|g| g as Arc<dyn CreateGate>));
        let cancel = options.cancel.clone().unwrap_or_default();
        if cancel.is_cancelled() {
            return Err(Error::new(Code::Cancelled, "the wait was cancelled before it started"));
        }
        engine.run(task, cancel, on_progress)
    }

    /// A call with the state store: answered from it, joined to another process's scan, or
    /// sent; what it learns is kept (src/store/calls.rs). The store is asked by the create's
    /// gate when the create is due, and claimed only when it is about to be sent.
    fn run_remembered(
        &self,
        store: &Arc<crate::store::Guarded>,
        goal: Goal,
        options: &WaitOptions,
        on_progress: &mut dyn FnMut(&Progress) -> bool,
    ) -> Result<Scan, Error> {
        use crate::store::calls::{self, StoreGate};
        let request = match &goal {
            Goal::Create { request, .. } => Some(request.normalized()?),
            _ => None,
        };
        let mut tries = 0;
        let settle = self.likely_duration(options);
        loop {
            tries += 1;
            let gate = request.as_ref().and_then(|r| StoreGate::new(store, r, settle));
            let joined = || gate.as_ref().and_then(|g| g.joined());
            let mut recorded = false;
            let outcome = self.run_engine(goal.clone(), options, gate.clone(), &mut |p: &Progress| {
                if let (Some(request), Some(id), false) = (&request, &p.scan_id, recorded) {
                    if joined().is_none() {
                        calls::created(store, request, id, crate::engine::clock::wall_now());
                    }
                    recorded = true;
                }
                on_progress(p)
            });
            if let (Some(r), Some(id), Err(e)) = (&request, joined(), &outcome) {
                if e.code == Code::NotFound && tries == 1 {
                    // The scan another process recorded is gone (or never was under this
                    // key): forget it and create as asked.
                    if let Some(identity) = calls::shareable_identity(r) {
                        store.clear_in_flight(&identity, &id, "");
                    }
                    continue;
                }
            }
            if let (Ok(scan), Some(request), false, None) = (&outcome, &request, recorded, joined()) {
                // A create-only call returns before any progress event: the scan runs on.
                if !scan.status().is_terminal() {
                    calls::created(store, request, scan.id(), crate::engine::clock::wall_now());
                }
            }
            calls::after(store, request.as_ref(), &outcome, joined().is_some(), gate.as_deref());
            return outcome;
        }
    }

    /// How long a scan likely takes (the learned p90, else the expected range's): how long a
    /// create that another process sent before it slept or died is waited on before a twin
    /// could be made (DESIGN.md 9.1).
    fn likely_duration(&self, options: &WaitOptions) -> Duration {
        self.inner().engine.with_core(|c| {
            c.model.quantile(0.9, options.expected_duration.unwrap_or(c.policy.expected_duration))
        })
    }

    /// Durations the duration schedule has learned (from this process's scans and, with a
    /// state store, from earlier ones).
    pub fn durations_learned(&self) -> usize {
        self.inner().engine.with_core(|c| c.model.samples())
    }

    /// Whether the client uses a state store (one was asked for, opened and has not failed).
    pub fn uses_state_store(&self) -> bool {
        self.inner().store.as_ref().is_some_and(|s| !s.is_bypassed())
    }

    /// Hands a call to the engine without waiting: its progress and outcome go to `sink`.
    /// This is how many scans run at once (see also [`Client::drive`]). With a state store, a
    /// create is answered from it, or joined to another process's scan, as a blocking call is;
    /// a call waiting on another process's create is a timer in the engine, not a thread.
    pub fn submit(&self, goal: Goal, options: &WaitOptions, sink: Arc<dyn Sink>) -> Result<(), Error> {
        use crate::store::calls::{Remembering, StoreGate};
        let Some(store) = &self.inner().store else { return self.submit_engine(goal, options, None, sink) };
        let request = match &goal {
            Goal::Create { request, .. } => Some(request.normalized()?),
            _ => None,
        };
        let gate = request.as_ref().and_then(|r| StoreGate::new(store, r, self.likely_duration(options)));
        let sink = Arc::new(Remembering::new(store.clone(), request, gate.clone(), sink));
        self.submit_engine(goal, options, gate, sink)
    }

    fn submit_engine(
        &self,
        goal: Goal,
        options: &WaitOptions,
        gate: Option<Arc<crate::store::calls::StoreGate>>,
        sink: Arc<dyn Sink>,
    ) -> Result<(), Error> {
        let task = self.task(goal, options)?.with_gate(gate.map(|g| g as Arc<dyn CreateGate>));
        self.inner().engine.submit(task, sink, options.cancel.clone().unwrap_or_default());
        Ok(())
    }

    /// For a client made with [`Client::with_transport`] (no threads): sends what is due or
    /// sleeps until the next timer, on this thread. Returns false when nothing waits.
    /// A threaded client drives itself; there it returns false at once.
    pub fn drive(&self, cancel: &CancelToken) -> bool {
        !self.inner().engine.is_threaded() && self.inner().engine.step(cancel)
    }

    /// Tells the engine that cancel tokens of submitted calls may have fired: their calls end
    /// now instead of at their next timer.
    pub fn wake(&self) {
        self.inner().engine.poke();
    }

    /// Tasks the engine holds (waiting or in flight).
    pub fn pending(&self) -> usize {
        self.inner().engine.with_core(|c| c.len())
    }

    /// POST /scans: a new scan (`processing`), or a cached one (`completed`, `cached()`).
    pub fn create_scan(&self, request: &ScanRequest) -> Result<Scan, Error> {
        self.create_scan_with(request, &WaitOptions::default())
    }

    /// `create_scan` with a deadline and cancel token for its budget waits and retries.
    pub fn create_scan_with(&self, request: &ScanRequest, options: &WaitOptions) -> Result<Scan, Error> {
        let goal = Goal::Create { request: request.clone(), create_only: true };
        self.run(goal, options, &mut |_| true)
    }

    /// GET /scans/{id}, once, whatever the scan's status.
    pub fn get_scan(&self, scan_id: &str) -> Result<Scan, Error> {
        self.run(Goal::Get { id: scan_id.to_owned() }, &WaitOptions::default(), &mut |_| true)
    }

    /// Waits for an existing scan: how a program resumes after a crash, with no new POST.
    pub fn wait(&self, scan_id: &str, options: &WaitOptions) -> Result<Scan, Error> {
        self.wait_with_progress(scan_id, options, &mut |_| true)
    }

    /// `wait`, calling `on_progress` on this thread before every wait (false cancels).
    pub fn wait_with_progress(
        &self,
        scan_id: &str,
        options: &WaitOptions,
        on_progress: &mut dyn FnMut(&Progress) -> bool,
    ) -> Result<Scan, Error> {
        self.run(Goal::Wait { id: scan_id.to_owned() }, options, on_progress)
    }

    /// Creates a scan and waits until it completes or fails.
    pub fn scan_and_wait(&self, request: &ScanRequest, options: &WaitOptions) -> Result<Scan, Error> {
        self.scan_and_wait_with_progress(request, options, &mut |_| true)
    }

    /// `scan_and_wait`, calling `on_progress` on this thread before every wait (false cancels).
    pub fn scan_and_wait_with_progress(
        &self,
        request: &ScanRequest,
        options: &WaitOptions,
        on_progress: &mut dyn FnMut(&Progress) -> bool,
    ) -> Result<Scan, Error> {
        let goal = Goal::Create { request: request.clone(), create_only: false };
        self.run(goal, options, on_progress)
    }
}

/// Identifies a key (and where it is used) without keeping it: the governor registry's key.
fn fingerprint(api_key: &str, base_url: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    api_key.hash(&mut h);
    base_url.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_cannot_be_sent_are_refused_and_never_echoed() {
        for bad in ["", "exo_test_a\r\nX-Evil: 1", "exo test", "exo_tést"] {
            let err = Client::new(bad, Some("http://127.0.0.1:9/api/v1")).unwrap_err();
            assert_eq!(err.code, Code::InvalidArgument);
            if !bad.is_empty() {
                assert!(!err.message.contains(bad), "{}", err.message);
            }
        }
        let c =
            Client::new("exo_test_secretvalue0000000000000000000000000", Some("http://127.0.0.1:9/api/v1"))
                .unwrap();
        assert!(!format!("{c:?}").contains("secretvalue"));
    }
}
