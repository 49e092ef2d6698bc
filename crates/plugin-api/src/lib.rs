//! breadboard's device plugin ABI (`include/breadboard/plugin.h`, mirrored in [`sys`]) and a
//! safe Rust SDK on top of it.
//!
//! A Rust plugin implements [`PluginDevice`] for its device state, describes the type with a
//! [`TypeBuilder`] and exports everything with [`breadboard_plugin!`]. The SDK's `extern "C"`
//! shims catch panics: a device that panics is reported to the host once (`mark_broken`) and
//! never called again, so a plugin bug cannot unwind into the emulator.
//!
//! ```no_run
//! use breadboard_plugin_api::{breadboard_plugin, Host, PluginDevice, PropKind, TypeBuilder};
//!
//! /// One 32-bit scratch register.
//! struct Scratch {
//!     value: u64,
//! }
//!
//! impl PluginDevice for Scratch {
//!     fn create(host: Host) -> Result<Self, String> {
//!         Ok(Scratch { value: host.prop_u64("reset-value").unwrap_or(0) })
//!     }
//!     fn read(&mut self, _region: u32, _offset: u64, _size: u32) -> u64 {
//!         self.value
//!     }
//!     fn write(&mut self, _region: u32, _offset: u64, _size: u32, value: u64) {
//!         self.value = value & 0xffff_ffff;
//!     }
//! }
//!
//! breadboard_plugin!("scratch-plugin", || vec![
//!     TypeBuilder::new::<Scratch>("scratch", "one scratch register")
//!         .compatible("example,scratch")
//!         .region("regs", 0x1000)
//!         .prop(PropKind::Int, "reset-value", Some("0"), "value after reset", None),
//! ]);
//! ```

// Guest, file, socket and plugin input reaches every module: no panicking shortcuts outside
// tests, crate-wide (modules may repeat this for emphasis).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

pub mod sys;

use std::any::Any;
use std::cell::Cell;
use std::ffi::{CString, c_char, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};

use sys::*;

/// A property's type, as declared by a plugin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PropKind {
    /// Unsigned integer.
    Int,
    /// Size in bytes (`64K`).
    Size,
    /// `on`/`off`.
    Bool,
    /// Free text.
    Str,
    /// A chardev id; the first one is where [`Host::chr_write`] writes.
    Chardev,
    /// A QOM path.
    Link,
}

impl PropKind {
    fn raw(self) -> u32 {
        match self {
            PropKind::Int => BB_PROP_INT,
            PropKind::Size => BB_PROP_SIZE,
            PropKind::Bool => BB_PROP_BOOL,
            PropKind::Str => BB_PROP_STR,
            PropKind::Chardev => BB_PROP_CHARDEV,
            PropKind::Link => BB_PROP_LINK,
        }
    }
}

/// Log levels, as the built-in devices use them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    /// The guest did something wrong.
    GuestError,
    /// The guest used an unimplemented feature.
    Unimp,
    /// Informational.
    Info,
}

/// Why a DMA transfer failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DmaError {
    /// Nothing mapped (or not RAM) at the address.
    Unmapped,
    /// Write to ROM.
    ReadOnly,
    /// The target is another device's registers.
    Mmio,
    /// Any other status.
    Other(i32),
}

impl DmaError {
    fn from_status(s: c_int) -> Result<(), DmaError> {
        match s {
            BB_OK => Ok(()),
            BB_ERR_UNMAPPED => Err(DmaError::Unmapped),
            BB_ERR_READONLY => Err(DmaError::ReadOnly),
            BB_ERR_MMIO => Err(DmaError::Mmio),
            other => Err(DmaError::Other(other)),
        }
    }
}

/// The host services of one device. Cheap to copy; valid for the device's lifetime.
#[derive(Clone, Copy, Debug)]
pub struct Host {
    raw: *mut bb_host,
    api: *const bb_host_api,
    /// Last level driven on IRQ outputs 0..63, owned by the device's `Instance`. The host's
    /// lines forward only changes anyway, so skipping a same-level call changes nothing but
    /// the cost of the hot MMIO path (a status write that leaves the IRQ as it was).
    irq_levels: *const Cell<u64>,
}

