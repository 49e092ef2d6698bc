/* demo.h - shared declarations for the breadboard demo firmware. */
#ifndef DEMO_H
#define DEMO_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long u64;      /* lp64 */
typedef unsigned long uptr;

/* QEMU virt / breadboard memory map */
#define UART0_BASE      0x10000000UL
#define UART0_IRQ       10
#define CLINT_BASE      0x02000000UL
#define CLINT_MTIMECMP0 (CLINT_BASE + 0x4000)
#define CLINT_MTIME     (CLINT_BASE + 0xbff8)
#define PLIC_BASE       0x0c000000UL
#define FINISHER_BASE   0x00100000UL

#define MCAUSE_INTR     (1UL << 63)
#define IRQ_M_TIMER     7
#define IRQ_M_EXT       11
#define MIE_MTIE        (1UL << 7)
#define MIE_MEIE        (1UL << 11)
#define MSTATUS_MIE     (1UL << 3)

#define csr_read(csr) ({ u64 v_; __asm__ volatile ("csrr %0, " #csr : "=r"(v_)); v_; })
#define csr_write(csr, val) __asm__ volatile ("csrw " #csr ", %0" :: "rK"((u64)(val)))
#define csr_set(csr, val) __asm__ volatile ("csrs " #csr ", %0" :: "rK"((u64)(val)))
#define csr_clear(csr, val) __asm__ volatile ("csrc " #csr ", %0" :: "rK"((u64)(val)))

static inline u8 mmio_read8(uptr a) { return *(volatile u8 *)a; }
static inline void mmio_write8(uptr a, u8 v) { *(volatile u8 *)a = v; }
static inline u32 mmio_read32(uptr a) { return *(volatile u32 *)a; }
static inline void mmio_write32(uptr a, u32 v) { *(volatile u32 *)a = v; }
static inline u64 mmio_read64(uptr a) { return *(volatile u64 *)a; }
static inline void mmio_write64(uptr a, u64 v) { *(volatile u64 *)a = v; }

/* console (demo.c) */
void putc(char c);
void puts(const char *s);
void puthex(u64 v);             /* 0x + minimal digits */
void puthex_fixed(u64 v, int digits);
void putdec(u64 v);
void fail(const char *reason) __attribute__((noreturn));

/* fdt.c: walks the blob, prints one line per node; returns NULL on
 * success or a static string describing the problem. */
const char *fdt_walk(const void *blob);

#endif
