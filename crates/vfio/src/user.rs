//! The `user` backend: a platform device served by another process over vfio-user (vfio-user
//! Protocol Specification; QEMU's docs/interop/vfio-user.rst), through
//! `breadboard_vfio_user::client`.
//!
//! Device info must carry `VFIO_DEVICE_FLAGS_PLATFORM` (checked at connect). Regions whose
//! info says MMAP come with an fd in the region-info reply and are mapped from it (the client
//! withdraws MMAP when the fd is not sealed against shrinking, so a server cannot make our
//! mapping fault); the others go through `VFIO_USER_REGION_READ`/`WRITE`. Device-tree hints come from the server's
//! `"breadboard"` capability in its version reply. DMA windows are announced with the RAM's
//! memfd, and the client also serves the server's DMA read/write messages from them.

// Reads untrusted input (a vfio-user server, the kernel, sysfs files, the guest): no panicking
// shortcuts outside tests.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::os::fd::BorrowedFd;
use std::path::Path;

use breadboard_vfio_user::client::{Client, ClientConfig, ClientError, DmaWindow};
use breadboard_vfio_user::protocol::{
    IrqSet, VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_IRQ_SET_ACTION_UNMASK, VFIO_IRQ_SET_DATA_EVENTFD,
    VFIO_IRQ_SET_DATA_NONE,
};

use crate::backend::{
    Backend, DEVICE_FLAGS_PLATFORM, DEVICE_FLAGS_RESET, DeviceInfo, DmaRegion, DtHints, IrqInfo,
    Mapping, REGION_FLAG_MMAP, REGION_FLAG_WRITE, RegionInfo, VfioError,
};

/// A device behind a vfio-user server.
#[derive(Debug)]
pub struct UserBackend {
    name: String,
    client: Client,
    info: DeviceInfo,
}

fn convert(e: ClientError) -> VfioError {
    match e {
        ClientError::Io { op, source } => VfioError::Io { op, source },
        ClientError::Protocol(s) => VfioError::Protocol(s),
        ClientError::Unsupported(s) => VfioError::Unsupported(s),
        ClientError::Timeout(op, _) => VfioError::Timeout(op),
        ClientError::Broken(s) => VfioError::Broken(s),
        ClientError::Remote { op, errno } => VfioError::Io {
            op: format!("{op} (server error reply)"),
            source: std::io::Error::from_raw_os_error(if errno == 0 { 5 } else { errno as i32 }),
        },
        ClientError::Invalid(s) => VfioError::Invalid(s),
    }
}

impl UserBackend {
    /// Connects to the server at `path` with the default timeouts.
    pub fn connect(path: &Path) -> Result<UserBackend, VfioError> {
        UserBackend::connect_with(path, ClientConfig::default())
    }

    /// Connects with explicit client settings.
    pub fn connect_with(path: &Path, config: ClientConfig) -> Result<UserBackend, VfioError> {
        let client = Client::connect(path, config).map_err(convert)?;
        UserBackend::from_client(client, format!("vfio-user {}", path.display()))
    }

    /// Wraps a connected client; fails unless the device is a platform device.
    pub fn from_client(client: Client, name: String) -> Result<UserBackend, VfioError> {
        let raw = client.device_info().map_err(convert)?;
        if raw.flags & DEVICE_FLAGS_PLATFORM == 0 {
            return Err(VfioError::Unsupported(format!(
                "{name}: the server's device is not a platform device (flags {:#x})",
                raw.flags
            )));
        }
        Ok(UserBackend {
            name,
            client,
            info: DeviceInfo {
                flags: raw.flags,
                num_regions: raw.num_regions,
                num_irqs: raw.num_irqs,
            },
        })
    }

