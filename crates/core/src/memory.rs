//! Guest memory and the system address space.
//!
//! RAM and ROM are host memory (a `memfd` mapping, so it can be shared with an out-of-process
//! device later); harts reach it through host pointers. MMIO regions are a sorted,
//! non-overlapping list dispatched by binary search (O(log n)). `GuestMemory` is the RAM-only
//! view devices use for DMA: DMA never reaches MMIO, so a device can't re-enter another.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::os::fd::OwnedFd;
use std::ptr::NonNull;
use std::rc::Rc;

use thiserror::Error;

use crate::device::{DeviceCell, DeviceId};

/// Errors from building the address space or allocating memory.
#[derive(Debug, Error)]
pub enum MemoryError {
    /// Two regions claim the same addresses.
    #[error(
        "region '{new}' at {new_base:#x}..{new_end:#x} overlaps '{old}' at {old_base:#x}..{old_end:#x}"
    )]
    Overlap {
        /// Region being added.
        new: String,
        /// Its start.
        new_base: u64,
        /// Its end (exclusive).
        new_end: u64,
        /// Region already there.
        old: String,
        /// Its start.
        old_base: u64,
        /// Its end (exclusive).
        old_end: u64,
    },
    /// A region of size 0 or one that runs past the end of the 64-bit address space.
    #[error("region '{name}' at {base:#x} with size {size:#x} is empty or wraps the address space")]
    BadRange {
        /// Region.
        name: String,
        /// Start.
        base: u64,
        /// Size.
        size: u64,
    },
    /// The host refused to give us memory.
    #[error("cannot allocate {size:#x} bytes of guest memory for '{name}'")]
    Alloc {
        /// Region.
        name: String,
        /// Bytes asked for.
        size: u64,
        /// Host error.
        #[source]
        source: std::io::Error,
    },
}

/// Why an access did not complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum AccessError {
    /// Nothing is mapped at the address (or the access runs off the end of a region).
    #[error("no region mapped at {0:#x}")]
    Unmapped(u64),
    /// A write to ROM.
    #[error("write to read-only memory at {0:#x}")]
    ReadOnly(u64),
    /// DMA aimed at MMIO, which is refused.
    #[error("DMA to MMIO at {0:#x} refused")]
    NotRam(u64),
    /// The device is busy in an access of its own (re-entrant access).
    #[error("device at {0:#x} re-entered")]
    Reentrant(u64),
}

/// A block of host memory backing guest RAM or ROM.
pub struct RamBlock {
    ptr: NonNull<u8>,
    size: usize,
    fd: OwnedFd,
}

impl std::fmt::Debug for RamBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RamBlock")
            .field("size", &self.size)
            .finish()
    }
}

