/*
 * fork_heaps: in the child of a multi-threaded parent, the heaps of the parent's other
 * threads (which do not exist in the child) must be handed back, not hold what they own
 * forever.  8 threads each allocate 64 blocks of each of 40 sizes (16 B to 40 KiB), free
 * 60 of each, publish the other 4 and then wait, alive, while the main thread forks.  In
 * the child:
 *  - right after the fork, the superblocks those heaps owned, with 60 of 64 blocks free,
 *    are no longer theirs: the child's count of superblocks in use must not exceed the
 *    parent's, and once the child has freed the 4 x 40 x 8 published blocks (freed by a
 *    thread that never owned them), those superblocks are empty and back in the slot
 *    store: the count falls by at least half of the parent's threads' superblocks;
 *  - the child then runs the same pattern in 8 threads of its own: its superblock count
 *    stays within the parent's (the memory the parent's threads held serves it).
 * Before the fork handler, the count did not move after the frees (the owned superblocks
 * stayed owned by heaps nobody would use again) and the child's threads carved new ones.
 */
#include "check.h"

#include <pthread.h>
#include <sys/wait.h>

enum { THREADS = 8, SIZES = 40, PER = 64, KEEP = 4 };

static char *kept[THREADS][SIZES][KEEP];
static pthread_barrier_t ready, done;

static size_t size_of(int k)
{
    /* 16 B .. 40 KiB, geometric: every range of the small classes */
    double s = 16.0;
    for (int i = 0; i < k; i++) s *= 1.2;
    return (size_t)s / 16 * 16;
}

static void pattern(int t, int wait_after)
{
    static char *blocks[THREADS][SIZES][PER];
    for (int k = 0; k < SIZES; k++) {
        size_t n = size_of(k);
        for (int i = 0; i < PER; i++) {
            char *p = malloc(n);
            CHECK(p != NULL, "malloc(%zu)", n);
            memset(p, t + 1, n < 64 ? n : 64);
            blocks[t][k][i] = p;
        }
        expect_lite(blocks[t][k][0], "a thread's block");
        for (int i = KEEP; i < PER; i++) free(blocks[t][k][i]);
        for (int i = 0; i < KEEP; i++) kept[t][k][i] = blocks[t][k][i];
    }
    if (wait_after) {
        pthread_barrier_wait(&ready);
        pthread_barrier_wait(&done);
    }
}

static void *worker(void *arg)
{
    pattern((int)(intptr_t)arg, 1);
    return NULL;
}
static void *child_worker(void *arg)
{
    pattern((int)(intptr_t)arg, 0);
    return NULL;
}

static void free_kept(void)
{
    for (int t = 0; t < THREADS; t++)
        for (int k = 0; k < SIZES; k++)
            for (int i = 0; i < KEEP; i++) {
                char *p = kept[t][k][i];
                CHECK(p[0] == t + 1, "a published block lost its contents");
                free(p);
                kept[t][k][i] = NULL;
            }
}

int main(void)
{
    watchdog(120);
    struct lite_malloc_stats s0 = get_stats();
    pthread_barrier_init(&ready, NULL, THREADS + 1);
    pthread_barrier_init(&done, NULL, THREADS + 1);
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++)
        CHECK(pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t) == 0, "pthread_create");
    pthread_barrier_wait(&ready);
    struct lite_malloc_stats sp = get_stats();
    size_t threads_sb = sp.superblocks - s0.superblocks;
    note("parent: %zu superblocks in use, %zu of them carved by the %d threads", sp.superblocks, threads_sb,
         THREADS);
    CHECK(threads_sb >= THREADS * SIZES / 2, "the threads carved only %zu superblocks: is malloc lite-malloc's?",
          threads_sb);

    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        watchdog(60);
        struct lite_malloc_stats c0 = get_stats();
        free_kept();
        struct lite_malloc_stats c1 = get_stats();
        note("child: %zu superblocks right after the fork, %zu once the published blocks were freed",
             c0.superblocks, c1.superblocks);
        CHECK(c0.superblocks <= sp.superblocks, "child: %zu superblocks after the fork, parent had %zu",
              c0.superblocks, sp.superblocks);
        CHECK(c1.superblocks + threads_sb / 2 <= sp.superblocks,
              "child: %zu superblocks after every published block was freed (parent %zu, its threads' %zu): "
              "the heaps of the parent's threads still hold theirs",
              c1.superblocks, sp.superblocks, threads_sb);
        pthread_t ct[THREADS];
        for (int t = 0; t < THREADS; t++)
            CHECK(pthread_create(&ct[t], NULL, child_worker, (void *)(intptr_t)t) == 0, "child pthread_create");
        for (int t = 0; t < THREADS; t++) pthread_join(ct[t], NULL);
        struct lite_malloc_stats c2 = get_stats();
        note("child: %zu superblocks after its own threads ran the same pattern", c2.superblocks);
        CHECK(c2.superblocks <= sp.superblocks + threads_sb / 4,
              "child: %zu superblocks after its threads ran the parent's pattern (parent %zu): "
              "the parent's threads' memory did not serve them",
              c2.superblocks, sp.superblocks);
        free_kept();
        _exit(0);
    }
    int st = 0;
    CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
    pthread_barrier_wait(&done);
    for (int t = 0; t < THREADS; t++) pthread_join(th[t], NULL);
    free_kept();
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child failed (status 0x%x)", st);
    note("PASS");
    return 0;
}
