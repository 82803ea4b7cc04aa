/* simcuda copies: generic (unified) copies, 2D copies, peer copies and page-locked host memory. */
#include "test_sim_common.h"

#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

Test(sim_copy, generic_copy_moves_between_host_and_device)
{
    sim_start();
    CUdeviceptr a, b;
    CU_OK(cuMemAlloc_v2(&a, 4096));
    CU_OK(cuMemAlloc_v2(&b, 4096));
    char text[] = "unified addressing";
    char back[sizeof text] = "";
    CU_OK(cuMemcpy(a, (CUdeviceptr)text, sizeof text));
    CU_OK(cuMemcpy(b, a, sizeof text));
    CU_OK(cuMemcpy((CUdeviceptr)back, b, sizeof text));
    cr_assert_str_eq(back, text);
    CUstream s;
    CU_OK(cuStreamCreate(&s, 0));
    memset(back, 0, sizeof back);
    CU_OK(cuMemcpyAsync((CUdeviceptr)back, a, sizeof text, s));
    CU_OK(cuStreamSynchronize(s));
    cr_assert_str_eq(back, text);
}

Test(sim_copy, two_dimensional_copy_respects_pitches_and_offsets)
{
    sim_start();
    CUdeviceptr d;
    size_t pitch;
    CU_OK(cuMemAllocPitch_v2(&d, &pitch, 16, 4, 4));
    unsigned char host[4][10];
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 10; c++)
            host[r][c] = (unsigned char)(r * 16 + c);
    CUDA_MEMCPY2D up = {.srcMemoryType = CU_MEMORYTYPE_HOST, .srcHost = host, .srcPitch = 10,
                        .srcXInBytes = 2,
                        .dstMemoryType = CU_MEMORYTYPE_DEVICE, .dstDevice = d, .dstPitch = pitch,
                        .dstY = 1,
                        .WidthInBytes = 8, .Height = 3};
    CU_OK(cuMemcpy2D_v2(&up));
    unsigned char *dev = (unsigned char *)d;
    cr_assert_eq(dev[pitch + 0], 2, "row 0 col 2 lands at device row 1 col 0");
    cr_assert_eq(dev[2 * pitch + 7], 16 + 9);
    cr_assert_eq(dev[3 * pitch + 8], 0, "beyond the width nothing is written");
    unsigned char down[3][8];
    CUDA_MEMCPY2D get = {.srcMemoryType = CU_MEMORYTYPE_UNIFIED, .srcDevice = d + pitch,
                         .srcPitch = pitch,
                         .dstMemoryType = CU_MEMORYTYPE_HOST, .dstHost = down, .dstPitch = 8,
                         .WidthInBytes = 8, .Height = 3};
    CU_OK(cuMemcpy2DAsync_v2(&get, NULL));
    CU_OK(cuStreamSynchronize(NULL));
    cr_assert_eq(down[2][7], 2 * 16 + 9);
    up.srcPitch = 4; /* narrower than the width */
    cr_assert_eq(cuMemcpy2D_v2(&up), CUDA_ERROR_INVALID_VALUE);
    up.srcPitch = 10;
    up.srcMemoryType = CU_MEMORYTYPE_ARRAY;
    cr_redirect_stderr();
    cr_assert_eq(cuMemcpy2D_v2(&up), CUDA_ERROR_NOT_SUPPORTED);
}

static void two_devices(void)
{
    setenv("SIMCUDA_DEVICES", "2", 1);
}

Test(sim_copy, peer_copy_between_devices, .init = two_devices)
{
    CUcontext c0 = sim_start(), c1;
    CU_OK(cuDevicePrimaryCtxRetain(&c1, 1));
    CUdeviceptr a, b;
    CU_OK(cuMemAlloc_v2(&a, 64));
    CU_OK(cuCtxSetCurrent(c1));
    CU_OK(cuMemAlloc_v2(&b, 64));
    memset((void *)a, 0x31, 64);
    CU_OK(cuMemcpyPeer(b, c1, a, c0, 64));
    cr_assert_eq(((unsigned char *)b)[63], 0x31);
    int ordinal;
    CU_OK(cuPointerGetAttribute(&ordinal, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, b));
    cr_assert_eq(ordinal, 1);
    int junk[4];
    cr_assert_eq(cuMemcpyPeer(b, (CUcontext)junk, a, c0, 64), CUDA_ERROR_INVALID_CONTEXT);
    int can;
    CU_OK(cuDeviceCanAccessPeer(&can, 0, 1));
    cr_assert_eq(can, 1);
}

Test(sim_copy, page_locked_host_memory)
{
    sim_start();
    void *h;
    CU_OK(cuMemHostAlloc(&h, 8192, CU_MEMHOSTALLOC_DEVICEMAP));
    unsigned int type, flags;
    CU_OK(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, (CUdeviceptr)h + 100));
    cr_assert_eq(type, CU_MEMORYTYPE_HOST);
    CU_OK(cuMemHostGetFlags(&flags, h));
    cr_assert_eq(flags, CU_MEMHOSTALLOC_DEVICEMAP);
    CUdeviceptr dh;
    CU_OK(cuMemHostGetDevicePointer_v2(&dh, h, 0));
    cr_assert_eq(dh, (CUdeviceptr)h);
    CUdeviceptr d;
    CU_OK(cuMemAlloc_v2(&d, 8192));
    memset(h, 0x6a, 8192);
    CU_OK(cuMemcpyHtoDAsync_v2(d, h, 8192, NULL));
    CU_OK(cuStreamSynchronize(NULL));
    cr_assert_eq(((unsigned char *)d)[8191], 0x6a);
    cr_assert_eq(simcuda_physical_in_use(0), GRANULE, "host memory is not device memory");
    CU_OK(cuMemFreeHost(h));
    cr_assert_eq(cuMemFreeHost(h), CUDA_ERROR_INVALID_VALUE);

    static char buf[4096];
    CU_OK(cuMemHostRegister_v2(buf, sizeof buf, 0));
    cr_assert_eq(cuMemHostRegister_v2(buf + 10, 10, 0), CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED);
    CU_OK(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, (CUdeviceptr)buf));
    cr_assert_eq(type, CU_MEMORYTYPE_HOST);
    cr_assert_eq(cuMemFreeHost(buf), CUDA_ERROR_INVALID_VALUE, "registered memory is not freed");
    CU_OK(cuMemHostUnregister(buf));
    cr_assert_eq(cuMemHostUnregister(buf), CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED);
}

Test(sim_copy, forked_child_can_use_streams)
{
    sim_start();
    CUdeviceptr p;
    CU_OK(cuMemAlloc_v2(&p, 64));
    CU_OK(cuMemsetD8Async(p, 1, 64, NULL)); /* starts the legacy stream's worker */
    CU_OK(cuStreamSynchronize(NULL));
    pid_t pid = fork();
    if (pid == 0) {
        CUresult rc = cuMemsetD8_v2(p, 2, 64);
        _exit(rc == CUDA_SUCCESS && ((unsigned char *)p)[0] == 2 ? 0 : 1);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child's memset ran");
}
