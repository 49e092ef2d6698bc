//! Split virtqueues (VIRTIO 1.2 §2.7): the descriptor table, the driver (available) ring and
//! the device (used) ring in guest RAM, read with the guest treated as an adversary.
//!
//! Every value read from guest memory is checked before use: ring and table indices against
//! their table size, chain walks against a hop limit (so a loop ends), buffer ranges against
//! address-space wrap-around and against guest RAM (DMA never reaches MMIO), lengths against
//! zero. A chain is read once into a [`DescChain`] (a list of checked segments), so the guest
//! changing the table while the device works on the request cannot invalidate the checks.
//! Any violation is a [`QueueError`]; the device then marks itself broken (see
//! `VirtioBackend`), it never panics.
// Reads guest, file, socket or plugin input: no panicking shortcuts (SECURITY.md, issue 9).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::atomic::{Ordering, fence};

use breadboard_core::{AccessError, GuestMemory};
use thiserror::Error;

/// Descriptor continues via `next` (§2.7.5).
pub const VIRTQ_DESC_F_NEXT: u16 = 1;
/// Buffer is device-writable (otherwise device-readable).
pub const VIRTQ_DESC_F_WRITE: u16 = 2;
/// Buffer holds a table of indirect descriptors (§2.7.5.3).
pub const VIRTQ_DESC_F_INDIRECT: u16 = 4;
/// Driver ring flag: the driver does not want used-buffer notifications (§2.7.7).
pub const VIRTQ_AVAIL_F_NO_INTERRUPT: u16 = 1;

/// The largest queue size the split layout allows (§2.7: "Queue Size ... maximum 32768").
pub const MAX_QUEUE_SIZE: u16 = 32768;

/// Bytes per descriptor: `addr: le64, len: le32, flags: le16, next: le16`.
const DESC_SIZE: u64 = 16;
/// Alignment of each part of the queue (§2.7, table "Virtqueue Part Alignment").
const DESC_ALIGN: u64 = 16;
const AVAIL_ALIGN: u64 = 2;
const USED_ALIGN: u64 = 4;

/// A guest mistake found in a queue. Each is fatal for the device until the driver resets it.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum QueueError {
    /// QueueNum at QueueReady is 0, above the maximum, or not a power of two.
    #[error("queue size {size} is not a power of two between 1 and {max}")]
    BadSize {
        /// Size the driver wrote.
        size: u32,
        /// QueueNumMax.
        max: u16,
    },
    /// A ring part is not aligned as §2.7 requires.
    #[error("{part} at {addr:#x} is not aligned to {align} bytes")]
    Misaligned {
        /// Which part.
        part: &'static str,
        /// Its address.
        addr: u64,
        /// Required alignment.
        align: u64,
    },
    /// A ring part, descriptor table or buffer is (partly) outside guest RAM.
    #[error("{what} at {addr:#x} ({len:#x} bytes) is not in guest RAM")]
    NotRam {
        /// What was being accessed.
        what: &'static str,
        /// Its address.
        addr: u64,
        /// Its length.
        len: u64,
        /// The memory error.
        #[source]
        source: AccessError,
    },
    /// A range that wraps around the 64-bit address space.
    #[error("{what} at {addr:#x} + {len:#x} wraps the address space")]
    Overflow {
        /// What was being accessed.
        what: &'static str,
        /// Start.
        addr: u64,
        /// Length.
        len: u64,
    },
    /// The driver's `idx` moved further than the queue holds.
    #[error("available index moved from {last} to {avail}, more than the queue size {size}")]
    AvailJump {
        /// Where the device was.
        last: u16,
        /// What the driver wrote.
        avail: u16,
        /// Queue size.
        size: u16,
    },
    /// A head or `next` index outside its table.
    #[error("descriptor index {index} is outside a table of {size}")]
    IndexOutOfRange {
        /// The index.
        index: u16,
        /// Entries in the table.
        size: u32,
    },
    /// More hops than entries in the table: the chain loops.
    #[error("descriptor chain is longer than its table ({limit} entries): a loop")]
    ChainLoop {
        /// The table size.
        limit: u32,
    },
    /// A buffer of length 0.
    #[error("descriptor {index} has length 0")]
    ZeroLength {
        /// The descriptor.
        index: u16,
    },
    /// An indirect descriptor without VIRTIO_F_INDIRECT_DESC negotiated.
    #[error("indirect descriptor {index} but VIRTIO_F_INDIRECT_DESC was not negotiated")]
    IndirectNotNegotiated {
        /// The descriptor.
        index: u16,
    },
    /// An indirect descriptor inside an indirect table (§2.7.5.3.1: MUST NOT).
    #[error("indirect descriptor {index} inside an indirect table")]
    NestedIndirect {
        /// The descriptor.
        index: u16,
    },
    /// VIRTQ_DESC_F_INDIRECT together with VIRTQ_DESC_F_NEXT (§2.7.5.3.1: MUST NOT).
    #[error("indirect descriptor {index} also has VIRTQ_DESC_F_NEXT")]
    IndirectWithNext {
        /// The descriptor.
        index: u16,
    },
    /// An indirect table whose length is 0, not a multiple of 16, or has more entries than
    /// the queue size.
    #[error("indirect table of {len:#x} bytes is not 1 to {max} descriptors of 16 bytes")]
    BadIndirectLength {
        /// `len` of the indirect descriptor.
        len: u32,
        /// Most entries allowed.
        max: u16,
    },
    /// A device-readable buffer after a device-writable one (§2.7.4.2: MUST NOT).
    #[error("device-readable descriptor {index} follows a device-writable one")]
    ReadableAfterWritable {
        /// The descriptor.
        index: u16,
    },
    /// The buffers of one chain add up to more than 4 GiB (`len` in the used ring is 32-bit).
    #[error("descriptor chain holds more than 4 GiB")]
    ChainTooBig,
    /// The request is malformed for this device type (bad header, buffer direction, …).
    #[error("{0}")]
    BadRequest(String),
}

