/* rv64c: every RV64C (integer) instruction, written with explicit c.*
 * mnemonics.  RV64 has no C.JAL (that encoding is C.ADDIW); C.JALR links
 * pc + 2.  Also checks 32-bit instructions at 2-byte aligned addresses and
 * that the reserved all-zero halfword is an illegal instruction. */
#include "test.h"
        .option rvc
TEST_BEGIN

/* ---- C.LI / C.LUI / C.ADDI / C.ADDIW / C.NOP ---- */
        TEST_CASE(1)
        c.li a0, 31
        CHECK(a0, 31)
        c.li a0, -32
        CHECK(a0, 0xffffffffffffffe0)
        TEST_CASE(2)
        c.lui a0, 1
        CHECK(a0, 0x1000)
        c.lui a1, 0x1f
        CHECK(a1, 0x1f000)
        c.lui a2, 0xfffe0                       /* nzimm = -32 */
        CHECK(a2, 0xfffffffffffe0000)
        c.lui s0, 0xfffff                       /* nzimm = -1 */
        CHECK(s0, 0xfffffffffffff000)
        TEST_CASE(3)
        li a0, 100
        c.addi a0, 31
        CHECK(a0, 131)
        c.addi a0, -32
        CHECK(a0, 99)
        li a0, -1
        c.addi a0, 1
        CHECK(a0, 0)
        li a0, 0x7fffffffffffffff
        c.addi a0, 1
        CHECK(a0, 0x8000000000000000)
        TEST_CASE(4)
        li a0, 0x7fffffff
        c.addiw a0, 1
        CHECK(a0, 0xffffffff80000000)
        li a0, 0x00000001ffffffff
        c.addiw a0, 0                           /* sext.w */
        CHECK(a0, 0xffffffffffffffff)
        li a1, 0x0000000100000005
        c.addiw a1, -6
        CHECK(a1, 0xffffffffffffffff)
        TEST_CASE(5)
        li a0, 5
        c.nop
        c.nop
        CHECK(a0, 5)

/* ---- C.ADDI16SP / C.ADDI4SPN ---- */
        TEST_CASE(6)
        mv s1, sp
        c.addi16sp sp, -512
        sub a0, s1, sp
        CHECK(a0, 512)
        c.addi16sp sp, 496
        sub a0, s1, sp
        CHECK(a0, 16)
        c.addi16sp sp, 16
        CHECK_REG(sp, s1)
        TEST_CASE(7)
        c.addi4spn a0, sp, 4
        sub a0, a0, sp
        CHECK(a0, 4)
        c.addi4spn a5, sp, 1020
        sub a5, a5, sp
        CHECK(a5, 1020)
        c.addi4spn s0, sp, 512
        sub s0, s0, sp
        CHECK(s0, 512)

/* ---- C.SLLI / C.SRLI / C.SRAI / C.ANDI ---- */
        TEST_CASE(8)
        li a0, 1
        c.slli a0, 63
        CHECK(a0, 0x8000000000000000)
        li t1, 0x00000000ffffffff               /* c.slli takes any rd */
        c.slli t1, 32
        CHECK(t1, 0xffffffff00000000)
        li a0, 3
        c.slli a0, 1
        CHECK(a0, 6)
        TEST_CASE(9)
        li a0, 0x8000000000000000
        c.srli a0, 63
        CHECK(a0, 1)
        li a1, -1
        c.srli a1, 32
        CHECK(a1, 0x00000000ffffffff)
        li a2, -1
        c.srli a2, 1
        CHECK(a2, 0x7fffffffffffffff)
        TEST_CASE(10)
        li a0, 0x8000000000000000
        c.srai a0, 63
        CHECK(a0, 0xffffffffffffffff)
        li a1, 0x8000000000000000
        c.srai a1, 32
        CHECK(a1, 0xffffffff80000000)
        li a2, 0x4000000000000000
        c.srai a2, 1
        CHECK(a2, 0x2000000000000000)
        TEST_CASE(11)
        li a0, 0x123456789abcdeff
        c.andi a0, 31
        CHECK(a0, 0x1f)
        li a0, 0x123456789abcdeff
        c.andi a0, -32
        CHECK(a0, 0x123456789abcdee0)
        li s1, 0x55
        c.andi s1, 0
        CHECK(s1, 0)

