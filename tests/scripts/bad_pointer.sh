#!/usr/bin/env bash
# Misuse detection.
#   shared-library and LD_PRELOAD modes: free() of a stack address, of misaligned interior
#     pointers (p+1, p+8) of a lite block, double free of small / medium / large blocks
#     (small ones: the last freed, an earlier one, one freed by another thread),
#     realloc() of a stack address, and free() of a __libc_malloc block must each kill the
#     process with SIGABRT after a stderr line that names lite-malloc and the pointer (hex).
#   wrap (static --wrap) and defsym modes: free()/realloc() of a __libc_malloc pointer is
#     forwarded to glibc (exit 0), while misuse of lite's own blocks still aborts as above.
set -euo pipefail
source "$(dirname "$0")/src/common.bash"
require_libs
ulimit -c 0 # no core files from the expected aborts

mapfile -t WRAP < <(wrap_flags)
mapfile -t DEFSYM < <(defsym_flags)
CFLAGS=(-std=gnu11 -O0 -g -pthread -Wall -Wno-free-nonheap-object -Wno-use-after-free -Wno-unknown-warning-option)
SRCF=$SRC/bad_ptr.c
build "$SCRATCH/build.log" "$CC" "${CFLAGS[@]}" "$SRCF" -o "$SCRATCH/bad_plain"
build "$SCRATCH/build.log" "$CC" "${CFLAGS[@]}" "$SRCF" -o "$SCRATCH/bad_shared" \
    -L"$TOP" -llite-malloc-shared -Wl,-rpath,"$TOP"
build "$SCRATCH/build.log" "$CC" "${CFLAGS[@]}" "$SRCF" -o "$SCRATCH/bad_wrap" -static \
    "${WRAP[@]}" "$TOP/liblite-malloc-static.a"
build "$SCRATCH/build.log" "$CC" "${CFLAGS[@]}" "$SRCF" -o "$SCRATCH/bad_defsym" \
    "${WRAP[@]}" "${DEFSYM[@]}" "$TOP/liblite-malloc-static.a"

# expect_abort LABEL CMD...: SIGABRT, and one stderr line naming lite-malloc and the pointer.
expect_abort() {
    local label=$1; shift
    local out=$SCRATCH/$label.out err=$SCRATCH/$label.err rc=0
    ( "$@" >"$out" 2>"$err" ) 2>/dev/null || rc=$? # (the subshell keeps bash's "Aborted" quiet)
    local ptr
    ptr=$(sed -n 's/^PTR 0x\([0-9a-fA-F]*\)$/\1/p' "$out")
    [ -n "$ptr" ] || { cat "$out" "$err" >&2; fail "$label: the program printed no pointer (exit $rc)"; }
    if [ $rc -ne 134 ]; then
        cat "$out" "$err" >&2
        fail "$label: expected death by SIGABRT (exit 134), got exit $rc"
    fi
    grep -i 'lite-malloc' "$err" | grep -i -- "$ptr" >/dev/null \
        || { echo "stderr:" >&2; cat "$err" >&2; fail "$label: no stderr line names lite-malloc and 0x$ptr"; }
    note "$label: aborted: $(grep -i 'lite-malloc' "$err" | head -n 1)"
}

# expect_survive LABEL CMD...: exit 0 and SURVIVED.
expect_survive() {
    local label=$1; shift
    local out=$SCRATCH/$label.out err=$SCRATCH/$label.err rc=0
    "$@" >"$out" 2>"$err" || rc=$?
    if [ $rc -ne 0 ] || ! grep -q '^SURVIVED$' "$out"; then
        cat "$out" "$err" >&2
        fail "$label: expected the program to continue and exit 0, got exit $rc"
    fi
    note "$label: forwarded to glibc, program continued"
}

# the same misuse without lite-malloc is caught by glibc, not by lite-malloc: the check
# above cannot pass by accident
rc=0; "$SCRATCH/bad_plain" interior8 >/dev/null 2>"$SCRATCH/plain.err" || rc=$?
! grep -qi lite-malloc "$SCRATCH/plain.err" || fail "a program without lite-malloc mentions lite-malloc"

CASES=(stack interior1 interior8 double double_later double_many double_remote double_med double_big
       realloc_stack foreign)
for c in "${CASES[@]}"; do
    expect_abort "shared-$c" "$SCRATCH/bad_shared" "$c"
    expect_abort "preload-$c" env LD_PRELOAD="$TOP/liblite-malloc-shared.so" "$SCRATCH/bad_plain" "$c"
done
for mode in wrap defsym; do
    expect_survive "$mode-foreign" "$SCRATCH/bad_$mode" foreign
    for c in interior1 interior8 double double_later double_many double_remote double_med double_big; do
        expect_abort "$mode-$c" "$SCRATCH/bad_$mode" "$c"
    done
done
note "PASS"