/// One guest buffer of a chain, checked: non-empty, not wrapping, first and last byte in RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Guest physical address.
    pub addr: u64,
    /// Length in bytes (non-zero).
    pub len: u32,
    /// Device-writable.
    pub writable: bool,
}

/// A descriptor chain taken from the available ring: device-readable segments first, then
/// device-writable ones.
#[derive(Clone, Debug, Default)]
pub struct DescChain {
    head: u16,
    segments: Vec<Segment>,
    /// Number of device-readable segments (they come first).
    readable_segments: usize,
    readable_len: u64,
    writable_len: u64,
}

impl DescChain {
    /// The head descriptor index (the id that goes into the used ring).
    pub fn head(&self) -> u16 {
        self.head
    }

    /// All segments, readable ones first.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Total bytes the device may read.
    pub fn readable_len(&self) -> u64 {
        self.readable_len
    }

    /// Total bytes the device may write.
    pub fn writable_len(&self) -> u64 {
        self.writable_len
    }

    /// A cursor over the device-readable bytes.
    pub fn reader(&self) -> Reader<'_> {
        Reader {
            segs: self.segments.get(..self.readable_segments).unwrap_or(&[]),
            seg: 0,
            off: 0,
            remaining: self.readable_len,
        }
    }

    /// A cursor over the device-writable bytes.
    pub fn writer(&self) -> Writer<'_> {
        Writer {
            segs: self.segments.get(self.readable_segments..).unwrap_or(&[]),
            seg: 0,
            off: 0,
            remaining: self.writable_len,
            written: 0,
        }
    }

    /// Address of the last device-writable byte (where virtio-blk puts its status).
    pub fn last_writable_byte(&self) -> Option<u64> {
        let last = self.segments.last().filter(|s| s.writable)?;
        // Segments were checked not to wrap, and len > 0.
        Some(last.addr + u64::from(last.len) - 1)
    }
}

/// Reads the device-readable part of a chain in order.
#[derive(Debug)]
pub struct Reader<'a> {
    segs: &'a [Segment],
    seg: usize,
    off: u32,
    remaining: u64,
}

