#!/usr/bin/env bash
# ThreadSanitizer over the threaded unit tests.  TSan brings its own malloc, so lite-malloc
# cannot be the process's malloc here: lite-malloc.cpp is compiled into each test with
# -DLITE_MALLOC_BUILD=0 (the prefixed API only) and the unmodified test source is compiled
# with -include src/tsan_prefix.h, which renames its malloc/free/calloc/realloc/
# aligned_alloc/posix_memalign/malloc_usable_size/malloc_trim calls to the lite_* functions
# (the test objects must reference none of the plain names: checked with nm).  Everything
# is built with clang -fsanitize=thread -O1 -g (-mcx16 for the allocator's 16-byte CAS).
# Fails on any ThreadSanitizer report, on a test failure, or if the positive control (a
# deliberate race on a block from lite_malloc, src/tsan_units_race.c) is not reported.
#
# Tests: threads_random, producer_consumer, oversubscription, thread_churn, dormant_heaps
# (without its part that forks).
# Not here:
#   fork_load       forks a multi-threaded process and starts threads in the child, which
#                   TSan does not support (die_after_fork); lite's fork safety is covered by
#                   the plain unit test
#   api             uses memalign, valloc, pvalloc, reallocarray and glibc's __libc_malloc,
#                   which have no prefixed form; its one thread only allocates
#   trim_rss        4 GiB of blocks and RSS bounds: TSan's shadow memory (several times the
#                   application's) makes both impractical; the fuzzer covers concurrent
#                   remote frees and trims
#   stress_patterns and the other single-threaded tests: nothing for TSan to see
# TSAN_UNITS_SKIP="name ..." leaves tests out (e.g. thread_churn on a slow machine).
set -euo pipefail
source "$(dirname "$0")/src/common.bash"
[ -e "$TOP/lite-malloc.cpp" ] || fail "$TOP/lite-malloc.cpp is missing"

TESTS=(threads_random producer_consumer oversubscription thread_churn dormant_heaps)
TCC='' TCXX=''
for pair in "clang clang++" "$CC $CXX"; do
    read -r c cxx <<<"$pair"
    command -v "$c" >/dev/null && command -v "$cxx" >/dev/null || continue
    if echo 'int main(void){return 0;}' | "$c" -x c -fsanitize=thread - -o "$SCRATCH/probe" >/dev/null 2>&1 \
        && "$SCRATCH/probe"; then
        TCC=$c TCXX=$cxx; break
    fi
done
[ -n "$TCC" ] || fail "no compiler here builds -fsanitize=thread programs (apt-get install -y clang libclang-rt-14-dev)"
note "compilers: $TCC / $TCXX"
SAN=(-fsanitize=thread -O1 -g -pthread)
export TSAN_OPTIONS="halt_on_error=0 exitcode=66 history_size=4 second_deadlock_stack=1"

build "$SCRATCH/lite.build.log" "$TCXX" -std=c++17 "${SAN[@]}" -mcx16 -DLITE_MALLOC_BUILD=0 -I"$TOP" \
    -c "$TOP/lite-malloc.cpp" -o "$SCRATCH/lite-malloc.o"

# compile NAME SOURCE -> $SCRATCH/NAME
compile() {
    local name=$1 src=$2
    build "$SCRATCH/$name.build.log" "$TCC" -std=gnu11 "${SAN[@]}" -Wall -I"$TOP" \
        -include "$SRC/tsan_prefix.h" -c "$src" -o "$SCRATCH/$name.o"
    local plain
    plain=$(nm -u "$SCRATCH/$name.o" | awk '{print $2}' |
        grep -xE 'malloc|free|calloc|realloc|aligned_alloc|posix_memalign|malloc_usable_size|malloc_trim' || true)
    [ -z "$plain" ] || fail "$name still calls the system allocator: ${plain//$'\n'/ }"
    build "$SCRATCH/$name.build.log" "$TCXX" "${SAN[@]}" "$SCRATCH/$name.o" "$SCRATCH/lite-malloc.o" \
        -o "$SCRATCH/$name"
}

# report LOG: the first report in full, then each kind of report with its top frames
# (access <-> previous access), counted
report() {
    awk '/^WARNING: ThreadSanitizer/ { p = 1 } p { print } /^SUMMARY: ThreadSanitizer/ { exit }' "$1" | head -n 80 >&2
    echo "---- all reports: kind, access <-> previous access ----" >&2
    awk '/^WARNING: ThreadSanitizer/ { w = 1; n = 0; kind = $0; sub(/ \(pid=.*/, "", kind); line = kind }
         w && /^    #0/ { f = $0; sub(/ \(.*\)$/, "", f); sub(/^ +#0 /, "", f); line = line (n ? "  <->  " : ": ") f
                          if (++n == 2) { print line; w = 0 } }' "$1" | sort | uniq -c >&2
}

# positive control
compile race "$SRC/tsan_units_race.c"
rc=0; "$SCRATCH/race" >"$SCRATCH/race.log" 2>&1 || rc=$?
grep -q 'WARNING: ThreadSanitizer: data race' "$SCRATCH/race.log" && [ $rc -eq 66 ] \
    || { cat "$SCRATCH/race.log" >&2; fail "TSan did not report the deliberate race (exit $rc)"; }
note "positive control: race reported"

failed=()
for t in "${TESTS[@]}"; do
    if [[ " ${TSAN_UNITS_SKIP:-} " == *" $t "* ]]; then note "$t: skipped (TSAN_UNITS_SKIP)"; continue; fi
    [ -e "$TOP/tests/unit/$t.c" ] || { note "tests/unit/$t.c does not exist: skipped"; continue; }
    compile "$t" "$TOP/tests/unit/$t.c"
    start=$SECONDS rc=0
    (cd "$SCRATCH" && "./$t") >"$SCRATCH/$t.log" 2>&1 || rc=$?
    n=$(grep -cE 'WARNING: ThreadSanitizer|ThreadSanitizer: [a-z]' "$SCRATCH/$t.log" || true)
    printf '[%s] %-18s exit %-3s %4ss  TSan reports: %s\n' "$NAME" "$t" "$rc" $((SECONDS - start)) "$n"
    if [ "$n" -ne 0 ]; then
        grep -E 'ThreadSanitizer: [a-z]' "$SCRATCH/$t.log" | grep -v 'reported [0-9]* warnings' | head -n 5 >&2 || true
        report "$SCRATCH/$t.log"
        failed+=("$t")
    elif [ "$rc" -ne 0 ]; then
        tail -n 20 "$SCRATCH/$t.log" >&2
        failed+=("$t")
    fi
done
[ ${#failed[@]} -eq 0 ] || fail "ThreadSanitizer report or failure in: ${failed[*]} (logs in $SCRATCH)"
note "PASS"
