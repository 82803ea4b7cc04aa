/* Prefix detection, shape-checked tensor reads and use tracking over one safetensors file. */
#include "kernels/weights.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const prefixes[] = {"", "first_stage_model.", "vae."};

int vs_weights_adopt(struct vs_weights *w, struct vs_st_file *file, struct vs_err *err)
{
    memset(w, 0, sizeof *w);
    w->file = *file;
    memset(file, 0, sizeof *file);
    w->prefix = "";
    if (!(w->used = calloc(w->file.count + 1, 1))) {
        vs_weights_close(w);
        return vs_err_set(err, "out of host memory reading tensors");
    }
    return 0;
}

int vs_weights_open(struct vs_weights *w, const char *path, struct vs_err *err)
{
    struct vs_st_file f;
    memset(w, 0, sizeof *w);
    if (vs_st_open(&f, path, err))
        return -1;
    return vs_weights_adopt(w, &f, err);
}

void vs_weights_close(struct vs_weights *w)
{
    vs_st_close(&w->file);
    free(w->used);
    memset(w, 0, sizeof *w);
}

static const struct vs_st_tensor *find_prefixed(const struct vs_weights *w, const char *prefix,
                                                const char *name)
{
    char key[512];
    snprintf(key, sizeof key, "%s%s", prefix, name);
    return vs_st_find(&w->file, key);
}

int vs_weights_detect_prefix(struct vs_weights *w, const char *const *markers, size_t nmarkers,
                             struct vs_err *err)
{
    for (size_t p = 0; p < sizeof prefixes / sizeof prefixes[0]; p++)
        for (size_t m = 0; m < nmarkers; m++)
            if (find_prefixed(w, prefixes[p], markers[m])) {
                w->prefix = prefixes[p];
                return 0;
            }
    char list[256] = "";
    for (size_t m = 0; m < nmarkers; m++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s'%s'", m ? " or " : "",
                 markers[m]);
    return vs_err_set(err,
                      "%s: no decoder found: missing tensor %s (looked without prefix and under "
                      "'first_stage_model.' and 'vae.')",
                      w->file.path, list);
}

const struct vs_st_tensor *vs_weights_peek(const struct vs_weights *w, const char *name)
{
    return find_prefixed(w, w->prefix, name);
}

static int shape_matches(const struct vs_st_tensor *t, int ndim, const int64_t *shape)
{
    if (t->ndim < ndim)
        return 0;
    for (int i = 0; i < ndim; i++)
        if (shape[i] >= 0 && t->shape[i] != shape[i])
            return 0;
    for (int i = ndim; i < t->ndim; i++)
        if (t->shape[i] != 1)
            return 0;
    return 1;
}

float *vs_weights_get(struct vs_weights *w, const char *name, int ndim, const int64_t *shape,
                      struct vs_err *err)
{
    const struct vs_st_tensor *t = vs_weights_peek(w, name);
    char want[128], got[128];
    if (!t) {
        vs_err_set(err, "%s: missing tensor '%s%s' (expected shape %s)", w->file.path,
                   w->prefix, name, vs_shape_str(shape, ndim, want, sizeof want));
        return NULL;
    }
    if (!shape_matches(t, ndim, shape)) {
        vs_err_set(err, "%s: tensor '%s' has shape %s, expected %s", w->file.path, t->name,
                   vs_shape_str(t->shape, t->ndim, got, sizeof got),
                   vs_shape_str(shape, ndim, want, sizeof want));
        return NULL;
    }
    float *out = malloc((t->numel ? t->numel : 1) * sizeof *out);
    if (!out) {
        vs_err_set(err, "%s: out of memory reading tensor '%s'", w->file.path, t->name);
        return NULL;
    }
    if (vs_st_read_f32(&w->file, t, out, err)) {
        free(out);
        return NULL;
    }
    w->used[t - w->file.tensors] = 1;
    return out;
}

size_t vs_weights_unused(const struct vs_weights *w, const char *scope, const char **names,
                         size_t max)
{
    size_t plen = strlen(w->prefix), slen = strlen(scope), n = 0;
    for (size_t i = 0; i < w->file.count; i++) {
        const char *key = w->file.tensors[i].name;
        if (w->used[i] || strncmp(key, w->prefix, plen) || strncmp(key + plen, scope, slen))
            continue;
        if (n < max)
            names[n] = key;
        n++;
    }
    return n;
}
