//! The platform bus: a reserved MMIO window and a block of interrupt-controller inputs from
//! which devices added after machine creation get their addresses and IRQs. Placement is
//! deterministic: each region at the lowest naturally aligned free address (first fit, in
//! device order), IRQs handed out in order.

use crate::machine::{Machine, MachineError, WireTarget};
use breadboard_core::DeviceId;

/// Natural alignment of a region: its size rounded up to a power of two, at least 4 KiB.
fn alignment(size: u64) -> u64 {
    size.checked_next_power_of_two()
        .unwrap_or(1 << 63)
        .max(0x1000)
}

/// Lowest naturally aligned free window of `size` bytes inside `[base, base+len)`. `[base,
/// full_below)` is known to be completely occupied, so the search starts there.
pub fn first_fit(m: &Machine, base: u64, len: u64, size: u64, full_below: u64) -> Option<u64> {
    let align = alignment(size);
    let end = base.checked_add(len)?;
    let mut addr = base.max(full_below).checked_next_multiple_of(align)?;
    while addr.checked_add(size)? <= end {
        match m.space.first_overlap(addr, size) {
            None => return Some(addr),
            // Skip past the region in the way, realigned (each step passes one region).
            Some(r) => addr = r.end().checked_next_multiple_of(align)?,
        }
    }
    None
}

/// Places device `id`: maps each unmapped region in the window and wires each unwired output
/// to the bus's interrupt controller.
pub fn place(m: &mut Machine, id: DeviceId) -> Result<(), MachineError> {
    let Some(pb) = m.desc.platform_bus.clone() else {
        let label = m.device(id).map(|e| e.label.clone()).unwrap_or_default();
        return Err(MachineError::NoPlatformBus {
            device: label,
            machine: m.name().to_string(),
        });
    };
    let (label, sizes, outputs) = {
        let e = m
            .device(id)
            .ok_or_else(|| MachineError::Wiring(format!("no device #{id}")))?;
        let sizes: Vec<(usize, u64)> = e
            .regions
            .iter()
            .enumerate()
            .filter(|(i, _)| e.mapped.get(*i).copied().flatten().is_none())
            .map(|(i, r)| (i, r.size()))
            .collect();
        let outs: Vec<usize> = e
            .wires
            .iter()
            .enumerate()
            .filter(|(_, w)| w.is_none())
            .map(|(i, _)| i)
            .collect();
        (e.label.clone(), sizes, outs)
    };
    let free_irqs = pb.irq_count.saturating_sub(m.pbus_irqs_used) as usize;
    if outputs.len() > free_irqs {
        return Err(MachineError::NoIrqs {
            device: label,
            needed: outputs.len() - free_irqs,
        });
    }
    for (index, size) in sizes {
        let hint = m.pbus_full_below.max(pb.base);
        let addr =
            first_fit(m, pb.base, pb.size, size, hint).ok_or_else(|| MachineError::BusFull {
                device: label.clone(),
                size,
            })?;
        m.map_region(id, index, addr)?;
        // Extend the fully occupied prefix of the window (amortized O(1) per placement).
        let mut full = hint;
        while let Some(r) = m.space.first_overlap(full, 1) {
            full = r.end();
        }
        m.pbus_full_below = full;
    }
    if outputs.is_empty() {
        if let Some(Some(e)) = m.devices.get_mut(id) {
            e.on_platform_bus = true;
        }
        return Ok(());
    }
    let ctrl = m.resolve_device(&pb.irq_controller).map_err(|_| {
        MachineError::Wiring(format!(
            "platform bus IRQ controller '{}' does not exist",
            pb.irq_controller
        ))
    })?;
    for out in outputs {
        let input = pb.irq_base + m.pbus_irqs_used;
        m.pbus_irqs_used += 1;
        m.connect(id, out, WireTarget::Device { id: ctrl, input })?;
    }
    if let Some(Some(e)) = m.devices.get_mut(id) {
        e.on_platform_bus = true;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::alignment;

    #[test]
    fn test_alignment_is_natural_and_at_least_a_page() {
        assert_eq!(alignment(0x100), 0x1000);
        assert_eq!(alignment(0x3000), 0x4000);
        assert_eq!(alignment(0x10000), 0x10000);
        assert_eq!(alignment(u64::MAX), 1 << 63);
    }
}
