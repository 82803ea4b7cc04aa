/* PyTorch memory snapshot import (see torch_import.h). */
#include "tools/trace/torch_import.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uthash.h>

#include <jansson.h>

#include "tools/trace/pickle.h"
#include "tools/trace/progress.h"

enum vs_kind { VS_T_ALLOC, VS_T_FREE, VS_T_OOM, VS_T_SKIP };

struct vs_entry {
    enum vs_kind kind;
    int dev;
    size_t order;            /* position across all devices, device by device */
    uint64_t t_ns, addr, size, stream;
    const struct vs_pk *frames;
};

struct vs_live {
    uint64_t key[2];         /* device, address */
    UT_hash_handle hh;
};

struct vs_site {
    char *key;               /* the frames, one per line */
    unsigned id;
    UT_hash_handle hh;
};

struct vs_conv {
    const char *name;
    FILE *out;
    char *err;
    size_t errlen;
    struct vs_entry *entries, *before;
    size_t n, n_before;
    struct vs_live *live;
    struct vs_site *sites;
    struct vs_torch_counts *counts;
    size_t budget;           /* items left to visit, see vs_spend */
};

/* Keys a dict of the snapshot (an entry, a segment, a block, a frame) may have. */
enum { VS_DICT_KEYS_MAX = 64, VS_FRAMES_SCANNED = 256 };

/* The visit budget: generous for real snapshots (whose shared frames each cost the input bytes
 * of a memo reference), linear in the input. */
enum { VS_BUDGET_PER_BYTE = 8, VS_BUDGET_BASE = 1 << 20 };

