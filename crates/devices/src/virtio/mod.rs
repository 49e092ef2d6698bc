//! Virtio devices (VIRTIO 1.2, OASIS standard): the generic device state machine (§2.1 status,
//! §2.2 feature negotiation, §2.7 split virtqueues), the virtio-mmio transport (§4.2) and the
//! device types behind it (blk §5.2, rng §5.4, console §5.3).
//!
//! How the pieces fit:
//! - A backend device type (`virtio-blk-device`, …) is a non-sysbus device on `virtio-bus`. Its
//!   factory returns a [`VirtioBackend`]: the one concrete [`Device`] wrapping any
//!   [`VirtioDevice`]. The backend owns everything the virtio spec calls "the device": status,
//!   negotiated features, queues, interrupt status, and the device-type logic.
//! - The `virtio-mmio` transport ([`VirtioMmio`]) is a sysbus device holding the register
//!   selectors and the IRQ line; it reaches its backend through the backend's `DeviceCell`.
//!   The machine attaches a backend with [`plug`]. With no backend the transport reads
//!   DeviceID 0 and Linux skips the slot.
//! - Keeping queues in the backend means a backend can complete requests on its own (console
//!   input arrives through `Device::receive` on the backend's cell): it raises the transport's
//!   IRQ line, a clone of which it got at plug time, with no transport borrow.
//!
//! Requests are handled synchronously inside the QueueNotify write, DMA through
//! [`GuestMemory`] (RAM only). A malformed chain or queue setup is a guest error: the backend
//! sets DEVICE_NEEDS_RESET, raises a configuration-change interrupt, counts the error, logs one
//! `guest_error` line and ignores the queues until the driver resets it (§2.1.2).
// Reads guest, file, socket or plugin input: no panicking shortcuts (SECURITY.md, issue 9).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::borrow::Cow;
use std::rc::Rc;

use breadboard_core::{
    Device, DeviceCell, DeviceType, FdtPlacement, GuestMemory, IrqLine, TypeRegistry,
};

pub mod blk;
pub mod console;
pub mod mmio;
pub mod queue;
pub mod rng;

#[cfg(test)]
mod negative_tests;
#[cfg(test)]
mod testutil;

pub use mmio::VirtioMmio;
pub use queue::{DescChain, Queue, QueueError, Reader, Segment, Writer};

/// Device status bits (§2.1).
pub mod status {
    /// The guest found the device.
    pub const ACKNOWLEDGE: u32 = 1;
    /// The guest has a driver for it.
    pub const DRIVER: u32 = 2;
    /// The driver is ready; the device may use its queues.
    pub const DRIVER_OK: u32 = 4;
    /// Feature negotiation is complete.
    pub const FEATURES_OK: u32 = 8;
    /// The device hit an error and needs a reset.
    pub const DEVICE_NEEDS_RESET: u32 = 0x40;
    /// The driver gave up on the device.
    pub const FAILED: u32 = 0x80;
}

/// Reserved (device-independent) feature bits (§6).
pub mod feature {
    /// Indirect descriptors (§2.7.5.3).
    pub const INDIRECT_DESC: u64 = 1 << 28;
    /// `used_event`/`avail_event` notification suppression (not offered).
    pub const EVENT_IDX: u64 = 1 << 29;
    /// Compliance with VIRTIO 1.0 or later (always offered and required).
    pub const VERSION_1: u64 = 1 << 32;
}

/// InterruptStatus bit: a queue's used ring was updated.
pub const INT_USED_RING: u32 = 1;
/// InterruptStatus bit: the configuration (or DEVICE_NEEDS_RESET) changed.
pub const INT_CONFIG: u32 = 2;

/// The bus name backend types declare.
pub const BUS_NAME: &str = "virtio-bus";

/// What a virtio device type implements; the transport-independent rest is
/// [`VirtioBackend`].
pub trait VirtioDevice {
    /// Virtio device ID (§5: 2 = block, 3 = console, 4 = entropy).
    fn device_id(&self) -> u32;

    /// Device-type feature bits offered. `VERSION_1` and `INDIRECT_DESC` are added by the
    /// backend.
    fn features(&self) -> u64 {
        0
    }

    /// Number of virtqueues.
    fn num_queues(&self) -> usize;

