#!/usr/bin/env bash
# Non-default configurations.  For each CONFIG below, the sources are copied to a scratch dir
# and built there with `make CONFIG=...` (the compile lines must carry the define), then run
# against that variant's liblite-malloc-shared.so (the process must have the variant mapped):
#   - variant_stress: 4 threads of random malloc/calloc/realloc/aligned_alloc/free with
#     pattern checks, cross-thread hand-offs and lite_owns() on every block, plus a behavioural
#     check that the define has its effect (src/variant_stress.c says how each is seen):
#       MINIBLOCK_CACHE_SIZE    the small/medium boundary
#       SUPERBLOCK_CACHE_SIZE   the medium/large boundary (lite_stats().large_in_use)
#       MIN_ALIGN=8             24-byte blocks packed 8 bytes apart
#       ENCODE_LINKS            a freed block's link word is (or is not) the plain address
#       RETAIN_MB               the bytes kept cached after 96 MiB are freed (and the
#                               environment variable overrides the define: retain8 is run
#                               again with LITE_MALLOC_RETAIN_MB=-1)
#       ENGINES_COUNT,          which pooled superblock serves a new size class: one shared
#       USE_PERTHREAD_ENGINES   pool or a search from the heap's own; a heap's own pool first
#                               or pools taken round-robin
#   - the unit tests listed per variant (see VARIANTS); none for MIN_ALIGN=8, whose blocks are
#     not 16-aligned, where variant_stress checks 8-byte alignment instead.
# The documented ranges are built and run at both ends (SUPERBLOCK_CACHE_SIZE 4 and 255,
# MINIBLOCK_CACHE_SIZE 2 and 8192 -- with a medium limit of 128 pages, see config_ranges.sh --,
# ENGINES_COUNT 1 and 1024, RETAIN_MB -1 and 0, the 0/1 and 8/16 switches both ways);
# config_ranges.sh checks what compiles and what is refused.
# The default build in $TOP runs variant_stress too, as the control for every probe (and it
# pins the default retain limit, 512 MiB).
set -euo pipefail
source "$(dirname "$0")/src/common.bash"
require_libs

UNITS=(api threads_random producer_consumer align_sweep stress_patterns)
# name | CONFIG | variant_stress arguments | unit tests to run (those that exist)
# Size-boundary variants run the conformance and alignment sweeps (a medium limit below
# the small one, 48 KiB by default, leaves no medium range: the sbcache variants lower both); pool/engine variants the
# threaded tests (variant_stress, threaded too, runs everywhere).  MIN_ALIGN=8 runs no unit
# test: they assert 16-byte alignment for blocks of >= 16 bytes; variant_stress checks
# 8-byte alignment and dense packing instead.  The retain variants' unit test is the probe
# (trim_rss and stats_report pin the default limit).
B="--small-max 49152 --medium-pages 120" # the default boundaries
VARIANTS=(
    "sbcache8|-DLITE_MALLOC_SUPERBLOCK_CACHE_SIZE=8 -DLITE_MALLOC_MINIBLOCK_CACHE_SIZE=1024|--small-max 8192 --medium-pages 8|api align_sweep"
    "sbcache4|-DLITE_MALLOC_SUPERBLOCK_CACHE_SIZE=4 -DLITE_MALLOC_MINIBLOCK_CACHE_SIZE=256|--small-max 2048 --medium-pages 4|align_sweep"
    "sbcache64|-DLITE_MALLOC_SUPERBLOCK_CACHE_SIZE=64|--small-max 49152 --medium-pages 64|align_sweep"
    "miniblock128|-DLITE_MALLOC_MINIBLOCK_CACHE_SIZE=128|--small-max 1024 --medium-pages 120|api align_sweep"
    "miniblock2|-DLITE_MALLOC_MINIBLOCK_CACHE_SIZE=2|--small-max 16 --medium-pages 120|align_sweep"
    "miniblock1024|-DLITE_MALLOC_MINIBLOCK_CACHE_SIZE=1024 -DLITE_MALLOC_SUPERBLOCK_CACHE_SIZE=32|--small-max 8192 --medium-pages 32|api align_sweep"
    "engines1|-DLITE_MALLOC_ENGINES_COUNT=1|$B --engines-probe shared,own|producer_consumer"
    "engines7|-DLITE_MALLOC_ENGINES_COUNT=7|$B --engines-probe scan,own|producer_consumer"
    "engines1024|-DLITE_MALLOC_ENGINES_COUNT=1024|$B --engines-probe scan,own|"
    "noperthread|-DLITE_MALLOC_USE_PERTHREAD_ENGINES=0|$B --engines-probe scan,rr|threads_random"
    "minalign8|-DLITE_MALLOC_MIN_ALIGN=8|--align 8 --dense8 $B|"
    "links0|-DLITE_MALLOC_ENCODE_LINKS=0|$B --links plain|stress_patterns"
    "retain0|-DLITE_MALLOC_RETAIN_MB=0|$B --retain-mib 0|"
    "retain-1|-DLITE_MALLOC_RETAIN_MB=-1|$B --retain-mib -1|"
    "retain8|-DLITE_MALLOC_RETAIN_MB=8|$B --retain-mib 8|"
)
# The test programs are compiled with the variant's defines too (a program including
# lite-malloc.h sees the same configuration as the library), without rpath: each run picks its
# library with LD_LIBRARY_PATH, and run_against checks which library it got.
build_tests() { # OUT LIBDIR CONFIG UNITS... -> $OUT/variant_stress, $OUT/unit_*
    local out=$1 lib=$2 config=$3 u
    shift 3
    local flags=(-std=gnu11 -O1 -g -Wall -pthread -I"$lib" $config)
    build "$out/tests.build.log" "$CC" "${flags[@]}" "$SRC/variant_stress.c" -o "$out/variant_stress" \
        -L"$lib" -llite-malloc-shared
    for u in "$@"; do
        [ -e "$TOP/tests/unit/$u.c" ] || continue
        build "$out/tests.build.log" "$CC" "${flags[@]}" "$TOP/tests/unit/$u.c" -o "$out/unit_$u" \
            -L"$lib" -llite-malloc-shared
    done
}
for u in "${UNITS[@]}"; do
    [ -e "$TOP/tests/unit/$u.c" ] || note "tests/unit/$u.c does not exist: skipped"
