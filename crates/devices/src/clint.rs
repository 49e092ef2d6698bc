//! `clint`: the SiFive CLINT, i.e. the RISC-V ACLINT MSWI and MTIMER devices at their legacy
//! CLINT offsets (RISC-V ACLINT specification v1.0-rc4, sections 2 and 3; SiFive FU540-C000
//! manual, chapter 9).
//!
//! Register map (one 64 KiB region):
//! - `msip[h]` at `4*h` (h < 4095): bit 0 is hart h's machine software interrupt; the other
//!   bits read 0. 32-bit accesses only.
//! - `mtimecmp[h]` at `0x4000 + 8*h`: 64-bit, or two 32-bit halves.
//! - `mtime` at `0xbff8`: 64-bit, or two 32-bit halves. Writing it sets an offset from the
//!   virtual clock, which keeps running.
//!
//! `mtime` counts the virtual clock at `timebase-frequency`. MTIP of hart h is
//! `mtime >= mtimecmp[h]`; it is re-evaluated on every write and by a timer (token h) set for
//! the moment it would become true. `mtimecmp` resets to all ones so no timer interrupt is
//! pending after reset (the spec leaves the value undefined).
//!
//! IRQ outputs: `sysbus-irq[2h]` is hart h's MSIP, `sysbus-irq[2h+1]` its MTIP.
// Reads guest, file, socket or plugin input: no panicking shortcuts (SECURITY.md, issue 9).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::borrow::Cow;
use std::cell::Cell;
use std::rc::Rc;

use breadboard_core::clock::ticks_to_ns;
use breadboard_core::fdt::{FdtError, FdtWriter, IrqTarget, NodeResources};
use breadboard_core::{
    Clock, Device, DeviceCtx, DeviceError, DeviceType, IrqLine, PropKind, PropSpec, Props,
    RegionSpec, TimerHandle,
};

/// Type name.
pub const TYPE_NAME: &str = "clint";

const REGION_SIZE: u64 = 0x1_0000;
/// `msip[0]`.
const MSIP_BASE: u64 = 0x0000;
/// `mtimecmp[0]`.
const MTIMECMP_BASE: u64 = 0x4000;
/// `mtime`.
const MTIME: u64 = 0xbff8;
/// End of the timer registers.
const MTIME_END: u64 = 0xc000;

/// Harts the legacy layout has room for: `mtimecmp[4094]` ends at `mtime`.
const MAX_HARTS: u64 = (MTIME - MTIMECMP_BASE) / 8;

/// `mcause` interrupt numbers used as `interrupts-extended` cells.
const IRQ_M_SOFT: u32 = 3;
const IRQ_M_TIMER: u32 = 7;

/// `mtime` as the harts' `time` CSR should read it: the virtual clock in timebase ticks plus
/// the offset guest writes to `mtime` introduced. Shared, so a machine can route `rdtime`
/// here without borrowing the device.
#[derive(Debug)]
pub struct MtimeSource {
    clock: Rc<Clock>,
    freq_hz: u64,
    offset: Cell<u64>,
}

impl MtimeSource {
    /// Current `mtime`.
    pub fn mtime(&self) -> u64 {
        self.clock_ticks().wrapping_add(self.offset.get())
    }

    /// The timebase in Hz.
    pub fn frequency(&self) -> u64 {
        self.freq_hz
    }

    fn clock_ticks(&self) -> u64 {
        self.clock.ticks(self.freq_hz)
    }

    fn set_mtime(&self, value: u64) {
        self.offset.set(value.wrapping_sub(self.clock_ticks()));
    }
}

struct Hart {
    msip: IrqLine,
    mtip: IrqLine,
    mtimecmp: u64,
}

/// Which 32 or 64 bits of a 64-bit register an access touches.
#[derive(Clone, Copy)]
enum Part {
    Whole,
    Low,
    High,
}

impl Part {
    fn of(offset_in_reg: u64, size: u8) -> Option<Part> {
        match (offset_in_reg, size) {
            (0, 8) => Some(Part::Whole),
            (0, 4) => Some(Part::Low),
            (4, 4) => Some(Part::High),
            _ => None,
        }
    }

