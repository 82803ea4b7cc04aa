/* Builds a vs_st_file whose tensors point at caller memory (vs_st_tensor.ptr); vs_st_close
 * frees it like a file's table (no mapping to undo). */
#include "kernels/st_memory.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int fill(struct vs_st_tensor *t, const struct vs_st_mem_tensor *m, const char *label,
                struct vs_err *err)
{
    static const char *const names[] = {"F32", "F16", "BF16"};
    if (!m->name || !*m->name)
        return vs_err_set(err, "%s: a tensor has no name", label);
    if (m->dtype != VS_DT_F32 && m->dtype != VS_DT_F16 && m->dtype != VS_DT_BF16)
        return vs_err_set(err, "%s: tensor '%s' has an unsupported dtype (F32, F16 or BF16)",
                          label, m->name);
    if (m->ndim < 0 || m->ndim > VS_ST_MAX_DIMS || (m->ndim && !m->shape))
        return vs_err_set(err, "%s: tensor '%s' has %d dimensions (0..%d)", label, m->name,
                          m->ndim, VS_ST_MAX_DIMS);
    if (!m->data)
        return vs_err_set(err, "%s: tensor '%s' has no data pointer", label, m->name);
    size_t numel = 1, elem = m->dtype == VS_DT_F32 ? 4 : 2;
    for (int d = 0; d < m->ndim; d++) {
        if (m->shape[d] < 0 || (m->shape[d] && numel > SIZE_MAX / elem / (uint64_t)m->shape[d]))
            return vs_err_set(err, "%s: tensor '%s' has an invalid extent %lld in dimension %d",
                              label, m->name, (long long)m->shape[d], d);
        numel *= (size_t)m->shape[d];
        t->shape[d] = m->shape[d];
    }
    if (!(t->name = strdup(m->name)))
        return vs_err_set(err, "out of host memory reading %s", label);
    t->dtype = m->dtype;
    strcpy(t->dtype_name, names[m->dtype]);
    t->ndim = m->ndim;
    t->numel = numel;
    t->nbytes = numel * elem;
    t->ptr = m->data;
    return 0;
}

int vs_st_from_memory(struct vs_st_file *f, const char *label, const struct vs_st_mem_tensor *ts,
                      size_t n, const char *config_json, struct vs_err *err)
{
    memset(f, 0, sizeof *f);
    if (!(f->path = strdup(label)) || !(f->tensors = calloc(n + 1, sizeof *f->tensors)))
        goto oom;
    for (size_t i = 0; i < n; i++) {
        if (vs_st_find(f, ts[i].name ? ts[i].name : "")) {
            vs_err_set(err, "%s: tensor '%s' is given twice", label, ts[i].name);
            goto fail;
        }
        if (fill(&f->tensors[i], &ts[i], label, err))
            goto fail;
        f->count++;
    }
    if (config_json) {
        f->meta_keys = malloc(sizeof *f->meta_keys);
        f->meta_vals = malloc(sizeof *f->meta_vals);
        if (!f->meta_keys || !f->meta_vals || !(f->meta_keys[0] = strdup("config")))
            goto oom;
        if (!(f->meta_vals[0] = strdup(config_json))) {
            free(f->meta_keys[0]);
            goto oom;
        }
        f->meta_count = 1;
    }
    return 0;
oom:
    vs_err_set(err, "out of host memory reading %s", label);
fail:
    vs_st_close(f);
    return -1;
}
