//! A minimal machine for running bare-metal test programs on one hart: 64 MiB of RAM at
//! 0x8000_0000, a sifive_test-style finisher at 0x10_0000, an ns16550a THR/LSR at 0x1000_0000 and
//! a CLINT (msip, mtimecmp, mtime) at 0x200_0000. Shared by `tests/isa.rs` and `examples/mips.rs`.

#![allow(dead_code)]

use std::path::Path;
use std::rc::Rc;

use breadboard_riscv::{Bus, BusError, Hart, HartConfig, HartIrqs, HostPage, RunExit, Xlen, irq};
use object::{Object, ObjectSegment};

pub const RAM_BASE: u64 = 0x8000_0000;
pub const RAM_SIZE: u64 = 64 << 20;
pub const FINISHER: u64 = 0x10_0000;
pub const UART: u64 = 0x1000_0000;
pub const CLINT: u64 = 0x200_0000;
/// A PLIC-sized window that reads 0 and ignores writes (enough for firmware that initialises
/// a PLIC it never uses).
pub const PLIC: u64 = 0xc00_0000;
const PLIC_END: u64 = 0xc60_0000;
const CLINT_MTIMECMP: u64 = CLINT + 0x4000;
const CLINT_MTIME: u64 = CLINT + 0xbff8;

/// How a program ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail(u32),
    /// The finisher was written with something else.
    Other(u32),
    Timeout,
}

pub struct TestBus {
    ram: Box<[u8]>,
    pub uart: Vec<u8>,
    pub finished: Option<u32>,
    pub msip: bool,
    pub mtimecmp: u64,
    pub mtime: u64,
    irqs: Rc<HartIrqs>,
}

impl TestBus {
    pub fn new(irqs: Rc<HartIrqs>) -> TestBus {
        TestBus {
            ram: vec![0u8; RAM_SIZE as usize].into_boxed_slice(),
            uart: Vec::new(),
            finished: None,
            msip: false,
            mtimecmp: u64::MAX,
            mtime: 0,
            irqs,
        }
    }

    /// Copy bytes into RAM (loader).
    pub fn load(&mut self, paddr: u64, bytes: &[u8]) -> Result<(), String> {
        let off = paddr.checked_sub(RAM_BASE).ok_or("below RAM")? as usize;
        let dst = self
            .ram
            .get_mut(off..off + bytes.len())
            .ok_or_else(|| format!("segment at {paddr:#x} outside RAM"))?;
        dst.copy_from_slice(bytes);
        Ok(())
    }

    pub fn advance_time(&mut self, ticks: u64) {
        self.mtime = self.mtime.wrapping_add(ticks);
        self.update_irqs();
    }

    fn update_irqs(&self) {
        self.irqs.set(irq::MTI, self.mtime >= self.mtimecmp);
        self.irqs.set(irq::MSI, self.msip);
    }

    pub fn uart_text(&self) -> String {
        String::from_utf8_lossy(&self.uart).into_owned()
    }
}

fn merge(old: u64, off: u64, size: u8, v: u64) -> u64 {
    let shift = (off & 7) * 8;
    let mask = if size == 8 {
        u64::MAX
    } else {
        ((1u64 << (size * 8)) - 1) << shift
    };
    (old & !mask) | ((v << shift) & mask)
}

impl Bus for TestBus {
    fn host_page(&mut self, paddr: u64) -> Option<HostPage> {
        let off = paddr.checked_sub(RAM_BASE)?;
        if off >= RAM_SIZE {
            return None;
        }
        let page = (off & !0xfff) as usize;
        let ptr = self.ram.get_mut(page..)?.as_mut_ptr();
        Some(HostPage {
            ptr,
            writable: true,
        })
    }

