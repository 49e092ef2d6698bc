/* interrupts: machine software interrupt (CLINT msip), machine timer
 * interrupt (CLINT mtime/mtimecmp), mip reflecting the CLINT lines, mie /
 * mstatus.MIE gating, WFI waking on a pending enabled interrupt (even with
 * mstatus.MIE = 0), interrupt priority (MSI before MTI), and vectored mode
 * (interrupt cause N dispatches to BASE + 4*N).
 *
 * Registers used by the interrupt handler: s4/s5 scratch, s6 = number of
 * interrupts taken, s7 = vector entry (vectored mode), s8 = mcause of the
 * first interrupt, s9 = its mepc, s10 = mstatus seen by the handler.
 * The handler clears msip and pushes mtimecmp to the maximum (or, while
 * s3 != 0, re-arms it 2000 ticks ahead and decrements s3). */
#include "test.h"
        .option norvc

/* s8 := 0, s6 := 0 */
#define RESET_RECORD  li s8, 0; li s6, 0; li s7, -1

/* mtimecmp := mtime + delta (clobbers t0-t2) */
#define TIMER_IN(delta)                 \
        li t0, CLINT_MTIME;             \
        ld t1, 0(t0);                   \
        li t2, delta;                   \
        add t1, t1, t2;                 \
        li t0, CLINT_MTIMECMP;          \
        sd t1, 0(t0)

#define TIMER_OFF                       \
        li t0, CLINT_MTIMECMP;          \
        li t1, -1;                      \
        sd t1, 0(t0)

#define MSIP_SET(v)                     \
        li t0, CLINT_MSIP;              \
        li t1, v;                       \
        sw t1, 0(t0)

/* wait until s6 != 0 (an interrupt was taken), time out -> fail */
#define WAIT_IRQ WAIT_NONZERO(s6, WAIT_TICKS)

TEST_BEGIN
        li s3, 0
        TIMER_OFF
        MSIP_SET(0)
        csrw mie, zero
        csrci mstatus, MSTATUS_MIE
        SET_MTVEC(irq_handler)

/* ---- mip.MSIP follows the CLINT msip register ---- */
        TEST_CASE(1)
        RESET_RECORD
        MSIP_SET(1)
        csrr a0, mip
        andi a0, a0, MIP_MSIP
        CHECK(a0, MIP_MSIP)
        li t0, CLINT_MSIP
        lw a0, 0(t0)
        CHECK(a0, 1)
        MSIP_SET(0)
        csrr a0, mip
        andi a0, a0, MIP_MSIP
        CHECK(a0, 0)
        CHECK(s6, 0)                    /* nothing was enabled: no trap */

/* ---- software interrupt taken ---- */
        TEST_CASE(2)
        RESET_RECORD
        li t0, MIP_MSIP
        csrw mie, t0
        csrsi mstatus, MSTATUS_MIE
        MSIP_SET(1)
        WAIT_IRQ
        csrci mstatus, MSTATUS_MIE
        CHECK(s8, MCAUSE_INTR | IRQ_M_SOFT)
        CHECK(s6, 1)
        andi a0, s10, MSTATUS_MIE | MSTATUS_MPIE
        CHECK(a0, MSTATUS_MPIE)         /* handler runs with MIE = 0, MPIE = 1 */
        csrr a0, mstatus
        andi a0, a0, MSTATUS_MPIE
        CHECK(a0, MSTATUS_MPIE)

/* ---- mstatus.MIE = 0 blocks; setting it takes the pending interrupt ---- */
        TEST_CASE(3)
        RESET_RECORD
        MSIP_SET(1)
        li t3, 1000
1:      addi t3, t3, -1
        bnez t3, 1b
        CHECK(s6, 0)
        csrsi mstatus, MSTATUS_MIE
        nop
        nop
        csrci mstatus, MSTATUS_MIE
        CHECK(s6, 1)                    /* taken right after the csrsi */
        CHECK(s8, MCAUSE_INTR | IRQ_M_SOFT)

