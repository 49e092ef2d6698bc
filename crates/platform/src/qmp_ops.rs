//! Machine operations a monitor (QMP, a qmp-shell script) needs beyond building one: the
//! preconfig phases (`-preconfig` stops in `accel-created`, `x-machine-init` moves to
//! `initialized`), default CPU wiring of interrupt controllers, devices added after `ready`
//! but before the guest ran, pausing virtual time, and [`RunHooks`], through which the main
//! loop asks whether it may run and reports guest resets and shutdowns.
//!
//! Preconfig note: [`Machine::create`] realizes the board in one step. Under `-preconfig` the
//! board is realized eagerly and the machine *reports* `accel-created` until `x-machine-init`;
//! board devices are therefore visible to `qom-list` a phase early (QEMU creates them at
//! `x-machine-init`). Nothing else can tell: every command that needs `initialized` is refused
//! until then.
// Reads guest, file, socket or plugin input: no panicking shortcuts (SECURITY.md, issue 9).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use breadboard_core::DeviceId;

use crate::fdt::{self, Chosen};
use crate::machine::{DeviceOption, Machine, MachineError, Phase, WireTarget};

/// Something the main loop tells the monitors (QEMU's `RESET` and `SHUTDOWN` events).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunEvent {
    /// The machine was reset.
    Reset {
        /// Whether the guest asked for it.
        guest: bool,
        /// QEMU's `ShutdownCause` name (`guest-reset`, `host-qmp-system-reset`).
        reason: &'static str,
    },
    /// The machine is shutting down.
    Shutdown {
        /// Whether the guest asked for it.
        guest: bool,
        /// QEMU's `ShutdownCause` name (`guest-shutdown`, `guest-reset` under `-no-reboot`,
        /// `host-qmp-quit`, `host-signal`).
        reason: &'static str,
    },
}

/// What the main loop asks of, and tells, whoever controls the machine.
pub trait RunHooks {
    /// Called before every time slice of a `ready` machine. `false` keeps the harts stopped
    /// (QMP `stop`, `-S`); the loop then waits for the next event. `true` means the guest runs
    /// now.
    fn may_run(&mut self) -> bool {
        true
    }

    /// A reset or shutdown happened.
    fn event(&mut self, _ev: RunEvent) {}
}

/// Hooks that never stop the machine and ignore events (no monitor).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoHooks;

impl RunHooks for NoHooks {}

/// QEMU's `mip` bit of the machine external interrupt, which interrupt controllers drive.
pub const MIP_MEIP: u32 = 11;

impl Machine {
    /// Puts a freshly created machine into preconfig: it reports `accel-created` until
    /// [`Machine::machine_init`] (see the module note).
    pub fn enter_preconfig(&mut self) -> Result<(), MachineError> {
        if self.phase != Phase::Initialized {
            return Err(self.phase_error("-preconfig", Phase::Initialized));
        }
        self.phase = Phase::AccelCreated;
        Ok(())
    }

    /// `x-machine-init`: `accel-created` → `initialized`.
    pub fn machine_init(&mut self) -> Result<(), MachineError> {
        if self.phase != Phase::AccelCreated {
            return Err(self.phase_error("x-machine-init", Phase::AccelCreated));
        }
        self.phase = Phase::Initialized;
        Ok(())
    }

    fn phase_error(&self, what: &str, need: Phase) -> MachineError {
        MachineError::Phase {
            what: what.to_string(),
            need: need.qemu_name(),
            now: self.phase.qemu_name(),
        }
    }

    /// Wires every still unwired output that a device says belongs to a hart (an OpenTitan
    /// PLIC's target 0 → hart 0 MEIP), as QEMU's interrupt controllers claim their harts'
    /// lines at realize. Called before binding (`x-exit-preconfig`, `finish`).
    pub fn wire_default_cpu_irqs(&mut self) -> Result<(), MachineError> {
        let mut todo: Vec<(DeviceId, usize, WireTarget)> = Vec::new();
        for id in self.device_ids() {
            let Some(e) = self.device(id) else { continue };
            let Ok(d) = e.cell.try_borrow() else { continue };
            for (out, hart, bit) in d.default_cpu_irqs() {
                if e.wires.get(out).is_some_and(Option::is_none)
                    && (hart as usize) < self.harts.len()
                {
                    todo.push((id, out, WireTarget::Cpu { hart, bit }));
                }
            }
        }
        for (id, out, target) in todo {
            self.connect(id, out, target)?;
        }
        Ok(())
    }

    /// `device_add` after `ready`, allowed only while the guest has not run (the caller
    /// checks that) and only for types the machine's allow list has: the device is added,
    /// placed on the platform bus, and the device tree rewritten and reloaded so the guest
    /// finds it when it starts.
    pub fn add_device_before_start(
        &mut self,
        opt: &DeviceOption,
    ) -> Result<DeviceId, MachineError> {
        if self.phase != Phase::Ready {
            return self.add_user_device(opt);
        }
        let id = self.add_user_device(opt)?;
        let rebuilt = self.bind().and_then(|()| self.rebuild_boot_dtb());
        if let Err(e) = rebuilt {
            self.remove_device(id);
            return Err(e);
        }
        Ok(id)
    }

    /// Regenerates the DTB of a `ready` machine (unless the user gave one) and reloads every
    /// image, exactly as at first boot.
    fn rebuild_boot_dtb(&mut self) -> Result<(), MachineError> {
        let Some(mut st) = self.boot.clone() else {
            return Ok(());
        };
        if st.opts.dtb.is_none() {
            let chosen = Chosen {
                bootargs: st.opts.append.clone(),
                initrd: st.layout.initrd,
            };
            let dtb = fdt::generate(self, &chosen)?;
            if let (Some((base, size)), Some(_)) = (self.ram, st.layout.dtb) {
                let top = base.saturating_add(size);
                let limit = if base < 3 << 30 {
                    top.min(3 << 30)
                } else {
                    top
                };
                let addr = limit
                    .checked_sub(dtb.len() as u64)
                    .map(|a| a & !((2 << 20) - 1))
                    .filter(|&a| a >= base)
                    .ok_or_else(|| {
                        MachineError::Boot("the device tree does not fit in RAM".into())
                    })?;
                st.layout.dtb = Some((addr, dtb.len() as u64));
            }
            st.dtb = dtb;
        }
        self.boot = Some(st);
        self.load_all()
    }

    /// Stops virtual time (QMP `stop`).
    pub fn pause_clock(&self) {
        self.clock.pause();
    }

    /// Restarts virtual time (QMP `cont`).
    pub fn resume_clock(&self) {
        self.clock.resume();
    }

    /// `system_reset` from a monitor: devices, harts and images back to power-on.
    pub fn monitor_reset(&mut self) -> Result<(), MachineError> {
        if self.phase != Phase::Ready {
            return Err(self.phase_error("system_reset", Phase::Ready));
        }
        self.system_reset()
    }
}
