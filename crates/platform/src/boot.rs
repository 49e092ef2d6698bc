//! Phases 4-5: the device tree is written after binding, then firmware, kernel, initrd and the
//! DTB are loaded where QEMU's riscv boards put them, the reset ROM is filled in, and devices
//! and harts are reset.
//!
//! Layout (QEMU 7.2 `hw/riscv/boot.c` behaviour): firmware at the start of RAM; the kernel at
//! the first 2 MiB (rv64) / 4 MiB (rv32) boundary after the firmware (ELF kernels at their own
//! addresses); the initrd at kernel + min(RAM/2, 128 MiB); the DTB at the end of the first
//! 3 GiB of RAM, aligned down to 2 MiB.
// Reads guest, file, socket or plugin input: no panicking shortcuts (SECURITY.md, issue 9).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use crate::fdt::{self, Chosen};
use crate::loader::{self, Loaded, Mode};
use crate::machine::{Machine, MachineError, Phase};

/// An image given on the command line (or embedded).
#[derive(Clone, Debug)]
pub struct Image {
    /// Name for messages (the path).
    pub name: String,
    /// Contents.
    pub data: Vec<u8>,
}

/// `-bios`.
#[derive(Clone, Debug, Default)]
pub enum Firmware {
    /// Not given.
    #[default]
    Default,
    /// `-bios none`.
    None,
    /// A file.
    Image(Image),
}

/// Boot images and kernel command line.
#[derive(Clone, Debug, Default)]
pub struct BootOptions {
    /// `-bios`.
    pub firmware: Firmware,
    /// `-kernel`.
    pub kernel: Option<Image>,
    /// `-initrd`.
    pub initrd: Option<Image>,
    /// `-append`.
    pub append: Option<String>,
    /// `-dtb`.
    pub dtb: Option<Image>,
}

/// Where things were put (for `-d` output and tests).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BootLayout {
    /// First instruction after the reset ROM.
    pub entry: u64,
    /// Firmware extent.
    pub firmware: Option<(u64, u64)>,
    /// Kernel extent and entry.
    pub kernel: Option<(u64, u64)>,
    /// Initrd extent.
    pub initrd: Option<(u64, u64)>,
    /// DTB address and size.
    pub dtb: Option<(u64, u64)>,
}

/// What a reboot needs to boot again.
#[derive(Clone, Debug)]
pub struct BootState {
    /// The images.
    pub opts: BootOptions,
    /// Where they go.
    pub layout: BootLayout,
    /// The device tree blob.
    pub dtb: Vec<u8>,
    /// `fw_dynamic_info.next_addr`.
    pub next_stage: u64,
}

/// OpenSBI's `fw_dynamic_info` magic ("OSBI").
const FW_DYNAMIC_MAGIC: u64 = 0x4942_534f;
/// `fw_dynamic_info` version QEMU 7.2 passes.
const FW_DYNAMIC_VERSION: u64 = 2;
/// Next stage runs in S-mode.
const NEXT_MODE_S: u64 = 1;

fn align_up(v: u64, a: u64) -> Option<u64> {
    v.checked_next_multiple_of(a)
}

/// Encodes the reset vector: a2 = &fw_dynamic_info, a0 = mhartid, a1 = DTB, jump to start.
/// Data words follow the six instructions at +24 (start) and +32 (DTB); fw_dynamic_info at +40.
fn reset_vector(xlen64: bool) -> [u32; 6] {
    // auipc t0, 0 ; addi a2, t0, 40 ; csrr a0, mhartid ; l{d,w} a1, 32(t0) ; l{d,w} t0, 24(t0) ; jr t0
    let load = |rd: u32, off: u32| -> u32 {
        let funct3 = if xlen64 { 3 } else { 2 };
        (off << 20) | (5 << 15) | (funct3 << 12) | (rd << 7) | 0x03
    };
    [
        (5 << 7) | 0x17,
        (40 << 20) | (5 << 15) | (12 << 7) | 0x13,
        (0xf14 << 20) | (2 << 12) | (10 << 7) | 0x73,
        load(11, 32),
        load(5, 24),
        (5 << 15) | 0x67,
    ]
}

