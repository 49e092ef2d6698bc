//! Guest memory access for one hart: the soft TLB (guest virtual page -> host pointer), the
//! load/store/AMO paths and address translation (Privileged ISA 20211203 §3.7 PMP, §4.3-4.5
//! virtual memory; today M/U with bare translation).
//!
//! Fast path: a direct-mapped TLB entry whose tag equals `vaddr & (!PAGE_MASK | (size - 1))`
//! gives the host page; a misaligned access or a miss fails that one compare and goes to the
//! slow path. Store entries for pages holding decoded code carry `TLB_CODE` in their tag, so they
//! never match on the fast path and self-modifying code costs ordinary stores nothing.

use crate::code::{CodeCache, PAGE_MASK};
use crate::state::{Exception, Priv, State, Trap, ms};
use crate::{Bus, BusError, HostPage};

/// Entries per TLB (direct-mapped).
pub(crate) const TLB_SIZE: usize = 256;
const TLB_MASK: usize = TLB_SIZE - 1;
/// Tag flag: the page holds decoded code (store TLB only). Bit 11 never survives the fast-path
/// mask, so a flagged tag never matches.
const TLB_CODE: u64 = 0x800;
const INVALID: u64 = u64::MAX;

/// One active PMP entry, decoded: bytes `[start, end)` and its pmpcfg byte.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PmpRule {
    pub start: u128,
    pub end: u128,
    pub cfg: u8,
}

#[derive(Clone, Copy)]
pub(crate) struct TlbEntry {
    pub tag: u64,
    /// Host address of the guest page.
    pub host: *mut u8,
    /// Guest-physical address of the page.
    pub paddr: u64,
}

const EMPTY: TlbEntry = TlbEntry {
    tag: INVALID,
    host: core::ptr::null_mut(),
    paddr: 0,
};

/// Where a store goes: a host pointer (and whether the page holds decoded code) or MMIO (None),
/// plus the physical address.
type StoreTarget = (Option<(*mut u8, bool)>, u64);

#[derive(Clone, Copy)]
pub(crate) struct FetchEntry {
    pub tag: u64,
    /// Index of the decoded page in the hart's `CodeCache`.
    pub page: u32,
}

const FETCH_EMPTY: FetchEntry = FetchEntry {
    tag: INVALID,
    page: 0,
};

/// Entries in the physical page -> host page cache (`State::host_page`).
const PHYS_SIZE: usize = 64;

/// A guest-physical page of RAM or ROM and its host address.
#[derive(Clone, Copy)]
pub(crate) struct PhysEntry {
    page: u64,
    host: *mut u8,
    writable: bool,
}

const PHYS_EMPTY: PhysEntry = PhysEntry {
    page: INVALID,
    host: core::ptr::null_mut(),
    writable: false,
};

pub(crate) struct Tlb {
    pub load: [TlbEntry; TLB_SIZE],
    pub store: [TlbEntry; TLB_SIZE],
    pub fetch: [FetchEntry; TLB_SIZE],
    /// Physical pages the slow paths reached recently (page-table pages above all), so a TLB
    /// refill does not ask the bus to search its regions again for each level of a walk.
    pub phys: [PhysEntry; PHYS_SIZE],
}

impl Tlb {
    pub fn new() -> Tlb {
        Tlb {
            load: [EMPTY; TLB_SIZE],
            store: [EMPTY; TLB_SIZE],
            fetch: [FETCH_EMPTY; TLB_SIZE],
            phys: [PHYS_EMPTY; PHYS_SIZE],
        }
    }

    pub fn flush_all(&mut self) {
        self.load = [EMPTY; TLB_SIZE];
        self.store = [EMPTY; TLB_SIZE];
        self.fetch = [FETCH_EMPTY; TLB_SIZE];
        self.phys = [PHYS_EMPTY; PHYS_SIZE];
    }

    pub fn flush_store(&mut self) {
        self.store = [EMPTY; TLB_SIZE];
    }

