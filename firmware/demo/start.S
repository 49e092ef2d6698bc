/* start.S - entry, hart parking and trap entry of the demo firmware. */
        .section .text.init, "ax", @progbits
        .globl _start
_start:
        /* a0 = hart id, a1 = device tree (QEMU / breadboard boot protocol) */
        csrr t0, mhartid
        bnez t0, park
        csrw mie, zero
        la t0, trap_entry
        csrw mtvec, t0
        la sp, _stack_top
        la t0, __bss_start
        la t1, __bss_end
1:      bgeu t0, t1, 2f
        sd zero, 0(t0)
        addi t0, t0, 8
        j 1b
2:      call demo_main
        /* demo_main does not return; if it does, fail with code 1 */
        li t0, 0x100000
        li t1, 0x13333
        sw t1, 0(t0)
park:   csrw mie, zero
3:      wfi
        j 3b

        .balign 4
trap_entry:
        addi sp, sp, -128
        sd ra, 0(sp)
        sd t0, 8(sp)
        sd t1, 16(sp)
        sd t2, 24(sp)
        sd a0, 32(sp)
        sd a1, 40(sp)
        sd a2, 48(sp)
        sd a3, 56(sp)
        sd a4, 64(sp)
        sd a5, 72(sp)
        sd a6, 80(sp)
        sd a7, 88(sp)
        sd t3, 96(sp)
        sd t4, 104(sp)
        sd t5, 112(sp)
        sd t6, 120(sp)
        csrr a0, mcause
        csrr a1, mepc
        csrr a2, mtval
        call trap_handler
        ld ra, 0(sp)
        ld t0, 8(sp)
        ld t1, 16(sp)
        ld t2, 24(sp)
        ld a0, 32(sp)
        ld a1, 40(sp)
        ld a2, 48(sp)
        ld a3, 56(sp)
        ld a4, 64(sp)
        ld a5, 72(sp)
        ld a6, 80(sp)
        ld a7, 88(sp)
        ld t3, 96(sp)
        ld t4, 104(sp)
        ld t5, 112(sp)
        ld t6, 120(sp)
        addi sp, sp, 128
        mret
