/*
 * lite-malloc: a lock-free drop-in malloc for multi-threaded servers on x86_64 Linux.
 * Copyright (C) 2026 the lite-malloc authors.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * How it works, in one paragraph.  Memory comes from large reserved arenas, carved into
 * superblocks aligned to their size, so the metadata of any block is found by masking its
 * address.  Each thread owns a heap: for every size class a list of superblocks, the first
 * of which serves malloc from a plain free list with no atomic instruction.  A free by the
 * owning thread pushes onto that list; a free by any other thread is a CAS push onto the
 * superblock's remote list, which the owner takes in one exchange when its free list runs
 * dry.  Full superblocks are not tracked at all: their owner lets go of them, and the first
 * remote free that lands on one puts it up for adoption.  Empty superblocks go to shared
 * pools ("engines") from which any thread and any size class reuse them.  Sizes above the
 * small limit are page-granular spans inside span-host superblocks, cached per page count;
 * above the medium limit, blocks are mapped directly.  No lock is taken anywhere.
 *
 * Sections, in layer order:
 *   1. configuration          5. size classes
 *   2. OS calls               6. superblocks: pools, adoption, remote frees
 *   3. lock-free primitives   7. per-thread heaps and the three engines (small/medium/large)
 *   4. address space          8. entry points
 */
#include "lite-malloc.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
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
#define LITE_API extern "C" __attribute__((visibility("default")))
#define LITE_CXX_API __attribute__((visibility("default")))
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define NOINLINE __attribute__((noinline))
#define COLD __attribute__((noinline, cold))

#if LITE_MALLOC_BUILD != 3 /* everything but the operator-only member */

