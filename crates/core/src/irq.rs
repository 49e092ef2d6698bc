//! IRQ lines with level semantics, named as QEMU names them: a device's outputs are
//! `sysbus-irq[N]`, its inputs `unnamed-gpio-in[N]`. An output is wired to at most one input;
//! wiring forwards the current level so late connection loses nothing.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// Something with numbered interrupt inputs: an interrupt controller, a hart, any device.
pub trait IrqSink {
    /// Sets input `line` to `level`.
    fn set_irq(&self, line: u32, level: bool);

    /// `source` now drives input `line` (`None`: nothing does any more). Interrupt controllers
    /// that tell sources about end of interrupt keep it (see [`IrqLine::end_of_interrupt`]);
    /// others ignore it.
    fn attach_source(&self, _line: u32, _source: Option<&IrqLine>) {}
}

/// What a line's source does when the guest completes the interrupt at the controller: it
/// resamples its level and returns the new one. VFIO's automasked level IRQs need this (the
/// host masked the IRQ when it fired; completion lowers the guest line and unmasks), as KVM's
/// resample irqfds do.
pub type EoiHook = Rc<dyn Fn() -> bool>;

#[derive(Default)]
struct LineInner {
    level: Cell<bool>,
    target: RefCell<Option<(Rc<dyn IrqSink>, u32)>>,
    eoi: RefCell<Option<EoiHook>>,
}

/// An interrupt output. Clones share the same line: the device keeps one, the machine wires
/// another.
#[derive(Clone, Default)]
pub struct IrqLine(Rc<LineInner>);

impl std::fmt::Debug for IrqLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IrqLine")
            .field("level", &self.0.level.get())
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl IrqLine {
    /// A new, unconnected, low line.
    pub fn new() -> IrqLine {
        IrqLine::default()
    }

    /// Drives the line. Only changes are forwarded (level semantics).
    pub fn set(&self, level: bool) {
        if self.0.level.replace(level) == level {
            return;
        }
        self.forward(level);
    }

    /// Drives the line high.
    pub fn raise(&self) {
        self.set(true);
    }

    /// Drives the line low.
    pub fn lower(&self) {
        self.set(false);
    }

    /// A high-then-low pulse, for edge-triggered consumers.
    pub fn pulse(&self) {
        self.set(true);
        self.set(false);
    }

    /// Current level.
    pub fn level(&self) -> bool {
        self.0.level.get()
    }

    /// Whether the line is wired to an input.
    pub fn is_connected(&self) -> bool {
        self.0.target.borrow().is_some()
    }

    /// Wires the line to input `line` of `sink`, replacing any earlier wiring, and forwards the
    /// current level. The old target, if any, is lowered first.
    pub fn connect(&self, sink: Rc<dyn IrqSink>, line: u32) {
        self.disconnect();
        let level = self.level();
        *self.0.target.borrow_mut() = Some((Rc::clone(&sink), line));
        sink.attach_source(line, Some(self));
        if level {
            sink.set_irq(line, true);
        }
    }

    /// Removes the wiring; the old target sees the line go low.
    pub fn disconnect(&self) {
        let old = self.0.target.borrow_mut().take();
        if let Some((sink, line)) = old {
            if self.level() {
                sink.set_irq(line, false);
            }
            sink.attach_source(line, None);
        }
    }

    /// Makes the source resample its level when the guest completes the interrupt (see
    /// [`EoiHook`]). Replaces an earlier hook.
    pub fn set_eoi_hook(&self, hook: EoiHook) {
        *self.0.eoi.borrow_mut() = Some(hook);
    }

    /// Called by the interrupt controller this line drives when the guest completes its
    /// interrupt. Runs the source's hook and returns the line's level after it, or `None` when
    /// the source has no hook. The new level is not forwarded: the caller is the sink and
    /// applies it itself (it is inside its own register access, so forwarding would re-enter it).
    pub fn end_of_interrupt(&self) -> Option<bool> {
        let hook = self.0.eoi.borrow().clone()?;
        let level = hook();
        self.0.level.set(level);
        Some(level)
    }

    fn forward(&self, level: bool) {
        // Clone the target out so the sink may rewire this line without a RefCell conflict.
        let target = self.0.target.borrow().clone();
        if let Some((sink, line)) = target {
            sink.set_irq(line, level);
        }
    }
}