impl Reader<'_> {
    /// Bytes not read yet.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Reads up to `buf.len()` bytes; returns how many (fewer only at the end of the chain).
    pub fn read(&mut self, mem: &GuestMemory, buf: &mut [u8]) -> Result<usize, QueueError> {
        let mut done = 0usize;
        while done < buf.len() {
            let Some(s) = self.segs.get(self.seg) else {
                break;
            };
            let left_in_seg = (s.len - self.off) as usize;
            let n = left_in_seg.min(buf.len() - done);
            let addr = s.addr + u64::from(self.off);
            let dst = buf
                .get_mut(done..done + n)
                .ok_or_else(|| QueueError::BadRequest("reader out of bounds".into()))?;
            mem.read(addr, dst).map_err(|e| QueueError::NotRam {
                what: "buffer",
                addr,
                len: n as u64,
                source: e,
            })?;
            done += n;
            self.advance(n);
        }
        Ok(done)
    }

    /// Reads exactly `buf.len()` bytes or fails with `BadRequest` naming `what`.
    pub fn read_exact(
        &mut self,
        mem: &GuestMemory,
        buf: &mut [u8],
        what: &str,
    ) -> Result<(), QueueError> {
        if (buf.len() as u64) > self.remaining {
            return Err(QueueError::BadRequest(format!(
                "{what}: {} bytes needed, the chain has {} device-readable bytes left",
                buf.len(),
                self.remaining
            )));
        }
        self.read(mem, buf).map(|_| ())
    }

    fn advance(&mut self, n: usize) {
        // n never exceeds what is left in the current segment (see `read`).
        self.off += n as u32;
        self.remaining -= n as u64;
        if self.segs.get(self.seg).is_some_and(|s| self.off >= s.len) {
            self.seg += 1;
            self.off = 0;
        }
    }
}

/// Writes the device-writable part of a chain in order.
#[derive(Debug)]
pub struct Writer<'a> {
    segs: &'a [Segment],
    seg: usize,
    off: u32,
    remaining: u64,
    written: u64,
}

impl Writer<'_> {
    /// Bytes that may still be written.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Bytes written so far (what goes into the used ring's `len`).
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Stops the writer `n` bytes before the end of the chain (to keep a trailing status byte
    /// out of the data area).
    pub fn reserve_tail(&mut self, n: u64) {
        self.remaining = self.remaining.saturating_sub(n);
    }

    /// Writes up to `data.len()` bytes; returns how many (fewer only at the end).
    pub fn write(&mut self, mem: &GuestMemory, data: &[u8]) -> Result<usize, QueueError> {
        let mut done = 0usize;
        while done < data.len() && self.remaining > 0 {
            let Some(s) = self.segs.get(self.seg) else {
                break;
            };
            let left_in_seg = u64::from(s.len - self.off).min(self.remaining) as usize;
            let n = left_in_seg.min(data.len() - done);
            let addr = s.addr + u64::from(self.off);
            let src = data
                .get(done..done + n)
                .ok_or_else(|| QueueError::BadRequest("writer out of bounds".into()))?;
            mem.write(addr, src).map_err(|e| QueueError::NotRam {
                what: "buffer",
                addr,
                len: n as u64,
                source: e,
            })?;
            done += n;
            self.off += n as u32;
            self.remaining -= n as u64;
            self.written += n as u64;
            if self.off >= s.len {
                self.seg += 1;
                self.off = 0;
            }
        }
        Ok(done)
    }
}

/// One descriptor as read from the table.
#[derive(Clone, Copy, Debug)]
struct Desc {
    addr: u64,
    len: u32,
    flags: u16,
    next: u16,
}

/// A split virtqueue: the driver-programmed addresses and size, and the device's positions.
#[derive(Clone, Debug)]
pub struct Queue {
    max_size: u16,
    /// QueueNum as written (validated at QueueReady).
    num: u32,
    /// The validated size while ready.
    size: u16,
    ready: bool,
    desc_addr: u64,
    avail_addr: u64,
    used_addr: u64,
    next_avail: u16,
    next_used: u16,
    indirect: bool,
    /// Used entries were added since the device last decided about an interrupt.
    used_pending: bool,
}

impl Queue {
    /// The driver-programmed state and the device's positions, for a snapshot.
    pub fn snapshot_save(&self, w: &mut breadboard_core::snapshot::SnapWriter) {
        w.u32(self.num);
        w.u16(self.size);
        w.bool(self.ready);
        w.u64(self.desc_addr);
        w.u64(self.avail_addr);
        w.u64(self.used_addr);
        w.u16(self.next_avail);
        w.u16(self.next_used);
        w.bool(self.indirect);
        w.bool(self.used_pending);
    }

