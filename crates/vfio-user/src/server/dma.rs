//! Guest memory as the client shared it: `VFIO_USER_DMA_MAP` windows, each either mapped from
//! the client's fd (direct access; only an fd sealed against shrinking, which the client cannot
//! truncate under the mapping) or reached through `VFIO_USER_DMA_READ`/`DMA_WRITE` messages to
//! the client. Every access is checked against the windows before any byte moves.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, BorrowedFd};
use std::ptr::NonNull;

use super::DmaAccess;

/// Most windows a client may map at once (the spec's default `max_dma_maps`).
pub const MAX_WINDOWS: usize = 65535;

/// Why a DMA access or a map/unmap request failed.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum DmaError {
    /// Some byte of the range is in no window.
    #[error("DMA of {len} bytes at {addr:#x} is outside the mapped windows")]
    Unmapped {
        /// Guest physical address.
        addr: u64,
        /// Length.
        len: usize,
    },
    /// The window does not allow this direction.
    #[error("DMA {dir} at {addr:#x} is not allowed by its window")]
    Denied {
        /// Guest physical address.
        addr: u64,
        /// "read" or "write".
        dir: &'static str,
    },
    /// A window without fd was accessed and the client did not answer the message.
    #[error("DMA message to the client failed: {0}")]
    Message(String),
    /// A map request overlaps a window already mapped (`EEXIST`).
    #[error("window {iova:#x}+{size:#x} overlaps a mapped window")]
    Overlap {
        /// Start.
        iova: u64,
        /// Size.
        size: u64,
    },
    /// A map request is malformed: zero size, wrapping range, too many windows.
    #[error("bad DMA window {iova:#x}+{size:#x}: {why}")]
    BadWindow {
        /// Start.
        iova: u64,
        /// Size.
        size: u64,
        /// What is wrong.
        why: &'static str,
    },
    /// An unmap request names no window exactly.
    #[error("no window {iova:#x}+{size:#x} to unmap")]
    NoWindow {
        /// Start.
        iova: u64,
        /// Size.
        size: u64,
    },
    /// `mmap` of the client's fd failed.
    #[error("mapping the client's fd failed: {0}")]
    Mmap(rustix::io::Errno),
}

/// Carries DMA for windows the client shared without an fd.
pub trait DmaTransport {
    /// `VFIO_USER_DMA_READ` of `buf.len()` bytes (at most the client's `max_data_xfer_size`).
    fn dma_read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), String>;
    /// `VFIO_USER_DMA_WRITE`.
    fn dma_write(&mut self, addr: u64, data: &[u8]) -> Result<(), String>;
}

/// A shared mapping of (part of) a client fd.
#[derive(Debug)]
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory owned by this value; moving it between threads
// moves ownership of the mapping with it.
unsafe impl Send for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `fd` at `offset`; `Ok(None)` when the fd is large enough but not
    /// sealed against shrinking (the window then goes through messages).
    fn new(
        fd: BorrowedFd<'_>,
        offset: u64,
        len: u64,
        writable: bool,
    ) -> Result<Option<Self>, DmaError> {
        use rustix::mm::{MapFlags, ProtFlags, mmap};
        let bad = |why| DmaError::BadWindow {
            iova: 0,
            size: len,
            why,
        };
        let ulen = usize::try_from(len).map_err(|_| bad("too large for this host"))?;
        // A mapping past the end of the file would fault (SIGBUS) on access: refuse it now.
        let st = rustix::fs::fstat(fd).map_err(DmaError::Mmap)?;
        let end = offset.checked_add(len).ok_or(bad("fd offset wraps"))?;
        if u64::try_from(st.st_size).map_or(true, |size| size < end) {
            return Err(bad("fd is smaller than the window"));
        }
        // The client keeps its own fd: unless the file can never shrink, it could truncate it
        // later and our next access would fault.
        if !crate::seal::cannot_shrink(fd) {
            return Ok(None);
        }
        let prot = if writable {
            ProtFlags::READ | ProtFlags::WRITE
        } else {
            ProtFlags::READ
        };
        // SAFETY: a fresh mapping chosen by the kernel (null hint) aliases no Rust object; the
        // fd and offset come from the client and were checked against the file's size.
        let ptr = unsafe {
            mmap(
                std::ptr::null_mut(),
                ulen,
                prot,
                MapFlags::SHARED,
                fd,
                offset,
            )
        }
        .map_err(DmaError::Mmap)?;
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or(DmaError::Mmap(rustix::io::Errno::FAULT))?;
        Ok(Some(Self { ptr, len: ulen }))
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: ptr/len are exactly what mmap returned and nothing borrows the mapping past
        // its owner's life.
        if let Err(e) = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) } {
            tracing::warn!(target: "vfio_user", "munmap of a DMA window failed: {e}");
        }
    }
}

