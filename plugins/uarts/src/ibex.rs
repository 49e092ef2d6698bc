//! `plugin-ibex-uart`: the built-in `ibex-uart` (crates/devices/src/ibex_uart.rs) rebuilt
//! through the Rust plugin SDK, register model unchanged. The built-in's description follows.
//!
//! OpenTitan's UART, register map of the OpenTitan `uart` documentation
//! (hw/ip/uart, "Registers", 1.x):
//!
//! | offset | register | notes |
//! |---|---|---|
//! | `0x00` | `INTR_STATE` | rw1c; bit per interrupt, below |
//! | `0x04` | `INTR_ENABLE` | rw |
//! | `0x08` | `INTR_TEST` | wo: sets `INTR_STATE` bits |
//! | `0x0c` | `ALERT_TEST` | wo, logged |
//! | `0x10` | `CTRL` | TX 0, RX 1, NF 2, SLPBK 4, LLPBK 5, PARITY_EN 6, PARITY_ODD 7, RXBLVL 9:8, NCO 31:16 |
//! | `0x14` | `STATUS` | ro: TXFULL 0, RXFULL 1, TXEMPTY 2, TXIDLE 3, RXIDLE 4, RXEMPTY 5 |
//! | `0x18` | `RDATA` | ro: pops the RX FIFO |
//! | `0x1c` | `WDATA` | wo: pushes the TX FIFO |
//! | `0x20` | `FIFO_CTRL` | RXRST 0 (wo), TXRST 1 (wo), RXILVL 4:2, TXILVL 7:5 |
//! | `0x24` | `FIFO_STATUS` | ro: TXLVL 7:0, RXLVL 23:16 |
//! | `0x28` | `OVRD` | TXEN 0, TXVAL 1 |
//! | `0x2c` | `VAL` | ro: oversampled RX line (idle high: `0xffff`) |
//! | `0x30` | `TIMEOUT_CTRL` | VAL 23:0 (bit times), EN 31 |
//!
//! Interrupts, one output each in `INTR_STATE` bit order (QEMU's `ibex_uart` order, so
//! `sysbus-irq[1]` is rx_watermark): tx_watermark, rx_watermark, tx_empty, rx_overflow,
//! rx_frame_err, rx_break_err, rx_timeout, rx_parity_err. They are event-type: the event sets
//! the state bit, software clears it by writing 1; an output is high while its state and enable
//! bits are both set.
//!
//! The model: 32-entry RX and TX FIFOs. Transmission is instant while `CTRL.TX` is set (the TX
//! FIFO drains to the chardev, or into RX with system loopback); emptying the TX FIFO raises
//! tx_watermark and tx_empty. A received byte that brings the RX FIFO to the `RXILVL` level
//! (1, 2, 4, 8, 16, 32 characters; 64 and 126 never trigger with 32 entries) raises
//! rx_watermark. Input is taken only while `CTRL.RX` is set and the FIFO has room, so the
//! chardev holds back the rest (nothing is lost). rx_timeout uses `TIMEOUT_CTRL` and the baud
//! rate `NCO * clock-frequency / 2^20`. Framing, break and parity errors cannot happen in an
//! emulated line (only `INTR_TEST` sets them). Registers take aligned 32-bit accesses only.

use std::collections::VecDeque;

use breadboard_plugin_api::{Fdt, FdtError, Host, PluginDevice, PropKind, TypeBuilder};

/// Type name (the built-in keeps `ibex-uart`).
pub const TYPE_NAME: &str = "plugin-ibex-uart";

const INTR_STATE: u64 = 0x00;
const INTR_ENABLE: u64 = 0x04;
const INTR_TEST: u64 = 0x08;
const ALERT_TEST: u64 = 0x0c;
const CTRL: u64 = 0x10;
const STATUS: u64 = 0x14;
const RDATA: u64 = 0x18;
const WDATA: u64 = 0x1c;
const FIFO_CTRL: u64 = 0x20;
const FIFO_STATUS: u64 = 0x24;
const OVRD: u64 = 0x28;
const VAL: u64 = 0x2c;
const TIMEOUT_CTRL: u64 = 0x30;
/// OpenTitan gives the UART a 64-byte window.
const SIZE: u64 = 0x40;

