/* Call counts and live-byte accounting of the hooks (see tally.h). */
#include "interpose/tally.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "allocator/log.h"
#include "interpose/ptrmap.h"

/* Call counts are per thread (no locked instruction on the hot path). A block outlives its
 * thread: at thread exit it goes to a free list and the next new thread continues counting in
 * it, so the sum over all blocks is always the process total. */
struct call_block {
    atomic_uint_fast64_t n[VS_FAM_COUNT];
    struct call_block *next_all, *next_free;
};

static pthread_mutex_t blocks_lock = PTHREAD_MUTEX_INITIALIZER;
static struct call_block *all_blocks, *free_blocks;
static pthread_key_t block_key;
static pthread_once_t block_key_once = PTHREAD_ONCE_INIT;
static __thread struct call_block *my_block __attribute__((tls_model("initial-exec")));
static atomic_uint_fast64_t unblocked_calls[VS_FAM_COUNT]; /* when no block could be had */

/* Live bytes are the driver's blocks and handles (map_live, changed only under the spin lock with
 * the maps: one locked instruction per call, held for a probe and an addition) plus the arenas'
 * blocks (arena_live: one locked addition, no map, no lock). peak is their largest sum, raised by
 * whichever side sees a new one (a compare-exchange only then); exact while calls do not overlap.
 * Atomics with relaxed order: each side reads the other's counter without its lock. */
static _Atomic uint64_t map_live, arena_live, peak;
static atomic_flag lock = ATOMIC_FLAG_INIT;
static struct vs_ptrmap allocations; /* device pointer -> bytes */
static struct vs_ptrmap handles;     /* cuMemCreate handle -> bytes */

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

static inline void lock_take(void)
{
    while (atomic_flag_test_and_set_explicit(&lock, memory_order_acquire))
        cpu_relax();
}

static inline void lock_give(void)
{
    atomic_flag_clear_explicit(&lock, memory_order_release);
}

static void block_release(void *b)
{
    pthread_mutex_lock(&blocks_lock);
    ((struct call_block *)b)->next_free = free_blocks;
    free_blocks = b;
    pthread_mutex_unlock(&blocks_lock);
}

static void block_key_create(void)
{
    if (pthread_key_create(&block_key, block_release) != 0)
        vs_log(VS_LOG_WARN, "cannot create a thread key; call counts use shared counters");
}

/* First call of a thread: out of line, so the counting path stays a few instructions. */
__attribute__((
    noinline,
    cold)) /* First call of a thread: out of line, so the counting path stays a few instructions. */
__attribute__((noinline, cold)) static struct call_block *
block_acquire(void)
{
    pthread_once(&block_key_once, block_key_create);
    pthread_mutex_lock(&blocks_lock);
    struct call_block *b = free_blocks;
    if (b) {
        free_blocks = b->next_free;
    } else if ((b = calloc(1, sizeof *b))) {
        b->next_all = all_blocks;
        all_blocks = b;
    }
    pthread_mutex_unlock(&blocks_lock);
    if (b && pthread_setspecific(block_key, b) != 0) {
        block_release(b);
        b = NULL;
    }
    return b;
}

