//! Cost of one MMIO access to a plugin device vs the same built-in device, same run
//! (issue 6's benchmark; goal: plugin <= 1.5x built-in).
//!
//! Two pairs: the built-in `ns16550a` vs `plugin-ns16550a`, and `ibex-uart` vs
//! `plugin-ibex-uart` (the same models built as a Rust SDK plugin). Each access goes through `AddressSpace::read`/`write`, the path a hart's
//! MMIO access takes after its TLB misses RAM: region lookup, device borrow, device call. A
//! plain read/write register is used (16550 SCR with 1-byte accesses; Ibex INTR_ENABLE with
//! 4-byte ones, whose write re-evaluates all eight IRQ outputs) so the model work is small
//! and the difference is the plugin boundary itself.
//!
//! Run: `cargo run --release -p breadboard-plugin-host --example mmio_cost [iterations]`
//! (builds the plugin as an example of the same package first: `cargo build --release -p
//! breadboard-plugin-host --examples`).

#![allow(clippy::expect_used, clippy::indexing_slicing)]

use std::hint::black_box;
use std::path::Path;
use std::rc::Rc;
use std::time::Instant;

use breadboard_core::{ChardevRegistry, DriveRegistry, TypeRegistry};
use breadboard_platform::{DeviceOption, Machine, MachineOptions};

fn main() {
    let iters: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5_000_000);
    let exe = std::env::current_exe().expect("exe");
    let plugin = exe
        .parent()
        .unwrap_or(Path::new("."))
        .join("libbb_uart_plugin.so");
    let mut reg = TypeRegistry::new();
    breadboard_devices::register_builtin(&mut reg);
    breadboard_plugin_host::load(&plugin, &mut reg)
        .expect("build the examples first: libbb_uart_plugin.so");
    let opts = MachineOptions {
        machine: "virt".into(),
        smp: Some(1),
        ..Default::default()
    };
    let mut m = Machine::create(
        &opts,
        reg,
        Rc::new(ChardevRegistry::default()),
        Rc::new(DriveRegistry::default()),
    )
    .expect("virt");
    let mut bases = Vec::new();
    let devices = [
        ("ns16550a", "builtin ns16550a", 7, 1),
        ("plugin-ns16550a", "plugin ns16550a", 7, 1),
        ("ibex-uart", "builtin ibex-uart", 4, 4),
        ("plugin-ibex-uart", "plugin ibex-uart", 4, 4),
    ];
    for (ty, id, _, _) in devices {
        let d = m
            .add_user_device(&DeviceOption {
                driver: ty.into(),
                id: Some(id.replace(' ', "-")),
                props: vec![],
            })
            .expect("device");
        bases.push((id, d));
    }
    m.bind().expect("bind");
    m.reset_devices();
    let addr = |d: usize| m.device(d).and_then(|e| e.mapped[0]).expect("mapped");
    let targets: Vec<(&str, u64, u8)> = bases
        .iter()
        .zip(devices)
        .map(|(&(id, d), (_, _, off, size))| (id, addr(d) + off, size))
        .collect();

    println!(
        "mmio_cost: {iters} accesses per measurement, ns per access (best of 7 rounds, devices interleaved)"
    );
    // Rounds interleave the devices so host noise (other load, frequency changes) hits both
    // sides of a pair alike; the best round of each is kept.
    let mut results = vec![(f64::MAX, f64::MAX); targets.len()];
    for _ in 0..7 {
        for (&(_, a, size), best) in targets.iter().zip(results.iter_mut()) {
            let t = Instant::now();
            for i in 0..iters {
                m.space.write(black_box(a), size, i & 0x7f).expect("write");
            }
            best.1 = best.1.min(t.elapsed().as_nanos() as f64 / iters as f64);
            let t = Instant::now();
            let mut sum = 0u64;
            for _ in 0..iters {
                sum = sum.wrapping_add(m.space.read(black_box(a), size).expect("read"));
            }
            black_box(sum);
            best.0 = best.0.min(t.elapsed().as_nanos() as f64 / iters as f64);
        }
    }
    for (&(name, _, _), (r, w)) in targets.iter().zip(&results) {
        println!("{name:>18}: read {r:6.2} ns  write {w:6.2} ns");
    }
    for (pair, r) in ["ns16550a", "ibex-uart"].iter().zip(results.chunks(2)) {
        if let [(br, bw), (pr, pw)] = r {
            println!(
                "{pair:>9} plugin/built-in: read {:.2}x  write {:.2}x  (goal <= 1.5x)",
                pr / br,
                pw / bw
            );
        }
    }
}
