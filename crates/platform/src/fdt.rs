//! Device-tree generation: the machine writes `/`, `/chosen`, `/cpus` and the bus nodes; every
//! device writes its own node from the resources it was given. Phandles come from one
//! allocator; interrupt specifiers come from the controllers themselves.

use breadboard_core::fdt::{FdtWriter, IrqTarget, NodeResources, PhandleAllocator};
use breadboard_core::{DeviceId, FdtPlacement};

use crate::machine::{Machine, MachineError, WireTarget};

/// What goes into `/chosen`.
#[derive(Clone, Debug, Default)]
pub struct Chosen {
    /// `bootargs`.
    pub bootargs: Option<String>,
    /// `linux,initrd-start`/`-end`.
    pub initrd: Option<(u64, u64)>,
}

fn err(e: vm_fdt::Error) -> MachineError {
    MachineError::Fdt(e.to_string())
}

struct Phandles {
    cpu: Vec<u32>,
    intc: Vec<u32>,
    device: Vec<Option<u32>>,
}

fn allocate(m: &Machine) -> Phandles {
    let mut alloc = PhandleAllocator::starting_at(m.desc.machine.phandle_start.unwrap_or(1));
    let mut cpu = Vec::new();
    let mut intc = Vec::new();
    for _ in &m.harts {
        cpu.push(alloc.alloc());
        intc.push(alloc.alloc());
    }
    let mut device = vec![None; m.devices.len()];
    for id in m.device_ids() {
        let Some(e) = m.device(id) else { continue };
        let d = e.cell.borrow();
        if (d.needs_phandle() || (e.inputs > 1 && d.irq_specifier(1).is_some()))
            && let Some(slot) = device.get_mut(id)
        {
            *slot = Some(alloc.alloc());
        }
    }
    Phandles { cpu, intc, device }
}

fn resources(
    m: &Machine,
    id: DeviceId,
    ph: &Phandles,
    cells: (u32, u32),
    offset: u64,
) -> NodeResources {
    let Some(e) = m.device(id) else {
        return NodeResources::default();
    };
    let regs = e
        .regions
        .iter()
        .zip(&e.mapped)
        .filter_map(|(r, a)| a.map(|a| (a - offset, r.size())))
        .collect();
    let irqs = e
        .wires
        .iter()
        .map(|w| match *w {
            Some(WireTarget::Cpu { hart, bit }) => ph.intc.get(hart as usize).map(|&p| IrqTarget {
                phandle: p,
                specifier: vec![bit],
            }),
            Some(WireTarget::Device { id: t, input }) => {
                let p = ph.device.get(t).copied().flatten()?;
                let spec = m.device(t)?.cell.borrow().irq_specifier(input)?;
                Some(IrqTarget {
                    phandle: p,
                    specifier: spec,
                })
            }
            None => None,
        })
        .collect();
    NodeResources {
        regs,
        address_cells: cells.0,
        size_cells: cells.1,
        irqs,
        phandle: ph.device.get(id).copied().flatten(),
        cpu_intc_phandles: ph.intc.clone(),
        default_interrupt_parent: None,
    }
}

fn write_device(
    m: &Machine,
    fdt: &mut FdtWriter,
    id: DeviceId,
    ph: &Phandles,
    cells: (u32, u32),
    offset: u64,
) -> Result<(), MachineError> {
    let Some(e) = m.device(id) else { return Ok(()) };
    let res = resources(m, id, ph, cells, offset);
    e.cell
        .borrow()
        .write_fdt(fdt, &res)
        .map_err(|x| MachineError::Fdt(format!("node of device '{}': {x}", e.label)))
}

