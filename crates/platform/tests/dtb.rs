//! User device trees: the DTB parser against every tree the machine writes, a table of
//! malformed blobs and a mutation loop; the `-dtb` merge; `-machine dtb-board=FILE`. Every blob
//! these tests produce is checked with the real `dtc` (no warnings allowed).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::rc::Rc;

use breadboard_core::{ChardevRegistry, DriveRegistry, TypeRegistry};
use breadboard_platform::dtb::merge::{MergeInput, merge};
use breadboard_platform::dtb::{Block, BoardError, Dtb, DtbErrorKind, Node, description_from_dtb};
use breadboard_platform::{BootOptions, DeviceOption, Firmware, Image, Machine, MachineOptions};

// ---------------------------------------------------------------------------------------------
// Helpers

fn registry() -> TypeRegistry {
    let mut r = TypeRegistry::new();
    breadboard_devices::register_builtin(&mut r);
    r
}

fn machine(name: &str, smp: Option<u32>, ram: Option<u64>, devices: &[(&str, &str)]) -> Machine {
    let opts = MachineOptions {
        machine: name.into(),
        smp,
        ram_size: ram,
        ..Default::default()
    };
    let mut m = Machine::create(
        &opts,
        registry(),
        Rc::new(ChardevRegistry::default()),
        Rc::new(DriveRegistry::default()),
    )
    .expect("machine builds");
    for (driver, id) in devices {
        m.add_user_device(&DeviceOption {
            driver: (*driver).into(),
            id: Some((*id).into()),
            props: vec![],
        })
        .expect("device added");
    }
    m
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bb-dtb-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("tempdir");
    d
}

fn dtc(args: &[&str], input: &[u8]) -> (Vec<u8>, String) {
    let mut child = Command::new("dtc")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dtc must be installed (scripts/test.sh installs device-tree-compiler)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("feed dtc");
    let out = child.wait_with_output().expect("dtc runs");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "dtc {args:?} failed: {stderr}");
    (out.stdout, stderr)
}

/// `dtc -I dtb -O dts` must accept the blob without a warning; returns the source.
fn dtc_check(blob: &[u8]) -> String {
    let (dts, warnings) = dtc(&["-I", "dtb", "-O", "dts", "-"], blob);
    assert!(warnings.trim().is_empty(), "dtc warnings:\n{warnings}");
    String::from_utf8(dts).expect("utf-8 dts")
}

/// A DTS file from tests/data compiled with `dtc -I dts -O dtb` (no warnings allowed).
fn compile(name: &str) -> Vec<u8> {
    compile_text(&std::fs::read_to_string(data(name)).expect("dts"))
}

fn compile_text(dts: &str) -> Vec<u8> {
    let (blob, warnings) = dtc(&["-I", "dts", "-O", "dtb", "-"], dts.as_bytes());
    assert!(warnings.trim().is_empty(), "dtc warnings:\n{warnings}");
    blob
}

fn demo() -> Image {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../firmware/demo/demo.elf");
    Image {
        name: path.into(),
        data: std::fs::read(path).expect("demo.elf"),
    }
}

fn user_image(name: &str, blob: Vec<u8>) -> Image {
    Image {
        name: name.into(),
        data: blob,
    }
}

/// Finishes `m` booting `-bios none -kernel demo.elf` with the given `-dtb`; returns the
/// DTB the machine placed in memory.
fn boot_with_dtb(
    m: &mut Machine,
    dtb: Image,
    append: Option<&str>,
    initrd: bool,
) -> Result<Vec<u8>, String> {
    let boot = BootOptions {
        firmware: Firmware::None,
        kernel: Some(demo()),
        initrd: initrd.then(|| Image {
            name: "initrd".into(),
            data: vec![0x5a; 8192],
        }),
        append: append.map(str::to_string),
        dtb: Some(dtb),
    };
    m.finish(&boot).map_err(|e| e.to_string())?;
    let (addr, size) = m
        .boot
        .as_ref()
        .and_then(|b| b.layout.dtb)
        .expect("dtb placed");
    let mut blob = vec![0u8; usize::try_from(size).unwrap()];
    m.dma.read(addr, &mut blob).expect("read dtb");
    assert_eq!(
        Some(&blob),
        m.boot.as_ref().map(|b| &b.dtb),
        "the DTB in RAM is the merged one"
    );
    Ok(blob)
}

fn parse(blob: &[u8]) -> Dtb {
    Dtb::parse(blob).expect("blob parses")
}

fn node<'a>(t: &'a Dtb, path: &str) -> &'a Node {
    t.node(path).unwrap_or_else(|| panic!("no node {path}"))
}

// ---------------------------------------------------------------------------------------------
// Parser: every DTB the machine generates reads back and writes back byte for byte.

/// A few command lines' worth of generated trees.
fn generated_dtbs() -> Vec<(String, Vec<u8>)> {
    type Config<'a> = (&'a str, Option<u32>, Option<u64>, Vec<(&'a str, &'a str)>);
    let configs: Vec<Config<'_>> = vec![
        ("virt", Some(1), None, vec![]),
        ("virt", Some(2), None, vec![]),
        ("virt", Some(4), Some(512 << 20), vec![]),
        ("virt", Some(1), None, vec![("ns16550a", "uart1")]),
        (
            "virt",
            Some(2),
            None,
            vec![
                ("ns16550a", "uart1"),
                ("goldfish-rtc", "rtc1"),
                ("virtio-mmio", "vm1"),
                ("plic", "plic2"),
            ],
        ),
        ("virt", Some(1), None, vec![("virtio-rng-device", "rng0")]),
        ("none", Some(1), None, vec![]),
    ];
    configs
        .into_iter()
        .map(|(name, smp, ram, devs)| {
            let mut m = machine(name, smp, ram, &devs);
            let label = format!("{name} smp={smp:?} {devs:?}");
            (label, m.dump_dtb(Some("console=ttyS0")).expect("dumpdtb"))
        })
        .collect()
}

