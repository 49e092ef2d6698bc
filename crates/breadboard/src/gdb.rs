//! The GDB remote stub (`-gdb tcp:HOST:PORT`, `-gdb unix:PATH`, `-s`, `-S`), on the `gdbstub`
//! crate.
//!
//! The socket and the protocol run on their own thread. The machine is not `Send`, so every
//! register or memory access is a closure posted to the main loop (`Event::Call`) whose result
//! comes back on a channel. While a debugger is attached the main loop does not run the harts
//! itself ([`GdbHooks::may_run`] says no); when gdb resumes, the stub posts a *run chunk*
//! closure that runs the harts for a while and posts itself again until something stops them
//! (breakpoint, watchpoint, single step done, Ctrl-C, guest exit). Other events (console
//! input, QMP, timers) are handled between chunks.
//!
//! Without breakpoints or watchpoints a chunk is one ordinary time slice. With any, harts run
//! one instruction at a time: before each instruction the pc is compared with the breakpoints
//! and the instruction is decoded (the shared decoder) to see whether it loads or stores
//! watched bytes; a watchpoint is reported before the access (gdb treats RISC-V watchpoints as
//! non-steppable: it steps over the access itself and compares the values).
//!
//! Each hart is a thread (`tid = hart index + 1`). Registers: x0-x31 and pc in the `g`
//! packet; FPRs (regnum 33-64), `fflags`/`frm`/`fcsr` (66-68) and the main CSRs (65 + CSR
//! number, gdb's numbering) through `p`/`P`, all described by our own target XML.
// Reads guest, file, socket or plugin input: no panicking shortcuts (SECURITY.md, issue 9).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::HashSet;
use std::marker::PhantomData;
use std::net::TcpListener;
use std::num::NonZeroUsize;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use breadboard_core::{ClockMode, MachineRequest};
use breadboard_platform::qmp_ops::{RunEvent, RunHooks};
use breadboard_platform::{Event, Machine};
use breadboard_riscv::insn::Format;
use breadboard_riscv::{RunExit, Xlen, csr, decode};
use gdbstub::arch::{Arch, RegId, Registers};
use gdbstub::common::Pid;
use gdbstub::common::{Signal, Tid};
use gdbstub::conn::ConnectionExt;
use gdbstub::stub::run_blocking::{BlockingEventLoop, Event as LoopEvent, WaitForStopReasonError};
use gdbstub::stub::{DisconnectReason, GdbStubBuilder, MultiThreadStopReason};
use gdbstub::target::ext::base::BaseOps;
use gdbstub::target::ext::base::multithread::{
    MultiThreadBase, MultiThreadResume, MultiThreadResumeOps, MultiThreadSchedulerLocking,
    MultiThreadSchedulerLockingOps, MultiThreadSingleStep, MultiThreadSingleStepOps,
};
use gdbstub::target::ext::base::single_register_access::{
    SingleRegisterAccess, SingleRegisterAccessOps,
};
use gdbstub::target::ext::breakpoints::{
    Breakpoints, BreakpointsOps, HwBreakpoint, HwBreakpointOps, HwWatchpoint, HwWatchpointOps,
    SwBreakpoint, SwBreakpointOps, WatchKind,
};
use gdbstub::target::ext::extended_mode::{
    Args, AttachKind, ExtendedMode, ExtendedModeOps, ShouldTerminate,
};
use gdbstub::target::ext::target_description_xml_override::{
    TargetDescriptionXmlOverride, TargetDescriptionXmlOverrideOps,
};
use gdbstub::target::{Target, TargetError, TargetResult};

/// Largest packet the stub accepts (advertised as `PacketSize`; longer packets are refused).
pub const PACKET_SIZE: usize = 4096;

/// Instructions per chunk when harts run one instruction at a time.
const STEP_CHUNK: usize = 20_000;

/// Where the stub listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GdbListen {
    /// TCP `host:port` (loopback unless the user named another address).
    Tcp(String, u16),
    /// A unix socket, created with mode 0600.
    Unix(PathBuf),
}

/// What a debugger wants a hart to do when the machine resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Stop,
    Continue,
    Step,
}

/// Why the harts stopped, reported to the gdb thread.
#[derive(Clone, Copy, Debug)]
enum Stop {
    Break {
        hart: usize,
        hw: bool,
    },
    Watch {
        hart: usize,
        kind: WatchKind,
        addr: u64,
    },
    Step {
        hart: usize,
    },
    Interrupt {
        hart: usize,
    },
    Exited(i32),
}

#[derive(Default)]
struct DebugState {
    sw: HashSet<u64>,
    hw: HashSet<u64>,
    watch: Vec<(u64, u64, WatchKind)>,
    actions: Vec<Action>,
    /// Harts that must execute one instruction before breakpoints apply again (resuming from a
    /// breakpoint address).
    fresh: Vec<bool>,
    /// Incremented at every resume and stop; a chunk of an older run does nothing.
    generation: u64,
    running: bool,
}

/// State shared by the gdb thread, the main loop's chunks and [`GdbHooks`].
pub struct GdbShared {
    state: Mutex<DebugState>,
    interrupt: AtomicBool,
    attached: AtomicBool,
    /// Set when gdb resumed the machine: a monitor's `-S` is over.
    resumed: AtomicBool,
    stop_tx: Mutex<Option<Sender<Stop>>>,
    /// The guest powered off while a debugger had it: the process exit code.
    exit_code: Mutex<Option<i32>>,
}

impl GdbShared {
    /// State for a stub with no debugger attached yet.
    pub(crate) fn new() -> Arc<GdbShared> {
        Arc::new(GdbShared {
            state: Mutex::new(DebugState::default()),
            interrupt: AtomicBool::new(false),
            attached: AtomicBool::new(false),
            resumed: AtomicBool::new(false),
            stop_tx: Mutex::new(None),
            exit_code: Mutex::new(None),
        })
    }

    /// The exit code of a guest that powered off under the debugger (the main loop then quits
    /// once the debugger is gone).
    pub fn guest_exit(&self) -> Option<i32> {
        *self.exit_code.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock(&self) -> MutexGuard<'_, DebugState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn report(&self, stop: Stop) {
        {
            let mut st = self.lock();
            st.running = false;
            st.generation = st.generation.wrapping_add(1);
            for a in &mut st.actions {
                *a = Action::Stop;
            }
        }
        if let Some(tx) = self
            .stop_tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            let _ = tx.send(stop);
        }
    }

    /// Whether a debugger is attached (it then owns the harts).
    pub fn attached(&self) -> bool {
        self.attached.load(Ordering::SeqCst)
    }

    /// Whether gdb has resumed the machine since the last call (ends `-S`).
    pub fn take_resumed(&self) -> bool {
        self.resumed.swap(false, Ordering::SeqCst)
    }
}

