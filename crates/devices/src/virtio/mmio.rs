//! `virtio-mmio`: the virtio MMIO transport, version 2 ("modern") register layout
//! (VIRTIO 1.2 §4.2.2). Legacy (version 1) is not offered.
//!
//! One 0x200-byte region; registers below 0x100 take aligned 32-bit accesses only, the
//! device configuration space from 0x100 any width (§4.2.2.2). One IRQ output, level:
//! high while InterruptStatus is non-zero. With no backend plugged, DeviceID reads 0 and the
//! driver leaves the slot alone (§4.2.3.1.1).
//!
//! | offset | register | | offset | register |
//! |---|---|---|---|---|
//! | 0x000 | MagicValue "virt" (R) | | 0x060 | InterruptStatus (R) |
//! | 0x004 | Version = 2 (R) | | 0x064 | InterruptACK (W) |
//! | 0x008 | DeviceID (R) | | 0x070 | Status (RW; 0 resets) |
//! | 0x00c | VendorID (R) | | 0x080/0x084 | QueueDescLow/High (W) |
//! | 0x010 | DeviceFeatures (R) | | 0x090/0x094 | QueueDriverLow/High (W) |
//! | 0x014 | DeviceFeaturesSel (W) | | 0x0a0/0x0a4 | QueueDeviceLow/High (W) |
//! | 0x020 | DriverFeatures (W) | | 0x0ac | SHMSel (W) |
//! | 0x024 | DriverFeaturesSel (W) | | 0x0b0/0x0b4 | SHMLenLow/High (R) |
//! | 0x030 | QueueSel (W) | | 0x0b8/0x0bc | SHMBaseLow/High (R) |
//! | 0x034 | QueueNumMax (R) | | 0x0fc | ConfigGeneration (R) |
//! | 0x038 | QueueNum (W) | | 0x100+ | device configuration space |
//! | 0x044 | QueueReady (RW) | | | |
//! | 0x050 | QueueNotify (W) | | | |
//!
//! The queue address registers and QueueNum also read back what was written (handy for
//! `info qtree`-style debugging; the spec leaves such reads undefined).
// Reads guest, file, socket or plugin input: no panicking shortcuts (SECURITY.md, issue 9).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::borrow::Cow;
use std::rc::Rc;

use breadboard_core::fdt::{FdtError, FdtWriter, NodeResources};
use breadboard_core::{
    Device, DeviceCell, DeviceCtx, DeviceError, DeviceType, IrqLine, Props, RegionSpec,
};

use super::{VirtioBackend, with_backend};

/// Type name.
pub const TYPE_NAME: &str = "virtio-mmio";

/// Size of the register region.
pub const REGION_SIZE: u64 = 0x200;

/// "virt" as a little-endian word.
pub const MAGIC_VALUE: u32 = 0x7472_6976;
/// The modern register layout.
pub const VERSION: u32 = 2;
/// "QEMU": the vendor ID QEMU's transport reports; drivers don't care, tools sometimes do.
pub const VENDOR_ID: u32 = 0x554d_4551;

const MAGIC: u64 = 0x000;
const VERSION_REG: u64 = 0x004;
const DEVICE_ID: u64 = 0x008;
const VENDOR: u64 = 0x00c;
const DEVICE_FEATURES: u64 = 0x010;
const DEVICE_FEATURES_SEL: u64 = 0x014;
const DRIVER_FEATURES: u64 = 0x020;
const DRIVER_FEATURES_SEL: u64 = 0x024;
const QUEUE_SEL: u64 = 0x030;
const QUEUE_NUM_MAX: u64 = 0x034;
const QUEUE_NUM: u64 = 0x038;
const QUEUE_READY: u64 = 0x044;
const QUEUE_NOTIFY: u64 = 0x050;
const INTERRUPT_STATUS: u64 = 0x060;
const INTERRUPT_ACK: u64 = 0x064;
const STATUS: u64 = 0x070;
const QUEUE_DESC_LOW: u64 = 0x080;
const QUEUE_DESC_HIGH: u64 = 0x084;
const QUEUE_DRIVER_LOW: u64 = 0x090;
const QUEUE_DRIVER_HIGH: u64 = 0x094;
const QUEUE_DEVICE_LOW: u64 = 0x0a0;
const QUEUE_DEVICE_HIGH: u64 = 0x0a4;
const SHM_SEL: u64 = 0x0ac;
const SHM_LEN_LOW: u64 = 0x0b0;
const SHM_LEN_HIGH: u64 = 0x0b4;
const SHM_BASE_LOW: u64 = 0x0b8;
const SHM_BASE_HIGH: u64 = 0x0bc;
const CONFIG_GENERATION: u64 = 0x0fc;
/// Start of the device configuration space.
pub const CONFIG: u64 = 0x100;