#[test]
fn test_parser_round_trips_every_generated_dtb_byte_for_byte() {
    for (label, blob) in generated_dtbs() {
        let tree = Dtb::parse(&blob).unwrap_or_else(|e| panic!("{label}: {e}"));
        let again = tree.to_blob().unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(again, blob, "{label}: written back identically");
        assert_eq!(parse(&again), tree, "{label}");
        dtc_check(&again);
    }
}

#[test]
fn test_parser_reads_dtc_output_with_reservations_and_version_16() {
    let dts =
        "/dts-v1/;\n/memreserve/ 0x80000000 0x10000;\n/ { model = \"m\"; a { b = <1 2>; }; };\n";
    let blob = compile_text(dts);
    let t = parse(&blob);
    assert_eq!(t.reserved, vec![(0x8000_0000, 0x10000)]);
    assert_eq!(node(&t, "/").prop_str("model"), Some("m"));
    assert_eq!(node(&t, "/a").prop_cells("b"), Some(vec![1, 2]));
    let out = t.to_blob().expect("write");
    assert_eq!(parse(&out), t);
    dtc_check(&out);
    let dts = "/dts-v1/;\n/ { x = \"y\"; };\n";
    let (blob, _) = dtc(&["-I", "dts", "-O", "dtb", "-V", "16", "-"], dts.as_bytes());
    assert_eq!(
        node(&parse(&blob), "/").prop_str("x"),
        Some("y"),
        "version 16 blobs read"
    );
}

#[test]
fn test_property_helpers_decode_reg_and_phandles() {
    let mut m = machine("virt", Some(2), None, &[("ns16550a", "uart1")]);
    let t = parse(&m.dump_dtb(None).unwrap());
    assert_eq!(
        t.reg("/soc/serial@10000000").unwrap(),
        vec![(0x1000_0000, 0x100)]
    );
    assert_eq!(
        t.reg("/platform-bus@4000000/serial@0").unwrap(),
        vec![(0, 0x100)]
    );
    assert_eq!(
        t.reg_absolute("/platform-bus@4000000/serial@0").unwrap(),
        vec![(0x400_0000, 0x100)],
        "bus offset translated through ranges"
    );
    let plic = node(&t, "/soc/plic@c000000");
    assert_eq!(plic.compatible(), vec!["sifive,plic-1.0.0", "riscv,plic0"]);
    assert_eq!(plic.prop_u32("riscv,ndev"), Some(96));
    let ph = plic.phandle().expect("plic phandle");
    assert_eq!(t.find_phandle(ph).as_deref(), Some("/soc/plic@c000000"));
    assert_eq!(
        t.interrupt_parent("/platform-bus@4000000/serial@0"),
        Some(ph)
    );
    assert_eq!(
        t.phandles().unwrap().len(),
        6,
        "2 cpus, 2 intcs, test, plic"
    );
    assert_eq!(t.max_phandle(), 6);
    assert_eq!(
        node(&t, "/cpus/cpu@1").prop_str("riscv,isa"),
        Some("rv64imafdc_zicsr_zifencei_zihintpause_sstc")
    );
}

// ---------------------------------------------------------------------------------------------
// Parser: malformed blobs. A tiny assembler builds each one exactly.

const HEADER: usize = 40;

fn word(v: u32) -> Vec<u8> {
    v.to_be_bytes().to_vec()
}

fn pad4(mut v: Vec<u8>) -> Vec<u8> {
    while !v.len().is_multiple_of(4) {
        v.push(0);
    }
    v
}

fn begin(name: &[u8]) -> Vec<u8> {
    let mut v = word(1);
    v.extend_from_slice(name);
    v.push(0);
    pad4(v)
}

fn end_node() -> Vec<u8> {
    word(2)
}

fn prop(len: u32, nameoff: u32, value: &[u8]) -> Vec<u8> {
    let mut v = word(3);
    v.extend(word(len));
    v.extend(word(nameoff));
    v.extend_from_slice(value);
    pad4(v)
}

fn fin() -> Vec<u8> {
    word(9)
}

/// The strings block every assembled blob uses: "model" at 0, "compatible" at 6.
const STRINGS: &[u8] = b"model\0compatible\0";

/// Header + empty reservation map + `structure` + strings.
fn assemble(structure: &[u8]) -> Vec<u8> {
    let rsv = HEADER;
    let off_struct = rsv + 16;
    let off_strings = off_struct + structure.len();
    let total = off_strings + STRINGS.len();
    let mut b = Vec::new();
    for v in [
        0xd00d_feed,
        total as u32,
        off_struct as u32,
        off_strings as u32,
        rsv as u32,
        17,
        16,
        0,
        STRINGS.len() as u32,
        structure.len() as u32,
    ] {
        b.extend(word(v));
    }
    b.extend([0u8; 16]);
    b.extend_from_slice(structure);
    b.extend_from_slice(STRINGS);
    b
}

