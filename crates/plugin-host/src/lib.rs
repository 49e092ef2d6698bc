//! Loads breadboard device plugins (shared libraries speaking `breadboard/plugin.h`) and turns
//! each device type they declare into a [`DeviceType`] whose devices implement the same
//! [`breadboard_core::Device`] contract as built-ins.
//!
//! Loading checks, in order and before calling any plugin code: the file opens; it exports
//! `breadboard_plugin_abi` and `breadboard_plugin_init`; the ABI record's magic, major version
//! (equal), minor version (not newer than the host's) and every struct size (not shorter than
//! ABI 1.0's). Then `init` runs and everything it returns is validated (required callbacks,
//! strings, property defaults, region sizes, type names unused). Only when all of it passes
//! are the types registered: a bad plugin registers nothing.
// Reads guest, file, socket or plugin input: no panicking shortcuts (SECURITY.md, issue 9).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod device;

use std::borrow::Cow;
use std::ffi::{CStr, c_char};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use breadboard_core::{DeviceType, PropKind, PropSpec, RawValue, TypeRegistry};
use breadboard_plugin_api::sys::*;
use thiserror::Error;

pub use device::{HOST_API, PluginDevice};

/// Why a plugin was refused. Nothing is registered when any of these is returned.
#[derive(Debug, Error)]
pub enum PluginError {
    /// The file does not exist or is not a loadable shared library.
    #[error("could not load plugin '{path}': {reason}")]
    Open {
        /// Plugin path.
        path: PathBuf,
        /// The dynamic loader's message.
        reason: String,
    },
    /// A required exported symbol is missing.
    #[error("plugin '{path}' does not export '{symbol}' (is it a breadboard plugin?)")]
    MissingSymbol {
        /// Plugin path.
        path: PathBuf,
        /// Symbol name.
        symbol: &'static str,
    },
    /// The ABI record's magic number is wrong.
    #[error("plugin '{path}' has a corrupt ABI record (magic {magic:#x})")]
    BadMagic {
        /// Plugin path.
        path: PathBuf,
        /// Magic found.
        magic: u32,
    },
    /// Built for another major ABI version.
    #[error(
        "plugin '{path}' uses plugin ABI {major}.{minor}; this breadboard speaks {host_major}.x"
    )]
    MajorMismatch {
        /// Plugin path.
        path: PathBuf,
        /// Plugin's major.
        major: u16,
        /// Plugin's minor.
        minor: u16,
        /// Host major.
        host_major: u16,
    },
    /// Built for a newer minor version than the host knows.
    #[error(
        "plugin '{path}' needs plugin ABI {major}.{minor}, newer than this breadboard's {major}.{host_minor}"
    )]
    NewerMinor {
        /// Plugin path.
        path: PathBuf,
        /// Major.
        major: u16,
        /// Plugin's minor.
        minor: u16,
        /// Host minor.
        host_minor: u16,
    },
    /// A struct is shorter than the ABI requires.
    #[error("plugin '{path}': {what} is {size} bytes, ABI 1.0 needs at least {min}")]
    ShortStruct {
        /// Plugin path.
        path: PathBuf,
        /// Which struct.
        what: String,
        /// Size the plugin declared.
        size: u32,
        /// Least acceptable size.
        min: usize,
    },
    /// `breadboard_plugin_init` returned an error code.
    #[error("plugin '{path}' failed to initialize (code {code})")]
    InitFailed {
        /// Plugin path.
        path: PathBuf,
        /// Its return value.
        code: i32,
    },
    /// A required callback is NULL.
    #[error("plugin '{path}': device type '{ty}' has no '{callback}' callback")]
    NullCallback {
        /// Plugin path.
        path: PathBuf,
        /// Device type.
        ty: String,
        /// Callback name.
        callback: &'static str,
    },
    /// Something else the plugin declared is malformed.
    #[error("plugin '{path}': {what}")]
    Invalid {
        /// Plugin path.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// A type name is already taken (by a built-in, another plugin, or this one twice).
    #[error("plugin '{path}': device type '{name}' is already registered")]
    Duplicate {
        /// Plugin path.
        path: PathBuf,
        /// Type name.
        name: String,
    },
}

