/* snapshot.c - firmware for breadboard's snapshot test (crates/breadboard/tests/snapshot.rs).
 * Two harts arm their CLINT timers and spin doing work (a running checksum in RAM). At every
 * timer interrupt a hart prints, under a spinlock, its tick number, minstret, mtime, work count
 * and checksum. After TICKS ticks on both harts, hart 0 prints "snapshot: done" and powers off.
 * It runs long enough (a few seconds) for the test to stop it mid-way, save a snapshot, and
 * check that a restored run prints exactly what an uninterrupted one does.
 * Build: see firmware/Makefile (riscv64-unknown-elf-gcc). */

#include "../common/virt_uart.h"

#define CLINT 0x2000000UL
#define MTIMECMP(h) (*(volatile unsigned long *)(CLINT + 0x4000 + 8 * (h)))
#define MTIME (*(volatile unsigned long *)(CLINT + 0xbff8))
#define FINISHER (*(volatile unsigned int *)0x100000UL)
#define NHARTS 2
#define TICKS 60
#define PERIOD 40000 /* mtime ticks (10 MHz): 4 ms, 4M instructions under -icount shift=0 */

static volatile int lock;
static volatile unsigned long ticks[NHARTS];
static volatile unsigned long work[NHARTS];
static volatile unsigned long sum[NHARTS];

static void take(void)
{
    while (__atomic_exchange_n(&lock, 1, __ATOMIC_ACQUIRE)) {
    }
}

static void give(void)
{
    __atomic_store_n(&lock, 0, __ATOMIC_RELEASE);
}

static unsigned long hartid(void)
{
    unsigned long h;
    __asm__ volatile("csrr %0, mhartid" : "=r"(h));
    return h;
}

__attribute__((interrupt("machine"))) void trap(void)
{
    unsigned long h = hartid(), ir, t = MTIME;
    __asm__ volatile("csrr %0, minstret" : "=r"(ir));
    take();
    puts_("hart ");
    putdec(h);
    puts_(" tick ");
    putdec(ticks[h]);
    puts_(" instret ");
    putdec(ir);
    puts_(" mtime ");
    putdec(t);
    puts_(" work ");
    putdec(work[h]);
    puts_(" sum ");
    putdec(sum[h]);
    puts_("\n");
    give();
    ticks[h]++;
    if (ticks[h] >= TICKS)
        MTIMECMP(h) = ~0UL;
    else
        MTIMECMP(h) = t + PERIOD + 37 * h;
}

void main(unsigned long h)
{
    unsigned long i;
    if (h >= NHARTS) {
        for (;;)
            __asm__ volatile("wfi");
    }
    __asm__ volatile("csrw mtvec, %0" ::"r"(trap));
    MTIMECMP(h) = MTIME + PERIOD + 211 * h;
    __asm__ volatile("csrw mie, %0" ::"r"(1UL << 7));
    __asm__ volatile("csrsi mstatus, 8");
    while (ticks[h] < TICKS) {
        work[h]++;
        sum[h] = sum[h] * 31 + work[h] + h;
        if ((work[h] & 1023) == 0) {
            take(); /* contend for the lock between ticks too */
            give();
        }
    }
    if (h != 0) {
        for (;;)
            __asm__ volatile("wfi");
    }
    for (i = 1; i < NHARTS; i++) {
        while (ticks[i] < TICKS) {
        }
    }
    take();
    puts_("snapshot: done\n");
    give();
    FINISHER = 0x5555;
    for (;;) {
    }
}
