/* `make soak`: the arena and eviction under sustained concurrent load, long demote/promote runs
 * and a fault at every driver call position, on simcuda, built with ASan (docs/reliability.md).
 *
 * 1. SOAK_SECONDS (default 600) of 8 threads that allocate (small and large, stream-ordered or
 *    not), fill, check and free blocks, change stages, demote and promote, and report device
 *    synchronisations. Every block is filled with a pattern when allocated (concurrently with
 *    moves: a fresh block is not a victim) and checked before it is freed (between moves: a
 *    victim is idle while it moves). Afterwards: no lost write, a valid arena, no leaked device
 *    memory, and host memory in use (RssAnon) at the end of the steady state within
 *    SOAK_RSS_SLACK_MIB (default 16) of its start.
 * 2. SOAK_CYCLES (default 10000) demote/promote cycles of one checksummed block: zero bit errors,
 *    same address.
 * 3. For each driver call the arena and eviction make while mapping and unmapping (allocation,
 *    demote, promote, trim), a fault at every position: the call fails cleanly or succeeds, the
 *    arena stays valid, contents intact, device memory exactly as before the failed call, the
 *    next attempt succeeds; at the end nothing is leaked.
 * Prints one line of figures per part; exits non-zero on the first violation.
 */
#include <dlfcn.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "allocator/arena.h"
#include "allocator/evict.h"
#include "policy/policy.h"
#include "tools/simcuda/simcuda.h"

#define MiB ((size_t)1 << 20)
#define THREADS 8
#define HELD 24

static struct vs_driver drv;
static CUcontext ctx;
static CUdevice dev;
static struct vs_arena *a;
static uint32_t tags[2], stages[3];
static pthread_rwlock_t moves; /* held for writing by a demote or promote */
static atomic_bool stop;
static atomic_long lost, ops, ooms, demotes, promotes, syncs, stage_changes;

#define die(...)                                  \
    do {                                          \
        fprintf(stderr, "soak: FAIL: " __VA_ARGS__); \
        fputc('\n', stderr);                      \
        exit(1);                                  \
    } while (0)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static size_t env_size(const char *name, size_t dflt)
{
    const char *v = getenv(name);
    char *end;
    unsigned long long n = v && *v ? strtoull(v, &end, 10) : 0;
    if (v && *v && (*end || !n))
        die("%s=\"%s\" is not a positive whole number", name, v);
    return v && *v ? (size_t)n : dflt;
}

static void fill(CUdeviceptr p, size_t n, uint64_t seed)
{
    uint64_t *m = (uint64_t *)(uintptr_t)p;
    for (size_t i = 0; i < n / 8; i++)
        m[i] = seed ^ (i * 0x9e3779b97f4a7c15ull);
}

/* Bits that differ from the pattern. */
static uint64_t bit_errors(CUdeviceptr p, size_t n, uint64_t seed)
{
    const uint64_t *m = (const uint64_t *)(uintptr_t)p;
    uint64_t bad = 0;
    for (size_t i = 0; i < n / 8; i++)
        bad += (uint64_t)__builtin_popcountll(m[i] ^ (seed ^ (i * 0x9e3779b97f4a7c15ull)));
    return bad;
}

static void validate(const char *phase)
{
    char why[512];
    const char *bad = vs_arena_validate(a, why, sizeof why);
    if (bad)
        die("arena invariant broken after %s: %s", phase, bad);
}

static size_t rss_anon(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "RssAnon: %zu kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb << 10;
}

static void *resolve(const char *name, void *handle)
{
    return dlsym(handle, name);
}

static void start(void)
{
    if (cuInit(0) != CUDA_SUCCESS || cuDeviceGet(&dev, 0) != CUDA_SUCCESS ||
        cuDevicePrimaryCtxRetain(&ctx, dev) != CUDA_SUCCESS || cuCtxSetCurrent(ctx) != CUDA_SUCCESS)
        die("simcuda did not start");
    void *h = dlopen(VS_BUILD_DIR "/sim/libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    const char *missing = NULL;
    if (!h || vs_driver_load(&drv, resolve, h, &missing) != 0)
        die("driver table: %s", missing ? missing : dlerror());
    struct vs_names *names = vs_names_create();
    const char *tn[] = {"cold", "warm"}, *sn[] = {"load", "encode", "decode"};
    for (int i = 0; i < 2; i++)
        tags[i] = vs_names_intern(names, tn[i]);
    for (int i = 0; i < 3; i++)
        stages[i] = vs_names_intern(names, sn[i]);
    vs_evict_configure(NULL, names);
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&moves, &attr);
}

