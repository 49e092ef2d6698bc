//! `breadboard,checksum-engine`: a DMA-capable CRC-32 engine, the example of a vfio-user
//! platform device that reads and writes guest RAM and raises a level interrupt.
//!
//! Region 0 (0x100 bytes, registers through messages; 32-bit accesses, little-endian):
//!
//! | offset | name         | access | meaning                                              |
//! |--------|--------------|--------|------------------------------------------------------|
//! | 0x00   | ID           | RO     | [`ID_MAGIC`] (`0x4342_4253`, "SBBC" in memory order)  |
//! | 0x04   | VERSION      | RO     | 1                                                    |
//! | 0x08   | CTRL         | RW     | bit 0 IRQ_EN: raise IRQ 0 while STATUS has DONE/ERROR |
//! | 0x0c   | STATUS       | RO/W1C | bit 0 DONE, bit 1 ERROR; write 1 to clear             |
//! | 0x10   | DESC_ADDR_LO | RW     | descriptor guest physical address, bits 31:0         |
//! | 0x14   | DESC_ADDR_HI | RW     | descriptor guest physical address, bits 63:32        |
//! | 0x18   | DOORBELL     | WO     | any write runs the descriptor (reads 0)              |
//! | 0x1c   | RESULT       | RO     | CRC-32 of the last successful job                    |
//! | 0x20   | ERROR_CODE   | RO     | why the last job failed ([`ErrorCode`]), 0 if it did not |
//! | 0x24   | JOBS         | RO     | jobs completed successfully since reset              |
//!
//! Descriptor (24 bytes in guest RAM, little-endian):
//!
//! | offset | size | field | meaning                                         |
//! |--------|------|-------|-------------------------------------------------|
//! | 0x00   | 8    | src   | guest physical address of the data              |
//! | 0x08   | 4    | len   | bytes to checksum, at most [`MAX_LEN`] (1 MiB)  |
//! | 0x0c   | 4    | flags | must be 0 (reserved)                            |
//! | 0x10   | 8    | dst   | guest physical address the u32 result is written to |
//!
//! Region 1 (0x1000 bytes, mmap'able scratch SRAM): the guest uses it freely; after each
//! successful job the engine stores RESULT at 0x0 and JOBS at 0x4 (little-endian).
//!
//! IRQ 0 (level) = CTRL.IRQ_EN && STATUS & (DONE | ERROR).

use std::os::fd::BorrowedFd;

use breadboard_vfio_user::server::{
    AccessError, DeviceContext, DtHints, IrqKind, PlatformDevice, RegionSpec, SharedMemory,
    ShmError,
};

use crate::crc32::crc32;

/// Value of the ID register.
pub const ID_MAGIC: u32 = 0x4342_4253;
/// Register block size.
pub const REGS_SIZE: u64 = 0x100;
/// Scratch SRAM size.
pub const SRAM_SIZE: u64 = 0x1000;
/// Longest source a descriptor may name.
pub const MAX_LEN: u32 = 1 << 20;
/// Descriptor size in guest RAM.
pub const DESC_SIZE: usize = 24;

/// Register offsets.
pub mod reg {
    /// ID (RO).
    pub const ID: u64 = 0x00;
    /// VERSION (RO).
    pub const VERSION: u64 = 0x04;
    /// CTRL (RW).
    pub const CTRL: u64 = 0x08;
    /// STATUS (W1C).
    pub const STATUS: u64 = 0x0c;
    /// DESC_ADDR_LO.
    pub const DESC_LO: u64 = 0x10;
    /// DESC_ADDR_HI.
    pub const DESC_HI: u64 = 0x14;
    /// DOORBELL (WO).
    pub const DOORBELL: u64 = 0x18;
    /// RESULT (RO).
    pub const RESULT: u64 = 0x1c;
    /// ERROR_CODE (RO).
    pub const ERROR_CODE: u64 = 0x20;
    /// JOBS (RO).
    pub const JOBS: u64 = 0x24;
}

/// CTRL.IRQ_EN.
pub const CTRL_IRQ_EN: u32 = 1 << 0;
/// STATUS.DONE.
pub const STATUS_DONE: u32 = 1 << 0;
/// STATUS.ERROR.
pub const STATUS_ERROR: u32 = 1 << 1;

