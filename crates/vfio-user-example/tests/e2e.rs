//! End to end: the `bb-vfio-example` binary serving a device, breadboard's vfio-user client
//! driving it through real messages, guest RAM shared as a memfd (DMA by mmap) or not shared
//! (DMA by messages), and completion interrupts on an eventfd.

// Test helpers stop the test on any failure, as the tests themselves do.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use breadboard_vfio_user::client::{Client, ClientConfig, DmaWindow};
use breadboard_vfio_user::protocol::{
    self, Header, IrqSet, VFIO_DEVICE_FLAGS_PLATFORM, VFIO_IRQ_INFO_AUTOMASKED,
    VFIO_IRQ_INFO_EVENTFD, VFIO_REGION_INFO_FLAG_MMAP,
};
use breadboard_vfio_user::socket::Channel;
use breadboard_vfio_user_example::checksum::{self, CTRL_IRQ_EN, ID_MAGIC, STATUS_DONE, reg};
use breadboard_vfio_user_example::virtio_rng;
use rustix::event::{EventfdFlags, eventfd};
use rustix::mm::{MapFlags, ProtFlags, mmap, munmap};

const RAM_BASE: u64 = 0x8000_0000;
const RAM_SIZE: usize = 0x10_0000;

/// The server process, killed when the test ends.
struct ServerProc {
    child: Child,
    path: PathBuf,
    _dir: TempDir,
}

