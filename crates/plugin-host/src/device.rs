//! The adapter between a plugin's device ops and [`breadboard_core::Device`], and the host
//! services (`bb_host_api`) plugins call back into.
//!
//! Each device has a `HostCtx` (the plugin's `bb_host *`), allocated once and freed after the
//! plugin's `destroy`: it holds what the device may touch (its IRQ lines, timers, DMA view,
//! chardev, properties). It is only ever accessed through shared references, so a plugin
//! calling back into the host during an MMIO access aliases nothing mutable.
// Reads guest, file, socket or plugin input: no panicking shortcuts (SECURITY.md, issue 9).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::borrow::Cow;
use std::cell::Cell;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::ptr::NonNull;
use std::rc::Rc;

use breadboard_core::fdt::{FdtError, FdtWriter, NodeResources};
use breadboard_core::{
    AccessError, Chardev, Clock, Device, DeviceCtx, DeviceError, DeviceType, FdtPlacement,
    GuestMemory, IrqLine, PropKind, PropValue, Props, RegionSpec, TimerHandle,
};
use breadboard_plugin_api::sys::*;

use crate::{Library, TypeDesc};

/// What `bb_host *` points at.
struct HostCtx {
    name: String,
    clock: Rc<Clock>,
    timers: TimerHandle,
    dma: Rc<GuestMemory>,
    irqs: Vec<IrqLine>,
    chardev: Option<Rc<Chardev>>,
    props: Props,
    kinds: Vec<(String, PropKind)>,
    broken: Cell<bool>,
}

/// # Safety
/// `h` must be a `bb_host *` the host handed out and whose device still exists.
unsafe fn ctx<'a>(h: *mut bb_host) -> Option<&'a HostCtx> {
    // SAFETY: per the contract, `h` is NULL or a live `HostCtx`, only shared-borrowed.
    unsafe { h.cast::<HostCtx>().as_ref() }
}

/// # Safety
/// `s` must be NULL or a NUL-terminated string valid for the call.
unsafe fn cstr<'a>(s: *const c_char) -> Option<&'a str> {
    if s.is_null() {
        return None;
    }
    // SAFETY: per the contract.
    unsafe { CStr::from_ptr(s) }.to_str().ok()
}

unsafe extern "C" fn host_now_ns(h: *mut bb_host) -> u64 {
    // SAFETY: the plugin passes its own handle.
    unsafe { ctx(h) }.map_or(0, |c| c.clock.now())
}

unsafe extern "C" fn host_timer_mod(h: *mut bb_host, token: u64, deadline: u64) {
    // SAFETY: the plugin passes its own handle.
    if let Some(c) = unsafe { ctx(h) } {
        c.timers.schedule_at(token, deadline);
    }
}

unsafe extern "C" fn host_timer_del(h: *mut bb_host, token: u64) {
    // SAFETY: the plugin passes its own handle.
    if let Some(c) = unsafe { ctx(h) } {
        c.timers.cancel(token);
    }
}

unsafe extern "C" fn host_irq_set(h: *mut bb_host, line: u32, level: c_int) {
    // SAFETY: the plugin passes its own handle.
    let Some(c) = (unsafe { ctx(h) }) else { return };
    match c.irqs.get(line as usize) {
        Some(l) => l.set(level != 0),
        None => tracing::error!(
            "{}: plugin drove IRQ output {line}, it has {}",
            c.name,
            c.irqs.len()
        ),
    }
}

fn dma_status(r: Result<(), AccessError>) -> c_int {
    match r {
        Ok(()) => BB_OK,
        Err(AccessError::ReadOnly(_)) => BB_ERR_READONLY,
        // GuestMemory only knows RAM: anything else (unmapped or registers) is `NotRam`.
        Err(AccessError::NotRam(_) | AccessError::Unmapped(_)) => BB_ERR_UNMAPPED,
        Err(AccessError::Reentrant(_)) => BB_ERR_MMIO,
    }
}

