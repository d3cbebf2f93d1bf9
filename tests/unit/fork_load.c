/*
 * fork_load: 4 threads allocate and free continuously (and publish blocks in a shared table)
 * while the main thread forks 20 times.  Each child, under an alarm that turns a deadlock
 * into a failure:
 *  - verifies and frees blocks the parent's main thread allocated before the fork,
 *  - verifies and frees blocks published by the parent's worker threads (whose heaps belong
 *    to threads that do not exist in the child): the parent forks only once at least 64 of
 *    them are published (slots only ever fill in the parent), and each child must take and
 *    free at least that many, each still a lite-malloc block,
 *  - allocates and frees blocks of every size class, from its main thread and from a new
 *    thread it creates (which also frees blocks of the child's main thread),
 *  - forks a grandchild that allocates too,
 * and exits 0.  The parent checks every child with waitpid.
 */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>

enum { NWORKERS = 4, NFORKS = 20, SHARED = 512, PRE = 2000, MIN_PUBLISHED = 64 };

static _Atomic(char *) shared_slots[SHARED];
static atomic_int stop;
static atomic_long worker_ops;

/* self-describing block: usable size and seed in the first 16 bytes, pattern after */
static char *make_block(size_t n, uint64_t seed)
{
    if (n < 16) n = 16;
    char *p = malloc(n);
    CHECK(p != NULL, "malloc(%zu) (pid %d)", n, (int)getpid());
    uint64_t u = malloc_usable_size(p);
    CHECK(u >= n, "usable %zu < %zu", (size_t)u, n);
    CHECK(lite_owns(p) == 1, "lite_owns(new block) != 1 (pid %d)", (int)getpid());
    memcpy(p, &u, 8);
    memcpy(p + 8, &seed, 8);
    fill_pattern_range(p, 16, u, seed);
    return p;
}

static void verify_free(char *p, const char *when)
{
    uint64_t u, seed;
    memcpy(&u, p, 8);
    memcpy(&seed, p + 8, 8);
    CHECK(u == malloc_usable_size(p), "%s: block %p header says usable %zu, allocator says %zu "
          "(pid %d)", when, (void *)p, (size_t)u, malloc_usable_size(p), (int)getpid());
    size_t bad = check_pattern_range(p, 16, u, seed);
    CHECK(bad == (size_t)-1, "%s: block %p corrupted at offset %zu (pid %d)", when, (void *)p, bad,
          (int)getpid());
    free(p);
}

static size_t pick_size(uint64_t *rng)
{
    uint64_t r = rng_below(rng, 1000);
    if (r < 850) return 16 + (size_t)rng_below(rng, 500);
    if (r < 970) return 500 + (size_t)rng_below(rng, 7700);
    if (r < 997) return 8 * KiB + (size_t)rng_below(rng, 120 * KiB);
    return 130 * KiB + (size_t)rng_below(rng, 900 * KiB);
}

static void *worker(void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    uint64_t rng = 77 + id, seed = (uint64_t)(id + 1) << 40;
    enum { L = 64 };
    char *local[L] = {0};
    long ops = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        int i = (int)rng_below(&rng, L);
        if (!local[i]) {
            local[i] = make_block(pick_size(&rng), ++seed);
        } else if (rng_below(&rng, 8) == 0) {
            char *old = atomic_exchange(&shared_slots[rng_below(&rng, SHARED)], local[i]);
            local[i] = NULL;
            if (old) verify_free(old, "parent worker: shared block");
        } else {
            verify_free(local[i], "parent worker: own block");
            local[i] = NULL;
        }
        ops++;
    }
    for (int i = 0; i < L; i++)
        if (local[i]) verify_free(local[i], "parent worker: final");
    atomic_fetch_add(&worker_ops, ops);
    return NULL;
}

static char *pre[PRE];

static void *child_thread(void *arg)
{
    char **blocks = arg; /* blocks of the child's main thread: free them here */
    uint64_t rng = 5, seed = 0xC0FFEE;
    for (int i = 0; i < 100; i++) verify_free(blocks[i], "child thread: main's block");
    char *mine[200];
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 200; i++) mine[i] = make_block(pick_size(&rng), ++seed);
        for (int i = 0; i < 200; i++) verify_free(mine[i], "child thread: own block");
    }
    return NULL;
}

