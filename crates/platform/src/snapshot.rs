//! Machine snapshots (`x-snapshot-save` / `x-snapshot-load`): every device's state, every
//! hart, virtual time, armed timers, IRQ line levels and the bytes of every RAM/ROM block, in
//! one versioned file.
//!
//! Layout (all integers little-endian; byte strings are u64-length-prefixed):
//! magic `BBSNAP`, u32 format version, the machine fingerprint (a text listing the machine
//! type, CPU model, hart count and every device and memory region, with its FNV-1a hash),
//! u64 virtual time, the timers (deadline, device id, token), per device (QOM path, blob,
//! output IRQ levels), per hart (state blob, device-driven interrupt lines), per RAM block
//! (name, base, size, bytes), and the magic again as an end marker.
//!
//! Loading checks everything before changing anything that is hard to undo: the fingerprint
//! must match (a mismatch names the first differing line), and the whole file is parsed
//! before any state is applied, so a truncated or corrupt file leaves the machine as it was.

use std::io::Write as _;
use std::rc::Rc;

use breadboard_core::memory::{RamBlock, RegionKind};
use breadboard_core::{DeviceId, Nanos, SnapReader, SnapWriter, SnapshotError};

use crate::machine::Machine;

const MAGIC: &[u8; 6] = b"BBSNAP";
/// Snapshot file format version.
pub const FORMAT_VERSION: u32 = 1;

fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

struct DeviceState {
    path: String,
    blob: Vec<u8>,
    levels: Vec<bool>,
}

struct Parsed<'a> {
    time: Nanos,
    timers: Vec<(Nanos, (usize, u64))>,
    devices: Vec<DeviceState>,
    harts: Vec<(Vec<u8>, u64)>,
    ram: Vec<(String, u64, &'a [u8])>,
}

impl Machine {
    /// What a snapshot must match: machine type, CPU, harts, every device with its properties,
    /// and the memory map (which covers `-m`). One line per item, so a mismatch can be named.
    pub fn snapshot_fingerprint(&self) -> String {
        let mut s = format!(
            "machine {}\ncpu {}\nharts {}\n",
            self.desc.machine.name,
            self.cpu.name,
            self.harts.len()
        );
        for id in self.device_ids() {
            if let Some(e) = self.device(id) {
                let props: Vec<String> =
                    e.props.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
                s.push_str(&format!(
                    "device #{id} {} {} {}\n",
                    e.path,
                    e.type_name,
                    props.join(",")
                ));
            }
        }
        for r in self.space.regions() {
            let kind = match r.kind {
                RegionKind::Ram {
                    readonly: false, ..
                } => "ram",
                RegionKind::Ram { readonly: true, .. } => "rom",
                RegionKind::Mmio { .. } => "mmio",
            };
            s.push_str(&format!("{kind} {} {:#x} {:#x}\n", r.name, r.base, r.size));
        }
        s
    }

    fn ram_blocks(&self) -> Vec<(String, u64, Rc<RamBlock>)> {
        let mut v: Vec<(String, u64, Rc<RamBlock>)> = Vec::new();
        for r in self.space.regions() {
            if let RegionKind::Ram { block, .. } = &r.kind
                && !v.iter().any(|(_, _, b)| Rc::ptr_eq(b, block))
            {
                v.push((r.name.clone(), r.base, Rc::clone(block)));
            }
        }
        v
    }

