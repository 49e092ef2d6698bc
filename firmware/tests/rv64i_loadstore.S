/* rv64i_loadstore: LB/LBU/LH/LHU/LW/LWU/LD and SB/SH/SW/SD, all aligned:
 * sign/zero extension, little-endian byte order, positive/negative and
 * +-2 KiB offsets, stores leave neighbouring bytes alone, rd == rs1,
 * loads into x0, FENCE. */
#include "test.h"
        .option norvc

#define TEST_LD(n, op, res, off, base) \
        TEST_CASE(n);           \
        la a1, base;            \
        op a0, off(a1);         \
        CHECK(a0, res)

/* store `val` with `op` at base+off (dword pre-filled with 0xaa..), then
 * check the whole containing dword. */
#define TEST_ST(n, op, val, off, res) \
        TEST_CASE(n);           \
        la a1, sbuf;            \
        li t0, 0xaaaaaaaaaaaaaaaa; \
        sd t0, 0(a1);           \
        li a2, val;             \
        op a2, off(a1);         \
        ld a0, 0(a1);           \
        CHECK(a0, res)

TEST_BEGIN

/* ---- byte loads ---- */
        TEST_LD(1, lb, 0x01, 0, tdat)
        TEST_LD(2, lb, 0xffffffffffffff82, 1, tdat)
        TEST_LD(3, lb, 0x7f, 2, tdat)
        TEST_LD(4, lb, 0xffffffffffffff80, 3, tdat)
        TEST_LD(5, lb, 0xffffffffffffffff, 4, tdat)
        TEST_LD(6, lbu, 0x01, 0, tdat)
        TEST_LD(7, lbu, 0x82, 1, tdat)
        TEST_LD(8, lbu, 0x80, 3, tdat)
        TEST_LD(9, lbu, 0xff, 4, tdat)
        TEST_LD(10, lb, 0xffffffffffffff80, -5, tdat+8)       /* negative offset */
        TEST_LD(11, lbu, 0x7f, -6, tdat+8)

/* ---- halfword loads ---- */
        TEST_LD(12, lh, 0x00ff, 0, thalf)
        TEST_LD(13, lh, 0xffffffffffffff00, 2, thalf)
        TEST_LD(14, lh, 0x0ff0, 4, thalf)
        TEST_LD(15, lh, 0xfffffffffffff00f, 6, thalf)
        TEST_LD(16, lh, 0xffffffffffff8000, 8, thalf)
        TEST_LD(17, lh, 0x7fff, 10, thalf)
        TEST_LD(18, lhu, 0xff00, 2, thalf)
        TEST_LD(19, lhu, 0xf00f, 6, thalf)
        TEST_LD(20, lhu, 0x8000, 8, thalf)
        TEST_LD(21, lhu, 0x00ff, -12, thalf+12)

/* ---- word loads ---- */
        TEST_LD(22, lw, 0x00ff00ff, 0, tword)
        TEST_LD(23, lw, 0xffffffffff00ff00, 4, tword)
        TEST_LD(24, lw, 0x0ff00ff0, 8, tword)
        TEST_LD(25, lw, 0xfffffffff00ff00f, 12, tword)
        TEST_LD(26, lw, 0xffffffff80000000, 16, tword)
        TEST_LD(27, lw, 0x7fffffff, 20, tword)
        TEST_LD(28, lwu, 0xff00ff00, 4, tword)
        TEST_LD(29, lwu, 0xf00ff00f, 12, tword)
        TEST_LD(30, lwu, 0x80000000, 16, tword)
        TEST_LD(31, lwu, 0x7fffffff, -4, tword+24)

/* ---- doubleword loads ---- */
        TEST_LD(32, ld, 0x00ff00ff00ff00ff, 0, tdword)
        TEST_LD(33, ld, 0xff00ff00ff00ff00, 8, tdword)
        TEST_LD(34, ld, 0x8000000000000000, 16, tdword)
        TEST_LD(35, ld, 0x0123456789abcdef, -8, tdword+32)

/* ---- little-endian view of one dword ---- */
        TEST_LD(36, lw, 0xffffffff89abcdef, 0, tdword+24)
        TEST_LD(37, lw, 0x01234567, 4, tdword+24)
        TEST_LD(38, lbu, 0x01, 7, tdword+24)
        TEST_LD(39, lbu, 0xef, 0, tdword+24)
        TEST_LD(40, lh, 0x0123, 6, tdword+24)
        TEST_LD(41, lh, 0xffffffffffff89ab, 2, tdword+24)
        TEST_LD(42, lhu, 0x89ab, 2, tdword+24)
        TEST_LD(43, lb, 0xffffffffffffffcd, 1, tdword+24)

