//! The `kernel` backend: a host platform device bound to Linux's `vfio-platform` driver
//! (`Documentation/driver-api/vfio.rst`, `<linux/vfio.h>`).
//!
//! Opening follows the kernel's documented sequence: find the device's IOMMU group in sysfs,
//! open the container `/dev/vfio/vfio` (API version, type1 IOMMU extension), open the group
//! `/dev/vfio/N` (viable?), attach it to the container, pick the IOMMU model, and ask the group
//! for the device's fd. Regions are then `mmap`ed or read with `pread`/`pwrite` on the device
//! fd; IRQs are eventfds set with `VFIO_DEVICE_SET_IRQS`; guest RAM is given to the device with
//! `VFIO_IOMMU_MAP_DMA` at IOVA = guest physical address (no KVM: RAM is mapped in this process).
//!
//! In no-IOMMU mode (`vfio enable_unsafe_noiommu_mode=1`, group `/dev/vfio/noiommu-N`) there is
//! no DMA translation, so `dma_map` refuses: the device would see host physical addresses.
//!
//! Structs and flag values come from rust-vmm's `vfio-bindings`; the request numbers, which
//! bindgen cannot produce from the `_IO()` macro, are computed here and tested against the
//! kernel's `_IO(';', 100 + n)`.

// Reads untrusted input (a vfio-user server, the kernel, sysfs files, the guest): no panicking
// shortcuts outside tests.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::ffi::{CString, c_void};
use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::ioctl::{Ioctl, IoctlOutput, Opcode};
use vfio_bindings::bindings::vfio as sys;

use crate::backend::{
    Backend, DEVICE_FLAGS_PLATFORM, DEVICE_FLAGS_RESET, DeviceInfo, DmaRegion, DtHints, IrqInfo,
    Mapping, REGION_FLAG_MMAP, REGION_FLAG_READ, REGION_FLAG_WRITE, RegionInfo, VfioError,
};
use crate::sysfs;

/// The ioctl request numbers of `<linux/vfio.h>`: `_IO(VFIO_TYPE, VFIO_BASE + n)`. VFIO encodes
/// no size or direction in them (the structs carry `argsz` instead).
pub mod request {
    use rustix::ioctl::{Opcode, opcode};
    use vfio_bindings::bindings::vfio::{VFIO_BASE, VFIO_TYPE};

    const fn vfio(n: u32) -> Opcode {
        // VFIO_BASE + n is at most 100 + 22 here: it fits the 8-bit number field.
        opcode::none(VFIO_TYPE, (VFIO_BASE + n) as u8)
    }

    /// `VFIO_GET_API_VERSION`.
    pub const GET_API_VERSION: Opcode = vfio(0);
    /// `VFIO_CHECK_EXTENSION`.
    pub const CHECK_EXTENSION: Opcode = vfio(1);
    /// `VFIO_SET_IOMMU`.
    pub const SET_IOMMU: Opcode = vfio(2);
    /// `VFIO_GROUP_GET_STATUS`.
    pub const GROUP_GET_STATUS: Opcode = vfio(3);
    /// `VFIO_GROUP_SET_CONTAINER`.
    pub const GROUP_SET_CONTAINER: Opcode = vfio(4);
    /// `VFIO_GROUP_UNSET_CONTAINER`.
    pub const GROUP_UNSET_CONTAINER: Opcode = vfio(5);
    /// `VFIO_GROUP_GET_DEVICE_FD`.
    pub const GROUP_GET_DEVICE_FD: Opcode = vfio(6);
    /// `VFIO_DEVICE_GET_INFO`.
    pub const DEVICE_GET_INFO: Opcode = vfio(7);
    /// `VFIO_DEVICE_GET_REGION_INFO`.
    pub const DEVICE_GET_REGION_INFO: Opcode = vfio(8);
    /// `VFIO_DEVICE_GET_IRQ_INFO`.
    pub const DEVICE_GET_IRQ_INFO: Opcode = vfio(9);
    /// `VFIO_DEVICE_SET_IRQS`.
    pub const DEVICE_SET_IRQS: Opcode = vfio(10);
    /// `VFIO_DEVICE_RESET`.
    pub const DEVICE_RESET: Opcode = vfio(11);
    /// `VFIO_IOMMU_GET_INFO`.
    pub const IOMMU_GET_INFO: Opcode = vfio(12);
    /// `VFIO_IOMMU_MAP_DMA`.
    pub const IOMMU_MAP_DMA: Opcode = vfio(13);
    /// `VFIO_IOMMU_UNMAP_DMA`.
    pub const IOMMU_UNMAP_DMA: Opcode = vfio(14);
}

/// The most regions or IRQ indexes believed from `VFIO_DEVICE_GET_INFO` (platform devices have
/// a handful; a larger count is a kernel we do not understand).
const MAX_INDEXES: u32 = 1024;

/// One ioctl whose argument is a raw pointer or integer, returning the ioctl's value (an fd for
/// `GROUP_GET_DEVICE_FD`, a boolean for `CHECK_EXTENSION`).
struct RawIoctl {
    op: Opcode,
    arg: *mut c_void,
}

// SAFETY: `RawIoctl` is built only by `ioctl_raw`, whose callers guarantee that `arg` is what the
// kernel expects for `op` (documented at each call). It is marked mutating because most VFIO
// ioctls write their struct back, and the output is the ioctl's return value alone.
unsafe impl Ioctl for RawIoctl {
    type Output = IoctlOutput;
    const IS_MUTATING: bool = true;

    fn opcode(&self) -> Opcode {
        self.op
    }

    fn as_ptr(&mut self) -> *mut c_void {
        self.arg
    }

    unsafe fn output_from_ptr(out: IoctlOutput, _: *mut c_void) -> rustix::io::Result<IoctlOutput> {
        Ok(out)
    }
}

/// Calls ioctl `op` on `fd` with `arg`, mapping failure to [`VfioError::Io`] named `what`.
///
/// # Safety
/// `arg` must be what the kernel's handler of `op` on this kind of fd expects: an integer
/// smuggled as a pointer, or a pointer to a live, properly sized (per `argsz`) buffer that the
/// kernel may read and write for the duration of the call.
unsafe fn ioctl_raw(
    fd: BorrowedFd<'_>,
    op: Opcode,
    arg: *mut c_void,
    what: &str,
) -> Result<IoctlOutput, VfioError> {
    // SAFETY: forwarded from this function's contract.
    unsafe { rustix::ioctl::ioctl(fd, RawIoctl { op, arg }) }.map_err(|e| VfioError::Io {
        op: what.to_string(),
        source: e.into(),
    })
}

/// An integer ioctl argument (`VFIO_CHECK_EXTENSION`, `VFIO_SET_IOMMU`): passed in the pointer
/// slot, as the kernel reads it as `unsigned long`.
fn int_arg(v: u32) -> *mut c_void {
    std::ptr::without_provenance_mut(v as usize)
}

/// `argsz` for a struct: its size, which always fits in `u32`.
fn argsz<T>() -> u32 {
    std::mem::size_of::<T>() as u32
}

/// `struct vfio_group_status` ready for `VFIO_GROUP_GET_STATUS`.
fn group_status_arg() -> sys::vfio_group_status {
    sys::vfio_group_status {
        argsz: argsz::<sys::vfio_group_status>(),
        flags: 0,
    }
}

