/*
 * thread_100k: 100,000 short-lived threads, one after another (two at a time).  Each
 * allocates blocks of several size classes, frees half of them itself, frees the blocks
 * the previous thread left behind (remote frees into a dead thread's superblocks), and
 * leaves the other half for the next thread.  Thread exit and heap adoption must leave
 * nothing stranded: RSS and the memory lite-malloc maps stay bounded however many
 * threads have come and gone.  Every block must be lite-malloc's and every thread counted by
 * it (threads_seen).  Seen on the 2-core test machine: RSS growth under 1 MiB, mapped memory
 * 5 MiB and flat from 10k threads on, 2 heaps.
 */
#include "check.h"
#include "lite-malloc.h"

#include <pthread.h>

enum { TOTAL = 100000, PER_THREAD = 24 };
static const size_t sizes[] = {16, 48, 100, 256, 520, 1000, 3000, 8000, 20000, 70000};

struct handoff { void *p[PER_THREAD]; size_t n[PER_THREAD]; };
static struct handoff slots[2];

static long rss_kib(void) { return (long)(rss_bytes() >> 10); }

static void *worker(void *arg) {
    long i = (long)arg;
    struct handoff *mine = &slots[i & 1];
    /* free what the thread before the previous one left in this slot */
    for (int k = 0; k < PER_THREAD; k++) {
        if (!mine->p[k]) continue;
        unsigned char *q = mine->p[k];
        CHECK(q[0] == (unsigned char)(mine->n[k] * 7) && q[mine->n[k] - 1] == (unsigned char)mine->n[k],
              "thread %ld: a block left behind was overwritten", i);
        free(q);
        mine->p[k] = NULL;
    }
    for (int k = 0; k < PER_THREAD; k++) {
        size_t n = sizes[(i + k) % (sizeof sizes / sizeof *sizes)] + (size_t)(k & 7);
        unsigned char *q = malloc(n);
        CHECK(q != NULL, "malloc(%zu)", n);
        expect_lite(q, "malloc block");
        q[0] = (unsigned char)(n * 7);
        q[n - 1] = (unsigned char)n;
        if (k & 1) free(q);
        else { mine->p[k] = q; mine->n[k] = n; }
    }
    return NULL;
}

int main(void) {
    watchdog(600);
    long start = rss_kib(), peak_growth = 0;
    struct lite_malloc_stats st;
    size_t mapped_at_10k = 0;
    for (long i = 0; i < TOTAL; i += 2) {
        pthread_t a, b;
        CHECK(pthread_create(&a, NULL, worker, (void *)i) == 0, "pthread_create");
        pthread_join(a, NULL);  /* slot 0 and 1 alternate: never two threads on one slot */
        CHECK(pthread_create(&b, NULL, worker, (void *)(i + 1)) == 0, "pthread_create");
        pthread_join(b, NULL);
        if (i % 10000 == 0) {
            long growth = rss_kib() - start;
            if (growth > peak_growth) peak_growth = growth;
            lite_stats(&st);
            if (i == 10000) mapped_at_10k = st.bytes_mapped;
            CHECK(growth < 16 * 1024, "after %ld threads RSS grew by %ld KiB", i, growth);
        }
    }
    lite_stats(&st);
    note("100000 threads: RSS growth at most %ld KiB; mapped %zu MiB after 10k threads, %zu MiB at the end; "
           "%zu heaps created for %zu threads", peak_growth, mapped_at_10k >> 20, st.bytes_mapped >> 20,
           st.threads, st.threads_seen);
    CHECK(st.threads_seen >= TOTAL, "lite-malloc saw %zu threads allocate, not %d", st.threads_seen, TOTAL);
    CHECK(st.bytes_mapped < mapped_at_10k + (8u << 20), "mapped memory keeps growing: %zu -> %zu",
          mapped_at_10k, st.bytes_mapped);
    CHECK(st.threads < 64, "%zu heaps for threads that ran one at a time", st.threads);
    return 0;
}
