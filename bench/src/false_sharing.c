/*
 * false_sharing: `threads` threads take turns allocating small blocks (8..64 B), strictly
 * interleaved in time (thread 0, thread 1, thread 0, ...), as threads of a server
 * allocating at the same moment do.  Then each thread writes its own blocks hard, in a
 * loop.  If the allocator gave blocks of different threads out of the same cache line,
 * every write makes that line bounce between cores and the loop is many times slower.
 * Per-thread heaps keep them apart; a shared heap handing out consecutive blocks does not.
 * Reported: the time of the write phase, and shared_lines, the number of 64-byte cache
 * lines in which the written words of two or more threads lie.  The count is exact and
 * immune to noise; the time shows the cost only when the threads really run at once,
 * which on a loaded 2-core machine they often do not.
 * ops = block writes.  Arguments: ops (writes per thread), threads, blocks (per thread).
 */
#include <stdatomic.h>
#include "bench.h"

#define MAXBLOCKS 1024

static int nthreads;
static long nblocks, rounds;
static _Atomic long turn;           /* whose turn it is to allocate: turn % nthreads */
static uintptr_t *owner_line;       /* per block: its cache line << 16 | its thread */
static pthread_barrier_t start_writes;

/* Each worker times its own write phase; the run's time spans the first start to the
 * last end (a timer thread would itself wait for a core on a loaded machine). */
typedef struct { int id; double start, end, cpu; } arg_t;

static void *worker(void *arg)
{
    arg_t *a = (arg_t *)arg;
    int id = a->id;
    rng_t rng = rng_seed((uint64_t)id + 17);
    volatile uint64_t *mine[MAXBLOCKS];
    unsigned spins = 0;
    for (long i = 0; i < nblocks; i++) {
        while (atomic_load_explicit(&turn, memory_order_acquire) != i * nthreads + id)
            bench_pause(&spins);
        mine[i] = (volatile uint64_t *)malloc(rng_range(&rng, 8, 64));
        *mine[i] = 0;
        owner_line[i * nthreads + id] = (uintptr_t)mine[i] >> 6 << 16 | (uintptr_t)id;
        atomic_store_explicit(&turn, i * nthreads + id + 1, memory_order_release);
    }
    pthread_barrier_wait(&start_writes);
    a->start = bench_clock_s(CLOCK_MONOTONIC);
    a->cpu = bench_clock_s(CLOCK_THREAD_CPUTIME_ID);
    for (long r = 0; r < rounds; r++)
        for (long i = 0; i < nblocks; i++) *mine[i] += 1;
    a->end = bench_clock_s(CLOCK_MONOTONIC);
    a->cpu = bench_clock_s(CLOCK_THREAD_CPUTIME_ID) - a->cpu;
    for (long i = 0; i < nblocks; i++) {
        CHECK(*mine[i] == (uint64_t)rounds, "a benchmark's own check");
        free((void *)mine[i]);
    }
    return NULL;
}

static int cmp_uintptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return (x > y) - (x < y);
}

/* Cache lines written by more than one thread: sort the (line, thread) records by line,
 * then count the runs of one line that name more than one thread. */
static long count_shared_lines(void)
{
    long n = nblocks * nthreads, shared = 0;
    qsort(owner_line, (size_t)n, sizeof *owner_line, cmp_uintptr);
    for (long i = 0; i < n;) {
        long j = i + 1;
        int mixed = 0;
        for (; j < n && owner_line[j] >> 16 == owner_line[i] >> 16; j++)
            mixed |= (owner_line[j] & 0xffff) != (owner_line[i] & 0xffff);
        shared += mixed;
        i = j;
    }
    return shared;
}

int main(int argc, char **argv)
{
    long ops = arg_long(argc, argv, "ops", 200000000);
    nthreads = (int)arg_long(argc, argv, "threads", 2);
    nblocks = arg_long(argc, argv, "blocks", 64);
    CHECK(nthreads >= 1 && nthreads < 65536 && nblocks >= 1 && nblocks <= MAXBLOCKS, "a benchmark's own check");
    rounds = ops / nblocks;

    pthread_barrier_init(&start_writes, NULL, (unsigned)nthreads);
    owner_line = (uintptr_t *)bench_array(sizeof(uintptr_t) * (size_t)(nblocks * nthreads));
    arg_t *args = (arg_t *)bench_array(sizeof(arg_t) * (size_t)nthreads);
    for (int i = 0; i < nthreads; i++) args[i].id = i;
    bench_run_threads(nthreads, worker, args, sizeof(arg_t));
    double first = args[0].start, last = args[0].end;
    bench_time_t t = { 0, 0 };
    for (int i = 0; i < nthreads; i++) {
        first = args[i].start < first ? args[i].start : first;
        last = args[i].end > last ? args[i].end : last;
        t.cpu += args[i].cpu;
    }
    t.wall = last - first;
    char extra[64];
    snprintf(extra, sizeof extra, "threads=%d shared_lines=%ld", nthreads, count_shared_lines());
    bench_result((long long)nthreads * rounds * nblocks, t, extra);
    return 0;
}
