//! QMP session layer: framing, capabilities negotiation and request checking. Every complete
//! message gets exactly one action; replies are single JSON lines.
#![no_main]
use breadboard_qmp::protocol::{Action, Session};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut s = Session::new();
    // Start negotiated half the time so dispatch-level checks are reached quickly.
    if data.first().is_some_and(|b| b & 1 == 1) {
        let _ = s.feed(b"{\"execute\":\"qmp_capabilities\"}");
        assert!(s.negotiated());
    }
    for chunk in data.get(1..).unwrap_or_default().split(|&b| b == 0xff) {
        for a in s.feed(chunk) {
            match a {
                Action::Reply(line) => {
                    assert!(line.ends_with("\r\n") || line.ends_with('\n'));
                    let body = line.trim_end();
                    assert!(!body.contains('\n'), "reply spans lines");
                    let v: serde_json::Value = serde_json::from_str(body).expect("reply is JSON");
                    assert!(v.is_object());
                }
                Action::Execute(r) => {
                    assert!(s.negotiated(), "command executed before negotiation");
                    assert!(r.arguments.len() < 1 << 20);
                }
            }
        }
    }
});