impl ServerProc {
    /// What the server logged so far.
    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.0.join("server.log")).unwrap_or_default()
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn start(device: &str, extra: &[&str]) -> ServerProc {
    static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir =
        std::env::temp_dir().join(format!("bb-vfio-e2e-{}-{device}-{seq}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("dev.sock");
    let log = std::fs::File::create(dir.join("server.log")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_bb-vfio-example"))
        .arg("--socket")
        .arg(&path)
        .arg("--device")
        .arg(device)
        .args(extra)
        .stderr(log)
        .spawn()
        .unwrap();
    let mut proc = ServerProc {
        child,
        path,
        _dir: TempDir(dir),
    };
    // Wait for the socket to appear (a readiness wait, not a timing assertion).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !proc.path.exists() {
        if let Ok(Some(status)) = proc.child.try_wait() {
            panic!("server exited early: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "server did not create its socket"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    proc
}

fn connect(path: &Path) -> Client {
    Client::connect(path, ClientConfig::default()).unwrap()
}

/// Guest RAM: a memfd mapped into the test process.
struct Ram {
    fd: OwnedFd,
    ptr: NonNull<u8>,
}

impl Ram {
    fn new() -> Self {
        use rustix::fs::{MemfdFlags, SealFlags};
        let fd = rustix::fs::memfd_create(
            c"guest-ram",
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
        )
        .unwrap();
        rustix::fs::ftruncate(&fd, RAM_SIZE as u64).unwrap();
        // Sealed at its size, as breadboard's RAM: the server maps only such fds.
        rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)
            .unwrap();
        // SAFETY: a fresh shared mapping of the memfd we just sized.
        let p = unsafe {
            mmap(
                std::ptr::null_mut(),
                RAM_SIZE,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                &fd,
                0,
            )
        }
        .unwrap();
        Self {
            fd,
            ptr: NonNull::new(p.cast()).unwrap(),
        }
    }
    fn window(&self) -> DmaWindow {
        DmaWindow {
            iova: RAM_BASE,
            size: RAM_SIZE as u64,
            host: self.ptr,
            writable: true,
        }
    }
    fn put(&self, addr: u64, data: &[u8]) {
        let off = (addr - RAM_BASE) as usize;
        assert!(off + data.len() <= RAM_SIZE);
        // SAFETY: in bounds of the mapping, which lives as long as self.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.as_ptr().add(off), data.len())
        };
    }
    fn get(&self, addr: u64, len: usize) -> Vec<u8> {
        let off = (addr - RAM_BASE) as usize;
        assert!(off + len <= RAM_SIZE);
        let mut v = vec![0; len];
        // SAFETY: in bounds of the mapping, which lives as long as self.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.as_ptr().add(off), v.as_mut_ptr(), len) };
        v
    }
}

impl Drop for Ram {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`; the client was dropped first or unmapped it.
        unsafe { munmap(self.ptr.as_ptr().cast(), RAM_SIZE) }.unwrap();
    }
}

fn w32(c: &Client, region: u32, off: u64, v: u32) {
    c.region_write(region, off, &v.to_le_bytes()).unwrap();
}

fn r32(c: &Client, region: u32, off: u64) -> u32 {
    let mut b = [0; 4];
    c.region_read(region, off, &mut b).unwrap();
    u32::from_le_bytes(b)
}

/// The eventfd counter, without blocking (0: not signalled since the last read).
fn take(fd: &OwnedFd) -> u64 {
    let mut b = [0u8; 8];
    match rustix::io::read(fd, &mut b) {
        Ok(8) => u64::from_ne_bytes(b),
        _ => 0,
    }
}

fn trigger_eventfd(c: &Client, index: u32) -> OwnedFd {
    let ev = eventfd(0, EventfdFlags::NONBLOCK | EventfdFlags::CLOEXEC).unwrap();
    let flags = protocol::VFIO_IRQ_SET_DATA_EVENTFD | protocol::VFIO_IRQ_SET_ACTION_TRIGGER;
    c.set_irqs(&IrqSet::new(flags, index, 0, 1, vec![]), &[ev.as_fd()])
        .unwrap();
    ev
}

fn unmask(c: &Client, index: u32) {
    let flags = protocol::VFIO_IRQ_SET_DATA_NONE | protocol::VFIO_IRQ_SET_ACTION_UNMASK;
    c.set_irqs(&IrqSet::new(flags, index, 0, 1, vec![]), &[])
        .unwrap();
}

fn descriptor(ram: &Ram, at: u64, src: u64, len: u32, dst: u64) {
    let mut d = Vec::new();
    d.extend_from_slice(&src.to_le_bytes());
    d.extend_from_slice(&len.to_le_bytes());
    d.extend_from_slice(&0u32.to_le_bytes());
    d.extend_from_slice(&dst.to_le_bytes());
    ram.put(at, &d);
}

fn run_checksum_job(with_fd: bool) {
    let server = start("checksum", &[]);
    let ram = Ram::new();
    let c = connect(&server.path);

    // Device, regions, IRQ as the SDK describes them.
    let info = c.device_info().unwrap();
    assert_ne!(info.flags & VFIO_DEVICE_FLAGS_PLATFORM, 0);
    assert_eq!((info.num_regions, info.num_irqs), (2, 1));
    let hints = c.dt_hints().expect("DT hints");
    assert_eq!(hints.compatible, ["breadboard,checksum-engine"]);
    let regs = c.region_info(0).unwrap();
    assert_eq!(regs.info.size, checksum::REGS_SIZE);
    assert!(regs.fd.is_none());
    let sram = c.region_info(1).unwrap();
    assert_ne!(sram.info.flags & VFIO_REGION_INFO_FLAG_MMAP, 0);
    let sram_fd = sram.fd.expect("SRAM fd");
    let irq = c.irq_info(0).unwrap();
    assert_eq!(irq.count, 1);
    assert_ne!(irq.flags & VFIO_IRQ_INFO_EVENTFD, 0);
    assert_ne!(irq.flags & VFIO_IRQ_INFO_AUTOMASKED, 0);
    assert_eq!(r32(&c, 0, reg::ID), ID_MAGIC);

    // Guest RAM for DMA: mapped by the server, or reached by DMA_READ/DMA_WRITE messages.
    let fd = with_fd.then(|| ram.fd.as_fd());
    // SAFETY: the mapping outlives the client (dropped at the end of this function first).
    unsafe { c.dma_map(ram.window(), fd, 0) }.unwrap();
    let ev = trigger_eventfd(&c, 0);

    // Job 1.
    ram.put(RAM_BASE + 0x1000, b"123456789");
    descriptor(&ram, RAM_BASE, RAM_BASE + 0x1000, 9, RAM_BASE + 0x2000);
    w32(&c, 0, reg::CTRL, CTRL_IRQ_EN);
    w32(&c, 0, reg::DESC_LO, RAM_BASE as u32);
    w32(&c, 0, reg::DESC_HI, (RAM_BASE >> 32) as u32);
    assert_eq!(take(&ev), 0, "no interrupt before the doorbell");
    w32(&c, 0, reg::DOORBELL, 1);
    // The server signals before it answers the doorbell write.
    assert_eq!(take(&ev), 1, "completion interrupt");
    assert_eq!(ram.get(RAM_BASE + 0x2000, 4), 0xcbf4_3926u32.to_le_bytes());
    assert_eq!(r32(&c, 0, reg::STATUS), STATUS_DONE);
    assert_eq!(r32(&c, 0, reg::RESULT), 0xcbf4_3926);
    // The SRAM through its fd (as the guest would see it mapped).
    let mut last = [0u8; 4];
    rustix::io::pread(&sram_fd, &mut last, 0).unwrap();
    assert_eq!(u32::from_le_bytes(last), 0xcbf4_3926);

    // Automasked: unmasking while STATUS.done is still set signals again (level still high).
    unmask(&c, 0);
    assert_eq!(take(&ev), 1, "still high after unmask");
    // The guest clears DONE (the line drops), then EOIs: nothing more.
    w32(&c, 0, reg::STATUS, STATUS_DONE);
    unmask(&c, 0);
    assert_eq!(take(&ev), 0);

    // Job 2 on other data interrupts again.
    ram.put(
        RAM_BASE + 0x1000,
        b"The quick brown fox jumps over the lazy dog",
    );
    descriptor(&ram, RAM_BASE, RAM_BASE + 0x1000, 43, RAM_BASE + 0x2004);
    w32(&c, 0, reg::DOORBELL, 1);
    assert_eq!(take(&ev), 1);
    assert_eq!(ram.get(RAM_BASE + 0x2004, 4), 0x414f_a339u32.to_le_bytes());

    // A descriptor outside guest RAM is a device error, not a server failure.
    w32(&c, 0, reg::STATUS, STATUS_DONE);
    w32(&c, 0, reg::DESC_LO, 0x1000);
    w32(&c, 0, reg::DESC_HI, 0);
    w32(&c, 0, reg::DOORBELL, 1);
    assert_eq!(r32(&c, 0, reg::STATUS), checksum::STATUS_ERROR);
    assert_eq!(
        r32(&c, 0, reg::ERROR_CODE),
        checksum::ErrorCode::DescFault as u32
    );

    // Reset lowers everything.
    c.reset().unwrap();
    assert_eq!(r32(&c, 0, reg::STATUS), 0);
    c.dma_unmap(RAM_BASE, RAM_SIZE as u64).unwrap();
    assert!(c.broken_reason().is_none());
    // A sealed RAM fd is mapped by the server (an unsealed one would be logged and served by
    // messages).
    let log = server.log();
    assert!(!log.contains("not sealed"), "{log}");
}

#[test]
fn test_checksum_job_with_mapped_guest_ram() {
    run_checksum_job(true);
}

#[test]
fn test_checksum_job_with_dma_messages() {
    run_checksum_job(false);
}

#[test]
fn test_broken_client_is_dropped_and_next_client_is_served() {
    let server = start("checksum", &[]);
    // A client whose first message is not VERSION gets an error reply and is dropped.
    let ch = Channel::new(UnixStream::connect(&server.path).unwrap())
        .with_timeout(Duration::from_secs(5));
    ch.send(
        &Header::new_command(7, protocol::Command::DeviceGetInfo, 0),
        &[],
        &[],
    )
    .unwrap();
    let reply = ch.recv(Some(Duration::from_secs(30))).unwrap();
    assert!(reply.header.is_error());
    assert_eq!(reply.header.msg_id, 7);
    assert!(
        ch.recv(Some(Duration::from_secs(30))).is_err(),
        "connection closed"
    );
    drop(ch);
    // Garbage framing: a header claiming a 4 GiB message.
    let ch = Channel::new(UnixStream::connect(&server.path).unwrap());
    let mut h = Header::new_command(1, protocol::Command::Version, 0).encode();
    h[4..8].copy_from_slice(&u32::MAX.to_ne_bytes());
    ch.send_raw(&h, &[]).unwrap();
    assert!(
        ch.recv(Some(Duration::from_secs(30))).is_err(),
        "connection closed"
    );
    drop(ch);
    // The server is still there for a well-behaved client.
    let c = connect(&server.path);
    assert_eq!(r32(&c, 0, reg::ID), ID_MAGIC);
    // Bad requests get error replies without breaking the session.
    assert!(c.region_read(7, 0, &mut [0; 4]).is_err());
    assert!(c.irq_info(3).is_err());
    assert_eq!(r32(&c, 0, reg::VERSION), 1);
}

#[test]
fn test_virtio_rng_fills_a_buffer_through_the_client() {
    use virtio_rng::{reg as vreg, status};
    let server = start("virtio-rng", &["--once"]);
    let ram = Ram::new();
    let c = connect(&server.path);
    assert_eq!(c.dt_hints().expect("hints").compatible, ["virtio,mmio"]);
    assert_eq!(c.region_info(0).unwrap().info.size, virtio_rng::REGS_SIZE);
    // SAFETY: the mapping outlives the client.
    unsafe { c.dma_map(ram.window(), Some(ram.fd.as_fd()), 0) }.unwrap();
    let ev = trigger_eventfd(&c, 0);
    assert_eq!(r32(&c, 0, vreg::MAGIC), virtio_rng::MAGIC);
    assert_eq!(r32(&c, 0, vreg::DEVICE_ID), 4);

    let (desc, avail, used, buf) = (
        RAM_BASE,
        RAM_BASE + 0x1000,
        RAM_BASE + 0x2000,
        RAM_BASE + 0x3000,
    );
    let s = status::ACKNOWLEDGE | status::DRIVER;
    w32(&c, 0, vreg::STATUS, 0);
    w32(&c, 0, vreg::STATUS, s);
    w32(&c, 0, vreg::DRIVER_FEATURES_SEL, 1);
    w32(&c, 0, vreg::DRIVER_FEATURES, 1);
    w32(&c, 0, vreg::STATUS, s | status::FEATURES_OK);
    assert_ne!(r32(&c, 0, vreg::STATUS) & status::FEATURES_OK, 0);
    w32(&c, 0, vreg::QUEUE_NUM, 4);
    w32(&c, 0, vreg::QUEUE_DESC_LOW, desc as u32);
    w32(&c, 0, vreg::QUEUE_DESC_HIGH, 0);
    w32(&c, 0, vreg::QUEUE_DRIVER_LOW, avail as u32);
    w32(&c, 0, vreg::QUEUE_DRIVER_HIGH, 0);
    w32(&c, 0, vreg::QUEUE_DEVICE_LOW, used as u32);
    w32(&c, 0, vreg::QUEUE_DEVICE_HIGH, 0);
    w32(&c, 0, vreg::QUEUE_READY, 1);
    w32(
        &c,
        0,
        vreg::STATUS,
        s | status::FEATURES_OK | status::DRIVER_OK,
    );

    // One 64-byte device-writable buffer at descriptor 0, published in avail slot 0.
    let mut d = Vec::new();
    d.extend_from_slice(&buf.to_le_bytes());
    d.extend_from_slice(&64u32.to_le_bytes());
    d.extend_from_slice(&2u16.to_le_bytes());
    d.extend_from_slice(&0u16.to_le_bytes());
    ram.put(desc, &d);
    ram.put(avail + 4, &0u16.to_le_bytes());
    ram.put(avail + 2, &1u16.to_le_bytes());
    w32(&c, 0, vreg::QUEUE_NOTIFY, 0);

    assert_eq!(take(&ev), 1, "used-buffer interrupt");
    assert_eq!(ram.get(used + 2, 2), 1u16.to_le_bytes(), "used idx");
    assert_eq!(
        ram.get(used + 4, 8),
        [0, 0, 0, 0, 64, 0, 0, 0],
        "used elem: id 0, 64 bytes"
    );
    // 64 random bytes are not all zero (probability 2^-512).
    assert!(ram.get(buf, 64).iter().any(|&b| b != 0));
    assert_eq!(r32(&c, 0, vreg::INTERRUPT_STATUS), virtio_rng::INT_VRING);
    w32(&c, 0, vreg::INTERRUPT_ACK, virtio_rng::INT_VRING);
    unmask(&c, 0);
    assert_eq!(take(&ev), 0, "acknowledged: the line is low");
}
