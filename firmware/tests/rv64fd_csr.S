/*
 * rv64fd_csr.S - mstatus.FS and the FP CSRs: FS is Off at reset; with FS
 * Off every F/D instruction (including compressed ones) and every access to
 * fflags/frm/fcsr is an illegal instruction; FS = Initial enables them;
 * writing an f register or changing fflags (by an instruction or a CSR
 * write) makes FS Dirty and sets SD, while instructions that only read FP
 * state (fmv.x.w, fsw, feq/fclass without flags, CSR reads) leave it
 * alone; sstatus mirrors FS and SD; misa has F and D; the fcsr/frm/fflags
 * views and their widths; a reserved frm (5, 6, 7) makes instructions with
 * rm = dyn illegal, even those whose result is exact, but not instructions
 * with a static rm or without a rounding mode; f registers survive FS Off.
 */
#include "test.h"
#include "test_fp.h"
        .option norvc

/* a0 = mstatus.FS (0..3) */
#define READ_FS                 \
        csrr a0, mstatus;       \
        srli a0, a0, 13;        \
        andi a0, a0, 3

/* Set mstatus.FS to fs (0..3). */
#define SET_FS(fs)              \
        li t0, MSTATUS_FS;      \
        csrc mstatus, t0;       \
        li t0, (fs) << 13;      \
        csrs mstatus, t0

#define FS_OFF      0
#define FS_INITIAL  1
#define FS_CLEAN    2
#define FS_DIRTY    3

/* The instruction leaves FS Clean / makes it Dirty. */
#define TEST_FS_CLEAN(n, ...)   \
        TEST_CASE(n);           \
        SET_FS(FS_CLEAN);       \
        __VA_ARGS__;            \
        READ_FS;                \
        CHECK(a0, FS_CLEAN)
#define TEST_FS_DIRTY(n, ...)   \
        TEST_CASE(n);           \
        SET_FS(FS_CLEAN);       \
        __VA_ARGS__;            \
        READ_FS;                \
        CHECK(a0, FS_DIRTY)

