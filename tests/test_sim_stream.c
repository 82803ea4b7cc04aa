/* simcuda streams and events: stream order, hold/release, legacy and per-thread default streams. */
#include "test_sim_common.h"

#include <cudaTypedefs.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

/* The per-thread entry point of `name`, as cudart built with per-thread default streams gets it. */
static void *per_thread(const char *name)
{
    void *fn = NULL;
    CU_OK(
        cuGetProcAddress_v2(name, &fn, 13000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, NULL));
    return fn;
}

static CUdeviceptr alloc_filled(size_t size, unsigned char value)
{
    CUdeviceptr p;
    CU_OK(cuMemAlloc_v2(&p, size));
    memset((void *)p, value, size);
    return p;
}

Test(sim_stream, held_stream_runs_nothing_until_released)
{
    sim_start();
    CUstream s;
    CU_OK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    CUdeviceptr p = alloc_filled(4096, 0);
    static unsigned char src[4096];
    memset(src, 7, sizeof src);
    cr_assert_eq(simcuda_hold_stream(s), 0);
    CU_OK(cuMemcpyHtoDAsync_v2(p, src, sizeof src, s));
    CU_OK(cuMemsetD8Async(p, 9, 16, s));
    usleep(20000);
    cr_assert_eq(((unsigned char *)p)[0], 0, "held work must not run");
    cr_assert_eq(cuStreamQuery(s), CUDA_ERROR_NOT_READY);
    cr_assert_eq(simcuda_release_stream(s), 0);
    CU_OK(cuStreamSynchronize(s));
    cr_assert_eq(((unsigned char *)p)[0], 9, "memset ran after the copy");
    cr_assert_eq(((unsigned char *)p)[16], 7);
    CU_OK(cuStreamQuery(s));
    CU_OK(cuStreamDestroy_v2(s));
}

Test(sim_stream, events_stay_not_ready_while_held)
{
    sim_start();
    CUstream s;
    CUevent e, never;
    CU_OK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    CU_OK(cuEventCreate(&e, 0));
    CU_OK(cuEventCreate(&never, 0));
    CU_OK(cuEventQuery(never)); /* never recorded: complete */
    cr_assert_eq(simcuda_hold_stream(s), 0);
    CU_OK(cuEventRecord(e, s));
    usleep(10000);
    cr_assert_eq(cuEventQuery(e), CUDA_ERROR_NOT_READY);
    cr_assert_eq(simcuda_release_stream(s), 0);
    CU_OK(cuEventSynchronize(e));
    CU_OK(cuEventQuery(e));
    CU_OK(cuEventDestroy_v2(e));
    CU_OK(cuEventDestroy_v2(never));
}

Test(sim_stream, wait_event_orders_across_streams)
{
    sim_start();
    CUstream a, b;
    CUevent e;
    CU_OK(cuStreamCreate(&a, CU_STREAM_NON_BLOCKING));
    CU_OK(cuStreamCreate(&b, CU_STREAM_NON_BLOCKING));
    CU_OK(cuEventCreate(&e, CU_EVENT_DISABLE_TIMING));
    CUdeviceptr p = alloc_filled(64, 0), q = alloc_filled(64, 0);
    cr_assert_eq(simcuda_hold_stream(a), 0);
    CU_OK(cuMemsetD8Async(p, 5, 64, a));
    CU_OK(cuEventRecord(e, a));
    CU_OK(cuStreamWaitEvent(b, e, 0));
    CU_OK(cuMemcpyDtoDAsync_v2(q, p, 64, b)); /* must see a's memset */
    usleep(10000);
    cr_assert_eq(cuStreamQuery(b), CUDA_ERROR_NOT_READY, "b waits for a");
    cr_assert_eq(((unsigned char *)q)[0], 0);
    cr_assert_eq(simcuda_release_stream(a), 0);
    CU_OK(cuStreamSynchronize(b));
    cr_assert_eq(((unsigned char *)q)[63], 5);
}

