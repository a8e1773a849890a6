//! Compiles the C examples' CSV line reader for the `csv_line` target. With clang, the C code
//! gets the same coverage instrumentation as the Rust code, so libFuzzer is guided through it
//! too; with gcc it is still checked by AddressSanitizer, without guidance.
fn main() {
    println!("cargo:rerun-if-changed=c/csv_line.c");
    println!("cargo:rerun-if-changed=../examples/c/csv_line.h");
    let mut build = cc::Build::new();
    build.file("c/csv_line.c").include("../examples/c").flag("-fsanitize=address");
    if build.get_compiler().is_like_clang() {
        build.flag("-fsanitize-coverage=inline-8bit-counters,pc-table,trace-cmp");
    }
    build.compile("csv_line");
}
