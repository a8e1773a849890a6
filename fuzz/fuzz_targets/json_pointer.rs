//! A scan object and a JSON pointer, both arbitrary, read through the C surface's accessors
//! (exona_result_get_string, exona_result_get_int): no panic, no bad pointer, strings that
//! are what the pointer names.
#![no_main]

use std::ffi::{CStr, CString};

use exona::fuzzing::result_from_body;
use exona::ffi::result::{exona_result_free, exona_result_get_int, exona_result_get_string};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|b| *b == 0).unwrap_or(data.len());
    let (body, pointer) = (&data[..split], data.get(split + 1..).unwrap_or(&[]));
    let Some(result) = result_from_body(body) else { return };
    let pointer = CString::new(pointer.iter().copied().filter(|b| *b != 0).collect::<Vec<u8>>()).unwrap();
    let s = exona_result_get_string(result, pointer.as_ptr());
    let again = exona_result_get_string(result, pointer.as_ptr());
    assert_eq!(s, again, "a pointer's string is built once and kept");
    if !s.is_null() {
        let text = unsafe { CStr::from_ptr(s) }.to_str().expect("UTF-8");
        let json: serde_json::Value = serde_json::from_slice(body).unwrap();
        let p = pointer.to_str().unwrap();
        // The scan object is the body, or its "data" member when only that has an id.
        let wrapped = json.get("id").is_none() && json.get("data").and_then(|d| d.get("id")).is_some();
        let scan = if wrapped { &json["data"] } else { &json };
        let expected = scan.pointer(p);
        assert_eq!(expected.and_then(|v| v.as_str()), Some(text));
    }
    let mut n = 0i64;
    let _ = exona_result_get_int(result, pointer.as_ptr(), &mut n);
    exona_result_free(result);
});