done

# run_against DIR LABEL CMD...: CMD with DIR's liblite-malloc-shared.so (and the environment
# in RUN_ENV, if set).
run_against() {
    local dir=$1 label=$2; shift 2
    local resolved
    resolved=$(LD_LIBRARY_PATH=$dir ldd "$1" | awk '/liblite-malloc-shared.so/ { print $3 }')
    [ "$resolved" = "$dir/liblite-malloc-shared.so" ] \
        || fail "$label: $1 resolves liblite-malloc-shared.so to '$resolved', not $dir"
    run_logged "$SCRATCH/$label.log" env LD_LIBRARY_PATH="$dir" ${RUN_ENV[@]+"${RUN_ENV[@]}"} "$@"
}

note "control: default build"
mkdir -p "$SCRATCH/default"
build_tests "$SCRATCH/default" "$TOP" ""
# The stress runs' retain probe measures what the retain limit keeps: decay (1 s), which
# gives back what stays free that long, would race it on a loaded machine, so it is set
# to an hour there (LITE_MALLOC_DECAY_MS).
RUN_ENV=(LITE_MALLOC_DECAY_MS=3600000)
run_against "$TOP" default-stress "$SCRATCH/default/variant_stress" --lib "$TOP/liblite-malloc-shared.so" \
    $B --engines-probe scan,own --links encoded --retain-mib 512
unset RUN_ENV
cat "$SCRATCH/default-stress.log"

for v in "${VARIANTS[@]}"; do
    IFS='|' read -r name config stress_args units <<<"$v"
    read -r -a units <<<"$units"
    dir=$SCRATCH/$name
    mkdir -p "$dir"
    cp "$TOP"/lite-malloc.cpp "$TOP"/lite-malloc.h "$TOP"/lite-hooks.h "$TOP"/Makefile \
        "$TOP"/lite-malloc.pc.in "$dir"/
    note "$name: make CONFIG=\"$config\""
    # (the shared library only: the tests run against it; config_ranges.sh compiles the
    # other build modes at the ends of the ranges)
    build "$dir/make.log" make -C "$dir" CONFIG="$config" CC="$CC" CXX="$CXX" liblite-malloc-shared.so
    [ -e "$dir/liblite-malloc-shared.so" ] || fail "$name: make did not produce liblite-malloc-shared.so"
    grep -q -- "$config.*-c lite-malloc.cpp" "$dir/make.log" \
        || { cat "$dir/make.log" >&2; fail "$name: $config is not on the compile line"; }
    build_tests "$dir" "$dir" "$config" ${units[@]+"${units[@]}"}
    read -r -a sargs <<<"$stress_args"
    RUN_ENV=(LITE_MALLOC_DECAY_MS=3600000)
    run_against "$dir" "$name-stress" "$dir/variant_stress" --lib "$dir/liblite-malloc-shared.so" "${sargs[@]}"
    unset RUN_ENV
    sed "s/^/    /" "$SCRATCH/$name-stress.log"
    if [ "$name" = retain8 ]; then # the environment variable wins over the define
        RUN_ENV=(LITE_MALLOC_RETAIN_MB=-1)
        run_against "$dir" "$name-env" "$dir/variant_stress" --lib "$dir/liblite-malloc-shared.so" --retain-mib -1
        unset RUN_ENV
        sed "s/^/    LITE_MALLOC_RETAIN_MB=-1: /" "$SCRATCH/$name-env.log"
    fi
    for u in ${units[@]+"${units[@]}"}; do
        [ -e "$dir/unit_$u" ] || continue
        t0=$SECONDS
        run_against "$dir" "$name-$u" "$dir/unit_$u"
        note "$name: unit/$u passed ($((SECONDS - t0))s)"
    done
done
note "PASS"
