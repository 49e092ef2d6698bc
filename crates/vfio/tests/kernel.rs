//! The kernel backend against a real host platform device bound to `vfio-platform`.
//!
//! Runs when `/dev/vfio/vfio` exists and a platform device is bound to vfio-platform
//! (`BREADBOARD_VFIO_DEVICE=NAME`, or the first one `host::list` finds); otherwise it says on
//! stderr why it is skipped and passes. It touches no device register unless
//! `BREADBOARD_VFIO_READ=1` (a register read can have side effects, like popping a FIFO).

use std::io::Write;
use std::os::fd::AsFd;
use std::path::Path;
use std::ptr::NonNull;

use breadboard_vfio::backend::{
    Backend, DEVICE_FLAGS_PLATFORM, DEVICE_FLAGS_RESET, DmaRegion, IRQ_FLAG_EVENTFD,
    IRQ_FLAG_MASKABLE, REGION_FLAG_MMAP, REGION_FLAG_READ, VfioError,
};
use breadboard_vfio::host;
use breadboard_vfio::kernel::{IommuModel, KernelBackend};

/// Says why a test does not run, past libtest's output capture so `cargo test` shows it.
fn skip(why: &str) {
    let _ = writeln!(std::io::stderr(), "skipped: {why}");
}

/// The device to test, or why there is none.
fn target() -> Result<String, String> {
    if !Path::new("/dev/vfio/vfio").exists() {
        return Err("/dev/vfio/vfio does not exist (no VFIO in this kernel)".into());
    }
    if let Ok(name) = std::env::var("BREADBOARD_VFIO_DEVICE") {
        return Ok(name);
    }
    let devices =
        host::list(Path::new("/sys")).map_err(|e| format!("cannot list platform devices: {e}"))?;
    devices
        .into_iter()
        .find(|d| d.is_vfio())
        .map(|d| d.name)
        .ok_or_else(|| {
            "no platform device is bound to vfio-platform (bind one with `breadboard vfio bind \
             NAME`, or set BREADBOARD_VFIO_DEVICE=NAME)"
                .into()
        })
}

#[test]
fn test_kernel_backend_on_a_real_vfio_platform_device() {
    let name = match target() {
        Ok(n) => n,
        Err(why) => return skip(&why),
    };
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/vfio/vfio")
        && e.kind() == std::io::ErrorKind::PermissionDenied
    {
        return skip("/dev/vfio/vfio is not accessible to this user (run the test as root)");
    }
    let b = KernelBackend::open(&name).unwrap_or_else(|e| panic!("open {name}: {e}"));
    assert_eq!(b.describe(), format!("host {name}"));

    let info = b.device_info().expect("device info");
    assert_ne!(info.flags & DEVICE_FLAGS_PLATFORM, 0, "{info:?}");

    for i in 0..info.num_regions {
        let r = b.region_info(i).expect("region info");
        assert_eq!(r.index, i);
        if r.size == 0 {
            continue;
        }
        if r.flags & REGION_FLAG_MMAP != 0 {
            let m = b.map_region(&r).expect("map region");
            if let Some(m) = m {
                assert_eq!(m.len() as u64, r.size);
            }
        } else {
            assert!(b.map_region(&r).expect("map region").is_none());
        }
        if std::env::var_os("BREADBOARD_VFIO_READ").is_some() && r.flags & REGION_FLAG_READ != 0 {
            let mut buf = [0u8; 4];
            b.region_read(i, 0, &mut buf).expect("register read");
        }
        // Past the end is refused before the kernel sees it.
        let mut buf = [0u8; 4];
        assert!(matches!(
            b.region_read(i, r.size, &mut buf),
            Err(VfioError::Invalid(_))
        ));
    }
    assert!(matches!(
        b.region_info(info.num_regions),
        Err(VfioError::Invalid(_))
    ));

    for i in 0..info.num_irqs {
        let irq = b.irq_info(i).expect("irq info");
        assert_eq!(irq.index, i);
        assert_ne!(irq.flags & IRQ_FLAG_EVENTFD, 0, "{irq:?}");
        assert!(irq.count >= 1, "{irq:?}");
        let efd = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).expect("eventfd");
        b.set_irq_eventfds(i, &[efd.as_fd()]).expect("set eventfd");
        if irq.flags & IRQ_FLAG_MASKABLE != 0 {
            b.unmask_irq(i, 0).expect("unmask");
        }
        b.disable_irq(i).expect("disable");
    }
    assert!(matches!(
        b.irq_info(info.num_irqs),
        Err(VfioError::Invalid(_))
    ));

    if info.flags & DEVICE_FLAGS_RESET != 0 {
        b.reset().expect("reset");
    } else {
        assert!(matches!(b.reset(), Err(VfioError::Unsupported(_))));
    }

    // 2 MiB of "guest RAM" at a typical RISC-V DRAM base.
    const SIZE: usize = 2 << 20;
    let ram =
        rustix::fs::memfd_create("bb-vfio-ram", rustix::fs::MemfdFlags::CLOEXEC).expect("memfd");
    rustix::fs::ftruncate(&ram, SIZE as u64).expect("ftruncate");
    // SAFETY: a fresh shared mapping of our own memfd, chosen by the kernel; unmapped below
    // after the DMA window is taken back.
    let host_ptr = unsafe {
        rustix::mm::mmap(
            std::ptr::null_mut(),
            SIZE,
            rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
            rustix::mm::MapFlags::SHARED,
            &ram,
            0,
        )
    }
    .expect("mmap");
    let region = DmaRegion {
        iova: 0x8000_0000,
        size: SIZE as u64,
        host: NonNull::new(host_ptr.cast()).expect("non-null"),
        fd: ram.as_fd(),
        fd_offset: 0,
        writable: true,
    };
    if b.iommu() == IommuModel::NoIommu {
        assert!(matches!(b.dma_map(&region), Err(VfioError::Unsupported(_))));
    } else {
        b.dma_map(&region).expect("dma map");
        b.dma_unmap(region.iova, region.size).expect("dma unmap");
    }
    // SAFETY: the mapping made above; no DMA window refers to it any more.
    unsafe { rustix::mm::munmap(host_ptr, SIZE) }.expect("munmap");

    let hints = b.dt_hints().expect("dt hints");
    if Path::new(&format!("/sys/bus/platform/devices/{name}/of_node")).exists() {
        assert!(!hints.compatible.is_empty(), "{hints:?}");
    }
}

#[test]
fn test_host_list_reads_this_hosts_sysfs() {
    let root = Path::new("/sys");
    if !root.join("bus/platform/devices").is_dir() {
        return skip("/sys/bus/platform/devices does not exist (sysfs not mounted)");
    }
    let devices = host::list(root).expect("list /sys");
    for d in &devices {
        assert!(!d.name.is_empty() && !d.name.contains('/'));
        // Whatever the host has, what we report agrees with sysfs itself.
        let link = root
            .join("bus/platform/devices")
            .join(&d.name)
            .join("driver");
        assert_eq!(d.driver.is_some(), link.exists(), "{d:?}");
    }
}
