//! The device-server side of vfio-user (QEMU's `docs/interop/vfio-user.rst`) for *platform*
//! devices: write a [`PlatformDevice`], hand it to a [`Server`], and breadboard (or any vfio-user
//! client) can give it to a guest with `-device vfio-platform,socket=PATH`.
//!
//! The SDK owns everything protocol-shaped: the Unix socket (mode 0600), version negotiation,
//! device/region/IRQ info (`VFIO_DEVICE_FLAGS_PLATFORM`, region fds for mmap'able regions),
//! `SET_IRQS` (eventfds, trigger, mask, unmask, disable), `DMA_MAP`/`DMA_UNMAP` (the client's
//! memfds are mapped so the device reaches guest RAM directly when they are sealed against
//! shrinking; windows without an fd, or with one the client could truncate, fall back to
//! `DMA_READ`/`DMA_WRITE` messages), `REGION_READ`/`REGION_WRITE` and `DEVICE_RESET`.
//!
//! A device only sees typed calls: its region accesses, with a [`DeviceContext`] through which it
//! reaches guest memory ([`DmaAccess`]) and drives its interrupt lines ([`IrqOutput`]).
//!
//! IRQ semantics follow the kernel's vfio-platform: a level IRQ is masked automatically when
//! its eventfd is signalled and stays silent until the client unmasks it; an unmask while the
//! line is still high signals again. Edge IRQs signal on every pulse.
//!
//! Client input is untrusted: every message is validated, a bad one gets an error reply (or the
//! connection is dropped), and nothing a client sends can make the server panic.

// Reads untrusted input (a vfio-user client, guest memory, guest register writes): no
// panicking shortcuts outside tests.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

pub mod dma;
pub mod irq;
mod session;
#[cfg(test)]
mod session_tests;
pub mod shm;
pub mod testing;

use std::os::fd::BorrowedFd;

pub use dma::{Dma, DmaError};
pub use irq::{IrqError, IrqLines};
pub use session::{Server, ServerError, ServerOptions};
pub use shm::{SharedMemory, ShmError};

/// How a region can be reached by the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegionSpec {
    /// Size in bytes (non-zero).
    pub size: u64,
    /// The client may read the region.
    pub readable: bool,
    /// The client may write the region.
    pub writable: bool,
    /// The region is backed by memory the client may `mmap()` ([`PlatformDevice::region_fd`]
    /// must then return its fd). Reads and writes through messages are still served.
    pub mmap: bool,
}

impl RegionSpec {
    /// A register block reached through `REGION_READ`/`REGION_WRITE` messages.
    pub const fn mmio(size: u64) -> Self {
        Self {
            size,
            readable: true,
            writable: true,
            mmap: false,
        }
    }

    /// Memory the client maps directly (backed by an fd, e.g. a [`SharedMemory`]).
    pub const fn mapped(size: u64) -> Self {
        Self {
            size,
            readable: true,
            writable: true,
            mmap: true,
        }
    }
}

/// How an interrupt line behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqKind {
    /// Level-triggered: automasked when signalled, re-signalled on unmask while still high.
    Level,
    /// Edge-triggered: every pulse is signalled.
    Edge,
}

/// Device-tree hints sent to the client in the version reply (the `"breadboard"` capability),
/// so it can write the guest's node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DtHints {
    /// `compatible` strings, most specific first.
    pub compatible: Vec<String>,
    /// Extra properties: name and raw value (big-endian cells, NUL-terminated strings).
    pub props: Vec<(String, Vec<u8>)>,
}

impl DtHints {
    /// Hints with just `compatible` strings.
    pub fn compatible(strings: &[&str]) -> Self {
        Self {
            compatible: strings.iter().map(|s| (*s).to_owned()).collect(),
            props: Vec::new(),
        }
    }

    /// Add a property of 32-bit cells.
    pub fn with_cells(mut self, name: &str, cells: &[u32]) -> Self {
        self.props.push((
            name.to_owned(),
            cells.iter().flat_map(|c| c.to_be_bytes()).collect(),
        ));
        self
    }

    /// Add a string property.
    pub fn with_string(mut self, name: &str, value: &str) -> Self {
        let mut v = value.as_bytes().to_vec();
        v.push(0);
        self.props.push((name.to_owned(), v));
        self
    }
}

/// Why a device refused a region access. The server answers the client with an error.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccessError {
    /// The region index does not exist.
    #[error("no region {0}")]
    NoRegion(u32),
    /// The access does not fit in the region.
    #[error("access of {len} bytes at {offset:#x} is outside region {region}")]
    OutOfRange {
        /// Region index.
        region: u32,
        /// Offset in the region.
        offset: u64,
        /// Access length.
        len: usize,
    },
    /// The region does not allow this direction.
    #[error("region {0} does not allow this access")]
    Denied(u32),
}

