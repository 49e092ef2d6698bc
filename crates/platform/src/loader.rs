//! Loading guest images: ELF (with the `object` crate) and raw binaries, including Linux's
//! RISC-V `Image` header. Every byte lands in RAM or ROM: a segment that misses memory or
//! touches MMIO is an error naming the file, the segment and the address.
// Reads guest, file, socket or plugin input: no panicking shortcuts (SECURITY.md, issue 9).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;

use breadboard_core::AddressSpace;
use object::Endianness;
use object::elf;
use object::read::elf::{FileHeader, ProgramHeader};
use thiserror::Error;

/// Errors loading an image.
#[derive(Debug, Error)]
pub enum LoadError {
    /// The file can't be read.
    #[error("could not load {what} '{path}': {source}")]
    Read {
        /// kernel, bios, initrd …
        what: &'static str,
        /// File.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Malformed or truncated ELF.
    #[error("{what} '{path}' is not a valid ELF file: {message}")]
    BadElf {
        /// Role.
        what: &'static str,
        /// File.
        path: String,
        /// Parser message.
        message: String,
    },
    /// ELF for another architecture.
    #[error("{what} '{path}' is not a RISC-V ELF (e_machine {machine})")]
    NotRiscv {
        /// Role.
        what: &'static str,
        /// File.
        path: String,
        /// The machine number found.
        machine: u16,
    },
    /// ELF class doesn't match the hart.
    #[error("{what} '{path}' is a {found}-bit ELF but the harts are {want}-bit")]
    WrongClass {
        /// Role.
        what: &'static str,
        /// File.
        path: String,
        /// ELF class bits.
        found: u32,
        /// Hart bits.
        want: u32,
    },
    /// A segment doesn't fit in memory.
    #[error(
        "{what} '{path}': segment {index} at {addr:#x} (size {size:#x}) does not fit in RAM or ROM: {reason}"
    )]
    Placement {
        /// Role.
        what: &'static str,
        /// File.
        path: String,
        /// Segment number.
        index: usize,
        /// Load address.
        addr: u64,
        /// Bytes.
        size: u64,
        /// Why.
        reason: String,
    },
    /// The file has no loadable segment.
    #[error("{what} '{path}' has no loadable segments")]
    Empty {
        /// Role.
        what: &'static str,
        /// File.
        path: String,
    },
}

/// What was loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loaded {
    /// Entry point (ELF `e_entry`, or the load address for raw images).
    pub entry: u64,
    /// Lowest loaded address.
    pub low: u64,
    /// One past the highest loaded address.
    pub high: u64,
    /// Whether it was an ELF.
    pub elf: bool,
}

/// Reads a file for role `what`.
pub fn read_file(what: &'static str, path: &Path) -> Result<Vec<u8>, LoadError> {
    std::fs::read(path).map_err(|e| LoadError::Read {
        what,
        path: path.display().to_string(),
        source: e,
    })
}

/// Whether `data` starts like an ELF file.
pub fn is_elf(data: &[u8]) -> bool {
    data.starts_with(&elf::ELFMAG)
}

/// Whether `data` is a Linux RISC-V `Image` (magic "RSC\x05" at 0x38).
pub fn is_linux_image(data: &[u8]) -> bool {
    data.get(0x38..0x3c) == Some(b"RSC\x05")
}

/// Whether a load writes memory or only checks that it would fit (the layout pass that runs
/// before the device tree is written).
#[derive(Clone, Copy)]
pub enum Mode<'a> {
    /// Copy bytes in.
    Write(&'a AddressSpace),
    /// Only check placement.
    Check(&'a AddressSpace),
}

impl Mode<'_> {
    fn put(&self, addr: u64, bytes: &[u8]) -> Result<(), breadboard_core::AccessError> {
        match self {
            Mode::Write(s) => s.load_bytes(addr, bytes),
            Mode::Check(s) => s.check_ram(addr, bytes.len() as u64),
        }
    }

    fn zero(&self, addr: u64, len: u64) -> Result<(), breadboard_core::AccessError> {
        match self {
            Mode::Write(s) => {
                s.check_ram(addr, len)?;
                let zeros = vec![
                    0u8;
                    usize::try_from(len)
                        .map_err(|_| breadboard_core::AccessError::Unmapped(addr))?
                ];
                s.load_bytes(addr, &zeros)
            }
            Mode::Check(s) => s.check_ram(addr, len),
        }
    }
}

