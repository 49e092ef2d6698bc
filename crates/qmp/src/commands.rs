//! The command table: each command's argument schema (checked before anything happens), the
//! machine phases it may run in, and its implementation against a [`Machine`].
//!
//! [`execute`] is the one entry point, used by the socket server (on the main loop, through
//! `Event::Call`), by the preconfig loop and by the script runner alike.
// Reads guest, file, socket or plugin input: no panicking shortcuts (SECURITY.md, issue 9).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::fmt::Write as _;

use breadboard_core::DeviceId;
use breadboard_core::object::{ObjectError, ObjectKind};
use breadboard_core::props::{PropKind, PropValue, RawValue};
use breadboard_platform::BootOptions;
use breadboard_platform::machine::{DeviceOption, Machine, MachineError, Phase, WireTarget};
use serde_json::{Map, Value, json};

use crate::error::QmpError;
use crate::server::Broadcaster;

/// What the guest is doing, as `query-status` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunStatus {
    /// Not started yet (`-S`, or before `x-exit-preconfig`).
    Prelaunch,
    /// Harts run.
    Running,
    /// Stopped by `stop`.
    Paused,
}

impl RunStatus {
    /// QEMU's `RunState` name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Prelaunch => "prelaunch",
            RunStatus::Running => "running",
            RunStatus::Paused => "paused",
        }
    }
}

/// Monitor state shared by every QMP client, the script runner and the main loop.
#[derive(Debug)]
pub struct QmpContext {
    /// Images `x-exit-preconfig` boots.
    pub boot: BootOptions,
    /// `-S`: stay stopped once ready until `cont`.
    pub start_stopped: bool,
    /// Run state.
    pub status: RunStatus,
    /// The guest has executed since the machine became ready.
    pub started: bool,
    /// `quit` was executed; the main loop should stop.
    pub quit_requested: bool,
    /// Where events go (every negotiated client).
    pub events: Broadcaster,
    /// Events to send after the reply of the command being executed (QEMU sends `RESET`,
    /// `POWERDOWN` and `SHUTDOWN` from its main loop, after the command returned).
    pub deferred: Vec<(String, Option<Value>)>,
    /// The main loop's queue, so `quit` can wake it.
    pub main_loop: Option<std::sync::mpsc::Sender<breadboard_platform::Event>>,
}

impl QmpContext {
    /// A context that boots `boot` at `x-exit-preconfig`; `start_stopped` is `-S`.
    pub fn new(boot: BootOptions, start_stopped: bool) -> QmpContext {
        QmpContext {
            boot,
            start_stopped,
            status: RunStatus::Prelaunch,
            started: false,
            quit_requested: false,
            events: Broadcaster::default(),
            deferred: Vec::new(),
            main_loop: None,
        }
    }

    /// The machine became ready outside QMP (no `-preconfig`): it runs unless `-S`.
    pub fn machine_ready(&mut self) {
        if !self.start_stopped {
            self.status = RunStatus::Running;
        }
    }

    /// Sends an event to every negotiated client now.
    pub fn emit(&self, name: &str, data: Option<Value>) {
        self.events.emit(name, data);
    }

    /// Sends the events deferred by the last command.
    pub fn flush_deferred(&mut self) {
        for (name, data) in std::mem::take(&mut self.deferred) {
            self.events.emit(&name, data);
        }
    }
}

/// An argument's JSON type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ty {
    Str,
    Int,
    Bool,
    Any,
    StrList,
}

impl Ty {
    fn qapi_name(self) -> &'static str {
        match self {
            Ty::Str => "string",
            Ty::Int => "integer",
            Ty::Bool => "boolean",
            Ty::Any => "any",
            Ty::StrList => "array",
        }
    }

    fn accepts(self, v: &Value) -> bool {
        match self {
            Ty::Str => v.is_string(),
            Ty::Int => v.is_i64() || v.is_u64(),
            Ty::Bool => v.is_boolean(),
            Ty::Any => true,
            Ty::StrList => v.is_array(),
        }
    }
}

struct Arg {
    name: &'static str,
    ty: Ty,
    required: bool,
}

const fn req(name: &'static str, ty: Ty) -> Arg {
    Arg {
        name,
        ty,
        required: true,
    }
}

const fn opt(name: &'static str, ty: Ty) -> Arg {
    Arg {
        name,
        ty,
        required: false,
    }
}

/// When a command may run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum When {
    /// Any phase (QEMU's `allow-preconfig`).
    Always,
    /// Only once the machine is ready (QEMU's default).
    Ready,
    /// Only in exactly this phase.
    Exactly(Phase),
    /// In this phase or later.
    From(Phase),
    /// Before the machine is ready (`x-exit-preconfig`).
    BeforeReady,
}

