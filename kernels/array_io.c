/* .npy: magic "\x93NUMPY", major version, header length (u16 for v1, u32 for v2/3), then a
 * Python dict literal with 'descr', 'fortran_order' and 'shape'; data follows in C order. */
#include "kernels/array_io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/safetensors.h"

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

static int load_safetensors(const char *path, struct vs_array *a, struct vs_err *err)
{
    struct vs_st_file f;
    if (vs_st_open(&f, path, err))
        return -1;
    const struct vs_st_tensor *t = vs_st_find(&f, "latents");
    if (!t && f.count)
        t = &f.tensors[0];
    int rc = -1;
    if (!t) {
        vs_err_set(err, "%s: holds no tensor (expected 'latents')", path);
        goto out;
    }
    a->ndim = t->ndim;
    memcpy(a->shape, t->shape, sizeof t->shape);
    a->numel = t->numel;
    if (!(a->data = malloc((t->numel ? t->numel : 1) * sizeof(float)))) {
        vs_err_set(err, "%s: out of memory reading tensor '%s'", path, t->name);
        goto out;
    }
    rc = vs_st_read_f32(&f, t, a->data, err);
out:
    vs_st_close(&f);
    return rc;
}

static int parse_npy_header(const char *path, const char *hdr, struct vs_array *a, int *f2,
                            struct vs_err *err)
{
    const char *d = strstr(hdr, "'descr'"), *fo = strstr(hdr, "'fortran_order'");
    const char *sh = strstr(hdr, "'shape'");
    if (!d || !fo || !sh)
        return vs_err_set(err, "%s: bad .npy header (needs descr, fortran_order, shape)", path);
    const char *q = strchr(d + strlen("'descr'"), '\'');
    if (q && !strncmp(q, "'<f4'", 5))
        *f2 = 0;
    else if (q && !strncmp(q, "'<f2'", 5))
        *f2 = 1;
    else
        return vs_err_set(err, "%s: .npy dtype is not little-endian float32 or float16", path);
    if (strncmp(strchr(fo, ':') + 1 + strspn(strchr(fo, ':') + 1, " "), "False", 5))
        return vs_err_set(err, "%s: .npy data in Fortran order is not supported", path);
    const char *p = strchr(sh, '(');
    if (!p)
        return vs_err_set(err, "%s: bad .npy shape", path);
    a->ndim = 0;
    a->numel = 1;
    for (p++; *p && *p != ')';) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p) {
            p++;
            continue;
        }
        if (a->ndim == VS_ARRAY_MAX_DIMS || v < 0)
            return vs_err_set(err, "%s: bad .npy shape", path);
        a->shape[a->ndim++] = v;
        a->numel *= (size_t)v;
        p = end;
    }
    return 0;
}

static int load_npy(const char *path, struct vs_array *a, struct vs_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return vs_err_set(err, "%s: cannot open: %s", path, strerror(errno));
    unsigned char pre[12];
    char *hdr = NULL;
    int rc = -1, f2 = 0;
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6)) {
        vs_err_set(err, "%s: not a .npy file (bad magic)", path);
        goto out;
    }
    size_t hlen = pre[8] | (size_t)pre[9] << 8;
    if (pre[6] >= 2) {
        if (fread(pre + 10, 1, 2, f) != 2) {
            vs_err_set(err, "%s: truncated .npy header", path);
            goto out;
        }
        hlen |= (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    }
    if (!(hdr = calloc(hlen + 1, 1)) || fread(hdr, 1, hlen, f) != hlen) {
        vs_err_set(err, "%s: truncated .npy header", path);
        goto out;
    }
    if (parse_npy_header(path, hdr, a, &f2, err))
        goto out;
    size_t el = f2 ? 2 : 4;
    if (!(a->data = malloc((a->numel ? a->numel : 1) * sizeof(float)))) {
        vs_err_set(err, "%s: out of memory", path);
        goto out;
    }
    unsigned char *raw = f2 ? malloc(a->numel * 2 + 1) : (unsigned char *)a->data;
    if (!raw || fread(raw, el, a->numel, f) != a->numel) {
        vs_err_set(err, "%s: truncated file: .npy data shorter than its shape needs", path);
        if (f2)
            free(raw);
        goto out;
    }
    if (f2) {
        for (size_t i = 0; i < a->numel; i++)
            a->data[i] = vs_f16_to_f32((uint16_t)(raw[2 * i] | (unsigned)raw[2 * i + 1] << 8));
        free(raw);
    }
    rc = 0;
out:
    free(hdr);
    fclose(f);
    return rc;
}

int vs_array_load(const char *path, struct vs_array *a, struct vs_err *err)
{
    memset(a, 0, sizeof *a);
    int rc;
    if (ends_with(path, ".safetensors"))
        rc = load_safetensors(path, a, err);
    else if (ends_with(path, ".npy"))
        rc = load_npy(path, a, err);
    else
        return vs_err_set(err, "%s: unknown latent format (expected .safetensors or .npy)", path);
    if (rc)
        vs_array_free(a);
    return rc;
}

void vs_array_free(struct vs_array *a)
{
    free(a->data);
    memset(a, 0, sizeof *a);
}

int vs_npy_write(const char *path, const float *data, int ndim, const int64_t *shape,
                 struct vs_err *err)
{
    char dict[256];
    size_t n = 1;
    int at = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int i = 0; i < ndim; i++) {
        at += snprintf(dict + at, sizeof dict - (size_t)at, "%lld,%s", (long long)shape[i],
                       i + 1 < ndim ? " " : "");
        n *= (size_t)shape[i];
    }
    at += snprintf(dict + at, sizeof dict - (size_t)at, "), }");
    /* pad with spaces so data starts on a 64-byte boundary; header ends with '\n' */
    size_t total = (10 + (size_t)at + 1 + 63) / 64 * 64, hlen = total - 10;
    FILE *f = fopen(path, "wb");
    if (!f)
        return vs_err_set(err, "%s: cannot create: %s", path, strerror(errno));
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                             (unsigned char)(hlen & 0xff), (unsigned char)(hlen >> 8)};
    int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(dict, 1, (size_t)at, f) == (size_t)at;
    for (size_t i = (size_t)at; ok && i < hlen - 1; i++)
        ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF && fwrite(data, sizeof(float), n, f) == n;
    if (fclose(f) || !ok)
        return vs_err_set(err, "%s: write failed: %s", path, strerror(errno));
    return 0;
}