    pub fn flush_fetch(&mut self) {
        self.fetch = [FETCH_EMPTY; TLB_SIZE];
    }
}

#[inline(always)]
pub(crate) fn tlb_index(vaddr: u64) -> usize {
    (vaddr >> 12) as usize & TLB_MASK
}

/// The kind of a memory access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    Fetch,
    Load,
    Store,
}

impl Access {
    fn page_fault(self) -> Exception {
        match self {
            Access::Fetch => Exception::InsnPageFault,
            Access::Load => Exception::LoadPageFault,
            Access::Store => Exception::StorePageFault,
        }
    }

    fn fault(self) -> Exception {
        match self {
            Access::Fetch => Exception::InsnAccessFault,
            Access::Load => Exception::LoadAccessFault,
            Access::Store => Exception::StoreAccessFault,
        }
    }
}

/// Read `SIZE` little-endian bytes at `p`, zero-extended.
///
/// # Safety
/// `p..p + SIZE` must be readable host memory.
#[inline(always)]
unsafe fn read_host<const SIZE: u64>(p: *const u8) -> u64 {
    // SAFETY: the caller guarantees the range is readable; unaligned reads are allowed.
    unsafe {
        match SIZE {
            1 => p.read() as u64,
            2 => u16::from_le(p.cast::<u16>().read_unaligned()) as u64,
            4 => u32::from_le(p.cast::<u32>().read_unaligned()) as u64,
            _ => u64::from_le(p.cast::<u64>().read_unaligned()),
        }
    }
}

/// Write the low `SIZE` bytes of `v` little-endian at `p`.
///
/// # Safety
/// `p..p + SIZE` must be writable host memory.
#[inline(always)]
unsafe fn write_host<const SIZE: u64>(p: *mut u8, v: u64) {
    // SAFETY: the caller guarantees the range is writable; unaligned writes are allowed.
    unsafe {
        match SIZE {
            1 => p.write(v as u8),
            2 => p.cast::<u16>().write_unaligned((v as u16).to_le()),
            4 => p.cast::<u32>().write_unaligned((v as u32).to_le()),
            _ => p.cast::<u64>().write_unaligned(v.to_le()),
        }
    }
}

fn read_dyn(p: *const u8, size: u8) -> u64 {
    // SAFETY: callers pass a pointer inside a host page with `size` bytes left in the page.
    unsafe {
        match size {
            1 => read_host::<1>(p),
            2 => read_host::<2>(p),
            4 => read_host::<4>(p),
            _ => read_host::<8>(p),
        }
    }
}

fn write_dyn(p: *mut u8, size: u8, v: u64) {
    // SAFETY: callers pass a pointer inside a writable host page with `size` bytes left in it.
    unsafe {
        match size {
            1 => write_host::<1>(p, v),
            2 => write_host::<2>(p, v),
            4 => write_host::<4>(p, v),
            _ => write_host::<8>(p, v),
        }
    }
}

impl State {
    /// Whether a bus access for `access` must be deferred. Instruction fetches (and their page
    /// walks) reach the bus only from the outer loop and `step_uncached`, where `instret` is
    /// exact. Data accesses made inside `run_block`, where `instret` lags behind the block's
    /// instructions, are not made: the access fails with a placeholder trap and sets `deferred`,
    /// and the outer loop re-runs the instruction through `step_uncached`.
    #[inline]
    fn defer(&mut self, access: Access) -> bool {
        if access == Access::Fetch || self.uncached {
            return false;
        }
        self.deferred = true;
        true
    }

    /// `Bus::read` (MMIO), telling the bus the exact instruction count first. May be deferred
    /// (see `defer`; the error is then not a guest-visible fault).
    pub fn bus_read<B: Bus>(
        &mut self,
        bus: &mut B,
        pa: u64,
        size: u8,
        access: Access,
    ) -> Result<u64, BusError> {
        if self.defer(access) {
            return Err(BusError::AccessFault);
        }
        bus.sync_instret(self.instret);
        bus.read(pa, size)
    }

