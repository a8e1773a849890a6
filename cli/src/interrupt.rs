//! Ctrl-C (and SIGTERM): the first one cancels what runs, so the command stops cleanly (the
//! batch journal stays consistent, finished rows are in OUTPUT); a second exits at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use exona::CancelToken;

#[derive(Clone)]
pub struct Interrupt {
    count: Arc<AtomicUsize>,
    pub token: CancelToken,
}

impl Interrupt {
    pub fn install() -> Interrupt {
        let interrupt = Interrupt { count: Arc::default(), token: CancelToken::new() };
        let handler = interrupt.clone();
        let installed = ctrlc::set_handler(move || {
            if handler.count.fetch_add(1, Ordering::SeqCst) == 0 {
                eprintln!("\nexona: stopping (what finished is kept; press Ctrl-C again to exit at once)");
                handler.token.cancel_because(Some("interrupted (Ctrl-C)"));
            } else {
                std::process::exit(130);
            }
        });
        if let Err(e) = installed {
            eprintln!("exona: Ctrl-C will not stop cleanly ({e})");
        }
        interrupt
    }

    pub fn happened(&self) -> bool {
        self.count.load(Ordering::SeqCst) > 0
    }
}
