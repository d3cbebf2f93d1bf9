# Shared helpers for tests/scripts/*.sh (sourced, never run on its own; the .bash suffix keeps
# tests/run.sh from picking it up as a test).
#   TOP      repo root (libraries already built there by `make`)
#   CC, CXX  compilers
#   NAME     the calling script's name; SCRATCH=$TOP/tests/build/$NAME is made fresh for it.
set -euo pipefail

TOP=${TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}
CC=${CC:-gcc}
CXX=${CXX:-g++}
SRC=$TOP/tests/scripts/src
NAME=$(basename "$0" .sh)
SCRATCH=$TOP/tests/build/$NAME
rm -rf "$SCRATCH"
mkdir -p "$SCRATCH"
export TOP CC CXX

# Every symbol the static library provides as __wrap_SYM.
WRAP_SYMS=(malloc free calloc realloc reallocarray memalign valloc posix_memalign mallinfo2 malloc_stats
           aligned_alloc malloc_usable_size pvalloc malloc_trim mallinfo malloc_info free_sized
           free_aligned_sized)

fail() { echo "FAIL [$NAME]: $*" >&2; exit 1; }
note() { echo "[$NAME] $*"; }

# run_logged LOG CMD...: run CMD with stdout+stderr to LOG; on failure show the tail and die.
run_logged() {
    local log=$1; shift
    local rc=0
    "$@" >"$log" 2>&1 || rc=$?
    if [ $rc -ne 0 ]; then
        echo "---- $log (last 40 lines) ----" >&2; tail -n 40 "$log" >&2
        fail "command failed (exit $rc): $*"
    fi
}

# is_static EXE: no program interpreter (ld.so) requested.
is_static() { ! readelf -lW "$1" | grep 'Requesting program interpreter' >/dev/null; }

# build LOG CMD...: compile/link step; a failure is a test failure with the compiler output shown.
build() { run_logged "$@"; }

require_libs() {
    local f
    for f in "$TOP/liblite-malloc-static.a" "$TOP/liblite-malloc-shared.so" "$TOP/lite-malloc.h"; do
        [ -e "$f" ] || fail "$f is missing: run make in $TOP first"
    done
}

# Linker flags of "way 1": -Wl,--wrap,SYM for every SYM.
wrap_flags() { local s; for s in "${WRAP_SYMS[@]}"; do printf -- '-Wl,--wrap,%s\n' "$s"; done; }
# Linker flags added in "way 5": -Wl,--defsym,SYM=__wrap_SYM for every SYM.
defsym_flags() { local s; for s in "${WRAP_SYMS[@]}"; do printf -- '-Wl,--defsym,%s=__wrap_%s\n' "$s" "$s"; done; }

# expect_output LOG PATTERN: the program's log must contain PATTERN (grep -E).
expect_output() {
    grep -Eq -- "$2" "$1" || { echo "---- $1 ----" >&2; tail -n 40 "$1" >&2; fail "expected /$2/ in $1"; }
}

# python3 of the distribution when there is one (a pyenv shim is a shell script).
pick_python() {
    if [ -x /usr/bin/python3 ]; then echo /usr/bin/python3; else command -v python3; fi
}

# The shared ownership checks (src/own_checks.c, src/own_checks_cxx.cpp) as a C program
# $SCRATCH/own_c and a C++ program $SCRATCH/own_cxx, both linked with the flags given.
build_own_checks() {
    build "$SCRATCH/c.build.log" "$CC" -std=gnu11 -O1 -g -Wall -pthread -I"$TOP" -DOWN_CHECKS_MAIN \
        "$SRC/own_checks.c" -o "$SCRATCH/own_c" "$@"
    build "$SCRATCH/cxx.build.log" "$CC" -std=gnu11 -O1 -g -Wall -pthread -I"$TOP" \
        -c "$SRC/own_checks.c" -o "$SCRATCH/own_checks.o"
    build "$SCRATCH/cxx.build.log" "$CXX" -std=gnu++17 -O1 -g -Wall -pthread -I"$TOP" -DOWN_CHECKS_MAIN \
        "$SRC/own_checks_cxx.cpp" "$SCRATCH/own_checks.o" -o "$SCRATCH/own_cxx" "$@"
}
# Run both (extra arguments, e.g. "wrap", go to the programs) and require every check passed.
run_own_checks() {
    note "C program"
    run_logged "$SCRATCH/c.run.log" "$SCRATCH/own_c" "$@"
    cat "$SCRATCH/c.run.log"
    expect_output "$SCRATCH/c.run.log" '^C checks: all [0-9]+ passed'
    note "C++ program"
    run_logged "$SCRATCH/cxx.run.log" "$SCRATCH/own_cxx" "$@"
    cat "$SCRATCH/cxx.run.log"
    expect_output "$SCRATCH/cxx.run.log" '^C\+\+ checks: all [0-9]+ passed'
    expect_output "$SCRATCH/cxx.run.log" '^C checks: all [0-9]+ passed'
}

# ---- misuse: bad_pointer.sh, min_align8.sh.  The program (src/bad_ptr.c) prints "PTR 0x..."
# (the pointer it is about to misuse) on stdout first.
# lite_abort LABEL CMD...: run CMD; true when it died of SIGABRT (exit 134) after one stderr
# line naming lite-malloc and the pointer the program printed.  Otherwise false, with the
# reason in $WHY.  $RC is the exit status.
lite_abort() {
    local label=$1; shift
    local out=$SCRATCH/$label.out err=$SCRATCH/$label.err ptr
    RC=0 WHY=
    ( "$@" >"$out" 2>"$err"; exit $? ) 2>/dev/null || RC=$? # (the subshell keeps bash's "Aborted" quiet)
    ptr=$(sed -n 's/^PTR 0x\([0-9a-fA-F]*\)$/\1/p' "$out")
    if [ -z "$ptr" ]; then WHY="the program printed no pointer (exit $RC)"; return 1; fi
    if [ $RC -ne 134 ]; then WHY="expected death by SIGABRT (exit 134), got exit $RC"; return 1; fi
    if ! grep -i 'lite-malloc' "$err" | grep -i -- "$ptr" >/dev/null; then
        WHY="no stderr line names lite-malloc and 0x$ptr"; return 1
    fi
}

# expect_abort LABEL CMD...: lite_abort must say yes.
expect_abort() {
    local label=$1
    if ! lite_abort "$@"; then
        cat "$SCRATCH/$label.out" "$SCRATCH/$label.err" >&2
        fail "$label: $WHY"
    fi
    note "$label: aborted: $(grep -i 'lite-malloc' "$SCRATCH/$label.err" | head -n 1)"
}
