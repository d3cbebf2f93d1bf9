#!/usr/bin/env bash
# Replays the fuzzer's committed inputs: every file in tests/fuzz/corpus (hand-made seeds)
# and tests/fuzz/regress (inputs that once crashed; tests/fuzz/run.sh adds them) is run
# through the libFuzzer target tests/fuzz/fuzz_ops.cpp, built as for fuzzing (ASan + UBSan,
# see tests/fuzz/build.bash), without fuzzing: `fuzz_ops -runs=3 FILE...` executes each
# input three times (the op stream is split among up to 4 threads, so the allocator's
# interleaving varies between runs).  Any crash, check failure, sanitizer report or leak
# fails the test.  Positive control: with FUZZ_OPS_SELFTEST=1 the input
# tests/fuzz/selftest/corrupt_then_check flips a byte of a live block, and the harness's
# pattern check must catch it (the same input must pass without the variable).
set -euo pipefail
source "$(dirname "$0")/src/common.bash"
source "$TOP/tests/fuzz/build.bash"
[ -e "$TOP/lite-malloc.cpp" ] || fail "$TOP/lite-malloc.cpp is missing"

EXE=$SCRATCH/fuzz_ops
fuzz_build "$EXE" "$SCRATCH/build.log" || fail "could not build the fuzzer (needs clang and libclang-rt-14-dev)"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export ASAN_OPTIONS="detect_leaks=1"
CONTROL=$TOP/tests/fuzz/selftest/corrupt_then_check

# the control input runs cleanly as it is (this also catches a fuzzer that cannot start)...
run_logged "$SCRATCH/control_off.log" "$EXE" "$CONTROL"
# ...and the positive control: with the corruption enabled the check must fire
rc=0; FUZZ_OPS_SELFTEST=1 "$EXE" "$CONTROL" >"$SCRATCH/control.log" 2>&1 || rc=$?
if [ $rc -eq 0 ] || ! grep -q 'fuzz_ops: check failed' "$SCRATCH/control.log"; then
    tail -n 30 "$SCRATCH/control.log" >&2
    fail "the deliberately corrupted block was not detected (exit $rc)"
fi
note "positive control: $(grep -m1 'fuzz_ops: check failed' "$SCRATCH/control.log" | cut -c1-90)..."

inputs=()
for f in "$TOP"/tests/fuzz/corpus/* "$TOP"/tests/fuzz/regress/*; do
    [ -f "$f" ] && inputs+=("$f")
done
[ ${#inputs[@]} -gt 0 ] || fail "no inputs in tests/fuzz/corpus or tests/fuzz/regress"
note "replaying ${#inputs[@]} input(s) 3 times each"
start=$SECONDS rc=0
"$EXE" -runs=3 "${inputs[@]}" >"$SCRATCH/replay.log" 2>&1 || rc=$?
if [ $rc -ne 0 ]; then
    grep -E 'Running: ' "$SCRATCH/replay.log" | tail -n 1 >&2 || true
    grep -E -A25 'fuzz_ops: check failed|runtime error|ERROR: |lite-malloc: ' "$SCRATCH/replay.log" | head -n 60 >&2 || true
    fail "an input failed (exit $rc); log: $SCRATCH/replay.log; decode with tests/fuzz/decode.py FILE"
fi
ran=$(grep -c '^Executed ' "$SCRATCH/replay.log" || true)
[ "$ran" -eq ${#inputs[@]} ] || fail "expected ${#inputs[@]} inputs to run, libFuzzer reports $ran"
note "PASS: ${#inputs[@]} inputs, $((SECONDS - start))s"
