//! RISC-V instruction decoder: RV32GC/RV64GC (Unprivileged ISA 20191213 ch. 2, 5, 7-9, 11-13,
//! 16 "C" with tables 16.5-16.7, 24 opcode map; Privileged ISA 20211203 §3.3, §4.2.1).
//!
//! `decode` is total: every `u32` yields an `Insn`; reserved and unknown encodings yield
//! `Op::Illegal` carrying the raw bits. Compressed encodings expand to their base operation and
//! keep `len == 2`.

use crate::insn::{Insn, Op, Xlen};

#[inline(always)]
const fn field(x: u32, hi: u32, lo: u32) -> u32 {
    (x >> lo) & ((1u32 << (hi - lo + 1)) - 1)
}

#[inline(always)]
const fn rd(x: u32) -> u8 {
    field(x, 11, 7) as u8
}
#[inline(always)]
const fn rs1(x: u32) -> u8 {
    field(x, 19, 15) as u8
}
#[inline(always)]
const fn rs2(x: u32) -> u8 {
    field(x, 24, 20) as u8
}
#[inline(always)]
const fn imm_i(x: u32) -> i32 {
    (x as i32) >> 20
}
#[inline(always)]
const fn imm_s(x: u32) -> i32 {
    (((x as i32) >> 25) << 5) | field(x, 11, 7) as i32
}
#[inline(always)]
const fn imm_b(x: u32) -> i32 {
    (((x as i32) >> 31) << 12)
        | ((field(x, 7, 7) << 11) | (field(x, 30, 25) << 5) | (field(x, 11, 8) << 1)) as i32
}
#[inline(always)]
const fn imm_u(x: u32) -> i32 {
    (x & 0xffff_f000) as i32
}
#[inline(always)]
const fn imm_j(x: u32) -> i32 {
    (((x as i32) >> 31) << 20)
        | ((field(x, 19, 12) << 12) | (field(x, 20, 20) << 11) | (field(x, 30, 21) << 1)) as i32
}

/// Sign-extend the low `bits` bits of `v`.
#[inline(always)]
const fn sext(v: u32, bits: u32) -> i32 {
    let s = 32 - bits;
    ((v << s) as i32) >> s
}

/// Whether a static rounding mode field is valid (5 and 6 are reserved).
#[inline(always)]
const fn rm_ok(rm: u32) -> bool {
    rm != 5 && rm != 6
}

/// Decode one instruction. If the low two bits of `bits` are not `0b11`, only the low 16 bits are
/// used (compressed encoding).
pub fn decode(bits: u32, xlen: Xlen) -> Insn {
    if bits & 3 == 3 {
        decode32(bits, xlen)
    } else {
        decode16(bits as u16, xlen)
    }
}

/// The length in bytes of the instruction whose first halfword is `low` (2 or 4; longer
/// encodings are not supported and decode as illegal 4-byte instructions).
#[inline(always)]
pub const fn insn_len(low: u16) -> u8 {
    if low & 3 == 3 { 4 } else { 2 }
}

fn r(op: Op, x: u32) -> Insn {
    Insn::new(op, rd(x), rs1(x), rs2(x), 0, 4)
}

fn i(op: Op, x: u32) -> Insn {
    Insn::new(op, rd(x), rs1(x), 0, imm_i(x), 4)
}

