//! The C surface as a whole: every export behind the panic boundary, and the header
//! declaring exactly the exports.

mod common;

use std::collections::BTreeSet;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// (name, first statement of the body) of every `extern "C" fn` in src/ffi.
fn exports() -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(format!("{ROOT}/src/ffi")).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let src = std::fs::read_to_string(&path).unwrap();
        let mut rest = src.as_str();
        while let Some(at) = rest.find("extern \"C\" fn ") {
            let after = &rest[at + "extern \"C\" fn ".len()..];
            let name: String = after.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            let body_start = after.find('{').expect("a body");
            let first = after[body_start + 1..].trim_start().lines().next().unwrap_or("").trim().to_owned();
            found.push((file.clone(), name, first));
            rest = &after[body_start..];
        }
    }
    found
}

#[test]
fn every_export_runs_inside_the_panic_boundary() {
    let exports = exports();
    assert!(exports.len() >= 25, "found only {} exports", exports.len());
    let bare: Vec<_> = exports.iter().filter(|(_, _, first)| !first.starts_with("boundary(")).collect();
    assert!(bare.is_empty(), "exports whose body is not `boundary(...)`: {bare:#?}");
}

/// The layers (docs/architecture.md): the C surface speaks to the public Rust API only, and
/// the engine is not public.
#[test]
fn the_c_surface_does_not_reach_into_the_engine() {
    let mut offenders = Vec::new();
    for entry in std::fs::read_dir(format!("{ROOT}/src/ffi")).unwrap() {
        let path = entry.unwrap().path();
        let src = std::fs::read_to_string(&path).unwrap();
        if src.contains("crate::engine") || src.contains("super::super::engine") {
            offenders.push(path.display().to_string());
        }
    }
    assert!(offenders.is_empty(), "src/ffi files that import the engine: {offenders:?}");
    let lib = std::fs::read_to_string(format!("{ROOT}/src/lib.rs")).unwrap();
    assert!(!lib.lines().any(|l| l.trim_start().starts_with("pub mod engine")), "engine is public in lib.rs");
    assert!(lib.lines().any(|l| l.trim() == "mod engine;"), "lib.rs declares the engine privately");
}

#[test]
fn the_header_declares_exactly_the_exports() {
    let header = std::fs::read_to_string(format!("{ROOT}/include/exona.h")).unwrap();
    let declared: BTreeSet<String> = header
        .lines()
        .filter(|l| {
            !l.starts_with(' ')
                && !l.starts_with('#')
                && !l.starts_with("typedef")
                && l.contains("exona_")
                && l.contains('(')
        })
        .filter_map(|l| {
            let before_paren = &l[..l.find('(').unwrap()];
            before_paren.split(|c: char| c == ' ' || c == '*').rfind(|s| !s.is_empty()).map(str::to_owned)
        })
        .collect();
    let exported: BTreeSet<String> = exports().into_iter().map(|(_, name, _)| name).collect();
    assert_eq!(declared, exported);
}

#[test]
fn the_library_exports_exactly_the_header_functions() {
    let lib = std::env::current_exe().unwrap().parent().unwrap().join("libexona.so");
    let nm = std::process::Command::new("nm").args(["-D", "--defined-only"]).arg(&lib).output();
    let Ok(nm) = nm else {
        common::tool_missing("nm", true);
        return;
    };
    let exported: BTreeSet<String> = String::from_utf8_lossy(&nm.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, kind, name) = (f.next()?, f.next()?, f.next()?);
            (kind == "T" && name.starts_with("exona_")).then(|| name.to_owned())
        })
        .collect();
    let declared: BTreeSet<String> = exports().into_iter().map(|(_, name, _)| name).collect();
    assert_eq!(exported, declared, "the shared library's exona_* symbols and the header's functions differ");
    // And nothing else is visible (issue 36): no symbol of a dependency (aws-lc, SQLite, ...)
    // that a program or another library could bind to by accident.
    let others: Vec<String> = String::from_utf8_lossy(&nm.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_owned))
        .filter(|name| !name.starts_with("exona_"))
        .collect();
    assert!(others.is_empty(), "the library exports symbols other than exona_*: {others:?}");
}

#[test]
fn the_header_version_is_the_crate_version() {
    let header = std::fs::read_to_string(format!("{ROOT}/include/exona.h")).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    assert!(header.contains(&format!("#define EXONA_VERSION_STRING \"{version}\"")));
    let parts: Vec<&str> = version.split('.').collect();
    for (name, value) in ["MAJOR", "MINOR", "PATCH"].iter().zip(&parts) {
        assert!(header.contains(&format!("#define EXONA_VERSION_{name} {value}\n")), "{name}");
    }
    let linked = unsafe { std::ffi::CStr::from_ptr(exona::ffi::codes::exona_version()) };
    // The release, then the commit as semver build metadata (issue 36).
    let (release, commit) =
        linked.to_str().unwrap().split_once('+').unwrap_or((linked.to_str().unwrap(), ""));
    assert_eq!(release, version);
    let head = std::process::Command::new("git")
        .args(["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    if let Some(head) = head {
        assert_eq!(commit, head, "exona_version() names the commit it was built from");
    }
}
