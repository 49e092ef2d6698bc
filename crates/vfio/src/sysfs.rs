//! Reading Linux sysfs for platform devices: the driver a device is bound to, its IOMMU group,
//! its `driver_override`, and the properties of its device-tree node
//! (`Documentation/ABI/testing/sysfs-bus-platform`, `sysfs-kernel-iommu_groups`).
//!
//! Everything read here is input: files may be missing, truncated, huge or not UTF-8, links may
//! point anywhere. Nothing panics; every helper takes the sysfs root (`/sys` on a real host, a
//! temporary tree in tests).

// Reads untrusted input (a vfio-user server, the kernel, sysfs files, the guest): no panicking
// shortcuts outside tests.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};

use crate::backend::{DtHints, VfioError};

/// The largest attribute or DT property read (sysfs attributes are one page; DT properties
/// can be longer, but a node's useful ones are small).
pub const MAX_ATTR_BYTES: u64 = 64 * 1024;
/// The most DT properties taken from one node.
pub const MAX_DT_PROPS: usize = 256;
/// The name of Linux's VFIO driver for platform devices.
pub const VFIO_PLATFORM_DRIVER: &str = "vfio-platform";
/// The name `vfio` gives the fake IOMMU groups it makes in no-IOMMU mode.
pub const NOIOMMU_GROUP_NAME: &str = "vfio-noiommu";

/// The default sysfs root.
pub const DEFAULT_ROOT: &str = "/sys";

/// Refuses names that are not one plain path component (`..`, `a/b`, empty, NUL): a device name
/// is user input joined to sysfs paths.
pub fn check_device_name(name: &str) -> Result<(), VfioError> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= 255
        && !name.contains(['/', '\0', '\n']);
    if ok {
        Ok(())
    } else {
        Err(VfioError::Invalid(format!(
            "{name:?} is not a platform device name (one sysfs directory name, like \
             `10000000.ethernet`; `breadboard vfio list` shows them)"
        )))
    }
}

/// `ROOT/bus/platform/devices`.
pub fn platform_devices(root: &Path) -> PathBuf {
    root.join("bus/platform/devices")
}

/// `ROOT/bus/platform/devices/NAME`.
pub fn device_dir(root: &Path, name: &str) -> PathBuf {
    platform_devices(root).join(name)
}

/// `ROOT/bus/platform/drivers/DRIVER`.
pub fn driver_dir(root: &Path, driver: &str) -> PathBuf {
    root.join("bus/platform/drivers").join(driver)
}

/// Whether `ROOT/bus/platform/devices/NAME` exists.
pub fn device_exists(root: &Path, name: &str) -> bool {
    device_dir(root, name).exists()
}

/// Reads a file of at most [`MAX_ATTR_BYTES`]; `Ok(None)` when it does not exist. Longer files
/// are an error, not silently cut, so a property is never half read.
pub fn read_bounded(path: &Path) -> Result<Option<Vec<u8>>, VfioError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(VfioError::Io {
                op: format!("open {}", path.display()),
                source: e,
            });
        }
    };
    let mut buf = Vec::new();
    file.take(MAX_ATTR_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| VfioError::Io {
            op: format!("read {}", path.display()),
            source: e,
        })?;
    if buf.len() as u64 > MAX_ATTR_BYTES {
        return Err(VfioError::Protocol(format!(
            "{} is longer than {MAX_ATTR_BYTES} bytes",
            path.display()
        )));
    }
    Ok(Some(buf))
}

/// Reads a one-line text attribute, trimmed; `Ok(None)` when it does not exist.
pub fn read_text(path: &Path) -> Result<Option<String>, VfioError> {
    Ok(read_bounded(path)?.map(|b| {
        String::from_utf8_lossy(&b)
            .trim_matches(|c: char| c.is_whitespace() || c == '\0')
            .to_string()
    }))
}

/// The last component of the target of symlink `path`; `Ok(None)` when there is no such link.
pub fn link_name(path: &Path) -> Result<Option<String>, VfioError> {
    match std::fs::read_link(path) {
        Ok(target) => match target.file_name().and_then(|n| n.to_str()) {
            Some(n) => Ok(Some(n.to_string())),
            None => Err(VfioError::Protocol(format!(
                "{} points to {}, which names nothing",
                path.display(),
                target.display()
            ))),
        },
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(VfioError::Io {
            op: format!("readlink {}", path.display()),
            source: e,
        }),
    }
}

