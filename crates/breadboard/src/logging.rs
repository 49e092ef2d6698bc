//! `-d ITEMS` and `-D FILE`: QEMU's debug log, on top of `tracing`.
//!
//! Code logs a debug item by emitting a `tracing` event whose target is the item's target
//! (`tracing::info!(target: "mmio", "…")`; see [`LogItem::target`]). Such events are printed only
//! when the item was enabled with `-d`, as plain lines (the message and any fields, nothing else)
//! to stderr or to the `-D` file. Warnings and errors from every other target always go to
//! stderr as `breadboard: …` / `breadboard: warning: …`; lower levels from other targets are
//! dropped.
//!
//! Disabled items cost one atomic load per call site: the filters answer `never` for their call
//! sites, which `tracing` caches. Hot loops that build an expensive message (the per-block
//! `exec` trace, the `in_asm` disassembly) should still test [`enabled`] first.
// Reads guest, file, socket or plugin input: no panicking shortcuts (SECURITY.md, issue 9).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::fmt::{self, Write as _};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use thiserror::Error;
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::writer::MutexGuardWriter;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::{Context, Filter, Layer as _, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;

/// One `-d` item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LogItem {
    /// `guest_errors`: the guest did something invalid (unmapped access, bad register).
    GuestErrors,
    /// `unimp`: the guest used something the emulator does not implement.
    Unimp,
    /// `int`: interrupts and exceptions taken by a hart.
    Int,
    /// `in_asm`: guest instructions, as each block is decoded.
    InAsm,
    /// `exec`: every block executed.
    Exec,
    /// `mmu`: page-table walks, TLB fills and flushes, PMP faults.
    Mmu,
    /// `mmio`: every access to a memory-mapped device.
    Mmio,
    /// `plic`: interrupt-controller state changes.
    Plic,
}

impl LogItem {
    /// Every item, in the order `-d help` lists them.
    pub const ALL: [LogItem; 8] = [
        LogItem::GuestErrors,
        LogItem::Unimp,
        LogItem::Int,
        LogItem::InAsm,
        LogItem::Exec,
        LogItem::Mmu,
        LogItem::Mmio,
        LogItem::Plic,
    ];

    /// The name used with `-d` (QEMU's names where QEMU has the item).
    pub const fn name(self) -> &'static str {
        match self {
            LogItem::GuestErrors => "guest_errors",
            LogItem::Unimp => "unimp",
            LogItem::Int => "int",
            LogItem::InAsm => "in_asm",
            LogItem::Exec => "exec",
            LogItem::Mmu => "mmu",
            LogItem::Mmio => "mmio",
            LogItem::Plic => "plic",
        }
    }

    /// The `tracing` target that code logs this item under.
    pub const fn target(self) -> &'static str {
        match self {
            LogItem::GuestErrors => "guest_error",
            other => other.name(),
        }
    }

    /// One line for `-d help`.
    pub const fn description(self) -> &'static str {
        match self {
            LogItem::GuestErrors => {
                "log when the guest does something invalid (e.g. accesses a non-existent register)"
            }
            LogItem::Unimp => "log unimplemented functionality",
            LogItem::Int => "show interrupts and exceptions in short format",
            LogItem::InAsm => "show guest instructions as each block is decoded",
            LogItem::Exec => "show a trace line before each executed block",
            LogItem::Mmu => "log MMU activity: page-table walks, TLB fills and flushes",
            LogItem::Mmio => "log every MMIO access (device, offset, size, value)",
            LogItem::Plic => "log interrupt-controller state changes (pending, claim, complete)",
        }
    }

    /// The item called `name` on the command line.
    pub fn from_name(name: &str) -> Option<LogItem> {
        LogItem::ALL.into_iter().find(|i| i.name() == name)
    }

    /// The item logged under `target`, if any (exact match).
    pub fn from_target(target: &str) -> Option<LogItem> {
        LogItem::ALL.into_iter().find(|i| i.target() == target)
    }

    const fn bit(self) -> u32 {
        1 << self as u32
    }
}

impl fmt::Display for LogItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The text `-d help` prints.
pub fn help_text() -> String {
    let mut s = String::from("Log items (comma separated):\n");
    for item in LogItem::ALL {
        let _ = writeln!(s, "{:<15} {}", item.name(), item.description());
    }
    s
}

