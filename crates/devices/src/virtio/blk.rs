//! `virtio-blk-device`: the virtio block device (VIRTIO 1.2 §5.2) on a raw `-drive`.
//!
//! One request queue. A request is a chain: a 16-byte device-readable header
//! `{ le32 type; le32 reserved; le64 sector; }`, the data (device-readable for OUT,
//! device-writable for IN and GET_ID, none for FLUSH), and a final device-writable status
//! byte. With VIRTIO_F_VERSION_1 the split into descriptors is free (§2.6.4), so the header,
//! data and status are located by byte counts, not by descriptor boundaries.
//!
//! Guest mistakes in the chain's shape (no header, no status byte, data in the wrong direction
//! for the request type) break the device (DEVICE_NEEDS_RESET). Mistakes in the request's
//! meaning (sector out of range, length not a multiple of 512, write to a read-only drive)
//! and host I/O errors complete the request with VIRTIO_BLK_S_IOERR; unknown types with
//! VIRTIO_BLK_S_UNSUPP.
//!
//! Features: SEG_MAX, BLK_SIZE (512), FLUSH, and RO when the drive is read-only.
// Reads guest, file, socket or plugin input: no panicking shortcuts (SECURITY.md, issue 9).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::rc::Rc;

use breadboard_core::{
    BlockBackend, Device, DeviceCtx, DeviceError, DeviceType, GuestMemory, PropKind, PropSpec,
    Props,
};

use super::{
    DescChain, Queue, QueueError, Reader, VirtioBackend, VirtioDevice, Writer, copy_config,
};

/// Type name.
pub const TYPE_NAME: &str = "virtio-blk-device";

/// Virtio device ID of a block device.
pub const DEVICE_ID: u32 = 2;

/// Maximum number of segments in a request (config `seg_max`).
pub const VIRTIO_BLK_F_SEG_MAX: u64 = 1 << 2;
/// Disk is read-only.
pub const VIRTIO_BLK_F_RO: u64 = 1 << 5;
/// Block size in config `blk_size`.
pub const VIRTIO_BLK_F_BLK_SIZE: u64 = 1 << 6;
/// Cache flush command.
pub const VIRTIO_BLK_F_FLUSH: u64 = 1 << 9;

/// Request types (§5.2.6).
pub const VIRTIO_BLK_T_IN: u32 = 0;
/// Write.
pub const VIRTIO_BLK_T_OUT: u32 = 1;
/// Flush.
pub const VIRTIO_BLK_T_FLUSH: u32 = 4;
/// Device ID string.
pub const VIRTIO_BLK_T_GET_ID: u32 = 8;

/// Status: success.
pub const VIRTIO_BLK_S_OK: u8 = 0;
/// Status: I/O error.
pub const VIRTIO_BLK_S_IOERR: u8 = 1;
/// Status: unsupported request.
pub const VIRTIO_BLK_S_UNSUPP: u8 = 2;

/// Sectors are always 512 bytes in the protocol, whatever `blk_size` says.
pub const SECTOR_SIZE: u64 = 512;
/// Length of the GET_ID string.
pub const ID_LEN: usize = 20;

const QUEUE_SIZE: u16 = 256;
/// `struct virtio_blk_config` up to and including `unused1[3]`.
const CONFIG_LEN: usize = 60;
/// Bounce buffer size for data transfers (bounds host memory per request).
const CHUNK: u64 = 64 * 1024;

/// The block device logic.
pub struct VirtioBlk {
    drive: Rc<BlockBackend>,
    serial: String,
    /// Capacity in sectors (a trailing partial sector is not visible to the guest).
    capacity: u64,
}

impl VirtioBlk {
    /// A block device on `drive`; `serial` is returned by GET_ID.
    pub fn new(drive: Rc<BlockBackend>, serial: String) -> VirtioBlk {
        let capacity = drive.size() / SECTOR_SIZE;
        VirtioBlk {
            drive,
            serial,
            capacity,
        }
    }