/// ERROR_CODE values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ErrorCode {
    /// No error.
    None = 0,
    /// The descriptor could not be read (not in guest RAM the client shared).
    DescFault = 1,
    /// `len` is larger than [`MAX_LEN`].
    TooLong = 2,
    /// The source could not be read.
    SrcFault = 3,
    /// The result could not be written to `dst`.
    DstFault = 4,
    /// `flags` has reserved bits set.
    BadFlags = 5,
}

/// The engine.
#[derive(Debug)]
pub struct ChecksumEngine {
    ctrl: u32,
    status: u32,
    desc: u64,
    result: u32,
    error: ErrorCode,
    jobs: u32,
    sram: SharedMemory,
}

impl ChecksumEngine {
    /// A powered-on engine with its scratch SRAM.
    pub fn new() -> Result<Self, ShmError> {
        Ok(Self {
            ctrl: 0,
            status: 0,
            desc: 0,
            result: 0,
            error: ErrorCode::None,
            jobs: 0,
            sram: SharedMemory::new("checksum-sram", SRAM_SIZE)?,
        })
    }

    fn update_irq(&self, ctx: &mut DeviceContext<'_>) {
        let high = self.ctrl & CTRL_IRQ_EN != 0 && self.status & (STATUS_DONE | STATUS_ERROR) != 0;
        ctx.irq.set_level(0, high);
    }

    fn reg_read(&self, offset: u64) -> u32 {
        match offset {
            reg::ID => ID_MAGIC,
            reg::VERSION => 1,
            reg::CTRL => self.ctrl,
            reg::STATUS => self.status,
            reg::DESC_LO => self.desc as u32,
            reg::DESC_HI => (self.desc >> 32) as u32,
            reg::RESULT => self.result,
            reg::ERROR_CODE => self.error as u32,
            reg::JOBS => self.jobs,
            _ => 0,
        }
    }

    fn reg_write(&mut self, ctx: &mut DeviceContext<'_>, offset: u64, v: u32) {
        match offset {
            reg::CTRL => self.ctrl = v & CTRL_IRQ_EN,
            reg::STATUS => self.status &= !(v & (STATUS_DONE | STATUS_ERROR)),
            reg::DESC_LO => self.desc = (self.desc & !0xffff_ffff) | u64::from(v),
            reg::DESC_HI => self.desc = (self.desc & 0xffff_ffff) | (u64::from(v) << 32),
            reg::DOORBELL => self.run(ctx),
            reg::ID | reg::VERSION | reg::RESULT | reg::ERROR_CODE | reg::JOBS => {
                tracing::warn!(target: "guest_error", "checksum: write to read-only register {offset:#x}");
            }
            _ => {
                tracing::warn!(target: "guest_error", "checksum: write to unknown register {offset:#x}");
            }
        }
        self.update_irq(ctx);
    }

    /// Run the job the descriptor names; the outcome lands in STATUS/RESULT/ERROR_CODE.
    fn run(&mut self, ctx: &mut DeviceContext<'_>) {
        match self.job(ctx) {
            Ok(crc) => {
                self.result = crc;
                self.error = ErrorCode::None;
                self.jobs = self.jobs.wrapping_add(1);
                self.status |= STATUS_DONE;
                let mut last = [0u8; 8];
                last[..4].copy_from_slice(&crc.to_le_bytes());
                last[4..].copy_from_slice(&self.jobs.to_le_bytes());
                // The SRAM is 4 KiB; 8 bytes at 0 always fit.
                if let Err(e) = self.sram.write(0, &last) {
                    tracing::warn!(target: "vfio_user", "checksum: SRAM write failed: {e}");
                }
            }
            Err(code) => {
                tracing::warn!(target: "guest_error", "checksum: job failed: {code:?}");
                self.error = code;
                self.status |= STATUS_ERROR;
            }
        }
    }

