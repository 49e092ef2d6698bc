//! The interpreter: executes pre-decoded instructions from the decode cache (RISC-V Unprivileged
//! ISA 20191213 ch. 2 RV32I, 5 RV64I, 7 M, 8 A, 9 Zicsr; Privileged ISA 20211203 §3.3).
//!
//! `run_block` runs from the current pc through the hart's decoded pages until something needs
//! the outer loop: a fetch-TLB miss, a trap, a CSR write or other synchronisation point, or the
//! budget (checked only at taken branches and page crossings unless `CAREFUL`). The instruction
//! semantics live in one `exec` function that both the block loop and the uncached single-step
//! path use; F/D instructions go out of line to `exec_fp`.

use std::cell::Cell;

use crate::Bus;
use crate::code::{CodeCache, DecodedPage, PAGE_MASK, PAGE_SIZE, SLOTS};
use crate::decode::{decode16, decode32};
use crate::fp::{self, Rm};
use crate::insn::{Ext, Insn, Op, Packed, Xlen};
use crate::mem::tlb_index;
use crate::state::{Exception, Priv, State, Trap, ms};

/// The 12-bit immediate field of `pause` (`fence w, 0`: fm = 0, pred = W, succ = 0).
const PAUSE_IMM: i32 = 0x010;

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
    /// A spin-wait hint (`pause`, a polling `amoswap`): continue at this address, after giving
    /// other harts a turn.
    Pause(u64),
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
    /// A spin-wait hint retired: the hart is spinning, let the others run.
    Yield,
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
            // Sequential flow into the next page: a budget check point too, so straight-line
            // code never runs more than one page past `stop_at`.
            if n >= st.stop_at {
                break BlockExit::Continue;
            }
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
                        // With `st.deferred` set this is not a trap but a deferred bus access
                        // (see `State::bus_read`); the outer loop re-runs it uncached.
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
                    Flow::Pause(t) => {
                        target = Some(t);
                        break BlockExit::Yield;
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
                            Flow::Next => {
                                idx += $len / 2;
                                if CAREFUL && n >= st.stop_at {
                                    break BlockExit::Continue;
                                }
                            }
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
    // `instret` is exact here: data bus accesses are made, not deferred.
    st.uncached = true;
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
    st.uncached = false;
    let next = st.wrap(pc.wrapping_add(insn.length()));
    let (pc_after, exit) = match flow {
        Flow::Next => (next, BlockExit::Continue),
        Flow::Jump(t) | Flow::Sync(t) => (t, BlockExit::Continue),
        Flow::Wfi(t) => (t, BlockExit::Wfi),
        Flow::Pause(t) => (t, BlockExit::Yield),
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
    // `time` reads need the platform timer; so does mip/sip with Sstc on, whose STIP is
    // `time >= stimecmp` now, not as of the last check.
    let timed = n & 0xf7f == crate::csr::TIME
        || (st.sstc_active() && matches!(n, crate::csr::MIP | crate::csr::SIP));
    let mtime = if timed {
        let t = st.bus_mtime(bus);
        st.sstc_update(t);
        t
    } else {
        0
    };
    let Ok(old) = st.csr_read(n, mtime) else {
        tracing::debug!(target: "unimp", "hart {}: csr {:#x} not implemented or not accessible", st.hart_id, n);
        return Flow::Illegal;
    };
    let next = st.wrap(pc.wrapping_add(i.len as u64));
    if writes {
        let base = st.csr_rmw_base(n, old);
        let new = match i.op {
            Op::Csrrw | Op::Csrrwi => src,
            Op::Csrrs | Op::Csrrsi => base | src,
            _ => base & !src,
        };
        if st.csr_write(n, new).is_err() {
            return Flow::Illegal;
        }
        if matches!(
            n,
            crate::csr::STIMECMP
                | crate::csr::STIMECMPH
                | crate::csr::MENVCFG
                | crate::csr::MENVCFGH
        ) && st.sstc_active()
        {
            // A new deadline (or the comparator just switched on) takes effect at once; one
            // still ahead ends the run so the caller can cut the next slice at it.
            let t = st.bus_mtime(bus);
            st.sstc_update(t);
            st.timer_armed = st.sstc_wakeup().is_some();
        }
        let v = st.sx(old);
        st.set_x(i.rd, v);
        // Enables, translation or counters may have changed: leave the block.
        Flow::Sync(next)
    } else {
        let v = st.sx(old);
        st.set_x(i.rd, v);
        // A guest polling mip/sip while the main loop has an interrupt to deliver: leave the
        // block so `run` can return (see `Hart::set_kick`).
        if matches!(n, crate::csr::MIP | crate::csr::SIP) && st.kicked() {
            return Flow::Sync(next);
        }
        Flow::Next
    }
}

/// The upper half of a NaN-boxed binary32 value in a 64-bit f register (Unprivileged ISA
/// §12.2).
const NAN_BOX: u64 = 0xffff_ffff_0000_0000;

/// A binary32 operand: the low half of a properly NaN-boxed register, else the canonical NaN.
#[inline(always)]
fn unbox(v: u64) -> u32 {
    if v & NAN_BOX == NAN_BOX {
        v as u32
    } else {
        fp::F32_NAN
    }
}

/// F and D instructions (Unprivileged ISA 20191213 ch. 11-12): `mstatus.FS` gating, NaN-boxing,
/// dynamic rounding (`rm` = 7 takes `frm`; a reserved mode is illegal even when the result
/// would be exact), `fflags` accrual and FS = Dirty on any FP state change. Kept out of line
/// (and returning a `Flow`, which the caller parks in the state) so the integer loop's
/// register allocation does not carry it.
#[inline(never)]
fn exec_fp<B: Bus, const RV32: bool>(
    st: &mut State,
    code: &CodeCache,
    bus: &mut B,
    i: Packed,
) -> Flow {
    let next = Flow::Next;
    macro_rules! out {
        ($f:expr) => {{ $f }};
    }
    if st.mstatus & ms::FS == 0 {
        return out!(Flow::Illegal);
    }
    // Operations without a rounding mode decode with rm = 0, so only DYN consults frm.
    let rm = match i.rm() {
        7 => (st.fcsr >> 5) & 7,
        r => r as u32,
    };
    let Some(rm) = Rm::from_bits(rm) else {
        return out!(Flow::Illegal);
    };
    let (rd, r1, r2, r3) = (i.rd(), i.rs1(), i.rs2(), i.rs3());
    let x1 = st.get_x(r1);
    // Operand readers: binary64, binary32 (unboxed) and raw register bits.
    macro_rules! d {
        ($r:expr) => {
            st.get_f($r)
        };
    }
    macro_rules! s {
        ($r:expr) => {
            unbox(st.get_f($r))
        };
    }
    // Result writers: f register (binary64 / NaN-boxed binary32) or x register, with flags.
    macro_rules! accrue {
        ($fl:expr) => {{
            let fl: u8 = $fl;
            if fl != 0 {
                st.fcsr |= fl as u32;
                st.mstatus |= ms::FS;
            }
        }};
    }
    macro_rules! wd {
        ($r:expr) => {{
            let (v, fl): (u64, u8) = $r;
            st.set_f(rd, v);
            st.fcsr |= fl as u32;
            st.mstatus |= ms::FS;
            next
        }};
    }
    macro_rules! ws {
        ($r:expr) => {{
            let (v, fl): (u32, u8) = $r;
            st.set_f(rd, NAN_BOX | v as u64);
            st.fcsr |= fl as u32;
            st.mstatus |= ms::FS;
            next
        }};
    }
    macro_rules! wx {
        ($r:expr) => {{
            let (v, fl): (u64, u8) = $r;
            st.set_x(rd, v);
            accrue!(fl);
            next
        }};
    }
    macro_rules! cmp {
        ($r:expr) => {{
            let (b, fl): (bool, u8) = $r;
            wx!((b as u64, fl))
        }};
    }
    let ea = |v: u64| if RV32 { v & 0xffff_ffff } else { v };
    let addr = ea(x1.wrapping_add(i.imm() as i64 as u64));
    let sx32 = |v: u32| v as i32 as i64 as u64;
    match i.op() {
        Op::Flw => match st.load::<B, 4>(bus, addr) {
            Ok(v) => wd!((NAN_BOX | v, 0)),
            Err(t) => out!(Flow::Trap(t)),
        },
        Op::Fld => match st.load::<B, 8>(bus, addr) {
            Ok(v) => wd!((v, 0)),
            Err(t) => out!(Flow::Trap(t)),
        },
        // Stores move the register bits unchanged (FSW: the low 32, boxed or not).
        Op::Fsw => match st.store::<B, 4>(bus, code, addr, d!(r2)) {
            Ok(()) => next,
            Err(t) => out!(Flow::Trap(t)),
        },
        Op::Fsd => match st.store::<B, 8>(bus, code, addr, d!(r2)) {
            Ok(()) => next,
            Err(t) => out!(Flow::Trap(t)),
        },
        Op::FmaddS => ws!(fp::f32_madd(s!(r1), s!(r2), s!(r3), rm)),
        Op::FmsubS => ws!(fp::f32_msub(s!(r1), s!(r2), s!(r3), rm)),
        Op::FnmsubS => ws!(fp::f32_nmsub(s!(r1), s!(r2), s!(r3), rm)),
        Op::FnmaddS => ws!(fp::f32_nmadd(s!(r1), s!(r2), s!(r3), rm)),
        Op::FaddS => ws!(fp::f32_add(s!(r1), s!(r2), rm)),
        Op::FsubS => ws!(fp::f32_sub(s!(r1), s!(r2), rm)),
        Op::FmulS => ws!(fp::f32_mul(s!(r1), s!(r2), rm)),
        Op::FdivS => ws!(fp::f32_div(s!(r1), s!(r2), rm)),
        Op::FsqrtS => ws!(fp::f32_sqrt(s!(r1), rm)),
        Op::FsgnjS => ws!((fp::f32_sgnj(s!(r1), s!(r2)), 0)),
        Op::FsgnjnS => ws!((fp::f32_sgnjn(s!(r1), s!(r2)), 0)),
        Op::FsgnjxS => ws!((fp::f32_sgnjx(s!(r1), s!(r2)), 0)),
        Op::FminS => ws!(fp::f32_min(s!(r1), s!(r2))),
        Op::FmaxS => ws!(fp::f32_max(s!(r1), s!(r2))),
        Op::FcvtWS => {
            let (v, fl) = fp::f32_to_i32(s!(r1), rm);
            wx!((v as i64 as u64, fl))
        }
        Op::FcvtWuS => {
            let (v, fl) = fp::f32_to_u32(s!(r1), rm);
            wx!((sx32(v), fl))
        }
        Op::FcvtLS => {
            let (v, fl) = fp::f32_to_i64(s!(r1), rm);
            wx!((v as u64, fl))
        }
        Op::FcvtLuS => wx!(fp::f32_to_u64(s!(r1), rm)),
        Op::FmvXW => wx!((sx32(d!(r1) as u32), 0)),
        Op::FeqS => cmp!(fp::f32_eq(s!(r1), s!(r2))),
        Op::FltS => cmp!(fp::f32_lt(s!(r1), s!(r2))),
        Op::FleS => cmp!(fp::f32_le(s!(r1), s!(r2))),
        Op::FclassS => wx!((fp::f32_class(s!(r1)) as u64, 0)),
        Op::FcvtSW => ws!(fp::i32_to_f32(x1 as i32, rm)),
        Op::FcvtSWu => ws!(fp::u32_to_f32(x1 as u32, rm)),
        Op::FcvtSL => ws!(fp::i64_to_f32(x1 as i64, rm)),
        Op::FcvtSLu => ws!(fp::u64_to_f32(x1, rm)),
        Op::FmvWX => ws!((x1 as u32, 0)),
        Op::FmaddD => wd!(fp::f64_madd(d!(r1), d!(r2), d!(r3), rm)),
        Op::FmsubD => wd!(fp::f64_msub(d!(r1), d!(r2), d!(r3), rm)),
        Op::FnmsubD => wd!(fp::f64_nmsub(d!(r1), d!(r2), d!(r3), rm)),
        Op::FnmaddD => wd!(fp::f64_nmadd(d!(r1), d!(r2), d!(r3), rm)),
        Op::FaddD => wd!(fp::f64_add(d!(r1), d!(r2), rm)),
        Op::FsubD => wd!(fp::f64_sub(d!(r1), d!(r2), rm)),
        Op::FmulD => wd!(fp::f64_mul(d!(r1), d!(r2), rm)),
        Op::FdivD => wd!(fp::f64_div(d!(r1), d!(r2), rm)),
        Op::FsqrtD => wd!(fp::f64_sqrt(d!(r1), rm)),
        Op::FsgnjD => wd!((fp::f64_sgnj(d!(r1), d!(r2)), 0)),
        Op::FsgnjnD => wd!((fp::f64_sgnjn(d!(r1), d!(r2)), 0)),
        Op::FsgnjxD => wd!((fp::f64_sgnjx(d!(r1), d!(r2)), 0)),
        Op::FminD => wd!(fp::f64_min(d!(r1), d!(r2))),
        Op::FmaxD => wd!(fp::f64_max(d!(r1), d!(r2))),
        Op::FcvtSD => ws!(fp::f64_to_f32(d!(r1), rm)),
        Op::FcvtDS => wd!(fp::f32_to_f64(s!(r1))),
        Op::FeqD => cmp!(fp::f64_eq(d!(r1), d!(r2))),
        Op::FltD => cmp!(fp::f64_lt(d!(r1), d!(r2))),
        Op::FleD => cmp!(fp::f64_le(d!(r1), d!(r2))),
        Op::FclassD => wx!((fp::f64_class(d!(r1)) as u64, 0)),
        Op::FcvtWD => {
            let (v, fl) = fp::f64_to_i32(d!(r1), rm);
            wx!((v as i64 as u64, fl))
        }
        Op::FcvtWuD => {
            let (v, fl) = fp::f64_to_u32(d!(r1), rm);
            wx!((sx32(v), fl))
        }
        Op::FcvtLD => {
            let (v, fl) = fp::f64_to_i64(d!(r1), rm);
            wx!((v as u64, fl))
        }
        Op::FcvtLuD => wx!(fp::f64_to_u64(d!(r1), rm)),
        Op::FmvXD => wx!((d!(r1), 0)),
        Op::FcvtDW => wd!(fp::i32_to_f64(x1 as i32, rm)),
        Op::FcvtDWu => wd!(fp::u32_to_f64(x1 as u32, rm)),
        Op::FcvtDL => wd!(fp::i64_to_f64(x1 as i64, rm)),
        Op::FcvtDLu => wd!(fp::u64_to_f64(x1, rm)),
        Op::FmvDX => wd!((x1, 0)),
        // Only F/D operations are dispatched here.
        _ => out!(Flow::Illegal),
    }
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
    // A swap that leaves memory as it was is a poll (`while (!xchg(&flag, 0))`, OpenSBI's
    // wait for a remote fence): a spin, like `pause`.
    macro_rules! amoswap {
        ($size:literal) => {{
            let rs2v = b!();
            match st.amo(bus, code, ea(a), $size, |_old: u64| rs2v) {
                Ok(old) => {
                    let same = if $size == 4 {
                        old as u32 == rs2v as u32
                    } else {
                        old == rs2v
                    };
                    let next = wr!(if $size == 4 { w(old) } else { old });
                    if same && st.yield_on_spin {
                        out!(Flow::Pause(ea(next)))
                    } else {
                        next
                    }
                }
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
        Op::Fence => {
            // `pause` is the FENCE hint with pred = W, succ = 0, fm = 0 and x0 operands: a
            // spin-wait loop. With other harts taking turns on this thread, spinning out the
            // rest of the slice only delays the hart being waited for.
            if i.imm() == PAUSE_IMM && i.rd() == 0 && i.rs1() == 0 && st.yield_on_spin {
                return out!(Flow::Pause(ea(pc.wrapping_add(LEN))));
            }
            pc.wrapping_add(LEN)
        }
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
        Op::AmoswapW => amoswap!(4),
        Op::AmoaddW => amo!(4, |o: u64, b: u64| o.wrapping_add(b)),
        Op::AmoxorW => amo!(4, |o: u64, b: u64| o ^ b),
        Op::AmoandW => amo!(4, |o: u64, b: u64| o & b),
        Op::AmoorW => amo!(4, |o: u64, b: u64| o | b),
        Op::AmominW => amo!(4, |o: u64, b: u64| (o as i32).min(b as i32) as u32 as u64),
        Op::AmomaxW => amo!(4, |o: u64, b: u64| (o as i32).max(b as i32) as u32 as u64),
        Op::AmominuW => amo!(4, |o: u64, b: u64| (o as u32).min(b as u32) as u64),
        Op::AmomaxuW => amo!(4, |o: u64, b: u64| (o as u32).max(b as u32) as u64),
        Op::AmoswapD => amoswap!(8),
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
            let f = exec_fp::<B, RV32>(st, code, bus, i);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csr;
    use crate::state::{Extensions, HartConfig, irq};
    use crate::{BusError, HostPage};

    /// A bus with nothing on it (the FP tests below touch no memory).
    struct NoBus;

    impl Bus for NoBus {
        fn host_page(&mut self, _paddr: u64) -> Option<HostPage> {
            None
        }
        fn read(&mut self, _paddr: u64, _size: u8) -> Result<u64, BusError> {
            Err(BusError::Unmapped)
        }
        fn write(&mut self, _paddr: u64, _size: u8, _value: u64) -> Result<(), BusError> {
            Err(BusError::Unmapped)
        }
        fn mtime(&mut self) -> u64 {
            0
        }
    }

    // Encodings (from the GNU assembler).
    const FADD_D: u32 = 0x02c5_f553; // fadd.d fa0, fa1, fa2 (dyn)
    const FADD_S: u32 = 0x00c5_f553; // fadd.s fa0, fa1, fa2 (dyn)
    const FADD_S_RTZ: u32 = 0x00c5_9553; // fadd.s fa0, fa1, fa2, rtz
    const FADD_D_RMM: u32 = 0x02c5_c553; // fadd.d fa0, fa1, fa2, rmm
    const FMV_W_X: u32 = 0xf005_0553; // fmv.w.x fa0, a0
    const FMV_X_W: u32 = 0xe005_8553; // fmv.x.w a0, fa1
    const FMV_X_D: u32 = 0xe205_0553; // fmv.x.d a0, fa0
    const FEQ_S: u32 = 0xa0c5_a553; // feq.s a0, fa1, fa2
    const FCLASS_S: u32 = 0xe005_9553; // fclass.s a0, fa1
    const FSGNJ_S: u32 = 0x20c5_8553; // fsgnj.s fa0, fa1, fa2
    const FDIV_D: u32 = 0x1ac5_f553; // fdiv.d fa0, fa1, fa2 (dyn)
    const FCVT_D_S_DYN: u32 = 0x4205_f553; // fcvt.d.s fa0, fa1, dyn (always exact)
    const FCVT_D_W_DYN: u32 = 0xd205_7553; // fcvt.d.w fa0, a0, dyn (always exact)
    const FCVT_D_S: u32 = 0x4205_8553; // fcvt.d.s fa0, fa1 (rne)
    const FCVT_W_S_RTZ: u32 = 0xc005_9553; // fcvt.w.s a0, fa1, rtz
    const FCVT_WU_S_RTZ: u32 = 0xc015_9553; // fcvt.wu.s a0, fa1, rtz
    const FMADD_S: u32 = 0x68c5_f543; // fmadd.s fa0, fa1, fa2, fa3 (dyn)
    const FMIN_D: u32 = 0x2ac5_8553; // fmin.d fa0, fa1, fa2

    const FA0: usize = 10;
    const FA1: usize = 11;
    const FA2: usize = 12;
    const FA3: usize = 13;
    const A0: usize = 10;

    const ONE_D: u64 = 0x3ff0_0000_0000_0000;
    const TWO_D: u64 = 0x4000_0000_0000_0000;
    const ONE_S: u64 = 0xffff_ffff_3f80_0000;
    const TWO_S: u64 = 0xffff_ffff_4000_0000;

    fn fp_state(xlen: Xlen) -> State {
        let mut config = match xlen {
            Xlen::Rv64 => HartConfig::rv64(0, 0x8000_0000),
            Xlen::Rv32 => HartConfig::rv32(0, 0x8000_0000),
        };
        config.extensions = Extensions::GCSU;
        State::new(config)
    }

    /// An FP-enabled RV64 hart with mstatus.FS = `fs`.
    fn fp_on(fs: u64) -> State {
        let mut st = fp_state(Xlen::Rv64);
        assert!(st.csr_write(csr::MSTATUS, fs << 13).is_ok());
        st
    }

    fn fs(st: &State) -> u64 {
        (st.mstatus >> 13) & 3
    }

    /// Run one instruction; `true` if it completed, `false` if it is an illegal instruction.
    fn run(st: &mut State, word: u32) -> bool {
        let insn = filter(st, decode32(word, st.xlen), word);
        let code = CodeCache::default();
        let npc = if st.rv32() {
            exec::<NoBus, true, 4>(st, &code, &mut NoBus, Packed::pack(&insn), 0x1000)
        } else {
            exec::<NoBus, false, 4>(st, &code, &mut NoBus, Packed::pack(&insn), 0x1000)
        };
        match npc {
            0x1004 => true,
            EXIT => match st.flow {
                Flow::Next => true,
                Flow::Illegal => false,
                f => panic!("{word:#010x}: unexpected {f:?}"),
            },
            other => panic!("{word:#010x}: jumped to {other:#x}"),
        }
    }

    fn fflags(st: &State) -> u32 {
        st.fcsr & 0x1f
    }

    #[test]
    fn test_fs_off_makes_every_fp_instruction_and_csr_illegal() {
        let mut st = fp_state(Xlen::Rv64);
        assert_eq!(fs(&st), 0, "FS is Off at reset");
        st.f[FA1] = ONE_D;
        st.f[FA2] = TWO_D;
        for w in [
            FADD_D, FADD_S, FMV_W_X, FMV_X_W, FEQ_S, FCLASS_S, FSGNJ_S, FCVT_D_S,
        ] {
            assert!(!run(&mut st, w), "{w:#010x} with FS Off");
        }
        assert_eq!(st.f[FA0], 0, "nothing written");
        assert_eq!(st.x[A0], 0);
        for n in [csr::FFLAGS, csr::FRM, csr::FCSR] {
            assert!(st.csr_read(n, 0).is_err());
            assert!(st.csr_write(n, 0).is_err());
        }
        assert_eq!(fs(&st), 0, "the traps did not enable it");
        // FS = Initial: usable; the first write makes it Dirty and sets SD.
        assert!(st.csr_write(csr::MSTATUS, 1 << 13).is_ok());
        assert_eq!(fs(&st), 1);
        assert!(run(&mut st, FADD_D));
        assert_eq!(st.f[FA0], 0x4008_0000_0000_0000);
        assert_eq!(fs(&st), 3);
        assert_eq!(st.csr_read(csr::MSTATUS, 0).ok().map(|v| v >> 63), Some(1));
        assert_eq!(
            st.csr_read(csr::SSTATUS, 0)
                .ok()
                .map(|v| (v >> 63, (v >> 13) & 3)),
            Some((1, 3)),
            "sstatus mirrors FS and SD"
        );
        // Back to Off: the registers survive, the instructions trap again.
        assert!(st.csr_write(csr::SSTATUS, 0).is_ok());
        assert_eq!(fs(&st), 0, "FS written through sstatus");
        assert!(!run(&mut st, FMV_X_D));
        assert_eq!(st.f[FA0], 0x4008_0000_0000_0000);
    }

    #[test]
    fn test_rv32_sd_bit_and_fs_without_f() {
        let mut st = fp_state(Xlen::Rv32);
        assert!(st.csr_write(csr::MSTATUS, 3 << 13).is_ok());
        assert_eq!(
            st.csr_read(csr::MSTATUS, 0).ok().map(|v| v >> 31),
            Some(1),
            "SD is bit 31 on RV32"
        );
        // Without F, FS is read-only zero and misa has neither F nor D.
        let mut plain = State::new(HartConfig::rv64(0, 0));
        assert!(plain.csr_write(csr::MSTATUS, 3 << 13).is_ok());
        assert_eq!(fs(&plain), 0);
        let misa = plain.csr_read(csr::MISA, 0).ok().unwrap_or(0);
        assert_eq!(misa & 0x28, 0);
        let misa = st.csr_read(csr::MISA, 0).ok().unwrap_or(0);
        assert_eq!(misa & 0x28, 0x28, "F and D advertised");
        // The F/D decode is refused without the extensions.
        assert!(!run(&mut plain, FADD_D));
    }

    #[test]
    fn test_only_fp_state_changes_dirty_fs() {
        let mut st = fp_on(2); // Clean
        st.f[FA1] = ONE_S;
        st.f[FA2] = TWO_S;
        for w in [FMV_X_W, FEQ_S, FCLASS_S, FCVT_W_S_RTZ, FMV_X_D] {
            assert!(run(&mut st, w));
            assert_eq!(fs(&st), 2, "{w:#010x} only reads FP state");
        }
        assert!(st.csr_read(csr::FCSR, 0).is_ok());
        assert_eq!(fs(&st), 2, "CSR reads do not dirty");
        // An integer-result instruction that raises a flag changes FP state.
        st.f[FA1] = 0xffff_ffff_7f80_0001; // sNaN
        assert!(run(&mut st, FEQ_S));
        assert_eq!(fflags(&st), fp::NV as u32);
        assert_eq!(fs(&st), 3);
        for w in [FSGNJ_S, FMV_W_X, FADD_S] {
            st.mstatus = (st.mstatus & !ms::FS) | (2 << 13);
            assert!(run(&mut st, w));
            assert_eq!(fs(&st), 3, "{w:#010x} writes an f register");
        }
        st.mstatus = (st.mstatus & !ms::FS) | (2 << 13);
        assert!(st.csr_write(csr::FFLAGS, 0).is_ok());
        assert_eq!(fs(&st), 3, "fflags written");
    }

    #[test]
    fn test_nan_boxing() {
        let mut st = fp_on(1);
        // Writes of binary32 results set the upper 32 bits.
        st.x[A0] = 0x1234_5678_cafe_babe;
        assert!(run(&mut st, FMV_W_X));
        assert_eq!(st.f[FA0], 0xffff_ffff_cafe_babe);
        // fmv.x.w moves the low 32 bits, sign-extended, boxed or not.
        st.f[FA1] = 0x0000_0000_bf80_0000;
        assert!(run(&mut st, FMV_X_W));
        assert_eq!(st.x[A0], 0xffff_ffff_bf80_0000);
        // Arithmetic reads an unboxed operand as the canonical NaN (quiet: no NV).
        st.f[FA1] = 0x0000_0000_3f80_0000;
        st.f[FA2] = ONE_S;
        assert!(run(&mut st, FADD_S));
        assert_eq!(st.f[FA0], 0xffff_ffff_7fc0_0000);
        assert_eq!(fflags(&st), 0);
        st.f[FA1] = 0xffff_fffe_3f80_0000; // almost boxed
        assert!(run(&mut st, FADD_S));
        assert_eq!(st.f[FA0], 0xffff_ffff_7fc0_0000);
        // Sign injection too (canonical NaN with rs2's sign), and fclass/feq.
        st.f[FA2] = 0xffff_ffff_bf80_0000;
        assert!(run(&mut st, FSGNJ_S));
        assert_eq!(st.f[FA0], 0xffff_ffff_ffc0_0000);
        assert!(run(&mut st, FCLASS_S));
        assert_eq!(st.x[A0], 1 << 9);
        assert!(run(&mut st, FEQ_S));
        assert_eq!(st.x[A0], 0);
        // fcvt.d.s of an unboxed value: the canonical binary64 NaN.
        assert!(run(&mut st, FCVT_D_S));
        assert_eq!(st.f[FA0], fp::F64_NAN);
        assert_eq!(fflags(&st), 0);
        // Double operations see the raw 64 bits: a boxed single is a NaN to them.
        st.f[FA1] = ONE_S;
        st.f[FA2] = ONE_D;
        assert!(run(&mut st, FMIN_D));
        assert_eq!(st.f[FA0], ONE_D);
    }

    #[test]
    fn test_reserved_rounding_modes_are_illegal() {
        let mut st = fp_on(1);
        st.f[FA1] = ONE_S;
        st.f[FA2] = TWO_S;
        st.f[FA3] = ONE_S;
        for frm in [5u64, 6, 7] {
            assert!(st.csr_write(csr::FRM, frm).is_ok());
            st.f[FA0] = 0;
            for w in [FADD_S, FADD_D, FMADD_S, FDIV_D, FCVT_D_S_DYN, FCVT_D_W_DYN] {
                assert!(!run(&mut st, w), "{w:#010x} with frm = {frm}");
            }
            assert_eq!(st.f[FA0], 0, "nothing written");
            assert_eq!(fflags(&st), 0, "no flags");
            // A static rounding mode, or none at all, is fine.
            for w in [FADD_S_RTZ, FADD_D_RMM, FCVT_D_S, FSGNJ_S, FEQ_S, FMV_X_W] {
                assert!(run(&mut st, w), "{w:#010x} with frm = {frm}");
            }
        }
        assert!(st.csr_write(csr::FRM, 4).is_ok());
        assert!(run(&mut st, FADD_S), "RMM is a valid frm");
        // A reserved static rm (5, 6) is an illegal encoding.
        assert_eq!(decode32(0x00c5_d553, Xlen::Rv64).op, Op::Illegal);
        assert_eq!(decode32(0x00c5_e553, Xlen::Rv64).op, Op::Illegal);
    }

    #[test]
    fn test_dynamic_rounding_follows_frm() {
        let mut st = fp_on(1);
        st.f[FA1] = ONE_D;
        st.f[FA2] = 0x4008_0000_0000_0000; // 3.0
        for (frm, want) in [
            (0, 0x3fd5_5555_5555_5555u64),
            (1, 0x3fd5_5555_5555_5555),
            (2, 0x3fd5_5555_5555_5555),
            (3, 0x3fd5_5555_5555_5556),
            (4, 0x3fd5_5555_5555_5555),
        ] {
            assert!(st.csr_write(csr::FRM, frm).is_ok());
            assert!(run(&mut st, FDIV_D));
            assert_eq!(st.f[FA0], want, "frm = {frm}");
        }
    }

    #[test]
    fn test_fflags_accrue() {
        let mut st = fp_on(1);
        st.f[FA1] = ONE_D;
        st.f[FA2] = 0;
        assert!(run(&mut st, FDIV_D)); // 1 / 0
        assert_eq!(st.f[FA0], 0x7ff0_0000_0000_0000);
        assert_eq!(fflags(&st), fp::DZ as u32);
        st.f[FA2] = 0x4008_0000_0000_0000;
        assert!(run(&mut st, FDIV_D)); // 1 / 3
        assert_eq!(fflags(&st), (fp::DZ | fp::NX) as u32);
        st.f[FA2] = ONE_D;
        assert!(run(&mut st, FADD_D)); // exact: nothing cleared, nothing added
        assert_eq!(fflags(&st), (fp::DZ | fp::NX) as u32);
        st.f[FA1] = 0x7ff0_0000_0000_0001; // sNaN
        assert!(run(&mut st, FMIN_D));
        assert_eq!(st.f[FA0], ONE_D);
        assert_eq!(st.csr_read(csr::FFLAGS, 0).ok(), Some(0x19));
        assert!(st.csr_write(csr::FRM, 2).is_ok());
        assert_eq!(
            st.csr_read(csr::FCSR, 0).ok(),
            Some(0x59),
            "frm << 5 | fflags"
        );
        assert!(st.csr_write(csr::FFLAGS, 0).is_ok());
        assert_eq!(st.csr_read(csr::FCSR, 0).ok(), Some(0x40));
    }

    #[test]
    fn test_fp_to_int_results_are_sign_extended_to_xlen() {
        for xlen in [Xlen::Rv64, Xlen::Rv32] {
            let mut st = fp_state(xlen);
            assert!(st.csr_write(csr::MSTATUS, 1 << 13).is_ok());
            st.f[FA1] = 0xffff_ffff_4f32_d05e; // 3e9
            assert!(run(&mut st, FCVT_WU_S_RTZ));
            assert_eq!(st.x[A0], 0xffff_ffff_b2d0_5e00, "{xlen:?}");
            assert!(run(&mut st, FCVT_W_S_RTZ));
            assert_eq!(st.x[A0], 0x7fff_ffff, "{xlen:?}: clipped");
            assert_eq!(fflags(&st), fp::NV as u32);
        }
    }

    /// Run one Zicsr instruction the way the loop does (out of line, in `exec_csr`).
    fn run_csr(st: &mut State, word: u32) -> Flow {
        let insn = filter(st, decode32(word, st.xlen), word);
        exec_csr(st, &mut NoBus, Packed::pack(&insn), 0x1000)
    }

    #[test]
    fn test_csrrs_mip_does_not_latch_device_seip() {
        // Linux under OpenSBI took supervisor external interrupts forever after console input:
        // OpenSBI's timer handler did `csrs mip, STIP` while the PLIC held SEIP high, the
        // read-modify-write copied the PLIC's SEIP into the software-writable bit, and no
        // claim/complete could clear it again. Only the software bit takes part in a CSRRS or
        // CSRRC (Privileged ISA 20211203 §3.1.9); the read still returns the OR.
        const CSRRS_A0_MIP_T0: u32 = 0x3442_a573; // csrrs a0, mip, t0
        const CSRC_MIP_T0: u32 = 0x3442_b073; // csrc mip, t0
        const CSRRW_MIP_T0: u32 = 0x3442_9073; // csrw mip, t0
        const CSRC_SIP_T0: u32 = 0x1442_b073; // csrc sip, t0
        const T0: usize = 5;
        let stip = 1u64 << irq::STI;
        let seip = 1u64 << irq::SEI;
        let ssip = 1u64 << irq::SSI;
        let mut st = fp_state(Xlen::Rv64);
        st.irqs.set(irq::SEI, true);
        st.x[T0] = stip;
        assert!(matches!(
            run_csr(&mut st, CSRRS_A0_MIP_T0),
            Flow::Sync(0x1004)
        ));
        assert_eq!(st.x[A0], seip, "the read shows the PLIC's SEIP");
        assert_eq!(st.mip(), stip | seip);
        st.irqs.set(irq::SEI, false);
        assert_eq!(st.mip(), stip, "SEIP follows the PLIC again");
        // CSRRC likewise: clearing STIP while the line is high must not latch SEIP.
        st.irqs.set(irq::SEI, true);
        assert!(matches!(run_csr(&mut st, CSRC_MIP_T0), Flow::Sync(0x1004)));
        st.irqs.set(irq::SEI, false);
        assert_eq!(st.mip(), 0);
        // A software-written SEIP survives RMWs of other bits, whatever the line does, and
        // only software clears it.
        st.x[T0] = seip;
        assert!(matches!(run_csr(&mut st, CSRRW_MIP_T0), Flow::Sync(0x1004)));
        st.irqs.set(irq::SEI, true);
        st.x[T0] = stip;
        assert!(matches!(run_csr(&mut st, CSRC_MIP_T0), Flow::Sync(0x1004)));
        st.irqs.set(irq::SEI, false);
        assert_eq!(st.mip(), seip, "software SEIP kept");
        st.x[T0] = seip;
        assert!(matches!(run_csr(&mut st, CSRC_MIP_T0), Flow::Sync(0x1004)));
        assert_eq!(st.mip(), 0);
        // sip: S-mode clearing SSIP while the PLIC raises SEIP leaves SEIP to the PLIC.
        assert!(st.csr_write(csr::MIDELEG, stip | seip | ssip).is_ok());
        st.x[T0] = ssip;
        assert!(matches!(run_csr(&mut st, CSRRW_MIP_T0), Flow::Sync(0x1004)));
        st.irqs.set(irq::SEI, true);
        assert!(matches!(run_csr(&mut st, CSRC_SIP_T0), Flow::Sync(0x1004)));
        st.irqs.set(irq::SEI, false);
        assert_eq!(st.mip(), 0);
    }
}
