/* gdbtest.c - firmware for breadboard's gdb acceptance test (crates/breadboard/tests/gdb.rs).
 *
 * Two harts: hart 0 prints a banner and calls bump() in a loop, which adds to `counter`;
 * hart 1 counts in `hart1_ticks`. The test breaks at bump, reads and writes registers and
 * memory, steps, watches `counter` and lists both harts as threads.
 * Build: make -C firmware gdbtest/gdbtest.elf (riscv64-unknown-elf-gcc, -g, not stripped). */

#define UART0 ((volatile unsigned char *)0x10000000UL)

volatile unsigned long counter;
volatile unsigned long hart1_ticks;
char message[16] = "hello gdb";

static void uart_puts(const char *s)
{
    while (*s) {
        while ((UART0[5] & 0x20) == 0) {
        }
        UART0[0] = (unsigned char)*s++;
    }
}

__attribute__((noinline)) unsigned long bump(unsigned long by)
{
    counter += by;
    return counter;
}

void main0(void)
{
    unsigned long i;
    uart_puts("gdbtest: ");
    uart_puts(message);
    uart_puts("\n");
    for (i = 0;; i++) {
        bump((i & 3) ? 1 : 2);
    }
}

void main1(void)
{
    for (;;) {
        hart1_ticks++;
    }
}
