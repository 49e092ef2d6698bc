//! Device-tree blobs from users (Devicetree Specification v0.4, chapter 5 "Flattened
//! Devicetree (DTB) Format"): breadboard's own parser for untrusted files ([`parse`]), a simple
//! owned tree with property helpers (this file), the `-dtb FILE` merge ([`merge`]) and
//! `-machine dtb-board=FILE` ([`board`]).
//!
//! The tree is written back with vm-fdt, the writer the machine's own tree uses. The parser is
//! our own because the `fdt` and `flat_device_tree` crates panic on malformed blobs; this one
//! returns a [`DtbError`] with the byte offset for every defect and is fuzzed by the tests.
// Reads guest, file, socket or plugin input: no panicking shortcuts (SECURITY.md, issue 9).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

pub mod board;
pub mod merge;
pub mod parse;

use std::collections::BTreeMap;

use thiserror::Error;

pub use board::{BoardError, DtbBoard, Unmapped, description_from_dtb, description_to_toml};
pub use merge::{MergeError, merge_user_dtb};
pub use parse::{Block, DtbError, DtbErrorKind};

/// One node: its name (`serial@10000000`, `""` for the root), properties in blob order, and
/// children in blob order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Node {
    /// Node name with unit address.
    pub name: String,
    /// Properties: name and raw (big-endian) value.
    pub props: Vec<(String, Vec<u8>)>,
    /// Subnodes.
    pub children: Vec<Node>,
}

/// A whole device tree: the root node plus the two header fields that are not part of it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dtb {
    /// `/`.
    pub root: Node,
    /// Memory reservation block entries (address, size).
    pub reserved: Vec<(u64, u64)>,
    /// Header `boot_cpuid_phys`.
    pub boot_cpuid_phys: u32,
}