TEST_BEGIN
        /* ---- reset state ---- */
        TEST_CASE(1)
        READ_FS
        CHECK(a0, FS_OFF)
        csrr a0, mstatus
        srli a0, a0, 63
        CHECK(a0, 0)                    /* SD clear */
        TEST_CASE(2)
        csrr a0, misa
        li t0, (1 << 3) | (1 << 5)      /* D, F */
        and a0, a0, t0
        CHECK_REG(a0, t0)

        /* ---- FS = Off: everything FP is illegal ---- */
        TEST_TRAP(3, CAUSE_ILLEGAL_INSN, fadd.s fa0, fa1, fa2)
        li t0, 0x00c5f553               /* mtval = the instruction */
        CHECK_REG(s10, t0)
        TEST_TRAP(4, CAUSE_ILLEGAL_INSN, fadd.d fa0, fa1, fa2)
        la t1, scratch
        TEST_TRAP(5, CAUSE_ILLEGAL_INSN, flw fa0, 0(t1))
        TEST_TRAP(6, CAUSE_ILLEGAL_INSN, fsd fa0, 0(t1))
        TEST_TRAP(7, CAUSE_ILLEGAL_INSN, fmv.x.w a0, fa0)
        TEST_TRAP(8, CAUSE_ILLEGAL_INSN, fmv.d.x fa0, a0)
        TEST_TRAP(9, CAUSE_ILLEGAL_INSN, fcvt.s.w fa0, a0)
        TEST_TRAP(10, CAUSE_ILLEGAL_INSN, feq.d a0, fa0, fa1)
        TEST_TRAP(11, CAUSE_ILLEGAL_INSN, fclass.s a0, fa0)
        TEST_TRAP(12, CAUSE_ILLEGAL_INSN, fmadd.d fa0, fa1, fa2, fa3)
        TEST_TRAP(13, CAUSE_ILLEGAL_INSN, fsgnj.d fa0, fa1, fa2)
        TEST_TRAP(14, CAUSE_ILLEGAL_INSN, fcvt.d.s fa0, fa1)
        TEST_TRAP(15, CAUSE_ILLEGAL_INSN, csrr a0, fcsr)
        TEST_TRAP(16, CAUSE_ILLEGAL_INSN, csrr a0, frm)
        TEST_TRAP(17, CAUSE_ILLEGAL_INSN, csrr a0, fflags)
        TEST_TRAP(18, CAUSE_ILLEGAL_INSN, csrwi fflags, 1)
        TEST_TRAP(19, CAUSE_ILLEGAL_INSN, csrw frm, zero)
        TEST_TRAP(20, CAUSE_ILLEGAL_INSN, csrrs a0, fcsr, zero)
        mv a5, t1
        .option push
        .option rvc
        TEST_TRAP(21, CAUSE_ILLEGAL_INSN, c.fld fa0, 0(a5))
        TEST_TRAP(22, CAUSE_ILLEGAL_INSN, c.fsdsp fa0, 0(sp))
        .option pop
        TEST_CASE(23)
        READ_FS
        CHECK(a0, FS_OFF)               /* the traps did not touch FS */

        /* ---- FS = Initial: enabled, reads do not dirty ---- */
        TEST_CASE(24)
        SET_FS(FS_INITIAL)
        READ_FS
        CHECK(a0, FS_INITIAL)
        csrr a0, fcsr
        csrr a0, frm
        csrr a0, fflags
        READ_FS
        CHECK(a0, FS_INITIAL)
        TEST_CASE(25)
        csrwi fcsr, 0                   /* any write dirties */
        READ_FS
        CHECK(a0, FS_DIRTY)
        csrr a0, mstatus
        srli a0, a0, 63
        CHECK(a0, 1)                    /* SD */
        TEST_CASE(26)
        SET_FS(FS_CLEAN)
        csrr a0, mstatus
        srli a0, a0, 63
        CHECK(a0, 0)

        /* ---- what dirties FS ---- */
        LOAD_S(fa1, ONE_S)
        LOAD_S(fa2, TWO_S)
        la t1, scratch
        csrwi fflags, 0
        TEST_FS_CLEAN(27, fmv.x.w a0, fa1)
        TEST_FS_CLEAN(28, fmv.x.d a0, fa1)
        TEST_FS_CLEAN(29, fsw fa1, 0(t1))
        TEST_FS_CLEAN(30, fsd fa1, 8(t1))
        TEST_FS_CLEAN(31, feq.s a0, fa1, fa2)
        TEST_FS_CLEAN(32, flt.s a0, fa1, fa2)
        TEST_FS_CLEAN(33, fclass.s a0, fa1)
        TEST_FS_CLEAN(34, fcvt.w.s a0, fa1, rtz)   /* exact: no flags */
        TEST_FS_CLEAN(35, csrr a0, fcsr)
        TEST_FS_CLEAN(36, csrrs a0, fflags, zero)
        TEST_FS_DIRTY(37, fadd.s fa0, fa1, fa2)
        TEST_FS_DIRTY(38, fsgnj.s fa0, fa1, fa2)
        TEST_FS_DIRTY(39, flw fa0, 0(t1))
        TEST_FS_DIRTY(40, fld fa0, 8(t1))
        TEST_FS_DIRTY(41, fmv.w.x fa0, zero)
        TEST_FS_DIRTY(42, fmv.d.x fa0, zero)
        TEST_FS_DIRTY(43, fcvt.d.w fa0, zero)
        TEST_FS_DIRTY(44, fmin.d fa0, fa1, fa2)
        TEST_FS_DIRTY(45, csrwi fflags, 0)
        TEST_FS_DIRTY(46, csrwi frm, 0)
        TEST_FS_DIRTY(47, csrw fcsr, zero)
        TEST_FS_DIRTY(48, csrrsi a0, fflags, NX)
        csrwi fflags, 0
        .option push
        .option rvc
        TEST_FS_DIRTY(49, c.fld fa0, 8(a5))
        TEST_FS_CLEAN(50, c.fsd fa0, 8(a5))
        .option pop

        /* ---- sstatus mirrors FS and SD (when S-mode exists) ---- */
        csrr a0, misa
        srli a0, a0, 18
        andi a0, a0, 1
        beqz a0, 1f
        TEST_CASE(51)
        SET_FS(FS_DIRTY)
        csrr a0, sstatus
        li t0, SSTATUS_FS
        and a1, a0, t0
        CHECK(a1, SSTATUS_FS)
        srli a0, a0, 63
        CHECK(a0, 1)
        TEST_CASE(52)
        li t0, SSTATUS_FS
        csrc sstatus, t0
        li t0, FS_CLEAN << 13
        csrs sstatus, t0                /* written through sstatus */
        READ_FS
        CHECK(a0, FS_CLEAN)
        csrr a0, sstatus
        srli a0, a0, 63
        CHECK(a0, 0)