/// Decode a 32-bit encoding (low two bits `0b11`).
pub fn decode32(x: u32, xlen: Xlen) -> Insn {
    let rv64 = xlen == Xlen::Rv64;
    let ill = Insn::illegal(x, 4);
    let f3 = field(x, 14, 12);
    let f7 = field(x, 31, 25);
    match field(x, 6, 0) {
        0b011_0111 => Insn::new(Op::Lui, rd(x), 0, 0, imm_u(x), 4),
        0b001_0111 => Insn::new(Op::Auipc, rd(x), 0, 0, imm_u(x), 4),
        0b110_1111 => Insn::new(Op::Jal, rd(x), 0, 0, imm_j(x), 4),
        0b110_0111 if f3 == 0 => i(Op::Jalr, x),
        0b110_0011 => {
            let op = match f3 {
                0 => Op::Beq,
                1 => Op::Bne,
                4 => Op::Blt,
                5 => Op::Bge,
                6 => Op::Bltu,
                7 => Op::Bgeu,
                _ => return ill,
            };
            Insn::new(op, 0, rs1(x), rs2(x), imm_b(x), 4)
        }
        0b000_0011 => {
            let op = match f3 {
                0 => Op::Lb,
                1 => Op::Lh,
                2 => Op::Lw,
                3 if rv64 => Op::Ld,
                4 => Op::Lbu,
                5 => Op::Lhu,
                6 if rv64 => Op::Lwu,
                _ => return ill,
            };
            i(op, x)
        }
        0b010_0011 => {
            let op = match f3 {
                0 => Op::Sb,
                1 => Op::Sh,
                2 => Op::Sw,
                3 if rv64 => Op::Sd,
                _ => return ill,
            };
            Insn::new(op, 0, rs1(x), rs2(x), imm_s(x), 4)
        }
        0b001_0011 => {
            let op = match f3 {
                0 => Op::Addi,
                2 => Op::Slti,
                3 => Op::Sltiu,
                4 => Op::Xori,
                6 => Op::Ori,
                7 => Op::Andi,
                1 | 5 => {
                    // Shifts: imm[11:6] selects the kind; imm[5] is shamt[5] (RV64 only).
                    let hi = field(x, 31, 26);
                    let shamt = field(x, 25, 20);
                    if !rv64 && shamt >= 32 {
                        return ill;
                    }
                    let op = match (f3, hi) {
                        (1, 0) => Op::Slli,
                        (5, 0) => Op::Srli,
                        (5, 0b01_0000) => Op::Srai,
                        _ => return ill,
                    };
                    return Insn::new(op, rd(x), rs1(x), 0, shamt as i32, 4);
                }
                _ => return ill,
            };
            i(op, x)
        }
        0b001_1011 if rv64 => match f3 {
            0 => i(Op::Addiw, x),
            1 | 5 => {
                let op = match (f3, f7) {
                    (1, 0) => Op::Slliw,
                    (5, 0) => Op::Srliw,
                    (5, 0b010_0000) => Op::Sraiw,
                    _ => return ill,
                };
                Insn::new(op, rd(x), rs1(x), 0, field(x, 24, 20) as i32, 4)
            }
            _ => ill,
        },
        0b011_0011 => {
            let op = match (f7, f3) {
                (0, 0) => Op::Add,
                (0b010_0000, 0) => Op::Sub,
                (0, 1) => Op::Sll,
                (0, 2) => Op::Slt,
                (0, 3) => Op::Sltu,
                (0, 4) => Op::Xor,
                (0, 5) => Op::Srl,
                (0b010_0000, 5) => Op::Sra,
                (0, 6) => Op::Or,
                (0, 7) => Op::And,
                (1, 0) => Op::Mul,
                (1, 1) => Op::Mulh,
                (1, 2) => Op::Mulhsu,
                (1, 3) => Op::Mulhu,
                (1, 4) => Op::Div,
                (1, 5) => Op::Divu,
                (1, 6) => Op::Rem,
                (1, 7) => Op::Remu,
                _ => return ill,
            };
            r(op, x)
        }
        0b011_1011 if rv64 => {
            let op = match (f7, f3) {
                (0, 0) => Op::Addw,
                (0b010_0000, 0) => Op::Subw,
                (0, 1) => Op::Sllw,
                (0, 5) => Op::Srlw,
                (0b010_0000, 5) => Op::Sraw,
                (1, 0) => Op::Mulw,
                (1, 4) => Op::Divw,
                (1, 5) => Op::Divuw,
                (1, 6) => Op::Remw,
                (1, 7) => Op::Remuw,
                _ => return ill,
            };
            r(op, x)
        }
        0b000_1111 => match f3 {
            // FENCE: rd/rs1 and unused fm values are reserved hints; execute as a fence.
            0 => Insn::new(Op::Fence, rd(x), rs1(x), 0, field(x, 31, 20) as i32, 4),
            1 => Insn::new(Op::FenceI, rd(x), rs1(x), 0, imm_i(x), 4),
            _ => ill,
        },
        0b111_0011 => decode_system(x),
        0b010_1111 => decode_amo(x, rv64),
        0b000_0111 | 0b010_0111 => {
            let load = field(x, 6, 0) == 0b000_0111;
            match (f3, load) {
                (2, true) => Insn::new(Op::Flw, rd(x), rs1(x), 0, imm_i(x), 4),
                (3, true) => Insn::new(Op::Fld, rd(x), rs1(x), 0, imm_i(x), 4),
                (2, false) => Insn::new(Op::Fsw, 0, rs1(x), rs2(x), imm_s(x), 4),
                (3, false) => Insn::new(Op::Fsd, 0, rs1(x), rs2(x), imm_s(x), 4),
                _ => ill,
            }
        }
        0b100_0011 | 0b100_0111 | 0b100_1011 | 0b100_1111 => {
            let double = match field(x, 26, 25) {
                0 => false,
                1 => true,
                _ => return ill,
            };
            if !rm_ok(f3) {
                return ill;
            }
            let op = match (field(x, 6, 0), double) {
                (0b100_0011, false) => Op::FmaddS,
                (0b100_0111, false) => Op::FmsubS,
                (0b100_1011, false) => Op::FnmsubS,
                (0b100_1111, false) => Op::FnmaddS,
                (0b100_0011, true) => Op::FmaddD,
                (0b100_0111, true) => Op::FmsubD,
                (0b100_1011, true) => Op::FnmsubD,
                _ => Op::FnmaddD,
            };
            Insn {
                rs3: field(x, 31, 27) as u8,
                rm: f3 as u8,
                ..r(op, x)
            }
        }
        0b101_0011 => decode_opfp(x, rv64),
        _ => ill,
    }
}