    /// The client, for callers that need more than the backend contract.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn check_region(&self, index: u32) -> Result<(), VfioError> {
        if index < self.info.num_regions {
            Ok(())
        } else {
            Err(VfioError::Invalid(format!(
                "{}: region {index} does not exist ({} regions)",
                self.name, self.info.num_regions
            )))
        }
    }

    fn check_irq(&self, index: u32) -> Result<(), VfioError> {
        if index < self.info.num_irqs {
            Ok(())
        } else {
            Err(VfioError::Invalid(format!(
                "{}: IRQ {index} does not exist ({} IRQs)",
                self.name, self.info.num_irqs
            )))
        }
    }

    /// An IRQ change that carries no eventfds (disable, unmask at end of interrupt): posted
    /// unless `posted-writes=off`. The guest's completing write need not wait for the server
    /// (as region writes do not): messages are served in order, and a line still high is
    /// signalled again afterwards.
    fn set_irqs_without_fds(&self, set: &IrqSet) -> Result<(), VfioError> {
        if self.client.posted_writes() {
            self.client.set_irqs_posted(set).map_err(convert)
        } else {
            self.client.set_irqs(set, &[]).map_err(convert)
        }
    }
}

impl Backend for UserBackend {
    fn describe(&self) -> String {
        self.name.clone()
    }

    fn device_info(&self) -> Result<DeviceInfo, VfioError> {
        if let Some(r) = self.client.broken_reason() {
            return Err(VfioError::Broken(r));
        }
        Ok(self.info)
    }

    fn region_info(&self, index: u32) -> Result<RegionInfo, VfioError> {
        self.check_region(index)?;
        let reply = self.client.region_info(index).map_err(convert)?;
        Ok(RegionInfo {
            index,
            flags: reply.info.flags,
            size: reply.info.size,
            offset: reply.info.offset,
        })
    }

    fn map_region(&self, info: &RegionInfo) -> Result<Option<Mapping>, VfioError> {
        if info.flags & REGION_FLAG_MMAP == 0 || info.size == 0 {
            return Ok(None);
        }
        self.check_region(info.index)?;
        // The fd comes with a region-info reply; ask again rather than keep fds around.
        let reply = self.client.region_info(info.index).map_err(convert)?;
        if reply.info.size != info.size || reply.info.offset != info.offset {
            return Err(VfioError::Protocol(format!(
                "{}: region {} changed between two region-info replies",
                self.name, info.index
            )));
        }
        let Some(fd) = reply.fd else {
            return Ok(None);
        };
        let writable = reply.info.flags & REGION_FLAG_WRITE != 0;
        Mapping::map(
            std::os::fd::AsFd::as_fd(&fd),
            reply.info.offset,
            reply.info.size,
            writable,
        )
        .map(Some)
    }

    fn region_read(&self, index: u32, offset: u64, buf: &mut [u8]) -> Result<(), VfioError> {
        self.check_region(index)?;
        self.client.region_read(index, offset, buf).map_err(convert)
    }

    fn region_write(&self, index: u32, offset: u64, data: &[u8]) -> Result<(), VfioError> {
        self.check_region(index)?;
        if self.client.posted_writes() {
            return self
                .client
                .region_write_posted(index, offset, data)
                .map_err(convert);
        }
        self.client
            .region_write(index, offset, data)
            .map_err(convert)
    }

    fn irq_info(&self, index: u32) -> Result<IrqInfo, VfioError> {
        self.check_irq(index)?;
        let i = self.client.irq_info(index).map_err(convert)?;
        Ok(IrqInfo {
            index,
            flags: i.flags,
            count: i.count,
        })
    }

