/* simcuda streams: ordered queues of work, each run by its own worker thread.
 *
 * Invariants (all stream fields are guarded by vs_sim_sched_lock):
 * - Ops of a stream run one at a time in submission order; `completed` is the seq of the last op
 *   that ran, so "everything up to seq ran" is `completed >= seq`.
 * - A held stream's worker runs nothing until released.
 * - Legacy default stream semantics: an op on the legacy stream first waits for everything
 *   already submitted to the blocking streams of its context, and an op on a blocking stream first
 *   waits for everything already submitted to the legacy stream (deps recorded at submission).
 * - A stream is freed when its reference count drops to zero: the owner (until destroyed), its
 *   running worker, and every op dependency or event pointing at it hold a reference.
 * - Per-thread default streams belong to their thread and are destroyed when it exits (queued
 *   work still runs).
 * - In a forked child, work submitted before the fork counts as complete and never runs (it is the
 *   parent's), except on the stream whose worker itself forked, which goes on in the child.
 */
#include "sim.h"

#include <stdlib.h>
#include <string.h>

pthread_mutex_t vs_sim_sched_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t progress = PTHREAD_COND_INITIALIZER; /* an op completed */
static struct vs_sim_stream *streams;
static unsigned long long next_stream_id = 1;

struct ptds_table {
    size_t count;
    struct vs_sim_stream *items[VS_SIM_MAX_DEVICES * 4];
};
static pthread_key_t ptds_key;
static pthread_once_t ptds_once = PTHREAD_ONCE_INIT;

/* ---- lifetime (lock held) -------------------------------------------------------------------- */

static struct vs_sim_stream *stream_new(struct vs_sim_ctx *ctx, unsigned int flags, int priority)
{
    struct vs_sim_stream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->ctx = ctx;
    s->flags = flags;
    s->priority = priority;
    s->refs = 1;
    s->id = next_stream_id++;
    pthread_cond_init(&s->wake, NULL);
    s->next = streams;
    if (streams)
        streams->prev = s;
    streams = s;
    return s;
}

void vs_sim_stream_unref_locked(struct vs_sim_stream *s)
{
    if (--s->refs > 0)
        return;
    if (s->prev)
        s->prev->next = s->next;
    else
        streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    pthread_cond_destroy(&s->wake);
    free(s);
}

void vs_sim_stream_put(struct vs_sim_stream *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&vs_sim_sched_lock);
    vs_sim_stream_unref_locked(s);
    pthread_mutex_unlock(&vs_sim_sched_lock);
}

static void destroy_locked(struct vs_sim_stream *s)
{
    s->destroyed = true;
    pthread_cond_signal(&s->wake);
    vs_sim_stream_unref_locked(s); /* the owner's reference */
}

/* ---- worker ---------------------------------------------------------------------------------- */

static void op_free(struct vs_sim_op *op)
{
    if (op->cleanup)
        op->cleanup(op);
    free(op->deps);
    free(op);
}

static void drop_deps_locked(struct vs_sim_op *op)
{
    for (size_t i = 0; i < op->ndeps; i++)
        vs_sim_stream_unref_locked(op->deps[i].stream);
    op->ndeps = 0;
}

/* The stream whose worker is this thread (a host function may call fork()). */
static __thread struct vs_sim_stream *worker_of;

static void *worker(void *arg)
{
    struct vs_sim_stream *s = arg;
    worker_of = s;
    pthread_mutex_lock(&vs_sim_sched_lock);
    for (;;) {
        while (s->held || !s->head) {
            if (!s->head && s->destroyed)
                goto out;
            pthread_cond_wait(&s->wake, &vs_sim_sched_lock);
        }
        struct vs_sim_op *op = s->head;
        s->head = op->next;
        if (!s->head)
            s->tail = NULL;
        s->running = op;
        for (size_t i = 0; i < op->ndeps; i++)
            while (op->deps[i].stream->completed < op->deps[i].seq)
                pthread_cond_wait(&progress, &vs_sim_sched_lock);
        drop_deps_locked(op);
        pthread_mutex_unlock(&vs_sim_sched_lock);
        if (op->run)
            op->run(op);
        pthread_mutex_lock(&vs_sim_sched_lock);
        s->completed = op->seq;
        s->running = NULL;
        bool waited = op->waited;
        pthread_cond_broadcast(&progress);
        if (!waited) {
            pthread_mutex_unlock(&vs_sim_sched_lock);
            op_free(op);
            pthread_mutex_lock(&vs_sim_sched_lock);
        }
    }
out:
    s->worker_running = false;
    vs_sim_stream_unref_locked(s);
    pthread_mutex_unlock(&vs_sim_sched_lock);
    return NULL;
}

