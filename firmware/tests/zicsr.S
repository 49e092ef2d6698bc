/* zicsr: CSRRW/CSRRS/CSRRC and the immediate forms on mscratch, read-only
 * CSRs (reads OK, writes -> illegal instruction with mtval = the
 * instruction), misa (MXL=2, I M A C present), mhartid = 0, counters
 * mcycle/minstret (and cycle/instret) increase, WARL behaviour of mepc,
 * mtvec, mcause, mie. */
#include "test.h"
        .option norvc
TEST_BEGIN

/* ---- CSRRW ---- */
        TEST_CASE(1)
        li a1, 0x0123456789abcdef
        csrw mscratch, a1
        csrr a0, mscratch
        CHECK(a0, 0x0123456789abcdef)
        TEST_CASE(2)
        li a1, 0x8000000000000001
        csrrw a0, mscratch, a1
        CHECK(a0, 0x0123456789abcdef)
        csrr a0, mscratch
        CHECK(a0, 0x8000000000000001)
        TEST_CASE(3)                    /* rd == rs1 */
        li a0, 0x55
        csrrw a0, mscratch, a0
        CHECK(a0, 0x8000000000000001)
        csrr a0, mscratch
        CHECK(a0, 0x55)

/* ---- CSRRS / CSRRC ---- */
        TEST_CASE(4)
        li a1, 0xff00
        csrrs a0, mscratch, a1
        CHECK(a0, 0x55)
        csrr a0, mscratch
        CHECK(a0, 0xff55)
        TEST_CASE(5)
        li a1, 0x0f05
        csrrc a0, mscratch, a1
        CHECK(a0, 0xff55)
        csrr a0, mscratch
        CHECK(a0, 0xf050)
        TEST_CASE(6)                    /* set/clear with all-ones masks */
        li a1, -1
        csrrs a0, mscratch, a1
        CHECK(a0, 0xf050)
        csrr a0, mscratch
        CHECK(a0, -1)
        csrrc a0, mscratch, a1
        CHECK(a0, -1)
        csrr a0, mscratch
        CHECK(a0, 0)
        TEST_CASE(7)                    /* rs1 = x0: pure reads */
        li a1, 0x1234
        csrw mscratch, a1
        csrrs a0, mscratch, x0
        CHECK(a0, 0x1234)
        csrrc a0, mscratch, x0
        CHECK(a0, 0x1234)
        csrr a0, mscratch
        CHECK(a0, 0x1234)

/* ---- immediate forms (5-bit zero-extended uimm) ---- */
        TEST_CASE(8)
        csrrwi a0, mscratch, 0x1f
        CHECK(a0, 0x1234)
        csrr a0, mscratch
        CHECK(a0, 0x1f)
        TEST_CASE(9)
        csrrci a0, mscratch, 0x11
        CHECK(a0, 0x1f)
        csrr a0, mscratch
        CHECK(a0, 0x0e)
        TEST_CASE(10)
        csrrsi a0, mscratch, 0x10
        CHECK(a0, 0x0e)
        csrr a0, mscratch
        CHECK(a0, 0x1e)
        TEST_CASE(11)
        csrwi mscratch, 0
        csrsi mscratch, 3
        csrci mscratch, 1
        csrr a0, mscratch
        CHECK(a0, 2)
        TEST_CASE(12)                   /* rd = x0 forms still write */
        li a1, 0xabc
        csrrw x0, mscratch, a1
        csrrs x0, mscratch, 0x1
        csrr a0, mscratch
        CHECK(a0, 0xabd)
        csrrsi a0, mscratch, 0          /* zero uimm: read only */
        CHECK(a0, 0xabd)
        csrrci a0, mscratch, 0
        CHECK(a0, 0xabd)

/* ---- identification CSRs ---- */
        TEST_CASE(13)
        csrr a0, mhartid
        CHECK(a0, 0)
        TEST_CASE(14)
        csrr a0, misa
        srli a1, a0, 62
        CHECK(a1, 2)                    /* MXL = 2: 64-bit */
        li t0, (1 << 0) | (1 << 2) | (1 << 8) | (1 << 12)      /* A C I M */
        and a1, a0, t0
        CHECK_REG(a1, t0)
        TEST_CASE(15)                   /* readable, no trap */
        csrr a0, mvendorid
        csrr a0, marchid
        csrr a0, mimpid
        csrrs a0, mhartid, x0
        csrrsi a0, mhartid, 0
        csrrc a0, mhartid, x0
        csrrci a0, mhartid, 0
        CHECK(a0, 0)

