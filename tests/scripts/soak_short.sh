#!/usr/bin/env bash
# Short soak (about 25 s): the workload of `make soak` (tests/soak/soak.c) under
# LD_PRELOAD=liblite-malloc-shared.so for 20 s with a report every 5 s and a 128 MiB live
# set, with the same checks (patterns verified before every free/realloc and in a final
# sweep, alignment, calloc zero, realloc preservation, RSS flat after the warm-up).
# Then a positive control: with the corruption test flag (one byte of a live block flipped
# after a few thousand calls) the soak must fail with exit status 1 and report exactly the
# block and offset that were flipped.
set -euo pipefail
source "$(dirname "$0")/src/common.bash"
require_libs
for v in "${!SOAK_@}"; do unset "$v"; done  # the caller's soak settings do not apply here

LITE=$TOP/liblite-malloc-shared.so
SOAK=$SCRATCH/soak
build "$SCRATCH/build.log" "$CC" -std=gnu11 -O2 -g -pthread -Wall -Wextra -I"$TOP" \
    "$TOP/tests/soak/soak.c" -o "$SOAK" -lm -ldl

note "20 s soak under lite-malloc"
rc=0
env LD_PRELOAD="$LITE" SOAK_EXPECT_ALLOC=lite SOAK_INTERVAL=5 SOAK_MAX_LIVE_MB=128 \
    "$SOAK" 20 >"$SCRATCH/soak.log" 2>&1 || rc=$?
cat "$SCRATCH/soak.log"
[ $rc -eq 0 ] || fail "soak exited with status $rc"
expect_output "$SCRATCH/soak.log" '^soak: allocator: lite-malloc'
expect_output "$SCRATCH/soak.log" '^soak: PASS'
lines=$(grep -c '^soak: t=' "$SCRATCH/soak.log" || true)
[ "$lines" -ge 4 ] || fail "expected at least 4 report lines, got $lines"

note "positive control: corruption test flag"
rc=0
env LD_PRELOAD="$LITE" SOAK_EXPECT_ALLOC=lite SOAK_INTERVAL=5 SOAK_MAX_LIVE_MB=64 \
    SOAK_CORRUPT_AFTER=5000 "$SOAK" 10 >"$SCRATCH/corrupt.log" 2>&1 || rc=$?
cat "$SCRATCH/corrupt.log"
[ $rc -eq 1 ] || fail "the soak with a corrupted block exited with status $rc, not 1"
expect_output "$SCRATCH/corrupt.log" '^soak: FAIL \(corruption detected\)'
injected=$(sed -n 's/^soak: test flag: injected corruption into block \(0x[0-9a-f]*\) at offset \([0-9]*\) .*/\1+\2/p' "$SCRATCH/corrupt.log")
detected=$(sed -n 's/^soak: CORRUPTION in block \(0x[0-9a-f]*\) at offset \([0-9]*\) .*/\1+\2/p' "$SCRATCH/corrupt.log")
[ -n "$injected" ] || fail "no corruption was injected"
[ "$injected" = "$detected" ] || fail "injected at $injected but the report names '$detected'"
note "corruption injected at $injected was detected"
note "PASS"
