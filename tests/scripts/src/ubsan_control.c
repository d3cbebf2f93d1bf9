/* Positive control for ubsan.sh: deliberate undefined behaviour (signed overflow, then a
 * misaligned load) that UndefinedBehaviorSanitizer must report, stopping the program. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    (void)argv;
    volatile int big = 0x7fffffff;
    char *buf = malloc(64);
    if (!buf) return 2;
    memset(buf, 1, 64);
    int sum = big + argc;                             /* signed overflow: argc >= 1 */
    uint64_t v = *(volatile uint64_t *)(buf + 3);     /* misaligned 8-byte load */
    printf("%d %llu\n", sum, (unsigned long long)v);
    free(buf);
    return 0;
}
