/* virt_uart.h - console output for the bare-metal test firmware on breadboard's (and QEMU's)
 * `virt`: the ns16550a at 0x10000000, polled (wait for THR empty, then write). Included by
 * icount/icount.c, icount/latency.c and snapshot/snapshot.c. */
#ifndef VIRT_UART_H
#define VIRT_UART_H

#define UART0 ((volatile unsigned char *)0x10000000UL)

static void putc_(char c)
{
    while ((UART0[5] & 0x20) == 0) {
    }
    UART0[0] = (unsigned char)c;
}

static void puts_(const char *s)
{
    while (*s)
        putc_(*s++);
}

static void putdec(unsigned long v)
{
    char buf[24];
    int i = 0;
    do {
        buf[i++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (i)
        putc_(buf[--i]);
}

#endif
