#!/usr/bin/env bash
# Way 1: fully static program, lite-malloc linked in with -Wl,--wrap for every malloc symbol.
# Proves: the program's own allocations, libc.a-internal ones (strdup, getline, asprintf,
# fopen, open_memstream, realpath, opendir), pthreads, forked children, and (C++) new/delete,
# containers, std::thread and exception objects are all lite-malloc blocks (lite_owns() == 1);
# lite_stats().bytes_in_use follows them; mallinfo2() and malloc_stats() are lite-malloc's
# (wrapped); a __libc_malloc pointer given to free/realloc is forwarded to glibc (free gives
# glibc the block back, realloc returns glibc's block) and malloc_usable_size() of it is
# glibc's size.
set -euo pipefail
source "$(dirname "$0")/src/common.bash"
require_libs

mapfile -t WRAP < <(wrap_flags)
LIB=$TOP/liblite-malloc-static.a

build_own_checks -static "${WRAP[@]}" "$LIB"
is_static "$SCRATCH/own_c" || fail "own_c is not statically linked"
is_static "$SCRATCH/own_cxx" || fail "own_cxx is not statically linked"
run_own_checks wrap
note "PASS"
