//! vfio-user messages: the 16-byte header and the bodies breadboard sends and answers, encoded
//! and decoded in both directions (vfio-user Protocol Specification, "Header" and the command
//! sections that follow it; QEMU's docs/interop/vfio-user.rst).
//!
//! All integers are in host byte order, as the specification says. Every decoder takes the
//! payload that followed a header (not the header itself), checks its length before reading
//! and returns a [`ProtocolError`] instead of panicking: the bytes come from another process.
//!
//! Where a body is a `<linux/vfio.h>` structure the `vfio-bindings` type is used as is
//! ([`vfio_device_info`], [`vfio_region_info`], [`vfio_irq_info`]) through the [`Wire`] trait.
//! `vfio_device_info` is 24 bytes in today's kernel headers but 16 on the vfio-user wire: only
//! `argsz`, `flags`, `num_regions` and `num_irqs` travel; `cap_offset` and `pad` decode as 0.
//!
//! # The `breadboard` capability (a vendor extension)
//!
//! A platform device has no PCI IDs and no config space from which a guest OS could learn what
//! it is, so a server may describe it for the device tree in its `VFIO_USER_VERSION` reply, in
//! the capabilities object under the key `"breadboard"`:
//!
//! ```json
//! {"capabilities": {
//!     "max_msg_fds": 8,
//!     "max_data_xfer_size": 1048576,
//!     "breadboard": {
//!         "compatible": ["acme,timer-v2", "acme,timer"],
//!         "dt-props": {"clock-frequency": "00f42400", "acme,mode": "6661737400"}
//!     }
//! }}
//! ```
//!
//! - `compatible`: the node's `compatible` strings, most specific first (printable ASCII, not
//!   empty).
//! - `dt-props`: other properties of the node, by name, each value the property's raw bytes as
//!   an even-length string of hex digits (big-endian cells, NUL-terminated strings; `""` is an
//!   empty property). Names follow the device-tree rules: 1 to 31 characters of
//!   `0-9 a-z A-Z , . _ + ? # -`.
//!
//! The client proposes `"breadboard": {}` in its request so that, by the specification's rule
//! that a reply's capabilities are a subset of the proposal, a server may send it back filled.
//! Servers that do not know the key leave it out; the client then has no hints.

// Reads untrusted input (a vfio-user server, the kernel, sysfs files, the guest): no panicking
// shortcuts outside tests.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use serde::{Deserialize, Serialize};
use thiserror::Error;
pub use vfio_bindings::bindings::vfio::{vfio_device_info, vfio_irq_info, vfio_region_info};

/// Size of the message header.
pub const HEADER_SIZE: usize = 16;

/// The protocol version breadboard speaks (the one libvfio-user and QEMU speak).
pub const VERSION_MAJOR: u16 = 0;
/// See [`VERSION_MAJOR`].
pub const VERSION_MINOR: u16 = 1;

/// Default `max_data_xfer_size` when a peer does not state one (the specification's value).
pub const DEFAULT_MAX_DATA_XFER_SIZE: u32 = 1 << 20;
/// Default `max_msg_fds` when a peer does not state one (the specification's value).
pub const DEFAULT_MAX_MSG_FDS: u32 = 1;

/// Flags field: mask of the message type.
pub const FLAGS_TYPE_MASK: u32 = 0xf;
/// Message type: a command.
pub const FLAGS_TYPE_COMMAND: u32 = 0;
/// Message type: a reply.
pub const FLAGS_TYPE_REPLY: u32 = 1;
/// Flags field: the sender wants no reply.
pub const FLAGS_NO_REPLY: u32 = 1 << 4;
/// Flags field: the reply reports an error (the header's `error` holds an errno, maybe 0).
pub const FLAGS_ERROR: u32 = 1 << 5;

/// `VFIO_USER_DMA_MAP` flag: the server may read the window.
pub const DMA_FLAG_READ: u32 = 1 << 0;
/// `VFIO_USER_DMA_MAP` flag: the server may write the window.
pub const DMA_FLAG_WRITE: u32 = 1 << 1;

pub use vfio_bindings::bindings::vfio::{
    VFIO_DEVICE_FLAGS_PLATFORM, VFIO_DEVICE_FLAGS_RESET, VFIO_IRQ_INFO_AUTOMASKED,
    VFIO_IRQ_INFO_EVENTFD, VFIO_IRQ_INFO_MASKABLE, VFIO_IRQ_SET_ACTION_MASK,
    VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_IRQ_SET_ACTION_UNMASK, VFIO_IRQ_SET_DATA_BOOL,
    VFIO_IRQ_SET_DATA_EVENTFD, VFIO_IRQ_SET_DATA_NONE, VFIO_REGION_INFO_FLAG_CAPS,
    VFIO_REGION_INFO_FLAG_MMAP, VFIO_REGION_INFO_FLAG_READ, VFIO_REGION_INFO_FLAG_WRITE,
};

/// A malformed or unexpected message.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// Fewer bytes than the fixed part of the structure.
    #[error("{what}: {got} bytes, at least {need} needed")]
    Short {
        /// The structure being decoded.
        what: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes present.
        got: usize,
    },
    /// A payload whose length is not what its command (and its own fields) imply.
    #[error("{what}: payload of {got} bytes, {expected} expected")]
    WrongSize {
        /// The structure being decoded.
        what: &'static str,
        /// Bytes expected.
        expected: usize,
        /// Bytes present.
        got: usize,
    },
    /// A header whose size field cannot be right (smaller than the header itself).
    #[error("header size field {0} is smaller than the {HEADER_SIZE}-byte header")]
    BadSizeField(u32),
    /// A message or data transfer larger than allowed.
    #[error("{what}: {size} bytes exceeds the limit of {max}")]
    TooLarge {
        /// What is too large.
        what: &'static str,
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// A command number this implementation does not know.
    #[error("unknown command {0}")]
    UnknownCommand(u16),
    /// A message type (flags bits 0-3) that is neither command nor reply.
    #[error("unknown message type {0} (flags bits 0-3)")]
    UnknownType(u32),
    /// A `VFIO_USER_VERSION` body that is not valid (JSON, UTF-8, capability values).
    #[error("version: {0}")]
    BadVersion(String),
    /// A field with a value that cannot be right.
    #[error("{what}: {detail}")]
    BadField {
        /// The structure being decoded.
        what: &'static str,
        /// What is wrong.
        detail: String,
    },
}

