/*
 * lite-malloc: a lock-free drop-in malloc for multi-threaded servers on x86_64 Linux.
 *
 * This header is the public, prefixed API (usable from C and C++) and documents the
 * compile-time configuration.  The prefixed functions work in every way of linking
 * lite-malloc in, including a program that keeps the system malloc for everything else.
 *
 * Copyright (C) 2026 the lite-malloc authors.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 */
#ifndef LITE_MALLOC_H
#define LITE_MALLOC_H

#include <stddef.h>

/* ---------------------------------------------------------------------------------------
 * Configuration (compile-time defines; pass -DNAME=VALUE when building lite-malloc.cpp).
 *
 * LITE_MALLOC_MINIBLOCK_CACHE_SIZE (default 6144)
 *     Requests up to this many 8-byte units (48 KiB by default) are small blocks: no
 *     header, tight size classes, carved from per-thread superblocks.  Range 2..6144.
 *
 * LITE_MALLOC_SUPERBLOCK_CACHE_SIZE (default 120)
 *     Requests above the small limit and up to this many 4 KiB pages (480 KiB by default)
 *     are medium blocks: runs of whole pages inside host superblocks, which coalesce when
 *     freed.  Larger requests are large blocks: runs of 512 KiB slots up to 64 MiB, a
 *     mapping of their own above.  Range 4..127; above 120 counts as 120 (a host's first
 *     8 pages hold its header and its colour's page, so a run past them is at most 120).
 *
 * LITE_MALLOC_ENGINES_COUNT (default 32)
 *     Number of shards ("engines") of the adoption stacks, which hold superblocks and
 *     hosts that their owners let go of with free room left, for any heap that needs them.
 *     More shards spread the compare-and-swaps of listing and adopting.  Range 1..1024.
 *
 * LITE_MALLOC_USE_PERTHREAD_ENGINES (default 1)
 *     1: a heap lists into, and adopts from, its own shard first.  0: each listing picks
 *     the next shard in turn.  Blocks themselves always come from the calling thread's heap.
 *
 * LITE_MALLOC_MIN_ALIGN (default 16)
 *     16 honours the x86_64 ABI (every block of 16 bytes or more is 16-byte aligned).
 *     8 packs blocks of 8, 24, 40... bytes densely, as the original lite-malloc did; it
 *     breaks code that uses SSE loads or alignas(16) types on heap memory.  Use 8 only if
 *     you know your program.
 *
 * LITE_MALLOC_RETAIN_MB (default 512)
 *     An upper bound on free memory kept backed by RAM: free pages unused for the decay
 *     delay (decay_ms, a second by default) go back to the OS anyway (madvise, the
 *     mapping stays); past the limit, free pages go back however recent, until three
 *     quarters of it remain.  The limit in force is the smaller of this many MiB and the
 *     most memory the program ever had in slots at once (in use or kept), counted as at
 *     least 64 MiB.  -1 keeps everything, with no decay either (the original behaviour).
 *     The environment variable of the same name overrides it.
 *
 * LITE_MALLOC_HUGE_PAGES (default 1)
 *     1: a 2 MiB region of the heap densely used by live small blocks is backed by a huge
 *     page (MADV_HUGEPAGE, MADV_COLLAPSE); sparse memory stays in 4 KiB pages.  0: never.
 *     The environment variable of the same name overrides it; THP mode "never" wins.
 *
 * LITE_MALLOC_ENCODE_LINKS (default 1)
 *     Free-list links are stored xor-ed with a per-process secret; 0 stores them plain.
 *
 * LITE_MALLOC_DEBUG (default 0)
 *     1 (make debug): the allocator checks its own invariants on its slow paths and aborts
 *     with a line naming the broken one.
 * --------------------------------------------------------------------------------------- */