fn tokens(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

/// A valid blob: `/ { model = "m"; child { }; }`.
fn valid() -> Vec<u8> {
    assemble(&tokens(&[
        begin(b""),
        prop(2, 0, b"m\0"),
        begin(b"child"),
        end_node(),
        end_node(),
        fin(),
    ]))
}

fn set_field(mut b: Vec<u8>, index: usize, v: u32) -> Vec<u8> {
    b[index * 4..index * 4 + 4].copy_from_slice(&v.to_be_bytes());
    b
}

#[test]
fn test_assembled_valid_blob_parses_and_passes_dtc() {
    let b = valid();
    dtc_check(&b);
    let t = parse(&b);
    assert_eq!(node(&t, "/").prop_str("model"), Some("m"));
    assert!(t.node("/child").is_some());
    // NOP tokens anywhere in the stream are skipped.
    let nop = word(4);
    let with_nops = assemble(&tokens(&[
        nop.clone(),
        begin(b""),
        nop.clone(),
        prop(2, 0, b"m\0"),
        begin(b"child"),
        nop.clone(),
        end_node(),
        end_node(),
        nop,
        fin(),
    ]));
    assert_eq!(parse(&with_nops), t);
}

#[test]
fn test_malformed_blobs_give_specific_errors() {
    use DtbErrorKind as K;
    let deep = {
        let mut parts = vec![begin(b"")];
        for _ in 0..64 {
            parts.push(begin(b"n"));
        }
        for _ in 0..65 {
            parts.push(end_node());
        }
        parts.push(fin());
        assemble(&tokens(&parts))
    };
    let ok_depth = {
        let mut parts = vec![begin(b"")];
        for _ in 0..63 {
            parts.push(begin(b"n"));
        }
        for _ in 0..64 {
            parts.push(end_node());
        }
        parts.push(fin());
        assemble(&tokens(&parts))
    };
    assert!(Dtb::parse(&ok_depth).is_ok(), "64 levels are accepted");
    let unterminated_rsv = {
        // Reservation map at the very end of the blob, never terminated.
        let mut b = valid();
        b.resize(b.len().next_multiple_of(8), 0);
        let at = b.len();
        b.extend(word(0));
        b.extend(word(1));
        b.extend([0u8; 8]);
        let b = set_field(b, 4, at as u32);
        set_field(b.clone(), 1, b.len() as u32)
    };
    let long_name = vec![b'a'; 300];
    let cases: Vec<(&str, Vec<u8>, DtbErrorKind)> = vec![
        ("empty file", vec![], K::TruncatedHeader { len: 0 }),
        (
            "three bytes",
            vec![0xd0, 0x0d, 0xfe],
            K::TruncatedHeader { len: 3 },
        ),
        (
            "bad magic",
            set_field(valid(), 0, 0xfeed_d00d),
            K::BadMagic { found: 0xfeed_d00d },
        ),
        (
            "truncated header",
            valid()[..20].to_vec(),
            K::TruncatedHeader { len: 20 },
        ),
        (
            "totalsize past the file",
            set_field(valid(), 1, valid().len() as u32 + 1),
            K::TotalSizePastEnd {
                totalsize: valid().len() as u32 + 1,
                len: valid().len(),
            },
        ),
        (
            "totalsize below the header",
            set_field(valid(), 1, 12),
            K::TotalSizeTooSmall(12),
        ),
        (
            "huge totalsize",
            set_field(valid(), 1, u32::MAX),
            K::TooLarge(u32::MAX),
        ),
        ("version 15", set_field(valid(), 5, 15), K::OldVersion(15)),
        (
            "needs a newer reader",
            set_field(valid(), 6, 18),
            K::IncompatibleVersion(18),
        ),
        (
            "struct offset misaligned",
            set_field(valid(), 2, 58),
            K::Misaligned {
                block: Block::Structure,
                align: 4,
            },
        ),
        (
            "reservation map misaligned",
            set_field(valid(), 4, 44),
            K::Misaligned {
                block: Block::MemoryReservations,
                align: 8,
            },
        ),
        (
            "struct size past the end",
            set_field(valid(), 9, 0xffff_0000),
            K::BlockOutOfRange {
                block: Block::Structure,
                start: 56,
                end: 56 + 0xffff_0000,
                totalsize: valid().len() as u32,
            },
        ),
        (
            "strings offset past the end",
            set_field(valid(), 3, 0x10_0000),
            K::BlockOutOfRange {
                block: Block::Strings,
                start: 0x10_0000,
                end: 0x10_0000 + STRINGS.len() as u64,
                totalsize: valid().len() as u32,
            },
        ),
        (
            "struct overlaps strings",
            set_field(valid(), 9, valid().len() as u32 - 56),
            K::BlocksOverlap {
                a: Block::Structure,
                b: Block::Strings,
            },
        ),
        (
            "struct overlaps the header",
            set_field(set_field(valid(), 2, 16), 9, 8),
            K::BlocksOverlap {
                a: Block::Header,
                b: Block::Structure,
            },
        ),
        (
            "unterminated reservation map",
            unterminated_rsv,
            K::UnterminatedReservations,
        ),
        (
            "unknown token",
            assemble(&tokens(&[begin(b""), word(7), end_node(), fin()])),
            K::BadToken(7),
        ),
        (
            "unterminated node name",
            assemble(&tokens(&[begin(b""), word(1), b"abcd".to_vec()])),
            K::UnterminatedNodeName,
        ),
        (
            "node name too long",
            assemble(&tokens(&[
                begin(b""),
                begin(&long_name),
                end_node(),
                end_node(),
                fin(),
            ])),
            K::NameTooLong,
        ),
        (
            "non-UTF-8 node name",
            assemble(&tokens(&[
                begin(b""),
                begin(b"\xff\xfe"),
                end_node(),
                end_node(),
                fin(),
            ])),
            K::NameNotUtf8,
        ),
        (
            "string offset out of range",
            assemble(&tokens(&[
                begin(b""),
                prop(0, 0x1000, b""),
                end_node(),
                fin(),
            ])),
            K::NameOffsetOutOfRange {
                nameoff: 0x1000,
                size: STRINGS.len() as u32,
            },
        ),
        (
            "unterminated property name",
            {
                // Strings block cut before the NUL of "compatible".
                let b = assemble(&tokens(&[begin(b""), prop(0, 6, b""), end_node(), fin()]));
                set_field(b, 8, STRINGS.len() as u32 - 1)
            },
            K::UnterminatedPropertyName(6),
        ),
        (
            "empty property name",
            assemble(&tokens(&[begin(b""), prop(0, 5, b""), end_node(), fin()])),
            K::EmptyPropertyName("/".into()),
        ),
        (
            "property past the block",
            assemble(&tokens(&[
                begin(b""),
                prop(64, 0, b"m\0"),
                end_node(),
                fin(),
            ])),
            K::PropertyPastEnd {
                name: "model".into(),
                len: 64,
            },
        ),
        (
            "huge property length",
            assemble(&tokens(&[
                begin(b""),
                prop(u32::MAX, 0, b""),
                end_node(),
                fin(),
            ])),
            K::PropertyPastEnd {
                name: "model".into(),
                len: u32::MAX,
            },
        ),
        (
            "truncated property header",
            assemble(&tokens(&[begin(b""), word(3), word(4)])),
            K::TruncatedToken,
        ),
        ("nesting too deep", deep, K::TooDeep),
        (
            "missing END",
            assemble(&tokens(&[begin(b""), end_node()])),
            K::MissingEnd,
        ),
        (
            "END inside a node",
            assemble(&tokens(&[begin(b""), begin(b"a"), end_node(), fin()])),
            K::UnclosedNode("/".into()),
        ),
        (
            "block ends inside a node",
            assemble(&tokens(&[begin(b""), begin(b"a")])),
            K::UnclosedNode("/a".into()),
        ),
        (
            "stray end of node",
            assemble(&tokens(&[end_node(), fin()])),
            K::UnbalancedEndNode,
        ),
        (
            "property before the root",
            assemble(&tokens(&[prop(0, 0, b""), fin()])),
            K::PropertyOutsideNode,
        ),
        (
            "second root",
            assemble(&tokens(&[
                begin(b""),
                end_node(),
                begin(b""),
                end_node(),
                fin(),
            ])),
            K::SecondRoot,
        ),
        (
            "named root",
            assemble(&tokens(&[begin(b"root"), end_node(), fin()])),
            K::NamedRoot("root".into()),
        ),
        (
            "empty child name",
            assemble(&tokens(&[
                begin(b""),
                begin(b""),
                end_node(),
                end_node(),
                fin(),
            ])),
            K::EmptyNodeName("/".into()),
        ),
        (
            "slash in a node name",
            assemble(&tokens(&[
                begin(b""),
                begin(b"a/b"),
                end_node(),
                end_node(),
                fin(),
            ])),
            K::SlashInNodeName("a/b".into()),
        ),
        (
            "property twice",
            assemble(&tokens(&[
                begin(b""),
                prop(2, 0, b"m\0"),
                prop(2, 0, b"n\0"),
                end_node(),
                fin(),
            ])),
            K::DuplicateProperty {
                path: "/".into(),
                name: "model".into(),
            },
        ),
        (
            "node twice",
            assemble(&tokens(&[
                begin(b""),
                begin(b"a"),
                end_node(),
                begin(b"a"),
                end_node(),
                end_node(),
                fin(),
            ])),
            K::DuplicateNode("/a".into()),
        ),
        ("no root", assemble(&fin()), K::NoRoot),
        (
            "token cut short",
            assemble(&tokens(&[begin(b""), end_node(), vec![0, 0]])),
            K::TruncatedToken,
        ),
    ];
    assert!(cases.len() >= 20);
    for (what, blob, expected) in cases {
        match Dtb::parse(&blob) {
            Ok(_) => panic!("{what}: parsed"),
            Err(e) => {
                assert_eq!(e.kind, expected, "{what}: {e}");
                assert!(
                    e.offset <= blob.len(),
                    "{what}: offset {} past the blob",
                    e.offset
                );
                assert!(
                    e.to_string()
                        .starts_with("malformed device tree blob at byte 0x"),
                    "{e}"
                );
            }
        }
    }
}

#[test]
fn test_error_offsets_point_at_the_defect() {
    let blob = assemble(&tokens(&[begin(b""), word(7), end_node(), fin()]));
    let e = Dtb::parse(&blob).unwrap_err();
    assert_eq!(
        e.offset,
        HEADER + 16 + 8,
        "the unknown token, after the root's BEGIN_NODE"
    );
    assert_eq!(
        e.to_string(),
        "malformed device tree blob at byte 0x40: unknown token 0x7"
    );
    let e = Dtb::parse(&set_field(valid(), 0, 0)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "malformed device tree blob at byte 0x0: bad magic 0x00000000 (a DTB starts with 0xd00dfeed)"
    );
}

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut b = base.to_vec();
    for _ in 0..1 + rng.below(2) {
        match rng.below(10) {
            0..=2 => {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            3 => {
                let i = rng.below(b.len());
                b[i] = rng.next() as u8;
            }
            4..=6 => {
                // An interesting word at an aligned offset (lengths, offsets, tokens).
                let i = rng.below(b.len() / 4) * 4;
                let v: u32 = match rng.below(8) {
                    0 => 0,
                    1 => u32::MAX,
                    2 => b.len() as u32,
                    3 => 1 + rng.below(9) as u32,
                    4 => 0x8000_0000,
                    5 => rng.below(b.len()) as u32,
                    6 => (b.len() as u32).wrapping_sub(4),
                    _ => rng.next() as u32,
                };
                if i + 4 <= b.len() {
                    b[i..i + 4].copy_from_slice(&v.to_be_bytes());
                }
            }
            7 => {
                let n = rng.below(b.len());
                b.truncate(n);
                if b.is_empty() {
                    return b;
                }
            }
            8 => {
                // Duplicate a slice of the structure (nesting, repeated props).
                let i = rng.below(b.len());
                let n = rng.below(64).min(b.len() - i);
                let chunk = b[i..i + n].to_vec();
                let at = rng.below(b.len());
                b.splice(at..at, chunk);
            }
            _ => {
                let i = rng.below(b.len());
                let n = rng.below(16).min(b.len() - i);
                b.drain(i..i + n);
                if b.is_empty() {
                    return b;
                }
            }
        }
    }
    b
}

#[test]
fn test_ten_thousand_mutated_dtbs_never_panic() {
    // The user file: virt's own tree. The machine adds a dynamic UART to it.
    let base = machine("virt", Some(2), None, &[])
        .dump_dtb(Some("console=ttyS0"))
        .unwrap();
    let generated = machine("virt", Some(2), None, &[("ns16550a", "uart1")])
        .dump_dtb(None)
        .unwrap();
    let reg = registry();
    let input = MergeInput {
        generated: &generated,
        platform_bus: Some((0x400_0000, 0x200_0000)),
        ram: vec![(0x8000_0000, 128 << 20)],
        bootargs: Some("console=ttyS1"),
        initrd: Some((0x8400_0000, 0x8400_1000)),
        stdout_path: Some("/soc/serial@10000000"),
        devices: vec![(0x400_0000, "uart1".into())],
    };
    let mut rng = Rng(0x5eed_b4ea_db0a_4d00);
    let (mut parsed, mut merged, mut boards) = (0, 0, 0);
    for _ in 0..10_000 {
        let blob = mutate(&mut rng, &base);
        if let Ok(t) = Dtb::parse(&blob) {
            parsed += 1;
            if let Ok(out) = t.to_blob() {
                assert_eq!(
                    Dtb::parse(&out).as_ref(),
                    Ok(&t),
                    "what is written reads back the same"
                );
            }
        }
        if merge(&blob, &input).is_ok() {
            merged += 1;
        }
        if description_from_dtb(&blob, "fuzz.dtb", &reg, true).is_ok() {
            boards += 1;
        }
    }
    // The mutations must not all be rejected at the header, or this tests little.
    eprintln!("of 10000 mutants: {parsed} parsed, {merged} merged, {boards} made boards");
    assert!(merge(&base, &input).is_ok(), "the unmutated file merges");
    assert!(parsed > 1000, "only {parsed} mutants parsed");
    assert!(
        merged > 100 && boards > 100,
        "merged {merged}, boards {boards}"
    );
}

// ---------------------------------------------------------------------------------------------
// -dtb FILE merge

#[test]
fn test_merge_adds_dynamic_uart_under_a_new_platform_bus_and_fills_chosen() {
    let user = compile("user.dts");
    let user_tree = parse(&user);
    let mut m = machine("virt", Some(1), None, &[("ns16550a", "uart1")]);
    let blob = boot_with_dtb(
        &mut m,
        user_image("user.dtb", user),
        Some("console=ttyS1"),
        true,
    )
    .unwrap();
    let dts = dtc_check(&blob);
    let t = parse(&blob);

    // The user's tree is kept.
    assert_eq!(
        node(&t, "/").prop_str("model"),
        Some("ACME virt-like board (user DTB)")
    );
    assert_eq!(
        node(&t, "/acme-marker").prop_str("acme,note"),
        Some("kept by the merge")
    );
    assert_eq!(
        node(&t, "/soc"),
        node(&user_tree, "/soc"),
        "user nodes unchanged"
    );

    // The dynamic UART sits under a platform bus made like the machine's.
    let plic = node(&t, "/soc/plic@c000000")
        .phandle()
        .expect("user plic phandle");
    let bus = node(&t, "/platform-bus@4000000");
    assert_eq!(bus.compatible(), vec!["qemu,platform", "simple-bus"]);
    assert_eq!(
        bus.prop_cells("ranges"),
        Some(vec![0, 0, 0x400_0000, 0x200_0000])
    );
    assert_eq!(bus.prop_u32("interrupt-parent"), Some(plic));
    let uart = node(&t, "/platform-bus@4000000/serial@0");
    assert_eq!(uart.compatible(), vec!["ns16550a"]);
    assert_eq!(
        uart.prop_u32("interrupt-parent"),
        Some(plic),
        "pointed at the user's PLIC"
    );
    assert_eq!(
        uart.prop_cells("interrupts"),
        Some(vec![64]),
        "first platform-bus IRQ"
    );
    assert_eq!(
        t.reg_absolute("/platform-bus@4000000/serial@0").unwrap(),
        vec![(0x400_0000, 0x100)]
    );

    // /chosen: -append replaces the file's bootargs (QEMU's behaviour), the initrd is where
    // it was loaded, and the machine's stdout-path is added since the file has none.
    let chosen = node(&t, "/chosen");
    assert_eq!(chosen.prop_str("bootargs"), Some("console=ttyS1"));
    let (start, end) = m
        .boot
        .as_ref()
        .unwrap()
        .layout
        .initrd
        .expect("initrd placed");
    assert_eq!(chosen.prop_u64("linux,initrd-start"), Some(start));
    assert_eq!(chosen.prop_u64("linux,initrd-end"), Some(end));
    assert_eq!(chosen.prop_str("stdout-path"), Some("/soc/serial@10000000"));
    assert!(dts.contains("serial@0 {"), "{dts}");
}

#[test]
fn test_merge_without_append_keeps_the_users_bootargs() {
    let mut m = machine("virt", Some(1), None, &[]);
    let blob = boot_with_dtb(
        &mut m,
        user_image("user.dtb", compile("user.dts")),
        None,
        false,
    )
    .unwrap();
    dtc_check(&blob);
    let t = parse(&blob);
    assert_eq!(
        node(&t, "/chosen").prop_str("bootargs"),
        Some("console=ttyS0 from-user-dtb")
    );
    assert!(
        t.node("/platform-bus@4000000").is_none(),
        "no dynamic device, no bus node"
    );
    assert!(!node(&t, "/chosen").has_prop("linux,initrd-start"));
}

#[test]
fn test_merge_renumbers_a_dynamic_devices_phandle_the_user_tree_uses() {
    let user = compile("user.dts");
    let user_phandles = parse(&user).phandles().unwrap();
    assert!(user_phandles.contains_key(&5), "the file claims phandle 5");
    // A cascaded PLIC on the platform bus: an interrupt controller, so its node has a
    // phandle (5 in the machine's own tree, as in the file), and its outputs go to the main
    // PLIC through `interrupts-extended`.
    let mut m = machine("virt", Some(1), None, &[("plic", "plic2")]);
    let own = parse(&m.dump_dtb(None).unwrap());
    assert_eq!(
        node(&own, "/platform-bus@4000000/plic@0").phandle(),
        Some(5)
    );
    let blob = boot_with_dtb(&mut m, user_image("user.dtb", user), None, false).unwrap();
    dtc_check(&blob);
    let t = parse(&blob);
    let cascaded = node(&t, "/platform-bus@4000000/plic@0");
    let p = cascaded.phandle().expect("phandle");
    let max_user = *user_phandles.keys().last().unwrap();
    assert_eq!(p, max_user + 1, "renumbered just above the file's highest");
    assert_eq!(
        node(&t, "/acme-marker").phandle(),
        Some(5),
        "the file's phandle is untouched"
    );
    let main = node(&t, "/soc/plic@c000000").phandle().unwrap();
    assert_eq!(
        cascaded.prop_cells("interrupts-extended"),
        Some(vec![main, 64, main, 65]),
        "its outputs point at the file's PLIC"
    );
    t.phandles().expect("no duplicate phandles after the merge");
}

#[test]
fn test_merge_uses_the_users_platform_bus_node() {
    let mut m = machine(
        "virt",
        Some(1),
        Some(64 << 20),
        &[("ns16550a", "uart1"), ("goldfish-rtc", "rtc1")],
    );
    let blob = boot_with_dtb(
        &mut m,
        user_image("pb.dtb", compile("user-platform-bus.dts")),
        None,
        false,
    )
    .unwrap();
    dtc_check(&blob);
    let t = parse(&blob);
    let bus = node(&t, "/platform-bus@4000000");
    let names: Vec<&str> = bus.children.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        vec!["gpio@10000", "serial@0", "rtc@1000"],
        "user's node first, then the dynamic ones"
    );
    let plic = node(&t, "/interrupt-controller@c000000").phandle().unwrap();
    assert_eq!(
        node(&t, "/platform-bus@4000000/rtc@1000").prop_u32("interrupt-parent"),
        Some(plic)
    );
    assert_eq!(
        node(&t, "/platform-bus@4000000/rtc@1000").prop_cells("interrupts"),
        Some(vec![65])
    );
    assert!(
        t.node("/chosen").is_some(),
        "created for bootargs/initrd/stdout-path"
    );
}