impl RamBlock {
    /// Allocates `size` zeroed bytes (rounded up to a page) backed by a memfd.
    pub fn new(name: &str, size: u64) -> Result<RamBlock, MemoryError> {
        let alloc_err = |e: std::io::Error| MemoryError::Alloc {
            name: name.to_string(),
            size,
            source: e,
        };
        let len = usize::try_from(size)
            .ok()
            .and_then(|s| s.checked_next_multiple_of(4096))
            .filter(|&s| s > 0)
            .ok_or_else(|| MemoryError::BadRange {
                name: name.to_string(),
                base: 0,
                size,
            })?;
        let fd = rustix::fs::memfd_create(
            "breadboard-ram",
            rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::ALLOW_SEALING,
        )
        .map_err(|e| alloc_err(e.into()))?;
        rustix::fs::ftruncate(&fd, len as u64).map_err(|e| alloc_err(e.into()))?;
        // RAM never changes size. The seals say so to whoever we share the fd with (a
        // vfio-user server maps it only when it cannot shrink under the mapping), and
        // F_SEAL_SEAL keeps that process from adding seals of its own (F_SEAL_FUTURE_WRITE).
        rustix::fs::fcntl_add_seals(
            &fd,
            rustix::fs::SealFlags::SHRINK
                | rustix::fs::SealFlags::GROW
                | rustix::fs::SealFlags::SEAL,
        )
        .map_err(|e| alloc_err(e.into()))?;
        // SAFETY: we map a fresh memfd of exactly `len` bytes at an address of the kernel's
        // choosing; nothing else aliases it. The mapping lives until `drop`.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                rustix::mm::MapFlags::SHARED | rustix::mm::MapFlags::NORESERVE,
                &fd,
                0,
            )
        }
        .map_err(|e| alloc_err(e.into()))?;
        let ptr = NonNull::new(ptr.cast::<u8>())
            .ok_or_else(|| alloc_err(std::io::Error::other("mmap returned a null pointer")))?;
        Ok(RamBlock { ptr, size: len, fd })
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size as u64
    }

    /// Host address of byte 0. Valid for the life of the block.
    pub fn host_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The memfd, for sharing with another process. It is sealed at its size
    /// (`F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL`): no one holding it can resize it.
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    fn range(&self, offset: u64, len: usize) -> Option<usize> {
        let off = usize::try_from(offset).ok()?;
        let end = off.checked_add(len)?;
        (end <= self.size).then_some(off)
    }

    /// Copies bytes out at `offset`; `None` if out of range.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Option<()> {
        let off = self.range(offset, buf.len())?;
        // SAFETY: `range` checked `off + buf.len() <= size`; the mapping is live; guest memory
        // is plain bytes, and `buf` cannot alias guest memory handed out as `&mut`.
        unsafe {
            std::ptr::copy_nonoverlapping(self.ptr.as_ptr().add(off), buf.as_mut_ptr(), buf.len());
        }
        Some(())
    }

    /// Copies bytes in at `offset`; `None` if out of range.
    pub fn write(&self, offset: u64, data: &[u8]) -> Option<()> {
        let off = self.range(offset, data.len())?;
        // SAFETY: as in `read`; bounds checked by `range`.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.as_ptr().add(off), data.len());
        }
        Some(())
    }

    /// Little-endian load of 1, 2, 4 or 8 bytes.
    pub fn load(&self, offset: u64, size: u8) -> Option<u64> {
        let mut b = [0u8; 8];
        self.read(offset, b.get_mut(..usize::from(size))?)?;
        Some(u64::from_le_bytes(b))
    }

    /// Little-endian store of 1, 2, 4 or 8 bytes.
    pub fn store(&self, offset: u64, size: u8, value: u64) -> Option<()> {
        let b = value.to_le_bytes();
        self.write(offset, b.get(..usize::from(size))?)
    }
}

impl Drop for RamBlock {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`size` are exactly what mmap returned; no pointer into the block is
        // used after the machine (which owns every block) is dropped.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.size) };
    }
}

/// What a region of the address space is.
#[derive(Clone)]
pub enum RegionKind {
    /// Guest RAM (read-write) or ROM (`readonly`).
    Ram {
        /// Backing memory.
        block: Rc<RamBlock>,
        /// Writes are refused.
        readonly: bool,
    },
    /// Device registers: accesses go to `device.read/write(index, offset, …)`.
    Mmio {
        /// The device.
        device: DeviceCell,
        /// Which of the device's regions.
        index: usize,
    },
}

/// One mapped region.
#[derive(Clone)]
pub struct Region {
    /// Name shown in `info mtree`.
    pub name: String,
    /// First address.
    pub base: u64,
    /// Size in bytes (non-zero).
    pub size: u64,
    /// RAM, ROM or MMIO.
    pub kind: RegionKind,
    /// Owning device, if any.
    pub owner: Option<DeviceId>,
}

