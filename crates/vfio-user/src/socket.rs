//! vfio-user framing over a Unix stream socket: one message = header + payload, with file
//! descriptors as `SCM_RIGHTS` ancillary data (vfio-user Protocol Specification, "Socket" and
//! "Header"). Used by the client and by servers.
//!
//! Limits protect the receiver from its peer: a message larger than `max_msg_size` is refused
//! before its payload is read, a message with more than `max_fds` descriptors is refused and
//! every descriptor it carried is closed (the kernel closes those beyond the ancillary buffer,
//! we close the rest), and once the first byte of a message has arrived the rest must follow
//! within the timeout. After any receive error the stream is out of step: the caller should
//! drop the connection.

// Reads untrusted input (a vfio-user server, the kernel, sysfs files, the guest): no panicking
// shortcuts outside tests.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use thiserror::Error;

use crate::protocol::{HEADER_SIZE, Header, ProtocolError};

/// Default largest message: 1 MiB of data (the specification's default `max_data_xfer_size`)
/// plus room for headers.
pub const DEFAULT_MAX_MSG_SIZE: usize = (1 << 20) + 4096;
/// Default most descriptors accepted in one message.
pub const DEFAULT_MAX_FDS: usize = 8;
/// Most descriptors `send` attaches to one message (a sanity bound, far above any need).
pub const SEND_MAX_FDS: usize = 64;
/// Default time allowed for the rest of a message once it started, and for a send.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// What went wrong sending or receiving a message.
#[derive(Debug, Error)]
pub enum SocketError {
    /// The peer closed the connection between messages.
    #[error("peer closed the connection")]
    Closed,
    /// The peer closed the connection inside a message.
    #[error("peer closed the connection after {got} of {expected} bytes of a message")]
    Truncated {
        /// Bytes received of the message (header included).
        got: usize,
        /// Bytes the message should have had (16 while the header is incomplete).
        expected: usize,
    },
    /// Nothing (more) arrived, or could be sent, within the time allowed.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// A message larger than the limit (its payload is not read).
    #[error("message of {size} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The header's size field.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A message with more descriptors than allowed (all of them were closed).
    #[error("message carries more than {max} file descriptors")]
    TooManyFds {
        /// The limit.
        max: usize,
    },
    /// The header itself is malformed.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// A system call failed.
    #[error("{op}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

fn io_err(op: &'static str, e: impl Into<std::io::Error>) -> SocketError {
    SocketError::Io {
        op,
        source: e.into(),
    }
}

/// A received message.
#[derive(Debug)]
pub struct Message {
    /// The header (its size field matches `payload`).
    pub header: Header,
    /// The bytes after the header.
    pub payload: Vec<u8>,
    /// Descriptors that came with it, owned (closed on drop).
    pub fds: Vec<OwnedFd>,
}

/// One end of a vfio-user connection. Sends and receives take `&self` and serialise among
/// themselves: one thread may receive while others send, and messages never interleave.
#[derive(Debug)]
pub struct Channel {
    stream: UnixStream,
    send_lock: Mutex<()>,
    recv_lock: Mutex<()>,
    max_msg_size: usize,
    max_fds: usize,
    timeout: Duration,
}

impl Channel {
    /// Wraps a connected stream with the default limits.
    pub fn new(stream: UnixStream) -> Channel {
        let ch = Channel {
            stream,
            send_lock: Mutex::new(()),
            recv_lock: Mutex::new(()),
            max_msg_size: DEFAULT_MAX_MSG_SIZE,
            max_fds: DEFAULT_MAX_FDS,
            timeout: DEFAULT_TIMEOUT,
        };
        ch.apply_write_timeout();
        ch
    }

    /// Connects to a server's socket.
    pub fn connect(path: &Path) -> Result<Channel, SocketError> {
        UnixStream::connect(path)
            .map(Channel::new)
            .map_err(|e| io_err("connect", e))
    }

    /// Sets the largest message accepted (header included; at least the header).
    pub fn with_max_msg_size(mut self, max: usize) -> Channel {
        self.max_msg_size = max.max(HEADER_SIZE);
        self
    }

    /// Sets the most descriptors accepted in one message.
    pub fn with_max_fds(mut self, max: usize) -> Channel {
        self.max_fds = max;
        self
    }

    /// Sets the time allowed for the rest of a message once it started, and for a send.
    pub fn with_timeout(mut self, timeout: Duration) -> Channel {
        self.timeout = timeout.max(Duration::from_millis(1));
        self.apply_write_timeout();
        self
    }

    fn apply_write_timeout(&self) {
        if let Err(e) = self.stream.set_write_timeout(Some(self.timeout)) {
            tracing::warn!("vfio-user: cannot set the socket's send timeout: {e}");
        }
    }

    /// The largest message accepted.
    pub fn max_msg_size(&self) -> usize {
        self.max_msg_size
    }

