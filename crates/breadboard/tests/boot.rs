//! Real firmware and Linux (../shared/guests) booted with QEMU's command lines: OpenSBI's
//! banner, U-Boot's prompt over a socket chardev, Linux to a shell over stdio and over a unix
//! socket, poweroff, SMP, ext2 on virtio-blk.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::{Guest, breadboard, guest, tempdir};

const BOOT: Duration = Duration::from_secs(120);
const INIT: &str = "breadboard-guest: init reached";
const PROMPT: &str = "breadboard:/# ";

fn opensbi_banner(bios: &str, smp: &str) -> String {
    let fw = guest(bios);
    // OpenSBI alone has no next stage to run: it jumps to empty RAM, which is fine here.
    let mut g = Guest::start(&[
        "-M",
        "virt",
        "-smp",
        smp,
        "-m",
        "256M",
        "-nographic",
        "-bios",
        &fw,
    ]);
    g.expect("Boot HART MEDELEG", BOOT);
    g.output()
}

#[test]
fn test_opensbi_fw_jump_banner() {
    let out = opensbi_banner("fw_jump.elf", "2");
    for needle in [
        "OpenSBI v1.1",
        "Platform Name             : riscv-virtio,qemu",
        "Platform HART Count       : 2",
        "Platform IPI Device       : aclint-mswi",
        "Platform Timer Device     : aclint-mtimer @ 10000000Hz",
        "Platform Console Device   : uart8250",
        "Platform Reboot Device    : sifive_test",
        "Platform Shutdown Device  : sifive_test",
        "Domain0 Next Address      : 0x0000000080200000",
        "Boot HART PMP Count       : 16",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
}

#[test]
fn test_opensbi_fw_dynamic_banner() {
    let out = opensbi_banner("fw_dynamic.bin", "4");
    for needle in [
        "OpenSBI v1.1",
        "Platform HART Count       : 4",
        "Platform Console Device   : uart8250",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
}

fn linux_args<'a>(fw: &'a str, kernel: &'a str, initrd: &'a str, smp: &'a str) -> Vec<&'a str> {
    vec![
        "-M",
        "virt",
        "-smp",
        smp,
        "-m",
        "256M",
        "-nographic",
        "-bios",
        fw,
        "-kernel",
        kernel,
        "-initrd",
        initrd,
        "-append",
        "console=ttyS0 earlycon",
    ]
}

#[test]
fn test_linux_boots_to_a_shell_and_powers_off() {
    let (fw, k, i) = (
        guest("fw_jump.elf"),
        guest("Image"),
        guest("initramfs.cpio.gz"),
    );
    let mut g = Guest::start(&linux_args(&fw, &k, &i, "2"));
    let off = g.expect(INIT, BOOT);
    let off = g.expect_from(PROMPT, off, BOOT);
    g.send("echo marker-$((6*7)); grep -c ^processor /proc/cpuinfo\n");
    let off = g.expect_from("marker-42", off, BOOT);
    g.expect_from("2\r\n", off, BOOT);
    let m = g.mark();
    g.send("cat /proc/interrupts; ls /sys/firmware/devicetree/base; echo done-$((1+1))\n");
    let end = g.expect_from("done-2", m, BOOT);
    let out = g.output()[m..end].to_string();
    for needle in ["riscv-timer", "ttyS0", "soc", "cpus", "chosen"] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    let m = g.mark();
    g.send("cat /proc/cpuinfo\n");
    g.expect_from("isa\t\t: rv64imafdc", m, BOOT);
    g.send("poweroff\n");
    assert_eq!(
        g.wait(BOOT),
        Some(0),
        "poweroff ends breadboard with 0:\n{}",
        g.output()
    );
}

#[test]
fn test_linux_smp4_brings_up_four_cpus() {
    let (fw, k, i) = (
        guest("fw_dynamic.bin"),
        guest("Image"),
        guest("initramfs.cpio.gz"),
    );
    let mut g = Guest::start(&linux_args(&fw, &k, &i, "4"));
    let off = g.expect(PROMPT, BOOT);
    g.send("grep -c ^processor /proc/cpuinfo; echo cpus-$((2+2))-done\n");
    let end = g.expect_from("cpus-4-done", off, BOOT);
    let out = g.output()[off..end].to_string();
    assert!(
        out.contains("\n4\r\n") || out.contains("4\r\n"),
        "expected 4 CPUs:\n{out}"
    );
    assert!(
        g.output().contains("smp: Brought up 1 node, 4 CPUs"),
        "{}",
        g.output()
    );
}

#[test]
fn test_linux_ext2_on_virtio_blk_is_written() {
    let d = tempdir("ext2");
    let img = d.join("disk.img");
    let st = std::process::Command::new("mkfs.ext2")
        .args(["-q", "-F", "-L", "bbdisk"])
        .arg(&img)
        .arg("8M")
        .status()
        .expect("mkfs.ext2 (e2fsprogs) must be installed");
    assert!(st.success());
    let drive = format!("file={},format=raw,if=none,id=hd0", img.display());
    let (fw, k, i) = (
        guest("fw_jump.elf"),
        guest("Image"),
        guest("initramfs.cpio.gz"),
    );
    let mut args = linux_args(&fw, &k, &i, "1");
    args.extend(["-drive", &drive, "-device", "virtio-blk-device,drive=hd0"]);
    let mut g = Guest::start(&args);
    let off = g.expect(PROMPT, BOOT);
    g.send("mkdir -p /mnt && mount -t ext2 /dev/vda /mnt && echo hello-from-guest > /mnt/note.txt && umount /mnt && sync && echo blk-$((4+4))-done\n");
    g.expect_from("blk-8-done", off, BOOT);
    g.send("poweroff\n");
    assert_eq!(g.wait(BOOT), Some(0), "{}", g.output());
    let out = std::process::Command::new("debugfs")
        .args(["-R", "cat /note.txt"])
        .arg(&img)
        .output()
        .expect("debugfs (e2fsprogs)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("hello-from-guest"),
        "file in the image: {text:?}"
    );
}

/// Reads from the socket until `pattern` appears in `acc` at or after byte `from`; returns the
/// offset just past the match (so the next wait starts there, even if the same read already
/// brought what it waits for).
fn read_until(
    s: &mut UnixStream,
    pattern: &str,
    timeout: Duration,
    acc: &mut String,
    from: usize,
) -> usize {
    let deadline = Instant::now() + timeout;
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut buf = [0u8; 4096];
    loop {
        if let Some(i) = acc.get(from..).and_then(|t| t.find(pattern)) {
            return from + i + pattern.len();
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {pattern:?}; got:\n{acc}"
        );
        match s.read(&mut buf) {
            Ok(0) => panic!("socket closed before {pattern:?}; got:\n{acc}"),
            Ok(n) => acc.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(_) => {}
        }
    }
}

fn connect(path: &std::path::Path) -> UnixStream {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match UnixStream::connect(path) {
            Ok(s) => return s,
            Err(e) if Instant::now() > deadline => panic!("connect {}: {e}", path.display()),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

#[test]
fn test_linux_shell_over_a_unix_socket() {
    let d = tempdir("linux-sock");
    let sock = d.join("console.sock");
    // wait=on: breadboard waits for us before the guest starts, so no output is lost.
    let serial = format!("unix:{},server=on,wait=on", sock.display());
    let (fw, k, i) = (
        guest("fw_jump.elf"),
        guest("Image"),
        guest("initramfs.cpio.gz"),
    );
    let mut args = linux_args(&fw, &k, &i, "1");
    args.retain(|a| *a != "-nographic");
    args.extend(["-serial", &serial, "-display", "none"]);
    let _g = Guest::start(&args);
    let mut s = connect(&sock);
    let mut acc = String::new();
    let at = read_until(&mut s, PROMPT, BOOT, &mut acc, 0);
    s.write_all(b"echo sock-$((20+22))\n").expect("send");
    read_until(&mut s, "sock-42", BOOT, &mut acc, at);
}

#[test]
fn test_uboot_prompt_bdinfo_and_dm_tree_over_a_socket() {
    let d = tempdir("uboot");
    let sock = d.join("uboot.sock");
    let serial = format!("unix:{},server=on,wait=on", sock.display());
    let (fw, ub) = (guest("fw_jump.elf"), guest("u-boot-qemu-riscv64_smode.bin"));
    let _g = Guest::start(&[
        "-M", "virt", "-smp", "2", "-m", "256M", "-display", "none", "-bios", &fw, "-kernel", &ub,
        "-serial", &serial,
    ]);
    let mut s = connect(&sock);
    let mut acc = String::new();
    let at = read_until(&mut s, "Hit any key to stop autoboot", BOOT, &mut acc, 0);
    s.write_all(b"\n").expect("stop autoboot");
    let at = read_until(&mut s, "=> ", BOOT, &mut acc, at);
    s.write_all(b"bdinfo\n").expect("bdinfo");
    let at = read_until(&mut s, "boot_params", BOOT, &mut acc, at);
    let at = read_until(&mut s, "=> ", BOOT, &mut acc, at);
    s.write_all(b"dm tree\n").expect("dm tree");
    let end = read_until(&mut s, "=> ", BOOT, &mut acc, at);
    let tree = &acc[at..end];
    for needle in ["Class", "serial", "ns16550_serial", "root_driver"] {
        assert!(
            tree.contains(needle),
            "missing {needle:?} in dm tree:\n{tree}"
        );
    }
}

#[test]
fn test_bare_metal_exit_code_is_the_finishers() {
    let r = breadboard(
        &[
            "-M",
            "virt",
            "-bios",
            "none",
            "-nographic",
            "-kernel",
            "firmware/tests/rv64m.elf",
        ],
        BOOT,
    );
    assert_eq!(r.code, Some(0));
}

#[test]
fn test_linux_dynamic_uart_on_the_platform_bus_is_ttys1() {
    let d = tempdir("ttys1");
    let out = d.join("uart1.txt");
    let serial1 = format!("file:{}", out.display());
    let (fw, k, i) = (
        guest("fw_jump.elf"),
        guest("Image"),
        guest("initramfs.cpio.gz"),
    );
    let mut args = linux_args(&fw, &k, &i, "1");
    args.extend([
        "-serial",
        "mon:stdio",
        "-serial",
        &serial1,
        "-device",
        "ns16550a,id=uart1,chardev=serial1",
    ]);
    let mut g = Guest::start(&args);
    let off = g.expect(PROMPT, BOOT);
    // The 8250 driver requests its IRQ while the port is open: keep it open for the grep.
    g.send("ls /sys/firmware/devicetree/base/platform-bus@4000000/; exec 3>/dev/ttyS1; grep ttyS1 /proc/interrupts; echo hello-ttyS1 >&3; exec 3>&-; echo uart-$((3+3))-done\n");
    let end = g.expect_from("uart-6-done", off, BOOT);
    let text = g.output()[off..end].to_string();
    assert!(
        text.contains("serial@0"),
        "node under the platform bus:\n{text}"
    );
    assert!(text.contains("ttyS1"), "ttyS1 in /proc/interrupts:\n{text}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = std::fs::read_to_string(&out).unwrap_or_default();
        if got.contains("hello-ttyS1") {
            break;
        }
        assert!(Instant::now() < deadline, "uart1's chardev got: {got:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn test_linux_dynamic_virtio_rng_on_a_platform_bus_transport() {
    let (fw, k, i) = (
        guest("fw_jump.elf"),
        guest("Image"),
        guest("initramfs.cpio.gz"),
    );
    let mut args = linux_args(&fw, &k, &i, "1");
    args.extend([
        "-device",
        "virtio-mmio,id=vm0",
        "-device",
        "virtio-rng-device,bus=vm0",
    ]);
    let mut g = Guest::start(&args);
    let off = g.expect(PROMPT, BOOT);
    g.send("ls /sys/firmware/devicetree/base/platform-bus@4000000/; cat /sys/class/misc/hw_random/rng_current; head -c 16 /dev/hwrng | od -An -tx1 | wc -w; echo rng-$((5+5))-done\n");
    let end = g.expect_from("rng-10-done", off, BOOT);
    let text = g.output()[off..end].to_string();
    assert!(text.contains("virtio_mmio@0"), "{text}");
    assert!(text.contains("virtio_rng"), "{text}");
    assert!(text.contains("\n16\r\n"), "16 random bytes read:\n{text}");
}