unsafe extern "C" fn host_dma_read(
    h: *mut bb_host,
    addr: u64,
    buf: *mut c_void,
    len: usize,
) -> c_int {
    // SAFETY: the plugin passes its own handle.
    let Some(c) = (unsafe { ctx(h) }) else {
        return BB_ERR_INVAL;
    };
    if buf.is_null() {
        return if len == 0 { BB_OK } else { BB_ERR_INVAL };
    }
    // SAFETY: the plugin gives `len` writable bytes at `buf` for the call.
    let out = unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), len) };
    dma_status(c.dma.read(addr, out))
}

unsafe extern "C" fn host_dma_write(
    h: *mut bb_host,
    addr: u64,
    buf: *const c_void,
    len: usize,
) -> c_int {
    // SAFETY: the plugin passes its own handle.
    let Some(c) = (unsafe { ctx(h) }) else {
        return BB_ERR_INVAL;
    };
    if buf.is_null() {
        return if len == 0 { BB_OK } else { BB_ERR_INVAL };
    }
    // SAFETY: the plugin gives `len` readable bytes at `buf` for the call.
    let data = unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), len) };
    dma_status(c.dma.write(addr, data))
}

unsafe extern "C" fn host_chr_write(h: *mut bb_host, buf: *const u8, len: usize) -> usize {
    // SAFETY: the plugin passes its own handle.
    let Some(c) = (unsafe { ctx(h) }) else {
        return 0;
    };
    let Some(chr) = &c.chardev else { return 0 };
    if buf.is_null() {
        return 0;
    }
    // SAFETY: the plugin gives `len` readable bytes at `buf` for the call.
    chr.write(unsafe { std::slice::from_raw_parts(buf, len) });
    len
}

unsafe extern "C" fn host_log(h: *mut bb_host, level: u32, msg: *const c_char, len: usize) {
    if msg.is_null() {
        return;
    }
    // SAFETY: the plugin gives `len` readable bytes at `msg` for the call.
    let bytes = unsafe { std::slice::from_raw_parts(msg.cast::<u8>(), len) };
    let text = String::from_utf8_lossy(bytes);
    // SAFETY: NULL (during init) or the plugin's own handle.
    let who = unsafe { ctx(h) }.map_or("plugin", |c| c.name.as_str());
    match level {
        BB_LOG_GUEST_ERROR => tracing::warn!(target: "guest_error", "{who}: {text}"),
        BB_LOG_UNIMP => tracing::warn!(target: "unimp", "{who}: {text}"),
        _ => tracing::info!("{who}: {text}"),
    }
}

impl HostCtx {
    fn prop(&self, name: *const c_char) -> Option<(PropKind, Option<&PropValue>)> {
        // SAFETY: the plugin passes a NUL-terminated name valid for the call.
        let name = unsafe { cstr(name) }?;
        let kind = self.kinds.iter().find(|(n, _)| n == name)?.1;
        Some((kind, self.props.get(name)))
    }
}

unsafe extern "C" fn host_prop_u64(h: *mut bb_host, name: *const c_char, out: *mut u64) -> c_int {
    // SAFETY: the plugin passes its own handle.
    let Some(c) = (unsafe { ctx(h) }) else {
        return BB_ERR_INVAL;
    };
    match c.prop(name) {
        Some((PropKind::Int | PropKind::Size, Some(PropValue::U64(v)))) if !out.is_null() => {
            // SAFETY: non-NULL out-pointer from the plugin.
            unsafe { *out = *v };
            BB_OK
        }
        _ => BB_ERR_INVAL,
    }
}

unsafe extern "C" fn host_prop_bool(
    h: *mut bb_host,
    name: *const c_char,
    out: *mut c_int,
) -> c_int {
    // SAFETY: the plugin passes its own handle.
    let Some(c) = (unsafe { ctx(h) }) else {
        return BB_ERR_INVAL;
    };
    match c.prop(name) {
        Some((PropKind::Bool, v)) if !out.is_null() => {
            // SAFETY: non-NULL out-pointer from the plugin.
            unsafe { *out = c_int::from(matches!(v, Some(PropValue::Bool(true)))) };
            BB_OK
        }
        _ => BB_ERR_INVAL,
    }
}

