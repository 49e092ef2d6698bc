//! A machine built from data, in explicit phases:
//!
//! 1. **create** — description loaded, clock, harts and object tree made (`MachineCreated`,
//!    `AccelCreated` in QEMU's terms);
//! 2. **realize** — board devices from the description, then `-device`/`device_add` devices,
//!    each validated against its type's property schema and realized (`Initialized`);
//! 3. **bind** — fixed regions mapped, unmapped devices placed on the platform bus, IRQs wired;
//! 4. **device tree** — every device writes its own node;
//! 5. **load** — firmware, kernel, initrd and the DTB are copied into memory, devices and
//!    harts reset (`Ready`).
//!
//! [`Machine::phase_log`] records the order, and a test checks it.

use std::collections::BTreeMap;
use std::rc::Rc;

use breadboard_core::device::DeviceSink;
use breadboard_core::object::{ObjectError, ObjectKind, ObjectTree};
use breadboard_core::props::{PropValue, RawValue};
use breadboard_core::{
    AddressSpace, ChardevRegistry, Clock, ClockMode, DeviceCell, DeviceCtx, DeviceError, DeviceId,
    DriveRegistry, GuestMemory, IrqLine, IrqSink, MemoryError, Props, Region, RegionKind,
    RegionSpec, TimerHandle, TimerQueue, TypeRegistry,
};
use breadboard_riscv::{CodePages, Hart, HartIrqs};
use thiserror::Error;

use crate::cpus::{self, CpuModel};
use crate::description::{Description, DescriptionError, IrqRef, TomlValue, parse_irq_ref};

/// QEMU's machine phases, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Nothing yet.
    NoMachine,
    /// Description loaded, harts made.
    MachineCreated,
    /// Execution engine ready.
    AccelCreated,
    /// Board devices realized; more may be added and wired.
    Initialized,
    /// Bound, device tree written, images loaded: the guest may run.
    Ready,
}

impl Phase {
    /// QEMU's name (`query-machine-phase`).
    pub fn qemu_name(self) -> &'static str {
        match self {
            Phase::NoMachine => "no-machine",
            Phase::MachineCreated => "machine-created",
            Phase::AccelCreated => "accel-created",
            Phase::Initialized => "initialized",
            Phase::Ready => "ready",
        }
    }
}

