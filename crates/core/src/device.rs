//! The device contract. Built-in devices, plugins and passthrough devices all implement
//! [`Device`]; a [`DeviceType`] describes how to make one from validated [`Props`].
//!
//! Lifecycle (as QEMU's, minus the half-built states): properties are validated against the
//! type's schema, then the factory builds and realizes the device in one step (it may fail with
//! a message); the machine then maps its regions, wires its IRQs, asks it for its DT node, and
//! calls `reset` before the first instruction runs.

use std::any::Any;
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::{Rc, Weak};

use thiserror::Error;

use crate::block::{BlockBackend, DriveRegistry};
use crate::chardev::{Chardev, ChardevRegistry};
use crate::clock::{Clock, TimerHandle};
use crate::fdt::{FdtError, FdtWriter, NodeResources};
use crate::irq::{IrqLine, IrqSink};
use crate::memory::{GuestMemory, RamBlock};
use crate::props::{PropError, PropSpec, Props};
use crate::snapshot::SnapshotError;

/// Index of a device in its machine.
pub type DeviceId = usize;

/// A device as the machine holds it. Single-threaded: devices run on the main loop only.
pub type DeviceCell = Rc<RefCell<Box<dyn Device>>>;

/// One region a device exposes.
#[derive(Clone, Debug)]
pub enum RegionSpec {
    /// Registers: accesses call [`Device::read`]/[`Device::write`] with this region's index.
    Mmio {
        /// Name for `info mtree`.
        name: Cow<'static, str>,
        /// Size in bytes.
        size: u64,
    },
    /// Memory the device owns and the harts access directly.
    Ram {
        /// Name for `info mtree`.
        name: Cow<'static, str>,
        /// Backing store.
        block: Rc<RamBlock>,
        /// ROM if true.
        readonly: bool,
    },
}

impl RegionSpec {
    /// Size in bytes.
    pub fn size(&self) -> u64 {
        match self {
            RegionSpec::Mmio { size, .. } => *size,
            RegionSpec::Ram { block, .. } => block.size(),
        }
    }

    /// Name for `info mtree`.
    pub fn name(&self) -> &str {
        match self {
            RegionSpec::Mmio { name, .. } | RegionSpec::Ram { name, .. } => name,
        }
    }
}

/// Where a device's DT node goes when the machine doesn't say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdtPlacement {
    /// Directly under `/` (memory nodes).
    Root,
    /// Under the machine's `soc` bus (most devices).
    Soc,
    /// The device writes no node.
    None,
}

/// The device contract. Every method has a harmless default so a device implements only
/// what it has.
pub trait Device: AsAny {
    /// Regions to map, in index order. Fixed once the device exists.
    fn regions(&self) -> Vec<RegionSpec> {
        Vec::new()
    }

    /// MMIO read of `size` (1, 2, 4, 8) bytes at `offset` in region `region`. A bad guest
    /// access logs under `guest_error` and reads 0; it never fails the machine.
    fn read(&mut self, _region: usize, _offset: u64, _size: u8) -> u64 {
        0
    }

    /// MMIO write; bad accesses are logged and ignored.
    fn write(&mut self, _region: usize, _offset: u64, _size: u8, _value: u64) {}

    /// IRQ outputs (`sysbus-irq[N]`), clones of the lines the device drives.
    fn irq_outputs(&self) -> Vec<IrqLine> {
        Vec::new()
    }

    /// Number of GPIO/IRQ inputs (`unnamed-gpio-in[N]`).
    fn gpio_inputs(&self) -> u32 {
        0
    }

    /// An input changed level.
    fn set_gpio(&mut self, _line: u32, _level: bool) {}

    /// `source` now drives input `line` (`None`: nothing does). Interrupt controllers keep it to
    /// tell the source when the guest completes its interrupt ([`IrqLine::end_of_interrupt`]).
    fn attach_irq_source(&mut self, _line: u32, _source: Option<IrqLine>) {}

    /// An I/O thread posted `token` through a [`crate::clock::Notifier`] (from
    /// [`crate::clock::TimerHandle::notifier`]); runs on the main loop.
    fn notify(&mut self, _token: u64) {}

    /// For interrupt controllers: the DT interrupt specifier for input `line`
    /// (e.g. `[line]` for a PLIC). `None` for devices that are not interrupt controllers.
    fn irq_specifier(&self, _line: u32) -> Option<Vec<u32>> {
        None
    }

    /// Outputs that go to a hart unless the machine wires them otherwise, as
    /// `(output, hart, mip bit)` (QEMU's interrupt controllers claim their harts' lines at
    /// realize: an OpenTitan PLIC's target 0 drives hart 0's MEIP). Empty for most devices.
    fn default_cpu_irqs(&self) -> Vec<(usize, u32, u32)> {
        Vec::new()
    }

    /// Whether other nodes reference this device's node, so it needs a phandle. Interrupt
    /// controllers (devices with an `irq_specifier`) always get one.
    fn needs_phandle(&self) -> bool {
        false
    }

