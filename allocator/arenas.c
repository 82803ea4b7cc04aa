/* The process's arenas, one per device ordinal, created on first use.
 *
 * Invariants: an arena, once published in `arenas`, stays until vs_arenas_teardown; creation is
 * serialised by `mu`, lookups are lock-free (acquire loads). A device whose arena could not be
 * created is remembered as failed and served by the driver (the hooks pass such calls through).
 */
#include <pthread.h>
#include <stdlib.h>

#include "allocator/arenas.h"
#include "allocator/evict.h"
#include "allocator/internal.h"

#define VS_MAX_DEVICES 64

static const struct vs_driver *drv;
static struct vs_arena_options options;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct vs_arena *_Atomic arenas[VS_MAX_DEVICES];
static _Atomic CUresult failed[VS_MAX_DEVICES];
static _Atomic unsigned teardowns; /* invalidates the threads' last-context caches */

/* The process's current stage: its one copy (docs/architecture.md, "State and its owners").
 * Kept here, below the interposer's stage stack (interpose/stage.c), because the arenas read it
 * on every allocation and eviction decision and must not depend on the interposer; the stack
 * sets it to its top. Stages are process-wide, so every arena shares it. */
static _Atomic uint32_t current_stage;

uint32_t vs_arenas_stage(void)
{
    return atomic_load_explicit(&current_stage, memory_order_acquire);
}

void vs_arenas_set_stage(uint32_t stage)
{
    atomic_store_explicit(&current_stage, stage, memory_order_release);
}

void vs_arenas_setup(const struct vs_driver *d, const struct vs_arena_options *opt)
{
    pthread_mutex_lock(&mu);
    drv = d;
    options = *opt;
    pthread_mutex_unlock(&mu);
}

CUresult vs_arenas_current(struct vs_arena **out)
{
    static _Thread_local CUcontext last_ctx;
    static _Thread_local struct vs_arena *last_arena;
    static _Thread_local unsigned last_teardowns;
    if (!drv)
        return CUDA_ERROR_NOT_INITIALIZED;
    CUcontext ctx = NULL;
    CUresult err = drv->cuCtxGetCurrent(&ctx);
    if (err != CUDA_SUCCESS)
        return err;
    if (!ctx)
        return CUDA_ERROR_INVALID_CONTEXT;
    if (ctx == last_ctx && last_arena && last_teardowns == atomic_load(&teardowns)) {
        *out = last_arena;
        return CUDA_SUCCESS;
    }
    CUdevice dev;
    err = drv->cuCtxGetDevice(&dev);
    if (err != CUDA_SUCCESS)
        return err;
    if (dev < 0 || dev >= VS_MAX_DEVICES)
        return CUDA_ERROR_NOT_SUPPORTED;
    struct vs_arena *a = atomic_load(&arenas[dev]);
    if (!a) {
        pthread_mutex_lock(&mu);
        a = atomic_load(&arenas[dev]);
        err = atomic_load(&failed[dev]);
        if (!a && err == CUDA_SUCCESS) {
            err = vs_arena_create(drv, dev, ctx, &options, &a);
            if (err == CUDA_SUCCESS) {
                vs_arena_stage_seen(a, vs_arenas_stage());
                atomic_store(&arenas[dev], a);
            }
            else
                atomic_store(&failed[dev], err);
        }
        pthread_mutex_unlock(&mu);
        if (!a)
            return err;
    }
    last_ctx = ctx;
    last_arena = a;
    last_teardowns = atomic_load(&teardowns);
    *out = a;
    return CUDA_SUCCESS;
}

struct vs_arena *vs_arenas_owner(CUdeviceptr dptr)
{
    for (int d = 0; d < VS_MAX_DEVICES; d++) {
        struct vs_arena *a = atomic_load_explicit(&arenas[d], memory_order_acquire);
        if (a && vs_arena_owns(a, dptr))
            return a;
    }
    return NULL;
}

bool vs_arenas_reserved(int ordinal, size_t *bytes)
{
    if (ordinal < 0 || ordinal >= VS_MAX_DEVICES)
        return false;
    struct vs_arena *a = atomic_load_explicit(&arenas[ordinal], memory_order_acquire);
    if (!a)
        return false;
    *bytes = vs_arena_reserved(a);
    return true;
}

void vs_arenas_each(void (*fn)(struct vs_arena *a, void *ctx), void *ctx)
{
    for (int d = 0; d < VS_MAX_DEVICES; d++) {
        struct vs_arena *a = atomic_load_explicit(&arenas[d], memory_order_acquire);
        if (a)
            fn(a, ctx);
    }
}

void vs_arenas_teardown(void)
{
    pthread_mutex_lock(&mu);
    atomic_fetch_add(&teardowns, 1);
    for (int d = 0; d < VS_MAX_DEVICES; d++) {
        vs_arena_destroy(atomic_exchange(&arenas[d], NULL));
        atomic_store(&failed[d], CUDA_SUCCESS);
    }
    pthread_mutex_unlock(&mu);
}

/* --- eviction over every arena ---------------------------------------------------------------- */


struct each_call {
    uint32_t name;
    CUresult (*op)(struct vs_arena *a, uint32_t name, size_t *moved);
    CUresult first;
    size_t moved;
};

static void call_one(struct vs_arena *a, void *ctx)
{
    struct each_call *c = ctx;
    size_t m = 0;
    CUresult err = c->op(a, c->name, &m);
    c->moved += m;
    if (c->first == CUDA_SUCCESS)
        c->first = err;
}

static CUresult call_all(uint32_t name, CUresult (*op)(struct vs_arena *, uint32_t, size_t *),
                         size_t *moved)
{
    struct each_call c = {name, op, CUDA_SUCCESS, 0};
    vs_arenas_each(call_one, &c);
    if (moved)
        *moved = c.moved;
    return c.first;
}

static CUresult stage_begin_op(struct vs_arena *a, uint32_t stage, size_t *moved)
{
    (void)moved;
    return vs_arena_stage_begin(a, stage);
}

static CUresult apply_rule_op(struct vs_arena *a, uint32_t name, size_t *moved)
{
    (void)moved;
    return vs_arena_apply_rule(a, name);
}

CUresult vs_arenas_stage_begin(uint32_t stage)
{
    vs_arenas_set_stage(stage);
    return call_all(stage, stage_begin_op, NULL);
}

CUresult vs_arenas_apply_rule(uint32_t name)
{
    return call_all(name, apply_rule_op, NULL);
}

CUresult vs_arenas_demote(uint32_t name, size_t *moved)
{
    return call_all(name, vs_arena_demote, moved);
}

CUresult vs_arenas_promote(uint32_t name, size_t *moved)
{
    return call_all(name, vs_arena_promote, moved);
}

