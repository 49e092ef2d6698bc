//! Runs `tests/qmp/test_qemu_qmp.py` (QEMU's own `qemu.qmp` client and `qmp-shell` against
//! the breadboard binary). Needs Python with `qemu.qmp` (scripts/test.sh installs it) and the
//! built binary; both missing are failures, not skips.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

#[test]
fn qemu_qmp_clients_drive_breadboard() {
    let bin = common::binary()
        .expect("the breadboard binary must be built first (scripts/test.sh builds the workspace)");
    let have = Command::new("python3")
        .args(["-c", "import qemu.qmp"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        have,
        "python3 with qemu.qmp is required (scripts/test.sh installs it: pip install qemu.qmp)"
    );
    let out = Command::new("python3")
        .arg(common::repo().join("tests/qmp/test_qemu_qmp.py"))
        .env("BREADBOARD_BIN", &bin)
        .current_dir(common::repo())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}{stderr}");
    assert!(out.status.success(), "test_qemu_qmp.py failed");
}
