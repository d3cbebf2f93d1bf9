#!/usr/bin/env bash
# lite-malloc under the two kernel settings that break allocators relying on large lazy
# reservations: vm.overcommit_memory=2 (no overcommit: a big read-write reservation is
# refused) and transparent huge pages "always" (a sparse reservation would balloon RSS);
# then tests/unit/huge_pages.c under each THP mode (always, madvise, never), the first
# with defrag "always" (synchronous compaction: the slowest faults and collapses).
# Both are system-wide, so this test needs root and restores the old values on exit.
# Where the settings cannot be changed (not root, read-only /proc/sys), it runs the same
# programs under a low `ulimit -v` only, and then reports SKIP (exit 77, counted by
# tests/run.sh): the two settings were not tested.
set -euo pipefail
TOP=${TOP:?}
# Two runs at once would save each other's temporary settings as the ones to restore.
exec 9>/tmp/lite-malloc-vm-modes.lock
flock -w 300 9
B=$TOP/tests/build/vm_modes
mkdir -p "$B"
CC=${CC:-gcc}

cat > "$B/vm.c" <<'C'
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lite-malloc.h"
#define FAIL(...) do { fprintf(stderr, "FAIL: " __VA_ARGS__); fputc('\n', stderr); return 1; } while (0)
int main(void) {
    enum { N = 200000 };
    static char *p[N];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            size_t n = (size_t)(i % 97) * 13 + (i % 1000 == 0 ? 300000 : 0) + (i % 101 == 0 ? 20000 : 0);
            p[i] = malloc(n);
            if (!p[i]) FAIL("malloc(%zu) failed: %s", n, strerror(errno));
            if (!lite_owns(p[i])) FAIL("block %p not lite-malloc's", (void *)p[i]);
            memset(p[i], i & 255, n);
        }
        for (int i = 0; i < N; i++) {
            size_t n = (size_t)(i % 97) * 13 + (i % 1000 == 0 ? 300000 : 0) + (i % 101 == 0 ? 20000 : 0);
            for (size_t k = 0; k < n; k += 61)
                if ((unsigned char)p[i][k] != (i & 255)) FAIL("block %d corrupted", i);
            free(p[i]);
        }
    }
    /* Sparse use of the arena: one byte in every 16th medium block. */
    static char *m[1024];
    long sz, rss0, rss1;
    FILE *f = fopen("/proc/self/statm", "r"); if (fscanf(f, "%ld %ld", &sz, &rss0) != 2) FAIL("statm"); fclose(f);
    for (int i = 0; i < 1024; i++) { m[i] = malloc(64000); if (!m[i]) FAIL("medium"); if (i % 16 == 0) m[i][0] = 1; }
    f = fopen("/proc/self/statm", "r"); if (fscanf(f, "%ld %ld", &sz, &rss1) != 2) FAIL("statm"); fclose(f);
    printf("rss %ld KiB growth for 64 MiB of sparsely used medium blocks\n", (rss1 - rss0) * 4);
    for (int i = 0; i < 1024; i++) free(m[i]);
    puts("ok");
    return 0;
}
C
$CC -O1 -I"$TOP" "$B/vm.c" -o "$B/vm" -L"$TOP" -llite-malloc-shared -Wl,-rpath,"$TOP"
# Huge pages under each THP mode: the sparse heap never balloons, the dense one gets huge
# regions unless the mode is "never" (the unit test reads the mode and checks either way).
$CC -O1 -g -pthread -I"$TOP" "$TOP/tests/unit/huge_pages.c" -o "$B/huge_pages" -L"$TOP" -llite-malloc-shared \
    -Wl,-rpath,"$TOP"
$CC -O1 -g -pthread -I"$TOP" "$TOP/tests/unit/thp_nohugepage.c" -o "$B/thp_nohugepage" -L"$TOP" \
    -llite-malloc-shared -Wl,-rpath,"$TOP"

OC=/proc/sys/vm/overcommit_memory
THP=/sys/kernel/mm/transparent_hugepage/enabled
DEFRAG=/sys/kernel/mm/transparent_hugepage/defrag
can_set=0
if [ "$(id -u)" = 0 ] && [ -w $OC ] && [ -w $THP ] && [ -w $DEFRAG ] && old_oc=$(cat $OC) \
   && old_thp=$(sed 's/.*\[\(.*\)\].*/\1/' $THP) && old_defrag=$(sed 's/.*\[\(.*\)\].*/\1/' $DEFRAG) \
   && echo "$old_oc" > $OC 2>/dev/null && echo "$old_thp" > $THP 2>/dev/null && echo "$old_defrag" > $DEFRAG 2>/dev/null; then
    can_set=1
fi

if [ $can_set = 1 ]; then
    restore() { echo "$old_oc" > $OC; echo "$old_thp" > $THP; echo "$old_defrag" > $DEFRAG; }
    trap restore EXIT
    trap 'restore; exit 1' INT TERM
    echo 2 > $OC
    echo always > $THP
    echo "running with vm.overcommit_memory=2 and THP=always (was $old_oc, $old_thp)"
    "$B/vm"
    # Big RSS growth would mean the sparse arena was promoted to huge pages.
    rss=$("$B/vm" | awk '/^rss/ {print $2}')
    echo "RSS growth $rss KiB for 64 MiB of blocks, 64 pages of them touched"
    [ "$rss" -lt 16384 ] || { echo "FAIL: RSS grew $rss KiB under THP=always"; exit 1; }
    echo "$old_oc" > $OC
    # defrag "always": faults and collapses compact synchronously (the slowest setting)
    for mode in always/always madvise/madvise never/madvise; do
        echo "${mode%/*}" > $THP
        echo "${mode#*/}" > $DEFRAG
        echo "THP enabled=${mode%/*} defrag=${mode#*/}:"
        "$B/huge_pages" | sed 's/^/    /'
        [ "${PIPESTATUS[0]}" = 0 ] || { echo "FAIL: huge_pages under THP ${mode%/*}"; exit 1; }
        "$B/thp_nohugepage" | sed 's/^/    /'
        [ "${PIPESTATUS[0]}" = 0 ] || { echo "FAIL: thp_nohugepage under THP ${mode%/*}"; exit 1; }
    done
    echo "$old_thp" > $THP
    echo "$old_defrag" > $DEFRAG
    trap - EXIT INT TERM
fi
# A low address-space limit: the 64 GiB reservation must fail and smaller ones be used.
( ulimit -v 1048576; "$B/vm" )
if [ $can_set = 0 ]; then
    echo "SKIP: cannot change vm.overcommit_memory / THP here (not root, or /proc/sys read-only): only the ulimit -v run passed"
    exit 77
fi
echo "ok"
