//! The binary end to end: the embedded default, exit codes from the finisher, `-device` and
//! description errors (golden one-line messages, exit code 1, no panic), `dumpdtb` checked by
//! the real `dtc`.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::{breadboard, repo, tempdir};

const T: Duration = Duration::from_secs(60);

#[test]
fn test_no_arguments_runs_the_embedded_demo() {
    let r = breadboard(&[], T);
    assert_eq!(
        r.code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        r.stdout,
        r.stderr
    );
    // The firmware ends lines with CRLF, as terminals want.
    let out = &r.stdout.replace("\r\n", "\n");
    assert!(out.starts_with("breadboard demo firmware\n"), "{out}");
    assert!(
        out.contains("/soc/serial@10000000 compatible=\"ns16550a\""),
        "{out}"
    );
    assert!(out.contains("/soc/plic@c000000"), "{out}");
    assert!(
        out.contains("timer interrupt: mcause=0x8000000000000007"),
        "{out}"
    );
    assert!(out.contains("uart interrupt via plic: source 10"), "{out}");
    assert!(out.contains("demo: all checks passed"), "{out}");
}

#[test]
fn test_serial_to_file_and_smp() {
    let d = tempdir("serialfile");
    let out = d.join("out.txt");
    let spec = format!("file:{}", out.display());
    let r = breadboard(
        &[
            "-M",
            "virt",
            "-smp",
            "4",
            "-bios",
            "none",
            "-serial",
            &spec,
            "-kernel",
            "firmware/demo/demo.elf",
        ],
        T,
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(
        r.stdout.is_empty(),
        "serial went to the file, not stdout: {}",
        r.stdout
    );
    let text = std::fs::read_to_string(&out).expect("serial file");
    assert!(text.contains("/cpus/cpu@3 compatible=\"riscv\""), "{text}");
    assert!(text.contains("demo: all checks passed"), "{text}");
}

fn error_of(args: &[&str]) -> String {
    let r = breadboard(args, T);
    assert_eq!(r.code, Some(1), "expected exit 1 for {args:?}: {r:?}");
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected: {}", r.stderr);
    lines[0].to_string()
}

#[test]
fn test_golden_errors() {
    let d = tempdir("golden");
    let cases: Vec<(Vec<String>, String)> = vec![
        (vec!["-M".into(), "vert".into()],
         "breadboard: unsupported machine type 'vert' (use -M help to list machines, or give a .toml path)".into()),
        (vec!["-M".into(), "virt".into(), "-device".into(), "nosuch".into()],
         "breadboard: -device nosuch: 'nosuch' is not a valid device model name".into()),
        (vec!["-M".into(), "virt".into(), "-bios".into(), "none".into(), "-device".into(), "ns16550a,id=u1,bogus=1".into()],
         "breadboard: -device ns16550a,id=u1,bogus=1: Property 'ns16550a.bogus' not found".into()),
        (vec!["-M".into(), "virt".into(), "-device".into(), "sysbus-memory,size=lots".into()],
         "breadboard: -device sysbus-memory,size=lots: Property 'sysbus-memory.size' expects a size value, not 'lots'".into()),
        (vec!["-M".into(), "virt".into(), "-device".into(), "ns16550a,chardev=nope".into()],
         "breadboard: -device ns16550a,chardev=nope: Chardev 'nope' not found".into()),
        (vec!["-M".into(), "virt".into(), "-cpu".into(), "pentium".into()],
         "breadboard: unable to find CPU model 'pentium' (use -cpu help)".into()),
        (vec!["-M".into(), "virt".into(), "-smp".into(), "17".into()],
         "breadboard: Invalid SMP CPUs 17. The max CPUs supported by machine 'virt' is 16".into()),
        (vec!["-M".into(), "virt".into(), "-bios".into(), "none".into(), "-kernel".into(), "/nonexistent.elf".into()],
         "breadboard: could not load kernel '/nonexistent.elf': No such file or directory (os error 2)".into()),
        (vec!["-M".into(), "virt".into()],
         "breadboard: machine 'virt' needs firmware: give -bios FILE (OpenSBI's fw_dynamic.bin or fw_jump.elf, e.g. from Debian's 'opensbi' package: /usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin), or -bios none with -kernel for bare-metal programs".into()),
        (vec!["-frobnicate".into()], "breadboard: -frobnicate: invalid option".into()),
        (vec!["-M".into(), "virt".into(), "-s".into(), "-plugin".into(), "x.so".into()],
         "breadboard: -plugin: could not load plugin 'x.so': No such file or directory".into()),
    ];
    for (args, want) in cases {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(error_of(&a), want, "args {args:?}");
    }
    // A truncated ELF and a non-RISC-V ELF.
    let demo = std::fs::read(repo().join("firmware/demo/demo.elf")).expect("demo");
    let trunc = d.join("trunc.elf");
    std::fs::write(&trunc, &demo[..100]).expect("write");
    let t = trunc.display().to_string();
    let e = error_of(&["-M", "virt", "-bios", "none", "-kernel", &t]);
    assert!(
        e.starts_with(&format!("breadboard: kernel '{t}' is not a valid ELF file")),
        "{e}"
    );
    let mut x86 = demo.clone();
    x86[18] = 62;
    x86[19] = 0;
    let xp = d.join("x86.elf");
    std::fs::write(&xp, &x86).expect("write");
    let x = xp.display().to_string();
    assert_eq!(
        error_of(&["-M", "virt", "-bios", "none", "-kernel", &x]),
        format!("breadboard: kernel '{x}' is not a RISC-V ELF (e_machine 62)")
    );
    // An rv64 program on rv32 harts.
    assert_eq!(
        error_of(&[
            "-M",
            "virt",
            "-cpu",
            "rv32",
            "-bios",
            "none",
            "-kernel",
            "firmware/demo/demo.elf"
        ]),
        "breadboard: kernel 'firmware/demo/demo.elf' is a 64-bit ELF but the harts are 32-bit"
    );
}

#[test]
fn test_description_file_errors_name_file_and_line() {
    let d = tempdir("desc");
    let p = d.join("board.toml");
    std::fs::write(
        &p,
        "[machine]\nname = \"b\"\nram-base = 0x80000000\ndefault-ram = \"1M\"\n\n[[device]]\nname = \"u\"\ntype = \"ns16550a\"\nmmio = [0x10000000]\nirq = [\"plic:1\"]\nprops = { chardev = \"serial0\", baud = 9600 }\n",
    )
    .expect("write");
    let ps = p.display().to_string();
    assert_eq!(
        error_of(&["-M", &ps, "-bios", "none"]),
        "breadboard: u: Property 'ns16550a.baud' not found"
    );
    std::fs::write(&p, "[machine]\nname = \"b\"\nram-bsae = 1\n").expect("write");
    assert_eq!(
        error_of(&["-M", &ps]),
        format!(
            "breadboard: {ps}:3:1: unknown field `ram-bsae`, expected one of `name`, `description`, `compatible`, `model`, `ram-base`, `default-ram`, `max-cpus`, `stdout-path`, `reset-rom`, `firmware-required`, `phandle-start`, `allow-dynamic`, `plugins`"
        )
    );
    std::fs::write(
        &p,
        "[machine]\nname = \"b\"\n[[device]]\nname = \"a\"\ntype = \"sysbus-memory\"\nmmio = [0x1000]\nprops = { size = \"0x2000\" }\n[[device]]\nname = \"c\"\ntype = \"sysbus-memory\"\nmmio = [0x2000]\nprops = { size = \"0x1000\" }\n",
    )
    .expect("write");
    assert_eq!(
        error_of(&["-M", &ps, "-bios", "none"]),
        "breadboard: region 'c' at 0x2000..0x3000 overlaps 'a' at 0x1000..0x3000"
    );
}

#[test]
fn test_user_board_description_runs_firmware() {
    // The demo needs a UART, CLINT, PLIC and finisher at virt's addresses: describe them.
    let d = tempdir("board");
    let p = d.join("board.toml");
    let virt =
        std::fs::read_to_string(repo().join("crates/platform/machines/virt.toml")).expect("virt");
    let text = virt
        .replace("name = \"virt\"", "name = \"myboard\"")
        .replace("firmware-required = true", "firmware-required = false");
    std::fs::write(&p, text).expect("write");
    let ps = p.display().to_string();
    let r = breadboard(&["-M", &ps, "-kernel", "firmware/demo/demo.elf"], T);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stdout.contains("demo: all checks passed"));
}