static void child(int k)
{
    alarm(30); /* a deadlock in the child becomes a failure */
    uint64_t rng = 1000 + (uint64_t)k, seed = (uint64_t)k << 32;
    /* the parent main thread's blocks from before the fork: free half here */
    for (int i = 0; i < PRE; i += 2) {
        verify_free(pre[i], "child: parent's pre-fork block");
        pre[i] = NULL;
    }
    /* blocks published by worker threads that do not exist here */
    int taken = 0;
    for (int i = 0; i < SHARED; i++) {
        char *p = atomic_exchange(&shared_slots[i], NULL);
        if (p) {
            expect_lite(p, "worker's block in the child");
            verify_free(p, "child: worker's block");
            taken++;
        }
    }
    CHECK(taken >= MIN_PUBLISHED, "child %d took only %d of the workers' blocks (at least %d were "
          "published before the fork)", k, taken, MIN_PUBLISHED);
    /* allocate/free all size classes */
    static char *blocks[3000];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 3000; i++) blocks[i] = make_block(pick_size(&rng), ++seed);
        for (int i = 100; i < 3000; i++) verify_free(blocks[i], "child: own block");
        for (int i = 100; i < 3000; i++) blocks[i] = NULL;
        if (round < 2)
            for (int i = 0; i < 100; i++) verify_free(blocks[i], "child: own block");
    }
    /* a new thread in the child */
    pthread_t th;
    int rc = pthread_create(&th, NULL, child_thread, blocks);
    CHECK(rc == 0, "pthread_create in child: %d", rc);
    CHECK(pthread_join(th, NULL) == 0, "pthread_join in child");
    /* a grandchild */
    pid_t g = fork();
    CHECK(g >= 0, "fork in child");
    if (g == 0) {
        alarm(30);
        for (int i = 0; i < 1000; i++) verify_free(make_block(pick_size(&rng), ++seed), "grandchild");
        for (int i = 1; i < PRE; i += 2) verify_free(pre[i], "grandchild: pre-fork block");
        _exit(0);
    }
    int st;
    CHECK(waitpid(g, &st, 0) == g, "waitpid(grandchild)");
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "grandchild of child %d failed: status %#x", k, st);
    for (int i = 1; i < PRE; i += 2) verify_free(pre[i], "child: pre-fork block");
    _exit(0);
}

int main(void)
{
    watchdog(240);
    uint64_t rng = 1, seed = 1;
    for (int i = 0; i < PRE; i++) pre[i] = make_block(pick_size(&rng), ++seed);

    pthread_t th[NWORKERS];
    start_threads(th, NWORKERS, worker);

    /* the workers publish blocks from their first operations on: wait for enough of them
     * (slots never empty again in the parent, so this holds for every fork) */
    for (int waited = 0;; waited++) {
        int published = 0;
        for (int i = 0; i < SHARED; i++) published += atomic_load(&shared_slots[i]) != NULL;
        if (published >= MIN_PUBLISHED) break;
        CHECK(waited < 10000, "after 10 s only %d blocks published by the workers", published);
        struct timespec ms = {0, 1000000L};
        nanosleep(&ms, NULL);
    }
    pid_t kids[NFORKS];
    for (int k = 0; k < NFORKS; k++) {
        struct timespec ts = {0, (long)(rng_below(&rng, 20) + 1) * 1000000L};
        nanosleep(&ts, NULL);
        /* the parent keeps allocating between forks too */
        char *tmp = make_block(pick_size(&rng), ++seed);
        pid_t pid = fork();
        CHECK(pid >= 0, "fork #%d failed", k);
        if (pid == 0) child(k);
        kids[k] = pid;
        verify_free(tmp, "parent main: block around fork");
    }
    int failed = 0;
    for (int k = 0; k < NFORKS; k++) {
        int st;
        pid_t r = waitpid(kids[k], &st, 0);
        CHECK(r == kids[k], "waitpid(child %d)", k);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            if (WIFSIGNALED(st))
                fprintf(stderr, "FAIL: child %d killed by signal %d\n", k, WTERMSIG(st));
            else
                fprintf(stderr, "FAIL: child %d exited with status %d\n", k, WEXITSTATUS(st));
            failed++;
        }
    }
    atomic_store(&stop, 1);
    join_threads(th, NWORKERS);
    CHECK(failed == 0, "%d of %d children failed", failed, NFORKS);
    for (int i = 0; i < SHARED; i++) {
        char *p = atomic_exchange(&shared_slots[i], NULL);
        if (p) verify_free(p, "parent: shared block at end");
    }
    for (int i = 0; i < PRE; i++) verify_free(pre[i], "parent: pre-fork block");
    note("fork_load: %d children ok, workers did %ld operations", NFORKS, atomic_load(&worker_ops));
    return 0;
}
