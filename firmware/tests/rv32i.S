/* rv32i: RV32I base integer ISA -- ALU (register/immediate), shifts by up
 * to 31 with 5-bit masking, SLT*, LUI/AUIPC, branches, JAL/JALR, all load
 * and store widths with sign/zero extension, x0 handling. */
#include "test.h"
        .option norvc

#define TEST_LD(n, op, res, off, base) \
        TEST_CASE(n);           \
        la a1, base;            \
        op a0, off(a1);         \
        CHECK(a0, res)

#define TEST_ST(n, op, val, off, res) \
        TEST_CASE(n);           \
        la a1, sbuf;            \
        li t0, 0xaaaaaaaa;      \
        sw t0, 0(a1);           \
        li a2, val;             \
        op a2, off(a1);         \
        lw a0, 0(a1);           \
        CHECK(a0, res)

TEST_BEGIN
/* ---- ADD / SUB / ADDI ---- */
        TEST_RR(1, add, 0, 0, 0)
        TEST_RR(2, add, 10, 3, 7)
        TEST_RR(3, add, 0x80000000, 0x7fffffff, 1)
        TEST_RR(4, add, 0, 0xffffffff, 1)
        TEST_RR(5, add, 0xfffffffe, 0xffffffff, 0xffffffff)
        TEST_RR(6, sub, 0xffffffff, 0, 1)
        TEST_RR(7, sub, 0x7fffffff, 0x80000000, 1)
        TEST_RR(8, sub, 0x80000000, 0, 0x80000000)
        TEST_RR(9, sub, 0x80000001, 0, 0x7fffffff)
        TEST_RI(10, addi, 0x7ff, 0, 0x7ff)
        TEST_RI(11, addi, 0xfffff800, 0, -2048)
        TEST_RI(12, addi, 0x80000000, 0x7fffffff, 1)
        TEST_RI(13, addi, 0x7fffffff, 0x80000000, -1)
        TEST_RI(14, addi, 0x000007fe, 0xffffffff, 0x7ff)

/* ---- logic ---- */
        TEST_RR(15, and, 0x0f000f00, 0xff00ff00, 0x0ff00ff0)
        TEST_RR(16, or, 0xfff0fff0, 0xff00ff00, 0x0ff00ff0)
        TEST_RR(17, xor, 0xf0f0f0f0, 0xff00ff00, 0x0ff00ff0)
        TEST_RI(18, andi, 0xff00ff00, 0xff00ff00, -16)
        TEST_RI(19, andi, 0x00000700, 0x0ff00ff0, 0x70f)
        TEST_RI(20, ori, 0xfffff8ff, 0x00ff00ff, -2048)
        TEST_RI(21, xori, 0xff00ff00, 0x00ff00ff, -1)
        TEST_RI(22, xori, 0x00ff07f0, 0x00ff00ff, 0x70f)

/* ---- compares ---- */
        TEST_RR(23, slt, 1, 0x80000000, 0x7fffffff)
        TEST_RR(24, slt, 0, 0x7fffffff, 0x80000000)
        TEST_RR(25, slt, 1, -2, -1)
        TEST_RR(26, sltu, 0, 0x80000000, 0x7fffffff)
        TEST_RR(27, sltu, 1, 0, 0xffffffff)
        TEST_RI(28, slti, 1, 0x80000000, 0x7ff)
        TEST_RI(29, slti, 0, 0x7fffffff, -2048)
        TEST_RI(30, sltiu, 1, 0, -1)
        TEST_RI(31, sltiu, 0, 0xffffffff, -1)
        TEST_RI(32, sltiu, 1, 0x80000000, -2048)

/* ---- shifts (5-bit shift amount) ---- */
        TEST_RR(33, sll, 0x80000000, 1, 31)
        TEST_RR(34, sll, 1, 1, 32)
        TEST_RR(35, sll, 2, 1, 33)
        TEST_RR(36, sll, 0x80000000, 1, -1)
        TEST_RR(37, srl, 1, 0x80000000, 31)
        TEST_RR(38, srl, 0x7fffffff, 0xffffffff, 1)
        TEST_RR(39, srl, 0xffffffff, 0xffffffff, 32)
        TEST_RR(40, sra, 0xffffffff, 0x80000000, 31)
        TEST_RR(41, sra, 0xc0000000, 0x80000000, 1)
        TEST_RR(42, sra, 0, 0x7fffffff, 31)
        TEST_RR(43, sra, 0xf8765432, 0x87654321, 36)
        TEST_RI(44, slli, 0x80000000, 1, 31)
        TEST_RI(45, slli, 0xff000000, 0xff, 24)
        TEST_RI(46, srli, 1, 0x80000000, 31)
        TEST_RI(47, srli, 0x0000ffff, 0xffffffff, 16)
        TEST_RI(48, srai, 0xffffffff, 0x80000000, 31)
        TEST_RI(49, srai, 0xffff8000, 0x80000000, 16)
        TEST_RI(50, srai, 0x00007fff, 0x7fffffff, 16)

/* ---- LUI / AUIPC ---- */
        TEST_CASE(51)
        lui a0, 0x80000
        CHECK(a0, 0x80000000)
        lui a0, 0xfffff
        CHECK(a0, 0xfffff000)
        lui a0, 0x12345
        addi a0, a0, -1
        CHECK(a0, 0x12344fff)
        TEST_CASE(52)