    /// Restores what `snapshot_save` wrote (`max_size` stays as built). A ready queue must be
    /// one QueueReady would have accepted (size, alignment, all parts in `mem`'s RAM): the ring
    /// accessors rely on that and are not re-checked per access. A stopped queue has size 0.
    pub fn snapshot_load(
        &mut self,
        r: &mut breadboard_core::snapshot::SnapReader<'_>,
        mem: &GuestMemory,
    ) -> Result<(), breadboard_core::snapshot::SnapshotError> {
        let num = r.u32()?;
        let size = r.u16()?;
        let ready = r.bool()?;
        let addrs = (r.u64()?, r.u64()?, r.u64()?);
        let next = (r.u16()?, r.u16()?);
        let flags = (r.bool()?, r.bool()?);
        let size_ok = if ready {
            size != 0 && size <= self.max_size && size.is_power_of_two()
        } else {
            size == 0
        };
        if !size_ok {
            return Err(breadboard_core::snapshot::SnapshotError::Corrupt(format!(
                "bad virtqueue size {size} (ready: {ready}, maximum {})",
                self.max_size
            )));
        }
        if ready {
            check_layout(mem, size, addrs.0, addrs.1, addrs.2)
                .map_err(|e| breadboard_core::snapshot::SnapshotError::Corrupt(e.to_string()))?;
        }
        self.num = num;
        self.size = size;
        self.ready = ready;
        (self.desc_addr, self.avail_addr, self.used_addr) = addrs;
        (self.next_avail, self.next_used) = next;
        (self.indirect, self.used_pending) = flags;
        Ok(())
    }

    /// A queue offering at most `max_size` entries (clamped to 1..=32768, rounded down to a
    /// power of two so a driver taking the maximum always gets a valid size).
    pub fn new(max_size: u16) -> Queue {
        let m = max_size.clamp(1, MAX_QUEUE_SIZE);
        // A power of two not above m: highest set bit.
        let max_size = 1u16 << (15 - m.leading_zeros().min(15));
        Queue {
            max_size,
            num: u32::from(max_size),
            size: 0,
            ready: false,
            desc_addr: 0,
            avail_addr: 0,
            used_addr: 0,
            next_avail: 0,
            next_used: 0,
            indirect: false,
            used_pending: false,
        }
    }

    /// QueueNumMax.
    pub fn max_size(&self) -> u16 {
        self.max_size
    }

    /// QueueNum as last written by the driver.
    pub fn num(&self) -> u32 {
        self.num
    }

    /// The size in use (0 while not ready).
    pub fn size(&self) -> u16 {
        self.size
    }

    /// QueueReady.
    pub fn ready(&self) -> bool {
        self.ready
    }

    /// Descriptor table address.
    pub fn desc_addr(&self) -> u64 {
        self.desc_addr
    }

    /// Driver (available) ring address.
    pub fn avail_addr(&self) -> u64 {
        self.avail_addr
    }

    /// Device (used) ring address.
    pub fn used_addr(&self) -> u64 {
        self.used_addr
    }

    /// Back to the reset state (not ready, addresses 0, QueueNum = max).
    pub fn reset(&mut self) {
        *self = Queue::new(self.max_size);
    }

    /// Sets QueueNum (checked at QueueReady).
    pub fn set_num(&mut self, num: u32) {
        self.num = num;
    }

    /// Sets the descriptor table address.
    pub fn set_desc_addr(&mut self, addr: u64) {
        self.desc_addr = addr;
    }

    /// Sets the driver ring address.
    pub fn set_avail_addr(&mut self, addr: u64) {
        self.avail_addr = addr;
    }

    /// Sets the device ring address.
    pub fn set_used_addr(&mut self, addr: u64) {
        self.used_addr = addr;
    }

    /// QueueReady = 1: checks size, alignment and that all three parts are in guest RAM, then
    /// starts the queue at index 0. `indirect` says whether VIRTIO_F_INDIRECT_DESC was
    /// negotiated. On error the queue stays not ready.
    pub fn activate(&mut self, mem: &GuestMemory, indirect: bool) -> Result<(), QueueError> {
        let size = u16::try_from(self.num)
            .ok()
            .filter(|&s| s != 0 && s <= self.max_size && s.is_power_of_two())
            .ok_or(QueueError::BadSize {
                size: self.num,
                max: self.max_size,
            })?;
        check_layout(mem, size, self.desc_addr, self.avail_addr, self.used_addr)?;
        self.size = size;
        self.next_avail = 0;
        self.next_used = 0;
        self.indirect = indirect;
        self.used_pending = false;
        self.ready = true;
        Ok(())
    }

    /// QueueReady = 0: stops the queue (addresses and QueueNum are kept).
    pub fn deactivate(&mut self) {
        self.ready = false;
        self.size = 0;
    }