#[test]
fn test_merge_unit_address_conflict_names_the_node_and_the_device() {
    let dts = std::fs::read_to_string(data("user-platform-bus.dts"))
        .unwrap()
        .replace("gpio@10000 {", "serial@0 {")
        .replace("reg = <0x10000 0x1000>;", "reg = <0x0 0x100>;");
    let mut m = machine("virt", Some(1), Some(64 << 20), &[("ns16550a", "uart1")]);
    let e = boot_with_dtb(
        &mut m,
        user_image("pb.dtb", compile_text(&dts)),
        None,
        false,
    )
    .unwrap_err();
    assert_eq!(
        e,
        "-dtb 'pb.dtb': node '/platform-bus@4000000/serial@0' has unit address 0 on the platform bus, \
         where dynamic device 'uart1' was placed"
    );
}

#[test]
fn test_merge_address_overlap_is_a_conflict_too() {
    let dts = std::fs::read_to_string(data("user-platform-bus.dts"))
        .unwrap()
        .replace(
            "reg = <0x10000 0x1000>;",
            "reg = <0x10000 0x1000 0x0 0x10>;",
        );
    let mut m = machine("virt", Some(1), Some(64 << 20), &[("ns16550a", "uart1")]);
    let e = boot_with_dtb(
        &mut m,
        user_image("pb.dtb", compile_text(&dts)),
        None,
        false,
    )
    .unwrap_err();
    assert!(
        e.contains("node '/platform-bus@4000000/gpio@10000' overlaps dynamic device 'uart1'"),
        "{e}"
    );
}

