//! Instruction decoder against the disassembler: any 32- or 16-bit word decodes (possibly to
//! Illegal) deterministically, and disassembles without panicking, for RV32 and RV64.
#![no_main]
use breadboard_riscv::decode::{decode, decode16, insn_len};
use breadboard_riscv::{Xlen, disasm};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for w in data.chunks(12) {
        let mut b = [0u8; 12];
        b[..w.len()].copy_from_slice(w);
        let bits = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let pc = u64::from_le_bytes([b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11]]);
        for xlen in [Xlen::Rv32, Xlen::Rv64] {
            let i = decode(bits, xlen);
            assert_eq!(i, decode(bits, xlen), "decode is not deterministic");
            assert_eq!(i.len, insn_len(bits as u16), "decoded length disagrees with insn_len");
            let s = disasm(&i, pc, xlen);
            assert_eq!(s, disasm(&i, pc, xlen));
            let c = decode16(bits as u16, xlen);
            assert_eq!(c, decode16(bits as u16, xlen));
            let _ = disasm(&c, pc, xlen);
        }
    }
});
