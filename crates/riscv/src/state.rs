//! Architectural hart state, CSR semantics and trap entry (Privileged ISA 20211203 ch. 3 machine
//! level: §3.1 CSRs, §3.1.6 mstatus, §3.1.7 mtvec, §3.1.9 mip/mie, §3.3 instructions; ch. 4 for the
//! supervisor CSRs that S-mode will use).

use std::cell::Cell;
use std::rc::Rc;

use crate::code::CodePages;
use crate::csr;
use crate::insn::Xlen;
use crate::mem::Tlb;

/// Privilege levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Priv {
    /// User.
    User = 0,
    /// Supervisor.
    Supervisor = 1,
    /// Machine.
    Machine = 3,
}

impl Priv {
    pub(crate) fn from_bits(b: u64) -> Priv {
        match b & 3 {
            0 => Priv::User,
            1 => Priv::Supervisor,
            _ => Priv::Machine,
        }
    }
}

/// Synchronous exception causes (`mcause` with the interrupt bit clear).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Exception {
    /// Instruction address misaligned.
    InsnMisaligned = 0,
    /// Instruction access fault.
    InsnAccessFault = 1,
    /// Illegal instruction.
    IllegalInsn = 2,
    /// Breakpoint (ebreak).
    Breakpoint = 3,
    /// Load address misaligned (LR only; ordinary loads are handled).
    LoadMisaligned = 4,
    /// Load access fault.
    LoadAccessFault = 5,
    /// Store/AMO address misaligned.
    StoreMisaligned = 6,
    /// Store/AMO access fault.
    StoreAccessFault = 7,
    /// ecall from U-mode.
    EcallU = 8,
    /// ecall from S-mode.
    EcallS = 9,
    /// ecall from M-mode.
    EcallM = 11,
    /// Instruction page fault.
    InsnPageFault = 12,
    /// Load page fault.
    LoadPageFault = 13,
    /// Store/AMO page fault.
    StorePageFault = 15,
}

/// A synchronous trap: cause and the value for `xtval`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trap {
    /// The exception.
    pub cause: Exception,
    /// Trap value (faulting address, instruction bits, or 0).
    pub tval: u64,
}

impl Trap {
    pub(crate) const fn new(cause: Exception, tval: u64) -> Trap {
        Trap { cause, tval }
    }
}

/// Interrupt numbers (bit positions in mip/mie).
pub mod irq {
    /// Supervisor software interrupt.
    pub const SSI: u32 = 1;
    /// Machine software interrupt.
    pub const MSI: u32 = 3;
    /// Supervisor timer interrupt.
    pub const STI: u32 = 5;
    /// Machine timer interrupt.
    pub const MTI: u32 = 7;
    /// Supervisor external interrupt.
    pub const SEI: u32 = 9;
    /// Machine external interrupt.
    pub const MEI: u32 = 11;
}

/// mstatus fields.
pub(crate) mod ms {
    pub const SIE: u64 = 1 << 1;
    pub const MIE: u64 = 1 << 3;
    pub const SPIE: u64 = 1 << 5;
    pub const MPIE: u64 = 1 << 7;
    pub const SPP: u64 = 1 << 8;
    pub const MPP_SHIFT: u32 = 11;
    pub const MPP: u64 = 3 << MPP_SHIFT;
    pub const FS: u64 = 3 << 13;
    pub const MPRV: u64 = 1 << 17;
    pub const SUM: u64 = 1 << 18;
    pub const MXR: u64 = 1 << 19;
    pub const TVM: u64 = 1 << 20;
    pub const TW: u64 = 1 << 21;
    pub const TSR: u64 = 1 << 22;
    pub const UXL: u64 = 3 << 32;
    pub const SD64: u64 = 1 << 63;
    pub const SD32: u64 = 1 << 31;
}

/// Which optional extensions a hart implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extensions {
    /// Integer multiply/divide.
    pub m: bool,
    /// Atomics.
    pub a: bool,
    /// Compressed instructions.
    pub c: bool,
    /// Single-precision FP.
    pub f: bool,
    /// Double-precision FP.
    pub d: bool,
    /// Supervisor mode.
    pub s: bool,
    /// User mode.
    pub u: bool,
    /// Zihintpause: the device tree advertises `pause` (every hart executes it as the hint it
    /// is; see [`crate::Hart::set_yield_on_spin`]).
    pub zihintpause: bool,
    /// Sstc: the `stimecmp` CSR and `menvcfg.STCE` (needs S and U).
    pub sstc: bool,
}

impl Extensions {
    /// IMAC with U-mode.
    pub const IMACU: Extensions = Extensions {
        m: true,
        a: true,
        c: true,
        f: false,
        d: false,
        s: false,
        u: true,
        zihintpause: false,
        sstc: false,
    };
    /// IMC with U-mode (small RV32 cores).
    pub const IMCU: Extensions = Extensions {
        m: true,
        a: false,
        c: true,
        f: false,
        d: false,
        s: false,
        u: true,
        zihintpause: false,
        sstc: false,
    };
    /// G + C with S and U, Zihintpause and Sstc (the Linux-capable target).
    pub const GCSU: Extensions = Extensions {
        m: true,
        a: true,
        c: true,
        f: true,
        d: true,
        s: true,
        u: true,
        zihintpause: true,
        sstc: true,
    };

    /// The multi-letter extensions a device tree's `riscv,isa` lists after the base string
    /// and `_zicsr_zifencei`, in canonical order (Z before S, as QEMU 7.2 writes them), each
    /// with its leading underscore: e.g. `_zihintpause_sstc`.
    pub fn isa_suffix(&self) -> String {
        let mut s = String::new();
        if self.zihintpause {
            s.push_str("_zihintpause");
        }
        if self.sstc && self.s && self.u {
            s.push_str("_sstc");
        }
        s
    }
}

/// Per-category trace switches (the `-d` options). Each costs nothing while off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TraceFlags {
    /// `-d in_asm`: log each newly decoded instruction with its disassembly.
    pub in_asm: bool,
    /// `-d int`: log each trap and interrupt.
    pub int: bool,
    /// `-d exec`: log the pc of each executed block.
    pub exec: bool,
}

/// Static description of a hart.
#[derive(Clone, Debug)]
pub struct HartConfig {
    /// mhartid.
    pub hart_id: u64,
    /// Base width.
    pub xlen: Xlen,
    /// Extensions.
    pub extensions: Extensions,
    /// pc after reset.
    pub reset_pc: u64,
    /// Number of PMP entries (0, 16 or 64).
    pub pmp_entries: u8,
    /// mvendorid.
    pub mvendorid: u64,
    /// marchid.
    pub marchid: u64,
    /// mimpid.
    pub mimpid: u64,
    /// The machine's shared code-page record (one per machine). `None` makes a private one.
    pub code_pages: Option<Rc<CodePages>>,
}

