//! The conformance suite every built-in device type runs: made through its `DeviceType`
//! factory with default properties, it must survive any guest access (every offset, sizes
//! 1/2/4/8, all-zeros and all-ones, past the end, impossible sizes) and any host entry point
//! (GPIO lines, timer tokens, chardev input) without panicking; reset must bring the chosen
//! registers back to their power-on values and every IRQ output low; its DT node must be a
//! blob `vm-fdt` finishes and `dtc` accepts.
//!
//! Regions up to 64 KiB are walked at every offset. Larger ones (the PLIC's 6 MiB) are walked
//! at every offset of the first 64 KiB, the first 16 bytes of every later 4 KiB page and the
//! last 16 bytes: that reaches each register block (the PLIC's context registers sit at page
//! starts) while keeping the suite to seconds.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

/// Offsets to walk in a region of `size` bytes.
pub fn sample_offsets(size: u64) -> Vec<u64> {
    const FULL: u64 = 0x1_0000;
    if size <= FULL {
        return (0..size).collect();
    }
    let mut v: Vec<u64> = (0..FULL).collect();
    let mut page = FULL;
    while page < size {
        v.extend(page..(page + 16).min(size));
        page += 0x1000;
    }
    v.extend(size.saturating_sub(16)..size);
    v.sort_unstable();
    v.dedup();
    v
}

