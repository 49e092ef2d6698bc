/* rv32c: every RV32C (integer) instruction with explicit c.* mnemonics,
 * including C.JAL (RV32 only; links pc + 2) and C.JALR. */
#include "test.h"
        .option rvc
TEST_BEGIN
        TEST_CASE(1)
        c.li a0, 31
        CHECK(a0, 31)
        c.li a0, -32
        CHECK(a0, 0xffffffe0)
        TEST_CASE(2)
        c.lui a0, 1
        CHECK(a0, 0x1000)
        c.lui a1, 0x1f
        CHECK(a1, 0x1f000)
        c.lui a2, 0xfffe0
        CHECK(a2, 0xfffe0000)
        TEST_CASE(3)
        li a0, 100
        c.addi a0, 31
        CHECK(a0, 131)
        c.addi a0, -32
        CHECK(a0, 99)
        li a0, 0x7fffffff
        c.addi a0, 1
        CHECK(a0, 0x80000000)
        c.nop
        TEST_CASE(4)
        mv s1, sp
        c.addi16sp sp, -512
        sub a0, s1, sp
        CHECK(a0, 512)
        c.addi16sp sp, 496
        c.addi16sp sp, 16
        CHECK_REG(sp, s1)
        c.addi4spn a5, sp, 1020
        sub a5, a5, sp
        CHECK(a5, 1020)
        c.addi4spn a0, sp, 4
        sub a0, a0, sp
        CHECK(a0, 4)
        TEST_CASE(5)
        li a0, 1
        c.slli a0, 31
        CHECK(a0, 0x80000000)
        li a0, 0x80000000
        c.srli a0, 31
        CHECK(a0, 1)
        li a0, 0x80000000
        c.srai a0, 31
        CHECK(a0, 0xffffffff)
        li a1, 0x80000000
        c.srai a1, 4
        CHECK(a1, 0xf8000000)
        li a0, 0x9abcdeff
        c.andi a0, -32
        CHECK(a0, 0x9abcdee0)
        li a0, 0x9abcdeff
        c.andi a0, 15
        CHECK(a0, 0xf)
        TEST_CASE(6)
        li a1, 0x12345678
        c.mv t2, a1
        CHECK(t2, 0x12345678)
        li a0, 0x7fffffff
        li a1, 2
        c.add a0, a1
        CHECK(a0, 0x80000001)
        TEST_CASE(7)
        li a0, 0
        li a1, 1
        c.sub a0, a1
        CHECK(a0, 0xffffffff)
        li a0, 0xff00ff00
        li a1, 0x0ff00ff0
        c.xor a0, a1
        CHECK(a0, 0xf0f0f0f0)
        li a0, 0xff00ff00
        c.or a0, a1
        CHECK(a0, 0xfff0fff0)
        li a0, 0xff00ff00
        c.and a0, a1
        CHECK(a0, 0x0f000f00)
        TEST_CASE(8)
        la a1, cdata
        c.lw a0, 0(a1)
        CHECK(a0, 0x80000001)
        c.lw a2, 124(a1)
        CHECK(a2, 124)
        la s0, cbuf
        li a3, 0xcafef00d
        c.sw a3, 4(s0)
        c.sw a3, 124(s0)
        lw a4, 4(s0)
        CHECK(a4, 0xcafef00d)
        lw a4, 124(s0)
        CHECK(a4, 0xcafef00d)
        lw a4, 0(s0)
        CHECK(a4, 0)
        TEST_CASE(9)
        mv s1, sp
        la sp, cbuf
        li t0, 0x01020304
        c.swsp t0, 252(sp)
        c.swsp t0, 8(sp)
        c.lwsp a0, 252(sp)
        c.lwsp a1, 8(sp)
        c.lwsp a2, 4(sp)
        mv sp, s1
        CHECK(a0, 0x01020304)
        CHECK(a1, 0x01020304)
        CHECK(a2, 0xcafef00d)
        TEST_CASE(10)
        c.j 1f
        j fail
1:      li a0, 0
        c.j 3f
2:      c.li a0, 7
        c.j 4f
3:      c.j 2b
4:      CHECK(a0, 7)
        TEST_CASE(11)
        li a0, 0
        c.beqz a0, 1f
        j fail
1:      li a0, 0x80000000
        c.bnez a0, 2f
        j fail
2:      c.beqz a0, 3f
        c.j 4f
3:      j fail
4:      li a1, 5
        li a0, 0
5:      c.addi a0, 2
        c.addi a1, -1
        c.bnez a1, 5b
        CHECK(a0, 10)
        TEST_CASE(12)                   /* C.JAL: ra = pc + 2 */
        c.jal 1f
2:      j fail
1:      la a1, 2b
        CHECK_REG(ra, a1)
        TEST_CASE(13)
        li a0, 5
        c.jal sub_triple
        c.jal sub_triple
        CHECK(a0, 53)                   /* (5*3+2)*3+2 */
        TEST_CASE(14)
        la t0, 1f
        c.jalr t0
2:      j fail
1:      la a1, 2b
        CHECK_REG(ra, a1)
        la t0, 1f
        li ra, 0
        c.jr t0
        j fail
1:      CHECK(ra, 0)
        TEST_TRAP(15, CAUSE_BREAKPOINT, c.ebreak)
        TEST_TRAP(16, CAUSE_ILLEGAL_INSN, .half 0x0000)
        TEST_CASE(17)                   /* 32-bit instruction at 4n+2 */
        .balign 4
        c.nop
        .option push
        .option norvc
        addi a0, x0, 0x321
        .option pop
        CHECK(a0, 0x321)
TEST_END

sub_triple:                             /* a0 = a0 * 3 + 2 */
        c.mv a1, a0
        c.add a0, a1
        c.add a0, a1
        c.addi a0, 2
        c.jr ra

        .data
        .balign 4
cdata:  .word 0x80000001
        .set i, 4
        .rept 31
        .word i
        .set i, i + 4
        .endr
cbuf:   .skip 256
