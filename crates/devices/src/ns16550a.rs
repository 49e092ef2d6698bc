//! `ns16550a`: National Semiconductor PC16550D UART with FIFOs, following its datasheet
//! (PC16550D, June 1995: register summary table 2, interrupt identification table 4, FIFO
//! interrupt mode operation, loopback) as Linux's 8250 driver expects it.
//!
//! Model notes:
//! - Transmission is instantaneous: a THR write goes straight to the chardev, so LSR THRE and
//!   TEMT are always set and the THRE interrupt re-arms as soon as THR is written.
//! - The 16-byte RX FIFO raises "received data available" at the FCR trigger level and the
//!   character timeout interrupt after four character times without activity, measured in
//!   virtual time from the divisor latch, LCR frame format and `clock-frequency`.
//! - Without a modem, the modem inputs read as CTS, DSR and DCD asserted (like QEMU); in
//!   loopback (MCR bit 4) they follow MCR and input from the chardev is held off.
//! - The IRQ output is the chip's INTR pin; OUT2 does not gate it (that is PC board glue).
//!
//! Registers are `1 << reg-shift` bytes apart. Access sizes 1, 2, 4 and 8 are accepted at a
//! register's address; writes use the low byte, reads return the register zero-extended.
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
pub const TYPE_NAME: &str = "ns16550a";

/// MMIO aperture, as in QEMU virt's DT.
const REGION_SIZE: u64 = 0x100;

// Register indices (byte offset >> reg-shift).
/// RBR (read) / THR (write); DLL when LCR.DLAB.
const REG_RBR_THR: u64 = 0;
/// IER; DLM when LCR.DLAB.
const REG_IER: u64 = 1;
/// IIR (read) / FCR (write).
const REG_IIR_FCR: u64 = 2;
const REG_LCR: u64 = 3;
const REG_MCR: u64 = 4;
const REG_LSR: u64 = 5;
const REG_MSR: u64 = 6;
const REG_SCR: u64 = 7;

// IER bits.
const IER_ERBFI: u8 = 0x01;
const IER_ETBEI: u8 = 0x02;
const IER_ELSI: u8 = 0x04;
const IER_EDSSI: u8 = 0x08;
const IER_MASK: u8 = 0x0f;

// IIR interrupt ids, highest priority first (datasheet table 4).
const IIR_RLS: u8 = 0x06;
const IIR_RDA: u8 = 0x04;
const IIR_CTI: u8 = 0x0c;
const IIR_THRE: u8 = 0x02;
const IIR_MODEM: u8 = 0x00;
const IIR_NONE: u8 = 0x01;
const IIR_FIFOS_ENABLED: u8 = 0xc0;

// FCR bits.
const FCR_FIFO_ENABLE: u8 = 0x01;
const FCR_RX_RESET: u8 = 0x02;
const FCR_DMA_MODE: u8 = 0x08;
const FCR_TRIGGER: u8 = 0xc0;

// LCR bits.
const LCR_WORD_LEN: u8 = 0x03;
const LCR_STOP_BITS: u8 = 0x04;
const LCR_PARITY: u8 = 0x08;
const LCR_BREAK: u8 = 0x40;
const LCR_DLAB: u8 = 0x80;

// MCR bits.
const MCR_DTR: u8 = 0x01;
const MCR_RTS: u8 = 0x02;
const MCR_OUT1: u8 = 0x04;
const MCR_OUT2: u8 = 0x08;
const MCR_LOOP: u8 = 0x10;
const MCR_MASK: u8 = 0x1f;

// LSR bits.
const LSR_DR: u8 = 0x01;
const LSR_OE: u8 = 0x02;
const LSR_ERRORS: u8 = 0x1e;
const LSR_THRE: u8 = 0x20;
const LSR_TEMT: u8 = 0x40;

// MSR bits: deltas low, line states high.
const MSR_DCTS: u8 = 0x01;
const MSR_DDSR: u8 = 0x02;
const MSR_TERI: u8 = 0x04;
const MSR_DDCD: u8 = 0x08;
const MSR_DELTAS: u8 = 0x0f;
const MSR_CTS: u8 = 0x10;
const MSR_DSR: u8 = 0x20;
const MSR_RI: u8 = 0x40;
const MSR_DCD: u8 = 0x80;

/// RX FIFO depth.
const FIFO_DEPTH: usize = 16;

/// Timer token of the RX character timeout.
const TIMER_RX_TIMEOUT: u64 = 0;

/// The character timeout fires after this many character times without RX activity.
const TIMEOUT_CHARS: u64 = 4;

/// One 16550A UART.
pub struct Ns16550a {
    name: String,
    chardev: Option<Rc<Chardev>>,
    irq: IrqLine,
    timers: TimerHandle,
    clock_hz: u64,
    reg_shift: u32,
    reg_io_width: u32,

    ier: u8,
    fcr: u8,
    lcr: u8,
    mcr: u8,
    /// OE/PE/FE/BI; DR, THRE and TEMT are derived.
    lsr_errors: u8,
    msr: u8,
    scr: u8,
    divisor: u16,
    /// The byte RBR shows: the last one taken from the FIFO.
    rbr: u8,
    rx: VecDeque<u8>,
    thr_ipending: bool,
    timeout_ipending: bool,
}

