//! Device plugins end to end, in process: the C DMA engine (compiled here with the system C
//! compiler) and the Rust SDK timer (built by cargo as an example cdylib) on a `virt` machine:
//! platform-bus placement, MMIO, DMA through guest RAM, IRQs into the PLIC, timers on the
//! virtual clock, the generated DT node (checked with `dtc`), typed properties with the
//! built-ins' messages, snapshots, version checks, every refused-plugin case, and a panicking
//! Rust plugin that leaves the machine running.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;
use std::sync::Mutex;

use breadboard_core::{ChardevRegistry, DriveRegistry, IrqSink as _, TypeRegistry};
use breadboard_platform::{DeviceOption, Machine, MachineOptions, WireTarget};
use breadboard_plugin_host::{PluginDevice, PluginError, load};
use common::rust_plugin;

// ---------------------------------------------------------------------------------------------
// Building and loading plugins

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Compiles the C DMA engine with `-DBB_TEST_<variant>` switches into a shared library.
fn c_plugin(variant: Option<&str>) -> PathBuf {
    // Tests run in parallel threads: compile each variant once.
    static BUILT: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());
    let mut built = BUILT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let key = variant.unwrap_or("ok").to_string();
    if let Some(p) = built.get(&key) {
        return p.clone();
    }
    let p = compile_c_plugin(variant);
    built.insert(key, p.clone());
    p
}

fn compile_c_plugin(variant: Option<&str>) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("c-plugins");
    std::fs::create_dir_all(&dir).expect("tmpdir");
    let tag = variant.unwrap_or("ok").to_lowercase();
    let out = dir.join(format!("libbb_dma_{tag}.so"));
    // Each test compiles its own variant name; build to a unique temp name and rename so
    // parallel tests never see a half-written library.
    let tmp = dir.join(format!("libbb_dma_{tag}.{}.tmp", std::process::id()));
    let mut cmd = Command::new("cc");
    cmd.args([
        "-std=c11", "-O2", "-Wall", "-Wextra", "-shared", "-fPIC", "-I",
    ])
    .arg(repo().join("crates/plugin-api/include"));
    match variant {
        Some(v) => {
            cmd.arg(format!("-DBB_TEST_{v}"));
        }
        None => {
            cmd.arg("-Werror");
        }
    }
    let st = cmd
        .arg(repo().join("plugins/dma-engine/dma_engine.c"))
        .arg("-o")
        .arg(&tmp)
        .status()
        .expect("a C compiler ('cc') is needed for the C plugin tests");
    assert!(st.success(), "dma_engine.c compiles ({tag})");
    std::fs::rename(&tmp, &out).expect("rename");
    out
}

fn builtins() -> TypeRegistry {
    let mut r = TypeRegistry::new();
    breadboard_devices::register_builtin(&mut r);
    r
}

fn virt_with(reg: TypeRegistry) -> Machine {
    let opts = MachineOptions {
        machine: "virt".into(),
        smp: Some(1),
        icount_shift: Some(0),
        ..Default::default()
    };
    Machine::create(
        &opts,
        reg,
        Rc::new(ChardevRegistry::default()),
        Rc::new(DriveRegistry::default()),
    )
    .expect("virt builds")
}

fn add(m: &mut Machine, driver: &str, id: &str, props: &[(&str, &str)]) -> usize {
    m.add_user_device(&DeviceOption {
        driver: driver.into(),
        id: Some(id.into()),
        props: props
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect(),
    })
    .expect("device added")
}

fn base(m: &Machine, id: usize, region: usize) -> u64 {
    m.device(id).and_then(|e| e.mapped[region]).expect("mapped")
}

/// Whether the PLIC has the IRQ of `id`'s output 0 pending.
fn plic_pending(m: &Machine, id: usize) -> bool {
    let Some(WireTarget::Device { input, .. }) = m.device(id).and_then(|e| e.wires[0]) else {
        panic!("output 0 is wired to the PLIC");
    };
    let word = m
        .space
        .read(0x0c00_1000 + u64::from(input / 32) * 4, 4)
        .expect("PLIC pending");
    word >> (input % 32) & 1 == 1
}

fn with_plugin<R>(m: &Machine, id: usize, f: impl FnOnce(&mut PluginDevice) -> R) -> R {
    let e = m.device(id).expect("device");
    let mut d = e.cell.borrow_mut();
    f(d.as_mut()
        .as_any_mut()
        .downcast_mut::<PluginDevice>()
        .expect("a plugin device"))
}

