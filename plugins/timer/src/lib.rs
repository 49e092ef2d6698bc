//! `bb-timer`: a one-shot/periodic countdown timer on the virtual clock, written against the
//! breadboard Rust plugin SDK. An example plugin, not a model of real hardware.
//!
//! Registers (region 0, 0x100 bytes, 4- or 8-byte accesses):
//! - 0x00 CTRL: bit 0 enable, bit 1 periodic, bit 2 interrupt enable.
//! - 0x04 STATUS: bit 0 expired (write 1 to clear, lowers the IRQ), bit 1 GPIO input 0 level.
//! - 0x08 PERIOD: period in ns (64-bit); writing CTRL.enable starts a countdown of PERIOD.
//! - 0x10 NOW: virtual time in ns (read only).
//! - 0x18 COUNT: expirations since reset (read only).
//! - 0x40 PANIC: with property `test-panic=on`, writing 0xdead makes the model panic (tests
//!   that a plugin panic is contained by the SDK).

use breadboard_plugin_api::{
    Fdt, FdtError, Host, PluginDevice, PropKind, TypeBuilder, breadboard_plugin,
};

const CTRL: u64 = 0x00;
const STATUS: u64 = 0x04;
const PERIOD: u64 = 0x08;
const NOW: u64 = 0x10;
const COUNT: u64 = 0x18;
const PANIC: u64 = 0x40;

const CTRL_ENABLE: u64 = 1;
const CTRL_PERIODIC: u64 = 2;
const CTRL_IRQ: u64 = 4;

const TIMER: u64 = 0;

struct Timer {
    host: Host,
    ctrl: u64,
    expired: bool,
    gpio: bool,
    period: u64,
    count: u64,
    test_panic: bool,
    freq: u64,
}

impl Timer {
    fn update_irq(&self) {
        self.host
            .set_irq(0, self.expired && self.ctrl & CTRL_IRQ != 0);
    }

    fn arm(&self) {
        if self.ctrl & CTRL_ENABLE != 0 && self.period != 0 {
            self.host.timer_in(TIMER, self.period);
        } else {
            self.host.timer_del(TIMER);
        }
    }
}

impl PluginDevice for Timer {
    fn create(host: Host) -> Result<Self, String> {
        let freq = host.prop_u64("clock-frequency").unwrap_or(0);
        if freq == 0 {
            return Err("Property 'bb-timer.clock-frequency' must not be 0".into());
        }
        Ok(Timer {
            host,
            ctrl: 0,
            expired: false,
            gpio: false,
            period: 0,
            count: 0,
            test_panic: host.prop_bool("test-panic").unwrap_or(false),
            freq,
        })
    }

    fn read(&mut self, _region: u32, offset: u64, size: u32) -> u64 {
        if size < 4 {
            self.host
                .guest_error(&format!("bad read of {size} bytes at {offset:#x}"));
            return 0;
        }
        match offset {
            CTRL => self.ctrl,
            STATUS => u64::from(self.expired) | (u64::from(self.gpio) << 1),
            PERIOD => self.period,
            NOW => self.host.now_ns(),
            COUNT => self.count,
            _ => {
                self.host
                    .guest_error(&format!("read of unknown register {offset:#x}"));
                0
            }
        }
    }

    fn write(&mut self, _region: u32, offset: u64, size: u32, value: u64) {
        if size < 4 {
            self.host
                .guest_error(&format!("bad write of {size} bytes at {offset:#x}"));
            return;
        }
        match offset {
            CTRL => {
                self.ctrl = value & 7;
                self.arm();
                self.update_irq();
            }
            STATUS => {
                if value & 1 != 0 {
                    self.expired = false;
                    self.update_irq();
                }
            }
            PERIOD => self.period = value,
            // Deliberate: the test of the SDK's panic boundary needs a model that panics.
            #[allow(clippy::panic)]
            PANIC if self.test_panic && value == 0xdead => {
                panic!("bb-timer: PANIC register written")
            }
            _ => self
                .host
                .guest_error(&format!("write to unknown register {offset:#x}")),
        }
    }

    fn reset(&mut self) {
        self.ctrl = 0;
        self.expired = false;
        self.period = 0;
        self.count = 0;
        self.host.timer_del(TIMER);
        self.update_irq();
    }

    fn timer(&mut self, token: u64) {
        if token != TIMER || self.ctrl & CTRL_ENABLE == 0 {
            return;
        }
        self.expired = true;
        self.count += 1;
        if self.ctrl & CTRL_PERIODIC != 0 {
            self.arm();
        } else {
            self.ctrl &= !CTRL_ENABLE;
        }
        self.update_irq();
    }

    fn set_gpio(&mut self, _line: u32, level: bool) {
        self.gpio = level;
    }

    fn write_fdt(&self, fdt: &mut Fdt) -> Result<(), FdtError> {
        fdt.u32(
            "clock-frequency",
            u32::try_from(self.freq).unwrap_or(u32::MAX),
        )
    }

    fn snapshot_save(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(32);
        v.extend_from_slice(&self.ctrl.to_le_bytes());
        v.extend_from_slice(&self.period.to_le_bytes());
        v.extend_from_slice(&self.count.to_le_bytes());
        v.push(u8::from(self.expired));
        v
    }

    fn snapshot_load(&mut self, data: &[u8]) -> Result<(), String> {
        let word = |i: usize| -> Result<u64, String> {
            let b = data.get(i * 8..i * 8 + 8).ok_or("snapshot too short")?;
            Ok(u64::from_le_bytes(
                b.try_into().map_err(|_| "snapshot too short")?,
            ))
        };
        self.ctrl = word(0)?;
        self.period = word(1)?;
        self.count = word(2)?;
        self.expired = data.get(24).copied().ok_or("snapshot too short")? != 0;
        self.update_irq();
        Ok(())
    }
}

breadboard_plugin!("bb-timer", || vec![
    TypeBuilder::new::<Timer>("bb-timer", "example countdown timer (Rust SDK plugin)")
        .compatible("breadboard,example-timer")
        .node_name("timer")
        .region("bb-timer", 0x100)
        .irqs(1)
        .gpio_inputs(1)
        .prop(
            PropKind::Int,
            "clock-frequency",
            Some("1000000000"),
            "timebase in Hz, for the DT",
            Some(u64::from(u32::MAX))
        )
        .prop(
            PropKind::Bool,
            "test-panic",
            Some("off"),
            "let a guest write make the model panic",
            None
        ),
]);
