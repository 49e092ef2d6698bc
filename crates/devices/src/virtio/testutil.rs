//! Test bench for the virtio devices: guest RAM and transports in a real [`AddressSpace`],
//! backends made through their `DeviceType` factories and plugged with [`super::plug`], and a
//! [`Driver`] that programs a transport through `Device::read`/`write` and lays out split
//! virtqueues in guest RAM the way Linux's virtio_mmio and virtio_ring do.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;

use breadboard_core::chardev::MemoryBackend;
use breadboard_core::irq::RecordingSink;
use breadboard_core::{
    AddressSpace, BlockBackend, Chardev, ChardevRegistry, Clock, ClockMode, DeviceCell, DeviceCtx,
    DeviceError, DeviceType, DriveRegistry, GuestMemory, Props, RamBlock, RawValue, Region,
    RegionKind, TimerHandle, TimerQueue,
};

use super::queue::{VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE};
use super::{VirtioBackend, mmio, status, with_backend};

pub const RAM_BASE: u64 = 0x8000_0000;
pub const RAM_SIZE: u64 = 0x40_0000;
pub const MMIO_BASE: u64 = 0x1000_1000;
pub const MMIO_STRIDE: u64 = 0x1000;
/// Queue size the test driver uses.
pub const QSIZE: u16 = 16;

/// Rings of transport n at RAM_BASE + n * RING_AREA, queue q at + q * QUEUE_AREA.
const RING_AREA: u64 = 0x2_0000;
const QUEUE_AREA: u64 = 0x8000;
/// Data pages of transport n at DATA_BASE + n * DATA_AREA, 4 KiB each.
const DATA_BASE: u64 = RAM_BASE + 0x10_0000;
const DATA_AREA: u64 = 0x4_0000;
pub const PAGE: u64 = 0x1000;

/// One buffer of a chain as a driver describes it.
#[derive(Clone, Copy, Debug)]
pub struct Buf {
    pub addr: u64,
    pub len: u32,
    pub writable: bool,
}

impl Buf {
    /// Device-readable.
    pub fn r(addr: u64, len: u32) -> Buf {
        Buf {
            addr,
            len,
            writable: false,
        }
    }
    /// Device-writable.
    pub fn w(addr: u64, len: u32) -> Buf {
        Buf {
            addr,
            len,
            writable: true,
        }
    }
}

/// A little machine: RAM, transports, backends, drives, chardevs, one IRQ recorder.
pub struct Bench {
    pub space: AddressSpace,
    pub mem: Rc<GuestMemory>,
    pub clock: Rc<Clock>,
    pub timers: Rc<TimerQueue>,
    pub chardevs: ChardevRegistry,
    pub drives: DriveRegistry,
    pub irqs: Rc<RecordingSink>,
    next_id: usize,
    transports: u64,
    tmp: PathBuf,
}

