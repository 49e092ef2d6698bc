//! `sifive_test`: the SiFive test finisher (`sifive,test0`/`sifive,test1`), the register a
//! guest writes to power off or reset the machine, described to Linux through the
//! `syscon-poweroff` and `syscon-reboot` bindings (Documentation/devicetree/bindings/power/reset/).
//!
//! One 32-bit register at offset 0 in a 4 KiB region; 16- and 32-bit writes are accepted
//! (like QEMU). The low 16 bits select the action:
//! - `0x5555` (FINISHER_PASS): power off with exit code 0;
//! - `0x3333` (FINISHER_FAIL): power off with exit code `value >> 16`;
//! - `0x7777` (FINISHER_RESET): reset the machine.
//!
//! Reads return 0. The request is handed to the main loop through
//! [`Device::take_machine_request`], once.
// Reads guest, file, socket or plugin input: no panicking shortcuts (SECURITY.md, issue 9).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::borrow::Cow;
use std::rc::Rc;

use breadboard_core::fdt::{FdtError, FdtWriter, NodeResources};
use breadboard_core::{
    Device, DeviceCtx, DeviceError, DeviceType, MachineRequest, Props, RegionSpec,
};

/// Type name.
pub const TYPE_NAME: &str = "sifive_test";

const REGION_SIZE: u64 = 0x1000;
/// The finisher register.
const REG_FINISHER: u64 = 0x0;

const FINISHER_FAIL: u64 = 0x3333;
const FINISHER_PASS: u64 = 0x5555;
const FINISHER_RESET: u64 = 0x7777;

/// The test finisher.
pub struct SifiveTest {
    name: String,
    request: Option<MachineRequest>,
}

impl Device for SifiveTest {
    fn snapshot_save(&self) -> Result<Vec<u8>, breadboard_core::snapshot::SnapshotError> {
        // A pending power-off request is taken by the main loop before it stops.
        Ok(Vec::new())
    }

    fn regions(&self) -> Vec<RegionSpec> {
        vec![RegionSpec::Mmio {
            name: Cow::Owned(self.name.clone()),
            size: REGION_SIZE,
        }]
    }

    fn read(&mut self, region: usize, offset: u64, size: u8) -> u64 {
        if region != 0 {
            crate::bad_region(&self.name, region);
            return 0;
        }
        if offset != REG_FINISHER || !matches!(size, 2 | 4) {
            tracing::warn!(
                target: "guest_error",
                "{}: bad read of {size} bytes at {offset:#x}",
                self.name
            );
        }
        0
    }

    fn write(&mut self, region: usize, offset: u64, size: u8, value: u64) {
        if region != 0 {
            crate::bad_region(&self.name, region);
            return;
        }
        if offset != REG_FINISHER || !matches!(size, 2 | 4) {
            tracing::warn!(
                target: "guest_error",
                "{}: bad write of {size} bytes at {offset:#x} (value {value:#x})",
                self.name
            );
            return;
        }
        let value = value & crate::size_mask(size);
        let request = match value & 0xffff {
            FINISHER_PASS => MachineRequest::Shutdown { code: 0 },
            FINISHER_FAIL => MachineRequest::Shutdown {
                // At most 16 bits: always fits.
                code: i32::try_from((value >> 16) & 0xffff).unwrap_or(i32::MAX),
            },
            FINISHER_RESET => MachineRequest::Reset,
            _ => {
                tracing::warn!(
                    target: "guest_error",
                    "{}: unknown finisher command {value:#x}",
                    self.name
                );
                return;
            }
        };
        self.request = Some(request);
    }

    fn needs_phandle(&self) -> bool {
        true
    }

    fn reset(&mut self) {
        self.request = None;
    }

    fn take_machine_request(&mut self) -> Option<MachineRequest> {
        self.request.take()
    }

    fn write_fdt(&self, fdt: &mut FdtWriter, res: &NodeResources) -> Result<(), FdtError> {
        let node = fdt.begin_node(&res.node_name("test"))?;
        res.write_common(fdt, &["sifive,test1", "sifive,test0", "syscon"])?;
        fdt.end_node(node)
    }

    fn write_fdt_root(&self, fdt: &mut FdtWriter, res: &NodeResources) -> Result<(), FdtError> {
        let Some(phandle) = res.phandle else {
            tracing::warn!(
                "{}: no phandle, so no poweroff/reboot nodes can point at it",
                self.name
            );
            return Ok(());
        };
        for (node_name, compatible, value) in [
            ("poweroff", "syscon-poweroff", FINISHER_PASS),
            ("reboot", "syscon-reboot", FINISHER_RESET),
        ] {
            let node = fdt.begin_node(node_name)?;
            fdt.property_string("compatible", compatible)?;
            fdt.property_u32("regmap", phandle)?;
            fdt.property_u32("offset", REG_FINISHER as u32)?;
            fdt.property_u32("value", value as u32)?;
            fdt.end_node(node)?;
        }
        Ok(())
    }
}