impl Region {
    /// Last address + 1 (saturating at the top of the address space).
    pub fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }

    fn contains(&self, addr: u64, len: u64) -> bool {
        addr >= self.base && addr.checked_add(len).is_some_and(|e| e <= self.end())
    }

    fn kind_name(&self) -> &'static str {
        match &self.kind {
            RegionKind::Ram {
                readonly: false, ..
            } => "ram",
            RegionKind::Ram { readonly: true, .. } => "rom",
            RegionKind::Mmio { .. } => "i/o",
        }
    }
}

/// The system address space: every region a hart or DMA can reach.
#[derive(Clone, Default)]
pub struct AddressSpace {
    regions: Vec<Region>,
}

impl AddressSpace {
    /// An empty address space.
    pub fn new() -> AddressSpace {
        AddressSpace::default()
    }

    /// Maps a region; overlapping an existing one is an error naming both.
    pub fn add(&mut self, region: Region) -> Result<(), MemoryError> {
        if region.size == 0 || region.base.checked_add(region.size - 1).is_none() {
            return Err(MemoryError::BadRange {
                name: region.name,
                base: region.base,
                size: region.size,
            });
        }
        let at = self.regions.partition_point(|r| r.base < region.base);
        let clash = [at.checked_sub(1), Some(at)]
            .into_iter()
            .flatten()
            .filter_map(|i| self.regions.get(i))
            .find(|r| r.base < region.end() && region.base < r.end());
        if let Some(old) = clash {
            return Err(MemoryError::Overlap {
                new: region.name.clone(),
                new_base: region.base,
                new_end: region.end(),
                old: old.name.clone(),
                old_base: old.base,
                old_end: old.end(),
            });
        }
        self.regions.insert(at, region);
        Ok(())
    }

    /// Removes every region owned by `owner`.
    pub fn remove_owner(&mut self, owner: DeviceId) {
        self.regions.retain(|r| r.owner != Some(owner));
    }

    /// The region containing `addr`, by binary search.
    pub fn find(&self, addr: u64) -> Option<&Region> {
        let i = self
            .regions
            .partition_point(|r| r.base <= addr)
            .checked_sub(1)?;
        self.regions.get(i).filter(|r| addr < r.end())
    }

    /// All regions, sorted by address.
    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    /// Whether any region overlaps `[base, base+size)`.
    pub fn is_free(&self, base: u64, size: u64) -> bool {
        base.checked_add(size).is_some() && self.first_overlap(base, size).is_none()
    }

    /// The lowest region overlapping `[base, base+size)`, by binary search: regions are sorted
    /// and disjoint, so their ends are sorted too.
    pub fn first_overlap(&self, base: u64, size: u64) -> Option<&Region> {
        let end = base.saturating_add(size);
        let i = self.regions.partition_point(|r| r.end() <= base);
        self.regions.get(i).filter(|r| r.base < end)
    }

    /// Reads `size` (1, 2, 4, 8) bytes at `addr`, little-endian.
    pub fn read(&self, addr: u64, size: u8) -> Result<u64, AccessError> {
        let r = self
            .find(addr)
            .filter(|r| r.contains(addr, u64::from(size)))
            .ok_or(AccessError::Unmapped(addr))?;
        let off = addr - r.base;
        match &r.kind {
            RegionKind::Ram { block, .. } => {
                block.load(off, size).ok_or(AccessError::Unmapped(addr))
            }
            RegionKind::Mmio { device, index } => {
                let mut d = device
                    .try_borrow_mut()
                    .map_err(|_| AccessError::Reentrant(addr))?;
                Ok(d.read(*index, off, size))
            }
        }
    }