/// A loaded plugin: keeps the library mapped while any of its types or devices exist.
pub(crate) struct Library {
    _lib: libloading::Library,
    pub(crate) path: PathBuf,
}

impl std::fmt::Debug for Library {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Library").field("path", &self.path).finish()
    }
}

/// What a successful load registered.
#[derive(Debug, Clone)]
pub struct LoadedPlugin {
    /// The plugin's own name.
    pub name: String,
    /// Its file.
    pub path: PathBuf,
    /// ABI version it was built for.
    pub abi: (u16, u16),
    /// Device types it registered, in declaration order.
    pub types: Vec<String>,
}

/// Least sizes (ABI 1.0) of the structs a plugin provides.
const MIN_DEVICE_OPS: usize = BB_DEVICE_OPS_SIZE_1_0;

/// Loads the plugin at `path` and registers its device types in `registry`, all or none.
pub fn load(path: &Path, registry: &mut TypeRegistry) -> Result<LoadedPlugin, PluginError> {
    let (loaded, types) = prepare(path, registry)?;
    for t in types {
        // Cannot fail: `prepare` checked every name against the registry and each other.
        if registry.register(t).is_err() {
            return Err(PluginError::Invalid {
                path: path.to_path_buf(),
                what: "registry changed during load".into(),
            });
        }
    }
    Ok(loaded)
}

/// Loads and validates a plugin and builds its types without registering them.
pub fn prepare(
    path: &Path,
    registry: &TypeRegistry,
) -> Result<(LoadedPlugin, Vec<DeviceType>), PluginError> {
    let p = path.to_path_buf();
    if !path.exists() {
        return Err(PluginError::Open {
            path: p,
            reason: "No such file or directory".into(),
        });
    }
    // dlopen needs a path with a slash to skip the library search path.
    let open_path = if path.is_absolute() || path.components().count() > 1 {
        path.to_path_buf()
    } else {
        Path::new(".").join(path)
    };
    // SAFETY: loading a library runs its initializers; loading a plugin means trusting it,
    // as QEMU's TCG plugins do. The `-plugin` user chose this file.
    let lib = unsafe { libloading::Library::new(&open_path) }.map_err(|e| PluginError::Open {
        path: p.clone(),
        reason: e.to_string(),
    })?;
    // SAFETY: the symbol is declared by the ABI as a `const bb_plugin_abi`; we copy it out.
    let abi: bb_plugin_abi = unsafe {
        let sym = lib.get::<*const bb_plugin_abi>(ABI_SYMBOL).map_err(|_| {
            PluginError::MissingSymbol {
                path: p.clone(),
                symbol: "breadboard_plugin_abi",
            }
        })?;
        let ptr: *const bb_plugin_abi = *sym;
        if ptr.is_null() {
            return Err(PluginError::MissingSymbol {
                path: p,
                symbol: "breadboard_plugin_abi",
            });
        }
        std::ptr::read_unaligned(ptr)
    };
    // SAFETY: the symbol has the ABI's init signature; we only take its address here.
    let init: bb_plugin_init_fn = unsafe {
        *lib.get::<bb_plugin_init_fn>(INIT_SYMBOL)
            .map_err(|_| PluginError::MissingSymbol {
                path: p.clone(),
                symbol: "breadboard_plugin_init",
            })?
    };
    check_abi(&p, &abi)?;
    let lib = Rc::new(Library {
        _lib: lib,
        path: p.clone(),
    });

    let mut info = bb_plugin_info {
        size: size_u32::<bb_plugin_info>(),
        reserved: 0,
        name: std::ptr::null(),
        types: std::ptr::null(),
        n_types: 0,
    };
    // SAFETY: the ABI was checked; the plugin fills `info` (which is at least as large as the
    // plugin's own struct, checked above) and may call the static host table.
    let code = unsafe { init(&HOST_API, &mut info) };
    if code != 0 {
        return Err(PluginError::InitFailed { path: p, code });
    }
    let invalid = |what: String| PluginError::Invalid {
        path: p.clone(),
        what,
    };
    // SAFETY: strings and arrays the plugin returned stay valid while the library is loaded.
    let name = unsafe { opt_str(info.name) }.unwrap_or_else(|| "unnamed".into());
    if info.n_types > 0 && info.types.is_null() {
        return Err(invalid("types is NULL".into()));
    }
    let mut built = Vec::new();
    let mut names = Vec::new();
    for i in 0..info.n_types {
        // The plugin's array stride is its own sizeof(bb_device_type).
        let offset = i
            .checked_mul(abi.device_type_size as usize)
            .ok_or_else(|| invalid("too many types".into()))?;
        // SAFETY: element `i` of the plugin's array of `n_types` elements of its stride.
        let raw = unsafe { info.types.cast::<u8>().add(offset).cast::<bb_device_type>() };
        // SAFETY: as above; `read_prefix` copies no more than the element's declared size.
        let t = unsafe { read_prefix::<bb_device_type>(raw.cast(), abi.device_type_size) };
        let desc = validate_type(&p, &abi, &t)?;
        if registry.get(&desc.name).is_some() || names.contains(&desc.name) {
            return Err(PluginError::Duplicate {
                path: p,
                name: desc.name,
            });
        }
        names.push(desc.name.clone());
        built.push(device::device_type(Rc::clone(&lib), desc));
    }
    tracing::info!(
        "plugin '{name}' ({}) loaded: {}",
        p.display(),
        names.join(", ")
    );
    Ok((
        LoadedPlugin {
            name,
            path: p,
            abi: (abi.abi_major, abi.abi_minor),
            types: names,
        },
        built,
    ))
}

