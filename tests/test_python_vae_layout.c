/* python/vramshim/_vae.py's ctypes structs against include/vramshim_vae.h: every public struct's
 * size and every field's offset and size, as this compiler lays them out, equal the ctypes
 * mirror's (tests/progs/py_vae_layout.py prints those). A field added, removed, reordered or
 * retyped on one side only fails here, naming the struct and field, instead of corrupting a
 * decode's arguments at run time. */
#include <stddef.h>

#include "include/vramshim_vae.h"
#include "python_fixture.h"

struct member {
    const char *name; /* "struct.field", or "struct" for the struct's size */
    size_t offset, size;
};

#define STRUCT(s) {#s, 0, sizeof(s)}
#define FIELD(s, f) {#s "." #f, offsetof(s, f), sizeof(((s *)0)->f)}

static const struct member header[] = {
    STRUCT(vramshim_vae_tensor),
    FIELD(vramshim_vae_tensor, name),
    FIELD(vramshim_vae_tensor, data),
    FIELD(vramshim_vae_tensor, dtype),
    FIELD(vramshim_vae_tensor, ndim),
    FIELD(vramshim_vae_tensor, shape),
    STRUCT(vramshim_vae_allocator),
    FIELD(vramshim_vae_allocator, alloc),
    FIELD(vramshim_vae_allocator, free),
    FIELD(vramshim_vae_allocator, ctx),
    STRUCT(vramshim_vae_decode_args),
    FIELD(vramshim_vae_decode_args, latents),
    FIELD(vramshim_vae_decode_args, latents_dtype),
    FIELD(vramshim_vae_decode_args, out),
    FIELD(vramshim_vae_decode_args, out_dtype),
    FIELD(vramshim_vae_decode_args, ndim),
    FIELD(vramshim_vae_decode_args, shape),
    FIELD(vramshim_vae_decode_args, mode),
    FIELD(vramshim_vae_decode_args, tile_px),
    FIELD(vramshim_vae_decode_args, budget),
    FIELD(vramshim_vae_decode_args, scaled),
    FIELD(vramshim_vae_decode_args, stream),
    FIELD(vramshim_vae_decode_args, allocator),
    FIELD(vramshim_vae_decode_args, device),
    STRUCT(vramshim_vae_plan),
    FIELD(vramshim_vae_plan, mode),
    FIELD(vramshim_vae_plan, tiles_y),
    FIELD(vramshim_vae_plan, tiles_x),
    FIELD(vramshim_vae_plan, tile_h),
    FIELD(vramshim_vae_plan, tile_w),
    FIELD(vramshim_vae_plan, halo_px),
    FIELD(vramshim_vae_plan, predicted_peak),
    FIELD(vramshim_vae_plan, predicted_parked),
    FIELD(vramshim_vae_plan, measured_peak),
    FIELD(vramshim_vae_plan, description),
};
#define N_MEMBERS (sizeof header / sizeof *header)

/* The header's member `name`, or NULL. */
static const struct member *in_header(const char *name)
{
    for (size_t i = 0; i < N_MEMBERS; i++)
        if (!strcmp(header[i].name, name))
            return &header[i];
    return NULL;
}

Test(python_vae_layout, ctypes_structs_match_the_header)
{
    const char *env[] = {"PYTHONPATH=" VS_SOURCE_DIR "/python", NULL};
    const char *argv[] = {vs_python(), VS_PYPROG("py_vae_layout.py"), NULL};
    struct vs_run r = vs_run(argv, 0, env);
    cr_assert_eq(r.status, 0, "py_vae_layout.py: exit %d\n%s", r.status, r.raw_err);
    int seen[N_MEMBERS] = {0};
    char *save = NULL;
    for (char *line = strtok_r(r.out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char name[128];
        size_t offset = 0, size;
        int is_struct = sscanf(line, "%127s size %zu", name, &size) == 2;
        cr_assert(is_struct || sscanf(line, "%127s %zu %zu", name, &offset, &size) == 3,
                  "py_vae_layout.py printed %s", line);
        const struct member *m = in_header(name);
        if (!m) {
            cr_expect_fail("_vae.py has %s %s, which include/vramshim_vae.h does not (or this "
                           "test's table lacks it)", is_struct ? "struct" : "field", name);
            continue;
        }
        seen[m - header] = 1;
        if (is_struct)
            cr_expect_eq(size, m->size, "%s: %zu bytes in C, %zu in _vae.py", name, m->size,
                         size);
        else
            cr_expect(offset == m->offset && size == m->size,
                      "%s: offset %zu size %zu in C, offset %zu size %zu in _vae.py", name,
                      m->offset, m->size, offset, size);
    }
    for (size_t i = 0; i < N_MEMBERS; i++)
        cr_expect(seen[i], "%s is in include/vramshim_vae.h but not in _vae.py's mirror",
                  header[i].name);
    vs_run_free(&r);
}
