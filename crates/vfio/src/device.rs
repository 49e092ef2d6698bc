//! The `vfio-platform` device: a platform device that lives outside the emulator (a host device
//! through Linux VFIO, or a device server through vfio-user), adapted to breadboard's device
//! contract.
//!
//! - Regions become MMIO regions on the platform bus, in region-index order. A region the
//!   backend lets us `mmap` is accessed through the mapping (no system call per access); the
//!   others go through [`Backend::region_read`]/[`Backend::region_write`] (pread/pwrite on the
//!   kernel's device fd, REGION_READ/WRITE messages for vfio-user).
//! - Each IRQ index with an eventfd becomes output `sysbus-irq[N]`. A poller thread waits on the
//!   eventfds and posts a notification to the main loop, which drives the line. Automasked
//!   (level) IRQs stay high until the guest completes the interrupt at the PLIC; the EOI hook
//!   then lowers the line and unmasks the IRQ in the backend, which fires again if the device
//!   still asserts it (as the 2015 QEMU series did for user-handled eventfds). Other IRQs pulse.
//! - Guest RAM is mapped for device DMA at the first reset, IOVA = guest physical address.
//! - Any backend failure marks the device broken with one log line: reads answer all-ones,
//!   writes are dropped, the lines go low, and the machine runs on.

// Reads untrusted input (a vfio-user server, the kernel, sysfs files, the guest): no panicking
// shortcuts outside tests.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::borrow::Cow;
use std::cell::Cell;
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use breadboard_core::device::{Device, DeviceCtx, DeviceError, DeviceType, RegionSpec};
use breadboard_core::fdt::{FdtError, FdtWriter, NodeResources};
use breadboard_core::memory::GuestMemory;
use breadboard_core::props::{PropKind, PropSpec, Props};
use breadboard_core::{IrqLine, Notifier};

use crate::backend::{
    Backend, DEVICE_FLAGS_PLATFORM, DEVICE_FLAGS_RESET, DmaRegion, DtHints, IRQ_FLAG_AUTOMASKED,
    IRQ_FLAG_EVENTFD, Mapping, REGION_FLAG_MMAP, REGION_FLAG_READ, REGION_FLAG_WRITE, RegionInfo,
    VfioError,
};
use crate::dt::{self, DtWriter};

/// QOM type name.
pub const TYPE_NAME: &str = "vfio-platform";

/// Most regions and IRQ indexes a device may have (a platform device has a handful; a server
/// announcing thousands is misbehaving).
const MAX_REGIONS: u32 = 32;
const MAX_IRQS: u32 = 32;
/// Largest region mapped into the guest (a server announcing more is refused).
const MAX_REGION_SIZE: u64 = 1 << 32;

/// Opens the backend the properties name.
pub type BackendOpener = fn(&Props) -> Result<Arc<dyn Backend>, VfioError>;

struct Region {
    info: RegionInfo,
    mapping: Option<Mapping>,
}

struct Irq {
    index: u32,
    line: IrqLine,
    automasked: bool,
}

/// Shared between the device, its EOI hooks and (for the flag only) its poller thread.
struct Health {
    name: String,
    describe: String,
    broken: Cell<bool>,
}

impl Health {
    /// Marks the device broken; logs once.
    fn fail(&self, what: &str, e: &VfioError) {
        // A backend that reports `Broken` has logged why already: one line per failure.
        if !self.broken.replace(true) && !matches!(e, VfioError::Broken(_)) {
            tracing::error!(
                "{}: {} {what} failed: {e}; device marked broken (reads return all-ones)",
                self.name,
                self.describe
            );
        }
    }
}

/// The poller thread and its stop switch.
struct Poller {
    stop: Arc<AtomicBool>,
    wake: Arc<OwnedFd>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Writing the stop eventfd wakes the poll; a failure only means it is already awake.
        let _ = rustix::io::write(&*self.wake, &1u64.to_ne_bytes());
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("vfio IRQ poller thread panicked");
        }
    }
}

/// A `vfio-platform` device.
pub struct VfioPlatform {
    backend: Arc<dyn Backend>,
    health: Rc<Health>,
    regions: Vec<Region>,
    irqs: Vec<Irq>,
    dt: DtWriter,
    compatible: Vec<String>,
    hints: DtHints,
    dma: Rc<GuestMemory>,
    dma_windows: Vec<(u64, u64)>,
    can_reset: bool,
    /// Keeps the eventfds alive as long as the backend may signal them.
    _eventfds: Vec<OwnedFd>,
    poller: Option<Poller>,
}

