# Shared by bench/run.sh and bench/real.sh (sourced): the allocators to compare.
# The allocators:
# name and library to preload ("" = glibc's own malloc).  tbbmalloc replaces malloc only
# through its proxy library.  Debian paths (libjemalloc2, libtcmalloc-minimal4,
# libmimalloc2.0, libtbbmalloc2).
LIBDIR=/usr/lib/x86_64-linux-gnu
ALL_ALLOCATORS=(
    "lite      $TOP/liblite-malloc-shared.so"
    "glibc     -"
    "jemalloc  $LIBDIR/libjemalloc.so.2"
    "tcmalloc  $LIBDIR/libtcmalloc_minimal.so.4"
    "mimalloc  $LIBDIR/libmimalloc.so.2"
    "tbbmalloc $LIBDIR/libtbbmalloc_proxy.so.2"
)
# BENCH_PEERS=dir adds every NAME.so found there as allocator NAME (allocators built from
# source, e.g. mimalloc3.so, snmalloc.so, rpmalloc.so: see bench/README.md).
if [[ -n ${BENCH_PEERS:-} ]]; then
    for lib in "$BENCH_PEERS"/*.so; do
        [[ -e $lib ]] && ALL_ALLOCATORS+=("$(basename "$lib" .so) $(cd "$(dirname "$lib")" && pwd)/$(basename "$lib")")
    done
fi

declare -A LIB # allocator name -> library to preload ("" for glibc)
# find_allocators: NAMES (those here, in order), LIB[name] (library to preload, empty for
# glibc), SKIPPED (with the reason); BENCH_ALLOCATORS="a b" keeps a subset.  Prints them.
find_allocators() {
    NAMES=() SKIPPED=()
    for row in "${ALL_ALLOCATORS[@]}"; do
        set -- $row
        name=$1 lib=$2
        if [[ -n ${BENCH_ALLOCATORS:-} && " $BENCH_ALLOCATORS " != *" $name "* ]]; then continue; fi
        if [[ $lib != - ]]; then
            # The library must exist and really be loaded: the dynamic loader only warns
            # about a preload it cannot load and then runs the program with glibc's malloc.
            if [[ ! -e $lib ]]; then SKIPPED+=("$name (not installed: $lib)"); continue; fi
            if ! LD_PRELOAD=$lib grep -qF "$(basename "$lib")" /proc/self/maps 2>/dev/null; then
                SKIPPED+=("$name (cannot be preloaded: $lib)"); continue
            fi
        fi
        NAMES+=("$name")
        [[ $lib == - ]] && LIB[$name]= || LIB[$name]=$lib
    done
    echo "== allocators: ${NAMES[*]}"
    for s in "${SKIPPED[@]}"; do echo "   skipped: $s (install: apt-get install libjemalloc2 libtcmalloc-minimal4 libmimalloc2.0 libtbbmalloc2)"; done
    [[ " ${NAMES[*]} " == *" lite "* ]] || echo "   note: lite is not among them; ratios to lite will be empty"
}