static BENCH_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Bench {
    pub fn new() -> Bench {
        let mut space = AddressSpace::new();
        space
            .add(Region {
                name: "ram".into(),
                base: RAM_BASE,
                size: RAM_SIZE,
                kind: RegionKind::Ram {
                    block: Rc::new(RamBlock::new("ram", RAM_SIZE).expect("alloc")),
                    readonly: false,
                },
                owner: None,
            })
            .expect("map ram");
        let mem = Rc::new(GuestMemory::default());
        mem.update_from(&space);
        let seq = BENCH_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = std::env::temp_dir().join(format!("bb-virtio-{}-{seq}", std::process::id()));
        std::fs::create_dir_all(&tmp).expect("tmp dir");
        Bench {
            space,
            mem,
            clock: Clock::new(ClockMode::Icount { shift: 0 }),
            timers: TimerQueue::new(),
            chardevs: ChardevRegistry::default(),
            drives: DriveRegistry::default(),
            irqs: RecordingSink::new(64),
            next_id: 1,
            transports: 0,
            tmp,
        }
    }

    /// Adds a raw drive `id` holding `contents`.
    pub fn add_drive(&self, id: &str, contents: &[u8], readonly: bool) {
        let p = self.drive_path(id);
        std::fs::write(&p, contents).expect("image");
        let d = BlockBackend::open(id, &p, readonly).expect("open drive");
        self.drives.add(d).expect("unique drive id");
    }

    pub fn drive_path(&self, id: &str) -> PathBuf {
        self.tmp.join(format!("{id}.img"))
    }

    /// Adds a chardev whose output is kept in memory.
    pub fn add_memory_chardev(&self, id: &str) -> MemoryBackend {
        let backend = MemoryBackend::default();
        self.chardevs
            .add(Chardev::new(id, Box::new(backend.clone())))
            .expect("unique chardev id");
        backend
    }

    /// Builds a device of type `ty` through its factory.
    pub fn try_make(
        &mut self,
        ty: &DeviceType,
        props: &[(&str, &str)],
    ) -> Result<DeviceCell, DeviceError> {
        let props = Props::build(
            &ty.name,
            &ty.props,
            props.iter().map(|&(k, v)| (k, RawValue::Str(v))),
        )?;
        let id = self.next_id;
        self.next_id += 1;
        let ctx = DeviceCtx {
            id,
            name: &ty.name,
            clock: self.clock.clone(),
            timers: TimerHandle::new(self.timers.clone(), self.clock.clone(), id),
            dma: self.mem.clone(),
            chardevs: &self.chardevs,
            drives: &self.drives,
            num_harts: 1,
        };
        let dev = (ty.factory)(&props, &ctx)?;
        Ok(Rc::new(RefCell::new(dev)))
    }

    /// A backend of type `ty`, not plugged.
    pub fn try_backend(
        &mut self,
        ty: &DeviceType,
        props: &[(&str, &str)],
    ) -> Result<DeviceCell, DeviceError> {
        self.try_make(ty, props)
    }

    /// A transport mapped at the next MMIO slot, its IRQ wired to recorder line = slot.
    pub fn transport(&mut self) -> (DeviceCell, u64) {
        let slot = self.transports;
        self.transports += 1;
        let cell = self.try_make(&mmio::device_type(), &[]).expect("transport");
        let base = MMIO_BASE + slot * MMIO_STRIDE;
        let size = cell.borrow().regions()[0].size();
        self.space
            .add(Region {
                name: format!("virtio-mmio.{slot}"),
                base,
                size,
                kind: RegionKind::Mmio {
                    device: cell.clone(),
                    index: 0,
                },
                owner: None,
            })
            .expect("map transport");
        self.mem.update_from(&self.space);
        let irqs = cell.borrow().irq_outputs();
        assert_eq!(irqs.len(), 1);
        irqs[0].connect(self.irqs.clone(), slot as u32);
        cell.borrow_mut().reset();
        (cell, slot)
    }

    /// A transport with a backend of type `ty` plugged in, and a driver for it.
    pub fn device(&mut self, ty: &DeviceType, props: &[(&str, &str)]) -> Driver {
        let backend = self
            .try_backend(ty, props)
            .unwrap_or_else(|e| panic!("making {}: {e}", ty.name));
        let (transport, slot) = self.transport();
        super::plug(&transport, backend.clone()).expect("plug");
        Driver {
            transport,
            backend,
            slot,
            mem: self.mem.clone(),
            irqs: self.irqs.clone(),
            queues: Vec::new(),
        }
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.tmp).ok();
    }
}

/// The driver's view of one queue.
#[derive(Clone, Debug, Default)]
pub struct DriverQueue {
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
    pub size: u16,
    next_desc: u16,
    pub avail_idx: u16,
    last_used: u16,
    indirect_tables: u64,
}

/// A guest driver for one transport.
pub struct Driver {
    pub transport: DeviceCell,
    pub backend: DeviceCell,
    pub slot: u64,
    pub mem: Rc<GuestMemory>,
    irqs: Rc<RecordingSink>,
    pub queues: Vec<DriverQueue>,
}

