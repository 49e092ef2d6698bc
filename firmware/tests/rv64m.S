/* rv64m: RV64M multiply/divide, including the W forms, division by zero
 * and signed overflow (INT_MIN / -1) which must not trap. */
#include "test.h"
        .option norvc
TEST_BEGIN

/* ---- MUL ---- */
        TEST_RR(1, mul, 21, 3, 7)
        TEST_RR(2, mul, 0xffffffffffffffeb, -3, 7)
        TEST_RR(3, mul, 21, -3, -7)
        TEST_RR(4, mul, 0x8000000000000000, 0x8000000000000000, -1)
        TEST_RR(5, mul, 0, 0x0000000100000000, 0x0000000100000000)
        TEST_RR(6, mul, 0xfffffffe00000001, 0xffffffff, 0xffffffff)
        TEST_RR(7, mul, 1, -1, -1)
        TEST_RR(8, mul, 0, 0x123456789abcdef0, 0)
        TEST_RR(9, mul, 0x0fedcba987654312, 0x0123456789abcdef, 0xe)

/* ---- MULH (signed x signed, upper 64 bits) ---- */
        TEST_RR(10, mulh, 0, -1, -1)
        TEST_RR(11, mulh, 0x4000000000000000, 0x8000000000000000, 0x8000000000000000)
        TEST_RR(12, mulh, 0xffffffffffffffff, 0x8000000000000000, 1)
        TEST_RR(13, mulh, 0x3fffffffffffffff, 0x7fffffffffffffff, 0x7fffffffffffffff)
        TEST_RR(14, mulh, 0xffffffffffffffff, -1, 1)
        TEST_RR(15, mulh, 0, 2, 0x4000000000000000)
        TEST_RR(16, mulh, 1, 4, 0x4000000000000000)
        TEST_RR(17, mulh, 0xc000000000000000, 0x8000000000000000, 0x7fffffffffffffff)

/* ---- MULHU (unsigned x unsigned) ---- */
        TEST_RR(18, mulhu, 0xfffffffffffffffe, -1, -1)
        TEST_RR(19, mulhu, 1, 0x8000000000000000, 2)
        TEST_RR(20, mulhu, 1, -1, 2)
        TEST_RR(21, mulhu, 0, 1, -1)
        TEST_RR(22, mulhu, 0x4000000000000000, 0x8000000000000000, 0x8000000000000000)
        TEST_RR(23, mulhu, 0x00000000ffffffff, 0x0000000100000000, 0xffffffffffffffff)

/* ---- MULHSU (signed rs1 x unsigned rs2) ---- */
        TEST_RR(24, mulhsu, 0xffffffffffffffff, -1, -1)
        TEST_RR(25, mulhsu, 0xffffffffffffffff, -1, 1)
        TEST_RR(26, mulhsu, 0, 1, -1)
        TEST_RR(27, mulhsu, 0x8000000000000000, 0x8000000000000000, 0xffffffffffffffff)
        TEST_RR(28, mulhsu, 1, 2, 0x8000000000000000)
        TEST_RR(29, mulhsu, 0xffffffffffffffff, -2, 0x8000000000000000)
        TEST_RR(30, mulhsu, 0, 0, -1)

/* ---- DIV / DIVU ---- */
        TEST_RR(31, div, 3, 20, 6)
        TEST_RR(32, div, -3, -20, 6)
        TEST_RR(33, div, -3, 20, -6)
        TEST_RR(34, div, 3, -20, -6)
        TEST_RR(35, div, -1, 20, 0)                                    /* by zero */
        TEST_RR(36, div, -1, 0, 0)
        TEST_RR(37, div, 0x8000000000000000, 0x8000000000000000, -1)  /* overflow */
        TEST_RR(38, div, 0xc000000000000000, 0x8000000000000000, 2)
        TEST_RR(39, div, 0, 5, 7)
        TEST_RR(40, divu, 3, 20, 6)
        TEST_RR(41, divu, 0x2aaaaaaaaaaaaaa7, -20, 6)
        TEST_RR(42, divu, 0, 20, -6)
        TEST_RR(43, divu, 0xffffffffffffffff, 20, 0)                   /* by zero */
        TEST_RR(44, divu, 0xffffffffffffffff, 0, 0)
        TEST_RR(45, divu, 0xffffffffffffffff, -1, 1)
        TEST_RR(46, divu, 0, 0x8000000000000000, -1)
        TEST_RR(47, divu, 1, -1, -1)

