#!/usr/bin/env bash
# The README says "g++ or clang++": build both libraries with clang++ (and clang as the C
# compiler, which links the shared library), exactly as the Makefile does, in a scratch copy;
# check their symbols with symbols.sh as for the g++ build; then build every unit test (with
# the project's $CC/$CXX: clang 14 itself crashes on tests/unit/api.c at -O1, and the tests
# are not what is under test) against the clang shared library (ldd must resolve to it) and
# run them all but mapcount (10 GiB of blocks, 10 s: it counts mappings, which do not depend
# on the compiler; CLANG_UNITS_SKIP="..." sets the tests left out).
#
# Two bugs this found are fixed (and stay tested here through symbols.sh): the --wrap
# prototypes lacked __THROW, which clang++ refuses (the static library did not compile), and
# clang++'s nothrow operator new called std::terminate strongly (C programs could neither
# link nor preload the shared library).  The KNOWN_* markers below are kept at 0.
set -euo pipefail
source "$(dirname "$0")/src/common.bash"
KNOWN_STATIC=0 KNOWN_TERMINATE=0
command -v clang++ >/dev/null && command -v clang >/dev/null || fail "clang/clang++ not found (apt-get install clang)"

dir=$SCRATCH/lib
mkdir -p "$dir"
cp "$TOP"/lite-malloc.cpp "$TOP"/lite-malloc.h "$TOP"/lite-hooks.h "$TOP"/Makefile "$TOP"/lite-malloc.pc.in "$dir"/
build "$SCRATCH/make.log" make -C "$dir" CXX=clang++ CC=clang liblite-malloc-shared.so
grep -q '^clang++ .*-c lite-malloc.cpp' "$SCRATCH/make.log" || fail "the library was not compiled by clang++"
note "$(clang++ --version | head -n 1): liblite-malloc-shared.so built"
known=()

if make -C "$dir" CXX=clang++ CC=clang liblite-malloc-static.a >"$SCRATCH/make-static.log" 2>&1; then
    [ $KNOWN_STATIC = 0 ] || fail "known bug fixed: liblite-malloc-static.a compiles with clang++: set KNOWN_STATIC=0 in $0"
    note "liblite-malloc-static.a built"
else
    [ $KNOWN_STATIC = 1 ] || { tail -n 30 "$SCRATCH/make-static.log" >&2; fail "liblite-malloc-static.a does not compile with clang++"; }
    # exactly the known error, nothing else
    others=$(grep 'error:' "$SCRATCH/make-static.log" | grep -vc 'exception specification in declaration does not match previous declaration' || true)
    [ "$others" = 0 ] || { grep 'error:' "$SCRATCH/make-static.log" >&2; fail "liblite-malloc-static.a: other clang++ errors than the known one"; }
    note "known bug: liblite-malloc-static.a does not compile with clang++ ($(grep -c 'error:' "$SCRATCH/make-static.log") exception-specification errors on the __wrap_ prototypes)"
    known+=("static")
fi

# symbols: symbols.sh's checks on this build; the one known difference is std::terminate
rc=0
bash "$TOP/tests/scripts/symbols.sh" "$dir" >"$SCRATCH/symbols.log" 2>&1 || rc=$?
if nm -D --undefined-only "$dir/liblite-malloc-shared.so" | grep -q ' U _ZSt9terminatev$'; then
    [ $KNOWN_TERMINATE = 1 ] || { cat "$SCRATCH/symbols.log" >&2; fail "strong reference to std::terminate in the clang build"; }
    bad=$(grep -c '^    [Uw] ' "$SCRATCH/symbols.log" || true)
    if [ $rc = 0 ] || [ "$bad" != 1 ] || ! grep -q '^    U _ZSt9terminatev$' "$SCRATCH/symbols.log"; then
        cat "$SCRATCH/symbols.log" >&2
        fail "symbols of the clang build: other failures than the known std::terminate reference"
    fi
    note "known bug: liblite-malloc-shared.so has a strong reference to std::terminate (_ZSt9terminatev); the other symbols are as allowed"
    known+=("terminate")
    C_EXTRA=(-Wl,--no-as-needed -lstdc++ -Wl,--as-needed)
else
    [ $KNOWN_TERMINATE = 0 ] || fail "known bug fixed: no strong std::terminate reference in the clang build: set KNOWN_TERMINATE=0 in $0"
    [ $rc = 0 ] || { cat "$SCRATCH/symbols.log" >&2; fail "symbols of the clang build"; }
    note "symbols: as allowed"
    C_EXTRA=()
fi

# unit tests: built and run two at a time (2 cores)
tests=()
for src in "$TOP"/tests/unit/*.c "$TOP"/tests/unit/*.cpp; do
    base=$(basename "$src"); t=${base%.*}
    if [[ " ${CLANG_UNITS_SKIP-mapcount} " == *" $t "* ]]; then note "$t: left out (CLANG_UNITS_SKIP)" >&2; continue; fi
    case $src in
        *.c)   comp=("$CC" -std=gnu11) extra=(${C_EXTRA[@]+"${C_EXTRA[@]}"}) ;;
        *.cpp) comp=("$CXX" -std=gnu++17) extra=() ;;
    esac
    echo "${comp[*]} -O1 -g -pthread -Wall -I$TOP $src -o $SCRATCH/$t -L$dir -llite-malloc-shared -Wl,-rpath,$dir ${extra[*]+${extra[*]}}"
    tests+=("$t")
done >"$SCRATCH/compile.list"
xargs -P 2 -I{} sh -c '{} >>'"$SCRATCH/compile.log"' 2>&1 || echo "FAILED: {}"' <"$SCRATCH/compile.list" \
    >"$SCRATCH/compile.failed"
[ ! -s "$SCRATCH/compile.failed" ] || { cat "$SCRATCH/compile.failed" "$SCRATCH/compile.log" >&2; fail "a unit test does not build"; }
for t in "${tests[@]}"; do
    lib=$(ldd "$SCRATCH/$t" | awk '/liblite-malloc-shared.so/ { print $3 }')
    [ "$lib" = "$dir/liblite-malloc-shared.so" ] || fail "$t resolves liblite-malloc-shared.so to '$lib'"
done
run_unit() { # NAME: run it, leave "exit-status seconds" in NAME.rc
    local start=$SECONDS rc=0
    (cd "$SCRATCH" && "./$1") >"$SCRATCH/$1.log" 2>&1 || rc=$?
    echo "$rc $((SECONDS - start))" >"$SCRATCH/$1.rc"
}
export -f run_unit
export SCRATCH
printf '%s\n' "${tests[@]}" | xargs -P 2 -I{} bash -c 'run_unit {}'
failed=() count=0
for t in "${tests[@]}"; do
    read -r rc secs <"$SCRATCH/$t.rc"
    count=$((count + 1))
    printf '[%s] unit/%-18s exit %-3s %3ss\n' "$NAME" "$t" "$rc" "$secs"
    case $rc in
        0) ;;
        77) note "$t: $(tail -n 1 "$SCRATCH/$t.log")" ;;
        *) tail -n 5 "$SCRATCH/$t.log" >&2; failed+=("$t") ;;
    esac
done
[ ${#failed[@]} -eq 0 ] || fail "unit tests failing against the clang build: ${failed[*]}"
note "all $count unit tests pass against the clang build"
if [ ${#known[@]} -gt 0 ]; then
    echo "known bugs of the clang++ build: ${known[*]} (the static library does not compile; the shared one needs std::terminate)"
    exit 78
fi
note "PASS"