1:      auipc a0, 0
        la a1, 1b
        CHECK_REG(a0, a1)
1:      auipc a0, 0x80000               /* wraps around 32 bits */
        la a1, 1b
        sub a0, a0, a1
        CHECK(a0, 0x80000000)

/* ---- branches ---- */
        TEST_BR_TAKEN(53, beq, 0x80000000, 0x80000000)
        TEST_BR_NOT_TAKEN(54, beq, 1, 0)
        TEST_BR_TAKEN(55, bne, 1, 0)
        TEST_BR_NOT_TAKEN(56, bne, -1, -1)
        TEST_BR_TAKEN(57, blt, 0x80000000, 0x7fffffff)
        TEST_BR_NOT_TAKEN(58, blt, 0x7fffffff, 0x80000000)
        TEST_BR_TAKEN(59, bge, -1, -1)
        TEST_BR_TAKEN(60, bge, 0x7fffffff, 0x80000000)
        TEST_BR_NOT_TAKEN(61, bge, -1, 0)
        TEST_BR_TAKEN(62, bltu, 0x7fffffff, 0x80000000)
        TEST_BR_NOT_TAKEN(63, bltu, 0xffffffff, 0)
        TEST_BR_TAKEN(64, bgeu, 0xffffffff, 0)
        TEST_BR_NOT_TAKEN(65, bgeu, 0x7fffffff, 0x80000000)
        TEST_CASE(66)                   /* backward loop */
        li a0, 0
        li a1, 10
1:      add a0, a0, a1
        addi a1, a1, -1
        bnez a1, 1b
        CHECK(a0, 55)

/* ---- JAL / JALR ---- */
        TEST_CASE(67)
        jal ra, 1f
2:      j fail
1:      la a1, 2b
        CHECK_REG(ra, a1)
        TEST_CASE(68)
        la t0, 1f
        addi t0, t0, -7
        jalr a0, 8(t0)                  /* target = label + 1, LSB cleared */
2:      j fail
1:      la a1, 2b
        CHECK_REG(a0, a1)
        TEST_CASE(69)
        la a0, 1f
        jalr a0, 0(a0)                  /* rd == rs1 */
2:      j fail
1:      la a1, 2b
        CHECK_REG(a0, a1)

/* ---- loads ---- */
        TEST_LD(70, lb, 0xffffff82, 1, tdat)
        TEST_LD(71, lb, 0x7f, 2, tdat)
        TEST_LD(72, lbu, 0x82, 1, tdat)
        TEST_LD(73, lbu, 0xff, 4, tdat)
        TEST_LD(74, lh, 0xffffff00, 2, thalf)
        TEST_LD(75, lh, 0x7fff, 10, thalf)
        TEST_LD(76, lhu, 0xff00, 2, thalf)
        TEST_LD(77, lhu, 0x8000, 8, thalf)
        TEST_LD(78, lw, 0xff00ff00, 4, tword)
        TEST_LD(79, lw, 0x80000000, -4, tword+20)
        TEST_LD(80, lb, 0xffffff80, -5, tdat+8)
        TEST_LD(81, lh, 0xfffff00f, 6, thalf)

/* ---- stores ---- */
        TEST_ST(82, sb, 0x12, 0, 0xaaaaaa12)
        TEST_ST(83, sb, 0xffff1234, 3, 0x34aaaaaa)
        TEST_ST(84, sh, 0x3456, 0, 0xaaaa3456)
        TEST_ST(85, sh, 0x12348001, 2, 0x8001aaaa)
        TEST_ST(86, sw, 0x76543210, 0, 0x76543210)
        TEST_CASE(87)                   /* neighbours untouched, little-endian */
        la a1, sbuf
        li t0, 0x11111111
        sw t0, 4(a1)
        li t0, 0x33333333
        sw t0, 12(a1)
        li t0, 0x89abcdef
        sw t0, 8(a1)
        lw a0, 4(a1)
        CHECK(a0, 0x11111111)
        lw a0, 12(a1)
        CHECK(a0, 0x33333333)
        lbu a0, 8(a1)
        CHECK(a0, 0xef)
        lb a0, 11(a1)
        CHECK(a0, 0xffffff89)
        lhu a0, 10(a1)
        CHECK(a0, 0x89ab)

/* ---- x0 ---- */
        TEST_RR_ZERO_DEST(88, add, 1, 2)
        TEST_RI_ZERO_DEST(89, addi, 1, 2)
        TEST_RR_ZERO_SRC1(90, sub, 0xffffffab, 0x55)
        TEST_CASE(91)
        la a1, tword
        lw x0, 0(a1)
        lui x0, 0x1
        CHECK(x0, 0)
        TEST_RR_SRC12_EQ_DEST(92, add, 0xfffffffe, 0xffffffff)
        TEST_RI_SRC_EQ_DEST(93, slli, 0x1a0, 0xd, 5)
TEST_END

        .data
        .balign 8
tdat:   .byte 0x01, 0x82, 0x7f, 0x80, 0xff, 0x00, 0x00, 0x00
thalf:  .half 0x00ff, 0xff00, 0x0ff0, 0xf00f, 0x8000, 0x7fff
tword:  .word 0x00ff00ff, 0xff00ff00, 0x0ff00ff0, 0xf00ff00f, 0x80000000
sbuf:   .word 0, 0, 0, 0
