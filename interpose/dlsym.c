/* The dlsym override: a look-up of a hooked driver symbol (from any handle: the driver's,
 * RTLD_DEFAULT, RTLD_NEXT) returns the hook of the symbol the real dlsym found; every other
 * look-up is the real dlsym's answer, untouched.
 *
 * Invariants: names that are not hooked cost a two-character check, never initialise the shim,
 * and reach the real dlsym as a tail call, so RTLD_NEXT keeps meaning "after the caller". A
 * thread-local depth guard makes look-ups made while the shim itself is resolving (or while a
 * driver constructor runs during initialisation) return the real symbol.
 */
#include <dlfcn.h>

#include "interpose/hooks.h"
#include "interpose/init.h"
#include "interpose/realdl.h"

static __thread int vs_dlsym_depth __attribute__((tls_model("initial-exec")));

__attribute__((noinline)) static void *hooked_lookup(vs_dlsym_fn real, void *handle,
                                                     const char *name)
{
    vs_dlsym_depth++;
    void *p = real(handle, name);
    if (p && vs_init())
        p = vs_hook_for(p);
    vs_dlsym_depth--;
    return p;
}

VS_UNINSTRUMENTED __attribute__((visibility("default"))) void *dlsym(void *restrict handle,
                                                                     const char *restrict name)
{
    vs_dlsym_fn real = vs_real_dlsym();
    if (!real)
        return NULL;
    if (vs_dlsym_depth == 0 && vs_is_hooked_name(name))
        return hooked_lookup(real, handle, name);
    return real(handle, name);
}