    /// Writes the whole machine state in snapshot format to `out`. RAM is copied through a
    /// small buffer, never whole.
    pub fn write_snapshot(&self, out: &mut dyn std::io::Write) -> Result<(), SnapshotError> {
        let io = |e: std::io::Error| SnapshotError::Io(format!("cannot write snapshot: {e}"));
        let mut w = SnapWriter::new();
        for b in MAGIC {
            w.u8(*b);
        }
        w.u32(FORMAT_VERSION);
        let fp = self.snapshot_fingerprint();
        w.str(&fp);
        w.u64(fnv1a(fp.as_bytes()));
        w.u64(self.clock.now());
        let timers = self.timers.entries();
        w.u64(timers.len() as u64);
        for (d, (owner, token)) in timers {
            w.u64(d);
            w.u64(owner as u64);
            w.u64(token);
        }
        let ids: Vec<_> = self.device_ids().collect();
        w.u64(ids.len() as u64);
        for id in ids {
            let Some(e) = self.device(id) else { continue };
            let d = e
                .cell
                .try_borrow()
                .map_err(|_| SnapshotError::Io(format!("device '{}' is busy", e.path)))?;
            let blob = d.snapshot_save().map_err(|err| match err {
                SnapshotError::Unsupported(_) => {
                    SnapshotError::Unsupported(format!("{} ({})", e.path, e.type_name))
                }
                other => other,
            })?;
            w.str(&e.path);
            w.bytes(&blob);
            w.u64(e.outputs.len() as u64);
            for o in &e.outputs {
                w.bool(o.level());
            }
        }
        w.u64(self.harts.len() as u64);
        for (h, irqs) in self.harts.iter().zip(&self.hart_irqs) {
            w.bytes(&h.save_state());
            w.u64(irqs.get());
        }
        let ram = self.ram_blocks();
        w.u64(ram.len() as u64);
        out.write_all(&w.finish()).map_err(io)?;
        let mut buf = vec![0u8; 1 << 20];
        for (name, base, block) in ram {
            let mut w = SnapWriter::new();
            w.str(&name);
            w.u64(base);
            w.u64(block.size());
            out.write_all(&w.finish()).map_err(io)?;
            let mut off = 0u64;
            while off < block.size() {
                let n = (block.size() - off).min(buf.len() as u64) as usize;
                let chunk = buf.get_mut(..n).unwrap_or_default();
                block
                    .read(off, chunk)
                    .ok_or_else(|| SnapshotError::Io(format!("cannot read RAM block '{name}'")))?;
                out.write_all(chunk).map_err(io)?;
                off += n as u64;
            }
        }
        out.write_all(MAGIC).map_err(io)?;
        Ok(())
    }

    /// The whole machine state as snapshot bytes.
    pub fn snapshot_bytes(&self) -> Result<Vec<u8>, SnapshotError> {
        let mut v = Vec::new();
        self.write_snapshot(&mut v)?;
        Ok(v)
    }

    /// Writes a snapshot to `path` (through a temporary file, so a failed save leaves no
    /// partial file under the name).
    pub fn snapshot_save(&self, path: &str) -> Result<(), SnapshotError> {
        let tmp = format!("{path}.tmp{}", std::process::id());
        let r = std::fs::File::create(&tmp)
            .map_err(|e| SnapshotError::Io(format!("cannot write snapshot '{path}': {e}")))
            .and_then(|f| {
                let mut out = std::io::BufWriter::with_capacity(1 << 20, f);
                self.write_snapshot(&mut out)?;
                out.flush()
                    .map_err(|e| SnapshotError::Io(format!("cannot write snapshot '{path}': {e}")))
            })
            .and_then(|()| {
                std::fs::rename(&tmp, path)
                    .map_err(|e| SnapshotError::Io(format!("cannot write snapshot '{path}': {e}")))
            });
        if r.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        r
    }

    /// Reads a snapshot from `path` and restores it (see [`Machine::snapshot_restore`]).
    pub fn snapshot_load(&mut self, path: &str) -> Result<(), SnapshotError> {
        let data = std::fs::read(path)
            .map_err(|e| SnapshotError::Io(format!("cannot read snapshot '{path}': {e}")))?;
        self.snapshot_restore(&data)
    }