fn cstring(s: &str) -> CString {
    // Interior NULs cannot be represented; cut there rather than fail.
    let bytes: Vec<u8> = s.bytes().take_while(|&b| b != 0).collect();
    CString::new(bytes).unwrap_or_default()
}

impl Host {
    fn api(&self) -> &bb_host_api {
        // SAFETY: the host passes a pointer to its static service table, valid for the life
        // of the process; `Host` is only made from that pointer.
        unsafe { &*self.api }
    }

    /// Virtual time in ns.
    pub fn now_ns(&self) -> u64 {
        match self.api().now_ns {
            // SAFETY: host callback with this device's own handle.
            Some(f) => unsafe { f(self.raw) },
            None => 0,
        }
    }

    /// Arms timer `token` at absolute virtual time `deadline_ns`.
    pub fn timer_mod(&self, token: u64, deadline_ns: u64) {
        if let Some(f) = self.api().timer_mod {
            // SAFETY: host callback with this device's own handle.
            unsafe { f(self.raw, token, deadline_ns) }
        }
    }

    /// Arms timer `token` `delay_ns` from now.
    pub fn timer_in(&self, token: u64, delay_ns: u64) {
        self.timer_mod(token, self.now_ns().saturating_add(delay_ns));
    }

    /// Disarms timer `token`.
    pub fn timer_del(&self, token: u64) {
        if let Some(f) = self.api().timer_del {
            // SAFETY: host callback with this device's own handle.
            unsafe { f(self.raw, token) }
        }
    }

    /// Drives IRQ output `line`.
    pub fn set_irq(&self, line: u32, level: bool) {
        // SAFETY: NULL or the `Cell` owned by this device's `Instance`, which outlives `Host`
        // copies the device holds; single-threaded like the device itself.
        if let (Some(cache), true) = (unsafe { self.irq_levels.as_ref() }, line < 64) {
            let bit = 1u64 << line;
            let old = cache.get();
            if (old & bit != 0) == level {
                return;
            }
            cache.set(if level { old | bit } else { old & !bit });
        }
        if let Some(f) = self.api().irq_set {
            // SAFETY: host callback with this device's own handle.
            unsafe { f(self.raw, line, c_int::from(level)) }
        }
    }

    /// Reads guest RAM.
    pub fn dma_read(&self, addr: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        let f = self.api().dma_read.ok_or(DmaError::Other(BB_ERR_INVAL))?;
        // SAFETY: `buf` is valid for `buf.len()` writable bytes for the call.
        DmaError::from_status(unsafe { f(self.raw, addr, buf.as_mut_ptr().cast(), buf.len()) })
    }

    /// Writes guest RAM.
    pub fn dma_write(&self, addr: u64, data: &[u8]) -> Result<(), DmaError> {
        let f = self.api().dma_write.ok_or(DmaError::Other(BB_ERR_INVAL))?;
        // SAFETY: `data` is valid for `data.len()` readable bytes for the call.
        DmaError::from_status(unsafe { f(self.raw, addr, data.as_ptr().cast(), data.len()) })
    }

    /// Writes to the device's chardev; returns bytes accepted.
    pub fn chr_write(&self, data: &[u8]) -> usize {
        match self.api().chr_write {
            // SAFETY: `data` is valid for `data.len()` bytes for the call.
            Some(f) => unsafe { f(self.raw, data.as_ptr(), data.len()) },
            None => 0,
        }
    }

    /// Logs a message.
    pub fn log(&self, level: LogLevel, msg: &str) {
        let level = match level {
            LogLevel::GuestError => BB_LOG_GUEST_ERROR,
            LogLevel::Unimp => BB_LOG_UNIMP,
            LogLevel::Info => BB_LOG_INFO,
        };
        if let Some(f) = self.api().log {
            // SAFETY: `msg` is valid for `msg.len()` bytes for the call.
            unsafe { f(self.raw, level, msg.as_ptr().cast(), msg.len()) }
        }
    }

    /// Logs a guest mistake.
    pub fn guest_error(&self, msg: &str) {
        self.log(LogLevel::GuestError, msg);
    }

