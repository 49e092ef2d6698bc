/*
 * test.h - shared macros for the breadboard ISA test programs.
 *
 * Conventions (every test program follows them):
 *   gp  (x3)        TESTNUM: number of the case being run.  On a failed
 *                   check the program writes 0x3333 | (TESTNUM << 16) to the
 *                   sifive_test finisher, so the exit code names the case.
 *   t6  (x31)       scratch register of the CHECK macros (never test it).
 *   s8..s11         reserved for the trap-catching helpers (TEST_TRAP).
 *   sp              stack set up by crt.S (only the print helpers use it).
 * A test body starts with TEST_BEGIN and ends with TEST_END (= pass).
 * mtvec normally points at `unexpected_trap` (crt.S): any trap that a test
 * does not expect prints a message and exits with code 255
 * (UNEXPECTED_TRAP_CODE).
 */
#ifndef BREADBOARD_TEST_H
#define BREADBOARD_TEST_H

#define FINISHER_BASE   0x100000
#define FINISHER_PASS   0x5555
#define FINISHER_FAIL   0x3333
#define UART_BASE       0x10000000
#define CLINT_BASE      0x2000000
#define CLINT_MSIP      (CLINT_BASE + 0x0)
#define CLINT_MTIMECMP  (CLINT_BASE + 0x4000)
#define CLINT_MTIME     (CLINT_BASE + 0xbff8)

#define UNEXPECTED_TRAP_CODE 255
#define NO_CASE_CODE         254   /* failure reported while TESTNUM == 0 */

#define TESTNUM gp

#if __riscv_xlen == 64
# define LREG ld
# define SREG sd
# define REGBYTES 8
# define MCAUSE_INTR 0x8000000000000000
#else
# define LREG lw
# define SREG sw
# define REGBYTES 4
# define MCAUSE_INTR 0x80000000
#endif

/* mcause values */
#define CAUSE_MISALIGNED_FETCH  0
#define CAUSE_FETCH_ACCESS      1
#define CAUSE_ILLEGAL_INSN      2
#define CAUSE_BREAKPOINT        3
#define CAUSE_MISALIGNED_LOAD   4
#define CAUSE_LOAD_ACCESS       5
#define CAUSE_MISALIGNED_STORE  6
#define CAUSE_STORE_ACCESS      7
#define CAUSE_ECALL_U           8
#define CAUSE_ECALL_M           11
#define IRQ_M_SOFT              3
#define IRQ_M_TIMER             7
#define IRQ_M_EXT               11

/* mstatus / mie bits */
#define MSTATUS_MIE     0x8
#define MSTATUS_MPIE    0x80
#define MSTATUS_MPP     0x1800
#define MIP_MSIP        0x8
#define MIP_MTIP        0x80
#define MIP_MEIP        0x800

/* ------------------------------------------------------------------ */
#define TEST_BEGIN              \
        .text;                  \
        .balign 4;              \
        .globl test_main;       \
test_main:

#define TEST_END                \
        j pass

#define TEST_CASE(n)  li TESTNUM, n

/* reg must equal the constant `val` (loaded with li into t6). */
#define CHECK(reg, val)         \
        li t6, val;             \
        beq reg, t6, 9990f;     \
        j fail;                 \
9990:

/* two registers must be equal */
#define CHECK_REG(ra_, rb_)     \
        beq ra_, rb_, 9990f;    \
        j fail;                 \
9990:

/* Register-register op; also checks that the sources are unchanged. */
#define TEST_RR(n, op, res, v1, v2) \
        TEST_CASE(n);           \
        li a1, v1;              \
        li a2, v2;              \
        op a0, a1, a2;          \
        CHECK(a0, res);         \
        CHECK(a1, v1);          \
        CHECK(a2, v2)

#define TEST_RR_SRC1_EQ_DEST(n, op, res, v1, v2) \
        TEST_CASE(n);           \
        li a0, v1;              \
        li a2, v2;              \
        op a0, a0, a2;          \
        CHECK(a0, res)

#define TEST_RR_SRC2_EQ_DEST(n, op, res, v1, v2) \
        TEST_CASE(n);           \
        li a1, v1;              \
        li a0, v2;              \
        op a0, a1, a0;          \
        CHECK(a0, res)

#define TEST_RR_SRC12_EQ_DEST(n, op, res, v1) \
        TEST_CASE(n);           \
        li a0, v1;              \
        op a0, a0, a0;          \
        CHECK(a0, res)