/* Starts the worker on first use. */
static void ensure_worker(struct vs_sim_stream *s)
{
    if (s->worker_running)
        return;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 << 10);
    s->refs++;
    pthread_t thread;
    bool ok = pthread_create(&thread, &attr, worker, s) == 0;
    pthread_attr_destroy(&attr);
    if (!ok) {
        s->refs--;
        vs_sim_log(VS_SIM_LOG_ERROR, "cannot start a stream worker thread: stream %llu stalls",
                   s->id);
        return;
    }
    s->worker_running = true;
}

/* ---- submission ------------------------------------------------------------------------------ */

struct vs_sim_op *vs_sim_op_new(vs_sim_op_fn run, vs_sim_op_fn cleanup, size_t payload_size)
{
    struct vs_sim_op *op = calloc(1, sizeof *op + payload_size);
    if (!op)
        return NULL;
    op->run = run;
    op->cleanup = cleanup;
    op->payload = op + 1;
    return op;
}

void vs_sim_op_add_dep_locked(struct vs_sim_op *op, struct vs_sim_stream *dep,
                              unsigned long long seq)
{
    if (dep->completed >= seq)
        return;
    struct vs_sim_dep *deps = realloc(op->deps, (op->ndeps + 1) * sizeof *deps);
    if (!deps)
        return; /* out of memory: ordering degrades, nothing breaks */
    op->deps = deps;
    dep->refs++;
    op->deps[op->ndeps++] = (struct vs_sim_dep){dep, seq};
}

static void add_legacy_deps_locked(struct vs_sim_stream *s, struct vs_sim_op *op)
{
    if (s->legacy) {
        for (struct vs_sim_stream *t = streams; t; t = t->next)
            if (t != s && t->ctx == s->ctx && !(t->flags & CU_STREAM_NON_BLOCKING))
                vs_sim_op_add_dep_locked(op, t, t->submitted);
    } else if (!(s->flags & CU_STREAM_NON_BLOCKING) && s->ctx->legacy) {
        vs_sim_op_add_dep_locked(op, s->ctx->legacy, s->ctx->legacy->submitted);
    }
}

void vs_sim_stream_wait_seq_locked(struct vs_sim_stream *s, unsigned long long seq)
{
    while (s->completed < seq)
        pthread_cond_wait(&progress, &vs_sim_sched_lock);
}

void vs_sim_stream_submit_locked(struct vs_sim_stream *s, struct vs_sim_op *op)
{
    add_legacy_deps_locked(s, op);
    op->seq = ++s->submitted;
    if (s->tail)
        s->tail->next = op;
    else
        s->head = op;
    s->tail = op;
    ensure_worker(s);
    pthread_cond_signal(&s->wake);
}

void vs_sim_stream_submit(struct vs_sim_stream *s, struct vs_sim_op *op, bool wait)
{
    pthread_mutex_lock(&vs_sim_sched_lock);
    op->waited = wait;
    vs_sim_stream_submit_locked(s, op);
    if (wait)
        vs_sim_stream_wait_seq_locked(s, op->seq);
    pthread_mutex_unlock(&vs_sim_sched_lock);
}

void vs_sim_op_release(struct vs_sim_op *op)
{
    op_free(op);
}