static struct vs_arena *new_arena(void)
{
    struct vs_arena_options opt = {.cache_max = SIZE_MAX, .va_chunk = 0};
    struct vs_arena *na;
    if (vs_arena_create(&drv, dev, ctx, &opt, &na) != CUDA_SUCCESS)
        die("arena not created");
    return na;
}

/* --- 1. threads ------------------------------------------------------------------------------ */

struct held {
    CUdeviceptr p;
    size_t n;
    uint64_t seed;
    bool async;
};

static void drop(struct held *h, CUstream s)
{
    pthread_rwlock_rdlock(&moves);
    if (bit_errors(h->p, h->n, h->seed))
        atomic_fetch_add(&lost, 1);
    pthread_rwlock_unlock(&moves);
    if ((h->async ? vs_arena_free_async(a, h->p, s) : vs_arena_free(a, h->p)) != CUDA_SUCCESS)
        die("free of a live block failed");
}

static void move(uint64_t r)
{
    size_t m = 0;
    pthread_rwlock_wrlock(&moves);
    CUresult err = r % 2 ? vs_arena_demote(a, tags[r / 2 % 2], &m)
                         : vs_arena_promote(a, tags[r / 2 % 2], &m);
    pthread_rwlock_unlock(&moves);
    if (err != CUDA_SUCCESS && err != CUDA_ERROR_OUT_OF_MEMORY)
        die("%s failed: %d", r % 2 ? "demote" : "promote", err);
    atomic_fetch_add(r % 2 ? &demotes : &promotes, (long)(m / (2 * MiB)));
}

static void *worker(void *arg)
{
    uint64_t seed = (uintptr_t)arg * 0x2545f4914f6cdd1dull + 1;
    cuCtxSetCurrent(ctx);
    CUstream s;
    if (cuStreamCreate(&s, CU_STREAM_NON_BLOCKING) != CUDA_SUCCESS)
        die("stream");
    struct held h[HELD];
    int n = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        uint64_t r = rnd(&seed) % 100;
        atomic_fetch_add_explicit(&ops, 1, memory_order_relaxed);
        if (r < 45 && n < HELD) {
            struct held *b = &h[n];
            b->n = rnd(&seed) % 10 < 7 ? 512 + rnd(&seed) % (256 << 10)
                                       : (256 << 10) + rnd(&seed) % (6 * MiB);
            b->n &= ~(size_t)7;
            b->async = rnd(&seed) % 2;
            b->seed = rnd(&seed);
            CUresult err = b->async ? vs_arena_alloc_async(a, b->n, s, &b->p)
                                    : vs_arena_alloc(a, b->n, &b->p);
            if (err == CUDA_ERROR_OUT_OF_MEMORY) {
                atomic_fetch_add(&ooms, 1);
                continue;
            }
            if (err != CUDA_SUCCESS)
                die("alloc of %zu bytes: error %d", b->n, err);
            fill(b->p, b->n, b->seed); /* fresh: not a victim until tagged */
            if (vs_arena_set_tag(a, b->p, tags[rnd(&seed) % 2]) != CUDA_SUCCESS)
                die("set_tag of a live block failed");
            n++;
        } else if (r < 85 && n) {
            int i = (int)(rnd(&seed) % (uint64_t)n);
            drop(&h[i], s);
            h[i] = h[--n];
        } else if (r < 90) {
            vs_arena_set_stage(a, stages[rnd(&seed) % 3]);
            atomic_fetch_add(&stage_changes, 1);
        } else if (r < 98) {
            move(rnd(&seed));
        } else {
            cuCtxSynchronize();
            vs_arena_device_synchronized(a);
            atomic_fetch_add(&syncs, 1);
        }
    }
    while (n)
        drop(&h[--n], s);
    cuStreamSynchronize(s);
    vs_arena_stream_destroyed(a, s);
    cuStreamDestroy(s);
    return NULL;
}

static void run_threads(double seconds)
{
    atomic_store(&stop, false);
    pthread_t t[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)i) != 0)
            die("pthread_create");
    double end = now_s() + seconds;
    while (now_s() < end) {
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    atomic_store(&stop, true);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
}

/* Everything freed: after a device sync and a full trim the arena holds no device memory. */
static void quiesce(const char *phase)
{
    validate(phase);
    cuCtxSynchronize();
    vs_arena_device_synchronized(a);
    vs_arena_trim(a, 0);
    validate(phase);
    struct vs_arena_stats st;
    vs_arena_stats(a, &st);
    if (st.live_bytes || st.pending_bytes || st.physical_bytes)
        die("after %s: live %zu, pending %zu, physical %zu bytes", phase, st.live_bytes,
            st.pending_bytes, st.physical_bytes);
    if (simcuda_physical_in_use(0))
        die("after %s: %zu bytes of device memory still in use", phase, simcuda_physical_in_use(0));
}

