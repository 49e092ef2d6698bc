/* Bare-metal RV64 guest for the bb-dma plugin on `virt` (-bios none -kernel dma_test.elf).
 * Expects the engine to be the first platform-bus device (registers at 0x4000000, IRQ 64 on
 * the PLIC). Fills 256 bytes at SRC, starts a copy to DST with the IRQ enabled, waits for
 * the hart's external interrupt (mip.MEIP), claims source 64 from the PLIC, checks STATUS
 * and the copied bytes, and reports through the sifive_test finisher: exit 0 on success,
 * else exit code = the failed step.
 * Rebuild: riscv64-unknown-elf-gcc -march=rv64imac_zicsr -mabi=lp64 -nostdlib -nostartfiles
 *   -static -mcmodel=medany -T link.ld -Wl,--build-id=none -o dma_test.elf dma_test.S
 */
    .equ DMA, 0x4000000
    .equ PLIC, 0x0c000000
    .equ FINISHER, 0x100000
    .equ SRC, 0x80100000
    .equ DST, 0x80200000
    .equ LEN, 256
    .equ IRQ, 64

    .section .text
    .globl _start
_start:
    /* Any trap (e.g. no device at DMA: an access fault) is a failure of step 1. */
    li s1, 1
    la t0, fail
    csrw mtvec, t0

    /* 1. pattern at SRC: byte i = 3*i + 1; zero DST */
    li t0, SRC
    li t3, DST
    li t1, 0
    li t2, LEN
1:  slli t4, t1, 1
    add t4, t4, t1
    addi t4, t4, 1
    add t5, t0, t1
    sb t4, 0(t5)
    add t5, t3, t1
    sb zero, 0(t5)
    addi t1, t1, 1
    blt t1, t2, 1b

    /* 2. PLIC: priority 1 for source 64, enable it for context 0 (hart 0 M-mode), threshold 0 */
    li t0, PLIC + 4 * IRQ
    li t1, 1
    sw t1, 0(t0)
    li t0, PLIC + 0x2000 + (IRQ / 32) * 4
    li t1, 1 << (IRQ % 32)
    sw t1, 0(t0)
    li t0, PLIC + 0x200000
    sw zero, 0(t0)

    /* 3. the engine's ID register */
    li s1, 3
    li t0, DMA
    lw t1, 0x1c(t0)
    li t2, 0x444d4131
    bne t1, t2, fail

    /* 4. program and start: IRQ enable + START */
    li t1, SRC
    sw t1, 0x00(t0)
    sw zero, 0x04(t0)
    li t1, DST
    sw t1, 0x08(t0)
    sw zero, 0x0c(t0)
    li t1, LEN
    sw t1, 0x10(t0)
    li t1, 3
    sw t1, 0x14(t0)

    /* 5. wait for mip.MEIP (bit 11), bounded */
    li s1, 5
    li t3, 1000000
2:  csrr t1, mip
    srli t1, t1, 11
    andi t1, t1, 1
    bnez t1, 3f
    addi t3, t3, -1
    bnez t3, 2b
    j fail

    /* 6. claim: must be source 64 */
3:  li s1, 6
    li t4, PLIC + 0x200004
    lw t1, 0(t4)
    li t2, IRQ
    bne t1, t2, fail

    /* 7. STATUS == DONE; clear it; complete the claim */
    li s1, 7
    li t0, DMA
    lw t1, 0x18(t0)
    li t2, 2
    bne t1, t2, fail
    sw t2, 0x18(t0)
    li t2, IRQ
    sw t2, 0(t4)

    /* 8. compare */
    li s1, 8
    li t0, SRC
    li t3, DST
    li t1, 0
    li t2, LEN
4:  add t5, t0, t1
    lbu t4, 0(t5)
    add t5, t3, t1
    lbu t6, 0(t5)
    bne t4, t6, fail
    addi t1, t1, 1
    blt t1, t2, 4b

    /* 9. stats region: bytes copied */
    li s1, 9
    li t0, DMA + 0x1000
    lw t1, 0(t0)
    li t2, LEN
    bne t1, t2, fail

    li t0, FINISHER
    li t1, 0x5555
    sw t1, 0(t0)
    j .

fail:
    slli t1, s1, 16
    li t2, 0x3333
    or t1, t1, t2
    li t0, FINISHER
    sw t1, 0(t0)
    j .
