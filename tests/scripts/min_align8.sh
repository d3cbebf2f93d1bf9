#!/usr/bin/env bash
# The LITE_MALLOC_MIN_ALIGN=8 build's double-free caveat, as the README states it: "Every
# double free is caught (small blocks by the canary, medium and large ones by their
# headers), except in the LITE_MALLOC_MIN_ALIGN=8 build, whose 8-byte blocks have no room
# for a canary (there only a double free of the block freed last is caught)."
# So, with that build preloaded into src/bad_ptr.c, each of these must abort with a line
# naming lite-malloc and the pointer:
#   double_med, double_big   a medium and a large block freed twice (headers);
#   double8                  an 8-byte block freed twice in a row (the block freed last);
#   double                   a 32-byte block freed twice in a row (the block freed last).
# (An earlier small block freed again is the caveat's uncaught case: not tested.)
#
# KNOWN BUG (exit 78, counted by tests/run.sh): today the MIN_ALIGN=8 build catches no
# double free of a small block at all, not even of the block freed last: the canary is
# compiled out for every block (kCanary = kGrain >= 16) and the fast path of free() has no
# other check.  Either the library checks the canary in blocks of 16 bytes or more and
# compares with the free-list head, or the README must say that this build catches no small
# double free.  When double and double8 abort, this script fails until KNOWN_BUG below is
# set to 0 (the check is then a plain one).
set -euo pipefail
source "$(dirname "$0")/src/common.bash"
require_libs
ulimit -c 0
KNOWN_BUG=1

dir=$SCRATCH/lib
mkdir -p "$dir"
cp "$TOP"/lite-malloc.cpp "$TOP"/lite-malloc.h "$TOP"/lite-hooks.h "$TOP"/Makefile "$TOP"/lite-malloc.pc.in "$dir"/
build "$SCRATCH/make.log" make -C "$dir" CONFIG=-DLITE_MALLOC_MIN_ALIGN=8 CC="$CC" CXX="$CXX" liblite-malloc-shared.so
grep -q -- '-DLITE_MALLOC_MIN_ALIGN=8.*-c lite-malloc.cpp' "$SCRATCH/make.log" || fail "the define is not on the compile line"
build "$SCRATCH/build.log" "$CC" -std=gnu11 -O0 -g -pthread -Wall -Wno-free-nonheap-object \
    -Wno-use-after-free -Wno-unknown-warning-option "$SRC/bad_ptr.c" -o "$SCRATCH/bad_plain"
PRELOAD=(env LD_PRELOAD="$dir/liblite-malloc-shared.so")

# the build is the 8-byte one: some 24-byte blocks are not 16-aligned
build "$SCRATCH/build.log" "$CC" -std=gnu11 -O1 -x c - -o "$SCRATCH/align8" <<'C'
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
int main(void) { int odd = 0; for (int i = 0; i < 100; i++) odd += ((uintptr_t)malloc(24) & 15) != 0; printf("%d\n", odd); return 0; }
C
odd=$("${PRELOAD[@]}" "$SCRATCH/align8")
[ "$odd" -gt 0 ] || fail "no 24-byte block off 16 bytes: this is not the MIN_ALIGN=8 build"
note "MIN_ALIGN=8 build: $odd of 100 24-byte blocks are not 16-aligned"

for c in double_med double_big; do expect_abort "$c" "${PRELOAD[@]}" "$SCRATCH/bad_plain" "$c"; done

missed=()
for c in double8 double; do
    if lite_abort "$c" "${PRELOAD[@]}" "$SCRATCH/bad_plain" "$c"; then
        note "$c: aborted: $(grep -i 'lite-malloc' "$SCRATCH/$c.err" | head -n 1)"
    else
        note "$c: NOT caught: $WHY"
        missed+=("$c")
    fi
done
if [ ${#missed[@]} -eq 0 ]; then
    [ $KNOWN_BUG = 0 ] || fail "the known bug is fixed (double8 and double abort): set KNOWN_BUG=0 in $0"
    note "PASS"
    exit 0
fi
if [ $KNOWN_BUG = 1 ] && [ "${missed[*]}" = "double8 double" ]; then
    echo "known bug: the MIN_ALIGN=8 build catches no small double free, not even of the block freed last (README says it does)"
    exit 78
fi
fail "double free of the block freed last not caught in the MIN_ALIGN=8 build: ${missed[*]}"
