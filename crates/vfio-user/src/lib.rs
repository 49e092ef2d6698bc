//! vfio-user: run a device in another process and reach it over a Unix socket (vfio-user
//! Protocol Specification, QEMU's docs/interop/vfio-user.rst). breadboard speaks it for
//! *platform* devices: device info carries `VFIO_DEVICE_FLAGS_PLATFORM`, and a server may
//! describe its device-tree node in a vendor capability (see [`protocol`]).
//!
//! # Modules and their API
//!
//! - [`protocol`]: the wire format, both directions, never panicking on input.
//!   - [`protocol::Header`] (`msg_id`, `command`, `size`, `flags`, `error`) with
//!     `new_command`, `new_reply`, `new_error_reply`, `decode`, `encode`, `message_type`
//!     ([`protocol::MessageType`]), `command` ([`protocol::Command`]), `no_reply`, `is_error`.
//!   - Bodies implement [`protocol::Wire`] (`encode_into`, `to_bytes`, `decode` of an exact
//!     payload): `vfio_device_info`, `vfio_region_info`, `vfio_irq_info` (re-exported from
//!     `vfio-bindings`), [`protocol::DmaMap`], [`protocol::DmaUnmap`], [`protocol::IrqSet`],
//!     [`protocol::RegionAccess`] / [`protocol::RegionData`] (region read/write, without and
//!     with data), [`protocol::DmaAccess`] / [`protocol::DmaData`] (DMA read/write).
//!     `VFIO_USER_VERSION` is [`protocol::Version`] with [`protocol::Capabilities`] and the
//!     vendor [`protocol::BreadboardCaps`] (DT hints). Requests with fixed content:
//!     `device_info_request`, `region_info_request`, `irq_info_request`.
//!   - Errors: [`protocol::ProtocolError`] (`Short`, `WrongSize`, `BadSizeField`, `TooLarge`,
//!     `UnknownCommand`, `UnknownType`, `BadVersion`, `BadField`).
//! - [`socket`]: framing. [`socket::Channel`] wraps a `UnixStream`
//!   (`Channel::new`, `Channel::connect`, `with_max_msg_size`, `with_max_fds`, `with_timeout`);
//!   `send(&Header, payload, &[BorrowedFd])` sets the size field and attaches fds;
//!   `send_raw(bytes, fds)` sends anything (fault injection); `recv(idle)` returns a
//!   [`socket::Message`] `{header, payload, fds: Vec<OwnedFd>}` after waiting up to `idle` for
//!   a message to start (`None`: for ever) and the channel's timeout for the rest; `shutdown`
//!   wakes a blocked receiver. Sends and receives take `&self` and may run on different
//!   threads. Errors: [`socket::SocketError`] (`Closed`, `Truncated`, `Timeout`, `TooLarge`,
//!   `TooManyFds` — every fd of such a message is closed —, `Protocol`, `Io`).
//! - [`client`]: [`client::Client`] (`connect(path, ClientConfig)`, `from_stream`), the
//!   version handshake, request/reply matching with a timeout, a reader thread that serves the
//!   server's DMA requests from the mapped windows, and a broken state after any protocol
//!   violation. Errors: [`client::ClientError`].
//!
//! # Client design
//!
//! - **Trust.** The server is another process and may be buggy or hostile. Every decoder is
//!   bounds-checked and returns a typed error; the socket layer caps message size and fd count
//!   and closes every fd of a refused message. Any reply the client cannot make sense of
//!   breaks the connection for good (one `tracing::error!` line, socket shut down, every later
//!   call `Broken`): a half-understood device is worse than a dead one, and the guest sees the
//!   `vfio-platform` device answer all-ones instead.
//! - **Threads.** Callers register their msg_id, send under the channel's send lock and then
//!   read the socket themselves until their reply comes (one thread at a time holds the receive
//!   turn and hands other callers' replies over through a condition variable), within the
//!   timeout; a reader thread receives while no call waits. So the main loop and I/O threads
//!   may call concurrently, a reply costs no extra thread wake-up, and the server's DMA
//!   requests are served while a call waits (a server may need DMA to finish a register
//!   access) or, between calls, by the reader thread.
//! - **DMA.** `dma_map` records the window (iova, length, host address) before telling the
//!   server; `dma_unmap` forgets it before telling the server, under a write lock that waits
//!   for any copy in progress, so no server request touches the memory once `dma_unmap`
//!   returns. The RAM's fd goes along for `mmap` only when `ClientConfig::share_dma_fds`.
//! - **Regions.** A region-info reply with MMAP must carry exactly one fd, and the region must
//!   fit in it (checked with `fstat` for regular files and memfds); without MMAP, none. The fd
//!   is handed on for `mmap` only when it carries `F_SEAL_SHRINK` ([`seal`]): otherwise the
//!   server could truncate it under our mapping and the next access would `SIGBUS`, so MMAP is
//!   withdrawn (one warning) and the region goes through messages.
//! - [`seal`]: `cannot_shrink(fd)`, the `F_GET_SEALS` test both sides apply before mapping the
//!   other's fd (the server SDK serves an unsealed DMA window by messages).
//! - **Not implemented:** twin-socket mode (not proposed, so servers use the main socket),
//!   region capabilities such as sparse mmap (`VFIO_REGION_INFO_FLAG_CAPS` is cleared),
//!   `VFIO_USER_DEVICE_GET_REGION_IO_FDS`, `REGION_WRITE_MULTI`, migration, and reconnecting
//!   to a restarted server.

pub mod client;
pub mod protocol;
pub mod seal;
pub mod server;
pub mod socket;