fn decode_system(x: u32) -> Insn {
    let ill = Insn::illegal(x, 4);
    let f3 = field(x, 14, 12);
    let csr = field(x, 31, 20) as i32;
    let op = match f3 {
        0 => {
            if field(x, 31, 25) == 0b000_1001 && rd(x) == 0 {
                return Insn::new(Op::SfenceVma, 0, rs1(x), rs2(x), 0, 4);
            }
            return match x {
                0x0000_0073 => Insn::new(Op::Ecall, 0, 0, 0, 0, 4),
                0x0010_0073 => Insn::new(Op::Ebreak, 0, 0, 0, 0, 4),
                0x3020_0073 => Insn::new(Op::Mret, 0, 0, 0, 0, 4),
                0x1020_0073 => Insn::new(Op::Sret, 0, 0, 0, 0, 4),
                0x1050_0073 => Insn::new(Op::Wfi, 0, 0, 0, 0, 4),
                _ => ill,
            };
        }
        1 => Op::Csrrw,
        2 => Op::Csrrs,
        3 => Op::Csrrc,
        5 => Op::Csrrwi,
        6 => Op::Csrrsi,
        7 => Op::Csrrci,
        _ => return ill,
    };
    Insn::new(op, rd(x), rs1(x), 0, csr, 4)
}

fn decode_amo(x: u32, rv64: bool) -> Insn {
    let ill = Insn::illegal(x, 4);
    let double = match field(x, 14, 12) {
        2 => false,
        3 if rv64 => true,
        _ => return ill,
    };
    let f5 = field(x, 31, 27);
    let (w, d) = match f5 {
        0b00010 => {
            if rs2(x) != 0 {
                return ill;
            }
            (Op::LrW, Op::LrD)
        }
        0b00011 => (Op::ScW, Op::ScD),
        0b00001 => (Op::AmoswapW, Op::AmoswapD),
        0b00000 => (Op::AmoaddW, Op::AmoaddD),
        0b00100 => (Op::AmoxorW, Op::AmoxorD),
        0b01100 => (Op::AmoandW, Op::AmoandD),
        0b01000 => (Op::AmoorW, Op::AmoorD),
        0b10000 => (Op::AmominW, Op::AmominD),
        0b10100 => (Op::AmomaxW, Op::AmomaxD),
        0b11000 => (Op::AmominuW, Op::AmominuD),
        0b11100 => (Op::AmomaxuW, Op::AmomaxuD),
        _ => return ill,
    };
    let op = if double { d } else { w };
    Insn {
        rm: field(x, 26, 25) as u8,
        ..r(op, x)
    }
}

fn decode_opfp(x: u32, rv64: bool) -> Insn {
    let ill = Insn::illegal(x, 4);
    let f3 = field(x, 14, 12);
    let f7 = field(x, 31, 25);
    let r2 = rs2(x);
    let double = f7 & 1 == 1;
    if f7 & 2 != 0 {
        // fmt 10 (H) and 11 (Q) are not supported.
        return ill;
    }
    let sd = |s: Op, d: Op| if double { d } else { s };
    // (op, uses rm)
    let (op, uses_rm) = match f7 >> 2 {
        0b00000 => (sd(Op::FaddS, Op::FaddD), true),
        0b00001 => (sd(Op::FsubS, Op::FsubD), true),
        0b00010 => (sd(Op::FmulS, Op::FmulD), true),
        0b00011 => (sd(Op::FdivS, Op::FdivD), true),
        0b01011 if r2 == 0 => (sd(Op::FsqrtS, Op::FsqrtD), true),
        0b00100 => match f3 {
            0 => (sd(Op::FsgnjS, Op::FsgnjD), false),
            1 => (sd(Op::FsgnjnS, Op::FsgnjnD), false),
            2 => (sd(Op::FsgnjxS, Op::FsgnjxD), false),
            _ => return ill,
        },
        0b00101 => match f3 {
            0 => (sd(Op::FminS, Op::FminD), false),
            1 => (sd(Op::FmaxS, Op::FmaxD), false),
            _ => return ill,
        },
        0b01000 => match (double, r2) {
            (false, 1) => (Op::FcvtSD, true),
            (true, 0) => (Op::FcvtDS, true),
            _ => return ill,
        },
        0b10100 => match f3 {
            0 => (sd(Op::FleS, Op::FleD), false),
            1 => (sd(Op::FltS, Op::FltD), false),
            2 => (sd(Op::FeqS, Op::FeqD), false),
            _ => return ill,
        },
        0b11000 => match r2 {
            0 => (sd(Op::FcvtWS, Op::FcvtWD), true),
            1 => (sd(Op::FcvtWuS, Op::FcvtWuD), true),
            2 if rv64 => (sd(Op::FcvtLS, Op::FcvtLD), true),
            3 if rv64 => (sd(Op::FcvtLuS, Op::FcvtLuD), true),
            _ => return ill,
        },
        0b11010 => match r2 {
            0 => (sd(Op::FcvtSW, Op::FcvtDW), true),
            1 => (sd(Op::FcvtSWu, Op::FcvtDWu), true),
            2 if rv64 => (sd(Op::FcvtSL, Op::FcvtDL), true),
            3 if rv64 => (sd(Op::FcvtSLu, Op::FcvtDLu), true),
            _ => return ill,
        },
        0b11100 if r2 == 0 => match (f3, double) {
            (0, false) => (Op::FmvXW, false),
            (0, true) if rv64 => (Op::FmvXD, false),
            (1, _) => (sd(Op::FclassS, Op::FclassD), false),
            _ => return ill,
        },
        0b11110 if r2 == 0 && f3 == 0 => match double {
            false => (Op::FmvWX, false),
            true if rv64 => (Op::FmvDX, false),
            true => return ill,
        },
        _ => return ill,
    };
    if uses_rm && !rm_ok(f3) {
        return ill;
    }
    Insn {
        rm: if uses_rm { f3 as u8 } else { 0 },
        ..r(op, x)
    }
}

