//! Hart architectural state for snapshots: a versioned little-endian byte format (no serde).
//!
//! Layout (version 1): magic `HART`, u32 version, u64 hart id, u8 xlen (32/64), then pc, the
//! 32 x and 32 f registers, fcsr, privilege, the M/S CSRs, PMP, instret and counter offsets,
//! and `waiting`. Version 2 appends Sstc's `stimecmp` (version 1 blobs load with it 0; STCE is in
//! `menvcfg`, STIP in the software-pending bits). Caches (decoded code, TLB, LR reservation) are
//! not saved: they are rebuilt.

use crate::hart::Hart;
use crate::insn::Xlen;
use crate::state::Priv;

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
}
