//! Benchmark (issue 4): compose `virt` plus N dynamic devices on the platform bus and write the
//! DTB; and MMIO dispatch cost with few vs many regions. Prints one line per measurement:
//! `compose N=<n> ms=<ms>` and `dispatch regions=<n> ns=<ns per access>`.
//!
//! Run: `cargo run --release -p breadboard-platform --example compose`

use std::rc::Rc;
use std::time::Instant;

use breadboard_core::{ChardevRegistry, DriveRegistry, TypeRegistry};
use breadboard_platform::{DeviceOption, Machine, MachineOptions};

fn machine() -> Machine {
    let mut reg = TypeRegistry::new();
    breadboard_devices::register_builtin(&mut reg);
    let opts = MachineOptions {
        machine: "virt".into(),
        ..Default::default()
    };
    match Machine::create(
        &opts,
        reg,
        Rc::new(ChardevRegistry::default()),
        Rc::new(DriveRegistry::default()),
    ) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("compose: {e}");
            std::process::exit(1);
        }
    }
}

/// Adds `n` devices without IRQs (the bus has 32 IRQs; memories need none) and writes the DTB.
fn compose(n: usize) -> f64 {
    let t = Instant::now();
    let mut m = machine();
    for i in 0..n {
        let opt = DeviceOption {
            driver: "sysbus-memory".into(),
            id: Some(format!("m{i}")),
            props: vec![("size".into(), "0x1000".into())],
        };
        if let Err(e) = m.add_user_device(&opt) {
            eprintln!("compose: {e}");
            std::process::exit(1);
        }
    }
    let dtb = match m.dump_dtb(None) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("compose: {e}");
            std::process::exit(1);
        }
    };
    std::hint::black_box(dtb);
    t.elapsed().as_secs_f64() * 1e3
}

/// ns per MMIO read of the UART's scratch register with `n` extra regions mapped.
fn dispatch(n: usize) -> f64 {
    let mut m = machine();
    for i in 0..n {
        let opt = DeviceOption {
            driver: "ns16550a".into(),
            id: Some(format!("u{i}")),
            props: vec![],
        };
        let id = match m.add_user_device(&opt) {
            Ok(id) => id,
            Err(e) => {
                eprintln!("dispatch: {e}");
                std::process::exit(1);
            }
        };
        if let Err(e) = m.map_region(id, 0, 0x4000_0000 + (i as u64) * 0x1000) {
            eprintln!("dispatch: {e}");
            std::process::exit(1);
        }
    }
    let iters = 2_000_000u64;
    let t = Instant::now();
    let mut acc = 0u64;
    for _ in 0..iters {
        acc = acc.wrapping_add(m.space.read(0x1000_0007, 1).unwrap_or(0));
    }
    std::hint::black_box(acc);
    t.elapsed().as_secs_f64() * 1e9 / iters as f64
}

fn main() {
    for n in [10, 100, 1000] {
        let best = (0..5).map(|_| compose(n)).fold(f64::MAX, f64::min);
        println!("compose N={n} ms={best:.2}");
    }
    for n in [10, 1000] {
        let best = (0..3).map(|_| dispatch(n)).fold(f64::MAX, f64::min);
        println!("dispatch regions={} ns={best:.1}", n + 20);
    }
}
