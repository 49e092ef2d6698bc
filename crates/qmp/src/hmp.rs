//! The few human monitor commands `human-monitor-command` understands: `info mtree`,
//! `info qtree`, `info status`, `info version` and `help`. Output uses `\n`; the caller turns
//! it into the monitor's `\r\n`.
// Reads guest, file, socket or plugin input: no panicking shortcuts (SECURITY.md, issue 9).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::fmt::Write as _;

use breadboard_core::RegionSpec;
use breadboard_platform::machine::{Machine, Phase, WireTarget};

use crate::commands::{QmpContext, RunStatus};

const HELP: &str = "info mtree -- show memory tree\n\
info qtree -- show device tree\n\
info status -- show the current VM status (running|paused)\n\
info version -- show the version of breadboard\n";

/// Runs one HMP command line and returns its output.
pub fn run(m: &Machine, ctx: &QmpContext, line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        [] => String::new(),
        ["help" | "?"] | ["info"] | ["help", "info"] => HELP.to_string(),
        ["info", "mtree", ..] => m.space.mtree(),
        ["info", "qtree", ..] => qtree(m),
        ["info", "status"] => {
            let s = if m.phase < Phase::Ready {
                RunStatus::Prelaunch
            } else {
                ctx.status
            };
            format!("VM status: {}\n", s.as_str())
        }
        ["info", "version"] => format!("{} (breadboard)\n", env!("CARGO_PKG_VERSION")),
        ["info", what, ..] => format!("unknown command: 'info {what}'\n"),
        [cmd, ..] => format!("unknown command: '{cmd}'\n"),
    }
}

/// `info qtree`: the system bus and each device with its properties, GPIOs and regions.
fn qtree(m: &Machine) -> String {
    let mut s = String::from("bus: main-system-bus\n  type System\n");
    for id in m.device_ids() {
        let Some(e) = m.device(id) else { continue };
        let dev_id = e
            .path
            .strip_prefix("/machine/peripheral/")
            .or_else(|| e.path.strip_prefix("/machine/"))
            .filter(|p| !p.contains('/'));
        match dev_id {
            Some(i) => {
                let _ = writeln!(s, "  dev: {}, id \"{i}\"", e.type_name);
            }
            None => {
                let _ = writeln!(s, "  dev: {}, id \"\"", e.type_name);
            }
        }
        for (name, v) in e.props.iter() {
            match v {
                breadboard_core::PropValue::U64(n) => {
                    let _ = writeln!(s, "    {name} = {n} ({n:#x})");
                }
                breadboard_core::PropValue::Bool(b) => {
                    let _ = writeln!(s, "    {name} = {b}");
                }
                breadboard_core::PropValue::Str(t) => {
                    let _ = writeln!(s, "    {name} = \"{t}\"");
                }
            }
        }
        if e.inputs > 0 {
            let _ = writeln!(s, "    gpio-in \"\" {}", e.inputs);
        }
        if !e.outputs.is_empty() {
            let _ = writeln!(s, "    gpio-out \"sysbus-irq\" {}", e.outputs.len());
        }
        for (i, w) in e.wires.iter().enumerate() {
            let Some(w) = w else { continue };
            let to = match *w {
                WireTarget::Device { id: t, input } => {
                    let label = m.device(t).map_or("?", |x| x.label.as_str());
                    format!("{label} unnamed-gpio-in[{input}]")
                }
                WireTarget::Cpu { hart, bit } => format!("cpu[{hart}] unnamed-gpio-in[{bit}]"),
            };
            let _ = writeln!(s, "    sysbus-irq[{i}] -> {to}");
        }
        for (r, a) in e.regions.iter().zip(&e.mapped) {
            let size = match r {
                RegionSpec::Mmio { size, .. } => *size,
                RegionSpec::Ram { block, .. } => block.size(),
            };
            match a {
                Some(a) => {
                    let _ = writeln!(s, "    mmio {a:016x}/{size:016x}");
                }
                None => {
                    let _ = writeln!(s, "    mmio ffffffffffffffff/{size:016x}");
                }
            }
        }
    }
    s
}
