//! ELF loader: arbitrary bytes as a kernel/firmware ELF, placement checked (Mode::Check)
//! against a small address space with RAM and a hole; must return Ok or an error.
#![no_main]
use std::rc::Rc;

use breadboard_core::{AddressSpace, RamBlock, Region, RegionKind};
use breadboard_platform::loader::{Mode, load_elf};
use libfuzzer_sys::fuzz_target;

thread_local! {
    static SPACE: AddressSpace = {
        let mut s = AddressSpace::new();
        for (name, base, size, readonly) in [
            ("rom", 0x1000u64, 0x1000u64, true),
            ("ram", 0x8000_0000, 0x10_0000, false),
        ] {
            s.add(Region {
                name: name.into(),
                base,
                size,
                kind: RegionKind::Ram {
                    block: Rc::new(RamBlock::new(name, size).expect("alloc")),
                    readonly,
                },
                owner: None,
            })
            .expect("map");
        }
        s
    };
}

fuzz_target!(|data: &[u8]| {
    SPACE.with(|s| {
        for xlen in [32, 64] {
            let _ = load_elf("kernel", "fuzz.elf", data, Mode::Check(s), xlen);
            let _ = load_elf("kernel", "fuzz.elf", data, Mode::Write(s), xlen);
        }
    });
});
