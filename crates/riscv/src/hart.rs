//! The public hart: construction, the outer run loop (interrupts, budget, fetch-TLB refills,
//! decode-cache upkeep) and debugger/loader accessors (Privileged ISA 20211203 §3.1.9 for when
//! interrupts are taken, §3.3.3 wfi).

use std::rc::Rc;

use crate::Bus;
use crate::code::{CodeCache, CodeEvent, CodePages, PAGE_MASK};
use crate::exec::{self, BlockExit};
use crate::insn::Xlen;
use crate::mem::{Access, FetchEntry, tlb_index};
use crate::state::{Exception, HartConfig, HartIrqs, Priv, RunExit, State, TraceFlags, Trap};

/// The last this-many instructions of a budget run in the `CAREFUL` loop, which checks the
/// budget after every instruction. Before that, the fast loop checks only at taken branches and
/// page crossings, so it may run up to one page (2048 slots) past its stop point; it is told to
/// stop this far before the end of the budget, which is more than that, so every budget is
/// honoured exactly.
const CAREFUL_BUDGET: u64 = 4096;

/// One RISC-V hart.
pub struct Hart {
    pub(crate) st: State,
    code: CodeCache,
}

impl std::fmt::Debug for Hart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hart")
            .field("hart_id", &self.st.hart_id)
            .field("pc", &format_args!("{:#x}", self.st.pc))
            .field("priv", &self.st.prv)
            .finish_non_exhaustive()
    }
}

impl Hart {
    /// A hart in its reset state.
    pub fn new(config: HartConfig) -> Hart {
        Hart {
            st: State::new(config),
            code: CodeCache::default(),
        }
    }

    /// Reset the architectural state (registers, CSRs, pc = reset pc). Decoded code is kept: it
    /// stays valid because every write to it is tracked.
    pub fn reset(&mut self) {
        self.st.reset();
    }

    /// The interrupt lines devices drive.
    pub fn irqs(&self) -> Rc<HartIrqs> {
        self.st.irqs.clone()
    }

    /// The machine-wide code-page record (give it to DMA-capable devices and other harts).
    pub fn code_pages(&self) -> Rc<CodePages> {
        self.st.code_pages.clone()
    }

    /// Whether `run` honours its budget exactly (the default). Exactness runs the last 4096
    /// instructions of every budget in the per-instruction-checking loop, about 0.3% of the
    /// speed with 100 000-instruction slices. With `false`, budgets of 4096 or more may be
    /// overrun by up to a page of straight-line code (2048 instructions), which is fine when
    /// time is not derived from instruction counts; `-icount` needs `true`.
    pub fn set_exact_budget(&mut self, exact: bool) {
        self.st.exact_budget = exact;
    }

    /// Whether spin-wait hints make `run` return [`RunExit::Yield`] right after they retire
    /// (the default): `pause` (Zihintpause; Linux's `cpu_relax()`), an `amoswap` that leaves
    /// memory unchanged (a poll such as OpenSBI's wait for a remote fence), and a `wfi` that
    /// does not wait because an interrupt is already pending. Harts share one host thread in
    /// turns, so a hart spinning on a lock or flag that a hart which is not running will
    /// release would otherwise burn the rest of its slice. The instruction stream and the
    /// instruction counts are the same either way; only where slices end changes.
    pub fn set_yield_on_spin(&mut self, on: bool) {
        self.st.yield_on_spin = on;
    }

    /// A flag other threads set when the main loop has work that cannot wait for the end of
    /// the slice (a device's I/O thread posted an interrupt). While it is set, `run` returns
    /// [`RunExit::BudgetExhausted`] at the next block boundary, and a read of `mip`/`sip` ends
    /// its block first, so a guest polling for that interrupt sees it within a few
    /// instructions. Nothing on the hot path looks at it. The main loop clears it.
    pub fn set_kick(&mut self, flag: std::sync::Arc<std::sync::atomic::AtomicBool>) {
        self.st.kick = Some(flag);
    }

    /// Select trace output (`-d in_asm,int,exec`).
    pub fn set_trace(&mut self, flags: TraceFlags) {
        self.st.trace = flags;
    }

    /// mhartid.
    pub fn hart_id(&self) -> u64 {
        self.st.hart_id
    }

    /// Base width.
    pub fn xlen(&self) -> Xlen {
        self.st.xlen
    }

    /// Program counter.
    pub fn pc(&self) -> u64 {
        self.st.pc
    }

    /// Set the program counter (loaders, debuggers).
    pub fn set_pc(&mut self, pc: u64) {
        self.st.pc = self.st.wrap(pc);
        self.st.waiting = false;
    }

    /// Integer register `reg` (0..=31; others read 0).
    pub fn x(&self, reg: usize) -> u64 {
        let v = self.st.x.get(reg).copied().unwrap_or(0);
        self.st.wrap(v)
    }

    /// Set integer register `reg` (writes to x0 and out-of-range registers are ignored).
    pub fn set_x(&mut self, reg: usize, value: u64) {
        if reg < 32 {
            let v = self.st.sx(value);
            self.st.set_x(reg as u8, v);
        }
    }

    /// FP register `reg` as raw bits.
    pub fn f(&self, reg: usize) -> u64 {
        self.st.f.get(reg).copied().unwrap_or(0)
    }

    /// Set FP register `reg` as raw bits.
    pub fn set_f(&mut self, reg: usize, value: u64) {
        if let Some(r) = self.st.f.get_mut(reg) {
            *r = value;
        }
    }

    /// Instructions retired since reset.
    pub fn instret(&self) -> u64 {
        self.st.instret
    }

    /// Current privilege level.
    pub fn privilege(&self) -> Priv {
        self.st.prv
    }

    /// Set the privilege level (debuggers; loaders that start in S-mode).
    pub fn set_privilege(&mut self, p: Priv) {
        self.st.prv = p;
        self.st.tlb.flush_all();
    }

    /// Sstc: the `time` (`mtime`) value at which this hart's own timer raises STIP, if it is
    /// armed (menvcfg.STCE set, `stimecmp` not yet reached, not `u64::MAX`). A machine that
    /// sleeps or cuts `-icount` slices at timer deadlines must count this one too: the hart
    /// notices it at the start of its next `run`.
    pub fn timer_wakeup(&self) -> Option<u64> {
        self.st.sstc_wakeup()
    }

    /// Whether the hart sits in `wfi`.
    pub fn is_waiting(&self) -> bool {
        self.st.waiting
    }

    /// Read a CSR as a debugger would (no privilege check; `time` reads as `mtime`).
    pub fn read_csr(&self, csr: u16, mtime: u64) -> Option<u64> {
        self.st.csr_read(csr, mtime).ok()
    }

