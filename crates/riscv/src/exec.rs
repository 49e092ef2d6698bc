//! The interpreter: executes pre-decoded instructions from the decode cache (RISC-V Unprivileged
//! ISA 20191213 ch. 2 RV32I, 5 RV64I, 7 M, 8 A, 9 Zicsr; Privileged ISA 20211203 §3.3).
//!
//! `run_block` runs from the current pc through the hart's decoded pages until something needs
//! the outer loop: a fetch-TLB miss, a trap, a CSR write or other synchronisation point, or the
//! budget (checked only at taken branches unless `CAREFUL`). The instruction semantics live in
//! one `exec` function that both the block loop and the uncached single-step path use.

use std::cell::Cell;

use crate::Bus;
use crate::code::{CodeCache, DecodedPage, PAGE_MASK, PAGE_SIZE, SLOTS};
use crate::decode::{decode16, decode32};
use crate::insn::{Ext, Insn, Op, Packed, Xlen};
use crate::mem::tlb_index;
use crate::state::{Exception, Priv, State, Trap, ms};

/// Returned by `exec` instead of a pc when the outcome is in `State::flow` (pcs are even).
pub(crate) const EXIT: u64 = 1;

/// What an instruction did to the flow of control, when it is not "continue at this pc".
#[derive(Clone, Copy, Debug)]
pub(crate) enum Flow {
    /// Fall through to pc + len.
    Next,
    /// Taken branch or jump to this address.
    Jump(u64),
    /// Continue at this address, but leave the block first (state the loop caches changed).
    Sync(u64),
    /// Synchronous exception.
    Trap(Trap),
    /// Illegal instruction (the caller fetches the bits for mtval).
    Illegal,
    /// `wfi`; continue at this address once woken.
    Wfi(u64),
    /// `fence.i`: continue at this address after syncing the decode cache.
    FenceI(u64),
    /// The slot is not decoded yet.
    Decode,
    /// The instruction must run through the uncached path (it crosses a page).
    Slow,
    /// A Zicsr instruction (needs an exact instret; the loop runs it out of line).
    Csr,
}

/// Why `run_block` returned. `st.pc` is the pc to continue at (or the faulting pc).
pub(crate) enum BlockExit {
    Continue,
    Trap(Trap),
    Illegal,
    Wfi,
    FenceI,
    Slow,
}

/// Apply the extension filter to a freshly decoded instruction.
#[inline]
pub(crate) fn filter(st: &State, i: Insn, raw: u32) -> Insn {
    let ok = match i.op.ext() {
        Ext::I => true,
        Ext::M => st.ext.m,
        Ext::A => st.ext.a,
        Ext::F => st.ext.f,
        Ext::D => st.ext.d,
    } && (i.len == 4 || st.ext.c);
    if ok || i.op == Op::Illegal {
        i
    } else {
        Insn::illegal(raw, i.len)
    }
}

/// Decode the slot at page offset `off` from the page's host bytes.
#[cold]
fn decode_slot(st: &State, page: &DecodedPage, slot: &Cell<Packed>, off: u64, pc: u64) {
    let p = page.host.wrapping_add(off as usize);
    // SAFETY: `page.host` is the host address of a whole 4 KiB guest page that stays valid for
    // the machine's life (Bus contract) and `off` is an even offset below 4096.
    let lo = unsafe { p.cast::<u16>().read_unaligned() }.to_le();
    let (insn, raw) = if lo & 3 != 3 {
        (decode16(lo, st.xlen), lo as u32)
    } else if off + 4 > PAGE_SIZE {
        (Insn::new(Op::CrossPage, 0, 0, 0, 0, 4), 0)
    } else {
        // SAFETY: as above, and `off + 4 <= 4096`.
        let raw = unsafe { p.cast::<u32>().read_unaligned() }.to_le();
        (decode32(raw, st.xlen), raw)
    };
    let insn = filter(st, insn, raw);
    if st.trace.in_asm && insn.op != Op::CrossPage {
        tracing::info!(target: "in_asm", "{:#010x}: {}", pc, crate::disasm::Disasm { insn, pc, xlen: st.xlen });
    }
    slot.set(Packed::pack(&insn));
}

