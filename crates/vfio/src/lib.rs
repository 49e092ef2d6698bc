//! `vfio-platform`: give a guest a platform (non-PCI) device that lives outside the emulator.
//!
//! Two backends sit behind one [`backend::Backend`] contract:
//! - `kernel`: a host device bound to Linux's `vfio-platform` driver (group, container, device
//!   fd, regions, eventfd IRQs with automask/unmask, reset, DMA mapping of guest RAM);
//! - `user`: a device served by another process over the vfio-user protocol.
//!
//! The `device` module adapts either backend to breadboard's device contract: regions become
//! MMIO on the platform bus, IRQs become `sysbus-irq[N]` outputs, and a device-tree writer
//! chosen by `compatible` writes the node.

pub mod backend;
pub mod host;
pub mod kernel;
pub mod sysfs;
pub mod device;
pub mod dt;
pub mod user;