    fn avail_idx(&self, mem: &GuestMemory) -> Result<u16, QueueError> {
        let addr = self.avail_addr + 2;
        let v = mem
            .read_u16(addr)
            .map_err(|e| ring_err("driver ring", addr, 2, e))?;
        // Pairs with the driver's write barrier before it publishes idx: ring entries and
        // descriptors are read after this.
        fence(Ordering::Acquire);
        Ok(v)
    }

    /// Whether the driver has made buffers available that the device has not taken.
    pub fn has_available(&self, mem: &GuestMemory) -> Result<bool, QueueError> {
        if !self.ready {
            return Ok(false);
        }
        Ok(self.pending(mem)? > 0)
    }

    fn pending(&self, mem: &GuestMemory) -> Result<u16, QueueError> {
        let avail = self.avail_idx(mem)?;
        let pending = avail.wrapping_sub(self.next_avail);
        if pending > self.size {
            return Err(QueueError::AvailJump {
                last: self.next_avail,
                avail,
                size: self.size,
            });
        }
        Ok(pending)
    }

    /// Takes the next available chain, checked; `None` if the ring is empty or the queue is
    /// not ready.
    pub fn pop(&mut self, mem: &GuestMemory) -> Result<Option<DescChain>, QueueError> {
        let chain = self.peek(mem)?;
        if chain.is_some() {
            self.next_avail = self.next_avail.wrapping_add(1);
        }
        Ok(chain)
    }

    /// Reads and checks the next available chain without taking it.
    pub fn peek(&self, mem: &GuestMemory) -> Result<Option<DescChain>, QueueError> {
        if !self.ready || self.pending(mem)? == 0 {
            return Ok(None);
        }
        // size is a power of two, so the modulo is a mask; the slot is < size.
        let slot = u64::from(self.next_avail % self.size);
        let addr = self.avail_addr + 4 + 2 * slot;
        let head = mem
            .read_u16(addr)
            .map_err(|e| ring_err("driver ring", addr, 2, e))?;
        self.walk(mem, head).map(Some)
    }

    /// Reads the chain starting at `head`.
    fn walk(&self, mem: &GuestMemory, head: u16) -> Result<DescChain, QueueError> {
        let mut chain = DescChain {
            head,
            ..DescChain::default()
        };
        let mut table = self.desc_addr;
        let mut entries = u32::from(self.size);
        let mut in_indirect = false;
        let mut index = head;
        let mut hops = 0u32;
        loop {
            if u32::from(index) >= entries {
                return Err(QueueError::IndexOutOfRange {
                    index,
                    size: entries,
                });
            }
            // Each table entry may be visited once; more visits than entries is a loop.
            hops += 1;
            if hops > entries {
                return Err(QueueError::ChainLoop { limit: entries });
            }
            let d = read_desc(mem, table, index, in_indirect)?;
            if d.flags & VIRTQ_DESC_F_INDIRECT != 0 {
                if in_indirect {
                    return Err(QueueError::NestedIndirect { index });
                }
                if !self.indirect {
                    return Err(QueueError::IndirectNotNegotiated { index });
                }
                if d.flags & VIRTQ_DESC_F_NEXT != 0 {
                    return Err(QueueError::IndirectWithNext { index });
                }
                let count = u64::from(d.len) / DESC_SIZE;
                if d.len == 0
                    || !u64::from(d.len).is_multiple_of(DESC_SIZE)
                    || count > u64::from(self.size)
                {
                    return Err(QueueError::BadIndirectLength {
                        len: d.len,
                        max: self.size,
                    });
                }
                check_range(mem, "indirect table", d.addr, u64::from(d.len))?;
                // The walk continues at entry 0 of the indirect table and ends with it.
                table = d.addr;
                entries = count as u32;
                in_indirect = true;
                index = 0;
                hops = 0;
                continue;
            }
            if d.len == 0 {
                return Err(QueueError::ZeroLength { index });
            }
            check_range(mem, "buffer", d.addr, u64::from(d.len))?;
            let writable = d.flags & VIRTQ_DESC_F_WRITE != 0;
            if writable {
                chain.writable_len += u64::from(d.len);
            } else {
                if chain.writable_len > 0 {
                    return Err(QueueError::ReadableAfterWritable { index });
                }
                chain.readable_len += u64::from(d.len);
                chain.readable_segments += 1;
            }
            if chain.readable_len > u64::from(u32::MAX) || chain.writable_len > u64::from(u32::MAX)
            {
                return Err(QueueError::ChainTooBig);
            }
            chain.segments.push(Segment {
                addr: d.addr,
                len: d.len,
                writable,
            });
            if d.flags & VIRTQ_DESC_F_NEXT == 0 {
                return Ok(chain);
            }
            index = d.next;
        }
    }

