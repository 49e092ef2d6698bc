//! The host helper behind `breadboard vfio list|bind|unbind`: which platform devices the host
//! has, and handing one to `vfio-platform` or back to its own driver through the platform bus's
//! `driver_override` (`Documentation/ABI/testing/sysfs-bus-platform`; the sequence —
//! `driver_override`, `driver/unbind`, `drivers_probe` — is the one the kernel documents for
//! vfio-platform).
//!
//! Every function takes the sysfs root (`/sys` on a real host) so the tests run against fake
//! trees. Binding needs root; the errors say so, and say what to load when something is missing.

// Reads untrusted input (a vfio-user server, the kernel, sysfs files, the guest): no panicking
// shortcuts outside tests.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::path::Path;

use crate::backend::VfioError;
use crate::sysfs::{self, VFIO_PLATFORM_DRIVER};

/// One platform device of the host, as `breadboard vfio list` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostDevice {
    /// The device's name (its directory in `/sys/bus/platform/devices`).
    pub name: String,
    /// The driver it is bound to.
    pub driver: Option<String>,
    /// Its `driver_override`, when set.
    pub driver_override: Option<String>,
    /// Its IOMMU group.
    pub iommu_group: Option<u32>,
    /// Whether that group is one of vfio's no-IOMMU groups.
    pub noiommu: bool,
    /// Its device-tree `compatible` strings (empty without a DT node).
    pub compatible: Vec<String>,
    /// Attributes that could not be read or made no sense, one line each.
    pub problems: Vec<String>,
}

impl HostDevice {
    /// Whether the device is bound to `vfio-platform`.
    pub fn is_vfio(&self) -> bool {
        self.driver.as_deref() == Some(VFIO_PLATFORM_DRIVER)
    }
}

/// What `bind` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindOutcome {
    /// The driver the device was bound to before (`None`: none).
    pub previous_driver: Option<String>,
    /// Whether it was already bound to `vfio-platform` (nothing was written).
    pub already_bound: bool,
    /// Its IOMMU group after binding.
    pub iommu_group: Option<u32>,
    /// Whether that group is a no-IOMMU group (`/dev/vfio/noiommu-N`).
    pub noiommu: bool,
    /// Other devices of the group still bound to a driver other than vfio-platform
    /// ("NAME (DRIVER)"): the group is not viable until they are bound too.
    pub group_blockers: Vec<String>,
}

/// What `unbind` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnbindOutcome {
    /// Whether the device was bound to `vfio-platform` (and so was released).
    pub was_vfio: bool,
    /// The driver the host bound it to after reprobing (`None`: none took it).
    pub driver: Option<String>,
}

/// Called after each sysfs write with the path and the value written. On a real host the
/// kernel reacts to the write; tests pass a fake kernel that updates the fake tree.
type AfterWrite<'a> = &'a dyn Fn(&Path, &str);

fn write_attr(path: &Path, value: &str, after: AfterWrite<'_>) -> Result<(), VfioError> {
    let describe = |e: &std::io::Error| {
        let hint = match e.kind() {
            ErrorKind::PermissionDenied => " (needs root)",
            _ => "",
        };
        format!("write {value:?} to {}{hint}", path.display())
    };
    // No create: sysfs attributes exist or the kernel does not have the feature.
    let mut f = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(|e| VfioError::Io {
            op: describe(&e),
            source: e,
        })?;
    // One write(2): sysfs stores take the whole value in one call.
    f.write_all(value.as_bytes()).map_err(|e| VfioError::Io {
        op: describe(&e),
        source: e,
    })?;
    drop(f);
    after(path, value);
    Ok(())
}

fn require_device(root: &Path, name: &str) -> Result<(), VfioError> {
    sysfs::check_device_name(name)?;
    if sysfs::device_exists(root, name) {
        Ok(())
    } else {
        Err(VfioError::NotFound(format!(
            "no platform device {name} in {} (`breadboard vfio list` shows the host's platform \
             devices)",
            sysfs::platform_devices(root).display()
        )))
    }
}