/// Run hooks that keep the harts stopped while a debugger is attached, and stopped under `-S`
/// until the monitor or gdb lets them go.
pub struct GdbHooks<'a, H: RunHooks> {
    /// The monitor's hooks.
    pub inner: &'a mut H,
    /// The stub.
    pub gdb: Arc<GdbShared>,
    /// Called when gdb resumed the machine (mark the monitor's run state `running`).
    pub on_resume: &'a mut dyn FnMut(&mut H),
}

impl<H: RunHooks> RunHooks for GdbHooks<'_, H> {
    fn may_run(&mut self) -> bool {
        if self.gdb.take_resumed() {
            (self.on_resume)(self.inner);
        }
        if self.gdb.attached() {
            return false;
        }
        self.inner.may_run()
    }

    fn event(&mut self, ev: RunEvent) {
        self.inner.event(ev);
    }
}

// ---------------------------------------------------------------------------------------------
// Architecture: RV32 and RV64 with our own register numbering.

/// A register as gdb numbers it in our target description.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RvReg {
    /// x0-x31 (0-31).
    X(u8),
    /// pc (32).
    Pc,
    /// f0-f31 (33-64).
    F(u8),
    /// A CSR (65 + number; fflags 66, frm 67, fcsr 68).
    Csr(u16),
}

const CSR_BASE: usize = 65;

fn reg_from_raw(id: usize) -> Option<RvReg> {
    Some(match id {
        0..=31 => RvReg::X(id as u8),
        32 => RvReg::Pc,
        33..=64 => RvReg::F((id - 33) as u8),
        _ => RvReg::Csr(
            u16::try_from(id.checked_sub(CSR_BASE)?)
                .ok()
                .filter(|&c| c < 4096)?,
        ),
    })
}

macro_rules! rv_arch {
    ($arch:ident, $regs:ident, $regid:ident, $u:ty, $bytes:expr, $doc:expr) => {
        #[doc = $doc]
        #[derive(Debug)]
        pub enum $arch {}

        /// The `g` packet: x0-x31, pc.
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct $regs {
            /// Integer registers.
            pub x: [$u; 32],
            /// Program counter.
            pub pc: $u,
        }

        impl Registers for $regs {
            type ProgramCounter = $u;

            fn pc(&self) -> $u {
                self.pc
            }

            fn gdb_serialize(&self, mut write_byte: impl FnMut(Option<u8>)) {
                for r in self.x.iter().chain(std::iter::once(&self.pc)) {
                    for b in r.to_le_bytes() {
                        write_byte(Some(b));
                    }
                }
            }

            fn gdb_deserialize(&mut self, bytes: &[u8]) -> Result<(), ()> {
                let mut it = bytes.chunks_exact($bytes);
                for i in 0..33 {
                    let Some(c) = it.next() else { break };
                    let mut a = [0u8; $bytes];
                    a.copy_from_slice(c);
                    let v = <$u>::from_le_bytes(a);
                    match self.x.get_mut(i) {
                        Some(r) => *r = v,
                        None => self.pc = v,
                    }
                }
                Ok(())
            }
        }

        /// Register ids with this width.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $regid(pub RvReg);

        impl RegId for $regid {
            fn from_raw_id(id: usize) -> Option<(Self, Option<NonZeroUsize>)> {
                let r = reg_from_raw(id)?;
                let size = match r {
                    RvReg::F(_) => 8,
                    RvReg::Csr(csr::FFLAGS | csr::FRM | csr::FCSR) => 4,
                    _ => $bytes,
                };
                Some(($regid(r), NonZeroUsize::new(size)))
            }
        }

        impl Arch for $arch {
            type Usize = $u;
            type Registers = $regs;
            type BreakpointKind = usize;
            type RegId = $regid;
        }

        impl RvArch for $arch {
            const BYTES: usize = $bytes;
            fn reg(id: $regid) -> RvReg {
                id.0
            }
            fn to_u64(v: $u) -> u64 {
                v as u64
            }
            fn from_u64(v: u64) -> $u {
                v as $u
            }
            fn set_regs(regs: &mut $regs, x: &[u64; 32], pc: u64) {
                for (d, s) in regs.x.iter_mut().zip(x.iter()) {
                    *d = *s as $u;
                }
                regs.pc = pc as $u;
            }
            fn get_regs(regs: &$regs) -> ([u64; 32], u64) {
                let mut x = [0u64; 32];
                for (d, s) in x.iter_mut().zip(regs.x.iter()) {
                    *d = *s as u64;
                }
                (x, regs.pc as u64)
            }
        }
    };
}

/// What the target needs of an architecture beyond gdbstub's `Arch`.
pub trait RvArch: Arch<BreakpointKind = usize> + 'static {
    /// XLEN in bytes.
    const BYTES: usize;
    /// The register an id names.
    fn reg(id: Self::RegId) -> RvReg;
    /// Widen an address.
    fn to_u64(v: Self::Usize) -> u64;
    /// Narrow an address.
    fn from_u64(v: u64) -> Self::Usize;
    /// Fill the `g` registers.
    fn set_regs(regs: &mut Self::Registers, x: &[u64; 32], pc: u64);
    /// Read the `G` registers.
    fn get_regs(regs: &Self::Registers) -> ([u64; 32], u64);
}

rv_arch!(Rv32, Rv32Regs, Rv32RegId, u32, 4, "RV32 harts.");
rv_arch!(Rv64, Rv64Regs, Rv64RegId, u64, 8, "RV64 harts.");

/// Integer register ABI names (gdb's riscv feature accepts these).
const XNAMES: [&str; 32] = [
    "zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "fp", "s1", "a0", "a1", "a2", "a3", "a4",
    "a5", "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4",
    "t5", "t6",
];

/// CSRs offered to gdb when the hart has them.
const MAIN_CSRS: &[u16] = &[
    csr::CYCLE,
    csr::TIME,
    csr::INSTRET,
    csr::SSTATUS,
    csr::SIE,
    csr::STVEC,
    csr::SCOUNTEREN,
    csr::SSCRATCH,
    csr::SEPC,
    csr::SCAUSE,
    csr::STVAL,
    csr::SIP,
    csr::SATP,
    csr::MVENDORID,
    csr::MARCHID,
    csr::MIMPID,
    csr::MHARTID,
    csr::MSTATUS,
    csr::MISA,
    csr::MEDELEG,
    csr::MIDELEG,
    csr::MIE,
    csr::MTVEC,
    csr::MCOUNTEREN,
    csr::MSCRATCH,
    csr::MEPC,
    csr::MCAUSE,
    csr::MTVAL,
    csr::MIP,
    csr::PMPCFG0,
    csr::PMPADDR0,
    csr::MCYCLE,
    csr::MINSTRET,
];

/// Static facts about the machine the stub describes to gdb.
#[derive(Clone, Debug)]
pub struct MachineInfo {
    /// Number of harts (threads).
    pub harts: usize,
    /// Register width.
    pub xlen: Xlen,
    /// FPRs exist.
    pub fpu: bool,
    /// CSRs described (those hart 0 implements).
    pub csrs: Vec<u16>,
}