    /// Back to power-on state (also called once before the machine first runs).
    fn reset(&mut self) {}

    /// A timer armed through the device's [`TimerHandle`] expired.
    fn timer(&mut self, _token: u64) {}

    /// How many input bytes the device can take now (chardev frontends).
    fn can_receive(&self) -> usize {
        0
    }

    /// Input bytes for the device's chardev (at most `can_receive()` of them).
    fn receive(&mut self, _data: &[u8]) {}

    /// Where the node goes by default.
    fn fdt_placement(&self) -> FdtPlacement {
        FdtPlacement::Soc
    }

    /// Writes the device's DT node (begin, properties, end) into the open parent.
    fn write_fdt(&self, _fdt: &mut FdtWriter, _res: &NodeResources) -> Result<(), FdtError> {
        Ok(())
    }

    /// Writes extra nodes that must sit directly under `/` (e.g. the `syscon-poweroff` node
    /// that points at a test finisher). Called while `/` is open.
    fn write_fdt_root(&self, _fdt: &mut FdtWriter, _res: &NodeResources) -> Result<(), FdtError> {
        Ok(())
    }

    /// A request the device makes of the machine (power off, reset), polled by the main loop
    /// after each MMIO write burst.
    fn take_machine_request(&mut self) -> Option<MachineRequest> {
        None
    }

    /// The device's state for a snapshot. The default suits stateless devices (saves
    /// nothing); stateful devices override it, or refuse with [`SnapshotError::Unsupported`].
    fn snapshot_save(&self) -> Result<Vec<u8>, SnapshotError> {
        Ok(Vec::new())
    }

    /// Restores what `snapshot_save` wrote. Timers are restored by the machine, not here.
    fn snapshot_load(&mut self, data: &[u8]) -> Result<(), SnapshotError> {
        if data.is_empty() {
            Ok(())
        } else {
            Err(SnapshotError::Corrupt(
                "unexpected state for a stateless device".into(),
            ))
        }
    }
}

/// Downcasting for every device without boilerplate (blanket-implemented).
pub trait AsAny: Any {
    /// `&self` as `Any`.
    fn as_any(&self) -> &dyn Any;
    /// `&mut self` as `Any`.
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: Any> AsAny for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// What a device can ask of the whole machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MachineRequest {
    /// Power off with this exit status (the finisher's pass/fail code).
    Shutdown {
        /// Process exit code.
        code: i32,
    },
    /// Reset the machine (exits instead under `-no-reboot`).
    Reset,
}

/// What a factory gets besides properties: the device's own services.
pub struct DeviceCtx<'a> {
    /// The id the machine gave this device.
    pub id: DeviceId,
    /// A name for log messages (`id` or type).
    pub name: &'a str,
    /// Virtual clock.
    pub clock: Rc<Clock>,
    /// This device's timers.
    pub timers: TimerHandle,
    /// Guest RAM for DMA.
    pub dma: Rc<GuestMemory>,
    /// Chardevs, to resolve `chardev=` properties.
    pub chardevs: &'a ChardevRegistry,
    /// Block backends, to resolve `drive=` properties.
    pub drives: &'a DriveRegistry,
    /// Number of harts in the machine (CLINT/PLIC size themselves by it).
    pub num_harts: u32,
}

impl DeviceCtx<'_> {
    /// Resolves a `chardev=` property and claims the chardev for this device.
    pub fn chardev(&self, props: &Props, prop: &str) -> Result<Option<Rc<Chardev>>, DeviceError> {
        let Some(id) = props.str(prop) else {
            return Ok(None);
        };
        let c = self
            .chardevs
            .get(id)
            .ok_or_else(|| DeviceError::Realize(format!("Chardev '{id}' not found")))?;
        c.attach(self.id).map_err(DeviceError::Realize)?;
        Ok(Some(c))
    }
}

impl DeviceCtx<'_> {
    /// Resolves a `drive=` property and claims the drive for this device.
    pub fn drive(
        &self,
        props: &Props,
        prop: &str,
    ) -> Result<Option<Rc<BlockBackend>>, DeviceError> {
        let Some(id) = props.str(prop) else {
            return Ok(None);
        };
        let d = self.drives.get(id).ok_or_else(|| {
            DeviceError::Realize(format!("Property '{prop}' can't find value '{id}'"))
        })?;
        d.attach(self.id).map_err(DeviceError::Realize)?;
        Ok(Some(d))
    }
}