impl Ns16550a {
    fn new(
        name: &str,
        chardev: Option<Rc<Chardev>>,
        timers: TimerHandle,
        clock_hz: u64,
        reg_shift: u32,
        reg_io_width: u32,
    ) -> Ns16550a {
        let mut s = Ns16550a {
            name: name.to_string(),
            chardev,
            irq: IrqLine::new(),
            timers,
            clock_hz,
            reg_shift,
            reg_io_width,
            ier: 0,
            fcr: 0,
            lcr: 0,
            mcr: 0,
            lsr_errors: 0,
            msr: 0,
            scr: 0,
            divisor: 0,
            rbr: 0,
            rx: VecDeque::with_capacity(FIFO_DEPTH),
            thr_ipending: false,
            timeout_ipending: false,
        };
        s.reset();
        s
    }

    fn fifo_enabled(&self) -> bool {
        self.fcr & FCR_FIFO_ENABLE != 0
    }

    /// Bytes the receiver holds: the FIFO, or the one-byte holding register in 16450 mode.
    fn rx_capacity(&self) -> usize {
        if self.fifo_enabled() { FIFO_DEPTH } else { 1 }
    }

    /// RX trigger level from FCR bits 7:6 (1 in 16450 mode, where FCR reads as 0).
    fn rx_trigger(&self) -> usize {
        match (self.fcr & FCR_TRIGGER) >> 6 {
            0 => 1,
            1 => 4,
            2 => 8,
            _ => 14,
        }
    }

    fn lsr(&self) -> u8 {
        let dr = if self.rx.is_empty() { 0 } else { LSR_DR };
        dr | self.lsr_errors | LSR_THRE | LSR_TEMT
    }

    /// The modem input lines (MSR bits 7:4): MCR outputs in loopback, else "all present".
    fn modem_inputs(&self) -> u8 {
        if self.mcr & MCR_LOOP == 0 {
            return MSR_CTS | MSR_DSR | MSR_DCD;
        }
        let mut v = 0;
        if self.mcr & MCR_RTS != 0 {
            v |= MSR_CTS;
        }
        if self.mcr & MCR_DTR != 0 {
            v |= MSR_DSR;
        }
        if self.mcr & MCR_OUT1 != 0 {
            v |= MSR_RI;
        }
        if self.mcr & MCR_OUT2 != 0 {
            v |= MSR_DCD;
        }
        v
    }

    /// Re-reads the modem inputs and latches the delta bits of what changed.
    fn update_modem_status(&mut self) {
        let old = self.msr & !MSR_DELTAS;
        let new = self.modem_inputs();
        let changed = old ^ new;
        let mut deltas = self.msr & MSR_DELTAS;
        if changed & MSR_CTS != 0 {
            deltas |= MSR_DCTS;
        }
        if changed & MSR_DSR != 0 {
            deltas |= MSR_DDSR;
        }
        // TERI is set on the trailing edge of RI only.
        if old & MSR_RI != 0 && new & MSR_RI == 0 {
            deltas |= MSR_TERI;
        }
        if changed & MSR_DCD != 0 {
            deltas |= MSR_DDCD;
        }
        self.msr = new | deltas;
    }

    /// The highest-priority pending interrupt, as IIR bits 3:0.
    fn interrupt_id(&self) -> u8 {
        if self.ier & IER_ELSI != 0 && self.lsr_errors & LSR_ERRORS != 0 {
            IIR_RLS
        } else if self.ier & IER_ERBFI != 0 && self.rx.len() >= self.rx_trigger() {
            IIR_RDA
        } else if self.ier & IER_ERBFI != 0 && self.timeout_ipending && !self.rx.is_empty() {
            IIR_CTI
        } else if self.ier & IER_ETBEI != 0 && self.thr_ipending {
            IIR_THRE
        } else if self.ier & IER_EDSSI != 0 && self.msr & MSR_DELTAS != 0 {
            IIR_MODEM
        } else {
            IIR_NONE
        }
    }

    fn update_irq(&mut self) {
        let level = self.interrupt_id() != IIR_NONE;
        self.irq.set(level);
    }

    /// Nanoseconds one character takes on the line at the programmed baud rate and format.
    fn char_time_ns(&self) -> u64 {
        let data_bits = 5 + u64::from(self.lcr & LCR_WORD_LEN);
        let parity = u64::from(self.lcr & LCR_PARITY != 0);
        let stop = if self.lcr & LCR_STOP_BITS != 0 { 2 } else { 1 };
        let frame_bits = 1 + data_bits + parity + stop;
        // A divisor of 0 is not a rate the chip can run at; treat it as the fastest one.
        let divisor = u128::from(self.divisor.max(1));
        let ns = 1_000_000_000u128 * 16 * divisor * u128::from(frame_bits)
            / u128::from(self.clock_hz.max(1));
        u64::try_from(ns).unwrap_or(u64::MAX).max(1)
    }

    /// RX activity (a byte in or out): the timeout indication clears and its timer restarts
    /// if the FIFO still holds data.
    fn restart_rx_timeout(&mut self) {
        self.timeout_ipending = false;
        if self.fifo_enabled() && !self.rx.is_empty() {
            let delay = self.char_time_ns().saturating_mul(TIMEOUT_CHARS);
            self.timers.schedule_in(TIMER_RX_TIMEOUT, delay);
        } else {
            self.timers.cancel(TIMER_RX_TIMEOUT);
        }
    }

