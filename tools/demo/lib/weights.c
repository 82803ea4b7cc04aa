/* Model weights: loading them with checksummed sparse contents, reading them as a forward pass
 * does, and verifying them at the end (see demo.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/demo/lib/internal.h"
#include "tools/demo/lib/stripes.h"

/* Writes a tensor's stripes from the host, as a checkpoint load does, and returns their
 * checksum. */
static uint64_t vs_demo_tensor_write(struct vs_demo *d, const struct vs_demo_tensor *t)
{
    size_t len = vs_demo_stripe_len(t->bytes), n = vs_demo_stripe_count(t->bytes);
    unsigned char *host = vs_demo_staging(d, n * len);
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        vs_demo_stripe_fill(t->seed, i, host + i * len, len);
        sum = vs_demo_hash(sum, host + i * len, len);
        CUdeviceptr at = t->ptr + vs_demo_stripe_offset(t->seed, t->bytes, i);
        vs_demo_check(d, d->cu.memcpy_htod_async(at, host + i * len, len, d->stream),
                      "cuMemcpyHtoDAsync", t->name, len);
    }
    /* The staging buffer is reused: the copies must have read it. */
    vs_demo_check(d, d->cu.stream_synchronize(d->stream), "cuStreamSynchronize", t->name, 0);
    return sum;
}

/* Reads a tensor's stripes back and returns their checksum. */
static uint64_t vs_demo_tensor_read(struct vs_demo *d, const struct vs_demo_tensor *t)
{
    size_t len = vs_demo_stripe_len(t->bytes), n = vs_demo_stripe_count(t->bytes);
    unsigned char *host = vs_demo_staging(d, n * len);
    for (size_t i = 0; i < n; i++) {
        CUdeviceptr at = t->ptr + vs_demo_stripe_offset(t->seed, t->bytes, i);
        vs_demo_check(d, d->cu.memcpy_dtoh_async(host + i * len, at, len, d->stream),
                      "cuMemcpyDtoHAsync", t->name, len);
    }
    vs_demo_check(d, d->cu.stream_synchronize(d->stream), "cuStreamSynchronize", t->name, 0);
    return vs_demo_hash(0, host, n * len);
}

/* --corrupt: inverts the first byte of the tensor's first stripe, the damage a faulty move out
 * of VRAM and back would do; the final verification must report it. */
static void vs_demo_tensor_damage(struct vs_demo *d, const struct vs_demo_tensor *t)
{
    unsigned char *byte = vs_demo_staging(d, vs_demo_stripe_len(t->bytes));
    vs_demo_stripe_fill(t->seed, 0, byte, vs_demo_stripe_len(t->bytes));
    byte[0] = (unsigned char)~byte[0];
    vs_demo_check(d, d->cu.memcpy_htod_async(t->ptr + vs_demo_stripe_offset(t->seed, t->bytes, 0),
                                             byte, 1, d->stream),
                  "cuMemcpyHtoDAsync", t->name, 1);
    vs_demo_check(d, d->cu.stream_synchronize(d->stream), "cuStreamSynchronize", t->name, 0);
}

void vs_demo_weight_name(const struct vs_demo_model_spec *spec,
                         const struct vs_demo_tensor_spec *ts, unsigned k, char *buf, size_t len)
{
    if (ts->count > 1)
        snprintf(buf, len, "%s.%s.%u", spec->name, ts->name, k);
    else
        snprintf(buf, len, "%s.%s", spec->name, ts->name);
}

bool vs_demo_weight_each(const struct vs_demo_scenario *s,
                         bool (*fn)(const char *name, void *ctx), void *ctx)
{
    char name[VS_DEMO_NAME_MAX];
    for (size_t m = 0; s->models && s->models[m]; m++)
        for (size_t i = 0; i < s->models[m]->n_tensors; i++) {
            const struct vs_demo_tensor_spec *ts = &s->models[m]->tensors[i];
            for (unsigned k = 0; k < (ts->count > 1 ? ts->count : 1); k++) {
                vs_demo_weight_name(s->models[m], ts, k, name, sizeof name);
                if (fn(name, ctx))
                    return true;
            }
        }
    return false;
}

struct vs_demo_model *vs_demo_model_load(struct vs_demo *d, const struct vs_demo_model_spec *spec)
{
    size_t n = 0;
    for (size_t i = 0; i < spec->n_tensors; i++)
        n += spec->tensors[i].count > 1 ? spec->tensors[i].count : 1;
    struct vs_demo_model *m = calloc(1, sizeof *m);
    if (!m || !(m->tensors = calloc(n, sizeof *m->tensors)) || d->n_models == VS_DEMO_MAX_MODELS) {
        fprintf(stderr, "%s: cannot hold model %s\n", d->s->name, spec->name);
        exit(2);
    }
    m->name = spec->name;
    d->models[d->n_models++] = m;
    for (size_t i = 0; i < spec->n_tensors; i++) {
        const struct vs_demo_tensor_spec *ts = &spec->tensors[i];
        for (unsigned k = 0; k < (ts->count > 1 ? ts->count : 1); k++) {
            struct vs_demo_tensor *t = &m->tensors[m->n_tensors];
            vs_demo_weight_name(spec, ts, k, t->name, sizeof t->name);
            t->bytes = vs_demo_scaled(d, ts->bytes);
            t->seed = vs_demo_seed(t->name);
            t->ptr = vs_demo_alloc(d, t->name, t->bytes);
            m->n_tensors++; /* allocated: verified from now on */
            t->checksum = vs_demo_tensor_write(d, t);
            d->n_tensors++;
            d->weight_bytes += t->bytes;
            if (d->corrupt && !strcmp(d->corrupt, t->name))
                vs_demo_tensor_damage(d, t);
        }
    }
    return m;
}

void vs_demo_model_apply(struct vs_demo *d, const struct vs_demo_model *m, struct vs_demo_buf *out,
                         unsigned step)
{
    size_t slots = out->bytes / VS_DEMO_STRIPE;
    for (size_t i = 0; i < m->n_tensors; i++) {
        const struct vs_demo_tensor *t = &m->tensors[i];
        size_t len = vs_demo_stripe_len(t->bytes), n = vs_demo_stripe_count(t->bytes);
        if (len > out->bytes)
            continue;
        CUdeviceptr src = t->ptr + vs_demo_stripe_offset(t->seed, t->bytes, (step + i) % n);
        CUdeviceptr dst =
            out->ptr + (slots ? (i + (size_t)step * m->n_tensors) % slots : 0) * VS_DEMO_STRIPE;
        vs_demo_check(d, d->cu.memcpy_dtod_async(dst, src, len, d->stream), "cuMemcpyDtoDAsync",
                      t->name, len);
    }
}

size_t vs_demo_models_verify(struct vs_demo *d, const char **bad, size_t max)
{
    size_t n_bad = 0;
    for (size_t k = 0; k < d->n_models; k++)
        for (size_t i = 0; i < d->models[k]->n_tensors; i++) {
            const struct vs_demo_tensor *t = &d->models[k]->tensors[i];
            if (vs_demo_tensor_read(d, t) != t->checksum && n_bad++ < max)
                bad[n_bad - 1] = t->name;
        }
    return n_bad;
}