__attribute__((format(printf, 3, 4))) static int vs_tfail(struct vs_conv *c, const struct vs_pk *at,
                                                          const char *fmt, ...)
{
    int n = at ? snprintf(c->err, c->errlen, "%s: byte %zu: ", c->name, at->offset)
               : snprintf(c->err, c->errlen, "%s: ", c->name);
    if (n >= 0 && (size_t)n < c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Objects shared through the pickle memo can be visited many times; every visit is paid from a
 * budget of the input's size, so the work stays linear in it whatever the sharing. */
static int vs_spend(struct vs_conv *c, const struct vs_pk *at, size_t n)
{
    if (n > c->budget)
        return vs_tfail(c, at, "the snapshot reuses its objects (through the pickle memo) more "
                               "than its size allows");
    c->budget -= n;
    return 0;
}

/* A dict of at most VS_DICT_KEYS_MAX keys, so that looking keys up stays cheap. */
static int vs_small_dict(struct vs_conv *c, const struct vs_pk *d, const char *where)
{
    if (!d || d->type != VS_PK_DICT)
        return vs_tfail(c, d, "%s is a %s, not a dict", where,
                        d ? vs_pk_type_name(d->type) : "nothing");
    if (d->u.seq.n / 2 > VS_DICT_KEYS_MAX)
        return vs_tfail(c, d, "%s has %zu keys (at most %d)", where, d->u.seq.n / 2,
                        VS_DICT_KEYS_MAX);
    return 0;
}

static bool vs_is(const struct vs_pk *o, enum vs_pk_type t)
{
    return o && o->type == t;
}

static bool vs_str_is(const struct vs_pk *o, const char *s)
{
    return vs_is(o, VS_PK_STR) && o->u.str.len == strlen(s) && !memcmp(o->u.str.s, s, o->u.str.len);
}

/* An int field >= 0; absent is allowed when `optional`. */
static int vs_field(struct vs_conv *c, const struct vs_pk *d, const char *where, const char *key,
                    bool optional, uint64_t *out)
{
    const struct vs_pk *v = vs_pk_get(d, key);
    if (!v && optional)
        return 0;
    if (!vs_is(v, VS_PK_INT) || v->u.i < 0)
        return vs_tfail(c, d, "%s: '%s' is %s, not a non-negative int", where, key,
                        v ? vs_pk_type_name(v->type) : "missing");
    *out = (uint64_t)v->u.i;
    return 0;
}

static const char *const vs_skipped_actions[] = {"free_requested", "segment_alloc", "segment_free",
                                                 "segment_map",    "segment_unmap", "snapshot"};

static int vs_read_entry(struct vs_conv *c, const struct vs_pk *e, int dev, size_t i,
                         struct vs_entry *out, bool *timed)
{
    char where[64];
    snprintf(where, sizeof where, "device_traces[%d][%zu]", dev, i);
    if (vs_small_dict(c, e, where))
        return -1;
    const struct vs_pk *action = vs_pk_get(e, "action");
    if (!vs_is(action, VS_PK_STR))
        return vs_tfail(c, e, "%s has no 'action' string", where);
    *out = (struct vs_entry){.kind = VS_T_SKIP, .dev = dev, .frames = vs_pk_get(e, "frames")};
    uint64_t t_us = UINT64_MAX;
    if (vs_field(c, e, where, "time_us", true, &t_us))
        return -1;
    if (t_us == UINT64_MAX)
        *timed = false;
    else if (t_us > UINT64_MAX / 1000)
        return vs_tfail(c, e, "%s: 'time_us' %llu is out of range", where,
                        (unsigned long long)t_us);
    else
        out->t_ns = t_us * 1000;
    if (vs_str_is(action, "alloc"))
        out->kind = VS_T_ALLOC;
    else if (vs_str_is(action, "free_completed") || vs_str_is(action, "free"))
        out->kind = VS_T_FREE;
    else if (vs_str_is(action, "oom"))
        out->kind = VS_T_OOM;
    else {
        for (size_t k = 0; k < sizeof vs_skipped_actions / sizeof *vs_skipped_actions; k++)
            if (vs_str_is(action, vs_skipped_actions[k]))
                return 0;
        return vs_tfail(c, e, "%s: unknown action '%.*s' (expected alloc, free_requested, "
                              "free_completed, segment_alloc, segment_free, segment_map, "
                              "segment_unmap, snapshot or oom)",
                        where, (int)(action->u.str.len > 64 ? 64 : action->u.str.len),
                        action->u.str.s);
    }
    if (vs_field(c, e, where, "addr", out->kind == VS_T_OOM, &out->addr) ||
        vs_field(c, e, where, "size", false, &out->size) ||
        vs_field(c, e, where, "stream", true, &out->stream))
        return -1;
    if (out->frames && !vs_is(out->frames, VS_PK_LIST))
        return vs_tfail(c, e, "%s: 'frames' is a %s, not a list", where,
                        vs_pk_type_name(out->frames->type));
    return 0;
}

static int vs_entry_cmp(const void *x, const void *y)
{
    const struct vs_entry *a = x, *b = y;
    if (a->t_ns != b->t_ns)
        return a->t_ns < b->t_ns ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

/* Reads every device's entries, in time order across devices when all have times. */
static int vs_read_traces(struct vs_conv *c, const struct vs_pk *traces, bool *timed_out)
{
    size_t total = 0;
    for (size_t d = 0; d < traces->u.seq.n; d++) {
        const struct vs_pk *dt = traces->u.seq.items[d];
        if (!vs_is(dt, VS_PK_LIST))
            return vs_tfail(c, dt, "device_traces[%zu] is a %s, not a list", d,
                            vs_pk_type_name(dt->type));
        if (vs_spend(c, dt, dt->u.seq.n))
            return -1;
        total += dt->u.seq.n;
    }
    if (traces->u.seq.n > 1024)
        return vs_tfail(c, traces, "device_traces has %zu devices", traces->u.seq.n);
    c->entries = calloc(total ? total : 1, sizeof *c->entries);
    if (!c->entries)
        return vs_tfail(c, NULL, "out of memory");
    bool timed = true;
    for (size_t d = 0; d < traces->u.seq.n; d++) {
        const struct vs_pk *dt = traces->u.seq.items[d];
        for (size_t i = 0; i < dt->u.seq.n; i++) {
            if (vs_read_entry(c, dt->u.seq.items[i], (int)d, i, &c->entries[c->n], &timed))
                return -1;
            c->entries[c->n].order = c->n;
            c->n++;
        }
    }
    for (size_t i = 0; !timed && i < c->n; i++)
        c->entries[i].t_ns = (uint64_t)i * 1000;
    if (timed)
        qsort(c->entries, c->n, sizeof *c->entries, vs_entry_cmp);
    *timed_out = timed && c->n;
    return 0;
}

static struct vs_live *vs_live_find(struct vs_conv *c, int dev, uint64_t addr)
{
    uint64_t key[2] = {(uint64_t)dev, addr};
    struct vs_live *l = NULL;
    HASH_FIND(hh, c->live, key, sizeof key, l);
    return l;
}

static int vs_live_set(struct vs_conv *c, int dev, uint64_t addr, bool live)
{
    struct vs_live *l = vs_live_find(c, dev, addr);
    if (!live && l) {
        HASH_DEL(c->live, l);
        free(l);
    } else if (live && !l) {
        if (!(l = calloc(1, sizeof *l)))
            return vs_tfail(c, NULL, "out of memory");
        l->key[0] = (uint64_t)dev;
        l->key[1] = addr;
        HASH_ADD(hh, c->live, key, sizeof l->key, l);
    }
    return 0;
}

static int vs_add_before(struct vs_conv *c, const struct vs_entry *e)
{
    struct vs_entry *grown = realloc(c->before, (c->n_before + 1) * sizeof *grown);
    if (!grown)
        return vs_tfail(c, NULL, "out of memory");
    c->before = grown;
    c->before[c->n_before] = *e;
    c->before[c->n_before++].kind = VS_T_ALLOC;
    return 0;
}

/* Blocks live before the trace's window: freed without an alloc in it, or allocated in
 * `segments` (the state at the snapshot) without the trace having allocated them. */
static int vs_find_before(struct vs_conv *c, const struct vs_pk *segments)
{
    for (size_t i = 0; i < c->n; i++) {
        const struct vs_entry *e = &c->entries[i];
        bool live = vs_live_find(c, e->dev, e->addr) != NULL;
        if (e->kind == VS_T_ALLOC && live)
            return vs_tfail(c, NULL, "device %d: address 0x%" PRIx64 " is allocated twice "
                                     "without a free between", e->dev, e->addr);
        if (e->kind == VS_T_FREE && !live && vs_add_before(c, e))
            return -1;
        if ((e->kind == VS_T_ALLOC || e->kind == VS_T_FREE) &&
            vs_live_set(c, e->dev, e->addr, e->kind == VS_T_ALLOC))
            return -1;
    }
    for (size_t s = 0; s < segments->u.seq.n; s++) {
        const struct vs_pk *seg = segments->u.seq.items[s], *blocks = vs_pk_get(seg, "blocks");
        char where[64];
        snprintf(where, sizeof where, "segments[%zu]", s);
        uint64_t dev = 0;
        if (vs_small_dict(c, seg, where))
            return -1;
        if (!vs_is(blocks, VS_PK_LIST))
            return vs_tfail(c, seg, "%s has no 'blocks' list", where);
        if (vs_spend(c, blocks, blocks->u.seq.n))
            return -1;
        if (vs_field(c, seg, where, "device", true, &dev) || vs_field(c, seg, where, "stream", true,
                                                                      &(uint64_t){0}))
            return -1;
        if (dev > 1024)
            return vs_tfail(c, seg, "%s: 'device' %llu is not a device ordinal", where,
                            (unsigned long long)dev);
        for (size_t b = 0; b < blocks->u.seq.n; b++) {
            const struct vs_pk *blk = blocks->u.seq.items[b];
            snprintf(where, sizeof where, "segments[%zu].blocks[%zu]", s, b);
            if (vs_small_dict(c, blk, where))
                return -1;
            struct vs_entry e = {.dev = (int)dev, .frames = vs_pk_get(blk, "frames")};
            if (!vs_str_is(vs_pk_get(blk, "state"), "active_allocated"))
                continue;
            if (vs_field(c, blk, where, "address", false, &e.addr) ||
                vs_field(c, blk, where, "size", false, &e.size))
                return -1;
            if (e.frames && !vs_is(e.frames, VS_PK_LIST))
                e.frames = NULL;
            if (!vs_live_find(c, e.dev, e.addr) && vs_add_before(c, &e))
                return -1;
        }
    }
    return 0;
}

/* The site id of frames, writing its line the first time; 0 when no Python frame. Returns -1
 * when the budget is spent. */
static int vs_site(struct vs_conv *c, const struct vs_pk *frames, unsigned *out)
{
    *out = 0;
    if (!frames)
        return 0;
    size_t scan = frames->u.seq.n < VS_FRAMES_SCANNED ? frames->u.seq.n : VS_FRAMES_SCANNED;
    if (vs_spend(c, frames, scan))
        return -1;
    json_t *list = json_array();
    char *key = NULL;
    size_t keylen = 0;
    FILE *k = open_memstream(&key, &keylen);
    for (size_t i = 0; k && i < scan && json_array_size(list) < 64; i++) {
        const struct vs_pk *f = frames->u.seq.items[i];
        if (!vs_is(f, VS_PK_DICT) || f->u.seq.n / 2 > VS_DICT_KEYS_MAX)
            continue;
        const struct vs_pk *file = vs_pk_get(f, "filename"),
                           *name = vs_pk_get(f, "name"), *line = vs_pk_get(f, "line");
        if (!vs_is(file, VS_PK_STR) || file->u.str.len < 3 ||
            memcmp(file->u.str.s + file->u.str.len - 3, ".py", 3))
            continue;
        char text[1024];
        snprintf(text, sizeof text, "py:%.*s:%lld:%.*s",
                 (int)(file->u.str.len > 700 ? 700 : file->u.str.len), file->u.str.s,
                 vs_is(line, VS_PK_INT) ? (long long)line->u.i : 0LL,
                 vs_is(name, VS_PK_STR) ? (int)(name->u.str.len > 200 ? 200 : name->u.str.len) : 1,
                 vs_is(name, VS_PK_STR) ? name->u.str.s : "?");
        json_array_append_new(list, json_stringn_nocheck(text, strlen(text)));
        fprintf(k, "%s\n", text);
    }
    if (k)
        fclose(k);
    unsigned id = 0;
    struct vs_site *s = NULL;
    if (key && json_array_size(list)) {
        HASH_FIND_STR(c->sites, key, s);
        if (s) {
            id = s->id;
        } else if ((s = calloc(1, sizeof *s))) {
            s->key = key;
            key = NULL;
            s->id = id = (unsigned)++c->counts->sites;
            HASH_ADD_KEYPTR(hh, c->sites, s->key, strlen(s->key), s);
            json_t *line = json_pack("{s:s, s:I, s:O}", "ev", "site", "site", (json_int_t)id,
                                     "frames", list);
            json_dumpf(line, c->out, JSON_COMPACT | JSON_ENSURE_ASCII);
            fputc('\n', c->out);
            json_decref(line);
        }
    }
    free(key);
    json_decref(list);
    *out = id;
    return 0;
}

static int vs_write_event(struct vs_conv *c, const struct vs_entry *e, uint64_t t)
{
    static const char *const ev[] = {[VS_T_ALLOC] = "alloc", [VS_T_FREE] = "free",
                                     [VS_T_OOM] = "oom"};
    static const char *const api[] = {[VS_T_ALLOC] = "cuMemAllocAsync",
                                      [VS_T_FREE] = "cuMemFreeAsync", [VS_T_OOM] = "torch"};
    unsigned site;
    if (vs_site(c, e->frames, &site))
        return -1;
    fprintf(c->out, "{\"t\":%" PRIu64 ",\"ev\":\"%s\",\"api\":\"%s\",\"ptr\":\"0x%" PRIx64
                    "\",\"size\":%" PRIu64 ",\"stream\":\"0x%" PRIx64 "\",\"dev\":%d,"
                    "\"stage\":\"\",\"tag\":\"\",\"site\":%u}\n",
            t, ev[e->kind], api[e->kind], e->kind == VS_T_OOM ? 0 : e->addr, e->size, e->stream,
            e->dev, site);
    return 0;
}

static int vs_convert(struct vs_conv *c, const struct vs_pk *root, uint64_t device_total,
                      bool progress)
{
    const struct vs_pk *segments = vs_pk_get(root, "segments"),
                       *traces = vs_pk_get(root, "device_traces");
    if (!vs_is(segments, VS_PK_LIST) || !vs_is(traces, VS_PK_LIST))
        return vs_tfail(c, root, "not a PyTorch memory snapshot: expected a dict with "
                                 "'segments' and 'device_traces' lists, found a %s%s (write one "
                                 "with torch.cuda.memory._dump_snapshot() after "
                                 "_record_memory_history())",
                        vs_pk_type_name(root->type),
                        vs_is(root, VS_PK_DICT) ? " without them" : "");
    bool timed = false;
    if (vs_read_traces(c, traces, &timed) || vs_find_before(c, segments))
        return -1;
    size_t devices = traces->u.seq.n ? traces->u.seq.n : 1;
    c->counts->devices = devices;
    fprintf(c->out, "{\"vramshim_trace\":1,\"pid\":0,\"clock\":\"%s\",\"source\":\"pytorch "
                    "memory snapshot\",\"devices\":[",
            timed ? "torch time_us" : "event order");
    for (size_t d = 0; d < devices; d++)
        fprintf(c->out, "%s{\"ordinal\":%zu,\"total\":%" PRIu64 "}", d ? "," : "", d,
                device_total);
    fprintf(c->out, "]}\n");
    uint64_t t0 = c->n ? c->entries[0].t_ns : 0;
    for (size_t i = 0; i < c->n_before; i++) {
        if (vs_write_event(c, &c->before[i], t0))
            return -1;
        c->counts->before++;
        c->counts->allocs++;
    }
    struct vs_trace_progress pr;
    vs_trace_progress_start(&pr, "vramshim trace import-torch:", c->n, progress);
    for (size_t i = 0; i < c->n; i++) {
        const struct vs_entry *e = &c->entries[i];
        if (e->kind == VS_T_SKIP) {
            c->counts->skipped++;
        } else {
            if (vs_write_event(c, e, e->t_ns))
                return -1;
            *(e->kind == VS_T_ALLOC  ? &c->counts->allocs
              : e->kind == VS_T_FREE ? &c->counts->frees
                                     : &c->counts->ooms) += 1;
        }
        vs_trace_progress_step(&pr, i + 1);
    }
    return ferror(c->out) ? vs_tfail(c, NULL, "could not write the trace") : 0;
}

int vs_torch_convert(const char *name, const unsigned char *buf, size_t len,
                     uint64_t device_total, bool progress, void *fp,
                     struct vs_torch_counts *counts, char *err, size_t errlen)
{
    struct vs_conv c = {.name = name, .out = fp, .err = err, .errlen = errlen, .counts = counts,
                        .budget = VS_BUDGET_PER_BYTE * len + VS_BUDGET_BASE};
    memset(counts, 0, sizeof *counts);
    struct vs_pickle p;
    char perr[512];
    if (vs_pickle_load(buf, len, &p, perr, sizeof perr)) {
        snprintf(err, errlen, "%s: %s", name, perr);
        return -1;
    }
    int rc = vs_convert(&c, p.root, device_total, progress);
    struct vs_live *l, *ltmp;
    HASH_ITER(hh, c.live, l, ltmp) {
        HASH_DEL(c.live, l);
        free(l);
    }
    struct vs_site *s, *stmp;
    HASH_ITER(hh, c.sites, s, stmp) {
        HASH_DEL(c.sites, s);
        free(s->key);
        free(s);
    }
    free(c.entries);
    free(c.before);
    vs_pickle_free(&p);
    return rc;
}

int vs_torch_import(const char *in, const char *out, uint64_t device_total, bool progress,
                    struct vs_torch_counts *counts, char *err, size_t errlen)
{
    FILE *f = fopen(in, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", in, strerror(errno));
        return -1;
    }
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0, got;
    do {
        if (len == cap) {
            cap = cap ? cap * 2 : 1 << 20;
            unsigned char *grown = realloc(buf, cap);
            if (!grown) {
                free(buf);
                fclose(f);
                snprintf(err, errlen, "%s: out of memory reading the file", in);
                return -1;
            }
            buf = grown;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
    } while (got);
    bool read_error = ferror(f);
    fclose(f);
    if (read_error) {
        free(buf);
        snprintf(err, errlen, "%s: read error", in);
        return -1;
    }
    FILE *o = fopen(out, "w");
    int rc = -1;
    if (!o)
        snprintf(err, errlen, "%s: %s", out, strerror(errno));
    else
        rc = vs_torch_convert(in, buf, len, device_total, progress, o, counts, err, errlen);
    if (o && fclose(o) && !rc) {
        snprintf(err, errlen, "%s: could not write the trace", out);
        rc = -1;
    }
    if (o && rc)
        unlink(out);
    free(buf);
    return rc;
}