    /// QueueNumMax of every queue (a power of two, at most 32768).
    fn queue_max_size(&self) -> u16 {
        256
    }

    /// Size of the device configuration space in bytes.
    fn config_len(&self) -> u64 {
        0
    }

    /// Reads configuration bytes at `offset` into `data` (little-endian fields). `data` is
    /// zeroed beforehand; bytes past the config space stay 0.
    fn read_config(&self, _offset: u64, _data: &mut [u8]) {}

    /// Writes configuration bytes (most config fields are read-only and ignore this).
    fn write_config(&mut self, _offset: u64, _data: &[u8]) {}

    /// The driver set FEATURES_OK with these (already validated) features.
    fn set_driver_features(&mut self, _features: u64) {}

    /// Device-type state for a snapshot (the default: none; the disk behind virtio-blk is
    /// not part of a snapshot, as with QEMU's `-drive` files).
    fn snapshot_save(&self) -> Vec<u8> {
        Vec::new()
    }

    /// Restores what `snapshot_save` wrote.
    fn snapshot_load(
        &mut self,
        data: &[u8],
    ) -> Result<(), breadboard_core::snapshot::SnapshotError> {
        if data.is_empty() {
            Ok(())
        } else {
            Err(breadboard_core::snapshot::SnapshotError::Corrupt(
                "unexpected virtio device state".into(),
            ))
        }
    }

    /// Handles every available chain of queue `queue`. Returns whether used buffers were
    /// added (an interrupt is then sent unless the driver suppressed it). An error means the
    /// guest broke the protocol: the device will need a reset.
    fn process(
        &mut self,
        queue: usize,
        q: &mut Queue,
        mem: &GuestMemory,
    ) -> Result<bool, QueueError>;

    /// Back to the power-on state of the device-type logic (queues are reset by the backend).
    fn reset(&mut self) {}

    /// How many input bytes the device can take now (console-like devices).
    fn can_receive(&self, _queues: &[Queue], _mem: &GuestMemory) -> usize {
        0
    }

    /// Input bytes from the device's chardev (at most `can_receive()`). Returns whether used
    /// buffers were added.
    fn receive(
        &mut self,
        _data: &[u8],
        _queues: &mut [Queue],
        _mem: &GuestMemory,
    ) -> Result<bool, QueueError> {
        Ok(false)
    }
}

/// A virtio device as the machine holds it: the generic virtio state plus a [`VirtioDevice`].
/// It has no regions and no IRQ outputs of its own; a transport exposes it.
pub struct VirtioBackend {
    name: String,
    inner: Box<dyn VirtioDevice>,
    dma: Rc<GuestMemory>,
    queues: Vec<Queue>,
    status: u32,
    driver_features: u64,
    isr: u32,
    config_generation: u32,
    /// The transport's IRQ line, once plugged.
    irq: Option<IrqLine>,
    errors: u64,
    last_error: Option<QueueError>,
}

impl VirtioBackend {
    /// Wraps `inner`; `name` is used in log lines, `dma` is the machine's RAM view.
    pub fn new(name: &str, inner: Box<dyn VirtioDevice>, dma: Rc<GuestMemory>) -> VirtioBackend {
        let queues = (0..inner.num_queues())
            .map(|_| Queue::new(inner.queue_max_size()))
            .collect();
        VirtioBackend {
            name: name.to_string(),
            inner,
            dma,
            queues,
            status: 0,
            driver_features: 0,
            isr: 0,
            config_generation: 0,
            irq: None,
            errors: 0,
            last_error: None,
        }
    }

    /// The name used in log lines.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The device-type logic.
    pub fn inner(&self) -> &dyn VirtioDevice {
        self.inner.as_ref()
    }

    /// Virtio device ID.
    pub fn device_id(&self) -> u32 {
        self.inner.device_id()
    }

    /// All features offered.
    pub fn device_features(&self) -> u64 {
        self.inner.features() | feature::VERSION_1 | feature::INDIRECT_DESC
    }

    /// Features the driver wrote (negotiated once FEATURES_OK is set).
    pub fn driver_features(&self) -> u64 {
        self.driver_features
    }

    /// Device status (§2.1).
    pub fn status(&self) -> u32 {
        self.status
    }