/// Errors making a device.
#[derive(Debug, Error)]
pub enum DeviceError {
    /// A property problem.
    #[error(transparent)]
    Prop(#[from] PropError),
    /// Realize refused (the device's own message).
    #[error("{0}")]
    Realize(String),
    /// Guest memory could not be allocated.
    #[error(transparent)]
    Memory(#[from] crate::memory::MemoryError),
}

/// Builds a realized device from validated properties.
pub type Factory = Rc<dyn Fn(&Props, &DeviceCtx<'_>) -> Result<Box<dyn Device>, DeviceError>>;

/// A device type: everything the front ends need to know before making one.
#[derive(Clone)]
pub struct DeviceType {
    /// Type name (`ns16550a`).
    pub name: Cow<'static, str>,
    /// One-line description.
    pub description: Cow<'static, str>,
    /// Whether `-device`/`device_add` may make it.
    pub user_creatable: bool,
    /// Whether it is memory-mapped (a sysbus device; may go on the platform bus).
    pub sysbus: bool,
    /// The bus it plugs into when not memory-mapped (`virtio-bus` for virtio backends, which
    /// the machine plugs into a free `virtio-mmio` transport).
    pub bus: Option<&'static str>,
    /// Device-tree `compatible` strings that identify this model, most specific first.
    /// `-machine dtb-board=FILE` maps a node to the type claiming the first of its strings, so
    /// leave out generic fallbacks another type claims (`ibex-plic` writes `riscv,plic0` but
    /// only claims `lowrisc,rv-plic`). Empty for types without a node of their own.
    pub compatible: &'static [&'static str],
    /// Property schema.
    pub props: Vec<PropSpec>,
    /// Constructor.
    pub factory: Factory,
}

impl std::fmt::Debug for DeviceType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceType")
            .field("name", &self.name)
            .finish()
    }
}

/// Errors registering types.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RegistryError {
    /// Two types with one name.
    #[error("device type '{0}' is already registered")]
    Duplicate(String),
}

/// All device types known to a process: built-ins plus loaded plugins.
#[derive(Debug, Default, Clone)]
pub struct TypeRegistry {
    types: BTreeMap<String, DeviceType>,
}

impl TypeRegistry {
    /// An empty registry.
    pub fn new() -> TypeRegistry {
        TypeRegistry::default()
    }

    /// Adds a type; a name already taken is refused and nothing changes.
    pub fn register(&mut self, t: DeviceType) -> Result<(), RegistryError> {
        if self.types.contains_key(t.name.as_ref()) {
            return Err(RegistryError::Duplicate(t.name.to_string()));
        }
        self.types.insert(t.name.to_string(), t);
        Ok(())
    }

    /// Looks up a type.
    pub fn get(&self, name: &str) -> Option<&DeviceType> {
        self.types.get(name)
    }

    /// Every type, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &DeviceType> {
        self.types.values()
    }

    /// `-device help`: one line per user-creatable type, like QEMU's list.
    pub fn help(&self) -> String {
        let mut s = String::from("Devices (user creatable):\n");
        for t in self.types.values().filter(|t| t.user_creatable) {
            s.push_str(&format!(
                "name \"{}\", desc \"{}\"\n",
                t.name, t.description
            ));
        }
        s
    }

    /// `-device TYPE,help`: the type's properties with types, defaults and docs.
    pub fn type_help(&self, name: &str) -> Option<String> {
        let t = self.types.get(name)?;
        let mut s = format!("{} options:\n", t.name);
        for p in &t.props {
            let default = match &p.default {
                Some(d) if !d.is_empty() => format!(" (default: {d})"),
                Some(_) => String::new(),
                None => " (required)".to_string(),
            };
            s.push_str(&format!(
                "  {}=<{}>{} - {}\n",
                p.name,
                p.kind.qemu_name(),
                default,
                p.doc
            ));
        }
        Some(s)
    }
}

/// Delivers IRQ levels into a device's `set_gpio`, so any device can be an IRQ target.
pub struct DeviceSink {
    device: Weak<RefCell<Box<dyn Device>>>,
    name: String,
}

impl DeviceSink {
    /// A sink for `device`'s inputs.
    pub fn new(device: &DeviceCell, name: &str) -> Rc<DeviceSink> {
        Rc::new(DeviceSink {
            device: Rc::downgrade(device),
            name: name.to_string(),
        })
    }
}

impl IrqSink for DeviceSink {
    fn attach_source(&self, line: u32, source: Option<&IrqLine>) {
        let Some(dev) = self.device.upgrade() else {
            return;
        };
        match dev.try_borrow_mut() {
            Ok(mut d) => d.attach_irq_source(line, source.cloned()),
            Err(_) => tracing::error!(
                "'{}' input {line} was rewired from inside its own access",
                self.name
            ),
        };
    }

    fn set_irq(&self, line: u32, level: bool) {
        let Some(dev) = self.device.upgrade() else {
            return;
        };
        match dev.try_borrow_mut() {
            Ok(mut d) => d.set_gpio(line, level),
            Err(_) => tracing::error!(
                target: "guest_error",
                "IRQ loop: '{}' input {line} was driven from inside its own access",
                self.name
            ),
        };
    }
}

/// Shorthand for a boxed, realized device.
pub fn boxed<D: Device>(d: D) -> Box<dyn Device> {
    Box::new(d)
}
