/*
 * echo32.c - interrupt-driven UART echo for breadboard's OpenTitan-like
 * RV32IMC machine.  QEMU's `-M opentitan` differs (PLIC at 0x48000000) and
 * can only partly exercise it; see README.md.
 *
 * Memory map (see README.md):
 *   flash 0x20000000 (512 KiB, read-only, code + rodata, entry 0x20000000)
 *   RAM   0x10000000 (64 KiB: bss + stack; there is deliberately no .data)
 *   UART  0x40000000 (OpenTitan uart register layout)
 *   PLIC  0x41010000 (OpenTitan rv_plic), UART rx_watermark -> source 2
 *
 * Prints "echo32 ready", enables the UART rx_watermark interrupt (level 1
 * character), PLIC source 2 and MEIE, then sleeps in WFI.  Each external
 * interrupt is claimed and counted, the RX FIFO is drained with every byte
 * echoed to WDATA, and the interrupt is completed.  After echoing a '?' the
 * firmware also prints "irqs=N" (N = UART interrupts handled so far, this
 * one included) so a test can check the count over the serial line.
 */

typedef unsigned int u32;
typedef unsigned long long u64;

#define UART_BASE         0x40000000u
#define UART_INTR_STATE   (UART_BASE + 0x00)
#define UART_INTR_ENABLE  (UART_BASE + 0x04)
#define UART_INTR_TEST    (UART_BASE + 0x08)
#define UART_ALERT_TEST   (UART_BASE + 0x0c)
#define UART_CTRL         (UART_BASE + 0x10)
#define UART_STATUS       (UART_BASE + 0x14)
#define UART_RDATA        (UART_BASE + 0x18)
#define UART_WDATA        (UART_BASE + 0x1c)
#define UART_FIFO_CTRL    (UART_BASE + 0x20)
#define UART_FIFO_STATUS  (UART_BASE + 0x24)

#define CTRL_TX           (1u << 0)
#define CTRL_RX           (1u << 1)
#define CTRL_NCO_SHIFT    16
#define STATUS_TXFULL     (1u << 0)
#define STATUS_RXFULL     (1u << 1)
#define STATUS_TXEMPTY    (1u << 2)
#define STATUS_TXIDLE     (1u << 3)
#define STATUS_RXIDLE     (1u << 4)
#define STATUS_RXEMPTY    (1u << 5)
#define FIFO_CTRL_RXRST   (1u << 0)
#define FIFO_CTRL_TXRST   (1u << 1)
#define FIFO_CTRL_RXILVL_SHIFT 2        /* 0 = interrupt at >= 1 character */
#define INTR_RX_WATERMARK (1u << 1)

/* NCO = 2^20 * baud / f_clk (16x oversampling).  An emulator may ignore it;
 * these are the usual OpenTitan values (115200 baud, 24 MHz peripheral clock). */
#define UART_BAUD         115200u
#define UART_CLK_HZ       24000000u
#define UART_NCO          ((u32)(((u64)UART_BAUD << 20) / UART_CLK_HZ))

/* OpenTitan rv_plic register layout (SiFive-compatible offsets) */
#ifndef QEMU_OPENTITAN
#define PLIC_BASE         0x41010000u   /* breadboard's OpenTitan-like machine */
#else
#define PLIC_BASE         0x48000000u   /* QEMU 7.2 -M opentitan (test build only) */
#endif
#define PLIC_PRIO(n)      (PLIC_BASE + 4u * (n))
#define PLIC_IP0          (PLIC_BASE + 0x1000)
#define PLIC_IE0          (PLIC_BASE + 0x2000)          /* context 0 enables */
#define PLIC_THRESHOLD0   (PLIC_BASE + 0x200000)
#define PLIC_CC0          (PLIC_BASE + 0x200004)        /* claim / complete */
#define UART_RX_IRQ       2

#define MCAUSE_INTR       0x80000000u
#define IRQ_M_EXT         11
#define MIE_MEIE          (1u << 11)
#define MSTATUS_MIE       (1u << 3)

static inline u32 rd(u32 a) { return *(volatile u32 *)a; }
static inline void wr(u32 a, u32 v) { *(volatile u32 *)a = v; }

#define csr_read(csr) ({ u32 v_; __asm__ volatile ("csrr %0, " #csr : "=r"(v_)); v_; })
#define csr_set(csr, val) __asm__ volatile ("csrs " #csr ", %0" :: "rK"((u32)(val)))
#define csr_clear(csr, val) __asm__ volatile ("csrc " #csr ", %0" :: "rK"((u32)(val)))

