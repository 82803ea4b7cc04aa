/* Small objects and physical memory on the bundled workloads (tests/workloads), replayed
 * in-process through the arena on simcuda (a 24 GiB device), as `vramshim replay` does: every
 * trace stream a stream of its own, the device idle before an allocation that follows frees.
 *
 * 1. At the workload's peak of live bytes, for each stage and tag: its live bytes, the part in
 *    small objects (<= 256 KiB), and what a demote of that name moves of them (bytes of its
 *    blocks in host memory afterwards; promoted back before the next name). This is the figure
 *    grouping small objects by stage and tag is for (docs/eviction.md).
 * 2. At the peak of physical memory (granules the arena holds), where it goes, per cause, in MiB,
 *    and peak live / peak physical (docs/arena.md, "Utilisation").
 * Ratios and sizes only; nothing here is timed.
 */
#include <dlfcn.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "allocator/evict.h"
#include "allocator/internal.h"
#include "tools/simcuda/simcuda.h"

#define MiB 1048576.0
#define MAX_NAMES 32
#define MAX_STREAMS 16

static const char *const workloads[] = {"sdxl-vae-decode-small", "wan21-vae-decode-small",
                                        "wan22-vae-decode-small", "dit-denoise-small"};

struct ev {
    bool alloc, async;
    uint64_t ptr, size, stream;
    uint32_t stage, tag;
};

struct trace {
    struct ev *v;
    size_t n;
    char *names[MAX_NAMES + 1]; /* id -> name, ids from 1 */
    uint32_t nnames;
};

struct live {
    uint64_t tptr;
    CUdeviceptr p;
    size_t size;
    uint32_t stage, tag;
};

static struct vs_driver drv;

static void *resolve(const char *name, void *handle)
{
    return dlsym(handle, name);
}

static uint32_t intern(struct trace *t, const char *s)
{
    if (!s)
        return 0;
    for (uint32_t i = 1; i <= t->nnames; i++)
        if (!strcmp(t->names[i], s))
            return i;
    if (t->nnames == MAX_NAMES)
        return 0;
    t->names[++t->nnames] = strdup(s);
    return t->names[t->nnames] ? t->nnames : 0;
}

static uint64_t hex(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? strtoull(s, NULL, 16) : 0;
}

static int load(const char *name, struct trace *t)
{
    char path[512];
    snprintf(path, sizeof path, "%s/tests/workloads/%s.jsonl", VS_SOURCE_DIR, name);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char *line = NULL;
    size_t cap = 0;
    *t = (struct trace){0};
    while (getline(&line, &cap, f) > 0) {
        json_t *o = json_loads(line, 0, NULL);
        const char *kind = o ? json_string_value(json_object_get(o, "ev")) : NULL;
        bool alloc = kind && !strcmp(kind, "alloc");
        if (alloc || (kind && !strcmp(kind, "free"))) {
            struct ev *v = realloc(t->v, (t->n + 1) * sizeof *v);
            if (!v)
                break;
            t->v = v;
            const char *api = json_string_value(json_object_get(o, "api"));
            v[t->n++] = (struct ev){
                .alloc = alloc, .async = api && strstr(api, "Async"), .ptr = hex(o, "ptr"),
                .size = (uint64_t)json_integer_value(json_object_get(o, "size")),
                .stream = hex(o, "stream"),
                .stage = intern(t, json_string_value(json_object_get(o, "stage"))),
                .tag = intern(t, json_string_value(json_object_get(o, "tag")))};
        }
        json_decref(o);
    }
    free(line);
    fclose(f);
    return t->n ? 0 : -1;
}