fn dts(m: &mut Machine) -> String {
    let blob = m.dump_dtb(None).expect("dtb");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let f = dir.join(format!(
        "plugin-{}-{:?}.dtb",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::write(&f, blob).expect("write dtb");
    let out = Command::new("dtc")
        .args(["-I", "dtb", "-O", "dts"])
        .arg(&f)
        .output()
        .expect("dtc");
    assert!(
        out.status.success(),
        "dtc parses the blob: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("Warning"), "dtc warnings: {stderr}");
    String::from_utf8(out.stdout).expect("utf8")
}

const DMA_SRC: u64 = 0x8010_0000;
const DMA_DST: u64 = 0x8020_0000;
const ST_BUSY: u64 = 1;
const ST_DONE: u64 = 2;
const ST_ERROR: u64 = 4;

fn program_dma(m: &Machine, regs: u64, src: u64, dst: u64, len: u64) {
    m.space.write(regs, 8, src).expect("SRC");
    m.space.write(regs + 8, 8, dst).expect("DST");
    m.space.write(regs + 0x10, 4, len).expect("LEN");
    m.space
        .write(regs + 0x14, 4, 3)
        .expect("CTRL: IRQ enable + START");
}

// ---------------------------------------------------------------------------------------------
// The C DMA engine

#[test]
fn test_c_dma_plugin_copies_guest_ram_and_raises_its_plic_irq() {
    let mut reg = builtins();
    let loaded = load(&c_plugin(None), &mut reg).expect("plugin loads");
    assert_eq!(loaded.types, vec!["bb-dma"]);
    assert_eq!(loaded.abi, (1, 1));
    let mut m = virt_with(reg);
    let dma = add(&mut m, "bb-dma", "dma0", &[]);
    m.bind().expect("placed on the platform bus");
    let regs = base(&m, dma, 0);
    let stats = base(&m, dma, 1);
    assert_eq!(regs, 0x400_0000, "first fit in the platform bus window");
    assert_eq!(m.space.read(regs + 0x1c, 4), Ok(0x444d_4131), "ID register");

    let pattern: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
    m.dma.write(DMA_SRC, &pattern).expect("source buffer");
    assert!(!plic_pending(&m, dma));
    program_dma(&m, regs, DMA_SRC, DMA_DST, 1000);

    let mut copied = vec![0u8; 1000];
    m.dma.read(DMA_DST, &mut copied).expect("destination");
    assert_eq!(copied, pattern, "the engine copied the buffer");
    assert_eq!(m.space.read(regs + 0x18, 4), Ok(ST_DONE));
    assert!(plic_pending(&m, dma), "completion IRQ reached the PLIC");
    assert_eq!(
        m.space.read(stats, 8),
        Ok(1000),
        "second region: bytes copied"
    );
    assert_eq!(
        m.space.read(stats + 8, 8),
        Ok(1),
        "second region: transfers"
    );

    // Clearing DONE lowers the line; the guest then claims it as usual.
    m.space.write(regs + 0x18, 4, ST_DONE).expect("clear");
    assert_eq!(m.space.read(regs + 0x18, 4), Ok(0));
    let line = with_plugin(&m, dma, |d| d.irq_outputs_level());
    assert!(!line, "IRQ output low after clearing DONE");
}

trait Level {
    fn irq_outputs_level(&self) -> bool;
}

impl Level for PluginDevice {
    fn irq_outputs_level(&self) -> bool {
        use breadboard_core::Device as _;
        self.irq_outputs()[0].level()
    }
}

#[test]
fn test_c_dma_plugin_dt_node_has_generated_reg_and_interrupts() {
    let mut reg = builtins();
    load(&c_plugin(None), &mut reg).expect("plugin loads");
    let mut m = virt_with(reg);
    add(&mut m, "bb-dma", "dma0", &[("max-len", "64K")]);
    let text = dts(&mut m);
    let start = text
        .find("dma@0 {")
        .unwrap_or_else(|| panic!("dma node in:\n{text}"));
    let node = &text[start..start + text[start..].find("};").expect("node end")];
    for want in [
        "compatible = \"breadboard,example-dma\";",
        "dma-channels = <0x01>;",
        "breadboard,max-len = <0x10000>;",
        "interrupts = <0x40>;",
        // Platform-bus children use the bus's 1+1 cells, offsets within its window.
        "reg = <0x00 0x100 0x1000 0x1000>;",
    ] {
        assert!(node.contains(want), "'{want}' in node:\n{node}");
    }
    assert!(node.contains("interrupt-parent = <"), "{node}");
}

#[test]
fn test_c_dma_plugin_completes_after_latency_on_the_virtual_clock() {
    let mut reg = builtins();
    load(&c_plugin(None), &mut reg).expect("plugin loads");
    let mut m = virt_with(reg);
    let dma = add(&mut m, "bb-dma", "dma0", &[("latency-ns", "5000")]);
    m.bind().expect("bind");
    let regs = base(&m, dma, 0);
    m.dma.write(DMA_SRC, b"late data").expect("src");
    let t0 = m.clock.now();
    program_dma(&m, regs, DMA_SRC, DMA_DST, 9);
    assert_eq!(m.space.read(regs + 0x18, 4), Ok(ST_BUSY));
    m.clock.warp_to(t0 + 4999);
    m.fire_timers();
    assert_eq!(m.space.read(regs + 0x18, 4), Ok(ST_BUSY), "not yet");
    m.clock.warp_to(t0 + 5000);
    m.fire_timers();
    assert_eq!(m.space.read(regs + 0x18, 4), Ok(ST_DONE));
    let mut got = [0u8; 9];
    m.dma.read(DMA_DST, &mut got).expect("dst");
    assert_eq!(&got, b"late data");
    assert!(plic_pending(&m, dma));
}

#[test]
fn test_c_dma_plugin_dma_outside_ram_is_an_error_not_a_crash() {
    let mut reg = builtins();
    load(&c_plugin(None), &mut reg).expect("plugin loads");
    let mut m = virt_with(reg);
    let dma = add(&mut m, "bb-dma", "dma0", &[]);
    m.bind().expect("bind");
    let regs = base(&m, dma, 0);
    // Destination: the UART's registers (MMIO). Source: unmapped.
    program_dma(&m, regs, DMA_SRC, 0x1000_0000, 16);
    assert_eq!(
        m.space.read(regs + 0x18, 4),
        Ok(ST_ERROR),
        "MMIO target refused"
    );
    m.space.write(regs + 0x18, 4, ST_ERROR).expect("clear");
    program_dma(&m, regs, 0x7000_0000, DMA_DST, 16);
    assert_eq!(
        m.space.read(regs + 0x18, 4),
        Ok(ST_ERROR),
        "unmapped source refused"
    );
    assert!(plic_pending(&m, dma), "error completion interrupts too");
}

#[test]
fn test_c_dma_plugin_properties_use_the_builtin_messages() {
    let mut reg = builtins();
    load(&c_plugin(None), &mut reg).expect("plugin loads");
    let help = reg.type_help("bb-dma").expect("help");
    assert!(
        help.contains("max-len=<size> (default: 1M) - largest transfer in bytes"),
        "{help}"
    );
    assert!(help.contains("latency-ns=<uint64> (default: 0)"), "{help}");
    assert!(
        reg.help()
            .contains("name \"bb-dma\", desc \"example memory-to-memory DMA engine (C plugin)\"")
    );
    let mut m = virt_with(reg);
    let err = |m: &mut Machine, props: &[(&str, &str)]| {
        let e = m
            .add_user_device(&DeviceOption {
                driver: "bb-dma".into(),
                id: Some("d".into()),
                props: props
                    .iter()
                    .map(|(k, v)| ((*k).into(), (*v).into()))
                    .collect(),
            })
            .expect_err("refused");
        // The machine error names the device; the cause is its source, as for built-ins.
        let src = std::error::Error::source(&e)
            .map(ToString::to_string)
            .unwrap_or_default();
        format!("{e}: {src}")
    };
    assert!(
        err(&mut m, &[("max-len", "lots")])
            .ends_with("Property 'bb-dma.max-len' expects a size value, not 'lots'")
    );
    assert!(err(&mut m, &[("colour", "red")]).ends_with("Property 'bb-dma.colour' not found"));
    assert!(err(&mut m, &[("max-len", "8G")]).ends_with(
        "Property 'bb-dma.max-len' value 0x200000000 is larger than the maximum 0xffffffff"
    ));
    assert!(
        err(&mut m, &[("max-len", "0")]).ends_with("Property 'bb-dma.max-len' must not be 0"),
        "realize error from create"
    );
    let id = add(&mut m, "bb-dma", "d", &[("latency-ns", "0x10")]);
    assert_eq!(
        m.get_property(id, "latency-ns"),
        Some(breadboard_core::PropValue::U64(16))
    );
}

#[test]
fn test_c_dma_plugin_snapshot_round_trip() {
    let mut reg = builtins();
    load(&c_plugin(None), &mut reg).expect("plugin loads");
    let mut m = virt_with(reg);
    let dma = add(&mut m, "bb-dma", "dma0", &[]);
    m.bind().expect("bind");
    let regs = base(&m, dma, 0);
    m.space.write(regs, 8, 0x1234_5678_9abc).expect("SRC");
    let snap = with_plugin(&m, dma, |d| d.snapshot_save()).expect("snapshot supported");
    m.space.write(regs, 8, 0).expect("SRC");
    with_plugin(&m, dma, |d| d.snapshot_load(&snap)).expect("restored");
    assert_eq!(m.space.read(regs, 8), Ok(0x1234_5678_9abc));
    assert!(with_plugin(&m, dma, |d| d.snapshot_load(b"short")).is_err());
}

#[test]
fn test_plugin_built_for_older_minor_keeps_working() {
    let mut reg = builtins();
    let loaded = load(&c_plugin(Some("OLD_MINOR")), &mut reg).expect("ABI 1.0 plugin loads");
    assert_eq!(loaded.abi, (1, 0));
    let mut m = virt_with(reg);
    let dma = add(&mut m, "bb-dma", "dma0", &[]);
    m.bind().expect("bind");
    let regs = base(&m, dma, 0);
    m.dma.write(DMA_SRC, b"old abi").expect("src");
    program_dma(&m, regs, DMA_SRC, DMA_DST, 7);
    let mut got = [0u8; 7];
    m.dma.read(DMA_DST, &mut got).expect("dst");
    assert_eq!(&got, b"old abi");
    assert_eq!(
        with_plugin(&m, dma, |d| d.snapshot_save()),
        None,
        "1.0 has no snapshot ops"
    );
}

// ---------------------------------------------------------------------------------------------
// Refused plugins: a clear error and nothing registered

fn refused(path: &Path) -> PluginError {
    let mut reg = builtins();
    let before: Vec<String> = reg.iter().map(|t| t.name.to_string()).collect();
    let e = load(path, &mut reg).expect_err("refused");
    let after: Vec<String> = reg.iter().map(|t| t.name.to_string()).collect();
    assert_eq!(before, after, "nothing registered after: {e}");
    e
}

#[test]
fn test_missing_file_is_refused() {
    let e = refused(Path::new("/nonexistent/libnothing.so"));
    assert!(matches!(e, PluginError::Open { .. }));
    assert_eq!(
        e.to_string(),
        "could not load plugin '/nonexistent/libnothing.so': No such file or directory"
    );
}

#[test]
fn test_not_a_shared_library_is_refused() {
    let f = Path::new(env!("CARGO_TARGET_TMPDIR")).join("not-a-plugin.so");
    std::fs::write(&f, b"hello").expect("write");
    assert!(matches!(refused(&f), PluginError::Open { .. }));
}

#[test]
fn test_missing_entry_point_is_refused() {
    let e = refused(&c_plugin(Some("NO_INIT")));
    assert!(
        matches!(
            e,
            PluginError::MissingSymbol {
                symbol: "breadboard_plugin_init",
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string()
            .ends_with("does not export 'breadboard_plugin_init' (is it a breadboard plugin?)")
    );
}

#[test]
fn test_major_mismatch_is_refused() {
    let e = refused(&c_plugin(Some("BAD_MAJOR")));
    assert!(
        matches!(e, PluginError::MajorMismatch { major: 2, .. }),
        "{e}"
    );
    assert!(
        e.to_string()
            .ends_with("uses plugin ABI 2.0; this breadboard speaks 1.x"),
        "{e}"
    );
}

#[test]
fn test_newer_minor_is_refused() {
    let e = refused(&c_plugin(Some("NEWER_MINOR")));
    assert!(
        matches!(
            e,
            PluginError::NewerMinor {
                minor: 2,
                host_minor: 1,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string()
            .ends_with("needs plugin ABI 1.2, newer than this breadboard's 1.1"),
        "{e}"
    );
}

#[test]
fn test_short_struct_is_refused() {
    let e = refused(&c_plugin(Some("SHORT_TYPE")));
    assert!(
        matches!(e, PluginError::ShortStruct { size: 16, .. }),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("bb_device_type is 16 bytes, ABI 1.0 needs at least 96"),
        "{e}"
    );
}

#[test]
fn test_null_required_callback_is_refused() {
    let e = refused(&c_plugin(Some("NULL_READ")));
    assert!(
        matches!(
            e,
            PluginError::NullCallback {
                callback: "read",
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string()
            .ends_with("device type 'bb-dma' has no 'read' callback"),
        "{e}"
    );
}

#[test]
fn test_duplicate_type_name_is_refused() {
    let e = refused(&c_plugin(Some("DUP_NAME")));
    assert!(matches!(e, PluginError::Duplicate { .. }), "{e}");
    assert!(
        e.to_string()
            .ends_with("device type 'ns16550a' is already registered"),
        "{e}"
    );
    // Loading the same plugin twice into one registry is the same mistake.
    let mut reg = builtins();
    load(&c_plugin(None), &mut reg).expect("first load");
    let n = reg.iter().count();
    let e = load(&c_plugin(None), &mut reg).expect_err("second load");
    assert!(
        e.to_string()
            .ends_with("device type 'bb-dma' is already registered")
    );
    assert_eq!(reg.iter().count(), n);
}

// ---------------------------------------------------------------------------------------------
// The Rust SDK timer

#[test]
fn test_rust_timer_plugin_fires_on_the_virtual_clock_and_takes_gpio() {
    let mut reg = builtins();
    let loaded = load(&rust_plugin("bb_timer_plugin"), &mut reg).expect("plugin loads");
    assert_eq!(loaded.types, vec!["bb-timer"]);
    let mut m = virt_with(reg);
    let dma_like = add(&mut m, "bb-timer", "t0", &[]);
    m.bind().expect("bind");
    let regs = base(&m, dma_like, 0);
    let t0 = m.clock.now();
    m.space.write(regs + 0x08, 8, 2000).expect("PERIOD");
    m.space
        .write(regs, 4, 1 | 2 | 4)
        .expect("CTRL: enable, periodic, irq");
    m.clock.warp_to(t0 + 1999);
    m.fire_timers();
    assert_eq!(m.space.read(regs + 0x04, 4), Ok(0));
    m.clock.warp_to(t0 + 2000);
    m.fire_timers();
    assert_eq!(m.space.read(regs + 0x04, 4), Ok(1), "expired");
    assert!(plic_pending(&m, dma_like));
    m.clock.warp_to(t0 + 4000);
    m.fire_timers();
    assert_eq!(m.space.read(regs + 0x18, 8), Ok(2), "periodic");
    assert_eq!(
        m.space.read(regs + 0x10, 8),
        Ok(t0 + 4000),
        "NOW is virtual time"
    );
    // GPIO input 0, driven like any device input.
    m.device(dma_like).expect("dev").sink.set_irq(0, true);
    assert_eq!(m.space.read(regs + 0x04, 4), Ok(3));
    // Snapshot through the SDK.
    let snap = with_plugin(&m, dma_like, |d| d.snapshot_save()).expect("snapshot");
    m.space.write(regs + 0x08, 8, 7).expect("PERIOD");
    with_plugin(&m, dma_like, |d| d.snapshot_load(&snap)).expect("restore");
    assert_eq!(m.space.read(regs + 0x08, 8), Ok(2000));
    // DT node with the SDK's extra property.
    let text = dts(&mut m);
    assert!(text.contains("timer@0 {"), "{text}");
    assert!(text.contains("compatible = \"breadboard,example-timer\";"));
    assert!(text.contains("clock-frequency = <0x3b9aca00>;"));
}

#[test]
fn test_rust_plugin_panic_breaks_only_that_device() {
    let mut reg = builtins();
    load(&rust_plugin("bb_timer_plugin"), &mut reg).expect("plugin loads");
    let mut m = virt_with(reg);
    let bad = add(&mut m, "bb-timer", "bad", &[("test-panic", "on")]);
    let good = add(&mut m, "bb-timer", "good", &[]);
    m.bind().expect("bind");
    let (rb, rg) = (base(&m, bad, 0), base(&m, good, 0));
    m.space.write(rb + 0x08, 8, 55).expect("PERIOD");
    assert_eq!(m.space.read(rb + 0x08, 8), Ok(55));
    m.space
        .write(rb + 0x40, 4, 0xdead)
        .expect("the write completes: the panic stays in the plugin");
    assert!(with_plugin(&m, bad, |d| d.is_broken()));
    assert_eq!(m.space.read(rb + 0x08, 8), Ok(0), "a broken device reads 0");
    m.space.write(rb + 0x08, 8, 77).expect("dropped");
    assert_eq!(m.space.read(rb + 0x08, 8), Ok(0));
    m.reset_devices();
    // The other instance of the same plugin and the rest of the machine carry on.
    m.space.write(rg + 0x08, 8, 99).expect("PERIOD");
    assert_eq!(m.space.read(rg + 0x08, 8), Ok(99));
    assert!(!with_plugin(&m, good, |d| d.is_broken()));
    assert_eq!(
        m.space.read(0x1000_0005, 1),
        Ok(0x60),
        "the built-in UART still answers"
    );
}