/// Errors building or changing a machine. Each names the thing at fault.
#[derive(Debug, Error)]
pub enum MachineError {
    /// The description.
    #[error(transparent)]
    Description(#[from] DescriptionError),
    /// A plugin the description names was refused (nothing of it is registered).
    #[error(transparent)]
    Plugin(#[from] breadboard_plugin_host::PluginError),
    /// `-device`/`device_add` of a type nobody registered.
    #[error("'{0}' is not a valid device model name")]
    UnknownType(String),
    /// A type that may not be created by users.
    #[error(
        "Parameter 'driver' expects a pluggable device type: '{ty}' can't be added to machine '{machine}'"
    )]
    NotCreatable {
        /// Type.
        ty: String,
        /// Machine.
        machine: String,
    },
    /// A type not in the machine's allow list.
    #[error("device type '{ty}' is not allowed on machine '{machine}'")]
    NotAllowed {
        /// Type.
        ty: String,
        /// Machine.
        machine: String,
    },
    /// The device refused to realize, or a property was wrong (the cause is the source).
    #[error("{name}")]
    Device {
        /// Device name or id.
        name: String,
        /// Cause.
        #[source]
        source: DeviceError,
    },
    /// Object tree.
    #[error(transparent)]
    Object(#[from] ObjectError),
    /// Mapping.
    #[error(transparent)]
    Memory(#[from] MemoryError),
    /// `-cpu` of an unknown model.
    #[error("unable to find CPU model '{0}' (use -cpu help)")]
    UnknownCpu(String),
    /// Too many or too few harts.
    #[error("Invalid SMP CPUs {n}. The max CPUs supported by machine '{machine}' is {max}")]
    Smp {
        /// Requested.
        n: u32,
        /// Limit.
        max: u32,
        /// Machine.
        machine: String,
    },
    /// A wire or a map that names something impossible.
    #[error("{0}")]
    Wiring(String),
    /// The platform bus has no room.
    #[error("platform bus full: no free {size:#x}-byte window for device '{device}'")]
    BusFull {
        /// Device.
        device: String,
        /// Bytes it needed.
        size: u64,
    },
    /// The platform bus has no IRQ left.
    #[error("platform bus out of IRQs: device '{device}' needs {needed} more")]
    NoIrqs {
        /// Device.
        device: String,
        /// How many it needed.
        needed: usize,
    },
    /// A device with regions but no address and no platform bus.
    #[error("device '{device}' has no address and machine '{machine}' has no platform bus")]
    NoPlatformBus {
        /// Device.
        device: String,
        /// Machine.
        machine: String,
    },
    /// Operation not possible in this phase.
    #[error("{what} is permitted only in phase '{need}' (machine is '{now}')")]
    Phase {
        /// What was attempted.
        what: String,
        /// Phase required.
        need: &'static str,
        /// Phase now.
        now: &'static str,
    },
    /// Loading images.
    #[error(transparent)]
    Load(#[from] crate::loader::LoadError),
    /// Boot configuration problems (missing firmware, no RAM, …).
    #[error("{0}")]
    Boot(String),
    /// Device tree.
    #[error("device tree: {0}")]
    Fdt(String),
    /// `-machine dtb-board=FILE`.
    #[error(transparent)]
    DtbBoard(#[from] crate::dtb::BoardError),
}

/// Where an IRQ output goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireTarget {
    /// Input of a device.
    Device {
        /// Target device.
        id: DeviceId,
        /// Input number.
        input: u32,
    },
    /// mip bit of a hart.
    Cpu {
        /// Hart index.
        hart: u32,
        /// mip bit.
        bit: u32,
    },
}

/// A device of the machine and what the machine knows about it.
pub struct DeviceEntry {
    /// The device.
    pub cell: DeviceCell,
    /// Type name.
    pub type_name: String,
    /// QOM path.
    pub path: String,
    /// Name for messages (description name or `-device id`).
    pub label: String,
    /// Validated properties.
    pub props: Props,
    /// Regions, as the device declared them.
    pub regions: Vec<RegionSpec>,
    /// Address of each region once mapped.
    pub mapped: Vec<Option<u64>>,
    /// IRQ outputs.
    pub outputs: Vec<IrqLine>,
    /// Where each output goes.
    pub wires: Vec<Option<WireTarget>>,
    /// The sink delivering into this device's inputs.
    pub sink: Rc<DeviceSink>,
    /// Number of inputs.
    pub inputs: u32,
    /// Added by the user (`-device`, `device_add`): placed on the platform bus if unmapped.
    pub user: bool,
    /// Placed by the platform bus (its DT node goes under the bus node).
    pub on_platform_bus: bool,
}

/// A `-device` option, already split into its parts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceOption {
    /// Type.
    pub driver: String,
    /// `id=`.
    pub id: Option<String>,
    /// Other properties, in order.
    pub props: Vec<(String, String)>,
}

/// Everything needed to create a machine.
#[derive(Clone, Debug, Default)]
pub struct MachineOptions {
    /// Built-in name or description path.
    pub machine: String,
    /// `-cpu`.
    pub cpu: Option<String>,
    /// `-smp`.
    pub smp: Option<u32>,
    /// `-m` in bytes.
    pub ram_size: Option<u64>,
    /// `-icount shift=N`.
    pub icount_shift: Option<u32>,
}

struct CpuSink(Rc<HartIrqs>);

impl IrqSink for CpuSink {
    fn set_irq(&self, line: u32, level: bool) {
        self.0.set(line, level);
    }
}

/// A machine.
pub struct Machine {
    /// The description it was built from.
    pub desc: Description,
    /// Device types.
    pub registry: TypeRegistry,
    /// QOM tree.
    pub tree: ObjectTree,
    /// Devices, indexed by `DeviceId`.
    pub devices: Vec<Option<DeviceEntry>>,
    /// System address space.
    pub space: AddressSpace,
    /// RAM view for DMA.
    pub dma: Rc<GuestMemory>,
    /// Virtual clock.
    pub clock: Rc<Clock>,
    /// Timers.
    pub timers: Rc<TimerQueue>,
    /// Chardevs.
    pub chardevs: Rc<ChardevRegistry>,
    /// Block backends.
    pub drives: Rc<DriveRegistry>,
    /// CPU model of every hart.
    pub cpu: &'static CpuModel,
    /// Harts.
    pub harts: Vec<Hart>,
    /// Their interrupt inputs.
    pub hart_irqs: Vec<Rc<HartIrqs>>,
    /// Decoded-code page tracking shared by harts and DMA.
    pub code_pages: Rc<CodePages>,
    /// Current phase.
    pub phase: Phase,
    /// Phase steps in the order they ran (for tests and `-d` diagnostics).
    pub phase_log: Vec<&'static str>,
    /// Name lookup for description devices.
    names: BTreeMap<String, DeviceId>,
    /// Platform bus IRQ inputs handed out so far.
    pub(crate) pbus_irqs_used: u32,
    /// The platform bus window is fully occupied below this address (placement hint).
    pub(crate) pbus_full_below: u64,
    /// `mtime_source()` once found (`None` = not looked up since the device set changed).
    #[allow(clippy::type_complexity)]
    pub(crate) mtime_cache:
        std::cell::RefCell<Option<Option<Rc<breadboard_devices::clint::MtimeSource>>>>,
    /// RAM made from `-m`: (base, size).
    pub ram: Option<(u64, u64)>,
    /// Boot images and layout, once `finish` ran.
    pub boot: Option<crate::boot::BootState>,
}

fn toml_raw(v: &TomlValue) -> RawValue<'_> {
    match v {
        TomlValue::Str(s) => RawValue::Str(s),
        TomlValue::Int(i) => RawValue::Int(i128::from(*i)),
        TomlValue::Bool(b) => RawValue::Bool(*b),
    }
}

impl Machine {
    /// Phases 1-2: creates the machine and its board devices. Returns in `Initialized`, where
    /// devices can still be added (`-device`, `device_add`) and wired.
    pub fn create(
        opts: &MachineOptions,
        registry: TypeRegistry,
        chardevs: Rc<ChardevRegistry>,
        drives: Rc<DriveRegistry>,
    ) -> Result<Machine, MachineError> {
        let desc = Description::load(&opts.machine)?;
        Machine::create_from(desc, opts, registry, chardevs, drives)
    }

