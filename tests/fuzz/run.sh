#!/usr/bin/env bash
# Fuzz lite-malloc's API with libFuzzer (the `make fuzz` target).
#   bash tests/fuzz/run.sh [SECONDS]     default: $FUZZ_SECONDS, else 60
# Builds tests/build/fuzz/fuzz_ops (see build.bash for the sanitizers), then fuzzes for
# SECONDS with the grown corpus in tests/build/fuzz/corpus (not committed), seeded from
# the committed inputs in tests/fuzz/corpus and tests/fuzz/regress.  Prints executions,
# exec/s and coverage (cov: / ft: of libFuzzer's last status line).
# A crash (or leak) input is kept in tests/build/fuzz/artifacts and copied to
# tests/fuzz/regress/ (FUZZ_NO_REGRESS=1: do not copy), where tests/scripts/fuzz_regress.sh
# replays it on every `make test`; then this script exits 1.  Timeouts and out-of-memory
# inputs are kept in the artifacts directory only, and also make it exit 1 (slow-unit-*
# files, inputs that took over 30 s, are only listed).
# Environment: FUZZ_SANITIZERS, FUZZ_EXTRA_CFLAGS (build.bash), FUZZ_ARGS (more libFuzzer
# options, e.g. "-jobs=2 -workers=2"), FUZZ_NO_BUILD=1 (reuse the binary).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
OUT=$TOP/tests/build/fuzz
SECS=${1:-${FUZZ_SECONDS:-60}}
[[ $SECS =~ ^[0-9]+$ ]] || { echo "usage: $0 [SECONDS]" >&2; exit 2; }
source "$HERE/build.bash"

mkdir -p "$OUT/corpus" "$OUT/artifacts" "$HERE/regress"
EXE=$OUT/fuzz_ops
if [ "${FUZZ_NO_BUILD:-0}" != 1 ] || [ ! -x "$EXE" ]; then
    echo "[fuzz] building $EXE"
    fuzz_build "$EXE" "$OUT/build.log"
fi

before=$(ls "$OUT/artifacts")
LOG=$OUT/fuzz.log
echo "[fuzz] fuzzing for ${SECS}s; log: $LOG"
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
rc=0
# shellcheck disable=SC2086
"$EXE" -max_total_time="$SECS" -timeout=120 -report_slow_units=30 -rss_limit_mb=4096 -max_len=4096 \
    -print_final_stats=1 -artifact_prefix="$OUT/artifacts/" ${FUZZ_ARGS:-} \
    "$OUT/corpus" "$HERE/corpus" "$HERE/regress" >"$LOG" 2>&1 || rc=$?

last=$(grep -E '^#[0-9]+' "$LOG" | tail -n 1 || true)
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$LOG" | tail -n 1)
eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$LOG" | tail -n 1)
cov=$(grep -oE 'cov: [0-9]+' <<<"$last" | awk '{print $2}' || true)
ft=$(grep -oE 'ft: [0-9]+' <<<"$last" | awk '{print $2}' || true)
corp=$(grep -oE 'corp: [0-9]+/[0-9]+[a-zA-Z]*' <<<"$last" | awk '{print $2}' || true)
echo "[fuzz] last status: ${last:-none}"
echo "[fuzz] executions: ${execs:-?}  exec/s: ${eps:-?}  cov: ${cov:-?}  ft: ${ft:-?}  corpus: ${corp:-?}"

new=()
for f in "$OUT"/artifacts/*; do
    [ -e "$f" ] || continue
    grep -qxF "$(basename "$f")" <<<"$before" || new+=("$f")
done
bad=0
for f in "${new[@]}"; do
    case $(basename "$f") in slow-unit-*) echo "[fuzz] slow input (not a failure): $f"; continue ;; esac
    bad=1
    echo "[fuzz] FOUND: $f"
    case $(basename "$f") in
        crash-*|leak-*)
            if [ "${FUZZ_NO_REGRESS:-0}" != 1 ]; then
                cp "$f" "$HERE/regress/"
                echo "[fuzz]   copied to tests/fuzz/regress/$(basename "$f") (replayed by tests/scripts/fuzz_regress.sh)"
            fi ;;
    esac
done
if [ $bad -ne 0 ] || [ $rc -ne 0 ]; then
    grep -E 'fuzz_ops: check failed|runtime error|ERROR: |lite-malloc: |SUMMARY' "$LOG" | head -n 20 || true
    echo "[fuzz] FAILED (libFuzzer exit $rc); reproduce with: $EXE <input>; minimize with:"
    echo "       $EXE -minimize_crash=1 -runs=10000 -exact_artifact_path=min.bin <input>"
    exit 1
fi
echo "[fuzz] no crash"
