//! breadboard's core: the object model (device types, typed properties, the object tree),
//! the address space, IRQ lines, the virtual clock and timers, chardev plumbing and device-tree
//! helpers. No OS-specific code beyond memory allocation; no machine knowledge.

// Every module handles guest, file, socket or plugin input (property strings, snapshot files,
// guest addresses): no panicking shortcuts outside tests, crate-wide.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

pub mod block;
pub mod chardev;
pub mod clock;
pub mod device;
pub mod fdt;
pub mod irq;
pub mod memory;
pub mod object;
pub mod props;
pub mod snapshot;

pub use block::{BlockBackend, DriveRegistry};
pub use chardev::{CharBackend, Chardev, ChardevRegistry};
pub use clock::{Clock, ClockMode, Nanos, Notifier, TimerHandle, TimerQueue};
pub use device::{
    AsAny, Device, DeviceCell, DeviceCtx, DeviceError, DeviceId, DeviceSink, DeviceType,
    FdtPlacement, MachineRequest, RegionSpec, TypeRegistry,
};
pub use fdt::{FdtError, FdtWriter, IrqTarget, NodeResources, PhandleAllocator};
pub use irq::{IrqLine, IrqSink};
pub use memory::{
    AccessError, AddressSpace, GuestMemory, MemoryError, RamBlock, Region, RegionKind,
};
pub use props::{PropError, PropKind, PropSpec, PropValue, Props, RawValue};
pub use snapshot::{SnapReader, SnapWriter, SnapshotError};
