/*
 * demo.c - breadboard's default demo firmware (rv64imac, M-mode, hart 0).
 *
 *  1. banner, hart id (a0) and device-tree address (a1)
 *  2. walk the device tree, one line per node (fdt.c)
 *  3. machine timer interrupt through the CLINT
 *  4. UART (THR empty) interrupt routed through the PLIC
 *  5. "demo: all checks passed" and exit 0 through the sifive_test finisher
 * Any failure prints the reason and exits with code 1.
 */
#include "demo.h"

/* ns16550a registers (reg-shift 0) */
#define UART_THR  0
#define UART_IER  1
#define UART_FCR  2
#define UART_LCR  3
#define UART_LSR  5
#define LSR_THRE  0x20
#define IER_ETBEI 0x02

/* PLIC, context 0 = hart 0 M-mode */
#define PLIC_PRIORITY(n)   (PLIC_BASE + 4 * (n))
#define PLIC_ENABLE(ctx)   (PLIC_BASE + 0x2000 + 0x80 * (ctx))
#define PLIC_THRESHOLD(ctx) (PLIC_BASE + 0x200000 + 0x1000 * (ctx))
#define PLIC_CLAIM(ctx)    (PLIC_BASE + 0x200004 + 0x1000 * (ctx))

#define TIMER_DELTA     10000           /* 1 ms at 10 MHz */
#define TIMEOUT_TICKS   50000000UL      /* 5 s of mtime */

static volatile int timer_fired;
static volatile int uart_fired;

/* ---------------------------------------------------------------- console */
void putc(char c)
{
        if (c == '\n')
                putc('\r');
        /* bounded wait, so a UART without a working LSR cannot hang us */
        for (int i = 0; i < 1000000; i++)
                if (mmio_read8(UART0_BASE + UART_LSR) & LSR_THRE)
                        break;
        mmio_write8(UART0_BASE + UART_THR, (u8)c);
}

void puts(const char *s)
{
        while (*s)
                putc(*s++);
}

void puthex_fixed(u64 v, int digits)
{
        puts("0x");
        for (int i = digits - 1; i >= 0; i--)
                putc("0123456789abcdef"[(v >> (4 * i)) & 0xf]);
}

void puthex(u64 v)
{
        int digits = 1;
        while (digits < 16 && (v >> (4 * digits)))
                digits++;
        puthex_fixed(v, digits);
}

void putdec(u64 v)
{
        char buf[21];
        int i = 0;
        do {
                buf[i++] = (char)('0' + v % 10);
                v /= 10;
        } while (v);
        while (i)
                putc(buf[--i]);
}

static void finisher_exit(u32 code)
{
        u32 v = code ? (0x3333 | (code << 16)) : 0x5555;
        mmio_write32(FINISHER_BASE, v);
        for (;;)
                __asm__ volatile ("wfi");
}

void fail(const char *reason)
{
        csr_clear(mstatus, MSTATUS_MIE);
        puts("demo: FAILED: ");
        puts(reason);
        putc('\n');
        finisher_exit(1);
        __builtin_unreachable();
}

static u64 mtime(void)
{
        return mmio_read64(CLINT_MTIME);
}

/* ---------------------------------------------------------------- traps */
void trap_handler(u64 mcause, u64 mepc, u64 mtval)
{
        if (mcause == (MCAUSE_INTR | IRQ_M_TIMER)) {
                puts("timer interrupt: mcause=");
                puthex_fixed(mcause, 16);
                putc('\n');
                mmio_write64(CLINT_MTIMECMP0, ~0UL);    /* no more timer irqs */
                timer_fired++;
                return;
        }
        if (mcause == (MCAUSE_INTR | IRQ_M_EXT)) {
                u32 id = mmio_read32(PLIC_CLAIM(0));
                if (id != UART0_IRQ) {
                        puts("plic claim returned source ");
                        putdec(id);
                        putc('\n');
                        fail("unexpected external interrupt source");
                }
                /* silence the source before printing (printing refills THR) */
                mmio_write8(UART0_BASE + UART_IER, 0);
                puts("uart interrupt via plic: source ");
                putdec(id);
                putc('\n');
                mmio_write32(PLIC_CLAIM(0), id);        /* complete */
                uart_fired++;
                return;
        }
        puts("unexpected trap: mcause=");
        puthex_fixed(mcause, 16);
        puts(" mepc=");
        puthex_fixed(mepc, 16);
        puts(" mtval=");
        puthex_fixed(mtval, 16);
        putc('\n');
        fail("unexpected trap");
}

/* ---------------------------------------------------------------- steps */
/*
 * Race-free wait: mstatus.MIE stays 0 while the caller tests its flag, WFI
 * returns once an interrupt enabled in mie is pending (MIE does not matter
 * for waking), and the interrupt is then taken in the short MIE=1 window.
 * (Testing the flag with MIE=1 and then executing WFI could sleep forever
 * if the interrupt arrived between the test and the WFI.)
 */
static void wait_for_interrupt(void)
{
        __asm__ volatile ("wfi\n\t"
                          "csrsi mstatus, 8\n\t"
                          "nop\n\t"
                          "csrci mstatus, 8" ::: "memory");
}

static void timer_step(void)
{
        timer_fired = 0;
        u64 start = mtime();
        mmio_write64(CLINT_MTIMECMP0, start + TIMER_DELTA);
        csr_set(mie, MIE_MTIE);
        while (!timer_fired) {
                wait_for_interrupt();
                if (!timer_fired && mtime() - start > TIMEOUT_TICKS)
                        fail("timer interrupt did not arrive");
        }
        csr_clear(mie, MIE_MTIE);
        if (mtime() < start + TIMER_DELTA)
                fail("timer interrupt arrived before mtimecmp was reached");
}

static void uart_step(void)
{
        uart_fired = 0;
        mmio_write32(PLIC_PRIORITY(UART0_IRQ), 1);
        mmio_write32(PLIC_ENABLE(0), mmio_read32(PLIC_ENABLE(0)) | (1u << UART0_IRQ));
        mmio_write32(PLIC_THRESHOLD(0), 0);
        csr_set(mie, MIE_MEIE);
        u64 start = mtime();
        /* THR is empty, so enabling the THR-empty interrupt raises it */
        mmio_write8(UART0_BASE + UART_IER, IER_ETBEI);
        while (!uart_fired) {
                wait_for_interrupt();
                if (!uart_fired && mtime() - start > TIMEOUT_TICKS)
                        fail("uart interrupt did not arrive");
        }
        csr_clear(mie, MIE_MEIE);
        mmio_write32(PLIC_ENABLE(0), mmio_read32(PLIC_ENABLE(0)) & ~(1u << UART0_IRQ));
}

void demo_main(u64 hartid, u64 dtb)
{
        mmio_write8(UART0_BASE + UART_IER, 0);
        mmio_write8(UART0_BASE + UART_LCR, 0x03);       /* 8N1 */
        mmio_write8(UART0_BASE + UART_FCR, 0x07);       /* FIFOs on, cleared */

        puts("breadboard demo firmware\n");
        puts("hart id: ");
        putdec(hartid);
        putc('\n');
        puts("device tree at: ");
        puthex_fixed(dtb, 16);
        putc('\n');

        const char *err = fdt_walk((const void *)dtb);
        if (err)
                fail(err);

        timer_step();
        uart_step();

        puts("demo: all checks passed\n");
        finisher_exit(0);
}
