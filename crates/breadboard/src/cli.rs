//! The command line, QEMU's way.
//!
//! Options take one or two dashes (`-kernel`, `--kernel`) and their value as the next argument
//! (never `-opt=value`). Structured values are QEMU "QemuOpts" lists: `key=value,key=value`,
//! where the first element may omit its key (the option's *implied* key: `-M virt` is
//! `-M type=virt`), `,,` is a literal comma, and a bare `help` or `?` asks for help. Repeated
//! keys: the last one wins, except in `-device`, where a repeated property is an error.
//!
//! [`parse`] turns the arguments into a [`Command`]; a [`Config`] holds every option as typed
//! fields. Machine, CPU, device and plugin properties stay raw `(key, value)` lists: the
//! machine builder checks them against the type's property schema. Errors are [`CliError`]s
//! whose `Display` is the line QEMU would print after its program name (`main` prints
//! `breadboard: {error}` and exits with status 1).
// Reads guest, file, socket or plugin input: no panicking shortcuts (SECURITY.md, issue 9).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::PathBuf;

use thiserror::Error;

use crate::chardev::{ChardevSpec, SocketAddrSpec, SocketSpec};
use crate::logging::{self, LogItem};

/// The most harts a machine may have.
pub const MAX_CPUS: u32 = 64;

/// The gdb address `-s` stands for.
pub const DEFAULT_GDB_PORT: u16 = 1234;

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Build and run a machine.
    Run(Box<Config>),
    /// Print this text to stdout and exit 0 (`-h`, `-d help`, `-chardev help`, …).
    Help(String),
    /// `-device help` (`None`: list device types) or `-device TYPE,help` (its properties).
    DeviceHelp(Option<String>),
    /// `-M help` (`None`: list machines) or `-M NAME,help` (the machine's properties).
    MachineHelp(Option<String>),
    /// `-cpu help`: list CPU models.
    CpuHelp,
    /// `-version`: print [`version_text`] and exit 0.
    Version,
}

/// Key/value pairs of one option, in command-line order, keys unique.
pub type KeyValues = Vec<(String, String)>;

/// Everything `Command::Run` needs, one typed field per option.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `-M`/`-machine` (merged over repeated uses, later keys winning).
    pub machine: MachineOpts,
    /// `-cpu`.
    pub cpu: Option<CpuOpts>,
    /// `-smp`: number of harts, 1..=[`MAX_CPUS`]; 1 by default.
    pub smp: u32,
    /// `-m`: RAM size in bytes (rounded up to 4 KiB); `None` for the machine's default.
    pub memory: Option<u64>,
    /// `-bios`.
    pub bios: Firmware,
    /// `-kernel`.
    pub kernel: Option<PathBuf>,
    /// `-initrd` (only with `-kernel`).
    pub initrd: Option<PathBuf>,
    /// `-append` (only with `-kernel`).
    pub append: Option<String>,
    /// `-dtb`.
    pub dtb: Option<PathBuf>,
    /// `-device`, in order.
    pub devices: Vec<DeviceOpts>,
    /// `-drive`, in order.
    pub drives: Vec<DriveOpts>,
    /// Every chardev to open, in order: `-chardev`s, then those made by `-serial` (`serialN`),
    /// the default serial, `-gdb`/`-s` (`gdb`) and `-qmp` (`qmpN`). Ids are unique and at most
    /// one is stdio.
    pub chardevs: Vec<ChardevOpts>,
    /// Serial port N is connected to chardev `serials[N]` (`None`: `-serial none`, no port).
    pub serials: Vec<Option<String>>,
    /// `-nographic` was given.
    pub nographic: bool,
    /// `-display none` or `-nographic` was given (breadboard has no display either way).
    pub display_none: bool,
    /// `-d`, deduplicated, in the order given (the last `-d` wins, like QEMU).
    pub log_items: Vec<LogItem>,
    /// `-D`.
    pub log_file: Option<PathBuf>,
    /// `-no-reboot`.
    pub no_reboot: bool,
    /// `-S`: harts stay stopped until QMP `cont` or gdb `c`.
    pub start_stopped: bool,
    /// `-gdb`/`-s`: the chardev the gdb stub serves (in `chardevs`).
    pub gdb: Option<String>,
    /// `-qmp`: chardevs QMP monitors serve (in `chardevs`).
    pub qmp: Vec<String>,
    /// `-preconfig`.
    pub preconfig: bool,
    /// `-icount`.
    pub icount: Option<IcountOpts>,
    /// `-plugin`, in order.
    pub plugins: Vec<PluginOpts>,
    /// `-qmp-script`.
    pub qmp_script: Option<PathBuf>,
    /// `-name`.
    pub name: Option<String>,
    /// `-nodefaults`.
    pub nodefaults: bool,
    /// `-monitor none` was given.
    pub monitor_none: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            machine: MachineOpts::default(),
            cpu: None,
            smp: 1,
            memory: None,
            bios: Firmware::Default,
            kernel: None,
            initrd: None,
            append: None,
            dtb: None,
            devices: Vec::new(),
            drives: Vec::new(),
            chardevs: Vec::new(),
            serials: Vec::new(),
            nographic: false,
            display_none: false,
            log_items: Vec::new(),
            log_file: None,
            no_reboot: false,
            start_stopped: false,
            gdb: None,
            qmp: Vec::new(),
            preconfig: false,
            icount: None,
            plugins: Vec::new(),
            qmp_script: None,
            name: None,
            nodefaults: false,
            monitor_none: false,
        }
    }
}

/// `-machine [type=]NAME|PATH[,key=value…]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MachineOpts {
    /// A built-in machine name or a machine description path; `None` if not given.
    pub kind: Option<String>,
    /// `dumpdtb=FILE`: write the generated DTB and exit.
    pub dumpdtb: Option<PathBuf>,
    /// `dump=FILE`: export the machine description.
    pub dump: Option<PathBuf>,
    /// `dtb-board=FILE`: build the machine from a DTB.
    pub dtb_board: Option<PathBuf>,
    /// `dtb-board-ignore-unknown=on`: skip DT nodes no device type maps.
    pub dtb_board_ignore_unknown: bool,
    /// Every other machine property, for the machine builder to check.
    pub props: KeyValues,
}

/// `-cpu MODEL[,prop=value…]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuOpts {
    /// The CPU model.
    pub model: String,
    /// Its properties (ISA extensions and the like), unchecked.
    pub props: KeyValues,
}

/// `-bios`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Firmware {
    /// Not given: the machine's default firmware.
    #[default]
    Default,
    /// `-bios none`.
    None,
    /// `-bios FILE`.
    File(PathBuf),
}

/// `-device DRIVER[,id=ID][,prop=value…]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceOpts {
    /// The device type.
    pub driver: String,
    /// `id=`.
    pub id: Option<String>,
    /// The other properties, in order, unchecked.
    pub props: KeyValues,
    /// The option's value as the user wrote it (errors quote it, as QEMU's do).
    pub arg: String,
}

/// `-drive file=FILE,id=ID[,format=raw][,if=none][,readonly=on]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriveOpts {
    /// `id=`, which a `-device …,drive=ID` names.
    pub id: String,
    /// The raw image.
    pub file: PathBuf,
    /// `readonly=on`.
    pub readonly: bool,
}

/// One chardev to open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChardevOpts {
    /// Its id.
    pub id: String,
    /// Its backend.
    pub spec: ChardevSpec,
    /// Which option made it.
    pub origin: ChardevOrigin,
}

/// The option a chardev came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChardevOrigin {
    /// `-chardev`.
    Chardev,
    /// The N-th `-serial`.
    Serial(usize),
    /// The default serial port (`-nographic`, or QEMU's invisible `vc` otherwise).
    DefaultSerial,
    /// `-gdb` or `-s`.
    Gdb,
    /// The N-th `-qmp`.
    Qmp(usize),
}

/// `-icount [shift=]N[,sleep=on|off]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcountOpts {
    /// One instruction takes 2^shift ns of virtual time (0..=10).
    pub shift: u32,
    /// Sleep when the guest is idle to keep virtual time near real time (default on).
    pub sleep: bool,
}

/// `-plugin [file=]PATH[,arg=value…]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginOpts {
    /// The shared library.
    pub file: PathBuf,
    /// Arguments for the plugin, in order (repeats allowed).
    pub args: KeyValues,
}

/// A command-line error; `Display` is QEMU's one-line message (without the program name).
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum CliError {
    /// An option nobody knows.
    #[error("{0}: invalid option")]
    InvalidOption(String),
    /// An option's value is missing.
    #[error("{0}: requires an argument")]
    MissingArgument(String),
    /// A word that is not an option.
    #[error("{0}: unexpected argument (options start with '-'; disk images are given with -drive)")]
    UnexpectedArgument(String),
    /// A bad value: `-opt value: reason` (`-opt: reason` when the value is empty).
    #[error("{}: {error}", opt_and_value(.opt, .value))]
    Value {
        /// The option as typed (`-smp`, `--smp`).
        opt: String,
        /// Its value as typed.
        value: String,
        /// What is wrong with it.
        error: OptError,
    },
    /// `-append` without `-kernel`.
    #[error("-append only allowed with -kernel option")]
    AppendWithoutKernel,
    /// `-initrd` without `-kernel`.
    #[error("-initrd only allowed with -kernel option")]
    InitrdWithoutKernel,
}

