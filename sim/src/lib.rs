//! exona-sim: a local simulator of the Exona API (docs/exona-api.md), with fault injection.
//!
//! Tests start it in-process with [`spawn`]; the `exona-sim` binary serves it from the
//! command line. Everything the API docs do not define is marked simulator-only in README.md.

pub mod auth;
pub mod config;
pub mod envelope;
pub mod faults;
pub mod server;
pub mod state;
pub mod synth;
pub mod validate;

use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use config::Config;
pub use state::KeyStats;

type ShutdownSlot = Arc<Mutex<Option<tokio::sync::oneshot::Sender<()>>>>;

/// A running simulator. Dropping it stops the server.
pub struct SimHandle {
    /// `http://127.0.0.1:PORT/api/v1`
    pub base_url: String,
    port: u16,
    state: server::Shared,
    shutdown: ShutdownSlot,
    runtime: Option<tokio::runtime::Runtime>,
}

impl SimHandle {
    /// Counters of one key (zero if it never called).
    pub fn stats(&self, key: &str) -> KeyStats {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).stats.get(key).cloned().unwrap_or_default()
    }

    /// When a scan became complete (or failed), on this process's monotonic clock; `None` for
    /// unknown ids and scans that never end. Benchmarks measure detection delay with it.
    pub fn finished_at(&self, scan_id: &str) -> Option<std::time::Instant> {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let r = s.scans.get(scan_id)?;
        (!matches!(r.fault, faults::Fault::Stuck | faults::Fault::Vanish)).then(|| r.created + r.duration)
    }

    /// Scans created under a key, by website as the server normalised it: the crash harness
    /// checks that no company was created twice.
    pub fn scans_by_website(&self, key: &str) -> std::collections::BTreeMap<String, u64> {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut counts = std::collections::BTreeMap::new();
        for r in s.scans.values().filter(|r| r.key == key) {
            *counts.entry(r.website.clone()).or_insert(0) += 1;
        }
        counts
    }

    /// Number of scans created under a key (including ones the client never saw).
    pub fn scans_created(&self, key: &str) -> u64 {
        self.stats(key).scans_created
    }

    /// Ends a processing scan now (it completes, or fails as its website says): tests hold a
    /// scan in "processing" with a long duration and finish it on an event, not on the clock.
    /// Returns false for an unknown id.
    pub fn finish_now(&self, scan_id: &str) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match s.scans.get_mut(scan_id) {
            Some(r) => {
                r.duration = r.created.elapsed();
                true
            }
            None => false,
        }
    }

    /// Opens a fresh rate-limit window for `key` now, as if its window had ended: tests use it
    /// to end a 429 on an event instead of on the clock.
    pub fn reset_window(&self, key: &str) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).windows.remove(key);
    }

    /// The server goes away: from now on connections are refused, for `length`; then it
    /// serves again on the same port with the same scans. Returns at once.
    pub fn outage(&self, length: Duration) {
        if let Some(tx) = self.shutdown.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = tx.send(());
        }
        let (state, slot, port) = (Arc::clone(&self.state), Arc::clone(&self.shutdown), self.port);
        if let Some(rt) = &self.runtime {
            let handle = rt.handle().clone();
            rt.spawn(async move {
                tokio::time::sleep(length).await;
                // The old listener may take a moment to close; try for a while.
                for _ in 0..100 {
                    if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", port)) {
                        let _ = serve(&handle, listener, state, &slot);
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            });
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = tx.send(());
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

/// Serves `listener` on the runtime until the slot's sender fires: HTTPS when the
/// configuration has a certificate, else plain HTTP.
fn serve(
    handle: &tokio::runtime::Handle,
    listener: std::net::TcpListener,
    state: server::Shared,
    slot: &ShutdownSlot,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let tls = state.lock().unwrap_or_else(|p| p.into_inner()).config.tls.clone();
    let app = server::router(state);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
    match tls {
        None => {
            handle.spawn(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await;
            });
        }
        Some((cert, key)) => {
            handle.spawn(async move {
                let Ok(config) = axum_server::tls_rustls::RustlsConfig::from_pem(cert, key).await else {
                    eprintln!("exona-sim: the TLS certificate or key is not valid PEM");
                    return;
                };
                let server_handle = axum_server::Handle::new();
                let stopper = server_handle.clone();
                tokio::spawn(async move {
                    let _ = rx.await;
                    stopper.graceful_shutdown(Some(Duration::from_millis(200)));
                });
                let Ok(server) = axum_server::from_tcp_rustls(listener, config) else { return };
                let _ = server.handle(server_handle).serve(app.into_make_service()).await;
            });
        }
    }
    Ok(())
}

/// Starts the simulator on 127.0.0.1, served by its own runtime's threads.
pub fn spawn(config: Config) -> std::io::Result<SimHandle> {
    faults::install_quiet_panic_hook();
    let listener = std::net::TcpListener::bind(("127.0.0.1", config.port))?;
    let port = listener.local_addr()?.port();
    let tls = config.tls.is_some();
    let state = Arc::new(Mutex::new(state::State::new(config)));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("exona-sim")
        .enable_all()
        .build()?;
    let shutdown: ShutdownSlot = Arc::new(Mutex::new(None));
    serve(runtime.handle(), listener, Arc::clone(&state), &shutdown)?;
    let scheme = if tls { "https" } else { "http" };
    Ok(SimHandle {
        base_url: format!("{scheme}://127.0.0.1:{port}/api/v1"),
        port,
        state,
        shutdown,
        runtime: Some(runtime),
    })
}