/// A property or node that does not say what the reader needs (wrong length, missing cells,
/// a dangling phandle).
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("node '{path}': {message}")]
pub struct NodeError {
    /// Path of the node at fault.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

impl NodeError {
    fn new(path: &str, message: impl Into<String>) -> NodeError {
        NodeError {
            path: path.to_string(),
            message: message.into(),
        }
    }
}

/// Writing a tree back failed (vm-fdt refused a name, or the blob would pass 4 GiB).
#[derive(Debug, Error)]
#[error("cannot write {what} '{path}' into a device tree blob")]
pub struct WriteError {
    /// `node` or `property`.
    pub what: &'static str,
    /// Path of the node (and property).
    pub path: String,
    /// vm-fdt's reason.
    #[source]
    pub source: vm_fdt::Error,
}

/// Big-endian cells as bytes.
pub fn encode_cells(cells: &[u32]) -> Vec<u8> {
    cells.iter().flat_map(|c| c.to_be_bytes()).collect()
}

/// A NUL-terminated string as bytes.
pub fn encode_str(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// A string list (`compatible`) as bytes.
pub fn encode_strings(list: &[&str]) -> Vec<u8> {
    list.iter().flat_map(|s| encode_str(s)).collect()
}

/// Reads `n` (0..=2) cells from the front of `cells` as one number.
fn take_cells(cells: &mut &[u32], n: u32) -> Option<u64> {
    let n = usize::try_from(n).ok()?;
    let (head, rest) = cells.split_at_checked(n)?;
    *cells = rest;
    match head {
        [] => Some(0),
        [a] => Some(u64::from(*a)),
        [hi, lo] => Some((u64::from(*hi) << 32) | u64::from(*lo)),
        // Three or more cells (PCI addresses) do not fit a CPU address here.
        _ => None,
    }
}

/// Appends `v` as `n` (1 or 2) cells.
pub fn push_cells(out: &mut Vec<u32>, v: u64, n: u32) {
    if n >= 2 {
        out.push((v >> 32) as u32);
    }
    if n >= 1 {
        out.push(v as u32);
    }
}

/// `parent/child` path.
pub fn join_path(parent: &str, name: &str) -> String {
    if parent == "/" || parent.is_empty() {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

impl Node {
    /// A node without properties or children.
    pub fn new(name: &str) -> Node {
        Node {
            name: name.to_string(),
            ..Node::default()
        }
    }

    /// The raw value of property `name`.
    pub fn prop(&self, name: &str) -> Option<&[u8]> {
        self.props
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// Whether property `name` exists (boolean properties are empty).
    pub fn has_prop(&self, name: &str) -> bool {
        self.prop(name).is_some()
    }

    /// A property holding exactly one cell.
    pub fn prop_u32(&self, name: &str) -> Option<u32> {
        let b: [u8; 4] = self.prop(name)?.try_into().ok()?;
        Some(u32::from_be_bytes(b))
    }

    /// A property holding one or two cells (`clock-frequency` may be either).
    pub fn prop_u64(&self, name: &str) -> Option<u64> {
        let v = self.prop(name)?;
        if let Ok(b) = <[u8; 8]>::try_from(v) {
            return Some(u64::from_be_bytes(b));
        }
        self.prop_u32(name).map(u64::from)
    }

    /// A property as a list of cells; `None` if its length is not a multiple of 4.
    pub fn prop_cells(&self, name: &str) -> Option<Vec<u32>> {
        let v = self.prop(name)?;
        if !v.len().is_multiple_of(4) {
            return None;
        }
        Some(
            v.chunks_exact(4)
                .map(|c| u32::from_be_bytes(c.try_into().unwrap_or_default()))
                .collect(),
        )
    }

    /// A property holding one NUL-terminated UTF-8 string.
    pub fn prop_str(&self, name: &str) -> Option<&str> {
        let v = self.prop(name)?.strip_suffix(&[0])?;
        if v.contains(&0) {
            return None;
        }
        std::str::from_utf8(v).ok()
    }

    /// A property holding a list of NUL-terminated UTF-8 strings.
    pub fn prop_strings(&self, name: &str) -> Option<Vec<&str>> {
        let v = self.prop(name)?.strip_suffix(&[0])?;
        v.split(|&b| b == 0)
            .map(|s| std::str::from_utf8(s).ok())
            .collect()
    }

    /// The `compatible` strings (empty if absent or malformed).
    pub fn compatible(&self) -> Vec<&str> {
        self.prop_strings("compatible").unwrap_or_default()
    }

    /// Whether `compatible` lists `c`.
    pub fn is_compatible(&self, c: &str) -> bool {
        self.compatible().contains(&c)
    }

    /// This node's phandle (`phandle`, or the older `linux,phandle`).
    pub fn phandle(&self) -> Option<u32> {
        self.prop_u32("phandle")
            .or_else(|| self.prop_u32("linux,phandle"))
    }

    /// `status` is absent, `okay` or `ok`.
    pub fn is_enabled(&self) -> bool {
        self.prop_str("status")
            .is_none_or(|s| s == "okay" || s == "ok")
    }

    /// Sets property `name`, keeping its place if it exists.
    pub fn set_prop(&mut self, name: &str, value: Vec<u8>) {
        match self.props.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value,
            None => self.props.push((name.to_string(), value)),
        }
    }

    /// Sets a one-cell property.
    pub fn set_prop_u32(&mut self, name: &str, value: u32) {
        self.set_prop(name, value.to_be_bytes().to_vec());
    }

    /// Sets a two-cell property.
    pub fn set_prop_u64(&mut self, name: &str, value: u64) {
        self.set_prop(name, value.to_be_bytes().to_vec());
    }

    /// Sets a string property.
    pub fn set_prop_str(&mut self, name: &str, value: &str) {
        self.set_prop(name, encode_str(value));
    }

    /// Removes property `name`; returns whether it existed.
    pub fn remove_prop(&mut self, name: &str) -> bool {
        let before = self.props.len();
        self.props.retain(|(n, _)| n != name);
        before != self.props.len()
    }

    /// The child called `name` (full name, with unit address).
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The child called `name`, mutably.
    pub fn child_mut(&mut self, name: &str) -> Option<&mut Node> {
        self.children.iter_mut().find(|c| c.name == name)
    }

    /// The part of the name before `@`.
    pub fn base_name(&self) -> &str {
        self.name
            .split_once('@')
            .map_or(self.name.as_str(), |(b, _)| b)
    }

    /// The part of the name after `@`.
    pub fn unit_address(&self) -> Option<&str> {
        self.name.split_once('@').map(|(_, u)| u)
    }

    /// `#address-cells` this node gives its children (2 if absent, per the specification).
    pub fn address_cells(&self) -> u32 {
        self.prop_u32("#address-cells").unwrap_or(2)
    }

    /// `#size-cells` this node gives its children (1 if absent).
    pub fn size_cells(&self) -> u32 {
        self.prop_u32("#size-cells").unwrap_or(1)
    }
}

/// What a bus's `ranges` says.
enum Ranges {
    /// No `ranges`: children's addresses are not CPU addresses.
    None,
    /// Empty `ranges`: identity.
    Identity,
    /// (child address, parent address, size) entries.
    Map(Vec<(u64, u64, u64)>),
}

impl Dtb {
    /// Parses an untrusted blob. See [`parse::parse`].
    pub fn parse(blob: &[u8]) -> Result<Dtb, DtbError> {
        parse::parse(blob)
    }

    /// The node at `path` (`/`, `/soc/serial@10000000`).
    pub fn node(&self, path: &str) -> Option<&Node> {
        self.chain(path).and_then(|c| c.last().copied())
    }

    /// The node at `path`, mutably.
    pub fn node_mut(&mut self, path: &str) -> Option<&mut Node> {
        let mut n = &mut self.root;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            n = n.child_mut(part)?;
        }
        Some(n)
    }

    /// The nodes from `/` down to `path`, inclusive.
    pub fn chain(&self, path: &str) -> Option<Vec<&Node>> {
        if !path.starts_with('/') {
            return None;
        }
        let mut n = &self.root;
        let mut out = vec![n];
        for part in path.split('/').filter(|p| !p.is_empty()) {
            n = n.child(part)?;
            out.push(n);
        }
        Some(out)
    }

    /// Every node with its path, in blob (pre-)order.
    pub fn nodes(&self) -> Vec<(String, &Node)> {
        let mut out = Vec::new();
        let mut stack: Vec<(String, &Node)> = vec![("/".to_string(), &self.root)];
        while let Some((path, n)) = stack.pop() {
            for c in n.children.iter().rev() {
                stack.push((join_path(&path, &c.name), c));
            }
            out.push((path, n));
        }
        out
    }

    /// Phandle → path of every node that has one. Two nodes with one phandle is an error
    /// naming both.
    pub fn phandles(&self) -> Result<BTreeMap<u32, String>, NodeError> {
        let mut map = BTreeMap::new();
        for (path, n) in self.nodes() {
            for p in [n.prop_u32("phandle"), n.prop_u32("linux,phandle")]
                .into_iter()
                .flatten()
            {
                if let Some(first) = map.get(&p)
                    && *first != path
                {
                    return Err(NodeError::new(
                        &path,
                        format!("phandle {p:#x} is also the phandle of '{first}'"),
                    ));
                }
                map.insert(p, path.clone());
            }
        }
        Ok(map)
    }

    /// Path of the node with phandle `p`.
    pub fn find_phandle(&self, p: u32) -> Option<String> {
        self.nodes()
            .into_iter()
            .find(|(_, n)| {
                n.prop_u32("phandle") == Some(p) || n.prop_u32("linux,phandle") == Some(p)
            })
            .map(|(path, _)| path)
    }

    /// The highest phandle in the tree (0 if none).
    pub fn max_phandle(&self) -> u32 {
        self.nodes()
            .iter()
            .flat_map(|(_, n)| [n.prop_u32("phandle"), n.prop_u32("linux,phandle")])
            .flatten()
            .max()
            .unwrap_or(0)
    }

    /// The `interrupt-parent` in effect for `path` (its own or the nearest ancestor's).
    pub fn interrupt_parent(&self, path: &str) -> Option<u32> {
        self.chain(path)?
            .iter()
            .rev()
            .find_map(|n| n.prop_u32("interrupt-parent"))
    }

    /// `reg` of the node at `path` as (address, size) pairs in its parent's address space,
    /// decoded with the parent's `#address-cells`/`#size-cells`.
    pub fn reg(&self, path: &str) -> Result<Vec<(u64, u64)>, NodeError> {
        let chain = self
            .chain(path)
            .ok_or_else(|| NodeError::new(path, "no such node"))?;
        let (Some(node), Some(parent)) = (
            chain.last(),
            chain.len().checked_sub(2).and_then(|i| chain.get(i)),
        ) else {
            return Err(NodeError::new(path, "the root node has no 'reg'"));
        };
        let Some(cells) = node.prop_cells("reg") else {
            return if node.has_prop("reg") {
                Err(NodeError::new(path, "'reg' is not a list of 32-bit cells"))
            } else {
                Ok(Vec::new())
            };
        };
        let (ac, sc) = (parent.address_cells(), parent.size_cells());
        let per = ac.saturating_add(sc);
        if !(1..=2).contains(&ac) || sc > 2 || per == 0 {
            return Err(NodeError::new(
                path,
                format!(
                    "parent has #address-cells = {ac}, #size-cells = {sc}; 'reg' needs 1-2 and 0-2"
                ),
            ));
        }
        if !cells.len().is_multiple_of(per as usize) {
            return Err(NodeError::new(
                path,
                format!(
                    "'reg' has {} cells, not a multiple of #address-cells + #size-cells = {per}",
                    cells.len()
                ),
            ));
        }
        let mut rest = cells.as_slice();
        let mut out = Vec::new();
        while !rest.is_empty() {
            let (Some(a), Some(s)) = (take_cells(&mut rest, ac), take_cells(&mut rest, sc)) else {
                return Err(NodeError::new(path, "'reg' is truncated"));
            };
            out.push((a, s));
        }
        Ok(out)
    }

    /// `reg` of the node at `path` translated to CPU (root) addresses through every ancestor's
    /// `ranges`.
    pub fn reg_absolute(&self, path: &str) -> Result<Vec<(u64, u64)>, NodeError> {
        let chain = self
            .chain(path)
            .ok_or_else(|| NodeError::new(path, "no such node"))?;
        let buses = chain
            .get(..chain.len().saturating_sub(1))
            .unwrap_or_default();
        self.reg(path)?
            .into_iter()
            .map(|(a, s)| Ok((to_root(buses, a, path)?, s)))
            .collect()
    }

    /// The address a child of the bus at `bus_path` has for CPU address `addr`: the inverse
    /// of the bus's (and its ancestors') `ranges`. `None` if no range covers it.
    pub fn from_root(
        &self,
        bus_path: &str,
        addr: u64,
        size: u64,
    ) -> Result<Option<u64>, NodeError> {
        let chain = self
            .chain(bus_path)
            .ok_or_else(|| NodeError::new(bus_path, "no such node"))?;
        let mut a = addr;
        // chain[0] is the root, whose children see CPU addresses; every later bus maps its
        // parent's address space into its own.
        for i in 1..chain.len() {
            let (Some(bus), Some(parent)) = (chain.get(i), chain.get(i - 1)) else {
                break;
            };
            let path = chain_path(&chain, i);
            match ranges(bus, parent, &path)? {
                Ranges::None => return Ok(None),
                Ranges::Identity => {}
                Ranges::Map(entries) => {
                    let hit = entries.iter().find(|(_, p, s)| {
                        a >= *p
                            && a.checked_add(size)
                                .is_some_and(|e| p.checked_add(*s).is_some_and(|pe| e <= pe))
                    });
                    match hit {
                        Some((c, p, _)) => a = c.wrapping_add(a - p),
                        None => return Ok(None),
                    }
                }
            }
        }
        Ok(Some(a))
    }

    /// The CPU address range a bus's first `ranges` entry maps (`platform-bus` windows);
    /// `None` if the bus has no `ranges` or an empty (identity) one.
    pub fn bus_window(&self, bus_path: &str) -> Result<Option<(u64, u64, u64)>, NodeError> {
        let chain = self
            .chain(bus_path)
            .ok_or_else(|| NodeError::new(bus_path, "no such node"))?;
        let (Some(bus), Some(parent)) = (
            chain.last(),
            chain.len().checked_sub(2).and_then(|i| chain.get(i)),
        ) else {
            return Ok(None);
        };
        let Ranges::Map(entries) = ranges(bus, parent, bus_path)? else {
            return Ok(None);
        };
        let Some(&(child, parent_addr, size)) = entries.first() else {
            return Ok(None);
        };
        let parents = chain
            .get(..chain.len().saturating_sub(1))
            .unwrap_or_default();
        Ok(Some((
            child,
            to_root(parents, parent_addr, bus_path)?,
            size,
        )))
    }

    /// Writes the tree as a blob with vm-fdt.
    pub fn to_blob(&self) -> Result<Vec<u8>, WriteError> {
        let mut rsv = Vec::new();
        for &(a, s) in self.reserved.iter().filter(|(_, s)| *s != 0) {
            rsv.push(vm_fdt::FdtReserveEntry::new(a, s).map_err(|e| WriteError {
                what: "memory reservation",
                path: format!("{a:#x}+{s:#x}"),
                source: e,
            })?);
        }
        let mut w = vm_fdt::FdtWriter::new_with_mem_reserv(&rsv).map_err(|e| WriteError {
            what: "memory reservation",
            path: "map".into(),
            source: e,
        })?;
        w.set_boot_cpuid_phys(self.boot_cpuid_phys);
        write_node(&mut w, &self.root, "/")?;
        w.finish().map_err(|e| WriteError {
            what: "node",
            path: "/".into(),
            source: e,
        })
    }
}

/// Path of `chain[i]`.
fn chain_path(chain: &[&Node], i: usize) -> String {
    let mut p = String::from("/");
    for n in chain.iter().take(i + 1).skip(1) {
        p = join_path(&p, &n.name);
    }
    p
}

/// Decodes `bus`'s `ranges` (child cells from `bus`, parent cells from `parent`).
fn ranges(bus: &Node, parent: &Node, path: &str) -> Result<Ranges, NodeError> {
    let Some(raw) = bus.prop("ranges") else {
        return Ok(Ranges::None);
    };
    if raw.is_empty() {
        return Ok(Ranges::Identity);
    }
    let cells = bus
        .prop_cells("ranges")
        .ok_or_else(|| NodeError::new(path, "'ranges' is not a list of 32-bit cells"))?;
    let (ca, pa, cs) = (
        bus.address_cells(),
        parent.address_cells(),
        bus.size_cells(),
    );
    let per = ca.saturating_add(pa).saturating_add(cs) as usize;
    if !(1..=2).contains(&ca)
        || !(1..=2).contains(&pa)
        || !(1..=2).contains(&cs)
        || !cells.len().is_multiple_of(per)
    {
        return Err(NodeError::new(
            path,
            format!(
                "'ranges' has {} cells; with #address-cells {ca}, parent #address-cells {pa} and \
                 #size-cells {cs} it must be a multiple of {per}",
                cells.len()
            ),
        ));
    }
    let mut rest = cells.as_slice();
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (Some(c), Some(p), Some(s)) = (
            take_cells(&mut rest, ca),
            take_cells(&mut rest, pa),
            take_cells(&mut rest, cs),
        ) else {
            return Err(NodeError::new(path, "'ranges' is truncated"));
        };
        out.push((c, p, s));
    }
    Ok(Ranges::Map(out))
}

/// Translates `addr`, an address on the bus `buses.last()`, to a CPU address.
fn to_root(buses: &[&Node], addr: u64, path: &str) -> Result<u64, NodeError> {
    let mut a = addr;
    for i in (1..buses.len()).rev() {
        let (Some(bus), Some(parent)) = (buses.get(i), buses.get(i - 1)) else {
            break;
        };
        let bus_path = chain_path(buses, i);
        match ranges(bus, parent, &bus_path)? {
            Ranges::None => {
                return Err(NodeError::new(
                    path,
                    format!(
                        "its bus '{bus_path}' has no 'ranges', so its address is not a CPU address"
                    ),
                ));
            }
            Ranges::Identity => {}
            Ranges::Map(entries) => {
                let (c, p, _) = entries
                    .iter()
                    .find(|(c, _, s)| a >= *c && a - c < *s)
                    .ok_or_else(|| {
                        NodeError::new(
                            path,
                            format!("address {a:#x} is outside every range of bus '{bus_path}'"),
                        )
                    })?;
                a = p.checked_add(a - c).ok_or_else(|| {
                    NodeError::new(
                        path,
                        format!("address {a:#x} overflows through bus '{bus_path}'"),
                    )
                })?;
            }
        }
    }
    Ok(a)
}

fn write_node(w: &mut vm_fdt::FdtWriter, n: &Node, path: &str) -> Result<(), WriteError> {
    let werr = |what, path: String| {
        move |e| WriteError {
            what,
            path,
            source: e,
        }
    };
    let token = w
        .begin_node(&n.name)
        .map_err(werr("node", path.to_string()))?;
    for (name, value) in &n.props {
        w.property(name, value)
            .map_err(werr("property", format!("{path}:{name}")))?;
    }
    for c in &n.children {
        // Depth is bounded: vm-fdt refuses a 65th level before this recursion gets deeper.
        write_node(w, c, &join_path(path, &c.name))?;
    }
    w.end_node(token).map_err(werr("node", path.to_string()))
}

/// The source chain of an error as one line (`a: b: c`), for callers that keep only text.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
// Tests: a failing unwrap, index or panic is a failed test (as clippy.toml allows).
#[allow(clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn tree() -> Dtb {
        let mut root = Node::new("");
        root.set_prop_u32("#address-cells", 2);
        root.set_prop_u32("#size-cells", 2);
        let mut bus = Node::new("bus@4000000");
        bus.set_prop_u32("#address-cells", 1);
        bus.set_prop_u32("#size-cells", 1);
        bus.set_prop("ranges", encode_cells(&[0, 0, 0x400_0000, 0x200_0000]));
        let mut dev = Node::new("serial@1000");
        dev.set_prop("reg", encode_cells(&[0x1000, 0x100]));
        dev.set_prop("compatible", encode_strings(&["ns16550a", "ns16550"]));
        bus.children.push(dev);
        root.children.push(bus);
        Dtb {
            root,
            ..Dtb::default()
        }
    }

