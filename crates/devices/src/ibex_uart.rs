//! `ibex-uart`: OpenTitan's UART, register map of the OpenTitan `uart` documentation
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
// Reads guest, file, socket or plugin input: no panicking shortcuts (SECURITY.md, issue 9).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::borrow::Cow;
use std::collections::VecDeque;
use std::rc::Rc;

use breadboard_core::fdt::{FdtError, FdtWriter, NodeResources};
use breadboard_core::{
    Chardev, Device, DeviceCtx, DeviceError, DeviceType, IrqLine, PropKind, PropSpec, Props,
    RegionSpec, TimerHandle,
};

/// Type name.
pub const TYPE_NAME: &str = "ibex-uart";

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
    name: String,
    chardev: Option<Rc<Chardev>>,
    timers: TimerHandle,
    clock_hz: u64,
    intr_state: u32,
    intr_enable: u32,
    ctrl: u32,
    fifo_ctrl: u32,
    ovrd: u32,
    timeout_ctrl: u32,
    rx: VecDeque<u8>,
    tx: VecDeque<u8>,
    irqs: Vec<IrqLine>,
}

impl IbexUart {
    fn rx_level(&self) -> usize {
        // RXILVL: 1, 2, 4, … characters.
        1usize << ((self.fifo_ctrl >> 2) & 0x7)
    }

