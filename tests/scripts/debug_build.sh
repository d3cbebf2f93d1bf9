#!/usr/bin/env bash
# The debug build (make debug: debug/liblite-malloc-shared.so, LITE_MALLOC_DEBUG=1):
#  - it catches what it is for: a write after free into a free block's link aborts at the
#    next malloc with lite-malloc's "invariant" line, where the release build says nothing
#    (src/debug_probe.c); a correct run of the same program passes;
#  - the release library has none of its checks (no "invariant" string in it);
#  - a set of unit tests (the fast ones, and those that exercise remote frees, adoption,
#    hosts and fork) pass against it, with its invariants checked on every slow path.
set -euo pipefail
source "$(dirname "$0")/src/common.bash"
require_libs
DBG=$TOP/debug
[ -e "$DBG/liblite-malloc-shared.so" ] || fail "$DBG/liblite-malloc-shared.so is missing: run make debug"
grep -q 'invariant' "$DBG/liblite-malloc-shared.so" || fail "the debug library has no invariant checks"
! grep -q 'free list corrupted' "$TOP/liblite-malloc-shared.so" || fail "the release library carries the debug checks"

build "$SCRATCH/b.log" "$CC" -O1 -g -Wall "$SRC/debug_probe.c" -o "$SCRATCH/probe"
run_logged "$SCRATCH/ok.log" env LD_PRELOAD="$DBG/liblite-malloc-shared.so" "$SCRATCH/probe" ok
expect_output "$SCRATCH/ok.log" '^debug_probe: ok$'
rc=0; env LD_PRELOAD="$DBG/liblite-malloc-shared.so" "$SCRATCH/probe" uaf-link >"$SCRATCH/uaf.log" 2>&1 || rc=$?
[ $rc = 134 ] || fail "debug build, write after free: exit $rc, expected 134 (abort): $(cat "$SCRATCH/uaf.log")"
expect_output "$SCRATCH/uaf.log" '^lite-malloc: invariant\(\): free list corrupted \(a write after free\?\) at 0x[0-9a-f]+$'
rc=0; env LD_PRELOAD="$TOP/liblite-malloc-shared.so" "$SCRATCH/probe" uaf-link >"$SCRATCH/uaf-release.log" 2>&1 || rc=$?
! grep -q invariant "$SCRATCH/uaf-release.log" || fail "the release build checked an invariant"
note "a write after free into a free block's link: the debug build aborts naming it (the release build: exit $rc, silent)"

UNITS=(api align_sweep canary_values claim_race fork_heaps large_merge large_realloc medium_realloc producer_consumer slot_runs
       remote_stranding stress_patterns threads_random)
for u in "${UNITS[@]}"; do
    build "$SCRATCH/b.log" "$CC" -std=gnu11 -O1 -g -pthread -Wall -I"$TOP" "$TOP/tests/unit/$u.c" -o "$SCRATCH/$u" \
        -L"$TOP" -llite-malloc-shared
    t0=$SECONDS
    # The debug library has the release one's soname: LD_LIBRARY_PATH picks it.
    run_logged "$SCRATCH/$u.log" env LD_LIBRARY_PATH="$DBG" "$SCRATCH/$u"
    grep -q "$DBG/liblite-malloc-shared.so" <(LD_LIBRARY_PATH="$DBG" ldd "$SCRATCH/$u") \
        || fail "unit/$u did not load the debug library"
    note "unit/$u passed against the debug build ($((SECONDS - t0))s)"
done
note "PASS"