type Handler = fn(&mut Machine, &mut QmpContext, &Map<String, Value>) -> Result<Value, QmpError>;

struct Command {
    name: &'static str,
    /// Declared arguments; `None` for free-form commands (`device_add` takes any property).
    args: Option<&'static [Arg]>,
    when: When,
    run: Handler,
}

const COMMANDS: &[Command] = &[
    Command {
        name: "qmp_capabilities",
        args: Some(&[opt("enable", Ty::StrList)]),
        when: When::Always,
        run: qmp_capabilities,
    },
    Command {
        name: "query-version",
        args: Some(&[]),
        when: When::Always,
        run: query_version,
    },
    Command {
        name: "query-commands",
        args: Some(&[]),
        when: When::Always,
        run: query_commands,
    },
    Command {
        name: "query-status",
        args: Some(&[]),
        when: When::Always,
        run: query_status,
    },
    Command {
        name: "query-machine-phase",
        args: Some(&[]),
        when: When::Always,
        run: query_machine_phase,
    },
    Command {
        name: "x-machine-init",
        args: Some(&[]),
        when: When::Exactly(Phase::AccelCreated),
        run: x_machine_init,
    },
    Command {
        name: "x-exit-preconfig",
        args: Some(&[]),
        when: When::BeforeReady,
        run: x_exit_preconfig,
    },
    Command {
        name: "plugin-load",
        args: Some(&[req("file", Ty::Str)]),
        when: When::BeforeReady,
        run: plugin_load,
    },
    Command {
        name: "device_add",
        args: None,
        when: When::From(Phase::Initialized),
        run: device_add,
    },
    Command {
        name: "device_del",
        args: Some(&[req("id", Ty::Str)]),
        when: When::Exactly(Phase::Initialized),
        run: device_del,
    },
    Command {
        name: "x-sysbus-mmio-map",
        args: Some(&[
            req("device", Ty::Str),
            opt("mmio", Ty::Int),
            req("addr", Ty::Int),
        ]),
        when: When::Exactly(Phase::Initialized),
        run: x_sysbus_mmio_map,
    },
    Command {
        name: "qom-list",
        args: Some(&[req("path", Ty::Str)]),
        when: When::Always,
        run: qom_list,
    },
    Command {
        name: "qom-get",
        args: Some(&[req("path", Ty::Str), req("property", Ty::Str)]),
        when: When::Always,
        run: qom_get,
    },
    Command {
        name: "qom-set",
        args: Some(&[
            req("path", Ty::Str),
            req("property", Ty::Str),
            req("value", Ty::Any),
        ]),
        when: When::Always,
        run: qom_set,
    },
    Command {
        name: "qom-list-types",
        args: Some(&[opt("implements", Ty::Str), opt("abstract", Ty::Bool)]),
        when: When::Always,
        run: qom_list_types,
    },
    Command {
        name: "device-list-properties",
        args: Some(&[req("typename", Ty::Str)]),
        when: When::Always,
        run: device_list_properties,
    },
    Command {
        name: "query-cpus-fast",
        args: Some(&[]),
        when: When::Ready,
        run: query_cpus_fast,
    },
    Command {
        name: "stop",
        args: Some(&[]),
        when: When::Ready,
        run: stop,
    },
    Command {
        name: "cont",
        args: Some(&[]),
        when: When::Ready,
        run: cont,
    },
    Command {
        name: "system_reset",
        args: Some(&[]),
        when: When::Ready,
        run: system_reset,
    },
    Command {
        name: "system_powerdown",
        args: Some(&[]),
        when: When::Ready,
        run: system_powerdown,
    },
    Command {
        name: "quit",
        args: Some(&[]),
        when: When::Always,
        run: quit,
    },
    Command {
        name: "human-monitor-command",
        args: Some(&[req("command-line", Ty::Str), opt("cpu-index", Ty::Int)]),
        when: When::Always,
        run: human_monitor_command,
    },
    Command {
        name: "dumpdtb",
        args: Some(&[req("filename", Ty::Str)]),
        when: When::Ready,
        run: dumpdtb,
    },
    Command {
        name: "x-snapshot-save",
        args: Some(&[req("filename", Ty::Str)]),
        when: When::Ready,
        run: x_snapshot_save,
    },
    Command {
        name: "x-snapshot-load",
        args: Some(&[req("filename", Ty::Str)]),
        when: When::Ready,
        run: x_snapshot_load,
    },
];

/// Every command name, in table order (`query-commands`).
pub fn command_names() -> impl Iterator<Item = &'static str> {
    COMMANDS.iter().map(|c| c.name)
}

/// Whether `name` is a command.
pub fn is_command(name: &str) -> bool {
    COMMANDS.iter().any(|c| c.name == name)
}