    /// Write a CSR as a debugger would (no privilege check). Returns false if it does not exist.
    pub fn write_csr(&mut self, csr: u16, value: u64) -> bool {
        let ok = self.st.csr_write(csr, value).is_ok();
        self.st.tlb.flush_all();
        ok
    }

    /// Run up to `budget` instructions (trap and interrupt entries count as one each). Returns
    /// early on `wfi` when no enabled interrupt is pending, after spin-wait hints (see
    /// [`Hart::set_yield_on_spin`]), when kicked ([`Hart::set_kick`]) and when the guest arms
    /// the hart's own timer (Sstc `stimecmp`, so the caller can end the next run at its
    /// deadline). Interrupts are taken between blocks
    /// (after taken branches, page changes, CSR writes, MMIO writes, xRET). The budget is exact
    /// (never overrun, so `-icount` slices end precisely at timer deadlines) unless
    /// [`Hart::set_exact_budget`] turned that off.
    pub fn run<B: Bus>(&mut self, bus: &mut B, budget: u64) -> RunExit {
        match self.st.xlen {
            Xlen::Rv32 => self.run_impl::<B, true>(bus, budget),
            Xlen::Rv64 => self.run_impl::<B, false>(bus, budget),
        }
    }

    fn run_impl<B: Bus, const RV32: bool>(&mut self, bus: &mut B, budget: u64) -> RunExit {
        self.sync_code();
        // Other harts and devices ran since our last slice: a reservation may be stale.
        self.st.reservation = None;
        // The caller sized this run knowing the hart's timer.
        self.st.timer_armed = false;
        // Time moved on since the last slice: Sstc's STIP may be due (and wake a `wfi`).
        if self.st.sstc_active() {
            let t = self.st.bus_mtime(bus);
            self.st.sstc_update(t);
        }
        let start = self.st.instret;
        let mut events = 0u64;
        loop {
            let used = self.st.instret.wrapping_sub(start).saturating_add(events);
            if used >= budget || self.st.leave_run() {
                return RunExit::BudgetExhausted;
            }
            if self.st.waiting {
                if self.st.mip() & self.st.mie == 0 {
                    return RunExit::Wfi;
                }
                self.st.waiting = false;
            }
            if let Some(irq) = self.st.pending_interrupt() {
                self.st.enter_trap(true, irq as u64, 0);
                events += 1;
                continue;
            }
            let left = budget - used;
            let pc = self.st.pc;
            let careful = left < CAREFUL_BUDGET || self.st.trace.exec;
            self.st.stop_at = if careful || !self.st.exact_budget {
                left
            } else {
                left - CAREFUL_BUDGET
            };
            let exit = match self.fetch_page(bus, pc) {
                Ok(Some(idx)) => {
                    if careful {
                        exec::run_block::<B, RV32, true>(&mut self.st, &self.code, bus, idx)
                    } else {
                        exec::run_block::<B, RV32, false>(&mut self.st, &self.code, bus, idx)
                    }
                }
                Ok(None) => exec::step_uncached::<B, RV32>(&mut self.st, &self.code, bus),
                Err(t) => BlockExit::Trap(t),
            };
            // A data bus access inside the block was deferred (`State::bus_read`): not a trap.
            // Now that `instret` is exact, the instruction runs uncached and makes the access.
            let exit = match exit {
                BlockExit::Trap(_) if self.st.deferred => {
                    self.st.deferred = false;
                    BlockExit::Slow
                }
                e => e,
            };
            match exit {
                BlockExit::Continue => {}
                BlockExit::Trap(t) => {
                    self.st.take_trap(t);
                    events += 1;
                }
                BlockExit::Illegal => {
                    let pc = self.st.pc;
                    let bits = exec::insn_bits(&mut self.st, bus, pc);
                    self.st.take_trap(Trap::new(Exception::IllegalInsn, bits));
                    events += 1;
                }
                BlockExit::Wfi => {
                    if self.st.mip() & self.st.mie == 0 {
                        self.st.waiting = true;
                    } else if self.st.yield_on_spin {
                        return RunExit::Yield;
                    }
                }
                BlockExit::Yield => return RunExit::Yield,
                BlockExit::FenceI => self.sync_code(),
                BlockExit::Slow => {
                    match exec::step_uncached::<B, RV32>(&mut self.st, &self.code, bus) {
                        BlockExit::Trap(t) => {
                            self.st.take_trap(t);
                            events += 1;
                        }
                        BlockExit::Illegal => {
                            let pc = self.st.pc;
                            let bits = exec::insn_bits(&mut self.st, bus, pc);
                            self.st.take_trap(Trap::new(Exception::IllegalInsn, bits));
                            events += 1;
                        }
                        BlockExit::Wfi => {
                            if self.st.mip() & self.st.mie == 0 {
                                self.st.waiting = true;
                            } else if self.st.yield_on_spin {
                                return RunExit::Yield;
                            }
                        }
                        BlockExit::Yield => return RunExit::Yield,
                        BlockExit::FenceI => self.sync_code(),
                        BlockExit::Continue | BlockExit::Slow => {}
                    }
                }
            }
        }
    }

    /// The decoded page for `pc`: fetch-TLB hit, or translate and find/create it. `Ok(None)`
    /// means the code is not in RAM/ROM and runs uncached.
    fn fetch_page<B: Bus>(&mut self, bus: &mut B, pc: u64) -> Result<Option<u32>, Trap> {
        if pc & 1 != 0 {
            return Err(Trap::new(Exception::InsnMisaligned, pc));
        }
        let ti = tlb_index(pc);
        if let Some(e) = self.st.tlb.fetch.get(ti)
            && e.tag == pc & !PAGE_MASK
        {
            return Ok(Some(e.page));
        }
        let pa = self.st.translate(bus, pc, Access::Fetch)?;
        if !self.st.page_cacheable(pa, Access::Fetch) {
            return Ok(None);
        }
        let ppn = pa >> 12;
        let idx = match self.code.lookup(ppn) {
            Some(i) => i,
            None => {
                let Some(hp) = bus.host_page(pa & !PAGE_MASK) else {
                    return Ok(None);
                };
                if self.code.is_full() {
                    self.flush_code();
                }
                let i = self.code.insert(ppn, hp.ptr);
                self.st.code_pages.add_page(self.st.code_slot, ppn);
                // Our store TLB may map this page without the code flag.
                self.st.tlb.flush_store();
                i
            }
        };
        if let Some(e) = self.st.tlb.fetch.get_mut(ti) {
            *e = FetchEntry {
                tag: pc & !PAGE_MASK,
                page: idx,
            };
        }
        Ok(Some(idx))
    }

