//! Generates the C header from src/ffi with cbindgen.
//!
//! The header is always written to OUT_DIR; a unit test compares it with the committed
//! include/exona.h, so a change to the C surface cannot land without its header.
//! `make header` (EXONA_UPDATE_HEADER=1) also writes include/exona.h.

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=src/error.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-env-changed=EXONA_UPDATE_HEADER");
    let config =
        cbindgen::Config::from_file(format!("{dir}/cbindgen.toml")).expect("cbindgen.toml is readable");
    let header = cbindgen::Builder::new()
        .with_crate(&dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate the header");
    header.write_to_file(format!("{out}/exona.h"));
    if std::env::var_os("EXONA_UPDATE_HEADER").is_some_and(|v| v == "1") {
        header.write_to_file(format!("{dir}/include/exona.h"));
    }
}