impl Machine {
    /// Phases 3-5: bind, device tree, load, reset. Moves the machine to `Ready`.
    pub fn finish(&mut self, boot: &BootOptions) -> Result<BootLayout, MachineError> {
        if self.phase != Phase::Initialized {
            return Err(MachineError::Phase {
                what: "finishing machine initialisation".into(),
                need: Phase::Initialized.qemu_name(),
                now: self.phase.qemu_name(),
            });
        }
        self.bind()?;
        let xlen = self.cpu.bits();
        let ram = self.ram;

        // Plan the layout from image sizes first: the device tree needs the initrd's place.
        let firmware = match &boot.firmware {
            Firmware::Image(i) => Some(i),
            Firmware::None => None,
            Firmware::Default => {
                if self.desc.machine.firmware_required {
                    return Err(MachineError::Boot(format!(
                        "machine '{}' needs firmware: give -bios FILE (OpenSBI's fw_dynamic.bin or \
                         fw_jump.elf, e.g. from Debian's 'opensbi' package: \
                         /usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin), or -bios none \
                         with -kernel for bare-metal programs",
                        self.name()
                    )));
                }
                None
            }
        };
        if boot.initrd.is_some() && boot.kernel.is_none() {
            return Err(MachineError::Boot("-initrd requires -kernel".into()));
        }
        let mut layout = BootLayout::default();
        let ram_base = ram.map(|r| r.0);
        let fw_loaded = match firmware {
            Some(img) => {
                Some(self.load_image("bios", img, ram_base, Mode::Check(&self.space), xlen)?)
            }
            None => None,
        };
        layout.firmware = fw_loaded.map(|l| (l.low, l.high));
        let kernel_loaded = match &boot.kernel {
            Some(img) => {
                let addr = match (fw_loaded, ram) {
                    (Some(fw), _) => align_up(fw.high, if xlen == 64 { 2 << 20 } else { 4 << 20 }),
                    (None, Some((base, _))) => Some(base),
                    (None, None) => None,
                };
                Some(self.load_image("kernel", img, addr, Mode::Check(&self.space), xlen)?)
            }
            None => None,
        };
        layout.kernel = kernel_loaded.map(|l| (l.low, l.high));
        if let (Some(img), Some(k), Some((base, size))) = (&boot.initrd, kernel_loaded, ram) {
            let start = k.entry.saturating_add((size / 2).min(128 << 20));
            let end = start.saturating_add(img.data.len() as u64);
            if end > base.saturating_add(size) {
                return Err(MachineError::Boot(format!(
                    "initrd '{}' ({} bytes) does not fit in RAM at {start:#x}",
                    img.name,
                    img.data.len()
                )));
            }
            layout.initrd = Some((start, end));
        }
        self.phase_log.push("layout");

        // Phase 4: every device writes its node (or the user's blob is used as given).
        let chosen = Chosen {
            bootargs: boot.append.clone(),
            initrd: layout.initrd,
        };
        let dtb = match &boot.dtb {
            Some(img) => crate::dtb::merge_user_dtb(self, img, &chosen)?,
            None => fdt::generate(self, &chosen)?,
        };
        self.phase_log.push("fdt");

        // Final placement of the DTB, then phase 5: copy everything in.
        if let Some((base, size)) = ram {
            let top = base.saturating_add(size);
            let limit = if base < 3 << 30 {
                top.min(3 << 30)
            } else {
                top
            };
            let dtb_addr = limit
                .checked_sub(dtb.len() as u64)
                .map(|a| a & !((2 << 20) - 1))
                .filter(|&a| a >= base)
                .ok_or_else(|| MachineError::Boot("the device tree does not fit in RAM".into()))?;
            layout.dtb = Some((dtb_addr, dtb.len() as u64));
        }
        layout.entry = fw_loaded
            .or(kernel_loaded)
            .map(|l| l.entry)
            .or(self.desc.cpu.reset_pc)
            .or(ram_base)
            .unwrap_or(0);
        let next_stage = if fw_loaded.is_some() {
            kernel_loaded.map_or(0, |k| k.entry)
        } else {
            0
        };
        self.boot = Some(BootState {
            opts: boot.clone(),
            layout: layout.clone(),
            dtb,
            next_stage,
        });
        self.load_all()?;
        self.phase_log.push("load");
        let pages = std::rc::Rc::clone(&self.code_pages);
        self.dma
            .set_write_notifier(std::rc::Rc::new(move |a, l| pages.note_write(a, l)));
        self.phase = Phase::Ready;
        self.phase_log.push("ready");
        Ok(layout)
    }