    fn read(self, reg: u64) -> u64 {
        match self {
            Part::Whole => reg,
            Part::Low => reg & 0xffff_ffff,
            Part::High => reg >> 32,
        }
    }

    fn merge(self, reg: u64, value: u64) -> u64 {
        match self {
            Part::Whole => value,
            Part::Low => (reg & !0xffff_ffff) | (value & 0xffff_ffff),
            Part::High => (reg & 0xffff_ffff) | (value << 32),
        }
    }
}

/// A decoded register.
enum Reg {
    Msip(usize),
    Mtimecmp(usize, Part),
    Mtime(Part),
}

/// The CLINT.
pub struct Clint {
    name: String,
    harts: Vec<Hart>,
    time: Rc<MtimeSource>,
    timers: TimerHandle,
}

impl Clint {
    fn new(
        name: &str,
        num_harts: usize,
        freq_hz: u64,
        clock: Rc<Clock>,
        timers: TimerHandle,
    ) -> Clint {
        let harts = (0..num_harts)
            .map(|_| Hart {
                msip: IrqLine::new(),
                mtip: IrqLine::new(),
                mtimecmp: u64::MAX,
            })
            .collect();
        let mut c = Clint {
            name: name.to_string(),
            harts,
            time: Rc::new(MtimeSource {
                clock,
                freq_hz,
                offset: Cell::new(0),
            }),
            timers,
        };
        c.reset();
        c
    }

    /// The shared `mtime` source (for the harts' `time` CSR).
    pub fn time_source(&self) -> Rc<MtimeSource> {
        self.time.clone()
    }

    /// Number of harts served.
    pub fn num_harts(&self) -> usize {
        self.harts.len()
    }

    fn decode(&self, offset: u64, size: u8) -> Option<Reg> {
        let hart = |index: u64| {
            usize::try_from(index)
                .ok()
                .filter(|&h| h < self.harts.len())
        };
        match offset {
            MSIP_BASE..MTIMECMP_BASE if size == 4 && offset.is_multiple_of(4) => {
                hart((offset - MSIP_BASE) / 4).map(Reg::Msip)
            }
            MTIMECMP_BASE..MTIME => {
                let rel = offset - MTIMECMP_BASE;
                let h = hart(rel / 8)?;
                Part::of(rel % 8, size).map(|p| Reg::Mtimecmp(h, p))
            }
            MTIME..MTIME_END => Part::of(offset - MTIME, size).map(Reg::Mtime),
            _ => None,
        }
    }

    /// Recomputes hart `h`'s MTIP and arms its timer for when it becomes due.
    fn update_timer(&self, h: usize) {
        let Some(hart) = self.harts.get(h) else {
            return;
        };
        let token = h as u64;
        let now_ticks = self.time.clock_ticks();
        let mtime = now_ticks.wrapping_add(self.time.offset.get());
        if mtime >= hart.mtimecmp {
            hart.mtip.raise();
            self.timers.cancel(token);
            return;
        }
        hart.mtip.lower();
        // The clock tick at which mtime reaches mtimecmp; past the end of time means never.
        let due = now_ticks
            .checked_add(hart.mtimecmp - mtime)
            .map(|t| ticks_to_ns(t, self.time.freq_hz))
            .filter(|&ns| ns != u64::MAX);
        match due {
            Some(ns) => self.timers.schedule_at(token, ns),
            None => self.timers.cancel(token),
        }
    }

    fn update_all_timers(&self) {
        for h in 0..self.harts.len() {
            self.update_timer(h);
        }
    }
}

impl Device for Clint {
    fn snapshot_save(&self) -> Result<Vec<u8>, breadboard_core::snapshot::SnapshotError> {
        let mut w = breadboard_core::snapshot::SnapWriter::new();
        w.u64(self.time.offset.get());
        w.u64(self.harts.len() as u64);
        for h in &self.harts {
            w.u64(h.mtimecmp);
            w.bool(h.msip.level());
        }
        Ok(w.finish())
    }

