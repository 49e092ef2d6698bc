/* start.S - entry of the workload benchmark (hart 0 runs, others park). */
        .section .text.init, "ax", @progbits
        .globl _start
_start:
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
2:      call workload_main
park:   csrw mie, zero
3:      wfi
        j 3b

        .balign 4
trap_entry:                             /* every trap is fatal here */
        la sp, _stack_top
        csrr a0, mcause
        csrr a1, mepc
        call trap_handler
        j park