impl VfioPlatform {
    /// Builds the device over an open backend: checks the device info, maps what can be
    /// mapped, wires eventfds and chooses the DT writer.
    pub fn new(
        name: &str,
        backend: Arc<dyn Backend>,
        props: &Props,
        notifier: Notifier,
        dma: Rc<GuestMemory>,
    ) -> Result<VfioPlatform, DeviceError> {
        let describe = backend.describe();
        let realize =
            |what: &str, e: VfioError| DeviceError::Realize(format!("{describe}: {what}: {e}"));
        let info = backend
            .device_info()
            .map_err(|e| realize("device info", e))?;
        if info.flags & DEVICE_FLAGS_PLATFORM == 0 {
            return Err(DeviceError::Realize(format!(
                "{describe}: not a platform device (flags {:#x}); \
                 only platform devices can be passed through",
                info.flags
            )));
        }
        if info.num_regions > MAX_REGIONS || info.num_irqs > MAX_IRQS {
            return Err(DeviceError::Realize(format!(
                "{describe}: {} regions and {} IRQs announced; at most \
                 {MAX_REGIONS} and {MAX_IRQS} are supported",
                info.num_regions, info.num_irqs
            )));
        }
        let use_mmap = props.bool("mmap");
        let mut regions = Vec::new();
        for index in 0..info.num_regions {
            let ri = backend
                .region_info(index)
                .map_err(|e| realize(&format!("region {index} info"), e))?;
            if ri.index != index {
                return Err(realize(
                    &format!("region {index} info"),
                    VfioError::Protocol(format!("answered for region {}", ri.index)),
                ));
            }
            if ri.size == 0 {
                continue;
            }
            if ri.size > MAX_REGION_SIZE || ri.flags & (REGION_FLAG_READ | REGION_FLAG_WRITE) == 0 {
                return Err(realize(
                    &format!("region {index}"),
                    VfioError::Invalid(format!(
                        "size {:#x} flags {:#x}: too large, or neither readable nor writable",
                        ri.size, ri.flags
                    )),
                ));
            }
            let mapping = if use_mmap && ri.flags & REGION_FLAG_MMAP != 0 {
                backend
                    .map_region(&ri)
                    .map_err(|e| realize(&format!("mmap of region {index}"), e))?
            } else {
                None
            };
            if let Some(m) = &mapping
                && (m.len() as u64) < ri.size
            {
                return Err(realize(
                    &format!("mmap of region {index}"),
                    VfioError::Invalid(format!("mapped {:#x} of {:#x} bytes", m.len(), ri.size)),
                ));
            }
            regions.push(Region { info: ri, mapping });
        }
        if regions.is_empty() {
            return Err(DeviceError::Realize(format!(
                "{describe}: the device has no region to map"
            )));
        }

        let hints = backend
            .dt_hints()
            .map_err(|e| realize("device-tree hints", e))?;
        let compatible: Vec<String> = match props.str("compatible").filter(|s| !s.is_empty()) {
            Some(c) => c
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            None => hints.compatible.clone(),
        };
        let dt = dt::choose(&compatible, props.bool("dt-copy"))
            .map_err(|msg| DeviceError::Realize(format!("{describe}: {msg}")))?;

        let health = Rc::new(Health {
            name: name.to_string(),
            describe: describe.clone(),
            broken: Cell::new(false),
        });
        let mut irqs = Vec::new();
        let mut eventfds = Vec::new();
        for index in 0..info.num_irqs {
            let ii = backend
                .irq_info(index)
                .map_err(|e| realize(&format!("IRQ {index} info"), e))?;
            if ii.count == 0 || ii.flags & IRQ_FLAG_EVENTFD == 0 {
                continue;
            }
            let efd = rustix::event::eventfd(
                0,
                rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
            )
            .map_err(|e| {
                realize(
                    "eventfd",
                    VfioError::Io {
                        op: "eventfd".into(),
                        source: e.into(),
                    },
                )
            })?;
            backend
                .set_irq_eventfds(index, &[efd.as_fd()])
                .map_err(|e| realize(&format!("SET_IRQS trigger for IRQ {index}"), e))?;
            let line = IrqLine::new();
            let automasked = ii.flags & IRQ_FLAG_AUTOMASKED != 0;
            if automasked {
                let b = Arc::clone(&backend);
                let h = Rc::clone(&health);
                line.set_eoi_hook(Rc::new(move || {
                    if !h.broken.get()
                        && let Err(e) = b.unmask_irq(index, 0)
                    {
                        h.fail(&format!("unmask of IRQ {index}"), &e);
                    }
                    // The line drops at completion; the host fires the eventfd again if the
                    // device still asserts it.
                    false
                }));
            }
            irqs.push(Irq {
                index,
                line,
                automasked,
            });
            eventfds.push(efd);
        }
        let poller = if eventfds.is_empty() {
            None
        } else {
            Some(
                start_poller(name, &eventfds, &irqs, notifier)
                    .map_err(|e| realize("IRQ poller", e))?,
            )
        };
        Ok(VfioPlatform {
            can_reset: info.flags & DEVICE_FLAGS_RESET != 0,
            backend,
            health,
            regions,
            irqs,
            dt,
            compatible,
            hints,
            dma,
            dma_windows: Vec::new(),
            _eventfds: eventfds,
            poller,
        })
    }

