/* See decode_gpu.h. The library is looked for beside the executable (the build tree and the
 * bundle keep them together), in its lib/ directory, then on the loader's paths. */
#include "tools/cli/decode_gpu.h"

#include <dlfcn.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define VAE_FUNCS(X) X(vramshim_vae_open_file) X(vramshim_vae_close) X(vramshim_vae_decode) \
    X(vramshim_vae_gpu_status)

static struct {
#define FIELD(f) __typeof__(&f) f;
    VAE_FUNCS(FIELD)
#undef FIELD
    int loaded;
    char why[3072];
} lib;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void load(void)
{
    char exe[1024] = "", dir[1024], paths[3][1100];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    snprintf(dir, sizeof dir, "%s", n > 0 ? dirname(exe) : ".");
    snprintf(paths[0], sizeof paths[0], "%s/libvramshim_vae.so", dir);
    snprintf(paths[1], sizeof paths[1], "%s/lib/libvramshim_vae.so", dir);
    snprintf(paths[2], sizeof paths[2], "libvramshim_vae.so");
    void *h = NULL;
    const char *last = "";
    for (int i = 0; i < 3 && !h; i++)
        if (!(h = dlopen(paths[i], RTLD_NOW | RTLD_LOCAL)))
            last = dlerror();
    if (!h) {
        snprintf(lib.why, sizeof lib.why, "cannot load libvramshim_vae.so (looked in %s, %s/lib "
                 "and the loader's paths: %s)", dir, dir, last);
        return;
    }
    const char *missing = NULL;
#define SYM(f) if (!missing && !(*(void **)&lib.f = dlsym(h, #f))) missing = #f;
    VAE_FUNCS(SYM)
#undef SYM
    if (missing) {
        snprintf(lib.why, sizeof lib.why, "libvramshim_vae.so lacks %s (an older build?)", missing);
        dlclose(h);
        return;
    }
    lib.loaded = 1;
}

int vs_cli_gpu_usable(char *why, size_t len)
{
    pthread_once(&once, load);
    if (!lib.loaded) {
        snprintf(why, len, "%s", lib.why);
        return -1;
    }
    return lib.vramshim_vae_gpu_status(why, len) == VRAMSHIM_VAE_OK ? 0 : -1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int vs_cli_gpu_decode(const char *vae_path, vramshim_vae_arch arch,
                      const vramshim_vae_decode_args *a, vramshim_vae_plan *plan, double *seconds,
                      struct vs_err *err)
{
    vramshim_vae *v;
    if (vs_cli_gpu_usable(err->msg, sizeof err->msg))
        return -1;
    if (lib.vramshim_vae_open_file(vae_path, arch, &v, err->msg, sizeof err->msg))
        return -1;
    double t0 = now_s();
    int rc = lib.vramshim_vae_decode(v, a, plan, err->msg, sizeof err->msg);
    *seconds = now_s() - t0;
    lib.vramshim_vae_close(v);
    return rc ? -1 : 0;
}