impl Driver {
    pub fn read(&self, off: u64) -> u32 {
        self.transport.borrow_mut().read(0, off, 4) as u32
    }

    pub fn write(&self, off: u64, v: u32) {
        self.transport.borrow_mut().write(0, off, 4, u64::from(v));
    }

    pub fn config_read(&self, off: u64, size: u8) -> u64 {
        self.transport
            .borrow_mut()
            .read(0, mmio::CONFIG + off, size)
    }

    pub fn status(&self) -> u32 {
        self.read(0x070)
    }

    pub fn irq_level(&self) -> bool {
        self.irqs.level(self.slot as u32)
    }

    /// MMIO base address of the transport.
    pub fn mmio_base(&self) -> u64 {
        MMIO_BASE + self.slot * MMIO_STRIDE
    }

    /// Address of data page `n` of this driver.
    pub fn data(&self, n: u64) -> u64 {
        assert!(
            n * PAGE < DATA_AREA,
            "data page {n} out of the driver's area"
        );
        DATA_BASE + self.slot * DATA_AREA + n * PAGE
    }

    pub fn error_count(&self) -> u64 {
        with_backend(&self.backend, |b| b.error_count()).expect("backend")
    }

    pub fn with_backend<R>(&self, f: impl FnOnce(&mut VirtioBackend) -> R) -> R {
        with_backend(&self.backend, f).expect("backend")
    }

    pub fn device_features(&self) -> u64 {
        self.write(0x014, 0);
        let lo = self.read(0x010);
        self.write(0x014, 1);
        let hi = self.read(0x010);
        u64::from(lo) | (u64::from(hi) << 32)
    }

    /// Default ring addresses of queue `q`.
    pub fn ring_addrs(&self, q: u32) -> (u64, u64, u64) {
        let base = RAM_BASE + self.slot * RING_AREA + u64::from(q) * QUEUE_AREA;
        (base, base + 0x1000, base + 0x2000)
    }

    /// Reset, ACKNOWLEDGE, DRIVER, features (`accept` & offered), FEATURES_OK. Returns
    /// whether the device kept FEATURES_OK.
    pub fn negotiate(&mut self, accept: u64) -> bool {
        self.write(0x070, 0);
        assert_eq!(self.status(), 0, "reset is immediate");
        self.queues.clear();
        self.write(0x070, status::ACKNOWLEDGE);
        self.write(0x070, status::ACKNOWLEDGE | status::DRIVER);
        let f = self.device_features() & accept;
        self.write(0x024, 0);
        self.write(0x020, f as u32);
        self.write(0x024, 1);
        self.write(0x020, (f >> 32) as u32);
        self.write(
            0x070,
            status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK,
        );
        self.status() & status::FEATURES_OK != 0
    }

    /// Programs queue `q` and sets QueueReady (the device may refuse: check the status).
    pub fn setup_queue(&mut self, q: u32, size: u32, desc: u64, avail: u64, used: u64) {
        self.write(0x030, q);
        assert_eq!(self.read(0x044), 0, "queue not ready before setup");
        assert!(
            self.read(0x034) >= size.min(u32::from(QSIZE)),
            "QueueNumMax"
        );
        // Clear the rings like a driver allocating zeroed memory would.
        for (a, l) in [
            (desc, 16 * u64::from(QSIZE)),
            (avail, 0x1000),
            (used, 0x1000),
        ] {
            let _ = self.mem.write(a, &vec![0u8; l as usize]);
        }
        self.write(0x038, size);
        self.write(0x080, desc as u32);
        self.write(0x084, (desc >> 32) as u32);
        self.write(0x090, avail as u32);
        self.write(0x094, (avail >> 32) as u32);
        self.write(0x0a0, used as u32);
        self.write(0x0a4, (used >> 32) as u32);
        self.write(0x044, 1);
        let i = q as usize;
        if self.queues.len() <= i {
            self.queues.resize(i + 1, DriverQueue::default());
        }
        self.queues[i] = DriverQueue {
            desc,
            avail,
            used,
            size: size as u16,
            indirect_tables: desc + 0x3000,
            ..DriverQueue::default()
        };
    }

