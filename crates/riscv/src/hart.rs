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

/// Below this remaining budget the loop checks the budget after every instruction, so small
/// budgets (single-stepping, exact icount slices) are honoured exactly.
const CAREFUL_BUDGET: u64 = 4096;

/// One RISC-V hart.
pub struct Hart {
    st: State,
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
        Hart { st: State::new(config), code: CodeCache::default() }
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

    /// Run up to `budget` instructions. Returns early on `wfi` when no enabled interrupt is
    /// pending. Interrupts are taken between blocks (after taken branches, page changes, CSR
    /// writes, MMIO writes, xRET). Budgets above a few thousand may overrun by up to one page
    /// of straight-line code; smaller ones are exact.
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
        let start = self.st.instret;
        let mut events = 0u64;
        loop {
            let used = self.st.instret.wrapping_sub(start).saturating_add(events);
            if used >= budget {
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
            self.st.stop_at = left;
            let pc = self.st.pc;
            let careful = left < CAREFUL_BUDGET || self.st.trace.exec;
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
                    }
                }
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
                            }
                        }
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
        let pa = self.st.translate(pc, Access::Fetch)?;
        if !self.st.page_cacheable(pa, Access::Fetch) {
            return Ok(None);
        }
        let ppn = pa >> 12;
        let idx = match self.code.lookup(ppn) {
            Some(i) => i,
            None => {
                let Some(hp) = bus.host_page(pa & !PAGE_MASK) else { return Ok(None) };
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
            *e = FetchEntry { tag: pc & !PAGE_MASK, page: idx };
        }
        Ok(Some(idx))
    }

    /// Drop all decoded code.
    fn flush_code(&mut self) {
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
