//! The main loop: harts run in deterministic round-robin time slices; between slices expired
//! timers fire, chardev input is handed to devices, and events posted by I/O threads (console
//! input, QMP commands) run. When every hart waits for an interrupt the loop sleeps until the
//! next timer or event (or, with `-icount`, jumps virtual time to the next deadline).

use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::Duration;

use breadboard_core::{ClockMode, MachineRequest};
use breadboard_riscv::{Hart, RunExit, csr};

use crate::bus::SystemBus;
use crate::machine::{Machine, Phase};
use crate::qmp_ops::{NoHooks, RunEvent, RunHooks};

/// A closure run on the main loop with the machine (QMP commands and the like).
pub type MachineCall = Box<dyn FnOnce(&mut Machine) + Send>;

/// Something an I/O thread tells the main loop.
pub enum Event {
    /// Bytes arrived for a chardev.
    CharInput {
        /// Chardev id.
        chardev: String,
        /// The bytes.
        data: Vec<u8>,
    },
    /// Stop the machine and exit (Ctrl-A x, QMP `quit`).
    Quit,
    /// Run a closure on the machine.
    Call(MachineCall),
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::CharInput { chardev, data } => {
                write!(f, "CharInput({chardev}, {} bytes)", data.len())
            }
            Event::Quit => f.write_str("Quit"),
            Event::Call(_) => f.write_str("Call"),
        }
    }
}

/// Why the main loop returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// The guest powered off; the process exit code (finisher code, 0 for `poweroff`).
    Shutdown(i32),
    /// The user quit.
    Quit,
    /// Every event source is gone and no hart can ever run again.
    Deadlock,
}

/// Runs one hart for up to `budget` instructions on `bus`. With `-icount` the budget is cut to
/// the next timer deadline, virtual time follows the hart at every MMIO access
/// (`Bus::sync_instret`) and ends exactly at the instructions it retired.
pub(crate) fn run_hart_for(
    hart: &mut breadboard_riscv::Hart,
    bus: &mut SystemBus<'_>,
    clock: &breadboard_core::Clock,
    timers: &breadboard_core::TimerQueue,
    budget: u64,
) -> RunExit {
    let own = hart_timer_deadline(hart, bus.mtime, clock, bus.timebase_hz);
    // The slice ends at the next timer deadline: exactly under -icount, by the harts' measured
    // pace in host mode (QEMU kicks its vCPU from a host timer instead).
    let budget = match timers.next_deadline().into_iter().chain(own).min() {
        Some(d) => clock.estimate_insns_until(d).min(budget),
        None => budget,
    };
    let before = hart.instret();
    let t0 = clock.now();
    bus.icount_base = clock.insns_to_ns(0).map(|_| (t0, before));
    // A timer the guest arms for before the slice's end cuts it: the hart is kicked and the
    // next slice ends at the deadline.
    timers.begin_slice(t0.saturating_add(clock.estimate_insns_to_ns(budget)));
    let exit = hart.run(bus, budget);
    timers.end_slice();
    let done = hart.instret().wrapping_sub(before);
    match clock.insns_to_ns(done) {
        Some(d) => clock.set_icount_time(t0.saturating_add(d)),
        None => clock.note_run(done, clock.now().saturating_sub(t0)),
    }
    exit
}

/// Instructions per hart per slice in host-time mode: about 0.1-0.5 ms of guest time, short
/// enough for timer accuracy, long enough that the loop's own cost is noise.
pub const SLICE: u64 = 100_000;

/// The slice while a device with an I/O thread (vfio) is present: its notifications are
/// delivered between slices, so this bounds their latency for a hart that polls instead of
/// waiting in `wfi` (about 30 us of guest time at full speed).
pub const SLICE_IO: u64 = 10_000;

impl Machine {
    /// Hands queued chardev input to the devices that own the chardevs.
    pub fn pump_chardevs(&mut self) {
        for c in self.chardevs.all() {
            if c.pending_input() == 0 {
                continue;
            }
            let Some(owner) = c.owner() else { continue };
            let Some(e) = self.device(owner) else {
                continue;
            };
            if let Ok(mut d) = e.cell.try_borrow_mut() {
                let n = d.can_receive();
                if n > 0 {
                    let data = c.take_input(n);
                    d.receive(&data);
                }
            }
        }
    }