void vs_tally_call(enum vs_family family)
{
    struct call_block *b = my_block ? my_block : (my_block = block_acquire());
    if (!b) {
        atomic_fetch_add_explicit(&unblocked_calls[family], 1, memory_order_relaxed);
        return;
    }
    /* Only this thread writes the block: a relaxed load and store, no locked instruction. */
    atomic_store_explicit(&b->n[family],
                          atomic_load_explicit(&b->n[family], memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static uint64_t calls_of(enum vs_family family)
{
    uint64_t sum = atomic_load(&unblocked_calls[family]);
    pthread_mutex_lock(&blocks_lock);
    for (struct call_block *b = all_blocks; b; b = b->next_all)
        sum += atomic_load_explicit(&b->n[family], memory_order_relaxed);
    pthread_mutex_unlock(&blocks_lock);
    return sum;
}

uint64_t vs_tally_calls(enum vs_family family)
{
    return calls_of(family);
}

static void raise_peak(uint64_t now)
{
    uint64_t p = atomic_load_explicit(&peak, memory_order_relaxed);
    while (now > p && !atomic_compare_exchange_weak_explicit(&peak, &p, now, memory_order_relaxed,
                                                             memory_order_relaxed))
        ;
}

/* Adds delta (modulo 2^64: a decrease is a negative delta) to map_live, lock held; returns the
 * live bytes now. */
static uint64_t map_live_add(uint64_t delta)
{
    uint64_t m = atomic_load_explicit(&map_live, memory_order_relaxed) + delta;
    atomic_store_explicit(&map_live, m, memory_order_relaxed);
    return m + atomic_load_explicit(&arena_live, memory_order_relaxed);
}

static void remember(struct vs_ptrmap *map, uint64_t key, uint64_t size, const char *what)
{
    if (!key)
        return;
    uint64_t old = 0;
    lock_take();
    bool ok = vs_ptrmap_put(map, key, size, &old);
    /* A key still present means its free went unseen (an entry point the shim does not hook):
     * the new size replaces the old one. */
    uint64_t now = ok ? map_live_add(size - old) : 0;
    lock_give();
    if (ok)
        raise_peak(now);
    else
        vs_log(VS_LOG_WARN, "out of host memory accounting %s 0x%llx; its size is not tracked",
               what, (unsigned long long)key);
}

static bool forget(struct vs_ptrmap *map, uint64_t key, uint64_t *size)
{
    if (!key)
        return false;
    lock_take();
    bool found = vs_ptrmap_take(map, key, size);
    if (found)
        map_live_add(-*size);
    lock_give();
    return found;
}

void vs_tally_alloc(uint64_t ptr, uint64_t size)
{
    remember(&allocations, ptr, size, "allocation");
}

bool vs_tally_free(uint64_t ptr, uint64_t *size)
{
    return forget(&allocations, ptr, size);
}

void vs_tally_arena_alloc(uint64_t size)
{
    uint64_t a = atomic_fetch_add_explicit(&arena_live, size, memory_order_relaxed) + size;
    raise_peak(a + atomic_load_explicit(&map_live, memory_order_relaxed));
}

void vs_tally_arena_free(uint64_t size)
{
    atomic_fetch_sub_explicit(&arena_live, size, memory_order_relaxed);
}

void vs_tally_create(uint64_t handle, uint64_t size)
{
    remember(&handles, handle, size, "handle");
}

bool vs_tally_release(uint64_t handle, uint64_t *size)
{
    return forget(&handles, handle, size);
}

void vs_tally_summary(char *buf, size_t len)
{
    uint64_t now = atomic_load(&map_live) + atomic_load(&arena_live), top = atomic_load(&peak);
    size_t n = 0;
    int k = snprintf(buf, len, "calls:");
    for (int f = 0; f <= VS_FAM_COUNT && k >= 0 && (n += (size_t)k) < len; f++) {
        if (f < VS_FAM_COUNT) {
            k = snprintf(buf + n, len - n, " %s=%llu", vs_family_name((enum vs_family)f),
                         (unsigned long long)calls_of((enum vs_family)f));
        } else {
            k = snprintf(buf + n, len - n,
                         "; peak live %llu bytes (%.1f MiB), live at exit %llu "
                         "bytes",
                         (unsigned long long)top, (double)top / (1024.0 * 1024.0),
                         (unsigned long long)now);
        }
    }
}

void vs_tally_fork_prepare(void)
{
    pthread_mutex_lock(&blocks_lock);
    lock_take();
}

void vs_tally_fork_release(void)
{
    lock_give();
    pthread_mutex_unlock(&blocks_lock);
}