/// The decoded page for `pc` if the fetch TLB has it.
#[inline(always)]
fn fetch_hit<'c>(st: &State, code: &'c CodeCache, pc: u64) -> Option<&'c DecodedPage> {
    match st.tlb.fetch.get(tlb_index(pc)) {
        Some(e) if e.tag == pc & !PAGE_MASK => code.page(e.page),
        _ => None,
    }
}

/// Run pre-decoded instructions starting at `st.pc` (which the fetch TLB maps to `page_idx`).
#[inline(never)]
pub(crate) fn run_block<B: Bus, const RV32: bool, const CAREFUL: bool>(
    st: &mut State,
    code: &CodeCache,
    bus: &mut B,
    page_idx: u32,
) -> BlockExit {
    let Some(mut page) = code.page(page_idx) else {
        return BlockExit::Continue;
    };
    // The slot array, held directly so the loop does not reload it through `page`.
    let mut slots: &[Cell<Packed>; SLOTS] = &page.slots;
    let mut base = st.pc & !PAGE_MASK;
    // The loop walks slot indices; the pc is `base | idx << 1`, computed only where needed.
    let mut idx = ((st.pc & PAGE_MASK) >> 1) as usize;
    let mut n: u64 = 0;
    if CAREFUL && st.trace.exec {
        tracing::info!(target: "exec", "hart {}: block {:#x}", st.hart_id, st.pc);
    }
    // Where to continue when the loop exits through a jump or an explicit target.
    let mut target: Option<u64> = None;
    let exit = loop {
        let Some(slot) = slots.get(idx) else {
            // Sequential flow into the next page.
            let pc = base.wrapping_add((idx as u64) << 1);
            match fetch_hit(st, code, pc) {
                Some(p) => {
                    page = p;
                    slots = &p.slots;
                    base = pc & !PAGE_MASK;
                    idx = ((pc & PAGE_MASK) >> 1) as usize;
                    continue;
                }
                None => break BlockExit::Continue,
            }
        };
        let insn = slot.get();
        n = n.wrapping_add(1);
        let pc = base | ((idx as u64) << 1);
        // Two inlined copies of `exec`, one per encoding length: the sequential step is then a
        // constant on each (predicted) path instead of depending on the slot just loaded, which
        // lets the CPU fetch the next slot before this one is done.
        macro_rules! step {
            ($len:literal) => {{
                let npc = exec::<B, RV32, $len>(st, code, bus, insn, pc);
                let flow = if npc == pc.wrapping_add($len) {
                    Flow::Next
                } else if npc != EXIT {
                    Flow::Jump(npc)
                } else {
                    st.flow
                };
                match flow {
                    Flow::Next => {
                        idx += $len / 2;
                        if CAREFUL && n >= st.stop_at {
                            break BlockExit::Continue;
                        }
                    }
                    Flow::Jump(t) => {
                        if n >= st.stop_at {
                            target = Some(t);
                            break BlockExit::Continue;
                        }
                        if t & !PAGE_MASK != base {
                            match fetch_hit(st, code, t) {
                                Some(p) => {
                                    page = p;
                                    slots = &p.slots;
                                    base = t & !PAGE_MASK;
                                }
                                None => {
                                    target = Some(t);
                                    break BlockExit::Continue;
                                }
                            }
                        }
                        idx = ((t & PAGE_MASK) >> 1) as usize;
                        if CAREFUL && st.trace.exec {
                            tracing::info!(target: "exec", "hart {}: block {:#x}", st.hart_id, t);
                        }
                    }
                    Flow::Sync(t) => {
                        target = Some(t);
                        break BlockExit::Continue;
                    }
                    Flow::Trap(t) => {
                        n = n.wrapping_sub(1);
                        break BlockExit::Trap(t);
                    }
                    Flow::Illegal => {
                        n = n.wrapping_sub(1);
                        break BlockExit::Illegal;
                    }
                    Flow::Wfi(t) => {
                        target = Some(t);
                        break BlockExit::Wfi;
                    }
                    Flow::FenceI(t) => {
                        target = Some(t);
                        break BlockExit::FenceI;
                    }
                    Flow::Decode => {
                        n = n.wrapping_sub(1);
                        decode_slot(st, page, slot, (idx as u64) << 1, pc);
                    }
                    Flow::Slow => {
                        n = n.wrapping_sub(1);
                        break BlockExit::Slow;
                    }
                    Flow::Csr => {
                        // instret must count exactly the instructions before this one.
                        st.instret = st.instret.wrapping_add(n - 1);
                        st.stop_at = st.stop_at.saturating_sub(n - 1);
                        n = 1;
                        match exec_csr(st, bus, insn, pc) {
                            Flow::Next => idx += $len / 2,
                            Flow::Sync(t) => {
                                target = Some(t);
                                break BlockExit::Continue;
                            }
                            _ => {
                                n = 0;
                                break BlockExit::Illegal;
                            }
                        }
                    }
                }
            }};
        }
        if insn.is_compressed() {
            step!(2)
        } else {
            step!(4)
        }
    };
    st.pc = target.unwrap_or_else(|| base.wrapping_add((idx as u64) << 1));
    st.instret = st.instret.wrapping_add(n);
    exit
}