/// The commands of the specification's table (`VFIO_USER_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum Command {
    /// `VFIO_USER_VERSION`.
    Version = 1,
    /// `VFIO_USER_DMA_MAP`.
    DmaMap = 2,
    /// `VFIO_USER_DMA_UNMAP`.
    DmaUnmap = 3,
    /// `VFIO_USER_DEVICE_GET_INFO`.
    DeviceGetInfo = 4,
    /// `VFIO_USER_DEVICE_GET_REGION_INFO`.
    DeviceGetRegionInfo = 5,
    /// `VFIO_USER_DEVICE_GET_REGION_IO_FDS` (known, not implemented by breadboard).
    DeviceGetRegionIoFds = 6,
    /// `VFIO_USER_DEVICE_GET_IRQ_INFO`.
    DeviceGetIrqInfo = 7,
    /// `VFIO_USER_DEVICE_SET_IRQS`.
    DeviceSetIrqs = 8,
    /// `VFIO_USER_REGION_READ`.
    RegionRead = 9,
    /// `VFIO_USER_REGION_WRITE`.
    RegionWrite = 10,
    /// `VFIO_USER_DMA_READ` (server to client).
    DmaRead = 11,
    /// `VFIO_USER_DMA_WRITE` (server to client).
    DmaWrite = 12,
    /// `VFIO_USER_DEVICE_RESET`.
    DeviceReset = 13,
}

impl Command {
    /// The command with number `n`.
    pub fn from_u16(n: u16) -> Result<Command, ProtocolError> {
        Ok(match n {
            1 => Command::Version,
            2 => Command::DmaMap,
            3 => Command::DmaUnmap,
            4 => Command::DeviceGetInfo,
            5 => Command::DeviceGetRegionInfo,
            6 => Command::DeviceGetRegionIoFds,
            7 => Command::DeviceGetIrqInfo,
            8 => Command::DeviceSetIrqs,
            9 => Command::RegionRead,
            10 => Command::RegionWrite,
            11 => Command::DmaRead,
            12 => Command::DmaWrite,
            13 => Command::DeviceReset,
            _ => return Err(ProtocolError::UnknownCommand(n)),
        })
    }

    /// The specification's name, for log lines.
    pub fn name(self) -> &'static str {
        match self {
            Command::Version => "VFIO_USER_VERSION",
            Command::DmaMap => "VFIO_USER_DMA_MAP",
            Command::DmaUnmap => "VFIO_USER_DMA_UNMAP",
            Command::DeviceGetInfo => "VFIO_USER_DEVICE_GET_INFO",
            Command::DeviceGetRegionInfo => "VFIO_USER_DEVICE_GET_REGION_INFO",
            Command::DeviceGetRegionIoFds => "VFIO_USER_DEVICE_GET_REGION_IO_FDS",
            Command::DeviceGetIrqInfo => "VFIO_USER_DEVICE_GET_IRQ_INFO",
            Command::DeviceSetIrqs => "VFIO_USER_DEVICE_SET_IRQS",
            Command::RegionRead => "VFIO_USER_REGION_READ",
            Command::RegionWrite => "VFIO_USER_REGION_WRITE",
            Command::DmaRead => "VFIO_USER_DMA_READ",
            Command::DmaWrite => "VFIO_USER_DMA_WRITE",
            Command::DeviceReset => "VFIO_USER_DEVICE_RESET",
        }
    }
}

/// Whether a message is a command or a reply (flags bits 0-3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageType {
    /// A command (type 0).
    Command,
    /// A reply to the command with the same message id (type 1).
    Reply,
}

/// The header every message starts with.
///
/// `command` is kept raw so that a header with an unknown command still decodes (a peer must
/// be able to answer it with an error); [`Header::command`] checks it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// Message id, chosen by the sender of a command and echoed in its reply.
    pub msg_id: u16,
    /// Command number ([`Command`]).
    pub command: u16,
    /// Size of the whole message, header included.
    pub size: u32,
    /// `FLAGS_*`.
    pub flags: u32,
    /// errno of an error reply (may be 0 even then); reserved in commands.
    pub error: u32,
}

impl Header {
    /// A command header for a payload of `payload_len` bytes.
    pub fn new_command(msg_id: u16, command: Command, payload_len: usize) -> Header {
        Header {
            msg_id,
            command: command as u16,
            size: message_size(payload_len),
            flags: FLAGS_TYPE_COMMAND,
            error: 0,
        }
    }

    /// The reply header answering `request` with a payload of `payload_len` bytes.
    pub fn new_reply(request: &Header, payload_len: usize) -> Header {
        Header {
            msg_id: request.msg_id,
            command: request.command,
            size: message_size(payload_len),
            flags: FLAGS_TYPE_REPLY,
            error: 0,
        }
    }

    /// The error reply answering `request` with `errno` (the reply has no payload).
    pub fn new_error_reply(request: &Header, errno: u32) -> Header {
        Header {
            msg_id: request.msg_id,
            command: request.command,
            size: message_size(0),
            flags: FLAGS_TYPE_REPLY | FLAGS_ERROR,
            error: errno,
        }
    }

    /// Decodes the first [`HEADER_SIZE`] bytes of `buf`; checks only what the header alone
    /// can tell (the size field covers at least the header). The type and the command are
    /// checked by [`Header::message_type`] and [`Header::command`].
    pub fn decode(buf: &[u8]) -> Result<Header, ProtocolError> {
        let mut r = Reader::new("header", buf);
        let h = Header {
            msg_id: r.u16()?,
            command: r.u16()?,
            size: r.u32()?,
            flags: r.u32()?,
            error: r.u32()?,
        };
        if (h.size as usize) < HEADER_SIZE {
            return Err(ProtocolError::BadSizeField(h.size));
        }
        Ok(h)
    }