/// The driver device `name` is bound to (`…/NAME/driver` link), if any.
pub fn driver(root: &Path, name: &str) -> Result<Option<String>, VfioError> {
    link_name(&device_dir(root, name).join("driver"))
}

/// Parses an IOMMU group directory name: a decimal number.
pub fn parse_group(name: &str) -> Option<u32> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}

/// The IOMMU group of device `name` (`…/NAME/iommu_group` link), if it has one.
pub fn iommu_group(root: &Path, name: &str) -> Result<Option<u32>, VfioError> {
    let link = device_dir(root, name).join("iommu_group");
    match link_name(&link)? {
        None => Ok(None),
        Some(g) => parse_group(&g).map(Some).ok_or_else(|| {
            VfioError::Protocol(format!(
                "{} points to group {g:?}, which is not a group number",
                link.display()
            ))
        }),
    }
}

/// Whether IOMMU group `group` is one of vfio's fake no-IOMMU groups
/// (`ROOT/kernel/iommu_groups/N/name` reads `vfio-noiommu`).
pub fn group_is_noiommu(root: &Path, group: u32) -> bool {
    let p = root.join(format!("kernel/iommu_groups/{group}/name"));
    matches!(read_text(&p), Ok(Some(n)) if n == NOIOMMU_GROUP_NAME)
}

/// The devices in IOMMU group `group` (`ROOT/kernel/iommu_groups/N/devices`), sorted; empty
/// when the directory cannot be read.
pub fn group_devices(root: &Path, group: u32) -> Vec<String> {
    let dir = root.join(format!("kernel/iommu_groups/{group}/devices"));
    let mut out: Vec<String> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}

/// The `driver_override` of device `name`: `None` when unset (the kernel reads `(null)`) or
/// when the file does not exist.
pub fn driver_override(root: &Path, name: &str) -> Result<Option<String>, VfioError> {
    let v = read_text(&device_dir(root, name).join("driver_override"))?;
    Ok(v.filter(|s| !s.is_empty() && s != "(null)"))
}

/// Whether the `enable_unsafe_noiommu_mode` parameter of the `vfio` module reads `Y`.
pub fn noiommu_enabled(root: &Path) -> bool {
    let p = root.join("module/vfio/parameters/enable_unsafe_noiommu_mode");
    matches!(read_text(&p), Ok(Some(v)) if v == "Y" || v == "1")
}

/// Splits a DT string-list property (`compatible`): NUL-separated strings. Empty strings and
/// strings that are not printable ASCII are dropped, since they cannot be written back into a
/// guest's device tree meaningfully.
pub fn parse_string_list(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty() && s.iter().all(|b| (0x20..0x7f).contains(b)))
        .filter_map(|s| std::str::from_utf8(s).ok())
        .map(str::to_string)
        .collect()
}

/// The `compatible` list of device `name`'s DT node; empty without a node or property.
pub fn compatible(root: &Path, name: &str) -> Result<Vec<String>, VfioError> {
    let p = device_dir(root, name).join("of_node/compatible");
    Ok(read_bounded(&p)?
        .map(|b| parse_string_list(&b))
        .unwrap_or_default())
}

/// Reads a device-tree node directory as the kernel exposes it (one file per property, child
/// nodes as subdirectories): `compatible` is split, `name` (a pseudo-property the kernel adds
/// for the node name) is left out, every other regular file becomes a raw property. Child
/// nodes and links are skipped. Properties are sorted by name; at most [`MAX_DT_PROPS`] are
/// read and a larger node is an error.
pub fn read_dt_node(dir: &Path) -> Result<DtHints, VfioError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(DtHints::default()),
        Err(e) => {
            return Err(VfioError::Io {
                op: format!("read directory {}", dir.display()),
                source: e,
            });
        }
    };
    let mut hints = DtHints::default();
    let mut names = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| VfioError::Io {
            op: format!("read directory {}", dir.display()),
            source: e,
        })?;
        let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
        if !is_file {
            continue;
        }
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name == "name" {
            continue;
        }
        names.push(name);
        if names.len() > MAX_DT_PROPS {
            return Err(VfioError::Protocol(format!(
                "device-tree node {} has more than {MAX_DT_PROPS} properties",
                dir.display()
            )));
        }
    }
    names.sort();
    for name in names {
        let Some(value) = read_bounded(&dir.join(&name))? else {
            continue; // removed while we read: nothing to take
        };
        if name == "compatible" {
            hints.compatible = parse_string_list(&value);
        } else {
            hints.props.push((name, value));
        }
    }
    Ok(hints)
}