/// Defines the conformance tests for one device type.
///
/// `props` are given to the factory as text; `reset_checks` are `(region, offset, size)`
/// reads without side effects after reset, whose values a reset must restore.
macro_rules! device_conformance {
    (
        $suite:ident,
        $type_fn:path,
        props: [$(($k:expr, $v:expr)),* $(,)?],
        reset_checks: [$(($region:expr, $off:expr, $size:expr)),* $(,)?] $(,)?
    ) => {
        mod $suite {
            use breadboard_core::{Device, Props, RawValue};
            use crate::conformance::sample_offsets;
            use crate::testutil::{TestEnv, dtc_decompile, fdt_blob, resources, target};

            const PROPS: &[(&str, &str)] = &[$(($k, $v)),*];
            const RESET_CHECKS: &[(usize, u64, u8)] = &[$(($region, $off, $size)),*];
            const SIZES: [u8; 4] = [1, 2, 4, 8];

            fn make() -> (TestEnv, Box<dyn Device>) {
                let env = TestEnv::with_harts(2);
                let mut dev = env.make(&$type_fn(), PROPS);
                dev.reset();
                (env, dev)
            }

            fn read_checks(dev: &mut dyn Device) -> Vec<u64> {
                RESET_CHECKS.iter().map(|&(r, o, s)| dev.read(r, o, s)).collect()
            }

            /// Every access the conformance walk makes, plus the host entry points.
            fn scribble(env: &TestEnv, dev: &mut dyn Device) {
                for (r, spec) in dev.regions().iter().enumerate() {
                    for off in sample_offsets(spec.size()) {
                        for size in SIZES {
                            dev.read(r, off, size);
                            dev.write(r, off, size, u64::MAX);
                            dev.read(r, off, size);
                            dev.write(r, off, size, 0);
                            dev.read(r, off, size);
                        }
                    }
                }
                let inputs = dev.gpio_inputs();
                for line in 0..inputs.saturating_add(4) {
                    dev.set_gpio(line, true);
                }
                let room = dev.can_receive();
                dev.receive(&vec![0x55; room + 3]);
                env.advance(dev, 1_000_000_000);
                for line in 0..inputs.saturating_add(4) {
                    dev.set_gpio(line, false);
                }
            }

            #[test]
            fn type_metadata_is_complete() {
                let t = $type_fn();
                assert!(!t.name.is_empty());
                assert!(!t.description.is_empty());
                assert!(t.sysbus);
                for p in &t.props {
                    assert!(!p.doc.is_empty(), "{}.{} has no doc", t.name, p.name);
                }
                Props::build(&t.name, &t.props, PROPS.iter().map(|&(k, v)| (k, RawValue::Str(v))))
                    .expect("the defaults validate against the type's own schema");
                let (_env, dev) = make();
                assert!(!dev.regions().is_empty(), "a sysbus device maps something");
                for r in dev.regions() {
                    assert!(r.size() > 0);
                }
            }

            #[test]
            fn every_offset_and_size_is_harmless() {
                let (env, mut dev) = make();
                let before: Vec<u64> = dev.regions().iter().map(|r| r.size()).collect();
                scribble(&env, dev.as_mut());
                let after: Vec<u64> = dev.regions().iter().map(|r| r.size()).collect();
                assert_eq!(before, after, "regions are fixed once the device exists");
                assert_eq!(
                    dev.take_machine_request(),
                    None,
                    "0 and all-ones are no device's command"
                );
            }

            #[test]
            fn accesses_past_the_end_and_impossible_sizes_are_harmless() {
                let (_env, mut dev) = make();
                let regions = dev.regions();
                for (r, spec) in regions.iter().enumerate() {
                    let end = spec.size();
                    let offsets = [
                        end,
                        end + 1,
                        end + 0x1000,
                        end.saturating_sub(1),
                        end.saturating_sub(3),
                        u64::MAX - 7,
                        u64::MAX,
                    ];
                    for off in offsets {
                        for size in [0u8, 1, 2, 3, 4, 5, 8, 16, 255] {
                            let in_range = off.checked_add(u64::from(size)).is_some_and(|e| e <= end);
                            let v = dev.read(r, off, size);
                            if !in_range || !crate::is_access_size(size) {
                                assert_eq!(v, 0, "read at {off:#x} size {size} is a guest error");
                            }
                            dev.write(r, off, size, u64::MAX);
                        }
                    }
                }
                // A region index the device does not have.
                assert_eq!(dev.read(regions.len() + 1, 0, 4), 0);
                dev.write(regions.len() + 1, 0, 4, u64::MAX);
            }

            #[test]
            fn reset_restores_initial_register_values() {
                let (env, mut dev) = make();
                let initial = read_checks(dev.as_mut());
                assert_eq!(read_checks(dev.as_mut()), initial, "the chosen reads have no side effects");
                scribble(&env, dev.as_mut());
                dev.reset();
                assert_eq!(read_checks(dev.as_mut()), initial);
                assert_eq!(dev.take_machine_request(), None);
            }

            #[test]
            fn irq_outputs_are_low_after_reset() {
                let (env, mut dev) = make();
                for (i, l) in dev.irq_outputs().iter().enumerate() {
                    assert!(!l.level(), "output {i} high at power-on");
                }
                scribble(&env, dev.as_mut());
                for line in 0..dev.gpio_inputs() {
                    dev.set_gpio(line, false);
                }
                dev.reset();
                for (i, l) in dev.irq_outputs().iter().enumerate() {
                    assert!(!l.level(), "output {i} high after reset");
                }
            }

            #[test]
            fn snapshot_round_trips_or_is_refused() {
                let (env, mut dev) = make();
                scribble(&env, dev.as_mut());
                if !dev.regions().is_empty() {
                    for off in (0..64).step_by(4) {
                        dev.write(0, off, 4, 0x5a5a_0000 | off);
                    }
                }
                let blob = match dev.snapshot_save() {
                    Ok(b) => b,
                    Err(breadboard_core::SnapshotError::Unsupported(_)) => return,
                    Err(e) => panic!("save failed: {e}"),
                };
                let (_env2, mut fresh) = make();
                fresh.snapshot_load(&blob).expect("load");
                assert_eq!(fresh.snapshot_save().expect("save again"), blob, "state did not round-trip");
                for n in 0..blob.len() {
                    let (_env3, mut other) = make();
                    assert!(other.snapshot_load(&blob[..n]).is_err(), "a {n}-byte prefix was accepted");
                }
                let mut long = blob.clone();
                long.push(0);
                let (_env4, mut other) = make();
                assert!(other.snapshot_load(&long).is_err(), "trailing bytes were accepted");
            }

            #[test]
            fn timer_tokens_without_armed_timers_are_harmless() {
                let (_env, mut dev) = make();
                for token in [0, 1, 2, 3, 100, u64::MAX] {
                    dev.timer(token);
                }
                for (i, l) in dev.irq_outputs().iter().enumerate() {
                    assert!(!l.level(), "a stray timer raised output {i}");
                }
            }

            #[test]
            fn dt_node_is_a_valid_blob() {
                let (_env, dev) = make();
                let mut res = resources(dev.as_ref(), 0x1000_0000);
                res.irqs = (0..dev.irq_outputs().len())
                    .map(|i| target(1 + (i as u32 % 2), &[i as u32 + 1]))
                    .collect();
                res.cpu_intc_phandles = vec![1, 2];
                res.default_interrupt_parent = Some(1);
                if dev.needs_phandle() || dev.irq_specifier(1).is_some() {
                    res.phandle = Some(0x10);
                }
                let blob = fdt_blob(dev.as_ref(), &res);
                assert!(blob.len() > 40, "a header and a root node at least");
                if let Some(dts) = dtc_decompile(&blob) {
                    assert!(
                        dts.contains("@10000000 {"),
                        "the node is named after its unit address:\n{dts}"
                    );
                }
            }
        }
    };
}