    /// `Bus::write` (MMIO), telling the bus the exact instruction count first. May be deferred
    /// like [`State::bus_read`] (a page walk for a fetch writes A/D bits with `Access::Fetch`).
    pub fn bus_write<B: Bus>(
        &mut self,
        bus: &mut B,
        pa: u64,
        size: u8,
        v: u64,
        access: Access,
    ) -> Result<(), BusError> {
        if self.defer(access) {
            return Err(BusError::AccessFault);
        }
        bus.sync_instret(self.instret);
        bus.write(pa, size, v)
    }

    /// `Bus::mtime`, telling the bus the exact instruction count first (the caller has brought
    /// `instret` up to date).
    pub fn bus_mtime<B: Bus>(&mut self, bus: &mut B) -> u64 {
        bus.sync_instret(self.instret);
        bus.mtime()
    }

    /// Wrap an address to XLEN.
    #[inline(always)]
    pub fn wrap(&self, a: u64) -> u64 {
        if self.rv32() { a & 0xffff_ffff } else { a }
    }

    /// The privilege that loads and stores are checked with (mstatus.MPRV).
    fn data_priv(&self) -> Priv {
        if self.prv == Priv::Machine && self.mstatus & ms::MPRV != 0 {
            Priv::from_bits(self.mstatus >> ms::MPP_SHIFT)
        } else {
            self.prv
        }
    }

    /// Translate a virtual address (Sv32/Sv39/Sv48 when satp enables them and the effective
    /// privilege is below M) and check PMP.
    pub fn translate<B: Bus>(
        &mut self,
        bus: &mut B,
        vaddr: u64,
        access: Access,
    ) -> Result<u64, Trap> {
        let prv = self.access_priv(access);
        let paddr = if prv == Priv::Machine || self.satp_mode() == 0 {
            vaddr
        } else {
            let r = self.walk(bus, vaddr, access, prv);
            // `-d mmu` (a walk is a TLB miss: the slow path only).
            match &r {
                Ok(pa) => {
                    tracing::info!(target: "mmu", "hart {}: {access:?} {vaddr:#x} -> {pa:#x}", self.hart_id)
                }
                Err(t) => {
                    tracing::info!(target: "mmu", "hart {}: {access:?} {vaddr:#x}: {:?}", self.hart_id, t.cause)
                }
            }
            r?
        };
        if self.pmp_entries != 0 && !self.pmp_check(paddr, paddr, access, prv) {
            return Err(Trap::new(access.fault(), vaddr));
        }
        Ok(paddr)
    }

    /// satp.MODE (0 = Bare, 1 = Sv32, 8 = Sv39, 9 = Sv48).
    pub fn satp_mode(&self) -> u64 {
        if self.rv32() {
            self.satp >> 31
        } else {
            self.satp >> 60
        }
    }

