/* rv64i_alu: RV64I integer computational instructions (register and
 * immediate forms, LUI, AUIPC, x0 handling). */
#include "test.h"
        .option norvc
TEST_BEGIN

/* ---- ADD ---- */
        TEST_RR(1, add, 0, 0, 0)
        TEST_RR(2, add, 2, 1, 1)
        TEST_RR(3, add, 10, 3, 7)
        TEST_RR(4, add, 0xffffffffffff8000, 0, 0xffffffffffff8000)
        TEST_RR(5, add, 0x8000000000000000, 0x7fffffffffffffff, 1)   /* signed overflow wraps */
        TEST_RR(6, add, 0, 0xffffffffffffffff, 1)                    /* carry out discarded */
        TEST_RR(7, add, 0x7fffffffffffffff, 0x8000000000000000, -1)
        TEST_RR(8, add, 0x0000000080000000, 0x7fffffff, 1)           /* no 32-bit sign extension */
        TEST_RR(9, add, 0xfffffffffffffffe, -1, -1)
        TEST_RR(10, add, 0x0000000100000000, 0xffffffff, 1)

/* ---- SUB ---- */
        TEST_RR(11, sub, 0, 0, 0)
        TEST_RR(12, sub, 0xffffffffffffffff, 0, 1)
        TEST_RR(13, sub, 0x7fffffffffffffff, 0x8000000000000000, 1)
        TEST_RR(14, sub, 0x8000000000000001, 0, 0x7fffffffffffffff)
        TEST_RR(15, sub, 0x0000000100000000, 0x0000000100000003, 3)
        TEST_RR(16, sub, 0x8000000000000000, 0, 0x8000000000000000)
        TEST_RR(17, sub, 0xffffffff00000000, 0xffffffffffffffff, 0xffffffff)

/* ---- ADDI ---- */
        TEST_RI(18, addi, 0x7ff, 0, 0x7ff)
        TEST_RI(19, addi, 0xfffffffffffff800, 0, -2048)
        TEST_RI(20, addi, 0x8000000000000000, 0x7fffffffffffffff, 1)
        TEST_RI(21, addi, 0x7fffffffffffffff, 0x8000000000000000, -1)
        TEST_RI(22, addi, 0x0000000080000000, 0x7fffffff, 1)
        TEST_RI(23, addi, 0xffffffffffffffff, 0, -1)
        TEST_RI(24, addi, 0x7f, 0x80, -1)
        TEST_RI(25, addi, 0x00000000000007fe, 0xffffffffffffffff, 0x7ff)

/* ---- AND / OR / XOR ---- */
        TEST_RR(26, and, 0x0f000f000f000f00, 0xff00ff00ff00ff00, 0x0ff00ff00ff00ff0)
        TEST_RR(27, and, 0x00f000f000f000f0, 0x0ff00ff00ff00ff0, 0xf0f0f0f0f0f0f0f0)
        TEST_RR(28, and, 0, 0xaaaaaaaaaaaaaaaa, 0x5555555555555555)
        TEST_RR(29, or,  0xfff0fff0fff0fff0, 0xff00ff00ff00ff00, 0x0ff00ff00ff00ff0)
        TEST_RR(30, or,  0xffffffffffffffff, 0xaaaaaaaaaaaaaaaa, 0x5555555555555555)
        TEST_RR(31, xor, 0xf0f0f0f0f0f0f0f0, 0xff00ff00ff00ff00, 0x0ff00ff00ff00ff0)
        TEST_RR(32, xor, 0, 0x123456789abcdef0, 0x123456789abcdef0)
        TEST_RR(33, xor, 0xedcba9876543210f, 0x123456789abcdef0, -1)

/* ---- ANDI / ORI / XORI (12-bit immediate is sign-extended) ---- */
        TEST_RI(34, andi, 0xff00ff00ff00ff00, 0xff00ff00ff00ff00, -16)
        TEST_RI(35, andi, 0x0700, 0x0ff00ff00ff00ff0, 0x70f)
        TEST_RI(36, andi, 0x7ff, 0xffffffffffffffff, 0x7ff)
        TEST_RI(37, andi, 0x123456789abcd800, 0x123456789abcdef0, -2048)
        TEST_RI(38, andi, 0, 0x123456789abcdef0, 0)
        TEST_RI(39, ori, 0xff00ff00ff00fff0, 0xff00ff00ff00ff00, 0x0f0)
        TEST_RI(40, ori, 0xffffffffffffffff, 0, -1)
        TEST_RI(41, ori, 0xfffffffffffff8ff, 0x00ff00ff00ff00ff, -2048)
        TEST_RI(42, xori, 0xff00ff00ff00ff00, 0x00ff00ff00ff00ff, -1)
        TEST_RI(43, xori, 0x0ff00ff00ff00f00, 0x0ff00ff00ff00ff0, 0x0f0)
        TEST_RI(44, xori, 0x00ff00ff00ff07f0, 0x00ff00ff00ff00ff, 0x70f)
        TEST_RI(45, xori, 0xff00ff00ff00f8ef, 0x00ff00ff00ff00ff, -2032)