/// Execute one instruction outside the decode cache (code in MMIO, or crossing a page).
/// Returns how the outer loop must continue.
pub(crate) fn step_uncached<B: Bus, const RV32: bool>(
    st: &mut State,
    code: &CodeCache,
    bus: &mut B,
) -> BlockExit {
    let pc = st.pc;
    let raw = match st.fetch_slow(bus, pc) {
        Ok(r) => r,
        Err(t) => return BlockExit::Trap(t),
    };
    let insn = if raw & 3 == 3 {
        decode32(raw, st.xlen)
    } else {
        decode16(raw as u16, st.xlen)
    };
    let insn = Packed::pack(&filter(st, insn, raw));
    let npc = if insn.is_compressed() {
        exec::<B, RV32, 2>(st, code, bus, insn, pc)
    } else {
        exec::<B, RV32, 4>(st, code, bus, insn, pc)
    };
    let flow = match if npc == EXIT {
        st.flow
    } else {
        Flow::Jump(npc)
    } {
        Flow::Csr => exec_csr(st, bus, insn, pc),
        f => f,
    };
    let next = st.wrap(pc.wrapping_add(insn.length()));
    let (pc_after, exit) = match flow {
        Flow::Next => (next, BlockExit::Continue),
        Flow::Jump(t) | Flow::Sync(t) => (t, BlockExit::Continue),
        Flow::Wfi(t) => (t, BlockExit::Wfi),
        Flow::FenceI(t) => (t, BlockExit::FenceI),
        Flow::Trap(t) => return BlockExit::Trap(t),
        Flow::Illegal | Flow::Decode | Flow::Slow | Flow::Csr => return BlockExit::Illegal,
    };
    st.pc = pc_after;
    st.instret = st.instret.wrapping_add(1);
    exit
}

/// Zicsr instructions (Unprivileged ch. 9; access rules Privileged §2.1).
#[inline(never)]
pub(crate) fn exec_csr<B: Bus>(st: &mut State, bus: &mut B, i: Packed, pc: u64) -> Flow {
    let i = i.unpack();
    let n = i.csr();
    let imm_form = matches!(i.op, Op::Csrrwi | Op::Csrrsi | Op::Csrrci);
    let src = if imm_form {
        i.rs1 as u64
    } else {
        st.get_x(i.rs1)
    };
    let writes = match i.op {
        Op::Csrrw | Op::Csrrwi => true,
        _ => i.rs1 != 0,
    };
    if (n >> 8) & 3 > st.prv as u16 {
        return Flow::Illegal;
    }
    if writes && n >> 10 == 3 {
        return Flow::Illegal;
    }
    let mtime = if n & 0xf7f == crate::csr::TIME {
        bus.mtime()
    } else {
        0
    };
    let Ok(old) = st.csr_read(n, mtime) else {
        tracing::debug!(target: "unimp", "hart {}: csr {:#x} not implemented or not accessible", st.hart_id, n);
        return Flow::Illegal;
    };
    let next = st.wrap(pc.wrapping_add(i.len as u64));
    if writes {
        let new = match i.op {
            Op::Csrrw | Op::Csrrwi => src,
            Op::Csrrs | Op::Csrrsi => old | src,
            _ => old & !src,
        };
        if st.csr_write(n, new).is_err() {
            return Flow::Illegal;
        }
        let v = st.sx(old);
        st.set_x(i.rd, v);
        // Enables, translation or counters may have changed: leave the block.
        Flow::Sync(next)
    } else {
        let v = st.sx(old);
        st.set_x(i.rd, v);
        Flow::Next
    }
}

