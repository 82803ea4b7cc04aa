/* Fills the driver table from a symbol resolver (see driver.h). */
#include "allocator/driver.h"

int vs_driver_load(struct vs_driver *drv, void *(*resolve)(const char *name, void *ctx),
                   void *ctx, const char **missing)
{
    void *p;
    int status = 0;
#define VS_DRIVER_RESOLVE(name, type, arena) \
    p = resolve(#name, ctx);               \
    if (!p && arena != 2 && status == 0) { \
        if (missing)                       \
            *missing = #name;              \
        status = -1;                       \
    }                                      \
    drv->name = (type)p;
    VS_DRIVER_FUNCS(VS_DRIVER_RESOLVE)
#undef VS_DRIVER_RESOLVE
    return status;
}
