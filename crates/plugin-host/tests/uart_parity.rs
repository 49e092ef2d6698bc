//! Parity proof: the built-in `ns16550a` and the same model rebuilt as a Rust SDK plugin
//! (`plugins/uart16550`, type `plugin-ns16550a`) side by side on one `virt` machine, driven
//! with the scenarios of the built-in's unit tests and a long pseudo-random access script.
//! After every step both must agree on the value read, the IRQ level, `can_receive`, the
//! chardev output and armed timers' effects. Last, issue 5's seed-001 scenario (preconfig
//! QMP script, Ibex machine, echo32 firmware) runs with its UART replaced by the plugin build
//! of `ibex-uart` from the same plugin library.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::{Path, PathBuf};
use std::rc::Rc;

use breadboard_core::chardev::MemoryBackend;
use breadboard_core::{Chardev, ChardevRegistry, DriveRegistry, TypeRegistry};
use breadboard_platform::{DeviceOption, Machine, MachineOptions};

fn plugin_path() -> PathBuf {
    common::rust_plugin("bb_uart_plugin")
}

#[derive(Clone, Copy, Debug)]
enum Op {
    W(u64, u8, u64),
    R(u64, u8),
    Rx(&'static [u8]),
    RxN(u8, usize),
    Advance(u64),
    Reset,
}
use Op::*;

struct Pair {
    m: Machine,
    ids: [usize; 2],
    outs: [MemoryBackend; 2],
}

fn pair(props: &[(&str, &str)]) -> Pair {
    pair_of(["ns16550a", "plugin-ns16550a"], props)
}

fn pair_of(types: [&str; 2], props: &[(&str, &str)]) -> Pair {
    let mut reg = TypeRegistry::new();
    breadboard_devices::register_builtin(&mut reg);
    breadboard_plugin_host::load(&plugin_path(), &mut reg).expect("uart plugin loads");
    let chardevs = Rc::new(ChardevRegistry::default());
    let outs = [MemoryBackend::default(), MemoryBackend::default()];
    for (i, o) in outs.iter().enumerate() {
        chardevs
            .add(Chardev::new(&format!("c{i}"), Box::new(o.clone())))
            .expect("chardev");
    }
    let opts = MachineOptions {
        machine: "virt".into(),
        smp: Some(1),
        icount_shift: Some(0),
        ..Default::default()
    };
    let mut m =
        Machine::create(&opts, reg, chardevs, Rc::new(DriveRegistry::default())).expect("virt");
    let mut ids = [0; 2];
    for (i, ty) in types.iter().enumerate() {
        let mut p: Vec<(String, String)> = vec![("chardev".into(), format!("c{i}"))];
        p.extend(props.iter().map(|(k, v)| ((*k).into(), (*v).into())));
        ids[i] = m
            .add_user_device(&DeviceOption {
                driver: (*ty).into(),
                id: Some(format!("u{i}")),
                props: p,
            })
            .expect("uart");
    }
    m.bind().expect("bind");
    m.reset_devices();
    Pair { m, ids, outs }
}

/// What one step observably did on one device.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    value: Option<u64>,
    irqs: u32,
    can_receive: usize,
    out_len: usize,
}

impl Pair {
    fn step(&mut self, op: Op) -> [Seen; 2] {
        if let Advance(ns) = op {
            let t = self.m.clock.now() + ns;
            self.m.clock.warp_to(t);
            self.m.fire_timers();
        }
        let mut seen = Vec::new();
        for i in 0..2 {
            let e = self.m.device(self.ids[i]).expect("dev");
            let mut d = e.cell.borrow_mut();
            let value = match op {
                W(off, size, v) => {
                    d.write(0, off, size, v);
                    None
                }
                R(off, size) => Some(d.read(0, off, size)),
                Rx(bytes) => {
                    let n = d.can_receive().min(bytes.len());
                    d.receive(&bytes[..n]);
                    Some(n as u64)
                }
                RxN(b, n) => {
                    let v = vec![b; n];
                    d.receive(&v);
                    None
                }
                Reset => {
                    d.reset();
                    None
                }
                Advance(_) => None,
            };
            seen.push(Seen {
                value,
                irqs: d
                    .irq_outputs()
                    .iter()
                    .enumerate()
                    .map(|(i, l)| u32::from(l.level()) << i)
                    .sum(),
                can_receive: d.can_receive(),
                out_len: self.outs[i].0.borrow().len(),
            });
        }
        let b = seen.pop().expect("plugin");
        let a = seen.pop().expect("builtin");
        [a, b]
    }

