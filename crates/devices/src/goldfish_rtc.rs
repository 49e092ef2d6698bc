//! `goldfish-rtc`: the Android Goldfish real-time clock, following the Goldfish virtual
//! hardware description (android emulator `docs/GOLDFISH-VIRTUAL-HARDWARE.TXT`, "Goldfish
//! timer") with the alarm-control registers Linux's `rtc-goldfish` driver uses.
//!
//! Time is nanoseconds since the Unix epoch: `base-ns` (or the host's wall clock when the
//! device is made) plus virtual time, so `-icount` runs see a repeatable clock. The time keeps
//! running across machine resets, like a battery-backed RTC.
//!
//! 32-bit accesses only, at these offsets:
//! - `0x00 TIME_LOW`: read latches the time and returns its low half; write sets the time to
//!   `(latched high << 32) | value`.
//! - `0x04 TIME_HIGH`: read returns the high half latched by the last TIME_LOW read; write
//!   latches the high half for the next TIME_LOW write.
//! - `0x08 ALARM_LOW`: write arms the alarm at `(ALARM_HIGH << 32) | value`; read returns the
//!   alarm's low half.
//! - `0x0c ALARM_HIGH`: high half of the next alarm.
//! - `0x10 IRQ_ENABLED`: bit 0 gates the IRQ output.
//! - `0x14 CLEAR_ALARM`: write disarms the alarm.
//! - `0x18 ALARM_STATUS`: 1 while an alarm is armed.
//! - `0x1c CLEAR_INTERRUPT`: write acknowledges the alarm interrupt.
//!
//! The IRQ output (`sysbus-irq[0]`) is high while an alarm has fired, is not acknowledged, and
//! IRQ_ENABLED is set.
// Reads guest, file, socket or plugin input: no panicking shortcuts (SECURITY.md, issue 9).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::borrow::Cow;
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

use breadboard_core::fdt::{FdtError, FdtWriter, NodeResources};
use breadboard_core::{
    Clock, Device, DeviceCtx, DeviceError, DeviceType, IrqLine, PropKind, PropSpec, Props,
    RegionSpec, TimerHandle,
};

/// Type name.
pub const TYPE_NAME: &str = "goldfish-rtc";

const REGION_SIZE: u64 = 0x1000;

const REG_TIME_LOW: u64 = 0x00;
const REG_TIME_HIGH: u64 = 0x04;
const REG_ALARM_LOW: u64 = 0x08;
const REG_ALARM_HIGH: u64 = 0x0c;
const REG_IRQ_ENABLED: u64 = 0x10;
const REG_CLEAR_ALARM: u64 = 0x14;
const REG_ALARM_STATUS: u64 = 0x18;
const REG_CLEAR_INTERRUPT: u64 = 0x1c;

/// Timer token of the alarm.
const TIMER_ALARM: u64 = 0;

/// The Goldfish RTC.
pub struct GoldfishRtc {
    name: String,
    clock: Rc<Clock>,
    timers: TimerHandle,
    irq: IrqLine,
    /// RTC time minus virtual time (wrapping), in ns.
    offset: u64,
    /// High half latched by a TIME_LOW read (and what TIME_HIGH writes set).
    time_high: u32,
    alarm_next: u64,
    alarm_running: bool,
    irq_pending: bool,
    irq_enabled: bool,
}

impl GoldfishRtc {
    fn new(name: &str, clock: Rc<Clock>, timers: TimerHandle, base_ns: u64) -> GoldfishRtc {
        let mut r = GoldfishRtc {
            name: name.to_string(),
            offset: base_ns.wrapping_sub(clock.now()),
            clock,
            timers,
            irq: IrqLine::new(),
            time_high: 0,
            alarm_next: 0,
            alarm_running: false,
            irq_pending: false,
            irq_enabled: false,
        };
        r.reset();
        r
    }

    /// Current RTC time in ns since the epoch.
    pub fn now_ns(&self) -> u64 {
        self.clock.now().wrapping_add(self.offset)
    }

    fn update_irq(&self) {
        self.irq.set(self.irq_pending && self.irq_enabled);
    }