    /// InterruptStatus.
    pub fn interrupt_status(&self) -> u32 {
        self.isr
    }

    /// ConfigGeneration.
    pub fn config_generation(&self) -> u32 {
        self.config_generation
    }

    /// Guest protocol errors seen since the device was created.
    pub fn error_count(&self) -> u64 {
        self.errors
    }

    /// The most recent guest protocol error (kept across resets, for diagnostics).
    pub fn last_error(&self) -> Option<&QueueError> {
        self.last_error.as_ref()
    }

    /// Whether DEVICE_NEEDS_RESET is set.
    pub fn needs_reset(&self) -> bool {
        self.status & status::DEVICE_NEEDS_RESET != 0
    }

    /// Whether the backend is plugged into a transport.
    pub fn is_plugged(&self) -> bool {
        self.irq.is_some()
    }

    /// Number of queues.
    pub fn num_queues(&self) -> usize {
        self.queues.len()
    }

    /// Queue `index`.
    pub fn queue(&self, index: usize) -> Option<&Queue> {
        self.queues.get(index)
    }

    fn attach(&mut self, irq: IrqLine) {
        irq.set(self.isr != 0);
        self.irq = Some(irq);
    }

    /// Device reset (Status = 0, or machine reset): everything but the error counter back to
    /// its initial value, interrupt lowered.
    pub fn reset_device(&mut self) {
        self.status = 0;
        self.driver_features = 0;
        self.isr = 0;
        for q in &mut self.queues {
            q.reset();
        }
        self.inner.reset();
        self.update_irq();
    }

    /// Driver writes a 32-bit word of its features (`sel` 0 = bits 0..31, 1 = 32..63).
    pub fn write_driver_features(&mut self, sel: u32, value: u32) {
        if self.status & status::FEATURES_OK != 0 {
            tracing::warn!(
                target: "guest_error",
                "{}: driver features written after FEATURES_OK; ignored",
                self.name
            );
            return;
        }
        let shift = match sel {
            0 => 0,
            1 => 32,
            _ => {
                if value != 0 {
                    tracing::warn!(
                        target: "guest_error",
                        "{}: driver features word {sel} ({value:#x}) does not exist; ignored",
                        self.name
                    );
                }
                return;
            }
        };
        self.driver_features =
            (self.driver_features & !(0xffff_ffffu64 << shift)) | (u64::from(value) << shift);
    }

    /// Driver writes the Status register.
    pub fn write_status(&mut self, value: u32) {
        if value == 0 {
            self.reset_device();
            return;
        }
        let old = self.status;
        // DEVICE_NEEDS_RESET belongs to the device; the driver cannot set or clear it.
        let mut new = (value & !status::DEVICE_NEEDS_RESET) | (old & status::DEVICE_NEEDS_RESET);
        if old & !new & !status::DEVICE_NEEDS_RESET != 0 {
            tracing::warn!(
                target: "guest_error",
                "{}: status {value:#x} clears bits of {old:#x} without a reset",
                self.name
            );
        }
        if new & status::FEATURES_OK != 0 && old & status::FEATURES_OK == 0 {
            let offered = self.device_features();
            let wanted = self.driver_features;
            if wanted & !offered != 0 || wanted & feature::VERSION_1 == 0 {
                tracing::warn!(
                    target: "guest_error",
                    "{}: FEATURES_OK refused: driver features {wanted:#x}, offered {offered:#x} \
                     (VERSION_1 required)",
                    self.name
                );
                new &= !status::FEATURES_OK;
            } else {
                self.inner.set_driver_features(wanted);
            }
        }
        self.status = new;
        if new & status::DRIVER_OK != 0 && old & status::DRIVER_OK == 0 {
            if new & status::FEATURES_OK == 0 {
                tracing::warn!(
                    target: "guest_error",
                    "{}: DRIVER_OK without FEATURES_OK; queues stay idle",
                    self.name
                );
                return;
            }
            // Buffers made available before DRIVER_OK are handled now.
            for i in 0..self.queues.len() {
                self.process_queue(i);
            }
        }
    }

