/* rv64a: LR/SC (.W and .D: success, failure without a reservation, failure
 * after an intervening SC, retry loop) and every AMO*.W / AMO*.D.
 * AMO*.W return the old word sign-extended and operate on 32 bits only. */
#include "test.h"
        .option norvc

/* 32-bit AMO on amobuf; amobuf+4 is a guard word that must not change.
 * old/new are the expected rd (sign-extended) and memory (lw) values. */
#define TEST_AMOW(n, op, init, src, old, new) \
        TEST_CASE(n);           \
        la a1, amobuf;          \
        li t0, init;            \
        sw t0, 0(a1);           \
        li t0, 0x5a5a5a5a;      \
        sw t0, 4(a1);           \
        li a2, src;             \
        op a0, a2, (a1);        \
        CHECK(a0, old);         \
        CHECK(a2, src);         \
        lw a3, 0(a1);           \
        CHECK(a3, new);         \
        lw a3, 4(a1);           \
        CHECK(a3, 0x5a5a5a5a)

#define TEST_AMOD(n, op, init, src, old, new) \
        TEST_CASE(n);           \
        la a1, amobuf;          \
        li t0, init;            \
        sd t0, 0(a1);           \
        li a2, src;             \
        op a0, a2, (a1);        \
        CHECK(a0, old);         \
        CHECK(a2, src);         \
        ld a3, 0(a1);           \
        CHECK(a3, new)

TEST_BEGIN

/* ---- AMO*.W ---- */
        TEST_AMOW(1, amoswap.w, 0x80000000, 0x12345678, 0xffffffff80000000, 0x12345678)
        TEST_AMOW(2, amoswap.w, 0x7fffffff, 0xffffffff00000001, 0x7fffffff, 1)
        TEST_AMOW(3, amoadd.w, 0x7fffffff, 1, 0x7fffffff, 0xffffffff80000000)
        TEST_AMOW(4, amoadd.w, 0xffffffff, 1, 0xffffffffffffffff, 0)          /* no carry into guard */
        TEST_AMOW(5, amoadd.w, 0x10, 0x1234567800000005, 0x10, 0x15)
        TEST_AMOW(6, amoand.w, 0xff00ff00, 0x0ff00ff0, 0xffffffffff00ff00, 0x0f000f00)
        TEST_AMOW(7, amoor.w, 0xff00ff00, 0x0ff00ff0, 0xffffffffff00ff00, 0xfffffffffff0fff0)
        TEST_AMOW(8, amoxor.w, 0xff00ff00, 0x0ff00ff0, 0xffffffffff00ff00, 0xfffffffff0f0f0f0)
        TEST_AMOW(9, amomin.w, 0xfffffffb, 3, 0xfffffffffffffffb, 0xfffffffffffffffb)
        TEST_AMOW(10, amomin.w, 3, 0x80000000, 3, 0xffffffff80000000)
        TEST_AMOW(11, amomin.w, 3, 0xffffffff00000002, 3, 2)                 /* upper bits ignored */
        TEST_AMOW(12, amomax.w, 0xfffffffb, 3, 0xfffffffffffffffb, 3)
        TEST_AMOW(13, amomax.w, 0x80000000, 0x7fffffff, 0xffffffff80000000, 0x7fffffff)
        TEST_AMOW(14, amomax.w, 5, 0x00000001fffffff0, 5, 5)                 /* -16 < 5 */
        TEST_AMOW(15, amominu.w, 0xfffffffb, 3, 0xfffffffffffffffb, 3)
        TEST_AMOW(16, amominu.w, 2, 0xffffffff00000001, 2, 1)
        TEST_AMOW(17, amominu.w, 0x80000000, 0x7fffffff, 0xffffffff80000000, 0x7fffffff)
        TEST_AMOW(18, amomaxu.w, 0xfffffffb, 3, 0xfffffffffffffffb, 0xfffffffffffffffb)
        TEST_AMOW(19, amomaxu.w, 0x7fffffff, 0x80000000, 0x7fffffff, 0xffffffff80000000)
        TEST_AMOW(20, amomaxu.w, 7, 0x0000000100000000, 7, 7)                /* src low word is 0 */

/* ---- AMO*.D ---- */
        TEST_AMOD(21, amoswap.d, 0x8000000000000000, 0x123456789abcdef0, 0x8000000000000000, 0x123456789abcdef0)
        TEST_AMOD(22, amoadd.d, 0x7fffffffffffffff, 1, 0x7fffffffffffffff, 0x8000000000000000)
        TEST_AMOD(23, amoadd.d, 0x00000000ffffffff, 1, 0x00000000ffffffff, 0x0000000100000000)
        TEST_AMOD(24, amoand.d, 0xff00ff00ff00ff00, 0x0ff00ff00ff00ff0, 0xff00ff00ff00ff00, 0x0f000f000f000f00)
        TEST_AMOD(25, amoor.d, 0xff00ff00ff00ff00, 0x0ff00ff00ff00ff0, 0xff00ff00ff00ff00, 0xfff0fff0fff0fff0)
        TEST_AMOD(26, amoxor.d, 0xff00ff00ff00ff00, 0x0ff00ff00ff00ff0, 0xff00ff00ff00ff00, 0xf0f0f0f0f0f0f0f0)
        TEST_AMOD(27, amomin.d, 0x8000000000000000, 1, 0x8000000000000000, 0x8000000000000000)
        TEST_AMOD(28, amomin.d, 1, -1, 1, -1)
        TEST_AMOD(29, amomin.d, 0x00000000ffffffff, 0x0000000100000000, 0x00000000ffffffff, 0x00000000ffffffff)
        TEST_AMOD(30, amomax.d, 0x8000000000000000, 1, 0x8000000000000000, 1)
        TEST_AMOD(31, amomax.d, -5, -3, -5, -3)
        TEST_AMOD(32, amominu.d, 0x8000000000000000, 1, 0x8000000000000000, 1)
        TEST_AMOD(33, amominu.d, 1, -1, 1, 1)
        TEST_AMOD(34, amomaxu.d, 0x8000000000000000, 1, 0x8000000000000000, 0x8000000000000000)
        TEST_AMOD(35, amomaxu.d, 0x7fffffffffffffff, 0x8000000000000000, 0x7fffffffffffffff, 0x8000000000000000)

