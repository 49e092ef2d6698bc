//! Debugger access to a machine (the GDB stub): one hart at a time, with the same bus and
//! `-icount` time bookkeeping as [`Machine::run_slice`].

use breadboard_core::MachineRequest;
use breadboard_riscv::{Hart, RunExit};

use crate::bus::SystemBus;
use crate::machine::Machine;

impl Machine {
    /// Calls `f` with hart `index` and a bus onto the machine (debugger register and memory
    /// access). `None` if there is no such hart.
    pub fn with_hart_bus<R>(
        &mut self,
        index: usize,
        f: impl FnOnce(&mut Hart, &mut SystemBus<'_>) -> R,
    ) -> Option<R> {
        let timebase_hz = self.desc.cpu.timebase_frequency;
        let mtime = self.mtime_source();
        let mut bus = SystemBus {
            space: &self.space,
            clock: &self.clock,
            timebase_hz,
            mtime: mtime.as_deref(),
            code_pages: &self.code_pages,
            request: None,
            icount_base: None,
        };
        let hart = self.harts.get_mut(index)?;
        Some(f(hart, &mut bus))
    }

    /// The `mtime` value the `time` CSR reads now.
    pub fn debug_mtime(&mut self) -> u64 {
        use breadboard_riscv::Bus;
        self.with_hart_bus(0, |_, bus| bus.mtime()).unwrap_or(0)
    }

    /// Runs hart `index` alone for up to `budget` instructions (single step, breakpoint
    /// checks), keeping `-icount` virtual time exactly as a slice would. Returns how it stopped
    /// and any machine request (shutdown, reset) a device made.
    pub fn run_hart(&mut self, index: usize, budget: u64) -> (RunExit, Option<MachineRequest>) {
        // A pending notification would end the run before its first instruction.
        self.deliver_notifications();
        let timebase_hz = self.desc.cpu.timebase_frequency;
        let mtime = self.mtime_source();
        let mut bus = SystemBus {
            space: &self.space,
            clock: &self.clock,
            timebase_hz,
            mtime: mtime.as_deref(),
            code_pages: &self.code_pages,
            request: None,
            icount_base: None,
        };
        let Some(hart) = self.harts.get_mut(index) else {
            return (RunExit::Wfi, None);
        };
        let exit = crate::run::run_hart_for(hart, &mut bus, &self.clock, &self.timers, budget);
        (exit, bus.request)
    }
}
