//! Helpers shared by the QMP integration tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A fresh temporary directory for one test.
pub fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bb-qmp-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("tempdir");
    d
}

/// The `breadboard` binary built beside this test (`target/<profile>/breadboard`), if any.
pub fn binary() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("BREADBOARD_BIN") {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    // target/<profile>/deps/<test> → target/<profile>/breadboard
    let dir = exe.parent()?.parent()?;
    let bin = dir.join("breadboard");
    bin.exists().then_some(bin)
}