    fn job(&mut self, ctx: &mut DeviceContext<'_>) -> Result<u32, ErrorCode> {
        let mut d = [0u8; DESC_SIZE];
        ctx.dma
            .read(self.desc, &mut d)
            .map_err(|_| ErrorCode::DescFault)?;
        let field = |r: std::ops::Range<usize>| -> u64 {
            let mut b = [0u8; 8];
            if let (Some(dst), Some(src)) = (b.get_mut(..r.len()), d.get(r)) {
                dst.copy_from_slice(src);
            }
            u64::from_le_bytes(b)
        };
        let src = field(0..8);
        let len = field(8..12) as u32;
        let flags = field(12..16) as u32;
        let dst = field(16..24);
        if flags != 0 {
            return Err(ErrorCode::BadFlags);
        }
        if len > MAX_LEN {
            return Err(ErrorCode::TooLong);
        }
        let mut data = vec![0u8; len as usize];
        ctx.dma
            .read(src, &mut data)
            .map_err(|_| ErrorCode::SrcFault)?;
        let crc = crc32(&data);
        ctx.dma
            .write(dst, &crc.to_le_bytes())
            .map_err(|_| ErrorCode::DstFault)?;
        Ok(crc)
    }
}

impl PlatformDevice for ChecksumEngine {
    fn regions(&self) -> Vec<RegionSpec> {
        vec![RegionSpec::mmio(REGS_SIZE), RegionSpec::mapped(SRAM_SIZE)]
    }

    fn irqs(&self) -> Vec<IrqKind> {
        vec![IrqKind::Level]
    }

    fn dt_hints(&self) -> DtHints {
        DtHints::compatible(&["breadboard,checksum-engine"])
    }

    fn region_fd(&self, index: u32) -> Option<(BorrowedFd<'_>, u64)> {
        (index == 1).then(|| (self.sram.fd(), 0))
    }

    fn read(
        &mut self,
        _ctx: &mut DeviceContext<'_>,
        region: u32,
        offset: u64,
        data: &mut [u8],
    ) -> Result<(), AccessError> {
        match region {
            0 => {
                if data.len() != 4 || !offset.is_multiple_of(4) {
                    tracing::warn!(target: "guest_error",
                        "checksum: {}-byte read at {offset:#x} (registers are 32-bit)", data.len());
                    data.fill(0);
                    return Ok(());
                }
                data.copy_from_slice(&self.reg_read(offset).to_le_bytes());
                Ok(())
            }
            1 => self
                .sram
                .read(offset, data)
                .map_err(|_| AccessError::OutOfRange {
                    region,
                    offset,
                    len: data.len(),
                }),
            _ => Err(AccessError::NoRegion(region)),
        }
    }

    fn write(
        &mut self,
        ctx: &mut DeviceContext<'_>,
        region: u32,
        offset: u64,
        data: &[u8],
    ) -> Result<(), AccessError> {
        match region {
            0 => {
                let Ok(bytes) = <[u8; 4]>::try_from(data) else {
                    tracing::warn!(target: "guest_error",
                        "checksum: {}-byte write at {offset:#x} ignored", data.len());
                    return Ok(());
                };
                if !offset.is_multiple_of(4) {
                    tracing::warn!(target: "guest_error", "checksum: unaligned write at {offset:#x}");
                    return Ok(());
                }
                self.reg_write(ctx, offset, u32::from_le_bytes(bytes));
                Ok(())
            }
            1 => self
                .sram
                .write(offset, data)
                .map_err(|_| AccessError::OutOfRange {
                    region,
                    offset,
                    len: data.len(),
                }),
            _ => Err(AccessError::NoRegion(region)),
        }
    }