/* ---- C.MV / C.ADD ---- */
        TEST_CASE(12)
        li a1, 0x0123456789abcdef
        c.mv a0, a1
        CHECK(a0, 0x0123456789abcdef)
        c.mv t2, a1                             /* full register set */
        CHECK(t2, 0x0123456789abcdef)
        TEST_CASE(13)
        li a0, 0x7fffffffffffffff
        li a1, 2
        c.add a0, a1
        CHECK(a0, 0x8000000000000001)
        li t3, 40
        li t4, 2
        c.add t3, t4
        CHECK(t3, 42)

/* ---- C.SUB / C.XOR / C.OR / C.AND / C.SUBW / C.ADDW ---- */
        TEST_CASE(14)
        li a0, 0
        li a1, 1
        c.sub a0, a1
        CHECK(a0, 0xffffffffffffffff)
        li a2, 0x0000000100000000
        li a3, 1
        c.sub a2, a3
        CHECK(a2, 0x00000000ffffffff)
        TEST_CASE(15)
        li a0, 0xff00ff00ff00ff00
        li a1, 0x0ff00ff00ff00ff0
        c.xor a0, a1
        CHECK(a0, 0xf0f0f0f0f0f0f0f0)
        li a0, 0xff00ff00ff00ff00
        c.or a0, a1
        CHECK(a0, 0xfff0fff0fff0fff0)
        li a0, 0xff00ff00ff00ff00
        c.and a0, a1
        CHECK(a0, 0x0f000f000f000f00)
        TEST_CASE(16)
        li a4, 0x0000000080000000
        li a5, 1
        c.subw a4, a5
        CHECK(a4, 0x000000007fffffff)
        li a4, 0
        c.subw a4, a5
        CHECK(a4, 0xffffffffffffffff)
        li s0, 0x7fffffff
        li s1, 1
        c.addw s0, s1
        CHECK(s0, 0xffffffff80000000)
        li s0, 0x1234567800000001
        li s1, 0x00000000ffffffff
        c.addw s0, s1
        CHECK(s0, 0)

/* ---- C.LW / C.LD / C.SW / C.SD ---- */
        TEST_CASE(17)
        la a1, cdata
        c.lw a0, 0(a1)
        CHECK(a0, 0xffffffff80000001)
        c.lw a2, 4(a1)
        CHECK(a2, 0x7ffffffe)
        c.ld a3, 8(a1)
        CHECK(a3, 0x8877665544332211)
        c.lw a4, 124(a1)
        CHECK(a4, 0x0000007c)
        c.ld a5, 248(a1)
        CHECK(a5, 0x00000000000000f8)
        TEST_CASE(18)
        la s0, cbuf
        li a0, 0xffffffffcafef00d
        c.sw a0, 4(s0)
        li a1, 0x0123456789abcdef
        c.sd a1, 8(s0)
        li a2, 0x1122334455667788
        c.sd a2, 248(s0)
        li a3, 0x00000000deadbeef
        c.sw a3, 124(s0)
        ld a4, 0(s0)
        CHECK(a4, 0xcafef00d00000000)
        ld a4, 8(s0)
        CHECK(a4, 0x0123456789abcdef)
        ld a4, 248(s0)
        CHECK(a4, 0x1122334455667788)
        lwu a4, 124(s0)
        CHECK(a4, 0xdeadbeef)
        lw a4, 120(s0)
        CHECK(a4, 0)