Test(sim_stream, legacy_stream_waits_for_blocking_streams)
{
    sim_start();
    CUstream blocking, nonblocking;
    CU_OK(cuStreamCreate(&blocking, 0));
    CU_OK(cuStreamCreate(&nonblocking, CU_STREAM_NON_BLOCKING));
    CUdeviceptr p = alloc_filled(64, 0);
    cr_assert_eq(simcuda_hold_stream(blocking), 0);
    CU_OK(cuMemsetD8Async(p, 3, 64, blocking));
    CUevent e;
    CU_OK(cuEventCreate(&e, 0));
    CU_OK(cuEventRecord(e, NULL)); /* legacy stream: behind the held blocking stream */
    CUevent e2;
    CU_OK(cuEventCreate(&e2, 0));
    CU_OK(cuEventRecord(e2, nonblocking)); /* unaffected */
    CU_OK(cuEventSynchronize(e2));
    usleep(10000);
    cr_assert_eq(cuEventQuery(e), CUDA_ERROR_NOT_READY);
    cr_assert_eq(simcuda_release_stream(blocking), 0);
    CU_OK(cuEventSynchronize(e));
    cr_assert_eq(((unsigned char *)p)[0], 3);
}

Test(sim_stream, synchronous_copy_waits_for_prior_legacy_work)
{
    sim_start();
    CUdeviceptr p = alloc_filled(64, 0);
    cr_assert_eq(simcuda_hold_stream(CU_STREAM_LEGACY), 0);
    CU_OK(cuMemsetD8Async(p, 4, 64, NULL));
    usleep(10000);
    cr_assert_eq(((unsigned char *)p)[0], 0);
    cr_assert_eq(simcuda_release_stream(NULL), 0);
    unsigned char out[64];
    CU_OK(cuMemcpyDtoH_v2(out, p, sizeof out));
    cr_assert_eq(out[0], 4);
}

/* The per-thread default stream is the thread's own: holding it does not hold the legacy one. */
Test(sim_stream, per_thread_stream_is_separate_from_legacy)
{
    sim_start();
    CUdeviceptr p = alloc_filled(64, 0), q = alloc_filled(64, 0);
    cr_assert_eq(simcuda_hold_stream(CU_STREAM_PER_THREAD), 0);
    PFN_cuMemsetD8Async_v7000_ptsz memset_ptsz = per_thread("cuMemsetD8Async");
    PFN_cuStreamQuery_v7000_ptsz query_ptsz = per_thread("cuStreamQuery");
    PFN_cuStreamSynchronize_v7000_ptsz sync_ptsz = per_thread("cuStreamSynchronize");
    CU_OK(memset_ptsz(p, 1, 64, NULL)); /* 0 through _ptsz: per-thread stream */
    CU_OK(cuMemsetD8Async(q, 2, 64, CU_STREAM_PER_THREAD));
    usleep(10000);
    cr_assert_eq(query_ptsz(NULL), CUDA_ERROR_NOT_READY);
    cr_assert_eq(((unsigned char *)p)[0], 0);
    cr_assert_eq(((unsigned char *)q)[0], 0);
    cr_assert_eq(simcuda_release_stream(CU_STREAM_PER_THREAD), 0);
    CU_OK(sync_ptsz(NULL));
    cr_assert_eq(((unsigned char *)p)[0], 1);
    cr_assert_eq(((unsigned char *)q)[0], 2);
}

static CUcontext shared_ctx;
static CUdeviceptr shared_p;

static void *other_thread(void *arg)
{
    (void)arg;
    cuCtxSetCurrent(shared_ctx);
    /* This thread's per-thread stream is not the held one of the main thread. */
    PFN_cuMemsetD8_v7000_ptds memset_ptds = NULL;
    cuGetProcAddress_v2("cuMemsetD8", (void **)&memset_ptds, 13000,
                        CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, NULL);
    CUresult rc = memset_ptds(shared_p, 6, 64);
    return (void *)(uintptr_t)rc;
}

