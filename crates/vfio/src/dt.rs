//! Device-tree writers for passed-through devices, chosen by `compatible`.
//!
//! A host DT node cannot be copied wholesale: its `reg`, `interrupts`, `clocks`, `resets`,
//! pin control and every other phandle reference describe the host, not the guest. A writer
//! knows a device family and writes a node the guest's driver accepts, with `reg` and
//! `interrupts` from what the platform bus allocated. With `dt-copy=on`, the generic writer
//! covers other devices: it copies an allow-list of properties that carry plain values (no
//! phandles, no host addresses) from the source node.

// Reads untrusted input (a vfio-user server, the kernel, sysfs files, the guest): no panicking
// shortcuts outside tests.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use breadboard_core::fdt::{FdtError, FdtWriter, NodeResources};

use crate::backend::DtHints;

/// Which writer a device uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DtWriter {
    /// `virtio,mmio`: a virtio-mmio transport (as on QEMU's virt machine).
    VirtioMmio,
    /// `ns16550a` and friends: a 16550-compatible UART (`clock-frequency` kept from the source or
    /// QEMU virt's 3.6864 MHz).
    Ns16550,
    /// `breadboard,checksum-engine`: the example vfio-user device.
    ChecksumEngine,
    /// `dt-copy=on`: compatible, reg, interrupts and the allow-listed properties of the source.
    Generic,
}

/// The devices with a writer, for error messages and docs.
pub const KNOWN: &[(&str, DtWriter)] = &[
    ("virtio,mmio", DtWriter::VirtioMmio),
    ("ns16550a", DtWriter::Ns16550),
    ("ns16550", DtWriter::Ns16550),
    ("ns8250", DtWriter::Ns16550),
    ("breadboard,checksum-engine", DtWriter::ChecksumEngine),
];

/// Properties the generic writer copies: values only, nothing that names a host phandle or
/// host address.
pub const COPY_ALLOWED: &[&str] = &[
    "clock-frequency",
    "current-speed",
    "reg-shift",
    "reg-io-width",
    "reg-offset",
    "fifo-size",
    "big-endian",
    "little-endian",
    "native-endian",
    "dma-coherent",
    "no-loopback-test",
    "status",
    "model",
    "label",
];

/// Chooses the writer for `compatible` (most specific first). Without one, `dt_copy` selects
/// the generic writer; otherwise the error says what to do.
pub fn choose(compatible: &[String], dt_copy: bool) -> Result<DtWriter, String> {
    for c in compatible {
        if let Some((_, w)) = KNOWN.iter().find(|(k, _)| *k == c) {
            return Ok(*w);
        }
    }
    if compatible.is_empty() {
        return Err(
            "no compatible string: the host DT and the server gave none; set compatible=...".into(),
        );
    }
    if dt_copy {
        return Ok(DtWriter::Generic);
    }
    let known: Vec<&str> = KNOWN.iter().map(|(k, _)| *k).collect();
    Err(format!(
        "no device-tree writer for compatible '{}' (writers: {}); set dt-copy=on to copy the \
         source node's allowed properties ({})",
        compatible.join("', '"),
        known.join(", "),
        COPY_ALLOWED.join(", ")
    ))
}

fn node_prefix(writer: DtWriter, compatible: &[String]) -> String {
    match writer {
        DtWriter::VirtioMmio => "virtio_mmio".into(),
        DtWriter::Ns16550 => "serial".into(),
        DtWriter::ChecksumEngine => "checksum".into(),
        DtWriter::Generic => {
            // "vendor,thing" -> "thing"; keep node-name characters only.
            let base = compatible
                .first()
                .map(|c| c.rsplit(',').next().unwrap_or(c))
                .unwrap_or("device");
            let clean: String = base
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+'))
                .take(31)
                .collect();
            if clean.is_empty() {
                "device".into()
            } else {
                clean
            }
        }
    }
}

fn hint<'a>(hints: &'a DtHints, name: &str) -> Option<&'a [u8]> {
    hints
        .props
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_slice())
}

/// Writes the node.
pub fn write(
    writer: DtWriter,
    fdt: &mut FdtWriter,
    res: &NodeResources,
    compatible: &[String],
    hints: &DtHints,
) -> Result<(), FdtError> {
    let node = fdt.begin_node(&res.node_name(&node_prefix(writer, compatible)))?;
    let compat: Vec<&str> = match writer {
        DtWriter::VirtioMmio => vec!["virtio,mmio"],
        _ => compatible.iter().map(String::as_str).collect(),
    };
    res.write_common(fdt, &compat)?;
    match writer {
        DtWriter::VirtioMmio => {
            fdt.property_null("dma-coherent")?;
        }
        DtWriter::Ns16550 => match hint(hints, "clock-frequency") {
            Some(v) if v.len() == 4 || v.len() == 8 => fdt.property("clock-frequency", v)?,
            _ => fdt.property_u32("clock-frequency", 0x0038_4000)?,
        },
        DtWriter::ChecksumEngine => {}
        DtWriter::Generic => {
            for name in COPY_ALLOWED {
                if let Some(v) = hint(hints, name) {
                    fdt.property(name, v)?;
                }
            }
        }
    }
    fdt.end_node(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn test_writer_choice_by_compatible_and_dt_copy() {
        assert_eq!(
            choose(&s(&["virtio,mmio"]), false),
            Ok(DtWriter::VirtioMmio)
        );
        assert_eq!(
            choose(&s(&["acme,uart", "ns16550a"]), false),
            Ok(DtWriter::Ns16550),
            "a later, less specific string still finds a writer"
        );
        assert_eq!(choose(&s(&["acme,widget"]), true), Ok(DtWriter::Generic));
        let e = choose(&s(&["acme,widget"]), false).expect_err("no writer");
        assert!(e.contains("acme,widget") && e.contains("dt-copy=on"), "{e}");
        let e = choose(&[], true).expect_err("nothing to go by");
        assert!(e.contains("compatible="), "{e}");
    }

    #[test]
    fn test_generic_node_name_is_sanitised() {
        assert_eq!(
            node_prefix(DtWriter::Generic, &s(&["acme,wid get@/x"])),
            "widgetx"
        );
        assert_eq!(node_prefix(DtWriter::Generic, &s(&[",,,"])), "device");
        assert_eq!(node_prefix(DtWriter::Generic, &s(&["plain"])), "plain");
    }
}
