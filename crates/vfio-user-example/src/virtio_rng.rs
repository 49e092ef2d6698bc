//! A virtio entropy device (virtio 1.x §5.4) on a virtio-mmio version 2 transport (§4.2.2),
//! served over vfio-user so an unmodified Linux guest binds it with `compatible = "virtio,mmio"`
//! and its `virtio_rng` driver reads entropy from it.
//!
//! Region 0 (0x200 bytes, through messages, 32-bit accesses) is the virtio-mmio register block:
//!
//! | offset | register            | offset | register             |
//! |--------|---------------------|--------|----------------------|
//! | 0x000  | MagicValue "virt"   | 0x044  | QueueReady           |
//! | 0x004  | Version (2)         | 0x050  | QueueNotify (WO)     |
//! | 0x008  | DeviceID (4)        | 0x060  | InterruptStatus (RO) |
//! | 0x00c  | VendorID            | 0x064  | InterruptACK (WO)    |
//! | 0x010  | DeviceFeatures      | 0x070  | Status               |
//! | 0x014  | DeviceFeaturesSel   | 0x080/4| QueueDescLow/High    |
//! | 0x020  | DriverFeatures      | 0x090/4| QueueDriverLow/High  |
//! | 0x024  | DriverFeaturesSel   | 0x0a0/4| QueueDeviceLow/High  |
//! | 0x030  | QueueSel            | 0x0fc  | ConfigGeneration (0) |
//! | 0x034  | QueueNumMax (64)    | 0x100+ | config space (none)  |
//! | 0x038  | QueueNum            |        |                      |
//!
//! One level IRQ (index 0) is high while InterruptStatus is non-zero. One split virtqueue
//! (`requestq`), processed on QueueNotify through guest memory: every chain must consist of
//! device-writable descriptors, in range, without loops; anything else sets
//! DEVICE_NEEDS_RESET (and the configuration-change interrupt) and the queue stops until reset.

use std::sync::atomic::{Ordering, fence};

use breadboard_vfio_user::server::{
    AccessError, DeviceContext, DmaAccess, DtHints, IrqKind, PlatformDevice, RegionSpec,
};

/// Register block size.
pub const REGS_SIZE: u64 = 0x200;
/// Largest queue the device offers.
pub const QUEUE_NUM_MAX: u16 = 64;
/// Most bytes handed out per descriptor chain (the driver asks for far less).
pub const MAX_CHAIN_BYTES: u32 = 64 * 1024;

/// "virt", little-endian.
pub const MAGIC: u32 = 0x7472_6976;
/// Entropy source device type.
pub const DEVICE_ID_RNG: u32 = 4;
/// The vendor ID breadboard's own virtio-mmio transport reports ("QEMU").
pub const VENDOR_ID: u32 = 0x554d_4551;
/// VIRTIO_F_VERSION_1.
pub const F_VERSION_1: u64 = 1 << 32;

/// Register offsets.
pub mod reg {
    #![allow(missing_docs)]
    pub const MAGIC: u64 = 0x000;
    pub const VERSION: u64 = 0x004;
    pub const DEVICE_ID: u64 = 0x008;
    pub const VENDOR_ID: u64 = 0x00c;
    pub const DEVICE_FEATURES: u64 = 0x010;
    pub const DEVICE_FEATURES_SEL: u64 = 0x014;
    pub const DRIVER_FEATURES: u64 = 0x020;
    pub const DRIVER_FEATURES_SEL: u64 = 0x024;
    pub const QUEUE_SEL: u64 = 0x030;
    pub const QUEUE_NUM_MAX: u64 = 0x034;
    pub const QUEUE_NUM: u64 = 0x038;
    pub const QUEUE_READY: u64 = 0x044;
    pub const QUEUE_NOTIFY: u64 = 0x050;
    pub const INTERRUPT_STATUS: u64 = 0x060;
    pub const INTERRUPT_ACK: u64 = 0x064;
    pub const STATUS: u64 = 0x070;
    pub const QUEUE_DESC_LOW: u64 = 0x080;
    pub const QUEUE_DESC_HIGH: u64 = 0x084;
    pub const QUEUE_DRIVER_LOW: u64 = 0x090;
    pub const QUEUE_DRIVER_HIGH: u64 = 0x094;
    pub const QUEUE_DEVICE_LOW: u64 = 0x0a0;
    pub const QUEUE_DEVICE_HIGH: u64 = 0x0a4;
    pub const CONFIG_GENERATION: u64 = 0x0fc;
}