    fn config(&self) -> [u8; CONFIG_LEN] {
        let mut c = [0u8; CONFIG_LEN];
        let fields: [(usize, &[u8]); 3] = [
            (0, &self.capacity.to_le_bytes()),
            // seg_max: the two other descriptors are the header and the status byte.
            (12, &u32::from(QUEUE_SIZE - 2).to_le_bytes()),
            (20, &(SECTOR_SIZE as u32).to_le_bytes()),
        ];
        for (at, bytes) in fields {
            if let Some(d) = c.get_mut(at..at + bytes.len()) {
                d.copy_from_slice(bytes);
            }
        }
        c
    }

    /// Checks a data transfer of `len` bytes at `sector`; the byte offset if valid.
    fn range(&self, sector: u64, len: u64, what: &str) -> Option<u64> {
        if !len.is_multiple_of(SECTOR_SIZE) {
            tracing::warn!(
                target: "guest_error",
                "virtio-blk '{}': {what} of {len} bytes is not a multiple of {SECTOR_SIZE}",
                self.drive.id
            );
            return None;
        }
        let ok = sector
            .checked_add(len / SECTOR_SIZE)
            .is_some_and(|end| end <= self.capacity);
        if !ok {
            tracing::warn!(
                target: "guest_error",
                "virtio-blk '{}': {what} of {len} bytes at sector {sector} is past the end ({} sectors)",
                self.drive.id,
                self.capacity
            );
            return None;
        }
        Some(sector * SECTOR_SIZE)
    }

    fn read(&self, sector: u64, w: &mut Writer<'_>, mem: &GuestMemory) -> Result<u8, QueueError> {
        let len = w.remaining();
        let Some(mut pos) = self.range(sector, len, "read") else {
            return Ok(VIRTIO_BLK_S_IOERR);
        };
        let mut buf = vec![0u8; len.min(CHUNK) as usize];
        let mut left = len;
        while left > 0 {
            let n = left.min(CHUNK) as usize;
            let Some(chunk) = buf.get_mut(..n) else {
                break;
            };
            if let Err(e) = self.drive.read_at(pos, chunk) {
                tracing::error!("virtio-blk '{}': read at {pos:#x}: {e}", self.drive.id);
                return Ok(VIRTIO_BLK_S_IOERR);
            }
            w.write(mem, chunk)?;
            pos += n as u64;
            left -= n as u64;
        }
        Ok(VIRTIO_BLK_S_OK)
    }

    fn write(&self, sector: u64, r: &mut Reader<'_>, mem: &GuestMemory) -> Result<u8, QueueError> {
        let len = r.remaining();
        if self.drive.readonly() {
            tracing::warn!(
                target: "guest_error",
                "virtio-blk '{}': write to a read-only drive",
                self.drive.id
            );
            return Ok(VIRTIO_BLK_S_IOERR);
        }
        let Some(mut pos) = self.range(sector, len, "write") else {
            return Ok(VIRTIO_BLK_S_IOERR);
        };
        let mut buf = vec![0u8; len.min(CHUNK) as usize];
        let mut left = len;
        while left > 0 {
            let n = left.min(CHUNK) as usize;
            let Some(chunk) = buf.get_mut(..n) else {
                break;
            };
            r.read_exact(mem, chunk, "virtio-blk write data")?;
            if let Err(e) = self.drive.write_at(pos, chunk) {
                tracing::error!("virtio-blk '{}': write at {pos:#x}: {e}", self.drive.id);
                return Ok(VIRTIO_BLK_S_IOERR);
            }
            pos += n as u64;
            left -= n as u64;
        }
        Ok(VIRTIO_BLK_S_OK)
    }