    /// The 16 bytes on the wire.
    pub fn encode(&self) -> [u8; HEADER_SIZE] {
        let mut out = [0u8; HEADER_SIZE];
        let parts: [&[u8]; 5] = [
            &self.msg_id.to_ne_bytes(),
            &self.command.to_ne_bytes(),
            &self.size.to_ne_bytes(),
            &self.flags.to_ne_bytes(),
            &self.error.to_ne_bytes(),
        ];
        let mut at = 0;
        for p in parts {
            for (dst, src) in out.iter_mut().skip(at).zip(p) {
                *dst = *src;
            }
            at += p.len();
        }
        out
    }

    /// Payload length implied by the size field (0 if the field is below the header size,
    /// which [`Header::decode`] refuses anyway).
    pub fn payload_len(&self) -> usize {
        (self.size as usize).saturating_sub(HEADER_SIZE)
    }

    /// The message type; an unknown type is an error.
    pub fn message_type(&self) -> Result<MessageType, ProtocolError> {
        match self.flags & FLAGS_TYPE_MASK {
            FLAGS_TYPE_COMMAND => Ok(MessageType::Command),
            FLAGS_TYPE_REPLY => Ok(MessageType::Reply),
            t => Err(ProtocolError::UnknownType(t)),
        }
    }

    /// The command; an unknown number is an error.
    pub fn command(&self) -> Result<Command, ProtocolError> {
        Command::from_u16(self.command)
    }

    /// Whether the sender asked for no reply.
    pub fn no_reply(&self) -> bool {
        self.flags & FLAGS_NO_REPLY != 0
    }

    /// Whether this is an error reply.
    pub fn is_error(&self) -> bool {
        self.flags & FLAGS_ERROR != 0
    }
}

/// The size field for a payload of `payload_len` bytes (saturating: the socket layer refuses
/// anything near `u32::MAX` long before).
fn message_size(payload_len: usize) -> u32 {
    u32::try_from(payload_len.saturating_add(HEADER_SIZE)).unwrap_or(u32::MAX)
}

/// A bounds-checked reader over a payload.
struct Reader<'a> {
    what: &'static str,
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(what: &'static str, buf: &'a [u8]) -> Self {
        Reader { what, buf, pos: 0 }
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], ProtocolError> {
        let end = self.pos.checked_add(N);
        let bytes =
            end.and_then(|end| self.buf.get(self.pos..end))
                .ok_or(ProtocolError::Short {
                    what: self.what,
                    need: self.pos.saturating_add(N),
                    got: self.buf.len(),
                })?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        self.pos += N;
        Ok(out)
    }

    fn u16(&mut self) -> Result<u16, ProtocolError> {
        self.take().map(u16::from_ne_bytes)
    }

    fn u32(&mut self) -> Result<u32, ProtocolError> {
        self.take().map(u32::from_ne_bytes)
    }

    fn u64(&mut self) -> Result<u64, ProtocolError> {
        self.take().map(u64::from_ne_bytes)
    }

    fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }
}

/// Checks that a fixed-size body is exactly `expected` bytes.
fn exact(what: &'static str, buf: &[u8], expected: usize) -> Result<(), ProtocolError> {
    if buf.len() < expected {
        return Err(ProtocolError::Short {
            what,
            need: expected,
            got: buf.len(),
        });
    }
    if buf.len() != expected {
        return Err(ProtocolError::WrongSize {
            what,
            expected,
            got: buf.len(),
        });
    }
    Ok(())
}

/// A message body with a fixed layout (`<linux/vfio.h>` structures and vfio-user's own).
pub trait Wire: Sized {
    /// Name for errors.
    const NAME: &'static str;
    /// Size on the wire (of the fixed part, for bodies with trailing data).
    const SIZE: usize;
    /// Appends the encoding to `out`.
    fn encode_into(&self, out: &mut Vec<u8>);
    /// Decodes a payload that must be exactly this body.
    fn decode(buf: &[u8]) -> Result<Self, ProtocolError>;
    /// The encoding.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::SIZE);
        self.encode_into(&mut out);
        out
    }
}

impl Wire for vfio_device_info {
    const NAME: &'static str = "device info";
    const SIZE: usize = 16;
    fn encode_into(&self, out: &mut Vec<u8>) {
        for v in [self.argsz, self.flags, self.num_regions, self.num_irqs] {
            out.extend_from_slice(&v.to_ne_bytes());
        }
    }
    fn decode(buf: &[u8]) -> Result<Self, ProtocolError> {
        exact(Self::NAME, buf, Self::SIZE)?;
        let mut r = Reader::new(Self::NAME, buf);
        Ok(vfio_device_info {
            argsz: r.u32()?,
            flags: r.u32()?,
            num_regions: r.u32()?,
            num_irqs: r.u32()?,
            cap_offset: 0,
            pad: 0,
        })
    }
}

impl Wire for vfio_region_info {
    const NAME: &'static str = "region info";
    const SIZE: usize = 32;
    fn encode_into(&self, out: &mut Vec<u8>) {
        for v in [self.argsz, self.flags, self.index, self.cap_offset] {
            out.extend_from_slice(&v.to_ne_bytes());
        }
        out.extend_from_slice(&self.size.to_ne_bytes());
        out.extend_from_slice(&self.offset.to_ne_bytes());
    }
    fn decode(buf: &[u8]) -> Result<Self, ProtocolError> {
        exact(Self::NAME, buf, Self::SIZE)?;
        let mut r = Reader::new(Self::NAME, buf);
        Ok(vfio_region_info {
            argsz: r.u32()?,
            flags: r.u32()?,
            index: r.u32()?,
            cap_offset: r.u32()?,
            size: r.u64()?,
            offset: r.u64()?,
        })
    }
}

