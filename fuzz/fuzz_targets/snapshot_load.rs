//! Snapshot restore with hostile state: a snapshot file is user-supplied input (SECURITY.md), so
//! every device's `snapshot_load`, `Hart::load_state` and `Machine::snapshot_restore` must
//! refuse a state they cannot run with, and whatever they accept must not make later MMIO,
//! timers or hart execution panic.
//!
//! Input: `[prefix len: u16][prefix ops][segment count: u8][segments][ops]`. The machine (the
//! `virt` board of `common/machine.rs`, every built-in device type, fresh per input) is reset
//! and driven by the prefix ops (at most 2 KiB of them) so the devices hold some real state.
//! Then up to 8 mutation segments `[selector: u8][mode: u8 % 9][offset: u16][len: u16]
//! [payload]`: the selector picks a device (by index over the machine's devices) or a hart; the
//! mode says what happens to its real `snapshot_save()` / `save_state()` blob before it is
//! loaded back directly:
//!
//! - 0: replaced by the payload;
//! - 1: the payload overwrites the blob at the offset (growing it if needed);
//! - 2: the payload is XORed into the blob at the offset;
//! - 3: the blob is truncated to the offset;
//! - 4: the payload is inserted at the offset;
//! - 5, 6: the whole machine's `snapshot_bytes()` file is patched (overwrite or XOR) in its
//!   non-RAM part after the fingerprint (time, timers, device blobs and IRQ levels, hart
//!   blobs and lines) and given to `Machine::snapshot_restore`;
//! - 7: the selected device's blob is replaced by the payload inside the whole file (lengths
//!   kept consistent), which then goes to `snapshot_restore`;
//! - 8: an interesting value (0, 1, all ones, near the top of the address space...; picked
//!   by the payload's first byte, whose top bits give the width 1/2/4/8) written over the
//!   field at the offset.
//!
//! Offsets into a blob are taken modulo its length plus one.
//!
//! Then the remaining ops, a slice of hart execution (`run_slice`), the timers due, a reset and
//! a read.
//!
//! Asserts: no panic (restore errors are typed errors and fine); a device that accepted a state
//! accepts its own save of it again; at the end, the machine restores its own snapshot (the
//! checks never refuse a state the machine can reach).
#![no_main]
#[path = "../common/machine.rs"]
mod machine;
use breadboard_core::MachineRequest;
use breadboard_riscv::Bus;
use libfuzzer_sys::fuzz_target;
use machine::{Fuzz, Input, build, run};

/// Most prefix-op bytes.
const MAX_PREFIX: usize = 2048;
/// Most mutation segments.
const MAX_SEGMENTS: u8 = 8;
/// Instructions per hart in the execution slice after the restore.
const SLICE: u64 = 2000;

/// Byte offsets inside a snapshot file, found by walking its layout (see
/// `crates/platform/src/snapshot.rs`).
struct Layout {
    /// First byte after the fingerprint and its hash: what a patch may change.
    after_fingerprint: usize,
    /// First byte of the RAM blocks (after their count).
    ram: usize,
    /// (offset of the length prefix, blob length) of each device's blob.
    blobs: Vec<(usize, usize)>,
}

fn layout(file: &[u8]) -> Option<Layout> {
    struct R<'a>(&'a [u8], usize);
    impl R<'_> {
        fn skip(&mut self, n: usize) -> Option<()> {
            self.1 = self.1.checked_add(n).filter(|&e| e <= self.0.len())?;
            Some(())
        }
        fn u64(&mut self) -> Option<usize> {
            let b: [u8; 8] = self
                .0
                .get(self.1..self.1.checked_add(8)?)?
                .try_into()
                .ok()?;
            self.1 += 8;
            usize::try_from(u64::from_le_bytes(b)).ok()
        }
        fn bytes(&mut self) -> Option<usize> {
            let n = self.u64()?;
            self.skip(n)?;
            Some(n)
        }
    }
    let mut r = R(file, 0);
    r.skip(6 + 4)?;
    r.bytes()?;
    r.skip(8)?;
    let after_fingerprint = r.1;
    r.skip(8)?;
    let timers = r.u64()?;
    r.skip(timers.checked_mul(24)?)?;
    let mut blobs = Vec::new();
    for _ in 0..r.u64()? {
        r.bytes()?;
        let at = r.1;
        let n = r.bytes()?;
        blobs.push((at, n));
        let levels = r.u64()?;
        r.skip(levels)?;
    }
    for _ in 0..r.u64()? {
        r.bytes()?;
        r.skip(8)?;
    }
    r.skip(8)?;
    Some(Layout {
        after_fingerprint,
        ram: r.1,
        blobs,
    })
}

/// Values that break ranges and address arithmetic, for mode 8.
const INTERESTING: [u64; 12] = [
    0,
    1,
    3,
    0x7f,
    0xffff,
    0x8000_0000,
    0xffff_ffff,
    0x8000_0000_0000_0000,
    u64::MAX - 15,
    u64::MAX - 3,
    u64::MAX - 1,
    u64::MAX,
];

