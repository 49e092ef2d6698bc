//! `-icount shift=0`: the same command line run twice gives byte-identical console output, for
//! a four-hart firmware that prints minstret and mtime at every timer interrupt
//! (`firmware/icount`) and for the Linux boot from ../shared/guests up to the shell prompt.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::time::Duration;

use common::{Guest, breadboard, guest, guests};

#[test]
fn test_icount_firmware_smp4_is_byte_identical() {
    let args = [
        "-M",
        "virt",
        "-smp",
        "4",
        "-bios",
        "none",
        "-kernel",
        "firmware/icount/icount.elf",
        "-nographic",
        "-icount",
        "shift=0",
    ];
    let a = breadboard(&args, Duration::from_secs(60));
    let b = breadboard(&args, Duration::from_secs(60));
    assert_eq!(a.code, Some(0), "{}", a.stderr);
    assert_eq!(b.code, Some(0), "{}", b.stderr);
    assert!(a.stdout.ends_with("icount: done\n"), "{}", a.stdout);
    for h in 0..4 {
        for t in 0..6 {
            let line = format!("hart {h} tick {t} instret ");
            assert!(a.stdout.contains(&line), "missing {line:?}:\n{}", a.stdout);
        }
    }
    assert_eq!(a.stdout, b.stdout, "two -icount runs differ");
    // Another shift changes the timing (and so the output), deterministically again.
    let args2 = [
        "-M",
        "virt",
        "-smp",
        "4",
        "-bios",
        "none",
        "-kernel",
        "firmware/icount/icount.elf",
        "-nographic",
        "-icount",
        "shift=2",
    ];
    let c = breadboard(&args2, Duration::from_secs(60));
    let d = breadboard(&args2, Duration::from_secs(60));
    assert_eq!(c.code, Some(0), "{}", c.stderr);
    assert_eq!(c.stdout, d.stdout, "two -icount shift=2 runs differ");
    assert_ne!(a.stdout, c.stdout, "shift had no effect");
}

const INIT: &str = "breadboard-guest: init reached";
const PROMPT: &str = "breadboard:/# ";

/// The console output up to the prompt, with the one line that comes from the host's wall
/// clock (the goldfish RTC's base; QEMU needs `-rtc clock=vm,base=…` for that too) masked.
fn boot_to_prompt() -> String {
    let args = [
        "-M",
        "virt",
        "-smp",
        "2",
        "-m",
        "256M",
        "-nographic",
        "-bios",
        &guest("fw_jump.elf"),
        "-kernel",
        &guest("Image"),
        "-initrd",
        &guest("initramfs.cpio.gz"),
        "-append",
        "console=ttyS0 earlycon",
        "-icount",
        "shift=0",
    ]
    .map(|s| s.to_string());
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut g = Guest::start(&a);
    g.expect(INIT, Duration::from_secs(300));
    let end = g.expect(PROMPT, Duration::from_secs(300));
    let out = g.output();
    out[..end]
        .lines()
        .map(|l| {
            if l.contains("setting system clock to") {
                "<rtc wall clock>".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn test_icount_linux_boot_is_identical() {
    if !guests().join("Image").exists() {
        eprintln!("skipped: no guest images in {}", guests().display());
        return;
    }
    let (a, b) = std::thread::scope(|s| {
        let ha = s.spawn(boot_to_prompt);
        let hb = s.spawn(boot_to_prompt);
        (ha.join().unwrap(), hb.join().unwrap())
    });
    assert!(a.contains(INIT));
    if a != b {
        let first = a.lines().zip(b.lines()).position(|(x, y)| x != y);
        panic!("two -icount boots differ at line {first:?}:\n--- a\n{a}\n--- b\n{b}");
    }
}

/// Under `-icount`, a timer the guest arms for a deadline inside the running slice must
/// interrupt it at the deadline (as QEMU's icount does), not when the slice would have ended:
/// `firmware/icount/latency.elf` arms mtimecmp and then Sstc's stimecmp for 1 to 3000 ticks
/// ahead and prints how late each interrupt came. Before the fix, deadlines shorter than a
/// slice (100,000 instructions = 1,000 ticks at shift 0) came up to 999 ticks late.
#[test]
fn test_icount_timer_interrupts_arrive_at_their_deadline() {
    for shift in ["0", "2"] {
        let r = breadboard(
            &[
                "-M",
                "virt",
                "-bios",
                "none",
                "-kernel",
                "firmware/icount/latency.elf",
                "-nographic",
                "-icount",
                &format!("shift={shift}"),
            ],
            Duration::from_secs(60),
        );
        assert_eq!(r.code, Some(0), "shift={shift}: {}", r.stderr);
        assert!(!r.stdout.contains("EARLY"), "shift={shift}:\n{}", r.stdout);
        let lates: Vec<u64> = r
            .stdout
            .lines()
            .filter_map(|l| l.split(" late ").nth(1))
            .map(|v| v.trim().parse().expect("a number"))
            .collect();
        assert_eq!(lates.len(), 24, "shift={shift}:\n{}", r.stdout);
        // At most one mtime tick (100 ns): the interrupt is taken at the next block boundary.
        assert!(
            lates.iter().all(|&l| l <= 1),
            "shift={shift}: late by {lates:?} ticks:\n{}",
            r.stdout
        );
    }
}