    fn reset(&mut self, ctx: &mut DeviceContext<'_>) {
        self.ctrl = 0;
        self.status = 0;
        self.desc = 0;
        self.result = 0;
        self.error = ErrorCode::None;
        self.jobs = 0;
        self.sram.clear();
        self.update_irq(ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use breadboard_vfio_user::server::testing::{FakeDma, RecordingIrqs, context};

    const RAM: u64 = 0x8000_0000;

    struct Rig {
        dev: ChecksumEngine,
        dma: FakeDma,
        irq: RecordingIrqs,
    }

    impl Rig {
        fn new() -> Self {
            Self {
                dev: ChecksumEngine::new().unwrap(),
                dma: FakeDma::new(RAM, 0x10_0000 + 0x2000),
                irq: RecordingIrqs::new(1),
            }
        }
        fn w(&mut self, off: u64, v: u32) {
            let mut ctx = context(&mut self.dma, &mut self.irq);
            self.dev.write(&mut ctx, 0, off, &v.to_le_bytes()).unwrap();
        }
        fn r(&mut self, off: u64) -> u32 {
            let mut ctx = context(&mut self.dma, &mut self.irq);
            let mut b = [0; 4];
            self.dev.read(&mut ctx, 0, off, &mut b).unwrap();
            u32::from_le_bytes(b)
        }
        fn desc(&mut self, at: u64, src: u64, len: u32, flags: u32, dst: u64) {
            let mut d = Vec::new();
            d.extend_from_slice(&src.to_le_bytes());
            d.extend_from_slice(&len.to_le_bytes());
            d.extend_from_slice(&flags.to_le_bytes());
            d.extend_from_slice(&dst.to_le_bytes());
            self.dma.put(at, &d);
            self.w(reg::DESC_LO, at as u32);
            self.w(reg::DESC_HI, (at >> 32) as u32);
        }
    }

    #[test]
    fn test_checksum_id_and_version() {
        let mut rig = Rig::new();
        assert_eq!(rig.r(reg::ID), ID_MAGIC);
        assert_eq!(rig.r(reg::VERSION), 1);
        assert_eq!(rig.r(reg::DOORBELL), 0);
    }

    #[test]
    fn test_checksum_job_writes_crc_to_dst_and_sram_and_raises_irq() {
        let mut rig = Rig::new();
        rig.dma.put(RAM + 0x1000, b"123456789");
        rig.desc(RAM, RAM + 0x1000, 9, 0, RAM + 0x2000);
        rig.w(reg::CTRL, CTRL_IRQ_EN);
        rig.w(reg::DOORBELL, 1);
        assert_eq!(rig.r(reg::STATUS), STATUS_DONE);
        assert_eq!(rig.r(reg::RESULT), 0xcbf4_3926);
        assert_eq!(rig.dma.bytes(RAM + 0x2000, 4), 0xcbf4_3926u32.to_le_bytes());
        assert!(rig.irq.level(0));
        let mut sram = [0u8; 8];
        let mut ctx = context(&mut rig.dma, &mut rig.irq);
        rig.dev.read(&mut ctx, 1, 0, &mut sram).unwrap();
        assert_eq!(sram[..4], 0xcbf4_3926u32.to_le_bytes());
        assert_eq!(sram[4..], 1u32.to_le_bytes());
    }

    #[test]
    fn test_checksum_status_write_one_to_clear_lowers_irq() {
        let mut rig = Rig::new();
        rig.desc(RAM, RAM + 0x1000, 0, 0, RAM + 0x2000);
        rig.w(reg::CTRL, CTRL_IRQ_EN);
        rig.w(reg::DOORBELL, 1);
        assert!(rig.irq.level(0));
        rig.w(reg::STATUS, 0);
        assert!(rig.irq.level(0), "writing 0 clears nothing");
        rig.w(reg::STATUS, STATUS_DONE);
        assert_eq!(rig.r(reg::STATUS), 0);
        assert!(!rig.irq.level(0));
        // CRC of nothing is 0.
        assert_eq!(rig.r(reg::RESULT), 0);
    }

    #[test]
    fn test_checksum_without_irq_enable_stays_low() {
        let mut rig = Rig::new();
        rig.desc(RAM, RAM + 0x1000, 4, 0, RAM + 0x2000);
        rig.w(reg::DOORBELL, 1);
        assert_eq!(rig.r(reg::STATUS), STATUS_DONE);
        assert!(!rig.irq.level(0));
        // Enabling with DONE pending raises it.
        rig.w(reg::CTRL, CTRL_IRQ_EN);
        assert!(rig.irq.level(0));
    }

    #[test]
    fn test_checksum_too_long_is_an_error_without_reading_src() {
        let mut rig = Rig::new();
        rig.desc(RAM, RAM + 0x1000, MAX_LEN + 1, 0, RAM + 0x2000);
        rig.dma.log.clear();
        rig.w(reg::CTRL, CTRL_IRQ_EN);
        rig.w(reg::DOORBELL, 1);
        assert_eq!(rig.r(reg::STATUS), STATUS_ERROR);
        assert_eq!(rig.r(reg::ERROR_CODE), ErrorCode::TooLong as u32);
        assert_eq!(
            rig.dma.log,
            [(RAM, DESC_SIZE, false)],
            "only the descriptor was read"
        );
        assert!(rig.irq.level(0), "errors interrupt too");
    }

    #[test]
    fn test_checksum_faults_are_reported_by_code() {
        let mut rig = Rig::new();
        // Descriptor outside RAM.
        rig.w(reg::DESC_LO, 0x10);
        rig.w(reg::DESC_HI, 0);
        rig.w(reg::DOORBELL, 1);
        assert_eq!(rig.r(reg::ERROR_CODE), ErrorCode::DescFault as u32);
        // Source outside RAM.
        rig.desc(RAM, 0x10, 4, 0, RAM + 0x2000);
        rig.w(reg::DOORBELL, 1);
        assert_eq!(rig.r(reg::ERROR_CODE), ErrorCode::SrcFault as u32);
        // Destination outside RAM.
        rig.desc(RAM, RAM + 0x1000, 4, 0, u64::MAX - 1);
        rig.w(reg::DOORBELL, 1);
        assert_eq!(rig.r(reg::ERROR_CODE), ErrorCode::DstFault as u32);
        // Reserved flags.
        rig.desc(RAM, RAM + 0x1000, 4, 1, RAM + 0x2000);
        rig.w(reg::DOORBELL, 1);
        assert_eq!(rig.r(reg::ERROR_CODE), ErrorCode::BadFlags as u32);
        assert_eq!(rig.r(reg::JOBS), 0);
        // A good job afterwards clears ERROR_CODE but not the sticky ERROR bit.
        rig.desc(RAM, RAM + 0x1000, 4, 0, RAM + 0x2000);
        rig.w(reg::DOORBELL, 1);
        assert_eq!(rig.r(reg::ERROR_CODE), 0);
        assert_eq!(rig.r(reg::STATUS), STATUS_DONE | STATUS_ERROR);
        assert_eq!(rig.r(reg::JOBS), 1);
    }

    #[test]
    fn test_checksum_odd_accesses_read_zero_and_are_ignored() {
        let mut rig = Rig::new();
        let mut ctx = context(&mut rig.dma, &mut rig.irq);
        let mut b = [0xffu8; 2];
        rig.dev.read(&mut ctx, 0, reg::ID, &mut b).unwrap();
        assert_eq!(b, [0, 0]);
        rig.dev.write(&mut ctx, 0, reg::CTRL, &[1]).unwrap();
        rig.dev
            .write(&mut ctx, 0, reg::CTRL + 1, &[1, 0, 0, 0])
            .unwrap();
        assert_eq!(rig.r(reg::CTRL), 0);
        let mut ctx = context(&mut rig.dma, &mut rig.irq);
        assert_eq!(
            rig.dev.read(&mut ctx, 2, 0, &mut [0; 4]),
            Err(AccessError::NoRegion(2))
        );
        assert!(
            rig.dev
                .read(&mut ctx, 1, SRAM_SIZE - 2, &mut [0; 4])
                .is_err()
        );
    }

    #[test]
    fn test_checksum_reset_clears_state_and_lowers_irq() {
        let mut rig = Rig::new();
        rig.desc(RAM, RAM + 0x1000, 4, 0, RAM + 0x2000);
        rig.w(reg::CTRL, CTRL_IRQ_EN);
        rig.w(reg::DOORBELL, 1);
        assert!(rig.irq.level(0));
        let mut ctx = context(&mut rig.dma, &mut rig.irq);
        rig.dev.reset(&mut ctx);
        assert!(!rig.irq.level(0));
        assert_eq!(rig.r(reg::STATUS), 0);
        assert_eq!(rig.r(reg::CTRL), 0);
        assert_eq!(rig.r(reg::DESC_LO), 0);
        assert_eq!(rig.r(reg::JOBS), 0);
    }
}