    /// Drop all decoded code.
    pub(crate) fn flush_code(&mut self) {
        self.code.clear();
        self.st.code_pages.remove_hart_pages(self.st.code_slot);
        self.st.tlb.flush_fetch();
        self.st.tlb.flush_store();
    }

    /// Apply writes and new code pages reported by other harts and devices.
    fn sync_code(&mut self) {
        let slot = self.st.code_slot;
        if !self.st.code_pages.has_events(slot) {
            return;
        }
        for e in self.st.code_pages.take_events(slot) {
            match e {
                CodeEvent::Written { paddr, len } => self.code.invalidate_range(paddr, len),
                CodeEvent::Added { .. } => self.st.tlb.flush_store(),
                CodeEvent::Overflow => {
                    for p in &self.code.pages {
                        p.clear();
                    }
                    self.st.tlb.flush_store();
                }
            }
        }
    }
}

/// Debugger access (GDB stub): memory through the current translation without side effects.
impl Hart {
    /// Translate `vaddr` as a debugger would: with the hart's current data privilege and satp,
    /// without permission checks, PMP or A/D updates. `None` if the page is not mapped.
    pub fn debug_translate<B: Bus>(&mut self, bus: &mut B, vaddr: u64) -> Option<u64> {
        let st = &self.st;
        let prv = if st.prv == Priv::Machine && st.mstatus & crate::state::ms::MPRV != 0 {
            Priv::from_bits(st.mstatus >> crate::state::ms::MPP_SHIFT)
        } else {
            st.prv
        };
        let vaddr = st.wrap(vaddr);
        if prv == Priv::Machine || st.satp_mode() == 0 {
            return Some(vaddr);
        }
        let (levels, vpn_bits, pte_size): (u32, u32, u64) = match st.satp_mode() {
            1 => (2, 10, 4),
            8 => (3, 9, 8),
            9 => (4, 9, 8),
            _ => return None,
        };
        let ppn_mask = if st.rv32() {
            (1u64 << 22) - 1
        } else {
            (1u64 << 44) - 1
        };
        let mut table = (st.satp & ppn_mask) << 12;
        for level in (0..levels).rev() {
            let vpn = (vaddr >> (12 + level * vpn_bits)) & ((1u64 << vpn_bits) - 1);
            let pa = table.wrapping_add(vpn * pte_size);
            let hp = bus.host_page(pa & !PAGE_MASK)?;
            let mut b = [0u8; 8];
            for (i, v) in b.iter_mut().take(pte_size as usize).enumerate() {
                // SAFETY: `host_page` returned a whole 4 KiB page and the PTE is aligned within it.
                *v = unsafe { hp.ptr.add(((pa & PAGE_MASK) as usize) + i).read() };
            }
            let pte = u64::from_le_bytes(b);
            if pte & 1 == 0 {
                return None;
            }
            let ppn = (pte >> 10) & ppn_mask;
            if pte & 0xa != 0 {
                let low = (1u64 << (level * vpn_bits)) - 1;
                let vpn_low = (vaddr >> 12) & low;
                return Some((((ppn & !low) | vpn_low) << 12) | (vaddr & PAGE_MASK));
            }
            table = ppn << 12;
        }
        None
    }

    /// Read guest memory at virtual `vaddr` through the current translation (RAM and ROM only:
    /// device registers are not read, so a debugger cannot disturb them). Returns the number
    /// of bytes read before the first unmapped or MMIO byte.
    pub fn debug_read<B: Bus>(&mut self, bus: &mut B, vaddr: u64, buf: &mut [u8]) -> usize {
        for (i, b) in buf.iter_mut().enumerate() {
            let va = vaddr.wrapping_add(i as u64);
            let Some(pa) = self.debug_translate(bus, va) else {
                return i;
            };
            let Some(hp) = bus.host_page(pa & !PAGE_MASK) else {
                return i;
            };
            // SAFETY: `host_page` returned a whole 4 KiB page; the offset is inside it.
            *b = unsafe { hp.ptr.add((pa & PAGE_MASK) as usize).read() };
        }
        buf.len()
    }

    /// Write guest memory at virtual `vaddr` through the current translation (RAM, and ROM
    /// too, as debuggers may patch it). Decoded code over the bytes is invalidated in every
    /// hart. Returns the number of bytes written.
    pub fn debug_write<B: Bus>(&mut self, bus: &mut B, vaddr: u64, data: &[u8]) -> usize {
        for (i, &b) in data.iter().enumerate() {
            let va = vaddr.wrapping_add(i as u64);
            let Some(pa) = self.debug_translate(bus, va) else {
                return i;
            };
            let Some(hp) = bus.host_page(pa & !PAGE_MASK) else {
                return i;
            };
            // SAFETY: `host_page` returned a whole 4 KiB page; the offset is inside it.
            unsafe { hp.ptr.add((pa & PAGE_MASK) as usize).write(b) };
            self.st.code_pages.note_write(pa, 1);
        }
        self.sync_code();
        data.len()
    }

    /// `fcsr` (frm in bits 7:5, fflags in 4:0), readable even while `mstatus.FS` is Off.
    pub fn debug_fcsr(&self) -> u32 {
        self.st.fcsr
    }

    /// Set `fcsr` as a debugger would (no FS check).
    pub fn set_debug_fcsr(&mut self, v: u32) {
        self.st.fcsr = v & 0xff;
    }

    /// Whether the hart implements the F extension (FPRs exist).
    pub fn has_fpu(&self) -> bool {
        self.st.ext.f
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Extensions, irq};
    use crate::{BusError, HostPage, csr};

    const RAM: u64 = 0x8000_0000;
    const ROM_MMIO: u64 = 0x1000;
    const DEV: u64 = 0x3000_0000;

    /// 64 KiB of RAM at 0x8000_0000, a word-readable "code ROM" at 0x1000 that is only
    /// reachable through `Bus::read` (no host page), and a device at 0x3000_0000 whose reads
    /// return how many reads it has seen. Device accesses and `mtime` calls are logged with
    /// the instret value the last `sync_instret` reported.
    struct TestRam {
        ram: Vec<u8>,
        rom: Vec<u32>,
        synced: u64,
        dev_reads: u64,
        log: Vec<(char, u64)>,
        /// What `mtime` returns.
        time: u64,
    }

    impl TestRam {
        fn new(code: &[u32]) -> TestRam {
            let mut t = TestRam {
                ram: vec![0; 64 << 10],
                rom: Vec::new(),
                synced: u64::MAX,
                dev_reads: 0,
                log: Vec::new(),
                time: 0,
            };
            t.put(RAM, code);
            t
        }
        fn put(&mut self, addr: u64, words: &[u32]) {
            for (k, w) in words.iter().enumerate() {
                let off = (addr - RAM) as usize + 4 * k;
                if let Some(d) = self.ram.get_mut(off..off + 4) {
                    d.copy_from_slice(&w.to_le_bytes());
                }
            }
        }
        fn put16(&mut self, addr: u64, h: u16) {
            let off = (addr - RAM) as usize;
            if let Some(d) = self.ram.get_mut(off..off + 2) {
                d.copy_from_slice(&h.to_le_bytes());
            }
        }
    }