fn check_args(cmd: &Command, args: &Map<String, Value>) -> Result<(), QmpError> {
    let Some(schema) = cmd.args else {
        return Ok(());
    };
    // QEMU's input visitor walks the members in schema order, then rejects leftovers.
    for a in schema {
        match args.get(a.name) {
            None if a.required => {
                return Err(QmpError::generic(format!(
                    "Parameter '{}' is missing",
                    a.name
                )));
            }
            None => {}
            Some(v) if !a.ty.accepts(v) => {
                return Err(QmpError::generic(format!(
                    "Invalid parameter type for '{}', expected: {}",
                    a.name,
                    a.ty.qapi_name()
                )));
            }
            Some(_) => {}
        }
    }
    if let Some(k) = args
        .keys()
        .find(|k| !schema.iter().any(|a| a.name == k.as_str()))
    {
        return Err(QmpError::generic(format!("Parameter '{k}' is unexpected")));
    }
    Ok(())
}

fn check_phase(cmd: &Command, m: &Machine) -> Result<(), QmpError> {
    let now = m.phase;
    let need = |p: Phase, how: &str| {
        QmpError::generic(format!(
            "The command {} is permitted only {how} machine phase '{}' (the machine is in phase '{}')",
            cmd.name,
            p.qemu_name(),
            now.qemu_name()
        ))
    };
    match cmd.when {
        When::Always => Ok(()),
        When::Ready if now == Phase::Ready => Ok(()),
        When::Ready => Err(QmpError::generic(format!(
            "The command {} is permitted only after machine initialization has completed",
            cmd.name
        ))),
        When::Exactly(p) if now == p => Ok(()),
        When::Exactly(p) => Err(need(p, "in")),
        When::From(p) if now >= p => Ok(()),
        When::From(p) => Err(need(p, "from")),
        When::BeforeReady if now < Phase::Ready => Ok(()),
        When::BeforeReady => Err(need(Phase::Initialized, "up to")),
    }
}

/// Runs command `name` with `args` against the machine: lookup, argument check, phase check,
/// then the command. Nothing changes unless all checks pass.
pub fn execute(
    machine: &mut Machine,
    ctx: &mut QmpContext,
    name: &str,
    args: &Map<String, Value>,
) -> Result<Value, QmpError> {
    let cmd = COMMANDS.iter().find(|c| c.name == name).ok_or_else(|| {
        QmpError::command_not_found(format!("The command {name} has not been found"))
    })?;
    check_args(cmd, args)?;
    check_phase(cmd, machine)?;
    (cmd.run)(machine, ctx, args)
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn arg_str<'a>(args: &'a Map<String, Value>, key: &str) -> &'a str {
    args.get(key).and_then(Value::as_str).unwrap_or("")
}

fn empty() -> Value {
    Value::Object(Map::new())
}

/// A machine error as one message: the outer text, then its causes.
fn machine_error(e: &MachineError) -> QmpError {
    match e {
        // The device's own words ("Property 'x.y' not found") are the whole story.
        MachineError::Device { source, .. } => QmpError::generic(source.to_string()),
        MachineError::Object(ObjectError::NotFound(p)) => QmpError::device_not_found(p),
        other => {
            let mut s = other.to_string();
            let mut src = std::error::Error::source(other);
            while let Some(c) = src {
                let _ = write!(s, ": {c}");
                src = c.source();
            }
            QmpError::generic(s)
        }
    }
}

fn resolve(m: &Machine, path: &str) -> Result<(String, ObjectKind), QmpError> {
    m.tree.resolve(path).map_err(|e| match e {
        ObjectError::Ambiguous(p) => QmpError::generic(format!("Path '{p}' is ambiguous")),
        _ => QmpError::device_not_found(path),
    })
}

fn resolve_device(m: &Machine, path: &str) -> Result<DeviceId, QmpError> {
    match resolve(m, path)? {
        (_, ObjectKind::Device(id)) => Ok(id),
        _ => Err(QmpError::device_not_found(path)),
    }
}

fn cpu_type(m: &Machine) -> String {
    format!("{}-riscv-cpu", m.cpu.name)
}

fn machine_type(m: &Machine) -> String {
    format!("{}-machine", m.name())
}

fn type_of(m: &Machine, kind: ObjectKind) -> String {
    match kind {
        ObjectKind::Container => "container".to_string(),
        ObjectKind::Machine => machine_type(m),
        ObjectKind::Device(id) => m
            .device(id)
            .map(|e| e.type_name.clone())
            .unwrap_or_default(),
        ObjectKind::Cpu(_) => cpu_type(m),
    }
}

fn prop_json(v: &PropValue) -> Value {
    match v {
        PropValue::U64(n) => json!(n),
        PropValue::Bool(b) => json!(b),
        PropValue::Str(s) => json!(s),
    }
}