impl Wire for vfio_irq_info {
    const NAME: &'static str = "IRQ info";
    const SIZE: usize = 16;
    fn encode_into(&self, out: &mut Vec<u8>) {
        for v in [self.argsz, self.flags, self.index, self.count] {
            out.extend_from_slice(&v.to_ne_bytes());
        }
    }
    fn decode(buf: &[u8]) -> Result<Self, ProtocolError> {
        exact(Self::NAME, buf, Self::SIZE)?;
        let mut r = Reader::new(Self::NAME, buf);
        Ok(vfio_irq_info {
            argsz: r.u32()?,
            flags: r.u32()?,
            index: r.u32()?,
            count: r.u32()?,
        })
    }
}

/// `VFIO_USER_DMA_MAP` request (the window's fd, if any, travels as `SCM_RIGHTS`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DmaMap {
    /// `argsz` (32).
    pub argsz: u32,
    /// `DMA_FLAG_*`.
    pub flags: u32,
    /// Offset of the window in its fd (0 without fd).
    pub offset: u64,
    /// DMA address (IOVA) of the window.
    pub address: u64,
    /// Length of the window.
    pub size: u64,
}

impl Wire for DmaMap {
    const NAME: &'static str = "DMA map";
    const SIZE: usize = 32;
    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.argsz.to_ne_bytes());
        out.extend_from_slice(&self.flags.to_ne_bytes());
        for v in [self.offset, self.address, self.size] {
            out.extend_from_slice(&v.to_ne_bytes());
        }
    }
    fn decode(buf: &[u8]) -> Result<Self, ProtocolError> {
        exact(Self::NAME, buf, Self::SIZE)?;
        let mut r = Reader::new(Self::NAME, buf);
        Ok(DmaMap {
            argsz: r.u32()?,
            flags: r.u32()?,
            offset: r.u64()?,
            address: r.u64()?,
            size: r.u64()?,
        })
    }
}

/// `VFIO_USER_DMA_UNMAP` request, and its reply (the server echoes the entry).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DmaUnmap {
    /// `argsz` (24).
    pub argsz: u32,
    /// Unused, 0.
    pub flags: u32,
    /// DMA address of the window.
    pub address: u64,
    /// Length of the window.
    pub size: u64,
}

impl Wire for DmaUnmap {
    const NAME: &'static str = "DMA unmap";
    const SIZE: usize = 24;
    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.argsz.to_ne_bytes());
        out.extend_from_slice(&self.flags.to_ne_bytes());
        out.extend_from_slice(&self.address.to_ne_bytes());
        out.extend_from_slice(&self.size.to_ne_bytes());
    }
    fn decode(buf: &[u8]) -> Result<Self, ProtocolError> {
        exact(Self::NAME, buf, Self::SIZE)?;
        let mut r = Reader::new(Self::NAME, buf);
        Ok(DmaUnmap {
            argsz: r.u32()?,
            flags: r.u32()?,
            address: r.u64()?,
            size: r.u64()?,
        })
    }
}

/// The `VFIO_USER_DEVICE_GET_INFO` request: only `argsz` (the largest reply the client takes).
pub fn device_info_request() -> vfio_device_info {
    vfio_device_info {
        argsz: 16,
        ..Default::default()
    }
}

/// The `VFIO_USER_DEVICE_GET_REGION_INFO` request for region `index`.
pub fn region_info_request(index: u32) -> vfio_region_info {
    vfio_region_info {
        argsz: 32,
        index,
        ..Default::default()
    }
}

/// The `VFIO_USER_DEVICE_GET_IRQ_INFO` request for IRQ index `index`.
pub fn irq_info_request(index: u32) -> vfio_irq_info {
    vfio_irq_info {
        argsz: 16,
        index,
        ..Default::default()
    }
}

/// `VFIO_USER_DEVICE_SET_IRQS` request (`struct vfio_irq_set`; eventfds travel as
/// `SCM_RIGHTS`). `data` holds one bool byte per sub-IRQ with `VFIO_IRQ_SET_DATA_BOOL` and is
/// empty otherwise.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IrqSet {
    /// `argsz`: size of this payload, data included.
    pub argsz: u32,
    /// One `VFIO_IRQ_SET_DATA_*` and one `VFIO_IRQ_SET_ACTION_*` bit.
    pub flags: u32,
    /// IRQ index.
    pub index: u32,
    /// First sub-IRQ.
    pub start: u32,
    /// Number of sub-IRQs.
    pub count: u32,
    /// Bool bytes (`VFIO_IRQ_SET_DATA_BOOL` only).
    pub data: Vec<u8>,
}

impl IrqSet {
    /// A request whose `argsz` matches its data.
    pub fn new(flags: u32, index: u32, start: u32, count: u32, data: Vec<u8>) -> IrqSet {
        let argsz = u32::try_from(Self::SIZE + data.len()).unwrap_or(u32::MAX);
        IrqSet {
            argsz,
            flags,
            index,
            start,
            count,
            data,
        }
    }
}

impl Wire for IrqSet {
    const NAME: &'static str = "IRQ set";
    const SIZE: usize = 20;
    fn encode_into(&self, out: &mut Vec<u8>) {
        for v in [self.argsz, self.flags, self.index, self.start, self.count] {
            out.extend_from_slice(&v.to_ne_bytes());
        }
        out.extend_from_slice(&self.data);
    }
    fn decode(buf: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(Self::NAME, buf);
        let mut set = IrqSet {
            argsz: r.u32()?,
            flags: r.u32()?,
            index: r.u32()?,
            start: r.u32()?,
            count: r.u32()?,
            data: Vec::new(),
        };
        let data_len = if set.flags & VFIO_IRQ_SET_DATA_BOOL != 0 {
            set.count as usize
        } else {
            0
        };
        exact(Self::NAME, buf, Self::SIZE.saturating_add(data_len))?;
        set.data = r.rest().to_vec();
        Ok(set)
    }
}

/// The fixed part of region and DMA accesses: `VFIO_USER_REGION_READ` request,
/// `VFIO_USER_REGION_WRITE` reply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegionAccess {
    /// Offset in the region.
    pub offset: u64,
    /// Region index.
    pub region: u32,
    /// Bytes to transfer.
    pub count: u32,
}

