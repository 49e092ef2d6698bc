/*
 * start.S - entry (flash, 0x20000000) and trap vector of echo32.
 * mtvec is written in vectored mode with a 256-byte aligned table (what
 * Ibex requires; Ibex hardwires MODE = vectored).  Every entry goes to the
 * same handler, so the firmware also works if the core only implements
 * direct mode (then every trap lands on entry 0).
 */
        .section .text.init, "ax", @progbits
        .globl _start
_start:
        csrw mie, zero
        csrci mstatus, 8
        la t0, vector_table
        ori t0, t0, 1                   /* MODE = vectored */
        csrw mtvec, t0
        la sp, _stack_top
        la t0, __bss_start
        la t1, __bss_end
1:      bgeu t0, t1, 2f
        sw zero, 0(t0)
        addi t0, t0, 4
        j 1b
2:      call echo32_main
3:      wfi
        j 3b

        .balign 256
vector_table:
        .option push
        .option norvc                   /* 4-byte entries */
        .rept 32
        j trap_entry
        .endr
        .option pop

trap_entry:
        addi sp, sp, -64
        sw ra, 0(sp)
        sw t0, 4(sp)
        sw t1, 8(sp)
        sw t2, 12(sp)
        sw a0, 16(sp)
        sw a1, 20(sp)
        sw a2, 24(sp)
        sw a3, 28(sp)
        sw a4, 32(sp)
        sw a5, 36(sp)
        sw a6, 40(sp)
        sw a7, 44(sp)
        sw t3, 48(sp)
        sw t4, 52(sp)
        sw t5, 56(sp)
        sw t6, 60(sp)
        csrr a0, mcause
        csrr a1, mepc
        csrr a2, mtval
        call trap_handler
        lw ra, 0(sp)
        lw t0, 4(sp)
        lw t1, 8(sp)
        lw t2, 12(sp)
        lw a0, 16(sp)
        lw a1, 20(sp)
        lw a2, 24(sp)
        lw a3, 28(sp)
        lw a4, 32(sp)
        lw a5, 36(sp)
        lw a6, 40(sp)
        lw a7, 44(sp)
        lw t3, 48(sp)
        lw t4, 52(sp)
        lw t5, 56(sp)
        lw t6, 60(sp)
        addi sp, sp, 64
        mret
