//! `-d mmio,plic -D FILE`: the demo firmware's UART accesses and its PLIC claim/complete are
//! logged to the file (and nothing is logged without `-d`).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::time::Duration;

use common::{breadboard, tempdir};

#[test]
fn test_mmio_and_plic_trace_items() {
    let d = tempdir("trace-items");
    let log = d.join("trace.log");
    let l = log.display().to_string();
    let r = breadboard(
        &[
            "-M",
            "virt",
            "-bios",
            "none",
            "-kernel",
            "firmware/demo/demo.elf",
            "-nographic",
            "-d",
            "mmio,plic",
            "-D",
            &l,
        ],
        Duration::from_secs(30),
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let text = std::fs::read_to_string(&log).unwrap();
    for needle in [
        "write 0x10000000 size 1 = 0x",
        "read 0x10000005 size 1 = 0x",
        "claims source 10",
        "completes source 10",
        "source 10 input 1",
    ] {
        assert!(
            text.contains(needle),
            "missing {needle:?} in the trace:\n{}",
            &text[..text.len().min(2000)]
        );
    }
    let log2 = d.join("none.log");
    let l2 = log2.display().to_string();
    let r = breadboard(
        &[
            "-M",
            "virt",
            "-bios",
            "none",
            "-kernel",
            "firmware/demo/demo.elf",
            "-nographic",
            "-d",
            "int",
            "-D",
            &l2,
        ],
        Duration::from_secs(30),
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let text = std::fs::read_to_string(&log2).unwrap_or_default();
    assert!(
        !text.contains("write 0x10000000"),
        "mmio logged without -d mmio"
    );
}
