//! An unmodified Linux guest (the shared test images) on breadboard with both example servers
//! attached through `-device vfio-platform,socket=...`: Linux's stock `virtio_mmio` and
//! `virtio_rng` drivers read entropy from the vfio-user virtio-rng server, and the checksum
//! engine gets its device-tree node from the server's hints.
//!
//! Needs the `breadboard` binary built next to `bb-vfio-example` (any workspace build or
//! `cargo test --workspace` does that; `scripts/test.sh` does) and the guest images
//! (`$BREADBOARD_GUESTS` or `../shared/guests`). Both missing are failures, not skips.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BOOT: Duration = Duration::from_secs(180);
const PROMPT: &str = "breadboard:/# ";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn guest(name: &str) -> String {
    let dir = std::env::var_os("BREADBOARD_GUESTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/guests"));
    let p = dir.join(name);
    assert!(
        p.exists(),
        "guest image {} is missing (set BREADBOARD_GUESTS to the shared/guests folder)",
        p.display()
    );
    p.display().to_string()
}

fn breadboard_bin() -> PathBuf {
    let ours = Path::new(env!("CARGO_BIN_EXE_bb-vfio-example"));
    let bb = ours.with_file_name("breadboard");
    assert!(
        bb.exists(),
        "{} is missing: build the workspace first (cargo build --workspace, or scripts/test.sh)",
        bb.display()
    );
    bb
}

/// A child process killed when the test ends.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(dir: &Path, device: &str) -> (Proc, PathBuf) {
    let path = dir.join(format!("{device}.sock"));
    let child = Command::new(env!("CARGO_BIN_EXE_bb-vfio-example"))
        .arg("--socket")
        .arg(&path)
        .args(["--device", device])
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut p = Proc(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        if let Ok(Some(st)) = p.0.try_wait() {
            panic!("{device} server exited: {st}");
        }
        assert!(Instant::now() < deadline, "{device} server made no socket");
        std::thread::sleep(Duration::from_millis(10));
    }
    (p, path)
}

#[test]
fn test_linux_reads_entropy_from_the_vfio_user_virtio_rng_server() {
    let bb = breadboard_bin();
    let (fw, kernel, initrd) = (
        guest("fw_jump.elf"),
        guest("Image"),
        guest("initramfs.cpio.gz"),
    );
    let dir = std::env::temp_dir().join(format!("bb-vfio-linux-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (_rng, rng_sock) = serve(&dir, "virtio-rng");
    let (_ck, ck_sock) = serve(&dir, "checksum");

    let mut child = Command::new(bb)
        .args(["-M", "virt", "-smp", "1", "-m", "256M", "-nographic"])
        .args(["-bios", &fw, "-kernel", &kernel, "-initrd", &initrd])
        .args(["-append", "console=ttyS0 earlycon"])
        .arg("-device")
        .arg(format!("vfio-platform,socket={}", rng_sock.display()))
        .arg("-device")
        .arg(format!("vfio-platform,socket={}", ck_sock.display()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let out = Arc::new(Mutex::new(Vec::new()));
    let mut stdout = child.stdout.take().unwrap();
    let sink = out.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let mut stdin = child.stdin.take().unwrap();
    let mut vm = Proc(child);
    let text = || String::from_utf8_lossy(&out.lock().unwrap()).to_string();
    let expect = |pat: &str, vm: &mut Proc| {
        let deadline = Instant::now() + BOOT;
        loop {
            if let Some(i) = text().find(pat) {
                return i;
            }
            if let Ok(Some(st)) = vm.0.try_wait() {
                panic!("breadboard exited ({st}) before {pat:?}:\n{}", text());
            }
            assert!(
                Instant::now() < deadline,
                "no {pat:?} within {BOOT:?}:\n{}",
                text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };

    expect(PROMPT, &mut vm);
    let bus = "/sys/firmware/devicetree/base/platform-bus@4000000";
    let cmd = format!(
        "cat /sys/class/misc/hw_random/rng_current; head -c 16 /dev/hwrng | od -An -tx1 | wc -w; \
         cat {bus}/checksum@*/compatible; echo; grep -c virtio0 /proc/interrupts; \
         echo rng-$((6+6))-done\n"
    );
    let mark = out.lock().unwrap().len();
    stdin.write_all(cmd.as_bytes()).unwrap();
    stdin.flush().unwrap();
    expect("rng-12-done", &mut vm);
    // What followed the command (its echo holds none of the strings looked for).
    let tail = String::from_utf8_lossy(&out.lock().unwrap()[mark..]).to_string();
    assert!(
        tail.contains("virtio_rng.0"),
        "virtio_rng is the current hwrng:\n{tail}"
    );
    assert!(
        tail.contains("\n16\r\n"),
        "16 random bytes read from /dev/hwrng:\n{tail}"
    );
    assert!(
        tail.contains("breadboard,checksum-engine"),
        "checksum node from the hints:\n{tail}"
    );
    assert!(
        tail.contains("\n1\r\n"),
        "the virtio device's interrupt is registered:\n{tail}"
    );
    drop(vm);
    let _ = std::fs::remove_dir_all(&dir);
}
