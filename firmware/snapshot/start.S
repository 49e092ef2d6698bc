/* start.S - entry of the snapshot test firmware: a 4 KiB stack per hart, then main(hartid). */
        .section .text.init, "ax", @progbits
        .globl _start
_start:
        csrr a0, mhartid
        slli t1, a0, 12
        la sp, _stack_top
        sub sp, sp, t1
        call main
        j .
