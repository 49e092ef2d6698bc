//! `ibex-plic`: OpenTitan's `rv_plic` interrupt controller for one Ibex hart, register map of
//! the OpenTitan `rv_plic` documentation (hw/ip_templates/rv_plic, "Registers"), which follows
//! the RISC-V PLIC specification's layout for target 0:
//!
//! | offset | register | notes |
//! |---|---|---|
//! | `0x0 + 4*s` | `PRIO{s}` | 3 bits (`0..=7`), source 0 reads 0 |
//! | `0x1000 + 4*w` | `IP_{w}` | pending, read-only, 32 sources a word |
//! | `0x2000 + 4*w` | `IE0_{w}` | enables of target 0 |
//! | `0x20_0000` | `THRESHOLD0` | 3 bits |
//! | `0x20_0004` | `CC0` | read: claim, write: complete |
//! | `0x400_0000` | `MSIP0` | bit 0: software interrupt of hart 0 |
//! | `0x400_4000` | `ALERT_TEST` | write-only, logged |
//!
//! Registers are 32 bits wide and take naturally aligned 32-bit accesses only. Fields are as
//! wide as OpenTitan's (3-bit priorities): writes keep the low bits, like the hardware.
//!
//! Gateways are level-triggered: a source is pending while its input is high and it is not
//! claimed; a claim closes the gateway until the matching complete. `sysbus-irq[0]` (target 0)
//! is high while an enabled pending source has a priority above `THRESHOLD0`; it goes to hart 0's
//! MEIP unless wired otherwise. `sysbus-irq[1]` is `MSIP0` (unwired by default: machines that
//! want it wire it to `cpu[0]/unnamed-gpio-in[3]`). Inputs: `unnamed-gpio-in[s]` is source `s`.

use std::borrow::Cow;
use std::rc::Rc;

use breadboard_core::fdt::{FdtError, FdtWriter, IrqTarget, NodeResources};
use breadboard_core::{
    Device, DeviceCtx, DeviceError, DeviceType, IrqLine, PropKind, PropSpec, Props, RegionSpec,
};

/// Type name.
pub const TYPE_NAME: &str = "ibex-plic";

const PRIO_BASE: u64 = 0x0;
const IP_BASE: u64 = 0x1000;
const IE0_BASE: u64 = 0x2000;
const THRESHOLD0: u64 = 0x20_0000;
const CC0: u64 = 0x20_0004;
const MSIP0: u64 = 0x400_0000;
const ALERT_TEST: u64 = 0x400_4000;
/// The aperture: every register, rounded up to a page.
const SIZE: u64 = 0x400_5000;

/// Priority and threshold fields are 3 bits wide.
const PRIO_MASK: u32 = 0x7;
/// Largest source id the priority block (below `IP`) can address.
const MAX_SOURCES: u64 = 1023;

/// `mip` bit of the machine external interrupt (MSIP0 would be bit 3).
const IRQ_M_EXT: u32 = 11;

enum Reg {
    Prio(usize),
    Ip(usize),
    Ie(usize),
    Threshold,
    Claim,
    Msip,
    AlertTest,
}

/// The OpenTitan PLIC.
pub struct IbexPlic {
    name: String,
    num_sources: usize,
    /// Priority of each source; index 0 unused.
    prio: Vec<u32>,
    /// Input levels, pending and claimed bits, 32 sources a word.
    level: Vec<u32>,
    pending: Vec<u32>,
    claimed: Vec<u32>,
    enable: Vec<u32>,
    threshold: u32,
    msip: bool,
    meip_out: IrqLine,
    msip_out: IrqLine,
    /// The line driving each source, for end-of-interrupt resampling; index 0 unused.
    sources: Vec<Option<IrqLine>>,
}

fn bit(words: &[u32], s: usize) -> bool {
    words.get(s / 32).is_some_and(|w| w & (1 << (s % 32)) != 0)
}

fn set_bit(words: &mut [u32], s: usize, on: bool) {
    if let Some(w) = words.get_mut(s / 32) {
        if on {
            *w |= 1 << (s % 32);
        } else {
            *w &= !(1 << (s % 32));
        }
    }
}