/// Device status bits (§2.1).
pub mod status {
    #![allow(missing_docs)]
    pub const ACKNOWLEDGE: u32 = 1;
    pub const DRIVER: u32 = 2;
    pub const DRIVER_OK: u32 = 4;
    pub const FEATURES_OK: u32 = 8;
    pub const DEVICE_NEEDS_RESET: u32 = 0x40;
    pub const FAILED: u32 = 0x80;
}

/// InterruptStatus: a buffer was used.
pub const INT_VRING: u32 = 1;
/// InterruptStatus: the configuration (here: DEVICE_NEEDS_RESET) changed.
pub const INT_CONFIG: u32 = 2;

const DESC_F_NEXT: u16 = 1;
const DESC_F_WRITE: u16 = 2;
const DESC_F_INDIRECT: u16 = 4;

/// Why a chain (or the queue) was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QueueError {
    /// A ring, descriptor or buffer is not in guest memory.
    #[error("guest memory fault: {0}")]
    Dma(String),
    /// A descriptor index is not below the queue size.
    #[error("descriptor index {0} out of range")]
    Index(u16),
    /// The chain is longer than the queue: a loop.
    #[error("descriptor chain loops")]
    Loop,
    /// A device-readable descriptor where only writable ones make sense.
    #[error("descriptor {0} is device-readable")]
    WrongDirection(u16),
    /// An indirect descriptor (VIRTIO_F_INDIRECT_DESC is not offered).
    #[error("indirect descriptor {0} without the feature")]
    Indirect(u16),
    /// The driver published more buffers than the queue holds.
    #[error("avail index moved by {0}, more than the queue size")]
    AvailJump(u16),
}

impl From<breadboard_vfio_user::server::DmaError> for QueueError {
    fn from(e: breadboard_vfio_user::server::DmaError) -> Self {
        Self::Dma(e.to_string())
    }
}

#[derive(Debug, Default)]
struct Queue {
    num: u16,
    ready: bool,
    desc: u64,
    avail: u64,
    used: u64,
    last_avail: u16,
    used_idx: u16,
}

/// Where random bytes come from.
pub type Entropy = Box<dyn FnMut(&mut [u8]) + Send>;

/// The virtio-rng device.
pub struct VirtioRng {
    device_features_sel: u32,
    driver_features_sel: u32,
    driver_features: u64,
    status: u32,
    queue_sel: u32,
    queue: Queue,
    interrupt_status: u32,
    entropy: Entropy,
}

impl std::fmt::Debug for VirtioRng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtioRng")
            .field("status", &self.status)
            .field("queue", &self.queue)
            .field("interrupt_status", &self.interrupt_status)
            .finish_non_exhaustive()
    }
}

fn set_half(v: &mut u64, high: bool, x: u32) {
    if high {
        *v = (*v & 0xffff_ffff) | (u64::from(x) << 32);
    } else {
        *v = (*v & !0xffff_ffff) | u64::from(x);
    }
}

impl VirtioRng {
    /// A device drawing its bytes from `entropy`.
    pub fn new(entropy: Entropy) -> Self {
        Self {
            device_features_sel: 0,
            driver_features_sel: 0,
            driver_features: 0,
            status: 0,
            queue_sel: 0,
            queue: Queue::default(),
            interrupt_status: 0,
            entropy,
        }
    }

    /// A device reading `/dev/urandom`.
    pub fn with_urandom() -> std::io::Result<Self> {
        use std::io::Read;
        let mut f = std::fs::File::open("/dev/urandom")?;
        Ok(Self::new(Box::new(move |buf: &mut [u8]| {
            if let Err(e) = f.read_exact(buf) {
                // Never hand out predictable bytes silently: zeros, loudly.
                tracing::error!(target: "vfio_user", "virtio-rng: /dev/urandom read failed: {e}");
                buf.fill(0);
            }
        })))
    }

    fn features(&self) -> u64 {
        F_VERSION_1
    }

    fn update_irq(&self, ctx: &mut DeviceContext<'_>) {
        ctx.irq.set_level(0, self.interrupt_status != 0);
    }

    fn do_reset(&mut self, ctx: &mut DeviceContext<'_>) {
        self.device_features_sel = 0;
        self.driver_features_sel = 0;
        self.driver_features = 0;
        self.status = 0;
        self.queue_sel = 0;
        self.queue = Queue::default();
        self.interrupt_status = 0;
        self.update_irq(ctx);
    }