    /// Page-table walk (Privileged ISA §4.3.2), setting A and D in the leaf PTE.
    fn walk<B: Bus>(
        &mut self,
        bus: &mut B,
        vaddr: u64,
        access: Access,
        prv: Priv,
    ) -> Result<u64, Trap> {
        let page_fault = Trap::new(access.page_fault(), vaddr);
        let (levels, vpn_bits, pte_size): (u32, u32, u64) = match self.satp_mode() {
            1 => (2, 10, 4),
            8 => (3, 9, 8),
            9 => (4, 9, 8),
            _ => return Err(page_fault),
        };
        if pte_size == 8 {
            // The address must be sign-extended from its top VA bit.
            let va_bits = 12 + levels * vpn_bits;
            let top = (vaddr as i64) >> (va_bits - 1);
            if top != 0 && top != -1 {
                return Err(page_fault);
            }
        }
        let ppn_mask = if self.rv32() {
            (1u64 << 22) - 1
        } else {
            (1u64 << 44) - 1
        };
        let mut table = (self.satp & ppn_mask) << 12;
        let mut level = levels;
        while level > 0 {
            level -= 1;
            let vpn = (vaddr >> (12 + level * vpn_bits)) & ((1u64 << vpn_bits) - 1);
            let pte_addr = table.wrapping_add(vpn * pte_size);
            // PTE accesses are checked by PMP as S-mode loads.
            if self.pmp_entries != 0
                && !self.pmp_check(
                    pte_addr,
                    pte_addr + pte_size - 1,
                    Access::Load,
                    Priv::Supervisor,
                )
            {
                return Err(Trap::new(access.fault(), vaddr));
            }
            let pte = self
                .phys_read(bus, pte_addr, pte_size as u8, access)
                .ok_or(Trap::new(access.fault(), vaddr))?;
            let (v, r, w, x, u, a, d) = (
                pte & 1 != 0,
                pte & 2 != 0,
                pte & 4 != 0,
                pte & 8 != 0,
                pte & 16 != 0,
                pte & 64 != 0,
                pte & 128 != 0,
            );
            // Reserved bits (63:54: N, PBMT, reserved) must be zero without Svnapot/Svpbmt.
            if !v || (!r && w) || (pte_size == 8 && pte >> 54 != 0) {
                return Err(page_fault);
            }
            let ppn = (pte >> 10) & ppn_mask;
            if !r && !x {
                // Pointer to the next level.
                if level == 0 || a || d || u {
                    return Err(page_fault);
                }
                table = ppn << 12;
                continue;
            }
            // Leaf: permissions.
            let sum = self.mstatus & ms::SUM != 0;
            let mxr = self.mstatus & ms::MXR != 0;
            let priv_ok = match prv {
                Priv::User => u,
                _ => !u || (sum && access != Access::Fetch),
            };
            let perm_ok = match access {
                Access::Fetch => x,
                Access::Load => r || (mxr && x),
                Access::Store => w,
            };
            if !priv_ok || !perm_ok {
                return Err(page_fault);
            }
            // A superpage's PPN must be aligned to its size.
            let low_mask = (1u64 << (level * vpn_bits)) - 1;
            if ppn & low_mask != 0 {
                return Err(page_fault);
            }
            if !a || (access == Access::Store && !d) {
                let new = pte | 64 | if access == Access::Store { 128 } else { 0 };
                if !self.phys_write(bus, pte_addr, pte_size as u8, new, access) {
                    return Err(Trap::new(access.fault(), vaddr));
                }
            }
            let vpn_low = (vaddr >> 12) & low_mask;
            return Ok(((ppn | vpn_low) << 12) | (vaddr & PAGE_MASK));
        }
        Err(page_fault)
    }

    /// `Bus::host_page` for the page holding `pa`, through the hart's small cache of recent
    /// physical pages (the same validity as the TLBs' host pointers: flushed with them).
    #[inline]
    pub(crate) fn host_page<B: Bus>(&mut self, bus: &mut B, pa: u64) -> Option<HostPage> {
        let page = pa & !PAGE_MASK;
        let i = (page >> 12) as usize & (PHYS_SIZE - 1);
        if let Some(e) = self.tlb.phys.get(i)
            && e.page == page
        {
            return Some(HostPage {
                ptr: e.host,
                writable: e.writable,
            });
        }
        let hp = bus.host_page(page)?;
        if let Some(e) = self.tlb.phys.get_mut(i) {
            *e = PhysEntry {
                page,
                host: hp.ptr,
                writable: hp.writable,
            };
        }
        Some(hp)
    }

    /// Physical read for the page walker (translating for `access`).
    fn phys_read<B: Bus>(&mut self, bus: &mut B, pa: u64, size: u8, access: Access) -> Option<u64> {
        match self.host_page(bus, pa) {
            Some(hp) => Some(read_dyn(
                hp.ptr.wrapping_add((pa & PAGE_MASK) as usize),
                size,
            )),
            None => self.bus_read(bus, pa, size, access).ok(),
        }
    }