    /// Whether a backend failure has put the device out of service.
    pub fn is_broken(&self) -> bool {
        self.health.broken.get()
    }

    /// Whether region `n` (in mapping order) is accessed through an mmap'd fd.
    pub fn region_is_mapped(&self, n: usize) -> bool {
        self.regions.get(n).is_some_and(|r| r.mapping.is_some())
    }

    fn fail(&mut self, what: &str, e: &VfioError) {
        self.health.fail(what, e);
        for irq in &self.irqs {
            irq.line.lower();
        }
    }

    /// Maps every RAM block of the machine for device DMA (IOVA = guest physical).
    fn map_dma(&mut self) {
        if !self.dma_windows.is_empty() || self.is_broken() {
            return;
        }
        for (base, block, readonly) in self.dma.ram_blocks() {
            let Some(host) = std::ptr::NonNull::new(block.host_ptr()) else {
                continue;
            };
            let region = DmaRegion {
                iova: base,
                size: block.size(),
                host,
                fd: block.fd().as_fd(),
                fd_offset: 0,
                writable: !readonly,
            };
            match self.backend.dma_map(&region) {
                Ok(()) => self.dma_windows.push((base, block.size())),
                Err(VfioError::Unsupported(why)) => {
                    tracing::warn!("{}: no DMA for the device: {why}", self.health.name);
                    return;
                }
                Err(e) => {
                    self.fail(&format!("DMA map of {base:#x}+{:#x}", block.size()), &e);
                    return;
                }
            }
        }
    }
}

fn all_ones(size: u8) -> u64 {
    match size {
        1 => 0xff,
        2 => 0xffff,
        4 => 0xffff_ffff,
        _ => u64::MAX,
    }
}

/// Starts the thread that turns eventfd signals into main-loop notifications (token = IRQ
/// index).
fn start_poller(
    name: &str,
    eventfds: &[OwnedFd],
    irqs: &[Irq],
    notifier: Notifier,
) -> Result<Poller, VfioError> {
    let io = |op: &str| {
        let op = op.to_string();
        move |e: rustix::io::Errno| VfioError::Io {
            op,
            source: e.into(),
        }
    };
    let wake = rustix::event::eventfd(
        0,
        rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
    )
    .map_err(io("eventfd"))?;
    let wake = Arc::new(wake);
    let mut fds: Vec<(OwnedFd, u64)> = Vec::new();
    for (fd, irq) in eventfds.iter().zip(irqs) {
        fds.push((
            fd.try_clone().map_err(|e| VfioError::Io {
                op: "dup eventfd".into(),
                source: e,
            })?,
            u64::from(irq.index),
        ));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (stop2, wake2) = (Arc::clone(&stop), Arc::clone(&wake));
    let thread = std::thread::Builder::new()
        .name(format!("vfio-irq {name}"))
        .spawn(move || poll_loop(&fds, &wake2, &stop2, &notifier))
        .map_err(|e| VfioError::Io {
            op: "spawn IRQ poller".into(),
            source: e,
        })?;
    Ok(Poller {
        stop,
        wake,
        thread: Some(thread),
    })
}

fn poll_loop(fds: &[(OwnedFd, u64)], wake: &OwnedFd, stop: &AtomicBool, notifier: &Notifier) {
    use rustix::event::{PollFd, PollFlags, poll};
    let mut buf = [0u8; 8];
    while !stop.load(Ordering::Acquire) {
        let mut pfds: Vec<PollFd<'_>> = fds
            .iter()
            .map(|(fd, _)| PollFd::new(fd, PollFlags::IN))
            .collect();
        pfds.push(PollFd::new(wake, PollFlags::IN));
        match poll(&mut pfds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                tracing::error!("vfio IRQ poller: poll failed: {e}; IRQs stop");
                return;
            }
        }
        let ready: Vec<bool> = pfds
            .iter()
            .map(|p| {
                p.revents()
                    .intersects(PollFlags::IN | PollFlags::ERR | PollFlags::HUP)
            })
            .collect();
        drop(pfds);
        for ((fd, token), r) in fds.iter().zip(&ready) {
            if *r {
                // Reading resets the counter; EAGAIN means another read got there first.
                if rustix::io::read(fd, &mut buf).is_ok() {
                    notifier.notify(*token);
                }
            }
        }
        if ready.last().copied().unwrap_or(false) {
            let _ = rustix::io::read(wake, &mut buf);
        }
    }
}

