#!/usr/bin/env bash
# The compile-time defines' documented ranges (lite-malloc.h, README "Configuration"):
#   SUPERBLOCK_CACHE_SIZE 4..127 (the largest page run in a host, in pages; above 120: 120);
#   MINIBLOCK_CACHE_SIZE 2..6144 (the small limit in 8-byte units: 48 KiB at most, the
#   largest size class a 512 KiB superblock holds within 10%); ENGINES_COUNT 1..1024;
#   MIN_ALIGN 8 or 16; USE_PERTHREAD_ENGINES and ENCODE_LINKS 0 or 1; RETAIN_MB -1 or more.
# Every end (and pairs of ends that go together) must compile as the shared library and as
# the static library's --wrap member (the two builds of the allocator, with and without
# exceptions; the operator-new member holds no configurable code, and the header-only way
# compiles what the shared library does); values just outside must be refused by a static
# assertion.  Compile-only (-fsyntax-only): running the variants is config_variants.sh's job.
set -euo pipefail
source "$(dirname "$0")/src/common.bash"
P=-DLITE_MALLOC_

# compiles DEFINES...: lite-malloc.cpp compiles in both builds with these defines, with the
# Makefile's exception flags
MODES=("-DLITE_MALLOC_BUILD=1 -fno-rtti -fexceptions" "-DLITE_MALLOC_BUILD=2 -fno-rtti -fno-exceptions")
compiles() { # (both at once: 2 cores)
    local mode flags i=0 pids=() rc=0
    for mode in "${MODES[@]}"; do
        read -r -a flags <<<"$mode"
        "$CXX" -std=c++17 -fsyntax-only -I"$TOP" "${flags[@]}" "$@" "$TOP/lite-malloc.cpp" \
            >"$SCRATCH/compile.$i.log" 2>&1 &
        pids+=($!)
        i=$((i + 1))
        if [ ${#pids[@]} = 2 ]; then
            wait "${pids[0]}" || rc=1
            wait "${pids[1]}" || rc=1
            pids=()
        fi
    done
    cat "$SCRATCH"/compile.[0-9].log >"$SCRATCH/compile.log"
    return $rc
}

ENDS=("${P}SUPERBLOCK_CACHE_SIZE=4" "${P}SUPERBLOCK_CACHE_SIZE=127"
      "${P}MINIBLOCK_CACHE_SIZE=2" "${P}MINIBLOCK_CACHE_SIZE=6144"
      "${P}MINIBLOCK_CACHE_SIZE=2 ${P}SUPERBLOCK_CACHE_SIZE=4"
      "${P}MINIBLOCK_CACHE_SIZE=6144 ${P}SUPERBLOCK_CACHE_SIZE=127"
      "${P}ENGINES_COUNT=1" "${P}ENGINES_COUNT=1024" "${P}MIN_ALIGN=8" "${P}MIN_ALIGN=16"
      "${P}USE_PERTHREAD_ENGINES=0" "${P}USE_PERTHREAD_ENGINES=1" "${P}ENCODE_LINKS=0"
      "${P}ENCODE_LINKS=1" "${P}RETAIN_MB=-1" "${P}RETAIN_MB=0" "${P}RETAIN_MB=1000000"
      "${P}MIN_ALIGN=8 ${P}MINIBLOCK_CACHE_SIZE=2")
for d in "${ENDS[@]}"; do
    read -r -a defs <<<"$d"
    compiles "${defs[@]}" || { tail -n 20 "$SCRATCH/compile.log" >&2; fail "does not compile: $d"; }
done
note "compiles at the ends of the ranges: ${#ENDS[@]} combinations, shared and --wrap builds"

REFUSED=("${P}SUPERBLOCK_CACHE_SIZE=3" "${P}SUPERBLOCK_CACHE_SIZE=128"
         "${P}MINIBLOCK_CACHE_SIZE=1" "${P}MINIBLOCK_CACHE_SIZE=6145"
         "${P}ENGINES_COUNT=0" "${P}ENGINES_COUNT=1025" "${P}MIN_ALIGN=4" "${P}MIN_ALIGN=32")
for d in "${REFUSED[@]}"; do
    read -r -a defs <<<"$d"
    if "$CXX" -std=c++17 -fsyntax-only -I"$TOP" "${defs[@]}" "$TOP/lite-malloc.cpp" >"$SCRATCH/refused.log" 2>&1; then
        fail "lite-malloc.cpp compiles with $d, outside the documented range"
    fi
    grep -q 'static assertion failed' "$SCRATCH/refused.log" \
        || { tail -n 20 "$SCRATCH/refused.log" >&2; fail "$d: the build failed, but not on a static assertion"; }
done
note "refused by a static assertion: ${REFUSED[*]}"

note "PASS"
