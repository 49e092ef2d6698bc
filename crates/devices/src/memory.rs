//! `sysbus-memory`: a block of RAM or ROM mapped on the system bus, with the DT `memory` node
//! of the Devicetree Specification v0.4, section 3.4 (`device_type = "memory"`, `reg`).
//!
//! The harts reach the block directly through its host pointer; [`Device::read`] and
//! [`Device::write`] serve only slow paths (debug access, tests). Any access size 1/2/4/8 at
//! any alignment inside the block is accepted. Contents survive a machine reset, as RAM does.

use std::borrow::Cow;
use std::rc::Rc;

use breadboard_core::fdt::{FdtError, FdtWriter, NodeResources};
use breadboard_core::{
    Device, DeviceCtx, DeviceError, DeviceType, FdtPlacement, PropKind, PropSpec, Props, RamBlock,
    RegionSpec,
};

/// Type name.
pub const TYPE_NAME: &str = "sysbus-memory";

/// Blocks are whole host pages: a size the block would round up would make the DT lie.
const GRANULE: u64 = 4096;

/// RAM or ROM on the system bus.
pub struct SysbusMemory {
    name: String,
    block: Rc<RamBlock>,
    readonly: bool,
}

impl SysbusMemory {
    /// Allocates `size` zeroed bytes (a non-zero multiple of 4 KiB).
    pub fn new(name: &str, size: u64, readonly: bool) -> Result<SysbusMemory, DeviceError> {
        if size == 0 || !size.is_multiple_of(GRANULE) {
            return Err(DeviceError::Realize(format!(
                "Property '{TYPE_NAME}.size' must be a non-zero multiple of 4 KiB, not {size:#x}"
            )));
        }
        let block = Rc::new(RamBlock::new(name, size)?);
        Ok(SysbusMemory {
            name: name.to_string(),
            block,
            readonly,
        })
    }

    /// The backing block (loaders write images through it, ROM included).
    pub fn block(&self) -> &Rc<RamBlock> {
        &self.block
    }

    /// Whether guest writes are refused.
    pub fn readonly(&self) -> bool {
        self.readonly
    }
}

impl Device for SysbusMemory {
    fn regions(&self) -> Vec<RegionSpec> {
        vec![RegionSpec::Ram {
            name: Cow::Owned(self.name.clone()),
            block: self.block.clone(),
            readonly: self.readonly,
        }]
    }

    fn read(&mut self, region: usize, offset: u64, size: u8) -> u64 {
        let v = if region == 0 && crate::is_access_size(size) {
            self.block.load(offset, size)
        } else {
            None
        };
        v.unwrap_or_else(|| {
            tracing::warn!(
                target: "guest_error",
                "{}: bad read of {size} bytes at {offset:#x} in region {region}",
                self.name
            );
            0
        })
    }

    fn write(&mut self, region: usize, offset: u64, size: u8, value: u64) {
        if self.readonly {
            tracing::warn!(
                target: "guest_error",
                "{}: write of {value:#x} to read-only memory at {offset:#x}",
                self.name
            );
            return;
        }
        let done = if region == 0 && crate::is_access_size(size) {
            self.block.store(offset, size, value)
        } else {
            None
        };
        if done.is_none() {
            tracing::warn!(
                target: "guest_error",
                "{}: bad write of {size} bytes at {offset:#x} in region {region}",
                self.name
            );
        }
    }

    fn fdt_placement(&self) -> FdtPlacement {
        if self.readonly {
            FdtPlacement::None
        } else {
            FdtPlacement::Root
        }
    }

    fn write_fdt(&self, fdt: &mut FdtWriter, res: &NodeResources) -> Result<(), FdtError> {
        // ROM is not "memory" an OS may allocate from: QEMU's virt describes no node for it.
        if self.readonly {
            return Ok(());
        }
        let node = fdt.begin_node(&res.node_name("memory"))?;
        fdt.property_string("device_type", "memory")?;
        res.write_reg(fdt)?;
        fdt.end_node(node)
    }
}

fn make(props: &Props, ctx: &DeviceCtx<'_>) -> Result<Box<dyn Device>, DeviceError> {
    let dev = SysbusMemory::new(ctx.name, props.u64("size"), props.bool("readonly"))?;
    Ok(Box::new(dev))
}

/// The `sysbus-memory` type.
pub fn device_type() -> DeviceType {
    DeviceType {
        name: Cow::Borrowed(TYPE_NAME),
        description: Cow::Borrowed("RAM or ROM block on the system bus"),
        user_creatable: true,
        sysbus: true,
        bus: None,
        compatible: &[],
        props: vec![
            PropSpec::required("size", PropKind::Size, "size in bytes, a multiple of 4 KiB"),
            PropSpec::new(
                "readonly",
                PropKind::Bool,
                "off",
                "ROM: guest writes are refused",
            ),
        ],
        factory: Rc::new(make),
    }
}