    /// Handles one request; returns the used length (bytes written, status included).
    fn handle(&self, chain: &DescChain, mem: &GuestMemory) -> Result<u32, QueueError> {
        let bad = |m: &str| Err(QueueError::BadRequest(format!("virtio-blk request: {m}")));
        let mut r = chain.reader();
        let mut hdr = [0u8; 16];
        r.read_exact(mem, &mut hdr, "virtio-blk request header")?;
        let Some(status_addr) = chain.last_writable_byte() else {
            return bad("no device-writable status byte");
        };
        let [t0, t1, t2, t3, _, _, _, _, s0, s1, s2, s3, s4, s5, s6, s7] = hdr;
        let ty = u32::from_le_bytes([t0, t1, t2, t3]);
        let sector = u64::from_le_bytes([s0, s1, s2, s3, s4, s5, s6, s7]);
        let data_out = r.remaining();
        let mut w = chain.writer();
        w.reserve_tail(1);
        let data_in = w.remaining();
        let status = match ty {
            VIRTIO_BLK_T_IN => {
                if data_out != 0 {
                    return bad("IN with device-readable data");
                }
                self.read(sector, &mut w, mem)?
            }
            VIRTIO_BLK_T_OUT => {
                if data_in != 0 {
                    return bad("OUT with device-writable data");
                }
                self.write(sector, &mut r, mem)?
            }
            VIRTIO_BLK_T_FLUSH => {
                if data_out != 0 || data_in != 0 {
                    return bad("FLUSH with data");
                }
                match self.drive.flush() {
                    Ok(()) => VIRTIO_BLK_S_OK,
                    Err(e) => {
                        tracing::error!("virtio-blk '{}': flush: {e}", self.drive.id);
                        VIRTIO_BLK_S_IOERR
                    }
                }
            }
            VIRTIO_BLK_T_GET_ID => {
                if data_out != 0 {
                    return bad("GET_ID with device-readable data");
                }
                // Up to 20 bytes, NUL-padded when shorter (no terminator when exactly 20).
                let mut id = [0u8; ID_LEN];
                for (d, s) in id.iter_mut().zip(self.serial.bytes()) {
                    *d = s;
                }
                let n = (data_in as usize).min(ID_LEN);
                w.write(mem, id.get(..n).unwrap_or(&[]))?;
                VIRTIO_BLK_S_OK
            }
            other => {
                tracing::debug!(target: "unimp", "virtio-blk: request type {other} unsupported");
                VIRTIO_BLK_S_UNSUPP
            }
        };
        mem.write(status_addr, &[status])
            .map_err(|e| QueueError::NotRam {
                what: "status byte",
                addr: status_addr,
                len: 1,
                source: e,
            })?;
        // The chain's writable length is at most 4 GiB - 1 (checked by the queue).
        Ok(u32::try_from(w.written() + 1).unwrap_or(u32::MAX))
    }
}

impl VirtioDevice for VirtioBlk {
    fn device_id(&self) -> u32 {
        DEVICE_ID
    }

    fn features(&self) -> u64 {
        let ro = if self.drive.readonly() {
            VIRTIO_BLK_F_RO
        } else {
            0
        };
        VIRTIO_BLK_F_SEG_MAX | VIRTIO_BLK_F_BLK_SIZE | VIRTIO_BLK_F_FLUSH | ro
    }

    fn num_queues(&self) -> usize {
        1
    }

    fn queue_max_size(&self) -> u16 {
        QUEUE_SIZE
    }

    fn config_len(&self) -> u64 {
        CONFIG_LEN as u64
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        copy_config(&self.config(), offset, data);
    }

    fn process(
        &mut self,
        _queue: usize,
        q: &mut Queue,
        mem: &GuestMemory,
    ) -> Result<bool, QueueError> {
        let mut used = false;
        while let Some(chain) = q.pop(mem)? {
            let len = self.handle(&chain, mem)?;
            q.add_used(mem, chain.head(), len)?;
            used = true;
        }
        Ok(used)
    }
}

fn make(props: &Props, ctx: &DeviceCtx<'_>) -> Result<Box<dyn Device>, DeviceError> {
    let drive = ctx
        .drive(props, "drive")?
        .ok_or_else(|| DeviceError::Realize(format!("Property '{TYPE_NAME}.drive' is required")))?;
    let serial = props
        .str("serial")
        .map_or_else(|| drive.id.clone(), str::to_string);
    let blk = VirtioBlk::new(drive, serial);
    Ok(Box::new(VirtioBackend::new(
        ctx.name,
        Box::new(blk),
        Rc::clone(&ctx.dma),
    )))
}

