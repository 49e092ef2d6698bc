//! Generates one `#[test]` per line of `firmware/tests/programs.txt` (`<name> <rv64|rv32>`) for
//! `tests/isa.rs`.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let tests_dir = manifest.join("../../firmware/tests");
    let list = tests_dir.join("programs.txt");
    println!("cargo::rerun-if-changed={}", list.display());
    println!("cargo::rerun-if-changed={}", tests_dir.display());
    let text = std::fs::read_to_string(&list).unwrap_or_default();
    let mut out = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(name), Some(xlen)) = (parts.next(), parts.next()) else {
            continue;
        };
        let xlen = match xlen {
            "rv32" => "Rv32",
            _ => "Rv64",
        };
        let ident: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let _ = writeln!(
            out,
            "#[test]\nfn isa_{ident}() {{ run_program({name:?}, breadboard_riscv::Xlen::{xlen}); }}"
        );
    }
    let dest = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default()).join("isa_tests.rs");
    if let Err(e) = std::fs::write(&dest, out) {
        println!("cargo::warning=cannot write {}: {e}", dest.display());
    }
}