    /// QueueReady written for queue `index`.
    pub fn set_queue_ready(&mut self, index: usize, ready: bool) {
        let indirect = self.driver_features & feature::INDIRECT_DESC != 0
            && self.status & status::FEATURES_OK != 0;
        let Some(q) = self.queues.get_mut(index) else {
            tracing::warn!(target: "guest_error", "{}: QueueReady for missing queue {index}", self.name);
            return;
        };
        if !ready {
            q.deactivate();
            return;
        }
        if q.ready() {
            return;
        }
        if let Err(e) = q.activate(&self.dma, indirect) {
            self.fail(index, &e);
        }
    }

    /// A queue configuration register written: refused (and logged) while the queue is ready,
    /// as §4.2.2.3 forbids it.
    pub fn configure_queue(&mut self, index: usize, f: impl FnOnce(&mut Queue)) {
        match self.queues.get_mut(index) {
            Some(q) if q.ready() => tracing::warn!(
                target: "guest_error",
                "{}: queue {index} reconfigured while ready; ignored",
                self.name
            ),
            Some(q) => f(q),
            None => tracing::warn!(
                target: "guest_error",
                "{}: configuration of missing queue {index} ignored",
                self.name
            ),
        }
    }

    /// QueueNotify for queue `index`: handles its available buffers now.
    pub fn notify(&mut self, index: u32) {
        if self.needs_reset() {
            tracing::debug!(target: "guest_error", "{}: notify while broken ignored", self.name);
            return;
        }
        if self.status & status::DRIVER_OK == 0 {
            tracing::warn!(
                target: "guest_error",
                "{}: queue {index} notified before DRIVER_OK; buffers wait",
                self.name
            );
            return;
        }
        let i = index as usize;
        match self.queues.get(i) {
            Some(q) if q.ready() => self.process_queue(i),
            Some(_) => tracing::warn!(
                target: "guest_error",
                "{}: notify for queue {index}, which is not ready",
                self.name
            ),
            None => tracing::warn!(
                target: "guest_error",
                "{}: notify for missing queue {index}",
                self.name
            ),
        }
    }

    fn active(&self) -> bool {
        self.status & status::DRIVER_OK != 0
            && self.status & status::FEATURES_OK != 0
            && !self.needs_reset()
    }

    fn process_queue(&mut self, i: usize) {
        if !self.active() {
            return;
        }
        let Some(q) = self.queues.get_mut(i) else {
            return;
        };
        if !q.ready() {
            return;
        }
        let result = self.inner.process(i, q, &self.dma);
        self.after_work(i, result);
    }

    /// Applies the outcome of device work: interrupt for updated used rings, or broken state.
    fn after_work(&mut self, i: usize, result: Result<bool, QueueError>) {
        match result {
            Ok(false) => {}
            Ok(true) => {
                let mut signal = false;
                for (qi, q) in self.queues.iter_mut().enumerate() {
                    if !q.take_used_pending() {
                        continue;
                    }
                    match q.wants_interrupt(&self.dma) {
                        Ok(w) => signal |= w,
                        Err(e) => {
                            self.fail(qi, &e);
                            return;
                        }
                    }
                }
                if signal {
                    self.isr |= INT_USED_RING;
                    self.update_irq();
                }
            }
            Err(e) => self.fail(i, &e),
        }
    }

    /// The guest broke the protocol: DEVICE_NEEDS_RESET, config interrupt, one log line.
    fn fail(&mut self, queue: usize, e: &QueueError) {
        self.errors = self.errors.saturating_add(1);
        tracing::warn!(
            target: "guest_error",
            "{}: queue {queue}: {e}; device needs reset",
            self.name
        );
        self.last_error = Some(e.clone());
        self.status |= status::DEVICE_NEEDS_RESET;
        self.isr |= INT_CONFIG;
        self.update_irq();
    }

    /// InterruptACK: clears the given InterruptStatus bits.
    pub fn ack_interrupt(&mut self, bits: u32) {
        self.isr &= !bits;
        self.update_irq();
    }

    fn update_irq(&self) {
        if let Some(irq) = &self.irq {
            irq.set(self.isr != 0);
        }
    }

