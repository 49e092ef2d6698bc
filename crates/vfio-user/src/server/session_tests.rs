//! The server over a real socket: breadboard's client (or raw messages) against a small test
//! device, for what needs a session: unmask eventfds, reconnection, twin-socket DMA.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use rustix::event::{EventfdFlags, PollFd, PollFlags, eventfd};

use super::{
    AccessError, DeviceContext, DtHints, IrqKind, PlatformDevice, RegionSpec, Server, ServerOptions,
};
use crate::client::{Client, ClientConfig};
use crate::protocol::{
    self, Capabilities, Command, DmaData, DmaMap, Header, IrqSet, RegionAccess, RegionData,
    Version, Wire,
};
use crate::socket::Channel;

/// Registers (32-bit): 0x0 LEVEL (write: line 0 level), 0x4 DMA_ADDR (write: DMA-read 4 bytes
/// there into VALUE, or 0xffff_ffff on a fault), 0x8 VALUE.
#[derive(Default)]
struct Probe {
    value: u32,
}

impl PlatformDevice for Probe {
    fn regions(&self) -> Vec<RegionSpec> {
        vec![RegionSpec::mmio(0x10)]
    }
    fn irqs(&self) -> Vec<IrqKind> {
        vec![IrqKind::Level]
    }
    fn dt_hints(&self) -> DtHints {
        DtHints::compatible(&["test,probe"])
    }
    fn read(
        &mut self,
        _: &mut DeviceContext<'_>,
        _: u32,
        offset: u64,
        data: &mut [u8],
    ) -> Result<(), AccessError> {
        let v = if offset == 8 { self.value } else { 0 };
        for (d, s) in data.iter_mut().zip(v.to_le_bytes()) {
            *d = s;
        }
        Ok(())
    }
    fn write(
        &mut self,
        ctx: &mut DeviceContext<'_>,
        _: u32,
        offset: u64,
        data: &[u8],
    ) -> Result<(), AccessError> {
        let mut b = [0u8; 4];
        for (d, s) in b.iter_mut().zip(data) {
            *d = *s;
        }
        let v = u32::from_le_bytes(b);
        match offset {
            0 => ctx.irq.set_level(0, v != 0),
            4 => self.value = ctx.dma.read_u32(u64::from(v)).unwrap_or(0xffff_ffff),
            _ => {}
        }
        Ok(())
    }
    fn reset(&mut self, ctx: &mut DeviceContext<'_>) {
        ctx.irq.set_level(0, false);
    }
}

fn sock_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("bb-vfio-srv-{}-{name}.sock", std::process::id()))
}

/// A server in a thread serving `clients` clients, then returning its last result.
fn spawn(name: &str, clients: usize) -> (PathBuf, std::thread::JoinHandle<()>) {
    let path = sock_path(name);
    let mut server = Server::bind(&path, Probe::default(), ServerOptions::default()).unwrap();
    let h = std::thread::spawn(move || {
        for _ in 0..clients {
            let _ = server.serve_one();
        }
    });
    (path, h)
}

fn efd() -> OwnedFd {
    eventfd(0, EventfdFlags::NONBLOCK | EventfdFlags::CLOEXEC).unwrap()
}

fn take(fd: &OwnedFd) -> u64 {
    let mut b = [0u8; 8];
    match rustix::io::read(fd, &mut b) {
        Ok(8) => u64::from_ne_bytes(b),
        _ => 0,
    }
}

/// Block until `fd` is readable (the server acts on its own thread); the long timeout only
/// keeps a broken server from hanging the test run.
fn wait_readable(fd: &OwnedFd) -> bool {
    let mut p = [PollFd::new(fd, PollFlags::IN)];
    let t = rustix::event::Timespec {
        tv_sec: 30,
        tv_nsec: 0,
    };
    rustix::event::poll(&mut p, Some(&t)).unwrap() == 1
}

fn w32(c: &Client, off: u64, v: u32) {
    c.region_write(0, off, &v.to_le_bytes()).unwrap();
}

fn set(c: &Client, flags: u32, fds: &[&OwnedFd]) {
    let fds: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
    c.set_irqs(&IrqSet::new(flags, 0, 0, 1, vec![]), &fds)
        .unwrap();
}

