//! Generates one end-to-end test per ISA test program listed in firmware/tests/programs.txt.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default())
        .join("../../firmware/tests");
    let list = root.join("programs.txt");
    println!("cargo::rerun-if-changed={}", list.display());
    let text = std::fs::read_to_string(&list).unwrap_or_default();
    let mut out = String::new();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(name), Some(xlen)) = (parts.next(), parts.next()) else {
            continue;
        };
        if name.starts_with('#') {
            continue;
        }
        let _ = writeln!(
            out,
            "#[test]\nfn isa_{name}() {{ run_isa_program(\"{name}\", \"{xlen}\"); }}\n"
        );
    }
    let dest = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default()).join("isa_tests.rs");
    if let Err(e) = std::fs::write(&dest, out) {
        println!("cargo::warning=cannot write {}: {e}", dest.display());
    }
}