Test(sim_stream, per_thread_streams_differ_between_threads)
{
    shared_ctx = sim_start();
    shared_p = alloc_filled(64, 0);
    cr_assert_eq(simcuda_hold_stream(CU_STREAM_PER_THREAD), 0);
    pthread_t t;
    void *rc;
    pthread_create(&t, NULL, other_thread, NULL);
    pthread_join(t, &rc);
    cr_assert_eq((uintptr_t)rc, CUDA_SUCCESS);
    cr_assert_eq(((unsigned char *)shared_p)[0], 6);
    cr_assert_eq(simcuda_release_stream(CU_STREAM_PER_THREAD), 0);
}

static int host_order[3];
static int host_calls;

static void record_call(void *arg)
{
    host_order[host_calls++] = (int)(intptr_t)arg;
}

Test(sim_stream, host_functions_run_in_stream_order)
{
    sim_start();
    CUstream s;
    CU_OK(cuStreamCreate(&s, 0));
    for (intptr_t i = 0; i < 3; i++)
        CU_OK(cuLaunchHostFunc(s, record_call, (void *)i));
    CU_OK(cuStreamSynchronize(s));
    cr_assert_eq(host_calls, 3);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(host_order[i], i);
}

static CUstream callback_stream;
static CUresult callback_status = CUDA_ERROR_UNKNOWN;

static void callback(CUstream s, CUresult status, void *data)
{
    callback_stream = s;
    callback_status = status;
    *(int *)data = 1;
}

Test(sim_stream, stream_callbacks_get_their_stream)
{
    sim_start();
    CUstream s;
    CU_OK(cuStreamCreate(&s, 0));
    static int ran;
    cr_assert_eq(simcuda_hold_stream(s), 0);
    CU_OK(cuStreamAddCallback(s, callback, &ran, 0));
    usleep(10000);
    cr_assert_eq(ran, 0);
    cr_assert_eq(simcuda_release_stream(s), 0);
    CU_OK(cuStreamSynchronize(s));
    cr_assert_eq(ran, 1);
    cr_assert_eq(callback_stream, s);
    cr_assert_eq(callback_status, CUDA_SUCCESS);
    cr_assert_eq(cuStreamAddCallback(s, callback, &ran, 1), CUDA_ERROR_INVALID_VALUE);
    CUstreamCaptureStatus capture = CU_STREAM_CAPTURE_STATUS_ACTIVE;
    CU_OK(cuStreamIsCapturing(s, &capture));
    cr_assert_eq(capture, CU_STREAM_CAPTURE_STATUS_NONE);
    CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_RELAXED;
    CU_OK(cuThreadExchangeStreamCaptureMode(&mode));
    cr_assert_eq(mode, CU_STREAM_CAPTURE_MODE_GLOBAL);
    CU_OK(cuThreadExchangeStreamCaptureMode(&mode));
    cr_assert_eq(mode, CU_STREAM_CAPTURE_MODE_RELAXED);
}

Test(sim_stream, destroyed_stream_finishes_its_work)
{
    sim_start();
    CUstream s;
    CU_OK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    CUdeviceptr p = alloc_filled(64, 0);
    CUevent e;
    CU_OK(cuEventCreate(&e, 0));
    CU_OK(cuMemsetD8Async(p, 8, 64, s));
    CU_OK(cuEventRecord(e, s));
    CU_OK(cuStreamDestroy_v2(s));
    CU_OK(cuEventSynchronize(e));
    cr_assert_eq(((unsigned char *)p)[0], 8);
    cr_assert_eq(cuStreamQuery(s), CUDA_ERROR_INVALID_HANDLE);
    cr_assert_eq(cuStreamDestroy_v2(s), CUDA_ERROR_INVALID_HANDLE);
}

Test(sim_stream, ctx_synchronize_waits_for_every_stream)
{
    sim_start();
    CUstream s[3];
    CUdeviceptr p = alloc_filled(3 * 4096, 0);
    for (int i = 0; i < 3; i++) {
        CU_OK(cuStreamCreate(&s[i], CU_STREAM_NON_BLOCKING));
        CU_OK(cuMemsetD8Async(p + (size_t)i * 4096, (unsigned char)(i + 1), 4096, s[i]));
    }
    CU_OK(cuCtxSynchronize());
    for (int i = 0; i < 3; i++)
        cr_assert_eq(((unsigned char *)p)[i * 4096 + 100], i + 1);
}

