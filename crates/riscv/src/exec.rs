//! The interpreter: executes pre-decoded instructions from the decode cache (RISC-V Unprivileged
//! ISA 20191213 ch. 2 RV32I, 5 RV64I, 7 M, 8 A, 9 Zicsr; Privileged ISA 20211203 §3.3).
//!
//! `run_block` runs from the current pc through the hart's decoded pages until something needs
//! the outer loop: a fetch-TLB miss, a trap, a CSR write or other synchronisation point, or the
//! budget (checked only at taken branches unless `CAREFUL`). The instruction semantics live in
//! one `exec` function that both the block loop and the uncached single-step path use.

use std::cell::Cell;

use crate::Bus;
use crate::code::{CodeCache, DecodedPage, PAGE_MASK, PAGE_SIZE};
use crate::decode::{decode16, decode32};
use crate::insn::{Ext, Insn, Op, Xlen};
use crate::mem::tlb_index;
use crate::state::{Exception, Priv, State, Trap, ms};

/// What an instruction did to the flow of control.
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
    if ok || i.op == Op::Illegal { i } else { Insn::illegal(raw, i.len) }
}

/// Decode the slot at page offset `off` from the page's host bytes.
#[cold]
fn decode_slot(st: &State, page: &DecodedPage, slot: &Cell<Insn>, off: u64, pc: u64) {
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
    slot.set(insn);
}

/// The decoded page for `pc` if the fetch TLB has it.
#[inline(always)]
fn fetch_hit<'c>(st: &State, code: &'c CodeCache, pc: u64) -> Option<&'c DecodedPage> {
    let e = &st.tlb.fetch[tlb_index(pc)];
    if e.tag == pc & !PAGE_MASK { code.page(e.page) } else { None }
}

