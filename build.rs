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
    let mut config =
        cbindgen::Config::from_file(format!("{dir}/cbindgen.toml")).expect("cbindgen.toml is readable");
    // The version, for compile-time checks; exona_version() gives the linked library's.
    let v = |part: &str| std::env::var(format!("CARGO_PKG_VERSION_{part}")).expect("cargo sets the version");
    let (major, minor, patch) = (v("MAJOR"), v("MINOR"), v("PATCH"));
    config.after_includes = Some(format!(
        "\n/* The version of this header; exona_version() gives the linked library's. */\n\
         #define EXONA_VERSION_MAJOR {major}\n\
         #define EXONA_VERSION_MINOR {minor}\n\
         #define EXONA_VERSION_PATCH {patch}\n\
         /* MAJOR * 10000 + MINOR * 100 + PATCH, for #if comparisons. */\n\
         #define EXONA_VERSION_NUMBER ((EXONA_VERSION_MAJOR * 10000) + (EXONA_VERSION_MINOR * 100) + EXONA_VERSION_PATCH)\n\
         #define EXONA_VERSION_STRING \"{major}.{minor}.{patch}\"\n"
    ));
    // The commit the library is built from, named by exona_version() ("0.1.0+4f2a9c1b7d3e",
    // semver's build metadata): EXONA_COMMIT (packagers), else the COMMIT file a source
    // tarball carries (`make dist`), else git; none known: the version alone.
    println!("cargo:rerun-if-env-changed=EXONA_COMMIT");
    // Only paths that exist: cargo takes a missing one for changed, and ran this script, and
    // so compiled the library and everything above it again, at every build of a checkout
    // (which has no COMMIT file): 15-25 s of each cargo command of the suite.
    for path in ["COMMIT", ".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        if std::path::Path::new(&format!("{dir}/{path}")).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    let commit = std::env::var("EXONA_COMMIT")
        .ok()
        .or_else(|| std::fs::read_to_string(format!("{dir}/COMMIT")).ok())
        .or_else(|| {
            let out = std::process::Command::new("git")
                .args(["-C", &dir, "rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()?;
            out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
        })
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_alphanumeric()));
    let full = match commit {
        Some(c) => format!("{major}.{minor}.{patch}+{c}"),
        None => format!("{major}.{minor}.{patch}"),
    };
    println!("cargo:rustc-env=EXONA_VERSION_FULL={full}");
    // The shared library carries its SONAME (libexona.so.MAJOR) in every build, so that the
    // library the tests link is the one `make install` and `make dist` ship (one release build,
    // not two). Programs linked inside target/ then need libexona.so.MAJOR beside libexona.so:
    // a link to it in the profile's directory (target/<profile>/, three levels above OUT_DIR)
    // and in its deps/, where test binaries (and the programs they build) find the library.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libexona.so.{major}");
    if let Some(profile_dir) = std::path::Path::new(&out).ancestors().nth(3) {
        for dir in [profile_dir.to_path_buf(), profile_dir.join("deps")] {
            let link = dir.join(format!("libexona.so.{major}"));
            if dir.is_dir() && std::fs::symlink_metadata(&link).is_err() {
                let _ = std::os::unix::fs::symlink("libexona.so", &link);
            }
        }
    }
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
