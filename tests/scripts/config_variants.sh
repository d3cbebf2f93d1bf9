#!/usr/bin/env bash
# Non-default configurations.  For each CONFIG below, the sources are copied to a scratch dir
# and built there with `make CONFIG=...` (the compile lines must carry the define), then run
# against that variant's liblite-malloc-shared.so (the process must have the variant mapped):
#   - variant_stress: 4 threads of random malloc/calloc/realloc/aligned_alloc/free with
#     pattern checks, cross-thread hand-offs and lite_owns() on every block, plus a behavioural
#     check that the define took effect: the small/medium boundary (MINIBLOCK_CACHE_SIZE), the
#     medium/large boundary via lite_stats().large_in_use (SUPERBLOCK_CACHE_SIZE), dense 8-byte
#     packing (MIN_ALIGN=8);
#   - a fixed set of the unit tests api, threads_random, producer_consumer, align_sweep (those
#     that exist) per variant, see VARIANTS; none for MIN_ALIGN=8, whose blocks are not
#     16-aligned, where variant_stress checks 8-byte alignment instead.
# The default build in $TOP runs variant_stress too, as the control for the boundary checks.
set -euo pipefail
source "$(dirname "$0")/src/common.bash"
require_libs

UNITS=(api threads_random producer_consumer align_sweep)
# name | CONFIG | variant_stress arguments | unit tests to run (those that exist)
# Size-boundary variants run the conformance and alignment sweeps; pool/engine variants the
# threaded tests (variant_stress, threaded too, runs everywhere).  sbcache64 leaves out api:
# its stats test counts 200000-byte blocks as large (direct mappings), true for the default
# 32-page medium limit but not for 64 pages.  MIN_ALIGN=8 runs no unit test: they assert
# 16-byte alignment for blocks of >= 16 bytes; variant_stress checks 8-byte alignment and
# dense packing instead.
VARIANTS=(
    "sbcache8|-DLITE_MALLOC_SUPERBLOCK_CACHE_SIZE=8|--small-max 8192 --medium-pages 8|api align_sweep"
    "sbcache64|-DLITE_MALLOC_SUPERBLOCK_CACHE_SIZE=64|--small-max 8192 --medium-pages 64|align_sweep"
    "miniblock128|-DLITE_MALLOC_MINIBLOCK_CACHE_SIZE=128|--small-max 1024 --medium-pages 32|api align_sweep"
    "engines1|-DLITE_MALLOC_ENGINES_COUNT=1|--small-max 8192 --medium-pages 32|threads_random producer_consumer"
    "engines7|-DLITE_MALLOC_ENGINES_COUNT=7|--small-max 8192 --medium-pages 32|threads_random producer_consumer"
    "noperthread|-DLITE_MALLOC_USE_PERTHREAD_ENGINES=0|--small-max 8192 --medium-pages 32|threads_random producer_consumer"
    "minalign8|-DLITE_MALLOC_MIN_ALIGN=8|--align 8 --dense8 --small-max 8192 --medium-pages 32|"
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

# run_against DIR LABEL CMD...: CMD with DIR's liblite-malloc-shared.so.
run_against() {
    local dir=$1 label=$2; shift 2
    local resolved
    resolved=$(LD_LIBRARY_PATH=$dir ldd "$1" | awk '/liblite-malloc-shared.so/ { print $3 }')
    [ "$resolved" = "$dir/liblite-malloc-shared.so" ] \
        || fail "$label: $1 resolves liblite-malloc-shared.so to '$resolved', not $dir"
    run_logged "$SCRATCH/$label.log" env LD_LIBRARY_PATH="$dir" "$@"
}

note "control: default build"
mkdir -p "$SCRATCH/default"
build_tests "$SCRATCH/default" "$TOP" ""
run_against "$TOP" default-stress "$SCRATCH/default/variant_stress" --lib "$TOP/liblite-malloc-shared.so" \
    --small-max 8192 --medium-pages 32
cat "$SCRATCH/default-stress.log"

for v in "${VARIANTS[@]}"; do
    IFS='|' read -r name config stress_args units <<<"$v"
    read -r -a units <<<"$units"
    dir=$SCRATCH/$name
    mkdir -p "$dir"
    cp "$TOP"/lite-malloc.cpp "$TOP"/lite-malloc.h "$TOP"/lite-hooks.h "$TOP"/Makefile \
        "$TOP"/lite-malloc.pc.in "$dir"/
    note "$name: make CONFIG=\"$config\""
    build "$dir/make.log" make -C "$dir" CONFIG="$config" CC="$CC" CXX="$CXX" all
    for lib in liblite-malloc-shared.so liblite-malloc-static.a; do
        [ -e "$dir/$lib" ] || fail "$name: make did not produce $lib"
    done
    n=$(grep -c -- "-c lite-malloc.cpp.*$config\|$config.*-c lite-malloc.cpp" "$dir/make.log" || true)
    [ "$n" -ge 3 ] || { cat "$dir/make.log" >&2; fail "$name: $config is not on the compile lines"; }
    build_tests "$dir" "$dir" "$config" ${units[@]+"${units[@]}"}
    read -r -a sargs <<<"$stress_args"
    run_against "$dir" "$name-stress" "$dir/variant_stress" --lib "$dir/liblite-malloc-shared.so" "${sargs[@]}"
    sed "s/^/    /" "$SCRATCH/$name-stress.log"
    for u in ${units[@]+"${units[@]}"}; do
        [ -e "$dir/unit_$u" ] || continue
        t0=$SECONDS
        run_against "$dir" "$name-$u" "$dir/unit_$u"
        note "$name: unit/$u passed ($((SECONDS - t0))s)"
    done
done
note "PASS"
