//! exona-sim: a local simulator of the Exona API (shared/exona-api.md), with fault injection.
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
use std::thread::JoinHandle;

pub use config::Config;
pub use state::KeyStats;

/// A running simulator. Dropping it stops the server and joins its thread.
pub struct SimHandle {
    /// `http://127.0.0.1:PORT/api/v1`
    pub base_url: String,
    state: server::Shared,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
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

    /// Number of scans created under a key (including ones the client never saw).
    pub fn scans_created(&self, key: &str) -> u64 {
        self.stats(key).scans_created
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the simulator on 127.0.0.1 in a background thread with its own runtime.
pub fn spawn(config: Config) -> std::io::Result<SimHandle> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", config.port))?;
    listener.set_nonblocking(true)?;
    let port = listener.local_addr()?.port();
    let state = Arc::new(Mutex::new(state::State::new(config)));
    let app = server::router(Arc::clone(&state));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let thread = std::thread::Builder::new().name("exona-sim".into()).spawn(move || {
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener from std");
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
    })?;
    Ok(SimHandle {
        base_url: format!("http://127.0.0.1:{port}/api/v1"),
        state,
        shutdown: Some(tx),
        thread: Some(thread),
    })
}
