//! QMP JSON stream parser: arbitrary bytes fed in arbitrary chunks must never panic, and
//! chunking must not change what is parsed.
#![no_main]
use breadboard_qmp::json::{JsonStreamer, Message};
use libfuzzer_sys::fuzz_target;

fn run(chunks: &[&[u8]]) -> Vec<String> {
    let mut s = JsonStreamer::new();
    let mut out: Vec<Message> = Vec::new();
    for c in chunks {
        s.feed(c, &mut out);
    }
    out.iter()
        .map(|m| match m {
            Ok(v) => breadboard_qmp::json::to_json(v),
            Err(e) => format!("ERR {e}"),
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else { return };
    let whole = run(&[rest]);
    let cut = usize::from(split).min(rest.len());
    let (a, b) = rest.split_at(cut);
    let parts = run(&[a, b]);
    assert_eq!(whole, parts, "chunking changed the parse");
    let bytewise: Vec<&[u8]> = rest.chunks(1).collect();
    if rest.len() < 512 {
        assert_eq!(whole, run(&bytewise), "byte-at-a-time changed the parse");
    }
});
