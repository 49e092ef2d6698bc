//! Interrupt lines of a vfio-user platform device: the client's eventfds and the kernel
//! vfio-platform masking rules (`drivers/vfio/platform/vfio_platform_irq.c` semantics).
//!
//! Level line: when it goes high (or is high when it becomes unmasked, or when an eventfd is
//! attached) the eventfd is signalled and the line is masked automatically; while masked nothing
//! more is signalled. `ACTION_UNMASK` clears the mask and, if the line is still high, signals
//! (and masks) again — the guest's EOI re-delivers a still-pending level interrupt.
//!
//! Edge line: every pulse signals unless the client masked the line; pulses while masked are
//! remembered as one pending edge, delivered on unmask.

use std::os::fd::{AsFd, OwnedFd};

use super::{IrqKind, IrqOutput};

/// Why a `SET_IRQS` request was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IrqError {
    /// The IRQ index does not exist.
    #[error("no IRQ index {0}")]
    NoIndex(u32),
    /// `start`/`count` do not fit the index (every platform IRQ index has count 1).
    #[error("sub-index range {start}+{count} is outside IRQ index {index}")]
    BadRange {
        /// IRQ index.
        index: u32,
        /// First sub-index.
        start: u32,
        /// Number of sub-indices.
        count: u32,
    },
    /// The data/action combination is not supported.
    #[error("unsupported SET_IRQS flags {0:#x}")]
    Unsupported(u32),
    /// A file descriptor given as an eventfd is something else.
    #[error("the file descriptor for IRQ {0} is not an eventfd")]
    NotEventfd(u32),
    /// The number of fds or bools does not match `count`.
    #[error("expected {expected} data items, got {got}")]
    DataCount {
        /// `count` from the request.
        expected: u32,
        /// Items received.
        got: usize,
    },
}

#[derive(Debug)]
struct Line {
    kind: IrqKind,
    /// The client's trigger eventfd (`ACTION_TRIGGER` + `DATA_EVENTFD`).
    trigger: Option<OwnedFd>,
    /// The client's unmask eventfd (`ACTION_UNMASK` + `DATA_EVENTFD`), polled by the server.
    unmask: Option<OwnedFd>,
    high: bool,
    masked: bool,
    /// An edge arrived while masked.
    pending: bool,
    /// Times the trigger eventfd was signalled (for tests and statistics).
    signals: u64,
}

/// The interrupt lines of one device and the client's view of them.
#[derive(Debug)]
pub struct IrqLines {
    lines: Vec<Line>,
}

impl IrqLines {
    /// Lines of the given kinds, all low, unmasked, without eventfds.
    pub fn new(kinds: &[IrqKind]) -> Self {
        let lines = kinds
            .iter()
            .map(|&kind| Line {
                kind,
                trigger: None,
                unmask: None,
                high: false,
                masked: false,
                pending: false,
                signals: 0,
            })
            .collect();
        Self { lines }
    }

    /// Number of lines.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// No lines at all.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The kind of line `index`.
    pub fn kind(&self, index: u32) -> Option<IrqKind> {
        self.lines.get(index as usize).map(|l| l.kind)
    }

    /// Whether line `index` is masked.
    pub fn is_masked(&self, index: u32) -> bool {
        self.lines.get(index as usize).is_some_and(|l| l.masked)
    }

    /// Whether line `index` is high (level lines).
    pub fn is_high(&self, index: u32) -> bool {
        self.lines.get(index as usize).is_some_and(|l| l.high)
    }

    /// How many times line `index`'s eventfd was signalled since the lines were created.
    pub fn signal_count(&self, index: u32) -> u64 {
        self.lines.get(index as usize).map_or(0, |l| l.signals)
    }

    fn line(&mut self, index: u32) -> Result<&mut Line, IrqError> {
        self.lines
            .get_mut(index as usize)
            .ok_or(IrqError::NoIndex(index))
    }

    /// Attach (or with `None` detach) the trigger eventfd of line `index`. A level line that is
    /// high and unmasked signals at once, as the kernel's handler runs when the IRQ is requested.
    pub fn set_trigger(&mut self, index: u32, fd: Option<OwnedFd>) -> Result<(), IrqError> {
        let line = self.line(index)?;
        line.trigger = fd;
        if line.trigger.is_some() {
            line.deliver_if_due();
        }
        Ok(())
    }

    /// Attach (or detach) an eventfd whose events unmask line `index`.
    pub fn set_unmask_fd(&mut self, index: u32, fd: Option<OwnedFd>) -> Result<(), IrqError> {
        self.line(index)?.unmask = fd;
        Ok(())
    }

