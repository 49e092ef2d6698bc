//! SiFive PLIC: fuzzed register access sequences, source levels (GPIO inputs) and resets,
//! with fuzzed source/priority/context configurations.
#![no_main]
#[path = "../common/devbench.rs"]
mod devbench;
use devbench::{DevBench, Input};
use libfuzzer_sys::fuzz_target;

const CONFIGS: &[&[(&str, &str)]] = &[
    &[],
    &[("hart-config", "M")],
    &[("num-sources", "1"), ("num-priorities", "1")],
    &[("num-sources", "0")],
    &[("num-priorities", "0")],
    &[("num-priorities", "4294967295")],
    &[("num-sources", "1023"), ("hart-config", "M,MS,S")],
    &[("num-harts", "1"), ("size", "0x1000")],
    &[("size", "0x4000000")],
];

fuzz_target!(|data: &[u8]| {
    let mut inp = Input(data);
    let cfg = CONFIGS[usize::from(inp.u8()) % CONFIGS.len()];
    let harts = u32::from(inp.u8() % 4) + 1;
    let Some(b) = DevBench::new(&breadboard_devices::plic::device_type(), cfg, harts) else {
        return;
    };
    b.run(&mut inp);
});
