#!/usr/bin/env bash
# The library opened with dlopen (for its lite_* API, in a program that keeps glibc's
# malloc) and closed with dlclose, 1,200 times, each time used by a thread that exits
# after the dlclose.  The library is linked -z nodelete: dlclose leaves it loaded, so the
# thread-exit hook never runs into unmapped code, the load-time constructor (which
# reserves the first arena and creates the pthread key) runs once, and address space
# does not grow per cycle.  Before, the first thread exit after a dlclose crashed, and
# each cycle reserved another arena and another pthread key.
# Control: the same program against a copy of the library relinked without nodelete must
# crash or grow, so the check can fail.
set -euo pipefail
source "$(dirname "$0")/src/common.bash"
require_libs
ulimit -c 0

build "$SCRATCH/build.log" "$CC" -std=gnu11 -O1 -g -Wall -pthread "$SRC/dlopen_cycle.c" -o "$SCRATCH/cycle" -ldl
readelf -d "$TOP/liblite-malloc-shared.so" | grep -q 'NODELETE' || fail "liblite-malloc-shared.so is not marked NODELETE"

rc=0
"$SCRATCH/cycle" "$TOP/liblite-malloc-shared.so" 1200 >"$SCRATCH/run.out" 2>"$SCRATCH/run.err" || rc=$?
cat "$SCRATCH/run.out"
[ $rc = 0 ] || { cat "$SCRATCH/run.err" >&2; fail "1200 dlopen/dlclose cycles: exit $rc"; }
read -r _ n _ growth _ same <"$SCRATCH/run.out"
[ "$n" = 1200 ] && [ "$growth" -lt 256 ] || fail "address space grew by $growth MiB over $n cycles"
note "1200 cycles: VmSize grew by $growth MiB; dlopen returned the same handle $same times"

# Control: without nodelete.
build "$SCRATCH/build.log" "$CXX" -std=c++17 -O2 -fPIC -fno-exceptions -fno-rtti -fvisibility=hidden \
    -ftls-model=initial-exec -DLITE_MALLOC_BUILD=1 -fexceptions -c "$TOP/lite-malloc.cpp" -o "$SCRATCH/lm.o"
build "$SCRATCH/build.log" "$CC" -shared -Wl,-z,now -o "$SCRATCH/liblm-deletable.so" "$SCRATCH/lm.o"
rc=0
"$SCRATCH/cycle" "$SCRATCH/liblm-deletable.so" 50 >"$SCRATCH/ctl.out" 2>"$SCRATCH/ctl.err" || rc=$?
if [ $rc = 0 ]; then
    read -r _ n _ growth _ same <"$SCRATCH/ctl.out"
    [ "$growth" -ge 1024 ] || fail "control: the library without nodelete survived 50 cycles and grew only $growth MiB: the test shows nothing"
    note "control (no nodelete): survived, but VmSize grew by $growth MiB over 50 cycles"
else
    note "control (no nodelete): exit $rc after $(wc -l <"$SCRATCH/ctl.err") lines of stderr (crash, as expected)"
fi
note "PASS"