/// `struct vfio_device_info` ready for `VFIO_DEVICE_GET_INFO`.
fn device_info_arg() -> sys::vfio_device_info {
    sys::vfio_device_info {
        argsz: argsz::<sys::vfio_device_info>(),
        ..Default::default()
    }
}

/// `struct vfio_region_info` for region `index`, ready for `VFIO_DEVICE_GET_REGION_INFO`.
/// Capability chains are not asked for (platform regions have none): the kernel keeps `argsz`
/// as given or reports a larger one, and we read only the fixed part.
fn region_info_arg(index: u32) -> sys::vfio_region_info {
    sys::vfio_region_info {
        argsz: argsz::<sys::vfio_region_info>(),
        index,
        ..Default::default()
    }
}

/// `struct vfio_irq_info` for IRQ `index`, ready for `VFIO_DEVICE_GET_IRQ_INFO`.
fn irq_info_arg(index: u32) -> sys::vfio_irq_info {
    sys::vfio_irq_info {
        argsz: argsz::<sys::vfio_irq_info>(),
        index,
        ..Default::default()
    }
}

fn put_u32(buf: &mut [u8], at: usize, v: u32) {
    if let Some(dst) = buf.get_mut(at..at + 4) {
        dst.copy_from_slice(&v.to_ne_bytes());
    }
}

/// The variable-length `struct vfio_irq_set` for `VFIO_DEVICE_SET_IRQS`: the fixed header
/// (field offsets from `vfio-bindings`) followed by `data`, which is `count` eventfds (`__s32`
/// each) for `DATA_EVENTFD` and nothing for `DATA_NONE`.
fn irq_set_buffer(flags: u32, index: u32, start: u32, count: u32, fds: &[i32]) -> Vec<u8> {
    use std::mem::offset_of;
    let header = std::mem::size_of::<sys::vfio_irq_set>();
    let len = header + std::mem::size_of_val(fds);
    let mut buf = vec![0u8; len];
    put_u32(&mut buf, offset_of!(sys::vfio_irq_set, argsz), len as u32);
    put_u32(&mut buf, offset_of!(sys::vfio_irq_set, flags), flags);
    put_u32(&mut buf, offset_of!(sys::vfio_irq_set, index), index);
    put_u32(&mut buf, offset_of!(sys::vfio_irq_set, start), start);
    put_u32(&mut buf, offset_of!(sys::vfio_irq_set, count), count);
    let data = offset_of!(sys::vfio_irq_set, data);
    for (i, fd) in fds.iter().enumerate() {
        if let Some(dst) = buf.get_mut(data + 4 * i..data + 4 * i + 4) {
            dst.copy_from_slice(&fd.to_ne_bytes());
        }
    }
    buf
}

/// `struct vfio_iommu_type1_dma_map` for a window of guest RAM.
fn dma_map_arg(region: &DmaRegion<'_>) -> sys::vfio_iommu_type1_dma_map {
    let mut flags = sys::VFIO_DMA_MAP_FLAG_READ;
    if region.writable {
        flags |= sys::VFIO_DMA_MAP_FLAG_WRITE;
    }
    sys::vfio_iommu_type1_dma_map {
        argsz: argsz::<sys::vfio_iommu_type1_dma_map>(),
        flags,
        vaddr: region.host.as_ptr() as usize as u64,
        iova: region.iova,
        size: region.size,
    }
}

/// `struct vfio_iommu_type1_dma_unmap` (no dirty bitmap: `argsz` is the fixed part).
fn dma_unmap_arg(iova: u64, size: u64) -> sys::vfio_iommu_type1_dma_unmap {
    sys::vfio_iommu_type1_dma_unmap {
        argsz: argsz::<sys::vfio_iommu_type1_dma_unmap>(),
        flags: 0,
        iova,
        size,
        data: Default::default(),
    }
}

/// Where the kernel backend looks for sysfs and the VFIO character devices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelPaths {
    /// The sysfs root (`/sys`).
    pub sysfs: PathBuf,
    /// The VFIO device directory (`/dev/vfio`).
    pub dev_vfio: PathBuf,
}

impl Default for KernelPaths {
    fn default() -> Self {
        KernelPaths {
            sysfs: PathBuf::from(sysfs::DEFAULT_ROOT),
            dev_vfio: PathBuf::from("/dev/vfio"),
        }
    }
}

/// Which IOMMU model the container was set to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IommuModel {
    /// `VFIO_TYPE1v2_IOMMU`.
    Type1v2,
    /// `VFIO_TYPE1_IOMMU`.
    Type1,
    /// `VFIO_NOIOMMU_IOMMU`: no translation, no DMA mapping.
    NoIommu,
}

impl IommuModel {
    fn raw(self) -> u32 {
        match self {
            IommuModel::Type1v2 => sys::VFIO_TYPE1v2_IOMMU,
            IommuModel::Type1 => sys::VFIO_TYPE1_IOMMU,
            IommuModel::NoIommu => sys::VFIO_NOIOMMU_IOMMU,
        }
    }
}

/// A host platform device opened through `vfio-platform`. Fields drop in order: the device fd
/// first, then the group (which leaves the container), then the container.
#[derive(Debug)]
pub struct KernelBackend {
    device: OwnedFd,
    group: OwnedFd,
    container: OwnedFd,
    name: String,
    group_id: u32,
    iommu: IommuModel,
    of_node: PathBuf,
    info: DeviceInfo,
    regions: Vec<RegionInfo>,
}

fn open_rw(path: &Path) -> std::io::Result<OwnedFd> {
    // std opens with O_CLOEXEC.
    Ok(OpenOptions::new().read(true).write(true).open(path)?.into())
}

fn open_error(path: &Path, e: std::io::Error, not_found: String) -> VfioError {
    match e.kind() {
        ErrorKind::NotFound => VfioError::NotFound(not_found),
        ErrorKind::PermissionDenied => VfioError::Io {
            op: format!(
                "open {} (run as root, or give your user the VFIO devices with a udev rule)",
                path.display()
            ),
            source: e,
        },
        _ if e.raw_os_error() == Some(rustix::io::Errno::BUSY.raw_os_error()) => VfioError::Io {
            op: format!(
                "open {} (another process, or another device of this machine in the same IOMMU \
                 group, holds it)",
                path.display()
            ),
            source: e,
        },
        _ => VfioError::Io {
            op: format!("open {}", path.display()),
            source: e,
        },
    }
}

impl KernelBackend {
    /// Opens host platform device `name` (a directory of `/sys/bus/platform/devices`) bound to
    /// `vfio-platform`.
    pub fn open(name: &str) -> Result<KernelBackend, VfioError> {
        KernelBackend::open_at(name, &KernelPaths::default())
    }

