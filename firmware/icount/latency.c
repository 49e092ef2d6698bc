/* latency.c - firmware for breadboard's timer-latency test (crates/breadboard/tests/
 * determinism.rs). Under -icount, virtual time is the instruction count, so a timer
 * interrupt has an exact due point: hart 0 arms its CLINT mtimecmp for deadlines from 1 to
 * 3000 ticks ahead (some shorter than the emulator's run slices, some longer), spins, and at
 * each interrupt prints how many mtime ticks after the deadline it arrived ("late"); never
 * before it ("EARLY"). Then the same with the hart's own Sstc comparator (stimecmp, taken
 * as a supervisor timer interrupt in M-mode). Then it prints the largest lateness and powers
 * off.
 * Build: see firmware/Makefile (riscv64-unknown-elf-gcc). */

#include "../common/virt_uart.h"

#define CLINT 0x2000000UL
#define MTIMECMP0 (*(volatile unsigned long *)(CLINT + 0x4000))
#define MTIME (*(volatile unsigned long *)(CLINT + 0xbff8))
#define FINISHER (*(volatile unsigned int *)0x100000UL)

static volatile unsigned long fired_at;
static volatile int fired;

#define CSR_STIMECMP 0x14d
#define CSR_MENVCFG 0x30a
#define MENVCFG_STCE (1UL << 63)

__attribute__((interrupt("machine"), aligned(4))) void trap(void)
{
    unsigned long cause;
    fired_at = MTIME;
    __asm__ volatile("csrr %0, mcause" : "=r"(cause));
    if ((cause & 0xff) == 5)
        __asm__ volatile("csrw %0, %1" ::"i"(CSR_STIMECMP), "r"(~0UL));
    else
        MTIMECMP0 = ~0UL;
    fired = 1;
}

static const unsigned long delays[] = {1, 2, 3, 7, 10, 37, 100, 333, 999, 1000, 1001, 3000};

void main(unsigned long h)
{
    unsigned long i, worst = 0, work = 0;
    if (h != 0) {
        for (;;)
            __asm__ volatile("wfi");
    }
    __asm__ volatile("csrw mtvec, %0" ::"r"(trap));
    __asm__ volatile("csrw mie, %0" ::"r"(1UL << 7));
    __asm__ volatile("csrsi mstatus, 8");
    for (i = 0; i < 2 * (sizeof delays / sizeof delays[0]); i++) {
        unsigned long n = sizeof delays / sizeof delays[0];
        unsigned long d = delays[i % n], deadline;
        if (i == n) {
            /* Phase 2: Sstc's stimecmp raises STIP, taken in M-mode (not delegated). */
            __asm__ volatile("csrw mie, %0" ::"r"(1UL << 5));
            __asm__ volatile("csrs %0, %1" ::"i"(CSR_MENVCFG), "r"(MENVCFG_STCE));
            __asm__ volatile("csrw %0, %1" ::"i"(CSR_STIMECMP), "r"(~0UL));
        }
        fired = 0;
        if (i < n) {
            deadline = MTIME + d;
            MTIMECMP0 = deadline;
        } else {
            __asm__ volatile("rdtime %0" : "=r"(deadline));
            deadline += d;
            __asm__ volatile("csrw %0, %1" ::"i"(CSR_STIMECMP), "r"(deadline));
        }
        while (!fired)
            work++;
        puts_(i < n ? "mtimecmp delay " : "stimecmp delay ");
        putdec(d);
        if (fired_at < deadline) {
            puts_(" EARLY ");
            putdec(deadline - fired_at);
        } else {
            puts_(" late ");
            putdec(fired_at - deadline);
            if (fired_at - deadline > worst)
                worst = fired_at - deadline;
        }
        puts_("\n");
    }
    puts_("latency: worst ");
    putdec(worst);
    puts_(" work ");
    putdec(work);
    puts_("\n");
    FINISHER = 0x5555;
    for (;;) {
    }
}