fn dtc_decompile(dtb: &std::path::Path) -> String {
    let out = Command::new("dtc")
        .args(["-I", "dtb", "-O", "dts"])
        .arg(dtb)
        .output()
        .expect("dtc must be installed (scripts/test.sh installs device-tree-compiler)");
    assert!(
        out.status.success(),
        "dtc failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let warnings = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(warnings.trim().is_empty(), "dtc warnings:\n{warnings}");
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn test_dumpdtb_is_valid_and_matches_qemu_virt_nodes() {
    let d = tempdir("dumpdtb");
    let f = d.join("virt.dtb");
    let arg = format!("virt,dumpdtb={}", f.display());
    let r = breadboard(&["-M", &arg, "-smp", "2"], T);
    assert_eq!(r.code, Some(0), "{r:?}");
    let dts = dtc_decompile(&f);
    for needle in [
        "compatible = \"riscv-virtio\";",
        "stdout-path = \"/soc/serial@10000000\";",
        "memory@80000000 {",
        "reg = <0x00 0x80000000 0x00 0x8000000>;",
        "timebase-frequency = <0x989680>;",
        "cpu@1 {",
        "compatible = \"riscv,cpu-intc\";",
        "platform-bus@4000000 {",
        "compatible = \"qemu,platform\\0simple-bus\";",
        "serial@10000000 {",
        "interrupts = <0x0a>;",
        "compatible = \"sifive,plic-1.0.0\\0riscv,plic0\";",
        "riscv,ndev = <0x60>;",
        "compatible = \"sifive,clint0\\0riscv,clint0\";",
        "compatible = \"sifive,test1\\0sifive,test0\\0syscon\";",
        "compatible = \"syscon-poweroff\";",
        "value = <0x5555>;",
        "rtc@101000 {",
        "compatible = \"google,goldfish-rtc\";",
    ] {
        assert!(dts.contains(needle), "missing {needle:?} in:\n{dts}");
    }
}

#[test]
fn test_help_outputs() {
    let r = breadboard(&["-device", "help"], T);
    assert_eq!(r.code, Some(0));
    assert!(r.stdout.contains("name \"ns16550a\""), "{}", r.stdout);
    let r = breadboard(&["-device", "sysbus-memory,help"], T);
    assert_eq!(r.code, Some(0));
    assert!(r.stdout.contains("size=<size> (required)"), "{}", r.stdout);
    let r = breadboard(&["-M", "help"], T);
    assert!(
        r.stdout.contains("virt") && r.stdout.contains("none"),
        "{}",
        r.stdout
    );
    let r = breadboard(&["--version"], T);
    assert_eq!(r.code, Some(0));
    assert!(r.stdout.contains("breadboard"), "{}", r.stdout);
}

#[test]
fn test_machine_dump_and_dtb_board_round_trip_to_the_same_tree() {
    let d = tempdir("roundtrip");
    let p = |n: &str| d.join(n).display().to_string();
    let run_ok = |args: &[&str]| {
        let r = breadboard(args, T);
        assert_eq!(r.code, Some(0), "{args:?}: {r:?}");
    };
    run_ok(&[
        "-M",
        &format!("virt,dumpdtb={}", p("virt.dtb")),
        "-smp",
        "2",
    ]);
    // Description export and reload.
    run_ok(&["-M", &format!("virt,dump={}", p("virt.toml")), "-smp", "2"]);
    run_ok(&[
        "-M",
        &format!("{},dumpdtb={}", p("virt.toml"), p("toml.dtb")),
        "-smp",
        "2",
    ]);
    // A machine built from the device tree.
    run_ok(&[
        "-M",
        &format!(
            "none,dtb-board={},dumpdtb={}",
            p("virt.dtb"),
            p("board.dtb")
        ),
    ]);
    let a = std::fs::read(p("virt.dtb")).expect("virt.dtb");
    assert_eq!(
        std::fs::read(p("toml.dtb")).expect("toml.dtb"),
        a,
        "dump=FILE round trip"
    );
    assert_eq!(
        std::fs::read(p("board.dtb")).expect("board.dtb"),
        a,
        "dtb-board round trip"
    );
    dtc_decompile(&d.join("board.dtb"));
}