/// QEMU's `sysbus-irq[N]` / `unnamed-gpio-in[N]` property names.
fn indexed(name: &str, prefix: &str) -> Option<usize> {
    name.strip_prefix(prefix)?
        .strip_prefix('[')?
        .strip_suffix(']')?
        .parse()
        .ok()
}

fn target_path(m: &Machine, t: WireTarget) -> String {
    match t {
        WireTarget::Device { id, input } => {
            let p = m.device(id).map(|e| e.path.clone()).unwrap_or_default();
            format!("{p}/unnamed-gpio-in[{input}]")
        }
        WireTarget::Cpu { hart, bit } => format!("/machine/cpu[{hart}]/unnamed-gpio-in[{bit}]"),
    }
}

// ---------------------------------------------------------------------------------------------
// Commands

fn qmp_capabilities(
    _: &mut Machine,
    _: &mut QmpContext,
    _: &Map<String, Value>,
) -> Result<Value, QmpError> {
    Err(QmpError::command_not_found(
        "Capabilities negotiation is already complete, command ignored",
    ))
}

/// breadboard's version in QEMU's `VersionInfo` shape.
pub fn version_info() -> Value {
    let v = env!("CARGO_PKG_VERSION");
    let mut parts = v.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    let micro = parts.next().unwrap_or(0);
    json!({
        "qemu": {"micro": micro, "minor": minor, "major": major},
        "package": format!("breadboard {v}"),
    })
}

fn query_version(
    _: &mut Machine,
    _: &mut QmpContext,
    _: &Map<String, Value>,
) -> Result<Value, QmpError> {
    Ok(version_info())
}

fn query_commands(
    _: &mut Machine,
    _: &mut QmpContext,
    _: &Map<String, Value>,
) -> Result<Value, QmpError> {
    Ok(Value::Array(
        command_names().map(|n| json!({"name": n})).collect(),
    ))
}

fn query_status(
    m: &mut Machine,
    ctx: &mut QmpContext,
    _: &Map<String, Value>,
) -> Result<Value, QmpError> {
    let status = if m.phase < Phase::Ready {
        RunStatus::Prelaunch
    } else {
        ctx.status
    };
    Ok(json!({
        "status": status.as_str(),
        "singlestep": false,
        "running": status == RunStatus::Running,
    }))
}

fn query_machine_phase(
    m: &mut Machine,
    _: &mut QmpContext,
    _: &Map<String, Value>,
) -> Result<Value, QmpError> {
    Ok(json!({"phase": m.phase.qemu_name()}))
}

fn x_machine_init(
    m: &mut Machine,
    _: &mut QmpContext,
    _: &Map<String, Value>,
) -> Result<Value, QmpError> {
    m.machine_init().map_err(|e| machine_error(&e))?;
    Ok(empty())
}

fn x_exit_preconfig(
    m: &mut Machine,
    ctx: &mut QmpContext,
    _: &Map<String, Value>,
) -> Result<Value, QmpError> {
    if m.phase == Phase::AccelCreated {
        m.machine_init().map_err(|e| machine_error(&e))?;
    }
    m.wire_default_cpu_irqs().map_err(|e| machine_error(&e))?;
    m.finish(&ctx.boot).map_err(|e| machine_error(&e))?;
    if !ctx.start_stopped {
        ctx.status = RunStatus::Running;
        ctx.emit("RESUME", None);
    }
    Ok(empty())
}

/// `plugin-load` (issue 6, preconfig only): loads a device plugin into the machine's type
/// registry; its types then work with `device_add`, `device-list-properties` and
/// `qom-list-types`. Returns the types it registered.
fn plugin_load(
    m: &mut Machine,
    _: &mut QmpContext,
    args: &Map<String, Value>,
) -> Result<Value, QmpError> {
    let file = args.get("file").and_then(Value::as_str).unwrap_or_default();
    let loaded = breadboard_plugin_host::load(std::path::Path::new(file), &mut m.registry)
        .map_err(|e| QmpError::generic(e.to_string()))?;
    Ok(json!({ "name": loaded.name, "types": loaded.types }))
}

fn device_add(
    m: &mut Machine,
    ctx: &mut QmpContext,
    args: &Map<String, Value>,
) -> Result<Value, QmpError> {
    let driver = match args.get("driver") {
        None => return Err(QmpError::generic("Parameter 'driver' is missing")),
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            return Err(QmpError::generic(
                "Invalid parameter type for 'driver', expected: string",
            ));
        }
    };
    let id = match args.get("id") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            return Err(QmpError::generic(
                "Invalid parameter type for 'id', expected: string",
            ));
        }
    };
    let mut props = Vec::new();
    for (k, v) in args {
        if k == "driver" || k == "id" {
            continue;
        }
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
            _ => {
                return Err(QmpError::generic(format!(
                    "Invalid parameter type for '{k}', expected: string, integer or boolean"
                )));
            }
        };
        props.push((k.clone(), text));
    }
    let opt = DeviceOption { driver, id, props };
    if m.phase == Phase::Ready {
        if ctx.started {
            return Err(QmpError::generic(format!(
                "Device '{}' can't be added: machine '{}' is ready and its guest has run; \
                 memory-mapped devices may be added after machine initialization only before \
                 the guest first runs (start with -S)",
                opt.driver,
                m.name()
            )));
        }
        m.add_device_before_start(&opt)
            .map_err(|e| machine_error(&e))?;
    } else {
        m.add_user_device(&opt).map_err(|e| machine_error(&e))?;
    }
    Ok(empty())
}

