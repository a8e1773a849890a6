//! A benchmark stopped by Ctrl-C or SIGTERM still stops what it started outside itself (the
//! throwaway PostgreSQL servers: issue 35 found one left running). SIGINT and SIGTERM are
//! blocked in every thread and taken by one watcher thread with `sigwait`, which runs the
//! registered clean-ups, then exits with the shell's status for the signal (130, 143).
//! Worker processes are children: Ctrl-C reaches them through the terminal's process group.

use std::sync::Mutex;

type Cleanup = Box<dyn Fn() + Send + Sync>;

static CLEANUPS: Mutex<Vec<Cleanup>> = Mutex::new(Vec::new());

/// Runs `cleanup` if the bench is stopped by a signal.
pub fn stop_with_the_bench(cleanup: Cleanup) {
    CLEANUPS.lock().unwrap_or_else(|p| p.into_inner()).push(cleanup);
}

/// Starts the watcher; call first in `main`, before any thread starts (threads inherit the
/// blocked mask, so the signal goes to the watcher only).
pub fn watch() {
    // SAFETY: plain libc calls on a sigset of our own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return;
        }
        std::thread::spawn(move || {
            let mut signal: libc::c_int = 0;
            if libc::sigwait(&set, &mut signal) != 0 {
                return;
            }
            eprintln!("exona-bench: stopped by signal {signal}: stopping the servers it started");
            for cleanup in CLEANUPS.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                cleanup();
            }
            std::process::exit(128 + signal);
        });
    }
}
