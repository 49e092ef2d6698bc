//! `-machine dtb-board=FILE`: a machine description (the same [`Description`] a TOML file
//! gives) built from a device tree.
//!
//! - `/cpus`: hart count (harts must be numbered 0..n), CPU model from `riscv,isa`, the
//!   timebase;
//! - memory nodes (`device_type = "memory"`): the first range is the machine's RAM
//!   (`ram-base`, `default-ram`), further ranges become `sysbus-memory` devices;
//! - every other enabled node with a `compatible` is mapped to a device type
//!   ([`CompatibleMap`]); `reg` (translated through the buses' `ranges`) gives its `mmio`,
//!   `interrupts`/`interrupts-extended` its `irq` wiring (`irq-per-hart` when every hart is
//!   wired alike), and DT properties whose names are in the type's schema (plus a few DT
//!   spellings such as `riscv,ndev` → `num-sources`) its properties;
//! - a `qemu,platform` node becomes the `[platform-bus]`; `simple-bus` nodes are walked into;
//!   `syscon-poweroff`/`syscon-reboot` nodes are the finisher's helper nodes.
//!
//! Every node nothing maps is listed with its path and `compatible`, and the build stops
//! unless `dtb-board-ignore-unknown=on`. Devices are created in tree order and the first
//! phandle is kept, so `dumpdtb` of the result gives the tree back (phandles included) when
//! the tree came from breadboard.
// Reads guest, file, socket or plugin input: no panicking shortcuts (SECURITY.md, issue 9).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use breadboard_core::{DeviceType, PropKind, TypeRegistry};
use thiserror::Error;

use super::merge::PLATFORM_BUS_COMPATIBLE;
use super::{Dtb, DtbError, Node, NodeError};
use crate::cpus;
use crate::description::{
    CpuSection, Description, DescriptionError, DeviceSection, MachineSection, PlatformBusSection,
    TomlValue,
};

/// DT property names that differ from the device property they set: (type, DT, device).
const PROP_ALIASES: &[(&str, &str, &str)] = &[
    ("plic", "riscv,ndev", "num-sources"),
    ("ibex-plic", "riscv,ndev", "num-sources"),
];

/// Helper nodes a device writes next to its own (`write_fdt_root`): they map to nothing
/// themselves but are fine when their `regmap` points at a mapped device.
const HELPER_COMPATIBLE: &[&str] = &["syscon-poweroff", "syscon-reboot"];

/// Root-level nodes that describe no device.
const STRUCTURAL: &[&str] = &[
    "chosen",
    "aliases",
    "cpus",
    "reserved-memory",
    "__symbols__",
    "__fixups__",
    "__local_fixups__",
];

/// Bus compatibles walked into.
const BUS_COMPATIBLE: &[&str] = &["simple-bus"];

/// QEMU's platform bus has 32 IRQs (`PLATFORM_BUS_NUM_IRQS`).
const PLATFORM_BUS_IRQS: u64 = 32;

/// RISC-V `mip` bits of the PLIC's contexts.
const IRQ_M_EXT: u32 = 11;
const IRQ_S_EXT: u32 = 9;

/// The address QEMU's riscv boards put their reset ROM at, and its size.
const RESET_ROM: (u64, u64) = (0x1000, 0xf000);

/// A node that was not mapped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unmapped {
    /// Node path.
    pub path: String,
    /// Its `compatible` strings.
    pub compatible: Vec<String>,
    /// Why it was not mapped.
    pub reason: String,
}

impl std::fmt::Display for Unmapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.compatible.is_empty() {
            write!(f, "{} (no compatible): {}", self.path, self.reason)
        } else {
            let c: Vec<String> = self.compatible.iter().map(|c| format!("\"{c}\"")).collect();
            write!(
                f,
                "{} (compatible {}): {}",
                self.path,
                c.join(", "),
                self.reason
            )
        }
    }
}

fn list(nodes: &[Unmapped]) -> String {
    nodes.iter().map(|n| format!("\n  {n}")).collect()
}

