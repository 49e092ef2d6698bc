//! Control and status register numbers and names (Privileged ISA 20211203 §2.2, tables 2.2-2.5;
//! Unprivileged ISA ch. 10 counters, ch. 11 fcsr).

#![allow(missing_docs)]

pub const FFLAGS: u16 = 0x001;
pub const FRM: u16 = 0x002;
pub const FCSR: u16 = 0x003;
pub const CYCLE: u16 = 0xc00;
pub const TIME: u16 = 0xc01;
pub const INSTRET: u16 = 0xc02;
pub const HPMCOUNTER3: u16 = 0xc03;
pub const HPMCOUNTER31: u16 = 0xc1f;
pub const CYCLEH: u16 = 0xc80;
pub const TIMEH: u16 = 0xc81;
pub const INSTRETH: u16 = 0xc82;
pub const HPMCOUNTER3H: u16 = 0xc83;
pub const HPMCOUNTER31H: u16 = 0xc9f;

pub const SSTATUS: u16 = 0x100;
pub const SIE: u16 = 0x104;
pub const STVEC: u16 = 0x105;
pub const SCOUNTEREN: u16 = 0x106;
pub const SENVCFG: u16 = 0x10a;
pub const SSCRATCH: u16 = 0x140;
pub const SEPC: u16 = 0x141;
pub const SCAUSE: u16 = 0x142;
pub const STVAL: u16 = 0x143;
pub const SIP: u16 = 0x144;
/// Sstc: supervisor timer compare.
pub const STIMECMP: u16 = 0x14d;
/// Sstc: upper half of `stimecmp` (RV32).
pub const STIMECMPH: u16 = 0x15d;
pub const SATP: u16 = 0x180;

pub const MVENDORID: u16 = 0xf11;
pub const MARCHID: u16 = 0xf12;
pub const MIMPID: u16 = 0xf13;
pub const MHARTID: u16 = 0xf14;
pub const MCONFIGPTR: u16 = 0xf15;
pub const MSTATUS: u16 = 0x300;
pub const MISA: u16 = 0x301;
pub const MEDELEG: u16 = 0x302;
pub const MIDELEG: u16 = 0x303;
pub const MIE: u16 = 0x304;
pub const MTVEC: u16 = 0x305;
pub const MCOUNTEREN: u16 = 0x306;
pub const MENVCFG: u16 = 0x30a;
pub const MSTATUSH: u16 = 0x310;
pub const MENVCFGH: u16 = 0x31a;
pub const MCOUNTINHIBIT: u16 = 0x320;
pub const MHPMEVENT3: u16 = 0x323;
pub const MHPMEVENT31: u16 = 0x33f;
pub const MSCRATCH: u16 = 0x340;
pub const MEPC: u16 = 0x341;
pub const MCAUSE: u16 = 0x342;
pub const MTVAL: u16 = 0x343;
pub const MIP: u16 = 0x344;
pub const MTINST: u16 = 0x34a;
pub const MTVAL2: u16 = 0x34b;
pub const PMPCFG0: u16 = 0x3a0;
pub const PMPCFG15: u16 = 0x3af;
pub const PMPADDR0: u16 = 0x3b0;
pub const PMPADDR63: u16 = 0x3ef;
pub const MCYCLE: u16 = 0xb00;
pub const MINSTRET: u16 = 0xb02;
pub const MHPMCOUNTER3: u16 = 0xb03;
pub const MHPMCOUNTER31: u16 = 0xb1f;
pub const MCYCLEH: u16 = 0xb80;
pub const MINSTRETH: u16 = 0xb82;
pub const MHPMCOUNTER3H: u16 = 0xb83;
pub const MHPMCOUNTER31H: u16 = 0xb9f;
pub const TSELECT: u16 = 0x7a0;
pub const TDATA1: u16 = 0x7a1;
pub const TDATA2: u16 = 0x7a2;
pub const TDATA3: u16 = 0x7a3;

