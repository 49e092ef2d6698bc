//! Helpers for end-to-end tests: run the real binary with a timeout and capture its output.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic
)]
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Output of one run.
#[derive(Debug)]
pub struct Run {
    /// Exit code (None if killed by the timeout).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs breadboard with `args`, stdin closed, killing it after `timeout`.
pub fn breadboard(args: &[&str], timeout: Duration) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_breadboard"))
        .args(args)
        .current_dir(repo())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn breadboard");
    let start = Instant::now();
    let code = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st.code();
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut stdout);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    Run {
        code,
        stdout,
        stderr,
    }
}

/// A fresh temporary directory for one test.
pub fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bb-e2e-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("tempdir");
    d
}

/// The directory with the shared guest images (Linux, OpenSBI, U-Boot): `$BREADBOARD_GUESTS`
/// or `../shared/guests` beside the repository.
pub fn guests() -> PathBuf {
    match std::env::var_os("BREADBOARD_GUESTS") {
        Some(p) => PathBuf::from(p),
        None => repo().join("../shared/guests"),
    }
}

/// A guest path as a string (panics with a clear message if the image is missing).
pub fn guest(name: &str) -> String {
    let p = guests().join(name);
    assert!(
        p.exists(),
        "guest image {} is missing (set BREADBOARD_GUESTS to the shared/guests folder)",
        p.display()
    );
    p.display().to_string()
}

/// Boots the shared Linux guest (OpenSBI fw_jump, one hart, 256 MiB, console on ttyS0) with
/// `extra` arguments appended, as an interactive run.
pub fn linux_guest(extra: &[&str]) -> Guest {
    let (fw, k, i) = (
        guest("fw_jump.elf"),
        guest("Image"),
        guest("initramfs.cpio.gz"),
    );
    let mut args = vec![
        "-M",
        "virt",
        "-smp",
        "1",
        "-m",
        "256M",
        "-nographic",
        "-bios",
        &fw,
        "-kernel",
        &k,
        "-initrd",
        &i,
        "-append",
        "console=ttyS0",
    ];
    args.extend_from_slice(extra);
    Guest::start(&args)
}

/// An interactive run: stdin is a pipe, stdout is collected by a thread.
pub struct Guest {
    child: std::process::Child,
    out: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    stdin: Option<std::process::ChildStdin>,
    pub start: Instant,
}

impl Guest {
    /// Starts breadboard with `args`.
    pub fn start(args: &[&str]) -> Guest {
        let mut child = Command::new(env!("CARGO_BIN_EXE_breadboard"))
            .args(args)
            .current_dir(repo())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn breadboard");
        let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut stdout = child.stdout.take().expect("stdout");
        let sink = out.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().expect("lock").extend_from_slice(&buf[..n]);
            }
        });
        let stdin = child.stdin.take();
        Guest {
            child,
            out,
            stdin,
            start: Instant::now(),
        }
    }

    /// Everything printed so far (lossy UTF-8).
    pub fn output(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().expect("lock")).to_string()
    }

    /// Waits until `pattern` appears after byte offset `from`; returns the offset past it.
    pub fn expect_from(&mut self, pattern: &str, from: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let out = self.out.lock().expect("lock");
                let hay = String::from_utf8_lossy(out.get(from..).unwrap_or_default()).to_string();
                if let Some(i) = hay.find(pattern) {
                    return from + i + pattern.len();
                }
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!(
                    "breadboard exited ({st}) before {pattern:?}; output:\n{}",
                    self.output()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {pattern:?}; output:\n{}",
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for `pattern` anywhere after the current end of output... from offset 0.
    pub fn expect(&mut self, pattern: &str, timeout: Duration) -> usize {
        self.expect_from(pattern, 0, timeout)
    }

    /// Current output length (to expect only what comes after it).
    pub fn mark(&self) -> usize {
        self.out.lock().expect("lock").len()
    }

    /// Types `text` on the console.
    pub fn send(&mut self, text: &str) {
        use std::io::Write;
        let s = self.stdin.as_mut().expect("stdin");
        s.write_all(text.as_bytes()).expect("write stdin");
        s.flush().expect("flush");
    }

    /// Waits for exit; returns the code (None on timeout, after killing it).
    pub fn wait(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