fn require_vfio_driver(root: &Path) -> Result<(), VfioError> {
    if sysfs::driver_dir(root, VFIO_PLATFORM_DRIVER).is_dir() {
        Ok(())
    } else {
        Err(VfioError::NotFound(
            "the vfio-platform driver is not loaded: run `modprobe vfio-platform` (as root; the \
             kernel needs CONFIG_VFIO_PLATFORM)"
                .into(),
        ))
    }
}

/// One device's facts; unreadable attributes land in `problems`.
pub fn device(root: &Path, name: &str) -> Result<HostDevice, VfioError> {
    require_device(root, name)?;
    Ok(describe_device(root, name))
}

fn describe_device(root: &Path, name: &str) -> HostDevice {
    let mut d = HostDevice {
        name: name.to_string(),
        ..Default::default()
    };
    match sysfs::driver(root, name) {
        Ok(v) => d.driver = v,
        Err(e) => d.problems.push(format!("driver: {e}")),
    }
    match sysfs::driver_override(root, name) {
        Ok(v) => d.driver_override = v,
        Err(e) => d.problems.push(format!("driver_override: {e}")),
    }
    match sysfs::iommu_group(root, name) {
        Ok(v) => d.iommu_group = v,
        Err(e) => d.problems.push(format!("iommu_group: {e}")),
    }
    d.noiommu = d
        .iommu_group
        .is_some_and(|g| sysfs::group_is_noiommu(root, g));
    match sysfs::compatible(root, name) {
        Ok(v) => d.compatible = v,
        Err(e) => d.problems.push(format!("compatible: {e}")),
    }
    d
}

/// Every platform device of the host, sorted by name.
pub fn list(root: &Path) -> Result<Vec<HostDevice>, VfioError> {
    let dir = sysfs::platform_devices(root);
    let rd = std::fs::read_dir(&dir).map_err(|e| {
        if e.kind() == ErrorKind::NotFound {
            VfioError::NotFound(format!(
                "{} does not exist: is sysfs mounted at {}?",
                dir.display(),
                root.display()
            ))
        } else {
            VfioError::Io {
                op: format!("read directory {}", dir.display()),
                source: e,
            }
        }
    })?;
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| sysfs::check_device_name(n).is_ok())
        .collect();
    names.sort();
    Ok(names.iter().map(|n| describe_device(root, n)).collect())
}

/// Whether the `vfio-platform` driver is loaded (`ROOT/bus/platform/drivers/vfio-platform`).
pub fn vfio_platform_loaded(root: &Path) -> bool {
    sysfs::driver_dir(root, VFIO_PLATFORM_DRIVER).is_dir()
}

/// Binds device `name` to `vfio-platform`: sets its `driver_override`, unbinds it from its
/// current driver, asks the bus to reprobe it, and checks that vfio-platform took it. When it
/// did not, the override is cleared and the device reprobed, so the host gets it back.
pub fn bind(root: &Path, name: &str) -> Result<BindOutcome, VfioError> {
    bind_with(root, name, &|_, _| {})
}

fn bind_with(root: &Path, name: &str, after: AfterWrite<'_>) -> Result<BindOutcome, VfioError> {
    require_device(root, name)?;
    require_vfio_driver(root)?;
    let previous = sysfs::driver(root, name)?;
    if previous.as_deref() == Some(VFIO_PLATFORM_DRIVER) {
        return Ok(outcome(root, name, previous, true));
    }
    // vfio-platform refuses a device without an IOMMU group unless no-IOMMU mode is on (then
    // vfio makes a fake group when it binds).
    if sysfs::iommu_group(root, name)?.is_none() && !sysfs::noiommu_enabled(root) {
        return Err(VfioError::NotFound(format!(
            "{name} has no IOMMU group: enable the host's IOMMU for it (an `iommus` property in \
             the host device tree and the IOMMU's driver), or, on a host without one, `modprobe \
             vfio enable_unsafe_noiommu_mode=1` (no DMA isolation; taints the kernel)"
        )));
    }
    let dev = sysfs::device_dir(root, name);
    write_attr(&dev.join("driver_override"), VFIO_PLATFORM_DRIVER, after)?;
    if let Some(d) = &previous {
        let unbind = sysfs::driver_dir(root, d).join("unbind");
        if let Err(e) = write_attr(&unbind, name, after) {
            restore(root, name, after);
            return Err(e);
        }
    }
    let probe = root.join("bus/platform/drivers_probe");
    let probed = write_attr(&probe, name, after);
    let now = sysfs::driver(root, name)?;
    if now.as_deref() == Some(VFIO_PLATFORM_DRIVER) {
        return Ok(outcome(root, name, previous, false));
    }
    restore(root, name, after);
    let why = match probed {
        Err(e) => format!("the probe failed ({e})"),
        Ok(()) => format!(
            "it is now bound to {}",
            now.as_deref().unwrap_or("no driver")
        ),
    };
    let reset_hint =
        if sysfs::read_text(&root.join("module/vfio_platform/parameters/reset_required"))
            .ok()
            .flatten()
            .is_some_and(|v| v == "Y" || v == "1")
        {
            "; vfio-platform refuses devices it has no reset handler for while its reset_required \
         parameter is on: reload it with `modprobe -r vfio-platform && modprobe vfio-platform \
         reset_required=0`"
        } else {
            ""
        };
    Err(VfioError::Unsupported(format!(
        "vfio-platform did not take {name}: {why} (see `dmesg`){reset_hint}"
    )))
}

