/* Finds the C library's dlsym by version, bypassing the exported override (see realdl.h). */
#include "interpose/realdl.h"

#include <dlfcn.h>
#include <stdatomic.h>
#include <stddef.h>

#include "allocator/log.h"

VS_UNINSTRUMENTED vs_dlsym_fn vs_real_dlsym(void)
{
    static _Atomic(vs_dlsym_fn) cached;
    vs_dlsym_fn fn = atomic_load_explicit(&cached, memory_order_acquire);
    if (fn)
        return fn;
    /* glibc >= 2.34 defines dlsym in libc at GLIBC_2.34; older ones only the base versions
     * (x86_64, aarch64). dlvsym itself is not overridden, so this cannot recurse. */
    static const char *const versions[] = {"GLIBC_2.34", "GLIBC_2.2.5", "GLIBC_2.17"};
    for (size_t i = 0; i < sizeof versions / sizeof versions[0] && !fn; i++)
        fn = (vs_dlsym_fn)dlvsym(RTLD_NEXT, "dlsym", versions[i]);
    if (!fn) {
        vs_log(VS_LOG_ERROR, "cannot find the C library's dlsym; symbol look-ups will fail");
        return NULL;
    }
    atomic_store_explicit(&cached, fn, memory_order_release);
    return fn;
}
