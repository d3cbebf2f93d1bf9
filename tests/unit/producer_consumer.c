/*
 * producer_consumer: 4 producer/consumer pairs.  Producers allocate batches of blocks (mostly
 * small, some medium, a few large) and fill them with a pattern; the paired consumer thread
 * verifies and frees them, so nearly every free is a cross-thread free.  The batch
 * descriptors themselves are malloc'ed by the producer and freed by the consumer.
 *
 * Phase 1 streams batches through a bounded queue.  Phase 2 ("bulk"): every producer
 * allocates ~16 MiB while the consumers wait; the main thread checks that lite_stats
 * bytes_in_use covers everything live, then the consumers free it all.  After all threads
 * have exited, bytes_in_use must be well below that peak (the freed memory is accounted as
 * freed even though another thread than the owner freed it and both have exited).
 */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>

enum { NPAIRS = 4, BATCH = 64, STREAM_BATCHES = 5000, QUEUE_CAP = 64 };
#define BULK_BYTES (16 * MiB)

struct batch {
    struct batch *next;
    int n; /* -1: end-of-stream marker */
    char *p[BATCH];
    size_t size[BATCH];
    uint64_t seed[BATCH];
};

struct queue {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct batch *head, *tail;
    int count;
};

static struct queue queues[NPAIRS];
static struct batch *bulk_lists[NPAIRS];
static pthread_barrier_t bar_bulk_ready, bar_bulk_go;
static atomic_size_t bulk_bytes;
static atomic_long blocks_freed;

static void q_push(struct queue *q, struct batch *b)
{
    pthread_mutex_lock(&q->lock);
    while (q->count >= QUEUE_CAP) pthread_cond_wait(&q->cond, &q->lock);
    b->next = NULL;
    if (q->tail) q->tail->next = b;
    else q->head = b;
    q->tail = b;
    q->count++;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->lock);
}

static struct batch *q_pop(struct queue *q)
{
    pthread_mutex_lock(&q->lock);
    while (!q->head) pthread_cond_wait(&q->cond, &q->lock);
    struct batch *b = q->head;
    q->head = b->next;
    if (!q->head) q->tail = NULL;
    q->count--;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->lock);
    return b;
}

static size_t pick_size(uint64_t *rng)
{
    uint64_t r = rng_below(rng, 1000);
    if (r < 900) return 1 + (size_t)rng_below(rng, 512);
    if (r < 970) return 512 + (size_t)rng_below(rng, 7 * 1024);
    if (r < 997) return 8 * KiB + (size_t)rng_below(rng, 56 * KiB);
    return 200 * KiB + (size_t)rng_below(rng, 800 * KiB);
}

static struct batch *make_batch(uint64_t *rng, uint64_t *seedctr, size_t *bytes)
{
    struct batch *b = malloc(sizeof *b);
    CHECK(b != NULL, "malloc(batch)");
    b->n = BATCH;
    for (int i = 0; i < BATCH; i++) {
        size_t n = pick_size(rng);
        char *p = (i % 5 == 0) ? calloc(n, 1) : malloc(n);
        CHECK(p != NULL, "malloc(%zu)", n);
        CHECK(is_aligned(p, required_align(n)), "malloc(%zu) = %p misaligned", n, (void *)p);
        if (i % 5 == 0) {
            size_t nz = first_nonzero(p, n);
            CHECK(nz == (size_t)-1, "calloc(%zu, 1): byte %zu not zero", n, nz);
        }
        size_t u = malloc_usable_size(p);
        CHECK(u >= n, "malloc(%zu): usable %zu", n, u);
        b->p[i] = p;
        b->size[i] = u;
        b->seed[i] = ++*seedctr;
        fill_pattern(p, u, b->seed[i]);
        if (bytes) *bytes += n;
    }
    return b;
}

static void consume_batch(struct batch *b)
{
    for (int i = 0; i < b->n; i++) {
        size_t bad = check_pattern(b->p[i], b->size[i], b->seed[i]);
        CHECK(bad == (size_t)-1, "consumer: block %p (usable %zu) corrupted at offset %zu",
              (void *)b->p[i], b->size[i], bad);
        CHECK(malloc_usable_size(b->p[i]) == b->size[i],
              "usable size changed between threads: %zu -> %zu", b->size[i],
              malloc_usable_size(b->p[i]));
        free(b->p[i]);
    }
    atomic_fetch_add(&blocks_freed, b->n);
    free(b);
}

static void *producer(void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    uint64_t rng = 1000 + id, seedctr = id << 40;
    for (int k = 0; k < STREAM_BATCHES; k++) q_push(&queues[id], make_batch(&rng, &seedctr, NULL));
    struct batch *end = malloc(sizeof *end);
    CHECK(end != NULL, "malloc");
    end->n = -1;
    q_push(&queues[id], end);

    /* bulk: build a private list of ~BULK_BYTES, hand it over while the consumer waits */
    size_t bytes = 0;
    struct batch *list = NULL;
    while (bytes < BULK_BYTES) {
        struct batch *b = make_batch(&rng, &seedctr, &bytes);
        b->next = list;
        list = b;
    }
    bulk_lists[id] = list;
    atomic_fetch_add(&bulk_bytes, bytes);
    pthread_barrier_wait(&bar_bulk_ready);
    return NULL;
}

