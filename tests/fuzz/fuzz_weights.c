/* The decoder weight loaders (kernels/kl_decoder.c, kernels/wan_weights.c) on one safetensors
 * file: architecture detection, prefixes, shapes and config, then free. */
#include "kernels/kl_decoder.h"
#include "kernels/wan.h"
#include "tests/fuzz/fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size, ".safetensors");
    struct vs_err err;
    struct vs_kl_decoder d;
    if (!vs_kl_load(&d, path, VS_ARCH_AUTO, &err))
        vs_kl_free(&d);
    struct vs_wan_model *m;
    if (!vs_wan_load(path, &m, &err))
        vs_wan_free(m);
    return 0;
}
