//! The server: listen on a Unix socket, accept a client, negotiate, and answer its commands
//! for one [`PlatformDevice`] (vfio-user Protocol Specification: "Connection Initiation",
//! "Client Disconnection", and one section per command).
//!
//! One client at a time, served on the calling thread. Between messages the server also polls
//! the client's unmask eventfds (`SET_IRQS` with `ACTION_UNMASK | DATA_EVENTFD`). DMA to
//! windows without an fd is carried by `DMA_READ`/`DMA_WRITE` commands to the client: over the
//! second socket when the client asked for twin-socket mode, otherwise over the main socket
//! (commands the client pipelines meanwhile are queued and served afterwards).

use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags};
use rustix::io::Errno;

use super::dma::{DmaError, DmaTransport, MAX_WINDOWS};
use super::{DeviceContext, Dma, IrqError, IrqKind, IrqLines, PlatformDevice, RegionSpec};
use crate::protocol::{
    self, BreadboardCaps, Capabilities, Command, DmaData, DmaMap, DmaUnmap, Header, IrqSet,
    MessageType, RegionAccess, RegionData, Version, Wire, vfio_device_info, vfio_irq_info,
    vfio_region_info,
};
use crate::socket::{Channel, Message, SocketError};

/// Largest `REGION_READ`/`REGION_WRITE` payload the server accepts (its
/// `max_data_xfer_size`).
pub const MAX_DATA_XFER: u32 = protocol::DEFAULT_MAX_DATA_XFER_SIZE;
/// Most fds the server accepts in one message (its `max_msg_fds`).
pub const MAX_MSG_FDS: u32 = 8;

/// Why the server stopped or a client was dropped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The socket path is unusable (exists and is live, or not a socket).
    #[error("socket path {path}: {why}")]
    Path {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// Creating, binding or accepting on the listening socket failed.
    #[error("{op} {path}")]
    Listen {
        /// The step.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The connection broke or the client sent something unframeable; it was dropped.
    #[error("client connection")]
    Socket(#[from] SocketError),
    /// The client broke the protocol in a way that ends the session (bad version, a command
    /// before negotiation); it was dropped.
    #[error("client violated the protocol: {0}")]
    Protocol(String),
    /// Polling the connection failed.
    #[error("poll: {0}")]
    Poll(Errno),
}

/// How the server behaves.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Serve one client, then return from [`Server::run`] (otherwise accept the next one).
    pub once: bool,
    /// How long a new client may take to send `VERSION`, how long the rest of a message may
    /// take once its first byte arrived, and how long a DMA message to the client may wait
    /// for its reply.
    pub timeout: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            once: false,
            timeout: Duration::from_secs(5),
        }
    }
}

/// A vfio-user server for one platform device.
pub struct Server<D: PlatformDevice> {
    listener: UnixListener,
    path: PathBuf,
    device: D,
    regions: Vec<RegionSpec>,
    irqs: IrqLines,
    dma: Dma,
    opts: ServerOptions,
}

impl<D: PlatformDevice> std::fmt::Debug for Server<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Counter for private bind directories.
static BIND_SEQ: AtomicU64 = AtomicU64::new(0);

/// Bind a listening socket at `path` with mode 0600, without a moment where another user could
/// connect: bind inside a fresh 0700 directory next to `path`, chmod, then rename into place.
fn bind_private(path: &Path) -> Result<UnixListener, ServerError> {
    let listen_err = |op, source| ServerError::Listen {
        op,
        path: path.to_owned(),
        source,
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) => {
            use std::os::unix::fs::FileTypeExt;
            if !meta.file_type().is_socket() {
                return Err(ServerError::Path {
                    path: path.to_owned(),
                    why: "exists and is not a socket".into(),
                });
            }
            if UnixStream::connect(path).is_ok() {
                return Err(ServerError::Path {
                    path: path.to_owned(),
                    why: "another server is listening there".into(),
                });
            }
            std::fs::remove_file(path).map_err(|e| listen_err("removing stale socket", e))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(listen_err("inspecting", e)),
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let seq = BIND_SEQ.fetch_add(1, Ordering::Relaxed);
    let dir = parent.join(format!(".bb-vfio-user-{}-{seq}", std::process::id()));
    let mut builder = std::fs::DirBuilder::new();
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(&dir)
        .map_err(|e| listen_err("creating private directory for", e))?;
    let tmp = dir.join("sock");
    let result = (|| {
        let listener = UnixListener::bind(&tmp).map_err(|e| listen_err("binding", e))?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| listen_err("chmod 0600", e))?;
        std::fs::rename(&tmp, path).map_err(|e| listen_err("moving socket into place at", e))?;
        Ok(listener)
    })();
    let _ = std::fs::remove_file(&tmp);
    let _ = std::fs::remove_dir(&dir);
    result
}