fn check_abi(p: &Path, abi: &bb_plugin_abi) -> Result<(), PluginError> {
    if abi.magic != BB_PLUGIN_MAGIC {
        return Err(PluginError::BadMagic {
            path: p.to_path_buf(),
            magic: abi.magic,
        });
    }
    if abi.abi_major != BB_ABI_MAJOR {
        return Err(PluginError::MajorMismatch {
            path: p.to_path_buf(),
            major: abi.abi_major,
            minor: abi.abi_minor,
            host_major: BB_ABI_MAJOR,
        });
    }
    if abi.abi_minor > BB_ABI_MINOR {
        return Err(PluginError::NewerMinor {
            path: p.to_path_buf(),
            major: abi.abi_major,
            minor: abi.abi_minor,
            host_minor: BB_ABI_MINOR,
        });
    }
    let checks: [(&str, u32, usize); 5] = [
        (
            "bb_plugin_info",
            abi.plugin_info_size,
            std::mem::size_of::<bb_plugin_info>(),
        ),
        (
            "bb_device_type",
            abi.device_type_size,
            std::mem::size_of::<bb_device_type>(),
        ),
        ("bb_device_ops", abi.device_ops_size, MIN_DEVICE_OPS),
        (
            "bb_prop_decl",
            abi.prop_decl_size,
            std::mem::size_of::<bb_prop_decl>(),
        ),
        (
            "bb_region_decl",
            abi.region_decl_size,
            std::mem::size_of::<bb_region_decl>(),
        ),
    ];
    for (what, size, min) in checks {
        if (size as usize) < min {
            return Err(PluginError::ShortStruct {
                path: p.to_path_buf(),
                what: what.into(),
                size,
                min,
            });
        }
    }
    // `bb_plugin_info` is filled in host memory: a plugin whose struct is larger than ours
    // would write past it.
    if abi.plugin_info_size as usize > std::mem::size_of::<bb_plugin_info>() {
        return Err(PluginError::Invalid {
            path: p.to_path_buf(),
            what: format!(
                "bb_plugin_info is {} bytes, larger than this host's",
                abi.plugin_info_size
            ),
        });
    }
    Ok(())
}

