//! The compact decoded RISC-V instruction form (RISC-V Unprivileged ISA 20191213, ch. 24 opcode map;
//! Privileged ISA 20211203 for system instructions).
//!
//! One `Insn` is 12 bytes. The decoder (`decode.rs`) produces it from 16- or 32-bit encodings;
//! compressed instructions expand to their base equivalent and keep `len == 2`. The executor, the
//! disassembler, the tracer and the debugger all consume this one form.

/// Which base integer width the hart runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Xlen {
    /// RV32: 32-bit registers.
    Rv32,
    /// RV64: 64-bit registers.
    Rv64,
}

impl Xlen {
    /// Register width in bits.
    pub const fn bits(self) -> u32 {
        match self {
            Xlen::Rv32 => 32,
            Xlen::Rv64 => 64,
        }
    }
}

/// Instruction formats, as far as operand printing and register classes go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Internal cache markers and illegal encodings.
    None,
    /// `rd, imm20` (lui, auipc).
    U,
    /// `rd, target` (jal).
    J,
    /// `rd, imm(rs1)` (jalr).
    Jalr,
    /// `rs1, rs2, target`.
    B,
    /// `rd, imm(rs1)` integer loads.
    Load,
    /// `rs2, imm(rs1)` integer stores.
    Store,
    /// `rd, rs1, imm`.
    I,
    /// `rd, rs1, shamt`.
    Shift,
    /// `rd, rs1, rs2`.
    R,
    /// `pred, succ` (fence).
    Fence,
    /// No operands.
    Plain,
    /// `rd, csr, rs1` / `rd, csr, uimm`.
    Csr,
    /// `rd, (rs1)` (lr).
    Lr,
    /// `rd, rs2, (rs1)` (sc, amo*).
    Amo,
    /// `rs1, rs2` (sfence.vma).
    Sfence,
    /// `frd, imm(rs1)`.
    FLoad,
    /// `frs2, imm(rs1)`.
    FStore,
    /// `frd, frs1, frs2, frs3[, rm]`.
    FR4,
    /// `frd, frs1, frs2[, rm]`.
    FRrm,
    /// `frd, frs1, frs2` (sign injection, min/max).
    FR,
    /// `frd, frs1[, rm]` (sqrt, fcvt.s.d, fcvt.d.s).
    FR1rm,
    /// `rd, frs1[, rm]` (fcvt.w.s etc).
    FtoX,
    /// `frd, rs1[, rm]` (fcvt.s.w etc).
    XtoF,
    /// `rd, frs1` (fmv.x.w, fclass).
    FmvToX,
    /// `frd, rs1` (fmv.w.x).
    FmvFromX,
    /// `rd, frs1, frs2` (feq, flt, fle).
    FCmp,
}

macro_rules! define_ops {
    ($( $variant:ident => $name:literal, $fmt:ident; )*) => {
        /// Every operation the decoder knows. `repr(u8)` keeps `Insn` small and the executor's
        /// `match` a dense jump table.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        #[allow(missing_docs)]
        pub enum Op {
            $( $variant, )*
        }

        impl Op {
            /// Every operation, in declaration order.
            pub const ALL: &'static [Op] = &[ $( Op::$variant, )* ];

            /// The assembler mnemonic (without aq/rl suffixes).
            pub const fn name(self) -> &'static str {
                match self { $( Op::$variant => $name, )* }
            }

            /// How the operands are printed and which register files they use.
            pub const fn format(self) -> Format {
                match self { $( Op::$variant => Format::$fmt, )* }
            }
        }
    };
}

