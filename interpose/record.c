/* Completes and emits trace records of hooked calls (see record.h). */
#include "interpose/record.h"

#include "interpose/init.h"

void vs_record_slow_at(struct vs_trace_event *e, struct vs_site *site)
{
    if (e->dev == VS_DEV_CURRENT) {
        CUdevice d;
        e->dev = vs_drv.cuCtxGetDevice && vs_drv.cuCtxGetDevice(&d) == CUDA_SUCCESS ? (int)d : -1;
    }
    if (site)
        vs_trace_emit_at(e, site);
    else
        vs_trace_emit(e);
}

void vs_record_slow(struct vs_trace_event *e)
{
    vs_record_slow_at(e, NULL);
}