    /// The unmask eventfds to poll, with their line index.
    pub fn unmask_fds(&self) -> impl Iterator<Item = (u32, std::os::fd::BorrowedFd<'_>)> {
        self.lines
            .iter()
            .enumerate()
            .filter_map(|(i, l)| Some((u32::try_from(i).ok()?, l.unmask.as_ref()?.as_fd())))
    }

    /// `ACTION_MASK`.
    pub fn mask(&mut self, index: u32) -> Result<(), IrqError> {
        self.line(index)?.masked = true;
        Ok(())
    }

    /// `ACTION_UNMASK`: clear the mask; a still-high level line (or a pending edge) signals.
    pub fn unmask(&mut self, index: u32) -> Result<(), IrqError> {
        let line = self.line(index)?;
        line.masked = false;
        line.deliver_if_due();
        Ok(())
    }

    /// `ACTION_TRIGGER` without eventfd: the client asks for a signal (a loopback test).
    pub fn client_trigger(&mut self, index: u32) -> Result<(), IrqError> {
        let line = self.line(index)?;
        line.signal();
        Ok(())
    }

    /// Disable line `index`: drop its eventfds and clear its mask (the line level is the
    /// device's and is kept).
    pub fn disable(&mut self, index: u32) -> Result<(), IrqError> {
        let line = self.line(index)?;
        line.trigger = None;
        line.unmask = None;
        line.masked = false;
        line.pending = false;
        Ok(())
    }

    /// A client went away: drop every eventfd and mask; levels are kept (device state).
    pub fn disconnect(&mut self) {
        for line in &mut self.lines {
            line.trigger = None;
            line.unmask = None;
            line.masked = false;
            line.pending = false;
        }
    }
}

impl Line {
    /// Signal the trigger eventfd if there is one. A failed write (the counter would overflow,
    /// or the client gave us something that is not an eventfd) is logged and ignored: the
    /// device must not stop because the client's fd is odd.
    fn signal(&mut self) -> bool {
        let Some(fd) = &self.trigger else {
            return false;
        };
        match rustix::io::write(fd, &1u64.to_ne_bytes()) {
            Ok(_) => {
                self.signals = self.signals.wrapping_add(1);
                true
            }
            Err(e) => {
                tracing::warn!(target: "vfio_user", "IRQ eventfd write failed: {e}");
                false
            }
        }
    }

    /// Deliver what is due on an unmasked line: a high level (then automask) or a pending edge.
    fn deliver_if_due(&mut self) {
        if self.masked {
            return;
        }
        match self.kind {
            IrqKind::Level => {
                if self.high && self.signal() {
                    self.masked = true;
                }
            }
            IrqKind::Edge => {
                if self.pending && self.signal() {
                    self.pending = false;
                }
            }
        }
    }
}

impl IrqOutput for IrqLines {
    fn set_level(&mut self, index: u32, high: bool) {
        let Some(line) = self.lines.get_mut(index as usize) else {
            tracing::warn!(target: "vfio_user", "device set missing IRQ {index}");
            return;
        };
        let rising = high && !line.high;
        line.high = high;
        match line.kind {
            IrqKind::Level => {
                if rising {
                    line.deliver_if_due();
                }
            }
            // A level driven on an edge line: its rising edges are pulses.
            IrqKind::Edge => {
                if rising {
                    line.pending = true;
                    line.deliver_if_due();
                }
            }
        }
    }