impl MachineInfo {
    /// What `machine` looks like to a debugger.
    pub fn of(machine: &Machine) -> MachineInfo {
        let h0 = machine.harts.first();
        MachineInfo {
            harts: machine.harts.len(),
            xlen: h0.map_or(Xlen::Rv64, |h| h.xlen()),
            fpu: h0.is_some_and(|h| h.has_fpu()),
            csrs: MAIN_CSRS
                .iter()
                .copied()
                .filter(|&c| h0.is_some_and(|h| h.read_csr(c, 0).is_some()))
                .collect(),
        }
    }

    /// Our target description.
    pub fn target_xml(&self) -> String {
        let bits = self.xlen.bits();
        let mut s = String::from(
            "<?xml version=\"1.0\"?>\n<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n<target version=\"1.0\">\n",
        );
        s.push_str(&format!("<architecture>riscv:rv{bits}</architecture>\n"));
        s.push_str("<feature name=\"org.gnu.gdb.riscv.cpu\">\n");
        for (i, n) in XNAMES.iter().enumerate() {
            let ty = match i {
                1 => "code_ptr",
                2 | 8 => "data_ptr",
                _ => "int",
            };
            s.push_str(&format!(
                "  <reg name=\"{n}\" bitsize=\"{bits}\" type=\"{ty}\" regnum=\"{i}\"/>\n"
            ));
        }
        s.push_str(&format!(
            "  <reg name=\"pc\" bitsize=\"{bits}\" type=\"code_ptr\" regnum=\"32\"/>\n</feature>\n"
        ));
        if self.fpu {
            s.push_str("<feature name=\"org.gnu.gdb.riscv.fpu\">\n");
            s.push_str("  <union id=\"riscv_double\">\n    <field name=\"float\" type=\"ieee_single\"/>\n    <field name=\"double\" type=\"ieee_double\"/>\n  </union>\n");
            for i in 0..32 {
                s.push_str(&format!(
                    "  <reg name=\"f{i}\" bitsize=\"64\" type=\"riscv_double\" regnum=\"{}\"/>\n",
                    33 + i
                ));
            }
            for (n, c) in [
                ("fflags", csr::FFLAGS),
                ("frm", csr::FRM),
                ("fcsr", csr::FCSR),
            ] {
                s.push_str(&format!(
                    "  <reg name=\"{n}\" bitsize=\"32\" type=\"int\" regnum=\"{}\" group=\"float\"/>\n",
                    CSR_BASE + c as usize
                ));
            }
            s.push_str("</feature>\n");
        }
        s.push_str("<feature name=\"org.gnu.gdb.riscv.csr\">\n");
        for &c in &self.csrs {
            let Some(n) = csr::name(c).map(str::to_string).or_else(|| {
                let mut t = String::new();
                csr::write_name(&mut t, c).ok().map(|()| t)
            }) else {
                continue;
            };
            s.push_str(&format!(
                "  <reg name=\"{n}\" bitsize=\"{bits}\" type=\"int\" regnum=\"{}\" group=\"csr\"/>\n",
                CSR_BASE + c as usize
            ));
        }
        s.push_str("</feature>\n</target>\n");
        s
    }
}

// ---------------------------------------------------------------------------------------------
// The target: a proxy that runs every operation on the main loop.

/// Errors the target reports to gdbstub (fatal: the session ends).
pub type GdbError = &'static str;

struct GdbTarget<A: RvArch> {
    tx: Sender<Event>,
    shared: Arc<GdbShared>,
    stop_rx: Receiver<Stop>,
    info: MachineInfo,
    xml: String,
    /// Resume actions being collected (`vCont`).
    pending: Vec<Action>,
    /// Which of them gdb named explicitly.
    explicit: Vec<bool>,
    _arch: PhantomData<A>,
}

impl<A: RvArch> GdbTarget<A> {
    /// Runs `f` on the main loop and waits for its result.
    fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Machine) -> R + Send + 'static,
    ) -> Result<R, GdbError> {
        let (rtx, rrx) = mpsc::channel();
        self.tx
            .send(Event::Call(Box::new(move |m| {
                let _ = rtx.send(f(m));
            })))
            .map_err(|_| "the machine is gone")?;
        rrx.recv().map_err(|_| "the machine is gone")
    }

    fn tcall<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Machine) -> R + Send + 'static,
    ) -> Result<R, TargetError<GdbError>> {
        self.call(f).map_err(TargetError::Fatal)
    }

    fn hart(&self, tid: Tid) -> TargetResult<usize, Self> {
        let i = tid.get() - 1;
        if i < self.info.harts {
            Ok(i)
        } else {
            Err(TargetError::NonFatal)
        }
    }

    fn stop_reason(&self, stop: Stop) -> MultiThreadStopReason<A::Usize> {
        let tid = |h: usize| Tid::new(h + 1).unwrap_or(Tid::MIN);
        match stop {
            Stop::Break { hart, hw: false } => MultiThreadStopReason::SwBreak(tid(hart)),
            Stop::Break { hart, hw: true } => MultiThreadStopReason::HwBreak(tid(hart)),
            Stop::Watch { hart, kind, addr } => MultiThreadStopReason::Watch {
                tid: tid(hart),
                kind,
                addr: A::from_u64(addr),
            },
            Stop::Step { hart } => MultiThreadStopReason::SignalWithThread {
                tid: tid(hart),
                signal: Signal::SIGTRAP,
            },
            Stop::Interrupt { hart } => MultiThreadStopReason::SignalWithThread {
                tid: tid(hart),
                signal: Signal::SIGINT,
            },
            Stop::Exited(code) => MultiThreadStopReason::Exited(code as u8),
        }
    }
}

impl<A: RvArch> Target for GdbTarget<A> {
    type Arch = A;
    type Error = GdbError;

    fn base_ops(&mut self) -> BaseOps<'_, A, GdbError> {
        BaseOps::MultiThread(self)
    }

    fn support_breakpoints(&mut self) -> Option<BreakpointsOps<'_, Self>> {
        Some(self)
    }

    fn support_target_description_xml_override(
        &mut self,
    ) -> Option<TargetDescriptionXmlOverrideOps<'_, Self>> {
        Some(self)
    }

    fn support_extended_mode(&mut self) -> Option<ExtendedModeOps<'_, Self>> {
        Some(self)
    }
}

/// Extended mode only so that `kill` is answered (`OK`) before the emulator exits; there is
/// one "process", the machine, which cannot be re-run or attached to anew.
impl<A: RvArch> ExtendedMode for GdbTarget<A> {
    fn run(&mut self, _filename: Option<&[u8]>, _args: Args<'_, '_>) -> TargetResult<Pid, Self> {
        Err(TargetError::NonFatal)
    }

    fn attach(&mut self, _pid: Pid) -> TargetResult<(), Self> {
        Ok(())
    }

    fn query_if_attached(&mut self, _pid: Pid) -> TargetResult<AttachKind, Self> {
        Ok(AttachKind::Attach)
    }

    fn kill(&mut self, _pid: Option<Pid>) -> TargetResult<ShouldTerminate, Self> {
        Ok(ShouldTerminate::Yes)
    }

