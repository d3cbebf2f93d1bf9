/* debug_probe: breaks one of the allocator's invariants the way a buggy program does, for
 * tests/scripts/debug_build.sh.
 *   uaf-link   a write after free into the first word of a free small block (its link):
 *              the debug build must abort at the next malloc that takes the block,
 *              naming the free list; the release build hands out a wild pointer later.
 *   ok         the same sequence without the write: must print "debug_probe: ok". */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "ok";
    char *a = malloc(48), *b = malloc(48);
    if (!a || !b) return 2;
    free(b);
    free(a);  /* a is now at the head of the free list, its link pointing at b */
    if (!strcmp(mode, "uaf-link")) {
        uintptr_t junk = (uintptr_t)a ^ 0x5a5a5a5a5a5a5a5aull;
        memcpy(a, &junk, sizeof junk);
        __asm__ volatile("" : : "r"(a) : "memory");
    }
    char *c = malloc(48);  /* takes a: its link becomes the free list's head */
    char *d = malloc(48);
    if (!strcmp(mode, "uaf-link")) {
        printf("debug_probe: the corrupted link went unnoticed (%p %p)\n", (void *)c, (void *)d);
        fflush(stdout);
        return 0;  /* (the release build: d may be wild; not touched) */
    }
    free(d);
    free(c);
    puts("debug_probe: ok");
    return 0;
}
