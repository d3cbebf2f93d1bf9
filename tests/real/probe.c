/*
 * Evidence probe for tests/real/run.sh.  run.sh preloads it after liblite-malloc-shared.so
 * (LD_PRELOAD="liblite-malloc-shared.so probe.so") into every program it tests; it does
 * nothing unless $LITE_REAL_PROBE_OUT names a file.  When the process exits normally it
 * appends one line to that file (a single O_APPEND write, so lines from concurrent processes
 * do not mix):
 *   probe pid=N exe=PATH malloc=lite|exe|PATH owns=0|1 in_use=N mapped=N superblocks=N threads=N
 * malloc=   which object the process-wide `malloc` resolves to (dladdr of
 *           dlsym(RTLD_DEFAULT)): "lite" = liblite-malloc-shared.so, "exe" = a canonical PLT
 *           entry in the executable (which binds to the same global definition), else a path.
 * owns=1    blocks from malloc/realloc/calloc called here, through the same global symbol
 *           scope as the program's and its libraries' calls, are lite-malloc's (lite_owns).
 * superblocks, threads, mapped: lite_stats() at exit; superblocks > 0 means lite-malloc
 *           carved memory for the program's allocations (the probe itself allocates only here,
 *           after those figures are read).
 * If lite_stats/lite_owns cannot be found the line says "lite-malloc-not-found".
 * It never writes to stdout/stderr, so it does not change what the program prints.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lite-malloc.h"

static const char *definer(const char *sym, const void *lite_sym) {
    Dl_info info, lite;
    void *addr = dlsym(RTLD_DEFAULT, sym);
    if (!addr || !dladdr(addr, &info) || !info.dli_fname) return "?";
    if (lite_sym && dladdr(lite_sym, &lite) && lite.dli_fbase == info.dli_fbase) return "lite";
    if (strcmp(info.dli_fname, program_invocation_name) == 0 || info.dli_fname[0] == '\0')
        return "exe";
    return info.dli_fname;
}

__attribute__((destructor)) static void probe_fini(void) {
    const char *out = getenv("LITE_REAL_PROBE_OUT");
    if (!out || !*out) return;
    int saved_errno = errno;
    char exe[512];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        for (char *c = exe; *c; c++)  /* one field: " (deleted)" must not split it */
            if (*c == ' ') *c = '_';
    } else {  /* no /proc: the name it was started with */
        snprintf(exe, sizeof exe, "%s", program_invocation_name);
    }
    void (*stats_fn)(struct lite_malloc_stats *) =
        (void (*)(struct lite_malloc_stats *))dlsym(RTLD_DEFAULT, "lite_stats");
    int (*owns_fn)(const void *) = (int (*)(const void *))dlsym(RTLD_DEFAULT, "lite_owns");
    char line[1024];
    int len;
    if (!stats_fn || !owns_fn) {
        len = snprintf(line, sizeof line, "probe pid=%d exe=%s lite-malloc-not-found\n",
                       (int)getpid(), exe);
    } else {
        struct lite_malloc_stats s;
        stats_fn(&s);
        int owned = 1;
        void *p = malloc(123);
        owned &= p && owns_fn(p) == 1;
        p = realloc(p, 70000);
        owned &= p && owns_fn(p) == 1;
        free(p);
        p = calloc(10, 10);
        owned &= p && owns_fn(p) == 1;
        free(p);
        len = snprintf(line, sizeof line,
                       "probe pid=%d exe=%s malloc=%s owns=%d in_use=%zu mapped=%zu "
                       "superblocks=%zu threads=%zu\n",
                       (int)getpid(), exe, definer("malloc", (const void *)owns_fn), owned,
                       s.bytes_in_use, s.bytes_mapped, s.superblocks, s.threads);
    }
    if (len > 0) {
        if ((size_t)len >= sizeof line) len = sizeof line - 1;
        int fd = open(out, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd >= 0) {
            ssize_t w = write(fd, line, (size_t)len);
            (void)w;
            close(fd);
        }
    }
    errno = saved_errno;
}
