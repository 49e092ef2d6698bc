/*
 * crt.S - start-up and reporting code shared by all ISA test programs
 * (assembled for rv32 and rv64).  Uses only base-ISA 32-bit encodings.
 */
#include "test.h"

        .option norvc
        .section .text.init, "ax", @progbits
        .globl _start
_start:
        csrr t0, mhartid
        bnez t0, park                   /* only hart 0 runs the test */
        la t0, unexpected_trap
        csrw mtvec, t0
        csrw mie, zero
        la sp, _stack_top
        li TESTNUM, 0
        j test_main

park:   wfi
        j park

/* ------------------------------------------------------------------ */
        .text
        .globl pass
pass:
        li t0, FINISHER_BASE
        li t1, FINISHER_PASS
        sw t1, 0(t0)
1:      j 1b

        .globl fail
fail:
        csrci mstatus, MSTATUS_MIE      /* no interrupts while reporting */
        csrw mie, zero
        mv s0, TESTNUM
        la a0, msg_fail
        jal puts
        mv a0, s0
        jal putdec
        li a0, '\n'
        jal putc
        mv a0, s0
        beqz a0, 2f
        li t0, 0xffff
        bltu a0, t0, 1f
2:      li a0, NO_CASE_CODE
1:      j finish_fail

/* a0 = exit code */
finish_fail:
        slli a0, a0, 16
        li t1, FINISHER_FAIL
        or a0, a0, t1
        li t0, FINISHER_BASE
        sw a0, 0(t0)
1:      j 1b

/* Default trap vector: every trap a test did not ask for ends here. */
        .balign 4
        .globl unexpected_trap
unexpected_trap:
        csrr s1, mcause
        csrr s2, mepc
        csrr s3, mtval
        la sp, _stack_top
        mv s0, TESTNUM
        la a0, msg_trap
        jal puts
        mv a0, s0
        jal putdec
        la a0, msg_mcause
        jal puts
        mv a0, s1
        jal puthex
        la a0, msg_mepc
        jal puts
        mv a0, s2
        jal puthex
        la a0, msg_mtval
        jal puts
        mv a0, s3
        jal puthex
        li a0, '\n'
        jal putc
        li a0, UNEXPECTED_TRAP_CODE
        j finish_fail

/* Trap handler for TEST_TRAP: record and resume at s11 (in M-mode). */
        .balign 4
        .globl trap_catch
trap_catch:
        csrr s8, mcause
        csrr s9, mepc
        csrr s10, mtval
        csrw mepc, s11
        li t0, MSTATUS_MPP
        csrs mstatus, t0                /* resume in M-mode */
        mret

/* ---- tiny UART output (ns16550a THR at +0, LSR at +5) ------------- */
/* putc(a0); clobbers t0-t2 */
        .globl putc
putc:
        li t0, UART_BASE
        li t2, 100000                   /* bounded wait for THRE */
1:      lbu t1, 5(t0)
        andi t1, t1, 0x20
        bnez t1, 2f
        addi t2, t2, -1
        bnez t2, 1b
2:      sb a0, 0(t0)
        ret

/* puts(a0 = NUL-terminated string); clobbers t0-t3, a0 */
        .globl puts
puts:
        mv t3, a0
        mv a1, ra
1:      lbu a0, 0(t3)
        beqz a0, 2f
        jal putc
        addi t3, t3, 1
        j 1b
2:      mv ra, a1
        ret

/* puthex(a0): "0x" + XLEN/4 hex digits; clobbers t0-t4, a0-a2 */
        .globl puthex
puthex:
        mv a2, ra
        mv t4, a0
        li a0, '0'
        jal putc
        li a0, 'x'
        jal putc
        li t3, (REGBYTES * 8 - 4)
1:      srl a0, t4, t3
        andi a0, a0, 0xf
        li t0, 10
        blt a0, t0, 2f
        addi a0, a0, 'a' - 10 - '0'
2:      addi a0, a0, '0'
        jal putc
        addi t3, t3, -4
        bgez t3, 1b
        mv ra, a2
        ret

/* putdec(a0): unsigned decimal, no M extension needed; clobbers t0-t5, a0-a2 */
        .globl putdec
putdec:
        mv a2, ra
        mv t4, a0
        addi sp, sp, -32
        mv t5, sp                       /* digit buffer (least significant first) */
1:      /* restoring division t4 / 10 */
        li a1, 0
        li t1, 10
        li t3, (REGBYTES * 8 - 4)
        mv t2, t4
5:      srl t0, t2, t3
        bltu t0, t1, 6f
        sll t0, t1, t3
        sub t2, t2, t0
        li t0, 1
        sll t0, t0, t3
        or a1, a1, t0
6:      addi t3, t3, -1
        bgez t3, 5b
        /* a1 = quotient, t2 = remainder */
        addi t2, t2, '0'
        sb t2, 0(t5)
        addi t5, t5, 1
        mv t4, a1
        bnez t4, 1b
7:      addi t5, t5, -1
        lbu a0, 0(t5)
        jal putc
        bne t5, sp, 7b
        addi sp, sp, 32
        mv ra, a2
        ret

        .section .rodata
msg_fail:   .asciz "FAIL: case "
msg_trap:   .asciz "UNEXPECTED TRAP: case "
msg_mcause: .asciz " mcause="
msg_mepc:   .asciz " mepc="
msg_mtval:  .asciz " mtval="
