/*
 * Probe preloaded after liblite-malloc-shared.so into unmodified programs (way4).
 * It does not allocate on the program's behalf; it only looks:
 *   - which object the global `malloc`, `free`, `realloc` and `calloc` resolve to (dladdr of
 *     dlsym(RTLD_DEFAULT, ...)): liblite-malloc-shared.so, or the executable itself when it
 *     has a canonical PLT entry for the function (python3 does), never libc;
 *   - lite_owns() of blocks from malloc/realloc/calloc/posix_memalign called here: these
 *     calls bind through the same global scope as the program's and libc's own calls;
 *   - the peak of lite_stats().bytes_in_use, sampled every millisecond by a thread, so a big
 *     buffer of the program (sort's sort buffer, python's objects) shows up in lite's books.
 * At exit it appends one line to $LITE_PROBE_OUT:
 *   probe pid=N malloc=WHO free=WHO realloc=WHO calloc=WHO owns=0|1 peak_in_use=N
 *         mapped=N superblocks=N threads=N
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <time.h>
#include <unistd.h>

#include "lite-malloc.h"

static void (*stats_fn)(struct lite_malloc_stats *);
static int (*owns_fn)(const void *);
static volatile int stop;
static size_t peak;
static pthread_t sampler;
static int have_sampler;

static void sample(void) {
    struct lite_malloc_stats s;
    stats_fn(&s);
    if (s.bytes_in_use > peak) peak = s.bytes_in_use;
}

static void *sampler_main(void *arg) {
    (void)arg;
    struct timespec ts = {0, 1000000};
    while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
        sample();
        nanosleep(&ts, NULL);
    }
    return NULL;
}

__attribute__((constructor)) static void probe_init(void) {
    stats_fn = (void (*)(struct lite_malloc_stats *))dlsym(RTLD_DEFAULT, "lite_stats");
    owns_fn = (int (*)(const void *))dlsym(RTLD_DEFAULT, "lite_owns");
    if (stats_fn && getenv("LITE_PROBE_OUT"))
        have_sampler = pthread_create(&sampler, NULL, sampler_main, NULL) == 0;
}

/* "lite" when the global definition of sym is in the same object as lite_owns, "exe" when
 * it is the executable's canonical PLT entry (dladdr names the main program by argv[0]),
 * otherwise the defining object's path. */
static const char *definer(const char *sym) {
    Dl_info info, lite;
    void *addr = dlsym(RTLD_DEFAULT, sym);
    if (!addr || !dladdr(addr, &info) || !info.dli_fname) return "?";
    if (dladdr((void *)owns_fn, &lite) && lite.dli_fbase == info.dli_fbase) return "lite";
    if (strcmp(info.dli_fname, program_invocation_name) == 0) return "exe";
    return info.dli_fname;
}

__attribute__((destructor)) static void probe_fini(void) {
    const char *out = getenv("LITE_PROBE_OUT");
    if (!out) return;
    if (have_sampler) {
        __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
        pthread_join(sampler, NULL);
    }
    FILE *f = fopen(out, "a");
    if (!f) return;
    if (!stats_fn || !owns_fn) {
        fprintf(f, "probe pid=%d lite-malloc-not-found\n", (int)getpid());
        fclose(f);
        return;
    }
    sample();
    /* These calls bind through the same global symbol scope as the program's own (and
     * libc's) calls, so lite_owns() on their results says who serves the program. */
    int owned = 1;
    void *p = malloc(123);
    owned &= owns_fn(p) == 1;
    p = realloc(p, 100000);
    owned &= owns_fn(p) == 1;
    free(p);
    p = calloc(10, 10);
    owned &= owns_fn(p) == 1;
    free(p);
    p = NULL;
    owned &= posix_memalign(&p, 64, 200) == 0 && owns_fn(p) == 1;
    free(p);
    struct lite_malloc_stats s;
    stats_fn(&s);
    fprintf(f, "probe pid=%d malloc=%s free=%s realloc=%s calloc=%s owns=%d peak_in_use=%zu "
               "mapped=%zu superblocks=%zu threads=%zu\n",
            (int)getpid(), definer("malloc"), definer("free"), definer("realloc"),
            definer("calloc"), owned, peak, s.bytes_mapped, s.superblocks, s.threads);
    fclose(f);
}