/// What is wrong with an option's value.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum OptError {
    /// A key the option does not have.
    #[error("Invalid parameter '{0}'")]
    InvalidParameter(String),
    /// A QEMU key breadboard does not implement.
    #[error("Parameter '{0}' is not supported")]
    UnsupportedParameter(String),
    /// A non-first element without `=` (short-form booleans are not accepted).
    #[error("Expected '=' after parameter '{0}'")]
    ExpectedEquals(String),
    /// An element with an empty key (`=x`).
    #[error("Parameter name is empty")]
    EmptyKey,
    /// A required key is absent.
    #[error("Parameter '{0}' is missing")]
    MissingParameter(String),
    /// A `-device` property given twice.
    #[error("Property '{0}' is specified twice")]
    DuplicateProperty(String),
    /// Not a boolean.
    #[error("Parameter '{key}' expects 'on' or 'off'")]
    ExpectedBool {
        /// The key.
        key: String,
    },
    /// Not a number.
    #[error("Parameter '{key}' expects a number")]
    ExpectedNumber {
        /// The key.
        key: String,
    },
    /// Not a size.
    #[error("Parameter '{key}' expects a size (a number with an optional K, M, G or T suffix)")]
    ExpectedSize {
        /// The key.
        key: String,
    },
    /// Not an identifier.
    #[error(
        "Parameter '{key}' expects an identifier (letters, digits, '-', '.', '_', starting with a letter)"
    )]
    ExpectedIdentifier {
        /// The key.
        key: String,
    },
    /// An empty path or name.
    #[error("value must not be empty")]
    EmptyValue,
    /// `-smp` out of range.
    #[error("Invalid SMP CPUs {cpus}. The {bound} CPUs supported by {} is {limit}", machine_phrase(.machine))]
    SmpCpus {
        /// The requested count.
        cpus: u64,
        /// `"min"` or `"max"`.
        bound: &'static str,
        /// The limit.
        limit: u32,
        /// The `-M` machine, if given.
        machine: Option<String>,
    },
    /// `-smp maxcpus=` different from `cpus=`.
    #[error("maxcpus must equal cpus (CPU hotplug is not supported)")]
    MaxCpus,
    /// `-m 0`.
    #[error("memory size must be non-zero")]
    ZeroMemory,
    /// `-icount shift=` out of range.
    #[error("Parameter 'shift' expects a number from 0 to 10 ('auto' is not supported)")]
    IcountShift,
    /// An unknown `-d` item.
    #[error("unknown log item '{0}' (use '-d help' for the list)")]
    UnknownLogItem(String),
    /// An unknown `-chardev` backend.
    #[error("'{0}' is not a valid char driver name")]
    UnknownChardevBackend(String),
    /// A QEMU `-chardev` backend breadboard does not have.
    #[error("chardev backend '{0}' is not supported (use null, stdio, file or socket)")]
    UnsupportedChardevBackend(String),
    /// An unknown `-serial`/`-gdb`/`-qmp` device.
    #[error(
        "unknown character device '{0}' (use stdio, mon:stdio, null, none, file:PATH, unix:PATH, tcp:HOST:PORT or chardev:ID)"
    )]
    UnknownCharDevice(String),
    /// `mon:` with something other than stdio.
    #[error("'mon:' is only supported as 'mon:stdio'")]
    MonNotStdio,
    /// A TCP port that is not 0..=65535.
    #[error("invalid port '{0}'")]
    InvalidPort(String),
    /// `tcp:` without `HOST:PORT`.
    #[error("expected tcp:[HOST]:PORT")]
    ExpectedHostPort,
    /// `-chardev socket` with both `path` and `host`.
    #[error("'path' and 'host' are mutually exclusive")]
    PathAndHost,
    /// `-chardev socket` with neither.
    #[error("socket needs 'path' (unix) or 'host'/'port' (tcp)")]
    NoSocketAddress,
    /// `wait=` on a client socket.
    #[error("'wait' option is incompatible with socket in client connect mode")]
    WaitWithoutServer,
    /// Two chardevs on stdio.
    #[error("cannot use stdio by multiple character devices")]
    StdioTwice,
    /// An id used twice.
    #[error("Duplicate ID '{id}' for {kind}")]
    DuplicateId {
        /// The id.
        id: String,
        /// `chardev`, `device` or `drive`.
        kind: &'static str,
    },
    /// `chardev:ID` naming no chardev.
    #[error("chardev '{0}' not found")]
    ChardevNotFound(String),
    /// `-drive format=` other than raw.
    #[error("drive format '{0}' is not supported (only 'raw')")]
    DriveFormat(String),
    /// `-drive if=` other than none.
    #[error(
        "drive interface '{0}' is not supported (use if=none and attach it with -device …,drive=ID)"
    )]
    DriveInterface(String),
    /// `-display` other than none.
    #[error(
        "display '{0}' is not supported (breadboard has no graphical display; use -display none)"
    )]
    DisplayType(String),
    /// `-monitor` other than none.
    #[error("only '-monitor none' is supported (use -qmp for a QMP monitor)")]
    Monitor,
}

fn opt_and_value(opt: &str, value: &str) -> String {
    if value.is_empty() {
        opt.to_string()
    } else {
        format!("{opt} {value}")
    }
}

fn machine_phrase(machine: &Option<String>) -> String {
    match machine {
        Some(m) => format!("machine '{m}'"),
        None => "this machine".to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// The option table: drives both parsing and `--help`.

struct OptDef {
    names: &'static [&'static str],
    arg: Option<&'static str>,
    help: &'static str,
}

const fn flag(names: &'static [&'static str], help: &'static str) -> OptDef {
    OptDef {
        names,
        arg: None,
        help,
    }
}

const fn with_arg(names: &'static [&'static str], arg: &'static str, help: &'static str) -> OptDef {
    OptDef {
        names,
        arg: Some(arg),
        help,
    }
}

const SECTIONS: &[(&str, &[OptDef])] = &[
    (
        "Standard options",
        &[
            flag(&["h", "help"], "display this help and exit"),
            flag(&["version"], "display version information and exit"),
            with_arg(
                &["machine", "M"],
                "[type=]NAME|FILE[,prop=value[,...]]",
                "a built-in machine or a description file ('-M help' lists them)",
            ),
            with_arg(
                &["cpu"],
                "MODEL[,prop=value[,...]]",
                "CPU model and ISA extensions ('-cpu help' lists models)",
            ),
            with_arg(&["smp"], "[cpus=]N", "number of harts (1 to 64, default 1)"),
            with_arg(
                &["m"],
                "[size=]SIZE",
                "RAM size: plain numbers are MiB, or use K, M, G, T (512M, 2G)",
            ),
            with_arg(
                &["name"],
                "[guest=]NAME",
                "name the guest (reported by QMP query-name)",
            ),
            flag(
                &["nodefaults"],
                "create no default devices (no default serial port)",
            ),
            flag(
                &["preconfig"],
                "stop before machine init so QMP can build the machine",
            ),
            flag(
                &["S"],
                "do not start the harts (continue with QMP 'cont' or gdb 'c')",
            ),
            flag(
                &["no-reboot"],
                "exit instead of rebooting when the guest resets",
            ),
            with_arg(
                &["icount"],
                "[shift=]N[,sleep=on|off]",
                "deterministic time: each instruction takes 2^N ns (N is 0 to 10)",
            ),
        ],
    ),
    (
        "Boot options",
        &[
            with_arg(
                &["bios"],
                "FILE|none",
                "firmware image, or 'none' (default: the machine's)",
            ),
            with_arg(&["kernel"], "FILE", "kernel image (ELF or raw binary)"),
            with_arg(&["initrd"], "FILE", "initial ramdisk (needs -kernel)"),
            with_arg(
                &["append"],
                "CMDLINE",
                "kernel command line (needs -kernel)",
            ),
            with_arg(
                &["dtb"],
                "FILE",
                "pass FILE to the guest instead of the generated device tree",
            ),
        ],
    ),
    (
        "Device options",
        &[
            with_arg(
                &["device"],
                "DRIVER[,id=ID][,prop=value[,...]]",
                "add a device ('-device help' lists types, '-device T,help' props)",
            ),
            with_arg(
                &["drive"],
                "file=FILE,id=ID[,format=raw][,if=none][,readonly=on]",
                "add a raw disk image for a '-device ...,drive=ID'",
            ),
            with_arg(
                &["plugin"],
                "[file=]LIB[,arg=value[,...]]",
                "load device models from a plugin (shared library)",
            ),
        ],
    ),
    (
        "Character devices (DEV syntax below)",
        &[
            with_arg(
                &["chardev"],
                "BACKEND,id=ID[,...]",
                "add a character device ('-chardev help' lists backends)",
            ),
            with_arg(
                &["serial"],
                "DEV",
                "connect the next serial port to DEV (repeatable)",
            ),
            flag(
                &["nographic"],
                "no display; serial port on stdio with Ctrl-A escapes (C-a x quits)",
            ),
            with_arg(
                &["display"],
                "none",
                "no display (breadboard has no other kind)",
            ),
            with_arg(
                &["monitor"],
                "none",
                "no human monitor (use -qmp for a machine-readable one)",
            ),
        ],
    ),
    (
        "Debugging and control",
        &[
            with_arg(
                &["d"],
                "ITEM[,...]",
                "enable debug log items ('-d help' lists them)",
            ),
            with_arg(
                &["D"],
                "FILE",
                "write the debug log to FILE instead of stderr",
            ),
            with_arg(
                &["gdb"],
                "DEV",
                "serve the gdb remote protocol on DEV (e.g. tcp::1234)",
            ),
            flag(&["s"], "shorthand for -gdb tcp::1234 (loopback only)"),
            with_arg(
                &["qmp"],
                "DEV",
                "serve QMP on DEV, e.g. unix:/tmp/qmp.sock,server=on,wait=off",
            ),
            with_arg(
                &["qmp-script"],
                "FILE",
                "run a file of qmp-shell style QMP commands at startup",
            ),
        ],
    ),
];

const USAGE_NOTES: &str = "\
Values are key=value lists: the first key may be omitted (-M virt), ',,' is a
literal comma, and 'help' lists the choices. Options take one or two dashes.

DEV (for -serial, -gdb, -qmp):
  stdio                 the terminal (Ctrl-C quits)
  mon:stdio             the terminal with Ctrl-A escapes (C-a x quits, C-a h help)
  null | none           discard output | no device at all
  file:PATH             write output to PATH (truncated)
  unix:PATH[,server=on][,wait=off]
                        unix socket; a server creates PATH (mode 0600)
  tcp:[HOST]:PORT[,server=on][,wait=off][,nodelay=on]
                        TCP socket; HOST defaults to 127.0.0.1
  chardev:ID            a chardev made with -chardev
  A server waits for its first client at startup unless wait=off.

-chardev BACKEND,id=ID[,...]:
  null | stdio[,mux=on][,signal=off] | file,path=PATH[,append=on]
  socket,path=PATH|host=HOST,port=PORT[,server=on][,wait=off][,nodelay=on]
";

const CHARDEV_HELP: &str = "Available chardev backend types:\n  file\n  null\n  socket\n  stdio\n";
const DISPLAY_HELP: &str = "Available display backend types:\nnone\n";

fn lookup(name: &str) -> Option<&'static OptDef> {
    SECTIONS
        .iter()
        .flat_map(|(_, defs)| defs.iter())
        .find(|d| d.names.contains(&name))
}