    fn parse_snapshot<'a>(&self, data: &'a [u8]) -> Result<Parsed<'a>, SnapshotError> {
        let mut r = SnapReader::new(data);
        let mut magic = [0u8; 6];
        for b in &mut magic {
            *b = r
                .u8()
                .map_err(|_| SnapshotError::Corrupt("not a breadboard snapshot".into()))?;
        }
        if &magic != MAGIC {
            return Err(SnapshotError::Corrupt(
                "not a breadboard snapshot (bad magic)".into(),
            ));
        }
        let version = r.u32()?;
        if version != FORMAT_VERSION {
            return Err(SnapshotError::Mismatch(format!(
                "snapshot format version {version} is not supported (this build reads {FORMAT_VERSION})"
            )));
        }
        let fp = r.str()?;
        let hash = r.u64()?;
        if hash != fnv1a(fp.as_bytes()) {
            return Err(SnapshotError::Corrupt(
                "machine fingerprint checksum mismatch".into(),
            ));
        }
        let ours = self.snapshot_fingerprint();
        if fp != ours {
            let mut theirs = fp.lines();
            let mut mine = ours.lines();
            let (a, b) = loop {
                match (theirs.next(), mine.next()) {
                    (Some(a), Some(b)) if a == b => continue,
                    (a, b) => break (a.unwrap_or("(nothing)"), b.unwrap_or("(nothing)")),
                }
            };
            return Err(SnapshotError::Mismatch(format!(
                "the snapshot was taken on another machine description: snapshot has '{a}', this machine has '{b}'"
            )));
        }
        let time = r.u64()?;
        let n = r.u64()?;
        let mut timers = Vec::new();
        for _ in 0..n {
            let d = r.u64()?;
            let owner = usize::try_from(r.u64()?)
                .map_err(|_| SnapshotError::Corrupt("bad timer owner".into()))?;
            let token = r.u64()?;
            if self.device(owner).is_none() {
                return Err(SnapshotError::Corrupt(format!(
                    "timer for unknown device #{owner}"
                )));
            }
            timers.push((d, (owner, token)));
        }
        let ids: Vec<_> = self.device_ids().collect();
        if r.u64()? != ids.len() as u64 {
            return Err(SnapshotError::Corrupt("device count differs".into()));
        }
        let mut devices = Vec::new();
        for id in ids {
            let path = r.str()?;
            let blob = r.bytes()?.to_vec();
            let n = r.u64()?;
            let e = self
                .device(id)
                .ok_or_else(|| SnapshotError::Corrupt("device vanished".into()))?;
            if path != e.path || n != e.outputs.len() as u64 {
                return Err(SnapshotError::Corrupt(format!(
                    "device '{path}' does not match '{}'",
                    e.path
                )));
            }
            let levels = (0..n).map(|_| r.bool()).collect::<Result<Vec<_>, _>>()?;
            devices.push(DeviceState { path, blob, levels });
        }
        if r.u64()? != self.harts.len() as u64 {
            return Err(SnapshotError::Corrupt("hart count differs".into()));
        }
        let mut harts = Vec::new();
        for _ in 0..self.harts.len() {
            harts.push((r.bytes()?.to_vec(), r.u64()?));
        }
        let blocks = self.ram_blocks();
        if r.u64()? != blocks.len() as u64 {
            return Err(SnapshotError::Corrupt("RAM block count differs".into()));
        }
        let mut ram = Vec::new();
        for (name, base, block) in &blocks {
            let n = r.str()?;
            let b = r.u64()?;
            let bytes = r.bytes()?;
            if n != *name || b != *base || bytes.len() as u64 != block.size() {
                return Err(SnapshotError::Corrupt(format!(
                    "RAM block '{n}' does not match '{name}'"
                )));
            }
            ram.push((n, b, bytes));
        }
        for b in MAGIC {
            if r.u8()? != *b {
                return Err(SnapshotError::Corrupt("bad end marker".into()));
            }
        }
        r.end()?;
        Ok(Parsed {
            time,
            timers,
            devices,
            harts,
            ram,
        })
    }

    /// Restores a snapshot taken on a machine built from the same description and options.
    /// The file is checked completely first; on any error the machine is unchanged: when a
    /// hart or device refuses its state (each checks that the state is one it could be in),
    /// every hart, device, output level and hart line goes back to what it was.
    pub fn snapshot_restore(&mut self, data: &[u8]) -> Result<(), SnapshotError> {
        let p = self.parse_snapshot(data)?;
        let ids: Vec<_> = self.device_ids().collect();
        // What a refusal rolls back to.
        let saved = Saved {
            harts: self.harts.iter().map(|h| h.save_state()).collect(),
            lines: self.hart_irqs.iter().map(|i| i.get()).collect(),
            levels: ids
                .iter()
                .map(|id| {
                    self.device(*id)
                        .map(|e| e.outputs.iter().map(|o| o.level()).collect())
                        .unwrap_or_default()
                })
                .collect(),
            blobs: ids
                .iter()
                .map(|id| {
                    let e = self.device(*id)?;
                    let d = e.cell.try_borrow().ok()?;
                    d.snapshot_save().ok()
                })
                .collect(),
        };
        // Harts first: their checks can still refuse without side effects.
        for (i, (h, (blob, _))) in self.harts.iter_mut().zip(&p.harts).enumerate() {
            if let Err(e) = h.load_state(blob) {
                self.roll_back(&ids, &saved);
                return Err(SnapshotError::Corrupt(format!("hart {i}: {e}")));
            }
        }
        self.set_hart_lines(p.harts.iter().map(|(_, l)| *l));
        // Output levels first (they may propagate into other devices' inputs), then each
        // device's own state, which overrides whatever the propagation changed.
        for (id, st) in ids.iter().zip(&p.devices) {
            if let Some(e) = self.device(*id) {
                for (o, l) in e.outputs.iter().zip(&st.levels) {
                    o.set(*l);
                }
            }
        }
        for (id, st) in ids.iter().zip(&p.devices) {
            let Some(e) = self.device(*id) else { continue };
            let r = match e.cell.try_borrow_mut() {
                Ok(mut d) => d.snapshot_load(&st.blob).map_err(|err| match err {
                    SnapshotError::Unsupported(_) => {
                        SnapshotError::Unsupported(format!("{} ({})", e.path, e.type_name))
                    }
                    SnapshotError::Corrupt(m) => {
                        SnapshotError::Corrupt(format!("device '{}': {m}", st.path))
                    }
                    other => other,
                }),
                Err(_) => Err(SnapshotError::Io(format!("device '{}' is busy", st.path))),
            };
            if let Err(err) = r {
                self.roll_back(&ids, &saved);
                return Err(err);
            }
        }
        // Device-driven hart lines again: output propagation above may have touched them.
        self.set_hart_lines(p.harts.iter().map(|(_, l)| *l));
        for ((_, _, block), (name, _, bytes)) in self.ram_blocks().iter().zip(&p.ram) {
            block
                .write(0, bytes)
                .ok_or_else(|| SnapshotError::Io(format!("cannot write RAM block '{name}'")))?;
        }
        self.clock.restore_time(p.time);
        self.timers.restore(&p.timers);
        Ok(())
    }
}