device_conformance!(
    sysbus_memory,
    crate::memory::device_type,
    props: [("size", "64K")],
    reset_checks: [],
);

device_conformance!(
    ns16550a,
    crate::ns16550a::device_type,
    props: [],
    reset_checks: [
        (0, 0, 1), (0, 1, 1), (0, 2, 1), (0, 3, 1),
        (0, 4, 1), (0, 5, 1), (0, 6, 1), (0, 7, 1),
    ],
);

device_conformance!(
    ns16550a_wide,
    crate::ns16550a::device_type,
    props: [("reg-shift", "2"), ("reg-io-width", "4")],
    reset_checks: [(0, 4, 4), (0, 8, 4), (0, 12, 4), (0, 16, 4), (0, 20, 4), (0, 28, 4)],
);

device_conformance!(
    clint,
    crate::clint::device_type,
    props: [],
    reset_checks: [(0, 0, 4), (0, 4, 4), (0, 0x4000, 8), (0, 0x400c, 4), (0, 0xbff8, 8)],
);

device_conformance!(
    plic,
    crate::plic::device_type,
    props: [],
    reset_checks: [
        (0, 4, 4), (0, 4 * 96, 4), (0, 0x1000, 4), (0, 0x1008, 4),
        (0, 0x2000, 4), (0, 0x2184, 4), (0, 0x20_0000, 4), (0, 0x20_0004, 4),
        (0, 0x20_3000, 4),
    ],
);

device_conformance!(
    sifive_test,
    crate::sifive_test::device_type,
    props: [],
    reset_checks: [(0, 0, 4)],
);

device_conformance!(
    goldfish_rtc,
    crate::goldfish_rtc::device_type,
    props: [("base-ns", "1000000000")],
    reset_checks: [(0, 0x04, 4), (0, 0x08, 4), (0, 0x0c, 4), (0, 0x10, 4), (0, 0x18, 4)],
);

device_conformance!(
    ibex_uart,
    crate::ibex_uart::device_type,
    props: [],
    reset_checks: [
        (0, 0x00, 4), (0, 0x04, 4), (0, 0x10, 4), (0, 0x14, 4), (0, 0x20, 4), (0, 0x24, 4),
        (0, 0x28, 4), (0, 0x30, 4),
    ],
);

device_conformance!(
    ibex_plic,
    crate::ibex_plic::device_type,
    props: [],
    reset_checks: [
        (0, 8, 4), (0, 0x1000, 4), (0, 0x2000, 4), (0, 0x20_0000, 4), (0, 0x400_0000, 4),
    ],
);

device_conformance!(
    virtio_mmio,
    crate::virtio::mmio::device_type,
    props: [],
    reset_checks: [(0, 0x000, 4), (0, 0x004, 4), (0, 0x008, 4), (0, 0x00c, 4), (0, 0x060, 4), (0, 0x070, 4)],
);

#[test]
fn test_every_builtin_type_has_a_conformance_suite() {
    let covered = [
        "sysbus-memory",
        "ns16550a",
        "clint",
        "plic",
        "sifive_test",
        "goldfish-rtc",
        "ibex-uart",
        "ibex-plic",
        "virtio-mmio",
    ];
    let mut reg = breadboard_core::TypeRegistry::new();
    crate::register_builtin(&mut reg);
    // Memory-mapped types; virtio backends have no registers of their own (their transport has).
    let names: Vec<&str> = reg
        .iter()
        .filter(|t| t.sysbus)
        .map(|t| t.name.as_ref())
        .collect();
    let mut sorted = covered.to_vec();
    sorted.sort_unstable();
    assert_eq!(
        names, sorted,
        "a new device type needs a device_conformance! line"
    );
}

#[test]
fn test_register_builtin_twice_keeps_first_registration() {
    let mut reg = breadboard_core::TypeRegistry::new();
    crate::register_builtin(&mut reg);
    crate::register_builtin(&mut reg);
    let mut once = breadboard_core::TypeRegistry::new();
    crate::register_builtin(&mut once);
    assert_eq!(reg.iter().count(), once.iter().count());
    assert!(reg.iter().count() >= 12);
    assert!(reg.help().contains("name \"ns16550a\""));
}

#[test]
fn test_sample_offsets_cover_small_regions_fully_and_large_ones_by_page() {
    assert_eq!(sample_offsets(8), (0..8).collect::<Vec<u64>>());
    let big = sample_offsets(0x60_0000);
    assert!(big.contains(&0x20_0004), "PLIC context 0 claim");
    assert!(big.contains(&0x20_1000), "PLIC context 1 threshold");
    assert!(big.contains(&0x5f_ffff));
    assert!(!big.contains(&0x60_0000));
}
