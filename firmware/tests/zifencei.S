/* zifencei: self-modifying code.  Code that has already executed is
 * overwritten with new instructions, FENCE.I is executed, and the new
 * behaviour must be observed (an emulator with a decoded-instruction or
 * translation cache must flush it on FENCE.I). */
#include "test.h"
        .option norvc

/* addi a0, x0, imm */
#define ADDI_A0(imm)  (((imm) << 20) | (10 << 7) | 0x13)
/* addi a1, a1, imm */
#define ADDI_A1_A1(imm) (((imm) << 20) | (11 << 15) | (11 << 7) | 0x13)

TEST_BEGIN
        TEST_CASE(1)
        call patch_fn
        CHECK(a0, 1)

        TEST_CASE(2)                    /* replace the first instruction */
        la t0, patch_fn
        li t1, ADDI_A0(2)
        sw t1, 0(t0)
        fence.i
        call patch_fn
        CHECK(a0, 2)

        TEST_CASE(3)                    /* repeatedly: 3..40 */
        li s0, 3
1:      slli t1, s0, 20
        li t2, ADDI_A0(0)
        or t1, t1, t2
        la t0, patch_fn
        sw t1, 0(t0)
        fence.i
        call patch_fn
        bne a0, s0, fail_3
        addi s0, s0, 1
        li t0, 41
        bne s0, t0, 1b

        TEST_CASE(4)                    /* patch an instruction inside a hot loop */
        li s1, 0                        /* pass counter */
        li a1, 0
2:      li s0, 10
1:
loop_insn:
        addi a1, a1, 1                  /* becomes addi a1, a1, 16 */
        addi s0, s0, -1
        bnez s0, 1b
        bnez s1, 3f
        CHECK(a1, 10)
        la t0, loop_insn
        li t1, ADDI_A1_A1(16)
        sw t1, 0(t0)
        fence.i
        li s1, 1
        j 2b
3:      CHECK(a1, 170)                  /* 10 + 10 * 16 */

        TEST_CASE(5)                    /* patch with two halfword stores; replace the ret */
        call patch_fn2
        CHECK(a0, 5)
        la t0, patch_fn2
        /* new second instruction: jal x0, patch_fn2_alt (offset computed at run time) */
        la t1, patch_fn2_alt
        addi t2, t0, 4
        sub t1, t1, t2                  /* small positive offset < 1 MiB */
        /* encode J-type immediate */
        srli t3, t1, 20
        andi t3, t3, 1
        slli t3, t3, 31                 /* imm[20] */
        srli t4, t1, 1
        andi t4, t4, 0x3ff
        slli t4, t4, 21                 /* imm[10:1] */
        or t3, t3, t4
        srli t4, t1, 11
        andi t4, t4, 1
        slli t4, t4, 20                 /* imm[11] */
        or t3, t3, t4
        li t5, 0xff000
        and t4, t1, t5                  /* imm[19:12] in place */
        or t3, t3, t4
        ori t3, t3, 0x6f                /* opcode JAL, rd = x0 */
        sh t3, 4(t0)
        srli t3, t3, 16
        sh t3, 6(t0)
        fence.i
        call patch_fn2
        CHECK(a0, 0x55)

        TEST_CASE(6)                    /* restore the original code and re-check */
        la t0, patch_fn
        li t1, ADDI_A0(1)
        sw t1, 0(t0)
        fence.i
        call patch_fn
        CHECK(a0, 1)

TEST_END

fail_3: j fail

        .balign 4
patch_fn:
        addi a0, x0, 1
        ret

patch_fn2:
        addi a0, x0, 5
        ret
        nop
        nop
patch_fn2_alt:
        addi a0, a0, 0x50
        ret
