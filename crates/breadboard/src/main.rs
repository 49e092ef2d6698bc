//! breadboard: a RISC-V machine emulator whose machines are composed at runtime.
//!
//! This is the binary: it parses QEMU's command line, opens chardevs and drives, builds the
//! machine from its description plus `-device` options, loads images and runs the main loop.
//! With no arguments it boots the built-in `virt` machine with the demo firmware embedded in the
//! binary (source in `firmware/demo/`).

// User, file and socket input reaches every module: no panicking shortcuts outside tests.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod chardev;
mod cli;
mod gdb;
mod logging;
mod vfio_cmd;

use std::path::Path;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use breadboard_core::{BlockBackend, Chardev, ChardevRegistry, DriveRegistry, TypeRegistry};
use breadboard_platform::{
    BootOptions, Description, DeviceOption, Event, Exit, Firmware, Image, Machine, MachineError,
    MachineOptions, Phase, cpus, dtb,
};
use breadboard_qmp::{ListenAddr, ListenSpec, QmpContext, ServerHandle};
use breadboard_riscv::TraceFlags;

/// The demo firmware run by `breadboard` with no arguments.
const DEMO_FIRMWARE: &[u8] = include_bytes!("../../../firmware/demo/demo.elf");

fn registry() -> TypeRegistry {
    let mut reg = TypeRegistry::new();
    breadboard_devices::register_builtin(&mut reg);
    breadboard_vfio::register(&mut reg);
    reg
}

fn read_image(what: &str, path: &Path) -> Result<Image> {
    let data = std::fs::read(path)
        .with_context(|| format!("could not load {what} '{}'", path.display()))?;
    Ok(Image {
        name: path.display().to_string(),
        data,
    })
}

/// The built-in device types plus those of every `-plugin`, in command-line order (issue 6).
/// A refused plugin stops the run here, before any machine exists, and registers nothing.
fn registry_with_plugins(cfg: &cli::Config) -> Result<TypeRegistry> {
    let mut reg = registry();
    for p in &cfg.plugins {
        breadboard_plugin_host::load(&p.file, &mut reg).map_err(|e| anyhow!("-plugin: {e}"))?;
    }
    Ok(reg)
}

/// The registry `-device help` describes: built-ins plus the types of any `-plugin` on the same
/// command line (the CLI answers help requests before it reads the rest of the line).
fn help_registry(args: &[String]) -> Result<TypeRegistry> {
    let mut reg = registry();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "-plugin" || a == "--plugin" {
            let Some(v) = it.next() else { break };
            let file = v.split(',').find_map(|kv| match kv.split_once('=') {
                Some(("file", f)) => Some(f),
                Some(_) => None,
                None => Some(kv),
            });
            if let Some(f) = file {
                breadboard_plugin_host::load(std::path::Path::new(f), &mut reg)
                    .map_err(|e| anyhow!("-plugin: {e}"))?;
            }
        }
    }
    Ok(reg)
}

/// Options the command line understands but this version does not implement yet: refusing them
/// is better than ignoring them.
fn refuse_unsupported(cfg: &cli::Config) -> Result<()> {
    let mut unsupported = Vec::new();
    // Plugins load (issue 6); passing them arguments has no ABI yet.
    if cfg.plugins.iter().any(|p| !p.args.is_empty()) {
        unsupported.push("-plugin arguments");
    }
    match unsupported.first() {
        Some(first) => Err(anyhow!(
            "{first}: not supported by this version of breadboard{}",
            if unsupported.len() > 1 {
                format!(
                    " (nor {})",
                    unsupported.get(1..).unwrap_or_default().join(", ")
                )
            } else {
                String::new()
            }
        )),
        None => Ok(()),
    }
}

/// Where the gdb stub listens (`-gdb`, `-s`): a server socket, loopback unless the user named
/// another address and said `allow-remote=on`.
fn gdb_listen_spec(cfg: &cli::Config, id: &str) -> Result<gdb::GdbListen> {
    let c = cfg
        .chardevs
        .iter()
        .find(|c| c.id == id)
        .ok_or_else(|| anyhow!("-gdb: chardev '{id}' not found"))?;
    let chardev::ChardevSpec::Socket(s) = &c.spec else {
        return Err(anyhow!(
            "-gdb: breadboard serves gdb on unix: or tcp: server sockets only"
        ));
    };
    if !s.server {
        return Err(anyhow!(
            "-gdb: the gdb stub is a server: gdb connects to it"
        ));
    }
    Ok(match &s.addr {
        chardev::SocketAddrSpec::Unix(p) => gdb::GdbListen::Unix(p.clone()),
        chardev::SocketAddrSpec::Tcp { host, port } => {
            let host = host
                .clone()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "127.0.0.1".to_string());
            let loopback = host == "localhost"
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if !loopback && !s.allow_remote {
                return Err(anyhow!(
                    "-gdb: refusing to listen on '{host}' (not loopback): add allow-remote=on"
                ));
            }
            gdb::GdbListen::Tcp(host, *port)
        }
    })
}