/// Interrupt bits (also the output numbers).
pub const INTR_TX_WATERMARK: u32 = 1 << 0;
/// RX FIFO at or past `RXILVL`.
pub const INTR_RX_WATERMARK: u32 = 1 << 1;
/// TX FIFO emptied.
pub const INTR_TX_EMPTY: u32 = 1 << 2;
/// A byte arrived with the RX FIFO full.
pub const INTR_RX_OVERFLOW: u32 = 1 << 3;
/// Characters waited in the RX FIFO for `TIMEOUT_CTRL.VAL` bit times.
pub const INTR_RX_TIMEOUT: u32 = 1 << 6;
const NUM_IRQS: usize = 8;
const INTR_MASK: u32 = 0xff;

const CTRL_TX: u32 = 1 << 0;
const CTRL_RX: u32 = 1 << 1;
const CTRL_SLPBK: u32 = 1 << 4;
/// Reset mask of `CTRL`.
const CTRL_MASK: u32 = 0xffff_03f7;

const STATUS_TXFULL: u32 = 1 << 0;
const STATUS_RXFULL: u32 = 1 << 1;
const STATUS_TXEMPTY: u32 = 1 << 2;
const STATUS_TXIDLE: u32 = 1 << 3;
const STATUS_RXIDLE: u32 = 1 << 4;
const STATUS_RXEMPTY: u32 = 1 << 5;

const FIFO_CTRL_RXRST: u32 = 1 << 0;
const FIFO_CTRL_TXRST: u32 = 1 << 1;
/// RXILVL (4:2) and TXILVL (7:5): the part of `FIFO_CTRL` that reads back.
const FIFO_CTRL_LEVELS: u32 = 0xfc;

const TIMEOUT_EN: u32 = 1 << 31;
const TIMEOUT_VAL: u32 = 0x00ff_ffff;
const TIMEOUT_MASK: u32 = TIMEOUT_EN | TIMEOUT_VAL;

/// FIFO depth (QEMU's model uses 32 too).
pub const FIFO_DEPTH: usize = 32;

/// Timer token of the RX timeout.
const TIMER_RX_TIMEOUT: u64 = 0;

/// The UART.
pub struct IbexUart {
    host: Host,
    clock_hz: u64,
    intr_state: u32,
    intr_enable: u32,
    ctrl: u32,
    fifo_ctrl: u32,
    ovrd: u32,
    timeout_ctrl: u32,
    rx: VecDeque<u8>,
    tx: VecDeque<u8>,
}

impl IbexUart {
    fn rx_level(&self) -> usize {
        // RXILVL: 1, 2, 4, … characters.
        1usize << ((self.fifo_ctrl >> 2) & 0x7)
    }

    fn update_irqs(&self) {
        let active = self.intr_state & self.intr_enable;
        for i in 0..NUM_IRQS as u32 {
            self.host.set_irq(i, active & (1 << i) != 0);
        }
    }

    fn status(&self) -> u32 {
        let mut s = STATUS_RXIDLE;
        if self.tx.len() >= FIFO_DEPTH {
            s |= STATUS_TXFULL;
        }
        if self.rx.len() >= FIFO_DEPTH {
            s |= STATUS_RXFULL;
        }
        if self.tx.is_empty() {
            s |= STATUS_TXEMPTY | STATUS_TXIDLE;
        }
        if self.rx.is_empty() {
            s |= STATUS_RXEMPTY;
        }
        s
    }

    /// One byte into the RX FIFO (from the chardev or the loopback).
    fn rx_push(&mut self, b: u8) {
        if self.rx.len() >= FIFO_DEPTH {
            self.intr_state |= INTR_RX_OVERFLOW;
            return;
        }
        self.rx.push_back(b);
        if self.rx.len() >= self.rx_level() {
            self.intr_state |= INTR_RX_WATERMARK;
        }
    }

    /// Sends what the TX FIFO holds, if the transmitter is on.
    fn flush_tx(&mut self) {
        if self.ctrl & CTRL_TX == 0 || self.tx.is_empty() {
            return;
        }
        let bytes: Vec<u8> = self.tx.drain(..).collect();
        if self.ctrl & CTRL_SLPBK != 0 {
            for b in bytes {
                self.rx_push(b);
            }
            self.arm_rx_timeout();
        } else {
            self.host.chr_write(&bytes);
        }
        self.intr_state |= INTR_TX_WATERMARK | INTR_TX_EMPTY;
    }