/// Errors building a machine from a DTB.
#[derive(Debug, Error)]
pub enum BoardError {
    /// Not a DTB, or a malformed one.
    #[error("dtb-board '{origin}': the file is not a usable device tree blob")]
    Parse {
        /// File.
        origin: String,
        /// The defect.
        #[source]
        source: DtbError,
    },
    /// A node that can't be read as what it claims to be.
    #[error("dtb-board '{origin}': the tree can't be used as a machine")]
    Node {
        /// File.
        origin: String,
        /// The node and its problem.
        #[source]
        source: NodeError,
    },
    /// Nodes no device type maps (without `dtb-board-ignore-unknown=on`).
    #[error(
        "dtb-board '{origin}': {} node(s) can't be mapped to a device type \
         (dtb-board-ignore-unknown=on skips them):{}",
        nodes.len(),
        list(nodes)
    )]
    Unmapped {
        /// File.
        origin: String,
        /// Every node not mapped.
        nodes: Vec<Unmapped>,
    },
    /// The description could not be written as TOML (a number TOML can't hold).
    #[error("dtb-board '{origin}': {message}")]
    Export {
        /// File.
        origin: String,
        /// What.
        message: String,
    },
    /// The description made from the tree does not validate.
    #[error("dtb-board '{origin}': the machine description made from it is invalid")]
    Description {
        /// File.
        origin: String,
        /// Why.
        #[source]
        source: DescriptionError,
    },
}

/// A machine description made from a DTB.
#[derive(Clone, Debug)]
pub struct DtbBoard {
    /// The description (validated).
    pub desc: Description,
    /// The same as TOML (`-machine dump=FILE` material, and what was validated).
    pub toml: String,
    /// Nodes skipped under `dtb-board-ignore-unknown=on`.
    pub skipped: Vec<Unmapped>,
}

/// `compatible` string → device type name, built from the registered types.
#[derive(Clone, Debug, Default)]
pub struct CompatibleMap {
    by_compatible: BTreeMap<String, String>,
}

impl CompatibleMap {
    /// The map for every registered type that declares `compatible` strings. Two types
    /// claiming one string: the first by name wins (a plugin can't take over a built-in's).
    pub fn from_registry(registry: &TypeRegistry) -> CompatibleMap {
        let mut by_compatible = BTreeMap::new();
        for t in registry.iter() {
            for c in t.compatible {
                by_compatible
                    .entry((*c).to_string())
                    .or_insert_with(|| t.name.to_string());
            }
        }
        CompatibleMap { by_compatible }
    }

    /// The type the node maps to: the first of its `compatible` strings claimed by a type.
    pub fn lookup<'r>(&self, registry: &'r TypeRegistry, node: &Node) -> Option<&'r DeviceType> {
        node.compatible()
            .iter()
            .find_map(|c| self.by_compatible.get(*c))
            .and_then(|t| registry.get(t))
    }
}

/// Where one interrupt specifier goes.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    /// Input `input` of the controller node at `path`.
    Controller { path: String, input: u32 },
    /// A hart's local interrupt.
    Cpu { hart: u32, bit: u32 },
}

/// A device being described.
struct Dev {
    path: String,
    name: String,
    ty: String,
    mmio: Vec<u64>,
    props: BTreeMap<String, TomlValue>,
    irqs: Vec<Target>,
    irq: Vec<String>,
    irq_per_hart: Vec<u32>,
}

struct Builder<'a> {
    tree: &'a Dtb,
    registry: &'a TypeRegistry,
    map: CompatibleMap,
    phandles: BTreeMap<u32, String>,
    harts: u32,
    intc_hart: BTreeMap<String, u32>,
    timebase: u64,
    devices: Vec<Dev>,
    names: BTreeSet<String>,
    unmapped: Vec<Unmapped>,
    ram: Vec<(String, u64, u64)>,
    helpers: Vec<(String, u32)>,
    bus: Option<(String, u64, u64)>,
}

fn unmapped(path: &str, n: &Node, reason: impl Into<String>) -> Unmapped {
    Unmapped {
        path: path.to_string(),
        compatible: n.compatible().iter().map(|s| (*s).to_string()).collect(),
        reason: reason.into(),
    }
}

/// A valid, unique object id from a node name (`serial@10000000` → `serial-10000000`).
fn object_name(node: &Node, taken: &mut BTreeSet<String>) -> String {
    let mut base: String = node
        .name
        .chars()
        .map(|c| match c {
            '@' => '-',
            c if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') => c,
            _ => '_',
        })
        .collect();
    if !base.starts_with(|c: char| c.is_ascii_alphabetic()) {
        base.insert_str(0, "dev-");
    }
    let mut name = base.clone();
    let mut k = 2u32;
    while !taken.insert(name.clone()) {
        name = format!("{base}-{k}");
        k = k.saturating_add(1);
    }
    name
}