const TRIGGER_FD: u32 = protocol::VFIO_IRQ_SET_DATA_EVENTFD | protocol::VFIO_IRQ_SET_ACTION_TRIGGER;
const UNMASK_FD: u32 = protocol::VFIO_IRQ_SET_DATA_EVENTFD | protocol::VFIO_IRQ_SET_ACTION_UNMASK;

#[test]
fn test_unmask_eventfd_resignals_a_line_that_is_still_high() {
    let (path, h) = spawn("unmaskfd", 1);
    let c = Client::connect(&path, ClientConfig::default()).unwrap();
    let trigger = efd();
    let unmask = efd();
    set(&c, TRIGGER_FD, &[&trigger]);
    set(&c, UNMASK_FD, &[&unmask]);
    w32(&c, 0, 1);
    assert_eq!(take(&trigger), 1);
    // The guest EOIs through the unmask eventfd; the line is still high.
    rustix::io::write(&unmask, &1u64.to_ne_bytes()).unwrap();
    assert!(wait_readable(&trigger), "re-signalled after unmask");
    assert_eq!(take(&trigger), 1);
    // Lower the line, EOI: no signal. Checked after a synchronous round trip, which the server
    // serves only after the unmask event it polled with it.
    w32(&c, 0, 0);
    rustix::io::write(&unmask, &1u64.to_ne_bytes()).unwrap();
    w32(&c, 0, 0);
    assert_eq!(take(&trigger), 0);
    drop(c);
    h.join().unwrap();
}

/// A memfd as guest RAM: sealed at its size (as breadboard's) or not.
fn guest_ram(size: u64, sealed: bool) -> OwnedFd {
    use rustix::fs::{MemfdFlags, SealFlags};
    let ram =
        rustix::fs::memfd_create(c"ram", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING).unwrap();
    rustix::fs::ftruncate(&ram, size).unwrap();
    if sealed {
        rustix::fs::fcntl_add_seals(&ram, SealFlags::SHRINK | SealFlags::GROW).unwrap();
    }
    ram
}

#[test]
fn test_unsealed_client_dma_fd_is_served_by_messages() {
    let (path, h) = spawn("unsealed-dma", 1);
    // The fd and the client's own view of the window differ, so the value read tells which
    // path the server took: its mapping of the fd, or DMA_READ messages the client serves.
    let ram = guest_ram(0x1000, false);
    rustix::io::pwrite(&ram, &0x1111_1111u32.to_le_bytes(), 0x10).unwrap();
    let host = Box::leak(vec![0u8; 0x1000].into_boxed_slice());
    host[0x10..0x14].copy_from_slice(&0x2222_2222u32.to_le_bytes());
    let c = Client::connect(&path, ClientConfig::default()).unwrap();
    let window = crate::client::DmaWindow {
        iova: 0x4000_0000,
        size: 0x1000,
        host: std::ptr::NonNull::new(host.as_mut_ptr()).unwrap(),
        writable: true,
    };
    // SAFETY: the leaked buffer lives for ever.
    unsafe { c.dma_map(window, Some(ram.as_fd()), 0) }.unwrap();
    // The client may now shrink its file: the server never mapped it.
    rustix::fs::ftruncate(&ram, 0).unwrap();
    w32(&c, 4, 0x4000_0010);
    let mut v = [0u8; 4];
    c.region_read(0, 8, &mut v).unwrap();
    assert_eq!(u32::from_le_bytes(v), 0x2222_2222, "DMA by message");
    assert!(c.broken_reason().is_none());
    drop(c);
    h.join().unwrap();
}

