//! A test double for what the engine waits on (the key's ledger, a create's gate) that waits
//! until the test lets it go: a database that is slow, or holds a lock another process took.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::gate::{CreateGate, Verdict};
use super::ledger::{Holds, Ledger, MemoryLedger, SharedWindow};

pub struct Blocking {
    inner: MemoryLedger,
    entered: Mutex<Sender<()>>,
    release: Mutex<Receiver<()>>,
}

impl Blocking {
    /// The double; a receiver told each time it starts waiting; a sender whose every message
    /// (or its drop, for good) lets one wait go. A wait ends by itself after a minute.
    pub fn new() -> (Arc<Blocking>, Receiver<()>, Sender<()>) {
        let (entered_tx, entered) = channel();
        let (release, release_rx) = channel();
        let blocking = Blocking {
            inner: MemoryLedger::default(),
            entered: Mutex::new(entered_tx),
            release: Mutex::new(release_rx),
        };
        (Arc::new(blocking), entered, release)
    }

    fn wait(&self) {
        let _ = self.entered.lock().unwrap_or_else(|p| p.into_inner()).send(());
        let _ = self.release.lock().unwrap_or_else(|p| p.into_inner()).recv_timeout(Duration::from_secs(60));
    }
}

/// Waits, then decides on a ledger of its own.
impl Ledger for Blocking {
    fn transact(
        &self,
        wall_ms: i64,
        decide: &mut dyn FnMut(&mut SharedWindow, &mut Holds),
    ) -> Result<(), String> {
        self.wait();
        self.inner.transact(wall_ms, decide)
    }
}

/// Waits at the read, then lets the create go.
impl CreateGate for Blocking {
    fn peek(&self) -> Verdict {
        self.wait();
        Verdict::Send
    }
    fn claim(&self) -> Verdict {
        Verdict::Send
    }
}
