/* .npy: magic "\x93NUMPY", major version, header length (u16 for v1, u32 for v2/3), then a
 * Python dict literal with 'descr', 'fortran_order' and 'shape'; data follows in C order. */
#include "kernels/array_io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernels/checked.h"
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
    /* numel * sizeof(float) fits: the tensor's bytes (at least 2 per element) are in the file */
    if (!(a->data = malloc((t->numel ? t->numel : 1) * sizeof(float)))) {
        vs_err_set(err, "%s: out of memory reading tensor '%s'", path, t->name);
        goto out;
    }
    rc = vs_st_read_f32(&f, t, a->data, err);
out:
    vs_st_close(&f);
    return rc;
}

/* The value after `key` in the header dict: past the colon and blanks; NULL if no colon. */
static const char *dict_value(const char *key)
{
    const char *colon = strchr(key, ':');
    return colon ? colon + 1 + strspn(colon + 1, " ") : NULL;
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
    const char *order = dict_value(fo);
    if (!order)
        return vs_err_set(err, "%s: bad .npy header: 'fortran_order' has no value", path);
    if (strncmp(order, "False", 5))
        return vs_err_set(err, "%s: .npy data in Fortran order is not supported", path);
    const char *p = strchr(sh, '(');
    if (!p)
        return vs_err_set(err, "%s: bad .npy shape", path);
    a->ndim = 0;
    for (p++; *p && *p != ')';) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p) {
            p++;
            continue;
        }
        if (a->ndim == VS_ARRAY_MAX_DIMS || v < 0)
            return vs_err_set(err, "%s: bad .npy shape", path);
        if (v > VS_DIM_MAX)
            return vs_err_set(err, "%s: .npy dimension %d is %lld, too large (at most %d)", path,
                              a->ndim + 1, v, VS_DIM_MAX);
        a->shape[a->ndim++] = v;
        p = end;
    }
    if (!vs_shape_numel(a->shape, a->ndim, &a->numel))
        return vs_err_set(err, "%s: .npy shape %s is too large", path,
                          vs_shape_str(a->shape, a->ndim, (char[160]){0}, 160));
    return 0;
}

/* Every length read from the file is compared with the file's size before anything is
 * allocated for it. */
static int load_npy(const char *path, struct vs_array *a, struct vs_err *err)
{
    /* O_NONBLOCK: a FIFO is refused below instead of waiting for a writer; reads of a regular
     * file do not care. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    FILE *f = fd >= 0 ? fdopen(fd, "rb") : NULL;
    if (!f) {
        vs_err_set(err, "%s: cannot open: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    unsigned char pre[12];
    char *hdr = NULL, shape[160];
    int rc = -1, f2 = 0;
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        vs_err_set(err, "%s: not a regular file", path);
        goto out;
    }
    size_t fsize = (size_t)st.st_size;
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6)) {
        vs_err_set(err, "%s: not a .npy file (bad magic)", path);
        goto out;
    }
    size_t hlen = pre[8] | (size_t)pre[9] << 8, pre_len = 10;
    if (pre[6] >= 2) {
        if (fread(pre + 10, 1, 2, f) != 2) {
            vs_err_set(err, "%s: truncated .npy header", path);
            goto out;
        }
        hlen |= (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
        pre_len = 12;
    }
    if (fsize < pre_len || hlen > fsize - pre_len) {
        vs_err_set(err, "%s: truncated file: header length %zu but the file holds %zu bytes", path,
                   hlen, fsize);
        goto out;
    }
    if (!(hdr = calloc(hlen + 1, 1)) || fread(hdr, 1, hlen, f) != hlen) {
        vs_err_set(err, "%s: truncated .npy header", path);
        goto out;
    }
    if (parse_npy_header(path, hdr, a, &f2, err))
        goto out;
    size_t el = f2 ? 2 : 4, bytes, avail = fsize - pre_len - hlen;
    vs_shape_str(a->shape, a->ndim, shape, sizeof shape);
    if (!vs_mul_size(a->numel, el, &bytes)) {
        vs_err_set(err, "%s: .npy shape %s is too large", path, shape);
        goto out;
    }
    if (bytes > avail) {
        vs_err_set(err, "%s: truncated file: shape %s needs %zu bytes of data but the file holds "
                   "%zu after the header", path, shape, bytes, avail);
        goto out;
    }
    /* numel <= bytes / 2 <= the file's size, so numel * sizeof(float) fits */
    if (!(a->data = malloc((a->numel ? a->numel : 1) * sizeof(float)))) {
        vs_err_set(err, "%s: out of memory", path);
        goto out;
    }
    unsigned char *raw = f2 ? malloc(bytes + 1) : (unsigned char *)a->data;
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
