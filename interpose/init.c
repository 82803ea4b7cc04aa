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
#include "allocator/log.h"
#include "interpose/realdl.h"
#include "interpose/route.h"
#include "interpose/runtime.h"

struct vs_config vs_cfg;
struct vs_driver vs_drv;

static pthread_once_t vs_once = PTHREAD_ONCE_INIT;
static bool vs_ready;
static atomic_bool vs_initialised;
static __thread bool vs_initialising __attribute__((tls_model("initial-exec")));

/* The address of `name` in the library `handle`; NULL when it lacks it or when the symbol is the
 * shim's own (VRAMSHIM_REAL_LIBCUDA naming the shim would make every forward call itself). */
static void *resolve_real(const char *name, void *handle)
{
    static Dl_info self;
    vs_dlsym_fn real_dlsym = vs_real_dlsym();
    void *p = real_dlsym ? real_dlsym(handle, name) : NULL;
    Dl_info info;
    if (p && (self.dli_fbase || dladdr((void *)&vs_init, &self)) && dladdr(p, &info) &&
        info.dli_fbase == self.dli_fbase)
        return NULL;
    return p;
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

/* How many of the entry points vs_drv needs `handle` lacks (those the hooks forward to only
 * when present are not needed); the first few are named in buf. */
static size_t count_missing(void *handle, char *buf, size_t n)
{
    static const char *const names[] = {
#define VS_DRIVER_NAME(name, type, arena) VS_DRIVER_NAME_##arena(name)
#define VS_DRIVER_NAME_0(name) #name,
#define VS_DRIVER_NAME_1(name) #name,
#define VS_DRIVER_NAME_2(name)
        VS_DRIVER_FUNCS(VS_DRIVER_NAME)
#undef VS_DRIVER_NAME
#undef VS_DRIVER_NAME_0
#undef VS_DRIVER_NAME_1
#undef VS_DRIVER_NAME_2
    };
    size_t missing = 0, used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        if (resolve_real(names[i], handle))
            continue;
        if (missing++ < 3 && used < n) {
            int k = snprintf(buf + used, n - used, "%s%s", missing > 1 ? ", " : "", names[i]);
            used += k > 0 ? (size_t)k : 0;
        }
    }
    if (missing > 3 && used < n)
        snprintf(buf + used, n - used, " and %zu more of the %zu", missing - 3,
                 sizeof names / sizeof *names);
    return missing;
}

/* Opens path as the real driver; NULL (one error line) when it cannot be opened or lacks entry
 * points the shim needs and `then` names what happens instead. An incomplete driver is kept only
 * when there is nothing else to use (then is NULL): it gets the pass-through fate set below. */
static void *open_driver(const char *path, const char *then, size_t *missing)
{
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        vs_log(VS_LOG_ERROR, "cannot open the real driver %s (%s); %s", path, dlerror(),
               then ? then : "driver calls will fail");
        return NULL;
    }
    char names[160];
    *missing = count_missing(handle, names, sizeof names);
    if (*missing && then) {
        vs_log(VS_LOG_ERROR, "the real driver %s lacks the driver entry points %s; %s", path,
               names, then);
        dlclose(handle);
        return NULL;
    }
    if (*missing)
        vs_log(VS_LOG_ERROR,
               "the real driver %s lacks the driver entry points %s; the arena is off and calls "
               "pass through to what it has",
               path, names);
    return handle;
}

static bool open_real_driver(void)
{
    /* dlopen of an already loaded libcuda.so.1 returns that very object, so its symbols are the
     * ones the process resolves; RTLD_LOCAL keeps a driver loaded here out of the global scope.
     * A wrong VRAMSHIM_REAL_LIBCUDA must not break the program: the default driver is used. */
    size_t missing = 0;
    void *handle = NULL;
    if (strcmp(vs_cfg.real_libcuda, VS_DEFAULT_LIBCUDA) != 0)
        handle = open_driver(vs_cfg.real_libcuda, "using " VS_DEFAULT_LIBCUDA, &missing);
    if (!handle)
        handle = open_driver(VS_DEFAULT_LIBCUDA, NULL, &missing);
    if (!handle)
        return false;
    /* The arena calls every vs_drv entry unchecked: it runs only on a complete driver. */
    if (missing)
        vs_cfg.mode = VS_MODE_PASSTHROUGH;
    vs_driver_load(&vs_drv, resolve_real, handle, NULL);
    vs_route_setup();
    Dl_info info;
    if (vs_log_enabled(VS_LOG_DEBUG) && vs_drv.cuGetProcAddress_v2 &&
        dladdr((void *)vs_drv.cuGetProcAddress_v2, &info))
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