    /// Logs use of an unimplemented feature.
    pub fn unimp(&self, msg: &str) {
        self.log(LogLevel::Unimp, msg);
    }

    /// An integer or size property.
    pub fn prop_u64(&self, name: &str) -> Option<u64> {
        let f = self.api().prop_u64?;
        let name = cstring(name);
        let mut v = 0u64;
        // SAFETY: `name` is NUL-terminated; `v` is a valid out-pointer.
        (unsafe { f(self.raw, name.as_ptr(), &mut v) } == BB_OK).then_some(v)
    }

    /// A boolean property.
    pub fn prop_bool(&self, name: &str) -> Option<bool> {
        let f = self.api().prop_bool?;
        let name = cstring(name);
        let mut v: c_int = 0;
        // SAFETY: `name` is NUL-terminated; `v` is a valid out-pointer.
        (unsafe { f(self.raw, name.as_ptr(), &mut v) } == BB_OK).then_some(v != 0)
    }

    /// A string-like property (`Some("")` for an unset optional one).
    pub fn prop_str(&self, name: &str) -> Option<String> {
        let f = self.api().prop_str?;
        let name = cstring(name);
        let mut len = 0usize;
        // SAFETY: a zero-capacity query; only `len` is written.
        if unsafe { f(self.raw, name.as_ptr(), std::ptr::null_mut(), 0, &mut len) } != BB_OK {
            return None;
        }
        let mut buf = vec![0u8; len];
        // SAFETY: `buf` has room for `len` bytes.
        if unsafe {
            f(
                self.raw,
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                len,
                &mut len,
            )
        } != BB_OK
        {
            return None;
        }
        buf.truncate(len);
        String::from_utf8(buf).ok()
    }

    fn mark_broken(&self, msg: &str) {
        let api = self.api();
        // `mark_broken` exists from ABI 1.1 on; an older host just stops hearing from us.
        if (api.size as usize) < std::mem::offset_of!(bb_host_api, mark_broken) + 8 {
            self.log(LogLevel::GuestError, msg);
            return;
        }
        if let Some(f) = api.mark_broken {
            // SAFETY: `msg` is valid for `msg.len()` bytes for the call.
            unsafe { f(self.raw, msg.as_ptr().cast(), msg.len()) }
        }
    }
}

/// The device's DT node while [`PluginDevice::write_fdt`] runs.
#[derive(Debug)]
pub struct Fdt {
    raw: *mut bb_fdt,
    api: *const bb_host_api,
}

/// A DT property could not be written (the host's status code).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdtError(pub i32);

impl Fdt {
    fn api(&self) -> &bb_host_api {
        // SAFETY: as for `Host::api`.
        unsafe { &*self.api }
    }

    fn status(s: c_int) -> Result<(), FdtError> {
        if s == BB_OK { Ok(()) } else { Err(FdtError(s)) }
    }

    /// A one-cell property.
    pub fn u32(&mut self, name: &str, value: u32) -> Result<(), FdtError> {
        let f = self.api().fdt_prop_u32.ok_or(FdtError(BB_ERR_INVAL))?;
        let name = cstring(name);
        // SAFETY: `self.raw` is the node handle of this call; `name` is NUL-terminated.
        Self::status(unsafe { f(self.raw, name.as_ptr(), value) })
    }

    /// A property of several cells.
    pub fn cells(&mut self, name: &str, cells: &[u32]) -> Result<(), FdtError> {
        let f = self.api().fdt_prop_cells.ok_or(FdtError(BB_ERR_INVAL))?;
        let name = cstring(name);
        // SAFETY: `cells` is valid for `cells.len()` elements.
        Self::status(unsafe { f(self.raw, name.as_ptr(), cells.as_ptr(), cells.len()) })
    }

    /// A string property.
    pub fn string(&mut self, name: &str, value: &str) -> Result<(), FdtError> {
        let f = self.api().fdt_prop_string.ok_or(FdtError(BB_ERR_INVAL))?;
        let (name, value) = (cstring(name), cstring(value));
        // SAFETY: both strings are NUL-terminated.
        Self::status(unsafe { f(self.raw, name.as_ptr(), value.as_ptr()) })
    }