    fn reg_read(&self, offset: u64) -> u32 {
        let q0 = self.queue_sel == 0;
        match offset {
            reg::MAGIC => MAGIC,
            reg::VERSION => 2,
            reg::DEVICE_ID => DEVICE_ID_RNG,
            reg::VENDOR_ID => VENDOR_ID,
            reg::DEVICE_FEATURES => match self.device_features_sel {
                0 => self.features() as u32,
                1 => (self.features() >> 32) as u32,
                _ => 0,
            },
            reg::QUEUE_NUM_MAX if q0 => u32::from(QUEUE_NUM_MAX),
            reg::QUEUE_NUM if q0 => u32::from(self.queue.num),
            reg::QUEUE_READY if q0 => u32::from(self.queue.ready),
            reg::INTERRUPT_STATUS => self.interrupt_status,
            reg::STATUS => self.status,
            reg::QUEUE_DESC_LOW if q0 => self.queue.desc as u32,
            reg::QUEUE_DESC_HIGH if q0 => (self.queue.desc >> 32) as u32,
            reg::QUEUE_DRIVER_LOW if q0 => self.queue.avail as u32,
            reg::QUEUE_DRIVER_HIGH if q0 => (self.queue.avail >> 32) as u32,
            reg::QUEUE_DEVICE_LOW if q0 => self.queue.used as u32,
            reg::QUEUE_DEVICE_HIGH if q0 => (self.queue.used >> 32) as u32,
            reg::CONFIG_GENERATION => 0,
            _ => 0,
        }
    }

    fn reg_write(&mut self, ctx: &mut DeviceContext<'_>, offset: u64, v: u32) {
        let q0 = self.queue_sel == 0;
        // Queue layout may only change while the queue is not ready (§4.2.2.3).
        let q_writable = q0 && !self.queue.ready;
        match offset {
            reg::DEVICE_FEATURES_SEL => self.device_features_sel = v,
            reg::DRIVER_FEATURES_SEL => self.driver_features_sel = v,
            reg::DRIVER_FEATURES => match self.driver_features_sel {
                0 => set_half(&mut self.driver_features, false, v),
                1 => set_half(&mut self.driver_features, true, v),
                _ => {}
            },
            reg::QUEUE_SEL => self.queue_sel = v,
            reg::QUEUE_NUM if q_writable => {
                if v == 0 || v > u32::from(QUEUE_NUM_MAX) {
                    tracing::warn!(target: "guest_error", "virtio-rng: QueueNum {v} out of range");
                } else {
                    self.queue.num = v as u16;
                }
            }
            reg::QUEUE_READY if q0 => {
                self.queue.ready = v & 1 != 0 && self.queue.num != 0;
            }
            reg::QUEUE_DESC_LOW if q_writable => set_half(&mut self.queue.desc, false, v),
            reg::QUEUE_DESC_HIGH if q_writable => set_half(&mut self.queue.desc, true, v),
            reg::QUEUE_DRIVER_LOW if q_writable => set_half(&mut self.queue.avail, false, v),
            reg::QUEUE_DRIVER_HIGH if q_writable => set_half(&mut self.queue.avail, true, v),
            reg::QUEUE_DEVICE_LOW if q_writable => set_half(&mut self.queue.used, false, v),
            reg::QUEUE_DEVICE_HIGH if q_writable => set_half(&mut self.queue.used, true, v),
            reg::QUEUE_NOTIFY => {
                if v == 0 {
                    self.notify(ctx);
                }
            }
            reg::INTERRUPT_ACK => {
                self.interrupt_status &= !v;
                self.update_irq(ctx);
            }
            reg::STATUS => {
                if v == 0 {
                    self.do_reset(ctx);
                } else {
                    let mut v = v;
                    // FEATURES_OK only sticks if the driver accepted a subset of our features
                    // including VERSION_1 (legacy drivers are not supported on version 2).
                    if v & status::FEATURES_OK != 0
                        && (self.driver_features & !self.features() != 0
                            || self.driver_features & F_VERSION_1 == 0)
                    {
                        v &= !status::FEATURES_OK;
                    }
                    self.status = v | (self.status & status::DEVICE_NEEDS_RESET);
                }
            }
            _ => {
                tracing::warn!(target: "guest_error", "virtio-rng: ignored write {v:#x} at {offset:#x}");
            }
        }
    }

