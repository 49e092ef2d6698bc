//! Command-line parsing (QEMU-style options and QemuOpts `key=value,...` lists). The parser is
//! a module of the binary crate; it and the two modules it uses (chardev specs, log items) are
//! included here by path. Parsing touches no files or sockets. Input: NUL-separated arguments.
#![no_main]
#![allow(dead_code, unused_imports)]

#[path = "../../crates/breadboard/src/chardev.rs"]
mod chardev;
#[path = "../../crates/breadboard/src/cli.rs"]
mod cli;
#[path = "../../crates/breadboard/src/logging.rs"]
mod logging;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let args: Vec<String> = text.split('\0').map(str::to_string).collect();
    if args.len() > 64 {
        return;
    }
    let r = cli::parse(&args);
    if let Err(e) = &r {
        // Every error renders as one message line.
        let _ = e.to_string();
    }
});
