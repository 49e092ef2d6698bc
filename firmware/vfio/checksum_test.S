/* Bare-metal RV64 guest for the example vfio-user checksum engine (bb-vfio-example --device
 * checksum) on `virt` (-bios none -kernel checksum_test.elf -device vfio-platform,socket=...).
 * Expects the engine to be the first platform-bus device: region 0 (registers, reached through
 * REGION_READ/WRITE messages) at 0x4000000, region 1 (scratch SRAM, an mmap'd fd) at 0x4001000,
 * IRQ 64 on the PLIC. Steps (the finisher exit code on failure = step << 16 | 0x3333):
 *  1 ID register through messages        2 SRAM write/read back through the mapping
 *  3 descriptor + "123456789" in RAM     4 doorbell with the IRQ enabled, wait for mip.MEIP
 *  5 claim: source 64                    6 STATUS.DONE, RESULT = CRC-32 0xcbf43926
 *  7 the result DMA-written to RAM       8 the engine's copy in SRAM (written by the server)
 *  9 clear STATUS, complete: the line drops (EOI hook unmasks; the server stays quiet)
 * 10 a second job (JOBS = 2), so the unmasked IRQ fires again
 * Exit 0 through the sifive_test finisher on success.
 * Rebuild: riscv64-unknown-elf-gcc -march=rv64imac_zicsr -mabi=lp64 -nostdlib -nostartfiles
 *   -static -mcmodel=medany -T link.ld -Wl,--build-id=none -o checksum_test.elf checksum_test.S
 */
    .equ REGS, 0x4000000
    .equ SRAM, 0x4001000
    .equ PLIC, 0x0c000000
    .equ FINISHER, 0x100000
    .equ DESC, 0x80100000
    .equ SRC, 0x80101000
    .equ DST, 0x80102000
    .equ IRQ, 64
    .equ CRC, 0xcbf43926

    .section .text
    .globl _start
_start:
    li s1, 1
    la t0, fail
    csrw mtvec, t0

    /* PLIC: priority 1 for source 64, enabled for context 0 (hart 0 M), threshold 0 */
    li t0, PLIC + 4 * IRQ
    li t1, 1
    sw t1, 0(t0)
    li t0, PLIC + 0x2000 + (IRQ / 32) * 4
    li t1, 1 << (IRQ % 32)
    sw t1, 0(t0)
    li t0, PLIC + 0x200000
    sw zero, 0(t0)

    /* 1. ID */
    li s0, REGS
    lw t1, 0x00(s0)
    li t2, 0x43424253
    bne t1, t2, fail

    /* 2. SRAM through the mapping */
    li s1, 2
    li t0, SRAM
    li t1, 0x11223344
    sw t1, 0x100(t0)
    lw t2, 0x100(t0)
    bne t1, t2, fail

    /* 3. data and descriptor */
    li s1, 3
    li t0, SRC
    la t1, digits
    li t2, 9
1:  lbu t3, 0(t1)
    sb t3, 0(t0)
    addi t0, t0, 1
    addi t1, t1, 1
    addi t2, t2, -1
    bnez t2, 1b
    li t0, DESC
    li t1, SRC
    sd t1, 0x00(t0)
    li t1, 9
    sw t1, 0x08(t0)
    sw zero, 0x0c(t0)
    li t1, DST
    sd t1, 0x10(t0)
    li t1, DST
    sw zero, 0(t1)

    /* 4. run with IRQ_EN, wait for the external interrupt */
    li s1, 4
    li t1, 1
    sw t1, 0x08(s0)
    li t1, DESC
    sw t1, 0x10(s0)
    sw zero, 0x14(s0)
    sw t1, 0x18(s0)
    call wait_meip

    /* 5. claim */
    li s1, 5
    li s2, PLIC + 0x200004
    lw t1, 0(s2)
    li t2, IRQ
    bne t1, t2, fail

    /* 6. STATUS and RESULT */
    li s1, 6
    lw t1, 0x0c(s0)
    li t2, 1
    bne t1, t2, fail
    lw t1, 0x1c(s0)
    li t2, CRC
    sext.w t2, t2
    bne t1, t2, fail

    /* 7. DMA write into RAM */
    li s1, 7
    li t0, DST
    lw t1, 0(t0)
    bne t1, t2, fail

    /* 8. the server's copy in the mapped SRAM */
    li s1, 8
    li t0, SRAM
    lw t1, 0(t0)
    bne t1, t2, fail

    /* 9. clear DONE, complete: MEIP must drop and stay down */
    li s1, 9
    li t1, 1
    sw t1, 0x0c(s0)
    li t1, IRQ
    sw t1, 0(s2)
    li t3, 20000
2:  csrr t1, mip
    srli t1, t1, 11
    andi t1, t1, 1
    bnez t1, fail
    addi t3, t3, -1
    bnez t3, 2b

    /* 10. second job: the unmasked IRQ fires again */
    li s1, 10
    li t0, DST
    sw zero, 0(t0)
    li t1, DESC
    sw t1, 0x18(s0)
    call wait_meip
    lw t1, 0(s2)
    li t2, IRQ
    bne t1, t2, fail
    lw t1, 0x24(s0)
    li t2, 2
    bne t1, t2, fail
    li t1, 1
    sw t1, 0x0c(s0)
    li t1, IRQ
    sw t1, 0(s2)

    li t0, FINISHER
    li t1, 0x5555
    sw t1, 0(t0)
    j .

/* Waits for mip.MEIP (bit 11); the answer comes from another process, so allow plenty. */
wait_meip:
    li t3, 400000000
1:  csrr t1, mip
    srli t1, t1, 11
    andi t1, t1, 1
    bnez t1, 2f
    addi t3, t3, -1
    bnez t3, 1b
    j fail
2:  ret

    .align 2
fail:
    slli t1, s1, 16
    li t2, 0x3333
    or t1, t1, t2
    li t0, FINISHER
    sw t1, 0(t0)
    j .

digits:
    .ascii "123456789"