/// FP instructions. The FP unit (`fp.rs`) is not part of this crate yet: with mstatus.FS Off
/// every F/D instruction is illegal. When it lands this becomes a call into it.
#[inline(never)]
fn exec_fp<B: Bus>(st: &mut State, _bus: &mut B, _i: Insn) -> Flow {
    if !st.fp_enabled() {
        return Flow::Illegal;
    }
    Flow::Illegal
}

#[inline(always)]
fn mulh(a: i64, b: i64) -> u64 {
    ((a as i128 * b as i128) >> 64) as u64
}
#[inline(always)]
fn mulhu(a: u64, b: u64) -> u64 {
    ((a as u128 * b as u128) >> 64) as u64
}
#[inline(always)]
fn mulhsu(a: i64, b: u64) -> u64 {
    ((a as i128 * b as i128) >> 64) as u64
}
#[inline(always)]
fn div(a: i64, b: i64) -> u64 {
    if b == 0 {
        u64::MAX
    } else {
        a.wrapping_div(b) as u64
    }
}
#[inline(always)]
fn divu(a: u64, b: u64) -> u64 {
    a.checked_div(b).unwrap_or(u64::MAX)
}
#[inline(always)]
fn rem(a: i64, b: i64) -> u64 {
    if b == 0 {
        a as u64
    } else {
        a.wrapping_rem(b) as u64
    }
}
#[inline(always)]
fn remu(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { a % b }
}
#[inline(always)]
fn w(v: u64) -> u64 {
    v as i32 as i64 as u64
}