impl Wire for RegionAccess {
    const NAME: &'static str = "region access";
    const SIZE: usize = 16;
    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.offset.to_ne_bytes());
        out.extend_from_slice(&self.region.to_ne_bytes());
        out.extend_from_slice(&self.count.to_ne_bytes());
    }
    fn decode(buf: &[u8]) -> Result<Self, ProtocolError> {
        exact(Self::NAME, buf, Self::SIZE)?;
        let mut r = Reader::new(Self::NAME, buf);
        Ok(RegionAccess {
            offset: r.u64()?,
            region: r.u32()?,
            count: r.u32()?,
        })
    }
}

/// A region access with its data: `VFIO_USER_REGION_READ` reply, `VFIO_USER_REGION_WRITE`
/// request. Decoding checks that `count` equals the data length.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegionData {
    /// Offset in the region.
    pub offset: u64,
    /// Region index.
    pub region: u32,
    /// The bytes (`count` on the wire is their length).
    pub data: Vec<u8>,
}

impl RegionData {
    /// The access without its data.
    pub fn access(&self) -> RegionAccess {
        RegionAccess {
            offset: self.offset,
            region: self.region,
            count: u32::try_from(self.data.len()).unwrap_or(u32::MAX),
        }
    }
}

impl Wire for RegionData {
    const NAME: &'static str = "region data";
    const SIZE: usize = 16;
    fn encode_into(&self, out: &mut Vec<u8>) {
        self.access().encode_into(out);
        out.extend_from_slice(&self.data);
    }
    fn decode(buf: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(Self::NAME, buf);
        let offset = r.u64()?;
        let region = r.u32()?;
        let count = r.u32()?;
        exact(Self::NAME, buf, Self::SIZE.saturating_add(count as usize))?;
        Ok(RegionData {
            offset,
            region,
            data: r.rest().to_vec(),
        })
    }
}

/// The fixed part of DMA accesses: `VFIO_USER_DMA_READ` request, `VFIO_USER_DMA_WRITE` reply.
///
/// The specification's table gives the `VFIO_USER_DMA_WRITE` reply's `count` 4 bytes while
/// every other `count` of these messages has 8; libvfio-user's structure has 8. We send 8 and
/// accept a 12-byte reply too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DmaAccess {
    /// DMA address.
    pub address: u64,
    /// Bytes to transfer.
    pub count: u64,
}

impl Wire for DmaAccess {
    const NAME: &'static str = "DMA access";
    const SIZE: usize = 16;
    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.address.to_ne_bytes());
        out.extend_from_slice(&self.count.to_ne_bytes());
    }
    fn decode(buf: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(Self::NAME, buf);
        if buf.len() == 12 {
            return Ok(DmaAccess {
                address: r.u64()?,
                count: u64::from(r.u32()?),
            });
        }
        exact(Self::NAME, buf, Self::SIZE)?;
        Ok(DmaAccess {
            address: r.u64()?,
            count: r.u64()?,
        })
    }
}

/// A DMA access with its data: `VFIO_USER_DMA_READ` reply, `VFIO_USER_DMA_WRITE` request.
/// Decoding checks that `count` equals the data length.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DmaData {
    /// DMA address.
    pub address: u64,
    /// The bytes (`count` on the wire is their length).
    pub data: Vec<u8>,
}

impl DmaData {
    /// The access without its data.
    pub fn access(&self) -> DmaAccess {
        DmaAccess {
            address: self.address,
            count: self.data.len() as u64,
        }
    }
}

impl Wire for DmaData {
    const NAME: &'static str = "DMA data";
    const SIZE: usize = 16;
    fn encode_into(&self, out: &mut Vec<u8>) {
        self.access().encode_into(out);
        out.extend_from_slice(&self.data);
    }
    fn decode(buf: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(Self::NAME, buf);
        let address = r.u64()?;
        let count = r.u64()?;
        let expected = usize::try_from(count)
            .ok()
            .and_then(|c| c.checked_add(Self::SIZE))
            .ok_or(ProtocolError::TooLarge {
                what: Self::NAME,
                size: count,
                max: buf.len() as u64,
            })?;
        exact(Self::NAME, buf, expected)?;
        Ok(DmaData {
            address,
            data: r.rest().to_vec(),
        })
    }
}

/// The vendor capability `"breadboard"`: device-tree hints (see the module documentation).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BreadboardCaps {
    /// `compatible` strings, most specific first.
    pub compatible: Vec<String>,
    /// Other properties, raw bytes, in the order the server listed them.
    pub dt_props: Vec<(String, Vec<u8>)>,
}

#[derive(Serialize, Deserialize)]
struct RawBreadboardCaps {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    compatible: Vec<String>,
    #[serde(
        default,
        rename = "dt-props",
        skip_serializing_if = "serde_json::Map::is_empty"
    )]
    dt_props: serde_json::Map<String, serde_json::Value>,
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn to_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        for nibble in [b >> 4, b & 0xf] {
            s.push(char::from(
                HEX.get(usize::from(nibble)).copied().unwrap_or(b'0'),
            ));
        }
    }
    s
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    b.chunks_exact(2)
        .map(|p| match p {
            [hi, lo] => Some(nibble(*hi)? << 4 | nibble(*lo)?),
            _ => None,
        })
        .collect()
}

/// Whether `name` is a valid device-tree property name (DT spec 2.2.4.1).
pub fn is_valid_dt_prop_name(name: &str) -> bool {
    (1..=31).contains(&name.len())
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b",._+?#-".contains(&c))
}