/// The `--help` text: every option with a one-line description.
pub fn usage() -> String {
    const COL: usize = 30;
    let mut s = String::from(
        "usage: breadboard [options]\n       breadboard vfio list|bind DEVICE|unbind DEVICE\n\nA RISC-V machine emulator whose machines are composed at runtime.\n",
    );
    for (title, defs) in SECTIONS {
        let _ = write!(s, "\n{title}:\n");
        for d in *defs {
            let names: Vec<String> = d.names.iter().map(|n| format!("-{n}")).collect();
            let mut left = names.join(", ");
            if let Some(a) = d.arg {
                left.push(' ');
                left.push_str(a);
            }
            if left.len() < COL {
                let _ = writeln!(s, "  {left:<COL$}{}", d.help);
            } else {
                let _ = writeln!(s, "  {left}\n  {:<COL$}{}", "", d.help);
            }
        }
    }
    s.push('\n');
    s.push_str(USAGE_NOTES);
    s
}

/// The `-version` text.
pub fn version_text() -> String {
    format!("breadboard version {}\n", env!("CARGO_PKG_VERSION"))
}

// ---------------------------------------------------------------------------------------------
// QemuOpts

/// Reads a value up to the first single comma (`,,` is a literal comma). Returns the value and
/// what follows the separating comma, if there is one.
fn take_value(s: &str) -> (String, Option<&str>) {
    let mut out = String::new();
    let mut rest = s;
    loop {
        let Some(i) = rest.find(',') else {
            out.push_str(rest);
            return (out, None);
        };
        let (head, tail) = rest.split_at(i);
        out.push_str(head);
        let after = tail.strip_prefix(',').unwrap_or(tail);
        match after.strip_prefix(',') {
            Some(more) => {
                out.push(',');
                rest = more;
            }
            None => return (out, Some(after)),
        }
    }
}

fn is_help(s: &str) -> bool {
    s == "help" || s == "?"
}

/// A parsed QemuOpts list.
#[derive(Debug, Default)]
struct Kv {
    pairs: KeyValues,
    help: bool,
}

impl Kv {
    fn parse(s: &str, implied: Option<&str>) -> Result<Kv, OptError> {
        let mut kv = Kv::default();
        let mut rest = Some(s);
        let mut first = true;
        while let Some(r) = rest.take() {
            if r.is_empty() && !first {
                break;
            }
            let eq_first = r
                .find(['=', ','])
                .is_some_and(|i| r.get(i..=i) == Some("="));
            if eq_first {
                let (name, after) = r.split_once('=').unwrap_or((r, ""));
                if name.is_empty() {
                    return Err(OptError::EmptyKey);
                }
                let (value, next) = take_value(after);
                kv.pairs.push((name.to_string(), value));
                rest = next;
            } else if let (true, Some(key)) = (first, implied) {
                let (value, next) = take_value(r);
                if is_help(&value) {
                    kv.help = true;
                } else {
                    kv.pairs.push((key.to_string(), value));
                }
                rest = next;
            } else {
                let (name, next) = match r.split_once(',') {
                    Some((n, t)) => (n, Some(t)),
                    None => (r, None),
                };
                if is_help(name) {
                    kv.help = true;
                } else if name.is_empty() {
                    // `,x` or an empty value list: nothing here.
                } else {
                    return Err(OptError::ExpectedEquals(name.to_string()));
                }
                rest = next;
            }
            first = false;
        }
        Ok(kv)
    }

    /// Removes every `key`, returning the last value.
    fn take(&mut self, key: &str) -> Option<String> {
        let mut last = None;
        self.pairs.retain(|(k, v)| {
            if k == key {
                last = Some(v.clone());
                false
            } else {
                true
            }
        });
        last
    }

    fn take_required(&mut self, key: &str) -> Result<String, OptError> {
        match self.take(key) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(OptError::MissingParameter(key.to_string())),
        }
    }

    fn take_bool(&mut self, key: &str) -> Result<Option<bool>, OptError> {
        self.take(key)
            .map(|v| {
                parse_bool(&v).ok_or(OptError::ExpectedBool {
                    key: key.to_string(),
                })
            })
            .transpose()
    }

    fn take_path(&mut self, key: &str) -> Result<Option<PathBuf>, OptError> {
        match self.take(key) {
            Some(v) if v.is_empty() => Err(OptError::EmptyValue),
            v => Ok(v.map(PathBuf::from)),
        }
    }

    /// Rejects QEMU keys breadboard lacks with a specific message.
    fn reject_unsupported(&self, keys: &[&str]) -> Result<(), OptError> {
        match self.pairs.iter().find(|(k, _)| keys.contains(&k.as_str())) {
            Some((k, _)) => Err(OptError::UnsupportedParameter(k.clone())),
            None => Ok(()),
        }
    }

    /// Every key must have been taken.
    fn finish(self) -> Result<(), OptError> {
        match self.pairs.into_iter().next() {
            Some((k, _)) => Err(OptError::InvalidParameter(k)),
            None => Ok(()),
        }
    }

    /// The remaining pairs with repeated keys collapsed to their last value (at the position
    /// of the last occurrence).
    fn into_last_wins(self) -> KeyValues {
        let mut out: KeyValues = Vec::with_capacity(self.pairs.len());
        for (k, v) in self.pairs {
            out.retain(|(ok, _)| *ok != k);
            out.push((k, v));
        }
        out
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "on" | "yes" | "true" | "y" => Some(true),
        "off" | "no" | "false" | "n" => Some(false),
        _ => None,
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

fn check_id(key: &str, id: &str) -> Result<(), OptError> {
    if is_identifier(id) {
        Ok(())
    } else {
        Err(OptError::ExpectedIdentifier {
            key: key.to_string(),
        })
    }
}

/// A size in bytes; plain numbers are MiB (QEMU's `-m`). Decimal fractions are allowed when
/// the result is a whole number of bytes (`1.5G`).
fn parse_size_mib(s: &str) -> Option<u64> {
    const K: u64 = 1 << 10;
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let mult = match suffix {
        "" | "M" | "m" => K * K,
        "B" | "b" => 1,
        "K" | "k" => K,
        "G" | "g" => K * K * K,
        "T" | "t" => K * K * K * K,
        "P" | "p" => K * K * K * K * K,
        "E" | "e" => K * K * K * K * K * K,
        _ => return None,
    };
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.is_empty() || (num.contains('.') && frac.is_empty()) {
        return None;
    }
    let mut bytes = int.parse::<u64>().ok()?.checked_mul(mult)?;
    if !frac.is_empty() {
        let digits: u128 = frac.parse().ok()?;
        let den = 10u128.checked_pow(u32::try_from(frac.len()).ok()?)?;
        let scaled = digits.checked_mul(u128::from(mult))?;
        if scaled % den != 0 {
            return None;
        }
        bytes = bytes.checked_add(u64::try_from(scaled / den).ok()?)?;
    }
    Some(bytes)
}

// ---------------------------------------------------------------------------------------------
// Character devices

/// A `-serial`/`-gdb`/`-qmp` value.
#[derive(Clone, Debug, PartialEq, Eq)]
enum CharTarget {
    /// `none`.
    Disabled,
    /// `chardev:ID`.
    Existing(String),
    /// A new backend.
    New(ChardevSpec),
}

const UNSUPPORTED_BACKENDS: &[&str] = &[
    "pipe",
    "pty",
    "vc",
    "ringbuf",
    "memory",
    "udp",
    "serial",
    "tty",
    "parallel",
    "parport",
    "spicevmc",
    "spiceport",
    "msmouse",
    "braille",
    "testdev",
    "wctablet",
    "console",
    "qemu-vdagent",
    "dbus",
    "mux",
    "telnet",
    "websocket",
];

/// The socket options shared by `unix:`, `tcp:` and `-chardev socket`. `gdb` makes servers
/// the default (gdb connects to the emulator).
fn socket_opts(kv: &mut Kv, addr: SocketAddrSpec, gdb: bool) -> Result<SocketSpec, OptError> {
    let server_given = kv.take_bool("server")?;
    let wait_given = kv.take_bool("wait")?;
    let nodelay = kv.take_bool("nodelay")?;
    let allow_remote = kv.take_bool("allow-remote")?.unwrap_or(false);
    let server = server_given.unwrap_or(gdb);
    if !server && wait_given.is_some() {
        return Err(OptError::WaitWithoutServer);
    }
    let tcp = matches!(addr, SocketAddrSpec::Tcp { .. });
    Ok(SocketSpec {
        addr,
        server,
        wait: wait_given.unwrap_or(!gdb),
        nodelay: nodelay.unwrap_or(gdb && tcp),
        allow_remote,
    })
}

fn parse_port(p: &str) -> Result<u16, OptError> {
    p.parse().map_err(|_| OptError::InvalidPort(p.to_string()))
}

/// QEMU's legacy chardev syntax (`-serial`, `-gdb`, `-qmp`).
fn parse_char_target(v: &str, gdb: bool) -> Result<CharTarget, OptError> {
    if gdb && !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return parse_char_target(&format!("tcp::{v}"), gdb);
    }
    match v {
        "none" => return Ok(CharTarget::Disabled),
        "null" => return Ok(CharTarget::New(ChardevSpec::Null)),
        "stdio" => {
            return Ok(CharTarget::New(ChardevSpec::Stdio {
                mux: false,
                signal: true,
            }));
        }
        _ => {}
    }
    if let Some(rest) = v.strip_prefix("mon:") {
        return match rest {
            "stdio" => Ok(CharTarget::New(ChardevSpec::Stdio {
                mux: true,
                signal: false,
            })),
            _ => Err(OptError::MonNotStdio),
        };
    }
    if let Some(id) = v.strip_prefix("chardev:") {
        if id.is_empty() {
            return Err(OptError::EmptyValue);
        }
        return Ok(CharTarget::Existing(id.to_string()));
    }
    if let Some(path) = v.strip_prefix("file:") {
        if path.is_empty() {
            return Err(OptError::EmptyValue);
        }
        return Ok(CharTarget::New(ChardevSpec::File {
            path: PathBuf::from(path),
            append: false,
        }));
    }
    if let Some(rest) = v.strip_prefix("unix:") {
        let mut kv = Kv::parse(rest, Some("path"))?;
        let path = kv.take_required("path")?;
        let spec = socket_opts(&mut kv, SocketAddrSpec::Unix(PathBuf::from(path)), gdb)?;
        kv.finish()?;
        return Ok(CharTarget::New(ChardevSpec::Socket(spec)));
    }
    if let Some(rest) = v.strip_prefix("tcp:") {
        let (addr, opts) = match rest.split_once(',') {
            Some((a, o)) => (a, o),
            None => (rest, ""),
        };
        let (host, port) = if let Some(bracketed) = addr.strip_prefix('[') {
            bracketed
                .split_once("]:")
                .ok_or(OptError::ExpectedHostPort)?
        } else {
            addr.split_once(':').ok_or(OptError::ExpectedHostPort)?
        };
        let addr = SocketAddrSpec::Tcp {
            host: (!host.is_empty()).then(|| host.to_string()),
            port: parse_port(port)?,
        };
        let mut kv = Kv::parse(opts, None)?;
        let spec = socket_opts(&mut kv, addr, gdb)?;
        kv.finish()?;
        return Ok(CharTarget::New(ChardevSpec::Socket(spec)));
    }
    let word = v.split([':', ',']).next().unwrap_or(v);
    if UNSUPPORTED_BACKENDS.contains(&word) || v.starts_with("/dev/") {
        return Err(OptError::UnsupportedChardevBackend(word.to_string()));
    }
    Err(OptError::UnknownCharDevice(v.to_string()))
}

