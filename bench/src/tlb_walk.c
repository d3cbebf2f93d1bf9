/*
 * tlb_walk: a dense heap of small nodes walked at random, the case huge pages are for.
 * `nodes` 48-byte nodes are allocated in a row, linked in a random order into one cycle,
 * and the cycle is followed `passes` times: every step a dependent load from an
 * unpredictable page, so the time is mostly cache and TLB misses.  Only the walk is
 * timed.  ops = steps taken.  Arguments: nodes (default 8m), passes (default 2).
 */
#include "bench.h"

struct node {
    struct node *next;
    uint64_t payload[5]; /* 48 bytes in all */
};

int main(int argc, char **argv)
{
    long n = arg_long(argc, argv, "nodes", 8L << 20);
    long passes = arg_long(argc, argv, "passes", 2);
    CHECK(n >= 2 && passes >= 1, "a benchmark's own check");
    struct node **v = (struct node **)bench_array(sizeof(struct node *) * (size_t)n);
    for (long i = 0; i < n; i++) {
        v[i] = (struct node *)malloc(sizeof(struct node));
        CHECK(v[i] != NULL, "a benchmark's own check");
        v[i]->payload[0] = (uint64_t)i;
    }
    rng_t rng = rng_seed(42);
    for (long i = n - 1; i > 0; i--) { /* a random order of the same nodes */
        long j = (long)rng_below(&rng, (uint64_t)i + 1);
        struct node *t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
    for (long i = 0; i < n; i++) v[i]->next = v[(i + 1) % n];
    struct node *p = v[0];
    uint64_t sum = 0;
    bench_time_t t0 = bench_now();
    for (long k = 0; k < passes * n; k++) {
        sum += p->payload[0];
        p = p->next;
    }
    bench_time_t t = bench_since(t0);
    bench_escape(p);
    CHECK(sum == (uint64_t)passes * (uint64_t)n * (uint64_t)(n - 1) / 2, "a benchmark's own check");
    char extra[64];
    snprintf(extra, sizeof extra, "nodes=%ld", n);
    bench_result(passes * n, t, extra);
    for (long i = 0; i < n; i++) free(v[i]);
    return 0;
}