/* ---- REM / REMU ---- */
        TEST_RR(48, rem, 2, 20, 6)
        TEST_RR(49, rem, -2, -20, 6)
        TEST_RR(50, rem, 2, 20, -6)
        TEST_RR(51, rem, -2, -20, -6)
        TEST_RR(52, rem, 20, 20, 0)                                    /* by zero: dividend */
        TEST_RR(53, rem, 0x8000000000000000, 0x8000000000000000, 0)
        TEST_RR(54, rem, 0, 0x8000000000000000, -1)                    /* overflow: 0 */
        TEST_RR(55, rem, -1, -1, 2)
        TEST_RR(56, remu, 2, 20, 6)
        TEST_RR(57, remu, 2, -20, 6)
        TEST_RR(58, remu, 20, 20, -6)
        TEST_RR(59, remu, -20, -20, 0)                                 /* by zero: dividend */
        TEST_RR(60, remu, 0x7fffffffffffffff, 0x7fffffffffffffff, 0x8000000000000000)
        TEST_RR(61, remu, 0, -1, -1)

/* ---- MULW ---- */
        TEST_RR(62, mulw, 0xfffffffffffffffe, 0x7fffffff, 2)
        TEST_RR(63, mulw, 21, 0x0000000100000003, 7)
        TEST_RR(64, mulw, 1, 0xffffffff, 0xffffffff)
        TEST_RR(65, mulw, 0, 0x10000, 0x10000)
        TEST_RR(66, mulw, 0xffffffff80000000, 0x8000, 0x10000)
        TEST_RR(67, mulw, 0xffffffffffffffeb, -3, 7)
        TEST_RR(68, mulw, 0x0000000076543210, 0x1234567876543210, 0xabcdef0000000001)

/* ---- DIVW / DIVUW ---- */
        TEST_RR(69, divw, 3, 20, 6)
        TEST_RR(70, divw, 3, 0x0000000100000014, 6)                    /* upper bits ignored */
        TEST_RR(71, divw, -3, -20, 6)
        TEST_RR(72, divw, 0xffffffff80000000, 0x80000000, -1)          /* overflow */
        TEST_RR(73, divw, -1, 20, 0)
        TEST_RR(74, divw, -1, 20, 0x0000000100000000)                  /* divisor low 32 bits = 0 */
        TEST_RR(75, divw, 0xffffffff80000000, 0x80000000, 1)
        TEST_RR(76, divw, -4, 0x00000000fffffff0, 4)
        TEST_RR(77, divuw, 0x3ffffffc, 0x00000000fffffff0, 4)
        TEST_RR(78, divuw, 0xffffffff80000000, 0x80000000, 1)          /* result sign-extended */
        TEST_RR(79, divuw, 0xffffffffffffffff, 20, 0)
        TEST_RR(80, divuw, 3, 0xffffffff00000014, 0x0000000100000006)
        TEST_RR(81, divuw, 0, 0x7fffffff, 0x80000000)
        TEST_RR(82, divuw, 1, -1, -1)

/* ---- REMW / REMUW ---- */
        TEST_RR(83, remw, -2, -20, 6)
        TEST_RR(84, remw, 2, 20, -6)
        TEST_RR(85, remw, 0, 0x80000000, -1)                           /* overflow */
        TEST_RR(86, remw, 0xffffffff80000005, 0x0000000180000005, 0)   /* by zero: sext(rs1[31:0]) */
        TEST_RR(87, remw, 2, 0x0000000100000014, 6)
        TEST_RR(88, remuw, 2, 0x00000000fffffff0, 7)
        TEST_RR(89, remuw, 0xffffffff80000005, 0x0000000080000005, 0)  /* by zero */
        TEST_RR(90, remuw, 2, 0x0000000100000014, 6)
        TEST_RR(91, remuw, 0xfffffffffffffffe, 0xfffffffe, 0xffffffff) /* rem sign-extended */

/* ---- aliasing, x0 ---- */
        TEST_RR_SRC1_EQ_DEST(92, mul, 143, 13, 11)
        TEST_RR_SRC2_EQ_DEST(93, div, 1, 13, 11)
        TEST_RR_SRC12_EQ_DEST(94, rem, 0, 13)
        TEST_RR_SRC12_EQ_DEST(95, mulhu, 0xfffffffffffffffe, -1)
        TEST_RR_ZERO_SRC1(96, div, 0, 5)
        TEST_RR_ZERO_SRC2(97, div, -1, 5)
        TEST_RR_ZERO_SRC2(98, remu, 5, 5)
        TEST_RR_ZERO_DEST(99, mul, 3, 4)
        TEST_RR_ZERO_DEST(100, div, 3, 0)

TEST_END