/// Copies the first `declared` bytes (at most `size_of::<T>()`) of a plugin struct into a
/// zeroed `T`: fields the plugin's older ABI does not have read as zero (NULL callbacks).
///
/// # Safety
/// `src` must be valid for reading `min(declared, size_of::<T>())` bytes, and `T` must be a
/// `#[repr(C)]` ABI struct for which all-zero bytes are a valid value.
pub(crate) unsafe fn read_prefix<T>(src: *const u8, declared: u32) -> T {
    let n = (declared as usize).min(std::mem::size_of::<T>());
    // SAFETY: all-zero is valid for the ABI structs (integers, raw pointers, Option<fn>).
    let mut out: T = unsafe { std::mem::zeroed() };
    // SAFETY: per the contract, `src` has `n` readable bytes; `out` has size_of::<T>() >= n.
    unsafe { std::ptr::copy_nonoverlapping(src, (&raw mut out).cast::<u8>(), n) };
    out
}

/// A NUL-terminated plugin string, `None` for NULL or invalid UTF-8.
///
/// # Safety
/// `s` must be NULL or point at a NUL-terminated string that stays valid.
pub(crate) unsafe fn opt_str(s: *const c_char) -> Option<String> {
    if s.is_null() {
        return None;
    }
    // SAFETY: per the contract.
    unsafe { CStr::from_ptr(s) }
        .to_str()
        .ok()
        .map(str::to_string)
}

/// One validated device type of a plugin.
#[derive(Debug)]
pub(crate) struct TypeDesc {
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) user_creatable: bool,
    pub(crate) compatible: Vec<String>,
    pub(crate) node_name: String,
    pub(crate) props: Vec<PropSpec>,
    pub(crate) regions: Vec<(String, u64)>,
    pub(crate) num_irqs: u32,
    pub(crate) num_gpio_in: u32,
    pub(crate) ops: bb_device_ops,
}