fn load_segments<H: FileHeader<Endian = Endianness>>(
    what: &'static str,
    path: &str,
    data: &[u8],
    space: Mode<'_>,
) -> Result<Loaded, LoadError> {
    let bad = |m: object::read::Error| LoadError::BadElf {
        what,
        path: path.to_string(),
        message: m.to_string(),
    };
    let header = H::parse(data).map_err(bad)?;
    let endian = header.endian().map_err(bad)?;
    let machine = header.e_machine(endian);
    if machine != elf::EM_RISCV {
        return Err(LoadError::NotRiscv {
            what,
            path: path.to_string(),
            machine,
        });
    }
    let mut low = u64::MAX;
    let mut high = 0u64;
    for (index, ph) in header
        .program_headers(endian, data)
        .map_err(bad)?
        .iter()
        .enumerate()
    {
        if ph.p_type(endian) != elf::PT_LOAD {
            continue;
        }
        let addr: u64 = ph.p_paddr(endian).into();
        let memsz: u64 = ph.p_memsz(endian).into();
        let filesz: u64 = ph.p_filesz(endian).into();
        if memsz == 0 {
            continue;
        }
        let place_err = |reason: String| LoadError::Placement {
            what,
            path: path.to_string(),
            index,
            addr,
            size: memsz,
            reason,
        };
        if filesz > memsz {
            return Err(place_err("file size is larger than memory size".into()));
        }
        let bytes = ph.data(endian, data).map_err(|()| LoadError::BadElf {
            what,
            path: path.to_string(),
            message: format!("segment {index} runs past the end of the file"),
        })?;
        let end = addr
            .checked_add(memsz)
            .ok_or_else(|| place_err("it wraps the address space".into()))?;
        space
            .put(addr, bytes)
            .map_err(|e| place_err(e.to_string()))?;
        if memsz > filesz {
            // The range is checked to be RAM before the zero buffer is made, so a huge memsz in
            // a hostile file can't make us allocate more than the guest has.
            space
                .zero(addr + filesz, memsz - filesz)
                .map_err(|e| place_err(e.to_string()))?;
        }
        low = low.min(addr);
        high = high.max(end);
    }
    if low == u64::MAX {
        return Err(LoadError::Empty {
            what,
            path: path.to_string(),
        });
    }
    Ok(Loaded {
        entry: header.e_entry(endian).into(),
        low,
        high,
        elf: true,
    })
}

/// Loads an ELF file's segments (at their physical addresses) and returns the entry point.
/// `xlen` is the harts' width (32 or 64) and must match the ELF class.
pub fn load_elf(
    what: &'static str,
    path: &str,
    data: &[u8],
    space: Mode<'_>,
    xlen: u32,
) -> Result<Loaded, LoadError> {
    // e_ident[EI_CLASS] is byte 4 of the file.
    let class = data.get(4).copied();
    let found = match class {
        Some(elf::ELFCLASS64) => 64,
        Some(elf::ELFCLASS32) => 32,
        _ => {
            return Err(LoadError::BadElf {
                what,
                path: path.to_string(),
                message: "unknown ELF class".into(),
            });
        }
    };
    if found != xlen {
        return Err(LoadError::WrongClass {
            what,
            path: path.to_string(),
            found,
            want: xlen,
        });
    }
    if found == 64 {
        load_segments::<elf::FileHeader64<Endianness>>(what, path, data, space)
    } else {
        load_segments::<elf::FileHeader32<Endianness>>(what, path, data, space)
    }
}