#[test]
fn test_reconnect_forgets_windows_and_eventfds_but_keeps_device_state() {
    let (path, h) = spawn("reconnect", 2);
    let ram = guest_ram(0x1000, true);
    rustix::io::pwrite(&ram, &0x1234_5678u32.to_le_bytes(), 0x10).unwrap();
    let old = efd();
    {
        let c = Client::connect(&path, ClientConfig::default()).unwrap();
        // The client mirrors the window in its own memory too; any mapping will do.
        let host = Box::leak(vec![0u8; 0x1000].into_boxed_slice());
        let window = crate::client::DmaWindow {
            iova: 0x4000_0000,
            size: 0x1000,
            host: std::ptr::NonNull::new(host.as_mut_ptr()).unwrap(),
            writable: true,
        };
        // SAFETY: the leaked buffer lives for ever.
        unsafe { c.dma_map(window, Some(ram.as_fd()), 0) }.unwrap();
        set(&c, TRIGGER_FD, &[&old]);
        w32(&c, 4, 0x4000_0010);
        let mut v = [0u8; 4];
        c.region_read(0, 8, &mut v).unwrap();
        assert_eq!(
            u32::from_le_bytes(v),
            0x1234_5678,
            "DMA through the mapped fd"
        );
    }
    let c = Client::connect(&path, ClientConfig::default()).unwrap();
    let mut v = [0u8; 4];
    c.region_read(0, 8, &mut v).unwrap();
    assert_eq!(u32::from_le_bytes(v), 0x1234_5678, "device state kept");
    w32(&c, 4, 0x4000_0010);
    c.region_read(0, 8, &mut v).unwrap();
    assert_eq!(u32::from_le_bytes(v), 0xffff_ffff, "the old window is gone");
    w32(&c, 0, 1);
    assert_eq!(
        take(&old),
        0,
        "the old client's eventfd is closed, not signalled"
    );
    drop(c);
    h.join().unwrap();
}

#[test]
fn test_twin_socket_carries_dma_messages() {
    let (path, h) = spawn("twin", 1);
    let ch = Channel::new(UnixStream::connect(&path).unwrap());
    let mut caps = Capabilities::default();
    caps.other
        .insert("twin_socket".into(), serde_json::json!({"supported": true}));
    let v = Version {
        major: 0,
        minor: 1,
        caps,
    };
    let body = v.to_bytes();
    ch.send(
        &Header::new_command(1, Command::Version, body.len()),
        &body,
        &[],
    )
    .unwrap();
    let mut reply = ch.recv(None).unwrap();
    assert!(!reply.header.is_error());
    let theirs = Version::decode(&reply.payload).unwrap();
    let twin = &theirs.caps.other["twin_socket"];
    assert_eq!(twin["supported"], true);
    assert_eq!(twin["fd_index"], 0);
    assert_eq!(reply.fds.len(), 1);
    let twin = Channel::new(UnixStream::from(reply.fds.remove(0)));

    // A window without fd: DMA goes by message, over the twin socket.
    let map = DmaMap {
        argsz: 32,
        flags: protocol::DMA_FLAG_READ | protocol::DMA_FLAG_WRITE,
        offset: 0,
        address: 0x1000,
        size: 0x1000,
    };
    let b = map.to_bytes();
    ch.send(&Header::new_command(2, Command::DmaMap, b.len()), &b, &[])
        .unwrap();
    assert!(!ch.recv(None).unwrap().header.is_error());
    let w = RegionData {
        offset: 4,
        region: 0,
        data: 0x1020u32.to_le_bytes().to_vec(),
    };
    let b = w.to_bytes();
    ch.send(
        &Header::new_command(3, Command::RegionWrite, b.len()),
        &b,
        &[],
    )
    .unwrap();
    let req = twin.recv(None).unwrap();
    assert_eq!(req.header.command, Command::DmaRead as u16);
    let a = protocol::DmaAccess::decode(&req.payload).unwrap();
    assert_eq!((a.address, a.count), (0x1020, 4));
    let data = DmaData {
        address: 0x1020,
        data: vec![0xaa, 0xbb, 0xcc, 0xdd],
    }
    .to_bytes();
    twin.send(&Header::new_reply(&req.header, data.len()), &data, &[])
        .unwrap();
    let done = ch.recv(None).unwrap();
    assert_eq!(done.header.msg_id, 3);
    assert!(!done.header.is_error());
    let r = RegionAccess {
        offset: 8,
        region: 0,
        count: 4,
    }
    .to_bytes();
    ch.send(
        &Header::new_command(4, Command::RegionRead, r.len()),
        &r,
        &[],
    )
    .unwrap();
    let got = RegionData::decode(&ch.recv(None).unwrap().payload).unwrap();
    assert_eq!(got.data, [0xaa, 0xbb, 0xcc, 0xdd]);
    drop(ch);
    drop(twin);
    h.join().unwrap();
}