    fn snapshot_load(
        &mut self,
        data: &[u8],
    ) -> Result<(), breadboard_core::snapshot::SnapshotError> {
        let mut r = breadboard_core::snapshot::SnapReader::new(data);
        let offset = r.u64()?;
        let n = r.u64()?;
        if n != self.harts.len() as u64 {
            return Err(breadboard_core::snapshot::SnapshotError::Mismatch(format!(
                "'{}' has {} harts, the snapshot {n}",
                self.name,
                self.harts.len()
            )));
        }
        let mut v = Vec::new();
        for _ in 0..n {
            v.push((r.u64()?, r.bool()?));
        }
        r.end()?;
        self.time.offset.set(offset);
        for (h, (cmp, msip)) in self.harts.iter_mut().zip(v) {
            h.mtimecmp = cmp;
            h.msip.set(msip);
        }
        Ok(())
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
        match self.decode(offset, size) {
            Some(Reg::Msip(h)) => self.harts.get(h).map_or(0, |t| u64::from(t.msip.level())),
            Some(Reg::Mtimecmp(h, p)) => self.harts.get(h).map_or(0, |t| p.read(t.mtimecmp)),
            Some(Reg::Mtime(p)) => p.read(self.time.mtime()),
            None => {
                tracing::warn!(
                    target: "guest_error",
                    "{}: bad read of {size} bytes at {offset:#x}",
                    self.name
                );
                0
            }
        }
    }

    fn write(&mut self, region: usize, offset: u64, size: u8, value: u64) {
        if region != 0 {
            crate::bad_region(&self.name, region);
            return;
        }
        match self.decode(offset, size) {
            Some(Reg::Msip(h)) => {
                if let Some(t) = self.harts.get(h) {
                    t.msip.set(value & 1 != 0);
                }
            }
            Some(Reg::Mtimecmp(h, p)) => {
                if let Some(t) = self.harts.get_mut(h) {
                    t.mtimecmp = p.merge(t.mtimecmp, value);
                }
                self.update_timer(h);
            }
            Some(Reg::Mtime(p)) => {
                let new = p.merge(self.time.mtime(), value);
                self.time.set_mtime(new);
                self.update_all_timers();
            }
            None => {
                tracing::warn!(
                    target: "guest_error",
                    "{}: bad write of {size} bytes at {offset:#x} (value {value:#x})",
                    self.name
                );
            }
        }
    }

    fn irq_outputs(&self) -> Vec<IrqLine> {
        self.harts
            .iter()
            .flat_map(|h| [h.msip.clone(), h.mtip.clone()])
            .collect()
    }

    fn reset(&mut self) {
        self.time.set_mtime(0);
        for (h, hart) in self.harts.iter_mut().enumerate() {
            hart.msip.lower();
            hart.mtimecmp = u64::MAX;
            self.timers.cancel(h as u64);
        }
        self.update_all_timers();
    }

    fn timer(&mut self, token: u64) {
        if let Ok(h) = usize::try_from(token) {
            self.update_timer(h);
        }
    }

    fn write_fdt(&self, fdt: &mut FdtWriter, res: &NodeResources) -> Result<(), FdtError> {
        let node = fdt.begin_node(&res.node_name("clint"))?;
        fdt.property_string_list(
            "compatible",
            vec!["sifive,clint0".to_string(), "riscv,clint0".to_string()],
        )?;
        res.write_reg(fdt)?;
        crate::write_interrupts_extended(fdt, res, self.harts.len() * 2, |i| {
            let phandle = *res.cpu_intc_phandles.get(i / 2)?;
            let cell = if i % 2 == 0 { IRQ_M_SOFT } else { IRQ_M_TIMER };
            Some(IrqTarget {
                phandle,
                specifier: vec![cell],
            })
        })?;
        res.write_phandle(fdt)?;
        fdt.end_node(node)
    }
}