/* Index of the alloc after which live bytes peak. */
static size_t peak_live_index(const struct trace *t)
{
    size_t live = 0, peak = 0, at = 0;
    struct live *l = calloc(t->n, sizeof *l);
    size_t nl = 0;
    for (size_t i = 0; l && i < t->n; i++) {
        if (t->v[i].alloc) {
            l[nl++] = (struct live){.tptr = t->v[i].ptr, .size = t->v[i].size};
            live += t->v[i].size;
            if (live > peak) {
                peak = live;
                at = i;
            }
            continue;
        }
        for (size_t k = 0; k < nl; k++)
            if (l[k].tptr == t->v[i].ptr) {
                live -= l[k].size;
                l[k] = l[--nl];
                break;
            }
    }
    free(l);
    return at;
}

/* Where the arena's physical memory goes, in bytes. */
struct waste {
    size_t physical, live;
    size_t small_rounding; /* class size - request, of live small objects */
    size_t small_free;     /* free (idle, pending, cached) objects in pages */
    size_t page_tail;      /* page bytes no object fits in */
    size_t segment_free;   /* segment units no page uses */
    size_t large_rounding; /* block size - request, of live large blocks */
    size_t partial_free;   /* free VA in granules that also hold live data */
    size_t pending;        /* large blocks freed, not yet reusable */
    size_t cached;         /* free granules (mapped or not) */
    size_t segments;       /* granules holding small objects */
};

static void add_page(struct waste *w, const struct vs_page *pg)
{
    w->page_tail += pg->size - (size_t)pg->nobj * pg->objsize;
    for (unsigned j = 0; j < pg->nobj; j++) {
        size_t req = atomic_load(&pg->meta[j].req);
        if (req) {
            w->live += req;
            w->small_rounding += pg->objsize - req;
        } else {
            w->small_free += pg->objsize;
        }
    }
}

static void measure(struct vs_arena *a, struct waste *w)
{
    *w = (struct waste){0};
    pthread_mutex_lock(&a->mu);
    w->physical = vs_arena_reserved(a);
    w->cached = a->cached.n * a->gran;
    w->segment_free = vs_segments_free_bytes(a);
    for (struct vs_reservation *r = a->res; r; r = r->next)
        for (size_t i = 0; i < r->nslots; i++) {
            const struct vs_slot *s = &r->slots[i];
            if (!s->h || s->host)
                continue;
            CUdeviceptr lo = r->base + i * a->gran, hi = lo + a->gran;
            if (!s->busy) {
                w->cached += a->gran;
                continue;
            }
            for (struct vs_block *b = s->first; b && b->start < hi; b = b->next) {
                CUdeviceptr from = b->start > lo ? b->start : lo;
                CUdeviceptr to = b->start + b->size < hi ? b->start + b->size : hi;
                size_t part = to - from;
                if (b->state == VS_IDLE)
                    w->partial_free += part;
                else if (b->state == VS_PENDING)
                    w->pending += part;
                else if (b->state == VS_LIVE && b->start >= lo) {
                    w->live += b->req; /* counted once, in its first slot */
                    w->large_rounding += b->size - b->req;
                }
            }
            _Atomic(struct vs_page *) *pages = atomic_load(&s->pages);
            if (!pages || !s->first || s->first->state != VS_PAGE)
                continue;
            w->segments++;
            const struct vs_page *last = NULL;
            for (size_t u = 0; u < a->gran / VS_PAGE_MIN; u++) {
                const struct vs_page *pg = atomic_load(&pages[u]);
                if (pg && pg != last)
                    add_page(w, pg);
                last = pg ? pg : last;
            }
        }
    pthread_mutex_unlock(&a->mu);
}

struct replay {
    struct vs_arena *a;
    struct live *l;
    size_t nl;
    uint64_t tstream[MAX_STREAMS];
    CUstream stream[MAX_STREAMS];
    size_t nstreams;
};

static CUstream stream_of(struct replay *rp, uint64_t ts)
{
    if (!ts)
        return 0;
    for (size_t i = 0; i < rp->nstreams; i++)
        if (rp->tstream[i] == ts)
            return rp->stream[i];
    CUstream s = 0;
    if (rp->nstreams < MAX_STREAMS && cuStreamCreate(&s, CU_STREAM_NON_BLOCKING) == CUDA_SUCCESS) {
        rp->tstream[rp->nstreams] = ts;
        rp->stream[rp->nstreams++] = s;
    }
    return s;
}