#ifndef LITE_MALLOC_SUPERBLOCK_CACHE_SIZE
#define LITE_MALLOC_SUPERBLOCK_CACHE_SIZE 120
#endif
#ifndef LITE_MALLOC_MINIBLOCK_CACHE_SIZE
#define LITE_MALLOC_MINIBLOCK_CACHE_SIZE 6144
#endif
#ifndef LITE_MALLOC_ENGINES_COUNT
#define LITE_MALLOC_ENGINES_COUNT 32
#endif
#ifndef LITE_MALLOC_USE_PERTHREAD_ENGINES
#define LITE_MALLOC_USE_PERTHREAD_ENGINES 1
#endif
#ifndef LITE_MALLOC_MIN_ALIGN
#define LITE_MALLOC_MIN_ALIGN 16
#endif
#ifndef LITE_MALLOC_HUGE_PAGES
#define LITE_MALLOC_HUGE_PAGES 1
#endif
#ifndef LITE_MALLOC_RETAIN_MB
#define LITE_MALLOC_RETAIN_MB 512
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Counters reported by lite_stats().  All figures are bytes. */
struct lite_malloc_stats {
    size_t bytes_mapped;   /* committed from the OS: arenas' read-write parts (up to one commit step
                              ahead of use), large mappings, metadata */
    size_t bytes_in_use;   /* handed to the program and not yet freed (block sizes) */
    size_t bytes_cached;   /* free memory kept for reuse and still backed by RAM */
    size_t bytes_released; /* free memory kept mapped but given back to the OS (madvise) */
    size_t large_in_use;   /* part of bytes_in_use in large blocks (runs of slots, or
                              mappings of their own) */
    size_t superblocks;    /* 512 KiB slots in use now (superblocks, hosts, large runs) */
    size_t threads;        /* heaps created so far (exited threads' heaps are reused) */
    size_t bytes_mapped_peak; /* highest bytes_mapped so far */
    size_t threads_seen;   /* threads that allocated so far */
    size_t bytes_pending;  /* freed by a thread into a superblock it does not own and held
                              in its queue or outbox, to be sent back in a batch (not in
                              bytes_in_use) */
    size_t bytes_reserved; /* address space reserved for arenas, not made read-write yet
                              (counted in VmSize, not against RLIMIT_AS: see README) */
    size_t huge_regions;   /* 2 MiB regions currently asked to be huge pages (dense ones) */
    size_t reserved[4];    /* room to grow without breaking the ABI */
};

void  *lite_malloc(size_t size);
void   lite_free(void *ptr);
void  *lite_calloc(size_t count, size_t size);
void  *lite_realloc(void *ptr, size_t size);
void  *lite_aligned_alloc(size_t alignment, size_t size);
int    lite_posix_memalign(void **out, size_t alignment, size_t size);
size_t lite_usable_size(const void *ptr);
/* 1 when ptr lies inside a block lite-malloc handed out and has not taken back into a
 * pool or returned to the OS; 0 for anything else (stack, static data, other allocators). */
int    lite_owns(const void *ptr);
void   lite_stats(struct lite_malloc_stats *out);
/* Give cached free memory back to the OS; returns 1 if anything was released. */
int    lite_trim(size_t pad);
/* The usable size malloc(size) would give (what malloc_usable_size reports for it), so
 * that a caller can ask for all of it; 0 if size can never be had. */
size_t lite_good_size(size_t size);
/* The statistics as one JSON object and a newline (lite_stats' figures and more: each
 * engine's share, the outboxes' batches and blocks sent, system calls made, bytes purged,
 * the options, each small class in use),
 * written into buf (cut to len - 1 bytes and NUL-terminated, as snprintf does).  Returns
 * the length of the whole text: call with len 0 to size the buffer.  Never allocates. */
size_t lite_stats_json(char *buf, size_t len);
/* Run-time options by key (see the README's configuration table): retain_mb, decay_ms,
 * stats, huge_pages, run_cache_kb, outbox_blocks, dormant_heaps.  Each can change while
 * the program runs and takes effect at its next use.  0 on success; -1 with errno EINVAL for an unknown
 * key or a value out of range (a negative retain_mb means -1: keep everything). */
int    lite_option_get(const char *key, long *value);
int    lite_option_set(const char *key, long value);

#ifdef __cplusplus
}
#endif

#endif /* LITE_MALLOC_H */
