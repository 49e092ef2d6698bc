//! `plic`: the RISC-V Platform-Level Interrupt Controller, register map and semantics of the
//! RISC-V PLIC Specification v1.0.0 (sections 3–9), as SiFive implements it (`sifive,plic-1.0.0`).
//!
//! Register map (32-bit registers, 32-bit naturally aligned accesses only):
//! - `priority[s]` at `4*s` for sources 1..=num-sources; 0 never interrupts. WARL: values above
//!   `num-priorities` read back as `num-priorities`.
//! - pending bits at `0x1000` (read-only, bit s of word s/32).
//! - enable bits of context c at `0x2000 + 0x80*c`.
//! - threshold of context c at `0x20_0000 + 0x1000*c` (WARL like priorities), claim/complete at
//!   `+4`.
//!
//! Gateways are level-triggered: a source is pending while its input is high and it is not
//! claimed; a claim closes the gateway until the matching complete. Context c's output is high
//! while some enabled, pending source has a priority above its threshold.
//!
//! Contexts are numbered hart-major: with `hart-config=MS`, context 2h is hart h's M mode and
//! 2h+1 its S mode. Inputs: `unnamed-gpio-in[s]` is source s (input 0 exists and is ignored).
//! Outputs: `sysbus-irq[c]` is context c.

use std::borrow::Cow;
use std::rc::Rc;

use breadboard_core::fdt::{FdtError, FdtWriter, IrqTarget, NodeResources};
use breadboard_core::{
    Device, DeviceCtx, DeviceError, DeviceType, IrqLine, PropKind, PropSpec, PropValue, Props,
    RegionSpec,
};

/// Type name.
pub const TYPE_NAME: &str = "plic";

const PRIORITY_BASE: u64 = 0x0;
const PENDING_BASE: u64 = 0x1000;
const PENDING_END: u64 = 0x1080;
const ENABLE_BASE: u64 = 0x2000;
const ENABLE_STRIDE: u64 = 0x80;
const CONTEXT_BASE: u64 = 0x20_0000;
const CONTEXT_STRIDE: u64 = 0x1000;
const CONTEXT_THRESHOLD: u64 = 0x0;
const CONTEXT_CLAIM: u64 = 0x4;

/// The spec's largest source id.
const MAX_SOURCES: u64 = 1023;
/// The spec's largest context count (enables end at the context block).
const MAX_CONTEXTS: u64 = 15872;
/// The spec's aperture: 64 MiB.
const MAX_SIZE: u64 = 0x400_0000;

/// `mcause` interrupt numbers of the external interrupts, the `interrupts-extended` cells.
const IRQ_M_EXT: u32 = 11;
const IRQ_S_EXT: u32 = 9;

/// The privilege mode a context interrupts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Machine,
    Supervisor,
}

impl Mode {
    fn irq_cell(self) -> u32 {
        match self {
            Mode::Machine => IRQ_M_EXT,
            Mode::Supervisor => IRQ_S_EXT,
        }
    }
}

struct Context {
    hart: usize,
    mode: Mode,
    /// One bit per source, 32 sources a word.
    enable: Vec<u32>,
    threshold: u32,
    output: IrqLine,
}

/// A decoded register.
enum Reg {
    Priority(usize),
    Pending(usize),
    Enable(usize, usize),
    Threshold(usize),
    Claim(usize),
}

