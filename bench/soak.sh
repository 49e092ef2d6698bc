#!/usr/bin/env bash
# Random guest code soak (issue 9): SEEDS seeds x SECONDS s each (default 64 x 10) of random
# 16/32-bit instructions in M, S and U mode on `virt` with every virtio device, on the real main
# loop with QMP `query-status` every 60 ms (answers must come within 1 s). Prints one line per
# seed and a summary line; exits non-zero on a host panic, a trap that contradicts the ISA or a
# late/missing QMP answer. Engine: crates/breadboard/examples/soak.rs.
#
# usage: bench/soak.sh [SEEDS] [SECONDS] [FIRST_SEED]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --release --locked -p breadboard --example soak >&2
target=${CARGO_TARGET_DIR:-$root/target}
exec "$target/release/examples/soak" "${1:-64}" "${2:-10}" "${3:-0}"
