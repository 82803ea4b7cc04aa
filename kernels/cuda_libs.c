/* See cuda_libs.h. */
#include "kernels/cuda_libs.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lib_spec {
    const char *what, *env;
    const char *const *sonames; /* newest first, NULL-terminated */
};

static const char *const cudnn_names[] = {"libcudnn.so.9", NULL};
static const char *const cublas_names[] = {"libcublas.so.13", "libcublas.so.12", NULL};

static void *try_dir(const char *dir, const char *soname, char *from, size_t len)
{
    char path[480];
    snprintf(path, sizeof path, "%s/%s", dir, soname);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h)
        snprintf(from, len, "%s", path);
    return h;
}

static void *find_lib(const struct lib_spec *s, char *from, size_t len)
{
    void *h;
    for (const char *const *n = s->sonames; *n; n++)
        if ((h = dlopen(*n, RTLD_NOW | RTLD_NOLOAD))) {
            snprintf(from, len, "%s (already loaded)", *n);
            return h;
        }
    const char *env = getenv(s->env);
    if (env && *env) {
        if ((h = dlopen(env, RTLD_NOW | RTLD_LOCAL))) {
            snprintf(from, len, "%s (%s)", env, s->env);
            return h;
        }
        fprintf(stderr, "vramshim_vae: %s=%s cannot be loaded (%s); looking elsewhere\n", s->env,
                env, dlerror());
    }
    const char *home = getenv("CUDA_HOME");
    const char *dirs[] = {home && *home ? home : NULL, "/usr/local/cuda"};
    for (size_t d = 0; d < 2; d++)
        for (const char *const *n = s->sonames; dirs[d] && *n; n++) {
            char dir[400];
            snprintf(dir, sizeof dir, "%s/lib64", dirs[d]);
            if ((h = try_dir(dir, *n, from, len)))
                return h;
            snprintf(dir, sizeof dir, "%s/lib", dirs[d]);
            if ((h = try_dir(dir, *n, from, len)))
                return h;
        }
    for (const char *const *n = s->sonames; *n; n++)
        if ((h = dlopen(*n, RTLD_NOW | RTLD_LOCAL))) {
            snprintf(from, len, "%s (loader path)", *n);
            return h;
        }
    return NULL;
}

static struct vs_cuda_libs libs;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void discover(void)
{
    static const struct lib_spec cudnn = {"cuDNN 9", "VRAMSHIM_CUDNN", cudnn_names};
    static const struct lib_spec cublas = {"cuBLAS", "VRAMSHIM_CUBLAS", cublas_names};
    char why[sizeof libs.why - 64];
    if (vs_cuda_linked_runtime.device_count(&libs.devices, why, sizeof why)) {
        snprintf(libs.why, sizeof libs.why, "%s", why);
        return;
    }
    /* cuDNN and cuBLAS are large: looked for only when there is a GPU to use them on */
    libs.cudnn = find_lib(&cudnn, libs.cudnn_from, sizeof libs.cudnn_from);
    libs.cublas = find_lib(&cublas, libs.cublas_from, sizeof libs.cublas_from);
    if (!libs.cudnn || !libs.cublas) {
        snprintf(libs.why, sizeof libs.why, "%d GPU(s) but %s not found (set %s)", libs.devices,
                 !libs.cudnn ? "cuDNN 9 (libcudnn.so.9)" : "cuBLAS (libcublas.so.13/12)",
                 !libs.cudnn ? "VRAMSHIM_CUDNN" : "VRAMSHIM_CUBLAS");
        return;
    }
    const char *missing = NULL;
#define VS_DNN_SYM(f)                                                                              \
    if (!missing && !(*(void **)&libs.dnn.f = dlsym(libs.cudnn, #f)))                              \
        missing = #f;
#define VS_BLAS_SYM(f)                                                                             \
    if (!missing && !(*(void **)&libs.blas.f = dlsym(libs.cublas, #f)))                            \
        missing = #f;
    VS_CUDNN_FUNCS(VS_DNN_SYM)
    VS_CUBLAS_FUNCS(VS_BLAS_SYM)
#undef VS_DNN_SYM
#undef VS_BLAS_SYM
    if (missing) {
        snprintf(libs.why, sizeof libs.why, "%s lacks %s", missing[2] == 'd' ? libs.cudnn_from
                 : libs.cublas_from, missing);
        return;
    }
    libs.gpu_usable = true;
}

const struct vs_cuda_libs *vs_cuda_libs(void)
{
    pthread_once(&once, discover);
    return &libs;
}

bool vs_cuda_is_device_pointer(const void *p)
{
    return p && vs_cuda_libs()->devices && vs_cuda_linked_runtime.is_device(p);
}
