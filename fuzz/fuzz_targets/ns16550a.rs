//! ns16550a UART: fuzzed register access sequences (every size, unaligned, past the end),
//! chardev input and timer firing, with fuzzed reg-shift / io-width / clock properties.
#![no_main]
#[path = "../common/devbench.rs"]
mod devbench;
use devbench::{DevBench, Input};
use libfuzzer_sys::fuzz_target;

const CONFIGS: &[&[(&str, &str)]] = &[
    &[("chardev", "c0")],
    &[],
    &[("chardev", "c0"), ("reg-shift", "2"), ("reg-io-width", "4")],
    &[("chardev", "c0"), ("reg-shift", "1"), ("reg-io-width", "2")],
    &[("chardev", "c0"), ("clock-frequency", "0")],
    &[("chardev", "c0"), ("clock-frequency", "1")],
    &[("chardev", "c0"), ("clock-frequency", "4294967295")],
    &[("chardev", "c0"), ("reg-io-width", "3")],
];

fuzz_target!(|data: &[u8]| {
    let mut inp = Input(data);
    let cfg = CONFIGS[usize::from(inp.u8()) % CONFIGS.len()];
    let Some(b) = DevBench::new(&breadboard_devices::ns16550a::device_type(), cfg, 1) else {
        return;
    };
    b.run(&mut inp);
});
