/* Lazy initialisation, fork handlers and exit summary (see init.h). */
#include "interpose/init.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "allocator/trace.h"
#include "interpose/tally.h"
#include "interpose/hooks.h"
#include "interpose/log.h"
#include "interpose/realdl.h"
#include "interpose/route.h"
#include "interpose/runtime.h"

struct vs_config vs_cfg;
struct vs_driver vs_drv;

static pthread_once_t vs_once = PTHREAD_ONCE_INIT;
static bool vs_ready;
static atomic_bool vs_initialised;
static __thread bool vs_initialising __attribute__((tls_model("initial-exec")));

static void *resolve_real(const char *name, void *handle)
{
    vs_dlsym_fn real_dlsym = vs_real_dlsym();
    return real_dlsym ? real_dlsym(handle, name) : NULL;
}

static void fork_prepare(void)
{
    vs_trace_fork_prepare();
    vs_tally_fork_prepare();
}

static void fork_parent(void)
{
    vs_tally_fork_release();
    vs_trace_fork_parent();
}

static void fork_child(void)
{
    vs_route_fork_child();
    vs_tally_fork_release();
    vs_trace_fork_child();
}

static bool open_real_driver(void)
{
    /* dlopen of an already loaded libcuda.so.1 returns that very object, so its symbols are the
     * ones the process resolves; RTLD_LOCAL keeps a driver loaded here out of the global scope. */
    void *handle = dlopen(vs_cfg.real_libcuda, RTLD_NOW | RTLD_LOCAL);
    if (!handle && strcmp(vs_cfg.real_libcuda, VS_DEFAULT_LIBCUDA) != 0) {
        /* A wrong VRAMSHIM_REAL_LIBCUDA must not break the program: use the default driver. */
        vs_log(VS_LOG_ERROR, "cannot open the real driver %s (%s); using %s", vs_cfg.real_libcuda,
               dlerror(), VS_DEFAULT_LIBCUDA);
        handle = dlopen(VS_DEFAULT_LIBCUDA, RTLD_NOW | RTLD_LOCAL);
    }
    if (!handle) {
        vs_log(VS_LOG_ERROR, "cannot open the real driver %s (%s); driver calls will fail",
               VS_DEFAULT_LIBCUDA, dlerror());
        return false;
    }
#define VS_REAL_RESOLVE(name, type) vs_real.name = (type)resolve_real(#name, handle);
    VS_HOOKS(VS_REAL_RESOLVE)
#undef VS_REAL_RESOLVE
    const char *missing = NULL;
    if (vs_driver_load(&vs_drv, resolve_real, handle, &missing))
        vs_log(VS_LOG_DEBUG, "real driver lacks %s (and maybe more)", missing);
    vs_route_setup(resolve_real, handle);
    Dl_info info;
    if (vs_log_enabled(VS_LOG_DEBUG) && vs_real.cuGetProcAddress_v2 &&
        dladdr((void *)vs_real.cuGetProcAddress_v2, &info))
        vs_log(VS_LOG_DEBUG, "init: real driver %s, mode %s, trace %s", info.dli_fname,
               vs_mode_name(vs_cfg.mode), vs_cfg.trace_path ? vs_cfg.trace_path : "off");
    return true;
}

static void init_once(void)
{
    vs_log_init();
    vs_config_read(&vs_cfg);
    vs_ready = open_real_driver();
    if (vs_cfg.trace_path)
        vs_trace_configure(vs_cfg.trace_path, vs_cfg.trace_stacks, &vs_drv);
    vs_rt_init(); /* policy, stages, control socket */
    if (pthread_atfork(fork_prepare, fork_parent, fork_child) != 0)
        vs_log(VS_LOG_WARN, "cannot register fork handlers; a child's trace may be incomplete");
    atomic_store_explicit(&vs_initialised, true, memory_order_release);
}

bool vs_init(void)
{
    if (atomic_load_explicit(&vs_initialised, memory_order_acquire))
        return vs_ready;
    if (vs_initialising)
        return false;
    vs_initialising = true;
    pthread_once(&vs_once, init_once);
    vs_initialising = false;
    return vs_ready;
}

/* Runs after the program's atexit handlers and the destructors of libraries loaded later (the
 * shim is preloaded, so it is finalised last): the trace is complete. */
__attribute__((destructor)) static void vs_fini(void)
{
    if (!atomic_load_explicit(&vs_initialised, memory_order_acquire))
        return;
    vs_trace_shutdown();
    if (vs_log_enabled(VS_LOG_INFO)) {
        char line[768];
        vs_tally_summary(line, sizeof line);
        vs_log(VS_LOG_INFO, "summary: mode %s; %s", vs_mode_name(vs_cfg.mode), line);
    }
}