#[cfg(test)]
#[allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use super::*;
    use crate::testutil::{TestEnv, assert_dts, dtc_decompile, fdt_blob, resources};

    #[test]
    fn test_memory_reads_back_writes_at_every_size_and_alignment() {
        let env = TestEnv::new();
        let mut m = env.make(&device_type(), &[("size", "8K")]);
        m.write(0, 0x11, 8, 0x0807_0605_0403_0201);
        assert_eq!(m.read(0, 0x11, 1), 0x01);
        assert_eq!(m.read(0, 0x12, 2), 0x0302);
        assert_eq!(m.read(0, 0x13, 4), 0x0605_0403);
        assert_eq!(m.read(0, 0x11, 8), 0x0807_0605_0403_0201);
        m.write(0, 0x1ffe, 2, 0xbeef);
        assert_eq!(m.read(0, 0x1ffe, 2), 0xbeef);
    }

    #[test]
    fn test_memory_access_running_off_the_end_reads_zero_and_writes_nothing() {
        let env = TestEnv::new();
        let mut m = env.make(&device_type(), &[("size", "4K")]);
        m.write(0, 0xffc, 4, 0xaabb_ccdd);
        m.write(0, 0xffc, 8, u64::MAX);
        assert_eq!(m.read(0, 0xffc, 8), 0);
        assert_eq!(m.read(0, 0xffc, 4), 0xaabb_ccdd);
        assert_eq!(m.read(0, u64::MAX, 1), 0);
        assert_eq!(m.read(0, 0, 3), 0, "size 3 is refused");
    }

    #[test]
    fn test_memory_contents_survive_reset() {
        let env = TestEnv::new();
        let mut m = env.make(&device_type(), &[("size", "4K")]);
        m.write(0, 0x40, 4, 0x1234_5678);
        m.reset();
        assert_eq!(m.read(0, 0x40, 4), 0x1234_5678);
    }

    #[test]
    fn test_rom_refuses_guest_writes_but_loader_can_fill_it() {
        let env = TestEnv::new();
        let mut m = env.make(&device_type(), &[("size", "4K"), ("readonly", "on")]);
        let rom = (*m).as_any().downcast_ref::<SysbusMemory>().expect("type");
        rom.block().write(0, &[0x13, 0, 0, 0]).expect("in range");
        m.write(0, 0, 4, 0xffff_ffff);
        assert_eq!(m.read(0, 0, 4), 0x13);
        match &m.regions()[..] {
            [
                RegionSpec::Ram {
                    readonly, block, ..
                },
            ] => {
                assert!(*readonly);
                assert_eq!(block.size(), 4096);
            }
            other => panic!("unexpected regions {other:?}"),
        }
    }

    #[test]
    fn test_memory_size_must_be_whole_pages_and_given() {
        let env = TestEnv::new();
        let e = env
            .try_make(&device_type(), &[("size", "100")])
            .err()
            .expect("refused");
        assert_eq!(
            e.to_string(),
            "Property 'sysbus-memory.size' must be a non-zero multiple of 4 KiB, not 0x64"
        );
        assert!(env.try_make(&device_type(), &[("size", "0")]).is_err());
        let e = env.try_make(&device_type(), &[]).err().expect("refused");
        assert_eq!(e.to_string(), "Property 'sysbus-memory.size' is required");
    }

    #[test]
    fn test_memory_dt_node_matches_qemu_virt() {
        let env = TestEnv::new();
        let m = env.make(&device_type(), &[("size", "128M")]);
        assert_eq!(m.fdt_placement(), FdtPlacement::Root);
        let res = resources(m.as_ref(), 0x8000_0000);
        let blob = fdt_blob(m.as_ref(), &res);
        if let Some(dts) = dtc_decompile(&blob) {
            assert_dts(
                &dts,
                &[
                    "memory@80000000 {",
                    "device_type = \"memory\";",
                    "reg = <0x00 0x80000000 0x00 0x8000000>;",
                ],
                &[],
            );
        }
    }

    #[test]
    fn test_rom_writes_no_dt_node() {
        let env = TestEnv::new();
        let m = env.make(&device_type(), &[("size", "4K"), ("readonly", "on")]);
        assert_eq!(m.fdt_placement(), FdtPlacement::None);
        let res = resources(m.as_ref(), 0x1000);
        let blob = fdt_blob(m.as_ref(), &res);
        if let Some(dts) = dtc_decompile(&blob) {
            assert!(!dts.contains("memory@"), "{dts}");
        }
    }
}