    fn set_irq_eventfds(&self, index: u32, fds: &[BorrowedFd<'_>]) -> Result<(), VfioError> {
        self.check_irq(index)?;
        let count = u32::try_from(fds.len())
            .map_err(|_| VfioError::Invalid(format!("{} eventfds", fds.len())))?;
        let set = IrqSet::new(
            VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
            index,
            0,
            count,
            Vec::new(),
        );
        self.client.set_irqs(&set, fds).map_err(convert)
    }

    fn disable_irq(&self, index: u32) -> Result<(), VfioError> {
        self.check_irq(index)?;
        let set = IrqSet::new(
            VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
            index,
            0,
            0,
            Vec::new(),
        );
        self.set_irqs_without_fds(&set)
    }

    fn unmask_irq(&self, index: u32, sub: u32) -> Result<(), VfioError> {
        self.check_irq(index)?;
        let set = IrqSet::new(
            VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK,
            index,
            sub,
            1,
            Vec::new(),
        );
        self.set_irqs_without_fds(&set)
    }

    fn reset(&self) -> Result<(), VfioError> {
        if self.info.flags & DEVICE_FLAGS_RESET == 0 {
            return Err(VfioError::Unsupported(format!(
                "{}: the device cannot be reset",
                self.name
            )));
        }
        self.client.reset().map_err(convert)
    }

    fn dma_map(&self, region: &DmaRegion<'_>) -> Result<(), VfioError> {
        let window = DmaWindow {
            iova: region.iova,
            size: region.size,
            host: region.host,
            writable: region.writable,
        };
        // SAFETY: `DmaRegion::host` is valid for `size` bytes until `dma_unmap` or the drop of
        // this backend (the backend contract), which drops the client first.
        unsafe {
            self.client
                .dma_map(window, Some(region.fd), region.fd_offset)
                .map_err(convert)
        }
    }

    fn dma_unmap(&self, iova: u64, size: u64) -> Result<(), VfioError> {
        self.client.dma_unmap(iova, size).map_err(convert)
    }

    fn dt_hints(&self) -> Result<DtHints, VfioError> {
        Ok(self
            .client
            .dt_hints()
            .map(|h| DtHints {
                compatible: h.compatible.clone(),
                props: h.dt_props.clone(),
            })
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{IRQ_FLAG_AUTOMASKED, IRQ_FLAG_EVENTFD, REGION_FLAG_READ};
    use breadboard_vfio_user::protocol::{
        BreadboardCaps, Capabilities, Command, DmaMap, DmaUnmap, Header, RegionAccess, RegionData,
        Version, Wire, vfio_device_info, vfio_irq_info, vfio_region_info,
    };
    use breadboard_vfio_user::socket::{Channel, Message};
    use std::os::fd::{AsFd, OwnedFd};
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    /// What the scripted server saw: each command with the number of fds it carried.
    type Seen = Vec<(Command, Vec<u8>, usize)>;

    /// A memfd sealed at its size, as the server SDK's `SharedMemory` and breadboard's RAM.
    fn memfd(len: u64) -> OwnedFd {
        let fd = unsealed_memfd(len);
        rustix::fs::fcntl_add_seals(
            &fd,
            rustix::fs::SealFlags::SHRINK | rustix::fs::SealFlags::GROW,
        )
        .expect("seal");
        fd
    }

    fn unsealed_memfd(len: u64) -> OwnedFd {
        let fd = rustix::fs::memfd_create(
            "bb-user-test",
            rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::ALLOW_SEALING,
        )
        .expect("memfd");
        rustix::fs::ftruncate(&fd, len).expect("ftruncate");
        fd
    }

    /// A server whose region 0 (0x1000 bytes) is mmap'able from `fd` and answers reads with
    /// 0x40, 0x41, ... through messages.
    fn mappable_region_server(fd: OwnedFd) -> (UnixStream, std::thread::JoinHandle<Seen>) {
        server(move |cmd, m| match cmd {
            Command::DeviceGetInfo => (device(DEVICE_FLAGS_PLATFORM), vec![]),
            Command::DeviceGetRegionInfo => {
                let info = vfio_region_info {
                    argsz: 32,
                    flags: REGION_FLAG_READ | REGION_FLAG_WRITE | REGION_FLAG_MMAP,
                    index: 0,
                    cap_offset: 0,
                    size: 0x1000,
                    offset: 0,
                };
                (info.to_bytes(), vec![fd.try_clone().expect("dup")])
            }
            Command::RegionRead => {
                let a = RegionAccess::decode(&m.payload).expect("req");
                let data = (0..a.count).map(|i| 0x40 + i as u8).collect();
                let d = RegionData {
                    offset: a.offset,
                    region: a.region,
                    data,
                };
                (d.to_bytes(), vec![])
            }
            _ => (vec![], vec![]),
        })
    }

    #[test]
    fn test_unsealed_region_fd_is_not_mapped_and_its_shrinking_cannot_fault() {
        let fd = unsealed_memfd(0x1000);
        let server_fd = fd.try_clone().expect("dup");
        let (stream, t) = mappable_region_server(fd);
        let client = Client::from_stream(stream, "test".into(), config()).expect("connect");
        let b = UserBackend::from_client(client, "unsealed".into()).expect("backend");
        // The server could truncate the file after we mapped it (SIGBUS on the next guest
        // access): the region is offered as not mappable, and goes through messages.
        let r0 = b.region_info(0).expect("region 0");
        assert_eq!(r0.flags & REGION_FLAG_MMAP, 0, "MMAP withdrawn");
        assert!(b.map_region(&r0).expect("map").is_none(), "nothing mapped");
        rustix::fs::ftruncate(&server_fd, 0).expect("an unsealed file shrinks");
        let mut buf = [0u8; 4];
        b.region_read(0, 8, &mut buf).expect("read by message");
        assert_eq!(buf, [0x40, 0x41, 0x42, 0x43]);
        assert!(b.client().broken_reason().is_none());
        drop(b);
        let seen = t.join().expect("server");
        assert!(seen.iter().any(|(c, _, _)| *c == Command::RegionRead));
    }

    #[test]
    fn test_sealed_region_fd_is_mapped_and_the_server_cannot_shrink_it() {
        let fd = memfd(0x1000);
        let server_fd = fd.try_clone().expect("dup");
        let (stream, t) = mappable_region_server(fd);
        let client = Client::from_stream(stream, "test".into(), config()).expect("connect");
        let b = UserBackend::from_client(client, "sealed".into()).expect("backend");
        let r0 = b.region_info(0).expect("region 0");
        assert_ne!(r0.flags & REGION_FLAG_MMAP, 0);
        let m = b.map_region(&r0).expect("map").expect("mapped");
        assert_eq!(
            rustix::fs::ftruncate(&server_fd, 0),
            Err(rustix::io::Errno::PERM),
            "F_SEAL_SHRINK"
        );
        assert!(m.write(0xffc, 4, 0x1234_5678));
        assert_eq!(
            m.read(0xffc, 4),
            Some(0x1234_5678),
            "the last page is there"
        );
        drop(m);
        drop(b);
        let seen = t.join().expect("server");
        assert!(!seen.iter().any(|(c, _, _)| *c == Command::RegionRead));
    }

    /// A server that answers the version with DT hints, then every request through `answer`
    /// (payload and fds of the reply), until the client goes away.
    fn server(
        answer: impl Fn(Command, &Message) -> (Vec<u8>, Vec<OwnedFd>) + Send + 'static,
    ) -> (UnixStream, std::thread::JoinHandle<Seen>) {
        let (c, s) = UnixStream::pair().expect("socketpair");
        let t = std::thread::spawn(move || {
            let ch = Channel::new(s);
            let mut seen = Seen::new();
            while let Ok(m) = ch.recv(None) {
                let Ok(cmd) = m.header.command() else { break };
                let (payload, fds) = if cmd == Command::Version {
                    let v = Version {
                        major: 0,
                        minor: 1,
                        caps: Capabilities {
                            max_msg_fds: Some(4),
                            breadboard: Some(BreadboardCaps {
                                compatible: vec!["acme,uart".into()],
                                dt_props: vec![("reg-io-width".into(), vec![0, 0, 0, 4])],
                            }),
                            ..Default::default()
                        },
                    };
                    (v.to_bytes(), Vec::new())
                } else {
                    seen.push((cmd, m.payload.clone(), m.fds.len()));
                    answer(cmd, &m)
                };
                let b: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
                if ch
                    .send(&Header::new_reply(&m.header, payload.len()), &payload, &b)
                    .is_err()
                {
                    break;
                }
            }
            seen
        });
        (c, t)
    }

    fn config() -> ClientConfig {
        ClientConfig {
            timeout: Duration::from_secs(5),
            // The scripted server answers every write: check the replied path.
            posted_writes: false,
            ..ClientConfig::default()
        }
    }

    fn device(flags: u32) -> Vec<u8> {
        vfio_device_info {
            argsz: 16,
            flags,
            num_regions: 2,
            num_irqs: 1,
            ..Default::default()
        }
        .to_bytes()
    }

    #[test]
    fn test_user_backend_drives_a_platform_device() {
        let shm = memfd(0x2000);
        let shm_for_server = shm.try_clone().expect("dup");
        let (stream, t) = server(move |cmd, m| match cmd {
            Command::DeviceGetInfo => (device(DEVICE_FLAGS_PLATFORM | DEVICE_FLAGS_RESET), vec![]),
            Command::DeviceGetRegionInfo => {
                let index = vfio_region_info::decode(&m.payload).expect("req").index;
                let mut info = vfio_region_info {
                    argsz: 32,
                    flags: REGION_FLAG_READ | REGION_FLAG_WRITE,
                    index,
                    cap_offset: 0,
                    size: 0x1000,
                    offset: 0,
                };
                if index == 0 {
                    info.flags |= REGION_FLAG_MMAP;
                    info.offset = 0x1000;
                    let fd = shm_for_server.try_clone().expect("dup");
                    return (info.to_bytes(), vec![fd]);
                }
                (info.to_bytes(), vec![])
            }
            Command::RegionRead => {
                let a = RegionAccess::decode(&m.payload).expect("req");
                let data = (0..a.count).map(|i| 0x40 + i as u8).collect();
                let d = RegionData {
                    offset: a.offset,
                    region: a.region,
                    data,
                };
                (d.to_bytes(), vec![])
            }
            Command::RegionWrite => {
                let d = RegionData::decode(&m.payload).expect("req");
                (d.access().to_bytes(), vec![])
            }
            Command::DeviceGetIrqInfo => (
                vfio_irq_info {
                    argsz: 16,
                    flags: IRQ_FLAG_EVENTFD | IRQ_FLAG_AUTOMASKED,
                    index: 0,
                    count: 1,
                }
                .to_bytes(),
                vec![],
            ),
            Command::DmaUnmap => (m.payload.clone(), vec![]),
            _ => (vec![], vec![]),
        });
        let client = Client::from_stream(stream, "test".into(), config()).expect("connect");
        let b = UserBackend::from_client(client, "vfio-user test".into()).expect("backend");

        assert_eq!(b.describe(), "vfio-user test");
        let info = b.device_info().expect("info");
        assert_eq!((info.num_regions, info.num_irqs), (2, 1));
        let hints = b.dt_hints().expect("hints");
        assert_eq!(hints.compatible, vec!["acme,uart".to_string()]);
        assert_eq!(
            hints.props,
            vec![("reg-io-width".to_string(), vec![0, 0, 0, 4])]
        );

        // Region 0 is mapped from the server's fd at its offset.
        let r0 = b.region_info(0).expect("region 0");
        assert_ne!(r0.flags & REGION_FLAG_MMAP, 0);
        let m = b.map_region(&r0).expect("map").expect("mappable");
        assert_eq!(m.len(), 0x1000);
        let server_view = Mapping::map(shm.as_fd(), 0x1000, 0x1000, true).expect("map");
        assert!(server_view.write(8, 4, 0xdead_beef));
        assert_eq!(
            m.read(8, 4),
            Some(0xdead_beef),
            "same memory as the server's"
        );

        // Region 1 goes through messages.
        let r1 = b.region_info(1).expect("region 1");
        assert!(b.map_region(&r1).expect("map").is_none());
        let mut buf = [0u8; 4];
        b.region_read(1, 4, &mut buf).expect("read");
        assert_eq!(buf, [0x40, 0x41, 0x42, 0x43]);
        b.region_write(1, 8, &[1, 2]).expect("write");
        assert!(matches!(
            b.region_read(2, 0, &mut buf),
            Err(VfioError::Invalid(_))
        ));

        // IRQs.
        let irq = b.irq_info(0).expect("irq");
        assert_eq!(
            (irq.flags, irq.count),
            (IRQ_FLAG_EVENTFD | IRQ_FLAG_AUTOMASKED, 1)
        );
        let efd = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).expect("eventfd");
        b.set_irq_eventfds(0, &[efd.as_fd()]).expect("set");
        b.unmask_irq(0, 0).expect("unmask");
        b.disable_irq(0).expect("disable");
        assert!(matches!(b.irq_info(1), Err(VfioError::Invalid(_))));

        // DMA: the RAM's fd goes to the server.
        let ram_fd = memfd(0x1000);
        let mut ram = vec![0u8; 0x1000];
        let region = DmaRegion {
            iova: 0x8000_0000,
            size: 0x1000,
            host: std::ptr::NonNull::new(ram.as_mut_ptr()).expect("ptr"),
            fd: ram_fd.as_fd(),
            fd_offset: 0,
            writable: true,
        };
        b.dma_map(&region).expect("dma map");
        b.dma_unmap(0x8000_0000, 0x1000).expect("dma unmap");
        b.reset().expect("reset");

        drop(m);
        drop(b);
        let seen = t.join().expect("server");
        let set_irqs: Vec<_> = seen
            .iter()
            .filter(|(c, _, _)| *c == Command::DeviceSetIrqs)
            .collect();
        assert_eq!(set_irqs.len(), 3);
        let trigger = IrqSet::decode(&set_irqs[0].1).expect("set");
        assert_eq!(
            trigger.flags,
            VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER
        );
        assert_eq!((trigger.count, set_irqs[0].2), (1, 1), "one eventfd sent");
        let unmask = IrqSet::decode(&set_irqs[1].1).expect("set");
        assert_eq!(
            (unmask.flags, unmask.start, unmask.count),
            (VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK, 0, 1)
        );
        let disable = IrqSet::decode(&set_irqs[2].1).expect("set");
        assert_eq!(
            (disable.flags, disable.count),
            (VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 0)
        );
        let map = seen
            .iter()
            .find(|(c, _, _)| *c == Command::DmaMap)
            .expect("dma map");
        let dm = DmaMap::decode(&map.1).expect("map");
        assert_eq!((dm.address, dm.size, map.2), (0x8000_0000, 0x1000, 1));
        let unmap = seen
            .iter()
            .find(|(c, _, _)| *c == Command::DmaUnmap)
            .expect("dma unmap");
        assert_eq!(
            DmaUnmap::decode(&unmap.1).expect("unmap").address,
            0x8000_0000
        );
        assert!(seen.iter().any(|(c, _, _)| *c == Command::DeviceReset));
    }

    #[test]
    fn test_user_backend_refuses_a_non_platform_device() {
        let (stream, t) = server(|_, _| (device(1 << 1), vec![]));
        let client = Client::from_stream(stream, "test".into(), config()).expect("connect");
        let r = UserBackend::from_client(client, "pci".into());
        assert!(matches!(r, Err(VfioError::Unsupported(_))), "{r:?}");
        t.join().expect("server");
    }

    #[test]
    fn test_user_backend_without_reset_flag_does_not_reset() {
        let (stream, t) = server(|_, _| (device(DEVICE_FLAGS_PLATFORM), vec![]));
        let client = Client::from_stream(stream, "test".into(), config()).expect("connect");
        let b = UserBackend::from_client(client, "no-reset".into()).expect("backend");
        assert!(matches!(b.reset(), Err(VfioError::Unsupported(_))));
        drop(b);
        let seen = t.join().expect("server");
        assert!(!seen.iter().any(|(c, _, _)| *c == Command::DeviceReset));
    }

    #[test]
    fn test_user_backend_reports_a_dead_server_as_broken() {
        let (stream, t) = server(|cmd, _| match cmd {
            Command::DeviceGetInfo => (device(DEVICE_FLAGS_PLATFORM), vec![]),
            // An undecodable region-info reply: the client breaks.
            _ => (vec![1, 2, 3], vec![]),
        });
        let client = Client::from_stream(stream, "test".into(), config()).expect("connect");
        let b = UserBackend::from_client(client, "dying".into()).expect("backend");
        assert!(matches!(b.region_info(0), Err(VfioError::Broken(_))));
        let mut buf = [0u8; 4];
        assert!(matches!(
            b.region_read(0, 0, &mut buf),
            Err(VfioError::Broken(_))
        ));
        assert!(matches!(b.device_info(), Err(VfioError::Broken(_))));
        drop(b);
        t.join().expect("server");
    }
}
