//! Machine descriptions: a TOML file that lists a machine's harts, memory and devices with
//! their properties and fixed MMIO/IRQ wiring. Built-in machines are such files embedded in
//! the binary; `-M ./board.toml` loads a user's. Unknown keys are errors with file:line.
// Reads guest, file, socket or plugin input: no panicking shortcuts (SECURITY.md, issue 9).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use thiserror::Error;

/// Built-in machine descriptions, by name.
pub const BUILTIN: &[(&str, &str)] = &[
    ("virt", include_str!("../machines/virt.toml")),
    ("none", include_str!("../machines/none.toml")),
];

/// Errors loading a description.
#[derive(Debug, Error)]
pub enum DescriptionError {
    /// Not a built-in machine and not a readable file.
    #[error("unsupported machine type '{0}' (use -M help to list machines, or give a .toml path)")]
    UnknownMachine(String),
    /// The file could not be read.
    #[error("cannot read machine description '{path}': {source}")]
    Read {
        /// File.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// TOML syntax or schema error, with location.
    #[error("{origin}:{line}:{column}: {message}")]
    Parse {
        /// File (or `<builtin NAME>`).
        origin: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// Schema is fine but the content contradicts itself.
    #[error("{origin}: {message}")]
    Invalid {
        /// File.
        origin: String,
        /// What is wrong.
        message: String,
    },
}

/// `[machine]`
#[derive(Clone, Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MachineSection {
    /// Machine name (`virt`).
    pub name: String,
    /// One line for `-M help`.
    #[serde(default)]
    pub description: String,
    /// Root node `compatible`.
    #[serde(default)]
    pub compatible: Vec<String>,
    /// Root node `model`.
    #[serde(default)]
    pub model: String,
    /// Where `-m` RAM goes; no RAM is made without it.
    pub ram_base: Option<u64>,
    /// RAM size when `-m` isn't given (`128M`).
    pub default_ram: Option<String>,
    /// Largest `-smp`.
    #[serde(default = "default_max_cpus")]
    pub max_cpus: u32,
    /// `/chosen/stdout-path`.
    pub stdout_path: Option<String>,
    /// Address of the reset ROM (QEMU's mrom) that passes a0/a1/a2 and jumps to firmware.
    pub reset_rom: Option<u64>,
    /// Whether running without `-bios` is refused with a hint (virt: you need OpenSBI).
    #[serde(default)]
    pub firmware_required: bool,
    /// Device tree `phandle` numbering start.
    pub phandle_start: Option<u32>,
    /// Device types `-device` may add to this machine after initialisation (`*` = every
    /// user-creatable memory-mapped type).
    #[serde(default)]
    pub allow_dynamic: Vec<String>,
    /// Plugins to load before building (issue 6).
    #[serde(default)]
    pub plugins: Vec<String>,
}

fn default_max_cpus() -> u32 {
    16
}

/// `[cpu]`
#[derive(Clone, Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CpuSection {
    /// CPU type (`rv64`, `rv32`, `lowrisc-ibex`); `None` means no hart unless `-cpu`.
    #[serde(rename = "type")]
    pub cpu_type: Option<String>,
    /// Number of harts unless `-smp` says otherwise.
    #[serde(default)]
    pub count: u32,
    /// Timebase in Hz (`/cpus/timebase-frequency`).
    #[serde(default = "default_timebase")]
    pub timebase_frequency: u64,
    /// Reset PC when there is no reset ROM and no ELF entry.
    pub reset_pc: Option<u64>,
}

fn default_timebase() -> u64 {
    10_000_000
}

/// A property value in TOML: string, integer or boolean.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum TomlValue {
    /// Text.
    Str(String),
    /// Integer.
    Int(i64),
    /// Boolean.
    Bool(bool),
}

