/* Built by install.sh with nothing but `pkg-config --cflags --libs lite-malloc`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lite-malloc.h>

int main(int argc, char **argv) {
    const char *want = argc > 1 ? argv[1] : "";
    char *p = malloc(1000), *s = strdup("installed");
    void *q = lite_malloc(64);
    int local = 0;
    int ok = lite_owns(p) == 1 && lite_owns(s) == 1 && lite_owns(q) == 1 && lite_owns(&local) == 0;
    FILE *maps = fopen("/proc/self/maps", "r");
    char line[4096];
    int mapped = 0;
    while (maps && fgets(line, sizeof line, maps))
        if (strstr(line, want) && strstr(line, "liblite-malloc-shared.so")) mapped = 1;
    if (maps) fclose(maps);
    if (!mapped) fprintf(stderr, "FAIL: %s/liblite-malloc-shared.so is not mapped\n", want);
    if (!ok) fprintf(stderr, "FAIL: blocks are not lite-malloc's\n");
    free(p);
    free(s);
    lite_free(q);
    if (!ok || !mapped) return 1;
    puts("installed lite-malloc works");
    return 0;
}
