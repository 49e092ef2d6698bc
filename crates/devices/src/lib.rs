//! breadboard's built-in device models, one file per device: its registers, MMIO handler,
//! reset, DT node writer and tests. Every file exports `device_type()`; [`register_builtin`]
//! puts them all in a [`TypeRegistry`].
//!
//! Conventions shared by every device here:
//! - a bad guest access (unknown offset, unsupported size, read-only register) is logged under
//!   the `guest_error` tracing target; reads return 0 and writes are ignored;
//! - a feature the model does not implement is logged under `unimp`;
//! - no guest access can panic: offsets are checked before any indexing.

// Guest, file, socket and plugin input reaches every module: no panicking shortcuts outside
// tests, crate-wide (modules may repeat this for emphasis).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use breadboard_core::fdt::{FdtError, FdtWriter, IrqTarget, NodeResources};
use breadboard_core::{DeviceType, TypeRegistry};

pub mod clint;
pub mod goldfish_rtc;
pub mod ibex_plic;
pub mod ibex_uart;
pub mod memory;
pub mod ns16550a;
pub mod plic;
pub mod sifive_test;
pub mod virtio;

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod testutil;

/// Every built-in device type, in registration order.
pub fn builtin_types() -> Vec<DeviceType> {
    vec![
        memory::device_type(),
        ns16550a::device_type(),
        clint::device_type(),
        plic::device_type(),
        sifive_test::device_type(),
        goldfish_rtc::device_type(),
        ibex_uart::device_type(),
        ibex_plic::device_type(),
    ]
}

/// Registers every built-in device type. A name that is already taken (e.g. by a plugin
/// loaded earlier) keeps its first owner; the clash is logged.
pub fn register_builtin(reg: &mut TypeRegistry) {
    for t in builtin_types() {
        if let Err(e) = reg.register(t) {
            tracing::error!("built-in device types: {e}");
        }
    }
    virtio::register(reg);
}

/// Writes `interrupts-extended` for a device whose outputs go to several controllers or
/// whose consumers (OpenSBI, Linux) index the list positionally — the CLINT and the PLIC,
/// where entry N describes hart context N. [`NodeResources::write_interrupts`] would write
/// `interrupts` + `interrupt-parent` on a single-hart machine, which OpenSBI's ACLINT and
/// PLIC parsers do not read.
///
/// Output `i` uses `res.irqs[i]` when the machine wired it, else `fallback(i)` (the device
/// knows which hart-local interrupt each output is). The list stops at the first output
/// neither can describe, because every later entry would be read as the wrong context;
/// nothing is written if the first output is already unknown.
pub(crate) fn write_interrupts_extended(
    fdt: &mut FdtWriter,
    res: &NodeResources,
    outputs: usize,
    fallback: impl Fn(usize) -> Option<IrqTarget>,
) -> Result<(), FdtError> {
    let mut cells = Vec::new();
    for i in 0..outputs {
        let target = res.irqs.get(i).cloned().flatten().or_else(|| fallback(i));
        let Some(t) = target else {
            if i > 0 {
                tracing::warn!(
                    "interrupts-extended: output {i} of {outputs} has no target; list truncated"
                );
            }
            break;
        };
        cells.push(t.phandle);
        cells.extend_from_slice(&t.specifier);
    }
    if cells.is_empty() {
        return Ok(());
    }
    fdt.property_array_u32("interrupts-extended", &cells)
}

/// Logs an access to a region index the device does not have (a machine bug, not the
/// guest's, but it must not stop the machine either).
pub(crate) fn bad_region(name: &str, region: usize) {
    tracing::warn!(target: "guest_error", "{name}: access to region {region}, which it does not have");
}

/// Whether `size` is an MMIO access size the bus can produce.
pub(crate) fn is_access_size(size: u8) -> bool {
    matches!(size, 1 | 2 | 4 | 8)
}

/// Mask of the low `size` bytes (all ones for 8 or more).
pub(crate) fn size_mask(size: u8) -> u64 {
    match size {
        0 => 0,
        1..=7 => (1u64 << (u32::from(size) * 8)) - 1,
        _ => u64::MAX,
    }
}
