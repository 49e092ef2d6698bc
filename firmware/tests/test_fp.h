/*
 * test_fp.h - macros for the F/D test programs (rv64f, rv64d, rv64fd_csr).
 * Include after test.h.  Operands are given as bit patterns (hex), moved
 * into f registers with fmv.w.x / fmv.d.x, so no rounding happens on the
 * way in.  Single-precision results are checked as the whole 64-bit
 * register (fmv.x.d), which also checks their NaN-boxing.
 *
 * Register use: fa1, fa2, fa3 are the sources, fa0 (or a0) the result,
 * a1 the fflags read back; t0 is scratch.  The instruction under test is
 * the variadic argument, so it may carry a static rounding mode, e.g.
 *     TEST_S(4, NX, 0x3eaaaaab, ONE_S, THREE_S, 0, fdiv.s fa0, fa1, fa2)
 *     TEST_S(5, NX, 0x3eaaaaaa, ONE_S, THREE_S, 0, fdiv.s fa0, fa1, fa2, rtz)
 * Each macro clears fflags before the instruction and checks the exact
 * flags it raised.
 */
#ifndef BREADBOARD_TEST_FP_H
#define BREADBOARD_TEST_FP_H

/* mstatus.FS */
#define MSTATUS_FS          0x6000
#define MSTATUS_FS_INITIAL  0x2000
#define MSTATUS_FS_CLEAN    0x4000
#define MSTATUS_FS_DIRTY    0x6000
#define MSTATUS64_SD        0x8000000000000000
#define SSTATUS_FS          0x6000

/* fflags */
#define NX 0x01
#define UF 0x02
#define OF 0x04
#define DZ 0x08
#define NV 0x10

/* frm / rm values */
#define RM_RNE 0
#define RM_RTZ 1
#define RM_RDN 2
#define RM_RUP 3
#define RM_RMM 4
#define RM_DYN 7

/* binary32 constants */
#define ONE_S     0x3f800000
#define TWO_S     0x40000000
#define THREE_S   0x40400000
#define HALF_S    0x3f000000
#define NHALF_S   0xbf000000
#define NONE_S    0xbf800000
#define PZERO_S   0x00000000
#define NZERO_S   0x80000000
#define PINF_S    0x7f800000
#define NINF_S    0xff800000
#define QNAN_S    0x7fc00000      /* the canonical NaN */
#define SNAN_S    0x7f800001
#define MAX_S     0x7f7fffff
#define MINN_S    0x00800000      /* smallest normal */
#define MINSUB_S  0x00000001      /* smallest subnormal */

/* binary64 constants */
#define ONE_D     0x3ff0000000000000
#define TWO_D     0x4000000000000000
#define THREE_D   0x4008000000000000
#define HALF_D    0x3fe0000000000000
#define NHALF_D   0xbfe0000000000000
#define NONE_D    0xbff0000000000000
#define PZERO_D   0x0000000000000000
#define NZERO_D   0x8000000000000000
#define PINF_D    0x7ff0000000000000
#define NINF_D    0xfff0000000000000
#define QNAN_D    0x7ff8000000000000 /* the canonical NaN */
#define SNAN_D    0x7ff0000000000001
#define MAX_D     0x7fefffffffffffff
#define MINN_D    0x0010000000000000
#define MINSUB_D  0x0000000000000001

/* A binary32 value as it appears NaN-boxed in a 64-bit f register. */
#define BOXED(v) (0xffffffff00000000 | (v))

/* mstatus.FS = Initial (the FPU is off at reset), fcsr = 0 */
#define FP_ENABLE                       \
        li t0, MSTATUS_FS;              \
        csrc mstatus, t0;               \
        li t0, MSTATUS_FS_INITIAL;      \
        csrs mstatus, t0;               \
        csrwi fcsr, 0

#define LOAD_S(freg, v)  li t0, v; fmv.w.x freg, t0
#define LOAD_D(freg, v)  li t0, v; fmv.d.x freg, t0

