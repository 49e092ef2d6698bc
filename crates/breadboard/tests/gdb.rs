//! The GDB stub end to end: gdb-multiarch in batch mode against `firmware/gdbtest` (two harts),
//! and the raw remote protocol over a unix socket (mode 0600, packet size enforced).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn have_gdb() -> bool {
    let ok = Command::new("gdb-multiarch")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok && std::env::var_os("CI").is_some() {
        panic!("gdb-multiarch is required in CI (scripts/test.sh installs it)");
    }
    if !ok {
        eprintln!("skipped: gdb-multiarch is not installed");
    }
    ok
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_breadboard"))
        .args(args)
        .current_dir(common::repo())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn breadboard")
}

/// Waits for `child` to exit, killing it after `timeout`. Returns (exit code, stdout, stderr).
fn finish(mut child: Child, timeout: Duration) -> (Option<i32>, String, String) {
    let start = Instant::now();
    let code = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st.code();
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (code, out, err)
}

fn wait_for_tcp(port: u16) {
    let start = Instant::now();
    // Probe by binding, not connecting: a connection would be a debugger session.
    while std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "stub never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

const SCRIPT: &str = "\
set pagination off
set confirm off
target remote 127.0.0.1:PORT
info threads
break bump
continue
info registers a0 pc
p counter
set var counter = 100
p counter
set $a0 = 7
p $a0
p/x $mstatus
p $mhartid
p $fcsr
x/s message
set var message[0] = 'J'
x/s message
stepi
p $pc
next
watch counter
continue
continue
info threads
thread 2
p $mhartid
p hart1_ticks > 0
delete
kill
";

#[test]
fn test_gdb_batch_session_against_two_hart_firmware() {
    if !have_gdb() {
        return;
    }
    let port = free_port();
    let p = port.to_string();
    let gdb_arg = format!("tcp:127.0.0.1:{p}");
    let bb = spawn(&[
        "-M",
        "virt",
        "-smp",
        "2",
        "-bios",
        "none",
        "-kernel",
        "firmware/gdbtest/gdbtest.elf",
        "-nographic",
        "-S",
        "-gdb",
        &gdb_arg,
    ]);
    wait_for_tcp(port);
    let dir = std::env::temp_dir().join(format!("bb-gdb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("session.gdb");
    std::fs::write(&script, SCRIPT.replace("PORT", &p)).unwrap();
    let out = Command::new("gdb-multiarch")
        .arg("-nx")
        .arg("-batch")
        .arg("-x")
        .arg(&script)
        .arg(common::repo().join("firmware/gdbtest/gdbtest.elf"))
        .stdin(Stdio::null())
        .output()
        .expect("run gdb-multiarch");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let (code, bb_out, bb_err) = finish(bb, Duration::from_secs(20));
    let _ = std::fs::remove_dir_all(&dir);
    let expect = [
        "Thread 1.1",
        "Thread 1.2",
        "Thread 1 hit Breakpoint 1, bump (by=by@entry=2)",
        "a0             0x2\t2",
        "pc             0x8000004e\t0x8000004e <bump>",
        "$1 = 0",
        "$2 = 100",
        "$3 = 7",
        "$5 = 0",
        "\"hello gdb\"",
        "\"Jello gdb\"",
        "<bump+4>",
        "Hardware watchpoint 2: counter",
        "Thread 1 hit Hardware watchpoint 2: counter",
        "Old value = 107",
        "New value = 108",
        "main1 () at ",
        "[Switching to thread 2 (Thread 1.2)]",
        "$8 = 1",
        "$9 = 1",
        "[Inferior 1 (process 1) killed]",
    ];
    for e in expect {
        assert!(
            text.contains(e),
            "gdb output lacks {e:?}:\n{text}\n--- breadboard:\n{bb_out}\n{bb_err}"
        );
    }
    assert!(!text.contains("Error"), "gdb reported an error:\n{text}");
    assert!(out.status.success(), "gdb failed:\n{text}");
    assert_eq!(code, Some(0), "breadboard after kill: {bb_err}");
    assert!(bb_out.contains("gdbtest: hello gdb"), "{bb_out}");
}

fn checksum(body: &str) -> String {
    format!(
        "${body}#{:02x}",
        body.bytes().fold(0u8, |a, b| a.wrapping_add(b))
    )
}

/// Reads one `$...#xx` packet (skipping acks), returning its body.
fn read_packet(s: &mut impl Read) -> String {
    let mut body = Vec::new();
    let mut b = [0u8; 1];
    loop {
        s.read_exact(&mut b).unwrap();
        if b[0] == b'$' {
            break;
        }
    }
    loop {
        s.read_exact(&mut b).unwrap();
        if b[0] == b'#' {
            break;
        }
        body.push(b[0]);
    }
    let mut sum = [0u8; 2];
    s.read_exact(&mut sum).unwrap();
    String::from_utf8(body).unwrap()
}

/// Expands the protocol's run-length encoding (`X*n`: X repeated n - 29 more times).
fn unrle(p: &str) -> String {
    let mut out = String::new();
    let mut it = p.chars();
    while let Some(c) = it.next() {
        if c == '*' {
            let n = it.next().map_or(0, |n| n as usize - 29);
            let last = out.chars().last().unwrap_or('0');
            out.extend(std::iter::repeat_n(last, n));
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn test_unix_socket_is_private_and_packet_size_is_enforced() {
    let dir = std::env::temp_dir().join(format!("bb-gdbu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("gdb.sock");
    let arg = format!("unix:{}", sock.display());
    let bb = spawn(&[
        "-M",
        "virt",
        "-smp",
        "2",
        "-bios",
        "none",
        "-kernel",
        "firmware/gdbtest/gdbtest.elf",
        "-nographic",
        "-S",
        "-gdb",
        &arg,
    ]);
    let start = Instant::now();
    let mut s = loop {
        if let Ok(s) = std::os::unix::net::UnixStream::connect(&sock) {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no socket");
        std::thread::sleep(Duration::from_millis(20));
    };
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(checksum("qSupported:multiprocess+;swbreak+;hwbreak+").as_bytes())
        .unwrap();
    let sup = read_packet(&mut s);
    assert!(sup.contains("PacketSize=1000"), "{sup}");
    assert!(sup.contains("qXfer:features:read+"), "{sup}");
    s.write_all(b"+").unwrap();
    // The target description names the FPU and CSR features.
    s.write_all(checksum("qXfer:features:read:target.xml:0,fff").as_bytes())
        .unwrap();
    let mut xml = String::new();
    loop {
        let p = read_packet(&mut s);
        s.write_all(b"+").unwrap();
        xml.push_str(&p[1..]);
        if p.starts_with('l') {
            break;
        }
        let off = xml.len();
        s.write_all(checksum(&format!("qXfer:features:read:target.xml:{off:x},fff")).as_bytes())
            .unwrap();
    }
    assert!(xml.contains("org.gnu.gdb.riscv.fpu"), "{xml}");
    assert!(xml.contains("name=\"mstatus\""), "{xml}");
    // `g`: 33 registers of 8 bytes, pc at the reset vector.
    s.write_all(checksum("Hgp1.1").as_bytes()).unwrap();
    assert_eq!(read_packet(&mut s), "OK");
    s.write_all(b"+").unwrap();
    s.write_all(checksum("g").as_bytes()).unwrap();
    let g = read_packet(&mut s);
    s.write_all(b"+").unwrap();
    let g = unrle(&g);
    assert_eq!(g.len(), 33 * 16, "{g}");
    assert!(
        g.ends_with("0010000000000000"),
        "pc = 0x1000 (reset ROM): {g}"
    );
    // A packet longer than the advertised size is refused, and the stub keeps serving.
    let long = format!("M80001000,{:x}:{}", 4000, "00".repeat(4000));
    let _ = s.write_all(checksum(&long).as_bytes());
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(
        !String::from_utf8_lossy(&rest).contains("OK"),
        "oversized M packet accepted"
    );
    // The session is over; the stub serves the next debugger, which kills the machine.
    let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(checksum("qSupported:multiprocess+").as_bytes())
        .unwrap();
    read_packet(&mut s);
    s.write_all(b"+").unwrap();
    s.write_all(checksum("vKill;1").as_bytes()).unwrap();
    let (code, _out, err) = finish(bb, Duration::from_secs(10));
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, Some(0), "breadboard did not exit cleanly: {err}");
    assert!(err.contains("oversized packet"), "{err}");
}

#[test]
fn test_gdb_rv32_hart() {
    if !have_gdb() {
        return;
    }
    let port = free_port();
    let p = port.to_string();
    let gdb_arg = format!("tcp:127.0.0.1:{p}");
    let bb = spawn(&[
        "-M",
        "virt",
        "-cpu",
        "rv32",
        "-bios",
        "none",
        "-kernel",
        "firmware/tests/rv32i.elf",
        "-nographic",
        "-S",
        "-gdb",
        &gdb_arg,
    ]);
    wait_for_tcp(port);
    let script = format!(
        "set pagination off\nset confirm off\nset architecture riscv:rv32\n\
         target remote 127.0.0.1:{p}\np/x $pc\np/x $misa\nx/2wx 0x80000000\nstepi\np/x $pc\n\
         break *0x80000010\ncontinue\np/x $pc\nkill\n"
    );
    let dir = std::env::temp_dir().join(format!("bb-gdb32-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rv32.gdb");
    std::fs::write(&path, script).unwrap();
    let out = Command::new("gdb-multiarch")
        .args(["-nx", "-batch", "-x"])
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .expect("run gdb-multiarch");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let (code, _o, err) = finish(bb, Duration::from_secs(20));
    let _ = std::fs::remove_dir_all(&dir);
    for e in [
        "$1 = 0x1000",
        "$2 = 0x40101104",
        "0x80000000:\t0xf14022f3",
        "$3 = 0x1004",
        "Breakpoint 1, 0x80000010",
        "$4 = 0x80000010",
        "[Inferior 1 (process 1) killed]",
    ] {
        assert!(text.contains(e), "gdb output lacks {e:?}:\n{text}\n{err}");
    }
    assert_eq!(code, Some(0), "{err}");
}