1:
        SET_FS(FS_INITIAL)

        /* ---- fcsr, frm and fflags ---- */
        TEST_CASE(53)
        li t0, -1
        csrw fcsr, t0
        csrr a0, fcsr
        CHECK(a0, 0xff)                 /* only frm and fflags exist */
        csrr a0, frm
        CHECK(a0, 7)
        csrr a0, fflags
        CHECK(a0, 0x1f)
        TEST_CASE(54)
        li t0, 0xfd
        csrrw a0, frm, t0               /* old value returned; 3 bits kept */
        CHECK(a0, 7)
        csrr a0, fcsr
        CHECK(a0, (5 << 5) | 0x1f)
        TEST_CASE(55)
        li t0, 0xe3
        csrrw a0, fflags, t0
        CHECK(a0, 0x1f)
        csrr a0, fcsr
        CHECK(a0, (5 << 5) | 3)
        TEST_CASE(56)
        csrrci a0, fflags, 1
        CHECK(a0, 3)
        csrrsi a0, fflags, 0x10
        CHECK(a0, 2)
        csrr a0, fflags
        CHECK(a0, 0x12)
        csrr a0, frm
        CHECK(a0, 5)                    /* fflags writes leave frm alone */
        TEST_CASE(57)
        li t0, (RM_RUP << 5) | DZ
        csrw fcsr, t0
        csrr a0, frm
        CHECK(a0, RM_RUP)
        csrr a0, fflags
        CHECK(a0, DZ)
        csrwi fcsr, 0

        /* ---- reserved frm values: rm = dyn is illegal, even when exact ---- */
        LOAD_S(fa1, ONE_S)
        LOAD_S(fa2, TWO_S)
        LOAD_D(fa3, ONE_D)
        csrwi frm, 5
        TEST_TRAP(58, CAUSE_ILLEGAL_INSN, fadd.s fa0, fa1, fa2)
        /* Always exact, so the assembler gives them rm = rne unless told: encode rm = dyn. */
        TEST_TRAP(59, CAUSE_ILLEGAL_INSN, .insn r OP_FP, 7, 0x21, fa0, fa1, f0)     /* fcvt.d.s fa0, fa1, dyn */
        TEST_TRAP(60, CAUSE_ILLEGAL_INSN, .insn r OP_FP, 7, 0x69, fa0, zero, zero)  /* fcvt.d.w fa0, zero, dyn */
        TEST_TRAP(61, CAUSE_ILLEGAL_INSN, fmadd.d fa0, fa3, fa3, fa3)
        TEST_TRAP(62, CAUSE_ILLEGAL_INSN, fcvt.w.s a0, fa1)
        TEST_TRAP(63, CAUSE_ILLEGAL_INSN, fsqrt.d fa0, fa3)
        TEST_TRAP(64, CAUSE_ILLEGAL_INSN, fcvt.s.lu fa0, zero)
        csrwi frm, 6
        TEST_TRAP(65, CAUSE_ILLEGAL_INSN, fmul.d fa0, fa3, fa3)
        csrwi frm, 7
        TEST_TRAP(66, CAUSE_ILLEGAL_INSN, fdiv.s fa0, fa1, fa2)
        TEST_CASE(67)                   /* a static rm still works (also the default rne of fcvt.d.w) */
        fcvt.d.w fa0, zero
        fmv.x.d a0, fa0
        CHECK(a0, 0)
        fadd.s fa0, fa1, fa2, rtz
        fmv.x.d a0, fa0
        CHECK(a0, BOXED(THREE_S))
        .insn r OP_FP, 0, 0x21, fa4, fa0, f0    /* fcvt.d.s fa4, fa0, rne */
        fmv.x.d a0, fa4
        CHECK(a0, THREE_D)
        TEST_CASE(68)                   /* as do operations without a rounding mode */
        fsgnjn.d fa0, fa3, fa3
        fmin.s fa5, fa1, fa2
        feq.d a0, fa3, fa3
        CHECK(a0, 1)
        fmv.x.d a0, fa0
        CHECK(a0, NONE_D)
        fclass.s a0, fa5
        CHECK(a0, 64)
        la t1, scratch
        fsd fa3, 0(t1)
        fld fa6, 0(t1)
        fmv.x.d a0, fa6
        CHECK(a0, ONE_D)
        TEST_CASE(69)
        csrr a0, frm                    /* the illegal instructions changed nothing */
        CHECK(a0, 7)
        csrr a0, fflags
        CHECK(a0, 0)
        TEST_CASE(70)
        csrwi frm, RM_RMM               /* 4 is valid */
        fadd.s fa0, fa1, fa2
        fmv.x.d a0, fa0
        CHECK(a0, BOXED(THREE_S))
        csrwi frm, RM_RNE

        /* ---- f registers survive FS = Off ---- */
        TEST_CASE(71)
        li t0, 0x0123456789abcdef
        fmv.d.x fs3, t0
        SET_FS(FS_OFF)
        TEST_TRAP(72, CAUSE_ILLEGAL_INSN, fmv.x.d a0, fs3)
        TEST_CASE(73)
        SET_FS(FS_CLEAN)
        fmv.x.d a0, fs3
        CHECK(a0, 0x0123456789abcdef)
        READ_FS
        CHECK(a0, FS_CLEAN)

        TEST_END

        .data
        .balign 16
scratch:
        .dword 0, 0, 0, 0