    /// Fires the alarm if it is due, else (re)arms the timer for it.
    fn check_alarm(&mut self) {
        if !self.alarm_running {
            self.timers.cancel(TIMER_ALARM);
            return;
        }
        let now = self.now_ns();
        if now >= self.alarm_next {
            self.alarm_running = false;
            self.irq_pending = true;
            self.timers.cancel(TIMER_ALARM);
            self.update_irq();
        } else {
            let deadline = self.clock.now().saturating_add(self.alarm_next - now);
            self.timers.schedule_at(TIMER_ALARM, deadline);
        }
    }

    fn bad_access(&self, what: &str, offset: u64, size: u8) {
        tracing::warn!(
            target: "guest_error",
            "{}: bad {what} of {size} bytes at {offset:#x}",
            self.name
        );
    }
}

impl Device for GoldfishRtc {
    fn snapshot_save(&self) -> Result<Vec<u8>, breadboard_core::snapshot::SnapshotError> {
        let mut w = breadboard_core::snapshot::SnapWriter::new();
        w.u64(self.offset);
        w.u32(self.time_high);
        w.u64(self.alarm_next);
        w.bool(self.alarm_running);
        w.bool(self.irq_pending);
        w.bool(self.irq_enabled);
        Ok(w.finish())
    }

    fn snapshot_load(
        &mut self,
        data: &[u8],
    ) -> Result<(), breadboard_core::snapshot::SnapshotError> {
        let mut r = breadboard_core::snapshot::SnapReader::new(data);
        let v = (
            r.u64()?,
            r.u32()?,
            r.u64()?,
            r.bool()?,
            r.bool()?,
            r.bool()?,
        );
        r.end()?;
        (
            self.offset,
            self.time_high,
            self.alarm_next,
            self.alarm_running,
            self.irq_pending,
            self.irq_enabled,
        ) = v;
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
        if size != 4 {
            self.bad_access("read", offset, size);
            return 0;
        }
        match offset {
            REG_TIME_LOW => {
                let t = self.now_ns();
                self.time_high = (t >> 32) as u32;
                t & 0xffff_ffff
            }
            REG_TIME_HIGH => u64::from(self.time_high),
            REG_ALARM_LOW => self.alarm_next & 0xffff_ffff,
            REG_ALARM_HIGH => self.alarm_next >> 32,
            REG_IRQ_ENABLED => u64::from(self.irq_enabled),
            REG_ALARM_STATUS => u64::from(self.alarm_running),
            _ => {
                self.bad_access("read", offset, size);
                0
            }
        }
    }

    fn write(&mut self, region: usize, offset: u64, size: u8, value: u64) {
        if region != 0 {
            crate::bad_region(&self.name, region);
            return;
        }
        if size != 4 {
            self.bad_access("write", offset, size);
            return;
        }
        let value = value & 0xffff_ffff;
        match offset {
            REG_TIME_LOW => {
                let t = (u64::from(self.time_high) << 32) | value;
                self.offset = t.wrapping_sub(self.clock.now());
                self.check_alarm();
            }
            REG_TIME_HIGH => self.time_high = value as u32,
            REG_ALARM_LOW => {
                self.alarm_next = (self.alarm_next & !0xffff_ffff) | value;
                self.alarm_running = true;
                self.check_alarm();
            }
            REG_ALARM_HIGH => {
                self.alarm_next = (self.alarm_next & 0xffff_ffff) | (value << 32);
            }
            REG_IRQ_ENABLED => {
                self.irq_enabled = value & 1 != 0;
                self.update_irq();
            }
            REG_CLEAR_ALARM => {
                self.alarm_running = false;
                self.check_alarm();
            }
            REG_CLEAR_INTERRUPT => {
                self.irq_pending = false;
                self.update_irq();
            }
            _ => self.bad_access("write", offset, size),
        }
    }

    fn irq_outputs(&self) -> Vec<IrqLine> {
        vec![self.irq.clone()]
    }

    fn reset(&mut self) {
        self.time_high = 0;
        self.alarm_next = 0;
        self.alarm_running = false;
        self.irq_pending = false;
        self.irq_enabled = false;
        self.timers.cancel(TIMER_ALARM);
        self.update_irq();
    }

    fn timer(&mut self, token: u64) {
        if token == TIMER_ALARM {
            self.check_alarm();
        }
    }

    fn write_fdt(&self, fdt: &mut FdtWriter, res: &NodeResources) -> Result<(), FdtError> {
        let node = fdt.begin_node(&res.node_name("rtc"))?;
        res.write_common(fdt, &["google,goldfish-rtc"])?;
        fdt.end_node(node)
    }
}

