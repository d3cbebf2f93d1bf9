/*
 * sparse_threads: many threads, each holding one block of each of 40 sizes (16 B to
 * 7 KiB, geometric), all alive at once: the sparsest heap there is, where huge pages
 * (or any per-thread reserve) cost the most.  Each thread allocates its blocks, writes
 * each in full, and waits until all have; the main thread then reads RSS and lets them
 * go.  The figure is the peak RSS; ops = threads.  Arguments: ops (threads, default 512).
 */
#include "bench.h"

enum { SIZES = 40 };
static pthread_barrier_t held, done;

static void *worker(void *arg)
{
    (void)arg;
    void *mine[SIZES];
    double s = 16;
    for (int k = 0; k < SIZES; k++, s *= 1.17) { /* 16 B .. ~7 KiB */
        size_t n = (size_t)s / 16 * 16;
        mine[k] = malloc(n);
        CHECK(mine[k] != NULL, "a benchmark's own check");
        memset(mine[k], k + 1, n);
    }
    pthread_barrier_wait(&held);
    pthread_barrier_wait(&done);
    for (int k = 0; k < SIZES; k++) free(mine[k]);
    return NULL;
}

int main(int argc, char **argv)
{
    long nthreads = arg_long(argc, argv, "ops", 512);
    CHECK(nthreads >= 1 && nthreads <= 4096, "a benchmark's own check");
    pthread_t *th = (pthread_t *)bench_array(sizeof(pthread_t) * (size_t)nthreads);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    pthread_barrier_init(&held, NULL, (unsigned)nthreads + 1);
    pthread_barrier_init(&done, NULL, (unsigned)nthreads + 1);
    bench_time_t t0 = bench_now();
    for (long i = 0; i < nthreads; i++) CHECK(pthread_create(&th[i], &attr, worker, NULL) == 0, "a benchmark's own check");
    pthread_barrier_wait(&held);
    long holding = bench_rss_kb();
    pthread_barrier_wait(&done);
    for (long i = 0; i < nthreads; i++) pthread_join(th[i], NULL);
    bench_time_t t = bench_since(t0);
    char extra[64];
    snprintf(extra, sizeof extra, "holding_rss_kb=%ld", holding);
    bench_result(nthreads, t, extra);
    return 0;
}