Test(sim_stream, elapsed_time_between_completed_events)
{
    sim_start();
    CUevent a, b, untimed;
    CU_OK(cuEventCreate(&a, 0));
    CU_OK(cuEventCreate(&b, 0));
    CU_OK(cuEventCreate(&untimed, CU_EVENT_DISABLE_TIMING));
    CU_OK(cuEventRecord(a, NULL));
    CU_OK(cuEventRecord(b, NULL));
    CU_OK(cuEventRecord(untimed, NULL));
    CU_OK(cuEventSynchronize(b));
    CU_OK(cuEventSynchronize(untimed));
    float ms = -1;
    CU_OK(cuEventElapsedTime(&ms, a, b));
    cr_assert_geq(ms, 0.0f);
    cr_assert_eq(cuEventElapsedTime(&ms, a, untimed), CUDA_ERROR_INVALID_HANDLE);
}

Test(sim_stream, bad_stream_and_event_handles)
{
    sim_start();
    int junk[16] = {0};
    CUstream bogus = (CUstream)junk;
    CUevent e;
    CU_OK(cuEventCreate(&e, 0));
    cr_assert_eq(cuStreamSynchronize(bogus), CUDA_ERROR_INVALID_HANDLE);
    cr_assert_eq(cuEventRecord(e, bogus), CUDA_ERROR_INVALID_HANDLE);
    cr_assert_eq(cuEventQuery((CUevent)junk), CUDA_ERROR_INVALID_HANDLE);
    cr_assert_eq(cuStreamWaitEvent(NULL, (CUevent)junk, 0), CUDA_ERROR_INVALID_HANDLE);
    cr_assert_eq(cuStreamCreate(NULL, 0), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuStreamCreate((CUstream *)junk, 0x80), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(simcuda_hold_stream(bogus), -1);
    CU_OK(cuEventDestroy_v2(e));
    cr_assert_eq(cuEventDestroy_v2(e), CUDA_ERROR_INVALID_HANDLE);
}

/* Several threads allocating, copying and freeing on their own and shared streams at once. */
static CUcontext stress_ctx;
static CUstream shared_stream;

static void *stress_worker(void *arg)
{
    unsigned char tag = (unsigned char)(uintptr_t)arg;
    if (cuCtxSetCurrent(stress_ctx) != CUDA_SUCCESS)
        return (void *)1;
    CUstream own;
    if (cuStreamCreate(&own, CU_STREAM_NON_BLOCKING) != CUDA_SUCCESS)
        return (void *)1;
    unsigned char out[256];
    for (int i = 0; i < 100; i++) {
        CUdeviceptr a, b;
        CUstream s = i % 2 ? own : shared_stream;
        if (cuMemAllocAsync(&a, 256, s) != CUDA_SUCCESS || cuMemAlloc_v2(&b, 256) != CUDA_SUCCESS)
            return (void *)1;
        cuMemsetD8Async(a, tag, 256, s);
        cuMemcpyDtoDAsync_v2(b, a, 256, s);
        cuMemFreeAsync(a, s);
        cuStreamSynchronize(s);
        cuMemcpyDtoH_v2(out, b, sizeof out);
        cuMemFree_v2(b);
        if (out[0] != tag || out[255] != tag)
            return (void *)2;
    }
    cuStreamDestroy_v2(own);
    return NULL;
}

Test(sim_stream, concurrent_threads_keep_their_data)
{
    stress_ctx = sim_start();
    CU_OK(cuStreamCreate(&shared_stream, 0));
    pthread_t t[4];
    for (uintptr_t i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, stress_worker, (void *)(i + 1));
    for (int i = 0; i < 4; i++) {
        void *rc;
        pthread_join(t[i], &rc);
        cr_assert_null(rc, "thread %d failed (%p)", i, rc);
    }
    CU_OK(cuCtxSynchronize());
    cr_assert_eq(simcuda_physical_in_use(0), 0, "everything freed and trimmed");
}
