/* .npy latents reader (kernels/array_io.c): any bytes give an array or an error, never a crash,
 * an out-of-bounds access or an allocation the file's size does not justify. */
#include "kernels/array_io.h"
#include "tests/fuzz/fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vs_array a;
    struct vs_err err;
    if (!vs_array_load(fuzz_file(data, size, ".npy"), &a, &err))
        vs_array_free(&a);
    return 0;
}