/// `-chardev BACKEND,id=ID,…`.
fn parse_chardev(kv: &mut Kv) -> Result<(String, ChardevSpec), OptError> {
    let backend = kv.take_required("backend")?;
    let id = kv.take_required("id")?;
    check_id("id", &id)?;
    let spec = match backend.as_str() {
        "null" => ChardevSpec::Null,
        "stdio" => ChardevSpec::Stdio {
            mux: kv.take_bool("mux")?.unwrap_or(false),
            signal: kv.take_bool("signal")?.unwrap_or(true),
        },
        "file" => {
            let path = kv.take_required("path")?;
            ChardevSpec::File {
                path: PathBuf::from(path),
                append: kv.take_bool("append")?.unwrap_or(false),
            }
        }
        "socket" => {
            let path = kv.take("path");
            let host = kv.take("host");
            let port = kv.take("port");
            let addr = match (path, host, port) {
                (Some(_), Some(_), _) => return Err(OptError::PathAndHost),
                (Some(p), None, None) if !p.is_empty() => SocketAddrSpec::Unix(PathBuf::from(p)),
                (Some(_), None, Some(_)) => {
                    return Err(OptError::InvalidParameter("port".to_string()));
                }
                (None, host, Some(port)) => SocketAddrSpec::Tcp {
                    host: host.filter(|h| !h.is_empty()),
                    port: parse_port(&port)?,
                },
                (None, Some(_), None) => {
                    return Err(OptError::MissingParameter("port".to_string()));
                }
                _ => return Err(OptError::NoSocketAddress),
            };
            ChardevSpec::Socket(socket_opts(kv, addr, false)?)
        }
        b if UNSUPPORTED_BACKENDS.contains(&b) => {
            return Err(OptError::UnsupportedChardevBackend(b.to_string()));
        }
        b => return Err(OptError::UnknownChardevBackend(b.to_string())),
    };
    Ok((id, spec))
}

// ---------------------------------------------------------------------------------------------
// The parser

/// Where an option came from, for messages raised after the whole line is read.
#[derive(Clone, Debug)]
struct Source {
    opt: String,
    value: String,
}

impl Source {
    fn error(&self, error: OptError) -> CliError {
        CliError::Value {
            opt: self.opt.clone(),
            value: self.value.clone(),
            error,
        }
    }
}

#[derive(Default)]
struct Parser {
    cfg: Config,
    /// Parallel to `cfg.chardevs`.
    chardev_sources: Vec<Source>,
    smp: Option<(Source, u64)>,
    serials: Vec<(Source, CharTarget)>,
    gdb: Option<(Source, CharTarget)>,
    qmp: Vec<(Source, CharTarget)>,
    device_ids: BTreeSet<String>,
}

/// Parses the arguments after the program name.
///
/// `-h`/`-version` and every `help` request return as soon as they are read, like QEMU;
/// everything else is checked once the whole line is read.
pub fn parse(args: &[String]) -> Result<Command, CliError> {
    let mut p = Parser::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let Some(name) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            return Err(CliError::UnexpectedArgument(arg.clone()));
        };
        let def = lookup(name).ok_or_else(|| CliError::InvalidOption(arg.clone()))?;
        let value = match def.arg {
            Some(_) => Some(
                it.next()
                    .ok_or_else(|| CliError::MissingArgument(arg.clone()))?
                    .as_str(),
            ),
            None => None,
        };
        let canonical = def.names.first().copied().unwrap_or(name);
        let source = Source {
            opt: arg.clone(),
            value: value.unwrap_or_default().to_string(),
        };
        match p.option(canonical, value.unwrap_or_default(), &source) {
            Ok(Some(cmd)) => return Ok(cmd),
            Ok(None) => {}
            Err(error) => return Err(source.error(error)),
        }
    }
    p.finish().map(|cfg| Command::Run(Box::new(cfg)))
}

impl Parser {
    /// Applies one option; `Some` ends parsing early (help, version).
    fn option(&mut self, opt: &str, v: &str, src: &Source) -> Result<Option<Command>, OptError> {
        let cfg = &mut self.cfg;
        match opt {
            "h" => return Ok(Some(Command::Help(usage()))),
            "version" => return Ok(Some(Command::Version)),
            "machine" => return self.machine(v),
            "cpu" => {
                let mut kv = Kv::parse(v, Some("model"))?;
                let model = kv.take("model");
                if kv.help || model.as_deref().is_some_and(is_help) {
                    return Ok(Some(Command::CpuHelp));
                }
                let model = model
                    .filter(|m| !m.is_empty())
                    .ok_or_else(|| OptError::MissingParameter("model".to_string()))?;
                cfg.cpu = Some(CpuOpts {
                    model,
                    props: kv.into_last_wins(),
                });
            }
            "smp" => {
                let mut kv = Kv::parse(v, Some("cpus"))?;
                kv.reject_unsupported(&[
                    "sockets", "cores", "threads", "dies", "clusters", "books", "drawers",
                ])?;
                let number = |v: String, key: &str| {
                    v.parse::<u64>().map_err(|_| OptError::ExpectedNumber {
                        key: key.to_string(),
                    })
                };
                let cpus = number(kv.take_required("cpus")?, "cpus")?;
                if let Some(max) = kv.take("maxcpus")
                    && number(max, "maxcpus")? != cpus
                {
                    return Err(OptError::MaxCpus);
                }
                kv.finish()?;
                self.smp = Some((src.clone(), cpus));
            }
            "m" => {
                let mut kv = Kv::parse(v, Some("size"))?;
                kv.reject_unsupported(&["slots", "maxmem"])?;
                let size = kv.take_required("size")?;
                kv.finish()?;
                let bytes = parse_size_mib(&size).ok_or(OptError::ExpectedSize {
                    key: "size".to_string(),
                })?;
                if bytes == 0 {
                    return Err(OptError::ZeroMemory);
                }
                let rounded =
                    bytes
                        .checked_next_multiple_of(4096)
                        .ok_or(OptError::ExpectedSize {
                            key: "size".to_string(),
                        })?;
                cfg.memory = Some(rounded);
            }
            "name" => {
                let mut kv = Kv::parse(v, Some("guest"))?;
                let guest = kv.take("guest");
                // Accepted for compatibility, meaningless here.
                kv.take("process");
                kv.take_bool("debug-threads")?;
                kv.finish()?;
                if guest.is_some() {
                    cfg.name = guest;
                }
            }
            "nodefaults" => cfg.nodefaults = true,
            "preconfig" => cfg.preconfig = true,
            "S" => cfg.start_stopped = true,
            "no-reboot" => cfg.no_reboot = true,
            "icount" => {
                let mut kv = Kv::parse(v, Some("shift"))?;
                kv.reject_unsupported(&["align", "rr", "rrfile", "rrsnapshot", "q"])?;
                let shift = kv.take_required("shift")?;
                let shift = shift
                    .parse::<u32>()
                    .ok()
                    .filter(|s| *s <= 10)
                    .ok_or(OptError::IcountShift)?;
                let sleep = kv.take_bool("sleep")?.unwrap_or(true);
                kv.finish()?;
                cfg.icount = Some(IcountOpts { shift, sleep });
            }
            "bios" => {
                cfg.bios = match v {
                    "" => return Err(OptError::EmptyValue),
                    "none" => Firmware::None,
                    f => Firmware::File(PathBuf::from(f)),
                }
            }
            "kernel" => cfg.kernel = Some(path(v)?),
            "initrd" => cfg.initrd = Some(path(v)?),
            "append" => cfg.append = Some(v.to_string()),
            "dtb" => cfg.dtb = Some(path(v)?),
            "device" => return self.device(v),
            "drive" => self.drive(v)?,
            "plugin" => {
                let mut kv = Kv::parse(v, Some("file"))?;
                let file = kv.take_required("file")?;
                cfg.plugins.push(PluginOpts {
                    file: PathBuf::from(file),
                    args: kv.pairs,
                });
            }
            "chardev" => {
                let mut kv = Kv::parse(v, Some("backend"))?;
                if kv.help {
                    return Ok(Some(Command::Help(CHARDEV_HELP.to_string())));
                }
                let (id, spec) = parse_chardev(&mut kv)?;
                kv.finish()?;
                cfg.chardevs.push(ChardevOpts {
                    id,
                    spec,
                    origin: ChardevOrigin::Chardev,
                });
                self.chardev_sources.push(src.clone());
            }
            "serial" => {
                if is_help(v) {
                    return Ok(Some(Command::Help(CHARDEV_HELP.to_string())));
                }
                let t = parse_char_target(v, false)?;
                self.serials.push((src.clone(), t));
            }
            "nographic" => {
                cfg.nographic = true;
                cfg.display_none = true;
            }
            "display" => {
                let mut kv = Kv::parse(v, Some("type"))?;
                let ty = kv.take("type");
                if kv.help || ty.as_deref().is_some_and(is_help) {
                    return Ok(Some(Command::Help(DISPLAY_HELP.to_string())));
                }
                match ty.as_deref() {
                    Some("none") => {}
                    Some(other) => return Err(OptError::DisplayType(other.to_string())),
                    None => return Err(OptError::MissingParameter("type".to_string())),
                }
                kv.finish()?;
                cfg.display_none = true;
            }
            "monitor" => match v {
                "none" => cfg.monitor_none = true,
                _ => return Err(OptError::Monitor),
            },
            "d" => {
                let mut items = Vec::new();
                for word in v.split(',').filter(|w| !w.is_empty()) {
                    if is_help(word) {
                        return Ok(Some(Command::Help(logging::help_text())));
                    }
                    let item = LogItem::from_name(word)
                        .ok_or_else(|| OptError::UnknownLogItem(word.to_string()))?;
                    if !items.contains(&item) {
                        items.push(item);
                    }
                }
                cfg.log_items = items;
            }
            "D" => cfg.log_file = Some(path(v)?),
            "gdb" => {
                let t = parse_char_target(v, true)?;
                self.gdb = Some((src.clone(), t));
            }
            "s" => {
                let addr = SocketAddrSpec::Tcp {
                    host: None,
                    port: DEFAULT_GDB_PORT,
                };
                let spec = ChardevSpec::Socket(SocketSpec {
                    addr,
                    server: true,
                    wait: false,
                    nodelay: true,
                    allow_remote: false,
                });
                self.gdb = Some((src.clone(), CharTarget::New(spec)));
            }
            "qmp" => {
                let t = parse_char_target(v, false)?;
                self.qmp.push((src.clone(), t));
            }
            "qmp-script" => cfg.qmp_script = Some(path(v)?),
            _ => return Err(OptError::InvalidParameter(opt.to_string())),
        }
        Ok(None)
    }