impl BreadboardCaps {
    fn to_raw(&self) -> RawBreadboardCaps {
        RawBreadboardCaps {
            compatible: self.compatible.clone(),
            dt_props: self
                .dt_props
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(to_hex(v))))
                .collect(),
        }
    }

    fn from_raw(raw: RawBreadboardCaps) -> Result<Self, ProtocolError> {
        let bad = |d: String| ProtocolError::BadVersion(format!("\"breadboard\" capability: {d}"));
        for c in &raw.compatible {
            if c.is_empty() || !c.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(bad(format!("bad compatible string {c:?}")));
            }
        }
        let mut dt_props = Vec::with_capacity(raw.dt_props.len());
        for (name, value) in raw.dt_props {
            if !is_valid_dt_prop_name(&name) {
                return Err(bad(format!("bad property name {name:?}")));
            }
            let bytes = value.as_str().and_then(from_hex).ok_or_else(|| {
                bad(format!(
                    "property {name:?} is not a string of hex byte pairs"
                ))
            })?;
            dt_props.push((name, bytes));
        }
        Ok(BreadboardCaps {
            compatible: raw.compatible,
            dt_props,
        })
    }
}

impl Serialize for BreadboardCaps {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_raw().serialize(s)
    }
}

impl<'de> Deserialize<'de> for BreadboardCaps {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawBreadboardCaps::deserialize(d)?;
        BreadboardCaps::from_raw(raw).map_err(serde::de::Error::custom)
    }
}

/// The capabilities object of `VFIO_USER_VERSION`. Unknown keys are kept in `other` (and sent
/// back as they came), so a server can echo what it does not understand.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Most fds the sender accepts in one message (absent: 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_msg_fds: Option<u32>,
    /// Largest `count` the sender accepts in one data transfer (absent: 1 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_data_xfer_size: Option<u32>,
    /// Most DMA windows at once (absent: 65535).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_dma_maps: Option<u32>,
    /// Page sizes supported for DMA maps (absent: 4 KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pgsizes: Option<u64>,
    /// The breadboard vendor extension: device-tree hints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breadboard: Option<BreadboardCaps>,
    /// Anything else (`twin_socket`, `migration`, ...), untouched.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

impl Capabilities {
    /// `max_msg_fds` or its default.
    pub fn max_msg_fds(&self) -> u32 {
        self.max_msg_fds.unwrap_or(DEFAULT_MAX_MSG_FDS)
    }

    /// `max_data_xfer_size` or its default.
    pub fn max_data_xfer_size(&self) -> u32 {
        self.max_data_xfer_size
            .unwrap_or(DEFAULT_MAX_DATA_XFER_SIZE)
    }
}

#[derive(Serialize, Deserialize)]
struct VersionJson {
    #[serde(default)]
    capabilities: Capabilities,
}

/// `VFIO_USER_VERSION`, request and reply.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Version {
    /// Major version.
    pub major: u16,
    /// Minor version.
    pub minor: u16,
    /// The capabilities (an absent JSON object decodes as the defaults).
    pub caps: Capabilities,
}