/* statistics, readable with a debugger (in .bss: zeroed by start.S) */
volatile u32 irq_count;                 /* external interrupts handled */
volatile u32 rx_bytes;                  /* bytes echoed */
volatile u32 spurious_count;            /* claims that returned 0 */

static void uart_putc(char c)
{
        /* bounded wait for TX FIFO space */
        for (u32 i = 0; i < 1000000u; i++)
                if (!(rd(UART_STATUS) & STATUS_TXFULL))
                        break;
        wr(UART_WDATA, (u32)(unsigned char)c);
}

static void uart_puts(const char *s)
{
        while (*s) {
                if (*s == '\n')
                        uart_putc('\r');
                uart_putc(*s++);
        }
}

static void uart_putdec(u32 v)
{
        char buf[10];
        int n = 0;
        do {
                buf[n++] = (char)('0' + v % 10);
                v /= 10;
        } while (v && n < 10);
        while (n > 0)
                uart_putc(buf[--n]);
}

static void uart_puthex(u32 v)
{
        uart_puts("0x");
        for (int i = 7; i >= 0; i--)
                uart_putc("0123456789abcdef"[(v >> (4 * i)) & 0xf]);
}

static void uart_init(void)
{
        wr(UART_INTR_ENABLE, 0);
        wr(UART_FIFO_CTRL, FIFO_CTRL_RXRST | FIFO_CTRL_TXRST |
                           (0u << FIFO_CTRL_RXILVL_SHIFT));
        wr(UART_INTR_STATE, 0xffffffffu);               /* clear stale events */
        wr(UART_CTRL, (UART_NCO << CTRL_NCO_SHIFT) | CTRL_TX | CTRL_RX);
}

static void plic_init(void)
{
        wr(PLIC_THRESHOLD0, 0);
        wr(PLIC_PRIO(UART_RX_IRQ), 1);
        wr(PLIC_IE0, rd(PLIC_IE0) | (1u << UART_RX_IRQ));
}

static void handle_uart_rx(void)
{
        /* Acknowledge first, then drain: a byte that arrives after the FIFO
         * was seen empty raises the (event-type) rx_watermark again, so it
         * is not lost.  For status-type rx_watermark the W1C is a no-op and
         * the line drops once the FIFO is below the watermark. */
        wr(UART_INTR_STATE, INTR_RX_WATERMARK);
        u32 budget = 4096;              /* safety valve against a stuck RX FIFO */
        while (!(rd(UART_STATUS) & STATUS_RXEMPTY)) {
                if (budget-- == 0) {
                        /* leave the rest for the next interrupt, which
                         * INTR_TEST raises even for event-type sources */
                        wr(UART_INTR_TEST, INTR_RX_WATERMARK);
                        break;
                }
                u32 c = rd(UART_RDATA) & 0xff;
                uart_putc((char)c);
                rx_bytes++;
                if (c == '?') {
                        uart_puts("irqs=");
                        uart_putdec(irq_count);
                        uart_puts("\n");
                }
        }
}

void trap_handler(u32 mcause, u32 mepc, u32 mtval)
{
        if (mcause == (MCAUSE_INTR | IRQ_M_EXT)) {
                u32 id = rd(PLIC_CC0);                  /* claim */
                if (id == 0) {
                        spurious_count++;
                        return;
                }
                if (id == UART_RX_IRQ) {
                        irq_count++;            /* first: a '?' reports this one too */
                        handle_uart_rx();
                }
                wr(PLIC_CC0, id);                       /* complete */
                return;
        }
        /* anything else is fatal: report and stop */
        csr_clear(mie, 0xffffffffu);
        uart_puts("\necho32: unexpected trap mcause=");
        uart_puthex(mcause);
        uart_puts(" mepc=");
        uart_puthex(mepc);
        uart_puts(" mtval=");
        uart_puthex(mtval);
        uart_puts("\n");
        for (;;)
                __asm__ volatile ("wfi");
}

void echo32_main(void)
{
        uart_init();
        uart_puts("echo32 ready\n");
        plic_init();
        wr(UART_INTR_ENABLE, INTR_RX_WATERMARK);
        csr_set(mie, MIE_MEIE);
        csr_set(mstatus, MSTATUS_MIE);
        for (;;)
                __asm__ volatile ("wfi");       /* all work happens in the handler */
}
