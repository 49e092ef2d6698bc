//! Golden QMP transcripts (`tests/transcripts/*.txt`), replayed over a real socket.
//!
//! Format, one item per line:
//! - `> TEXT` sends TEXT and a newline (TEXT need not be JSON: malformed input is tested too);
//! - `< JSON` expects exactly that line next (CRLF stripped), after replacing the digits of
//!   `"seconds"`, `"microseconds"` and `"thread-id"` with `S`, `U` and `T`;
//! - `<~ TEXT` expects a line containing TEXT;
//! - `@ -S` (first lines only) starts the machine stopped; `#` lines and blank lines are notes.
//!
//! Every transcript runs against the server in process (a test main loop that runs
//! `Event::Call` closures and time slices, as breadboard's does), on the machine
//! `-M none -cpu lowrisc-ibex -kernel firmware/echo32/echo32.elf -preconfig`. The same files
//! run against the `breadboard` binary in `transcripts_against_binary`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use breadboard_core::chardev::MemoryBackend;
use breadboard_core::{Chardev, ChardevRegistry, DriveRegistry, TypeRegistry};
use breadboard_platform::qmp_ops::RunHooks;
use breadboard_platform::{BootOptions, Event, Image, Machine, MachineOptions, Phase};
use breadboard_qmp::{ListenSpec, QmpContext, ServerHandle};

enum Step {
    Send(String),
    Expect(String),
    ExpectContains(String),
}

struct Transcript {
    name: String,
    start_stopped: bool,
    steps: Vec<Step>,
}

fn load(path: &Path) -> Transcript {
    let text = std::fs::read_to_string(path).unwrap();
    let mut t = Transcript {
        name: path.file_name().unwrap().to_string_lossy().into_owned(),
        start_stopped: false,
        steps: Vec::new(),
    };
    for (i, l) in text.lines().enumerate() {
        if let Some(s) = l.strip_prefix("> ") {
            t.steps.push(Step::Send(s.to_string()));
        } else if let Some(s) = l.strip_prefix("<~ ") {
            t.steps.push(Step::ExpectContains(s.to_string()));
        } else if let Some(s) = l.strip_prefix("< ") {
            t.steps.push(Step::Expect(s.to_string()));
        } else if l.trim() == "@ -S" {
            t.start_stopped = true;
        } else if !(l.trim().is_empty() || l.starts_with('#')) {
            panic!("{}:{}: not a transcript line: {l}", t.name, i + 1);
        }
    }
    t
}

fn transcripts() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/transcripts");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no transcripts in {}", dir.display());
    v
}

/// Replaces the digits after `"key": ` with `with`.
fn mask(line: &str, key: &str, with: &str) -> String {
    let needle = format!("\"{key}\": ");
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find(&needle) {
        let (head, tail) = rest.split_at(i + needle.len());
        out.push_str(head);
        let digits = tail.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 {
            out.push_str(with);
        }
        rest = &tail[digits..];
    }
    out.push_str(rest);
    out
}

fn normalize(line: &str) -> String {
    let l = line.strip_suffix("\r\n").unwrap_or(line);
    let l = mask(l, "seconds", "S");
    let l = mask(&l, "microseconds", "U");
    mask(&l, "thread-id", "T")
}

