//! Logging: off unless asked for. `EXONA_LOG=error|warn|info|debug` writes to stderr; a
//! callback (C: `exona_set_log_callback`) receives the same lines instead. Messages name
//! methods, paths, statuses, request ids and waits; never the API key, which no message
//! is built from.

use std::sync::{Mutex, OnceLock, RwLock};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }

    pub fn from_raw(raw: i64) -> Option<Level> {
        [Level::Error, Level::Warn, Level::Info, Level::Debug].into_iter().find(|l| *l as i64 == raw)
    }
}

type Hook = Box<dyn Fn(Level, &str) + Send + Sync>;

struct Sink {
    max: Level,
    hook: Hook,
}

fn sink() -> &'static RwLock<Option<Sink>> {
    static SINK: OnceLock<RwLock<Option<Sink>>> = OnceLock::new();
    SINK.get_or_init(|| RwLock::new(None))
}

/// The level `EXONA_LOG` asks for on stderr, read once.
fn env_level() -> Option<Level> {
    static LEVEL: OnceLock<Option<Level>> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let value = std::env::var("EXONA_LOG").ok()?;
        let level = parse_level(&value);
        if level.is_none() && !value.is_empty() && !value.eq_ignore_ascii_case("off") {
            // Said once, here where the variable is read: a typo should not look like silence.
            eprintln!("libexona: EXONA_LOG={value:?} is not a level (error, warn, info, debug or off); logging stays off");
        }
        level
    })
}

/// A level's name as `EXONA_LOG` takes it.
fn parse_level(value: &str) -> Option<Level> {
    match value.to_ascii_lowercase().as_str() {
        "error" => Some(Level::Error),
        "warn" | "warning" => Some(Level::Warn),
        "info" => Some(Level::Info),
        "debug" | "trace" | "1" => Some(Level::Debug),
        _ => None,
    }
}

/// Sends log lines up to `max` to `hook` (from any libexona thread) instead of stderr;
/// `None` removes the hook.
pub fn set_hook(hook: Option<(Level, Hook)>) {
    *sink().write().unwrap_or_else(|p| p.into_inner()) = hook.map(|(max, hook)| Sink { max, hook });
}

/// Logs a line built only when someone listens at `level`.
pub fn log(level: Level, message: impl FnOnce() -> String) {
    let guard = sink().read().unwrap_or_else(|p| p.into_inner());
    if let Some(s) = guard.as_ref() {
        if level <= s.max {
            (s.hook)(level, &message());
        }
        return;
    }
    drop(guard);
    if env_level().is_some_and(|max| level <= max) {
        // One write per line, so lines from several threads do not interleave.
        // One lock per process: a child forked while another thread held it must not wait
        // for ever (DESIGN.md 9.2).
        static STDERR: crate::process::PerProcess<Mutex<()>> = crate::process::PerProcess::new();
        let _one_at_a_time = STDERR.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
        // Built whole, then written with one call: eprintln! may split a line into several
        // writes, which other output on stderr can then land between.
        let line = format!("libexona[{}]: {}\n", level.name(), message());
        let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_and_unknown_ones_do_not() {
        assert_eq!(parse_level("DEBUG"), Some(Level::Debug));
        assert_eq!(parse_level("warning"), Some(Level::Warn));
        assert_eq!(parse_level("bogus"), None);
        assert_eq!(parse_level("off"), None);
    }
}
