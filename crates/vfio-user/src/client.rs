//! The vfio-user client: connects to a device server, negotiates the version, sends commands
//! and matches their replies, and serves the server's `VFIO_USER_DMA_READ`/`DMA_WRITE`
//! requests against the DMA windows it mapped (vfio-user Protocol Specification, "Connection
//! Initiation", "Command Concurrency", "Read and Write Operations").
//!
//! The server is not trusted. A reply that cannot be right (a msg_id no request waits for, a
//! wrong size, an unknown type, too many fds, a region whose offset + size overflows or
//! exceeds its fd, ...) or a server that goes away marks the client broken: one
//! `tracing::error!` line says why, the socket is shut down, and every call from then on
//! returns [`ClientError::Broken`]. A server that does not answer in time gives
//! [`ClientError::Timeout`] and breaks the client too (a late reply could not be matched any
//! more). A DMA request outside every mapped window gets an error reply and touches nothing.
//!
//! Receiving: whoever holds the receive turn (`Inner::rx`) reads one message and handles it
//! (a reply is handed to its caller, a DMA request served) before giving the turn up, so
//! messages are handled one at a time and in order. A caller waiting for its reply reads the
//! socket itself: it polls without sleeping for a short while, then sleeps in `poll` on the
//! socket, so its reply wakes it directly (handing it over from another thread cost that
//! thread's wake-up too: a message round trip went from three thread wake-ups to one or two).
//! The reader thread reads only while no caller waits (DMA requests after posted writes, the
//! server hanging up); while callers do, it stays parked and looks again every millisecond.
//! Calls may come from several threads: one of them has the turn, the others sleep on a
//! condition variable until their reply is handed over or the turn is free.

// Reads untrusted input (a vfio-user server, the kernel, sysfs files, the guest): no panicking
// shortcuts outside tests.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock, TryLockError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::protocol::{
    BreadboardCaps, Capabilities, Command, DMA_FLAG_READ, DMA_FLAG_WRITE, DmaAccess, DmaData,
    DmaMap, DmaUnmap, HEADER_SIZE, Header, IrqSet, MessageType, ProtocolError, RegionAccess,
    RegionData, VERSION_MAJOR, VERSION_MINOR, VFIO_REGION_INFO_FLAG_CAPS,
    VFIO_REGION_INFO_FLAG_MMAP, Version, Wire, device_info_request, irq_info_request,
    region_info_request, vfio_device_info, vfio_irq_info, vfio_region_info,
};
use crate::socket::{Channel, Message, SocketError};

/// errno values of error replies.
const EINVAL: u32 = 22;
const EFAULT: u32 = 14;
const E2BIG: u32 = 7;
const ENOSYS: u32 = 38;
const EPERM: u32 = 1;

/// What went wrong.
#[derive(Debug, Error)]
pub enum ClientError {
    /// A system call failed (connecting, or sending while the connection was still good).
    #[error("{op}: {source}")]
    Io {
        /// What was being done.
        op: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The server answered the version handshake with something unusable.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The server speaks a version we do not.
    #[error("{0}")]
    Unsupported(String),
    /// No reply within the timeout (the client is broken from then on).
    #[error("{0}: no reply within {1:?}")]
    Timeout(String, Duration),
    /// The client was marked broken; nothing more is sent.
    #[error("vfio-user connection is broken: {0}")]
    Broken(String),
    /// The server answered with an error reply.
    #[error("{op}: the server answered with error {errno}")]
    Remote {
        /// The command.
        op: &'static str,
        /// The errno it gave (may be 0).
        errno: u32,
    },
    /// An argument the client refuses before sending (out of a known region, too large).
    #[error("{0}")]
    Invalid(String),
}

/// How long a request polls for its reply before sleeping.
const SPIN_FOR_REPLY: Duration = Duration::from_micros(50);

/// How often the reader thread looks whether callers still read the socket for it. A server
/// message that comes when the last caller has just left waits at most this long (a DMA
/// request after a posted write; with a call in flight, the caller serves it at once).
const READER_PARK: Duration = Duration::from_millis(1);

/// Tunables.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// How long a reply (and the rest of any message once started) may take.
    pub timeout: Duration,
    /// Most fds we accept in one message (announced as `max_msg_fds`).
    pub max_msg_fds: u32,
    /// Largest DMA transfer we serve (announced as `max_data_xfer_size`).
    pub max_data_xfer_size: u32,
    /// Whether `dma_map` hands the server the memory's fd so it can `mmap` it (fast, but the
    /// server keeps access to that memory for as long as it likes: the specification advises
    /// it only where the server is trusted not to corrupt guest memory). Without it every DMA
    /// goes through `VFIO_USER_DMA_READ`/`WRITE` messages, which stop at `dma_unmap`.
    pub share_dma_fds: bool,
    /// Send region writes and IRQ unmasks with the no-reply flag, without waiting (posted).
    pub posted_writes: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            timeout: Duration::from_secs(5),
            max_msg_fds: 8,
            max_data_xfer_size: crate::protocol::DEFAULT_MAX_DATA_XFER_SIZE,
            share_dma_fds: true,
            posted_writes: true,
        }
    }
}