impl Builder<'_> {
    fn cpus(&mut self) -> Result<Option<String>, NodeError> {
        let Some(cpus) = self.tree.node("/cpus") else {
            return Ok(None);
        };
        let mut timebase = cpus.prop_u64("timebase-frequency");
        let mut harts: Vec<(u32, &Node)> = Vec::new();
        for c in &cpus.children {
            if c.prop_str("device_type") != Some("cpu") || !c.is_enabled() {
                continue;
            }
            let path = super::join_path("/cpus", &c.name);
            let id = c.prop_u32("reg").ok_or_else(|| {
                NodeError::new(&path, "a cpu node needs a one-cell 'reg' (its hart id)")
            })?;
            harts.push((id, c));
        }
        harts.sort_by_key(|h| h.0);
        for (i, (id, c)) in harts.iter().enumerate() {
            if *id as usize != i {
                return Err(NodeError::new(
                    &super::join_path("/cpus", &c.name),
                    format!(
                        "hart id {id}: harts must be numbered 0 to {} without gaps",
                        harts.len().saturating_sub(1)
                    ),
                ));
            }
            // Some trees give the timebase per hart rather than on /cpus.
            timebase = timebase.or_else(|| c.prop_u64("timebase-frequency"));
            for intc in c
                .children
                .iter()
                .filter(|n| n.is_compatible("riscv,cpu-intc"))
            {
                let p = super::join_path(&super::join_path("/cpus", &c.name), &intc.name);
                self.intc_hart.insert(p, *id);
            }
        }
        self.harts = harts.len() as u32;
        self.timebase = timebase.unwrap_or(self.timebase);
        let Some((_, first)) = harts.first() else {
            return Ok(None);
        };
        let path = super::join_path("/cpus", &first.name);
        let isa = first.prop_str("riscv,isa").unwrap_or("");
        let model = cpus::MODELS.iter().find(|m| m.isa == isa).or_else(|| {
            let prefix = isa.get(..4)?;
            cpus::MODELS.iter().find(|m| m.name == prefix)
        });
        match model {
            Some(m) => Ok(Some(m.name.to_string())),
            None => {
                self.unmapped.push(unmapped(
                    &path,
                    first,
                    format!("riscv,isa \"{isa}\" matches no CPU model (use -cpu help)"),
                ));
                Ok(None)
            }
        }
    }

    /// Walks every node below `/` in tree order.
    fn walk(&mut self) -> Result<(), NodeError> {
        let tree = self.tree;
        let mut stack: Vec<(String, &Node)> = tree
            .root
            .children
            .iter()
            .rev()
            .map(|c| (super::join_path("/", &c.name), c))
            .collect();
        while let Some((path, n)) = stack.pop() {
            let at_root = path.rfind('/') == Some(0);
            if at_root && STRUCTURAL.contains(&n.name.as_str()) {
                continue;
            }
            if !n.is_enabled() {
                continue;
            }
            let descend = self.node(&path, n)?;
            if descend {
                for c in n.children.iter().rev() {
                    stack.push((super::join_path(&path, &c.name), c));
                }
            }
        }
        Ok(())
    }

    /// Handles one node; returns whether to walk into its children.
    fn node(&mut self, path: &str, n: &Node) -> Result<bool, NodeError> {
        if n.prop_str("device_type") == Some("memory") {
            for (base, size) in self.tree.reg_absolute(path)? {
                self.ram.push((path.to_string(), base, size));
            }
            return Ok(false);
        }
        if let Some(t) = self.map.lookup(self.registry, n) {
            self.device(path, n, t)?;
            return Ok(false);
        }
        let compat = n.compatible();
        if compat.contains(&PLATFORM_BUS_COMPATIBLE) {
            match self.tree.bus_window(path)? {
                Some((0, base, size)) => self.bus = Some((path.to_string(), base, size)),
                _ => self.unmapped.push(unmapped(
                    path,
                    n,
                    "a platform bus needs 'ranges' mapping bus address 0",
                )),
            }
            return Ok(true);
        }
        if compat.iter().any(|c| BUS_COMPATIBLE.contains(c)) {
            return Ok(true);
        }
        if compat.iter().any(|c| HELPER_COMPATIBLE.contains(c)) {
            match n.prop_u32("regmap") {
                Some(p) => self.helpers.push((path.to_string(), p)),
                None => self.unmapped.push(unmapped(
                    path,
                    n,
                    "no 'regmap' naming the device it belongs to",
                )),
            }
            return Ok(false);
        }
        if compat.is_empty() {
            if n.has_prop("reg") {
                self.unmapped
                    .push(unmapped(path, n, "it has 'reg' but no 'compatible'"));
                return Ok(false);
            }
            // A container (no compatible, no address): look inside.
            return Ok(true);
        }
        self.unmapped.push(unmapped(
            path,
            n,
            "no device type has any of its compatible strings",
        ));
        Ok(false)
    }

    fn target(&self, phandle: u32, spec: &[u32], path: &str) -> Result<(Target, usize), NodeError> {
        let tpath = self.phandles.get(&phandle).ok_or_else(|| {
            NodeError::new(path, format!("interrupt parent {phandle:#x} names no node"))
        })?;
        let t = self.tree.node(tpath).ok_or_else(|| {
            NodeError::new(path, format!("interrupt parent {phandle:#x} names no node"))
        })?;
        let cells = t.prop_u32("#interrupt-cells").ok_or_else(|| {
            NodeError::new(
                path,
                format!("its interrupt parent '{tpath}' has no #interrupt-cells"),
            )
        })? as usize;
        let first = spec
            .first()
            .copied()
            .filter(|_| cells >= 1 && spec.len() >= cells)
            .ok_or_else(|| {
                NodeError::new(
                    path,
                    format!("an interrupt specifier for '{tpath}' needs {cells} cell(s)"),
                )
            })?;
        let target = match self.intc_hart.get(tpath) {
            Some(&hart) => Target::Cpu { hart, bit: first },
            None => Target::Controller {
                path: tpath.clone(),
                input: first,
            },
        };
        Ok((target, cells))
    }

    fn interrupts(&self, path: &str, n: &Node) -> Result<Vec<Target>, NodeError> {
        let mut out = Vec::new();
        if let Some(cells) = n.prop_cells("interrupts-extended") {
            let mut rest = cells.as_slice();
            while let Some((&p, spec)) = rest.split_first() {
                let (t, used) = self.target(p, spec, path)?;
                out.push(t);
                rest = spec.get(used..).unwrap_or_default();
            }
        } else if let Some(cells) = n.prop_cells("interrupts") {
            let parent = self
                .tree
                .interrupt_parent(path)
                .ok_or_else(|| NodeError::new(path, "'interrupts' without an interrupt-parent"))?;
            let mut rest = cells.as_slice();
            while !rest.is_empty() {
                let (t, used) = self.target(parent, rest, path)?;
                out.push(t);
                rest = rest.get(used..).unwrap_or_default();
            }
        }
        Ok(out)
    }

    fn device(&mut self, path: &str, n: &Node, t: &DeviceType) -> Result<(), NodeError> {
        let ty = t.name.to_string();
        let regs = self.tree.reg_absolute(path)?;
        let mut props = BTreeMap::new();
        for (k, v) in &n.props {
            let name = PROP_ALIASES
                .iter()
                .find(|(tt, dt, _)| *tt == ty && dt == k)
                .map_or(k.as_str(), |(_, _, p)| *p);
            let Some(spec) = t.props.iter().find(|s| s.name == name) else {
                continue;
            };
            let value = match spec.kind {
                PropKind::Int | PropKind::Size => n
                    .prop_u64(k)
                    .and_then(|v| i64::try_from(v).ok())
                    .map(TomlValue::Int),
                PropKind::Bool => v.is_empty().then_some(TomlValue::Bool(true)),
                PropKind::Str => n.prop_str(k).map(|s| TomlValue::Str(s.to_string())),
                PropKind::Link | PropKind::Chardev | PropKind::Drive => None,
            };
            if let Some(value) = value {
                props.insert(name.to_string(), value);
            }
        }
        let has = |p: &str| t.props.iter().any(|s| s.name == p);
        if has("timebase-frequency") && !props.contains_key("timebase-frequency") {
            props.insert(
                "timebase-frequency".into(),
                TomlValue::Int(i64::try_from(self.timebase).unwrap_or(i64::MAX)),
            );
        }
        if has("size")
            && !props.contains_key("size")
            && let [(_, size)] = regs.as_slice()
        {
            props.insert("size".into(), TomlValue::Str(format!("{size:#x}")));
        }
        let irqs = self.interrupts(path, n)?;
        let name = object_name(n, &mut self.names);
        self.devices.push(Dev {
            path: path.to_string(),
            name,
            ty,
            mmio: regs.iter().map(|r| r.0).collect(),
            props,
            irqs,
            irq: Vec::new(),
            irq_per_hart: Vec::new(),
        });
        Ok(())
    }

    /// Turns interrupt targets into `irq`/`irq-per-hart` and per-hart properties.
    fn wire(&mut self) -> Result<(), NodeError> {
        let by_path: BTreeMap<String, String> = self
            .devices
            .iter()
            .map(|d| (d.path.clone(), d.name.clone()))
            .collect();
        let harts = self.harts;
        for d in &mut self.devices {
            let schema = self
                .registry
                .get(&d.ty)
                .map(|t| t.props.clone())
                .unwrap_or_default();
            let has = |p: &str| schema.iter().any(|s| s.name == p);
            let cpu_only: Option<Vec<(u32, u32)>> = d
                .irqs
                .iter()
                .map(|t| match t {
                    Target::Cpu { hart, bit } => Some((*hart, *bit)),
                    Target::Controller { .. } => None,
                })
                .collect();
            if let Some(cpu) = cpu_only.filter(|c| !c.is_empty()) {
                let bits: Vec<u32> = cpu
                    .iter()
                    .take_while(|(h, _)| *h == 0)
                    .map(|(_, b)| *b)
                    .collect();
                let uniform = harts > 0
                    && cpu.len() == bits.len() * harts as usize
                    && cpu.iter().enumerate().all(|(i, &(h, b))| {
                        h as usize == i / bits.len().max(1)
                            && bits.get(i % bits.len().max(1)) == Some(&b)
                    });
                let mut per_hart: BTreeMap<u32, String> = BTreeMap::new();
                if has("hart-config") {
                    for &(h, b) in &cpu {
                        let mode = match b {
                            IRQ_M_EXT => 'M',
                            IRQ_S_EXT => 'S',
                            _ => {
                                return Err(NodeError::new(
                                    &d.path,
                                    format!(
                                        "context of hart {h} raises mip bit {b}; a PLIC context raises 11 (M) or 9 (S)"
                                    ),
                                ));
                            }
                        };
                        per_hart.entry(h).or_default().push(mode);
                    }
                }
                if uniform {
                    d.irq_per_hart = bits;
                    if let Some(cfg) = per_hart.get(&0) {
                        d.props
                            .insert("hart-config".into(), TomlValue::Str(cfg.clone()));
                    }
                } else {
                    let served = cpu
                        .iter()
                        .map(|c| c.0)
                        .max()
                        .map_or(0, |m| m.saturating_add(1));
                    if has("hart-config") {
                        let mut cfg = Vec::new();
                        for h in 0..served {
                            let Some(c) = per_hart.get(&h) else {
                                return Err(NodeError::new(
                                    &d.path,
                                    format!("hart {h} has no context between served harts"),
                                ));
                            };
                            cfg.push(c.clone());
                        }
                        // Contexts must be listed hart by hart for the outputs to line up.
                        if cpu.windows(2).any(|w| matches!(w, [a, b] if b.0 < a.0)) {
                            return Err(NodeError::new(
                                &d.path,
                                "contexts are not listed hart by hart",
                            ));
                        }
                        d.props
                            .insert("hart-config".into(), TomlValue::Str(cfg.join(",")));
                    }
                    if has("num-harts") {
                        d.props
                            .insert("num-harts".into(), TomlValue::Int(i64::from(served)));
                    }
                    d.irq = cpu.iter().map(|(h, b)| format!("cpu[{h}]:{b}")).collect();
                }
                continue;
            }
            for t in &d.irqs {
                let wire = match t {
                    Target::Cpu { hart, bit } => Some(format!("cpu[{hart}]:{bit}")),
                    Target::Controller { path, input } => {
                        by_path.get(path).map(|c| format!("{c}:{input}"))
                    }
                };
                // A hole can't be described: outputs after an unmapped controller stay unwired
                // (that controller is listed as unmapped already).
                let Some(w) = wire else { break };
                d.irq.push(w);
            }
        }
        Ok(())
    }

    /// `chardev = "serialN"` for every device with a chardev property: `/aliases/serialN`
    /// first, then the `stdout-path` device as serial0, then the rest in tree order.
    fn serials(&mut self) {
        let aliases: BTreeMap<String, u32> = self
            .tree
            .node("/aliases")
            .map(|a| {
                a.props
                    .iter()
                    .filter_map(|(k, _)| {
                        let n: u32 = k.strip_prefix("serial")?.parse().ok()?;
                        Some((a.prop_str(k)?.to_string(), n))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let stdout = self
            .tree
            .node("/chosen")
            .and_then(|c| c.prop_str("stdout-path"))
            .map(|s| s.split(':').next().unwrap_or(s).to_string());
        let registry = self.registry;
        let wants = |d: &Dev| {
            registry.get(&d.ty).is_some_and(|t| {
                t.props
                    .iter()
                    .any(|s| s.name == "chardev" && s.kind == PropKind::Chardev)
            })
        };
        let mut used: BTreeSet<u32> = BTreeSet::new();
        let mut assigned: BTreeMap<usize, u32> = BTreeMap::new();
        for (i, d) in self.devices.iter().enumerate().filter(|(_, d)| wants(d)) {
            if let Some(&n) = aliases.get(&d.path)
                && used.insert(n)
            {
                assigned.insert(i, n);
            }
        }
        for (i, d) in self.devices.iter().enumerate().filter(|(_, d)| wants(d)) {
            if !assigned.contains_key(&i)
                && stdout.as_deref() == Some(d.path.as_str())
                && used.insert(0)
            {
                assigned.insert(i, 0);
            }
        }
        for (i, d) in self.devices.iter().enumerate() {
            if !wants(d) || assigned.contains_key(&i) {
                continue;
            }
            let n = (0u32..).find(|n| !used.contains(n)).unwrap_or(0);
            used.insert(n);
            assigned.insert(i, n);
        }
        for (i, n) in assigned {
            if let Some(d) = self.devices.get_mut(i) {
                d.props
                    .insert("chardev".into(), TomlValue::Str(format!("serial{n}")));
            }
        }
    }

    fn check_helpers(&mut self) {
        let mapped: BTreeSet<&str> = self.devices.iter().map(|d| d.path.as_str()).collect();
        for (path, p) in std::mem::take(&mut self.helpers) {
            let ok = self
                .phandles
                .get(&p)
                .is_some_and(|t| mapped.contains(t.as_str()));
            if !ok && let Some(n) = self.tree.node(&path) {
                self.unmapped
                    .push(unmapped(&path, n, "its 'regmap' is not a mapped device"));
            }
        }
    }

    /// The platform bus section: window from the node's `ranges`, controller from its
    /// `interrupt-parent`, and a block of controller inputs above every one in use
    /// (QEMU's 32, ending below `riscv,ndev`, as on `virt`).
    fn platform_bus(&mut self) -> Option<PlatformBusSection> {
        let (path, base, size) = self.bus.clone()?;
        let node = self.tree.node(&path)?;
        let ctrl_path = self
            .tree
            .interrupt_parent(&path)
            .and_then(|p| self.phandles.get(&p).cloned());
        let Some(ctrl) = ctrl_path
            .as_ref()
            .and_then(|c| self.devices.iter().find(|d| &d.path == c))
        else {
            self.unmapped.push(unmapped(
                &path,
                node,
                "its interrupt-parent is not a mapped interrupt controller",
            ));
            return None;
        };
        let ndev = self
            .tree
            .node(&ctrl.path)
            .and_then(|n| n.prop_u32("riscv,ndev"))
            .map_or(0, u64::from);
        let used = self
            .devices
            .iter()
            .flat_map(|d| &d.irqs)
            .filter_map(|t| match t {
                Target::Controller { path, input } if Some(path) == ctrl_path.as_ref() => {
                    Some(u64::from(*input))
                }
                _ => None,
            })
            .max()
            .unwrap_or(0);
        let irq_base = used
            .saturating_add(1)
            .max(ndev.saturating_sub(PLATFORM_BUS_IRQS));
        let irq_count = ndev.saturating_sub(irq_base).min(PLATFORM_BUS_IRQS);
        Some(PlatformBusSection {
            base,
            size,
            irq_controller: ctrl.name.clone(),
            irq_base: u32::try_from(irq_base).unwrap_or(u32::MAX),
            irq_count: u32::try_from(irq_count).unwrap_or(0),
        })
    }
}

/// Whether any device or memory range overlaps `[base, base+size)`.
fn occupied(tree: &Dtb, base: u64, size: u64) -> bool {
    let end = base.saturating_add(size);
    tree.nodes().iter().any(|(p, n)| {
        n.has_prop("reg")
            && !p.starts_with("/cpus")
            && tree.reg_absolute(p).is_ok_and(|r| {
                r.iter()
                    .any(|&(a, s)| a < end && base < a.saturating_add(s))
            })
    })
}

/// `128M`-style text for a size when exact, else hex.
fn size_text(size: u64) -> String {
    for (shift, suffix) in [(30, "G"), (20, "M"), (10, "K")] {
        if size != 0 && size.trailing_zeros() >= shift {
            return format!("{}{suffix}", size >> shift);
        }
    }
    format!("{size:#x}")
}

/// Builds a machine description from a DTB. `origin` names the file in messages and becomes
/// the machine's name; `ignore_unknown` is `dtb-board-ignore-unknown=on`.
pub fn description_from_dtb(
    blob: &[u8],
    origin: &str,
    registry: &TypeRegistry,
    ignore_unknown: bool,
) -> Result<DtbBoard, BoardError> {
    let tree = Dtb::parse(blob).map_err(|source| BoardError::Parse {
        origin: origin.to_string(),
        source,
    })?;
    let node_err = |source| BoardError::Node {
        origin: origin.to_string(),
        source,
    };
    let mut b = Builder {
        tree: &tree,
        registry,
        map: CompatibleMap::from_registry(registry),
        phandles: tree.phandles().map_err(node_err)?,
        harts: 0,
        intc_hart: BTreeMap::new(),
        timebase: 10_000_000,
        devices: Vec::new(),
        names: BTreeSet::new(),
        unmapped: Vec::new(),
        ram: Vec::new(),
        helpers: Vec::new(),
        bus: None,
    };
    let cpu_type = b.cpus().map_err(node_err)?;
    b.walk().map_err(node_err)?;
    // Extra memory ranges become RAM devices; the first is the machine's RAM.
    let mut ram = b.ram.clone().into_iter();
    let main_ram = ram.next();
    for (path, base, size) in ram {
        if registry.get("sysbus-memory").is_none() {
            if let Some(n) = tree.node(&path) {
                b.unmapped.push(unmapped(
                    &path,
                    n,
                    "no 'sysbus-memory' type for a second RAM range",
                ));
            }
            continue;
        }
        let name = object_name(&Node::new(&format!("ram@{base:x}")), &mut b.names);
        b.devices.push(Dev {
            path: format!("{path}#{base:x}"),
            name,
            ty: "sysbus-memory".into(),
            mmio: vec![base],
            props: BTreeMap::from([("size".to_string(), TomlValue::Str(format!("{size:#x}")))]),
            irqs: Vec::new(),
            irq: Vec::new(),
            irq_per_hart: Vec::new(),
        });
    }
    b.check_helpers();
    let platform_bus = b.platform_bus();
    b.wire().map_err(node_err)?;
    b.serials();
    // Wires to unmapped controllers were dropped in `wire`; the controllers are listed.
    if !b.unmapped.is_empty() && !ignore_unknown {
        return Err(BoardError::Unmapped {
            origin: origin.to_string(),
            nodes: b.unmapped,
        });
    }

    let root = &tree.root;
    let name = std::path::Path::new(origin)
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty())
        .unwrap_or("dtb-board")
        .to_string();
    let desc = Description {
        machine: MachineSection {
            name,
            description: format!("machine built from device tree '{origin}'"),
            compatible: root.compatible().iter().map(|s| (*s).to_string()).collect(),
            model: root.prop_str("model").unwrap_or_default().to_string(),
            ram_base: main_ram.as_ref().map(|r| r.1),
            default_ram: main_ram.as_ref().map(|r| size_text(r.2)),
            max_cpus: b.harts.max(16),
            stdout_path: tree
                .node("/chosen")
                .and_then(|c| c.prop_str("stdout-path"))
                .map(str::to_string),
            reset_rom: (!occupied(&tree, RESET_ROM.0, RESET_ROM.1)).then_some(RESET_ROM.0),
            firmware_required: false,
            phandle_start: b.phandles.keys().next().copied(),
            allow_dynamic: if platform_bus.is_some() {
                vec!["*".into()]
            } else {
                Vec::new()
            },
            plugins: Vec::new(),
        },
        cpu: CpuSection {
            cpu_type,
            count: b.harts,
            timebase_frequency: b.timebase,
            reset_pc: None,
        },
        devices: b
            .devices
            .into_iter()
            .map(|d| DeviceSection {
                name: d.name,
                dev_type: d.ty,
                mmio: d.mmio,
                irq: d.irq,
                irq_per_hart: d.irq_per_hart,
                props: d.props,
            })
            .collect(),
        platform_bus,
        origin: origin.to_string(),
    };
    let toml = description_to_toml(&desc).map_err(|message| BoardError::Export {
        origin: origin.to_string(),
        message,
    })?;
    let desc = Description::parse(&toml, origin).map_err(|source| BoardError::Description {
        origin: origin.to_string(),
        source,
    })?;
    Ok(DtbBoard {
        desc,
        toml,
        skipped: b.unmapped,
    })
}

fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        k.to_string()
    } else {
        quote(k)
    }
}

