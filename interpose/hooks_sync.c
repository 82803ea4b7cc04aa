/* Hooks of the calls the arena listens to: cuCtxSynchronize (cudaDeviceSynchronize) tells it that
 * every block freed before is idle, so synchronously freed memory becomes reusable without a sync
 * of its own; cuStreamDestroy_v2 retires the stream handle before the driver may hand the same
 * handle to a new stream, which must not inherit "same stream" reuse of blocks freed on the old
 * one. Both forward exactly once and change nothing the program sees.
 */
#include "interpose/init.h"
#include "interpose/route.h"
#include "interpose/tally.h"

CUresult vs_hook_cuCtxSynchronize(void)
{
    if (!vs_init())
        return CUDA_ERROR_NOT_INITIALIZED;
    vs_tally_call(VS_FAM_SYNC);
    CUresult r = VS_FORWARD(cuCtxSynchronize);
    if (r == CUDA_SUCCESS)
        vs_route_device_synchronized();
    return r;
}

CUresult vs_hook_cuStreamDestroy_v2(CUstream hStream)
{
    if (!vs_init())
        return CUDA_ERROR_NOT_INITIALIZED;
    vs_tally_call(VS_FAM_SYNC);
    vs_route_stream_destroyed(hStream);
    return VS_FORWARD(cuStreamDestroy_v2, hStream);
}

VS_EXPORT_HOOK(cuCtxSynchronize);
VS_EXPORT_HOOK(cuStreamDestroy_v2);