    /// An empty (boolean) property.
    pub fn empty(&mut self, name: &str) -> Result<(), FdtError> {
        let f = self.api().fdt_prop_empty.ok_or(FdtError(BB_ERR_INVAL))?;
        let name = cstring(name);
        // SAFETY: `name` is NUL-terminated.
        Self::status(unsafe { f(self.raw, name.as_ptr()) })
    }
}

/// A device model a plugin provides. Mirrors `breadboard_core::Device`; every method but
/// `create`, `read` and `write` has a harmless default.
pub trait PluginDevice: Sized + 'static {
    /// Builds and realizes the device; `Err` is the realize error message shown to the user.
    fn create(host: Host) -> Result<Self, String>;
    /// MMIO read (`size` 1, 2, 4 or 8).
    fn read(&mut self, region: u32, offset: u64, size: u32) -> u64;
    /// MMIO write.
    fn write(&mut self, region: u32, offset: u64, size: u32, value: u64);
    /// Back to power-on state.
    fn reset(&mut self) {}
    /// Timer `token` expired.
    fn timer(&mut self, _token: u64) {}
    /// GPIO input `line` changed.
    fn set_gpio(&mut self, _line: u32, _level: bool) {}
    /// Chardev input bytes the device can take now.
    fn can_receive(&self) -> usize {
        0
    }
    /// Chardev input.
    fn receive(&mut self, _data: &[u8]) {}
    /// Extra DT properties (compatible, reg and interrupts are written by the host).
    fn write_fdt(&self, _fdt: &mut Fdt) -> Result<(), FdtError> {
        Ok(())
    }
    /// Snapshot state.
    fn snapshot_save(&self) -> Vec<u8> {
        Vec::new()
    }
    /// Restores snapshot state.
    fn snapshot_load(&mut self, _data: &[u8]) -> Result<(), String> {
        Ok(())
    }
}

/// What the SDK hands the host as `dev`.
struct Instance<D> {
    host: Host,
    dev: Option<D>,
    /// Drop after `dev`: the device's `Host` copies point here.
    _irq_levels: Box<Cell<u64>>,
}

