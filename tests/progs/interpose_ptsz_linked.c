/* A program built for the per-thread default stream (nvcc --default-stream per-thread): cuda.h
 * then maps cuMemAllocAsync to cuMemAllocAsync_ptsz and so on. Each _ptsz entry point is called
 * on the per-thread default stream.
 */
#define CUDA_API_PER_THREAD_DEFAULT_STREAM 1
#include "interpose_prog.h"

int main(void)
{
    CUdevice dev = setup_primary();

    CUmemoryPool pool;
    CK(cuDeviceGetDefaultMemPool(&pool, dev));
    CUdeviceptr a, b;
    CK(CALLED("cuMemAllocAsync_ptsz", cuMemAllocAsync(&a, 1 << 20, 0)));
    CK(CALLED("cuMemAllocFromPoolAsync_ptsz", cuMemAllocFromPoolAsync(&b, 1 << 16, pool, 0)));
    CK(CALLED("cuMemFreeAsync_ptsz", cuMemFreeAsync(a, 0)));
    CK(CALLED("cuMemFreeAsync_ptsz", cuMemFreeAsync(b, 0)));
    CK(cuStreamSynchronize(0));
    printf("ptsz ok 1\n");
    print_calls(RTLD_DEFAULT);
    return 0;
}