fn validate_type(
    p: &Path,
    abi: &bb_plugin_abi,
    t: &bb_device_type,
) -> Result<TypeDesc, PluginError> {
    let invalid = |what: String| PluginError::Invalid {
        path: p.to_path_buf(),
        what,
    };
    if (t.size as usize) < std::mem::size_of::<bb_device_type>() {
        return Err(PluginError::ShortStruct {
            path: p.to_path_buf(),
            what: "bb_device_type".into(),
            size: t.size,
            min: std::mem::size_of::<bb_device_type>(),
        });
    }
    // SAFETY: plugin strings stay valid while the library is loaded.
    let name =
        unsafe { opt_str(t.name) }.ok_or_else(|| invalid("a device type has no name".into()))?;
    if name.is_empty() || name.contains([',', '=', ' ']) {
        return Err(invalid(format!("device type name '{name}' is not valid")));
    }
    let null_cb = |callback| PluginError::NullCallback {
        path: p.to_path_buf(),
        ty: name.clone(),
        callback,
    };
    if t.ops.is_null() {
        return Err(null_cb("ops"));
    }
    // SAFETY: `t.ops` points at the plugin's ops struct; read its size field first.
    let ops_size = unsafe { std::ptr::read_unaligned(t.ops.cast::<u32>()) };
    if (ops_size as usize) < MIN_DEVICE_OPS {
        return Err(PluginError::ShortStruct {
            path: p.to_path_buf(),
            what: format!("bb_device_ops of '{name}'"),
            size: ops_size,
            min: MIN_DEVICE_OPS,
        });
    }
    // A 1.0 plugin's ops end before the 1.1 fields even if it says more.
    let readable = if abi.abi_minor == 0 {
        ops_size.min(MIN_DEVICE_OPS as u32)
    } else {
        ops_size
    };
    // SAFETY: the plugin declared `ops_size` readable bytes.
    let ops = unsafe { read_prefix::<bb_device_ops>(t.ops.cast(), readable) };
    if ops.create.is_none() {
        return Err(null_cb("create"));
    }
    if ops.destroy.is_none() {
        return Err(null_cb("destroy"));
    }
    if ops.read.is_none() {
        return Err(null_cb("read"));
    }
    if ops.write.is_none() {
        return Err(null_cb("write"));
    }
    // SAFETY: as above.
    let description = unsafe { opt_str(t.description) }.unwrap_or_default();
    // SAFETY: as above.
    let node_name = unsafe { opt_str(t.node_name) }.unwrap_or_else(|| name.clone());
    let mut compatible = Vec::new();
    if t.n_compatible > 0 && t.compatible.is_null() {
        return Err(invalid(format!("'{name}': compatible is NULL")));
    }
    for i in 0..t.n_compatible {
        // SAFETY: an array of `n_compatible` string pointers.
        let s = unsafe { opt_str(*t.compatible.add(i)) }
            .ok_or_else(|| invalid(format!("'{name}': compatible string {i} is NULL")))?;
        compatible.push(s);
    }
    let mut props = Vec::new();
    if t.n_props > 0 && t.props.is_null() {
        return Err(invalid(format!("'{name}': props is NULL")));
    }
    for i in 0..t.n_props {
        // SAFETY: element `i` of the plugin's array, at its own stride.
        let d = unsafe {
            let at = t.props.cast::<u8>().add(i * abi.prop_decl_size as usize);
            read_prefix::<bb_prop_decl>(at, abi.prop_decl_size)
        };
        props.push(prop_spec(&name, &d).map_err(invalid)?);
    }
    let mut regions = Vec::new();
    if t.n_regions > 0 && t.regions.is_null() {
        return Err(invalid(format!("'{name}': regions is NULL")));
    }
    for i in 0..t.n_regions {
        // SAFETY: element `i` of the plugin's array, at its own stride.
        let r = unsafe {
            let at = t
                .regions
                .cast::<u8>()
                .add(i * abi.region_decl_size as usize);
            read_prefix::<bb_region_decl>(at, abi.region_decl_size)
        };
        if r.length == 0 {
            return Err(invalid(format!("'{name}': region {i} has size 0")));
        }
        // SAFETY: as above.
        let rname = unsafe { opt_str(r.name) }.unwrap_or_else(|| format!("{name}.{i}"));
        regions.push((rname, r.length));
    }
    if t.num_irqs > 1024 || t.num_gpio_in > 1024 {
        return Err(invalid(format!("'{name}': too many IRQs or GPIO inputs")));
    }
    Ok(TypeDesc {
        name,
        description,
        user_creatable: t.user_creatable != 0,
        compatible,
        node_name,
        props,
        regions,
        num_irqs: t.num_irqs,
        num_gpio_in: t.num_gpio_in,
        ops,
    })
}

/// Maps a declared property to the host's schema entry; its default must parse.
fn prop_spec(ty: &str, d: &bb_prop_decl) -> Result<PropSpec, String> {
    // SAFETY: plugin strings stay valid while the library is loaded.
    let name =
        unsafe { opt_str(d.name) }.ok_or_else(|| format!("'{ty}': a property has no name"))?;
    let kind = match d.kind {
        BB_PROP_INT => PropKind::Int,
        BB_PROP_SIZE => PropKind::Size,
        BB_PROP_BOOL => PropKind::Bool,
        BB_PROP_STR => PropKind::Str,
        BB_PROP_CHARDEV => PropKind::Chardev,
        BB_PROP_LINK => PropKind::Link,
        k => return Err(format!("'{ty}.{name}': unknown property kind {k}")),
    };
    // SAFETY: as above.
    let default = unsafe { opt_str(d.default_value) };
    // SAFETY: as above.
    let doc = unsafe { opt_str(d.doc) }.unwrap_or_default();
    let spec = PropSpec {
        name: Cow::Owned(name),
        kind,
        default: default.map(Cow::Owned),
        doc: Cow::Owned(doc),
        max: (d.max != 0).then_some(d.max),
    };
    if let Some(def) = spec.default.as_deref()
        && !(def.is_empty() && kind != PropKind::Str)
    {
        spec.parse(ty, RawValue::Str(def))
            .map_err(|e| format!("default value: {e}"))?;
    }
    Ok(spec)
}