static void soak_threads(double seconds, size_t slack)
{
    a = new_arena();
    double warm = seconds / 10 < 3 ? 3 : seconds / 10;
    run_threads(warm);
    quiesce("the warm-up");
    size_t rss0 = rss_anon();
    double t0 = now_s();
    run_threads(seconds - warm);
    quiesce("the steady state");
    size_t rss1 = rss_anon();
    printf("soak threads: %d threads, %.0f s (%.0f s steady), %ld operations, %ld granules "
           "demoted, %ld promoted, %ld stage changes, %ld device syncs, %ld OOMs, %ld lost writes; "
           "RssAnon %.1f -> %.1f MiB\n",
           THREADS, seconds, now_s() - t0, atomic_load(&ops), atomic_load(&demotes),
           atomic_load(&promotes), atomic_load(&stage_changes), atomic_load(&syncs),
           atomic_load(&ooms), atomic_load(&lost), rss0 / (double)MiB, rss1 / (double)MiB);
    fflush(stdout);
    if (atomic_load(&lost))
        die("%ld writes lost", atomic_load(&lost));
    if (!atomic_load(&demotes) || !atomic_load(&promotes))
        die("nothing was demoted or promoted");
    if (rss1 > rss0 + slack)
        die("host memory grew by %.1f MiB in the steady state (bound %.1f MiB)",
            (rss1 - rss0) / (double)MiB, slack / (double)MiB);
    vs_arena_destroy(a);
}

/* --- 2. cycles ------------------------------------------------------------------------------- */

static bool by_tag0(const struct vs_block_info *info, void *ctx_)
{
    (void)ctx_;
    return info->tag == tags[0];
}

static void soak_cycles(size_t cycles)
{
    a = new_arena();
    const size_t n = 1 * MiB; /* one granule, shared with nothing */
    CUdeviceptr p;
    if (vs_arena_alloc(a, n, &p) != CUDA_SUCCESS || vs_arena_set_tag(a, p, tags[0]) != CUDA_SUCCESS)
        die("cycle block");
    fill(p, n, 0x5eed);
    uint64_t errors = 0;
    double t0 = now_s();
    for (size_t c = 0; c < cycles; c++) {
        size_t m1 = 0, m2 = 0;
        if (vs_arena_demote_if(a, by_tag0, NULL, &m1) != CUDA_SUCCESS ||
            vs_arena_block_demoted_bytes(a, p) != n)
            die("cycle %zu: demote", c);
        if (vs_arena_promote_if(a, by_tag0, NULL, &m2) != CUDA_SUCCESS ||
            vs_arena_block_demoted_bytes(a, p) != 0 || m1 != m2)
            die("cycle %zu: promote", c);
        errors += bit_errors(p, n, 0x5eed);
    }
    printf("soak cycles: %zu demote/promote cycles of a %zu MiB block in %.1f s, %" PRIu64
           " bit errors\n", cycles, n / MiB, now_s() - t0, errors);
    fflush(stdout);
    if (errors)
        die("%" PRIu64 " bit errors", errors);
    validate("the cycles");
    vs_arena_free(a, p);
    quiesce("the cycles");
    vs_arena_destroy(a);
}

/* --- 3. faults ------------------------------------------------------------------------------- */

static const char *const calls[] = {
    "cuMemCreate", "cuMemRelease",     "cuMemMap",         "cuMemSetAccess",     "cuMemUnmap",
    "cuMemcpyAsync", "cuStreamSynchronize", "cuCtxSynchronize", "cuMemAddressReserve",
    "cuEventRecord", "cuEventCreate"};

/* A scene: a few blocks in place (kept checksummed), then one operation under test. */
struct scene {
    CUdeviceptr p[4];
    size_t n[4];
};
enum op { OP_ALLOC, OP_DEMOTE, OP_PROMOTE, OP_FREE_TRIM, OP_N };
static const char *const op_names[] = {"alloc", "demote", "promote", "free+trim"};

static void scene_up(struct scene *s, bool demoted, const char *what)
{
    static const size_t sizes[4] = {5 * MiB, 100 << 10, 3000, 9 * MiB};
    for (int i = 0; i < 4; i++) {
        s->n[i] = sizes[i];
        CUresult err = vs_arena_alloc(a, s->n[i], &s->p[i]);
        if (err != CUDA_SUCCESS || vs_arena_set_tag(a, s->p[i], tags[0]) != CUDA_SUCCESS)
            die("%s: scene block %d: error %d", what, i, err);
        fill(s->p[i], s->n[i], 77 + (uint64_t)i);
    }
    if (demoted && vs_arena_demote(a, tags[0], NULL) != CUDA_SUCCESS)
        die("%s: scene demote", what);
}