    /// The most descriptors accepted in one message.
    pub fn max_fds(&self) -> usize {
        self.max_fds
    }

    /// The per-message timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The underlying stream.
    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }

    /// Shuts the connection down both ways: a thread blocked in `recv` sees `Closed`.
    pub fn shutdown(&self) {
        // Already shut down or disconnected: nothing more to do.
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }

    /// Sends one message: `header` (its size field is set from `payload`) and `payload`,
    /// with `fds` attached.
    pub fn send(
        &self,
        header: &Header,
        payload: &[u8],
        fds: &[BorrowedFd<'_>],
    ) -> Result<(), SocketError> {
        let total = payload.len().saturating_add(HEADER_SIZE);
        if total > u32::MAX as usize {
            return Err(SocketError::TooLarge {
                size: total,
                max: u32::MAX as usize,
            });
        }
        let mut h = *header;
        h.size = total as u32;
        let head = h.encode();
        self.send_parts(&[&head, payload], fds)
    }

    /// Sends raw bytes as they are, with `fds` attached to the first byte (for tests that
    /// play a misbehaving peer).
    pub fn send_raw(&self, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> Result<(), SocketError> {
        self.send_parts(&[bytes], fds)
    }

    fn send_parts(&self, parts: &[&[u8]], fds: &[BorrowedFd<'_>]) -> Result<(), SocketError> {
        if fds.len() > SEND_MAX_FDS {
            return Err(SocketError::TooManyFds { max: SEND_MAX_FDS });
        }
        let _guard = self.send_lock.lock().unwrap_or_else(|p| p.into_inner());
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let mut sent = 0usize;
        let mut first = true;
        while sent < total || first {
            // Build the iovecs for what remains.
            let mut skip = sent;
            let mut iov = Vec::with_capacity(parts.len());
            for p in parts {
                if skip >= p.len() {
                    skip -= p.len();
                    continue;
                }
                iov.push(IoSlice::new(p.get(skip..).unwrap_or_default()));
                skip = 0;
            }
            let mut space =
                [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(SEND_MAX_FDS))];
            let mut control = SendAncillaryBuffer::new(&mut space);
            if first && !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
                return Err(SocketError::TooManyFds { max: SEND_MAX_FDS });
            }
            match rustix::net::sendmsg(&self.stream, &iov, &mut control, SendFlags::NOSIGNAL) {
                Ok(n) => {
                    sent += n;
                    first = false;
                    if total == 0 {
                        break;
                    }
                }
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => return Err(SocketError::Timeout(self.timeout)),
                Err(e) => return Err(io_err("sendmsg", e)),
            }
        }
        Ok(())
    }

    /// Receives one message. Waits up to `idle` for it to start (`None`: for ever); once it
    /// started, the rest must come within the channel's timeout.
    pub fn recv(&self, idle: Option<Duration>) -> Result<Message, SocketError> {
        let _guard = self.recv_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.recv_locked(idle.map(|d| Instant::now() + d))
    }

    /// Receives one message if it has started to arrive; `Ok(None)` at once otherwise. The rest
    /// must come within the channel's timeout. With [`Channel::wait_readable`], lets several
    /// threads take turns at reading without any of them sleeping inside `recv`.
    pub fn try_recv(&self) -> Result<Option<Message>, SocketError> {
        let _guard = self.recv_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut pfd = [PollFd::new(&self.stream, PollFlags::IN)];
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        match rustix::event::poll(&mut pfd, Some(&zero)) {
            Ok(0) | Err(Errno::INTR) => Ok(None),
            // Readable, hung up or in error: recvmsg tells which.
            Ok(_) => self
                .recv_locked(Some(Instant::now() + self.timeout))
                .map(Some),
            Err(e) => Err(io_err("poll", e)),
        }
    }

    /// Waits until a message (or the hang-up) can be read, up to `timeout` (`None`: for ever),
    /// without taking the receive lock: another thread may read the message meanwhile.
    pub fn wait_readable(&self, timeout: Option<Duration>) -> Result<(), SocketError> {
        self.wait_until_readable(timeout.map(|d| Instant::now() + d))
    }

    /// `recv` with the receive lock held: the first byte by `deadline`, the rest within the
    /// timeout.
    fn recv_locked(&self, mut deadline: Option<Instant>) -> Result<Message, SocketError> {
        let mut fds = Vec::new();
        let mut head = [0u8; HEADER_SIZE];
        // Descriptors come with the first byte of the message they were sent with, so they
        // are read with the header; the payload read collects any stragglers too.
        let mut got = 0usize;
        while got < HEADER_SIZE {
            let n = self.recv_some(head.get_mut(got..).unwrap_or_default(), &mut fds, deadline)?;
            if n == 0 {
                return Err(if got == 0 {
                    SocketError::Closed
                } else {
                    SocketError::Truncated {
                        got,
                        expected: HEADER_SIZE,
                    }
                });
            }
            if got == 0 {
                deadline = Some(Instant::now() + self.timeout);
            }
            got += n;
        }
        let header = Header::decode(&head)?;
        let size = header.size as usize;
        if size > self.max_msg_size {
            return Err(SocketError::TooLarge {
                size,
                max: self.max_msg_size,
            });
        }
        let mut payload = vec![0u8; header.payload_len()];
        let mut got = 0usize;
        while got < payload.len() {
            let n = self.recv_some(
                payload.get_mut(got..).unwrap_or_default(),
                &mut fds,
                deadline,
            )?;
            if n == 0 {
                return Err(SocketError::Truncated {
                    got: HEADER_SIZE + got,
                    expected: size,
                });
            }
            got += n;
        }
        Ok(Message {
            header,
            payload,
            fds,
        })
    }

    /// One `recvmsg` into `buf` after waiting for data until `deadline`; descriptors are
    /// appended to `fds` (and the message refused when there are too many).
    fn recv_some(
        &self,
        buf: &mut [u8],
        fds: &mut Vec<OwnedFd>,
        deadline: Option<Instant>,
    ) -> Result<usize, SocketError> {
        self.wait_until_readable(deadline)?;
        // One more slot than allowed, so that "exactly the limit" and "more" differ even
        // without MSG_CTRUNC.
        let slots = self.max_fds.saturating_add(1).min(SEND_MAX_FDS + 1);
        let mut space = vec![MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(slots))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let mut iov = [IoSliceMut::new(buf)];
        let r = loop {
            match rustix::net::recvmsg(
                &self.stream,
                &mut iov,
                &mut control,
                RecvFlags::CMSG_CLOEXEC,
            ) {
                Err(Errno::INTR) => continue,
                other => break other,
            }
        };
        // Take ownership of every descriptor before looking at anything else, so that an
        // error return below closes them.
        for msg in control.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = msg {
                fds.extend(received);
            }
        }
        let r = match r {
            Ok(r) => r,
            Err(Errno::AGAIN) => return Err(SocketError::Timeout(self.timeout)),
            Err(e) => return Err(io_err("recvmsg", e)),
        };
        if r.flags.contains(ReturnFlags::CTRUNC) || fds.len() > self.max_fds {
            fds.clear();
            return Err(SocketError::TooManyFds { max: self.max_fds });
        }
        Ok(r.bytes)
    }