/* ---- mie.MSIE = 0 blocks even with MIE = 1 ---- */
        TEST_CASE(4)
        RESET_RECORD
        csrw mie, zero
        MSIP_SET(1)
        csrsi mstatus, MSTATUS_MIE
        li t3, 1000
1:      addi t3, t3, -1
        bnez t3, 1b
        CHECK(s6, 0)
        csrr a0, mip
        andi a0, a0, MIP_MSIP
        CHECK(a0, MIP_MSIP)             /* pending, but not enabled */
        li t0, MIP_MSIP
        csrs mie, t0                    /* now it fires */
        nop
        csrci mstatus, MSTATUS_MIE
        CHECK(s6, 1)
        csrw mie, zero

/* ---- mtime advances; mip.MTIP follows mtime >= mtimecmp ---- */
        TEST_CASE(5)
        li t0, CLINT_MTIME
        ld a1, 0(t0)
        li t3, 10000
1:      addi t3, t3, -1
        bnez t3, 1b
        ld a2, 0(t0)
        bleu a2, a1, fail_5
        TEST_CASE(6)
        RESET_RECORD
        csrr a0, mip
        andi a0, a0, MIP_MTIP
        CHECK(a0, 0)                    /* mtimecmp is at the maximum */
        TIMER_IN(100)
        WAIT_MIP(MIP_MTIP, WAIT_TICKS)
        TIMER_OFF
        csrr a0, mip
        andi a0, a0, MIP_MTIP
        CHECK(a0, 0)                    /* cleared by writing mtimecmp */
        CHECK(s6, 0)

/* ---- timer interrupt taken ---- */
        TEST_CASE(7)
        RESET_RECORD
        li t0, MIP_MTIP
        csrw mie, t0
        csrsi mstatus, MSTATUS_MIE
        TIMER_IN(200)
        WAIT_IRQ
        csrci mstatus, MSTATUS_MIE
        CHECK(s8, MCAUSE_INTR | IRQ_M_TIMER)
        CHECK(s6, 1)
        csrr a0, mip
        andi a0, a0, MIP_MTIP
        CHECK(a0, 0)

/* ---- WFI wakes on a pending interrupt enabled in mie, with MIE = 0:
 *      no trap is taken ---- */
        TEST_CASE(8)
        RESET_RECORD
        li t0, MIP_MTIP
        csrw mie, t0
        TIMER_IN(1000)
        li t3, 1000
1:      wfi                             /* may also return early: loop */
        csrr a0, mip
        andi a0, a0, MIP_MTIP
        bnez a0, 2f
        addi t3, t3, -1
        bnez t3, 1b
        j fail
2:      CHECK(s6, 0)
        TIMER_OFF

/* ---- WFI with MIE = 1: the interrupt is taken, then execution
 *      continues after the wfi ---- */
        TEST_CASE(9)
        RESET_RECORD
        li s3, 1                        /* handler re-arms the timer once, so an */
        li t0, MIP_MTIP                 /* interrupt taken just before the wfi */
        csrw mie, t0                    /* cannot leave it sleeping forever */
        TIMER_IN(1000)
        csrsi mstatus, MSTATUS_MIE
        li t3, 1000
1:      wfi
        bnez s6, 2f
        addi t3, t3, -1
        bnez t3, 1b
        j fail
2:      csrci mstatus, MSTATUS_MIE
        TIMER_OFF
        li s3, 0
        CHECK(s8, MCAUSE_INTR | IRQ_M_TIMER)

/* ---- priority: MSI is taken before MTI when both are pending ---- */
        TEST_CASE(10)
        RESET_RECORD
        MSIP_SET(1)
        TIMER_IN(0)
        WAIT_MIP(MIP_MTIP, WAIT_TICKS)
        li t0, MIP_MSIP | MIP_MTIP
        csrw mie, t0
        csrsi mstatus, MSTATUS_MIE
        nop
        csrci mstatus, MSTATUS_MIE
        CHECK(s8, MCAUSE_INTR | IRQ_M_SOFT)
        CHECK(s6, 1)                    /* the handler cleared both sources */