fn make(_props: &Props, ctx: &DeviceCtx<'_>) -> Result<Box<dyn Device>, DeviceError> {
    Ok(Box::new(SifiveTest {
        name: ctx.name.to_string(),
        request: None,
    }))
}

/// The `sifive_test` type. One MMIO region (4 KiB); no IRQs.
pub fn device_type() -> DeviceType {
    DeviceType {
        name: Cow::Borrowed(TYPE_NAME),
        description: Cow::Borrowed("SiFive test finisher (power off / reset)"),
        user_creatable: true,
        sysbus: true,
        bus: None,
        compatible: &["sifive,test1", "sifive,test0"],
        props: Vec::new(),
        factory: Rc::new(make),
    }
}

#[cfg(test)]
// Tests: a failing unwrap, index or panic is a failed test (as clippy.toml allows).
#[allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use super::*;
    use crate::testutil::{TestEnv, assert_dts, dtc_decompile, fdt_blob, resources};

    fn finisher() -> Box<dyn Device> {
        let env = TestEnv::new();
        env.make(&device_type(), &[])
    }

    #[test]
    fn test_sifive_test_pass_powers_off_with_zero_once() {
        let mut d = finisher();
        assert_eq!(d.take_machine_request(), None);
        d.write(0, 0, 4, 0x5555);
        assert_eq!(
            d.take_machine_request(),
            Some(MachineRequest::Shutdown { code: 0 })
        );
        assert_eq!(d.take_machine_request(), None);
    }

    #[test]
    fn test_sifive_test_fail_carries_exit_code() {
        let mut d = finisher();
        d.write(0, 0, 4, (42 << 16) | 0x3333);
        assert_eq!(
            d.take_machine_request(),
            Some(MachineRequest::Shutdown { code: 42 })
        );
        d.write(0, 0, 4, 0xffff_3333);
        assert_eq!(
            d.take_machine_request(),
            Some(MachineRequest::Shutdown { code: 0xffff })
        );
        d.write(0, 0, 2, 0x0001_3333);
        assert_eq!(
            d.take_machine_request(),
            Some(MachineRequest::Shutdown { code: 0 }),
            "a 16-bit write has no code bits"
        );
    }

    #[test]
    fn test_sifive_test_reset_request() {
        let mut d = finisher();
        d.write(0, 0, 2, 0x7777);
        assert_eq!(d.take_machine_request(), Some(MachineRequest::Reset));
    }

    #[test]
    fn test_sifive_test_other_values_offsets_and_sizes_do_nothing() {
        let mut d = finisher();
        d.write(0, 0, 4, 0x1234);
        d.write(0, 4, 4, 0x5555);
        d.write(0, 0, 1, 0x55);
        d.write(0, 0, 8, 0x5555);
        d.write(0, 0x1000, 4, 0x5555);
        assert_eq!(d.take_machine_request(), None);
        assert_eq!(d.read(0, 0, 4), 0);
    }

    #[test]
    fn test_sifive_test_reset_drops_pending_request() {
        let mut d = finisher();
        d.write(0, 0, 4, 0x5555);
        d.reset();
        assert_eq!(d.take_machine_request(), None);
    }

    #[test]
    fn test_sifive_test_dt_nodes_match_qemu_virt() {
        let d = finisher();
        assert!(d.needs_phandle());
        let mut res = resources(d.as_ref(), 0x10_0000);
        res.phandle = Some(4);
        let blob = fdt_blob(d.as_ref(), &res);
        if let Some(dts) = dtc_decompile(&blob) {
            assert_dts(
                &dts,
                &[
                    "test@100000 {",
                    "phandle = <0x04>;",
                    "reg = <0x00 0x100000 0x00 0x1000>;",
                    "compatible = \"sifive,test1\\0sifive,test0\\0syscon\";",
                    "poweroff {",
                    "value = <0x5555>;",
                    "offset = <0x00>;",
                    "regmap = <0x04>;",
                    "compatible = \"syscon-poweroff\";",
                    "reboot {",
                    "value = <0x7777>;",
                    "compatible = \"syscon-reboot\";",
                ],
                &["interrupts"],
            );
        }
    }
}
