/*
 * lite-malloc: a lock-free drop-in malloc for multi-threaded servers on x86_64 Linux.
 * Copyright (C) 2026 the lite-malloc authors.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * How it works, in one paragraph.  Memory comes from large reserved arenas cut into
 * 512 KiB slots aligned to their size, so the header of any block's slot is found by
 * masking its address (and adding the slot's colour); a large block starts its slot, and
 * its record is in a side table indexed by the slot's number.  Each thread owns a heap, and a
 * heap owns at most one small superblock per size class, from whose plain free list
 * malloc serves with no atomic instruction.  A thread frees its own blocks onto that
 * list; blocks of other heaps wait in its queue while their cache lines arrive, then go
 * into its outbox and back to their superblocks in batches, one CAS each.  A superblock
 * its owner used up is detached: the frees that come back count it down, and the last
 * one sends it to the slot store, whoever makes it.  A thread's heap outlives it, dormant,
 * for the next thread to take whole, within bounds (section 13).  Sizes above the small
 * classes are runs of pages inside host slots, or runs of whole slots; every slot comes
 * from the one slot store and goes back to it, so any size reuses what any size freed,
 * and free pages unused for the decay delay go back to the OS.  No lock is taken anywhere.
 *
 * Sections, in layer order:
 *   1. configuration, run-time options    9. small engine
 *   2. OS calls (counted)                 10. medium engine (runs of pages in hosts)
 *   3. lock-free primitives               11. large engine (runs of slots, mappings)
 *   4. address space: metadata, the       12. decay
 *      ownership map, arenas, slot store  13. a heap handed back
 *   5. size classes                       14. dispatch: by size (malloc), by pointer
 *   6. superblocks: remote frees,             (free, realloc, usable size, lite_owns)
 *      adoption, huge pages               15. statistics (report, JSON, malloc_info,
 *   7. per-thread heaps                       the live view), trimming
 *   8. what a heap holds back (queue,     16. entry points: start-up, foreign blocks,
 *      outbox, run cache)                     the lite_* API, the C library's names,
 *                                             setrlimit and dlopen, operator new/delete
 *
 * Glossary (one word per concept):
 *   arena        a reserved, size-aligned range of address space, made read-write as used
 *   slot         a 512 KiB, 512 KiB-aligned piece of an arena; the unit of the slot store
 *   group        64 slots sharing two bitmap words (used, dirty) in the slot store
 *   slot store   the arenas' free slots: taken and given back in runs, coalescing
 *   superblock   a slot's header view; a small superblock holds blocks of one class
 *   colour       where in its slot a small superblock's header sits (one of 8 places, a
 *                page and 128 bytes apart, by the slot's number), so that headers and
 *                busy pages spread over the sets of the L1 cache and of the TLB
 *   body, head   a small superblock's blocks above its header, carved first, and those
 *                below it, carved last (section 6)
 *   host         a slot whose pages are handed out as medium runs (page 0: its header;
 *                its colour's page is never a run's)
 *   run          consecutive pages of a host (a medium block) or slots (a large block)
 *   record       a large block's length, its run's and whether it is live: kept in the
 *                side table (SideSlot), since the block starts its slot
 *   heap         a thread's allocation state: its owned superblocks, host and held memory
 *   owned        a small superblock a heap allocates from (one per class and heap)
 *   detached     a small superblock nobody allocates from; frees count it down
 *   listed       detached (or an unowned host) with room enough to be worth adopting
 *   adoption     a heap taking over a listed superblock or host, from the adoption stacks
 *   engine       the small, medium or large allocator (sections 9-11)
 *   shard        one copy of the adoption stacks (LITE_MALLOC_ENGINES_COUNT of them)
 *   queue        the last few blocks a heap freed into superblocks it does not own,
 *                their cache lines on the way (prefetchw), not looked at yet (section 8)
 *   outbox       blocks a heap freed into superblocks it does not own, sent in batches
 *                (one batch per bin; a bin holds blocks of one superblock at a time)
 *   run cache    medium runs a heap freed, kept for its next requests of the same size
 *   held         what a heap holds back: its queue, its outbox and its run cache
 *   dirty        free memory whose pages may be resident ("cached" in the statistics)
 *   purge        giving free pages back to the OS with madvise ("released" afterwards)
 *   decay        purging what has been free for the decay delay
 *   retain limit the most dirty memory kept, however recent (LITE_MALLOC_RETAIN_MB,
 *                scaled down to the peak footprint, at least 64 MiB; section 12)
 *   tail         resident pages of a small superblock above its bump pointer
 *   region       2 MiB, 2 MiB-aligned: four slots; the unit of huge pages
 *   side slot    per-slot words kept outside the slot (role, adoption link and mark,
 *                freed_at, huge)
 *   option       a setting read at start-up and changeable while running (section 1)
 *   live view    the directory of counters lite-malloc-stat reads from outside (15)
 *   pair         two words swapped together by cmpxchg16b (section 3)
 *   canary       the second word of a free small block: its superblock's random value
 *   hand back    a thread giving up its heap at its exit (section 13): dormant, or let go
 *   let go       a heap giving up what it owns: its superblocks are detached, its host too
 *   dormant      a heap handed back whole, for the next thread to take; let go after the
 *                decay delay, by trim, when memory runs out, or if too many or too big
 *   give         returning blocks, runs or slots to where they came from (remote_give,
 *                host_give, superblock_give, slots_give); "release" is said of pages
 *                only (purge)
 *   retire       a host's last run coming back: its slot is given to the slot store
 *   clean        not dirty: never touched since the OS gave it, or purged (reads zero)
 *   claim        a heap giving back what another, idle heap holds (held_claim)
 *   grain        the least block spacing and alignment (16 bytes); a request, rounded up
 *                in grains (grains_of), indexes the class table and the heap's by_grains
 */
#include "lite-malloc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dlfcn.h>
#include <link.h>
#include <sys/auxv.h>
#include <linux/membarrier.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <atomic>
#include <new>

#if !defined(__x86_64__) || !defined(__linux__)
#error "lite-malloc supports x86_64 Linux only"
#endif

/* LITE_MALLOC_BUILD selects which entry points this compilation defines:
 *   0  the prefixed lite_* API only (tests, sanitizers, programs keeping the system malloc)
 *   1  shared library: malloc & co. and operator new/delete (libstdc++ referenced weakly)
 *   2  static library member: __wrap_malloc & co. for -Wl,--wrap / --defsym
 *   3  static library member: operator new/delete only, calling the lite_* API
 *   4  lite-hooks.h: malloc & co. and operator new/delete, compiled into the program   */
#ifndef LITE_MALLOC_BUILD
#define LITE_MALLOC_BUILD 0
#endif
/* What each mode defines, by name: the only place the mode's number is tested.
 *   LITE_HAS_ALLOCATOR     the allocator and the lite_* API (all but 3)
 *   LITE_C_NAMES           malloc & co. under the C library's names, and the calls that
 *                          must be ours beside them (setrlimit & co., dlopen) (1, 4)
 *   LITE_WRAP_NAMES        malloc & co. as __wrap_ names (2)
 *   LITE_FORWARDS_FOREIGN  a pointer that is not ours, given to free, realloc or
 *                          malloc_usable_size, goes to the C library's allocator if it is
 *                          one of its blocks (1, 2, 4; the lite_* names always abort)
 *   LITE_CXX_OPERATORS     operator new and delete (1, 3, 4)
 *   LITE_WEAK_LIBSTDCXX    libstdc++ referenced weakly, so that C programs stay free of it (1) */
#define LITE_HAS_ALLOCATOR (LITE_MALLOC_BUILD != 3)
#define LITE_C_NAMES (LITE_MALLOC_BUILD == 1 || LITE_MALLOC_BUILD == 4)
#define LITE_WRAP_NAMES (LITE_MALLOC_BUILD == 2)
#define LITE_FORWARDS_FOREIGN (LITE_C_NAMES || LITE_WRAP_NAMES)
#define LITE_CXX_OPERATORS (LITE_MALLOC_BUILD == 1 || LITE_MALLOC_BUILD == 3 || LITE_MALLOC_BUILD == 4)
#define LITE_WEAK_LIBSTDCXX (LITE_MALLOC_BUILD == 1)
#if LITE_MALLOC_BUILD < 0 || LITE_MALLOC_BUILD > 4
#error "LITE_MALLOC_BUILD must be 0 to 4"
#endif
#define LITE_API extern "C" __attribute__((visibility("default")))
#define LITE_CXX_API __attribute__((visibility("default")))
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define NOINLINE __attribute__((noinline))
#define COLD __attribute__((noinline, cold))

#if LITE_HAS_ALLOCATOR

