//! The system bus as a hart sees it: RAM and ROM by host pointer (the hart caches them in its
//! TLB), everything else through the address space's MMIO dispatch. A write that makes a
//! device ask for shutdown or reset is recorded so the main loop acts on it after the slice.

use breadboard_core::{AddressSpace, Clock, MachineRequest, RegionKind};
use breadboard_devices::clint::MtimeSource;
use breadboard_riscv::{Bus, BusError, CodePages, HostPage};

/// A borrow of the machine's parts for one hart time slice.
pub struct SystemBus<'a> {
    /// Address space.
    pub space: &'a AddressSpace,
    /// Virtual clock (for `mtime` when the machine has no CLINT).
    pub clock: &'a Clock,
    /// Timebase of the `time` CSR.
    pub timebase_hz: u64,
    /// The CLINT's `mtime` (it includes guest writes to `mtime`), if there is a CLINT.
    pub mtime: Option<&'a MtimeSource>,
    /// Decoded-code tracking, told about slow-path RAM writes.
    pub code_pages: &'a CodePages,
    /// First machine request seen during the slice.
    pub request: Option<MachineRequest>,
    /// Under `-icount`: (virtual time at slice start, hart instret at slice start), so time can
    /// be brought up to date at every MMIO access.
    pub icount_base: Option<(u64, u64)>,
}

impl SystemBus<'_> {
    /// Under `-icount`, virtual time once the running hart has retired up to `instret`.
    fn icount_now(&self, instret: u64) -> Option<u64> {
        let (t0, i0) = self.icount_base?;
        self.clock
            .insns_to_ns(instret.wrapping_sub(i0))
            .map(|d| t0.saturating_add(d))
    }
}

impl Bus for SystemBus<'_> {
    fn host_page(&mut self, paddr: u64) -> Option<HostPage> {
        let page = paddr & !0xfff;
        let r = self.space.find(page)?;
        // Only whole, page-aligned pages of RAM can be handed out as host pointers.
        if r.base & 0xfff != 0 || page.checked_add(0x1000)? > r.end() {
            return None;
        }
        let (ptr, _, writable) = self.space.host_ptr(page)?;
        Some(HostPage { ptr, writable })
    }

    fn read(&mut self, paddr: u64, size: u8) -> Result<u64, BusError> {
        let v = self.space.read(paddr, size).map_err(|e| {
            tracing::warn!(target: "guest_error", "read of {size} bytes at {paddr:#x}: {e}");
            BusError::AccessFault
        })?;
        tracing::info!(target: "mmio", "read {paddr:#x} size {size} = {v:#x}");
        Ok(v)
    }

    fn write(&mut self, paddr: u64, size: u8, value: u64) -> Result<(), BusError> {
        let Some(r) = self.space.find(paddr) else {
            tracing::warn!(target: "guest_error", "write of {size} bytes at {paddr:#x}: nothing mapped");
            return Err(BusError::AccessFault);
        };
        let mmio = match &r.kind {
            RegionKind::Mmio { device, .. } => Some(device.clone()),
            RegionKind::Ram { .. } => None,
        };
        self.space.write(paddr, size, value).map_err(|e| {
            tracing::warn!(target: "guest_error", "write of {size} bytes at {paddr:#x}: {e}");
            BusError::AccessFault
        })?;
        tracing::info!(target: "mmio", "write {paddr:#x} size {size} = {value:#x}");
        match mmio {
            Some(dev) => {
                if let Ok(mut d) = dev.try_borrow_mut()
                    && let Some(req) = d.take_machine_request()
                {
                    self.request.get_or_insert(req);
                }
            }
            None => self.code_pages.note_write(paddr, u64::from(size)),
        }
        Ok(())
    }

    fn sync_instret(&mut self, instret: u64) {
        if let Some(t) = self.icount_now(instret) {
            self.clock.set_icount_time(t);
        }
    }

    fn mtime(&mut self) -> u64 {
        match self.mtime {
            Some(m) => m.mtime(),
            None => self.clock.ticks(self.timebase_hz),
        }
    }
}
