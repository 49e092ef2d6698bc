//! Commands run in process against machines other than the seed's: `device_add` after
//! `ready` on `virt` (platform bus placement and a rewritten DTB), and `-S` semantics.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::rc::Rc;

use breadboard_core::{ChardevRegistry, DriveRegistry, TypeRegistry};
use breadboard_platform::{BootOptions, Firmware, Image, Machine, MachineOptions, Phase};
use breadboard_qmp::{QmpContext, execute};
use serde_json::{Map, Value, json};

fn args(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

fn virt_ready(start_stopped: bool) -> (Machine, QmpContext) {
    let mut reg = TypeRegistry::new();
    breadboard_devices::register_builtin(&mut reg);
    let opts = MachineOptions {
        machine: "virt".into(),
        ..Default::default()
    };
    let mut m = Machine::create(
        &opts,
        reg,
        Rc::new(ChardevRegistry::default()),
        Rc::new(DriveRegistry::default()),
    )
    .unwrap();
    let demo = common::repo().join("firmware/demo/demo.elf");
    let boot = BootOptions {
        firmware: Firmware::None,
        kernel: Some(Image {
            name: demo.display().to_string(),
            data: std::fs::read(&demo).unwrap(),
        }),
        ..Default::default()
    };
    m.enter_preconfig().unwrap();
    let mut ctx = QmpContext::new(boot, start_stopped);
    execute(&mut m, &mut ctx, "x-exit-preconfig", &Map::new()).unwrap();
    assert_eq!(m.phase, Phase::Ready);
    (m, ctx)
}

fn dtb_text(m: &Machine) -> Vec<u8> {
    let (addr, size) = m.boot.as_ref().unwrap().layout.dtb.unwrap();
    let mut blob = vec![0u8; usize::try_from(size).unwrap()];
    m.dma.read(addr, &mut blob).unwrap();
    blob
}

#[test]
fn test_device_add_after_ready_before_start_goes_on_the_platform_bus() {
    let (mut m, mut ctx) = virt_ready(true);
    let count = |blob: &[u8]| blob.windows(7).filter(|w| w == b"serial@").count();
    let before = count(&dtb_text(&m));
    let r = execute(
        &mut m,
        &mut ctx,
        "device_add",
        &args(json!({"driver": "ns16550a", "id": "late"})),
    );
    assert_eq!(r, Ok(json!({})));
    let id = m.resolve_device("late").unwrap();
    let e = m.device(id).unwrap();
    assert!(
        e.on_platform_bus && e.mapped[0].is_some(),
        "placed on the platform bus"
    );
    assert_eq!(
        count(&dtb_text(&m)),
        before + 1,
        "the loaded DTB has the new node"
    );
    // Once the guest ran, no more.
    ctx.started = true;
    let e = execute(
        &mut m,
        &mut ctx,
        "device_add",
        &args(json!({"driver": "ns16550a", "id": "later"})),
    )
    .unwrap_err();
    assert!(e.desc.contains("its guest has run"), "{}", e.desc);
    assert!(m.resolve_device("later").is_err());
}

#[test]
fn test_dumpdtb_writes_the_loaded_blob() {
    let (mut m, mut ctx) = virt_ready(false);
    let dir = common::tempdir("dumpdtb");
    let file = dir.join("virt.dtb");
    let r = execute(
        &mut m,
        &mut ctx,
        "dumpdtb",
        &args(json!({"filename": file.display().to_string()})),
    );
    assert_eq!(r, Ok(json!({})));
    assert_eq!(std::fs::read(&file).unwrap(), dtb_text(&m));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn test_status_follows_start_stopped_stop_and_cont() {
    let (mut m, mut ctx) = virt_ready(true);
    let status = |m: &mut Machine, ctx: &mut QmpContext| {
        execute(m, ctx, "query-status", &Map::new()).unwrap()["status"].clone()
    };
    assert_eq!(status(&mut m, &mut ctx), "prelaunch");
    execute(&mut m, &mut ctx, "cont", &Map::new()).unwrap();
    assert_eq!(status(&mut m, &mut ctx), "running");
    execute(&mut m, &mut ctx, "stop", &Map::new()).unwrap();
    assert_eq!(status(&mut m, &mut ctx), "paused");
    execute(&mut m, &mut ctx, "quit", &Map::new()).unwrap();
    assert!(ctx.quit_requested);
    assert_eq!(ctx.deferred.len(), 1, "SHUTDOWN waits for the reply");
}