    impl Bus for TestRam {
        fn host_page(&mut self, paddr: u64) -> Option<HostPage> {
            let off = paddr.checked_sub(RAM)? & !0xfff;
            let ptr = self.ram.get_mut(off as usize..)?.as_mut_ptr();
            Some(HostPage {
                ptr,
                writable: true,
            })
        }
        fn read(&mut self, paddr: u64, size: u8) -> Result<u64, BusError> {
            if (DEV..DEV + 0x100).contains(&paddr) {
                self.dev_reads += 1;
                self.log.push(('r', self.synced));
                return Ok(self.dev_reads);
            }
            let off = paddr.checked_sub(ROM_MMIO).ok_or(BusError::Unmapped)?;
            let w = self
                .rom
                .get((off / 4) as usize)
                .copied()
                .ok_or(BusError::Unmapped)?;
            let v = (w as u64) >> ((off & 3) * 8);
            Ok(v & if size >= 8 {
                u64::MAX
            } else {
                (1u64 << (size * 8)) - 1
            })
        }
        fn write(&mut self, paddr: u64, _size: u8, _value: u64) -> Result<(), BusError> {
            if (DEV..DEV + 0x100).contains(&paddr) {
                self.log.push(('w', self.synced));
                return Ok(());
            }
            Err(BusError::Unmapped)
        }
        fn mtime(&mut self) -> u64 {
            self.log.push(('t', self.synced));
            self.time
        }
        fn sync_instret(&mut self, instret: u64) {
            self.synced = instret;
        }
    }

    fn hart() -> Hart {
        Hart::new(HartConfig::rv64(0, RAM))
    }

    #[test]
    fn test_store_into_decoded_code_is_seen_without_fence_i() {
        // li s0,2; auipc t0,0; L: li a0,1; addi s0,s0,-1; beqz s0,done; lw t1,40(t0);
        // sw t1,4(t0) (patches L with `li a0,7`); j L; done: j done; nop; nop; .word li a0,7
        let mut bus = TestRam::new(&[
            0x00200413, 0x00000297, 0x00100513, 0xfff40413, 0x00040863, 0x0282a303, 0x0062a223,
            0xfedff06f, 0x0000006f, 0x00000013, 0x00000013, 0x00700513,
        ]);
        let mut h = hart();
        h.run(&mut bus, 100);
        assert_eq!(h.x(10), 7);
        assert_eq!(h.pc(), RAM + 0x20);
    }

    #[test]
    fn test_dma_write_reported_through_code_pages_invalidates_decoded_code() {
        let mut bus = TestRam::new(&[0x00100513, 0x0000006f]); // li a0,1; j .
        let mut h = hart();
        h.run(&mut bus, 10);
        assert_eq!(h.x(10), 1);
        bus.put(RAM, &[0x00900513]); // li a0,9, written "by a device"
        h.code_pages().note_write(RAM, 4);
        h.set_pc(RAM);
        h.run(&mut bus, 10);
        assert_eq!(h.x(10), 9);
    }

    #[test]
    fn test_misaligned_loads_and_stores_are_emulated() {
        let mut bus = TestRam::new(&[
            0x000802b7, 0x0012829b, 0x00c29293, 0x00128293, 0x00449337, 0x8cd3031b, 0x00e31313,
            0x45530313, 0x00c31313, 0x66730313, 0x00c31313, 0x78830313, 0x0062b023, 0x0002b503,
            0x0022a583, 0x0032d603, 0x0000006f,
        ]);
        let mut h = hart();
        h.run(&mut bus, 100);
        assert_eq!(h.x(10), 0x1122_3344_5566_7788);
        assert_eq!(h.x(11), 0x3344_5566);
        assert_eq!(h.x(12), 0x4455);
        assert_eq!(h.read_csr(csr::MCAUSE, 0), Some(0), "no trap");
    }

    #[test]
    fn test_misaligned_amo_raises_store_misaligned() {
        let mut bus = TestRam::new(&[
            0x00000297, 0x02428293, 0x30529073, 0x000802b7, 0x0012829b, 0x00c29293, 0x00228293,
            0x00b2a52f, 0x0000006f, 0x34202573, 0x343025f3, 0x34102673, 0x0000006f,
        ]);
        let mut h = hart();
        h.run(&mut bus, 100);
        assert_eq!(h.x(10), 6);
        assert_eq!(h.x(11), 0x8000_1002);
        assert_eq!(h.x(12), RAM + 0x1c);
    }

    #[test]
    fn test_unknown_csr_and_unmapped_load_trap_with_tval() {
        let mut bus = TestRam::new(&[
            0x00000297, 0x01428293, 0x30529073, 0x7c002573, 0x0000006f, 0x34202573, 0x343025f3,
            0x34102673, 0x400002b7, 0x00000317, 0x01430313, 0x30531073, 0x0002b683, 0x0000006f,
            0x342026f3, 0x34302773, 0x0000006f,
        ]);
        let mut h = hart();
        h.run(&mut bus, 100);
        assert_eq!(h.x(10), 2, "illegal instruction");
        assert_eq!(h.x(11), 0x7c00_2573, "mtval holds the instruction bits");
        assert_eq!(h.x(12), RAM + 0xc);
        assert_eq!(h.x(13), 5, "load access fault");
        assert_eq!(h.x(14), 0x4000_0000);
    }

    #[test]
    fn test_user_counter_read_needs_mcounteren() {
        let mut bus = TestRam::new(&[
            0x00000297, 0x04428293, 0x30529073, 0xfff00293, 0x3b029073, 0x01f00293, 0x3a029073,
            0x00000297, 0x01c28293, 0x34129073, 0x000022b7, 0x8002829b, 0x3002b073, 0x30200073,
            0xc0002573, 0x06300593, 0x00000073, 0x34202673, 0x343026f3, 0x0000006f,
        ]);
        let mut h = hart();
        h.run(&mut bus, 100);
        assert_eq!(h.x(12), 2, "rdcycle in U-mode with mcounteren=0 is illegal");
        assert_eq!(h.x(13), 0xc000_2573);
        assert_eq!(h.x(11), 0, "the trap happened before `li a1, 99`");
        assert_eq!(h.privilege(), Priv::Machine);
    }

