#!/usr/bin/env bash
# Way 2: program linked against liblite-malloc-shared.so (-L$TOP -llite-malloc-shared, rpath).
# Proves the same as way 1 for a dynamically linked program: its own blocks, libc.so-internal
# blocks, pthreads, forks, and C++ new/delete/containers/threads/exceptions are lite-malloc's.
# Also checks the program really loaded the library from $TOP (ldd).
set -euo pipefail
source "$(dirname "$0")/src/common.bash"
require_libs

LINK=(-L"$TOP" -llite-malloc-shared -Wl,-rpath,"$TOP")

build_own_checks "${LINK[@]}"
ldd "$SCRATCH/own_c" | grep "$TOP/liblite-malloc-shared.so" >/dev/null \
    || { ldd "$SCRATCH/own_c"; fail "own_c does not load $TOP/liblite-malloc-shared.so"; }
run_own_checks

note "C program without rpath, found through LD_LIBRARY_PATH"
build "$SCRATCH/c2.build.log" "$CC" -std=gnu11 -O1 -g -Wall -pthread -I"$TOP" -DOWN_CHECKS_MAIN \
    "$SRC/own_checks.c" -o "$SCRATCH/own_c_ldpath" -L"$TOP" -llite-malloc-shared
run_logged "$SCRATCH/c2.run.log" env LD_LIBRARY_PATH="$TOP" "$SCRATCH/own_c_ldpath"
expect_output "$SCRATCH/c2.run.log" '^C checks: all [0-9]+ passed'
note "PASS"
