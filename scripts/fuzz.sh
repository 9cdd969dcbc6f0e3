#!/usr/bin/env bash
# Runs every libFuzzer target (listed by the clang build in
# BUILD/fuzz_targets.txt) for SECONDS each, starting from the checked-in seed
# corpus in tests/fuzz/corpus/NAME/, and prints one table. New inputs go to
# BUILD/fuzz-work/NAME (kept between runs, never into the source tree); a
# crashing input is saved as BUILD/fuzz-artifacts/NAME-crash-* and the script
# fails. Usage: scripts/fuzz.sh BUILD SECONDS
set -euo pipefail
BUILD=${1:-build-fuzz}
SECS=${2:-60}
SRC=$(cd "$(dirname "$0")/.." && pwd)
list=$BUILD/fuzz_targets.txt
[ -s "$list" ] || { echo "fuzz.sh: no $list (build with clang: make build-fuzz)" >&2; exit 1; }
mkdir -p "$BUILD/fuzz-artifacts"
failed=0
printf '| target | seconds | executions | exec/s | corpus units | result |\n|---|---:|---:|---:|---:|---|\n' >"$BUILD/fuzz-table.md"
while read -r t; do
    [ -n "$t" ] || continue
    work=$BUILD/fuzz-work/$t
    log=$BUILD/fuzz-work/$t.log
    mkdir -p "$work"
    echo "fuzz.sh: $t for ${SECS}s" >&2
    result=ok
    if ! "$BUILD/tests/$t" -max_total_time="$SECS" -print_final_stats=1 -max_len=4096 -timeout=10 \
        -rss_limit_mb=2048 -artifact_prefix="$BUILD/fuzz-artifacts/$t-" "$work" "$SRC/tests/fuzz/corpus/$t" \
        >"$log" 2>&1; then
        result="FAILED (see $log)"
        failed=1
        tail -40 "$log" >&2
    fi
    execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log" | tail -1)
    rate=$(awk '/stat::average_exec_per_sec/ {print $2}' "$log" | tail -1)
    units=$(find "$work" -type f | wc -l)
    printf '| %s | %s | %s | %s | %s | %s |\n' "$t" "$SECS" "${execs:-?}" "${rate:-?}" "$units" "$result" >>"$BUILD/fuzz-table.md"
done <"$list"
cat "$BUILD/fuzz-table.md"
exit $failed
