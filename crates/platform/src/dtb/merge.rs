//! `-dtb FILE`: the user's tree is kept and the machine adds what only it knows (QEMU's
//! behaviour for a user DTB, plus the platform bus of issue 4):
//!
//! - dynamic (platform-bus) devices: their nodes are taken from the machine's own generated
//!   tree and grafted under the user tree's `qemu,platform` node, which is created like the
//!   machine's (`platform-bus@<base>`) when missing. Their `reg` is re-encoded in the user bus's
//!   cells, references to the machine's interrupt controller are pointed at the user tree's
//!   controller of the same compatible at the same address, and their own phandles are kept
//!   unless the user tree uses them, in which case they are renumbered above its highest;
//! - `/chosen`: `bootargs` from `-append` (replacing the file's, as QEMU does),
//!   `linux,initrd-start/end` where the initrd was loaded, `stdout-path` if the file has none;
//! - `/memory` nodes are checked against the machine's RAM (`-m`).
//!
//! Every conflict is an error naming the node: a user node at a dynamic device's unit address,
//! a duplicate phandle in the file, memory the machine does not have.
// Reads guest, file, socket or plugin input: no panicking shortcuts (SECURITY.md, issue 9).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;

use super::{
    Dtb, DtbError, Node, NodeError, WriteError, encode_cells, error_chain, join_path, push_cells,
};
use crate::boot::Image;
use crate::fdt::{self, Chosen};
use crate::machine::{Machine, MachineError};
use breadboard_core::RegionKind;

/// The `compatible` that marks a platform bus node.
pub const PLATFORM_BUS_COMPATIBLE: &str = "qemu,platform";

/// Properties holding a single phandle that may point outside a grafted node.
const SINGLE_PHANDLE_PROPS: &[&str] = &["interrupt-parent", "regmap", "syscon", "msi-parent"];

/// Errors merging a user DTB.
#[derive(Debug, Error)]
pub enum MergeError {
    /// The file is not a DTB, or a malformed one.
    #[error("the file is not a usable device tree blob")]
    Parse(#[source] DtbError),
    /// The file's tree contradicts itself (duplicate phandles, bad `reg`).
    #[error("the file's tree is inconsistent")]
    UserTree(#[source] NodeError),
    /// A memory node describes RAM the machine does not have.
    #[error(
        "memory node '{node}' describes {start:#x}..{end:#x}, outside the machine's RAM ({ram}); \
         give a larger -m or fix the node"
    )]
    MemoryExceedsRam {
        /// Node path.
        node: String,
        /// First byte.
        start: u64,
        /// One past the last.
        end: u64,
        /// The machine's RAM.
        ram: String,
    },
    /// A user node sits where a dynamic device was placed.
    #[error(
        "node '{node}' has unit address {address} on the platform bus, where dynamic device \
         '{device}' was placed"
    )]
    UnitAddressConflict {
        /// User node path.
        node: String,
        /// Device label.
        device: String,
        /// The unit address.
        address: String,
    },
    /// A user node's `reg` overlaps a dynamic device.
    #[error(
        "node '{node}' overlaps dynamic device '{device}' at {start:#x}..{end:#x} on the platform bus"
    )]
    AddressConflict {
        /// User node path.
        node: String,
        /// Device label.
        device: String,
        /// First bus address of the device.
        start: u64,
        /// One past its last.
        end: u64,
    },
    /// A dynamic device's interrupt controller has no counterpart in the user's tree.
    #[error(
        "dynamic device '{device}' is wired to {controller}, and the file has no interrupt \
         controller with that compatible at that address"
    )]
    NoInterruptController {
        /// Device label.
        device: String,
        /// The machine's controller (name, compatible, address).
        controller: String,
    },
    /// The user's platform bus node does not cover the machine's window.
    #[error(
        "platform bus node '{node}' does not map the machine's platform bus window {base:#x}..{end:#x}"
    )]
    BusWindow {
        /// User node path.
        node: String,
        /// Window start.
        base: u64,
        /// Window end.
        end: u64,
    },
    /// The name the platform bus node would get is taken by another kind of node.
    #[error(
        "node '{0}' is not a platform bus ('{PLATFORM_BUS_COMPATIBLE}') but has the platform bus's name"
    )]
    BusNameTaken(String),
    /// Phandles ran out.
    #[error("no free phandle left for node '{0}'")]
    PhandlesExhausted(String),
    /// The machine's own tree did not read back (a bug, reported rather than hidden).
    #[error("the machine's generated device tree is inconsistent: {0}")]
    Generated(String),
    /// Writing the merged tree.
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// What the merge needs from the machine.
#[derive(Clone, Debug, Default)]
pub struct MergeInput<'a> {
    /// The machine's own DTB (dynamic devices' nodes are taken from it).
    pub generated: &'a [u8],
    /// The platform bus window (base, size), if the machine has one.
    pub platform_bus: Option<(u64, u64)>,
    /// Writable RAM ranges (base, size).
    pub ram: Vec<(u64, u64)>,
    /// What goes into `/chosen`.
    pub bootargs: Option<&'a str>,
    /// Initrd extent.
    pub initrd: Option<(u64, u64)>,
    /// The machine's `stdout-path`.
    pub stdout_path: Option<&'a str>,
    /// Dynamic devices by first CPU address, for messages.
    pub devices: Vec<(u64, String)>,
}