    /// Returns chain `head` to the driver with `len` bytes written.
    pub fn add_used(&mut self, mem: &GuestMemory, head: u16, len: u32) -> Result<(), QueueError> {
        if !self.ready {
            return Ok(());
        }
        let slot = u64::from(self.next_used % self.size);
        let addr = self.used_addr + 4 + 8 * slot;
        // struct virtq_used_elem { le32 id; le32 len; }
        let elem = (u64::from(head) | (u64::from(len) << 32)).to_le_bytes();
        mem.write(addr, &elem)
            .map_err(|e| ring_err("device ring", addr, 8, e))?;
        self.next_used = self.next_used.wrapping_add(1);
        // The element must be visible before the index that publishes it.
        fence(Ordering::Release);
        let idx_addr = self.used_addr + 2;
        mem.write_u16(idx_addr, self.next_used)
            .map_err(|e| ring_err("device ring", idx_addr, 2, e))?;
        self.used_pending = true;
        Ok(())
    }

    /// Whether used entries were added since the last call (and clears the mark).
    pub fn take_used_pending(&mut self) -> bool {
        std::mem::take(&mut self.used_pending)
    }

    /// Whether the driver wants a used-buffer notification (VIRTQ_AVAIL_F_NO_INTERRUPT clear;
    /// without VIRTIO_F_EVENT_IDX the flag is the only suppression mechanism).
    pub fn wants_interrupt(&self, mem: &GuestMemory) -> Result<bool, QueueError> {
        let addr = self.avail_addr;
        // Order the used idx write before reading the driver's flags.
        fence(Ordering::SeqCst);
        let flags = mem
            .read_u16(addr)
            .map_err(|e| ring_err("driver ring", addr, 2, e))?;
        Ok(flags & VIRTQ_AVAIL_F_NO_INTERRUPT == 0)
    }
}

fn ring_err(what: &'static str, addr: u64, len: u64, source: AccessError) -> QueueError {
    QueueError::NotRam {
        what,
        addr,
        len,
        source,
    }
}

/// Reads descriptor `index` of the table at `table`. The index was checked against the
/// table's size, and the table against RAM/wrap-around, so the address can't overflow; the
/// read itself is still checked.
fn read_desc(
    mem: &GuestMemory,
    table: u64,
    index: u16,
    indirect: bool,
) -> Result<Desc, QueueError> {
    let what = if indirect {
        "indirect table"
    } else {
        "descriptor table"
    };
    let addr = table
        .checked_add(DESC_SIZE * u64::from(index))
        .ok_or(QueueError::Overflow {
            what,
            addr: table,
            len: DESC_SIZE * (u64::from(index) + 1),
        })?;
    let mut b = [0u8; 16];
    mem.read(addr, &mut b)
        .map_err(|e| ring_err(what, addr, DESC_SIZE, e))?;
    let [
        a0,
        a1,
        a2,
        a3,
        a4,
        a5,
        a6,
        a7,
        l0,
        l1,
        l2,
        l3,
        f0,
        f1,
        n0,
        n1,
    ] = b;
    Ok(Desc {
        addr: u64::from_le_bytes([a0, a1, a2, a3, a4, a5, a6, a7]),
        len: u32::from_le_bytes([l0, l1, l2, l3]),
        flags: u16::from_le_bytes([f0, f1]),
        next: u16::from_le_bytes([n0, n1]),
    })
}

/// Checks that `[addr, addr+len)` does not wrap and that its first and last byte are guest
/// RAM. (`GuestMemory` has no zero-copy range check; a hole in the middle of a range whose
/// ends are RAM is caught by the access itself, which fails the request the same way.)
fn check_range(
    mem: &GuestMemory,
    what: &'static str,
    addr: u64,
    len: u64,
) -> Result<(), QueueError> {
    let last = len
        .checked_sub(1)
        .and_then(|l| addr.checked_add(l))
        .ok_or(QueueError::Overflow { what, addr, len })?;
    let mut b = [0u8; 1];
    for a in [addr, last] {
        mem.read(a, &mut b)
            .map_err(|e| ring_err(what, addr, len, e))?;
    }
    Ok(())
}

