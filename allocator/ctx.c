/* Makes the arena's context current around driver calls that need one (events, device
 * synchronisation) when the calling thread has another or none. Invariant: every successful
 * vs_ctx_enter that switched is paired with vs_ctx_leave restoring the thread's context.
 */
#include "allocator/internal.h"

bool vs_ctx_enter(struct vs_arena *a, CUcontext *saved)
{
    *saved = NULL;
    if (a->drv->cuCtxGetCurrent(saved) == CUDA_SUCCESS && *saved == a->ctx)
        return false;
    return a->drv->cuCtxSetCurrent(a->ctx) == CUDA_SUCCESS;
}

void vs_ctx_leave(struct vs_arena *a, bool switched, CUcontext saved)
{
    if (switched)
        a->drv->cuCtxSetCurrent(saved);
}