fn make(props: &Props, ctx: &DeviceCtx<'_>) -> Result<Box<dyn Device>, DeviceError> {
    let harts = match props.u64("num-harts") {
        0 => u64::from(ctx.num_harts),
        n => n,
    };
    if harts == 0 || harts > MAX_HARTS {
        return Err(DeviceError::Realize(format!(
            "Property '{TYPE_NAME}.num-harts' must be between 1 and {MAX_HARTS}, not {harts}"
        )));
    }
    let freq = props.u64("timebase-frequency");
    if freq == 0 {
        return Err(DeviceError::Realize(format!(
            "Property '{TYPE_NAME}.timebase-frequency' must not be 0"
        )));
    }
    let harts = usize::try_from(harts).unwrap_or(0);
    Ok(Box::new(Clint::new(
        ctx.name,
        harts,
        freq,
        ctx.clock.clone(),
        ctx.timers.clone(),
    )))
}

/// The `clint` type. One MMIO region (64 KiB); IRQ outputs `2h` = MSIP and `2h+1` = MTIP of
/// hart h; no inputs.
pub fn device_type() -> DeviceType {
    DeviceType {
        name: Cow::Borrowed(TYPE_NAME),
        description: Cow::Borrowed("SiFive CLINT / RISC-V ACLINT MSWI+MTIMER"),
        user_creatable: true,
        sysbus: true,
        bus: None,
        compatible: &["sifive,clint0", "riscv,clint0"],
        props: vec![
            PropSpec::new(
                "num-harts",
                PropKind::Int,
                "0",
                "harts served (0: all of the machine's)",
            )
            .with_max(MAX_HARTS),
            PropSpec::new(
                "timebase-frequency",
                PropKind::Int,
                "10000000",
                "mtime frequency in Hz",
            ),
        ],
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
    use crate::testutil::{
        TEST_ID, TestEnv, assert_dts, dtc_decompile, fdt_blob, resources, target,
    };
    use breadboard_core::irq::RecordingSink;

    struct Fixture {
        env: TestEnv,
        dev: Box<dyn Device>,
        irqs: Rc<RecordingSink>,
    }

    /// Two harts, 10 MHz timebase: one tick is 100 ns of virtual time.
    fn clint() -> Fixture {
        let env = TestEnv::with_harts(2);
        let mut dev = env.make(&device_type(), &[]);
        dev.reset();
        let irqs = RecordingSink::new(4);
        for (i, l) in dev.irq_outputs().iter().enumerate() {
            l.connect(irqs.clone(), i as u32);
        }
        Fixture { env, dev, irqs }
    }

    const MSIP: u32 = 0;
    const MTIP: u32 = 1;
    fn line(hart: u32, which: u32) -> u32 {
        2 * hart + which
    }

    /// Resident set size of this process in bytes (Linux).
    /// Found by the `machine_mmio` fuzz target (a machine reused across inputs slowed down and
    /// grew to hundreds of MB, then timed out): every `mtimecmp` write that moves the deadline
    /// pushes a new entry onto the timer heap, and the superseded entries stay there until
    /// they reach its top. A guest that keeps reprogramming a far-future deadline grows host
    /// memory without bound (SECURITY.md: unbounded memory growth caused by the guest).
    /// Fixed in `breadboard_core::TimerQueue::schedule`, which drops stale entries once they
    /// outnumber the live ones; checked here on the queue itself (RSS would depend on what the
    /// other test threads allocate).
    #[test]
    fn test_machine_mmio_timer_reprogramming_does_not_grow_memory() {
        let mut f = clint();
        for i in 0..1_000_000u64 {
            f.dev.write(0, 0x4000, 8, (1 << 50) + i);
        }
        assert!(
            f.env.queue.heap_len() < 256,
            "1M mtimecmp writes left {} timer entries",
            f.env.queue.heap_len()
        );
    }

    #[test]
    fn test_clint_outputs_are_msip_mtip_per_hart() {
        let f = clint();
        assert_eq!(f.dev.irq_outputs().len(), 4);
        assert_eq!(f.dev.gpio_inputs(), 0);
    }

    #[test]
    fn test_clint_msip_drives_software_interrupt_bit0_only() {
        let mut f = clint();
        f.dev.write(0, 4, 4, 0xffff_fffe);
        assert!(!f.irqs.level(line(1, MSIP)));
        f.dev.write(0, 4, 4, 1);
        assert!(f.irqs.level(line(1, MSIP)));
        assert!(!f.irqs.level(line(0, MSIP)));
        assert_eq!(f.dev.read(0, 4, 4), 1);
        f.dev.write(0, 4, 4, 0);
        assert!(!f.irqs.level(line(1, MSIP)));
    }

    #[test]
    fn test_clint_msip_refuses_other_sizes_and_missing_harts() {
        let mut f = clint();
        f.dev.write(0, 0, 1, 1);
        f.dev.write(0, 0, 8, 1);
        assert!(!f.irqs.level(line(0, MSIP)));
        f.dev.write(0, 8, 4, 1); // hart 2 does not exist
        assert_eq!(f.dev.read(0, 8, 4), 0);
    }

    #[test]
    fn test_clint_mtime_counts_virtual_time_at_timebase() {
        let f = clint();
        assert_eq!(
            (*f.dev)
                .as_any()
                .downcast_ref::<Clint>()
                .unwrap()
                .time_source()
                .mtime(),
            0
        );
        f.env.clock.warp_to(1_000_000); // 1 ms = 10000 ticks
        let mut dev = f.dev;
        assert_eq!(dev.read(0, MTIME, 8), 10_000);
        assert_eq!(dev.read(0, MTIME, 4), 10_000);
        assert_eq!(dev.read(0, MTIME + 4, 4), 0);
    }

    #[test]
    fn test_clint_mtime_write_sets_offset_and_keeps_counting() {
        let mut f = clint();
        f.dev.write(0, MTIME + 4, 4, 0x1);
        assert_eq!(f.dev.read(0, MTIME, 8), 0x1_0000_0000);
        f.env.clock.warp_to(500);
        assert_eq!(f.dev.read(0, MTIME, 8), 0x1_0000_0005);
        f.dev.write(0, MTIME, 8, 7);
        assert_eq!(f.dev.read(0, MTIME, 8), 7);
    }

    #[test]
    fn test_clint_mtip_raises_when_mtime_reaches_mtimecmp() {
        let mut f = clint();
        f.dev.write(0, MTIMECMP_BASE + 8, 8, 100); // hart 1, 100 ticks = 10 us
        assert!(!f.irqs.level(line(1, MTIP)));
        assert!(f.env.queue.is_armed((TEST_ID, 1)));
        f.env.advance(f.dev.as_mut(), 9_999);
        assert!(!f.irqs.level(line(1, MTIP)));
        f.env.advance(f.dev.as_mut(), 1);
        assert!(f.irqs.level(line(1, MTIP)));
        assert!(!f.irqs.level(line(0, MTIP)));
        // Moving mtimecmp ahead lowers MTIP again.
        f.dev.write(0, MTIMECMP_BASE + 8, 8, u64::MAX);
        assert!(!f.irqs.level(line(1, MTIP)));
        assert!(
            !f.env.queue.is_armed((TEST_ID, 1)),
            "never is not a deadline"
        );
    }

    #[test]
    fn test_clint_mtimecmp_in_the_past_raises_at_once() {
        let mut f = clint();
        f.env.clock.warp_to(1000);
        f.dev.write(0, MTIMECMP_BASE, 8, 10);
        assert!(f.irqs.level(line(0, MTIP)));
    }

    #[test]
    fn test_clint_mtimecmp_halves_compose() {
        let mut f = clint();
        // The usual RV32 sequence: high to all ones, low, then high.
        f.dev.write(0, MTIMECMP_BASE + 4, 4, 0xffff_ffff);
        f.dev.write(0, MTIMECMP_BASE, 4, 50);
        assert!(!f.irqs.level(line(0, MTIP)));
        f.dev.write(0, MTIMECMP_BASE + 4, 4, 0);
        assert_eq!(f.dev.read(0, MTIMECMP_BASE, 8), 50);
        assert_eq!(f.dev.read(0, MTIMECMP_BASE + 4, 4), 0);
        f.env.advance(f.dev.as_mut(), 5_000);
        assert!(f.irqs.level(line(0, MTIP)));
    }

    #[test]
    fn test_clint_mtime_write_reevaluates_every_hart() {
        let mut f = clint();
        f.dev.write(0, MTIMECMP_BASE, 8, 1000);
        f.dev.write(0, MTIMECMP_BASE + 8, 8, 2000);
        f.dev.write(0, MTIME, 8, 1500);
        assert!(f.irqs.level(line(0, MTIP)));
        assert!(!f.irqs.level(line(1, MTIP)));
        f.env.advance(f.dev.as_mut(), 500 * 100);
        assert!(f.irqs.level(line(1, MTIP)));
    }

    #[test]
    fn test_clint_misaligned_timer_access_is_ignored() {
        let mut f = clint();
        f.dev.write(0, MTIMECMP_BASE + 2, 4, 0);
        f.dev.write(0, MTIMECMP_BASE, 2, 0);
        f.dev.write(0, MTIMECMP_BASE + 4, 8, 0);
        assert_eq!(f.dev.read(0, MTIMECMP_BASE, 8), u64::MAX);
        assert!(!f.irqs.level(line(0, MTIP)));
        assert_eq!(
            f.dev.read(0, MTIMECMP_BASE + 16, 8),
            0,
            "hart 2 does not exist"
        );
        assert_eq!(f.dev.read(0, 0xc000, 4), 0);
    }

    #[test]
    fn test_clint_reset_restores_mtime_mtimecmp_and_lowers_lines() {
        let mut f = clint();
        f.env.clock.warp_to(123_400);
        f.dev.write(0, 0, 4, 1);
        f.dev.write(0, MTIMECMP_BASE, 8, 0);
        assert!(f.irqs.level(line(0, MTIP)));
        f.dev.reset();
        assert_eq!(f.dev.read(0, MTIME, 8), 0);
        assert_eq!(f.dev.read(0, MTIMECMP_BASE, 8), u64::MAX);
        assert_eq!(f.dev.read(0, 0, 4), 0);
        assert!(!f.irqs.level(line(0, MTIP)));
        assert!(!f.irqs.level(line(0, MSIP)));
    }

    #[test]
    fn test_clint_hart_count_comes_from_machine_or_property() {
        let env = TestEnv::with_harts(3);
        assert_eq!(env.make(&device_type(), &[]).irq_outputs().len(), 6);
        assert_eq!(
            env.make(&device_type(), &[("num-harts", "1")])
                .irq_outputs()
                .len(),
            2
        );
        let env = TestEnv::with_harts(0);
        let e = env.try_make(&device_type(), &[]).err().expect("refused");
        assert_eq!(
            e.to_string(),
            "Property 'clint.num-harts' must be between 1 and 4095, not 0"
        );
        assert!(
            env.try_make(
                &device_type(),
                &[("num-harts", "1"), ("timebase-frequency", "0")]
            )
            .is_err()
        );
    }

    #[test]
    fn test_clint_dt_node_matches_qemu_virt() {
        let env = TestEnv::with_harts(1);
        let dev = env.make(&device_type(), &[]);
        let mut res = resources(dev.as_ref(), 0x200_0000);
        res.irqs = vec![target(2, &[3]), target(2, &[7])];
        let blob = fdt_blob(dev.as_ref(), &res);
        if let Some(dts) = dtc_decompile(&blob) {
            assert_dts(
                &dts,
                &[
                    "clint@2000000 {",
                    "interrupts-extended = <0x02 0x03 0x02 0x07>;",
                    "reg = <0x00 0x2000000 0x00 0x10000>;",
                    "compatible = \"sifive,clint0\\0riscv,clint0\";",
                ],
                &["interrupts =", "interrupt-parent", "phandle"],
            );
        }
    }

    #[test]
    fn test_clint_dt_falls_back_to_cpu_intc_phandles() {
        let env = TestEnv::with_harts(2);
        let dev = env.make(&device_type(), &[]);
        let mut res = resources(dev.as_ref(), 0x200_0000);
        res.cpu_intc_phandles = vec![2, 4];
        let blob = fdt_blob(dev.as_ref(), &res);
        if let Some(dts) = dtc_decompile(&blob) {
            assert_dts(
                &dts,
                &["interrupts-extended = <0x02 0x03 0x02 0x07 0x04 0x03 0x04 0x07>;"],
                &[],
            );
        }
    }
}
