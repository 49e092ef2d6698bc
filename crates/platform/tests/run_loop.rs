//! The main loop (`Machine::run`) end to end with tiny raw programs on `virt`.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::rc::Rc;
use std::sync::mpsc;

use breadboard_core::{ChardevRegistry, DriveRegistry, TypeRegistry};
use breadboard_platform::{BootOptions, Event, Exit, Firmware, Image, Machine, MachineOptions};

/// Builds `virt` with `smp` harts, `-icount shift=0` (deterministic: 1 ns per instruction) and
/// `-bios none`, with `words` as the raw kernel at 0x8000_0000 (every hart starts there).
fn virt_icount_running(smp: u32, words: &[u32]) -> Machine {
    let mut r = TypeRegistry::new();
    breadboard_devices::register_builtin(&mut r);
    let opts = MachineOptions {
        machine: "virt".into(),
        smp: Some(smp),
        icount_shift: Some(0),
        ..Default::default()
    };
    let mut m = Machine::create(
        &opts,
        r,
        Rc::new(ChardevRegistry::default()),
        Rc::new(DriveRegistry::default()),
    )
    .expect("virt builds");
    let data = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    m.finish(&BootOptions {
        firmware: Firmware::None,
        kernel: Some(Image {
            name: "program.bin".into(),
            data,
        }),
        ..Default::default()
    })
    .expect("finish");
    m
}

#[test]
fn test_timer_expiring_in_the_slice_that_ends_in_wfi_wakes_the_hart() {
    // Linux stalled after `poweroff` (and reported "every hart is waiting and nothing can wake
    // it" once stdin closed): its timer expired while the hart was still running, the hart then
    // reached `wfi`, and the idle path fired the CLINT's timer (raising MTIP) but went to sleep
    // without letting the hart see it, waiting for a deadline that no longer existed.
    //
    // mtimecmp = mtime + 10 (1 us); mie = MTIE; spin until mtime >= mtimecmp (the CLINT's timer
    // is due but has not fired: that happens between slices); wfi (mstatus.MIE = 0, so no trap);
    // then the finisher gets 0x5555 if mip.MTIP is set, else 0x13333. Passes on QEMU 7.2
    // (`-M virt -bios none -icount shift=0`).
    let program = [
        0x0200_c2b7, // lui   t0, 0x200c
        0xff82_829b, // addiw t0, t0, -8        (mtime)
        0x0200_43b7, // lui   t2, 0x2004        (mtimecmp[0])
        0x0002_b303, // ld    t1, 0(t0)
        0x00a3_0313, // addi  t1, t1, 10
        0x0063_b023, // sd    t1, 0(t2)
        0x0800_0e13, // li    t3, 0x80
        0x304e_1073, // csrw  mie, t3
        0x0002_be83, // 1: ld t4, 0(t0)
        0xfe6e_eee3, // bltu  t4, t1, 1b
        0x1050_0073, // wfi
        0x3440_2573, // csrr  a0, mip
        0x0805_7513, // andi  a0, a0, 0x80
        0x0010_0f37, // lui   t5, 0x100         (finisher)
        0x0000_5fb7, // lui   t6, 0x5
        0x555f_8f9b, // addiw t6, t6, 0x555     (pass)
        0x0005_1663, // bnez  a0, 2f
        0x0001_3fb7, // lui   t6, 0x13
        0x333f_8f9b, // addiw t6, t6, 0x333     (fail 1)
        0x01ff_2023, // 2: sw t6, 0(t5)
        0x0000_006f, // j .
    ];
    assert_eq!(
        run_without_io(&mut virt_icount_running(1, &program)),
        Exit::Shutdown(0)
    );
}

#[test]
fn test_interrupt_raised_by_a_later_hart_in_the_slice_wakes_a_waiting_hart() {
    // Hart 0 runs first in every slice and stops in wfi waiting for a software interrupt;
    // hart 1 then sets msip[0] through the CLINT and stops in wfi itself. Every hart is in wfi
    // at the end of the slice, but hart 0 can resume: the loop must not go to sleep (here:
    // report a deadlock). Hart 0 writes 0x5555 to the finisher if mip.MSIP is set, else
    // 0x13333. Passes on QEMU 7.2 (`-M virt -smp 2 -bios none`, with and without icount).
    let program = [
        0xf140_2573, // csrr  a0, mhartid
        0x0200_02b7, // lui   t0, 0x2000        (msip[0])
        0x0205_1c63, // bnez  a0, hart1
        0x0080_0313, // li    t1, 8
        0x3043_1073, // csrw  mie, t1           (MSIE; mstatus.MIE = 0)
        0x1050_0073, // wfi
        0x3440_25f3, // csrr  a1, mip
        0x0085_f593, // andi  a1, a1, 8
        0x0010_0f37, // lui   t5, 0x100         (finisher)
        0x0000_5fb7, // lui   t6, 0x5
        0x555f_8f9b, // addiw t6, t6, 0x555     (pass)
        0x0005_9663, // bnez  a1, 2f
        0x0001_3fb7, // lui   t6, 0x13
        0x333f_8f9b, // addiw t6, t6, 0x333     (fail 1)
        0x01ff_2023, // 2: sw t6, 0(t5)
        0x0000_006f, // j .
        0x0010_0313, // hart1: li t1, 1
        0x0062_a023, // sw    t1, 0(t0)
        0x1050_0073, // 4: wfi                  (mie = 0: waits for ever)
        0xffdf_f06f, // j     4b
    ];
    assert_eq!(
        run_without_io(&mut virt_icount_running(2, &program)),
        Exit::Shutdown(0)
    );
}

/// Runs the machine with no I/O thread: once the harts wait with nothing armed, the loop
/// reports a deadlock instead of hanging the test.
fn run_without_io(m: &mut Machine) -> Exit {
    let (tx, rx) = mpsc::channel::<Event>();
    drop(tx);
    m.run(&rx, true)
}
