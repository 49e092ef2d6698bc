//! Machine building end to end (in process): phase order, platform-bus placement and its
//! errors, wiring errors, boot layout.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::rc::Rc;

use breadboard_core::{ChardevRegistry, DriveRegistry, TypeRegistry};
use breadboard_platform::{
    BootOptions, DeviceOption, Firmware, Image, Machine, MachineError, MachineOptions, Phase,
};

fn registry() -> TypeRegistry {
    let mut r = TypeRegistry::new();
    breadboard_devices::register_builtin(&mut r);
    r
}

fn virt(smp: u32) -> Machine {
    let opts = MachineOptions {
        machine: "virt".into(),
        smp: Some(smp),
        ..Default::default()
    };
    Machine::create(
        &opts,
        registry(),
        Rc::new(ChardevRegistry::default()),
        Rc::new(DriveRegistry::default()),
    )
    .expect("virt builds")
}

fn demo() -> Image {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../firmware/demo/demo.elf");
    Image {
        name: path.into(),
        data: std::fs::read(path).expect("demo.elf"),
    }
}

fn dev(driver: &str, id: &str) -> DeviceOption {
    DeviceOption {
        driver: driver.into(),
        id: Some(id.into()),
        props: vec![],
    }
}

#[test]
fn test_phases_run_in_order_bind_fdt_then_load() {
    let mut m = virt(1);
    assert_eq!(m.phase, Phase::Initialized);
    m.add_user_device(&dev("ns16550a", "uart1")).expect("add");
    let layout = m
        .finish(&BootOptions {
            firmware: Firmware::None,
            kernel: Some(demo()),
            ..Default::default()
        })
        .expect("finish");
    assert_eq!(m.phase, Phase::Ready);
    assert_eq!(
        m.phase_log,
        vec![
            "create",
            "accel",
            "initialized",
            "bind",
            "layout",
            "fdt",
            "load",
            "ready"
        ]
    );
    // The DTB placed in RAM is the one generated after binding: it has the bound device.
    let (addr, size) = layout.dtb.expect("dtb placed");
    assert_eq!(
        addr, 0x87e0_0000,
        "end of 128 MiB RAM, aligned down to 2 MiB"
    );
    let mut blob = vec![0u8; usize::try_from(size).expect("size")];
    m.dma.read(addr, &mut blob).expect("read dtb");
    // Bus children are named by their offset in the bus window, as QEMU names them.
    let needle = b"serial@0";
    assert!(
        blob.windows(needle.len()).any(|w| w == needle),
        "dynamic uart node in the loaded DTB"
    );
    // The reset ROM jumps to the kernel entry with the DTB address.
    assert_eq!(m.space.read(0x1018, 8), Ok(layout.entry));
    assert_eq!(m.space.read(0x1020, 8), Ok(addr));
}

#[test]
fn test_platform_bus_placement_is_deterministic_first_fit() {
    let mut m = virt(1);
    m.add_user_device(&dev("ns16550a", "a")).expect("a");
    m.add_user_device(&dev("goldfish-rtc", "b")).expect("b");
    m.add_user_device(&dev("ns16550a", "c")).expect("c");
    m.bind().expect("bind");
    let addr = |id: &str| {
        let d = m.resolve_device(id).expect("id");
        m.device(d).and_then(|e| e.mapped[0]).expect("mapped")
    };
    assert_eq!(
        (addr("a"), addr("b"), addr("c")),
        (0x400_0000, 0x400_1000, 0x400_2000)
    );
    // IRQs from the bus block (PLIC 64..96) in order.
    let wire = |id: &str| {
        let d = m.resolve_device(id).expect("id");
        m.device(d).and_then(|e| e.wires[0])
    };
    let plic = m.resolve_device("plic").expect("plic");
    assert_eq!(
        wire("a"),
        Some(breadboard_platform::WireTarget::Device {
            id: plic,
            input: 64
        })
    );
    assert_eq!(
        wire("c"),
        Some(breadboard_platform::WireTarget::Device {
            id: plic,
            input: 66
        })
    );
}

#[test]
fn test_platform_bus_exhaustion_names_device_and_size() {
    let mut m = virt(1);
    let big = DeviceOption {
        driver: "sysbus-memory".into(),
        id: Some("big".into()),
        props: vec![("size".into(), "0x1000000".into())],
    };
    m.add_user_device(&big).expect("16 MiB");
    let big2 = DeviceOption {
        id: Some("big2".into()),
        ..big.clone()
    };
    m.add_user_device(&big2).expect("16 MiB");
    let big3 = DeviceOption {
        id: Some("big3".into()),
        ..big
    };
    m.add_user_device(&big3).expect("created; placed at bind");
    let e = m.bind().expect_err("32 MiB window is full");
    assert_eq!(
        e.to_string(),
        "platform bus full: no free 0x1000000-byte window for device 'big3'"
    );
}

#[test]
fn test_platform_bus_irq_exhaustion() {
    let mut m = virt(1);
    for i in 0..32 {
        m.add_user_device(&dev("ns16550a", &format!("u{i}")))
            .expect("add");
    }
    m.add_user_device(&dev("ns16550a", "one-too-many"))
        .expect("add");
    let e = m.bind().expect_err("out of irqs");
    assert!(matches!(e, MachineError::NoIrqs { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        "platform bus out of IRQs: device 'one-too-many' needs 1 more"
    );
}

#[test]
fn test_wiring_errors_are_specific() {
    let mut m = virt(2);
    let u = m.add_user_device(&dev("ns16550a", "u")).expect("u");
    let plic = m.resolve_device("plic").expect("plic");
    let e = m
        .connect(
            u,
            0,
            breadboard_platform::WireTarget::Device {
                id: plic,
                input: 500,
            },
        )
        .expect_err("no such input");
    assert_eq!(
        e.to_string(),
        "device 'plic' has no input unnamed-gpio-in[500] (it has 97)"
    );
    let e = m
        .connect(
            u,
            3,
            breadboard_platform::WireTarget::Device { id: plic, input: 5 },
        )
        .expect_err("no such output");
    assert_eq!(
        e.to_string(),
        "device 'u' has no output sysbus-irq[3] (it has 1)"
    );
    let e = m
        .connect(
            u,
            0,
            breadboard_platform::WireTarget::Cpu { hart: 9, bit: 11 },
        )
        .expect_err("no hart 9");
    assert_eq!(e.to_string(), "no hart 9 (the machine has 2)");
    let e = m
        .add_user_device(&dev("ns16550a", "u"))
        .expect_err("duplicate id");
    assert_eq!(e.to_string(), "Duplicate device ID 'u'");
    let e = m
        .map_region(u, 0, 0x1000_0000)
        .expect_err("overlap with uart0");
    assert!(
        e.to_string().contains("overlaps 'serial'") || e.to_string().contains("overlaps"),
        "{e}"
    );
}