    fn restart(&mut self) -> Result<(), GdbError> {
        self.call(|m| {
            if let Err(e) = m.system_reset() {
                tracing::error!("system reset failed: {e}");
            }
        })
    }
}

impl<A: RvArch> TargetDescriptionXmlOverride for GdbTarget<A> {
    fn target_description_xml(
        &self,
        annex: &[u8],
        offset: u64,
        length: usize,
        buf: &mut [u8],
    ) -> TargetResult<usize, Self> {
        if annex != b"target.xml" {
            return Err(TargetError::NonFatal);
        }
        let data = self.xml.as_bytes();
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let end = start.saturating_add(length).min(data.len());
        let chunk = data.get(start..end).unwrap_or_default();
        let n = chunk.len().min(buf.len());
        if let (Some(d), Some(s)) = (buf.get_mut(..n), chunk.get(..n)) {
            d.copy_from_slice(s);
        }
        Ok(n)
    }
}

impl<A: RvArch> MultiThreadBase for GdbTarget<A> {
    fn read_registers(&mut self, regs: &mut A::Registers, tid: Tid) -> TargetResult<(), Self> {
        let h = self.hart(tid)?;
        let r = self.tcall(move |m| {
            m.harts.get(h).map(|hart| {
                let mut x = [0u64; 32];
                for (i, v) in x.iter_mut().enumerate() {
                    *v = hart.x(i);
                }
                (x, hart.pc())
            })
        })?;
        let (x, pc) = r.ok_or(TargetError::NonFatal)?;
        A::set_regs(regs, &x, pc);
        Ok(())
    }

    fn write_registers(&mut self, regs: &A::Registers, tid: Tid) -> TargetResult<(), Self> {
        let h = self.hart(tid)?;
        let (x, pc) = A::get_regs(regs);
        self.tcall(move |m| {
            if let Some(hart) = m.harts.get_mut(h) {
                for (i, v) in x.iter().enumerate().skip(1) {
                    hart.set_x(i, *v);
                }
                hart.set_pc(pc);
            }
        })?;
        Ok(())
    }

    fn support_single_register_access(&mut self) -> Option<SingleRegisterAccessOps<'_, Tid, Self>> {
        Some(self)
    }

    fn read_addrs(
        &mut self,
        start: A::Usize,
        data: &mut [u8],
        tid: Tid,
    ) -> TargetResult<usize, Self> {
        let h = self.hart(tid)?;
        let addr = A::to_u64(start);
        let len = data.len();
        let bytes = self.tcall(move |m| {
            m.with_hart_bus(h, |hart, bus| {
                let mut buf = vec![0u8; len];
                let n = hart.debug_read(bus, addr, &mut buf);
                buf.truncate(n);
                buf
            })
        })?;
        let bytes = bytes.unwrap_or_default();
        if bytes.is_empty() && len > 0 {
            return Err(TargetError::Errno(14));
        }
        let n = bytes.len().min(data.len());
        if let (Some(d), Some(s)) = (data.get_mut(..n), bytes.get(..n)) {
            d.copy_from_slice(s);
        }
        Ok(n)
    }

    fn write_addrs(&mut self, start: A::Usize, data: &[u8], tid: Tid) -> TargetResult<(), Self> {
        let h = self.hart(tid)?;
        let addr = A::to_u64(start);
        let buf = data.to_vec();
        let len = buf.len();
        let n =
            self.tcall(move |m| m.with_hart_bus(h, |hart, bus| hart.debug_write(bus, addr, &buf)))?;
        if n != Some(len) {
            return Err(TargetError::Errno(14));
        }
        Ok(())
    }

    fn list_active_threads(
        &mut self,
        thread_is_active: &mut dyn FnMut(Tid),
    ) -> Result<(), GdbError> {
        for i in 0..self.info.harts {
            if let Some(t) = Tid::new(i + 1) {
                thread_is_active(t);
            }
        }
        Ok(())
    }

    fn support_resume(&mut self) -> Option<MultiThreadResumeOps<'_, Self>> {
        Some(self)
    }
}

impl<A: RvArch> SingleRegisterAccess<Tid> for GdbTarget<A> {
    fn read_register(
        &mut self,
        tid: Tid,
        reg: A::RegId,
        buf: &mut [u8],
    ) -> TargetResult<usize, Self> {
        let h = self.hart(tid)?;
        let r = A::reg(reg);
        let bytes = A::BYTES;
        let v = self.tcall(move |m| {
            let mtime = m.debug_mtime();
            let hart = m.harts.get(h)?;
            match r {
                RvReg::X(i) => Some((hart.x(i as usize), bytes)),
                RvReg::Pc => Some((hart.pc(), bytes)),
                RvReg::F(i) if hart.has_fpu() => Some((hart.f(i as usize), 8)),
                RvReg::F(_) => None,
                RvReg::Csr(c @ (csr::FFLAGS | csr::FRM | csr::FCSR)) if hart.has_fpu() => {
                    let f = u64::from(hart.debug_fcsr());
                    Some((
                        match c {
                            csr::FFLAGS => f & 0x1f,
                            csr::FRM => (f >> 5) & 7,
                            _ => f,
                        },
                        4,
                    ))
                }
                RvReg::Csr(c) => hart.read_csr(c, mtime).map(|v| (v, bytes)),
            }
        })?;
        let Some((v, size)) = v else {
            return Err(TargetError::NonFatal);
        };
        let le = v.to_le_bytes();
        let n = size.min(buf.len());
        if let (Some(d), Some(s)) = (buf.get_mut(..n), le.get(..n)) {
            d.copy_from_slice(s);
        }
        Ok(n)
    }

    fn write_register(&mut self, tid: Tid, reg: A::RegId, val: &[u8]) -> TargetResult<(), Self> {
        let h = self.hart(tid)?;
        let r = A::reg(reg);
        let mut le = [0u8; 8];
        let n = val.len().min(8);
        if let (Some(d), Some(s)) = (le.get_mut(..n), val.get(..n)) {
            d.copy_from_slice(s);
        }
        let v = u64::from_le_bytes(le);
        let ok = self.tcall(move |m| {
            let Some(hart) = m.harts.get_mut(h) else {
                return false;
            };
            match r {
                RvReg::X(i) => {
                    hart.set_x(i as usize, v);
                    true
                }
                RvReg::Pc => {
                    hart.set_pc(v);
                    true
                }
                RvReg::F(i) if hart.has_fpu() => {
                    hart.set_f(i as usize, v);
                    true
                }
                RvReg::F(_) => false,
                RvReg::Csr(c @ (csr::FFLAGS | csr::FRM | csr::FCSR)) if hart.has_fpu() => {
                    let f = hart.debug_fcsr();
                    let nv = match c {
                        csr::FFLAGS => (f & !0x1f) | (v as u32 & 0x1f),
                        csr::FRM => (f & !0xe0) | ((v as u32 & 7) << 5),
                        _ => v as u32,
                    };
                    hart.set_debug_fcsr(nv);
                    true
                }
                RvReg::Csr(c) => hart.write_csr(c, v),
            }
        })?;
        if ok {
            Ok(())
        } else {
            Err(TargetError::NonFatal)
        }
    }
}

