//! breadboard's QMP: a QEMU wire-compatible control socket (QEMU's docs/interop/qmp-spec)
//! so QEMU's own clients (`qemu.qmp`, `qmp-shell`) drive breadboard unchanged, the command
//! table that builds machines from a preconfig session (`x-machine-init`, `device_add`,
//! `x-sysbus-mmio-map`, `qom-set` IRQ wiring, `x-exit-preconfig`) and controls them, and a
//! runner for qmp-shell scripts. See `DESIGN.md` beside this crate.
//!
//! ```no_run
//! use std::sync::mpsc;
//! use breadboard_platform::{BootOptions, Event};
//! use breadboard_qmp::{ListenSpec, QmpContext, ServerHandle};
//!
//! let (tx, rx) = mpsc::channel::<Event>();
//! let qmp = ServerHandle::new(QmpContext::new(BootOptions::default(), false), tx);
//! qmp.listen(&ListenSpec::parse("unix:/tmp/qmp.sock,server=on,wait=off")?)?;
//! // The main loop runs `Event::Call` closures from `rx`; `qmp` is its `RunHooks`.
//! # drop(rx);
//! # Ok::<(), breadboard_qmp::ServerError>(())
//! ```
// Reads guest, file, socket or plugin input: no panicking shortcuts (SECURITY.md, issue 9).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

pub mod commands;
pub mod error;
pub mod hmp;
pub mod json;
pub mod protocol;
pub mod script;
pub mod server;

pub use commands::{QmpContext, RunStatus, execute};
pub use error::{ErrorClass, QmpError, ServerError};
pub use script::{ScriptError, run_script};
pub use server::{Broadcaster, ListenAddr, ListenSpec, ServerHandle, start_server};