/* ---- stores: only the addressed bytes change ---- */
        TEST_ST(44, sb, 0x12, 0, 0xaaaaaaaaaaaaaa12)
        TEST_ST(45, sb, 0x12, 1, 0xaaaaaaaaaaaa12aa)
        TEST_ST(46, sb, 0xffffffffffff1234, 7, 0x34aaaaaaaaaaaaaa)   /* only low byte stored */
        TEST_ST(47, sh, 0x3456, 0, 0xaaaaaaaaaaaa3456)
        TEST_ST(48, sh, 0x3456, 2, 0xaaaaaaaa3456aaaa)
        TEST_ST(49, sh, 0x123456789abc8001, 6, 0x8001aaaaaaaaaaaa)
        TEST_ST(50, sw, 0x76543210, 0, 0xaaaaaaaa76543210)
        TEST_ST(51, sw, 0x76543210, 4, 0x76543210aaaaaaaa)
        TEST_ST(52, sw, 0xffffffff00000000, 4, 0x00000000aaaaaaaa)
        TEST_ST(53, sd, 0x0123456789abcdef, 0, 0x0123456789abcdef)
        TEST_ST(54, sd, 0, 0, 0)

        TEST_CASE(55)                   /* store with negative offset */
        la a1, sbuf+16
        li a2, 0x5a
        sb a2, -13(a1)
        la a1, sbuf
        lbu a0, 3(a1)
        CHECK(a0, 0x5a)

        TEST_CASE(56)                   /* neighbouring dwords untouched by sd */
        la a1, sbuf
        li t0, 0x1111111111111111
        sd t0, 8(a1)
        li t0, 0x3333333333333333
        sd t0, 24(a1)
        li t0, 0x2222222222222222
        sd t0, 16(a1)
        ld a0, 8(a1)
        CHECK(a0, 0x1111111111111111)
        ld a0, 24(a1)
        CHECK(a0, 0x3333333333333333)
        ld a0, 16(a1)
        CHECK(a0, 0x2222222222222222)

/* ---- +-2 KiB offsets ---- */
        TEST_CASE(57)
        la a1, bigbuf+2048
        li a2, 0x6d
        sb a2, 2047(a1)                 /* bigbuf + 4095 */
        li a2, 0x5c
        sb a2, -2048(a1)                /* bigbuf + 0 */
        la a3, bigbuf
        lbu a0, 4095-2048(a1)
        CHECK(a0, 0x6d)
        lbu a0, 0(a3)
        CHECK(a0, 0x5c)
        lb a0, 2047(a1)
        CHECK(a0, 0x6d)
        TEST_CASE(58)
        li a2, 0x0807060504030201
        sd a2, 2040(a1)                 /* bigbuf + 4088 */
        li t0, 4088
        add t0, a3, t0
        ld a0, 0(t0)
        CHECK(a0, 0x0807060504030201)
        lw a0, -2044(t0)                /* bigbuf + 2044, still zero */
        CHECK(a0, 0)

/* ---- rd == rs1, x0 destination ---- */
        TEST_CASE(59)
        la a1, tdword
        ld a1, 8(a1)
        CHECK(a1, 0xff00ff00ff00ff00)
        TEST_CASE(60)
        la a1, tdword
        lw x0, 0(a1)
        ld x0, 8(a1)
        CHECK(x0, 0)
        TEST_CASE(61)                   /* store x0 */
        la a1, sbuf
        li t0, -1
        sd t0, 0(a1)
        sw x0, 4(a1)
        ld a0, 0(a1)
        CHECK(a0, 0x00000000ffffffff)

/* ---- store -> load round trip through all widths ---- */
        TEST_CASE(62)
        la a1, sbuf
        li a2, 0xfedcba9876543210
        sd a2, 0(a1)
        lb a0, 0(a1)
        CHECK(a0, 0x10)
        lb a0, 7(a1)
        CHECK(a0, 0xfffffffffffffffe)
        lhu a0, 6(a1)
        CHECK(a0, 0xfedc)
        lwu a0, 4(a1)
        CHECK(a0, 0xfedcba98)
        lw a0, 4(a1)
        CHECK(a0, 0xfffffffffedcba98)

/* ---- FENCE variants execute as ordinary instructions ---- */
        TEST_CASE(63)
        la a1, sbuf
        li a2, 77
        sd a2, 0(a1)
        fence
        fence rw, rw
        fence w, r
        fence iorw, iorw
        ld a0, 0(a1)
        CHECK(a0, 77)

TEST_END

        .data
        .balign 8
tdat:   .byte 0x01, 0x82, 0x7f, 0x80, 0xff, 0x00, 0x00, 0x00
thalf:  .half 0x00ff, 0xff00, 0x0ff0, 0xf00f, 0x8000, 0x7fff, 0, 0
tword:  .word 0x00ff00ff, 0xff00ff00, 0x0ff00ff0, 0xf00ff00f, 0x80000000, 0x7fffffff
tdword: .dword 0x00ff00ff00ff00ff, 0xff00ff00ff00ff00, 0x8000000000000000, 0x0123456789abcdef
sbuf:   .dword 0, 0, 0, 0

        .bss
        .balign 8
bigbuf: .skip 4096