/// Replaces the low or high 32 bits of `old`.
fn merge_half(old: u64, value: u32, high: bool) -> u64 {
    if high {
        (old & 0xffff_ffff) | (u64::from(value) << 32)
    } else {
        (old & !0xffff_ffff) | u64::from(value)
    }
}

/// The transport.
pub struct VirtioMmio {
    name: String,
    irq: IrqLine,
    backend: Option<DeviceCell>,
    device_features_sel: u32,
    driver_features_sel: u32,
    queue_sel: u32,
}

impl VirtioMmio {
    /// An empty transport named `name` (for log lines).
    pub fn new(name: &str) -> VirtioMmio {
        VirtioMmio {
            name: name.to_string(),
            irq: IrqLine::new(),
            backend: None,
            device_features_sel: 0,
            driver_features_sel: 0,
            queue_sel: 0,
        }
    }

    /// The name used in log lines.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether a backend is plugged in.
    pub fn has_backend(&self) -> bool {
        self.backend.is_some()
    }

    /// The plugged backend's cell.
    pub fn backend(&self) -> Option<&DeviceCell> {
        self.backend.as_ref()
    }

    pub(super) fn irq_line(&self) -> IrqLine {
        self.irq.clone()
    }

    pub(super) fn set_backend(&mut self, backend: DeviceCell) {
        self.backend = Some(backend);
    }

    fn with<R>(&self, f: impl FnOnce(&mut VirtioBackend) -> R) -> Option<R> {
        let cell = self.backend.as_ref()?;
        let r = with_backend(cell, f);
        if r.is_none() {
            tracing::error!("{}: backend busy or not a virtio backend", self.name);
        }
        r
    }

    fn bad(&self, what: &str, offset: u64, size: u8) {
        tracing::warn!(
            target: "guest_error",
            "{}: {what} of {size} bytes at {offset:#x}",
            self.name
        );
    }

