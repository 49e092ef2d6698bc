//! The raw C ABI, mirroring `include/breadboard/plugin.h` field for field. A test compiles the
//! header with the system C compiler and compares every size, offset and constant with these
//! definitions, so the two cannot drift.

#![allow(non_camel_case_types, missing_docs)]

use std::ffi::{c_char, c_int, c_void};

pub const BB_ABI_MAJOR: u16 = 1;
pub const BB_ABI_MINOR: u16 = 1;
pub const BB_PLUGIN_MAGIC: u32 = 0x6262_7031;

pub const BB_PROP_INT: u32 = 0;
pub const BB_PROP_SIZE: u32 = 1;
pub const BB_PROP_BOOL: u32 = 2;
pub const BB_PROP_STR: u32 = 3;
pub const BB_PROP_CHARDEV: u32 = 4;
pub const BB_PROP_LINK: u32 = 5;

pub const BB_LOG_GUEST_ERROR: u32 = 0;
pub const BB_LOG_UNIMP: u32 = 1;
pub const BB_LOG_INFO: u32 = 2;

pub const BB_OK: c_int = 0;
pub const BB_ERR_UNMAPPED: c_int = -1;
pub const BB_ERR_READONLY: c_int = -2;
pub const BB_ERR_MMIO: c_int = -3;
pub const BB_ERR_INVAL: c_int = -4;
pub const BB_ERR_NOSPACE: c_int = -5;

/// The host's per-device handle (opaque).
#[repr(C)]
pub struct bb_host {
    _private: [u8; 0],
}

/// A DT node being written (opaque).
#[repr(C)]
pub struct bb_fdt {
    _private: [u8; 0],
}

#[repr(C)]
#[derive(Debug)]
pub struct bb_host_api {
    pub size: u32,
    pub abi_major: u16,
    pub abi_minor: u16,
    pub now_ns: Option<unsafe extern "C" fn(*mut bb_host) -> u64>,
    pub timer_mod: Option<unsafe extern "C" fn(*mut bb_host, u64, u64)>,
    pub timer_del: Option<unsafe extern "C" fn(*mut bb_host, u64)>,
    pub irq_set: Option<unsafe extern "C" fn(*mut bb_host, u32, c_int)>,
    pub dma_read: Option<unsafe extern "C" fn(*mut bb_host, u64, *mut c_void, usize) -> c_int>,
    pub dma_write: Option<unsafe extern "C" fn(*mut bb_host, u64, *const c_void, usize) -> c_int>,
    pub chr_write: Option<unsafe extern "C" fn(*mut bb_host, *const u8, usize) -> usize>,
    pub log: Option<unsafe extern "C" fn(*mut bb_host, u32, *const c_char, usize)>,
    pub prop_u64: Option<unsafe extern "C" fn(*mut bb_host, *const c_char, *mut u64) -> c_int>,
    pub prop_bool: Option<unsafe extern "C" fn(*mut bb_host, *const c_char, *mut c_int) -> c_int>,
    pub prop_str: Option<
        unsafe extern "C" fn(*mut bb_host, *const c_char, *mut c_char, usize, *mut usize) -> c_int,
    >,
    pub fdt_prop_u32: Option<unsafe extern "C" fn(*mut bb_fdt, *const c_char, u32) -> c_int>,
    pub fdt_prop_cells:
        Option<unsafe extern "C" fn(*mut bb_fdt, *const c_char, *const u32, usize) -> c_int>,
    pub fdt_prop_string:
        Option<unsafe extern "C" fn(*mut bb_fdt, *const c_char, *const c_char) -> c_int>,
    pub fdt_prop_empty: Option<unsafe extern "C" fn(*mut bb_fdt, *const c_char) -> c_int>,
    pub mark_broken: Option<unsafe extern "C" fn(*mut bb_host, *const c_char, usize)>,
}

#[repr(C)]
#[derive(Debug)]
pub struct bb_prop_decl {
    pub size: u32,
    pub kind: u32,
    pub name: *const c_char,
    pub default_value: *const c_char,
    pub doc: *const c_char,
    pub max: u64,
}

#[repr(C)]
#[derive(Debug)]
pub struct bb_region_decl {
    pub size: u32,
    pub reserved: u32,
    pub name: *const c_char,
    pub length: u64,
}