/// Region info as the server gave it, with its mmap fd when the region is mappable.
#[derive(Debug)]
pub struct RegionInfoReply {
    /// The info (`VFIO_REGION_INFO_FLAG_CAPS` cleared: capabilities are not read; MMAP cleared
    /// when the server's fd may shrink, see [`crate::seal`]).
    pub info: vfio_region_info,
    /// The fd to `mmap` at `info.offset`, present exactly when `info.flags` has MMAP: it covers
    /// the region and carries `F_SEAL_SHRINK`, so a mapping of the region cannot fault.
    pub fd: Option<OwnedFd>,
}

/// A window of this process's memory the server may reach by DMA.
#[derive(Clone, Copy, Debug)]
pub struct DmaWindow {
    /// DMA address (IOVA) of the first byte.
    pub iova: u64,
    /// Length in bytes (not 0).
    pub size: u64,
    /// Where the window is in this process.
    pub host: std::ptr::NonNull<u8>,
    /// Whether the server may write it.
    pub writable: bool,
}

/// A mapped window as the reader thread keeps it (the pointer as an address: it is only
/// dereferenced under the windows lock, see [`Client::dma_map`]).
#[derive(Clone, Copy, Debug)]
struct Window {
    iova: u64,
    size: u64,
    host: usize,
    writable: bool,
}

struct Slot {
    command: u16,
    reply: Option<Message>,
}

#[derive(Default)]
struct State {
    next_id: u16,
    pending: HashMap<u16, Slot>,
    broken: Option<String>,
    closing: bool,
    /// Callers in [`Client::request`], which read the socket themselves.
    receivers: usize,
}

struct Inner {
    name: String,
    chan: Channel,
    /// The receive turn: held while reading one message and handling it (and by a caller
    /// while it waits in `poll` for its reply).
    rx: Mutex<()>,
    state: Mutex<State>,
    /// Replies handed over, the client broken, a receiving caller gone.
    cond: Condvar,
    /// Wakes the reader thread when it should stop (broken, closing).
    reader_cond: Condvar,
    windows: RwLock<Vec<Window>>,
    regions: Mutex<HashMap<u32, vfio_region_info>>,
    timeout: Duration,
    max_dma_xfer: u32,
    share_dma_fds: bool,
    posted_writes: bool,
}

