#!/usr/bin/env bash
# Way 3: a C++ program with `#include "lite-hooks.h"` as the first line of one translation
# unit (compiled with -I$TOP) and nothing else of lite-malloc linked in.  The program has three
# translation units (hooks_main.cpp, own_checks_cxx.cpp, own_checks.c); all of them allocate.
# Proves: blocks from every TU, libc.so-internal blocks (strdup, getline, fopen, asprintf,
# open_memstream, realpath, opendir), pthreads, std::thread, forked children, exception objects
# are lite-malloc blocks (lite_owns() == 1), lite_stats() follows them, and mallinfo2() and
# malloc_stats() are lite-malloc's.
set -euo pipefail
source "$(dirname "$0")/src/common.bash"
[ -e "$TOP/lite-hooks.h" ] || fail "$TOP/lite-hooks.h is missing"

FLAGS=(-O1 -g -Wall -pthread -I"$TOP")
build "$SCRATCH/build.log" "$CC" -std=gnu11 "${FLAGS[@]}" -c "$SRC/own_checks.c" -o "$SCRATCH/own_checks.o"
build "$SCRATCH/build.log" "$CXX" -std=gnu++17 "${FLAGS[@]}" -c "$SRC/own_checks_cxx.cpp" -o "$SCRATCH/own_checks_cxx.o"
build "$SCRATCH/build.log" "$CXX" -std=gnu++17 "${FLAGS[@]}" -c "$SRC/hooks_main.cpp" -o "$SCRATCH/hooks_main.o"
build "$SCRATCH/build.log" "$CXX" -pthread "$SCRATCH/hooks_main.o" "$SCRATCH/own_checks_cxx.o" \
    "$SCRATCH/own_checks.o" -o "$SCRATCH/hooks_prog"

# nothing but the program itself may provide lite-malloc
! ldd "$SCRATCH/hooks_prog" | grep lite-malloc >/dev/null || fail "hooks_prog loads a lite-malloc library"
for sym in malloc free lite_owns; do
    nm --defined-only "$SCRATCH/hooks_main.o" | grep -E " [TW] $sym\$" >/dev/null \
        || fail "hooks_main.o (the lite-hooks.h TU) does not define $sym"
done
# and the executable exports malloc so that libc.so binds to it
nm -D --defined-only "$SCRATCH/hooks_prog" | grep -E ' [TW] malloc$' >/dev/null \
    || fail "hooks_prog does not export malloc to shared libraries"

run_logged "$SCRATCH/run.log" "$SCRATCH/hooks_prog"
cat "$SCRATCH/run.log"
expect_output "$SCRATCH/run.log" '^C\+\+ checks: all [0-9]+ passed'
expect_output "$SCRATCH/run.log" '^C checks: all [0-9]+ passed'
expect_output "$SCRATCH/run.log" '^hooks program: all passed'
note "PASS"