static void scene_check(struct scene *s, const char *what)
{
    for (int i = 0; i < 4; i++)
        if (s->p[i] && bit_errors(s->p[i], s->n[i], 77 + (uint64_t)i))
            die("%s: block %d changed", what, i);
}

static void scene_down(struct scene *s, const char *what)
{
    scene_check(s, what);
    for (int i = 0; i < 4; i++)
        if (s->p[i] && vs_arena_free(a, s->p[i]) != CUDA_SUCCESS)
            die("%s: free", what);
    quiesce(what);
}

static CUdeviceptr extra;

static CUresult run_op(enum op op, struct scene *s)
{
    switch (op) {
    case OP_ALLOC: {
        CUresult err = vs_arena_alloc(a, 7 * MiB, &extra);
        if (err == CUDA_SUCCESS)
            vs_arena_free(a, extra);
        return err;
    }
    case OP_DEMOTE:
        return vs_arena_demote(a, tags[0], NULL);
    case OP_PROMOTE:
        return vs_arena_promote(a, tags[0], NULL);
    case OP_FREE_TRIM:
        vs_arena_free(a, s->p[0]);
        s->p[0] = 0;
        cuCtxSynchronize();
        vs_arena_device_synchronized(a);
        vs_arena_trim(a, 0);
        return CUDA_SUCCESS;
    case OP_N:
        break;
    }
    return CUDA_ERROR_INVALID_VALUE;
}

static void soak_faults(void)
{
    a = new_arena();
    long injected = 0, failed_ops = 0;
    for (int op = 0; op < OP_N; op++)
        for (size_t c = 0; c < sizeof calls / sizeof calls[0]; c++) {
            /* Calls in a clean run, counted on the second (the first may probe or reserve). */
            unsigned long n = 0;
            for (int run = 0; run < 2; run++) {
                struct scene s = {0};
                scene_up(&s, op == OP_PROMOTE, op_names[op]);
                unsigned long before = simcuda_call_count(calls[c]);
                if (run_op((enum op)op, &s) != CUDA_SUCCESS)
                    die("%s without a fault failed", op_names[op]);
                n = simcuda_call_count(calls[c]) - before;
                scene_down(&s, op_names[op]);
            }
            struct scene s;
            for (unsigned long k = 1; k <= n; k++) {
                char what[96];
                snprintf(what, sizeof what, "%s with %s:%lu failing", op_names[op], calls[c], k);
                scene_up(&s, op == OP_PROMOTE, what);
                size_t phys = simcuda_physical_in_use(0);
                if (simcuda_fail_call(calls[c], k, CUDA_ERROR_UNKNOWN) != 0)
                    die("cannot arm %s", what);
                unsigned long before = simcuda_call_count(calls[c]);
                CUresult err = run_op((enum op)op, &s);
                if (simcuda_call_count(calls[c]) - before < k)
                    die("%s: the run made fewer calls than the clean one", what);
                injected++;
                validate(what);
                if (err != CUDA_SUCCESS) {
                    failed_ops++;
                    if (simcuda_physical_in_use(0) != phys)
                        die("%s: device memory %zu bytes, %zu before (no exact rollback)", what,
                            simcuda_physical_in_use(0), phys);
                    scene_check(&s, what);
                    if (run_op((enum op)op, &s) != CUDA_SUCCESS)
                        die("%s: no recovery on the next attempt", what);
                    validate(what);
                }
                scene_down(&s, what);
            }
        }
    printf("soak faults: %ld faults injected at every call position of %zu driver calls in "
           "alloc, demote, promote and free+trim; %ld made the operation fail, all rolled back, "
           "no leak\n", injected, sizeof calls / sizeof calls[0], failed_ops);
    vs_arena_destroy(a);
}

int main(void)
{
    size_t seconds = env_size("SOAK_SECONDS", 600), cycles = env_size("SOAK_CYCLES", 10000);
    size_t slack = env_size("SOAK_RSS_SLACK_MIB", 16) * MiB;
    if (!getenv("SIMCUDA_VRAM"))
        setenv("SIMCUDA_VRAM", "1GiB", 1);
    start();
    soak_faults();
    soak_cycles(cycles);
    soak_threads((double)seconds, slack);
    printf("soak: passed\n");
    return 0;
}