/// The PLIC.
pub struct Plic {
    name: String,
    num_sources: usize,
    num_priorities: u32,
    size: u64,
    /// Priority of each source; index 0 unused.
    priority: Vec<u32>,
    /// Input levels, pending and claimed (gateway closed) bits, 32 sources a word.
    level: Vec<u32>,
    pending: Vec<u32>,
    claimed: Vec<u32>,
    contexts: Vec<Context>,
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

/// Parses `hart-config`: one config for every hart (`MS`), or a comma-separated list with one
/// per hart (QEMU's form, `M,MS`). Each config lists M and/or S once.
fn parse_hart_config(config: &str, harts: usize) -> Result<Vec<(usize, Mode)>, String> {
    let per_hart: Vec<&str> = config.split(',').collect();
    if per_hart.len() != 1 && per_hart.len() != harts {
        return Err(format!(
            "Property '{TYPE_NAME}.hart-config' lists {} harts but the PLIC serves {harts}",
            per_hart.len()
        ));
    }
    let mut contexts = Vec::new();
    for h in 0..harts {
        let cfg = per_hart.get(h).or(per_hart.first()).copied().unwrap_or("");
        let mut seen = Vec::new();
        for c in cfg.chars() {
            let mode = match c.to_ascii_uppercase() {
                'M' => Mode::Machine,
                'S' => Mode::Supervisor,
                _ => {
                    return Err(format!(
                        "Property '{TYPE_NAME}.hart-config' has mode '{c}'; use M and S"
                    ));
                }
            };
            if seen.contains(&mode) {
                return Err(format!(
                    "Property '{TYPE_NAME}.hart-config' lists mode '{c}' twice for hart {h}"
                ));
            }
            seen.push(mode);
            contexts.push((h, mode));
        }
        if seen.is_empty() {
            return Err(format!(
                "Property '{TYPE_NAME}.hart-config' gives hart {h} no context"
            ));
        }
    }
    Ok(contexts)
}

/// Mask of the bits of word `w` of a source bitmap (pending, enable, ...) that name real
/// sources: source 0 and ids past `num_sources` are hardwired to 0. Shared with `ibex_plic`,
/// which has the same layout.
pub(crate) fn source_mask(num_sources: usize, w: usize) -> u32 {
    let mut m = if w == 0 { !1u32 } else { u32::MAX };
    let keep = (num_sources + 1).saturating_sub(w * 32);
    if keep < 32 {
        m &= (1u32 << keep) - 1;
    }
    m
}

/// Refuses restored source bitmaps with bits no write or input could set (source 0, ids past
/// `num_sources`).
pub(crate) fn check_source_words<'a>(
    name: &str,
    num_sources: usize,
    bitmaps: impl IntoIterator<Item = &'a [u32]>,
) -> Result<(), breadboard_core::snapshot::SnapshotError> {
    for bits in bitmaps {
        for (w, &v) in bits.iter().enumerate() {
            if v & !source_mask(num_sources, w) != 0 {
                return Err(breadboard_core::snapshot::SnapshotError::Corrupt(format!(
                    "'{name}' has bits {v:#x} in word {w} for sources that do not exist"
                )));
            }
        }
    }
    Ok(())
}

impl Plic {
    fn new(
        name: &str,
        num_sources: usize,
        num_priorities: u32,
        contexts: &[(usize, Mode)],
        size: u64,
    ) -> Plic {
        let words = (num_sources + 1).div_ceil(32);
        let mut p = Plic {
            name: name.to_string(),
            num_sources,
            num_priorities,
            size,
            priority: vec![0; num_sources + 1],
            level: vec![0; words],
            pending: vec![0; words],
            claimed: vec![0; words],
            sources: vec![None; num_sources + 1],
            contexts: contexts
                .iter()
                .map(|&(hart, mode)| Context {
                    hart,
                    mode,
                    enable: vec![0; words],
                    threshold: 0,
                    output: IrqLine::new(),
                })
                .collect(),
        };
        p.reset();
        p
    }

    fn is_source(&self, s: usize) -> bool {
        (1..=self.num_sources).contains(&s)
    }

    /// Mask of the bits of word `w` that are real sources (see [`source_mask`]).
    fn valid_bits(&self, w: usize) -> u32 {
        source_mask(self.num_sources, w)
    }