impl Device for VfioPlatform {
    fn regions(&self) -> Vec<RegionSpec> {
        self.regions
            .iter()
            .map(|r| RegionSpec::Mmio {
                name: Cow::Owned(format!("vfio-region[{}]", r.info.index)),
                size: r.info.size,
            })
            .collect()
    }

    fn read(&mut self, region: usize, offset: u64, size: u8) -> u64 {
        if self.is_broken() {
            return all_ones(size);
        }
        let Some(r) = self.regions.get(region) else {
            return all_ones(size);
        };
        if let Some(v) = r.mapping.as_ref().and_then(|m| m.read(offset, size)) {
            return v;
        }
        let index = r.info.index;
        if r.info.flags & REGION_FLAG_READ == 0 {
            tracing::warn!(
                target: "guest_error",
                "{}: read of write-only region {index} at {offset:#x}",
                self.health.name
            );
            return all_ones(size);
        }
        let mut buf = [0u8; 8];
        let n = usize::from(size).min(8);
        let Some(bytes) = buf.get_mut(..n) else {
            return all_ones(size);
        };
        match self.backend.region_read(index, offset, bytes) {
            Ok(()) => u64::from_le_bytes(buf),
            Err(e) => {
                self.fail(&format!("read of region {index} at {offset:#x}"), &e);
                all_ones(size)
            }
        }
    }

    fn write(&mut self, region: usize, offset: u64, size: u8, value: u64) {
        if self.is_broken() {
            return;
        }
        let Some(r) = self.regions.get(region) else {
            return;
        };
        if r.mapping
            .as_ref()
            .is_some_and(|m| m.write(offset, size, value))
        {
            return;
        }
        let index = r.info.index;
        if r.info.flags & REGION_FLAG_WRITE == 0 {
            tracing::warn!(
                target: "guest_error",
                "{}: write to read-only region {index} at {offset:#x}",
                self.health.name
            );
            return;
        }
        let bytes = value.to_le_bytes();
        let Some(data) = bytes.get(..usize::from(size).min(8)) else {
            return;
        };
        if let Err(e) = self.backend.region_write(index, offset, data) {
            self.fail(&format!("write of region {index} at {offset:#x}"), &e);
        }
    }

    fn irq_outputs(&self) -> Vec<IrqLine> {
        self.irqs.iter().map(|i| i.line.clone()).collect()
    }

    fn notify(&mut self, token: u64) {
        if self.is_broken() {
            return;
        }
        let Some(irq) = self.irqs.iter().find(|i| u64::from(i.index) == token) else {
            return;
        };
        if irq.automasked {
            irq.line.raise();
        } else {
            irq.line.pulse();
        }
    }

    fn reset(&mut self) {
        for irq in &self.irqs {
            irq.line.lower();
        }
        if self.is_broken() {
            return;
        }
        if self.can_reset {
            match self.backend.reset() {
                Ok(()) | Err(VfioError::Unsupported(_)) => {}
                Err(e) => {
                    self.fail("reset", &e);
                    return;
                }
            }
        }
        // Level IRQs masked when they last fired start unmasked after reset.
        for i in 0..self.irqs.len() {
            let Some(irq) = self.irqs.get(i) else { break };
            if irq.automasked {
                let index = irq.index;
                if let Err(e) = self.backend.unmask_irq(index, 0) {
                    self.fail(&format!("unmask of IRQ {index}"), &e);
                    return;
                }
            }
        }
        self.map_dma();
    }

    fn write_fdt(&self, fdt: &mut FdtWriter, res: &NodeResources) -> Result<(), FdtError> {
        dt::write(self.dt, fdt, res, &self.compatible, &self.hints)
    }
}