    fn read_reg(&mut self, offset: u64) -> u32 {
        match offset {
            MAGIC => return MAGIC_VALUE,
            VERSION_REG => return VERSION,
            VENDOR => return VENDOR_ID,
            DEVICE_ID => return self.with(|b| b.device_id()).unwrap_or(0),
            _ => {}
        }
        if self.backend.is_none() {
            return 0;
        }
        let qsel = self.queue_sel as usize;
        let dsel = self.device_features_sel;
        let r = self.with(|b| match offset {
            DEVICE_FEATURES => match dsel {
                0 => Some(b.device_features() as u32),
                1 => Some((b.device_features() >> 32) as u32),
                _ => Some(0),
            },
            QUEUE_NUM_MAX => Some(b.queue(qsel).map_or(0, |q| u32::from(q.max_size()))),
            QUEUE_NUM => Some(b.queue(qsel).map_or(0, |q| q.num())),
            QUEUE_READY => Some(b.queue(qsel).map_or(0, |q| u32::from(q.ready()))),
            INTERRUPT_STATUS => Some(b.interrupt_status()),
            STATUS => Some(b.status()),
            QUEUE_DESC_LOW => Some(b.queue(qsel).map_or(0, |q| q.desc_addr() as u32)),
            QUEUE_DESC_HIGH => Some(b.queue(qsel).map_or(0, |q| (q.desc_addr() >> 32) as u32)),
            QUEUE_DRIVER_LOW => Some(b.queue(qsel).map_or(0, |q| q.avail_addr() as u32)),
            QUEUE_DRIVER_HIGH => Some(b.queue(qsel).map_or(0, |q| (q.avail_addr() >> 32) as u32)),
            QUEUE_DEVICE_LOW => Some(b.queue(qsel).map_or(0, |q| q.used_addr() as u32)),
            QUEUE_DEVICE_HIGH => Some(b.queue(qsel).map_or(0, |q| (q.used_addr() >> 32) as u32)),
            // No shared memory regions: a length of all ones means "no such region"
            // (§4.2.2: "reading from a non-existent region ... results in 0xffffffff").
            SHM_LEN_LOW | SHM_LEN_HIGH | SHM_BASE_LOW | SHM_BASE_HIGH => Some(0xffff_ffff),
            CONFIG_GENERATION => Some(b.config_generation()),
            _ => None,
        });
        match r {
            Some(Some(v)) => v,
            Some(None) => {
                self.bad("read of a write-only or unknown register", offset, 4);
                0
            }
            None => 0,
        }
    }

    fn write_reg(&mut self, offset: u64, value: u32) {
        match offset {
            DEVICE_FEATURES_SEL => {
                self.device_features_sel = value;
                return;
            }
            DRIVER_FEATURES_SEL => {
                self.driver_features_sel = value;
                return;
            }
            QUEUE_SEL => {
                self.queue_sel = value;
                return;
            }
            SHM_SEL => return,
            _ => {}
        }
        if self.backend.is_none() {
            self.bad("write to an empty transport", offset, 4);
            return;
        }
        let qsel = self.queue_sel as usize;
        let fsel = self.driver_features_sel;
        let handled = self.with(|b| {
            match offset {
                DRIVER_FEATURES => b.write_driver_features(fsel, value),
                QUEUE_NUM => b.configure_queue(qsel, |q| q.set_num(value)),
                QUEUE_READY => b.set_queue_ready(qsel, value & 1 != 0),
                QUEUE_NOTIFY => b.notify(value & 0xffff),
                INTERRUPT_ACK => b.ack_interrupt(value),
                STATUS => b.write_status(value),
                QUEUE_DESC_LOW | QUEUE_DESC_HIGH => b.configure_queue(qsel, |q| {
                    q.set_desc_addr(merge_half(q.desc_addr(), value, offset == QUEUE_DESC_HIGH));
                }),
                QUEUE_DRIVER_LOW | QUEUE_DRIVER_HIGH => b.configure_queue(qsel, |q| {
                    q.set_avail_addr(merge_half(
                        q.avail_addr(),
                        value,
                        offset == QUEUE_DRIVER_HIGH,
                    ));
                }),
                QUEUE_DEVICE_LOW | QUEUE_DEVICE_HIGH => b.configure_queue(qsel, |q| {
                    q.set_used_addr(merge_half(
                        q.used_addr(),
                        value,
                        offset == QUEUE_DEVICE_HIGH,
                    ));
                }),
                _ => return false,
            }
            true
        });
        if handled == Some(false) {
            self.bad("write to a read-only or unknown register", offset, 4);
        }
    }
}

impl Device for VirtioMmio {
    fn snapshot_save(&self) -> Result<Vec<u8>, breadboard_core::snapshot::SnapshotError> {
        // The backend (a device of its own) saves the queues, status and features.
        let mut w = breadboard_core::snapshot::SnapWriter::new();
        w.u32(self.device_features_sel);
        w.u32(self.driver_features_sel);
        w.u32(self.queue_sel);
        Ok(w.finish())
    }

