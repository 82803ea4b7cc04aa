/* safetensors layout: u64 little-endian header length N, N bytes of JSON, then the data area.
 * Each tensor entry is {"dtype", "shape", "data_offsets": [begin, end]} relative to the data area.
 * The mapping stays valid until vs_st_close; tensors are only ever read through it. */
#include "kernels/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernels/checked.h"

#define MAX_HEADER (100u << 20)

const char *vs_shape_str(const int64_t *shape, int ndim, char *buf, size_t len)
{
    size_t at = 0;
    at += (size_t)snprintf(buf + at, len - at, "[");
    for (int i = 0; i < ndim && at < len; i++)
        at += (size_t)snprintf(buf + at, len - at, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (at < len)
        snprintf(buf + at, len - at, "]");
    return buf;
}

static enum vs_dtype dtype_of(const char *s, size_t *elsize)
{
    static const struct { const char *name; enum vs_dtype dt; size_t size; } known[] = {
        {"F32", VS_DT_F32, 4},  {"F16", VS_DT_F16, 2},   {"BF16", VS_DT_BF16, 2},
        {"F64", VS_DT_OTHER, 8}, {"I64", VS_DT_OTHER, 8}, {"I32", VS_DT_OTHER, 4},
        {"I16", VS_DT_OTHER, 2}, {"I8", VS_DT_OTHER, 1},  {"U8", VS_DT_OTHER, 1},
        {"BOOL", VS_DT_OTHER, 1}, {"F8_E4M3", VS_DT_OTHER, 1}, {"F8_E5M2", VS_DT_OTHER, 1},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (!strcmp(s, known[i].name)) {
            *elsize = known[i].size;
            return known[i].dt;
        }
    *elsize = 0;
    return VS_DT_OTHER;
}

static int cmp_offset(const void *a, const void *b)
{
    const struct vs_st_tensor *x = a, *y = b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int parse_tensor(struct vs_st_file *f, const char *name, json_t *v, struct vs_st_tensor *t,
                        struct vs_err *err)
{
    json_t *dt = json_object_get(v, "dtype"), *shape = json_object_get(v, "shape");
    json_t *offs = json_object_get(v, "data_offsets");
    if (!json_is_string(dt) || !json_is_array(shape) || !json_is_array(offs) ||
        json_array_size(offs) != 2)
        return vs_err_set(err, "%s: bad header: tensor '%s' lacks dtype, shape or data_offsets",
                          f->path, name);
    t->name = strdup(name);
    snprintf(t->dtype_name, sizeof t->dtype_name, "%s", json_string_value(dt));
    size_t elsize;
    t->dtype = dtype_of(t->dtype_name, &elsize);
    if (!elsize)
        return vs_err_set(err, "%s: bad header: tensor '%s' has unknown dtype '%s'", f->path,
                          name, t->dtype_name);
    t->ndim = (int)json_array_size(shape);
    if (t->ndim > VS_ST_MAX_DIMS)
        return vs_err_set(err, "%s: tensor '%s' has %d dimensions (at most %d supported)",
                          f->path, name, t->ndim, VS_ST_MAX_DIMS);
    for (int i = 0; i < t->ndim; i++) {
        json_t *d = json_array_get(shape, (size_t)i);
        if (!json_is_integer(d) || json_integer_value(d) < 0)
            return vs_err_set(err, "%s: bad header: tensor '%s' has a bad shape", f->path, name);
        t->shape[i] = json_integer_value(d);
    }
    char shape_text[160];
    vs_shape_str(t->shape, t->ndim, shape_text, sizeof shape_text);
    size_t need;
    if (!vs_shape_numel(t->shape, t->ndim, &t->numel) || !vs_mul_size(t->numel, elsize, &need))
        return vs_err_set(err, "%s: bad header: tensor '%s' has shape %s, too large (each "
                          "dimension at most %d, %s bytes in all at most %zu)", f->path, name,
                          shape_text, VS_DIM_MAX, t->dtype_name, SIZE_MAX);
    json_t *b = json_array_get(offs, 0), *e = json_array_get(offs, 1);
    if (!json_is_integer(b) || !json_is_integer(e) || json_integer_value(b) < 0 ||
        json_integer_value(e) < json_integer_value(b))
        return vs_err_set(err, "%s: bad header: tensor '%s' has bad data_offsets", f->path, name);
    t->offset = (size_t)json_integer_value(b);
    t->nbytes = (size_t)(json_integer_value(e) - json_integer_value(b));
    if (t->nbytes != need)
        return vs_err_set(err,
                          "%s: bad header: tensor '%s' spans %zu bytes but %s %s needs %zu",
                          f->path, name, t->nbytes, t->dtype_name, shape_text, need);
    /* end = the JSON's end offset, an int64, so the sum cannot wrap */
    if (t->offset + t->nbytes > f->data_len)
        return vs_err_set(err,
                          "%s: truncated file: tensor '%s' ends at byte %zu of the data area, "
                          "which holds only %zu bytes",
                          f->path, name, t->offset + t->nbytes, f->data_len);
    return 0;
}

static int parse_header(struct vs_st_file *f, const char *text, size_t len, struct vs_err *err)
{
    json_error_t je;
    json_t *root = json_loadb(text, len, 0, &je);
    if (!root)
        return vs_err_set(err, "%s: bad header: JSON error at byte %d: %s", f->path,
                          je.position, je.text);
    int rc = 0;
    if (!json_is_object(root)) {
        rc = vs_err_set(err, "%s: bad header: not a JSON object", f->path);
        goto out;
    }
    size_t n = json_object_size(root);
    f->tensors = calloc(n + 1, sizeof *f->tensors);
    f->meta_keys = calloc(n ? n : 1, sizeof *f->meta_keys);
    f->meta_vals = calloc(n ? n : 1, sizeof *f->meta_vals);
    if (!f->tensors || !f->meta_keys || !f->meta_vals) {
        rc = vs_err_set(err, "%s: out of memory reading a header of %zu entries", f->path, n);
        goto out;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (!strcmp(key, "__metadata__")) {
            const char *mk;
            json_t *mv;
            size_t mn = json_object_size(v);
            free(f->meta_keys);
            free(f->meta_vals);
            f->meta_keys = calloc(mn ? mn : 1, sizeof *f->meta_keys);
            f->meta_vals = calloc(mn ? mn : 1, sizeof *f->meta_vals);
            if (!f->meta_keys || !f->meta_vals) {
                rc = vs_err_set(err, "%s: out of memory reading __metadata__", f->path);
                goto out;
            }
            json_object_foreach(v, mk, mv) {
                if (!json_is_string(mv))
                    continue;
                f->meta_keys[f->meta_count] = strdup(mk);
                f->meta_vals[f->meta_count++] = strdup(json_string_value(mv));
            }
            continue;
        }
        if (!json_is_object(v)) {
            rc = vs_err_set(err, "%s: bad header: entry '%s' is not an object", f->path, key);
            goto out;
        }
        if ((rc = parse_tensor(f, key, v, &f->tensors[f->count], err)))
            goto out;
        f->count++;
    }
    qsort(f->tensors, f->count, sizeof *f->tensors, cmp_offset);
out:
    json_decref(root);
    return rc;
}

int vs_st_open(struct vs_st_file *f, const char *path, struct vs_err *err)
{
    memset(f, 0, sizeof *f);
    f->path = strdup(path);
    /* O_NONBLOCK: a FIFO is refused below instead of waiting for a writer. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        vs_err_set(err, "%s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        vs_err_set(err, "%s: not a regular file", path);
        goto fail;
    }
    if (st.st_size < 8) {
        close(fd);
        vs_err_set(err, "%s: truncated file: %lld bytes, not even the 8-byte header length",
                   path, (long long)st.st_size);
        goto fail;
    }
    f->map_len = (size_t)st.st_size;
    f->map = mmap(NULL, f->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (f->map == MAP_FAILED) {
        f->map = NULL;
        vs_err_set(err, "%s: cannot map: %s", path, strerror(errno));
        goto fail;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | f->map[i];
    if (hlen > MAX_HEADER || hlen > f->map_len - 8) {
        vs_err_set(err,
                   "%s: %s: header length %llu but the file holds %zu bytes after the length",
                   path, hlen > MAX_HEADER ? "bad header" : "truncated file",
                   (unsigned long long)hlen, f->map_len - 8);
        goto fail;
    }
    f->data = f->map + 8 + hlen;
    f->data_len = f->map_len - 8 - hlen;
    if (parse_header(f, (const char *)f->map + 8, hlen, err))
        goto fail;
    return 0;
fail:
    vs_st_close(f);
    return -1;
}

void vs_st_close(struct vs_st_file *f)
{
    for (size_t i = 0; i < f->count; i++)
        free(f->tensors[i].name);
    /* A tensor that failed to parse may hold a name beyond count. */
    if (f->tensors)
        free(f->tensors[f->count].name);
    free(f->tensors);
    for (size_t i = 0; i < f->meta_count; i++) {
        free(f->meta_keys[i]);
        free(f->meta_vals[i]);
    }
    free(f->meta_keys);
    free(f->meta_vals);
    if (f->map)
        munmap(f->map, f->map_len);
    free(f->path);
    memset(f, 0, sizeof *f);
}

const struct vs_st_tensor *vs_st_find(const struct vs_st_file *f, const char *name)
{
    for (size_t i = 0; i < f->count; i++)
        if (!strcmp(f->tensors[i].name, name))
            return &f->tensors[i];
    return NULL;
}

const char *vs_st_meta(const struct vs_st_file *f, const char *key)
{
    for (size_t i = 0; i < f->meta_count; i++)
        if (!strcmp(f->meta_keys[i], key))
            return f->meta_vals[i];
    return NULL;
}

/* Subnormals and inf/NaN included. */
float vs_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f)
        bits = sign | 0x7f800000u | (man << 13);
    else if (exp)
        bits = sign | ((exp + 112) << 23) | (man << 13);
    else if (!man)
        bits = sign;
    else {
        int e = -1;
        do {
            man <<= 1;
            e++;
        } while (!(man & 0x400));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ff) << 13);
    }
    float out;
    memcpy(&out, &bits, 4);
    return out;
}

int vs_st_read_f32(const struct vs_st_file *f, const struct vs_st_tensor *t, float *dst,
                   struct vs_err *err)
{
    const unsigned char *src = t->ptr ? t->ptr : f->data + t->offset;
    switch (t->dtype) {
    case VS_DT_F32:
        memcpy(dst, src, t->numel * 4);
        return 0;
    case VS_DT_F16:
        for (size_t i = 0; i < t->numel; i++)
            dst[i] = vs_f16_to_f32((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
        return 0;
    case VS_DT_BF16:
        for (size_t i = 0; i < t->numel; i++) {
            uint32_t bits = (uint32_t)(src[2 * i] | src[2 * i + 1] << 8) << 16;
            memcpy(&dst[i], &bits, 4);
        }
        return 0;
    default:
        return vs_err_set(err, "%s: tensor '%s' has dtype %s; only F32, F16 and BF16 are supported",
                          f->path, t->name, t->dtype_name);
    }
}
