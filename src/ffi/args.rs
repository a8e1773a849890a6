//! Checked access to pointer arguments. Every error message names the argument.

use std::ffi::{c_char, CStr};

use crate::error::Error;

/// A required C string argument: not NULL, valid UTF-8.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that outlives `'a`.
pub unsafe fn required_str<'a>(ptr: *const c_char, name: &str) -> Result<&'a str, Error> {
    optional_str(ptr, name)?.ok_or_else(|| Error::invalid_argument(format!("{name} is NULL")))
}

/// An optional C string argument: NULL gives `None`; otherwise valid UTF-8.
///
/// # Safety
/// As for [`required_str`].
pub unsafe fn optional_str<'a>(ptr: *const c_char, name: &str) -> Result<Option<&'a str>, Error> {
    if ptr.is_null() {
        return Ok(None);
    }
    CStr::from_ptr(ptr).to_str().map(Some).map_err(|e| {
        Error::invalid_argument(format!("{name} is not valid UTF-8 (bad byte at offset {})", e.valid_up_to()))
    })
}

/// A required handle argument.
///
/// # Safety
/// `ptr` is NULL or a live handle of type `T` created by this library.
pub unsafe fn handle<'a, T>(ptr: *const T, name: &str) -> Result<&'a T, Error> {
    ptr.as_ref().ok_or_else(|| Error::invalid_argument(format!("{name} is NULL")))
}

/// A required mutable handle argument.
///
/// # Safety
/// As for [`handle`], and no other reference to `*ptr` is live.
pub unsafe fn handle_mut<'a, T>(ptr: *mut T, name: &str) -> Result<&'a mut T, Error> {
    ptr.as_mut().ok_or_else(|| Error::invalid_argument(format!("{name} is NULL")))
}

/// An optional handle argument: NULL means "none" (for options: the defaults).
///
/// # Safety
/// As for [`handle`].
pub unsafe fn optional_handle<'a, T>(ptr: *const T) -> Option<&'a T> {
    ptr.as_ref()
}

/// A required out pointer, set to NULL at once so that no path leaves it unset; the call
/// writes it once more, with what it hands over.
///
/// # Safety
/// `out` is NULL or valid for one pointer write.
pub unsafe fn required_out<T>(out: *mut *mut T, name: &str) -> Result<(), Error> {
    if out.is_null() {
        return Err(Error::invalid_argument(format!("{name} is NULL")));
    }
    *out = std::ptr::null_mut();
    Ok(())
}

/// An optional out value: written when `out` is not NULL.
///
/// # Safety
/// `out` is NULL or valid for one write of a `T`.
pub unsafe fn write_optional<T>(out: *mut T, value: T) {
    if !out.is_null() {
        *out = value;
    }
}

/// The code of a call's Rust outcome.
pub fn code_of(outcome: Result<(), Error>) -> super::codes::exona_code {
    match outcome {
        Ok(()) => super::codes::exona_code::EXONA_OK,
        Err(e) => e.code.into(),
    }
}

/// Runs a setter on a handle: NULL and refused values give their code, and a refused value
/// leaves the handle as it was (setters validate before they assign).
pub fn update<T>(ptr: *mut T, apply: impl FnOnce(&mut T) -> Result<(), Error>) -> super::codes::exona_code {
    code_of(unsafe { handle_mut(ptr, "options") }.and_then(apply))
}

/// The one reading of a C time limit in milliseconds: `UINT64_MAX` means "no limit" (None).
/// Whether 0 is allowed is the caller's rule (a scan deadline of 0 is refused; a batch wait
/// of 0 just looks).
pub fn limit_ms(ms: u64) -> Option<std::time::Duration> {
    (ms != u64::MAX).then(|| std::time::Duration::from_millis(ms))
}

/// Moves a Rust value to the heap and hands C an owning pointer (freed by the `*_free`).
pub fn into_raw<T>(value: T) -> *mut T {
    Box::into_raw(Box::new(value))
}

/// Takes back and drops what [`into_raw`] handed out. NULL is a no-op.
///
/// # Safety
/// `ptr` is NULL or came from [`into_raw`] with the same `T` and was not freed before.
pub unsafe fn free<T>(ptr: *mut T) {
    if !ptr.is_null() {
        drop(Box::from_raw(ptr));
    }
}
