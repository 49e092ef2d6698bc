/* start.S - entry of the gdb test firmware: every hart gets a 4 KiB stack, hart 0 runs
   main0 and the others main1. RAM is zero at reset, so .bss is not cleared (hart 1 would
   race with it). */
        .section .text.init, "ax", @progbits
        .globl _start
_start:
        csrr t0, mhartid
        slli t1, t0, 12
        la sp, _stack_top
        sub sp, sp, t1
        bnez t0, 1f
        call main0
        j .
1:      call main1
        j .