/* binary32: fa0 = insn(fa1, fa2, fa3) */
#define TEST_S(n, flags, res, v1, v2, v3, ...) \
        TEST_CASE(n);                   \
        LOAD_S(fa1, v1);                \
        LOAD_S(fa2, v2);                \
        LOAD_S(fa3, v3);                \
        csrwi fflags, 0;                \
        __VA_ARGS__;                    \
        csrr a1, fflags;                \
        fmv.x.d a0, fa0;                \
        CHECK(a0, BOXED(res));          \
        CHECK(a1, flags)

/* binary32 source(s), integer result: a0 = insn(fa1, fa2) */
#define TEST_S_X(n, flags, res, v1, v2, ...) \
        TEST_CASE(n);                   \
        LOAD_S(fa1, v1);                \
        LOAD_S(fa2, v2);                \
        csrwi fflags, 0;                \
        __VA_ARGS__;                    \
        csrr a1, fflags;                \
        CHECK(a0, res);                 \
        CHECK(a1, flags)

/* integer source, binary32 result: fa0 = insn(a2) */
#define TEST_X_S(n, flags, res, xval, ...) \
        TEST_CASE(n);                   \
        li a2, xval;                    \
        csrwi fflags, 0;                \
        __VA_ARGS__;                    \
        csrr a1, fflags;                \
        fmv.x.d a0, fa0;                \
        CHECK(a0, BOXED(res));          \
        CHECK(a1, flags)

/* binary64: fa0 = insn(fa1, fa2, fa3) */
#define TEST_D(n, flags, res, v1, v2, v3, ...) \
        TEST_CASE(n);                   \
        LOAD_D(fa1, v1);                \
        LOAD_D(fa2, v2);                \
        LOAD_D(fa3, v3);                \
        csrwi fflags, 0;                \
        __VA_ARGS__;                    \
        csrr a1, fflags;                \
        fmv.x.d a0, fa0;                \
        CHECK(a0, res);                 \
        CHECK(a1, flags)

/* binary64 source(s), integer result: a0 = insn(fa1, fa2) */
#define TEST_D_X(n, flags, res, v1, v2, ...) \
        TEST_CASE(n);                   \
        LOAD_D(fa1, v1);                \
        LOAD_D(fa2, v2);                \
        csrwi fflags, 0;                \
        __VA_ARGS__;                    \
        csrr a1, fflags;                \
        CHECK(a0, res);                 \
        CHECK(a1, flags)

/* integer source, binary64 result: fa0 = insn(a2) */
#define TEST_X_D(n, flags, res, xval, ...) \
        TEST_CASE(n);                   \
        li a2, xval;                    \
        csrwi fflags, 0;                \
        __VA_ARGS__;                    \
        csrr a1, fflags;                \
        fmv.x.d a0, fa0;                \
        CHECK(a0, res);                 \
        CHECK(a1, flags)

/* binary64 source, binary32 result: fa0 = insn(fa1) (fcvt.s.d) */
#define TEST_D_S(n, flags, res, v1, ...) \
        TEST_CASE(n);                   \
        LOAD_D(fa1, v1);                \
        csrwi fflags, 0;                \
        __VA_ARGS__;                    \
        csrr a1, fflags;                \
        fmv.x.d a0, fa0;                \
        CHECK(a0, BOXED(res));          \
        CHECK(a1, flags)

/* binary32 source, binary64 result: fa0 = insn(fa1) (fcvt.d.s) */
#define TEST_S_D(n, flags, res, v1, ...) \
        TEST_CASE(n);                   \
        LOAD_S(fa1, v1);                \
        csrwi fflags, 0;                \
        __VA_ARGS__;                    \
        csrr a1, fflags;                \
        fmv.x.d a0, fa0;                \
        CHECK(a0, res);                 \
        CHECK(a1, flags)

#endif
