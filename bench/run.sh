#!/usr/bin/env bash
# lite-malloc benchmark suite: runs every workload of bench/src/ under lite-malloc and
# every peer allocator installed, and prints speed and memory tables.  See bench/README.md.
#
#   bash bench/run.sh                  full run: 5 runs per workload, about 6 minutes on an
#                                      idle 2-core machine (13 with other jobs loading it)
#   BENCH_QUICK=1 bash bench/run.sh    smoke run: 1 run, smaller parameters, about a minute
#
# Other knobs: BENCH_RUNS=N (runs per workload), BENCH_ALLOCATORS="lite glibc ..." (a
# subset), BENCH_PEERS=dir (every NAME.so there joins as allocator NAME), BENCH_TIMEOUT=seconds (per run, default 120), BENCH_DENSITY_STEPS=N (density
# sizes per doubling above 256 B, default 6, 12 for a finer sweep; the sweep is about half
# the suite's time).
# Every allocator runs the same binaries; the allocator is chosen with LD_PRELOAD.
# Results: bench/results/{results,summary,density,callgrind}.csv and, with gnuplot,
# bench/results/{results,density}.svg.  Exits 0 whenever the suite ran: missing peers
# are skipped and timings are reported, never asserted.
set -uo pipefail
BENCH=$(cd "$(dirname "$0")" && pwd)
TOP=$(dirname "$BENCH")
BUILD=$BENCH/build
OUT=$BENCH/results
QUICK=${BENCH_QUICK:-0}
[[ $QUICK == 1 ]] && default_runs=1 || default_runs=5
RUNS=${BENCH_RUNS:-$default_runs}
TIMEOUT=${BENCH_TIMEOUT:-120}
CC=${CC:-gcc}
PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3
start_time=$(date +%s.%N)

source "$BENCH/allocators.bash"  # ALL_ALLOCATORS, find_allocators

# ---- workloads ---------------------------------------------------------------------------
# row name | program | unit of the table | arguments (full run) | arguments (BENCH_QUICK=1)
# Sized so that one lite-malloc run takes roughly 0.1-1 s on an idle machine (more when
# it is loaded) and all rounds of all allocators fit the time budget; the quick sizes are
# smoke-test sizes, too short for conclusions.  Units: Mops/s, kops/s, ops/s (throughput:
# higher is better) or ms (time of the run: lower is better).
WORKLOADS=(
    "fastpath      | fastpath      | Mops/s | ops=24m                  | ops=4m"
    "fastpath_big  | fastpath      | Mops/s | ops=12m big=1            | ops=2m big=1"
    "churn         | churn         | Mops/s | ops=16m                  | ops=2m"
    "churn_wide    | churn         | Mops/s | ops=8m live=8192 min=500 max=520 | ops=1m live=8192 min=500 max=520"
    "prodcons      | prodcons      | Mops/s | ops=6m                   | ops=1m"
    "larson        | larson        | Mops/s | ops=1m                   | ops=300k"
    "larson_touch  | larson        | Mops/s | ops=500k touch=1         | ops=150k touch=1"
    "mixed_realloc | mixed_realloc | kops/s | ops=30k                  | ops=10k"
    "large_reuse   | large_reuse   | ops/s  | ops=200                  | ops=60"
    "oversub64     | oversub       | Mops/s | ops=6m threads=64        | ops=1m threads=64"
    "oversub256    | oversub       | Mops/s | ops=4m threads=256       | ops=1m threads=256"
    "oversub1024   | oversub       | Mops/s | ops=2m threads=1024      | ops=500k threads=1024"
    "thread_churn  | thread_churn  | kops/s | ops=1000                 | ops=400"
    "false_sharing | false_sharing | ms     | ops=200m                 | ops=30m"
    "fragmentation | fragmentation | ms     | fill_mb=48               | fill_mb=12"
    "tlb_walk      | tlb_walk      | Mops/s | nodes=8m passes=2        | nodes=1m passes=1"
    "sparse_threads | sparse_threads | kops/s | ops=512                | ops=128"
)

W_NAME=() W_PROG=() W_UNIT=() W_ARGS=()
for row in "${WORKLOADS[@]}"; do
    IFS='|' read -r name prog unit full quick <<<"$row"
    W_NAME+=($name) W_PROG+=($prog) W_UNIT+=($unit)
    [[ $QUICK == 1 ]] && W_ARGS+=("$(echo $quick)") || W_ARGS+=("$(echo $full)")
done