    /// Writes `size` (1, 2, 4, 8) bytes at `addr`, little-endian.
    pub fn write(&self, addr: u64, size: u8, value: u64) -> Result<(), AccessError> {
        let r = self
            .find(addr)
            .filter(|r| r.contains(addr, u64::from(size)))
            .ok_or(AccessError::Unmapped(addr))?;
        let off = addr - r.base;
        match &r.kind {
            RegionKind::Ram { readonly: true, .. } => Err(AccessError::ReadOnly(addr)),
            RegionKind::Ram { block, .. } => block
                .store(off, size, value)
                .ok_or(AccessError::Unmapped(addr)),
            RegionKind::Mmio { device, index } => {
                let mut d = device
                    .try_borrow_mut()
                    .map_err(|_| AccessError::Reentrant(addr))?;
                d.write(*index, off, size, value);
                Ok(())
            }
        }
    }

    /// Host pointer and writability for the RAM/ROM byte at `addr`.
    pub fn host_ptr(&self, addr: u64) -> Option<(*mut u8, u64, bool)> {
        let r = self.find(addr)?;
        match &r.kind {
            RegionKind::Ram { block, readonly } => {
                let off = addr - r.base;
                if off >= block.size() {
                    return None;
                }
                // `off < size` was checked and the block is one mapping, so this stays inside it.
                let p = block.host_ptr().wrapping_add(usize::try_from(off).ok()?);
                Some((p, r.base, !readonly))
            }
            RegionKind::Mmio { .. } => None,
        }
    }

    /// Loads bytes into RAM or ROM (loaders may write ROM); errors if any byte is not RAM/ROM.
    pub fn load_bytes(&self, addr: u64, data: &[u8]) -> Result<(), AccessError> {
        self.walk_ram(addr, data.len() as u64, |block, off, done, n| {
            let chunk = data
                .get(done..done + n)
                .ok_or(AccessError::Unmapped(addr))?;
            block.write(off, chunk).ok_or(AccessError::Unmapped(addr))
        })
    }

    /// Checks that `[addr, addr+len)` is entirely RAM or ROM, without touching it.
    pub fn check_ram(&self, addr: u64, len: u64) -> Result<(), AccessError> {
        self.walk_ram(addr, len, |_, _, _, _| Ok(()))
    }

    /// Calls `f(block, offset in block, bytes done so far, chunk length)` for each RAM/ROM piece
    /// of the range; any byte that is not RAM/ROM is an error.
    fn walk_ram(
        &self,
        addr: u64,
        len: u64,
        mut f: impl FnMut(&RamBlock, u64, usize, usize) -> Result<(), AccessError>,
    ) -> Result<(), AccessError> {
        let len = usize::try_from(len).map_err(|_| AccessError::Unmapped(addr))?;
        let mut done = 0usize;
        while done < len {
            let a = addr
                .checked_add(done as u64)
                .ok_or(AccessError::Unmapped(addr))?;
            let r = self.find(a).ok_or(AccessError::Unmapped(a))?;
            let RegionKind::Ram { block, .. } = &r.kind else {
                return Err(AccessError::NotRam(a));
            };
            let room = usize::try_from(r.end() - a).unwrap_or(usize::MAX);
            let n = room.min(len - done);
            f(block, a - r.base, done, n)?;
            done += n;
        }
        Ok(())
    }

    /// A text dump in the style of QEMU's `info mtree -f`.
    pub fn mtree(&self) -> String {
        let mut s = String::from(
            "FlatView #0\n AS \"memory\", root: system\n Root memory region: system\n",
        );
        for r in &self.regions {
            let _ = writeln!(
                s,
                "  {:016x}-{:016x} (prio 0, {}): {}",
                r.base,
                r.end().saturating_sub(1),
                r.kind_name(),
                r.name
            );
        }
        s
    }

    /// The RAM-only view for DMA.
    pub fn guest_memory(&self) -> GuestMemory {
        let blocks = self
            .regions
            .iter()
            .filter_map(|r| match &r.kind {
                RegionKind::Ram { block, readonly } => Some((r.base, Rc::clone(block), *readonly)),
                RegionKind::Mmio { .. } => None,
            })
            .collect();
        GuestMemory {
            blocks: RefCell::new(blocks),
            notifier: RefCell::new(None),
        }
    }
}