impl<D: PlatformDevice> Server<D> {
    /// Listen at `path` (mode 0600) for clients of `device`. A stale socket file left by a
    /// dead server is replaced; a live one is an error.
    pub fn bind(
        path: impl AsRef<Path>,
        device: D,
        opts: ServerOptions,
    ) -> Result<Self, ServerError> {
        let path = path.as_ref().to_owned();
        let listener = bind_private(&path)?;
        let regions = device.regions();
        let irqs = IrqLines::new(&device.irqs());
        Ok(Self {
            listener,
            path,
            device,
            regions,
            irqs,
            dma: Dma::new(),
            opts,
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The device.
    pub fn device(&self) -> &D {
        &self.device
    }

    /// The device, mutably (between clients).
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.device
    }

    /// The IRQ lines as the current (or last) client configured them.
    pub fn irqs(&self) -> &IrqLines {
        &self.irqs
    }

    /// Serve clients one after the other; with [`ServerOptions::once`], only the first. A
    /// client that breaks the protocol is logged and dropped; the next one is accepted.
    pub fn run(&mut self) -> Result<(), ServerError> {
        loop {
            match self.serve_one() {
                Ok(()) => tracing::info!(target: "vfio_user", "client disconnected"),
                Err(e @ (ServerError::Listen { .. } | ServerError::Path { .. })) => return Err(e),
                Err(e) => {
                    let mut msg = e.to_string();
                    let mut src = std::error::Error::source(&e);
                    while let Some(s) = src {
                        msg.push_str(&format!(": {s}"));
                        src = s.source();
                    }
                    tracing::warn!(target: "vfio_user", "client dropped: {msg}");
                    if self.opts.once {
                        return Err(e);
                    }
                }
            }
            if self.opts.once {
                return Ok(());
            }
        }
    }

    /// Accept one client and serve it until it disconnects (`Ok`) or is dropped (`Err`). The
    /// client's DMA windows and IRQ eventfds are released either way; device state is kept.
    pub fn serve_one(&mut self) -> Result<(), ServerError> {
        let (stream, _) = self
            .listener
            .accept()
            .map_err(|source| ServerError::Listen {
                op: "accepting on",
                path: self.path.clone(),
                source,
            })?;
        let ch = Arc::new(
            Channel::new(stream)
                .with_max_fds(MAX_MSG_FDS as usize)
                .with_timeout(self.opts.timeout),
        );
        let result = self.session(&ch);
        ch.shutdown();
        self.irqs.disconnect();
        self.dma.clear();
        result
    }

    fn session(&mut self, ch: &Arc<Channel>) -> Result<(), ServerError> {
        let pending: Arc<Mutex<VecDeque<Message>>> = Arc::default();
        // Negotiation: the first message must be VERSION, and come promptly: a client that
        // connects and stays silent would otherwise keep every other client waiting.
        let first = match ch.recv(Some(self.opts.timeout)) {
            Ok(m) => m,
            Err(SocketError::Closed) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        self.negotiate(ch, &pending, first)?;
        loop {
            let next = pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop_front();
            let msg = match next {
                Some(m) => m,
                None => match self.wait(ch)? {
                    Some(m) => m,
                    None => return Ok(()),
                },
            };
            self.handle(ch, msg)?;
        }
    }

    /// Wait for a message, serving unmask eventfds meanwhile. `None`: the client closed.
    fn wait(&mut self, ch: &Channel) -> Result<Option<Message>, ServerError> {
        loop {
            let unmask: Vec<(u32, BorrowedFd<'_>)> = self.irqs.unmask_fds().collect();
            let mut fds = Vec::with_capacity(unmask.len() + 1);
            fds.push(PollFd::new(ch, PollFlags::IN));
            for (_, fd) in &unmask {
                fds.push(PollFd::from_borrowed_fd(*fd, PollFlags::IN));
            }
            match rustix::event::poll(&mut fds, None) {
                Ok(_) => {}
                Err(Errno::INTR) => continue,
                Err(e) => return Err(ServerError::Poll(e)),
            }
            let sock_ready = fds.first().is_some_and(|f| !f.revents().is_empty());
            let fired: Vec<u32> = unmask
                .iter()
                .zip(fds.iter().skip(1))
                .filter(|(_, f)| !f.revents().is_empty())
                .map(|((i, _), _)| *i)
                .collect();
            drop(fds);
            for index in fired {
                self.unmask_event(index);
            }
            if sock_ready {
                // Readable: the message (or the hang-up) is there, so this does not block.
                return match ch.recv(Some(self.opts.timeout)) {
                    Ok(m) => Ok(Some(m)),
                    Err(SocketError::Closed) => Ok(None),
                    Err(e) => Err(e.into()),
                };
            }
        }
    }

    /// An unmask eventfd fired: consume its count and unmask the line.
    fn unmask_event(&mut self, index: u32) {
        let fd = self
            .irqs
            .unmask_fds()
            .find(|(i, _)| *i == index)
            .map(|(_, fd)| fd);
        let Some(fd) = fd else { return };
        let mut b = [0u8; 8];
        match rustix::io::read(fd, &mut b) {
            Ok(_) | Err(Errno::AGAIN) => {}
            Err(e) => {
                // Not an eventfd after all, or broken: stop polling it rather than spin.
                tracing::warn!(target: "vfio_user", "unmask eventfd of IRQ {index}: {e}; dropped");
                let _ = self.irqs.set_unmask_fd(index, None);
                return;
            }
        }
        let _ = self.irqs.unmask(index);
    }

    fn negotiate(
        &mut self,
        ch: &Arc<Channel>,
        pending: &Arc<Mutex<VecDeque<Message>>>,
        msg: Message,
    ) -> Result<(), ServerError> {
        let h = msg.header;
        if h.message_type() != Ok(MessageType::Command) || h.command != Command::Version as u16 {
            reply_err(ch, &h, libc_errno::EINVAL)?;
            return Err(ServerError::Protocol(format!(
                "first message is command {} instead of VFIO_USER_VERSION",
                h.command
            )));
        }
        let theirs = match Version::decode(&msg.payload) {
            Ok(v) => v,
            Err(e) => {
                reply_err(ch, &h, libc_errno::EINVAL)?;
                return Err(ServerError::Protocol(e.to_string()));
            }
        };
        if theirs.major != protocol::VERSION_MAJOR {
            reply_err(ch, &h, libc_errno::ENOTSUP)?;
            return Err(ServerError::Protocol(format!(
                "client speaks version {}.{}, the server {}.{}",
                theirs.major,
                theirs.minor,
                protocol::VERSION_MAJOR,
                protocol::VERSION_MINOR
            )));
        }
        let mut caps = Capabilities {
            max_msg_fds: Some(MAX_MSG_FDS),
            max_data_xfer_size: Some(MAX_DATA_XFER),
            max_dma_maps: Some(MAX_WINDOWS as u32),
            pgsizes: Some(4096),
            ..Default::default()
        };
        // The spec's rule: a reply's capabilities are a subset of the proposal. The DT hints
        // go back only if the client proposed the key.
        if theirs.caps.breadboard.is_some() {
            let hints = self.device.dt_hints();
            caps.breadboard = Some(BreadboardCaps {
                compatible: hints.compatible,
                dt_props: hints.props,
            });
        }
        let twin_wanted = theirs
            .caps
            .other
            .get("twin_socket")
            .and_then(|t| t.get("supported"))
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        let mut twin: Option<(UnixStream, UnixStream)> = None;
        if twin_wanted {
            match UnixStream::pair() {
                Ok(p) => {
                    caps.other.insert(
                        "twin_socket".into(),
                        serde_json::json!({"supported": true, "fd_index": 0}),
                    );
                    twin = Some(p);
                }
                Err(e) => tracing::warn!(target: "vfio_user", "no twin socket: {e}"),
            }
        }
        let ours = Version {
            major: protocol::VERSION_MAJOR,
            minor: theirs.minor.min(protocol::VERSION_MINOR),
            caps,
        };
        let body = ours.to_bytes();
        let fds: Vec<BorrowedFd<'_>> = twin.as_ref().map(|(_, c)| c.as_fd()).into_iter().collect();
        ch.send(&Header::new_reply(&h, body.len()), &body, &fds)?;
        let max_xfer = usize::try_from(theirs.caps.max_data_xfer_size()).unwrap_or(1 << 20);
        let transport: Box<dyn DmaTransport + Send> = match twin {
            Some((ours, _theirs)) => Box::new(MessageDma {
                ch: Arc::new(Channel::new(ours).with_timeout(self.opts.timeout)),
                pending: None,
                seq: AtomicU16::new(0),
            }),
            None => Box::new(MessageDma {
                ch: Arc::clone(ch),
                pending: Some(Arc::clone(pending)),
                seq: AtomicU16::new(0),
            }),
        };
        self.dma.set_transport(Some(transport), max_xfer);
        Ok(())
    }

    /// Serve one message. Errors returned end the session; a bad command gets an error reply.
    fn handle(&mut self, ch: &Channel, msg: Message) -> Result<(), ServerError> {
        let h = msg.header;
        match h.message_type() {
            Ok(MessageType::Command) => {}
            Ok(MessageType::Reply) => {
                tracing::warn!(target: "vfio_user", "unexpected reply to message {}; ignored", h.msg_id);
                return Ok(());
            }
            Err(e) => {
                reply_err(ch, &h, libc_errno::EINVAL)?;
                return Err(ServerError::Protocol(e.to_string()));
            }
        }
        let result = match h.command() {
            Ok(cmd) => self.command(cmd, &msg),
            Err(e) => Err(Refusal::new(libc_errno::ENOSYS, e.to_string())),
        };
        match result {
            Ok(Reply { body, fd }) => {
                if !h.no_reply() {
                    let fds: Vec<BorrowedFd<'_>> = fd.into_iter().collect();
                    ch.send(&Header::new_reply(&h, body.len()), &body, &fds)?;
                }
            }
            Err(r) => {
                tracing::warn!(target: "vfio_user", "command {} refused: {}", h.command, r.why);
                if !h.no_reply() {
                    reply_err(ch, &h, r.errno)?;
                }
                if r.fatal {
                    return Err(ServerError::Protocol(r.why));
                }
            }
        }
        Ok(())
    }

    fn command(&mut self, cmd: Command, msg: &Message) -> Result<Reply<'_>, Refusal> {
        let p = &msg.payload;
        if !matches!(cmd, Command::DmaMap | Command::DeviceSetIrqs) && !msg.fds.is_empty() {
            return Err(Refusal::new(
                libc_errno::EINVAL,
                format!("{} carries fds", cmd.name()),
            ));
        }
        match cmd {
            Command::Version => Err(Refusal::new(libc_errno::EINVAL, "version negotiated twice")),
            Command::DmaMap => {
                let m = DmaMap::decode(p).map_err(Refusal::bad)?;
                let fd = match msg.fds.as_slice() {
                    [] => None,
                    [fd] => Some((fd.as_fd(), m.offset)),
                    _ => return Err(Refusal::new(libc_errno::EINVAL, "DMA_MAP with several fds")),
                };
                self.dma
                    .map(
                        m.address,
                        m.size,
                        m.flags & protocol::DMA_FLAG_READ != 0,
                        m.flags & protocol::DMA_FLAG_WRITE != 0,
                        fd,
                    )
                    .map_err(Refusal::dma)?;
                Ok(Reply::empty())
            }
            Command::DmaUnmap => {
                let u = DmaUnmap::decode(p).map_err(Refusal::bad)?;
                self.dma.unmap(u.address, u.size).map_err(Refusal::dma)?;
                Ok(Reply::body(
                    DmaUnmap {
                        argsz: DmaUnmap::SIZE as u32,
                        ..u
                    }
                    .to_bytes(),
                ))
            }
            Command::DeviceGetInfo => {
                let req = vfio_device_info::decode(p).map_err(Refusal::bad)?;
                if (req.argsz as usize) < vfio_device_info::SIZE {
                    return Err(Refusal::new(
                        libc_errno::EINVAL,
                        "device info argsz too small",
                    ));
                }
                let info = vfio_device_info {
                    argsz: vfio_device_info::SIZE as u32,
                    flags: protocol::VFIO_DEVICE_FLAGS_PLATFORM | protocol::VFIO_DEVICE_FLAGS_RESET,
                    num_regions: u32::try_from(self.regions.len()).unwrap_or(u32::MAX),
                    num_irqs: u32::try_from(self.irqs.len()).unwrap_or(u32::MAX),
                    cap_offset: 0,
                    pad: 0,
                };
                Ok(Reply::body(info.to_bytes()))
            }
            Command::DeviceGetRegionInfo => {
                let req = vfio_region_info::decode(p).map_err(Refusal::bad)?;
                if (req.argsz as usize) < vfio_region_info::SIZE {
                    return Err(Refusal::new(
                        libc_errno::EINVAL,
                        "region info argsz too small",
                    ));
                }
                let spec = *self.region(req.index)?;
                let mut flags = 0;
                if spec.readable {
                    flags |= protocol::VFIO_REGION_INFO_FLAG_READ;
                }
                if spec.writable {
                    flags |= protocol::VFIO_REGION_INFO_FLAG_WRITE;
                }
                let mut offset = 0;
                let mut fd = None;
                if spec.mmap {
                    match self.device.region_fd(req.index) {
                        Some((f, off)) => {
                            flags |= protocol::VFIO_REGION_INFO_FLAG_MMAP;
                            offset = off;
                            fd = Some(f);
                        }
                        None => tracing::warn!(target: "vfio_user",
                            "region {} is mmap'able but the device gave no fd", req.index),
                    }
                }
                let info = vfio_region_info {
                    argsz: vfio_region_info::SIZE as u32,
                    flags,
                    index: req.index,
                    cap_offset: 0,
                    size: spec.size,
                    offset,
                };
                Ok(Reply {
                    body: info.to_bytes(),
                    fd,
                })
            }
            Command::DeviceGetIrqInfo => {
                let req = vfio_irq_info::decode(p).map_err(Refusal::bad)?;
                if (req.argsz as usize) < vfio_irq_info::SIZE {
                    return Err(Refusal::new(libc_errno::EINVAL, "IRQ info argsz too small"));
                }
                let kind = self.irqs.kind(req.index).ok_or_else(|| {
                    Refusal::new(libc_errno::EINVAL, format!("no IRQ {}", req.index))
                })?;
                let mut flags = protocol::VFIO_IRQ_INFO_EVENTFD | protocol::VFIO_IRQ_INFO_MASKABLE;
                if kind == IrqKind::Level {
                    flags |= protocol::VFIO_IRQ_INFO_AUTOMASKED;
                }
                let info = vfio_irq_info {
                    argsz: vfio_irq_info::SIZE as u32,
                    flags,
                    index: req.index,
                    count: 1,
                };
                Ok(Reply::body(info.to_bytes()))
            }
            Command::DeviceSetIrqs => {
                let set = IrqSet::decode(p).map_err(Refusal::bad)?;
                // The fds are ours now; `set_irqs` takes what it keeps.
                let fds: Vec<OwnedFd> = msg.fds.iter().filter_map(|f| f.try_clone().ok()).collect();
                if fds.len() != msg.fds.len() {
                    return Err(Refusal::new(
                        libc_errno::ENOMEM,
                        "cannot duplicate the client's fds",
                    ));
                }
                set_irqs(&mut self.irqs, &set, fds).map_err(Refusal::irq)?;
                Ok(Reply::empty())
            }
            Command::RegionRead => {
                let a = RegionAccess::decode(p).map_err(Refusal::bad)?;
                let spec = *self.region(a.region)?;
                check_access(&spec, a.region, a.offset, a.count, false)?;
                let mut data = vec![0u8; a.count as usize];
                let mut ctx = DeviceContext {
                    dma: &mut self.dma,
                    irq: &mut self.irqs,
                };
                self.device
                    .read(&mut ctx, a.region, a.offset, &mut data)
                    .map_err(|e| Refusal::new(libc_errno::EINVAL, e.to_string()))?;
                Ok(Reply::body(
                    RegionData {
                        offset: a.offset,
                        region: a.region,
                        data,
                    }
                    .to_bytes(),
                ))
            }
            Command::RegionWrite => {
                let w = RegionData::decode(p).map_err(Refusal::bad)?;
                let spec = *self.region(w.region)?;
                let count = u32::try_from(w.data.len()).unwrap_or(u32::MAX);
                check_access(&spec, w.region, w.offset, count, true)?;
                let mut ctx = DeviceContext {
                    dma: &mut self.dma,
                    irq: &mut self.irqs,
                };
                self.device
                    .write(&mut ctx, w.region, w.offset, &w.data)
                    .map_err(|e| Refusal::new(libc_errno::EINVAL, e.to_string()))?;
                Ok(Reply::body(w.access().to_bytes()))
            }
            Command::DeviceReset => {
                if !p.is_empty() {
                    return Err(Refusal::new(
                        libc_errno::EINVAL,
                        "DEVICE_RESET with a payload",
                    ));
                }
                let mut ctx = DeviceContext {
                    dma: &mut self.dma,
                    irq: &mut self.irqs,
                };
                self.device.reset(&mut ctx);
                Ok(Reply::empty())
            }
            Command::DmaRead | Command::DmaWrite => Err(Refusal::new(
                libc_errno::EINVAL,
                format!("{} is a server command", cmd.name()),
            )),
            Command::DeviceGetRegionIoFds => Err(Refusal::new(
                libc_errno::ENOTSUP,
                "VFIO_USER_DEVICE_GET_REGION_IO_FDS is not supported",
            )),
        }
    }

    fn region(&self, index: u32) -> Result<&RegionSpec, Refusal> {
        self.regions
            .get(index as usize)
            .ok_or_else(|| Refusal::new(libc_errno::EINVAL, format!("no region {index}")))
    }
}

impl<D: PlatformDevice> Drop for Server<D> {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Check a region access against the region before the device sees it.
fn check_access(
    spec: &RegionSpec,
    region: u32,
    offset: u64,
    count: u32,
    write: bool,
) -> Result<(), Refusal> {
    if count > MAX_DATA_XFER {
        return Err(Refusal::new(
            libc_errno::EINVAL,
            format!("access of {count} bytes is too large"),
        ));
    }
    if offset
        .checked_add(u64::from(count))
        .is_none_or(|end| end > spec.size)
    {
        return Err(Refusal::new(
            libc_errno::EINVAL,
            format!("access of {count} bytes at {offset:#x} is outside region {region}"),
        ));
    }
    if (write && !spec.writable) || (!write && !spec.readable) {
        return Err(Refusal::new(
            libc_errno::EPERM,
            format!("region {region} does not allow it"),
        ));
    }
    Ok(())
}

/// Apply `VFIO_USER_DEVICE_SET_IRQS` to the lines. Every platform IRQ index has one sub-index.
pub(crate) fn set_irqs(
    irqs: &mut IrqLines,
    set: &IrqSet,
    fds: Vec<OwnedFd>,
) -> Result<(), IrqError> {
    use protocol::{
        VFIO_IRQ_SET_ACTION_MASK as MASK, VFIO_IRQ_SET_ACTION_TRIGGER as TRIGGER,
        VFIO_IRQ_SET_ACTION_UNMASK as UNMASK, VFIO_IRQ_SET_DATA_BOOL as BOOL,
        VFIO_IRQ_SET_DATA_EVENTFD as EVENTFD, VFIO_IRQ_SET_DATA_NONE as NONE,
    };
    let data = set.flags & (NONE | BOOL | EVENTFD);
    let action = set.flags & (MASK | UNMASK | TRIGGER);
    if set.flags & !(NONE | BOOL | EVENTFD | MASK | UNMASK | TRIGGER) != 0
        || data.count_ones() != 1
        || action.count_ones() != 1
    {
        return Err(IrqError::Unsupported(set.flags));
    }
    if irqs.kind(set.index).is_none() {
        return Err(IrqError::NoIndex(set.index));
    }
    if data != EVENTFD && !fds.is_empty() {
        return Err(IrqError::DataCount {
            expected: 0,
            got: fds.len(),
        });
    }
    let bad_range = IrqError::BadRange {
        index: set.index,
        start: set.start,
        count: set.count,
    };
    if set.count == 0 {
        // count 0: DATA_NONE + TRIGGER disables the index (and so does an eventfd
        // trigger without fds).
        return match (data, action, set.start) {
            (NONE, TRIGGER, 0) => irqs.disable(set.index),
            (EVENTFD, TRIGGER, 0) if fds.is_empty() => irqs.set_trigger(set.index, None),
            _ => Err(bad_range),
        };
    }
    if set.start != 0 || set.count != 1 {
        return Err(bad_range);
    }
    match data {
        EVENTFD => {
            if fds.len() > 1 {
                return Err(IrqError::DataCount {
                    expected: 1,
                    got: fds.len(),
                });
            }
            // Anything else (a regular file, a socket) would be "readable" for ever and make
            // the poll loop spin, or swallow the signals.
            if fds.iter().any(|fd| !is_eventfd(fd.as_fd())) {
                return Err(IrqError::NotEventfd(set.index));
            }
            let fd = fds.into_iter().next();
            match action {
                TRIGGER => irqs.set_trigger(set.index, fd),
                UNMASK => irqs.set_unmask_fd(set.index, fd),
                _ => Err(IrqError::Unsupported(set.flags)),
            }
        }
        _ => {
            if data == BOOL {
                match set.data.first() {
                    Some(0) => return Ok(()),
                    Some(_) => {}
                    None => {
                        return Err(IrqError::DataCount {
                            expected: 1,
                            got: 0,
                        });
                    }
                }
            }
            match action {
                TRIGGER => irqs.client_trigger(set.index),
                MASK => irqs.mask(set.index),
                _ => irqs.unmask(set.index),
            }
        }
    }
}

/// Whether `fd` is an eventfd, by what the kernel calls it in `/proc/self/fd` (an anonymous
/// inode named `[eventfd]`). Without `/proc` nothing can be told and the fd is taken.
fn is_eventfd(fd: BorrowedFd<'_>) -> bool {
    use std::os::fd::AsRawFd;
    match std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())) {
        Ok(target) => target.as_os_str() == "anon_inode:[eventfd]",
        Err(_) => !Path::new("/proc/self/fd").exists(),
    }
}

/// A successful answer: payload and maybe one fd.
struct Reply<'a> {
    body: Vec<u8>,
    fd: Option<BorrowedFd<'a>>,
}

impl Reply<'_> {
    fn empty() -> Self {
        Self {
            body: Vec::new(),
            fd: None,
        }
    }
    fn body(body: Vec<u8>) -> Self {
        Self { body, fd: None }
    }
}

