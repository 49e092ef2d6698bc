//! The committed C header and the Rust `#[repr(C)]` definitions in `sys.rs` must agree: this
//! compiles a probe against `include/breadboard/plugin.h` with the system C compiler and
//! compares every struct size, field offset and constant with the Rust side.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;
use std::mem::{offset_of, size_of};
use std::path::Path;
use std::process::Command;

use breadboard_plugin_api::sys::*;

/// (name, rust value, C expression) for every checked quantity.
fn table() -> Vec<(String, u64, String)> {
    let mut t: Vec<(String, u64, String)> = Vec::new();
    macro_rules! layout {
        ($ty:ident { $($f:ident),* $(,)? }) => {
            t.push((format!("sizeof {}", stringify!($ty)), size_of::<$ty>() as u64,
                    format!("sizeof({})", stringify!($ty))));
            $(
                t.push((format!("{}.{}", stringify!($ty), stringify!($f)),
                        offset_of!($ty, $f) as u64,
                        format!("offsetof({}, {})", stringify!($ty), stringify!($f))));
            )*
        };
    }
    macro_rules! consts {
        ($($c:ident),* $(,)?) => {
            $( t.push((stringify!($c).to_string(), ($c as i64) as u64, format!("(long long)({})", stringify!($c)))); )*
        };
    }
    layout!(bb_host_api {
        size,
        abi_major,
        abi_minor,
        now_ns,
        timer_mod,
        timer_del,
        irq_set,
        dma_read,
        dma_write,
        chr_write,
        log,
        prop_u64,
        prop_bool,
        prop_str,
        fdt_prop_u32,
        fdt_prop_cells,
        fdt_prop_string,
        fdt_prop_empty,
        mark_broken
    });
    layout!(bb_prop_decl {
        size,
        kind,
        name,
        default_value,
        doc,
        max
    });
    layout!(bb_region_decl {
        size,
        reserved,
        name,
        length
    });
    layout!(bb_device_ops {
        size,
        reserved,
        create,
        destroy,
        read,
        write,
        reset,
        timer,
        set_gpio,
        can_receive,
        receive,
        write_fdt,
        snapshot_save,
        snapshot_load
    });
    layout!(bb_device_type {
        size,
        user_creatable,
        name,
        description,
        compatible,
        n_compatible,
        node_name,
        props,
        n_props,
        regions,
        n_regions,
        num_irqs,
        num_gpio_in,
        ops
    });
    layout!(bb_plugin_info {
        size,
        reserved,
        name,
        types,
        n_types
    });
    layout!(bb_plugin_abi {
        magic,
        abi_major,
        abi_minor,
        plugin_info_size,
        device_type_size,
        device_ops_size,
        prop_decl_size,
        region_decl_size,
        host_api_size
    });
    consts!(
        BB_ABI_MAJOR,
        BB_ABI_MINOR,
        BB_PLUGIN_MAGIC,
        BB_PROP_INT,
        BB_PROP_SIZE,
        BB_PROP_BOOL,
        BB_PROP_STR,
        BB_PROP_CHARDEV,
        BB_PROP_LINK,
        BB_LOG_GUEST_ERROR,
        BB_LOG_UNIMP,
        BB_LOG_INFO,
        BB_OK,
        BB_ERR_UNMAPPED,
        BB_ERR_READONLY,
        BB_ERR_MMIO,
        BB_ERR_INVAL,
        BB_ERR_NOSPACE,
        BB_DEVICE_OPS_SIZE_1_0,
        BB_HOST_API_SIZE_1_0
    );
    t
}

#[test]
fn test_header_matches_rust_definitions() {
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("include");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("header-probe");
    std::fs::create_dir_all(&dir).expect("tmpdir");
    let t = table();
    let mut c =
        String::from("#include <breadboard/plugin.h>\n#include <stdio.h>\nint main(void) {\n");
    for (name, _, expr) in &t {
        c.push_str(&format!(
            "    printf(\"%s=%lld\\n\", \"{name}\", (long long)({expr}));\n"
        ));
    }
    c.push_str("    return 0;\n}\n");
    let src = dir.join("probe.c");
    let exe = dir.join("probe");
    std::fs::write(&src, c).expect("write probe");
    let st = Command::new("cc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-I"])
        .arg(&include)
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .status()
        .expect("a C compiler ('cc') is needed to check the header");
    assert!(st.success(), "the header must compile cleanly as C11");
    let out = Command::new(&exe).output().expect("run probe");
    let text = String::from_utf8(out.stdout).expect("utf8");
    let c_vals: BTreeMap<&str, i64> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k, v.parse().expect("number")))
        .collect();
    let mut diffs = Vec::new();
    for (name, rust, _) in &t {
        let c = c_vals.get(name.as_str()).copied().map(|v| v as u64);
        if c != Some(*rust) {
            diffs.push(format!("{name}: C {c:?}, Rust {rust}"));
        }
    }
    assert!(
        diffs.is_empty(),
        "plugin.h and sys.rs disagree:\n{}",
        diffs.join("\n")
    );
    assert!(t.len() > 80, "every field is checked ({} entries)", t.len());
}

#[test]
fn test_header_compiles_as_cxx() {
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("include");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("header-probe");
    std::fs::create_dir_all(&dir).expect("tmpdir");
    let src = dir.join("probe.cc");
    std::fs::write(
        &src,
        "#include <breadboard/plugin.h>\nint main() { return sizeof(bb_host_api) == 0; }\n",
    )
    .expect("write");
    let Ok(st) = Command::new("c++")
        .args(["-Wall", "-Werror", "-fsyntax-only", "-I"])
        .arg(&include)
        .arg(&src)
        .status()
    else {
        eprintln!("no C++ compiler: skipped");
        return;
    };
    assert!(st.success(), "the header must be usable from C++");
}
