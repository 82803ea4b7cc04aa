/* Call-site capture for the trace: the compiler runtime's unwinder (_Unwind_Backtrace, linked
 * into the shim from libgcc_eh.a and hidden, see Makefile), the frames of the shim itself
 * dropped, plus the Python frames when the calling thread holds the GIL (trace_python.c); one
 * site per distinct chain of return addresses and Python lines.
 *
 * Invariants: per event the cost is one stack walk, the Python walk (if any) and a hash; a
 * per-thread direct-mapped cache answers repeated sites without a lock, the shared table (mutex)
 * is consulted only on a cache miss. Text of Python frames is made once per new site, on the
 * capturing thread (it needs the GIL); native frames are symbolised later by the writer. Sites
 * are never freed, so cached pointers stay valid in every thread.
 */
#include <link.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unwind.h>
#include <valgrind/valgrind.h>

#include "allocator/trace_internal.h"

/* Frames captured: the shim's own (hook, family handler, emit, capture) plus the program's. */
#define VS_SITE_CAPTURE (VS_SITE_FRAMES + 8)
#define VS_SITE_CACHE 64

static pthread_mutex_t site_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vs_site *site_table;
static uint32_t site_next_id = 1;

/* Address range of the executable segments of the object holding this code. */
static uintptr_t self_lo, self_hi;
static pthread_once_t self_once = PTHREAD_ONCE_INIT;

static int find_self(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    uintptr_t probe = (uintptr_t)data;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && probe >= lo && probe < hi) {
            self_lo = lo;
            self_hi = hi;
            return 1;
        }
    }
    return 0;
}

static void locate_self(void)
{
    dl_iterate_phdr(find_self, (void *)(uintptr_t)&vs_site_capture);
}

static uint64_t chain_hash(const uintptr_t *frames, unsigned n, const struct vs_py_frame *py,
                           unsigned npy)
{
    uint64_t h = 0xcbf29ce484222325ull ^ n ^ (uint64_t)npy << 32;
    for (unsigned i = 0; i < n + npy; i++) {
        h ^= i < n ? frames[i] : (uintptr_t)py[i - n].code ^ (uint64_t)py[i - n].line << 48;
        h *= 0x100000001b3ull;
        h ^= h >> 31;
    }
    return h ? h : 1;
}

static struct vs_site *lookup(uint64_t hash)
{
    pthread_mutex_lock(&site_lock);
    struct vs_site *s;
    HASH_FIND(hh, site_table, &hash, sizeof hash, s);
    pthread_mutex_unlock(&site_lock);
    return s;
}

/* Adds a new site (its Python frames described here, where the GIL is held); returns the site
 * another thread added meanwhile if there is one. */
static struct vs_site *intern(uint64_t hash, const uintptr_t *frames, unsigned n,
                              const struct vs_py_frame *py, unsigned npy)
{
    struct vs_site *fresh = calloc(1, sizeof *fresh);
    if (!fresh)
        return NULL;
    fresh->hash = hash;
    fresh->nframes = n;
    memcpy(fresh->frames, frames, n * sizeof *frames);
    for (unsigned i = 0; i < npy; i++)
        if ((fresh->py[fresh->npy] = vs_py_describe(&py[i])))
            fresh->npy++;

    pthread_mutex_lock(&site_lock);
    struct vs_site *s;
    HASH_FIND(hh, site_table, &hash, sizeof hash, s);
    if (!s) {
        s = fresh;
        s->id = site_next_id++;
        HASH_ADD(hh, site_table, hash, sizeof s->hash, s);
    }
    pthread_mutex_unlock(&site_lock);
    if (s != fresh) {
        for (unsigned i = 0; i < fresh->npy; i++)
            free(fresh->py[i]);
        free(fresh);
    }
    return s;
}

/* The stack walk. _Unwind_Backtrace interprets each frame's DWARF CFI, about 100 ns a frame, so
 * each thread remembers its last walks by the CFA of walk_stack. For each frame the unwinder
 * reports its IP and its stack pointer at the call it made (the callee's CFA); on x86-64 the call
 * stored that IP, the return address, just below (CFA - 8). When walk_stack's CFA is the
 * remembered one and every remembered slot still holds the remembered return address, the stack
 * holds the same chain (each frame's CFA follows from the callee's CFA and the frame's own code)
 * and the walk is skipped. Slots are read only inside this thread's own stack. */
#define VS_WALK_MEMO 4

struct walk {
    void **ips;
    uintptr_t cfas[VS_SITE_CAPTURE];
    uintptr_t floor; /* frames below walk_stack's caller (the unwinder's own) are left out */
    int n, max;
};

struct walk_memo {
    uintptr_t cfa0;
    int n;
    void *ips[VS_SITE_CAPTURE];
    uintptr_t cfas[VS_SITE_CAPTURE];
};

static _Unwind_Reason_Code walk_frame(struct _Unwind_Context *ctx, void *arg)
{
    struct walk *w = arg;
    uintptr_t ip = _Unwind_GetIP(ctx), cfa = _Unwind_GetCFA(ctx);
    if (!ip || w->n == w->max)
        return _URC_END_OF_STACK;
    if (cfa < w->floor)
        return _URC_NO_REASON;
    w->cfas[w->n] = cfa;
    w->ips[w->n++] = (void *)ip;
    return _URC_NO_REASON;
}

#if defined(__x86_64__)
/* This thread's stack, [lo, hi); lo == hi when unknown (no memo then). */
static __thread uintptr_t stack_lo, stack_hi;
static __thread bool stack_known;
static __thread struct walk_memo memo[VS_WALK_MEMO];