    #[test]
    fn test_jump_to_halfword_target_without_c_is_misaligned() {
        let mut bus = TestRam::new(&[
            0x00000297, 0x02028293, 0x30529073, 0x00000297, 0x01028293, 0x00228293, 0x000280e7,
            0x0000006f, 0x34202573, 0x343025f3, 0x34102673, 0x00008693, 0x0000006f,
        ]);
        let mut config = HartConfig::rv64(0, RAM);
        config.extensions = Extensions {
            c: false,
            ..Extensions::IMACU
        };
        let mut h = Hart::new(config);
        h.run(&mut bus, 100);
        assert_eq!(h.x(10), 0, "instruction address misaligned");
        assert_eq!(h.x(11), RAM + 0x1e);
        assert_eq!(h.x(12), RAM + 0x18, "reported on the jump");
        assert_eq!(h.x(13), 0, "rd not written");
    }

    #[test]
    fn test_small_budgets_are_exact() {
        let mut bus = TestRam::new(&[0x00150513; 8]);
        let mut h = hart();
        assert_eq!(h.run(&mut bus, 5), RunExit::BudgetExhausted);
        assert_eq!(h.instret(), 5);
        assert_eq!(h.x(10), 5);
        assert_eq!(h.pc(), RAM + 20);
        h.run(&mut bus, 1);
        assert_eq!(h.x(10), 6);
    }

    #[test]
    fn test_code_outside_ram_runs_uncached() {
        let mut bus = TestRam::new(&[]);
        bus.rom = vec![0x00500513, 0x0000006f]; // li a0,5; j .
        let mut h = hart();
        h.set_pc(ROM_MMIO);
        h.run(&mut bus, 10);
        assert_eq!(h.x(10), 5);
        assert_eq!(h.pc(), ROM_MMIO + 4);
    }

    #[test]
    fn test_instruction_crossing_a_page_boundary() {
        let mut bus = TestRam::new(&[]);
        // li a0,3 (0x00300513) split over 0x8000_0ffe / 0x8000_1000, then j .
        bus.put16(RAM + 0xffe, 0x0513);
        bus.put16(RAM + 0x1000, 0x0030);
        bus.put(RAM + 0x1004, &[0x0000006f]);
        bus.put16(RAM + 0x1002, 0x0001); // c.nop
        let mut h = hart();
        h.set_pc(RAM + 0xffe);
        h.run(&mut bus, 10);
        assert_eq!(h.x(10), 3);
        assert_eq!(h.pc(), RAM + 0x1004);
    }

    #[test]
    fn test_wfi_waits_until_an_enabled_interrupt_is_pending() {
        let mut bus = TestRam::new(&[0x10500073, 0x00100513, 0x0000006f]); // wfi; li a0,1; j .
        let mut h = hart();
        assert!(h.write_csr(csr::MIE, 1 << irq::MTI));
        assert_eq!(h.run(&mut bus, 100), RunExit::Wfi);
        assert_eq!(h.pc(), RAM + 4);
        assert_eq!(h.run(&mut bus, 100), RunExit::Wfi, "still nothing pending");
        assert_eq!(h.instret(), 1);
        h.irqs().set(irq::MTI, true);
        // mstatus.MIE is clear: no trap, execution resumes after the wfi.
        assert_eq!(h.run(&mut bus, 10), RunExit::BudgetExhausted);
        assert_eq!(h.x(10), 1);
        assert_eq!(h.read_csr(csr::MCAUSE, 0), Some(0));
    }

    #[test]
    fn test_sv39_supervisor_mode_with_delegated_page_fault() {
        // M-mode sets up PMP, a gigapage identity map for 0x8000_0000, a 3-level mapping of
        // VA 0x4000_0000 -> PA 0x8000_7000 (A/D clear), delegates load page faults, enters
        // S-mode with Sv39; S stores/loads through the mapping, then faults on 0x4000_1000;
        // the S handler records scause/stval and does ecall (cause 9 in M).
        let mut bus = TestRam::new(&[
            0x00000297, 0x0f028293, 0x30529073, 0xfff00293, 0x3b029073, 0x01f00293, 0x3a029073,
            0x000202b7, 0x0012829b, 0x00e29293, 0x20000337, 0x0cf3031b, 0x0062b823, 0x20001337,
            0x4013031b, 0x0062b423, 0x000802b7, 0x0052829b, 0x00c29293, 0x20002337, 0x8013031b,
            0x0062b023, 0x000402b7, 0x0032829b, 0x00d29293, 0x20002337, 0xc073031b, 0x0062b023,
            0x000022b7, 0x30229073, 0x00000297, 0x06828293, 0x10529073, 0xfff0029b, 0x02c29293,
            0x00128293, 0x01329293, 0x00428293, 0x18029073, 0x00000297, 0x02828293, 0x34129073,
            0x000022b7, 0x8002829b, 0x3002b073, 0x000012b7, 0x8002829b, 0x3002a073, 0x30200073,
            0x400002b7, 0x02a00313, 0x0062b023, 0x0002b503, 0x400012b7, 0x0002b683, 0x0000006f,
            0x142025f3, 0x14302673, 0x00000073, 0x0000006f, 0x34202773, 0x0000006f,
        ]);
        let mut config = HartConfig::rv64(0, RAM);
        config.extensions = Extensions {
            s: true,
            ..Extensions::IMACU
        };
        let mut h = Hart::new(config);
        h.run(&mut bus, 500);
        assert_eq!(h.x(10), 42, "store and load through the 4 KiB mapping");
        assert_eq!(h.x(11), 13, "load page fault delegated to S");
        assert_eq!(h.x(12), 0x4000_1000, "stval");
        assert_eq!(h.x(14), 9, "ecall from S reaches M");
        let word = |a: u64| {
            let o = (a - RAM) as usize;
            bus.ram
                .get(o..o + 8)
                .map(|b| b.iter().rev().fold(0u64, |v, &x| v << 8 | x as u64))
        };
        assert_eq!(word(0x8000_7000), Some(42), "physical page written");
        assert_eq!(
            word(0x8000_6000).map(|p| p & 0xc0),
            Some(0xc0),
            "A and D set by the walk"
        );
    }

    fn put64(bus: &mut TestRam, addr: u64, v: u64) {
        bus.put(addr, &[v as u32, (v >> 32) as u32]);
    }

    fn s_mode_hart(config: HartConfig) -> Hart {
        let mut config = config;
        config.extensions = Extensions {
            s: true,
            ..Extensions::IMACU
        };
        let mut h = Hart::new(config);
        // PMP: everything RWX for S/U (NAPOT over the whole space).
        assert!(h.write_csr(csr::PMPADDR0, u64::MAX));
        assert!(h.write_csr(csr::PMPCFG0, 0x1f));
        h
    }