/// Called with `(address, length)` after DMA writes, so harts drop stale decoded code.
pub type WriteNotifier = Rc<dyn Fn(u64, u64)>;

/// The RAM view devices use for DMA. Shared (`Rc`) by all devices of a machine.
pub struct GuestMemory {
    blocks: RefCell<Vec<(u64, Rc<RamBlock>, bool)>>,
    notifier: RefCell<Option<WriteNotifier>>,
}

impl std::fmt::Debug for GuestMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuestMemory")
            .field("blocks", &self.blocks.borrow().len())
            .finish()
    }
}

impl Default for GuestMemory {
    fn default() -> Self {
        GuestMemory {
            blocks: RefCell::new(Vec::new()),
            notifier: RefCell::new(None),
        }
    }
}

impl GuestMemory {
    /// Every RAM and ROM block as (guest base, block, read-only), for handing guest memory to an
    /// out-of-process device (vfio DMA mapping).
    pub fn ram_blocks(&self) -> Vec<(u64, Rc<RamBlock>, bool)> {
        self.blocks.borrow().clone()
    }

    /// Replaces the RAM list (after the address space changed).
    pub fn update_from(&self, space: &AddressSpace) {
        *self.blocks.borrow_mut() = space.guest_memory().blocks.into_inner();
    }

    /// Installs the code-invalidation hook.
    pub fn set_write_notifier(&self, n: WriteNotifier) {
        *self.notifier.borrow_mut() = Some(n);
    }

    fn locate(&self, addr: u64, len: usize) -> Result<(Rc<RamBlock>, u64, bool), AccessError> {
        let len = len as u64;
        self.blocks
            .borrow()
            .iter()
            .find(|(base, b, _)| {
                addr >= *base
                    && addr
                        .checked_add(len)
                        .is_some_and(|e| e <= base.saturating_add(b.size()))
            })
            .map(|(base, b, ro)| (Rc::clone(b), addr - base, *ro))
            .ok_or(AccessError::NotRam(addr))
    }