impl Drop for VfioPlatform {
    fn drop(&mut self) {
        self.poller.take();
        if self.is_broken() {
            return;
        }
        for irq in &self.irqs {
            if let Err(e) = self.backend.disable_irq(irq.index) {
                tracing::warn!("{}: disabling IRQ {}: {e}", self.health.name, irq.index);
            }
        }
        for &(iova, size) in &self.dma_windows {
            if let Err(e) = self.backend.dma_unmap(iova, size) {
                tracing::warn!("{}: DMA unmap of {iova:#x}: {e}", self.health.name);
            }
        }
    }
}

/// The `vfio-platform` type. `open` turns the properties into a backend (`host=` → the kernel,
/// `socket=` → vfio-user).
pub fn device_type(open: BackendOpener) -> DeviceType {
    DeviceType {
        name: Cow::Borrowed(TYPE_NAME),
        description: Cow::Borrowed(
            "platform device passthrough: a host device (Linux VFIO) or a vfio-user server",
        ),
        user_creatable: true,
        sysbus: true,
        bus: None,
        compatible: &[],
        props: vec![
            PropSpec::new(
                "host",
                PropKind::Str,
                "",
                "host platform device bound to vfio-platform (sysfs name)",
            ),
            PropSpec::new(
                "socket",
                PropKind::Str,
                "",
                "Unix socket of a vfio-user device server",
            ),
            PropSpec::new(
                "compatible",
                PropKind::Str,
                "",
                "device-tree compatible strings, ';'-separated (default: from the host DT or the server)",
            ),
            PropSpec::new(
                "dt-copy",
                PropKind::Bool,
                "off",
                "without a writer for the compatible, copy the source node's allowed properties",
            ),
            PropSpec::new(
                "mmap",
                PropKind::Bool,
                "on",
                "access regions that allow it through an mmap'd fd (off: every access is a message or pread/pwrite)",
            ),
            PropSpec::new(
                "posted-writes",
                PropKind::Bool,
                "on",
                "vfio-user: send region writes and IRQ unmasks without waiting for the reply (off: every write waits, and a refused write breaks the device)",
            ),
            PropSpec::new(
                "timeout-ms",
                PropKind::Int,
                "5000",
                "how long to wait for a vfio-user server's reply before marking the device broken",
            ),
        ],
        factory: Rc::new(move |props: &Props, ctx: &DeviceCtx<'_>| {
            let host = props.str("host").filter(|s| !s.is_empty());
            let socket = props.str("socket").filter(|s| !s.is_empty());
            if host.is_some() == socket.is_some() {
                return Err(DeviceError::Realize(
                    "give exactly one of host=<sysfs device name> and socket=<path>".into(),
                ));
            }
            let backend = open(props).map_err(|e| DeviceError::Realize(e.to_string()))?;
            let dev = VfioPlatform::new(
                ctx.name,
                backend,
                props,
                ctx.timers.notifier(),
                Rc::clone(&ctx.dma),
            )?;
            Ok(Box::new(dev) as Box<dyn Device>)
        }),
    }
}

