//! Whole-machine fuzzer in the style of QEMU's generic-fuzz: the `virt` board with every
//! built-in device type mapped (a second ns16550a, goldfish-rtc, ibex-uart, ibex-plic, CLINT,
//! PLIC, sifive_test, sysbus-memory on the platform bus; virtio-blk on a small temp image,
//! virtio-rng and virtio-console on the virtio-mmio transports), reset at the start of every
//! input, then driven by a sequence of operations (the board and the interpreter are in
//! `common/machine.rs`, shared with `snapshot_load`):
//!
//! - MMIO reads and writes of 1/2/4/8 bytes at a mapped region's base plus any 16-bit offset
//!   (unaligned, past the device's end, into the gap after it) or at any 64-bit address,
//!   through the system bus a hart uses (`Machine::with_hart_bus`), so machine requests
//!   (shutdown, reset) are seen as the main loop sees them;
//! - DMA patterns: bytes written into guest RAM, and split-virtqueue descriptors (address,
//!   length, flags, next) with rings, so the devices' queue code meets malformed chains;
//! - a Linux-like virtio queue bring-up on one transport (to reach the queue code quickly);
//! - clock steps: advance virtual time (`-icount`) by any amount or to the next timer deadline
//!   and fire the expired timers;
//! - a machine reset in the middle.
//!
//! Asserts: no panic; the machine can still be reset and read afterwards.
#![no_main]
#[path = "../common/machine.rs"]
mod machine;
use breadboard_riscv::Bus;
use libfuzzer_sys::fuzz_target;
use machine::{Input, build, run};

fuzz_target!(|data: &[u8]| {
    // A fresh machine per input (creation is cheap next to a run; a reused machine carries
    // virtual time and drive contents over, which made findings irreproducible), then the
    // reset the main loop does at power-on.
    let mut f = build();
    f.m.system_reset().expect("machine reset");
    run(&mut f, &mut Input(data));
    // Still usable: a reset and a read through the bus.
    f.m.system_reset().expect("machine reset after the input");
    let _ = f.m.with_hart_bus(0, |_, bus| bus.read(0x1000_0005, 1));
});