    fn clear_rx(&mut self) {
        self.rx.clear();
        self.restart_rx_timeout();
    }

    /// A byte arrives at the receiver (from the chardev or from THR in loopback).
    fn push_rx(&mut self, byte: u8) {
        if self.rx.len() < self.rx_capacity() {
            self.rx.push_back(byte);
        } else {
            self.lsr_errors |= LSR_OE;
            // 16450 mode: the new byte overwrites the holding register. FIFO mode: the byte
            // in the shift register is lost and the FIFO keeps its contents.
            if !self.fifo_enabled() {
                self.rx.clear();
                self.rx.push_back(byte);
            }
        }
    }

    fn transmit(&mut self, byte: u8) {
        if self.mcr & MCR_LOOP != 0 {
            self.push_rx(byte);
            self.restart_rx_timeout();
        } else if let Some(c) = &self.chardev {
            c.write(&[byte]);
        }
        // The byte left THR at once: THR is empty again, which is a new THRE event.
        self.thr_ipending = true;
    }

    fn write_fcr(&mut self, v: u8) {
        let was_enabled = self.fifo_enabled();
        if v & FCR_FIFO_ENABLE == 0 {
            // The other FCR bits only take effect with the FIFO enable bit set.
            self.fcr = 0;
        } else {
            self.fcr = v & (FCR_FIFO_ENABLE | FCR_DMA_MODE | FCR_TRIGGER);
        }
        // Changing the FIFO enable clears both FIFOs; TX has nothing queued.
        if was_enabled != self.fifo_enabled() || v & FCR_RX_RESET != 0 {
            self.clear_rx();
        }
    }

    fn write_ier(&mut self, v: u8) {
        let old = self.ier;
        self.ier = v & IER_MASK;
        if v & !IER_MASK != 0 {
            tracing::warn!(target: "unimp", "{}: IER bits {:#x} (not a 16550A feature)", self.name, v & !IER_MASK);
        }
        if self.ier & IER_ETBEI != 0 && old & IER_ETBEI == 0 {
            // Enabling the THRE interrupt while THR is empty raises it at once.
            self.thr_ipending = true;
        } else if self.ier & IER_ETBEI == 0 {
            self.thr_ipending = false;
        }
    }

    /// Register index for an access, or `None` (logged) if nothing is there.
    fn decode(&self, offset: u64, size: u8, what: &str) -> Option<u64> {
        let stride_mask = (1u64 << self.reg_shift) - 1;
        let index = offset >> self.reg_shift;
        if !crate::is_access_size(size) || offset & stride_mask != 0 || index > REG_SCR {
            tracing::warn!(
                target: "guest_error",
                "{}: bad {what} of {size} bytes at {offset:#x}",
                self.name
            );
            return None;
        }
        Some(index)
    }

    fn read_reg(&mut self, index: u64) -> u8 {
        let dlab = self.lcr & LCR_DLAB != 0;
        match index {
            REG_RBR_THR if dlab => self.divisor.to_le_bytes()[0],
            REG_RBR_THR => {
                if let Some(b) = self.rx.pop_front() {
                    self.rbr = b;
                }
                self.restart_rx_timeout();
                self.update_irq();
                self.rbr
            }
            REG_IER if dlab => self.divisor.to_le_bytes()[1],
            REG_IER => self.ier,
            REG_IIR_FCR => {
                let id = self.interrupt_id();
                // Reading IIR while it reports THRE is what acknowledges THRE.
                if id == IIR_THRE {
                    self.thr_ipending = false;
                    self.update_irq();
                }
                let fifo = if self.fifo_enabled() {
                    IIR_FIFOS_ENABLED
                } else {
                    0
                };
                id | fifo
            }
            REG_LCR => self.lcr,
            REG_MCR => self.mcr,
            REG_LSR => {
                let v = self.lsr();
                self.lsr_errors = 0;
                self.update_irq();
                v
            }
            REG_MSR => {
                let v = self.msr;
                self.msr &= !MSR_DELTAS;
                self.update_irq();
                v
            }
            _ => self.scr,
        }
    }

    fn write_reg(&mut self, index: u64, v: u8) {
        let dlab = self.lcr & LCR_DLAB != 0;
        match index {
            REG_RBR_THR if dlab => self.divisor = (self.divisor & 0xff00) | u16::from(v),
            REG_RBR_THR => self.transmit(v),
            REG_IER if dlab => self.divisor = (self.divisor & 0x00ff) | (u16::from(v) << 8),
            REG_IER => self.write_ier(v),
            REG_IIR_FCR => self.write_fcr(v),
            REG_LCR => {
                if v & LCR_BREAK != 0 && self.lcr & LCR_BREAK == 0 {
                    tracing::warn!(target: "unimp", "{}: sending a break", self.name);
                }
                self.lcr = v;
            }
            REG_MCR => {
                self.mcr = v & MCR_MASK;
                self.update_modem_status();
            }
            REG_LSR | REG_MSR => {
                tracing::warn!(
                    target: "guest_error",
                    "{}: write of {v:#x} to read-only {}",
                    self.name,
                    if index == REG_LSR { "LSR" } else { "MSR" }
                );
            }
            _ => self.scr = v,
        }
        self.update_irq();
    }
}

