//! The client against a scripted, misbehaving server: each case plays one fault in raw bytes
//! over a socket pair and checks what the client does about it — refuses to connect, marks
//! itself broken (with exactly one error log line, and every later call failing with
//! `Broken`), times out, or answers the server with an error reply — and that no file
//! descriptor leaks (`/proc/self/fd` is counted before and after every case).
//!
//! The cases run one after another in one test so the fd counts and the log-line counter see
//! only that case.

// Helpers outside #[test] functions may stop the test too.
#![allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::ptr::NonNull;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use breadboard_vfio_user::client::{Client, ClientConfig, ClientError, DmaWindow};
use breadboard_vfio_user::protocol::{
    Command, DmaAccess, DmaData, DmaMap, FLAGS_ERROR, FLAGS_TYPE_COMMAND, FLAGS_TYPE_REPLY, Header,
    RegionAccess, RegionData, VFIO_DEVICE_FLAGS_PLATFORM, VFIO_REGION_INFO_FLAG_MMAP,
    VFIO_REGION_INFO_FLAG_READ, Version, Wire, vfio_device_info, vfio_region_info,
};
use breadboard_vfio_user::socket::{Channel, Message, SocketError};

// ---------------------------------------------------------------------------------------------
// Error-line counter: a global subscriber that counts ERROR events (the reader thread logs on
// its own thread, so a thread-local subscriber would miss them).

static ERRORS: AtomicUsize = AtomicUsize::new(0);
static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Counter;

struct Msg(String);

impl tracing::field::Visit for Msg {
    fn record_debug(&mut self, _field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{value:?} "));
    }
}

impl tracing::Subscriber for Counter {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut m = Msg(String::new());
        event.record(&mut m);
        if *event.metadata().level() == tracing::Level::ERROR {
            ERRORS.fetch_add(1, Ordering::SeqCst);
        }
        LINES
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(format!("{} {}", event.metadata().level(), m.0));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn install_counter() {
    // Only the first call installs; later ones find it there.
    let _ = tracing::subscriber::set_global_default(Counter);
}

// ---------------------------------------------------------------------------------------------
// The scripted server.

/// The server's end, speaking raw bytes where a case needs to.
struct Peer {
    ch: Channel,
}

type Res = Result<(), String>;

impl Peer {
    fn recv(&self) -> Result<Message, String> {
        self.ch
            .recv(Some(Duration::from_secs(10)))
            .map_err(|e| format!("server recv: {e}"))
    }

    fn expect(&self, cmd: Command) -> Result<Message, String> {
        let m = self.recv()?;
        if m.header.command != cmd as u16 {
            return Err(format!(
                "expected {}, got command {}",
                cmd.name(),
                m.header.command
            ));
        }
        Ok(m)
    }

