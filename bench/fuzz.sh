#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS (default 30) each and prints a table:
# target, executions/s, coverage (libFuzzer's final cov/ft), crashes (crash/timeout/oom
# artifacts). Exits non-zero if any target crashed or failed to run.
#
# usage: bench/fuzz.sh [SECONDS] [TARGET...]
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`). Builds into
# $CARGO_TARGET_DIR (default: target-fuzz at the repository root). Seeds come from
# fuzz/corpus/<target>; new inputs go to a scratch copy so the checked-in seeds stay small.
# Limits per input follow the acceptance bar: 25 s timeout, 2.5 GB RSS.
# Set FUZZ_WORK to keep the scratch corpora and artifacts somewhere else (default: a temp dir).
# Set FUZZ_JOBS=N to run N targets at a time (default 1; CI uses 2 on its 2 cores).
set -euo pipefail

secs=${1:-30}
shift || true
root=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target-fuzz}
work=${FUZZ_WORK:-$(mktemp -d -t bb-fuzz.XXXXXX)}
mkdir -p "$work"

cd "$root/fuzz"
if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

echo "building ${#targets[@]} targets ..." >&2
build_start=$(date +%s)
cargo +nightly fuzz build -O >&2
echo "built in $(( $(date +%s) - build_start )) s" >&2

triple=$(rustc +nightly -vV | sed -n 's/^host: //p')
bindir=$CARGO_TARGET_DIR/$triple/release

jobs=${FUZZ_JOBS:-1}

# One target: writes its table row to $work/$t.row and its status (0 ok, 1 failed) to
# $work/$t.status.
run_one() {
    local t=$1
    local corpus=$work/corpus/$t
    local arts=$work/artifacts/$t
    mkdir -p "$corpus" "$arts"
    if [ -d "$root/fuzz/corpus/$t" ]; then
        cp -n "$root/fuzz/corpus/$t"/* "$corpus"/ 2>/dev/null || true
    fi
    local log=$work/$t.log
    echo "running $t for ${secs}s ..." >&2
    local rc=0
    "$bindir/$t" "$corpus" -max_total_time="$secs" -timeout=25 -rss_limit_mb=2560 \
        -print_final_stats=1 -artifact_prefix="$arts/" >"$log" 2>&1 || rc=$?
    local execs runs last cov ft crashes
    execs=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    # The last status line with coverage figures (`#N DONE cov: X ft: Y ...` or the last pulse).
    last=$(grep -aE '^#[0-9]+.*cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)
    cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$last")
    crashes=$(find "$arts" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'timeout-*' \
        -o -name 'oom-*' -o -name 'leak-*' \) | wc -l)
    if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then
        crashes="error(rc=$rc)"
    fi
    local status=0
    if [ "$rc" -ne 0 ] || [ "$crashes" != 0 ]; then
        status=1
        echo "  $t FAILED: see $log and $arts" >&2
    fi
    printf '%-18s %10s %12s %8s %8s %s\n' "$t" "${execs:-?}" "${runs:-?}" \
        "${cov:-?}" "${ft:-?}" "$crashes" >"$work/$t.row"
    echo "$status" >"$work/$t.status"
}

for t in "${targets[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
        wait -n || true
    done
    run_one "$t" &
done
wait

failed=0
rows=()
for t in "${targets[@]}"; do
    rows+=("$(cat "$work/$t.row" 2>/dev/null || printf '%-18s error(no result)' "$t")")
    [ "$(cat "$work/$t.status" 2>/dev/null || echo 1)" = 0 ] || failed=1
done

echo
echo "fuzz: ${secs}s per target ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, $jobs target(s) at a time)"
printf '%-18s %10s %12s %8s %8s %s\n' target "exec/s" runs cov ft crashes
for r in "${rows[@]}"; do echo "$r"; done
echo "logs, corpora and artifacts: $work" >&2
exit "$failed"
