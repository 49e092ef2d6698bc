//! `breadboard vfio list|bind DEVICE|unbind DEVICE`: the host helper for `-device
//! vfio-platform,host=DEVICE` (issue 7). Lists the host's platform devices with their driver,
//! IOMMU group and `compatible`, and hands a device to Linux's `vfio-platform` driver or back
//! to its own. The work is in `breadboard_vfio::host`; this file parses and prints.

use std::io::Write;
use std::path::{Path, PathBuf};

use breadboard_vfio::host::{self, HostDevice};

const USAGE: &str = "\
usage: breadboard vfio list                 platform devices: driver, IOMMU group, compatible
       breadboard vfio bind DEVICE          hand DEVICE to vfio-platform (needs root)
       breadboard vfio unbind DEVICE        give DEVICE back to its host driver (needs root)
options: --sysfs DIR                        read sysfs at DIR instead of /sys
Then: breadboard ... -device vfio-platform,host=DEVICE
";

/// Runs `breadboard vfio ARGS` (ARGS after `vfio`) and returns the exit code: 0 done, 1 failed,
/// 2 bad usage.
pub fn run(args: &[String]) -> u8 {
    run_to(args, &mut std::io::stdout(), &mut std::io::stderr())
}

fn run_to(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let mut root = PathBuf::from("/sys");
    let mut words: Vec<&str> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if let Some(dir) = a.strip_prefix("--sysfs=") {
            root = PathBuf::from(dir);
        } else if a == "--sysfs" {
            let Some(dir) = it.next() else {
                let _ = write!(err, "breadboard vfio: --sysfs needs a directory\n{USAGE}");
                return 2;
            };
            root = PathBuf::from(dir);
        } else {
            words.push(a);
        }
    }
    let result = match words.as_slice() {
        [] | ["list"] => list(&root, out, err),
        ["bind", dev] => bind(&root, dev, out, err),
        ["unbind", dev] => unbind(&root, dev, out),
        ["help" | "-h" | "--help"] => {
            let _ = out.write_all(USAGE.as_bytes());
            return 0;
        }
        _ => {
            let _ = write!(
                err,
                "breadboard vfio: expected `list`, `bind DEVICE` or `unbind DEVICE`\n{USAGE}"
            );
            return 2;
        }
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(err, "breadboard vfio: {e}");
            1
        }
    }
}

fn group_text(d: &HostDevice) -> String {
    match d.iommu_group {
        Some(g) if d.noiommu => format!("{g} (noiommu)"),
        Some(g) => g.to_string(),
        None => "-".into(),
    }
}

fn list(
    root: &Path,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), breadboard_vfio::backend::VfioError> {
    let devices = host::list(root)?;
    let rows: Vec<[String; 4]> = devices
        .iter()
        .map(|d| {
            [
                d.name.clone(),
                d.driver.clone().unwrap_or_else(|| "-".into()),
                group_text(d),
                if d.compatible.is_empty() {
                    "-".into()
                } else {
                    d.compatible.join(" ")
                },
            ]
        })
        .collect();
    let header = ["DEVICE", "DRIVER", "GROUP", "COMPATIBLE"];
    let width = |col: usize| {
        rows.iter()
            .filter_map(|r| r.get(col))
            .map(String::len)
            .chain(header.get(col).map(|h| h.len()))
            .max()
            .unwrap_or(0)
    };
    let (w0, w1, w2) = (width(0), width(1), width(2));
    let _ = writeln!(
        out,
        "{:<w0$}  {:<w1$}  {:<w2$}  {}",
        header[0], header[1], header[2], header[3]
    );
    for [name, driver, group, compat] in &rows {
        let _ = writeln!(out, "{name:<w0$}  {driver:<w1$}  {group:<w2$}  {compat}");
    }
    for d in &devices {
        for p in &d.problems {
            let _ = writeln!(err, "warning: {}: {p}", d.name);
        }
    }
    if !host::vfio_platform_loaded(root) {
        let _ = writeln!(
            err,
            "note: the vfio-platform driver is not loaded (`modprobe vfio-platform`)"
        );
    }
    Ok(())
}

fn bind(
    root: &Path,
    dev: &str,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), breadboard_vfio::backend::VfioError> {
    let o = host::bind(root, dev)?;
    let node = match o.iommu_group {
        Some(g) if o.noiommu => {
            format!("IOMMU group {g}, /dev/vfio/noiommu-{g} (no IOMMU: the device cannot DMA)")
        }
        Some(g) => format!("IOMMU group {g}, /dev/vfio/{g}"),
        None => "no IOMMU group".into(),
    };
    if o.already_bound {
        let _ = writeln!(out, "{dev} is already bound to vfio-platform ({node})");
    } else {
        let was = o.previous_driver.as_deref().unwrap_or("no driver");
        let _ = writeln!(out, "{dev}: bound to vfio-platform (was {was}); {node}");
    }
    if !o.group_blockers.is_empty() {
        let _ = writeln!(
            err,
            "warning: the IOMMU group also holds {}: bind those too (`breadboard vfio bind \
             DEVICE`) or the group is not usable",
            o.group_blockers.join(", ")
        );
    }
    let _ = writeln!(out, "use it with: -device vfio-platform,host={dev}");
    Ok(())
}

