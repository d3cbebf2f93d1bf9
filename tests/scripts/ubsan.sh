#!/usr/bin/env bash
# UndefinedBehaviorSanitizer over the unit tests.  lite-malloc.cpp is built as
# liblite-malloc-shared.so exactly as the Makefile builds it (-DLITE_MALLOC_BUILD=1: it
# defines malloc & co. and operator new/delete for the whole process), plus
# -fsanitize=undefined -fno-sanitize-recover=undefined, into this script's scratch
# directory; the unit tests below are compiled with the same flags and linked against it
# (ldd must resolve to the UBSan build).  Fails on any "runtime error" in any output, on a
# test failure, or if the library carries no UBSan instrumentation.  A program with
# deliberate undefined behaviour is run first as a positive control.
#
# Tests: those that do not depend on the process being large or fast.  Left out:
#   mapcount        holds ~10 GiB (minutes even without a sanitizer); adds no code path
#   trim_rss        4 GiB over 4 threads and RSS bounds; its paths (remote frees, trim,
#                   retain limit) are exercised by the fuzzer's UBSan build
#   size_classes    measures committed bytes per live byte to 5% in a process whose heap
#                   must hold nothing else; the UBSan runtime allocates (a 72 KiB block,
#                   i.e. a 4 MiB arena step and 1 MiB of metadata) before main, which
#                   breaks that measure ("the measure is broken"), not the allocator
#   fork_load, oversubscription, producer_consumer, thread_churn, threads_random
#                   the threaded stress tests, run under ThreadSanitizer by tsan_units.sh
#                   (UBSAN_ALL=1 adds threads_random and producer_consumer here too)
# Compiler: $UBSAN_CXX / $UBSAN_CC, default the project's $CXX / $CC (gcc), complementing
# the clang UBSan build of the fuzzer (tests/fuzz).  (Debian's clang 14 segfaults compiling
# tests/unit/api.c with -fsanitize=undefined -O1, a compiler bug: keep gcc for this script.)
set -euo pipefail
source "$(dirname "$0")/src/common.bash"
[ -e "$TOP/lite-malloc.cpp" ] || fail "$TOP/lite-malloc.cpp is missing"

UCXX=${UBSAN_CXX:-$CXX}
UCC=${UBSAN_CC:-$CC}
UB=(-fsanitize=undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
TESTS=(api align_sweep large_reuse large_realloc large_merge libc_internal cxx_new stress_patterns thp_nohugepage
       oom oom_cxx stats_report)
[ "${UBSAN_ALL:-0}" = 1 ] && TESTS+=(threads_random producer_consumer)
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=67"

if ! echo 'int main(void){return 0;}' | "$UCC" -x c -fsanitize=undefined - -o "$SCRATCH/probe" 2>/dev/null \
    || ! "$SCRATCH/probe"; then
    fail "$UCC cannot build -fsanitize=undefined programs"
fi
note "compilers: $UCXX / $UCC"

# the library, as the Makefile builds liblite-malloc-shared.so, with UBSan
build "$SCRATCH/lib.build.log" "$UCXX" -std=c++17 -O2 -g -fPIC -fno-rtti -fno-plt \
    -fvisibility=hidden -ftls-model=initial-exec -Wall -Wextra -fexceptions "${UB[@]}" \
    -DLITE_MALLOC_BUILD=1 -c "$TOP/lite-malloc.cpp" -o "$SCRATCH/lite-malloc-shared.o"
build "$SCRATCH/lib.build.log" "$UCC" -shared -Wl,-soname,liblite-malloc-shared.so -Wl,-z,now \
    "${UB[@]}" -o "$SCRATCH/liblite-malloc-shared.so" "$SCRATCH/lite-malloc-shared.o"
nm -u "$SCRATCH/liblite-malloc-shared.so" | grep -q __ubsan_handle \
    || fail "the library has no UBSan instrumentation"

# compile PROGRAM SOURCE: a test program linked with the UBSan library
compile() {
    local exe=$1 src=$2 comp
    case $src in
        *.c)   comp=("$UCC" -std=gnu11) ;;
        *.cpp) comp=("$UCXX" -std=gnu++17) ;;
    esac
    build "$SCRATCH/tests.build.log" "${comp[@]}" -O1 -g -pthread -Wall "${UB[@]}" -I"$TOP" "$src" \
        -o "$exe" -L"$SCRATCH" -llite-malloc-shared -Wl,-rpath,"$SCRATCH"
    local lib
    lib=$(ldd "$exe" | awk '/liblite-malloc-shared.so/ { print $3 }')
    [ "$lib" = "$SCRATCH/liblite-malloc-shared.so" ] || fail "$exe resolves liblite-malloc-shared.so to '$lib'"
}

# positive control: the deliberate UB must be reported and stop the program (built without
# the library, so that the control does not depend on the allocator under test)
build "$SCRATCH/control.build.log" "$UCC" -std=gnu11 -O1 -g "${UB[@]}" "$SRC/ubsan_control.c" \
    -o "$SCRATCH/control"
rc=0; "$SCRATCH/control" >"$SCRATCH/control.log" 2>&1 || rc=$?
if [ $rc -ne 67 ] || ! grep -q 'runtime error: signed integer overflow' "$SCRATCH/control.log"; then
    cat "$SCRATCH/control.log" >&2
    fail "UBSan did not report the control's deliberate signed overflow (exit $rc)"
fi
note "positive control reported: $(grep -m1 'runtime error' "$SCRATCH/control.log")"

failed=()
for t in "${TESTS[@]}"; do
    src=
    for s in "$TOP/tests/unit/$t.c" "$TOP/tests/unit/$t.cpp"; do [ -e "$s" ] && src=$s; done
    [ -n "$src" ] || { note "tests/unit/$t.* does not exist: skipped"; continue; }
    compile "$SCRATCH/$t" "$src"
    start=$SECONDS rc=0
    (cd "$SCRATCH" && "./$t") >"$SCRATCH/$t.log" 2>&1 || rc=$?
    ub=$(grep -c 'runtime error' "$SCRATCH/$t.log" || true)
    printf '[%s] %-16s exit %-3s %3ss  runtime errors: %s\n' "$NAME" "$t" "$rc" $((SECONDS - start)) "$ub"
    if [ "$rc" -ne 0 ] || [ "$ub" -ne 0 ]; then
        grep -m5 -A12 'runtime error' "$SCRATCH/$t.log" >&2 || tail -n 20 "$SCRATCH/$t.log" >&2
        failed+=("$t")
    fi
done
[ ${#failed[@]} -eq 0 ] || fail "undefined behaviour or test failure in: ${failed[*]} (logs in $SCRATCH)"
note "PASS"