/* ---- SLT / SLTU / SLTI / SLTIU ---- */
        TEST_RR(46, slt, 0, 0, 0)
        TEST_RR(47, slt, 1, -1, 0)
        TEST_RR(48, slt, 0, 0, -1)
        TEST_RR(49, slt, 1, 0x8000000000000000, 0x7fffffffffffffff)
        TEST_RR(50, slt, 0, 0x7fffffffffffffff, 0x8000000000000000)
        TEST_RR(51, slt, 1, -2, -1)
        TEST_RR(52, slt, 0, 0x0000000080000000, 0x000000007fffffff)
        TEST_RR(53, sltu, 1, 0, -1)
        TEST_RR(54, sltu, 0, -1, 0)
        TEST_RR(55, sltu, 0, 0x8000000000000000, 0x7fffffffffffffff)
        TEST_RR(56, sltu, 1, 1, 2)
        TEST_RR(57, sltu, 0, 5, 5)
        TEST_RR(58, sltu, 1, 0xfffffffffffffffe, 0xffffffffffffffff)
        TEST_RI(59, slti, 1, -1, 0)
        TEST_RI(60, slti, 0, 0, -1)
        TEST_RI(61, slti, 0, 0x7fffffffffffffff, -2048)
        TEST_RI(62, slti, 1, 0x8000000000000000, 0x7ff)
        TEST_RI(63, slti, 0, 0x7ff, 0x7ff)
        TEST_RI(64, slti, 1, 0x7fe, 0x7ff)
        TEST_RI(65, sltiu, 1, 0, -1)                  /* imm -> 0xffff...ffff */
        TEST_RI(66, sltiu, 1, -2, -1)
        TEST_RI(67, sltiu, 0, -1, -1)
        TEST_RI(68, sltiu, 1, 0, 1)                   /* seqz */
        TEST_RI(69, sltiu, 0, 5, 1)
        TEST_RI(70, sltiu, 0, 0x800, 0x7ff)
        TEST_RI(71, sltiu, 1, 0x8000000000000000, -2048)

/* ---- SLL / SRL / SRA (shift amount = rs2[5:0]) ---- */
        TEST_RR(72, sll, 1, 1, 0)
        TEST_RR(73, sll, 2, 1, 1)
        TEST_RR(74, sll, 0x8000000000000000, 1, 63)
        TEST_RR(75, sll, 1, 1, 64)
        TEST_RR(76, sll, 2, 1, 65)
        TEST_RR(77, sll, 0xffffffff00000000, 0xffffffffffffffff, 32)
        TEST_RR(78, sll, 0x8000000100000000, 0x0000000080000001, 32)
        TEST_RR(79, sll, 0x8000000000000000, 1, -1)
        TEST_RR(80, sll, 0x0000000100000000, 0x0000000080000000, 1)
        TEST_RR(81, srl, 1, 0x8000000000000000, 63)
        TEST_RR(82, srl, 0x7fffffffffffffff, -1, 1)
        TEST_RR(83, srl, 0xffffffffffffffff, -1, 64)
        TEST_RR(84, srl, 0x00000000ffffffff, -1, 32)
        TEST_RR(85, srl, 0x0000000100000000, 0x8000000000000000, 31)
        TEST_RR(86, srl, 0x123456789abcdef0, 0x123456789abcdef0, 0)
        TEST_RR(87, srl, 1, -1, 0xffffffffffffffff)
        TEST_RR(88, sra, 0xffffffffffffffff, 0x8000000000000000, 63)
        TEST_RR(89, sra, 0xc000000000000000, 0x8000000000000000, 1)
        TEST_RR(90, sra, 0, 0x7fffffffffffffff, 63)
        TEST_RR(91, sra, 0xffffffffffffffff, -1, 5)
        TEST_RR(92, sra, 0x8000000000000000, 0x8000000000000000, 64)
        TEST_RR(93, sra, 1, 0x0000000080000000, 31)
        TEST_RR(94, sra, 0xffffffffffffffff, 0xffffffff80000000, 31)
        TEST_RR(95, sra, 0xfffffffff8765432, 0x876543210fedcba9, 36)

