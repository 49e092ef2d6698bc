//! The contract between the `vfio-platform` device and wherever its device lives: the Linux
//! kernel's VFIO driver (`kernel` backend) or another process speaking vfio-user (`user`
//! backend). The shapes follow `<linux/vfio.h>` so both backends translate little: flags are the
//! kernel's `VFIO_*` bits, indexes are region and IRQ indexes of the device.
//!
//! A backend is shared between the main loop (MMIO, unmask on EOI) and I/O threads (the vfio-user
//! reader), so it is `Send + Sync`; every method may fail, and a failure never panics: the
//! device marks itself broken, logs one line and answers all-ones.

// Reads untrusted input (a vfio-user server, the kernel, sysfs files, the guest): no panicking
// shortcuts outside tests.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::os::fd::BorrowedFd;
use std::ptr::NonNull;

use thiserror::Error;

/// `VFIO_DEVICE_FLAGS_RESET`: the device can be reset.
pub const DEVICE_FLAGS_RESET: u32 = 1 << 0;
/// `VFIO_DEVICE_FLAGS_PLATFORM`: a platform device (the only kind this crate accepts).
pub const DEVICE_FLAGS_PLATFORM: u32 = 1 << 2;

/// `VFIO_REGION_INFO_FLAG_READ`.
pub const REGION_FLAG_READ: u32 = 1 << 0;
/// `VFIO_REGION_INFO_FLAG_WRITE`.
pub const REGION_FLAG_WRITE: u32 = 1 << 1;
/// `VFIO_REGION_INFO_FLAG_MMAP`.
pub const REGION_FLAG_MMAP: u32 = 1 << 2;

/// `VFIO_IRQ_INFO_EVENTFD`.
pub const IRQ_FLAG_EVENTFD: u32 = 1 << 0;
/// `VFIO_IRQ_INFO_MASKABLE`.
pub const IRQ_FLAG_MASKABLE: u32 = 1 << 1;
/// `VFIO_IRQ_INFO_AUTOMASKED`: a level IRQ the backend masks when it fires; the device unmasks
/// it when the guest completes the interrupt.
pub const IRQ_FLAG_AUTOMASKED: u32 = 1 << 2;

/// What went wrong talking to a device.
#[derive(Debug, Error)]
pub enum VfioError {
    /// A system call failed.
    #[error("{op}: {source}")]
    Io {
        /// What was being done ("VFIO_GROUP_GET_DEVICE_FD", "connect to /tmp/s.sock").
        op: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The other side broke the protocol (vfio-user) or returned nonsense (kernel).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The server did not answer in time.
    #[error("{0}: no reply within the timeout")]
    Timeout(String),
    /// The device was marked broken earlier; nothing more is sent to it.
    #[error("device is broken: {0}")]
    Broken(String),
    /// The device or the host cannot do this (no reset, no mmap, not a platform device).
    #[error("{0}")]
    Unsupported(String),
    /// Something named by the user does not exist (sysfs device, IOMMU group, socket).
    #[error("{0}")]
    NotFound(String),
    /// An argument was out of range (region index, offset + size past the region's end).
    #[error("{0}")]
    Invalid(String),
}

/// `struct vfio_device_info`, as far as the device model needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// `DEVICE_FLAGS_*`.
    pub flags: u32,
    /// Number of regions (indexes `0..num_regions`).
    pub num_regions: u32,
    /// Number of IRQ indexes (`0..num_irqs`).
    pub num_irqs: u32,
}

/// `struct vfio_region_info`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegionInfo {
    /// Region index.
    pub index: u32,
    /// `REGION_FLAG_*`.
    pub flags: u32,
    /// Size in bytes (0: the region is absent).
    pub size: u64,
    /// Offset of the region in the device fd (kernel) or in the region's fd (vfio-user), for
    /// `mmap`.
    pub offset: u64,
}

/// `struct vfio_irq_info`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IrqInfo {
    /// IRQ index.
    pub index: u32,
    /// `IRQ_FLAG_*`.
    pub flags: u32,
    /// Number of sub-IRQs (platform devices have 1 per index).
    pub count: u32,
}

