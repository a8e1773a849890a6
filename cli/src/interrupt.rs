//! Ctrl-C (SIGINT) and SIGTERM: the first cancels what runs, so the command stops cleanly (the
//! batch journal stays consistent, finished rows are in OUTPUT); a second exits at once. Each
//! is named as what it was: a service manager's SIGTERM is not a user's Ctrl-C.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use exona::CancelToken;
use signal_hook::consts::{SIGINT, SIGTERM};

#[derive(Clone)]
pub struct Interrupt {
    count: Arc<AtomicUsize>,
    /// The first signal's name ("Ctrl-C" or "SIGTERM").
    by: Arc<Mutex<&'static str>>,
    pub token: CancelToken,
}

/// What a user calls the signal.
pub fn signal_name(signal: i32) -> &'static str {
    match signal {
        SIGINT => "Ctrl-C",
        SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

/// 128 + the signal's number: the shell's convention for a process ended by a signal.
fn exit_status(signal: i32) -> u8 {
    (128 + signal) as u8
}

impl Interrupt {
    pub fn install() -> Interrupt {
        let interrupt = Interrupt {
            count: Arc::default(),
            by: Arc::new(Mutex::new("Ctrl-C")),
            token: CancelToken::new(),
        };
        let handler = interrupt.clone();
        let signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]);
        let spawned = signals.and_then(|mut signals| {
            std::thread::Builder::new().name("exona-signals".into()).spawn(move || {
                for signal in signals.forever() {
                    handler.received(signal);
                }
            })
        });
        if let Err(e) = spawned {
            eprintln!("exona: Ctrl-C and SIGTERM will not stop cleanly ({e})");
        }
        interrupt
    }

    fn received(&self, signal: i32) {
        let name = signal_name(signal);
        if self.count.fetch_add(1, Ordering::SeqCst) == 0 {
            if let Ok(mut by) = self.by.lock() {
                *by = name;
            }
            eprintln!("\nexona: stopping on {name} (what finished is kept; {name} again exits at once)");
            self.token.cancel_because(Some(if signal == SIGTERM {
                "interrupted (SIGTERM)"
            } else {
                "interrupted (Ctrl-C)"
            }));
        } else {
            std::process::exit(i32::from(exit_status(signal)));
        }
    }

    pub fn happened(&self) -> bool {
        self.count.load(Ordering::SeqCst) > 0
    }

    /// The status the command exits with when this signal stopped it: 128 + its number, as
    /// shells report it (130 for Ctrl-C, 143 for SIGTERM), so a supervisor sees which.
    pub fn status(&self) -> u8 {
        exit_status(if self.by() == signal_name(SIGTERM) { SIGTERM } else { SIGINT })
    }

    /// The first signal's name, once one came.
    pub fn by(&self) -> &'static str {
        self.by.lock().map(|b| *b).unwrap_or("a signal")
    }
}