/// A refused command: the errno for the reply, why (logged), and whether the session ends.
struct Refusal {
    errno: u32,
    why: String,
    fatal: bool,
}

impl Refusal {
    fn new(errno: u32, why: impl Into<String>) -> Self {
        Self {
            errno,
            why: why.into(),
            fatal: false,
        }
    }
    fn bad(e: protocol::ProtocolError) -> Self {
        Self::new(libc_errno::EINVAL, e.to_string())
    }
    fn dma(e: DmaError) -> Self {
        let errno = match &e {
            DmaError::Overlap { .. } => libc_errno::EEXIST,
            DmaError::NoWindow { .. } => libc_errno::ENOENT,
            DmaError::Mmap(errno) => errno.raw_os_error() as u32,
            _ => libc_errno::EINVAL,
        };
        Self::new(errno, e.to_string())
    }
    fn irq(e: IrqError) -> Self {
        let errno = match e {
            IrqError::Unsupported(_) => libc_errno::ENOTSUP,
            _ => libc_errno::EINVAL,
        };
        Self::new(errno, e.to_string())
    }
}

fn reply_err(ch: &Channel, h: &Header, errno: u32) -> Result<(), ServerError> {
    ch.send(&Header::new_error_reply(h, errno), &[], &[])?;
    Ok(())
}