define_ops! {
    // Decode-cache markers (never produced by `decode`).
    Undecoded => "<undecoded>", None;
    CrossPage => "<crosspage>", None;
    Illegal => "<illegal>", None;
    // RV32I / RV64I
    Lui => "lui", U;
    Auipc => "auipc", U;
    Jal => "jal", J;
    Jalr => "jalr", Jalr;
    Beq => "beq", B;
    Bne => "bne", B;
    Blt => "blt", B;
    Bge => "bge", B;
    Bltu => "bltu", B;
    Bgeu => "bgeu", B;
    Lb => "lb", Load;
    Lh => "lh", Load;
    Lw => "lw", Load;
    Ld => "ld", Load;
    Lbu => "lbu", Load;
    Lhu => "lhu", Load;
    Lwu => "lwu", Load;
    Sb => "sb", Store;
    Sh => "sh", Store;
    Sw => "sw", Store;
    Sd => "sd", Store;
    Addi => "addi", I;
    Slti => "slti", I;
    Sltiu => "sltiu", I;
    Xori => "xori", I;
    Ori => "ori", I;
    Andi => "andi", I;
    Slli => "slli", Shift;
    Srli => "srli", Shift;
    Srai => "srai", Shift;
    Add => "add", R;
    Sub => "sub", R;
    Sll => "sll", R;
    Slt => "slt", R;
    Sltu => "sltu", R;
    Xor => "xor", R;
    Srl => "srl", R;
    Sra => "sra", R;
    Or => "or", R;
    And => "and", R;
    Addiw => "addiw", I;
    Slliw => "slliw", Shift;
    Srliw => "srliw", Shift;
    Sraiw => "sraiw", Shift;
    Addw => "addw", R;
    Subw => "subw", R;
    Sllw => "sllw", R;
    Srlw => "srlw", R;
    Sraw => "sraw", R;
    Fence => "fence", Fence;
    FenceI => "fence.i", Plain;
    Ecall => "ecall", Plain;
    Ebreak => "ebreak", Plain;
    // Privileged
    Mret => "mret", Plain;
    Sret => "sret", Plain;
    Wfi => "wfi", Plain;
    SfenceVma => "sfence.vma", Sfence;
    // Zicsr (the CSR number is in `imm`; the *i forms keep their uimm in `rs1`)
    Csrrw => "csrrw", Csr;
    Csrrs => "csrrs", Csr;
    Csrrc => "csrrc", Csr;
    Csrrwi => "csrrwi", Csr;
    Csrrsi => "csrrsi", Csr;
    Csrrci => "csrrci", Csr;
    // M
    Mul => "mul", R;
    Mulh => "mulh", R;
    Mulhsu => "mulhsu", R;
    Mulhu => "mulhu", R;
    Div => "div", R;
    Divu => "divu", R;
    Rem => "rem", R;
    Remu => "remu", R;
    Mulw => "mulw", R;
    Divw => "divw", R;
    Divuw => "divuw", R;
    Remw => "remw", R;
    Remuw => "remuw", R;
    // A (aq/rl bits are in `rm`: bit 1 = aq, bit 0 = rl)
    LrW => "lr.w", Lr;
    ScW => "sc.w", Amo;
    AmoswapW => "amoswap.w", Amo;
    AmoaddW => "amoadd.w", Amo;
    AmoxorW => "amoxor.w", Amo;
    AmoandW => "amoand.w", Amo;
    AmoorW => "amoor.w", Amo;
    AmominW => "amomin.w", Amo;
    AmomaxW => "amomax.w", Amo;
    AmominuW => "amominu.w", Amo;
    AmomaxuW => "amomaxu.w", Amo;
    LrD => "lr.d", Lr;
    ScD => "sc.d", Amo;
    AmoswapD => "amoswap.d", Amo;
    AmoaddD => "amoadd.d", Amo;
    AmoxorD => "amoxor.d", Amo;
    AmoandD => "amoand.d", Amo;
    AmoorD => "amoor.d", Amo;
    AmominD => "amomin.d", Amo;
    AmomaxD => "amomax.d", Amo;
    AmominuD => "amominu.d", Amo;
    AmomaxuD => "amomaxu.d", Amo;
    // F (the rounding mode is in `rm`)
    Flw => "flw", FLoad;
    Fsw => "fsw", FStore;
    FmaddS => "fmadd.s", FR4;
    FmsubS => "fmsub.s", FR4;
    FnmsubS => "fnmsub.s", FR4;
    FnmaddS => "fnmadd.s", FR4;
    FaddS => "fadd.s", FRrm;
    FsubS => "fsub.s", FRrm;
    FmulS => "fmul.s", FRrm;
    FdivS => "fdiv.s", FRrm;
    FsqrtS => "fsqrt.s", FR1rm;
    FsgnjS => "fsgnj.s", FR;
    FsgnjnS => "fsgnjn.s", FR;
    FsgnjxS => "fsgnjx.s", FR;
    FminS => "fmin.s", FR;
    FmaxS => "fmax.s", FR;
    FcvtWS => "fcvt.w.s", FtoX;
    FcvtWuS => "fcvt.wu.s", FtoX;
    FcvtLS => "fcvt.l.s", FtoX;
    FcvtLuS => "fcvt.lu.s", FtoX;
    FmvXW => "fmv.x.w", FmvToX;
    FeqS => "feq.s", FCmp;
    FltS => "flt.s", FCmp;
    FleS => "fle.s", FCmp;
    FclassS => "fclass.s", FmvToX;
    FcvtSW => "fcvt.s.w", XtoF;
    FcvtSWu => "fcvt.s.wu", XtoF;
    FcvtSL => "fcvt.s.l", XtoF;
    FcvtSLu => "fcvt.s.lu", XtoF;
    FmvWX => "fmv.w.x", FmvFromX;
    // D
    Fld => "fld", FLoad;
    Fsd => "fsd", FStore;
    FmaddD => "fmadd.d", FR4;
    FmsubD => "fmsub.d", FR4;
    FnmsubD => "fnmsub.d", FR4;
    FnmaddD => "fnmadd.d", FR4;
    FaddD => "fadd.d", FRrm;
    FsubD => "fsub.d", FRrm;
    FmulD => "fmul.d", FRrm;
    FdivD => "fdiv.d", FRrm;
    FsqrtD => "fsqrt.d", FR1rm;
    FsgnjD => "fsgnj.d", FR;
    FsgnjnD => "fsgnjn.d", FR;
    FsgnjxD => "fsgnjx.d", FR;
    FminD => "fmin.d", FR;
    FmaxD => "fmax.d", FR;
    FcvtSD => "fcvt.s.d", FR1rm;
    FcvtDS => "fcvt.d.s", FR1rm;
    FeqD => "feq.d", FCmp;
    FltD => "flt.d", FCmp;
    FleD => "fle.d", FCmp;
    FclassD => "fclass.d", FmvToX;
    FcvtWD => "fcvt.w.d", FtoX;
    FcvtWuD => "fcvt.wu.d", FtoX;
    FcvtLD => "fcvt.l.d", FtoX;
    FcvtLuD => "fcvt.lu.d", FtoX;
    FmvXD => "fmv.x.d", FmvToX;
    FcvtDW => "fcvt.d.w", XtoF;
    FcvtDWu => "fcvt.d.wu", XtoF;
    FcvtDL => "fcvt.d.l", XtoF;
    FcvtDLu => "fcvt.d.lu", XtoF;
    FmvDX => "fmv.d.x", FmvFromX;
}