/* ---- mie / mip writability ---- */
        TEST_CASE(11)
        li a1, MIP_MSIP | MIP_MTIP | MIP_MEIP
        csrw mie, a1
        csrr a0, mie
        and a0, a0, a1
        CHECK_REG(a0, a1)
        csrw mie, zero
        csrs mip, a1                    /* MSIP/MTIP/MEIP are read-only in mip */
        csrr a0, mip
        and a0, a0, a1
        CHECK(a0, 0)

/* ---- vectored mode: interrupt N -> BASE + 4*N ---- */
        TEST_CASE(12)
        RESET_RECORD
        la t0, vtable
        ori t0, t0, 1
        csrw mtvec, t0
        li t0, MIP_MSIP
        csrw mie, t0
        csrsi mstatus, MSTATUS_MIE
        MSIP_SET(1)
        WAIT_IRQ
        csrci mstatus, MSTATUS_MIE
        CHECK(s7, IRQ_M_SOFT)
        CHECK(s8, MCAUSE_INTR | IRQ_M_SOFT)
        TEST_CASE(13)
        RESET_RECORD
        li t0, MIP_MTIP
        csrw mie, t0
        csrsi mstatus, MSTATUS_MIE
        TIMER_IN(100)
        WAIT_IRQ
        csrci mstatus, MSTATUS_MIE
        CHECK(s7, IRQ_M_TIMER)
        CHECK(s8, MCAUSE_INTR | IRQ_M_TIMER)
        TEST_CASE(14)                   /* exceptions still go to BASE in vectored mode */
        RESET_RECORD
        ecall
        CHECK(s7, 0)
        CHECK(s8, CAUSE_ECALL_M)
        SET_MTVEC(irq_handler)

        csrw mie, zero
        TIMER_OFF
        MSIP_SET(0)
        RESTORE_MTVEC
TEST_END

fail_5: j fail

/* direct-mode handler: interrupts only */
        .balign 4
irq_handler:
        csrr s4, mcause
        bgez s4, unexpected_trap        /* synchronous exception: not expected */
        bnez s8, 1f
        mv s8, s4
        csrr s9, mepc
        csrr s10, mstatus
1:      addi s6, s6, 1
        li s4, CLINT_MSIP
        sw zero, 0(s4)
        li s5, -1
        beqz s3, 2f                     /* s3 != 0: re-arm the timer instead */
        addi s3, s3, -1
        li s4, CLINT_MTIME
        ld s5, 0(s4)
        addi s5, s5, 2000
2:      li s4, CLINT_MTIMECMP
        sd s5, 0(s4)
        mret

/* vectored table: entry N sets s7 = N */
        .balign 256
vtable:
        j vec_exception                 /* 0: exceptions */
        j unexpected_trap               /* 1: S-soft */
        j unexpected_trap               /* 2 */
        j vec_msi                       /* 3: M-soft */
        j unexpected_trap               /* 4 */
        j unexpected_trap               /* 5: S-timer */
        j unexpected_trap               /* 6 */
        j vec_mti                       /* 7: M-timer */
        j unexpected_trap               /* 8 */
        j unexpected_trap               /* 9: S-ext */
        j unexpected_trap               /* 10 */
        j unexpected_trap               /* 11: M-ext */
        .rept 4
        j unexpected_trap
        .endr
vec_msi:
        li s7, 3
        j irq_handler
vec_mti:
        li s7, 7
        j irq_handler
vec_exception:
        li s7, 0
        csrr s8, mcause
        csrr s4, mepc
        addi s4, s4, 4
        csrw mepc, s4
        mret
