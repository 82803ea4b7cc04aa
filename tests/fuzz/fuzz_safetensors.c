/* safetensors reader (kernels/safetensors.c) and the latents path over it: open, look up
 * metadata, convert every readable tensor to float32. */
#include "kernels/array_io.h"
#include "kernels/safetensors.h"
#include "tests/fuzz/fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size, ".safetensors");
    struct vs_st_file f;
    struct vs_err err;
    if (!vs_st_open(&f, path, &err)) {
        (void)vs_st_meta(&f, "format");
        for (size_t i = 0; i < f.count; i++) {
            const struct vs_st_tensor *t = &f.tensors[i];
            /* numel <= nbytes <= the file's size: the open checked it */
            float *dst = malloc((t->numel ? t->numel : 1) * sizeof *dst);
            if (dst && t->dtype != VS_DT_OTHER && vs_st_read_f32(&f, t, dst, &err))
                abort(); /* a supported dtype that opened must convert */
            free(dst);
            if (vs_st_find(&f, t->name) != t && strcmp(vs_st_find(&f, t->name)->name, t->name))
                abort();
        }
        vs_st_close(&f);
    }
    struct vs_array a;
    if (!vs_array_load(path, &a, &err))
        vs_array_free(&a);
    return 0;
}
