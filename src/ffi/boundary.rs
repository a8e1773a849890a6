//! The panic boundary: no Rust panic ever unwinds into the caller's C frames.

use std::panic::{catch_unwind, AssertUnwindSafe};

/// What an export returns when its body panicked.
pub trait PanicDefault {
    fn on_panic() -> Self;
}

impl<T> PanicDefault for *mut T {
    fn on_panic() -> Self {
        std::ptr::null_mut()
    }
}

impl<T> PanicDefault for *const T {
    fn on_panic() -> Self {
        std::ptr::null()
    }
}

impl PanicDefault for () {
    fn on_panic() -> Self {}
}

impl PanicDefault for bool {
    fn on_panic() -> Self {
        false
    }
}

macro_rules! zero_on_panic {
    ($($t:ty),*) => {$(
        impl PanicDefault for $t {
            fn on_panic() -> Self { 0 }
        }
    )*};
}
zero_on_panic!(u16, u32, u64, i64);

impl PanicDefault for usize {
    fn on_panic() -> Self {
        usize::MAX
    }
}

/// Runs an export's body; a panic inside it returns the type's [`PanicDefault`].
pub fn boundary<T: PanicDefault>(body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|_| T::on_panic())
}