/// Writes the whole device tree and returns the blob.
pub fn generate(m: &Machine, chosen: &Chosen) -> Result<Vec<u8>, MachineError> {
    let ph = allocate(m);
    let mut fdt = FdtWriter::new().map_err(err)?;
    let root = fdt.begin_node("").map_err(err)?;
    fdt.property_u32("#address-cells", 2).map_err(err)?;
    fdt.property_u32("#size-cells", 2).map_err(err)?;
    fdt.property_string_list("compatible", m.desc.machine.compatible.clone())
        .map_err(err)?;
    fdt.property_string("model", &m.desc.machine.model)
        .map_err(err)?;

    let c = fdt.begin_node("chosen").map_err(err)?;
    if let Some(b) = &chosen.bootargs {
        fdt.property_string("bootargs", b).map_err(err)?;
    }
    if let Some(p) = &m.desc.machine.stdout_path {
        fdt.property_string("stdout-path", p).map_err(err)?;
    }
    if let Some((s, e)) = chosen.initrd {
        fdt.property_u64("linux,initrd-start", s).map_err(err)?;
        fdt.property_u64("linux,initrd-end", e).map_err(err)?;
    }
    fdt.end_node(c).map_err(err)?;

    if !m.harts.is_empty() {
        let cpus = fdt.begin_node("cpus").map_err(err)?;
        fdt.property_u32("#address-cells", 1).map_err(err)?;
        fdt.property_u32("#size-cells", 0).map_err(err)?;
        let tb = u32::try_from(m.desc.cpu.timebase_frequency).unwrap_or(u32::MAX);
        fdt.property_u32("timebase-frequency", tb).map_err(err)?;
        for (h, (cp, ip)) in ph.cpu.iter().zip(&ph.intc).enumerate() {
            let n = fdt.begin_node(&format!("cpu@{h:x}")).map_err(err)?;
            fdt.property_phandle(*cp).map_err(err)?;
            fdt.property_string("device_type", "cpu").map_err(err)?;
            fdt.property_u32("reg", h as u32).map_err(err)?;
            fdt.property_string("status", "okay").map_err(err)?;
            fdt.property_string("compatible", "riscv").map_err(err)?;
            let isa = format!("{}{}", m.cpu.isa, m.cpu.extensions.isa_suffix());
            fdt.property_string("riscv,isa", &isa).map_err(err)?;
            if let Some(mmu) = m.cpu.mmu {
                fdt.property_string("mmu-type", mmu).map_err(err)?;
            }
            let i = fdt.begin_node("interrupt-controller").map_err(err)?;
            // dtc's interrupt_provider check wants #address-cells on every provider.
            fdt.property_u32("#address-cells", 0).map_err(err)?;
            fdt.property_u32("#interrupt-cells", 1).map_err(err)?;
            fdt.property_null("interrupt-controller").map_err(err)?;
            fdt.property_string("compatible", "riscv,cpu-intc")
                .map_err(err)?;
            fdt.property_phandle(*ip).map_err(err)?;
            fdt.end_node(i).map_err(err)?;
            fdt.end_node(n).map_err(err)?;
        }
        let map = fdt.begin_node("cpu-map").map_err(err)?;
        let cl = fdt.begin_node("cluster0").map_err(err)?;
        for (h, cp) in ph.cpu.iter().enumerate() {
            let core = fdt.begin_node(&format!("core{h}")).map_err(err)?;
            fdt.property_u32("cpu", *cp).map_err(err)?;
            fdt.end_node(core).map_err(err)?;
        }
        fdt.end_node(cl).map_err(err)?;
        fdt.end_node(map).map_err(err)?;
        fdt.end_node(cpus).map_err(err)?;
    }

    let ids: Vec<DeviceId> = m.device_ids().collect();
    let placement = |id: DeviceId| {
        m.device(id).map_or(FdtPlacement::None, |e| {
            if e.on_platform_bus {
                FdtPlacement::None
            } else {
                e.cell.borrow().fdt_placement()
            }
        })
    };
    for &id in &ids {
        if placement(id) == FdtPlacement::Root {
            write_device(m, &mut fdt, id, &ph, (2, 2), 0)?;
        }
    }
    for &id in &ids {
        let Some(e) = m.device(id) else { continue };
        let res = resources(m, id, &ph, (2, 2), 0);
        e.cell
            .borrow()
            .write_fdt_root(&mut fdt, &res)
            .map_err(|x| MachineError::Fdt(format!("root node of device '{}': {x}", e.label)))?;
    }
    let soc = fdt.begin_node("soc").map_err(err)?;
    fdt.property_u32("#address-cells", 2).map_err(err)?;
    fdt.property_u32("#size-cells", 2).map_err(err)?;
    fdt.property_string("compatible", "simple-bus")
        .map_err(err)?;
    fdt.property_null("ranges").map_err(err)?;
    for &id in &ids {
        if placement(id) == FdtPlacement::Soc {
            write_device(m, &mut fdt, id, &ph, (2, 2), 0)?;
        }
    }
    fdt.end_node(soc).map_err(err)?;
    // The platform bus comes after /soc: Linux numbers devices in tree order, so the board's
    // UART stays ttyS0 and a dynamic one becomes ttyS1, as on QEMU.
    if let Some(pb) = &m.desc.platform_bus {
        let node = fdt
            .begin_node(&format!("platform-bus@{:x}", pb.base))
            .map_err(err)?;
        if let Ok(ctrl) = m.resolve_device(&pb.irq_controller)
            && let Some(p) = ph.device.get(ctrl).copied().flatten()
        {
            fdt.property_u32("interrupt-parent", p).map_err(err)?;
        }
        let size = u32::try_from(pb.size)
            .map_err(|_| MachineError::Fdt("platform bus larger than 4 GiB".into()))?;
        fdt.property_array_u32("ranges", &[0, (pb.base >> 32) as u32, pb.base as u32, size])
            .map_err(err)?;
        fdt.property_u32("#address-cells", 1).map_err(err)?;
        fdt.property_u32("#size-cells", 1).map_err(err)?;
        fdt.property_string_list(
            "compatible",
            vec!["qemu,platform".to_string(), "simple-bus".to_string()],
        )
        .map_err(err)?;
        for &id in &ids {
            if m.device(id).is_some_and(|e| e.on_platform_bus) {
                write_device(m, &mut fdt, id, &ph, (1, 1), pb.base)?;
            }
        }
        fdt.end_node(node).map_err(err)?;
    }
    fdt.end_node(root).map_err(err)?;
    fdt.finish().map_err(err)
}