    /// Physical write for A/D updates.
    fn phys_write<B: Bus>(
        &mut self,
        bus: &mut B,
        pa: u64,
        size: u8,
        v: u64,
        access: Access,
    ) -> bool {
        match self.host_page(bus, pa) {
            Some(hp) if hp.writable => {
                write_dyn(hp.ptr.wrapping_add((pa & PAGE_MASK) as usize), size, v);
                true
            }
            Some(_) => false,
            None => self.bus_write(bus, pa, size, v, access).is_ok(),
        }
    }

    fn access_priv(&self, access: Access) -> Priv {
        if access == Access::Fetch {
            self.prv
        } else {
            self.data_priv()
        }
    }

    /// Whether the TLB may cache the whole page holding `paddr` for `access` (PMP may cover
    /// only part of it; such pages are checked per access).
    pub fn page_cacheable(&self, paddr: u64, access: Access) -> bool {
        if self.pmp_entries == 0 {
            return true;
        }
        let page = paddr & !PAGE_MASK;
        self.pmp_check(page, page | PAGE_MASK, access, self.access_priv(access))
    }

    /// Decode pmpcfg/pmpaddr into `pmp_rules` (call after any change to them): the entries
    /// that are not OFF, lowest-numbered first, as byte ranges. A TOR entry's bottom is the
    /// previous entry's address whatever that entry's mode.
    pub(crate) fn pmp_rebuild(&mut self) {
        let rv32 = self.rv32();
        let mut prev_top = 0u64;
        self.pmp_rules.clear();
        for e in 0..self.pmp_entries as usize {
            let cfg = self.pmpcfg.get(e).copied().unwrap_or(0);
            let addr = self.pmpaddr.get(e).copied().unwrap_or(0);
            let top = addr << 2;
            let (start, end) = match (cfg >> 3) & 3 {
                0 => {
                    prev_top = top;
                    continue;
                }
                1 => (prev_top as u128, top as u128),
                2 => (top as u128, top as u128 + 4),
                _ => {
                    let ones = (!addr).trailing_zeros().min(if rv32 { 32 } else { 54 });
                    let size = 1u128 << (ones + 3);
                    let base = (top as u128) & !(size - 1);
                    (base, base + size)
                }
            };
            prev_top = top;
            self.pmp_rules.push(PmpRule { start, end, cfg });
        }
    }

    /// PMP (Privileged ISA §3.7): the lowest-numbered entry matching any byte of `[lo, hi]`
    /// decides, and it must cover the whole range.
    fn pmp_check(&self, lo: u64, hi: u64, access: Access, prv: Priv) -> bool {
        let (l, h) = (lo as u128, hi as u128);
        for r in &self.pmp_rules {
            if h < r.start || l >= r.end {
                continue;
            }
            if l < r.start || h >= r.end {
                return false;
            }
            if prv == Priv::Machine && r.cfg & 0x80 == 0 {
                return true;
            }
            let bit = match access {
                Access::Load => 1,
                Access::Store => 2,
                Access::Fetch => 4,
            };
            return r.cfg & bit != 0;
        }
        prv == Priv::Machine
    }

    /// Load `SIZE` bytes, zero-extended. Misaligned loads are split (no trap), as QEMU does.
    #[inline(always)]
    pub fn load<B: Bus, const SIZE: u64>(&mut self, bus: &mut B, vaddr: u64) -> Result<u64, Trap> {
        if let Some(e) = self.tlb.load.get(tlb_index(vaddr))
            && e.tag == vaddr & (!PAGE_MASK | (SIZE - 1))
        {
            let p = e.host.wrapping_add((vaddr & PAGE_MASK) as usize);
            // SAFETY: the entry maps this guest page to a host page that stays valid for the
            // machine's life (Bus contract); the access is aligned so it ends inside the page.
            return Ok(unsafe { read_host::<SIZE>(p) });
        }
        self.load_slow(bus, vaddr, SIZE as u8)
    }

