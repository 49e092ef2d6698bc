//! Device plugins through the real binary (issue 6): `-plugin file=…` loads the C DMA engine
//! (compiled here with the system C compiler), `-device bb-dma` puts it on the platform bus,
//! a bare-metal guest starts a copy and sees the data and the interrupt, Linux sees the
//! generated DT node; refused plugins stop the run before a machine exists.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{breadboard, linux_guest, repo, tempdir};

fn dma_plugin(tag: &str, defines: &[&str]) -> PathBuf {
    let d = tempdir(&format!("plugin-{tag}"));
    let out = d.join("libbb_dma.so");
    let st = Command::new("cc")
        .args(["-std=c11", "-O2", "-Wall", "-shared", "-fPIC", "-I"])
        .arg(repo().join("crates/plugin-api/include"))
        .args(defines)
        .arg(repo().join("plugins/dma-engine/dma_engine.c"))
        .arg("-o")
        .arg(&out)
        .status()
        .expect("a C compiler ('cc') is needed");
    assert!(st.success());
    out
}

fn dma_guest() -> String {
    repo()
        .join("plugins/dma-engine/guest/dma_test.elf")
        .display()
        .to_string()
}

#[test]
fn test_plugin_dma_engine_serves_a_bare_metal_guest() {
    let so = dma_plugin("bare", &[]);
    let plugin = format!("file={}", so.display());
    let elf = dma_guest();
    let r = breadboard(
        &[
            "-M",
            "virt",
            "-bios",
            "none",
            "-kernel",
            &elf,
            "-nographic",
            "-plugin",
            &plugin,
            "-device",
            "bb-dma,id=dma0",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(
        r.code,
        Some(0),
        "guest saw the copy and the IRQ: {}",
        r.stderr
    );
    // Without the device the guest's first access faults: the guest really depends on it.
    let r = breadboard(
        &[
            "-M",
            "virt",
            "-bios",
            "none",
            "-kernel",
            &elf,
            "-nographic",
            "-plugin",
            &plugin,
        ],
        Duration::from_secs(30),
    );
    assert_eq!(
        r.code,
        Some(1 << 1 | 1),
        "finisher fail code of step 1: {}",
        r.stderr
    );
}

#[test]
fn test_refused_plugins_stop_before_the_machine_starts() {
    let elf = dma_guest();
    let newer = dma_plugin("newer", &["-DBB_TEST_NEWER_MINOR"]);
    let dup = dma_plugin("dup", &["-DBB_TEST_DUP_NAME"]);
    let cases = [
        ("/nonexistent/libx.so".to_string(), "breadboard: -plugin: could not load plugin '/nonexistent/libx.so': No such file or directory".to_string()),
        (newer.display().to_string(), format!("breadboard: -plugin: plugin '{}' needs plugin ABI 1.2, newer than this breadboard's 1.1", newer.display())),
        (dup.display().to_string(), format!("breadboard: -plugin: plugin '{}': device type 'ns16550a' is already registered", dup.display())),
    ];
    for (file, want) in cases {
        let plugin = format!("file={file}");
        let r = breadboard(
            &[
                "-M", "virt", "-bios", "none", "-kernel", &elf, "-plugin", &plugin,
            ],
            Duration::from_secs(30),
        );
        assert_eq!(r.code, Some(1), "{file}");
        assert_eq!(r.stderr.trim_end(), want);
    }
}

#[test]
fn test_linux_sees_the_plugin_device_tree_node() {
    let so = dma_plugin("linux", &[]);
    let plugin = format!("file={}", so.display());
    let mut g = linux_guest(&["-plugin", &plugin, "-device", "bb-dma,id=dma0"]);
    let boot = Duration::from_secs(120);
    let off = g.expect("breadboard:/# ", boot);
    let node = "/sys/firmware/devicetree/base/platform-bus@4000000/dma@0";
    g.send(&format!(
        "cat {node}/compatible; echo; od -An -tx1 {node}/interrupts {node}/reg; echo dt-$((1+1))\n"
    ));
    let end = g.expect_from("dt-2", off + 1, boot);
    let out = g.output()[off..end].to_string();
    assert!(out.contains("breadboard,example-dma"), "{out}");
    assert!(
        out.contains("00 00 00 40"),
        "interrupts = <64> from the platform bus block: {out}"
    );
    g.send("poweroff\n");
    assert_eq!(g.wait(boot), Some(0), "{}", g.output());
}

#[test]
fn test_device_help_lists_plugin_types() {
    let so = dma_plugin("help", &[]);
    let p = so.display().to_string();
    let r = breadboard(
        &["-plugin", &format!("file={p}"), "-device", "help"],
        Duration::from_secs(30),
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stdout.contains("name \"bb-dma\""), "{}", r.stdout);
    assert!(
        r.stdout.contains("name \"ns16550a\""),
        "built-ins too: {}",
        r.stdout
    );
    let r = breadboard(
        &["-plugin", &p, "-device", "bb-dma,help"],
        Duration::from_secs(30),
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stdout.contains("max-len=<size>"), "{}", r.stdout);
}