    fn run(&mut self, script: &[Op]) -> Vec<Seen> {
        let mut builtin_trace = Vec::new();
        for (n, &op) in script.iter().enumerate() {
            let [a, b] = self.step(op);
            assert_eq!(a, b, "step {n} ({op:?}): built-in vs plugin");
            builtin_trace.push(a);
        }
        assert_eq!(
            *self.outs[0].0.borrow(),
            *self.outs[1].0.borrow(),
            "chardev output"
        );
        builtin_trace
    }
}

// One character at 115200 baud, 8N1, 3.6864 MHz: the built-in test's timeout unit.
const CHAR_NS: u64 = 1_000_000_000 * 16 * 2 * 10 / 3_686_400;

#[test]
fn test_plugin_uart_matches_builtin_on_the_builtin_test_scenarios() {
    let scenarios: Vec<Vec<Op>> = vec![
        // reset values
        (0..8).map(|r| R(r, 1)).collect(),
        // THR to chardev, THRE re-arm and acknowledge
        vec![
            W(0, 1, u64::from(b'h') | 0xff00),
            W(0, 1, u64::from(b'i')),
            R(5, 1),
            W(1, 1, 2),
            R(2, 1),
            R(2, 1),
            W(0, 1, 0x78),
            R(2, 1),
        ],
        // 16450-mode RX
        vec![W(1, 1, 1), Rx(b"a"), R(2, 1), R(5, 1), R(0, 1), R(5, 1)],
        // FIFO trigger at 4
        vec![
            W(2, 1, 0x41),
            W(1, 1, 1),
            Rx(b"abc"),
            R(2, 1),
            Rx(b"d"),
            R(2, 1),
            R(0, 1),
            R(2, 1),
        ],
        // character timeout on the virtual clock
        vec![
            W(2, 1, 0xc1),
            W(3, 1, 0x83),
            W(0, 1, 2),
            W(1, 1, 0),
            W(3, 1, 3),
            W(1, 1, 1),
            Rx(b"xy"),
            Advance(4 * CHAR_NS - 1),
            R(2, 1),
            Advance(1),
            R(2, 1),
            R(0, 1),
            Advance(4 * CHAR_NS),
            R(2, 1),
            R(0, 1),
            Advance(100 * CHAR_NS),
            R(2, 1),
        ],
        // overrun, line status priority
        vec![
            W(2, 1, 1),
            W(1, 1, 7),
            RxN(b'z', 17),
            R(2, 1),
            R(5, 1),
            R(5, 1),
            R(2, 1),
            R(0, 1),
            R(0, 1),
            R(2, 1),
        ],
        // DLAB, loopback, modem status
        vec![
            W(1, 1, 5),
            W(3, 1, 0x80),
            W(0, 1, 0x34),
            W(1, 1, 0x12),
            R(0, 1),
            R(1, 1),
            W(3, 1, 3),
            R(1, 1),
            W(2, 1, 1),
            W(4, 1, 0x10),
            R(6, 1),
            W(0, 1, u64::from(b'L')),
            R(5, 1),
            R(0, 1),
            W(4, 1, 0x1f),
            R(6, 1),
            W(1, 1, 8),
            W(4, 1, 0x1b),
            R(2, 1),
            R(6, 1),
        ],
        // bad sizes and offsets
        vec![
            W(7, 1, 0x5a),
            W(7, 3, 0xff),
            W(0x80, 1, 0xff),
            R(7, 0),
            R(7, 1),
            R(u64::MAX, 8),
        ],
        // reset with data and IRQ pending
        vec![
            W(2, 1, 1),
            W(1, 1, 0xf),
            Rx(b"abc"),
            W(7, 1, 0x77),
            Reset,
            R(5, 1),
            R(7, 1),
        ],
    ];
    for (i, s) in scenarios.iter().enumerate() {
        let mut p = pair(&[]);
        let trace = p.run(s);
        if i == 0 {
            // Not merely equal: equal to the datasheet reset values the built-in tests assert.
            let v: Vec<u64> = trace.iter().map(|s| s.value.expect("read")).collect();
            assert_eq!(v, vec![0, 0, 1, 0, 0, 0x60, 0xb0, 0]);
        }
        if i == 1 {
            assert_eq!(
                p.outs[1].0.borrow().as_slice(),
                b"hix",
                "plugin UART wrote to its chardev"
            );
        }
    }
}

