//! Fork awareness (DESIGN.md 9.2): state that belongs to one process.
//!
//! A server that makes a client at boot and then forks workers (Puma and Unicorn with preload,
//! gunicorn `--preload`, Celery prefork, `multiprocessing`) hands each child a copy of the
//! parent's memory but none of its threads. The parent's engine, its HTTP client and its
//! store connection then wait for threads that do not exist, and a lock that one of the
//! parent's threads held at the fork stays locked in the child for ever. So a child never
//! touches the parent's state: [`PerProcess`] gives each process its own value, made on first
//! use in that process, and leaves the parent's copy untouched and unfreed (freeing it could
//! join threads that do not exist, or close file descriptors whose locks the parent relies on).
//!
//! No lock is taken on the way: the slot is one atomic pointer, so a fork at any instant leaves
//! it usable.

use std::sync::atomic::{AtomicPtr, Ordering};

/// The id of the calling process (`getpid`, not cached: a cached value would be the parent's
/// in a child).
pub fn id() -> u32 {
    std::process::id()
}

/// A value made once per process: in the process that made it, the same value every time; in
/// a child forked after it was made, a fresh one (and the parent's copy is leaked there, on
/// purpose).
pub struct PerProcess<T> {
    slot: AtomicPtr<Owned<T>>,
}

struct Owned<T> {
    pid: u32,
    value: T,
}

impl<T> PerProcess<T> {
    pub const fn new() -> PerProcess<T> {
        PerProcess { slot: AtomicPtr::new(std::ptr::null_mut()) }
    }

    /// This process's value, made by `make` if this process has none yet. Two threads that
    /// race here may both call `make`; one value wins and the other is dropped.
    pub fn get_or_init(&self, make: impl FnOnce() -> T) -> &T {
        match self.get_or_try_init(|| Ok::<T, std::convert::Infallible>(make())) {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }

    /// [`PerProcess::get_or_init`] with a `make` that may fail (then nothing is stored).
    pub fn get_or_try_init<E>(&self, make: impl FnOnce() -> Result<T, E>) -> Result<&T, E> {
        let pid = id();
        let current = self.slot.load(Ordering::Acquire);
        if let Some(value) = self.of(current, pid) {
            return Ok(value);
        }
        let fresh = Box::into_raw(Box::new(Owned { pid, value: make()? }));
        let mut expected = current;
        loop {
            match self.slot.compare_exchange(expected, fresh, Ordering::AcqRel, Ordering::Acquire) {
                Ok(replaced) => {
                    // The value replaced (if any) is another process's: it stays where it is.
                    if !replaced.is_null() {
                        keep_unfreed(Box::new(Unowned(replaced.cast())));
                    }
                    return Ok(unsafe { &(*fresh).value });
                }
                Err(now) => {
                    if let Some(value) = self.of(now, pid) {
                        // Another thread of this process stored its value first.
                        drop(unsafe { Box::from_raw(fresh) });
                        return Ok(value);
                    }
                    expected = now;
                }
            }
        }
    }

    /// This process's value, if it has one (never makes one).
    pub fn get(&self) -> Option<&T> {
        self.of(self.slot.load(Ordering::Acquire), id())
    }

    fn of(&self, ptr: *mut Owned<T>, pid: u32) -> Option<&T> {
        // A published value is freed only by `drop` (which needs `&mut self`), so while
        // `&self` lives the reference stays valid; a value of another process is never freed.
        (!ptr.is_null() && unsafe { (*ptr).pid } == pid).then(|| unsafe { &(*ptr).value })
    }
}

impl<T> Default for PerProcess<T> {
    fn default() -> Self {
        PerProcess::new()
    }
}

impl<T> Drop for PerProcess<T> {
    fn drop(&mut self) {
        let ptr = *self.slot.get_mut();
        if !ptr.is_null() && unsafe { (*ptr).pid } == id() {
            drop(unsafe { Box::from_raw(ptr) });
        }
        // Else another process made it: its threads and descriptors are not ours to end.
        else if !ptr.is_null() {
            keep_unfreed(Box::new(Unowned(ptr.cast())));
        }
    }
}

/// A pointer to another process's value, kept so that it stays reachable.
struct Unowned(#[allow(dead_code)] *mut u8);
unsafe impl Send for Unowned {}

/// What a forked child inherited and must not free (the parent's engine, threads' state,
/// store connection): kept reachable from here for the life of the process, so that it is
/// neither freed nor reported as lost by a leak checker. Never emptied; without a lock, so a
/// fork at any instant leaves it usable.
pub fn keep_unfreed(value: Box<dyn std::any::Any + Send>) {
    struct Node {
        _value: Box<dyn std::any::Any + Send>,
        next: *mut Node,
    }
    static KEPT: AtomicPtr<Node> = AtomicPtr::new(std::ptr::null_mut());
    let node = Box::into_raw(Box::new(Node { _value: value, next: std::ptr::null_mut() }));
    let mut head = KEPT.load(Ordering::Acquire);
    loop {
        unsafe { (*node).next = head };
        match KEPT.compare_exchange(head, node, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return,
            Err(now) => head = now,
        }
    }
}

// The slot owns a `T` (sent to whichever thread drops it) shared by reference between threads.
unsafe impl<T: Send + Sync> Sync for PerProcess<T> {}
unsafe impl<T: Send> Send for PerProcess<T> {}

/// Runs `f` in a forked child and returns its exit status (tests only). The child exits with
/// `_exit`, so no destructor, atexit handler or test harness state runs twice.
#[cfg(test)]
pub fn in_child(f: impl FnOnce() -> i32) -> i32 {
    match unsafe { libc::fork() } {
        -1 => panic!("fork failed"),
        0 => {
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(101);
            unsafe { libc::_exit(code) }
        }
        child => {
            let mut status = 0;
            unsafe { libc::waitpid(child, &mut status, 0) };
            if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                128 + libc::WTERMSIG(status)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    #[test]
    fn one_value_per_process() {
        let made = Arc::new(AtomicUsize::new(0));
        let slot = PerProcess::new();
        let make = || {
            made.fetch_add(1, Ordering::SeqCst);
            id()
        };
        assert_eq!(*slot.get_or_init(make), id());
        assert_eq!(*slot.get_or_init(|| unreachable!()), id());
        let parent = id();
        let code = in_child(|| {
            // The parent's value is not the child's: a fresh one is made, and kept.
            let first = *slot.get_or_init(id);
            let again = *slot.get_or_init(|| 0);
            i32::from(first == parent || first != again || first != id())
        });
        assert_eq!(code, 0, "the child saw its parent's value");
        assert_eq!(*slot.get().unwrap(), parent, "the parent's value changed");
        assert_eq!(made.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_failed_make_stores_nothing() {
        let slot: PerProcess<u32> = PerProcess::new();
        assert_eq!(slot.get_or_try_init(|| Err("no")), Err("no"));
        assert!(slot.get().is_none());
        assert_eq!(slot.get_or_try_init(|| Ok::<u32, &str>(7)), Ok(&7));
    }
}
