#!/usr/bin/env bash
# Mutation check: the suite must catch deliberately broken libraries.  Each mutant below is a
# liblite-malloc-shared.so built in a scratch copy (the Makefile's own compile and link lines,
# taken from its output); the unit tests named for it are run against it (LD_LIBRARY_PATH,
# checked with ldd) and EVERY one of them must fail.  A mutant they all survive, or a test
# that passes against its mutant, fails this script; so does a mutation that no longer
# applies (its pattern must match lite-malloc.cpp exactly once: the allocator is being
# rewritten, and a mutation that silently stops applying would prove nothing).
#
#   glibc     malloc left to glibc: lite-malloc.cpp compiled with -DLITE_MALLOC_BUILD=0 (only
#             the lite_* names) in place of the shared library.  Every unit test must fail:
#             each proves that lite-malloc served what it tested.
#   notrim    malloc_trim() does nothing (returns 0).  Mutation: the definition
#             LITE_ALIAS(malloc_trim)(...) is renamed out of the way and a do-nothing one is
#             appended to the file.
#   noretain  the LITE_MALLOC_RETAIN_MB environment variable is ignored.  Mutation: the
#             string "LITE_MALLOC_RETAIN_MB" (the name looked up) becomes another name.
#   calloc    calloc does not zero reused memory: it is malloc (fresh pages are zero anyway).
#             Mutation: LITE_ALIAS(calloc)(...) renamed out of the way, a malloc-only one
#             appended.
#   nonew     operator new not replaced: every operator new symbol (_Znwm, _Znam and their
#             nothrow and aligned forms) of the compiled object is made local with objcopy
#             --localize-symbol before the link, so the program's operator new is libstdc++'s
#             (which still ends in lite-malloc's malloc).
# The patterns are the C library names the README promises (and LITE_ALIAS, the one macro that
# defines them), so they should survive the rewrite of the internals.
set -euo pipefail
source "$(dirname "$0")/src/common.bash"
require_libs

UNITS=()
for src in "$TOP"/tests/unit/*.c "$TOP"/tests/unit/*.cpp; do b=$(basename "$src"); UNITS+=("${b%.*}"); done
# name | tests that must all fail against it
MUTANTS=(
    "glibc|${UNITS[*]}"
    "notrim|trim_rss large_reuse api stats_report"
    "noretain|trim_rss stats_report"
    "calloc|api stress_patterns"
    "nonew|cxx_new"
)

# ---- the unit tests: those tests/run.sh built in this run (newer than their sources; their
# RUNPATH yields to LD_LIBRARY_PATH, which each run below sets and checks with ldd), else
# built here
mkdir -p "$SCRATCH/bin"
needed=$(for m in "${MUTANTS[@]}"; do echo "${m#*|}"; done | tr ' ' '\n' | sort -u)
for t in $needed; do
    src=$TOP/tests/unit/$t.c comp=("$CC" -std=gnu11)
    [ -e "$src" ] || { src=$TOP/tests/unit/$t.cpp; comp=("$CXX" -std=gnu++17); }
    [ -e "$src" ] || fail "tests/unit/$t.c(pp) does not exist"
    built=$TOP/tests/build/$t
    if [ -x "$built" ] && [ "$built" -nt "$src" ] && [ "$built" -nt "$TOP/tests/unit/check.h" ] && [ "$built" -nt "$TOP/tests/harness.h" ] \
        && [ "$built" -nt "$TOP/lite-malloc.h" ]; then
        ln -sf "$built" "$SCRATCH/bin/$t"
        continue
    fi
    echo "${comp[*]} -O1 -g -pthread -Wall -I$TOP $src -o $SCRATCH/bin/$t -L$TOP -llite-malloc-shared"
done >"$SCRATCH/compile.list"
xargs -P 2 -I{} sh -c '{} >>'"$SCRATCH/compile.log"' 2>&1 || echo "FAILED: {}"' <"$SCRATCH/compile.list" \
    >"$SCRATCH/compile.failed"
[ ! -s "$SCRATCH/compile.failed" ] || { cat "$SCRATCH/compile.failed" "$SCRATCH/compile.log" >&2; fail "a unit test does not compile"; }

# ---- building a mutant
# prepare NAME: a copy of the sources in $SCRATCH/NAME (= MDIR), to be mutated;
# make_shared: the Makefile builds liblite-malloc-shared.so there.
prepare() {
    MDIR=$SCRATCH/$1
    mkdir -p "$MDIR"
    cp "$TOP"/lite-malloc.cpp "$TOP"/lite-malloc.h "$TOP"/lite-hooks.h "$TOP"/Makefile "$TOP"/lite-malloc.pc.in "$MDIR"/
}
make_shared() {
    build "$MDIR/make.log" make -C "$MDIR" CC="$CC" CXX="$CXX" liblite-malloc-shared.so
}
# The Makefile's compile and link lines for the shared library, from its output.
compile_line() { grep -- '-c lite-malloc.cpp -o lite-malloc-shared.o' "$MDIR/make.log"; }
link_line() { grep -- '-o liblite-malloc-shared.so lite-malloc-shared.o' "$MDIR/make.log"; }

# replace_once FILE OLD NEW: OLD (a fixed string) must occur exactly once in FILE
replace_once() {
    local file=$1 old=$2 new=$3 n
    n=$(grep -cF -- "$old" "$file" || true)
    [ "$n" = 1 ] || fail "mutation pattern '$old' occurs $n times in lite-malloc.cpp, not once: update $0"
    OLD=$old NEW=$new perl -0pi -e 's/\Q$ENV{OLD}\E/$ENV{NEW}/' "$file"
}

build_mutant() {
    local name=$1
    prepare "$name"
    local src=$MDIR/lite-malloc.cpp
    case $name in
    glibc)
        make_shared
        local cl ll
        cl=$(compile_line) ll=$(link_line)
        [[ $cl == *-DLITE_MALLOC_BUILD=1* ]] || fail "the Makefile's compile line has no -DLITE_MALLOC_BUILD=1: update $0"
        (cd "$MDIR" && rm -f lite-malloc-shared.o liblite-malloc-shared.so \
            && eval "${cl/-DLITE_MALLOC_BUILD=1/-DLITE_MALLOC_BUILD=0}" && eval "$ll") >"$MDIR/mutant.log" 2>&1 \
            || { cat "$MDIR/mutant.log" >&2; fail "glibc: the BUILD=0 library does not build"; }
        ! nm -D --defined-only "$MDIR/liblite-malloc-shared.so" | grep -qw malloc \
            || fail "glibc: the mutant still defines malloc" ;;
    notrim)
        replace_once "$src" 'LITE_ALIAS(malloc_trim)(' 'LITE_ALIAS(malloc_trim_not_this_one)('
        cat >>"$src" <<'CPP'
/* mutant notrim: malloc_trim does nothing */
LITE_API int LITE_ALIAS(malloc_trim)(size_t) __THROW { return 0; }
CPP
        make_shared ;;
    noretain)
        replace_once "$src" '"LITE_MALLOC_RETAIN_MB"' '"LITE_MALLOC_RETAIN_MB_IGNORED"'
        make_shared ;;
    calloc)
        replace_once "$src" 'LITE_ALIAS(calloc)(' 'LITE_ALIAS(calloc_not_this_one)('
        cat >>"$src" <<'CPP'