fn host_time_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn make(props: &Props, ctx: &DeviceCtx<'_>) -> Result<Box<dyn Device>, DeviceError> {
    let base = match props.u64("base-ns") {
        0 => host_time_ns(),
        n => n,
    };
    Ok(Box::new(GoldfishRtc::new(
        ctx.name,
        ctx.clock.clone(),
        ctx.timers.clone(),
        base,
    )))
}

/// The `goldfish-rtc` type. One MMIO region (4 KiB); IRQ output 0 = alarm.
pub fn device_type() -> DeviceType {
    DeviceType {
        name: Cow::Borrowed(TYPE_NAME),
        description: Cow::Borrowed("Goldfish real-time clock"),
        user_creatable: true,
        sysbus: true,
        bus: None,
        compatible: &["google,goldfish-rtc"],
        props: vec![PropSpec::new(
            "base-ns",
            PropKind::Int,
            "0",
            "time at machine start in ns since the Unix epoch (0: host wall clock)",
        )],
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

    const BASE: u64 = 0x1234_5678_9abc_def0;

    struct Fixture {
        env: TestEnv,
        dev: Box<dyn Device>,
        irq: Rc<RecordingSink>,
    }

    fn rtc() -> Fixture {
        let env = TestEnv::new();
        let mut dev = env.make(&device_type(), &[("base-ns", &BASE.to_string())]);
        dev.reset();
        let irq = RecordingSink::new(1);
        dev.irq_outputs()[0].connect(irq.clone(), 0);
        Fixture { env, dev, irq }
    }

    impl Fixture {
        fn rd(&mut self, off: u64) -> u64 {
            self.dev.read(0, off, 4)
        }
        fn wr(&mut self, off: u64, v: u64) {
            self.dev.write(0, off, 4, v);
        }
        fn time(&mut self) -> u64 {
            let lo = self.rd(REG_TIME_LOW);
            (self.rd(REG_TIME_HIGH) << 32) | lo
        }
        fn set_alarm(&mut self, at: u64) {
            self.wr(REG_ALARM_HIGH, at >> 32);
            self.wr(REG_ALARM_LOW, at & 0xffff_ffff);
        }
    }

    #[test]
    fn test_goldfish_rtc_time_is_base_plus_virtual_time() {
        let mut f = rtc();
        assert_eq!(f.time(), BASE);
        f.env.clock.warp_to(1_000);
        assert_eq!(f.time(), BASE + 1_000);
    }

    #[test]
    fn test_goldfish_rtc_time_high_is_latched_by_time_low_read() {
        let mut f = rtc();
        f.env.clock.warp_to(0xffff_ffff - (BASE & 0xffff_ffff));
        let lo = f.rd(REG_TIME_LOW);
        assert_eq!(lo, 0xffff_ffff);
        f.env.clock.warp_to(f.env.clock.now() + 10); // low half wraps, high half moves
        assert_eq!(f.rd(REG_TIME_HIGH), BASE >> 32, "still the latched value");
    }

    #[test]
    fn test_goldfish_rtc_set_time_as_linux_does() {
        let mut f = rtc();
        let t = 1_700_000_000_000_000_000u64;
        f.wr(REG_TIME_HIGH, t >> 32);
        f.wr(REG_TIME_LOW, t & 0xffff_ffff);
        assert_eq!(f.time(), t);
        f.env.clock.warp_to(50);
        assert_eq!(f.time(), t + 50);
    }

    #[test]
    fn test_goldfish_rtc_alarm_fires_at_its_time() {
        let mut f = rtc();
        f.wr(REG_IRQ_ENABLED, 1);
        f.set_alarm(BASE + 5_000);
        assert_eq!(f.rd(REG_ALARM_STATUS), 1);
        assert_eq!(f.rd(REG_ALARM_LOW), (BASE + 5_000) & 0xffff_ffff);
        assert_eq!(f.rd(REG_ALARM_HIGH), (BASE + 5_000) >> 32);
        f.env.advance(f.dev.as_mut(), 4_999);
        assert!(!f.irq.level(0));
        f.env.advance(f.dev.as_mut(), 1);
        assert!(f.irq.level(0));
        assert_eq!(f.rd(REG_ALARM_STATUS), 0);
        f.wr(REG_CLEAR_INTERRUPT, 1);
        assert!(!f.irq.level(0));
    }

    #[test]
    fn test_goldfish_rtc_alarm_in_the_past_fires_at_once() {
        let mut f = rtc();
        f.wr(REG_IRQ_ENABLED, 1);
        f.set_alarm(BASE - 1);
        assert!(f.irq.level(0));
    }

    #[test]
    fn test_goldfish_rtc_irq_enable_gates_the_line() {
        let mut f = rtc();
        f.set_alarm(BASE);
        assert!(!f.irq.level(0), "fired but not enabled");
        f.wr(REG_IRQ_ENABLED, 1);
        assert!(f.irq.level(0));
        assert_eq!(f.rd(REG_IRQ_ENABLED), 1);
        f.wr(REG_IRQ_ENABLED, 0);
        assert!(!f.irq.level(0));
    }

    #[test]
    fn test_goldfish_rtc_clear_alarm_disarms() {
        let mut f = rtc();
        f.wr(REG_IRQ_ENABLED, 1);
        f.set_alarm(BASE + 100);
        f.wr(REG_CLEAR_ALARM, 1);
        assert_eq!(f.rd(REG_ALARM_STATUS), 0);
        assert!(!f.env.queue.is_armed((TEST_ID, TIMER_ALARM)));
        f.env.advance(f.dev.as_mut(), 1_000);
        assert!(!f.irq.level(0));
    }

    #[test]
    fn test_goldfish_rtc_setting_time_past_alarm_fires_it() {
        let mut f = rtc();
        f.wr(REG_IRQ_ENABLED, 1);
        f.set_alarm(BASE + 1_000_000);
        let t = BASE + 2_000_000;
        f.wr(REG_TIME_HIGH, t >> 32);
        f.wr(REG_TIME_LOW, t & 0xffff_ffff);
        assert!(f.irq.level(0));
    }

    #[test]
    fn test_goldfish_rtc_only_32bit_known_registers() {
        let mut f = rtc();
        assert_eq!(f.dev.read(0, REG_TIME_LOW, 8), 0);
        f.dev.write(0, REG_IRQ_ENABLED, 1, 1);
        assert_eq!(f.rd(REG_IRQ_ENABLED), 0);
        assert_eq!(f.rd(0x20), 0);
        assert_eq!(f.rd(REG_CLEAR_INTERRUPT), 0, "write-only");
    }

    #[test]
    fn test_goldfish_rtc_reset_disarms_but_time_keeps_running() {
        let mut f = rtc();
        f.wr(REG_IRQ_ENABLED, 1);
        f.set_alarm(BASE);
        f.env.clock.warp_to(77);
        f.dev.reset();
        assert!(!f.irq.level(0));
        assert_eq!(f.rd(REG_ALARM_STATUS), 0);
        assert_eq!(f.rd(REG_IRQ_ENABLED), 0);
        assert_eq!(f.rd(REG_ALARM_LOW), 0);
        assert_eq!(f.time(), BASE + 77);
    }

    #[test]
    fn test_goldfish_rtc_default_base_is_host_wall_clock() {
        let env = TestEnv::new();
        let before = host_time_ns();
        let mut dev = env.make(&device_type(), &[]);
        let lo = dev.read(0, REG_TIME_LOW, 4);
        let t = (dev.read(0, REG_TIME_HIGH, 4) << 32) | lo;
        assert!(t >= before && t <= host_time_ns());
    }

    #[test]
    fn test_goldfish_rtc_dt_node_matches_qemu_virt() {
        let env = TestEnv::new();
        let dev = env.make(&device_type(), &[]);
        let mut res = resources(dev.as_ref(), 0x10_1000);
        res.irqs = vec![target(3, &[11])];
        let blob = fdt_blob(dev.as_ref(), &res);
        if let Some(dts) = dtc_decompile(&blob) {
            assert_dts(
                &dts,
                &[
                    "rtc@101000 {",
                    "interrupts = <0x0b>;",
                    "interrupt-parent = <0x03>;",
                    "reg = <0x00 0x101000 0x00 0x1000>;",
                    "compatible = \"google,goldfish-rtc\";",
                ],
                &[],
            );
        }
    }
}
