//! The GDB remote stub (`crates/breadboard/src/gdb.rs`, a binary-crate module included here by
//! path) fed a fuzzed byte stream as one debugger connection, against a small two-hart `virt`
//! machine that the fuzzing thread owns and drives like the main loop does (every register or
//! memory access and every run chunk is an `Event::Call` closure).
//!
//! Input: an RV32/RV64 pick, then segments `[kind][len][payload]`. The kind says how the
//! payload goes on the wire: as it is (framing, acks, Ctrl-C, garbage), as a packet with a
//! correct checksum (so commands reach the stub's handlers: every command letter, `qXfer`,
//! `m`/`M`/`X` of any size, `p`/`P`, `Z`/`z`, `vCont`, ...), with a wrong checksum, or with the
//! binary escapes `X` packets use. The stream ends the connection (reads fail at its end).
//! Asserts: no panic, the session ends, the machine is still usable afterwards.
#![no_main]
#![allow(dead_code, unused_imports)]

#[path = "../../crates/breadboard/src/gdb.rs"]
mod gdb;

use std::rc::Rc;
use std::sync::mpsc;

use breadboard_core::{ChardevRegistry, DriveRegistry, TypeRegistry};
use breadboard_platform::{BootOptions, Event, Firmware, Machine, MachineOptions};
use gdbstub::conn::{Connection, ConnectionExt};
use libfuzzer_sys::fuzz_target;

/// An in-memory debugger connection: reads the fuzzed stream, discards the stub's replies
/// (counting them), and fails every read once the stream is over (a closed socket).
struct MemConn {
    data: Vec<u8>,
    pos: usize,
    written: usize,
}

fn eof() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "end of fuzz input")
}

impl Connection for MemConn {
    type Error = std::io::Error;
    fn write(&mut self, _byte: u8) -> Result<(), std::io::Error> {
        self.written = self.written.saturating_add(1);
        // A stub that never stops answering would be a hang: bound the output.
        if self.written > 64 << 20 {
            return Err(eof());
        }
        Ok(())
    }
    fn flush(&mut self) -> Result<(), std::io::Error> {
        Ok(())
    }
}

impl ConnectionExt for MemConn {
    fn read(&mut self) -> Result<u8, std::io::Error> {
        let b = *self.data.get(self.pos).ok_or_else(eof)?;
        self.pos += 1;
        Ok(b)
    }
    fn peek(&mut self) -> Result<Option<u8>, std::io::Error> {
        self.data.get(self.pos).map(|b| Some(*b)).ok_or_else(eof)
    }
}

fn checksum(payload: &[u8]) -> u8 {
    payload.iter().fold(0u8, |a, b| a.wrapping_add(*b))
}

fn packet(out: &mut Vec<u8>, payload: &[u8], good: bool) {
    out.push(b'$');
    out.extend_from_slice(payload);
    let cs = checksum(payload).wrapping_add(u8::from(!good));
    out.extend_from_slice(format!("#{cs:02x}").as_bytes());
}

/// The wire stream the segments describe.
fn stream(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let [kind, len, rest @ ..] = data {
        let n = usize::from(*len).min(rest.len());
        let (payload, tail) = rest.split_at(n);
        data = tail;
        match kind % 6 {
            0 => out.extend_from_slice(payload),
            1 | 2 => packet(&mut out, payload, true),
            3 => packet(&mut out, payload, false),
            4 => {
                // Binary-escaped payload (as gdb sends `X` data).
                let mut esc = Vec::with_capacity(payload.len());
                for &b in payload {
                    if matches!(b, b'#' | b'$' | b'}' | b'*') {
                        esc.push(b'}');
                        esc.push(b ^ 0x20);
                    } else {
                        esc.push(b);
                    }
                }
                packet(&mut out, &esc, true);
            }
            _ => {
                // An ack or a Ctrl-C, then the payload as a packet.
                out.push(if kind & 0x80 != 0 { 0x03 } else { b'+' });
                packet(&mut out, payload, true);
            }
        }
    }
    out
}

fn machine(rv32: bool) -> Option<Machine> {
    let mut reg = TypeRegistry::new();
    breadboard_devices::register_builtin(&mut reg);
    let opts = MachineOptions {
        machine: "virt".into(),
        cpu: rv32.then(|| "rv32".to_string()),
        smp: Some(2),
        ram_size: Some(8 << 20),
        icount_shift: Some(0),
    };
    let mut m = Machine::create(
        &opts,
        reg,
        Rc::new(ChardevRegistry::default()),
        Rc::new(DriveRegistry::default()),
    )
    .ok()?;
    m.wire_default_cpu_irqs().ok()?;
    let boot = BootOptions {
        firmware: Firmware::None,
        kernel: None,
        initrd: None,
        append: None,
        dtb: None,
    };
    m.finish(&boot).ok()?;
    Some(m)
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    if rest.len() > 16 * 1024 {
        return;
    }
    let Some(mut m) = machine(flags & 1 == 1) else {
        panic!("the virt machine must build");
    };
    let info = gdb::MachineInfo::of(&m);
    let shared = gdb::GdbShared::new();
    let (tx, rx) = mpsc::channel::<Event>();
    let wire = stream(rest);
    let session = {
        let tx = tx.clone();
        let shared = std::sync::Arc::clone(&shared);
        std::thread::spawn(move || {
            let conn: gdb::Conn = Box::new(MemConn {
                data: wire,
                pos: 0,
                written: 0,
            });
            gdb::session(conn, &tx, &shared, &info)
        })
    };
    drop(tx);
    // The main loop's side: run what the stub posts until the session is over and no closure
    // (a run chunk re-posts itself until its run ends) holds a sender any more.
    while let Ok(ev) = rx.recv() {
        if let Event::Call(f) = ev {
            f(&mut m);
        }
    }
    if session.join().is_err() {
        panic!("the gdb session thread panicked");
    }
    assert!(
        !shared.attached(),
        "the debugger is still attached after the session"
    );
    // The machine still runs.
    let _ = m.run_slice(1000);
});