    /// Phases 1-2 from a description already in hand (`-machine dtb-board=FILE` builds one
    /// from a device tree). `opts.machine` is not used.
    pub fn create_from(
        desc: Description,
        opts: &MachineOptions,
        mut registry: TypeRegistry,
        chardevs: Rc<ChardevRegistry>,
        drives: Rc<DriveRegistry>,
    ) -> Result<Machine, MachineError> {
        // `plugins = [...]`: their types must exist before the board's devices are made.
        for p in &desc.machine.plugins {
            breadboard_plugin_host::load(std::path::Path::new(p), &mut registry)?;
        }
        let mname = desc.machine.name.clone();
        let cpu_name = opts
            .cpu
            .clone()
            .or_else(|| desc.cpu.cpu_type.clone())
            .unwrap_or_else(|| "rv64".to_string());
        let cpu =
            cpus::find(&cpu_name).ok_or_else(|| MachineError::UnknownCpu(cpu_name.clone()))?;
        let mut nharts = opts.smp.unwrap_or(desc.cpu.count);
        if nharts == 0 && opts.cpu.is_some() {
            nharts = 1;
        }
        if nharts > desc.machine.max_cpus || (opts.smp == Some(0)) {
            return Err(MachineError::Smp {
                n: nharts,
                max: desc.machine.max_cpus,
                machine: mname,
            });
        }
        let clock = Clock::new(match opts.icount_shift {
            Some(shift) => ClockMode::Icount { shift },
            None => ClockMode::Host,
        });
        let mut m = Machine {
            registry,
            tree: ObjectTree::new(),
            devices: Vec::new(),
            space: AddressSpace::new(),
            dma: Rc::new(GuestMemory::default()),
            clock,
            timers: TimerQueue::new(),
            chardevs,
            drives,
            cpu,
            harts: Vec::new(),
            hart_irqs: Vec::new(),
            code_pages: CodePages::new(),
            phase: Phase::MachineCreated,
            phase_log: vec!["create"],
            names: BTreeMap::new(),
            pbus_irqs_used: 0,
            pbus_full_below: 0,
            mtime_cache: std::cell::RefCell::new(None),
            ram: None,
            boot: None,
            desc,
        };
        let reset_pc = m
            .desc
            .machine
            .reset_rom
            .or(m.desc.cpu.reset_pc)
            .unwrap_or(0x8000_0000);
        for h in 0..nharts {
            let mut hart = Hart::new(cpu.hart_config(u64::from(h), reset_pc, &m.code_pages));
            // I/O threads' notifications (vfio IRQs) end the slice early.
            hart.set_kick(m.timers.pending_flag());
            m.hart_irqs.push(hart.irqs());
            m.harts.push(hart);
            m.tree.add_cpu(h);
        }
        m.phase = Phase::AccelCreated;
        m.phase_log.push("accel");
        m.realize_board(opts)?;
        m.phase = Phase::Initialized;
        m.phase_log.push("initialized");
        Ok(m)
    }