    /// Copies firmware, kernel, initrd, DTB and the reset ROM into memory and resets devices
    /// and harts. Used at first boot and on every guest reboot.
    pub fn load_all(&mut self) -> Result<(), MachineError> {
        let Some(st) = self.boot.clone() else {
            return Err(MachineError::Boot(
                "machine has no boot configuration".into(),
            ));
        };
        let xlen = self.cpu.bits();
        let ram_base = self.ram.map(|r| r.0);
        if let Firmware::Image(img) = &st.opts.firmware {
            self.load_image("bios", img, ram_base, Mode::Write(&self.space), xlen)?;
        }
        if let (Some(img), Some((low, _))) = (&st.opts.kernel, st.layout.kernel) {
            self.load_image("kernel", img, Some(low), Mode::Write(&self.space), xlen)?;
        }
        if let (Some(img), Some((start, _))) = (&st.opts.initrd, st.layout.initrd) {
            loader::load_raw(
                "initrd",
                &img.name,
                &img.data,
                start,
                Mode::Write(&self.space),
            )?;
        }
        if let Some((addr, _)) = st.layout.dtb {
            loader::load_raw("dtb", "<dtb>", &st.dtb, addr, Mode::Write(&self.space))?;
        }
        let dtb_addr = st.layout.dtb.map_or(0, |d| d.0);
        if let Some(rom) = self.desc.machine.reset_rom {
            let mut bytes = Vec::new();
            for w in reset_vector(xlen == 64) {
                bytes.extend_from_slice(&w.to_le_bytes());
            }
            let words = [st.layout.entry, dtb_addr];
            // fw_dynamic_info: magic, version, next_addr, next_mode, options, boot_hart,
            // each an unsigned long.
            let info = [
                FW_DYNAMIC_MAGIC,
                FW_DYNAMIC_VERSION,
                st.next_stage,
                NEXT_MODE_S,
                0,
                0,
            ];
            for v in words {
                bytes.extend_from_slice(&v.to_le_bytes());
            }
            for v in info {
                if xlen == 64 {
                    bytes.extend_from_slice(&v.to_le_bytes());
                } else {
                    bytes.extend_from_slice(&(v as u32).to_le_bytes());
                }
            }
            loader::load_raw("reset rom", "<mrom>", &bytes, rom, Mode::Write(&self.space))?;
        }
        self.reset_devices();
        self.code_pages.note_write(0, u64::MAX);
        let pc = self.desc.machine.reset_rom.unwrap_or(st.layout.entry);
        for (h, hart) in self.harts.iter_mut().enumerate() {
            hart.reset();
            hart.set_pc(pc);
            hart.set_x(10, h as u64);
            hart.set_x(11, dtb_addr);
        }
        Ok(())
    }

    /// The device tree as it would be generated now (`dumpdtb`).
    pub fn dump_dtb(&mut self, append: Option<&str>) -> Result<Vec<u8>, MachineError> {
        if self.phase < Phase::Ready {
            self.bind()?;
        }
        fdt::generate(
            self,
            &Chosen {
                bootargs: append.map(str::to_string),
                initrd: None,
            },
        )
    }

    fn load_image(
        &self,
        what: &'static str,
        img: &Image,
        raw_addr: Option<u64>,
        space: Mode<'_>,
        xlen: u32,
    ) -> Result<Loaded, MachineError> {
        if loader::is_elf(&img.data) {
            return Ok(loader::load_elf(what, &img.name, &img.data, space, xlen)?);
        }
        let addr = raw_addr.ok_or_else(|| {
            MachineError::Boot(format!(
                "{what} '{}' is a raw image but machine '{}' has no RAM to put it in",
                img.name,
                self.name()
            ))
        })?;
        Ok(loader::load_raw(what, &img.name, &img.data, addr, space)?)
    }
}

#[cfg(test)]
mod tests {
    use super::reset_vector;

    #[test]
    fn test_reset_vector_encodings_match_the_isa() {
        let v = reset_vector(true);
        assert_eq!(v[0], 0x0000_0297, "auipc t0, 0");
        assert_eq!(v[1], 0x0282_8613, "addi a2, t0, 40");
        assert_eq!(v[2], 0xf140_2573, "csrr a0, mhartid");
        assert_eq!(v[3], 0x0202_b583, "ld a1, 32(t0)");
        assert_eq!(v[4], 0x0182_b283, "ld t0, 24(t0)");
        assert_eq!(v[5], 0x0002_8067, "jr t0");
        let v32 = reset_vector(false);
        assert_eq!(v32[3], 0x0202_a583, "lw a1, 32(t0)");
        assert_eq!(v32[4], 0x0182_a283, "lw t0, 24(t0)");
    }
}