#[cfg(test)]
// Tests: a failing unwrap, index or panic is a failed test (as clippy.toml allows).
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;

    fn abi() -> bb_plugin_abi {
        current_abi()
    }

    #[test]
    fn test_check_abi_accepts_current_and_older_minor() {
        check_abi(Path::new("p.so"), &abi()).expect("current");
        let old = bb_plugin_abi {
            abi_minor: 0,
            device_ops_size: MIN_DEVICE_OPS as u32,
            ..abi()
        };
        check_abi(Path::new("p.so"), &old).expect("1.0");
    }

    #[test]
    fn test_check_abi_refuses_bad_magic_and_short_or_long_structs() {
        let e = check_abi(Path::new("p.so"), &bb_plugin_abi { magic: 7, ..abi() }).unwrap_err();
        assert_eq!(
            e.to_string(),
            "plugin 'p.so' has a corrupt ABI record (magic 0x7)"
        );
        let e = check_abi(
            Path::new("p.so"),
            &bb_plugin_abi {
                prop_decl_size: 4,
                ..abi()
            },
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "plugin 'p.so': bb_prop_decl is 4 bytes, ABI 1.0 needs at least 40"
        );
        let e = check_abi(
            Path::new("p.so"),
            &bb_plugin_abi {
                plugin_info_size: 4096,
                ..abi()
            },
        )
        .unwrap_err();
        assert!(matches!(e, PluginError::Invalid { .. }), "{e}");
    }

    #[test]
    fn test_read_prefix_zero_fills_fields_an_older_plugin_lacks() {
        unsafe extern "C" fn destroy(_: *mut std::ffi::c_void) {}
        unsafe extern "C" fn load(
            _: *mut std::ffi::c_void,
            _: *const u8,
            _: usize,
        ) -> std::ffi::c_int {
            0
        }
        // SAFETY: all-zero is a valid ops struct (NULL callbacks).
        let mut full: bb_device_ops = unsafe { std::mem::zeroed() };
        full.destroy = Some(destroy);
        full.snapshot_load = Some(load);
        // SAFETY: reading a prefix of a live struct.
        let old: bb_device_ops =
            unsafe { read_prefix((&raw const full).cast(), MIN_DEVICE_OPS as u32) };
        assert!(old.destroy.is_some());
        assert!(
            old.snapshot_load.is_none(),
            "1.1 field past a 1.0 struct reads as NULL"
        );
    }

    fn decl(
        kind: u32,
        name: &'static [u8],
        default: Option<&'static [u8]>,
        max: u64,
    ) -> bb_prop_decl {
        bb_prop_decl {
            size: size_u32::<bb_prop_decl>(),
            kind,
            name: name.as_ptr().cast(),
            default_value: default.map_or(std::ptr::null(), |d| d.as_ptr().cast()),
            doc: c"doc".as_ptr(),
            max,
        }
    }

    #[test]
    fn test_prop_spec_checks_kind_and_default_like_user_input() {
        let s = prop_spec("t", &decl(BB_PROP_SIZE, b"len\0", Some(b"64K\0"), 0)).expect("ok");
        assert_eq!(
            (s.kind, s.default.as_deref(), s.max),
            (PropKind::Size, Some("64K"), None)
        );
        let s = prop_spec("t", &decl(BB_PROP_INT, b"n\0", None, 5)).expect("required");
        assert_eq!((s.default, s.max), (None, Some(5)));
        let e = prop_spec("t", &decl(BB_PROP_BOOL, b"on\0", Some(b"maybe\0"), 0)).unwrap_err();
        assert_eq!(
            e,
            "default value: Property 't.on' expects 'on' or 'off', not 'maybe'"
        );
        let e = prop_spec("t", &decl(BB_PROP_INT, b"n\0", Some(b"9\0"), 5)).unwrap_err();
        assert!(e.contains("larger than the maximum"), "{e}");
        let e = prop_spec("t", &decl(42, b"x\0", None, 0)).unwrap_err();
        assert_eq!(e, "'t.x': unknown property kind 42");
    }
}
