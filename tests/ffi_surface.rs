//! The C surface as a whole: every export behind the panic boundary, and the header
//! declaring exactly the exports.

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