#[derive(Debug)]
struct Window {
    size: u64,
    readable: bool,
    writable: bool,
    map: Option<Mapping>,
}

/// The guest memory a client shared, as a device sees it.
pub struct Dma {
    windows: BTreeMap<u64, Window>,
    transport: Option<Box<dyn DmaTransport + Send>>,
    /// Largest single `DMA_READ`/`DMA_WRITE` message payload.
    max_xfer: usize,
}

impl std::fmt::Debug for Dma {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dma")
            .field("windows", &self.windows)
            .finish_non_exhaustive()
    }
}

impl Default for Dma {
    fn default() -> Self {
        Self::new()
    }
}

impl Dma {
    /// No windows.
    pub fn new() -> Self {
        Self {
            windows: BTreeMap::new(),
            transport: None,
            max_xfer: 1 << 20,
        }
    }

    /// Set how message-backed windows are reached, and the largest message payload.
    pub fn set_transport(
        &mut self,
        transport: Option<Box<dyn DmaTransport + Send>>,
        max_xfer: usize,
    ) {
        self.transport = transport;
        self.max_xfer = max_xfer.max(1);
    }

    /// Number of windows.
    pub fn window_count(&self) -> usize {
        self.windows.len()
    }

    /// `VFIO_USER_DMA_MAP`: add a window, mapping `fd` at `offset` if given.
    pub fn map(
        &mut self,
        iova: u64,
        size: u64,
        readable: bool,
        writable: bool,
        fd: Option<(BorrowedFd<'_>, u64)>,
    ) -> Result<(), DmaError> {
        let bad = |why| DmaError::BadWindow { iova, size, why };
        if size == 0 {
            return Err(bad("zero size"));
        }
        let end = iova.checked_add(size).ok_or(bad("range wraps"))?;
        if self.windows.len() >= MAX_WINDOWS {
            return Err(bad("too many windows"));
        }
        // Overlap: the window starting before `end` with the highest start must end at or
        // before `iova`.
        if let Some((&s, w)) = self.windows.range(..end).next_back()
            && s.saturating_add(w.size) > iova
        {
            return Err(DmaError::Overlap { iova, size });
        }
        let map = match fd {
            Some((fd, off)) => {
                let map = Mapping::new(fd.as_fd(), off, size, writable).map_err(|e| match e {
                    DmaError::BadWindow { why, .. } => DmaError::BadWindow { iova, size, why },
                    other => other,
                })?;
                if map.is_none() {
                    tracing::warn!(target: "vfio_user",
                        "DMA window {iova:#x}+{size:#x}: the client's fd is not sealed against \
                         shrinking (F_SEAL_SHRINK); using DMA_READ/DMA_WRITE messages");
                }
                map
            }
            None => None,
        };
        self.windows.insert(
            iova,
            Window {
                size,
                readable,
                writable,
                map,
            },
        );
        Ok(())
    }

    /// `VFIO_USER_DMA_UNMAP`: remove the window that is exactly `iova`+`size`.
    pub fn unmap(&mut self, iova: u64, size: u64) -> Result<(), DmaError> {
        match self.windows.get(&iova) {
            Some(w) if w.size == size => {
                self.windows.remove(&iova);
                Ok(())
            }
            _ => Err(DmaError::NoWindow { iova, size }),
        }
    }

    /// Drop every window (the client went away).
    pub fn clear(&mut self) {
        self.windows.clear();
        self.transport = None;
    }

    /// Split `[addr, addr+len)` into per-window pieces: (window start, offset in window,
    /// offset in the caller's buffer, length). Fails unless every byte is covered and the
    /// windows allow the direction.
    fn pieces(
        &self,
        addr: u64,
        len: usize,
        write: bool,
    ) -> Result<Vec<(u64, u64, usize, usize)>, DmaError> {
        let end = addr
            .checked_add(len as u64)
            .ok_or(DmaError::Unmapped { addr, len })?;
        let mut out = Vec::new();
        let mut cur = addr;
        while cur < end {
            let (&start, w) = self
                .windows
                .range(..=cur)
                .next_back()
                .ok_or(DmaError::Unmapped { addr, len })?;
            let wend = start.saturating_add(w.size);
            if cur >= wend {
                return Err(DmaError::Unmapped { addr, len });
            }
            if (write && !w.writable) || (!write && !w.readable) {
                return Err(DmaError::Denied {
                    addr: cur,
                    dir: if write { "write" } else { "read" },
                });
            }
            let take = wend.min(end) - cur;
            // `take` <= len, which is a usize.
            let take = usize::try_from(take).map_err(|_| DmaError::Unmapped { addr, len })?;
            let buf_off =
                usize::try_from(cur - addr).map_err(|_| DmaError::Unmapped { addr, len })?;
            out.push((start, cur - start, buf_off, take));
            cur = cur.saturating_add(take as u64);
        }
        Ok(out)
    }

    fn transport(&mut self) -> Result<&mut Box<dyn DmaTransport + Send>, DmaError> {
        self.transport
            .as_mut()
            .ok_or_else(|| DmaError::Message("no message channel to the client".into()))
    }
}

impl DmaAccess for Dma {
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        for (start, off, boff, n) in self.pieces(addr, buf.len(), false)? {
            let dst = buf
                .get_mut(boff..boff + n)
                .ok_or(DmaError::Unmapped { addr, len: n })?;
            let mapped = self
                .windows
                .get(&start)
                .and_then(|w| w.map.as_ref())
                .map(|m| (m.ptr, m.len));
            match mapped {
                Some((ptr, mlen)) => {
                    let off =
                        usize::try_from(off).map_err(|_| DmaError::Unmapped { addr, len: n })?;
                    if off.checked_add(n).is_none_or(|e| e > mlen) {
                        return Err(DmaError::Unmapped { addr, len: n });
                    }
                    // SAFETY: off+n is within the mapping (checked above); the mapping lives
                    // as long as its window, which we hold. The guest may change this memory
                    // concurrently, as with any DMA; we copy bytes and interpret nothing here.
                    unsafe {
                        std::ptr::copy_nonoverlapping(ptr.as_ptr().add(off), dst.as_mut_ptr(), n)
                    };
                }
                None => {
                    let max = self.max_xfer;
                    let piece_addr = start.saturating_add(off);
                    let t = self.transport()?;
                    for (i, chunk) in dst.chunks_mut(max).enumerate() {
                        let a = piece_addr.saturating_add((i * max) as u64);
                        t.dma_read(a, chunk).map_err(DmaError::Message)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), DmaError> {
        for (start, off, boff, n) in self.pieces(addr, data.len(), true)? {
            let src = data
                .get(boff..boff + n)
                .ok_or(DmaError::Unmapped { addr, len: n })?;
            let mapped = self
                .windows
                .get(&start)
                .and_then(|w| w.map.as_ref())
                .map(|m| (m.ptr, m.len));
            match mapped {
                Some((ptr, mlen)) => {
                    let off =
                        usize::try_from(off).map_err(|_| DmaError::Unmapped { addr, len: n })?;
                    if off.checked_add(n).is_none_or(|e| e > mlen) {
                        return Err(DmaError::Unmapped { addr, len: n });
                    }
                    // SAFETY: as in `read`; the window is writable (checked by `pieces`) so it
                    // was mapped with PROT_WRITE.
                    unsafe {
                        std::ptr::copy_nonoverlapping(src.as_ptr(), ptr.as_ptr().add(off), n)
                    };
                }
                None => {
                    let max = self.max_xfer;
                    let piece_addr = start.saturating_add(off);
                    let t = self.transport()?;
                    for (i, chunk) in src.chunks(max).enumerate() {
                        let a = piece_addr.saturating_add((i * max) as u64);
                        t.dma_write(a, chunk).map_err(DmaError::Message)?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::OwnedFd;
    use std::sync::{Arc, Mutex};

    /// Guest RAM as breadboard makes it: a memfd sealed at its size.
    fn memfd(size: u64) -> OwnedFd {
        let fd = unsealed_memfd(size);
        rustix::fs::fcntl_add_seals(
            &fd,
            rustix::fs::SealFlags::SHRINK | rustix::fs::SealFlags::GROW,
        )
        .unwrap();
        fd
    }

    fn unsealed_memfd(size: u64) -> OwnedFd {
        let fd = rustix::fs::memfd_create(
            c"guest",
            rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::ALLOW_SEALING,
        )
        .unwrap();
        rustix::fs::ftruncate(&fd, size).unwrap();
        fd
    }

    fn pread(fd: &OwnedFd, off: u64, n: usize) -> Vec<u8> {
        let mut b = vec![0; n];
        rustix::io::pread(fd, &mut b, off).unwrap();
        b
    }

    #[test]
    fn test_mapped_window_reads_and_writes_the_clients_memory() {
        let fd = memfd(0x2000);
        rustix::io::pwrite(&fd, b"hello", 0x1010).unwrap();
        let mut dma = Dma::new();
        dma.map(0x8000_0000, 0x1000, true, true, Some((fd.as_fd(), 0x1000)))
            .unwrap();
        let mut b = [0; 5];
        dma.read(0x8000_0010, &mut b).unwrap();
        assert_eq!(&b, b"hello");
        dma.write(0x8000_0ffc, &[1, 2, 3, 4]).unwrap();
        assert_eq!(pread(&fd, 0x1ffc, 4), [1, 2, 3, 4]);
    }

    #[test]
    fn test_access_past_window_end_is_refused_before_any_byte_moves() {
        let fd = memfd(0x1000);
        let mut dma = Dma::new();
        dma.map(0x1000, 0x1000, true, true, Some((fd.as_fd(), 0)))
            .unwrap();
        let err = dma.write(0x1ffe, &[9, 9, 9, 9]).unwrap_err();
        assert_eq!(
            err,
            DmaError::Unmapped {
                addr: 0x1ffe,
                len: 4
            }
        );
        assert_eq!(pread(&fd, 0xffe, 2), [0, 0]);
        assert!(matches!(
            dma.read(0x0, &mut [0; 1]),
            Err(DmaError::Unmapped { .. })
        ));
        assert!(matches!(
            dma.read(u64::MAX, &mut [0; 2]),
            Err(DmaError::Unmapped { .. })
        ));
    }

    #[test]
    fn test_access_spanning_adjacent_windows_works() {
        let a = memfd(0x1000);
        let b = memfd(0x1000);
        let mut dma = Dma::new();
        dma.map(0x0, 0x1000, true, true, Some((a.as_fd(), 0)))
            .unwrap();
        dma.map(0x1000, 0x1000, true, true, Some((b.as_fd(), 0)))
            .unwrap();
        dma.write(0xffe, &[1, 2, 3, 4]).unwrap();
        assert_eq!(pread(&a, 0xffe, 2), [1, 2]);
        assert_eq!(pread(&b, 0, 2), [3, 4]);
    }

    #[test]
    fn test_read_only_window_refuses_writes() {
        let fd = memfd(0x1000);
        let mut dma = Dma::new();
        dma.map(0, 0x1000, true, false, Some((fd.as_fd(), 0)))
            .unwrap();
        assert_eq!(
            dma.write(0, &[1]),
            Err(DmaError::Denied {
                addr: 0,
                dir: "write"
            })
        );
        dma.read(0, &mut [0; 4]).unwrap();
    }

    #[test]
    fn test_map_rejects_overlap_zero_size_wrap_and_short_fd() {
        let fd = memfd(0x1000);
        let mut dma = Dma::new();
        dma.map(0x1000, 0x1000, true, true, None).unwrap();
        assert!(matches!(
            dma.map(0x1800, 0x1000, true, true, None),
            Err(DmaError::Overlap { .. })
        ));
        assert!(matches!(
            dma.map(0x0, 0x1001, true, true, None),
            Err(DmaError::Overlap { .. })
        ));
        assert!(matches!(
            dma.map(0x5000, 0, true, true, None),
            Err(DmaError::BadWindow { .. })
        ));
        assert!(matches!(
            dma.map(u64::MAX - 10, 0x100, true, true, None),
            Err(DmaError::BadWindow { .. })
        ));
        assert!(matches!(
            dma.map(0x8000, 0x2000, true, true, Some((fd.as_fd(), 0))),
            Err(DmaError::BadWindow {
                why: "fd is smaller than the window",
                ..
            })
        ));
        assert!(matches!(
            dma.map(0x8000, 0x1000, true, true, Some((fd.as_fd(), u64::MAX - 1))),
            Err(DmaError::BadWindow { .. })
        ));
        // Adjacent windows are fine.
        dma.map(0x0, 0x1000, true, true, None).unwrap();
        dma.map(0x2000, 0x1000, true, true, None).unwrap();
        assert_eq!(dma.window_count(), 3);
    }

    #[test]
    fn test_unmap_needs_exact_window_and_access_then_fails() {
        let fd = memfd(0x1000);
        let mut dma = Dma::new();
        dma.map(0x1000, 0x1000, true, true, Some((fd.as_fd(), 0)))
            .unwrap();
        assert!(matches!(
            dma.unmap(0x1000, 0x800),
            Err(DmaError::NoWindow { .. })
        ));
        dma.unmap(0x1000, 0x1000).unwrap();
        assert!(matches!(
            dma.read(0x1000, &mut [0; 1]),
            Err(DmaError::Unmapped { .. })
        ));
    }

    /// A transport over a plain byte vector, recording message sizes.
    struct VecTransport {
        mem: Arc<Mutex<Vec<u8>>>,
        sizes: Arc<Mutex<Vec<usize>>>,
    }

    impl DmaTransport for VecTransport {
        fn dma_read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), String> {
            self.sizes.lock().unwrap().push(buf.len());
            let a = addr as usize;
            buf.copy_from_slice(
                self.mem
                    .lock()
                    .unwrap()
                    .get(a..a + buf.len())
                    .ok_or("range")?,
            );
            Ok(())
        }
        fn dma_write(&mut self, addr: u64, data: &[u8]) -> Result<(), String> {
            self.sizes.lock().unwrap().push(data.len());
            let a = addr as usize;
            self.mem
                .lock()
                .unwrap()
                .get_mut(a..a + data.len())
                .ok_or("range")?
                .copy_from_slice(data);
            Ok(())
        }
    }

    #[test]
    fn test_window_without_fd_goes_through_messages_in_chunks() {
        let mem = Arc::new(Mutex::new(vec![0u8; 0x100]));
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let mut dma = Dma::new();
        dma.set_transport(
            Some(Box::new(VecTransport {
                mem: mem.clone(),
                sizes: sizes.clone(),
            })),
            16,
        );
        dma.map(0, 0x100, true, true, None).unwrap();
        let data: Vec<u8> = (0..40).collect();
        dma.write(0x10, &data).unwrap();
        assert_eq!(mem.lock().unwrap()[0x10..0x38], data[..]);
        assert_eq!(*sizes.lock().unwrap(), [16, 16, 8]);
        let mut back = vec![0; 40];
        dma.read(0x10, &mut back).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn test_unsealed_client_fd_is_not_mapped_and_goes_through_messages() {
        // The client could truncate this file after DMA_MAP: mapping it would let the next
        // access fault, so the window is served by DMA_READ/DMA_WRITE messages instead.
        let fd = unsealed_memfd(0x100);
        rustix::io::pwrite(&fd, b"from the fd", 0).unwrap();
        let mem = Arc::new(Mutex::new(vec![0u8; 0x100]));
        mem.lock().unwrap()[..13].copy_from_slice(b"from messages");
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let mut dma = Dma::new();
        dma.set_transport(
            Some(Box::new(VecTransport {
                mem: mem.clone(),
                sizes: sizes.clone(),
            })),
            64,
        );
        dma.map(0, 0x100, true, true, Some((fd.as_fd(), 0)))
            .unwrap();
        let mut b = [0u8; 13];
        dma.read(0, &mut b).unwrap();
        assert_eq!(&b, b"from messages");
        dma.write(0x20, &[7; 4]).unwrap();
        assert_eq!(mem.lock().unwrap()[0x20..0x24], [7; 4]);
        assert_eq!(*sizes.lock().unwrap(), [13, 4], "both went by message");
        // Shrinking the file now harms nothing: it was never mapped.
        rustix::fs::ftruncate(&fd, 0).unwrap();
        dma.read(0, &mut b).unwrap();
        // A too-small unsealed fd is still refused outright.
        assert!(matches!(
            dma.map(0x1000, 0x1000, true, true, Some((fd.as_fd(), 0))),
            Err(DmaError::BadWindow { .. })
        ));
    }

    #[test]
    fn test_sealed_client_fd_cannot_be_shrunk_under_the_mapping() {
        let fd = memfd(0x1000);
        let mut dma = Dma::new();
        dma.map(0, 0x1000, true, true, Some((fd.as_fd(), 0)))
            .unwrap();
        assert_eq!(
            rustix::fs::ftruncate(&fd, 0),
            Err(rustix::io::Errno::PERM),
            "F_SEAL_SHRINK refuses the truncation"
        );
        dma.write(0xffc, &[1, 2, 3, 4]).unwrap();
        assert_eq!(pread(&fd, 0xffc, 4), [1, 2, 3, 4], "mapped, not by message");
    }

    #[test]
    fn test_window_without_fd_and_no_transport_is_a_typed_error() {
        let mut dma = Dma::new();
        dma.map(0, 0x100, true, true, None).unwrap();
        assert!(matches!(
            dma.read(0, &mut [0; 4]),
            Err(DmaError::Message(_))
        ));
    }
}
