//! Finding the Rust SDK example plugins this package builds as cdylib examples.

#![allow(clippy::expect_used, clippy::panic, dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// `target/<profile>/examples/lib<name>.so`. A full `cargo test` builds examples before it runs
/// tests; `cargo test --test X` does not, so then they are built here (cargo does not hold
/// its lock while tests run).
pub fn rust_plugin(name: &str) -> PathBuf {
    static BUILD: Mutex<()> = Mutex::new(());
    let exe = std::env::current_exe().expect("exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let p = profile_dir.join("examples").join(format!("lib{name}.so"));
    let _guard = BUILD
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !p.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = std::process::Command::new(cargo);
        cmd.args(["build", "-p", "breadboard-plugin-host", "--examples"]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let st = cmd.status().expect("run cargo");
        assert!(
            st.success() && p.exists(),
            "could not build {}",
            p.display()
        );
    }
    p
}