impl IbexPlic {
    fn new(name: &str, num_sources: usize) -> IbexPlic {
        let words = (num_sources + 1).div_ceil(32);
        let mut p = IbexPlic {
            name: name.to_string(),
            num_sources,
            prio: vec![0; num_sources + 1],
            level: vec![0; words],
            pending: vec![0; words],
            claimed: vec![0; words],
            sources: vec![None; num_sources + 1],
            enable: vec![0; words],
            threshold: 0,
            msip: false,
            meip_out: IrqLine::new(),
            msip_out: IrqLine::new(),
        };
        p.reset();
        p
    }

    fn is_source(&self, s: usize) -> bool {
        (1..=self.num_sources).contains(&s)
    }

    /// Bits of word `w` that are real sources (source 0 and ids past the last are 0).
    fn valid_bits(&self, w: usize) -> u32 {
        crate::plic::source_mask(self.num_sources, w)
    }

    fn decode(&self, offset: u64) -> Option<Reg> {
        let words = self.pending.len() as u64;
        let idx = |v: u64| usize::try_from(v).ok();
        match offset {
            PRIO_BASE..IP_BASE => {
                let s = idx(offset / 4)?;
                (s <= self.num_sources).then_some(Reg::Prio(s))
            }
            IP_BASE..IE0_BASE => {
                let w = (offset - IP_BASE) / 4;
                (w < words).then(|| idx(w).map(Reg::Ip)).flatten()
            }
            IE0_BASE..THRESHOLD0 => {
                let w = (offset - IE0_BASE) / 4;
                (w < words).then(|| idx(w).map(Reg::Ie)).flatten()
            }
            THRESHOLD0 => Some(Reg::Threshold),
            CC0 => Some(Reg::Claim),
            MSIP0 => Some(Reg::Msip),
            ALERT_TEST => Some(Reg::AlertTest),
            _ => None,
        }
    }

    /// Highest-priority enabled pending source above the threshold; ties go to the lowest id.
    fn best_source(&self) -> Option<usize> {
        let mut best: Option<(u32, usize)> = None;
        for (w, (&p, &e)) in self.pending.iter().zip(&self.enable).enumerate() {
            let mut bits = p & e;
            while bits != 0 {
                let b = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let s = w * 32 + b;
                let prio = self.prio.get(s).copied().unwrap_or(0);
                if prio > self.threshold && best.is_none_or(|(bp, _)| prio > bp) {
                    best = Some((prio, s));
                }
            }
        }
        best.map(|(_, s)| s)
    }

    fn update(&mut self) {
        self.meip_out.set(self.best_source().is_some());
        self.msip_out.set(self.msip);
    }

    fn refresh_pending(&mut self, s: usize) {
        let on = bit(&self.level, s) && !bit(&self.claimed, s);
        set_bit(&mut self.pending, s, on);
    }

    fn claim(&mut self) -> u32 {
        let Some(s) = self.best_source() else {
            return 0;
        };
        set_bit(&mut self.pending, s, false);
        set_bit(&mut self.claimed, s, true);
        self.update();
        u32::try_from(s).unwrap_or(0)
    }

    fn complete(&mut self, id: u64) {
        let s = usize::try_from(id).unwrap_or(usize::MAX);
        if !self.is_source(s) || !bit(&self.enable, s) {
            // The PLIC spec: a completion for a source not enabled for the target is ignored.
            tracing::warn!(
                target: "guest_error",
                "{}: completion of source {id}, which is not enabled for target 0",
                self.name
            );
            return;
        }
        set_bit(&mut self.claimed, s, false);
        // A source that resamples at completion (vfio's automasked level IRQs) gives its new
        // level before the gateway reopens.
        if let Some(level) = breadboard_core::irq::end_of_interrupt_at(&self.sources, s) {
            set_bit(&mut self.level, s, level);
        }
        self.refresh_pending(s);
        self.update();
    }

    fn read_reg(&mut self, reg: Reg) -> u32 {
        match reg {
            Reg::Prio(s) => self.prio.get(s).copied().unwrap_or(0),
            Reg::Ip(w) => self.pending.get(w).copied().unwrap_or(0),
            Reg::Ie(w) => self.enable.get(w).copied().unwrap_or(0),
            Reg::Threshold => self.threshold,
            Reg::Claim => self.claim(),
            Reg::Msip => u32::from(self.msip),
            Reg::AlertTest => 0,
        }
    }