/* ---- writes to read-only CSRs are illegal instructions ---- */
        TEST_TRAP(16, CAUSE_ILLEGAL_INSN, csrw mhartid, a0)
        CHECK(s10, 0xf1451073)          /* mtval = instruction bits */
        TEST_CASE(17)
        li a1, 1
        TEST_TRAP(17, CAUSE_ILLEGAL_INSN, csrrs a0, mvendorid, a1)
        CHECK(s10, 0xf115a573)
        TEST_TRAP(18, CAUSE_ILLEGAL_INSN, csrrwi a0, mimpid, 0)
        CHECK(s10, 0xf1305573)
        TEST_TRAP(19, CAUSE_ILLEGAL_INSN, csrrsi x0, marchid, 1)
        CHECK(s10, 0xf120e073)
        TEST_CASE(20)                   /* trapped CSR instruction has no effect on rd */
        li a0, 0x777
        TEST_TRAP(20, CAUSE_ILLEGAL_INSN, csrrw a0, mhartid, x0)
        CHECK(a0, 0x777)
        TEST_TRAP(21, CAUSE_ILLEGAL_INSN, csrw cycle, x0)               /* user counter: read-only */
        CHECK(s10, 0xc0001073)
        TEST_TRAP(22, CAUSE_ILLEGAL_INSN, csrr a0, 0x8c0)               /* unimplemented CSR */

/* ---- counters ---- */
        TEST_CASE(23)
        csrr a1, minstret
        addi a2, a2, 1
        addi a2, a2, 1
        addi a2, a2, 1
        csrr a0, minstret
        bleu a0, a1, fail_counter
        TEST_CASE(24)
        csrr a1, mcycle
        li a2, 100
1:      addi a2, a2, -1
        bnez a2, 1b
        csrr a0, mcycle
        bleu a0, a1, fail_counter
        TEST_CASE(25)                   /* unprivileged aliases, readable in M-mode */
        rdinstret a1
        li a2, 100
1:      addi a2, a2, -1
        bnez a2, 1b
        rdinstret a0
        bleu a0, a1, fail_counter
        rdcycle a1
        li a2, 100
1:      addi a2, a2, -1
        bnez a2, 1b
        rdcycle a0
        bleu a0, a1, fail_counter
        TEST_CASE(26)                   /* minstret is writable (and keeps counting) */
        li a1, 0x0000100000000000
        csrw minstret, a1
        csrr a0, minstret
        bltu a0, a1, fail_counter
        li t0, 0x100000
        add a1, a1, t0
        bgeu a0, a1, fail_counter

/* ---- WARL trap CSRs ---- */
        TEST_CASE(27)                   /* mepc holds 2-byte aligned addresses (IALIGN=16) */
        li a1, 0x80000002
        csrw mepc, a1
        csrr a0, mepc
        CHECK(a0, 0x80000002)
        li a1, 0x0000000080001234
        csrw mepc, a1
        csrr a0, mepc
        CHECK(a0, 0x0000000080001234)
        TEST_CASE(28)
        li a1, 0x8000000000000007
        csrw mcause, a1
        csrr a0, mcause
        CHECK(a0, 0x8000000000000007)
        li a1, 0xdead
        csrw mtval, a1
        csrr a0, mtval
        CHECK(a0, 0xdead)
        TEST_CASE(29)                   /* mtvec: direct and vectored mode */
        csrr s0, mtvec
        la a1, vec_test
        csrw mtvec, a1
        csrr a0, mtvec
        CHECK_REG(a0, a1)
        ori a1, a1, 1
        csrw mtvec, a1
        csrr a0, mtvec
        CHECK_REG(a0, a1)
        csrw mtvec, s0
        TEST_CASE(30)                   /* mie: the machine interrupt enables exist */
        li a1, MIP_MSIP | MIP_MTIP | MIP_MEIP
        csrw mie, a1
        csrr a0, mie
        and a0, a0, a1
        CHECK_REG(a0, a1)
        csrw mie, zero
        csrr a0, mie
        CHECK(a0, 0)
        TEST_CASE(31)                   /* mstatus.MIE / MPIE / MPP read back */
        csrsi mstatus, MSTATUS_MIE      /* mie == 0, so nothing can fire */
        csrr a0, mstatus
        andi a0, a0, MSTATUS_MIE
        CHECK(a0, MSTATUS_MIE)
        csrci mstatus, MSTATUS_MIE
        csrr a0, mstatus
        andi a0, a0, MSTATUS_MIE
        CHECK(a0, 0)
        li a1, MSTATUS_MPP | MSTATUS_MPIE
        csrs mstatus, a1
        csrr a0, mstatus
        and a0, a0, a1
        CHECK_REG(a0, a1)
        li a1, MSTATUS_MPIE
        csrc mstatus, a1
        csrr a0, mstatus
        and a0, a0, a1
        CHECK(a0, 0)

TEST_END

fail_counter:
        j fail

        .balign 64
vec_test:
        j unexpected_trap
