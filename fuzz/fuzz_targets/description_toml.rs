//! Machine description TOML: arbitrary text must parse or fail with an error, never panic.
#![no_main]
use breadboard_platform::description::Description;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Description::parse(text, "fuzz.toml");
    }
});