    /// Reads `data.len()` bytes of configuration space at `offset`; bytes past its end read 0.
    pub fn read_config(&self, offset: u64, data: &mut [u8]) -> bool {
        data.fill(0);
        let end = offset.checked_add(data.len() as u64);
        let ok = end.is_some_and(|e| e <= self.inner.config_len());
        self.inner.read_config(offset, data);
        ok
    }

    /// Writes configuration space; returns false if outside it.
    pub fn write_config(&mut self, offset: u64, data: &[u8]) -> bool {
        let end = offset.checked_add(data.len() as u64);
        if end.is_none_or(|e| e > self.inner.config_len()) {
            return false;
        }
        self.inner.write_config(offset, data);
        true
    }
}

impl Device for VirtioBackend {
    fn snapshot_save(&self) -> Result<Vec<u8>, breadboard_core::snapshot::SnapshotError> {
        let mut w = breadboard_core::snapshot::SnapWriter::new();
        w.u32(self.status);
        w.u64(self.driver_features);
        w.u32(self.isr);
        w.u32(self.config_generation);
        w.u64(self.errors);
        w.u64(self.queues.len() as u64);
        for q in &self.queues {
            q.snapshot_save(&mut w);
        }
        w.bytes(&self.inner.snapshot_save());
        Ok(w.finish())
    }

    fn snapshot_load(
        &mut self,
        data: &[u8],
    ) -> Result<(), breadboard_core::snapshot::SnapshotError> {
        let mut r = breadboard_core::snapshot::SnapReader::new(data);
        let status = r.u32()?;
        let driver_features = r.u64()?;
        let isr = r.u32()?;
        let config_generation = r.u32()?;
        let errors = r.u64()?;
        if r.u64()? != self.queues.len() as u64 {
            return Err(breadboard_core::snapshot::SnapshotError::Corrupt(
                "virtqueue count differs".into(),
            ));
        }
        let mut queues = self.queues.clone();
        for (i, q) in queues.iter_mut().enumerate() {
            q.snapshot_load(&mut r, &self.dma).map_err(|e| match e {
                breadboard_core::snapshot::SnapshotError::Corrupt(m) => {
                    breadboard_core::snapshot::SnapshotError::Corrupt(format!("virtqueue {i}: {m}"))
                }
                other => other,
            })?;
        }
        let inner = r.bytes()?;
        r.end()?;
        // What the device could never have reached: FEATURES_OK is only ever set with features
        // it offered, VERSION_1 among them; InterruptStatus has two bits.
        let offered = self.device_features();
        if status & status::FEATURES_OK != 0
            && (driver_features & !offered != 0 || driver_features & feature::VERSION_1 == 0)
        {
            return Err(breadboard_core::snapshot::SnapshotError::Corrupt(format!(
                "negotiated features {driver_features:#x} were never offered (offered {offered:#x}, VERSION_1 required)"
            )));
        }
        if isr & !(INT_USED_RING | INT_CONFIG) != 0 {
            return Err(breadboard_core::snapshot::SnapshotError::Corrupt(format!(
                "interrupt status {isr:#x} has bits that do not exist"
            )));
        }
        self.inner.snapshot_load(inner)?;
        if status & status::FEATURES_OK != 0 {
            // The device-type logic learns the negotiated features as at FEATURES_OK.
            self.inner.set_driver_features(driver_features);
        }
        self.status = status;
        self.driver_features = driver_features;
        self.isr = isr;
        self.config_generation = config_generation;
        self.errors = errors;
        self.queues = queues;
        self.last_error = None;
        Ok(())
    }

    fn reset(&mut self) {
        self.reset_device();
    }

    fn can_receive(&self) -> usize {
        if !self.active() {
            return 0;
        }
        self.inner.can_receive(&self.queues, &self.dma)
    }

    fn receive(&mut self, data: &[u8]) {
        if !self.active() {
            return;
        }
        let result = self.inner.receive(data, &mut self.queues, &self.dma);
        self.after_work(0, result);
    }

    fn fdt_placement(&self) -> FdtPlacement {
        FdtPlacement::None
    }
}

/// Copies `cfg[offset..]` into `data` as far as both go (helper for `read_config`).
pub fn copy_config(cfg: &[u8], offset: u64, data: &mut [u8]) {
    let Some(src) = usize::try_from(offset).ok().and_then(|o| cfg.get(o..)) else {
        return;
    };
    let n = src.len().min(data.len());
    if let (Some(d), Some(s)) = (data.get_mut(..n), src.get(..n)) {
        d.copy_from_slice(s);
    }
}

