/* sstc: the Sstc extension.  stimecmp (0x14d) is always accessible in
 * M-mode; menvcfg.STCE (bit 63) is writable; with STCE = 1, mip.STIP is
 * (time >= stimecmp) and software writes to it are ignored, with STCE = 0
 * it is an ordinary M-writable bit again; STIP rises as time passes
 * stimecmp; the supervisor timer interrupt is taken in M (not delegated)
 * and in S (delegated through mideleg); WFI wakes up at the stimecmp
 * deadline with nothing else pending; S-mode may access stimecmp only with
 * menvcfg.STCE = 1 and mcounteren.TM = 1, otherwise the access is an
 * illegal instruction.
 *
 * Registers: s6 = number of timer interrupts taken, s5 = the cause the
 * handler saw; s7..s11 as in umode.S (m_trap records mcause/mepc/mtval in
 * s8/s9/s10 and resumes at s11 in M-mode).  Handlers do not touch t0-t3. */
#include "test.h"
        .option norvc

#define CSR_MENVCFG     0x30a
#define CSR_STIMECMP    0x14d
#define CSR_MCOUNTEREN  0x306
#define CSR_MIDELEG     0x303
#define CSR_STVEC       0x105
#define CSR_SIE         0x104
#define MIP_STIP        0x20
#define SSTATUS_SIE     0x2
#define IRQ_S_TIMER     5
#define CAUSE_ECALL_S   9
#define MCOUNTEREN_TM   0x2

/* t0 := menvcfg.STCE */
#define LI_STCE         li t0, 1; slli t0, t0, 63
#define STCE_ON         LI_STCE; csrs CSR_MENVCFG, t0
#define STCE_OFF        LI_STCE; csrc CSR_MENVCFG, t0

/* stimecmp := time + delta (clobbers t0, t1; a4 := the deadline) */
#define STIMECMP_IN(delta)              \
        csrr t0, time;                  \
        li t1, delta;                   \
        add a4, t0, t1;                 \
        csrw CSR_STIMECMP, a4

#define STIMECMP_OFF    li t0, -1; csrw CSR_STIMECMP, t0

/* a0 := mip.STIP */
#define READ_STIP       csrr a0, mip; andi a0, a0, MIP_STIP

/* Run the code at `slabel` in S-mode; any trap to M comes back to m_trap,
 * which records s8 = mcause, s9 = mepc, s10 = mtval and continues at
 * `resume` in M-mode. */
#define ENTER_S(slabel, resume)         \
        la s11, resume;                 \
        SET_MTVEC(m_trap);              \
        li s8, -1;                      \
        li t0, MSTATUS_MPP;             \
        csrc mstatus, t0;               \
        li t0, 0x800;                   \
        csrs mstatus, t0;               \
        la t0, slabel;                  \
        csrw mepc, t0;                  \
        mret

TEST_BEGIN
        /* PMP: entry 0 = NAPOT over the whole address space, RWX (for S) */
        li t0, -1
        csrw pmpaddr0, t0
        li t0, 0x1f
        csrw pmpcfg0, t0
        csrw mie, zero
        csrci mstatus, MSTATUS_MIE
        li s6, 0

/* ---- M-mode reaches stimecmp whatever STCE says ---- */
        TEST_CASE(1)
        STCE_OFF
        li t0, 0x123456789a
        csrw CSR_STIMECMP, t0
        csrr a0, CSR_STIMECMP
        CHECK(a0, 0x123456789a)

/* ---- menvcfg.STCE is writable ---- */
        TEST_CASE(2)
        STCE_ON
        csrr a0, CSR_MENVCFG
        srli a0, a0, 63
        CHECK(a0, 1)
        STCE_OFF
        csrr a0, CSR_MENVCFG
        srli a0, a0, 63
        CHECK(a0, 0)

/* ---- with STCE = 1, STIP is time >= stimecmp ---- */
        TEST_CASE(3)
        STIMECMP_OFF
        STCE_ON
        READ_STIP
        CHECK(a0, 0)
        csrw CSR_STIMECMP, zero         /* time >= 0: due at once */
        READ_STIP
        CHECK(a0, MIP_STIP)
        STIMECMP_OFF
        READ_STIP
        CHECK(a0, 0)

/* ---- ... and software cannot change it ---- */
        TEST_CASE(4)
        li t0, MIP_STIP
        csrs mip, t0
        READ_STIP
        CHECK(a0, 0)
        csrw CSR_STIMECMP, zero
        li t0, MIP_STIP
        csrc mip, t0
        READ_STIP
        CHECK(a0, MIP_STIP)
        STIMECMP_OFF

/* ---- with STCE = 0, STIP is written by M-mode software again ---- */
        TEST_CASE(5)
        STCE_OFF
        li t0, MIP_STIP
        csrc mip, t0
        READ_STIP
        CHECK(a0, 0)
        li t0, MIP_STIP
        csrs mip, t0
        READ_STIP
        CHECK(a0, MIP_STIP)
        li t0, MIP_STIP
        csrc mip, t0
        READ_STIP
        CHECK(a0, 0)