    fn snapshot_load(
        &mut self,
        data: &[u8],
    ) -> Result<(), breadboard_core::snapshot::SnapshotError> {
        let mut r = breadboard_core::snapshot::SnapReader::new(data);
        let v = (r.u32()?, r.u32()?, r.u32()?);
        r.end()?;
        (
            self.device_features_sel,
            self.driver_features_sel,
            self.queue_sel,
        ) = v;
        Ok(())
    }

    fn regions(&self) -> Vec<RegionSpec> {
        vec![RegionSpec::Mmio {
            name: Cow::Owned(self.name.clone()),
            size: REGION_SIZE,
        }]
    }

    fn read(&mut self, region: usize, offset: u64, size: u8) -> u64 {
        if region != 0 {
            self.bad("read of a region the transport does not have", offset, size);
            return 0;
        }
        if offset >= CONFIG {
            let mut b = [0u8; 8];
            let Some(data) = b
                .get_mut(..usize::from(size))
                .filter(|_| size.is_power_of_two())
            else {
                self.bad("config read", offset, size);
                return 0;
            };
            let ok = self.with(|be| be.read_config(offset - CONFIG, data));
            if ok == Some(false) {
                self.bad("read past the config space", offset, size);
            }
            return u64::from_le_bytes(b);
        }
        if size != 4 || !offset.is_multiple_of(4) {
            self.bad("unaligned or non-32-bit register read", offset, size);
            return 0;
        }
        u64::from(self.read_reg(offset))
    }

    fn write(&mut self, region: usize, offset: u64, size: u8, value: u64) {
        if region != 0 {
            self.bad(
                "write to a region the transport does not have",
                offset,
                size,
            );
            return;
        }
        if offset >= CONFIG {
            let bytes = value.to_le_bytes();
            let Some(data) = bytes
                .get(..usize::from(size))
                .filter(|_| size.is_power_of_two())
            else {
                self.bad("config write", offset, size);
                return;
            };
            let ok = self.with(|be| be.write_config(offset - CONFIG, data));
            if ok == Some(false) {
                self.bad("write past the config space", offset, size);
            }
            return;
        }
        if size != 4 || !offset.is_multiple_of(4) {
            self.bad("unaligned or non-32-bit register write", offset, size);
            return;
        }
        self.write_reg(offset, value as u32);
    }

    fn irq_outputs(&self) -> Vec<IrqLine> {
        vec![self.irq.clone()]
    }

    fn reset(&mut self) {
        self.device_features_sel = 0;
        self.driver_features_sel = 0;
        self.queue_sel = 0;
        if self.backend.is_some() {
            self.with(VirtioBackend::reset_device);
        } else {
            self.irq.lower();
        }
    }

    fn write_fdt(&self, fdt: &mut FdtWriter, res: &NodeResources) -> Result<(), FdtError> {
        let node = fdt.begin_node(&res.node_name("virtio_mmio"))?;
        res.write_common(fdt, &["virtio,mmio"])?;
        // Our DMA is cache-coherent; say so rather than rely on the architecture default.
        fdt.property_null("dma-coherent")?;
        fdt.end_node(node)
    }
}

fn make(_props: &Props, ctx: &DeviceCtx<'_>) -> Result<Box<dyn Device>, DeviceError> {
    Ok(Box::new(VirtioMmio::new(ctx.name)))
}

