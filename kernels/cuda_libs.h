/* Run-time discovery of the CUDA runtime, cuDNN and cuBLAS for libvramshim_vae.so and the CLI, which link
 * none of them. Each library is looked for, in order:
 *   1. a copy the process already loaded (dlopen RTLD_NOLOAD on its sonames: a PyTorch process
 *      has them, and using another copy would mix two runtimes);
 *   2. the path in VRAMSHIM_CUDART / VRAMSHIM_CUDNN / VRAMSHIM_CUBLAS;
 *   3. the CUDA toolkit: $CUDA_HOME/lib64, $CUDA_HOME/lib, /usr/local/cuda/lib64, /usr/local/cuda/lib;
 *   4. the dynamic loader's own search (LD_LIBRARY_PATH, ld.so.cache).
 * The search runs once per process (thread-safe); the result is read-only afterwards. */
#ifndef VS_KERNELS_CUDA_LIBS_H
#define VS_KERNELS_CUDA_LIBS_H

#include <stdbool.h>
#include <stddef.h>

struct vs_cuda_libs {
    void *cudart, *cudnn, *cublas;
    char cudart_from[512], cudnn_from[512], cublas_from[512]; /* how each was found */
    int devices;      /* cudaGetDeviceCount, 0 on error */
    bool gpu_usable;  /* runtime loaded and at least one device */
    char why[1024];   /* one line: what is missing, when !gpu_usable */
    /* runtime entry points used by the library (NULL when the runtime is missing) */
    int (*get_device_count)(int *count);
    int (*pointer_get_attributes)(void *attr, const void *ptr);
};

const struct vs_cuda_libs *vs_cuda_libs(void);

/* True when p is device (or managed) memory according to the loaded runtime; false for host
 * memory and whenever no runtime is usable. */
bool vs_cuda_is_device_pointer(const void *p);

#endif