/* mutant calloc: no zeroing (fresh pages are zero; reused blocks are not) */
LITE_API void *LITE_ALIAS(calloc)(size_t n, size_t size) __THROW {
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) { errno = ENOMEM; return nullptr; }
    return lite_malloc(total);
}
CPP
        make_shared ;;
    nonew)
        make_shared
        local syms=() s ll
        for s in $(nm --defined-only "$MDIR/lite-malloc-shared.o" | awk '$3 ~ /^_Zn[wa]m/ { print $3 }'); do
            syms+=("--localize-symbol=$s")
        done
        [ ${#syms[@]} -ge 8 ] || fail "nonew: only ${#syms[@]} operator new symbols in the object: update $0"
        objcopy "${syms[@]}" "$MDIR/lite-malloc-shared.o"
        ll=$(link_line)
        (cd "$MDIR" && rm -f liblite-malloc-shared.so && eval "$ll") >"$MDIR/mutant.log" 2>&1 \
            || { cat "$MDIR/mutant.log" >&2; fail "nonew: relinking failed"; }
        ! nm -D --defined-only "$MDIR/liblite-malloc-shared.so" | grep -q ' _Znwm$' \
            || fail "nonew: the mutant still exports operator new" ;;
    *) fail "unknown mutant $name" ;;
    esac
}

# ---- run
survivors=()
for m in "${MUTANTS[@]}"; do
    name=${m%%|*}
    read -r -a tests <<<"${m#*|}"
    t0=$SECONDS
    build_mutant "$name"
    caught=() missed=()
    for t in "${tests[@]}"; do
        lib=$(LD_LIBRARY_PATH=$MDIR ldd "$SCRATCH/bin/$t" | awk '/liblite-malloc-shared.so/ { print $3 }')
        [ "$lib" = "$MDIR/liblite-malloc-shared.so" ] || fail "$name: $t resolves the library to '$lib'"
        rc=0
        (cd "$MDIR" && LD_LIBRARY_PATH=$MDIR timeout -k 5 120 "$SCRATCH/bin/$t") >"$MDIR/$t.log" 2>&1 || rc=$?
        why=$(grep -m1 -E '^FAIL|CHECK FAILED' "$MDIR/$t.log" | cut -c1-220 || true)
        if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
            caught+=("$t")
            printf '[%s]   %-9s caught by unit/%-18s exit %-3s %s\n' "$NAME" "$name" "$t" "$rc" "${why:-(no FAIL line)}"
        else
            missed+=("$t")
            printf '[%s]   %-9s NOT caught by unit/%s (exit %s)\n' "$NAME" "$name" "$t" "$rc"
        fi
    done
    note "mutant $name: caught by ${#caught[@]} of ${#tests[@]} tests ($((SECONDS - t0))s)"
    [ ${#missed[@]} -eq 0 ] || survivors+=("$name (survives ${missed[*]})")
done
[ ${#survivors[@]} -eq 0 ] || fail "mutants not caught: ${survivors[*]}"
note "PASS: every mutant caught by every test chosen for it"