/// A temporary directory removed on drop, for tests against fake sysfs trees.
#[cfg(test)]
pub(crate) mod testutil {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU32, Ordering};

    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new(tag: &str) -> TempDir {
            static N: AtomicU32 = AtomicU32::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let p = std::env::temp_dir().join(format!("bb-vfio-{tag}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).expect("create temp dir");
            TempDir(p)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Writes `data` at `root/rel`, creating parents.
    pub fn put(root: &Path, rel: &str, data: &[u8]) {
        let p = root.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(p, data).expect("write");
    }

    /// Makes `root/rel` a symlink to `target`, creating parents.
    pub fn link(root: &Path, rel: &str, target: &str) {
        let p = root.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        let _ = std::fs::remove_file(&p);
        std::os::unix::fs::symlink(target, p).expect("symlink");
    }

    /// A platform device `name` in a fake sysfs tree at `root`: its directory, an unset
    /// `driver_override`, the driver link when `driver` is given (and the driver's directory),
    /// the IOMMU group link when `group` is given (and the group's directory listing it).
    pub fn fake_device(root: &Path, name: &str, driver: Option<&str>, group: Option<u32>) {
        let dev = format!("bus/platform/devices/{name}");
        put(root, &format!("{dev}/driver_override"), b"(null)\n");
        if let Some(d) = driver {
            std::fs::create_dir_all(root.join(format!("bus/platform/drivers/{d}"))).expect("mkdir");
            link(
                root,
                &format!("{dev}/driver"),
                &format!("../../drivers/{d}"),
            );
        }
        if let Some(g) = group {
            let gdir = format!("kernel/iommu_groups/{g}");
            std::fs::create_dir_all(root.join(format!("{gdir}/devices"))).expect("mkdir");
            link(root, &format!("{gdir}/devices/{name}"), "../../../../bus");
            link(
                root,
                &format!("{dev}/iommu_group"),
                &format!("../../../../kernel/iommu_groups/{g}"),
            );
        }
        put(root, "bus/platform/drivers_probe", b"");
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;

    #[test]
    fn test_check_device_name_refuses_paths_and_empty() {
        assert!(check_device_name("10000000.ethernet").is_ok());
        assert!(check_device_name("amba:serial@1000").is_ok());
        for bad in ["", ".", "..", "a/b", "../x", "a\0b", "a\nb"] {
            assert!(
                matches!(check_device_name(bad), Err(VfioError::Invalid(_))),
                "{bad:?}"
            );
        }
        assert!(check_device_name(&"x".repeat(256)).is_err());
    }

    #[test]
    fn test_parse_string_list_splits_on_nul_and_drops_junk() {
        assert_eq!(
            parse_string_list(b"arm,pl011\0arm,primecell\0"),
            vec!["arm,pl011", "arm,primecell"]
        );
        assert_eq!(parse_string_list(b"no-terminator"), vec!["no-terminator"]);
        assert_eq!(parse_string_list(b"\0\0a\0\0b"), vec!["a", "b"]);
        assert_eq!(parse_string_list(b"ok\0bad\xff\0t\tab\0"), vec!["ok"]);
        assert!(parse_string_list(b"").is_empty());
    }

    #[test]
    fn test_parse_group_accepts_only_decimal() {
        assert_eq!(parse_group("0"), Some(0));
        assert_eq!(parse_group("42"), Some(42));
        for bad in ["", "-1", "+1", "4a", "0x10", "99999999999", " 4"] {
            assert_eq!(parse_group(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn test_driver_group_and_override_from_fake_tree() {
        let t = TempDir::new("sysfs");
        let root = t.path();
        fake_device(root, "1000.uart", Some("serial8250"), Some(7));
        fake_device(root, "2000.eth", None, None);
        put(
            root,
            "bus/platform/devices/2000.eth/driver_override",
            b"vfio-platform\n",
        );
        assert_eq!(
            driver(root, "1000.uart").expect("driver").as_deref(),
            Some("serial8250")
        );
        assert_eq!(iommu_group(root, "1000.uart").expect("group"), Some(7));
        assert_eq!(driver_override(root, "1000.uart").expect("ovr"), None);
        assert_eq!(driver(root, "2000.eth").expect("driver"), None);
        assert_eq!(iommu_group(root, "2000.eth").expect("group"), None);
        assert_eq!(
            driver_override(root, "2000.eth").expect("ovr").as_deref(),
            Some("vfio-platform")
        );
        assert_eq!(group_devices(root, 7), vec!["1000.uart"]);
        assert!(!group_is_noiommu(root, 7));
        put(root, "kernel/iommu_groups/7/name", b"vfio-noiommu\n");
        assert!(group_is_noiommu(root, 7));
    }

    #[test]
    fn test_malformed_group_link_is_a_protocol_error() {
        let t = TempDir::new("sysfs-badgroup");
        let root = t.path();
        fake_device(root, "x", None, None);
        link(
            root,
            "bus/platform/devices/x/iommu_group",
            "../groups/banana",
        );
        assert!(matches!(
            iommu_group(root, "x"),
            Err(VfioError::Protocol(m)) if m.contains("banana")
        ));
    }

    #[test]
    fn test_oversized_attribute_is_refused_not_truncated() {
        let t = TempDir::new("sysfs-big");
        let root = t.path();
        let big = vec![b'a'; (MAX_ATTR_BYTES + 1) as usize];
        put(root, "big", &big);
        assert!(matches!(
            read_bounded(&root.join("big")),
            Err(VfioError::Protocol(_))
        ));
        put(root, "ok", &big[..MAX_ATTR_BYTES as usize]);
        assert_eq!(
            read_bounded(&root.join("ok"))
                .expect("read")
                .map(|v| v.len()),
            Some(MAX_ATTR_BYTES as usize)
        );
        assert_eq!(read_bounded(&root.join("missing")).expect("read"), None);
    }

    #[test]
    fn test_read_dt_node_splits_compatible_keeps_raw_props_skips_children() {
        let t = TempDir::new("sysfs-dt");
        let node = t.path().join("ethernet@10000");
        put(&node, "compatible", b"vendor,eth-v2\0vendor,eth\0");
        put(&node, "name", b"ethernet\0");
        put(
            &node,
            "reg",
            &[0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0],
        );
        put(&node, "phy-mode", b"rgmii\0");
        put(&node, "dma-coherent", b"");
        put(&node, "mdio/compatible", b"child\0");
        std::os::unix::fs::symlink("/nonexistent", node.join("a-link")).expect("symlink");
        let h = read_dt_node(&node).expect("node");
        assert_eq!(h.compatible, vec!["vendor,eth-v2", "vendor,eth"]);
        let names: Vec<&str> = h.props.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, vec!["dma-coherent", "phy-mode", "reg"]);
        assert_eq!(h.props[1].1, b"rgmii\0");
        assert_eq!(h.props[2].1.len(), 16);
        assert_eq!(
            read_dt_node(&t.path().join("missing")).expect("missing"),
            DtHints::default()
        );
    }

    #[test]
    fn test_read_dt_node_refuses_too_many_properties() {
        let t = TempDir::new("sysfs-dt-many");
        let node = t.path().join("n");
        for i in 0..=MAX_DT_PROPS {
            put(&node, &format!("p{i}"), b"\0");
        }
        assert!(matches!(read_dt_node(&node), Err(VfioError::Protocol(_))));
    }

    #[test]
    fn test_noiommu_parameter() {
        let t = TempDir::new("sysfs-noiommu");
        let root = t.path();
        assert!(!noiommu_enabled(root));
        put(
            root,
            "module/vfio/parameters/enable_unsafe_noiommu_mode",
            b"N\n",
        );
        assert!(!noiommu_enabled(root));
        put(
            root,
            "module/vfio/parameters/enable_unsafe_noiommu_mode",
            b"Y\n",
        );
        assert!(noiommu_enabled(root));
    }
}