impl<A: RvArch> MultiThreadResume for GdbTarget<A> {
    fn resume(&mut self) -> Result<(), GdbError> {
        let mut actions = std::mem::take(&mut self.pending);
        if actions.len() != self.info.harts {
            // gdbstub's contract: threads without an explicit action continue.
            actions = vec![Action::Continue; self.info.harts];
        }
        if actions.iter().all(|a| *a == Action::Stop) {
            // Nothing may run (scheduler locking with only threads that do not exist, e.g.
            // `vCont;s:c` on two harts): report a stop at once instead of leaving gdb waiting
            // for one that never comes.
            self.shared.report(Stop::Interrupt { hart: 0 });
            return Ok(());
        }
        let generation = {
            let mut st = self.shared.lock();
            st.generation = st.generation.wrapping_add(1);
            st.fresh = vec![true; actions.len()];
            st.actions = actions;
            st.running = true;
            st.generation
        };
        self.shared.interrupt.store(false, Ordering::SeqCst);
        self.shared.resumed.store(true, Ordering::SeqCst);
        let _ = self.tx.send(Event::Call(Box::new(|m| m.resume_clock())));
        post_chunk(&self.tx, &self.shared, generation);
        Ok(())
    }

    fn clear_resume_actions(&mut self) -> Result<(), GdbError> {
        // gdbstub's contract: threads without an explicit action continue.
        self.pending = vec![Action::Continue; self.info.harts];
        self.explicit = vec![false; self.info.harts];
        Ok(())
    }

    fn set_resume_action_continue(
        &mut self,
        tid: Tid,
        _signal: Option<Signal>,
    ) -> Result<(), GdbError> {
        self.set_action(tid, Action::Continue);
        Ok(())
    }

    fn support_single_step(&mut self) -> Option<MultiThreadSingleStepOps<'_, Self>> {
        Some(self)
    }

    fn support_scheduler_locking(&mut self) -> Option<MultiThreadSchedulerLockingOps<'_, Self>> {
        Some(self)
    }
}

impl<A: RvArch> MultiThreadSchedulerLocking for GdbTarget<A> {
    fn set_resume_action_scheduler_lock(&mut self) -> Result<(), GdbError> {
        // Only the threads gdb named run.
        for (a, e) in self.pending.iter_mut().zip(self.explicit.iter()) {
            if !*e {
                *a = Action::Stop;
            }
        }
        Ok(())
    }
}

impl<A: RvArch> GdbTarget<A> {
    fn set_action(&mut self, tid: Tid, action: Action) {
        if self.pending.len() != self.info.harts {
            self.pending = vec![Action::Continue; self.info.harts];
            self.explicit = vec![false; self.info.harts];
        }
        let i = tid.get() - 1;
        if let Some(a) = self.pending.get_mut(i) {
            *a = action;
        }
        if let Some(e) = self.explicit.get_mut(i) {
            *e = true;
        }
    }
}

impl<A: RvArch> MultiThreadSingleStep for GdbTarget<A> {
    fn set_resume_action_step(
        &mut self,
        tid: Tid,
        _signal: Option<Signal>,
    ) -> Result<(), GdbError> {
        self.set_action(tid, Action::Step);
        Ok(())
    }
}

impl<A: RvArch> Breakpoints for GdbTarget<A> {
    fn support_sw_breakpoint(&mut self) -> Option<SwBreakpointOps<'_, Self>> {
        Some(self)
    }

    fn support_hw_breakpoint(&mut self) -> Option<HwBreakpointOps<'_, Self>> {
        Some(self)
    }

    fn support_hw_watchpoint(&mut self) -> Option<HwWatchpointOps<'_, Self>> {
        Some(self)
    }
}

impl<A: RvArch> SwBreakpoint for GdbTarget<A> {
    fn add_sw_breakpoint(&mut self, addr: A::Usize, _kind: usize) -> TargetResult<bool, Self> {
        Ok({
            self.shared.lock().sw.insert(A::to_u64(addr));
            true
        })
    }

    fn remove_sw_breakpoint(&mut self, addr: A::Usize, _kind: usize) -> TargetResult<bool, Self> {
        Ok(self.shared.lock().sw.remove(&A::to_u64(addr)))
    }
}

impl<A: RvArch> HwBreakpoint for GdbTarget<A> {
    fn add_hw_breakpoint(&mut self, addr: A::Usize, _kind: usize) -> TargetResult<bool, Self> {
        Ok({
            self.shared.lock().hw.insert(A::to_u64(addr));
            true
        })
    }

    fn remove_hw_breakpoint(&mut self, addr: A::Usize, _kind: usize) -> TargetResult<bool, Self> {
        Ok(self.shared.lock().hw.remove(&A::to_u64(addr)))
    }
}

impl<A: RvArch> HwWatchpoint for GdbTarget<A> {
    fn add_hw_watchpoint(
        &mut self,
        addr: A::Usize,
        len: A::Usize,
        kind: WatchKind,
    ) -> TargetResult<bool, Self> {
        self.shared
            .lock()
            .watch
            .push((A::to_u64(addr), A::to_u64(len).max(1), kind));
        Ok(true)
    }