fn device_del(
    m: &mut Machine,
    ctx: &mut QmpContext,
    args: &Map<String, Value>,
) -> Result<Value, QmpError> {
    let id_arg = arg_str(args, "id");
    let id = resolve_device(m, id_arg)?;
    let e = m
        .device(id)
        .ok_or_else(|| QmpError::device_not_found(id_arg))?;
    if !e.user {
        return Err(QmpError::generic(format!(
            "Device '{}' is part of machine '{}' and can't be removed",
            e.label,
            m.name()
        )));
    }
    let path = e.path.clone();
    let label = e.label.clone();
    for other in m.device_ids() {
        let Some(o) = m.device(other) else { continue };
        if other != id
            && o.wires
                .iter()
                .flatten()
                .any(|w| matches!(w, WireTarget::Device { id: t, .. } if *t == id))
        {
            return Err(QmpError::generic(format!(
                "Device '{label}' can't be removed: '{}' is wired to its inputs",
                o.label
            )));
        }
    }
    // Outputs of the removed device stop driving their targets.
    for line in &e.outputs {
        line.disconnect();
    }
    m.remove_device(id);
    let dev_id = path
        .strip_prefix("/machine/peripheral/")
        .map(str::to_string);
    let mut data = Map::new();
    if let Some(d) = dev_id {
        data.insert("device".into(), json!(d));
    }
    data.insert("path".into(), json!(path));
    ctx.emit("DEVICE_DELETED", Some(Value::Object(data)));
    Ok(empty())
}

fn x_sysbus_mmio_map(
    m: &mut Machine,
    _: &mut QmpContext,
    args: &Map<String, Value>,
) -> Result<Value, QmpError> {
    let dev = arg_str(args, "device");
    let index = match args.get("mmio") {
        None => 0,
        Some(v) => v
            .as_u64()
            .filter(|&i| i <= u64::from(u8::MAX))
            .ok_or_else(|| QmpError::generic("Parameter 'mmio' expects uint8_t"))?,
    };
    let addr = args
        .get("addr")
        .and_then(Value::as_u64)
        .ok_or_else(|| QmpError::generic("Parameter 'addr' expects uint64_t"))?;
    let id = resolve_device(m, dev)?;
    let e = m
        .device(id)
        .ok_or_else(|| QmpError::device_not_found(dev))?;
    let sysbus = m.registry.get(&e.type_name).is_some_and(|t| t.sysbus);
    if !sysbus || e.regions.is_empty() {
        return Err(QmpError::generic(format!(
            "Device '{dev}' is not a sysbus device with MMIO regions"
        )));
    }
    m.map_region(id, index as usize, addr)
        .map_err(|e| machine_error(&e))?;
    Ok(empty())
}

fn qom_list(
    m: &mut Machine,
    _: &mut QmpContext,
    args: &Map<String, Value>,
) -> Result<Value, QmpError> {
    let (path, kind) = resolve(m, arg_str(args, "path"))?;
    let mut out = vec![json!({"name": "type", "type": "string"})];
    if let ObjectKind::Device(id) = kind
        && let Some(e) = m.device(id)
    {
        out.push(json!({"name": "realized", "type": "bool"}));
        if let Some(t) = m.registry.get(&e.type_name) {
            for p in &t.props {
                let ty = match p.kind {
                    PropKind::Link => "link<object>".to_string(),
                    k => k.qemu_name().to_string(),
                };
                out.push(json!({"name": p.name, "type": ty}));
            }
        }
        for i in 0..e.outputs.len() {
            out.push(json!({"name": format!("sysbus-irq[{i}]"), "type": "link<irq>"}));
        }
        for i in 0..e.inputs {
            out.push(json!({"name": format!("unnamed-gpio-in[{i}]"), "type": "child<irq>"}));
        }
    }
    for (name, k) in m.tree.children(&path) {
        out.push(json!({"name": name, "type": format!("child<{}>", type_of(m, k))}));
    }
    Ok(Value::Array(out))
}

fn not_found_prop(ty: &str, prop: &str) -> QmpError {
    QmpError::generic(format!("Property '{ty}.{prop}' not found"))
}