/// Why logging could not be set up.
#[derive(Debug, Error)]
pub enum LogError {
    /// The `-D` file could not be created.
    #[error("could not open log file '{}': {source}", .path.display())]
    File {
        /// The path given with `-D`.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// [`init`] ran twice, or something else installed a global subscriber first.
    #[error("logging is already initialised")]
    AlreadyInitialized,
}

static ENABLED: AtomicU32 = AtomicU32::new(0);
static LOG_FILE: OnceLock<SharedWriter<BufWriter<File>>> = OnceLock::new();

/// Whether `-d item` is on. One relaxed atomic load: cheap enough for the CPU loop.
#[inline]
pub fn enabled(item: LogItem) -> bool {
    ENABLED.load(Ordering::Relaxed) & item.bit() != 0
}

/// Installs the global subscriber: `items` are printed to `file` (or stderr), warnings and
/// errors from other targets to stderr. Call once, early in `main`; call [`flush`] before exit
/// when `file` is given (the log file is buffered).
pub fn init(items: &[LogItem], file: Option<&Path>) -> Result<(), LogError> {
    let mask = items.iter().fold(0, |m, i| m | i.bit());
    let errors = io::stderr;
    let result = match file {
        Some(path) => {
            let f = File::create(path).map_err(|source| LogError::File {
                path: path.to_path_buf(),
                source,
            })?;
            let w = SharedWriter::new(BufWriter::new(f));
            let _ = LOG_FILE.set(w.clone());
            tracing::subscriber::set_global_default(subscriber(mask, w, errors))
        }
        None => tracing::subscriber::set_global_default(subscriber(mask, io::stderr, errors)),
    };
    result.map_err(|_| LogError::AlreadyInitialized)?;
    ENABLED.store(mask, Ordering::Relaxed);
    Ok(())
}

/// Flushes the `-D` file, if any. Call before the process exits.
pub fn flush() {
    if let Some(w) = LOG_FILE.get()
        && let Ok(mut g) = w.0.lock()
    {
        let _ = g.flush();
    }
}

/// The subscriber [`init`] installs, with the outputs as parameters (tests capture them).
fn subscriber<I, E>(mask: u32, items_out: I, errors_out: E) -> impl Subscriber + Send + Sync
where
    I: for<'a> MakeWriter<'a> + Send + Sync + 'static,
    E: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let items = tracing_subscriber::fmt::layer()
        .event_format(PlainLines)
        .with_writer(items_out)
        .with_filter(ItemFilter { mask });
    let diagnostics = tracing_subscriber::fmt::layer()
        .event_format(Diagnostics)
        .with_writer(errors_out)
        .with_filter(DiagnosticFilter);
    tracing_subscriber::registry().with(items).with(diagnostics)
}

/// A writer shared behind a mutex, one lock per event.
struct SharedWriter<W>(Arc<Mutex<W>>);

impl<W> SharedWriter<W> {
    fn new(w: W) -> Self {
        SharedWriter(Arc::new(Mutex::new(w)))
    }
}

impl<W> Clone for SharedWriter<W> {
    fn clone(&self) -> Self {
        SharedWriter(Arc::clone(&self.0))
    }
}

impl<'a, W: Write + 'a> MakeWriter<'a> for SharedWriter<W> {
    type Writer = MutexGuardWriter<'a, W>;

    fn make_writer(&'a self) -> Self::Writer {
        self.0.make_writer()
    }
}

/// Passes exactly the events whose target is an enabled item.
struct ItemFilter {
    mask: u32,
}

impl ItemFilter {
    fn wants(&self, meta: &Metadata<'_>) -> bool {
        LogItem::from_target(meta.target()).is_some_and(|i| self.mask & i.bit() != 0)
    }
}

impl<S> Filter<S> for ItemFilter {
    fn enabled(&self, meta: &Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        self.wants(meta)
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        if self.wants(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(if self.mask == 0 {
            LevelFilter::OFF
        } else {
            LevelFilter::TRACE
        })
    }
}

/// Passes warnings and errors whose target is not a debug item.
struct DiagnosticFilter;

impl DiagnosticFilter {
    fn wants(meta: &Metadata<'_>) -> bool {
        *meta.level() <= Level::WARN && LogItem::from_target(meta.target()).is_none()
    }
}

impl<S> Filter<S> for DiagnosticFilter {
    fn enabled(&self, meta: &Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        Self::wants(meta)
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        if Self::wants(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::WARN)
    }
}

/// Collects an event's message and fields as `message key=value …`.
#[derive(Default)]
struct LineVisitor {
    message: String,
    fields: String,
}

impl Visit for LineVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

impl LineVisitor {
    fn of(event: &Event<'_>) -> LineVisitor {
        let mut v = LineVisitor::default();
        event.record(&mut v);
        v
    }
}

/// Debug items: the message and fields, nothing else (QEMU's `qemu_log` lines).
struct PlainLines;

impl<S, N> FormatEvent<S, N> for PlainLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let v = LineVisitor::of(event);
        let msg = v.message.strip_suffix('\n').unwrap_or(&v.message);
        writeln!(w, "{msg}{}", v.fields)
    }
}

/// Warnings and errors: `breadboard: warning: …` / `breadboard: …` (QEMU's `warn_report` and
/// `error_report` shapes).
struct Diagnostics;

impl<S, N> FormatEvent<S, N> for Diagnostics
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let v = LineVisitor::of(event);
        let kind = if *event.metadata().level() == Level::ERROR {
            ""
        } else {
            "warning: "
        };
        writeln!(w, "breadboard: {kind}{}{}", v.message, v.fields)
    }
}

