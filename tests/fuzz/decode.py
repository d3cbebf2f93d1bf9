#!/usr/bin/env python3
"""Prints a fuzz_ops input as the operation sequence fuzz_ops.cpp executes (one line per
record, grouped by round).  Usage: decode.py FILE..."""
import sys

OPS = ["MALLOC", "CALLOC", "REALLOC", "REALLOC_REL", "ALIGNED_ALLOC", "POSIX_MEMALIGN", "FREE",
       "PASS", "CHECK", "BULK_ALLOC", "BULK_FREE", "SYNC", "TRIM", "STATS", "MISC", "RESPAWN"]
RANGES = ["tiny", "small", "medium", "large"]


def size_of(rng, v):
    if rng == 0:
        return v % 257
    if rng == 1:
        return v % 8209
    if rng == 2:
        s = ((v >> 8) % 72) * 4096 + (v & 0xff) - 128
        return max(s, 1)
    hi, lo = v >> 8, (v & 0xff) * 16
    return (128 << 10) + hi * 4096 + lo - 2048 if hi < 224 else (hi - 223) * (128 << 10) + lo


def aligned_size_of(rng, b):
    return [b, b * 32 + 1, b * 1024 + 7, (b + 1) * 16384][rng]


def describe(op, slot, a, b, n):
    opc, rng, w = op & 15, (op >> 4) & 3, ((op >> 6) & 3) % n
    s, flags, v = slot & 31, slot >> 5, a | b << 8
    name = OPS[opc]
    if opc in (0, 1, 2):
        arg = "size=%d" % size_of(rng, v)
    elif opc == 3:
        arg = "mode=%d a=%d b=%d" % (flags & 3, a, b)
    elif opc in (4, 5):
        arg = "align=%d size=%d" % (1 << (a % 21), aligned_size_of(rng, b))
    elif opc == 7:
        arg = "to=w%d %s" % ((w + 1 + a % (n - 1)) % n if n > 1 else -1, "adopt" if flags & 1 else "free")
    elif opc == 9:
        size = [b, b * 16, b * 32 + 1, 8192 + b * 256][rng]
        arg = "group=%d count=%d size=%d %s" % (s & 3, (a + 1) * 16, size, "calloc" if flags & 1 else "malloc")
    elif opc == 10:
        arg = "group=%d mode=%d" % (s & 3, flags | (b & 1) << 3)
    elif opc == 12:
        arg = "pad=%d" % v
    elif opc == 14:
        arg = "flags=%d a=%d" % (flags, a)
    else:
        arg = ""
    return "w%d %-14s slot=%-2d %s" % (w, name, s, arg)


for path in sys.argv[1:]:
    data = open(path, "rb").read()
    if not data:
        print(path, ": empty")
        continue
    n = 1 + (data[0] & 3)
    print("%s: %d worker(s)%s" % (path, n, ", trim at end" if data[0] & 4 else ""))
    rnd = 0
    for off in range(1, len(data) - 3, 4):
        op, slot, a, b = data[off:off + 4]
        if op & 15 == 11:
            rnd += 1
            print("  --- SYNC: round %d ---" % rnd)
            continue
        print("  " + describe(op, slot, a, b, n))
