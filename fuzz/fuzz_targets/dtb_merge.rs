//! `-dtb FILE` merge: an arbitrary user blob merged with the DTB a real `virt` machine
//! generates (with a platform-bus device). Must succeed or fail with an error; a merged result
//! must itself parse.
#![no_main]
use std::rc::Rc;

use breadboard_core::{ChardevRegistry, DriveRegistry, TypeRegistry};
use breadboard_platform::dtb::Dtb;
use breadboard_platform::dtb::merge::{MergeInput, merge};
use breadboard_platform::{DeviceOption, Machine, MachineOptions};
use libfuzzer_sys::fuzz_target;

fn generated() -> Vec<u8> {
    let mut r = TypeRegistry::new();
    breadboard_devices::register_builtin(&mut r);
    let opts = MachineOptions {
        machine: "virt".into(),
        smp: Some(2),
        ..Default::default()
    };
    let mut m = Machine::create(
        &opts,
        r,
        Rc::new(ChardevRegistry::default()),
        Rc::new(DriveRegistry::default()),
    )
    .expect("virt builds");
    m.add_user_device(&DeviceOption {
        driver: "ns16550a".into(),
        id: Some("uart1".into()),
        props: vec![],
    })
    .expect("device added");
    m.dump_dtb(None).expect("dtb")
}

thread_local! {
    static GENERATED: Vec<u8> = generated();
}

fuzz_target!(|data: &[u8]| {
    GENERATED.with(|g| {
        let input = MergeInput {
            generated: g,
            platform_bus: Some((0x400_0000, 0x200_0000)),
            ram: vec![(0x8000_0000, 128 << 20)],
            bootargs: Some("console=ttyS1"),
            initrd: Some((0x8400_0000, 0x8400_1000)),
            stdout_path: Some("/soc/serial@10000000"),
            devices: vec![(0x400_0000, "uart1".into())],
        };
        if let Ok(out) = merge(data, &input) {
            assert!(Dtb::parse(&out).is_ok(), "merged blob does not parse");
        }
    });
});