/// The QMP server address of chardev `id` (a `-qmp` target): a listening socket.
fn qmp_listen_spec(cfg: &cli::Config, id: &str) -> Result<ListenSpec> {
    let c = cfg
        .chardevs
        .iter()
        .find(|c| c.id == id)
        .ok_or_else(|| anyhow!("-qmp: chardev '{id}' not found"))?;
    let chardev::ChardevSpec::Socket(s) = &c.spec else {
        return Err(anyhow!(
            "-qmp: breadboard serves QMP on unix: or tcp: server sockets only"
        ));
    };
    if !s.server {
        return Err(anyhow!(
            "-qmp: breadboard serves QMP only as a server: add server=on"
        ));
    }
    let (addr, allow_remote) = match &s.addr {
        chardev::SocketAddrSpec::Unix(p) => (ListenAddr::Unix(p.clone()), false),
        chardev::SocketAddrSpec::Tcp { host, port } => (
            ListenAddr::Tcp {
                host: host.clone().unwrap_or_else(|| "127.0.0.1".to_string()),
                port: *port,
            },
            s.allow_remote,
        ),
    };
    Ok(ListenSpec {
        addr,
        wait: s.wait,
        allow_remote,
    })
}

fn run(args: &[String]) -> Result<i32> {
    let (args, embedded) = if args.is_empty() {
        (
            vec![
                "-M".to_string(),
                "virt".into(),
                "-bios".into(),
                "none".into(),
            ],
            true,
        )
    } else {
        (args.to_vec(), false)
    };
    let cfg = match cli::parse(&args).map_err(|e| anyhow!("{e}"))? {
        cli::Command::Run(cfg) => cfg,
        cli::Command::Help(text) => {
            print!("{text}");
            return Ok(0);
        }
        cli::Command::Version => {
            print!("{}", cli::version_text());
            return Ok(0);
        }
        cli::Command::DeviceHelp(None) => {
            print!("{}", help_registry(&args)?.help());
            return Ok(0);
        }
        cli::Command::DeviceHelp(Some(ty)) => {
            let text = help_registry(&args)?
                .type_help(&ty)
                .ok_or_else(|| anyhow!("'{ty}' is not a valid device model name"))?;
            print!("{text}");
            return Ok(0);
        }
        cli::Command::MachineHelp(_) => {
            print!("{}", Description::help());
            return Ok(0);
        }
        cli::Command::CpuHelp => {
            print!("{}", cpus::help());
            return Ok(0);
        }
    };
    refuse_unsupported(&cfg)?;
    logging::init(&cfg.log_items, cfg.log_file.as_deref()).map_err(|e| anyhow!("{e}"))?;

    let (io_tx, io_rx) = mpsc::channel::<chardev::IoEvent>();
    let chardevs = Rc::new(ChardevRegistry::default());
    for c in &cfg.chardevs {
        // QMP monitors are served by the QMP server, not opened as device chardevs.
        if cfg.qmp.contains(&c.id) || cfg.gdb.as_ref() == Some(&c.id) {
            continue;
        }
        let backend = chardev::open(&c.spec, &c.id, io_tx.clone())
            .map_err(|e| anyhow!("-chardev {}: {e}", c.spec))?;
        chardevs
            .add(Chardev::new(&c.id, backend))
            .map_err(|e| anyhow!("{e}"))?;
    }
    let drives = Rc::new(DriveRegistry::default());
    for d in &cfg.drives {
        let b = BlockBackend::open(&d.id, &d.file, d.readonly).with_context(|| {
            format!("-drive id={}: could not open '{}'", d.id, d.file.display())
        })?;
        drives.add(b).map_err(|e| anyhow!("-drive: {e}"))?;
    }

    let opts = MachineOptions {
        machine: cfg.machine.kind.clone().unwrap_or_else(|| "virt".into()),
        cpu: cfg.cpu.as_ref().map(|c| c.model.clone()),
        // A DTB board has as many harts as its /cpus unless -smp asks for another number.
        // (cli::Config can't tell `-smp 1` from no -smp yet.)
        smp: (cfg.machine.dtb_board.is_none() || cfg.smp != 1).then_some(cfg.smp),
        ram_size: cfg.memory,
        icount_shift: cfg.icount.as_ref().map(|i| i.shift),
    };
    let mut machine = match &cfg.machine.dtb_board {
        Some(path) => {
            let data = std::fs::read(path)
                .with_context(|| format!("dtb-board: could not read '{}'", path.display()))?;
            let reg = registry_with_plugins(&cfg)?;
            let board = dtb::description_from_dtb(
                &data,
                &path.display().to_string(),
                &reg,
                cfg.machine.dtb_board_ignore_unknown,
            )?;
            for n in &board.skipped {
                eprintln!("breadboard: dtb-board: skipped {n}");
            }
            Machine::create_from(board.desc, &opts, reg, chardevs, drives)?
        }
        None => Machine::create(&opts, registry_with_plugins(&cfg)?, chardevs, drives)?,
    };
    for d in &cfg.devices {
        let opt = DeviceOption {
            driver: d.driver.clone(),
            id: d.id.clone(),
            props: d.props.clone(),
        };
        // QEMU's form: the option as written, then the cause (the device's own name adds
        // nothing the option text does not say).
        machine
            .add_user_device(&opt)
            .map_err(|e| match e {
                MachineError::Device { source, .. } => anyhow::Error::new(source),
                e => anyhow::Error::new(e),
            })
            .with_context(|| format!("-device {}", d.arg))?;
    }
    machine.wire_default_cpu_irqs()?;
    if let Some(path) = &cfg.machine.dump {
        // The description the machine was built from (for dtb-board, the one made from the
        // device tree), as TOML: edit it and load it back with -M FILE.
        let text = dtb::description_to_toml(&machine.desc).map_err(|e| anyhow!("dump: {e}"))?;
        std::fs::write(path, text)
            .with_context(|| format!("dump: could not write '{}'", path.display()))?;
        return Ok(0);
    }
    if let Some(path) = &cfg.machine.dumpdtb {
        let dtb = match cfg.dtb.as_deref() {
            // QEMU dumps the tree it would boot with: the user's, merged.
            Some(p) => dtb::merge::dump_merged(
                &mut machine,
                &read_image("dtb", p)?,
                cfg.append.as_deref(),
            )?,
            None => machine.dump_dtb(cfg.append.as_deref())?,
        };
        std::fs::write(path, dtb)
            .with_context(|| format!("dumpdtb: could not write '{}'", path.display()))?;
        return Ok(0);
    }

    let firmware = match &cfg.bios {
        cli::Firmware::Default => Firmware::Default,
        cli::Firmware::None => Firmware::None,
        cli::Firmware::File(p) => Firmware::Image(read_image("bios", p)?),
    };
    let kernel = if embedded {
        Some(Image {
            name: "<built-in demo firmware>".into(),
            data: DEMO_FIRMWARE.to_vec(),
        })
    } else {
        cfg.kernel
            .as_deref()
            .map(|p| read_image("kernel", p))
            .transpose()?
    };
    let boot = BootOptions {
        firmware,
        kernel,
        initrd: cfg
            .initrd
            .as_deref()
            .map(|p| read_image("initrd", p))
            .transpose()?,
        append: cfg.append.clone(),
        dtb: cfg
            .dtb
            .as_deref()
            .map(|p| read_image("dtb", p))
            .transpose()?,
    };
    let trace = TraceFlags {
        in_asm: logging::enabled(logging::LogItem::InAsm),
        int: logging::enabled(logging::LogItem::Int),
        exec: logging::enabled(logging::LogItem::Exec),
    };
    for h in &mut machine.harts {
        h.set_trace(trace);
    }

    // I/O threads speak `IoEvent`; the main loop takes `Event`.
    let (tx, rx) = mpsc::channel::<Event>();
    if !cfg.qmp.is_empty() || machine.timers.has_notifiers() {
        // Device I/O threads (vfio eventfds) wake the loop; QMP keeps a sender alive anyway.
        machine.set_event_sender(tx.clone());
    }
    let forward = tx.clone();
    let gdb_tx = tx.clone();
    std::thread::Builder::new()
        .name("io-forward".into())
        .spawn(move || {
            while let Ok(ev) = io_rx.recv() {
                let ev = match ev {
                    chardev::IoEvent::CharInput { chardev, data } => {
                        Event::CharInput { chardev, data }
                    }
                    chardev::IoEvent::Quit => Event::Quit,
                    chardev::IoEvent::CharConnected { .. }
                    | chardev::IoEvent::CharClosed { .. } => continue,
                };
                if forward.send(ev).is_err() {
                    break;
                }
            }
        })
        .context("could not start the I/O thread")?;
    drop(io_tx);

    // QMP: every -qmp socket, then the script, then (with -preconfig) the preconfig session.
    let ctx = QmpContext::new(boot.clone(), cfg.start_stopped);
    let mut qmp = if cfg.qmp.is_empty() {
        // No monitor: keep no sender, so the loop still notices when no event source is left.
        drop(tx);
        ServerHandle::detached(ctx)
    } else {
        ServerHandle::new(ctx, tx)
    };
    for id in &cfg.qmp {
        qmp.listen(&qmp_listen_spec(&cfg, id)?)?;
    }
    let preconfig = cfg.preconfig || cfg.qmp_script.is_some();
    if preconfig {
        machine.enter_preconfig()?;
    }
    if let Some(path) = &cfg.qmp_script {
        qmp.run_script(path, &mut machine)
            .map_err(|e| anyhow!("-qmp-script: {e}"))?;
    }
    if cfg.preconfig {
        // Commands (closures) run here until one of them makes the machine ready.
        while machine.phase != Phase::Ready && !qmp.context().quit_requested {
            match rx.recv() {
                Ok(Event::Call(f)) => f(&mut machine),
                Ok(Event::CharInput { chardev, data }) => {
                    if let Some(c) = machine.chardevs.get(&chardev) {
                        c.push_input(&data);
                    }
                }
                Ok(Event::Quit) | Err(_) => break,
            }
        }
        if machine.phase != Phase::Ready {
            qmp.flush(Duration::from_secs(1));
            return Ok(0);
        }
    } else if preconfig && machine.phase != Phase::Ready {
        // A script that did not end with x-exit-preconfig: finish as if it had.
        qmp.execute(&mut machine, "x-exit-preconfig", &serde_json::Map::new())
            .map_err(|e| anyhow!("-qmp-script: x-exit-preconfig: {e}"))?;
    } else if !preconfig {
        machine.finish(&boot)?;
        qmp.context().machine_ready();
    }
    if qmp.context().quit_requested {
        qmp.flush(Duration::from_secs(1));
        return Ok(0);
    }

    let exit = match &cfg.gdb {
        Some(id) => {
            let listen = gdb_listen_spec(&cfg, id)?;
            let shared = gdb::start(&listen, gdb_tx, gdb::MachineInfo::of(&machine))
                .with_context(|| format!("-gdb: could not listen on {listen:?}"))?;
            let mut on_resume = |q: &mut ServerHandle| {
                q.context().status = breadboard_qmp::RunStatus::Running;
            };
            let mut hooks = gdb::GdbHooks {
                inner: &mut qmp,
                gdb: Arc::clone(&shared),
                on_resume: &mut on_resume,
            };
            match (
                machine.run_with(&rx, cfg.no_reboot, &mut hooks),
                shared.guest_exit(),
            ) {
                // The guest powered off under the debugger; the loop quit once gdb was gone.
                (Exit::Quit, Some(code)) => Exit::Shutdown(code),
                (x, _) => x,
            }
        }
        None => {
            drop(gdb_tx);
            machine.run_with(&rx, cfg.no_reboot, &mut qmp)
        }
    };
    qmp.flush(Duration::from_secs(1));
    Ok(match exit {
        Exit::Shutdown(code) => code,
        Exit::Quit => 0,
        Exit::Deadlock => {
            eprintln!("breadboard: every hart is waiting and nothing can wake it; stopping");
            1
        }
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "vfio") {
        return ExitCode::from(vfio_cmd::run(args.get(1..).unwrap_or_default()));
    }
    let code = match run(&args) {
        Ok(code) => code,
        Err(e) => {
            chardev::restore_terminal();
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("breadboard: {}", chain.join(": "));
            1
        }
    };
    logging::flush();
    chardev::restore_terminal();
    ExitCode::from(u8::try_from(code & 0xff).unwrap_or(1))
}