/// `[[device]]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DeviceSection {
    /// Name in the object tree (`/machine/<name>`) and in wiring references.
    pub name: String,
    /// Device type.
    #[serde(rename = "type")]
    pub dev_type: String,
    /// Addresses of the device's regions, in region order. Missing = placed by the platform bus.
    #[serde(default)]
    pub mmio: Vec<u64>,
    /// Where each `sysbus-irq[N]` goes: `"DEVICE:INPUT"` or `"cpu[H]:BIT"`.
    #[serde(default)]
    pub irq: Vec<String>,
    /// Per-hart output pattern: for hart h and k = len, output k*h+j goes to that hart's mip bit
    /// `irq-per-hart[j]`.
    #[serde(default)]
    pub irq_per_hart: Vec<u32>,
    /// Properties.
    #[serde(default)]
    pub props: BTreeMap<String, TomlValue>,
}

/// `[platform-bus]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PlatformBusSection {
    /// Window start.
    pub base: u64,
    /// Window size.
    pub size: u64,
    /// The interrupt controller (device name) that receives the bus's IRQs.
    pub irq_controller: String,
    /// First controller input the bus may hand out.
    pub irq_base: u32,
    /// How many inputs.
    pub irq_count: u32,
}

/// A whole description.
#[derive(Clone, Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Description {
    /// `[machine]`
    pub machine: MachineSection,
    /// `[cpu]`
    #[serde(default)]
    pub cpu: CpuSection,
    /// `[[device]]`
    #[serde(default, rename = "device")]
    pub devices: Vec<DeviceSection>,
    /// `[platform-bus]`: the window where dynamically added devices are placed.
    pub platform_bus: Option<PlatformBusSection>,
    /// Where it came from, for messages.
    #[serde(skip)]
    pub origin: String,
}

/// The line and column of byte `offset` in `text`, 1-based.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    (line, col)
}

impl Description {
    /// Parses description text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Description, DescriptionError> {
        let mut d: Description = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map_or((1, 1), |s| line_col(text, s.start));
            DescriptionError::Parse {
                origin: origin.to_string(),
                line,
                column,
                message: e.message().trim().replace('\n', " "),
            }
        })?;
        d.origin = origin.to_string();
        d.validate()?;
        Ok(d)
    }

    /// A built-in machine or a `.toml` file path.
    pub fn load(name: &str) -> Result<Description, DescriptionError> {
        if let Some((_, text)) = BUILTIN.iter().find(|(n, _)| *n == name) {
            return Description::parse(text, &format!("<builtin {name}>"));
        }
        let looks_like_path = name.contains('/') || name.ends_with(".toml");
        if !looks_like_path {
            return Err(DescriptionError::UnknownMachine(name.to_string()));
        }
        let text =
            std::fs::read_to_string(Path::new(name)).map_err(|e| DescriptionError::Read {
                path: name.to_string(),
                source: e,
            })?;
        Description::parse(&text, name)
    }

    /// `-M help`.
    pub fn help() -> String {
        let mut s = String::from("Supported machines are:\n");
        for (name, text) in BUILTIN {
            let desc = Description::parse(text, name)
                .map(|d| d.machine.description)
                .unwrap_or_default();
            s.push_str(&format!("{name:<20} {desc}\n"));
        }
        s.push_str("<path>.toml          a machine description file\n");
        s
    }

    fn validate(&self) -> Result<(), DescriptionError> {
        let invalid = |message: String| DescriptionError::Invalid {
            origin: self.origin.clone(),
            message,
        };
        let mut names = std::collections::BTreeSet::new();
        for d in &self.devices {
            if !names.insert(d.name.as_str()) {
                return Err(invalid(format!("device name '{}' is used twice", d.name)));
            }
            if !breadboard_core::object::valid_id(&d.name) {
                return Err(invalid(format!(
                    "device name '{}' is not a valid id (letters, digits, '-', '.', '_')",
                    d.name
                )));
            }
            for w in &d.irq {
                parse_irq_ref(w).map_err(|m| invalid(format!("device '{}': {m}", d.name)))?;
            }
        }
        if self.machine.max_cpus == 0 {
            return Err(invalid("max-cpus must be at least 1".into()));
        }
        Ok(())
    }
}