    /// Fires every expired timer.
    pub fn fire_timers(&mut self) {
        self.deliver_notifications();
        let now = self.clock.now();
        while let Some((owner, token)) = self.timers.pop_expired(now) {
            if let Some(e) = self.device(owner)
                && let Ok(mut d) = e.cell.try_borrow_mut()
            {
                d.timer(token);
            }
        }
    }

    /// Hands devices what their I/O threads posted (and clears the harts' kick flag).
    pub fn deliver_notifications(&mut self) {
        for (owner, token) in self.timers.take_notifications() {
            if let Some(e) = self.device(owner)
                && let Ok(mut d) = e.cell.try_borrow_mut()
            {
                d.notify(token);
            }
        }
    }

    /// Runs every hart for one slice. Returns whether all of them are idle (WFI) and any
    /// machine request a device made.
    pub fn run_slice(&mut self, budget: u64) -> (bool, Option<MachineRequest>) {
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
        let mut all_idle = true;
        for hart in &mut self.harts {
            let exit = run_hart_for(hart, &mut bus, &self.clock, &self.timers, budget);
            if exit != RunExit::Wfi {
                all_idle = false;
            }
            if bus.request.is_some() {
                break;
            }
        }
        (all_idle, bus.request)
    }

    /// The first CLINT's `mtime`, which the `time` CSR reads. Found once and cached: every
    /// slice (and every debugger step) needs it, and finding it visits every device. Adding or
    /// removing a device clears the cache.
    pub fn mtime_source(&self) -> Option<std::rc::Rc<breadboard_devices::clint::MtimeSource>> {
        if let Some(cached) = self.mtime_cache.borrow().as_ref() {
            return cached.clone();
        }
        let found = self.device_ids().find_map(|id| {
            let e = self.device(id)?;
            let guard = e.cell.try_borrow().ok()?;
            // Deref to the device itself: `as_any` on the Box would downcast the Box.
            let d: &dyn breadboard_core::Device = &**guard;
            d.as_any()
                .downcast_ref::<breadboard_devices::clint::Clint>()
                .map(|c| c.time_source())
        });
        *self.mtime_cache.borrow_mut() = Some(found.clone());
        found
    }

    /// Lets devices' I/O threads wake the loop while it sleeps: a notification sends `tx` an
    /// empty call. Only worth it when a device holds a notifier (see
    /// [`breadboard_core::TimerQueue::has_notifiers`]); otherwise keeping a sender would hide
    /// that no event source is left.
    pub fn set_event_sender(&self, tx: std::sync::mpsc::Sender<Event>) {
        self.timers.set_waker(Box::new(move || {
            // A closed channel means the loop is gone; nothing to wake.
            let _ = tx.send(Event::Call(Box::new(|_| {})));
        }));
    }

    /// Runs the machine until shutdown or quit.
    pub fn run(&mut self, events: &Receiver<Event>, no_reboot: bool) -> Exit {
        self.run_with(events, no_reboot, &mut NoHooks)
    }

