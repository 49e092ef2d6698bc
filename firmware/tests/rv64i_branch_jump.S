/* rv64i_branch_jump: conditional branches (taken / not taken, signed and
 * unsigned edge cases, backward targets), JAL and JALR (link values,
 * offsets, LSB clearing, rd == rs1). */
#include "test.h"
        .option norvc
TEST_BEGIN

/* ---- BEQ / BNE ---- */
        TEST_BR_TAKEN(1, beq, 0, 0)
        TEST_BR_TAKEN(2, beq, -1, -1)
        TEST_BR_TAKEN(3, beq, 0x8000000000000000, 0x8000000000000000)
        TEST_BR_NOT_TAKEN(4, beq, 0, 1)
        TEST_BR_NOT_TAKEN(5, beq, 0x0000000100000000, 0)       /* upper bits matter */
        TEST_BR_NOT_TAKEN(6, beq, 0xffffffff, -1)
        TEST_BR_TAKEN(7, bne, 0, 1)
        TEST_BR_TAKEN(8, bne, 0x0000000100000000, 0)
        TEST_BR_NOT_TAKEN(9, bne, 5, 5)
        TEST_BR_NOT_TAKEN(10, bne, -1, -1)

/* ---- BLT / BGE (signed) ---- */
        TEST_BR_TAKEN(11, blt, -1, 0)
        TEST_BR_TAKEN(12, blt, 0x8000000000000000, 0x7fffffffffffffff)
        TEST_BR_TAKEN(13, blt, -2, -1)
        TEST_BR_TAKEN(14, blt, 0x7fffffff, 0x80000000)
        TEST_BR_NOT_TAKEN(15, blt, 0, -1)
        TEST_BR_NOT_TAKEN(16, blt, 7, 7)
        TEST_BR_NOT_TAKEN(17, blt, 0x7fffffffffffffff, 0x8000000000000000)
        TEST_BR_TAKEN(18, bge, 0, -1)
        TEST_BR_TAKEN(19, bge, 7, 7)
        TEST_BR_TAKEN(20, bge, 0x7fffffffffffffff, 0x8000000000000000)
        TEST_BR_TAKEN(21, bge, -1, -1)
        TEST_BR_NOT_TAKEN(22, bge, -1, 0)
        TEST_BR_NOT_TAKEN(23, bge, 0x8000000000000000, 0x7fffffffffffffff)

/* ---- BLTU / BGEU (unsigned) ---- */
        TEST_BR_TAKEN(24, bltu, 0, -1)
        TEST_BR_TAKEN(25, bltu, 0x7fffffffffffffff, 0x8000000000000000)
        TEST_BR_TAKEN(26, bltu, 0xfffffffffffffffe, 0xffffffffffffffff)
        TEST_BR_NOT_TAKEN(27, bltu, -1, 0)
        TEST_BR_NOT_TAKEN(28, bltu, 9, 9)
        TEST_BR_NOT_TAKEN(29, bltu, 0x0000000100000000, 0xffffffff)
        TEST_BR_TAKEN(30, bgeu, -1, 0)
        TEST_BR_TAKEN(31, bgeu, 9, 9)
        TEST_BR_TAKEN(32, bgeu, 0x8000000000000000, 0x7fffffffffffffff)
        TEST_BR_NOT_TAKEN(33, bgeu, 0, 1)
        TEST_BR_NOT_TAKEN(34, bgeu, 0x7fffffffffffffff, 0x8000000000000000)

/* ---- branches with x0 operands ---- */
        TEST_CASE(35)
        li a1, 0
        beq a1, x0, 1f
        j fail
1:      bne x0, x0, fail_far_35
        bltu a1, x0, fail_far_35        /* nothing is below 0 unsigned */
        bgeu x0, x0, 1f
        j fail
1:
        TEST_CASE(36)
        li a1, -3
        blt a1, x0, 1f                  /* bltz */
        j fail
1:      bge x0, a1, 1f                  /* blez-like */
        j fail