unsafe extern "C" fn host_prop_str(
    h: *mut bb_host,
    name: *const c_char,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> c_int {
    // SAFETY: the plugin passes its own handle.
    let Some(c) = (unsafe { ctx(h) }) else {
        return BB_ERR_INVAL;
    };
    let s = match c.prop(name) {
        Some((PropKind::Str | PropKind::Chardev | PropKind::Link, v)) => match v {
            Some(PropValue::Str(s)) => s.as_str(),
            _ => "",
        },
        _ => return BB_ERR_INVAL,
    };
    if !len.is_null() {
        // SAFETY: non-NULL out-pointer from the plugin.
        unsafe { *len = s.len() };
    }
    if s.len() > cap || (buf.is_null() && !s.is_empty() && cap > 0) {
        return if cap == 0 { BB_OK } else { BB_ERR_NOSPACE };
    }
    if !buf.is_null() {
        // SAFETY: the plugin gives `cap` >= s.len() writable bytes at `buf`.
        unsafe { std::ptr::copy_nonoverlapping(s.as_ptr(), buf.cast::<u8>(), s.len()) };
    }
    BB_OK
}

/// What `bb_fdt *` points at while `write_fdt` runs.
struct FdtCtx {
    writer: *mut FdtWriter,
}

/// # Safety
/// `f` must be the handle passed to the current `write_fdt` call.
unsafe fn fdt_ctx<'a>(f: *mut bb_fdt) -> Option<&'a mut FdtWriter> {
    // SAFETY: per the contract, `f` points at a live `FdtCtx` whose writer is exclusively
    // ours for the duration of the plugin's `write_fdt`.
    unsafe { f.cast::<FdtCtx>().as_ref().and_then(|c| c.writer.as_mut()) }
}

fn fdt_status(r: Result<(), FdtError>) -> c_int {
    if r.is_ok() { BB_OK } else { BB_ERR_INVAL }
}

unsafe extern "C" fn host_fdt_u32(f: *mut bb_fdt, name: *const c_char, v: u32) -> c_int {
    // SAFETY: handle and name from the plugin, valid for the call.
    let (Some(w), Some(n)) = (unsafe { fdt_ctx(f) }, unsafe { cstr(name) }) else {
        return BB_ERR_INVAL;
    };
    fdt_status(w.property_u32(n, v))
}

unsafe extern "C" fn host_fdt_cells(
    f: *mut bb_fdt,
    name: *const c_char,
    cells: *const u32,
    len: usize,
) -> c_int {
    // SAFETY: handle and name from the plugin, valid for the call.
    let (Some(w), Some(n)) = (unsafe { fdt_ctx(f) }, unsafe { cstr(name) }) else {
        return BB_ERR_INVAL;
    };
    if cells.is_null() && len > 0 {
        return BB_ERR_INVAL;
    }
    let v = if len == 0 {
        &[][..]
    } else {
        // SAFETY: the plugin gives `len` cells at `cells`.
        unsafe { std::slice::from_raw_parts(cells, len) }
    };
    fdt_status(w.property_array_u32(n, v))
}

unsafe extern "C" fn host_fdt_string(
    f: *mut bb_fdt,
    name: *const c_char,
    value: *const c_char,
) -> c_int {
    // SAFETY: handle and strings from the plugin, valid for the call.
    let (Some(w), Some(n), Some(v)) = (unsafe { fdt_ctx(f) }, unsafe { cstr(name) }, unsafe {
        cstr(value)
    }) else {
        return BB_ERR_INVAL;
    };
    fdt_status(w.property_string(n, v))
}

unsafe extern "C" fn host_fdt_empty(f: *mut bb_fdt, name: *const c_char) -> c_int {
    // SAFETY: handle and name from the plugin, valid for the call.
    let (Some(w), Some(n)) = (unsafe { fdt_ctx(f) }, unsafe { cstr(name) }) else {
        return BB_ERR_INVAL;
    };
    fdt_status(w.property_null(n))
}

unsafe extern "C" fn host_mark_broken(h: *mut bb_host, msg: *const c_char, len: usize) {
    // SAFETY: the plugin passes its own handle.
    let Some(c) = (unsafe { ctx(h) }) else { return };
    if c.broken.replace(true) {
        return;
    }
    let text = if msg.is_null() {
        Cow::Borrowed("(no message)")
    } else {
        // SAFETY: the plugin gives `len` readable bytes at `msg`.
        String::from_utf8_lossy(unsafe { std::slice::from_raw_parts(msg.cast::<u8>(), len) })
    };
    tracing::error!(
        "{}: device is broken and now ignored (reads 0, writes dropped): {text}",
        c.name
    );
}

/// The host services every plugin gets.
pub static HOST_API: bb_host_api = bb_host_api {
    size: size_u32::<bb_host_api>(),
    abi_major: BB_ABI_MAJOR,
    abi_minor: BB_ABI_MINOR,
    now_ns: Some(host_now_ns),
    timer_mod: Some(host_timer_mod),
    timer_del: Some(host_timer_del),
    irq_set: Some(host_irq_set),
    dma_read: Some(host_dma_read),
    dma_write: Some(host_dma_write),
    chr_write: Some(host_chr_write),
    log: Some(host_log),
    prop_u64: Some(host_prop_u64),
    prop_bool: Some(host_prop_bool),
    prop_str: Some(host_prop_str),
    fdt_prop_u32: Some(host_fdt_u32),
    fdt_prop_cells: Some(host_fdt_cells),
    fdt_prop_string: Some(host_fdt_string),
    fdt_prop_empty: Some(host_fdt_empty),
    mark_broken: Some(host_mark_broken),
};

/// A device implemented by a plugin.
pub struct PluginDevice {
    // Drop order matters: the device is destroyed (in `Drop`) before the library goes.
    dev: NonNull<c_void>,
    host: NonNull<HostCtx>,
    ty: Rc<TypeDesc>,
    _lib: Rc<Library>,
}

impl PluginDevice {
    fn host(&self) -> &HostCtx {
        // SAFETY: `host` is our own allocation, freed only in `Drop`, never mutably borrowed.
        unsafe { self.host.as_ref() }
    }

    /// Whether the device failed (a plugin panic) and is now ignored.
    pub fn is_broken(&self) -> bool {
        self.host().broken.get()
    }

    /// The plugin type name.
    pub fn type_name(&self) -> &str {
        &self.ty.name
    }

    /// Snapshot state, if the plugin supports snapshots (ABI 1.1 `snapshot_save`).
    pub fn snapshot_save(&self) -> Option<Vec<u8>> {
        let f = self.ty.ops.snapshot_save?;
        if self.is_broken() {
            return None;
        }
        // SAFETY: the plugin's callback with its own device pointer; a NULL buffer queries the size.
        let n = unsafe { f(self.dev.as_ptr(), std::ptr::null_mut(), 0) };
        let mut buf = vec![0u8; n];
        // SAFETY: `buf` has `n` writable bytes.
        let m = unsafe { f(self.dev.as_ptr(), buf.as_mut_ptr(), n) };
        (m == n).then_some(buf)
    }

    /// Restores snapshot state.
    pub fn snapshot_load(&mut self, data: &[u8]) -> Result<(), String> {
        let f = self
            .ty
            .ops
            .snapshot_load
            .ok_or("the plugin does not support snapshots")?;
        if self.is_broken() {
            return Err("the device is broken".into());
        }
        // SAFETY: `data` is valid for the call.
        match unsafe { f(self.dev.as_ptr(), data.as_ptr(), data.len()) } {
            BB_OK => Ok(()),
            e => Err(format!("the plugin refused the snapshot (code {e})")),
        }
    }
}

impl Drop for PluginDevice {
    fn drop(&mut self) {
        if let Some(destroy) = self.ty.ops.destroy {
            // SAFETY: the device pointer `create` returned, destroyed exactly once.
            unsafe { destroy(self.dev.as_ptr()) };
        }
        // SAFETY: allocated with `Box::into_raw` in `make`; the plugin no longer holds it.
        drop(unsafe { Box::from_raw(self.host.as_ptr()) });
    }
}

impl Device for PluginDevice {
    fn snapshot_save(&self) -> Result<Vec<u8>, breadboard_core::snapshot::SnapshotError> {
        PluginDevice::snapshot_save(self).ok_or_else(|| {
            breadboard_core::snapshot::SnapshotError::Unsupported(self.ty.name.to_string())
        })
    }

    fn snapshot_load(
        &mut self,
        data: &[u8],
    ) -> Result<(), breadboard_core::snapshot::SnapshotError> {
        PluginDevice::snapshot_load(self, data).map_err(|e| {
            breadboard_core::snapshot::SnapshotError::Corrupt(format!(
                "device '{}': {e}",
                self.ty.name
            ))
        })
    }

    fn regions(&self) -> Vec<RegionSpec> {
        self.ty
            .regions
            .iter()
            .map(|(name, size)| RegionSpec::Mmio {
                name: Cow::Owned(name.clone()),
                size: *size,
            })
            .collect()
    }

    fn read(&mut self, region: usize, offset: u64, size: u8) -> u64 {
        if self.is_broken() {
            return 0;
        }
        let Some(read) = self.ty.ops.read else {
            return 0;
        };
        // SAFETY: the plugin's callback with its own device pointer.
        unsafe { read(self.dev.as_ptr(), region as u32, offset, u32::from(size)) }
    }

    fn write(&mut self, region: usize, offset: u64, size: u8, value: u64) {
        if self.is_broken() {
            return;
        }
        if let Some(write) = self.ty.ops.write {
            // SAFETY: the plugin's callback with its own device pointer.
            unsafe {
                write(
                    self.dev.as_ptr(),
                    region as u32,
                    offset,
                    u32::from(size),
                    value,
                )
            }
        }
    }

    fn irq_outputs(&self) -> Vec<IrqLine> {
        self.host().irqs.clone()
    }

    fn gpio_inputs(&self) -> u32 {
        self.ty.num_gpio_in
    }

    fn set_gpio(&mut self, line: u32, level: bool) {
        if self.is_broken() || line >= self.ty.num_gpio_in {
            return;
        }
        if let Some(f) = self.ty.ops.set_gpio {
            // SAFETY: the plugin's callback with its own device pointer.
            unsafe { f(self.dev.as_ptr(), line, c_int::from(level)) }
        }
    }

    fn reset(&mut self) {
        if self.is_broken() {
            return;
        }
        if let Some(f) = self.ty.ops.reset {
            // SAFETY: the plugin's callback with its own device pointer.
            unsafe { f(self.dev.as_ptr()) }
        }
    }

    fn timer(&mut self, token: u64) {
        if self.is_broken() {
            return;
        }
        if let Some(f) = self.ty.ops.timer {
            // SAFETY: the plugin's callback with its own device pointer.
            unsafe { f(self.dev.as_ptr(), token) }
        }
    }

    fn can_receive(&self) -> usize {
        if self.is_broken() {
            return 0;
        }
        match self.ty.ops.can_receive {
            // SAFETY: the plugin's callback with its own device pointer.
            Some(f) => unsafe { f(self.dev.as_ptr()) },
            None => 0,
        }
    }

    fn receive(&mut self, data: &[u8]) {
        if self.is_broken() {
            return;
        }
        if let Some(f) = self.ty.ops.receive {
            // SAFETY: `data` is valid for the call.
            unsafe { f(self.dev.as_ptr(), data.as_ptr(), data.len()) }
        }
    }

    fn fdt_placement(&self) -> FdtPlacement {
        if self.ty.compatible.is_empty() {
            FdtPlacement::None
        } else {
            FdtPlacement::Soc
        }
    }

    fn write_fdt(&self, fdt: &mut FdtWriter, res: &NodeResources) -> Result<(), FdtError> {
        let node = fdt.begin_node(&res.node_name(&self.ty.node_name))?;
        let compat: Vec<&str> = self.ty.compatible.iter().map(String::as_str).collect();
        res.write_common(fdt, &compat)?;
        if let (Some(f), false) = (self.ty.ops.write_fdt, self.is_broken()) {
            let mut c = FdtCtx { writer: fdt };
            // SAFETY: `c` outlives the call and is the only path to the writer meanwhile.
            let status = unsafe { f(self.dev.as_ptr(), (&raw mut c).cast::<bb_fdt>()) };
            if status != BB_OK {
                tracing::error!(
                    "{}: plugin failed to write its DT properties ({status})",
                    self.host().name
                );
                return Err(FdtError::InvalidString);
            }
        }
        fdt.end_node(node)
    }
}

/// Builds the [`DeviceType`] for one validated plugin type.
pub(crate) fn device_type(lib: Rc<Library>, desc: TypeDesc) -> DeviceType {
    let desc = Rc::new(desc);
    let compatible: &'static [&'static str] = {
        // `DeviceType::compatible` is `'static`: a plugin's types live as long as the
        // process (libraries are never unloaded), so leak the few strings.
        let v: Vec<&'static str> = desc
            .compatible
            .iter()
            .map(|s| &*Box::leak(s.clone().into_boxed_str()))
            .collect();
        Box::leak(v.into_boxed_slice())
    };
    let d = Rc::clone(&desc);
    DeviceType {
        name: Cow::Owned(desc.name.clone()),
        description: Cow::Owned(desc.description.clone()),
        user_creatable: desc.user_creatable,
        sysbus: true,
        bus: None,
        compatible,
        props: desc.props.clone(),
        factory: Rc::new(move |props, ctx| make(&lib, &d, props, ctx)),
    }
}