void vs_sim_streams_drain_ctx(struct vs_sim_ctx *ctx)
{
    pthread_mutex_lock(&vs_sim_sched_lock);
    size_t n = 0;
    for (struct vs_sim_stream *t = streams; t; t = t->next)
        n++;
    struct vs_sim_dep *targets = calloc(n ? n : 1, sizeof *targets);
    size_t count = 0;
    for (struct vs_sim_stream *t = streams; t && targets; t = t->next) {
        if (ctx && t->ctx != ctx)
            continue;
        t->refs++;
        targets[count++] = (struct vs_sim_dep){t, t->submitted};
    }
    for (size_t i = 0; i < count; i++) {
        vs_sim_stream_wait_seq_locked(targets[i].stream, targets[i].seq);
        vs_sim_stream_unref_locked(targets[i].stream);
    }
    pthread_mutex_unlock(&vs_sim_sched_lock);
    free(targets);
}

/* ---- resolving CUstream handles -------------------------------------------------------------- */

static void ptds_exit(void *arg)
{
    struct ptds_table *t = arg;
    pthread_mutex_lock(&vs_sim_sched_lock);
    for (size_t i = 0; i < t->count; i++)
        destroy_locked(t->items[i]);
    pthread_mutex_unlock(&vs_sim_sched_lock);
    free(t);
}

static void ptds_init(void)
{
    pthread_key_create(&ptds_key, ptds_exit);
}

static struct vs_sim_stream *per_thread_locked(struct vs_sim_ctx *ctx)
{
    pthread_once(&ptds_once, ptds_init);
    struct ptds_table *t = pthread_getspecific(ptds_key);
    if (!t) {
        t = calloc(1, sizeof *t);
        if (!t || pthread_setspecific(ptds_key, t) != 0) {
            free(t);
            return NULL;
        }
    }
    for (size_t i = 0; i < t->count; i++)
        if (t->items[i]->ctx == ctx)
            return t->items[i];
    if (t->count == sizeof t->items / sizeof t->items[0])
        return NULL;
    struct vs_sim_stream *s = stream_new(ctx, 0, 0);
    if (s) {
        s->per_thread = true;
        t->items[t->count++] = s;
    }
    return s;
}

static struct vs_sim_stream *legacy_locked(struct vs_sim_ctx *ctx)
{
    if (!ctx->legacy) {
        ctx->legacy = stream_new(ctx, 0, 0);
        if (ctx->legacy)
            ctx->legacy->legacy = true;
    }
    return ctx->legacy;
}

static bool listed_locked(struct vs_sim_stream *s)
{
    for (struct vs_sim_stream *t = streams; t; t = t->next)
        if (t == s)
            return !t->destroyed;
    return false;
}

CUresult vs_sim_stream_get(CUstream handle, bool per_thread, struct vs_sim_stream **out)
{
    VS_SIM_REQUIRE_INIT();
    struct vs_sim_stream *s = (struct vs_sim_stream *)handle;
    bool is_legacy = handle == CU_STREAM_LEGACY || (!handle && !per_thread);
    bool is_ptds = handle == CU_STREAM_PER_THREAD || (!handle && per_thread);
    struct vs_sim_ctx *ctx = NULL;
    if (is_legacy || is_ptds) {
        CUresult rc = vs_sim_ctx_require(&ctx);
        if (rc != CUDA_SUCCESS)
            return rc;
    }
    pthread_mutex_lock(&vs_sim_sched_lock);
    if (is_legacy)
        s = legacy_locked(ctx);
    else if (is_ptds)
        s = per_thread_locked(ctx);
    else if (!listed_locked(s))
        s = NULL;
    if (s)
        s->refs++;
    pthread_mutex_unlock(&vs_sim_sched_lock);
    *out = s;
    if (!s)
        return is_legacy || is_ptds ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_ERROR_INVALID_HANDLE;
    return CUDA_SUCCESS;
}

CUresult vs_sim_submit_on(CUstream handle, bool per_thread, struct vs_sim_op *op, bool wait)
{
    struct vs_sim_stream *s;
    CUresult rc = vs_sim_stream_get(handle, per_thread, &s);
    if (rc != CUDA_SUCCESS) {
        op_free(op);
        return rc;
    }
    vs_sim_stream_submit(s, op, wait);
    if (wait)
        op_free(op);
    vs_sim_stream_put(s);
    return CUDA_SUCCESS;
}

/* ---- fork: the child has none of the parent's threads, work or waiters ----------------------- */