1:

/* ---- backward branches ---- */
        TEST_CASE(37)
        li a0, 0
        j 2f
1:      addi a0, a0, 1
        j 3f
2:      beq x0, x0, 1b
        j fail
3:      CHECK(a0, 1)

        TEST_CASE(38)                   /* sum 1..10 with a backward bnez */
        li a0, 0
        li a1, 10
1:      add a0, a0, a1
        addi a1, a1, -1
        bnez a1, 1b
        CHECK(a0, 55)

        TEST_CASE(39)                   /* backward blt loop */
        li a0, 0
        li a1, -5
1:      addi a0, a0, 2
        addi a1, a1, 1
        blt a1, x0, 1b
        CHECK(a0, 10)

/* ---- JAL ---- */
        TEST_CASE(40)
        li ra, 0
        jal ra, 1f
2:      j fail
1:      la a1, 2b
        CHECK_REG(ra, a1)

        TEST_CASE(41)                   /* jal with rd other than ra */
        jal a0, 1f
2:      j fail
1:      la a1, 2b
        CHECK_REG(a0, a1)

        TEST_CASE(42)                   /* jal x0 (j) writes nothing */
        jal x0, 1f
        j fail
1:      CHECK(x0, 0)

        TEST_CASE(43)                   /* backward jal */
        li a0, 0
        j 2f
1:      li a0, 43
        j 3f
2:      jal t0, 1b
        j fail
3:      CHECK(a0, 43)

        TEST_CASE(44)                   /* long-distance jal (over 4 KiB pad) */
        jal a0, far_target
far_back:
        CHECK(a1, 0x44)

/* ---- JALR ---- */
        TEST_CASE(45)
        la t0, 1f
        jalr a0, 0(t0)
2:      j fail
1:      la a1, 2b
        CHECK_REG(a0, a1)

        TEST_CASE(46)                   /* positive offset */
        la t0, 1f
        addi t0, t0, -16
        jalr a0, 16(t0)
        j fail
1:
        TEST_CASE(47)                   /* negative offset */
        la t0, 1f
        addi t0, t0, 2000
        jalr a0, -2000(t0)
        j fail
1:
        TEST_CASE(48)                   /* target LSB is cleared */
        la t0, 1f
        addi t0, t0, 1
        jalr a0, 0(t0)
        j fail
1:
        TEST_CASE(49)                   /* odd immediate, LSB cleared after add */
        la t0, 1f
        addi t0, t0, -3
        jalr a0, 4(t0)                  /* t0 + 4 = label + 1 */
        j fail
1:
        TEST_CASE(50)                   /* rd == rs1: target uses the old value */
        la a0, 1f
        jalr a0, 0(a0)
2:      j fail
1:      la a1, 2b
        CHECK_REG(a0, a1)

        TEST_CASE(51)                   /* jalr x0 (ret) */
        la a0, 1f
        li ra, 0
        jalr x0, 0(a0)
        j fail
1:      CHECK(ra, 0)

        TEST_CASE(52)                   /* call / ret through a subroutine */
        li a0, 5
        call double_it
        call double_it
        CHECK(a0, 20)

        TEST_CASE(53)                   /* jalr to a computed table entry */
        la t0, jtab
        li a1, 2
        slli a1, a1, 3
        add t0, t0, a1
        ld t0, 0(t0)
        jalr ra, 0(t0)
        CHECK(a0, 0x222)

TEST_END

double_it:
        add a0, a0, a0
        ret

j_e0:   li a0, 0x000
        ret
j_e1:   li a0, 0x111
        ret
j_e2:   li a0, 0x222
        ret

fail_far_35:
        j fail

        .balign 4
        .skip 4096                      /* push far_target beyond branch range */
far_target:
        la a1, far_back
        bne a0, a1, fail_far
        li a1, 0x44
        j far_back
fail_far:
        j fail

        .data
        .balign 8
jtab:   .dword j_e0, j_e1, j_e2