    #[inline(never)]
    pub fn load_slow<B: Bus>(&mut self, bus: &mut B, vaddr: u64, size: u8) -> Result<u64, Trap> {
        let s = size as u64;
        if vaddr & (s - 1) != 0 {
            let mut v = 0u64;
            for i in 0..s {
                let a = self.wrap(vaddr.wrapping_add(i));
                v |= self.load_slow(bus, a, 1)? << (8 * i);
            }
            return Ok(v);
        }
        let pa = self.translate(bus, vaddr, Access::Load)?;
        match self.host_page(bus, pa) {
            Some(hp) => {
                if self.page_cacheable(pa, Access::Load)
                    && let Some(e) = self.tlb.load.get_mut(tlb_index(vaddr))
                {
                    *e = TlbEntry { tag: vaddr & !PAGE_MASK, host: hp.ptr, paddr: pa & !PAGE_MASK };
                }
                Ok(read_dyn(hp.ptr.wrapping_add((pa & PAGE_MASK) as usize), size))
            }
            None => self.bus_read(bus, pa, size, Access::Load).map_err(|e| {
                if !self.deferred {
                    tracing::debug!(target: "guest_error", "hart {}: load of {size} bytes at {pa:#x}: {e:?}", self.hart_id);
                }
                Trap::new(Exception::LoadAccessFault, vaddr)
            }),
        }
    }

    /// Store the low `SIZE` bytes of `v`. Misaligned stores are split (no trap).
    #[inline(always)]
    pub fn store<B: Bus, const SIZE: u64>(
        &mut self,
        bus: &mut B,
        code: &CodeCache,
        vaddr: u64,
        v: u64,
    ) -> Result<(), Trap> {
        if let Some(e) = self.tlb.store.get(tlb_index(vaddr))
            && e.tag == vaddr & (!PAGE_MASK | (SIZE - 1))
        {
            let p = e.host.wrapping_add((vaddr & PAGE_MASK) as usize);
            // SAFETY: as in `load`; store entries are only installed for writable pages.
            unsafe { write_host::<SIZE>(p, v) };
            return Ok(());
        }
        self.store_slow(bus, code, vaddr, SIZE as u8, v)
    }

    #[inline(never)]
    pub fn store_slow<B: Bus>(
        &mut self,
        bus: &mut B,
        code: &CodeCache,
        vaddr: u64,
        size: u8,
        v: u64,
    ) -> Result<(), Trap> {
        let s = size as u64;
        if vaddr & (s - 1) != 0 {
            // Check both ends first so a fault leaves memory untouched.
            let last = self.wrap(vaddr.wrapping_add(s - 1));
            self.translate(bus, vaddr, Access::Store)?;
            self.translate(bus, last, Access::Store)?;
            for i in 0..s {
                let a = self.wrap(vaddr.wrapping_add(i));
                self.store_slow(bus, code, a, 1, v >> (8 * i))?;
            }
            return Ok(());
        }
        let (host, pa) = self.store_target(bus, vaddr)?;
        match host {
            Some((p, is_code)) => {
                write_dyn(p, size, v);
                if is_code {
                    self.code_written(code, pa, s);
                }
                Ok(())
            }
            None => {
                self.bus_write(bus, pa, size, v, Access::Store).map_err(|e| {
                    if !self.deferred {
                        tracing::debug!(target: "guest_error", "hart {}: store of {size} bytes at {pa:#x}: {e:?}", self.hart_id);
                    }
                    Trap::new(Exception::StoreAccessFault, vaddr)
                })?;
                // A device write may raise an interrupt: leave the block soon.
                self.stop_at = 0;
                Ok(())
            }
        }
    }