fn panic_message(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// Runs `f` on the live device; a panic drops the device from service and reports it.
///
/// # Safety
/// `p` must be a pointer returned by `shim_create::<D>` and not yet destroyed.
unsafe fn with_dev<D: PluginDevice, R>(p: *mut c_void, dead: R, f: impl FnOnce(&mut D) -> R) -> R {
    // SAFETY: per the contract, `p` is our live `Instance<D>`; the host never calls one
    // device re-entrantly.
    let inst = unsafe { &mut *p.cast::<Instance<D>>() };
    let Some(dev) = inst.dev.as_mut() else {
        return dead;
    };
    match catch_unwind(AssertUnwindSafe(|| f(dev))) {
        Ok(r) => r,
        Err(payload) => {
            // The state may be half-updated: never touch it again, and leak it rather than
            // run a destructor that may panic too.
            if let Some(d) = inst.dev.take() {
                std::mem::forget(d);
            }
            inst.host.mark_broken(&format!(
                "plugin device panicked: {}",
                panic_message(&*payload)
            ));
            dead
        }
    }
}

fn write_err(err: *mut c_char, cap: usize, msg: &str) {
    if err.is_null() || cap == 0 {
        return;
    }
    let n = msg.len().min(cap - 1);
    // SAFETY: the host gives `cap` writable bytes at `err`; we write n + 1 <= cap.
    unsafe {
        std::ptr::copy_nonoverlapping(msg.as_ptr(), err.cast::<u8>(), n);
        *err.add(n) = 0;
    }
}

unsafe extern "C" fn shim_create<D: PluginDevice>(
    host: *mut bb_host,
    api: *const bb_host_api,
    err: *mut c_char,
    cap: usize,
) -> *mut c_void {
    if api.is_null() {
        write_err(err, cap, "host passed no service table");
        return std::ptr::null_mut();
    }
    let levels = Box::new(Cell::new(0u64));
    let h = Host {
        raw: host,
        api,
        irq_levels: &*levels,
    };
    match catch_unwind(AssertUnwindSafe(|| D::create(h))) {
        Ok(Ok(dev)) => Box::into_raw(Box::new(Instance {
            host: h,
            dev: Some(dev),
            _irq_levels: levels,
        }))
        .cast(),
        Ok(Err(msg)) => {
            write_err(err, cap, &msg);
            std::ptr::null_mut()
        }
        Err(p) => {
            write_err(
                err,
                cap,
                &format!("plugin panicked in create: {}", panic_message(&*p)),
            );
            std::ptr::null_mut()
        }
    }
}

unsafe extern "C" fn shim_destroy<D: PluginDevice>(p: *mut c_void) {
    if p.is_null() {
        return;
    }
    // SAFETY: `p` came from `Box::into_raw` in `shim_create::<D>` and is destroyed once.
    let inst = unsafe { Box::from_raw(p.cast::<Instance<D>>()) };
    if let Some(d) = inst.dev {
        // A panicking destructor must not unwind into the host.
        let _ = catch_unwind(AssertUnwindSafe(move || drop(d)));
    }
}

unsafe extern "C" fn shim_read<D: PluginDevice>(
    p: *mut c_void,
    r: u32,
    off: u64,
    size: u32,
) -> u64 {
    // SAFETY: the host passes the pointer `create` returned.
    unsafe { with_dev::<D, _>(p, 0, |d| d.read(r, off, size)) }
}

unsafe extern "C" fn shim_write<D: PluginDevice>(
    p: *mut c_void,
    r: u32,
    off: u64,
    size: u32,
    v: u64,
) {
    // SAFETY: the host passes the pointer `create` returned.
    unsafe { with_dev::<D, _>(p, (), |d| d.write(r, off, size, v)) }
}

unsafe extern "C" fn shim_reset<D: PluginDevice>(p: *mut c_void) {
    // SAFETY: the host passes the pointer `create` returned.
    unsafe { with_dev::<D, _>(p, (), |d| d.reset()) }
}

unsafe extern "C" fn shim_timer<D: PluginDevice>(p: *mut c_void, token: u64) {
    // SAFETY: the host passes the pointer `create` returned.
    unsafe { with_dev::<D, _>(p, (), |d| d.timer(token)) }
}

unsafe extern "C" fn shim_set_gpio<D: PluginDevice>(p: *mut c_void, line: u32, level: c_int) {
    // SAFETY: the host passes the pointer `create` returned.
    unsafe { with_dev::<D, _>(p, (), |d| d.set_gpio(line, level != 0)) }
}

unsafe extern "C" fn shim_can_receive<D: PluginDevice>(p: *mut c_void) -> usize {
    // SAFETY: the host passes the pointer `create` returned.
    unsafe { with_dev::<D, _>(p, 0, |d| d.can_receive()) }
}

unsafe extern "C" fn shim_receive<D: PluginDevice>(p: *mut c_void, buf: *const u8, len: usize) {
    if buf.is_null() {
        return;
    }
    // SAFETY: the host passes `len` readable bytes at `buf` for the call.
    let data = unsafe { std::slice::from_raw_parts(buf, len) };
    // SAFETY: the host passes the pointer `create` returned.
    unsafe { with_dev::<D, _>(p, (), |d| d.receive(data)) }
}

unsafe extern "C" fn shim_write_fdt<D: PluginDevice>(p: *mut c_void, fdt: *mut bb_fdt) -> c_int {
    // SAFETY: the host passes the pointer `create` returned; `inst.host.api` is its table.
    let api = unsafe { (*p.cast::<Instance<D>>()).host.api };
    let mut f = Fdt { raw: fdt, api };
    // SAFETY: the host passes the pointer `create` returned.
    unsafe {
        with_dev::<D, _>(p, BB_ERR_INVAL, |d| match d.write_fdt(&mut f) {
            Ok(()) => BB_OK,
            Err(FdtError(e)) => e,
        })
    }
}

unsafe extern "C" fn shim_snapshot_save<D: PluginDevice>(
    p: *mut c_void,
    buf: *mut u8,
    cap: usize,
) -> usize {
    // SAFETY: the host passes the pointer `create` returned.
    let bytes = unsafe { with_dev::<D, _>(p, Vec::new(), |d| d.snapshot_save()) };
    if !buf.is_null() && cap >= bytes.len() {
        // SAFETY: the host gives `cap` >= len writable bytes at `buf`.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf, bytes.len()) };
    }
    bytes.len()
}

unsafe extern "C" fn shim_snapshot_load<D: PluginDevice>(
    p: *mut c_void,
    buf: *const u8,
    len: usize,
) -> c_int {
    let data = if buf.is_null() || len == 0 {
        &[][..]
    } else {
        // SAFETY: the host passes `len` readable bytes at `buf` for the call.
        unsafe { std::slice::from_raw_parts(buf, len) }
    };
    // SAFETY: the host passes the pointer `create` returned.
    unsafe {
        with_dev::<D, _>(p, BB_ERR_INVAL, |d| match d.snapshot_load(data) {
            Ok(()) => BB_OK,
            Err(_) => BB_ERR_INVAL,
        })
    }
}

struct PropDesc {
    kind: PropKind,
    name: CString,
    default: Option<CString>,
    doc: CString,
    max: u64,
}

/// Describes one device type of a plugin.
pub struct TypeBuilder {
    name: CString,
    description: CString,
    compatible: Vec<CString>,
    node_name: CString,
    props: Vec<PropDesc>,
    regions: Vec<(CString, u64)>,
    num_irqs: u32,
    num_gpio_in: u32,
    user_creatable: bool,
    ops: bb_device_ops,
}

impl std::fmt::Debug for TypeBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypeBuilder")
            .field("name", &self.name)
            .finish()
    }
}