/// Guest RAM handed to the device for DMA: IOVA = guest physical address.
#[derive(Debug)]
pub struct DmaRegion<'a> {
    /// Guest physical address (the IOVA the device uses).
    pub iova: u64,
    /// Length in bytes.
    pub size: u64,
    /// Where the RAM is mapped in this process (for the kernel's type1 IOMMU and for serving
    /// vfio-user DMA read/write requests). Valid for the life of the mapping: the machine keeps
    /// its RAM mapped until `dma_unmap` (or drop of the backend).
    pub host: NonNull<u8>,
    /// The RAM's memfd, so a vfio-user server can map it itself.
    pub fd: BorrowedFd<'a>,
    /// Offset of `iova` inside `fd`.
    pub fd_offset: u64,
    /// Whether the device may write (guest RAM is always mapped read-write today).
    pub writable: bool,
}

/// Device-tree facts the backend knows about its device: the host's DT node (kernel) or what the
/// server announces (vfio-user).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DtHints {
    /// `compatible` strings, most specific first.
    pub compatible: Vec<String>,
    /// Other properties of the source node, raw (big-endian cells, NUL-terminated strings), for
    /// the generic writer's allow-list.
    pub props: Vec<(String, Vec<u8>)>,
}

/// Where a `vfio-platform` device lives.
pub trait Backend: Send + Sync {
    /// A short name for log lines ("host amba:ethernet@1000", "vfio-user /tmp/s.sock").
    fn describe(&self) -> String;

    /// Device info; must report `DEVICE_FLAGS_PLATFORM`.
    fn device_info(&self) -> Result<DeviceInfo, VfioError>;

    /// Info for region `index`.
    fn region_info(&self, index: u32) -> Result<RegionInfo, VfioError>;

    /// Maps the whole region when its flags allow it; `Ok(None)` when accesses must go through
    /// [`Backend::region_read`]/[`Backend::region_write`].
    fn map_region(&self, info: &RegionInfo) -> Result<Option<Mapping>, VfioError>;

    /// Reads `buf.len()` bytes (1, 2, 4 or 8) at `offset` of region `index`.
    fn region_read(&self, index: u32, offset: u64, buf: &mut [u8]) -> Result<(), VfioError>;

    /// Writes `data` (1, 2, 4 or 8 bytes) at `offset` of region `index`.
    fn region_write(&self, index: u32, offset: u64, data: &[u8]) -> Result<(), VfioError>;

    /// Info for IRQ index `index`.
    fn irq_info(&self, index: u32) -> Result<IrqInfo, VfioError>;

