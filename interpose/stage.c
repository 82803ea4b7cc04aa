/* The stage stack (see stage.h). */
#include "interpose/stage.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "allocator/arenas.h"
#include "allocator/log.h"
#include "interpose/borrow.h"
#include "interpose/ledger_pub.h"
#include "interpose/runtime.h"
#include "vramshim.h"

struct entry {
    uint32_t id;
    enum vs_stage_source src;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct entry stack[VS_STAGE_DEPTH];
static size_t depth;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void fork_lock(void)
{
    pthread_mutex_lock(&mu);
}

static void fork_unlock(void)
{
    pthread_mutex_unlock(&mu);
}

static void register_fork(void)
{
    if (pthread_atfork(fork_lock, fork_unlock, fork_unlock) != 0)
        vs_log(VS_LOG_WARN, "cannot register fork handlers for stages");
}

static void lock(void)
{
    pthread_once(&fork_once, register_fork);
    pthread_mutex_lock(&mu);
}

/* The trace's "api" of a change: what caused it. */
static const char *source_api(enum vs_stage_source src, bool begin)
{
    switch (src) {
    case VS_STAGE_API:
        return begin ? "vramshim_stage_begin" : "vramshim_stage_end";
    case VS_STAGE_CTL:
        return "ctl";
    case VS_STAGE_SITE:
        break;
    }
    return "match";
}

static void trace_change(uint32_t id, bool begin, enum vs_stage_source src, struct vs_site *site)
{
    if (!vs_trace_enabled())
        return;
    struct vs_trace_event e = {
        .ev = VS_EV_STAGE,
        .api = source_api(src, begin),
        .dev = -1,
        .stage = vs_names_str(vs_rt_names(), id),
        .action = begin ? "begin" : "end",
    };
    vs_trace_emit_at(&e, site);
}

/* The caller's site for the trace, walked before the stage mutex is taken: reading Python
 * frames may wait for the GIL, which must never happen under a lock of ours. */
static struct vs_site *caller_site(void)
{
    return vs_trace_enabled() ? vs_site_capture_caller() : NULL;
}

/* Makes the top of the stack (mutex held) the current stage, kept by the allocator
 * (vs_arenas_stage), and runs the arenas' rule for it (prefetch, headroom). Returns the stage
 * when its headroom is unmet (0 otherwise): the caller borrows for it once the mutex is
 * released, since a borrower waits for peers (borrow.h). */
static uint32_t publish(void)
{
    uint32_t top = depth ? stack[depth - 1].id : 0;
    CUresult r = vs_arenas_stage_begin(top);
    vs_ledger_pub_poke();
    if (r != CUDA_SUCCESS && r != CUDA_ERROR_NOT_SUPPORTED)
        vs_log(VS_LOG_INFO, "stage %s: its policy rule stopped early (error %d)",
               top ? vs_names_str(vs_rt_names(), top) : "(none)", (int)r);
    return r == CUDA_ERROR_OUT_OF_MEMORY ? top : 0;
}

/* Releases the mutex, then borrows for `unmet`, publish's result. */
static void unlock_and_borrow(uint32_t unmet)
{
    pthread_mutex_unlock(&mu);
    if (unmet)
        vs_borrow_headroom(unmet);
}

/* Pops entries down to depth `to` (mutex held), tracing each end. */
static void pop_to(size_t to, enum vs_stage_source src, struct vs_site *site)
{
    while (depth > to) {
        depth--;
        trace_change(stack[depth].id, false, src, site);
    }
}

static int intern(const char *name, uint32_t *id)
{
    if (!name || !vs_name_valid(name, strnlen(name, VS_NAME_MAX + 1)))
        return VRAMSHIM_EINVAL;
    struct vs_names *names = vs_rt_names();
    *id = names ? vs_names_intern(names, name) : 0;
    if (!*id) {
        vs_log(VS_LOG_ERROR, "stage registry full or unavailable; stage %s not begun", name);
        return VRAMSHIM_EFAIL;
    }
    return VRAMSHIM_OK;
}

int vs_stage_begin(const char *name, enum vs_stage_source src)
{
    uint32_t id;
    int rc = intern(name, &id);
    if (rc != VRAMSHIM_OK)
        return rc;
    struct vs_site *site = caller_site();
    lock();
    if (depth == VS_STAGE_DEPTH) {
        pthread_mutex_unlock(&mu);
        vs_log(VS_LOG_ERROR, "stage %s not begun: %d stages are open already", name,
               VS_STAGE_DEPTH);
        return VRAMSHIM_EDEPTH;
    }
    stack[depth++] = (struct entry){id, src};
    trace_change(id, true, src, site);
    unlock_and_borrow(publish());
    return VRAMSHIM_OK;
}

int vs_stage_end(const char *name, enum vs_stage_source src)
{
    if (!name || !vs_name_valid(name, strnlen(name, VS_NAME_MAX + 1)))
        return VRAMSHIM_EINVAL;
    struct vs_names *names = vs_rt_names();
    uint32_t id = names ? vs_names_find(names, name) : 0;
    struct vs_site *site = caller_site();
    lock();
    /* Call-site stages above the innermost API/ctl stage end with it. */
    size_t i = depth;
    while (i > 0 && stack[i - 1].src == VS_STAGE_SITE && stack[i - 1].id != id)
        i--;
    int rc = VRAMSHIM_OK;
    uint32_t unmet = 0;
    if (i > 0 && stack[i - 1].id == id) {
        pop_to(i - 1, src, site);
        unmet = publish();
    } else {
        bool open = false;
        for (size_t k = 0; k < i && id; k++)
            open |= stack[k].id == id;
        rc = open ? VRAMSHIM_EMISMATCH : VRAMSHIM_ENOTFOUND;
    }
    const char *inner = i > 0 ? vs_names_str(names, stack[i - 1].id) : NULL;
    unlock_and_borrow(unmet);
    if (rc == VRAMSHIM_EMISMATCH)
        vs_log(VS_LOG_WARN, "stage_end(%s): stage %s begun inside it is still open; nothing ended",
               name, inner);
    else if (rc == VRAMSHIM_ENOTFOUND)
        vs_log(VS_LOG_WARN, "stage_end(%s): no such stage is open", name);
    return rc;
}

void vs_stage_begin_site(uint32_t id, struct vs_site *site)
{
    if (!id || vs_arenas_stage() == id)
        return;
    lock();
    if (depth && stack[depth - 1].id == id) {
        pthread_mutex_unlock(&mu);
        return;
    }
    if (depth && stack[depth - 1].src == VS_STAGE_SITE)
        pop_to(depth - 1, VS_STAGE_SITE, site);
    if (depth < VS_STAGE_DEPTH) {
        stack[depth++] = (struct entry){id, VS_STAGE_SITE};
        trace_change(id, true, VS_STAGE_SITE, site);
    }
    unlock_and_borrow(publish());
}

uint32_t vs_stage_current(void)
{
    return vs_arenas_stage();
}

size_t vs_stage_stack(uint32_t *out, size_t max)
{
    lock();
    size_t n = depth;
    for (size_t i = 0; i < n && i < max; i++)
        out[i] = stack[i].id;
    pthread_mutex_unlock(&mu);
    return n;
}