/// Run pre-decoded instructions starting at `st.pc` (which the fetch TLB maps to `page_idx`).
#[inline(never)]
pub(crate) fn run_block<B: Bus, const RV32: bool, const CAREFUL: bool>(
    st: &mut State,
    code: &CodeCache,
    bus: &mut B,
    page_idx: u32,
) -> BlockExit {
    let Some(mut page) = code.page(page_idx) else { return BlockExit::Continue };
    let mut pc = st.pc;
    let mut base = pc & !PAGE_MASK;
    let mut n: u64 = 0;
    if CAREFUL && st.trace.exec {
        tracing::info!(target: "exec", "hart {}: block {:#x}", st.hart_id, pc);
    }
    let exit = loop {
        let off = pc.wrapping_sub(base);
        let Some(slot) = page.slots.get((off >> 1) as usize) else {
            // Sequential flow into the next page.
            match fetch_hit(st, code, pc) {
                Some(p) => {
                    page = p;
                    base = pc & !PAGE_MASK;
                    continue;
                }
                None => break BlockExit::Continue,
            }
        };
        let insn = slot.get();
        n += 1;
        match exec::<B, RV32>(st, code, bus, insn, pc) {
            Flow::Next => {
                pc = pc.wrapping_add(insn.len as u64);
                if CAREFUL && n >= st.stop_at {
                    break BlockExit::Continue;
                }
            }
            Flow::Jump(t) => {
                pc = t;
                if n >= st.stop_at {
                    break BlockExit::Continue;
                }
                if t & !PAGE_MASK != base {
                    match fetch_hit(st, code, t) {
                        Some(p) => {
                            page = p;
                            base = t & !PAGE_MASK;
                        }
                        None => break BlockExit::Continue,
                    }
                }
                if CAREFUL && st.trace.exec {
                    tracing::info!(target: "exec", "hart {}: block {:#x}", st.hart_id, pc);
                }
            }
            Flow::Sync(t) => {
                pc = t;
                break BlockExit::Continue;
            }
            Flow::Trap(t) => {
                n -= 1;
                break BlockExit::Trap(t);
            }
            Flow::Illegal => {
                n -= 1;
                break BlockExit::Illegal;
            }
            Flow::Wfi(t) => {
                pc = t;
                break BlockExit::Wfi;
            }
            Flow::FenceI(t) => {
                pc = t;
                break BlockExit::FenceI;
            }
            Flow::Decode => {
                n -= 1;
                decode_slot(st, page, slot, off, pc);
            }
            Flow::Slow => {
                n -= 1;
                break BlockExit::Slow;
            }
            Flow::Csr => {
                // instret must count exactly the instructions before this one.
                st.instret = st.instret.wrapping_add(n - 1);
                n = 1;
                match exec_csr(st, bus, insn, pc) {
                    Flow::Next => pc = pc.wrapping_add(insn.len as u64),
                    Flow::Sync(t) => {
                        pc = t;
                        break BlockExit::Continue;
                    }
                    _ => {
                        n = 0;
                        break BlockExit::Illegal;
                    }
                }
            }
        }
    };
    st.pc = pc;
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
    let insn = if raw & 3 == 3 { decode32(raw, st.xlen) } else { decode16(raw as u16, st.xlen) };
    let insn = filter(st, insn, raw);
    let flow = match exec::<B, RV32>(st, code, bus, insn, pc) {
        Flow::Csr => exec_csr(st, bus, insn, pc),
        f => f,
    };
    let next = st.wrap(pc.wrapping_add(insn.len as u64));
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
pub(crate) fn exec_csr<B: Bus>(st: &mut State, bus: &mut B, i: Insn, pc: u64) -> Flow {
    let n = i.csr();
    let imm_form = matches!(i.op, Op::Csrrwi | Op::Csrrsi | Op::Csrrci);
    let src = if imm_form { i.rs1 as u64 } else { st.get_x(i.rs1) };
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
    let mtime = if n & 0xf7f == crate::csr::TIME { bus.mtime() } else { 0 };
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
    if b == 0 { u64::MAX } else { a.wrapping_div(b) as u64 }
}
#[inline(always)]
fn divu(a: u64, b: u64) -> u64 {
    if b == 0 { u64::MAX } else { a / b }
}
#[inline(always)]
fn rem(a: i64, b: i64) -> u64 {
    if b == 0 { a as u64 } else { a.wrapping_rem(b) as u64 }
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
pub(crate) fn exec<B: Bus, const RV32: bool>(
    st: &mut State,
    code: &CodeCache,
    bus: &mut B,
    i: Insn,
    pc: u64,
) -> Flow {
    // RV32 registers hold sign-extended 32-bit values, so RV32 arithmetic is RV64's W form and
    // addresses are truncated to 32 bits.
    let sx = |v: u64| if RV32 { w(v) } else { v };
    let ea = |v: u64| if RV32 { v & 0xffff_ffff } else { v };
    let a = st.get_x(i.rs1);
    let b = st.get_x(i.rs2);
    let imm = i.imm as i64 as u64;
    let shmask = if RV32 { 31 } else { 63 };
    macro_rules! wr {
        ($v:expr) => {{
            let v = $v;
            st.set_x(i.rd, v);
            Flow::Next
        }};
    }
    macro_rules! jump {
        ($t:expr) => {{
            let t: u64 = $t;
            if t & 2 != 0 && !st.ext.c {
                return Flow::Trap(Trap::new(Exception::InsnMisaligned, t));
            }
            Flow::Jump(t)
        }};
    }
    macro_rules! branch {
        ($cond:expr) => {{
            if $cond { jump!(ea(pc.wrapping_add(imm))) } else { Flow::Next }
        }};
    }
    macro_rules! load {
        ($size:literal, $conv:expr) => {{
            match st.load::<B, $size>(bus, ea(a.wrapping_add(imm))) {
                Ok(v) => wr!($conv(v)),
                Err(t) => Flow::Trap(t),
            }
        }};
    }
    macro_rules! store {
        ($size:literal) => {{
            match st.store::<B, $size>(bus, code, ea(a.wrapping_add(imm)), b) {
                Ok(()) => Flow::Next,
                Err(t) => Flow::Trap(t),
            }
        }};
    }
    macro_rules! amo {
        ($size:literal, $f:expr) => {{
            let f = $f;
            match st.amo(bus, code, ea(a), $size, |old: u64| f(old, b)) {
                Ok(old) => wr!(if $size == 4 { w(old) } else { old }),
                Err(t) => Flow::Trap(t),
            }
        }};
    }
    match i.op {
        Op::Lui => wr!(imm),
        Op::Auipc => wr!(sx(pc.wrapping_add(imm))),
        Op::Jal => {
            let t = ea(pc.wrapping_add(imm));
            let link = sx(pc.wrapping_add(i.len as u64));
            let f = jump!(t);
            st.set_x(i.rd, link);
            f
        }
        Op::Jalr => {
            let t = ea(a.wrapping_add(imm)) & !1;
            let link = sx(pc.wrapping_add(i.len as u64));
            let f = jump!(t);
            st.set_x(i.rd, link);
            f
        }
        Op::Beq => branch!(a == b),
        Op::Bne => branch!(a != b),
        Op::Blt => branch!((a as i64) < (b as i64)),
        Op::Bge => branch!((a as i64) >= (b as i64)),
        Op::Bltu => branch!(a < b),
        Op::Bgeu => branch!(a >= b),
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
        Op::Srli => wr!(if RV32 { w((a as u32 >> (imm & 31)) as u64) } else { a >> (imm & 63) }),
        Op::Srai => wr!(if RV32 {
            ((a as i32) >> (imm & 31)) as i64 as u64
        } else {
            ((a as i64) >> (imm & 63)) as u64
        }),
        Op::Add => wr!(sx(a.wrapping_add(b))),
        Op::Sub => wr!(sx(a.wrapping_sub(b))),
        Op::Sll => wr!(sx(a << (b & shmask))),
        Op::Slt => wr!(((a as i64) < (b as i64)) as u64),
        Op::Sltu => wr!((a < b) as u64),
        Op::Xor => wr!(a ^ b),
        Op::Srl => wr!(if RV32 { w((a as u32 >> (b & 31)) as u64) } else { a >> (b & 63) }),
        Op::Sra => wr!(if RV32 {
            ((a as i32) >> (b & 31)) as i64 as u64
        } else {
            ((a as i64) >> (b & 63)) as u64
        }),
        Op::Or => wr!(a | b),
        Op::And => wr!(a & b),
        Op::Addiw => wr!(w(a.wrapping_add(imm))),
        Op::Slliw => wr!(w(a << (imm & 31))),
        Op::Srliw => wr!(w((a as u32 >> (imm & 31)) as u64)),
        Op::Sraiw => wr!(((a as i32) >> (imm & 31)) as i64 as u64),
        Op::Addw => wr!(w(a.wrapping_add(b))),
        Op::Subw => wr!(w(a.wrapping_sub(b))),
        Op::Sllw => wr!(w(a << (b & 31))),
        Op::Srlw => wr!(w((a as u32 >> (b & 31)) as u64)),
        Op::Sraw => wr!(((a as i32) >> (b & 31)) as i64 as u64),
        Op::Mul => wr!(sx(a.wrapping_mul(b))),
        Op::Mulh => wr!(if RV32 {
            w(((a as i32 as i64).wrapping_mul(b as i32 as i64) >> 32) as u64)
        } else {
            mulh(a as i64, b as i64)
        }),
        Op::Mulhsu => wr!(if RV32 {
            w(((a as i32 as i64).wrapping_mul(b as u32 as i64) >> 32) as u64)
        } else {
            mulhsu(a as i64, b)
        }),
        Op::Mulhu => wr!(if RV32 {
            w(((a as u32 as u64).wrapping_mul(b as u32 as u64) >> 32) as u64)
        } else {
            mulhu(a, b)
        }),
        Op::Div => wr!(if RV32 {
            w(div(a as i32 as i64, b as i32 as i64))
        } else {
            div(a as i64, b as i64)
        }),
        Op::Divu => wr!(if RV32 {
            w(divu(a as u32 as u64, b as u32 as u64))
        } else {
            divu(a, b)
        }),
        Op::Rem => wr!(if RV32 {
            w(rem(a as i32 as i64, b as i32 as i64))
        } else {
            rem(a as i64, b as i64)
        }),
        Op::Remu => wr!(if RV32 {
            w(remu(a as u32 as u64, b as u32 as u64))
        } else {
            remu(a, b)
        }),
        Op::Mulw => wr!(w(a.wrapping_mul(b))),
        Op::Divw => wr!(w(div(a as i32 as i64, b as i32 as i64))),
        Op::Divuw => wr!(w(divu(a as u32 as u64, b as u32 as u64))),
        Op::Remw => wr!(w(rem(a as i32 as i64, b as i32 as i64))),
        Op::Remuw => wr!(w(remu(a as u32 as u64, b as u32 as u64))),
        Op::Fence => Flow::Next,
        Op::FenceI => Flow::FenceI(ea(pc.wrapping_add(i.len as u64))),
        Op::Ecall => Flow::Trap(Trap::new(
            match st.prv {
                Priv::User => Exception::EcallU,
                Priv::Supervisor => Exception::EcallS,
                Priv::Machine => Exception::EcallM,
            },
            0,
        )),
        Op::Ebreak => Flow::Trap(Trap::new(Exception::Breakpoint, pc)),
        Op::Mret => {
            if st.prv != Priv::Machine {
                return Flow::Illegal;
            }
            st.mret();
            Flow::Sync(ea(st.pc))
        }
        Op::Sret => {
            let tsr = st.mstatus & ms::TSR != 0;
            if !st.ext.s || st.prv == Priv::User || (st.prv == Priv::Supervisor && tsr) {
                return Flow::Illegal;
            }
            st.sret();
            Flow::Sync(ea(st.pc))
        }
        Op::Wfi => {
            let tw = st.mstatus & ms::TW != 0;
            if (st.prv < Priv::Machine && tw) || (st.prv == Priv::User && st.ext.s) {
                return Flow::Illegal;
            }
            Flow::Wfi(ea(pc.wrapping_add(i.len as u64)))
        }
        Op::SfenceVma => {
            let tvm = st.mstatus & ms::TVM != 0;
            if !st.ext.s || st.prv == Priv::User || (st.prv == Priv::Supervisor && tvm) {
                return Flow::Illegal;
            }
            st.tlb.flush_all();
            Flow::Sync(ea(pc.wrapping_add(i.len as u64)))
        }
        Op::Csrrw | Op::Csrrs | Op::Csrrc | Op::Csrrwi | Op::Csrrsi | Op::Csrrci => Flow::Csr,
        Op::LrW | Op::LrD => {
            let size = if i.op == Op::LrW { 4 } else { 8 };
            match st.load_reserved(bus, ea(a), size) {
                Ok(v) => wr!(if size == 4 { w(v) } else { v }),
                Err(t) => Flow::Trap(t),
            }
        }
        Op::ScW | Op::ScD => {
            let size = if i.op == Op::ScW { 4 } else { 8 };
            match st.store_conditional(bus, code, ea(a), size, b) {
                Ok(ok) => wr!((!ok) as u64),
                Err(t) => Flow::Trap(t),
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
        Op::Undecoded => Flow::Decode,
        Op::CrossPage => Flow::Slow,
        Op::Illegal => Flow::Illegal,
        _ => exec_fp(st, bus, i),
    }
}

/// The instruction bits at `pc` for mtval on illegal-instruction traps (0 if unreadable).
pub(crate) fn insn_bits<B: Bus>(st: &mut State, bus: &mut B, pc: u64) -> u64 {
    let prv_xlen = st.xlen;
    let bits = st.fetch_slow(bus, pc).unwrap_or(0) as u64;
    if prv_xlen == Xlen::Rv32 { bits & 0xffff_ffff } else { bits }
}
