#!/usr/bin/env bash
# Misuse detection.
#   shared-library, header-only (lite-hooks.h) and LD_PRELOAD modes (ways 2, 3, 4): free()
#     of a stack address, of misaligned interior pointers (p+1, p+8) of a lite block, double
#     free of small / medium / large blocks (small ones: the last freed, an earlier one, one
#     freed by another thread), realloc() of a stack address and of a freed small block
#     (which realloc would otherwise return while it sits on a free list), free() of an
#     address in a superblock's header and of one never handed out (by the thread that
#     owns the superblock: the free fast path) must each kill the process with SIGABRT
#     after a stderr line that names lite-malloc and the pointer (hex).
#   All five ways: free()/realloc() of a __libc_malloc block is forwarded to glibc (exit 0:
#     in ways 2-4 it is recognised by glibc's chunk layout), while misuse of lite's own
#     blocks still aborts as above.
# Controls, first: without lite-malloc the same misuse kills the program too (glibc aborts:
# the cases really are misuse), and the check applied to those runs says no (glibc's
# message names neither lite-malloc nor the pointer; a program that survives is no abort),
# so a pass above cannot come from a check that accepts anything.
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
build "$SCRATCH/build.log" "$CC" "${CFLAGS[@]}" -c "$SRCF" -o "$SCRATCH/bad_ptr.o"
build "$SCRATCH/build.log" "$CXX" -std=gnu++17 -O1 -g -pthread -I"$TOP" -c "$SRC/hooks_only.cpp" \
    -o "$SCRATCH/hooks_only.o"
build "$SCRATCH/build.log" "$CXX" -pthread "$SCRATCH/bad_ptr.o" "$SCRATCH/hooks_only.o" -o "$SCRATCH/bad_hooks"
! ldd "$SCRATCH/bad_hooks" | grep lite-malloc >/dev/null || fail "bad_hooks loads a lite-malloc library"

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

# Controls: without lite-malloc, glibc aborts on these (exit 134 with its own message), and
# lite_abort says no to those runs; foreign is no misuse for glibc (SURVIVED, exit 0), and
# lite_abort says no to that too.
for c in interior8 double stack; do
    if lite_abort "glibc-$c" "$SCRATCH/bad_plain" "$c"; then
        cat "$SCRATCH/glibc-$c.err" >&2; fail "control glibc-$c: the check accepts a run without lite-malloc"
    fi
    # (glibc reads a stack address's would-be chunk header from whatever the stack holds
    # there: it aborts, or on some machines crashes on the value it finds, exit 139)
    [ "$RC" = 134 ] || { [ "$c" = stack ] && [ "$RC" = 139 ]; } \
        || { cat "$SCRATCH/glibc-$c.err" >&2; fail "control glibc-$c: glibc did not abort (exit $RC): not a misuse?"; }
    note "control glibc-$c: glibc aborts ($(head -n 1 "$SCRATCH/glibc-$c.err")); the check says no: $WHY"
done
if lite_abort glibc-foreign "$SCRATCH/bad_plain" foreign || [ "$RC" != 0 ] \
    || ! grep -q '^SURVIVED$' "$SCRATCH/glibc-foreign.out"; then
    fail "control glibc-foreign: exit $RC; want a run that survives, which the check rejects"
fi
note "control glibc-foreign: survives; the check says no: $WHY"

CASES=(stack interior1 interior8 double double8 double_later double_many double_remote double_queued double_med
       double_big realloc_stack realloc_freed header unhanded head_unhanded head_double)
for c in "${CASES[@]}"; do
    expect_abort "shared-$c" "$SCRATCH/bad_shared" "$c"
    expect_abort "hooks-$c" "$SCRATCH/bad_hooks" "$c"
    expect_abort "preload-$c" env LD_PRELOAD="$TOP/liblite-malloc-shared.so" "$SCRATCH/bad_plain" "$c"
done
# A block the C library handed out (a library opened with RTLD_DEEPBIND allocates so: see
# deepbind.sh) is recognised by its chunk layout and handed back to the C library in every
# way; the stack and interior cases above show that other pointers still abort.
expect_survive "shared-foreign" "$SCRATCH/bad_shared" foreign
expect_survive "hooks-foreign" "$SCRATCH/bad_hooks" foreign
expect_survive "preload-foreign" env LD_PRELOAD="$TOP/liblite-malloc-shared.so" "$SCRATCH/bad_plain" foreign
for mode in wrap defsym; do
    expect_survive "$mode-foreign" "$SCRATCH/bad_$mode" foreign
    for c in interior1 interior8 double double8 double_later double_many double_remote double_queued double_med double_big \
        realloc_freed header unhanded head_unhanded head_double; do
        expect_abort "$mode-$c" "$SCRATCH/bad_$mode" "$c"
    done
done
note "PASS"
