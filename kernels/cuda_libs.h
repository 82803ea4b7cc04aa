/* Whether a GPU is usable, and run-time discovery of cuDNN and cuBLAS, for libvramshim_vae.so
 * and the GPU check. The CUDA runtime is linked into the program (statically in the library:
 * kernels/cuda/runtime.cu provides vs_cuda_linked_runtime, and loads the driver itself); cuDNN
 * and cuBLAS are not linked. Each is looked for, in order:
 *   1. a copy the process already loaded (dlopen RTLD_NOLOAD on its sonames: a PyTorch process
 *      has them, and using another copy would mix two runtimes);
 *   2. the path in VRAMSHIM_CUDNN / VRAMSHIM_CUBLAS;
 *   3. the CUDA toolkit: $CUDA_HOME/lib64, $CUDA_HOME/lib, /usr/local/cuda/lib64,
 *      /usr/local/cuda/lib;
 *   4. the dynamic loader's own search (LD_LIBRARY_PATH, ld.so.cache).
 * The search runs once per process (thread-safe); the result is read-only afterwards. */
#ifndef VS_KERNELS_CUDA_LIBS_H
#define VS_KERNELS_CUDA_LIBS_H

#include <stdbool.h>
#include <stddef.h>

#include <cublas_v2.h>
#include <cudnn.h>

#ifdef __cplusplus
extern "C" { /* also called from the CUDA sources */
#endif

/* The cuDNN and cuBLAS entry points the CUDA layers call, resolved with dlsym (types from the
 * headers the build compiles against: cuDNN 9, cuBLAS 12/13). */
#define VS_CUDNN_FUNCS(X)                                                                        \
    X(cudnnGetErrorString) X(cudnnCreate) X(cudnnDestroy) X(cudnnSetStream)                      \
    X(cudnnCreateTensorDescriptor) X(cudnnDestroyTensorDescriptor)                               \
    X(cudnnSetTensor4dDescriptorEx) X(cudnnCreateFilterDescriptor)                               \
    X(cudnnDestroyFilterDescriptor) X(cudnnSetFilter4dDescriptor)                                \
    X(cudnnCreateConvolutionDescriptor) X(cudnnDestroyConvolutionDescriptor)                     \
    X(cudnnSetConvolution2dDescriptor) X(cudnnSetConvolutionMathType)                            \
    X(cudnnGetConvolutionForwardAlgorithm_v7) X(cudnnConvolutionForward) X(cudnnAddTensor)
#define VS_CUBLAS_FUNCS(X)                                                                       \
    X(cublasCreate_v2) X(cublasDestroy_v2) X(cublasSetStream_v2) X(cublasSetMathMode)            \
    X(cublasSgemm_v2)
/* (qualified in C++: a member may not reuse an unqualified name it was declared with) */
#ifdef __cplusplus
#define VS_CUDA_FN_FIELD(f) __typeof__(&::f) f;
#else
#define VS_CUDA_FN_FIELD(f) __typeof__(&f) f;
#endif
struct vs_cudnn_api {
    VS_CUDNN_FUNCS(VS_CUDA_FN_FIELD)
};
struct vs_cublas_api {
    VS_CUBLAS_FUNCS(VS_CUDA_FN_FIELD)
};

/* The linked CUDA runtime (kernels/cuda/runtime.cu). */
struct vs_cuda_runtime {
    const char *label;
    /* 0 with *n > 0 GPUs, or -1 with why: no driver, driver too old, no device, ... */
    int (*device_count)(int *n, char *why, size_t len);
    bool (*is_device)(const void *p); /* device or managed memory */
};
extern const struct vs_cuda_runtime vs_cuda_linked_runtime;

struct vs_cuda_libs {
    void *cudnn, *cublas;
    char cudnn_from[512], cublas_from[512]; /* how each was found */
    int devices;      /* cudaGetDeviceCount, 0 on error */
    bool gpu_usable;  /* a device, cuDNN and cuBLAS with every entry point */
    char why[1024];   /* one line: what is missing, when !gpu_usable */
    /* filled when gpu_usable (every entry point found) */
    struct vs_cudnn_api dnn;
    struct vs_cublas_api blas;
};

const struct vs_cuda_libs *vs_cuda_libs(void);

/* True when p is device (or managed) memory; false for host memory and whenever no GPU is
 * there. */
bool vs_cuda_is_device_pointer(const void *p);

#ifdef __cplusplus
}
#endif

#endif