static bool on_stack(uintptr_t lo, uintptr_t hi)
{
    /* Under valgrind a changed chain's slot may be an uninitialised local of the program: no
     * memo there, rather than a report against the program's memory. */
    if (!stack_known && !RUNNING_ON_VALGRIND) {
        stack_known = true;
        pthread_attr_t a;
        void *base;
        size_t size;
        if (pthread_getattr_np(pthread_self(), &a) == 0) {
            if (pthread_attr_getstack(&a, &base, &size) == 0) {
                stack_lo = (uintptr_t)base;
                stack_hi = stack_lo + size;
            }
            pthread_attr_destroy(&a);
        }
    }
    return lo >= stack_lo && hi <= stack_hi && lo < hi;
}

/* Fills raw from the memo for this CFA; returns the frame count, 0 when it does not hold. A slot
 * of a changed chain may lie in another frame's locals, which AddressSanitizer poisons. */
__attribute__((no_sanitize_address)) static int walk_recall(uintptr_t cfa0, void **raw)
{
    const struct walk_memo *m = &memo[(cfa0 >> 4) % VS_WALK_MEMO];
    if (m->cfa0 != cfa0 || m->n == 0 || !on_stack(cfa0, m->cfas[m->n - 1]))
        return 0;
    for (int i = 0; i < m->n; i++)
        if (*(void *const *)(m->cfas[i] - sizeof(void *)) != m->ips[i])
            return 0;
    memcpy(raw, m->ips, (size_t)m->n * sizeof *raw);
    return m->n;
}

static void walk_remember(uintptr_t cfa0, const struct walk *w)
{
    if (w->n < 2 || w->cfas[0] != cfa0 || !on_stack(cfa0, w->cfas[w->n - 1]))
        return;
    struct walk_memo *m = &memo[(cfa0 >> 4) % VS_WALK_MEMO];
    m->cfa0 = cfa0;
    m->n = w->n;
    memcpy(m->ips, w->ips, (size_t)w->n * sizeof *w->ips);
    memcpy(m->cfas, w->cfas, (size_t)w->n * sizeof *w->cfas);
}
#endif

/* Return addresses of the calling chain, innermost first (raw[0] is in the capturing code). */
__attribute__((noinline)) static int walk_stack(void **raw)
{
    struct walk w = {.ips = raw, .max = VS_SITE_CAPTURE};
#if defined(__x86_64__)
    uintptr_t cfa0 = (uintptr_t)__builtin_dwarf_cfa();
    w.floor = cfa0;
    int got = walk_recall(cfa0, raw);
    if (got > 0)
        return got;
    _Unwind_Backtrace(walk_frame, &w);
    walk_remember(cfa0, &w);
#else
    _Unwind_Backtrace(walk_frame, &w);
#endif
    return w.n;
}

struct vs_site *vs_site_capture(void)
{
    static __thread struct {
        uint64_t hash;
        struct vs_site *site;
    } cache[VS_SITE_CACHE];

    pthread_once(&self_once, locate_self);
    void *raw[VS_SITE_CAPTURE];
    int got = walk_stack(raw);
    if (got <= 0)
        return NULL;
    /* Drop the leading run inside this object; keep everything when all of it is (the trace
     * linked into a program rather than the preloaded shim). */
    int first = 0;
    while (first < got && (uintptr_t)raw[first] >= self_lo && (uintptr_t)raw[first] < self_hi)
        first++;
    if (first == got)
        first = 0;
    uintptr_t frames[VS_SITE_FRAMES];
    unsigned n = 0;
    for (int i = first; i < got && n < VS_SITE_FRAMES; i++)
        frames[n++] = (uintptr_t)raw[i];
    struct vs_py_frame py[VS_PY_FRAMES];
    unsigned npy = vs_py_capture(py, VS_PY_FRAMES);

    uint64_t hash = chain_hash(frames, n, py, npy);
    unsigned slot = (unsigned)(hash % VS_SITE_CACHE);
    struct vs_site *s = cache[slot].hash == hash ? cache[slot].site : lookup(hash);
    if (!s)
        s = intern(hash, frames, n, py, npy);
    vs_py_release(py, npy);
    if (s) {
        cache[slot].hash = hash;
        cache[slot].site = s;
    }
    return s;
}

void vs_site_fork_prepare(void)
{
    pthread_mutex_lock(&site_lock);
}

void vs_site_fork_release(void)
{
    pthread_mutex_unlock(&site_lock);
}

/* --- sites for callers outside the trace (trace.h) -------------------------------------------- */

struct vs_site *vs_site_capture_caller(void)
{
    return vs_site_capture();
}

_Atomic uint64_t *vs_site_memo(struct vs_site *s)
{
    return &s->memo;
}

unsigned vs_site_match_frames(const struct vs_site *s, const char **out, unsigned max, char *buf,
                              size_t buflen)
{
    unsigned n = 0;
    size_t used = 0;
    for (unsigned i = 0; i < s->nframes && n < max; i++) {
        char *name = buf + used;
        uintptr_t off;
        /* A return address: look up ip - 1 so a call ending a function names that function. */
        if (used >= buflen ||
            vs_trace_function_of(s->frames[i] - 1, name, buflen - used, &off) != 0) {
            out[n++] = "";
            continue;
        }
        out[n++] = name;
        used += strlen(name) + 1;
    }
    for (unsigned i = 0; i < s->npy && n < max; i++)
        out[n++] = s->py[i];
    return n;
}