/* ---- ordering bits, rd = x0, rd == rs2 ---- */
        TEST_AMOW(36, amoadd.w.aq, 1, 2, 1, 3)
        TEST_AMOW(37, amoadd.w.rl, 1, 2, 1, 3)
        TEST_AMOD(38, amoor.d.aqrl, 0x10, 0x01, 0x10, 0x11)
        TEST_CASE(39)
        la a1, amobuf
        li t0, 100
        sd t0, 0(a1)
        li a2, 23
        amoadd.d x0, a2, (a1)
        CHECK(x0, 0)
        ld a0, 0(a1)
        CHECK(a0, 123)
        TEST_CASE(40)                   /* rd == rs2 swap */
        li a2, 0x77
        amoswap.d a2, a2, (a1)
        CHECK(a2, 123)
        ld a0, 0(a1)
        CHECK(a0, 0x77)
        TEST_CASE(41)                   /* AMO at the upper word of a dword */
        la a1, amobuf
        li t0, 0x1111111122222222
        sd t0, 0(a1)
        addi a1, a1, 4
        li a2, 1
        amoadd.w a0, a2, (a1)
        CHECK(a0, 0x11111111)
        la a1, amobuf
        ld a0, 0(a1)
        CHECK(a0, 0x1111111222222222)

/* ---- LR / SC word ---- */
        TEST_CASE(42)
        la a1, amobuf
        li t0, 0x80000001
        sw t0, 0(a1)
        lr.w a0, (a1)
        CHECK(a0, 0xffffffff80000001)  /* sign-extended */
        li a2, 0x2468
        sc.w a3, a2, (a1)
        CHECK(a3, 0)                    /* success writes 0 */
        lw a0, 0(a1)
        CHECK(a0, 0x2468)
        TEST_CASE(43)                   /* a second SC: reservation was consumed */
        li a2, 0x1357
        sc.w a3, a2, (a1)
        beqz a3, fail
        lw a0, 0(a1)
        CHECK(a0, 0x2468)
        TEST_CASE(44)                   /* LR, SC, SC: second fails */
        lr.w a0, (a1)
        li a2, 1
        sc.w a3, a2, (a1)
        CHECK(a3, 0)
        li a2, 2
        sc.w a4, a2, (a1)
        beqz a4, fail
        lw a0, 0(a1)
        CHECK(a0, 1)

/* ---- LR / SC doubleword ---- */
        TEST_CASE(45)
        la a1, amobuf
        li t0, 0x8000000000000001
        sd t0, 0(a1)
        lr.d a0, (a1)
        CHECK(a0, 0x8000000000000001)
        li a2, 0x0123456789abcdef
        sc.d a3, a2, (a1)
        CHECK(a3, 0)
        ld a0, 0(a1)
        CHECK(a0, 0x0123456789abcdef)
        TEST_CASE(46)
        li a2, 5
        sc.d a3, a2, (a1)
        beqz a3, fail
        ld a0, 0(a1)
        CHECK(a0, 0x0123456789abcdef)
        TEST_CASE(47)                   /* LR.D, SC.D, SC.D */
        lr.d.aq a0, (a1)
        li a2, 6
        sc.d.rl a3, a2, (a1)
        CHECK(a3, 0)
        li a2, 7
        sc.d a4, a2, (a1)
        beqz a4, fail
        ld a0, 0(a1)
        CHECK(a0, 6)

        TEST_CASE(48)                   /* failed SC writes nothing, even to rd == rs2 */
        la a1, amobuf
        li t0, 9
        sd t0, 0(a1)
        li a2, 10
        sc.d a2, a2, (a1)
        beqz a2, fail
        ld a0, 0(a1)
        CHECK(a0, 9)

/* ---- LR/SC retry loop: atomic increment x10 ---- */
        TEST_CASE(49)
        la a1, amobuf
        sd zero, 0(a1)
        li a4, 10
1:      lr.d a0, (a1)
        addi a0, a0, 3
        sc.d a3, a0, (a1)
        bnez a3, 1b
        addi a4, a4, -1
        bnez a4, 1b
        ld a0, 0(a1)
        CHECK(a0, 30)
        TEST_CASE(50)
        sw zero, 0(a1)
        li a4, 10
1:      lr.w a0, (a1)
        addi a0, a0, -1
        sc.w a3, a0, (a1)
        bnez a3, 1b
        addi a4, a4, -1
        bnez a4, 1b
        lw a0, 0(a1)
        CHECK(a0, -10)

TEST_END

        .data
        .balign 16
amobuf: .dword 0, 0