    fn wait_until_readable(&self, deadline: Option<Instant>) -> Result<(), SocketError> {
        loop {
            let timeout = match deadline {
                None => None,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(SocketError::Timeout(self.timeout));
                    }
                    Some(Timespec {
                        tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
                        tv_nsec: i64::from(left.subsec_nanos()),
                    })
                }
            };
            let mut pfd = [PollFd::new(&self.stream, PollFlags::IN)];
            match rustix::event::poll(&mut pfd, timeout.as_ref()) {
                Ok(0) => {}
                // Readable, hung up or in error: recvmsg tells which.
                Ok(_) => return Ok(()),
                Err(Errno::INTR) => {}
                Err(e) => return Err(io_err("poll", e)),
            }
        }
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Command, FLAGS_TYPE_COMMAND};

    fn pair() -> (Channel, Channel) {
        let (a, b) = UnixStream::pair().expect("socketpair");
        (
            Channel::new(a).with_timeout(Duration::from_millis(200)),
            Channel::new(b).with_timeout(Duration::from_millis(200)),
        )
    }

    fn memfd() -> OwnedFd {
        rustix::fs::memfd_create("bb-sock-test", rustix::fs::MemfdFlags::CLOEXEC).expect("memfd")
    }

    #[test]
    fn test_send_recv_round_trip_with_fds() {
        let (a, b) = pair();
        let f1 = memfd();
        let f2 = memfd();
        rustix::fs::ftruncate(&f1, 1234).expect("truncate");
        let h = Header::new_command(5, Command::RegionWrite, 0);
        a.send(&h, &[1, 2, 3], &[f1.as_fd(), f2.as_fd()])
            .expect("send");
        let m = b.recv(Some(Duration::from_secs(5))).expect("recv");
        assert_eq!(m.header.msg_id, 5);
        assert_eq!(m.header.size, 19);
        assert_eq!(m.header.flags, FLAGS_TYPE_COMMAND);
        assert_eq!(m.payload, vec![1, 2, 3]);
        assert_eq!(m.fds.len(), 2);
        let st = rustix::fs::fstat(m.fds.first().expect("fd")).expect("fstat");
        assert_eq!(
            st.st_size, 1234,
            "the received fd is the memfd that was sent"
        );
    }

    #[test]
    fn test_empty_payload_message() {
        let (a, b) = pair();
        a.send(&Header::new_command(1, Command::DeviceReset, 0), &[], &[])
            .expect("send");
        let m = b.recv(None).expect("recv");
        assert!(m.payload.is_empty());
        assert_eq!(m.header.command, Command::DeviceReset as u16);
    }

    #[test]
    fn test_closed_and_truncated() {
        let (a, b) = pair();
        drop(a);
        assert!(matches!(b.recv(None), Err(SocketError::Closed)));

        let (a, b) = pair();
        let h = Header::new_command(1, Command::DeviceReset, 0).encode();
        a.send_raw(&h[..10], &[]).expect("send");
        drop(a);
        assert!(matches!(
            b.recv(None),
            Err(SocketError::Truncated {
                got: 10,
                expected: 16
            })
        ));

        let (a, b) = pair();
        let mut h = Header::new_command(1, Command::RegionWrite, 8);
        h.size = 24;
        a.send_raw(&h.encode(), &[]).expect("send");
        a.send_raw(&[1, 2], &[]).expect("send");
        drop(a);
        assert!(matches!(
            b.recv(None),
            Err(SocketError::Truncated {
                got: 18,
                expected: 24
            })
        ));
    }

    #[test]
    fn test_stalled_message_times_out() {
        let (a, b) = pair();
        let h = Header::new_command(1, Command::DeviceReset, 0).encode();
        a.send_raw(&h[..4], &[]).expect("send");
        assert!(matches!(b.recv(None), Err(SocketError::Timeout(_))));
        // And an idle wait that sees nothing at all.
        let (_a, b) = pair();
        assert!(matches!(
            b.recv(Some(Duration::from_millis(10))),
            Err(SocketError::Timeout(_))
        ));
    }

    #[test]
    fn test_too_large_and_bad_size_field() {
        let (a, b) = pair();
        let b = b.with_max_msg_size(64);
        let mut h = Header::new_command(1, Command::RegionWrite, 0);
        h.size = 65;
        a.send_raw(&h.encode(), &[]).expect("send");
        assert!(matches!(
            b.recv(None),
            Err(SocketError::TooLarge { size: 65, max: 64 })
        ));

        let (a, b) = pair();
        h.size = 3;
        a.send_raw(&h.encode(), &[]).expect("send");
        assert!(matches!(
            b.recv(None),
            Err(SocketError::Protocol(ProtocolError::BadSizeField(3)))
        ));
    }

    #[test]
    fn test_too_many_fds_are_refused_and_closed() {
        let (a, b) = pair();
        let b = b.with_max_fds(2);
        let fds: Vec<OwnedFd> = (0..5).map(|_| memfd()).collect();
        let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(|f| f.as_fd()).collect();
        a.send(
            &Header::new_command(1, Command::DeviceReset, 0),
            &[],
            &borrowed,
        )
        .expect("send");
        assert!(matches!(
            b.recv(None),
            Err(SocketError::TooManyFds { max: 2 })
        ));
        // Exactly the limit is fine.
        a.send(
            &Header::new_command(2, Command::DeviceReset, 0),
            &[],
            &borrowed[..2],
        )
        .expect("send");
        let m = b.recv(None).expect("recv");
        assert_eq!(m.fds.len(), 2);
    }

    #[test]
    fn test_send_to_a_dead_peer_fails_without_sigpipe() {
        let (a, b) = pair();
        drop(b);
        let r = a.send(&Header::new_command(1, Command::DeviceReset, 0), &[], &[]);
        assert!(matches!(r, Err(SocketError::Io { .. })), "{r:?}");
    }

    #[test]
    fn test_try_recv_returns_at_once_and_reads_a_waiting_message() {
        let (a, b) = pair();
        assert!(b.try_recv().expect("nothing yet").is_none());
        assert!(matches!(
            b.wait_readable(Some(Duration::from_millis(10))),
            Err(SocketError::Timeout(_))
        ));
        a.send(&Header::new_command(3, Command::DeviceReset, 0), &[9], &[])
            .expect("send");
        b.wait_readable(None).expect("readable");
        let m = b.try_recv().expect("recv").expect("a message");
        assert_eq!((m.header.msg_id, m.payload.as_slice()), (3, &[9u8][..]));
        assert!(b.try_recv().expect("drained").is_none());
        drop(a);
        b.wait_readable(None).expect("hang-up is readable");
        assert!(matches!(b.try_recv(), Err(SocketError::Closed)));
    }

    #[test]
    fn test_shutdown_wakes_a_blocked_receiver() {
        let (_a, b) = pair();
        let b = std::sync::Arc::new(b);
        let b2 = b.clone();
        let t = std::thread::spawn(move || b2.recv(None));
        b.shutdown();
        let r = t.join().expect("join");
        assert!(matches!(r, Err(SocketError::Closed)), "{r:?}");
    }
}