fn unbind(
    root: &Path,
    dev: &str,
    out: &mut dyn Write,
) -> Result<(), breadboard_vfio::backend::VfioError> {
    let o = host::unbind(root, dev)?;
    let now = o.driver.as_deref().unwrap_or("no driver");
    if o.was_vfio {
        let _ = writeln!(
            out,
            "{dev}: released from vfio-platform; now bound to {now}"
        );
    } else {
        let _ = writeln!(
            out,
            "{dev} is bound to {now}, not vfio-platform: left as it is"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Tree(PathBuf);

    impl Tree {
        fn new(tag: &str) -> Tree {
            let p = std::env::temp_dir().join(format!("bb-vfio-cmd-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(p.join("bus/platform/devices")).expect("mkdir");
            Tree(p)
        }

        fn device(&self, name: &str, driver: Option<&str>, group: Option<u32>) {
            let dev = self.0.join("bus/platform/devices").join(name);
            std::fs::create_dir_all(dev.join("of_node")).expect("mkdir");
            std::fs::write(dev.join("driver_override"), "(null)\n").expect("write");
            std::fs::write(dev.join("of_node/compatible"), b"acme,widget\0").expect("write");
            if let Some(d) = driver {
                std::fs::create_dir_all(self.0.join("bus/platform/drivers").join(d))
                    .expect("mkdir");
                std::os::unix::fs::symlink(format!("../../drivers/{d}"), dev.join("driver"))
                    .expect("symlink");
            }
            if let Some(g) = group {
                std::os::unix::fs::symlink(
                    format!("../../../../kernel/iommu_groups/{g}"),
                    dev.join("iommu_group"),
                )
                .expect("symlink");
            }
        }

        fn run(&self, args: &[&str]) -> (u8, String, String) {
            let mut full: Vec<String> = vec!["--sysfs".into(), self.0.display().to_string()];
            full.extend(args.iter().map(|s| s.to_string()));
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let code = run_to(&full, &mut out, &mut err);
            (
                code,
                String::from_utf8(out).expect("utf8"),
                String::from_utf8(err).expect("utf8"),
            )
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn test_vfio_list_prints_a_table_and_the_modprobe_note() {
        let t = Tree::new("list");
        t.device("10000.eth", Some("macb"), Some(2));
        t.device("2.gpio", None, None);
        let (code, out, err) = t.run(&["list"]);
        assert_eq!(code, 0, "{err}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "DEVICE     DRIVER  GROUP  COMPATIBLE");
        assert_eq!(lines[1], "10000.eth  macb    2      acme,widget");
        assert_eq!(lines[2], "2.gpio     -       -      acme,widget");
        assert!(err.contains("modprobe vfio-platform"), "{err}");
    }

    #[test]
    fn test_vfio_bind_reports_missing_driver_and_exits_1() {
        let t = Tree::new("bind");
        t.device("10000.eth", Some("macb"), Some(2));
        let (code, out, err) = t.run(&["bind", "10000.eth"]);
        assert_eq!(code, 1);
        assert!(out.is_empty());
        assert!(
            err.starts_with("breadboard vfio: the vfio-platform driver is not loaded"),
            "{err}"
        );
    }

    #[test]
    fn test_vfio_bind_already_bound_and_unbind_other_driver() {
        let t = Tree::new("already");
        t.device("a.dev", Some("vfio-platform"), Some(4));
        t.device("b.dev", Some("macb"), Some(5));
        let (code, out, _) = t.run(&["bind", "a.dev"]);
        assert_eq!(code, 0);
        assert!(
            out.starts_with("a.dev is already bound to vfio-platform (IOMMU group 4, /dev/vfio/4)"),
            "{out}"
        );
        assert!(out.contains("-device vfio-platform,host=a.dev"));
        let (code, out, _) = t.run(&["unbind", "b.dev"]);
        assert_eq!(code, 0);
        assert_eq!(
            out,
            "b.dev is bound to macb, not vfio-platform: left as it is\n"
        );
    }

    #[test]
    fn test_vfio_bad_usage_exits_2() {
        let t = Tree::new("usage");
        for args in [&["bind"][..], &["frob"], &["bind", "a", "b"], &["--sysfs"]] {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let argv: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            assert_eq!(run_to(&argv, &mut out, &mut err), 2, "{args:?}");
            assert!(String::from_utf8_lossy(&err).contains("usage: breadboard vfio"));
        }
        let (code, out, _) = t.run(&["help"]);
        assert_eq!(code, 0);
        assert!(out.starts_with("usage: breadboard vfio list"));
    }
}
