/*
 * fork_storm: fork while other threads are in the middle of the allocator's slow paths.
 * Four worker threads pass blocks to each other through a shared table, so that nearly
 * every free is a free into another thread's superblock (the outbox, its sends, the
 * claims of idle heaps) and their heaps change superblocks and hosts all the time; the
 * main thread forks 300 times.  Each child hands back the heaps of the threads it does not
 * have (after_fork_child), then allocates and frees in every size range, in its main
 * thread and in a new one, and exits 0.
 * The child's copy of a worker's heap can be caught between two steps of a slow path (an
 * outbox bin half set up, a superblock detached but still current, a host let go of):
 * the child must not crash, abort or hand out a block twice because of it.  Found by
 * fork_load about once in 100 runs (a child died of SIGSEGV in remote_give, sending an
 * outbox bin whose list was still empty); this test forks often enough that the broken
 * handler fails it in nearly every run.
 */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>

enum { NWORKERS = 3, NFORKS = 300, TABLE = 1024 };

static _Atomic(char *) table[TABLE];
static atomic_int stop;

static size_t pick_size(uint64_t *rng)
{
    uint64_t r = rng_below(rng, 100);
    if (r < 90) return 16 + (size_t)rng_below(rng, 2000);
    if (r < 98) return 2000 + (size_t)rng_below(rng, 6000);
    return 8 * KiB + (size_t)rng_below(rng, 100 * KiB);
}

static char *make(size_t n, uint64_t seed)
{
    char *p = malloc(n);
    CHECK(p != NULL, "malloc(%zu) (pid %d)", n, (int)getpid());
    size_t u = malloc_usable_size(p);
    CHECK(u >= n, "usable %zu < %zu", u, n);
    memcpy(p, &u, sizeof u);
    memcpy(p + 8, &seed, sizeof seed);
    fill_pattern_range(p, 16, u, seed);
    return p;
}

static void check_free(char *p, const char *when)
{
    size_t u;
    uint64_t seed;
    memcpy(&u, p, sizeof u);
    memcpy(&seed, p + 8, sizeof seed);
    CHECK(u == malloc_usable_size(p), "%s: block %p says usable %zu, allocator %zu (pid %d)", when,
          (void *)p, u, malloc_usable_size(p), (int)getpid());
    size_t bad = check_pattern_range(p, 16, u, seed);
    CHECK(bad == (size_t)-1, "%s: block %p corrupted at %zu (pid %d)", when, (void *)p, bad, (int)getpid());
    free(p);
}

static void *worker(void *arg)
{
    uint64_t rng = 99 + (uintptr_t)arg, seed = (uint64_t)((uintptr_t)arg + 1) << 40;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        /* swap a fresh block into a random place: what comes out was (nearly always)
         * allocated by another thread */
        char *old = atomic_exchange(&table[rng_below(&rng, TABLE)], make(pick_size(&rng), ++seed));
        if (old) check_free(old, "worker");
    }
    return NULL;
}

static void *child_thread(void *arg)
{
    char **mine = arg;
    uint64_t rng = 3, seed = 0xABC;
    for (int i = 0; i < 64; i++) check_free(mine[i], "child thread: main's block");
    for (int i = 0; i < 200; i++) check_free(make(pick_size(&rng), ++seed), "child thread");
    return NULL;
}

static void child(int k)
{
    alarm(20);
    uint64_t rng = 1000 + (uint64_t)k, seed = (uint64_t)k << 32;
    /* the workers' blocks: free some of them here (their heaps are gone) */
    for (int i = k % 8; i < TABLE; i += 8) {
        char *p = atomic_exchange(&table[i], NULL);
        if (p) check_free(p, "child: a worker's block");
    }
    static char *blocks[500];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 500; i++) blocks[i] = make(pick_size(&rng), ++seed);
        for (int i = 64; i < 500; i++) check_free(blocks[i], "child");
        if (round == 0)
            for (int i = 0; i < 64; i++) check_free(blocks[i], "child");
    }
    pthread_t th;
    CHECK(pthread_create(&th, NULL, child_thread, blocks) == 0, "pthread_create in child %d", k);
    CHECK(pthread_join(th, NULL) == 0, "pthread_join in child");
    _exit(0);
}

int main(void)
{
    watchdog(240);
    expect_lite_serves(100);
    pthread_t th[NWORKERS];
    start_threads(th, NWORKERS, worker);
    int failed = 0;
    for (int k = 0; k < NFORKS; k++) {
        pid_t pid = fork();
        CHECK(pid >= 0, "fork #%d", k);
        if (pid == 0) child(k);
        int st;
        CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            if (failed++ < 5)
                fprintf(stderr, "child %d: %s %d\n", k, WIFSIGNALED(st) ? "killed by signal" : "exit status",
                        WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        }
    }
    atomic_store(&stop, 1);
    join_threads(th, NWORKERS);
    CHECK(failed == 0, "%d of %d children failed", failed, NFORKS);
    for (int i = 0; i < TABLE; i++) {
        char *p = atomic_exchange(&table[i], NULL);
        if (p) check_free(p, "parent at the end");
    }
    note("fork_storm: %d children, all exited 0", NFORKS);
    return 0;
}
