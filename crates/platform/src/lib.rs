//! breadboard's platform layer: machines as data (descriptions), the builder and its phases,
//! the platform bus, device-tree generation, image loaders, the bus harts see, and the main
//! loop.

// Guest, file, socket and plugin input reaches every module: no panicking shortcuts outside
// tests, crate-wide (modules may repeat this for emphasis).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

pub mod boot;
pub mod bus;
pub mod cpus;
pub mod debug;
pub mod description;
pub mod dtb;
pub mod fdt;
pub mod loader;
pub mod machine;
pub mod platform_bus;
pub mod qmp_ops;
pub mod run;
pub mod snapshot;

pub use boot::{BootLayout, BootOptions, Firmware, Image};
pub use description::{Description, DescriptionError};
pub use machine::{DeviceOption, Machine, MachineError, MachineOptions, Phase, WireTarget};
pub use run::{Event, Exit};
