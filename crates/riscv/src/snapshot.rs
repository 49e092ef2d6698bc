//! Hart architectural state for snapshots: a versioned little-endian byte format (no serde).
//!
//! Layout (version 1): magic `HART`, u32 version, u64 hart id, u8 xlen (32/64), then pc, the
//! 32 x and 32 f registers, fcsr, privilege, the M/S CSRs, PMP, instret and counter offsets,
//! and `waiting`. Version 2 appends Sstc's `stimecmp` (version 1 blobs load with it 0; STCE is in
//! `menvcfg`, STIP in the software-pending bits). Caches (decoded code, TLB, LR reservation) are
//! not saved: they are rebuilt.

use crate::hart::Hart;
use crate::insn::Xlen;
use crate::state::{MENVCFG_STCE, Priv, State, irq, ms};

const MAGIC: &[u8; 4] = b"HART";
const VERSION: u32 = 2;

struct W(Vec<u8>);

impl W {
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
}

struct R<'a> {
    d: &'a [u8],
}

impl R<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let (head, rest) = self
            .d
            .split_first_chunk::<N>()
            .ok_or_else(|| "hart state is truncated".to_string())?;
        self.d = rest;
        Ok(*head)
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take()?))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take()?))
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take::<1>()?[0])
    }
}

impl Hart {
    /// The hart's architectural state as bytes (see the module docs for the layout).
    pub fn save_state(&self) -> Vec<u8> {
        let s = &self.st;
        let mut w = W(Vec::with_capacity(1024));
        w.0.extend_from_slice(MAGIC);
        w.u32(VERSION);
        w.u64(s.hart_id);
        w.u8(match s.xlen {
            Xlen::Rv32 => 32,
            Xlen::Rv64 => 64,
        });
        w.u64(s.pc);
        for v in s.x.iter().chain(s.f.iter()) {
            w.u64(*v);
        }
        w.u32(s.fcsr);
        w.u8(s.prv as u8);
        for v in [
            s.misa,
            s.mstatus,
            s.mie,
            s.mip_sw,
            s.medeleg,
            s.mideleg,
            s.mtvec,
            s.mepc,
            s.mcause,
            s.mtval,
            s.mscratch,
            s.mcounteren,
            s.mcountinhibit,
            s.menvcfg,
            s.stvec,
            s.sepc,
            s.scause,
            s.stval,
            s.sscratch,
            s.scounteren,
            s.senvcfg,
            s.satp,
        ] {
            w.u64(v);
        }
        w.0.extend_from_slice(&s.pmpcfg);
        for v in s.pmpaddr {
            w.u64(v);
        }
        w.u64(s.instret);
        w.u64(s.minstret_off);
        w.u64(s.mcycle_off);
        w.u8(u8::from(s.waiting));
        w.u64(s.stimecmp);
        w.0
    }

