//! ISA test programs (firmware/tests, one generated test each) run on the real binary:
//! `-M virt -bios none -kernel PROGRAM.elf`; the program's finisher write is the exit code
//! (0 = pass, N = failing case N).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::time::Duration;

fn run_isa_program(name: &str, xlen: &str) {
    let elf = format!("firmware/tests/{name}.elf");
    let mut args = vec!["-M", "virt", "-bios", "none", "-nographic", "-kernel", &elf];
    if xlen == "rv32" {
        args.extend(["-cpu", "rv32"]);
    }
    let r = common::breadboard(&args, Duration::from_secs(60));
    assert_eq!(
        r.code,
        Some(0),
        "{name} failed (exit code is the failing case number)\nstdout:\n{}\nstderr:\n{}",
        r.stdout,
        r.stderr
    );
}

include!(concat!(env!("OUT_DIR"), "/isa_tests.rs"));