static void *consumer(void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    for (;;) {
        struct batch *b = q_pop(&queues[id]);
        if (b->n < 0) {
            free(b);
            break;
        }
        consume_batch(b);
    }
    pthread_barrier_wait(&bar_bulk_ready);
    pthread_barrier_wait(&bar_bulk_go);
    struct batch *list = bulk_lists[id];
    while (list) {
        struct batch *next = list->next;
        consume_batch(list);
        list = next;
    }
    return NULL;
}

int main(void)
{
    watchdog(250);
    for (int i = 0; i < NPAIRS; i++) {
        pthread_mutex_init(&queues[i].lock, NULL);
        pthread_cond_init(&queues[i].cond, NULL);
    }
    /* producers + consumers + main */
    pthread_barrier_init(&bar_bulk_ready, NULL, 2 * NPAIRS + 1);
    pthread_barrier_init(&bar_bulk_go, NULL, NPAIRS + 1);

    struct lite_malloc_stats s0 = get_stats();
    pthread_t prod[NPAIRS], cons[NPAIRS];
    for (uintptr_t i = 0; i < NPAIRS; i++) {
        CHECK(pthread_create(&cons[i], NULL, consumer, (void *)i) == 0, "pthread_create");
        CHECK(pthread_create(&prod[i], NULL, producer, (void *)i) == 0, "pthread_create");
    }
    pthread_barrier_wait(&bar_bulk_ready);
    for (int i = 0; i < NPAIRS; i++) pthread_join(prod[i], NULL); /* producers have exited */
    struct lite_malloc_stats peak = get_stats();
    size_t live = atomic_load(&bulk_bytes);
    note("bulk phase: %zu bytes live; in_use %zu -> %zu, mapped %zu", live, s0.bytes_in_use,
         peak.bytes_in_use, peak.bytes_mapped);
    CHECK(peak.bytes_in_use >= s0.bytes_in_use + live,
          "bytes_in_use %zu does not cover the %zu bytes live (start %zu)", peak.bytes_in_use,
          live, s0.bytes_in_use);
    CHECK(peak.bytes_mapped >= peak.bytes_in_use, "bytes_mapped %zu < bytes_in_use %zu",
          peak.bytes_mapped, peak.bytes_in_use);
    pthread_barrier_wait(&bar_bulk_go);
    for (int i = 0; i < NPAIRS; i++) pthread_join(cons[i], NULL);

    long expect = (long)NPAIRS * STREAM_BATCHES * BATCH;
    CHECK(atomic_load(&blocks_freed) >= expect, "only %ld blocks consumed, expected >= %ld",
          atomic_load(&blocks_freed), expect);
    struct lite_malloc_stats s1 = get_stats();
    int t = malloc_trim(0);
    CHECK(t == 0 || t == 1, "malloc_trim returned %d", t);
    struct lite_malloc_stats s2 = get_stats();
    note("after all freed: in_use %zu (after malloc_trim %zu), mapped %zu -> %zu, cached %zu, "
         "released %zu", s1.bytes_in_use, s2.bytes_in_use, s1.bytes_mapped, s2.bytes_mapped,
         s2.bytes_cached, s2.bytes_released);
    size_t grown = peak.bytes_in_use - s0.bytes_in_use;
    CHECK(s1.bytes_in_use <= s0.bytes_in_use + grown / 8,
          "bytes_in_use stayed high after every block was freed by other threads: start %zu, "
          "peak %zu, end %zu", s0.bytes_in_use, peak.bytes_in_use, s1.bytes_in_use);
    CHECK(s2.bytes_in_use <= s0.bytes_in_use + grown / 8,
          "bytes_in_use high after malloc_trim: start %zu, peak %zu, end %zu", s0.bytes_in_use,
          peak.bytes_in_use, s2.bytes_in_use);
    CHECK(s2.bytes_mapped >= s2.bytes_in_use, "bytes_mapped < bytes_in_use");

    /* the heap still works for the main thread */
    enum { N = 50000 };
    static char *again[N];
    for (int i = 0; i < N; i++) {
        again[i] = malloc(1 + i % 700);
        CHECK(again[i] != NULL, "malloc after the run");
        fill_pattern(again[i], 1 + i % 700, i);
    }
    for (int i = 0; i < N; i++) {
        CHECK(check_pattern(again[i], 1 + i % 700, i) == (size_t)-1, "block %d corrupted", i);
        free(again[i]);
    }
    note("producer_consumer: all checks passed");
    return 0;
}