/* ---- SLLI / SRLI / SRAI (6-bit shamt) ---- */
        TEST_RI(96, slli, 0x8000000000000000, 1, 63)
        TEST_RI(97, slli, 0xff00000000000000, 0xff, 56)
        TEST_RI(98, slli, 0x123456789abcdef0, 0x123456789abcdef0, 0)
        TEST_RI(99, slli, 0x0000000100000000, 0x0000000080000000, 1)
        TEST_RI(100, srli, 1, 0x8000000000000000, 63)
        TEST_RI(101, srli, 0x00000000ffffffff, -1, 32)
        TEST_RI(102, srli, 1, -1, 63)
        TEST_RI(103, srli, 0xffffffffffffffff, -1, 0)
        TEST_RI(104, srai, 0xffffffffffffffff, 0x8000000000000000, 63)
        TEST_RI(105, srai, 1, 0x4000000000000000, 62)
        TEST_RI(106, srai, 0xffffffff80000000, 0x8000000000000000, 32)
        TEST_RI(107, srai, 0x000000007fffffff, 0x7fffffffffffffff, 32)
        TEST_RI(108, srai, 0x0000000000000001, 0x0000000080000000, 31)

/* ---- LUI: 20-bit immediate << 12, sign-extended to 64 bits ---- */
        TEST_CASE(109)
        lui a0, 0x80000
        CHECK(a0, 0xffffffff80000000)
        TEST_CASE(110)
        lui a0, 0x7ffff
        CHECK(a0, 0x000000007ffff000)
        TEST_CASE(111)
        lui a0, 0xfffff
        CHECK(a0, 0xfffffffffffff000)
        TEST_CASE(112)
        li a0, 123
        lui a0, 0
        CHECK(a0, 0)
        TEST_CASE(113)
        lui a0, 0x12345
        addi a0, a0, 0x678
        CHECK(a0, 0x12345678)
        TEST_CASE(114)
        lui a0, 0x80000
        srai a0, a0, 12
        CHECK(a0, 0xfffffffffff80000)

/* ---- AUIPC ---- */
        TEST_CASE(115)
1:      auipc a0, 0
        la a1, 1b
        CHECK_REG(a0, a1)
        TEST_CASE(116)
1:      auipc a0, 1
        la a1, 1b
        sub a0, a0, a1
        CHECK(a0, 0x1000)
        TEST_CASE(117)
1:      auipc a0, 0x80000                     /* pc + sext(0x80000000) = pc - 2^31 */
        la a1, 1b
        sub a0, a1, a0
        CHECK(a0, 0x80000000)
        TEST_CASE(118)
1:      auipc a0, 0xfffff                     /* pc - 0x1000 */
        la a1, 1b
        sub a0, a1, a0
        CHECK(a0, 0x1000)

/* ---- register aliasing ---- */
        TEST_RR_SRC1_EQ_DEST(119, add, 24, 13, 11)
        TEST_RR_SRC2_EQ_DEST(120, sub, 2, 13, 11)
        TEST_RR_SRC12_EQ_DEST(121, add, 26, 13)
        TEST_RR_SRC12_EQ_DEST(122, sub, 0, 0x123456789)
        TEST_RR_SRC12_EQ_DEST(123, xor, 0, -1)
        TEST_RR_SRC12_EQ_DEST(124, sll, 0x8000000000000000, 63)
        TEST_RR_SRC1_EQ_DEST(125, sra, 0xfffffffffffffff0, -256, 4)
        TEST_RI_SRC_EQ_DEST(126, addi, 0x17, 0xd, 10)
        TEST_RI_SRC_EQ_DEST(127, slli, 0x1a0, 0xd, 5)
        TEST_RI_SRC_EQ_DEST(128, sltiu, 1, 0xd, 14)

/* ---- x0 as source and destination ---- */
        TEST_RR_ZERO_SRC1(129, add, 0x55, 0x55)
        TEST_RR_ZERO_SRC1(130, sub, 0xffffffffffffffab, 0x55)
        TEST_RR_ZERO_SRC2(131, or, 0x55, 0x55)
        TEST_RR_ZERO_SRC2(132, sltu, 0, 0x55)
        TEST_RR_ZERO_SRC1(133, sltu, 1, 0x55)
        TEST_RR_ZERO_DEST(134, add, 0x11, 0x22)
        TEST_RR_ZERO_DEST(135, sub, 0x11, 0x22)
        TEST_RI_ZERO_DEST(136, addi, 0x11, 0x22)
        TEST_RI_ZERO_DEST(137, xori, 0x11, -1)
        TEST_CASE(138)
        lui x0, 0x12345
        CHECK(x0, 0)
        TEST_CASE(139)
        auipc x0, 0x12345
        CHECK(x0, 0)
        TEST_CASE(140)
        addi a0, x0, 0x321
        CHECK(a0, 0x321)
        TEST_CASE(141)
        nop
        addi x0, x0, 0
        mv a0, x0
        CHECK(a0, 0)

TEST_END
