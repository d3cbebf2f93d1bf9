#!/usr/bin/env python3
"""Writes the hand-made seed inputs of tests/fuzz/corpus (run once; the files are committed).
Record layout: see fuzz_ops.cpp / README.md.  rec(op, range, worker, slot, flags, a, b)."""
import os, sys

MALLOC, CALLOC, REALLOC, REALLOC_REL, ALIGNED, MEMALIGN, FREE, PASS, CHECK, BULK_ALLOC, \
    BULK_FREE, SYNC, TRIM, STATS, MISC, RESPAWN = range(16)
TINY, SMALL, MEDIUM, LARGE = range(4)


def rec(op, rng=0, worker=0, slot=0, flags=0, a=0, b=0):
    return bytes([op | rng << 4 | worker << 6, slot | flags << 5, a & 255, b & 255])


def header(workers, trim=False):
    return bytes([(workers - 1) | (4 if trim else 0)])


def sized(op, rng, worker, slot, v, flags=0):
    return rec(op, rng, worker, slot, flags, v & 255, v >> 8)


seeds = {}

# 1 thread: one of each kind of block, reallocs across the size ranges, frees, stats
s = header(1, trim=True)
s += sized(MALLOC, TINY, 0, 0, 0) + sized(MALLOC, TINY, 0, 1, 24) + sized(MALLOC, SMALL, 0, 2, 8192)
s += sized(CALLOC, SMALL, 0, 3, 1000, flags=1) + sized(MALLOC, MEDIUM, 0, 4, (3 << 8) | 128)
s += sized(MALLOC, LARGE, 0, 5, (5 << 8) | 128) + sized(CALLOC, LARGE, 0, 6, (1 << 8) | 200)
s += rec(ALIGNED, TINY, 0, 7, 0, 6, 100) + rec(ALIGNED, SMALL, 0, 8, 0, 12, 40)
s += rec(ALIGNED, LARGE, 0, 9, 0, 20, 10) + rec(MEMALIGN, MEDIUM, 0, 10, 0, 13, 3)
s += rec(MEMALIGN, TINY, 0, 11, 0, 1, 10)
s += sized(REALLOC, SMALL, 0, 1, 5000) + sized(REALLOC, MEDIUM, 0, 1, (40 << 8) | 3)
s += sized(REALLOC, LARGE, 0, 1, (30 << 8)) + sized(REALLOC, TINY, 0, 1, 7)
s += rec(REALLOC_REL, 0, 0, 5, 2, 1, 9) + rec(REALLOC_REL, 0, 0, 5, 1, 2, 0)
s += sized(REALLOC, TINY, 0, 2, 0)  # realloc(p, 0) frees
s += sized(REALLOC, TINY, 0, 12, 0)  # realloc(NULL, 0)
s += b"".join(rec(CHECK, 0, 0, i) for i in range(13)) + rec(STATS)
s += b"".join(rec(MISC, 0, 0, 1, f, 77) for f in range(7))
s += rec(FREE, 0, 0, 4) + rec(FREE, 0, 0, 6) + rec(TRIM) + rec(STATS)
seeds["single_mix"] = s

# 1 thread: fill superblocks with bulk groups, free in different orders
s = header(1)
s += rec(BULK_ALLOC, TINY, 0, 0, 0, 255, 16) + rec(BULK_ALLOC, TINY, 0, 1, 1, 255, 16)
s += rec(BULK_ALLOC, SMALL, 0, 2, 0, 63, 4) + rec(BULK_FREE, 0, 0, 0, 2, 0, 0)
s += rec(BULK_ALLOC, TINY, 0, 0, 0, 255, 16) + rec(BULK_FREE, 0, 0, 1, 1, 0, 0)
s += rec(BULK_FREE, 0, 0, 2, 5, 0, 0) + rec(TRIM) + rec(STATS)
seeds["single_bulk"] = s

# 2 threads: cross-thread frees and hand-overs, rounds
s = header(2, trim=True)
for w in range(2):
    s += sized(MALLOC, SMALL, w, 0, 300) + sized(MALLOC, MEDIUM, w, 1, (10 << 8) | 128)
    s += sized(MALLOC, LARGE, w, 2, (2 << 8)) + rec(BULK_ALLOC, TINY, w, 0, 0, 200, 48)
s += rec(SYNC)
for w in range(2):
    s += rec(PASS, 0, w, 0, 1, 0) + rec(PASS, 0, w, 1, 0, 0) + rec(PASS, 0, w, 2, 1, 0)
    s += rec(BULK_FREE, 0, w, 0, 4, 0)
s += rec(SYNC)
for w in range(2):
    s += sized(REALLOC, SMALL, w, 0, 7000) + rec(CHECK, 0, w, 1) + rec(TRIM, 0, w) + rec(STATS, 0, w)
seeds["two_threads_pass"] = s

# 4 threads: bulk cross-thread frees (full superblocks freed remotely), respawned threads
s = header(4, trim=True)
for w in range(4):
    s += rec(BULK_ALLOC, TINY, w, w, 0, 255, 32 + 16 * w) + sized(MALLOC, MEDIUM, w, 3, (20 << 8))
s += rec(SYNC)
for w in range(4):
    s += rec(BULK_FREE, 0, w, w, 3, w) + rec(RESPAWN, 0, w) + rec(PASS, 0, w, 3, 1, 1)
s += rec(SYNC)
for w in range(4):
    s += rec(BULK_ALLOC, TINY, w, 1, 0, 255, 32 + 16 * w) + rec(STATS, 0, w) + rec(TRIM, 0, w)
seeds["four_threads_bulk"] = s

# 3 threads: aligned blocks handed over and reallocated by the receiver
s = header(3)
for w in range(3):
    for i in range(6):
        s += rec(ALIGNED if i % 2 else MEMALIGN, i % 4, w, i, 0, 4 + 3 * i, 20 + i)
s += rec(SYNC)
for w in range(3):
    for i in range(6):
        s += rec(PASS, 0, w, i, 1, i)
s += rec(SYNC)
for w in range(3):
    for i in range(8):
        s += sized(REALLOC, i % 4, w, i, 1000 * i + 5)
seeds["three_threads_aligned"] = s

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
    print(name, len(data), "bytes")