fn qom_get(
    m: &mut Machine,
    _: &mut QmpContext,
    args: &Map<String, Value>,
) -> Result<Value, QmpError> {
    let (_, kind) = resolve(m, arg_str(args, "path"))?;
    let prop = arg_str(args, "property");
    let ty = type_of(m, kind);
    if prop == "type" {
        return Ok(json!(ty));
    }
    let ObjectKind::Device(id) = kind else {
        return Err(not_found_prop(&ty, prop));
    };
    let e = m.device(id).ok_or_else(|| not_found_prop(&ty, prop))?;
    if prop == "realized" {
        return Ok(json!(true));
    }
    if let Some(out) = indexed(prop, "sysbus-irq")
        && out < e.outputs.len()
    {
        let t = e.wires.get(out).copied().flatten();
        return Ok(json!(t.map(|t| target_path(m, t)).unwrap_or_default()));
    }
    match m.get_property(id, prop) {
        Some(v) => Ok(prop_json(&v)),
        None => {
            // Declared but unset (an optional chardev): QEMU reads "" for a string property.
            let declared = m
                .registry
                .get(&e.type_name)
                .and_then(|t| t.props.iter().find(|p| p.name == prop));
            match declared {
                Some(_) => Ok(json!("")),
                None => Err(not_found_prop(&ty, prop)),
            }
        }
    }
}

/// Parses `<path>/unnamed-gpio-in[M]` (QOM partial paths allowed) into a wire target.
fn parse_irq_target(m: &Machine, prop: &str, value: &str) -> Result<WireTarget, QmpError> {
    let not_found = || QmpError {
        class: crate::error::ErrorClass::DeviceNotFound,
        desc: format!("Device '{value}' not found"),
    };
    let wrong_type = || {
        QmpError::generic(format!(
            "Invalid parameter type for '{prop}', expected: irq"
        ))
    };
    let Some((owner, leaf)) = value.rsplit_once('/') else {
        return Err(if m.tree.resolve(value).is_ok() {
            wrong_type()
        } else {
            not_found()
        });
    };
    let Some(input) = indexed(leaf, "unnamed-gpio-in") else {
        return Err(if m.tree.resolve(value).is_ok() {
            wrong_type()
        } else {
            not_found()
        });
    };
    let kind = match m.tree.resolve(owner) {
        Ok((_, k)) => k,
        Err(ObjectError::Ambiguous(p)) => {
            return Err(QmpError::generic(format!(
                "Path '{p}' does not uniquely identify an object"
            )));
        }
        Err(_) => return Err(not_found()),
    };
    let input = u32::try_from(input).map_err(|_| not_found())?;
    match kind {
        ObjectKind::Device(id) => {
            let inputs = m.device(id).map_or(0, |e| e.inputs);
            if input >= inputs {
                return Err(not_found());
            }
            Ok(WireTarget::Device { id, input })
        }
        ObjectKind::Cpu(hart) => {
            if input >= 64 {
                return Err(not_found());
            }
            Ok(WireTarget::Cpu { hart, bit: input })
        }
        _ => Err(wrong_type()),
    }
}

fn qom_set(
    m: &mut Machine,
    _: &mut QmpContext,
    args: &Map<String, Value>,
) -> Result<Value, QmpError> {
    let (path, kind) = resolve(m, arg_str(args, "path"))?;
    let prop = arg_str(args, "property");
    let value = args.get("value").cloned().unwrap_or(Value::Null);
    let ty = type_of(m, kind);
    if prop == "type" {
        return Err(QmpError::generic(
            "Insufficient permission to perform this operation",
        ));
    }
    let ObjectKind::Device(id) = kind else {
        return Err(not_found_prop(&ty, prop));
    };
    let e = m.device(id).ok_or_else(|| not_found_prop(&ty, prop))?;
    let after_realize = |what: &str| {
        let who = match path.strip_prefix("/machine/peripheral/") {
            Some(id) => format!("device '{id}'"),
            None => "anonymous device".to_string(),
        };
        QmpError::generic(format!(
            "Attempt to set {what}property '{prop}' on {who} (type '{ty}') after it was realized"
        ))
    };
    if let Some(out) = indexed(prop, "sysbus-irq").filter(|&o| o < e.outputs.len()) {
        if m.phase != Phase::Initialized {
            if m.phase == Phase::Ready {
                return Err(after_realize("link "));
            }
            return Err(QmpError::generic(format!(
                "IRQ wiring with qom-set is permitted only in machine phase 'initialized' \
                 (the machine is in phase '{}')",
                m.phase.qemu_name()
            )));
        }
        let Value::String(target) = &value else {
            return Err(QmpError::generic(format!(
                "Invalid parameter type for '{prop}', expected: string"
            )));
        };
        let t = parse_irq_target(m, prop, target)?;
        m.connect(id, out, t).map_err(|e| machine_error(&e))?;
        return Ok(empty());
    }
    let declared = m
        .registry
        .get(&e.type_name)
        .is_some_and(|t| t.props.iter().any(|p| p.name == prop));
    if declared || prop == "realized" {
        return Err(after_realize(""));
    }
    Err(not_found_prop(&ty, prop))
}