#[test]
fn test_plugin_uart_matches_builtin_with_wide_registers() {
    let mut p = pair(&[("reg-shift", "2"), ("reg-io-width", "4")]);
    p.run(&[
        W(7 << 2, 4, 0xa5),
        R(7 << 2, 4),
        R(7, 1),
        R(5 << 2, 4),
        R(8 << 2, 4),
    ]);
}

#[test]
fn test_plugin_uart_matches_builtin_on_a_random_access_script() {
    let mut p = pair(&[]);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut script = Vec::new();
    for _ in 0..5000 {
        let r = next();
        let off = r % 9;
        let size = [1u8, 1, 1, 2, 4, 8, 3][(r >> 8) as usize % 7];
        script.push(match (r >> 16) % 8 {
            0..=2 => W(off, size, (r >> 24) & 0xff),
            3..=5 => R(off, size),
            6 => RxN(b'a' + (r >> 24) as u8 % 26, (r >> 32) as usize % 20),
            _ => Advance((r >> 24) % (8 * CHAR_NS)),
        });
    }
    p.run(&script);
}

#[test]
fn test_plugin_uart_realize_errors_match_builtin() {
    let mut reg = TypeRegistry::new();
    breadboard_devices::register_builtin(&mut reg);
    breadboard_plugin_host::load(&plugin_path(), &mut reg).expect("loads");
    let opts = MachineOptions {
        machine: "virt".into(),
        ..Default::default()
    };
    let mut m = Machine::create(
        &opts,
        reg,
        Rc::new(ChardevRegistry::default()),
        Rc::new(DriveRegistry::default()),
    )
    .expect("virt");
    let mut err = |ty: &str, k: &str, v: &str| {
        let e = m
            .add_user_device(&DeviceOption {
                driver: ty.into(),
                id: None,
                props: vec![(k.into(), v.into())],
            })
            .expect_err("refused");
        std::error::Error::source(&e)
            .map(ToString::to_string)
            .unwrap_or_default()
    };
    for (k, v) in [
        ("reg-io-width", "3"),
        ("reg-shift", "3"),
        ("clock-frequency", "0"),
        ("chardev", "nope"),
        ("bogus", "1"),
    ] {
        let a = err("ns16550a", k, v);
        let b = err("plugin-ns16550a", k, v);
        assert_eq!(a.replace("'ns16550a.", "'plugin-ns16550a."), b, "{k}={v}");
    }
}

#[test]
fn test_plugin_ibex_uart_matches_builtin_on_a_random_access_script() {
    let mut p = pair_of(["ibex-uart", "plugin-ibex-uart"], &[]);
    // Turn on TX/RX with a baud rate so timeouts can happen, then random traffic.
    let mut script = vec![
        W(0x10, 4, 0x0100_0003),
        W(0x04, 4, 0xff),
        W(0x30, 4, 0x8000_0010),
    ];
    let mut x: u64 = 0x1234_5678_9abc_def1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..5000 {
        let r = next();
        let off = (r % 14) * 4 + u64::from((r >> 60) == 0);
        let size = [4u8, 4, 4, 4, 1, 8][(r >> 8) as usize % 6];
        script.push(match (r >> 16) % 8 {
            0..=2 => W(off, size, (r >> 24) & 0xffff_ffff),
            3..=5 => R(off, size),
            6 => RxN(b'a' + (r >> 24) as u8 % 26, (r >> 32) as usize % 40),
            _ => Advance((r >> 24) % 2_000_000),
        });
    }
    let trace = p.run(&script);
    assert!(
        trace.iter().any(|s| s.irqs != 0),
        "the script exercises interrupts"
    );
}