/// Applies a direct-load mode (0..=4, 8) to `blob`. The offset is taken modulo the blob's
/// length plus one, so any offset lands in (or just past) the blob.
fn mutate(blob: &mut Vec<u8>, mode: u8, offset: usize, payload: &[u8]) {
    let off = offset % (blob.len() + 1);
    match mode {
        8 => {
            // An interesting value of 1, 2, 4 or 8 bytes over the field at the offset.
            let sel = payload.first().copied().unwrap_or(0);
            let v = INTERESTING[usize::from(sel) % INTERESTING.len()].to_le_bytes();
            let width = 1usize << (sel >> 6);
            for (b, p) in blob.iter_mut().skip(off).zip(&v[..width]) {
                *b = *p;
            }
        }
        0 => *blob = payload.to_vec(),
        1 => {
            let end = off + payload.len();
            if blob.len() < end {
                blob.resize(end, 0);
            }
            blob[off..end].copy_from_slice(payload);
        }
        2 => {
            for (b, p) in blob.iter_mut().skip(off).zip(payload) {
                *b ^= p;
            }
        }
        3 => blob.truncate(off),
        _ => {
            let tail = blob.split_off(off);
            blob.extend_from_slice(payload);
            blob.extend_from_slice(&tail);
        }
    }
}

/// Mode 5..=7: a mutated whole-machine snapshot file through `snapshot_restore`.
fn restore_file(f: &mut Fuzz, sel: usize, mode: u8, offset: usize, payload: &[u8]) {
    let Ok(mut file) = f.m.snapshot_bytes() else {
        return;
    };
    let Some(lay) = layout(&file) else {
        panic!("the machine's own snapshot does not parse");
    };
    if mode == 7 {
        let Some(&(at, n)) = lay.blobs.get(sel % lay.blobs.len().max(1)) else {
            return;
        };
        let mut patched = file[..at].to_vec();
        patched.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        patched.extend_from_slice(payload);
        patched.extend_from_slice(&file[at + 8 + n..]);
        file = patched;
    } else {
        // Only the part after the fingerprint and before RAM: patches there reach the
        // parser's checks and the devices instead of failing the fingerprint or landing in
        // guest RAM.
        let span = lay.ram - lay.after_fingerprint;
        if span == 0 {
            return;
        }
        let start = lay.after_fingerprint + offset % span;
        for (b, p) in file[start..lay.ram].iter_mut().zip(payload) {
            if mode == 5 {
                *b = *p;
            } else {
                *b ^= p;
            }
        }
    }
    let _ = f.m.snapshot_restore(&file);
}

/// One mutation segment.
fn segment(f: &mut Fuzz, inp: &mut Input<'_>) {
    let sel = usize::from(inp.u8());
    let mode = inp.u8() % 9;
    let offset = usize::from(inp.u16());
    let len = usize::from(inp.u16()) % 4096;
    let payload = inp.bytes(len).to_vec();
    if (5..=7).contains(&mode) {
        restore_file(f, sel, mode, offset, &payload);
        return;
    }
    let ids: Vec<_> = f.m.device_ids().collect();
    let targets = ids.len() + f.m.harts.len();
    let pick = sel % targets.max(1);
    if let Some(&id) = ids.get(pick) {
        let Some(e) = f.m.device(id) else { return };
        let Ok(mut blob) = e.cell.borrow().snapshot_save() else {
            return;
        };
        mutate(&mut blob, mode, offset, &payload);
        let accepted = e.cell.borrow_mut().snapshot_load(&blob).is_ok();
        if accepted {
            // What a device accepted, it can save and load again.
            let again = e
                .cell
                .borrow()
                .snapshot_save()
                .expect("a device that loaded a state can save it");
            if let Err(err) = e.cell.borrow_mut().snapshot_load(&again) {
                panic!(
                    "device '{}' ({}) refuses its own save of a state it accepted: {err}",
                    e.path, e.type_name
                );
            }
        }
    } else if let Some(h) = f.m.harts.get_mut(pick - ids.len()) {
        let mut blob = h.save_state();
        mutate(&mut blob, mode, offset, &payload);
        if h.load_state(&blob).is_ok() {
            let again = h.save_state();
            if let Err(err) = h.load_state(&again) {
                panic!("a hart refuses its own save of a state it accepted: {err}");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut f = build();
    f.m.system_reset().expect("machine reset");
    let mut inp = Input(data);
    // Some real device state first.
    let n = usize::from(inp.u16()) % (MAX_PREFIX + 1);
    let prefix = inp.bytes(n);
    run(&mut f, &mut Input(prefix));
    for _ in 0..inp.u8() % (MAX_SEGMENTS + 1) {
        if inp.0.is_empty() {
            break;
        }
        segment(&mut f, &mut inp);
    }
    // The restored machine at work: guest accesses, then the harts and the timers.
    run(&mut f, &mut inp);
    let (_, req) = f.m.run_slice(SLICE);
    if matches!(req, Some(MachineRequest::Reset)) {
        let _ = f.m.system_reset();
    }
    f.m.fire_timers();
    f.m.pump_chardevs();
    // Whatever state the machine reached (from accepted states, guest accesses and code), its
    // own snapshot restores: the checks refuse no reachable state.
    if let Ok(snap) = f.m.snapshot_bytes()
        && let Err(e) = f.m.snapshot_restore(&snap)
    {
        panic!("the machine refuses its own snapshot: {e}");
    }
    // Still usable: a reset and a read through the bus.
    f.m.system_reset().expect("machine reset after the input");
    let _ = f.m.with_hart_bus(0, |_, bus| bus.read(0x1000_0005, 1));
});