namespace {

/* ===================================================================================== *
 * 1. Configuration: every derived constant in one place.
 * ===================================================================================== */
constexpr size_t kPage = 4096;
constexpr size_t kGrain = LITE_MALLOC_MIN_ALIGN;             // block spacing and alignment
static_assert(kGrain == 8 || kGrain == 16, "LITE_MALLOC_MIN_ALIGN must be 8 or 16");
constexpr size_t kSmallMax =                                   // largest small block
    (size_t(LITE_MALLOC_MINIBLOCK_CACHE_SIZE) * 8 + kGrain - 1) / kGrain * kGrain;
constexpr size_t kMediumPages = LITE_MALLOC_SUPERBLOCK_CACHE_SIZE;
constexpr size_t kMediumMax = kMediumPages * kPage;           // largest medium block
static_assert(kMediumPages >= 4 && kMediumPages <= 255, "SUPERBLOCK_CACHE_SIZE: 4..255");
static_assert(kSmallMax >= 16 && kSmallMax * 2 <= kMediumMax, "MINIBLOCK_CACHE_SIZE too big");
static_assert(LITE_MALLOC_ENGINES_COUNT >= 1 && LITE_MALLOC_ENGINES_COUNT <= 1024, "ENGINES");

constexpr unsigned log2_ceil(size_t n) { unsigned s = 0; while ((size_t(1) << s) < n) s++; return s; }
/* A superblock must hold the largest medium span plus its host header page(s).  256 KiB
 * keeps the tail waste of the biggest small classes near 3% (see the class table). */
constexpr unsigned kSbShift = log2_ceil((kMediumPages + 2) * kPage) > 18
                                  ? log2_ceil((kMediumPages + 2) * kPage) : 18;
constexpr size_t kSbSize = size_t(1) << kSbShift;
constexpr size_t kSbPages = kSbSize / kPage;
constexpr size_t kSbHeader = 128;                             // small superblock header
constexpr size_t kChunk = kSbSize > (4u << 20) ? kSbSize : (4u << 20);  // commit step
constexpr size_t kArenaMax = size_t(64) << 30;                // first reservation tried
constexpr size_t kMaxRequest = size_t(1) << 46;               // above: ENOMEM at once
constexpr size_t kExtendBytes = 4096;                         // fresh blocks threaded at once
constexpr size_t kLargeCacheSlots = 16;
constexpr size_t kLargeCacheMax = size_t(128) << 20;          // bytes of mappings kept
constexpr size_t kLargeCacheEntry = size_t(64) << 20;         // largest mapping kept
constexpr long kRetainDefault = LITE_MALLOC_RETAIN_MB < 0 ? -1 : long(LITE_MALLOC_RETAIN_MB) << 20;
constexpr unsigned kEngines = LITE_MALLOC_ENGINES_COUNT;

/* Run-time settings, read from the environment by the load-time constructor (getenv
 * never allocates).  Until then, and when a variable is absent, the defaults hold.
 *   LITE_MALLOC_RETAIN_MB=n   free memory kept backed by RAM (MiB); -1 keeps everything
 *   LITE_MALLOC_STATS=1       print a report on stderr when the process exits        */
struct Settings {
    long retain_bytes = kRetainDefault;
    bool show_stats = false;
} g_settings;

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
    long r = syscall6(SYS_mmap, long(hint), long(len), prot, flags | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return sys_failed(r) ? nullptr : reinterpret_cast<void *>(r);
}
void os_unmap(void *p, size_t len) { if (len) syscall6(SYS_munmap, long(p), long(len), 0, 0, 0, 0); }
bool os_protect(void *p, size_t len, int prot) {
    return !sys_failed(syscall6(SYS_mprotect, long(p), long(len), prot, 0, 0, 0));
}
void os_advise(void *p, size_t len, int advice) {
    if (len) syscall6(SYS_madvise, long(p), long(len), advice, 0, 0, 0);
}
void *os_remap(void *old, size_t old_len, size_t len, int flags, void *to) {
    long r = syscall6(SYS_mremap, long(old), long(old_len), long(len), flags, long(to), 0);
    return sys_failed(r) ? nullptr : reinterpret_cast<void *>(r);
}
#else
/* Under ThreadSanitizer the sanitizer must see memory being unmapped and mapped again,
 * or it takes the reuse of an address for a data race: go through libc there. */
void *os_map(void *hint, size_t len, int prot, int flags) {
    void *p = mmap(hint, len, prot, flags | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? nullptr : p;
}
void os_unmap(void *p, size_t len) { if (len) munmap(p, len); }
bool os_protect(void *p, size_t len, int prot) { return mprotect(p, len, prot) == 0; }
void os_advise(void *p, size_t len, int advice) { if (len) madvise(p, len, advice); }
void *os_remap(void *old, size_t old_len, size_t len, int flags, void *to) {
    // TSan does not see mremap free the old range, so a later mapping there would look
    // like a race with the old one's users: never move (callers then copy or map anew).
    if (flags & MREMAP_MAYMOVE) return nullptr;
    void *p = mremap(old, old_len, len, flags, to);
    return p == MAP_FAILED ? nullptr : p;
}
#endif
void os_write(const char *s, size_t n) { syscall6(SYS_write, 2, long(s), long(n), 0, 0, 0); }

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

inline size_t round_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }
inline bool is_pow2(size_t n) { return n && !(n & (n - 1)); }
inline void set_enomem() { errno = ENOMEM; }

/* ===================================================================================== *
 * 3. Lock-free primitives.  A Treiber stack whose head carries a full 64-bit version tag
 *    next to the pointer, swapped together by cmpxchg16b, so a node popped and pushed
 *    back between our read and our CAS (ABA) can never be mistaken for the old head.
 *    Nodes are never unmapped, so reading a stale node's link is always safe.
 * ===================================================================================== */
struct alignas(16) Tagged {
    uintptr_t ptr;
    uint64_t tag;
};

inline bool cas_tagged(Tagged *where, Tagged &expected, Tagged desired) {
#ifdef LITE_TSAN
    unsigned __int128 exp = (unsigned __int128)expected.tag << 64 | expected.ptr;
    unsigned __int128 des = (unsigned __int128)desired.tag << 64 | desired.ptr;
    bool ok = __atomic_compare_exchange_n(reinterpret_cast<unsigned __int128 *>(where), &exp, des,
                                          false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
    expected.ptr = uintptr_t(exp);
    expected.tag = uint64_t(exp >> 64);
    return ok;
#else
    bool ok;
    __asm__ volatile("lock cmpxchg16b %1"
                     : "=@ccz"(ok), "+m"(*where), "+a"(expected.ptr), "+d"(expected.tag)
                     : "b"(desired.ptr), "c"(desired.tag)
                     : "memory");
    return ok;
#endif
}

inline Tagged load_tagged(Tagged *where) {  // torn reads are fine: the CAS validates both
    Tagged t;
    t.tag = __atomic_load_n(&where->tag, __ATOMIC_ACQUIRE);
    t.ptr = __atomic_load_n(&where->ptr, __ATOMIC_ACQUIRE);
    return t;
}

/* LinkOf(node) returns the atomic word that holds a node's successor. */
template <class LinkOf>
struct TaggedStack {
    Tagged top{0, 0};

    void push(uintptr_t node) {
        Tagged old = load_tagged(&top);
        for (;;) {
            LinkOf()(node).store(old.ptr, std::memory_order_relaxed);
            if (cas_tagged(&top, old, Tagged{node, old.tag + 1})) return;
        }
    }
    uintptr_t pop() {
        Tagged old = load_tagged(&top);
        for (;;) {
            if (!old.ptr) return 0;
            uintptr_t next = LinkOf()(old.ptr).load(std::memory_order_relaxed);
            if (cas_tagged(&top, old, Tagged{next, old.tag + 1})) return old.ptr;
        }
    }
    bool empty() const { return __atomic_load_n(&top.ptr, __ATOMIC_RELAXED) == 0; }
};

/* Statistics counters: relaxed atomics touched on slow paths only, with their peak. */
struct Counter {
    std::atomic<long> v{0}, high{0};
    void add(long d) {
        long now = v.fetch_add(d, std::memory_order_relaxed) + d, top = high.load(std::memory_order_relaxed);
        while (now > top && !high.compare_exchange_weak(top, now, std::memory_order_relaxed)) {}
    }
    long get() const { return v.load(std::memory_order_relaxed); }
    long peak() const { return high.load(std::memory_order_relaxed); }
};
Counter g_mapped;  // everything taken from the OS: arenas' committed parts, large mappings, metadata

/* ===================================================================================== *
 * 4. Address space.
 *    - Metadata (heaps, ownership-map leaves, arena records) comes from a bump allocator
 *      over small private mappings and is never freed, so any stale pointer stays valid.
 *    - Arenas are large PROT_NONE reservations (no commit charge, one mapping each),
 *      made read-write in 4 MiB steps as superblocks are carved, so that a heap of many
 *      GiB stays a handful of mappings.  If a reservation fails (ulimit -v, no overcommit)
 *      we halve it and try again.
 *    - The ownership map answers "is this pointer ours?" in O(1) without touching the
 *      pointer's memory: one bit per superblock-sized slot of the address space, in a
 *      two-level table (1 GiB per leaf).
 * ===================================================================================== */
struct MetaPool { Tagged bump{0, 0}; } g_meta;  // ptr = next free byte, tag = end of chunk
Counter g_meta_bytes;

void *meta_alloc(size_t size) {  // zeroed, 64-byte aligned, never freed
    size = round_up(size, 64);
    for (;;) {
        Tagged cur = load_tagged(&g_meta.bump);
        if (cur.ptr && cur.ptr + size <= cur.tag) {
            if (cas_tagged(&g_meta.bump, cur, Tagged{cur.ptr + size, cur.tag}))
                return reinterpret_cast<void *>(cur.ptr);
            continue;
        }
        size_t len = round_up(size > (1u << 20) ? size : (1u << 20), kPage);
        char *fresh = static_cast<char *>(os_map(nullptr, len, PROT_READ | PROT_WRITE, 0));
        if (!fresh) return nullptr;
        if (cas_tagged(&g_meta.bump, cur, Tagged{uintptr_t(fresh) + size, uintptr_t(fresh) + len})) {
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
Leaf *table_leaf(std::atomic<Leaf *> *table, size_t words, uintptr_t addr, bool create) {
    auto &slot = table[addr >> 30];
    Leaf *leaf = slot.load(std::memory_order_acquire);
    if (!leaf && create) {
        auto *fresh = static_cast<Leaf *>(meta_alloc(words * 8));
        if (!fresh) return nullptr;
        leaf = slot.compare_exchange_strong(leaf, fresh, std::memory_order_acq_rel) ? fresh : leaf;
    }
    return leaf;
}

std::atomic<uint64_t> *owned_word(uintptr_t sb, bool create) {
    if (sb >> 47) return nullptr;
    Leaf *leaf = table_leaf(g_owned, kLeafWords, sb, create);
    return leaf ? &leaf[((sb >> kSbShift) / 64) % kLeafWords] : nullptr;
}
/* Beside the map, per superblock slot, the words that must outlive the superblock's own
 * memory (a superblock given back to the OS whole, header included, reads as zero):
 *   released   its link in the stack of superblocks given back to the OS;
 *   adopt      its link in its class's adoption stack;
 *   queued     1 while it sits in an adoption stack (at most one entry at a time).
 * Leaves are made when arena memory is committed, so a superblock always finds them. */
struct SideSlot {
    std::atomic<uintptr_t> released, adopt, queued, unused_;
};
constexpr size_t kSlotsPerLeaf = (size_t(1) << 30) / kSbSize;
std::atomic<Leaf *> g_side[size_t(1) << kMapTopBits];

SideSlot *side_of(uintptr_t sb, bool create = false) {
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

struct Arena {
    uintptr_t base;
    size_t size;
    std::atomic<size_t> carved{0};     // superblocks handed out: [base, base + carved)
    std::atomic<size_t> committed{0};  // read-write prefix: [base, base + committed)
    Arena *next;                       // list of all arenas, newest first
};
std::atomic<Arena *> g_arena{nullptr};       // the arena we carve from
std::atomic<Arena *> g_arena_list{nullptr};
std::atomic<size_t> g_arena_try{kArenaMax};  // size of the next reservation attempt
Counter g_committed;

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
} g_fast;
inline uintptr_t read_once(const uintptr_t &v) {
#ifdef LITE_TSAN
    return __atomic_load_n(&v, __ATOMIC_RELAXED);
#else
    return v;
#endif
}
inline bool in_fast_arena(uintptr_t a) { return ((a ^ read_once(g_fast.base)) & read_once(g_fast.mask)) == 0; }

Arena *reserve_arena() {
    size_t want = g_arena_try.load(std::memory_order_relaxed);
    struct rlimit rl;
    if (syscall6(SYS_prlimit64, 0, RLIMIT_AS, 0, long(&rl), 0, 0) == 0 && rl.rlim_cur != RLIM_INFINITY)
        while (want > kChunk && want > rl.rlim_cur / 4) want /= 2;
    for (; want >= kChunk; want /= 2) {
        // Readable, not writable: no commit charge, and stray reads find zeros.
        char *raw = static_cast<char *>(os_map(nullptr, 2 * want, PROT_READ, MAP_NORESERVE));
        if (!raw) continue;
        char *base = reinterpret_cast<char *>(round_up(uintptr_t(raw), want));
        if (base > raw) os_unmap(raw, size_t(base - raw));
        os_unmap(base + want, size_t(raw + want - base));
        // Sparse use of a huge reservation must never be promoted to 2 MiB pages.
        os_advise(base, want, MADV_NOHUGEPAGE);
        Arena *a = static_cast<Arena *>(meta_alloc(sizeof(Arena)));
        if (!a) { os_unmap(base, want); return nullptr; }
        a->base = uintptr_t(base);
        a->size = want;
        g_arena_try.store(want, std::memory_order_relaxed);
        return a;
    }
    return nullptr;
}

/* Make [base, base + upto) read-write; concurrent callers are harmless (mprotect is
 * idempotent) and the committed mark only grows. */
bool commit_arena(Arena *a, size_t upto) {
    size_t have = a->committed.load(std::memory_order_acquire);
    while (have < upto) {
        size_t target = round_up(upto, kChunk);
        if (target > a->size) target = a->size;
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

/* A fresh superblock from the arenas (zero-filled), or nullptr when memory is exhausted. */
Counter g_superblocks;
/* Replace the arena `seen` (null: there is none yet) with a fresh one, unless another
 * thread already did; false when no address space is left.  The load-time constructor
 * installs the first arena, so threads do not race to reserve 64 GiB each. */
bool add_arena(Arena *seen) {
    Arena *fresh = reserve_arena();
    if (!fresh) return g_arena.load(std::memory_order_acquire) != seen;
    if (!g_arena.compare_exchange_strong(seen, fresh, std::memory_order_acq_rel)) {
        os_unmap(reinterpret_cast<void *>(fresh->base), fresh->size);  // lost the race
        return true;
    }
    Arena *head = g_arena_list.load(std::memory_order_relaxed);
    do fresh->next = head;
    while (!g_arena_list.compare_exchange_weak(head, fresh, std::memory_order_release));
    if (!head) {  // the first arena: the fast path's
        __atomic_store_n(&g_fast.mask, ~(fresh->size - 1) | (kGrain - 1), __ATOMIC_RELAXED);
        __atomic_store_n(&g_fast.base, fresh->base, __ATOMIC_RELEASE);
    }
    return true;
}

void *carve_superblock() {
    for (;;) {
        Arena *a = g_arena.load(std::memory_order_acquire);
        if (a) {
            size_t off = a->carved.fetch_add(kSbSize, std::memory_order_relaxed);
            if (off + kSbSize <= a->size) {
                if (!commit_arena(a, off + kSbSize)) return nullptr;
                g_superblocks.add(1);
                return reinterpret_cast<void *>(a->base + off);
            }
        }
        if (!add_arena(a)) return nullptr;
    }
}

/* ===================================================================================== *
 * 5. Size classes.  16-byte steps up to 256 B; above, the classes are chosen so that a
 *    block's share of its superblock (class rounding plus the superblock's tail) never
 *    exceeds the request rounded up to 16 by more than 6%, with every power of two and
 *    three times a power of two kept as a class of its own.  The table is computed at
 *    compile time; a request finds its class with one byte load.
 * ===================================================================================== */
constexpr size_t kSbUsable = kSbSize - kSbHeader;
constexpr size_t kMaxClasses = 160;
constexpr size_t kIndexSlots = kSmallMax / kGrain + 1;

struct ClassTable {
    uint32_t size[kMaxClasses] = {};
    uint64_t divisor_magic[kMaxClasses] = {};  // n % size == 0  <=>  n * magic < magic
    uint32_t count = 0;
    uint8_t index[kIndexSlots] = {};  // slot = (request + grain - 1) / grain -> class
    uint16_t first_slot[kMaxClasses + 1] = {};  // a class's slots: [first_slot[c], first_slot[c + 1])
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
            for (size_t c = lo; c <= kSmallMax; c += kGrain) {
                // footprint of a block of class c, in units of 1/1000 of the request
                size_t per_block_x1000 = kSbSize * 1000 / (kSbUsable / c);
                if (per_block_x1000 <= lo * 1060) best = c;
                if (forced_class(c)) break;
            }
        }
        t.divisor_magic[t.count] = ~uint64_t(0) / best + 1;
        t.size[t.count++] = uint32_t(best);
        lo = best + kGrain;
    }
    size_t cls = 0;
    for (size_t slot = 0; slot < kIndexSlots; slot++) {
        while (t.size[cls] < slot * kGrain) t.first_slot[++cls] = uint16_t(slot);
        t.index[slot] = uint8_t(cls);
    }
    t.first_slot[t.count] = uint16_t(kIndexSlots);
    return t;
}
constexpr ClassTable kClasses = make_classes();
constexpr unsigned kNumClasses = kClasses.count;
static_assert(kNumClasses <= kMaxClasses && kNumClasses < 256, "too many size classes");
static_assert(kClasses.size[kNumClasses - 1] == kSmallMax, "class table must end at the limit");

inline size_t slot_of(size_t n) { return (n + kGrain - 1) / kGrain; }
inline unsigned class_of(size_t n) { return kClasses.index[slot_of(n)]; }

/* ===================================================================================== *
 * 6. Superblocks.
 *    kind tells what a superblock holds.  A small superblock's first cache line is its
 *    owner's (free list, bounds); the second is where other threads meet (the remote
 *    list and the pool link).
 *
 *    A small superblock is either OWNED by one heap, whose thread allocates from it (it is
 *    that heap's current superblock of its class: a heap owns no other), or DETACHED:
 *    nobody allocates from it, and every block that comes back is counted down in its
 *    remote word until the last one makes it empty, whereupon it goes to the pools at
 *    once, whoever freed that block.  So no memory waits on an owner that stopped
 *    allocating a size, went idle or exited: only one superblock per class per heap ever
 *    does.  A detached superblock with enough free blocks is LISTED for adoption by any
 *    heap that needs its class.
 * ===================================================================================== */
enum Kind : uint8_t { kUnused = 0, kSmall = 1, kSpanHost = 2, kLarge = 3, kPooled = 4 };

/* A free small block: the link, then (blocks of 16 bytes and more) a canary, the address
 * of its superblock's header, a value no block of ours ever has and a program cannot
 * meet by chance (a block's second word holds it only if the program computed our
 * header's address).  free() finds the canary in place only if the block is free
 * already, which catches every double free; malloc() wipes it. */
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
constexpr bool kCanary = kGrain >= 16;
/* free(): check the canary, then set it. */
inline bool freed_already_else_mark(const void *sb, Block *b) {
    if (!kCanary) return false;
    if (b->canary == uintptr_t(sb)) return true;
    b->canary = uintptr_t(sb);
    return false;
}
struct Heap;

/* The remote word: a list of blocks given back by threads other than the owner, its
 * length in the top 16 bits (user addresses fit in 47) and three flags in the low bits
 * (blocks are at least 8-byte aligned):
 *   DETACHED  no owner; the length counts every block back since it was detached
 *   LISTED    detached with enough free blocks to be worth adopting: in (or due in) an
 *             adoption stack
 *   EMPTIED   every block came back; taken for the pools (the word is just this flag)
 * An owned superblock's word has no flag. */
constexpr uintptr_t kDetached = 1, kListed = 2, kEmptied = 4, kFlags = 7;
constexpr unsigned kCountShift = 48;
constexpr uintptr_t kPtrMask = ((uintptr_t(1) << kCountShift) - 1) & ~kFlags;
constexpr uint32_t kMaxCapacity = 0xffff;
static_assert(kGrain >= 8, "the remote word keeps three flags in a block address's low bits");
inline uint32_t remote_count(uintptr_t r) { return uint32_t(r >> kCountShift); }
inline Block *remote_list(uintptr_t r) { return reinterpret_cast<Block *>(r & kPtrMask); }

struct Superblock {
    // line 0: the owner's, read by others
    Block *free;                 // the owner's free list
    Block *reserve;              // more free blocks of the owner's, taken when `free` runs dry
    std::atomic<Heap *> owner;   // the heap that allocates from it; null if none
    std::atomic<char *> bump;    // first block never handed out (others read it to validate)
    char *end;                   // end of the last whole block
    uint32_t block_size;
    uint32_t capacity;
    uint64_t magic;              // n % block_size == 0  <=>  n * magic < magic
    uint8_t kind;
    uint8_t size_class;
    uint8_t clean;               // all pages past the header are known to be zero
    // line 1: shared
    alignas(64) std::atomic<uintptr_t> remote;
    std::atomic<uintptr_t> link;  // next node in a pool stack
    uint32_t out;                 // detached: blocks out when it was detached
    uint32_t spare;               // detached: blocks free when it was detached
    char pad2_[40];
};
static_assert(sizeof(Superblock) == kSbHeader, "superblock header must stay two cache lines");

inline Superblock *header_of(const void *p) {  // p is never the first byte of its superblock
    return reinterpret_cast<Superblock *>((uintptr_t(p) - 1) & ~(kSbSize - 1));
}
inline char *blocks_start(Superblock *sb) { return reinterpret_cast<char *>(sb) + kSbHeader; }

struct SbLink {
    std::atomic<uintptr_t> &operator()(uintptr_t n) const { return reinterpret_cast<Superblock *>(n)->link; }
};
using SbStack = TaggedStack<SbLink>;

/* Engines: shared pools of empty superblocks, any class. */
struct alignas(64) Engine { SbStack stack; };
Engine g_engines[kEngines];
std::atomic<unsigned> g_engine_rr{0};

Counter g_pool_dirty, g_pool_clean;  // bytes of pooled superblocks, backed / released
Counter g_span_dirty, g_span_clean;  // same for cached medium spans
Counter g_medium_in_use, g_large_in_use, g_large_mapped, g_large_cached, g_heaps, g_threads_seen;
/* Free pages past the retain limit go back to the OS (the mapping stays). */
bool over_retain(long extra) {
    long retain = g_settings.retain_bytes;
    return retain >= 0 && g_pool_dirty.get() + g_span_dirty.get() + extra > retain;
}

unsigned pick_engine(unsigned home) {
    return LITE_MALLOC_USE_PERTHREAD_ENGINES ? home
                                             : g_engine_rr.fetch_add(1, std::memory_order_relaxed) % kEngines;
}

/* Superblocks given back to the OS whole wait here, linked through their side slots. */
struct ReleasedLink {
    std::atomic<uintptr_t> &operator()(uintptr_t n) const { return side_of(n)->released; }
};
TaggedStack<ReleasedLink> g_released;

/* An empty superblock goes to its engine's pool while the retain limit allows (its pages
 * stay backed, ready for reuse); otherwise, or when asked to release, its pages go back
 * to the OS, header and all, and it waits on the released stack. */
void pool_put(Superblock *sb, unsigned home, bool release = false) {
    sb->kind = kPooled;
    sb->owner.store(nullptr, std::memory_order_relaxed);
    if (release || over_retain(long(kSbSize))) {
        os_advise(sb, kSbSize, MADV_DONTNEED);  // kind reads kUnused from now on
        g_pool_clean.add(long(kSbSize));
        g_released.push(uintptr_t(sb));
        return;
    }
    g_pool_dirty.add(long(kSbSize));
    g_engines[pick_engine(home)].stack.push(uintptr_t(sb));
}

Superblock *pool_get(unsigned home) {
    unsigned first = pick_engine(home);
    for (unsigned i = 0; i < kEngines; i++) {
        auto *sb = reinterpret_cast<Superblock *>(g_engines[(first + i) % kEngines].stack.pop());
        if (sb) {
            g_pool_dirty.add(-long(kSbSize));
            sb->clean = 0;
            return sb;
        }
    }
    if (auto *sb = reinterpret_cast<Superblock *>(g_released.pop())) {
        g_pool_clean.add(-long(kSbSize));
        sb->clean = 1;
        return sb;
    }
    return nullptr;
}

/* ---- adoption: detached superblocks with free blocks, one stack per class ------------- *
 * The stacks link through the side slots, so an entry survives its superblock being
 * emptied, pooled, released or reused meanwhile: entries are hints, checked when popped.
 * A superblock has at most one entry at a time (its `queued` word), so no link is ever
 * written twice.                                                                        */
struct AdoptLink {
    std::atomic<uintptr_t> &operator()(uintptr_t n) const { return side_of(n)->adopt; }
};
TaggedStack<AdoptLink> g_adoptable[kNumClasses];

/* A detached superblock of class c became LISTED: make sure an adoption stack holds it.
 * (The caller read c before the CAS that listed it: from then on, the superblock may
 * be emptied and reused for another class at any moment; the popper then moves it.) */
void adopt_offer(Superblock *sb, unsigned c) {
    SideSlot *side = side_of(uintptr_t(sb));
    if (side->queued.exchange(1, std::memory_order_seq_cst)) return;  // its entry is waiting
    g_adoptable[c].push(uintptr_t(sb));
}

/* Blocks are worth adopting once this many are free: fewer would be used up at once. */
inline uint32_t adopt_threshold(const Superblock *sb) { return sb->capacity / 8 + 1; }

/* Give n blocks of sb (linked head..tail) back.  An owned superblock keeps them on its
 * remote list for its owner; a detached one counts them down, and the call that brings
 * the last one back sends it to the pools.  One CAS for the whole batch. */
void remote_give(Superblock *sb, Block *head, Block *tail, uint32_t n, unsigned home) {
    unsigned c = sb->size_class;  // stable until our blocks are back
    uintptr_t old = sb->remote.load(std::memory_order_acquire), fresh;
    bool offer;
    for (;;) {
        if (UNLIKELY(old & kEmptied)) fatal("free", "double free of", head);
        offer = false;
        uint32_t count = remote_count(old) + n;
        tail->set_next(remote_list(old));
        fresh = uintptr_t(head) | uintptr_t(count) << kCountShift | (old & kFlags);
        if (old & kDetached) {
            if (count >= sb->out) {
                if (count > sb->out) fatal("free", "double free of", head);
                fresh = kEmptied;
            } else if (!(old & kListed) && count + sb->spare >= adopt_threshold(sb)) {
                fresh |= kListed;
                offer = true;
            }
        }
        if (sb->remote.compare_exchange_weak(old, fresh, std::memory_order_acq_rel, std::memory_order_acquire))
            break;
    }
    if (fresh == kEmptied) pool_put(sb, home);
    else if (offer) adopt_offer(sb, c);
}

/* ===================================================================================== *
 * 7. Per-thread heaps and the three engines.
 * ===================================================================================== */
struct SpanHost;

/* The outbox: small blocks this thread freed into superblocks it does not own, held back
 * and sent per destination superblock, one CAS per batch (remote_give), instead of one
 * CAS per block on a line the destination's owner also writes.  One slot per size class
 * (blocks of a class freed in a row mostly share a superblock: the one their owner was
 * allocating from), holding blocks of one superblock at a time.  Bounds: a slot is sent
 * when it holds kOutboxBatch blocks or kOutboxBytes, or when another superblock needs
 * it; after every kOutboxSweep such sends, at the owner's next superblock change and at
 * thread exit, everything is sent.  A thread that
 * goes idle cannot send: other threads send its outbox for it (outbox_claim_idle), and
 * `busy`/`claim` keep the two from ever touching it at once without a lock: the owner
 * sets `busy` with an exchange (a full barrier) and then checks `claim`; a claimer sets
 * `claim` with a CAS and then checks `busy`.  Whoever looks second backs off (the owner
 * then frees its block with a CAS of its own).                                          */
constexpr uint32_t kOutboxBatch = 64;
constexpr size_t kOutboxBytes = 16 << 10;
constexpr uint32_t kOutboxSweep = 64;
constexpr unsigned kOutboxWords = (kNumClasses + 63) / 64;
struct OutboxSlot {
    Superblock *sb = nullptr;
    Block *head = nullptr, *tail = nullptr;
    uint32_t n = 0, limit = 0;
};
/* Only the owner, or a claimer while the owner is out, writes the fields below `claim`;
 * relaxed loads and stores suffice for them (no read-modify-write on the free path). */
struct Outbox {
    std::atomic<int> busy{0};             // the owning thread is inside
    std::atomic<int> claim{0};            // another thread is sending it
    std::atomic<uint64_t> puts{0};        // blocks ever put: changes with every use
    std::atomic<uint64_t> puts_seen{0};   // the count a passing claimer saw last time
    uint64_t swept_at = 0;                // puts at the last sweep
    std::atomic<uint64_t> used[kOutboxWords] = {};  // bit c: slot c holds blocks
    OutboxSlot slot[kNumClasses];
    constexpr explicit Outbox(int claimed) : claim(claimed) {}
};

struct Heap {
    // Hot: the superblock each request size allocates from, indexed by slot_of(size), so
    // malloc skips the size-class lookup; every slot of a class holds current[class].
    Superblock *by_slot[kIndexSlots];
    Superblock *current[kNumClasses];  // the one superblock of each class this heap owns
    SpanHost *span_host;               // medium spans are carved from here...
    uint32_t span_next;                // ...starting at this page
    unsigned engine;
    std::atomic<uintptr_t> link;       // in the stack of recycled heaps
    Heap *all_next;                    // the list of every heap ever made
    Outbox outbox;
    constexpr explicit Heap(bool bootstrap = false);
};

Superblock g_empty{};  // a superblock with nothing in it: what current[] holds for "none"
constexpr Heap::Heap(bool bootstrap)
    : by_slot{}, current{}, span_host(nullptr), span_next(0), engine(0), link(0), all_next(nullptr),
      outbox(bootstrap) {
    for (auto &c : current) c = &g_empty;
    for (auto &c : by_slot) c = &g_empty;
}
/* Threads start on this heap; its empty lists send the first malloc to the slow path,
 * which gives the thread a heap of its own, and its outbox, claimed for ever, sends the
 * first free of a block of another thread's there too. */
Heap g_bootstrap(true);

__thread Heap *tls_heap __attribute__((tls_model("initial-exec"))) = &g_bootstrap;
__thread bool tls_exited __attribute__((tls_model("initial-exec"))) = false;

struct HeapLink {
    std::atomic<uintptr_t> &operator()(uintptr_t n) const { return reinterpret_cast<Heap *>(n)->link; }
};
TaggedStack<HeapLink> g_free_heaps;
std::atomic<Heap *> g_all_heaps{nullptr};     // every heap ever made (they are never freed)
std::atomic<Heap *> g_idle_cursor{nullptr};   // the next heap outbox_claim_idle looks at
std::atomic<unsigned> g_heap_serial{0};
pthread_key_t g_exit_key;
std::atomic<int> g_exit_key_state{0};  // 0 none, 1 creating, 2 ready, 3 unavailable

void heap_release(Heap *h);

void on_thread_exit(void *arg) {
    Heap *h = static_cast<Heap *>(arg);
    if (tls_heap == h) {
        tls_heap = &g_bootstrap;
        tls_exited = true;  // later calls from other destructors use throw-away heaps
    }
    heap_release(h);
}

/* The thread-exit hook is a pthread key, created once (normally by the load-time
 * constructor below, before any thread exists).  A thread that races its creation is
 * never made to wait: its heap is then simply not released at its exit. */
bool make_exit_key() {
    int state = g_exit_key_state.load(std::memory_order_acquire);
    if (state == 0 && g_exit_key_state.compare_exchange_strong(state, 1)) {
        state = pthread_key_create(&g_exit_key, on_thread_exit) == 0 ? 2 : 3;
        g_exit_key_state.store(state, std::memory_order_release);
    }
    return state == 2;
}
/* A decimal number from the environment, without the C library's locale machinery. */
bool env_number(const char *name, long *out) {
    const char *v = getenv(name);
    if (!v || !*v) return false;
    bool neg = *v == '-';
    long n = 0;
    for (const char *c = v + neg; *c; c++) {
        if (*c < '0' || *c > '9' || n > (long(1) << 40)) return false;
        n = n * 10 + (*c - '0');
    }
    *out = neg ? -n : n;
    return true;
}

void print_report();
__attribute__((constructor)) void lite_malloc_init() {
    long n;
    if (env_number("LITE_MALLOC_RETAIN_MB", &n)) g_settings.retain_bytes = n < 0 ? -1 : n << 20;
    if (env_number("LITE_MALLOC_STATS", &n)) g_settings.show_stats = n > 0;
    if (!g_arena.load(std::memory_order_acquire)) add_arena(nullptr);
    make_exit_key();
}
__attribute__((destructor)) void lite_malloc_fini() {
    if (g_settings.show_stats) print_report();
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
    x = (x ^ (x >> 31)) * 0x7fb5d329728ea185;
    x = (x ^ (x >> 32)) * 0xd6e8feb86659fd93;
    uintptr_t key = (x ^ (x >> 32)) | 1, none = 0;
    g_fast.link_key.compare_exchange_strong(none, key, std::memory_order_acq_rel);
}

Heap *heap_acquire() {
    draw_secrets();
    Heap *h = reinterpret_cast<Heap *>(g_free_heaps.pop());
    if (!h) {
        h = static_cast<Heap *>(meta_alloc(sizeof(Heap)));
        if (!h) return nullptr;
        new (h) Heap();
        h->engine = g_heap_serial.fetch_add(1, std::memory_order_relaxed) % kEngines;
        g_heaps.add(1);
        Heap *head = g_all_heaps.load(std::memory_order_relaxed);
        do h->all_next = head;
        while (!g_all_heaps.compare_exchange_weak(head, h, std::memory_order_release));
    }
    return h;
}

/* First allocation of a thread: give it a heap and arrange for it to be handed back. */
Heap *heap_for_thread() {
    Heap *h = heap_acquire();
    if (!h) return nullptr;
    if (tls_exited) return h;  // the caller releases it after one allocation
    g_threads_seen.add(1);
    tls_heap = h;
    if (make_exit_key()) pthread_setspecific(g_exit_key, h);
    return h;
}

void set_current(Heap *h, unsigned c, Superblock *sb) {
    h->current[c] = sb;
    for (size_t i = kClasses.first_slot[c]; i < kClasses.first_slot[c + 1]; i++) h->by_slot[i] = sb;
}

/* ---- the outbox (see struct Outbox) ------------------------------------------------ */
inline bool outbox_holds(const Outbox &o) {
    for (auto &w : o.used)
        if (w.load(std::memory_order_relaxed)) return true;
    return false;
}
void outbox_send(Outbox &o, unsigned c, unsigned home) {
    OutboxSlot &s = o.slot[c];
    if (!s.sb) return;
    remote_give(s.sb, s.head, s.tail, s.n, home);
    s.sb = nullptr;
    std::atomic<uint64_t> &w = o.used[c / 64];
    w.store(w.load(std::memory_order_relaxed) & ~(uint64_t(1) << (c % 64)), std::memory_order_relaxed);
}
void outbox_send_all(Outbox &o, unsigned home) {
    for (unsigned i = 0; i < kOutboxWords; i++)
        while (uint64_t w = o.used[i].load(std::memory_order_relaxed)) outbox_send(o, i * 64 + unsigned(__builtin_ctzll(w)), home);
    o.swept_at = o.puts.load(std::memory_order_relaxed);
}

/* Enter the outbox as its owner; false when a claimer is sending it right now. */
inline bool outbox_enter(Outbox &o) {
    o.busy.exchange(1, std::memory_order_seq_cst);
    if (LIKELY(!o.claim.load(std::memory_order_seq_cst))) return true;
    o.busy.store(0, std::memory_order_release);
    return false;
}

/* Free b without an outbox: for a thread that has none yet (it gets one, if it may) or
 * whose outbox a claimer is sending right now. */
NOINLINE void outbox_put_slow(Heap *h, Superblock *sb, Block *b);

/* The rare steps of outbox_put, inside the outbox: the slot holds blocks of another
 * superblock (send them, start over with sb), or b fills the slot (send it).  These
 * count as the outbox's activity (`puts`), and every kOutboxSweep of them everything is
 * sent.  Then leave. */
NOINLINE void outbox_put_rare(Heap *h, Superblock *sb, Block *b) {
    Outbox &o = h->outbox;
    unsigned c = sb->size_class;
    OutboxSlot &s = o.slot[c];
    if (s.sb != sb) {
        outbox_send(o, c, h->engine);
        std::atomic<uint64_t> &w = o.used[c / 64];
        w.store(w.load(std::memory_order_relaxed) | uint64_t(1) << (c % 64), std::memory_order_relaxed);
        s.sb = sb;
        s.head = s.tail = nullptr;
        s.n = 0;
        s.limit = kOutboxBytes / sb->block_size < kOutboxBatch ? uint32_t(kOutboxBytes / sb->block_size) : kOutboxBatch;
    }
    b->set_next(s.head);
    s.head = b;
    if (!s.tail) s.tail = b;
    if (++s.n >= s.limit) outbox_send(o, c, h->engine);
    uint64_t puts = o.puts.load(std::memory_order_relaxed) + 1;
    o.puts.store(puts, std::memory_order_relaxed);
    if (puts - o.swept_at >= kOutboxSweep) outbox_send_all(o, h->engine);
    o.busy.store(0, std::memory_order_release);
}

/* Free b, a block of sb that heap h does not own, through h's outbox.  The common case
 * is a handful of plain stores; everything else is a tail call.  (The bootstrap heap's
 * outbox is claimed for ever, so a thread without a heap goes to outbox_put_slow.) */
inline void outbox_put(Heap *h, Superblock *sb, Block *b) {
    Outbox &o = h->outbox;
    if (UNLIKELY(!outbox_enter(o))) return outbox_put_slow(h, sb, b);
    OutboxSlot &s = o.slot[sb->size_class];
    if (UNLIKELY(s.sb != sb || s.n + 1 >= s.limit)) return outbox_put_rare(h, sb, b);
    b->set_next(s.head);
    s.head = b;
    s.n++;
    o.busy.store(0, std::memory_order_release);
}

NOINLINE void outbox_put_slow(Heap *h, Superblock *sb, Block *b) {
    if (h != &g_bootstrap) return remote_give(sb, b, b, 1, h->engine);  // being claimed
    if (tls_exited || !(h = heap_for_thread())) return remote_give(sb, b, b, 1, 0);
    outbox_put(h, sb, b);
}

/* The owner sends everything it holds (at its superblock changes and at thread exit). */
void outbox_flush(Heap *h) {
    Outbox &o = h->outbox;
    if (!outbox_holds(o) || !outbox_enter(o)) return;
    outbox_send_all(o, h->engine);
    o.busy.store(0, std::memory_order_release);
}

/* Send another heap's outbox on its owner's behalf, unless the owner is inside it. */
void outbox_claim(Heap *v, unsigned home) {
    Outbox &o = v->outbox;
    int none = 0;
    if (!outbox_holds(o) || !o.claim.compare_exchange_strong(none, 1, std::memory_order_seq_cst)) return;
    if (!o.busy.load(std::memory_order_seq_cst)) outbox_send_all(o, home);
    o.claim.store(0, std::memory_order_release);
}

/* Called by every heap at each superblock change: look at the next heap in turn, and if
 * its outbox holds blocks and has not been used since the last look, send it on its
 * owner's behalf.  So an idle thread's outbox is sent within two rounds of the heap list. */
void outbox_claim_idle(Heap *self) {
    Heap *v = g_idle_cursor.load(std::memory_order_acquire);
    Heap *next = v && v->all_next ? v->all_next : g_all_heaps.load(std::memory_order_acquire);
    if (!g_idle_cursor.compare_exchange_strong(v, next, std::memory_order_acq_rel) || !v || v == self) return;
    Outbox &o = v->outbox;
    if (!outbox_holds(o)) return;
    uint64_t puts = o.puts.load(std::memory_order_relaxed);
    if (o.puts_seen.exchange(puts, std::memory_order_relaxed) != puts) return;  // used lately
    outbox_claim(v, self->engine);
}

/* ---- small engine ------------------------------------------------------------------ */
void init_small(Superblock *sb, unsigned c, Heap *h) {
    uint32_t bs = kClasses.size[c];
    sb->kind = kSmall;
    sb->size_class = uint8_t(c);
    sb->block_size = bs;
    sb->magic = kClasses.divisor_magic[c];
    sb->capacity = uint32_t(kSbUsable / bs < kMaxCapacity ? kSbUsable / bs : kMaxCapacity);
    sb->free = sb->reserve = nullptr;
    sb->out = sb->spare = 0;
    sb->bump.store(blocks_start(sb), std::memory_order_relaxed);
    sb->end = blocks_start(sb) + size_t(sb->capacity) * bs;
    sb->clean = 0;  // its pages are about to be used
    sb->remote.store(0, std::memory_order_relaxed);
    sb->owner.store(h, std::memory_order_release);
}

/* Thread the next few never-used blocks onto the free list (pages are touched lazily). */
void extend(Superblock *sb) {
    size_t bs = sb->block_size;
    size_t n = kExtendBytes / bs ? kExtendBytes / bs : 1;
    char *first = sb->bump.load(std::memory_order_relaxed), *b = first;
    size_t left = size_t(sb->end - first) / bs;
    if (n > left) n = left;
    for (size_t i = 1; i < n; i++, b += bs) reinterpret_cast<Block *>(b)->set_next(reinterpret_cast<Block *>(b + bs));
    reinterpret_cast<Block *>(b)->set_next(sb->free);
    sb->free = reinterpret_cast<Block *>(first);
    sb->bump.store(first + n * bs, std::memory_order_relaxed);
}

/* Add a list of free blocks to the owner's: never a walk down a long list, whose every
 * block would be a cache miss (remote lists run to thousands of blocks). */
void take_list(Superblock *sb, Block *list) {
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
 * Another thread may be using the lists, so every link is checked to stay inside sb. */
__attribute__((no_sanitize("thread"))) uint32_t free_list_length(Superblock *sb) {
    uint32_t n = 0;
    uintptr_t lo = uintptr_t(blocks_start(sb)), hi = uintptr_t(sb->end), key = Block::key();
    Block *lists[2] = {sb->free, sb->reserve};
    for (Block *list : lists)
        for (uintptr_t b = uintptr_t(list); b && n < sb->capacity; b = reinterpret_cast<Block *>(b)->link ^ key, n++)
            if (b < lo || b >= hi) break;
    return n;
}

/* The owner h lets go of sb (see section 6).  Returns false, with sb still h's, when other
 * threads gave blocks back meanwhile: the caller collects them and carries on. */
bool detach(Superblock *sb, Heap *h) {
    uint32_t spare = free_list_length(sb) +
                     uint32_t((sb->end - sb->bump.load(std::memory_order_relaxed)) / sb->block_size);
    uint32_t out = sb->capacity - spare;
    sb->owner.store(nullptr, std::memory_order_release);
    if (out == 0 && !sb->remote.load(std::memory_order_acquire)) {
        pool_put(sb, h->engine);  // nothing out: nothing can come back
        return true;
    }
    sb->out = out;
    sb->spare = spare;
    unsigned c = sb->size_class;
    uintptr_t none = 0, state = kDetached | (spare >= adopt_threshold(sb) ? kListed : 0);
    if (!sb->remote.compare_exchange_strong(none, state, std::memory_order_acq_rel)) {
        sb->owner.store(h, std::memory_order_relaxed);
        return false;
    }
    if (state & kListed) adopt_offer(sb, c);
    return true;
}

/* A listed superblock of class c for h, or null.  Entries are hints (see adopt_offer):
 * the CAS from LISTED to owned decides, and one whose class changed is passed on. */
Superblock *adopt(Heap *h, unsigned c) {
    for (;;) {
        auto *sb = reinterpret_cast<Superblock *>(g_adoptable[c].pop());
        if (!sb) return nullptr;
        side_of(uintptr_t(sb))->queued.store(0, std::memory_order_seq_cst);
        uintptr_t w = sb->remote.load(std::memory_order_seq_cst);
        while ((w & kFlags) == (kDetached | kListed)) {
            if (!sb->remote.compare_exchange_weak(w, 0, std::memory_order_acq_rel, std::memory_order_acquire))
                continue;
            // Ours now: its fields are stable and those of its latest detachment.
            sb->owner.store(h, std::memory_order_relaxed);
            if (Block *list = remote_list(w)) take_list(sb, list);
            if (sb->size_class == c) return sb;
            while (!detach(sb, h)) collect_remote(sb);  // listed for another class: pass it on
            break;
        }
    }
}

/* An empty superblock nobody else owns: from the pools, else carved from an arena. */
Superblock *fresh_superblock(Heap *h) {
    if (Superblock *sb = pool_get(h->engine)) return sb;
    auto *sb = static_cast<Superblock *>(carve_superblock());
    if (sb) sb->clean = 1;
    return sb;
}

NOINLINE void *small_refill(Heap *h, unsigned c);

inline Block *take_block(Superblock *sb) {  // null when the owner's free list is empty
    Block *b = sb->free;
    if (LIKELY(b != nullptr)) {
        sb->free = b->next();
        if (kCanary) b->canary = 0;
    }
    return b;
}
inline void *small_alloc(Heap *h, unsigned c) {
    if (Block *b = take_block(h->current[c])) return b;
    return small_refill(h, c);
}
inline void *small_alloc_slot(Heap *h, size_t slot) {  // the malloc fast path
    if (Block *b = take_block(h->by_slot[slot])) return b;
    return small_refill(h, kClasses.index[slot]);
}

void *small_refill_owned(Heap *h, unsigned c) {
    Superblock *sb = h->current[c];
    if (sb != &g_empty) {
        for (;;) {
            if (!sb->free) std::swap(sb->free, sb->reserve);
            if (!sb->free) collect_remote(sb);
            if (!sb->free && sb->bump.load(std::memory_order_relaxed) < sb->end) extend(sb);
            if (sb->free) return small_alloc(h, c);
            if (detach(sb, h)) break;  // used up: let go of it
        }
        set_current(h, c, &g_empty);
    }
    // A superblock change: the moment to send what the outbox holds, and to look at
    // another heap's.
    outbox_flush(h);
    outbox_claim_idle(h);
    sb = adopt(h, c);
    if (!sb) {
        sb = fresh_superblock(h);
        if (!sb) { set_enomem(); return nullptr; }
        init_small(sb, c, h);
    }
    set_current(h, c, sb);
    return small_alloc(h, c);
}

NOINLINE void *small_refill(Heap *h, unsigned c) {
    if (h != &g_bootstrap) return small_refill_owned(h, c);
    h = heap_for_thread();
    if (!h) { set_enomem(); return nullptr; }
    void *p = small_refill_owned(h, c);
    if (tls_exited) heap_release(h);  // a thread past its exit: hand everything back now
    return p;
}

/* ---- medium engine: page-granular spans inside span-host superblocks --------------- *
 * A span host's first page(s) hold, per page, the size and state of the span starting
 * there and the link used when that span sits in a cache.  Freed spans are cached per
 * page count in shared lock-free stacks; they are never merged, but a larger cached span
 * is split when no span of the wanted size is cached.                                   */
enum SpanState : uint8_t { kSpanNone = 0, kSpanFreeDirty = 1, kSpanFreeClean = 2, kSpanLive = 3 };

struct SpanHost {
    Superblock common;  // kind = kSpanHost; owner always null
    uint16_t pages[kSbPages];
    std::atomic<uint8_t> state[kSbPages];
    std::atomic<uintptr_t> link[kSbPages];
};
constexpr size_t kHostHeaderPages = (sizeof(SpanHost) + kPage - 1) / kPage;
constexpr size_t kHostPages = kSbPages - kHostHeaderPages;  // pages available for spans
static_assert(kHostPages >= kMediumPages, "a span host must fit the largest span");

inline SpanHost *host_of(uintptr_t span) { return reinterpret_cast<SpanHost *>(span & ~(kSbSize - 1)); }
inline size_t page_index(uintptr_t span) { return (span & (kSbSize - 1)) / kPage; }

struct SpanLink {
    std::atomic<uintptr_t> &operator()(uintptr_t s) const { return host_of(s)->link[page_index(s)]; }
};
TaggedStack<SpanLink> g_span_cache[kMediumPages + 1];  // index: page count

void span_cache_put(uintptr_t span, size_t pages, bool clean, bool release = false) {
    if (pages > kMediumPages) {  // a host's leftover can be longer than any cached size
        span_cache_put(span + kMediumPages * kPage, pages - kMediumPages, clean, release);
        pages = kMediumPages;
    }
    SpanHost *host = host_of(span);
    size_t i = page_index(span);
    host->pages[i] = uint16_t(pages);
    if (!clean && (release || over_retain(long(pages * kPage)))) {
        os_advise(reinterpret_cast<void *>(span), pages * kPage, MADV_DONTNEED);
        clean = true;
    }
    host->state[i].store(clean ? kSpanFreeClean : kSpanFreeDirty, std::memory_order_relaxed);
    (clean ? g_span_clean : g_span_dirty).add(long(pages * kPage));
    g_span_cache[pages].push(span);
}

uintptr_t span_cache_take(size_t pages, bool *clean) {
    for (size_t k = pages; k <= kMediumPages; k++) {
        uintptr_t span = g_span_cache[k].pop();
        if (!span) continue;
        SpanHost *host = host_of(span);
        size_t i = page_index(span);
        *clean = host->state[i].load(std::memory_order_relaxed) == kSpanFreeClean;
        (*clean ? g_span_clean : g_span_dirty).add(-long(k * kPage));
        if (k > pages) span_cache_put(span + pages * kPage, k - pages, *clean);
        host->pages[i] = uint16_t(pages);
        return span;
    }
    return 0;
}

/* Carve a span from the heap's current host, opening a new host when it runs out. */
uintptr_t span_carve(Heap *h, size_t pages, bool *clean) {
    SpanHost *host = h->span_host;
    if (!host || h->span_next + pages > kSbPages) {
        if (host && h->span_next < kSbPages)  // hand the leftover pages to the cache
            span_cache_put(uintptr_t(host) + h->span_next * kPage, kSbPages - h->span_next,
                           host->common.clean);
        auto *sb = fresh_superblock(h);
        if (!sb) return 0;
        bool fresh_clean = sb->clean;
        host = reinterpret_cast<SpanHost *>(sb);
        // An empty page map; the header's atomics are stored, not memset, since the
        // statistics walker may be reading them.
        memset(static_cast<void *>(host->pages), 0,
               size_t(reinterpret_cast<char *>(host + 1) - reinterpret_cast<char *>(host->pages)));
        host->common.kind = kSpanHost;
        host->common.clean = fresh_clean;
        host->common.owner.store(nullptr, std::memory_order_relaxed);
        host->common.remote.store(0, std::memory_order_relaxed);
        h->span_host = host;
        h->span_next = uint32_t(kHostHeaderPages);
    }
    uintptr_t span = uintptr_t(host) + h->span_next * kPage;
    h->span_next += uint32_t(pages);
    host->pages[page_index(span)] = uint16_t(pages);
    *clean = host->common.clean;
    return span;
}

void *medium_alloc(Heap *h, size_t size, bool *clean) {
    size_t pages = (size + kPage - 1) / kPage;
    uintptr_t span = span_cache_take(pages, clean);
    if (!span) {
        if (h == &g_bootstrap) {
            h = heap_for_thread();
            if (!h) { set_enomem(); return nullptr; }
        }
        span = span_carve(h, pages, clean);
        if (tls_exited) heap_release(h);
        if (!span) { set_enomem(); return nullptr; }
    }
    host_of(span)->state[page_index(span)].store(kSpanLive, std::memory_order_release);
    g_medium_in_use.add(long(pages * kPage));
    return reinterpret_cast<void *>(span);
}

/* The span that starts at p, or 0 when p is not the start of a live span. */
size_t live_span_pages(const void *p) {
    uintptr_t s = uintptr_t(p);
    if (s & (kPage - 1) || page_index(s) < kHostHeaderPages) return 0;
    SpanHost *host = host_of(s);
    size_t i = page_index(s);
    return host->state[i].load(std::memory_order_acquire) == kSpanLive ? host->pages[i] : 0;
}

void medium_free(void *p, const char *op) {
    uintptr_t s = uintptr_t(p);
    if (s & (kPage - 1) || page_index(s) < kHostHeaderPages) fatal(op, "invalid pointer", p);
    SpanHost *host = host_of(s);
    size_t i = page_index(s);
    uint8_t live = kSpanLive;
    if (!host->state[i].compare_exchange_strong(live, kSpanFreeDirty, std::memory_order_acq_rel))
        fatal(op, live == kSpanNone ? "invalid pointer" : "double free of", p);
    size_t pages = host->pages[i];
    g_medium_in_use.add(-long(pages * kPage));
    span_cache_put(s, pages, false);
}

/* ---- large engine: direct mappings --------------------------------------------------- *
 * Each mapping starts with a header page on a superblock boundary; the block follows at
 * the alignment asked for.  A few recently freed mappings are kept (pages still backed),
 * so a program that frees and reallocates big buffers in a loop does not fault every
 * page in again each time.                                                              */
struct LargeHeader {
    Superblock common;  // kind = kLarge
    size_t map_len;     // the mapping is [this, this + map_len)
    char *user;         // the block handed out
    std::atomic<int> live;
};
/* A slot holds {header, mapping length}, swapped together: a thread looking for a fit
 * never reads a header that another thread may be unmapping. */
Tagged g_large_cache[kLargeCacheSlots];
std::atomic<unsigned> g_large_cache_rr{0};

size_t large_usable(LargeHeader *hdr) { return size_t(reinterpret_cast<char *>(hdr) + hdr->map_len - hdr->user); }

void large_unmap(LargeHeader *hdr) {
    size_t len = hdr->map_len;
    mark_owned(uintptr_t(hdr), kSbSize, false);
    g_large_mapped.add(-long(len));
    g_mapped.add(-long(len));
    os_unmap(hdr, len);
}

/* Swap a cache slot's content for `to`; returns the header that was there (or null). */
LargeHeader *large_cache_swap(Tagged &slot, Tagged to) {
    Tagged old = load_tagged(&slot);
    while (!cas_tagged(&slot, old, to)) {}
    if (old.ptr) g_large_cached.add(-long(old.tag));
    return reinterpret_cast<LargeHeader *>(old.ptr);
}

/* Map a region of `len` bytes whose start is `align`-aligned (align >= kSbSize). */
char *map_aligned(size_t len, size_t align) {
    char *raw = static_cast<char *>(os_map(nullptr, len + align, PROT_READ | PROT_WRITE, 0));
    if (!raw) return nullptr;
    char *start = reinterpret_cast<char *>(round_up(uintptr_t(raw), align));
    os_unmap(raw, size_t(start - raw));
    os_unmap(start + len, size_t(raw + align - start));
    return start;
}

void large_cache_put(LargeHeader *hdr);

/* Cut a mapping taken from the cache in two at `keep` (a multiple of the superblock size,
 * so the tail starts on a boundary where its own header can sit); the tail goes back to
 * the cache.  The kernel does not care: munmap works on any page range. */
void large_split(LargeHeader *hdr, size_t keep) {
    auto *tail = reinterpret_cast<LargeHeader *>(reinterpret_cast<char *>(hdr) + keep);
    if (!mark_owned(uintptr_t(tail), kSbSize, true)) return;  // keep it whole
    tail->common.kind = kLarge;
    tail->map_len = hdr->map_len - keep;
    tail->user = nullptr;
    tail->live.store(0, std::memory_order_relaxed);
    hdr->map_len = keep;
    large_cache_put(tail);
}

/* Make a large mapping `need` bytes long, in place or by moving its pages (never copying);
 * returns the (maybe moved) header, or null with the mapping untouched. */
LargeHeader *large_remap(LargeHeader *hdr, size_t need) {
    size_t old_len = hdr->map_len;
    char *start = reinterpret_cast<char *>(hdr);
    if (need < old_len) {  // shrink in place
        os_unmap(start + need, old_len - need);
    } else if (!os_remap(start, old_len, need, 0, nullptr)) {  // could not grow in place
        char *target = map_aligned(need, kSbSize);
        if (!target) return nullptr;
        // Unmark the old place before mremap frees it: afterwards another thread may
        // already have mapped (and marked) a block of its own there.
        if (!mark_owned(uintptr_t(target), kSbSize, true)) { os_unmap(target, need); return nullptr; }
        mark_owned(uintptr_t(start), kSbSize, false);
        if (!os_remap(start, old_len, need, MREMAP_MAYMOVE | MREMAP_FIXED, target)) {
            mark_owned(uintptr_t(start), kSbSize, true);
            mark_owned(uintptr_t(target), kSbSize, false);
            os_unmap(target, need);
            return nullptr;
        }
        hdr = reinterpret_cast<LargeHeader *>(target);
    }
    hdr->map_len = need;
    g_large_mapped.add(long(need) - long(old_len));
    g_mapped.add(long(need) - long(old_len));
    return hdr;
}

/* A cached mapping for `need` bytes, faulting in as few fresh pages as possible: the
 * smallest that fits (cut down when it is more than twice too big), else the biggest
 * one, grown with mremap so that only the added pages are new. */
LargeHeader *large_cache_take(size_t need) {
    for (int attempt = 0; attempt < 4; attempt++) {
        Tagged *fit = nullptr, *grow = nullptr;
        Tagged fit_t{0, 0}, grow_t{0, 0};
        for (auto &slot : g_large_cache) {
            Tagged t = load_tagged(&slot);
            if (!t.ptr) continue;
            if (t.tag >= need && (!fit || t.tag < fit_t.tag)) { fit = &slot; fit_t = t; }
            if (t.tag < need && (!grow || t.tag > grow_t.tag)) { grow = &slot; grow_t = t; }
        }
        Tagged *slot = fit ? fit : grow;
        Tagged t = fit ? fit_t : grow_t;
        if (!slot) return nullptr;
        if (!cas_tagged(slot, t, Tagged{0, 0})) continue;  // somebody else took it: look again
        g_large_cached.add(-long(t.tag));
        auto *hdr = reinterpret_cast<LargeHeader *>(t.ptr);
        if (!fit) {
            if (LargeHeader *grown = large_remap(hdr, need)) return grown;
            large_cache_put(hdr);
            return nullptr;
        }
        if (t.tag > 2 * need + kSbSize) large_split(hdr, round_up(need, kSbSize));
        return hdr;
    }
    return nullptr;
}

/* Keep a freed mapping (up to the retain limit, and never more than kLargeCacheMax). */
void large_cache_put(LargeHeader *hdr) {
    // First merge with cached neighbours (pieces cut from the same mapping), so that cut
    // mappings grow back whole instead of fragmenting the cache.
    for (bool merged = true; merged;) {
        merged = false;
        for (auto &slot : g_large_cache) {
            Tagged t = load_tagged(&slot);
            uintptr_t me = uintptr_t(hdr);
            if (!t.ptr || (t.ptr + t.tag != me && me + hdr->map_len != t.ptr)) continue;
            if (hdr->map_len + t.tag > kLargeCacheEntry || !cas_tagged(&slot, t, Tagged{0, 0})) continue;
            g_large_cached.add(-long(t.tag));
            auto *other = reinterpret_cast<LargeHeader *>(t.ptr);
            LargeHeader *low = t.ptr < me ? other : hdr, *high = t.ptr < me ? hdr : other;
            low->map_len += high->map_len;
            mark_owned(uintptr_t(high), kSbSize, false);
            hdr = low;
            merged = true;
        }
    }
    size_t len = hdr->map_len;
    long retain = g_settings.retain_bytes, limit = retain < 0 || retain > long(kLargeCacheMax)
                                                      ? long(kLargeCacheMax) : retain;
    if (len <= kLargeCacheEntry && g_large_cached.get() + long(len) <= limit) {
        g_large_cached.add(long(len));
        Tagged mine{uintptr_t(hdr), len};
        for (auto &slot : g_large_cache) {
            Tagged t = load_tagged(&slot);
            if (!t.ptr && cas_tagged(&slot, t, mine)) return;
        }
        // every slot taken: replace one in turn and drop the mapping it held
        unsigned i = g_large_cache_rr.fetch_add(1, std::memory_order_relaxed) % kLargeCacheSlots;
        hdr = large_cache_swap(g_large_cache[i], mine);
        if (!hdr) return;
    }
    large_unmap(hdr);
}

void *large_alloc(size_t size, size_t align, bool *clean) {
    // The header sits on the superblock boundary just below the block.
    size_t offset = align <= kPage ? kPage : align <= kSbSize ? align : kSbSize;
    size_t need = round_up(offset + size, kPage);
    LargeHeader *hdr = nullptr;
    *clean = false;
    if (align <= kPage) hdr = large_cache_take(need);
    if (!hdr) {
        char *start;
        if (align <= kSbSize) {
            start = map_aligned(need, kSbSize);
        } else {  // the block is align-aligned, the header one superblock below it
            char *region = map_aligned(need - kSbSize + align, kSbSize);
            if (!region) return nullptr;
            char *block = reinterpret_cast<char *>(round_up(uintptr_t(region) + kSbSize, align));
            start = block - kSbSize;
            os_unmap(region, size_t(start - region));
            os_unmap(start + need, size_t(region + need - kSbSize + align - (start + need)));
        }
        if (!start) return nullptr;
        if (!mark_owned(uintptr_t(start), kSbSize, true)) { os_unmap(start, need); return nullptr; }
        hdr = reinterpret_cast<LargeHeader *>(start);
        hdr->common.kind = kLarge;
        hdr->map_len = need;
        g_large_mapped.add(long(need));
        g_mapped.add(long(need));
        *clean = true;
    }
    hdr->user = reinterpret_cast<char *>(hdr) + offset;
    hdr->live.store(1, std::memory_order_release);
    g_large_in_use.add(long(large_usable(hdr)));
    return hdr->user;
}

LargeHeader *live_large(const void *p) {
    auto *hdr = reinterpret_cast<LargeHeader *>(header_of(p));
    return hdr->user == p && hdr->live.load(std::memory_order_acquire) ? hdr : nullptr;
}

void large_free(void *p, const char *op) {
    auto *hdr = reinterpret_cast<LargeHeader *>(header_of(p));
    if (hdr->user != p) fatal(op, "invalid pointer", p);
    if (hdr->live.exchange(0, std::memory_order_acq_rel) != 1) fatal(op, "double free of", p);
    g_large_in_use.add(-long(large_usable(hdr)));
    large_cache_put(hdr);
}

/* Grow or shrink a large block, moving its pages rather than copying them. */
void *large_resize(void *p, size_t size) {
    auto *hdr = reinterpret_cast<LargeHeader *>(header_of(p));
    size_t offset = size_t(hdr->user - reinterpret_cast<char *>(hdr));
    if (offset != kPage) return nullptr;  // aligned blocks: let the caller copy
    size_t old_usable = large_usable(hdr);
    hdr = large_remap(hdr, round_up(offset + size, kPage));
    if (!hdr) return nullptr;
    hdr->user = reinterpret_cast<char *>(hdr) + offset;
    g_large_in_use.add(long(large_usable(hdr)) - long(old_usable));
    return hdr->user;
}

/* ---- a heap handed back: at thread exit, or after one allocation past it ------------ */
void heap_release(Heap *h) {
    for (unsigned c = 0; c < kNumClasses; c++) {
        Superblock *sb = h->current[c];
        if (sb == &g_empty) continue;
        set_current(h, c, &g_empty);
        do collect_remote(sb);
        while (!detach(sb, h));
    }
    outbox_flush(h);
    if (h->span_host && h->span_next < kSbPages)
        span_cache_put(uintptr_t(h->span_host) + h->span_next * kPage, kSbPages - h->span_next,
                       h->span_host->common.clean);
    h->span_host = nullptr;
    h->span_next = 0;
    g_free_heaps.push(uintptr_t(h));
}

/* ---- dispatch by size ---------------------------------------------------------------- */
NOINLINE void *alloc_big(size_t size, size_t align, bool *clean) {
    if (UNLIKELY(size > kMaxRequest)) { set_enomem(); return nullptr; }
    if (size <= kMediumMax && align <= kPage) return medium_alloc(tls_heap, size, clean);
    void *p = large_alloc(size, align, clean);
    if (!p) set_enomem();
    return p;
}

NOINLINE void *alloc_not_small(size_t size) {  // out of line: malloc needs no stack frame
    bool clean;
    return alloc_big(size, 0, &clean);
}
inline void *alloc(size_t size) {
    if (LIKELY(size <= kSmallMax)) return small_alloc_slot(tls_heap, slot_of(size));
    return alloc_not_small(size);
}

void *alloc_aligned(size_t align, size_t size) {
    if (align <= kGrain) return alloc(size);
    if (size <= kSmallMax && align <= kSbHeader) {  // a class whose blocks fall on the alignment
        for (unsigned c = class_of(size); c < kNumClasses; c++)
            if (kClasses.size[c] % align == 0) return small_alloc(tls_heap, c);
    }
    bool clean;
    return alloc_big(size < kPage ? kPage : size, align, &clean);
}

/* Ownership: which engine a pointer belongs to, if any, without touching foreign memory. */
Superblock *owner_superblock(const void *p) {  // null when p cannot be one of our blocks
    if (!p) return nullptr;
    Superblock *sb = header_of(p);
    return in_fast_arena(uintptr_t(sb)) || is_owned_slot(uintptr_t(sb)) ? sb : nullptr;
}

bool small_block_ok(Superblock *sb, const void *p) {  // the start of a block handed out
    const char *q = static_cast<const char *>(p);
    return q >= blocks_start(sb) && q < sb->bump.load(std::memory_order_relaxed) &&
           uint64_t(q - blocks_start(sb)) * sb->magic < sb->magic;  // a multiply, not a divide
}

enum class Foreign { kAbort, kForward };

/* A small block goes back on its owner's free list: the caller is the owner. */
inline void free_local(Superblock *sb, Block *b, const char *op) {
    if (UNLIKELY(freed_already_else_mark(sb, b))) fatal(op, "double free of", b);
    b->set_next(sb->free);
    sb->free = b;
}

/* A small block of a superblock this thread does not own: checked, then sent through
 * the thread's outbox. */
void free_small_foreign(Superblock *sb, void *p, const char *op) {
    auto *b = static_cast<Block *>(p);
    if (!small_block_ok(sb, p)) fatal(op, "invalid pointer", p);
    if (freed_already_else_mark(sb, b)) fatal(op, "double free of", p);
    outbox_put(tls_heap, sb, b);
}

/* Free of anything but a small block owned by this thread.  Returns false for a pointer
 * that is not ours (the caller forwards it or aborts). */
NOINLINE bool free_slow(void *p, const char *op) {
    Superblock *sb = owner_superblock(p);
    if (!sb) return false;
    switch (sb->kind) {
    case kSmall:
        if (sb->owner.load(std::memory_order_relaxed) != tls_heap) {
            free_small_foreign(sb, p, op);
        } else {  // ours, outside the fast range
            if (!small_block_ok(sb, p)) fatal(op, "invalid pointer", p);
            free_local(sb, static_cast<Block *>(p), op);
        }
        return true;
    case kSpanHost: medium_free(p, op); return true;
    case kLarge: large_free(p, op); return true;
    default: fatal(op, "invalid pointer (or double free)", p);
    }
    return true;
}

/* A block in the first arena that is not a small block of this thread's.  The common
 * case, a small block of another superblock, goes straight to the outbox without the
 * general slow path's questions. */
NOINLINE void free_remote(Superblock *sb, void *p, const char *op) {
    if (sb->kind != kSmall) {
        free_slow(p, op);  // (never false here: the first arena is ours)
        return;
    }
    free_small_foreign(sb, p, op);
}

/* The free fast path, for a grain-aligned pointer inside the first arena: a small block
 * of this thread's goes back on its superblock's free list. */
inline void free_in_fast_arena(void *p, const char *op) {
    Superblock *sb = reinterpret_cast<Superblock *>(uintptr_t(p) & ~(kSbSize - 1));
    if (UNLIKELY(sb->owner.load(std::memory_order_relaxed) != tls_heap)) return free_remote(sb, p, op);
    free_local(sb, static_cast<Block *>(p), op);
}

/* Size of the block at p (0 if p is not the start of a live block of ours). */
size_t block_usable(const void *p) {
    Superblock *sb = owner_superblock(p);
    if (!sb) return 0;
    switch (sb->kind) {
    case kSmall: return small_block_ok(sb, p) ? sb->block_size : 0;
    case kSpanHost: return live_span_pages(p) * kPage;
    case kLarge: { LargeHeader *hdr = live_large(p); return hdr ? large_usable(hdr) : 0; }
    default: return 0;
    }
}

/* realloc for a block known to be ours; returns null (errno ENOMEM) and leaves p alone
 * when the new size cannot be had. */
void *realloc_ours(void *p, size_t size, size_t usable) {
    if (UNLIKELY(size > kMaxRequest)) { set_enomem(); return nullptr; }
    // Stay in place while the block fits and is not more than twice too big.
    if (size <= usable && (size >= usable / 2 || usable <= kSbHeader)) return p;
    Superblock *sb = header_of(p);
    if (sb->kind == kLarge && size > kMediumMax) {
        if (void *q = large_resize(p, size)) return q;
    }
    void *q = alloc(size);
    if (!q) return nullptr;
    memcpy(q, p, size < usable ? size : usable);
    if (in_fast_arena(uintptr_t(p))) free_in_fast_arena(p, "realloc");
    else free_slow(p, "realloc");
    return q;
}

/* ---- statistics and trimming ------------------------------------------------------- */
/* Blocks in use per small class, found by walking every carved superblock header: a
 * detached superblock counts down in its remote word; an owned one has handed out the
 * blocks below its bump pointer, less its free list and its remote list.  Blocks held in
 * outboxes are freed already.  Other threads' fields are read racily (a report, not a
 * synchronisation point): the figures are exact when the other threads are not in the
 * middle of a malloc or free. */
struct ClassUsage { size_t superblocks, blocks; };
__attribute__((no_sanitize("thread"))) size_t small_in_use(ClassUsage *per_class) {
    long total = 0;
    auto count = [&](unsigned c, long blocks, long block_size) {
        total += blocks * block_size;
        if (per_class && c < kNumClasses) per_class[c].blocks += size_t(blocks);
    };
    for (Arena *a = g_arena_list.load(std::memory_order_acquire); a; a = a->next) {
        size_t end = a->committed.load(std::memory_order_acquire);
        size_t carved = a->carved.load(std::memory_order_relaxed);
        if (carved < end) end = carved;
        for (size_t off = 0; off + kSbSize <= end; off += kSbSize) {
            auto *sb = reinterpret_cast<Superblock *>(a->base + off);
            if (sb->kind != kSmall || !sb->block_size) continue;
            uintptr_t w = sb->remote.load(std::memory_order_relaxed);
            long out;
            if (w & kEmptied) out = 0;
            else if (w & kDetached) out = long(sb->out) - long(remote_count(w));
            else out = (sb->bump.load(std::memory_order_relaxed) - blocks_start(sb)) / long(sb->block_size) -
                       long(free_list_length(sb)) - long(remote_count(w));
            if (out < 0) out = 0;
            if (per_class && sb->size_class < kNumClasses) per_class[sb->size_class].superblocks++;
            count(sb->size_class, out, sb->block_size);
        }
    }
    for (Heap *h = g_all_heaps.load(std::memory_order_acquire); h; h = h->all_next)
        for (auto &s : h->outbox.slot)
            if (Superblock *sb = s.sb) count(sb->size_class, -long(s.n), sb->block_size);
    return total > 0 ? size_t(total) : 0;
}
__attribute__((no_sanitize("thread"))) size_t outbox_bytes() {
    size_t total = 0;
    for (Heap *h = g_all_heaps.load(std::memory_order_acquire); h; h = h->all_next)
        for (auto &s : h->outbox.slot)
            if (Superblock *sb = s.sb) total += size_t(s.n) * sb->block_size;
    return total;
}

void fill_stats(struct lite_malloc_stats *s, ClassUsage *per_class = nullptr) {
    memset(s, 0, sizeof *s);
    s->bytes_mapped = size_t(g_mapped.get());
    s->large_in_use = size_t(g_large_in_use.get());
    s->bytes_in_use = small_in_use(per_class) + size_t(g_medium_in_use.get()) + s->large_in_use;
    s->bytes_cached = size_t(g_pool_dirty.get() + g_span_dirty.get() + g_large_cached.get());
    s->bytes_released = size_t(g_pool_clean.get() + g_span_clean.get());
    s->superblocks = size_t(g_superblocks.get());
    s->threads = size_t(g_heaps.get());
    s->bytes_mapped_peak = size_t(g_mapped.peak());
    s->threads_seen = size_t(g_threads_seen.get());
    s->bytes_pending = outbox_bytes();
}

/* The report printed at exit under LITE_MALLOC_STATS=1 and by malloc_stats(): formatted
 * on the stack and written with one system call per line, so it never allocates. */
long peak_rss_kib() {  // VmHWM from /proc/self/status
    char buf[4096];
    long fd = syscall6(SYS_open, long("/proc/self/status"), O_RDONLY, 0, 0, 0, 0);
    if (fd < 0) return -1;
    long n = syscall6(SYS_read, fd, long(buf), sizeof buf - 1, 0, 0, 0);
    syscall6(SYS_close, fd, 0, 0, 0, 0, 0);
    if (n <= 0) return -1;
    buf[n] = 0;
    const char *hwm = strstr(buf, "VmHWM:");
    return hwm ? strtol(hwm + 6, nullptr, 10) : -1;
}

void print_report() {
    static ClassUsage per_class[kNumClasses];  // static: no stack bulge, report is rare
    memset(per_class, 0, sizeof per_class);
    struct lite_malloc_stats st;
    fill_stats(&st, per_class);
    char line[160];
    auto out = [&](const char *fmt, auto... args) {
        int n = snprintf(line, sizeof line, fmt, args...);
        if (n > 0) os_write(line, size_t(n) < sizeof line ? size_t(n) : sizeof line - 1);
    };
    auto mib = [](size_t b) { return double(b) / (1 << 20); };
    out("lite-malloc: statistics of process %ld\n", syscall6(SYS_getpid, 0, 0, 0, 0, 0, 0));
    out("  mapped     %10.1f MiB   peak %.1f MiB (arenas, large mappings, metadata)\n",
        mib(st.bytes_mapped), mib(st.bytes_mapped_peak));
    out("  in use     %10.1f MiB   small %.1f, medium %.1f, large %.1f\n", mib(st.bytes_in_use),
        mib(st.bytes_in_use - size_t(g_medium_in_use.get()) - st.large_in_use),
        mib(size_t(g_medium_in_use.get())), mib(st.large_in_use));
    out("  cached     %10.1f MiB   free, kept backed for reuse (retain limit %ld MiB)\n",
        mib(st.bytes_cached), g_settings.retain_bytes < 0 ? -1L : g_settings.retain_bytes >> 20);
    out("  released   %10.1f MiB   free, given back to the OS, address space kept\n", mib(st.bytes_released));
    out("  peak RSS   %10.1f MiB   (VmHWM, the whole process)\n", double(peak_rss_kib()) / 1024);
    out("  threads    %10zu seen, %zu heaps created, %zu superblocks carved\n", st.threads_seen,
        st.threads, st.superblocks);
    out("  class  block size  superblocks  blocks in use  bytes in use\n");
    for (unsigned c = 0; c < kNumClasses; c++) {
        if (!per_class[c].superblocks) continue;
        out("  %5u  %10u  %11zu  %13zu  %12zu\n", c, kClasses.size[c], per_class[c].superblocks,
            per_class[c].blocks, per_class[c].blocks * kClasses.size[c]);
    }
}

/* Pop every node of a stack, let `visit` see it, and push the survivors back.  Nodes
 * visit() keeps are linked through the stack's own link word while they are off it. */
template <class Stack, class LinkOf, class Visit>
void drain_and_refill(Stack &stack, LinkOf link, Visit visit) {
    uintptr_t keep = 0;
    while (uintptr_t node = stack.pop()) {
        if (!visit(node)) continue;
        link(node).store(keep, std::memory_order_relaxed);
        keep = node;
    }
    while (keep) {
        uintptr_t node = keep;
        keep = link(node).load(std::memory_order_relaxed);
        stack.push(node);
    }
}

/* Give every cached free page back to the OS (the mappings stay). */
bool trim_all() {
    bool released = false;
    // Blocks held in outboxes come back first: they may empty superblocks.
    for (Heap *h = g_all_heaps.load(std::memory_order_acquire); h; h = h->all_next)
        if (h == tls_heap) outbox_flush(h);
        else outbox_claim(h, 0);
    for (auto &engine : g_engines) {
        while (uintptr_t n = engine.stack.pop()) {
            g_pool_dirty.add(-long(kSbSize));
            pool_put(reinterpret_cast<Superblock *>(n), 0, true);
            released = true;
        }
    }
    for (size_t k = 1; k <= kMediumPages; k++)
        drain_and_refill(g_span_cache[k], SpanLink(), [&](uintptr_t span) {
            SpanHost *host = host_of(span);
            size_t i = page_index(span);
            if (host->state[i].load(std::memory_order_relaxed) == kSpanFreeDirty) {
                os_advise(reinterpret_cast<void *>(span), k * kPage, MADV_DONTNEED);
                host->state[i].store(kSpanFreeClean, std::memory_order_relaxed);
                g_span_dirty.add(-long(k * kPage));
                g_span_clean.add(long(k * kPage));
                released = true;
            }
            return true;
        });
    for (auto &slot : g_large_cache) {
        if (LargeHeader *hdr = large_cache_swap(slot, Tagged{0, 0})) {
            large_unmap(hdr);
            released = true;
        }
    }
    return released;
}

}  // namespace

/* ===================================================================================== *
 * 8. Entry points.
 * ===================================================================================== */
namespace {

/* Every entry point is written once, here, parameterised by what to do with a pointer
 * that is not ours: forward it to the C library (--wrap / --defsym builds, where libc and
 * unwrapped objects hand out blocks of their own) or report it and abort.             */
#if LITE_MALLOC_BUILD == 2
extern "C" void __libc_free(void *);
extern "C" void *__libc_realloc(void *, size_t);
/* glibc exports no __libc_ name for malloc_usable_size.  With --wrap, __real_ reaches it;
 * with --defsym it is our own wrapper again, and then a foreign block's size is unknown. */
extern "C" size_t __real_malloc_usable_size(void *) __attribute__((weak));
extern "C" size_t __wrap_malloc_usable_size(void *);
size_t foreign_usable(void *p) {
    auto real = &__real_malloc_usable_size;
    return real && real != &__wrap_malloc_usable_size ? real(p) : 0;
}
constexpr Foreign kForeign = Foreign::kForward;
#else
constexpr Foreign kForeign = Foreign::kAbort;
#endif

template <Foreign F>
NOINLINE void do_free_slow(void *p) {
    if (!p || free_slow(p, "free")) return;
#if LITE_MALLOC_BUILD == 2
    if (F == Foreign::kForward) { __libc_free(p); return; }
#endif
    fatal("free", "invalid pointer", p);
}

template <Foreign F>
inline void do_free(void *p) {
    if (LIKELY(in_fast_arena(uintptr_t(p)))) return free_in_fast_arena(p, "free");
    do_free_slow<F>(p);  // a tail call: the fast path needs no stack frame
}

template <Foreign F>
void *do_realloc(void *p, size_t size) {
    if (!p) return alloc(size);
    size_t usable = block_usable(p);
    if (!usable) {
        if (owner_superblock(p)) fatal("realloc", "invalid pointer (or freed block)", p);
#if LITE_MALLOC_BUILD == 2
        if (F == Foreign::kForward) return __libc_realloc(p, size);
#endif
        fatal("realloc", "invalid pointer", p);
    }
    if (size == 0) {  // glibc frees and returns NULL
        do_free<F>(p);
        return nullptr;
    }
    return realloc_ours(p, size, usable);
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

void *do_reallocarray(void *p, size_t n, size_t size, void *(*re)(void *, size_t)) {
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

void *do_memalign(size_t align, size_t size) {  // glibc: round a bad alignment up
    if (!is_pow2(align)) {
        if (align > (size_t(1) << 62)) { errno = EINVAL; return nullptr; }
        size_t a = 1;
        while (a < align) a <<= 1;
        align = a;
    }
    return alloc_aligned(align, size);
}

void *do_pvalloc(size_t size) {
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
LITE_API int lite_owns(const void *p) {
    Superblock *sb = owner_superblock(p);
    if (!sb) {  // maybe inside a large block, past its first superblock
        uintptr_t slot = (uintptr_t(p) - 1) & ~(kSbSize - 1);
        for (int i = 0; p && i < (1 << 16) && slot >= kSbSize; i++) {
            slot -= kSbSize;
            if (!is_owned_slot(slot)) continue;
            auto *hdr = reinterpret_cast<LargeHeader *>(slot);
            return hdr->common.kind == kLarge && hdr->live.load(std::memory_order_acquire) &&
                   static_cast<const char *>(p) >= hdr->user &&
                   static_cast<const char *>(p) < reinterpret_cast<char *>(hdr) + hdr->map_len;
        }
        return 0;
    }
    const char *q = static_cast<const char *>(p);
    switch (sb->kind) {
    case kSmall: return q >= blocks_start(sb) && q < sb->bump.load(std::memory_order_relaxed);
    case kSpanHost: {
        auto *host = reinterpret_cast<SpanHost *>(sb);
        for (size_t i = page_index(uintptr_t(q)); i >= kHostHeaderPages && i < kSbPages; i--)
            if (host->state[i].load(std::memory_order_acquire) != kSpanNone)
                return host->state[i].load() == kSpanLive && page_index(uintptr_t(q)) < i + host->pages[i];
        return 0;
    }
    case kLarge: {
        auto *hdr = reinterpret_cast<LargeHeader *>(sb);
        return hdr->live.load(std::memory_order_acquire) && q >= hdr->user &&
               q < reinterpret_cast<char *>(hdr) + hdr->map_len;
    }
    default: return 0;
    }
}
LITE_API void lite_stats(struct lite_malloc_stats *out) { if (out) fill_stats(out); }
LITE_API int lite_trim(size_t) { return trim_all(); }

/* ---- the C library's names ---------------------------------------------------------- */
#if LITE_MALLOC_BUILD == 1 || LITE_MALLOC_BUILD == 4
#define LITE_ALIAS(name) name
#elif LITE_MALLOC_BUILD == 2
#define LITE_ALIAS(name) __wrap_##name
extern "C" {
void *__wrap_malloc(size_t);
void __wrap_free(void *);
void *__wrap_calloc(size_t, size_t);
void *__wrap_realloc(void *, size_t);
void *__wrap_reallocarray(void *, size_t, size_t);
void *__wrap_memalign(size_t, size_t);
int __wrap_posix_memalign(void **, size_t, size_t);
void *__wrap_aligned_alloc(size_t, size_t);
void *__wrap_valloc(size_t);
void *__wrap_pvalloc(size_t);
size_t __wrap_malloc_usable_size(void *);
int __wrap_malloc_trim(size_t);
struct mallinfo2 __wrap_mallinfo2(void);
struct mallinfo __wrap_mallinfo(void);
void __wrap_malloc_stats(void);
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
#if LITE_MALLOC_BUILD == 2
    if (p && !owner_superblock(p)) return foreign_usable(p);
#endif
    return block_usable(p);
}
LITE_API int LITE_ALIAS(malloc_trim)(size_t) __THROW { return trim_all(); }
/* glibc's statistics calls, answered with lite-malloc's own figures. */
LITE_API struct mallinfo2 LITE_ALIAS(mallinfo2)(void) __THROW {
    struct lite_malloc_stats st;
    fill_stats(&st);
    struct mallinfo2 m;
    memset(&m, 0, sizeof m);
    m.arena = st.bytes_mapped - size_t(g_large_mapped.get());  // not directly mapped
    m.ordblks = size_t(st.superblocks);                         // "chunks": superblocks carved
    m.hblks = size_t(g_large_mapped.get()) ? 1 : 0;
    m.hblkhd = size_t(g_large_mapped.get());
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
LITE_API void LITE_ALIAS(malloc_stats)(void) __THROW { print_report(); }
#endif

#endif /* LITE_MALLOC_BUILD != 3 */

/* ---- C++ operator new and delete ------------------------------------------------------ */
#if LITE_MALLOC_BUILD == 1 || LITE_MALLOC_BUILD == 3 || LITE_MALLOC_BUILD == 4
/* operator new: loop on the new-handler, then throw std::bad_alloc, as the standard says. */
#if LITE_MALLOC_BUILD == 1
/* The shared library must not pull libstdc++ into C programs it is preloaded into: reach
 * the handful of libstdc++ functions weakly; a program calling operator new has them.
 * That includes the C++ runtime behind the one try/catch below (nothrow new must catch
 * a std::bad_alloc thrown by a new-handler); no exception can exist without libstdc++. */
__asm__(".weak __gxx_personality_v0\n.weak __cxa_begin_catch\n.weak __cxa_end_catch\n.weak _Unwind_Resume");
extern "C" void *lite_cxx_get_new_handler() __asm__("_ZSt15get_new_handlerv") __attribute__((weak));
extern "C" void lite_cxx_throw_bad_alloc() __asm__("_ZSt17__throw_bad_allocv") __attribute__((weak, noreturn));
#else
extern "C" void *lite_cxx_get_new_handler() __asm__("_ZSt15get_new_handlerv");
extern "C" void lite_cxx_throw_bad_alloc() __asm__("_ZSt17__throw_bad_allocv") __attribute__((noreturn));
#endif
namespace {
typedef void (*lite_new_handler)();

COLD void *cxx_new_retry(size_t size, size_t align, bool nothrow) {
    for (;;) {
        void *p = align ? lite_aligned_alloc(align, size < align ? align : size) : lite_malloc(size);
        if (p) return p;
        lite_new_handler handler = nullptr;
#if LITE_MALLOC_BUILD == 1  // weak: absent in a process without libstdc++
        if (&lite_cxx_get_new_handler)
#endif
            handler = reinterpret_cast<lite_new_handler>(lite_cxx_get_new_handler());
        if (!handler) {
            if (nothrow) return nullptr;
#if LITE_MALLOC_BUILD == 1
            if (!&lite_cxx_throw_bad_alloc) abort();
#endif
            lite_cxx_throw_bad_alloc();
        }
        handler();
    }
}
inline void *cxx_new(size_t size) {
    void *p = lite_malloc(size);
    return LIKELY(p != nullptr) ? p : cxx_new_retry(size, 0, false);
}
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
LITE_CXX_API void operator delete(void *p) noexcept { lite_free(p); }
LITE_CXX_API void operator delete[](void *p) noexcept { lite_free(p); }
LITE_CXX_API void operator delete(void *p, const std::nothrow_t &) noexcept { lite_free(p); }
LITE_CXX_API void operator delete[](void *p, const std::nothrow_t &) noexcept { lite_free(p); }
LITE_CXX_API void operator delete(void *p, size_t) noexcept { lite_free(p); }
LITE_CXX_API void operator delete[](void *p, size_t) noexcept { lite_free(p); }
#if defined(__cpp_aligned_new)  /* C++17 */
LITE_CXX_API void *operator new(size_t n, std::align_val_t a) { return cxx_new_aligned(n, a); }
LITE_CXX_API void *operator new[](size_t n, std::align_val_t a) { return cxx_new_aligned(n, a); }
LITE_CXX_API void *operator new(size_t n, std::align_val_t a, const std::nothrow_t &) noexcept {
    return cxx_new_nothrow(n, size_t(a));
}
LITE_CXX_API void *operator new[](size_t n, std::align_val_t a, const std::nothrow_t &) noexcept {
    return cxx_new_nothrow(n, size_t(a));
}
LITE_CXX_API void operator delete(void *p, std::align_val_t) noexcept { lite_free(p); }
LITE_CXX_API void operator delete[](void *p, std::align_val_t) noexcept { lite_free(p); }
LITE_CXX_API void operator delete(void *p, size_t, std::align_val_t) noexcept { lite_free(p); }
LITE_CXX_API void operator delete[](void *p, size_t, std::align_val_t) noexcept { lite_free(p); }
LITE_CXX_API void operator delete(void *p, std::align_val_t, const std::nothrow_t &) noexcept { lite_free(p); }
LITE_CXX_API void operator delete[](void *p, std::align_val_t, const std::nothrow_t &) noexcept { lite_free(p); }
#endif
#endif