    fn write_reg(&mut self, reg: Reg, value: u32) {
        match reg {
            Reg::Prio(0) => {}
            Reg::Prio(s) => {
                if let Some(p) = self.prio.get_mut(s) {
                    *p = value & PRIO_MASK;
                }
            }
            Reg::Ip(w) => {
                tracing::warn!(
                    target: "guest_error",
                    "{}: write of {value:#x} to read-only IP_{w}",
                    self.name
                );
                return;
            }
            Reg::Ie(w) => {
                let mask = self.valid_bits(w);
                if let Some(e) = self.enable.get_mut(w) {
                    *e = value & mask;
                }
            }
            Reg::Threshold => self.threshold = value & PRIO_MASK,
            Reg::Claim => return self.complete(u64::from(value)),
            Reg::Msip => self.msip = value & 1 != 0,
            Reg::AlertTest => {
                if value & 1 != 0 {
                    tracing::info!(target: "unimp", "{}: ALERT_TEST fatal_fault (no alert handler)", self.name);
                }
                return;
            }
        }
        self.update();
    }

    fn access(&self, offset: u64, size: u8) -> Option<Reg> {
        (size == 4 && offset.is_multiple_of(4) && offset < SIZE)
            .then(|| self.decode(offset))
            .flatten()
    }

    fn bad_access(&self, what: &str, offset: u64, size: u8) {
        tracing::warn!(
            target: "guest_error",
            "{}: bad {what} of {size} bytes at {offset:#x}",
            self.name
        );
    }
}

impl Device for IbexPlic {
    /// Target 0 drives hart 0's MEIP, as QEMU's `ibex_plic` claims it at realize.
    fn default_cpu_irqs(&self) -> Vec<(usize, u32, u32)> {
        vec![(0, 0, IRQ_M_EXT)]
    }

    fn snapshot_save(&self) -> Result<Vec<u8>, breadboard_core::snapshot::SnapshotError> {
        let mut w = breadboard_core::snapshot::SnapWriter::new();
        w.u32s(&self.prio);
        w.u32s(&self.level);
        w.u32s(&self.pending);
        w.u32s(&self.claimed);
        w.u32s(&self.enable);
        w.u32(self.threshold);
        w.bool(self.msip);
        Ok(w.finish())
    }