/// Loads raw bytes at `addr`.
pub fn load_raw(
    what: &'static str,
    path: &str,
    data: &[u8],
    addr: u64,
    space: Mode<'_>,
) -> Result<Loaded, LoadError> {
    let size = data.len() as u64;
    space.put(addr, data).map_err(|e| LoadError::Placement {
        what,
        path: path.to_string(),
        index: 0,
        addr,
        size,
        reason: e.to_string(),
    })?;
    Ok(Loaded {
        entry: addr,
        low: addr,
        high: addr.saturating_add(size),
        elf: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use breadboard_core::{RamBlock, Region, RegionKind};
    use std::rc::Rc;

    fn space() -> AddressSpace {
        let mut s = AddressSpace::new();
        s.add(Region {
            name: "ram".into(),
            base: 0x8000_0000,
            size: 0x10_0000,
            kind: RegionKind::Ram {
                block: Rc::new(RamBlock::new("ram", 0x10_0000).expect("ram")),
                readonly: false,
            },
            owner: None,
        })
        .expect("map");
        s
    }

    /// A minimal 64-bit RISC-V ELF with one PT_LOAD of `code` at `addr`.
    pub(crate) fn tiny_elf(addr: u64, code: &[u8], machine: u16) -> Vec<u8> {
        let mut f = vec![0u8; 64 + 56];
        f[..4].copy_from_slice(&elf::ELFMAG);
        f[4] = elf::ELFCLASS64;
        f[5] = elf::ELFDATA2LSB;
        f[6] = 1;
        f[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        f[18..20].copy_from_slice(&machine.to_le_bytes());
        f[20..24].copy_from_slice(&1u32.to_le_bytes());
        f[24..32].copy_from_slice(&addr.to_le_bytes()); // entry
        f[32..40].copy_from_slice(&64u64.to_le_bytes()); // phoff
        f[52..54].copy_from_slice(&64u16.to_le_bytes()); // ehsize
        f[54..56].copy_from_slice(&56u16.to_le_bytes()); // phentsize
        f[56..58].copy_from_slice(&1u16.to_le_bytes()); // phnum
        let ph = 64;
        f[ph..ph + 4].copy_from_slice(&elf::PT_LOAD.to_le_bytes());
        f[ph + 8..ph + 16].copy_from_slice(&120u64.to_le_bytes()); // offset
        f[ph + 16..ph + 24].copy_from_slice(&addr.to_le_bytes());
        f[ph + 24..ph + 32].copy_from_slice(&addr.to_le_bytes());
        f[ph + 32..ph + 40].copy_from_slice(&(code.len() as u64).to_le_bytes());
        f[ph + 40..ph + 48].copy_from_slice(&(code.len() as u64 + 16).to_le_bytes());
        f.extend_from_slice(code);
        f
    }

    #[test]
    fn test_elf_loads_and_zero_fills() {
        let s = space();
        s.load_bytes(0x8000_0004, &[0xff; 32]).expect("dirty");
        let e = tiny_elf(0x8000_0000, &[0x13, 0, 0, 0], elf::EM_RISCV);
        let l = load_elf("kernel", "k.elf", &e, Mode::Write(&s), 64).expect("load");
        assert_eq!(l.entry, 0x8000_0000);
        assert_eq!((l.low, l.high), (0x8000_0000, 0x8000_0014));
        assert_eq!(s.read(0x8000_0000, 4), Ok(0x13));
        assert_eq!(s.read(0x8000_0004, 8), Ok(0), "bss is zeroed");
    }

    #[test]
    fn test_elf_errors_are_specific() {
        let s = space();
        let x86 = tiny_elf(0x8000_0000, &[0; 4], elf::EM_X86_64);
        assert_eq!(
            load_elf("kernel", "k", &x86, Mode::Write(&s), 64)
                .unwrap_err()
                .to_string(),
            "kernel 'k' is not a RISC-V ELF (e_machine 62)"
        );
        let good = tiny_elf(0x8000_0000, &[0; 4], elf::EM_RISCV);
        assert!(matches!(
            load_elf("kernel", "k", &good[..70], Mode::Write(&s), 64),
            Err(LoadError::BadElf { .. })
        ));
        assert!(matches!(
            load_elf("kernel", "k", &good, Mode::Write(&s), 32),
            Err(LoadError::WrongClass { .. })
        ));
        let outside = tiny_elf(0x1000, &[0; 4], elf::EM_RISCV);
        let e = load_elf("kernel", "k", &outside, Mode::Check(&s), 64)
            .unwrap_err()
            .to_string();
        assert!(e.contains("segment 0 at 0x1000"), "{e}");
        assert!(matches!(
            load_elf("kernel", "k", b"\x7fELF", Mode::Write(&s), 64),
            Err(LoadError::BadElf { .. })
        ));
    }

    #[test]
    fn test_raw_load_checks_range() {
        let s = space();
        assert!(load_raw("bios", "b", &[1, 2, 3], 0x8000_0000, Mode::Write(&s)).is_ok());
        assert!(load_raw("bios", "b", &[1, 2, 3], 0x800f_ffff, Mode::Check(&s)).is_err());
    }
}