    /// Reads guest RAM at `addr` into `buf`; the whole range must be in one RAM block.
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), AccessError> {
        let (b, off, _) = self.locate(addr, buf.len())?;
        b.read(off, buf).ok_or(AccessError::NotRam(addr))
    }

    /// Writes `data` to guest RAM at `addr`; ROM and MMIO are refused.
    pub fn write(&self, addr: u64, data: &[u8]) -> Result<(), AccessError> {
        let (b, off, ro) = self.locate(addr, data.len())?;
        if ro {
            return Err(AccessError::ReadOnly(addr));
        }
        b.write(off, data).ok_or(AccessError::NotRam(addr))?;
        let n = self.notifier.borrow().clone();
        if let Some(n) = n {
            n(addr, data.len() as u64);
        }
        Ok(())
    }

    /// Little-endian u16/u32/u64 helpers for descriptor parsing.
    pub fn read_u16(&self, addr: u64) -> Result<u16, AccessError> {
        let mut b = [0; 2];
        self.read(addr, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }

    /// See [`GuestMemory::read_u16`].
    pub fn read_u32(&self, addr: u64) -> Result<u32, AccessError> {
        let mut b = [0; 4];
        self.read(addr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// See [`GuestMemory::read_u16`].
    pub fn read_u64(&self, addr: u64) -> Result<u64, AccessError> {
        let mut b = [0; 8];
        self.read(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Stores a little-endian u16.
    pub fn write_u16(&self, addr: u64, v: u16) -> Result<(), AccessError> {
        self.write(addr, &v.to_le_bytes())
    }

    /// Stores a little-endian u32.
    pub fn write_u32(&self, addr: u64, v: u32) -> Result<(), AccessError> {
        self.write(addr, &v.to_le_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ram(name: &str, base: u64, size: u64) -> Region {
        Region {
            name: name.into(),
            base,
            size,
            kind: RegionKind::Ram {
                block: Rc::new(RamBlock::new(name, size).expect("alloc")),
                readonly: false,
            },
            owner: None,
        }
    }

    #[test]
    fn test_ram_memfd_is_sealed_at_its_size() {
        use rustix::fs::SealFlags;
        let block = RamBlock::new("ram", 0x1800).expect("alloc");
        assert_eq!(block.size(), 0x2000, "rounded up to a page");
        let seals = rustix::fs::fcntl_get_seals(block.fd()).expect("F_GET_SEALS");
        assert!(seals.contains(SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL));
        assert_eq!(
            rustix::fs::ftruncate(block.fd(), 0x1000),
            Err(rustix::io::Errno::PERM)
        );
        assert_eq!(
            rustix::fs::ftruncate(block.fd(), 0x4000),
            Err(rustix::io::Errno::PERM)
        );
        assert_eq!(
            rustix::fs::fcntl_add_seals(block.fd(), SealFlags::FUTURE_WRITE),
            Err(rustix::io::Errno::PERM),
            "a process we share it with cannot add seals"
        );
        // The guest still reads and writes it.
        block
            .store(0x1ff8, 8, 0x0102_0304_0506_0708)
            .expect("store");
        assert_eq!(block.load(0x1ff8, 8), Some(0x0102_0304_0506_0708));
    }

    #[test]
    fn test_overlap_error_names_both_regions() {
        let mut a = AddressSpace::new();
        a.add(ram("ram", 0x8000_0000, 0x10000)).expect("first");
        let e = a.add(ram("rom", 0x8000_f000, 0x2000)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "region 'rom' at 0x8000f000..0x80011000 overlaps 'ram' at 0x80000000..0x80010000"
        );
        a.add(ram("below", 0x7fff_f000, 0x1000))
            .expect("adjacent is fine");
    }

    #[test]
    fn test_ram_access_all_sizes_and_bounds() {
        let mut a = AddressSpace::new();
        a.add(ram("ram", 0x1000, 0x1000)).expect("add");
        a.write(0x1000, 8, 0x1122_3344_5566_7788).expect("write");
        assert_eq!(a.read(0x1000, 1), Ok(0x88));
        assert_eq!(a.read(0x1002, 2), Ok(0x5566));
        assert_eq!(a.read(0x1004, 4), Ok(0x1122_3344));
        assert_eq!(a.read(0x1ffc, 8), Err(AccessError::Unmapped(0x1ffc)));
        assert_eq!(a.read(0x0fff, 1), Err(AccessError::Unmapped(0xfff)));
        assert!(
            a.mtree()
                .contains("0000000000001000-0000000000001fff (prio 0, ram): ram")
        );
    }

    #[test]
    fn test_zero_and_wrapping_regions_rejected() {
        let mut a = AddressSpace::new();
        assert!(
            a.add(Region {
                size: 0,
                ..ram("z", 0, 4096)
            })
            .is_err()
        );
        assert!(
            a.add(Region {
                base: u64::MAX - 10,
                ..ram("w", 0, 4096)
            })
            .is_err()
        );
    }

    #[test]
    fn test_dma_refuses_outside_ram_and_notifies_writes() {
        let mut a = AddressSpace::new();
        a.add(ram("ram", 0x1000, 0x1000)).expect("add");
        let g = a.guest_memory();
        let seen = Rc::new(std::cell::Cell::new((0, 0)));
        let s2 = Rc::clone(&seen);
        g.set_write_notifier(Rc::new(move |a, l| s2.set((a, l))));
        g.write(0x1ff0, &[1, 2, 3]).expect("in range");
        assert_eq!(seen.get(), (0x1ff0, 3));
        assert_eq!(
            g.write(0x1ffe, &[1, 2, 3]),
            Err(AccessError::NotRam(0x1ffe))
        );
        assert_eq!(g.read_u16(0x1ff1), Ok(0x0302));
    }
}
