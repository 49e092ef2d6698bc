//! Plugins through the machine description (`plugins = [...]`) and QMP `plugin-load`
//! (preconfig only), with the plugin's types then usable by `device_add` and
//! `device-list-properties` like built-ins.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::{Path, PathBuf};
use std::rc::Rc;

use breadboard_core::{ChardevRegistry, DriveRegistry, TypeRegistry};
use breadboard_platform::description::Description;
use breadboard_platform::{BootOptions, Firmware, Image, Machine, MachineOptions};
use breadboard_qmp::{QmpContext, execute};
use serde_json::{Map, Value, json};

fn timer_plugin() -> PathBuf {
    common::rust_plugin("bb_timer_plugin")
}

fn builtins() -> TypeRegistry {
    let mut r = TypeRegistry::new();
    breadboard_devices::register_builtin(&mut r);
    r
}

fn args(v: Value) -> Map<String, Value> {
    v.as_object().cloned().expect("object")
}

#[test]
fn test_description_plugins_provide_board_device_types() {
    let virt = include_str!("../../platform/machines/virt.toml");
    let text = virt.replacen(
        "allow-dynamic = [\"*\"]",
        &format!(
            "allow-dynamic = [\"*\"]\nplugins = [\"{}\"]",
            timer_plugin().display()
        ),
        1,
    ) + "\n[[device]]\nname = \"tmr\"\ntype = \"bb-timer\"\nmmio = [0x5000000]\nirq = [\"plic:20\"]\n";
    let desc = Description::parse(&text, "plugin-board.toml").expect("description");
    let opts = MachineOptions {
        machine: "virt".into(),
        ..Default::default()
    };
    let m = Machine::create_from(
        desc,
        &opts,
        builtins(),
        Rc::new(ChardevRegistry::default()),
        Rc::new(DriveRegistry::default()),
    )
    .expect("board with a plugin device builds");
    m.space.write(0x500_0008, 8, 1234).expect("PERIOD");
    assert_eq!(m.space.read(0x500_0008, 8), Ok(1234));

    let bad = virt.replacen(
        "allow-dynamic = [\"*\"]",
        "allow-dynamic = [\"*\"]\nplugins = [\"/nonexistent/p.so\"]",
        1,
    );
    let desc = Description::parse(&bad, "bad.toml").expect("description");
    let e = Machine::create_from(
        desc,
        &opts,
        builtins(),
        Rc::new(ChardevRegistry::default()),
        Rc::new(DriveRegistry::default()),
    )
    .err()
    .expect("refused");
    assert_eq!(
        e.to_string(),
        "could not load plugin '/nonexistent/p.so': No such file or directory"
    );
}

#[test]
fn test_qmp_plugin_load_in_preconfig_then_device_add() {
    let opts = MachineOptions {
        machine: "virt".into(),
        ..Default::default()
    };
    let mut m = Machine::create(
        &opts,
        builtins(),
        Rc::new(ChardevRegistry::default()),
        Rc::new(DriveRegistry::default()),
    )
    .expect("virt");
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../firmware/demo/demo.elf");
    let boot = BootOptions {
        firmware: Firmware::None,
        kernel: Some(Image {
            name: demo.display().to_string(),
            data: std::fs::read(&demo).expect("demo"),
        }),
        ..Default::default()
    };
    let mut ctx = QmpContext::new(boot, true);
    let file = timer_plugin().display().to_string();
    let r = execute(
        &mut m,
        &mut ctx,
        "plugin-load",
        &args(json!({ "file": file })),
    )
    .expect("loaded");
    assert_eq!(r, json!({ "name": "bb-timer", "types": ["bb-timer"] }));
    let e = execute(
        &mut m,
        &mut ctx,
        "plugin-load",
        &args(json!({ "file": file })),
    )
    .expect_err("twice");
    assert!(
        format!("{e:?}").contains("device type 'bb-timer' is already registered"),
        "{e:?}"
    );
    let props = execute(
        &mut m,
        &mut ctx,
        "device-list-properties",
        &args(json!({ "typename": "bb-timer" })),
    )
    .expect("props");
    assert!(props.to_string().contains("clock-frequency"), "{props}");
    execute(
        &mut m,
        &mut ctx,
        "device_add",
        &args(json!({ "driver": "bb-timer", "id": "t0" })),
    )
    .expect("device_add");
    execute(&mut m, &mut ctx, "x-exit-preconfig", &Map::new()).expect("ready");
    execute(
        &mut m,
        &mut ctx,
        "plugin-load",
        &args(json!({ "file": file })),
    )
    .expect_err("only before the machine is ready");
}
