/* A "generator" whose phases are recognised by their call sites: the test's policy maps
 * stg_dit_load to stage load, stg_vae_load to tag vae, stg_vae_decode to stage decode. Each
 * phase allocates from its own function (never inlined, never a tail call), then main allocates
 * once more; the trace shows which stage and tag each allocation got. */
#include "stages_prog.h"

#define MiB (1024u * 1024u)

static CUdeviceptr blocks[5];

__attribute__((noinline)) void stg_dit_load(void)
{
    CK(cuMemAlloc(&blocks[0], 4 * MiB));
}

__attribute__((noinline)) void stg_vae_load(void)
{
    CK(cuMemAlloc(&blocks[1], 2 * MiB));
}

__attribute__((noinline)) void stg_vae_decode(void)
{
    CK(cuMemAlloc(&blocks[2], 3 * MiB));
    CK(cuMemAlloc(&blocks[3], 1 * MiB));
}

int main(void)
{
    vs_api_lookup();
    vs_prog_context();
    stg_dit_load();
    stg_vae_load();
    stg_vae_decode();
    CK(cuMemAlloc(&blocks[4], 1 * MiB));
    vs_print_stats();
    for (int i = 0; i < 5; i++)
        CK(cuMemFree(blocks[i]));
    return 0;
}
