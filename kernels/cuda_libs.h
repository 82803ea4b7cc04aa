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

struct vs_cuda_libs {
    void *cudart, *cudnn, *cublas;
    char cudart_from[512], cudnn_from[512], cublas_from[512]; /* how each was found */
    int devices;      /* cudaGetDeviceCount, 0 on error */
    bool gpu_usable;  /* runtime loaded and at least one device */
    char why[1024];   /* one line: what is missing, when !gpu_usable */
    /* runtime entry points used by the library (NULL when the runtime is missing) */
    int (*get_device_count)(int *count);
    int (*pointer_get_attributes)(void *attr, const void *ptr);
    /* filled when gpu_usable (every entry point found) */
    struct vs_cudnn_api dnn;
    struct vs_cublas_api blas;
};

const struct vs_cuda_libs *vs_cuda_libs(void);

/* True when p is device (or managed) memory according to the loaded runtime; false for host
 * memory and whenever no runtime is usable. */
bool vs_cuda_is_device_pointer(const void *p);

#ifdef __cplusplus
}
#endif

#endif
