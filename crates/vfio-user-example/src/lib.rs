//! Example vfio-user platform device servers built on `breadboard_vfio_user::server`:
//!
//! - [`checksum::ChecksumEngine`] (`breadboard,checksum-engine`): a DMA CRC-32 engine with a
//!   level completion interrupt and an mmap'able scratch SRAM;
//! - [`virtio_rng::VirtioRng`] (`virtio,mmio`): a virtio entropy device on a virtio-mmio
//!   version 2 transport, which Linux drives with its stock drivers.
//!
//! The `bb-vfio-example` binary serves either on a Unix socket.

// Reads untrusted input (a vfio-user client, guest memory, guest register writes): no
// panicking shortcuts outside tests.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

pub mod checksum;
pub mod crc32;
pub mod virtio_rng;