const NAMES: &[(u16, &str)] = &[
    (FFLAGS, "fflags"),
    (FRM, "frm"),
    (FCSR, "fcsr"),
    (CYCLE, "cycle"),
    (TIME, "time"),
    (INSTRET, "instret"),
    (CYCLEH, "cycleh"),
    (TIMEH, "timeh"),
    (INSTRETH, "instreth"),
    (SSTATUS, "sstatus"),
    (SIE, "sie"),
    (STVEC, "stvec"),
    (SCOUNTEREN, "scounteren"),
    (SENVCFG, "senvcfg"),
    (SSCRATCH, "sscratch"),
    (SEPC, "sepc"),
    (SCAUSE, "scause"),
    (STVAL, "stval"),
    (SIP, "sip"),
    (STIMECMP, "stimecmp"),
    (STIMECMPH, "stimecmph"),
    (SATP, "satp"),
    (MVENDORID, "mvendorid"),
    (MARCHID, "marchid"),
    (MIMPID, "mimpid"),
    (MHARTID, "mhartid"),
    (MCONFIGPTR, "mconfigptr"),
    (MSTATUS, "mstatus"),
    (MISA, "misa"),
    (MEDELEG, "medeleg"),
    (MIDELEG, "mideleg"),
    (MIE, "mie"),
    (MTVEC, "mtvec"),
    (MCOUNTEREN, "mcounteren"),
    (MENVCFG, "menvcfg"),
    (MSTATUSH, "mstatush"),
    (MENVCFGH, "menvcfgh"),
    (MCOUNTINHIBIT, "mcountinhibit"),
    (MSCRATCH, "mscratch"),
    (MEPC, "mepc"),
    (MCAUSE, "mcause"),
    (MTVAL, "mtval"),
    (MIP, "mip"),
    (MTINST, "mtinst"),
    (MTVAL2, "mtval2"),
    (MCYCLE, "mcycle"),
    (MINSTRET, "minstret"),
    (MCYCLEH, "mcycleh"),
    (MINSTRETH, "minstreth"),
    (TSELECT, "tselect"),
    (TDATA1, "tdata1"),
    (TDATA2, "tdata2"),
    (TDATA3, "tdata3"),
];

/// The standard name of a CSR, for the disassembler and debuggers.
pub fn name(csr: u16) -> Option<&'static str> {
    NAMES.iter().find(|(n, _)| *n == csr).map(|(_, s)| *s)
}

/// Writes the name of `csr` (or its number in hex, as objdump does for unknown CSRs).
pub fn write_name(out: &mut dyn core::fmt::Write, csr: u16) -> core::fmt::Result {
    if let Some(n) = name(csr) {
        return out.write_str(n);
    }
    let table: &[(u16, u16, &str)] = &[
        (HPMCOUNTER3, HPMCOUNTER31, "hpmcounter"),
        (HPMCOUNTER3H, HPMCOUNTER31H, "hpmcounter"),
        (MHPMCOUNTER3, MHPMCOUNTER31, "mhpmcounter"),
        (MHPMCOUNTER3H, MHPMCOUNTER31H, "mhpmcounter"),
        (MHPMEVENT3, MHPMEVENT31, "mhpmevent"),
        (PMPCFG0, PMPCFG15, "pmpcfg"),
        (PMPADDR0, PMPADDR63, "pmpaddr"),
    ];
    for &(lo, hi, base) in table {
        if (lo..=hi).contains(&csr) {
            let n = csr - lo
                + if base.ends_with("pmpcfg") || base.ends_with("pmpaddr") {
                    0
                } else {
                    3
                };
            let h = if (HPMCOUNTER3H..=HPMCOUNTER31H).contains(&csr)
                || (MHPMCOUNTER3H..=MHPMCOUNTER31H).contains(&csr)
            {
                "h"
            } else {
                ""
            };
            return write!(out, "{base}{n}{h}");
        }
    }
    write!(out, "{csr:#x}")
}
