/* A process for lite-malloc-stat to look at: it holds 200 medium blocks of 100 KiB (20 MB
 * of medium_in_use), writes "ready" to the file named by argv[1], and waits for stdin
 * to close (or 60 s).  Built in each of the five ways by live_stat.sh (as C++ with
 * lite-hooks.h for the header-only way: LIVE_HOOKS). */
#ifdef LIVE_HOOKS
#include "lite-hooks.h"
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "lite-malloc.h"

int main(int argc, char **argv)
{
    if (argc < 2) return 2;
    static char *keep[200];
    for (int i = 0; i < 200; i++) {
        keep[i] = (char *)malloc(100 * 1024);
        if (!keep[i] || !lite_owns(keep[i])) return 3;
        memset(keep[i], i, 100 * 1024);
    }
    FILE *f = fopen(argv[1], "w");
    if (!f) return 4;
    fputs("ready\n", f);
    fclose(f);
    alarm(60);
    char c;
    while (read(0, &c, 1) > 0) {}
    for (int i = 0; i < 200; i++) free(keep[i]);
    return 0;
}