    #[test]
    fn test_sv48_four_level_walk() {
        // S-mode code at 0x8000_0000 (identity 1 GiB page at level 2) loads from
        // VA 0x4000_0008 mapped through all four levels to PA 0x8000_7000.
        let mut bus = TestRam::new(&[0x0082b503, 0x00a2b823, 0x0000006f]); // ld a0,8(t0); sd a0,16(t0); j .
        let (l3, l2, l1, l0) = (
            0x8000_4000u64,
            0x8000_5000u64,
            0x8000_6000u64,
            0x8000_3000u64,
        );
        put64(&mut bus, l3, (l2 >> 12) << 10 | 1); // VPN3 = 0
        put64(&mut bus, l2 + 8, (l1 >> 12) << 10 | 1); // VPN2 = 1 (0x4000_0000)
        put64(&mut bus, l2 + 16, (0x8000_0000u64 >> 12) << 10 | 0xcb); // VPN2 = 2: RX+A+D gigapage
        put64(&mut bus, l1, (l0 >> 12) << 10 | 1);
        put64(&mut bus, l0, (0x8000_7000u64 >> 12) << 10 | 0x07);
        put64(&mut bus, 0x8000_7008, 0x1234_5678_9abc_def0);
        let mut h = s_mode_hart(HartConfig::rv64(0, RAM));
        assert!(h.write_csr(csr::SATP, (9 << 60) | (l3 >> 12)));
        h.set_privilege(Priv::Supervisor);
        h.set_x(5, 0x4000_0000);
        h.run(&mut bus, 3);
        assert_eq!(h.read_csr(csr::SCAUSE, 0), Some(0), "no fault");
        assert_eq!(h.read_csr(csr::MCAUSE, 0), Some(0), "no fault");
        assert_eq!(h.x(10), 0x1234_5678_9abc_def0);
        let mut w = [0u8; 8];
        w.copy_from_slice(bus.ram.get(0x7010..0x7018).unwrap_or(&[0; 8]));
        assert_eq!(u64::from_le_bytes(w), 0x1234_5678_9abc_def0);
    }

    #[test]
    fn test_sv32_megapage_and_user_page_permissions() {
        // RV32 S-mode: code in a 4 MiB identity megapage, VA 0x4000_0000 -> PA 0x8000_7000 as a
        // U page: S may not touch it without SUM (load page fault), may with SUM.
        let mut bus = TestRam::new(&[0x0002a503, 0x0000006f]); // lw a0,0(t0); j .
        let (root, l0) = (0x8000_4000u64, 0x8000_5000u64);
        bus.put(root + 4 * 0x200, &[((0x8000_0000u32 >> 12) << 10) | 0xcb]);
        bus.put(root + 4 * 0x100, &[((l0 as u32 >> 12) << 10) | 1]);
        bus.put(l0, &[((0x8000_7000u32 >> 12) << 10) | 0xd7]); // V R W U A D
        bus.put(0x8000_7000, &[0xcafe_f00d]);
        let mut h = s_mode_hart(HartConfig::rv32(0, RAM));
        assert!(h.write_csr(csr::SATP, (1 << 31) | (root >> 12)));
        assert!(h.write_csr(csr::MTVEC, RAM + 4)); // the `j .`
        h.set_privilege(Priv::Supervisor);
        h.set_x(5, 0x4000_0000);
        h.run(&mut bus, 3);
        assert_eq!(
            h.read_csr(csr::MCAUSE, 0),
            Some(13),
            "S touching a U page without SUM"
        );
        assert_eq!(h.read_csr(csr::MTVAL, 0), Some(0x4000_0000));
        assert!(h.write_csr(csr::MSTATUS, 1 << 18)); // SUM
        h.set_privilege(Priv::Supervisor);
        h.set_pc(RAM);
        h.run(&mut bus, 3);
        assert_eq!(h.x(10), 0xcafe_f00d);
    }

    #[test]
    fn test_pmp_tor_region_limits_user_mode() {
        // U-mode code at 0x8000_0000 may use [0x8000_0000, 0x8000_2000) only.
        let mut bus = TestRam::new(&[0x0002a503, 0x0000006f]); // lw a0,0(t0); j .
        let mut h = hart();
        assert!(h.write_csr(csr::PMPADDR0, 0x8000_2000 >> 2));
        assert!(h.write_csr(csr::PMPCFG0, 0x0f)); // TOR, RWX
        assert!(h.write_csr(csr::MTVEC, RAM + 4));
        h.set_privilege(Priv::User);
        h.set_x(5, 0x8000_1ffc);
        h.run(&mut bus, 2);
        assert_eq!(h.read_csr(csr::MCAUSE, 0), Some(0), "inside the region");
        h.set_privilege(Priv::User);
        h.set_pc(RAM);
        h.set_x(5, 0x8000_2000);
        h.run(&mut bus, 2);
        assert_eq!(h.read_csr(csr::MCAUSE, 0), Some(5), "load access fault");
        assert_eq!(h.read_csr(csr::MTVAL, 0), Some(0x8000_2000));
        // M-mode ignores unlocked entries.
        h.set_pc(RAM);
        h.run(&mut bus, 2);
        assert_eq!(h.privilege(), Priv::Machine);
        assert_eq!(h.read_csr(csr::MCAUSE, 0), Some(5), "no new trap");
    }

    #[test]
    fn test_rv32_arithmetic_wraps_at_32_bits() {
        // lui a0,0x80000; addi a0,a0,-1 (0x7fffffff); addi a0,a0,1 -> 0x80000000 (sign-extended
        // internally, read back as 32 bits); srli a1,a0,31; j .
        let mut bus = TestRam::new(&[0x80000537, 0xfff50513, 0x00150513, 0x01f55593, 0x0000006f]);
        let mut h = Hart::new(HartConfig::rv32(0, RAM));
        h.run(&mut bus, 10);
        assert_eq!(h.x(10), 0x8000_0000);
        assert_eq!(h.x(11), 1);
    }

    #[test]
    fn test_sync_instret_is_exact_at_every_mmio_access() {
        // li t0,DEV; li a0,1; addi a0,a0,1; lw a1,0(t0); addi a0,a0,1; sw a0,4(t0);
        // lw a2,0(t0); csrr a3,time; lw a4,0(t0); amoadd.w a5,a0,(t0); addi a0,a0,1; j .
        let code = [
            0x300002b7, 0x00100513, 0x00150513, 0x0002a583, 0x00150513, 0x00a2a223, 0x0002a603,
            0xc01026f3, 0x0002a703, 0x00a2a7af, 0x00150513, 0x0000006f,
        ];
        for budget in [1_000u64, 100_000] {
            // Also run it one instruction at a time: the value must not depend on slicing.
            for step in [budget, 1] {
                let mut bus = TestRam::new(&code);
                let mut h = hart();
                while h.instret() < 20 {
                    h.run(&mut bus, step);
                }
                assert_eq!(
                    bus.log,
                    vec![
                        ('r', 3),
                        ('w', 5),
                        ('r', 6),
                        ('t', 7),
                        ('r', 8),
                        ('r', 9),
                        ('w', 9)
                    ],
                    "budget {budget}, step {step}"
                );
                // Each device access happened exactly once, in program order.
                assert_eq!((h.x(11), h.x(12), h.x(14), h.x(15)), (1, 2, 3, 4));
                assert_eq!(h.x(10), 4);
            }
        }
    }