/// The errno values the server replies with (Linux numbering, as the spec's "UNIX errno").
mod libc_errno {
    pub const ENOENT: u32 = 2;
    pub const ENOMEM: u32 = 12;
    pub const EPERM: u32 = 1;
    pub const EEXIST: u32 = 17;
    pub const EINVAL: u32 = 22;
    pub const ENOSYS: u32 = 38;
    pub const ENOTSUP: u32 = 95;
}

/// DMA through `VFIO_USER_DMA_READ`/`DMA_WRITE` commands to the client.
struct MessageDma {
    ch: Arc<Channel>,
    /// On the main socket, client commands that arrive while we wait for our reply are queued
    /// here for the session loop. `None` on a twin socket, where only replies come.
    pending: Option<Arc<Mutex<VecDeque<Message>>>>,
    seq: AtomicU16,
}

impl MessageDma {
    fn exchange(&mut self, cmd: Command, body: &[u8]) -> Result<Message, String> {
        let id = self.seq.fetch_add(1, Ordering::Relaxed);
        self.ch
            .send(&Header::new_command(id, cmd, body.len()), body, &[])
            .map_err(|e| e.to_string())?;
        loop {
            let m = self
                .ch
                .recv(Some(self.ch.timeout()))
                .map_err(|e| e.to_string())?;
            let h = m.header;
            match h.message_type() {
                Ok(MessageType::Reply) if h.msg_id == id && h.command == cmd as u16 => {
                    if h.is_error() {
                        return Err(format!(
                            "client refused {} with errno {}",
                            cmd.name(),
                            h.error
                        ));
                    }
                    return Ok(m);
                }
                Ok(MessageType::Command) => match &self.pending {
                    Some(q) => {
                        let mut q = q.lock().unwrap_or_else(|p| p.into_inner());
                        // A client that floods commands instead of answering is broken.
                        if q.len() >= 64 {
                            return Err(
                                "client sent too many commands instead of a DMA reply".into()
                            );
                        }
                        q.push_back(m);
                    }
                    None => return Err("command on the DMA socket".into()),
                },
                _ => {
                    return Err(format!(
                        "unexpected message {} while waiting for {}",
                        h.msg_id,
                        cmd.name()
                    ));
                }
            }
        }
    }
}