/// The checks of QueueReady on a queue of `size` entries with its three parts at these
/// addresses: each aligned as §2.7 requires and wholly in guest RAM (so no part wraps the
/// address space).
fn check_layout(
    mem: &GuestMemory,
    size: u16,
    desc: u64,
    avail: u64,
    used: u64,
) -> Result<(), QueueError> {
    let n = u64::from(size);
    // flags + idx + ring (+ used_event/avail_event, not used without EVENT_IDX but
    // drivers lay it out anyway).
    let parts = [
        ("descriptor table", desc, DESC_SIZE * n, DESC_ALIGN),
        ("driver ring", avail, 4 + 2 * n + 2, AVAIL_ALIGN),
        ("device ring", used, 4 + 8 * n + 2, USED_ALIGN),
    ];
    for (part, addr, len, align) in parts {
        if !addr.is_multiple_of(align) {
            return Err(QueueError::Misaligned { part, addr, align });
        }
        check_ram(mem, part, addr, len)?;
    }
    Ok(())
}

/// Checks that `[addr, addr+len)` is one piece of guest RAM by reading it (rings are small:
/// at most a few hundred KiB at the largest queue size).
fn check_ram(mem: &GuestMemory, what: &'static str, addr: u64, len: u64) -> Result<(), QueueError> {
    if addr.checked_add(len).is_none() {
        return Err(QueueError::Overflow { what, addr, len });
    }
    let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
    mem.read(addr, &mut buf)
        .map_err(|e| ring_err(what, addr, len, e))
}