/* rs1 = x0 */
#define TEST_RR_ZERO_SRC1(n, op, res, v2) \
        TEST_CASE(n);           \
        li a2, v2;              \
        op a0, x0, a2;          \
        CHECK(a0, res)

/* rs2 = x0 */
#define TEST_RR_ZERO_SRC2(n, op, res, v1) \
        TEST_CASE(n);           \
        li a1, v1;              \
        op a0, a1, x0;          \
        CHECK(a0, res)

/* rd = x0: the write must be discarded */
#define TEST_RR_ZERO_DEST(n, op, v1, v2) \
        TEST_CASE(n);           \
        li a1, v1;              \
        li a2, v2;              \
        op x0, a1, a2;          \
        CHECK(x0, 0);           \
        add a0, x0, x0;         \
        CHECK(a0, 0)

/* Register-immediate op */
#define TEST_RI(n, op, res, v1, imm) \
        TEST_CASE(n);           \
        li a1, v1;              \
        op a0, a1, imm;         \
        CHECK(a0, res);         \
        CHECK(a1, v1)

#define TEST_RI_SRC_EQ_DEST(n, op, res, v1, imm) \
        TEST_CASE(n);           \
        li a0, v1;              \
        op a0, a0, imm;         \
        CHECK(a0, res)

#define TEST_RI_ZERO_DEST(n, op, v1, imm) \
        TEST_CASE(n);           \
        li a1, v1;              \
        op x0, a1, imm;         \
        CHECK(x0, 0)

/* Branches */
#define TEST_BR_TAKEN(n, op, v1, v2) \
        TEST_CASE(n);           \
        li a1, v1;              \
        li a2, v2;              \
        op a1, a2, 9991f;       \
        j fail;                 \
9991:

#define TEST_BR_NOT_TAKEN(n, op, v1, v2) \
        TEST_CASE(n);           \
        li a1, v1;              \
        li a2, v2;              \
        op a1, a2, 9992f;       \
        j 9993f;                \
9992:   j fail;                 \
9993:

/*
 * Expect the single instruction given as the variadic argument to trap with mcause == cause.
 * The shared handler `trap_catch` (crt.S) stores mcause/mepc/mtval in
 * s8/s9/s10 and resumes at the address held in s11.  After the macro,
 * mtvec is back at unexpected_trap and s10 holds mtval for extra checks.
 */
#define TEST_TRAP(n, cause, ...) \
        TEST_CASE(n);           \
        la s11, 9995f;          \
        la t0, trap_catch;      \
        csrw mtvec, t0;         \
        li s8, -1;              \
        li s9, 0;               \
        li s10, 0;              \
9994:   __VA_ARGS__;            \
        j fail;                 \
9995:   la t0, unexpected_trap; \
        csrw mtvec, t0;         \
        CHECK(s8, cause);       \
        la t5, 9994b;           \
        CHECK_REG(s9, t5)

/*
 * Wait (busy) until register `flag` becomes non-zero, e.g. a counter set by
 * an interrupt handler; fail if `ticks` of CLINT mtime (10 MHz) pass first.
 * Clobbers t0-t3.  Handlers used with it must not touch t0-t3.
 */
#define WAIT_NONZERO(flag, ticks)       \
        li t0, CLINT_MTIME;             \
        LREG t1, 0(t0);                 \
        li t3, ticks;                   \
9982:   bnez flag, 9983f;               \
        LREG t2, 0(t0);                 \
        sub t2, t2, t1;                 \
        bltu t2, t3, 9982b;             \
        j fail;                         \
9983:

/* Wait until (mip & bit) != 0, with the same mtime-based timeout. */
#define WAIT_MIP(bit, ticks)            \
        li t0, CLINT_MTIME;             \
        LREG t1, 0(t0);                 \
        li t3, ticks;                   \
9984:   csrr t2, mip;                   \
        andi t2, t2, bit;               \
        bnez t2, 9985f;                 \
        LREG t2, 0(t0);                 \
        sub t2, t2, t1;                 \
        bltu t2, t3, 9984b;             \
        j fail;                         \
9985:

/* half a second of mtime: generous, so a loaded host cannot cause failures */
#define WAIT_TICKS 5000000

#define SET_MTVEC(label)        \
        la t0, label;           \
        csrw mtvec, t0

#define RESTORE_MTVEC           \
        la t0, unexpected_trap; \
        csrw mtvec, t0

#endif
