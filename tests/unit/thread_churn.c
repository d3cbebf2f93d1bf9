/*
 * thread_churn: 12000 short-lived threads (in waves of 8).  Each allocates blocks of many
 * size classes (small, medium, sometimes large), frees some of them itself and leaves the
 * rest to the main thread, which verifies and frees them after the thread has exited.
 * A heap that leaks per thread (superblocks or spans never reused after the thread exits,
 * or blocks freed into a dead heap never recovered) makes the resident set and the mapped
 * memory grow with the number of threads.  Seen on the 2-core test machine: RSS at most
 * 16 MiB above the start, mapped 30 MiB, both flat over the second half of the run.  So:
 *  - RSS stays within 48 MiB of the start;
 *  - over the second 6000 threads RSS less the cached free memory grows by at most 6 MiB
 *    (RSS alone: 2 MiB seen, it levels off near 19 MiB over 60000 threads; 8.5 MiB once on
 *    a loaded machine, with decay behind), and the superblocks in use (taken from the slot
 *    store and not given back; measured between waves, when every block is freed) by at
 *    most 4 (2 MiB): a leak of about 350 bytes per thread fails.  The superblocks are
 *    counted right after malloc_trim(0), which gives back what the main thread holds
 *    back (its outbox may keep a superblock from the slot store until it sends: one whose
 *    dormant heap was let go after the outbox took its blocks) and lets go of the dormant
 *    heaps (handed back whole for the next threads; dormant_heaps tests them).  (bytes_mapped, the
 *    high-water mark of what was made read-write, depends on how many threads of a wave
 *    the scheduler happens to run at once: it grew by 16 MiB once on a loaded machine.)
 *  - bytes_mapped stays under 128 MiB (96 before dormant heaps: up to 4 of them keep one
 *    superblock per class they used, about 30 slots each here, 15 MiB of address space
 *    made read-write of which at most 2 MiB resident; 62-99 MiB seen with them), and
 *    bytes_in_use comes back to near its start value.
 * Every block must be lite-malloc's and every thread counted by it (threads_seen).
 * Under ThreadSanitizer (tsan_units.sh) the RSS bounds are not checked: its shadow memory
 * and per-thread state are most of the RSS there (60 MiB of growth seen).
 */
#include "check.h"

#include <pthread.h>

enum { TOTAL = 12000, WAVE = 8, NSMALL = 64, NMED = 4, KEEP_MAX = NSMALL + NMED + 2 };
#define RSS_LIMIT (48 * MiB)        /* over the start, at any time */
#define RSS_HALF_LIMIT (6 * MiB)    /* growth of RSS less cached free memory, second half */
#define SB_HALF_LIMIT 4              /* growth of the superblocks in use over the second half */
#define MAPPED_LIMIT (128 * MiB)

struct left {
    char *p;
    size_t usable;
    uint64_t seed;
};

struct job {
    long index;
    int nleft;
    struct left left[KEEP_MAX];
};

static struct job jobs[WAVE];

/* lite_stats' superblocks once what is held back and kept dormant is given back. */
static size_t superblocks_after_trim(void)
{
    malloc_trim(0);
    return get_stats().superblocks;
}

static void take(struct job *j, char *p, size_t req, uint64_t seed, const char *how)
{
    CHECK(p != NULL, "%s(%zu) in thread %ld", how, req, j->index);
    expect_lite(p, how);
    CHECK(is_aligned(p, required_align(req)), "%s(%zu) misaligned", how, req);
    size_t u = malloc_usable_size(p);
    CHECK(u >= req, "%s(%zu): usable %zu", how, req, u);
    fill_pattern(p, u, seed);
    j->left[j->nleft].p = p;
    j->left[j->nleft].usable = u;
    j->left[j->nleft].seed = seed;
    j->nleft++;
}

static void *thread_main(void *arg)
{
    struct job *j = arg;
    uint64_t rng = (uint64_t)j->index * 0x9E3779B97F4A7C15ull + 7;
    uint64_t seed = (uint64_t)j->index << 20;
    j->nleft = 0;
    for (int i = 0; i < NSMALL; i++) {
        size_t n = (size_t)(16 << (i % 8)) + (size_t)rng_below(&rng, 16); /* 16..2 KiB classes */
        if (i % 9 == 0) {
            char *p = calloc(1, n);
            CHECK(p && first_nonzero(p, n) == (size_t)-1, "calloc(1, %zu) not zero", n);
            take(j, p, n, ++seed, "calloc");
        } else {
            take(j, malloc(n), n, ++seed, "malloc");
        }
    }
    for (int i = 0; i < NMED; i++) {
        size_t n = 10 * KiB + (size_t)rng_below(&rng, 90 * KiB);
        take(j, malloc(n), n, ++seed, "malloc");
    }
    if (j->index % 4 == 0) {
        size_t n = 150 * KiB + (size_t)rng_below(&rng, 450 * KiB);
        take(j, malloc(n), n, ++seed, "malloc");
    }
    /* grow one block with realloc */
    {
        struct left *l = &j->left[1];
        size_t n = l->usable * 3 + 10;
        char *q = realloc(l->p, n);
        CHECK(q != NULL, "realloc");
        size_t bad = check_pattern(q, l->usable, l->seed);
        CHECK(bad == (size_t)-1, "realloc lost byte %zu", bad);
        size_t u = malloc_usable_size(q);
        fill_pattern(q, u, l->seed);
        l->p = q;
        l->usable = u;
    }
    /* free every other block here, leave the rest to the main thread */
    int k = 0;
    for (int i = 0; i < j->nleft; i++) {
        struct left *l = &j->left[i];
        size_t bad = check_pattern(l->p, l->usable, l->seed);
        CHECK(bad == (size_t)-1, "thread %ld: block corrupted at offset %zu", j->index, bad);
        if (i % 2) free(l->p);
        else j->left[k++] = *l;
    }
    j->nleft = k;
    return NULL;
}

