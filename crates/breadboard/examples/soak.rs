//! Random guest code soak (issue 9): for each seed, a `virt` machine with every virtio device
//! type, a second UART and a goldfish RTC runs random 16/32-bit instructions (random bytes plus
//! biased valid encodings and known-illegal ones) in M, S or U mode (S and U with or without
//! Sv39), on the real main loop (`Machine::run_with`) with a QMP server on a unix socket.
//! A controller thread, every 20 ms, posts a closure to the main loop that checks the trap log
//! and re-arms the hart (trap vector, PMP, satp, mode, a random entry point and registers), and
//! sends `query-status` over QMP, which must be answered within the bound.
//!
//! The guest's M-mode trap handler (hand-encoded below) logs `mcause`, `mtval`, `mepc` and
//! `mstatus` of every trap into a ring in a PMP-protected page and returns to the next word of
//! the code region. The checker compares logged traps at instructions whose outcome the ISA
//! fixes against the spec: a 32-bit instruction with a reserved/custom major opcode, the
//! all-zero 16-bit instruction, and (from S or U mode) `mret` and reading `mstatus` must raise
//! an illegal-instruction exception (mcause 2) with the instruction's bits in `mtval`.
//!
//! Usage: `cargo run --release -p breadboard --example soak -- [SEEDS] [SECONDS] [FIRST_SEED]`
//! (default 64 seeds x 10 s). Prints one line per seed and a summary; exits 1 on a host panic,
//! a trap that contradicts the ISA, or a QMP answer later than 1 s.

#![allow(dead_code)]
// A test tool: every index is into a buffer of a size fixed here (the image, the log, the
// handler), and a panic is caught per seed and reported as a failure.
#![allow(clippy::indexing_slicing)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use breadboard_core::{BlockBackend, ChardevRegistry, DriveRegistry, TypeRegistry};
use breadboard_platform::{
    BootOptions, DeviceOption, Event, Exit, Firmware, Image, Machine, MachineOptions,
};
use breadboard_qmp::{ListenSpec, QmpContext, ServerHandle};
use breadboard_riscv::{Priv, csr};

/// Offsets in the guest image (loaded as a raw `-kernel` at the start of RAM).
const LOG_OFF: u64 = 0x1000;
const HANDLER_OFF: u64 = 0x3000;
const PT_OFF: u64 = 0x4000;
/// The first 64 KiB (log, handler, page table) are PMP-protected from S and U.
const PROTECTED: u64 = 0x1_0000;
const CODE_OFF: u64 = 0x10_0000;
const CODE_SIZE: u64 = 0x4_0000;
const LOG_ENTRIES: u64 = 64;
const ENTRY_BYTES: u64 = 64;
const ENTRIES_OFF: u64 = 64;

/// Major opcodes (bits 6:0) that RV64GC leaves reserved or custom: never implemented here.
const RESERVED_OPCODES: [u32; 6] = [0x0b, 0x2b, 0x5b, 0x6b, 0x77, 0x7b];
/// Major opcodes RV64GC defines (for biased valid encodings).
const VALID_OPCODES: [u32; 20] = [
    0x03, 0x07, 0x0f, 0x13, 0x17, 0x1b, 0x23, 0x27, 0x2f, 0x33, 0x37, 0x3b, 0x43, 0x47, 0x4b, 0x4f,
    0x53, 0x63, 0x67, 0x73,
];
const MRET: u32 = 0x3020_0073;