    /// Virtual ns of `TIMEOUT_CTRL.VAL` bit times at the programmed baud rate, if enabled.
    fn rx_timeout_ns(&self) -> Option<u64> {
        if self.timeout_ctrl & TIMEOUT_EN == 0 {
            return None;
        }
        let bits = u128::from(self.timeout_ctrl & TIMEOUT_VAL);
        let nco = u128::from(self.ctrl >> 16);
        let denom = nco
            .checked_mul(u128::from(self.clock_hz))
            .filter(|&d| d > 0)?;
        // baud = NCO * f / 2^20, so one bit lasts 2^20 / (NCO * f) seconds.
        let ns = bits.checked_mul(1_000_000_000u128 << 20)? / denom;
        u64::try_from(ns.max(1)).ok()
    }

    /// (Re)starts the RX timeout: it fires if characters wait unread that long.
    fn arm_rx_timeout(&mut self) {
        match (self.rx.is_empty(), self.rx_timeout_ns()) {
            (false, Some(ns)) => self.host.timer_in(TIMER_RX_TIMEOUT, ns),
            _ => self.host.timer_del(TIMER_RX_TIMEOUT),
        }
    }

    fn read_reg(&mut self, offset: u64) -> Option<u32> {
        Some(match offset {
            INTR_STATE => self.intr_state,
            INTR_ENABLE => self.intr_enable,
            INTR_TEST | ALERT_TEST | WDATA => 0,
            CTRL => self.ctrl,
            STATUS => self.status(),
            RDATA => {
                let b = self.rx.pop_front();
                if b.is_none() {
                    self.host.guest_error("RDATA read with the RX FIFO empty");
                }
                self.arm_rx_timeout();
                u32::from(b.unwrap_or(0))
            }
            FIFO_CTRL => self.fifo_ctrl,
            FIFO_STATUS => {
                let tx = u32::try_from(self.tx.len()).unwrap_or(0);
                let rx = u32::try_from(self.rx.len()).unwrap_or(0);
                tx | (rx << 16)
            }
            OVRD => self.ovrd,
            // The RX line idles high and every sample saw it so.
            VAL => 0xffff,
            TIMEOUT_CTRL => self.timeout_ctrl,
            _ => return None,
        })
    }

    fn write_reg(&mut self, offset: u64, v: u32) -> Option<()> {
        match offset {
            INTR_STATE => self.intr_state &= !v,
            INTR_ENABLE => self.intr_enable = v & INTR_MASK,
            INTR_TEST => self.intr_state |= v & INTR_MASK,
            ALERT_TEST => {
                if v & 1 != 0 {
                    self.host.unimp("ALERT_TEST fatal_fault (no alert handler)");
                }
            }
            CTRL => {
                self.ctrl = v & CTRL_MASK;
                self.flush_tx();
                self.arm_rx_timeout();
            }
            STATUS | RDATA | FIFO_STATUS | VAL => {
                self.host.guest_error(&format!(
                    "write of {v:#x} to read-only register {offset:#x}"
                ));
            }
            WDATA => {
                if self.tx.len() >= FIFO_DEPTH {
                    self.host.guest_error("WDATA write with the TX FIFO full");
                } else {
                    self.tx.push_back(v as u8);
                    self.flush_tx();
                }
            }
            FIFO_CTRL => {
                if v & FIFO_CTRL_RXRST != 0 {
                    self.rx.clear();
                    self.host.timer_del(TIMER_RX_TIMEOUT);
                }
                if v & FIFO_CTRL_TXRST != 0 {
                    self.tx.clear();
                }
                self.fifo_ctrl = v & FIFO_CTRL_LEVELS;
            }
            OVRD => {
                self.ovrd = v & 0x3;
                if self.ovrd != 0 {
                    self.host.unimp("TX pin override has no visible effect");
                }
            }
            TIMEOUT_CTRL => {
                self.timeout_ctrl = v & TIMEOUT_MASK;
                self.arm_rx_timeout();
            }
            _ => return None,
        }
        Some(())
    }