/* Workers restart on the child's next submission. The submitters of waited ops do not exist in
 * the child either, so every dropped op is released here. Test holds are the parent's too. */
struct vs_sim_op *vs_sim_streams_fork_child(void)
{
    struct vs_sim_op *dropped = NULL;
    pthread_cond_init(&progress, NULL);
    for (struct vs_sim_stream *t = streams; t; t = t->next) {
        pthread_cond_init(&t->wake, NULL);
        t->held = false;
        if (t == worker_of)
            continue;
        if (t->running) {
            t->running->next = t->head;
            t->head = t->running;
            t->running = NULL;
        }
        while (t->head) {
            struct vs_sim_op *op = t->head;
            t->head = op->next;
            op->next = dropped;
            dropped = op;
        }
        t->tail = NULL;
        t->completed = t->submitted;
    }
    /* Dropping references may free streams: only after the walk above. */
    for (struct vs_sim_op *op = dropped; op; op = op->next)
        drop_deps_locked(op);
    for (struct vs_sim_stream *t = streams, *next; t; t = next) {
        next = t->next;
        if (t->worker_running && t != worker_of) {
            t->worker_running = false;
            vs_sim_stream_unref_locked(t); /* the parent's worker reference */
        }
    }
    return dropped;
}

/* ---- test controls --------------------------------------------------------------------------- */

static int set_held(CUstream handle, bool held)
{
    struct vs_sim_stream *s;
    if (vs_sim_stream_get(handle, false, &s) != CUDA_SUCCESS)
        return -1;
    pthread_mutex_lock(&vs_sim_sched_lock);
    s->held = held;
    pthread_cond_signal(&s->wake);
    vs_sim_stream_unref_locked(s);
    pthread_mutex_unlock(&vs_sim_sched_lock);
    return 0;
}

int simcuda_hold_stream(CUstream s)
{
    return set_held(s, true);
}

int simcuda_release_stream(CUstream s)
{
    return set_held(s, false);
}

/* ---- entry points ---------------------------------------------------------------------------- */