    /// Restores what [`Hart::save_state`] wrote. The hart must have the same id and XLEN.
    /// Nothing changes on error.
    pub fn load_state(&mut self, data: &[u8]) -> Result<(), String> {
        let mut r = R { d: data };
        if &r.take::<4>()? != MAGIC {
            return Err("hart state has a bad magic".into());
        }
        let version = r.u32()?;
        if version != VERSION && version != 1 {
            return Err(format!(
                "hart state version {version} is not supported (want {VERSION})"
            ));
        }
        let id = r.u64()?;
        if id != self.st.hart_id {
            return Err(format!(
                "hart state is for hart {id}, not {}",
                self.st.hart_id
            ));
        }
        let xlen = match r.u8()? {
            32 => Xlen::Rv32,
            64 => Xlen::Rv64,
            v => return Err(format!("hart state has a bad XLEN {v}")),
        };
        if xlen != self.st.xlen {
            return Err("hart state has another XLEN".into());
        }
        let pc = r.u64()?;
        let mut x = [0u64; 32];
        let mut f = [0u64; 32];
        for v in x.iter_mut().chain(f.iter_mut()) {
            *v = r.u64()?;
        }
        let fcsr = r.u32()?;
        let prv = match r.u8()? {
            0 => Priv::User,
            1 => Priv::Supervisor,
            3 => Priv::Machine,
            v => return Err(format!("hart state has a bad privilege {v}")),
        };
        let mut csrs = [0u64; 22];
        for v in &mut csrs {
            *v = r.u64()?;
        }
        let pmpcfg = r.take::<64>()?;
        let mut pmpaddr = [0u64; 64];
        for v in &mut pmpaddr {
            *v = r.u64()?;
        }
        let instret = r.u64()?;
        let minstret_off = r.u64()?;
        let mcycle_off = r.u64()?;
        let waiting = match r.u8()? {
            0 => false,
            1 => true,
            v => return Err(format!("hart state has a bad wait flag {v}")),
        };
        let stimecmp = if version >= 2 { r.u64()? } else { 0 };
        if !r.d.is_empty() {
            return Err("hart state has trailing bytes".into());
        }
        check_state(
            &self.st,
            &Restored {
                pc,
                x: &x,
                fcsr,
                prv,
                csrs: &csrs,
                pmpcfg: &pmpcfg,
                pmpaddr: &pmpaddr,
            },
        )?;
        let s = &mut self.st;
        s.pc = pc;
        s.x = x;
        s.f = f;
        s.fcsr = fcsr;
        s.prv = prv;
        [
            s.misa,
            s.mstatus,
            s.mie,
            s.mip_sw,
            s.medeleg,
            s.mideleg,
            s.mtvec,
            s.mepc,
            s.mcause,
            s.mtval,
            s.mscratch,
            s.mcounteren,
            s.mcountinhibit,
            s.menvcfg,
            s.stvec,
            s.sepc,
            s.scause,
            s.stval,
            s.sscratch,
            s.scounteren,
            s.senvcfg,
            s.satp,
        ] = csrs;
        s.pmpcfg = pmpcfg;
        s.pmpaddr = pmpaddr;
        s.pmp_rebuild();
        s.instret = instret;
        s.minstret_off = minstret_off;
        s.mcycle_off = mcycle_off;
        s.waiting = waiting;
        s.stimecmp = stimecmp;
        s.reservation = None;
        s.deferred = false;
        s.tlb.flush_all();
        self.flush_code();
        Ok(())
    }
}

/// The parts of a parsed hart state that have invariants the interpreter relies on.
struct Restored<'a> {
    pc: u64,
    x: &'a [u64; 32],
    fcsr: u32,
    prv: Priv,
    /// In `save_state` order.
    csrs: &'a [u64; 22],
    pmpcfg: &'a [u8; 64],
    pmpaddr: &'a [u64; 64],
}

