//! Micro benchmark: runs a bare-metal ELF on the minimal test machine (RAM at 0x8000_0000, UART
//! at 0x1000_0000, finisher at 0x10_0000, CLINT at 0x200_0000) and prints guest MIPS.
//!
//! `cargo run --release -p breadboard-riscv --example mips -- [--rv32] [-d in_asm,int,exec]
//!  [--max N] [--slice N] [--inexact-budget] [--s-mode] [--dtb FILE] [--load FILE@ADDR]... [ELF]`
//! (default ELF: bench/workload/workload.elf). `--dtb` loads a device tree at 0x8220_0000 and
//! passes it in a1, as firmware like OpenSBI expects; `--s-mode` gives the hart S-mode. RV64
//! harts have F and D (like the `rv64` CPU model), RV32 ones do not.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::time::Instant;

use breadboard_riscv::{Extensions, TraceFlags, Xlen};
use support::Machine;

fn main() {
    let mut args = std::env::args().skip(1);
    let mut xlen = Xlen::Rv64;
    let mut trace = TraceFlags::default();
    let mut max = 20_000_000_000u64;
    let mut slice = 1_000_000u64;
    let mut path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bench/workload/workload.elf");
    let mut s_mode = false;
    let mut exact_budget = true;
    let mut dtb: Option<PathBuf> = None;
    let mut loads: Vec<(PathBuf, u64)> = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rv32" => xlen = Xlen::Rv32,
            "--s-mode" => s_mode = true,
            "--inexact-budget" => exact_budget = false,
            "--dtb" => dtb = args.next().map(PathBuf::from),
            "--load" => {
                let spec = args.next().unwrap_or_default();
                let (file, addr) = spec.split_once('@').unwrap_or((&spec, "0"));
                let addr = u64::from_str_radix(addr.trim_start_matches("0x"), 16).unwrap_or(0);
                loads.push((PathBuf::from(file), addr));
            }
            "-d" => {
                for t in args.next().unwrap_or_default().split(',') {
                    match t {
                        "in_asm" => trace.in_asm = true,
                        "int" => trace.int = true,
                        "exec" => trace.exec = true,
                        other => eprintln!("unknown -d item {other}"),
                    }
                }
            }
            "--max" => max = args.next().and_then(|s| s.parse().ok()).unwrap_or(max),
            "--slice" => slice = args.next().and_then(|s| s.parse().ok()).unwrap_or(slice),
            p => path = PathBuf::from(p),
        }
    }
    if trace != TraceFlags::default() {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_max_level(tracing::Level::TRACE)
            .init();
    }
    let loaded = Machine::from_elf_with(&path, xlen, |c| {
        if xlen == Xlen::Rv64 {
            c.extensions.f = true;
            c.extensions.d = true;
        }
        if s_mode {
            c.extensions = Extensions {
                s: true,
                ..c.extensions
            };
        }
    });
    let mut m = match loaded {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    m.hart.set_trace(trace);
    m.hart.set_exact_budget(exact_budget);
    for (file, addr) in &loads {
        let bytes = std::fs::read(file).unwrap_or_default();
        if let Err(e) = m.bus.load(*addr, &bytes) {
            eprintln!("{}: {e}", file.display());
        }
    }
    if let Some(d) = &dtb {
        let bytes = std::fs::read(d).unwrap_or_default();
        if let Err(e) = m.bus.load(0x8220_0000, &bytes) {
            eprintln!("{}: {e}", d.display());
        }
        m.hart.set_x(11, 0x8220_0000);
    }
    let t0 = Instant::now();
    let outcome = m.run(max, slice);
    let dt = t0.elapsed().as_secs_f64();
    let n = m.hart.instret();
    print!("{}", m.bus.uart_text());
    println!(
        "outcome: {outcome:?}  pc={:#x}  instructions: {n}  time: {dt:.3} s  MIPS: {:.1}",
        m.hart.pc(),
        n as f64 / dt / 1e6
    );
}