impl<'a> MergeInput<'a> {
    /// Everything from a bound machine and its generated DTB.
    pub fn from_machine(m: &'a Machine, generated: &'a [u8], chosen: &'a Chosen) -> MergeInput<'a> {
        let ram = m
            .space
            .regions()
            .iter()
            .filter(|r| {
                matches!(
                    r.kind,
                    RegionKind::Ram {
                        readonly: false,
                        ..
                    }
                )
            })
            .map(|r| (r.base, r.size))
            .collect();
        let devices = m
            .device_ids()
            .filter_map(|id| m.device(id))
            .filter(|e| e.on_platform_bus)
            .filter_map(|e| Some((e.mapped.iter().flatten().next().copied()?, e.label.clone())))
            .collect();
        MergeInput {
            generated,
            platform_bus: m.desc.platform_bus.as_ref().map(|p| (p.base, p.size)),
            ram,
            bootargs: chosen.bootargs.as_deref(),
            initrd: chosen.initrd,
            stdout_path: m.desc.machine.stdout_path.as_deref(),
            devices,
        }
    }
}

/// The `-dtb` hook of [`Machine::finish`]: the user's blob merged with what the machine adds.
/// The machine must be bound (dynamic devices placed).
pub fn merge_user_dtb(m: &Machine, img: &Image, chosen: &Chosen) -> Result<Vec<u8>, MachineError> {
    let generated = fdt::generate(m, chosen)?;
    let input = MergeInput::from_machine(m, &generated, chosen);
    merge(&img.data, &input)
        .map_err(|e| MachineError::Boot(format!("-dtb '{}': {}", img.name, error_chain(&e))))
}

/// `-machine dumpdtb=FILE` together with `-dtb FILE`: binds the machine and returns the merged
/// tree, as QEMU dumps the tree it would boot with.
pub fn dump_merged(
    m: &mut Machine,
    img: &Image,
    append: Option<&str>,
) -> Result<Vec<u8>, MachineError> {
    m.dump_dtb(append)?;
    let chosen = Chosen {
        bootargs: append.map(str::to_string),
        initrd: None,
    };
    merge_user_dtb(m, img, &chosen)
}

/// Merges `user` (an untrusted blob) with the machine's additions.
pub fn merge(user: &[u8], input: &MergeInput<'_>) -> Result<Vec<u8>, MergeError> {
    let mut tree = Dtb::parse(user).map_err(MergeError::Parse)?;
    tree.phandles().map_err(MergeError::UserTree)?;
    check_memory(&tree, &input.ram)?;
    graft_platform_bus(&mut tree, input)?;
    set_chosen(&mut tree, input);
    Ok(tree.to_blob()?)
}

fn describe_ram(ram: &[(u64, u64)]) -> String {
    if ram.is_empty() {
        return "the machine has none".into();
    }
    ram.iter()
        .map(|(b, s)| format!("{b:#x}..{:#x}, {} MiB", b.saturating_add(*s), s >> 20))
        .collect::<Vec<_>>()
        .join("; ")
}

fn check_memory(tree: &Dtb, ram: &[(u64, u64)]) -> Result<(), MergeError> {
    for (path, n) in tree.nodes() {
        if n.prop_str("device_type") != Some("memory") || !n.is_enabled() {
            continue;
        }
        for (start, size) in tree.reg_absolute(&path).map_err(MergeError::UserTree)? {
            if size == 0 {
                continue;
            }
            let end = start.checked_add(size);
            let inside = end.is_some_and(|end| {
                ram.iter()
                    .any(|&(b, s)| start >= b && b.checked_add(s).is_some_and(|e| end <= e))
            });
            if !inside {
                return Err(MergeError::MemoryExceedsRam {
                    node: path,
                    start,
                    end: end.unwrap_or(u64::MAX),
                    ram: describe_ram(ram),
                });
            }
        }
    }
    Ok(())
}

fn set_chosen(tree: &mut Dtb, input: &MergeInput<'_>) {
    let stdout_ok = input
        .stdout_path
        .filter(|p| tree.node(p.split(':').next().unwrap_or(p)).is_some());
    if tree.root.child("chosen").is_none() {
        tree.root.children.push(Node::new("chosen"));
    }
    let Some(chosen) = tree.root.child_mut("chosen") else {
        return;
    };
    if let Some(b) = input.bootargs {
        chosen.set_prop_str("bootargs", b);
    }
    if let Some((s, e)) = input.initrd {
        chosen.set_prop_u64("linux,initrd-start", s);
        chosen.set_prop_u64("linux,initrd-end", e);
    }
    if let Some(p) = stdout_ok
        && !chosen.has_prop("stdout-path")
    {
        chosen.set_prop_str("stdout-path", p);
    }
}

/// Hands out phandles above everything in use.
struct Phandles {
    used: BTreeSet<u32>,
    next: u64,
}

impl Phandles {
    fn fresh(&mut self, node: &str) -> Result<u32, MergeError> {
        while self.next <= 0xffff_fffe {
            let p = self.next as u32;
            self.next += 1;
            if self.used.insert(p) {
                return Ok(p);
            }
        }
        Err(MergeError::PhandlesExhausted(node.to_string()))
    }
}

/// One generated node to graft.
struct Graft {
    node: Node,
    label: String,
    /// Its `reg` as CPU addresses.
    regs: Vec<(u64, u64)>,
}

fn generated_err(e: impl std::fmt::Display) -> MergeError {
    MergeError::Generated(e.to_string())
}

/// Every node of a subtree, mutably, in pre-order.
fn for_each_mut(
    n: &mut Node,
    f: &mut impl FnMut(&mut Node) -> Result<(), MergeError>,
) -> Result<(), MergeError> {
    f(n)?;
    for c in &mut n.children {
        for_each_mut(c, f)?;
    }
    Ok(())
}

fn for_each(n: &Node, f: &mut impl FnMut(&Node)) {
    f(n);
    for c in &n.children {
        for_each(c, f);
    }
}

/// Phandles a node refers to: single-phandle properties and `interrupts-extended` entries
/// (whose length comes from each target's `#interrupt-cells` in the generated tree).
fn references(n: &Node, cells_of: &impl Fn(u32) -> Option<u32>) -> Result<Vec<u32>, MergeError> {
    let mut out: Vec<u32> = SINGLE_PHANDLE_PROPS
        .iter()
        .filter_map(|p| n.prop_u32(p))
        .collect();
    if let Some(cells) = n.prop_cells("interrupts-extended") {
        let mut i = 0usize;
        while let Some(&p) = cells.get(i) {
            out.push(p);
            let k = cells_of(p).ok_or_else(|| {
                generated_err(format!(
                    "node '{}' points at unknown phandle {p:#x}",
                    n.name
                ))
            })?;
            i = i.saturating_add(1).saturating_add(k as usize);
        }
    }
    Ok(out)
}

/// Rewrites phandle references in `n` through `map`.
fn remap(n: &mut Node, map: &BTreeMap<u32, u32>, cells_of: &impl Fn(u32) -> Option<u32>) {
    for p in SINGLE_PHANDLE_PROPS
        .iter()
        .chain(&["phandle", "linux,phandle"])
    {
        if let Some(v) = n.prop_u32(p)
            && let Some(&to) = map.get(&v)
        {
            n.set_prop_u32(p, to);
        }
    }
    if let Some(mut cells) = n.prop_cells("interrupts-extended") {
        let mut i = 0usize;
        while let Some(&p) = cells.get(i) {
            if let (Some(&to), Some(slot)) = (map.get(&p), cells.get_mut(i)) {
                *slot = to;
            }
            i = i
                .saturating_add(1)
                .saturating_add(cells_of(p).unwrap_or(0) as usize);
        }
        n.set_prop("interrupts-extended", encode_cells(&cells));
    }
}

/// Finds the user node that plays the role of generated node `gen_path`: a hart's
/// `riscv,cpu-intc` by hart id, anything else by a shared `compatible` at the same address.
fn counterpart(machine: &Dtb, gen_path: &str, user: &Dtb) -> Option<String> {
    let g = machine.node(gen_path)?;
    if g.is_compatible("riscv,cpu-intc") {
        let parent_path = gen_path.rsplit_once('/').map(|(p, _)| p)?;
        let hart = machine.node(parent_path)?.prop_u32("reg")?;
        let cpus = user.node("/cpus")?;
        let cpu = cpus.children.iter().find(|c| {
            c.prop_str("device_type") == Some("cpu") && c.prop_u32("reg") == Some(hart)
        })?;
        let intc = cpu
            .children
            .iter()
            .find(|c| c.is_compatible("riscv,cpu-intc"))?;
        return Some(join_path(&join_path("/cpus", &cpu.name), &intc.name));
    }
    let addr = machine.reg_absolute(gen_path).ok()?.first()?.0;
    let compat = g.compatible();
    let controller = g.has_prop("interrupt-controller");
    user.nodes()
        .into_iter()
        .find(|(p, n)| {
            n.compatible().iter().any(|c| compat.contains(c))
                && (!controller || n.has_prop("interrupt-controller"))
                && user
                    .reg_absolute(p)
                    .ok()
                    .and_then(|r| r.first().map(|r| r.0))
                    == Some(addr)
        })
        .map(|(p, _)| p)
}

fn describe_node(tree: &Dtb, path: &str) -> String {
    let Some(n) = tree.node(path) else {
        return format!("'{path}'");
    };
    let compat: Vec<String> = n.compatible().iter().map(|c| format!("\"{c}\"")).collect();
    let at = tree
        .reg_absolute(path)
        .ok()
        .and_then(|r| r.first().map(|r| format!(" at {:#x}", r.0)))
        .unwrap_or_default();
    format!("'{}' (compatible {}){at}", n.name, compat.join(", "))
}

/// Finds or creates the user's platform bus node; returns its path.
fn user_bus(
    tree: &mut Dtb,
    gen_bus: &Node,
    base: u64,
    size: u64,
    parent_phandle: Option<u32>,
) -> Result<String, MergeError> {
    let end = base.saturating_add(size);
    let candidates: Vec<String> = tree
        .nodes()
        .into_iter()
        .filter(|(_, n)| n.is_compatible(PLATFORM_BUS_COMPATIBLE))
        .map(|(p, _)| p)
        .collect();
    for p in &candidates {
        if tree
            .from_root(p, base, size)
            .map_err(MergeError::UserTree)?
            .is_some()
        {
            return Ok(p.clone());
        }
    }
    if let Some(p) = candidates.first() {
        return Err(MergeError::BusWindow {
            node: p.clone(),
            base,
            end,
        });
    }
    let name = format!("platform-bus@{base:x}");
    if tree.root.child(&name).is_some() {
        return Err(MergeError::BusNameTaken(join_path("/", &name)));
    }
    // Like the machine's node, with `ranges` in the user root's address cells.
    let mut bus = Node::new(&name);
    let root_cells = tree.root.address_cells();
    let size32 =
        u32::try_from(size).map_err(|_| generated_err("platform bus larger than 4 GiB"))?;
    let mut ranges = vec![0];
    push_cells(&mut ranges, base, root_cells);
    ranges.push(size32);
    for (k, v) in &gen_bus.props {
        match k.as_str() {
            "interrupt-parent" => {
                if let Some(p) = parent_phandle {
                    bus.set_prop_u32(k, p);
                }
            }
            "ranges" => bus.set_prop("ranges", encode_cells(&ranges)),
            _ => bus.set_prop(k, v.clone()),
        }
    }
    tree.root.children.push(bus);
    Ok(join_path("/", &name))
}

fn parse_unit(u: &str) -> Option<u64> {
    u64::from_str_radix(u.split(',').next().unwrap_or(u), 16).ok()
}

fn graft_platform_bus(tree: &mut Dtb, input: &MergeInput<'_>) -> Result<(), MergeError> {
    let Some((base, size)) = input.platform_bus else {
        return Ok(());
    };
    let machine = Dtb::parse(input.generated).map_err(generated_err)?;
    let Some((gen_bus_path, gen_bus)) = machine
        .nodes()
        .into_iter()
        .find(|(_, n)| n.is_compatible(PLATFORM_BUS_COMPATIBLE))
    else {
        return Ok(());
    };
    if gen_bus.children.is_empty() {
        return Ok(());
    }
    let gen_phandles = machine.phandles().map_err(generated_err)?;
    let cells_of = |p: u32| -> Option<u32> {
        machine
            .node(gen_phandles.get(&p)?)?
            .prop_u32("#interrupt-cells")
    };

    let mut grafts = Vec::new();
    for c in &gen_bus.children {
        let path = join_path(&gen_bus_path, &c.name);
        let regs = machine.reg_absolute(&path).map_err(generated_err)?;
        let first = regs.first().map(|r| r.0);
        let label = input
            .devices
            .iter()
            .find(|(a, _)| Some(*a) == first)
            .map_or_else(|| c.name.clone(), |(_, l)| l.clone());
        grafts.push(Graft {
            node: c.clone(),
            label,
            regs,
        });
    }

    // Phandles the grafted nodes define keep their value unless the user tree has it.
    let user_phandles = tree.phandles().map_err(MergeError::UserTree)?;
    let mut defined = BTreeSet::new();
    for g in &grafts {
        for_each(&g.node, &mut |n| {
            defined.extend(n.phandle());
        });
    }
    let mut alloc = Phandles {
        used: user_phandles
            .keys()
            .copied()
            .chain(defined.iter().copied())
            .collect(),
        next: u64::from(tree.max_phandle().max(defined.last().copied().unwrap_or(0))) + 1,
    };
    let mut map = BTreeMap::new();
    for &p in &defined {
        if user_phandles.contains_key(&p) {
            map.insert(p, alloc.fresh(&gen_bus_path)?);
        }
    }

    // References that leave the grafted nodes go to the user tree's counterpart.
    let mut outside = BTreeSet::new();
    for g in &grafts {
        let mut refs = Vec::new();
        let mut err = None;
        for_each(&g.node, &mut |n| match references(n, &cells_of) {
            Ok(r) => refs.extend(r),
            Err(e) => err = Some(e),
        });
        if let Some(e) = err {
            return Err(e);
        }
        for p in refs.into_iter().filter(|p| !defined.contains(p)) {
            outside.insert((p, g.label.clone()));
        }
    }
    let bus_parent = gen_bus.prop_u32("interrupt-parent");
    let first_label = grafts.first().map(|g| g.label.clone()).unwrap_or_default();
    outside.extend(bus_parent.map(|p| (p, first_label)));
    for (p, label) in outside {
        if map.contains_key(&p) {
            continue;
        }
        let gen_path = gen_phandles
            .get(&p)
            .ok_or_else(|| generated_err(format!("phandle {p:#x} names no node")))?;
        let Some(user_path) = counterpart(&machine, gen_path, tree) else {
            return Err(MergeError::NoInterruptController {
                device: label,
                controller: describe_node(&machine, gen_path),
            });
        };
        let up = match tree.node(&user_path).and_then(Node::phandle) {
            Some(up) => up,
            None => {
                let fresh = alloc.fresh(&user_path)?;
                if let Some(n) = tree.node_mut(&user_path) {
                    n.set_prop_u32("phandle", fresh);
                }
                fresh
            }
        };
        map.insert(p, up);
    }

    let bus_path = user_bus(
        tree,
        gen_bus,
        base,
        size,
        bus_parent.and_then(|p| map.get(&p).copied()),
    )?;
    let bus_chain_cells = {
        let bus = tree
            .node(&bus_path)
            .ok_or_else(|| generated_err("platform bus node vanished"))?;
        (bus.address_cells(), bus.size_cells())
    };
    let (ac, sc) = bus_chain_cells;
    if !(1..=2).contains(&ac) || sc > 2 {
        return Err(MergeError::UserTree(NodeError::new(
            &bus_path,
            format!("#address-cells = {ac}, #size-cells = {sc} can't hold device addresses"),
        )));
    }
    // The user's nodes already on the bus: path, unit address, `reg` in bus addresses.
    let mut existing = Vec::new();
    {
        let bus = tree
            .node(&bus_path)
            .ok_or_else(|| generated_err("platform bus node vanished"))?;
        for c in &bus.children {
            let p = join_path(&bus_path, &c.name);
            let regs = tree.reg(&p).map_err(MergeError::UserTree)?;
            existing.push((p, c.unit_address().map(str::to_string), regs));
        }
    }

    let mut placed = Vec::new();
    for mut g in grafts {
        let mut reg = Vec::new();
        let mut first = None;
        for &(a, s) in &g.regs {
            let ca = tree
                .from_root(&bus_path, a, s)
                .map_err(MergeError::UserTree)?
                .ok_or_else(|| MergeError::BusWindow {
                    node: bus_path.clone(),
                    base,
                    end: base.saturating_add(size),
                })?;
            first.get_or_insert((ca, s));
            push_cells(&mut reg, ca, ac);
            push_cells(&mut reg, s, sc);
        }
        if let Some((ca, s)) = first {
            g.node.name = format!("{}@{ca:x}", g.node.base_name());
            g.node.set_prop("reg", encode_cells(&reg));
            let end = ca.saturating_add(s);
            for (path, unit, regs) in &existing {
                if let Some(u) = unit
                    && (parse_unit(u) == Some(ca) || *u == format!("{ca:x}"))
                {
                    return Err(MergeError::UnitAddressConflict {
                        node: path.clone(),
                        device: g.label,
                        address: u.clone(),
                    });
                }
                if regs
                    .iter()
                    .any(|&(ua, us)| ua < end && ca < ua.saturating_add(us))
                {
                    return Err(MergeError::AddressConflict {
                        node: path.clone(),
                        device: g.label,
                        start: ca,
                        end,
                    });
                }
            }
        }
        for_each_mut(&mut g.node, &mut |n| {
            remap(n, &map, &cells_of);
            Ok(())
        })?;
        placed.push(g.node);
    }
    let bus = tree
        .node_mut(&bus_path)
        .ok_or_else(|| generated_err("platform bus node vanished"))?;
    bus.children.extend(placed);
    Ok(())
}