    /// As [`KernelBackend::open`], with sysfs and `/dev/vfio` elsewhere.
    pub fn open_at(name: &str, paths: &KernelPaths) -> Result<KernelBackend, VfioError> {
        let root = paths.sysfs.as_path();
        sysfs::check_device_name(name)?;
        if !sysfs::device_exists(root, name) {
            return Err(VfioError::NotFound(format!(
                "no platform device {name} in {} (`breadboard vfio list` shows the host's \
                 platform devices)",
                sysfs::platform_devices(root).display()
            )));
        }
        match sysfs::driver(root, name)? {
            Some(d) if d == sysfs::VFIO_PLATFORM_DRIVER => {}
            Some(d) => {
                return Err(VfioError::Unsupported(format!(
                    "{name} is bound to driver {d}, run `breadboard vfio bind {name}`"
                )));
            }
            None => {
                return Err(VfioError::Unsupported(format!(
                    "{name} is bound to no driver, run `breadboard vfio bind {name}`"
                )));
            }
        }
        let group_id = sysfs::iommu_group(root, name)?.ok_or_else(|| {
            VfioError::NotFound(format!(
                "no IOMMU group for {name}: is an IOMMU enabled for it? Without one, load vfio \
                 with `modprobe vfio enable_unsafe_noiommu_mode=1` (no DMA) and rebind with \
                 `breadboard vfio bind {name}`"
            ))
        })?;
        let noiommu_node = paths.dev_vfio.join(format!("noiommu-{group_id}"));
        let plain_node = paths.dev_vfio.join(group_id.to_string());
        let noiommu = sysfs::group_is_noiommu(root, group_id)
            || (!plain_node.exists() && noiommu_node.exists());
        let group_path = if noiommu { noiommu_node } else { plain_node };

        let container_path = paths.dev_vfio.join("vfio");
        let container = open_rw(&container_path).map_err(|e| {
            open_error(
                &container_path,
                e,
                format!(
                    "{} does not exist: load VFIO with `modprobe vfio-platform` (it brings vfio \
                     and vfio_iommu_type1)",
                    container_path.display()
                ),
            )
        })?;
        let cfd = container.as_fd();
        // SAFETY: GET_API_VERSION takes no argument.
        let version = unsafe {
            ioctl_raw(
                cfd,
                request::GET_API_VERSION,
                std::ptr::null_mut(),
                "VFIO_GET_API_VERSION",
            )
        }?;
        if version != sys::VFIO_API_VERSION as i32 {
            return Err(VfioError::Unsupported(format!(
                "the kernel's VFIO API version is {version}, breadboard speaks version {}",
                sys::VFIO_API_VERSION
            )));
        }
        let has = |ext: u32| -> Result<bool, VfioError> {
            // SAFETY: CHECK_EXTENSION takes the extension number as an integer argument.
            let r = unsafe {
                ioctl_raw(
                    cfd,
                    request::CHECK_EXTENSION,
                    int_arg(ext),
                    "VFIO_CHECK_EXTENSION",
                )
            }?;
            Ok(r > 0)
        };
        let iommu = if noiommu {
            if !has(sys::VFIO_NOIOMMU_IOMMU)? {
                return Err(VfioError::Unsupported(format!(
                    "{name} is in no-IOMMU group {group_id} but the VFIO container does not \
                     offer no-IOMMU mode: `modprobe vfio enable_unsafe_noiommu_mode=1`"
                )));
            }
            IommuModel::NoIommu
        } else if has(sys::VFIO_TYPE1v2_IOMMU)? {
            IommuModel::Type1v2
        } else if has(sys::VFIO_TYPE1_IOMMU)? {
            IommuModel::Type1
        } else {
            return Err(VfioError::Unsupported(
                "the VFIO container offers no type1 IOMMU: `modprobe vfio_iommu_type1` (and \
                 check that the host's IOMMU driver is loaded)"
                    .into(),
            ));
        };

        let group = open_rw(&group_path).map_err(|e| {
            open_error(
                &group_path,
                e,
                format!(
                    "{} does not exist although {name} is in IOMMU group {group_id}: is \
                     vfio-platform bound to it? run `breadboard vfio bind {name}`",
                    group_path.display()
                ),
            )
        })?;
        let mut status = group_status_arg();
        // SAFETY: GROUP_GET_STATUS fills a `struct vfio_group_status` whose argsz is set.
        unsafe {
            ioctl_raw(
                group.as_fd(),
                request::GROUP_GET_STATUS,
                (&raw mut status).cast(),
                "VFIO_GROUP_GET_STATUS",
            )
        }?;
        if status.flags & sys::VFIO_GROUP_FLAGS_VIABLE == 0 {
            let others: Vec<String> = sysfs::group_devices(root, group_id)
                .into_iter()
                .filter(|d| d != name)
                .map(|d| {
                    let drv = sysfs::driver(root, &d).ok().flatten();
                    format!("{d} ({})", drv.as_deref().unwrap_or("no driver"))
                })
                .collect();
            return Err(VfioError::Unsupported(format!(
                "IOMMU group {group_id} of {name} is not viable: every device in it must be \
                 bound to vfio-platform or to no driver (others in the group: {}); bind them \
                 with `breadboard vfio bind DEVICE`",
                if others.is_empty() {
                    "none listed".to_string()
                } else {
                    others.join(", ")
                }
            )));
        }
        let container_raw: i32 = cfd.as_raw_fd();
        // SAFETY: GROUP_SET_CONTAINER reads an `int` holding the container fd, which is open.
        unsafe {
            ioctl_raw(
                group.as_fd(),
                request::GROUP_SET_CONTAINER,
                (&raw const container_raw).cast_mut().cast(),
                "VFIO_GROUP_SET_CONTAINER",
            )
        }?;
        // SAFETY: SET_IOMMU takes the IOMMU model as an integer argument.
        unsafe {
            ioctl_raw(
                cfd,
                request::SET_IOMMU,
                int_arg(iommu.raw()),
                "VFIO_SET_IOMMU",
            )
        }?;
        let cname = CString::new(name)
            .map_err(|_| VfioError::Invalid(format!("{name:?} contains a NUL byte")))?;
        // SAFETY: GROUP_GET_DEVICE_FD reads a NUL-terminated device name; `cname` outlives the
        // call.
        let raw_fd = unsafe {
            ioctl_raw(
                group.as_fd(),
                request::GROUP_GET_DEVICE_FD,
                cname.as_ptr().cast_mut().cast(),
                "VFIO_GROUP_GET_DEVICE_FD",
            )
        }?;
        if raw_fd < 0 {
            return Err(VfioError::Protocol(format!(
                "VFIO_GROUP_GET_DEVICE_FD returned {raw_fd}"
            )));
        }
        // SAFETY: on success GROUP_GET_DEVICE_FD returns a new fd that nothing else owns.
        let device = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw_fd) };

        let mut dinfo = device_info_arg();
        // SAFETY: DEVICE_GET_INFO fills a `struct vfio_device_info` whose argsz is set.
        unsafe {
            ioctl_raw(
                device.as_fd(),
                request::DEVICE_GET_INFO,
                (&raw mut dinfo).cast(),
                "VFIO_DEVICE_GET_INFO",
            )
        }?;
        if dinfo.flags & DEVICE_FLAGS_PLATFORM == 0 {
            return Err(VfioError::Unsupported(format!(
                "{name} is not a VFIO platform device (device flags {:#x}, \
                 VFIO_DEVICE_FLAGS_PLATFORM unset): vfio-platform passes only devices bound to \
                 the vfio-platform driver",
                dinfo.flags
            )));
        }
        if dinfo.num_regions > MAX_INDEXES || dinfo.num_irqs > MAX_INDEXES {
            return Err(VfioError::Protocol(format!(
                "{name} reports {} regions and {} IRQs",
                dinfo.num_regions, dinfo.num_irqs
            )));
        }
        let mut backend = KernelBackend {
            device,
            group,
            container,
            name: name.to_string(),
            group_id,
            iommu,
            of_node: sysfs::device_dir(root, name).join("of_node"),
            info: DeviceInfo {
                flags: dinfo.flags,
                num_regions: dinfo.num_regions,
                num_irqs: dinfo.num_irqs,
            },
            regions: Vec::new(),
        };
        let mut regions = Vec::with_capacity(dinfo.num_regions as usize);
        for i in 0..dinfo.num_regions {
            regions.push(backend.query_region(i)?);
        }
        backend.regions = regions;
        tracing::debug!(
            "vfio: opened {name}: group {group_id}, {:?}, {} regions, {} IRQs",
            iommu,
            dinfo.num_regions,
            dinfo.num_irqs
        );
        Ok(backend)
    }

    /// The device's name in sysfs.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The IOMMU group number.
    pub fn group(&self) -> u32 {
        self.group_id
    }

    /// The IOMMU model of the container.
    pub fn iommu(&self) -> IommuModel {
        self.iommu
    }

    /// The device fd (for callers that poll it or map regions themselves).
    pub fn device_fd(&self) -> BorrowedFd<'_> {
        self.device.as_fd()
    }

    /// The container fd.
    pub fn container_fd(&self) -> BorrowedFd<'_> {
        self.container.as_fd()
    }

    /// The group fd.
    pub fn group_fd(&self) -> BorrowedFd<'_> {
        self.group.as_fd()
    }

    fn query_region(&self, index: u32) -> Result<RegionInfo, VfioError> {
        let mut r = region_info_arg(index);
        // SAFETY: GET_REGION_INFO fills a `struct vfio_region_info` whose argsz is set; a
        // larger argsz reported back (capabilities) is not acted on.
        unsafe {
            ioctl_raw(
                self.device.as_fd(),
                request::DEVICE_GET_REGION_INFO,
                (&raw mut r).cast(),
                "VFIO_DEVICE_GET_REGION_INFO",
            )
        }?;
        if r.index != index || r.offset.checked_add(r.size).is_none() {
            return Err(VfioError::Protocol(format!(
                "region {index} of {}: index {} offset {:#x} size {:#x}",
                self.name, r.index, r.offset, r.size
            )));
        }
        Ok(RegionInfo {
            index,
            flags: r.flags,
            size: r.size,
            offset: r.offset,
        })
    }

    /// The cached region `index`, and the device-fd offset of `offset..offset+len` in it.
    fn access(&self, index: u32, offset: u64, len: usize, need: u32) -> Result<u64, VfioError> {
        if !matches!(len, 1 | 2 | 4 | 8) {
            return Err(VfioError::Invalid(format!(
                "{}: access of {len} bytes (1, 2, 4 or 8)",
                self.name
            )));
        }
        let r = self.regions.get(index as usize).ok_or_else(|| {
            VfioError::Invalid(format!(
                "{}: region {index} does not exist ({} regions)",
                self.name, self.info.num_regions
            ))
        })?;
        let end = offset.checked_add(len as u64);
        if end.is_none_or(|e| e > r.size) {
            return Err(VfioError::Invalid(format!(
                "{}: {len} bytes at {offset:#x} are past the end of region {index} ({:#x} \
                 bytes)",
                self.name, r.size
            )));
        }
        if r.flags & need == 0 {
            let what = if need == REGION_FLAG_READ {
                "readable"
            } else {
                "writable"
            };
            return Err(VfioError::Invalid(format!(
                "{}: region {index} is not {what}",
                self.name
            )));
        }
        r.offset
            .checked_add(offset)
            .ok_or_else(|| VfioError::Invalid(format!("{}: offset overflow", self.name)))
    }

    fn set_irqs(&self, buf: &mut [u8], what: &str) -> Result<(), VfioError> {
        // SAFETY: `buf` is a complete `struct vfio_irq_set` whose argsz is its length (built by
        // `irq_set_buffer`); the kernel copies it in and holds on to the eventfds it names.
        unsafe {
            ioctl_raw(
                self.device.as_fd(),
                request::DEVICE_SET_IRQS,
                buf.as_mut_ptr().cast(),
                what,
            )
        }?;
        Ok(())
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

impl Backend for KernelBackend {
    fn describe(&self) -> String {
        format!("host {}", self.name)
    }

    fn device_info(&self) -> Result<DeviceInfo, VfioError> {
        Ok(self.info)
    }

    fn region_info(&self, index: u32) -> Result<RegionInfo, VfioError> {
        self.regions.get(index as usize).copied().ok_or_else(|| {
            VfioError::Invalid(format!(
                "{}: region {index} does not exist ({} regions)",
                self.name, self.info.num_regions
            ))
        })
    }

    fn map_region(&self, info: &RegionInfo) -> Result<Option<Mapping>, VfioError> {
        if info.flags & REGION_FLAG_MMAP == 0 || info.size == 0 {
            return Ok(None);
        }
        let writable = info.flags & REGION_FLAG_WRITE != 0;
        match Mapping::map(self.device.as_fd(), info.offset, info.size, writable) {
            Ok(m) => Ok(Some(m)),
            Err(e) => {
                // The kernel offered mmap but refused it (alignment, policy): accesses still
                // work through the device fd, only slower.
                tracing::warn!(
                    "vfio: {}: region {} offered mmap but it failed ({e}); using read/write",
                    self.name,
                    info.index
                );
                Ok(None)
            }
        }
    }

    fn region_read(&self, index: u32, offset: u64, buf: &mut [u8]) -> Result<(), VfioError> {
        let at = self.access(index, offset, buf.len(), REGION_FLAG_READ)?;
        let n = rustix::io::pread(&self.device, &mut *buf, at).map_err(|e| VfioError::Io {
            op: format!("read region {index} of {} at {offset:#x}", self.name),
            source: e.into(),
        })?;
        if n != buf.len() {
            return Err(VfioError::Protocol(format!(
                "read region {index} of {} at {offset:#x}: {n} of {} bytes",
                self.name,
                buf.len()
            )));
        }
        Ok(())
    }

    fn region_write(&self, index: u32, offset: u64, data: &[u8]) -> Result<(), VfioError> {
        let at = self.access(index, offset, data.len(), REGION_FLAG_WRITE)?;
        let n = rustix::io::pwrite(&self.device, data, at).map_err(|e| VfioError::Io {
            op: format!("write region {index} of {} at {offset:#x}", self.name),
            source: e.into(),
        })?;
        if n != data.len() {
            return Err(VfioError::Protocol(format!(
                "write region {index} of {} at {offset:#x}: {n} of {} bytes",
                self.name,
                data.len()
            )));
        }
        Ok(())
    }

    fn irq_info(&self, index: u32) -> Result<IrqInfo, VfioError> {
        self.check_irq(index)?;
        let mut r = irq_info_arg(index);
        // SAFETY: GET_IRQ_INFO fills a `struct vfio_irq_info` whose argsz is set.
        unsafe {
            ioctl_raw(
                self.device.as_fd(),
                request::DEVICE_GET_IRQ_INFO,
                (&raw mut r).cast(),
                "VFIO_DEVICE_GET_IRQ_INFO",
            )
        }?;
        if r.index != index {
            return Err(VfioError::Protocol(format!(
                "IRQ info for index {index} of {} came back for index {}",
                self.name, r.index
            )));
        }
        Ok(IrqInfo {
            index,
            flags: r.flags,
            count: r.count,
        })
    }

    fn set_irq_eventfds(&self, index: u32, fds: &[BorrowedFd<'_>]) -> Result<(), VfioError> {
        self.check_irq(index)?;
        if fds.is_empty() {
            return self.disable_irq(index);
        }
        let raw: Vec<i32> = fds.iter().map(|f| f.as_raw_fd()).collect();
        let count = u32::try_from(raw.len())
            .map_err(|_| VfioError::Invalid(format!("{} eventfds", raw.len())))?;
        let mut buf = irq_set_buffer(
            sys::VFIO_IRQ_SET_DATA_EVENTFD | sys::VFIO_IRQ_SET_ACTION_TRIGGER,
            index,
            0,
            count,
            &raw,
        );
        self.set_irqs(&mut buf, "VFIO_DEVICE_SET_IRQS (eventfd trigger)")
    }

    fn disable_irq(&self, index: u32) -> Result<(), VfioError> {
        self.check_irq(index)?;
        let mut buf = irq_set_buffer(
            sys::VFIO_IRQ_SET_DATA_NONE | sys::VFIO_IRQ_SET_ACTION_TRIGGER,
            index,
            0,
            0,
            &[],
        );
        self.set_irqs(&mut buf, "VFIO_DEVICE_SET_IRQS (disable)")
    }

    fn unmask_irq(&self, index: u32, sub: u32) -> Result<(), VfioError> {
        self.check_irq(index)?;
        let mut buf = irq_set_buffer(
            sys::VFIO_IRQ_SET_DATA_NONE | sys::VFIO_IRQ_SET_ACTION_UNMASK,
            index,
            sub,
            1,
            &[],
        );
        self.set_irqs(&mut buf, "VFIO_DEVICE_SET_IRQS (unmask)")
    }

    fn reset(&self) -> Result<(), VfioError> {
        if self.info.flags & DEVICE_FLAGS_RESET == 0 {
            return Err(VfioError::Unsupported(format!(
                "{} cannot be reset: vfio-platform has no reset handler for its compatible",
                self.name
            )));
        }
        // SAFETY: DEVICE_RESET takes no argument.
        unsafe {
            ioctl_raw(
                self.device.as_fd(),
                request::DEVICE_RESET,
                std::ptr::null_mut(),
                "VFIO_DEVICE_RESET",
            )
        }?;
        Ok(())
    }

    fn dma_map(&self, region: &DmaRegion<'_>) -> Result<(), VfioError> {
        if self.iommu == IommuModel::NoIommu {
            return Err(VfioError::Unsupported(format!(
                "{} is in no-IOMMU mode: it cannot reach guest RAM by DMA (it would see host \
                 physical addresses); use a host with an IOMMU for DMA-capable devices",
                self.name
            )));
        }
        if region.size == 0 {
            return Err(VfioError::Invalid("DMA window of 0 bytes".into()));
        }
        let mut arg = dma_map_arg(region);
        // SAFETY: IOMMU_MAP_DMA reads a `struct vfio_iommu_type1_dma_map`; the kernel pins
        // `size` bytes at `vaddr`, which the caller guarantees stay mapped until `dma_unmap`
        // (DmaRegion's contract).
        let r = unsafe {
            ioctl_raw(
                self.container.as_fd(),
                request::IOMMU_MAP_DMA,
                (&raw mut arg).cast(),
                "VFIO_IOMMU_MAP_DMA",
            )
        };
        r.map(|_| ()).map_err(|e| match e {
            VfioError::Io { source, .. } => {
                let hint = match source.raw_os_error() {
                    Some(n) if n == rustix::io::Errno::NOMEM.raw_os_error() => {
                        " (the pinned pages count against the locked-memory limit: raise \
                         `ulimit -l` to cover guest RAM)"
                    }
                    Some(n) if n == rustix::io::Errno::EXIST.raw_os_error() => {
                        " (overlaps a window already mapped)"
                    }
                    _ => "",
                };
                VfioError::Io {
                    op: format!(
                        "VFIO_IOMMU_MAP_DMA of {:#x} bytes at IOVA {:#x} for {}{hint}",
                        region.size, region.iova, self.name
                    ),
                    source,
                }
            }
            other => other,
        })
    }

    fn dma_unmap(&self, iova: u64, size: u64) -> Result<(), VfioError> {
        if self.iommu == IommuModel::NoIommu {
            return Err(VfioError::Unsupported(format!(
                "{} is in no-IOMMU mode: nothing is DMA-mapped",
                self.name
            )));
        }
        let mut arg = dma_unmap_arg(iova, size);
        // SAFETY: IOMMU_UNMAP_DMA reads a `struct vfio_iommu_type1_dma_unmap` (no bitmap, as
        // argsz says) and writes back the size it unmapped.
        unsafe {
            ioctl_raw(
                self.container.as_fd(),
                request::IOMMU_UNMAP_DMA,
                (&raw mut arg).cast(),
                "VFIO_IOMMU_UNMAP_DMA",
            )
        }?;
        if arg.size != size {
            return Err(VfioError::Protocol(format!(
                "VFIO_IOMMU_UNMAP_DMA of {size:#x} bytes at IOVA {iova:#x} unmapped {:#x}",
                arg.size
            )));
        }
        Ok(())
    }

    fn dt_hints(&self) -> Result<DtHints, VfioError> {
        sysfs::read_dt_node(&self.of_node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sysfs::testutil::*;
    use std::mem::{offset_of, size_of};
    use std::ptr::NonNull;

    /// The kernel's `_IO(type, nr)`: direction 0, size 0.
    const fn linux_io(ty: u32, nr: u32) -> u64 {
        ((ty << 8) | nr) as u64
    }

    #[test]
    fn test_request_numbers_equal_the_kernels_io_macro() {
        let table = [
            (request::GET_API_VERSION, 0, 0x3b64),
            (request::CHECK_EXTENSION, 1, 0x3b65),
            (request::SET_IOMMU, 2, 0x3b66),
            (request::GROUP_GET_STATUS, 3, 0x3b67),
            (request::GROUP_SET_CONTAINER, 4, 0x3b68),
            (request::GROUP_UNSET_CONTAINER, 5, 0x3b69),
            (request::GROUP_GET_DEVICE_FD, 6, 0x3b6a),
            (request::DEVICE_GET_INFO, 7, 0x3b6b),
            (request::DEVICE_GET_REGION_INFO, 8, 0x3b6c),
            (request::DEVICE_GET_IRQ_INFO, 9, 0x3b6d),
            (request::DEVICE_SET_IRQS, 10, 0x3b6e),
            (request::DEVICE_RESET, 11, 0x3b6f),
            (request::IOMMU_GET_INFO, 12, 0x3b70),
            (request::IOMMU_MAP_DMA, 13, 0x3b71),
            (request::IOMMU_UNMAP_DMA, 14, 0x3b72),
        ];
        for (op, n, literal) in table {
            assert_eq!(
                op as u64,
                linux_io(u32::from(b';'), 100 + n),
                "VFIO_BASE + {n}"
            );
            assert_eq!(op as u64, literal, "VFIO_BASE + {n}");
        }
        assert_eq!(sys::VFIO_TYPE, b';');
        assert_eq!(sys::VFIO_BASE, 100);
    }

    #[test]
    fn test_binding_flag_values_match_the_backend_contract() {
        use crate::backend::*;
        assert_eq!(DEVICE_FLAGS_RESET, sys::VFIO_DEVICE_FLAGS_RESET);
        assert_eq!(DEVICE_FLAGS_PLATFORM, sys::VFIO_DEVICE_FLAGS_PLATFORM);
        assert_eq!(REGION_FLAG_READ, sys::VFIO_REGION_INFO_FLAG_READ);
        assert_eq!(REGION_FLAG_WRITE, sys::VFIO_REGION_INFO_FLAG_WRITE);
        assert_eq!(REGION_FLAG_MMAP, sys::VFIO_REGION_INFO_FLAG_MMAP);
        assert_eq!(IRQ_FLAG_EVENTFD, sys::VFIO_IRQ_INFO_EVENTFD);
        assert_eq!(IRQ_FLAG_MASKABLE, sys::VFIO_IRQ_INFO_MASKABLE);
        assert_eq!(IRQ_FLAG_AUTOMASKED, sys::VFIO_IRQ_INFO_AUTOMASKED);
        assert_eq!(sys::VFIO_API_VERSION, 0);
        assert_eq!(sys::VFIO_TYPE1_IOMMU, 1);
        assert_eq!(sys::VFIO_TYPE1v2_IOMMU, 3);
        assert_eq!(sys::VFIO_NOIOMMU_IOMMU, 8);
        assert_eq!(sys::VFIO_GROUP_FLAGS_VIABLE, 1);
        assert_eq!(sys::VFIO_IRQ_SET_DATA_NONE, 1);
        assert_eq!(sys::VFIO_IRQ_SET_DATA_EVENTFD, 4);
        assert_eq!(sys::VFIO_IRQ_SET_ACTION_UNMASK, 16);
        assert_eq!(sys::VFIO_IRQ_SET_ACTION_TRIGGER, 32);
        assert_eq!(sys::VFIO_DMA_MAP_FLAG_READ, 1);
        assert_eq!(sys::VFIO_DMA_MAP_FLAG_WRITE, 2);
    }

    #[test]
    fn test_group_status_layout_and_argsz() {
        assert_eq!(size_of::<sys::vfio_group_status>(), 8);
        assert_eq!(offset_of!(sys::vfio_group_status, argsz), 0);
        assert_eq!(offset_of!(sys::vfio_group_status, flags), 4);
        let a = group_status_arg();
        assert_eq!((a.argsz, a.flags), (8, 0));
    }

    #[test]
    fn test_device_info_layout_and_argsz() {
        assert_eq!(size_of::<sys::vfio_device_info>(), 24);
        assert_eq!(offset_of!(sys::vfio_device_info, argsz), 0);
        assert_eq!(offset_of!(sys::vfio_device_info, flags), 4);
        assert_eq!(offset_of!(sys::vfio_device_info, num_regions), 8);
        assert_eq!(offset_of!(sys::vfio_device_info, num_irqs), 12);
        assert_eq!(offset_of!(sys::vfio_device_info, cap_offset), 16);
        let a = device_info_arg();
        assert_eq!(a.argsz, 24);
        assert_eq!((a.flags, a.num_regions, a.num_irqs), (0, 0, 0));
    }

    #[test]
    fn test_region_info_layout_and_argsz() {
        assert_eq!(size_of::<sys::vfio_region_info>(), 32);
        assert_eq!(offset_of!(sys::vfio_region_info, argsz), 0);
        assert_eq!(offset_of!(sys::vfio_region_info, flags), 4);
        assert_eq!(offset_of!(sys::vfio_region_info, index), 8);
        assert_eq!(offset_of!(sys::vfio_region_info, cap_offset), 12);
        assert_eq!(offset_of!(sys::vfio_region_info, size), 16);
        assert_eq!(offset_of!(sys::vfio_region_info, offset), 24);
        let a = region_info_arg(3);
        assert_eq!(
            (a.argsz, a.index, a.flags, a.size, a.offset),
            (32, 3, 0, 0, 0)
        );
    }

    #[test]
    fn test_irq_info_layout_and_argsz() {
        assert_eq!(size_of::<sys::vfio_irq_info>(), 16);
        assert_eq!(offset_of!(sys::vfio_irq_info, argsz), 0);
        assert_eq!(offset_of!(sys::vfio_irq_info, flags), 4);
        assert_eq!(offset_of!(sys::vfio_irq_info, index), 8);
        assert_eq!(offset_of!(sys::vfio_irq_info, count), 12);
        let a = irq_info_arg(2);
        assert_eq!((a.argsz, a.index, a.flags, a.count), (16, 2, 0, 0));
    }

    fn word(buf: &[u8], at: usize) -> u32 {
        u32::from_ne_bytes(buf[at..at + 4].try_into().expect("4 bytes"))
    }

    #[test]
    fn test_irq_set_header_layout() {
        assert_eq!(size_of::<sys::vfio_irq_set>(), 20);
        assert_eq!(offset_of!(sys::vfio_irq_set, argsz), 0);
        assert_eq!(offset_of!(sys::vfio_irq_set, flags), 4);
        assert_eq!(offset_of!(sys::vfio_irq_set, index), 8);
        assert_eq!(offset_of!(sys::vfio_irq_set, start), 12);
        assert_eq!(offset_of!(sys::vfio_irq_set, count), 16);
        assert_eq!(offset_of!(sys::vfio_irq_set, data), 20);
    }

    #[test]
    fn test_irq_set_buffer_with_eventfds() {
        let flags = sys::VFIO_IRQ_SET_DATA_EVENTFD | sys::VFIO_IRQ_SET_ACTION_TRIGGER;
        let b = irq_set_buffer(flags, 1, 0, 2, &[17, 42]);
        assert_eq!(b.len(), 28, "20-byte header + two __s32 eventfds");
        assert_eq!(word(&b, 0), 28, "argsz covers the data");
        assert_eq!(word(&b, 4), 0x24);
        assert_eq!(word(&b, 8), 1, "index");
        assert_eq!(word(&b, 12), 0, "start");
        assert_eq!(word(&b, 16), 2, "count");
        assert_eq!(word(&b, 20) as i32, 17);
        assert_eq!(word(&b, 24) as i32, 42);
    }

    #[test]
    fn test_irq_set_buffer_disable_and_unmask() {
        let off = irq_set_buffer(
            sys::VFIO_IRQ_SET_DATA_NONE | sys::VFIO_IRQ_SET_ACTION_TRIGGER,
            3,
            0,
            0,
            &[],
        );
        assert_eq!(off.len(), 20);
        assert_eq!(
            [
                word(&off, 0),
                word(&off, 4),
                word(&off, 8),
                word(&off, 12),
                word(&off, 16)
            ],
            [20, 0x21, 3, 0, 0]
        );
        let un = irq_set_buffer(
            sys::VFIO_IRQ_SET_DATA_NONE | sys::VFIO_IRQ_SET_ACTION_UNMASK,
            0,
            0,
            1,
            &[],
        );
        assert_eq!(
            [
                word(&un, 0),
                word(&un, 4),
                word(&un, 8),
                word(&un, 12),
                word(&un, 16)
            ],
            [20, 0x11, 0, 0, 1]
        );
    }

    #[test]
    fn test_dma_map_layout_and_fields() {
        assert_eq!(size_of::<sys::vfio_iommu_type1_dma_map>(), 32);
        assert_eq!(offset_of!(sys::vfio_iommu_type1_dma_map, argsz), 0);
        assert_eq!(offset_of!(sys::vfio_iommu_type1_dma_map, flags), 4);
        assert_eq!(offset_of!(sys::vfio_iommu_type1_dma_map, vaddr), 8);
        assert_eq!(offset_of!(sys::vfio_iommu_type1_dma_map, iova), 16);
        assert_eq!(offset_of!(sys::vfio_iommu_type1_dma_map, size), 24);
        let fd = rustix::fs::memfd_create("bb-dma-test", rustix::fs::MemfdFlags::CLOEXEC)
            .expect("memfd");
        let mut ram = [0u8; 64];
        let host = NonNull::new(ram.as_mut_ptr()).expect("non-null");
        let mut region = DmaRegion {
            iova: 0x8000_0000,
            size: 0x20_0000,
            host,
            fd: fd.as_fd(),
            fd_offset: 0,
            writable: true,
        };
        let a = dma_map_arg(&region);
        assert_eq!(a.argsz, 32);
        assert_eq!(a.flags, 3, "READ | WRITE");
        assert_eq!(a.vaddr, ram.as_ptr() as usize as u64);
        assert_eq!((a.iova, a.size), (0x8000_0000, 0x20_0000));
        region.writable = false;
        assert_eq!(dma_map_arg(&region).flags, 1, "READ only");
    }

    #[test]
    fn test_dma_unmap_layout_and_fields() {
        assert_eq!(size_of::<sys::vfio_iommu_type1_dma_unmap>(), 24);
        assert_eq!(offset_of!(sys::vfio_iommu_type1_dma_unmap, argsz), 0);
        assert_eq!(offset_of!(sys::vfio_iommu_type1_dma_unmap, flags), 4);
        assert_eq!(offset_of!(sys::vfio_iommu_type1_dma_unmap, iova), 8);
        assert_eq!(offset_of!(sys::vfio_iommu_type1_dma_unmap, size), 16);
        let a = dma_unmap_arg(0x8000_0000, 0x1000);
        assert_eq!(
            (a.argsz, a.flags, a.iova, a.size),
            (24, 0, 0x8000_0000, 0x1000)
        );
    }

    #[test]
    fn test_int_arg_passes_the_value_in_the_pointer() {
        assert_eq!(int_arg(3) as usize, 3);
        assert_eq!(int_arg(sys::VFIO_NOIOMMU_IOMMU) as usize, 8);
    }

    fn paths(root: &Path) -> KernelPaths {
        KernelPaths {
            sysfs: root.join("sys"),
            dev_vfio: root.join("dev/vfio"),
        }
    }

    fn open_err(name: &str, p: &KernelPaths) -> VfioError {
        match KernelBackend::open_at(name, p) {
            Ok(_) => panic!("opened {name} in a fake tree"),
            Err(e) => e,
        }
    }

    #[test]
    fn test_open_missing_device_says_how_to_list() {
        let t = TempDir::new("kopen-missing");
        let p = paths(t.path());
        std::fs::create_dir_all(p.sysfs.join("bus/platform/devices")).expect("mkdir");
        let e = open_err("nope.dev", &p);
        assert!(matches!(&e, VfioError::NotFound(_)));
        assert!(e.to_string().contains("breadboard vfio list"), "{e}");
        assert!(matches!(open_err("../etc", &p), VfioError::Invalid(_)));
    }

    #[test]
    fn test_open_device_bound_elsewhere_says_to_bind() {
        let t = TempDir::new("kopen-driver");
        let p = paths(t.path());
        fake_device(&p.sysfs, "1000.uart", Some("serial8250"), Some(3));
        fake_device(&p.sysfs, "2000.gpio", None, Some(4));
        let e = open_err("1000.uart", &p);
        assert_eq!(
            e.to_string(),
            "1000.uart is bound to driver serial8250, run `breadboard vfio bind 1000.uart`"
        );
        let e = open_err("2000.gpio", &p);
        assert_eq!(
            e.to_string(),
            "2000.gpio is bound to no driver, run `breadboard vfio bind 2000.gpio`"
        );
    }

    #[test]
    fn test_open_without_group_explains_iommu_and_noiommu() {
        let t = TempDir::new("kopen-group");
        let p = paths(t.path());
        fake_device(&p.sysfs, "1000.uart", Some("vfio-platform"), None);
        let e = open_err("1000.uart", &p);
        assert!(matches!(&e, VfioError::NotFound(_)));
        let m = e.to_string();
        assert!(m.starts_with("no IOMMU group for 1000.uart"), "{m}");
        assert!(m.contains("enable_unsafe_noiommu_mode"), "{m}");
    }

    #[test]
    fn test_open_without_dev_vfio_says_modprobe() {
        let t = TempDir::new("kopen-nodev");
        let p = paths(t.path());
        fake_device(&p.sysfs, "1000.uart", Some("vfio-platform"), Some(5));
        let e = open_err("1000.uart", &p);
        assert!(matches!(&e, VfioError::NotFound(_)));
        assert!(e.to_string().contains("modprobe vfio-platform"), "{e}");
    }

    #[test]
    fn test_open_on_a_file_that_is_not_vfio_fails_at_the_api_version() {
        let t = TempDir::new("kopen-notvfio");
        let p = paths(t.path());
        fake_device(&p.sysfs, "1000.uart", Some("vfio-platform"), Some(5));
        put(&p.dev_vfio, "vfio", b"");
        let e = open_err("1000.uart", &p);
        assert!(
            matches!(&e, VfioError::Io { op, .. } if op == "VFIO_GET_API_VERSION"),
            "{e}"
        );
    }

    /// A backend whose device fd is a memfd laid out like vfio-platform's device fd: region
    /// N at offset N << 40 is too far for a memfd, so the regions sit at 0x0 (4 KiB, read-write,
    /// mmap), 0x1000 (0x100 bytes, read-only) and 0x2000 (absent). ioctls on the memfd fail
    /// (ENOTTY), which shows how kernel errors come out.
    fn memfd_backend(flags: u32, iommu: IommuModel, of_node: PathBuf) -> KernelBackend {
        let fd = || {
            rustix::fs::memfd_create("bb-kernel-test", rustix::fs::MemfdFlags::CLOEXEC)
                .expect("memfd")
        };
        let device = fd();
        rustix::fs::ftruncate(&device, 0x3000).expect("truncate");
        let regions = vec![
            RegionInfo {
                index: 0,
                flags: REGION_FLAG_READ | REGION_FLAG_WRITE | REGION_FLAG_MMAP,
                size: 0x1000,
                offset: 0,
            },
            RegionInfo {
                index: 1,
                flags: REGION_FLAG_READ,
                size: 0x100,
                offset: 0x1000,
            },
            RegionInfo {
                index: 2,
                flags: 0,
                size: 0,
                offset: 0x2000,
            },
        ];
        KernelBackend {
            device,
            group: fd(),
            container: fd(),
            name: "10000.test".into(),
            group_id: 7,
            iommu,
            of_node,
            info: DeviceInfo {
                flags,
                num_regions: 3,
                num_irqs: 1,
            },
            regions,
        }
    }

    #[test]
    fn test_region_access_goes_to_region_offset_in_the_device_fd() {
        let b = memfd_backend(DEVICE_FLAGS_PLATFORM, IommuModel::Type1v2, PathBuf::new());
        assert_eq!(b.describe(), "host 10000.test");
        b.region_write(0, 0x10, &0xdead_beef_u32.to_le_bytes())
            .expect("write region 0");
        let mut four = [0u8; 4];
        b.region_read(0, 0x10, &mut four).expect("read region 0");
        assert_eq!(u32::from_le_bytes(four), 0xdead_beef);
        // Region 1 starts at 0x1000 of the device fd.
        rustix::io::pwrite(&b.device, &[0x5a, 0xa5], 0x1008).expect("pwrite");
        let mut two = [0u8; 2];
        b.region_read(1, 8, &mut two).expect("read region 1");
        assert_eq!(two, [0x5a, 0xa5]);
        let mut eight = [0u8; 8];
        b.region_read(0, 0xff8, &mut eight).expect("last 8 bytes");
    }

    #[test]
    fn test_region_access_is_checked_before_the_kernel_sees_it() {
        let b = memfd_backend(DEVICE_FLAGS_PLATFORM, IommuModel::Type1v2, PathBuf::new());
        let mut four = [0u8; 4];
        let invalid = |r: Result<(), VfioError>| matches!(r, Err(VfioError::Invalid(_)));
        assert!(invalid(b.region_read(0, 0xffd, &mut four)), "past the end");
        assert!(
            invalid(b.region_read(0, u64::MAX, &mut four)),
            "offset overflow"
        );
        assert!(invalid(b.region_read(3, 0, &mut four)), "no region 3");
        assert!(invalid(b.region_read(0, 0, &mut [0u8; 3])), "3-byte access");
        assert!(invalid(b.region_read(0, 0, &mut [])), "empty access");
        assert!(
            invalid(b.region_write(1, 0, &[0; 4])),
            "region 1 is read-only"
        );
        assert!(invalid(b.region_read(2, 0, &mut four)), "absent region");
        assert!(matches!(b.region_info(3), Err(VfioError::Invalid(_))));
        assert_eq!(b.region_info(1).expect("info").offset, 0x1000);
    }

    #[test]
    fn test_map_region_maps_mmap_regions_only() {
        let b = memfd_backend(DEVICE_FLAGS_PLATFORM, IommuModel::Type1v2, PathBuf::new());
        let r0 = b.region_info(0).expect("info");
        let m = b
            .map_region(&r0)
            .expect("map")
            .expect("region 0 is mmap-able");
        assert_eq!(m.len(), 0x1000);
        assert!(m.write(0x20, 4, 0x1234_5678));
        let mut four = [0u8; 4];
        b.region_read(0, 0x20, &mut four).expect("read");
        assert_eq!(
            u32::from_le_bytes(four),
            0x1234_5678,
            "mapping is the device fd"
        );
        assert!(
            b.map_region(&b.region_info(1).expect("info"))
                .expect("map")
                .is_none()
        );
        assert!(
            b.map_region(&b.region_info(2).expect("info"))
                .expect("map")
                .is_none()
        );
    }

    #[test]
    fn test_reset_irq_and_dma_refusals() {
        let b = memfd_backend(DEVICE_FLAGS_PLATFORM, IommuModel::NoIommu, PathBuf::new());
        assert!(
            matches!(b.reset(), Err(VfioError::Unsupported(_))),
            "no RESET flag"
        );
        assert!(matches!(b.irq_info(1), Err(VfioError::Invalid(_))));
        assert!(matches!(b.unmask_irq(1, 0), Err(VfioError::Invalid(_))));
        assert!(matches!(b.disable_irq(5), Err(VfioError::Invalid(_))));
        let ram = [0u8; 16];
        let region = DmaRegion {
            iova: 0x8000_0000,
            size: 0x1000,
            host: NonNull::new(ram.as_ptr().cast_mut()).expect("non-null"),
            fd: b.device.as_fd(),
            fd_offset: 0,
            writable: true,
        };
        let e = b.dma_map(&region).expect_err("no-IOMMU mode");
        assert!(
            matches!(&e, VfioError::Unsupported(m) if m.contains("no-IOMMU")),
            "{e}"
        );
        assert!(matches!(
            b.dma_unmap(0x8000_0000, 0x1000),
            Err(VfioError::Unsupported(_))
        ));
    }

    #[test]
    fn test_kernel_errors_name_the_ioctl() {
        let b = memfd_backend(
            DEVICE_FLAGS_PLATFORM | DEVICE_FLAGS_RESET,
            IommuModel::Type1v2,
            PathBuf::new(),
        );
        let op_of = |r: Result<(), VfioError>| match r {
            Err(VfioError::Io { op, .. }) => op,
            other => panic!("expected an I/O error, got {other:?}"),
        };
        assert_eq!(op_of(b.reset()), "VFIO_DEVICE_RESET");
        assert_eq!(op_of(b.irq_info(0).map(|_| ())), "VFIO_DEVICE_GET_IRQ_INFO");
        assert_eq!(op_of(b.unmask_irq(0, 0)), "VFIO_DEVICE_SET_IRQS (unmask)");
        let efd = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).expect("efd");
        assert_eq!(
            op_of(b.set_irq_eventfds(0, &[efd.as_fd()])),
            "VFIO_DEVICE_SET_IRQS (eventfd trigger)"
        );
        assert_eq!(
            op_of(b.set_irq_eventfds(0, &[])),
            "VFIO_DEVICE_SET_IRQS (disable)"
        );
        let ram = [0u8; 16];
        let region = DmaRegion {
            iova: 0x8000_0000,
            size: 0x1000,
            host: NonNull::new(ram.as_ptr().cast_mut()).expect("non-null"),
            fd: b.device.as_fd(),
            fd_offset: 0,
            writable: true,
        };
        let op = op_of(b.dma_map(&region));
        assert!(
            op.starts_with("VFIO_IOMMU_MAP_DMA of 0x1000 bytes at IOVA 0x80000000"),
            "{op}"
        );
        assert_eq!(
            op_of(b.dma_unmap(0x8000_0000, 0x1000)),
            "VFIO_IOMMU_UNMAP_DMA"
        );
    }

    #[test]
    fn test_dt_hints_come_from_the_of_node() {
        let t = TempDir::new("kernel-dt");
        put(t.path(), "of_node/compatible", b"acme,uart\0ns16550a\0");
        put(t.path(), "of_node/clock-frequency", &[0, 0x1c, 0x9c, 0x38]);
        let b = memfd_backend(
            DEVICE_FLAGS_PLATFORM,
            IommuModel::Type1,
            t.path().join("of_node"),
        );
        let h = b.dt_hints().expect("hints");
        assert_eq!(h.compatible, ["acme,uart", "ns16550a"]);
        assert_eq!(
            h.props,
            [("clock-frequency".to_string(), vec![0, 0x1c, 0x9c, 0x38])]
        );
        let none = memfd_backend(DEVICE_FLAGS_PLATFORM, IommuModel::Type1, t.path().join("x"));
        assert_eq!(none.dt_hints().expect("no node"), DtHints::default());
    }
}