/* Replays events [0, upto]; with w, measures at each new peak of physical memory. */
static int replay(struct replay *rp, const struct trace *t, size_t upto, struct waste *w,
                  size_t *peak_live)
{
    bool freed = false;
    size_t live = 0;
    *peak_live = 0;
    if (w)
        *w = (struct waste){0};
    for (size_t i = 0; i <= upto && i < t->n; i++) {
        const struct ev *e = &t->v[i];
        CUstream s = stream_of(rp, e->stream);
        if (!e->alloc) {
            for (size_t k = 0; k < rp->nl; k++)
                if (rp->l[k].tptr == e->ptr) {
                    CUresult r = e->async ? vs_arena_free_async(rp->a, rp->l[k].p, s)
                                          : vs_arena_free(rp->a, rp->l[k].p);
                    if (r != CUDA_SUCCESS)
                        return -1;
                    live -= rp->l[k].size;
                    rp->l[k] = rp->l[--rp->nl];
                    freed = true;
                    break;
                }
            continue;
        }
        if (freed) {
            cuCtxSynchronize();
            vs_arena_device_synchronized(rp->a);
            freed = false;
        }
        vs_arena_set_stage(rp->a, e->stage);
        struct vs_arena_alloc_req rq = {.size = e->size, .async = e->async, .stream = s,
                                        .tag = e->tag};
        CUdeviceptr p;
        if (vs_arena_alloc_req(rp->a, &rq, &p, NULL) != CUDA_SUCCESS)
            return -1;
        rp->l[rp->nl++] = (struct live){e->ptr, p, e->size, e->stage, e->tag};
        live += e->size;
        if (live > *peak_live)
            *peak_live = live;
        if (w && vs_arena_reserved(rp->a) > w->physical)
            measure(rp->a, w);
    }
    return 0;
}

static bool of_name(const struct vs_block_info *info, void *ctx)
{
    uint32_t name = *(const uint32_t *)ctx;
    return info->stage == name || info->tag == name;
}

/* Part 1: per stage and tag at the peak of live bytes. */
static int demotes(const char *wl, const struct trace *t, struct replay *rp)
{
    size_t peak;
    if (replay(rp, t, peak_live_index(t), NULL, &peak) != 0)
        return -1;
    for (uint32_t id = 1; id <= t->nnames; id++) {
        size_t live = 0, small = 0, moved = 0, small_moved = 0;
        for (size_t k = 0; k < rp->nl; k++)
            if (rp->l[k].stage == id || rp->l[k].tag == id) {
                live += rp->l[k].size;
                small += rp->l[k].size <= VS_SMALL_MAX ? rp->l[k].size : 0;
            }
        if (!live)
            continue;
        uint32_t name = id;
        if (vs_arena_demote_if(rp->a, of_name, &name, NULL) != CUDA_SUCCESS)
            return -1;
        for (size_t k = 0; k < rp->nl; k++)
            if (rp->l[k].stage == id || rp->l[k].tag == id) {
                size_t d = vs_arena_block_demoted_bytes(rp->a, rp->l[k].p);
                moved += d;
                small_moved += rp->l[k].size <= VS_SMALL_MAX ? d : 0;
            }
        if (vs_arena_promote_if(rp->a, of_name, &name, NULL) != CUDA_SUCCESS)
            return -1;
        printf("%-24s %-14s %10.2f %10.3f %10.3f %8.3f %10.3f %8.3f\n", wl, t->names[id],
               live / MiB, small / MiB, small_moved / MiB, small ? (double)small_moved / small : 0,
               moved / MiB, (double)moved / live);
    }
    return 0;
}

