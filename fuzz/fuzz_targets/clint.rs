//! CLINT (msip, mtimecmp, mtime): fuzzed register access sequences and timer firing, with
//! fuzzed hart counts and timebase frequencies (including 0 and extremes).
#![no_main]
#[path = "../common/devbench.rs"]
mod devbench;
use devbench::{DevBench, Input};
use libfuzzer_sys::fuzz_target;

const CONFIGS: &[&[(&str, &str)]] = &[
    &[],
    &[("timebase-frequency", "1")],
    &[("timebase-frequency", "0")],
    &[("timebase-frequency", "18446744073709551615")],
    &[("timebase-frequency", "1000000000")],
    &[("timebase-frequency", "3000000000")],
    &[("num-harts", "1")],
    &[("num-harts", "4095")],
];

fuzz_target!(|data: &[u8]| {
    let mut inp = Input(data);
    let cfg = CONFIGS[usize::from(inp.u8()) % CONFIGS.len()];
    let harts = u32::from(inp.u8() % 4) + 1;
    let Some(b) = DevBench::new(&breadboard_devices::clint::device_type(), cfg, harts) else {
        return;
    };
    b.run(&mut inp);
});
