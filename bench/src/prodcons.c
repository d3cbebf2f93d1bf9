/*
 * prodcons: `pairs` producer/consumer thread pairs.  Each producer allocates batches of
 * `batch` blocks (random 16..256 B, first bytes written) and hands every batch to its
 * consumer through a bounded single-producer/single-consumer ring; the consumer reads and
 * frees them.  Every free is remote (the block belongs to the other thread's heap), the
 * pattern of a pipeline or a network server handing buffers between threads.
 * ops = blocks passed.  Arguments: ops (blocks per pair), pairs, batch.
 */
#include <stdatomic.h>
#include "bench.h"

#define RING 64     /* batches in flight per pair */
#define MAXBATCH 256

typedef struct {
    _Alignas(64) _Atomic long head; /* batches published by the producer */
    _Alignas(64) _Atomic long tail; /* batches consumed */
    _Alignas(64) void *slot[RING][MAXBATCH];
    long batches, batch;
    int id;
} pair_t;

typedef struct { pair_t *pair; int consumer; } role_t;

static void *producer(pair_t *q)
{
    rng_t rng = rng_seed(2 * (uint64_t)q->id + 1);
    unsigned spins = 0;
    for (long b = 0; b < q->batches; b++) {
        while (b - atomic_load_explicit(&q->tail, memory_order_acquire) >= RING)
            bench_pause(&spins); /* ring full: the consumer is behind */
        void **out = q->slot[b % RING];
        for (long i = 0; i < q->batch; i++) {
            size_t n = rng_range(&rng, 16, 256);
            out[i] = malloc(n);
            *(uint64_t *)out[i] = n;
        }
        atomic_store_explicit(&q->head, b + 1, memory_order_release);
    }
    return NULL;
}

static void *consumer(pair_t *q)
{
    unsigned spins = 0;
    uint64_t sum = 0;
    for (long b = 0; b < q->batches; b++) {
        while (atomic_load_explicit(&q->head, memory_order_acquire) <= b)
            bench_pause(&spins); /* ring empty: the producer is behind */
        void **in = q->slot[b % RING];
        for (long i = 0; i < q->batch; i++) {
            sum += *(uint64_t *)in[i];
            free(in[i]);
        }
        atomic_store_explicit(&q->tail, b + 1, memory_order_release);
    }
    CHECK(sum >= 16 * (uint64_t)(q->batches * q->batch), "a benchmark's own check");
    return NULL;
}

static void *run_role(void *arg)
{
    role_t *r = (role_t *)arg;
    return r->consumer ? consumer(r->pair) : producer(r->pair);
}

int main(int argc, char **argv)
{
    long ops = arg_long(argc, argv, "ops", 10000000);
    int pairs = (int)arg_long(argc, argv, "pairs", 1);
    long batch = arg_long(argc, argv, "batch", 64);
    CHECK(pairs >= 1 && batch >= 1 && batch <= MAXBATCH, "a benchmark's own check");

    pair_t *q = (pair_t *)bench_array(sizeof(pair_t) * (size_t)pairs);
    role_t *roles = (role_t *)bench_array(sizeof(role_t) * 2 * (size_t)pairs);
    for (int i = 0; i < pairs; i++) {
        q[i].batches = ops / batch;
        q[i].batch = batch;
        q[i].id = i;
        roles[2 * i] = (role_t){ &q[i], 0 };
        roles[2 * i + 1] = (role_t){ &q[i], 1 };
    }
    bench_time_t t0 = bench_now();
    bench_run_threads(2 * pairs, run_role, roles, sizeof(role_t));
    bench_time_t t = bench_since(t0);
    char extra[64];
    snprintf(extra, sizeof extra, "threads=%d", 2 * pairs);
    bench_result((long long)pairs * (ops / batch) * batch, t, extra);
    return 0;
}