/// Best effort after a failed bind: clear the override and let the host's driver take the
/// device back. Errors here would hide the original one, so they are only logged.
fn restore(root: &Path, name: &str, after: AfterWrite<'_>) {
    let dev = sysfs::device_dir(root, name);
    if let Err(e) = write_attr(&dev.join("driver_override"), "\n", after) {
        tracing::warn!("vfio: could not clear the driver_override of {name}: {e}");
    }
    if let Err(e) = write_attr(&root.join("bus/platform/drivers_probe"), name, after) {
        tracing::warn!("vfio: could not reprobe {name}: {e}");
    }
}

fn outcome(root: &Path, name: &str, previous: Option<String>, already: bool) -> BindOutcome {
    let group = sysfs::iommu_group(root, name).ok().flatten();
    let group_blockers = group
        .map(|g| {
            sysfs::group_devices(root, g)
                .into_iter()
                .filter(|d| d != name)
                .filter_map(|d| {
                    let drv = sysfs::driver(root, &d).ok().flatten()?;
                    (drv != VFIO_PLATFORM_DRIVER).then(|| format!("{d} ({drv})"))
                })
                .collect()
        })
        .unwrap_or_default();
    BindOutcome {
        previous_driver: previous,
        already_bound: already,
        iommu_group: group,
        noiommu: group.is_some_and(|g| sysfs::group_is_noiommu(root, g)),
        group_blockers,
    }
}

/// Gives device `name` back to the host: unbinds it from `vfio-platform`, clears its
/// `driver_override` and reprobes it so its own driver can take it. A device bound to another
/// driver is left alone (only a leftover `vfio-platform` override is cleared).
pub fn unbind(root: &Path, name: &str) -> Result<UnbindOutcome, VfioError> {
    unbind_with(root, name, &|_, _| {})
}