    pub fn driver_ok(&self) {
        self.write(
            0x070,
            status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK | status::DRIVER_OK,
        );
    }

    /// The whole Linux-style init with every offered feature and QSIZE-entry queues.
    pub fn init(&mut self) {
        self.init_with(u64::MAX);
    }

    pub fn init_with(&mut self, accept: u64) {
        assert!(self.negotiate(accept), "FEATURES_OK accepted");
        let nq = self.with_backend(|b| b.num_queues()) as u32;
        for q in 0..nq {
            let (d, a, u) = self.ring_addrs(q);
            self.setup_queue(q, u32::from(QSIZE), d, a, u);
            assert_eq!(self.read(0x044), 1, "queue {q} ready");
        }
        self.driver_ok();
        assert_eq!(self.status() & status::DRIVER_OK, status::DRIVER_OK);
        assert_eq!(self.status() & status::DEVICE_NEEDS_RESET, 0);
    }

    /// Address of descriptor `i` of queue `q`'s table.
    pub fn desc_addr(&self, q: usize, i: u16) -> u64 {
        self.queues[q].desc + 16 * u64::from(i)
    }

    /// Address of queue `q`'s indirect table area (what `place_indirect` uses).
    pub fn indirect_table(&self, q: usize) -> u64 {
        self.queues[q].indirect_tables
    }

    /// Rewrites the descriptor at guest address `a` through `f`.
    pub fn patch_desc_at(&self, a: u64, f: impl FnOnce(&mut RawDesc)) {
        let mut d = RawDesc {
            addr: self.mem.read_u64(a).unwrap(),
            len: self.mem.read_u32(a + 8).unwrap(),
            flags: self.mem.read_u16(a + 12).unwrap(),
            next: self.mem.read_u16(a + 14).unwrap(),
        };
        f(&mut d);
        write_desc_at(&self.mem, a, d.addr, d.len, d.flags, d.next);
    }

    /// Lays `bufs` out as a chain at the next free descriptors; returns the head (not
    /// published).
    pub fn place_chain(&mut self, q: usize, bufs: &[Buf]) -> u16 {
        let dq = &mut self.queues[q];
        let size = dq.size;
        let head = dq.next_desc;
        let mut i = head;
        for (k, b) in bufs.iter().enumerate() {
            let next = (i + 1) % size;
            let mut flags = if b.writable { VIRTQ_DESC_F_WRITE } else { 0 };
            if k + 1 < bufs.len() {
                flags |= VIRTQ_DESC_F_NEXT;
            }
            write_desc_at(
                &self.mem,
                dq.desc + 16 * u64::from(i),
                b.addr,
                b.len,
                flags,
                next,
            );
            i = next;
        }
        dq.next_desc = i;
        head
    }

    /// Writes an indirect table for `bufs` and one descriptor pointing at it; returns the
    /// head (not published). `flags_extra` is or-ed into the pointing descriptor.
    pub fn place_indirect(&mut self, q: usize, bufs: &[Buf], flags_extra: u16) -> u16 {
        let table = self.queues[q].indirect_tables;
        for (k, b) in bufs.iter().enumerate() {
            let mut flags = if b.writable { VIRTQ_DESC_F_WRITE } else { 0 };
            if k + 1 < bufs.len() {
                flags |= VIRTQ_DESC_F_NEXT;
            }
            write_desc_at(
                &self.mem,
                table + 16 * k as u64,
                b.addr,
                b.len,
                flags,
                k as u16 + 1,
            );
        }
        let dq = &mut self.queues[q];
        let head = dq.next_desc;
        dq.next_desc = (head + 1) % dq.size;
        let len = 16 * bufs.len() as u32;
        write_desc_at(
            &self.mem,
            dq.desc + 16 * u64::from(head),
            table,
            len,
            VIRTQ_DESC_F_INDIRECT | flags_extra,
            0,
        );
        head
    }