    /// Straight-line code over three pages (4-byte or 2-byte instructions), then a jump back.
    fn straight_line_bus(compressed: bool) -> TestRam {
        let mut bus = TestRam::new(&[]);
        for off in (0..0x3000u64).step_by(4) {
            if compressed {
                bus.put16(RAM + off, 0x0505); // c.addi a0, 1
                bus.put16(RAM + off + 2, 0x0505);
            } else {
                bus.put(RAM + off, &[0x00150513]); // addi a0, a0, 1
            }
        }
        bus.put(RAM + 0x3000, &[0xffffd297, 0x00028067]); // auipc t0, -3; jr t0
        bus
    }

    #[test]
    fn test_every_budget_is_exact() {
        for compressed in [false, true] {
            for budget in [
                1u64, 2, 5, 1000, 2047, 2048, 4095, 4096, 4097, 5000, 6143, 6144, 6145, 8191,
                10_000, 65_537, 1_000_003,
            ] {
                let mut bus = straight_line_bus(compressed);
                let mut h = hart();
                assert_eq!(h.run(&mut bus, budget), RunExit::BudgetExhausted);
                assert_eq!(
                    h.instret(),
                    budget,
                    "budget {budget}, compressed {compressed}"
                );
                // Slices add up exactly too.
                h.run(&mut bus, budget);
                assert_eq!(h.instret(), 2 * budget);
                // Without exactness the overrun is bounded by one page of slots.
                let mut loose = hart();
                loose.set_exact_budget(false);
                loose.run(&mut straight_line_bus(compressed), budget);
                let n = loose.instret();
                assert!(n >= budget && n <= budget + 2048, "{n} for {budget}");
            }
        }
    }

    #[test]
    fn test_rv32_compressed_fp_loads_and_stores() {
        // a0 = RAM + 0x1000, sp = RAM + 0x1100: c.flw fa0,0(a0); c.fsw fa0,4(a0);
        // c.flwsp fs0,8(sp); c.fswsp fs0,12(sp); c.fld fa1,16(a0); c.fsd fa1,24(a0); c.j .
        let mut bus = TestRam::new(&[0xe1486108, 0xe6226422, 0xad0c290c, 0x0000a001]);
        bus.put(RAM + 0x1000, &[0x3f80_0000]);
        bus.put(RAM + 0x1108, &[0xc000_0000]);
        bus.put(RAM + 0x1010, &[0x89ab_cdef, 0x0123_4567]);
        let mut config = HartConfig::rv32(0, RAM);
        config.extensions = Extensions {
            f: true,
            d: true,
            ..Extensions::IMACU
        };
        let mut h = Hart::new(config);
        h.set_x(10, RAM + 0x1000);
        h.set_x(2, RAM + 0x1100);
        assert!(h.write_csr(csr::MSTATUS, 1 << 13)); // FS = Initial
        h.run(&mut bus, 6);
        assert_eq!(h.read_csr(csr::MCAUSE, 0), Some(0), "no trap");
        assert_eq!(h.f(10), 0xffff_ffff_3f80_0000, "c.flw boxes");
        assert_eq!(h.f(8), 0xffff_ffff_c000_0000, "c.flwsp boxes");
        assert_eq!(h.f(11), 0x0123_4567_89ab_cdef);
        let word = |bus: &TestRam, a: u64| {
            let o = (a - RAM) as usize;
            u32::from_le_bytes([bus.ram[o], bus.ram[o + 1], bus.ram[o + 2], bus.ram[o + 3]])
        };
        assert_eq!(word(&bus, RAM + 0x1004), 0x3f80_0000);
        assert_eq!(word(&bus, RAM + 0x110c), 0xc000_0000);
        assert_eq!(word(&bus, RAM + 0x1018), 0x89ab_cdef);
        assert_eq!(word(&bus, RAM + 0x101c), 0x0123_4567);
        assert_eq!(h.read_csr(csr::MSTATUS, 0).map(|v| v >> 31), Some(1), "SD");
    }

    /// An RV64 hart with S, U and Sstc, PMP open for S.
    fn sstc_hart() -> Hart {
        let mut config = HartConfig::rv64(0, RAM);
        config.extensions = Extensions {
            s: true,
            sstc: true,
            ..Extensions::IMACU
        };
        let mut h = Hart::new(config);
        assert!(h.write_csr(csr::PMPADDR0, u64::MAX));
        assert!(h.write_csr(csr::PMPCFG0, 0x1f));
        h
    }

    const STIP: u64 = 1 << irq::STI;

    #[test]
    fn test_sstc_stip_follows_time_and_wakes_wfi_at_the_deadline() {
        let mut bus = TestRam::new(&[0x10500073, 0x00100513, 0x0000006f]); // wfi; li a0,1; j .
        let mut h = sstc_hart();
        assert!(h.write_csr(csr::MENVCFG, 1 << 63));
        assert!(h.write_csr(csr::STIMECMP, 1000));
        assert!(h.write_csr(csr::MIE, STIP));
        assert_eq!(h.run(&mut bus, 100), RunExit::Wfi);
        assert_eq!(
            h.timer_wakeup(),
            Some(1000),
            "the deadline a machine must wake it at"
        );
        bus.time = 999;
        assert_eq!(h.run(&mut bus, 100), RunExit::Wfi, "one tick early");
        assert_eq!(h.read_csr(csr::MIP, 0), Some(0));
        bus.time = 1000;
        assert_eq!(h.run(&mut bus, 10), RunExit::BudgetExhausted);
        assert_eq!(h.x(10), 1, "woke up (MIE is clear: no trap)");
        assert_eq!(h.read_csr(csr::MIP, 0), Some(STIP));
        assert_eq!(h.timer_wakeup(), None, "already pending");
        // Without STCE the comparator does nothing.
        let mut off = sstc_hart();
        assert!(off.write_csr(csr::STIMECMP, 0));
        off.run(&mut TestRam::new(&[0x0000006f]), 10);
        assert_eq!(off.read_csr(csr::MIP, 0), Some(0));
        assert_eq!(off.timer_wakeup(), None);
    }

