/* simcuda events: a recorded event is complete once its stream ran everything submitted before the
 * record, so it stays CUDA_ERROR_NOT_READY while that stream is held.
 *
 * Invariants (fields guarded by vs_sim_sched_lock):
 * - An event remembers (stream, seq) of its latest record and holds a reference on that stream.
 * - An event is freed when destroyed and no queued record op still points at it.
 */
#include "sim.h"

#include <stdlib.h>
#include <time.h>

struct vs_sim_event {
    unsigned int flags;
    struct vs_sim_stream *stream; /* NULL until recorded */
    unsigned long long seq;
    unsigned long long generation; /* of the latest record */
    struct timespec when;          /* when the latest record ran */
    bool destroyed;
    int refs;
    struct vs_sim_event *next;
};

static struct vs_sim_event *events;

static bool listed_locked(struct vs_sim_event *e)
{
    for (struct vs_sim_event *t = events; t; t = t->next)
        if (t == e)
            return !t->destroyed;
    return false;
}

static void put_locked(struct vs_sim_event *e)
{
    if (--e->refs > 0)
        return;
    for (struct vs_sim_event **pe = &events; *pe; pe = &(*pe)->next)
        if (*pe == e) {
            *pe = e->next;
            break;
        }
    if (e->stream)
        vs_sim_stream_unref_locked(e->stream);
    free(e);
}

/* Looks an event up and takes a reference (lock held). */
static struct vs_sim_event *get_locked(CUevent handle)
{
    struct vs_sim_event *e = (struct vs_sim_event *)handle;
    if (!handle || !listed_locked(e))
        return NULL;
    e->refs++;
    return e;
}

CUresult CUDAAPI cuEventCreate(CUevent *phEvent, unsigned int Flags)
{
    VS_SIM_ENTER("cuEventCreate");
    if (!phEvent || (Flags & ~(unsigned)(CU_EVENT_BLOCKING_SYNC | CU_EVENT_DISABLE_TIMING |
                                         CU_EVENT_INTERPROCESS)))
        return CUDA_ERROR_INVALID_VALUE;
    struct vs_sim_ctx *ctx;
    CUresult rc = vs_sim_ctx_require(&ctx);
    if (rc != CUDA_SUCCESS)
        return rc;
    struct vs_sim_event *e = calloc(1, sizeof *e);
    if (!e)
        return CUDA_ERROR_OUT_OF_MEMORY;
    e->flags = Flags;
    e->refs = 1;
    pthread_mutex_lock(&vs_sim_sched_lock);
    e->next = events;
    events = e;
    pthread_mutex_unlock(&vs_sim_sched_lock);
    *phEvent = (CUevent)e;
    return CUDA_SUCCESS;
}

