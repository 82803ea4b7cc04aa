/* simcuda private header: shared types and internal functions of the simulated driver.
 *
 * Invariants:
 * - Exported cu* entry points never call each other; they share the vs_sim_* internals below, so a
 *   preloaded shim sees only the calls the program made (the library is also linked -Bsymbolic).
 * - Every exported entry point starts with VS_SIM_ENTER(name), which counts the call and applies
 *   injected faults, then checks initialisation where the driver does.
 * - Internal symbols are hidden: the library exports only cu* and simcuda_* names.
 * - Locks, in the only order in which they are ever nested (fork.c takes them all in it):
 *   init (cuInit's setup) -> scheduler (streams, events) -> memory (handles, VA, pools, host
 *   ranges) -> context -> fault (counters, injected faults). Scheduler and memory are never held
 *   together except around fork(); context and fault are leaves. The shared device's
 *   process-shared lock (shared.c) is taken only under the memory lock, as a leaf. Queued work
 *   runs with no lock held; logging takes none.
 */
#ifndef VS_SIM_H
#define VS_SIM_H

/* Declares every driver symbol, old (32-bit) and per-thread (_ptds/_ptsz) forms included, without
 * cuda.h's renaming macros: this library defines them all. */
#define __CUDA_API_VERSION_INTERNAL 1
#include <cuda.h>

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <uthash.h>

#include "simcuda.h"

#pragma GCC visibility push(hidden)

/* The allocation granularity: SIMCUDA_GRANULE, 2 MiB (a GPU's) by default. */
#define VS_SIM_GRANULE (vs_sim_cfg.granule)
#define VS_SIM_GRANULE_DEFAULT ((size_t)2 << 20)
#define VS_SIM_MAX_DEVICES 16
#define VS_SIM_DRIVER_VERSION 13000

/* ---- config.c: environment, read once at cuInit ---------------------------------------------- */
struct vs_sim_config {
    size_t vram;       /* per-device capacity */
    size_t vram_taken; /* held by other processes */
    size_t host_mem;   /* host-NUMA budget */
    size_t granule;    /* allocation granularity: a power of two, 64 KiB to 2 MiB */
    int devices;
};
/* Reads SIMCUDA_* into cfg; on a bad value logs `simcuda: SIMCUDA_X="...": reason` and returns -1.
 */
int vs_sim_config_load(struct vs_sim_config *cfg);