#[test]
fn test_merge_memory_larger_than_ram_names_the_node() {
    let mut m = machine("virt", Some(1), Some(64 << 20), &[]);
    let e = boot_with_dtb(
        &mut m,
        user_image("user.dtb", compile("user.dts")),
        None,
        false,
    )
    .unwrap_err();
    assert_eq!(
        e,
        "-dtb 'user.dtb': memory node '/memory@80000000' describes 0x80000000..0x88000000, outside \
         the machine's RAM (0x80000000..0x84000000, 64 MiB); give a larger -m or fix the node"
    );
}

#[test]
fn test_merge_needs_a_matching_interrupt_controller() {
    let mut m = machine("virt", Some(1), None, &[("ns16550a", "uart1")]);
    let e = boot_with_dtb(
        &mut m,
        user_image("tiny.dtb", compile("user-no-plic.dts")),
        None,
        false,
    )
    .unwrap_err();
    assert_eq!(
        e,
        "-dtb 'tiny.dtb': dynamic device 'uart1' is wired to 'plic@c000000' (compatible \
         \"sifive,plic-1.0.0\", \"riscv,plic0\") at 0xc000000, and the file has no interrupt \
         controller with that compatible at that address"
    );
    // Without dynamic devices the same file is fine.
    let mut m = machine("virt", Some(1), None, &[]);
    let blob = boot_with_dtb(
        &mut m,
        user_image("tiny.dtb", compile("user-no-plic.dts")),
        None,
        false,
    )
    .unwrap();
    dtc_check(&blob);
}

