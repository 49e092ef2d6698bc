/* rv32_trap: RV32 M-mode trap basics -- misa (MXL=1, I M C), mhartid,
 * ECALL / EBREAK / illegal instruction (mtval = bits), load access fault,
 * mstatus stacking and MRET, 64-bit counters read as two halves
 * (mcycle/mcycleh, minstret/minstreth), CLINT software and timer
 * interrupts with 32-bit accesses, vectored mode. */
#include "test.h"
        .option norvc
TEST_BEGIN
        TEST_CASE(1)
        csrr a0, misa
        srli a1, a0, 30
        CHECK(a1, 1)                    /* MXL = 1: 32-bit */
        li t0, (1 << 2) | (1 << 8) | (1 << 12)   /* C I M */
        and a1, a0, t0
        CHECK_REG(a1, t0)
        csrr a0, mhartid
        CHECK(a0, 0)
        TEST_CASE(2)
        li a1, 0x89abcdef
        csrrw a0, mscratch, a1
        csrr a0, mscratch
        CHECK(a0, 0x89abcdef)

        TEST_TRAP(3, CAUSE_ECALL_M, ecall)
        CHECK(s10, 0)
        TEST_TRAP(4, CAUSE_BREAKPOINT, ebreak)
        TEST_TRAP(5, CAUSE_ILLEGAL_INSN, .word 0xc0001073)
        CHECK(s10, 0xc0001073)
        TEST_TRAP(6, CAUSE_ILLEGAL_INSN, csrw mhartid, x0)
        CHECK(s10, 0xf1401073)
        TEST_TRAP(7, CAUSE_ILLEGAL_INSN, .word 0x0000003b)     /* OP-32 (addw) does not exist on RV32 */
        CHECK(s10, 0x0000003b)
        TEST_CASE(8)
        li a1, 0x10
        TEST_TRAP(8, CAUSE_LOAD_ACCESS, lw a0, 4(a1))
        CHECK(s10, 0x14)
        TEST_CASE(9)
        li a1, 0x10
        TEST_TRAP(9, CAUSE_STORE_ACCESS, sw a1, 0(a1))
        CHECK(s10, 0x10)

        TEST_CASE(10)                   /* mstatus stacking, mret to mepc + 4 */
        csrw mie, zero
        li t0, MSTATUS_MPIE
        csrc mstatus, t0
        csrsi mstatus, MSTATUS_MIE
        SET_MTVEC(status_handler)
        li s7, 0
        ecall
        addi s7, s7, 1
        RESTORE_MTVEC
        andi a0, s7, MSTATUS_MIE | MSTATUS_MPIE | 1
        CHECK(a0, MSTATUS_MPIE | 1)     /* MPIE=1 MIE=0 inside; +1 after return */
        li t0, MSTATUS_MPP
        and a0, s7, t0
        CHECK(a0, MSTATUS_MPP)
        csrr a0, mstatus
        andi a0, a0, MSTATUS_MIE
        CHECK(a0, MSTATUS_MIE)
        csrci mstatus, MSTATUS_MIE

        TEST_CASE(11)                   /* 64-bit counters as hi/lo halves */
        csrr a1, minstret
        csrr a2, minstreth
        nop
        nop
        csrr a3, minstret
        csrr a4, minstreth
        bltu a2, a4, 1f
        bltu a1, a3, 1f
        j fail
1:      csrr a1, mcycle
        csrr a2, mcycleh
        li t3, 100
2:      addi t3, t3, -1
        bnez t3, 2b
        csrr a3, mcycle
        csrr a4, mcycleh
        bltu a2, a4, 3f
        bltu a1, a3, 3f
        j fail
3:      rdinstreth a0
        rdcycleh a0

        TEST_CASE(12)                   /* software interrupt, vectored: BASE + 4*3 */
        la t0, vtable
        ori t0, t0, 1
        csrw mtvec, t0
        li s6, 0
        li s7, -1
        li t0, MIP_MSIP
        csrw mie, t0
        csrsi mstatus, MSTATUS_MIE
        li t0, CLINT_MSIP
        li t1, 1
        sw t1, 0(t0)
        WAIT_NONZERO(s6, WAIT_TICKS)
        csrci mstatus, MSTATUS_MIE
        CHECK(s7, 3)
        CHECK(s8, 0x80000003)

        TEST_CASE(13)                   /* timer interrupt via 32-bit mtimecmp writes */
        li s6, 0
        li s7, -1
        li t0, CLINT_MTIMECMP
        li t1, -1
        sw t1, 4(t0)                    /* hi = max first: no spurious match */
        li t2, CLINT_MTIME
1:      lw a1, 4(t2)                    /* consistent 64-bit read of mtime */
        lw a0, 0(t2)
        lw a2, 4(t2)
        bne a1, a2, 1b
        li t3, 500
        add a3, a0, t3
        sltu t4, a3, a0                 /* carry */
        add a1, a1, t4
        sw a3, 0(t0)
        sw a1, 4(t0)
        li t0, MIP_MTIP
        csrw mie, t0
        csrsi mstatus, MSTATUS_MIE
        WAIT_NONZERO(s6, WAIT_TICKS)
        csrci mstatus, MSTATUS_MIE
        CHECK(s7, 7)
        CHECK(s8, 0x80000007)
        csrw mie, zero
        RESTORE_MTVEC
TEST_END

        .balign 4
status_handler:
        csrr s7, mstatus
        csrr t0, mepc
        addi t0, t0, 4
        csrw mepc, t0
        mret

        .balign 128
vtable:
        j unexpected_trap               /* 0: exceptions */
        j unexpected_trap
        j unexpected_trap
        j vec_msi                       /* 3 */
        j unexpected_trap
        j unexpected_trap
        j unexpected_trap
        j vec_mti                       /* 7 */
        .rept 8
        j unexpected_trap
        .endr
vec_msi:                                /* handlers use only s4-s8 */
        li s7, 3
        csrr s8, mcause
        li s4, CLINT_MSIP
        sw zero, 0(s4)
        addi s6, s6, 1
        mret
vec_mti:
        li s7, 7
        csrr s8, mcause
        li s4, CLINT_MTIMECMP
        li s5, -1
        sw s5, 4(s4)
        sw s5, 0(s4)
        addi s6, s6, 1
        mret
