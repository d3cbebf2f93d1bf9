/* With transparent huge pages set to "always", the arenas lite-malloc reserves must be
 * marked MADV_NOHUGEPAGE, so that a sparsely used reservation cannot turn into 2 MiB pages
 * and balloon RSS (vm_modes.sh runs this test under "always").  We check the VmFlags of the mappings that hold small and medium blocks
 * (the kernel prints "nh" for VM_NOHUGEPAGE), and that 64 MiB of medium blocks (page
 * runs, which the allocator does not touch) of which only every 16th is touched does not
 * make RSS grow by much more than what was touched.  The blocks come from malloc
 * (checked with lite_owns): the mappings that matter are those that serve the program's
 * malloc. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lite-malloc.h"
#include "check.h"

static int mapping_has_nh(const void *p) {
    static char smaps[4 << 20];  /* (the harness's reader: no stdio, no malloc) */
    CHECK(proc_read("/proc/self/smaps", smaps, sizeof smaps, NULL) > 0, "read /proc/self/smaps");
    int inside = 0, found = -1;
    uintptr_t a = (uintptr_t)p;
    for (char *line = smaps; *line && found < 0;) {
        char *end = strchr(line, '\n');
        if (end) *end = 0;
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
            inside = a >= lo && a < hi;
        else if (inside && strncmp(line, "VmFlags:", 8) == 0)
            found = strstr(line, " nh") != NULL;
        line = end ? end + 1 : line + strlen(line);
    }
    CHECK(found >= 0, "no smaps entry for %p", p);
    return found;
}

static int thp_always(void) {
    char buf[128];
    if (proc_read("/sys/kernel/mm/transparent_hugepage/enabled", buf, sizeof buf, NULL) <= 0) return 0;
    return strstr(buf, "[always]") != NULL;
}

static long rss_kb(void) { return (long)(rss_bytes() / 1024); }

int main(void) {
    void *small = malloc(64), *medium = malloc(40000);
    expect_lite(small, "malloc(64) block");
    expect_lite(medium, "malloc(40000) block");
    /* Under THP "madvise" the kernel gives huge pages only to marked memory, and the
     * arenas are left unmarked (lite-malloc collapses dense regions itself): the RSS check
     * below is what matters there. */
    if (thp_always()) {
        CHECK(mapping_has_nh(small), "arena holding a small block is not MADV_NOHUGEPAGE");
        CHECK(mapping_has_nh(medium), "arena holding a medium block is not MADV_NOHUGEPAGE");
        note("THP always: the arenas are MADV_NOHUGEPAGE");
    } else {
        note("THP not \"always\": the arenas' marks are the kernel's default (nh: %d)", mapping_has_nh(small));
    }
    /* 64 MiB of 64000-byte blocks, but only the first byte of every 16th block written. */
    enum { N = 1024 };
    static char *blocks[N];
    long before = rss_kb();
    for (int i = 0; i < N; i++) {
        blocks[i] = malloc(64000);
        CHECK(blocks[i], "malloc");
        expect_lite(blocks[i], "malloc(64000) block");
        if (i % 16 == 0) blocks[i][0] = 1;
    }
    long grown = rss_kb() - before;
    note("RSS grew by %ld KiB for 64 MiB of sparsely touched blocks", grown);
    /* 64 pages touched plus host header pages; huge pages would be 64 MiB. */
    CHECK(grown < 8 * 1024, "RSS grew by %ld KiB: huge pages or eager touching", grown);
    for (int i = 0; i < N; i++) free(blocks[i]);
    free(small);
    free(medium);
    puts("ok");
    return 0;
}