/// Abstract types breadboard shows (QEMU's hierarchy, trimmed): (name, parent).
const ABSTRACT_TYPES: &[(&str, &str)] = &[
    ("device", "object"),
    ("sys-bus-device", "device"),
    ("cpu", "device"),
    ("riscv-cpu", "cpu"),
    ("machine", "object"),
];

fn implements(t: &str, parent: &str, wanted: &str) -> bool {
    if t == wanted {
        return true;
    }
    let mut cur = parent;
    // The hierarchy is a handful of levels deep; the bound only guards against a cycle.
    for _ in 0..ABSTRACT_TYPES.len() + 1 {
        if cur == wanted {
            return true;
        }
        match ABSTRACT_TYPES.iter().find(|(n, _)| *n == cur) {
            Some((_, p)) => cur = p,
            None => return false,
        }
    }
    false
}

fn qom_list_types(
    m: &mut Machine,
    _: &mut QmpContext,
    args: &Map<String, Value>,
) -> Result<Value, QmpError> {
    let want = args.get("implements").and_then(Value::as_str);
    let with_abstract = args
        .get("abstract")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut types: Vec<(String, String, bool)> = Vec::new();
    for t in m.registry.iter() {
        let parent = if t.sysbus { "sys-bus-device" } else { "device" };
        types.push((t.name.to_string(), parent.to_string(), false));
    }
    for c in breadboard_platform::cpus::MODELS {
        types.push((
            format!("{}-riscv-cpu", c.name),
            "riscv-cpu".to_string(),
            false,
        ));
    }
    for (name, _) in breadboard_platform::description::BUILTIN {
        types.push((format!("{name}-machine"), "machine".to_string(), false));
    }
    for (name, parent) in ABSTRACT_TYPES {
        types.push((name.to_string(), parent.to_string(), true));
    }
    let out = types
        .into_iter()
        .filter(|(_, _, abs)| with_abstract || !abs)
        .filter(|(n, p, _)| want.is_none_or(|w| implements(n, p, w)))
        .map(|(n, p, abs)| {
            let mut o = Map::new();
            o.insert("name".into(), json!(n));
            if abs {
                o.insert("abstract".into(), json!(true));
            }
            o.insert("parent".into(), json!(p));
            Value::Object(o)
        })
        .collect();
    Ok(Value::Array(out))
}

fn device_list_properties(
    m: &mut Machine,
    _: &mut QmpContext,
    args: &Map<String, Value>,
) -> Result<Value, QmpError> {
    let name = arg_str(args, "typename");
    if ABSTRACT_TYPES.iter().any(|(n, _)| *n == name) {
        return Err(QmpError::generic(
            "Parameter 'typename' expects a non-abstract device type",
        ));
    }
    let t = m
        .registry
        .get(name)
        .ok_or_else(|| QmpError::device_not_found(name))?;
    let mut out = Vec::new();
    for p in &t.props {
        let mut o = Map::new();
        o.insert("name".into(), json!(p.name));
        o.insert("type".into(), json!(p.kind.qemu_name()));
        o.insert("description".into(), json!(p.doc));
        if let Some(d) = p
            .default
            .as_deref()
            .filter(|d| !d.is_empty() || p.kind == PropKind::Str)
            && let Ok(v) = p.parse(&t.name, RawValue::Str(d))
        {
            o.insert("default-value".into(), prop_json(&v));
        }
        out.push(Value::Object(o));
    }
    Ok(Value::Array(out))
}

fn query_cpus_fast(
    m: &mut Machine,
    _: &mut QmpContext,
    _: &Map<String, Value>,
) -> Result<Value, QmpError> {
    // Every hart runs on the main loop's thread, the process's first.
    let tid = std::process::id();
    let target = if m.cpu.bits() == 64 {
        "riscv64"
    } else {
        "riscv32"
    };
    Ok(Value::Array(
        (0..m.harts.len())
            .map(|i| {
                json!({
                    "thread-id": tid,
                    "props": {"core-id": i, "socket-id": 0},
                    "qom-path": format!("/machine/cpu[{i}]"),
                    "cpu-index": i,
                    "target": target,
                })
            })
            .collect(),
    ))
}

fn stop(m: &mut Machine, ctx: &mut QmpContext, _: &Map<String, Value>) -> Result<Value, QmpError> {
    if ctx.status == RunStatus::Running {
        m.pause_clock();
        ctx.emit("STOP", None);
    }
    ctx.status = RunStatus::Paused;
    Ok(empty())
}