#[test]
fn test_merge_rejects_a_malformed_file_and_duplicate_phandles() {
    let mut m = machine("virt", Some(1), None, &[]);
    let e = boot_with_dtb(
        &mut m,
        user_image("junk.dtb", b"not a device tree".to_vec()),
        None,
        false,
    )
    .unwrap_err();
    assert_eq!(
        e,
        "-dtb 'junk.dtb': the file is not a usable device tree blob: malformed device tree blob at \
         byte 0x0: bad magic 0x6e6f7420 (a DTB starts with 0xd00dfeed)"
    );
    // dtc refuses to write this, so build it with our own writer.
    let mut t = Dtb::default();
    for name in ["a", "b"] {
        let mut n = Node::new(name);
        n.set_prop_u32("phandle", 1);
        t.root.children.push(n);
    }
    let blob = t.to_blob().unwrap();
    let mut m = machine("virt", Some(1), None, &[]);
    let e = boot_with_dtb(&mut m, user_image("dup.dtb", blob), None, false).unwrap_err();
    assert_eq!(
        e,
        "-dtb 'dup.dtb': the file's tree is inconsistent: node '/b': phandle 0x1 is also the phandle of '/a'"
    );
}

// ---------------------------------------------------------------------------------------------
// -machine dtb-board=FILE

