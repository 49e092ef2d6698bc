#!/usr/bin/env bash
# The test command (README): installs what the tests need on a fresh Debian 12 machine, then
# runs the whole suite. Safe to rerun; installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v dtc >/dev/null || need_apt+=(device-tree-compiler)
command -v gdb-multiarch >/dev/null || need_apt+=(gdb-multiarch)
command -v mkfs.ext2 >/dev/null && command -v debugfs >/dev/null || need_apt+=(e2fsprogs)
command -v cc >/dev/null || need_apt+=(gcc)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "== installing: ${need_apt[*]}"
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends "${need_apt[@]}"
fi

# QEMU's own QMP clients (qemu.qmp: QMPClient and qmp-shell) for tests/qmp/test_qemu_qmp.py.
if ! python3 -c "import qemu.qmp" 2>/dev/null; then
    echo "== installing: qemu.qmp (pip)"
    python3 -m pip install --quiet qemu.qmp
fi

# Guest images used by end-to-end tests (read-only, beside the repository).
export BREADBOARD_GUESTS="${BREADBOARD_GUESTS:-$(cd .. && pwd)/shared/guests}"

echo "== cargo build (release binary used by end-to-end tests)"
cargo build --release --workspace --all-targets --locked 2>&1 | tail -n 3
echo "== cargo clippy (modules that read untrusted input deny the panicking lints)"
clippy_log=$(mktemp)
if ! cargo clippy --release --workspace --all-targets --locked >"$clippy_log" 2>&1; then
    grep -A12 "^error" "$clippy_log" | head -n 80
    echo "clippy: denied lints (see above)"
    exit 1
fi
rm -f "$clippy_log"
echo "== cargo test"
cargo test --release --workspace --locked
