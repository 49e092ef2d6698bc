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
pub mod device;
pub mod dt;
pub mod host;
pub mod kernel;
pub mod sysfs;
pub mod user;

use std::sync::Arc;

use breadboard_core::device::TypeRegistry;
use breadboard_core::props::Props;

use crate::backend::{Backend, VfioError};

/// Opens the backend a `vfio-platform` device's properties name: `host=` → Linux VFIO,
/// `socket=` → a vfio-user server.
pub fn open_backend(props: &Props) -> Result<Arc<dyn Backend>, VfioError> {
    if let Some(host) = props.str("host").filter(|s| !s.is_empty()) {
        return Ok(Arc::new(kernel::KernelBackend::open(host)?));
    }
    match props.str("socket").filter(|s| !s.is_empty()) {
        Some(path) => {
            let config = breadboard_vfio_user::client::ClientConfig {
                timeout: std::time::Duration::from_millis(props.u64("timeout-ms").max(1)),
                posted_writes: props.bool("posted-writes"),
                ..Default::default()
            };
            Ok(Arc::new(user::UserBackend::connect_with(
                std::path::Path::new(path),
                config,
            )?))
        }
        None => Err(VfioError::Invalid(
            "give host=<sysfs device name> or socket=<path>".into(),
        )),
    }
}

/// Registers `vfio-platform`. A second registration keeps the first.
pub fn register(reg: &mut TypeRegistry) {
    if let Err(e) = reg.register(device::device_type(open_backend)) {
        tracing::debug!("{e}");
    }
}