    fn reply(&self, req: &Header, payload: &[u8], fds: &[BorrowedFd<'_>]) -> Res {
        self.ch
            .send(&Header::new_reply(req, payload.len()), payload, fds)
            .map_err(|e| format!("server send: {e}"))
    }

    fn raw(&self, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> Res {
        self.ch
            .send_raw(bytes, fds)
            .map_err(|e| format!("server send_raw: {e}"))
    }

    /// Sends a command of the server's own and returns the client's reply.
    fn command(&self, msg_id: u16, cmd: u16, payload: &[u8]) -> Result<Message, String> {
        let h = Header {
            msg_id,
            command: cmd,
            size: 0,
            flags: FLAGS_TYPE_COMMAND,
            error: 0,
        };
        self.ch
            .send(&h, payload, &[])
            .map_err(|e| format!("server send: {e}"))?;
        let r = self.recv()?;
        if r.header.msg_id != msg_id || r.header.flags & 0xf != FLAGS_TYPE_REPLY {
            return Err(format!("bad reply to the server's command: {:?}", r.header));
        }
        Ok(r)
    }

    fn version_reply(&self, major: u16, minor: u16, json: &[u8]) -> Res {
        let req = self.expect(Command::Version)?;
        let mut body = major.to_ne_bytes().to_vec();
        body.extend_from_slice(&minor.to_ne_bytes());
        body.extend_from_slice(json);
        self.reply(&req.header, &body, &[])
    }

    fn handshake(&self) -> Res {
        self.version_reply(
            0,
            1,
            br#"{"capabilities":{"max_msg_fds":8,"breadboard":{"compatible":["acme,dev"],"dt-props":{"acme,x":"0000002a"}}}}"#,
        )
    }

    /// Reads until the client goes away (what a hung server does).
    fn hang(&self) -> Res {
        loop {
            match self.ch.recv(None) {
                Ok(_) => {}
                Err(_) => return Ok(()),
            }
        }
    }

    fn device_info(&self, flags: u32) -> Vec<u8> {
        vfio_device_info {
            argsz: 16,
            flags,
            num_regions: 2,
            num_irqs: 1,
            ..Default::default()
        }
        .to_bytes()
    }
}

fn hdr(msg_id: u16, command: u16, size: u32, flags: u32, error: u32) -> [u8; 16] {
    Header {
        msg_id,
        command,
        size,
        flags,
        error,
    }
    .encode()
}

fn memfd(len: u64) -> OwnedFd {
    let fd = rustix::fs::memfd_create(
        "bb-fault",
        rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::ALLOW_SEALING,
    )
    .expect("memfd");
    rustix::fs::ftruncate(&fd, len).expect("ftruncate");
    fd
}

/// A memfd sealed at its size, as the server SDK's `SharedMemory`.
fn sealed_memfd(len: u64) -> OwnedFd {
    let fd = memfd(len);
    rustix::fs::fcntl_add_seals(
        &fd,
        rustix::fs::SealFlags::SHRINK | rustix::fs::SealFlags::GROW,
    )
    .expect("seal");
    fd
}

/// Region info for region 0 (0x1000 bytes at offset 0 of its fd), mappable.
fn mappable_region0() -> Vec<u8> {
    vfio_region_info {
        argsz: 32,
        flags: VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_MMAP,
        index: 0,
        cap_offset: 0,
        size: 0x1000,
        offset: 0,
    }
    .to_bytes()
}

/// Answers a `REGION_READ` with bytes 0x40, 0x41, ...
fn answer_read(p: &Peer) -> Res {
    let req = p.expect(Command::RegionRead)?;
    let a = RegionAccess::decode(&req.payload).map_err(|e| e.to_string())?;
    let body = RegionData {
        offset: a.offset,
        region: a.region,
        data: (0..a.count).map(|i| 0x40 + i as u8).collect(),
    };
    p.reply(&req.header, &body.to_bytes(), &[])
}

/// `region_info(0)` must come without fd and without MMAP (the fd was not sealed), with one
/// warning saying so, and the region must still work through messages.
fn unmappable_region_by_messages(c: &Client) -> Result<(), ClientError> {
    let r = c.region_info(0)?;
    if r.fd.is_some() || r.info.flags & VFIO_REGION_INFO_FLAG_MMAP != 0 {
        return Err(ClientError::Invalid(format!(
            "an unsealed fd was offered for mmap: flags {:#x}",
            r.info.flags
        )));
    }
    let warned = LINES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter(|l| l.contains("not sealed against shrinking"))
        .count();
    if warned != 1 {
        return Err(ClientError::Invalid(format!("{warned} warnings")));
    }
    let mut b = [0u8; 4];
    c.region_read(0, 8, &mut b)?;
    if b != [0x40, 0x41, 0x42, 0x43] {
        return Err(ClientError::Invalid(format!("read {b:?}")));
    }
    Ok(())
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

// ---------------------------------------------------------------------------------------------
// The table.

#[derive(Debug)]
enum Expect {
    /// `connect` fails; the predicate checks the error.
    ConnectFails(fn(&ClientError) -> bool),
    /// The action fails with `Broken` and the client stays broken.
    Broken,
    /// The action fails with `Timeout` and the client is broken after.
    Timeout,
    /// The action fails with an error reply carrying this errno; the client is fine.
    Remote(u32),
    /// The action succeeds (the fault was the server's own request, answered with an error).
    Ok,
}

type Server = Box<dyn FnOnce(Peer) -> Res + Send>;
type Act = Box<dyn FnOnce(&Client) -> Result<(), ClientError>>;

struct Case {
    name: &'static str,
    server: Server,
    act: Act,
    expect: Expect,
}

fn case(
    name: &'static str,
    server: impl FnOnce(Peer) -> Res + Send + 'static,
    act: impl FnOnce(&Client) -> Result<(), ClientError> + 'static,
    expect: Expect,
) -> Case {
    Case {
        name,
        server: Box::new(server),
        act: Box::new(act),
        expect,
    }
}

fn device_info(c: &Client) -> Result<(), ClientError> {
    c.device_info().map(|_| ())
}

fn region_info0(c: &Client) -> Result<(), ClientError> {
    c.region_info(0).map(|_| ())
}

fn read4(c: &Client) -> Result<(), ClientError> {
    let mut b = [0u8; 4];
    c.region_read(0, 8, &mut b)
}

/// The handshake, then `fault` on the first request.
fn after_handshake(fault: impl FnOnce(&Peer, Message) -> Res + Send + 'static) -> Server {
    Box::new(move |p: Peer| {
        p.handshake()?;
        let req = p.recv()?;
        fault(&p, req)?;
        p.hang()
    })
}

fn version_case(name: &'static str, json: &'static [u8], pred: fn(&ClientError) -> bool) -> Case {
    case(
        name,
        move |p| {
            p.version_reply(0, 1, json)?;
            p.hang()
        },
        device_info,
        Expect::ConnectFails(pred),
    )
}

fn is_protocol(e: &ClientError) -> bool {
    matches!(e, ClientError::Protocol(_))
}

fn is_unsupported(e: &ClientError) -> bool {
    matches!(e, ClientError::Unsupported(_))
}

fn is_timeout(e: &ClientError) -> bool {
    matches!(e, ClientError::Timeout(..))
}

fn cases() -> Vec<Case> {
    let mut v = vec![
        // --- version handshake ----------------------------------------------------------
        version_case(
            "version reply with bad JSON",
            br#"{"capabilities":"#,
            is_protocol,
        ),
        version_case("version reply JSON not UTF-8", b"\xff\xfe\xfd", is_protocol),
        version_case(
            "version reply max_msg_fds not a number",
            br#"{"capabilities":{"max_msg_fds":"many"}}"#,
            is_protocol,
        ),
        version_case(
            "version reply with bad DT hint hex",
            br#"{"capabilities":{"breadboard":{"dt-props":{"x":"abc"}}}}"#,
            is_protocol,
        ),
        version_case(
            "version reply max_data_xfer_size too small for a register",
            br#"{"capabilities":{"max_data_xfer_size":4}}"#,
            is_protocol,
        ),
        case(
            "version too new (major 1)",
            |p| {
                p.version_reply(1, 0, b"")?;
                p.hang()
            },
            device_info,
            Expect::ConnectFails(is_unsupported),
        ),
        case(
            "version too new (minor 2)",
            |p| {
                p.version_reply(0, 2, b"")?;
                p.hang()
            },
            device_info,
            Expect::ConnectFails(is_unsupported),
        ),
        case(
            "version refused with an error reply",
            |p| {
                let req = p.expect(Command::Version)?;
                p.raw(
                    &hdr(req.header.msg_id, 1, 16, FLAGS_TYPE_REPLY | FLAGS_ERROR, 95),
                    &[],
                )?;
                p.hang()
            },
            device_info,
            Expect::ConnectFails(is_unsupported),
        ),
        case(
            "version reply that is a command",
            |p| {
                let req = p.expect(Command::Version)?;
                let mut body = Version::default().to_bytes();
                body.truncate(4);
                p.raw(&hdr(req.header.msg_id, 1, 20, FLAGS_TYPE_COMMAND, 0), &[])?;
                p.raw(&body, &[])?;
                p.hang()
            },
            device_info,
            Expect::ConnectFails(is_protocol),
        ),
        case(
            "version reply carrying an fd",
            |p| {
                let req = p.expect(Command::Version)?;
                let f = memfd(4096);
                p.reply(&req.header, &[0, 0, 1, 0], &[f.as_fd()])?;
                p.hang()
            },
            device_info,
            Expect::ConnectFails(is_protocol),
        ),
        case(
            "version reply truncated header, then death",
            |p| {
                let req = p.expect(Command::Version)?;
                let h = hdr(req.header.msg_id, 1, 20, FLAGS_TYPE_REPLY, 0);
                p.raw(&h[..9], &[])
            },
            device_info,
            Expect::ConnectFails(is_protocol),
        ),
        case(
            "server hangs on the version",
            |p| p.hang(),
            device_info,
            Expect::ConnectFails(is_timeout),
        ),
        case(
            "server dies before the version reply",
            |p| p.expect(Command::Version).map(drop),
            device_info,
            Expect::ConnectFails(is_protocol),
        ),
        // --- replies that cannot be right --------------------------------------------------
        Case {
            name: "device info reply of the wrong size",
            server: after_handshake(|p, req| p.reply(&req.header, &[0; 15], &[])),
            act: Box::new(device_info),
            expect: Expect::Broken,
        },
        Case {
            name: "header size field below the header size",
            server: after_handshake(|p, req| {
                p.raw(&hdr(req.header.msg_id, 4, 8, FLAGS_TYPE_REPLY, 0), &[])
            }),
            act: Box::new(device_info),
            expect: Expect::Broken,
        },
        Case {
            name: "message larger than the maximum",
            server: after_handshake(|p, req| {
                p.raw(
                    &hdr(req.header.msg_id, 4, 64 << 20, FLAGS_TYPE_REPLY, 0),
                    &[],
                )
            }),
            act: Box::new(device_info),
            expect: Expect::Broken,
        },
        Case {
            name: "reply whose msg_id matches no request",
            server: after_handshake(|p, req| {
                let info = p.device_info(VFIO_DEVICE_FLAGS_PLATFORM);
                let mut h = Header::new_reply(&req.header, info.len());
                h.msg_id = h.msg_id.wrapping_add(100);
                p.raw(&h.encode(), &[])?;
                p.raw(&info, &[])
            }),
            act: Box::new(device_info),
            expect: Expect::Broken,
        },
        Case {
            name: "message of unknown type",
            server: after_handshake(|p, req| p.raw(&hdr(req.header.msg_id, 4, 16, 0x3, 0), &[])),
            act: Box::new(device_info),
            expect: Expect::Broken,
        },
        Case {
            name: "reply carrying another command",
            server: after_handshake(|p, req| {
                let info = p.device_info(VFIO_DEVICE_FLAGS_PLATFORM);
                let mut h = Header::new_reply(&req.header, info.len());
                h.command = Command::DeviceGetIrqInfo as u16;
                p.raw(&h.encode(), &[])?;
                p.raw(&info, &[])
            }),
            act: Box::new(device_info),
            expect: Expect::Broken,
        },
        Case {
            name: "reply with more fds than max_msg_fds",
            server: after_handshake(|p, req| {
                let fds: Vec<OwnedFd> = (0..12).map(|_| memfd(4096)).collect();
                let b: Vec<BorrowedFd<'_>> = fds.iter().map(|f| f.as_fd()).collect();
                p.reply(&req.header, &p.device_info(VFIO_DEVICE_FLAGS_PLATFORM), &b)
            }),
            act: Box::new(device_info),
            expect: Expect::Broken,
        },
        Case {
            name: "device info reply with an unexpected fd",
            server: after_handshake(|p, req| {
                let f = memfd(4096);
                p.reply(
                    &req.header,
                    &p.device_info(VFIO_DEVICE_FLAGS_PLATFORM),
                    &[f.as_fd()],
                )
            }),
            act: Box::new(device_info),
            expect: Expect::Broken,
        },
        Case {
            name: "region offset + size overflows",
            server: after_handshake(|p, req| {
                let info = vfio_region_info {
                    argsz: 32,
                    flags: VFIO_REGION_INFO_FLAG_READ,
                    index: 0,
                    cap_offset: 0,
                    size: 0x1000,
                    offset: u64::MAX - 0x10,
                };
                p.reply(&req.header, &info.to_bytes(), &[])
            }),
            act: Box::new(region_info0),
            expect: Expect::Broken,
        },
        Case {
            name: "region larger than its fd",
            server: after_handshake(|p, req| {
                let f = memfd(0x1000);
                let info = vfio_region_info {
                    argsz: 32,
                    flags: VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_MMAP,
                    index: 0,
                    cap_offset: 0,
                    size: 0x2000,
                    offset: 0,
                };
                p.reply(&req.header, &info.to_bytes(), &[f.as_fd()])
            }),
            act: Box::new(region_info0),
            expect: Expect::Broken,
        },
        Case {
            name: "mappable region without its fd",
            server: after_handshake(|p, req| {
                let info = vfio_region_info {
                    argsz: 32,
                    flags: VFIO_REGION_INFO_FLAG_MMAP,
                    index: 0,
                    cap_offset: 0,
                    size: 0x1000,
                    offset: 0,
                };
                p.reply(&req.header, &info.to_bytes(), &[])
            }),
            act: Box::new(region_info0),
            expect: Expect::Broken,
        },
        Case {
            name: "region info for another index",
            server: after_handshake(|p, req| {
                let info = vfio_region_info {
                    argsz: 32,
                    index: 1,
                    size: 0x1000,
                    ..Default::default()
                };
                p.reply(&req.header, &info.to_bytes(), &[])
            }),
            act: Box::new(region_info0),
            expect: Expect::Broken,
        },
        Case {
            name: "region read reply whose count disagrees with its data",
            server: after_handshake(|p, req| {
                let mut body = RegionAccess {
                    offset: 8,
                    region: 0,
                    count: 4,
                }
                .to_bytes();
                body.extend_from_slice(&[1, 2]);
                p.reply(&req.header, &body, &[])
            }),
            act: Box::new(read4),
            expect: Expect::Broken,
        },
        Case {
            name: "region read reply for another offset",
            server: after_handshake(|p, req| {
                let body = RegionData {
                    offset: 12,
                    region: 0,
                    data: vec![1, 2, 3, 4],
                };
                p.reply(&req.header, &body.to_bytes(), &[])
            }),
            act: Box::new(read4),
            expect: Expect::Broken,
        },
        Case {
            name: "message truncated mid-payload, then death",
            server: after_handshake(|p, req| {
                let info = p.device_info(VFIO_DEVICE_FLAGS_PLATFORM);
                p.raw(&Header::new_reply(&req.header, info.len()).encode(), &[])?;
                p.raw(&info[..5], &[])?;
                Err("died".into())
            }),
            act: Box::new(device_info),
            expect: Expect::Broken,
        },
        // --- hangs and deaths --------------------------------------------------------------
        case(
            "server hangs on a request",
            |p| {
                p.handshake()?;
                p.hang()
            },
            device_info,
            Expect::Timeout,
        ),
        case(
            "server dies mid-run",
            |p| {
                p.handshake()?;
                p.expect(Command::DeviceGetInfo).map(drop)
            },
            device_info,
            Expect::Broken,
        ),
        // --- error replies and the server's own requests -------------------------------------
        case(
            "error reply to a region write",
            |p| {
                p.handshake()?;
                let req = p.expect(Command::RegionWrite)?;
                p.raw(
                    &hdr(req.header.msg_id, 10, 16, FLAGS_TYPE_REPLY | FLAGS_ERROR, 5),
                    &[],
                )?;
                p.hang()
            },
            |c| c.region_write(0, 0, &[1, 2, 3, 4]),
            Expect::Remote(5),
        ),
        case(
            "unknown command from the server",
            |p| {
                p.handshake()?;
                let req = p.expect(Command::DeviceGetInfo)?;
                let r = p.command(500, 99, &[])?;
                if r.header.flags & FLAGS_ERROR == 0 || r.header.error != 38 {
                    return Err(format!("expected ENOSYS, got {:?}", r.header));
                }
                p.reply(&req.header, &p.device_info(VFIO_DEVICE_FLAGS_PLATFORM), &[])?;
                p.hang()
            },
            device_info,
            Expect::Ok,
        ),
    ];
    v.push(Case {
        name: "truncated header mid-run, then death",
        server: after_handshake(|p, req| {
            let h = Header::new_reply(&req.header, 16).encode();
            p.raw(&h[..7], &[])?;
            Err("died".into())
        }),
        act: Box::new(device_info),
        expect: Expect::Broken,
    });
    v.push(case(
        "older minor version 0.0 (accepted: a client supports every lower minor)",
        |p| {
            p.version_reply(0, 0, b"")?;
            let req = p.expect(Command::DeviceGetInfo)?;
            p.reply(&req.header, &p.device_info(VFIO_DEVICE_FLAGS_PLATFORM), &[])?;
            p.hang()
        },
        device_info,
        Expect::Ok,
    ));
    v.push(case(
        "server sends a command only clients send",
        |p| {
            p.handshake()?;
            let req = p.expect(Command::DeviceGetInfo)?;
            let r = p.command(600, Command::DmaMap as u16, &[0; 32])?;
            if r.header.flags & FLAGS_ERROR == 0 || r.header.error != 1 {
                return Err(format!("expected EPERM, got {:?}", r.header));
            }
            p.reply(&req.header, &p.device_info(VFIO_DEVICE_FLAGS_PLATFORM), &[])?;
            p.hang()
        },
        device_info,
        Expect::Ok,
    ));
    v.push(Case {
        name: "DMA request from the server carrying an fd",
        server: after_handshake(|p, _req| {
            let f = memfd(4096);
            let h = Header::new_command(700, Command::DmaRead, 16);
            let body = DmaAccess {
                address: 0,
                count: 4,
            }
            .to_bytes();
            p.ch.send(&h, &body, &[f.as_fd()])
                .map_err(|e| format!("server send: {e}"))
        }),
        act: Box::new(device_info),
        expect: Expect::Broken,
    });
    v.push(dma_case());
    for (name, seals) in [
        (
            "mappable region fd not sealed (messages instead of mmap)",
            rustix::fs::SealFlags::empty(),
        ),
        (
            "mappable region fd sealed against growing only (messages instead of mmap)",
            rustix::fs::SealFlags::GROW | rustix::fs::SealFlags::SEAL,
        ),
    ] {
        v.push(case(
            name,
            move |p| {
                p.handshake()?;
                let req = p.expect(Command::DeviceGetRegionInfo)?;
                let f = memfd(0x1000);
                rustix::fs::fcntl_add_seals(&f, seals).map_err(|e| e.to_string())?;
                p.reply(&req.header, &mappable_region0(), &[f.as_fd()])?;
                answer_read(&p)?;
                p.hang()
            },
            unmappable_region_by_messages,
            Expect::Ok,
        ));
    }
    v.push(case(
        "raw noise after the handshake",
        |p| {
            p.handshake()?;
            p.expect(Command::DeviceGetInfo)?;
            p.raw(&garbage(1, 4096), &[])?;
            Err("died".into())
        },
        device_info,
        Expect::Broken,
    ));
    for (name, seed) in [
        ("well-framed noise after the handshake (seed 1)", 1u64),
        ("well-framed noise after the handshake (seed 2)", 2),
        ("well-framed noise after the handshake (seed 3)", 3),
        ("well-framed noise after the handshake (seed 4)", 4),
    ] {
        v.push(case(
            name,
            move |p| {
                p.handshake()?;
                p.expect(Command::DeviceGetInfo)?;
                p.raw(&framed_garbage(seed, 64), &[])?;
                Err("died".into())
            },
            device_info,
            Expect::Broken,
        ));
    }
    v
}

/// `count` messages with plausible sizes but random ids, commands, types, flags and payloads.
fn framed_garbage(seed: u64, count: usize) -> Vec<u8> {
    let noise = garbage(seed, count * 64);
    let mut out = Vec::new();
    for chunk in noise.chunks_exact(64) {
        let len = usize::from(chunk[0] % 48);
        let h = Header {
            msg_id: u16::from(chunk[1] % 4),
            command: if chunk[2] < 128 {
                11 + u16::from(chunk[2] % 2)
            } else {
                u16::from(chunk[2] % 17)
            },
            size: (16 + len) as u32,
            // Mostly commands (served or refused, the client goes on), now and then a reply
            // or an unknown type (the client breaks).
            flags: match chunk[3] {
                0..=239 => FLAGS_TYPE_COMMAND,
                240..=251 => FLAGS_TYPE_REPLY,
                t => u32::from(t % 16),
            } | if chunk[4] & 1 != 0 { FLAGS_ERROR } else { 0 },
            error: u32::from(chunk[5]),
        };
        out.extend_from_slice(&h.encode());
        out.extend_from_slice(&chunk[16..16 + len]);
    }
    out
}

/// Deterministic noise (xorshift64).
fn garbage(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// DMA requests in and out of the mapped windows, served while the client waits for a reply.
fn dma_case() -> Case {
    const IOVA: u64 = 0x8000_0000;
    case(
        "DMA requests outside mapped windows, read-only window, malformed",
        |p| {
            p.handshake()?;
            let map = p.expect(Command::DmaMap)?;
            if map.fds.len() != 1 {
                return Err(format!("DMA map came with {} fds", map.fds.len()));
            }
            p.reply(&map.header, &[], &[])?;
            let map = p.expect(Command::DmaMap)?;
            p.reply(&map.header, &[], &[])?;
            let req = p.expect(Command::DeviceGetInfo)?;
            let err = |r: &Message, errno: u32, what: &str| -> Res {
                if r.header.flags & FLAGS_ERROR != 0 && r.header.error == errno {
                    Ok(())
                } else {
                    Err(format!(
                        "{what}: expected error {errno}, got {:?}",
                        r.header
                    ))
                }
            };
            let read = |id, address, count| {
                p.command(
                    id,
                    Command::DmaRead as u16,
                    &DmaAccess { address, count }.to_bytes(),
                )
            };
            let write = |id, address, data: Vec<u8>| {
                p.command(
                    id,
                    Command::DmaWrite as u16,
                    &DmaData { address, data }.to_bytes(),
                )
            };
            // Outside every window, below, above, straddling the end, wrapping.
            err(&read(1, IOVA - 4, 4)?, 14, "read below")?;
            err(&read(2, IOVA + 0x1000, 4)?, 14, "read above")?;
            err(&read(3, IOVA + 0xffe, 4)?, 14, "read straddling")?;
            err(&read(4, u64::MAX - 1, 4)?, 14, "read wrapping")?;
            err(&write(5, IOVA + 0x1000, vec![0xee; 4])?, 14, "write above")?;
            err(&read(6, IOVA, 1 << 30)?, 7, "read too large")?;
            // Read-only window.
            err(&write(7, 0x9000_0000, vec![1])?, 1, "write read-only")?;
            // Malformed: count says 8, 2 bytes follow.
            let mut bad = DmaAccess {
                address: IOVA,
                count: 8,
            }
            .to_bytes();
            bad.extend_from_slice(&[1, 2]);
            err(
                &p.command(8, Command::DmaWrite as u16, &bad)?,
                22,
                "malformed write",
            )?;
            // Inside: works.
            let ok = write(9, IOVA + 16, vec![0xab; 4])?;
            if ok.header.flags & FLAGS_ERROR != 0 {
                return Err("write inside refused".into());
            }
            let r = read(10, IOVA + 14, 8)?;
            let data = DmaData::decode(&r.payload).map_err(|e| e.to_string())?;
            if data.data != [0x11, 0x11, 0xab, 0xab, 0xab, 0xab, 0x11, 0x11] {
                return Err(format!("read back {:?}", data.data));
            }
            p.reply(&req.header, &p.device_info(VFIO_DEVICE_FLAGS_PLATFORM), &[])?;
            let unmap = p.expect(Command::DmaUnmap)?;
            // Once the client asked for the unmap the window is gone on its side already.
            err(&read(11, IOVA + 16, 4)?, 14, "read after unmap")?;
            p.reply(&unmap.header, &unmap.payload, &[])?;
            let unmap = p.expect(Command::DmaUnmap)?;
            p.reply(&unmap.header, &[], &[])?;
            p.hang()
        },
        |c| {
            let mut ram = vec![0x11u8; 0x1000];
            let rom = vec![0x22u8; 0x100];
            let fd = memfd(0x1000);
            // SAFETY: both buffers outlive their windows (unmapped below, before they drop).
            unsafe {
                c.dma_map(
                    DmaWindow {
                        iova: IOVA,
                        size: 0x1000,
                        host: NonNull::new(ram.as_mut_ptr()).expect("ptr"),
                        writable: true,
                    },
                    Some(fd.as_fd()),
                    0,
                )?;
                c.dma_map(
                    DmaWindow {
                        iova: 0x9000_0000,
                        size: 0x100,
                        host: NonNull::new(rom.as_ptr().cast_mut()).expect("ptr"),
                        writable: false,
                    },
                    None,
                    0,
                )?;
            }
            c.device_info()?;
            c.dma_unmap(IOVA, 0x1000)?;
            c.dma_unmap(0x9000_0000, 0x100)?;
            assert!(
                ram.iter()
                    .enumerate()
                    .all(|(i, &b)| b == if (16..20).contains(&i) { 0xab } else { 0x11 })
            );
            assert!(rom.iter().all(|&b| b == 0x22), "read-only window untouched");
            Ok(())
        },
        Expect::Ok,
    )
}

fn config() -> ClientConfig {
    ClientConfig {
        timeout: Duration::from_millis(300),
        ..ClientConfig::default()
    }
}

fn run(case: Case) {
    let name = case.name;
    let before = open_fds();
    ERRORS.store(0, Ordering::SeqCst);
    LINES.lock().unwrap_or_else(|p| p.into_inner()).clear();
    let (client_end, server_end) = UnixStream::pair().expect("socketpair");
    let server_fn = case.server;
    let server = std::thread::spawn(move || {
        let peer = Peer {
            ch: Channel::new(server_end)
                .with_max_fds(64)
                .with_timeout(Duration::from_secs(10)),
        };
        server_fn(peer)
    });
    let connected = Client::from_stream(client_end, format!("fault[{name}]"), config());
    match (&case.expect, connected) {
        (Expect::ConnectFails(pred), Err(e)) => {
            eprintln!("{name}: connect refused: {e}");
            assert!(
                pred(&e),
                "{name}: connect failed with an unexpected error: {e:?}"
            );
        }
        (Expect::ConnectFails(_), Ok(_)) => panic!("{name}: connect succeeded"),
        (_, Err(e)) => panic!("{name}: connect failed: {e}"),
        (expect, Ok(client)) => {
            let r = (case.act)(&client);
            eprintln!("{name}: {r:?}");
            let as_expected = match expect {
                Expect::Broken => matches!(r, Err(ClientError::Broken(_))),
                Expect::Timeout => matches!(r, Err(ClientError::Timeout(..))),
                Expect::Remote(errno) => {
                    matches!(r, Err(ClientError::Remote { errno: e, .. }) if e == *errno)
                }
                Expect::Ok => r.is_ok(),
                Expect::ConnectFails(_) => false,
            };
            if !as_expected {
                drop(client);
                let server_said = server.join();
                panic!("{name}: got {r:?}, expected {expect:?}; server script: {server_said:?}");
            }
            match expect {
                Expect::Broken => {
                    assert!(matches!(r, Err(ClientError::Broken(_))), "{name}: {r:?}");
                }
                Expect::Timeout => {
                    assert!(matches!(r, Err(ClientError::Timeout(..))), "{name}: {r:?}");
                }
                Expect::Remote(errno) => {
                    assert!(
                        matches!(r, Err(ClientError::Remote { errno: e, .. }) if e == *errno),
                        "{name}: {r:?}"
                    );
                }
                Expect::Ok => assert!(r.is_ok(), "{name}: {r:?}"),
                Expect::ConnectFails(_) => unreachable!(),
            }
            if matches!(expect, Expect::Broken | Expect::Timeout) {
                assert!(
                    client.broken_reason().is_some(),
                    "{name}: not marked broken"
                );
                for _ in 0..2 {
                    let again = client.device_info();
                    assert!(
                        matches!(again, Err(ClientError::Broken(_))),
                        "{name}: later call: {again:?}"
                    );
                }
                let mut b = [0u8; 4];
                assert!(matches!(
                    client.region_read(0, 0, &mut b),
                    Err(ClientError::Broken(_))
                ));
                let lines = LINES.lock().unwrap_or_else(|p| p.into_inner()).clone();
                assert_eq!(
                    ERRORS.load(Ordering::SeqCst),
                    1,
                    "{name}: exactly one error line, got {lines:?}"
                );
            } else {
                assert_eq!(client.broken_reason(), None, "{name}");
                assert_eq!(ERRORS.load(Ordering::SeqCst), 0, "{name}");
            }
            drop(client);
        }
    }
    match server.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) if e == "died" || e.starts_with("server recv") => {}
        Ok(Err(e)) => panic!("{name}: server script failed: {e}"),
        Err(_) => panic!("{name}: server thread panicked"),
    }
    assert_eq!(open_fds(), before, "{name}: file descriptors leaked");
}

static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn test_client_survives_every_scripted_fault() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    install_counter();
    let cases = cases();
    assert!(cases.len() >= 15);
    let mut names = std::collections::HashSet::new();
    for c in cases {
        assert!(names.insert(c.name), "duplicate case {}", c.name);
        run(c);
    }
}

#[test]
fn test_well_behaved_server_gives_info_hints_and_register_access() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    install_counter();
    let (client_end, server_end) = UnixStream::pair().expect("socketpair");
    let server = std::thread::spawn(move || -> Res {
        let p = Peer {
            ch: Channel::new(server_end),
        };
        p.handshake()?;
        let req = p.expect(Command::DeviceGetInfo)?;
        p.reply(&req.header, &p.device_info(VFIO_DEVICE_FLAGS_PLATFORM), &[])?;
        let req = p.expect(Command::DeviceGetRegionInfo)?;
        let f = sealed_memfd(0x2000);
        let info = vfio_region_info {
            argsz: 32,
            flags: VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_MMAP,
            index: 0,
            cap_offset: 0,
            size: 0x1000,
            offset: 0x1000,
        };
        p.reply(&req.header, &info.to_bytes(), &[f.as_fd()])?;
        let req = p.expect(Command::RegionRead)?;
        let a = RegionAccess::decode(&req.payload).map_err(|e| e.to_string())?;
        let body = RegionData {
            offset: a.offset,
            region: a.region,
            data: vec![0x78, 0x56, 0x34, 0x12],
        };
        p.reply(&req.header, &body.to_bytes(), &[])?;
        let req = p.expect(Command::RegionWrite)?;
        let d = RegionData::decode(&req.payload).map_err(|e| e.to_string())?;
        if d.data != [9, 9] || d.offset != 2 {
            return Err(format!("write {d:?}"));
        }
        p.reply(&req.header, &d.access().to_bytes(), &[])?;
        let req = p.expect(Command::DeviceReset)?;
        p.reply(&req.header, &[], &[])?;
        p.hang()
    });
    let client = Client::from_stream(client_end, "good".into(), config()).expect("connect");
    assert_eq!(client.version(), (0, 1));
    let hints = client.dt_hints().expect("hints");
    assert_eq!(hints.compatible, vec!["acme,dev".to_string()]);
    assert_eq!(
        hints.dt_props,
        vec![("acme,x".to_string(), vec![0, 0, 0, 42])]
    );
    let info = client.device_info().expect("info");
    assert_eq!((info.num_regions, info.num_irqs), (2, 1));
    assert_ne!(info.flags & VFIO_DEVICE_FLAGS_PLATFORM, 0);
    let r = client.region_info(0).expect("region");
    assert_eq!((r.info.size, r.info.offset), (0x1000, 0x1000));
    assert!(r.fd.is_some());
    let mut b = [0u8; 4];
    client.region_read(0, 4, &mut b).expect("read");
    assert_eq!(u32::from_le_bytes(b), 0x1234_5678);
    // Outside the known region: refused before anything is sent.
    assert!(matches!(
        client.region_read(0, 0x1000, &mut b),
        Err(ClientError::Invalid(_))
    ));
    client.region_write(0, 2, &[9, 9]).expect("write");
    client.reset().expect("reset");
    assert_eq!(client.broken_reason(), None);
    drop(client);
    server.join().expect("join").expect("server script");
}

#[test]
fn test_dma_fd_is_shared_only_when_configured() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    for share in [true, false] {
        let (client_end, server_end) = UnixStream::pair().expect("socketpair");
        let server = std::thread::spawn(move || -> Result<(usize, DmaMap), String> {
            let p = Peer {
                ch: Channel::new(server_end),
            };
            p.handshake()?;
            let m = p.expect(Command::DmaMap)?;
            p.reply(&m.header, &[], &[])?;
            let map = DmaMap::decode(&m.payload).map_err(|e| e.to_string())?;
            p.hang()?;
            Ok((m.fds.len(), map))
        });
        let cfg = ClientConfig {
            share_dma_fds: share,
            ..config()
        };
        let client = Client::from_stream(client_end, "share".into(), cfg).expect("connect");
        let mut ram = vec![0u8; 0x1000];
        let fd = memfd(0x3000);
        // SAFETY: `ram` outlives the client, which is dropped first.
        unsafe {
            client
                .dma_map(
                    DmaWindow {
                        iova: 0x1000,
                        size: 0x1000,
                        host: NonNull::new(ram.as_mut_ptr()).expect("ptr"),
                        writable: true,
                    },
                    Some(fd.as_fd()),
                    0x2000,
                )
                .expect("map");
        }
        drop(client);
        let (fds, map) = server.join().expect("join").expect("server");
        assert_eq!(fds, usize::from(share));
        assert_eq!(map.offset, if share { 0x2000 } else { 0 });
        assert_eq!((map.address, map.size), (0x1000, 0x1000));
        assert_eq!(map.flags, 3);
        drop(ram);
    }
}