/// Where random register values point: RAM, and every device of `virt` and the platform bus.
const INTERESTING: [u64; 10] = [
    0x8000_0000,
    0x8010_0000,
    0x1000_0000,
    0x1000_1000,
    0x1000_8000,
    0x0200_0000,
    0x0c00_0000,
    0x0010_1000,
    0x0400_0000,
    0x0000_1000,
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

// ---- a few encoders (RV64I / Zicsr) for the handler -------------------------------------------

fn i_type(imm: i32, rs1: u32, f3: u32, rd: u32, op: u32) -> u32 {
    ((imm as u32 & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op
}
fn s_type(imm: i32, rs2: u32, rs1: u32, f3: u32, op: u32) -> u32 {
    let imm = imm as u32 & 0xfff;
    ((imm >> 5) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((imm & 0x1f) << 7) | op
}
fn r_type(f7: u32, rs2: u32, rs1: u32, f3: u32, rd: u32) -> u32 {
    (f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | 0x33
}
fn ld(rd: u32, off: i32, rs1: u32) -> u32 {
    i_type(off, rs1, 3, rd, 0x03)
}
fn sd(rs2: u32, off: i32, rs1: u32) -> u32 {
    s_type(off, rs2, rs1, 3, 0x23)
}
fn csrrw(rd: u32, csr: u16, rs1: u32) -> u32 {
    i_type(i32::from(csr), rs1, 1, rd, 0x73)
}
fn csrr(rd: u32, csr: u16) -> u32 {
    i_type(i32::from(csr), 0, 2, rd, 0x73)
}
fn csrs(csr: u16, rs1: u32) -> u32 {
    i_type(i32::from(csr), rs1, 2, 0, 0x73)
}
fn csrc(csr: u16, rs1: u32) -> u32 {
    i_type(i32::from(csr), rs1, 3, 0, 0x73)
}

const T0: u32 = 5;
const T1: u32 = 6;
const T2: u32 = 7;
const T3: u32 = 28;

/// The M-mode trap handler: log the trap, go on at the next word of the code region in the
/// seed's mode. `mscratch` holds the log's address.
fn handler() -> Vec<u32> {
    vec![
        csrrw(T0, csr::MSCRATCH, T0),
        sd(T1, 0, T0),
        sd(T2, 8, T0),
        sd(T3, 56, T0),
        ld(T1, 16, T0),
        i_type((LOG_ENTRIES - 1) as i32, T1, 7, T1, 0x13), // andi t1, t1, LOG_ENTRIES - 1
        i_type(6, T1, 1, T1, 0x13),                        // slli t1, t1, 6
        r_type(0, T0, T1, 0, T1),                          // add t1, t1, t0
        i_type(ENTRIES_OFF as i32, T1, 0, T1, 0x13),       // addi t1, t1, 64
        i_type(0, 0, 0, T3, 0x13),                         // li t3, 0
        csrr(T2, csr::MCAUSE),
        sd(T2, 0, T1),
        r_type(0, T2, T3, 4, T3), // xor t3, t3, t2
        csrr(T2, csr::MTVAL),
        sd(T2, 8, T1),
        r_type(0, T2, T3, 4, T3),
        csrr(T2, csr::MEPC),
        sd(T2, 16, T1),
        r_type(0, T2, T3, 4, T3),
        csrr(T2, csr::MSTATUS),
        sd(T2, 24, T1),
        r_type(0, T2, T3, 4, T3),
        csrr(T2, csr::SATP),
        sd(T2, 32, T1),
        r_type(0, T2, T3, 4, T3),
        sd(T3, 40, T1),
        // The entry is complete: count it (the checker reads only counted entries).
        ld(T1, 16, T0),
        i_type(1, T1, 0, T1, 0x13), // addi t1, t1, 1
        sd(T1, 16, T0),
        // mepc = code + ((mepc + 4 - code) & mask)
        csrr(T2, csr::MEPC),
        i_type(4, T2, 0, T2, 0x13),
        ld(T1, 24, T0),
        r_type(0x20, T1, T2, 0, T2), // sub t2, t2, t1
        ld(T1, 32, T0),
        r_type(0, T1, T2, 7, T2), // and t2, t2, t1
        ld(T1, 24, T0),
        r_type(0, T1, T2, 0, T2), // add t2, t2, t1
        csrrw(0, csr::MEPC, T2),
        // mstatus.MPP = the seed's mode
        ld(T1, 48, T0),
        csrc(csr::MSTATUS, T1),
        ld(T1, 40, T0),
        csrs(csr::MSTATUS, T1),
        ld(T3, 56, T0),
        ld(T2, 8, T0),
        ld(T1, 0, T0),
        csrrw(T0, csr::MSCRATCH, T0),
        MRET,
    ]
}

fn handler_bytes() -> Vec<u8> {
    handler().iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// What the ISA says a code word must do, when it says so unconditionally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// Illegal instruction in every mode, with these bits in mtval.
    Illegal(u64),
    /// Illegal below M-mode, with these bits in mtval.
    IllegalBelowM(u64),
}

fn expectation(code: &[u8], off: usize) -> Option<Expect> {
    let b = code.get(off..off + 4)?;
    let bits = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    if bits & 0xffff == 0 {
        return Some(Expect::Illegal(0));
    }
    if bits & 3 != 3 {
        return None;
    }
    if RESERVED_OPCODES.contains(&(bits & 0x7f)) {
        return Some(Expect::Illegal(u64::from(bits)));
    }
    // mret, and csrrs rd, mstatus, x0 (a read of an M-mode CSR).
    let is_mstatus_read = bits & 0xffff_f07f == (0x300 << 20) | (2 << 12) | 0x73;
    if bits == MRET || is_mstatus_read {
        return Some(Expect::IllegalBelowM(u64::from(bits)));
    }
    None
}

/// Random code: raw bytes, compressed halfwords, biased valid encodings, known-illegal ones.
fn random_code(rng: &mut Rng, mode: Priv) -> Vec<u8> {
    let mut out = Vec::with_capacity(CODE_SIZE as usize);
    while (out.len() as u64) < CODE_SIZE {
        let r = rng.below(100);
        let word: u32 = if r < 25 {
            rng.next() as u32
        } else if r < 45 {
            // Two compressed instructions (quadrants 0-2).
            let a = (rng.next() as u32 & 0xffff) & !0x3 | (rng.below(3) as u32);
            let b = (rng.next() as u32 & 0xffff) & !0x3 | (rng.below(3) as u32);
            a | (b << 16)
        } else if r < 85 {
            let op = VALID_OPCODES[rng.below(VALID_OPCODES.len() as u64) as usize];
            (rng.next() as u32 & !0x7f) | op
        } else if r < 91 {
            let op = RESERVED_OPCODES[rng.below(RESERVED_OPCODES.len() as u64) as usize];
            (rng.next() as u32 & !0x7f) | op
        } else if r < 94 {
            // The all-zero halfword, then a random one.
            rng.next() as u32 & 0xffff_0000
        } else if r < 97 && mode != Priv::Machine {
            if rng.below(2) == 0 {
                MRET
            } else {
                (0x300 << 20) | (2 << 12) | ((rng.below(32) as u32) << 7) | 0x73
            }
        } else {
            // System: ecall, ebreak, wfi, sret, fences, random CSR accesses.
            let sys = [
                0x0000_0073,
                0x0010_0073,
                0x1050_0073,
                0x1020_0073,
                0x0000_100f,
            ];
            if rng.below(2) == 0 {
                sys[rng.below(sys.len() as u64) as usize]
            } else {
                (rng.next() as u32 & !0x7f) | 0x73
            }
        };
        out.extend_from_slice(&word.to_le_bytes());
    }
    out
}

/// One seed's plan.
#[derive(Clone, Copy, Debug)]
struct Plan {
    seed: u64,
    mode: Priv,
    sv39: bool,
}

impl Plan {
    fn of(seed: u64) -> Plan {
        let mode = match seed % 3 {
            0 => Priv::Machine,
            1 => Priv::Supervisor,
            _ => Priv::User,
        };
        Plan {
            seed,
            mode,
            sv39: mode != Priv::Machine && (seed / 3) % 2 == 1,
        }
    }
    fn mode_name(&self) -> &'static str {
        match (self.mode, self.sv39) {
            (Priv::Machine, _) => "M",
            (Priv::Supervisor, false) => "S",
            (Priv::Supervisor, true) => "S+sv39",
            (Priv::User, false) => "U",
            (Priv::User, true) => "U+sv39",
        }
    }
}

/// Per-seed results.
#[derive(Clone, Debug, Default)]
pub struct SeedReport {
    pub seed: u64,
    pub mode: String,
    pub instret: u64,
    pub traps: u64,
    pub illegal_traps: u64,
    pub checked: u64,
    pub mismatches: Vec<String>,
    pub qmp_sent: u64,
    pub qmp_answered: u64,
    pub qmp_max: Duration,
    pub qmp_late: u64,
    pub guest_exits: u64,
    pub panic: Option<String>,
}

impl SeedReport {
    pub fn ok(&self, bound: Duration) -> bool {
        self.panic.is_none()
            && self.mismatches.is_empty()
            && self.qmp_answered == self.qmp_sent
            && self.qmp_sent > 0
            && self.qmp_max <= bound
    }
}

/// Shared between the main loop's check closures and the report.
#[derive(Default)]
struct Checks {
    last_count: u64,
    traps: u64,
    illegal: u64,
    checked: u64,
    mismatches: Vec<String>,
}

struct Layout {
    base: u64,
    code: Vec<u8>,
    log_init: Vec<u8>,
}

fn image(plan: &Plan, base: u64, rng: &mut Rng) -> (Vec<u8>, Layout) {
    let mut img = vec![0u8; (CODE_OFF + CODE_SIZE) as usize];
    // At the start (where a guest reset lands): jump to the code region.
    let j = {
        let off = CODE_OFF as u32;
        ((off >> 20 & 1) << 31)
            | ((off >> 1 & 0x3ff) << 21)
            | ((off >> 11 & 1) << 20)
            | ((off >> 12 & 0xff) << 12)
            | 0x6f
    };
    img[..4].copy_from_slice(&j.to_le_bytes());
    let log_init = log_params(plan, base);
    img[LOG_OFF as usize..LOG_OFF as usize + log_init.len()].copy_from_slice(&log_init);
    let h = handler_bytes();
    img[HANDLER_OFF as usize..HANDLER_OFF as usize + h.len()].copy_from_slice(&h);
    // Sv39 root: four identity gigapages (0-4 GiB: devices and RAM).
    let user = if plan.mode == Priv::User { 0x10 } else { 0 };
    for g in 0..4u64 {
        let pte = (g << 28) | 0xcf | user;
        let o = (PT_OFF + 8 * g) as usize;
        img[o..o + 8].copy_from_slice(&pte.to_le_bytes());
    }
    let code = random_code(rng, plan.mode);
    img[CODE_OFF as usize..].copy_from_slice(&code);
    (
        img,
        Layout {
            base,
            code,
            log_init,
        },
    )
}

/// The handler's parameters at LOG+24..56 (and a zeroed header before them).
fn log_params(plan: &Plan, base: u64) -> Vec<u8> {
    let mut v = vec![0u8; 24];
    v.extend_from_slice(&(base + CODE_OFF).to_le_bytes());
    v.extend_from_slice(&((CODE_SIZE - 1) & !1).to_le_bytes());
    v.extend_from_slice(&((plan.mode as u64) << 11).to_le_bytes());
    v.extend_from_slice(&(3u64 << 11).to_le_bytes());
    v
}

/// Runs on the main loop: check the new trap log entries, then re-arm the hart.
fn check_and_rearm(m: &mut Machine, plan: &Plan, lay: &Layout, checks: &Mutex<Checks>, r: u64) {
    let log = lay.base + LOG_OFF;
    let expected_satp = if plan.sv39 {
        (8u64 << 60) | ((lay.base + PT_OFF) >> 12)
    } else {
        0
    };
    // M-mode code can overwrite the handler: then its log is not evidence (and it is put back).
    let code = handler_bytes();
    let mut now = vec![0u8; code.len()];
    let handler_ok = m.dma.read(lay.base + HANDLER_OFF, &mut now).is_ok() && now == code;
    let mut buf = vec![0u8; (ENTRIES_OFF + LOG_ENTRIES * ENTRY_BYTES) as usize];
    if m.dma.read(log, &mut buf).is_ok() {
        let word = |o: usize| u64::from_le_bytes(buf[o..o + 8].try_into().unwrap_or([0; 8]));
        let count = word(16);
        let mut c = checks.lock().unwrap_or_else(|e| e.into_inner());
        if count < c.last_count || count - c.last_count > 1 << 32 {
            // The guest reset the machine (the image was reloaded) or, in M-mode, overwrote
            // the log: start again from here.
            c.last_count = count;
        }
        let first = c.last_count.max(count.saturating_sub(LOG_ENTRIES));
        c.traps += count - c.last_count;
        for n in first..count {
            let e = (ENTRIES_OFF + (n % LOG_ENTRIES) * ENTRY_BYTES) as usize;
            let (mcause, mtval, mepc, mstatus) = (word(e), word(e + 8), word(e + 16), word(e + 24));
            let (satp, sum) = (word(e + 32), word(e + 40));
            if !handler_ok || sum != mcause ^ mtval ^ mepc ^ mstatus ^ satp {
                continue; // written by the guest, not the handler (M-mode code can)
            }
            if mcause == 2 {
                c.illegal += 1;
            }
            if mcause >> 63 != 0 {
                continue; // an interrupt
            }
            let code_base = lay.base + CODE_OFF;
            if mepc < code_base || mepc >= code_base + CODE_SIZE - 4 {
                continue;
            }
            let off = (mepc - code_base) as usize;
            let Some(expect) = expectation(&lay.code, off) else {
                continue;
            };
            // Only if the guest did not rewrite that code.
            let mut now = [0u8; 4];
            if m.dma.read(mepc, &mut now).is_err() || lay.code.get(off..off + 4) != Some(&now[..]) {
                continue;
            }
            let prior = (mstatus >> 11) & 3;
            if prior != 3 && satp != expected_satp {
                continue; // the guest changed satp: mepc is not the code's address any more
            }
            let want = match expect {
                Expect::Illegal(bits) => Some(bits),
                Expect::IllegalBelowM(bits) if prior != 3 => Some(bits),
                Expect::IllegalBelowM(_) => None,
            };
            let Some(bits) = want else { continue };
            c.checked += 1;
            if (mcause != 2 || mtval != bits) && c.mismatches.len() < 8 {
                c.mismatches.push(format!(
                    "seed {} at {mepc:#x} (mode {prior}): insn {:02x?} must raise an \
                     illegal-instruction trap with mtval {bits:#x}; got mcause {mcause}, \
                     mtval {mtval:#x}",
                    plan.seed,
                    &lay.code[off..off + 4]
                ));
            }
        }
        c.last_count = count;
    }
    // Re-arm (the random code, in M-mode above all, may have wrecked the set-up), unless the
    // slice ended inside the handler: it must finish its entry first.
    let mut rng = Rng(r | 1);
    let Some(h) = m.harts.get_mut(0) else { return };
    let handler_at = lay.base + HANDLER_OFF;
    if (handler_at..handler_at + 4 * handler().len() as u64).contains(&h.pc()) {
        return;
    }
    let _ = m.dma.write(log + 24, &lay.log_init[24..]);
    if !handler_ok {
        let _ = m.dma.write(lay.base + HANDLER_OFF, &code);
        m.code_pages
            .note_write(lay.base + HANDLER_OFF, code.len() as u64);
    }
    h.write_csr(csr::MTVEC, lay.base + HANDLER_OFF);
    h.write_csr(csr::MSCRATCH, log);
    h.write_csr(csr::MEDELEG, 0);
    h.write_csr(csr::MIDELEG, 0);
    h.write_csr(csr::MIE, 0);
    // PMP: the first 64 KiB read/execute only for S and U, then everything.
    h.write_csr(csr::PMPADDR0, (lay.base >> 2) | ((PROTECTED / 2 - 1) >> 2));
    h.write_csr(csr::PMPADDR0 + 1, u64::MAX >> 10);
    h.write_csr(csr::PMPCFG0, 0x1d | (0x1f << 8));
    h.write_csr(csr::SATP, expected_satp);
    // MPP = mode, FS = initial, TW for S (so wfi traps instead of stalling the seed).
    let tw = if plan.mode == Priv::Supervisor {
        1 << 21
    } else {
        0
    };
    h.write_csr(csr::MSTATUS, ((plan.mode as u64) << 11) | (1 << 13) | tw);
    h.set_privilege(plan.mode);
    for x in 1..32 {
        let v = match rng.below(3) {
            0 => INTERESTING[rng.below(INTERESTING.len() as u64) as usize] + rng.below(0x200),
            1 => rng.below(4096),
            _ => rng.next(),
        };
        h.set_x(x, v);
    }
    h.set_pc(lay.base + CODE_OFF + (rng.below(CODE_SIZE / 2) * 2));
}

fn qmp_query(
    reader: &mut BufReader<UnixStream>,
    w: &mut UnixStream,
    cmd: &str,
) -> std::io::Result<String> {
    w.write_all(cmd.as_bytes())?;
    w.write_all(b"\n")?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line.contains("\"return\"") || line.contains("\"error\"") {
            return Ok(line);
        }
        // An event: keep reading.
    }
}

/// The seed's machine, finished and loaded, with its image layout.
fn build(
    plan: &Plan,
    disk: &std::path::Path,
) -> Result<(Machine, Layout, BootOptions, u64), String> {
    let mut rng = Rng(plan.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    std::fs::write(disk, vec![0u8; 1 << 20]).map_err(|e| e.to_string())?;
    let drives = Rc::new(DriveRegistry::default());
    drives
        .add(BlockBackend::open("hd0", disk, false).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let mut reg = TypeRegistry::new();
    breadboard_devices::register_builtin(&mut reg);
    let opts = MachineOptions {
        machine: "virt".into(),
        ram_size: Some(64 << 20),
        ..Default::default()
    };
    let mut m = Machine::create(&opts, reg, Rc::new(ChardevRegistry::default()), drives)
        .map_err(|e| e.to_string())?;
    for (driver, id, props) in [
        ("virtio-blk-device", "vblk", vec![("drive", "hd0")]),
        ("virtio-rng-device", "vrng", vec![]),
        ("virtio-console-device", "vcon", vec![]),
        ("ns16550a", "uart1", vec![]),
        ("goldfish-rtc", "rtc1", vec![]),
        ("sysbus-memory", "mem1", vec![("size", "0x1000")]),
    ] {
        let opt = DeviceOption {
            driver: driver.into(),
            id: Some(id.into()),
            props: props
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        m.add_user_device(&opt)
            .map_err(|e| format!("-device {driver}: {e}"))?;
    }
    m.wire_default_cpu_irqs().map_err(|e| e.to_string())?;
    // The image's base is where a raw kernel goes; build it once for size, then for real.
    let ram_base = m.ram.map_or(0x8000_0000, |(b, _)| b);
    let (img, lay) = image(plan, ram_base, &mut rng);
    let boot = BootOptions {
        firmware: Firmware::None,
        kernel: Some(Image {
            name: "<soak>".into(),
            data: img,
        }),
        initrd: None,
        append: None,
        dtb: None,
    };
    let layout = m.finish(&boot).map_err(|e| e.to_string())?;
    let base = layout.kernel.map_or(ram_base, |k| k.0);
    if base != ram_base {
        return Err(format!("the kernel went to {base:#x}, not {ram_base:#x}"));
    }

    Ok((m, lay, boot, base))
}

/// Runs one seed for `secs` seconds. `bound`: how long a QMP answer may take.
pub fn run_seed(seed: u64, secs: f64, bound: Duration) -> SeedReport {
    let plan = Plan::of(seed);
    let mut report = SeedReport {
        seed,
        mode: plan.mode_name().into(),
        ..SeedReport::default()
    };
    let tmp = std::env::temp_dir();
    let tag = format!("bb-soak-{}-{seed}", std::process::id());
    let disk = tmp.join(format!("{tag}.img"));
    let sock = tmp.join(format!("{tag}.qmp"));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_seed_inner(&plan, secs, bound, &disk, &sock, &mut report)
    }));
    let _ = std::fs::remove_file(&disk);
    let _ = std::fs::remove_file(&sock);
    match r {
        Ok(Ok(())) => {}
        Ok(Err(e)) => report.panic = Some(format!("set-up failed: {e}")),
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into());
            report.panic = Some(msg);
        }
    }
    report
}

fn run_seed_inner(
    plan: &Plan,
    secs: f64,
    bound: Duration,
    disk: &std::path::Path,
    sock: &std::path::Path,
    report: &mut SeedReport,
) -> Result<(), String> {
    let (mut m, lay, boot, base) = build(plan, disk)?;

    let (tx, rx) = mpsc::channel::<Event>();
    let ctx = QmpContext::new(boot, false);
    let mut qmp = ServerHandle::new(ctx, tx.clone());
    qmp.listen(&ListenSpec::unix(sock))
        .map_err(|e| e.to_string())?;
    qmp.context().machine_ready();

    let checks = Arc::new(Mutex::new(Checks::default()));
    let lay = Arc::new(lay);
    let plan = *plan;
    let stop = Arc::new(AtomicBool::new(false));
    struct QmpStats {
        sent: u64,
        answered: u64,
        max: Duration,
        late: u64,
    }
    // The controller: re-arm + check every 20 ms, query-status every 50 ms; at the deadline,
    // it stops querying and ends the run.
    let controller = {
        let (tx, checks, lay, stop) = (tx.clone(), checks.clone(), lay.clone(), stop.clone());
        let sock = sock.to_path_buf();
        let seed = plan.seed;
        std::thread::spawn(move || -> Result<QmpStats, String> {
            let mut stats = QmpStats {
                sent: 0,
                answered: 0,
                max: Duration::ZERO,
                late: 0,
            };
            let s = UnixStream::connect(&sock).map_err(|e| format!("qmp connect: {e}"))?;
            s.set_read_timeout(Some(bound.max(Duration::from_secs(1)) * 5))
                .map_err(|e| e.to_string())?;
            let mut w = s.try_clone().map_err(|e| e.to_string())?;
            let mut reader = BufReader::new(s);
            let mut greeting = String::new();
            reader
                .read_line(&mut greeting)
                .map_err(|e| format!("qmp greeting: {e}"))?;
            qmp_query(&mut reader, &mut w, "{\"execute\":\"qmp_capabilities\"}")
                .map_err(|e| format!("qmp_capabilities: {e}"))?;
            let start = Instant::now();
            let mut k = 0u64;
            let mut rng = Rng(seed ^ 0x5eed);
            while start.elapsed().as_secs_f64() < secs && !stop.load(Ordering::SeqCst) {
                let (checks, lay) = (checks.clone(), lay.clone());
                let r = rng.next();
                let _ = tx.send(Event::Call(Box::new(move |m| {
                    check_and_rearm(m, &plan, &lay, &checks, r)
                })));
                if k.is_multiple_of(3) {
                    let t = Instant::now();
                    stats.sent += 1;
                    match qmp_query(&mut reader, &mut w, "{\"execute\":\"query-status\"}") {
                        Ok(line) if line.contains("\"status\"") => {
                            stats.answered += 1;
                            let d = t.elapsed();
                            stats.max = stats.max.max(d);
                            if d > bound {
                                stats.late += 1;
                            }
                        }
                        Ok(line) => return Err(format!("query-status: {line}")),
                        Err(e) => return Err(format!("query-status: no answer: {e}")),
                    }
                }
                k += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = tx.send(Event::Quit);
            Ok(stats)
        })
    };
    drop(tx);
    // The real main loop; a guest shutdown (sifive_test) or deadlock restarts it until the
    // controller says quit.
    m.harts.iter_mut().for_each(|h| h.set_pc(base));
    loop {
        match m.run_with(&rx, false, &mut qmp) {
            Exit::Quit => break,
            Exit::Shutdown(_) | Exit::Deadlock => {
                report.guest_exits += 1;
                if controller.is_finished() {
                    break;
                }
                if m.system_reset().is_err() {
                    break;
                }
            }
        }
    }
    stop.store(true, Ordering::SeqCst);
    report.instret = m.harts.iter().map(|h| h.instret()).sum();
    // A final check of the log.
    check_and_rearm(&mut m, &plan, &lay, &checks, 1);
    qmp.flush(Duration::from_millis(200));
    let stats = controller
        .join()
        .map_err(|_| "the controller thread panicked".to_string())??;
    let c = checks.lock().unwrap_or_else(|e| e.into_inner());
    report.traps = c.traps;
    report.illegal_traps = c.illegal;
    report.checked = c.checked;
    report.mismatches = c.mismatches.clone();
    report.qmp_sent = stats.sent;
    report.qmp_answered = stats.answered;
    report.qmp_max = stats.max;
    report.qmp_late = stats.late;
    Ok(())
}

pub fn print_report(r: &SeedReport) {
    println!(
        "seed {:3} {:6} insns {:>11} traps {:>9} illegal {:>9} checked {:>7} mismatches {} \
         qmp {}/{} max {:.1} ms{}{}",
        r.seed,
        r.mode,
        r.instret,
        r.traps,
        r.illegal_traps,
        r.checked,
        r.mismatches.len(),
        r.qmp_answered,
        r.qmp_sent,
        r.qmp_max.as_secs_f64() * 1e3,
        if r.guest_exits > 0 {
            format!(" guest-exits {}", r.guest_exits)
        } else {
            String::new()
        },
        match &r.panic {
            Some(p) => format!(" PANIC/ERROR: {p}"),
            None => String::new(),
        }
    );
    for m in &r.mismatches {
        println!("    {m}");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: f64| args.get(i).and_then(|a| a.parse::<f64>().ok()).unwrap_or(d);
    let seeds = arg(0, 64.0) as u64;
    let secs = arg(1, 10.0);
    let first = arg(2, 0.0) as u64;
    let bound = Duration::from_secs(1);
    let t = Instant::now();
    let mut reports = Vec::new();
    for seed in first..first + seeds {
        let r = run_seed(seed, secs, bound);
        print_report(&r);
        reports.push(r);
    }
    let failed: Vec<u64> = reports
        .iter()
        .filter(|r| !r.ok(bound))
        .map(|r| r.seed)
        .collect();
    let sum = |f: fn(&SeedReport) -> u64| reports.iter().map(f).sum::<u64>();
    let max_qmp = reports.iter().map(|r| r.qmp_max).max().unwrap_or_default();
    println!(
        "soak: {seeds} seeds x {secs} s ({:.0} s wall): {} guest insns, {} traps ({} illegal), \
         {} checked against the ISA, {} mismatches, {} host panics, QMP query-status {}/{} \
         answered, max {:.1} ms (bound {} ms), {} over; failed seeds: {:?}",
        t.elapsed().as_secs_f64(),
        sum(|r| r.instret),
        sum(|r| r.traps),
        sum(|r| r.illegal_traps),
        sum(|r| r.checked),
        sum(|r| r.mismatches.len() as u64),
        reports.iter().filter(|r| r.panic.is_some()).count(),
        sum(|r| r.qmp_answered),
        sum(|r| r.qmp_sent),
        max_qmp.as_secs_f64() * 1e3,
        bound.as_millis(),
        sum(|r| r.qmp_late),
        failed
    );
    std::process::exit(i32::from(!failed.is_empty()));
}
