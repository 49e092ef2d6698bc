//! Device-tree writing support shared by every device: each device writes its own node from
//! the resources the machine gave it (`reg` in its parent's cells, interrupts resolved to the
//! controller's phandle and specifier).

pub use vm_fdt::{Error as FdtError, FdtWriter, FdtWriterNode};

/// Where one IRQ output of a device ends up, in device-tree terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IrqTarget {
    /// Phandle of the interrupt controller (a PLIC, or a hart's `riscv,cpu-intc`).
    pub phandle: u32,
    /// The interrupt specifier cells (e.g. `[10]` for PLIC source 10, `[11]` for MEI).
    pub specifier: Vec<u32>,
}

/// What a device's node needs to know about where the machine put it.
#[derive(Clone, Debug, Default)]
pub struct NodeResources {
    /// Mapped regions as (address in the parent's address space, size), in region order.
    pub regs: Vec<(u64, u64)>,
    /// `#address-cells` of the parent node.
    pub address_cells: u32,
    /// `#size-cells` of the parent node.
    pub size_cells: u32,
    /// Targets of the device's IRQ outputs, in output order (`None` = unwired).
    pub irqs: Vec<Option<IrqTarget>>,
    /// This device's own phandle, if other nodes reference it (interrupt controllers, syscon).
    pub phandle: Option<u32>,
    /// Phandles of the `riscv,cpu-intc` node of each hart, by hart index (for CLINT/PLIC).
    pub cpu_intc_phandles: Vec<u32>,
    /// The phandle of the main interrupt controller, used as `interrupt-parent` hint.
    pub default_interrupt_parent: Option<u32>,
}

impl NodeResources {
    /// First mapped address (the unit address), 0 if unmapped.
    pub fn base(&self) -> u64 {
        self.regs.first().map_or(0, |r| r.0)
    }

    /// Node name `prefix@<unit address in hex>`.
    pub fn node_name(&self, prefix: &str) -> String {
        format!("{prefix}@{:x}", self.base())
    }

    fn push_cells(out: &mut Vec<u32>, v: u64, cells: u32) {
        if cells >= 2 {
            out.push((v >> 32) as u32);
        }
        if cells >= 1 {
            out.push(v as u32);
        }
    }

    /// The `reg` value in the parent's cells.
    pub fn reg_cells(&self) -> Vec<u32> {
        let mut out = Vec::new();
        for &(a, s) in &self.regs {
            Self::push_cells(&mut out, a, self.address_cells);
            Self::push_cells(&mut out, s, self.size_cells);
        }
        out
    }

    /// Writes `reg` (if mapped).
    pub fn write_reg(&self, fdt: &mut FdtWriter) -> Result<(), FdtError> {
        if self.regs.is_empty() {
            return Ok(());
        }
        fdt.property_array_u32("reg", &self.reg_cells())
    }

    /// Writes `interrupt-parent` + `interrupts` when every wired output goes to one
    /// controller, otherwise `interrupts-extended`. Nothing if no output is wired.
    pub fn write_interrupts(&self, fdt: &mut FdtWriter) -> Result<(), FdtError> {
        let wired: Vec<&IrqTarget> = self.irqs.iter().flatten().collect();
        let Some(first) = wired.first() else {
            return Ok(());
        };
        if wired.iter().all(|t| t.phandle == first.phandle) && wired.len() == self.irqs.len() {
            let cells: Vec<u32> = wired.iter().flat_map(|t| t.specifier.clone()).collect();
            fdt.property_u32("interrupt-parent", first.phandle)?;
            fdt.property_array_u32("interrupts", &cells)
        } else {
            let cells: Vec<u32> = wired
                .iter()
                .flat_map(|t| std::iter::once(t.phandle).chain(t.specifier.iter().copied()))
                .collect();
            fdt.property_array_u32("interrupts-extended", &cells)
        }
    }

    /// Writes this device's `phandle` if it has one.
    pub fn write_phandle(&self, fdt: &mut FdtWriter) -> Result<(), FdtError> {
        match self.phandle {
            Some(p) => fdt.property_phandle(p),
            None => Ok(()),
        }
    }

    /// The common node body: `compatible`, `reg`, interrupts and phandle. Devices add their own
    /// properties after it.
    pub fn write_common(&self, fdt: &mut FdtWriter, compatible: &[&str]) -> Result<(), FdtError> {
        fdt.property_string_list(
            "compatible",
            compatible.iter().map(|s| s.to_string()).collect(),
        )?;
        self.write_reg(fdt)?;
        self.write_interrupts(fdt)?;
        self.write_phandle(fdt)
    }
}

/// Hands out phandles; never the same twice, never 0 or 0xffffffff.
#[derive(Debug, Clone)]
pub struct PhandleAllocator {
    next: u32,
}

impl Default for PhandleAllocator {
    fn default() -> Self {
        PhandleAllocator { next: 1 }
    }
}

impl PhandleAllocator {
    /// Starts allocating at `first` (QEMU's `phandle-start`).
    pub fn starting_at(first: u32) -> PhandleAllocator {
        PhandleAllocator { next: first.max(1) }
    }

    /// Next free phandle.
    pub fn alloc(&mut self) -> u32 {
        let p = self.next;
        self.next = self.next.saturating_add(1).min(0xffff_fffe);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_reg_cells_follow_parent_cells() {
        let r = NodeResources {
            regs: vec![(0x1000_0000, 0x100)],
            address_cells: 2,
            size_cells: 2,
            ..Default::default()
        };
        assert_eq!(r.reg_cells(), vec![0, 0x1000_0000, 0, 0x100]);
        let r = NodeResources {
            address_cells: 1,
            size_cells: 1,
            ..r
        };
        assert_eq!(r.reg_cells(), vec![0x1000_0000, 0x100]);
        assert_eq!(r.node_name("serial"), "serial@10000000");
    }

    #[test]
    fn test_interrupts_extended_when_targets_differ() {
        let r = NodeResources {
            irqs: vec![
                Some(IrqTarget {
                    phandle: 2,
                    specifier: vec![3],
                }),
                Some(IrqTarget {
                    phandle: 2,
                    specifier: vec![7],
                }),
                Some(IrqTarget {
                    phandle: 5,
                    specifier: vec![3],
                }),
            ],
            ..Default::default()
        };
        let mut w = FdtWriter::new().expect("writer");
        let n = w.begin_node("").expect("root");
        r.write_interrupts(&mut w).expect("irqs");
        w.end_node(n).expect("end");
        let blob = w.finish().expect("finish");
        let needle = b"interrupts-extended";
        assert!(blob.windows(needle.len()).any(|x| x == needle));
    }
}