/// Runs `f` on the [`VirtioBackend`] inside `cell`; `None` if the cell is busy or holds
/// another device.
pub fn with_backend<R>(cell: &DeviceCell, f: impl FnOnce(&mut VirtioBackend) -> R) -> Option<R> {
    let mut guard = cell.try_borrow_mut().ok()?;
    // Deref to the trait object first: `as_any_mut` on the `Box` itself would downcast the
    // box, not the device in it.
    let dev: &mut dyn Device = &mut **guard;
    dev.as_any_mut().downcast_mut::<VirtioBackend>().map(f)
}

/// Plugs `backend` (a [`VirtioBackend`], e.g. from `-device virtio-blk-device,drive=hd0`)
/// into `transport` (a `virtio-mmio`). Refused if the transport is not one, already has a
/// backend, or the backend is not a virtio backend or is plugged elsewhere.
pub fn plug(transport: &DeviceCell, backend: DeviceCell) -> Result<(), String> {
    if Rc::ptr_eq(transport, &backend) {
        return Err("a virtio device cannot be plugged into itself".to_string());
    }
    let mut tguard = transport
        .try_borrow_mut()
        .map_err(|_| "the virtio-mmio transport is busy".to_string())?;
    let tdev: &mut dyn Device = &mut **tguard;
    let t = tdev
        .as_any_mut()
        .downcast_mut::<VirtioMmio>()
        .ok_or_else(|| format!("the transport is not a '{}' device", mmio::TYPE_NAME))?;
    if t.has_backend() {
        return Err(format!(
            "virtio-mmio transport '{}' already has a backend",
            t.name()
        ));
    }
    let irq = t.irq_line();
    {
        let mut bguard = backend
            .try_borrow_mut()
            .map_err(|_| "the virtio backend is busy".to_string())?;
        let bdev: &mut dyn Device = &mut **bguard;
        let b = bdev
            .as_any_mut()
            .downcast_mut::<VirtioBackend>()
            .ok_or_else(|| "the device is not a virtio backend (virtio-bus device)".to_string())?;
        if b.is_plugged() {
            return Err(format!(
                "virtio device '{}' is already plugged into a transport",
                b.name()
            ));
        }
        b.attach(irq);
    }
    t.set_backend(backend);
    Ok(())
}

/// Whether `transport` is a `virtio-mmio` with a backend plugged in (false for any other
/// device, and for a transport that is busy).
pub fn has_backend(transport: &DeviceCell) -> bool {
    let Ok(mut guard) = transport.try_borrow_mut() else {
        return false;
    };
    let dev: &mut dyn Device = &mut **guard;
    dev.as_any_mut()
        .downcast_mut::<VirtioMmio>()
        .is_some_and(|t| t.has_backend())
}

/// Every virtio device type: the transport and the backends.
pub fn device_types() -> Vec<DeviceType> {
    vec![
        mmio::device_type(),
        blk::device_type(),
        rng::device_type(),
        console::device_type(),
    ]
}

/// Registers every virtio device type; a name already taken keeps its first owner (logged).
pub fn register(reg: &mut TypeRegistry) {
    for t in device_types() {
        if let Err(e) = reg.register(t) {
            tracing::error!("virtio device types: {e}");
        }
    }
}

