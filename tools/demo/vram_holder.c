/* Another process holding GPU memory, for demo scenarios on a real GPU where a second program
 * (an LLM server) owns part of the device. On the simulated driver the same thing is
 * SIMCUDA_VRAM_TAKEN.
 *
 *   vram_holder SHARE    allocates SHARE (0..1) of device 0's total memory, prints
 *                        "holding BYTES" on stdout, and keeps it until stdin closes.
 * Exit status 0, 2 bad usage or no driver, 3 the memory could not be had.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "tools/demo/lib/cu.h"

int main(int argc, char **argv)
{
    char *end;
    errno = 0;
    double share = argc == 2 ? strtod(argv[1], &end) : -1;
    if (argc != 2 || end == argv[1] || *end || errno || !(share > 0 && share < 1)) {
        fprintf(stderr, "usage: vram_holder SHARE   (0 < SHARE < 1: the part of device 0's memory "
                        "to hold until stdin closes)\n");
        return 2;
    }
    struct vs_demo_cu cu;
    char err[256];
    if (vs_demo_cu_open(&cu, err, sizeof err)) {
        fprintf(stderr, "vram_holder: %s\n", err);
        return 2;
    }
    size_t free_b, total;
    CUresult r = cu.mem_get_info(&free_b, &total);
    size_t want = r == CUDA_SUCCESS ? (size_t)(share * (double)total) : 0;
    /* Several blocks, as a server's allocator would hold them. */
    enum { BLOCK = 1 << 30 };
    size_t held = 0;
    while (r == CUDA_SUCCESS && held < want) {
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