    /// Resolve a store to a host pointer (and whether the page holds code) or to MMIO (None),
    /// filling the store TLB.
    fn store_target<B: Bus>(&mut self, bus: &mut B, vaddr: u64) -> Result<StoreTarget, Trap> {
        let i = tlb_index(vaddr);
        let page = vaddr & !PAGE_MASK;
        let off = vaddr & PAGE_MASK;
        if let Some(e) = self.tlb.store.get(i)
            && e.tag & !TLB_CODE == page
        {
            let code = e.tag & TLB_CODE != 0;
            return Ok((
                Some((e.host.wrapping_add(off as usize), code)),
                e.paddr | off,
            ));
        }
        let pa = self.translate(bus, vaddr, Access::Store)?;
        match self.host_page(bus, pa) {
            Some(hp) if hp.writable => {
                let code = self.code_pages.is_code(pa);
                if self.page_cacheable(pa, Access::Store)
                    && let Some(e) = self.tlb.store.get_mut(i)
                {
                    let tag = if code { page | TLB_CODE } else { page };
                    *e = TlbEntry {
                        tag,
                        host: hp.ptr,
                        paddr: pa & !PAGE_MASK,
                    };
                }
                Ok((
                    Some((hp.ptr.wrapping_add((pa & PAGE_MASK) as usize), code)),
                    pa,
                ))
            }
            Some(_) => {
                tracing::debug!(target: "guest_error", "hart {}: store to ROM at {pa:#x}", self.hart_id);
                Err(Trap::new(Exception::StoreAccessFault, vaddr))
            }
            None => Ok((None, pa)),
        }
    }

    /// Bytes of a page holding decoded code were written by this hart.
    #[cold]
    fn code_written(&mut self, code: &CodeCache, pa: u64, len: u64) {
        code.invalidate_range(pa, len);
        self.code_pages.note_write_from(self.code_slot, pa, len);
        // The current block may be running the bytes just written.
        self.stop_at = 0;
    }

    /// Atomic read-modify-write of `size` bytes (AMO*): returns the old value.
    pub fn amo<B: Bus>(
        &mut self,
        bus: &mut B,
        code: &CodeCache,
        vaddr: u64,
        size: u8,
        op: impl FnOnce(u64) -> u64,
    ) -> Result<u64, Trap> {
        if vaddr & (size as u64 - 1) != 0 {
            return Err(Trap::new(Exception::StoreMisaligned, vaddr));
        }
        let (host, pa) = self.store_target(bus, vaddr)?;
        match host {
            Some((p, is_code)) => {
                let old = read_dyn(p, size);
                write_dyn(p, size, op(old));
                if is_code {
                    self.code_written(code, pa, size as u64);
                }
                Ok(old)
            }
            None => {
                let fault = Trap::new(Exception::StoreAccessFault, vaddr);
                let old = self
                    .bus_read(bus, pa, size, Access::Store)
                    .map_err(|_| fault)?;
                self.bus_write(bus, pa, size, op(old), Access::Store)
                    .map_err(|_| fault)?;
                self.stop_at = 0;
                Ok(old)
            }
        }
    }

    /// LR: aligned load that sets the reservation.
    pub fn load_reserved<B: Bus>(
        &mut self,
        bus: &mut B,
        vaddr: u64,
        size: u8,
    ) -> Result<u64, Trap> {
        if vaddr & (size as u64 - 1) != 0 {
            return Err(Trap::new(Exception::LoadMisaligned, vaddr));
        }
        let v = self.load_slow(bus, vaddr, size)?;
        self.reservation = Some(vaddr);
        Ok(v)
    }

    /// SC: returns true if the store happened.
    pub fn store_conditional<B: Bus>(
        &mut self,
        bus: &mut B,
        code: &CodeCache,
        vaddr: u64,
        size: u8,
        v: u64,
    ) -> Result<bool, Trap> {
        if vaddr & (size as u64 - 1) != 0 {
            return Err(Trap::new(Exception::StoreMisaligned, vaddr));
        }
        let reservation = self.reservation.take();
        let ok = reservation == Some(vaddr);
        if ok && let Err(t) = self.store_slow(bus, code, vaddr, size, v) {
            if self.deferred {
                // Re-run uncached: the reservation must still be there.
                self.reservation = reservation;
            }
            return Err(t);
        }
        Ok(ok)
    }

