//! Two UARTs rebuilt as a plugin (`bb-uarts`): `plugin-ibex-uart` (ibex.rs) and
//! `plugin-ns16550a`, the built-in `ns16550a` (crates/devices/src/ns16550a.rs) rebuilt as a
//! plugin through the Rust SDK, as a parity proof that a plugin can do what a built-in does:
//! MMIO, an IRQ output, a chardev (TX through the host, RX through `can_receive`/`receive`),
//! a timer on the virtual clock (the RX character timeout), typed properties with realize
//! errors, and extra DT properties. The register model is the built-in's, line for line; only
//! the plumbing differs (host services instead of `IrqLine`/`TimerHandle`/`Chardev`).
//! A test in crates/plugin-host drives both with the same access script and compares them.

use std::collections::VecDeque;

use breadboard_plugin_api::{
    Fdt, FdtError, Host, PluginDevice, PropKind, TypeBuilder, breadboard_plugin,
};

/// Type name (the built-in keeps `ns16550a`).
pub const TYPE_NAME: &str = "plugin-ns16550a";

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
    host: Host,
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
    fn new(host: Host, clock_hz: u64, reg_shift: u32, reg_io_width: u32) -> Ns16550a {
        let mut s = Ns16550a {
            host,
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
        PluginDevice::reset(&mut s);
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
        self.host.set_irq(0, level);
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
            self.host.timer_in(TIMER_RX_TIMEOUT, delay);
        } else {
            self.host.timer_del(TIMER_RX_TIMEOUT);
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
        } else {
            self.host.chr_write(&[byte]);
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
            self.host.unimp(&format!(
                "IER bits {:#x} (not a 16550A feature)",
                v & !IER_MASK
            ));
        }
        if self.ier & IER_ETBEI != 0 && old & IER_ETBEI == 0 {
            // Enabling the THRE interrupt while THR is empty raises it at once.
            self.thr_ipending = true;
        } else if self.ier & IER_ETBEI == 0 {
            self.thr_ipending = false;
        }
    }

    /// Register index for an access, or `None` (logged) if nothing is there.
    fn decode(&self, offset: u64, size: u32, what: &str) -> Option<u64> {
        let stride_mask = (1u64 << self.reg_shift) - 1;
        let index = offset >> self.reg_shift;
        if !matches!(size, 1 | 2 | 4 | 8) || offset & stride_mask != 0 || index > REG_SCR {
            self.host
                .guest_error(&format!("bad {what} of {size} bytes at {offset:#x}"));
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
                    self.host.unimp("sending a break");
                }
                self.lcr = v;
            }
            REG_MCR => {
                self.mcr = v & MCR_MASK;
                self.update_modem_status();
            }
            REG_LSR | REG_MSR => {
                self.host.guest_error(&format!(
                    "write of {v:#x} to read-only {}",
                    if index == REG_LSR { "LSR" } else { "MSR" }
                ));
            }
            _ => self.scr = v,
        }
        self.update_irq();
    }
}

impl PluginDevice for Ns16550a {
    fn create(host: Host) -> Result<Self, String> {
        let clock_hz = host.prop_u64("clock-frequency").unwrap_or(0);
        if clock_hz == 0 {
            return Err(format!(
                "Property '{TYPE_NAME}.clock-frequency' must not be 0"
            ));
        }
        let reg_io_width = host.prop_u64("reg-io-width").unwrap_or(1);
        if !matches!(reg_io_width, 1 | 2 | 4) {
            return Err(format!(
                "Property '{TYPE_NAME}.reg-io-width' must be 1, 2 or 4, not {reg_io_width}"
            ));
        }
        // Both bounded by the schema (reg-shift <= 2).
        let reg_shift = u32::try_from(host.prop_u64("reg-shift").unwrap_or(0))
            .unwrap_or(0)
            .min(2);
        let reg_io_width = u32::try_from(reg_io_width).unwrap_or(1);
        Ok(Ns16550a::new(host, clock_hz, reg_shift, reg_io_width))
    }

    fn read(&mut self, region: u32, offset: u64, size: u32) -> u64 {
        if region != 0 {
            self.host.guest_error(&format!(
                "access to region {region}, which it does not have"
            ));
            return 0;
        }
        match self.decode(offset, size, "read") {
            Some(index) => u64::from(self.read_reg(index)),
            None => 0,
        }
    }

    fn write(&mut self, region: u32, offset: u64, size: u32, value: u64) {
        if region != 0 {
            self.host.guest_error(&format!(
                "access to region {region}, which it does not have"
            ));
            return;
        }
        if let Some(index) = self.decode(offset, size, "write") {
            self.write_reg(index, value.to_le_bytes()[0]);
        }
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
        self.host.timer_del(TIMER_RX_TIMEOUT);
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

    fn write_fdt(&self, fdt: &mut Fdt) -> Result<(), FdtError> {
        // compatible, reg and interrupts come from the host.
        fdt.u32(
            "clock-frequency",
            u32::try_from(self.clock_hz).unwrap_or(u32::MAX),
        )?;
        if self.reg_shift != 0 {
            fdt.u32("reg-shift", self.reg_shift)?;
        }
        if self.reg_io_width != 1 {
            fdt.u32("reg-io-width", self.reg_io_width)?;
        }
        Ok(())
    }
}

mod ibex;

breadboard_plugin!("bb-uarts", || vec![
    ibex::type_builder(),
    TypeBuilder::new::<Ns16550a>(
        TYPE_NAME,
        "16550A UART with 16-byte FIFOs (plugin build of ns16550a)"
    )
    .compatible("ns16550a")
    .node_name("serial")
    .region(TYPE_NAME, REGION_SIZE)
    .irqs(1)
    .prop(
        PropKind::Chardev,
        "chardev",
        Some(""),
        "character device for TX/RX",
        None
    )
    .prop(
        PropKind::Int,
        "clock-frequency",
        Some("3686400"),
        "input clock in Hz (baud = clock / 16 / divisor)",
        Some(u64::from(u32::MAX)),
    )
    .prop(
        PropKind::Int,
        "reg-shift",
        Some("0"),
        "registers are 1 << reg-shift bytes apart",
        Some(2)
    )
    .prop(
        PropKind::Int,
        "reg-io-width",
        Some("1"),
        "access width the driver uses: 1, 2 or 4",
        Some(4)
    ),
]);