/// Builds a machine from a DTB through the description's TOML form (what `-M file.toml` reads).
fn machine_from_dtb(
    blob: &[u8],
    name: &str,
    ignore_unknown: bool,
    smp: Option<u32>,
) -> (Machine, String) {
    let board = description_from_dtb(blob, name, &registry(), ignore_unknown)
        .unwrap_or_else(|e| panic!("{e}"));
    let dir = tempdir(name);
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, &board.toml).unwrap();
    (
        machine(&path.display().to_string(), smp, None, &[]),
        board.toml,
    )
}

#[test]
fn test_dtb_board_round_trips_virt() {
    for smp in [1, 2, 4] {
        let mut virt = machine("virt", Some(smp), None, &[]);
        let first = virt.dump_dtb(None).unwrap();
        dtc_check(&first);
        let (mut rebuilt, toml) = machine_from_dtb(&first, "virt-dump", false, None);
        assert_eq!(rebuilt.harts.len(), smp as usize, "hart count from /cpus");
        let second = rebuilt.dump_dtb(None).unwrap();
        dtc_check(&second);
        // Same tree, phandles included.
        assert_eq!(
            parse(&second),
            parse(&first),
            "smp {smp}; description:\n{toml}"
        );
        assert_eq!(second, first, "smp {smp}: byte-identical");
    }
}

#[test]
fn test_dtb_board_description_of_virt_matches_the_builtin() {
    let mut virt = machine("virt", Some(1), None, &[]);
    let board = description_from_dtb(
        &virt.dump_dtb(None).unwrap(),
        "virt.dtb",
        &registry(),
        false,
    )
    .unwrap();
    let d = &board.desc;
    assert_eq!(d.machine.ram_base, Some(0x8000_0000));
    assert_eq!(d.machine.default_ram.as_deref(), Some("128M"));
    assert_eq!(d.machine.reset_rom, Some(0x1000));
    assert_eq!(
        d.machine.stdout_path.as_deref(),
        Some("/soc/serial@10000000")
    );
    assert_eq!(d.cpu.cpu_type.as_deref(), Some("rv64"));
    let types: Vec<&str> = d.devices.iter().map(|s| s.dev_type.as_str()).collect();
    let builtin = breadboard_platform::Description::load("virt").unwrap();
    let want: Vec<&str> = builtin
        .devices
        .iter()
        .map(|s| s.dev_type.as_str())
        .collect();
    assert_eq!(types, want, "same devices in the same order");
    let pb = d.platform_bus.as_ref().expect("platform bus");
    let bpb = builtin.platform_bus.as_ref().unwrap();
    assert_eq!(
        (pb.base, pb.size, pb.irq_base, pb.irq_count),
        (bpb.base, bpb.size, bpb.irq_base, bpb.irq_count)
    );
    let plic = d.devices.iter().find(|s| s.dev_type == "plic").unwrap();
    assert_eq!(plic.irq_per_hart, vec![11, 9]);
    assert_eq!(pb.irq_controller, plic.name);
    let uart = d.devices.iter().find(|s| s.dev_type == "ns16550a").unwrap();
    assert_eq!(uart.irq, vec![format!("{}:10", plic.name)]);
    assert_eq!(
        uart.props.get("chardev"),
        Some(&breadboard_platform::description::TomlValue::Str(
            "serial0".into()
        )),
        "the stdout-path UART is serial0"
    );
    assert!(board.skipped.is_empty());
}

#[test]
fn test_dtb_board_lists_every_unknown_node() {
    let e =
        description_from_dtb(&compile("board.dts"), "board.dtb", &registry(), false).unwrap_err();
    let BoardError::Unmapped { nodes, .. } = &e else {
        panic!("{e}")
    };
    let paths: Vec<&str> = nodes.iter().map(|n| n.path.as_str()).collect();
    assert_eq!(
        paths,
        vec!["/soc@0/ethernet@10090000", "/soc@0/mystery@10100000"]
    );
    assert_eq!(
        nodes[0].compatible,
        vec!["sifive,fu540-c000-gem", "cdns,macb"]
    );
    assert_eq!(
        e.to_string(),
        "dtb-board 'board.dtb': 2 node(s) can't be mapped to a device type \
         (dtb-board-ignore-unknown=on skips them):\n  \
         /soc@0/ethernet@10090000 (compatible \"sifive,fu540-c000-gem\", \"cdns,macb\"): no device type has any of its compatible strings\n  \
         /soc@0/mystery@10100000 (no compatible): it has 'reg' but no 'compatible'"
    );
}