    fn remove_hw_watchpoint(
        &mut self,
        addr: A::Usize,
        len: A::Usize,
        kind: WatchKind,
    ) -> TargetResult<bool, Self> {
        let key = (A::to_u64(addr), A::to_u64(len).max(1), kind);
        let mut st = self.shared.lock();
        match st.watch.iter().position(|w| *w == key) {
            Some(i) => {
                st.watch.remove(i);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Running under the debugger (main loop side).

/// Stops the harts for the debugger: virtual time stops too (as QEMU's vm clock does).
fn halt(m: &mut Machine, shared: &GdbShared, stop: Stop) {
    m.pause_clock();
    shared.report(stop);
}

fn post_chunk(tx: &Sender<Event>, shared: &Arc<GdbShared>, generation: u64) {
    let shared = Arc::clone(shared);
    let tx2 = tx.clone();
    let _ = tx.send(Event::Call(Box::new(move |m| {
        run_chunk(m, &shared, &tx2, generation)
    })));
}

/// The memory access instruction `bits` makes, if any: (address, size, is_store, is_load).
fn access_of(m: &Machine, hart: usize, bits: u32) -> Option<(u64, u64, bool, bool)> {
    let h = m.harts.get(hart)?;
    let insn = decode(bits, h.xlen());
    let (store, load) = match insn.op.format() {
        Format::Load | Format::FLoad | Format::Lr => (false, true),
        Format::Store | Format::FStore => (true, false),
        Format::Amo => (true, !insn.op.name().starts_with("sc.")),
        _ => return None,
    };
    let name = insn.op.name();
    let size = match name {
        n if n.starts_with("lb") || n == "sb" => 1,
        n if n.starts_with("lh") || n == "sh" => 2,
        n if n.starts_with("lw") || n == "sw" || n == "flw" || n == "fsw" || n.ends_with(".w") => 4,
        _ => 8,
    };
    let base = h.x(insn.rs1 as usize);
    let mut addr = base.wrapping_add(insn.imm as i64 as u64);
    if h.xlen() == Xlen::Rv32 {
        addr &= 0xffff_ffff;
    }
    Some((addr, size, store, load))
}

fn watch_hit(
    watch: &[(u64, u64, WatchKind)],
    addr: u64,
    size: u64,
    store: bool,
    load: bool,
) -> Option<(WatchKind, u64)> {
    watch.iter().find_map(|&(a, len, kind)| {
        let overlap = addr < a.wrapping_add(len) && a < addr.wrapping_add(size);
        let hit = overlap
            && match kind {
                WatchKind::Write => store,
                WatchKind::Read => load,
                WatchKind::ReadWrite => store || load,
            };
        hit.then_some((
            match kind {
                WatchKind::ReadWrite => WatchKind::ReadWrite,
                _ if store => WatchKind::Write,
                _ => WatchKind::Read,
            },
            a,
        ))
    })
}

/// What to do about a device's machine request while debugging: a shutdown ends the guest.
fn handle_request(m: &mut Machine, shared: &GdbShared, req: Option<MachineRequest>) -> bool {
    match req {
        Some(MachineRequest::Shutdown { code }) => {
            *shared.exit_code.lock().unwrap_or_else(|e| e.into_inner()) = Some(code);
            halt(m, shared, Stop::Exited(code));
            true
        }
        Some(MachineRequest::Reset) => {
            if let Err(e) = m.system_reset() {
                tracing::error!("system reset failed: {e}");
            }
            false
        }
        None => false,
    }
}

/// Nothing ran: let time pass to the next timer.
fn idle_wait(m: &mut Machine) {
    m.fire_timers();
    let deadline = m.timers.next_deadline();
    match m.clock.mode() {
        ClockMode::Icount { .. } => {
            if let Some(d) = deadline {
                m.clock.warp_to(d);
            } else {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        ClockMode::Host => {
            let wait = deadline
                .map(|d| Duration::from_nanos(d.saturating_sub(m.clock.now())))
                .unwrap_or(Duration::from_millis(1))
                .min(Duration::from_millis(1));
            std::thread::sleep(wait);
        }
    }
    m.fire_timers();
}

fn run_chunk(m: &mut Machine, shared: &Arc<GdbShared>, tx: &Sender<Event>, generation: u64) {
    let (actions, sw, hw, watch) = {
        let st = shared.lock();
        if !st.running || st.generation != generation {
            return;
        }
        (
            st.actions.clone(),
            st.sw.clone(),
            st.hw.clone(),
            st.watch.clone(),
        )
    };
    let first_running = actions.iter().position(|a| *a != Action::Stop).unwrap_or(0);
    if shared.interrupt.swap(false, Ordering::SeqCst) {
        halt(
            m,
            shared,
            Stop::Interrupt {
                hart: first_running,
            },
        );
        return;
    }
    if let Some(k) = actions.iter().position(|a| *a == Action::Step) {
        let before = m.harts.get(k).map(|h| (h.instret(), h.pc()));
        let hit = if watch.is_empty() {
            None
        } else {
            let bits = m
                .with_hart_bus(k, |h, bus| {
                    let mut b = [0u8; 4];
                    let pc = h.pc();
                    (h.debug_read(bus, pc, &mut b) >= 2).then(|| u32::from_le_bytes(b))
                })
                .flatten();
            bits.and_then(|b| access_of(m, k, b))
                .and_then(|(a, s, st, ld)| watch_hit(&watch, a, s, st, ld))
        };
        // gdb's RISC-V watchpoints are non-steppable: report before the access; gdb steps
        // over it with the watchpoint removed and compares the value itself.
        let fresh = shared.lock().fresh.get(k).copied().unwrap_or(false);
        if let Some((kind, addr)) = hit
            && !fresh
        {
            halt(
                m,
                shared,
                Stop::Watch {
                    hart: k,
                    kind,
                    addr,
                },
            );
            return;
        }
        let (exit, req) = m.run_hart(k, 1);
        if handle_request(m, shared, req) {
            return;
        }
        let after = m.harts.get(k).map(|h| (h.instret(), h.pc()));
        if exit == RunExit::Wfi && before == after {
            idle_wait(m);
        }
        halt(m, shared, Stop::Step { hart: k });
        return;
    }
    let running: Vec<usize> = actions
        .iter()
        .enumerate()
        .filter(|(_, a)| **a == Action::Continue)
        .map(|(i, _)| i)
        .collect();
    if running.is_empty() {
        return;
    }
    if sw.is_empty() && hw.is_empty() && watch.is_empty() && running.len() == m.harts.len() {
        let (idle, req) = m.run_slice(breadboard_platform::run::SLICE);
        if handle_request(m, shared, req) {
            return;
        }
        m.pump_chardevs();
        m.fire_timers();
        if idle {
            idle_wait(m);
        }
    } else {
        let mut fresh = shared.lock().fresh.clone();
        for _ in 0..STEP_CHUNK {
            let mut progressed = false;
            for &i in &running {
                let Some((pc, instret)) = m.harts.get(i).map(|h| (h.pc(), h.instret())) else {
                    continue;
                };
                let is_fresh = fresh.get(i).copied().unwrap_or(false);
                if !is_fresh && (sw.contains(&pc) || hw.contains(&pc)) {
                    halt(
                        m,
                        shared,
                        Stop::Break {
                            hart: i,
                            hw: !sw.contains(&pc),
                        },
                    );
                    return;
                }
                let hit = if watch.is_empty() {
                    None
                } else {
                    let bits = m
                        .with_hart_bus(i, |h, bus| {
                            let mut b = [0u8; 4];
                            (h.debug_read(bus, pc, &mut b) >= 2).then(|| u32::from_le_bytes(b))
                        })
                        .flatten();
                    bits.and_then(|b| access_of(m, i, b))
                        .and_then(|(a, s, st, ld)| watch_hit(&watch, a, s, st, ld))
                };
                if !is_fresh && let Some((kind, addr)) = hit {
                    // Before the access (see the single-step case).
                    halt(
                        m,
                        shared,
                        Stop::Watch {
                            hart: i,
                            kind,
                            addr,
                        },
                    );
                    return;
                }
                let (_exit, req) = m.run_hart(i, 1);
                if handle_request(m, shared, req) {
                    return;
                }
                let retired = m.harts.get(i).is_some_and(|h| h.instret() != instret);
                let moved = m.harts.get(i).is_some_and(|h| h.pc() != pc);
                if retired || moved {
                    progressed = true;
                    if let Some(f) = fresh.get_mut(i) {
                        *f = false;
                    }
                }
            }
            m.fire_timers();
            if !progressed {
                idle_wait(m);
                break;
            }
        }
        m.pump_chardevs();
        shared.lock().fresh = fresh;
    }
    if shared.interrupt.swap(false, Ordering::SeqCst) {
        halt(
            m,
            shared,
            Stop::Interrupt {
                hart: first_running,
            },
        );
        return;
    }
    post_chunk(tx, shared, generation);
}

// ---------------------------------------------------------------------------------------------
// The connection side.

/// A debugger connection (a socket; the gdb fuzz target gives an in-memory one).
pub(crate) type Conn = Box<dyn ConnectionExt<Error = std::io::Error>>;

struct EventLoop<A>(PhantomData<A>);

impl<A: RvArch> BlockingEventLoop for EventLoop<A> {
    type Target = GdbTarget<A>;
    type Connection = Conn;
    type StopReason = MultiThreadStopReason<A::Usize>;

    fn wait_for_stop_reason(
        target: &mut GdbTarget<A>,
        conn: &mut Conn,
    ) -> Result<LoopEvent<Self::StopReason>, WaitForStopReasonError<GdbError, std::io::Error>> {
        // A stop that is already there first, then bytes that are already there, and only then
        // a short sleep on the stop channel: waiting before every byte made a debugger that
        // sends while the harts run (a pipelining client, a fuzzer) pay 5 ms a byte.
        let mut wait = Duration::ZERO;
        loop {
            match target.stop_rx.recv_timeout(wait) {
                Ok(stop) => return Ok(LoopEvent::TargetStopped(target.stop_reason(stop))),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(WaitForStopReasonError::Target("the machine is gone"));
                }
            }
            if conn
                .peek()
                .map_err(WaitForStopReasonError::Connection)?
                .is_some()
            {
                let b = conn.read().map_err(WaitForStopReasonError::Connection)?;
                return Ok(LoopEvent::IncomingData(b));
            }
            wait = Duration::from_millis(5);
        }
    }

    fn on_interrupt(target: &mut GdbTarget<A>) -> Result<Option<Self::StopReason>, GdbError> {
        // A Ctrl-C while the harts are stopped has nothing to interrupt (gdbstub passes it on
        // in the idle state too): ignore it rather than wait for a stop that never comes. A
        // stop that raced with it is already queued and reported by `wait_for_stop_reason`.
        if !target.shared.lock().running {
            return Ok(None);
        }
        target.shared.interrupt.store(true, Ordering::SeqCst);
        let r = match target.stop_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(stop) => Ok(Some(target.stop_reason(stop))),
            Err(_) => Err("the machine did not stop"),
        };
        // Stopped for another reason first: the request must not stop the next run at once.
        target.shared.interrupt.store(false, Ordering::SeqCst);
        r
    }
}

fn serve<A: RvArch>(conn: Conn, target: &mut GdbTarget<A>) -> Result<DisconnectReason, String> {
    // A borrowed buffer: gdbstub grows an owned one, which would not enforce the size.
    let mut buf = vec![0u8; PACKET_SIZE];
    let stub = GdbStubBuilder::new(conn)
        .with_packet_buffer(&mut buf)
        .build()
        .map_err(|e| e.to_string())?;
    stub.run_blocking::<EventLoop<A>>(target)
        .map_err(|e| e.to_string())
}

/// One debugger session on `conn`. Returns whether the machine must quit (gdb killed it or the
/// guest exited under the debugger).
pub(crate) fn session(
    conn: Conn,
    tx: &Sender<Event>,
    shared: &Arc<GdbShared>,
    info: &MachineInfo,
) -> bool {
    let (stop_tx, stop_rx) = mpsc::channel();
    *shared.stop_tx.lock().unwrap_or_else(|e| e.into_inner()) = Some(stop_tx);
    {
        let mut st = shared.lock();
        *st = DebugState {
            actions: vec![Action::Stop; info.harts],
            fresh: vec![false; info.harts],
            generation: st.generation.wrapping_add(1),
            ..DebugState::default()
        };
    }
    shared.attached.store(true, Ordering::SeqCst);
    // Wake the main loop so it notices that the debugger has the harts now; time stops.
    let _ = tx.send(Event::Call(Box::new(|m| m.pause_clock())));
    let xml = info.target_xml();
    let result = match info.xlen {
        Xlen::Rv32 => serve::<Rv32>(
            conn,
            &mut GdbTarget {
                tx: tx.clone(),
                shared: Arc::clone(shared),
                stop_rx,
                info: info.clone(),
                xml,
                pending: Vec::new(),
                explicit: Vec::new(),
                _arch: PhantomData,
            },
        ),
        Xlen::Rv64 => serve::<Rv64>(
            conn,
            &mut GdbTarget {
                tx: tx.clone(),
                shared: Arc::clone(shared),
                stop_rx,
                info: info.clone(),
                xml,
                pending: Vec::new(),
                explicit: Vec::new(),
                _arch: PhantomData,
            },
        ),
    };
    {
        let mut st = shared.lock();
        st.running = false;
        st.generation = st.generation.wrapping_add(1);
        st.sw.clear();
        st.hw.clear();
        st.watch.clear();
    }
    *shared.stop_tx.lock().unwrap_or_else(|e| e.into_inner()) = None;
    let kill = match &result {
        Ok(DisconnectReason::Kill) => true,
        Ok(r) => {
            tracing::info!(target: "gdb", "gdb session ended: {r:?}");
            false
        }
        Err(e) => {
            eprintln!("breadboard: gdb: {e}");
            false
        }
    };
    // On detach the guest runs on (QEMU's behaviour); a connection that broke leaves the run
    // state as it was (still stopped under `-S` if gdb never resumed).
    if matches!(result, Ok(DisconnectReason::Disconnect)) {
        shared.resumed.store(true, Ordering::SeqCst);
    }
    shared.attached.store(false, Ordering::SeqCst);
    let kill = kill || shared.guest_exit().is_some();
    if kill {
        let _ = tx.send(Event::Quit);
    } else {
        let _ = tx.send(Event::Call(Box::new(|m| m.resume_clock())));
    }
    kill
}

/// Opens the listening socket and serves debuggers on a thread of their own, one at a time.
pub fn start(
    listen: &GdbListen,
    tx: Sender<Event>,
    info: MachineInfo,
) -> std::io::Result<Arc<GdbShared>> {
    let shared = GdbShared::new();
    enum L {
        Tcp(TcpListener),
        Unix(UnixListener),
    }
    let listener = match listen {
        GdbListen::Tcp(host, port) => L::Tcp(TcpListener::bind((host.as_str(), *port))?),
        GdbListen::Unix(path) => {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::remove_file(path);
            let l = UnixListener::bind(path)?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
            L::Unix(l)
        }
    };
    let sh = Arc::clone(&shared);
    std::thread::Builder::new()
        .name("gdb".into())
        .spawn(move || {
            loop {
                let conn: Conn = match &listener {
                    L::Tcp(l) => match l.accept() {
                        Ok((s, _)) => Box::new(s) as Box<dyn ConnectionExt<Error = std::io::Error>>,
                        Err(_) => break,
                    },
                    L::Unix(l) => match l.accept() {
                        Ok((s, _)) => Box::new(s),
                        Err(_) => break,
                    },
                };
                if session(conn, &tx, &sh, &info) {
                    break;
                }
            }
        })?;
    Ok(shared)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_register_numbering_follows_gdb() {
        assert_eq!(reg_from_raw(0), Some(RvReg::X(0)));
        assert_eq!(reg_from_raw(32), Some(RvReg::Pc));
        assert_eq!(reg_from_raw(33), Some(RvReg::F(0)));
        assert_eq!(reg_from_raw(66), Some(RvReg::Csr(csr::FFLAGS)));
        assert_eq!(reg_from_raw(65 + 0x300), Some(RvReg::Csr(csr::MSTATUS)));
        assert_eq!(reg_from_raw(65 + 4096), None);
    }

    #[test]
    fn test_target_xml_lists_fprs_and_csrs() {
        let info = MachineInfo {
            harts: 2,
            xlen: Xlen::Rv64,
            fpu: true,
            csrs: vec![csr::MSTATUS, csr::MEPC],
        };
        let x = info.target_xml();
        assert!(x.contains("riscv:rv64"));
        assert!(
            x.contains("<reg name=\"f31\" bitsize=\"64\" type=\"riscv_double\" regnum=\"64\"/>")
        );
        assert!(x.contains("name=\"mstatus\" bitsize=\"64\" type=\"int\" regnum=\"833\""));
        assert!(x.contains("name=\"fcsr\" bitsize=\"32\""));
    }

    /// An in-memory connection: reads `input`, records the stub's output, fails reads at the
    /// end (a closed socket).
    struct MemConn {
        input: Vec<u8>,
        pos: usize,
        out: Arc<Mutex<Vec<u8>>>,
    }

    impl gdbstub::conn::Connection for MemConn {
        type Error = std::io::Error;
        fn write(&mut self, byte: u8) -> Result<(), std::io::Error> {
            self.out.lock().unwrap().push(byte);
            Ok(())
        }
        fn flush(&mut self) -> Result<(), std::io::Error> {
            Ok(())
        }
    }

    impl ConnectionExt for MemConn {
        fn read(&mut self) -> Result<u8, std::io::Error> {
            let b = self.peek()?.unwrap();
            self.pos += 1;
            Ok(b)
        }
        fn peek(&mut self) -> Result<Option<u8>, std::io::Error> {
            match self.input.get(self.pos) {
                Some(b) => Ok(Some(*b)),
                None => Err(std::io::ErrorKind::UnexpectedEof.into()),
            }
        }
    }

    fn packet(payload: &str) -> Vec<u8> {
        let cs = payload.bytes().fold(0u8, |a, b| a.wrapping_add(b));
        format!("${payload}#{cs:02x}").into_bytes()
    }

    /// Runs one debugger session fed `input` against a small `virt` machine driven as the main
    /// loop does; returns what the stub wrote.
    fn run_session(input: Vec<u8>) -> String {
        use std::rc::Rc;
        let mut reg = breadboard_core::TypeRegistry::new();
        breadboard_devices::register_builtin(&mut reg);
        let opts = breadboard_platform::MachineOptions {
            machine: "virt".into(),
            ram_size: Some(8 << 20),
            icount_shift: Some(0),
            ..Default::default()
        };
        let mut m = Machine::create(
            &opts,
            reg,
            Rc::new(breadboard_core::ChardevRegistry::default()),
            Rc::new(breadboard_core::DriveRegistry::default()),
        )
        .unwrap();
        m.finish(&breadboard_platform::BootOptions {
            firmware: breadboard_platform::Firmware::None,
            kernel: None,
            initrd: None,
            append: None,
            dtb: None,
        })
        .unwrap();
        let info = MachineInfo::of(&m);
        let shared = GdbShared::new();
        let out = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let t = {
            let (tx, shared, out) = (tx.clone(), Arc::clone(&shared), Arc::clone(&out));
            std::thread::spawn(move || {
                let conn: Conn = Box::new(MemConn { input, pos: 0, out });
                session(conn, &tx, &shared, &info)
            })
        };
        drop(tx);
        while let Ok(ev) = rx.recv() {
            if let Event::Call(f) = ev {
                f(&mut m);
            }
        }
        t.join().unwrap();
        assert!(!shared.attached());
        String::from_utf8_lossy(&out.lock().unwrap()).into_owned()
    }

    /// Found by the `gdb_packets` fuzz target: a Ctrl-C (0x03) while the harts are stopped made
    /// the stub wait 10 s for a stop that never came, then end the session with a fatal error.
    #[test]
    fn test_gdb_packets_ctrl_c_while_stopped() {
        let mut input = packet("QStartNoAckMode");
        input.push(0x03);
        input.extend(packet("p20"));
        let out = run_session(input);
        // The pc (register 32) of a machine without firmware: the reset vector 0x1000, as
        // 64-bit little-endian hex `0010` and twelve `0`s run-length encoded (`*` + 29 + 12).
        assert!(out.contains("$0010*)#"), "no answer to `p20`: {out:?}");
    }

    /// Found by the `gdb_packets` fuzz target: `vCont;s:c` (step thread 12 only, on a
    /// two-hart machine) let nothing run, so no stop ever came; gdb waited for ever, and a
    /// Ctrl-C waited 10 s and then ended the session.
    #[test]
    fn test_gdb_packets_vcont_on_missing_thread_stops_at_once() {
        let mut input = packet("QStartNoAckMode");
        input.extend(packet("vCont;s:c"));
        input.extend(packet("p20"));
        let out = run_session(input);
        // A stop reply for the resume (SIGINT = 02), then the answer to `p20`.
        let stop = out.find("$T02").expect("a stop reply");
        let reg = out.find("$0010*)#").expect("an answer to `p20`");
        assert!(stop < reg, "{out:?}");
    }

    /// Found by the `gdb_packets` fuzz target (inputs of 14-33 s): packets that arrive while the
    /// harts run waited 5 ms a byte, because the stub slept on the stop channel before looking
    /// at the connection. Every packet sent after a `c` must still be answered, in order.
    #[test]
    fn test_gdb_packets_sent_while_running_are_all_answered() {
        let mut input = packet("QStartNoAckMode");
        input.extend(packet("c"));
        for i in 0..200 {
            input.extend(packet(&format!("qbreadboard{i}")));
        }
        let out = run_session(input);
        // gdbstub answers packets it does not know with an empty reply, one per packet.
        assert_eq!(out.matches("$#00").count(), 200, "{out:?}");
    }

    #[test]
    fn test_watch_hit_kinds() {
        let w = [(0x100, 4, WatchKind::Write)];
        assert_eq!(
            watch_hit(&w, 0x102, 1, true, false),
            Some((WatchKind::Write, 0x100))
        );
        assert_eq!(watch_hit(&w, 0x102, 1, false, true), None);
        assert_eq!(watch_hit(&w, 0x104, 4, true, false), None);
    }
}