    fn machine(&mut self, v: &str) -> Result<Option<Command>, OptError> {
        let m = &mut self.cfg.machine;
        let mut kv = Kv::parse(v, Some("type"))?;
        let kind = kv.take("type");
        if kv.help || kind.as_deref().is_some_and(is_help) {
            let named = kind.filter(|k| !is_help(k)).or_else(|| m.kind.clone());
            return Ok(Some(Command::MachineHelp(named)));
        }
        if let Some(k) = kind {
            if k.is_empty() {
                return Err(OptError::EmptyValue);
            }
            m.kind = Some(k);
        }
        if let Some(p) = kv.take_path("dumpdtb")? {
            m.dumpdtb = Some(p);
        }
        if let Some(p) = kv.take_path("dump")? {
            m.dump = Some(p);
        }
        if let Some(p) = kv.take_path("dtb-board")? {
            m.dtb_board = Some(p);
        }
        if let Some(b) = kv.take_bool("dtb-board-ignore-unknown")? {
            m.dtb_board_ignore_unknown = b;
        }
        for (k, v) in kv.into_last_wins() {
            m.props.retain(|(ok, _)| *ok != k);
            m.props.push((k, v));
        }
        Ok(None)
    }

    fn device(&mut self, v: &str) -> Result<Option<Command>, OptError> {
        let kv = Kv::parse(v, Some("driver"))?;
        let driver = kv
            .pairs
            .iter()
            .rev()
            .find(|(k, _)| k == "driver")
            .map(|(_, d)| d.clone());
        if kv.help || driver.as_deref().is_some_and(is_help) {
            return Ok(Some(Command::DeviceHelp(driver.filter(|d| !is_help(d)))));
        }
        let mut seen = BTreeSet::new();
        for (k, _) in &kv.pairs {
            if !seen.insert(k.as_str()) {
                return Err(OptError::DuplicateProperty(k.clone()));
            }
        }
        let mut kv = kv;
        let driver = kv.take_required("driver")?;
        let id = kv.take("id");
        if let Some(id) = &id {
            check_id("id", id)?;
            if !self.device_ids.insert(id.clone()) {
                return Err(OptError::DuplicateId {
                    id: id.clone(),
                    kind: "device",
                });
            }
        }
        self.cfg.devices.push(DeviceOpts {
            driver,
            id,
            props: kv.pairs,
            arg: v.to_string(),
        });
        Ok(None)
    }

    fn drive(&mut self, v: &str) -> Result<(), OptError> {
        let mut kv = Kv::parse(v, None)?;
        kv.reject_unsupported(&[
            "cache",
            "snapshot",
            "aio",
            "media",
            "index",
            "bus",
            "unit",
            "discard",
            "werror",
            "rerror",
            "node-name",
            "serial",
            "copy-on-read",
            "detect-zeroes",
            "throttling.iops-total",
        ])?;
        let file = kv.take_required("file")?;
        let id = kv.take_required("id")?;
        check_id("id", &id)?;
        if let Some(f) = kv.take("format")
            && f != "raw"
        {
            return Err(OptError::DriveFormat(f));
        }
        if let Some(i) = kv.take("if")
            && i != "none"
        {
            return Err(OptError::DriveInterface(i));
        }
        let readonly = kv.take_bool("readonly")?.unwrap_or(false);
        kv.finish()?;
        if self.cfg.drives.iter().any(|d| d.id == id) {
            return Err(OptError::DuplicateId { id, kind: "drive" });
        }
        self.cfg.drives.push(DriveOpts {
            id,
            file: PathBuf::from(file),
            readonly,
        });
        Ok(())
    }

    fn add_chardev(&mut self, id: String, spec: ChardevSpec, origin: ChardevOrigin, src: &Source) {
        self.cfg.chardevs.push(ChardevOpts { id, spec, origin });
        self.chardev_sources.push(src.clone());
    }

    /// Resolves a `-serial`/`-gdb`/`-qmp` target to a chardev id.
    fn target(
        &mut self,
        target: CharTarget,
        id: String,
        origin: ChardevOrigin,
        src: &Source,
        refs: &mut Vec<(Source, String)>,
    ) -> Option<String> {
        match target {
            CharTarget::Disabled => None,
            CharTarget::Existing(existing) => {
                refs.push((src.clone(), existing.clone()));
                Some(existing)
            }
            CharTarget::New(spec) => {
                self.add_chardev(id.clone(), spec, origin, src);
                Some(id)
            }
        }
    }

    fn finish(mut self) -> Result<Config, CliError> {
        // Chardevs made by other options, in QEMU's order.
        let mut refs = Vec::new();
        let serials = std::mem::take(&mut self.serials);
        let any_serial = !serials.is_empty();
        for (n, (src, t)) in serials.into_iter().enumerate() {
            let id = self.target(
                t,
                format!("serial{n}"),
                ChardevOrigin::Serial(n),
                &src,
                &mut refs,
            );
            self.cfg.serials.push(id);
        }
        if !any_serial && !self.cfg.nodefaults {
            // QEMU: -nographic gives mon:stdio (plain stdio with -monitor none). breadboard has
            // no graphical console, so without -nographic the default serial is the terminal
            // too (QEMU's would be an invisible virtual console), unless something else already
            // took stdio.
            let stdio_taken = self
                .cfg
                .chardevs
                .iter()
                .any(|c| matches!(c.spec, ChardevSpec::Stdio { .. }));
            let spec = match (stdio_taken, self.cfg.monitor_none) {
                (true, _) => ChardevSpec::Null,
                (false, false) => ChardevSpec::Stdio {
                    mux: true,
                    signal: false,
                },
                (false, true) => ChardevSpec::Stdio {
                    mux: false,
                    signal: true,
                },
            };
            let src = Source {
                opt: if self.cfg.nographic {
                    "-nographic".to_string()
                } else {
                    "-serial".to_string()
                },
                value: String::new(),
            };
            self.add_chardev(
                "serial0".to_string(),
                spec,
                ChardevOrigin::DefaultSerial,
                &src,
            );
            self.cfg.serials.push(Some("serial0".to_string()));
        }
        if let Some((src, t)) = self.gdb.take() {
            self.cfg.gdb = self.target(t, "gdb".to_string(), ChardevOrigin::Gdb, &src, &mut refs);
        }
        for (n, (src, t)) in std::mem::take(&mut self.qmp).into_iter().enumerate() {
            if let Some(id) =
                self.target(t, format!("qmp{n}"), ChardevOrigin::Qmp(n), &src, &mut refs)
            {
                self.cfg.qmp.push(id);
            }
        }

        // Ids unique, stdio at most once.
        let mut ids = BTreeSet::new();
        let mut stdio = false;
        for (c, src) in self.cfg.chardevs.iter().zip(&self.chardev_sources) {
            if !ids.insert(c.id.as_str()) {
                return Err(src.error(OptError::DuplicateId {
                    id: c.id.clone(),
                    kind: "chardev",
                }));
            }
            if matches!(c.spec, ChardevSpec::Stdio { .. }) {
                if stdio {
                    return Err(src.error(OptError::StdioTwice));
                }
                stdio = true;
            }
        }
        for (src, id) in refs {
            if !ids.contains(id.as_str()) {
                return Err(src.error(OptError::ChardevNotFound(id)));
            }
        }

        if let Some((src, cpus)) = self.smp.take() {
            let machine = self.cfg.machine.kind.clone();
            if cpus < 1 {
                return Err(src.error(OptError::SmpCpus {
                    cpus,
                    bound: "min",
                    limit: 1,
                    machine,
                }));
            }
            if cpus > u64::from(MAX_CPUS) {
                return Err(src.error(OptError::SmpCpus {
                    cpus,
                    bound: "max",
                    limit: MAX_CPUS,
                    machine,
                }));
            }
            self.cfg.smp = u32::try_from(cpus).unwrap_or(MAX_CPUS);
        }

        if self.cfg.kernel.is_none() {
            if self.cfg.append.is_some() {
                return Err(CliError::AppendWithoutKernel);
            }
            if self.cfg.initrd.is_some() {
                return Err(CliError::InitrdWithoutKernel);
            }
        }
        Ok(self.cfg)
    }
}

fn path(v: &str) -> Result<PathBuf, OptError> {
    if v.is_empty() {
        Err(OptError::EmptyValue)
    } else {
        Ok(PathBuf::from(v))
    }
}