#[repr(C)]
#[derive(Debug)]
pub struct bb_device_ops {
    pub size: u32,
    pub reserved: u32,
    pub create: Option<
        unsafe extern "C" fn(*mut bb_host, *const bb_host_api, *mut c_char, usize) -> *mut c_void,
    >,
    pub destroy: Option<unsafe extern "C" fn(*mut c_void)>,
    pub read: Option<unsafe extern "C" fn(*mut c_void, u32, u64, u32) -> u64>,
    pub write: Option<unsafe extern "C" fn(*mut c_void, u32, u64, u32, u64)>,
    pub reset: Option<unsafe extern "C" fn(*mut c_void)>,
    pub timer: Option<unsafe extern "C" fn(*mut c_void, u64)>,
    pub set_gpio: Option<unsafe extern "C" fn(*mut c_void, u32, c_int)>,
    pub can_receive: Option<unsafe extern "C" fn(*mut c_void) -> usize>,
    pub receive: Option<unsafe extern "C" fn(*mut c_void, *const u8, usize)>,
    pub write_fdt: Option<unsafe extern "C" fn(*mut c_void, *mut bb_fdt) -> c_int>,
    pub snapshot_save: Option<unsafe extern "C" fn(*mut c_void, *mut u8, usize) -> usize>,
    pub snapshot_load: Option<unsafe extern "C" fn(*mut c_void, *const u8, usize) -> c_int>,
}

/// Size of [`bb_device_ops`] in ABI 1.0 (before the snapshot fields).
pub const BB_DEVICE_OPS_SIZE_1_0: usize = std::mem::offset_of!(bb_device_ops, snapshot_save);
/// Size of [`bb_host_api`] in ABI 1.0 (before `mark_broken`).
pub const BB_HOST_API_SIZE_1_0: usize = std::mem::offset_of!(bb_host_api, mark_broken);

#[repr(C)]
#[derive(Debug)]
pub struct bb_device_type {
    pub size: u32,
    pub user_creatable: u32,
    pub name: *const c_char,
    pub description: *const c_char,
    pub compatible: *const *const c_char,
    pub n_compatible: usize,
    pub node_name: *const c_char,
    pub props: *const bb_prop_decl,
    pub n_props: usize,
    pub regions: *const bb_region_decl,
    pub n_regions: usize,
    pub num_irqs: u32,
    pub num_gpio_in: u32,
    pub ops: *const bb_device_ops,
}

#[repr(C)]
#[derive(Debug)]
pub struct bb_plugin_info {
    pub size: u32,
    pub reserved: u32,
    pub name: *const c_char,
    pub types: *const bb_device_type,
    pub n_types: usize,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct bb_plugin_abi {
    pub magic: u32,
    pub abi_major: u16,
    pub abi_minor: u16,
    pub plugin_info_size: u32,
    pub device_type_size: u32,
    pub device_ops_size: u32,
    pub prop_decl_size: u32,
    pub region_decl_size: u32,
    pub host_api_size: u32,
}

/// The record a plugin built against this crate exports as `breadboard_plugin_abi`.
pub const fn current_abi() -> bb_plugin_abi {
    bb_plugin_abi {
        magic: BB_PLUGIN_MAGIC,
        abi_major: BB_ABI_MAJOR,
        abi_minor: BB_ABI_MINOR,
        plugin_info_size: size_u32::<bb_plugin_info>(),
        device_type_size: size_u32::<bb_device_type>(),
        device_ops_size: size_u32::<bb_device_ops>(),
        prop_decl_size: size_u32::<bb_prop_decl>(),
        region_decl_size: size_u32::<bb_region_decl>(),
        host_api_size: size_u32::<bb_host_api>(),
    }
}

/// `size_of::<T>()` as the `u32` the ABI's `size` fields hold (every struct is far below 4 GiB).
pub const fn size_u32<T>() -> u32 {
    std::mem::size_of::<T>() as u32
}

pub type bb_plugin_init_fn =
    unsafe extern "C" fn(host: *const bb_host_api, out: *mut bb_plugin_info) -> c_int;

/// Symbol names.
pub const INIT_SYMBOL: &[u8] = b"breadboard_plugin_init\0";
pub const ABI_SYMBOL: &[u8] = b"breadboard_plugin_abi\0";