impl TypeBuilder {
    /// A user-creatable type `name` implemented by `D`, with no regions, IRQs or properties
    /// yet. The DT node name prefix defaults to `name`.
    pub fn new<D: PluginDevice>(name: &str, description: &str) -> TypeBuilder {
        TypeBuilder {
            name: cstring(name),
            description: cstring(description),
            compatible: Vec::new(),
            node_name: cstring(name),
            props: Vec::new(),
            regions: Vec::new(),
            num_irqs: 0,
            num_gpio_in: 0,
            user_creatable: true,
            ops: bb_device_ops {
                size: size_u32::<bb_device_ops>(),
                reserved: 0,
                create: Some(shim_create::<D>),
                destroy: Some(shim_destroy::<D>),
                read: Some(shim_read::<D>),
                write: Some(shim_write::<D>),
                reset: Some(shim_reset::<D>),
                timer: Some(shim_timer::<D>),
                set_gpio: Some(shim_set_gpio::<D>),
                can_receive: Some(shim_can_receive::<D>),
                receive: Some(shim_receive::<D>),
                write_fdt: Some(shim_write_fdt::<D>),
                snapshot_save: Some(shim_snapshot_save::<D>),
                snapshot_load: Some(shim_snapshot_load::<D>),
            },
        }
    }

    /// Adds a `compatible` string (most specific first).
    pub fn compatible(mut self, c: &str) -> Self {
        self.compatible.push(cstring(c));
        self
    }

    /// The DT node name prefix (`timer` → `timer@4000000`).
    pub fn node_name(mut self, n: &str) -> Self {
        self.node_name = cstring(n);
        self
    }

    /// Adds an MMIO region of `length` bytes (region index = order of calls).
    pub fn region(mut self, name: &str, length: u64) -> Self {
        self.regions.push((cstring(name), length));
        self
    }

    /// Number of IRQ outputs.
    pub fn irqs(mut self, n: u32) -> Self {
        self.num_irqs = n;
        self
    }

    /// Number of GPIO inputs.
    pub fn gpio_inputs(mut self, n: u32) -> Self {
        self.num_gpio_in = n;
        self
    }

    /// Whether `-device` may create it (default yes).
    pub fn user_creatable(mut self, yes: bool) -> Self {
        self.user_creatable = yes;
        self
    }

    /// Declares a property. `default` `None` makes it required, `Some("")` optional and unset.
    pub fn prop(
        mut self,
        kind: PropKind,
        name: &str,
        default: Option<&str>,
        doc: &str,
        max: Option<u64>,
    ) -> Self {
        self.props.push(PropDesc {
            kind,
            name: cstring(name),
            default: default.map(cstring),
            doc: cstring(doc),
            max: max.unwrap_or(0),
        });
        self
    }