    fn bad_access(&self, what: &str, offset: u64, size: u32) {
        self.host
            .guest_error(&format!("bad {what} of {size} bytes at {offset:#x}"));
    }
}

fn aligned(offset: u64, size: u32) -> bool {
    size == 4 && offset.is_multiple_of(4) && offset < SIZE
}

impl PluginDevice for IbexUart {
    fn create(host: Host) -> Result<Self, String> {
        let clock_hz = host.prop_u64("clock-frequency").unwrap_or(0);
        if clock_hz == 0 {
            return Err(format!(
                "Property '{TYPE_NAME}.clock-frequency' must not be 0"
            ));
        }
        let mut d = IbexUart {
            host,
            clock_hz,
            intr_state: 0,
            intr_enable: 0,
            ctrl: 0,
            fifo_ctrl: 0,
            ovrd: 0,
            timeout_ctrl: 0,
            rx: VecDeque::with_capacity(FIFO_DEPTH),
            tx: VecDeque::with_capacity(FIFO_DEPTH),
        };
        PluginDevice::reset(&mut d);
        Ok(d)
    }

    fn read(&mut self, region: u32, offset: u64, size: u32) -> u64 {
        if region != 0 {
            self.host.guest_error(&format!(
                "access to region {region}, which it does not have"
            ));
            return 0;
        }
        let v = aligned(offset, size)
            .then(|| self.read_reg(offset))
            .flatten();
        self.update_irqs();
        match v {
            Some(v) => u64::from(v),
            None => {
                self.bad_access("read", offset, size);
                0
            }
        }
    }

    fn write(&mut self, region: u32, offset: u64, size: u32, value: u64) {
        if region != 0 {
            self.host.guest_error(&format!(
                "access to region {region}, which it does not have"
            ));
            return;
        }
        let done = aligned(offset, size)
            .then(|| self.write_reg(offset, value as u32))
            .flatten();
        if done.is_none() {
            self.bad_access("write", offset, size);
        }
        self.update_irqs();
    }

    fn reset(&mut self) {
        self.intr_state = 0;
        self.intr_enable = 0;
        self.ctrl = 0;
        self.fifo_ctrl = 0;
        self.ovrd = 0;
        self.timeout_ctrl = 0;
        self.rx.clear();
        self.tx.clear();
        self.host.timer_del(TIMER_RX_TIMEOUT);
        self.update_irqs();
    }

    fn timer(&mut self, token: u64) {
        if token == TIMER_RX_TIMEOUT && !self.rx.is_empty() && self.rx_timeout_ns().is_some() {
            self.intr_state |= INTR_RX_TIMEOUT;
            self.update_irqs();
        }
    }

    fn can_receive(&self) -> usize {
        if self.ctrl & CTRL_RX == 0 {
            return 0;
        }
        FIFO_DEPTH.saturating_sub(self.rx.len())
    }

    fn receive(&mut self, data: &[u8]) {
        for &b in data {
            self.rx_push(b);
        }
        self.arm_rx_timeout();
        self.update_irqs();
    }

    fn write_fdt(&self, fdt: &mut Fdt) -> Result<(), FdtError> {
        // compatible, reg and interrupts come from the host.
        fdt.u32(
            "clock-frequency",
            u32::try_from(self.clock_hz).unwrap_or(u32::MAX),
        )
    }
}

/// The `plugin-ibex-uart` type: one 64-byte region, eight IRQ outputs, an optional chardev.
pub fn type_builder() -> TypeBuilder {
    TypeBuilder::new::<IbexUart>(TYPE_NAME, "OpenTitan UART (plugin build of ibex-uart)")
        .compatible("lowrisc,opentitan-uart")
        .node_name("serial")
        .region(TYPE_NAME, SIZE)
        .irqs(NUM_IRQS as u32)
        .prop(
            PropKind::Chardev,
            "chardev",
            Some(""),
            "character device it talks to",
            None,
        )
        .prop(
            PropKind::Int,
            "clock-frequency",
            Some("24000000"),
            "peripheral clock in Hz (baud = NCO * clock / 2^20)",
            Some(u64::from(u32::MAX)),
        )
}