/// The state `snapshot_restore` returns to when a hart or device refuses its part.
struct Saved {
    harts: Vec<Vec<u8>>,
    lines: Vec<u64>,
    levels: Vec<Vec<bool>>,
    /// `None` for a device that cannot save (it refused the snapshot when it was written).
    blobs: Vec<Option<Vec<u8>>>,
}

impl Machine {
    fn set_hart_lines(&self, lines: impl Iterator<Item = u64>) {
        for (irqs, lines) in self.hart_irqs.iter().zip(lines) {
            for bit in 0..64 {
                irqs.set(bit, (lines >> bit) & 1 != 0);
            }
        }
    }

    /// Undoes a partial restore: every output gets its saved level back, then every device
    /// its saved state (restored outputs propagate into other devices' inputs, so any device
    /// may have changed), every hart its state and lines.
    fn roll_back(&mut self, ids: &[DeviceId], saved: &Saved) {
        for (id, levels) in ids.iter().zip(&saved.levels) {
            if let Some(e) = self.device(*id) {
                for (o, l) in e.outputs.iter().zip(levels) {
                    o.set(*l);
                }
            }
        }
        for (id, blob) in ids.iter().zip(&saved.blobs) {
            if let (Some(e), Some(blob)) = (self.device(*id), blob)
                && let Ok(mut d) = e.cell.try_borrow_mut()
            {
                // The device's own state a moment ago: it loads back.
                let _ = d.snapshot_load(blob);
            }
        }
        for (h, s) in self.harts.iter_mut().zip(&saved.harts) {
            let _ = h.load_state(s);
        }
        self.set_hart_lines(saved.lines.iter().copied());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::{BootOptions, Firmware, MachineOptions};
    use breadboard_core::{ChardevRegistry, DriveRegistry, TypeRegistry};

    fn virt() -> Machine {
        let mut r = TypeRegistry::new();
        breadboard_devices::register_builtin(&mut r);
        let opts = MachineOptions {
            machine: "virt".into(),
            smp: Some(2),
            icount_shift: Some(0),
            ..Default::default()
        };
        let mut m = Machine::create(
            &opts,
            r,
            Rc::new(ChardevRegistry::default()),
            Rc::new(DriveRegistry::default()),
        )
        .unwrap();
        m.finish(&BootOptions {
            firmware: Firmware::None,
            ..Default::default()
        })
        .unwrap();
        m.system_reset().unwrap();
        m
    }

    fn u64_at(b: &[u8], at: usize) -> usize {
        u64::from_le_bytes(b[at..at + 8].try_into().unwrap()) as usize
    }

    /// `file` with the blob of its last device replaced by `blob`.
    fn with_last_device_blob(file: &[u8], blob: &[u8]) -> Vec<u8> {
        let mut at = 6 + 4;
        at += 8 + u64_at(file, at); // fingerprint
        at += 8 + 8; // its hash, time
        at += 8 + 24 * u64_at(file, at); // timers
        let devices = u64_at(file, at);
        at += 8;
        let mut last = (0, 0);
        for _ in 0..devices {
            at += 8 + u64_at(file, at); // path
            last = (at, u64_at(file, at));
            at += 8 + last.1;
            at += 8 + u64_at(file, at); // levels
        }
        let mut out = file[..last.0].to_vec();
        out.extend_from_slice(&(blob.len() as u64).to_le_bytes());
        out.extend_from_slice(blob);
        out.extend_from_slice(&file[last.0 + 8 + last.1..]);
        out
    }

    #[test]
    fn test_snapshot_restore_rolls_back_when_a_device_refuses_its_state() {
        let mut a = virt();
        a.harts[0].set_x(5, 0x1234);
        a.harts[1].set_pc(0x8000_0100);
        let file = a.snapshot_bytes().unwrap();
        a.snapshot_restore(&file).unwrap();
        let mut b = virt();
        b.harts[0].set_x(5, 0x5678);
        let before = b.snapshot_bytes().unwrap();
        // The harts (restored first) and every device before the last accept their state;
        // the last device refuses a one-byte blob.
        let bad = with_last_device_blob(&file, &[0xff]);
        let err = b.snapshot_restore(&bad).unwrap_err();
        assert!(matches!(err, SnapshotError::Corrupt(_)), "{err:?}");
        assert_eq!(b.harts[0].x(5), 0x5678, "the hart state was rolled back");
        assert_eq!(
            b.snapshot_bytes().unwrap(),
            before,
            "the machine is unchanged"
        );
        // The intact file still restores.
        b.snapshot_restore(&file).unwrap();
        assert_eq!(b.harts[0].x(5), 0x1234);
    }
}