    fn update_irqs(&self) {
        let active = self.intr_state & self.intr_enable;
        for (i, line) in self.irqs.iter().enumerate() {
            line.set(active & (1 << i) != 0);
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
        } else if let Some(c) = &self.chardev {
            c.write(&bytes);
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
            (false, Some(ns)) => self.timers.schedule_in(TIMER_RX_TIMEOUT, ns),
            _ => self.timers.cancel(TIMER_RX_TIMEOUT),
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
                    tracing::warn!(target: "guest_error", "{}: RDATA read with the RX FIFO empty", self.name);
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
                    tracing::info!(target: "unimp", "{}: ALERT_TEST fatal_fault (no alert handler)", self.name);
                }
            }
            CTRL => {
                self.ctrl = v & CTRL_MASK;
                self.flush_tx();
                self.arm_rx_timeout();
            }
            STATUS | RDATA | FIFO_STATUS | VAL => {
                tracing::warn!(target: "guest_error", "{}: write of {v:#x} to read-only register {offset:#x}", self.name);
            }
            WDATA => {
                if self.tx.len() >= FIFO_DEPTH {
                    tracing::warn!(target: "guest_error", "{}: WDATA write with the TX FIFO full", self.name);
                } else {
                    self.tx.push_back(v as u8);
                    self.flush_tx();
                }
            }
            FIFO_CTRL => {
                if v & FIFO_CTRL_RXRST != 0 {
                    self.rx.clear();
                    self.timers.cancel(TIMER_RX_TIMEOUT);
                }
                if v & FIFO_CTRL_TXRST != 0 {
                    self.tx.clear();
                }
                self.fifo_ctrl = v & FIFO_CTRL_LEVELS;
            }
            OVRD => {
                self.ovrd = v & 0x3;
                if self.ovrd != 0 {
                    tracing::info!(target: "unimp", "{}: TX pin override has no visible effect", self.name);
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

    fn bad_access(&self, what: &str, offset: u64, size: u8) {
        tracing::warn!(target: "guest_error", "{}: bad {what} of {size} bytes at {offset:#x}", self.name);
    }
}

fn aligned(offset: u64, size: u8) -> bool {
    size == 4 && offset.is_multiple_of(4) && offset < SIZE
}

impl Device for IbexUart {
    fn snapshot_save(&self) -> Result<Vec<u8>, breadboard_core::snapshot::SnapshotError> {
        let mut w = breadboard_core::snapshot::SnapWriter::new();
        for v in [
            self.intr_state,
            self.intr_enable,
            self.ctrl,
            self.fifo_ctrl,
            self.ovrd,
            self.timeout_ctrl,
        ] {
            w.u32(v);
        }
        w.bytes(&self.rx.iter().copied().collect::<Vec<u8>>());
        w.bytes(&self.tx.iter().copied().collect::<Vec<u8>>());
        Ok(w.finish())
    }

    fn snapshot_load(
        &mut self,
        data: &[u8],
    ) -> Result<(), breadboard_core::snapshot::SnapshotError> {
        let mut r = breadboard_core::snapshot::SnapReader::new(data);
        let regs = [r.u32()?, r.u32()?, r.u32()?, r.u32()?, r.u32()?, r.u32()?];
        let rx: &[u8] = r.bytes()?;
        let tx: &[u8] = r.bytes()?;
        r.end()?;
        // Every register within the bits a write can set; the FIFOs within their depth.
        let names = [
            "INTR_STATE",
            "INTR_ENABLE",
            "CTRL",
            "FIFO_CTRL",
            "OVRD",
            "TIMEOUT_CTRL",
        ];
        let masks = [
            INTR_MASK,
            INTR_MASK,
            CTRL_MASK,
            FIFO_CTRL_LEVELS,
            0x3,
            TIMEOUT_MASK,
        ];
        for ((name, mask), v) in names.iter().zip(masks).zip(regs) {
            if v & !mask != 0 {
                return Err(breadboard_core::snapshot::SnapshotError::Corrupt(format!(
                    "'{}' {name} {v:#x} has bits the register does not have",
                    self.name
                )));
            }
        }
        for (fifo, q) in [("RX", rx), ("TX", tx)] {
            if q.len() > FIFO_DEPTH {
                return Err(breadboard_core::snapshot::SnapshotError::Corrupt(format!(
                    "'{}' {fifo} FIFO holds {} bytes, more than its {FIFO_DEPTH}",
                    self.name,
                    q.len()
                )));
            }
        }
        let rx = rx.iter().copied().collect();
        let tx = tx.iter().copied().collect();
        [
            self.intr_state,
            self.intr_enable,
            self.ctrl,
            self.fifo_ctrl,
            self.ovrd,
            self.timeout_ctrl,
        ] = regs;
        self.rx = rx;
        self.tx = tx;
        Ok(())
    }

    fn regions(&self) -> Vec<RegionSpec> {
        vec![RegionSpec::Mmio {
            name: Cow::Owned(self.name.clone()),
            size: SIZE,
        }]
    }

    fn read(&mut self, region: usize, offset: u64, size: u8) -> u64 {
        if region != 0 {
            crate::bad_region(&self.name, region);
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

    fn write(&mut self, region: usize, offset: u64, size: u8, value: u64) {
        if region != 0 {
            crate::bad_region(&self.name, region);
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

    fn irq_outputs(&self) -> Vec<IrqLine> {
        self.irqs.clone()
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
        self.timers.cancel(TIMER_RX_TIMEOUT);
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

    fn write_fdt(&self, fdt: &mut FdtWriter, res: &NodeResources) -> Result<(), FdtError> {
        let node = fdt.begin_node(&res.node_name("serial"))?;
        res.write_common(fdt, &["lowrisc,opentitan-uart"])?;
        fdt.property_u32(
            "clock-frequency",
            u32::try_from(self.clock_hz).unwrap_or(u32::MAX),
        )?;
        fdt.end_node(node)
    }
}

fn make(props: &Props, ctx: &DeviceCtx<'_>) -> Result<Box<dyn Device>, DeviceError> {
    let clock_hz = props.u64("clock-frequency");
    if clock_hz == 0 {
        return Err(DeviceError::Realize(format!(
            "Property '{TYPE_NAME}.clock-frequency' must not be 0"
        )));
    }
    let chardev = ctx.chardev(props, "chardev")?;
    let mut d = IbexUart {
        name: ctx.name.to_string(),
        chardev,
        timers: ctx.timers.clone(),
        clock_hz,
        intr_state: 0,
        intr_enable: 0,
        ctrl: 0,
        fifo_ctrl: 0,
        ovrd: 0,
        timeout_ctrl: 0,
        rx: VecDeque::with_capacity(FIFO_DEPTH),
        tx: VecDeque::with_capacity(FIFO_DEPTH),
        irqs: (0..NUM_IRQS).map(|_| IrqLine::new()).collect(),
    };
    d.reset();
    Ok(Box::new(d))
}

/// The `ibex-uart` type: one 64-byte region, eight IRQ outputs, an optional chardev.
pub fn device_type() -> DeviceType {
    DeviceType {
        name: Cow::Borrowed(TYPE_NAME),
        description: Cow::Borrowed("OpenTitan UART (as on lowRISC Ibex SoCs)"),
        user_creatable: true,
        sysbus: true,
        bus: None,
        compatible: &["lowrisc,opentitan-uart"],
        props: vec![
            PropSpec::optional("chardev", PropKind::Chardev, "character device it talks to"),
            PropSpec::new(
                "clock-frequency",
                PropKind::Int,
                "24000000",
                "peripheral clock in Hz (baud = NCO * clock / 2^20)",
            )
            .with_max(u64::from(u32::MAX)),
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
    use crate::testutil::{TestEnv, assert_dts, dtc_decompile, fdt_blob, resources, target};
    use breadboard_core::chardev::MemoryBackend;
    use breadboard_core::irq::RecordingSink;

    struct Fixture {
        env: TestEnv,
        dev: Box<dyn Device>,
        out: MemoryBackend,
        irq: Rc<RecordingSink>,
    }

    fn uart() -> Fixture {
        let env = TestEnv::with_harts(1);
        let (_c, out) = env.add_memory_chardev("serial0");
        let mut dev = env.make(&device_type(), &[("chardev", "serial0")]);
        dev.reset();
        let irq = RecordingSink::new(NUM_IRQS);
        for (i, l) in dev.irq_outputs().iter().enumerate() {
            l.connect(irq.clone(), i as u32);
        }
        Fixture { env, dev, out, irq }
    }

    impl Fixture {
        fn wr(&mut self, off: u64, v: u32) {
            self.dev.write(0, off, 4, u64::from(v));
        }
        fn rd(&mut self, off: u64) -> u32 {
            self.dev.read(0, off, 4) as u32
        }
    }

    #[test]
    fn test_ibex_uart_reset_values_match_opentitan() {
        let mut f = uart();
        assert_eq!(f.rd(STATUS), 0x3c, "TXEMPTY, TXIDLE, RXIDLE, RXEMPTY");
        assert_eq!(f.rd(CTRL), 0);
        assert_eq!(f.rd(INTR_STATE), 0);
        assert_eq!(f.rd(FIFO_STATUS), 0);
        assert_eq!(f.dev.irq_outputs().len(), 8);
        assert_eq!(f.dev.can_receive(), 0, "RX disabled takes nothing");
    }

    #[test]
    fn test_ibex_uart_tx_goes_to_chardev_only_when_enabled() {
        let mut f = uart();
        f.wr(WDATA, u32::from(b'h'));
        assert!(
            f.out.0.borrow().is_empty(),
            "TX off: the byte waits in the FIFO"
        );
        assert_eq!(f.rd(FIFO_STATUS) & 0xff, 1);
        assert_eq!(f.rd(STATUS) & STATUS_TXEMPTY, 0);
        f.wr(CTRL, CTRL_TX);
        f.wr(WDATA, u32::from(b'i'));
        assert_eq!(f.out.0.borrow().as_slice(), b"hi");
        assert_eq!(
            f.rd(INTR_STATE) & (INTR_TX_EMPTY | INTR_TX_WATERMARK),
            INTR_TX_EMPTY | INTR_TX_WATERMARK
        );
    }

    #[test]
    fn test_ibex_uart_rx_watermark_raises_output_1_and_is_w1c() {
        let mut f = uart();
        f.wr(CTRL, CTRL_TX | CTRL_RX);
        f.wr(INTR_ENABLE, INTR_RX_WATERMARK);
        assert_eq!(f.dev.can_receive(), FIFO_DEPTH);
        f.dev.receive(b"ab");
        assert!(f.irq.level(1), "rx_watermark is sysbus-irq[1]");
        assert!(!f.irq.level(0));
        assert_eq!(f.rd(FIFO_STATUS) >> 16, 2);
        // The firmware's order: acknowledge, then drain.
        f.wr(INTR_STATE, INTR_RX_WATERMARK);
        assert!(!f.irq.level(1));
        assert_eq!(f.rd(RDATA), u32::from(b'a'));
        assert_eq!(f.rd(RDATA), u32::from(b'b'));
        assert_ne!(f.rd(STATUS) & STATUS_RXEMPTY, 0);
        assert_eq!(f.rd(RDATA), 0, "empty FIFO reads 0");
    }

    #[test]
    fn test_ibex_uart_rxilvl_sets_the_watermark_level() {
        let mut f = uart();
        f.wr(CTRL, CTRL_RX);
        f.wr(FIFO_CTRL, 2 << 2); // 4 characters
        assert_eq!(f.rd(FIFO_CTRL), 2 << 2);
        f.dev.receive(b"abc");
        assert_eq!(f.rd(INTR_STATE) & INTR_RX_WATERMARK, 0);
        f.dev.receive(b"d");
        assert_ne!(f.rd(INTR_STATE) & INTR_RX_WATERMARK, 0);
        f.wr(FIFO_CTRL, FIFO_CTRL_RXRST | (2 << 2));
        assert_eq!(f.rd(FIFO_STATUS) >> 16, 0, "RXRST empties the FIFO");
    }

    #[test]
    fn test_ibex_uart_fifo_full_and_overflow_via_loopback() {
        let mut f = uart();
        f.wr(CTRL, CTRL_RX);
        f.dev.receive(&[b'x'; FIFO_DEPTH]);
        assert_eq!(f.dev.can_receive(), 0);
        assert_ne!(f.rd(STATUS) & STATUS_RXFULL, 0);
        f.wr(CTRL, CTRL_RX | CTRL_TX | CTRL_SLPBK);
        f.wr(WDATA, u32::from(b'y'));
        assert_ne!(f.rd(INTR_STATE) & INTR_RX_OVERFLOW, 0);
        assert!(
            f.out.0.borrow().is_empty(),
            "loopback keeps TX off the line"
        );
    }

    #[test]
    fn test_ibex_uart_intr_test_sets_state_and_enable_gates_outputs() {
        let mut f = uart();
        f.wr(INTR_TEST, 0xff);
        assert_eq!(f.rd(INTR_STATE), 0xff);
        assert!((0..8).all(|i| !f.irq.level(i)), "nothing enabled");
        f.wr(INTR_ENABLE, 0x1ff);
        assert_eq!(f.rd(INTR_ENABLE), 0xff);
        assert!((0..8).all(|i| f.irq.level(i)));
        f.wr(INTR_STATE, 0xff);
        assert!((0..8).all(|i| !f.irq.level(i)));
    }

    #[test]
    fn test_ibex_uart_rx_timeout_fires_after_programmed_bit_times() {
        let mut f = uart();
        // NCO for 115200 baud at 24 MHz; 10 bit times ≈ 86.8 µs.
        f.wr(CTRL, (0x13a9 << 16) | CTRL_RX);
        f.wr(TIMEOUT_CTRL, TIMEOUT_EN | 10);
        f.dev.receive(b"z");
        f.env.advance(f.dev.as_mut(), 80_000);
        assert_eq!(f.rd(INTR_STATE) & INTR_RX_TIMEOUT, 0);
        f.env.advance(f.dev.as_mut(), 10_000);
        assert_ne!(f.rd(INTR_STATE) & INTR_RX_TIMEOUT, 0);
    }

    #[test]
    fn test_ibex_uart_bad_accesses_are_harmless() {
        let mut f = uart();
        assert_eq!(f.dev.read(0, STATUS, 1), 0);
        assert_eq!(f.dev.read(0, STATUS + 1, 4), 0);
        assert_eq!(f.dev.read(0, 0x34, 4), 0);
        f.dev.write(0, WDATA, 2, 0x41);
        assert_eq!(f.rd(FIFO_STATUS), 0);
        f.wr(STATUS, 0);
        assert_eq!(f.rd(STATUS), 0x3c);
    }

    #[test]
    fn test_ibex_uart_unknown_chardev_is_refused() {
        let env = TestEnv::with_harts(1);
        let e = env
            .try_make(&device_type(), &[("chardev", "nope")])
            .err()
            .expect("refused");
        assert_eq!(e.to_string(), "Chardev 'nope' not found");
    }

    #[test]
    fn test_ibex_uart_dt_node() {
        let f = uart();
        let mut res = resources(f.dev.as_ref(), 0x4000_0000);
        res.irqs = (0..8).map(|i| target(3, &[i + 1])).collect();
        let blob = fdt_blob(f.dev.as_ref(), &res);
        if let Some(dts) = dtc_decompile(&blob) {
            assert_dts(
                &dts,
                &[
                    "serial@40000000 {",
                    "compatible = \"lowrisc,opentitan-uart\";",
                    "reg = <0x00 0x40000000 0x00 0x40>;",
                    "interrupt-parent = <0x03>;",
                    "interrupts = <0x01 0x02 0x03 0x04 0x05 0x06 0x07 0x08>;",
                    "clock-frequency = <0x16e3600>;",
                ],
                &[],
            );
        }
    }

    fn ibex_blob(regs: [u32; 6], rx: &[u8], tx: &[u8]) -> Vec<u8> {
        let mut w = breadboard_core::snapshot::SnapWriter::new();
        for r in regs {
            w.u32(r);
        }
        w.bytes(rx);
        w.bytes(tx);
        w.finish()
    }

    #[test]
    fn test_snapshot_load_refuses_ibex_uart_fifo_past_depth_and_bad_registers() {
        let mut f = uart();
        f.wr(INTR_ENABLE, INTR_TX_EMPTY);
        let deep = [0u8; FIFO_DEPTH + 1];
        let cases = [
            ibex_blob([0; 6], &deep, &[]),
            ibex_blob([0; 6], &[], &deep),
            ibex_blob([0x100, 0, 0, 0, 0, 0], &[], &[]),
            ibex_blob([0, 0, !CTRL_MASK, 0, 0, 0], &[], &[]),
            ibex_blob([0, 0, 0, FIFO_CTRL_RXRST, 0, 0], &[], &[]),
            ibex_blob([0, 0, 0, 0, 4, 0], &[], &[]),
            ibex_blob([0, 0, 0, 0, 0, 1 << 30], &[], &[]),
        ];
        for bad in cases {
            let r = f.dev.snapshot_load(&bad);
            assert!(
                matches!(r, Err(breadboard_core::snapshot::SnapshotError::Corrupt(_))),
                "{r:?}"
            );
            assert_eq!(
                f.rd(INTR_ENABLE),
                INTR_TX_EMPTY,
                "a refused state changes nothing"
            );
        }
        // Full FIFOs are fine: FIFO_STATUS reports 32 each.
        f.dev
            .snapshot_load(&ibex_blob([0; 6], &[1; FIFO_DEPTH], &[2; FIFO_DEPTH]))
            .unwrap();
        assert_eq!(f.rd(FIFO_STATUS), 32 | (32 << 16));
    }
}
