/* simcuda sparse backing: real GPU sizes cost host memory only for what is written. */
#include "test_sim_common.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bytes of host memory backing the device memfd right now (found by its name in /proc/self/fd). */
static size_t device_rss(int device)
{
    char want[64];
    snprintf(want, sizeof want, "/memfd:simcuda-device%d (deleted)", device);
    DIR *dir = opendir("/proc/self/fd");
    cr_assert_not_null(dir);
    size_t bytes = (size_t)-1;
    struct dirent *ent;
    while ((ent = readdir(dir))) {
        char path[300], target[300];
        snprintf(path, sizeof path, "/proc/self/fd/%s", ent->d_name);
        ssize_t n = readlink(path, target, sizeof target - 1);
        if (n <= 0)
            continue;
        target[n] = 0;
        if (strcmp(target, want) != 0)
            continue;
        struct stat st;
        cr_assert_eq(fstat(atoi(ent->d_name), &st), 0);
        bytes = (size_t)st.st_blocks * 512;
    }
    closedir(dir);
    cr_assert_neq(bytes, (size_t)-1, "no memfd named %s", want);
    return bytes;
}

static void vram_24g(void)
{
    setenv("SIMCUDA_VRAM", "24GiB", 1);
}

Test(sim_sparse, sixteen_gib_allocation_costs_only_what_is_written, .init = vram_24g)
{
    sim_start();
    CUdeviceptr p;
    CU_OK(cuMemAlloc_v2(&p, 16 * GiB));
    cr_assert_eq(simcuda_physical_in_use(0), 16 * GiB);
    CU_OK(cuMemsetD8_v2(p + 8 * GiB, 0xab, 4 * MiB));
    cr_assert_eq(((unsigned char *)p)[8 * GiB + 4 * MiB - 1], 0xab);
    size_t rss = device_rss(0);
    cr_assert_geq(rss, 4 * MiB);
    cr_assert_leq(rss, 8 * MiB, "16 GiB allocated, 4 MiB written: %zu bytes backed", rss);
    CU_OK(cuMemFree_v2(p));
    cr_assert_eq(device_rss(0), 0, "freed memory is punched");
    cr_assert_eq(simcuda_physical_in_use(0), 0);
}

Test(sim_sparse, copies_of_unwritten_ranges_stay_unwritten, .init = vram_24g)
{
    sim_start();
    CUdeviceptr a, b;
    CU_OK(cuMemAlloc_v2(&a, 4 * GiB));
    CU_OK(cuMemAlloc_v2(&b, 4 * GiB));
    memset((void *)(a + GiB), 0x5c, 2 * MiB);
    CU_OK(cuMemcpyDtoD_v2(b, a, 4 * GiB));
    cr_assert_eq(((unsigned char *)b)[GiB + 12345], 0x5c);
    size_t rss = device_rss(0);
    cr_assert_leq(rss, 8 * MiB, "a 4 GiB copy of 2 MiB of data: %zu bytes backed", rss);
    /* Copying a hole over data zeroes it by punching. */
    CU_OK(cuMemcpyDtoD_v2(b + GiB, a, 2 * MiB));
    cr_assert_eq(((unsigned char *)b)[GiB + 12345], 0);
    cr_assert_leq(device_rss(0), 4 * MiB + 8192);
}

Test(sim_sparse, memset_zero_punches_and_partial_pages_are_exact, .init = vram_24g)
{
    sim_start();
    CUdeviceptr p;
    CU_OK(cuMemAlloc_v2(&p, GiB));
    memset((void *)p, 0xff, 1 * MiB);
    CU_OK(cuMemsetD8_v2(p + 100, 0, 1 * MiB - 200));
    unsigned char *b = (unsigned char *)p;
    cr_assert_eq(b[99], 0xff);
    cr_assert_eq(b[100], 0);
    cr_assert_eq(b[MiB - 101], 0);
    cr_assert_eq(b[MiB - 100], 0xff);
    cr_assert_leq(device_rss(0), 2 * 4096, "only the two edge pages stay backed");
    /* Zeroing never-written memory allocates nothing. */
    CU_OK(cuMemsetD32_v2(p + 512 * MiB, 0, 64 * MiB));
    cr_assert_leq(device_rss(0), 2 * 4096);
}

Test(sim_sparse, device_to_host_copy_of_a_hole_reads_zeros, .init = vram_24g)
{
    sim_start();
    CUdeviceptr p;
    CU_OK(cuMemAlloc_v2(&p, 2 * GiB));
    static unsigned char out[8192];
    memset(out, 0x77, sizeof out);
    ((unsigned char *)p)[GiB + 4096] = 0x42;
    CU_OK(cuMemcpyDtoH_v2(out, p + GiB, sizeof out));
    cr_assert_eq(out[0], 0);
    cr_assert_eq(out[4096], 0x42);
    cr_assert_eq(out[8191], 0);
    cr_assert_leq(device_rss(0), 4096);
}

Test(sim_sparse, memset_patterns_are_laid_out_per_element)
{
    sim_start();
    CUdeviceptr p;
    CU_OK(cuMemAlloc_v2(&p, 3 * MiB));
    CU_OK(cuMemsetD32_v2(p + 2 * MiB - 8, 0x11223344u, 4)); /* crosses nothing, 16 bytes */
    CU_OK(cuMemsetD16_v2(p + 64, 0xbeef, 3));
    unsigned int *w = (unsigned int *)(p + 2 * MiB - 8);
    cr_assert_eq(w[0], 0x11223344u);
    cr_assert_eq(w[3], 0x11223344u);
    unsigned short *h = (unsigned short *)(p + 64);
    cr_assert_eq(h[2], 0xbeef);
    cr_assert_eq(h[3], 0);
    cr_assert_eq(cuMemsetD32_v2(p + 2, 1, 1), CUDA_ERROR_INVALID_VALUE, "misaligned");
    size_t pitch = 4096;
    CU_OK(cuMemsetD2D8_v2(p, pitch, 0x3c, 10, 3));
    cr_assert_eq(((unsigned char *)p)[2 * pitch + 9], 0x3c);
    cr_assert_eq(((unsigned char *)p)[2 * pitch + 10], 0);
}
