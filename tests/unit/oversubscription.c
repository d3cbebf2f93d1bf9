/*
 * oversubscription: 256 threads on a 2-core machine, all released at once by a barrier,
 * doing malloc/free churn (mostly small, some medium sizes) with pattern checks, and
 * swapping blocks through a shared table with atomic exchanges so that a large share of
 * frees are cross-thread frees while threads are preempted at arbitrary points.
 * Every block describes itself (usable size and seed in its first 16 bytes), so any
 * thread can verify a block it receives.  Every block must be lite-malloc's, every thread
 * must have been seen by lite-malloc (threads_seen), and once everything is freed
 * bytes_in_use must be back near its start value.
 */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>

enum { NTHREADS = 256, OPS = 20000, LOCAL = 48, SHARED = 1024 };

static _Atomic(char *) shared_slots[SHARED];
static pthread_barrier_t start_bar;
static atomic_long cross_frees;

static char *make_block(uint64_t *rng, uint64_t seed)
{
    uint64_t r = rng_below(rng, 100);
    size_t n = r < 85 ? 16 + (size_t)rng_below(rng, 300)
             : r < 98 ? 300 + (size_t)rng_below(rng, 8000)
                      : 8 * KiB + (size_t)rng_below(rng, 100 * KiB);
    char *p = (r & 1) ? malloc(n) : calloc(1, n);
    CHECK(p != NULL, "malloc(%zu)", n);
    expect_lite(p, (r & 1) ? "malloc block" : "calloc block");
    CHECK(is_aligned(p, 16), "block of %zu bytes at %p not 16-aligned", n, (void *)p);
    uint64_t u = malloc_usable_size(p);
    CHECK(u >= n, "usable %zu < %zu", (size_t)u, n);
    memcpy(p, &u, 8);
    memcpy(p + 8, &seed, 8);
    fill_pattern_range(p, 16, u, seed);
    return p;
}

static void verify_block(const char *p, const char *when)
{
    uint64_t u, seed;
    memcpy(&u, p, 8);
    memcpy(&seed, p + 8, 8);
    CHECK(u == malloc_usable_size((void *)p), "%s: block %p header says usable %zu, "
          "malloc_usable_size %zu (header overwritten?)", when, (const void *)p, (size_t)u,
          malloc_usable_size((void *)p));
    size_t bad = check_pattern_range(p, 16, u, seed);
    CHECK(bad == (size_t)-1, "%s: block %p (usable %zu) corrupted at offset %zu", when,
          (const void *)p, (size_t)u, bad);
}

static void *worker(void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    uint64_t rng = id * 0x9E3779B97F4A7C15ull + 99, seed = (uint64_t)id << 40;
    char *local[LOCAL] = {0};
    long my_cross = 0;
    pthread_barrier_wait(&start_bar);
    for (int op = 0; op < OPS; op++) {
        int i = (int)rng_below(&rng, LOCAL);
        uint64_t r = rng_below(&rng, 100);
        if (!local[i]) {
            local[i] = make_block(&rng, ++seed);
        } else if (r < 20) {
            /* publish ours, take whatever was there and free it */
            char *other = atomic_exchange(&shared_slots[rng_below(&rng, SHARED)], local[i]);
            local[i] = NULL;
            if (other) {
                verify_block(other, "received block");
                free(other);
                my_cross++;
            }
        } else {
            verify_block(local[i], "own block");
            free(local[i]);
            local[i] = NULL;
        }
        if (op % 1024 == 0) sched_yield();
    }
    for (int i = 0; i < LOCAL; i++) {
        if (local[i]) {
            verify_block(local[i], "final");
            free(local[i]);
        }
    }
    atomic_fetch_add(&cross_frees, my_cross);
    return NULL;
}

int main(void)
{
    watchdog(250);
    pthread_barrier_init(&start_bar, NULL, NTHREADS);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * KiB);
    struct lite_malloc_stats s0 = get_stats();
    pthread_t th[NTHREADS];
    for (uintptr_t i = 0; i < NTHREADS; i++) {
        int rc = pthread_create(&th[i], &attr, worker, (void *)i);
        CHECK(rc == 0, "pthread_create #%zu: %d", (size_t)i, rc);
    }
    for (int i = 0; i < NTHREADS; i++) pthread_join(th[i], NULL);
    long left = 0;
    for (int i = 0; i < SHARED; i++) {
        char *p = atomic_load(&shared_slots[i]);
        if (p) {
            verify_block(p, "left in shared table");
            free(p);
            left++;
        }
    }
    struct lite_malloc_stats s1 = get_stats();
    note("oversubscription: %d threads x %d ops, %ld cross-thread frees, %ld left over; "
         "in_use %zu -> %zu, mapped %zu MiB, heaps %zu", NTHREADS, OPS, atomic_load(&cross_frees),
         left, s0.bytes_in_use, s1.bytes_in_use, s1.bytes_mapped / MiB, s1.threads);
    CHECK(atomic_load(&cross_frees) > NTHREADS * 100L, "too few cross-thread frees (%ld): test broken",
          atomic_load(&cross_frees));
    CHECK(s1.threads_seen >= s0.threads_seen + NTHREADS, "threads_seen %zu -> %zu: lite-malloc did "
          "not serve the %d threads", s0.threads_seen, s1.threads_seen, NTHREADS);
    /* What stays counted is the C library's own (47 KiB seen: glibc keeps per-thread data
     * of its cached thread stacks); a block lost in a remote list or a dead heap would be
     * far more over 5 million operations. */
    CHECK(s1.bytes_in_use <= s0.bytes_in_use + 256 * KiB,
          "bytes_in_use %zu after everything was freed (start %zu)", s1.bytes_in_use, s0.bytes_in_use);
    CHECK(s1.bytes_mapped >= s1.bytes_in_use, "bytes_mapped < bytes_in_use");
    note("oversubscription: all checks passed");
    return 0;
}
