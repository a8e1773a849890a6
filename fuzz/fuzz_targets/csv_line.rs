//! The C examples' CSV line reader (examples/c/csv_line.h), on any line.
#![no_main]

use libfuzzer_sys::fuzz_target;

extern "C" {
    fn exona_fuzz_csv_line(line: *const std::ffi::c_char) -> std::ffi::c_int;
}

fuzz_target!(|data: &[u8]| {
    // A line as fgets hands it over: text up to the first NUL.
    let end = data.iter().position(|b| *b == 0).unwrap_or(data.len());
    let line = std::ffi::CString::new(&data[..end]).expect("no NUL inside");
    unsafe { exona_fuzz_csv_line(line.as_ptr()) };
});