    /// Turns the description into the C structures, leaked: the host may read them for as
    /// long as the library is loaded.
    fn leak(self) -> bb_device_type {
        fn keep(s: CString) -> *const c_char {
            CString::into_raw(s)
        }
        let compatible: Vec<*const c_char> = self.compatible.into_iter().map(keep).collect();
        let n_compatible = compatible.len();
        let props: Vec<bb_prop_decl> = self
            .props
            .into_iter()
            .map(|p| bb_prop_decl {
                size: size_u32::<bb_prop_decl>(),
                kind: p.kind.raw(),
                name: keep(p.name),
                default_value: p.default.map_or(std::ptr::null(), keep),
                doc: keep(p.doc),
                max: p.max,
            })
            .collect();
        let n_props = props.len();
        let regions: Vec<bb_region_decl> = self
            .regions
            .into_iter()
            .map(|(name, length)| bb_region_decl {
                size: size_u32::<bb_region_decl>(),
                reserved: 0,
                name: keep(name),
                length,
            })
            .collect();
        let n_regions = regions.len();
        bb_device_type {
            size: size_u32::<bb_device_type>(),
            user_creatable: u32::from(self.user_creatable),
            name: keep(self.name),
            description: keep(self.description),
            compatible: Box::leak(compatible.into_boxed_slice()).as_ptr(),
            n_compatible,
            node_name: keep(self.node_name),
            props: Box::leak(props.into_boxed_slice()).as_ptr(),
            n_props,
            regions: Box::leak(regions.into_boxed_slice()).as_ptr(),
            n_regions,
            num_irqs: self.num_irqs,
            num_gpio_in: self.num_gpio_in,
            ops: Box::leak(Box::new(self.ops)),
        }
    }
}

/// The body of the exported `breadboard_plugin_init` (use [`breadboard_plugin!`]).
///
/// # Safety
/// `host` and `out` must be the pointers the host passes to `breadboard_plugin_init`.
pub unsafe fn plugin_init(
    host: *const bb_host_api,
    out: *mut bb_plugin_info,
    name: &str,
    types: impl FnOnce() -> Vec<TypeBuilder>,
) -> c_int {
    if host.is_null() || out.is_null() {
        return BB_ERR_INVAL;
    }
    // SAFETY: the host passes its static service table.
    let api = unsafe { &*host };
    if api.abi_major != BB_ABI_MAJOR {
        return BB_ERR_INVAL;
    }
    let Ok(types) = catch_unwind(AssertUnwindSafe(types)) else {
        return BB_ERR_INVAL;
    };
    let types: Vec<bb_device_type> = types.into_iter().map(TypeBuilder::leak).collect();
    let n_types = types.len();
    // SAFETY: `out` points at the host's `bb_plugin_info`, at least as large as ours (the
    // host checked our `plugin_info_size` before calling).
    unsafe {
        (*out).name = CString::into_raw(cstring(name));
        (*out).types = Box::leak(types.into_boxed_slice()).as_ptr();
        (*out).n_types = n_types;
    }
    BB_OK
}

/// Exports a plugin: the ABI record and the init function.
///
/// `breadboard_plugin!("name", || vec![TypeBuilder::new::<Dev>(...), ...]);`
#[macro_export]
macro_rules! breadboard_plugin {
    ($name:expr, $types:expr) => {
        /// The ABI record the host reads before calling anything.
        #[unsafe(no_mangle)]
        pub static breadboard_plugin_abi: $crate::sys::bb_plugin_abi = $crate::sys::current_abi();

        /// The plugin's entry point.
        ///
        /// # Safety
        /// Called by the breadboard host only.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn breadboard_plugin_init(
            host: *const $crate::sys::bb_host_api,
            out: *mut $crate::sys::bb_plugin_info,
        ) -> ::std::ffi::c_int {
            // SAFETY: forwarded unchanged from the host.
            unsafe { $crate::plugin_init(host, out, $name, $types) }
        }
    };
}
