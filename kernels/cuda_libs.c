/* See cuda_libs.h. The pointer attribute struct is read through a buffer larger than any
 * runtime's cudaPointerAttributes: its first field (the memory type) is all that is used. */
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

static const char *const cudart_names[] = {"libcudart.so.13", "libcudart.so.12", NULL};
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
    static const struct lib_spec cudart = {"CUDA runtime", "VRAMSHIM_CUDART", cudart_names};
    static const struct lib_spec cudnn = {"cuDNN 9", "VRAMSHIM_CUDNN", cudnn_names};
    static const struct lib_spec cublas = {"cuBLAS", "VRAMSHIM_CUBLAS", cublas_names};
    libs.cudart = find_lib(&cudart, libs.cudart_from, sizeof libs.cudart_from);
    if (!libs.cudart) {
        snprintf(libs.why, sizeof libs.why, "no CUDA runtime found (libcudart.so.13/12: not "
                 "loaded, VRAMSHIM_CUDART unset or unusable, not in the CUDA toolkit or the "
                 "loader's paths)");
        return;
    }
    *(void **)&libs.get_device_count = dlsym(libs.cudart, "cudaGetDeviceCount");
    *(void **)&libs.pointer_get_attributes = dlsym(libs.cudart, "cudaPointerGetAttributes");
    if (!libs.get_device_count || !libs.pointer_get_attributes) {
        snprintf(libs.why, sizeof libs.why, "%s lacks cudaGetDeviceCount/"
                 "cudaPointerGetAttributes", libs.cudart_from);
        libs.get_device_count = NULL;
        libs.pointer_get_attributes = NULL;
        return;
    }
    int n = 0;
    int rc = libs.get_device_count(&n);
    libs.devices = rc == 0 ? n : 0;
    if (!libs.devices) {
        snprintf(libs.why, sizeof libs.why, "the CUDA runtime (%s) sees no GPU (cudaGetDeviceCount "
                 "error %d)", libs.cudart_from, rc);
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
#define VS_DNN_SYM(f) if (!missing && !(*(void **)&libs.dnn.f = dlsym(libs.cudnn, #f))) missing = #f;
#define VS_BLAS_SYM(f) if (!missing && !(*(void **)&libs.blas.f = dlsym(libs.cublas, #f))) missing = #f;
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
    const struct vs_cuda_libs *l = vs_cuda_libs();
    if (!l->devices || !p)
        return false;
    /* cudaPointerAttributes starts with `enum cudaMemoryType type`: 2 device, 3 managed */
    union {
        int type;
        unsigned char bytes[256];
    } attr;
    memset(&attr, 0, sizeof attr);
    if (l->pointer_get_attributes(&attr, p) != 0)
        return false;
    return attr.type == 2 || attr.type == 3;
}