fn make(
    lib: &Rc<Library>,
    ty: &Rc<TypeDesc>,
    props: &Props,
    ctx: &DeviceCtx<'_>,
) -> Result<Box<dyn Device>, DeviceError> {
    let mut chardev = None;
    for p in ty.props.iter().filter(|p| p.kind == PropKind::Chardev) {
        let c = ctx.chardev(props, &p.name)?;
        if chardev.is_none() {
            chardev = c;
        }
    }
    let host = Box::new(HostCtx {
        name: ctx.name.to_string(),
        clock: Rc::clone(&ctx.clock),
        timers: ctx.timers.clone(),
        dma: Rc::clone(&ctx.dma),
        irqs: (0..ty.num_irqs).map(|_| IrqLine::new()).collect(),
        chardev,
        props: props.clone(),
        kinds: ty
            .props
            .iter()
            .map(|p| (p.name.to_string(), p.kind))
            .collect(),
        broken: Cell::new(false),
    });
    let host = NonNull::from(Box::leak(host));
    let Some(create) = ty.ops.create else {
        // SAFETY: just leaked above, not shared with anyone.
        drop(unsafe { Box::from_raw(host.as_ptr()) });
        return Err(DeviceError::Realize(format!(
            "plugin type '{}' has no create",
            ty.name
        )));
    };
    let mut err = [0u8; 512];
    // SAFETY: the ABI's create: our handle, the static table, an error buffer of its size.
    let dev = unsafe {
        create(
            host.as_ptr().cast(),
            &HOST_API,
            err.as_mut_ptr().cast(),
            err.len(),
        )
    };
    match NonNull::new(dev) {
        Some(dev) => Ok(Box::new(PluginDevice {
            dev,
            host,
            ty: Rc::clone(ty),
            _lib: Rc::clone(lib),
        })),
        None => {
            // SAFETY: create failed, so the plugin keeps no reference to the handle.
            drop(unsafe { Box::from_raw(host.as_ptr()) });
            let end = err.iter().position(|&b| b == 0).unwrap_or(err.len());
            let msg = String::from_utf8_lossy(err.get(..end).unwrap_or_default()).into_owned();
            Err(DeviceError::Realize(if msg.is_empty() {
                format!("{}: plugin refused to create the device", ty.name)
            } else {
                msg
            }))
        }
    }
}