/// Reach guest memory from a device: guest physical addresses, bounds-checked.
pub trait DmaAccess {
    /// Read `buf.len()` bytes at guest physical address `addr`.
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), DmaError>;
    /// Write `data` at guest physical address `addr`.
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), DmaError>;

    /// Read a little-endian u16.
    fn read_u16(&mut self, addr: u64) -> Result<u16, DmaError> {
        let mut b = [0; 2];
        self.read(addr, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }
    /// Read a little-endian u32.
    fn read_u32(&mut self, addr: u64) -> Result<u32, DmaError> {
        let mut b = [0; 4];
        self.read(addr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    /// Read a little-endian u64.
    fn read_u64(&mut self, addr: u64) -> Result<u64, DmaError> {
        let mut b = [0; 8];
        self.read(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    /// Write a little-endian u16.
    fn write_u16(&mut self, addr: u64, v: u16) -> Result<(), DmaError> {
        self.write(addr, &v.to_le_bytes())
    }
    /// Write a little-endian u32.
    fn write_u32(&mut self, addr: u64, v: u32) -> Result<(), DmaError> {
        self.write(addr, &v.to_le_bytes())
    }
}

/// Drive the device's interrupt lines (indices as declared by [`PlatformDevice::irqs`]).
pub trait IrqOutput {
    /// Set a level line high or low. Signalling follows the level/automask rules.
    fn set_level(&mut self, index: u32, high: bool);
    /// Pulse an edge line.
    fn pulse(&mut self, index: u32);
}

/// What a device handler may touch besides itself.
pub struct DeviceContext<'a> {
    /// Guest memory.
    pub dma: &'a mut dyn DmaAccess,
    /// Interrupt lines.
    pub irq: &'a mut dyn IrqOutput,
}

/// A platform device served over vfio-user.
///
/// Region accesses arrive with an offset already checked against the region's size and
/// direction flags; a device that dislikes an access size or alignment should log it under the
/// `guest_error` target and read zeros, like built-in devices do.
///
/// ```
/// use breadboard_vfio_user::server::{
///     AccessError, DeviceContext, DtHints, IrqKind, PlatformDevice, RegionSpec,
/// };
///
/// /// One 32-bit scratch register.
/// struct Scratch(u32);
///
/// impl PlatformDevice for Scratch {
///     fn regions(&self) -> Vec<RegionSpec> {
///         vec![RegionSpec::mmio(4)]
///     }
///     fn irqs(&self) -> Vec<IrqKind> {
///         vec![]
///     }
///     fn dt_hints(&self) -> DtHints {
///         DtHints::compatible(&["example,scratch"])
///     }
///     fn read(&mut self, _: &mut DeviceContext<'_>, _: u32, _: u64, data: &mut [u8])
///         -> Result<(), AccessError> {
///         let v = self.0.to_le_bytes();
///         for (d, s) in data.iter_mut().zip(v) {
///             *d = s;
///         }
///         Ok(())
///     }
///     fn write(&mut self, _: &mut DeviceContext<'_>, _: u32, _: u64, data: &[u8])
///         -> Result<(), AccessError> {
///         let mut v = [0; 4];
///         for (d, s) in v.iter_mut().zip(data) {
///             *d = *s;
///         }
///         self.0 = u32::from_le_bytes(v);
///         Ok(())
///     }
///     fn reset(&mut self, _: &mut DeviceContext<'_>) {
///         self.0 = 0;
///     }
/// }
/// ```
pub trait PlatformDevice {
    /// The device's regions, in index order.
    fn regions(&self) -> Vec<RegionSpec>;
    /// The device's interrupt lines, in index order (each is one VFIO IRQ index of count 1).
    fn irqs(&self) -> Vec<IrqKind>;
    /// Device-tree hints for the client.
    fn dt_hints(&self) -> DtHints;
    /// The fd backing an mmap'able region, and the offset of the region in it.
    fn region_fd(&self, index: u32) -> Option<(BorrowedFd<'_>, u64)> {
        let _ = index;
        None
    }
    /// A read of `data.len()` bytes at `offset` in region `region`.
    fn read(
        &mut self,
        ctx: &mut DeviceContext<'_>,
        region: u32,
        offset: u64,
        data: &mut [u8],
    ) -> Result<(), AccessError>;
    /// A write of `data` at `offset` in region `region`.
    fn write(
        &mut self,
        ctx: &mut DeviceContext<'_>,
        region: u32,
        offset: u64,
        data: &[u8],
    ) -> Result<(), AccessError>;
    /// `VFIO_USER_DEVICE_RESET`: return to the power-on state (lower any raised line).
    fn reset(&mut self, ctx: &mut DeviceContext<'_>);
}