    fn decode(&self, offset: u64) -> Option<Reg> {
        let idx = |v: u64| usize::try_from(v).ok();
        match offset {
            PRIORITY_BASE..PENDING_BASE => {
                let s = idx((offset - PRIORITY_BASE) / 4)?;
                self.is_source(s).then_some(Reg::Priority(s))
            }
            PENDING_BASE..PENDING_END => {
                let w = idx((offset - PENDING_BASE) / 4)?;
                (w < self.pending.len()).then_some(Reg::Pending(w))
            }
            ENABLE_BASE..CONTEXT_BASE => {
                let rel = offset - ENABLE_BASE;
                let c = idx(rel / ENABLE_STRIDE)?;
                let w = idx((rel % ENABLE_STRIDE) / 4)?;
                (c < self.contexts.len() && w < self.pending.len()).then_some(Reg::Enable(c, w))
            }
            CONTEXT_BASE.. => {
                let rel = offset - CONTEXT_BASE;
                let c = idx(rel / CONTEXT_STRIDE)?;
                if c >= self.contexts.len() {
                    return None;
                }
                match rel % CONTEXT_STRIDE {
                    CONTEXT_THRESHOLD => Some(Reg::Threshold(c)),
                    CONTEXT_CLAIM => Some(Reg::Claim(c)),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// The best claimable source for context `c`: enabled, pending, priority above the
    /// threshold; highest priority wins, ties go to the lowest id.
    fn best_source(&self, c: usize) -> Option<usize> {
        let ctx = self.contexts.get(c)?;
        let mut best: Option<(u32, usize)> = None;
        for (w, (&p, &e)) in self.pending.iter().zip(&ctx.enable).enumerate() {
            let mut bits = p & e;
            while bits != 0 {
                let b = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let s = w * 32 + b;
                let prio = self.priority.get(s).copied().unwrap_or(0);
                if prio > ctx.threshold && best.is_none_or(|(bp, _)| prio > bp) {
                    best = Some((prio, s));
                }
            }
        }
        best.map(|(_, s)| s)
    }

    fn update(&mut self) {
        for c in 0..self.contexts.len() {
            let level = self.best_source(c).is_some();
            if let Some(ctx) = self.contexts.get(c) {
                ctx.output.set(level);
            }
        }
    }

    /// Gateway: a source not in service is pending exactly while its input is high.
    fn refresh_pending(&mut self, s: usize) {
        let on = bit(&self.level, s) && !bit(&self.claimed, s);
        set_bit(&mut self.pending, s, on);
    }

    fn claim(&mut self, c: usize) -> u32 {
        let Some(s) = self.best_source(c) else {
            return 0;
        };
        set_bit(&mut self.pending, s, false);
        set_bit(&mut self.claimed, s, true);
        self.update();
        tracing::info!(target: "plic", "{}: context {c} claims source {s}", self.name);
        u32::try_from(s).unwrap_or(0)
    }

    fn complete(&mut self, c: usize, id: u64) {
        let s = usize::try_from(id).unwrap_or(usize::MAX);
        let enabled = self.contexts.get(c).is_some_and(|ctx| bit(&ctx.enable, s));
        if !self.is_source(s) || !enabled {
            // The spec: a completion for a source not enabled for the context is ignored.
            tracing::warn!(
                target: "guest_error",
                "{}: context {c} completes source {id}, which is not enabled for it",
                self.name
            );
            return;
        }
        set_bit(&mut self.claimed, s, false);
        // A source that resamples at completion (vfio's automasked level IRQs) gives its new
        // level now, before the gateway reopens: no spurious second interrupt.
        if let Some(level) = breadboard_core::irq::end_of_interrupt_at(&self.sources, s) {
            set_bit(&mut self.level, s, level);
        }
        self.refresh_pending(s);
        self.update();
        tracing::info!(target: "plic", "{}: context {c} completes source {s}", self.name);
    }

    fn clamp_priority(&self, v: u64) -> u32 {
        u32::try_from(v.min(u64::from(self.num_priorities))).unwrap_or(self.num_priorities)
    }

    fn write_reg(&mut self, reg: Reg, value: u64) {
        match reg {
            Reg::Priority(s) => {
                let v = self.clamp_priority(value);
                if let Some(p) = self.priority.get_mut(s) {
                    *p = v;
                }
            }
            Reg::Pending(w) => {
                tracing::warn!(
                    target: "guest_error",
                    "{}: write of {value:#x} to read-only pending word {w}",
                    self.name
                );
                return;
            }
            Reg::Enable(c, w) => {
                let mask = self.valid_bits(w);
                if let Some(e) = self.contexts.get_mut(c).and_then(|x| x.enable.get_mut(w)) {
                    *e = (value as u32) & mask;
                }
            }
            Reg::Threshold(c) => {
                let v = self.clamp_priority(value);
                if let Some(ctx) = self.contexts.get_mut(c) {
                    ctx.threshold = v;
                }
            }
            Reg::Claim(c) => return self.complete(c, value & 0xffff_ffff),
        }
        self.update();
    }

    fn read_reg(&mut self, reg: Reg) -> u32 {
        match reg {
            Reg::Priority(s) => self.priority.get(s).copied().unwrap_or(0),
            Reg::Pending(w) => self.pending.get(w).copied().unwrap_or(0),
            Reg::Enable(c, w) => self
                .contexts
                .get(c)
                .and_then(|x| x.enable.get(w))
                .copied()
                .unwrap_or(0),
            Reg::Threshold(c) => self.contexts.get(c).map_or(0, |x| x.threshold),
            Reg::Claim(c) => self.claim(c),
        }
    }

    fn bad_access(&self, what: &str, offset: u64, size: u8) {
        tracing::warn!(
            target: "guest_error",
            "{}: bad {what} of {size} bytes at {offset:#x}",
            self.name
        );
    }

    /// Refuses restored state no register write or input could produce: priorities and
    /// thresholds above `num-priorities` (they are WARL), a priority for source 0, and level,
    /// pending, claimed or enable bits for source 0 or ids past the last source.
    fn check_state(
        &self,
        priority: &[u32],
        words: [&[u32]; 3],
        contexts: &[(Vec<u32>, u32)],
    ) -> Result<(), breadboard_core::snapshot::SnapshotError> {
        let corrupt = |m: String| Err(breadboard_core::snapshot::SnapshotError::Corrupt(m));
        for (s, &p) in priority.iter().enumerate() {
            if p > self.num_priorities || (s == 0 && p != 0) {
                return corrupt(format!(
                    "'{}' source {s} has priority {p} (at most {})",
                    self.name, self.num_priorities
                ));
            }
        }
        let enables = contexts.iter().map(|(e, _)| e.as_slice());
        check_source_words(
            &self.name,
            self.num_sources,
            words.into_iter().chain(enables),
        )?;
        for (c, (_, th)) in contexts.iter().enumerate() {
            if *th > self.num_priorities {
                return corrupt(format!(
                    "'{}' context {c} has threshold {th} (at most {})",
                    self.name, self.num_priorities
                ));
            }
        }
        Ok(())
    }
}

impl Device for Plic {
    fn snapshot_save(&self) -> Result<Vec<u8>, breadboard_core::snapshot::SnapshotError> {
        let mut w = breadboard_core::snapshot::SnapWriter::new();
        w.u32s(&self.priority);
        w.u32s(&self.level);
        w.u32s(&self.pending);
        w.u32s(&self.claimed);
        w.u64(self.contexts.len() as u64);
        for c in &self.contexts {
            w.u32s(&c.enable);
            w.u32(c.threshold);
        }
        Ok(w.finish())
    }

    fn snapshot_load(
        &mut self,
        data: &[u8],
    ) -> Result<(), breadboard_core::snapshot::SnapshotError> {
        let mut r = breadboard_core::snapshot::SnapReader::new(data);
        let priority = r.u32s(self.priority.len())?;
        let level = r.u32s(self.level.len())?;
        let pending = r.u32s(self.pending.len())?;
        let claimed = r.u32s(self.claimed.len())?;
        if r.u64()? != self.contexts.len() as u64 {
            return Err(breadboard_core::snapshot::SnapshotError::Mismatch(format!(
                "'{}' context count differs",
                self.name
            )));
        }
        let mut ctx = Vec::new();
        for c in &self.contexts {
            ctx.push((r.u32s(c.enable.len())?, r.u32()?));
        }
        r.end()?;
        self.check_state(&priority, [&level, &pending, &claimed], &ctx)?;
        self.priority = priority;
        self.level = level;
        self.pending = pending;
        self.claimed = claimed;
        for (c, (en, th)) in self.contexts.iter_mut().zip(ctx) {
            c.enable = en;
            c.threshold = th;
        }
        Ok(())
    }

    fn regions(&self) -> Vec<RegionSpec> {
        vec![RegionSpec::Mmio {
            name: Cow::Owned(self.name.clone()),
            size: self.size,
        }]
    }

    fn read(&mut self, region: usize, offset: u64, size: u8) -> u64 {
        if region != 0 {
            crate::bad_region(&self.name, region);
            return 0;
        }
        let reg = (size == 4 && offset.is_multiple_of(4) && offset < self.size)
            .then(|| self.decode(offset))
            .flatten();
        match reg {
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
        let reg = (size == 4 && offset.is_multiple_of(4) && offset < self.size)
            .then(|| self.decode(offset))
            .flatten();
        match reg {
            Some(r) => self.write_reg(r, value),
            None => self.bad_access("write", offset, size),
        }
    }

    fn irq_outputs(&self) -> Vec<IrqLine> {
        self.contexts.iter().map(|c| c.output.clone()).collect()
    }

    fn gpio_inputs(&self) -> u32 {
        u32::try_from(self.num_sources + 1).unwrap_or(0)
    }

    fn set_gpio(&mut self, line: u32, level: bool) {
        let s = line as usize;
        if !self.is_source(s) {
            return;
        }
        if bit(&self.level, s) != level {
            tracing::info!(target: "plic", "{}: source {s} input {}", self.name, u8::from(level));
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
        self.priority.fill(0);
        self.claimed.fill(0);
        for ctx in &mut self.contexts {
            ctx.enable.fill(0);
            ctx.threshold = 0;
        }
        // Input levels are the wires' state, not the PLIC's: they survive reset.
        self.pending.clone_from(&self.level);
        self.update();
    }

    fn write_fdt(&self, fdt: &mut FdtWriter, res: &NodeResources) -> Result<(), FdtError> {
        let node = fdt.begin_node(&res.node_name("plic"))?;
        fdt.property_string_list(
            "compatible",
            vec!["sifive,plic-1.0.0".to_string(), "riscv,plic0".to_string()],
        )?;
        fdt.property_u32("#address-cells", 0)?;
        fdt.property_u32("#interrupt-cells", 1)?;
        fdt.property_null("interrupt-controller")?;
        res.write_reg(fdt)?;
        fdt.property_u32("riscv,ndev", u32::try_from(self.num_sources).unwrap_or(0))?;
        crate::write_interrupts_extended(fdt, res, self.contexts.len(), |c| {
            let ctx = self.contexts.get(c)?;
            Some(IrqTarget {
                phandle: *res.cpu_intc_phandles.get(ctx.hart)?,
                specifier: vec![ctx.mode.irq_cell()],
            })
        })?;
        res.write_phandle(fdt)?;
        fdt.end_node(node)
    }
}

fn make(props: &Props, ctx: &DeviceCtx<'_>) -> Result<Box<dyn Device>, DeviceError> {
    let realize = |m: String| Err(DeviceError::Realize(m));
    let num_sources = props.u64("num-sources");
    if num_sources == 0 {
        return realize(format!(
            "Property '{TYPE_NAME}.num-sources' must be at least 1"
        ));
    }
    let num_priorities = props.u64("num-priorities");
    if num_priorities == 0 {
        return realize(format!(
            "Property '{TYPE_NAME}.num-priorities' must be at least 1"
        ));
    }
    let harts = match props.u64("num-harts") {
        0 => u64::from(ctx.num_harts),
        n => n,
    };
    if harts == 0 {
        return realize(format!(
            "Property '{TYPE_NAME}.num-harts' must be at least 1"
        ));
    }
    let harts = usize::try_from(harts)
        .unwrap_or(usize::MAX)
        .min(MAX_CONTEXTS as usize + 1);
    // Read raw: an explicitly empty config is an error, not the default.
    let config = match props.get("hart-config") {
        Some(PropValue::Str(s)) => s.as_str(),
        _ => "MS",
    };
    let contexts = parse_hart_config(config, harts).map_err(DeviceError::Realize)?;
    let n_ctx = contexts.len() as u64;
    if n_ctx > MAX_CONTEXTS {
        return realize(format!(
            "{n_ctx} PLIC contexts are more than the {MAX_CONTEXTS} the register map holds"
        ));
    }
    let size = props.u64("size");
    let needed = CONTEXT_BASE + n_ctx * CONTEXT_STRIDE;
    if size < needed || size > MAX_SIZE || !size.is_multiple_of(0x1000) {
        return realize(format!(
            "Property '{TYPE_NAME}.size' must be a multiple of 4 KiB between {needed:#x} \
             ({n_ctx} contexts) and {MAX_SIZE:#x}, not {size:#x}"
        ));
    }
    Ok(Box::new(Plic::new(
        ctx.name,
        usize::try_from(num_sources).unwrap_or(0),
        u32::try_from(num_priorities).unwrap_or(u32::MAX),
        &contexts,
        size,
    )))
}

/// The `plic` type. One MMIO region (`size`); inputs `0..=num-sources` (0 unused); outputs
/// one per context, hart-major in `hart-config` order.
pub fn device_type() -> DeviceType {
    DeviceType {
        name: Cow::Borrowed(TYPE_NAME),
        description: Cow::Borrowed("SiFive PLIC / RISC-V PLIC 1.0.0 interrupt controller"),
        user_creatable: true,
        sysbus: true,
        bus: None,
        compatible: &["sifive,plic-1.0.0", "riscv,plic0"],
        props: vec![
            PropSpec::new(
                "num-sources",
                PropKind::Int,
                "96",
                "interrupt sources 1..=N (riscv,ndev)",
            )
            .with_max(MAX_SOURCES),
            PropSpec::new(
                "num-priorities",
                PropKind::Int,
                "7",
                "highest priority level",
            )
            .with_max(u64::from(u32::MAX)),
            PropSpec::new(
                "hart-config",
                PropKind::Str,
                "MS",
                "contexts per hart: M and/or S, or one such entry per hart, comma-separated",
            ),
            PropSpec::new(
                "num-harts",
                PropKind::Int,
                "0",
                "harts served (0: all of the machine's)",
            )
            .with_max(MAX_CONTEXTS),
            PropSpec::new("size", PropKind::Size, "0x600000", "aperture size"),
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

    fn plic_with(env: &TestEnv, props: &[(&str, &str)]) -> Fixture {
        let mut dev = env.make(&device_type(), props);
        dev.reset();
        let outs = dev.irq_outputs();
        let out = RecordingSink::new(outs.len());
        for (i, l) in outs.iter().enumerate() {
            l.connect(out.clone(), i as u32);
        }
        Fixture { dev, out }
    }

    /// Two harts, MS: contexts 0 = hart 0 M, 1 = hart 0 S, 2 = hart 1 M, 3 = hart 1 S.
    fn plic() -> Fixture {
        plic_with(&TestEnv::with_harts(2), &[])
    }

    fn enable_off(c: u64) -> u64 {
        ENABLE_BASE + ENABLE_STRIDE * c
    }
    fn threshold_off(c: u64) -> u64 {
        CONTEXT_BASE + CONTEXT_STRIDE * c
    }
    fn claim_off(c: u64) -> u64 {
        threshold_off(c) + CONTEXT_CLAIM
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
    fn test_plic_claim_without_pending_returns_zero() {
        let mut f = plic();
        assert_eq!(f.rd(claim_off(0)), 0);
        f.wr(4 * 5, 1);
        f.wr(enable_off(0), 1 << 5);
        assert_eq!(f.rd(claim_off(0)), 0, "enabled but not pending");
    }

    #[test]
    fn test_plic_numbering_of_inputs_outputs_and_specifiers() {
        let f = plic();
        assert_eq!(f.dev.gpio_inputs(), 97);
        assert_eq!(f.dev.irq_outputs().len(), 4);
        assert_eq!(f.dev.irq_specifier(10), Some(vec![10]));
        assert_eq!(f.dev.irq_specifier(0), None);
        assert_eq!(f.dev.irq_specifier(97), None);
        assert!(f.dev.needs_phandle());
    }

    #[test]
    fn test_plic_enabled_pending_source_above_threshold_raises_context() {
        let mut f = plic();
        f.wr(4 * 10, 3);
        f.dev.set_gpio(10, true);
        assert_eq!(f.rd(PENDING_BASE), 1 << 10);
        assert!(!f.out.level(1), "not enabled yet");
        f.wr(enable_off(1), 1 << 10);
        assert!(f.out.level(1));
        assert!(!f.out.level(0) && !f.out.level(2) && !f.out.level(3));
        f.wr(threshold_off(1), 3);
        assert!(!f.out.level(1), "priority must exceed the threshold");
        f.wr(threshold_off(1), 2);
        assert!(f.out.level(1));
    }

    #[test]
    fn test_plic_priority_zero_never_interrupts() {
        let mut f = plic();
        f.dev.set_gpio(1, true);
        f.wr(enable_off(0), 0b10);
        assert!(!f.out.level(0));
        assert_eq!(f.rd(claim_off(0)), 0);
    }

    #[test]
    fn test_plic_claim_picks_highest_priority_then_lowest_id() {
        let mut f = plic();
        for (s, p) in [(3u64, 2u64), (5, 6), (7, 6), (40, 1)] {
            f.wr(4 * s, p);
            f.dev.set_gpio(s as u32, true);
        }
        f.wr(enable_off(0), (1 << 3) | (1 << 5) | (1 << 7));
        f.wr(enable_off(0) + 4, 1 << (40 - 32));
        assert_eq!(f.rd(claim_off(0)), 5);
        assert_eq!(f.rd(claim_off(0)), 7);
        assert_eq!(f.rd(claim_off(0)), 3);
        assert_eq!(f.rd(claim_off(0)), 40);
        assert_eq!(f.rd(claim_off(0)), 0);
        assert!(!f.out.level(0), "everything is in service");
    }

    #[test]
    fn test_plic_claim_clears_pending_and_complete_reopens_gateway() {
        let mut f = plic();
        f.wr(4 * 2, 1);
        f.wr(enable_off(0), 1 << 2);
        f.dev.set_gpio(2, true);
        assert_eq!(f.rd(claim_off(0)), 2);
        assert_eq!(f.rd(PENDING_BASE), 0);
        assert!(!f.out.level(0));
        // Still high at completion: pending again at once.
        f.wr(claim_off(0), 2);
        assert_eq!(f.rd(PENDING_BASE), 1 << 2);
        assert!(f.out.level(0));
        assert_eq!(f.rd(claim_off(0)), 2);
        f.dev.set_gpio(2, false);
        f.wr(claim_off(0), 2);
        assert_eq!(f.rd(PENDING_BASE), 0);
        assert!(!f.out.level(0));
    }

    #[test]
    fn test_plic_completion_resamples_a_source_with_an_eoi_hook() {
        let mut f = plic();
        f.wr(4 * 4, 1);
        f.wr(enable_off(0), 1 << 4);
        let line = IrqLine::new();
        let calls = Rc::new(std::cell::Cell::new(0u32));
        let still_high = Rc::new(std::cell::Cell::new(false));
        let (c, h) = (Rc::clone(&calls), Rc::clone(&still_high));
        line.set_eoi_hook(Rc::new(move || {
            c.set(c.get() + 1);
            h.get()
        }));
        f.dev.attach_irq_source(4, Some(line.clone()));
        f.dev.set_gpio(4, true);
        assert_eq!(f.rd(claim_off(0)), 4);
        // The source (a vfio level IRQ, automasked by the host) drops its line at completion:
        // the gateway reopens on a low input, so no second interrupt.
        f.wr(claim_off(0), 4);
        assert_eq!(calls.get(), 1);
        assert_eq!(f.rd(PENDING_BASE), 0);
        assert!(!f.out.level(0));
        // Still asserted after the unmask: pending again at once.
        f.dev.set_gpio(4, true);
        still_high.set(true);
        assert_eq!(f.rd(claim_off(0)), 4);
        f.wr(claim_off(0), 4);
        assert_eq!(calls.get(), 2);
        assert_eq!(f.rd(PENDING_BASE), 1 << 4);
        // Detached sources are not called.
        f.dev.attach_irq_source(4, None);
        assert_eq!(f.rd(claim_off(0)), 4);
        f.wr(claim_off(0), 4);
        assert_eq!(calls.get(), 2);
    }

    #[test]
    fn test_plic_level_drop_before_claim_withdraws_request() {
        let mut f = plic();
        f.wr(4 * 2, 1);
        f.wr(enable_off(0), 1 << 2);
        f.dev.set_gpio(2, true);
        assert!(f.out.level(0));
        f.dev.set_gpio(2, false);
        assert!(!f.out.level(0));
        assert_eq!(f.rd(claim_off(0)), 0);
    }

    #[test]
    fn test_plic_complete_of_source_not_enabled_is_ignored() {
        let mut f = plic();
        f.wr(4 * 4, 1);
        f.wr(enable_off(0), 1 << 4);
        f.dev.set_gpio(4, true);
        assert_eq!(f.rd(claim_off(0)), 4);
        f.wr(claim_off(1), 4); // context 1 does not have source 4 enabled
        assert_eq!(f.rd(PENDING_BASE), 0, "gateway still closed");
        f.wr(claim_off(0), 999);
        f.wr(claim_off(0), 0);
        assert_eq!(f.rd(PENDING_BASE), 0);
        f.wr(claim_off(0), 4);
        assert_eq!(f.rd(PENDING_BASE), 1 << 4);
    }

    #[test]
    fn test_plic_source_claimed_by_one_context_is_not_offered_to_another() {
        let mut f = plic();
        f.wr(4 * 9, 1);
        f.wr(enable_off(1), 1 << 9);
        f.wr(enable_off(3), 1 << 9);
        f.dev.set_gpio(9, true);
        assert!(f.out.level(1) && f.out.level(3));
        assert_eq!(f.rd(claim_off(3)), 9);
        assert!(!f.out.level(1) && !f.out.level(3));
        assert_eq!(f.rd(claim_off(1)), 0);
    }

    #[test]
    fn test_plic_priority_and_threshold_are_warl() {
        let mut f = plic();
        f.wr(4, 0xffff_ffff);
        assert_eq!(f.rd(4), 7);
        f.wr(threshold_off(2), 100);
        assert_eq!(f.rd(threshold_off(2)), 7);
    }

    #[test]
    fn test_plic_enable_bits_of_missing_sources_read_zero() {
        let mut f = plic_with(&TestEnv::with_harts(1), &[("num-sources", "40")]);
        f.wr(enable_off(0), 0xffff_ffff);
        f.wr(enable_off(0) + 4, 0xffff_ffff);
        assert_eq!(f.rd(enable_off(0)), 0xffff_fffe, "source 0 does not exist");
        assert_eq!(f.rd(enable_off(0) + 4), 0x1ff, "sources 32..=40");
        assert_eq!(f.rd(enable_off(0) + 8), 0, "past the last word");
        assert_eq!(f.rd(4 * 41), 0);
    }

    #[test]
    fn test_plic_pending_is_read_only_and_bad_accesses_harmless() {
        let mut f = plic();
        f.dev.set_gpio(3, true);
        f.wr(PENDING_BASE, 0);
        assert_eq!(f.rd(PENDING_BASE), 1 << 3);
        assert_eq!(f.dev.read(0, PENDING_BASE, 1), 0);
        assert_eq!(f.dev.read(0, PENDING_BASE + 2, 4), 0);
        assert_eq!(f.dev.read(0, PENDING_BASE, 8), 0);
        assert_eq!(f.rd(threshold_off(4)), 0, "context 4 does not exist");
        assert_eq!(f.rd(threshold_off(0) + 8), 0, "reserved");
        assert_eq!(f.rd(0x60_0000), 0, "past the aperture");
        f.dev.set_gpio(0, true);
        f.dev.set_gpio(1000, true);
    }

    #[test]
    fn test_plic_reset_clears_registers_but_keeps_input_levels() {
        let mut f = plic();
        f.wr(4 * 6, 5);
        f.wr(enable_off(0), 1 << 6);
        f.wr(threshold_off(0), 1);
        f.dev.set_gpio(6, true);
        assert_eq!(f.rd(claim_off(0)), 6);
        f.dev.reset();
        assert!(!f.out.level(0));
        assert_eq!(f.rd(4 * 6), 0);
        assert_eq!(f.rd(enable_off(0)), 0);
        assert_eq!(f.rd(threshold_off(0)), 0);
        assert_eq!(
            f.rd(PENDING_BASE),
            1 << 6,
            "the line is still high; claim was forgotten"
        );
    }

    #[test]
    fn test_plic_hart_config_variants() {
        let env = TestEnv::with_harts(2);
        assert_eq!(
            env.make(&device_type(), &[("hart-config", "M")])
                .irq_outputs()
                .len(),
            2
        );
        assert_eq!(
            env.make(&device_type(), &[("hart-config", "M,MS")])
                .irq_outputs()
                .len(),
            3
        );
        let e = env
            .try_make(&device_type(), &[("hart-config", "MU")])
            .err()
            .expect("refused");
        assert_eq!(
            e.to_string(),
            "Property 'plic.hart-config' has mode 'U'; use M and S"
        );
        assert!(
            env.try_make(&device_type(), &[("hart-config", "MM")])
                .is_err()
        );
        assert!(
            env.try_make(&device_type(), &[("hart-config", "M,M,M")])
                .is_err()
        );
        assert!(
            env.try_make(&device_type(), &[("hart-config", "")])
                .is_err()
        );
    }

    #[test]
    fn test_plic_size_must_hold_every_context() {
        let env = TestEnv::with_harts(2);
        let e = env
            .try_make(&device_type(), &[("size", "0x201000")])
            .err()
            .expect("refused");
        assert_eq!(
            e.to_string(),
            "Property 'plic.size' must be a multiple of 4 KiB between 0x204000 (4 contexts) \
             and 0x4000000, not 0x201000"
        );
        assert!(
            env.try_make(&device_type(), &[("size", "0x204000")])
                .is_ok()
        );
        assert!(
            env.try_make(&device_type(), &[("num-sources", "0")])
                .is_err()
        );
    }

    #[test]
    fn test_plic_dt_node_matches_qemu_virt() {
        let env = TestEnv::with_harts(1);
        let dev = env.make(&device_type(), &[]);
        let mut res = resources(dev.as_ref(), 0xc00_0000);
        res.irqs = vec![target(2, &[11]), target(2, &[9])];
        res.phandle = Some(3);
        let blob = fdt_blob(dev.as_ref(), &res);
        if let Some(dts) = dtc_decompile(&blob) {
            assert_dts(
                &dts,
                &[
                    "plic@c000000 {",
                    "phandle = <0x03>;",
                    "riscv,ndev = <0x60>;",
                    "reg = <0x00 0xc000000 0x00 0x600000>;",
                    "interrupts-extended = <0x02 0x0b 0x02 0x09>;",
                    "interrupt-controller;",
                    "compatible = \"sifive,plic-1.0.0\\0riscv,plic0\";",
                    "#address-cells = <0x00>;",
                    "#interrupt-cells = <0x01>;",
                ],
                &["interrupts =", "interrupt-parent"],
            );
        }
    }

    #[test]
    fn test_plic_dt_falls_back_to_cpu_intc_phandles_per_context() {
        let env = TestEnv::with_harts(2);
        let dev = env.make(&device_type(), &[("hart-config", "M,MS")]);
        let mut res = resources(dev.as_ref(), 0xc00_0000);
        res.cpu_intc_phandles = vec![5, 6];
        res.phandle = Some(7);
        let blob = fdt_blob(dev.as_ref(), &res);
        if let Some(dts) = dtc_decompile(&blob) {
            assert_dts(
                &dts,
                &["interrupts-extended = <0x05 0x0b 0x06 0x0b 0x06 0x09>;"],
                &[],
            );
        }
    }

    /// Offsets in a PLIC blob: (priority[1], level word 0, threshold of the last context).
    fn plic_blob_offsets(blob: &[u8]) -> (usize, usize, usize) {
        let n = u64::from_le_bytes(blob[..8].try_into().unwrap()) as usize;
        (12, 8 + 4 * n + 8, blob.len() - 4)
    }

    #[test]
    fn test_snapshot_load_refuses_plic_values_past_warl_and_source_range() {
        let mut f = plic();
        f.wr(4, 3);
        let good = f.dev.snapshot_save().unwrap();
        let (prio1, level0, threshold) = plic_blob_offsets(&good);
        let max = 7u32; // the default num-priorities
        let mut cases = Vec::new();
        let mut b = good.clone();
        b[prio1..prio1 + 4].copy_from_slice(&(max + 1).to_le_bytes());
        cases.push(b);
        let mut b = good.clone();
        b[8..12].copy_from_slice(&1u32.to_le_bytes()); // priority of source 0
        cases.push(b);
        let mut b = good.clone();
        b[level0..level0 + 4].copy_from_slice(&1u32.to_le_bytes()); // level of source 0
        cases.push(b);
        let mut b = good.clone();
        b[threshold..].copy_from_slice(&u32::MAX.to_le_bytes());
        cases.push(b);
        for bad in cases {
            let r = f.dev.snapshot_load(&bad);
            assert!(
                matches!(r, Err(breadboard_core::snapshot::SnapshotError::Corrupt(_))),
                "{r:?}"
            );
        }
        // Unchanged and working: priority 3 reads back, a claim cycle still runs.
        assert_eq!(f.rd(4), 3);
        f.dev.snapshot_load(&good).unwrap();
        f.wr(enable_off(0), 1 << 1);
        f.dev.set_gpio(1, true);
        assert_eq!(f.rd(claim_off(0)), 1);
    }
}