/// Decode a 16-bit compressed encoding (low two bits not `0b11`), expanding it to the base
/// operation (Unprivileged ISA ch. 16, tables 16.5-16.7).
pub fn decode16(c: u16, xlen: Xlen) -> Insn {
    let rv64 = xlen == Xlen::Rv64;
    let x = c as u32;
    let ill = Insn::illegal(x, 2);
    let f3 = field(x, 15, 13);
    // Register fields: full 5-bit and the 3-bit "prime" forms (x8-x15).
    let rd_full = field(x, 11, 7) as u8;
    let rs2_full = field(x, 6, 2) as u8;
    let rdp = field(x, 4, 2) as u8 + 8; // rd'/rs2' at [4:2]
    let rs1p = field(x, 9, 7) as u8 + 8; // rs1'/rd' at [9:7]
    let n = |op: Op, rd: u8, rs1: u8, rs2: u8, imm: i32| Insn::new(op, rd, rs1, rs2, imm, 2);
    // Offsets of the register-based loads/stores.
    let off_w = (field(x, 12, 10) << 3) | (field(x, 6, 6) << 2) | (field(x, 5, 5) << 6);
    let off_d = (field(x, 12, 10) << 3) | (field(x, 6, 5) << 6);
    // Stack-pointer based.
    let lwsp = (field(x, 12, 12) << 5) | (field(x, 6, 4) << 2) | (field(x, 3, 2) << 6);
    let ldsp = (field(x, 12, 12) << 5) | (field(x, 6, 5) << 3) | (field(x, 4, 2) << 6);
    let swsp = (field(x, 12, 9) << 2) | (field(x, 8, 7) << 6);
    let sdsp = (field(x, 12, 10) << 3) | (field(x, 9, 7) << 6);
    let imm6 = sext((field(x, 12, 12) << 5) | field(x, 6, 2), 6);
    let shamt = (field(x, 12, 12) << 5) | field(x, 6, 2);
    match (x & 3, f3) {
        (0, 0) => {
            let nzuimm = (field(x, 12, 11) << 4)
                | (field(x, 10, 7) << 6)
                | (field(x, 6, 6) << 2)
                | (field(x, 5, 5) << 3);
            if nzuimm == 0 {
                return ill;
            }
            n(Op::Addi, rdp, 2, 0, nzuimm as i32)
        }
        (0, 1) => n(Op::Fld, rdp, rs1p, 0, off_d as i32),
        (0, 2) => n(Op::Lw, rdp, rs1p, 0, off_w as i32),
        (0, 3) if rv64 => n(Op::Ld, rdp, rs1p, 0, off_d as i32),
        (0, 3) => n(Op::Flw, rdp, rs1p, 0, off_w as i32),
        (0, 5) => n(Op::Fsd, 0, rs1p, rdp, off_d as i32),
        (0, 6) => n(Op::Sw, 0, rs1p, rdp, off_w as i32),
        (0, 7) if rv64 => n(Op::Sd, 0, rs1p, rdp, off_d as i32),
        (0, 7) => n(Op::Fsw, 0, rs1p, rdp, off_w as i32),
        (1, 0) => n(Op::Addi, rd_full, rd_full, 0, imm6),
        (1, 1) if rv64 => {
            if rd_full == 0 {
                return ill;
            }
            n(Op::Addiw, rd_full, rd_full, 0, imm6)
        }
        (1, 1) | (1, 5) => {
            let off = (field(x, 12, 12) << 11)
                | (field(x, 11, 11) << 4)
                | (field(x, 10, 9) << 8)
                | (field(x, 8, 8) << 10)
                | (field(x, 7, 7) << 6)
                | (field(x, 6, 6) << 7)
                | (field(x, 5, 3) << 1)
                | (field(x, 2, 2) << 5);
            let link = if f3 == 1 { 1 } else { 0 };
            n(Op::Jal, link, 0, 0, sext(off, 12))
        }
        (1, 2) => n(Op::Addi, rd_full, 0, 0, imm6),
        (1, 3) => {
            if rd_full == 2 {
                let imm = (field(x, 12, 12) << 9)
                    | (field(x, 6, 6) << 4)
                    | (field(x, 5, 5) << 6)
                    | (field(x, 4, 3) << 7)
                    | (field(x, 2, 2) << 5);
                if imm == 0 {
                    return ill;
                }
                n(Op::Addi, 2, 2, 0, sext(imm, 10))
            } else {
                if imm6 == 0 {
                    return ill;
                }
                n(Op::Lui, rd_full, 0, 0, imm6 << 12)
            }
        }
        (1, 4) => match field(x, 11, 10) {
            0 | 1 => {
                if !rv64 && shamt >= 32 {
                    return ill;
                }
                let op = if field(x, 11, 10) == 0 {
                    Op::Srli
                } else {
                    Op::Srai
                };
                n(op, rs1p, rs1p, 0, shamt as i32)
            }
            2 => n(Op::Andi, rs1p, rs1p, 0, imm6),
            _ => {
                let op = match (field(x, 12, 12), field(x, 6, 5)) {
                    (0, 0) => Op::Sub,
                    (0, 1) => Op::Xor,
                    (0, 2) => Op::Or,
                    (0, 3) => Op::And,
                    (1, 0) if rv64 => Op::Subw,
                    (1, 1) if rv64 => Op::Addw,
                    _ => return ill,
                };
                n(op, rs1p, rs1p, rdp, 0)
            }
        },
        (1, 6) | (1, 7) => {
            let off = (field(x, 12, 12) << 8)
                | (field(x, 11, 10) << 3)
                | (field(x, 6, 5) << 6)
                | (field(x, 4, 3) << 1)
                | (field(x, 2, 2) << 5);
            let op = if f3 == 6 { Op::Beq } else { Op::Bne };
            n(op, 0, rs1p, 0, sext(off, 9))
        }
        (2, 0) => {
            if !rv64 && shamt >= 32 {
                return ill;
            }
            n(Op::Slli, rd_full, rd_full, 0, shamt as i32)
        }
        (2, 1) => n(Op::Fld, rd_full, 2, 0, ldsp as i32),
        (2, 2) => {
            if rd_full == 0 {
                return ill;
            }
            n(Op::Lw, rd_full, 2, 0, lwsp as i32)
        }
        (2, 3) if rv64 => {
            if rd_full == 0 {
                return ill;
            }
            n(Op::Ld, rd_full, 2, 0, ldsp as i32)
        }
        (2, 3) => n(Op::Flw, rd_full, 2, 0, lwsp as i32),
        (2, 4) => match (field(x, 12, 12), rd_full, rs2_full) {
            (0, 0, 0) => ill,
            (0, rs1, 0) => n(Op::Jalr, 0, rs1, 0, 0),
            (0, rd, rs2) => n(Op::Add, rd, 0, rs2, 0),
            (_, 0, 0) => n(Op::Ebreak, 0, 0, 0, 0),
            (_, rs1, 0) => n(Op::Jalr, 1, rs1, 0, 0),
            (_, rd, rs2) => n(Op::Add, rd, rd, rs2, 0),
        },
        (2, 5) => n(Op::Fsd, 0, 2, rs2_full, sdsp as i32),
        (2, 6) => n(Op::Sw, 0, 2, rs2_full, swsp as i32),
        (2, 7) if rv64 => n(Op::Sd, 0, 2, rs2_full, sdsp as i32),
        (2, 7) => n(Op::Fsw, 0, 2, rs2_full, swsp as i32),
        _ => ill,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d64(x: u32) -> Insn {
        decode(x, Xlen::Rv64)
    }
    fn d32(x: u32) -> Insn {
        decode(x, Xlen::Rv32)
    }

    #[test]
    fn test_decode_addi() {
        // addi a0, a1, -5
        let i = d64(0xffb5_8513);
        assert_eq!((i.op, i.rd, i.rs1, i.imm, i.len), (Op::Addi, 10, 11, -5, 4));
    }

    #[test]
    fn test_decode_branch_and_jal_immediates() {
        // beq a0, a1, -4  => imm_b
        let i = d64(0xfeb5_0ee3);
        assert_eq!((i.op, i.rs1, i.rs2, i.imm), (Op::Beq, 10, 11, -4));
        // jal ra, 2048
        let i = d64(0x0010_00ef);
        assert_eq!((i.op, i.rd, i.imm), (Op::Jal, 1, 2048));
        // jal zero, -2
        let i = d64(0xfffff06f);
        assert_eq!((i.op, i.rd, i.imm), (Op::Jal, 0, -2));
    }

    #[test]
    fn test_decode_store_immediate() {
        // sd ra, -8(sp)
        let i = d64(0xfe11_3c23);
        assert_eq!((i.op, i.rs1, i.rs2, i.imm), (Op::Sd, 2, 1, -8));
    }

    #[test]
    fn test_decode_shift_rv32_rejects_shamt5() {
        // slli a0, a0, 32
        assert_eq!(d64(0x0205_1513).op, Op::Slli);
        assert_eq!(d64(0x0205_1513).imm, 32);
        assert_eq!(d32(0x0205_1513).op, Op::Illegal);
        // srai a0, a0, 3
        let i = d32(0x4035_5513);
        assert_eq!((i.op, i.imm), (Op::Srai, 3));
    }

    #[test]
    fn test_decode_word_ops_illegal_on_rv32() {
        for x in [
            0x0015_051bu32,
            0x00b5_053b,
            0x0005_3503,
            0x00a5_3023,
            0x1005_b52f,
        ] {
            assert_ne!(d64(x).op, Op::Illegal, "{x:#x}");
            assert_eq!(d32(x).op, Op::Illegal, "{x:#x}");
        }
    }

    #[test]
    fn test_decode_system() {
        assert_eq!(d64(0x0000_0073).op, Op::Ecall);
        assert_eq!(d64(0x0010_0073).op, Op::Ebreak);
        assert_eq!(d64(0x3020_0073).op, Op::Mret);
        assert_eq!(d64(0x1020_0073).op, Op::Sret);
        assert_eq!(d64(0x1050_0073).op, Op::Wfi);
        assert_eq!(d64(0x1200_0073).op, Op::SfenceVma);
        assert_eq!(d64(0x0020_0073).op, Op::Illegal); // uret is not supported
        // csrrs a0, mstatus, zero
        let i = d64(0x3000_2573);
        assert_eq!((i.op, i.rd, i.rs1, i.csr()), (Op::Csrrs, 10, 0, 0x300));
        // csrrwi zero, mscratch, 5
        let i = d64(0x3402_d073);
        assert_eq!((i.op, i.rs1, i.csr()), (Op::Csrrwi, 5, 0x340));
    }

    #[test]
    fn test_decode_amo() {
        // amoadd.w.aqrl a0, a1, (a2)
        let i = d64(0x06b6_252f);
        assert_eq!(
            (i.op, i.rd, i.rs1, i.rs2, i.rm),
            (Op::AmoaddW, 10, 12, 11, 3)
        );
        // lr.w with rs2 != 0 is reserved
        assert_eq!(d64(0x1016_252f).op, Op::Illegal);
    }

    #[test]
    fn test_decode_fp() {
        // fadd.d fa0, fa1, fa2 (dyn)
        let i = d64(0x02c5_f553);
        assert_eq!((i.op, i.rd, i.rs1, i.rs2, i.rm), (Op::FaddD, 10, 11, 12, 7));
        // same with rm = 5 is reserved
        assert_eq!(d64(0x02c5_d553).op, Op::Illegal);
        // fmadd.s fa0, fa1, fa2, fa3
        let i = d64(0x68c5_f543);
        assert_eq!((i.op, i.rs3), (Op::FmaddS, 13));
        // fmv.x.d is RV64 only
        assert_eq!(d64(0xe205_8553).op, Op::FmvXD);
        assert_eq!(d32(0xe205_8553).op, Op::Illegal);
    }

    #[test]
    fn test_decode_compressed_expansions() {
        // c.addi sp, -16 (0x1141)
        let i = d64(0x1141);
        assert_eq!((i.op, i.rd, i.rs1, i.imm, i.len), (Op::Addi, 2, 2, -16, 2));
        // c.sdsp ra, 8(sp) (0xe406)
        let i = d64(0xe406);
        assert_eq!((i.op, i.rs1, i.rs2, i.imm), (Op::Sd, 2, 1, 8));
        // c.ret (0x8082)
        let i = d64(0x8082);
        assert_eq!((i.op, i.rd, i.rs1, i.imm), (Op::Jalr, 0, 1, 0));
        // c.li a0, 0 (0x4501)
        let i = d64(0x4501);
        assert_eq!((i.op, i.rd, i.rs1, i.imm), (Op::Addi, 10, 0, 0));
        // c.mv a0, a1 (0x852e)
        let i = d64(0x852e);
        assert_eq!((i.op, i.rd, i.rs1, i.rs2), (Op::Add, 10, 0, 11));
        // c.ldsp ra, 8(sp) (0x60a2)
        let i = d64(0x60a2);
        assert_eq!((i.op, i.rd, i.imm), (Op::Ld, 1, 8));
        // On RV32 the same bits are c.flwsp ft1, 8(sp)
        let i = d32(0x60a2);
        assert_eq!((i.op, i.rd, i.imm), (Op::Flw, 1, 8));
        // 0x2005: c.addiw zero,... is reserved on RV64; c.jal on RV32
        assert_eq!(d64(0x2001).op, Op::Illegal);
        assert_eq!(d32(0x2001).op, Op::Jal);
        assert_eq!(d64(0x2085).op, Op::Addiw);
        // c.lui a0, 0x1 (0x6505)
        let i = d64(0x6505);
        assert_eq!((i.op, i.rd, i.imm), (Op::Lui, 10, 0x1000));
        // c.addi16sp sp, 496 (0x617d)
        let i = d64(0x617d);
        assert_eq!((i.op, i.rd, i.imm), (Op::Addi, 2, 496));
        // c.beqz a0, 8 (0xc501)
        let i = d64(0xc501);
        assert_eq!((i.op, i.rs1, i.rs2, i.imm), (Op::Beq, 10, 0, 8));
        // c.j -2 (0xbffd)
        let i = d64(0xbffd);
        assert_eq!((i.op, i.rd, i.imm), (Op::Jal, 0, -2));
        // c.ebreak
        assert_eq!(d64(0x9002).op, Op::Ebreak);
        // c.jalr a0 (0x9502)
        let i = d64(0x9502);
        assert_eq!((i.op, i.rd, i.rs1), (Op::Jalr, 1, 10));
    }

    #[test]
    fn test_decode_compressed_reserved() {
        for c in [
            0x0000u32, 0x8002, /* c.jr zero */
            0x4002, /* c.lwsp zero */
            0x6101, /* c.addi16sp 0 */
            0x6501, /* c.lui a0,0 */
            0x8000, /* q0 f3=4 */
            0x9d01, /* subw on rv32 below */
        ] {
            let i = d32(c);
            if c == 0x9d01 {
                assert_eq!(i.op, Op::Illegal);
                assert_eq!(d64(c).op, Op::Subw);
                continue;
            }
            assert_eq!(i.op, Op::Illegal, "{c:#x}");
            assert_eq!(d64(c).op, Op::Illegal, "{c:#x}");
            assert_eq!(i.len, 2);
        }
        // c.slli a0, 32 is RV64 only
        assert_eq!(d64(0x1502).op, Op::Slli);
        assert_eq!(d32(0x1502).op, Op::Illegal);
    }

    /// A template encoding for every operation (all operand fields zero where possible),
    /// found by searching the opcode/funct space.
    fn templates(xlen: Xlen) -> std::collections::HashMap<Op, u32> {
        let mut t = std::collections::HashMap::new();
        let opcodes = [
            0x37, 0x17, 0x6f, 0x67, 0x63, 0x03, 0x23, 0x13, 0x1b, 0x33, 0x3b, 0x0f, 0x73, 0x2f,
            0x07, 0x27, 0x43, 0x47, 0x4b, 0x4f, 0x53,
        ];
        for op in opcodes {
            for f3 in 0..8u32 {
                for f7 in 0..128u32 {
                    for r2 in 0..32u32 {
                        let x = (f7 << 25) | (r2 << 20) | (f3 << 12) | op;
                        let i = decode(x, xlen);
                        t.entry(i.op).or_insert(x);
                    }
                }
            }
        }
        // System instructions with fixed encodings.
        for x in [
            0x0000_0073u32,
            0x0010_0073,
            0x3020_0073,
            0x1020_0073,
            0x1050_0073,
        ] {
            t.insert(decode(x, xlen).op, x);
        }
        t
    }

    #[test]
    fn test_decode_round_trips_every_operation_and_operand_field() {
        use crate::insn::Format;
        for xlen in [Xlen::Rv64, Xlen::Rv32] {
            let t = templates(xlen);
            let mut s = 0x1234_5678_9abc_def1u64;
            let mut rnd = move |bits: u32| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s as u32) & ((1u32 << bits) - 1)
            };
            for &op in Op::ALL {
                if matches!(op, Op::Undecoded | Op::CrossPage | Op::Illegal) {
                    continue;
                }
                let rv64_only = matches!(
                    op,
                    Op::Ld
                        | Op::Sd
                        | Op::Lwu
                        | Op::Addiw
                        | Op::Slliw
                        | Op::Srliw
                        | Op::Sraiw
                        | Op::Addw
                        | Op::Subw
                        | Op::Sllw
                        | Op::Srlw
                        | Op::Sraw
                        | Op::Mulw
                        | Op::Divw
                        | Op::Divuw
                        | Op::Remw
                        | Op::Remuw
                        | Op::FcvtLS
                        | Op::FcvtLuS
                        | Op::FcvtSL
                        | Op::FcvtSLu
                        | Op::FcvtLD
                        | Op::FcvtLuD
                        | Op::FcvtDL
                        | Op::FcvtDLu
                        | Op::FmvXD
                        | Op::FmvDX
                ) || (op.ext() == crate::insn::Ext::A && op.name().ends_with(".d"));
                let Some(&base) = t.get(&op) else {
                    assert!(
                        xlen == Xlen::Rv32 && rv64_only,
                        "{op:?} has no encoding on {xlen:?}"
                    );
                    continue;
                };
                for _ in 0..200 {
                    let (rd, rs1, rs2, rs3) = (rnd(5), rnd(5), rnd(5), rnd(5));
                    let rm = [0, 1, 2, 3, 4, 7]
                        .get((rnd(8) % 6) as usize)
                        .copied()
                        .unwrap_or(7);
                    let imm12 = rnd(12);
                    let mut x = base;
                    let mut want = Insn::new(op, rd as u8, rs1 as u8, 0, 0, 4);
                    match op.format() {
                        Format::U => {
                            let imm = rnd(20) << 12;
                            x |= imm | (rd << 7);
                            want = Insn::new(op, rd as u8, 0, 0, imm as i32, 4);
                        }
                        Format::J => {
                            let imm = rnd(20) << 1;
                            let imm = ((imm as i32) << 11 >> 11) as u32;
                            x |= ((imm >> 20) & 1) << 31
                                | ((imm >> 1) & 0x3ff) << 21
                                | ((imm >> 11) & 1) << 20
                                | ((imm >> 12) & 0xff) << 12
                                | rd << 7;
                            want = Insn::new(op, rd as u8, 0, 0, imm as i32, 4);
                        }
                        Format::B => {
                            let imm = ((rnd(12) << 1) as i32) << 19 >> 19;
                            let u = imm as u32;
                            x |= ((u >> 12) & 1) << 31
                                | ((u >> 5) & 0x3f) << 25
                                | rs2 << 20
                                | rs1 << 15
                                | ((u >> 1) & 0xf) << 8
                                | ((u >> 11) & 1) << 7;
                            want = Insn::new(op, 0, rs1 as u8, rs2 as u8, imm, 4);
                        }
                        Format::Store | Format::FStore => {
                            let imm = ((imm12 as i32) << 20) >> 20;
                            x |= (imm12 >> 5) << 25 | rs2 << 20 | rs1 << 15 | (imm12 & 31) << 7;
                            want = Insn::new(op, 0, rs1 as u8, rs2 as u8, imm, 4);
                        }
                        Format::I | Format::Load | Format::Jalr | Format::FLoad => {
                            let imm = ((imm12 as i32) << 20) >> 20;
                            x |= imm12 << 20 | rs1 << 15 | rd << 7;
                            want.imm = imm;
                        }
                        Format::Shift => {
                            let max = if xlen == Xlen::Rv64 && !op.name().ends_with('w') {
                                6
                            } else {
                                5
                            };
                            let sh = rnd(max);
                            x |= sh << 20 | rs1 << 15 | rd << 7;
                            want.imm = sh as i32;
                        }
                        Format::R | Format::FR | Format::FCmp => {
                            x |= rs2 << 20 | rs1 << 15 | rd << 7;
                            want.rs2 = rs2 as u8;
                        }
                        Format::Csr => {
                            x |= imm12 << 20 | rs1 << 15 | rd << 7;
                            want.imm = imm12 as i32;
                        }
                        Format::Fence => {
                            let bits = (rnd(8) << 4 >> 4) | rnd(4) << 4;
                            let bits = bits & 0xff;
                            x |= bits << 20;
                            want = Insn::new(op, 0, 0, 0, bits as i32, 4);
                        }
                        Format::Plain => {
                            want = Insn::new(op, 0, 0, 0, 0, 4);
                            if op == Op::FenceI {
                                x = base;
                            }
                        }
                        Format::Sfence => {
                            x |= rs2 << 20 | rs1 << 15;
                            want = Insn::new(op, 0, rs1 as u8, rs2 as u8, 0, 4);
                        }
                        Format::Lr | Format::Amo => {
                            let aqrl = rnd(2);
                            let r2 = if op.format() == Format::Lr { 0 } else { rs2 };
                            x |= aqrl << 25 | r2 << 20 | rs1 << 15 | rd << 7;
                            want.rs2 = r2 as u8;
                            want.rm = aqrl as u8;
                        }
                        Format::FR4 => {
                            x |= rs3 << 27 | rs2 << 20 | rs1 << 15 | rm << 12 | rd << 7;
                            want.rs2 = rs2 as u8;
                            want.rs3 = rs3 as u8;
                            want.rm = rm as u8;
                        }
                        Format::FRrm => {
                            x |= rs2 << 20 | rs1 << 15 | rm << 12 | rd << 7;
                            want.rs2 = rs2 as u8;
                            want.rm = rm as u8;
                        }
                        Format::FR1rm | Format::FtoX | Format::XtoF => {
                            x |= rs1 << 15 | rm << 12 | rd << 7;
                            want.rs2 = ((base >> 20) & 31) as u8;
                            want.rm = rm as u8;
                        }
                        Format::FmvToX | Format::FmvFromX => {
                            x |= rs1 << 15 | rd << 7;
                        }
                        Format::None => continue,
                    }
                    let got = decode(x, xlen);
                    assert_eq!(got, want, "{op:?} {x:#010x} on {xlen:?}");
                }
            }
        }
    }

    #[test]
    fn test_decode_never_panics_on_random_words() {
        // xorshift; covers all 16-bit values exhaustively and a million 32-bit ones.
        for c in 0..=u16::MAX {
            let _ = decode(c as u32, Xlen::Rv64);
            let _ = decode(c as u32, Xlen::Rv32);
        }
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..1_000_000 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let x = s as u32 | 3;
            let a = decode(x, Xlen::Rv64);
            let b = decode(x, Xlen::Rv32);
            assert_eq!(a.len, 4);
            assert_eq!(b.len, 4);
        }
    }
}
