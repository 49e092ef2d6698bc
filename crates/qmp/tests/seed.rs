//! The seed scenario (`tests/qmp/seed.qmp`): an OpenTitan-like machine built from a
//! preconfig session on `-M none -cpu lowrisc-ibex`, running the echo32 firmware, whose UART
//! echoes what it receives through rx_watermark → PLIC → MEIP.
//!
//! `seed_script_in_process` runs the script with the in-process runner and steps the machine
//! itself (no binary needed). `seed_script_with_binary` runs the real binary with
//! `-qmp-script` and talks to the UART over its Unix socket chardev.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::rc::Rc;
use std::time::{Duration, Instant};

use breadboard_core::chardev::MemoryBackend;
use breadboard_core::{Chardev, ChardevRegistry, DriveRegistry, TypeRegistry};
use breadboard_platform::{BootOptions, Image, Machine, MachineOptions, Phase};
use breadboard_qmp::{QmpContext, run_script};

fn echo32() -> Image {
    let path = common::repo().join("firmware/echo32/echo32.elf");
    Image {
        name: path.display().to_string(),
        data: std::fs::read(&path).expect("echo32.elf"),
    }
}

/// Runs the machine's slices until `done(output)` (or 20 s pass); returns the output.
fn run_until(m: &mut Machine, out: &MemoryBackend, done: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        m.pump_chardevs();
        m.fire_timers();
        m.run_slice(10_000);
        let text = String::from_utf8_lossy(&out.0.borrow()).into_owned();
        if done(&text) || start.elapsed() > Duration::from_secs(20) {
            return text;
        }
    }
}

/// The `N` of the last `irqs=N\r\n` line, once complete.
pub fn irq_count(text: &str) -> Option<u32> {
    let (_, tail) = text.rsplit_once("irqs=")?;
    tail.strip_suffix("\r\n")?.parse().ok()
}

#[test]
fn seed_script_in_process() {
    let mut reg = TypeRegistry::new();
    breadboard_devices::register_builtin(&mut reg);
    let chardevs = Rc::new(ChardevRegistry::default());
    let out = MemoryBackend::default();
    let serial = Chardev::new("serial0", Box::new(out.clone()));
    chardevs.add(Rc::clone(&serial)).unwrap();
    let opts = MachineOptions {
        machine: "none".into(),
        cpu: Some("lowrisc-ibex".into()),
        ..Default::default()
    };
    let mut m = Machine::create(&opts, reg, chardevs, Rc::new(DriveRegistry::default())).unwrap();
    m.enter_preconfig().unwrap();
    assert_eq!(m.phase, Phase::AccelCreated);
    let mut ctx = QmpContext::new(
        BootOptions {
            kernel: Some(echo32()),
            ..Default::default()
        },
        false,
    );
    let seed = common::repo().join("tests/qmp/seed.qmp");
    let n = run_script(&seed, &mut m, &mut ctx).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(n, 13);
    assert_eq!(m.phase, Phase::Ready);

    let text = run_until(&mut m, &out, |t| t.contains("ready\r\n"));
    assert_eq!(text, "echo32 ready\r\n");
    serial.push_input(b"hello, breadboard");
    let text = run_until(&mut m, &out, |t| t.ends_with("breadboard"));
    assert_eq!(text, "echo32 ready\r\nhello, breadboard");
    serial.push_input(b"?");
    let text = run_until(&mut m, &out, |t| irq_count(t).is_some());
    assert!(
        text.starts_with("echo32 ready\r\nhello, breadboard?irqs="),
        "{text:?}"
    );
    let n = irq_count(&text).unwrap_or_else(|| panic!("{text:?}"));
    // At least one interrupt for the text and one for '?'; at most one per byte.
    assert!((2..=18).contains(&n), "irqs={n}");
    assert_eq!(m.phase_log.last(), Some(&"ready"));
}

/// Connects to a Unix socket, retrying while the server starts.
fn connect(path: &std::path::Path) -> std::os::unix::net::UnixStream {
    for _ in 0..1000 {
        if let Ok(s) = std::os::unix::net::UnixStream::connect(path) {
            return s;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("could not connect to {}", path.display());
}

/// Reads from `s` until `done(all text so far)`.
fn read_until(
    s: &mut std::os::unix::net::UnixStream,
    acc: &mut String,
    done: impl Fn(&str) -> bool,
) {
    use std::io::Read;
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = [0u8; 256];
    while !done(acc) {
        let n = s
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("serial read ({acc:?}): {e}"));
        assert!(n > 0, "serial closed; got {acc:?}");
        acc.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

#[test]
fn seed_script_with_binary() {
    use std::io::Write;
    let bin = common::binary()
        .expect("the breadboard binary must be built first (scripts/test.sh builds the workspace)");
    let dir = common::tempdir("seed-bin");
    let serial = dir.join("serial.sock");
    let mut child = std::process::Command::new(&bin)
        .current_dir(common::repo())
        .args([
            "-M",
            "none",
            "-cpu",
            "lowrisc-ibex",
            "-kernel",
            "firmware/echo32/echo32.elf",
        ])
        .arg("-serial")
        // wait=on: breadboard waits for the test before it starts, so no output is lost.
        .arg(format!("unix:{},server=on,wait=on", serial.display()))
        .args(["-qmp-script", "tests/qmp/seed.qmp"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !serial.exists() && start.elapsed() < Duration::from_secs(10) {
        if let Ok(Some(_)) = child.try_wait() {
            let out = child.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            panic!("breadboard exited: {err}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut s = connect(&serial);
    let mut text = String::new();
    read_until(&mut s, &mut text, |t| t.contains("ready\r\n"));
    s.write_all(b"hello, breadboard").unwrap();
    read_until(&mut s, &mut text, |t| t.ends_with("breadboard"));
    s.write_all(b"?").unwrap();
    read_until(&mut s, &mut text, |t| irq_count(t).is_some());
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        text.starts_with("echo32 ready\r\nhello, breadboard?irqs="),
        "{text:?}"
    );
    let n = irq_count(&text).unwrap();
    assert!((2..=18).contains(&n), "irqs={n}");
}
