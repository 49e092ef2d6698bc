//! Test harness shared by the device tests: a fake machine environment (icount clock, timer
//! queue, chardevs), helpers to build devices through their `DeviceType` factory, to run
//! virtual time forward firing the device's timers, and to check DT output with `dtc`.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::rc::Rc;

use breadboard_core::chardev::MemoryBackend;
use breadboard_core::fdt::{FdtWriter, IrqTarget, NodeResources};
use breadboard_core::{
    Chardev, ChardevRegistry, Clock, ClockMode, Device, DeviceCtx, DeviceError, DeviceType,
    DriveRegistry, GuestMemory, Nanos, Props, RawValue, TimerHandle, TimerQueue,
};

/// The device id every test device gets.
pub const TEST_ID: usize = 7;

/// What a machine would give a device, with time under the test's control.
pub struct TestEnv {
    pub clock: Rc<Clock>,
    pub queue: Rc<TimerQueue>,
    pub dma: Rc<GuestMemory>,
    pub chardevs: ChardevRegistry,
    pub drives: DriveRegistry,
    pub num_harts: u32,
}

impl TestEnv {
    /// Two harts, icount clock with 1 ns per instruction, no chardevs.
    pub fn new() -> TestEnv {
        TestEnv::with_harts(2)
    }

    pub fn with_harts(num_harts: u32) -> TestEnv {
        TestEnv {
            clock: Clock::new(ClockMode::Icount { shift: 0 }),
            queue: TimerQueue::new(),
            dma: Rc::new(GuestMemory::default()),
            chardevs: ChardevRegistry::default(),
            drives: DriveRegistry::default(),
            num_harts,
        }
    }

    /// Adds a chardev whose output is kept in memory; returns it and the output buffer.
    pub fn add_memory_chardev(&self, id: &str) -> (Rc<Chardev>, MemoryBackend) {
        let backend = MemoryBackend::default();
        let c = Chardev::new(id, Box::new(backend.clone()));
        self.chardevs.add(c.clone()).expect("unique chardev id");
        (c, backend)
    }

    pub fn ctx(&self) -> DeviceCtx<'_> {
        DeviceCtx {
            id: TEST_ID,
            name: "dut",
            clock: self.clock.clone(),
            timers: TimerHandle::new(self.queue.clone(), self.clock.clone(), TEST_ID),
            dma: self.dma.clone(),
            chardevs: &self.chardevs,
            drives: &self.drives,
            num_harts: self.num_harts,
        }
    }

    /// Validates `props` (text values, as from `-device`) and runs the type's factory.
    pub fn try_make(
        &self,
        ty: &DeviceType,
        props: &[(&str, &str)],
    ) -> Result<Box<dyn Device>, DeviceError> {
        let props = Props::build(
            &ty.name,
            &ty.props,
            props.iter().map(|&(k, v)| (k, RawValue::Str(v))),
        )?;
        (ty.factory)(&props, &self.ctx())
    }

    pub fn make(&self, ty: &DeviceType, props: &[(&str, &str)]) -> Box<dyn Device> {
        match self.try_make(ty, props) {
            Ok(d) => d,
            Err(e) => panic!("making '{}' failed: {e}", ty.name),
        }
    }

    /// Moves virtual time forward by `ns`, firing the device's timers in deadline order at
    /// their deadlines (as the main loop would with idle harts).
    pub fn advance(&self, dev: &mut dyn Device, ns: Nanos) {
        let target = self.clock.now().saturating_add(ns);
        while let Some(deadline) = self.queue.next_deadline() {
            if deadline > target {
                break;
            }
            self.clock.warp_to(deadline);
            while let Some((owner, token)) = self.queue.pop_expired(self.clock.now()) {
                assert_eq!(owner, TEST_ID, "a timer of another owner");
                dev.timer(token);
            }
        }
        self.clock.warp_to(target);
    }
}

/// A target for output `i` as a machine would give it.
pub fn target(phandle: u32, cells: &[u32]) -> Option<IrqTarget> {
    Some(IrqTarget {
        phandle,
        specifier: cells.to_vec(),
    })
}

/// Resources with 2/2 cells (like QEMU virt's `/soc`), regions mapped from `base` in order.
pub fn resources(dev: &dyn Device, base: u64) -> NodeResources {
    let mut regs = Vec::new();
    let mut addr = base;
    for r in dev.regions() {
        regs.push((addr, r.size()));
        addr = addr.saturating_add(r.size());
    }
    NodeResources {
        regs,
        address_cells: 2,
        size_cells: 2,
        ..Default::default()
    }
}

/// A whole blob: `/` with 2/2 cells, the device's node and its root-level nodes.
pub fn fdt_blob(dev: &dyn Device, res: &NodeResources) -> Vec<u8> {
    let mut w = FdtWriter::new().expect("writer");
    let root = w.begin_node("").expect("root");
    w.property_u32("#address-cells", 2).expect("cells");
    w.property_u32("#size-cells", 2).expect("cells");
    dev.write_fdt(&mut w, res).expect("device node");
    dev.write_fdt_root(&mut w, res).expect("root nodes");
    w.end_node(root).expect("end root");
    w.finish().expect("finish")
}

/// Decompiles a blob with `dtc -I dtb -O dts`. `None` if `dtc` is not installed (the callers
/// still make their own checks); a blob `dtc` rejects fails the test.
pub fn dtc_decompile(blob: &[u8]) -> Option<String> {
    let child = Command::new("dtc")
        .args(["-I", "dtb", "-O", "dts", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            eprintln!("dtc not available ({e}); skipping the dtc check");
            return None;
        }
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(blob)
        .expect("feed dtc");
    let out = child.wait_with_output().expect("dtc runs");
    assert!(
        out.status.success(),
        "dtc rejected the blob: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).expect("dts is text"))
}

/// Asserts that the decompiled `dts` has every one of `lines` (trimmed, exact), and no line
/// from `absent` (matched as property-name prefixes).
pub fn assert_dts(dts: &str, lines: &[&str], absent: &[&str]) {
    let have: Vec<&str> = dts.lines().map(str::trim).collect();
    for l in lines {
        assert!(have.contains(l), "missing `{l}` in:\n{dts}");
    }
    for a in absent {
        assert!(
            !have.iter().any(|h| h.starts_with(a)),
            "unexpected `{a}` in:\n{dts}"
        );
    }
}