#[cfg(test)]
// Tests: a failing unwrap, index or panic is a failed test (as clippy.toml allows).
#[allow(clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use breadboard_core::{AddressSpace, RamBlock, Region, RegionKind};
    use std::rc::Rc;

    const RAM: u64 = 0x8000_0000;
    const DESC: u64 = RAM;
    const AVAIL: u64 = RAM + 0x1000;
    const USED: u64 = RAM + 0x2000;

    fn mem() -> GuestMemory {
        let mut a = AddressSpace::new();
        a.add(Region {
            name: "ram".into(),
            base: RAM,
            size: 0x10000,
            kind: RegionKind::Ram {
                block: Rc::new(RamBlock::new("ram", 0x10000).expect("alloc")),
                readonly: false,
            },
            owner: None,
        })
        .expect("map");
        a.guest_memory()
    }

    fn queue(mem: &GuestMemory, size: u32, indirect: bool) -> Queue {
        let mut q = Queue::new(16);
        q.set_num(size);
        q.set_desc_addr(DESC);
        q.set_avail_addr(AVAIL);
        q.set_used_addr(USED);
        q.activate(mem, indirect).expect("activate");
        q
    }

    fn desc(mem: &GuestMemory, table: u64, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let a = table + 16 * u64::from(i);
        mem.write(a, &addr.to_le_bytes()).unwrap();
        mem.write(a + 8, &len.to_le_bytes()).unwrap();
        mem.write_u16(a + 12, flags).unwrap();
        mem.write_u16(a + 14, next).unwrap();
    }

    fn publish(mem: &GuestMemory, slot: u16, head: u16, idx: u16) {
        mem.write_u16(AVAIL + 4 + 2 * u64::from(slot), head)
            .unwrap();
        mem.write_u16(AVAIL + 2, idx).unwrap();
    }

    #[test]
    fn test_queue_new_rounds_max_down_to_power_of_two() {
        assert_eq!(Queue::new(0).max_size(), 1);
        assert_eq!(Queue::new(100).max_size(), 64);
        assert_eq!(Queue::new(256).max_size(), 256);
        assert_eq!(Queue::new(u16::MAX).max_size(), 32768);
    }

    #[test]
    fn test_queue_pop_reads_chain_and_add_used_publishes() {
        let m = mem();
        let mut q = queue(&m, 8, false);
        desc(&m, DESC, 3, RAM + 0x4000, 16, VIRTQ_DESC_F_NEXT, 5);
        desc(&m, DESC, 5, RAM + 0x5000, 100, VIRTQ_DESC_F_WRITE, 0);
        publish(&m, 0, 3, 1);
        let c = q.pop(&m).unwrap().expect("a chain");
        assert_eq!(c.head(), 3);
        assert_eq!((c.readable_len(), c.writable_len()), (16, 100));
        assert_eq!(c.last_writable_byte(), Some(RAM + 0x5000 + 99));
        assert!(q.pop(&m).unwrap().is_none());
        q.add_used(&m, 3, 42).unwrap();
        assert_eq!(m.read_u16(USED + 2).unwrap(), 1);
        assert_eq!(m.read_u32(USED + 4).unwrap(), 3);
        assert_eq!(m.read_u32(USED + 8).unwrap(), 42);
        assert!(q.take_used_pending());
        assert!(!q.take_used_pending());
    }

    #[test]
    fn test_queue_reader_and_writer_cross_segments() {
        let m = mem();
        let mut q = queue(&m, 8, false);
        m.write(RAM + 0x4000, b"abc").unwrap();
        m.write(RAM + 0x4100, b"defg").unwrap();
        desc(&m, DESC, 0, RAM + 0x4000, 3, VIRTQ_DESC_F_NEXT, 1);
        desc(&m, DESC, 1, RAM + 0x4100, 4, VIRTQ_DESC_F_NEXT, 2);
        desc(
            &m,
            DESC,
            2,
            RAM + 0x5000,
            2,
            VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE,
            3,
        );
        desc(&m, DESC, 3, RAM + 0x5100, 3, VIRTQ_DESC_F_WRITE, 0);
        publish(&m, 0, 0, 1);
        let c = q.pop(&m).unwrap().unwrap();
        let mut r = c.reader();
        let mut buf = [0u8; 7];
        r.read_exact(&m, &mut buf, "all").unwrap();
        assert_eq!(&buf, b"abcdefg");
        assert!(r.read_exact(&m, &mut [0u8; 1], "more").is_err());
        let mut w = c.writer();
        w.reserve_tail(1);
        assert_eq!(w.write(&m, b"WXYZ!").unwrap(), 4);
        assert_eq!(w.written(), 4);
        let mut out = [0u8; 3];
        m.read(RAM + 0x5000, &mut out[..2]).unwrap();
        assert_eq!(&out[..2], b"WX");
        m.read(RAM + 0x5100, &mut out).unwrap();
        assert_eq!(&out[..2], b"YZ");
        assert_eq!(out[2], 0, "reserved tail byte untouched");
    }

    #[test]
    fn test_queue_indirect_table_is_walked() {
        let m = mem();
        let mut q = queue(&m, 8, true);
        let table = RAM + 0x3000;
        desc(&m, table, 0, RAM + 0x4000, 8, VIRTQ_DESC_F_NEXT, 1);
        desc(&m, table, 1, RAM + 0x5000, 8, VIRTQ_DESC_F_WRITE, 0);
        desc(&m, DESC, 0, table, 32, VIRTQ_DESC_F_INDIRECT, 0);
        publish(&m, 0, 0, 1);
        let c = q.pop(&m).unwrap().unwrap();
        assert_eq!(c.segments().len(), 2);
        assert_eq!((c.readable_len(), c.writable_len()), (8, 8));
    }

    #[test]
    fn test_queue_errors_are_values() {
        let m = mem();
        let mut q = queue(&m, 4, false);
        // Loop 0 -> 1 -> 0.
        desc(&m, DESC, 0, RAM + 0x4000, 8, VIRTQ_DESC_F_NEXT, 1);
        desc(&m, DESC, 1, RAM + 0x4000, 8, VIRTQ_DESC_F_NEXT, 0);
        publish(&m, 0, 0, 1);
        assert_eq!(q.pop(&m), Err(QueueError::ChainLoop { limit: 4 }));
        // Avail idx far ahead.
        let mut q = queue(&m, 4, false);
        publish(&m, 0, 0, 9);
        assert!(matches!(q.pop(&m), Err(QueueError::AvailJump { .. })));
        // Bad sizes.
        let mut q = Queue::new(16);
        q.set_desc_addr(DESC);
        q.set_avail_addr(AVAIL);
        q.set_used_addr(USED);
        for bad in [0, 3, 32, 0x1_0000] {
            q.set_num(bad);
            assert!(matches!(
                q.activate(&m, false),
                Err(QueueError::BadSize { .. })
            ));
            assert!(!q.ready());
        }
    }

    impl PartialEq for DescChain {
        fn eq(&self, o: &Self) -> bool {
            self.head == o.head && self.segments == o.segments
        }
    }
}
