//! Device memory the client maps directly: a sealed `memfd` mapped into the server, whose fd is
//! sent with the region info of an mmap'able region (`VFIO_REGION_INFO_FLAG_MMAP`).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;

/// Why shared memory could not be made or accessed.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShmError {
    /// memfd_create, ftruncate, sealing or mmap failed.
    #[error("creating shared memory failed: {0}")]
    Create(rustix::io::Errno),
    /// Zero or unrepresentable size.
    #[error("bad shared memory size {0:#x}")]
    Size(u64),
    /// An access outside the memory.
    #[error("access of {len} bytes at {offset:#x} is outside shared memory of {size:#x} bytes")]
    OutOfRange {
        /// Offset.
        offset: u64,
        /// Length.
        len: usize,
        /// Size of the memory.
        size: usize,
    },
}

/// A `memfd` of fixed size, mapped shared; the client maps the same pages.
///
/// Its size is sealed (`F_SEAL_SHRINK | F_SEAL_GROW`), so a client cannot truncate it under
/// the server's mapping. Accesses copy bytes; the client may change the memory at any time.
#[derive(Debug)]
pub struct SharedMemory {
    fd: OwnedFd,
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is owned by this value and only reached through copies.
unsafe impl Send for SharedMemory {}

impl SharedMemory {
    /// Make `size` bytes of zeroed shared memory named `name` (visible in /proc/PID/fd).
    pub fn new(name: &str, size: u64) -> Result<Self, ShmError> {
        use rustix::fs::{MemfdFlags, SealFlags};
        use rustix::mm::{MapFlags, ProtFlags, mmap};
        let len = usize::try_from(size).map_err(|_| ShmError::Size(size))?;
        if len == 0 {
            return Err(ShmError::Size(size));
        }
        let cname =
            std::ffi::CString::new(name.replace('\0', "_")).map_err(|_| ShmError::Size(size))?;
        let fd = rustix::fs::memfd_create(&cname, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
            .map_err(ShmError::Create)?;
        rustix::fs::ftruncate(&fd, size).map_err(ShmError::Create)?;
        rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)
            .map_err(ShmError::Create)?;
        // SAFETY: a fresh kernel-chosen mapping of a file we just sized to `len` bytes.
        let ptr = unsafe {
            mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                &fd,
                0,
            )
        }
        .map_err(ShmError::Create)?;
        let ptr =
            NonNull::new(ptr.cast::<u8>()).ok_or(ShmError::Create(rustix::io::Errno::FAULT))?;
        Ok(Self { fd, ptr, len })
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never true: the size is non-zero.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The fd to send to the client.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn check(&self, offset: u64, len: usize) -> Result<usize, ShmError> {
        let err = ShmError::OutOfRange {
            offset,
            len,
            size: self.len,
        };
        let off = usize::try_from(offset).map_err(|_| err.clone())?;
        match off.checked_add(len) {
            Some(end) if end <= self.len => Ok(off),
            _ => Err(err),
        }
    }

    /// Copy bytes out.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), ShmError> {
        let off = self.check(offset, buf.len())?;
        // SAFETY: off+len is inside the mapping, which lives as long as self.
        unsafe {
            std::ptr::copy_nonoverlapping(self.ptr.as_ptr().add(off), buf.as_mut_ptr(), buf.len())
        };
        Ok(())
    }

    /// Copy bytes in.
    pub fn write(&self, offset: u64, data: &[u8]) -> Result<(), ShmError> {
        let off = self.check(offset, data.len())?;
        // SAFETY: off+len is inside the mapping, which lives as long as self and is writable.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.as_ptr().add(off), data.len())
        };
        Ok(())
    }

    /// Zero the whole memory.
    pub fn clear(&self) {
        // SAFETY: the whole mapping, which lives as long as self.
        unsafe { std::ptr::write_bytes(self.ptr.as_ptr(), 0, self.len) };
    }
}

impl Drop for SharedMemory {
    fn drop(&mut self) {
        // SAFETY: exactly the mapping made in `new`.
        if let Err(e) = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) } {
            tracing::warn!(target: "vfio_user", "munmap of shared memory failed: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_shared_memory_is_visible_through_the_fd() {
        let shm = SharedMemory::new("t", 0x1000).unwrap();
        shm.write(0x10, b"abc").unwrap();
        let mut b = [0; 3];
        rustix::io::pread(shm.fd(), &mut b, 0x10).unwrap();
        assert_eq!(&b, b"abc");
        rustix::io::pwrite(shm.fd(), b"xyz", 0x20).unwrap();
        shm.read(0x20, &mut b).unwrap();
        assert_eq!(&b, b"xyz");
    }

    #[test]
    fn test_shared_memory_bounds_and_seals() {
        let shm = SharedMemory::new("t", 0x100).unwrap();
        assert!(matches!(
            shm.write(0xff, &[0, 0]),
            Err(ShmError::OutOfRange { .. })
        ));
        assert!(matches!(
            shm.read(u64::MAX, &mut [0]),
            Err(ShmError::OutOfRange { .. })
        ));
        assert!(
            rustix::fs::ftruncate(shm.fd(), 0).is_err(),
            "size is sealed"
        );
        assert_eq!(SharedMemory::new("t", 0).unwrap_err(), ShmError::Size(0));
    }
}