#[test]
fn test_socket_error_closes_every_fd_of_a_refused_message() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let before = open_fds();
    {
        let (a, b) = UnixStream::pair().expect("socketpair");
        let a = Channel::new(a);
        let b = Channel::new(b).with_max_fds(2);
        let fds: Vec<OwnedFd> = (0..6).map(|_| memfd(1)).collect();
        let bf: Vec<BorrowedFd<'_>> = fds.iter().map(|f| f.as_fd()).collect();
        a.send(&Header::new_command(1, Command::DeviceReset, 0), &[], &bf)
            .expect("send");
        assert!(matches!(
            b.recv(None),
            Err(SocketError::TooManyFds { max: 2 })
        ));
    }
    assert_eq!(open_fds(), before);
}

#[test]
fn test_a_server_cannot_make_a_region_mapping_fault() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    for sealed in [false, true] {
        let (client_end, server_end) = UnixStream::pair().expect("socketpair");
        let (got_info, info_seen) = std::sync::mpsc::channel::<()>();
        let server =
            std::thread::spawn(move || -> Result<Result<(), rustix::io::Errno>, String> {
                let p = Peer {
                    ch: Channel::new(server_end),
                };
                p.handshake()?;
                let req = p.expect(Command::DeviceGetRegionInfo)?;
                let f = if sealed {
                    sealed_memfd(0x1000)
                } else {
                    memfd(0x1000)
                };
                p.reply(&req.header, &mappable_region0(), &[f.as_fd()])?;
                // Once the client had its chance to map the region, try to pull the pages away.
                info_seen.recv().map_err(|e| e.to_string())?;
                let truncated = rustix::fs::ftruncate(&f, 0);
                answer_read(&p)?;
                p.hang()?;
                Ok(truncated)
            });
        let client = Client::from_stream(client_end, "shrink".into(), config()).expect("connect");
        let r = client.region_info(0).expect("region info");
        // Map what the client offers for mapping, as the vfio-platform device does.
        let mapping = r.fd.as_ref().map(|fd| {
            // SAFETY: a fresh shared mapping chosen by the kernel, unmapped below.
            let p = unsafe {
                rustix::mm::mmap(
                    std::ptr::null_mut(),
                    0x1000,
                    rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                    rustix::mm::MapFlags::SHARED,
                    fd,
                    0,
                )
            }
            .expect("mmap");
            p.cast::<u8>()
        });
        assert_eq!(mapping.is_some(), sealed, "only a sealed fd is offered");
        got_info.send(()).expect("signal");
        let mut b = [0u8; 4];
        client.region_read(0, 8, &mut b).expect("read by message");
        assert_eq!(b, [0x40, 0x41, 0x42, 0x43]);
        if let Some(p) = mapping {
            // SAFETY: the last byte of the 0x1000-byte mapping made above; the sealed file
            // still has it (an unsealed, truncated one would SIGBUS here).
            unsafe {
                p.add(0xfff).write_volatile(0x5a);
                assert_eq!(p.add(0xfff).read_volatile(), 0x5a);
                rustix::mm::munmap(p.cast(), 0x1000).expect("munmap");
            }
        }
        drop(client);
        let truncated = server.join().expect("join").expect("server script");
        if sealed {
            assert_eq!(truncated, Err(rustix::io::Errno::PERM), "F_SEAL_SHRINK");
        } else {
            assert_eq!(truncated, Ok(()), "an unsealed file shrinks, unmapped");
        }
    }
}
