/*
 * dlopen_cycle LIB CYCLES: open LIB (liblite-malloc-shared.so) with dlopen, use its lite_*
 * API from a new thread, dlclose it while that thread is still alive, let the thread exit
 * (its heap's thread-exit hook then runs), and repeat.  Prints "CYCLES n VM_GROWTH_MIB m
 * SAME_HANDLE k" and exits 0 when every cycle ran; a hook left pointing into an unmapped
 * library crashes the process instead.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "../../harness.h"

static void *(*lmalloc)(size_t);
static void (*lfree)(void *);
static atomic_int used, may_exit;

static void *user(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100; i++) {
        char *p = lmalloc(64 + (size_t)i * 24);
        if (!p) { fprintf(stderr, "lite_malloc failed\n"); exit(3); }
        memset(p, i, 64);
        lfree(p);
    }
    atomic_store(&used, 1);
    while (!atomic_load(&may_exit)) usleep(100);
    return NULL;
}

static long vm_kib(void) { return proc_kb("/proc/self/status", "VmSize"); }

int main(int argc, char **argv)
{
    if (argc < 3) return 2;
    int cycles = atoi(argv[2]), same = 0;
    long vm0 = -1;
    void *first = NULL;
    for (int c = 0; c < cycles; c++) {
        void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
        if (!h) { fprintf(stderr, "dlopen: %s\n", dlerror()); return 4; }
        if (c == 0) first = h;
        same += h == first;
        lmalloc = (void *(*)(size_t))dlsym(h, "lite_malloc");
        lfree = (void (*)(void *))dlsym(h, "lite_free");
        if (!lmalloc || !lfree) { fprintf(stderr, "dlsym: %s\n", dlerror()); return 5; }
        atomic_store(&used, 0);
        atomic_store(&may_exit, 0);
        pthread_t t;
        if (pthread_create(&t, NULL, user, NULL) != 0) { fprintf(stderr, "pthread_create failed at cycle %d\n", c); return 6; }
        while (!atomic_load(&used)) usleep(100);
        if (dlclose(h) != 0) { fprintf(stderr, "dlclose: %s\n", dlerror()); return 7; }
        atomic_store(&may_exit, 1);
        pthread_join(t, NULL);
        if (c == 0) vm0 = vm_kib();
    }
    printf("CYCLES %d VM_GROWTH_MIB %ld SAME_HANDLE %d\n", cycles, (vm_kib() - vm0) / 1024, same);
    return 0;
}