fn hex(v: u64, what: &str) -> Result<String, String> {
    // TOML integers are signed 64-bit.
    if i64::try_from(v).is_err() {
        return Err(format!("{what} {v:#x} does not fit a TOML integer"));
    }
    Ok(format!("{v:#x}"))
}

fn strings(list: &[String]) -> String {
    let q: Vec<String> = list.iter().map(|s| quote(s)).collect();
    format!("[{}]", q.join(", "))
}

/// The description as TOML text, in the schema `-M board.toml` reads.
pub fn description_to_toml(d: &Description) -> Result<String, String> {
    let m = &d.machine;
    let mut s = String::new();
    let _ = writeln!(s, "# Made by breadboard from {}.\n\n[machine]", d.origin);
    let _ = writeln!(s, "name = {}", quote(&m.name));
    let _ = writeln!(s, "description = {}", quote(&m.description));
    let _ = writeln!(s, "compatible = {}", strings(&m.compatible));
    let _ = writeln!(s, "model = {}", quote(&m.model));
    if let Some(b) = m.ram_base {
        let _ = writeln!(s, "ram-base = {}", hex(b, "ram-base")?);
    }
    if let Some(r) = &m.default_ram {
        let _ = writeln!(s, "default-ram = {}", quote(r));
    }
    let _ = writeln!(s, "max-cpus = {}", m.max_cpus);
    if let Some(p) = &m.stdout_path {
        let _ = writeln!(s, "stdout-path = {}", quote(p));
    }
    if let Some(r) = m.reset_rom {
        let _ = writeln!(s, "reset-rom = {}", hex(r, "reset-rom")?);
    }
    let _ = writeln!(s, "firmware-required = {}", m.firmware_required);
    if let Some(p) = m.phandle_start {
        let _ = writeln!(s, "phandle-start = {p}");
    }
    if !m.allow_dynamic.is_empty() {
        let _ = writeln!(s, "allow-dynamic = {}", strings(&m.allow_dynamic));
    }
    if !m.plugins.is_empty() {
        let _ = writeln!(s, "plugins = {}", strings(&m.plugins));
    }
    let _ = writeln!(s, "\n[cpu]");
    if let Some(t) = &d.cpu.cpu_type {
        let _ = writeln!(s, "type = {}", quote(t));
    }
    let _ = writeln!(s, "count = {}", d.cpu.count);
    let _ = writeln!(s, "timebase-frequency = {}", d.cpu.timebase_frequency);
    if let Some(pc) = d.cpu.reset_pc {
        let _ = writeln!(s, "reset-pc = {}", hex(pc, "reset-pc")?);
    }
    for dev in &d.devices {
        let _ = writeln!(s, "\n[[device]]");
        let _ = writeln!(s, "name = {}", quote(&dev.name));
        let _ = writeln!(s, "type = {}", quote(&dev.dev_type));
        if !dev.mmio.is_empty() {
            let addrs: Result<Vec<String>, String> =
                dev.mmio.iter().map(|a| hex(*a, "mmio address")).collect();
            let _ = writeln!(s, "mmio = [{}]", addrs?.join(", "));
        }
        if !dev.irq.is_empty() {
            let _ = writeln!(s, "irq = {}", strings(&dev.irq));
        }
        if !dev.irq_per_hart.is_empty() {
            let bits: Vec<String> = dev.irq_per_hart.iter().map(u32::to_string).collect();
            let _ = writeln!(s, "irq-per-hart = [{}]", bits.join(", "));
        }
        if !dev.props.is_empty() {
            let props: Vec<String> = dev
                .props
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        TomlValue::Str(x) => quote(x),
                        TomlValue::Int(i) => i.to_string(),
                        TomlValue::Bool(b) => b.to_string(),
                    };
                    format!("{} = {v}", key(k))
                })
                .collect();
            let _ = writeln!(s, "props = {{ {} }}", props.join(", "));
        }
    }
    if let Some(pb) = &d.platform_bus {
        let _ = writeln!(s, "\n[platform-bus]");
        let _ = writeln!(s, "base = {}", hex(pb.base, "platform bus base")?);
        let _ = writeln!(s, "size = {}", hex(pb.size, "platform bus size")?);
        let _ = writeln!(s, "irq-controller = {}", quote(&pb.irq_controller));
        let _ = writeln!(s, "irq-base = {}", pb.irq_base);
        let _ = writeln!(s, "irq-count = {}", pb.irq_count);
    }
    Ok(s)
}
