/* Another process holding GPU memory, for demo scenarios on a real GPU: it stands for a second
 * program (an LLM server) owning part of the device, and for the memory a larger card has beyond
 * the GPU of the reported failure, so a scenario runs at its real size. On the simulated driver
 * the same thing is SIMCUDA_VRAM / SIMCUDA_VRAM_TAKEN.
 *
 *   vram_holder SHARE          holds SHARE (0..1) of device 0's total memory
 *   vram_holder --leave BYTES  holds all of device 0's free memory but about BYTES
 * then prints "holding BYTES" on stdout and keeps the memory until stdin closes.
 * Exit status 0, 2 bad usage or no driver, 3 the memory could not be had, 4 (--leave) less than
 * BYTES is free to begin with.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/demo/lib/cu.h"

static int usage(void)
{
    fprintf(stderr,
            "usage: vram_holder SHARE | --leave BYTES   (SHARE: 0 < SHARE < 1 of device 0's "
            "memory; --leave: hold all but BYTES of its free memory; held until stdin "
            "closes)\n");
    return 2;
}

int main(int argc, char **argv)
{
    char *end = NULL;
    double share = 0;
    unsigned long long leave = 0;
    errno = 0;
    if (argc == 3 && !strcmp(argv[1], "--leave")) {
        leave = strtoull(argv[2], &end, 10);
        if (end == argv[2] || *end || errno || argv[2][0] == '-')
            return usage();
    } else if (argc == 2) {
        share = strtod(argv[1], &end);
        if (end == argv[1] || *end || errno || !(share > 0 && share < 1))
            return usage();
    } else {
        return usage();
    }
    struct vs_demo_cu cu;
    char err[256];
    if (vs_demo_cu_open(&cu, err, sizeof err)) {
        fprintf(stderr, "vram_holder: %s\n", err);
        return 2;
    }
    size_t free_b = 0, total = 0;
    CUresult r = cu.mem_get_info(&free_b, &total);
    size_t want = 0;
    if (r == CUDA_SUCCESS && share > 0) {
        want = (size_t)(share * (double)total);
    } else if (r == CUDA_SUCCESS) {
        if (free_b < leave) {
            fprintf(stderr, "vram_holder: device 0 has %zu bytes free, less than the %llu to "
                            "leave\n", free_b, leave);
            return 4;
        }
        want = free_b - leave;
    }
    /* Several blocks, as a server's allocator would hold them; the last one is left out when it
     * is under 2 MiB (the driver's granularity). */
    enum { BLOCK = 1 << 30, MIN_BLOCK = 2 << 20 };
    size_t held = 0;
    while (r == CUDA_SUCCESS && held < want && (share > 0 || want - held >= MIN_BLOCK)) {
        size_t n = want - held < BLOCK ? want - held : BLOCK;
        CUdeviceptr p;
        if ((r = cu.mem_alloc(&p, n)) == CUDA_SUCCESS)
            held += n;
    }
    if (r != CUDA_SUCCESS) {
        char name[64];
        fprintf(stderr, "vram_holder: could hold only %zu of %zu bytes: %s\n", held, want,
                vs_demo_cu_error(&cu, r, name, sizeof name));
        return 3;
    }
    printf("holding %zu\n", held);
    fflush(stdout);
    while (getchar() != EOF)
        ;
    return 0;
}