#[cfg(test)]
// Tests: a failing unwrap, index or panic is a failed test (as clippy.toml allows).
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_string).collect()
    }

    fn run(line: &str) -> Config {
        match parse(&args(line)) {
            Ok(Command::Run(cfg)) => *cfg,
            other => panic!("{line}: {other:?}"),
        }
    }

    fn err(line: &str) -> String {
        match parse(&args(line)) {
            Err(e) => e.to_string(),
            Ok(other) => panic!("{line}: expected an error, got {other:?}"),
        }
    }

    fn kv(pairs: &[(&str, &str)]) -> KeyValues {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn unix(path: &str, server: bool, wait: bool) -> ChardevSpec {
        ChardevSpec::Socket(SocketSpec {
            addr: SocketAddrSpec::Unix(PathBuf::from(path)),
            server,
            wait,
            nodelay: false,
            allow_remote: false,
        })
    }

    const STDIO: ChardevSpec = ChardevSpec::Stdio {
        mux: false,
        signal: true,
    };
    const MON_STDIO: ChardevSpec = ChardevSpec::Stdio {
        mux: true,
        signal: false,
    };

    #[test]
    fn test_bad_command_lines_give_qemu_style_messages() {
        let golden: &[(&str, &str)] = &[
            ("-foo", "-foo: invalid option"),
            ("--foo", "--foo: invalid option"),
            ("-kernel=x.elf", "-kernel=x.elf: invalid option"),
            ("-", "-: invalid option"),
            ("-kernel", "-kernel: requires an argument"),
            ("-M virt --smp", "--smp: requires an argument"),
            (
                "disk.img",
                "disk.img: unexpected argument (options start with '-'; disk images are given with -drive)",
            ),
            (
                "-M virt -smp 0",
                "-smp 0: Invalid SMP CPUs 0. The min CPUs supported by machine 'virt' is 1",
            ),
            (
                "-smp 65 -M virt",
                "-smp 65: Invalid SMP CPUs 65. The max CPUs supported by machine 'virt' is 64",
            ),
            (
                "-smp cpus=0",
                "-smp cpus=0: Invalid SMP CPUs 0. The min CPUs supported by this machine is 1",
            ),
            ("-smp four", "-smp four: Parameter 'cpus' expects a number"),
            (
                "-smp 2,sockets=2",
                "-smp 2,sockets=2: Parameter 'sockets' is not supported",
            ),
            (
                "-smp 2,maxcpus=4",
                "-smp 2,maxcpus=4: maxcpus must equal cpus (CPU hotplug is not supported)",
            ),
            (
                "-m 12X",
                "-m 12X: Parameter 'size' expects a size (a number with an optional K, M, G or T suffix)",
            ),
            ("-m 0", "-m 0: memory size must be non-zero"),
            (
                "-m 1G,slots=2",
                "-m 1G,slots=2: Parameter 'slots' is not supported",
            ),
            (
                "-M virt,aclint",
                "-M virt,aclint: Expected '=' after parameter 'aclint'",
            ),
            (
                "-machine virt,dtb-board-ignore-unknown=maybe",
                "-machine virt,dtb-board-ignore-unknown=maybe: Parameter 'dtb-board-ignore-unknown' expects 'on' or 'off'",
            ),
            (
                "-device ns16550a,id=u0,reg-shift=2,id=u1",
                "-device ns16550a,id=u0,reg-shift=2,id=u1: Property 'id' is specified twice",
            ),
            (
                "-device ns16550a,id=u0 -device ns16550a,id=u0",
                "-device ns16550a,id=u0: Duplicate ID 'u0' for device",
            ),
            (
                "-device ns16550a,id=0bad",
                "-device ns16550a,id=0bad: Parameter 'id' expects an identifier (letters, digits, '-', '.', '_', starting with a letter)",
            ),
            (
                "-device id=u0",
                "-device id=u0: Parameter 'driver' is missing",
            ),
            (
                "-drive file=a.img",
                "-drive file=a.img: Parameter 'id' is missing",
            ),
            (
                "-drive file=a.img,id=d0,format=qcow2",
                "-drive file=a.img,id=d0,format=qcow2: drive format 'qcow2' is not supported (only 'raw')",
            ),
            (
                "-drive file=a.img,id=d0,if=virtio",
                "-drive file=a.img,id=d0,if=virtio: drive interface 'virtio' is not supported (use if=none and attach it with -device …,drive=ID)",
            ),
            (
                "-drive a.img",
                "-drive a.img: Expected '=' after parameter 'a.img'",
            ),
            (
                "-drive file=a.img,id=d0,cache=none",
                "-drive file=a.img,id=d0,cache=none: Parameter 'cache' is not supported",
            ),
            (
                "-drive file=a.img,id=d0,bogus=1",
                "-drive file=a.img,id=d0,bogus=1: Invalid parameter 'bogus'",
            ),
            ("-chardev null", "-chardev null: Parameter 'id' is missing"),
            (
                "-chardev foo,id=c",
                "-chardev foo,id=c: 'foo' is not a valid char driver name",
            ),
            (
                "-chardev pty,id=c",
                "-chardev pty,id=c: chardev backend 'pty' is not supported (use null, stdio, file or socket)",
            ),
            (
                "-chardev socket,id=c,path=/tmp/s,wait=off",
                "-chardev socket,id=c,path=/tmp/s,wait=off: 'wait' option is incompatible with socket in client connect mode",
            ),
            (
                "-chardev socket,id=c,path=/tmp/s,host=localhost,port=1",
                "-chardev socket,id=c,path=/tmp/s,host=localhost,port=1: 'path' and 'host' are mutually exclusive",
            ),
            (
                "-chardev socket,id=c",
                "-chardev socket,id=c: socket needs 'path' (unix) or 'host'/'port' (tcp)",
            ),
            (
                "-chardev socket,id=c,host=::1,port=70000,server=on",
                "-chardev socket,id=c,host=::1,port=70000,server=on: invalid port '70000'",
            ),
            (
                "-chardev file,id=f",
                "-chardev file,id=f: Parameter 'path' is missing",
            ),
            (
                "-chardev null,id=c -chardev null,id=c",
                "-chardev null,id=c: Duplicate ID 'c' for chardev",
            ),
            (
                "-chardev null,id=serial0 -serial stdio",
                "-serial stdio: Duplicate ID 'serial0' for chardev",
            ),
            (
                "-serial stdio -serial stdio",
                "-serial stdio: cannot use stdio by multiple character devices",
            ),
            (
                "-nographic -qmp stdio",
                "-qmp stdio: cannot use stdio by multiple character devices",
            ),
            (
                "-serial foo",
                "-serial foo: unknown character device 'foo' (use stdio, mon:stdio, null, none, file:PATH, unix:PATH, tcp:HOST:PORT or chardev:ID)",
            ),
            (
                "-serial pty",
                "-serial pty: chardev backend 'pty' is not supported (use null, stdio, file or socket)",
            ),
            (
                "-serial mon:unix:/tmp/x",
                "-serial mon:unix:/tmp/x: 'mon:' is only supported as 'mon:stdio'",
            ),
            (
                "-serial tcp:localhost",
                "-serial tcp:localhost: expected tcp:[HOST]:PORT",
            ),
            (
                "-serial tcp::http",
                "-serial tcp::http: invalid port 'http'",
            ),
            (
                "-serial unix:/tmp/s,server,nowait",
                "-serial unix:/tmp/s,server,nowait: Expected '=' after parameter 'server'",
            ),
            (
                "-serial unix:/tmp/s,server=yes-please",
                "-serial unix:/tmp/s,server=yes-please: Parameter 'server' expects 'on' or 'off'",
            ),
            (
                "-serial chardev:nope",
                "-serial chardev:nope: chardev 'nope' not found",
            ),
            ("-serial file:", "-serial file:: value must not be empty"),
            (
                "-d int,bogus",
                "-d int,bogus: unknown log item 'bogus' (use '-d help' for the list)",
            ),
            (
                "-d guest_error",
                "-d guest_error: unknown log item 'guest_error' (use '-d help' for the list)",
            ),
            (
                "-icount shift=11",
                "-icount shift=11: Parameter 'shift' expects a number from 0 to 10 ('auto' is not supported)",
            ),
            (
                "-icount auto",
                "-icount auto: Parameter 'shift' expects a number from 0 to 10 ('auto' is not supported)",
            ),
            (
                "-icount 3,rr=record",
                "-icount 3,rr=record: Parameter 'rr' is not supported",
            ),
            (
                "-display gtk",
                "-display gtk: display 'gtk' is not supported (breadboard has no graphical display; use -display none)",
            ),
            (
                "-monitor stdio",
                "-monitor stdio: only '-monitor none' is supported (use -qmp for a QMP monitor)",
            ),
            ("-kernel ''", "-kernel: value must not be empty"),
            ("-chardev ''", "-chardev: Parameter 'backend' is missing"),
            ("-drive ''", "-drive: Parameter 'file' is missing"),
            (
                "-append console=ttyS0",
                "-append only allowed with -kernel option",
            ),
            ("-initrd rd.img", "-initrd only allowed with -kernel option"),
            (
                "-plugin arg=1",
                "-plugin arg=1: Parameter 'file' is missing",
            ),
            ("-M virt,=x", "-M virt,=x: Parameter name is empty"),
            ("-gdb tcp:host", "-gdb tcp:host: expected tcp:[HOST]:PORT"),
        ];
        for (line, want) in golden {
            // `''` stands for an empty argument.
            let argv: Vec<String> = line
                .split_whitespace()
                .map(|a| {
                    if a == "''" {
                        String::new()
                    } else {
                        a.to_string()
                    }
                })
                .collect();
            let got = match parse(&argv) {
                Err(e) => e.to_string(),
                Ok(other) => panic!("{line}: expected an error, got {other:?}"),
            };
            assert_eq!(&got, want, "for {line}");
        }
    }

    #[test]
    fn test_empty_arguments_are_rejected() {
        assert_eq!(
            parse(&["-kernel".to_string(), String::new()]),
            Err(CliError::Value {
                opt: "-kernel".into(),
                value: String::new(),
                error: OptError::EmptyValue,
            })
        );
        assert_eq!(err("-bios"), "-bios: requires an argument");
        let e = parse(&["-bios".to_string(), String::new()]).expect_err("empty");
        assert_eq!(e.to_string(), "-bios: value must not be empty");
        let c = parse(&["-d".to_string(), String::new()]);
        assert!(matches!(c, Ok(Command::Run(c)) if c.log_items.is_empty()));
    }

    #[test]
    fn test_errors_are_typed() {
        assert_eq!(
            parse(&args("-foo")),
            Err(CliError::InvalidOption("-foo".into()))
        );
        assert_eq!(
            parse(&args("-smp 0")),
            Err(CliError::Value {
                opt: "-smp".into(),
                value: "0".into(),
                error: OptError::SmpCpus {
                    cpus: 0,
                    bound: "min",
                    limit: 1,
                    machine: None,
                },
            })
        );
        assert!(matches!(
            parse(&args("-device a,x=1,x=2")),
            Err(CliError::Value {
                error: OptError::DuplicateProperty(_),
                ..
            })
        ));
    }

    #[test]
    fn test_defaults() {
        let c = run("");
        assert_eq!(c.smp, 1);
        assert_eq!(c.memory, None);
        assert_eq!(c.bios, Firmware::Default);
        assert_eq!(c.machine, MachineOpts::default());
        // No display: the default serial is the terminal, as with -nographic.
        assert_eq!(c.serials, vec![Some("serial0".to_string())]);
        assert_eq!(
            c.chardevs,
            vec![ChardevOpts {
                id: "serial0".into(),
                spec: ChardevSpec::Stdio {
                    mux: true,
                    signal: false
                },
                origin: ChardevOrigin::DefaultSerial,
            }]
        );
        assert!(!c.nographic && !c.display_none && !c.preconfig && !c.start_stopped);
        assert_eq!(c.gdb, None);
        assert!(c.qmp.is_empty() && c.devices.is_empty() && c.log_items.is_empty());
    }

    #[test]
    fn test_full_command_line() {
        let c = run(
            "-M virt,dumpdtb=out.dtb,aia=aplic -cpu rv64,h=true,zba=on -smp 4 -m 256M \
             -bios none -kernel Image -initrd rd.img -append console=ttyS0 -dtb my.dtb \
             -device ns16550a,id=u1,reg-shift=2 -device virtio-blk-device,drive=d0 \
             -drive file=disk.img,format=raw,if=none,id=d0,readonly=on \
             -nographic -d guest_errors,int,guest_errors -D log.txt -no-reboot -S -s \
             -preconfig -icount shift=3,sleep=off -plugin file=libdev.so,arg=1,arg=2 \
             -qmp-script boot.qmp -name guest=demo -qmp unix:/tmp/q.sock,server=on,wait=off",
        );
        assert_eq!(c.machine.kind.as_deref(), Some("virt"));
        assert_eq!(c.machine.dumpdtb, Some(PathBuf::from("out.dtb")));
        assert_eq!(c.machine.props, kv(&[("aia", "aplic")]));
        assert_eq!(
            c.cpu,
            Some(CpuOpts {
                model: "rv64".into(),
                props: kv(&[("h", "true"), ("zba", "on")]),
            })
        );
        assert_eq!(c.smp, 4);
        assert_eq!(c.memory, Some(256 << 20));
        assert_eq!(c.bios, Firmware::None);
        assert_eq!(c.kernel, Some(PathBuf::from("Image")));
        assert_eq!(c.initrd, Some(PathBuf::from("rd.img")));
        assert_eq!(c.append.as_deref(), Some("console=ttyS0"));
        assert_eq!(c.dtb, Some(PathBuf::from("my.dtb")));
        assert_eq!(
            c.devices,
            vec![
                DeviceOpts {
                    driver: "ns16550a".into(),
                    id: Some("u1".into()),
                    props: kv(&[("reg-shift", "2")]),
                    arg: "ns16550a,id=u1,reg-shift=2".into(),
                },
                DeviceOpts {
                    driver: "virtio-blk-device".into(),
                    id: None,
                    props: kv(&[("drive", "d0")]),
                    arg: "virtio-blk-device,drive=d0".into(),
                },
            ]
        );
        assert_eq!(
            c.drives,
            vec![DriveOpts {
                id: "d0".into(),
                file: PathBuf::from("disk.img"),
                readonly: true,
            }]
        );
        assert!(c.nographic && c.display_none);
        assert_eq!(c.log_items, vec![LogItem::GuestErrors, LogItem::Int]);
        assert_eq!(c.log_file, Some(PathBuf::from("log.txt")));
        assert!(c.no_reboot && c.start_stopped && c.preconfig);
        assert_eq!(
            c.icount,
            Some(IcountOpts {
                shift: 3,
                sleep: false
            })
        );
        assert_eq!(
            c.plugins,
            vec![PluginOpts {
                file: PathBuf::from("libdev.so"),
                args: kv(&[("arg", "1"), ("arg", "2")]),
            }]
        );
        assert_eq!(c.qmp_script, Some(PathBuf::from("boot.qmp")));
        assert_eq!(c.name.as_deref(), Some("demo"));
        // -nographic: serial0 on mon:stdio; -s: gdb on loopback 1234; -qmp: qmp0.
        assert_eq!(c.serials, vec![Some("serial0".to_string())]);
        assert_eq!(c.gdb.as_deref(), Some("gdb"));
        assert_eq!(c.qmp, vec!["qmp0".to_string()]);
        let ids: Vec<_> = c
            .chardevs
            .iter()
            .map(|c| (c.id.as_str(), c.origin))
            .collect();
        assert_eq!(
            ids,
            vec![
                ("serial0", ChardevOrigin::DefaultSerial),
                ("gdb", ChardevOrigin::Gdb),
                ("qmp0", ChardevOrigin::Qmp(0)),
            ]
        );
        assert_eq!(c.chardevs.first().map(|c| &c.spec), Some(&MON_STDIO));
        assert_eq!(
            c.chardevs.get(1).map(|c| &c.spec),
            Some(&ChardevSpec::Socket(SocketSpec {
                addr: SocketAddrSpec::Tcp {
                    host: None,
                    port: 1234
                },
                server: true,
                wait: false,
                nodelay: true,
                allow_remote: false,
            }))
        );
        assert_eq!(
            c.chardevs.get(2).map(|c| &c.spec),
            Some(&unix("/tmp/q.sock", true, false))
        );
    }

    #[test]
    fn test_double_dash_spellings_and_aliases() {
        let a = run("--machine virt --smp 2 --kernel k --nographic");
        let b = run("-M virt -smp cpus=2 -kernel k -nographic");
        assert_eq!(a, b);
        assert_eq!(
            run("-machine type=virt").machine.kind.as_deref(),
            Some("virt")
        );
    }

    #[test]
    fn test_qemuopts_escapes_and_last_wins() {
        let c = run("-M ./boards/a,,b.toml,foo=1,foo=2 -M bar=x,,y");
        assert_eq!(c.machine.kind.as_deref(), Some("./boards/a,b.toml"));
        assert_eq!(c.machine.props, kv(&[("foo", "2"), ("bar", "x,y")]));
        // A later -M overrides the type and keeps earlier properties.
        let c = run("-M virt,dtb-board=b.dtb -M none,dtb-board-ignore-unknown=on");
        assert_eq!(c.machine.kind.as_deref(), Some("none"));
        assert_eq!(c.machine.dtb_board, Some(PathBuf::from("b.dtb")));
        assert!(c.machine.dtb_board_ignore_unknown);
        // Without a type: only properties.
        let c = run("-machine dtb-board=board.dtb,dump=out.toml");
        assert_eq!(c.machine.kind, None);
        assert_eq!(c.machine.dump, Some(PathBuf::from("out.toml")));
        // `=` after the first comma does not make the first element a key.
        let c = run("-device ns16550a,,x=1");
        assert_eq!(
            c.devices.first().map(|d| d.driver.as_str()),
            Some("ns16550a,x=1")
        );
        // Trailing comma is fine.
        assert_eq!(run("-M virt,").machine.kind.as_deref(), Some("virt"));
        // Later plain options win.
        let c = run("-kernel a -kernel b -append x -append y -m 1G -m 64");
        assert_eq!(c.kernel, Some(PathBuf::from("b")));
        assert_eq!(c.append.as_deref(), Some("y"));
        assert_eq!(c.memory, Some(64 << 20));
        let c = run("-d int -d mmio,plic");
        assert_eq!(c.log_items, vec![LogItem::Mmio, LogItem::Plic]);
    }

    #[test]
    fn test_memory_sizes() {
        let m = |s: &str| run(&format!("-m {s}")).memory;
        assert_eq!(m("512"), Some(512 << 20));
        assert_eq!(m("256M"), Some(256 << 20));
        assert_eq!(m("256m"), Some(256 << 20));
        assert_eq!(m("size=1G"), Some(1 << 30));
        assert_eq!(m("1.5G"), Some(3 << 29));
        assert_eq!(m("2T"), Some(2 << 40));
        assert_eq!(m("64K"), Some(64 << 10));
        assert_eq!(m("100B"), Some(4096), "rounded up to 4 KiB");
        for bad in [
            "1.G",
            ".5G",
            "1GB",
            "-1",
            "0x10",
            "1.0000001M",
            "99999999999999999999",
        ] {
            assert!(parse(&args(&format!("-m {bad}"))).is_err(), "{bad}");
        }
        assert!(parse(&args("-m 20E")).is_err());
    }

    #[test]
    fn test_help_requests() {
        assert_eq!(parse(&args("-h")), Ok(Command::Help(usage())));
        assert_eq!(parse(&args("--help -foo")), Ok(Command::Help(usage())));
        assert_eq!(parse(&args("-help")), Ok(Command::Help(usage())));
        assert_eq!(parse(&args("-version")), Ok(Command::Version));
        assert_eq!(parse(&args("--version")), Ok(Command::Version));
        assert_eq!(parse(&args("-M help")), Ok(Command::MachineHelp(None)));
        assert_eq!(parse(&args("-M ?")), Ok(Command::MachineHelp(None)));
        assert_eq!(
            parse(&args("-M virt,help")),
            Ok(Command::MachineHelp(Some("virt".into())))
        );
        assert_eq!(
            parse(&args("-M virt -M help")),
            Ok(Command::MachineHelp(Some("virt".into())))
        );
        assert_eq!(parse(&args("-device help")), Ok(Command::DeviceHelp(None)));
        assert_eq!(
            parse(&args("-device ns16550a,help")),
            Ok(Command::DeviceHelp(Some("ns16550a".into())))
        );
        assert_eq!(
            parse(&args("-device driver=ns16550a,?")),
            Ok(Command::DeviceHelp(Some("ns16550a".into())))
        );
        assert_eq!(parse(&args("-cpu help")), Ok(Command::CpuHelp));
        assert_eq!(
            parse(&args("-d help")),
            Ok(Command::Help(logging::help_text()))
        );
        assert_eq!(
            parse(&args("-d int,help")),
            Ok(Command::Help(logging::help_text()))
        );
        assert_eq!(
            parse(&args("-chardev help")),
            Ok(Command::Help(CHARDEV_HELP.into()))
        );
        assert_eq!(
            parse(&args("-serial help")),
            Ok(Command::Help(CHARDEV_HELP.into()))
        );
        assert_eq!(
            parse(&args("-display help")),
            Ok(Command::Help(DISPLAY_HELP.into()))
        );
        // Errors before a help request are still reported.
        assert_eq!(
            err("-smp x -device help"),
            "-smp x: Parameter 'cpus' expects a number"
        );
    }

    #[test]
    fn test_usage_lists_every_option() {
        let text = usage();
        for (_, defs) in SECTIONS {
            for d in *defs {
                for n in d.names {
                    assert!(text.contains(&format!("-{n}")), "-{n} missing from usage");
                }
            }
        }
        for opt in [
            "-machine",
            "-cpu",
            "-smp",
            "-m ",
            "-bios",
            "-kernel",
            "-initrd",
            "-append",
            "-dtb",
            "-device",
            "-drive",
            "-chardev",
            "-serial",
            "-nographic",
            "-display",
            "-d ",
            "-D ",
            "-no-reboot",
            "-S",
            "-s ",
            "-gdb",
            "-qmp ",
            "-preconfig",
            "-icount",
            "-plugin",
            "-qmp-script",
            "-name",
            "-nodefaults",
            "-monitor",
            "-version",
            "-help",
        ] {
            assert!(text.contains(opt), "{opt} missing");
        }
        for line in text.lines() {
            assert!(line.chars().count() <= 100, "long line: {line}");
        }
        assert!(version_text().starts_with("breadboard version "));
    }

    #[test]
    fn test_serial_forms() {
        let c = run(
            "-serial stdio -serial null -serial none -serial file:/tmp/out,x.log \
             -serial unix:/tmp/s.sock,server=on,wait=off -serial tcp::4444,server=on \
             -serial tcp:[::1]:5555 -serial chardev:con -chardev socket,id=con,path=/tmp/c.sock",
        );
        assert_eq!(
            c.serials,
            vec![
                Some("serial0".to_string()),
                Some("serial1".to_string()),
                None,
                Some("serial3".to_string()),
                Some("serial4".to_string()),
                Some("serial5".to_string()),
                Some("serial6".to_string()),
                Some("con".to_string()),
            ]
        );
        let specs: Vec<(&str, &ChardevSpec)> = c
            .chardevs
            .iter()
            .map(|c| (c.id.as_str(), &c.spec))
            .collect();
        let tcp = |host: Option<&str>, port, server, wait| {
            ChardevSpec::Socket(SocketSpec {
                addr: SocketAddrSpec::Tcp {
                    host: host.map(str::to_string),
                    port,
                },
                server,
                wait,
                nodelay: false,
                allow_remote: false,
            })
        };
        assert_eq!(
            specs,
            vec![
                ("con", &unix("/tmp/c.sock", false, true)),
                ("serial0", &STDIO),
                ("serial1", &ChardevSpec::Null),
                (
                    "serial3",
                    &ChardevSpec::File {
                        path: "/tmp/out,x.log".into(),
                        append: false
                    }
                ),
                ("serial4", &unix("/tmp/s.sock", true, false)),
                ("serial5", &tcp(None, 4444, true, true)),
                ("serial6", &tcp(Some("::1"), 5555, false, true)),
            ]
        );
        assert_eq!(
            c.chardevs.get(1).map(|c| c.origin),
            Some(ChardevOrigin::Serial(0))
        );
    }

    #[test]
    fn test_nographic_serial_defaults() {
        let c = run("-nographic");
        assert_eq!(c.chardevs.first().map(|c| &c.spec), Some(&MON_STDIO));
        // QEMU: -nographic with -monitor none gives plain stdio.
        let c = run("-nographic -monitor none");
        assert_eq!(c.chardevs.first().map(|c| &c.spec), Some(&STDIO));
        assert!(c.monitor_none);
        // An explicit -serial replaces the default.
        let c = run("-nographic -serial null");
        assert_eq!(
            c.chardevs.first().map(|c| &c.spec),
            Some(&ChardevSpec::Null)
        );
        assert_eq!(c.chardevs.len(), 1);
        let c = run("-nographic -serial mon:stdio");
        assert_eq!(c.chardevs.first().map(|c| &c.spec), Some(&MON_STDIO));
        // -nodefaults: no serial port at all.
        let c = run("-nographic -nodefaults");
        assert!(c.serials.is_empty() && c.chardevs.is_empty());
        let c = run("-display none");
        assert!(c.display_none && !c.nographic);
    }

    #[test]
    fn test_chardev_backends() {
        let c = run(
            "-chardev stdio,id=con,mux=on,signal=off -chardev file,id=f,path=/tmp/l,append=on \
             -chardev null,id=n -chardev socket,id=t,host=0.0.0.0,port=9000,server=on,wait=off,nodelay=on \
             -chardev socket,id=t2,port=9001 -serial chardev:con",
        );
        let specs: Vec<(&str, &ChardevSpec)> = c
            .chardevs
            .iter()
            .map(|c| (c.id.as_str(), &c.spec))
            .collect();
        assert_eq!(
            specs,
            vec![
                ("con", &MON_STDIO),
                (
                    "f",
                    &ChardevSpec::File {
                        path: "/tmp/l".into(),
                        append: true
                    }
                ),
                ("n", &ChardevSpec::Null),
                (
                    "t",
                    &ChardevSpec::Socket(SocketSpec {
                        addr: SocketAddrSpec::Tcp {
                            host: Some("0.0.0.0".into()),
                            port: 9000
                        },
                        server: true,
                        wait: false,
                        nodelay: true,
                        allow_remote: false,
                    })
                ),
                (
                    "t2",
                    &ChardevSpec::Socket(SocketSpec {
                        addr: SocketAddrSpec::Tcp {
                            host: None,
                            port: 9001
                        },
                        server: false,
                        wait: true,
                        nodelay: false,
                        allow_remote: false,
                    })
                ),
            ]
        );
        assert_eq!(c.serials, vec![Some("con".to_string())]);
        assert!(
            c.chardevs
                .iter()
                .all(|c| c.origin == ChardevOrigin::Chardev)
        );
    }

    #[test]
    fn test_gdb_forms() {
        let gdb = |line: &str| {
            let c = run(line);
            let id = c.gdb.clone();
            (
                id,
                c.chardevs
                    .iter()
                    .find(|c| c.origin == ChardevOrigin::Gdb)
                    .map(|c| c.spec.clone()),
            )
        };
        let tcp = |host: Option<&str>, port| {
            Some(ChardevSpec::Socket(SocketSpec {
                addr: SocketAddrSpec::Tcp {
                    host: host.map(str::to_string),
                    port,
                },
                server: true,
                wait: false,
                nodelay: true,
                allow_remote: false,
            }))
        };
        assert_eq!(gdb("-s"), (Some("gdb".into()), tcp(None, 1234)));
        assert_eq!(gdb("-gdb tcp::1234"), gdb("-s"));
        assert_eq!(gdb("-gdb 3333"), (Some("gdb".into()), tcp(None, 3333)));
        assert_eq!(
            gdb("-gdb tcp:0.0.0.0:1"),
            (Some("gdb".into()), tcp(Some("0.0.0.0"), 1))
        );
        assert_eq!(
            gdb("-gdb unix:/tmp/gdb.sock"),
            (Some("gdb".into()), Some(unix("/tmp/gdb.sock", true, false)))
        );
        assert_eq!(gdb("-s -gdb none"), (None, None));
        assert_eq!(gdb("-gdb none -s"), (Some("gdb".into()), tcp(None, 1234)));
        let c = run("-chardev socket,id=g,path=/tmp/g,server=on,wait=off -gdb chardev:g");
        assert_eq!(c.gdb.as_deref(), Some("g"));
    }

    #[test]
    fn test_qmp_is_repeatable() {
        let c =
            run("-qmp unix:/tmp/a,server=on,wait=off -qmp tcp:localhost:4444,server=on,wait=off");
        assert_eq!(c.qmp, vec!["qmp0".to_string(), "qmp1".to_string()]);
        assert_eq!(
            c.chardevs.iter().map(|c| c.origin).collect::<Vec<_>>(),
            vec![
                ChardevOrigin::DefaultSerial,
                ChardevOrigin::Qmp(0),
                ChardevOrigin::Qmp(1)
            ]
        );
    }

    #[test]
    fn test_device_and_drive_details() {
        let c = run(
            "-device ns16550a -device vfio-platform,host=ff000000.uart,id=pt0 \
             -drive id=d1,file=a,,b.img -drive if=none,file=c.img,id=d2",
        );
        assert_eq!(c.devices.first().map(|d| d.id.clone()), Some(None));
        assert_eq!(
            c.devices.get(1),
            Some(&DeviceOpts {
                driver: "vfio-platform".into(),
                id: Some("pt0".into()),
                props: kv(&[("host", "ff000000.uart")]),
                arg: "vfio-platform,host=ff000000.uart,id=pt0".into(),
            })
        );
        assert_eq!(
            c.drives.first().map(|d| d.file.clone()),
            Some(PathBuf::from("a,b.img"))
        );
        assert_eq!(c.drives.get(1).map(|d| d.readonly), Some(false));
        assert_eq!(
            err("-drive file=a,id=d -drive file=b,id=d"),
            "-drive file=b,id=d: Duplicate ID 'd' for drive"
        );
    }

    #[test]
    fn test_misc_options() {
        let c = run("-icount 0");
        assert_eq!(
            c.icount,
            Some(IcountOpts {
                shift: 0,
                sleep: true
            })
        );
        let c = run("-name demo,debug-threads=on");
        assert_eq!(c.name.as_deref(), Some("demo"));
        let c = run("-bios fw.bin -plugin ./libx.so");
        assert_eq!(c.bios, Firmware::File("fw.bin".into()));
        assert_eq!(c.plugins.first().map(|p| p.args.is_empty()), Some(true));
        let c = run("-smp cpus=64,maxcpus=64");
        assert_eq!(c.smp, 64);
    }

    #[test]
    fn test_take_value_escapes() {
        assert_eq!(take_value("a,,b,c"), ("a,b".to_string(), Some("c")));
        assert_eq!(take_value("a,,"), ("a,".to_string(), None));
        assert_eq!(take_value("a,"), ("a".to_string(), Some("")));
        assert_eq!(take_value(""), (String::new(), None));
        assert_eq!(take_value(",,,x"), (",".to_string(), Some("x")));
    }
}