/// Execute one decoded instruction at `pc`.
#[inline(always)]
pub(crate) fn exec<B: Bus, const RV32: bool, const LEN: u64>(
    st: &mut State,
    code: &CodeCache,
    bus: &mut B,
    i: Packed,
    pc: u64,
) -> u64 {
    // Rare outcomes are parked in the state; the returned pc is then EXIT.
    macro_rules! out {
        ($f:expr) => {{
            st.flow = $f;
            EXIT
        }};
    }
    // RV32 registers hold sign-extended 32-bit values, so RV32 arithmetic is RV64's W form and
    // addresses are truncated to 32 bits.
    let sx = |v: u64| if RV32 { w(v) } else { v };
    let ea = |v: u64| if RV32 { v & 0xffff_ffff } else { v };
    let a = st.get_x(i.rs1());
    // rs2 is read only by the operations that use it (keeps the dispatch path short).
    macro_rules! b {
        () => {
            st.get_x(i.rs2())
        };
    }
    let imm = i.imm() as i64 as u64;
    let shmask = if RV32 { 31 } else { 63 };
    macro_rules! wr {
        ($v:expr) => {{
            let v = $v;
            st.set_x(i.rd(), v);
            pc.wrapping_add(LEN)
        }};
    }
    macro_rules! jump {
        ($t:expr) => {{
            let t: u64 = $t;
            if t & 2 != 0 && !st.ext.c {
                return out!(Flow::Trap(Trap::new(Exception::InsnMisaligned, t)));
            }
            t
        }};
    }
    macro_rules! branch {
        ($cond:expr) => {{
            if $cond {
                jump!(ea(pc.wrapping_add(imm)))
            } else {
                pc.wrapping_add(LEN)
            }
        }};
    }
    macro_rules! load {
        ($size:literal, $conv:expr) => {{
            match st.load::<B, $size>(bus, ea(a.wrapping_add(imm))) {
                Ok(v) => wr!($conv(v)),
                Err(t) => out!(Flow::Trap(t)),
            }
        }};
    }
    macro_rules! store {
        ($size:literal) => {{
            match st.store::<B, $size>(bus, code, ea(a.wrapping_add(imm)), b!()) {
                Ok(()) => pc.wrapping_add(LEN),
                Err(t) => out!(Flow::Trap(t)),
            }
        }};
    }
    macro_rules! amo {
        ($size:literal, $f:expr) => {{
            let f = $f;
            let rs2v = b!();
            match st.amo(bus, code, ea(a), $size, |old: u64| f(old, rs2v)) {
                Ok(old) => wr!(if $size == 4 { w(old) } else { old }),
                Err(t) => out!(Flow::Trap(t)),
            }
        }};
    }
    match i.op() {
        Op::Lui => wr!(imm),
        Op::Auipc => wr!(sx(pc.wrapping_add(imm))),
        Op::Jal => {
            let t = ea(pc.wrapping_add(imm));
            let link = sx(pc.wrapping_add(LEN));
            let f = jump!(t);
            st.set_x(i.rd(), link);
            f
        }
        Op::Jalr => {
            let t = ea(a.wrapping_add(imm)) & !1;
            let link = sx(pc.wrapping_add(LEN));
            let f = jump!(t);
            st.set_x(i.rd(), link);
            f
        }
        Op::Beq => branch!(a == b!()),
        Op::Bne => branch!(a != b!()),
        Op::Blt => branch!((a as i64) < (b!() as i64)),
        Op::Bge => branch!((a as i64) >= (b!() as i64)),
        Op::Bltu => branch!(a < b!()),
        Op::Bgeu => branch!(a >= b!()),
        Op::Lb => load!(1, |v: u64| v as i8 as i64 as u64),
        Op::Lh => load!(2, |v: u64| v as i16 as i64 as u64),
        Op::Lw => load!(4, |v: u64| v as i32 as i64 as u64),
        Op::Ld => load!(8, |v: u64| v),
        Op::Lbu => load!(1, |v: u64| v),
        Op::Lhu => load!(2, |v: u64| v),
        Op::Lwu => load!(4, |v: u64| v),
        Op::Sb => store!(1),
        Op::Sh => store!(2),
        Op::Sw => store!(4),
        Op::Sd => store!(8),
        Op::Addi => wr!(sx(a.wrapping_add(imm))),
        Op::Slti => wr!(((a as i64) < (imm as i64)) as u64),
        Op::Sltiu => wr!((a < imm) as u64),
        Op::Xori => wr!(a ^ imm),
        Op::Ori => wr!(a | imm),
        Op::Andi => wr!(a & imm),
        Op::Slli => wr!(sx(a << (imm & shmask))),
        Op::Srli => wr!(if RV32 {
            w((a as u32 >> (imm & 31)) as u64)
        } else {
            a >> (imm & 63)
        }),
        Op::Srai => wr!(if RV32 {
            ((a as i32) >> (imm & 31)) as i64 as u64
        } else {
            ((a as i64) >> (imm & 63)) as u64
        }),
        Op::Add => wr!(sx(a.wrapping_add(b!()))),
        Op::Sub => wr!(sx(a.wrapping_sub(b!()))),
        Op::Sll => wr!(sx(a << (b!() & shmask))),
        Op::Slt => wr!(((a as i64) < (b!() as i64)) as u64),
        Op::Sltu => wr!((a < b!()) as u64),
        Op::Xor => wr!(a ^ b!()),
        Op::Srl => wr!(if RV32 {
            w((a as u32 >> (b!() & 31)) as u64)
        } else {
            a >> (b!() & 63)
        }),
        Op::Sra => wr!(if RV32 {
            ((a as i32) >> (b!() & 31)) as i64 as u64
        } else {
            ((a as i64) >> (b!() & 63)) as u64
        }),
        Op::Or => wr!(a | b!()),
        Op::And => wr!(a & b!()),
        Op::Addiw => wr!(w(a.wrapping_add(imm))),
        Op::Slliw => wr!(w(a << (imm & 31))),
        Op::Srliw => wr!(w((a as u32 >> (imm & 31)) as u64)),
        Op::Sraiw => wr!(((a as i32) >> (imm & 31)) as i64 as u64),
        Op::Addw => wr!(w(a.wrapping_add(b!()))),
        Op::Subw => wr!(w(a.wrapping_sub(b!()))),
        Op::Sllw => wr!(w(a << (b!() & 31))),
        Op::Srlw => wr!(w((a as u32 >> (b!() & 31)) as u64)),
        Op::Sraw => wr!(((a as i32) >> (b!() & 31)) as i64 as u64),
        Op::Mul => wr!(sx(a.wrapping_mul(b!()))),
        Op::Mulh => wr!(if RV32 {
            w(((a as i32 as i64).wrapping_mul(b!() as i32 as i64) >> 32) as u64)
        } else {
            mulh(a as i64, b!() as i64)
        }),
        Op::Mulhsu => wr!(if RV32 {
            w(((a as i32 as i64).wrapping_mul(b!() as u32 as i64) >> 32) as u64)
        } else {
            mulhsu(a as i64, b!())
        }),
        Op::Mulhu => wr!(if RV32 {
            w((a as u32 as u64).wrapping_mul(b!() as u32 as u64) >> 32)
        } else {
            mulhu(a, b!())
        }),
        Op::Div => wr!(if RV32 {
            w(div(a as i32 as i64, b!() as i32 as i64))
        } else {
            div(a as i64, b!() as i64)
        }),
        Op::Divu => wr!(if RV32 {
            w(divu(a as u32 as u64, b!() as u32 as u64))
        } else {
            divu(a, b!())
        }),
        Op::Rem => wr!(if RV32 {
            w(rem(a as i32 as i64, b!() as i32 as i64))
        } else {
            rem(a as i64, b!() as i64)
        }),
        Op::Remu => wr!(if RV32 {
            w(remu(a as u32 as u64, b!() as u32 as u64))
        } else {
            remu(a, b!())
        }),
        Op::Mulw => wr!(w(a.wrapping_mul(b!()))),
        Op::Divw => wr!(w(div(a as i32 as i64, b!() as i32 as i64))),
        Op::Divuw => wr!(w(divu(a as u32 as u64, b!() as u32 as u64))),
        Op::Remw => wr!(w(rem(a as i32 as i64, b!() as i32 as i64))),
        Op::Remuw => wr!(w(remu(a as u32 as u64, b!() as u32 as u64))),
        Op::Fence => pc.wrapping_add(LEN),
        Op::FenceI => out!(Flow::FenceI(ea(pc.wrapping_add(LEN)))),
        Op::Ecall => {
            let cause = match st.prv {
                Priv::User => Exception::EcallU,
                Priv::Supervisor => Exception::EcallS,
                Priv::Machine => Exception::EcallM,
            };
            out!(Flow::Trap(Trap::new(cause, 0)))
        }
        Op::Ebreak => out!(Flow::Trap(Trap::new(Exception::Breakpoint, pc))),
        Op::Mret => {
            if st.prv != Priv::Machine {
                return out!(Flow::Illegal);
            }
            st.mret();
            out!(Flow::Sync(ea(st.pc)))
        }
        Op::Sret => {
            let tsr = st.mstatus & ms::TSR != 0;
            if !st.ext.s || st.prv == Priv::User || (st.prv == Priv::Supervisor && tsr) {
                return out!(Flow::Illegal);
            }
            st.sret();
            out!(Flow::Sync(ea(st.pc)))
        }
        Op::Wfi => {
            let tw = st.mstatus & ms::TW != 0;
            if (st.prv < Priv::Machine && tw) || (st.prv == Priv::User && st.ext.s) {
                return out!(Flow::Illegal);
            }
            out!(Flow::Wfi(ea(pc.wrapping_add(LEN))))
        }
        Op::SfenceVma => {
            let tvm = st.mstatus & ms::TVM != 0;
            if !st.ext.s || st.prv == Priv::User || (st.prv == Priv::Supervisor && tvm) {
                return out!(Flow::Illegal);
            }
            st.tlb.flush_all();
            out!(Flow::Sync(ea(pc.wrapping_add(LEN))))
        }
        Op::Csrrw | Op::Csrrs | Op::Csrrc | Op::Csrrwi | Op::Csrrsi | Op::Csrrci => out!(Flow::Csr),
        Op::LrW | Op::LrD => {
            let size = if i.op() == Op::LrW { 4 } else { 8 };
            match st.load_reserved(bus, ea(a), size) {
                Ok(v) => wr!(if size == 4 { w(v) } else { v }),
                Err(t) => out!(Flow::Trap(t)),
            }
        }
        Op::ScW | Op::ScD => {
            let size = if i.op() == Op::ScW { 4 } else { 8 };
            match st.store_conditional(bus, code, ea(a), size, b!()) {
                Ok(ok) => wr!((!ok) as u64),
                Err(t) => out!(Flow::Trap(t)),
            }
        }
        Op::AmoswapW => amo!(4, |_o: u64, b: u64| b),
        Op::AmoaddW => amo!(4, |o: u64, b: u64| o.wrapping_add(b)),
        Op::AmoxorW => amo!(4, |o: u64, b: u64| o ^ b),
        Op::AmoandW => amo!(4, |o: u64, b: u64| o & b),
        Op::AmoorW => amo!(4, |o: u64, b: u64| o | b),
        Op::AmominW => amo!(4, |o: u64, b: u64| (o as i32).min(b as i32) as u32 as u64),
        Op::AmomaxW => amo!(4, |o: u64, b: u64| (o as i32).max(b as i32) as u32 as u64),
        Op::AmominuW => amo!(4, |o: u64, b: u64| (o as u32).min(b as u32) as u64),
        Op::AmomaxuW => amo!(4, |o: u64, b: u64| (o as u32).max(b as u32) as u64),
        Op::AmoswapD => amo!(8, |_o: u64, b: u64| b),
        Op::AmoaddD => amo!(8, |o: u64, b: u64| o.wrapping_add(b)),
        Op::AmoxorD => amo!(8, |o: u64, b: u64| o ^ b),
        Op::AmoandD => amo!(8, |o: u64, b: u64| o & b),
        Op::AmoorD => amo!(8, |o: u64, b: u64| o | b),
        Op::AmominD => amo!(8, |o: u64, b: u64| (o as i64).min(b as i64) as u64),
        Op::AmomaxD => amo!(8, |o: u64, b: u64| (o as i64).max(b as i64) as u64),
        Op::AmominuD => amo!(8, |o: u64, b: u64| o.min(b)),
        Op::AmomaxuD => amo!(8, |o: u64, b: u64| o.max(b)),
        Op::Undecoded => out!(Flow::Decode),
        Op::CrossPage => out!(Flow::Slow),
        Op::Illegal => out!(Flow::Illegal),
        Op::Flw
        | Op::Fsw
        | Op::FmaddS
        | Op::FmsubS
        | Op::FnmsubS
        | Op::FnmaddS
        | Op::FaddS
        | Op::FsubS
        | Op::FmulS
        | Op::FdivS
        | Op::FsqrtS
        | Op::FsgnjS
        | Op::FsgnjnS
        | Op::FsgnjxS
        | Op::FminS
        | Op::FmaxS
        | Op::FcvtWS
        | Op::FcvtWuS
        | Op::FcvtLS
        | Op::FcvtLuS
        | Op::FmvXW
        | Op::FeqS
        | Op::FltS
        | Op::FleS
        | Op::FclassS
        | Op::FcvtSW
        | Op::FcvtSWu
        | Op::FcvtSL
        | Op::FcvtSLu
        | Op::FmvWX
        | Op::Fld
        | Op::Fsd
        | Op::FmaddD
        | Op::FmsubD
        | Op::FnmsubD
        | Op::FnmaddD
        | Op::FaddD
        | Op::FsubD
        | Op::FmulD
        | Op::FdivD
        | Op::FsqrtD
        | Op::FsgnjD
        | Op::FsgnjnD
        | Op::FsgnjxD
        | Op::FminD
        | Op::FmaxD
        | Op::FcvtSD
        | Op::FcvtDS
        | Op::FeqD
        | Op::FltD
        | Op::FleD
        | Op::FclassD
        | Op::FcvtWD
        | Op::FcvtWuD
        | Op::FcvtLD
        | Op::FcvtLuD
        | Op::FmvXD
        | Op::FcvtDW
        | Op::FcvtDWu
        | Op::FcvtDL
        | Op::FcvtDLu
        | Op::FmvDX => {
            let f = exec_fp(st, bus, i.unpack());
            out!(f)
        }
    }
}

/// The instruction bits at `pc` for mtval on illegal-instruction traps (0 if unreadable).
pub(crate) fn insn_bits<B: Bus>(st: &mut State, bus: &mut B, pc: u64) -> u64 {
    let prv_xlen = st.xlen;
    let bits = st.fetch_slow(bus, pc).unwrap_or(0) as u64;
    if prv_xlen == Xlen::Rv32 {
        bits & 0xffff_ffff
    } else {
        bits
    }
}