/// Refuses a state this hart could never be in: the interpreter and the CSR code assume x0 is
/// 0, RV32 registers are sign-extended, WARL fields hold legal values, and modes and features
/// the hart lacks are never in use. Each check names the field, so a corrupt file says where.
fn check_state(st: &State, r: &Restored<'_>) -> Result<(), String> {
    let bad = |what: &str, v: u64| Err(format!("hart state has an impossible {what} {v:#x}"));
    let rv32 = st.xlen == Xlen::Rv32;
    let sx = |v: u64| if rv32 { v as i32 as i64 as u64 } else { v };
    let [
        misa,
        mstatus,
        _mie,
        _mip_sw,
        medeleg,
        mideleg,
        mtvec,
        mepc,
        _mcause,
        _mtval,
        _mscratch,
        mcounteren,
        mcountinhibit,
        menvcfg,
        stvec,
        sepc,
        _scause,
        _stval,
        _sscratch,
        scounteren,
        senvcfg,
        satp,
    ] = *r.csrs;
    if r.x[0] != 0 {
        return bad("x0", r.x[0]);
    }
    if let Some((i, v)) = r.x.iter().enumerate().find(|(_, v)| sx(**v) != **v) {
        return bad(&format!("RV32 x{i} (not sign-extended)"), *v);
    }
    if st.wrap(r.pc) != r.pc || r.pc & 1 != 0 {
        return bad("pc", r.pc);
    }
    if r.fcsr > 0xff {
        return bad("fcsr", u64::from(r.fcsr));
    }
    let prv_ok = match r.prv {
        Priv::Machine => true,
        Priv::Supervisor => st.ext.s,
        Priv::User => st.ext.u,
    };
    if !prv_ok {
        return bad("privilege", r.prv as u64);
    }
    if misa != st.misa {
        return bad("misa", misa);
    }
    // mstatus: only the fields this hart implements; UXL/SXL as reset sets them (read-only);
    // MPP a mode the hart has.
    let mut fields = ms::MIE | ms::MPIE | ms::MPP | ms::FS;
    if st.ext.u {
        fields |= ms::MPRV | ms::TW;
    }
    if st.ext.s {
        fields |= ms::SIE | ms::SPIE | ms::SPP | ms::SUM | ms::MXR | ms::TVM | ms::TSR;
    }
    let mut xl = 0;
    if !rv32 {
        if st.ext.u {
            xl |= 2 << 32;
        }
        if st.ext.s {
            xl |= 2 << 34;
        }
    }
    let mpp_ok = match (mstatus & ms::MPP) >> ms::MPP_SHIFT {
        3 => true,
        1 => st.ext.s,
        0 => st.ext.u,
        _ => false,
    };
    if mstatus & !fields != xl || !mpp_ok {
        return bad("mstatus", mstatus);
    }
    // Delegation only to an S-mode the hart has, of the causes and interrupts that can be.
    let (medeleg_bits, mideleg_bits) = if st.ext.s {
        (0xb3ff, (1 << irq::SSI) | (1 << irq::STI) | (1 << irq::SEI))
    } else {
        (0, 0)
    };
    if medeleg & !medeleg_bits != 0 {
        return bad("medeleg", medeleg);
    }
    if mideleg & !mideleg_bits != 0 {
        return bad("mideleg", mideleg);
    }
    for (name, v) in [("mtvec", mtvec), ("stvec", stvec)] {
        if v & 3 >= 2 || st.wrap(v) != v {
            return bad(name, v);
        }
    }
    let epc_mask = st.wrap(if st.ext.c { !1u64 } else { !3u64 });
    for (name, v) in [("mepc", mepc), ("sepc", sepc)] {
        if v & !epc_mask != 0 {
            return bad(name, v);
        }
    }
    if mcounteren > 0xffff_ffff || scounteren > 0xffff_ffff {
        return bad("counter enable", mcounteren | scounteren);
    }
    if mcountinhibit & !0xffff_fffd != 0 {
        return bad("mcountinhibit", mcountinhibit);
    }
    let stce = if st.ext.sstc { MENVCFG_STCE } else { 0 };
    if menvcfg & !stce != 0 {
        return bad("menvcfg", menvcfg);
    }
    if senvcfg != 0 {
        return bad("senvcfg", senvcfg);
    }
    // satp: Bare on a hart without S; else a supported mode, the PPN in range, no ASID.
    let satp_ok = if !st.ext.s {
        satp == 0
    } else if rv32 {
        satp & !((1u64 << 31) | ((1u64 << 22) - 1)) == 0
    } else {
        matches!(satp >> 60, 0 | 8 | 9) && satp & ((1u64 << 60) - (1u64 << 44)) == 0
    };
    if !satp_ok {
        return bad("satp", satp);
    }
    // PMP: entries past the implemented ones are 0; no reserved bits, no R=0,W=1; addresses
    // within the address register's width.
    let addr_mask = if rv32 { 0xffff_ffff } else { (1u64 << 54) - 1 };
    for (i, (&cfg, &addr)) in r.pmpcfg.iter().zip(r.pmpaddr.iter()).enumerate() {
        let implemented = i < usize::from(st.pmp_entries);
        if (!implemented && (cfg != 0 || addr != 0)) || cfg & 0x60 != 0 || cfg & 3 == 2 {
            return bad(&format!("pmp{i}cfg"), u64::from(cfg));
        }
        if addr & !addr_mask != 0 {
            return bad(&format!("pmpaddr{i}"), addr);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crate::{Hart, HartConfig};

    #[test]
    fn test_hart_state_round_trips_and_rejects_truncation() {
        let mut a = Hart::new(HartConfig::rv64(0, 0x8000_0000));
        a.st.x[5] = 42;
        a.st.pc = 0x8000_1234;
        a.st.mtvec = 0x8000_0100;
        let bytes = a.save_state();
        let mut b = Hart::new(HartConfig::rv64(0, 0x8000_0000));
        b.load_state(&bytes).unwrap();
        assert_eq!(b.save_state(), bytes);
        for n in [0, 3, 10, bytes.len() - 1] {
            assert!(b.load_state(&bytes[..n]).is_err());
        }
        let mut c = Hart::new(HartConfig::rv64(1, 0x8000_0000));
        assert!(c.load_state(&bytes).unwrap_err().contains("hart 0"));
    }

    #[test]
    fn test_stimecmp_is_saved_and_version_1_blobs_still_load() {
        let mut config = HartConfig::rv64(0, 0x8000_0000);
        config.extensions = crate::Extensions::GCSU;
        let mut a = Hart::new(config.clone());
        assert!(a.write_csr(crate::csr::MENVCFG, 1 << 63));
        assert!(a.write_csr(crate::csr::STIMECMP, 0xabcd));
        let bytes = a.save_state();
        let mut b = Hart::new(config.clone());
        b.load_state(&bytes).unwrap();
        assert_eq!(b.read_csr(crate::csr::STIMECMP, 0), Some(0xabcd));
        assert_eq!(b.read_csr(crate::csr::MENVCFG, 0), Some(1 << 63));
        assert_eq!(b.timer_wakeup(), Some(0xabcd));
        // Version 1: no stimecmp at the end.
        let mut v1 = bytes[..bytes.len() - 8].to_vec();
        v1[4..8].copy_from_slice(&1u32.to_le_bytes());
        let mut c = Hart::new(config);
        c.load_state(&v1).unwrap();
        assert_eq!(c.read_csr(crate::csr::STIMECMP, 0), Some(0));
    }

    #[test]
    fn test_snapshot_load_refuses_hart_states_the_hart_cannot_be_in() {
        let mut config = HartConfig::rv64(0, 0x8000_0000);
        config.extensions = crate::Extensions::GCSU;
        let mut a = Hart::new(config.clone());
        a.st.x[5] = 42;
        let good = a.save_state();
        // Offsets: magic 4, version 4, id 8, xlen 1, pc 8, x 32*8, f 32*8, fcsr 4, prv 1, then
        // misa, mstatus, ... (u64 each).
        let pc = 17;
        let x0 = pc + 8;
        let fcsr = x0 + 64 * 8;
        let csr = |i: usize| fcsr + 4 + 1 + 8 * i;
        let set = |off: usize, v: u64| {
            let mut b = good.clone();
            b[off..off + 8].copy_from_slice(&v.to_le_bytes());
            b
        };
        let mpp_reserved = set(csr(1), a.st.mstatus | (2 << 11));
        let cases = [
            set(x0, 1),                            // x0 not zero
            set(pc, 0x8000_0001),                  // odd pc
            set(csr(0), 0),                        // misa of another hart
            mpp_reserved,                          // mstatus.MPP = 2
            set(csr(1), a.st.mstatus ^ (3 << 32)), // UXL changed
            set(csr(6), 0x8000_0002),              // mtvec mode 2
            set(csr(21), 5 << 60),                 // satp mode 5
        ];
        for bad in cases {
            assert!(a.load_state(&bad).is_err());
        }
        let mut b = good.clone();
        b[fcsr..fcsr + 4].copy_from_slice(&0x100u32.to_le_bytes());
        assert!(a.load_state(&b).is_err());
        // Refused states change nothing; the good one still loads.
        assert_eq!(a.save_state(), good);
        a.load_state(&good).unwrap();
    }

    #[test]
    fn test_snapshot_load_refuses_rv32_registers_that_are_not_sign_extended() {
        let mut a = Hart::new(HartConfig::rv32(0, 0x8000_0000));
        a.set_x(1, 0x8000_0000);
        let good = a.save_state();
        let x1 = 17 + 8 + 8;
        let mut bad = good.clone();
        bad[x1..x1 + 8].copy_from_slice(&0x8000_0000u64.to_le_bytes());
        assert!(a.load_state(&bad).unwrap_err().contains("x1"));
        let mut bad = good.clone();
        bad[17..25].copy_from_slice(&0x1_8000_0000u64.to_le_bytes());
        assert!(a.load_state(&bad).is_err());
        a.load_state(&good).unwrap();
        assert_eq!(a.x(1), 0x8000_0000);
    }
}