/* ---- log.c ----------------------------------------------------------------------------------- */
enum vs_sim_log_level { VS_SIM_LOG_ERROR, VS_SIM_LOG_WARN, VS_SIM_LOG_INFO, VS_SIM_LOG_DEBUG };
void vs_sim_log(enum vs_sim_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
bool vs_sim_log_enabled(enum vs_sim_log_level level);
/* One `simcuda: NAME is not supported` line the first time; returns CUDA_ERROR_NOT_SUPPORTED. */
CUresult vs_sim_unsupported(const char *name, bool *logged);
#define VS_SIM_UNSUPPORTED(name)                                                                   \
    do {                                                                                           \
        static bool vs_logged_;                                                                    \
        return vs_sim_unsupported(name, &vs_logged_);                                              \
    } while (0)

/* ---- fault.c: call counters and fault injection ---------------------------------------------- */
struct vs_sim_entry {
    const char *name;
    unsigned long calls; /* atomic */
    int registered;      /* atomic: linked into the global list */
    struct vs_sim_entry *next;
};
/* Counts the call; returns the injected error for this call, or CUDA_SUCCESS. */
CUresult vs_sim_enter(struct vs_sim_entry *entry);
/* False when SIMCUDA_FAIL was malformed (cuInit then fails). */
bool vs_sim_fault_env_ok(void);
extern pthread_mutex_t vs_sim_fault_lock;
#define VS_SIM_ENTER(name_)                                                                        \
    static struct vs_sim_entry vs_entry_ = {.name = name_};                                        \
    do {                                                                                           \
        CUresult vs_injected_ = vs_sim_enter(&vs_entry_);                                          \
        if (vs_injected_ != CUDA_SUCCESS)                                                          \
            return vs_injected_;                                                                   \
    } while (0)

/* ---- init.c / device.c ----------------------------------------------------------------------- */
struct vs_sim_backing; /* physical.c */
struct vs_sim_ctx;
struct vs_sim_device {
    int ordinal;
    size_t total;
    size_t taken; /* atomic */
    struct vs_sim_backing *backing;
    struct vs_sim_ctx *primary;
    struct vs_sim_pool *default_pool;
    struct vs_sim_pool *current_pool;
};
extern struct vs_sim_config vs_sim_cfg;
extern struct vs_sim_device vs_sim_devices[VS_SIM_MAX_DEVICES];
extern struct vs_sim_backing *vs_sim_host_backing;
/* CUDA_ERROR_NOT_INITIALIZED before a successful cuInit, else CUDA_SUCCESS. */
CUresult vs_sim_check_init(void);
/* The device for an ordinal, or NULL. */
struct vs_sim_device *vs_sim_device(CUdevice dev);
#define VS_SIM_REQUIRE_INIT()                                                                      \
    do {                                                                                           \
        CUresult vs_init_ = vs_sim_check_init();                                                   \
        if (vs_init_ != CUDA_SUCCESS)                                                              \
            return vs_init_;                                                                       \
    } while (0)

/* An entry point's start for a device argument: declares d_, the device of ordinal dev_, or
 * returns CUDA_ERROR_INVALID_DEVICE. */
#define VS_SIM_DEVICE_ENTRY(dev_, d_)                                                              \
    VS_SIM_REQUIRE_INIT();                                                                         \
    struct vs_sim_device *d_ = vs_sim_device(dev_);                                                \
    if (!d_)                                                                                       \
        return CUDA_ERROR_INVALID_DEVICE

extern pthread_mutex_t vs_sim_init_lock;

/* ---- context.c ------------------------------------------------------------------------------- */
struct vs_sim_stream;
struct vs_sim_ctx {
    struct vs_sim_device *device;
    unsigned int flags;
    bool primary;
    int primary_refs;  /* cuDevicePrimaryCtxRetain count */
    bool destroyed;    /* cuCtxDestroy'd (non-primary) */
    unsigned long long id;
    struct vs_sim_stream *legacy; /* lazily created, guarded by the scheduler lock */
};
struct vs_sim_ctx *vs_sim_ctx_new(struct vs_sim_device *device, bool primary);
/* Current context or CUDA_ERROR_INVALID_CONTEXT. */
CUresult vs_sim_ctx_require(struct vs_sim_ctx **out);
/* Validates a CUcontext handle. */
bool vs_sim_ctx_valid(struct vs_sim_ctx *ctx);
extern pthread_mutex_t vs_sim_ctx_lock;

/* ---- ranges.c: sorted, non-overlapping address ranges ---------------------------------------- */
struct vs_sim_range {
    uintptr_t base;
    size_t size;
};
struct vs_sim_ranges {
    struct vs_sim_range **items;
    size_t count, cap;
};
struct vs_sim_range *vs_sim_ranges_find(const struct vs_sim_ranges *set, uintptr_t addr);
/* First range overlapping [base, base+size), or NULL. */
struct vs_sim_range *vs_sim_ranges_overlap(const struct vs_sim_ranges *set, uintptr_t base,
                                           size_t size);
/* Index of the first range with base >= addr. */
size_t vs_sim_ranges_lower(const struct vs_sim_ranges *set, uintptr_t addr);
int vs_sim_ranges_insert(struct vs_sim_ranges *set, struct vs_sim_range *range);
void vs_sim_ranges_remove(struct vs_sim_ranges *set, struct vs_sim_range *range);

/* ---- physical.c: capacity and memfd slices --------------------------------------------------- */
struct vs_sim_backing {
    int fd;
    size_t capacity; /* bytes that may be backed (before subtracting taken) */
    size_t used;     /* bytes currently created */
    size_t file_size;
    off_t next_offset; /* slices are never reused: released ones are punched */
    char name[32];     /* of the memfd, for logs (a copy: memfds are created again after fork) */
};
struct vs_sim_phys {
    uint64_t id; /* the CUmemGenericAllocationHandle */
    CUmemAllocationProp prop;
    struct vs_sim_backing *backing;
    int fd; /* the file of the slice: backing->fd unless created before a fork() */
    struct vs_sim_device *device; /* NULL for host-NUMA */
    off_t offset;
    size_t size;
    int handle_refs; /* cuMemCreate + cuMemRetainAllocationHandle - cuMemRelease */
    int refs;        /* 1 while handle_refs > 0, +1 per mapping */
    UT_hash_handle hh;
};
/* Every function below expects vs_sim_mem_lock held. */
extern pthread_mutex_t vs_sim_mem_lock;
struct vs_sim_backing *vs_sim_backing_create(const char *name, size_t capacity);
/* Creates physical memory of `size` (a granule multiple) for prop's location. */
CUresult vs_sim_phys_create(const CUmemAllocationProp *prop, size_t size, struct vs_sim_phys **out);
struct vs_sim_phys *vs_sim_phys_lookup(uint64_t id);
void vs_sim_phys_ref(struct vs_sim_phys *phys);
/* Drops a reference; at zero the slice is punched and its capacity returned. */
void vs_sim_phys_unref(struct vs_sim_phys *phys);
/* Drops a handle reference (cuMemRelease); CUDA_ERROR_INVALID_VALUE if none is left. */
CUresult vs_sim_phys_release(struct vs_sim_phys *phys);
/* Capacity left on a backing given the memory held by other processes. */
size_t vs_sim_backing_free(const struct vs_sim_backing *b, size_t taken);
/* Gives [at, at+len) of phys's file back to the host, unless the slice was created before fork()
 * and so is still the parent's memory too. */
void vs_sim_phys_punch(const struct vs_sim_phys *phys, off_t at, size_t len);
/* In a forked child: new slices go to new files of the child's own. */
void vs_sim_backings_fork_child(void);

/* Device bytes free for a new allocation: what is left after other processes' memory (taken, and
 * on a shared device the charges of every attached process). Memory lock held. */
size_t vs_sim_device_free(const struct vs_sim_device *d);

/* ---- shared.c: one capacity for every process on the device (SIMCUDA_SHARED) ----------------- */
/* Attaches to (creating if needed) the segment SIMCUDA_SHARED names: 0 (also when unset), or -1
 * after one `simcuda:` line saying why it was refused. */
int vs_sim_shared_attach(const struct vs_sim_config *cfg);
bool vs_sim_shared_enabled(void);
/* With the memory lock held: charges size bytes of device dev to this process if every attached
 * process's charges plus size stay within limit (dead processes' charges are reclaimed first),
 * else CUDA_ERROR_OUT_OF_MEMORY; uncharging gives them back. */
CUresult vs_sim_shared_charge(int dev, size_t size, size_t limit);
void vs_sim_shared_uncharge(int dev, size_t size);
/* Bytes charged on dev by live processes (pid 0) or by process pid, dead ones reclaimed first. */
size_t vs_sim_shared_used(int dev, pid_t pid);

/* ---- vmm.c: reservations and mappings -------------------------------------------------------- */
enum vs_sim_owner { VS_SIM_OWNER_USER, VS_SIM_OWNER_ALLOC };
struct vs_sim_mapping {
    struct vs_sim_range range; /* first: the VA range mapped */
    struct vs_sim_phys *phys;
    size_t phys_offset;
    struct vs_sim_reservation *reservation;
    unsigned long long buffer_id;
    CUmemAccess_flags access[VS_SIM_MAX_DEVICES];
    CUmemAccess_flags host_access;
};
struct vs_sim_chunk; /* chunk.c */
struct vs_sim_reservation {
    struct vs_sim_range range;
    enum vs_sim_owner owner;
    struct vs_sim_chunk *chunk; /* owner == VS_SIM_OWNER_ALLOC */
    size_t mapped;              /* bytes mapped inside */
};
CUresult vs_sim_va_reserve(size_t size, size_t alignment, uintptr_t hint, enum vs_sim_owner owner,
                           struct vs_sim_reservation **out);
CUresult vs_sim_va_free(struct vs_sim_reservation *res);
struct vs_sim_reservation *vs_sim_reservation_find(uintptr_t addr);
CUresult vs_sim_va_map(uintptr_t va, size_t size, size_t offset, struct vs_sim_phys *phys,
                       struct vs_sim_mapping **out);
CUresult vs_sim_va_unmap_range(uintptr_t va, size_t size);
/* Grants access on [va, va+size) (whole mappings) for desc[0..count). */
CUresult vs_sim_va_set_access(uintptr_t va, size_t size, const CUmemAccessDesc *desc, size_t count);
struct vs_sim_mapping *vs_sim_mapping_find(uintptr_t addr);
/* A process-wide unique CU_POINTER_ATTRIBUTE_BUFFER_ID (mappings and cuMemAlloc/pool blocks). */
unsigned long long vs_sim_buffer_id_next(void);

/* ---- chunk.c: blocks carved out of mapped physical chunks ---------------------------------- */
#define VS_SIM_BLOCK_ALIGN ((size_t)512)
struct vs_sim_pool;
struct vs_sim_heap;
/* A chunk: its own VA reservation (VS_SIM_OWNER_ALLOC) with one granule-multiple physical handle
 * mapped read-write; blocks are sorted, non-overlapping sub-ranges of it. */
struct vs_sim_chunk {
    struct vs_sim_reservation *reservation;
    struct vs_sim_mapping *mapping;
    struct vs_sim_heap *heap;
    size_t size;    /* granule multiple */
    size_t max_gap; /* largest free gap (between blocks or at either end) */
    bool shared;    /* more blocks may be carved from it (never after a fork: shared memory) */
    struct vs_sim_ranges blocks;
    struct vs_sim_chunk *next, *prev;
};
/* The chunks one allocator (a device's cuMemAlloc heap, a pool) carves from. */
struct vs_sim_heap {
    size_t reserved; /* sum of chunk sizes */
    bool keep_empty; /* empty chunks stay until trimmed (pools) instead of being released */
    struct vs_sim_chunk *chunks;
};
/* A block: one cuMemAlloc/pool allocation, or a pool block whose stream-ordered free is pending. */
struct vs_sim_alloc {
    struct vs_sim_range range; /* first: base and span (size rounded to VS_SIM_BLOCK_ALIGN) */
    struct vs_sim_chunk *chunk;
    struct vs_sim_ctx *ctx;
    size_t size;              /* as requested */
    struct vs_sim_pool *pool; /* NULL for cuMemAlloc */
    unsigned long long buffer_id;
    /* pool bookkeeping (mempool.c) */
    bool cached;                    /* freed, awaiting its stream-ordered free (pool's list) */
    unsigned long long free_stream; /* id of the stream whose pending free it awaits */
    unsigned long long free_ticket; /* identifies that pending free */
    struct vs_sim_alloc *pool_next, *pool_prev;
};
/* Carves span bytes (a VS_SIM_BLOCK_ALIGN multiple) from the tightest free gap among h's shared
 * chunks; NULL if none has room. */
struct vs_sim_alloc *vs_sim_heap_fit(struct vs_sim_heap *h, size_t span);
/* Maps a new chunk of span rounded up to the granule on dev and carves the block at its start;
 * shared: later blocks may be carved from the rest. */
CUresult vs_sim_heap_grow(struct vs_sim_heap *h, struct vs_sim_device *dev, size_t span,
                          bool shared, struct vs_sim_alloc **out);
/* Splits [base+span, end) off block a (span: a VS_SIM_BLOCK_ALIGN multiple below its size) as a
 * new block, returned (NULL when out of host memory: a stays whole). */
struct vs_sim_alloc *vs_sim_block_split(struct vs_sim_alloc *a, size_t span);
/* Removes a block (its pages are given back); an empty chunk is released unless h->keep_empty. */
void vs_sim_block_free(struct vs_sim_alloc *a);
/* Releases empty chunks while h->reserved > keep. */
void vs_sim_heap_trim(struct vs_sim_heap *h, size_t keep);
/* The block containing addr, or NULL. */
struct vs_sim_alloc *vs_sim_alloc_find(uintptr_t addr);
/* In a forked child: h's chunks are the parent's memory too, so no block is carved from them any
 * more (their blocks stay usable until freed). */
void vs_sim_heap_fork_child(struct vs_sim_heap *h);

/* ---- memalloc.c: cuMemAlloc family ----------------------------------------------------------- */
/* In a forked child (mem lock held): see vs_sim_heap_fork_child. */
void vs_sim_memalloc_fork_child(void);
/* Range of the allocation (or mapping) containing ptr: CUDA_ERROR_NOT_FOUND if none. */
CUresult vs_sim_address_range(uintptr_t ptr, uintptr_t *base, size_t *size);

/* ---- host.c: page-locked host memory (allocated or registered) ------------------------------- */
struct vs_sim_host {
    struct vs_sim_range range;
    unsigned int flags;
    bool registered; /* cuMemHostRegister (not ours to free) */
    struct vs_sim_ctx *ctx;
};
/* The host allocation or registration containing addr (mem lock held), or NULL. */
struct vs_sim_host *vs_sim_host_find(uintptr_t addr);

/* ---- mempool.c ------------------------------------------------------------------------------- */
struct vs_sim_pool {
    struct vs_sim_device *device;
    bool is_default;
    CUmemPoolProps props;
    bool destroyed;
    uint64_t release_threshold;
    int reuse_follow_event, reuse_opportunistic, reuse_internal;
    struct vs_sim_heap heap;
    size_t reserved_high, used, used_high;
    struct vs_sim_alloc *cached; /* blocks awaiting their stream-ordered free */
    struct vs_sim_pool *next;
};
struct vs_sim_pool *vs_sim_pool_create_default(struct vs_sim_device *dev);
/* Frees a pool allocation (mem lock held): at once for stream_id 0, else it stays a block reusable
 * only by that stream until the free is reached in stream order. */
void vs_sim_pool_give_back(struct vs_sim_alloc *a, unsigned long long stream_id);
/* Gives cached memory above each pool's release threshold back (at synchronisation points). */
void vs_sim_pools_trim_to_threshold(void);
/* In a forked child (mem lock held): pending stream-ordered frees, whose ops the child dropped,
 * are reached at once, and the pools' chunks stop serving new blocks (vs_sim_heap_fork_child). */
void vs_sim_pools_fork_child(void);

/* ---- sparse.c: I/O on the backing memfds, keeping unwritten ranges unwritten ----------------- */
/* One side of a copy: either host memory or a device range resolved to memfd extents. */
struct vs_sim_extent {
    int fd;
    off_t offset;
    size_t len;
};
struct vs_sim_side {
    bool device;
    uint8_t *host;
    struct vs_sim_extent *extents;
    size_t count;
};
/* Resolves [addr, addr+len) to a side: host memory if no reservation covers addr, device extents
 * if mapped throughout (need_write: with read-write access), CUDA_ERROR_INVALID_VALUE otherwise. */
CUresult vs_sim_side_resolve(uintptr_t addr, size_t len, bool need_write, bool must_be_device,
                             struct vs_sim_side *out);
void vs_sim_side_free(struct vs_sim_side *side);
/* Copies len bytes; unwritten source ranges become unwritten (punched) device destinations. */
int vs_sim_side_copy(const struct vs_sim_side *dst, const struct vs_sim_side *src, size_t len);
/* Fills len bytes with a repeated element of elem_size (1, 2, 4); zero punches holes. */
int vs_sim_side_fill(const struct vs_sim_side *dst, uint32_t value, size_t elem_size, size_t len);

/* ---- stream.c / event.c: ordered asynchronous work ------------------------------------------- */
struct vs_sim_op;
typedef void (*vs_sim_op_fn)(struct vs_sim_op *op);
struct vs_sim_dep {
    struct vs_sim_stream *stream;
    unsigned long long seq;
};
struct vs_sim_op {
    struct vs_sim_op *next;
    unsigned long long seq;
    vs_sim_op_fn run;     /* may be NULL (markers) */
    vs_sim_op_fn cleanup; /* frees the payload; may be NULL */
    struct vs_sim_dep *deps;
    size_t ndeps;
    bool waited; /* the submitter waits and frees it */
    void *payload;
};
struct vs_sim_stream {
    struct vs_sim_ctx *ctx;
    unsigned int flags;
    int priority;
    bool legacy, per_thread;
    bool held, destroyed, worker_running;
    struct vs_sim_op *running; /* popped by the worker, not yet completed */
    int refs;
    unsigned long long submitted, completed, id;
    struct vs_sim_op *head, *tail;
    pthread_cond_t wake;
    struct vs_sim_stream *next, *prev; /* all streams */
};
/* Resolves a CUstream as passed to an entry point; per_thread: called through a _ptsz/_ptds
 * symbol (0 means the per-thread default stream). Takes a reference. */
CUresult vs_sim_stream_get(CUstream handle, bool per_thread, struct vs_sim_stream **out);
void vs_sim_stream_put(struct vs_sim_stream *s);
/* Queues op on s (adding the legacy-stream dependencies) and takes ownership of it; with wait,
 * blocks until it ran (the caller then frees it with vs_sim_op_release). */
void vs_sim_stream_submit(struct vs_sim_stream *s, struct vs_sim_op *op, bool wait);
/* Allocates an op with `payload_size` zeroed payload bytes; vs_sim_op_release frees one that was
 * never submitted or was waited for. */
struct vs_sim_op *vs_sim_op_new(vs_sim_op_fn run, vs_sim_op_fn cleanup, size_t payload_size);
void vs_sim_op_release(struct vs_sim_op *op);
/* Waits for all streams of ctx (NULL: all streams). */
void vs_sim_streams_drain_ctx(struct vs_sim_ctx *ctx);
/* Resolves the stream an entry point names, queues op there and, with wait, waits and frees it. */
CUresult vs_sim_submit_on(CUstream handle, bool per_thread, struct vs_sim_op *op, bool wait);
/* With vs_sim_sched_lock held: */
void vs_sim_stream_submit_locked(struct vs_sim_stream *s, struct vs_sim_op *op);
void vs_sim_stream_unref_locked(struct vs_sim_stream *s);
void vs_sim_stream_wait_seq_locked(struct vs_sim_stream *s, unsigned long long seq);
/* Makes op wait until dep ran everything up to seq (takes a reference on dep). */
void vs_sim_op_add_dep_locked(struct vs_sim_op *op, struct vs_sim_stream *dep,
                              unsigned long long seq);
extern pthread_mutex_t vs_sim_sched_lock;
/* In a forked child (scheduler lock held): work queued or running at the fork is the parent's;
 * every stream counts it complete, forgets the parent's worker threads and holds, and returns
 * those ops chained through `next` for the caller to release once the locks are free. */
struct vs_sim_op *vs_sim_streams_fork_child(void);

/* ---- errors.c -------------------------------------------------------------------------------- */
const char *vs_sim_error_name(CUresult err);
/* CUresult for a CUDA_ERROR_* name, -1 if unknown. */
int vs_sim_error_from_name(const char *name);

#pragma GCC visibility pop

#endif