/* ---- C.LWSP / C.LDSP / C.SWSP / C.SDSP ---- */
        TEST_CASE(19)
        mv s1, sp
        la sp, cbuf
        li t0, 0x0102030405060708
        c.sdsp t0, 504(sp)
        li t1, 0x00000000f0e0d0c0
        c.swsp t1, 252(sp)
        li t2, 0x55aa
        c.swsp t2, 16(sp)
        c.sdsp t2, 24(sp)
        c.ldsp a0, 504(sp)
        c.lwsp a1, 252(sp)
        c.lwsp a2, 16(sp)
        c.ldsp a3, 24(sp)
        c.ldsp t5, 8(sp)                        /* value stored by case 18 */
        mv sp, s1
        CHECK(a0, 0x0102030405060708)
        CHECK(a1, 0xfffffffff0e0d0c0)
        CHECK(a2, 0x55aa)
        CHECK(a3, 0x55aa)
        CHECK(t5, 0x0123456789abcdef)

/* ---- C.J / C.BEQZ / C.BNEZ ---- */
        TEST_CASE(20)
        c.j 1f
        j fail
1:      li a0, 0
        c.j 3f
2:      c.li a0, 7
        c.j 4f
3:      c.j 2b                                  /* backward */
4:      CHECK(a0, 7)
        TEST_CASE(21)
        li a0, 0
        c.beqz a0, 1f
        j fail
1:      li a0, 1
        c.beqz a0, 2f
        c.j 3f
2:      j fail
3:      li a1, 0x8000000000000000               /* only bit 63 set: non-zero */
        c.bnez a1, 4f
        j fail
4:      li a1, 0
        c.bnez a1, 5f
        c.j 6f
5:      j fail
6:
        TEST_CASE(22)                           /* backward c.bnez loop */
        li a0, 0
        li a1, 6
1:      c.addi a0, 3
        c.addi a1, -1
        c.bnez a1, 1b
        CHECK(a0, 18)

/* ---- C.JR / C.JALR ---- */
        TEST_CASE(23)
        la t0, 1f
        li ra, 0
        c.jr t0
        j fail
1:      CHECK(ra, 0)
        TEST_CASE(24)
        la t0, 1f
        c.jalr t0
2:      j fail
1:      la a1, 2b
        CHECK_REG(ra, a1)                       /* link = address of c.jalr + 2 */
        TEST_CASE(25)
        la t0, 1f
        c.jalr t0
        c.j 2f
1:      c.jr ra                                 /* return right after the c.jalr */
2:      nop

/* ---- 32-bit instructions at 2-byte aligned addresses ---- */
        TEST_CASE(26)
        .balign 4
        c.nop
        .option push
        .option norvc
        addi a0, x0, 0x123                      /* starts at 4n+2 */
        jal a1, 1f                              /* 4n+6 */
2:      j fail
        .option pop
1:      CHECK(a0, 0x123)
        la a2, 2b
        CHECK_REG(a1, a2)
        TEST_CASE(27)                           /* jalr to a 4n+2 target */
        la t0, half_target
        andi t1, t0, 3
        CHECK(t1, 2)
        jalr ra, 0(t0)
        CHECK(a0, 0x2727)

/* ---- C.EBREAK and the illegal all-zero halfword ---- */
        TEST_TRAP(28, CAUSE_BREAKPOINT, c.ebreak)
        TEST_TRAP(29, CAUSE_ILLEGAL_INSN, .half 0x0000)

/* ---- compressed ops with sp/ra/zero-ish operands ---- */
        TEST_CASE(30)
        li a0, 10
        c.mv a1, a0
        c.add a1, a1                            /* rd == rs2 */
        CHECK(a1, 20)
        c.li a0, 0
        CHECK(a0, 0)

TEST_END

        .balign 4
        c.nop
half_target:                                    /* at 4n+2 */
        li a0, 0x2727
        ret

        .data
        .balign 8
cdata:  .word 0x80000001, 0x7ffffffe
        .dword 0x8877665544332211
        .set i, 16
        .rept 58
        .word i
        .set i, i + 4
        .endr
        .dword 0xf8
        .balign 8
cbuf:   .skip 512