    fn snapshot_load(
        &mut self,
        data: &[u8],
    ) -> Result<(), breadboard_core::snapshot::SnapshotError> {
        let mut r = breadboard_core::snapshot::SnapReader::new(data);
        let prio = r.u32s(self.prio.len())?;
        let level = r.u32s(self.level.len())?;
        let pending = r.u32s(self.pending.len())?;
        let claimed = r.u32s(self.claimed.len())?;
        let enable = r.u32s(self.enable.len())?;
        let threshold = r.u32()?;
        let msip = r.bool()?;
        r.end()?;
        // Only what the 3-bit fields and the real sources allow (source 0 has no priority).
        let corrupt = |m: String| Err(breadboard_core::snapshot::SnapshotError::Corrupt(m));
        if let Some((s, p)) = prio
            .iter()
            .enumerate()
            .find(|&(s, &p)| p & !PRIO_MASK != 0 || (s == 0 && p != 0))
        {
            return corrupt(format!("'{}' source {s} has priority {p}", self.name));
        }
        if threshold & !PRIO_MASK != 0 {
            return corrupt(format!("'{}' has threshold {threshold}", self.name));
        }
        crate::plic::check_source_words(
            &self.name,
            self.num_sources,
            [&level, &pending, &claimed, &enable].map(Vec::as_slice),
        )?;
        self.prio = prio;
        self.level = level;
        self.pending = pending;
        self.claimed = claimed;
        self.enable = enable;
        self.threshold = threshold;
        self.msip = msip;
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
        match self.access(offset, size) {
            Some(r) => u64::from(self.read_reg(r)),
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
        match self.access(offset, size) {
            Some(r) => self.write_reg(r, value as u32),
            None => self.bad_access("write", offset, size),
        }
    }

    fn irq_outputs(&self) -> Vec<IrqLine> {
        vec![self.meip_out.clone(), self.msip_out.clone()]
    }

    fn gpio_inputs(&self) -> u32 {
        u32::try_from(self.num_sources + 1).unwrap_or(0)
    }

    fn set_gpio(&mut self, line: u32, level: bool) {
        let s = line as usize;
        if !self.is_source(s) {
            return;
        }
        set_bit(&mut self.level, s, level);
        self.refresh_pending(s);
        self.update();
    }

    fn attach_irq_source(&mut self, line: u32, source: Option<IrqLine>) {
        if let Some(slot) = self.sources.get_mut(line as usize) {
            *slot = source;
        }
    }

    fn irq_specifier(&self, line: u32) -> Option<Vec<u32>> {
        self.is_source(line as usize).then(|| vec![line])
    }

    fn needs_phandle(&self) -> bool {
        true
    }

    fn reset(&mut self) {
        self.prio.fill(0);
        self.claimed.fill(0);
        self.enable.fill(0);
        self.threshold = 0;
        self.msip = false;
        // Input levels are the wires' state, not the PLIC's: they survive reset.
        self.pending.clone_from(&self.level);
        self.update();
    }

    fn write_fdt(&self, fdt: &mut FdtWriter, res: &NodeResources) -> Result<(), FdtError> {
        let node = fdt.begin_node(&res.node_name("interrupt-controller"))?;
        fdt.property_string_list(
            "compatible",
            vec!["lowrisc,rv-plic".to_string(), "riscv,plic0".to_string()],
        )?;
        fdt.property_u32("#address-cells", 0)?;
        fdt.property_u32("#interrupt-cells", 1)?;
        fdt.property_null("interrupt-controller")?;
        res.write_reg(fdt)?;
        fdt.property_u32("riscv,ndev", u32::try_from(self.num_sources).unwrap_or(0))?;
        // Target 0 is hart 0's M-mode external interrupt; MSIP only when the machine wired it.
        crate::write_interrupts_extended(fdt, res, 2, |i| {
            if i != 0 {
                return None;
            }
            Some(IrqTarget {
                phandle: *res.cpu_intc_phandles.first()?,
                specifier: vec![IRQ_M_EXT],
            })
        })?;
        res.write_phandle(fdt)?;
        fdt.end_node(node)
    }
}

fn make(props: &Props, ctx: &DeviceCtx<'_>) -> Result<Box<dyn Device>, DeviceError> {
    let n = props.u64("num-sources");
    if n == 0 {
        return Err(DeviceError::Realize(format!(
            "Property '{TYPE_NAME}.num-sources' must be at least 1"
        )));
    }
    Ok(Box::new(IbexPlic::new(
        ctx.name,
        usize::try_from(n).unwrap_or(1),
    )))
}

/// The `ibex-plic` type. One MMIO region; inputs `0..=num-sources` (0 unused); outputs:
/// target 0 (MEIP) and MSIP0.
pub fn device_type() -> DeviceType {
    DeviceType {
        name: Cow::Borrowed(TYPE_NAME),
        description: Cow::Borrowed("OpenTitan rv_plic interrupt controller (one Ibex hart)"),
        user_creatable: true,
        sysbus: true,
        bus: None,
        compatible: &["lowrisc,rv-plic"],
        props: vec![
            PropSpec::new(
                "num-sources",
                PropKind::Int,
                "32",
                "interrupt sources 1..=N (riscv,ndev)",
            )
            .with_max(MAX_SOURCES),
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
    use crate::testutil::{TestEnv, assert_dts, dtc_decompile, fdt_blob, resources, target};
    use breadboard_core::irq::RecordingSink;

    struct Fixture {
        dev: Box<dyn Device>,
        out: Rc<RecordingSink>,
    }

    fn plic(props: &[(&str, &str)]) -> Fixture {
        let env = TestEnv::with_harts(1);
        let mut dev = env.make(&device_type(), props);
        dev.reset();
        let out = RecordingSink::new(2);
        for (i, l) in dev.irq_outputs().iter().enumerate() {
            l.connect(out.clone(), i as u32);
        }
        Fixture { dev, out }
    }

    impl Fixture {
        fn wr(&mut self, off: u64, v: u64) {
            self.dev.write(0, off, 4, v);
        }
        fn rd(&mut self, off: u64) -> u64 {
            self.dev.read(0, off, 4)
        }
    }

    #[test]
    fn test_ibex_plic_claim_without_pending_returns_zero() {
        let mut f = plic(&[]);
        assert_eq!(f.rd(CC0), 0);
        f.wr(4 * 2, 1);
        f.wr(IE0_BASE, 1 << 2);
        assert_eq!(f.rd(CC0), 0, "enabled but not pending");
    }

    #[test]
    fn test_ibex_plic_uart_source_2_raises_meip_and_claim_complete_cycle() {
        // The echo32 firmware's sequence.
        let mut f = plic(&[]);
        f.wr(THRESHOLD0, 0);
        f.wr(4 * 2, 1);
        let ie = f.rd(IE0_BASE);
        f.wr(IE0_BASE, ie | 1 << 2);
        f.dev.set_gpio(2, true);
        assert_eq!(f.rd(IP_BASE), 1 << 2);
        assert!(f.out.level(0), "MEIP");
        assert_eq!(f.rd(CC0), 2);
        assert!(!f.out.level(0), "claimed: gateway closed");
        f.dev.set_gpio(2, false);
        f.wr(CC0, 2);
        assert_eq!(f.rd(IP_BASE), 0);
        assert!(!f.out.level(0));
        // Still high at completion: pending again at once.
        f.dev.set_gpio(2, true);
        assert_eq!(f.rd(CC0), 2);
        f.wr(CC0, 2);
        assert!(f.out.level(0));
    }

    #[test]
    fn test_ibex_plic_completion_resamples_a_source_with_an_eoi_hook() {
        let mut f = plic(&[]);
        f.wr(4 * 3, 1);
        f.wr(IE0_BASE, 1 << 3);
        let line = IrqLine::new();
        let calls = Rc::new(std::cell::Cell::new(0u32));
        let c = Rc::clone(&calls);
        line.set_eoi_hook(Rc::new(move || {
            c.set(c.get() + 1);
            false
        }));
        f.dev.attach_irq_source(3, Some(line));
        f.dev.set_gpio(3, true);
        assert_eq!(f.rd(CC0), 3);
        f.wr(CC0, 3);
        assert_eq!(calls.get(), 1);
        assert_eq!(
            f.rd(IP_BASE),
            0,
            "the source dropped its line at completion"
        );
        assert!(!f.out.level(0));
    }

    #[test]
    fn test_ibex_plic_priority_and_threshold_are_three_bits() {
        let mut f = plic(&[]);
        f.wr(4 * 5, 0xffff_fff9);
        assert_eq!(f.rd(4 * 5), 1);
        f.wr(THRESHOLD0, 0xf);
        assert_eq!(f.rd(THRESHOLD0), 7);
        f.wr(0, 7);
        assert_eq!(f.rd(0), 0, "source 0 does not exist");
    }

    #[test]
    fn test_ibex_plic_threshold_masks_and_highest_priority_wins() {
        let mut f = plic(&[]);
        for (s, p) in [(3u64, 2u64), (5, 6), (7, 6)] {
            f.wr(4 * s, p);
            f.dev.set_gpio(s as u32, true);
        }
        f.wr(IE0_BASE, (1 << 3) | (1 << 5) | (1 << 7));
        f.wr(THRESHOLD0, 6);
        assert!(!f.out.level(0), "priority must exceed the threshold");
        f.wr(THRESHOLD0, 1);
        assert_eq!(f.rd(CC0), 5);
        assert_eq!(f.rd(CC0), 7);
        assert_eq!(f.rd(CC0), 3);
        assert_eq!(f.rd(CC0), 0);
    }

    #[test]
    fn test_ibex_plic_msip_drives_second_output() {
        let mut f = plic(&[]);
        f.wr(MSIP0, 1);
        assert!(f.out.level(1));
        assert_eq!(f.rd(MSIP0), 1);
        f.wr(MSIP0, 0);
        assert!(!f.out.level(1));
        f.wr(ALERT_TEST, 1);
        assert_eq!(f.rd(ALERT_TEST), 0);
    }

    #[test]
    fn test_ibex_plic_bad_accesses_and_missing_sources() {
        let mut f = plic(&[("num-sources", "40")]);
        f.wr(IE0_BASE, 0xffff_ffff);
        f.wr(IE0_BASE + 4, 0xffff_ffff);
        assert_eq!(f.rd(IE0_BASE), 0xffff_fffe);
        assert_eq!(f.rd(IE0_BASE + 4), 0x1ff, "sources 32..=40");
        assert_eq!(f.rd(IE0_BASE + 8), 0, "past the last word");
        assert_eq!(f.dev.read(0, IP_BASE, 1), 0);
        assert_eq!(f.dev.read(0, CC0 + 2, 4), 0);
        assert_eq!(f.rd(4 * 41), 0);
        f.dev.set_gpio(0, true);
        f.dev.set_gpio(41, true);
        assert_eq!(f.rd(IP_BASE), 0);
        assert_eq!(f.dev.gpio_inputs(), 41);
        assert_eq!(f.dev.irq_specifier(2), Some(vec![2]));
        assert_eq!(f.dev.irq_specifier(0), None);
    }

    #[test]
    fn test_ibex_plic_complete_of_source_not_enabled_is_ignored() {
        let mut f = plic(&[]);
        f.wr(4 * 4, 1);
        f.wr(IE0_BASE, 1 << 4);
        f.dev.set_gpio(4, true);
        assert_eq!(f.rd(CC0), 4);
        f.wr(IE0_BASE, 0);
        f.wr(CC0, 4);
        f.wr(IE0_BASE, 1 << 4);
        assert_eq!(f.rd(IP_BASE), 0, "gateway still closed");
        f.wr(CC0, 4);
        assert_eq!(f.rd(IP_BASE), 1 << 4);
    }

    #[test]
    fn test_ibex_plic_defaults_to_hart0_meip() {
        let env = TestEnv::with_harts(1);
        let dev = env.make(&device_type(), &[]);
        let p = (*dev).as_any().downcast_ref::<IbexPlic>().expect("type");
        assert_eq!(p.default_cpu_irqs(), vec![(0, 0, 11)]);
        assert_eq!(dev.gpio_inputs(), 33);
    }

    #[test]
    fn test_ibex_plic_dt_node() {
        let env = TestEnv::with_harts(1);
        let dev = env.make(&device_type(), &[]);
        let mut res = resources(dev.as_ref(), 0x4101_0000);
        res.irqs = vec![target(2, &[11]), None];
        res.phandle = Some(3);
        let blob = fdt_blob(dev.as_ref(), &res);
        if let Some(dts) = dtc_decompile(&blob) {
            assert_dts(
                &dts,
                &[
                    "interrupt-controller@41010000 {",
                    "compatible = \"lowrisc,rv-plic\\0riscv,plic0\";",
                    "interrupts-extended = <0x02 0x0b>;",
                    "riscv,ndev = <0x20>;",
                    "reg = <0x00 0x41010000 0x00 0x4005000>;",
                    "phandle = <0x03>;",
                ],
                &["interrupts ="],
            );
        }
    }

    #[test]
    fn test_snapshot_load_refuses_ibex_plic_wide_fields_and_missing_sources() {
        let mut f = plic(&[]);
        f.wr(4 * 2, 1);
        let good = f.dev.snapshot_save().unwrap();
        let n = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
        let level0 = 8 + 4 * n + 8;
        let threshold = good.len() - 5;
        let mut cases = Vec::new();
        let mut b = good.clone();
        b[16..20].copy_from_slice(&8u32.to_le_bytes()); // priority 2 past 3 bits
        cases.push(b);
        let mut b = good.clone();
        b[8..12].copy_from_slice(&1u32.to_le_bytes()); // source 0
        cases.push(b);
        let mut b = good.clone();
        b[level0..level0 + 4].copy_from_slice(&1u32.to_le_bytes());
        cases.push(b);
        let mut b = good.clone();
        b[threshold..threshold + 4].copy_from_slice(&8u32.to_le_bytes());
        cases.push(b);
        for bad in cases {
            let r = f.dev.snapshot_load(&bad);
            assert!(
                matches!(r, Err(breadboard_core::snapshot::SnapshotError::Corrupt(_))),
                "{r:?}"
            );
        }
        assert_eq!(f.rd(4 * 2), 1);
        f.dev.snapshot_load(&good).unwrap();
        f.wr(IE0_BASE, 1 << 2);
        f.dev.set_gpio(2, true);
        assert_eq!(f.rd(CC0), 2);
    }
}
