//! User DTB parser: arbitrary blobs parse or fail; what parses and re-serialises reads back the
//! same tree. Also turns the blob into a board description (`-M dtb-board` path).
#![no_main]
use breadboard_core::TypeRegistry;
use breadboard_platform::dtb::{Dtb, description_from_dtb};
use libfuzzer_sys::fuzz_target;

thread_local! {
    static REG: TypeRegistry = {
        let mut r = TypeRegistry::new();
        breadboard_devices::register_builtin(&mut r);
        r
    };
}

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = Dtb::parse(data) {
        if let Ok(out) = t.to_blob() {
            assert_eq!(Dtb::parse(&out).as_ref(), Ok(&t), "written blob reads back differently");
        }
    }
    REG.with(|r| {
        let _ = description_from_dtb(data, "fuzz.dtb", r, true);
        let _ = description_from_dtb(data, "fuzz.dtb", r, false);
    });
});