/// The ISA extension an operation belongs to (for `misa`-based filtering).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ext {
    /// Base integer, Zicsr, Zifencei, privileged.
    I,
    /// Integer multiply/divide.
    M,
    /// Atomics.
    A,
    /// Single-precision floating point.
    F,
    /// Double-precision floating point.
    D,
}

impl Op {
    /// The extension this operation needs.
    pub fn ext(self) -> Ext {
        let v = self as u8;
        if (Op::Mul as u8..=Op::Remuw as u8).contains(&v) {
            Ext::M
        } else if (Op::LrW as u8..=Op::AmomaxuD as u8).contains(&v) {
            Ext::A
        } else if (Op::Flw as u8..=Op::FmvWX as u8).contains(&v) {
            Ext::F
        } else if (Op::Fld as u8..=Op::FmvDX as u8).contains(&v) {
            Ext::D
        } else {
            Ext::I
        }
    }

    /// Whether this is an F or D operation (executed by the FP unit, gated by `mstatus.FS`).
    pub fn is_fp(self) -> bool {
        matches!(self.ext(), Ext::F | Ext::D)
    }

    /// Whether the operation may change the flow of control (ends a decoded block).
    pub fn is_control(self) -> bool {
        matches!(
            self,
            Op::Jal
                | Op::Jalr
                | Op::Beq
                | Op::Bne
                | Op::Blt
                | Op::Bge
                | Op::Bltu
                | Op::Bgeu
                | Op::Ecall
                | Op::Ebreak
                | Op::Mret
                | Op::Sret
                | Op::Wfi
                | Op::Illegal
        )
    }
}