    #[test]
    fn test_sstc_stimecmp_write_takes_effect_on_the_next_instruction() {
        // csrw stimecmp,t0; csrr a0,mip; csrw stimecmp,t1; csrr a1,mip; j .
        let mut bus = TestRam::new(&[0x14d29073, 0x34402573, 0x14d31073, 0x344025f3, 0x0000006f]);
        bus.time = 500;
        let mut h = sstc_hart();
        assert!(h.write_csr(csr::MENVCFG, 1 << 63));
        assert!(h.write_csr(csr::STIMECMP, u64::MAX));
        h.set_x(5, 400);
        h.set_x(6, 600);
        h.run(&mut bus, 5);
        assert_eq!(h.x(10), STIP, "time 500 >= 400");
        assert_eq!(h.x(11), 0, "time 500 < 600");
        assert_eq!(h.timer_wakeup(), Some(600));
        // Each comparison read time at the exact instruction (after the csrw's predecessors).
        assert!(bus.log.contains(&('t', 0)) && bus.log.contains(&('t', 2)));
    }

    #[test]
    fn test_sstc_delegated_timer_interrupt_reaches_s_mode() {
        // S-mode: j . ; stvec -> RAM + 0x100: csrr a0,scause; j .
        let mut bus = TestRam::new(&[0x0000006f]);
        bus.put(RAM + 0x100, &[0x14202573, 0x0000006f]);
        bus.time = 50;
        let mut h = sstc_hart();
        assert!(h.write_csr(csr::MENVCFG, 1 << 63));
        assert!(h.write_csr(csr::MIDELEG, STIP));
        assert!(h.write_csr(csr::MIE, STIP));
        assert!(h.write_csr(csr::STVEC, RAM + 0x100));
        assert!(h.write_csr(csr::MSTATUS, 1 << 1)); // SIE
        assert!(h.write_csr(csr::STIMECMP, 100));
        h.set_privilege(Priv::Supervisor);
        h.run(&mut bus, 10);
        assert_eq!(h.pc(), RAM, "not due yet");
        bus.time = 100;
        h.run(&mut bus, 10);
        assert_eq!(h.x(10), (1 << 63) | 5, "supervisor timer interrupt");
        assert_eq!(h.privilege(), Priv::Supervisor);
    }

    #[test]
    fn test_pause_yields_the_rest_of_the_slice() {
        // addi a0,a0,1; pause; j 0
        let code = [0x00150513, 0x0100000f, 0xff9ff06f];
        let mut bus = TestRam::new(&code);
        let mut h = hart();
        assert_eq!(h.run(&mut bus, 1000), RunExit::Yield);
        assert_eq!(h.instret(), 2, "pause retired, then the hart yielded");
        assert_eq!(h.pc(), RAM + 8);
        assert_eq!(h.run(&mut bus, 1000), RunExit::Yield);
        assert_eq!((h.x(10), h.instret()), (2, 5));
        let mut spin = hart();
        spin.set_yield_on_spin(false);
        assert_eq!(
            spin.run(&mut TestRam::new(&code), 1000),
            RunExit::BudgetExhausted
        );
        assert_eq!(spin.instret(), 1000);
    }

    #[test]
    fn test_a_kick_ends_a_mip_polling_loop_at_once() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        // loop: csrr t0, mip; beqz t0, loop
        let code = [0x344022f3, 0xfe028ee3];
        let kick = Arc::new(AtomicBool::new(false));
        let mut h = hart();
        h.set_kick(Arc::clone(&kick));
        let mut bus = TestRam::new(&code);
        assert_eq!(h.run(&mut bus, 10_000), RunExit::BudgetExhausted);
        assert_eq!(h.instret(), 10_000, "no kick: the whole budget");
        kick.store(true, Ordering::Relaxed);
        assert_eq!(h.run(&mut bus, 10_000), RunExit::BudgetExhausted);
        assert_eq!(
            h.instret(),
            10_000,
            "kicked before the first block: nothing runs"
        );
        // Kicked by another thread while inside the block: it ends at the next mip read,
        // long before a budget the loop would otherwise chain through in one block.
        kick.store(false, Ordering::Relaxed);
        let mut h2 = hart();
        h2.set_kick(Arc::clone(&kick));
        let k = Arc::clone(&kick);
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            k.store(true, Ordering::Relaxed);
        });
        let budget = 4_000_000_000u64; // about 10 s of spinning without the kick
        assert_eq!(
            h2.run(&mut TestRam::new(&code), budget),
            RunExit::BudgetExhausted
        );
        t.join().expect("kicker");
        assert!(h2.instret() < budget / 2, "the kick ended the run");
    }

    #[test]
    fn test_only_a_polling_amoswap_yields() {
        // amoswap.d a1,zero,(t0); j .
        let mut bus = TestRam::new(&[0x0802b5af, 0x0000006f]);
        bus.put(RAM + 0x800, &[0, 0]);
        let mut h = hart();
        h.set_x(5, RAM + 0x800);
        assert_eq!(h.run(&mut bus, 100), RunExit::Yield, "0 swapped for 0");
        assert_eq!((h.instret(), h.x(11)), (1, 0));
        bus.put(RAM + 0x800, &[7, 0]);
        let mut h = hart();
        h.set_x(5, RAM + 0x800);
        assert_eq!(
            h.run(&mut bus, 100),
            RunExit::BudgetExhausted,
            "7 swapped for 0"
        );
        assert_eq!(h.x(11), 7);
        // amoswap.w compares 32 bits: 0xffff_ffff in memory, -1 in a2.
        let mut bus = TestRam::new(&[0x08c2a5af, 0x0000006f]);
        bus.put(RAM + 0x800, &[0xffff_ffff]);
        let mut h = hart();
        h.set_x(5, RAM + 0x800);
        h.set_x(12, u64::MAX);
        assert_eq!(h.run(&mut bus, 100), RunExit::Yield);
        assert_eq!(h.x(11), u64::MAX, "sign-extended old value");
    }

    #[test]
    fn test_wfi_with_an_interrupt_pending_yields_instead_of_spinning() {
        let mut bus = TestRam::new(&[0x10500073, 0x00100513, 0x0000006f]); // wfi; li a0,1; j .
        let mut h = hart();
        assert!(h.write_csr(csr::MIE, 1 << irq::MSI));
        h.irqs().set(irq::MSI, true);
        assert_eq!(h.run(&mut bus, 100), RunExit::Yield);
        assert_eq!((h.instret(), h.pc()), (1, RAM + 4));
        assert!(!h.is_waiting());
        assert_eq!(h.run(&mut bus, 10), RunExit::BudgetExhausted);
        assert_eq!(h.x(10), 1);
    }
}