    /// Runs the machine until shutdown or quit. Before every slice `hooks` says whether the
    /// harts may run (QMP `stop`/`cont`, `-S`); it hears about guest resets and shutdowns.
    pub fn run_with(
        &mut self,
        events: &Receiver<Event>,
        no_reboot: bool,
        hooks: &mut dyn RunHooks,
    ) -> Exit {
        let mut paused = false;
        loop {
            loop {
                match events.try_recv() {
                    Ok(ev) => {
                        if let Some(x) = self.handle_event(ev, &mut paused) {
                            return x;
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => break,
                }
            }
            self.pump_chardevs();
            self.fire_timers();
            if paused || self.phase != Phase::Ready || !hooks.may_run() {
                match events.recv() {
                    Ok(ev) => {
                        if let Some(x) = self.handle_event(ev, &mut paused) {
                            return x;
                        }
                    }
                    Err(_) => return Exit::Deadlock,
                }
                continue;
            }
            let slice = if self.timers.has_notifiers() {
                SLICE_IO
            } else {
                SLICE
            };
            let (idle, request) = self.run_slice(slice);
            match request {
                Some(MachineRequest::Shutdown { code }) => {
                    hooks.event(RunEvent::Shutdown {
                        guest: true,
                        reason: "guest-shutdown",
                    });
                    return Exit::Shutdown(code);
                }
                Some(MachineRequest::Reset) if no_reboot => {
                    hooks.event(RunEvent::Shutdown {
                        guest: true,
                        reason: "guest-reset",
                    });
                    return Exit::Shutdown(0);
                }
                Some(MachineRequest::Reset) => {
                    if let Err(e) = self.system_reset() {
                        tracing::error!("system reset failed: {e}");
                        return Exit::Shutdown(1);
                    }
                    hooks.event(RunEvent::Reset {
                        guest: true,
                        reason: "guest-reset",
                    });
                    continue;
                }
                None => {}
            }
            if idle {
                self.fire_timers();
                // Sleep only if no waiting hart can resume. One can when a timer that expired
                // during the slice just fired (CLINT MTIP), or when a hart later in the slice
                // raised an interrupt for one already stopped in wfi (an IPI through the CLINT's
                // msip, a PLIC line): otherwise it would wait for an unrelated deadline or
                // event, or for ever ("nothing can wake it").
                if self.harts.iter().any(can_resume) {
                    continue;
                }
                let (mt, hz) = (self.mtime_source(), self.desc.cpu.timebase_frequency);
                let deadline = self
                    .harts
                    .iter()
                    .filter_map(|h| hart_timer_deadline(h, mt.as_deref(), &self.clock, hz))
                    .chain(self.timers.next_deadline())
                    .min();
                match self.clock.mode() {
                    ClockMode::Icount { .. } => {
                        if let Some(d) = deadline {
                            self.clock.warp_to(d);
                            continue;
                        }
                    }
                    ClockMode::Host => {}
                }
                if self
                    .chardevs
                    .all()
                    .iter()
                    .any(|c| c.pending_input() > 0 && c.owner().is_some())
                {
                    continue;
                }
                let wait =
                    deadline.map(|d| Duration::from_nanos(d.saturating_sub(self.clock.now())));
                let ev = match wait {
                    Some(w) => match events.recv_timeout(w) {
                        Ok(ev) => Some(ev),
                        Err(RecvTimeoutError::Timeout) => None,
                        Err(RecvTimeoutError::Disconnected) => {
                            std::thread::sleep(w);
                            None
                        }
                    },
                    None => match events.recv() {
                        Ok(ev) => Some(ev),
                        Err(_) => return Exit::Deadlock,
                    },
                };
                if let Some(ev) = ev
                    && let Some(x) = self.handle_event(ev, &mut paused)
                {
                    return x;
                }
            }
        }
    }

    fn handle_event(&mut self, ev: Event, paused: &mut bool) -> Option<Exit> {
        match ev {
            Event::CharInput { chardev, data } => {
                if let Some(c) = self.chardevs.get(&chardev) {
                    c.push_input(&data);
                }
                None
            }
            Event::Quit => Some(Exit::Quit),
            Event::Call(f) => {
                f(self);
                let _ = paused;
                None
            }
        }
    }

    /// Resets the whole machine and reloads its images (guest-requested reboot).
    pub fn system_reset(&mut self) -> Result<(), crate::machine::MachineError> {
        self.load_all()
    }
}

/// When `hart`'s own timer (Sstc `stimecmp`) raises STIP, in virtual ns, if it is armed: the
/// clock tick at which `mtime` reaches it, as the CLINT computes `mtimecmp` deadlines.
fn hart_timer_deadline(
    hart: &Hart,
    mtime: Option<&breadboard_devices::clint::MtimeSource>,
    clock: &breadboard_core::Clock,
    hz: u64,
) -> Option<u64> {
    let cmp = hart.timer_wakeup()?;
    let ticks = clock.ticks(hz);
    let now = mtime.map_or(ticks, |m| m.mtime());
    let due =
        breadboard_core::clock::ticks_to_ns(ticks.saturating_add(cmp.saturating_sub(now)), hz);
    (due != u64::MAX).then_some(due)
}

/// Whether a hart stopped in `wfi` resumes when run: an enabled interrupt is pending, whether or
/// not it will be taken (Privileged ISA §3.3.3).
fn can_resume(hart: &Hart) -> bool {
    let mip = hart.read_csr(csr::MIP, 0).unwrap_or(0);
    let mie = hart.read_csr(csr::MIE, 0).unwrap_or(0);
    mip & mie != 0
}