    fn pulse(&mut self, index: u32) {
        let Some(line) = self.lines.get_mut(index as usize) else {
            tracing::warn!(target: "vfio_user", "device pulsed missing IRQ {index}");
            return;
        };
        match line.kind {
            IrqKind::Edge => {
                line.pending = true;
                line.deliver_if_due();
            }
            // A pulse on a level line: high then low; signalled once if unmasked.
            IrqKind::Level => {
                if !line.high {
                    line.high = true;
                    line.deliver_if_due();
                    line.high = false;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::event::{EventfdFlags, eventfd};

    fn efd() -> (OwnedFd, OwnedFd) {
        let fd = eventfd(0, EventfdFlags::NONBLOCK | EventfdFlags::CLOEXEC).unwrap();
        let dup = fd.try_clone().unwrap();
        (fd, dup)
    }

    /// Reads the eventfd counter (0 if never signalled since the last read).
    fn take(fd: &OwnedFd) -> u64 {
        let mut b = [0u8; 8];
        match rustix::io::read(fd, &mut b) {
            Ok(8) => u64::from_ne_bytes(b),
            _ => 0,
        }
    }

    fn level_line() -> (IrqLines, OwnedFd) {
        let mut irqs = IrqLines::new(&[IrqKind::Level]);
        let (fd, reader) = efd();
        irqs.set_trigger(0, Some(fd)).unwrap();
        (irqs, reader)
    }

    #[test]
    fn test_level_rising_signals_once_and_automasks() {
        let (mut irqs, ev) = level_line();
        irqs.set_level(0, true);
        assert_eq!(take(&ev), 1);
        assert!(irqs.is_masked(0));
        // Still masked: lowering and raising again signals nothing.
        irqs.set_level(0, false);
        irqs.set_level(0, true);
        assert_eq!(take(&ev), 0);
    }

    #[test]
    fn test_level_unmask_while_high_signals_again() {
        let (mut irqs, ev) = level_line();
        irqs.set_level(0, true);
        assert_eq!(take(&ev), 1);
        irqs.unmask(0).unwrap();
        assert_eq!(take(&ev), 1);
        assert!(irqs.is_masked(0), "re-delivery automasks again");
    }

    #[test]
    fn test_level_unmask_after_low_stays_quiet_until_next_rise() {
        let (mut irqs, ev) = level_line();
        irqs.set_level(0, true);
        irqs.set_level(0, false);
        assert_eq!(take(&ev), 1);
        irqs.unmask(0).unwrap();
        assert_eq!(take(&ev), 0);
        assert!(!irqs.is_masked(0));
        irqs.set_level(0, true);
        assert_eq!(take(&ev), 1);
    }

    #[test]
    fn test_level_high_when_eventfd_attached_signals_immediately() {
        let mut irqs = IrqLines::new(&[IrqKind::Level]);
        irqs.set_level(0, true);
        let (fd, ev) = efd();
        irqs.set_trigger(0, Some(fd)).unwrap();
        assert_eq!(take(&ev), 1);
        assert!(irqs.is_masked(0));
    }

    #[test]
    fn test_level_client_mask_blocks_rising_edge() {
        let (mut irqs, ev) = level_line();
        irqs.mask(0).unwrap();
        irqs.set_level(0, true);
        assert_eq!(take(&ev), 0);
        irqs.unmask(0).unwrap();
        assert_eq!(take(&ev), 1);
    }

    #[test]
    fn test_edge_signals_every_pulse() {
        let mut irqs = IrqLines::new(&[IrqKind::Edge]);
        let (fd, ev) = efd();
        irqs.set_trigger(0, Some(fd)).unwrap();
        irqs.pulse(0);
        irqs.pulse(0);
        irqs.pulse(0);
        assert_eq!(take(&ev), 3);
        assert!(!irqs.is_masked(0));
    }

    #[test]
    fn test_edge_pulses_while_masked_collapse_into_one_on_unmask() {
        let mut irqs = IrqLines::new(&[IrqKind::Edge]);
        let (fd, ev) = efd();
        irqs.set_trigger(0, Some(fd)).unwrap();
        irqs.mask(0).unwrap();
        irqs.pulse(0);
        irqs.pulse(0);
        assert_eq!(take(&ev), 0);
        irqs.unmask(0).unwrap();
        assert_eq!(take(&ev), 1);
    }

    #[test]
    fn test_disable_drops_eventfd() {
        let (mut irqs, ev) = level_line();
        irqs.disable(0).unwrap();
        irqs.set_level(0, true);
        assert_eq!(take(&ev), 0);
        assert_eq!(irqs.signal_count(0), 0);
    }

    #[test]
    fn test_client_trigger_signals_without_masking() {
        let (mut irqs, ev) = level_line();
        irqs.client_trigger(0).unwrap();
        assert_eq!(take(&ev), 1);
        assert!(!irqs.is_masked(0));
    }

    #[test]
    fn test_bad_index_is_an_error_and_device_side_is_ignored() {
        let mut irqs = IrqLines::new(&[IrqKind::Level]);
        assert_eq!(irqs.unmask(3), Err(IrqError::NoIndex(3)));
        irqs.set_level(7, true);
        irqs.pulse(7);
        assert!(!irqs.is_high(0));
    }

    #[test]
    fn test_signal_to_non_eventfd_is_survived() {
        // A client may hand us any fd; a read-only file refuses writes.
        let r = OwnedFd::from(std::fs::File::open("/dev/null").unwrap());
        let mut irqs = IrqLines::new(&[IrqKind::Level]);
        irqs.set_trigger(0, Some(r)).unwrap();
        irqs.set_level(0, true);
        assert_eq!(irqs.signal_count(0), 0);
        assert!(!irqs.is_masked(0), "nothing delivered, nothing masked");
    }
}
