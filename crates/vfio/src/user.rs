//! The `user` backend: a platform device served by another process over vfio-user (vfio-user
//! Protocol Specification; QEMU's docs/interop/vfio-user.rst), through
//! `breadboard_vfio_user::client`.
//!
//! Device info must carry `VFIO_DEVICE_FLAGS_PLATFORM` (checked at connect). Regions whose
//! info says MMAP come with an fd in the region-info reply and are mapped from it; the others
//! go through `VFIO_USER_REGION_READ`/`WRITE`. Device-tree hints come from the server's
//! `"breadboard"` capability in its version reply. DMA windows are announced with the RAM's
//! memfd, and the client also serves the server's DMA read/write messages from them.

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
        self.client.set_irqs(&set, &[]).map_err(convert)
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
        self.client.set_irqs(&set, &[]).map_err(convert)
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
