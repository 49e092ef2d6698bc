//! CPU models a machine can be built with (`-cpu TYPE`, `[cpu] type`): the hart
//! configuration and what the device tree says about them.

use std::rc::Rc;

use breadboard_riscv::{CodePages, Extensions, HartConfig, Xlen};

/// A CPU model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuModel {
    /// `-cpu` name.
    pub name: &'static str,
    /// One line for `-cpu help`.
    pub description: &'static str,
    /// Register width.
    pub xlen: Xlen,
    /// `riscv,isa` in the device tree.
    pub isa: &'static str,
    /// `mmu-type`, if the hart has S-mode paging.
    pub mmu: Option<&'static str>,
    /// Implemented extensions.
    pub extensions: Extensions,
    /// PMP entries.
    pub pmp_entries: u8,
}

/// Every CPU model, first is the default for rv64 machines.
pub const MODELS: &[CpuModel] = &[
    CpuModel {
        name: "rv64",
        description: "RV64GC: IMAFDC, M, S and U modes, Sv39/Sv48 paging, PMP",
        xlen: Xlen::Rv64,
        isa: "rv64imafdc_zicsr_zifencei",
        mmu: Some("riscv,sv48"),
        extensions: Extensions::GCSU,
        pmp_entries: 16,
    },
    CpuModel {
        name: "rv32",
        description: "RV32IMC, M and U modes",
        xlen: Xlen::Rv32,
        isa: "rv32imc_zicsr_zifencei",
        mmu: None,
        extensions: Extensions::IMCU,
        pmp_entries: 16,
    },
    CpuModel {
        name: "lowrisc-ibex",
        description: "lowRISC Ibex: RV32IMC, M and U modes, PMP",
        xlen: Xlen::Rv32,
        isa: "rv32imc_zicsr_zifencei",
        mmu: None,
        extensions: Extensions::IMCU,
        pmp_entries: 16,
    },
];

/// Looks up a model by name.
pub fn find(name: &str) -> Option<&'static CpuModel> {
    MODELS.iter().find(|m| m.name == name)
}

/// `-cpu help`.
pub fn help() -> String {
    let mut s = String::from("Available CPUs:\n");
    for m in MODELS {
        s.push_str(&format!("  {:<14} {}\n", m.name, m.description));
    }
    s
}

impl CpuModel {
    /// The hart configuration for hart `hart_id`.
    pub fn hart_config(
        &self,
        hart_id: u64,
        reset_pc: u64,
        code_pages: &Rc<CodePages>,
    ) -> HartConfig {
        HartConfig {
            hart_id,
            xlen: self.xlen,
            extensions: self.extensions,
            reset_pc,
            pmp_entries: self.pmp_entries,
            mvendorid: 0,
            marchid: 0,
            mimpid: 0,
            code_pages: Some(Rc::clone(code_pages)),
        }
    }

    /// Register width in bits.
    pub fn bits(&self) -> u32 {
        match self.xlen {
            Xlen::Rv32 => 32,
            Xlen::Rv64 => 64,
        }
    }
}
