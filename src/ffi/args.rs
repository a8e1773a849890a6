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

/// Runs a setter on a handle: NULL and refused values give their code, and a refused value
/// leaves the handle as it was (setters validate before they assign).
pub fn update<T>(ptr: *mut T, apply: impl FnOnce(&mut T) -> Result<(), Error>) -> super::codes::exona_code {
    match unsafe { handle_mut(ptr, "options") }.and_then(apply) {
        Ok(()) => super::codes::exona_code::EXONA_OK,
        Err(e) => e.code.into(),
    }
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