static CUresult destroy(CUevent handle)
{
    VS_SIM_REQUIRE_INIT();
    pthread_mutex_lock(&vs_sim_sched_lock);
    struct vs_sim_event *e = (struct vs_sim_event *)handle;
    bool ok = handle && listed_locked(e);
    if (ok) {
        e->destroyed = true;
        put_locked(e);
    }
    pthread_mutex_unlock(&vs_sim_sched_lock);
    return ok ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

CUresult CUDAAPI cuEventDestroy_v2(CUevent hEvent)
{
    VS_SIM_ENTER("cuEventDestroy_v2");
    return destroy(hEvent);
}

CUresult CUDAAPI cuEventDestroy(CUevent hEvent)
{
    VS_SIM_ENTER("cuEventDestroy");
    return destroy(hEvent);
}

struct record {
    struct vs_sim_event *event;
    unsigned long long generation;
};

static void run_record(struct vs_sim_op *op)
{
    struct record *r = op->payload;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    pthread_mutex_lock(&vs_sim_sched_lock);
    if (r->event->generation == r->generation)
        r->event->when = now;
    pthread_mutex_unlock(&vs_sim_sched_lock);
}

static void cleanup_record(struct vs_sim_op *op)
{
    struct record *r = op->payload;
    pthread_mutex_lock(&vs_sim_sched_lock);
    put_locked(r->event);
    pthread_mutex_unlock(&vs_sim_sched_lock);
}

static CUresult record(CUevent handle, CUstream stream, bool per_thread, unsigned int flags)
{
    VS_SIM_REQUIRE_INIT();
    if (flags & ~(unsigned)CU_EVENT_RECORD_EXTERNAL)
        return CUDA_ERROR_INVALID_VALUE;
    struct vs_sim_stream *s;
    CUresult rc = vs_sim_stream_get(stream, per_thread, &s);
    if (rc != CUDA_SUCCESS)
        return rc;
    struct vs_sim_op *op = vs_sim_op_new(run_record, cleanup_record, sizeof(struct record));
    if (!op) {
        vs_sim_stream_put(s);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    pthread_mutex_lock(&vs_sim_sched_lock);
    struct vs_sim_event *e = get_locked(handle);
    if (!e) {
        pthread_mutex_unlock(&vs_sim_sched_lock);
        vs_sim_op_release(op);
        vs_sim_stream_put(s);
        return CUDA_ERROR_INVALID_HANDLE;
    }
    *(struct record *)op->payload = (struct record){e, ++e->generation};
    if (e->stream)
        vs_sim_stream_unref_locked(e->stream);
    e->stream = s; /* the reference taken by vs_sim_stream_get moves here */
    /* The record op is the next one on s: complete once s ran it. */
    e->seq = s->submitted + 1;
    vs_sim_stream_submit_locked(s, op);
    pthread_mutex_unlock(&vs_sim_sched_lock);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuEventRecord(CUevent hEvent, CUstream hStream)
{
    VS_SIM_ENTER("cuEventRecord");
    return record(hEvent, hStream, false, 0);
}

CUresult CUDAAPI cuEventRecord_ptsz(CUevent hEvent, CUstream hStream)
{
    VS_SIM_ENTER("cuEventRecord_ptsz");
    return record(hEvent, hStream, true, 0);
}

CUresult CUDAAPI cuEventRecordWithFlags(CUevent hEvent, CUstream hStream, unsigned int flags)
{
    VS_SIM_ENTER("cuEventRecordWithFlags");
    return record(hEvent, hStream, false, flags);
}

CUresult CUDAAPI cuEventRecordWithFlags_ptsz(CUevent hEvent, CUstream hStream, unsigned int flags)
{
    VS_SIM_ENTER("cuEventRecordWithFlags_ptsz");
    return record(hEvent, hStream, true, flags);
}

CUresult CUDAAPI cuEventQuery(CUevent hEvent)
{
    VS_SIM_ENTER("cuEventQuery");
    VS_SIM_REQUIRE_INIT();
    pthread_mutex_lock(&vs_sim_sched_lock);
    struct vs_sim_event *e = get_locked(hEvent);
    CUresult rc = CUDA_ERROR_INVALID_HANDLE;
    if (e) {
        rc = !e->stream || e->stream->completed >= e->seq ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
        put_locked(e);
    }
    pthread_mutex_unlock(&vs_sim_sched_lock);
    return rc;
}

CUresult CUDAAPI cuEventSynchronize(CUevent hEvent)
{
    VS_SIM_ENTER("cuEventSynchronize");
    VS_SIM_REQUIRE_INIT();
    pthread_mutex_lock(&vs_sim_sched_lock);
    struct vs_sim_event *e = get_locked(hEvent);
    if (e) {
        if (e->stream)
            vs_sim_stream_wait_seq_locked(e->stream, e->seq);
        put_locked(e);
    }
    pthread_mutex_unlock(&vs_sim_sched_lock);
    if (!e)
        return CUDA_ERROR_INVALID_HANDLE;
    vs_sim_pools_trim_to_threshold();
    return CUDA_SUCCESS;
}

static CUresult elapsed(float *ms, CUevent start, CUevent end)
{
    VS_SIM_REQUIRE_INIT();
    if (!ms)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&vs_sim_sched_lock);
    struct vs_sim_event *a = get_locked(start), *b = get_locked(end);
    CUresult rc = CUDA_SUCCESS;
    if (!a || !b)
        rc = CUDA_ERROR_INVALID_HANDLE;
    else if ((a->flags | b->flags) & CU_EVENT_DISABLE_TIMING)
        rc = CUDA_ERROR_INVALID_HANDLE;
    else if (!a->stream || !b->stream)
        rc = CUDA_ERROR_INVALID_HANDLE;
    else if (a->stream->completed < a->seq || b->stream->completed < b->seq)
        rc = CUDA_ERROR_NOT_READY;
    else
        *ms = (float)((double)(b->when.tv_sec - a->when.tv_sec) * 1e3 +
                      (double)(b->when.tv_nsec - a->when.tv_nsec) / 1e6);
    if (a)
        put_locked(a);
    if (b)
        put_locked(b);
    pthread_mutex_unlock(&vs_sim_sched_lock);
    return rc;
}

CUresult CUDAAPI cuEventElapsedTime(float *pMilliseconds, CUevent hStart, CUevent hEnd)
{
    VS_SIM_ENTER("cuEventElapsedTime");
    return elapsed(pMilliseconds, hStart, hEnd);
}

CUresult CUDAAPI cuEventElapsedTime_v2(float *pMilliseconds, CUevent hStart, CUevent hEnd)
{
    VS_SIM_ENTER("cuEventElapsedTime_v2");
    return elapsed(pMilliseconds, hStart, hEnd);
}

static CUresult wait_event(CUstream stream, bool per_thread, CUevent handle, unsigned int flags)
{
    VS_SIM_REQUIRE_INIT();
    if (flags & ~(unsigned)CU_EVENT_WAIT_EXTERNAL)
        return CUDA_ERROR_INVALID_VALUE;
    struct vs_sim_stream *s;
    CUresult rc = vs_sim_stream_get(stream, per_thread, &s);
    if (rc != CUDA_SUCCESS)
        return rc;
    struct vs_sim_op *op = vs_sim_op_new(NULL, NULL, 0);
    if (!op) {
        vs_sim_stream_put(s);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    pthread_mutex_lock(&vs_sim_sched_lock);
    struct vs_sim_event *e = get_locked(handle);
    if (e) {
        if (e->stream)
            vs_sim_op_add_dep_locked(op, e->stream, e->seq);
        vs_sim_stream_submit_locked(s, op);
        put_locked(e);
    }
    vs_sim_stream_unref_locked(s);
    pthread_mutex_unlock(&vs_sim_sched_lock);
    if (!e) {
        vs_sim_op_release(op);
        return CUDA_ERROR_INVALID_HANDLE;
    }
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuStreamWaitEvent(CUstream hStream, CUevent hEvent, unsigned int Flags)
{
    VS_SIM_ENTER("cuStreamWaitEvent");
    return wait_event(hStream, false, hEvent, Flags);
}

CUresult CUDAAPI cuStreamWaitEvent_ptsz(CUstream hStream, CUevent hEvent, unsigned int Flags)
{
    VS_SIM_ENTER("cuStreamWaitEvent_ptsz");
    return wait_event(hStream, true, hEvent, Flags);
}