impl Device for Ns16550a {
    fn snapshot_save(&self) -> Result<Vec<u8>, breadboard_core::snapshot::SnapshotError> {
        let mut w = breadboard_core::snapshot::SnapWriter::new();
        for b in [
            self.ier,
            self.fcr,
            self.lcr,
            self.mcr,
            self.lsr_errors,
            self.msr,
            self.scr,
            self.rbr,
        ] {
            w.u8(b);
        }
        w.u16(self.divisor);
        w.bytes(&self.rx.iter().copied().collect::<Vec<u8>>());
        w.bool(self.thr_ipending);
        w.bool(self.timeout_ipending);
        Ok(w.finish())
    }

    fn snapshot_load(
        &mut self,
        data: &[u8],
    ) -> Result<(), breadboard_core::snapshot::SnapshotError> {
        use breadboard_core::snapshot::SnapshotError;
        // Parsed and checked whole before anything changes: a refused state leaves the UART
        // as it was.
        let mut r = breadboard_core::snapshot::SnapReader::new(data);
        let [ier, fcr, lcr, mcr, lsr_errors, msr, scr, rbr] = [
            r.u8()?,
            r.u8()?,
            r.u8()?,
            r.u8()?,
            r.u8()?,
            r.u8()?,
            r.u8()?,
            r.u8()?,
        ];
        let divisor = r.u16()?;
        let rx = r.bytes()?;
        let thr_ipending = r.bool()?;
        let timeout_ipending = r.bool()?;
        r.end()?;
        let bad = |what: &str, v: u8| {
            Err(SnapshotError::Corrupt(format!(
                "'{}' {what} {v:#x} is not a value the register can hold",
                self.name
            )))
        };
        if ier & !IER_MASK != 0 {
            return bad("IER", ier);
        }
        // FCR keeps its other bits only with the FIFO enabled.
        if fcr & !(FCR_FIFO_ENABLE | FCR_DMA_MODE | FCR_TRIGGER) != 0
            || (fcr != 0 && fcr & FCR_FIFO_ENABLE == 0)
        {
            return bad("FCR", fcr);
        }
        if mcr & !MCR_MASK != 0 {
            return bad("MCR", mcr);
        }
        if lsr_errors & !LSR_ERRORS != 0 {
            return bad("LSR error bits", lsr_errors);
        }
        let capacity = if fcr & FCR_FIFO_ENABLE != 0 {
            FIFO_DEPTH
        } else {
            1
        };
        if rx.len() > capacity {
            return Err(SnapshotError::Corrupt(format!(
                "'{}' receive FIFO holds {} bytes, more than its {capacity}",
                self.name,
                rx.len()
            )));
        }
        self.ier = ier;
        self.fcr = fcr;
        self.lcr = lcr;
        self.mcr = mcr;
        self.lsr_errors = lsr_errors;
        self.msr = msr;
        self.scr = scr;
        self.rbr = rbr;
        self.divisor = divisor;
        self.rx = rx.iter().copied().collect();
        self.thr_ipending = thr_ipending;
        self.timeout_ipending = timeout_ipending;
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
        match self.decode(offset, size, "read") {
            Some(index) => u64::from(self.read_reg(index)),
            None => 0,
        }
    }

    fn write(&mut self, region: usize, offset: u64, size: u8, value: u64) {
        if region != 0 {
            crate::bad_region(&self.name, region);
            return;
        }
        if let Some(index) = self.decode(offset, size, "write") {
            self.write_reg(index, value.to_le_bytes()[0]);
        }
    }

    fn irq_outputs(&self) -> Vec<IrqLine> {
        vec![self.irq.clone()]
    }

    fn reset(&mut self) {
        self.ier = 0;
        self.fcr = 0;
        self.lcr = 0;
        self.mcr = 0;
        self.lsr_errors = 0;
        self.scr = 0;
        self.divisor = 0;
        self.rbr = 0;
        self.rx.clear();
        self.thr_ipending = false;
        self.timeout_ipending = false;
        self.timers.cancel(TIMER_RX_TIMEOUT);
        self.msr = self.modem_inputs();
        self.update_irq();
    }

    fn timer(&mut self, token: u64) {
        if token == TIMER_RX_TIMEOUT && self.fifo_enabled() && !self.rx.is_empty() {
            self.timeout_ipending = true;
            self.update_irq();
        }
    }

    fn can_receive(&self) -> usize {
        // In loopback the serial input is disconnected from the receiver.
        if self.mcr & MCR_LOOP != 0 {
            return 0;
        }
        self.rx_capacity().saturating_sub(self.rx.len())
    }

    fn receive(&mut self, data: &[u8]) {
        if self.mcr & MCR_LOOP != 0 {
            return;
        }
        for &b in data {
            self.push_rx(b);
        }
        self.restart_rx_timeout();
        self.update_irq();
    }