/// Plays `t` against the QMP socket at `sock`. Returns a description of the first mismatch.
fn play(t: &Transcript, sock: &Path) -> Result<(), String> {
    let mut stream = None;
    for _ in 0..500 {
        if let Ok(s) = UnixStream::connect(sock) {
            stream = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let stream = stream.ok_or_else(|| format!("could not connect to {}", sock.display()))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    for (n, step) in t.steps.iter().enumerate() {
        match step {
            Step::Send(s) => {
                w.write_all(s.as_bytes())
                    .and_then(|()| w.write_all(b"\n"))
                    .map_err(|e| format!("send: {e}"))?;
            }
            Step::Expect(want) | Step::ExpectContains(want) => {
                let mut line = String::new();
                r.read_line(&mut line)
                    .map_err(|e| format!("step {n}: waiting for `{want}`: {e}"))?;
                if !line.ends_with("\r\n") {
                    return Err(format!("step {n}: line without CRLF: {line:?}"));
                }
                if !line.is_ascii() {
                    return Err(format!("step {n}: non-ASCII output: {line:?}"));
                }
                let got = normalize(&line);
                let ok = match step {
                    Step::Expect(_) => &got == want,
                    _ => got.contains(want.as_str()),
                };
                if !ok {
                    return Err(format!("step {n}:\n  want: {want}\n  got:  {got}"));
                }
            }
        }
    }
    Ok(())
}

fn echo32() -> Image {
    let path = common::repo().join("firmware/echo32/echo32.elf");
    Image {
        name: path.display().to_string(),
        data: std::fs::read(&path).unwrap(),
    }
}

/// Runs one transcript against an in-process server, with a main loop like breadboard's.
fn run_in_process(t: &Transcript) -> Result<(), String> {
    let dir = common::tempdir(&format!("tr-{}", t.name.trim_end_matches(".txt")));
    let sock = dir.join("qmp.sock");
    let mut reg = TypeRegistry::new();
    breadboard_devices::register_builtin(&mut reg);
    let chardevs = Rc::new(ChardevRegistry::default());
    chardevs
        .add(Chardev::new("serial0", Box::new(MemoryBackend::default())))
        .unwrap();
    let opts = MachineOptions {
        machine: "none".into(),
        cpu: Some("lowrisc-ibex".into()),
        ..Default::default()
    };
    let mut m = Machine::create(&opts, reg, chardevs, Rc::new(DriveRegistry::default())).unwrap();
    m.enter_preconfig().unwrap();
    let (tx, rx) = mpsc::channel::<Event>();
    let boot = BootOptions {
        kernel: Some(echo32()),
        ..Default::default()
    };
    let mut qmp = ServerHandle::new(QmpContext::new(boot, t.start_stopped), tx);
    qmp.listen(&ListenSpec::unix(&sock)).unwrap();

    let steps = Transcript {
        name: t.name.clone(),
        start_stopped: t.start_stopped,
        steps: t
            .steps
            .iter()
            .map(|s| match s {
                Step::Send(x) => Step::Send(x.clone()),
                Step::Expect(x) => Step::Expect(x.clone()),
                Step::ExpectContains(x) => Step::ExpectContains(x.clone()),
            })
            .collect(),
    };
    let sock2 = sock.clone();
    let client = std::thread::spawn(move || play(&steps, &sock2));
    // The main loop: closures between slices; slices only while the monitor lets the guest run.
    loop {
        match rx.recv_timeout(Duration::from_millis(1)) {
            Ok(Event::Call(f)) => f(&mut m),
            Ok(Event::Quit) => break,
            Ok(Event::CharInput { .. }) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if client.is_finished() {
            break;
        }
        if m.phase == Phase::Ready && qmp.may_run() {
            m.pump_chardevs();
            m.fire_timers();
            m.run_slice(10_000);
        }
    }
    qmp.flush(Duration::from_secs(2));
    let r = client.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    r
}

#[test]
fn transcripts_in_process() {
    let mut failures = Vec::new();
    for p in transcripts() {
        let t = load(&p);
        if let Err(e) = run_in_process(&t) {
            failures.push(format!("{}: {e}", t.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn transcripts_against_binary() {
    let bin = common::binary()
        .expect("the breadboard binary must be built first (scripts/test.sh builds the workspace)");
    let mut failures = Vec::new();
    for p in transcripts() {
        let t = load(&p);
        let dir = common::tempdir(&format!("bin-{}", t.name.trim_end_matches(".txt")));
        let sock = dir.join("qmp.sock");
        let mut args: Vec<String> = vec![
            "-M".into(),
            "none".into(),
            "-cpu".into(),
            "lowrisc-ibex".into(),
            "-kernel".into(),
            common::repo()
                .join("firmware/echo32/echo32.elf")
                .display()
                .to_string(),
            "-serial".into(),
            "null".into(),
            "-preconfig".into(),
            "-qmp".into(),
            format!("unix:{},server=on,wait=off", sock.display()),
        ];
        if t.start_stopped {
            args.push("-S".into());
        }
        let mut child = std::process::Command::new(&bin)
            .args(&args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        if let Ok(Some(_)) = child.try_wait() {
            let out = child.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            failures.push(format!("{}: breadboard exited: {err}", t.name));
            continue;
        }
        let r = play(&t, &sock);
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_dir_all(&dir);
        if let Err(e) = r {
            failures.push(format!("{}: {e}", t.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn test_mask_replaces_only_digits_after_the_key() {
    assert_eq!(
        normalize(
            "{\"timestamp\": {\"seconds\": 17, \"microseconds\": 5}, \"event\": \"STOP\"}\r\n"
        ),
        "{\"timestamp\": {\"seconds\": S, \"microseconds\": U}, \"event\": \"STOP\"}"
    );
    assert_eq!(
        mask("\"thread-id\": 42, \"x\": 1", "thread-id", "T"),
        "\"thread-id\": T, \"x\": 1"
    );
}
