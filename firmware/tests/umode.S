/* umode: MRET into U-mode (MPP = 0), ECALL from U (cause 8), privileged
 * instructions and M-mode CSRs from U are illegal instructions (cause 2),
 * traps from U set MPP = U, MRET sets MPP to U (least privileged mode),
 * machine interrupts are taken in U-mode even with mstatus.MIE = 0.
 * PMP entry 0 is set to allow U-mode access to everything (NAPOT). */
#include "test.h"
        .option norvc

/* Run the code at label `ulabel` in U-mode.  Any trap comes back to
 * u_trap (M-mode), which records s8 = mcause, s9 = mepc, s10 = mtval,
 * s7 = mstatus and continues at s11 in M-mode. */
#define ENTER_U(ulabel, resume)         \
        la s11, resume;                 \
        SET_MTVEC(u_trap);              \
        li s8, -1;                      \
        li t0, MSTATUS_MPP;             \
        csrc mstatus, t0;               \
        la t0, ulabel;                  \
        csrw mepc, t0;                  \
        mret

TEST_BEGIN
        /* PMP: entry 0 = NAPOT over the whole address space, RWX */
        li t0, -1
        csrw pmpaddr0, t0
        li t0, 0x1f
        csrw pmpcfg0, t0

/* ---- ECALL from U ---- */
        TEST_CASE(1)
        ENTER_U(u_ecall, 1f)
1:      RESTORE_MTVEC
        CHECK(s8, CAUSE_ECALL_U)
        la a0, u_ecall_insn
        CHECK_REG(s9, a0)
        CHECK(s10, 0)
        li t0, MSTATUS_MPP
        and a0, s7, t0
        CHECK(a0, 0)                    /* MPP = U */
        CHECK(a1, 0x1234)               /* U code ran */

/* ---- U-mode computation and memory access ---- */
        TEST_CASE(2)
        la a0, udata
        li a1, 5
        ENTER_U(u_work, 1f)
1:      RESTORE_MTVEC
        CHECK(s8, CAUSE_ECALL_U)
        ld a0, udata
        CHECK(a0, 15)                   /* 1 + 2 + 3 + 4 + 5 stored by U code */

/* ---- M-mode CSRs and privileged instructions are illegal in U ---- */
        TEST_CASE(3)
        ENTER_U(u_mscratch, 1f)
1:      RESTORE_MTVEC
        CHECK(s8, CAUSE_ILLEGAL_INSN)
        la a0, u_mscratch
        CHECK_REG(s9, a0)
        CHECK(s10, 0x34002573)          /* csrr a0, mscratch */
        TEST_CASE(4)
        ENTER_U(u_mhartid, 1f)
1:      RESTORE_MTVEC
        CHECK(s8, CAUSE_ILLEGAL_INSN)
        CHECK(s10, 0xf14025f3)          /* csrr a1, mhartid */
        TEST_CASE(5)
        ENTER_U(u_mret, 1f)
1:      RESTORE_MTVEC
        CHECK(s8, CAUSE_ILLEGAL_INSN)
        CHECK(s10, 0x30200073)          /* mret */
        TEST_CASE(6)                    /* write to mstatus from U: illegal, no effect */
        ENTER_U(u_mstatus, 1f)
1:      RESTORE_MTVEC
        CHECK(s8, CAUSE_ILLEGAL_INSN)
        andi a0, s7, MSTATUS_MIE
        CHECK(a0, 0)
        TEST_CASE(7)
        ENTER_U(u_mtvec, 1f)
1:      RESTORE_MTVEC
        CHECK(s8, CAUSE_ILLEGAL_INSN)
        TEST_CASE(8)
        ENTER_U(u_ebreak, 1f)
1:      RESTORE_MTVEC
        CHECK(s8, CAUSE_BREAKPOINT)
        la a0, u_ebreak
        CHECK_REG(s9, a0)

/* ---- MRET sets MPP to U; ECALL from M is still cause 11 ---- */
        TEST_CASE(9)
        li t0, MSTATUS_MPP
        csrs mstatus, t0
        la t0, 1f
        csrw mepc, t0
        mret                            /* to M (MPP = M) */
1:      csrr a0, mstatus
        li t0, MSTATUS_MPP
        and a0, a0, t0
        CHECK(a0, 0)
        TEST_TRAP(10, CAUSE_ECALL_M, ecall)

/* ---- machine interrupts are enabled in U-mode regardless of MIE ---- */
        TEST_CASE(11)
        csrci mstatus, MSTATUS_MIE
        li t0, MIP_MSIP
        csrw mie, t0
        li t0, CLINT_MSIP
        li t1, 1
        sw t1, 0(t0)                    /* pending before entering U */
        ENTER_U(u_spin, 1f)
1:      RESTORE_MTVEC
        csrw mie, zero
        li t0, CLINT_MSIP
        sw zero, 0(t0)
        CHECK(s8, MCAUSE_INTR | IRQ_M_SOFT)
        la a0, u_spin
        CHECK_REG(s9, a0)               /* taken before the first U instruction */
        li t0, MSTATUS_MPP
        and a0, s7, t0
        CHECK(a0, 0)
        TEST_CASE(12)                   /* ... also when raised by U code itself */
        li t0, MIP_MSIP
        csrw mie, t0
        ENTER_U(u_raise_msip, 1f)
1:      RESTORE_MTVEC
        csrw mie, zero
        li t0, CLINT_MSIP
        sw zero, 0(t0)
        CHECK(s8, MCAUSE_INTR | IRQ_M_SOFT)
        CHECK(a2, 0)                    /* the U code did not get past the store */
TEST_END

/* ---- M-mode trap handler for U code ---- */
        .balign 4
u_trap:
        csrr s8, mcause
        csrr s9, mepc
        csrr s10, mtval
        csrr s7, mstatus
        jr s11                          /* stay in M-mode */

/* ---- U-mode snippets ---- */
u_ecall:
        li a1, 0x1234
u_ecall_insn:
        ecall
        j u_fell_through
u_work:                                 /* store sum 1..a1 to (a0), then ecall */
        li a2, 0
1:      add a2, a2, a1
        addi a1, a1, -1
        bnez a1, 1b
        sd a2, 0(a0)
        ecall
        j u_fell_through
u_mscratch:
        csrr a0, mscratch
        j u_fell_through
u_mhartid:
        csrr a1, mhartid
        j u_fell_through
u_mret:
        mret
        j u_fell_through
u_mstatus:
        csrsi mstatus, MSTATUS_MIE
        j u_fell_through
u_mtvec:
        csrw mtvec, zero
        j u_fell_through
u_ebreak:
        ebreak
        j u_fell_through
u_spin:
        j u_spin
u_raise_msip:
        li a2, 0
        li t0, CLINT_MSIP
        li t1, 1
        sw t1, 0(t0)
        li t3, 100000                   /* the interrupt must arrive in here */
1:      addi t3, t3, -1
        bnez t3, 1b
        li a2, 1
        ecall
        j u_fell_through
u_fell_through:                         /* U code ran past a trapping instruction */
        ecall
        j u_fell_through

        .data
        .balign 8
udata:  .dword 0
