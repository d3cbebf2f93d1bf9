#!/usr/bin/env bash
# Way 5: dynamically linked program with the static library: the --wrap flags of way 1
# (without -static) plus -Wl,--defsym,SYM=__wrap_SYM for every SYM, so that the executable
# exports malloc & co. and libc.so's internal calls land in lite-malloc too.
# Proves: program, libc.so-internal (strdup, getline, fopen, asprintf...), pthread, fork and
# C++ allocations are lite-malloc blocks; mallinfo2() and malloc_stats() are lite-malloc's; a
# __libc_malloc pointer given to free() and realloc() is forwarded to glibc (which gets the
# block back), and malloc_usable_size() of it is 0.
set -euo pipefail
source "$(dirname "$0")/src/common.bash"
require_libs

mapfile -t WRAP < <(wrap_flags)
mapfile -t DEFSYM < <(defsym_flags)
LIB=$TOP/liblite-malloc-static.a

build_own_checks "${WRAP[@]}" "${DEFSYM[@]}" "$LIB"
! is_static "$SCRATCH/own_c" || fail "own_c is not dynamically linked"
! ldd "$SCRATCH/own_c" | grep lite-malloc >/dev/null || fail "own_c loads a lite-malloc shared library"
# the executable must export malloc & free for libc.so to bind to them
nm -D --defined-only "$SCRATCH/own_c" | grep -E ' (T|A|W) malloc$' >/dev/null \
    || { nm -D "$SCRATCH/own_c" | grep -E 'malloc|free' >&2; fail "own_c does not export malloc"; }
run_own_checks defsym
note "PASS"