namespace {

/* ===================================================================================== *
 * 1. Configuration: every derived constant in one place, and the run-time options.
 * ===================================================================================== */
constexpr size_t kPage = 4096;
constexpr size_t kGrain = LITE_MALLOC_MIN_ALIGN;             // block spacing and alignment
static_assert(kGrain == 8 || kGrain == 16, "LITE_MALLOC_MIN_ALIGN must be 8 or 16");
/* Superblocks are 512 KiB, aligned to their size: big enough that size classes up to
 * 48 KiB waste under 10% (a 256 KiB superblock could not do better than 17% near
 * 25 KiB), and a host superblock fits medium runs up to 480 KiB (kMediumPages). */
constexpr unsigned kSbShift = 19;
constexpr size_t kSbSize = size_t(1) << kSbShift;
constexpr size_t kSbPages = kSbSize / kPage;
constexpr size_t kSbHeader = 128;                             // small superblock header
// A small header's places (colour_of): colour k puts it k pages and k * 128 bytes into its slot.
constexpr uintptr_t kColours = 8, kColourLine = 128, kColourStep = kPage + kColourLine;
constexpr size_t kSmallMax =                                   // largest small block
    (size_t(LITE_MALLOC_MINIBLOCK_CACHE_SIZE) * 8 + kGrain - 1) / kGrain * kGrain;
constexpr size_t kFastMax = kSmallMax < 8192 ? kSmallMax : 8192;  // malloc's one-load class lookup
static_assert(LITE_MALLOC_SUPERBLOCK_CACHE_SIZE >= 4 && LITE_MALLOC_SUPERBLOCK_CACHE_SIZE < kSbPages,
              "SUPERBLOCK_CACHE_SIZE: 4..127");
// The largest run in a host: one of a host's first kColours pages is its colour's (fits_host).
constexpr size_t kMediumPages =
    LITE_MALLOC_SUPERBLOCK_CACHE_SIZE < kSbPages - kColours ? LITE_MALLOC_SUPERBLOCK_CACHE_SIZE : kSbPages - kColours;
static_assert(LITE_MALLOC_MINIBLOCK_CACHE_SIZE >= 2 && LITE_MALLOC_MINIBLOCK_CACHE_SIZE <= 6144, "MINIBLOCK_CACHE_SIZE: 2..6144");
static_assert(LITE_MALLOC_ENGINES_COUNT >= 1 && LITE_MALLOC_ENGINES_COUNT <= 1024, "ENGINES");
constexpr size_t kGroupSlots = 64;                            // superblock slots per bitmap word
constexpr size_t kGroupBytes = kGroupSlots * kSbSize;         // 32 MiB
constexpr unsigned kRunMaxSlots = 128;                        // 64 MiB: the longest run of slots
constexpr unsigned kRunMaxParts = kRunMaxSlots / kGroupSlots + 1;  // groups a run can touch
constexpr size_t kChunk = size_t(4) << 20;                    // commit step
constexpr size_t kArenaMax = size_t(64) << 30;                // first reservation tried
constexpr size_t kArenaMin = kChunk;
constexpr size_t kMaxRequest = size_t(1) << 46;               // above: ENOMEM at once
constexpr size_t kExtendBytes = 4096;                         // fresh blocks threaded at once, at most
constexpr size_t kExtendBlocks = 8;                           // ... unless that is fewer blocks
constexpr size_t kExtendFirst = 256;                          // ... the first time (then doubling)
constexpr unsigned kShards = LITE_MALLOC_ENGINES_COUNT;

/* Run-time options.  Each has a key, an environment variable of its own, a range and a
 * default, and can change while the program runs (lite_option_set): it takes effect at
 * its next use.  The load-time constructor reads LITE_MALLOC_OPTIONS=key:value,... and
 * then each option's own variable, which wins; an unknown key or a bad value gets one
 * warning line and is ignored.  Neither getenv nor the parser allocates.
 *   retain_mb      the most free memory kept backed by RAM, in MiB; -1 keeps everything
 *   decay_ms       free pages unused this long go back to the OS
 *   stats          a report on stderr at exit: 0 none, 1 text, 2 (or "json") JSON
 *   huge_pages     ask for huge pages where the heap is dense ("huge pages", section 6)
 *   run_cache_kb   medium runs a thread keeps for its next requests (section 8)
 *   outbox_blocks  blocks a thread batches per superblock before sending them (64)
 *   dormant_heaps  heaps kept whole at their threads' exit for the next threads (section 13) */
enum Opt : unsigned {
    kOptRetainMb, kOptDecayMs, kOptStats, kOptHugePages, kOptRunCacheKb, kOptOutboxBlocks, kOptDormantHeaps, kOptCount
};
struct OptionInfo {
    const char *key, *env;
    long min, max, initial;
};
constexpr OptionInfo kOptions[kOptCount] = {
    {"retain_mb", "LITE_MALLOC_RETAIN_MB", -1, long(1) << 30, LITE_MALLOC_RETAIN_MB < 0 ? -1 : LITE_MALLOC_RETAIN_MB},
    {"decay_ms", "LITE_MALLOC_DECAY_MS", 0, 86400000, 1000},
    {"stats", "LITE_MALLOC_STATS", 0, 2, 0},
    {"huge_pages", "LITE_MALLOC_HUGE_PAGES", 0, 1, LITE_MALLOC_HUGE_PAGES ? 1 : 0},
    {"run_cache_kb", "LITE_MALLOC_RUN_CACHE_KB", 0, 1 << 16, 1024},
    {"outbox_blocks", "LITE_MALLOC_OUTBOX_BLOCKS", 1, 1024, 64},
    {"dormant_heaps", "LITE_MALLOC_DORMANT_HEAPS", 0, 64, 4},
};
std::atomic<long> g_options[kOptCount] = {kOptions[0].initial, kOptions[1].initial, kOptions[2].initial,
                                          kOptions[3].initial, kOptions[4].initial, kOptions[5].initial,
                                          kOptions[6].initial};
static_assert(kOptCount == 7, "one initial value per option");
inline long option(Opt o) { return g_options[o].load(std::memory_order_relaxed); }
inline long retain_bytes() {  // -1: keep everything
    long mb = option(kOptRetainMb);
    return mb < 0 ? -1 : mb << 20;
}
inline uint64_t decay_ms() { return uint64_t(option(kOptDecayMs)); }

void os_write(const char *s, size_t n);  // (section 2)
/* One warning line: "lite-malloc: <what> '<text>' ignored". */
void option_warn(const char *what, const char *text, size_t len) {
    char buf[256];
    size_t n = 0;
    auto put = [&](const char *t, size_t l) { while (l-- && *t && n < sizeof buf - 16) buf[n++] = *t++; };
    put("lite-malloc: ", 13);
    put(what, strlen(what));
    put(" '", 2);
    put(text, len);
    put("' ignored\n", 10);
    os_write(buf, n);
}
/* The value text[0, len) gives option o: a decimal number in its range (any negative
 * retain_mb means -1; stats also takes "text" and "json").  False if it gives none. */
bool option_parse(Opt o, const char *text, size_t len, long *out) {
    if (o == kOptStats && len == 4 && (!memcmp(text, "text", 4) || !memcmp(text, "json", 4))) {
        *out = text[0] == 't' ? 1 : 2;
        return true;
    }
    bool neg = len && *text == '-';
    if (len == size_t(neg)) return false;
    long n = 0;
    for (size_t i = neg; i < len; i++) {
        if (text[i] < '0' || text[i] > '9' || n > (long(1) << 40)) return false;
        n = n * 10 + (text[i] - '0');
    }
    if (neg) n = o == kOptRetainMb ? -1 : -n;
    if (n < kOptions[o].min || n > kOptions[o].max) return false;
    *out = n;
    return true;
}
int option_find(const char *key, size_t len) {  // -1: no such key
    for (unsigned o = 0; o < kOptCount; o++)
        if (strlen(kOptions[o].key) == len && !memcmp(kOptions[o].key, key, len)) return int(o);
    return -1;
}
void options_from_env() {
    if (const char *s = getenv("LITE_MALLOC_OPTIONS")) {
        while (*s) {
            const char *item = s;
            while (*s && *s != ',') s++;
            size_t len = size_t(s - item), key = 0;
            if (*s) s++;
            while (key < len && item[key] != ':' && item[key] != '=') key++;
            int o = option_find(item, key);
            long v;
            if (!len) continue;
            if (o < 0) option_warn("LITE_MALLOC_OPTIONS: unknown option", item, key);
            else if (key == len || !option_parse(Opt(o), item + key + 1, len - key - 1, &v))
                option_warn("LITE_MALLOC_OPTIONS: bad value in", item, len);
            else g_options[o].store(v, std::memory_order_relaxed);
        }
    }
    for (unsigned o = 0; o < kOptCount; o++) {
        const char *v = getenv(kOptions[o].env);
        long n;
        if (!v || !*v) continue;
        if (option_parse(Opt(o), v, strlen(v), &n)) g_options[o].store(n, std::memory_order_relaxed);
        else option_warn(kOptions[o].env, v, strlen(v));
    }
}

/* ===================================================================================== *
 * 2. OS calls: raw system calls, so the malloc/free paths never re-enter the C library.
 * ===================================================================================== */
inline long syscall6(long n, long a, long b, long c, long d, long e, long f) {
    long ret;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}
inline bool sys_failed(long r) { return r < 0 && r > -4096; }

/* System calls made, by kind, and bytes purged (for the statistics). */
enum Sys : unsigned { kSysMmap, kSysMunmap, kSysMprotect, kSysMadvise, kSysMremap, kSysCount };
std::atomic<uint64_t> g_syscalls[kSysCount] = {};
std::atomic<uint64_t> g_purged_bytes{0};
inline void count_sys(Sys k) { g_syscalls[k].fetch_add(1, std::memory_order_relaxed); }
inline void count_advise(size_t len, int advice) {
    count_sys(kSysMadvise);
    if (advice == MADV_DONTNEED) g_purged_bytes.fetch_add(len, std::memory_order_relaxed);
}

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define LITE_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__) && !defined(LITE_TSAN)
#define LITE_TSAN 1
#endif
#ifndef LITE_TSAN
void *os_map(void *hint, size_t len, int prot, int flags) {
    count_sys(kSysMmap);
    long r = syscall6(SYS_mmap, long(hint), long(len), prot, flags | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return sys_failed(r) ? nullptr : reinterpret_cast<void *>(r);
}
bool os_unmap(void *p, size_t len) {
    if (len) count_sys(kSysMunmap);
    return !len || !sys_failed(syscall6(SYS_munmap, long(p), long(len), 0, 0, 0, 0));
}
bool os_protect(void *p, size_t len, int prot) {
    count_sys(kSysMprotect);
    return !sys_failed(syscall6(SYS_mprotect, long(p), long(len), prot, 0, 0, 0));
}
void os_advise(void *p, size_t len, int advice) {
    if (len) count_advise(len, advice), syscall6(SYS_madvise, long(p), long(len), advice, 0, 0, 0);
}
void *os_remap(void *old, size_t old_len, size_t len, int flags, void *to) {
    count_sys(kSysMremap);
    long r = syscall6(SYS_mremap, long(old), long(old_len), long(len), flags, long(to), 0);
    return sys_failed(r) ? nullptr : reinterpret_cast<void *>(r);
}
#else
/* Under ThreadSanitizer the sanitizer must see memory being unmapped and mapped again,
 * or it takes the reuse of an address for a data race: go through libc there. */
void *os_map(void *hint, size_t len, int prot, int flags) {
    count_sys(kSysMmap);
    void *p = mmap(hint, len, prot, flags | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? nullptr : p;
}
bool os_unmap(void *p, size_t len) { return !len || (count_sys(kSysMunmap), munmap(p, len) == 0); }
bool os_protect(void *p, size_t len, int prot) { return count_sys(kSysMprotect), mprotect(p, len, prot) == 0; }
void os_advise(void *p, size_t len, int advice) { if (len) count_advise(len, advice), madvise(p, len, advice); }
void *os_remap(void *old, size_t old_len, size_t len, int flags, void *to) {
    // TSan does not see mremap free the old range, so a later mapping there would look
    // like a race with the old one's users: never move (callers then copy or map anew).
    if (flags & MREMAP_MAYMOVE) return nullptr;
    count_sys(kSysMremap);
    void *p = mremap(old, old_len, len, flags, to);
    return p == MAP_FAILED ? nullptr : p;
}
#endif
void os_write(const char *s, size_t n) { syscall6(SYS_write, 2, long(s), long(n), 0, 0, 0); }

/* The asymmetric fence (membarrier, Linux 4.14): a thread that rarely needs store-load
 * order against many others pays a system call that runs a full barrier on every CPU
 * running one of them, so that they need only a compiler barrier on their side.  Used
 * by held_enter/held_claim; ThreadSanitizer cannot see it, so its builds never register. */
bool os_fence_register() {
#ifdef LITE_TSAN
    return false;
#else
    return syscall6(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0, 0, 0, 0) == 0;
#endif
}
bool os_fence_others() { return syscall6(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0, 0, 0, 0) == 0; }

/* Milliseconds for the decay of free memory, cheap enough for the slow paths: the TSC,
 * scaled by a rate measured against CLOCK_MONOTONIC once the first 2^27 ticks have
 * passed.  Until then a provisional scale assumes 3 GHz from a starting point.  The
 * measured scale starts where the provisional one stood when it was measured, so the
 * clock never jumps: a rate applied to the whole TSC count (ticks since boot) would move
 * it by a third of the uptime on a 2 GHz TSC, and everything stamped before as freed
 * hours ago (purged at once, whatever the delay), or, on a TSC above 3 GHz, back by
 * hours (nothing decays until the clock catches up). */
constexpr uint64_t kAssumedTicksPerMs = 3000000;
struct Clock {
    std::atomic<uint64_t> tsc0{0}, ns0{0};                 // provisional scale (from state 2)
    std::atomic<uint64_t> tsc1{0}, ms1{0}, ticks_per_ms{0};  // measured scale (state 4)
    std::atomic<int> state{0};  // 0 nothing, 1 starting, 2 provisional, 3 measuring, 4 measured
} g_clock;
/* Every bit of x spread over every bit of the result (for secrets and canaries). */
inline uint64_t mix64(uint64_t x) {
    x = (x ^ (x >> 31)) * 0x7fb5d329728ea185;
    x = (x ^ (x >> 32)) * 0xd6e8feb86659fd93;
    return x ^ (x >> 32);
}
uint64_t monotonic_ns() {
    struct timespec ts;
    syscall6(SYS_clock_gettime, CLOCK_MONOTONIC, long(&ts), 0, 0, 0, 0);
    return uint64_t(ts.tv_sec) * 1000000000 + uint64_t(ts.tv_nsec);
}
uint64_t now_ms() {
    uint64_t t = __builtin_ia32_rdtsc();
    int state = g_clock.state.load(std::memory_order_acquire);
    if (LIKELY(state == 4))
        return g_clock.ms1.load(std::memory_order_relaxed) +
               (t - g_clock.tsc1.load(std::memory_order_relaxed)) / g_clock.ticks_per_ms.load(std::memory_order_relaxed);
    if (state < 2) {  // no starting point yet: take it (or read the OS clock while another thread does)
        uint64_t ns = monotonic_ns();
        if (state == 0 && g_clock.state.compare_exchange_strong(state, 1)) {
            g_clock.tsc0.store(t, std::memory_order_relaxed);
            g_clock.ns0.store(ns, std::memory_order_relaxed);
            g_clock.state.store(2, std::memory_order_release);
        }
        return ns / 1000000;
    }
    uint64_t ticks = t - g_clock.tsc0.load(std::memory_order_relaxed);
    uint64_t ns0 = g_clock.ns0.load(std::memory_order_relaxed), ms = ns0 / 1000000 + ticks / kAssumedTicksPerMs;
    if (state == 2 && ticks > (uint64_t(1) << 27) && g_clock.state.compare_exchange_strong(state, 3)) {
        uint64_t us = (monotonic_ns() - ns0) / 1000;  // (ticks * 1000 fits for 200 days at 1 GHz)
        uint64_t rate = us < 1000 ? 0 : ticks < (uint64_t(1) << 54) ? ticks * 1000 / us : ticks / (us / 1000);
        g_clock.ticks_per_ms.store(rate ? rate : kAssumedTicksPerMs, std::memory_order_relaxed);
        g_clock.tsc1.store(t, std::memory_order_relaxed);
        g_clock.ms1.store(ms, std::memory_order_relaxed);
        g_clock.state.store(4, std::memory_order_release);
    }
    return ms;
}

/* Heap corruption: one line naming lite-malloc, the operation and the pointer, then abort. */
COLD void fatal(const char *op, const char *what, const void *p) {
    char buf[160];
    size_t n = 0;
    auto put = [&](const char *s) { while (*s && n < sizeof buf - 20) buf[n++] = *s++; };
    put("lite-malloc: "); put(op); put("(): "); put(what); put(" 0x");
    uintptr_t v = uintptr_t(p);
    char hex[16];
    int h = 0;
    do { hex[h++] = "0123456789abcdef"[v & 15]; v >>= 4; } while (v);
    while (h) buf[n++] = hex[--h];
    buf[n++] = '\n';
    os_write(buf, n);
    abort();
}

/* The debug build (make debug, LITE_MALLOC_DEBUG=1) checks the allocator's own invariants
 * where it changes its structures (slot and run maps, free and remote lists, superblock
 * states), and aborts naming the broken one.  Off, every check compiles to nothing. */
#ifndef LITE_MALLOC_DEBUG
#define LITE_MALLOC_DEBUG 0
#endif
constexpr bool kDebug = LITE_MALLOC_DEBUG != 0;
#define DEBUG_CHECK(cond, what, p)                                          \
    do {                                                                    \
        if (kDebug && UNLIKELY(!(cond))) fatal("invariant", (what), (p)); \
    } while (0)

inline size_t round_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }
/* Bits set in x (by hand: the builtin calls libgcc's __popcountdi2 unless built for POPCNT). */
inline unsigned bits_set(uint64_t x) {
    x -= (x >> 1) & 0x5555555555555555;
    x = (x & 0x3333333333333333) + ((x >> 2) & 0x3333333333333333);
    return unsigned((((x + (x >> 4)) & 0x0f0f0f0f0f0f0f0f) * 0x0101010101010101) >> 56);
}
inline bool is_pow2(size_t n) { return n && !(n & (n - 1)); }
inline void set_enomem() { errno = ENOMEM; }

/* ===================================================================================== *
 * 3. Lock-free primitives.  A Treiber stack whose head carries a full 64-bit version tag
 *    next to the pointer, swapped together by cmpxchg16b, so a node popped and pushed
 *    back between our read and our CAS (ABA) can never be mistaken for the old head.
 *    Nodes are never unmapped, so reading a stale node's link is always safe.
 * ===================================================================================== */
/* Ask for the cache line at p in the state a write needs, without waiting for it (and
 * without a fault, whatever p is).  prefetchw by its encoding, so that no -m flag is
 * needed; processors without it take it for a no-op.  Never for an address that is not
 * mapped, null included: it does not fault, but measured on an AMD EPYC a prefetchw of
 * null costs about 30 ns, each time (a TLB keeps no translation of a page not mapped). */
inline void prefetch_for_write(const void *p) { asm volatile("prefetchw %0" : : "m"(*static_cast<const char *>(p))); }
/* p, or q when p is null: a test and a cmov (gcc compares and moves through a copy). */
inline const void *either(const void *p, const void *q) {
    asm("test %0, %0\n\tcmovz %1, %0" : "+r"(p) : "r"(q) : "cc");
    return p;
}

/* Two words swapped together by cmpxchg16b.  What they mean is the user's: a stack's head
 * and its version (VersionedStack), the metadata pool's next byte and chunk end, a host's
 * 128-page map. */
struct alignas(16) Pair {
    uint64_t lo;
    uint64_t hi;
};

inline bool cas_pair(Pair *where, Pair &expected, Pair desired) {
#ifdef LITE_TSAN
    unsigned __int128 exp = (unsigned __int128)expected.hi << 64 | expected.lo;
    unsigned __int128 des = (unsigned __int128)desired.hi << 64 | desired.lo;
    bool ok = __atomic_compare_exchange_n(reinterpret_cast<unsigned __int128 *>(where), &exp, des,
                                          false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
    expected.lo = uintptr_t(exp);
    expected.hi = uint64_t(exp >> 64);
    return ok;
#else
    bool ok;
    __asm__ volatile("lock cmpxchg16b %1"
                     : "=@ccz"(ok), "+m"(*where), "+a"(expected.lo), "+d"(expected.hi)
                     : "b"(desired.lo), "c"(desired.hi)
                     : "memory");
    return ok;
#endif
}

inline Pair load_pair(Pair *where) {  // torn reads are fine: the CAS validates both
    Pair t;
    t.hi = __atomic_load_n(&where->hi, __ATOMIC_ACQUIRE);
    t.lo = __atomic_load_n(&where->lo, __ATOMIC_ACQUIRE);
    return t;
}

/* A plain read of a word that another thread may be rewriting, or that may no longer be
 * what the caller thinks (a slot that changed role): for statistics and for values a
 * CAS validates afterwards.  Plain, so that ThreadSanitizer (which sees every atomic
 * access, even where it is told to ignore a function) does not take the benign race
 * with the slot's new owner for a bug. */
__attribute__((no_sanitize("thread"))) inline uint64_t peek(const void *word) {
    return *static_cast<const volatile uint64_t *>(word);
}

/* A CAS (seq_cst) on a word of a slot that may have changed role since the caller looked
 * (an adoption entry is a hint; a host let go of may be retired at once).  The caller
 * expects a value that only the slot's old role could hold (a host's signature, a listed
 * superblock's remote word), so a word that has become part of something else fails the
 * comparison, and a failed lock cmpxchg writes back the value it read: a block of the
 * program's that the word became is left as it was.  ThreadSanitizer would report that
 * access as a race with the program's writes to the block: in its builds the CAS is made
 * in assembly, out of its sight, and the ordering it carries is told to it by hand. */
#ifdef LITE_TSAN
extern "C" void __tsan_acquire(void *addr);
extern "C" void __tsan_release(void *addr);
#endif
inline bool cas_hint(std::atomic<uint64_t> &word, uint64_t &expected, uint64_t desired) {
#ifdef LITE_TSAN
    bool ok;
    __tsan_release(&word);
    __asm__ volatile("lock cmpxchg %3, %1" : "=@ccz"(ok), "+m"(word), "+a"(expected) : "r"(desired) : "memory");
    __tsan_acquire(&word);
    return ok;
#else
    return word.compare_exchange_weak(expected, desired, std::memory_order_seq_cst);
#endif
}

/* LinkOf(node) returns the atomic word that holds a node's successor. */
template <class LinkOf>
struct VersionedStack {
    Pair top{0, 0};  // lo: the first node; hi: its version, one more at every push and pop

    void push(uintptr_t node) {
        Pair old = load_pair(&top);
        for (;;) {
            LinkOf()(node).store(old.lo, std::memory_order_relaxed);
            if (cas_pair(&top, old, Pair{node, old.hi + 1})) return;
        }
    }
    uintptr_t pop() {
        Pair old = load_pair(&top);
        for (;;) {
            if (!old.lo) return 0;
            uintptr_t next = LinkOf()(old.lo).load(std::memory_order_relaxed);
            if (cas_pair(&top, old, Pair{next, old.hi + 1})) return old.lo;
        }
    }
    bool empty() const { return __atomic_load_n(&top.lo, __ATOMIC_RELAXED) == 0; }
};

/* Statistics counters: relaxed atomics touched on slow paths only.  The two whose peak
 * someone reads (the mapped bytes, for the statistics; the slots handed out, for the
 * retain limit) track it. */
struct Counter {
    std::atomic<long> v{0};
    void add(long d) { v.fetch_add(d, std::memory_order_relaxed); }
    long get() const { return v.load(std::memory_order_relaxed); }
};
struct PeakCounter : Counter {
    std::atomic<long> high{0};
    void add(long d) {
        long now = v.fetch_add(d, std::memory_order_relaxed) + d, top = high.load(std::memory_order_relaxed);
        while (now > top && !high.compare_exchange_weak(top, now, std::memory_order_relaxed)) {}
    }
    long peak() const { return high.load(std::memory_order_relaxed); }
};
PeakCounter g_mapped;  // everything taken from the OS: arenas' committed parts, large mappings, metadata

/* ===================================================================================== *
 * 4. Address space.
 *    - Metadata (heaps, ownership-map leaves, arena records) comes from a bump allocator
 *      over small private mappings and is never freed, so any stale pointer stays valid.
 *    - Arenas are large read-only MAP_NORESERVE reservations (no commit charge, one
 *      mapping each; a stray read of a slot never made writable finds zeros),
 *      made read-write in growing steps (commit_arena) as slots are taken, so that a heap of many
 *      GiB stays a handful of mappings.  If a reservation fails (ulimit -v, no overcommit)
 *      we halve it and try again.
 *    - The ownership map answers "is this pointer ours?" in O(1) without touching the
 *      pointer's memory: one bit per superblock-sized slot of the address space, in a
 *      two-level table (1 GiB per leaf).
 * ===================================================================================== */
struct MetaPool { Pair bump{0, 0}; } g_meta;  // lo = next free byte, hi = end of chunk
Counter g_meta_bytes;

void *meta_alloc(size_t size) {  // zeroed, 64-byte aligned, never freed
    size = round_up(size, 64);
    for (;;) {
        Pair cur = load_pair(&g_meta.bump);
        if (cur.lo && cur.lo + size <= cur.hi) {
            if (cas_pair(&g_meta.bump, cur, Pair{cur.lo + size, cur.hi}))
                return reinterpret_cast<void *>(cur.lo);
            continue;
        }
        size_t len = round_up(size > (1u << 20) ? size : (1u << 20), kPage);
        char *fresh = static_cast<char *>(os_map(nullptr, len, PROT_READ | PROT_WRITE, 0));
        if (!fresh) return nullptr;
        if (cas_pair(&g_meta.bump, cur, Pair{uintptr_t(fresh) + size, uintptr_t(fresh) + len})) {
            g_meta_bytes.add(long(len));
            g_mapped.add(long(len));
            return fresh;
        }
        os_unmap(fresh, len);  // somebody else installed a chunk first: use theirs
    }
}

constexpr unsigned kMapTopBits = 47 - 30;
constexpr size_t kLeafWords = (size_t(1) << 30) / kSbSize / 64;
std::atomic<std::atomic<uint64_t> *> g_owned[size_t(1) << kMapTopBits];

/* The leaf of a two-level table (one leaf per GiB of address space), made on demand. */
using Leaf = std::atomic<uint64_t>;
inline Leaf *table_leaf(std::atomic<Leaf *> *table, size_t words, uintptr_t addr, bool create) {
    auto &entry = table[addr >> 30];
    Leaf *leaf = entry.load(std::memory_order_acquire);
    if (!leaf && create) {
        auto *fresh = static_cast<Leaf *>(meta_alloc(words * 8));
        if (!fresh) return nullptr;
        leaf = entry.compare_exchange_strong(leaf, fresh, std::memory_order_acq_rel) ? fresh : leaf;
    }
    return leaf;
}

std::atomic<uint64_t> *owned_word(uintptr_t sb, bool create) {
    if (sb >> 47) return nullptr;
    Leaf *leaf = table_leaf(g_owned, kLeafWords, sb, create);
    return leaf ? &leaf[((sb >> kSbShift) / 64) % kLeafWords] : nullptr;
}
/* Beside the map, per superblock slot, the words that must outlive the superblock's own
 * memory (a purged slot, header included, reads as zero), or that cannot be in it:
 *   freed_at  when the slot was last given back to the slot store (decay clock, ms);
 *   adopt     its link in an adoption stack (its class's, or the hosts');
 *   stacked   1 while it sits in an adoption stack (at most one entry at a time);
 *   role      what the slot is: free, a small superblock, a host, the first slot of a
 *             large block, or a slot inside one (the memory of both is the program's:
 *             a would-be header there must never be believed);
 *   large     (a large block's first slot) the block's record: the block starts at the
 *             slot's first byte, so the record cannot be in the block (section 11).
 * Leaves are made when arena memory is committed, so a superblock always finds them. */
enum Role : uint8_t { kRoleFree = 0, kRoleSmall, kRoleHost, kRoleLarge, kRoleInterior };
struct LargeRecord {
    uint32_t slots;              // length of the block's run in slots; 0 for a mapping of its own
    std::atomic<uint32_t> live;  // 1 while the block is handed out
    size_t end;                  // the block's usable size: its request rounded up to pages
};
struct SideSlot {
    std::atomic<uint64_t> freed_at;
    std::atomic<uintptr_t> adopt, stacked;
    std::atomic<uint8_t> role;  // what the slot is now (the authority for the slow paths)
    std::atomic<uint8_t> huge;  // (a region's first slot) the region is backed by a huge page
    LargeRecord large;
};
constexpr size_t kSlotsPerLeaf = (size_t(1) << 30) / kSbSize;
std::atomic<Leaf *> g_side[size_t(1) << kMapTopBits];

inline SideSlot *side_of(uintptr_t sb, bool create = false) {
    Leaf *leaf = table_leaf(g_side, kSlotsPerLeaf * sizeof(SideSlot) / 8, sb, create);
    return leaf ? reinterpret_cast<SideSlot *>(leaf) + (sb >> kSbShift) % kSlotsPerLeaf : nullptr;
}

bool mark_owned(uintptr_t start, size_t len, bool owned) {
    for (uintptr_t sb = start; sb < start + len; sb += kSbSize) {
        std::atomic<uint64_t> *w = owned_word(sb, owned);
        if (!w) { if (owned) return false; continue; }
        if (owned && !side_of(sb, true)) return false;
        uint64_t bit = uint64_t(1) << ((sb >> kSbShift) % 64);
        if (owned) w->fetch_or(bit, std::memory_order_release);
        else w->fetch_and(~bit, std::memory_order_release);
    }
    return true;
}
bool is_owned_slot(uintptr_t sb) {
    std::atomic<uint64_t> *w = owned_word(sb, false);
    return w && (w->load(std::memory_order_acquire) >> ((sb >> kSbShift) % 64) & 1);
}

/* ---- arenas and the slot store ------------------------------------------------------ *
 * An arena is cut into superblock-sized slots, 64 to a group (32 MiB), each group two
 * bitmap words: `used` (handed out, or being purged) and `dirty` (free, and its pages may
 * still be resident).  Every slot, whatever it becomes (a small superblock, a host of
 * medium runs, part of a large run), comes from here and goes back here, so free slots
 * coalesce by themselves and any size reuses what any other size freed.  A run of up to
 * kRunMaxSlots slots is, in each group it touches, consecutive bits of its word: one
 * CAS per group, those made first undone if a later one fails.  So large runs pack as
 * tightly as the free slots allow, across the ends of groups.  The lowest free slots are
 * taken first, so the read-write prefix of an arena follows the peak in use.          */
struct Group {
    std::atomic<uint64_t> used{0};
    std::atomic<uint64_t> dirty{0};
};
struct Arena {
    uintptr_t base;
    size_t size;
    size_t slots;                      // size / kSbSize
    Group *groups;                     // ceil(slots / 64)
    std::atomic<size_t> committed{0};  // read-write prefix: [base, base + committed)
    std::atomic<size_t> end{0};        // reserved prefix still ours: [base, base + end)
    std::atomic<size_t> reach{0};      // no slot at or above base + reach was ever handed out
    std::atomic<size_t> low{0};        // no group below this has a free slot (a hint)
    std::atomic<Arena *> next{nullptr};  // list of all arenas, oldest first
};
std::atomic<Arena *> g_arena_list{nullptr};  // every arena, oldest (the fast path's) first
std::atomic<size_t> g_arena_try{kArenaMax};  // size of the next reservation attempt

/* The free fast path asks "a grain-aligned address inside the first arena?" with one
 * mask, because arenas are aligned to their (power of two) size.  Arenas are reserved
 * readable, so any superblock header in them may be read, committed or not (an unused
 * one reads as zeros); everything else goes through the ownership map on the slow path.
 * The initial base is no canonical address, so nothing passes before the first arena. */
struct alignas(64) FastRange {
    // Written once each, when the first arena is installed (mask first: a reader seeing
    // one new and one old value is refused).  Plain words outside ThreadSanitizer builds,
    // so that the compiler folds the loads into the test.
    uintptr_t base = uintptr_t(1) << 63;
    uintptr_t mask = ~uintptr_t(0);  // ~(arena size - 1) | (kGrain - 1)
    // The secret free-list links are xor-ed with, drawn once, before the first heap is
    // made: no free list exists before that, and none may outlive a change of key.
    std::atomic<uintptr_t> link_key{0};
    // Set at start-up if the asymmetric fence works (section 2): an owner then enters
    // what its heap holds with a plain store (held_enter), and a claimer fences for it.
    std::atomic<bool> light_enter{false};
} g_fast;
inline uintptr_t read_once(const uintptr_t &v) {
#ifdef LITE_TSAN
    return __atomic_load_n(&v, __ATOMIC_RELAXED);
#else
    return v;
#endif
}
/* a's offset in the first arena (which is aligned to its size), and whether a is a
 * grain-aligned address in it: when no bit of the mask is set in the offset. */
inline uintptr_t fast_arena_offset(uintptr_t a) { return a ^ read_once(g_fast.base); }
inline bool in_fast_arena(uintptr_t a) { return (fast_arena_offset(a) & read_once(g_fast.mask)) == 0; }

long vm_bytes();
/* The transparent huge page mode, read once: it decides how arenas are marked (see "huge
 * pages", section 6).  "always": the kernel backs any aligned 2 MiB it can with a huge
 * page, so arenas are MADV_NOHUGEPAGE and a dense region is marked MADV_HUGEPAGE (which
 * splits the arena's mapping).  "madvise": only marked memory gets huge pages, so arenas
 * are left unmarked and a dense region is collapsed without a mark (no split).  "never"
 * (or no THP): no huge pages are asked for. */
enum ThpMode { kThpNever = 1, kThpMadvise = 2, kThpAlways = 3 };
std::atomic<int> g_thp_mode{0};
int thp_mode() {
    int mode = g_thp_mode.load(std::memory_order_relaxed);
    if (mode) return mode;
    char buf[128];
    long fd = syscall6(SYS_open, long("/sys/kernel/mm/transparent_hugepage/enabled"), O_RDONLY, 0, 0, 0, 0);
    long n = fd < 0 ? 0 : syscall6(SYS_read, fd, long(buf), sizeof buf - 1, 0, 0, 0);
    if (fd >= 0) syscall6(SYS_close, fd, 0, 0, 0, 0, 0);
    buf[n > 0 ? n : 0] = 0;
    mode = strstr(buf, "[always]") ? kThpAlways : strstr(buf, "[madvise]") ? kThpMadvise : kThpNever;
    g_thp_mode.store(mode, std::memory_order_relaxed);
    return mode;
}
/* Reserve an arena.  The first is aligned to its size, for the free fast path's mask;
 * later ones only to a superblock.  Under an RLIMIT_AS, at most half of what the limit
 * still allows is reserved, so that the program's own mappings keep room. */
Arena *reserve_arena(size_t need) {
    size_t want = g_arena_try.load(std::memory_order_relaxed), least = kArenaMin;
    while (least < need) least *= 2;
    bool first = !g_arena_list.load(std::memory_order_acquire);
    struct rlimit rl;
    if (syscall6(SYS_prlimit64, 0, RLIMIT_AS, 0, long(&rl), 0, 0) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        long vm = vm_bytes();
        size_t avail = vm >= 0 && size_t(vm) < rl.rlim_cur ? rl.rlim_cur - size_t(vm) : 0;
        want = kArenaMax;  // (what an earlier limit allowed says nothing about this one)
        while (want > least && want > avail / 2) want /= 2;
    }
    for (; want >= least; want /= 2) {
        // Readable, not writable: no commit charge, and stray reads find zeros.
        size_t align = first ? want : kSbSize;
        char *raw = static_cast<char *>(os_map(nullptr, want + align, PROT_READ, MAP_NORESERVE));
        if (!raw) continue;
        char *base = reinterpret_cast<char *>(round_up(uintptr_t(raw), align));
        if (base > raw) os_unmap(raw, size_t(base - raw));
        os_unmap(base + want, size_t(raw + align - base));
        // Sparse use of a huge reservation must never be promoted to 2 MiB pages.
        if (thp_mode() != kThpMadvise) os_advise(base, want, MADV_NOHUGEPAGE);
        size_t slots = want / kSbSize, groups = (slots + kGroupSlots - 1) / kGroupSlots;
        auto *a = static_cast<Arena *>(meta_alloc(sizeof(Arena) + groups * sizeof(Group)));
        if (!a) { os_unmap(base, want); return nullptr; }
        a->base = uintptr_t(base);
        a->size = want;
        a->end.store(want, std::memory_order_relaxed);
        a->slots = slots;
        a->groups = reinterpret_cast<Group *>(a + 1);
        if (slots % kGroupSlots)  // the last group's missing slots are never free
            a->groups[groups - 1].used.store(~uint64_t(0) << (slots % kGroupSlots), std::memory_order_relaxed);
        g_arena_try.store(want, std::memory_order_relaxed);
        return a;
    }
    return nullptr;
}

/* RLIMIT_AS counts address space, and an arena reserves far more than it uses.  Against
 * a limit in force, lite-malloc counts what it has made read-write instead (what the
 * kernel would count had it mapped only that): a commit past the limit fails, and
 * reserved space other mappings need (thread stacks, libraries) is unmapped.  Only
 * commits look at the limit: one prlimit per commit step, and /proc/self/statm when a
 * limit is set. */
Counter g_committed;
size_t uncommitted_reserve() {
    size_t total = 0;
    for (Arena *a = g_arena_list.load(std::memory_order_acquire); a; a = a->next)
        total += a->end.load(std::memory_order_relaxed) - a->committed.load(std::memory_order_relaxed);
    return total;
}
long vm_bytes() {  // VmSize, from /proc/self/statm
    char buf[64];
    long fd = syscall6(SYS_open, long("/proc/self/statm"), O_RDONLY, 0, 0, 0, 0);
    if (fd < 0) return -1;
    long n = syscall6(SYS_read, fd, long(buf), sizeof buf - 1, 0, 0, 0);
    syscall6(SYS_close, fd, 0, 0, 0, 0, 0);
    if (n <= 0) return -1;
    long pages = 0;
    for (long i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++) pages = pages * 10 + (buf[i] - '0');
    return pages * long(kPage);
}
/* Give back reserved, uncommitted space until at most `keep` bytes of it remain. */
void shrink_reserve(size_t keep) {
    size_t have = uncommitted_reserve();
    for (Arena *a = g_arena_list.load(std::memory_order_acquire); a && have > keep; a = a->next) {
        size_t end = a->end.load(std::memory_order_acquire), committed = a->committed.load(std::memory_order_acquire);
        size_t give = end - committed < have - keep ? end - committed : have - keep;
        size_t fresh = round_up(end - give, kChunk);
        if (fresh >= end || !a->end.compare_exchange_strong(end, fresh, std::memory_order_acq_rel)) continue;
        // A commit racing with this one fails (mprotect of unmapped memory) and undoes.
        os_unmap(reinterpret_cast<void *>(a->base + fresh), end - fresh);
        have -= end - fresh;
    }
}
/* How many more bytes may be committed: `want` with no limit in force; under one, `need`
 * if it fits (else 0), and reserved space beyond half of what is left goes back. */
size_t commit_room(size_t need, size_t want) {
    struct rlimit rl;
    if (syscall6(SYS_prlimit64, 0, RLIMIT_AS, 0, long(&rl), 0, 0) != 0 || rl.rlim_cur == RLIM_INFINITY) return want;
    long vm = vm_bytes();
    if (vm < 0) return want;
    size_t spare = uncommitted_reserve(), used = size_t(vm) > spare ? size_t(vm) - spare : 0;
    size_t room = used + need < rl.rlim_cur ? (rl.rlim_cur - used - need) / 2 : 0;  // half for others
    if (spare > room) shrink_reserve(room);
    return used + need <= rl.rlim_cur ? need : 0;
}

/* Commits run ahead of the need by an eighth of what the arena has committed, up to
 * kCommitAhead: a program that grows to gigabytes commits in a few hundred steps, not
 * one per 4 MiB, and threads that start together race for fewer of them (each racer
 * makes the same mprotect: 512 threads taking 40 superblocks each made 28,000 mprotect
 * calls in 4 MiB steps, and ran 18% slower than with 64 MiB steps).  Under RLIMIT_AS,
 * only what is needed; under strict overcommit, only what is needed once the step ahead
 * is refused (read-write private memory is charged there: up to kCommitAhead of it may
 * be charged and not used). */
constexpr size_t kCommitAhead = size_t(64) << 20;
/* Make [base, base + upto) read-write; concurrent callers are harmless (mprotect is
 * idempotent) and the committed mark only grows. */
bool commit_arena(Arena *a, size_t upto) {
    size_t have = a->committed.load(std::memory_order_acquire);
    while (have < upto) {
        size_t end = a->end.load(std::memory_order_acquire);
        if (upto > end) return false;  // given back
        size_t ahead = have / 8 < kCommitAhead ? have / 8 : kCommitAhead;
        size_t need = round_up(upto, kChunk), want = round_up(upto + ahead, kChunk);
        if (need > end) need = end;
        if (want > end) want = end;
        size_t room = commit_room(need - have, want - have);
        if (!room) return false;
        size_t target = have + room;
        if (!os_protect(reinterpret_cast<void *>(a->base + have), target - have, PROT_READ | PROT_WRITE)) {
            target = upto;  // short of memory: commit only what is needed now
            if (!os_protect(reinterpret_cast<void *>(a->base + have), target - have, PROT_READ | PROT_WRITE))
                return false;
        }
        if (!mark_owned(a->base + have, target - have, true)) return false;
        if (a->committed.compare_exchange_strong(have, target, std::memory_order_acq_rel)) {
            g_committed.add(long(target - have));
            g_mapped.add(long(target - have));
            have = target;
        }
    }
    return true;
}

/* Add an arena to the list (the first one is the fast path's).  The load-time
 * constructor installs the first, so threads starting together do not each reserve
 * 64 GiB; false when no address space is left. */
bool add_arena(size_t need = 0) {
    Arena *fresh = reserve_arena(need);
    if (!fresh) return false;
    std::atomic<Arena *> *at = &g_arena_list;
    Arena *cur = nullptr;
    for (;;) {  // append: the arena taken from first stays first
        if (at->compare_exchange_weak(cur, fresh, std::memory_order_acq_rel)) break;
        if (cur) { at = &cur->next; cur = nullptr; }
    }
    if (at == &g_arena_list) {  // the first arena: the fast path's
        __atomic_store_n(&g_fast.mask, ~(fresh->size - 1) | (kGrain - 1), __ATOMIC_RELAXED);
        __atomic_store_n(&g_fast.base, fresh->base, __ATOMIC_RELEASE);
    }
    return true;
}

/* Bit i of the result: slots i .. i+n-1 of `free` are all set. */
inline uint64_t run_starts(uint64_t free, unsigned n) {
    uint64_t m = free;
    for (unsigned have = 1; have < n;) {  // doubling: m & (m >> k) extends runs by k
        unsigned k = have < n - have ? have : n - have;
        m &= m >> k;
        have += k;
    }
    return n > 1 ? m & ~uint64_t(0) >> (n - 1) : m;  // a run may not leave the word
}
/* Bit i: slot i of the group at `group` is a run start that puts `group + i * kSbSize +
 * phase` on a multiple of `align` (all bits when align <= kSbSize). */
inline uint64_t aligned_starts(uintptr_t group, size_t align, size_t phase) {
    if (align <= kSbSize) return ~uint64_t(0);
    uint64_t m = 0;
    size_t first = (align - (group + phase) % align) % align / kSbSize, step = align / kSbSize;
    for (size_t i = first; i < kGroupSlots; i += step) m |= uint64_t(1) << i;
    return m;
}

PeakCounter g_slots_used;  // slots handed out (bytes)
Counter g_slots_dirty;      // free slots whose pages may be resident (bytes)
void decay_tick();

inline uint64_t low_bits(unsigned n) { return n >= 64 ? ~uint64_t(0) : (uint64_t(1) << n) - 1; }
/* f(group, bits) for each group's part of the run of n slots from slot index `first`. */
template <class F> inline void for_each_part(size_t first, unsigned n, F f) {
    while (n) {
        size_t g = first / kGroupSlots, i = first % kGroupSlots;
        unsigned k = n < kGroupSlots - i ? n : unsigned(kGroupSlots - i);
        f(g, low_bits(k) << i);
        first += k;
        n -= k;
    }
}
/* Mark the run's slots used, part by part; false (and nothing marked) if any is taken.
 * dirty[k] gets which slots of part k were dirty.  The giver sets `dirty` before it
 * clears `used`: after our CAS, this sees every dirty bit of ours. */
bool run_mark_used(Arena *a, size_t first, unsigned n, uint64_t dirty[kRunMaxParts]) {
    unsigned parts = 0;
    bool lost = false;
    for_each_part(first, n, [&](size_t g, uint64_t bits) {
        if (lost) return;
        uint64_t used = a->groups[g].used.load(std::memory_order_acquire);
        while (!(used & bits) && !a->groups[g].used.compare_exchange_weak(used, used | bits, std::memory_order_acq_rel)) {}
        if (used & bits) lost = true;
        else parts++;
    });
    unsigned k = 0;
    for_each_part(first, n, [&](size_t g, uint64_t bits) {
        if (lost) {
            if (k++ < parts) a->groups[g].used.fetch_and(~bits, std::memory_order_release);
        } else {
            dirty[k++] = a->groups[g].dirty.fetch_and(~bits, std::memory_order_acq_rel) & bits;
        }
    });
    return !lost;
}
/* Undo run_mark_used (no memory to commit the run). */
void run_unmark(Arena *a, size_t first, unsigned n, const uint64_t dirty[kRunMaxParts]) {
    unsigned k = 0;
    for_each_part(first, n, [&](size_t g, uint64_t bits) {
        if (dirty[k]) a->groups[g].dirty.fetch_or(dirty[k], std::memory_order_release);
        a->groups[g].used.fetch_and(~bits, std::memory_order_release);
        k++;
    });
}
/* A run marked used is in use.  An old header left in a dirty slot of it must not look
 * like one of ours to a stray free() there (most of a run becomes a large block, the
 * program's memory; a slot that gets a header of its own gets it over the wiped word).
 * Returns how many were dirty. */
void header_wipe(uintptr_t slot);
long run_settle(Arena *a, size_t first, unsigned n, const uint64_t dirty[kRunMaxParts]) {
    size_t end = (first + n) * kSbSize, reach = a->reach.load(std::memory_order_relaxed);
    while (reach < end && !a->reach.compare_exchange_weak(reach, end, std::memory_order_relaxed)) {}
    long count = 0;
    unsigned k = 0;
    for_each_part(first, n, [&](size_t g, uint64_t) {
        for (uint64_t m = dirty[k++]; m; m &= m - 1, count++) {
            size_t slot = g * kGroupSlots + unsigned(__builtin_ctzll(m));
            header_wipe(a->base + slot * kSbSize);
        }
    });
    g_slots_used.add(long(n * kSbSize));
    g_slots_dirty.add(-count * long(kSbSize));
    return count;
}

/* Take n consecutive free slots (1 <= n <= kRunMaxSlots) whose start plus `phase` is a
 * multiple of `align` (a power of two, at most a group; a run longer than the room left
 * in its group only when align <= kSbSize), lowest address first; for a single slot, a
 * dirty one if there is one (its pages are resident: no fault, no zeroing by the
 * kernel).  Returns the first slot, or 0 when memory is exhausted; *dirty: some of its
 * slots were dirty (their memory may hold old data). */
uintptr_t slots_take(unsigned n, size_t align, size_t phase, bool *dirty) {
    DEBUG_CHECK(n >= 1 && n <= kRunMaxSlots, "a run of slots too long:", reinterpret_cast<void *>(uintptr_t(n)));
    uint64_t run = low_bits(n);
    bool committed_only = false;  // after a failed commit: runs inside what is read-write
    for (int attempt = 0;; attempt++) {
        // The best start: most dirty slots in the run, then the lowest address.  The walk
        // stops at the first run that is all dirty (no better one exists), and looks no
        // further than the slots handed out so far while a dirty one may still turn up.
        // A run that leaves its group starts at the free top of the group.
        Arena *best_a = nullptr;
        size_t best = 0;  // slot index in best_a
        unsigned best_score = 0;
        bool found = false;
        for (Arena *a = g_arena_list.load(std::memory_order_acquire); a; a = a->next) {
            size_t groups = (a->slots + kGroupSlots - 1) / kGroupSlots;
            // slots not given back (or, committed_only, already read-write)
            size_t ours = (committed_only ? a->committed : a->end).load(std::memory_order_relaxed) / kSbSize;
            for (size_t g = a->low.load(std::memory_order_relaxed); g < groups; g++) {
                if (found && g * kGroupSlots * kSbSize >= a->reach.load(std::memory_order_relaxed)) break;
                Group &grp = a->groups[g];
                uint64_t used = grp.used.load(std::memory_order_acquire);
                if (!~used) {
                    if (n == 1) {  // full: move the hint past it
                        size_t low = g;
                        a->low.compare_exchange_strong(low, g + 1, std::memory_order_relaxed);
                    }
                    continue;
                }
                if (n <= kGroupSlots) {  // runs inside the group
                    uint64_t starts = run_starts(~used, n) & aligned_starts(a->base + g * kGroupBytes, align, phase);
                    if (ours < (g + 1) * kGroupSlots + n - 1) {  // the run must end below `ours`
                        size_t fit = ours >= g * kGroupSlots + n ? ours - g * kGroupSlots - n + 1 : 0;
                        starts &= fit >= 64 ? ~uint64_t(0) : (uint64_t(1) << fit) - 1;
                    }
                    uint64_t dirty_bits = grp.dirty.load(std::memory_order_relaxed) & ~used;
                    for (uint64_t m = starts; m; m &= m - 1) {
                        unsigned i = unsigned(__builtin_ctzll(m)), score = bits_set(dirty_bits & run << i);
                        if (found && score <= best_score) continue;
                        best_a = a, best = g * kGroupSlots + i, best_score = score, found = true;
                        if (score == n || !dirty_bits) break;
                    }
                }
                unsigned top = used ? unsigned(__builtin_clzll(used)) : 64;  // free slots at the top
                size_t start = (g + 1) * kGroupSlots - top;
                if (top && top < n && align <= kSbSize && start + n <= ours && (start + n - 1) / kGroupSlots < groups &&
                    (!found || best_score < n)) {  // a run leaving the group
                    unsigned score = 0;
                    bool fits = true;
                    for_each_part(start, n, [&](size_t h, uint64_t bits) {
                        if (!fits) return;
                        if ((h == g ? used : a->groups[h].used.load(std::memory_order_acquire)) & bits) fits = false;
                        else score += bits_set(a->groups[h].dirty.load(std::memory_order_relaxed) & bits);
                    });
                    if (fits && (!found || score > best_score)) best_a = a, best = start, best_score = score, found = true;
                }
                if (found && best_score == n) break;
            }
            if (found && best_score == n) break;
        }
        if (found) {
            Arena *a = best_a;
            uint64_t dirty_bits[kRunMaxParts];
            if (!run_mark_used(a, best, n, dirty_bits)) {
                attempt = -1;  // lost a race for it: look again
                continue;
            }
            if (!commit_arena(a, (best + n) * kSbSize)) {  // no memory: undo, nothing burnt
                run_unmark(a, best, n, dirty_bits);
                if (committed_only) return 0;
                committed_only = true;  // a run in what is read-write already needs no commit
                attempt = -1;
                continue;
            }
            *dirty = run_settle(a, best, n, dirty_bits) != 0;
            return a->base + best * kSbSize;
        }
        if (committed_only || attempt > 0 || !add_arena(n * kSbSize + (align > kSbSize ? align : 0))) return 0;
    }
}

Arena *arena_of(uintptr_t p) {
    for (Arena *a = g_arena_list.load(std::memory_order_acquire); a; a = a->next)
        if (p - a->base < a->size) return a;
    return nullptr;
}

/* Give back n slots starting at `first`; `dirty`: their pages may be resident.  The
 * decay clock of each starts now. */
void slots_give(uintptr_t first, unsigned n, bool dirty) {
    Arena *a = arena_of(first);
    size_t idx = (first - a->base) / kSbSize;
    if (dirty) {
        uint64_t now = now_ms();
        for (unsigned k = 0; k < n; k++) side_of(first + k * kSbSize)->freed_at.store(now, std::memory_order_relaxed);
        g_slots_dirty.add(long(n * kSbSize));
    }
    g_slots_used.add(-long(n * kSbSize));
    for_each_part(idx, n, [&](size_t g, uint64_t bits) {  // each group's part: dirty first, then free
        if (dirty) a->groups[g].dirty.fetch_or(bits, std::memory_order_release);
        uint64_t was = a->groups[g].used.fetch_and(~bits, std::memory_order_release);
        DEBUG_CHECK((was & bits) == bits, "slots given back while free: the slot store, at", reinterpret_cast<void *>(first));
        size_t low = a->low.load(std::memory_order_relaxed);
        while (g < low && !a->low.compare_exchange_weak(low, g, std::memory_order_relaxed)) {}
    });
    decay_tick();
}

/* Take the slots [first + have, first + want) if they are free (a large run growing in
 * place).  Dirty ones get their old header wiped. */
bool slots_extend(uintptr_t first, unsigned have, unsigned want) {
    Arena *a = arena_of(first);
    size_t idx = (first - a->base) / kSbSize + have;
    unsigned n = want - have;
    uint64_t dirty[kRunMaxParts];
    if (want > kRunMaxSlots || idx + n > a->slots || !run_mark_used(a, idx, n, dirty)) return false;
    if (!commit_arena(a, (idx + n) * kSbSize)) {
        run_unmark(a, idx, n, dirty);
        return false;
    }
    run_settle(a, idx, n, dirty);
    return true;
}

/* ===================================================================================== *
 * 5. Size classes.  16-byte steps up to 256 B; above, the classes are chosen so that a
 *    block's share of its superblock (class rounding plus the superblock's tail) never
 *    exceeds the request rounded up to 16 by more than 6% up to 8 KiB, and 10% above (to
 *    48 KiB, where page runs take over: they waste under 9% from there), with every
 *    power of two and three times a power of two kept as a class of its own.  The table
 *    is computed at compile time; a request finds its class with one byte load.
 * ===================================================================================== */
constexpr size_t kMaxClasses = 160;
constexpr size_t kIndexLen = kSmallMax / kGrain + 1;  // class_of()'s table, by grains_of(request)
constexpr size_t kFastLen = kFastMax / kGrain + 1;    // Heap::by_grains

/* A class's first block sits at the block size's own alignment (its lowest set bit, up to
 * a page, at least past the header), so that every block is aligned that far: aligned
 * requests up to a page take a class instead of a page run.  (Past a coloured header it
 * is the first such offset after the header, and the head starts at it; the class table
 * counts with the colour that leaves the fewest blocks: least_blocks.) */
constexpr size_t first_block(size_t size) {
    size_t natural = size & (~size + 1);
    return natural > kPage ? kPage : natural < kSbHeader ? kSbHeader : natural;
}
/* The fewest blocks a superblock of `size` holds, over every colour: its body (from past
 * the header to the slot's end) and its head (from the class's first offset up to the
 * header), as init_small lays them out.  (A full superblock may have every page of its
 * slot resident, under a huge page: the class table's density bound counts the slot.) */
constexpr size_t least_blocks(size_t size) {
    size_t least = kSbSize, align = first_block(size);
    for (size_t k = 0; k < kColours; k++) {
        size_t colour = k * kColourStep, first = align < colour + kSbHeader ? (colour + kSbHeader + align - 1) / align * align : align;
        size_t blocks = (kSbSize - first) / size + (colour > align ? (colour - align) / size : 0);
        if (blocks < least) least = blocks;
    }
    return least;
}
struct ClassTable {
    uint32_t size[kMaxClasses] = {};
    uint32_t first[kMaxClasses] = {};          // offset of the first block in a superblock
    uint64_t divisor_magic[kMaxClasses] = {};  // n % size == 0  <=>  n * magic < magic
    uint32_t count = 0;
    uint8_t index[kIndexLen] = {};  // grains_of(request) -> class
    uint16_t first_grains[kMaxClasses + 1] = {};  // a class's entries: [first_grains[c], first_grains[c + 1])
};

constexpr bool forced_class(size_t c) {  // 2^k and 3*2^k stay exact
    return (c & (c - 1)) == 0 || (c % 3 == 0 && ((c / 3) & (c / 3 - 1)) == 0);
}
constexpr ClassTable make_classes() {
    ClassTable t;
    size_t lo = kGrain;  // smallest request not yet covered
    while (lo <= kSmallMax) {
        size_t best = lo;
        if (lo > 256) {
            // The largest class whose footprint per block (in 1/1000 of the request) keeps
            // the bound for lo; if none does, the largest with lo's own number of blocks per
            // superblock (as dense for lo as lo itself, and no run of classes 16 B apart).
            size_t limit_x1000 = lo <= 8192 ? 1060 : 1100, same = lo, lo_blocks = least_blocks(lo);
            bool met = false;
            for (size_t c = lo; c <= kSmallMax; c += kGrain) {
                size_t n = least_blocks(c);
                // (Past the bound, with fewer blocks than lo's, no larger class passes either
                // test: the loop stays within constexpr evaluation limits, clang's too.)
                if (c * 1000 > lo * limit_x1000 && n < lo_blocks) break;
                if (kSbSize * 1000 / n <= lo * limit_x1000) best = c, met = true;
                else if (n == lo_blocks) same = c;
                if (forced_class(c)) break;
            }
            if (!met) best = same;
        }
        t.divisor_magic[t.count] = ~uint64_t(0) / best + 1;
        t.first[t.count] = uint32_t(first_block(best));
        t.size[t.count++] = uint32_t(best);
        lo = best + kGrain;
    }
    size_t cls = 0;
    for (size_t g = 0; g < kIndexLen; g++) {
        while (t.size[cls] < g * kGrain) t.first_grains[++cls] = uint16_t(g);
        t.index[g] = uint8_t(cls);
    }
    t.first_grains[t.count] = uint16_t(kIndexLen);
    return t;
}
constexpr ClassTable kClasses = make_classes();
constexpr unsigned kNumClasses = kClasses.count;
static_assert(kNumClasses <= kMaxClasses && kNumClasses < 256, "too many size classes");
static_assert(kClasses.size[kNumClasses - 1] == kSmallMax, "class table must end at the limit");

inline size_t grains_of(size_t n) { return (n + kGrain - 1) / kGrain; }  // n rounded up, in grains
inline unsigned class_of(size_t n) { return kClasses.index[grains_of(n)]; }

/* ===================================================================================== *
 * 6. Superblocks.
 *    kind tells what a superblock holds.  A small superblock's first cache line is what
 *    every free reads and nobody writes often (owner, bounds, canary, sizes); the second
 *    is written all the time (the owner's lists, and the remote list other threads give
 *    batches to), so that freeing into another thread's superblock reads no line its
 *    owner keeps writing.
 *
 *    A small superblock is either OWNED by one heap, whose thread allocates from it (it is
 *    that heap's current superblock of its class: a heap owns no other), or DETACHED:
 *    nobody allocates from it, and every block that comes back is counted down in its
 *    remote word until the last one makes it empty, whereupon it goes to the slot store at
 *    once, whoever freed that block.  So no memory waits on an owner that stopped
 *    allocating a size, went idle or exited: only one superblock per class per heap ever
 *    does.  A detached superblock with enough free blocks is LISTED for adoption by any
 *    heap that needs its class.
 * ===================================================================================== */
enum Kind : uint8_t { kUnused = 0, kSmall, kHost, kGiven };

/* A free small block: the link, then (blocks of 16 bytes and more) a canary, a random
 * value drawn for each incarnation of its superblock (Superblock::canary), which a
 * program cannot meet by chance.  (It was the header's address once: a gcc structure
 * whose int 0 sat beside padding holding the upper half of an arena address met the
 * header of a superblock on a 4 GiB boundary, and its free was taken for a double free.
 * A value of an earlier incarnation, left in memory a block of another class now covers,
 * must not match either.)  free() finds the canary in place only if the block is free
 * already, which catches every double free; malloc() wipes it.  (8-byte blocks, in the
 * LITE_MALLOC_MIN_ALIGN=8 build, have no room for it: a double free of the block freed
 * last is all that is caught there.) */
/* The link is stored xor-ed with another secret, so that a stray or hostile write into a
 * free block cannot point the free list at an address of the writer's choosing. */
#ifndef LITE_MALLOC_ENCODE_LINKS
#define LITE_MALLOC_ENCODE_LINKS 1
#endif
struct Block {
    uintptr_t link;
    uintptr_t canary;
    static uintptr_t key() { return LITE_MALLOC_ENCODE_LINKS ? g_fast.link_key.load(std::memory_order_relaxed) : 0; }
    Block *next() const { return reinterpret_cast<Block *>(link ^ key()); }
    void set_next(Block *n) { link = uintptr_t(n) ^ key(); }
};
struct Heap;

/* The remote word: a list of blocks given back by threads other than the owner, its
 * length in the top 16 bits (user addresses fit in 47) and three flags in the low bits
 * (blocks are at least 8-byte aligned):
 *   DETACHED  no owner; the length field counts the blocks still out (set by detach,
 *             counted down by every give: the word alone decides, so a giver that read
 *             it during an earlier detachment cannot act on stale figures; a separate
 *             `out` field read beside an identical word emptied live superblocks)
 *   LISTED    detached with enough free blocks to be worth adopting: in (or due in) an
 *             adoption stack
 *   EMPTIED   every block came back; given to the slot store (the word is just this flag)
 * An owned superblock's word has no flag. */
constexpr uintptr_t kDetached = 1, kListed = 2, kEmptied = 4, kFlags = 7;
constexpr unsigned kCountShift = 48;
constexpr uintptr_t kPtrMask = ((uintptr_t(1) << kCountShift) - 1) & ~kFlags;
constexpr uint32_t kMaxCapacity = 0xffff;
static_assert(kGrain >= 8, "the remote word keeps three flags in a block address's low bits");
inline uint32_t remote_count(uintptr_t r) { return uint32_t(r >> kCountShift); }
inline Block *remote_list(uintptr_t r) { return reinterpret_cast<Block *>(r & kPtrMask); }

struct Superblock {
    // line 0: read by every free, the other threads' too; written seldom (bump: once per
    // kExtendBytes of blocks), so that a thread freeing into it does not miss on a line
    // its owner writes at every malloc and free
    std::atomic<Heap *> owner;   // the heap that allocates from it; null if none
    // The bump pointer (the first block never handed out; others read it to validate), as
    // an offset from the end of the header, 32 bits: one unsigned compare of a pointer's
    // offset tells both "in the header" and "never handed out" (outside_blocks), in the
    // body and in the head, whose offsets wrap round (see blocks_start).
    std::atomic<uint32_t> bump;
    std::atomic<uint32_t> body_carved;  // bytes of the body carved (from its first block)
    uint64_t canary;             // this incarnation's canary (see Block); never 0
    uint32_t block_size;
    uint16_t capacity;           // blocks in all (at most kMaxCapacity)
    uint16_t body_capacity;      // blocks in the body (the rest: the head's)
    uint64_t magic;              // n % block_size == 0  <=>  n * magic < magic
    uint16_t first;              // offset of the first block
    uint8_t kind;
    uint8_t size_class;
    // The owner's, rarely: the pages below `resident_end` (an offset in the slot) may be resident,
    // since `resident_at` (ms); those above the bump pointer are the tail, and those of the
    // head too if `head_resident` (tail_trim).
    uint32_t resident_end;
    uint64_t resident_at;
    bool head_resident;
    uint32_t bump_end;           // the bump offset once every block is carved
    // line 1: written all the time, by the owner (its lists) and by batches of remote frees
    alignas(64) Block *free;     // the owner's free list
    Block *reserve;              // more free blocks of the owner's, taken when `free` runs dry
    std::atomic<uintptr_t> remote;
    char pad1_[40];
};
static_assert(sizeof(Superblock) == kSbHeader, "superblock header must stay two cache lines");

/* Colours.  A small superblock's header sits colour * (4 KiB + 128 bytes) into its slot,
 * the colour (0-7) being the slot number's low bits; its blocks start after it, and those
 * below it (its head) are carved last (blocks_start).  Slots are 512 KiB-aligned, and a
 * superblock's busy blocks are its first ones (the free list is last in, first out), so
 * without colours the busy lines and pages of every class sat at the same offsets:
 *  - in the L1 cache, whose set comes from the address bits below the page size, the
 *    headers of more than eight classes at once shared two sets (churn, 24 classes: 3.8
 *    L1 misses per malloc+free pair in callgrind's cache model, 1.8 with the headers 128
 *    bytes apart in the first page);
 *  - in the TLB, whose set comes from the low bits of the page number, the busy pages of
 *    a thread's classes shared a few sets: churn (8-512 B, 4096 blocks live) took 28-30
 *    ns a pair with the headers in the first page, 21 with a page between colours as well
 *    (mimalloc 2.0.9: 18-21, tcmalloc: 15-18); 256 pages visited at random, 512 KiB
 *    apart, took 35 ns a visit, and 17 at offsets spread over 16 pages.
 * The free fast path reads the coloured owner word of the slot of any pointer in the
 * first arena but a slot's first byte (where a large block starts), so a host keeps its
 * colour's page out of its runs, with a null owner word (host_reserved).  The first arena
 * is aligned beyond the colour bits, so an offset in it has the same ones as the address. */
/* The colour's offset, from any address in the slot: the slot number's low bits, times
 * kColourStep.  A shift and a mask (the colour times 128), and a multiply by 33 (gcc
 * would multiply with three shifts and two adds).  (With 512 bytes between colours, one
 * lea instead, the first blocks after a header reached further into the next page:
 * sparse_threads' peak RSS rose from 87 to 99 MiB.) */
constexpr uintptr_t colour_page(uintptr_t a) { return (a >> kSbShift) & (kColours - 1); }
static_assert(kColourStep == 33 * kColourLine && kColourLine == uintptr_t(1) << (kSbShift - 12), "colour_of's arithmetic");
static_assert(kArenaMin % (kSbSize * kColours) == 0, "the first arena must be aligned beyond the colour bits");
inline uintptr_t colour_of(uintptr_t a) {
    uintptr_t lines = (a >> 12) & ((kColours - 1) * kColourLine);
    asm("imul $33, %0, %0" : "+r"(lines));
    return lines;
}
inline uintptr_t slot_of(const void *sb) { return uintptr_t(sb) & ~(kSbSize - 1); }
inline Superblock *small_header(uintptr_t slot) { return reinterpret_cast<Superblock *>(slot + colour_of(slot)); }
/* The small superblock header p's slot would have. */
inline Superblock *header_of(const void *p) { return small_header(slot_of(p)); }
/* A dirty slot that becomes the program's memory (a large block's) may hold an old header
 * where the free fast path looks: null its owner word, so that a stray free() there is
 * never taken for one of a small block of ours. */
void header_wipe(uintptr_t slot) { small_header(slot)->owner.store(nullptr, std::memory_order_relaxed); }
/* What the slot is, as the side table says (free for a slot outside the arenas). */
inline Role role_of(const Superblock *sb) {
    SideSlot *side = side_of(uintptr_t(sb));
    return side ? Role(side->role.load(std::memory_order_acquire)) : kRoleFree;
}
/* A small superblock's blocks are carved in two parts: the body, from its header to its
 * slot's end, then the head, below the header (section 6, colours), from the class's
 * first offset in the slot up to the header.  The bump pointer is an offset from the
 * header's end in 32 bits, so in the head it wraps round (a head block's offset is 2^32
 * less its distance below the header's end): every offset of the body is below every one
 * of the head, and those of the header above both, so "handed out" is still one unsigned
 * compare with the bump offset, in either part (outside_blocks). */
inline char *blocks_start(Superblock *sb) { return reinterpret_cast<char *>(sb) + sb->first; }
inline char *head_start(Superblock *sb) { return reinterpret_cast<char *>(slot_of(sb)) + kClasses.first[sb->size_class]; }
inline bool carving_head(uint32_t bump) { return int32_t(bump) < 0; }
inline char *bump_pointer(Superblock *sb) {
    return reinterpret_cast<char *>(sb) + kSbHeader + int32_t(sb->bump.load(std::memory_order_relaxed));
}
/* p as a bump offset: from the header's end, in 32 bits (wrapping round in the head). */
inline uint32_t bump_offset(const Superblock *sb, const char *p) { return uint32_t(p - reinterpret_cast<const char *>(sb) - kSbHeader); }
inline void set_bump(Superblock *sb, const char *p) {
    uint32_t offset = bump_offset(sb, p);
    sb->bump.store(offset, std::memory_order_relaxed);
    if (!carving_head(offset)) sb->body_carved.store(offset - (sb->first - kSbHeader), std::memory_order_relaxed);
}
inline bool carved_all(Superblock *sb) { return sb->bump.load(std::memory_order_relaxed) == sb->bump_end; }
/* Blocks carved (handed out at least once, or on the free list) when the bump offset is
 * `bump`: the body's, then the head's.  (Also for the statistics, which read another
 * thread's superblock racily: no ThreadSanitizer.) */
__attribute__((no_sanitize("thread"))) inline uint32_t carved_at(Superblock *sb, uint32_t bump) {
    // (head_start's and blocks_start's sums written out: a call to them would be instrumented)
    const char *at = reinterpret_cast<const char *>(sb) + kSbHeader + int32_t(bump);
    return carving_head(bump)
               ? sb->body_capacity + uint32_t((at - reinterpret_cast<const char *>(slot_of(sb)) -
                                               kClasses.first[sb->size_class]) / sb->block_size)
               : uint32_t((at - reinterpret_cast<const char *>(sb) - sb->first) / sb->block_size);
}
inline uint32_t carved(Superblock *sb) { return carved_at(sb, sb->bump.load(std::memory_order_relaxed)); }
/* Its bump offset, for a superblock another thread may be setting up (statistics,
 * hints): a plain read that ThreadSanitizer leaves alone. */
__attribute__((no_sanitize("thread"))) inline uint32_t peek_bump(const Superblock *sb) {
    return uint32_t(peek(&sb->bump));  // (the low half of the word)
}
/* q's offset from the first block of the part of sb (body or head) it falls in, if it is
 * in a carved block; else kNotCarved (times a magic, never below it: small_block_ok says
 * no).  In the body, one compare. */
constexpr uint64_t kNotCarved = ~uint64_t(0);
inline uint64_t head_offset(Superblock *sb, const char *q) {
    uint32_t bump = sb->bump.load(std::memory_order_relaxed);
    const char *head = head_start(sb);
    bool in = carving_head(bump) && q >= head && q < reinterpret_cast<const char *>(sb) &&
              bump_offset(sb, q) < bump;
    return in ? uint64_t(q - head) : kNotCarved;
}
__attribute__((always_inline)) inline uint64_t carved_offset(Superblock *sb, const char *q) {
    uint32_t from = uint32_t(q - reinterpret_cast<const char *>(sb) - sb->first);  // (below the body: huge)
    return from < sb->body_carved.load(std::memory_order_relaxed) ? from : head_offset(sb, q);
}
__attribute__((always_inline)) inline bool small_block_ok(Superblock *sb, const void *p) {  // the start of a block handed out
    return carved_offset(sb, static_cast<const char *>(p)) * sb->magic < sb->magic;  // a multiply, not a divide
}

/* Blocks of 16 bytes and more carry a canary (in the default build, all of them). */
inline bool has_canary(const Superblock *sb) { return kGrain >= 16 || sb->block_size >= 16; }
/* free(): is b free already (its canary in place)?  Then mark it free. */
inline bool freed_already_here(const Superblock *sb, const Block *b) {
    return has_canary(sb) ? b->canary == sb->canary : b == sb->free;  // (no canary: the block freed last, at best)
}
inline void mark_freed(Superblock *sb, Block *b) {
    if (has_canary(sb)) b->canary = sb->canary;
}
inline bool freed_already_else_mark(Superblock *sb, Block *b) {
    if (freed_already_here(sb, b)) return true;
    mark_freed(sb, b);
    return false;
}
/* realloc(): is the block free already?  (The canary only: sb may be another heap's.) */
inline bool freed_already(const Superblock *sb, const Block *b) { return has_canary(sb) && b->canary == sb->canary; }


/* An empty superblock, host or large block's run (`slots` slots from sb) goes back to the
 * slot store; its pages stay resident until decay (or the retain limit) purges them. */
void superblock_give(Superblock *sb, unsigned slots = 1) {
    DEBUG_CHECK(side_of(uintptr_t(sb))->role.load(std::memory_order_relaxed) != kRoleFree, "a superblock given back twice", sb);
    sb->kind = kGiven;
    sb->owner.store(nullptr, std::memory_order_relaxed);
    for (unsigned k = 0; k < slots; k++) side_of(uintptr_t(sb) + k * kSbSize)->role.store(kRoleFree, std::memory_order_release);
    slots_give(uintptr_t(sb), slots, true);
}

/* ---- adoption: detached superblocks with free blocks, one stack per class (and one of
 *      hosts with free pages) ------------------------------------------------------------ *
 * The stacks link through the side slots, so an entry survives its superblock being
 * emptied, given back, purged or reused meanwhile: entries are hints, checked when popped.
 * A superblock has at most one entry at a time (its `stacked` word), so no link is ever
 * written twice.                                                                        */
struct AdoptLink {
    std::atomic<uintptr_t> &operator()(uintptr_t n) const { return side_of(n)->adopt; }
};
constexpr unsigned kHostStack = kNumClasses;  // the last stack: hosts with free pages
/* Shards (LITE_MALLOC_ENGINES_COUNT, a name kept from the original): the adoption stacks are
 * kept in this many copies, so that threads listing and adopting do not all CAS one word.
 * A thread lists into its heap's shard and adopts from it first, then from the others in
 * turn (USE_PERTHREAD_ENGINES=0: every listing picks the next shard in turn). */
struct alignas(64) Shard {
    VersionedStack<AdoptLink> adoptable[kNumClasses + 1];
};
Shard g_shards[kShards];
std::atomic<unsigned> g_shard_turn{0};
unsigned my_shard();  // the calling thread's heap's shard

/* A detached superblock of class c became LISTED: make sure an adoption stack holds it
 * (shard: the lister's).
 * (The caller read c before the CAS that listed it: from then on, the superblock may
 * be emptied and reused for another class at any moment; the popper then moves it.) */
void adopt_offer(Superblock *sb, unsigned c, unsigned shard) {
    SideSlot *side = side_of(uintptr_t(sb));
    if (side->stacked.exchange(1, std::memory_order_seq_cst)) return;  // its entry is waiting
    unsigned e = LITE_MALLOC_USE_PERTHREAD_ENGINES ? shard
                                                   : g_shard_turn.fetch_add(1, std::memory_order_relaxed) % kShards;
    g_shards[e].adoptable[c].push(uintptr_t(sb));
}
/* An entry of stack c whose slot still has the role `role`, from the caller's shard
 * first; 0 when all are empty.  The entry is gone (its slot may be offered again); stale
 * ones, whose slot became something else, are dropped on the way. */
uintptr_t adopt_pop(unsigned c, Role role) {
    unsigned first = my_shard();
    for (unsigned i = 0; i < kShards;) {
        VersionedStack<AdoptLink> &stack = g_shards[(first + i) % kShards].adoptable[c];
        uintptr_t n = stack.empty() ? 0 : stack.pop();
        if (!n) {
            i++;
            continue;
        }
        DEBUG_CHECK((n % kSbSize == 0 || n % kSbSize == colour_of(n)) && arena_of(n),
                    "an adoption entry outside the arenas, at", reinterpret_cast<void *>(n));
        SideSlot *side = side_of(n);
        DEBUG_CHECK(side->stacked.load(std::memory_order_relaxed) == 1, "an adoption entry its slot does not know of, at",
                    reinterpret_cast<void *>(n));
        side->stacked.store(0, std::memory_order_seq_cst);
        if (side->role.load(std::memory_order_acquire) == role) return n;
    }
    return 0;
}

/* Blocks are worth adopting once this many are free: fewer would be used up at once. */
inline uint32_t adopt_threshold(const Superblock *sb) { return sb->capacity / 8 + 1; }

/* The debug build's check of a list of sb's free blocks: every block on a block
 * boundary below the bump pointer, no cycle.  Returns its length. */
uint32_t debug_check_list(Superblock *sb, Block *list, const char *what) {
    uint32_t n = 0;
    for (Block *b = list; b; b = b->next(), n++) {
        DEBUG_CHECK(n < sb->capacity, what, sb);  // (a cycle)
        DEBUG_CHECK(small_block_ok(sb, b), what, b);
    }
    return n;
}

/* Give n blocks of sb (linked head..tail) back.  An owned superblock keeps them on its
 * remote list for its owner; a detached one counts them down, and the call that brings
 * the last one back sends it to the slot store.  One CAS for the whole batch. */
void remote_give(Superblock *sb, Block *head, Block *tail, uint32_t n) {
    unsigned c = sb->size_class;  // stable until our blocks are back
    // (a batch from an outbox ends in a null link; a single block's link is not set yet)
    DEBUG_CHECK(head == tail ? n == 1 && small_block_ok(sb, head)
                             : !tail->next() && debug_check_list(sb, head, "a batch of remote frees") == n,
                "a batch of remote frees whose length or end is not its own, for", sb);
    uintptr_t old = sb->remote.load(std::memory_order_acquire), fresh;
    bool offer;
    for (;;) {
        if (UNLIKELY(old & kEmptied)) fatal("free", "double free of", head);
        offer = false;
        tail->set_next(remote_list(old));
        if (old & kDetached) {  // the count is what is still out
            uint32_t left = remote_count(old);
            if (n > left) fatal("free", "double free of", head);
            left -= n;
            fresh = uintptr_t(head) | uintptr_t(left) << kCountShift | (old & kFlags);
            if (!left) {
                fresh = kEmptied;
            } else if (!(old & kListed) && sb->capacity - left >= adopt_threshold(sb)) {
                fresh |= kListed;
                offer = true;
            }
        } else {  // owned: the count is the length of the remote list
            fresh = uintptr_t(head) | uintptr_t(remote_count(old) + n) << kCountShift | (old & kFlags);
        }
        if (sb->remote.compare_exchange_weak(old, fresh, std::memory_order_acq_rel, std::memory_order_acquire))
            break;
    }
    if (fresh == kEmptied) superblock_give(sb);
    else if (offer) adopt_offer(sb, c, my_shard());
}

/* ---- huge pages: for dense regions only ---------------------------------------------- *
 * The kernel never backs arena memory with huge pages by itself (thp_mode(), section 4):
 * a huge page over sparse memory (a thread's first superblock of a class, a slot barely
 * used) makes 2 MiB resident for a few bytes.  A
 * 2 MiB-aligned region of four slots becomes huge once it is dense: all four are small
 * superblocks carved to their end, whose blocks fill all but 1/32 of the slot (slot_dense),
 * and those nobody owns (detached) still have half of
 * their blocks live.  The test runs when an owner lets go of a used-up superblock (the
 * moment a slot becomes dense); the region is then collapsed into a huge page
 * (MADV_COLLAPSE, Linux 6.1+: a synchronous copy, at most one region per call; under THP
 * "always" it is first marked MADV_HUGEPAGE, and older kernels then leave the collapse
 * to khugepaged).  Decay spares the free slots of a huge region until all four are free,
 * and then purges the 2 MiB whole; only the retain limit and malloc_trim split one.
 * A region any page of which is purged is no longer huge (and under "always" loses its
 * mark, so that reusing it sparsely cannot fault in 2 MiB at once).                  */
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
constexpr size_t kHugeSize = size_t(2) << 20;
constexpr unsigned kHugeSlots = kHugeSize / kSbSize;
static_assert(kGroupSlots % kHugeSlots == 0, "a region must not straddle two groups");
Counter g_huge_regions;

inline uintptr_t region_of(uintptr_t slot) { return slot & ~(kHugeSize - 1); }
inline bool region_is_huge(uintptr_t slot) {
    SideSlot *side = side_of(region_of(slot));
    return side && side->huge.load(std::memory_order_relaxed);
}
/* Committed, and in an arena whose groups are made of whole regions. */
bool region_usable(uintptr_t region) {
    for (Arena *a = g_arena_list.load(std::memory_order_acquire); a; a = a->next)
        if (!(a->base & (kHugeSize - 1)) && region >= a->base &&
            region + kHugeSize <= a->base + a->committed.load(std::memory_order_acquire))
            return true;
    return false;
}
/* Other threads' superblocks are read racily: the answer is a hint. */
__attribute__((no_sanitize("thread"))) bool slot_dense(uintptr_t slot) {
    if (side_of(slot)->role.load(std::memory_order_acquire) != kRoleSmall) return false;
    Superblock *sb = small_header(slot);
    if (peek_bump(sb) != sb->bump_end) return false;  // not carved to its end
    // A huge page makes the whole slot resident: not if its blocks leave more than 1/32 of
    // it unused (big blocks, whose head holds none, under most colours: 41 KiB blocks came
    // to 1.15 resident bytes per requested byte; 1.09 in 4 KiB pages).
    if (kSbSize - size_t(sb->capacity) * sb->block_size > kSbSize / 32) return false;
    uintptr_t w = peek(&sb->remote);
    if (w & kEmptied) return false;
    if (w & kDetached) return long(remote_count(w)) * 2 >= long(sb->capacity);
    return true;  // owned and carved to its end: in use by its owner
}
void huge_consider(uintptr_t slot) {
    if (!option(kOptHugePages) || thp_mode() == kThpNever) return;
    uintptr_t region = region_of(slot);
    SideSlot *head = side_of(region);
    if (!head || head->huge.load(std::memory_order_relaxed) || !region_usable(region)) return;
    for (unsigned k = 0; k < kHugeSlots; k++)
        if (!slot_dense(region + k * kSbSize)) return;
    uint8_t none = 0;
    if (!head->huge.compare_exchange_strong(none, 1, std::memory_order_acq_rel)) return;
    g_huge_regions.add(1);
    bool marked = thp_mode() == kThpAlways;  // (the arena is MADV_NOHUGEPAGE)
    if (marked) os_advise(reinterpret_cast<void *>(region), kHugeSize, MADV_HUGEPAGE);
    os_advise(reinterpret_cast<void *>(region), kHugeSize, MADV_COLLAPSE);
    if (marked && !head->huge.load(std::memory_order_acquire))  // ended meanwhile: undo
        os_advise(reinterpret_cast<void *>(region), kHugeSize, MADV_NOHUGEPAGE);
}
void huge_end(uintptr_t slot) {
    uintptr_t region = region_of(slot);
    SideSlot *head = side_of(region);
    uint8_t yes = 1;
    if (!head || !head->huge.compare_exchange_strong(yes, 0, std::memory_order_acq_rel)) return;
    if (thp_mode() == kThpAlways) os_advise(reinterpret_cast<void *>(region), kHugeSize, MADV_NOHUGEPAGE);
    g_huge_regions.add(-1);
}

/* ===================================================================================== *
 * 7. Per-thread heaps: one per thread, found through a thread-local pointer.
 * ===================================================================================== */
struct Host;

/* What a heap holds back, under one guard:
 *  - the queue: the last kQueueLen blocks this thread freed into superblocks it does not
 *    own, not looked at yet.  Such a block's line was last written by its owner's thread
 *    (its malloc cleared the canary), so the first touch misses in this core's cache;
 *    free asks for the line (prefetchw) and looks at the block kQueueLen remote frees
 *    later, when the line is here: the double-free check (its canary) and the link into
 *    the outbox then hit, and the misses of several frees overlap instead of following
 *    one another.  Measured on a 2-core VM: larson (blocks freed untouched) runs 25%
 *    faster, but as fast with the deferral alone, without the prefetchw; prodcons (each
 *    block read just before its free) costs 10-25% more CPU with any deferral, even of
 *    one free, of which the prefetch in malloc wins part back (11% slower than without
 *    either; the cause is not known).  A double free is caught up to
 *    kQueueLen remote frees late (at the latest when the queue is emptied: superblock
 *    change, thread exit, claim).
 *  - the outbox: small blocks this thread freed into superblocks it does not own, sent
 *    per destination superblock, one CAS per batch (remote_give), instead of one CAS per
 *    block on a line the destination's owner also writes.  kOutboxBins bins, each
 *    holding blocks of one superblock at a time, chosen by the superblock's slot number:
 *    superblocks made one after the other never share a bin, so frees scattered over
 *    several superblocks of one class (a working set larger than a superblock, freed in
 *    random order) still batch.  (With one bin per class, as before, such frees sent
 *    a batch of about one block each: a single thread freeing at random into its own
 *    used-up superblocks of one class ran 1.6x slower.)  A bin is sent when it holds
 *    outbox_blocks blocks (64) or kOutboxBytes, or every block its detached superblock
 *    still had out when the bin took it (so that no bin keeps an emptied superblock
 *    from the slot store), or when another superblock needs it;
 *    after every kOutboxSweep such sends, at the owner's next superblock change and at
 *    thread exit, everything is sent.
 *  - the run cache: medium runs this thread freed, reused by its next requests of the
 *    same size without touching a shared line; at most kRunCacheRuns runs and
 *    run_cache_kb (1 MiB), given back to their hosts when evicted, at thread exit, by trim.
 * A thread that goes idle cannot give anything back: other threads do it for it
 * (held_claim_idle), and `busy`/`claim` keep the two from ever touching it at once
 * without a lock: the owner sets `busy` and then checks `claim`; a claimer sets `claim`
 * with a CAS and then checks `busy`.  Whoever looks second backs off (the owner then
 * frees its block or run directly).  Each side's store must be ordered before its load:
 * the owner, who enters at every remote free, does it with a plain store when the
 * asymmetric fence works (section 2), the claimer, who comes rarely, by that fence;
 * otherwise the owner's store is an exchange (a full barrier).                       */
constexpr unsigned kQueueLen = 4;
constexpr size_t kOutboxBytes = 16 << 10;
constexpr uint32_t kOutboxSweep = 64;
constexpr unsigned kOutboxBins = 128;  // a power of two
constexpr unsigned kOutboxWords = kOutboxBins / 64;
/* The outbox bin of a superblock's blocks: by its slot's number, so that superblocks made
 * one after the other never share one. */
inline unsigned outbox_bin(const Superblock *sb) { return unsigned(uintptr_t(sb) >> kSbShift) % kOutboxBins; }
constexpr unsigned kRunCacheRuns = 8;
inline size_t run_cache_bytes() { return size_t(option(kOptRunCacheKb)) << 10; }
struct OutboxBin {
    Superblock *sb = nullptr;
    Block *head = nullptr, *tail = nullptr;
    uint32_t n = 0, limit = 0;
};
struct HeldRun {
    uintptr_t at = 0;
    unsigned pages = 0;
};
/* Only the owner, or a claimer while the owner is out, writes the fields below `claim`;
 * relaxed loads and stores suffice for them (no read-modify-write on the free path). */
struct Held {
    std::atomic<int> busy{0};             // the owning thread is inside
    std::atomic<int> claim{0};            // another thread is giving it back
    std::atomic<uint64_t> puts{0};        // changes with every use but the plainest
    std::atomic<uint64_t> puts_seen{0};   // the count a passing claimer saw last time
    uint64_t swept_at = 0;                // puts at the last sweep of the outbox
    std::atomic<unsigned> queued{0};      // places of the queue in use
    unsigned queue_next = 0;              // the queue's oldest place (the next to reuse)
    Block *queue[kQueueLen] = {};         // null: an empty place (a block's superblock is its header_of)
    std::atomic<uint64_t> used[kOutboxWords] = {};  // bit c: outbox bin c holds blocks
    OutboxBin bin[kOutboxBins];
    std::atomic<uint64_t> batches_sent{0}, blocks_sent{0};  // by this outbox, ever (statistics)
    std::atomic<size_t> run_bytes{0};
    unsigned run_next = 0;                // the run cache's next victim
    HeldRun runs[kRunCacheRuns];
    constexpr explicit Held(int claimed) : claim(claimed) {}
};

struct Heap {
    // Hot: the superblock each request size allocates from, indexed by grains_of(size), so
    // malloc skips the size-class lookup; every entry of a class holds current[class].
    Superblock *by_grains[kFastLen];
    Superblock *current[kNumClasses];  // the one superblock of each class this heap owns
    Host *host;                        // the host this heap carves medium runs from
    unsigned shard;
    std::atomic<uintptr_t> link;       // in the stack of recycled heaps
    Heap *all_next;                    // the list of every heap ever made
    bool in_use;                       // given to a thread and not handed back
    std::atomic<int> dormancy;         // kAwake, kDormant or kLettingGo (see heap_wake)
    std::atomic<uint64_t> dormant_at;  // when it was handed back (ms), if kDormant
    std::atomic<bool> changing;        // its thread is changing what it owns (see Changing)
    uint64_t tail_check_at;            // when tail_trim looks at the tails next (ms)
    Held held;
    constexpr explicit Heap(bool bootstrap = false);
};

Superblock g_empty{};  // a superblock with nothing in it: what current[] holds for "none"
constexpr Heap::Heap(bool bootstrap)
    : by_grains{}, current{}, host(nullptr), shard(0), link(0), all_next(nullptr), in_use(false), dormancy(0),
      dormant_at(0), changing(false), tail_check_at(0), held(bootstrap) {
    for (auto &c : current) c = &g_empty;
    for (auto &c : by_grains) c = &g_empty;
}
/* Threads start on this heap; its empty lists send the first malloc to the slow path,
 * which gives the thread a heap of its own, and what it holds, claimed for ever, sends
 * the first free of a block of another thread's there too. */
Heap g_bootstrap(true);

__thread Heap *tls_heap __attribute__((tls_model("initial-exec"))) = &g_bootstrap;
__thread bool tls_exited __attribute__((tls_model("initial-exec"))) = false;
unsigned my_shard() { return tls_heap->shard; }

struct HeapLink {
    std::atomic<uintptr_t> &operator()(uintptr_t n) const { return reinterpret_cast<Heap *>(n)->link; }
};
VersionedStack<HeapLink> g_free_heaps;
std::atomic<Heap *> g_all_heaps{nullptr};     // every heap ever made (they are never freed)
std::atomic<Heap *> g_idle_cursor{nullptr};   // the next heap held_claim_idle looks at
std::atomic<unsigned> g_heap_serial{0};
Counter g_heaps;          // heaps made (never freed: a thread's is reused after it exits)
Counter g_threads_seen;   // threads that were given a heap
pthread_key_t g_exit_key;
std::atomic<int> g_exit_key_state{0};  // 0 none, 1 creating, 2 ready, 3 unavailable

void heap_hand_back(Heap *h, bool keep = true);

void on_thread_exit(void *arg) {
    Heap *h = static_cast<Heap *>(arg);
    if (tls_heap == h) {
        tls_heap = &g_bootstrap;
        tls_exited = true;  // later calls from other destructors use throw-away heaps
    }
    heap_hand_back(h);
}

/* The thread-exit hook is a pthread key, created once (normally by the load-time
 * constructor in section 16, before any thread exists).  A thread that races its creation is
 * never made to wait: its heap is then simply not handed back at its exit. */
bool make_exit_key() {
    int state = g_exit_key_state.load(std::memory_order_acquire);
    if (state == 0 && g_exit_key_state.compare_exchange_strong(state, 1)) {
        state = pthread_key_create(&g_exit_key, on_thread_exit) == 0 ? 2 : 3;
        g_exit_key_state.store(state, std::memory_order_release);
    }
    return state == 2;
}
/* The link key: the kernel's random bytes, mixed with the clock so that it says nothing
 * about the C library's own guards, which come from the same bytes.  Racing threads
 * each draw one; the first to install it wins, and nobody has threaded a free list
 * before one is installed. */
void draw_secrets() {
    if (g_fast.link_key.load(std::memory_order_acquire)) return;
    uint64_t x = __builtin_ia32_rdtsc();
    if (const void *random = reinterpret_cast<const void *>(getauxval(AT_RANDOM))) {
        uint64_t r[2];
        memcpy(r, random, sizeof r);  // 16 bytes, not necessarily aligned
        x ^= r[0] + r[1] * 3;
    }
    uintptr_t key = mix64(x) | 1, none = 0;
    g_fast.link_key.compare_exchange_strong(none, key, std::memory_order_acq_rel);
}

/* Dormancy: a heap handed back keeps what it owns (section 13), so that the next thread
 * takes it whole: its superblocks, their free lists and its host, without the walk of
 * every free list that letting go costs (detach) or the adoptions and page faults of
 * starting empty.  Its states, in `dormancy`:
 *   kAwake       in use, or owning nothing (let go)
 *   kDormant     handed back with what it owns, at `dormant_at`
 *   kLettingGo   another thread is letting go of what it owns (dormant for the decay
 *                delay, trim, memory exhausted, fork's child); nobody may take it meanwhile
 * Whoever moves it out of kDormant by a CAS has it to itself. */
enum : int { kAwake, kDormant, kLettingGo };
Counter g_dormant;  // heaps kDormant
void dormant_look(Heap *v);
bool dormant_let_go_all();
/* Take h, just popped from the recycled heaps, for a thread; false while another thread
 * is letting go of it. */
bool heap_wake(Heap *h) {
    int s = h->dormancy.load(std::memory_order_acquire);
    do
        if (s == kLettingGo) return false;
    while (!h->dormancy.compare_exchange_weak(s, kAwake, std::memory_order_acq_rel));
    if (s == kDormant) g_dormant.add(-1);
    return true;
}

Heap *heap_acquire() {
    draw_secrets();
    // A heap being let go right now is passed over (and pushed back after): at most a
    // few, then a new heap.
    Heap *h = nullptr, *passed[4];
    unsigned n = 0;
    while (n < 4 && (h = reinterpret_cast<Heap *>(g_free_heaps.pop())) && !heap_wake(h)) passed[n++] = h, h = nullptr;
    while (n) g_free_heaps.push(uintptr_t(passed[--n]));
    if (!h) {
        h = static_cast<Heap *>(meta_alloc(sizeof(Heap)));
        if (!h) return nullptr;
        new (h) Heap();
        h->shard = g_heap_serial.fetch_add(1, std::memory_order_relaxed) % kShards;
        g_heaps.add(1);
        Heap *head = g_all_heaps.load(std::memory_order_relaxed);
        do h->all_next = head;
        while (!g_all_heaps.compare_exchange_weak(head, h, std::memory_order_release));
    }
    h->in_use = true;
    return h;
}

/* First allocation of a thread: give it a heap and arrange for it to be handed back. */
Heap *heap_for_thread() {
    Heap *h = heap_acquire();
    if (!h) return nullptr;
    if (tls_exited) return h;  // the caller hands it back after one allocation
    g_threads_seen.add(1);
    tls_heap = h;
    if (make_exit_key()) pthread_setspecific(g_exit_key, h);
    return h;
}
/* fn(heap) with the calling thread's heap h, or for a thread still on the bootstrap heap,
 * with a heap of its own (handed back at once if the thread is past its exit); null,
 * with errno ENOMEM, when no heap can be had. */
template <class Fn>
void *with_heap(Heap *h, Fn fn) {
    if (h != &g_bootstrap) return fn(h);
    if (!(h = heap_for_thread())) { set_enomem(); return nullptr; }
    void *p = fn(h);
    if (tls_exited) heap_hand_back(h);
    return p;
}

/* Marks the steps of a slow path that change what a heap owns (its current superblocks,
 * its host, a handing back): a heap caught between two of them cannot be handed back by
 * fork's child (after_fork_child).  Plain stores, kept in order by x86's store order;
 * nested marks restore the outer one. */
struct Changing {
    Heap *h;
    bool was;
    explicit Changing(Heap *heap) : h(heap), was(heap->changing.load(std::memory_order_relaxed)) {
        h->changing.store(true, std::memory_order_relaxed);
        std::atomic_signal_fence(std::memory_order_seq_cst);  // (before the steps it marks)
    }
    ~Changing() { h->changing.store(was, std::memory_order_release); }
};

void set_current(Heap *h, unsigned c, Superblock *sb) {
    h->current[c] = sb;
    for (size_t i = kClasses.first_grains[c]; i < kClasses.first_grains[c + 1] && i < kFastLen; i++) h->by_grains[i] = sb;
}

/* ===================================================================================== *
 * 8. What a heap holds back: queue, outbox, run cache (see struct Held)
 * ===================================================================================== */
inline bool held_anything(const Held &o) {
    if (o.queued.load(std::memory_order_relaxed)) return true;
    for (auto &w : o.used)
        if (w.load(std::memory_order_relaxed)) return true;
    return o.run_bytes.load(std::memory_order_relaxed) != 0;
}
void outbox_send(Held &o, unsigned c) {
    OutboxBin &s = o.bin[c];
    if (!s.sb) return;
    remote_give(s.sb, s.head, s.tail, s.n);
    o.batches_sent.store(o.batches_sent.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    o.blocks_sent.store(o.blocks_sent.load(std::memory_order_relaxed) + s.n, std::memory_order_relaxed);
    s.sb = nullptr;
    std::atomic<uint64_t> &w = o.used[c / 64];
    w.store(w.load(std::memory_order_relaxed) & ~(uint64_t(1) << (c % 64)), std::memory_order_relaxed);
}
void outbox_send_all(Held &o) {
    for (unsigned i = 0; i < kOutboxWords; i++)
        while (uint64_t w = o.used[i].load(std::memory_order_relaxed)) outbox_send(o, i * 64 + unsigned(__builtin_ctzll(w)));
    o.swept_at = o.puts.load(std::memory_order_relaxed);
}

/* Enter as the owner; false when a claimer is giving everything back right now.  The
 * store of `busy` must be ordered before the load of `claim` (and the claimer's store of
 * `claim` before its load of `busy`): by an exchange, or, with light_enter, by the
 * claimer's asymmetric fence. */
inline bool held_enter(Held &o) {
    if (LIKELY(g_fast.light_enter.load(std::memory_order_relaxed))) {
        o.busy.store(1, std::memory_order_relaxed);
        std::atomic_signal_fence(std::memory_order_seq_cst);
    } else {
        o.busy.exchange(1, std::memory_order_seq_cst);
    }
    if (LIKELY(!o.claim.load(std::memory_order_seq_cst))) return true;
    o.busy.store(0, std::memory_order_release);
    return false;
}

/* Free b without an outbox: for a thread that has none yet (it gets one, if it may) or
 * whose outbox a claimer is sending right now. */
NOINLINE void outbox_put_slow(Heap *h, Superblock *sb, Block *b);

/* The rare steps of outbox_add: the bin holds blocks of another superblock (send them,
 * start over with sb), or b fills the bin (send it).  These count as the outbox's
 * activity (`puts`), and every kOutboxSweep of them everything is sent. */
NOINLINE void outbox_add_rare(Held &o, Superblock *sb, Block *b) {
    unsigned c = outbox_bin(sb);
    OutboxBin &s = o.bin[c];
    if (s.sb != sb) {
        outbox_send(o, c);
        std::atomic<uint64_t> &w = o.used[c / 64];
        w.store(w.load(std::memory_order_relaxed) | uint64_t(1) << (c % 64), std::memory_order_relaxed);
        s.sb = sb;
        s.head = s.tail = nullptr;
        s.n = 0;
        uint32_t most = uint32_t(option(kOptOutboxBlocks)), fit = uint32_t(kOutboxBytes / sb->block_size);
        s.limit = fit < most ? fit : most;
        // A detached superblock with fewer blocks out than a batch: the bin goes as soon
        // as it holds them all, so that it never keeps an empty superblock from the slot
        // store (a thread that frees the last blocks of exited threads' superblocks).
        uintptr_t r = sb->remote.load(std::memory_order_relaxed);
        if (uint32_t out = remote_count(r); r & kDetached && out && out < s.limit) s.limit = out;
    }
    b->set_next(s.head);
    s.head = b;
    if (!s.tail) s.tail = b;
    if (++s.n >= s.limit) outbox_send(o, c);
    uint64_t puts = o.puts.load(std::memory_order_relaxed) + 1;
    o.puts.store(puts, std::memory_order_relaxed);
    if (puts - o.swept_at >= kOutboxSweep) outbox_send_all(o);
}

/* A block freed into another heap's superblock: a double free, or marked free now. */
inline void remote_mark_freed(Superblock *sb, Block *b) {
    if (freed_already_else_mark(sb, b)) fatal("free", "double free of", b);
}

/* b, a block of sb leaving the queue, is checked (a double free?) and joins its outbox
 * bin.  Inside the held state (its owner, or a claimer). */
inline void outbox_add(Held &o, Superblock *sb, Block *b) {
    remote_mark_freed(sb, b);
    OutboxBin &s = o.bin[outbox_bin(sb)];
    if (UNLIKELY(s.sb != sb || s.n + 1 >= s.limit)) return outbox_add_rare(o, sb, b);
    b->set_next(s.head);
    s.head = b;
    s.n++;
}

/* Empty the queue: forget its blocks (fork's child, held_drop), or send them on to the
 * outbox first, oldest first (so that a double free is reported at the second free of
 * the block). */
void queue_forget(Held &o) {
    for (Block *&q : o.queue) q = nullptr;
    o.queue_next = 0;
    o.queued.store(0, std::memory_order_relaxed);
}
void queue_drain(Held &o) {
    if (!o.queued.load(std::memory_order_relaxed)) return;
    for (unsigned k = 0; k < kQueueLen; k++)
        if (Block *q = o.queue[(o.queue_next + k) % kQueueLen]) outbox_add(o, header_of(q), q);
    queue_forget(o);
}

/* Free b, a block of sb that heap h does not own, through h's queue and outbox: ask for
 * b's line, and let the oldest block of the queue, whose line has had time to arrive,
 * go on to the outbox.  (The bootstrap heap's held state is claimed for ever, so a
 * thread without a heap goes to outbox_put_slow.) */
__attribute__((always_inline)) inline void outbox_put(Heap *h, Superblock *sb, Block *b) {
    Held &o = h->held;
    if (UNLIKELY(!held_enter(o))) return outbox_put_slow(h, sb, b);
    if (UNLIKELY(option(kOptOutboxBlocks) == 1)) {  // nothing held back: checked and sent now
        outbox_add(o, sb, b);
        return o.busy.store(0, std::memory_order_release);
    }
    prefetch_for_write(b);
    unsigned i = o.queue_next;
    Block *old = o.queue[i];
    o.queue[i] = b;
    o.queue_next = (i + 1) % kQueueLen;
    if (LIKELY(old)) outbox_add(o, header_of(old), old);
    else o.queued.store(o.queued.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    o.busy.store(0, std::memory_order_release);
}

NOINLINE void outbox_put_slow(Heap *h, Superblock *sb, Block *b) {
    if (h == &g_bootstrap && !tls_exited && (h = heap_for_thread())) return outbox_put(h, sb, b);
    // Being claimed, or a thread that has no heap and may not have one: straight back.
    remote_mark_freed(sb, b);
    remote_give(sb, b, b, 1);
}

/* Leave, counting a use (claimers take a heap whose count stands still for idle). */
inline void held_leave(Held &o) {
    o.puts.store(o.puts.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    o.busy.store(0, std::memory_order_release);
}

void runs_give_back(Held &held, unsigned i);
/* Give everything back: the outbox to its superblocks, cached runs to their hosts. */
void held_give_back(Held &o) {
    queue_drain(o);
    outbox_send_all(o);
    for (unsigned i = 0; i < kRunCacheRuns; i++) runs_give_back(o, i);
}

/* The owner gives everything back (at its superblock changes and at thread exit). */
void held_flush(Heap *h) {
    Held &o = h->held;
    if (!held_anything(o) || !held_enter(o)) return;
    held_give_back(o);
    o.busy.store(0, std::memory_order_release);
}

/* Give back what another heap holds, on its owner's behalf, unless the owner is inside. */
void held_claim(Heap *v) {
    Held &o = v->held;
    int none = 0;
    if (!held_anything(o) || !o.claim.compare_exchange_strong(none, 1, std::memory_order_seq_cst)) return;
    // light_enter is read after the CAS: an owner that saw it set (and stored `busy`
    // plainly) did so after this CAS was visible, or is covered by the fence.  Should
    // the fence fail, nothing is given back this time.
    bool ordered = !g_fast.light_enter.load(std::memory_order_seq_cst) || os_fence_others();
    if (ordered && !o.busy.load(std::memory_order_seq_cst)) held_give_back(o);
    o.claim.store(0, std::memory_order_release);
}

/* Called by every heap at each superblock change: look at the next heap in turn, and if
 * it holds anything and has not been used since the last look, give it back on its
 * owner's behalf.  So what an idle thread holds comes back within two rounds of the
 * heap list. */
void held_claim_idle(Heap *self) {
    Heap *v = g_idle_cursor.load(std::memory_order_acquire);
    Heap *next = v && v->all_next ? v->all_next : g_all_heaps.load(std::memory_order_acquire);
    if (!g_idle_cursor.compare_exchange_strong(v, next, std::memory_order_acq_rel) || !v || v == self) return;
    if (v->dormancy.load(std::memory_order_relaxed) != kAwake) dormant_look(v);
    Held &o = v->held;
    if (!held_anything(o)) return;
    uint64_t puts = o.puts.load(std::memory_order_relaxed);
    if (o.puts_seen.exchange(puts, std::memory_order_relaxed) != puts) return;  // used lately
    held_claim(v);
}

/* ===================================================================================== *
 * 9. Small engine
 * ===================================================================================== */
void init_small(Superblock *sb, unsigned c, Heap *h) {
    uint32_t bs = kClasses.size[c];
    sb->kind = kSmall;
    sb->size_class = uint8_t(c);
    sb->block_size = bs;
    sb->magic = kClasses.divisor_magic[c];
    // The first block: at the class's offset in the slot (its alignment), or the first
    // multiple of it past the coloured header.
    size_t colour = uintptr_t(sb) - slot_of(sb), first = kClasses.first[c];
    size_t head = colour > first ? (colour - first) / bs : 0;  // (the head: from the class's offset up to the header)
    if (first < colour + kSbHeader) first = round_up(colour + kSbHeader, first);
    sb->first = uint16_t(first - colour);
    size_t body = (kSbSize - first) / bs;
    if (body > kMaxCapacity) body = kMaxCapacity;
    if (head > kMaxCapacity - body) head = kMaxCapacity - body;
    sb->body_capacity = uint16_t(body);
    sb->capacity = uint16_t(body + head);
    sb->free = sb->reserve = nullptr;
    sb->bump_end = bump_offset(sb, head ? head_start(sb) + head * bs : blocks_start(sb) + body * bs);
    set_bump(sb, blocks_start(sb));
    // A fresh canary for each incarnation of the slot: canaries a former one left in the
    // memory (at other offsets, under another class) never match this one's.
    sb->canary = mix64(__builtin_ia32_rdtsc() ^ uintptr_t(sb) ^ Block::key()) | 1;
    sb->remote.store(0, std::memory_order_relaxed);
    sb->owner.store(h, std::memory_order_release);
    side_of(uintptr_t(sb))->role.store(kRoleSmall, std::memory_order_release);
}

/* Thread the next few never-used blocks onto the free list (pages are touched lazily):
 * as many as were threaded before, from kExtendFirst bytes' worth (one block at least)
 * up to kExtendBytes' worth or kExtendBlocks blocks, whichever is more.  A superblock
 * that serves a few blocks touches few: a thread that holds one block of each of 40
 * sizes touched 14% less memory than with 4 KiB at once (sparse_threads, 512 threads:
 * peak RSS 100.5 -> 86.2 MB), and a thread's exit walks shorter free lists.  And a
 * busy superblock of large blocks does not refill at every malloc (8000-byte blocks,
 * one per extend, spent 46% of a malloc/free loop in the refill and its clock read). */
void extend(Superblock *sb) {
    size_t bs = sb->block_size;
    size_t least = kExtendFirst / bs ? kExtendFirst / bs : 1;
    size_t most = kExtendBytes / bs > kExtendBlocks ? kExtendBytes / bs : kExtendBlocks;
    size_t done = carved(sb), n = done < least ? least : done > most ? most : done;  // as many as before
    char *first = bump_pointer(sb);
    if (done == sb->body_capacity) {  // the body carved: on into the head, in use from now on
        first = head_start(sb);
        sb->head_resident = false;
    }
    size_t left = (done < sb->body_capacity ? sb->body_capacity : sb->capacity) - done;  // (in this part)
    if (n > left) n = left;
    char *b = first;
    for (size_t i = 1; i < n; i++, b += bs) reinterpret_cast<Block *>(b)->set_next(reinterpret_cast<Block *>(b + bs));
    reinterpret_cast<Block *>(b)->set_next(sb->free);
    sb->free = reinterpret_cast<Block *>(first);
    set_bump(sb, first + n * bs);
}

/* Add a list of free blocks to the owner's: never a walk down a long list, whose every
 * block would be a cache miss (remote lists run to thousands of blocks). */
void take_list(Superblock *sb, Block *list) {
    if (kDebug) debug_check_list(sb, list, "a remote list");
    if (!sb->free) { sb->free = list; return; }
    if (!sb->reserve) { sb->reserve = list; return; }
    Block *tail = list;  // both in use: only at thread exit and re-detachment
    while (tail->next()) tail = tail->next();
    tail->set_next(sb->reserve);
    sb->reserve = list;
}

/* The owner takes every block other threads have given back to sb. */
bool collect_remote(Superblock *sb) {
    if (!sb->remote.load(std::memory_order_relaxed)) return false;
    Block *list = remote_list(sb->remote.exchange(0, std::memory_order_acquire));
    if (!list) return false;
    take_list(sb, list);
    return true;
}

/* Blocks on the owner's lists of sb (a walk: only thread exit and statistics ask).
 * Another thread may be using the lists, so every link is checked to stay inside sb's slot. */
__attribute__((no_sanitize("thread"))) uint32_t free_list_length(Superblock *sb) {
    uint32_t n = 0;
    uintptr_t lo = uintptr_t(sb) & ~(kSbSize - 1), hi = lo + kSbSize, key = Block::key();  // (no inline call: TSan)
    Block *lists[2] = {sb->free, sb->reserve};
    for (Block *list : lists)
        for (uintptr_t b = uintptr_t(list); b && n < sb->capacity; b = reinterpret_cast<Block *>(b)->link ^ key, n++)
            if (b < lo || b >= hi) break;
    return n;
}

/* The owner h lets go of sb (see section 6).  Returns false, with sb still h's, when other
 * threads gave blocks back meanwhile: the caller collects them and carries on. */
bool detach(Superblock *sb, Heap *h) {
    uint32_t spare = free_list_length(sb) + (sb->capacity - carved(sb));
    DEBUG_CHECK(spare <= sb->capacity, "more free blocks than the superblock holds", sb);
    if (kDebug) {
        debug_check_list(sb, sb->free, "the free list");
        debug_check_list(sb, sb->reserve, "the reserve list");
    }
    uint32_t out = sb->capacity - spare;
    sb->owner.store(nullptr, std::memory_order_release);
    if (out == 0 && !sb->remote.load(std::memory_order_acquire)) {
        superblock_give(sb);  // nothing out: nothing can come back
        return true;
    }
    unsigned c = sb->size_class;
    uintptr_t none = 0, state = kDetached | (spare >= adopt_threshold(sb) ? kListed : 0) | uintptr_t(out) << kCountShift;
    if (!sb->remote.compare_exchange_strong(none, state, std::memory_order_acq_rel)) {
        sb->owner.store(h, std::memory_order_relaxed);
        return false;
    }
    if (state & kListed) adopt_offer(sb, c, h->shard);  // (h: at thread exit, no longer tls_heap)
    return true;
}

/* A listed superblock of class c for h, or null.  Entries are hints (see adopt_offer):
 * the CAS from LISTED to owned decides, and one whose class changed is passed on. */
Superblock *adopt(Heap *h, unsigned c) {
    for (;;) {
        auto *sb = reinterpret_cast<Superblock *>(adopt_pop(c, kRoleSmall));
        if (!sb) return nullptr;
        uintptr_t w = peek(&sb->remote);  // (validated by the CAS)
        for (;;) {
            // The slot may have been emptied and taken again since its entry was pushed,
            // even since adopt_pop looked at its role: its word then reads as whatever it
            // became (a large block's data, say), which may look listed.  So the role is
            // read again after the word (x86 keeps two reads in order: a word the program
            // wrote after large_alloc set the role is seen with that role).
            std::atomic_thread_fence(std::memory_order_acquire);
            if ((w & kFlags) != (kDetached | kListed) || role_of(sb) != kRoleSmall) break;
            if (!cas_hint(sb->remote, w, 0)) continue;
            // Ours now: its fields are stable and those of its latest detachment.
            sb->owner.store(h, std::memory_order_relaxed);
            if (Block *list = remote_list(w)) take_list(sb, list);
            if (sb->size_class == c) return sb;
            while (!detach(sb, h)) collect_remote(sb);  // listed for another class: pass it on
            break;
        }
    }
}

/* An empty superblock nobody else owns: a slot of the slot store, one with resident
 * pages first (its blocks then need no page faults). */
Superblock *fresh_superblock() {
    bool dirty;
    uintptr_t slot = slots_take(1, 0, 0, &dirty);
    Superblock *sb = slot ? small_header(slot) : nullptr;
    if (sb) {
        sb->resident_end = dirty ? uint32_t(kSbSize) : 0;
        sb->resident_at = now_ms();
        sb->head_resident = dirty && colour_page(slot);
    }
    return sb;
}

/* The tail: a small superblock uses its slot's pages from the bottom up, as its bump
 * pointer moves, so the resident pages of a reused slot above the bump pointer serve
 * nobody until it gets there, and the slot store cannot purge them (the owner may extend
 * into them at any moment).  So the owner does, as decay would: every quarter of the
 * decay delay, at a refill, it purges the tails that have been resident longer than
 * the delay, all but kTailKeep bytes above the bump pointer (one madvise each), and the
 * heads whose blocks are not handed out yet (one more).  Tails reached within the delay
 * are never faulted in again; an idle heap's stay (at most one superblock per class and
 * heap, as for the blocks it holds). */
constexpr size_t kTailKeep = 4 * kPage;
/* Where sb's tail starts, as an offset in its slot, given its bump offset.  Carving the
 * head, there is none: told by the offset, not by comparing the bump pointer with the
 * header's address, which the pointer reaches when the head's last block ends at the
 * header (64-byte blocks, under every colour): that compare took the body for the tail,
 * and purged its live blocks (g++ under LD_PRELOAD; tests/unit/full_head_trim). */
inline size_t tail_start(const Superblock *sb, uint32_t bump) {
    return carving_head(bump) ? kSbSize : round_up(uintptr_t(sb) - slot_of(sb) + kSbHeader + bump, kPage) + kTailKeep;
}
/* The bytes of sb's head (the pages below its header's page), and those that may be resident. */
inline size_t head_bytes(const Superblock *sb) { return colour_page(uintptr_t(sb)) * kPage; }
__attribute__((no_sanitize("thread"))) inline size_t head_resident_bytes(const Superblock *sb) {
    return *static_cast<const volatile bool *>(&sb->head_resident) ? head_bytes(sb) : 0;  // (statistics read it racily)
}
NOINLINE void tail_trim(Heap *h, uint64_t now, uint64_t age) {
    h->tail_check_at = now + (decay_ms() / 4 > 10 ? decay_ms() / 4 : 10);
    if (retain_bytes() < 0) return;  // keep everything
    for (unsigned c = 0; c < kNumClasses; c++) {
        Superblock *sb = h->current[c];
        if (sb == &g_empty || now - sb->resident_at < age) continue;
        if (region_is_huge(uintptr_t(sb))) {  // its tail is part of a huge page
            if (age) continue;
            huge_end(uintptr_t(sb));           // (malloc_trim: everything goes)
        }
        uint32_t bump = sb->bump.load(std::memory_order_relaxed);
        if (sb->head_resident) {
            DEBUG_CHECK(!carving_head(bump), "a head purge over carved blocks: superblock", sb);
            os_advise(reinterpret_cast<char *>(slot_of(sb)), head_bytes(sb), MADV_DONTNEED);
            sb->head_resident = false;
        }
        size_t from = tail_start(sb, bump);
        if (sb->resident_end <= from) continue;
        DEBUG_CHECK(!carving_head(bump) && slot_of(sb) + from >= uintptr_t(bump_pointer(sb)),
                    "a tail purge over carved blocks: superblock", sb);
        os_advise(reinterpret_cast<char *>(slot_of(sb)) + from, sb->resident_end - from, MADV_DONTNEED);
        sb->resident_end = uint32_t(from);
    }
}

NOINLINE void *small_refill(Heap *h, unsigned c) noexcept;

inline Block *take_block(Superblock *sb) {  // null when the owner's free list is empty
    Block *b = sb->free;
    if (LIKELY(b != nullptr)) {
        sb->free = b->next();
        // The next malloc's block: it may have been freed by another core.  At the end of
        // the list, the header instead (a test and a cmov; not the slot's start, whose page
        // the head may not have touched yet: a prefetch of an address whose page is not
        // mapped walks the page tables each time).  Without the header, a malloc/free loop
        // of a class whose list held one block, as every class above 2 KiB did after each
        // refill when an extend threaded one, cost 42 ns a pair instead of 8.
        prefetch_for_write(either(sb->free, sb));
        DEBUG_CHECK(!sb->free || small_block_ok(sb, sb->free), "free list corrupted (a write after free?) at", b);
        if (has_canary(sb)) b->canary = 0;
    }
    return b;
}
inline void *small_alloc(Heap *h, unsigned c) {
    if (Block *b = take_block(h->current[c])) return b;
    return small_refill(h, c);
}

void *small_refill_owned(Heap *h, unsigned c) {
    Changing changing(h);
    if (uint64_t now = now_ms(); UNLIKELY(now >= h->tail_check_at)) tail_trim(h, now, decay_ms());
    Superblock *sb = h->current[c];
    if (sb != &g_empty) {
        for (;;) {
            if (!sb->free) std::swap(sb->free, sb->reserve);
            if (!sb->free) collect_remote(sb);
            if (!sb->free && !carved_all(sb)) extend(sb);
            if (sb->free) return small_alloc(h, c);
            if (detach(sb, h)) {  // used up: let go of it
                huge_consider(uintptr_t(sb));
                break;
            }
        }
        set_current(h, c, &g_empty);
    }
    // A superblock change: the moment to send what the outbox holds, and to look at
    // another heap's.
    held_flush(h);
    held_claim_idle(h);
    sb = adopt(h, c);
    if (!sb) {
        sb = fresh_superblock();
        // Memory exhausted: dormant heaps' superblocks may have the blocks, or empty
        // ones may come back.
        if (!sb && dormant_let_go_all() && !(sb = adopt(h, c))) sb = fresh_superblock();
        if (!sb) { set_enomem(); return nullptr; }
        init_small(sb, c, h);
    }
    set_current(h, c, sb);
    return small_alloc(h, c);
}

NOINLINE void *small_refill(Heap *h, unsigned c) noexcept {
    return with_heap(h, [c](Heap *owner) { return small_refill_owned(owner, c); });
}

/* ===================================================================================== *
 * 10. Medium engine: page runs inside host superblocks
 * ===================================================================================== *
 * A host is a superblock whose first page is its header and whose other 127 pages are
 * handed out in runs of whole pages, one medium block each (sizes up to kMediumMax).
 * Which pages are in use is one 128-bit map, swapped by cmpxchg16b, so neighbouring free
 * runs coalesce by themselves.  One heap at a time carves from a host (its owner); any
 * thread gives runs back.  A host nobody owns with enough free pages is LISTED for
 * adoption; a host whose last run comes back goes back to the slot store, whoever freed
 * it.  Free pages age: decay purges those unused for the decay delay.             */
/* A host's state word: flags in the low byte, and above them the host's signature (its
 * address mixed with the link key), so that a stale pointer to a host whose slot has
 * since become something else can never pass for one: every CAS on the word carries it. */
constexpr uint64_t kHostOwned = 1, kHostListed = 2, kHostRetired = 4, kHostPurging = 8, kHostRetiring = 16,
                   kHostFlags = 0xff;
constexpr unsigned kHostListPages = 32;  // free pages that make a host worth adopting
constexpr unsigned kHostSearch = 8;      // listed hosts looked at for room before a fresh one
struct Host {
    Superblock common;                        // kind = kHost; owner: always null
    Pair map;                               // pages in use: lo = pages 0-63, hi = 64-127
    std::atomic<uint64_t> dirty[2];           // free pages whose memory may be resident
    std::atomic<uint64_t> state;              // signature | kHostOwned, kHostListed, ...
    std::atomic<uint8_t> live[kSbPages];      // at a live block's first page: 1
    uint8_t run[kSbPages];                    // at a run's first page: its length in pages
    std::atomic<uint64_t> freed_at[kSbPages]; // decay clock (ms) of free pages
};
static_assert(sizeof(Host) <= kPage, "a host's header must fit its first page");

/* The pages of a host in use or free and dirty (resident, or as good as); the others are
 * clean. */
__attribute__((no_sanitize("thread"))) size_t host_resident_bytes(const Host *host) {
    uint64_t lo = peek(&host->map.lo) | peek(&host->dirty[0]), hi = peek(&host->map.hi) | peek(&host->dirty[1]);
    return size_t(bits_set(lo) + bits_set(hi)) * kPage;
}
inline uint64_t host_sig(const Host *host) {
    return (uint64_t(uintptr_t(host)) * 0x9e3779b97f4a7c15 ^ g_fast.link_key.load(std::memory_order_relaxed)) & ~kHostFlags;
}

using Map = unsigned __int128;
inline Map map_of(const Pair &t) { return Map(t.hi) << 64 | t.lo; }
inline Pair pair_of(Map m) { return Pair{uintptr_t(m), uint64_t(m >> 64)}; }
inline Map run_bits(unsigned first, unsigned pages) { return ((Map(1) << pages) - 1) << first; }
inline unsigned ctz128(Map m) { return uint64_t(m) ? unsigned(__builtin_ctzll(uint64_t(m))) : 64 + unsigned(__builtin_ctzll(uint64_t(m >> 64))); }
inline unsigned popcount128(Map m) { return unsigned(bits_set(uint64_t(m)) + bits_set(uint64_t(m >> 64))); }
/* The pages of a host that are never a run's: page 0, its header, and its colour's page,
 * where the free fast path reads an owner word (see colour_of): null, since host_fresh
 * wrote it or the page is clean.  (Colour 0's is the header's own owner word.) */
inline Map host_reserved(const Host *host) { return Map(1) | Map(1) << colour_page(uintptr_t(host)); }

/* The first page of a free run of `pages` pages whose address is a multiple of `step`
 * pages, or 0 (page 0 is the header, never free). */
unsigned host_find(Map used, unsigned pages, unsigned step) {
    Map m = ~used;
    for (unsigned have = 1; have < pages;) {
        unsigned k = have < pages - have ? have : pages - have;
        m &= m >> k;
        have += k;
    }
    m &= ~Map(0) >> (pages - 1);  // the run must end inside the host
    if (step > 1) {
        Map aligned = 0;
        for (unsigned i = 0; i < kSbPages; i += step) aligned |= Map(1) << i;
        m &= aligned;
    }
    return m ? ctz128(m) : 0;
}

Counter g_host_dirty;     // bytes of free pages in hosts that may be resident
Counter g_medium_in_use;  // bytes of live medium blocks (whole pages)
inline Map dirty_map(Host *host) {
    return Map(host->dirty[1].load(std::memory_order_acquire)) << 64 | host->dirty[0].load(std::memory_order_acquire);
}
/* Clear `bits` in the dirty map; returns which of them were set. */
Map dirty_clear(Host *host, Map bits) {
    uint64_t lo = host->dirty[0].fetch_and(~uint64_t(bits), std::memory_order_acq_rel) & uint64_t(bits);
    uint64_t hi = host->dirty[1].fetch_and(~uint64_t(bits >> 64), std::memory_order_acq_rel) & uint64_t(bits >> 64);
    Map was = Map(hi) << 64 | lo;
    g_host_dirty.add(-long(popcount128(was) * kPage));
    return was;
}

/* Carve a run from a host its caller owns: the address, or 0 when no run fits. */
uintptr_t host_carve(Host *host, unsigned pages, unsigned step, bool *clean) {
    DEBUG_CHECK((peek(&host->state) & (~kHostFlags | kHostOwned | kHostRetired | kHostRetiring)) == (host_sig(host) | kHostOwned),
                "carving from a host its heap does not own: host", host);
    Pair t = load_pair(&host->map);
    unsigned first;
    for (;;) {
        first = host_find(map_of(t), pages, step);
        if (!first) return 0;
        if (cas_pair(&host->map, t, pair_of(map_of(t) | run_bits(first, pages)))) break;
    }
    // Givers mark pages dirty before they clear them in the map: after our CAS, this
    // sees every dirty page of ours.
    *clean = !dirty_clear(host, run_bits(first, pages));
    host->run[first] = uint8_t(pages);
    host->live[first].store(1, std::memory_order_release);
    return uintptr_t(host) + first * kPage;
}

/* After a change to a host nobody may own: give it back if it is empty, or list it for
 * adoption if it has room.  The caller let go of the host just before (its run, its
 * ownership, its pin), so the slot may already have been retired by another thread and
 * become anything: the signature in the state word, checked by every CAS, tells; the
 * reads of a slot that changed role are benign (hence no ThreadSanitizer here). */
/* The last step of retiring a host: RETIRING -> RETIRED, and its slot to the store.  Out
 * of host_settle, which ThreadSanitizer leaves alone, so that TSan sees this RMW of the
 * state word: through it, what another thread did to the host before (a purge that
 * pinned it and let go) happens before the slot's next user, as it does on the CPU. */
NOINLINE void host_retire(Host *host) {
    host->state.fetch_xor(kHostRetiring | kHostRetired, std::memory_order_seq_cst);
    g_host_dirty.add(-long(popcount128(dirty_map(host)) * kPage));
    superblock_give(&host->common);
}
__attribute__((no_sanitize("thread"))) void host_settle(Host *host) {
    uint64_t s = peek(&host->state);
    for (;;) {
        if ((s & ~kHostFlags) != host_sig(host) || (s & (kHostOwned | kHostRetired | kHostPurging | kHostRetiring)))
            return;
        Map used = Map(peek(&host->map.hi)) << 64 | peek(&host->map.lo);  // (a hint: torn reads)
        if (used == host_reserved(host)) {
            // A hint only: an unowned host may be adopted, carved from and let go of between
            // our reads of the state and of the map, leaving the state word as we read it
            // (retiring on that gave away a slot with a live run in it, seen in the soak).
            // So: first RETIRING, which no adopter, owner or purger gets past, then the map
            // again: now no bit can be set in it, and empty means empty.
            if (!cas_hint(host->state, s, s | kHostRetiring)) continue;
            s |= kHostRetiring;
            // (An acquire load: what the threads that gave the runs back did to their pages
            // happens before the slot goes to its next user.)
            if (map_of(load_pair(&host->map)) != host_reserved(host)) {
                s = host->state.fetch_and(~kHostRetiring, std::memory_order_seq_cst) & ~kHostRetiring;
                // An adopter that popped its entry meanwhile passed it over: offer it again
                // (adopt_offer adds no second entry if one is still waiting).
                if (s & kHostListed) adopt_offer(&host->common, kHostStack, my_shard());
                continue;
            }
            return host_retire(host);
        }
        if ((s & kHostListed) || popcount128(~used) < kHostListPages) return;
        if (cas_hint(host->state, s, s | kHostListed)) {
            adopt_offer(&host->common, kHostStack, my_shard());
            return;
        }
    }
}

/* Give a run back to its host (any thread). */
void host_give(Host *host, unsigned first, unsigned pages) {
    Map bits = run_bits(first, pages);
    uint64_t now = now_ms();
    for (unsigned i = first; i < first + pages; i++) host->freed_at[i].store(now, std::memory_order_relaxed);
    host->dirty[0].fetch_or(uint64_t(bits), std::memory_order_release);
    host->dirty[1].fetch_or(uint64_t(bits >> 64), std::memory_order_release);
    g_host_dirty.add(long(pages * kPage));
    DEBUG_CHECK(host->run[first] == pages, "a medium run given back with another length: host", host);
    Pair t = load_pair(&host->map);
    do DEBUG_CHECK((map_of(t) & bits) == bits, "a medium run given back while free: host", host);
    while (!cas_pair(&host->map, t, pair_of(map_of(t) & ~bits)));
    host_settle(host);
    decay_tick();
}

/* The owner stops carving from its host. */
void host_detach(Host *host) {
    host->state.fetch_and(~kHostOwned, std::memory_order_seq_cst);
    host_settle(host);
}

/* A listed host, now owned by the caller; null when none is listed. */
Host *host_adopt() {
    for (;;) {
        auto *host = reinterpret_cast<Host *>(adopt_pop(kHostStack, kRoleHost));
        if (!host) return nullptr;
        uint64_t s = peek(&host->state), sig = host_sig(host);  // (validated by the CAS)
        while ((s & ~kHostFlags) == sig && (s & (kHostOwned | kHostListed | kHostRetired | kHostRetiring)) == kHostListed)
            if (cas_hint(host->state, s, (s & kHostPurging) | sig | kHostOwned))
                return host;
    }
}

/* A fresh host from the slot store, owned by the caller; null when memory is exhausted. */
Host *host_fresh() {
    bool dirty;
    auto *host = reinterpret_cast<Host *>(slots_take(1, 0, 0, &dirty));
    if (!host) return nullptr;
    // A fresh header (its atomics are stored, not memset: the statistics walker may be
    // reading them); pages of a dirty slot may hold old data.
    host->common.kind = kHost;
    host->common.owner.store(nullptr, std::memory_order_relaxed);
    if (dirty) header_wipe(uintptr_t(host));  // (the free fast path's test; a clean page reads 0)
    host->common.remote.store(0, std::memory_order_relaxed);
    for (auto &l : host->live) l.store(0, std::memory_order_relaxed);
    Map reserved = host_reserved(host), free_dirty = dirty ? ~reserved : 0;
    host->dirty[0].store(uint64_t(free_dirty), std::memory_order_relaxed);
    host->dirty[1].store(uint64_t(free_dirty >> 64), std::memory_order_relaxed);
    g_host_dirty.add(long(popcount128(free_dirty) * kPage));
    uint64_t now = now_ms();
    for (auto &f : host->freed_at) f.store(now, std::memory_order_relaxed);
    __atomic_store_n(&host->map.lo, uint64_t(reserved), __ATOMIC_RELAXED);
    __atomic_store_n(&host->map.hi, uint64_t(reserved >> 64), __ATOMIC_RELAXED);
    host->state.store(host_sig(host) | kHostOwned, std::memory_order_release);
    side_of(uintptr_t(host))->role.store(kRoleHost, std::memory_order_release);
    return host;
}

/* The heap's own host has no room for a run of `pages` pages (at a multiple of `step`):
 * another host, owned by the caller, with the run carved (*at).  The first of the listed
 * hosts looked at that has the room, else a fresh one, which always has it.  Up to
 * kHostSearch listed hosts are looked at; those passed over stay owned until the search
 * ends (so none is popped twice, or retired meanwhile), then are listed again.  (The
 * caller keeps its own host until it has another: let go of first, it would be listed
 * and popped again at once.)  Null when memory is exhausted. */
Host *host_with_room(unsigned pages, unsigned step, uintptr_t *at, bool *clean) {
    Host *passed[kHostSearch], *host = nullptr;
    unsigned n = 0;
    while (n < kHostSearch && (host = host_adopt()) && !(*at = host_carve(host, pages, step, clean)))
        passed[n++] = host, host = nullptr;
    for (unsigned i = 0; i < n; i++) host_detach(passed[i]);
    if (!host && (host = host_fresh())) *at = host_carve(host, pages, step, clean);
    return host;
}

/* The run cache (Held::runs): a heap's recently freed runs, reused by its next requests
 * of the same size without touching a shared line.  Bounded by kRunCacheRuns runs and
 * run_cache_kb; the owner's thread, or a claimer, gives the rest back. */
uintptr_t runs_take(Held &held, unsigned pages, size_t align) {
    uintptr_t misaligned = (align > kPage ? align : kPage) - 1;
    for (auto &r : held.runs)
        if (r.pages == pages && !(r.at & misaligned)) {
            uintptr_t at = r.at;
            r.at = 0;
            r.pages = 0;
            held.run_bytes -= pages * kPage;
            return at;
        }
    return 0;
}
void runs_give_back(Held &held, unsigned i) {
    HeldRun &r = held.runs[i];
    if (!r.at) return;
    held.run_bytes -= r.pages * kPage;
    Host *host = reinterpret_cast<Host *>(r.at & ~(kSbSize - 1));
    host_give(host, unsigned((r.at & (kSbSize - 1)) / kPage), r.pages);
    r.at = 0;
    r.pages = 0;
}
void runs_put(Held &held, uintptr_t at, unsigned pages) {
    unsigned i = 0;
    while (i < kRunCacheRuns && held.runs[i].at) i++;
    if (i == kRunCacheRuns) runs_give_back(held, i = held.run_next++ % kRunCacheRuns);
    while (held.run_bytes + pages * kPage > run_cache_bytes()) {  // make room
        unsigned j = 0;
        while (j < kRunCacheRuns && (!held.runs[j].at || j == i)) j++;
        if (j == kRunCacheRuns) break;
        runs_give_back(held, j);
    }
    held.runs[i].at = at;
    held.runs[i].pages = pages;
    held.run_bytes += pages * kPage;
}

void *medium_alloc(Heap *h, unsigned pages, size_t align, bool *clean) {
    return with_heap(h, [&](Heap *owner) -> void * {
        uintptr_t at = 0;
        if (held_enter(owner->held)) {
            at = runs_take(owner->held, pages, align);
            held_leave(owner->held);
        }
        if (at) {
            *clean = false;
            Host *host = reinterpret_cast<Host *>(at & ~(kSbSize - 1));
            host->live[(at & (kSbSize - 1)) / kPage].store(1, std::memory_order_release);
        } else {
            unsigned step = align > kPage ? unsigned(align / kPage) : 1;
            Changing changing(owner);
            if (!owner->host || !(at = host_carve(owner->host, pages, step, clean))) {
                Host *next = host_with_room(pages, step, &at, clean);
                if (!next) return nullptr;
                if (owner->host) host_detach(owner->host);
                owner->host = next;
            }
        }
        g_medium_in_use.add(long(pages * kPage));
        return reinterpret_cast<void *>(at);
    });
}

/* lite_owns: is q inside a live run of this host? */
bool host_covers(Host *host, uintptr_t q) {
    size_t page = (q & (kSbSize - 1)) / kPage;
    for (size_t i = page; i >= 1; i--)  // the nearest live run at or before q's page
        if (host->live[i].load(std::memory_order_acquire)) return page < i + host->run[i];
    return false;
}

/* The pages of the live run that starts at p, or 0 when p starts no live run. */
unsigned live_run_pages(const void *p) {
    uintptr_t at = uintptr_t(p);
    unsigned i = unsigned((at & (kSbSize - 1)) / kPage);
    if (at & (kPage - 1) || i == 0) return 0;
    Host *host = reinterpret_cast<Host *>(at & ~(kSbSize - 1));
    return host->live[i].load(std::memory_order_acquire) ? host->run[i] : 0;
}

/* realloc: grow the live run at p to `pages` pages in place, taking the free pages after
 * it in its host (claimed in the map as a carve would).  False when they are not free. */
bool medium_grow(void *p, unsigned pages) {
    uintptr_t at = uintptr_t(p);
    unsigned first = unsigned((at & (kSbSize - 1)) / kPage), have = live_run_pages(p);
    Host *host = reinterpret_cast<Host *>(at & ~(kSbSize - 1));
    if (!have || pages <= have || first + pages > kSbPages) return false;
    Map bits = run_bits(first + have, pages - have);
    Pair t = load_pair(&host->map);
    do
        if (map_of(t) & bits) return false;
    while (!cas_pair(&host->map, t, pair_of(map_of(t) | bits)));
    dirty_clear(host, bits);
    host->run[first] = uint8_t(pages);
    g_medium_in_use.add(long(pages - have) * long(kPage));
    return true;
}

void medium_free(void *p, const char *op) {
    uintptr_t at = uintptr_t(p);
    unsigned i = unsigned((at & (kSbSize - 1)) / kPage);
    Host *host = reinterpret_cast<Host *>(at & ~(kSbSize - 1));
    if (at & (kPage - 1) || i == 0) fatal(op, "invalid pointer", p);
    if (host->live[i].exchange(0, std::memory_order_acq_rel) != 1)
        fatal(op, host->run[i] ? "double free of" : "invalid pointer", p);
    unsigned pages = host->run[i];
    g_medium_in_use.add(-long(pages * kPage));
    Heap *h = tls_heap;
    if (h != &g_bootstrap && pages * kPage <= run_cache_bytes() && held_enter(h->held)) {
        runs_put(h->held, at, pages);
        held_leave(h->held);
        return;
    }
    host_give(host, i, pages);
}

/* ===================================================================================== *
 * 11. Large engine: runs of whole slots, or mappings of their own
 * ===================================================================================== *
 * A large block is a run of slots, or a mapping of its own, that it starts: its record
 * is in the side table (LargeRecord), not in its memory, so a block of a whole number of
 * slots (1 MiB, 2 MiB, ...) takes no more than that, and any alignment up to the run's
 * is had for nothing.  Runs of up to kRunMaxSlots slots (64 MiB) come from the slot
 * store (aligned above a slot: up to 32 MiB, inside one group); bigger blocks, or
 * alignments above 16 MiB, get a mapping of their own, unmapped when freed (mremap grows
 * and shrinks it).  The free fast path never looks at a slot's first byte (do_free), so
 * it never reads the program's data in a block's first page as a header.             */
/* A block's usable size is its request rounded up to pages, not the rest of its run: a
 * run's slots beyond it stay untouched (nothing writes them but the program, which was
 * not promised them), and realloc copies no more than the program may have written. */
inline LargeRecord &large_record(uintptr_t start) { return side_of(start)->large; }
/* The block at start is live, `end` bytes long, in `slots` slots (0: a mapping of its
 * own): its record first, then its role, which makes it findable. */
LargeRecord &large_publish(uintptr_t start, size_t slots, size_t end) {
    LargeRecord &r = large_record(start);
    r.slots = uint32_t(slots);
    r.end = end;
    r.live.store(1, std::memory_order_relaxed);
    side_of(start)->role.store(kRoleLarge, std::memory_order_release);
    return r;
}
Counter g_large_in_use;  // bytes of live large blocks (their usable sizes)
Counter g_large_mapped;  // bytes of large blocks' mappings of their own

/* Map a region of `len` bytes aligned to `align` (at least kSbSize). */
char *map_aligned(size_t len, size_t align) {
    char *raw = static_cast<char *>(os_map(nullptr, len + align, PROT_READ | PROT_WRITE, 0));
    if (!raw) return nullptr;
    char *start = reinterpret_cast<char *>(round_up(uintptr_t(raw), align));
    if (!os_unmap(raw, size_t(start - raw)) || !os_unmap(start + len, size_t(raw + align - start))) {
        os_unmap(raw, len + align);  // cannot trim: give all of it back
        return nullptr;
    }
    return start;
}

void *large_alloc(size_t size, size_t align, bool *clean) {
    size_t need = round_up(size ? size : 1, kPage);
    size_t slots = (need + kSbSize - 1) / kSbSize;
    size_t step = align > kSbSize ? align / kSbSize : 1;  // (a group has a start that fits)
    uintptr_t start;
    if (align <= kSbSize ? slots <= kRunMaxSlots : align <= kGroupBytes / 2 && slots + step <= kGroupSlots) {
        bool dirty;
        start = slots_take(unsigned(slots), align, 0, &dirty);
        if (!start) return nullptr;
        for (size_t k = 1; k < slots; k++)
            side_of(start + k * kSbSize)->role.store(kRoleInterior, std::memory_order_release);
        *clean = !dirty;
    } else {
        char *mapped = map_aligned(need, align > kSbSize ? align : kSbSize);
        if (!mapped) return nullptr;
        start = uintptr_t(mapped);
        if (!mark_owned(start, kSbSize, true)) { os_unmap(mapped, need); return nullptr; }
        slots = 0;
        g_large_mapped.add(long(need));
        g_mapped.add(long(need));
        *clean = true;
    }
    large_publish(start, slots, need);
    g_large_in_use.add(long(need));
    return reinterpret_cast<void *>(start);
}

/* The record of the live large block that starts at p, or null. */
LargeRecord *live_large(const void *p) {
    uintptr_t start = uintptr_t(p);
    if (start != slot_of(p) || role_of(reinterpret_cast<Superblock *>(start)) != kRoleLarge) return nullptr;
    LargeRecord &r = large_record(start);
    return r.live.load(std::memory_order_acquire) ? &r : nullptr;
}

/* lite_owns: is q inside a live large block?  sb is q's slot: the first slot of a run or
 * mapping, a slot inside a run (the run's first slot is further back), or null for a
 * slot that is not ours (maybe inside a mapping, whose first slot alone is marked). */
bool large_holds(Superblock *sb, const char *q) {
    if (!sb) {
        uintptr_t slot = uintptr_t(q) & ~(kSbSize - 1);
        for (int i = 0; i < (1 << 16) && slot >= kSbSize && !sb; i++)
            if (is_owned_slot(slot -= kSbSize)) sb = reinterpret_cast<Superblock *>(slot);
        if (!sb) return false;
    }
    while (role_of(sb) == kRoleInterior) sb = reinterpret_cast<Superblock *>(uintptr_t(sb) - kSbSize);
    uintptr_t start = slot_of(sb);
    LargeRecord *r = live_large(reinterpret_cast<void *>(start));
    return r && uintptr_t(q) - start < r->end;
}

void large_free(void *p, const char *op) {
    uintptr_t start = uintptr_t(p);
    if (start != slot_of(p)) fatal(op, "invalid pointer", p);
    LargeRecord &r = large_record(start);
    if (r.live.exchange(0, std::memory_order_acq_rel) != 1) fatal(op, "double free of", p);
    g_large_in_use.add(-long(r.end));
    if (r.slots) return superblock_give(small_header(start), r.slots);
    side_of(start)->role.store(kRoleFree, std::memory_order_release);
    mark_owned(start, kSbSize, false);
    g_large_mapped.add(-long(r.end));
    g_mapped.add(-long(r.end));
    os_unmap(p, r.end);
}

/* Grow or shrink a large block in place: within its run, or giving back or taking the
 * slots after it; a mapping is resized with mremap (which may move its pages, never
 * copying them).  Returns the block (maybe moved), or null with the block untouched. */
void *large_resize(void *p, size_t size) {
    uintptr_t start = uintptr_t(p);
    LargeRecord *r = &large_record(start);
    size_t need = round_up(size, kPage), old_end = r->end;
    if (r->slots) {
        size_t slots = (need + kSbSize - 1) / kSbSize;
        if (slots < r->slots) {
            for (size_t k = slots; k < r->slots; k++)
                side_of(start + k * kSbSize)->role.store(kRoleFree, std::memory_order_relaxed);
            slots_give(start + slots * kSbSize, unsigned(r->slots - slots), true);
        } else if (slots > r->slots && !slots_extend(start, r->slots, unsigned(slots))) {
            return nullptr;
        }
        for (size_t k = r->slots; k < slots; k++)
            side_of(start + k * kSbSize)->role.store(kRoleInterior, std::memory_order_release);
        r->slots = uint32_t(slots);
    } else {
        if (need < old_end) {
            os_unmap(reinterpret_cast<char *>(p) + need, old_end - need);
        } else if (!os_remap(p, old_end, need, 0, nullptr)) {  // could not grow in place
            char *target = map_aligned(need, kSbSize);
            if (!target) return nullptr;
            // Mark the new place before mremap frees the old, and unmark the old first:
            // afterwards another thread may already have mapped (and marked) it.
            if (!mark_owned(uintptr_t(target), kSbSize, true)) { os_unmap(target, need); return nullptr; }
            mark_owned(start, kSbSize, false);
            if (!os_remap(p, old_end, need, MREMAP_MAYMOVE | MREMAP_FIXED, target)) {
                mark_owned(start, kSbSize, true);
                mark_owned(uintptr_t(target), kSbSize, false);
                os_unmap(target, need);
                return nullptr;
            }
            side_of(start)->role.store(kRoleFree, std::memory_order_release);
            r->live.store(0, std::memory_order_relaxed);
            start = uintptr_t(target);
            r = &large_publish(start, 0, need);
        }
        g_large_mapped.add(long(need) - long(old_end));
        g_mapped.add(long(need) - long(old_end));
    }
    r->end = need;
    g_large_in_use.add(long(need) - long(old_end));
    return reinterpret_cast<void *>(start);
}

/* ===================================================================================== *
 * 12. Decay: free memory unused for the decay delay goes back to the OS
 * ===================================================================================== *
 * No thread of our own: the slow paths that free memory (slots_give, host_give) call
 * decay_tick, and every quarter of the delay one of them walks the slot store and the
 * hosts and purges, in runs as long as they come, what has been free that long.
 * Past the retain limit it purges free pages however recent, the older first, until
 * three quarters of the limit are left.                                              */
std::atomic<uint64_t> g_next_decay{0};

/* The retain limit in force: the option's, scaled down for a program whose footprint
 * never came near it.  A program keeps at most as much as the most memory it ever had in
 * use at once (the slots handed out, at their peak), and always 64 MiB: a small program
 * does not sit on 512 MiB it freed once, and a large one's churn is not purged and
 * faulted back in (malloc-large, 20 live blocks of 5-25 MiB: at half its peak, 800 MiB
 * were purged and faulted back in 4 s).  Decay purges what stays unused.  -1: keep
 * everything. */
constexpr long kRetainFloor = long(64) << 20;
long retain_limit() {
    long opt = retain_bytes(), scaled = g_slots_used.peak();
    if (opt < 0) return -1;
    scaled = scaled > kRetainFloor ? scaled : kRetainFloor;
    return opt < scaled ? opt : scaled;
}
bool over_retain() {
    long retain = retain_limit();
    return retain >= 0 && g_slots_dirty.get() + g_host_dirty.get() > retain;
}

/* Give back the free slots of one group freed at or before `cutoff`, at most `budget`
 * bytes of them. */
void purge_group(Arena *a, size_t g, uint64_t cutoff, long budget, bool spare_huge) {
    Group &grp = a->groups[g];
    uint64_t used = grp.used.load(std::memory_order_acquire);
    uint64_t expired = 0, cand = grp.dirty.load(std::memory_order_acquire) & ~used;
    for (uint64_t m = cand; m && budget > 0; m &= m - 1) {
        unsigned i = unsigned(__builtin_ctzll(m));
        if (side_of(a->base + (g * kGroupSlots + i) * kSbSize)->freed_at.load(std::memory_order_relaxed) <= cutoff) {
            expired |= uint64_t(1) << i;
            budget -= long(kSbSize);
        }
    }
    uint64_t huge = 0;  // regions purged in part or whole: they end
    for (unsigned r = 0; r < kGroupSlots && expired >> r; r += kHugeSlots) {
        uint64_t region = ((uint64_t(1) << kHugeSlots) - 1) << r;
        if (!(expired & region) || !region_is_huge(a->base + (g * kGroupSlots + r) * kSbSize)) continue;
        if (spare_huge && (expired & region) != region) expired &= ~region;
        else huge |= region;
    }
    while (expired && !grp.used.compare_exchange_weak(used, used | expired, std::memory_order_acq_rel))
        expired &= ~used;  // marked used, as if taken: nobody can take them while we advise
    if (!expired) return;
    for (unsigned r = 0; r < kGroupSlots; r += kHugeSlots)
        if (huge >> r & 1 && expired >> r & ((uint64_t(1) << kHugeSlots) - 1))
            huge_end(a->base + (g * kGroupSlots + r) * kSbSize);
    for (uint64_t m = expired; m;) {  // one madvise per run of adjacent slots
        unsigned i = unsigned(__builtin_ctzll(m));
        uint64_t rest = ~(m >> i);  // (ctz of 0 is undefined: a run up to bit 63)
        unsigned n = rest ? unsigned(__builtin_ctzll(rest)) : 64 - i;
        os_advise(reinterpret_cast<void *>(a->base + (g * kGroupSlots + i) * kSbSize), n * kSbSize, MADV_DONTNEED);
        m &= ~((n == 64 ? ~uint64_t(0) : (uint64_t(1) << n) - 1) << i);
    }
    uint64_t was = grp.dirty.fetch_and(~expired, std::memory_order_acq_rel) & expired;
    g_slots_dirty.add(-long(bits_set(was) * kSbSize));
    grp.used.fetch_and(~expired, std::memory_order_release);
}

/* Give back the free pages of a host freed at or before `cutoff`, at most `budget`
 * bytes of them.  The host is pinned (kHostPurging) so that it cannot be retired, and its
 * slot reused, meanwhile. */
void purge_host(Host *host, uint64_t cutoff, long budget, bool spare_huge) {
    if (region_is_huge(uintptr_t(host))) {
        if (spare_huge) return;
        huge_end(uintptr_t(host));
    }
    uint64_t s = peek(&host->state);
    do {
        if ((s & ~kHostFlags) != host_sig(host) || (s & (kHostRetired | kHostPurging | kHostRetiring))) return;
    } while (!cas_hint(host->state, s, s | kHostPurging));
    Pair t = load_pair(&host->map);
    Map expired = 0, cand = dirty_map(host) & ~map_of(t);
    for (unsigned i = 1; i < kSbPages && budget > 0; i++)
        if ((cand >> i & 1) && host->freed_at[i].load(std::memory_order_relaxed) <= cutoff) {
            expired |= Map(1) << i;
            budget -= long(kPage);
        }
    while (expired && !cas_pair(&host->map, t, pair_of(map_of(t) | expired))) expired &= ~map_of(t);
    for (unsigned i = 1; expired && i < kSbPages;) {  // one madvise per run of pages
        if (!(expired >> i & 1)) { i++; continue; }
        unsigned n = 1;
        while (i + n < kSbPages && (expired >> (i + n) & 1)) n++;
        os_advise(reinterpret_cast<char *>(host) + i * kPage, n * kPage, MADV_DONTNEED);
        i += n;
    }
    if (expired) {
        dirty_clear(host, expired);
        t = load_pair(&host->map);
        while (!cas_pair(&host->map, t, pair_of(map_of(t) & ~expired))) {}
    }
    host->state.fetch_and(~kHostPurging, std::memory_order_seq_cst);
    host_settle(host);
}

/* Give back what has been free since `cutoff` or before (everything: cutoff = now), in
 * address order, until at most `keep` bytes of free memory stay resident. */
void purge(uint64_t cutoff, long keep = 0, bool spare_huge = false) {
    auto budget = [&] { return keep > 0 ? g_slots_dirty.get() + g_host_dirty.get() - keep : LONG_MAX; };
    auto done = [&] { return budget() <= 0; };
    for (Arena *a = g_arena_list.load(std::memory_order_acquire); a && !done(); a = a->next) {
        size_t slots = a->reach.load(std::memory_order_acquire) / kSbSize;
        for (size_t g = 0; g * kGroupSlots < slots && !done(); g++) {
            purge_group(a, g, cutoff, budget(), spare_huge);
            uint64_t used = a->groups[g].used.load(std::memory_order_acquire);
            for (uint64_t m = used; m && !done(); m &= m - 1) {
                uintptr_t slot = a->base + (g * kGroupSlots + unsigned(__builtin_ctzll(m))) * kSbSize;
                if (side_of(slot)->role.load(std::memory_order_acquire) == kRoleHost)
                    purge_host(reinterpret_cast<Host *>(slot), cutoff, budget(), spare_huge);
            }
        }
    }
}

std::atomic<bool> g_purging{false};  // one pass at a time (and none from inside a pass)

void decay_tick() {
    // A thread that gives memory back while a pass is under way leaves it to that pass
    // (one at a time); the pass may have gone by its memory already, so it looks once
    // more if the limit is passed again when it is done (a bounded number of times: what
    // a pass cannot purge, a pinned host, must not make it spin).
    for (int pass = 0; pass < 3; pass++) {
        long retain = retain_limit();
        if (retain < 0) return;  // keep everything
        uint64_t now = now_ms(), next = g_next_decay.load(std::memory_order_relaxed);
        if (now < next && !over_retain()) return;
        if (g_purging.exchange(true, std::memory_order_seq_cst)) return;
        uint64_t delay = decay_ms(), quarter = delay / 4 > 10 ? delay / 4 : 10;
        g_next_decay.store(now + quarter, std::memory_order_relaxed);
        purge(now > delay ? now - delay : 0, 0, true);  // (huge regions: whole, or not at all)
        if (over_retain()) {  // down to three quarters of the limit, the older part first
            long keep = retain / 4 * 3;
            purge(now - (now > quarter ? quarter : now), keep);
            if (over_retain()) purge(now, keep);
        }
        g_purging.store(false, std::memory_order_seq_cst);
        if (!over_retain()) return;
    }
}

/* ===================================================================================== *
 * 13. A heap handed back: at thread exit, or after one allocation past it
 * ===================================================================================== */
/* Let go of everything the heap owns and holds: its superblocks (empty ones go to the
 * slot store, the others are detached), its host, its outbox and run cache. */
void heap_let_go(Heap *h) {
    Changing changing(h);
    for (unsigned c = 0; c < kNumClasses; c++) {
        Superblock *sb = h->current[c];
        if (sb == &g_empty) continue;
        set_current(h, c, &g_empty);
        do collect_remote(sb);
        while (!detach(sb, h));
    }
    held_flush(h);
    if (h->host) host_detach(h->host);
    h->host = nullptr;
}
/* Dormancy's bounds: at most dormant_heaps (an option, 4) heaps at once, each owning at
 * most kDormantBytes of pages that may be resident (its blocks, its tails, its host's
 * pages), or the retain limit's share if that is less: what a dormant heap owns is memory
 * kept resident, as the retain limit's is (section 12). */
constexpr size_t kDormantBytes = size_t(2) << 20;
size_t dormant_budget() {
    long retain = retain_limit(), most = option(kOptDormantHeaps);
    if (!most) return 0;
    return retain < 0 || size_t(retain / most) > kDormantBytes ? kDormantBytes : size_t(retain / most);
}
/* Would h own at most `budget` bytes of pages that may be resident, once its tails are
 * purged? */
bool resident_within(Heap *h, size_t budget) {
    size_t bytes = h->host ? host_resident_bytes(h->host) : 0;
    for (Superblock *sb : h->current)
        if (sb != &g_empty) {
            // Below the bump pointer, everything from the header's page (carving the head:
            // everything); above, up to resident_end (set for a reused slot), but no
            // further than tail_trim leaves (huge regions: all, the head too).
            uint32_t bump = sb->bump.load(std::memory_order_relaxed);
            bool huge = region_is_huge(uintptr_t(sb)), whole = huge || carving_head(bump);
            size_t used = size_t(bump_pointer(sb) - reinterpret_cast<char *>(slot_of(sb)));
            size_t kept = huge ? kSbSize : tail_start(sb, bump);
            size_t tail = sb->resident_end < kept ? sb->resident_end : kept;
            bytes += whole ? kSbSize : (tail > used ? tail : used) - head_bytes(sb);
        }
    return bytes <= budget;
}
/* A place among the dormant heaps, if one is free. */
bool dormant_place() {
    if (g_dormant.v.fetch_add(1, std::memory_order_relaxed) < option(kOptDormantHeaps)) return true;
    g_dormant.add(-1);
    return false;
}
/* Hand h back: what it holds back goes at once; what it owns stays with it, dormant (see
 * heap_wake), for the next thread, if `keep` and the bounds allow; else it is let go. */
void heap_hand_back(Heap *h, bool keep) {
    held_flush(h);
    h->in_use = false;
    size_t budget = keep ? dormant_budget() : 0;
    if (budget && resident_within(h, budget) && dormant_place()) {
        // Its tails serve nobody until a thread takes it.  (Only now: a heap let go keeps
        // them for whoever adopts its superblocks; the soak, whose heaps are all too big to
        // stay dormant, faulted 15 times as often when they went.)
        tail_trim(h, now_ms(), 1);  // (huge regions stay whole)
        h->dormant_at.store(now_ms(), std::memory_order_relaxed);
        h->dormancy.store(kDormant, std::memory_order_release);
    } else {
        heap_let_go(h);
    }
    g_free_heaps.push(uintptr_t(h));
}
/* Let go of what dormant heap v owns, on behalf of no thread.  False if v was taken
 * meanwhile (or is being let go by another). */
bool dormant_let_go(Heap *v) {
    int s = kDormant;
    if (!v->dormancy.compare_exchange_strong(s, kLettingGo, std::memory_order_acq_rel)) return false;
    g_dormant.add(-1);
    heap_let_go(v);
    v->dormancy.store(kAwake, std::memory_order_release);
    return true;
}
/* The idle scan's look at heap v (held_claim_idle): dormant for the decay delay, it is
 * let go, as free pages are purged after it (section 12). */
void dormant_look(Heap *v) {
    if (v->dormancy.load(std::memory_order_acquire) == kDormant &&
        now_ms() - v->dormant_at.load(std::memory_order_relaxed) >= decay_ms())
        dormant_let_go(v);
}
/* Let go of every dormant heap (trim, memory exhausted).  True if any was. */
bool dormant_let_go_all() {
    bool any = false;
    if (g_dormant.get() > 0)
        for (Heap *v = g_all_heaps.load(std::memory_order_acquire); v; v = v->all_next)
            any |= v->dormancy.load(std::memory_order_relaxed) == kDormant && dormant_let_go(v);
    return any;
}

/* Forget what a heap holds back, without giving it back (fork's child, below). */
void held_drop(Held &o) {
    for (auto &w : o.used) w.store(0, std::memory_order_relaxed);
    for (auto &bin : o.bin) bin = OutboxBin{};
    queue_forget(o);
    for (auto &r : o.runs) r = HeldRun{};
    o.run_bytes.store(0, std::memory_order_relaxed);
}

/* fork: the child has one thread, and the heaps of the parent's other threads would hold
 * what they own forever.  The child hands them back as if those threads had exited, and
 * lets go of what they and the dormant heaps own (no thread is coming to take them), but
 * a thread that was inside a slow path when the parent forked may have left its heap
 * between two steps (an outbox bin half set up, a superblock detached but still
 * current), and handing that back would corrupt the shared structures:
 *  - what a heap holds back is dropped, not given back, if its owner or a claimer was
 *    inside it (`busy`, `claim`): at most one outbox and one run cache are lost;
 *  - a heap whose owner (or a thread letting it go) was changing what it owns
 *    (`changing`) is left alone: its superblocks and host stay stranded in the child
 *    (one heap per thread caught so); one caught just before or after (kLettingGo) is
 *    let go.
 * A thread caught in a fast path loses at most the block it was moving.  A purge
 * another thread had under way never ends here: the child may start its own.  (fork
 * copies memory page by page while the other threads run, so a store of theirs made
 * during the fork may reach the child without an earlier one: no allocator without a
 * lock around fork can rule that out; the window is the fork itself.) */
void after_fork_child() {
    g_purging.store(false, std::memory_order_relaxed);
    // (one thread here: the flag may change either way; registering again is harmless)
    g_fast.light_enter.store(g_fast.light_enter.load(std::memory_order_relaxed) && os_fence_register(),
                             std::memory_order_relaxed);
    for (Heap *h = g_all_heaps.load(std::memory_order_acquire); h; h = h->all_next) {
        Held &o = h->held;
        if (o.busy.load(std::memory_order_relaxed) || o.claim.load(std::memory_order_relaxed)) held_drop(o);
        o.busy.store(0, std::memory_order_relaxed);  // nobody is inside any more
        o.claim.store(0, std::memory_order_relaxed);
        if (h->changing.load(std::memory_order_relaxed)) continue;
        if (h->dormancy.load(std::memory_order_relaxed) == kLettingGo) {  // whoever let it go is gone
            heap_let_go(h);
            h->dormancy.store(kAwake, std::memory_order_relaxed);
        }
        if (h->in_use && h != tls_heap) heap_hand_back(h, false);
    }
    dormant_let_go_all();  // the child is one thread: nothing is kept for threads to come
}

/* ===================================================================================== *
 * 14. Dispatch: by size (malloc and its kin), by pointer (free, realloc, usable size, ownership)
 * ===================================================================================== */
/* Can a host hold a run of `pages` pages aligned to `align`?  (A fresh host can, from its
 * first page that is a multiple of the alignment past the pages a colour may take.) */
inline bool fits_host(size_t pages, size_t align) {
    size_t first = align > kPage ? align / kPage : 1;
    if (first < kColours) first = kColours;  // (both powers of two: still a multiple)
    return pages <= kMediumPages && first < kSbPages && first + pages <= kSbPages;
}

/* Blocks above the small classes, or aligned beyond them: a run in a host when one can
 * hold it, else a large block. */
NOINLINE void *alloc_big(size_t size, size_t align, bool *clean) {
    if (UNLIKELY(size > kMaxRequest)) { set_enomem(); return nullptr; }
    size_t pages = (size + kPage - 1) / kPage;
    auto attempt = [&] {
        return fits_host(pages ? pages : 1, align) ? medium_alloc(tls_heap, unsigned(pages ? pages : 1), align, clean)
                                                   : large_alloc(size, align, clean);
    };
    void *p = attempt();
    if (!p) {
        // Out of memory (a limit, or no run of free slots long enough): the superblocks
        // this heap and the dormant ones own, even empty ones, pin slots all over the
        // store.  Let go of them and try once more.
        bool any = dormant_let_go_all();
        if (tls_heap != &g_bootstrap) heap_let_go(tls_heap), any = true;
        if (any) p = attempt();
    }
    if (!p) set_enomem();
    return p;
}

/* Everything but malloc's fast path: out of line, so that malloc needs no stack frame. */
NOINLINE void *alloc_slow(size_t size) noexcept {
    if (size <= kFastMax) return small_refill(tls_heap, kClasses.index[grains_of(size)]);
    if (size <= kSmallMax) return small_alloc(tls_heap, class_of(size));
    bool clean;
    return alloc_big(size, 0, &clean);
}
/* The malloc fast path: a block from the thread's free list of the size's class, or null. */
inline Block *alloc_fast(size_t size) {
    return LIKELY(size <= kFastMax) ? take_block(tls_heap->by_grains[grains_of(size)]) : nullptr;
}
inline void *alloc(size_t size) {
    if (Block *b = alloc_fast(size)) return b;
    return alloc_slow(size);
}

void *alloc_aligned(size_t align, size_t size) {
    if (align <= kGrain) return alloc(size);
    if (size <= kSmallMax && align <= kPage) {  // a class whose blocks fall on the alignment
        for (unsigned c = class_of(size ? size : 1); c < kNumClasses; c++)
            if (kClasses.size[c] % align == 0 && kClasses.first[c] % align == 0) return small_alloc(tls_heap, c);
    }
    bool clean;
    return alloc_big(size, align, &clean);
}

/* The usable size malloc(n) gives (0: n is too big ever to be had). */
size_t good_size(size_t n) {
    if (n <= kSmallMax) return kClasses.size[class_of(n)];
    if (n > kMaxRequest) return 0;
    return round_up(n, kPage);  // medium runs and large blocks alike: whole pages
}

/* Ownership: the header a pointer's superblock slot would have, if the slot is ours
 * (found without touching foreign memory); what the slot is, the side table says. */
Superblock *owner_superblock(const void *p) {  // null when p cannot be one of our blocks
    if (!p) return nullptr;
    Superblock *sb = header_of(p);
    return in_fast_arena(uintptr_t(sb)) || is_owned_slot(uintptr_t(sb)) ? sb : nullptr;
}


enum class Foreign { kAbort, kForward };

/* A small block goes back on its owner's free list: the caller is the owner. */
inline bool outside_blocks(Superblock *sb, Block *b) {
    // Not in the header (where other threads' remote word lives), not at or above the
    // bump pointer (never handed out): one unsigned compare, as an offset from the end of
    // the header (a pointer into the header wraps round to a huge offset); b is in sb's
    // slot.  The bump pointer is read plainly: the caller owns sb, only the owner moves
    // it, and an atomic load would not fold into the compare.  (The padding between the
    // header and the first block of a class aligned beyond it is not told apart.)
    return uint32_t(uintptr_t(b) - kSbHeader) - uint32_t(uintptr_t(sb)) >= reinterpret_cast<const uint32_t &>(sb->bump);
}
/* Why free_local refused b; never returns.  Not declared noreturn, so that free_local
 * reaches it by a jump and the fast path needs no stack frame. */
NOINLINE void free_local_refused(Superblock *sb, Block *b, const char *op) noexcept {
    fatal(op, outside_blocks(sb, b) ? "invalid pointer" : "double free of", b);
}
inline void free_local(Superblock *sb, Block *b, const char *op) {
    if (UNLIKELY(outside_blocks(sb, b) || freed_already_here(sb, b))) return free_local_refused(sb, b, op);
    mark_freed(sb, b);
    b->set_next(sb->free);
    sb->free = b;
}

/* A small block, found by any path but the fast one: its bounds checked, then onto this
 * thread's free list if the superblock is its own (`mine`: a block outside the fast
 * range), else on through its queue and outbox (checked for a double free when it leaves
 * the queue). */
__attribute__((always_inline)) inline void free_small(Superblock *sb, void *p, const char *op, bool mine) {
    if (!small_block_ok(sb, p)) fatal(op, "invalid pointer", p);
    if (mine) free_local(sb, static_cast<Block *>(p), op);
    else outbox_put(tls_heap, sb, static_cast<Block *>(p));
}

/* Free of anything but a small block owned by this thread.  Returns false for a pointer
 * that is not ours (the caller forwards it or aborts). */
NOINLINE bool free_slow(void *p, const char *op) {
    Superblock *sb = owner_superblock(p);
    if (!sb) return false;
    switch (role_of(sb)) {
    case kRoleSmall: free_small(sb, p, op, sb->owner.load(std::memory_order_relaxed) == tls_heap); return true;
    case kRoleHost: medium_free(p, op); return true;
    case kRoleLarge: large_free(p, op); return true;
    default: fatal(op, "invalid pointer (or double free)", p);
    }
    return true;
}

/* A block in the first arena that is not a small block of this thread's.  The common
 * case, a small block of another superblock, goes straight to the outbox without the
 * general slow path's questions. */
NOINLINE void free_remote(Superblock *sb, void *p, const char *op) noexcept {
    if (role_of(sb) != kRoleSmall) {
        free_slow(p, op);  // (never false here: the first arena is ours)
        return;
    }
    free_small(sb, p, op, false);  // (the fast path found another owner)
}

/* Is the free fast path for p, given its fast_arena_offset: a grain-aligned pointer
 * inside the first arena, and not a slot's first byte (no small block is; a large block
 * is, and the word the fast path would read as an owner is then the program's). */
inline bool fast_free_ok(uintptr_t offset) {
#ifdef LITE_TSAN
    bool outside = offset & read_once(g_fast.mask);
#else
    // One `test` with the mask in memory: written in C++, GCC ANDs into a copy (2 instructions).
    bool outside;
    __asm__("test %1, %2" : "=@ccnz"(outside) : "r"(offset), "m"(g_fast.mask));
#endif
    return !outside && (offset & (kSbSize - 1));
}
/* The free fast path, for a pointer fast_free_ok passed: a small block of this thread's
 * goes back on its superblock's free list. */
inline void free_in_fast_arena(void *p, uintptr_t offset, const char *op) {
    // (The colour from the offset, which has the same slot-number bits as p.)
    Superblock *sb = reinterpret_cast<Superblock *>((uintptr_t(p) & ~(kSbSize - 1)) + colour_of(offset));
    if (UNLIKELY(sb->owner.load(std::memory_order_relaxed) != tls_heap)) return free_remote(sb, p, op);
    free_local(sb, static_cast<Block *>(p), op);
}
/* Free p, known to be ours (realloc after a move; free() makes the same choice first). */
inline void free_ours(void *p, const char *op) {
    uintptr_t offset = fast_arena_offset(uintptr_t(p));
    if (LIKELY(fast_free_ok(offset))) return free_in_fast_arena(p, offset, op);
    free_slow(p, op);
}

/* Size of the block at p (0 if p is not the start of a live block of ours). */
size_t block_usable(const void *p) {
    Superblock *sb = owner_superblock(p);
    if (!sb) return 0;
    switch (role_of(sb)) {
    case kRoleSmall: return small_block_ok(sb, p) ? sb->block_size : 0;
    case kRoleHost: return live_run_pages(p) * kPage;
    case kRoleLarge: { LargeRecord *r = live_large(p); return r ? r->end : 0; }
    default: return 0;
    }
}

/* Is p inside a block handed out (a small block: handed out at least once)?  Each
 * engine answers for its own kind of slot (host_covers, large_holds). */
int owns(const void *p) {
    if (!p) return 0;
    const char *q = static_cast<const char *>(p);
    Superblock *sb = owner_superblock(p);
    switch (sb ? role_of(sb) : kRoleLarge) {
    case kRoleSmall: return carved_offset(sb, q) != kNotCarved;
    case kRoleHost: return host_covers(reinterpret_cast<Host *>(slot_of(sb)), uintptr_t(q));
    case kRoleLarge: case kRoleInterior: return large_holds(sb, q);
    default: return 0;
    }
}

/* realloc for a block known to be ours; returns null (errno ENOMEM) and leaves p alone
 * when the new size cannot be had. */
void *realloc_ours(void *p, size_t size, size_t usable) {
    if (UNLIKELY(size > kMaxRequest)) { set_enomem(); return nullptr; }
    // Stay in place while the block fits and is not more than twice too big.
    if (size <= usable && (size >= usable / 2 || usable <= kSbHeader)) return p;
    Role role = role_of(header_of(p));
    size_t pages = (size + kPage - 1) / kPage;
    if (role == kRoleLarge && !fits_host(pages, 0)) {
        if (void *q = large_resize(p, size)) return q;
    }
    if (role == kRoleHost && fits_host(pages, 0) && medium_grow(p, unsigned(pages))) return p;
    void *q = alloc(size);
    if (!q) return nullptr;
    memcpy(q, p, size < usable ? size : usable);
    free_ours(p, "realloc");
    return q;
}

/* ===================================================================================== *
 * 15. Statistics and trimming
 * ===================================================================================== */
/* Blocks in use per small class, found by walking every carved superblock header: a
 * detached superblock counts down in its remote word; an owned one has handed out the
 * blocks below its bump pointer, less its free list and its remote list.  Blocks held in
 * outboxes are freed already.  Other threads' fields are read racily (a report, not a
 * synchronisation point): the figures are exact when the other threads are not in the
 * middle of a malloc or free. */
struct ClassUsage { size_t superblocks, blocks; };
/* fn(class, block size, blocks) for the small blocks every heap holds back, freed
 * already: each outbox bin, each block in a queue.  (The superblocks are read here, in
 * a function ThreadSanitizer leaves alone, not in fn.) */
template <class Fn>
__attribute__((no_sanitize("thread"))) void for_each_held_batch(Fn fn) {
    for (Heap *h = g_all_heaps.load(std::memory_order_acquire); h; h = h->all_next) {
        for (auto &s : h->held.bin)
            if (const Superblock *sb = s.sb) fn(sb->size_class, long(sb->block_size), long(s.n));
        for (Block *q : h->held.queue)
            if (q) fn(header_of(q)->size_class, long(header_of(q)->block_size), 1L);
    }
}
__attribute__((no_sanitize("thread"))) size_t small_in_use(ClassUsage *per_class, size_t *tails) {
    long total = 0;
    *tails = 0;
    auto count = [&](unsigned c, long blocks, long block_size) {
        total += blocks * block_size;
        if (per_class && c < kNumClasses) per_class[c].blocks += size_t(blocks);
    };
    for (Arena *a = g_arena_list.load(std::memory_order_acquire); a; a = a->next) {
        size_t slots = a->reach.load(std::memory_order_acquire) / kSbSize;
        for (size_t i = 0; i < slots; i++) {
            Superblock *sb = small_header(a->base + i * kSbSize);
            if (side_of(uintptr_t(sb))->role.load(std::memory_order_relaxed) != kRoleSmall || sb->kind != kSmall ||
                !sb->block_size || sb->size_class >= kNumClasses)
                continue;
            uintptr_t w = peek(&sb->remote);
            uint32_t offset = peek_bump(sb);
            long out;
            if (w & kEmptied) out = 0;
            else if (w & kDetached) out = long(remote_count(w));
            else {
                uint32_t cut = carved_at(sb, offset);  // (a superblock being set up: up to its capacity)
                out = long(cut < sb->capacity ? cut : sb->capacity) - long(free_list_length(sb)) - long(remote_count(w));
            }
            if (out < 0) out = 0;
            if (per_class) per_class[sb->size_class].superblocks++;
            count(sb->size_class, out, sb->block_size);
            size_t from = tail_start(sb, offset);
            if (sb->resident_end > from) *tails += sb->resident_end - from;
            *tails += head_resident_bytes(sb);  // (and its head)
        }
    }
    for_each_held_batch([&](unsigned c, long block_size, long n) { count(c, -n, block_size); });
    return total > 0 ? size_t(total) : 0;
}
/* What heaps hold back: bytes in queues and outboxes (freed, to be sent) and in cached
 * runs; and the batches and blocks their outboxes have sent, ever. */
struct HeldFigures {
    size_t outboxes = 0, runs = 0;
    uint64_t batches_sent = 0, blocks_sent = 0;
};
__attribute__((no_sanitize("thread"))) HeldFigures held_figures() {
    HeldFigures f;
    for_each_held_batch([&](unsigned, long block_size, long n) { f.outboxes += size_t(n * block_size); });
    for (Heap *h = g_all_heaps.load(std::memory_order_acquire); h; h = h->all_next) {
        f.runs += h->held.run_bytes.load(std::memory_order_relaxed);
        f.batches_sent += h->held.batches_sent.load(std::memory_order_relaxed);
        f.blocks_sent += h->held.blocks_sent.load(std::memory_order_relaxed);
    }
    return f;
}
/* Free pages of hosts already purged. */
__attribute__((no_sanitize("thread"))) size_t host_clean_bytes() {
    size_t pages = 0;
    for (Arena *a = g_arena_list.load(std::memory_order_acquire); a; a = a->next) {
        size_t slots = a->reach.load(std::memory_order_acquire) / kSbSize;
        for (size_t i = 0; i < slots; i++) {
            uintptr_t slot = a->base + i * kSbSize;
            if (side_of(slot)->role.load(std::memory_order_relaxed) != kRoleHost) continue;
            pages += kSbPages - host_resident_bytes(reinterpret_cast<Host *>(slot)) / kPage;
        }
    }
    return pages * kPage;
}

/* Slots owned by dormant heaps (their superblocks and hosts): part of lite_stats'
 * superblocks, until a thread takes the heap or it is let go. */
__attribute__((no_sanitize("thread"))) size_t dormant_superblocks() {
    size_t n = 0;
    for (Heap *h = g_all_heaps.load(std::memory_order_acquire); h; h = h->all_next) {
        if (h->dormancy.load(std::memory_order_acquire) != kDormant) continue;
        n += h->host != nullptr;
        for (Superblock *sb : h->current) n += sb != &g_empty;
    }
    return n;
}

/* One reading of every figure, for every reader (lite_stats, the report, JSON,
 * malloc_info, mallinfo2): the public counters and, beside them, each engine's part. */
struct Snapshot : lite_malloc_stats {
    size_t small_in_use, medium_in_use, run_caches, large_mapped;
    uint64_t batches_sent, blocks_sent;  // by every outbox, ever
};
void fill_stats(Snapshot *snap, ClassUsage *per_class = nullptr) {
    lite_malloc_stats *s = snap;
    memset(s, 0, sizeof *s);
    size_t tails;
    HeldFigures held = held_figures();
    s->bytes_pending = held.outboxes;
    snap->small_in_use = small_in_use(per_class, &tails);
    snap->medium_in_use = size_t(g_medium_in_use.get());
    snap->run_caches = held.runs;
    snap->large_mapped = size_t(g_large_mapped.get());
    snap->batches_sent = held.batches_sent;
    snap->blocks_sent = held.blocks_sent;
    s->bytes_mapped = size_t(g_mapped.get());
    s->large_in_use = size_t(g_large_in_use.get());
    s->bytes_in_use = snap->small_in_use + snap->medium_in_use + s->large_in_use;
    s->bytes_cached = size_t(g_slots_dirty.get() + g_host_dirty.get()) + held.runs + tails;
    long clean_slots = g_committed.get() - g_slots_used.get() - g_slots_dirty.get();
    s->bytes_released = size_t(clean_slots > 0 ? clean_slots : 0) + host_clean_bytes();
    s->superblocks = size_t(g_slots_used.get()) / kSbSize;
    s->threads = size_t(g_heaps.get());
    s->bytes_mapped_peak = size_t(g_mapped.peak());
    s->bytes_reserved = uncommitted_reserve();
    s->threads_seen = size_t(g_threads_seen.get());
    s->huge_regions = size_t(g_huge_regions.get() > 0 ? g_huge_regions.get() : 0);
}

/* Text for a reader: formatted on the stack, a line at a time, and written to stderr
 * (one system call per line), to a caller's FILE, or into a caller's buffer (cut at its
 * end; `used` counts the whole text).  Never allocates (a FILE may, as the caller's). */
struct Sink {
    char *buf = nullptr;
    size_t len = 0, used = 0;
    FILE *file = nullptr;
    __attribute__((format(printf, 2, 3))) void put(const char *fmt, ...) {
        char line[256];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(line, sizeof line, fmt, ap);
        va_end(ap);
        if (n <= 0) return;
        size_t k = size_t(n) < sizeof line ? size_t(n) : sizeof line - 1;
        if (file) fputs(line, file);
        else if (!buf) os_write(line, k);
        else if (used + 1 < len) memcpy(buf + used, line, used + k < len ? k : len - 1 - used);
        used += k;
    }
};

/* The report printed at exit under LITE_MALLOC_STATS=1 and by malloc_stats(). */
template <size_t N>
long proc_kib(const char *path, const char (&field)[N]) {  // e.g. VmHWM: from /proc/self/status
    char buf[4096];
    long fd = syscall6(SYS_open, long(path), O_RDONLY, 0, 0, 0, 0);
    if (fd < 0) return -1;
    long n = syscall6(SYS_read, fd, long(buf), sizeof buf - 1, 0, 0, 0);
    syscall6(SYS_close, fd, 0, 0, 0, 0, 0);
    if (n <= 0) return -1;
    buf[n] = 0;
    const char *at = strstr(buf, field);
    return at ? strtol(at + N - 1, nullptr, 10) : -1;
}
long my_pid() { return syscall6(SYS_getpid, 0, 0, 0, 0, 0, 0); }

void report_text(Sink &k) {
    ClassUsage per_class[kNumClasses] = {};
    Snapshot st;
    fill_stats(&st, per_class);
    auto mib = [](size_t b) { return double(b) / (1 << 20); };
    k.put("lite-malloc: statistics of process %ld\n", my_pid());
    k.put("  mapped     %10.1f MiB   peak %.1f MiB (arenas, large mappings, metadata)\n",
          mib(st.bytes_mapped), mib(st.bytes_mapped_peak));
    k.put("  in use     %10.1f MiB   small %.1f, medium %.1f, large %.1f\n", mib(st.bytes_in_use),
          mib(st.small_in_use), mib(st.medium_in_use), mib(st.large_in_use));
    long in_force = retain_limit();
    k.put("  cached     %10.1f MiB   free, kept backed for reuse (retain limit %ld MiB, %.0f in force)\n",
          mib(st.bytes_cached), option(kOptRetainMb), in_force < 0 ? -1.0 : mib(size_t(in_force)));
    k.put("  released   %10.1f MiB   free, given back to the OS, address space kept\n", mib(st.bytes_released));
    k.put("  peak RSS   %10.1f MiB   (VmHWM, the whole process)\n", double(proc_kib("/proc/self/status", "VmHWM:")) / 1024);
    k.put("  huge pages %10zu regions of 2 MiB asked for; AnonHugePages %ld KiB (the whole process)\n",
          st.huge_regions, proc_kib("/proc/self/smaps_rollup", "AnonHugePages:"));
    k.put("  threads    %10zu seen, %zu heaps created, %zu superblocks in use\n", st.threads_seen,
          st.threads, st.superblocks);
    k.put("  class  block size  superblocks  blocks in use  bytes in use\n");
    for (unsigned c = 0; c < kNumClasses; c++) {
        if (!per_class[c].superblocks) continue;
        k.put("  %5u  %10u  %11zu  %13zu  %12zu\n", c, kClasses.size[c], per_class[c].superblocks,
              per_class[c].blocks, per_class[c].blocks * kClasses.size[c]);
    }
}

/* The same figures and more as one JSON object (lite_stats_json, LITE_MALLOC_STATS=json):
 * bytes, counts of heaps and threads, each engine's share (the small engine's with the
 * batches and blocks its outboxes sent), the system calls made and the bytes purged so
 * far, the options, and each small class in use. */
void report_json(Sink &k) {
    ClassUsage per_class[kNumClasses] = {};
    Snapshot st;
    fill_stats(&st, per_class);
    size_t heaps_in_use = 0;
    for (Heap *h = g_all_heaps.load(std::memory_order_acquire); h; h = h->all_next) heaps_in_use += h->in_use;
    k.put("{\"allocator\":\"lite-malloc\",\"pid\":%ld,\"mapped\":%zu,\"mapped_peak\":%zu,\"reserved\":%zu,",
          my_pid(), st.bytes_mapped, st.bytes_mapped_peak, st.bytes_reserved);
    k.put("\"in_use\":%zu,\"cached\":%zu,\"released\":%zu,\"pending\":%zu,\"superblocks\":%zu,", st.bytes_in_use,
          st.bytes_cached, st.bytes_released, st.bytes_pending, st.superblocks);
    k.put("\"heaps\":%zu,\"heaps_in_use\":%zu,\"heaps_dormant\":%ld,\"dormant_superblocks\":%zu,\"threads_seen\":%zu,"
          "\"huge_regions\":%zu,", st.threads, heaps_in_use, g_dormant.get(), dormant_superblocks(), st.threads_seen,
          st.huge_regions);
    k.put("\"engines\":{\"small\":{\"in_use\":%zu,\"outboxes\":%zu,\"batches_sent\":%lu,\"blocks_sent\":%lu},",
          st.small_in_use, st.bytes_pending, (unsigned long)st.batches_sent, (unsigned long)st.blocks_sent);
    k.put("\"medium\":{\"in_use\":%zu,\"run_caches\":%zu},", st.medium_in_use, st.run_caches);
    k.put("\"large\":{\"in_use\":%zu,\"own_mappings\":%zu}},", st.large_in_use, st.large_mapped);
    auto sys = [](Sys s) { return (unsigned long)g_syscalls[s].load(std::memory_order_relaxed); };
    k.put("\"syscalls\":{\"mmap\":%lu,\"munmap\":%lu,\"mprotect\":%lu,\"madvise\":%lu,\"mremap\":%lu},", sys(kSysMmap),
          sys(kSysMunmap), sys(kSysMprotect), sys(kSysMadvise), sys(kSysMremap));
    k.put("\"purged\":%lu,\"retain_limit\":%ld,\"options\":{", (unsigned long)g_purged_bytes.load(std::memory_order_relaxed),
          retain_limit());
    for (unsigned o = 0; o < kOptCount; o++) k.put("%s\"%s\":%ld", o ? "," : "", kOptions[o].key, option(Opt(o)));
    k.put("},\"classes\":[");
    for (unsigned c = 0, n = 0; c < kNumClasses; c++)
        if (per_class[c].superblocks)
            k.put("%s{\"class\":%u,\"size\":%u,\"superblocks\":%zu,\"blocks\":%zu}", n++ ? "," : "", c,
                  kClasses.size[c], per_class[c].superblocks, per_class[c].blocks);
    k.put("]}\n");
}

void print_report(bool json) {
    Sink k;
    json ? report_json(k) : report_text(k);
}

/* The live view: a directory of the counters, for lite-malloc-stat to read in a running
 * process without the program's help.  The tool finds it by its magic words among the
 * memory mapped from the process's files (the library's, or the executable's when the
 * allocator is linked in), then reads each counter through /proc/PID/mem, with a
 * debugger's permissions.  Set up by the compiler and never written: the names and
 * addresses are read-only data.  Every value is 8 bytes.  Version 1.              */
struct LiveEntry {
    const char *name;
    const void *value;
};
constexpr unsigned kLiveEntries = 15 + kSysCount + kOptCount;
const long kLiveSlotBytes = long(kSbSize);
struct LiveDirectory {
    char magic[24];
    uint32_t version, count;
    LiveEntry entry[kLiveEntries];
};
__attribute__((used)) const LiveDirectory g_live = {
    "lite-malloc live view\x01", 1, kLiveEntries,
    {{"mapped", &g_mapped.v}, {"mapped_peak", &g_mapped.high}, {"committed", &g_committed.v},
     {"slots_used", &g_slots_used.v}, {"slots_dirty", &g_slots_dirty.v}, {"host_dirty", &g_host_dirty.v},
     {"medium_in_use", &g_medium_in_use.v}, {"large_in_use", &g_large_in_use.v},
     {"large_own_mappings", &g_large_mapped.v}, {"metadata", &g_meta_bytes.v}, {"heaps", &g_heaps.v},
     {"threads_seen", &g_threads_seen.v}, {"huge_regions", &g_huge_regions.v}, {"purged", &g_purged_bytes},
     {"slot_bytes", &kLiveSlotBytes},
     {"syscalls.mmap", &g_syscalls[kSysMmap]}, {"syscalls.munmap", &g_syscalls[kSysMunmap]},
     {"syscalls.mprotect", &g_syscalls[kSysMprotect]}, {"syscalls.madvise", &g_syscalls[kSysMadvise]},
     {"syscalls.mremap", &g_syscalls[kSysMremap]}, {"options.retain_mb", &g_options[kOptRetainMb]},
     {"options.decay_ms", &g_options[kOptDecayMs]}, {"options.stats", &g_options[kOptStats]},
     {"options.huge_pages", &g_options[kOptHugePages]}, {"options.run_cache_kb", &g_options[kOptRunCacheKb]},
     {"options.outbox_blocks", &g_options[kOptOutboxBlocks]},
     {"options.dormant_heaps", &g_options[kOptDormantHeaps]}}};

/* glibc's malloc_info(): its XML layout, lite-malloc's figures.  Each <size> is a small
 * class in use: its block size, the blocks in use and their bytes. */
[[maybe_unused]] int malloc_info_xml(int options, FILE *fp) {
    if (options || !fp) { errno = EINVAL; return -1; }
    ClassUsage per_class[kNumClasses] = {};
    Snapshot st;
    fill_stats(&st, per_class);
    Sink k;
    k.file = fp;
    k.put("<malloc version=\"1\" allocator=\"lite-malloc\">\n<heap nr=\"0\">\n<sizes>\n");
    for (unsigned c = 0; c < kNumClasses; c++)
        if (per_class[c].superblocks)
            k.put("  <size from=\"%u\" to=\"%u\" total=\"%zu\" count=\"%zu\"/>\n", kClasses.size[c], kClasses.size[c],
                  per_class[c].blocks * kClasses.size[c], per_class[c].blocks);
    k.put("</sizes>\n");
    for (int whole = 0; whole < 2; whole++) {
        if (whole) k.put("</heap>\n");
        k.put("<total type=\"fast\" count=\"0\" size=\"0\"/>\n<total type=\"rest\" count=\"0\" size=\"%zu\"/>\n",
              st.bytes_cached);
        if (whole) k.put("<total type=\"mmap\" count=\"0\" size=\"%zu\"/>\n", st.large_mapped);
        k.put("<system type=\"current\" size=\"%zu\"/>\n<system type=\"max\" size=\"%zu\"/>\n", st.bytes_mapped,
              st.bytes_mapped_peak);
        k.put("<aspace type=\"total\" size=\"%zu\"/>\n<aspace type=\"mprotect\" size=\"%zu\"/>\n", st.bytes_mapped,
              st.bytes_mapped);
    }
    k.put("<lite-malloc in_use=\"%zu\" released=\"%zu\" pending=\"%zu\" superblocks=\"%zu\" heaps=\"%zu\"/>\n</malloc>\n",
          st.bytes_in_use, st.bytes_released, st.bytes_pending, st.superblocks, st.threads);
    return 0;
}

/* Purge every free page (the mappings stay): what heaps hold back is given back first,
 * since it may empty superblocks and hosts.  True when anything was purged. */
bool trim_all() {
    dormant_let_go_all();
    for (Heap *h = g_all_heaps.load(std::memory_order_acquire); h; h = h->all_next)
        if (h == tls_heap) held_flush(h);
        else held_claim(h);
    if (tls_heap != &g_bootstrap) tail_trim(tls_heap, now_ms(), 0);  // (only the owner may)
    long before = g_slots_dirty.get() + g_host_dirty.get();
    bool mine = !g_purging.exchange(true, std::memory_order_acquire);
    purge(now_ms());
    if (mine) g_purging.store(false, std::memory_order_release);
    return g_slots_dirty.get() + g_host_dirty.get() < before;
}


/* ===================================================================================== *
 * 16. Entry points.
 * ===================================================================================== */
/* Start-up, at load time (before main, and before any thread of the program): the
 * options, the first arena, the thread-exit key, the fork handler; at exit, the report. */
__attribute__((constructor)) void lite_malloc_init() {
    options_from_env();
    if (os_fence_register()) g_fast.light_enter.store(true, std::memory_order_release);
    if (!g_arena_list.load(std::memory_order_acquire)) add_arena();
    make_exit_key();
    pthread_atfork(nullptr, nullptr, after_fork_child);
}
__attribute__((destructor)) void lite_malloc_fini() {
    if (long stats = option(kOptStats)) print_report(stats == 2);
}


/* Every entry point is written once, here, parameterised by what to do with a pointer
 * that is not ours: forward it to the C library's allocator when it is one of its blocks
 * (the C library's names, LITE_FORWARDS_FOREIGN: with --wrap / --defsym, libc and
 * unwrapped objects hand out blocks of their own; a deep-bound library does too), or
 * report it and abort (the lite_* names, and anything that is no block at all).      */
extern "C" void __libc_free(void *);
extern "C" void *__libc_realloc(void *, size_t);
#if LITE_WRAP_NAMES
/* glibc exports no __libc_ name for malloc_usable_size.  With --wrap, __real_ reaches it;
 * with --defsym it is our own wrapper again, and then a foreign block's size is unknown. */
extern "C" size_t __real_malloc_usable_size(void *) __THROW __attribute__((weak));
extern "C" size_t __wrap_malloc_usable_size(void *) __THROW;
size_t foreign_usable(void *p) {
    auto real = &__real_malloc_usable_size;
    return real && real != &__wrap_malloc_usable_size ? real(p) : 0;
}
inline bool foreign_is_libc(void *) { return true; }  // (the C library's allocator is linked in)
#elif LITE_C_NAMES
/* ---- blocks of the C library's allocator --------------------------------------------- *
 * A library opened with dlopen(RTLD_DEEPBIND) binds malloc & co. to the C library's own
 * allocator (see deepbind_rebind below for what is done about it): blocks it allocated
 * can reach our free, realloc and malloc_usable_size.  glibc's chunk layout tells them
 * from wild pointers: the size word before the block (three flags in its low bits), and
 * either an mmapped chunk (flag 2: its start, prev_size bytes before the chunk, on a page
 * and a whole number of pages long) or a heap chunk that the next chunk says is in use
 * (flag 1), inside the program break (the main arena) or inside a 64 MiB-aligned heap of
 * another arena (flag 4).  The reads go through process_vm_readv, so that a wild pointer
 * is a failed read, not a fault; a pointer that passes and is not glibc's meets glibc's
 * own checks.  Such blocks go to glibc's __libc_free and __libc_realloc.             */
bool read_own_memory(uintptr_t at, void *out, size_t n) {
    struct { void *base; size_t len; } local = {out, n}, remote = {reinterpret_cast<void *>(at), n};
    return syscall6(SYS_process_vm_readv, syscall6(SYS_getpid, 0, 0, 0, 0, 0, 0), long(&local), 1, long(&remote), 1, 0) ==
           long(n);
}
uintptr_t program_break_start() {  // field 47 of /proc/self/stat (start_brk); 0 if unknown
    static std::atomic<uintptr_t> cached{0};
    if (uintptr_t b = cached.load(std::memory_order_relaxed)) return b;
    char buf[1024];
    long fd = syscall6(SYS_open, long("/proc/self/stat"), O_RDONLY, 0, 0, 0, 0);
    if (fd < 0) return 0;
    long n = syscall6(SYS_read, fd, long(buf), sizeof buf - 1, 0, 0, 0);
    syscall6(SYS_close, fd, 0, 0, 0, 0, 0);
    if (n <= 0) return 0;
    buf[n] = 0;
    const char *c = strrchr(buf, ')');  // after the command name, which may hold spaces
    for (int field = 2; c && *c && field < 47; c++)
        if (*c == ' ') field++;
    uintptr_t b = c ? uintptr_t(strtoull(c, nullptr, 10)) : 0;
    cached.store(b, std::memory_order_relaxed);
    return b;
}
size_t libc_usable(const void *p) {  // 0: not a live block of glibc's allocator
    uintptr_t a = uintptr_t(p), chunk = a - 16;
    uint64_t head[2];  // prev_size, size | flags
    if (!a || (a & 15) || !read_own_memory(chunk, head, sizeof head)) return 0;
    uint64_t size = head[1] & ~uint64_t(7);
    if (head[1] & 2)  // mmapped
        return ((chunk - head[0]) & (kPage - 1)) == 0 && ((head[0] + size) & (kPage - 1)) == 0 && size >= kPage
                   ? size - 16 : 0;
    uint64_t next;
    if (size < 32 || (size & 15) || size > kMaxRequest || !read_own_memory(chunk + size + 8, &next, 8) || !(next & 1))
        return 0;
    if (head[1] & 4) {  // another arena's heap: {ar_ptr, prev, size} at its 64 MiB-aligned start
        uintptr_t heap = chunk & ~((uintptr_t(64) << 20) - 1);
        uint64_t info[3];
        return read_own_memory(heap, info, sizeof info) && info[2] <= (uint64_t(64) << 20) && chunk + size <= heap + info[2]
                   ? size - 8 : 0;
    }
    uintptr_t start = program_break_start(), now = uintptr_t(syscall6(SYS_brk, 0, 0, 0, 0, 0, 0));
    return start && chunk >= start && chunk + size <= now ? size - 8 : 0;
}
inline bool foreign_is_libc(void *p) { return libc_usable(p) != 0; }
size_t foreign_usable(void *p) { return libc_usable(p); }
#else
inline bool foreign_is_libc(void *) { return false; }
#endif
/* What the C library's names do with a pointer that is not ours (the lite_* names abort). */
constexpr Foreign kForeign = LITE_FORWARDS_FOREIGN ? Foreign::kForward : Foreign::kAbort;

template <Foreign F>
NOINLINE void do_free_slow(void *p) noexcept {
    if (!p || free_slow(p, "free")) return;
    if constexpr (F == Foreign::kForward)
        if (foreign_is_libc(p)) { __libc_free(p); return; }
    fatal("free", "invalid pointer", p);
}

template <Foreign F>
inline void do_free(void *p) {
    uintptr_t offset = fast_arena_offset(uintptr_t(p));
    if (LIKELY(fast_free_ok(offset))) return free_in_fast_arena(p, offset, "free");
    do_free_slow<F>(p);  // a tail call: the fast path needs no stack frame
}

template <Foreign F>
void *do_realloc(void *p, size_t size) {
    if (!p) return alloc(size);
    size_t usable = block_usable(p);
    if (!usable) {
        if (owner_superblock(p)) fatal("realloc", "invalid pointer (or freed block)", p);
        if constexpr (F == Foreign::kForward)
            if (foreign_is_libc(p)) return __libc_realloc(p, size);
        fatal("realloc", "invalid pointer", p);
    }
    // A freed small block is still "ours" to block_usable: realloc would hand it out
    // while it sits on a free list.
    if (role_of(header_of(p)) == kRoleSmall && freed_already(header_of(p), static_cast<const Block *>(p)))
        fatal("realloc", "double free (realloc of a freed block) of", p);
    if (size == 0) {  // glibc frees and returns NULL
        do_free<F>(p);
        return nullptr;
    }
    return realloc_ours(p, size, usable);
}

/* free_sized, free_aligned_sized: a size larger than the block, or a pointer off the
 * alignment, is a bad free (the size is not needed otherwise). */
template <Foreign F>
void do_free_sized(void *p, size_t size, size_t align) {
    size_t usable = p ? block_usable(p) : 0;
    if (UNLIKELY(usable && (size > usable || (is_pow2(align) && uintptr_t(p) & (align - 1)))))
        fatal("free_sized", "size or alignment not the block's, freeing", p);
    do_free<F>(p);
}

void *do_calloc(size_t n, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) { set_enomem(); return nullptr; }
    if (total <= kSmallMax) {
        void *p = small_alloc(tls_heap, class_of(total));
        if (p) memset(p, 0, total);
        return p;
    }
    bool clean;
    void *p = alloc_big(total, 0, &clean);
    if (p && !clean) memset(p, 0, total);
    return p;
}

[[maybe_unused]] void *do_reallocarray(void *p, size_t n, size_t size, void *(*re)(void *, size_t)) {
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) { set_enomem(); return nullptr; }
    return re(p, total);
}

int do_posix_memalign(void **out, size_t align, size_t size) {
    if (!is_pow2(align) || align % sizeof(void *)) return EINVAL;
    int saved = errno;
    void *p = alloc_aligned(align, size);
    if (!p) return ENOMEM;
    errno = saved;
    *out = p;
    return 0;
}

void *do_aligned_alloc(size_t align, size_t size) {
    if (!is_pow2(align)) { errno = EINVAL; return nullptr; }
    return alloc_aligned(align, size);
}

[[maybe_unused]] void *do_memalign(size_t align, size_t size) {  // glibc: round a bad alignment up
    if (!is_pow2(align)) {
        if (align > (size_t(1) << 62)) { errno = EINVAL; return nullptr; }
        size_t a = 1;
        while (a < align) a <<= 1;
        align = a;
    }
    return alloc_aligned(align, size);
}

[[maybe_unused]] void *do_pvalloc(size_t size) {
    if (size > kMaxRequest) { set_enomem(); return nullptr; }
    return alloc_aligned(kPage, round_up(size ? size : 1, kPage));
}


}  // namespace

/* ---- the prefixed API: always defined ------------------------------------------------ */
LITE_API void *lite_malloc(size_t size) { return alloc(size); }
LITE_API void lite_free(void *p) { do_free<Foreign::kAbort>(p); }
LITE_API void *lite_calloc(size_t n, size_t size) { return do_calloc(n, size); }
LITE_API void *lite_realloc(void *p, size_t size) { return do_realloc<Foreign::kAbort>(p, size); }
LITE_API void *lite_aligned_alloc(size_t align, size_t size) { return do_aligned_alloc(align, size); }
LITE_API int lite_posix_memalign(void **out, size_t align, size_t size) {
    return do_posix_memalign(out, align, size);
}
LITE_API size_t lite_usable_size(const void *p) { return block_usable(p); }
LITE_API int lite_owns(const void *p) { return owns(p); }
LITE_API void lite_stats(struct lite_malloc_stats *out) {
    if (!out) return;
    Snapshot st;
    fill_stats(&st);
    *out = st;
}
LITE_API int lite_trim(size_t) { return trim_all(); }
LITE_API size_t lite_good_size(size_t size) { return good_size(size); }
LITE_API size_t lite_stats_json(char *buf, size_t len) {
    Sink k;
    k.buf = buf;
    k.len = buf ? len : 0;
    char none;
    if (!k.len) k.buf = &none;  // count only
    report_json(k);
    if (k.len) k.buf[k.used < k.len ? k.used : k.len - 1] = 0;
    return k.used;
}
LITE_API int lite_option_get(const char *key, long *value) {
    int o = key ? option_find(key, strlen(key)) : -1;
    if (o < 0 || !value) { errno = EINVAL; return -1; }
    *value = option(Opt(o));
    return 0;
}
LITE_API int lite_option_set(const char *key, long value) {
    int o = key ? option_find(key, strlen(key)) : -1;
    if (o == kOptRetainMb && value < 0) value = -1;
    if (o < 0 || value < kOptions[o].min || value > kOptions[o].max) { errno = EINVAL; return -1; }
    g_options[o].store(value, std::memory_order_relaxed);
    g_next_decay.store(0, std::memory_order_relaxed);  // a new retain limit or delay: look now
    return 0;
}

/* ---- the C library's names ---------------------------------------------------------- */
#if LITE_C_NAMES
#define LITE_ALIAS(name) name
#elif LITE_WRAP_NAMES
#define LITE_ALIAS(name) __wrap_##name
#ifndef __THROW
#define __THROW
#endif
/* (__THROW: the definitions below carry it, and clang wants declaration and definition
 * to agree on it.) */
extern "C" {
void *__wrap_malloc(size_t) __THROW;
void __wrap_free(void *) __THROW;
void *__wrap_calloc(size_t, size_t) __THROW;
void *__wrap_realloc(void *, size_t) __THROW;
void *__wrap_reallocarray(void *, size_t, size_t) __THROW;
void *__wrap_memalign(size_t, size_t) __THROW;
int __wrap_posix_memalign(void **, size_t, size_t) __THROW;
void *__wrap_aligned_alloc(size_t, size_t) __THROW;
void *__wrap_valloc(size_t) __THROW;
void *__wrap_pvalloc(size_t) __THROW;
size_t __wrap_malloc_usable_size(void *) __THROW;
int __wrap_malloc_trim(size_t) __THROW;
struct mallinfo2 __wrap_mallinfo2(void) __THROW;
struct mallinfo __wrap_mallinfo(void) __THROW;
void __wrap_malloc_stats(void) __THROW;
int __wrap_malloc_info(int, FILE *) __THROW;
void __wrap_free_sized(void *, size_t) __THROW;
void __wrap_free_aligned_sized(void *, size_t, size_t) __THROW;
}
#endif

#ifdef LITE_ALIAS
#ifndef __THROW
#define __THROW
#endif
LITE_API void *LITE_ALIAS(malloc)(size_t size) __THROW { return alloc(size); }
LITE_API void LITE_ALIAS(free)(void *p) __THROW { do_free<kForeign>(p); }
LITE_API void *LITE_ALIAS(calloc)(size_t n, size_t size) __THROW { return do_calloc(n, size); }
LITE_API void *LITE_ALIAS(realloc)(void *p, size_t size) __THROW { return do_realloc<kForeign>(p, size); }
LITE_API void *LITE_ALIAS(reallocarray)(void *p, size_t n, size_t size) __THROW {
    return do_reallocarray(p, n, size, do_realloc<kForeign>);
}
LITE_API void *LITE_ALIAS(memalign)(size_t align, size_t size) __THROW { return do_memalign(align, size); }
LITE_API int LITE_ALIAS(posix_memalign)(void **out, size_t align, size_t size) __THROW {
    return do_posix_memalign(out, align, size);
}
LITE_API void *LITE_ALIAS(aligned_alloc)(size_t align, size_t size) __THROW { return do_aligned_alloc(align, size); }
LITE_API void *LITE_ALIAS(valloc)(size_t size) __THROW { return alloc_aligned(kPage, size); }
LITE_API void *LITE_ALIAS(pvalloc)(size_t size) __THROW { return do_pvalloc(size); }
LITE_API size_t LITE_ALIAS(malloc_usable_size)(void *p) __THROW {
    if (p && !owner_superblock(p)) return foreign_usable(p);  // (these names forward foreign pointers)
    return block_usable(p);
}
LITE_API int LITE_ALIAS(malloc_trim)(size_t) __THROW { return trim_all(); }
/* glibc's statistics calls, answered with lite-malloc's own figures. */
LITE_API struct mallinfo2 LITE_ALIAS(mallinfo2)(void) __THROW {
    Snapshot st;
    fill_stats(&st);
    struct mallinfo2 m;
    memset(&m, 0, sizeof m);
    m.arena = st.bytes_mapped - st.large_mapped;  // not directly mapped
    m.ordblks = size_t(st.superblocks);           // "chunks": superblocks in use
    m.hblks = st.large_mapped ? 1 : 0;
    m.hblkhd = st.large_mapped;
    m.usmblks = st.bytes_mapped_peak;
    m.uordblks = st.bytes_in_use;
    m.fordblks = st.bytes_cached;
    m.keepcost = st.bytes_released;
    return m;
}
LITE_API struct mallinfo LITE_ALIAS(mallinfo)(void) __THROW {
    struct mallinfo2 m2 = LITE_ALIAS(mallinfo2)();
    auto clamp = [](size_t v) { return int(v > 0x7fffffff ? 0x7fffffff : v); };
    struct mallinfo m;
    memset(&m, 0, sizeof m);
    m.arena = clamp(m2.arena); m.ordblks = clamp(m2.ordblks); m.hblks = clamp(m2.hblks);
    m.hblkhd = clamp(m2.hblkhd); m.usmblks = clamp(m2.usmblks); m.uordblks = clamp(m2.uordblks);
    m.fordblks = clamp(m2.fordblks); m.keepcost = clamp(m2.keepcost);
    return m;
}
LITE_API void LITE_ALIAS(malloc_stats)(void) __THROW { print_report(false); }
LITE_API int LITE_ALIAS(malloc_info)(int options, FILE *fp) __THROW { return malloc_info_xml(options, fp); }
/* C23: free with the size (and alignment) the block was asked with. */
LITE_API void LITE_ALIAS(free_sized)(void *p, size_t size) __THROW { do_free_sized<kForeign>(p, size, 0); }
LITE_API void LITE_ALIAS(free_aligned_sized)(void *p, size_t align, size_t size) __THROW {
    do_free_sized<kForeign>(p, size, align);
}
#endif

#if LITE_C_NAMES
/* A program that caps its address space while it runs (setrlimit, prlimit): the cap is
 * applied to the arenas at once, giving back reserved space that other mappings (thread
 * stacks, libraries) need under it, before the program's next mmap can fail for want of
 * it.  The rest is the kernel's call. */
namespace {
int set_limit(pid_t pid, int resource, const struct rlimit *fresh, struct rlimit *old) {
    long r = syscall6(SYS_prlimit64, pid, resource, long(fresh), long(old), 0, 0);
    if (sys_failed(r)) {
        errno = int(-r);
        return -1;
    }
    if (fresh && resource == RLIMIT_AS && (pid == 0 || pid == syscall6(SYS_getpid, 0, 0, 0, 0, 0, 0)))
        commit_room(0, 0);
    return 0;
}
}  // namespace
LITE_API int setrlimit(__rlimit_resource_t resource, const struct rlimit *rl) __THROW {
    return set_limit(0, int(resource), rl, nullptr);
}
LITE_API int setrlimit64(__rlimit_resource_t resource, const struct rlimit64 *rl) __THROW {
    return set_limit(0, int(resource), reinterpret_cast<const struct rlimit *>(rl), nullptr);
}
LITE_API int prlimit(pid_t pid, enum __rlimit_resource resource, const struct rlimit *fresh, struct rlimit *old) __THROW {
    return set_limit(pid, int(resource), fresh, old);
}
LITE_API int prlimit64(pid_t pid, enum __rlimit_resource resource, const struct rlimit64 *fresh,
                       struct rlimit64 *old) __THROW {
    return set_limit(pid, int(resource), reinterpret_cast<const struct rlimit *>(fresh),
                     reinterpret_cast<struct rlimit *>(old));
}
#endif

#if LITE_C_NAMES
/* RTLD_DEEPBIND: a library opened with it looks symbols up in its own scope first, and
 * the C library is in that scope, so its malloc & co. are glibc's, not ours.  dlopen is
 * interposed: after a dlopen with RTLD_DEEPBIND, every object that call loaded has its
 * relocations for our entry points (jump slots, GOT entries and absolute pointers)
 * pointed back at ours, the read-only-after-relocation pages made writable for that and
 * read-only again.  What remains glibc's: blocks the library's constructors allocated
 * during dlopen itself, before the rebinding (free and realloc recognise them and hand
 * them to glibc: libc_usable above), and libraries opened with dlmopen (another
 * namespace, with a C library of its own: left alone).                              */
namespace {
struct Rebind {
    const char *name;
    void *ours;
};
#define LITE_REBIND(name) {#name, reinterpret_cast<void *>(&LITE_ALIAS(name))}
const Rebind kRebind[] = {
    LITE_REBIND(malloc), LITE_REBIND(free), LITE_REBIND(calloc), LITE_REBIND(realloc),
    LITE_REBIND(reallocarray), LITE_REBIND(memalign), LITE_REBIND(posix_memalign),
    LITE_REBIND(aligned_alloc), LITE_REBIND(valloc), LITE_REBIND(pvalloc),
    LITE_REBIND(malloc_usable_size), LITE_REBIND(free_sized), LITE_REBIND(free_aligned_sized),
};
#undef LITE_REBIND
struct Relro {  // an object's read-only-after-relocation range, found by dl_iterate_phdr
    uintptr_t base, lo, hi;
};
int find_relro(struct dl_phdr_info *info, size_t, void *arg) {
    auto *r = static_cast<Relro *>(arg);
    if (info->dlpi_addr != r->base) return 0;
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_GNU_RELRO) {
            r->lo = r->base + info->dlpi_phdr[i].p_vaddr;
            r->hi = r->lo + info->dlpi_phdr[i].p_memsz;
        }
    return 1;
}
void rebind_slot(uintptr_t slot, void *ours, const Relro &relro) {
    if (*reinterpret_cast<void **>(slot) == ours) return;
    uintptr_t page = slot & ~(kPage - 1);
    bool ro = slot >= relro.lo && slot < relro.hi;
    if (ro && !os_protect(reinterpret_cast<void *>(page), kPage, PROT_READ | PROT_WRITE)) return;
    *reinterpret_cast<void **>(slot) = ours;
    if (ro) os_protect(reinterpret_cast<void *>(page), kPage, PROT_READ);
}
void rebind_object(struct link_map *m) {
    uintptr_t base = m->l_addr, symtab = 0, strtab = 0, rel[2] = {0, 0};
    size_t relsz[2] = {0, 0};
    auto at = [&](uintptr_t v) { return v < base ? v + base : v; };  // (glibc relocates most d_ptr)
    for (ElfW(Dyn) *d = m->l_ld; d && d->d_tag != DT_NULL; d++) {
        switch (d->d_tag) {
        case DT_SYMTAB: symtab = at(d->d_un.d_ptr); break;
        case DT_STRTAB: strtab = at(d->d_un.d_ptr); break;
        case DT_JMPREL: rel[0] = at(d->d_un.d_ptr); break;
        case DT_PLTRELSZ: relsz[0] = d->d_un.d_val; break;
        case DT_RELA: rel[1] = at(d->d_un.d_ptr); break;
        case DT_RELASZ: relsz[1] = d->d_un.d_val; break;
        }
    }
    if (!symtab || !strtab) return;
    Relro relro = {base, 0, 0};
    dl_iterate_phdr(find_relro, &relro);
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; rel[k] && i < relsz[k] / sizeof(ElfW(Rela)); i++) {
            const ElfW(Rela) &r = reinterpret_cast<const ElfW(Rela) *>(rel[k])[i];
            unsigned type = unsigned(ELF64_R_TYPE(r.r_info)), sym = unsigned(ELF64_R_SYM(r.r_info));
            if (!sym || (type != R_X86_64_JUMP_SLOT && type != R_X86_64_GLOB_DAT && type != R_X86_64_64)) continue;
            const char *name = reinterpret_cast<const char *>(strtab) + reinterpret_cast<const ElfW(Sym) *>(symtab)[sym].st_name;
            for (const Rebind &b : kRebind)
                if (!strcmp(name, b.name)) rebind_slot(base + r.r_offset, b.ours, relro);
        }
}
unsigned long loads_so_far() {  // objects loaded since the process started
    unsigned long adds = 0;
    dl_iterate_phdr([](struct dl_phdr_info *info, size_t, void *arg) {
        *static_cast<unsigned long *>(arg) = info->dlpi_adds;
        return 1;
    }, &adds);
    return adds;
}
/* The objects the dlopen that returned `handle` loaded: the handle's own, and those after it
 * in the list of loaded objects (its dependencies, loaded with it), if it is new. */
void deepbind_rebind(void *handle, unsigned long adds_before) {
    struct link_map *m = nullptr;
    if (loads_so_far() == adds_before) return;  // nothing loaded: it was open already, bound as it was
    if (dlinfo(handle, RTLD_DI_LINKMAP, &m) != 0) return;
    for (; m; m = m->l_next) rebind_object(m);
}
}  // namespace
LITE_API void *dlopen(const char *file, int mode) __THROW {
    using DlOpen = void *(*)(const char *, int);
    static std::atomic<DlOpen> real{nullptr};
    DlOpen next = real.load(std::memory_order_acquire);
    if (!next) {
        next = reinterpret_cast<DlOpen>(dlsym(RTLD_NEXT, "dlopen"));
        if (!next) return nullptr;
        real.store(next, std::memory_order_release);
    }
    if (!(mode & RTLD_DEEPBIND)) return next(file, mode);
    unsigned long before = loads_so_far();
    void *handle = next(file, mode);
    if (handle) deepbind_rebind(handle, before);
    return handle;
}
#endif

