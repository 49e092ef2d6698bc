//! Golden device trees: for a few command lines, the DTB breadboard generates is parsed back
//! and compared, node by node and property by property, with a committed `.dts` compiled by the
//! real `dtc`. A change in any device's node shows up here as a structural diff.
//!
//! To update after an intended change: run the command line with `dumpdtb` and decompile it with
//! `dtc -I dtb -O dts` into `tests/golden/NAME.dts`.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::process::Command;
use std::time::Duration;

use breadboard_platform::dtb::{Dtb, Node};
use common::{breadboard, repo, tempdir};

fn first_difference(path: &str, a: &Node, b: &Node) -> Option<String> {
    if a.props != b.props {
        for (k, v) in &a.props {
            match b.props.iter().find(|(bk, _)| bk == k) {
                None => return Some(format!("{path}: property {k} only in the generated tree")),
                Some((_, bv)) if bv != v => return Some(format!("{path}: property {k} differs")),
                _ => {}
            }
        }
        return Some(format!(
            "{path}: properties differ (a golden property is missing)"
        ));
    }
    if a.children.len() != b.children.len() {
        let names = |n: &Node| {
            n.children
                .iter()
                .map(|c| c.name.clone())
                .collect::<Vec<_>>()
        };
        return Some(format!(
            "{path}: children {:?} vs golden {:?}",
            names(a),
            names(b)
        ));
    }
    a.children.iter().zip(&b.children).find_map(|(x, y)| {
        if x.name != y.name {
            return Some(format!("{path}: child {} vs golden {}", x.name, y.name));
        }
        first_difference(&format!("{}/{}", path.trim_end_matches('/'), x.name), x, y)
    })
}

fn check(name: &str, args: &[&str]) {
    let d = tempdir(&format!("golden-{name}"));
    let out = d.join("gen.dtb");
    let mut argv: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let m = argv.iter().position(|a| a == "-M").expect("-M");
    argv[m + 1] = format!("{},dumpdtb={}", argv[m + 1], out.display());
    let a: Vec<&str> = argv.iter().map(String::as_str).collect();
    let r = breadboard(&a, Duration::from_secs(60));
    assert_eq!(r.code, Some(0), "{r:?}");
    let golden_dts = repo().join(format!("crates/breadboard/tests/golden/{name}.dts"));
    let golden_dtb = d.join("golden.dtb");
    let st = Command::new("dtc")
        .args(["-q", "-I", "dts", "-O", "dtb", "-o"])
        .arg(&golden_dtb)
        .arg(&golden_dts)
        .status()
        .expect("dtc");
    assert!(
        st.success(),
        "dtc could not compile {}",
        golden_dts.display()
    );
    let generated =
        Dtb::parse(&std::fs::read(&out).expect("generated dtb")).expect("parse generated");
    let want = Dtb::parse(&std::fs::read(&golden_dtb).expect("golden dtb")).expect("parse golden");
    if let Some(diff) = first_difference("/", &generated.root, &want.root) {
        panic!("{name}: generated tree differs from the golden one: {diff}");
    }
    assert_eq!(generated.root, want.root);
}

#[test]
fn test_golden_dt_virt_default() {
    check("virt", &["-M", "virt"]);
}

#[test]
fn test_golden_dt_virt_smp4_with_dynamic_devices() {
    let d = tempdir("golden-disk");
    let img = d.join("d.img");
    std::fs::write(&img, vec![0u8; 1 << 20]).expect("disk");
    let drive = format!("file={},format=raw,if=none,id=hd0", img.display());
    check(
        "virt-smp4-dynamic",
        &[
            "-M",
            "virt",
            "-smp",
            "4",
            "-m",
            "512M",
            "-bios",
            "none",
            "-kernel",
            "firmware/demo/demo.elf",
            "-append",
            "console=ttyS0 earlycon",
            "-device",
            "ns16550a,id=uart1",
            "-device",
            "virtio-rng-device",
            "-device",
            "virtio-mmio,id=vm0",
            "-drive",
            &drive,
            "-device",
            "virtio-blk-device,drive=hd0,bus=vm0",
        ],
    );
}

#[test]
fn test_golden_dt_rv32_with_extra_devices() {
    check(
        "virt-rv32-extra",
        &[
            "-M",
            "virt",
            "-cpu",
            "rv32",
            "-smp",
            "2",
            "-device",
            "goldfish-rtc,id=rtc1",
            "-device",
            "sysbus-memory,id=sram,size=64K",
        ],
    );
}
