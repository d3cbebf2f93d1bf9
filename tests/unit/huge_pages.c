/*
 * huge_pages: huge pages where the heap is dense, never where it is sparse.
 *  - sparse: 512 threads alive at once, each holding one block of each of 40 sizes (16 B
 *    to 7 KiB).  No region may be asked to be huge (lite_stats().huge_regions stays 0)
 *    and RSS may grow by at most 160 MiB (4 KiB pages: about 110 MiB; huge pages over
 *    every superblock touched: about 5 GiB).
 *  - malloc_trim(0), so that all free slots are clean: otherwise the dense phase reuses
 *    first the sparse phase's slots that were freed last and are still dirty, scattered
 *    over its 10 GiB of slots, and a region is dense only when all four of its slots are:
 *    16 to 124 of the 128 regions were dense in such runs, the fewest on a loaded machine
 *    (a flaky bound; with the trim, 127 in every run).
 *  - dense: 256 MiB of 48-byte nodes in a row.  Unless transparent huge pages are "never"
 *    here (or LITE_MALLOC_HUGE_PAGES=0), at least 96 of its 128 regions of 2 MiB must be
 *    asked to be huge; under "never", none.  How many the kernel could really back with
 *    huge pages (AnonHugePages) is printed, not checked: it depends on free memory.
 *  - after freeing every node and malloc_trim(0), no region is huge any more.
 */
#include "check.h"

#include <pthread.h>

enum { THREADS = 512, SIZES = 40 };
static pthread_barrier_t held, done;

static void *sparse_worker(void *arg)
{
    (void)arg;
    void *mine[SIZES];
    double s = 16;
    for (int k = 0; k < SIZES; k++, s *= 1.17) {
        size_t n = (size_t)s / 16 * 16;
        mine[k] = malloc(n);
        CHECK(mine[k] != NULL, "malloc(%zu)", n);
        memset(mine[k], k + 1, n);
    }
    expect_lite(mine[0], "a sparse thread's block");
    pthread_barrier_wait(&held);
    pthread_barrier_wait(&done);
    for (int k = 0; k < SIZES; k++) free(mine[k]);
    return NULL;
}

static long smaps_kib(const char *field) { return proc_kb("/proc/self/smaps_rollup", field); }

static int thp_never(void)
{
    char buf[128] = "";
    int fd = open("/sys/kernel/mm/transparent_hugepage/enabled", O_RDONLY);
    if (fd < 0) return 1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = 0;
    return strstr(buf, "[never]") != NULL;
}

int main(void)
{
    watchdog(120);
    /* sparse */
    size_t rss0 = rss_bytes();
    pthread_barrier_init(&held, NULL, THREADS + 1);
    pthread_barrier_init(&done, NULL, THREADS + 1);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    static pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_create(&th[i], &attr, sparse_worker, NULL) == 0, "pthread_create #%d", i);
    pthread_barrier_wait(&held);
    size_t rss1 = rss_bytes();
    struct lite_malloc_stats s1 = get_stats();
    note("sparse: %d threads x %d sizes held: RSS +%zu MiB, %zu superblocks, %zu huge regions, AnonHugePages %ld KiB",
         THREADS, SIZES, (rss1 - rss0) / MiB, s1.superblocks, s1.huge_regions, smaps_kib("AnonHugePages"));
    CHECK(s1.superblocks >= THREADS, "only %zu superblocks for %d threads: is malloc lite-malloc's?", s1.superblocks,
          THREADS);
    CHECK(s1.huge_regions == 0, "sparse heap: %zu regions asked to be huge", s1.huge_regions);
    CHECK(rss1 - rss0 < 160 * MiB, "sparse heap: RSS grew by %zu MiB", (rss1 - rss0) / MiB);
    pthread_barrier_wait(&done);
    for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
    malloc_trim(0);

    /* dense */
    const char *env = getenv("LITE_MALLOC_HUGE_PAGES");
    int expect = !thp_never() && !(env && atoi(env) == 0);
    size_t n = (256 * MiB) / 48;
    char **v = malloc(n * sizeof *v);
    CHECK(v != NULL, "malloc of the table");
    for (size_t i = 0; i < n; i++) {
        v[i] = malloc(48);
        CHECK(v[i] != NULL, "malloc(48) #%zu", i);
        memset(v[i], (int)(i & 255), 48);
    }
    expect_lite(v[n / 2], "a dense node");
    struct lite_malloc_stats s2 = get_stats();
    note("dense: 256 MiB of 48-byte nodes: %zu regions asked to be huge (expected: %s), AnonHugePages %ld KiB",
         s2.huge_regions, expect ? "most of 128" : "none", smaps_kib("AnonHugePages"));
    if (expect)
        CHECK(s2.huge_regions >= 96, "dense heap: only %zu of ~128 regions asked to be huge", s2.huge_regions);
    else
        CHECK(s2.huge_regions == 0, "huge pages off: %zu regions asked to be huge", s2.huge_regions);
    for (size_t i = 0; i < n; i++) {
        CHECK((unsigned char)v[i][47] == (i & 255), "node %zu corrupted", i);
        free(v[i]);
    }
    free(v);
    malloc_trim(0);
    struct lite_malloc_stats s3 = get_stats();
    note("after freeing and malloc_trim(0): %zu huge regions, AnonHugePages %ld KiB", s3.huge_regions,
         smaps_kib("AnonHugePages"));
    CHECK(s3.huge_regions == 0, "%zu regions still huge after everything was freed and trimmed", s3.huge_regions);
    note("PASS");
    return 0;
}