/* ---- STIP rises when time reaches stimecmp ---- */
        TEST_CASE(6)
        STCE_ON
        STIMECMP_IN(50000000)           /* 5 s away: not pending now */
        READ_STIP
        CHECK(a0, 0)
        STIMECMP_IN(2000)
        WAIT_MIP(MIP_STIP, WAIT_TICKS)
        csrr a0, time
        bltu a0, a4, fail               /* not before the deadline */
        STIMECMP_OFF
        READ_STIP
        CHECK(a0, 0)

/* ---- the supervisor timer interrupt, taken in M (not delegated) ---- */
        TEST_CASE(7)
        SET_MTVEC(m_timer)
        li s6, 0
        li s5, 0
        li t0, MIP_STIP
        csrw mie, t0
        csrsi mstatus, MSTATUS_MIE
        STIMECMP_IN(2000)
        WAIT_NONZERO(s6, WAIT_TICKS)
        csrci mstatus, MSTATUS_MIE
        csrw mie, zero
        RESTORE_MTVEC
        CHECK(s5, MCAUSE_INTR | IRQ_S_TIMER)
        CHECK(s6, 1)
        READ_STIP
        CHECK(a0, 0)                    /* the handler moved stimecmp away */

/* ---- WFI (MIE = 0) sleeps until the stimecmp deadline ---- */
        TEST_CASE(8)
        li t0, MIP_STIP
        csrw mie, t0
        csrr s4, time
        STIMECMP_IN(20000)              /* 2 ms */
1:      wfi
        READ_STIP
        bnez a0, 2f
        csrr t2, time
        sub t2, t2, s4
        li t3, WAIT_TICKS
        bltu t2, t3, 1b
        j fail
2:      csrr a0, time
        bltu a0, a4, fail
        csrw mie, zero
        STIMECMP_OFF

/* ---- S-mode accesses stimecmp with STCE = 1 and mcounteren.TM = 1 ---- */
        TEST_CASE(9)
        li t0, MCOUNTEREN_TM
        csrw CSR_MCOUNTEREN, t0
        li a1, 0
        li a2, 0x5555
        ENTER_S(s_stimecmp, 1f)
1:      RESTORE_MTVEC
        CHECK(s8, CAUSE_ECALL_S)
        CHECK(a1, 0x5555)
        csrr a0, CSR_STIMECMP
        CHECK(a0, 0x5555)
        STIMECMP_OFF

/* ---- ... not with mcounteren.TM = 0 ---- */
        TEST_CASE(10)
        csrw CSR_MCOUNTEREN, zero
        ENTER_S(s_stimecmp, 1f)
1:      RESTORE_MTVEC
        CHECK(s8, CAUSE_ILLEGAL_INSN)
        la a0, s_stimecmp
        CHECK_REG(s9, a0)
        csrr a0, CSR_STIMECMP
        CHECK(a0, -1)                   /* not written */

/* ---- ... nor with menvcfg.STCE = 0 ---- */
        TEST_CASE(11)
        li t0, MCOUNTEREN_TM
        csrw CSR_MCOUNTEREN, t0
        STCE_OFF
        ENTER_S(s_stimecmp, 1f)
1:      RESTORE_MTVEC
        CHECK(s8, CAUSE_ILLEGAL_INSN)
        la a0, s_stimecmp
        CHECK_REG(s9, a0)
        ENTER_S(s_read_stimecmp, 1f)
1:      RESTORE_MTVEC
        CHECK(s8, CAUSE_ILLEGAL_INSN)
        STCE_ON

/* ---- delegated to S: S-mode programs its own timer and takes it ---- */
        TEST_CASE(12)
        li t0, MIP_STIP
        csrw CSR_MIDELEG, t0
        csrw mie, zero
        la t0, s_timer
        csrw CSR_STVEC, t0
        li s6, 0
        li s5, 0
        ENTER_S(s_wait_timer, 1f)
1:      RESTORE_MTVEC
        CHECK(s8, CAUSE_ECALL_S)
        CHECK(s5, MCAUSE_INTR | IRQ_S_TIMER)
        CHECK(s6, 1)
        READ_STIP
        CHECK(a0, 0)
        csrw CSR_MIDELEG, zero
        csrw mie, zero
        STCE_OFF
TEST_END

/* ---- M-mode handlers ---- */
        .balign 4
m_trap:
        csrr s8, mcause
        csrr s9, mepc
        csrr s10, mtval
        jr s11                          /* stay in M-mode */

        .balign 4
m_timer:
        csrr s5, mcause
        addi s6, s6, 1
        li s4, -1
        csrw CSR_STIMECMP, s4           /* lowers STIP */
        mret

/* ---- S-mode code ---- */
s_stimecmp:
        csrw CSR_STIMECMP, a2           /* a2 = 0x5555, set below */
        csrr a1, CSR_STIMECMP
        ecall
s_read_stimecmp:
        csrr a1, CSR_STIMECMP
        ecall

        .balign 4
s_timer:                                /* S-mode handler */
        csrr s5, scause
        addi s6, s6, 1
        li s4, -1
        csrw CSR_STIMECMP, s4
        sret

s_wait_timer:
        li t0, MIP_STIP
        csrs CSR_SIE, t0
        csrsi sstatus, SSTATUS_SIE
        STIMECMP_IN(2000)
        WAIT_NONZERO(s6, WAIT_TICKS)
        csrci sstatus, SSTATUS_SIE
        ecall
