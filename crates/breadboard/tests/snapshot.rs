//! Snapshots: `x-snapshot-save` mid-way through a two-hart firmware run under
//! `-icount shift=0`, a restore with `x-snapshot-load` in a new process, and the console output
//! continues exactly as an uninterrupted run's. Snapshots from another machine description and
//! truncated or corrupt files are refused with clear errors (and the process keeps serving).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Guest, breadboard, tempdir};

const FW: &str = "firmware/snapshot/snapshot.elf";

fn base_args(smp: &str) -> Vec<String> {
    [
        "-M",
        "virt",
        "-smp",
        smp,
        "-bios",
        "none",
        "-kernel",
        FW,
        "-nographic",
        "-icount",
        "shift=0",
    ]
    .map(String::from)
    .to_vec()
}

struct Qmp {
    r: BufReader<UnixStream>,
    w: UnixStream,
}

impl Qmp {
    fn connect(sock: &Path) -> Qmp {
        let deadline = Instant::now() + Duration::from_secs(20);
        let s = loop {
            match UnixStream::connect(sock) {
                Ok(s) => break s,
                Err(e) if Instant::now() > deadline => {
                    panic!("QMP connect {}: {e}", sock.display())
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut q = Qmp {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
        };
        let greeting = q.line();
        assert!(greeting.contains("QMP"), "{greeting}");
        let r = q.cmd(r#"{"execute": "qmp_capabilities"}"#);
        assert!(r.contains("\"return\""), "{r}");
        q
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.r.read_line(&mut l).expect("QMP read");
        assert!(!l.is_empty(), "QMP connection closed");
        l
    }

    /// Sends a command and returns its reply line (events are skipped).
    fn cmd(&mut self, json: &str) -> String {
        self.w.write_all(json.as_bytes()).unwrap();
        self.w.write_all(b"\n").unwrap();
        loop {
            let l = self.line();
            if l.contains("\"return\"") || l.contains("\"error\"") {
                return l;
            }
        }
    }

    fn load(&mut self, file: &Path) -> String {
        self.cmd(&format!(
            r#"{{"execute": "x-snapshot-load", "arguments": {{"filename": "{}"}}}}"#,
            file.display()
        ))
    }
}

fn start(args: &[String], sock: &Path, stopped: bool) -> (Guest, Qmp) {
    let mut a = args.to_vec();
    a.push("-qmp".into());
    a.push(format!("unix:{},server=on,wait=off", sock.display()));
    if stopped {
        a.push("-S".into());
    }
    let refs: Vec<&str> = a.iter().map(String::as_str).collect();
    let g = Guest::start(&refs);
    let q = Qmp::connect(sock);
    (g, q)
}

/// Output stops growing (the reader thread caught up with what the stopped guest printed).
fn settled(g: &Guest) -> String {
    let mut last = g.mark();
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let now = g.mark();
        if now == last {
            return g.output();
        }
        last = now;
    }
}

#[test]
fn test_snapshot_restore_continues_exactly_and_bad_snapshots_are_refused() {
    let dir = tempdir("snapshot");
    let snap = dir.join("mid.bbsnap");
    let args = base_args("2");

    // The uninterrupted reference run.
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let reference = breadboard(&refs, Duration::from_secs(120));
    assert_eq!(reference.code, Some(0), "{}", reference.stderr);
    assert!(
        reference.stdout.ends_with("snapshot: done\n"),
        "{}",
        reference.stdout
    );

    // Run, stop mid-way, save, kill.
    let (mut a, mut qa) = start(&args, &dir.join("a.sock"), false);
    a.expect("hart 0 tick 5 ", Duration::from_secs(60));
    let r = qa.cmd(r#"{"execute": "stop"}"#);
    assert!(r.contains("\"return\""), "{r}");
    let before = settled(&a);
    assert!(
        !before.contains("snapshot: done"),
        "the run ended before the stop:\n{before}"
    );
    let r = qa.cmd(&format!(
        r#"{{"execute": "x-snapshot-save", "arguments": {{"filename": "{}"}}}}"#,
        snap.display()
    ));
    assert!(r.contains("\"return\""), "{r}");
    drop(qa);
    drop(a);
    let size = std::fs::metadata(&snap).unwrap().len();
    assert!(size > 64 << 20, "snapshot holds RAM: {size} bytes");

    // A new process, stopped from the start: load, continue, and the output carries on.
    let (mut b, mut qb) = start(&args, &dir.join("b.sock"), true);
    let r = qb.load(&snap);
    assert!(r.contains("\"return\""), "{r}");
    let r = qb.cmd(r#"{"execute": "cont"}"#);
    assert!(r.contains("\"return\""), "{r}");
    assert_eq!(b.wait(Duration::from_secs(120)), Some(0));
    let after = b.output();
    assert!(
        reference.stdout.starts_with(&before),
        "the saved run diverged before the stop"
    );
    assert_eq!(
        format!("{before}{after}"),
        reference.stdout,
        "output after the restore differs from the uninterrupted run"
    );

    // Another machine description (-smp 1 instead of 2) is refused by name.
    let (c, mut qc) = start(&base_args("1"), &dir.join("c.sock"), true);
    let r = qc.load(&snap);
    assert!(r.contains("\"error\""), "{r}");
    assert!(r.contains("another machine description"), "{r}");
    assert!(
        r.contains("harts 2") && r.contains("harts 1"),
        "the mismatch is named: {r}"
    );

    let r = qc.cmd(r#"{"execute": "query-status"}"#);
    assert!(r.contains("\"return\""), "{r}");
    drop(c);

    // Truncated, corrupt and foreign files are refused without a panic; the monitor survives.
    let (d, mut qc) = start(&args, &dir.join("d.sock"), true);
    let data = std::fs::read(&snap).unwrap();
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("truncated-header", data[..40].to_vec(), "corrupt snapshot"),
        (
            "truncated-ram",
            data[..data.len() / 2].to_vec(),
            "truncated",
        ),
        (
            "foreign",
            b"this is not a snapshot".to_vec(),
            "not a breadboard snapshot",
        ),
        ("empty", Vec::new(), "not a breadboard snapshot"),
    ];
    for (name, bytes, want) in cases {
        let f = dir.join(name);
        std::fs::write(&f, bytes).unwrap();
        let r = qc.load(&f);
        assert!(r.contains("\"error\"") && r.contains(want), "{name}: {r}");
    }
    let mut flipped = data.clone();
    flipped[20] ^= 0x40; // inside the machine fingerprint
    let f = dir.join("flipped");
    std::fs::write(&f, flipped).unwrap();
    let r = qc.load(&f);
    assert!(r.contains("\"error\""), "{r}");
    let r = qc.load(&dir.join("missing.bbsnap"));
    assert!(
        r.contains("\"error\"") && r.contains("cannot read snapshot"),
        "{r}"
    );
    let r = qc.cmd(r#"{"execute": "query-status"}"#);
    assert!(
        r.contains("\"return\""),
        "still serving after the refusals: {r}"
    );
    // ... and the intact file still loads there.
    let r = qc.load(&snap);
    assert!(r.contains("\"return\""), "{r}");
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);
}