int main(void)
{
    watchdog(250);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * KiB);

    /* warm up so the starting RSS includes the allocator's fixed overhead */
    void *warm = malloc(100);
    free(warm);
    size_t rss0 = rss_bytes();
    struct lite_malloc_stats s0 = get_stats();
    size_t rss_max = rss0, rss_half = 0, mapped_half = 0, sb_half = 0, cached_half = 0;
    long created = 0;
    for (long base = 0; base < TOTAL; base += WAVE) {
        pthread_t th[WAVE];
        for (int w = 0; w < WAVE; w++) {
            jobs[w].index = base + w;
            int rc = pthread_create(&th[w], &attr, thread_main, &jobs[w]);
            CHECK(rc == 0, "pthread_create #%ld failed: %d", base + w, rc);
            created++;
        }
        for (int w = 0; w < WAVE; w++) pthread_join(th[w], NULL);
        for (int w = 0; w < WAVE; w++) {
            for (int i = 0; i < jobs[w].nleft; i++) {
                struct left *l = &jobs[w].left[i];
                size_t bad = check_pattern(l->p, l->usable, l->seed);
                CHECK(bad == (size_t)-1, "block left by exited thread %ld corrupted at offset %zu",
                      jobs[w].index, bad);
                free(l->p);
            }
            jobs[w].nleft = 0;
        }
        if ((base / WAVE) % 16 == 0) {
            size_t r = rss_bytes();
            if (r > rss_max) rss_max = r;
            CHECK(UNDER_TSAN || r <= rss0 + RSS_LIMIT,
                  "RSS grew from %zu MiB to %zu MiB after %ld threads (memory of exited threads "
                  "is not reused)", rss0 / MiB, r / MiB, created);
        }
        if (base + WAVE == TOTAL / 2) { /* the second half starts: the heap is warm */
            rss_half = rss_bytes();
            struct lite_malloc_stats h = get_stats();
            mapped_half = h.bytes_mapped;
            sb_half = superblocks_after_trim(); /* (last: the trim purges) */
            cached_half = h.bytes_cached;
        }
    }
    size_t rss_end = rss_bytes();
    if (rss_end > rss_max) rss_max = rss_end;
    struct lite_malloc_stats s1 = get_stats();
    size_t sb_end = superblocks_after_trim();
    note("thread_churn: %ld threads; RSS start %zu KiB, max %zu KiB, half-way %zu KiB, end %zu KiB; "
         "in_use %zu -> %zu; mapped %zu KiB half-way, %zu KiB at the end; superblocks in use (after a trim) %zu "
         "half-way, %zu at the end; heaps created %zu", created, rss0 / KiB, rss_max / KiB,
         rss_half / KiB, rss_end / KiB, s0.bytes_in_use, s1.bytes_in_use, mapped_half / KiB,
         s1.bytes_mapped / KiB, sb_half, sb_end, s1.threads);
    CHECK(s1.threads_seen >= s0.threads_seen + TOTAL, "threads_seen %zu -> %zu: lite-malloc did not "
          "serve the %d threads", s0.threads_seen, s1.threads_seen, TOTAL);
    CHECK(UNDER_TSAN || rss_end <= rss0 + RSS_LIMIT, "RSS grew from %zu MiB to %zu MiB", rss0 / MiB, rss_end / MiB);
    /* RSS less the free memory kept resident (bytes_cached): how much of the free memory
     * decay has given back yet depends on timing (on a loaded machine RSS itself grew by
     * 8.5 MiB over the second half once, with the superblocks in use flat). */
    /* (cached counts pages that may be resident: it can exceed RSS) */
    size_t used_half = rss_half > cached_half ? rss_half - cached_half : 0;
    size_t used_end = rss_end > s1.bytes_cached ? rss_end - s1.bytes_cached : 0;
    CHECK(UNDER_TSAN || used_end <= used_half + RSS_HALF_LIMIT, "RSS less cached memory grew by %zu KiB over the "
          "last %d threads (%zu bytes per thread; RSS %zu -> %zu KiB, cached %zu -> %zu KiB): memory of exited "
          "threads is not reused", (used_end - used_half) / KiB, TOTAL / 2, (used_end - used_half) / (TOTAL / 2),
          rss_half / KiB, rss_end / KiB, cached_half / KiB, s1.bytes_cached / KiB);
    CHECK(sb_end <= sb_half + SB_HALF_LIMIT, "superblocks in use went from %zu to %zu over the "
          "last %d threads: superblocks of exited threads are not given back", sb_half, sb_end,
          TOTAL / 2);
    CHECK(s1.bytes_in_use <= s0.bytes_in_use + 64 * KiB,
          "bytes_in_use %zu after all blocks were freed (start %zu)", s1.bytes_in_use,
          s0.bytes_in_use);
    CHECK(s1.bytes_mapped <= MAPPED_LIMIT,
          "bytes_mapped %zu MiB: memory committed per thread is not reused", s1.bytes_mapped / MiB);
    note("thread_churn: all checks passed");
    return 0;
}
