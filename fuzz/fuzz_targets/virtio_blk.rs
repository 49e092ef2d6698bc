//! virtio-blk behind virtio-mmio, backed by a small raw image: fuzzed transport register
//! accesses and guest RAM contents (request headers, sectors, chains, malformed descriptors).
#![no_main]
#[path = "../common/virtiobench.rs"]
mod virtiobench;
use std::rc::Rc;

use breadboard_core::{BlockBackend, DriveRegistry};
use libfuzzer_sys::fuzz_target;
use virtiobench::{Input, VirtioBench};

thread_local! {
    static IMAGE: std::path::PathBuf = {
        let p = std::env::temp_dir().join(format!("bb-fuzz-blk-{}.img", std::process::id()));
        std::fs::write(&p, vec![0x5au8; 64 * 1024]).expect("image");
        p
    };
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let readonly = flags & 1 == 1;
    IMAGE.with(|p| {
        let drives = DriveRegistry::default();
        let d = BlockBackend::open("d0", p, readonly).expect("open drive");
        drives.add(d).expect("add drive");
        let b = VirtioBench::new(
            &breadboard_devices::virtio::blk::device_type(),
            &[("drive", "d0")],
            &drives,
        );
        b.run(&mut Input(rest));
        let _ = Rc::strong_count(&b.mem);
    });
});