/// One decoded instruction.
///
/// Field use by format: `rd`/`rs1`/`rs2`/`rs3` are register numbers (0..=31; F registers for FP
/// operands). `imm` is the sign-extended immediate, the shift amount, the CSR number (Csr), the
/// fence `fm|pred|succ` bits (Fence) or, for `Illegal`, the raw encoding. `rm` is the rounding
/// mode (FP) or aq/rl (A). `len` is 2 for compressed encodings, else 4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct Insn {
    /// The operation.
    pub op: Op,
    /// Destination register.
    pub rd: u8,
    /// First source register (or CSR uimm).
    pub rs1: u8,
    /// Second source register.
    pub rs2: u8,
    /// Immediate (see the type doc).
    pub imm: i32,
    /// Third source register (fused multiply-add).
    pub rs3: u8,
    /// Rounding mode (FP) or aq/rl bits (A).
    pub rm: u8,
    /// Encoding length in bytes: 2 or 4.
    pub len: u8,
    /// Reserved, zero.
    pub pad: u8,
}

impl Insn {
    /// The decode-cache "not decoded yet" marker.
    pub const UNDECODED: Insn = Insn::new(Op::Undecoded, 0, 0, 0, 0, 0);

    /// A plain instruction with the given fields (`rs3`, `rm` zero).
    pub const fn new(op: Op, rd: u8, rs1: u8, rs2: u8, imm: i32, len: u8) -> Insn {
        Insn {
            op,
            rd,
            rs1,
            rs2,
            imm,
            rs3: 0,
            rm: 0,
            len,
            pad: 0,
        }
    }

    /// An illegal instruction carrying its raw bits (for `mtval`).
    pub const fn illegal(raw: u32, len: u8) -> Insn {
        Insn::new(Op::Illegal, 0, 0, 0, raw as i32, len)
    }

    /// The CSR number of a Zicsr instruction.
    pub const fn csr(&self) -> u16 {
        (self.imm as u32 & 0xfff) as u16
    }

    /// Whether the encoding was a 16-bit compressed one.
    pub const fn is_compressed(&self) -> bool {
        self.len == 2
    }
}

/// An [`Insn`] packed into one 64-bit word: the decode cache's slot format, so the interpreter
/// fetches an instruction with one load and extracts fields with shifts.
///
/// Layout: op `[7:0]`, rd `[12:8]`, rs1 `[17:13]`, rs2 `[22:18]`, rs3 `[27:23]`, rm `[30:28]`,
/// compressed `[31]`, imm `[63:32]`. The zero word is `Op::Undecoded`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packed(u64);

impl Packed {
    /// The "not decoded yet" slot value.
    pub const UNDECODED: Packed = Packed(0);