    #[test]
    fn test_reg_is_translated_through_ranges_and_back() {
        let t = tree();
        let p = "/bus@4000000/serial@1000";
        assert_eq!(t.reg(p).unwrap(), vec![(0x1000, 0x100)]);
        assert_eq!(t.reg_absolute(p).unwrap(), vec![(0x400_1000, 0x100)]);
        assert_eq!(
            t.from_root("/bus@4000000", 0x400_1000, 0x100).unwrap(),
            Some(0x1000)
        );
        assert_eq!(
            t.from_root("/bus@4000000", 0x800_0000, 0x100).unwrap(),
            None
        );
    }

    #[test]
    fn test_string_helpers_reject_malformed_values() {
        let t = tree();
        let n = t.node("/bus@4000000/serial@1000").unwrap();
        assert_eq!(n.compatible(), vec!["ns16550a", "ns16550"]);
        assert_eq!(n.prop_str("compatible"), None, "a list is not one string");
        let mut m = Node::new("x");
        m.set_prop("s", b"abc".to_vec());
        assert_eq!(m.prop_str("s"), None, "missing NUL");
        assert_eq!(m.prop_cells("s"), None, "not a multiple of 4");
    }

    #[test]
    fn test_duplicate_phandles_name_both_nodes() {
        let mut t = tree();
        t.root.set_prop_u32("phandle", 1);
        t.root.children[0].set_prop_u32("phandle", 1);
        let e = t.phandles().unwrap_err();
        assert_eq!(e.path, "/bus@4000000");
        assert!(e.message.contains("'/'"), "{e}");
    }
}
