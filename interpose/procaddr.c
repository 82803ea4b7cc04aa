/* cuGetProcAddress hooks: the real driver resolves (symbol, cudaVersion, flags) to an entry
 * point, and the pointer it returns is swapped for the hook of exactly that entry point
 * (hooks.h). This is how cudart, dynamic or static, reaches every driver function, so the
 * version and the per-thread-stream flag are the driver's decision, never guessed here.
 */
#include "interpose/tally.h"
#include "interpose/init.h"
#include "allocator/log.h"

static void substitute(const char *symbol, void **pfn, int version, cuuint64_t flags)
{
    if (!pfn || !*pfn)
        return;
    void *hook = vs_hook_for(*pfn);
    if (hook != *pfn)
        vs_log(VS_LOG_DEBUG, "cuGetProcAddress(%s, %d, %llu): hooked", symbol ? symbol : "(null)",
               version, (unsigned long long)flags);
    *pfn = hook;
}

CUresult vs_hook_cuGetProcAddress(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags)
{
    if (!vs_init())
        return CUDA_ERROR_NOT_INITIALIZED;
    vs_tally_call(VS_FAM_PROC_ADDRESS);
    CUresult r = VS_FORWARD(cuGetProcAddress, symbol, pfn, cudaVersion, flags);
    if (r == CUDA_SUCCESS)
        substitute(symbol, pfn, cudaVersion, flags);
    return r;
}

CUresult vs_hook_cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion,
                                     cuuint64_t flags, CUdriverProcAddressQueryResult *symbolStatus)
{
    if (!vs_init())
        return CUDA_ERROR_NOT_INITIALIZED;
    vs_tally_call(VS_FAM_PROC_ADDRESS);
    CUresult r = VS_FORWARD(cuGetProcAddress_v2, symbol, pfn, cudaVersion, flags, symbolStatus);
    if (r == CUDA_SUCCESS)
        substitute(symbol, pfn, cudaVersion, flags);
    return r;
}

VS_EXPORT_HOOK(cuGetProcAddress);
VS_EXPORT_HOOK(cuGetProcAddress_v2);
