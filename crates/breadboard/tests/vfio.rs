//! vfio-platform through the real binary (issue 7), with the example vfio-user server
//! (`bb-vfio-example`) started by the test: a bare-metal guest drives the checksum engine
//! (registers through messages, SRAM through an mmap'd fd or messages, DMA both ways, the level
//! completion IRQ with unmask at EOI); Linux binds its virtio-mmio driver to a virtio-rng served
//! over vfio-user, reads entropy from it, and keeps running when the server is killed.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Guest, breadboard, linux_guest, repo, tempdir};

/// `bb-vfio-example` next to the breadboard binary; built when a filtered run has not.
fn server_binary() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_breadboard"));
    let dir = bin.parent().expect("target dir");
    let p = dir.join("bb-vfio-example");
    if !p.exists() {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "-p", "breadboard-vfio-user-example"]);
        if dir.ends_with("release") {
            cmd.arg("--release");
        }
        let st = cmd.current_dir(repo()).status().expect("cargo build");
        assert!(st.success(), "building bb-vfio-example failed");
    }
    p
}

/// A running example server; killed on drop.
struct Server {
    child: Option<Child>,
    socket: PathBuf,
}

impl Server {
    fn start(tag: &str, device: &str) -> Server {
        let socket = tempdir(&format!("vfio-{tag}")).join("dev.sock");
        let _ = std::fs::remove_file(&socket);
        let child = Command::new(server_binary())
            .args(["--socket"])
            .arg(&socket)
            .args(["--device", device])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn bb-vfio-example");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !socket.exists() {
            assert!(
                Instant::now() < deadline,
                "the server never created {socket:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Server {
            child: Some(child),
            socket,
        }
    }