#endif /* LITE_HAS_ALLOCATOR */

/* ---- C++ operator new and delete ------------------------------------------------------ */
#if LITE_CXX_OPERATORS
/* operator new: loop on the new-handler, then throw std::bad_alloc, as the standard says. */
#if LITE_WEAK_LIBSTDCXX
/* The shared library must not pull libstdc++ into C programs it is preloaded into: reach
 * the handful of libstdc++ functions weakly; a program calling operator new has them.
 * That includes the C++ runtime behind the one try/catch below (nothrow new must catch
 * a std::bad_alloc thrown by a new-handler); no exception can exist without libstdc++. */
__asm__(".weak __gxx_personality_v0\n.weak __cxa_begin_catch\n.weak __cxa_end_catch\n.weak _Unwind_Resume\n"
        ".weak _ZSt9terminatev");  // (clang's noexcept handler calls std::terminate)
extern "C" void *lite_cxx_get_new_handler() __asm__("_ZSt15get_new_handlerv") __attribute__((weak));
extern "C" void lite_cxx_throw_bad_alloc() __asm__("_ZSt17__throw_bad_allocv") __attribute__((weak, noreturn));
#else
extern "C" void *lite_cxx_get_new_handler() __asm__("_ZSt15get_new_handlerv");
extern "C" void lite_cxx_throw_bad_alloc() __asm__("_ZSt17__throw_bad_allocv") __attribute__((noreturn));
#endif
namespace {
typedef void (*lite_new_handler)();
#if LITE_HAS_ALLOCATOR  // the allocator is in this file: its fast paths inline here
inline void *cxx_malloc(size_t size) { return alloc(size); }
inline void cxx_free(void *p) { do_free<Foreign::kAbort>(p); }
#else
inline void *cxx_malloc(size_t size) { return lite_malloc(size); }
inline void cxx_free(void *p) { lite_free(p); }
#endif

COLD void *cxx_new_retry(size_t size, size_t align, bool nothrow) {
    for (;;) {
        void *p = align ? lite_aligned_alloc(align, size < align ? align : size) : cxx_malloc(size);
        if (p) return p;
        lite_new_handler handler = nullptr;
#if LITE_WEAK_LIBSTDCXX  // absent in a process without libstdc++
        if (&lite_cxx_get_new_handler)
#endif
            handler = reinterpret_cast<lite_new_handler>(lite_cxx_get_new_handler());
        if (!handler) {
            if (nothrow) return nullptr;
#if LITE_WEAK_LIBSTDCXX
            if (!&lite_cxx_throw_bad_alloc) abort();
#endif
            lite_cxx_throw_bad_alloc();
        }
        handler();
    }
}
#if LITE_HAS_ALLOCATOR
NOINLINE void *cxx_new_slow(size_t size) {
    void *p = alloc(size);
    return p ? p : cxx_new_retry(size, 0, false);
}
inline void *cxx_new(size_t size) {  // malloc's fast path, then a jump: no stack frame
    if (Block *b = alloc_fast(size)) return b;
    return cxx_new_slow(size);
}
#else
inline void *cxx_new(size_t size) {
    void *p = lite_malloc(size);
    return LIKELY(p != nullptr) ? p : cxx_new_retry(size, 0, false);
}
#endif
#if defined(__cpp_aligned_new)
inline void *cxx_new_aligned(size_t size, std::align_val_t align) {
    return cxx_new_retry(size, size_t(align), false);
}
#endif
inline void *cxx_new_nothrow(size_t size, size_t align) noexcept {
#if !defined(__cpp_exceptions)
    return cxx_new_retry(size, align, true);  // a handler that throws here would terminate
#else
    try { return cxx_new_retry(size, align, true); } catch (...) { return nullptr; }
#endif
}
}  // namespace