fn echo32() -> breadboard_platform::Image {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../firmware/echo32/echo32.elf");
    breadboard_platform::Image {
        name: path.display().to_string(),
        data: std::fs::read(&path).expect("echo32.elf"),
    }
}

fn run_until(m: &mut Machine, out: &MemoryBackend, done: impl Fn(&str) -> bool) -> String {
    let start = std::time::Instant::now();
    loop {
        m.pump_chardevs();
        m.fire_timers();
        m.run_slice(10_000);
        let text = String::from_utf8_lossy(&out.0.borrow()).into_owned();
        if done(&text) || start.elapsed() > std::time::Duration::from_secs(20) {
            return text;
        }
    }
}

#[test]
fn test_seed_001_scenario_with_the_plugin_uart() {
    let mut reg = TypeRegistry::new();
    breadboard_devices::register_builtin(&mut reg);
    let loaded = breadboard_plugin_host::load(&plugin_path(), &mut reg).expect("loads");
    assert_eq!(loaded.types, vec!["plugin-ibex-uart", "plugin-ns16550a"]);
    let chardevs = Rc::new(ChardevRegistry::default());
    let out = MemoryBackend::default();
    let serial = Chardev::new("serial0", Box::new(out.clone()));
    chardevs.add(Rc::clone(&serial)).expect("chardev");
    let opts = MachineOptions {
        machine: "none".into(),
        cpu: Some("lowrisc-ibex".into()),
        ..Default::default()
    };
    let mut m =
        Machine::create(&opts, reg, chardevs, Rc::new(DriveRegistry::default())).expect("none");
    m.enter_preconfig().expect("preconfig");
    let mut ctx = breadboard_qmp::QmpContext::new(
        breadboard_platform::BootOptions {
            kernel: Some(echo32()),
            ..Default::default()
        },
        false,
    );
    // The seed script, with only the UART's driver name changed.
    let seed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/qmp/seed.qmp"),
    )
    .expect("seed.qmp");
    assert!(seed.contains("driver=ibex-uart "));
    let script = Path::new(env!("CARGO_TARGET_TMPDIR")).join("seed-plugin-uart.qmp");
    std::fs::write(
        &script,
        seed.replace("driver=ibex-uart ", "driver=plugin-ibex-uart "),
    )
    .expect("write");
    let n = breadboard_qmp::run_script(&script, &mut m, &mut ctx).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(n, 13);
    let uart = m.resolve_device("uart").expect("uart");
    assert_eq!(m.device(uart).expect("dev").type_name, "plugin-ibex-uart");

    let text = run_until(&mut m, &out, |t| t.contains("ready\r\n"));
    assert_eq!(text, "echo32 ready\r\n");
    serial.push_input(b"hello, breadboard");
    let text = run_until(&mut m, &out, |t| t.ends_with("breadboard"));
    assert_eq!(text, "echo32 ready\r\nhello, breadboard");
    serial.push_input(b"?");
    let text = run_until(&mut m, &out, |t| t.contains("irqs=") && t.ends_with("\r\n"));
    let n: u32 = text
        .rsplit_once("irqs=")
        .and_then(|(_, t)| t.strip_suffix("\r\n"))
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("{text:?}"));
    assert!(
        text.starts_with("echo32 ready\r\nhello, breadboard?irqs="),
        "{text:?}"
    );
    // rx_watermark interrupts went through the plugin's IRQ output 1 to the Ibex PLIC.
    assert!((2..=18).contains(&n), "irqs={n}");
}