/// The `virtio-blk-device` type (plugs into a `virtio-mmio` transport).
pub fn device_type() -> DeviceType {
    super::backend_type(
        TYPE_NAME,
        "virtio block device",
        vec![
            PropSpec::required("drive", PropKind::Drive, "block backend (-drive ...,id=ID)"),
            PropSpec::optional(
                "serial",
                PropKind::Str,
                "disk serial for GET_ID (default: the drive id)",
            ),
        ],
        Rc::new(make),
    )
}

#[cfg(test)]
// Tests: a failing unwrap, index or panic is a failed test (as clippy.toml allows).
#[allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use super::*;
    use crate::virtio::testutil::{Bench, Buf, Driver};
    use crate::virtio::{feature, status};

    fn disk(bench: &mut Bench, id: &str, sectors: usize, readonly: bool) -> Driver {
        let img: Vec<u8> = (0..sectors * 512)
            .map(|i| (i / 512) as u8 ^ (i as u8))
            .collect();
        bench.add_drive(id, &img, readonly);
        let mut d = bench.device(&device_type(), &[("drive", id)]);
        d.init();
        d
    }

    fn header(d: &Driver, slot: u64, ty: u32, sector: u64) -> Buf {
        let addr = d.data(slot);
        let mut h = Vec::new();
        h.extend_from_slice(&ty.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&sector.to_le_bytes());
        d.mem.write(addr, &h).unwrap();
        Buf::r(addr, 16)
    }

    fn status_byte(d: &Driver, slot: u64) -> Buf {
        d.mem.write(d.data(slot), &[0xff]).unwrap();
        Buf::w(d.data(slot), 1)
    }

    fn status_of(d: &Driver, slot: u64) -> u8 {
        let mut b = [0u8];
        d.mem.read(d.data(slot), &mut b).unwrap();
        b[0]
    }

    trait Request {
        /// Submits a request on queue 0, notifies, and returns (used len, status).
        fn request(&mut self, bufs: &[Buf], status_slot: u64) -> (u32, u8);
    }

    impl Request for Driver {
        fn request(&mut self, bufs: &[Buf], status_slot: u64) -> (u32, u8) {
            let head = self.submit(0, bufs);
            self.notify(0);
            let used = self.used(0);
            assert_eq!(used.len(), 1, "one request completes");
            assert_eq!(used[0].0, u32::from(head));
            (used[0].1, status_of(self, status_slot))
        }
    }

    #[test]
    fn test_blk_config_and_features() {
        let mut b = Bench::new();
        let d = disk(&mut b, "hd0", 8, false);
        assert_eq!(d.read(0x008), DEVICE_ID);
        let f = d.device_features();
        assert_ne!(f & VIRTIO_BLK_F_FLUSH, 0);
        assert_ne!(f & VIRTIO_BLK_F_BLK_SIZE, 0);
        assert_ne!(f & VIRTIO_BLK_F_SEG_MAX, 0);
        assert_eq!(f & VIRTIO_BLK_F_RO, 0);
        assert_ne!(f & feature::VERSION_1, 0);
        assert_eq!(
            f & feature::EVENT_IDX,
            0,
            "EVENT_IDX is not implemented, not offered"
        );
        // capacity: 8 sectors, read as two 32-bit halves and as one 64-bit access.
        assert_eq!(d.config_read(0, 4), 8);
        assert_eq!(d.config_read(4, 4), 0);
        assert_eq!(d.config_read(0, 8), 8);
        assert_eq!(d.config_read(12, 4), 254);
        assert_eq!(d.config_read(20, 4), 512);
        assert_eq!(d.config_read(20, 2), 512);
        assert_eq!(d.config_read(21, 1), 2);
    }

    #[test]
    fn test_blk_read_sector_into_split_buffers() {
        let mut b = Bench::new();
        let mut d = disk(&mut b, "hd0", 8, false);
        let h = header(&d, 0, VIRTIO_BLK_T_IN, 3);
        let s = status_byte(&d, 1);
        // 512 bytes of data split 100 + 412 across two descriptors.
        let bufs = [h, Buf::w(d.data(2), 100), Buf::w(d.data(3), 412), s];
        let (len, st) = d.request(&bufs, 1);
        assert_eq!(st, VIRTIO_BLK_S_OK);
        assert_eq!(len, 513);
        let mut got = vec![0u8; 512];
        d.mem.read(d.data(2), &mut got[..100]).unwrap();
        d.mem.read(d.data(3), &mut got[100..]).unwrap();
        let want: Vec<u8> = (3 * 512..4 * 512)
            .map(|i| (i / 512) as u8 ^ (i as u8))
            .collect();
        assert_eq!(got, want);
        assert!(d.irq_level(), "used-buffer interrupt raised");
        assert_eq!(d.read(0x060), 1);
        d.write(0x064, 1);
        assert!(!d.irq_level(), "ACK lowers the line");
        assert_eq!(d.read(0x060), 0);
    }

    #[test]
    fn test_blk_write_then_read_back_file_and_flush() {
        let mut b = Bench::new();
        let mut d = disk(&mut b, "hd0", 8, false);
        let payload: Vec<u8> = (0..1024u32).map(|i| (i * 7) as u8).collect();
        d.mem.write(d.data(2), &payload).unwrap();
        let h = header(&d, 0, VIRTIO_BLK_T_OUT, 5);
        let s = status_byte(&d, 1);
        let (len, st) = d.request(&[h, Buf::r(d.data(2), 1024), s], 1);
        assert_eq!((len, st), (1, VIRTIO_BLK_S_OK));
        let file = std::fs::read(b.drive_path("hd0")).unwrap();
        assert_eq!(&file[5 * 512..7 * 512], &payload[..]);

        let h = header(&d, 0, VIRTIO_BLK_T_FLUSH, 0);
        let s = status_byte(&d, 1);
        assert_eq!(d.request(&[h, s], 1), (1, VIRTIO_BLK_S_OK));

        // Read it back through the device, via an indirect table this time.
        let h = header(&d, 0, VIRTIO_BLK_T_IN, 5);
        let s = status_byte(&d, 1);
        let head = d.submit_indirect(0, &[h, Buf::w(d.data(4), 1024), s]);
        d.notify(0);
        assert_eq!(d.used(0), vec![(u32::from(head), 1025)]);
        let mut back = vec![0u8; 1024];
        d.mem.read(d.data(4), &mut back).unwrap();
        assert_eq!(back, payload);
        assert_eq!(status_of(&d, 1), VIRTIO_BLK_S_OK);
    }

    #[test]
    fn test_blk_get_id_returns_drive_id_padded() {
        let mut b = Bench::new();
        let mut d = disk(&mut b, "hd0", 1, false);
        d.mem.write(d.data(2), &[0xaa; 20]).unwrap();
        let h = header(&d, 0, VIRTIO_BLK_T_GET_ID, 0);
        let s = status_byte(&d, 1);
        let (len, st) = d.request(&[h, Buf::w(d.data(2), 20), s], 1);
        assert_eq!((len, st), (21, VIRTIO_BLK_S_OK));
        let mut id = [0u8; 20];
        d.mem.read(d.data(2), &mut id).unwrap();
        assert_eq!(&id[..3], b"hd0");
        assert!(id[3..].iter().all(|&b| b == 0));
    }

    #[test]
    fn test_blk_serial_property_overrides_id_and_is_truncated() {
        let mut b = Bench::new();
        b.add_drive("d", &[0u8; 512], false);
        let mut d = b.device(
            &device_type(),
            &[("drive", "d"), ("serial", "0123456789abcdefghijKLMN")],
        );
        d.init();
        let h = header(&d, 0, VIRTIO_BLK_T_GET_ID, 0);
        let s = status_byte(&d, 1);
        d.request(&[h, Buf::w(d.data(2), 20), s], 1);
        let mut id = [0u8; 20];
        d.mem.read(d.data(2), &mut id).unwrap();
        assert_eq!(&id, b"0123456789abcdefghij");
    }

    #[test]
    fn test_blk_out_of_range_and_odd_lengths_are_ioerr() {
        let mut b = Bench::new();
        let mut d = disk(&mut b, "hd0", 4, false);
        let cases: [(u32, u64, u32); 4] = [
            (VIRTIO_BLK_T_IN, 4, 512),        // starts at the end
            (VIRTIO_BLK_T_IN, 3, 1024),       // runs past the end
            (VIRTIO_BLK_T_IN, u64::MAX, 512), // sector * 512 overflows
            (VIRTIO_BLK_T_IN, 0, 100),        // not a whole sector
        ];
        for (ty, sector, len) in cases {
            let h = header(&d, 0, ty, sector);
            let s = status_byte(&d, 1);
            let (used, st) = d.request(&[h, Buf::w(d.data(2), len), s], 1);
            assert_eq!(st, VIRTIO_BLK_S_IOERR, "sector {sector} len {len}");
            assert_eq!(used, 1);
        }
        let h = header(&d, 0, VIRTIO_BLK_T_OUT, 1u64 << 60);
        let s = status_byte(&d, 1);
        assert_eq!(
            d.request(&[h, Buf::r(d.data(2), 512), s], 1).1,
            VIRTIO_BLK_S_IOERR
        );
        assert_eq!(d.error_count(), 0, "semantic errors don't break the device");
        assert_eq!(d.status() & status::DEVICE_NEEDS_RESET, 0);
    }

    #[test]
    fn test_blk_unknown_type_is_unsupp() {
        let mut b = Bench::new();
        let mut d = disk(&mut b, "hd0", 4, false);
        let h = header(&d, 0, 11 /* DISCARD, not offered */, 0);
        let s = status_byte(&d, 1);
        assert_eq!(
            d.request(&[h, Buf::r(d.data(2), 16), s], 1),
            (1, VIRTIO_BLK_S_UNSUPP)
        );
    }

    #[test]
    fn test_blk_readonly_drive_offers_ro_and_refuses_writes() {
        let mut b = Bench::new();
        let mut d = disk(&mut b, "ro", 4, true);
        assert_ne!(d.device_features() & VIRTIO_BLK_F_RO, 0);
        let h = header(&d, 0, VIRTIO_BLK_T_OUT, 0);
        let s = status_byte(&d, 1);
        assert_eq!(
            d.request(&[h, Buf::r(d.data(2), 512), s], 1).1,
            VIRTIO_BLK_S_IOERR
        );
        let h = header(&d, 0, VIRTIO_BLK_T_IN, 0);
        let s = status_byte(&d, 1);
        assert_eq!(
            d.request(&[h, Buf::w(d.data(2), 512), s], 1).1,
            VIRTIO_BLK_S_OK
        );
    }

    #[test]
    fn test_blk_requires_drive_and_claims_it_once() {
        let mut b = Bench::new();
        let e = b
            .try_backend(&device_type(), &[])
            .err()
            .expect("drive is required");
        assert_eq!(
            e.to_string(),
            "Property 'virtio-blk-device.drive' is required"
        );
        let e = b
            .try_backend(&device_type(), &[("drive", "nope")])
            .err()
            .expect("unknown drive");
        assert!(e.to_string().contains("nope"), "{e}");
        b.add_drive("hd0", &[0u8; 512], false);
        b.try_backend(&device_type(), &[("drive", "hd0")])
            .expect("first user");
        assert!(
            b.try_backend(&device_type(), &[("drive", "hd0")]).is_err(),
            "second user"
        );
    }

    #[test]
    fn test_blk_many_requests_in_one_notify_wrap_the_ring() {
        let mut b = Bench::new();
        let mut d = disk(&mut b, "hd0", 8, false);
        // 40 requests through a 16-entry queue: indices wrap twice.
        for round in 0..10u64 {
            let mut heads = Vec::new();
            for k in 0..4u64 {
                let h = header(&d, 8 * k, VIRTIO_BLK_T_IN, (round + k) % 8);
                let s = status_byte(&d, 8 * k + 1);
                heads.push(d.submit(0, &[h, Buf::w(d.data(8 * k + 2), 512), s]));
            }
            d.notify(0);
            let used = d.used(0);
            assert_eq!(used.len(), 4);
            for (k, (id, len)) in used.iter().enumerate() {
                assert_eq!(*id, u32::from(heads[k]));
                assert_eq!(*len, 513);
                assert_eq!(status_of(&d, 8 * k as u64 + 1), VIRTIO_BLK_S_OK);
            }
        }
    }
}
