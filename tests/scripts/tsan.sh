#!/usr/bin/env bash
# ThreadSanitizer: lite-malloc.cpp compiled straight into a threaded test program with
# -DLITE_MALLOC_BUILD=0 (prefixed API only; the program and TSan keep the system malloc) and
# -fsanitize=thread -O1 -g.  The workload (src/tsan_prog.cpp): waves of threads doing
# lite_malloc/calloc/realloc/aligned_alloc/posix_memalign/free with patterns, cross-thread
# frees through a shared queue, and a monitor thread calling lite_stats/owns/usable_size/trim.
# Fails on any "WARNING: ThreadSanitizer" (or other sanitizer error) in the output, or a
# content/ownership error.  A deliberately racy program is run first as a positive control.
set -euo pipefail
source "$(dirname "$0")/src/common.bash"
[ -e "$TOP/lite-malloc.cpp" ] || fail "$TOP/lite-malloc.cpp is missing"

# clang++ first (Debian's needs libclang-rt-14-dev for the TSan runtime), else $CXX.
TSAN_CXX=
for c in clang++ "$CXX"; do
    command -v "$c" >/dev/null || continue
    if echo 'int main(){}' | "$c" -x c++ -fsanitize=thread - -o "$SCRATCH/probe" >/dev/null 2>&1 \
        && "$SCRATCH/probe"; then
        TSAN_CXX=$c; break
    fi
done
[ -n "$TSAN_CXX" ] || fail "no C++ compiler here can build and run -fsanitize=thread programs"
note "compiler: $TSAN_CXX"
FLAGS=(-std=c++17 -fsanitize=thread -O1 -g -pthread -mcx16)
export TSAN_OPTIONS="halt_on_error=0 exitcode=66 history_size=4"

# positive control
build "$SCRATCH/race.build.log" "$TSAN_CXX" "${FLAGS[@]}" "$SRC/tsan_race.cpp" -o "$SCRATCH/tsan_race"
rc=0; "$SCRATCH/tsan_race" >"$SCRATCH/race.log" 2>&1 || rc=$?
grep -q 'WARNING: ThreadSanitizer: data race' "$SCRATCH/race.log" && [ $rc -eq 66 ] \
    || { cat "$SCRATCH/race.log" >&2; fail "TSan did not report the deliberate race (exit $rc)"; }

build "$SCRATCH/build.log" "$TSAN_CXX" "${FLAGS[@]}" -DLITE_MALLOC_BUILD=0 -I"$TOP" \
    "$TOP/lite-malloc.cpp" "$SRC/tsan_prog.cpp" -o "$SCRATCH/tsan_prog"
# the allocator in the program is the prefixed API only: no malloc of its own
nm --defined-only "$SCRATCH/tsan_prog" | grep ' T lite_malloc$' >/dev/null || fail "tsan_prog has no lite_malloc"
nm "$SCRATCH/tsan_prog" | grep '__tsan_init' >/dev/null || fail "tsan_prog is not instrumented"

rc=0; "$SCRATCH/tsan_prog" >"$SCRATCH/run.log" 2>&1 || rc=$?
if grep -Eq 'WARNING: ThreadSanitizer|ERROR: ThreadSanitizer|SUMMARY: ThreadSanitizer' "$SCRATCH/run.log"; then
    n=$(grep -c 'WARNING: ThreadSanitizer' "$SCRATCH/run.log" || true)
    head -n 100 "$SCRATCH/run.log" >&2
    echo "---- the reports' top frames (access <-> previous access) ----" >&2
    awk '/WARNING: ThreadSanitizer/ { w = 1; n = 0 }
         w && /^    #0/ { sub(/ \(tsan_prog.*/, ""); sub(/^ +/, ""); printf "%s%s", (n ? "  <->  " : ""), $0
                          if (++n == 2) { print ""; w = 0 } }' "$SCRATCH/run.log" | sort | uniq -c >&2
    fail "ThreadSanitizer reported $n warning(s); full log: $SCRATCH/run.log"
fi
cat "$SCRATCH/run.log"
[ $rc -eq 0 ] || fail "tsan_prog exited with $rc"
grep -q '^tsan workload done: errors=0' "$SCRATCH/run.log" || fail "tsan workload did not finish cleanly"
note "PASS"
