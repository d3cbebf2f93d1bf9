/*
 * Memory comes back.
 *   default run: 4 threads allocate 4 GiB of small blocks (64 B .. 1 KiB) between them,
 *     then free them all, half their own and half another thread's (remote frees), and
 *     exit.  RSS must then be under the retain bound (64 MiB) + 64 MiB without any trim
 *     call, and under 64 MiB after malloc_trim(0).
 *   It then re-runs itself (512 MiB scenario) with LITE_MALLOC_RETAIN_MB=0, where RSS
 *   must drop under 64 MiB with no trim call, and with LITE_MALLOC_RETAIN_MB=-1 ("keep
 *   everything"), where RSS must stay above 400 MiB until malloc_trim(0), then drop.
 * The environment variables are read by the library at start-up, hence the re-exec.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include "check.h"

#define THREADS 4
static size_t per_thread;              /* bytes each thread allocates */
static void **blocks[THREADS];
static size_t counts[THREADS];
static pthread_barrier_t barrier;

static long rss_mib(void) { return (long)(rss_bytes() >> 20); }

static void *worker(void *arg) {
    int id = (int)(intptr_t)arg;
    uint64_t x = 0x9e3779b97f4a7c15ull * (id + 1);
    size_t cap = per_thread / 64 + 1, n = 0, total = 0;
    void **v = malloc(cap * sizeof *v);
    CHECK(v != NULL, "%s", "");
    while (total < per_thread && n < cap) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        size_t size = 64 + (x >> 40) % 961;
        char *p = malloc(size);
        CHECK(p != NULL, "%s", "");
        p[0] = (char)id; p[size - 1] = (char)id;
        v[n++] = p;
        total += size;
    }
    blocks[id] = v;
    counts[id] = n;
    pthread_barrier_wait(&barrier);
    /* even slots of our own blocks, odd slots of the next thread's */
    void **other = blocks[(id + 1) % THREADS];
    size_t on = counts[(id + 1) % THREADS];
    for (size_t i = 0; i < n; i += 2) { CHECK(((char *)v[i])[0] == (char)id, "block %zu of thread %d corrupted", i, id); free(v[i]); }
    for (size_t i = 1; i < on; i += 2) free(other[i]);
    pthread_barrier_wait(&barrier);
    free(v);
    return NULL;
}

static void scenario(size_t total) {
    per_thread = total / THREADS;
    pthread_t t[THREADS];
    pthread_barrier_init(&barrier, NULL, THREADS);
    for (int i = 0; i < THREADS; i++) CHECK(pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i) == 0, "%s", "");
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    pthread_barrier_destroy(&barrier);
}

static int child(const char *retain, const char *mode) {
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0, "%s", "");
    if (pid == 0) {
        setenv("LITE_MALLOC_RETAIN_MB", retain, 1);
        execl("/proc/self/exe", "trim_rss", mode, (char *)NULL);
        _exit(127);
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid, "%s", "");
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "main";
    if (!strcmp(mode, "main")) {
        long before = rss_mib();
        scenario((size_t)4 << 30);
        long after_free = rss_mib();
        malloc_trim(0);
        long after_trim = rss_mib();
        printf("4 GiB over 4 threads: RSS %ld MiB at start, %ld MiB after free, %ld MiB after malloc_trim(0)\n",
               before, after_free, after_trim);
        CHECK(after_free < 64 + 64, "RSS %ld MiB after free", after_free);
        CHECK(after_trim < 64, "RSS %ld MiB after trim", after_trim);
        CHECK(child("0", "retain0") == 0, "%s", "");
        CHECK(child("-1", "keepall") == 0, "%s", "");
    } else if (!strcmp(mode, "retain0")) {
        scenario((size_t)512 << 20);
        long r = rss_mib();
        printf("LITE_MALLOC_RETAIN_MB=0: RSS %ld MiB after freeing 512 MiB, no trim\n", r);
        CHECK(r < 64, "%s", "");
    } else if (!strcmp(mode, "keepall")) {
        scenario((size_t)512 << 20);
        long kept = rss_mib();
        malloc_trim(0);
        long trimmed = rss_mib();
        printf("LITE_MALLOC_RETAIN_MB=-1: RSS %ld MiB after freeing 512 MiB, %ld MiB after trim\n", kept, trimmed);
        CHECK(kept > 400, "%s", "");
        CHECK(trimmed < 64, "%s", "");
    } else {
        return 2;
    }
    return 0;
}