    /// Sets eventfd triggers for sub-IRQs `0..fds.len()` of IRQ `index`
    /// (`VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER`).
    fn set_irq_eventfds(&self, index: u32, fds: &[BorrowedFd<'_>]) -> Result<(), VfioError>;

    /// Removes the triggers of IRQ `index` (`DATA_NONE | ACTION_TRIGGER`, count 0).
    fn disable_irq(&self, index: u32) -> Result<(), VfioError>;

    /// Unmasks sub-IRQ `sub` of IRQ `index` (`DATA_NONE | ACTION_UNMASK`), after the guest
    /// completed an automasked level interrupt.
    fn unmask_irq(&self, index: u32, sub: u32) -> Result<(), VfioError>;

    /// Resets the device (`VFIO_DEVICE_RESET`); `Unsupported` when it cannot.
    fn reset(&self) -> Result<(), VfioError>;

    /// Lets the device reach `region` of guest RAM by DMA.
    fn dma_map(&self, region: &DmaRegion<'_>) -> Result<(), VfioError>;

    /// Takes back a window given by `dma_map`.
    fn dma_unmap(&self, iova: u64, size: u64) -> Result<(), VfioError>;

    /// What the backend knows for the device tree.
    fn dt_hints(&self) -> Result<DtHints, VfioError> {
        Ok(DtHints::default())
    }
}

/// A region mapped into this process (`mmap` of a device fd or of a fd a server sent). Unmapped
/// on drop. Accesses are volatile and bounds-checked.
#[derive(Debug)]
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory with no thread affinity; every access is a volatile
// load or store of at most 8 bytes.
unsafe impl Send for Mapping {}
// SAFETY: as for Send; concurrent volatile accesses are what device memory sees anyway.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `fd` at `offset`, read-write or read-only.
    pub fn map(
        fd: BorrowedFd<'_>,
        offset: u64,
        len: u64,
        writable: bool,
    ) -> Result<Mapping, VfioError> {
        use rustix::mm::{MapFlags, ProtFlags, mmap};
        let len_usize = usize::try_from(len)
            .ok()
            .filter(|&l| l > 0)
            .ok_or_else(|| VfioError::Invalid(format!("cannot map a region of {len} bytes")))?;
        let prot = if writable {
            ProtFlags::READ | ProtFlags::WRITE
        } else {
            ProtFlags::READ
        };
        // SAFETY: a fresh shared mapping chosen by the kernel (null hint); it aliases no Rust
        // object, and this Mapping owns it until drop.
        let ptr = unsafe {
            mmap(
                std::ptr::null_mut(),
                len_usize,
                prot,
                MapFlags::SHARED,
                fd,
                offset,
            )
        }
        .map_err(|e| VfioError::Io {
            op: format!("mmap {len:#x} bytes at offset {offset:#x}"),
            source: e.into(),
        })?;
        let ptr = NonNull::new(ptr.cast::<u8>())
            .ok_or_else(|| VfioError::Protocol("mmap returned a null mapping".into()))?;
        Ok(Mapping {
            ptr,
            len: len_usize,
        })
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty (never: `map` refuses empty regions).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn check(&self, offset: u64, size: u8) -> Option<usize> {
        let off = usize::try_from(offset).ok()?;
        let end = off.checked_add(usize::from(size))?;
        (matches!(size, 1 | 2 | 4 | 8) && end <= self.len && off % usize::from(size) == 0)
            .then_some(off)
    }

    /// A naturally aligned volatile load of `size` bytes; `None` when out of bounds or
    /// misaligned.
    pub fn read(&self, offset: u64, size: u8) -> Option<u64> {
        let off = self.check(offset, size)?;
        // SAFETY: `check` proved off..off+size lies inside the mapping and is aligned for the
        // access width.
        unsafe {
            let p = self.ptr.as_ptr().add(off);
            Some(match size {
                1 => u64::from(p.read_volatile()),
                2 => u64::from(p.cast::<u16>().read_volatile()),
                4 => u64::from(p.cast::<u32>().read_volatile()),
                _ => p.cast::<u64>().read_volatile(),
            })
        }
    }

    /// A naturally aligned volatile store of `size` bytes; `false` when out of bounds or
    /// misaligned.
    pub fn write(&self, offset: u64, size: u8, value: u64) -> bool {
        let Some(off) = self.check(offset, size) else {
            return false;
        };
        // SAFETY: as in `read`; the mapping is writable or the kernel faults the process, which
        // `Backend::map_region` prevents by mapping read-only regions only for reading devices.
        unsafe {
            let p = self.ptr.as_ptr().add(off);
            match size {
                1 => p.write_volatile(value as u8),
                2 => p.cast::<u16>().write_volatile(value as u16),
                4 => p.cast::<u32>().write_volatile(value as u32),
                _ => p.cast::<u64>().write_volatile(value),
            }
        }
        true
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: ptr/len came from a successful mmap owned by this value alone.
        if let Err(e) = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) } {
            tracing::error!("munmap of a vfio region failed: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn test_mapping_reads_writes_and_refuses_out_of_bounds() {
        let fd = rustix::fs::memfd_create("bb-map-test", rustix::fs::MemfdFlags::CLOEXEC)
            .expect("memfd");
        rustix::fs::ftruncate(&fd, 4096).expect("truncate");
        let m = Mapping::map(fd.as_fd(), 0, 4096, true).expect("map");
        assert!(m.write(8, 4, 0xdead_beef));
        assert_eq!(m.read(8, 4), Some(0xdead_beef));
        assert_eq!(m.read(8, 1), Some(0xef));
        assert!(m.write(4088, 8, u64::MAX));
        assert_eq!(m.read(4088, 8), Some(u64::MAX));
        assert_eq!(m.read(4096, 1), None);
        assert_eq!(m.read(4092, 8), None);
        assert_eq!(m.read(3, 4), None, "misaligned");
        assert_eq!(m.read(0, 3), None, "odd size");
        assert!(!m.write(u64::MAX, 1, 0));
        assert!(Mapping::map(fd.as_fd(), 0, 0, true).is_err());
    }
}