#[cfg(test)]
// Tests: a failing unwrap, index or panic is a failed test (as clippy.toml allows).
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// tracing caches each callsite's interest process-wide and rebuilds it
    /// whenever a dispatcher is created; a rebuild racing a callsite's first
    /// registration on another thread can leave a stale `always`. Tests that
    /// create dispatchers therefore take turns.
    static DISPATCH: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn serial() -> std::sync::MutexGuard<'static, ()> {
        DISPATCH
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn capture() -> (SharedWriter<Vec<u8>>, impl Fn() -> String) {
        let w = SharedWriter::new(Vec::new());
        let r = w.clone();
        (w, move || {
            String::from_utf8(r.0.lock().expect("lock").clone()).expect("utf8")
        })
    }

    #[test]
    fn test_item_names_and_targets_round_trip() {
        for item in LogItem::ALL {
            assert_eq!(LogItem::from_name(item.name()), Some(item));
            assert_eq!(LogItem::from_target(item.target()), Some(item));
        }
        assert_eq!(LogItem::from_name("guest_error"), None);
        assert_eq!(LogItem::from_target("guest_errors"), None);
        assert_eq!(LogItem::GuestErrors.target(), "guest_error");
        assert_eq!(LogItem::from_name("bogus"), None);
        let help = help_text();
        assert!(help.starts_with("Log items (comma separated):\n"));
        for item in LogItem::ALL {
            assert!(help.contains(item.name()), "{help}");
        }
        assert!(help.contains("in_asm          show guest instructions"));
    }

    #[test]
    fn test_enabled_items_print_plain_lines_and_others_stay_silent() {
        let _turn = serial();
        let (items, read_items) = capture();
        let (errors, read_errors) = capture();
        let mask = LogItem::Mmio.bit() | LogItem::Exec.bit() | LogItem::GuestErrors.bit();
        let sub = subscriber(mask, items, errors);
        tracing::subscriber::with_default(sub, || {
            tracing::info!(target: "mmio", "uart0 write 0x0 size 1 = 0x41");
            tracing::trace!(target: "exec", pc = 0x8000_0000u64, "Trace 0:");
            tracing::error!(target: "guest_error", "invalid read at 0x1000");
            tracing::info!(target: "int", "not enabled");
            tracing::info!(target: "plic", "not enabled");
            tracing::info!(target: "mmio_other", "not an item");
            tracing::info!(target: "breadboard::main", "info is not shown");
            tracing::warn!(target: "breadboard::main", "low memory");
            tracing::error!(target: "breadboard_devices::uart", "bad thing {}", 7);
        });
        assert_eq!(
            read_items(),
            "uart0 write 0x0 size 1 = 0x41\nTrace 0: pc=2147483648\ninvalid read at 0x1000\n"
        );
        assert_eq!(
            read_errors(),
            "breadboard: warning: low memory\nbreadboard: bad thing 7\n"
        );
    }

    #[test]
    fn test_disabled_item_errors_are_not_diagnostics() {
        let _turn = serial();
        let (items, read_items) = capture();
        let (errors, read_errors) = capture();
        let sub = subscriber(0, items, errors);
        tracing::subscriber::with_default(sub, || {
            tracing::error!(target: "guest_error", "IRQ loop");
            tracing::warn!(target: "unimp", "csr 0x7c0");
            assert!(!tracing::enabled!(target: "exec", tracing::Level::TRACE));
            assert!(tracing::enabled!(target: "breadboard", tracing::Level::ERROR));
            assert!(!tracing::enabled!(target: "breadboard", tracing::Level::INFO));
        });
        assert_eq!(read_items(), "");
        assert_eq!(read_errors(), "");
    }

    #[test]
    fn test_multiline_messages_keep_their_lines() {
        let _turn = serial();
        let (items, read_items) = capture();
        let (errors, _) = capture();
        let sub = subscriber(LogItem::InAsm.bit(), items, errors);
        tracing::subscriber::with_default(sub, || {
            tracing::info!(target: "in_asm", "IN:\n0x80000000:  addi a0, zero, 1\n");
        });
        assert_eq!(read_items(), "IN:\n0x80000000:  addi a0, zero, 1\n");
    }

    /// The only test that installs the global subscriber (a process can have one).
    #[test]
    fn test_init_writes_items_to_the_log_file() {
        let _turn = serial();
        let dir = std::env::temp_dir().join(format!("bb-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let bad = dir.join("missing-dir").join("log.txt");
        assert!(matches!(
            init(&[LogItem::Mmio], Some(&bad)),
            Err(LogError::File { .. })
        ));
        let path = dir.join("log.txt");
        std::fs::write(&path, "old contents\n").expect("write");
        init(&[LogItem::Mmio, LogItem::Int], Some(&path)).expect("init");
        assert!(enabled(LogItem::Mmio));
        assert!(enabled(LogItem::Int));
        assert!(!enabled(LogItem::Exec));
        tracing::info!(target: "mmio", "to the file");
        tracing::info!(target: "exec", "not enabled");
        flush();
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text, "to the file\n");
        assert!(matches!(init(&[], None), Err(LogError::AlreadyInitialized)));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