fn cont(m: &mut Machine, ctx: &mut QmpContext, _: &Map<String, Value>) -> Result<Value, QmpError> {
    if ctx.status != RunStatus::Running {
        m.resume_clock();
        ctx.status = RunStatus::Running;
        ctx.emit("RESUME", None);
    }
    Ok(empty())
}

fn system_reset(
    m: &mut Machine,
    ctx: &mut QmpContext,
    _: &Map<String, Value>,
) -> Result<Value, QmpError> {
    m.monitor_reset().map_err(|e| machine_error(&e))?;
    ctx.deferred.push((
        "RESET".into(),
        Some(json!({"guest": false, "reason": "host-qmp-system-reset"})),
    ));
    Ok(empty())
}

fn system_powerdown(
    _: &mut Machine,
    ctx: &mut QmpContext,
    _: &Map<String, Value>,
) -> Result<Value, QmpError> {
    // No ACPI: the request is announced; a guest that can't see it keeps running (as a QEMU
    // guest that ignores the power button does).
    ctx.deferred.push(("POWERDOWN".into(), None));
    Ok(empty())
}

fn quit(_: &mut Machine, ctx: &mut QmpContext, _: &Map<String, Value>) -> Result<Value, QmpError> {
    ctx.quit_requested = true;
    ctx.deferred.push((
        "SHUTDOWN".into(),
        Some(json!({"guest": false, "reason": "host-qmp-quit"})),
    ));
    if let Some(tx) = &ctx.main_loop {
        let _ = tx.send(breadboard_platform::Event::Quit);
    }
    Ok(empty())
}

fn human_monitor_command(
    m: &mut Machine,
    ctx: &mut QmpContext,
    args: &Map<String, Value>,
) -> Result<Value, QmpError> {
    let line = arg_str(args, "command-line");
    let text = crate::hmp::run(m, ctx, line);
    Ok(json!(text.replace('\n', "\r\n")))
}

fn dumpdtb(
    m: &mut Machine,
    _: &mut QmpContext,
    args: &Map<String, Value>,
) -> Result<Value, QmpError> {
    let file = arg_str(args, "filename");
    let blob = match m.boot.as_ref() {
        Some(b) => b.dtb.clone(),
        None => m.dump_dtb(None).map_err(|e| machine_error(&e))?,
    };
    std::fs::write(file, blob)
        .map_err(|_| QmpError::generic(format!("Error saving FDT to file {file}")))?;
    Ok(empty())
}

/// `x-snapshot-save`: devices, harts, time, timers and RAM to a file. Runs between slices, so
/// a running machine is saved at an instruction boundary and keeps running.
fn x_snapshot_save(
    m: &mut Machine,
    _: &mut QmpContext,
    args: &Map<String, Value>,
) -> Result<Value, QmpError> {
    let file = arg_str(args, "filename");
    m.snapshot_save(file)
        .map_err(|e| QmpError::generic(e.to_string()))?;
    Ok(empty())
}

/// `x-snapshot-load`: restores a snapshot taken on the same machine description and options;
/// the run state (stopped or running) is kept.
fn x_snapshot_load(
    m: &mut Machine,
    _: &mut QmpContext,
    args: &Map<String, Value>,
) -> Result<Value, QmpError> {
    let file = arg_str(args, "filename");
    m.snapshot_load(file)
        .map_err(|e| QmpError::generic(e.to_string()))?;
    Ok(empty())
}

#[cfg(test)]
// Tests: a failing unwrap, index or panic is a failed test (as clippy.toml allows).
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn test_type_hierarchy_for_implements() {
        assert!(implements("ibex-uart", "sys-bus-device", "device"));
        assert!(implements("ibex-uart", "sys-bus-device", "sys-bus-device"));
        assert!(!implements("ibex-uart", "sys-bus-device", "riscv-cpu"));
        assert!(implements("rv64-riscv-cpu", "riscv-cpu", "cpu"));
        assert!(implements("none-machine", "machine", "machine"));
    }

    #[test]
    fn test_indexed_property_names() {
        assert_eq!(indexed("sysbus-irq[3]", "sysbus-irq"), Some(3));
        assert_eq!(indexed("sysbus-irq[x]", "sysbus-irq"), None);
        assert_eq!(indexed("unnamed-gpio-in[12]", "unnamed-gpio-in"), Some(12));
        assert_eq!(indexed("sysbus-irq", "sysbus-irq"), None);
    }

    #[test]
    fn test_version_info_is_qemu_shaped() {
        let v = version_info();
        assert!(v["qemu"]["major"].is_u64());
        assert!(v["package"].as_str().unwrap().starts_with("breadboard "));
    }
}