#[test]
fn test_dtb_board_ignore_unknown_builds_the_rest() {
    let blob = compile("board.dts");
    let board = description_from_dtb(&blob, "board.dtb", &registry(), true).unwrap();
    assert_eq!(board.skipped.len(), 2);
    let d = &board.desc;
    assert_eq!(d.cpu.count, 2);
    assert_eq!(d.cpu.timebase_frequency, 1_000_000);
    assert_eq!(d.machine.default_ram.as_deref(), Some("128M"));
    let by_type = |t: &str| {
        d.devices
            .iter()
            .filter(|s| s.dev_type == t)
            .collect::<Vec<_>>()
    };
    let plic = by_type("plic")[0];
    assert_eq!(plic.mmio, vec![0xc00_0000]);
    use breadboard_platform::description::TomlValue::{Int, Str};
    assert_eq!(plic.props.get("num-sources"), Some(&Int(53)), "riscv,ndev");
    assert_eq!(
        plic.props.get("size"),
        Some(&Str("0x4000000".into())),
        "from reg"
    );
    assert_eq!(plic.irq_per_hart, vec![11, 9]);
    let uarts = by_type("ns16550a");
    assert_eq!(uarts[0].props.get("clock-frequency"), Some(&Int(1_843_200)));
    assert_eq!(
        uarts[0].props.get("chardev"),
        Some(&Str("serial1".into())),
        "from /aliases"
    );
    assert_eq!(
        uarts[1].props.get("chardev"),
        Some(&Str("serial0".into())),
        "the stdout-path UART"
    );
    assert_eq!(uarts[1].irq, vec![format!("{}:11", plic.name)]);
    assert_eq!(
        by_type("clint")[0].props.get("timebase-frequency"),
        Some(&Int(1_000_000))
    );
    let extra = by_type("sysbus-memory");
    assert_eq!(extra.len(), 1, "second RAM bank");
    assert_eq!(extra[0].mmio, vec![0x9000_0000]);
    assert!(d.platform_bus.is_none());

    // The machine builds and writes a tree dtc accepts, with the mapped devices in it.
    let (mut m, _) = machine_from_dtb(&blob, "board", true, None);
    assert_eq!(m.harts.len(), 2);
    let out = m.dump_dtb(None).unwrap();
    let dts = dtc_check(&out);
    let t = parse(&out);
    assert_eq!(node(&t, "/").prop_str("model"), Some("ACME SoC-1"));
    assert_eq!(
        node(&t, "/soc/plic@c000000").prop_u32("riscv,ndev"),
        Some(53)
    );
    assert!(t.node("/soc/serial@10001000").is_some());
    assert!(t.node("/memory@90000000").is_some(), "{dts}");
    assert!(
        t.node("/poweroff").is_some(),
        "the finisher writes its helper node again"
    );
    assert!(t.node("/soc/ethernet@10090000").is_none());
}

#[test]
fn test_dtb_board_maps_platform_bus_children_and_keeps_their_irqs_out_of_the_bus_block() {
    let mut virt = machine("virt", Some(1), None, &[("ns16550a", "uart1")]);
    let blob = virt.dump_dtb(None).unwrap();
    let board = description_from_dtb(&blob, "dyn.dtb", &registry(), false).unwrap();
    let uart = board
        .desc
        .devices
        .iter()
        .find(|d| d.mmio == vec![0x400_0000])
        .expect("the dynamic UART became a board device at its address");
    assert_eq!(uart.irq.len(), 1);
    let pb = board.desc.platform_bus.as_ref().unwrap();
    assert_eq!(pb.irq_base, 65, "IRQ 64 is taken by the UART");
    assert_eq!(pb.irq_count, 31);
}

#[test]
fn test_dtb_board_rejects_bad_harts_and_bad_files() {
    let dts = "/dts-v1/;\n/ { #address-cells = <2>; #size-cells = <2>; cpus { #address-cells = <1>; \
               #size-cells = <0>; cpu@1 { device_type = \"cpu\"; reg = <1>; riscv,isa = \"rv64imac\"; }; }; };\n";
    let e = description_from_dtb(&compile_text(dts), "gap.dtb", &registry(), false).unwrap_err();
    assert_eq!(
        e.to_string(),
        "dtb-board 'gap.dtb': the tree can't be used as a machine"
    );
    assert_eq!(
        breadboard_platform::dtb::error_chain(&e),
        "dtb-board 'gap.dtb': the tree can't be used as a machine: node '/cpus/cpu@1': hart id 1: \
         harts must be numbered 0 to 0 without gaps"
    );
    let e = description_from_dtb(b"\xd0\x0d\xfe\xed", "short.dtb", &registry(), false).unwrap_err();
    assert!(matches!(e, BoardError::Parse { .. }), "{e}");
}

#[test]
fn test_dtb_board_unknown_isa_is_listed() {
    let dts = "/dts-v1/;\n/ { #address-cells = <2>; #size-cells = <2>; cpus { #address-cells = <1>; \
               #size-cells = <0>; cpu@0 { device_type = \"cpu\"; reg = <0>; compatible = \"arm,cortex-a53\"; \
               }; }; };\n";
    let e = description_from_dtb(&compile_text(dts), "arm.dtb", &registry(), false).unwrap_err();
    assert!(
        e.to_string().contains(
            "/cpus/cpu@0 (compatible \"arm,cortex-a53\"): riscv,isa \"\" matches no CPU model"
        ),
        "{e}"
    );
}

#[test]
fn test_generated_toml_is_a_loadable_description() {
    let mut virt = machine("virt", Some(2), None, &[]);
    let board =
        description_from_dtb(&virt.dump_dtb(None).unwrap(), "v.dtb", &registry(), false).unwrap();
    assert!(board.toml.contains("mmio = [0x10000000]"), "{}", board.toml);
    let again = breadboard_platform::Description::parse(&board.toml, "again.toml").unwrap();
    assert_eq!(again.devices.len(), board.desc.devices.len());
}