    fn write_fdt(&self, fdt: &mut FdtWriter, res: &NodeResources) -> Result<(), FdtError> {
        let node = fdt.begin_node(&res.node_name("serial"))?;
        res.write_common(fdt, &["ns16550a"])?;
        // Validated at realize to fit in a cell.
        fdt.property_u32(
            "clock-frequency",
            u32::try_from(self.clock_hz).unwrap_or(u32::MAX),
        )?;
        if self.reg_shift != 0 {
            fdt.property_u32("reg-shift", self.reg_shift)?;
        }
        if self.reg_io_width != 1 {
            fdt.property_u32("reg-io-width", self.reg_io_width)?;
        }
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
    let reg_io_width = props.u64("reg-io-width");
    if !matches!(reg_io_width, 1 | 2 | 4) {
        return Err(DeviceError::Realize(format!(
            "Property '{TYPE_NAME}.reg-io-width' must be 1, 2 or 4, not {reg_io_width}"
        )));
    }
    // Both bounded by the schema (reg-shift ≤ 2).
    let reg_shift = u32::try_from(props.u64("reg-shift")).unwrap_or(0).min(2);
    let reg_io_width = u32::try_from(reg_io_width).unwrap_or(1);
    let chardev = ctx.chardev(props, "chardev")?;
    Ok(Box::new(Ns16550a::new(
        ctx.name,
        chardev,
        ctx.timers.clone(),
        clock_hz,
        reg_shift,
        reg_io_width,
    )))
}

/// The `ns16550a` type. One MMIO region (0x100 bytes), IRQ output 0 = INTR.
pub fn device_type() -> DeviceType {
    DeviceType {
        name: Cow::Borrowed(TYPE_NAME),
        description: Cow::Borrowed("16550A UART with 16-byte FIFOs"),
        user_creatable: true,
        sysbus: true,
        bus: None,
        compatible: &["ns16550a"],
        props: vec![
            PropSpec::optional("chardev", PropKind::Chardev, "character device for TX/RX"),
            PropSpec::new(
                "clock-frequency",
                PropKind::Int,
                "3686400",
                "input clock in Hz (baud = clock / 16 / divisor)",
            )
            .with_max(u32::MAX as u64),
            PropSpec::new(
                "reg-shift",
                PropKind::Int,
                "0",
                "registers are 1 << reg-shift bytes apart",
            )
            .with_max(2),
            PropSpec::new(
                "reg-io-width",
                PropKind::Int,
                "1",
                "access width the driver uses: 1, 2 or 4",
            )
            .with_max(4),
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
    use breadboard_core::irq::RecordingSink;

    struct Uart {
        env: TestEnv,
        dev: Box<dyn Device>,
        irq: Rc<RecordingSink>,
        out: breadboard_core::chardev::MemoryBackend,
    }

    fn uart_with(props: &[(&str, &str)]) -> Uart {
        let env = TestEnv::new();
        let (_c, out) = env.add_memory_chardev("serial0");
        let mut all = vec![("chardev", "serial0")];
        all.extend_from_slice(props);
        let mut dev = env.make(&device_type(), &all);
        dev.reset();
        let irq = RecordingSink::new(1);
        dev.irq_outputs()[0].connect(irq.clone(), 0);
        Uart { env, dev, irq, out }
    }

    fn uart() -> Uart {
        uart_with(&[])
    }

    impl Uart {
        fn rd(&mut self, reg: u64) -> u64 {
            self.dev.read(0, reg, 1)
        }
        fn wr(&mut self, reg: u64, v: u64) {
            self.dev.write(0, reg, 1, v);
        }
    }

    #[test]
    fn test_ns16550a_reset_values() {
        let mut u = uart();
        assert_eq!(u.rd(REG_IER), 0);
        assert_eq!(u.rd(REG_IIR_FCR), u64::from(IIR_NONE));
        assert_eq!(u.rd(REG_LCR), 0);
        assert_eq!(u.rd(REG_MCR), 0);
        assert_eq!(u.rd(REG_LSR), 0x60);
        assert_eq!(u.rd(REG_MSR), 0xb0);
        assert_eq!(u.rd(REG_SCR), 0);
        assert!(!u.irq.level(0));
    }

    #[test]
    fn test_ns16550a_thr_write_goes_to_chardev() {
        let mut u = uart();
        for b in b"hi\n" {
            u.wr(REG_RBR_THR, u64::from(*b) | 0xff00);
        }
        assert_eq!(u.out.0.borrow().as_slice(), b"hi\n");
        assert_eq!(u.rd(REG_LSR) & 0x60, 0x60, "THRE and TEMT stay set");
    }

    #[test]
    fn test_ns16550a_setting_etbei_with_empty_thr_raises_thre() {
        let mut u = uart();
        u.wr(REG_IER, u64::from(IER_ETBEI));
        assert!(u.irq.level(0));
        assert_eq!(u.rd(REG_IIR_FCR), u64::from(IIR_THRE));
        assert!(!u.irq.level(0), "reading IIR acknowledges THRE");
        assert_eq!(u.rd(REG_IIR_FCR), u64::from(IIR_NONE));
    }

    #[test]
    fn test_ns16550a_thr_write_rearms_thre() {
        let mut u = uart();
        u.wr(REG_IER, u64::from(IER_ETBEI));
        u.rd(REG_IIR_FCR);
        u.wr(REG_RBR_THR, u64::from(b'x'));
        assert!(u.irq.level(0));
        assert_eq!(u.rd(REG_IIR_FCR), u64::from(IIR_THRE));
        assert!(!u.irq.level(0));
    }

    #[test]
    fn test_ns16550a_clearing_etbei_drops_thre() {
        let mut u = uart();
        u.wr(REG_IER, u64::from(IER_ETBEI));
        assert!(u.irq.level(0));
        u.wr(REG_IER, 0);
        assert!(!u.irq.level(0));
        u.wr(REG_IER, u64::from(IER_ERBFI));
        assert!(!u.irq.level(0), "enabling only RX does not raise THRE");
    }

    #[test]
    fn test_ns16550a_rx_in_16450_mode_holds_one_byte() {
        let mut u = uart();
        u.wr(REG_IER, u64::from(IER_ERBFI));
        assert_eq!(u.dev.can_receive(), 1);
        u.dev.receive(b"a");
        assert_eq!(u.dev.can_receive(), 0);
        assert!(u.irq.level(0));
        assert_eq!(u.rd(REG_IIR_FCR), u64::from(IIR_RDA));
        assert_eq!(u.rd(REG_LSR) & u64::from(LSR_DR), 1);
        assert_eq!(u.rd(REG_RBR_THR), u64::from(b'a'));
        assert!(!u.irq.level(0));
        assert_eq!(u.rd(REG_LSR), 0x60);
    }

    #[test]
    fn test_ns16550a_rx_fifo_interrupts_at_trigger_level() {
        let mut u = uart();
        // FIFO on, trigger 4 bytes.
        u.wr(REG_IIR_FCR, 0x41);
        u.wr(REG_IER, u64::from(IER_ERBFI));
        assert_eq!(u.dev.can_receive(), 16);
        u.dev.receive(b"abc");
        assert!(!u.irq.level(0), "3 bytes are below the trigger");
        assert_eq!(u.rd(REG_IIR_FCR), u64::from(IIR_NONE | IIR_FIFOS_ENABLED));
        u.dev.receive(b"d");
        assert!(u.irq.level(0));
        assert_eq!(u.rd(REG_IIR_FCR), u64::from(IIR_RDA | IIR_FIFOS_ENABLED));
        assert_eq!(u.dev.can_receive(), 12);
        assert_eq!(u.rd(REG_RBR_THR), u64::from(b'a'));
        assert!(!u.irq.level(0), "below the trigger again");
    }

    #[test]
    fn test_ns16550a_rx_timeout_after_four_character_times() {
        let mut u = uart();
        u.wr(REG_IIR_FCR, 0xc1); // trigger 14
        u.wr(REG_LCR, 0x83); // 8N1, DLAB
        u.wr(REG_RBR_THR, 2); // divisor 2: 115200 baud at 3.6864 MHz
        u.wr(REG_IER, 0);
        u.wr(REG_LCR, 0x03);
        u.wr(REG_IER, u64::from(IER_ERBFI));
        u.dev.receive(b"xy");
        // 10 bits at 115200 baud = 86805 ns per character.
        let char_ns = 1_000_000_000u64 * 16 * 2 * 10 / 3_686_400;
        u.env.advance(u.dev.as_mut(), 4 * char_ns - 1);
        assert!(!u.irq.level(0));
        u.env.advance(u.dev.as_mut(), 1);
        assert!(u.irq.level(0));
        assert_eq!(u.rd(REG_IIR_FCR), u64::from(IIR_CTI | IIR_FIFOS_ENABLED));
        assert_eq!(u.rd(REG_RBR_THR), u64::from(b'x'));
        assert!(!u.irq.level(0), "a read clears the timeout and restarts it");
        u.env.advance(u.dev.as_mut(), 4 * char_ns);
        assert!(u.irq.level(0));
        assert_eq!(u.rd(REG_RBR_THR), u64::from(b'y'));
        assert!(!u.irq.level(0));
        u.env.advance(u.dev.as_mut(), 100 * char_ns);
        assert!(!u.irq.level(0), "an empty FIFO never times out");
    }

    #[test]
    fn test_ns16550a_overrun_sets_oe_and_line_status_interrupt_wins() {
        let mut u = uart();
        u.wr(REG_IIR_FCR, 0x01);
        u.wr(REG_IER, u64::from(IER_ERBFI | IER_ETBEI | IER_ELSI));
        u.dev.receive(&[b'z'; 17]);
        assert_eq!(u.dev.can_receive(), 0);
        assert_eq!(u.rd(REG_IIR_FCR), u64::from(IIR_RLS | IIR_FIFOS_ENABLED));
        assert_eq!(
            u.rd(REG_LSR),
            u64::from(LSR_DR | LSR_OE | LSR_THRE | LSR_TEMT)
        );
        assert_eq!(
            u.rd(REG_LSR),
            u64::from(LSR_DR | LSR_THRE | LSR_TEMT),
            "OE clears on read"
        );
        assert_eq!(u.rd(REG_IIR_FCR), u64::from(IIR_RDA | IIR_FIFOS_ENABLED));
        for _ in 0..16 {
            assert_eq!(u.rd(REG_RBR_THR), u64::from(b'z'));
        }
        assert_eq!(u.rd(REG_IIR_FCR), u64::from(IIR_THRE | IIR_FIFOS_ENABLED));
        assert_eq!(u.rd(REG_IIR_FCR), u64::from(IIR_NONE | IIR_FIFOS_ENABLED));
    }

    #[test]
    fn test_ns16550a_fcr_rx_reset_empties_fifo() {
        let mut u = uart();
        u.wr(REG_IIR_FCR, 0x01);
        u.dev.receive(b"abc");
        u.wr(REG_IIR_FCR, 0x03);
        assert_eq!(u.rd(REG_LSR) & u64::from(LSR_DR), 0);
        u.dev.receive(b"d");
        u.wr(REG_IIR_FCR, 0x00);
        assert_eq!(
            u.rd(REG_LSR) & u64::from(LSR_DR),
            0,
            "disabling the FIFO clears it"
        );
        assert_eq!(u.rd(REG_IIR_FCR), u64::from(IIR_NONE));
    }

    #[test]
    fn test_ns16550a_dlab_selects_divisor_latch() {
        let mut u = uart();
        u.wr(REG_IER, 0x05);
        u.wr(REG_LCR, 0x80);
        u.wr(REG_RBR_THR, 0x34);
        u.wr(REG_IER, 0x12);
        assert_eq!(u.rd(REG_RBR_THR), 0x34);
        assert_eq!(u.rd(REG_IER), 0x12);
        assert!(u.out.0.borrow().is_empty(), "DLL writes do not transmit");
        u.wr(REG_LCR, 0x03);
        assert_eq!(u.rd(REG_IER), 0x05);
        assert_eq!(u.rd(REG_LCR), 0x03);
    }

    #[test]
    fn test_ns16550a_loopback_routes_tx_to_rx_and_mcr_to_msr() {
        let mut u = uart();
        u.wr(REG_IIR_FCR, 0x01);
        u.wr(REG_MCR, u64::from(MCR_LOOP));
        // Entering loopback with all outputs low drops CTS, DSR, DCD.
        assert_eq!(u.rd(REG_MSR), u64::from(MSR_DCTS | MSR_DDSR | MSR_DDCD));
        assert_eq!(
            u.dev.can_receive(),
            0,
            "serial input is disconnected in loopback"
        );
        u.wr(REG_RBR_THR, u64::from(b'L'));
        assert!(u.out.0.borrow().is_empty());
        assert_eq!(u.rd(REG_LSR) & u64::from(LSR_DR), 1);
        assert_eq!(u.rd(REG_RBR_THR), u64::from(b'L'));
        u.wr(
            REG_MCR,
            u64::from(MCR_LOOP | MCR_DTR | MCR_RTS | MCR_OUT1 | MCR_OUT2),
        );
        assert_eq!(
            u.rd(REG_MSR),
            0xf0 | u64::from(MSR_DCTS | MSR_DDSR | MSR_DDCD)
        );
        u.wr(REG_IER, u64::from(IER_EDSSI));
        u.wr(REG_MCR, u64::from(MCR_LOOP | MCR_DTR | MCR_RTS | MCR_OUT2));
        assert!(
            u.irq.level(0),
            "RI trailing edge is a modem status interrupt"
        );
        assert_eq!(u.rd(REG_IIR_FCR), u64::from(IIR_MODEM | IIR_FIFOS_ENABLED));
        assert_eq!(u.rd(REG_MSR), 0xb0 | u64::from(MSR_TERI));
        assert!(!u.irq.level(0), "reading MSR clears the deltas");
    }

    #[test]
    fn test_ns16550a_reg_shift_spreads_registers_and_ignores_gaps() {
        let mut u = uart_with(&[("reg-shift", "2"), ("reg-io-width", "4")]);
        u.dev.write(0, 7 << 2, 4, 0xa5);
        assert_eq!(u.dev.read(0, 7 << 2, 4), 0xa5);
        assert_eq!(
            u.dev.read(0, 7, 1),
            0,
            "byte 7 is inside the RBR slot's padding"
        );
        assert_eq!(u.dev.read(0, 5 << 2, 4), 0x60);
        assert_eq!(u.dev.read(0, 8 << 2, 4), 0, "past the last register");
    }

    #[test]
    fn test_ns16550a_bad_sizes_and_offsets_are_harmless() {
        let mut u = uart();
        u.wr(REG_SCR, 0x5a);
        u.dev.write(0, REG_SCR, 3, 0xff);
        u.dev.write(0, 0x80, 1, 0xff);
        assert_eq!(u.dev.read(0, REG_SCR, 0), 0);
        assert_eq!(u.rd(REG_SCR), 0x5a);
        assert_eq!(u.dev.read(0, u64::MAX, 8), 0);
    }

    #[test]
    fn test_ns16550a_reset_clears_fifo_and_irq() {
        let mut u = uart();
        u.wr(REG_IIR_FCR, 0x01);
        u.wr(REG_IER, 0x0f);
        u.dev.receive(b"abc");
        u.wr(REG_SCR, 0x77);
        assert!(u.irq.level(0));
        u.dev.reset();
        assert!(!u.irq.level(0));
        assert_eq!(u.rd(REG_LSR), 0x60);
        assert_eq!(u.rd(REG_SCR), 0);
        assert_eq!(u.dev.can_receive(), 1);
        assert!(
            !u.env
                .queue
                .is_armed((crate::testutil::TEST_ID, TIMER_RX_TIMEOUT))
        );
    }

    #[test]
    fn test_ns16550a_realize_errors() {
        let env = TestEnv::new();
        let e = env
            .try_make(&device_type(), &[("chardev", "nope")])
            .err()
            .expect("refused");
        assert_eq!(e.to_string(), "Chardev 'nope' not found");
        let e = env
            .try_make(&device_type(), &[("reg-io-width", "3")])
            .err()
            .expect("refused");
        assert_eq!(
            e.to_string(),
            "Property 'ns16550a.reg-io-width' must be 1, 2 or 4, not 3"
        );
        assert!(env.try_make(&device_type(), &[("reg-shift", "3")]).is_err());
        assert!(
            env.try_make(&device_type(), &[("clock-frequency", "0")])
                .is_err()
        );
    }

    #[test]
    fn test_ns16550a_dt_node_matches_qemu_virt() {
        let env = TestEnv::new();
        let dev = env.make(&device_type(), &[]);
        let mut res = resources(dev.as_ref(), 0x1000_0000);
        res.irqs = vec![target(3, &[10])];
        let blob = fdt_blob(dev.as_ref(), &res);
        if let Some(dts) = dtc_decompile(&blob) {
            assert_dts(
                &dts,
                &[
                    "serial@10000000 {",
                    "interrupts = <0x0a>;",
                    "interrupt-parent = <0x03>;",
                    // 3686400 = 0x00384000, which dtc prints as a string, as in QEMU's DT.
                    "clock-frequency = \"\\08@\";",
                    "reg = <0x00 0x10000000 0x00 0x100>;",
                    "compatible = \"ns16550a\";",
                ],
                &["reg-shift", "reg-io-width", "phandle"],
            );
        }
    }

    #[test]
    fn test_ns16550a_dt_node_describes_wide_registers() {
        let env = TestEnv::new();
        let dev = env.make(
            &device_type(),
            &[
                ("reg-shift", "2"),
                ("reg-io-width", "4"),
                ("clock-frequency", "1000000"),
            ],
        );
        let mut res = resources(dev.as_ref(), 0x1000_1000);
        res.irqs = vec![target(3, &[4])];
        let blob = fdt_blob(dev.as_ref(), &res);
        if let Some(dts) = dtc_decompile(&blob) {
            assert_dts(
                &dts,
                &[
                    "serial@10001000 {",
                    "reg-shift = <0x02>;",
                    "reg-io-width = <0x04>;",
                    "clock-frequency = <0xf4240>;",
                ],
                &[],
            );
        }
    }

    /// A state blob: registers, divisor, RX FIFO contents, THRE and timeout flags.
    fn ns_blob(regs: [u8; 8], rx: &[u8]) -> Vec<u8> {
        let mut w = breadboard_core::snapshot::SnapWriter::new();
        for r in regs {
            w.u8(r);
        }
        w.u16(1);
        w.bytes(rx);
        w.bool(false);
        w.bool(false);
        w.finish()
    }

    #[test]
    fn test_snapshot_load_refuses_ns16550a_fifo_past_capacity_and_bad_registers() {
        let mut u = uart();
        u.wr(REG_SCR, 0x42);
        let fifo = FCR_FIFO_ENABLE;
        let cases = [
            // 17 bytes in a 16-byte FIFO; 2 bytes with the FIFO off (one holding register).
            ns_blob([0, fifo, 3, 0, 0, 0, 0, 0], &[0x55; FIFO_DEPTH + 1]),
            ns_blob([0, 0, 3, 0, 0, 0, 0, 0], &[1, 2]),
            // IER, FCR (trigger without enable), MCR and LSR bits no write can set.
            ns_blob([0xf0, 0, 3, 0, 0, 0, 0, 0], &[]),
            ns_blob([0, FCR_TRIGGER, 3, 0, 0, 0, 0, 0], &[]),
            ns_blob([0, 0, 3, 0xe0, 0, 0, 0, 0], &[]),
            ns_blob([0, 0, 3, 0, 0x81, 0, 0, 0], &[]),
        ];
        for bad in cases {
            let r = u.dev.snapshot_load(&bad);
            assert!(
                matches!(r, Err(breadboard_core::snapshot::SnapshotError::Corrupt(_))),
                "{r:?}"
            );
            assert_eq!(u.rd(REG_SCR), 0x42, "a refused state changes nothing");
        }
        // Truncated: refused, and nothing was half-applied (the old code set IER first).
        let mut cut = ns_blob([0x0f, 0, 3, 0, 0, 0, 0x99, 0], &[]);
        cut.truncate(4);
        assert!(u.dev.snapshot_load(&cut).is_err());
        assert_eq!(u.rd(REG_IER), 0);
        // A full FIFO is fine, and every byte reads back.
        u.dev
            .snapshot_load(&ns_blob([0, fifo, 3, 0, 0, 0, 0, 0], &[7; FIFO_DEPTH]))
            .unwrap();
        for _ in 0..FIFO_DEPTH {
            assert_eq!(u.rd(REG_RBR_THR), 7);
        }
        assert_eq!(u64::from(u.rd(REG_LSR) as u8 & LSR_DR), 0);
    }
}