/// For interrupt controllers: the guest completed source `s`; `sources` holds the line driving
/// each source (from [`IrqSink::attach_source`]). Returns the source's resampled level, if it
/// has an EOI hook (see [`IrqLine::end_of_interrupt`]).
pub fn end_of_interrupt_at(sources: &[Option<IrqLine>], s: usize) -> Option<bool> {
    sources
        .get(s)
        .and_then(Option::as_ref)
        .and_then(IrqLine::end_of_interrupt)
}

/// A sink that records levels, for device tests (like cloud-hypervisor's `TestInterrupt`).
#[derive(Default, Debug)]
pub struct RecordingSink {
    levels: RefCell<Vec<bool>>,
    changes: Cell<u64>,
}

impl RecordingSink {
    /// A recorder with `n` inputs, all low.
    pub fn new(n: usize) -> Rc<RecordingSink> {
        Rc::new(RecordingSink {
            levels: RefCell::new(vec![false; n]),
            changes: Cell::new(0),
        })
    }

    /// Level of input `line` (false if out of range).
    pub fn level(&self, line: u32) -> bool {
        self.levels
            .borrow()
            .get(line as usize)
            .copied()
            .unwrap_or(false)
    }

    /// How many level changes were delivered.
    pub fn changes(&self) -> u64 {
        self.changes.get()
    }
}

impl IrqSink for RecordingSink {
    fn set_irq(&self, line: u32, level: bool) {
        if let Some(l) = self.levels.borrow_mut().get_mut(line as usize) {
            *l = level;
        }
        self.changes.set(self.changes.get() + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A controller that keeps its sources, as the PLIC does.
    #[derive(Default)]
    struct Controller {
        sources: RefCell<Vec<(u32, Option<IrqLine>)>>,
        levels: RefCell<Vec<(u32, bool)>>,
    }

    impl IrqSink for Controller {
        fn set_irq(&self, line: u32, level: bool) {
            self.levels.borrow_mut().push((line, level));
        }
        fn attach_source(&self, line: u32, source: Option<&IrqLine>) {
            self.sources.borrow_mut().push((line, source.cloned()));
        }
    }

    #[test]
    fn test_eoi_hook_resamples_without_forwarding() {
        let ctl = Rc::new(Controller::default());
        let line = IrqLine::new();
        line.connect(ctl.clone(), 5);
        assert_eq!(ctl.sources.borrow().len(), 1);
        assert_eq!(line.end_of_interrupt(), None, "no hook: no resample");
        let still_high = Rc::new(Cell::new(false));
        let s = Rc::clone(&still_high);
        line.set_eoi_hook(Rc::new(move || s.get()));
        line.raise();
        assert_eq!(*ctl.levels.borrow(), vec![(5, true)]);
        let src = ctl.sources.borrow()[0].1.clone().expect("source");
        assert_eq!(src.end_of_interrupt(), Some(false));
        assert!(!line.level(), "the hook's level is the line's level");
        assert_eq!(ctl.levels.borrow().len(), 1, "not forwarded to the caller");
        still_high.set(true);
        assert_eq!(src.end_of_interrupt(), Some(true));
        assert!(line.level());
        line.disconnect();
        let sources = ctl.sources.borrow();
        assert!(
            matches!(sources.last(), Some((5, None))),
            "detach is announced"
        );
    }

    #[test]
    fn test_irq_line_forwards_only_changes() {
        let sink = RecordingSink::new(4);
        let line = IrqLine::new();
        line.connect(sink.clone(), 2);
        line.raise();
        line.raise();
        assert!(sink.level(2));
        assert_eq!(sink.changes(), 1);
        line.lower();
        assert!(!sink.level(2));
        assert_eq!(sink.changes(), 2);
    }

    #[test]
    fn test_irq_line_connect_forwards_current_level_and_rewire_lowers_old() {
        let a = RecordingSink::new(1);
        let b = RecordingSink::new(1);
        let line = IrqLine::new();
        line.raise();
        line.connect(a.clone(), 0);
        assert!(a.level(0));
        line.connect(b.clone(), 0);
        assert!(!a.level(0));
        assert!(b.level(0));
    }

    #[test]
    fn test_irq_line_clones_share_state() {
        let sink = RecordingSink::new(1);
        let line = IrqLine::new();
        let held_by_device = line.clone();
        line.connect(sink.clone(), 0);
        held_by_device.pulse();
        assert_eq!(sink.changes(), 2);
        assert!(!sink.level(0));
    }
}