#[test]
fn test_bind_refuses_a_live_socket_and_a_regular_file_and_sets_mode_0600() {
    use std::os::unix::fs::PermissionsExt;
    let path = sock_path("bind");
    let server = Server::bind(&path, Probe::default(), ServerOptions::default()).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(matches!(
        Server::bind(&path, Probe::default(), ServerOptions::default()),
        Err(super::ServerError::Path { .. })
    ));
    drop(server);
    assert!(!path.exists(), "the socket is removed with the server");
    std::fs::write(&path, b"not a socket").unwrap();
    assert!(matches!(
        Server::bind(&path, Probe::default(), ServerOptions::default()),
        Err(super::ServerError::Path { .. })
    ));
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn test_bad_commands_get_error_replies_and_the_session_goes_on() {
    let (path, h) = spawn("badcmds", 1);
    let ch = Channel::new(UnixStream::connect(&path).unwrap());
    let body = Version {
        major: 0,
        minor: 1,
        caps: Capabilities::default(),
    }
    .to_bytes();
    ch.send(
        &Header::new_command(1, Command::Version, body.len()),
        &body,
        &[],
    )
    .unwrap();
    assert!(!ch.recv(None).unwrap().header.is_error());
    let mut id = 10;
    let mut expect_error = |cmd: u16, payload: &[u8]| {
        id += 1;
        let mut hd = Header::new_command(id, Command::DeviceReset, payload.len());
        hd.command = cmd;
        ch.send(&hd, payload, &[]).unwrap();
        let r = ch.recv(None).unwrap();
        assert_eq!(r.header.msg_id, id);
        assert!(
            r.header.is_error(),
            "command {cmd} with {} bytes",
            payload.len()
        );
    };
    expect_error(99, &[]); // unknown command
    expect_error(Command::Version as u16, &[0, 0, 1, 0]); // second VERSION
    expect_error(Command::RegionRead as u16, &[1, 2, 3]); // truncated
    let huge = RegionAccess {
        offset: u64::MAX - 1,
        region: 0,
        count: 4,
    }
    .to_bytes();
    expect_error(Command::RegionRead as u16, &huge); // offset wraps
    let big = RegionAccess {
        offset: 0,
        region: 0,
        count: 1 << 30,
    }
    .to_bytes();
    expect_error(Command::RegionRead as u16, &big); // too large
    expect_error(Command::DmaRead as u16, &[0; 16]); // wrong direction
    let zero = DmaMap {
        argsz: 32,
        flags: 3,
        offset: 0,
        address: 0,
        size: 0,
    }
    .to_bytes();
    expect_error(Command::DmaMap as u16, &zero);
    // Still serving.
    let r = RegionAccess {
        offset: 8,
        region: 0,
        count: 4,
    }
    .to_bytes();
    ch.send(
        &Header::new_command(50, Command::RegionRead, r.len()),
        &r,
        &[],
    )
    .unwrap();
    assert!(!ch.recv(None).unwrap().header.is_error());
    drop(ch);
    h.join().unwrap();
}

#[test]
fn test_silent_client_is_dropped_and_the_next_one_served() {
    let path = sock_path("silent");
    let opts = ServerOptions {
        timeout: std::time::Duration::from_millis(50),
        ..Default::default()
    };
    let mut server = Server::bind(&path, Probe::default(), opts).unwrap();
    let h = std::thread::spawn(move || {
        let first = server.serve_one();
        let second = server.serve_one();
        (first.is_err(), second.is_ok())
    });
    // Connects and never speaks; the server gives up on it and closes the connection.
    let silent = UnixStream::connect(&path).unwrap();
    let c = Client::connect(&path, ClientConfig::default()).unwrap();
    let mut v = [0u8; 4];
    c.region_read(0, 8, &mut v).unwrap();
    drop(c);
    let mut buf = [0u8; 1];
    assert_eq!(
        std::io::Read::read(&mut &silent, &mut buf).unwrap(),
        0,
        "closed by the server"
    );
    assert_eq!(h.join().unwrap(), (true, true));
}
