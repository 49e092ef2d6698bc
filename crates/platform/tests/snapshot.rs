//! Machine snapshots in process: a save restored into a second machine built the same way
//! reproduces the state byte for byte (devices including a virtio backend, harts, time,
//! timers, RAM); other machines and damaged data are refused without panics.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::rc::Rc;

use breadboard_core::{ChardevRegistry, DriveRegistry, SnapshotError, TypeRegistry};
use breadboard_platform::{BootOptions, DeviceOption, Firmware, Image, Machine, MachineOptions};

fn build(smp: u32, rng: bool) -> Machine {
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
    if rng {
        m.add_user_device(&DeviceOption {
            driver: "virtio-rng-device".into(),
            id: Some("rng0".into()),
            props: vec![],
        })
        .expect("rng");
    }
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../firmware/icount/icount.elf"
    );
    let kernel = Image {
        name: path.into(),
        data: std::fs::read(path).expect("icount.elf"),
    };
    m.finish(&BootOptions {
        firmware: Firmware::None,
        kernel: Some(kernel),
        ..Default::default()
    })
    .expect("finish");
    m
}

#[test]
fn test_restore_reproduces_the_state_and_refuses_other_machines() {
    let mut a = build(2, true);
    for _ in 0..5 {
        let _ = a.run_slice(10_000);
        a.fire_timers();
    }
    let snap = a.snapshot_bytes().expect("save");
    assert_eq!(&snap[..6], b"BBSNAP");

    let mut b = build(2, true);
    b.snapshot_restore(&snap).expect("restore");
    assert_eq!(
        b.snapshot_bytes().expect("save again"),
        snap,
        "restored state differs"
    );
    // Both continue identically.
    for _ in 0..5 {
        let _ = a.run_slice(10_000);
        a.fire_timers();
        let _ = b.run_slice(10_000);
        b.fire_timers();
    }
    assert_eq!(
        a.snapshot_bytes().unwrap(),
        b.snapshot_bytes().unwrap(),
        "runs diverged after restore"
    );

    let mut c = build(1, true);
    match c.snapshot_restore(&snap) {
        Err(SnapshotError::Mismatch(m)) => {
            assert!(m.contains("harts 2") && m.contains("harts 1"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    let mut d = build(2, false);
    match d.snapshot_restore(&snap) {
        Err(SnapshotError::Mismatch(m)) => {
            assert!(m.contains("rng0") || m.contains("virtio"), "{m}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn test_damaged_snapshots_are_refused_without_panics() {
    let a = build(2, true);
    let snap = a.snapshot_bytes().expect("save");
    let mut b = build(2, true);
    let before = b.snapshot_bytes().unwrap();
    // Every truncation in the header and device part, and a spread over the RAM part.
    let header = snap.len().min(16 << 10);
    let cuts = (0..header)
        .chain((header..snap.len()).step_by(1 << 20))
        .chain([snap.len() - 1]);
    for n in cuts {
        assert!(
            b.snapshot_restore(&snap[..n]).is_err(),
            "a {n}-byte prefix was accepted"
        );
    }
    assert_eq!(
        b.snapshot_bytes().unwrap(),
        before,
        "a refused snapshot changed the machine"
    );
    // Flipped bytes in the header and device part: refused or harmless, never a panic.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut bad = snap.clone();
    for _ in 0..300 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let i = (x as usize) % header;
        let m = 1 << ((x >> 32) % 8);
        bad[i] ^= m;
        let _ = b.snapshot_restore(&bad);
        bad[i] ^= m;
    }
}