impl HartConfig {
    /// An RV64IMAC hart with M/U at `reset_pc`.
    pub fn rv64(hart_id: u64, reset_pc: u64) -> HartConfig {
        HartConfig {
            hart_id,
            xlen: Xlen::Rv64,
            extensions: Extensions::IMACU,
            reset_pc,
            pmp_entries: 16,
            mvendorid: 0,
            marchid: 0,
            mimpid: 0,
            code_pages: None,
        }
    }

    /// An RV32IMAC hart with M/U at `reset_pc`.
    pub fn rv32(hart_id: u64, reset_pc: u64) -> HartConfig {
        HartConfig {
            xlen: Xlen::Rv32,
            ..HartConfig::rv64(hart_id, reset_pc)
        }
    }
}

/// Interrupt lines into a hart (set by CLINT/PLIC models on the same thread). Shared via `Rc`.
#[derive(Debug, Default)]
pub struct HartIrqs {
    lines: Cell<u64>,
}

impl HartIrqs {
    /// Drive interrupt-pending bit `mip_bit` (e.g. `irq::MTI`) to `level`.
    pub fn set(&self, mip_bit: u32, level: bool) {
        let m = 1u64 << (mip_bit & 63);
        let v = self.lines.get();
        self.lines.set(if level { v | m } else { v & !m });
    }

    /// The pending bits driven by devices.
    #[inline(always)]
    pub fn get(&self) -> u64 {
        self.lines.get()
    }
}

/// Why `Hart::run` returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunExit {
    /// The instruction budget is used up.
    BudgetExhausted,
    /// The hart executed `wfi` and no enabled interrupt is pending: run it again after an
    /// interrupt line changes (or a timer expires).
    Wfi,
    /// The hart is spinning (it executed `pause`, a polling `amoswap`, or a `wfi` with an
    /// interrupt already pending): `run` returned early so the caller can run the other harts
    /// (see [`crate::Hart::set_yield_on_spin`]).
    Yield,
}

/// menvcfg.STCE (Sstc): `stimecmp` drives mip.STIP and S-mode may access it.
pub(crate) const MENVCFG_STCE: u64 = 1 << 63;

/// mcounteren.TM: S-mode may read `time` (and, with Sstc, access `stimecmp`).
const MCOUNTEREN_TM: u64 = 1 << 1;

/// Bits of mip that software may write (the supervisor ones, when S-mode exists).
const MIP_S_BITS: u64 = (1 << irq::SSI) | (1 << irq::STI) | (1 << irq::SEI);
const MIP_M_BITS: u64 = (1 << irq::MSI) | (1 << irq::MTI) | (1 << irq::MEI);

/// The architectural state of one hart. `repr(C)` with `x` first: the interpreter addresses the
/// register file directly off the state pointer.
#[repr(C)]
pub(crate) struct State {
    pub x: [u64; 32],
    pub pc: u64,
    /// FP registers (binary32 values NaN-boxed) and fcsr (`frm` in bits 7:5, `fflags` in 4:0).
    pub f: [u64; 32],
    pub fcsr: u32,
    pub prv: Priv,
    pub xlen: Xlen,
    pub ext: Extensions,
    pub hart_id: u64,
    pub ids: [u64; 3],
    pub reset_pc: u64,
    pub misa: u64,
    pub mstatus: u64,
    pub mie: u64,
    pub mip_sw: u64,
    pub medeleg: u64,
    pub mideleg: u64,
    pub mtvec: u64,
    pub mepc: u64,
    pub mcause: u64,
    pub mtval: u64,
    pub mscratch: u64,
    pub mcounteren: u64,
    pub mcountinhibit: u64,
    pub menvcfg: u64,
    /// Sstc's supervisor timer compare value (in `time` ticks).
    pub stimecmp: u64,
    pub stvec: u64,
    pub sepc: u64,
    pub scause: u64,
    pub stval: u64,
    pub sscratch: u64,
    pub scounteren: u64,
    pub senvcfg: u64,
    pub satp: u64,
    pub pmp_entries: u8,
    pub pmpcfg: [u8; 64],
    pub pmpaddr: [u64; 64],
    /// The PMP entries that are not OFF, decoded (`State::pmp_rebuild`).
    pub pmp_rules: Vec<crate::mem::PmpRule>,
    /// Retired instructions since reset (the interpreter adds its local count at block exits).
    pub instret: u64,
    /// True while `step_uncached` executes its instruction. Data accesses to the bus are made
    /// only then, when `instret` is exact; in `run_block` (where it lags) they are deferred.
    pub uncached: bool,
    /// Set when a data bus access was deferred: the instruction failed with a placeholder trap
    /// and the outer loop re-runs it through `step_uncached` (see `State::bus_read`).
    pub deferred: bool,
    pub minstret_off: u64,
    pub mcycle_off: u64,
    /// LR reservation (physical address), cleared at every `run` boundary.
    pub reservation: Option<u64>,
    /// Stopped in `wfi`.
    pub waiting: bool,
    /// The interpreter leaves its block at the next taken branch once its local instruction
    /// count reaches this; slow paths set it to 0 to request an early exit (MMIO, SMC).
    pub stop_at: u64,
    pub irqs: Rc<HartIrqs>,
    pub code_pages: Rc<CodePages>,
    pub code_slot: usize,
    pub tlb: Box<Tlb>,
    pub trace: TraceFlags,
    /// `Hart::run` honours budgets exactly (see `Hart::set_exact_budget`).
    pub exact_budget: bool,
    /// Spin-wait hints end `Hart::run` (see `Hart::set_yield_on_spin`).
    pub yield_on_spin: bool,
    /// Set by another thread when the machine has work for the main loop (see
    /// `Hart::set_kick`): `run` returns at the next block boundary, and a read of mip/sip
    /// (a guest polling for an interrupt) ends its block.
    pub kick: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// The hart armed its own timer (Sstc `stimecmp`): `run` returns at the next block
    /// boundary so the caller can size the next slice to the new deadline.
    pub timer_armed: bool,
    /// The outcome of the last instruction that did not just continue (see `exec::EXIT`).
    pub flow: crate::exec::Flow,
}