    fn notify(&mut self, ctx: &mut DeviceContext<'_>) {
        if !self.queue.ready
            || self.status & status::DRIVER_OK == 0
            || self.status & status::DEVICE_NEEDS_RESET != 0
        {
            return;
        }
        match self.process(ctx.dma) {
            Ok(0) => {}
            Ok(_) => {
                self.interrupt_status |= INT_VRING;
            }
            Err(e) => {
                tracing::warn!(target: "guest_error", "virtio-rng: {e}; device needs reset");
                self.status |= status::DEVICE_NEEDS_RESET;
                self.interrupt_status |= INT_CONFIG;
            }
        }
        self.update_irq(ctx);
    }

    /// Serve every published chain; returns how many were used.
    fn process(&mut self, dma: &mut dyn DmaAccess) -> Result<u32, QueueError> {
        let q = &self.queue;
        let num = q.num;
        let avail_idx = dma.read_u16(q.avail.wrapping_add(2))?;
        let pending = avail_idx.wrapping_sub(q.last_avail);
        if pending > num {
            return Err(QueueError::AvailJump(pending));
        }
        // Read ring entries only after the index that published them.
        fence(Ordering::Acquire);
        let mut used = 0;
        while self.queue.last_avail != avail_idx {
            let q = &self.queue;
            let slot = u64::from(q.last_avail % num);
            let head = dma.read_u16(q.avail.wrapping_add(4).wrapping_add(2 * slot))?;
            let written = self.fill_chain(dma, head)?;
            let q = &self.queue;
            let uslot = u64::from(q.used_idx % num);
            let elem = q.used.wrapping_add(4).wrapping_add(8 * uslot);
            dma.write_u32(elem, u32::from(head))?;
            dma.write_u32(elem.wrapping_add(4), written)?;
            // The element must be visible before the index that publishes it.
            fence(Ordering::Release);
            let next = q.used_idx.wrapping_add(1);
            dma.write_u16(q.used.wrapping_add(2), next)?;
            self.queue.used_idx = next;
            self.queue.last_avail = self.queue.last_avail.wrapping_add(1);
            used += 1;
        }
        Ok(used)
    }

    /// Fill the writable buffers of the chain starting at `head` with random bytes; returns the
    /// number of bytes written.
    fn fill_chain(&mut self, dma: &mut dyn DmaAccess, head: u16) -> Result<u32, QueueError> {
        let num = self.queue.num;
        let mut idx = head;
        let mut hops = 0u16;
        let mut written = 0u32;
        let mut chunk = [0u8; 256];
        loop {
            if idx >= num {
                return Err(QueueError::Index(idx));
            }
            hops += 1;
            if hops > num {
                return Err(QueueError::Loop);
            }
            let at = self.queue.desc.wrapping_add(16 * u64::from(idx));
            let mut d = [0u8; 16];
            dma.read(at, &mut d)?;
            let addr = u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]);
            let len = u32::from_le_bytes([d[8], d[9], d[10], d[11]]);
            let flags = u16::from_le_bytes([d[12], d[13]]);
            let next = u16::from_le_bytes([d[14], d[15]]);
            if flags & DESC_F_INDIRECT != 0 {
                return Err(QueueError::Indirect(idx));
            }
            if flags & DESC_F_WRITE == 0 {
                return Err(QueueError::WrongDirection(idx));
            }
            let take = len.min(MAX_CHAIN_BYTES - written);
            let mut off = 0u32;
            while off < take {
                let n = (take - off).min(chunk.len() as u32) as usize;
                let buf = chunk.get_mut(..n).unwrap_or_default();
                (self.entropy)(buf);
                dma.write(addr.wrapping_add(u64::from(off)), buf)?;
                off += n as u32;
            }
            written += take;
            if flags & DESC_F_NEXT == 0 {
                return Ok(written);
            }
            idx = next;
        }
    }
}

impl PlatformDevice for VirtioRng {
    fn regions(&self) -> Vec<RegionSpec> {
        vec![RegionSpec::mmio(REGS_SIZE)]
    }

    fn irqs(&self) -> Vec<IrqKind> {
        vec![IrqKind::Level]
    }

    fn dt_hints(&self) -> DtHints {
        DtHints::compatible(&["virtio,mmio"])
    }

