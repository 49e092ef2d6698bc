/*
 * rv64f.S - the F extension on RV64: arithmetic, signed zeros, canonical
 * NaN results and NV for signalling NaNs, division by zero, overflow and
 * underflow (tininess after rounding), fmin/fmax with -0/+0 and NaNs,
 * comparisons (feq quiet, flt/fle signalling), fclass, sign injection,
 * fused multiply-add with a single rounding, fcvt to and from 32/64-bit
 * integers (NaN and out-of-range results, -0.5 in every rounding mode),
 * fmv, every rounding mode through frm and through the static rm field,
 * fflags accrual, NaN-boxing (flw and fmv.w.x box, unboxed operands read
 * as the canonical NaN, fmv.x.w and fsw move raw bits), flw/fsw.
 * Needs mstatus.FS != Off (set by FP_ENABLE).
 */
#include "test.h"
#include "test_fp.h"
        .option norvc
TEST_BEGIN
        FP_ENABLE

        /* arithmetic (RNE) */
        TEST_S(1, 0, THREE_S, ONE_S, TWO_S, 0, fadd.s fa0, fa1, fa2)
        TEST_S(2, 0, NONE_S, ONE_S, TWO_S, 0, fsub.s fa0, fa1, fa2)
        TEST_S(3, 0, 0x40c00000, TWO_S, THREE_S, 0, fmul.s fa0, fa1, fa2)
        TEST_S(4, NX, 0x3eaaaaab, ONE_S, THREE_S, 0, fdiv.s fa0, fa1, fa2)
        TEST_S(5, NX, 0x3fb504f3, TWO_S, 0, 0, fsqrt.s fa0, fa1)
        TEST_S(6, 0, TWO_S, 0x40800000, 0, 0, fsqrt.s fa0, fa1)
        TEST_S(7, NX, ONE_S, ONE_S, 0x33800000, 0, fadd.s fa0, fa1, fa2)   /* 1 + 2^-24: tie, to even */
        TEST_S(8, 0, 0x3f800001, ONE_S, 0x34000000, 0, fadd.s fa0, fa1, fa2) /* 1 + 2^-23: exact */

        /* signed zeros */
        TEST_S(9, 0, PZERO_S, PZERO_S, NZERO_S, 0, fadd.s fa0, fa1, fa2)
        TEST_S(10, 0, NZERO_S, NZERO_S, NZERO_S, 0, fadd.s fa0, fa1, fa2)
        TEST_S(11, 0, NZERO_S, PZERO_S, NZERO_S, 0, fadd.s fa0, fa1, fa2, rdn)
        TEST_S(12, 0, PZERO_S, ONE_S, ONE_S, 0, fsub.s fa0, fa1, fa2)
        TEST_S(13, 0, NZERO_S, ONE_S, ONE_S, 0, fsub.s fa0, fa1, fa2, rdn)
        TEST_S(14, 0, NZERO_S, NZERO_S, THREE_S, 0, fmul.s fa0, fa1, fa2)
        TEST_S(15, 0, NZERO_S, NONE_S, PZERO_S, 0, fmul.s fa0, fa1, fa2)
        TEST_S(16, 0, NZERO_S, NZERO_S, THREE_S, 0, fdiv.s fa0, fa1, fa2)
        TEST_S(17, 0, NZERO_S, NZERO_S, 0, 0, fsqrt.s fa0, fa1)
        TEST_S(18, 0, NZERO_S, PZERO_S, PZERO_S, 0, fsgnjn.s fa0, fa1, fa1)   /* fneg.s */

        /* NaNs: results are the canonical NaN; signalling NaNs raise NV */
        TEST_S(19, 0, QNAN_S, 0x7fc12345, ONE_S, 0, fadd.s fa0, fa1, fa2)
        TEST_S(20, 0, QNAN_S, 0xffc00000, ONE_S, 0, fmul.s fa0, fa1, fa2)
        TEST_S(21, NV, QNAN_S, SNAN_S, ONE_S, 0, fadd.s fa0, fa1, fa2)
        TEST_S(22, NV, QNAN_S, ONE_S, 0xff800005, 0, fdiv.s fa0, fa1, fa2)
        TEST_S(23, NV, QNAN_S, PINF_S, PINF_S, 0, fsub.s fa0, fa1, fa2)
        TEST_S(24, NV, QNAN_S, PZERO_S, NINF_S, 0, fmul.s fa0, fa1, fa2)
        TEST_S(25, NV, QNAN_S, PZERO_S, NZERO_S, 0, fdiv.s fa0, fa1, fa2)
        TEST_S(26, NV, QNAN_S, PINF_S, NINF_S, 0, fdiv.s fa0, fa1, fa2)
        TEST_S(27, NV, QNAN_S, NONE_S, 0, 0, fsqrt.s fa0, fa1)      /* sqrt of a negative */
        TEST_S(28, NV, QNAN_S, NINF_S, 0, 0, fsqrt.s fa0, fa1)
        TEST_S(29, 0, PINF_S, PINF_S, 0, 0, fsqrt.s fa0, fa1)
        TEST_S(30, NV, QNAN_S, SNAN_S, 0, 0, fsqrt.s fa0, fa1)

        /* division by zero */
        TEST_S(31, DZ, PINF_S, ONE_S, PZERO_S, 0, fdiv.s fa0, fa1, fa2)
        TEST_S(32, DZ, NINF_S, ONE_S, NZERO_S, 0, fdiv.s fa0, fa1, fa2)
        TEST_S(33, DZ, NINF_S, NONE_S, PZERO_S, 0, fdiv.s fa0, fa1, fa2)
        TEST_S(34, 0, PINF_S, PINF_S, PZERO_S, 0, fdiv.s fa0, fa1, fa2)     /* inf / 0: exact */

        /* overflow and underflow */
        TEST_S(35, OF|NX, PINF_S, MAX_S, TWO_S, 0, fmul.s fa0, fa1, fa2)
        TEST_S(36, OF|NX, MAX_S, MAX_S, TWO_S, 0, fmul.s fa0, fa1, fa2, rtz)
        TEST_S(37, OF|NX, MAX_S, MAX_S, TWO_S, 0, fmul.s fa0, fa1, fa2, rdn)
        TEST_S(38, OF|NX, 0xff7fffff, 0xff7fffff, TWO_S, 0, fmul.s fa0, fa1, fa2, rup)
        TEST_S(39, OF|NX, NINF_S, 0xff7fffff, TWO_S, 0, fmul.s fa0, fa1, fa2, rmm)
        TEST_S(40, 0, 0x00400000, MINN_S, HALF_S, 0, fmul.s fa0, fa1, fa2)  /* exact subnormal: no UF */
        TEST_S(41, UF|NX, PZERO_S, MINSUB_S, HALF_S, 0, fmul.s fa0, fa1, fa2)
        TEST_S(42, UF|NX, MINSUB_S, MINSUB_S, HALF_S, 0, fmul.s fa0, fa1, fa2, rup)
        TEST_S(43, 0, 0x00000002, MINSUB_S, MINSUB_S, 0, fadd.s fa0, fa1, fa2)
        TEST_S(44, NX, 0x00800000, 0x007fffff, 0x3f800001, 0, fmul.s fa0, fa1, fa2) /* tiny only before rounding: tininess is detected after rounding, no UF */

        /* fmin / fmax */
        TEST_S(45, 0, NZERO_S, NZERO_S, PZERO_S, 0, fmin.s fa0, fa1, fa2)
        TEST_S(46, 0, NZERO_S, PZERO_S, NZERO_S, 0, fmin.s fa0, fa1, fa2)
        TEST_S(47, 0, PZERO_S, NZERO_S, PZERO_S, 0, fmax.s fa0, fa1, fa2)
        TEST_S(48, 0, PZERO_S, PZERO_S, NZERO_S, 0, fmax.s fa0, fa1, fa2)
        TEST_S(49, 0, ONE_S, QNAN_S, ONE_S, 0, fmin.s fa0, fa1, fa2)
        TEST_S(50, 0, ONE_S, ONE_S, 0x7fc12345, 0, fmin.s fa0, fa1, fa2)
        TEST_S(51, NV, ONE_S, SNAN_S, ONE_S, 0, fmax.s fa0, fa1, fa2)
        TEST_S(52, 0, QNAN_S, 0x7fc12345, 0xffc00001, 0, fmin.s fa0, fa1, fa2)
        TEST_S(53, NV, QNAN_S, SNAN_S, QNAN_S, 0, fmax.s fa0, fa1, fa2)
        TEST_S(54, 0, NINF_S, NINF_S, ONE_S, 0, fmin.s fa0, fa1, fa2)
        TEST_S(55, 0, TWO_S, ONE_S, TWO_S, 0, fmax.s fa0, fa1, fa2)
        TEST_S(56, 0, NONE_S, NONE_S, TWO_S, 0, fmin.s fa0, fa1, fa2)

        /* comparisons: feq is quiet, flt/fle signal on any NaN */
        TEST_S_X(57, 0, 1, ONE_S, ONE_S, feq.s a0, fa1, fa2)
        TEST_S_X(58, 0, 1, NZERO_S, PZERO_S, feq.s a0, fa1, fa2)
        TEST_S_X(59, 0, 0, QNAN_S, QNAN_S, feq.s a0, fa1, fa2)
        TEST_S_X(60, NV, 0, SNAN_S, ONE_S, feq.s a0, fa1, fa2)
        TEST_S_X(61, NV, 0, QNAN_S, ONE_S, flt.s a0, fa1, fa2)
        TEST_S_X(62, NV, 0, ONE_S, QNAN_S, fle.s a0, fa1, fa2)
        TEST_S_X(63, 0, 0, NZERO_S, PZERO_S, flt.s a0, fa1, fa2)
        TEST_S_X(64, 0, 1, NZERO_S, PZERO_S, fle.s a0, fa1, fa2)
        TEST_S_X(65, 0, 1, NINF_S, MAX_S, flt.s a0, fa1, fa2)
        TEST_S_X(66, 0, 0, TWO_S, ONE_S, fle.s a0, fa1, fa2)
        TEST_S_X(67, 0, 1, NONE_S, ONE_S, flt.s a0, fa1, fa2)

        /* fclass.s */
        TEST_S_X(68, 0, 1, NINF_S, 0, fclass.s a0, fa1)
        TEST_S_X(69, 0, 2, NONE_S, 0, fclass.s a0, fa1)
        TEST_S_X(70, 0, 4, 0x80000001, 0, fclass.s a0, fa1)
        TEST_S_X(71, 0, 8, NZERO_S, 0, fclass.s a0, fa1)
        TEST_S_X(72, 0, 16, PZERO_S, 0, fclass.s a0, fa1)
        TEST_S_X(73, 0, 32, 0x007fffff, 0, fclass.s a0, fa1)
        TEST_S_X(74, 0, 64, ONE_S, 0, fclass.s a0, fa1)
        TEST_S_X(75, 0, 128, PINF_S, 0, fclass.s a0, fa1)
        TEST_S_X(76, 0, 256, SNAN_S, 0, fclass.s a0, fa1)
        TEST_S_X(77, 0, 512, QNAN_S, 0, fclass.s a0, fa1)
        TEST_S_X(78, 0, 512, 0xffc00000, 0, fclass.s a0, fa1)

        /* sign injection: bit operations, no canonicalisation, no flags */
        TEST_S(79, 0, NONE_S, ONE_S, 0xc0000000, 0, fsgnj.s fa0, fa1, fa2)
        TEST_S(80, 0, ONE_S, ONE_S, 0xc0000000, 0, fsgnjn.s fa0, fa1, fa2)
        TEST_S(81, 0, ONE_S, NONE_S, 0xc0000000, 0, fsgnjx.s fa0, fa1, fa2)
        TEST_S(82, 0, 0xff800001, SNAN_S, NONE_S, 0, fsgnj.s fa0, fa1, fa2)
        TEST_S(83, 0, PZERO_S, NZERO_S, NZERO_S, 0, fsgnjx.s fa0, fa1, fa2)  /* fabs.s */
        TEST_S(84, 0, 0x7fc12345, 0xffc12345, 0, 0, fsgnjx.s fa0, fa1, fa1)

        /* fused multiply-add */
        TEST_S(85, 0, 0x40e00000, TWO_S, THREE_S, ONE_S, fmadd.s fa0, fa1, fa2, fa3)
        TEST_S(86, 0, 0x40a00000, TWO_S, THREE_S, ONE_S, fmsub.s fa0, fa1, fa2, fa3)
        TEST_S(87, 0, 0xc0a00000, TWO_S, THREE_S, ONE_S, fnmsub.s fa0, fa1, fa2, fa3)
        TEST_S(88, 0, 0xc0e00000, TWO_S, THREE_S, ONE_S, fnmadd.s fa0, fa1, fa2, fa3)
        TEST_S(89, 0, 0x33800000, 0x3f800800, 0x3f800800, 0xbf801000, fmadd.s fa0, fa1, fa2, fa3)  /* one rounding: (1+2^-12)^2 - (1+2^-11) = 2^-24 */
        TEST_S(90, NX, PZERO_S, 0x3f800800, 0x3f800800, 0xbf801000, fmul.s ft0, fa1, fa2; fadd.s fa0, ft0, fa3) /* two roundings lose it */
        TEST_S(91, NV, QNAN_S, PINF_S, PZERO_S, QNAN_S, fmadd.s fa0, fa1, fa2, fa3) /* inf * 0 + qNaN */
        TEST_S(92, NV, QNAN_S, PINF_S, PZERO_S, ONE_S, fmadd.s fa0, fa1, fa2, fa3)
        TEST_S(93, NV, QNAN_S, ONE_S, ONE_S, SNAN_S, fmadd.s fa0, fa1, fa2, fa3)
        TEST_S(94, 0, QNAN_S, ONE_S, ONE_S, QNAN_S, fmsub.s fa0, fa1, fa2, fa3)
        TEST_S(95, 0, PZERO_S, NZERO_S, ONE_S, PZERO_S, fmadd.s fa0, fa1, fa2, fa3)
        TEST_S(96, 0, NZERO_S, PZERO_S, ONE_S, PZERO_S, fnmadd.s fa0, fa1, fa2, fa3)  /* -(+0) - (+0) */
        TEST_S(97, 0, NZERO_S, ONE_S, ONE_S, ONE_S, fmsub.s fa0, fa1, fa2, fa3, rdn)
        TEST_S(98, OF|NX, PINF_S, MAX_S, TWO_S, NONE_S, fmadd.s fa0, fa1, fa2, fa3)
        TEST_S(99, 0, MAX_S, MAX_S, TWO_S, 0xff7fffff, fmadd.s fa0, fa1, fa2, fa3) /* no intermediate overflow */

        /* float -> integer */
        TEST_S_X(100, NX, 2, 0x3fc00000, 0, fcvt.w.s a0, fa1, rne)   /* 1.5 */
        TEST_S_X(101, NX, 1, 0x3fc00000, 0, fcvt.w.s a0, fa1, rtz)   /* 1.5 */
        TEST_S_X(102, NX, 1, 0x3fc00000, 0, fcvt.w.s a0, fa1, rdn)   /* 1.5 */
        TEST_S_X(103, NX, 2, 0x3fc00000, 0, fcvt.w.s a0, fa1, rup)   /* 1.5 */
        TEST_S_X(104, NX, 2, 0x3fc00000, 0, fcvt.w.s a0, fa1, rmm)   /* 1.5 */
        TEST_S_X(105, NX, 2, 0x40200000, 0, fcvt.w.s a0, fa1, rne)   /* 2.5 */
        TEST_S_X(106, NX, 3, 0x40200000, 0, fcvt.w.s a0, fa1, rmm)   /* 2.5 */
        TEST_S_X(107, NX, 0, NHALF_S, 0, fcvt.w.s a0, fa1, rne)   /* -0.5 */
        TEST_S_X(108, NX, 0, NHALF_S, 0, fcvt.w.s a0, fa1, rtz)   /* -0.5 */
        TEST_S_X(109, NX, -1, NHALF_S, 0, fcvt.w.s a0, fa1, rdn)   /* -0.5 */
        TEST_S_X(110, NX, 0, NHALF_S, 0, fcvt.w.s a0, fa1, rup)   /* -0.5 */
        TEST_S_X(111, NX, -1, NHALF_S, 0, fcvt.w.s a0, fa1, rmm)   /* -0.5 */
        TEST_S_X(112, NV, 0x7fffffff, QNAN_S, 0, fcvt.w.s a0, fa1, rtz)
        TEST_S_X(113, NV, 0x7fffffff, 0xffc00000, 0, fcvt.w.s a0, fa1, rtz)   /* any NaN: the maximum */
        TEST_S_X(114, NV, 0x7fffffff, PINF_S, 0, fcvt.w.s a0, fa1, rtz)
        TEST_S_X(115, NV, 0xffffffff80000000, NINF_S, 0, fcvt.w.s a0, fa1, rtz)
        TEST_S_X(116, NV, 0x7fffffff, 0x4f32d05e, 0, fcvt.w.s a0, fa1, rtz)  /* 3e9 */
        TEST_S_X(117, NV, 0xffffffff80000000, 0xcf32d05e, 0, fcvt.w.s a0, fa1, rtz)
        TEST_S_X(118, 0, 0xffffffff80000000, 0xcf000000, 0, fcvt.w.s a0, fa1, rtz) /* -2^31 fits */
        TEST_S_X(119, NV, 0x7fffffff, 0x4f000000, 0, fcvt.w.s a0, fa1, rtz)  /* 2^31 does not */
        TEST_S_X(120, NV, 0, NONE_S, 0, fcvt.wu.s a0, fa1, rtz)
        TEST_S_X(121, NX, 0, NHALF_S, 0, fcvt.wu.s a0, fa1, rtz)  /* rounds to 0: in range */
        TEST_S_X(122, NV, 0, NHALF_S, 0, fcvt.wu.s a0, fa1, rdn)  /* rounds to -1: out of range */
        TEST_S_X(123, NV, -1, QNAN_S, 0, fcvt.wu.s a0, fa1, rtz)   /* 0xffffffff, sign-extended */
        TEST_S_X(124, NV, -1, PINF_S, 0, fcvt.wu.s a0, fa1, rtz)
        TEST_S_X(125, 0, 0xffffffffb2d05e00, 0x4f32d05e, 0, fcvt.wu.s a0, fa1, rtz)  /* 3e9, sign-extended */
        TEST_S_X(126, NV, 0x7fffffffffffffff, QNAN_S, 0, fcvt.l.s a0, fa1, rtz)
        TEST_S_X(127, NV, 0x8000000000000000, NINF_S, 0, fcvt.l.s a0, fa1, rtz)
        TEST_S_X(128, 0, 0x10000000000, 0x53800000, 0, fcvt.l.s a0, fa1, rtz)  /* 2^40 */
        TEST_S_X(129, NX, -1, NHALF_S, 0, fcvt.l.s a0, fa1, rdn)
        TEST_S_X(130, NV, -1, QNAN_S, 0, fcvt.lu.s a0, fa1, rtz)
        TEST_S_X(131, NV, 0, NONE_S, 0, fcvt.lu.s a0, fa1, rtz)
        TEST_S_X(132, NV, -1, 0x5f800000, 0, fcvt.lu.s a0, fa1, rtz)  /* 2^64 */
        TEST_S_X(133, 0, 0x8000000000000000, 0x5f000000, 0, fcvt.lu.s a0, fa1, rtz)  /* 2^63 */

        /* integer -> float */
        TEST_X_S(134, 0, NONE_S, -1, fcvt.s.w fa0, a2)
        TEST_X_S(135, NX, 0x4b800000, 16777217, fcvt.s.w fa0, a2)
        TEST_X_S(136, NX, 0x4b800001, 16777217, fcvt.s.w fa0, a2, rup)
        TEST_X_S(137, NX, 0xcb800001, -16777217, fcvt.s.w fa0, a2, rdn)
        TEST_X_S(138, NX, 0xcb800000, -16777217, fcvt.s.w fa0, a2, rtz)
        TEST_X_S(139, 0, 0x40a00000, 0x100000005, fcvt.s.w fa0, a2)  /* only the low 32 bits */
        TEST_X_S(140, NX, 0x4f800000, -1, fcvt.s.wu fa0, a2)   /* 0xffffffff */
        TEST_X_S(141, 0, 0xdf000000, 0x8000000000000000, fcvt.s.l fa0, a2)
        TEST_X_S(142, NX, 0x5f800000, -1, fcvt.s.lu fa0, a2)
        TEST_X_S(143, NX, 0x5f7fffff, -1, fcvt.s.lu fa0, a2, rtz)
        TEST_X_S(144, 0, PZERO_S, 0, fcvt.s.l fa0, a2)
        TEST_X_S(145, 0, 0xcb800000, -16777216, fcvt.s.l fa0, a2)

        /* fmv.w.x / fmv.x.w: raw bits; fmv.x.w sign-extends */
        TEST_X_S(146, 0, 0xcafebabe, 0x12345678cafebabe, fmv.w.x fa0, a2)
        TEST_CASE(147); li a2, 0x12345678cafebabe; fmv.w.x fa1, a2; fmv.x.w a0, fa1; CHECK(a0, 0xffffffffcafebabe)
        TEST_CASE(148); LOAD_S(fa1, 0x3f800000); fmv.x.w a0, fa1; CHECK(a0, 0x3f800000)
        TEST_CASE(149); LOAD_S(fa1, QNAN_S); csrwi fflags, 0; fmv.x.w a0, fa1; csrr a1, fflags; CHECK(a0, QNAN_S); CHECK(a1, 0)

        /* each rounding mode through frm (rm = dyn) ... */
        csrwi frm, RM_RNE
        TEST_S(150, NX, 0x3f800000, ONE_S, 0x33800000, 0, fadd.s fa0, fa1, fa2)
        TEST_S(151, NX, 0xbf800000, NONE_S, 0xb3800000, 0, fadd.s fa0, fa1, fa2)
        TEST_S(152, NX, 0x3eaaaaab, ONE_S, THREE_S, 0, fdiv.s fa0, fa1, fa2)
        TEST_S(153, NX, 0xbeaaaaab, NONE_S, THREE_S, 0, fdiv.s fa0, fa1, fa2)
        TEST_S_X(154, NX, 0, NHALF_S, 0, fcvt.w.s a0, fa1)
        csrwi frm, RM_RTZ
        TEST_S(155, NX, 0x3f800000, ONE_S, 0x33800000, 0, fadd.s fa0, fa1, fa2)
        TEST_S(156, NX, 0xbf800000, NONE_S, 0xb3800000, 0, fadd.s fa0, fa1, fa2)
        TEST_S(157, NX, 0x3eaaaaaa, ONE_S, THREE_S, 0, fdiv.s fa0, fa1, fa2)
        TEST_S(158, NX, 0xbeaaaaaa, NONE_S, THREE_S, 0, fdiv.s fa0, fa1, fa2)
        TEST_S_X(159, NX, 0, NHALF_S, 0, fcvt.w.s a0, fa1)
        csrwi frm, RM_RDN
        TEST_S(160, NX, 0x3f800000, ONE_S, 0x33800000, 0, fadd.s fa0, fa1, fa2)
        TEST_S(161, NX, 0xbf800001, NONE_S, 0xb3800000, 0, fadd.s fa0, fa1, fa2)
        TEST_S(162, NX, 0x3eaaaaaa, ONE_S, THREE_S, 0, fdiv.s fa0, fa1, fa2)
        TEST_S(163, NX, 0xbeaaaaab, NONE_S, THREE_S, 0, fdiv.s fa0, fa1, fa2)
        TEST_S_X(164, NX, -1, NHALF_S, 0, fcvt.w.s a0, fa1)
        csrwi frm, RM_RUP
        TEST_S(165, NX, 0x3f800001, ONE_S, 0x33800000, 0, fadd.s fa0, fa1, fa2)
        TEST_S(166, NX, 0xbf800000, NONE_S, 0xb3800000, 0, fadd.s fa0, fa1, fa2)
        TEST_S(167, NX, 0x3eaaaaab, ONE_S, THREE_S, 0, fdiv.s fa0, fa1, fa2)
        TEST_S(168, NX, 0xbeaaaaaa, NONE_S, THREE_S, 0, fdiv.s fa0, fa1, fa2)
        TEST_S_X(169, NX, 0, NHALF_S, 0, fcvt.w.s a0, fa1)
        csrwi frm, RM_RMM
        TEST_S(170, NX, 0x3f800001, ONE_S, 0x33800000, 0, fadd.s fa0, fa1, fa2)
        TEST_S(171, NX, 0xbf800001, NONE_S, 0xb3800000, 0, fadd.s fa0, fa1, fa2)
        TEST_S(172, NX, 0x3eaaaaab, ONE_S, THREE_S, 0, fdiv.s fa0, fa1, fa2)
        TEST_S(173, NX, 0xbeaaaaab, NONE_S, THREE_S, 0, fdiv.s fa0, fa1, fa2)
        TEST_S_X(174, NX, -1, NHALF_S, 0, fcvt.w.s a0, fa1)

        /* ... and through the static rm field, which overrides frm */
        csrwi frm, RM_RUP
        TEST_S(175, NX, 0x3f800000, ONE_S, 0x33800000, 0, fadd.s fa0, fa1, fa2, rne)
        TEST_S(176, NX, 0xbf800000, NONE_S, 0xb3800000, 0, fadd.s fa0, fa1, fa2, rne)
        TEST_S(177, NX, 0xbeaaaaab, NONE_S, THREE_S, 0, fdiv.s fa0, fa1, fa2, rne)
        TEST_S_X(178, NX, 0, NHALF_S, 0, fcvt.w.s a0, fa1, rne)
        csrwi frm, RM_RUP
        TEST_S(179, NX, 0x3f800000, ONE_S, 0x33800000, 0, fadd.s fa0, fa1, fa2, rtz)
        TEST_S(180, NX, 0xbf800000, NONE_S, 0xb3800000, 0, fadd.s fa0, fa1, fa2, rtz)
        TEST_S(181, NX, 0xbeaaaaaa, NONE_S, THREE_S, 0, fdiv.s fa0, fa1, fa2, rtz)
        TEST_S_X(182, NX, 0, NHALF_S, 0, fcvt.w.s a0, fa1, rtz)
        csrwi frm, RM_RUP
        TEST_S(183, NX, 0x3f800000, ONE_S, 0x33800000, 0, fadd.s fa0, fa1, fa2, rdn)
        TEST_S(184, NX, 0xbf800001, NONE_S, 0xb3800000, 0, fadd.s fa0, fa1, fa2, rdn)
        TEST_S(185, NX, 0xbeaaaaab, NONE_S, THREE_S, 0, fdiv.s fa0, fa1, fa2, rdn)
        TEST_S_X(186, NX, -1, NHALF_S, 0, fcvt.w.s a0, fa1, rdn)
        csrwi frm, RM_RDN
        TEST_S(187, NX, 0x3f800001, ONE_S, 0x33800000, 0, fadd.s fa0, fa1, fa2, rup)
        TEST_S(188, NX, 0xbf800000, NONE_S, 0xb3800000, 0, fadd.s fa0, fa1, fa2, rup)
        TEST_S(189, NX, 0xbeaaaaaa, NONE_S, THREE_S, 0, fdiv.s fa0, fa1, fa2, rup)
        TEST_S_X(190, NX, 0, NHALF_S, 0, fcvt.w.s a0, fa1, rup)
        csrwi frm, RM_RTZ
        TEST_S(191, NX, 0x3f800001, ONE_S, 0x33800000, 0, fadd.s fa0, fa1, fa2, rmm)
        TEST_S(192, NX, 0xbf800001, NONE_S, 0xb3800000, 0, fadd.s fa0, fa1, fa2, rmm)
        TEST_S(193, NX, 0xbeaaaaab, NONE_S, THREE_S, 0, fdiv.s fa0, fa1, fa2, rmm)
        TEST_S_X(194, NX, -1, NHALF_S, 0, fcvt.w.s a0, fa1, rmm)
        csrwi frm, RM_RNE

        /* fflags accrue: each instruction ORs its flags in, nothing clears them */
        TEST_CASE(195)
        csrwi fflags, 0
        LOAD_S(fa1, ONE_S)
        LOAD_S(fa2, PZERO_S)
        LOAD_S(fa3, THREE_S)
        fdiv.s fa0, fa1, fa2            /* DZ */
        csrr a1, fflags
        CHECK(a1, DZ)
        fdiv.s fa0, fa1, fa3            /* NX */
        csrr a1, fflags
        CHECK(a1, DZ|NX)
        fadd.s fa0, fa1, fa1            /* exact: no change */
        fmin.s fa0, fa1, fa2
        csrr a1, fflags
        CHECK(a1, DZ|NX)
        LOAD_S(fa4, SNAN_S)
        feq.s a0, fa4, fa1              /* NV from an instruction writing an x register */
        csrr a1, fflags
        CHECK(a1, DZ|NX|NV)
        LOAD_S(fa4, MAX_S)
        fmul.s fa0, fa4, fa4            /* OF|NX */
        LOAD_S(fa4, MINSUB_S)
        fmul.s fa0, fa4, fa4            /* UF|NX */
        csrr a1, fflags
        CHECK(a1, 0x1f)
        csrr a1, fcsr                   /* frm = RNE */
        CHECK(a1, 0x1f)
        csrrci a1, fflags, NX|DZ
        CHECK(a1, 0x1f)
        csrr a1, fflags
        CHECK(a1, NV|OF|UF)
        csrwi fflags, 0

        /* NaN-boxing: flw and every single-precision result set the upper 32 bits */
        la t1, fpdata
        TEST_CASE(196)
        flw fa0, 0(t1)
        fmv.x.d a0, fa0
        CHECK(a0, 0xffffffff3f800000)
        TEST_CASE(197)
        flw fa0, 4(t1)
        fmv.x.d a0, fa0
        CHECK(a0, 0xffffffffc0490fdb)
        /* a register that is not properly boxed reads as the canonical NaN */
        TEST_CASE(198)
        li t0, 0x3f800000
        fmv.d.x fa1, t0                 /* 1.0f with zero upper bits */
        csrwi fflags, 0
        fadd.s fa0, fa1, fa1
        csrr a1, fflags
        fmv.x.d a0, fa0
        CHECK(a0, 0xffffffff7fc00000)
        CHECK(a1, 0)                    /* canonical NaN is quiet: no NV */
        TEST_CASE(199)
        li t0, 0xfffffffe3f800000       /* one upper bit clear: still not boxed */
        fmv.d.x fa2, t0
        fmul.s fa0, fa2, fa2
        fmv.x.d a0, fa0
        CHECK(a0, 0xffffffff7fc00000)
        TEST_CASE(200)
        fclass.s a0, fa1
        CHECK(a0, 0x200)
        TEST_CASE(201)
        csrwi fflags, 0
        feq.s a0, fa1, fa1
        csrr a1, fflags
        CHECK(a0, 0)
        CHECK(a1, 0)
        TEST_CASE(202)
        LOAD_S(fa3, NONE_S)
        fsgnj.s fa0, fa1, fa3           /* canonical NaN with the sign of -1 */
        fmv.x.d a0, fa0
        CHECK(a0, 0xffffffffffc00000)
        TEST_CASE(203)
        fmv.s fa0, fa1                  /* fsgnj.s fa0, fa1, fa1 */
        fmv.x.d a0, fa0
        CHECK(a0, 0xffffffff7fc00000)
        TEST_CASE(204)
        fcvt.w.s a0, fa1, rtz           /* NaN -> the maximum */
        CHECK(a0, 0x7fffffff)
        /* transfers move raw bits: fmv.x.w and fsw take the low 32 bits as they are */
        TEST_CASE(205)
        fmv.x.w a0, fa1
        CHECK(a0, 0x3f800000)
        TEST_CASE(206)
        li t0, -1
        sd t0, 8(t1)
        fsw fa1, 8(t1)
        ld a0, 8(t1)
        CHECK(a0, 0xffffffff3f800000)   /* the next word is untouched */
        TEST_CASE(207)
        fmv.w.x fa0, zero
        fmv.x.d a0, fa0
        CHECK(a0, 0xffffffff00000000)

        /* loads and stores */
        TEST_CASE(208)
        LOAD_S(fa5, 0x12345678)
        fsw fa5, 20(t1)
        addi t2, t1, 24
        flw fa6, -4(t2)
        fmv.x.d a0, fa6
        CHECK(a0, 0xffffffff12345678)
        lw a0, 20(t1)
        CHECK(a0, 0x12345678)
        TEST_CASE(209)
        flw ft11, 0(t1)                 /* f31 */
        fsw ft11, 16(t1)
        lwu a0, 16(t1)
        CHECK(a0, 0x3f800000)
        TEST_CASE(210)
        flw fs0, 0(t1)                  /* the result of a load is not canonicalised */
        LOAD_S(fs1, 0x7f800001)
        fsw fs1, 12(t1)
        flw fs2, 12(t1)
        fmv.x.d a0, fs2
        CHECK(a0, 0xffffffff7f800001)

        TEST_END

        .data
        .balign 16
fpdata:
        .word 0x3f800000                /* 1.0f */
        .word 0xc0490fdb                /* -pi */
        .dword 0
        .dword 0
        .dword 0