#[cfg(test)]
#[allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use super::*;
    use crate::backend::{DeviceInfo, IrqInfo};
    use breadboard_core::irq::RecordingSink;
    use breadboard_core::props::RawValue;
    use breadboard_core::{Clock, ClockMode, TimerHandle, TimerQueue};
    use std::os::fd::BorrowedFd;
    use std::sync::Mutex;

    /// An in-process backend: region 0 is registers reached by "messages", region 1 a memfd
    /// the device maps; IRQ 0 is an automasked level IRQ on an eventfd.
    struct Fake {
        flags: u32,
        regs: Mutex<[u8; 0x100]>,
        sram: OwnedFd,
        eventfd: Mutex<Option<OwnedFd>>,
        unmasks: Mutex<u32>,
        resets: Mutex<u32>,
        dma: Mutex<Vec<(u64, u64)>>,
        fail_reads: AtomicBool,
        compatible: Vec<String>,
    }

    impl Fake {
        fn new(compatible: &[&str]) -> Arc<Fake> {
            let sram = rustix::fs::memfd_create("fake-sram", rustix::fs::MemfdFlags::CLOEXEC)
                .expect("memfd");
            rustix::fs::ftruncate(&sram, 0x1000).expect("truncate");
            Arc::new(Fake {
                flags: DEVICE_FLAGS_PLATFORM | DEVICE_FLAGS_RESET,
                regs: Mutex::new([0; 0x100]),
                sram,
                eventfd: Mutex::new(None),
                unmasks: Mutex::new(0),
                resets: Mutex::new(0),
                dma: Mutex::new(Vec::new()),
                fail_reads: AtomicBool::new(false),
                compatible: compatible.iter().map(|s| s.to_string()).collect(),
            })
        }

        /// The "device" raises its IRQ: signal the eventfd the device gave us.
        fn fire(&self) {
            let g = self.eventfd.lock().unwrap();
            rustix::io::write(g.as_ref().expect("eventfd set"), &1u64.to_ne_bytes())
                .expect("signal");
        }
    }

    impl Backend for Fake {
        fn describe(&self) -> String {
            "fake".into()
        }
        fn device_info(&self) -> Result<DeviceInfo, VfioError> {
            Ok(DeviceInfo {
                flags: self.flags,
                num_regions: 2,
                num_irqs: 1,
            })
        }
        fn region_info(&self, index: u32) -> Result<RegionInfo, VfioError> {
            match index {
                0 => Ok(RegionInfo {
                    index,
                    flags: REGION_FLAG_READ | REGION_FLAG_WRITE,
                    size: 0x100,
                    offset: 0,
                }),
                1 => Ok(RegionInfo {
                    index,
                    flags: REGION_FLAG_READ | REGION_FLAG_WRITE | REGION_FLAG_MMAP,
                    size: 0x1000,
                    offset: 0,
                }),
                _ => Err(VfioError::Invalid("no such region".into())),
            }
        }
        fn map_region(&self, info: &RegionInfo) -> Result<Option<Mapping>, VfioError> {
            Mapping::map(self.sram.as_fd(), 0, info.size, true).map(Some)
        }
        fn region_read(&self, index: u32, offset: u64, buf: &mut [u8]) -> Result<(), VfioError> {
            if self.fail_reads.load(Ordering::SeqCst) {
                return Err(VfioError::Timeout("REGION_READ".into()));
            }
            assert_eq!(index, 0);
            let regs = self.regs.lock().unwrap();
            let o = offset as usize;
            buf.copy_from_slice(
                regs.get(o..o + buf.len())
                    .ok_or_else(|| VfioError::Invalid("out of range".into()))?,
            );
            Ok(())
        }
        fn region_write(&self, index: u32, offset: u64, data: &[u8]) -> Result<(), VfioError> {
            assert_eq!(index, 0);
            let mut regs = self.regs.lock().unwrap();
            let o = offset as usize;
            regs.get_mut(o..o + data.len())
                .ok_or_else(|| VfioError::Invalid("out of range".into()))?
                .copy_from_slice(data);
            Ok(())
        }
        fn irq_info(&self, index: u32) -> Result<IrqInfo, VfioError> {
            Ok(IrqInfo {
                index,
                flags: IRQ_FLAG_EVENTFD | IRQ_FLAG_AUTOMASKED,
                count: 1,
            })
        }
        fn set_irq_eventfds(&self, _index: u32, fds: &[BorrowedFd<'_>]) -> Result<(), VfioError> {
            let fd = fds[0].try_clone_to_owned().expect("dup");
            *self.eventfd.lock().unwrap() = Some(fd);
            Ok(())
        }
        fn disable_irq(&self, _index: u32) -> Result<(), VfioError> {
            *self.eventfd.lock().unwrap() = None;
            Ok(())
        }
        fn unmask_irq(&self, _index: u32, _sub: u32) -> Result<(), VfioError> {
            *self.unmasks.lock().unwrap() += 1;
            Ok(())
        }
        fn reset(&self) -> Result<(), VfioError> {
            *self.resets.lock().unwrap() += 1;
            Ok(())
        }
        fn dma_map(&self, region: &DmaRegion<'_>) -> Result<(), VfioError> {
            self.dma.lock().unwrap().push((region.iova, region.size));
            Ok(())
        }
        fn dma_unmap(&self, iova: u64, _size: u64) -> Result<(), VfioError> {
            self.dma.lock().unwrap().retain(|w| w.0 != iova);
            Ok(())
        }
        fn dt_hints(&self) -> Result<DtHints, VfioError> {
            Ok(DtHints {
                compatible: self.compatible.clone(),
                props: vec![(
                    "clock-frequency".into(),
                    1_000_000u32.to_be_bytes().to_vec(),
                )],
            })
        }
    }

    struct Env {
        queue: Rc<TimerQueue>,
        notifier: Notifier,
        dma: Rc<GuestMemory>,
    }

    fn env() -> Env {
        let queue = TimerQueue::new();
        let h = TimerHandle::new(Rc::clone(&queue), Clock::new(ClockMode::Host), 3);
        let mut space = breadboard_core::memory::AddressSpace::new();
        let ram = Rc::new(breadboard_core::memory::RamBlock::new("ram", 0x10000).expect("ram"));
        space
            .add(breadboard_core::memory::Region {
                name: "ram".into(),
                base: 0x8000_0000,
                size: 0x10000,
                kind: breadboard_core::memory::RegionKind::Ram {
                    block: ram,
                    readonly: false,
                },
                owner: None,
            })
            .expect("map ram");
        let dma = Rc::new(GuestMemory::default());
        dma.update_from(&space);
        Env {
            notifier: h.notifier(),
            queue,
            dma,
        }
    }

    fn props(kv: &[(&str, &str)]) -> Props {
        let ty = device_type(|_| Err(VfioError::NotFound("unused".into())));
        Props::build(
            TYPE_NAME,
            &ty.props,
            kv.iter().map(|&(k, v)| (k, RawValue::Str(v))),
        )
        .expect("props")
    }

    fn make(fake: &Arc<Fake>, kv: &[(&str, &str)], env: &Env) -> Result<VfioPlatform, DeviceError> {
        let b: Arc<dyn Backend> = fake.clone();
        VfioPlatform::new(
            "vfio0",
            b,
            &props(kv),
            env.notifier.clone(),
            Rc::clone(&env.dma),
        )
    }

    /// Waits (bounded) for the poller thread to post the IRQ and delivers it like the loop.
    fn deliver(env: &Env, dev: &mut VfioPlatform) -> usize {
        for _ in 0..2000 {
            let n = env.queue.take_notifications();
            if !n.is_empty() {
                for (_, token) in &n {
                    dev.notify(*token);
                }
                return n.len();
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        0
    }

    #[test]
    fn test_regions_go_through_messages_and_the_mapping() {
        let env = env();
        let fake = Fake::new(&["breadboard,checksum-engine"]);
        let mut dev = make(&fake, &[], &env).expect("realize");
        let regions = dev.regions();
        assert_eq!(regions.len(), 2);
        assert_eq!(regions[0].size(), 0x100);
        assert_eq!(regions[1].name(), "vfio-region[1]");
        assert!(!dev.region_is_mapped(0) && dev.region_is_mapped(1));
        dev.write(0, 0x10, 4, 0x1234_5678);
        assert_eq!(
            &fake.regs.lock().unwrap()[0x10..0x14],
            &[0x78, 0x56, 0x34, 0x12]
        );
        assert_eq!(dev.read(0, 0x10, 2), 0x5678);
        assert_eq!(dev.read(0, 0x10, 8), 0x1234_5678);
        dev.write(1, 0x20, 8, 0xfeed_f00d_dead_beef);
        assert_eq!(dev.read(1, 0x20, 8), 0xfeed_f00d_dead_beef);
        let mut b = [0u8; 8];
        rustix::io::pread(&fake.sram, &mut b, 0x20).expect("pread");
        assert_eq!(
            u64::from_le_bytes(b),
            0xfeed_f00d_dead_beef,
            "the write reached the fd"
        );
        // mmap=off: the mmap'able region is not mapped.
        let dev2 = make(&fake, &[("mmap", "off")], &env).expect("realize");
        assert!(!dev2.region_is_mapped(1));
    }

    #[test]
    fn test_level_irq_stays_high_until_eoi_then_unmasks() {
        let env = env();
        let fake = Fake::new(&["breadboard,checksum-engine"]);
        let mut dev = make(&fake, &[], &env).expect("realize");
        dev.reset();
        assert_eq!(*fake.resets.lock().unwrap(), 1);
        assert_eq!(*fake.unmasks.lock().unwrap(), 1, "reset unmasks level IRQs");
        assert_eq!(
            *fake.dma.lock().unwrap(),
            vec![(0x8000_0000, 0x10000)],
            "RAM mapped"
        );
        let line = dev.irq_outputs().remove(0);
        let sink = RecordingSink::new(1);
        line.connect(sink.clone(), 0);
        fake.fire();
        assert_eq!(deliver(&env, &mut dev), 1);
        assert!(sink.level(0), "raised on the eventfd");
        // The PLIC completes the interrupt: the hook unmasks and the line drops.
        assert_eq!(line.end_of_interrupt(), Some(false));
        assert_eq!(*fake.unmasks.lock().unwrap(), 2);
        fake.fire();
        assert_eq!(deliver(&env, &mut dev), 1);
        assert!(line.level(), "fires again after the unmask");
        drop(dev);
        assert!(fake.dma.lock().unwrap().is_empty(), "DMA unmapped on drop");
        assert!(
            fake.eventfd.lock().unwrap().is_none(),
            "IRQ disabled on drop"
        );
    }

    #[test]
    fn test_backend_failure_marks_broken_and_reads_all_ones() {
        let env = env();
        let fake = Fake::new(&["breadboard,checksum-engine"]);
        let mut dev = make(&fake, &[], &env).expect("realize");
        let sink = RecordingSink::new(1);
        dev.irq_outputs()[0].connect(sink.clone(), 0);
        dev.notify(0);
        assert!(sink.level(0));
        fake.fail_reads.store(true, Ordering::SeqCst);
        assert_eq!(dev.read(0, 0, 4), 0xffff_ffff);
        assert!(dev.is_broken());
        assert!(!sink.level(0), "lines drop when the device breaks");
        fake.fail_reads.store(false, Ordering::SeqCst);
        assert_eq!(dev.read(0, 0, 2), 0xffff, "stays broken");
        assert_eq!(dev.read(1, 0, 1), 0xff, "even mapped regions");
        dev.write(0, 0, 4, 1);
        assert_eq!(fake.regs.lock().unwrap()[0], 0, "writes are dropped");
        dev.notify(0);
        assert!(!sink.level(0), "IRQs are ignored");
        assert_eq!(dev.read(7, 0, 4), 0xffff_ffff, "bad region index");
    }

    #[test]
    fn test_realize_errors_are_clear() {
        let env = env();
        let fake = Fake::new(&["acme,widget"]);
        let e = make(&fake, &[], &env).err().expect("no writer").to_string();
        assert!(e.contains("acme,widget") && e.contains("dt-copy=on"), "{e}");
        assert!(make(&fake, &[("dt-copy", "on")], &env).is_ok());
        assert!(make(&fake, &[("compatible", "virtio,mmio")], &env).is_ok());
        let mut not_platform = Fake::new(&["virtio,mmio"]);
        Arc::get_mut(&mut not_platform).expect("unique").flags = 0;
        let e = make(&not_platform, &[], &env)
            .err()
            .expect("not platform")
            .to_string();
        assert!(e.contains("not a platform device"), "{e}");
        let ty = device_type(|_| Err(VfioError::NotFound("no such socket".into())));
        let e = (ty.factory)(&props(&[]), &test_ctx(&env))
            .err()
            .expect("no backend")
            .to_string();
        assert!(e.contains("exactly one of host="), "{e}");
        let e = (ty.factory)(&props(&[("socket", "/nonexistent")]), &test_ctx(&env))
            .err()
            .expect("open fails")
            .to_string();
        assert!(e.contains("no such socket"), "{e}");
    }

    fn test_ctx(env: &Env) -> DeviceCtx<'static> {
        let chardevs = Box::leak(Box::new(breadboard_core::ChardevRegistry::default()));
        let drives = Box::leak(Box::new(breadboard_core::DriveRegistry::default()));
        let clock = Clock::new(ClockMode::Host);
        DeviceCtx {
            id: 3,
            name: "vfio0",
            clock: Rc::clone(&clock),
            timers: TimerHandle::new(Rc::clone(&env.queue), clock, 3),
            dma: Rc::clone(&env.dma),
            chardevs,
            drives,
            num_harts: 1,
        }
    }

    #[test]
    fn test_dt_nodes_per_writer() {
        let env = env();
        let res = NodeResources {
            regs: vec![(0x400_0000, 0x100), (0x400_1000, 0x1000)],
            address_cells: 2,
            size_cells: 2,
            irqs: vec![Some(breadboard_core::IrqTarget {
                phandle: 3,
                specifier: vec![64],
            })],
            phandle: None,
            cpu_intc_phandles: vec![],
            default_interrupt_parent: Some(3),
        };
        let dts = |kv: &[(&str, &str)], compat: &[&str]| {
            let fake = Fake::new(compat);
            let dev = make(&fake, kv, &env).expect("realize");
            let mut fdt = FdtWriter::new().expect("fdt");
            let root = fdt.begin_node("").expect("root");
            dev.write_fdt(&mut fdt, &res).expect("node");
            fdt.end_node(root).expect("end");
            fdt.finish().expect("finish")
        };
        let blob = dts(&[], &["breadboard,checksum-engine"]);
        let text = String::from_utf8_lossy(&blob);
        assert!(text.contains("checksum@4000000"));
        assert!(text.contains("breadboard,checksum-engine"));
        let blob = dts(&[("dt-copy", "on")], &["acme,widget"]);
        let text = String::from_utf8_lossy(&blob);
        assert!(text.contains("widget@4000000") && text.contains("clock-frequency"));
        let blob = dts(&[], &["virtio,mmio"]);
        assert!(String::from_utf8_lossy(&blob).contains("virtio_mmio@4000000"));
    }
}
