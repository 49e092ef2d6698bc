/* MMIO and IRQ latency benchmark guest (bench/bench.py --only vfio), bare-metal RV64 on `virt`
 * with -bios none. Times loops with the `time` CSR (10 MHz on virt) and prints one line per
 * measurement on the UART: "<name> <ticks hex> <count hex>".
 *   uart   N byte reads of the built-in ns16550a's LSR (also run on QEMU, for the ratio)
 *   mmap   N word reads of the vfio checksum engine's SRAM (region 1, an mmap'd fd)
 *   msg    M word reads of its ID register (region 0, a REGION_READ message each)
 *   irq    K jobs: doorbell write, wait for mip.MEIP, claim, clear STATUS, complete
 * The vfio rows are skipped (a trap, or no ID magic, on the first access) when no engine is
 * mapped at 0x4000000, which is how QEMU runs it. Ends through the sifive_test finisher (exit 0).
 * Rebuild: riscv64-unknown-elf-gcc -march=rv64imac_zicsr -mabi=lp64 -nostdlib -nostartfiles
 *   -static -mcmodel=medany -T link.ld -Wl,--build-id=none -o mmio_bench.elf mmio_bench.S
 */
    .equ UART, 0x10000000
    .equ REGS, 0x4000000
    .equ SRAM, 0x4001000
    .equ PLIC, 0x0c000000
    .equ FINISHER, 0x100000
    .equ DESC, 0x80100000
    .equ SRC, 0x80101000
    .equ DST, 0x80102000
    .equ IRQ, 64
    .equ N, 200000
    .equ M, 20000
    .equ K, 2000

    .section .text
    .globl _start
_start:
    la t0, trap
    csrw mtvec, t0
    li sp, 0x80080000

    /* uart: LSR reads */
    li t0, UART
    li t2, N
    rdtime s2
1:  lbu t1, 5(t0)
    addi t2, t2, -1
    bnez t2, 1b
    rdtime s3
    la a0, name_uart
    li a2, N
    call report

    /* Probe the engine: a trap or a wrong ID register ends the run here. */
    li s0, REGS
    lw t1, 0(s0)
    li t2, 0x43424253
    bne t1, t2, done

    /* mmap: SRAM reads */
    li t0, SRAM
    li t2, N
    rdtime s2
1:  lw t1, 0(t0)
    addi t2, t2, -1
    bnez t2, 1b
    rdtime s3
    la a0, name_mmap
    li a2, N
    call report

    /* msg: ID register reads */
    li t2, M
    rdtime s2
1:  lw t1, 0(s0)
    addi t2, t2, -1
    bnez t2, 1b
    rdtime s3
    la a0, name_msg
    li a2, M
    call report

    /* irq: K jobs of 4 bytes, polled on mip.MEIP */
    li t0, PLIC + 4 * IRQ
    li t1, 1
    sw t1, 0(t0)
    li t0, PLIC + 0x2000 + (IRQ / 32) * 4
    li t1, 1 << (IRQ % 32)
    sw t1, 0(t0)
    li t0, DESC
    li t1, SRC
    sd t1, 0(t0)
    li t1, 4
    sw t1, 8(t0)
    sw zero, 12(t0)
    li t1, DST
    sd t1, 16(t0)
    li t1, 1
    sw t1, 0x08(s0)
    li t1, DESC
    sw t1, 0x10(s0)
    sw zero, 0x14(s0)
    li s4, PLIC + 0x200004
    li t2, K
    rdtime s2
1:  sw t1, 0x18(s0)
2:  csrr t3, mip
    srli t3, t3, 11
    andi t3, t3, 1
    beqz t3, 2b
    lw t3, 0(s4)
    li t4, 1
    sw t4, 0x0c(s0)
    sw t3, 0(s4)
    addi t2, t2, -1
    bnez t2, 1b
    rdtime s3
    la a0, name_irq
    li a2, K
    call report

done:
    li t0, FINISHER
    li t1, 0x5555
    sw t1, 0(t0)
    j .

/* Any trap: no engine (or it broke); finish cleanly after what was measured. */
    .align 2
trap:
    la t0, done
    csrw mepc, t0
    mret

/* report: a0 = name (NUL-terminated), s3 - s2 = ticks, a2 = count. */
report:
    mv s5, ra
    mv s6, a2
    call puts
    sub a0, s3, s2
    call puthex
    mv a0, s6
    call puthex
    li a0, '\n'
    call putc
    mv ra, s5
    ret

puts:
    mv s7, ra
    mv s8, a0
1:  lbu a0, 0(s8)
    beqz a0, 2f
    call putc
    addi s8, s8, 1
    j 1b
2:  mv ra, s7
    ret

/* puthex: " " then a0 as 16 hex digits. */
puthex:
    mv s7, ra
    mv s8, a0
    li a0, ' '
    call putc
    li s9, 60
1:  srl a0, s8, s9
    andi a0, a0, 15
    li t5, 10
    blt a0, t5, 2f
    addi a0, a0, 'a' - 10 - '0'
2:  addi a0, a0, '0'
    call putc
    addi s9, s9, -4
    bgez s9, 1b
    mv ra, s7
    ret

putc:
    li t5, UART
1:  lbu t6, 5(t5)
    andi t6, t6, 0x20
    beqz t6, 1b
    sb a0, 0(t5)
    ret

name_uart: .asciz "uart"
name_mmap: .asciz "mmap"
name_msg:  .asciz "msg"
name_irq:  .asciz "irq"