    fn read(&mut self, paddr: u64, size: u8) -> Result<u64, BusError> {
        match paddr {
            UART..0x1000_0100 => Ok(if paddr == UART + 5 { 0x60 } else { 0 }),
            CLINT..0x200_4000 => Ok(if paddr == CLINT { self.msip as u64 } else { 0 }),
            CLINT_MTIMECMP..0x200_4008 => Ok(self.mtimecmp >> ((paddr & 7) * 8)),
            CLINT_MTIME..0x200_c000 => Ok(self.mtime >> ((paddr & 7) * 8)),
            FINISHER..0x10_1000 => Ok(0),
            PLIC..PLIC_END => Ok(0),
            _ => {
                let _ = size;
                Err(BusError::Unmapped)
            }
        }
    }

    fn write(&mut self, paddr: u64, size: u8, value: u64) -> Result<(), BusError> {
        match paddr {
            UART => self.uart.push(value as u8),
            0x1000_0001..0x1000_0100 => {}
            CLINT..0x200_0004 => {
                self.msip = value & 1 != 0;
                self.update_irqs();
            }
            CLINT_MTIMECMP..0x200_4008 => {
                self.mtimecmp = merge(self.mtimecmp, paddr - CLINT_MTIMECMP, size, value);
                self.update_irqs();
            }
            CLINT_MTIME..0x200_c000 => {
                self.mtime = merge(self.mtime, paddr - CLINT_MTIME, size, value);
                self.update_irqs();
            }
            FINISHER => self.finished = Some(value as u32),
            PLIC..PLIC_END => {}
            _ => return Err(BusError::Unmapped),
        }
        Ok(())
    }

    fn mtime(&mut self) -> u64 {
        self.mtime
    }
}

pub struct Machine {
    pub hart: Hart,
    pub bus: TestBus,
}

impl Machine {
    pub fn from_elf(path: &Path, xlen: Xlen) -> Result<Machine, String> {
        Machine::from_elf_with(path, xlen, |_| {})
    }

    /// Like `from_elf`, with a chance to adjust the hart configuration.
    pub fn from_elf_with(
        path: &Path,
        xlen: Xlen,
        adjust: impl FnOnce(&mut HartConfig),
    ) -> Result<Machine, String> {
        let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let file = object::File::parse(&*data).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut config = match xlen {
            Xlen::Rv64 => HartConfig::rv64(0, file.entry()),
            Xlen::Rv32 => HartConfig::rv32(0, file.entry()),
        };
        adjust(&mut config);
        let hart = Hart::new(config);
        let mut bus = TestBus::new(hart.irqs());
        for seg in file.segments() {
            let bytes = seg.data().map_err(|e| e.to_string())?;
            if !bytes.is_empty() {
                bus.load(seg.address(), bytes)?;
            }
        }
        Ok(Machine { hart, bus })
    }

    /// Run until the finisher is written or `max_insns` have run. Time advances by one tick
    /// per 10 instructions; a hart in wfi fast-forwards to its timer.
    pub fn run(&mut self, max_insns: u64, slice: u64) -> Outcome {
        let mut idle = 0u32;
        let mut slices = 0u64;
        while self.hart.instret() < max_insns && slices < max_insns / slice * 4 + 1000 {
            slices += 1;
            let before = self.hart.instret();
            let exit = self.hart.run(&mut self.bus, slice);
            let ran = self.hart.instret() - before;
            self.bus.advance_time(ran / 10 + 1);
            if let Some(v) = self.bus.finished {
                return match v & 0xffff {
                    0x5555 => Outcome::Pass,
                    0x3333 => Outcome::Fail(v >> 16),
                    _ => Outcome::Other(v),
                };
            }
            if exit == RunExit::Wfi {
                // Fast-forward to the earlier of the CLINT's and the hart's own (Sstc) timer.
                let due = [Some(self.bus.mtimecmp), self.hart.timer_wakeup()]
                    .into_iter()
                    .flatten()
                    .filter(|&t| t != u64::MAX && t > self.bus.mtime)
                    .min();
                if let Some(t) = due {
                    let d = t - self.bus.mtime;
                    self.bus.advance_time(d);
                } else {
                    idle += 1;
                    if idle > 1000 {
                        return Outcome::Timeout;
                    }
                }
            }
        }
        Outcome::Timeout
    }
}
