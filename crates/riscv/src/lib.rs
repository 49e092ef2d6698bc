//! breadboard's RISC-V hart: one decoder shared by executor, disassembler, tracer and debugger,
//! and an interpreter for RV32/RV64 IMAFDC with M, S and U privilege, Sv32/Sv39/Sv48 and PMP
//! (RISC-V Unprivileged ISA 20191213, Privileged ISA 20211203). See `DESIGN.md` beside this
//! crate.
//!
//! The hart is generic over its [`Bus`]: RAM and ROM are reached through host pointers cached in
//! a soft TLB, only MMIO goes through `Bus::read`/`Bus::write`.

// The hart executes untrusted guest code: no panicking shortcuts outside tests, crate-wide.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

pub mod csr;
pub mod decode;
pub mod disasm;
pub mod fp;
pub mod insn;

mod code;
mod exec;
mod hart;
mod mem;
mod snapshot;
mod state;

pub use code::CodePages;
pub use decode::decode;
pub use disasm::{Disasm, disasm};
pub use hart::Hart;
pub use insn::{Insn, Op, Xlen};
pub use state::{
    Exception, Extensions, HartConfig, HartIrqs, Priv, RunExit, TraceFlags, Trap, irq,
};

/// Host view of one 4 KiB guest-physical page of RAM or ROM.
#[derive(Clone, Copy, Debug)]
pub struct HostPage {
    /// Host address of the first byte of the page. Valid for the life of the machine.
    pub ptr: *mut u8,
    /// False for ROM: stores to it raise store access faults.
    pub writable: bool,
}

/// Why a slow-path bus access failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    /// Nothing is mapped at the address.
    #[error("nothing is mapped at the address")]
    Unmapped,
    /// The device refused the access (size, offset or direction).
    #[error("the device refused the access")]
    AccessFault,
}

/// What a hart needs from the machine. The platform implements it; the hart is generic over it
/// (no `dyn` in the loop).
pub trait Bus {
    /// Host pointer to the start of the 4 KiB guest-physical page containing `paddr`, if it is
    /// RAM or ROM. `writable` is false for ROM. The pointer stays valid for the life of the
    /// machine, and nothing else holds a Rust reference to those bytes while a hart runs.
    /// Devices that write guest RAM directly (DMA) must report it through
    /// [`CodePages::note_write`].
    fn host_page(&mut self, paddr: u64) -> Option<HostPage>;
    /// Slow-path physical access (MMIO, or anything `host_page` doesn't cover). `size` is 1, 2,
    /// 4 or 8; the address is naturally aligned.
    fn read(&mut self, paddr: u64, size: u8) -> Result<u64, BusError>;
    /// Slow-path physical write; see [`Bus::read`].
    fn write(&mut self, paddr: u64, size: u8, value: u64) -> Result<(), BusError>;
    /// The platform timer (mtime), 10 MHz ticks, for the `time` CSR.
    fn mtime(&mut self) -> u64;
    /// Called immediately before every [`Bus::read`], [`Bus::write`] and [`Bus::mtime`] the
    /// hart makes, with its exact instruction count at that moment: the value
    /// [`Hart::instret`] would return there, i.e. every instruction retired before the
    /// accessing one (which has not retired yet). Under `-icount` the platform uses it to make
    /// virtual time exact at the access. QEMU's icount counts the accessing instruction as
    /// already executed, so for QEMU-identical time use `instret + 1`. The default does nothing.
    #[inline(always)]
    fn sync_instret(&mut self, instret: u64) {
        let _ = instret;
    }
}