    /// Publishes `head` in the available ring (slot = avail idx) and bumps the index.
    pub fn publish(&mut self, q: usize, head: u16) {
        let dq = &mut self.queues[q];
        let slot = dq.avail_idx % dq.size.max(1);
        self.mem
            .write_u16(dq.avail + 4 + 2 * u64::from(slot), head)
            .unwrap();
        dq.avail_idx = dq.avail_idx.wrapping_add(1);
        self.mem.write_u16(dq.avail + 2, dq.avail_idx).unwrap();
    }

    /// Sets the available index to any value.
    pub fn set_avail_idx(&mut self, q: usize, idx: u16) {
        self.queues[q].avail_idx = idx;
        self.mem.write_u16(self.queues[q].avail + 2, idx).unwrap();
    }

    pub fn submit(&mut self, q: usize, bufs: &[Buf]) -> u16 {
        let head = self.place_chain(q, bufs);
        self.publish(q, head);
        head
    }

    pub fn submit_indirect(&mut self, q: usize, bufs: &[Buf]) -> u16 {
        let head = self.place_indirect(q, bufs, 0);
        self.publish(q, head);
        head
    }

    pub fn notify(&self, q: usize) {
        self.write(0x050, q as u32);
    }

    /// New used entries (id, len) since the last call.
    pub fn used(&mut self, q: usize) -> Vec<(u32, u32)> {
        let dq = &mut self.queues[q];
        let idx = self.mem.read_u16(dq.used + 2).unwrap();
        let mut out = Vec::new();
        while dq.last_used != idx {
            let slot = u64::from(dq.last_used % dq.size);
            let e = dq.used + 4 + 8 * slot;
            out.push((
                self.mem.read_u32(e).unwrap(),
                self.mem.read_u32(e + 4).unwrap(),
            ));
            dq.last_used = dq.last_used.wrapping_add(1);
        }
        out
    }
}

/// A descriptor's four fields, for tests that corrupt them.
#[derive(Clone, Copy, Debug)]
pub struct RawDesc {
    pub addr: u64,
    pub len: u32,
    pub flags: u16,
    pub next: u16,
}

pub fn write_desc_at(mem: &GuestMemory, a: u64, addr: u64, len: u32, flags: u16, next: u16) {
    mem.write(a, &addr.to_le_bytes()).unwrap();
    mem.write(a + 8, &len.to_le_bytes()).unwrap();
    mem.write_u16(a + 12, flags).unwrap();
    mem.write_u16(a + 14, next).unwrap();
}

/// An MMIO region that counts every access to it: device DMA must never reach it.
pub struct Probe(pub Rc<std::cell::Cell<u64>>);

impl breadboard_core::Device for Probe {
    fn read(&mut self, _region: usize, _offset: u64, _size: u8) -> u64 {
        self.0.set(self.0.get() + 1);
        0
    }
    fn write(&mut self, _region: usize, _offset: u64, _size: u8, _value: u64) {
        self.0.set(self.0.get() + 1);
    }
}

impl Bench {
    /// Maps a [`Probe`] of `size` bytes at `base`; returns its access counter.
    pub fn add_probe(&mut self, base: u64, size: u64) -> Rc<std::cell::Cell<u64>> {
        let hits = Rc::new(std::cell::Cell::new(0));
        let cell: DeviceCell = Rc::new(RefCell::new(Box::new(Probe(hits.clone()))));
        self.space
            .add(Region {
                name: "probe".into(),
                base,
                size,
                kind: RegionKind::Mmio {
                    device: cell,
                    index: 0,
                },
                owner: None,
            })
            .expect("map probe");
        self.mem.update_from(&self.space);
        hits
    }
}
