#!/usr/bin/env bash
# Way 1: fully static program, lite-malloc linked in with -Wl,--wrap for every malloc symbol.
# Proves: the program's own allocations, libc.a-internal ones (strdup, getline, asprintf,
# fopen, open_memstream, realpath, opendir), pthreads, forked children, and (C++) new/delete,
# containers, std::thread and exception objects are all lite-malloc blocks (lite_owns() == 1);
# lite_stats().bytes_in_use follows them; a __libc_malloc pointer given to free/realloc is
# forwarded to glibc.
set -euo pipefail
source "$(dirname "$0")/src/common.bash"
require_libs

mapfile -t WRAP < <(wrap_flags)
LIB=$TOP/liblite-malloc-static.a

note "C program, -static"
build "$SCRATCH/c.build.log" "$CC" -std=gnu11 -O1 -g -Wall -pthread -I"$TOP" -DOWN_CHECKS_MAIN \
    "$SRC/own_checks.c" -o "$SCRATCH/own_c" -static "${WRAP[@]}" "$LIB"
is_static "$SCRATCH/own_c" || fail "own_c is not statically linked"
run_logged "$SCRATCH/c.run.log" "$SCRATCH/own_c" wrap
cat "$SCRATCH/c.run.log"
expect_output "$SCRATCH/c.run.log" '^C checks: all [0-9]+ passed'

note "C++ program, -static"
build "$SCRATCH/cxx.build.log" "$CC" -std=gnu11 -O1 -g -Wall -pthread -I"$TOP" \
    -c "$SRC/own_checks.c" -o "$SCRATCH/own_checks.o"
build "$SCRATCH/cxx.build.log" "$CXX" -std=gnu++17 -O1 -g -Wall -pthread -I"$TOP" -DOWN_CHECKS_MAIN \
    "$SRC/own_checks_cxx.cpp" "$SCRATCH/own_checks.o" -o "$SCRATCH/own_cxx" \
    -static "${WRAP[@]}" "$LIB"
is_static "$SCRATCH/own_cxx" || fail "own_cxx is not statically linked"
run_logged "$SCRATCH/cxx.run.log" "$SCRATCH/own_cxx" wrap
cat "$SCRATCH/cxx.run.log"
expect_output "$SCRATCH/cxx.run.log" '^C\+\+ checks: all [0-9]+ passed'
expect_output "$SCRATCH/cxx.run.log" '^C checks: all [0-9]+ passed'
note "PASS"
