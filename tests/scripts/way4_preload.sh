#!/usr/bin/env bash
# Way 4: LD_PRELOAD=liblite-malloc-shared.so into unmodified programs.
#   python3  allocation-heavy script (dicts, lists, strings, bytes); checksum must equal the one
#            of a run without lite-malloc; under preload the script proves via ctypes that
#            lite_owns() is 1 for malloc-served buffers/objects and 0 for static objects.
#            Run with PYTHONMALLOC=malloc (every object a malloc block) and with pymalloc.
#   sort     3 million lines with a small -S buffer (temp files, merges, 2 threads); output must
#            be byte-identical to sort without lite-malloc.
#   mt_prog  multi-threaded C++ (std::thread, vector, string, map) built with no lite-malloc
#            flags; output must equal the run without lite-malloc; it checks lite_owns() through
#            dlsym(RTLD_DEFAULT) on its malloc/new/container blocks.
# In every preloaded process a probe (preload_probe.so, loaded after lite-malloc) reports at
# exit which object the global malloc/free/realloc/calloc resolve to (liblite-malloc-shared.so,
# or the executable's own PLT stub as in python3; never libc), lite_owns() of blocks from
# malloc/realloc/calloc/posix_memalign called through the same global binding as the
# program's, and the peak of lite_stats().bytes_in_use sampled every millisecond during the
# run, which must cover the program's big buffers (sort's -S buffer, python's objects).
set -euo pipefail
source "$(dirname "$0")/src/common.bash"
require_libs

LITE=$TOP/liblite-malloc-shared.so
PROBE=$SCRATCH/preload_probe.so
PROBE_OUT=$SCRATCH/probe.txt
PY=$(pick_python)
[ -n "$PY" ] || fail "python3 not found"

build "$SCRATCH/probe.build.log" "$CC" -std=gnu11 -O1 -g -Wall -shared -fPIC -pthread -I"$TOP" \
    "$SRC/preload_probe.c" -o "$PROBE" -ldl
build "$SCRATCH/mt.build.log" "$CXX" -std=gnu++17 -O2 -g -Wall -pthread "$SRC/mt_prog.cpp" \
    -o "$SCRATCH/mt_prog" -ldl
! ldd "$SCRATCH/mt_prog" | grep lite-malloc >/dev/null || fail "mt_prog must not be linked with lite-malloc"

# preloaded LABEL MIN_PEAK OUT CMD...: run CMD with lite-malloc + probe preloaded, stdout to OUT,
# then check the probe's line for this run.
preloaded() {
    local label=$1 min_peak=$2 out=$3; shift 3
    : >"$PROBE_OUT"
    local rc=0
    env LD_PRELOAD="$LITE $PROBE" LITE_PROBE_OUT="$PROBE_OUT" "$@" >"$out" 2>"$out.err" || rc=$?
    if [ $rc -ne 0 ]; then
        tail -n 30 "$out.err" >&2
        fail "$label under LD_PRELOAD exited with $rc"
    fi
    # the process that ran the workload is the one with the largest peak (a wrapper shell may
    # have its own line)
    local line
    line=$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^peak_in_use=/) { split($i, a, "="); if (a[2] + 0 >= best) { best = a[2] + 0; l = $0 } } } END { print l }' "$PROBE_OUT")
    [ -n "$line" ] || { cat "$PROBE_OUT" >&2; fail "$label: the probe reported nothing"; }
    note "$label: $line"
    local sym
    for sym in malloc free realloc calloc; do
        [[ $line == *" $sym=lite "* || $line == *" $sym=exe "* ]] \
            || fail "$label: $sym does not resolve to $LITE in the process ($line)"
    done
    [[ $line == *" owns=1 "* ]] || fail "$label: malloc/realloc/calloc blocks are not lite-malloc's ($line)"
    local peak=${line##*peak_in_use=}; peak=${peak%% *}
    [ "$peak" -ge "$min_peak" ] \
        || fail "$label: peak lite-malloc bytes_in_use $peak < $min_peak: the program's memory did not come from lite-malloc"
}

# ---- python3 ----
note "python3 ($PY)"
PYSCRIPT=$SRC/py_alloc_heavy.py
run_logged "$SCRATCH/py.ref" "$PY" "$PYSCRIPT"
ref=$(grep '^checksum ' "$SCRATCH/py.ref") || fail "reference python run printed no checksum"
note "reference: $ref"

preloaded "python3 PYTHONMALLOC=malloc" $((50 << 20)) "$SCRATCH/py.malloc" \
    env PYTHONMALLOC=malloc "$PY" "$PYSCRIPT" --expect-lite
cat "$SCRATCH/py.malloc"
got=$(grep '^checksum ' "$SCRATCH/py.malloc") || fail "python (PYTHONMALLOC=malloc) printed no checksum"
[ "$got" = "$ref" ] || fail "python checksum differs under lite-malloc: '$got' vs '$ref'"
grep -q '^sampled [0-9]* objects, all lite-malloc blocks' "$SCRATCH/py.malloc" \
    || fail "python did not sample its objects"

preloaded "python3 (pymalloc)" $((8 << 20)) "$SCRATCH/py.pymalloc" "$PY" "$PYSCRIPT" --expect-lite
got=$(grep '^checksum ' "$SCRATCH/py.pymalloc") || fail "python (pymalloc) printed no checksum"
[ "$got" = "$ref" ] || fail "python (pymalloc) checksum differs under lite-malloc: '$got' vs '$ref'"
grep -q '^lite-malloc serves this python process' "$SCRATCH/py.pymalloc" || fail "python ctypes checks missing"

# ---- sort ----
note "sort"
awk 'BEGIN { srand(20260101); for (i = 0; i < 3000000; i++) printf "%08x %d %s\n", int(rand() * 4294967296), i % 977, substr("abcdefghijklmnopqrstuvwxyz", 1 + i % 26, 1 + i % 13) }' \
    >"$SCRATCH/sort.in"
SORT=(sort -S 16M --parallel=2 -T "$SCRATCH" -k1,1 -k2,2n)
LC_ALL=C "${SORT[@]}" "$SCRATCH/sort.in" >"$SCRATCH/sort.ref"
preloaded "sort" $((8 << 20)) "$SCRATCH/sort.lite" env LC_ALL=C "${SORT[@]}" "$SCRATCH/sort.in"
cmp "$SCRATCH/sort.ref" "$SCRATCH/sort.lite" || fail "sort output differs under lite-malloc"
[ "$(wc -l <"$SCRATCH/sort.lite")" -eq 3000000 ] || fail "sort output has the wrong number of lines"
rm -f "$SCRATCH/sort.in" "$SCRATCH/sort.ref" "$SCRATCH/sort.lite"

# ---- multi-threaded C++ ----
note "multi-threaded C++ program"
run_logged "$SCRATCH/mt.ref" "$SCRATCH/mt_prog"
preloaded "mt_prog" $((1 << 20)) "$SCRATCH/mt.lite" "$SCRATCH/mt_prog" --expect-lite
cat "$SCRATCH/mt.lite"
grep -q '^lite-malloc owns all' "$SCRATCH/mt.lite" || fail "mt_prog did not check ownership"
[ "$(grep '^keys ' "$SCRATCH/mt.ref")" = "$(grep '^keys ' "$SCRATCH/mt.lite")" ] \
    || fail "mt_prog output differs under lite-malloc"
note "PASS"