fn unbind_with(root: &Path, name: &str, after: AfterWrite<'_>) -> Result<UnbindOutcome, VfioError> {
    require_device(root, name)?;
    let dev = sysfs::device_dir(root, name);
    let current = sysfs::driver(root, name)?;
    let was_vfio = current.as_deref() == Some(VFIO_PLATFORM_DRIVER);
    if current.is_some() && !was_vfio {
        if sysfs::driver_override(root, name)?.as_deref() == Some(VFIO_PLATFORM_DRIVER) {
            write_attr(&dev.join("driver_override"), "\n", after)?;
        }
        return Ok(UnbindOutcome {
            was_vfio: false,
            driver: current,
        });
    }
    if was_vfio {
        let unbind = sysfs::driver_dir(root, VFIO_PLATFORM_DRIVER).join("unbind");
        write_attr(&unbind, name, after)?;
    }
    // An empty value (just the newline) clears the override.
    write_attr(&dev.join("driver_override"), "\n", after)?;
    write_attr(&root.join("bus/platform/drivers_probe"), name, after)?;
    Ok(UnbindOutcome {
        was_vfio,
        driver: sysfs::driver(root, name)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sysfs::testutil::*;
    use std::cell::RefCell;
    use std::path::PathBuf;

    /// A fake platform bus: reacts to writes as the kernel would. `native` maps a device to the
    /// driver that takes it when it has no override; `vfio_probe_fails` makes vfio-platform
    /// refuse devices (as with `reset_required` and no reset handler).
    struct FakeKernel {
        root: PathBuf,
        native: Vec<(String, String)>,
        vfio_probe_fails: bool,
        log: RefCell<Vec<(String, String)>>,
    }

    impl FakeKernel {
        fn new(root: &Path) -> FakeKernel {
            FakeKernel {
                root: root.to_path_buf(),
                native: Vec::new(),
                vfio_probe_fails: false,
                log: RefCell::new(Vec::new()),
            }
        }

        fn react(&self, path: &Path, value: &str) {
            let rel = path
                .strip_prefix(&self.root)
                .expect("write inside the tree")
                .to_string_lossy()
                .to_string();
            self.log.borrow_mut().push((rel.clone(), value.to_string()));
            let driver_link = |dev: &str| sysfs::device_dir(&self.root, dev).join("driver");
            if rel.ends_with("/unbind") {
                std::fs::remove_file(driver_link(value)).expect("unbind a bound device");
            } else if rel == "bus/platform/drivers_probe" {
                if driver_link(value).symlink_metadata().is_ok() {
                    return; // already bound: the kernel leaves it
                }
                let ovr = sysfs::driver_override(&self.root, value).expect("override");
                let target = match ovr {
                    Some(d) if d == VFIO_PLATFORM_DRIVER && self.vfio_probe_fails => None,
                    Some(d) => Some(d),
                    None => self
                        .native
                        .iter()
                        .find(|(dev, _)| dev == value)
                        .map(|(_, d)| d.clone()),
                };
                if let Some(d) = target
                    && sysfs::driver_dir(&self.root, &d).is_dir()
                {
                    std::os::unix::fs::symlink(format!("../../drivers/{d}"), driver_link(value))
                        .expect("bind");
                }
            }
        }

        fn writes(&self) -> Vec<(String, String)> {
            self.log.borrow().clone()
        }
    }

    fn with_vfio_driver(root: &Path) {
        put(root, "bus/platform/drivers/vfio-platform/unbind", b"");
        put(root, "bus/platform/drivers/vfio-platform/bind", b"");
    }

    fn with_driver(root: &Path, d: &str) {
        put(root, &format!("bus/platform/drivers/{d}/unbind"), b"");
    }

    #[test]
    fn test_list_reports_driver_group_and_compatible() {
        let t = TempDir::new("host-list");
        let root = t.path();
        fake_device(root, "10000.eth", Some("macb"), Some(2));
        put(
            root,
            "bus/platform/devices/10000.eth/of_node/compatible",
            b"cdns,macb\0cdns,gem\0",
        );
        fake_device(root, "20000.gpio", Some("vfio-platform"), Some(3));
        put(root, "kernel/iommu_groups/3/name", b"vfio-noiommu\n");
        fake_device(root, "30000.bad", None, None);
        link(
            root,
            "bus/platform/devices/30000.bad/iommu_group",
            "../x/notanumber",
        );
        put(
            root,
            "bus/platform/devices/30000.bad/of_node/compatible",
            b"\xff\xfe\0ok\0",
        );
        let l = list(root).expect("list");
        let names: Vec<&str> = l.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["10000.eth", "20000.gpio", "30000.bad"]);
        assert_eq!(l[0].driver.as_deref(), Some("macb"));
        assert_eq!(l[0].iommu_group, Some(2));
        assert_eq!(l[0].compatible, ["cdns,macb", "cdns,gem"]);
        assert!(!l[0].is_vfio() && l[0].problems.is_empty());
        assert!(l[1].is_vfio() && l[1].noiommu);
        assert_eq!(l[2].driver, None);
        assert_eq!(l[2].iommu_group, None);
        assert_eq!(l[2].compatible, ["ok"]);
        assert_eq!(l[2].problems.len(), 1, "{:?}", l[2].problems);
        assert!(l[2].problems[0].starts_with("iommu_group:"));
    }

    #[test]
    fn test_list_without_sysfs_is_a_clear_error() {
        let t = TempDir::new("host-nosys");
        let e = list(t.path()).expect_err("no tree");
        assert!(matches!(&e, VfioError::NotFound(m) if m.contains("is sysfs mounted")));
    }

    #[test]
    fn test_bind_writes_override_unbind_probe_in_order() {
        let t = TempDir::new("host-bind");
        let root = t.path();
        with_vfio_driver(root);
        with_driver(root, "macb");
        fake_device(root, "10000.eth", Some("macb"), Some(2));
        let k = FakeKernel::new(root);
        let out = bind_with(root, "10000.eth", &|p, v| k.react(p, v)).expect("bind");
        assert_eq!(
            k.writes(),
            [
                (
                    "bus/platform/devices/10000.eth/driver_override".to_string(),
                    "vfio-platform".to_string()
                ),
                (
                    "bus/platform/drivers/macb/unbind".to_string(),
                    "10000.eth".to_string()
                ),
                (
                    "bus/platform/drivers_probe".to_string(),
                    "10000.eth".to_string()
                ),
            ]
        );
        assert_eq!(
            std::fs::read_to_string(root.join("bus/platform/devices/10000.eth/driver_override"))
                .expect("read"),
            "vfio-platform"
        );
        assert_eq!(
            out,
            BindOutcome {
                previous_driver: Some("macb".into()),
                already_bound: false,
                iommu_group: Some(2),
                noiommu: false,
                group_blockers: vec![],
            }
        );
        assert_eq!(
            sysfs::driver(root, "10000.eth").expect("driver").as_deref(),
            Some("vfio-platform")
        );
    }

    #[test]
    fn test_bind_an_unbound_device_skips_unbind_and_reports_group_blockers() {
        let t = TempDir::new("host-bind-free");
        let root = t.path();
        with_vfio_driver(root);
        with_driver(root, "dw-dma");
        fake_device(root, "a.eth", None, Some(4));
        fake_device(root, "b.dma", Some("dw-dma"), Some(4));
        let k = FakeKernel::new(root);
        let out = bind_with(root, "a.eth", &|p, v| k.react(p, v)).expect("bind");
        let files: Vec<String> = k.writes().into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            files,
            [
                "bus/platform/devices/a.eth/driver_override",
                "bus/platform/drivers_probe"
            ]
        );
        assert_eq!(out.previous_driver, None);
        assert_eq!(out.group_blockers, ["b.dma (dw-dma)"]);
    }

    #[test]
    fn test_bind_already_bound_writes_nothing() {
        let t = TempDir::new("host-bind-again");
        let root = t.path();
        with_vfio_driver(root);
        fake_device(root, "a.eth", Some("vfio-platform"), Some(1));
        let k = FakeKernel::new(root);
        let out = bind_with(root, "a.eth", &|p, v| k.react(p, v)).expect("bind");
        assert!(out.already_bound);
        assert!(k.writes().is_empty());
    }

    #[test]
    fn test_bind_without_vfio_platform_driver_says_modprobe() {
        let t = TempDir::new("host-bind-nodrv");
        let root = t.path();
        fake_device(root, "a.eth", Some("macb"), Some(1));
        let e = bind(root, "a.eth").expect_err("no driver");
        assert!(matches!(&e, VfioError::NotFound(_)));
        assert!(e.to_string().contains("modprobe vfio-platform"), "{e}");
    }

    #[test]
    fn test_bind_without_group_explains_iommu_unless_noiommu() {
        let t = TempDir::new("host-bind-nogroup");
        let root = t.path();
        with_vfio_driver(root);
        fake_device(root, "a.eth", None, None);
        let k = FakeKernel::new(root);
        let e = bind_with(root, "a.eth", &|p, v| k.react(p, v)).expect_err("no group");
        let m = e.to_string();
        assert!(m.starts_with("a.eth has no IOMMU group"), "{m}");
        assert!(m.contains("enable_unsafe_noiommu_mode=1"), "{m}");
        assert!(k.writes().is_empty(), "nothing written before the check");
        put(
            root,
            "module/vfio/parameters/enable_unsafe_noiommu_mode",
            b"Y\n",
        );
        bind_with(root, "a.eth", &|p, v| k.react(p, v)).expect("noiommu bind");
    }

    #[test]
    fn test_bind_refused_by_vfio_platform_restores_the_host_driver() {
        let t = TempDir::new("host-bind-refused");
        let root = t.path();
        with_vfio_driver(root);
        with_driver(root, "macb");
        fake_device(root, "a.eth", Some("macb"), Some(1));
        put(
            root,
            "module/vfio_platform/parameters/reset_required",
            b"Y\n",
        );
        let mut k = FakeKernel::new(root);
        k.native.push(("a.eth".into(), "macb".into()));
        k.vfio_probe_fails = true;
        let e = bind_with(root, "a.eth", &|p, v| k.react(p, v)).expect_err("refused");
        let m = e.to_string();
        assert!(m.starts_with("vfio-platform did not take a.eth"), "{m}");
        assert!(m.contains("reset_required=0"), "{m}");
        assert_eq!(
            sysfs::driver(root, "a.eth").expect("driver").as_deref(),
            Some("macb"),
            "host driver back"
        );
        assert_eq!(sysfs::driver_override(root, "a.eth").expect("ovr"), None);
    }

    #[test]
    fn test_bind_missing_or_bad_name() {
        let t = TempDir::new("host-bind-missing");
        let root = t.path();
        with_vfio_driver(root);
        assert!(
            matches!(bind(root, "nope"), Err(VfioError::NotFound(m)) if m.contains("vfio list"))
        );
        assert!(matches!(bind(root, "../../x"), Err(VfioError::Invalid(_))));
    }

    #[test]
    fn test_bind_write_error_is_reported_with_the_file() {
        let t = TempDir::new("host-bind-nofile");
        let root = t.path();
        with_vfio_driver(root);
        fake_device(root, "a.eth", None, Some(1));
        std::fs::remove_file(root.join("bus/platform/devices/a.eth/driver_override")).expect("rm");
        let e = bind(root, "a.eth").expect_err("no override file");
        assert!(
            matches!(&e, VfioError::Io { op, .. } if op.contains("driver_override")),
            "{e}"
        );
    }

    #[test]
    fn test_unbind_releases_clears_override_and_reprobes() {
        let t = TempDir::new("host-unbind");
        let root = t.path();
        with_vfio_driver(root);
        with_driver(root, "macb");
        fake_device(root, "a.eth", Some("vfio-platform"), Some(1));
        put(
            root,
            "bus/platform/devices/a.eth/driver_override",
            b"vfio-platform\n",
        );
        let mut k = FakeKernel::new(root);
        k.native.push(("a.eth".into(), "macb".into()));
        let out = unbind_with(root, "a.eth", &|p, v| k.react(p, v)).expect("unbind");
        assert_eq!(
            k.writes(),
            [
                (
                    "bus/platform/drivers/vfio-platform/unbind".to_string(),
                    "a.eth".to_string()
                ),
                (
                    "bus/platform/devices/a.eth/driver_override".to_string(),
                    "\n".to_string()
                ),
                (
                    "bus/platform/drivers_probe".to_string(),
                    "a.eth".to_string()
                ),
            ]
        );
        assert_eq!(
            out,
            UnbindOutcome {
                was_vfio: true,
                driver: Some("macb".into())
            }
        );
    }

    #[test]
    fn test_unbind_leaves_a_device_of_another_driver_alone() {
        let t = TempDir::new("host-unbind-other");
        let root = t.path();
        with_driver(root, "macb");
        fake_device(root, "a.eth", Some("macb"), Some(1));
        let k = FakeKernel::new(root);
        let out = unbind_with(root, "a.eth", &|p, v| k.react(p, v)).expect("unbind");
        assert!(!out.was_vfio);
        assert_eq!(out.driver.as_deref(), Some("macb"));
        assert!(k.writes().is_empty());
    }

    #[test]
    fn test_device_reports_one_device() {
        let t = TempDir::new("host-device");
        let root = t.path();
        fake_device(root, "a.eth", Some("macb"), Some(9));
        let d = device(root, "a.eth").expect("device");
        assert_eq!(
            (d.driver.as_deref(), d.iommu_group),
            (Some("macb"), Some(9))
        );
        assert!(device(root, "b").is_err());
    }
}