/// The `virtio-mmio` type: one 0x200-byte region, one IRQ output, no properties. Backends
/// are attached with [`super::plug`].
pub fn device_type() -> DeviceType {
    DeviceType {
        name: Cow::Borrowed(TYPE_NAME),
        description: Cow::Borrowed("virtio MMIO transport (version 2)"),
        user_creatable: true,
        sysbus: true,
        bus: None,
        compatible: &["virtio,mmio"],
        props: Vec::new(),
        factory: Rc::new(make),
    }
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
    use crate::virtio::testutil::{Bench, Buf, MMIO_BASE};
    use crate::virtio::{INT_CONFIG, INT_USED_RING, feature, has_backend, plug, rng, status};
    use breadboard_core::fdt::IrqTarget;
    use breadboard_core::{DeviceType, TypeRegistry};

    fn rng_dev(b: &mut Bench) -> crate::virtio::testutil::Driver {
        b.device(&rng::device_type(), &[("seed", "9")])
    }

    #[test]
    fn test_mmio_identification_registers() {
        let mut b = Bench::new();
        let d = rng_dev(&mut b);
        assert_eq!(d.read(MAGIC), 0x7472_6976);
        assert_eq!(&(d.read(MAGIC)).to_le_bytes(), b"virt");
        assert_eq!(d.read(VERSION_REG), 2);
        assert_eq!(d.read(DEVICE_ID), rng::DEVICE_ID);
        assert_eq!(d.read(VENDOR), 0x554d_4551);
        // The same through the address space, as a hart would see it.
        assert_eq!(b.space.read(MMIO_BASE, 4), Ok(u64::from(MAGIC_VALUE)));
        assert_eq!(b.space.read(MMIO_BASE + DEVICE_ID, 4), Ok(4));
    }

    #[test]
    fn test_mmio_empty_transport_reads_device_id_zero_and_ignores_writes() {
        let mut b = Bench::new();
        let (t, slot) = b.transport();
        let rd = |off: u64| t.borrow_mut().read(0, off, 4);
        assert_eq!(rd(MAGIC), u64::from(MAGIC_VALUE));
        assert_eq!(rd(VERSION_REG), 2);
        assert_eq!(rd(DEVICE_ID), 0, "no backend: Linux skips the slot");
        t.borrow_mut().write(0, STATUS, 4, 0xf);
        t.borrow_mut().write(0, QUEUE_NOTIFY, 4, 0);
        assert_eq!(rd(STATUS), 0);
        assert_eq!(rd(QUEUE_NUM_MAX), 0);
        assert_eq!(t.borrow_mut().read(0, CONFIG, 4), 0);
        assert!(!b.irqs.level(slot as u32));
        assert!(!has_backend(&t));
    }

    #[test]
    fn test_mmio_bad_access_sizes_read_zero_and_are_ignored() {
        let mut b = Bench::new();
        let mut d = rng_dev(&mut b);
        d.init();
        let t = d.transport.clone();
        assert_eq!(t.borrow_mut().read(0, MAGIC, 2), 0, "16-bit register read");
        assert_eq!(t.borrow_mut().read(0, MAGIC, 8), 0, "64-bit register read");
        assert_eq!(t.borrow_mut().read(0, MAGIC + 1, 4), 0, "unaligned");
        // A byte write of 0 to Status must not reset the device.
        t.borrow_mut().write(0, STATUS, 1, 0);
        assert_ne!(d.status() & status::DRIVER_OK, 0);
        // Write-only registers read 0; read-only registers ignore writes.
        assert_eq!(d.read(QUEUE_NOTIFY), 0);
        d.write(MAGIC, 0);
        assert_eq!(d.read(MAGIC), MAGIC_VALUE);
        // Offsets beyond the (empty) config space read 0.
        assert_eq!(t.borrow_mut().read(0, CONFIG, 4), 0);
        assert_eq!(d.error_count(), 0, "register misuse is not a queue error");
    }

    #[test]
    fn test_mmio_feature_negotiation() {
        let mut b = Bench::new();
        let mut d = rng_dev(&mut b);
        let f = d.device_features();
        assert_eq!(f, feature::VERSION_1 | feature::INDIRECT_DESC);
        d.write(DEVICE_FEATURES_SEL, 2);
        assert_eq!(d.read(DEVICE_FEATURES), 0);
        // Without VERSION_1 (a legacy driver) FEATURES_OK does not stick.
        assert!(!d.negotiate(!feature::VERSION_1));
        // A feature that was not offered: refused too.
        d.write(STATUS, 0);
        d.write(STATUS, status::ACKNOWLEDGE | status::DRIVER);
        d.write(DRIVER_FEATURES_SEL, 0);
        d.write(DRIVER_FEATURES, 1 << 3);
        d.write(DRIVER_FEATURES_SEL, 1);
        d.write(DRIVER_FEATURES, 1);
        d.write(
            STATUS,
            status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK,
        );
        assert_eq!(d.status() & status::FEATURES_OK, 0);
        // The accepted subset sticks, and can't change after FEATURES_OK.
        assert!(d.negotiate(feature::VERSION_1));
        d.write(DRIVER_FEATURES_SEL, 0);
        d.write(DRIVER_FEATURES, feature::INDIRECT_DESC as u32);
        assert_eq!(d.with_backend(|b| b.driver_features()), feature::VERSION_1);
    }

    #[test]
    fn test_mmio_queue_registers() {
        let mut b = Bench::new();
        let mut d = rng_dev(&mut b);
        assert!(d.negotiate(u64::MAX));
        d.write(QUEUE_SEL, 0);
        assert_eq!(d.read(QUEUE_NUM_MAX), 64);
        d.write(QUEUE_SEL, 1);
        assert_eq!(d.read(QUEUE_NUM_MAX), 0, "rng has one queue");
        d.write(QUEUE_READY, 1);
        assert_eq!(d.read(QUEUE_READY), 0);
        assert_eq!(d.error_count(), 0);
        d.write(QUEUE_SEL, 0);
        d.write(QUEUE_DESC_LOW, 0x8000_0000);
        d.write(QUEUE_DESC_HIGH, 0x1);
        assert_eq!(d.read(QUEUE_DESC_LOW), 0x8000_0000);
        assert_eq!(d.read(QUEUE_DESC_HIGH), 1);
        let (desc, avail, used) = d.ring_addrs(0);
        d.setup_queue(0, 8, desc, avail, used);
        assert_eq!(d.read(QUEUE_READY), 1);
        assert_eq!(d.read(QUEUE_NUM), 8);
        // Reconfiguring a ready queue is ignored.
        d.write(QUEUE_NUM, 4);
        d.write(QUEUE_DESC_LOW, 0);
        assert_eq!(d.read(QUEUE_NUM), 8);
        assert_eq!(d.read(QUEUE_DESC_LOW) as u64, desc & 0xffff_ffff);
        // Linux's del_vq: QueueReady = 0 and read back 0.
        d.write(QUEUE_READY, 0);
        assert_eq!(d.read(QUEUE_READY), 0);
    }

    #[test]
    fn test_mmio_interrupt_status_ack_and_line() {
        let mut b = Bench::new();
        let mut d = rng_dev(&mut b);
        d.init();
        d.submit(0, &[Buf::w(d.data(0), 16)]);
        d.notify(0);
        assert_eq!(d.read(INTERRUPT_STATUS), INT_USED_RING);
        assert!(d.irq_level());
        d.write(INTERRUPT_ACK, INT_CONFIG);
        assert!(d.irq_level(), "acking another bit leaves the line up");
        d.write(INTERRUPT_ACK, INT_USED_RING);
        assert!(!d.irq_level());
        assert_eq!(d.read(INTERRUPT_STATUS), 0);
    }

    #[test]
    fn test_mmio_no_interrupt_flag_suppresses_used_interrupt() {
        let mut b = Bench::new();
        let mut d = rng_dev(&mut b);
        d.init();
        let avail = d.queues[0].avail;
        d.mem.write_u16(avail, 1).unwrap(); // VIRTQ_AVAIL_F_NO_INTERRUPT
        d.submit(0, &[Buf::w(d.data(0), 16)]);
        d.notify(0);
        assert_eq!(d.used(0).len(), 1, "the buffer is still used");
        assert!(!d.irq_level());
        assert_eq!(d.read(INTERRUPT_STATUS), 0);
    }

    #[test]
    fn test_mmio_status_zero_resets_device() {
        let mut b = Bench::new();
        let mut d = rng_dev(&mut b);
        d.init();
        d.submit(0, &[Buf::w(d.data(0), 16)]);
        d.notify(0);
        assert!(d.irq_level());
        d.write(STATUS, 0);
        assert_eq!(d.status(), 0);
        assert_eq!(d.read(INTERRUPT_STATUS), 0);
        assert!(!d.irq_level(), "reset lowers the line");
        assert_eq!(d.read(QUEUE_READY), 0);
        assert_eq!(d.with_backend(|b| b.driver_features()), 0);
        // Machine reset through the transport does the same.
        d.init();
        d.transport.borrow_mut().reset();
        assert_eq!(d.status(), 0);
    }

    #[test]
    fn test_mmio_buffers_posted_before_driver_ok_are_handled_at_driver_ok() {
        let mut b = Bench::new();
        let mut d = rng_dev(&mut b);
        assert!(d.negotiate(u64::MAX));
        let (desc, avail, used) = d.ring_addrs(0);
        d.setup_queue(0, 16, desc, avail, used);
        d.submit(0, &[Buf::w(d.data(0), 16)]);
        d.notify(0);
        assert!(d.used(0).is_empty(), "not before DRIVER_OK");
        d.driver_ok();
        assert_eq!(d.used(0).len(), 1);
        assert!(d.irq_level());
    }

    #[test]
    fn test_mmio_plug_rules() {
        let mut b = Bench::new();
        let backend = b.try_backend(&rng::device_type(), &[]).unwrap();
        let (t1, _) = b.transport();
        let (t2, _) = b.transport();
        assert!(!has_backend(&t1));
        assert!(
            plug(&backend, t1.clone()).is_err(),
            "a backend is not a transport"
        );
        assert!(
            plug(&t1, t2.clone()).is_err(),
            "a transport is not a backend"
        );
        assert!(plug(&t1, t1.clone()).is_err(), "not into itself");
        plug(&t1, backend.clone()).expect("plug");
        assert!(has_backend(&t1));
        assert!(!has_backend(&backend), "only transports have backends");
        let other = b.try_backend(&rng::device_type(), &[]).unwrap();
        let e = plug(&t1, other.clone()).unwrap_err();
        assert!(e.contains("already has a backend"), "{e}");
        let e = plug(&t2, backend).unwrap_err();
        assert!(e.contains("already plugged"), "{e}");
        plug(&t2, other).expect("a fresh backend into a free transport");
        assert_eq!(
            t2.borrow_mut().read(0, DEVICE_ID, 4),
            u64::from(rng::DEVICE_ID)
        );
    }

    #[test]
    fn test_mmio_backend_reset_via_machine_keeps_plugging() {
        let mut b = Bench::new();
        let mut d = rng_dev(&mut b);
        d.init();
        d.backend.borrow_mut().reset();
        assert_eq!(d.status(), 0);
        assert!(has_backend(&d.transport));
        d.init();
    }

    #[test]
    fn test_mmio_any_access_anywhere_is_harmless_and_reset_recovers() {
        let mut b = Bench::new();
        b.add_drive("hd0", &[0u8; 4096], false);
        let mut d = b.device(&crate::virtio::blk::device_type(), &[("drive", "hd0")]);
        let (empty, _) = b.transport();
        for t in [d.transport.clone(), empty] {
            for off in (0..REGION_SIZE + 0x10).chain([u64::MAX - 7, u64::MAX]) {
                for size in [0u8, 1, 2, 3, 4, 5, 8, 16] {
                    for value in [u64::MAX, 0, 0x5555_5555_5555_5555] {
                        t.borrow_mut().read(0, off, size);
                        t.borrow_mut().write(0, off, size, value);
                    }
                }
            }
            assert_eq!(t.borrow_mut().read(1, MAGIC, 4), 0, "no region 1");
            t.borrow_mut().reset();
            let rd = |off: u64| t.borrow_mut().read(0, off, 4);
            assert_eq!(rd(MAGIC), u64::from(MAGIC_VALUE));
            assert_eq!(rd(STATUS), 0);
            assert_eq!(rd(INTERRUPT_STATUS), 0);
            assert!(t.borrow().irq_outputs().iter().all(|l| !l.level()));
        }
        // The scribbling broke the device at some point; after reset it works normally.
        d.init();
        d.mem.write(d.data(0), &[0u8; 16]).unwrap();
        d.submit(
            0,
            &[
                Buf::r(d.data(0), 16),
                Buf::w(d.data(1), 512),
                Buf::w(d.data(2), 1),
            ],
        );
        d.notify(0);
        assert_eq!(d.used(0).len(), 1);
        assert_eq!(d.status() & status::DEVICE_NEEDS_RESET, 0);
    }

    #[test]
    fn test_mmio_fdt_node() {
        let dev = VirtioMmio::new("virtio-mmio");
        let res = NodeResources {
            regs: vec![(0x1000_8000, REGION_SIZE)],
            address_cells: 2,
            size_cells: 2,
            irqs: vec![Some(IrqTarget {
                phandle: 3,
                specifier: vec![8],
            })],
            ..Default::default()
        };
        let mut w = FdtWriter::new().unwrap();
        let root = w.begin_node("").unwrap();
        w.property_u32("#address-cells", 2).unwrap();
        w.property_u32("#size-cells", 2).unwrap();
        dev.write_fdt(&mut w, &res).unwrap();
        w.end_node(root).unwrap();
        let blob = w.finish().unwrap();
        assert_eq!(dev.fdt_placement(), breadboard_core::FdtPlacement::Soc);
        let Ok(out) = std::process::Command::new("dtc")
            .args(["-I", "dtb", "-O", "dts", "-q", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write as _;
                c.stdin.take().unwrap().write_all(&blob)?;
                c.wait_with_output()
            })
        else {
            let needle = b"virtio,mmio";
            assert!(blob.windows(needle.len()).any(|x| x == needle));
            eprintln!("dtc not available; checked the blob bytes only");
            return;
        };
        assert!(out.status.success());
        let dts = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = dts.lines().map(str::trim).collect();
        for want in [
            "virtio_mmio@10008000 {",
            "compatible = \"virtio,mmio\";",
            "reg = <0x00 0x10008000 0x00 0x200>;",
            "interrupt-parent = <0x03>;",
            "interrupts = <0x08>;",
            "dma-coherent;",
        ] {
            assert!(lines.contains(&want), "missing `{want}` in:\n{dts}");
        }
    }

    #[test]
    fn test_register_adds_transport_and_backends() {
        let mut reg = TypeRegistry::new();
        crate::virtio::register(&mut reg);
        let t: &DeviceType = reg.get(TYPE_NAME).expect("transport");
        assert!(t.sysbus && t.user_creatable && t.bus.is_none());
        for name in [
            "virtio-blk-device",
            "virtio-rng-device",
            "virtio-console-device",
        ] {
            let ty = reg.get(name).unwrap_or_else(|| panic!("{name}"));
            assert!(!ty.sysbus, "{name}");
            assert!(ty.user_creatable, "{name}");
            assert_eq!(ty.bus, Some("virtio-bus"), "{name}");
        }
        // Registering twice keeps the first and does not panic.
        crate::virtio::register(&mut reg);
        assert_eq!(reg.iter().count(), 4);
    }

    #[test]
    fn test_backend_has_no_resources_or_node() {
        let mut b = Bench::new();
        let d = rng_dev(&mut b);
        let be = d.backend.borrow();
        assert!(be.regions().is_empty());
        assert!(be.irq_outputs().is_empty());
        assert_eq!(be.fdt_placement(), breadboard_core::FdtPlacement::None);
        let t = d.transport.borrow();
        assert_eq!(t.regions().len(), 1);
        assert_eq!(t.regions()[0].size(), 0x200);
        assert_eq!(t.irq_outputs().len(), 1);
    }
}