    fn realize_board(&mut self, opts: &MachineOptions) -> Result<(), MachineError> {
        if let Some(base) = self.desc.machine.reset_rom {
            let id = self.new_device(
                "sysbus-memory",
                Some("mrom"),
                false,
                &[
                    ("size", RawValue::Str("0xf000")),
                    ("readonly", RawValue::Bool(true)),
                ],
            )?;
            self.map_region(id, 0, base)?;
        }
        if let Some(base) = self.desc.machine.ram_base {
            let size = match (opts.ram_size, &self.desc.machine.default_ram) {
                (Some(s), _) => s,
                (None, Some(d)) => breadboard_core::props::parse_size(d).ok_or_else(|| {
                    MachineError::Boot(format!("{}: bad default-ram '{d}'", self.desc.origin))
                })?,
                (None, None) => 0,
            };
            if size > 0 {
                let s = format!("{size:#x}");
                let id = self.new_device(
                    "sysbus-memory",
                    Some("ram"),
                    false,
                    &[("size", RawValue::Str(&s))],
                )?;
                self.map_region(id, 0, base)?;
                self.ram = Some((base, size));
            }
        }
        let sections = self.desc.devices.clone();
        for d in &sections {
            let props: Vec<(&str, RawValue<'_>)> = d
                .props
                .iter()
                .map(|(k, v)| (k.as_str(), toml_raw(v)))
                .collect();
            // A description's `chardev = "serialN"` is optional: boards run without a backend.
            let props: Vec<(&str, RawValue<'_>)> = props
                .into_iter()
                .filter(|(k, v)| {
                    !(*k == "chardev"
                        && matches!(v, RawValue::Str(s) if self.chardevs.get(s).is_none()))
                })
                .collect();
            let id = self
                .new_device(&d.dev_type, Some(&d.name), false, &props)
                .map_err(|e| match e {
                    MachineError::UnknownType(t) => MachineError::Wiring(format!(
                        "{}: device '{}' has unknown type '{t}'",
                        self.desc.origin, d.name
                    )),
                    other => other,
                })?;
            for (i, addr) in d.mmio.iter().enumerate() {
                self.map_region(id, i, *addr)?;
            }
        }
        // Wiring after every board device exists, so a wire may point forwards.
        for d in &sections {
            let id = self
                .names
                .get(&d.name)
                .copied()
                .ok_or_else(|| MachineError::Wiring(format!("device '{}' vanished", d.name)))?;
            for (out, w) in d.irq.iter().enumerate() {
                let target = match parse_irq_ref(w).map_err(MachineError::Wiring)? {
                    IrqRef::Device { name, input } => WireTarget::Device {
                        id: *self.names.get(&name).ok_or_else(|| {
                            MachineError::Wiring(format!(
                                "{}: device '{}' wires sysbus-irq[{out}] to unknown device '{name}'",
                                self.desc.origin, d.name
                            ))
                        })?,
                        input,
                    },
                    IrqRef::Cpu { hart, bit } => WireTarget::Cpu { hart, bit },
                };
                self.connect(id, out, target)?;
            }
            if !d.irq_per_hart.is_empty() {
                let k = d.irq_per_hart.len();
                for h in 0..self.harts.len() {
                    for (j, bit) in d.irq_per_hart.iter().enumerate() {
                        self.connect(
                            id,
                            k * h + j,
                            WireTarget::Cpu {
                                hart: h as u32,
                                bit: *bit,
                            },
                        )?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Creates and realizes a device. `board` devices get `/machine/<name>`, user devices
    /// `/machine/peripheral/<id>`.
    pub fn new_device(
        &mut self,
        ty: &str,
        name: Option<&str>,
        user: bool,
        props: &[(&str, RawValue<'_>)],
    ) -> Result<DeviceId, MachineError> {
        self.mtime_cache.replace(None);
        let t = self
            .registry
            .get(ty)
            .ok_or_else(|| MachineError::UnknownType(ty.to_string()))?
            .clone();
        if user && !t.user_creatable {
            return Err(MachineError::NotCreatable {
                ty: ty.to_string(),
                machine: self.desc.machine.name.clone(),
            });
        }
        let label = name.unwrap_or(&t.name).to_string();
        let dev_err = |e: DeviceError| MachineError::Device {
            name: label.clone(),
            source: e,
        };
        let validated = Props::build(&t.name, &t.props, props.iter().copied())
            .map_err(|e| dev_err(e.into()))?;
        let id = self.devices.len();
        let path = if user {
            self.tree.add_peripheral(name, id)?
        } else {
            self.tree.add_board_device(name, id)?
        };
        let ctx = DeviceCtx {
            id,
            name: &label,
            clock: Rc::clone(&self.clock),
            timers: TimerHandle::new(Rc::clone(&self.timers), Rc::clone(&self.clock), id),
            dma: Rc::clone(&self.dma),
            chardevs: &self.chardevs,
            drives: &self.drives,
            num_harts: self.harts.len() as u32,
        };
        let made = (t.factory)(&validated, &ctx);
        let dev = match made {
            Ok(d) => d,
            Err(e) => {
                self.tree.remove(&path);
                for c in self.chardevs.all() {
                    if c.owner() == Some(id) {
                        c.detach();
                    }
                }
                return Err(dev_err(e));
            }
        };
        let regions = dev.regions();
        let outputs = dev.irq_outputs();
        let inputs = dev.gpio_inputs();
        let cell: DeviceCell = Rc::new(std::cell::RefCell::new(dev));
        let sink = DeviceSink::new(&cell, &label);
        self.devices.push(Some(DeviceEntry {
            cell,
            type_name: t.name.to_string(),
            path,
            label: label.clone(),
            props: validated,
            mapped: vec![None; regions.len()],
            wires: vec![None; outputs.len()],
            regions,
            outputs,
            sink,
            inputs,
            user,
            on_platform_bus: false,
        }));
        if !user {
            self.names.insert(label, id);
        }
        if t.bus == Some("virtio-bus")
            && let Err(e) = self.plug_virtio(id)
        {
            self.remove_device(id);
            return Err(e);
        }
        Ok(id)
    }

    /// Plugs virtio backend `id` into a free `virtio-mmio` transport: board transports first,
    /// highest address first (QEMU's order), else a new transport on the platform bus.
    fn plug_virtio(&mut self, id: DeviceId) -> Result<(), MachineError> {
        let backend = self
            .device(id)
            .map(|e| Rc::clone(&e.cell))
            .ok_or_else(|| MachineError::Wiring(format!("no device #{id}")))?;
        let wanted = self
            .device(id)
            .and_then(|e| e.props.str("bus").map(str::to_string));
        if let Some(bus) = wanted {
            let transport = self.virtio_bus_by_name(&bus)?;
            let tcell = self
                .device(transport)
                .map(|e| Rc::clone(&e.cell))
                .ok_or_else(|| MachineError::Wiring(format!("no device #{transport}")))?;
            return breadboard_devices::virtio::plug(&tcell, backend).map_err(MachineError::Wiring);
        }
        let mut free: Vec<(u64, DeviceId)> = self
            .device_ids()
            .filter_map(|t| {
                let e = self.device(t)?;
                if e.type_name != "virtio-mmio" || breadboard_devices::virtio::has_backend(&e.cell)
                {
                    return None;
                }
                Some((e.mapped.first().copied().flatten().unwrap_or(u64::MAX), t))
            })
            .collect();
        free.sort_by(|a, b| b.cmp(a));
        let transport = match free.first() {
            Some(&(_, t)) => t,
            None => {
                if self.desc.platform_bus.is_none() {
                    let label = self.device(id).map(|e| e.label.clone()).unwrap_or_default();
                    return Err(MachineError::Wiring(format!(
                        "no free virtio-mmio transport for '{label}' on machine '{}'",
                        self.name()
                    )));
                }
                self.new_device("virtio-mmio", None, true, &[])?
            }
        };
        let tcell = self
            .device(transport)
            .map(|e| Rc::clone(&e.cell))
            .ok_or_else(|| MachineError::Wiring(format!("no device #{transport}")))?;
        breadboard_devices::virtio::plug(&tcell, backend).map_err(MachineError::Wiring)
    }

    /// A `bus=` value: a `virtio-mmio` device's id or path, or QEMU's `virtio-mmio-bus.N` (the
    /// board's Nth transport by address).
    fn virtio_bus_by_name(&self, bus: &str) -> Result<DeviceId, MachineError> {
        let bad = || MachineError::Wiring(format!("Bus '{bus}' not found"));
        let id = match bus
            .strip_prefix("virtio-mmio-bus.")
            .map(str::parse::<usize>)
        {
            Some(Ok(n)) => {
                let mut board: Vec<(u64, DeviceId)> = self
                    .device_ids()
                    .filter_map(|t| {
                        let e = self.device(t)?;
                        (e.type_name == "virtio-mmio" && !e.user)
                            .then(|| (e.mapped.first().copied().flatten().unwrap_or(u64::MAX), t))
                    })
                    .collect();
                board.sort_unstable();
                board.get(n).map(|b| b.1).ok_or_else(bad)?
            }
            _ => self.resolve_device(bus).map_err(|_| bad())?,
        };
        match self.device(id) {
            Some(e) if e.type_name == "virtio-mmio" => Ok(id),
            _ => Err(MachineError::Wiring(format!(
                "'{bus}' is not a virtio-mmio transport"
            ))),
        }
    }

    /// Removes an unbound device (`device_del`, or cleanup after a failed plug).
    pub fn remove_device(&mut self, id: DeviceId) {
        self.mtime_cache.replace(None);
        if let Some(Some(e)) = self.devices.get(id) {
            let path = e.path.clone();
            self.tree.remove(&path);
        }
        self.space.remove_owner(id);
        // A hole may have opened below the hint: search from the window start again.
        self.pbus_full_below = 0;
        self.timers.cancel_owner(id);
        for c in self.chardevs.all() {
            if c.owner() == Some(id) {
                c.detach();
            }
        }
        if let Some(slot) = self.devices.get_mut(id) {
            *slot = None;
        }
        self.names.retain(|_, v| *v != id);
        self.dma.update_from(&self.space);
    }

    /// Adds a user device (`-device`, `device_add`).
    pub fn add_user_device(&mut self, opt: &DeviceOption) -> Result<DeviceId, MachineError> {
        if self.phase == Phase::Ready && !self.allows_dynamic(&opt.driver) {
            return Err(MachineError::NotAllowed {
                ty: opt.driver.clone(),
                machine: self.desc.machine.name.clone(),
            });
        }
        let props: Vec<(&str, RawValue<'_>)> = opt
            .props
            .iter()
            .map(|(k, v)| (k.as_str(), RawValue::Str(v)))
            .collect();
        self.new_device(&opt.driver, opt.id.as_deref(), true, &props)
    }

    fn allows_dynamic(&self, ty: &str) -> bool {
        let sysbus = self.registry.get(ty).is_some_and(|t| t.sysbus);
        self.desc
            .machine
            .allow_dynamic
            .iter()
            .any(|a| (a == "*" && sysbus) || a == ty)
    }

    /// The entry of device `id`.
    pub fn device(&self, id: DeviceId) -> Option<&DeviceEntry> {
        self.devices.get(id).and_then(Option::as_ref)
    }

    fn device_mut(&mut self, id: DeviceId) -> Result<&mut DeviceEntry, MachineError> {
        self.devices
            .get_mut(id)
            .and_then(Option::as_mut)
            .ok_or_else(|| MachineError::Wiring(format!("no device #{id}")))
    }

    /// Resolves a QOM path (absolute or partial) to a device.
    pub fn resolve_device(&self, path: &str) -> Result<DeviceId, MachineError> {
        match self.tree.resolve(path)? {
            (_, ObjectKind::Device(id)) => Ok(id),
            (p, _) => Err(MachineError::Wiring(format!("'{p}' is not a device"))),
        }
    }

    /// Maps region `index` of device `id` at `addr` (`x-sysbus-mmio-map`).
    pub fn map_region(
        &mut self,
        id: DeviceId,
        index: usize,
        addr: u64,
    ) -> Result<(), MachineError> {
        let e = self.device_mut(id)?;
        let label = e.label.clone();
        let spec = e.regions.get(index).cloned().ok_or_else(|| {
            MachineError::Wiring(format!(
                "device '{label}' has no MMIO region {index} (it has {})",
                e.regions.len()
            ))
        })?;
        if e.mapped.get(index).copied().flatten().is_some() {
            return Err(MachineError::Wiring(format!(
                "region {index} of device '{label}' is already mapped"
            )));
        }
        let cell = Rc::clone(&e.cell);
        let region = match spec {
            RegionSpec::Mmio { name, size } => Region {
                name: name.to_string(),
                base: addr,
                size,
                kind: RegionKind::Mmio {
                    device: cell,
                    index,
                },
                owner: Some(id),
            },
            RegionSpec::Ram {
                name,
                block,
                readonly,
            } => Region {
                name: if name.is_empty() {
                    label.clone()
                } else {
                    name.to_string()
                },
                base: addr,
                size: block.size(),
                kind: RegionKind::Ram { block, readonly },
                owner: Some(id),
            },
        };
        let is_ram = matches!(region.kind, RegionKind::Ram { .. });
        self.space.add(region)?;
        if let Some(slot) = self.device_mut(id)?.mapped.get_mut(index) {
            *slot = Some(addr);
        }
        // Only RAM changes what DMA can reach.
        if is_ram {
            self.dma.update_from(&self.space);
        }
        Ok(())
    }

    /// Wires output `out` of device `id` to `target`.
    pub fn connect(
        &mut self,
        id: DeviceId,
        out: usize,
        target: WireTarget,
    ) -> Result<(), MachineError> {
        let (sink, line): (Rc<dyn IrqSink>, u32) = match target {
            WireTarget::Cpu { hart, bit } => {
                let irqs = self.hart_irqs.get(hart as usize).ok_or_else(|| {
                    MachineError::Wiring(format!(
                        "no hart {hart} (the machine has {})",
                        self.harts.len()
                    ))
                })?;
                if bit >= 64 {
                    return Err(MachineError::Wiring(format!("mip bit {bit} out of range")));
                }
                (Rc::new(CpuSink(Rc::clone(irqs))), bit)
            }
            WireTarget::Device { id: tid, input } => {
                let t = self
                    .device(tid)
                    .ok_or_else(|| MachineError::Wiring(format!("no device #{tid}")))?;
                if input >= t.inputs {
                    return Err(MachineError::Wiring(format!(
                        "device '{}' has no input unnamed-gpio-in[{input}] (it has {})",
                        t.label, t.inputs
                    )));
                }
                if tid == id {
                    return Err(MachineError::Wiring(format!(
                        "device '{}' can't be wired to itself",
                        t.label
                    )));
                }
                (t.sink.clone(), input)
            }
        };
        let e = self.device_mut(id)?;
        let label = e.label.clone();
        let n = e.outputs.len();
        let line_out = e.outputs.get(out).cloned().ok_or_else(|| {
            MachineError::Wiring(format!(
                "device '{label}' has no output sysbus-irq[{out}] (it has {n})"
            ))
        })?;
        if let Some(w) = e.wires.get_mut(out) {
            *w = Some(target);
        }
        line_out.connect(sink, line);
        Ok(())
    }

    /// The value of property `name` of the object at `path` (`qom-get`).
    pub fn get_property(&self, id: DeviceId, name: &str) -> Option<PropValue> {
        let e = self.device(id)?;
        if name == "type" {
            return Some(PropValue::Str(e.type_name.clone()));
        }
        e.props.get(name).cloned()
    }

    /// Phase 3: places every user device still unmapped on the platform bus.
    pub fn bind(&mut self) -> Result<(), MachineError> {
        for id in 0..self.devices.len() {
            let Some(e) = self.device(id) else { continue };
            if !e.user || e.regions.is_empty() || e.mapped.iter().any(Option::is_some) {
                continue;
            }
            crate::platform_bus::place(self, id)?;
        }
        self.phase_log.push("bind");
        Ok(())
    }

    /// The machine's name.
    pub fn name(&self) -> &str {
        &self.desc.machine.name
    }

    /// Ids of all live devices.
    pub fn device_ids(&self) -> impl Iterator<Item = DeviceId> + '_ {
        self.devices
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.as_ref().map(|_| i))
    }

    /// Resets every device and clears hart interrupt inputs' device-driven state.
    pub fn reset_devices(&mut self) {
        for e in self.devices.iter().flatten() {
            if let Ok(mut d) = e.cell.try_borrow_mut() {
                d.reset();
            }
        }
    }
}