    /// Pack a decoded instruction.
    pub const fn pack(i: &Insn) -> Packed {
        Packed(
            i.op as u64
                | ((i.rd as u64 & 31) << 8)
                | ((i.rs1 as u64 & 31) << 13)
                | ((i.rs2 as u64 & 31) << 18)
                | ((i.rs3 as u64 & 31) << 23)
                | ((i.rm as u64 & 7) << 28)
                | (((i.len == 2) as u64) << 31)
                | ((i.imm as u32 as u64) << 32),
        )
    }

    /// Unpack into the plain form.
    pub fn unpack(self) -> Insn {
        Insn {
            op: self.op(),
            rd: self.rd(),
            rs1: self.rs1(),
            rs2: self.rs2(),
            imm: self.imm(),
            rs3: self.rs3(),
            rm: self.rm(),
            len: self.length() as u8,
            pad: 0,
        }
    }

    /// The operation.
    #[inline(always)]
    pub fn op(self) -> Op {
        let b = self.0 as u8;
        // SAFETY: `Op` is `repr(u8)` with discriminants 0..Op::ALL.len(), and the low byte of a
        // `Packed` is always one of them: the field is private and only `pack` (from a valid
        // `Op`) and `UNDECODED` (0 = `Op::Undecoded`) create values.
        unsafe { core::mem::transmute::<u8, Op>(b) }
    }
    /// Destination register.
    #[inline(always)]
    pub fn rd(self) -> u8 {
        (self.0 >> 8) as u8 & 31
    }
    /// First source register.
    #[inline(always)]
    pub fn rs1(self) -> u8 {
        (self.0 >> 13) as u8 & 31
    }
    /// Second source register.
    #[inline(always)]
    pub fn rs2(self) -> u8 {
        (self.0 >> 18) as u8 & 31
    }
    /// Third source register.
    #[inline(always)]
    pub fn rs3(self) -> u8 {
        (self.0 >> 23) as u8 & 31
    }
    /// Rounding mode / aq-rl.
    #[inline(always)]
    pub fn rm(self) -> u8 {
        (self.0 >> 28) as u8 & 7
    }
    /// Encoding length in bytes (2 or 4).
    #[inline(always)]
    pub fn length(self) -> u64 {
        4 - ((self.0 >> 30) & 2)
    }
    /// Whether the encoding was compressed.
    #[inline(always)]
    pub fn is_compressed(self) -> bool {
        self.0 & (1 << 31) != 0
    }
    /// Immediate.
    #[inline(always)]
    pub fn imm(self) -> i32 {
        (self.0 >> 32) as i32
    }
    /// CSR number (Zicsr).
    #[inline(always)]
    pub fn csr(self) -> u16 {
        (self.0 >> 32) as u16 & 0xfff
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_insn_is_twelve_bytes() {
        assert_eq!(core::mem::size_of::<Insn>(), 12);
    }

    #[test]
    fn test_packed_round_trip() {
        for (k, &op) in Op::ALL.iter().enumerate() {
            let i = Insn {
                op,
                rd: (k % 32) as u8,
                rs1: ((k * 7) % 32) as u8,
                rs2: ((k * 13) % 32) as u8,
                imm: -(k as i32) * 4099,
                rs3: ((k * 3) % 32) as u8,
                rm: (k % 8) as u8,
                len: if k.is_multiple_of(2) { 2 } else { 4 },
                pad: 0,
            };
            assert_eq!(Packed::pack(&i).unpack(), i);
        }
        assert_eq!(Packed::UNDECODED.op(), Op::Undecoded);
    }

    #[test]
    fn test_op_ext_ranges() {
        assert_eq!(Op::Mul.ext(), Ext::M);
        assert_eq!(Op::Remuw.ext(), Ext::M);
        assert_eq!(Op::AmomaxuD.ext(), Ext::A);
        assert_eq!(Op::FmvWX.ext(), Ext::F);
        assert_eq!(Op::FmvDX.ext(), Ext::D);
        assert_eq!(Op::Addi.ext(), Ext::I);
        assert!(Op::ALL.len() < 256);
    }
}