impl State {
    /// Whether the main loop asked the hart to stop early (see `Hart::set_kick`).
    #[inline]
    pub fn kicked(&self) -> bool {
        self.kick
            .as_ref()
            .is_some_and(|k| k.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Whether `run` should return now: kicked, or the hart armed its own timer.
    #[inline]
    pub fn leave_run(&mut self) -> bool {
        std::mem::take(&mut self.timer_armed) || self.kicked()
    }
}

/// Result of a CSR access that is not allowed: raise illegal instruction.
pub(crate) struct CsrIllegal;

impl State {
    pub fn new(config: HartConfig) -> State {
        let code_pages = config.code_pages.clone().unwrap_or_default();
        let code_slot = code_pages.register();
        let mut ext = config.extensions;
        // stimecmp is an S-mode CSR and STCE lives in menvcfg, which exists only with U.
        ext.sstc &= ext.s && ext.u;
        let mut misa = match config.xlen {
            Xlen::Rv32 => 1u64 << 30,
            Xlen::Rv64 => 2u64 << 62,
        };
        misa |= 1 << 8; // I
        for (on, letter) in [
            (ext.m, b'M'),
            (ext.a, b'A'),
            (ext.c, b'C'),
            (ext.f, b'F'),
            (ext.d, b'D'),
            (ext.s, b'S'),
            (ext.u, b'U'),
        ] {
            if on {
                misa |= 1 << (letter - b'A');
            }
        }
        let mut st = State {
            x: [0; 32],
            pc: config.reset_pc,
            f: [0; 32],
            fcsr: 0,
            prv: Priv::Machine,
            xlen: config.xlen,
            ext,
            hart_id: config.hart_id,
            ids: [config.mvendorid, config.marchid, config.mimpid],
            reset_pc: config.reset_pc,
            misa,
            mstatus: 0,
            mie: 0,
            mip_sw: 0,
            medeleg: 0,
            mideleg: 0,
            mtvec: 0,
            mepc: 0,
            mcause: 0,
            mtval: 0,
            mscratch: 0,
            mcounteren: 0,
            mcountinhibit: 0,
            menvcfg: 0,
            stimecmp: 0,
            stvec: 0,
            sepc: 0,
            scause: 0,
            stval: 0,
            sscratch: 0,
            scounteren: 0,
            senvcfg: 0,
            satp: 0,
            pmp_entries: config.pmp_entries.min(64),
            pmpcfg: [0; 64],
            pmpaddr: [0; 64],
            pmp_rules: Vec::new(),
            instret: 0,
            uncached: false,
            deferred: false,
            minstret_off: 0,
            mcycle_off: 0,
            reservation: None,
            waiting: false,
            stop_at: 0,
            irqs: Rc::new(HartIrqs::default()),
            code_pages,
            code_slot,
            tlb: Box::new(Tlb::new()),
            trace: TraceFlags::default(),
            exact_budget: true,
            yield_on_spin: true,
            kick: None,
            timer_armed: false,
            flow: crate::exec::Flow::Next,
        };
        st.reset();
        st
    }

    pub fn reset(&mut self) {
        self.x = [0; 32];
        self.f = [0; 32];
        self.fcsr = 0;
        self.pc = self.reset_pc;
        self.prv = Priv::Machine;
        self.mstatus = 0;
        if self.xlen == Xlen::Rv64 {
            if self.ext.u {
                self.mstatus |= 2 << 32;
            }
            if self.ext.s {
                self.mstatus |= 2 << 34;
            }
        }
        self.mie = 0;
        self.mip_sw = 0;
        self.medeleg = 0;
        self.mideleg = 0;
        self.mtvec = 0;
        self.mepc = 0;
        self.mcause = 0;
        self.mtval = 0;
        self.mcounteren = 0;
        self.mcountinhibit = 0;
        self.menvcfg = 0;
        self.stimecmp = 0;
        self.satp = 0;
        self.pmpcfg = [0; 64];
        self.pmpaddr = [0; 64];
        self.pmp_rebuild();
        self.reservation = None;
        self.waiting = false;
        self.deferred = false;
        self.tlb.flush_all();
    }

    #[inline(always)]
    pub fn rv32(&self) -> bool {
        self.xlen == Xlen::Rv32
    }

    /// Sign-extend a 32-bit result on RV32 (registers always hold XLEN-sign-extended values).
    #[inline(always)]
    pub fn sx(&self, v: u64) -> u64 {
        if self.rv32() {
            v as i32 as i64 as u64
        } else {
            v
        }
    }

    #[inline(always)]
    pub fn set_x(&mut self, r: u8, v: u64) {
        if let Some(x) = self.x.get_mut((r & 31) as usize) {
            *x = v;
        }
        self.x[0] = 0;
    }

    #[inline(always)]
    pub fn get_x(&self, r: u8) -> u64 {
        self.x.get((r & 31) as usize).copied().unwrap_or(0)
    }

    /// FP register `r` as raw bits (binary32 values are NaN-boxed).
    #[inline(always)]
    pub fn get_f(&self, r: u8) -> u64 {
        self.f.get((r & 31) as usize).copied().unwrap_or(0)
    }

    #[inline(always)]
    pub fn set_f(&mut self, r: u8, v: u64) {
        if let Some(f) = self.f.get_mut((r & 31) as usize) {
            *f = v;
        }
    }

    /// Pending interrupt bits (software-written and device-driven).
    #[inline(always)]
    pub fn mip(&self) -> u64 {
        self.mip_sw | self.irqs.get()
    }

    /// Whether Sstc's comparator drives mip.STIP (menvcfg.STCE, settable only with Sstc).
    #[inline(always)]
    pub fn sstc_active(&self) -> bool {
        self.menvcfg & MENVCFG_STCE != 0
    }

    /// Sstc: with STCE set, STIP is `time >= stimecmp`, given `time` now. The bit lives in
    /// `mip_sw`, which software cannot change while STCE is set; when STCE is cleared it keeps
    /// its last value and becomes writable by M-mode again.
    #[inline]
    pub fn sstc_update(&mut self, time: u64) {
        if self.sstc_active() {
            let stip = 1u64 << irq::STI;
            if time >= self.stimecmp {
                self.mip_sw |= stip;
            } else {
                self.mip_sw &= !stip;
            }
        }
    }

    /// The `time` value at which Sstc will raise STIP, if the comparator is armed (STCE set,
    /// STIP low). `stimecmp = u64::MAX` (how Linux stops its timer) never fires.
    pub fn sstc_wakeup(&self) -> Option<u64> {
        let armed = self.sstc_active()
            && self.mip_sw & (1u64 << irq::STI) == 0
            && self.stimecmp != u64::MAX;
        armed.then_some(self.stimecmp)
    }

    /// Sstc: S-mode reaches `stimecmp` only with menvcfg.STCE and mcounteren.TM set (M-mode
    /// always; U-mode never, by the CSR number's privilege).
    fn stimecmp_allowed(&self) -> bool {
        self.prv == Priv::Machine || (self.sstc_active() && self.mcounteren & MCOUNTEREN_TM != 0)
    }

    /// The value a CSRRS/CSRRC of CSR `n` modifies, given what `csr_read` returned: the read
    /// value, except that in `mip`/`sip` only the software-writable pending bits take part, not
    /// the lines devices drive (Privileged ISA §3.1.9: "Only the software-writable SEIP bit
    /// participates in the read-modify-write sequence of a CSRRS or CSRRC instruction").
    /// Otherwise M-mode's `csrs mip, STIP` while the PLIC holds SEIP high would latch SEIP
    /// forever.
    #[inline]
    pub fn csr_rmw_base(&self, n: u16, read: u64) -> u64 {
        match n {
            csr::MIP | csr::SIP => self.mip_sw,
            _ => read,
        }
    }

    /// The highest-priority interrupt that is pending, enabled and not masked at the current
    /// privilege (Privileged ISA §3.1.9).
    #[inline]
    pub fn pending_interrupt(&self) -> Option<u32> {
        let pending = self.mip() & self.mie;
        if pending == 0 {
            return None;
        }
        let m_pending = pending & !self.mideleg;
        let m_on = self.prv < Priv::Machine || self.mstatus & ms::MIE != 0;
        let s_pending = pending & self.mideleg;
        let s_on = self.prv < Priv::Supervisor
            || (self.prv == Priv::Supervisor && self.mstatus & ms::SIE != 0);
        let set = if m_on && m_pending != 0 {
            m_pending
        } else if s_on && s_pending != 0 {
            s_pending
        } else {
            return None;
        };
        [irq::MEI, irq::MSI, irq::MTI, irq::SEI, irq::SSI, irq::STI]
            .into_iter()
            .find(|&b| set & (1 << b) != 0)
    }

    fn xlen_bits(&self) -> u32 {
        self.xlen.bits()
    }

    /// Enter a trap handler. `interrupt` selects mcause's interrupt bit; `code` is the cause.
    pub fn enter_trap(&mut self, interrupt: bool, code: u64, tval: u64) {
        let epc = self.pc;
        let deleg = if interrupt {
            self.mideleg
        } else {
            self.medeleg
        };
        let to_s = self.ext.s && self.prv <= Priv::Supervisor && (deleg >> (code & 63)) & 1 != 0;
        let cause = if interrupt {
            code | (1u64 << (self.xlen_bits() - 1))
        } else {
            code
        };
        let old = self.prv;
        if to_s {
            self.scause = cause;
            self.sepc = epc;
            self.stval = tval;
            let sie = self.mstatus & ms::SIE != 0;
            self.mstatus &= !(ms::SPIE | ms::SIE | ms::SPP);
            if sie {
                self.mstatus |= ms::SPIE;
            }
            if self.prv == Priv::Supervisor {
                self.mstatus |= ms::SPP;
            }
            self.prv = Priv::Supervisor;
            self.pc = vector(self.stvec, interrupt, code);
        } else {
            self.mcause = cause;
            self.mepc = epc;
            self.mtval = tval;
            let mie = self.mstatus & ms::MIE != 0;
            self.mstatus &= !(ms::MPIE | ms::MIE | ms::MPP);
            if mie {
                self.mstatus |= ms::MPIE;
            }
            self.mstatus |= (self.prv as u64) << ms::MPP_SHIFT;
            self.prv = Priv::Machine;
            self.pc = vector(self.mtvec, interrupt, code);
        }
        if self.rv32() {
            self.pc &= 0xffff_ffff;
        }
        if old != self.prv {
            self.privilege_changed();
        }
        if self.trace.int {
            tracing::info!(
                target: "int",
                "hart {}: {} cause={:#x} epc={:#x} tval={:#x} -> pc={:#x} priv={:?}",
                self.hart_id,
                if interrupt { "interrupt" } else { "exception" },
                cause,
                epc,
                tval,
                self.pc,
                self.prv
            );
        }
    }

    pub fn take_trap(&mut self, t: Trap) {
        self.enter_trap(false, t.cause as u64, t.tval);
    }

    /// `mret` (Privileged ISA §3.3.2).
    pub fn mret(&mut self) {
        let mpp = Priv::from_bits(self.mstatus >> ms::MPP_SHIFT);
        let mpie = self.mstatus & ms::MPIE != 0;
        self.mstatus &= !(ms::MIE | ms::MPP);
        if mpie {
            self.mstatus |= ms::MIE;
        }
        self.mstatus |= ms::MPIE;
        let least = if self.ext.u {
            Priv::User
        } else {
            Priv::Machine
        };
        self.mstatus |= (least as u64) << ms::MPP_SHIFT;
        if mpp != Priv::Machine {
            self.mstatus &= !ms::MPRV;
        }
        self.pc = self.mepc;
        self.set_priv(mpp);
    }

    /// `sret`.
    pub fn sret(&mut self) {
        let spp = if self.mstatus & ms::SPP != 0 {
            Priv::Supervisor
        } else {
            Priv::User
        };
        let spie = self.mstatus & ms::SPIE != 0;
        self.mstatus &= !(ms::SIE | ms::SPP);
        if spie {
            self.mstatus |= ms::SIE;
        }
        self.mstatus |= ms::SPIE;
        self.mstatus &= !ms::MPRV;
        self.pc = self.sepc;
        self.set_priv(spp);
    }

    fn set_priv(&mut self, p: Priv) {
        if p != self.prv {
            self.prv = p;
            self.privilege_changed();
        }
    }

    /// Translations depend on the privilege once an MMU or PMP is active.
    pub fn privilege_changed(&mut self) {
        if self.translation_depends_on_priv() {
            self.tlb.flush_all();
        }
    }

    pub fn translation_depends_on_priv(&self) -> bool {
        self.satp != 0 || !self.pmp_rules.is_empty()
    }

    // ---- CSRs -------------------------------------------------------------------------------

    /// Whether the FP unit is usable (mstatus.FS != Off; FS stays Off without F).
    pub fn fp_enabled(&self) -> bool {
        self.mstatus & ms::FS != 0
    }

    fn counter_allowed(&self, csr_num: u16) -> bool {
        let bit = 1u64 << (csr_num & 31);
        match self.prv {
            Priv::Machine => true,
            Priv::Supervisor => self.mcounteren & bit != 0,
            Priv::User => self.mcounteren & bit != 0 && (!self.ext.s || self.scounteren & bit != 0),
        }
    }

    fn mstatus_read(&self) -> u64 {
        let mut v = self.mstatus;
        let dirty = (v & ms::FS) == ms::FS;
        if self.rv32() {
            v &= 0xffff_ffff;
            if dirty {
                v |= ms::SD32;
            }
        } else if dirty {
            v |= ms::SD64;
        }
        v
    }

    fn sstatus_mask(&self) -> u64 {
        let m = ms::SIE | ms::SPIE | ms::SPP | ms::FS | ms::SUM | ms::MXR;
        if self.rv32() { m } else { m | ms::UXL }
    }

    /// Read a CSR (privilege already checked by the caller). `mtime` is the platform timer.
    pub fn csr_read(&self, n: u16, mtime: u64) -> Result<u64, CsrIllegal> {
        let rv32 = self.rv32();
        let s = self.ext.s;
        let v = match n {
            csr::FFLAGS | csr::FRM | csr::FCSR => {
                if !self.fp_enabled() {
                    return Err(CsrIllegal);
                }
                match n {
                    csr::FFLAGS => (self.fcsr & 0x1f) as u64,
                    csr::FRM => ((self.fcsr >> 5) & 7) as u64,
                    _ => (self.fcsr & 0xff) as u64,
                }
            }
            csr::CYCLE | csr::TIME | csr::INSTRET | csr::CYCLEH | csr::TIMEH | csr::INSTRETH => {
                if n >= csr::CYCLEH && !rv32 {
                    return Err(CsrIllegal);
                }
                if !self.counter_allowed(n) {
                    return Err(CsrIllegal);
                }
                let full = match n & 0x7f {
                    0 => self.mcycle(),
                    1 => mtime,
                    _ => self.minstret(),
                };
                if n >= csr::CYCLEH { full >> 32 } else { full }
            }
            csr::HPMCOUNTER3..=csr::HPMCOUNTER31 => {
                if !self.counter_allowed(n) {
                    return Err(CsrIllegal);
                }
                0
            }
            csr::HPMCOUNTER3H..=csr::HPMCOUNTER31H => {
                if !rv32 || !self.counter_allowed(n) {
                    return Err(CsrIllegal);
                }
                0
            }
            csr::MVENDORID => self.ids[0],
            csr::MARCHID => self.ids[1],
            csr::MIMPID => self.ids[2],
            csr::MHARTID => self.hart_id,
            csr::MCONFIGPTR => 0,
            csr::MSTATUS => self.mstatus_read(),
            csr::MSTATUSH if rv32 => 0,
            csr::MISA => self.misa,
            csr::MEDELEG if s => self.medeleg,
            csr::MIDELEG if s => self.mideleg,
            csr::MIE => self.mie,
            csr::MIP => self.mip(),
            csr::MTVEC => self.mtvec,
            csr::MCOUNTEREN if self.ext.u => self.mcounteren,
            csr::MENVCFG if self.ext.u => self.menvcfg,
            csr::MENVCFGH if self.ext.u && rv32 => self.menvcfg >> 32,
            csr::MCOUNTINHIBIT => self.mcountinhibit,
            csr::MHPMEVENT3..=csr::MHPMEVENT31 => 0,
            csr::MSCRATCH => self.mscratch,
            csr::MEPC => self.mepc,
            csr::MCAUSE => self.mcause,
            csr::MTVAL => self.mtval,
            csr::PMPCFG0..=csr::PMPCFG15 => {
                let i = (n - csr::PMPCFG0) as usize;
                if !rv32 && i % 2 == 1 {
                    return Err(CsrIllegal);
                }
                let bytes = if rv32 { 4 } else { 8 };
                let mut v = 0u64;
                for b in 0..bytes {
                    v |= (self.pmpcfg.get(i * 4 + b).copied().unwrap_or(0) as u64) << (8 * b);
                }
                v
            }
            csr::PMPADDR0..=csr::PMPADDR63 => self
                .pmpaddr
                .get((n - csr::PMPADDR0) as usize)
                .copied()
                .unwrap_or(0),
            csr::MCYCLE => self.mcycle(),
            csr::MINSTRET => self.minstret(),
            csr::MCYCLEH if rv32 => self.mcycle() >> 32,
            csr::MINSTRETH if rv32 => self.minstret() >> 32,
            csr::MHPMCOUNTER3..=csr::MHPMCOUNTER31 => 0,
            csr::MHPMCOUNTER3H..=csr::MHPMCOUNTER31H if rv32 => 0,
            csr::SSTATUS if s => self.mstatus_read() & (self.sstatus_mask() | ms::SD64 | ms::SD32),
            csr::SIE if s => self.mie & self.mideleg,
            csr::SIP if s => self.mip() & self.mideleg,
            csr::STVEC if s => self.stvec,
            csr::SCOUNTEREN if s => self.scounteren,
            csr::SENVCFG if s => self.senvcfg,
            csr::SSCRATCH if s => self.sscratch,
            csr::SEPC if s => self.sepc,
            csr::SCAUSE if s => self.scause,
            csr::STVAL if s => self.stval,
            csr::SATP if s => {
                if self.prv == Priv::Supervisor && self.mstatus & ms::TVM != 0 {
                    return Err(CsrIllegal);
                }
                self.satp
            }
            csr::STIMECMP if self.ext.sstc => {
                if !self.stimecmp_allowed() {
                    return Err(CsrIllegal);
                }
                self.stimecmp
            }
            csr::STIMECMPH if self.ext.sstc && rv32 => {
                if !self.stimecmp_allowed() {
                    return Err(CsrIllegal);
                }
                self.stimecmp >> 32
            }
            _ => return Err(CsrIllegal),
        };
        Ok(if rv32 { v & 0xffff_ffff } else { v })
    }

    pub fn mcycle(&self) -> u64 {
        self.instret.wrapping_add(self.mcycle_off)
    }

    pub fn minstret(&self) -> u64 {
        self.instret.wrapping_add(self.minstret_off)
    }

    /// Write a CSR (privilege and read-only already checked by the caller). The caller has
    /// synchronised `instret` to count the instructions before this one.
    pub fn csr_write(&mut self, n: u16, v: u64) -> Result<(), CsrIllegal> {
        let rv32 = self.rv32();
        let v = if rv32 { v & 0xffff_ffff } else { v };
        let s = self.ext.s;
        // The writing instruction retires after the write takes effect: counters written here
        // read back as `v` afterwards.
        let after = self.instret.wrapping_add(1);
        match n {
            csr::FFLAGS | csr::FRM | csr::FCSR => {
                if !self.fp_enabled() {
                    return Err(CsrIllegal);
                }
                self.fcsr = match n {
                    csr::FFLAGS => (self.fcsr & !0x1f) | (v as u32 & 0x1f),
                    csr::FRM => (self.fcsr & !0xe0) | ((v as u32 & 7) << 5),
                    _ => v as u32 & 0xff,
                };
                self.mstatus |= ms::FS;
            }
            csr::MSTATUS => self.mstatus_write(v),
            csr::MSTATUSH if rv32 => {}
            csr::MISA => {}
            csr::MEDELEG if s => {
                // ecall from M (11) cannot be delegated.
                self.medeleg = v & 0xb3ff;
            }
            csr::MIDELEG if s => self.mideleg = v & MIP_S_BITS,
            csr::MIE => {
                let mask = MIP_M_BITS | if s { MIP_S_BITS } else { 0 };
                self.mie = v & mask;
            }
            csr::MIP => {
                if s {
                    // With STCE set, STIP belongs to the Sstc comparator.
                    let m = if self.sstc_active() {
                        MIP_S_BITS & !(1 << irq::STI)
                    } else {
                        MIP_S_BITS
                    };
                    self.mip_sw = (self.mip_sw & !m) | (v & m);
                }
            }
            csr::MTVEC => self.mtvec = tvec_legal(self.mtvec, v),
            csr::MCOUNTEREN if self.ext.u => self.mcounteren = v & 0xffff_ffff,
            // Only STCE (bit 63, in menvcfgh on RV32) is implemented, and only with Sstc.
            csr::MENVCFG if self.ext.u => {
                if self.ext.sstc && !rv32 {
                    self.menvcfg = v & MENVCFG_STCE;
                }
            }
            csr::MENVCFGH if self.ext.u && rv32 => {
                if self.ext.sstc {
                    self.menvcfg = (v << 32) & MENVCFG_STCE;
                }
            }
            csr::MCOUNTINHIBIT => self.mcountinhibit = v & 0xffff_fffd,
            csr::MHPMEVENT3..=csr::MHPMEVENT31 => {}
            csr::MSCRATCH => self.mscratch = v,
            csr::MEPC => self.mepc = v & self.epc_mask(),
            csr::MCAUSE => self.mcause = v,
            csr::MTVAL => self.mtval = v,
            csr::PMPCFG0..=csr::PMPCFG15 => {
                let i = (n - csr::PMPCFG0) as usize;
                if !rv32 && i % 2 == 1 {
                    return Err(CsrIllegal);
                }
                let bytes = if rv32 { 4 } else { 8 };
                for b in 0..bytes {
                    let e = i * 4 + b;
                    if e >= self.pmp_entries as usize {
                        continue;
                    }
                    let Some(old) = self.pmpcfg.get(e).copied() else {
                        continue;
                    };
                    if old & 0x80 != 0 {
                        continue; // locked
                    }
                    let mut c = (v >> (8 * b)) as u8 & 0x9f;
                    // R=0,W=1 is reserved: keep the entry's previous value.
                    if c & 3 == 2 {
                        c = old;
                    }
                    if let Some(slot) = self.pmpcfg.get_mut(e) {
                        *slot = c;
                    }
                }
                self.pmp_rebuild();
                self.tlb.flush_all();
            }
            csr::PMPADDR0..=csr::PMPADDR63 => {
                let e = (n - csr::PMPADDR0) as usize;
                if e < self.pmp_entries as usize {
                    let locked = self.pmpcfg.get(e).is_some_and(|c| c & 0x80 != 0);
                    let next_tor_locked = self
                        .pmpcfg
                        .get(e + 1)
                        .is_some_and(|c| c & 0x80 != 0 && (c >> 3) & 3 == 1);
                    if !locked && !next_tor_locked {
                        let mask = if rv32 { 0xffff_ffff } else { (1u64 << 54) - 1 };
                        if let Some(slot) = self.pmpaddr.get_mut(e) {
                            *slot = v & mask;
                        }
                    }
                }
                self.pmp_rebuild();
                self.tlb.flush_all();
            }
            csr::MCYCLE => self.mcycle_off = v.wrapping_sub(after),
            csr::MINSTRET => self.minstret_off = v.wrapping_sub(after),
            csr::MCYCLEH if rv32 => {
                let new = (self.mcycle().wrapping_add(1) & 0xffff_ffff) | (v << 32);
                self.mcycle_off = new.wrapping_sub(after);
            }
            csr::MINSTRETH if rv32 => {
                let new = (self.minstret().wrapping_add(1) & 0xffff_ffff) | (v << 32);
                self.minstret_off = new.wrapping_sub(after);
            }
            csr::MHPMCOUNTER3..=csr::MHPMCOUNTER31 => {}
            csr::MHPMCOUNTER3H..=csr::MHPMCOUNTER31H if rv32 => {}
            csr::SSTATUS if s => {
                let m = self.sstatus_mask() & !ms::UXL;
                let nv = (self.mstatus & !m) | (v & m);
                self.mstatus_write(nv);
            }
            csr::SIE if s => self.mie = (self.mie & !self.mideleg) | (v & self.mideleg),
            csr::SIP if s => {
                let m = self.mideleg & (1 << irq::SSI);
                self.mip_sw = (self.mip_sw & !m) | (v & m);
            }
            csr::STVEC if s => self.stvec = tvec_legal(self.stvec, v),
            csr::SCOUNTEREN if s => self.scounteren = v & 0xffff_ffff,
            csr::SENVCFG if s => self.senvcfg = 0,
            csr::SSCRATCH if s => self.sscratch = v,
            csr::SEPC if s => self.sepc = v & self.epc_mask(),
            csr::SCAUSE if s => self.scause = v,
            csr::STVAL if s => self.stval = v,
            csr::SATP if s => {
                if self.prv == Priv::Supervisor && self.mstatus & ms::TVM != 0 {
                    return Err(CsrIllegal);
                }
                self.satp_write(v);
            }
            csr::STIMECMP if self.ext.sstc => {
                self.stimecmp = if rv32 {
                    (self.stimecmp & !0xffff_ffff) | v
                } else {
                    v
                };
            }
            csr::STIMECMPH if self.ext.sstc && rv32 => {
                self.stimecmp = (self.stimecmp & 0xffff_ffff) | (v << 32);
            }
            _ => return Err(CsrIllegal),
        }
        Ok(())
    }

    fn epc_mask(&self) -> u64 {
        let m = if self.ext.c { !1u64 } else { !3u64 };
        if self.rv32() { m & 0xffff_ffff } else { m }
    }

    /// satp is WARL: unsupported modes leave it unchanged; ASIDs are not implemented (the ASID
    /// field reads as zero, which tells the OS to flush on every switch).
    fn satp_write(&mut self, v: u64) {
        let (mode, ok, ppn_mask) = if self.rv32() {
            (v >> 31, true, (1u64 << 22) - 1)
        } else {
            let m = v >> 60;
            (m, matches!(m, 0 | 8 | 9), (1u64 << 44) - 1)
        };
        if !ok {
            return;
        }
        self.satp = if self.rv32() {
            (mode << 31) | (v & ppn_mask)
        } else {
            (mode << 60) | (v & ppn_mask)
        };
        self.tlb.flush_all();
    }

    fn mstatus_write(&mut self, v: u64) {
        let mut mask = ms::MIE | ms::MPIE | ms::MPP;
        if self.ext.f {
            mask |= ms::FS;
        }
        if self.ext.u {
            mask |= ms::MPRV | ms::TW;
        }
        if self.ext.s {
            mask |= ms::SIE | ms::SPIE | ms::SPP | ms::SUM | ms::MXR | ms::TVM | ms::TSR;
        }
        let old = self.mstatus;
        let mut nv = (old & !mask) | (v & mask);
        // MPP is WARL: only implemented modes.
        let mpp = Priv::from_bits(nv >> ms::MPP_SHIFT);
        let mpp_ok = match mpp {
            Priv::Machine => true,
            Priv::Supervisor => self.ext.s && (nv >> ms::MPP_SHIFT) & 3 == 1,
            Priv::User => self.ext.u,
        };
        if !mpp_ok {
            nv = (nv & !ms::MPP) | (old & ms::MPP);
        }
        self.mstatus = nv;
        if (old ^ nv) & (ms::MPRV | ms::MPP | ms::SUM | ms::MXR) != 0 {
            self.tlb.flush_all();
        }
    }
}

fn vector(tvec: u64, interrupt: bool, code: u64) -> u64 {
    let base = tvec & !3;
    if interrupt && tvec & 3 == 1 {
        base.wrapping_add(4 * code)
    } else {
        base
    }
}

/// mtvec/stvec WARL: modes 0 (direct) and 1 (vectored); base 4-byte aligned.
fn tvec_legal(old: u64, v: u64) -> u64 {
    if v & 3 >= 2 { (v & !3) | (old & 3) } else { v }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hart() -> State {
        State::new(HartConfig::rv64(0, 0x8000_0000))
    }

    #[test]
    fn test_misa_reports_mxl_and_extensions() {
        let st = hart();
        let misa = st.csr_read(csr::MISA, 0).ok().unwrap_or(0);
        assert_eq!(misa >> 62, 2);
        for l in [b'I', b'M', b'A', b'C', b'U'] {
            let bit = 1 << (l - b'A');
            assert_ne!(misa & bit, 0, "{}", l as char);
        }
        assert_eq!(misa & (1 << (b'S' - b'A')), 0);
        let st32 = State::new(HartConfig::rv32(0, 0));
        assert_eq!(st32.csr_read(csr::MISA, 0).ok().unwrap_or(0) >> 30, 1);
    }

    #[test]
    fn test_mstatus_mpp_warl_rejects_supervisor_without_s() {
        let mut st = hart();
        assert!(st.csr_write(csr::MSTATUS, 1 << 11).is_ok());
        assert_eq!((st.mstatus >> 11) & 3, 0, "old value U kept");
        assert!(st.csr_write(csr::MSTATUS, 3 << 11).is_ok());
        assert_eq!((st.mstatus >> 11) & 3, 3);
        assert_eq!(st.mstatus_read() >> 32 & 3, 2, "UXL = 64");
    }

    #[test]
    fn test_mip_machine_bits_are_read_only() {
        let mut st = hart();
        assert!(st.csr_write(csr::MIP, 1 << irq::MTI).is_ok());
        assert_eq!(st.mip(), 0);
        st.irqs.set(irq::MTI, true);
        assert_eq!(st.csr_read(csr::MIP, 0).ok(), Some(1 << irq::MTI));
    }

    #[test]
    fn test_unknown_and_s_mode_csrs_are_illegal_without_s() {
        let st = hart();
        assert!(st.csr_read(0x7c0, 0).is_err());
        assert!(st.csr_read(csr::SATP, 0).is_err());
        assert!(st.csr_read(csr::MEDELEG, 0).is_err());
        assert!(st.csr_read(csr::CYCLEH, 0).is_err(), "rv64 has no cycleh");
        assert!(st.csr_read(csr::FCSR, 0).is_err(), "FS is off");
    }

    #[test]
    fn test_trap_entry_and_mret_round_trip() {
        let mut st = hart();
        st.mtvec = 0x8000_0100;
        st.mstatus |= ms::MIE;
        st.prv = Priv::User;
        st.pc = 0x8000_0040;
        st.take_trap(Trap::new(Exception::EcallU, 0));
        assert_eq!(st.prv, Priv::Machine);
        assert_eq!(st.pc, 0x8000_0100);
        assert_eq!(st.mepc, 0x8000_0040);
        assert_eq!(st.mcause, 8);
        assert_eq!(st.mstatus & ms::MIE, 0);
        assert_ne!(st.mstatus & ms::MPIE, 0);
        assert_eq!((st.mstatus >> 11) & 3, 0);
        st.mepc = 0x8000_0044;
        st.mret();
        assert_eq!(st.prv, Priv::User);
        assert_eq!(st.pc, 0x8000_0044);
        assert_ne!(st.mstatus & ms::MIE, 0);
    }

    #[test]
    fn test_vectored_interrupt_entry() {
        let mut st = hart();
        st.mtvec = 0x8000_0001;
        st.enter_trap(true, irq::MTI as u64, 0);
        assert_eq!(st.pc, 0x8000_0000 + 4 * 7);
        assert_eq!(st.mcause, (1 << 63) | 7);
        // Exceptions always go to the base.
        st.enter_trap(false, 2, 0);
        assert_eq!(st.pc, 0x8000_0000);
    }

    #[test]
    fn test_pending_interrupt_priority_and_enable() {
        let mut st = hart();
        st.irqs.set(irq::MTI, true);
        st.irqs.set(irq::MSI, true);
        assert_eq!(st.pending_interrupt(), None, "mie is zero");
        st.mie = (1 << irq::MTI) | (1 << irq::MSI);
        assert_eq!(st.pending_interrupt(), None, "M-mode with MIE clear");
        st.mstatus |= ms::MIE;
        assert_eq!(st.pending_interrupt(), Some(irq::MSI));
        st.mstatus &= !ms::MIE;
        st.prv = Priv::User;
        assert_eq!(
            st.pending_interrupt(),
            Some(irq::MSI),
            "always enabled below M"
        );
    }

    #[test]
    fn test_rv32_counter_high_halves() {
        let mut st = State::new(HartConfig::rv32(0, 0));
        st.instret = 0x1_0000_0005;
        assert_eq!(st.csr_read(csr::MINSTRETH, 0).ok(), Some(1));
        assert_eq!(st.csr_read(csr::MINSTRET, 0).ok(), Some(5));
        assert_eq!(st.csr_read(csr::TIMEH, 0x7_0000_0000).ok(), Some(7));
    }

    fn sstc_state() -> State {
        let mut c = HartConfig::rv64(0, 0x8000_0000);
        c.extensions = Extensions {
            s: true,
            sstc: true,
            ..Extensions::IMACU
        };
        State::new(c)
    }

    #[test]
    fn test_stimecmp_exists_only_with_sstc_and_s_mode_needs_stce_and_tm() {
        let mut plain = hart();
        assert!(plain.csr_read(csr::STIMECMP, 0).is_err());
        assert!(plain.csr_write(csr::MENVCFG, u64::MAX).is_ok());
        assert_eq!(
            plain.csr_read(csr::MENVCFG, 0).ok(),
            Some(0),
            "no STCE without Sstc"
        );

        let mut st = sstc_state();
        assert!(st.csr_write(csr::STIMECMP, 1234).is_ok());
        assert_eq!(st.csr_read(csr::STIMECMP, 0).ok(), Some(1234), "M: always");
        st.prv = Priv::Supervisor;
        assert!(st.csr_read(csr::STIMECMP, 0).is_err(), "STCE = 0, TM = 0");
        st.mcounteren = 2;
        assert!(st.csr_read(csr::STIMECMP, 0).is_err(), "STCE = 0");
        st.prv = Priv::Machine;
        assert!(st.csr_write(csr::MENVCFG, u64::MAX).is_ok());
        assert_eq!(
            st.csr_read(csr::MENVCFG, 0).ok(),
            Some(MENVCFG_STCE),
            "only STCE"
        );
        st.prv = Priv::Supervisor;
        assert_eq!(st.csr_read(csr::STIMECMP, 0).ok(), Some(1234));
        st.mcounteren = 0;
        assert!(st.csr_read(csr::STIMECMP, 0).is_err(), "TM = 0");
        assert!(
            st.csr_read(csr::STIMECMPH, 0).is_err(),
            "RV64 has no stimecmph"
        );
    }

    #[test]
    fn test_stip_is_the_comparator_while_stce_is_set() {
        let mut st = sstc_state();
        let stip = 1u64 << irq::STI;
        assert!(st.csr_write(csr::MIP, stip).is_ok());
        assert_eq!(st.mip(), stip, "STCE = 0: M-mode software owns STIP");
        assert!(st.csr_write(csr::MENVCFG, MENVCFG_STCE).is_ok());
        st.stimecmp = 100;
        st.sstc_update(99);
        assert_eq!(st.mip(), 0);
        assert_eq!(st.sstc_wakeup(), Some(100));
        assert!(st.csr_write(csr::MIP, stip | (1 << irq::SSI)).is_ok());
        assert_eq!(
            st.mip(),
            1 << irq::SSI,
            "STIP ignores writes, SSIP does not"
        );
        st.sstc_update(100);
        assert_eq!(st.mip() & stip, stip);
        assert_eq!(st.sstc_wakeup(), None);
        assert!(st.csr_write(csr::MIP, 0).is_ok());
        assert_eq!(st.mip(), stip, "clearing is ignored too");
        st.stimecmp = u64::MAX;
        st.sstc_update(u64::MAX - 1);
        assert_eq!(st.mip(), 0);
        assert_eq!(st.sstc_wakeup(), None, "u64::MAX never fires");
        // STCE off again: the bit keeps its value and is writable.
        st.sstc_update(u64::MAX);
        assert!(st.csr_write(csr::MENVCFG, 0).is_ok());
        assert_eq!(st.mip(), stip);
        assert!(st.csr_write(csr::MIP, 0).is_ok());
        assert_eq!(st.mip(), 0);
        st.sstc_update(u64::MAX);
        assert_eq!(st.mip(), 0, "no comparator without STCE");
    }

    #[test]
    fn test_rv32_stimecmph_and_menvcfgh() {
        let mut c = HartConfig::rv32(0, 0);
        c.extensions = Extensions {
            s: true,
            sstc: true,
            ..Extensions::IMACU
        };
        let mut st = State::new(c);
        assert!(st.csr_write(csr::STIMECMP, 0x1111_2222).is_ok());
        assert!(st.csr_write(csr::STIMECMPH, 0x3333_4444).is_ok());
        assert_eq!(st.stimecmp, 0x3333_4444_1111_2222);
        assert_eq!(st.csr_read(csr::STIMECMPH, 0).ok(), Some(0x3333_4444));
        assert_eq!(st.csr_read(csr::STIMECMP, 0).ok(), Some(0x1111_2222));
        assert!(st.csr_write(csr::MENVCFGH, 0x8000_0000).is_ok());
        assert!(st.sstc_active());
        assert_eq!(st.csr_read(csr::MENVCFGH, 0).ok(), Some(0x8000_0000));
        assert_eq!(st.csr_read(csr::MENVCFG, 0).ok(), Some(0));
        assert!(st.csr_write(csr::MENVCFG, 0).is_ok());
        assert!(st.sstc_active(), "the low half does not hold STCE");
    }

    #[test]
    fn test_isa_suffix_lists_zihintpause_and_sstc() {
        assert_eq!(Extensions::GCSU.isa_suffix(), "_zihintpause_sstc");
        assert_eq!(Extensions::IMCU.isa_suffix(), "");
        let no_s = Extensions {
            sstc: true,
            ..Extensions::IMACU
        };
        assert_eq!(no_s.isa_suffix(), "", "Sstc needs S");
    }
}