LITE_CXX_API void *operator new(size_t n) { return cxx_new(n); }
LITE_CXX_API void *operator new[](size_t n) { return cxx_new(n); }
LITE_CXX_API void *operator new(size_t n, const std::nothrow_t &) noexcept { return cxx_new_nothrow(n, 0); }
LITE_CXX_API void *operator new[](size_t n, const std::nothrow_t &) noexcept { return cxx_new_nothrow(n, 0); }
LITE_CXX_API void operator delete(void *p) noexcept { cxx_free(p); }
LITE_CXX_API void operator delete[](void *p) noexcept { cxx_free(p); }
LITE_CXX_API void operator delete(void *p, const std::nothrow_t &) noexcept { cxx_free(p); }
LITE_CXX_API void operator delete[](void *p, const std::nothrow_t &) noexcept { cxx_free(p); }
LITE_CXX_API void operator delete(void *p, size_t) noexcept { cxx_free(p); }
LITE_CXX_API void operator delete[](void *p, size_t) noexcept { cxx_free(p); }
#if defined(__cpp_aligned_new)  /* C++17 */
LITE_CXX_API void *operator new(size_t n, std::align_val_t a) { return cxx_new_aligned(n, a); }
LITE_CXX_API void *operator new[](size_t n, std::align_val_t a) { return cxx_new_aligned(n, a); }
LITE_CXX_API void *operator new(size_t n, std::align_val_t a, const std::nothrow_t &) noexcept {
    return cxx_new_nothrow(n, size_t(a));
}
LITE_CXX_API void *operator new[](size_t n, std::align_val_t a, const std::nothrow_t &) noexcept {
    return cxx_new_nothrow(n, size_t(a));
}
LITE_CXX_API void operator delete(void *p, std::align_val_t) noexcept { cxx_free(p); }
LITE_CXX_API void operator delete[](void *p, std::align_val_t) noexcept { cxx_free(p); }
LITE_CXX_API void operator delete(void *p, size_t, std::align_val_t) noexcept { cxx_free(p); }
LITE_CXX_API void operator delete[](void *p, size_t, std::align_val_t) noexcept { cxx_free(p); }
LITE_CXX_API void operator delete(void *p, std::align_val_t, const std::nothrow_t &) noexcept { cxx_free(p); }
LITE_CXX_API void operator delete[](void *p, std::align_val_t, const std::nothrow_t &) noexcept { cxx_free(p); }
#endif
#endif
