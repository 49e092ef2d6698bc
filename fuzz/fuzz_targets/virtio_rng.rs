//! virtio-rng behind virtio-mmio: fuzzed transport register accesses and guest RAM contents
//! (descriptor tables, rings, buffers, including ones pointing at MMIO or outside RAM).
#![no_main]
#[path = "../common/virtiobench.rs"]
mod virtiobench;
use breadboard_core::DriveRegistry;
use libfuzzer_sys::fuzz_target;
use virtiobench::{Input, VirtioBench};

fuzz_target!(|data: &[u8]| {
    let drives = DriveRegistry::default();
    let b = VirtioBench::new(&breadboard_devices::virtio::rng::device_type(), &[], &drives);
    b.run(&mut Input(data));
    let _ = b.irqs.changes();
});
