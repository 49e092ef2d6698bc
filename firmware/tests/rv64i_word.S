/* rv64i_word: RV64I 32-bit "W" instructions.  Each operates on the low
 * 32 bits of its sources and sign-extends the 32-bit result to 64 bits;
 * shift amounts use only 5 bits. */
#include "test.h"
        .option norvc
TEST_BEGIN

/* ---- ADDIW ---- */
        TEST_RI(1, addiw, 0xffffffff80000000, 0x7fffffff, 1)
        TEST_RI(2, addiw, 0xffffffffffffffff, 0x00000000ffffffff, 0)    /* sext.w */
        TEST_RI(3, addiw, 0x0000000023456789, 0x0000000123456789, 0)
        TEST_RI(4, addiw, 0x000000007fffffff, 0x0000000080000000, -1)
        TEST_RI(5, addiw, 0xfffffffffffff800, 0, -2048)
        TEST_RI(6, addiw, 1, 0xffffffff00000000, 1)
        TEST_RI(7, addiw, 0x00000000000007ff, 0xffffffff00000000, 0x7ff)
        TEST_RI(8, addiw, 0, 0x5555555500000001, -1)

/* ---- ADDW / SUBW ---- */
        TEST_RR(9, addw, 0xffffffff80000000, 0x7fffffff, 1)
        TEST_RR(10, addw, 0, 0xffffffff, 1)
        TEST_RR(11, addw, 0, 0x0000000100000000, 0x0000000200000000)
        TEST_RR(12, addw, 0xfffffffffffffffe, -1, -1)
        TEST_RR(13, addw, 0, 0x80000000, 0x80000000)
        TEST_RR(14, addw, 0x0000000012345678, 0xabcdef0012345000, 0x1234567800000678)
        TEST_RR(15, subw, 0xffffffffffffffff, 0, 1)
        TEST_RR(16, subw, 0x000000007fffffff, 0x80000000, 1)
        TEST_RR(17, subw, 0xffffffff80000000, 0x7fffffff, -1)
        TEST_RR(18, subw, 2, 0x0000000100000005, 0x0000000200000003)
        TEST_RR(19, subw, 0xffffffff80000000, 0, 0x80000000)

/* ---- SLLW / SRLW / SRAW (shift amount = rs2[4:0]) ---- */
        TEST_RR(20, sllw, 0xffffffff80000000, 1, 31)
        TEST_RR(21, sllw, 1, 1, 32)
        TEST_RR(22, sllw, 0xffffffff80000000, 1, 63)
        TEST_RR(23, sllw, 0x10, 0xffffffff00000001, 4)
        TEST_RR(24, sllw, 0xfffffffffffffff0, 0x0fffffff, 4)
        TEST_RR(25, sllw, 0x0000000012345678, 0x0000000012345678, 0)
        TEST_RR(26, sllw, 0xffffffff87654321, 0x0000000087654321, 0)   /* shift 0 still sign-extends */
        TEST_RR(27, srlw, 1, 0x80000000, 31)
        TEST_RR(28, srlw, 0xffffffff80000000, 0xffffffff80000000, 0)
        TEST_RR(29, srlw, 0x000000007fffffff, -1, 1)
        TEST_RR(30, srlw, 0xffffffffffffffff, -1, 32)
        TEST_RR(31, srlw, 0x0000000008000000, 0x1234567880000000, 4)
        TEST_RR(32, srlw, 1, 0xffffffff, 63)
        TEST_RR(33, srlw, 0x0000000000000002, 0xfffffffe00000005, 1)  /* upper bits ignored */
        TEST_RR(34, sraw, 0xffffffffffffffff, 0x80000000, 31)
        TEST_RR(35, sraw, 0xfffffffff8000000, 0x80000000, 4)
        TEST_RR(36, sraw, 0, 0x7fffffff, 31)
        TEST_RR(37, sraw, 0x000000007fffffff, 0xffffffff7fffffff, 0)
        TEST_RR(38, sraw, 0xffffffff80000000, 0x0000000080000000, 32)
        TEST_RR(39, sraw, 0x0000000000000001, 0xffffffff40000000, 30)
        TEST_RR(40, sraw, 0xfffffffffffffffe, 0x00000000fffffff0, 35)  /* shift 3 */

/* ---- SLLIW / SRLIW / SRAIW ---- */
        TEST_RI(41, slliw, 0xffffffff80000000, 1, 31)
        TEST_RI(42, slliw, 0xffffffffffffffff, 0xffffffff, 0)
        TEST_RI(43, slliw, 0x10, 0x0000000100000001, 4)
        TEST_RI(44, slliw, 0x0000000000000000, 0x0000000080000000, 1)
        TEST_RI(45, slliw, 0x000000007ffffffe, 0xffffffffbfffffff, 1)
        TEST_RI(46, srliw, 1, 0x80000000, 31)
        TEST_RI(47, srliw, 0xffffffffffffffff, -1, 0)
        TEST_RI(48, srliw, 0x000000007fffffff, -1, 1)
        TEST_RI(49, srliw, 0xffffffff80000000, 0xffffffff80000000, 0)
        TEST_RI(50, srliw, 0x0000000000000fff, 0x12345678ffffffff, 20)
        TEST_RI(51, sraiw, 0xffffffffffffffff, 0x80000000, 31)
        TEST_RI(52, sraiw, 0, 0x7fffffff, 31)
        TEST_RI(53, sraiw, 0xffffffffc0000000, 0x0000000080000000, 1)
        TEST_RI(54, sraiw, 0xffffffff9abcdef0, 0x123456789abcdef0, 0)
        TEST_RI(55, sraiw, 0x0000000000000123, 0xfedcba9812345678, 20)

/* ---- aliasing and x0 ---- */
        TEST_RR_SRC1_EQ_DEST(56, addw, 0xffffffff80000000, 0x7fffffff, 1)
        TEST_RR_SRC2_EQ_DEST(57, subw, 0x000000007fffffff, 0x80000000, 1)
        TEST_RR_SRC12_EQ_DEST(58, addw, 0xfffffffffffffffe, 0x00000000ffffffff)
        TEST_RR_SRC12_EQ_DEST(59, sllw, 0xffffffff80000000, 0x1f)
        TEST_RI_SRC_EQ_DEST(60, addiw, 0xffffffff80000000, 0xffffffff7fffffff, 1)
        TEST_RR_ZERO_SRC1(61, subw, 0xffffffffffffffff, 0x0000000100000001)
        TEST_RR_ZERO_SRC2(62, addw, 0xffffffff80000000, 0x0000001180000000)
        TEST_RR_ZERO_DEST(63, addw, 0x11, 0x22)
        TEST_RI_ZERO_DEST(64, addiw, 0x11, 0x22)
        TEST_RI_ZERO_DEST(65, slliw, 0x11, 3)

/* ---- typical lui+addiw constant building ---- */
        TEST_CASE(66)
        lui a0, 0x80000
        addiw a0, a0, -1
        CHECK(a0, 0x000000007fffffff)
        TEST_CASE(67)
        lui a0, 0x7ffff
        addiw a0, a0, 0x7ff
        addiw a0, a0, 0x7ff
        addiw a0, a0, 2
        CHECK(a0, 0xffffffff80000000)

TEST_END