    fn read(
        &mut self,
        _ctx: &mut DeviceContext<'_>,
        region: u32,
        offset: u64,
        data: &mut [u8],
    ) -> Result<(), AccessError> {
        if region != 0 {
            return Err(AccessError::NoRegion(region));
        }
        if data.len() != 4 || !offset.is_multiple_of(4) {
            tracing::warn!(target: "guest_error",
                "virtio-rng: {}-byte read at {offset:#x} (registers are 32-bit)", data.len());
            data.fill(0);
            return Ok(());
        }
        data.copy_from_slice(&self.reg_read(offset).to_le_bytes());
        Ok(())
    }

    fn write(
        &mut self,
        ctx: &mut DeviceContext<'_>,
        region: u32,
        offset: u64,
        data: &[u8],
    ) -> Result<(), AccessError> {
        if region != 0 {
            return Err(AccessError::NoRegion(region));
        }
        match <[u8; 4]>::try_from(data) {
            Ok(b) if offset.is_multiple_of(4) => self.reg_write(ctx, offset, u32::from_le_bytes(b)),
            _ => tracing::warn!(target: "guest_error",
                "virtio-rng: {}-byte write at {offset:#x} ignored", data.len()),
        }
        Ok(())
    }

    fn reset(&mut self, ctx: &mut DeviceContext<'_>) {
        self.do_reset(ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use breadboard_vfio_user::server::testing::{FakeDma, RecordingIrqs, context};

    const RAM: u64 = 0x8000_0000;
    const DESC: u64 = RAM;
    const AVAIL: u64 = RAM + 0x1000;
    const USED: u64 = RAM + 0x2000;
    const BUF: u64 = RAM + 0x4000;
    const QSIZE: u16 = 8;

    struct Rig {
        dev: VirtioRng,
        dma: FakeDma,
        irq: RecordingIrqs,
    }

    /// Counts up from 1 so tests can tell random bytes from untouched zeros.
    fn counter() -> Entropy {
        let mut n = 0u8;
        Box::new(move |buf: &mut [u8]| {
            for b in buf {
                n = n.wrapping_add(1).max(1);
                *b = n;
            }
        })
    }

    impl Rig {
        fn new() -> Self {
            Self {
                dev: VirtioRng::new(counter()),
                dma: FakeDma::new(RAM, 0x10000),
                irq: RecordingIrqs::new(1),
            }
        }
        fn w(&mut self, off: u64, v: u32) {
            let mut ctx = context(&mut self.dma, &mut self.irq);
            self.dev.write(&mut ctx, 0, off, &v.to_le_bytes()).unwrap();
        }
        fn r(&mut self, off: u64) -> u32 {
            let mut ctx = context(&mut self.dma, &mut self.irq);
            let mut b = [0; 4];
            self.dev.read(&mut ctx, 0, off, &mut b).unwrap();
            u32::from_le_bytes(b)
        }
        /// What Linux's virtio_mmio + virtio_rng probe does, up to DRIVER_OK.
        fn bring_up(&mut self) {
            self.w(reg::STATUS, 0);
            self.w(reg::STATUS, status::ACKNOWLEDGE);
            self.w(reg::STATUS, status::ACKNOWLEDGE | status::DRIVER);
            self.w(reg::DEVICE_FEATURES_SEL, 1);
            assert_eq!(self.r(reg::DEVICE_FEATURES), 1, "VERSION_1 offered");
            self.w(reg::DRIVER_FEATURES_SEL, 1);
            self.w(reg::DRIVER_FEATURES, 1);
            self.w(reg::DRIVER_FEATURES_SEL, 0);
            self.w(reg::DRIVER_FEATURES, 0);
            let s = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK;
            self.w(reg::STATUS, s);
            assert_eq!(
                self.r(reg::STATUS) & status::FEATURES_OK,
                status::FEATURES_OK
            );
            self.w(reg::QUEUE_SEL, 0);
            assert_eq!(self.r(reg::QUEUE_NUM_MAX), u32::from(QUEUE_NUM_MAX));
            self.w(reg::QUEUE_NUM, u32::from(QSIZE));
            self.w(reg::QUEUE_DESC_LOW, DESC as u32);
            self.w(reg::QUEUE_DESC_HIGH, (DESC >> 32) as u32);
            self.w(reg::QUEUE_DRIVER_LOW, AVAIL as u32);
            self.w(reg::QUEUE_DRIVER_HIGH, 0);
            self.w(reg::QUEUE_DEVICE_LOW, USED as u32);
            self.w(reg::QUEUE_DEVICE_HIGH, 0);
            self.w(reg::QUEUE_READY, 1);
            self.w(reg::STATUS, s | status::DRIVER_OK);
        }
        fn desc(&mut self, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
            let mut d = Vec::new();
            d.extend_from_slice(&addr.to_le_bytes());
            d.extend_from_slice(&len.to_le_bytes());
            d.extend_from_slice(&flags.to_le_bytes());
            d.extend_from_slice(&next.to_le_bytes());
            self.dma.put(DESC + 16 * u64::from(i), &d);
        }
        /// Publish `head` as the next available chain.
        fn publish(&mut self, head: u16) {
            let idx = u16::from_le_bytes(self.dma.bytes(AVAIL + 2, 2).try_into().unwrap());
            self.dma
                .put(AVAIL + 4 + 2 * u64::from(idx % QSIZE), &head.to_le_bytes());
            self.dma.put(AVAIL + 2, &idx.wrapping_add(1).to_le_bytes());
        }
        fn used_idx(&self) -> u16 {
            u16::from_le_bytes(self.dma.bytes(USED + 2, 2).try_into().unwrap())
        }
        fn used_elem(&self, slot: u64) -> (u32, u32) {
            let b = self.dma.bytes(USED + 4 + 8 * slot, 8);
            (
                u32::from_le_bytes(b[..4].try_into().unwrap()),
                u32::from_le_bytes(b[4..].try_into().unwrap()),
            )
        }
    }

    #[test]
    fn test_virtio_rng_identity_registers() {
        let mut rig = Rig::new();
        assert_eq!(rig.r(reg::MAGIC), MAGIC);
        assert_eq!(rig.r(reg::VERSION), 2);
        assert_eq!(rig.r(reg::DEVICE_ID), DEVICE_ID_RNG);
        assert_eq!(rig.r(reg::VENDOR_ID), VENDOR_ID);
        assert_eq!(rig.r(0x100), 0, "no config space");
    }

    #[test]
    fn test_virtio_rng_fills_writable_buffer_and_interrupts() {
        let mut rig = Rig::new();
        rig.bring_up();
        rig.desc(0, BUF, 16, DESC_F_WRITE, 0);
        rig.publish(0);
        rig.w(reg::QUEUE_NOTIFY, 0);
        assert_eq!(rig.used_idx(), 1);
        assert_eq!(rig.used_elem(0), (0, 16));
        assert!(rig.dma.bytes(BUF, 16).iter().all(|&b| b != 0));
        assert_eq!(rig.dma.bytes(BUF + 16, 1), [0], "nothing past the buffer");
        assert_eq!(rig.r(reg::INTERRUPT_STATUS), INT_VRING);
        assert!(rig.irq.level(0));
        rig.w(reg::INTERRUPT_ACK, INT_VRING);
        assert_eq!(rig.r(reg::INTERRUPT_STATUS), 0);
        assert!(!rig.irq.level(0));
    }

    #[test]
    fn test_virtio_rng_chained_buffers_and_ring_wrap() {
        let mut rig = Rig::new();
        rig.bring_up();
        rig.desc(1, BUF, 4, DESC_F_WRITE | DESC_F_NEXT, 2);
        rig.desc(2, BUF + 0x100, 4, DESC_F_WRITE, 0);
        for round in 0..(QSIZE as u32 + 3) {
            rig.publish(1);
            rig.w(reg::QUEUE_NOTIFY, 0);
            let slot = u64::from(round % u32::from(QSIZE));
            assert_eq!(rig.used_elem(slot), (1, 8), "round {round}");
        }
        assert_eq!(rig.used_idx(), QSIZE + 3);
        assert_eq!(rig.r(reg::STATUS) & status::DEVICE_NEEDS_RESET, 0);
    }

    fn assert_needs_reset(rig: &mut Rig) {
        rig.w(reg::QUEUE_NOTIFY, 0);
        assert_ne!(rig.r(reg::STATUS) & status::DEVICE_NEEDS_RESET, 0);
        assert_eq!(rig.r(reg::INTERRUPT_STATUS) & INT_CONFIG, INT_CONFIG);
        assert!(rig.irq.level(0));
        assert_eq!(rig.used_idx(), 0, "nothing used");
    }

    #[test]
    fn test_virtio_rng_loop_sets_needs_reset() {
        let mut rig = Rig::new();
        rig.bring_up();
        rig.desc(0, BUF, 4, DESC_F_WRITE | DESC_F_NEXT, 1);
        rig.desc(1, BUF, 4, DESC_F_WRITE | DESC_F_NEXT, 0);
        rig.publish(0);
        assert_needs_reset(&mut rig);
    }

    #[test]
    fn test_virtio_rng_readable_descriptor_sets_needs_reset() {
        let mut rig = Rig::new();
        rig.bring_up();
        rig.desc(0, BUF, 4, 0, 0);
        rig.publish(0);
        assert_needs_reset(&mut rig);
    }

    #[test]
    fn test_virtio_rng_out_of_range_index_and_buffer_set_needs_reset() {
        let mut rig = Rig::new();
        rig.bring_up();
        rig.publish(QSIZE + 1);
        assert_needs_reset(&mut rig);

        let mut rig = Rig::new();
        rig.bring_up();
        rig.desc(0, 0x10, 4, DESC_F_WRITE, 0);
        rig.publish(0);
        assert_needs_reset(&mut rig);

        let mut rig = Rig::new();
        rig.bring_up();
        rig.desc(0, BUF, 4, DESC_F_WRITE | DESC_F_INDIRECT, 0);
        rig.publish(0);
        assert_needs_reset(&mut rig);
    }

    #[test]
    fn test_virtio_rng_avail_jump_sets_needs_reset_and_queue_stays_stopped() {
        let mut rig = Rig::new();
        rig.bring_up();
        rig.dma.put(AVAIL + 2, &(QSIZE + 1).to_le_bytes());
        assert_needs_reset(&mut rig);
        // Stopped until reset: a now-valid ring is not processed.
        rig.dma.put(AVAIL + 2, &1u16.to_le_bytes());
        rig.desc(0, BUF, 4, DESC_F_WRITE, 0);
        rig.w(reg::QUEUE_NOTIFY, 0);
        assert_eq!(rig.used_idx(), 0);
        // Reset and bring up again: works.
        rig.dma.put(AVAIL + 2, &0u16.to_le_bytes());
        rig.bring_up();
        assert!(!rig.irq.level(0), "reset lowered the line");
        rig.publish(0);
        rig.w(reg::QUEUE_NOTIFY, 0);
        assert_eq!(rig.used_idx(), 1);
    }

    #[test]
    fn test_virtio_rng_huge_buffer_is_capped() {
        let mut rig = Rig::new();
        rig.bring_up();
        rig.desc(0, BUF, u32::MAX, DESC_F_WRITE, 0);
        rig.publish(0);
        // The fake RAM ends at RAM + 0x10000 < BUF + MAX_CHAIN_BYTES: a fault, not a panic.
        assert_needs_reset(&mut rig);
        let mut rig = Rig::new();
        rig.dma = FakeDma::new(RAM, 0x4000 + MAX_CHAIN_BYTES as usize);
        rig.bring_up();
        rig.desc(0, BUF, u32::MAX, DESC_F_WRITE, 0);
        rig.publish(0);
        rig.w(reg::QUEUE_NOTIFY, 0);
        assert_eq!(rig.used_elem(0), (0, MAX_CHAIN_BYTES));
    }

    #[test]
    fn test_virtio_rng_features_ok_refused_without_version_1() {
        let mut rig = Rig::new();
        rig.w(reg::STATUS, status::ACKNOWLEDGE | status::DRIVER);
        rig.w(
            reg::STATUS,
            status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK,
        );
        assert_eq!(rig.r(reg::STATUS) & status::FEATURES_OK, 0);
    }

    #[test]
    fn test_virtio_rng_notify_before_driver_ok_does_nothing() {
        let mut rig = Rig::new();
        rig.w(reg::QUEUE_NUM, u32::from(QSIZE));
        rig.w(reg::QUEUE_READY, 1);
        rig.publish(0);
        rig.w(reg::QUEUE_NOTIFY, 0);
        assert!(rig.dma.log.is_empty());
    }

    #[test]
    fn test_virtio_rng_queue_layout_locked_while_ready() {
        let mut rig = Rig::new();
        rig.bring_up();
        rig.w(reg::QUEUE_DESC_LOW, 0x1234);
        assert_eq!(rig.r(reg::QUEUE_DESC_LOW), DESC as u32);
        rig.w(reg::QUEUE_SEL, 1);
        assert_eq!(rig.r(reg::QUEUE_NUM_MAX), 0, "only one queue");
    }
}