    fn device_arg(&self, extra: &str) -> String {
        format!("vfio-platform,socket={}{extra}", self.socket.display())
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn checksum_guest() -> String {
    repo()
        .join("firmware/vfio/checksum_test.elf")
        .display()
        .to_string()
}

fn run_checksum_guest(extra: &str) -> common::Run {
    let srv = Server::start(&format!("ck{}", extra.len()), "checksum");
    let elf = checksum_guest();
    let dev = srv.device_arg(extra);
    breadboard(
        &[
            "-M",
            "virt",
            "-bios",
            "none",
            "-kernel",
            &elf,
            "-nographic",
            "-device",
            &dev,
        ],
        Duration::from_secs(60),
    )
}

#[test]
fn test_bare_metal_guest_drives_the_checksum_engine_with_mmap() {
    let r = run_checksum_guest("");
    assert_eq!(
        r.code,
        Some(0),
        "finisher code = failed step << 16 | 0x3333 + 1: {r:?}"
    );
}

#[test]
fn test_bare_metal_guest_drives_the_checksum_engine_through_messages_only() {
    // Every access a message, and every write and unmask waits for the server's reply.
    let r = run_checksum_guest(",mmap=off,posted-writes=off");
    assert_eq!(r.code, Some(0), "{r:?}");
}

#[test]
fn test_without_the_engine_the_guest_fails_its_first_step() {
    // The guest really depends on the device: with nothing on the platform bus, step 1 fails.
    let elf = checksum_guest();
    let r = breadboard(
        &["-M", "virt", "-bios", "none", "-kernel", &elf, "-nographic"],
        Duration::from_secs(30),
    );
    assert_eq!(r.code, Some(1), "exit code = failed step: {r:?}");
}

#[test]
fn test_bad_vfio_options_are_clear_errors() {
    let d = tempdir("vfio-bad");
    let missing = d.join("nothing.sock");
    let cases: Vec<(String, &str)> = vec![
        (
            format!("vfio-platform,socket={}", missing.display()),
            "No such file or directory",
        ),
        (
            "vfio-platform".into(),
            "give exactly one of host=<sysfs device name> and socket=<path>",
        ),
        (
            format!("vfio-platform,host=x,socket={}", missing.display()),
            "give exactly one of host=",
        ),
        (
            "vfio-platform,host=no-such-device".into(),
            "no platform device no-such-device",
        ),
        ("vfio-platform,host=../etc".into(), ".."),
    ];
    for (dev, want) in cases {
        let r = breadboard(
            &["-M", "virt", "-bios", "none", "-device", &dev],
            Duration::from_secs(30),
        );
        assert_eq!(r.code, Some(1), "{dev}: {r:?}");
        assert!(r.stderr.contains(want), "{dev}: {}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "one clear line: {}", r.stderr);
    }
}

#[test]
fn test_a_server_with_an_unknown_compatible_needs_dt_copy() {
    let srv = Server::start("compat", "checksum");
    let dev = srv.device_arg(",compatible=acme,,widget");
    let r = breadboard(
        &["-M", "virt", "-bios", "none", "-device", &dev],
        Duration::from_secs(30),
    );
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(
        r.stderr
            .contains("no device-tree writer for compatible 'acme,widget'")
            && r.stderr.contains("dt-copy=on"),
        "{}",
        r.stderr
    );
}

#[test]
fn test_linux_drives_a_virtio_rng_served_over_vfio_user_and_survives_the_server() {
    let mut srv = Server::start("linux", "virtio-rng");
    let dev = srv.device_arg(",id=rng0");
    let mut g = linux_guest(&["-device", &dev]);
    let boot = Duration::from_secs(120);
    let off = g.expect("breadboard:/# ", boot);
    // The node the device wrote, under the platform bus, in the guest's own DT.
    let node = "/sys/firmware/devicetree/base/platform-bus@4000000/virtio_mmio@0";
    g.send(&format!(
        "cat {node}/compatible; echo; od -An -tx1 {node}/interrupts; echo dt-$((1+1))\n"
    ));
    let end = g.expect_from("dt-2", off + 1, boot);
    let out = g.output()[off..end].to_string();
    assert!(out.contains("virtio,mmio"), "{out}");
    assert!(out.contains("00 00 00 40"), "interrupts = <64>: {out}");
    // Entropy through the virtqueue: descriptors read and buffers written by DMA, used-buffer
    // interrupts through the PLIC.
    let m = g.mark();
    g.send(
        "cat /sys/class/misc/hw_random/rng_current; \
         head -c 256 /dev/hwrng | od -An -tx1 | head -4; \
         grep -c . /proc/interrupts >/dev/null; grep virtio /proc/interrupts; echo rng-$((2+1))\n",
    );
    let end = g.expect_from("rng-3", m + 1, boot);
    let out = g.output()[m..end].to_string();
    assert!(
        out.contains("virtio_rng"),
        "the virtio-rng driver is current: {out}"
    );
    let hex_lines: Vec<&str> = out
        .lines()
        .filter(|l| {
            let t = l.trim();
            t.len() >= 47
                && t.split(' ')
                    .all(|b| b.len() == 2 && b.chars().all(|c| c.is_ascii_hexdigit()))
        })
        .collect();
    assert!(hex_lines.len() >= 4, "256 random bytes: {out}");
    assert!(
        hex_lines
            .iter()
            .any(|l| l.trim() != "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"),
        "not all zero: {out}"
    );
    let irq_line = out
        .lines()
        .find(|l| l.contains("virtio") && l.contains("64"))
        .unwrap_or_else(|| panic!("virtio IRQ 64 in /proc/interrupts: {out}"));
    let count: u64 = irq_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    assert!(count > 0, "used-buffer interrupts arrived: {irq_line}");

    // Kill the server: the guest and breadboard keep running.
    srv.kill();
    std::thread::sleep(Duration::from_millis(200));
    let m = g.mark();
    g.send("echo alive-$((3+4)); cat /proc/uptime\n");
    g.expect_from("alive-7", m + 1, boot);
    g.send("poweroff\n");
    assert_eq!(g.wait(boot), Some(0), "{}", g.output());
}

/// One QMP command over `stream`; returns the first non-event reply line.
fn qmp(r: &mut impl std::io::BufRead, w: &mut impl std::io::Write, cmd: &str) -> String {
    w.write_all(cmd.as_bytes()).expect("send");
    w.write_all(b"\n").expect("send");
    loop {
        let mut line = String::new();
        assert!(r.read_line(&mut line).expect("recv") > 0, "QMP closed");
        if !line.contains("\"event\"") {
            return line;
        }
    }
}

#[test]
fn test_qmp_device_add_in_preconfig_composes_a_vfio_device() {
    use std::io::BufReader;
    use std::os::unix::net::UnixStream;
    let srv = Server::start("qmp", "checksum");
    let d = tempdir("vfio-qmp-monitor");
    let qsock = d.join("qmp.sock");
    let _ = std::fs::remove_file(&qsock);
    let elf = checksum_guest();
    let qarg = format!("unix:{},server=on,wait=off", qsock.display());
    let mut g = Guest::start(&[
        "-M",
        "virt",
        "-bios",
        "none",
        "-kernel",
        &elf,
        "-nographic",
        "-preconfig",
        "-qmp",
        &qarg,
    ]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let stream = loop {
        if let Ok(s) = UnixStream::connect(&qsock) {
            break s;
        }
        assert!(Instant::now() < deadline, "no QMP socket");
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut w = stream.try_clone().expect("clone");
    let mut r = BufReader::new(stream);
    let mut greeting = String::new();
    std::io::BufRead::read_line(&mut r, &mut greeting).expect("greeting");
    assert!(greeting.contains("\"QMP\""), "{greeting}");
    assert!(qmp(&mut r, &mut w, r#"{"execute":"qmp_capabilities"}"#).contains("return"));
    assert!(qmp(&mut r, &mut w, r#"{"execute":"x-machine-init"}"#).contains("return"));
    let bad = qmp(
        &mut r,
        &mut w,
        r#"{"execute":"device_add","arguments":{"driver":"vfio-platform","socket":"/nonexistent/x.sock"}}"#,
    );
    assert!(
        bad.contains("GenericError") && bad.contains("No such file or directory"),
        "{bad}"
    );
    let add = format!(
        r#"{{"execute":"device_add","arguments":{{"driver":"vfio-platform","socket":"{}","id":"ck"}}}}"#,
        srv.socket.display()
    );
    let ok = qmp(&mut r, &mut w, &add);
    assert!(ok.contains("\"return\""), "{ok}");
    assert!(qmp(&mut r, &mut w, r#"{"execute":"x-exit-preconfig"}"#).contains("return"));
    // The guest then runs its whole checksum sequence against the device added over QMP.
    assert_eq!(g.wait(Duration::from_secs(60)), Some(0), "{}", g.output());
}