# Density sweep: every 8 B up to 256 B, then 6 steps per doubling (BENCH_DENSITY_STEPS) up to 1 MiB, sizes
# rounded to 8 (quick run: every 48 B from 48, and 1 step per doubling).  Blocks per
# process: min(1,000,000, 64 MiB / size) (8 MiB / size in the quick run).
if [[ $QUICK == 1 ]]; then DENSITY_STEP=48 DENSITY_PER_DOUBLING=1 DENSITY_BUDGET=$((8 << 20))
else DENSITY_STEP=8 DENSITY_PER_DOUBLING=${BENCH_DENSITY_STEPS:-6} DENSITY_BUDGET=$((64 << 20)); fi
DENSITY_SIZES=(16 $(awk -v step=$DENSITY_STEP -v n=$DENSITY_PER_DOUBLING 'BEGIN {
    for (s = step; s <= 256; s += step) if (s != 16) print s
    for (lo = 256; lo < 1048576; lo *= 2)
        for (i = 1; i <= n; i++) print int(lo * 2 ^ (i / n) / 8 + 0.5) * 8 }' | sort -n))

# callgrind: malloc+free pairs counted (after 100k warm-up pairs)
# (the quick run skips the loop cross-check: valgrind start-up dominates short runs)
[[ $QUICK == 1 ]] && CG_OPS=100000 || CG_OPS=1000000

# ---- helpers -----------------------------------------------------------------------------
# Run one program under allocator $ALLOC; prints the fields of its RESULT line, or
# status=fail.  Kept free of extra processes: the machine is loaded and this runs ~1000 times.
run_prog() { # program args...
    local prog=$1 out rc line result=
    shift
    out=$(LD_PRELOAD=${LIB[$ALLOC]} timeout -k 5 "$TIMEOUT" "$BUILD/$prog" "$@" 2>&1)
    rc=$?
    while IFS= read -r line; do [[ $line == "RESULT "* ]] && result=${line#RESULT }; done <<<"$out"
    if [[ $rc == 0 && -n $result ]]; then
        echo "$result"
    else
        echo "status=fail rc=$rc"
        echo "  ! $prog $* under $ALLOC failed (exit $rc): ${out##*$'\n'}" >&2
    fi
}

elapsed() { awk -v a="$start_time" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }'; }

# ---- build -------------------------------------------------------------------------------
echo "== building lite-malloc and the workloads"
make -s -C "$TOP" all >/dev/null || { echo "bench: building lite-malloc failed" >&2; exit 1; }
mkdir -p "$BUILD" "$OUT"
for src in "$BENCH"/src/*.c; do
    prog=$BUILD/$(basename "$src" .c)
    if [[ ! -x $prog || $src -nt $prog || $BENCH/src/bench.h -nt $prog || $BENCH/../tests/harness.h -nt $prog ]]; then
        $CC -O2 -g -pthread -Wall -Wextra -o "$prog" "$src" ||
            { echo "bench: building $src failed" >&2; exit 1; }
    fi
done

find_allocators
RAW=$OUT/raw.txt DRAW=$OUT/density_raw.txt CGRAW=$OUT/callgrind_raw.txt
: >"$RAW"; : >"$DRAW"; : >"$CGRAW"
{
    echo "quick=$QUICK runs=$RUNS cores=$(nproc) date=$(date -u +%FT%TZ) commit=$(git -C "$TOP" rev-parse --short HEAD 2>/dev/null)"
    echo "allocators=${NAMES[*]}"
    for s in "${SKIPPED[@]}"; do echo "skipped=$s"; done
    for ((k = 0; k < ${#W_NAME[@]}; k++)); do echo "workload=${W_NAME[k]} unit=${W_UNIT[k]}"; done
} >"$OUT/meta.txt"

# ---- workloads: rounds of all workloads x all allocators ---------------------------------
# Interleaved: each round runs every workload under every allocator once, so a burst of
# load from other users of this shared machine hits one run of many rows, not all runs
# of one row; the median over rounds then drops it.  The allocator order rotates each
# round so no allocator always runs right after the same other one.
n=${#NAMES[@]}
for ((round = 1; round <= RUNS; round++)); do
    printf '== round %d/%d ...' "$round" "$RUNS"
    read -r load _ </proc/loadavg && echo "load=$load" >>"$OUT/meta.txt"
    for ((k = 0; k < ${#W_NAME[@]}; k++)); do
        for ((i = 0; i < n; i++)); do
            ALLOC=${NAMES[(i + round - 1) % n]}
            # shellcheck disable=SC2086  # the arguments are separate words on purpose
            echo "workload=${W_NAME[k]} alloc=$ALLOC run=$round $(run_prog "${W_PROG[k]}" ${W_ARGS[k]})" >>"$RAW"
        done
    done
    echo " done (${SECONDS}s)"
done

# ---- density: one process per size and allocator -----------------------------------------
# RSS is per process, so these runs do not disturb each other: run one per core at once.
JOBS=$(nproc)
printf '== density sweep (%d sizes, %d at a time) ...' "${#DENSITY_SIZES[@]}" "$JOBS"
running=0
for size in "${DENSITY_SIZES[@]}"; do
    count=$((DENSITY_BUDGET / size < 1000000 ? DENSITY_BUDGET / size : 1000000))
    for ALLOC in "${NAMES[@]}"; do
        if ((running >= JOBS)); then wait -n; running=$((running - 1)); fi
        echo "alloc=$ALLOC $(run_prog density size="$size" count="$count")" >>"$DRAW" &
        running=$((running + 1))
    done
done
wait
echo " done (${SECONDS}s)"

# ---- callgrind: instructions per malloc+free pair ----------------------------------------
# Two measurements of the churn workload (random 8..512 B, live set of 4096) per allocator:
#  toggle: callgrind counts only inside malloc and free (--toggle-collect, inclusive of
#          everything they call), over the whole run; divided by the calls made.
#  loop:   only churn_loop() is counted, once calling malloc/free and once a 3-instruction
#          stand-in (mode=1); the difference per pair, plus those 3.
# The table shows toggle (the allocator's own instructions, independent of how the
# compiler arranged the calling loop) and loop as the cross-check.
cg_count() { # callgrind options, program, args: prints the instructions counted
    local f=$OUT/callgrind.$ALLOC.tmp
    LD_PRELOAD=${LIB[$ALLOC]} timeout -k 5 600 valgrind --tool=callgrind \
        --callgrind-out-file="$f" --collect-atstart=no "$@" >/dev/null 2>&1 &&
        awk '/^totals:/ { print $2 }' "$f"
    rm -f "$f"
}
# Instruction counts do not depend on the load, so allocators run in parallel, one per core.
cg_measure() { # one allocator ($ALLOC): prints its callgrind_raw.txt line
    local warm=100000 live=4096 toggle real= base=
    local args=("$BUILD/churn" ops=$CG_OPS warmup=$warm live=$live)
    toggle=$(cg_count --toggle-collect=malloc --toggle-collect=free "${args[@]}" mode=0)
    if [[ $QUICK != 1 ]]; then
        real=$(cg_count --toggle-collect=churn_loop "${args[@]}" mode=0)
        base=$(cg_count --toggle-collect=churn_loop "${args[@]}" mode=1)
    fi
    # churn_loop runs twice (warm-up, then timed), both counted: divide by both
    echo "alloc=$ALLOC toggle_instr=${toggle:-0} toggle_pairs=$((live + warm + CG_OPS))" \
         "loop_instr=${real:-0} base_instr=${base:-0} loop_pairs=$((warm + CG_OPS)) stub_instr=3"
}
if command -v valgrind >/dev/null; then
    printf '== callgrind (%s pairs per allocator) ...' "$CG_OPS"
    running=0
    for ALLOC in "${NAMES[@]}"; do
        if ((running >= JOBS)); then wait -n; running=$((running - 1)); fi
        cg_measure >>"$CGRAW" &
        running=$((running + 1))
    done
    wait
    echo " done (${SECONDS}s)"
else
    echo "== callgrind: valgrind is not installed (apt-get install valgrind); instruction counts skipped"
fi

# ---- report ------------------------------------------------------------------------------
echo
"$PY" "$BENCH/report.py" "$OUT"
if command -v gnuplot >/dev/null; then
    if gnuplot -e "dir='$OUT'" "$BENCH/plot.gp" 2>"$OUT/gnuplot.log"; then
        echo "charts: $OUT/results.svg $OUT/density.svg"
    else
        echo "charts: gnuplot failed, see $OUT/gnuplot.log"
    fi
else
    echo "charts: gnuplot is not installed (apt-get install gnuplot-nox); no charts drawn"
fi
echo "results: $OUT/results.csv $OUT/summary.csv $OUT/density.csv $OUT/callgrind.csv"
echo "wall time of the suite: $(elapsed) s"
exit 0