impl DmaTransport for MessageDma {
    fn dma_read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), String> {
        let req = protocol::DmaAccess {
            address: addr,
            count: buf.len() as u64,
        };
        let m = self.exchange(Command::DmaRead, &req.to_bytes())?;
        let data = DmaData::decode(&m.payload).map_err(|e| e.to_string())?;
        if data.address != addr || data.data.len() != buf.len() {
            return Err("DMA_READ reply does not match the request".into());
        }
        buf.copy_from_slice(&data.data);
        Ok(())
    }

    fn dma_write(&mut self, addr: u64, data: &[u8]) -> Result<(), String> {
        let req = DmaData {
            address: addr,
            data: data.to_vec(),
        };
        self.exchange(Command::DmaWrite, &req.to_bytes())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::event::{EventfdFlags, eventfd};

    fn efd() -> OwnedFd {
        eventfd(0, EventfdFlags::NONBLOCK).unwrap()
    }

    fn take(fd: &OwnedFd) -> u64 {
        let mut b = [0u8; 8];
        match rustix::io::read(fd, &mut b) {
            Ok(8) => u64::from_ne_bytes(b),
            _ => 0,
        }
    }

    const TRIG_FD: u32 =
        protocol::VFIO_IRQ_SET_DATA_EVENTFD | protocol::VFIO_IRQ_SET_ACTION_TRIGGER;

    #[test]
    fn test_set_irqs_eventfd_trigger_then_unmask_by_message() {
        let mut irqs = IrqLines::new(&[IrqKind::Level]);
        let ev = efd();
        set_irqs(
            &mut irqs,
            &IrqSet::new(TRIG_FD, 0, 0, 1, vec![]),
            vec![ev.try_clone().unwrap()],
        )
        .unwrap();
        super::super::IrqOutput::set_level(&mut irqs, 0, true);
        assert_eq!(take(&ev), 1);
        let unmask = protocol::VFIO_IRQ_SET_DATA_NONE | protocol::VFIO_IRQ_SET_ACTION_UNMASK;
        set_irqs(&mut irqs, &IrqSet::new(unmask, 0, 0, 1, vec![]), vec![]).unwrap();
        assert_eq!(take(&ev), 1, "still high: signalled again");
    }

    #[test]
    fn test_set_irqs_disable_with_count_zero() {
        let mut irqs = IrqLines::new(&[IrqKind::Level]);
        let ev = efd();
        set_irqs(
            &mut irqs,
            &IrqSet::new(TRIG_FD, 0, 0, 1, vec![]),
            vec![ev.try_clone().unwrap()],
        )
        .unwrap();
        let disable = protocol::VFIO_IRQ_SET_DATA_NONE | protocol::VFIO_IRQ_SET_ACTION_TRIGGER;
        set_irqs(&mut irqs, &IrqSet::new(disable, 0, 0, 0, vec![]), vec![]).unwrap();
        super::super::IrqOutput::set_level(&mut irqs, 0, true);
        assert_eq!(take(&ev), 0);
    }

    #[test]
    fn test_set_irqs_bool_false_does_nothing_and_true_triggers() {
        let mut irqs = IrqLines::new(&[IrqKind::Edge]);
        let ev = efd();
        set_irqs(
            &mut irqs,
            &IrqSet::new(TRIG_FD, 0, 0, 1, vec![]),
            vec![ev.try_clone().unwrap()],
        )
        .unwrap();
        let trig_bool = protocol::VFIO_IRQ_SET_DATA_BOOL | protocol::VFIO_IRQ_SET_ACTION_TRIGGER;
        set_irqs(&mut irqs, &IrqSet::new(trig_bool, 0, 0, 1, vec![0]), vec![]).unwrap();
        assert_eq!(take(&ev), 0);
        set_irqs(&mut irqs, &IrqSet::new(trig_bool, 0, 0, 1, vec![1]), vec![]).unwrap();
        assert_eq!(take(&ev), 1);
    }

    #[test]
    fn test_set_irqs_rejects_bad_requests() {
        let mut irqs = IrqLines::new(&[IrqKind::Level]);
        let none_trig = protocol::VFIO_IRQ_SET_DATA_NONE | protocol::VFIO_IRQ_SET_ACTION_TRIGGER;
        assert_eq!(
            set_irqs(&mut irqs, &IrqSet::new(none_trig, 1, 0, 1, vec![]), vec![]),
            Err(IrqError::NoIndex(1))
        );
        assert!(matches!(
            set_irqs(&mut irqs, &IrqSet::new(none_trig, 0, 0, 2, vec![]), vec![]),
            Err(IrqError::BadRange { .. })
        ));
        assert!(matches!(
            set_irqs(&mut irqs, &IrqSet::new(none_trig, 0, 1, 1, vec![]), vec![]),
            Err(IrqError::BadRange { .. })
        ));
        // Two data types at once.
        let two = none_trig | protocol::VFIO_IRQ_SET_DATA_EVENTFD;
        assert!(matches!(
            set_irqs(&mut irqs, &IrqSet::new(two, 0, 0, 1, vec![]), vec![]),
            Err(IrqError::Unsupported(_))
        ));
        // Unknown bits.
        assert!(matches!(
            set_irqs(
                &mut irqs,
                &IrqSet::new(none_trig | 1 << 9, 0, 0, 1, vec![]),
                vec![]
            ),
            Err(IrqError::Unsupported(_))
        ));
        // fds with DATA_NONE.
        assert!(matches!(
            set_irqs(
                &mut irqs,
                &IrqSet::new(none_trig, 0, 0, 1, vec![]),
                vec![efd()]
            ),
            Err(IrqError::DataCount { .. })
        ));
        // Mask eventfds are not supported.
        let mask_fd = protocol::VFIO_IRQ_SET_DATA_EVENTFD | protocol::VFIO_IRQ_SET_ACTION_MASK;
        assert!(matches!(
            set_irqs(
                &mut irqs,
                &IrqSet::new(mask_fd, 0, 0, 1, vec![]),
                vec![efd()]
            ),
            Err(IrqError::Unsupported(_))
        ));
        // Something that is not an eventfd.
        let file = OwnedFd::from(std::fs::File::open("/dev/null").unwrap());
        assert_eq!(
            set_irqs(
                &mut irqs,
                &IrqSet::new(TRIG_FD, 0, 0, 1, vec![]),
                vec![file]
            ),
            Err(IrqError::NotEventfd(0))
        );
        // Two eventfds for one sub-index.
        assert!(matches!(
            set_irqs(
                &mut irqs,
                &IrqSet::new(TRIG_FD, 0, 0, 1, vec![]),
                vec![efd(), efd()]
            ),
            Err(IrqError::DataCount { .. })
        ));
    }
}