/// A connection to a vfio-user server.
pub struct Client {
    inner: Arc<Inner>,
    reader: Mutex<Option<JoinHandle<()>>>,
    server_caps: Capabilities,
    version: (u16, u16),
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("name", &self.inner.name)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Client {
    /// Connects to the server listening at `path` and negotiates the version.
    pub fn connect(path: &Path, config: ClientConfig) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path).map_err(|e| ClientError::Io {
            op: format!("connect to {}", path.display()),
            source: e,
        })?;
        Client::from_stream(stream, format!("vfio-user {}", path.display()), config)
    }

    /// Uses an already connected stream (tests, socket activation); `name` prefixes log lines.
    pub fn from_stream(
        stream: UnixStream,
        name: String,
        config: ClientConfig,
    ) -> Result<Client, ClientError> {
        let max_xfer = config.max_data_xfer_size.max(8);
        let chan = Channel::new(stream)
            .with_timeout(config.timeout)
            .with_max_fds(config.max_msg_fds as usize)
            .with_max_msg_size(
                (max_xfer as usize)
                    .saturating_add(4 * HEADER_SIZE)
                    .max(64 << 10),
            );
        let (version, server_caps) = negotiate(&chan, &config)?;
        let inner = Arc::new(Inner {
            name,
            chan,
            rx: Mutex::new(()),
            state: Mutex::new(State {
                next_id: 1,
                ..State::default()
            }),
            cond: Condvar::new(),
            reader_cond: Condvar::new(),
            windows: RwLock::new(Vec::new()),
            regions: Mutex::new(HashMap::new()),
            timeout: config.timeout,
            max_dma_xfer: max_xfer,
            share_dma_fds: config.share_dma_fds,
            posted_writes: config.posted_writes,
        });
        let reader_inner = inner.clone();
        let reader = std::thread::Builder::new()
            .name("vfio-user-reader".into())
            .spawn(move || reader_inner.read_loop())
            .map_err(|e| ClientError::Io {
                op: "spawn the vfio-user reader thread".into(),
                source: e,
            })?;
        Ok(Client {
            inner,
            reader: Mutex::new(Some(reader)),
            server_caps,
            version,
        })
    }

    /// The version the server replied with.
    pub fn version(&self) -> (u16, u16) {
        self.version
    }

    /// The server's capabilities.
    pub fn server_caps(&self) -> &Capabilities {
        &self.server_caps
    }

    /// The device-tree hints of the server's `"breadboard"` capability, if it sent them.
    pub fn dt_hints(&self) -> Option<&BreadboardCaps> {
        self.server_caps.breadboard.as_ref()
    }

    /// Why the client is broken, if it is.
    pub fn broken_reason(&self) -> Option<String> {
        lock(&self.inner.state).broken.clone()
    }

    /// `VFIO_USER_DEVICE_GET_INFO`.
    pub fn device_info(&self) -> Result<vfio_device_info, ClientError> {
        let reply = self.request(
            Command::DeviceGetInfo,
            &device_info_request().to_bytes(),
            &[],
        )?;
        let info = self.decode_reply::<vfio_device_info>(&reply, Command::DeviceGetInfo)?;
        self.no_fds(&reply, Command::DeviceGetInfo)?;
        Ok(info)
    }

    /// `VFIO_USER_DEVICE_GET_REGION_INFO` for region `index`.
    pub fn region_info(&self, index: u32) -> Result<RegionInfoReply, ClientError> {
        let op = Command::DeviceGetRegionInfo;
        let mut reply = self.request(op, &region_info_request(index).to_bytes(), &[])?;
        let mut info = self.decode_reply::<vfio_region_info>(&reply, op)?;
        info.flags &= !VFIO_REGION_INFO_FLAG_CAPS;
        if info.index != index {
            return Err(self.break_now(format!(
                "{}: asked for region {index}, the reply describes region {}",
                op.name(),
                info.index
            )));
        }
        let Some(end) = info.offset.checked_add(info.size) else {
            return Err(self.break_now(format!(
                "{}: region {index} offset {:#x} + size {:#x} overflows",
                op.name(),
                info.offset,
                info.size
            )));
        };
        let mmap = info.flags & VFIO_REGION_INFO_FLAG_MMAP != 0 && info.size != 0;
        let expected_fds = usize::from(mmap);
        if reply.fds.len() != expected_fds {
            return Err(self.break_now(format!(
                "{}: region {index} reply carries {} fds, {expected_fds} expected (MMAP flag {})",
                op.name(),
                reply.fds.len(),
                if mmap { "set" } else { "clear" }
            )));
        }
        let fd = reply.fds.pop();
        if let Some(fd) = &fd {
            match rustix::fs::fstat(fd) {
                Ok(st) => {
                    let is_file = rustix::fs::FileType::from_raw_mode(st.st_mode).is_file();
                    let len = u64::try_from(st.st_size).unwrap_or(0);
                    if is_file && end > len {
                        return Err(self.break_now(format!(
                            "{}: region {index} ends at {end:#x} of its fd, which has only {len:#x} bytes",
                            op.name()
                        )));
                    }
                }
                Err(e) => {
                    return Err(self.break_now(format!(
                        "{}: region {index} fd cannot be examined: {e}",
                        op.name()
                    )));
                }
            }
        }
        // A server could shrink an unsealed file after we mapped it, and the next guest access
        // to the lost pages would kill this process with SIGBUS: map only files that carry
        // F_SEAL_SHRINK, and reach the others through messages.
        let fd = match fd {
            Some(fd) if !crate::seal::cannot_shrink(fd.as_fd()) => {
                tracing::warn!(
                    "{}: region {index} fd is not sealed against shrinking (F_SEAL_SHRINK); using messages",
                    self.inner.name
                );
                info.flags &= !VFIO_REGION_INFO_FLAG_MMAP;
                None
            }
            fd => fd,
        };
        lock(&self.inner.regions).insert(index, info);
        Ok(RegionInfoReply { info, fd })
    }

    /// `VFIO_USER_DEVICE_GET_IRQ_INFO` for IRQ index `index`.
    pub fn irq_info(&self, index: u32) -> Result<vfio_irq_info, ClientError> {
        let op = Command::DeviceGetIrqInfo;
        let reply = self.request(op, &irq_info_request(index).to_bytes(), &[])?;
        let info = self.decode_reply::<vfio_irq_info>(&reply, op)?;
        self.no_fds(&reply, op)?;
        if info.index != index {
            return Err(self.break_now(format!(
                "{}: asked for IRQ {index}, the reply describes IRQ {}",
                op.name(),
                info.index
            )));
        }
        Ok(info)
    }

    /// `VFIO_USER_DEVICE_SET_IRQS` with `fds` attached (eventfds for `DATA_EVENTFD`).
    pub fn set_irqs(&self, set: &IrqSet, fds: &[BorrowedFd<'_>]) -> Result<(), ClientError> {
        let max = self.server_caps.max_msg_fds() as usize;
        if fds.len() > max {
            return Err(ClientError::Invalid(format!(
                "{} eventfds exceed the server's max_msg_fds of {max}",
                fds.len()
            )));
        }
        let reply = self.request(Command::DeviceSetIrqs, &set.to_bytes(), fds)?;
        self.empty_reply(&reply, Command::DeviceSetIrqs)
    }

    /// `VFIO_USER_REGION_READ` of `buf.len()` bytes at `offset` of region `index`.
    pub fn region_read(&self, index: u32, offset: u64, buf: &mut [u8]) -> Result<(), ClientError> {
        let op = Command::RegionRead;
        let access = self.check_access(index, offset, buf.len())?;
        let reply = self.request(op, &access.to_bytes(), &[])?;
        let data = self.decode_reply::<RegionData>(&reply, op)?;
        self.no_fds(&reply, op)?;
        if data.access() != access {
            return Err(self.break_now(format!(
                "{}: asked for {} bytes at {offset:#x} of region {index}, the reply has {} bytes at {:#x} of region {}",
                op.name(),
                buf.len(),
                data.data.len(),
                data.offset,
                data.region
            )));
        }
        buf.copy_from_slice(&data.data);
        Ok(())
    }

    /// `VFIO_USER_REGION_WRITE` of `data` at `offset` of region `index`.
    pub fn region_write(&self, index: u32, offset: u64, data: &[u8]) -> Result<(), ClientError> {
        let op = Command::RegionWrite;
        let access = self.check_access(index, offset, data.len())?;
        let body = RegionData {
            offset,
            region: index,
            data: data.to_vec(),
        };
        let reply = self.request(op, &body.to_bytes(), &[])?;
        let echoed = self.decode_reply::<RegionAccess>(&reply, op)?;
        self.no_fds(&reply, op)?;
        if echoed != access {
            return Err(self.break_now(format!(
                "{}: wrote {} bytes at {offset:#x} of region {index}, the reply acknowledges {} bytes at {:#x} of region {}",
                op.name(),
                data.len(),
                echoed.count,
                echoed.offset,
                echoed.region
            )));
        }
        Ok(())
    }

    /// `VFIO_USER_DEVICE_RESET`.
    pub fn reset(&self) -> Result<(), ClientError> {
        let reply = self.request(Command::DeviceReset, &[], &[])?;
        self.empty_reply(&reply, Command::DeviceReset)
    }

    /// `VFIO_USER_DMA_MAP`: lets the server reach `window`, by `mmap` of `fd` at `fd_offset`
    /// when given (and [`ClientConfig::share_dma_fds`] allows it, and the server accepts fds),
    /// and through `VFIO_USER_DMA_READ`/`WRITE` messages served by this client in any case.
    ///
    /// # Safety
    ///
    /// `window.host .. window.host + window.size` must stay valid for reads (and for writes
    /// when `window.writable`) until [`Client::dma_unmap`] of the window returns or the client
    /// is dropped. Other threads may use the memory meanwhile (it is guest RAM); the client
    /// copies bytes in and out of it and never creates references to it.
    pub unsafe fn dma_map(
        &self,
        window: DmaWindow,
        fd: Option<BorrowedFd<'_>>,
        fd_offset: u64,
    ) -> Result<(), ClientError> {
        let end = window.iova.checked_add(window.size);
        if window.size == 0 || end.is_none() || usize::try_from(window.size).is_err() {
            return Err(ClientError::Invalid(format!(
                "DMA window at {:#x} of {:#x} bytes is empty or wraps",
                window.iova, window.size
            )));
        }
        let new = Window {
            iova: window.iova,
            size: window.size,
            host: window.host.as_ptr() as usize,
            writable: window.writable,
        };
        {
            let mut windows = self
                .inner
                .windows
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            if windows.iter().any(|w| overlaps(w, &new)) {
                return Err(ClientError::Invalid(format!(
                    "DMA window at {:#x} of {:#x} bytes overlaps a mapped one",
                    window.iova, window.size
                )));
            }
            windows.push(new);
        }
        let fd = fd.filter(|_| self.inner.share_dma_fds && self.server_caps.max_msg_fds() > 0);
        let body = DmaMap {
            argsz: DmaMap::SIZE as u32,
            flags: DMA_FLAG_READ | if window.writable { DMA_FLAG_WRITE } else { 0 },
            offset: if fd.is_some() { fd_offset } else { 0 },
            address: window.iova,
            size: window.size,
        };
        let fds: Vec<BorrowedFd<'_>> = fd.into_iter().collect();
        let result = self
            .request(Command::DmaMap, &body.to_bytes(), &fds)
            .and_then(|reply| self.empty_reply(&reply, Command::DmaMap));
        if result.is_err() {
            self.forget_window(window.iova, window.size);
        }
        result
    }

    /// `VFIO_USER_DMA_UNMAP`: takes back a window given by [`Client::dma_map`]. The window is
    /// forgotten locally first, so no server request touches it once this returns, whatever
    /// the server answers.
    pub fn dma_unmap(&self, iova: u64, size: u64) -> Result<(), ClientError> {
        if !self.forget_window(iova, size) {
            return Err(ClientError::Invalid(format!(
                "no DMA window at {iova:#x} of {size:#x} bytes"
            )));
        }
        let body = DmaUnmap {
            argsz: DmaUnmap::SIZE as u32,
            flags: 0,
            address: iova,
            size,
        };
        let reply = self.request(Command::DmaUnmap, &body.to_bytes(), &[])?;
        self.no_fds(&reply, Command::DmaUnmap)?;
        // The specification has the server echo the entry; some servers send nothing.
        if !reply.payload.is_empty() {
            let echoed = self.decode_reply::<DmaUnmap>(&reply, Command::DmaUnmap)?;
            if echoed.address != iova || echoed.size != size {
                return Err(self.break_now(format!(
                    "{}: unmapped {iova:#x}+{size:#x}, the reply echoes {:#x}+{:#x}",
                    Command::DmaUnmap.name(),
                    echoed.address,
                    echoed.size
                )));
            }
        }
        Ok(())
    }

    fn forget_window(&self, iova: u64, size: u64) -> bool {
        let mut windows = self
            .inner
            .windows
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let before = windows.len();
        windows.retain(|w| !(w.iova == iova && w.size == size));
        windows.len() != before
    }

    fn check_access(
        &self,
        index: u32,
        offset: u64,
        len: usize,
    ) -> Result<RegionAccess, ClientError> {
        let count = u32::try_from(len)
            .ok()
            .filter(|&c| c > 0 && c <= self.server_caps.max_data_xfer_size())
            .ok_or_else(|| {
                ClientError::Invalid(format!(
                    "a {len}-byte access exceeds the server's max_data_xfer_size or is empty"
                ))
            })?;
        if let Some(info) = lock(&self.inner.regions).get(&index) {
            let fits = offset
                .checked_add(u64::from(count))
                .is_some_and(|end| end <= info.size);
            if !fits {
                return Err(ClientError::Invalid(format!(
                    "{len} bytes at {offset:#x} are outside region {index} ({:#x} bytes)",
                    info.size
                )));
            }
        }
        Ok(RegionAccess {
            offset,
            region: index,
            count,
        })
    }

    fn decode_reply<T: Wire>(&self, reply: &Message, op: Command) -> Result<T, ClientError> {
        T::decode(&reply.payload).map_err(|e| self.break_now(format!("{} reply: {e}", op.name())))
    }

    fn no_fds(&self, reply: &Message, op: Command) -> Result<(), ClientError> {
        if reply.fds.is_empty() {
            Ok(())
        } else {
            Err(self.break_now(format!(
                "{} reply carries {} unexpected fds",
                op.name(),
                reply.fds.len()
            )))
        }
    }

    fn empty_reply(&self, reply: &Message, op: Command) -> Result<(), ClientError> {
        self.no_fds(reply, op)?;
        if reply.payload.is_empty() {
            Ok(())
        } else {
            Err(self.break_now(format!(
                "{} reply: {}",
                op.name(),
                ProtocolError::WrongSize {
                    what: "empty reply",
                    expected: 0,
                    got: reply.payload.len()
                }
            )))
        }
    }

    fn break_now(&self, reason: String) -> ClientError {
        self.inner.mark_broken(&reason);
        ClientError::Broken(lock(&self.inner.state).broken.clone().unwrap_or(reason))
    }

    /// Sends a command with the no-reply flag and returns at once (a posted write). The server
    /// must not answer (the specification's no-reply rule); its errors go unseen, but a dead or
    /// misbehaving server is still noticed by the reader thread.
    fn post(&self, op: Command, payload: &[u8]) -> Result<(), ClientError> {
        self.send_command(op, payload, &[], false).map(|_| ())
    }

    /// Allocates a msg_id, registers it for a reply when `reply` (otherwise sets the no-reply
    /// flag) and sends the command. A failed send breaks the client.
    fn send_command(
        &self,
        op: Command,
        payload: &[u8],
        fds: &[BorrowedFd<'_>],
        reply: bool,
    ) -> Result<u16, ClientError> {
        let inner = &self.inner;
        let id = {
            let mut st = lock(&inner.state);
            if let Some(r) = &st.broken {
                return Err(ClientError::Broken(r.clone()));
            }
            let mut id = st.next_id;
            while st.pending.contains_key(&id) {
                id = id.wrapping_add(1);
            }
            st.next_id = id.wrapping_add(1);
            if reply {
                st.pending.insert(
                    id,
                    Slot {
                        command: op as u16,
                        reply: None,
                    },
                );
            }
            id
        };
        let mut header = Header::new_command(id, op, payload.len());
        if !reply {
            header.flags |= crate::protocol::FLAGS_NO_REPLY;
        }
        if let Err(e) = inner.chan.send(&header, payload, fds) {
            lock(&inner.state).pending.remove(&id);
            return Err(match e {
                SocketError::Timeout(_) => {
                    inner.mark_broken(&format!("{}: the server does not take messages", op.name()));
                    ClientError::Timeout(op.name().into(), inner.timeout)
                }
                e => self.break_now(format!("sending {}: {e}", op.name())),
            });
        }
        Ok(id)
    }

    /// Whether the configuration asks for posted region writes and unmasks.
    pub fn posted_writes(&self) -> bool {
        self.inner.posted_writes
    }

    /// `VFIO_USER_REGION_WRITE` without waiting for the reply (no-reply flag): MMIO writes
    /// are posted, as on a real bus. Messages are handled in order, so a later read sees it.
    pub fn region_write_posted(
        &self,
        index: u32,
        offset: u64,
        data: &[u8],
    ) -> Result<(), ClientError> {
        self.check_access(index, offset, data.len())?;
        let body = RegionData {
            offset,
            region: index,
            data: data.to_vec(),
        };
        self.post(Command::RegionWrite, &body.to_bytes())
    }

    /// `VFIO_USER_DEVICE_SET_IRQS` without fds and without waiting for the reply (unmask at
    /// end of interrupt, where the guest's completing write should not wait for the server).
    pub fn set_irqs_posted(&self, set: &IrqSet) -> Result<(), ClientError> {
        self.post(Command::DeviceSetIrqs, &set.to_bytes())
    }

    /// Sends a command and waits for its reply. Error replies become [`ClientError::Remote`].
    ///
    /// The caller reads the socket itself while it waits (see the module documentation): for
    /// [`SPIN_FOR_REPLY`] without sleeping, then blocked in `poll` on the socket, so its reply
    /// wakes it directly instead of waking the reader thread which then wakes it. When
    /// another thread has the receive turn, it waits for that one to hand the reply over.
    fn request(
        &self,
        op: Command,
        payload: &[u8],
        fds: &[BorrowedFd<'_>],
    ) -> Result<Message, ClientError> {
        let inner = &self.inner;
        let _receiving = Receiving::new(inner);
        let id = self.send_command(op, payload, fds, true)?;
        let start = Instant::now();
        let deadline = start + inner.timeout;
        // Replies usually come within tens of microseconds, and the MMIO access that waits for
        // this one is a guest instruction that cannot retire yet: poll without sleeping first.
        let spin_until = start + SPIN_FOR_REPLY;
        let mut st = lock(&inner.state);
        loop {
            if let Some(slot) = st.pending.get_mut(&id)
                && let Some(reply) = slot.reply.take()
            {
                st.pending.remove(&id);
                drop(st);
                if reply.header.is_error() {
                    return Err(ClientError::Remote {
                        op: op.name(),
                        errno: reply.header.error,
                    });
                }
                return Ok(reply);
            }
            if let Some(r) = &st.broken {
                let r = r.clone();
                st.pending.remove(&id);
                return Err(ClientError::Broken(r));
            }
            let now = Instant::now();
            let left = deadline.saturating_duration_since(now);
            if left.is_zero() {
                st.pending.remove(&id);
                drop(st);
                inner.mark_broken(&format!(
                    "no reply to {} (msg_id {id}) within {:?}",
                    op.name(),
                    inner.timeout
                ));
                return Err(ClientError::Timeout(op.name().into(), inner.timeout));
            }
            let spinning = now < spin_until;
            let turn = match inner.rx.try_lock() {
                Ok(g) => Some(g),
                Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
                Err(TryLockError::WouldBlock) => None,
            };
            match turn {
                Some(turn) => {
                    drop(st);
                    // Whatever comes is handled in order: our reply, another caller's (handed
                    // over), or a DMA request of the server (served here).
                    if spinning {
                        inner.receive_ready();
                        std::hint::spin_loop();
                    } else {
                        match inner.chan.wait_readable(Some(left)) {
                            Ok(()) => {
                                inner.receive_ready();
                            }
                            // The deadline: checked above.
                            Err(SocketError::Timeout(_)) => {}
                            Err(e) => inner.mark_broken(&format!("waiting for the server: {e}")),
                        }
                    }
                    drop(turn);
                    st = lock(&inner.state);
                }
                None if spinning => {
                    drop(st);
                    std::hint::spin_loop();
                    st = lock(&inner.state);
                }
                None => {
                    // Another thread reads, and hands our reply over with a notification; it
                    // also notifies when it leaves, so that we take the turn (the bound is
                    // only a backstop).
                    st = inner
                        .cond
                        .wait_timeout(st, left.min(READER_PARK))
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            }
        }
    }
}

/// A caller waiting for a reply, counted in `State::receivers` for as long as it lives: the
/// reader thread keeps off the socket meanwhile.
struct Receiving<'a>(&'a Inner);

impl<'a> Receiving<'a> {
    fn new(inner: &'a Inner) -> Self {
        lock(&inner.state).receivers += 1;
        Receiving(inner)
    }
}

impl Drop for Receiving<'_> {
    fn drop(&mut self) {
        let mut st = lock(&self.0.state);
        st.receivers = st.receivers.saturating_sub(1);
        let others = st.receivers > 0;
        drop(st);
        if others {
            // One of them takes the receive turn this caller may have held.
            self.0.cond.notify_all();
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        lock(&self.inner.state).closing = true;
        self.inner.reader_cond.notify_all();
        self.inner.chan.shutdown();
        if let Some(t) = lock(&self.reader).take()
            && t.join().is_err()
        {
            tracing::error!("{}: the reader thread panicked", self.inner.name);
        }
    }
}

fn overlaps(a: &Window, b: &Window) -> bool {
    let a_end = a.iova.saturating_add(a.size);
    let b_end = b.iova.saturating_add(b.size);
    a.iova < b_end && b.iova < a_end
}

/// The version handshake: propose ours with our capabilities, check the reply.
fn negotiate(
    chan: &Channel,
    config: &ClientConfig,
) -> Result<((u16, u16), Capabilities), ClientError> {
    let proposal = Version {
        major: VERSION_MAJOR,
        minor: VERSION_MINOR,
        caps: Capabilities {
            max_msg_fds: Some(config.max_msg_fds),
            max_data_xfer_size: Some(config.max_data_xfer_size.max(8)),
            breadboard: Some(BreadboardCaps::default()),
            ..Capabilities::default()
        },
    };
    let proto = ClientError::Protocol;
    let id = 0;
    chan.send(
        &Header::new_command(id, Command::Version, 0),
        &proposal.to_bytes(),
        &[],
    )
    .map_err(|e| match e {
        SocketError::Timeout(_) => ClientError::Timeout("VFIO_USER_VERSION".into(), config.timeout),
        e => proto(format!("sending VFIO_USER_VERSION: {e}")),
    })?;
    let reply = chan.recv(Some(config.timeout)).map_err(|e| match e {
        SocketError::Timeout(_) => ClientError::Timeout("VFIO_USER_VERSION".into(), config.timeout),
        e => proto(format!("VFIO_USER_VERSION reply: {e}")),
    })?;
    let h = reply.header;
    if h.message_type() != Ok(MessageType::Reply)
        || h.msg_id != id
        || h.command != Command::Version as u16
    {
        return Err(proto(format!(
            "expected the VFIO_USER_VERSION reply to msg_id {id}, got type flags {:#x}, msg_id {}, command {}",
            h.flags, h.msg_id, h.command
        )));
    }
    if h.is_error() {
        return Err(ClientError::Unsupported(format!(
            "the server refused version {VERSION_MAJOR}.{VERSION_MINOR} (error {})",
            h.error
        )));
    }
    if !reply.fds.is_empty() {
        // Twin-socket mode was not proposed, so no fd may come with the reply.
        return Err(proto(format!(
            "VFIO_USER_VERSION reply carries {} unexpected fds",
            reply.fds.len()
        )));
    }
    let v = Version::decode(&reply.payload)
        .map_err(|e| proto(format!("VFIO_USER_VERSION reply: {e}")))?;
    if v.major != VERSION_MAJOR || v.minor > VERSION_MINOR {
        return Err(ClientError::Unsupported(format!(
            "the server replied with version {}.{}; breadboard speaks {VERSION_MAJOR}.0 to {VERSION_MAJOR}.{VERSION_MINOR}",
            v.major, v.minor
        )));
    }
    if v.caps.max_data_xfer_size() < 8 {
        return Err(proto(format!(
            "the server's max_data_xfer_size of {} cannot carry a register access",
            v.caps.max_data_xfer_size()
        )));
    }
    Ok(((v.major, v.minor), v.caps))
}

impl Inner {
    fn mark_broken(&self, reason: &str) {
        let mut st = lock(&self.state);
        if st.broken.is_some() {
            return;
        }
        st.broken = Some(reason.to_string());
        let closing = st.closing;
        drop(st);
        if !closing {
            tracing::error!("{}: {reason}; the device is broken from now on", self.name);
        }
        self.cond.notify_all();
        self.reader_cond.notify_all();
        self.chan.shutdown();
    }

    /// The reader thread: reads what comes while no caller waits for a reply (DMA requests
    /// after posted writes, the server closing). It stays off the socket while callers read
    /// it, looking again every [`READER_PARK`] rather than being woken for every call, and
    /// waits for the socket outside the receive turn so that a caller arriving meanwhile can
    /// take it.
    fn read_loop(&self) {
        loop {
            {
                let mut st = lock(&self.state);
                loop {
                    if st.broken.is_some() || st.closing {
                        return;
                    }
                    if st.receivers == 0 {
                        break;
                    }
                    st = self
                        .reader_cond
                        .wait_timeout(st, READER_PARK)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            }
            if let Err(e) = self.chan.wait_readable(None) {
                self.mark_broken(&format!("waiting for the server: {e}"));
                return;
            }
            let alive = {
                let _turn = lock(&self.rx);
                self.receive_ready()
            };
            if !alive {
                return;
            }
            // A caller that came meanwhile waits for the turn (taking the state lock orders
            // this after its wait began, so the notification is not lost).
            if lock(&self.state).receivers > 0 {
                self.cond.notify_all();
            }
        }
    }

    /// With the receive turn held: reads the message that has started to arrive, if any, and
    /// handles it. False when the client broke (the connection is shut down).
    fn receive_ready(&self) -> bool {
        match self.chan.try_recv() {
            Ok(Some(msg)) => self.dispatch(msg),
            Ok(None) => lock(&self.state).broken.is_none(),
            Err(SocketError::Closed) => {
                self.mark_broken("the server closed the connection");
                false
            }
            Err(e) => {
                self.mark_broken(&format!("receiving from the server: {e}"));
                false
            }
        }
    }

    /// Handles one message; false when the client broke.
    fn dispatch(&self, msg: Message) -> bool {
        let h = msg.header;
        match h.message_type() {
            Err(e) => {
                self.mark_broken(&format!("message with msg_id {}: {e}", h.msg_id));
                false
            }
            Ok(MessageType::Reply) => {
                let mut st = lock(&self.state);
                match st.pending.get_mut(&h.msg_id) {
                    Some(slot) if slot.reply.is_none() && slot.command == h.command => {
                        slot.reply = Some(msg);
                        drop(st);
                        self.cond.notify_all();
                        true
                    }
                    Some(slot) if slot.reply.is_none() => {
                        let wanted = slot.command;
                        drop(st);
                        self.mark_broken(&format!(
                            "reply to msg_id {} is for command {}, the request was command {wanted}",
                            h.msg_id, h.command
                        ));
                        false
                    }
                    _ => {
                        drop(st);
                        self.mark_broken(&format!(
                            "reply with msg_id {} (command {}) matches no request",
                            h.msg_id, h.command
                        ));
                        false
                    }
                }
            }
            Ok(MessageType::Command) => self.serve(msg),
        }
    }

    /// Serves a command from the server; false when the client broke.
    fn serve(&self, msg: Message) -> bool {
        let h = msg.header;
        if !msg.fds.is_empty() {
            self.mark_broken(&format!(
                "command {} from the server carries {} unexpected fds",
                h.command,
                msg.fds.len()
            ));
            return false;
        }
        let result = match Command::from_u16(h.command) {
            Ok(Command::DmaRead) => self.dma_read(&msg.payload),
            Ok(Command::DmaWrite) => self.dma_write(&msg.payload),
            Ok(other) => {
                tracing::warn!(
                    "{}: the server sent {}, which only a client sends; refused",
                    self.name,
                    other.name()
                );
                Err(EPERM)
            }
            Err(_) => {
                tracing::warn!(
                    "{}: the server sent unknown command {}; refused",
                    self.name,
                    h.command
                );
                Err(ENOSYS)
            }
        };
        if h.no_reply() {
            return true;
        }
        let sent = match result {
            Ok(payload) => self
                .chan
                .send(&Header::new_reply(&h, payload.len()), &payload, &[]),
            Err(errno) => self
                .chan
                .send(&Header::new_error_reply(&h, errno), &[], &[]),
        };
        if let Err(e) = sent {
            self.mark_broken(&format!(
                "answering the server's command {}: {e}",
                h.command
            ));
            return false;
        }
        true
    }

    /// Finds the window holding `[address, address + count)`; returns it and the offset.
    fn find(&self, windows: &[Window], address: u64, count: u64) -> Option<(Window, usize)> {
        let end = address.checked_add(count)?;
        windows
            .iter()
            .find(|w| address >= w.iova && end <= w.iova.saturating_add(w.size))
            .and_then(|w| Some((*w, usize::try_from(address - w.iova).ok()?)))
    }

    fn dma_read(&self, payload: &[u8]) -> Result<Vec<u8>, u32> {
        let req = DmaAccess::decode(payload).map_err(|e| {
            tracing::warn!("{}: malformed DMA read request: {e}", self.name);
            EINVAL
        })?;
        if req.count > u64::from(self.max_dma_xfer) {
            tracing::warn!(
                "{}: DMA read of {} bytes exceeds our max_data_xfer_size",
                self.name,
                req.count
            );
            return Err(E2BIG);
        }
        let windows = self.windows.read().unwrap_or_else(PoisonError::into_inner);
        let Some((w, off)) = self.find(&windows, req.address, req.count) else {
            tracing::warn!(
                "{}: DMA read of {} bytes at {:#x} is outside every mapped window",
                self.name,
                req.count,
                req.address
            );
            return Err(EFAULT);
        };
        // `find` proved off + count <= w.size, which fits a usize (checked in dma_map).
        let len = req.count as usize;
        let mut out = DmaData {
            address: req.address,
            data: vec![0u8; len],
        };
        // SAFETY: [w.host + off, + len) lies inside a window that `dma_map`'s caller keeps
        // valid for reads until `dma_unmap`, which cannot finish while we hold the read lock.
        unsafe {
            std::ptr::copy_nonoverlapping(
                (w.host as *const u8).add(off),
                out.data.as_mut_ptr(),
                len,
            );
        }
        Ok(out.to_bytes())
    }

    fn dma_write(&self, payload: &[u8]) -> Result<Vec<u8>, u32> {
        let req = DmaData::decode(payload).map_err(|e| {
            tracing::warn!("{}: malformed DMA write request: {e}", self.name);
            EINVAL
        })?;
        let count = req.data.len() as u64;
        if count > u64::from(self.max_dma_xfer) {
            return Err(E2BIG);
        }
        let windows = self.windows.read().unwrap_or_else(PoisonError::into_inner);
        let Some((w, off)) = self.find(&windows, req.address, count) else {
            tracing::warn!(
                "{}: DMA write of {count} bytes at {:#x} is outside every mapped window",
                self.name,
                req.address
            );
            return Err(EFAULT);
        };
        if !w.writable {
            tracing::warn!(
                "{}: DMA write at {:#x} to a read-only window",
                self.name,
                req.address
            );
            return Err(EPERM);
        }
        // SAFETY: as in `dma_read`, and the window is writable by `dma_map`'s contract.
        unsafe {
            std::ptr::copy_nonoverlapping(
                req.data.as_ptr(),
                (w.host as *mut u8).add(off),
                req.data.len(),
            );
        }
        Ok(req.access().to_bytes())
    }
}