static void print_waste(const char *wl, const struct waste *w, size_t peak_live)
{
    size_t known = w->live + w->small_rounding + w->small_free + w->page_tail + w->segment_free +
                   w->large_rounding + w->partial_free + w->pending + w->cached;
    printf("%-24s %7.1f %7.1f %6.4f %6.2f %6.2f %6.2f %6.2f %6.2f %6.2f %6.2f %6.2f %6.2f %4zu\n",
           wl, w->physical / MiB, peak_live / MiB, (double)peak_live / w->physical,
           w->small_rounding / MiB, w->small_free / MiB, w->page_tail / MiB,
           w->segment_free / MiB, w->large_rounding / MiB, w->partial_free / MiB,
           w->pending / MiB, w->cached / MiB, ((double)w->physical - (double)known) / MiB,
           w->segments);
}

static struct vs_arena *new_arena(CUdevice dev, CUcontext ctx)
{
    struct vs_arena_options opt = {.cache_max = SIZE_MAX};
    struct vs_arena *a = NULL;
    return vs_arena_create(&drv, dev, ctx, &opt, &a) == CUDA_SUCCESS ? a : NULL;
}

int main(void)
{
    setenv("SIMCUDA_VRAM", "24GiB", 0);
    CUdevice dev;
    CUcontext ctx;
    if (cuInit(0) || cuDeviceGet(&dev, 0) || cuDevicePrimaryCtxRetain(&ctx, dev) ||
        cuCtxSetCurrent(ctx)) {
        fprintf(stderr, "bench_groups: no simcuda device\n");
        return 1;
    }
    void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    const char *missing = NULL;
    if (!h || vs_driver_load(&drv, resolve, h, &missing) != 0) {
        fprintf(stderr, "bench_groups: driver table incomplete (%s)\n", missing ? missing : "?");
        return 1;
    }
    size_t nw = sizeof workloads / sizeof workloads[0];
    struct trace t[sizeof workloads / sizeof workloads[0]];
    for (size_t i = 0; i < nw; i++)
        if (load(workloads[i], &t[i]) != 0) {
            fprintf(stderr, "bench_groups: cannot read workload %s\n", workloads[i]);
            return 1;
        }
    int rc = 0;
    printf("per stage and tag at the peak of live bytes: a demote of that name, then promote "
           "(MiB; small: requests <= 256 KiB)\n");
    printf("%-24s %-14s %10s %10s %10s %8s %10s %8s\n", "workload", "name", "live", "small",
           "small dem", "share", "demoted", "share");
    for (size_t i = 0; i < nw && !rc; i++) {
        struct replay rp = {.a = new_arena(dev, ctx), .l = calloc(t[i].n, sizeof *rp.l)};
        rc = rp.a && rp.l ? demotes(workloads[i], &t[i], &rp) : -1;
        vs_arena_destroy(rp.a);
        free(rp.l);
    }
    printf("\nat the peak of physical memory: where it goes (MiB); util = peak live / peak "
           "physical\n");
    printf("%-24s %7s %7s %6s %6s %6s %6s %6s %6s %6s %6s %6s %6s %4s\n", "workload", "phys",
           "live", "util", "round", "sfree", "ptail", "segfr", "lround", "partl", "pend",
           "cache", "other", "segs");
    for (size_t i = 0; i < nw && !rc; i++) {
        struct replay rp = {.a = new_arena(dev, ctx), .l = calloc(t[i].n, sizeof *rp.l)};
        struct waste w;
        size_t peak = 0;
        rc = rp.a && rp.l ? replay(&rp, &t[i], t[i].n, &w, &peak) : -1;
        if (!rc)
            print_waste(workloads[i], &w, peak);
        vs_arena_destroy(rp.a);
        free(rp.l);
    }
    for (size_t i = 0; i < nw; i++) {
        free(t[i].v);
        for (uint32_t k = 1; k <= t[i].nnames; k++)
            free(t[i].names[k]);
    }
    if (rc)
        fprintf(stderr, "bench_groups: a replay, demote or promote failed\n");
    return rc ? 1 : 0;
}
