/*
 * rv64d.S - the D extension on RV64: arithmetic, signed zeros, canonical
 * NaN results and NV for signalling NaNs, division by zero, overflow and
 * underflow, fmin/fmax with -0/+0 and NaNs, comparisons, fclass, sign
 * injection, fused multiply-add with a single rounding, fcvt to and from
 * 32/64-bit integers (NaN and out-of-range results, ties, -0.5 in every
 * rounding mode), fcvt.s.d/fcvt.d.s, fmv.x.d/fmv.d.x, every rounding mode
 * through frm and through the static rm field, fflags accrual, NaN-boxing
 * seen from D instructions, fld/fsd and the compressed c.fld/c.fsd/
 * c.fldsp/c.fsdsp.  Needs mstatus.FS != Off (set by FP_ENABLE).
 */
#include "test.h"
#include "test_fp.h"
        .option norvc
TEST_BEGIN
        FP_ENABLE

        /* arithmetic (RNE) */
        TEST_D(1, 0, THREE_D, ONE_D, TWO_D, 0, fadd.d fa0, fa1, fa2)
        TEST_D(2, 0, NONE_D, ONE_D, TWO_D, 0, fsub.d fa0, fa1, fa2)
        TEST_D(3, 0, 0x4018000000000000, TWO_D, THREE_D, 0, fmul.d fa0, fa1, fa2)
        TEST_D(4, NX, 0x3fd5555555555555, ONE_D, THREE_D, 0, fdiv.d fa0, fa1, fa2)
        TEST_D(5, NX, 0x3ff6a09e667f3bcd, TWO_D, 0, 0, fsqrt.d fa0, fa1)
        TEST_D(6, 0, 0x4008000000000000, 0x4022000000000000, 0, 0, fsqrt.d fa0, fa1)  /* sqrt 9 */
        TEST_D(7, NX, ONE_D, ONE_D, 0x3ca0000000000000, 0, fadd.d fa0, fa1, fa2)  /* 1 + 2^-53: tie, to even */
        TEST_D(8, 0, 0x3ff0000000000001, ONE_D, 0x3cb0000000000000, 0, fadd.d fa0, fa1, fa2)

        /* signed zeros */
        TEST_D(9, 0, PZERO_D, PZERO_D, NZERO_D, 0, fadd.d fa0, fa1, fa2)
        TEST_D(10, 0, NZERO_D, NZERO_D, NZERO_D, 0, fadd.d fa0, fa1, fa2)
        TEST_D(11, 0, NZERO_D, PZERO_D, NZERO_D, 0, fadd.d fa0, fa1, fa2, rdn)
        TEST_D(12, 0, PZERO_D, TWO_D, TWO_D, 0, fsub.d fa0, fa1, fa2, rup)
        TEST_D(13, 0, NZERO_D, TWO_D, TWO_D, 0, fsub.d fa0, fa1, fa2, rdn)
        TEST_D(14, 0, NZERO_D, NZERO_D, THREE_D, 0, fmul.d fa0, fa1, fa2)
        TEST_D(15, 0, PZERO_D, NZERO_D, NZERO_D, 0, fmul.d fa0, fa1, fa2)
        TEST_D(16, 0, NZERO_D, PZERO_D, NINF_D, 0, fdiv.d fa0, fa1, fa2)
        TEST_D(17, 0, NZERO_D, NZERO_D, 0, 0, fsqrt.d fa0, fa1)
        TEST_D(18, 0, NZERO_D, PZERO_D, PZERO_D, 0, fneg.d fa0, fa1)

        /* NaNs */
        TEST_D(19, 0, QNAN_D, 0x7ff8000000012345, ONE_D, 0, fadd.d fa0, fa1, fa2)
        TEST_D(20, 0, QNAN_D, 0xfff8000000000000, ONE_D, 0, fmul.d fa0, fa1, fa2)
        TEST_D(21, NV, QNAN_D, SNAN_D, ONE_D, 0, fsub.d fa0, fa1, fa2)
        TEST_D(22, NV, QNAN_D, ONE_D, 0xfff0000000000005, 0, fdiv.d fa0, fa1, fa2)
        TEST_D(23, NV, QNAN_D, PINF_D, PINF_D, 0, fsub.d fa0, fa1, fa2)
        TEST_D(24, 0, NINF_D, NINF_D, NINF_D, 0, fadd.d fa0, fa1, fa2, rtz)  /* infinities are exact, even in RTZ */
        TEST_D(25, NV, QNAN_D, NZERO_D, PINF_D, 0, fmul.d fa0, fa1, fa2)
        TEST_D(26, NV, QNAN_D, PZERO_D, PZERO_D, 0, fdiv.d fa0, fa1, fa2)
        TEST_D(27, NV, QNAN_D, NINF_D, PINF_D, 0, fdiv.d fa0, fa1, fa2)
        TEST_D(28, NV, QNAN_D, NONE_D, 0, 0, fsqrt.d fa0, fa1)      /* sqrt of a negative */
        TEST_D(29, NV, QNAN_D, 0x800fffffffffffff, 0, 0, fsqrt.d fa0, fa1)  /* even a tiny one */
        TEST_D(30, 0, QNAN_D, QNAN_D, 0, 0, fsqrt.d fa0, fa1)
        TEST_D(31, 0, PINF_D, PINF_D, 0, 0, fsqrt.d fa0, fa1)

        /* division by zero */
        TEST_D(32, DZ, PINF_D, ONE_D, PZERO_D, 0, fdiv.d fa0, fa1, fa2)
        TEST_D(33, DZ, NINF_D, ONE_D, NZERO_D, 0, fdiv.d fa0, fa1, fa2)
        TEST_D(34, DZ, PINF_D, NONE_D, NZERO_D, 0, fdiv.d fa0, fa1, fa2)
        TEST_D(35, DZ, NINF_D, MINSUB_D, NZERO_D, 0, fdiv.d fa0, fa1, fa2)
        TEST_D(36, 0, NINF_D, NINF_D, PZERO_D, 0, fdiv.d fa0, fa1, fa2)

        /* overflow and underflow */
        TEST_D(37, OF|NX, PINF_D, MAX_D, TWO_D, 0, fmul.d fa0, fa1, fa2)
        TEST_D(38, OF|NX, MAX_D, MAX_D, TWO_D, 0, fmul.d fa0, fa1, fa2, rtz)
        TEST_D(39, OF|NX, 0xffefffffffffffff, 0xffefffffffffffff, TWO_D, 0, fmul.d fa0, fa1, fa2, rup)
        TEST_D(40, OF|NX, NINF_D, 0xffefffffffffffff, TWO_D, 0, fmul.d fa0, fa1, fa2, rdn)
        TEST_D(41, OF|NX, PINF_D, MAX_D, MAX_D, 0, fadd.d fa0, fa1, fa2)
        TEST_D(42, 0, 0x0008000000000000, MINN_D, HALF_D, 0, fmul.d fa0, fa1, fa2)  /* exact subnormal */
        TEST_D(43, UF|NX, PZERO_D, MINSUB_D, HALF_D, 0, fmul.d fa0, fa1, fa2)
        TEST_D(44, UF|NX, MINSUB_D, MINSUB_D, HALF_D, 0, fmul.d fa0, fa1, fa2, rup)
        TEST_D(45, UF|NX, 0x8000000000000001, MINSUB_D, 0xbfe0000000000000, 0, fmul.d fa0, fa1, fa2, rdn)
        TEST_D(46, UF|NX, NZERO_D, MINSUB_D, NHALF_D, 0, fmul.d fa0, fa1, fa2, rtz)
        TEST_D(47, NX, MINN_D, 0x000fffffffffffff, 0x3ff0000000000001, 0, fmul.d fa0, fa1, fa2)  /* tiny only before rounding */
        TEST_D(48, UF|NX, PZERO_D, MINSUB_D, THREE_D, 0, fdiv.d fa0, fa1, fa2)

        /* fmin / fmax */
        TEST_D(49, 0, NZERO_D, NZERO_D, PZERO_D, 0, fmin.d fa0, fa1, fa2)
        TEST_D(50, 0, NZERO_D, PZERO_D, NZERO_D, 0, fmin.d fa0, fa1, fa2)
        TEST_D(51, 0, PZERO_D, NZERO_D, PZERO_D, 0, fmax.d fa0, fa1, fa2)
        TEST_D(52, 0, PZERO_D, PZERO_D, NZERO_D, 0, fmax.d fa0, fa1, fa2)
        TEST_D(53, 0, ONE_D, QNAN_D, ONE_D, 0, fmin.d fa0, fa1, fa2)
        TEST_D(54, 0, NONE_D, NONE_D, 0x7ff8000000012345, 0, fmax.d fa0, fa1, fa2)
        TEST_D(55, NV, ONE_D, ONE_D, SNAN_D, 0, fmin.d fa0, fa1, fa2)
        TEST_D(56, 0, QNAN_D, 0x7ff8000000012345, 0xfff8000000000001, 0, fmax.d fa0, fa1, fa2)
        TEST_D(57, NV, QNAN_D, SNAN_D, SNAN_D, 0, fmin.d fa0, fa1, fa2)
        TEST_D(58, 0, PINF_D, PINF_D, MAX_D, 0, fmax.d fa0, fa1, fa2)
        TEST_D(59, 0, MINSUB_D, MINSUB_D, 0x0000000000000002, 0, fmin.d fa0, fa1, fa2)

        /* comparisons */
        TEST_D_X(60, 0, 1, ONE_D, ONE_D, feq.d a0, fa1, fa2)
        TEST_D_X(61, 0, 1, PZERO_D, NZERO_D, feq.d a0, fa1, fa2)
        TEST_D_X(62, 0, 0, QNAN_D, QNAN_D, feq.d a0, fa1, fa2)
        TEST_D_X(63, NV, 0, ONE_D, SNAN_D, feq.d a0, fa1, fa2)
        TEST_D_X(64, NV, 0, QNAN_D, ONE_D, flt.d a0, fa1, fa2)
        TEST_D_X(65, NV, 0, QNAN_D, QNAN_D, fle.d a0, fa1, fa2)
        TEST_D_X(66, 0, 0, PZERO_D, NZERO_D, flt.d a0, fa1, fa2)
        TEST_D_X(67, 0, 1, PZERO_D, NZERO_D, fle.d a0, fa1, fa2)
        TEST_D_X(68, 0, 1, MINSUB_D, MINN_D, flt.d a0, fa1, fa2)
        TEST_D_X(69, 0, 1, NINF_D, NONE_D, fle.d a0, fa1, fa2)
        TEST_D_X(70, 0, 0, ONE_D, NONE_D, flt.d a0, fa1, fa2)

        /* fclass.d */
        TEST_D_X(71, 0, 1, NINF_D, 0, fclass.d a0, fa1)
        TEST_D_X(72, 0, 2, NONE_D, 0, fclass.d a0, fa1)
        TEST_D_X(73, 0, 4, 0x8000000000000001, 0, fclass.d a0, fa1)
        TEST_D_X(74, 0, 8, NZERO_D, 0, fclass.d a0, fa1)
        TEST_D_X(75, 0, 16, PZERO_D, 0, fclass.d a0, fa1)
        TEST_D_X(76, 0, 32, 0x000fffffffffffff, 0, fclass.d a0, fa1)
        TEST_D_X(77, 0, 64, ONE_D, 0, fclass.d a0, fa1)
        TEST_D_X(78, 0, 128, PINF_D, 0, fclass.d a0, fa1)
        TEST_D_X(79, 0, 256, SNAN_D, 0, fclass.d a0, fa1)
        TEST_D_X(80, 0, 512, QNAN_D, 0, fclass.d a0, fa1)
        TEST_D_X(81, 0, 512, 0xfff8000000000001, 0, fclass.d a0, fa1)

        /* sign injection */
        TEST_D(82, 0, NONE_D, ONE_D, 0xc000000000000000, 0, fsgnj.d fa0, fa1, fa2)
        TEST_D(83, 0, ONE_D, ONE_D, 0xc000000000000000, 0, fsgnjn.d fa0, fa1, fa2)
        TEST_D(84, 0, ONE_D, NONE_D, 0xc000000000000000, 0, fsgnjx.d fa0, fa1, fa2)
        TEST_D(85, 0, 0xfff0000000000001, SNAN_D, NONE_D, 0, fsgnj.d fa0, fa1, fa2)
        TEST_D(86, 0, PZERO_D, NZERO_D, 0, 0, fabs.d fa0, fa1)
        TEST_D(87, 0, 0x7ff8000000012345, 0xfff8000000012345, 0, 0, fabs.d fa0, fa1)

        /* fused multiply-add */
        TEST_D(88, 0, 0x401c000000000000, TWO_D, THREE_D, ONE_D, fmadd.d fa0, fa1, fa2, fa3)
        TEST_D(89, 0, 0x4014000000000000, TWO_D, THREE_D, ONE_D, fmsub.d fa0, fa1, fa2, fa3)
        TEST_D(90, 0, 0xc014000000000000, TWO_D, THREE_D, ONE_D, fnmsub.d fa0, fa1, fa2, fa3)
        TEST_D(91, 0, 0xc01c000000000000, TWO_D, THREE_D, ONE_D, fnmadd.d fa0, fa1, fa2, fa3)
        TEST_D(92, 0, 0x3c90000000000000, 0x3ff0000002000000, 0x3ff0000002000000, 0xbff0000004000000, fmadd.d fa0, fa1, fa2, fa3)  /* one rounding: (1+2^-27)^2 - (1+2^-26) = 2^-54 */
        TEST_D(93, NX, PZERO_D, 0x3ff0000002000000, 0x3ff0000002000000, 0xbff0000004000000, fmul.d ft0, fa1, fa2; fadd.d fa0, ft0, fa3)  /* two roundings lose it */
        TEST_D(94, NX, 0x3ff0000000000001, ONE_D, ONE_D, 0x3ca0000000000001, fmadd.d fa0, fa1, fa2, fa3)  /* just above the tie */
        TEST_D(95, NV, QNAN_D, PZERO_D, PINF_D, QNAN_D, fmadd.d fa0, fa1, fa2, fa3)  /* 0 * inf + qNaN */
        TEST_D(96, NV, QNAN_D, PINF_D, PZERO_D, ONE_D, fnmsub.d fa0, fa1, fa2, fa3)
        TEST_D(97, NV, QNAN_D, PINF_D, ONE_D, NINF_D, fmadd.d fa0, fa1, fa2, fa3)  /* inf - inf */
        TEST_D(98, NV, QNAN_D, SNAN_D, ONE_D, ONE_D, fnmadd.d fa0, fa1, fa2, fa3)
        TEST_D(99, 0, NZERO_D, PZERO_D, ONE_D, PZERO_D, fnmadd.d fa0, fa1, fa2, fa3)
        TEST_D(100, 0, PZERO_D, PZERO_D, ONE_D, NZERO_D, fnmadd.d fa0, fa1, fa2, fa3, rne)  /* -(+0) - (-0) */
        TEST_D(101, 0, NZERO_D, ONE_D, ONE_D, ONE_D, fmsub.d fa0, fa1, fa2, fa3, rdn)
        TEST_D(102, 0, MAX_D, MAX_D, TWO_D, 0xffefffffffffffff, fmadd.d fa0, fa1, fa2, fa3)  /* no intermediate overflow */
        TEST_D(103, UF|NX, MINSUB_D, MINN_D, 0x3ca0000000000000, MINSUB_D, fmadd.d fa0, fa1, fa2, fa3, rtz)

        /* double -> integer */
        TEST_D_X(104, NX, 0, NHALF_D, 0, fcvt.w.d a0, fa1, rne)   /* -0.5 */
        TEST_D_X(105, NX, 0, NHALF_D, 0, fcvt.w.d a0, fa1, rtz)   /* -0.5 */
        TEST_D_X(106, NX, -1, NHALF_D, 0, fcvt.w.d a0, fa1, rdn)   /* -0.5 */
        TEST_D_X(107, NX, 0, NHALF_D, 0, fcvt.w.d a0, fa1, rup)   /* -0.5 */
        TEST_D_X(108, NX, -1, NHALF_D, 0, fcvt.w.d a0, fa1, rmm)   /* -0.5 */
        TEST_D_X(109, NX, 0, NHALF_D, 0, fcvt.l.d a0, fa1, rne)
        TEST_D_X(110, NX, 0, NHALF_D, 0, fcvt.l.d a0, fa1, rtz)
        TEST_D_X(111, NX, -1, NHALF_D, 0, fcvt.l.d a0, fa1, rdn)
        TEST_D_X(112, NX, 0, NHALF_D, 0, fcvt.l.d a0, fa1, rup)
        TEST_D_X(113, NX, -1, NHALF_D, 0, fcvt.l.d a0, fa1, rmm)
        TEST_D_X(114, NX, 0, NHALF_D, 0, fcvt.wu.d a0, fa1, rne)
        TEST_D_X(115, NX, 0, NHALF_D, 0, fcvt.wu.d a0, fa1, rtz)
        TEST_D_X(116, NV, 0, NHALF_D, 0, fcvt.wu.d a0, fa1, rdn)
        TEST_D_X(117, NX, 0, NHALF_D, 0, fcvt.wu.d a0, fa1, rup)
        TEST_D_X(118, NV, 0, NHALF_D, 0, fcvt.wu.d a0, fa1, rmm)
        TEST_D_X(119, NX, 0, NHALF_D, 0, fcvt.lu.d a0, fa1, rne)
        TEST_D_X(120, NV, 0, NHALF_D, 0, fcvt.lu.d a0, fa1, rdn)
        TEST_D_X(121, NX, 2, 0x4004000000000000, 0, fcvt.w.d a0, fa1, rne)   /* 2.5 */
        TEST_D_X(122, NX, 3, 0x4004000000000000, 0, fcvt.w.d a0, fa1, rmm)
        TEST_D_X(123, NX, -3, 0xc004000000000000, 0, fcvt.l.d a0, fa1, rmm)
        TEST_D_X(124, NX, -3, 0xc004000000000000, 0, fcvt.l.d a0, fa1, rdn)
        TEST_D_X(125, NX, -2, 0xc004000000000000, 0, fcvt.l.d a0, fa1, rup)
        TEST_D_X(126, NV, 0x7fffffff, QNAN_D, 0, fcvt.w.d a0, fa1, rtz)
        TEST_D_X(127, NV, 0x7fffffff, 0xfff8000000000000, 0, fcvt.w.d a0, fa1, rtz)  /* any NaN: the maximum */
        TEST_D_X(128, NV, 0x7fffffff, SNAN_D, 0, fcvt.w.d a0, fa1, rtz)
        TEST_D_X(129, NV, 0x7fffffff, 0x41e0000000000000, 0, fcvt.w.d a0, fa1, rtz)  /* 2^31 */
        TEST_D_X(130, NX, 0x7fffffff, 0x41dfffffffe00000, 0, fcvt.w.d a0, fa1, rtz)  /* 2^31 - 0.5 */
        TEST_D_X(131, NV, 0x7fffffff, 0x41dfffffffe00000, 0, fcvt.w.d a0, fa1, rne)  /* ties to even 2^31: out of range */
        TEST_D_X(132, NX, 0xffffffff80000000, 0xc1e0000000100000, 0, fcvt.w.d a0, fa1, rtz)  /* -2^31 - 0.5 */
        TEST_D_X(133, NV, 0xffffffff80000000, 0xc1e0000000100000, 0, fcvt.w.d a0, fa1, rdn)
        TEST_D_X(134, NV, 0xffffffff80000000, NINF_D, 0, fcvt.w.d a0, fa1, rtz)
        TEST_D_X(135, NV, -1, QNAN_D, 0, fcvt.wu.d a0, fa1, rtz)
        TEST_D_X(136, NV, -1, 0x41f0000000000000, 0, fcvt.wu.d a0, fa1, rtz)  /* 2^32 */
        TEST_D_X(137, NX, -1, 0x41efffffffffffff, 0, fcvt.wu.d a0, fa1, rtz)  /* just below 2^32: 0xffffffff, sign-extended */
        TEST_D_X(138, 0, 0xffffffff80000000, 0x41e0000000000000, 0, fcvt.wu.d a0, fa1, rtz)  /* 2^31, sign-extended */
        TEST_D_X(139, NV, 0, NINF_D, 0, fcvt.wu.d a0, fa1, rtz)
        TEST_D_X(140, NV, 0x7fffffffffffffff, QNAN_D, 0, fcvt.l.d a0, fa1, rtz)
        TEST_D_X(141, NV, 0x7fffffffffffffff, 0x43e0000000000000, 0, fcvt.l.d a0, fa1, rtz)  /* 2^63 */
        TEST_D_X(142, 0, 0x8000000000000000, 0xc3e0000000000000, 0, fcvt.l.d a0, fa1, rtz)  /* -2^63 fits */
        TEST_D_X(143, NV, 0x8000000000000000, NINF_D, 0, fcvt.l.d a0, fa1, rtz)
        TEST_D_X(144, 0, 0x7ffffffffffffc00, 0x43dfffffffffffff, 0, fcvt.l.d a0, fa1, rtz)
        TEST_D_X(145, NV, -1, QNAN_D, 0, fcvt.lu.d a0, fa1, rtz)
        TEST_D_X(146, NV, -1, 0x43f0000000000000, 0, fcvt.lu.d a0, fa1, rtz)  /* 2^64 */
        TEST_D_X(147, 0, 0xfffffffffffff800, 0x43efffffffffffff, 0, fcvt.lu.d a0, fa1, rtz)
        TEST_D_X(148, 0, 0x8000000000000000, 0x43e0000000000000, 0, fcvt.lu.d a0, fa1, rtz)
        TEST_D_X(149, NV, 0, NONE_D, 0, fcvt.lu.d a0, fa1, rtz)
        TEST_D_X(150, NX, 0, MINSUB_D, 0, fcvt.l.d a0, fa1, rtz)
        TEST_D_X(151, NX, 1, MINSUB_D, 0, fcvt.l.d a0, fa1, rup)
        TEST_D_X(152, 0, 0, NZERO_D, 0, fcvt.lu.d a0, fa1, rtz)  /* -0 is in range */

        /* integer -> double */
        TEST_X_D(153, 0, 0xc014000000000000, -5, fcvt.d.w fa0, a2)
        TEST_X_D(154, 0, 0x4008000000000000, 0xffffffff00000003, fcvt.d.w fa0, a2)  /* only the low 32 bits */
        TEST_X_D(155, 0, 0x41efffffffe00000, -1, fcvt.d.wu fa0, a2)   /* 0xffffffff */
        TEST_X_D(156, 0, 0xc1e0000000000000, 0x80000000, fcvt.d.w fa0, a2)
        TEST_X_D(157, NX, 0x4340000000000000, 0x20000000000001, fcvt.d.l fa0, a2)  /* 2^53 + 1 */
        TEST_X_D(158, NX, 0x4340000000000001, 0x20000000000001, fcvt.d.l fa0, a2, rup)
        TEST_X_D(159, NX, 0xc340000000000001, -0x20000000000001, fcvt.d.l fa0, a2, rdn)
        TEST_X_D(160, NX, 0xc340000000000000, -0x20000000000001, fcvt.d.l fa0, a2, rtz)
        TEST_X_D(161, 0, 0xc3e0000000000000, 0x8000000000000000, fcvt.d.l fa0, a2)
        TEST_X_D(162, NX, 0x43f0000000000000, -1, fcvt.d.lu fa0, a2)
        TEST_X_D(163, NX, 0x43efffffffffffff, -1, fcvt.d.lu fa0, a2, rtz)
        TEST_X_D(164, 0, PZERO_D, 0, fcvt.d.l fa0, a2, rdn)  /* +0 even rounding down */

        /* fcvt.s.d / fcvt.d.s */
        TEST_D_S(165, NX, 0x3eaaaaab, 0x3fd5555555555555, fcvt.s.d fa0, fa1)
        TEST_D_S(166, NX, 0x3eaaaaaa, 0x3fd5555555555555, fcvt.s.d fa0, fa1, rtz)
        TEST_D_S(167, 0, ONE_S, ONE_D, fcvt.s.d fa0, fa1)
        TEST_D_S(168, 0, NZERO_S, NZERO_D, fcvt.s.d fa0, fa1)
        TEST_D_S(169, OF|NX, PINF_S, MAX_D, fcvt.s.d fa0, fa1)
        TEST_D_S(170, OF|NX, MAX_S, MAX_D, fcvt.s.d fa0, fa1, rtz)
        TEST_D_S(171, 0, NINF_S, NINF_D, fcvt.s.d fa0, fa1)
        TEST_D_S(172, 0, QNAN_S, 0x7ff8000000012345, fcvt.s.d fa0, fa1)
        TEST_D_S(173, NV, QNAN_S, SNAN_D, fcvt.s.d fa0, fa1)
        TEST_D_S(174, UF|NX, PZERO_S, 0x358f000000000000, fcvt.s.d fa0, fa1)  /* 2^-166 */
        TEST_D_S(175, UF|NX, MINSUB_S, 0x358f000000000000, fcvt.s.d fa0, fa1, rup)
        TEST_D_S(176, 0, MINSUB_S, 0x36a0000000000000, fcvt.s.d fa0, fa1)  /* 2^-149: exact subnormal */
        TEST_S_D(177, 0, 0x3fd5555560000000, 0x3eaaaaab, fcvt.d.s fa0, fa1)
        TEST_S_D(178, 0, 0x36a0000000000000, MINSUB_S, fcvt.d.s fa0, fa1)
        TEST_S_D(179, 0, NINF_D, NINF_S, fcvt.d.s fa0, fa1)
        TEST_S_D(180, 0, NZERO_D, NZERO_S, fcvt.d.s fa0, fa1)
        TEST_S_D(181, 0, QNAN_D, 0x7fc12345, fcvt.d.s fa0, fa1)
        TEST_S_D(182, NV, QNAN_D, SNAN_S, fcvt.d.s fa0, fa1)

        /* fmv.x.d / fmv.d.x: raw bits, also for NaNs */
        TEST_X_D(183, 0, 0x123456789abcdef0, 0x123456789abcdef0, fmv.d.x fa0, a2)
        TEST_X_D(184, 0, SNAN_D, SNAN_D, fmv.d.x fa0, a2)
        TEST_D_X(185, 0, 0xfff0000000000001, 0xfff0000000000001, 0, fmv.x.d a0, fa1)

        /* each rounding mode through frm (rm = dyn) and through the static rm field */
        csrwi frm, RM_RNE
        TEST_D(186, NX, ONE_D, ONE_D, 0x3ca0000000000000, 0, fadd.d fa0, fa1, fa2)
        TEST_D(187, NX, NONE_D, NONE_D, 0xbca0000000000000, 0, fadd.d fa0, fa1, fa2)
        TEST_D(188, NX, 0x3fe5555555555555, TWO_D, THREE_D, 0, fdiv.d fa0, fa1, fa2)
        TEST_D(189, NX, 0xbfe5555555555555, 0xc000000000000000, THREE_D, 0, fdiv.d fa0, fa1, fa2)
        TEST_D_X(190, NX, 0, NHALF_D, 0, fcvt.l.d a0, fa1)
        csrwi frm, RM_RTZ
        TEST_D(191, NX, ONE_D, ONE_D, 0x3ca0000000000000, 0, fadd.d fa0, fa1, fa2)
        TEST_D(192, NX, NONE_D, NONE_D, 0xbca0000000000000, 0, fadd.d fa0, fa1, fa2)
        TEST_D(193, NX, 0x3fe5555555555555, TWO_D, THREE_D, 0, fdiv.d fa0, fa1, fa2)
        TEST_D(194, NX, 0xbfe5555555555555, 0xc000000000000000, THREE_D, 0, fdiv.d fa0, fa1, fa2)
        TEST_D_X(195, NX, 0, NHALF_D, 0, fcvt.l.d a0, fa1)
        csrwi frm, RM_RDN
        TEST_D(196, NX, ONE_D, ONE_D, 0x3ca0000000000000, 0, fadd.d fa0, fa1, fa2)
        TEST_D(197, NX, 0xbff0000000000001, NONE_D, 0xbca0000000000000, 0, fadd.d fa0, fa1, fa2)
        TEST_D(198, NX, 0x3fe5555555555555, TWO_D, THREE_D, 0, fdiv.d fa0, fa1, fa2)
        TEST_D(199, NX, 0xbfe5555555555556, 0xc000000000000000, THREE_D, 0, fdiv.d fa0, fa1, fa2)
        TEST_D_X(200, NX, -1, NHALF_D, 0, fcvt.l.d a0, fa1)
        csrwi frm, RM_RUP
        TEST_D(201, NX, 0x3ff0000000000001, ONE_D, 0x3ca0000000000000, 0, fadd.d fa0, fa1, fa2)
        TEST_D(202, NX, NONE_D, NONE_D, 0xbca0000000000000, 0, fadd.d fa0, fa1, fa2)
        TEST_D(203, NX, 0x3fe5555555555556, TWO_D, THREE_D, 0, fdiv.d fa0, fa1, fa2)
        TEST_D(204, NX, 0xbfe5555555555555, 0xc000000000000000, THREE_D, 0, fdiv.d fa0, fa1, fa2)
        TEST_D_X(205, NX, 0, NHALF_D, 0, fcvt.l.d a0, fa1)
        csrwi frm, RM_RMM
        TEST_D(206, NX, 0x3ff0000000000001, ONE_D, 0x3ca0000000000000, 0, fadd.d fa0, fa1, fa2)
        TEST_D(207, NX, 0xbff0000000000001, NONE_D, 0xbca0000000000000, 0, fadd.d fa0, fa1, fa2)
        TEST_D(208, NX, 0x3fe5555555555555, TWO_D, THREE_D, 0, fdiv.d fa0, fa1, fa2)
        TEST_D(209, NX, 0xbfe5555555555555, 0xc000000000000000, THREE_D, 0, fdiv.d fa0, fa1, fa2)
        TEST_D_X(210, NX, -1, NHALF_D, 0, fcvt.l.d a0, fa1)
        csrwi frm, RM_RUP
        TEST_D(211, NX, ONE_D, ONE_D, 0x3ca0000000000000, 0, fadd.d fa0, fa1, fa2, rne)
        TEST_D(212, NX, 0xbfe5555555555555, 0xc000000000000000, THREE_D, 0, fdiv.d fa0, fa1, fa2, rne)
        TEST_D_X(213, NX, 0, NHALF_D, 0, fcvt.w.d a0, fa1, rne)
        csrwi frm, RM_RUP
        TEST_D(214, NX, ONE_D, ONE_D, 0x3ca0000000000000, 0, fadd.d fa0, fa1, fa2, rtz)
        TEST_D(215, NX, 0xbfe5555555555555, 0xc000000000000000, THREE_D, 0, fdiv.d fa0, fa1, fa2, rtz)
        TEST_D_X(216, NX, 0, NHALF_D, 0, fcvt.w.d a0, fa1, rtz)
        csrwi frm, RM_RUP
        TEST_D(217, NX, ONE_D, ONE_D, 0x3ca0000000000000, 0, fadd.d fa0, fa1, fa2, rdn)
        TEST_D(218, NX, 0xbfe5555555555556, 0xc000000000000000, THREE_D, 0, fdiv.d fa0, fa1, fa2, rdn)
        TEST_D_X(219, NX, -1, NHALF_D, 0, fcvt.w.d a0, fa1, rdn)
        csrwi frm, RM_RDN
        TEST_D(220, NX, 0x3ff0000000000001, ONE_D, 0x3ca0000000000000, 0, fadd.d fa0, fa1, fa2, rup)
        TEST_D(221, NX, 0xbfe5555555555555, 0xc000000000000000, THREE_D, 0, fdiv.d fa0, fa1, fa2, rup)
        TEST_D_X(222, NX, 0, NHALF_D, 0, fcvt.w.d a0, fa1, rup)
        csrwi frm, RM_RTZ
        TEST_D(223, NX, 0x3ff0000000000001, ONE_D, 0x3ca0000000000000, 0, fadd.d fa0, fa1, fa2, rmm)
        TEST_D(224, NX, 0xbfe5555555555555, 0xc000000000000000, THREE_D, 0, fdiv.d fa0, fa1, fa2, rmm)
        TEST_D_X(225, NX, -1, NHALF_D, 0, fcvt.w.d a0, fa1, rmm)
        csrwi frm, RM_RNE

        /* fflags accrue across D instructions too */
        TEST_CASE(226)
        csrwi fflags, 0
        LOAD_D(fa1, ONE_D)
        LOAD_D(fa2, PZERO_D)
        fdiv.d fa0, fa1, fa2
        fsqrt.d fa0, fa1                /* exact */
        LOAD_D(fa3, NONE_D)
        fsqrt.d fa0, fa3
        csrr a1, fflags
        CHECK(a1, DZ|NV)
        fcvt.s.d fa0, fa3               /* exact */
        LOAD_D(fa4, 0x3fd5555555555555)
        fcvt.s.d fa0, fa4
        csrr a1, fflags
        CHECK(a1, DZ|NV|NX)
        csrwi fflags, 0

        /* NaN-boxing seen from D: fmv.x.d of a single, fcvt.d.s of an unboxed value */
        la t1, fpdata
        TEST_CASE(227)
        flw fa0, 0(t1)
        fmv.x.d a0, fa0
        CHECK(a0, 0xffffffff3f800000)
        TEST_CASE(228)
        fld fa0, 0(t1)                  /* the same bytes as a double: no boxing */
        fmv.x.d a0, fa0
        CHECK(a0, 0x400921fb3f800000)
        TEST_CASE(229)
        csrwi fflags, 0
        fcvt.d.s fa1, fa0               /* not boxed: the canonical NaN, quietly */
        csrr a1, fflags
        fmv.x.d a0, fa1
        CHECK(a0, QNAN_D)
        CHECK(a1, 0)
        TEST_CASE(230)
        LOAD_S(fa2, ONE_S)
        fadd.d fa0, fa2, fa2            /* a boxed single read as a double is a NaN */
        fmv.x.d a0, fa0
        CHECK(a0, QNAN_D)

        /* fld / fsd */
        TEST_CASE(231)
        li t0, 0x0123456789abcdef
        fmv.d.x fa5, t0
        fsd fa5, 16(t1)
        ld a0, 16(t1)
        CHECK(a0, 0x0123456789abcdef)
        addi t2, t1, 32
        fld fa6, -16(t2)
        fmv.x.d a0, fa6
        CHECK(a0, 0x0123456789abcdef)
        TEST_CASE(232)
        li t0, SNAN_D
        sd t0, 24(t1)
        csrwi fflags, 0
        fld ft11, 24(t1)                /* loads and stores never canonicalise or signal */
        fsd ft11, 32(t1)
        csrr a1, fflags
        ld a0, 32(t1)
        CHECK(a0, SNAN_D)
        CHECK(a1, 0)

        /* compressed loads and stores: c.fld/c.fsd (f8-f15, x8-x15) and c.fldsp/c.fsdsp */
        TEST_CASE(233)
        mv a5, t1
        li t0, 0x4045000000000000
        sd t0, 40(t1)
        .option push
        .option rvc
        c.fld fa4, 40(a5)
        c.fsd fa4, 48(a5)
        .option pop
        ld a0, 48(t1)
        CHECK(a0, 0x4045000000000000)
        fmv.x.d a0, fa4
        CHECK(a0, 0x4045000000000000)
        TEST_CASE(234)
        addi sp, sp, -64
        li t0, 0xc045000000000000
        fmv.d.x ft5, t0
        .option push
        .option rvc
        c.fsdsp ft5, 56(sp)
        c.fldsp fs11, 56(sp)
        .option pop
        ld a0, 56(sp)
        addi sp, sp, 64
        CHECK(a0, 0xc045000000000000)
        fmv.x.d a0, fs11
        CHECK(a0, 0xc045000000000000)

        TEST_END

        .data
        .balign 16
fpdata:
        .word 0x3f800000                /* 1.0f */
        .word 0x400921fb                /* with the word above: pi as a double */
        .dword 0, 0, 0, 0, 0, 0, 0