static CUresult create(CUstream *phStream, unsigned int flags, int priority)
{
    if (!phStream || (flags & ~(unsigned)CU_STREAM_NON_BLOCKING))
        return CUDA_ERROR_INVALID_VALUE;
    struct vs_sim_ctx *ctx;
    CUresult rc = vs_sim_ctx_require(&ctx);
    if (rc != CUDA_SUCCESS)
        return rc;
    pthread_mutex_lock(&vs_sim_sched_lock);
    /* Priorities outside [greatest, least] = [-5, 0] are clamped, as the driver does. */
    int clamped = priority < -5 ? -5 : priority > 0 ? 0 : priority;
    struct vs_sim_stream *s = stream_new(ctx, flags, clamped);
    pthread_mutex_unlock(&vs_sim_sched_lock);
    if (!s)
        return CUDA_ERROR_OUT_OF_MEMORY;
    *phStream = (CUstream)s;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuStreamCreate(CUstream *phStream, unsigned int Flags)
{
    VS_SIM_ENTER("cuStreamCreate");
    return create(phStream, Flags, 0);
}

CUresult CUDAAPI cuStreamCreateWithPriority(CUstream *phStream, unsigned int flags, int priority)
{
    VS_SIM_ENTER("cuStreamCreateWithPriority");
    return create(phStream, flags, priority);
}

static CUresult destroy(CUstream handle)
{
    VS_SIM_REQUIRE_INIT();
    struct vs_sim_stream *s = (struct vs_sim_stream *)handle;
    if (!handle || handle == CU_STREAM_LEGACY || handle == CU_STREAM_PER_THREAD)
        return CUDA_ERROR_INVALID_HANDLE;
    pthread_mutex_lock(&vs_sim_sched_lock);
    bool ok = listed_locked(s) && !s->legacy && !s->per_thread;
    if (ok)
        destroy_locked(s);
    pthread_mutex_unlock(&vs_sim_sched_lock);
    return ok ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

CUresult CUDAAPI cuStreamDestroy_v2(CUstream hStream)
{
    VS_SIM_ENTER("cuStreamDestroy_v2");
    return destroy(hStream);
}

CUresult CUDAAPI cuStreamDestroy(CUstream hStream)
{
    VS_SIM_ENTER("cuStreamDestroy");
    return destroy(hStream);
}

static CUresult synchronize(CUstream handle, bool per_thread)
{
    struct vs_sim_op *op = vs_sim_op_new(NULL, NULL, 0);
    if (!op)
        return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult rc = vs_sim_submit_on(handle, per_thread, op, true);
    if (rc == CUDA_SUCCESS)
        vs_sim_pools_trim_to_threshold();
    return rc;
}

CUresult CUDAAPI cuStreamSynchronize(CUstream hStream)
{
    VS_SIM_ENTER("cuStreamSynchronize");
    return synchronize(hStream, false);
}

CUresult CUDAAPI cuStreamSynchronize_ptsz(CUstream hStream)
{
    VS_SIM_ENTER("cuStreamSynchronize_ptsz");
    return synchronize(hStream, true);
}

static CUresult query(CUstream handle, bool per_thread)
{
    struct vs_sim_stream *s;
    CUresult rc = vs_sim_stream_get(handle, per_thread, &s);
    if (rc != CUDA_SUCCESS)
        return rc;
    pthread_mutex_lock(&vs_sim_sched_lock);
    rc = s->completed == s->submitted ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
    vs_sim_stream_unref_locked(s);
    pthread_mutex_unlock(&vs_sim_sched_lock);
    return rc;
}

CUresult CUDAAPI cuStreamQuery(CUstream hStream)
{
    VS_SIM_ENTER("cuStreamQuery");
    return query(hStream, false);
}

CUresult CUDAAPI cuStreamQuery_ptsz(CUstream hStream)
{
    VS_SIM_ENTER("cuStreamQuery_ptsz");
    return query(hStream, true);
}

/* Reads one property of a stream under the lock. */
enum prop { PROP_FLAGS, PROP_PRIORITY, PROP_CTX, PROP_ID, PROP_DEVICE };

static CUresult get_prop(CUstream handle, bool per_thread, enum prop which, void *out)
{
    if (!out)
        return CUDA_ERROR_INVALID_VALUE;
    struct vs_sim_stream *s;
    CUresult rc = vs_sim_stream_get(handle, per_thread, &s);
    if (rc != CUDA_SUCCESS)
        return rc;
    switch (which) {
    case PROP_FLAGS: *(unsigned int *)out = s->flags; break;
    case PROP_PRIORITY: *(int *)out = s->priority; break;
    case PROP_CTX: *(CUcontext *)out = (CUcontext)s->ctx; break;
    case PROP_ID: *(unsigned long long *)out = s->id; break;
    case PROP_DEVICE: *(CUdevice *)out = s->ctx->device->ordinal; break;
    }
    vs_sim_stream_put(s);
    return CUDA_SUCCESS;
}

#define STREAM_GETTER(name, type, which)                                                           \
    CUresult CUDAAPI name(CUstream hStream, type *out)                                             \
    {                                                                                              \
        VS_SIM_ENTER(#name);                                                                       \
        return get_prop(hStream, false, which, out);                                               \
    }                                                                                              \
    CUresult CUDAAPI name##_ptsz(CUstream hStream, type *out)                                      \
    {                                                                                              \
        VS_SIM_ENTER(#name "_ptsz");                                                               \
        return get_prop(hStream, true, which, out);                                                \
    }

STREAM_GETTER(cuStreamGetFlags, unsigned int, PROP_FLAGS)
STREAM_GETTER(cuStreamGetPriority, int, PROP_PRIORITY)
STREAM_GETTER(cuStreamGetCtx, CUcontext, PROP_CTX)
STREAM_GETTER(cuStreamGetId, unsigned long long, PROP_ID)
STREAM_GETTER(cuStreamGetDevice, CUdevice, PROP_DEVICE)

/* Host callbacks run on the stream's worker in stream order. */
struct host_fn {
    CUhostFn fn;
    void *data;
};

static void run_host_fn(struct vs_sim_op *op)
{
    struct host_fn *h = op->payload;
    h->fn(h->data);
}

static CUresult launch_host_func(CUstream handle, bool per_thread, CUhostFn fn, void *data)
{
    if (!fn)
        return CUDA_ERROR_INVALID_VALUE;
    struct vs_sim_op *op = vs_sim_op_new(run_host_fn, NULL, sizeof(struct host_fn));
    if (!op)
        return CUDA_ERROR_OUT_OF_MEMORY;
    *(struct host_fn *)op->payload = (struct host_fn){fn, data};
    return vs_sim_submit_on(handle, per_thread, op, false);
}

/* cuStreamAddCallback's callback gets the stream as passed and CUDA_SUCCESS. */
struct stream_callback {
    CUstreamCallback fn;
    CUstream stream;
    void *data;
};

static void run_callback(struct vs_sim_op *op)
{
    struct stream_callback *c = op->payload;
    c->fn(c->stream, CUDA_SUCCESS, c->data);
}

static CUresult add_callback(CUstream handle, bool per_thread, CUstreamCallback fn, void *data,
                             unsigned int flags)
{
    if (!fn || flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    struct vs_sim_op *op = vs_sim_op_new(run_callback, NULL, sizeof(struct stream_callback));
    if (!op)
        return CUDA_ERROR_OUT_OF_MEMORY;
    *(struct stream_callback *)op->payload = (struct stream_callback){fn, handle, data};
    return vs_sim_submit_on(handle, per_thread, op, false);
}

CUresult CUDAAPI cuStreamAddCallback(CUstream hStream, CUstreamCallback callback, void *userData,
                                     unsigned int flags)
{
    VS_SIM_ENTER("cuStreamAddCallback");
    return add_callback(hStream, false, callback, userData, flags);
}

CUresult CUDAAPI cuStreamAddCallback_ptsz(CUstream hStream, CUstreamCallback callback,
                                          void *userData, unsigned int flags)
{
    VS_SIM_ENTER("cuStreamAddCallback_ptsz");
    return add_callback(hStream, true, callback, userData, flags);
}

/* Graph capture is not simulated: no stream is ever capturing. */
static CUresult is_capturing(CUstream handle, bool per_thread, CUstreamCaptureStatus *status)
{
    if (!status)
        return CUDA_ERROR_INVALID_VALUE;
    struct vs_sim_stream *s;
    CUresult rc = vs_sim_stream_get(handle, per_thread, &s);
    if (rc != CUDA_SUCCESS)
        return rc;
    vs_sim_stream_put(s);
    *status = CU_STREAM_CAPTURE_STATUS_NONE;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuStreamIsCapturing(CUstream hStream, CUstreamCaptureStatus *captureStatus)
{
    VS_SIM_ENTER("cuStreamIsCapturing");
    return is_capturing(hStream, false, captureStatus);
}

CUresult CUDAAPI cuStreamIsCapturing_ptsz(CUstream hStream, CUstreamCaptureStatus *captureStatus)
{
    VS_SIM_ENTER("cuStreamIsCapturing_ptsz");
    return is_capturing(hStream, true, captureStatus);
}

/* The mode only matters while capturing; it is kept per thread so exchanges round-trip. */
static __thread CUstreamCaptureMode capture_mode = CU_STREAM_CAPTURE_MODE_GLOBAL;

CUresult CUDAAPI cuThreadExchangeStreamCaptureMode(CUstreamCaptureMode *mode)
{
    VS_SIM_ENTER("cuThreadExchangeStreamCaptureMode");
    VS_SIM_REQUIRE_INIT();
    if (!mode || *mode > CU_STREAM_CAPTURE_MODE_RELAXED)
        return CUDA_ERROR_INVALID_VALUE;
    CUstreamCaptureMode previous = capture_mode;
    capture_mode = *mode;
    *mode = previous;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuLaunchHostFunc(CUstream hStream, CUhostFn fn, void *userData)
{
    VS_SIM_ENTER("cuLaunchHostFunc");
    return launch_host_func(hStream, false, fn, userData);
}

CUresult CUDAAPI cuLaunchHostFunc_ptsz(CUstream hStream, CUhostFn fn, void *userData)
{
    VS_SIM_ENTER("cuLaunchHostFunc_ptsz");
    return launch_host_func(hStream, true, fn, userData);
}