    /// Fetch a 16-bit parcel without the decode cache (MMIO code, page-crossing instructions,
    /// trap values).
    pub fn fetch_parcel<B: Bus>(&mut self, bus: &mut B, vaddr: u64) -> Result<u16, Trap> {
        let pa = self.translate(bus, vaddr, Access::Fetch)?;
        if let Some(hp) = self.host_page(bus, pa) {
            return Ok(read_dyn(hp.ptr.wrapping_add((pa & PAGE_MASK) as usize), 2) as u16);
        }
        self.bus_read(bus, pa, 2, Access::Fetch)
            .map(|v| v as u16)
            .map_err(|_| Trap::new(Exception::InsnAccessFault, vaddr))
    }

    /// Fetch a whole instruction without the decode cache.
    pub fn fetch_slow<B: Bus>(&mut self, bus: &mut B, vaddr: u64) -> Result<u32, Trap> {
        let lo = self.fetch_parcel(bus, vaddr)?;
        if lo & 3 != 3 {
            return Ok(lo as u32);
        }
        let a = self.wrap(vaddr.wrapping_add(2));
        let hi = self.fetch_parcel(bus, a)?;
        Ok(lo as u32 | (hi as u32) << 16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csr;
    use crate::state::HartConfig;

    #[test]
    fn test_pmp_rules_follow_every_cfg_and_addr_write() {
        let mut st = State::new(HartConfig::rv64(0, 0x8000_0000));
        let u = Priv::User;
        assert!(
            !st.pmp_check(0x1000, 0x1fff, Access::Load, u),
            "no match fails below M"
        );
        assert!(st.pmp_check(0x1000, 0x1fff, Access::Load, Priv::Machine));
        // Entry 0 OFF at 0x1000, entry 1 TOR up to 0x3000 (R): its bottom is entry 0's address.
        assert!(st.csr_write(csr::PMPADDR0, 0x1000 >> 2).is_ok());
        assert!(st.csr_write(csr::PMPADDR0 + 1, 0x3000 >> 2).is_ok());
        assert!(st.csr_write(csr::PMPCFG0, 0x09 << 8).is_ok());
        assert!(st.pmp_check(0x1000, 0x1fff, Access::Load, u));
        assert!(!st.pmp_check(0x1000, 0x1fff, Access::Store, u), "R only");
        assert!(
            !st.pmp_check(0x0, 0xfff, Access::Load, u),
            "below the TOR bottom"
        );
        assert!(
            !st.pmp_check(0x2800, 0x37ff, Access::Load, u),
            "straddles the top"
        );
        assert!(st.translation_depends_on_priv());
        // Moving the OFF entry's address moves the TOR bottom.
        assert!(st.csr_write(csr::PMPADDR0, 0).is_ok());
        assert!(st.pmp_check(0x0, 0xfff, Access::Load, u));
        // Entry 0 NAPOT 0x8000_0000 + 64 KiB, no permissions: the first match decides for S/U,
        // M ignores it (not locked); it must cover the whole range.
        assert!(
            st.csr_write(csr::PMPADDR0, (0x8000_0000 >> 2) | 0x1fff)
                .is_ok()
        );
        assert!(st.csr_write(csr::PMPCFG0, (0x09 << 8) | 0x18).is_ok());
        let s = Priv::Supervisor;
        assert!(!st.pmp_check(0x8000_0000, 0x8000_0fff, Access::Load, s));
        assert!(st.pmp_check(0x8000_0000, 0x8000_0fff, Access::Load, Priv::Machine));
        assert!(!st.pmp_check(0x8000_f000, 0x8001_0fff, Access::Load, Priv::Machine));
        assert!(
            !st.pmp_check(0x1000, 0x1fff, Access::Load, s),
            "entry 1's TOR now starts at entry 0's address, above its top: empty"
        );
        // All OFF again.
        assert!(st.csr_write(csr::PMPCFG0, 0).is_ok());
        assert!(!st.translation_depends_on_priv());
    }
}