/// Target of an IRQ wire in a description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IrqRef {
    /// Input `input` of device `name`.
    Device {
        /// Device name.
        name: String,
        /// Input number.
        input: u32,
    },
    /// mip bit `bit` of hart `hart`.
    Cpu {
        /// Hart index.
        hart: u32,
        /// mip bit.
        bit: u32,
    },
}

/// Parses `"plic:10"`, `"plic/unnamed-gpio-in[10]"` or `"cpu[0]:11"`.
pub fn parse_irq_ref(s: &str) -> Result<IrqRef, String> {
    let bad = || {
        format!("IRQ target '{s}' is not 'DEVICE:N', 'DEVICE/unnamed-gpio-in[N]' or 'cpu[H]:BIT'")
    };
    let (target, n) = if let Some((t, rest)) = s.split_once("/unnamed-gpio-in[") {
        (t, rest.strip_suffix(']').ok_or_else(bad)?)
    } else {
        s.rsplit_once(':').ok_or_else(bad)?
    };
    let n: u32 = n.trim().parse().map_err(|_| bad())?;
    if let Some(h) = target
        .strip_prefix("cpu[")
        .and_then(|r| r.strip_suffix(']'))
    {
        let hart = h.parse().map_err(|_| bad())?;
        if n >= 64 {
            return Err(format!("IRQ target '{s}': mip bit {n} is out of range"));
        }
        return Ok(IrqRef::Cpu { hart, bit: n });
    }
    if target.is_empty() {
        return Err(bad());
    }
    Ok(IrqRef::Device {
        name: target.to_string(),
        input: n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_builtin_descriptions_parse() {
        for (name, _) in BUILTIN {
            let d = Description::load(name).expect("builtin parses");
            assert_eq!(&d.machine.name, name);
        }
        let v = Description::load("virt").expect("virt");
        assert_eq!(v.machine.ram_base, Some(0x8000_0000));
        assert!(v.devices.iter().any(|d| d.dev_type == "plic"));
    }

    #[test]
    fn test_typo_is_an_error_with_line() {
        let text = "[machine]\nname = \"x\"\n\n[[device]]\nname = \"u\"\ntype = \"ns16550a\"\nmmoi = [1]\n";
        let e = Description::parse(text, "board.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("board.toml:7:1: unknown field `mmoi`"), "{e}");
    }

    #[test]
    fn test_duplicate_device_names_rejected() {
        let text = "[machine]\nname = \"x\"\n[[device]]\nname = \"u\"\ntype = \"a\"\n[[device]]\nname = \"u\"\ntype = \"b\"\n";
        let e = Description::parse(text, "b.toml").unwrap_err().to_string();
        assert_eq!(e, "b.toml: device name 'u' is used twice");
    }

    #[test]
    fn test_irq_refs() {
        assert_eq!(
            parse_irq_ref("plic:10"),
            Ok(IrqRef::Device {
                name: "plic".into(),
                input: 10
            })
        );
        assert_eq!(
            parse_irq_ref("plic/unnamed-gpio-in[2]"),
            Ok(IrqRef::Device {
                name: "plic".into(),
                input: 2
            })
        );
        assert_eq!(
            parse_irq_ref("cpu[1]:11"),
            Ok(IrqRef::Cpu { hart: 1, bit: 11 })
        );
        assert!(parse_irq_ref("plic").is_err());
        assert!(parse_irq_ref("cpu[x]:1").is_err());
        assert!(parse_irq_ref(":1").is_err());
    }

    #[test]
    fn test_unknown_machine_and_missing_file() {
        assert!(matches!(
            Description::load("vert"),
            Err(DescriptionError::UnknownMachine(_))
        ));
        assert!(matches!(
            Description::load("/nonexistent/board.toml"),
            Err(DescriptionError::Read { .. })
        ));
    }
}