/// A backend device type: not memory-mapped, plugs into `virtio-bus`.
fn backend_type(
    name: &'static str,
    description: &'static str,
    props: Vec<breadboard_core::PropSpec>,
    factory: breadboard_core::device::Factory,
) -> DeviceType {
    let mut props = props;
    // Read by the machine when it plugs the backend, not by the backend itself.
    props.push(breadboard_core::PropSpec::optional(
        "bus",
        breadboard_core::PropKind::Link,
        "transport to plug into: a virtio-mmio device id, or QEMU's virtio-mmio-bus.N",
    ));
    DeviceType {
        name: Cow::Borrowed(name),
        description: Cow::Borrowed(description),
        user_creatable: true,
        sysbus: false,
        bus: Some(BUS_NAME),
        compatible: &[],
        props,
        factory,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::testutil::{Bench, Buf, Driver};
    use super::*;
    use breadboard_core::snapshot::SnapshotError;

    /// Byte offset of queue 0's fields in a backend blob: status u32, driver features u64,
    /// ISR u32, config generation u32, errors u64, queue count u64.
    const Q0: usize = 4 + 8 + 4 + 4 + 8 + 8;
    /// Inside a queue: num u32, size u16, ready bool, then desc, avail, used (u64 each).
    const Q_SIZE: usize = 4;
    const Q_READY: usize = 6;
    const Q_DESC: usize = 7;
    const Q_AVAIL: usize = 15;
    const Q_USED: usize = 23;

    fn rng(b: &mut Bench) -> Driver {
        let mut d = b.device(&rng::device_type(), &[("seed", "5")]);
        d.init();
        d
    }

    fn blob(d: &Driver) -> Vec<u8> {
        d.backend.borrow().snapshot_save().unwrap()
    }

    fn load(d: &Driver, data: &[u8]) -> Result<(), SnapshotError> {
        d.backend.borrow_mut().snapshot_load(data)
    }

    /// The device still serves a request after refusing a state.
    fn still_works(d: &mut Driver) {
        let head = d.submit(0, &[Buf::w(d.data(0), 16)]);
        d.notify(0);
        let used = d.used(0);
        assert_eq!(used.len(), 1);
        assert_eq!(used[0].0, u32::from(head));
        assert_eq!(d.error_count(), 0);
    }

    fn assert_corrupt(r: Result<(), SnapshotError>) {
        assert!(matches!(r, Err(SnapshotError::Corrupt(_))), "{r:?}");
    }

    #[test]
    fn test_snapshot_load_refuses_ready_queue_ring_address_that_overflows() {
        let mut b = Bench::new();
        let mut d = rng(&mut b);
        let good = blob(&d);
        for (field, v) in [
            (Q_AVAIL, u64::MAX - 1),
            (Q_USED, u64::MAX - 3),
            (Q_DESC, u64::MAX - 15),
        ] {
            let mut bad = good.clone();
            bad[Q0 + field..Q0 + field + 8].copy_from_slice(&v.to_le_bytes());
            assert_corrupt(load(&d, &bad));
        }
        still_works(&mut d);
    }

    #[test]
    fn test_snapshot_load_refuses_ready_queue_outside_ram_or_misaligned() {
        let mut b = Bench::new();
        let mut d = rng(&mut b);
        let good = blob(&d);
        let desc = u64::from_le_bytes(good[Q0 + Q_DESC..Q0 + Q_DESC + 8].try_into().unwrap());
        for (field, v) in [(Q_DESC, desc + 8), (Q_AVAIL, 0x1000), (Q_USED, 0)] {
            let mut bad = good.clone();
            bad[Q0 + field..Q0 + field + 8].copy_from_slice(&v.to_le_bytes());
            assert_corrupt(load(&d, &bad));
        }
        // Not ready with a size in use.
        let mut bad = good.clone();
        bad[Q0 + Q_READY] = 0;
        assert_corrupt(load(&d, &bad));
        // Ready with a size that is not a power of two.
        let mut bad = good.clone();
        bad[Q0 + Q_SIZE..Q0 + Q_SIZE + 2].copy_from_slice(&3u16.to_le_bytes());
        assert_corrupt(load(&d, &bad));
        still_works(&mut d);
    }

    #[test]
    fn test_snapshot_load_refuses_features_never_negotiated_and_unknown_isr_bits() {
        let mut b = Bench::new();
        let mut d = rng(&mut b);
        let good = blob(&d);
        // FEATURES_OK with a feature the device does not offer (EVENT_IDX), or without
        // VERSION_1.
        for f in [feature::VERSION_1 | feature::EVENT_IDX, 0] {
            let mut bad = good.clone();
            bad[4..12].copy_from_slice(&f.to_le_bytes());
            assert_corrupt(load(&d, &bad));
        }
        let mut bad = good.clone();
        bad[12..16].copy_from_slice(&4u32.to_le_bytes());
        assert_corrupt(load(&d, &bad));
        load(&d, &good).unwrap();
        still_works(&mut d);
    }
}