impl Version {
    /// Appends the encoding (JSON with a terminating NUL) to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.major.to_ne_bytes());
        out.extend_from_slice(&self.minor.to_ne_bytes());
        let json = VersionJson {
            capabilities: self.caps.clone(),
        };
        // Serialising plain maps, strings and numbers cannot fail; fall back to no JSON at
        // all (every capability absent) rather than panic.
        let text = serde_json::to_vec(&json).unwrap_or_default();
        out.extend_from_slice(&text);
        out.push(0);
    }

    /// The encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// Decodes a request or reply payload. The JSON is optional; trailing NULs are ignored.
    pub fn decode(buf: &[u8]) -> Result<Version, ProtocolError> {
        let mut r = Reader::new("version", buf);
        let major = r.u16()?;
        let minor = r.u16()?;
        let mut json = r.rest();
        while let [head @ .., 0] = json {
            json = head;
        }
        let caps = if json.is_empty() {
            Capabilities::default()
        } else {
            let text = std::str::from_utf8(json).map_err(|e| {
                ProtocolError::BadVersion(format!("version data is not UTF-8: {e}"))
            })?;
            if text.contains('\0') {
                return Err(ProtocolError::BadVersion(
                    "NUL inside the version data".into(),
                ));
            }
            let bad =
                |e: serde_json::Error| ProtocolError::BadVersion(format!("bad version JSON: {e}"));
            let value: serde_json::Value = serde_json::from_str(text).map_err(bad)?;
            // serde lets a struct come from a JSON array; the specification says objects.
            let caps = value.get("capabilities");
            let breadboard = caps.and_then(|c| c.get("breadboard"));
            if !value.is_object()
                || caps.is_some_and(|c| !c.is_object())
                || breadboard.is_some_and(|b| !b.is_object())
            {
                return Err(ProtocolError::BadVersion(
                    "the version data, its capabilities and the breadboard capability must be JSON objects".into(),
                ));
            }
            serde_json::from_value::<VersionJson>(value)
                .map_err(bad)?
                .capabilities
        };
        Ok(Version { major, minor, caps })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_short<T: Wire + std::fmt::Debug>(full: &[u8]) {
        for n in 0..full.len() {
            let r = T::decode(full.get(..n).unwrap_or_default());
            assert!(
                matches!(r, Err(ProtocolError::Short { .. })),
                "{} truncated to {n} bytes: {r:?}",
                T::NAME
            );
        }
    }

    fn assert_too_long<T: Wire + std::fmt::Debug>(full: &[u8]) {
        let mut long = full.to_vec();
        long.push(0);
        let r = T::decode(&long);
        assert!(
            matches!(r, Err(ProtocolError::WrongSize { .. })),
            "{} with a trailing byte: {r:?}",
            T::NAME
        );
    }

    fn round_trip<T: Wire + std::fmt::Debug + PartialEq>(v: &T) {
        let bytes = v.to_bytes();
        assert!(bytes.len() >= T::SIZE);
        assert_eq!(&T::decode(&bytes).expect("decode"), v);
        assert_short::<T>(&bytes);
        assert_too_long::<T>(&bytes);
    }

    #[test]
    fn test_header_round_trip_and_fields() {
        let h = Header {
            msg_id: 0xbeef,
            command: 9,
            size: 48,
            flags: FLAGS_TYPE_REPLY | FLAGS_ERROR,
            error: 22,
        };
        let bytes = h.encode();
        assert_eq!(bytes.get(0..2), Some(&0xbeefu16.to_ne_bytes()[..]));
        assert_eq!(Header::decode(&bytes), Ok(h));
        assert_eq!(h.message_type(), Ok(MessageType::Reply));
        assert_eq!(h.command(), Ok(Command::RegionRead));
        assert!(h.is_error());
        assert!(!h.no_reply());
        assert_eq!(h.payload_len(), 32);
    }

    #[test]
    fn test_header_malformed() {
        let h = Header::new_command(1, Command::DeviceReset, 0);
        let bytes = h.encode();
        for n in 0..HEADER_SIZE {
            assert!(matches!(
                Header::decode(&bytes[..n]),
                Err(ProtocolError::Short { .. })
            ));
        }
        let small = Header { size: 15, ..h }.encode();
        assert_eq!(Header::decode(&small), Err(ProtocolError::BadSizeField(15)));
        let unknown_type = Header { flags: 7, ..h };
        assert_eq!(
            unknown_type.message_type(),
            Err(ProtocolError::UnknownType(7))
        );
        let unknown_cmd = Header { command: 14, ..h };
        assert_eq!(
            unknown_cmd.command(),
            Err(ProtocolError::UnknownCommand(14))
        );
        assert_eq!(
            Header { command: 0, ..h }.command(),
            Err(ProtocolError::UnknownCommand(0))
        );
    }

    #[test]
    fn test_header_constructors() {
        let req = Header::new_command(7, Command::DmaMap, 32);
        assert_eq!(req.size, 48);
        assert_eq!(req.message_type(), Ok(MessageType::Command));
        let rep = Header::new_reply(&req, 0);
        assert_eq!((rep.msg_id, rep.command, rep.size), (7, 2, 16));
        assert_eq!(rep.message_type(), Ok(MessageType::Reply));
        let err = Header::new_error_reply(&req, 17);
        assert!(err.is_error());
        assert_eq!(err.error, 17);
    }

    #[test]
    fn test_command_numbers_round_trip() {
        for n in 0..=20u16 {
            match Command::from_u16(n) {
                Ok(c) => {
                    assert_eq!(c as u16, n);
                    assert!(c.name().starts_with("VFIO_USER_"));
                }
                Err(e) => {
                    assert!(n == 0 || n >= 14, "{n}");
                    assert_eq!(e, ProtocolError::UnknownCommand(n));
                }
            }
        }
    }

    #[test]
    fn test_device_info_round_trip_drops_kernel_only_fields() {
        let info = vfio_device_info {
            argsz: 16,
            flags: VFIO_DEVICE_FLAGS_PLATFORM | VFIO_DEVICE_FLAGS_RESET,
            num_regions: 2,
            num_irqs: 1,
            cap_offset: 0,
            pad: 0,
        };
        round_trip(&info);
        assert_eq!(device_info_request().to_bytes().len(), 16);
    }

    #[test]
    fn test_region_info_round_trip() {
        round_trip(&vfio_region_info {
            argsz: 32,
            flags: VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_MMAP,
            index: 1,
            cap_offset: 0,
            size: 0x1000,
            offset: 0x2000,
        });
        assert_eq!(region_info_request(3).index, 3);
    }

    #[test]
    fn test_irq_info_round_trip() {
        round_trip(&vfio_irq_info {
            argsz: 16,
            flags: VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_AUTOMASKED,
            index: 0,
            count: 1,
        });
        assert_eq!(irq_info_request(2).index, 2);
    }

    #[test]
    fn test_dma_map_unmap_round_trip() {
        round_trip(&DmaMap {
            argsz: 32,
            flags: DMA_FLAG_READ | DMA_FLAG_WRITE,
            offset: 0x10,
            address: 0x8000_0000,
            size: 0x1000_0000,
        });
        round_trip(&DmaUnmap {
            argsz: 24,
            flags: 0,
            address: 0x8000_0000,
            size: 0x1000,
        });
    }

    #[test]
    fn test_irq_set_round_trip_with_and_without_data() {
        let set = IrqSet::new(
            VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
            0,
            0,
            1,
            vec![],
        );
        assert_eq!(set.argsz, 20);
        round_trip(&set);
        let bools = IrqSet::new(
            VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_UNMASK,
            0,
            0,
            3,
            vec![1, 0, 1],
        );
        assert_eq!(bools.argsz, 23);
        round_trip(&bools);
        // A bool set whose count promises more bytes than it carries.
        let mut lying = bools.to_bytes();
        lying.truncate(21);
        assert!(matches!(
            IrqSet::decode(&lying),
            Err(ProtocolError::Short { .. })
        ));
    }

    #[test]
    fn test_region_access_and_data_round_trip() {
        round_trip(&RegionAccess {
            offset: 8,
            region: 0,
            count: 4,
        });
        let d = RegionData {
            offset: 8,
            region: 1,
            data: vec![1, 2, 3, 4],
        };
        round_trip(&d);
        assert_eq!(d.access().count, 4);
        // count larger than the data that follows.
        let mut bytes = d.to_bytes();
        bytes.pop();
        assert!(matches!(
            RegionData::decode(&bytes),
            Err(ProtocolError::Short { .. })
        ));
        // count = u32::MAX with no data.
        let mut huge = d.to_bytes();
        huge.truncate(16);
        if let Some(c) = huge.get_mut(12..16) {
            c.copy_from_slice(&u32::MAX.to_ne_bytes());
        }
        assert!(RegionData::decode(&huge).is_err());
    }

    #[test]
    fn test_dma_access_and_data_round_trip() {
        let a = DmaAccess {
            address: 0x8000_1000,
            count: 64,
        };
        let bytes = a.to_bytes();
        assert_eq!(DmaAccess::decode(&bytes), Ok(a));
        for n in (0..16).filter(|&n| n != 12) {
            assert!(matches!(
                DmaAccess::decode(&bytes[..n]),
                Err(ProtocolError::Short { .. })
            ));
        }
        assert_too_long::<DmaAccess>(&bytes);
        // The 12-byte DMA_WRITE reply layout of the specification's table.
        let mut twelve = 0x8000_1000u64.to_ne_bytes().to_vec();
        twelve.extend_from_slice(&64u32.to_ne_bytes());
        assert_eq!(
            DmaAccess::decode(&twelve),
            Ok(DmaAccess {
                address: 0x8000_1000,
                count: 64
            })
        );
        let d = DmaData {
            address: 0x8000_0000,
            data: vec![9; 17],
        };
        round_trip(&d);
        // count = u64::MAX: no overflow, an error.
        let mut huge = d.to_bytes();
        huge.truncate(16);
        if let Some(c) = huge.get_mut(8..16) {
            c.copy_from_slice(&u64::MAX.to_ne_bytes());
        }
        assert!(DmaData::decode(&huge).is_err());
    }

    #[test]
    fn test_version_round_trip_with_breadboard_hints() {
        let v = Version {
            major: 0,
            minor: 1,
            caps: Capabilities {
                max_msg_fds: Some(8),
                max_data_xfer_size: Some(4096),
                breadboard: Some(BreadboardCaps {
                    compatible: vec!["acme,timer-v2".into(), "acme,timer".into()],
                    dt_props: vec![
                        ("clock-frequency".into(), vec![0, 0xf4, 0x24, 0]),
                        ("dma-coherent".into(), vec![]),
                    ],
                }),
                ..Default::default()
            },
        };
        let bytes = v.to_bytes();
        assert_eq!(bytes.last(), Some(&0));
        let text = std::str::from_utf8(&bytes[4..bytes.len() - 1]).expect("utf8");
        assert!(
            text.contains("\"dt-props\":{\"clock-frequency\":\"00f42400\""),
            "{text}"
        );
        assert_eq!(Version::decode(&bytes), Ok(v));
    }

    #[test]
    fn test_version_without_json_and_with_unknown_keys() {
        let bare = Version::decode(&[0, 0, 1, 0]).expect("bare");
        assert_eq!(bare.caps, Capabilities::default());
        assert_eq!(bare.caps.max_msg_fds(), 1);
        assert_eq!(bare.caps.max_data_xfer_size(), 1 << 20);
        let mut buf = vec![0, 0, 1, 0];
        buf.extend_from_slice(
            br#"{"capabilities":{"migration":{"pgsize":4096},"max_msg_fds":2},"x":1}"#,
        );
        let v = Version::decode(&buf).expect("unknown keys");
        assert_eq!(v.caps.max_msg_fds, Some(2));
        assert!(v.caps.other.contains_key("migration"));
        // Re-encoding keeps the unknown capability.
        assert_eq!(Version::decode(&v.to_bytes()), Ok(v));
    }

    #[test]
    fn test_version_malformed() {
        assert!(matches!(
            Version::decode(&[0, 0, 1]),
            Err(ProtocolError::Short { .. })
        ));
        let bad = |json: &[u8]| {
            let mut buf = vec![0, 0, 1, 0];
            buf.extend_from_slice(json);
            Version::decode(&buf)
        };
        for json in [
            &b"{"[..],
            b"\xff\xfe",
            b"[]",
            br#"{"capabilities":[]}"#,
            br#"{"capabilities":{"breadboard":[]}}"#,
            b"3",
            br#"{"capabilities":{"max_msg_fds":-1}}"#,
            br#"{"capabilities":{"max_msg_fds":"8"}}"#,
            br#"{"capabilities":{"max_data_xfer_size":1.5}}"#,
            br#"{"capabilities":{"breadboard":{"compatible":[""]}}}"#,
            br#"{"capabilities":{"breadboard":{"compatible":"x,y"}}}"#,
            br#"{"capabilities":{"breadboard":{"dt-props":{"a":"0"}}}}"#,
            br#"{"capabilities":{"breadboard":{"dt-props":{"a":"zz"}}}}"#,
            br#"{"capabilities":{"breadboard":{"dt-props":{"a":1}}}}"#,
            br#"{"capabilities":{"breadboard":{"dt-props":{"bad name":"00"}}}}"#,
            b"{}\0{}",
        ] {
            assert!(
                matches!(bad(json), Err(ProtocolError::BadVersion(_))),
                "{:?}",
                String::from_utf8_lossy(json)
            );
        }
    }

    /// Random payloads never panic a decoder, and fixed-size bodies decode exactly when the
    /// length is right.
    #[test]
    fn test_decoders_on_random_bytes() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        fn fixed<T: Wire>(buf: &[u8]) {
            assert_eq!(T::decode(buf).is_ok(), buf.len() == T::SIZE, "{}", T::NAME);
        }
        for _ in 0..20_000 {
            let len = (next() % 80) as usize;
            let buf: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            fixed::<vfio_device_info>(&buf);
            fixed::<vfio_region_info>(&buf);
            fixed::<vfio_irq_info>(&buf);
            fixed::<DmaMap>(&buf);
            fixed::<DmaUnmap>(&buf);
            fixed::<RegionAccess>(&buf);
            if let Ok(d) = RegionData::decode(&buf) {
                assert_eq!(d.data.len() + 16, buf.len());
            }
            if let Ok(d) = DmaData::decode(&buf) {
                assert_eq!(d.data.len() + 16, buf.len());
            }
            let _ = DmaAccess::decode(&buf);
            let _ = IrqSet::decode(&buf);
            let _ = Version::decode(&buf);
            if let Ok(h) = Header::decode(&buf) {
                assert!(h.size as usize >= HEADER_SIZE);
                let _ = (h.command(), h.message_type(), h.payload_len());
            }
        }
    }

    #[test]
    fn test_hex_and_prop_names() {
        assert_eq!(from_hex("00fFa0"), Some(vec![0, 0xff, 0xa0]));
        assert_eq!(from_hex(""), Some(vec![]));
        assert_eq!(from_hex("0x00"), None);
        assert_eq!(to_hex(&[0xde, 0xad]), "dead");
        assert!(is_valid_dt_prop_name("acme,clock-freq#0"));
        assert!(!is_valid_dt_prop_name(""));
        assert!(!is_valid_dt_prop_name(&"a".repeat(32)));
        assert!(!is_valid_dt_prop_name("a b"));
    }
}
