/* Reader of vramshim JSON Lines traces (docs/tracing.md): a header object, then one event per line.
 * Only allocs and frees are kept; the other kinds are checked for a known "ev" and skipped
 * (the application's own cuMemCreate/cuMemMap memory is not replayed).
 * ptr and stream may be integers or hex strings ("0x7f..."); t and size are integers. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "tools/trace/tracefile.h"

static const char *const vs_other_events[] = {"demote", "promote", "stage",  "oom", "map",
                                              "unmap",  "create",  "release", "site"};

enum { VS_JSON_DEV_MAX = 1024 };

struct vs_json_line {
    struct vs_tracefile *trace;
    unsigned line;
    char *err;
    size_t errlen;
    uint64_t *reserved;    /* per device ordinal, its last "reserved" (n_reserved entries) */
    size_t n_reserved;
    uint64_t reserved_sum; /* of reserved[] */
};

#define vs_json_fail(l, ...)                                                                       \
    vs_tracefile_error((l)->trace, (l)->line, (l)->err, (l)->errlen, __VA_ARGS__)

enum { VS_KEY_REQUIRED = 1, VS_KEY_HEX = 2 };

/* Reads key as an unsigned 64-bit value. An absent or null optional key leaves *out alone. */
static int vs_json_u64(const struct vs_json_line *l, json_t *obj, const char *key, int flags,
                       uint64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (flags & VS_KEY_REQUIRED)
            return vs_json_fail(l, "missing key \"%s\"", key);
        return 0;
    }
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (uint64_t)json_integer_value(v);
        return 0;
    }
    if ((flags & VS_KEY_HEX) && json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        errno = 0;
        unsigned long long x = strtoull(s, &end, 16);
        if (!strncmp(s, "0x", 2) && end != s + 2 && !*end && !errno) {
            *out = x;
            return 0;
        }
    }
    if (flags & VS_KEY_HEX)
        return vs_json_fail(l, "key \"%s\" must be a non-negative integer or a hex string like "
                               "\"0x7f0000000000\"", key);
    return vs_json_fail(l, "key \"%s\" must be a non-negative integer", key);
}

/* Reads an optional string key; absent, null or "" (the shim's writer) gives NULL. */
static int vs_json_str(const struct vs_json_line *l, json_t *obj, const char *key,
                       const char **out)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return vs_json_fail(l, "key \"%s\" must be a string", key);
    if (!*json_string_value(v))
        return 0;
    *out = vs_tracefile_intern(l->trace, json_string_value(v));
    return *out ? 0 : vs_json_fail(l, "out of memory");
}

enum { VS_SITE_FRAMES_MAX = 64 };

/* A call site: {"ev":"site","site":ID,"frames":["...", ...]}. */
static int vs_json_site(const struct vs_json_line *l, json_t *obj)
{
    uint64_t id = 0;
    if (vs_json_u64(l, obj, "site", VS_KEY_REQUIRED, &id))
        return -1;
    if (id == 0 || id > UINT32_MAX)
        return vs_json_fail(l, "key \"site\" is %llu, not a call site id",
                            (unsigned long long)id);
    json_t *frames = json_object_get(obj, "frames"), *f;
    if (!json_is_array(frames))
        return vs_json_fail(l, "key \"frames\" must be an array of strings");
    if (json_array_size(frames) > VS_SITE_FRAMES_MAX)
        return vs_json_fail(l, "call site %llu has %zu frames (at most %d)",
                            (unsigned long long)id, json_array_size(frames), VS_SITE_FRAMES_MAX);
    const char *text[VS_SITE_FRAMES_MAX];
    size_t i;
    json_array_foreach(frames, i, f) {
        if (!json_is_string(f))
            return vs_json_fail(l, "frame %zu of call site %llu is not a string", i,
                                (unsigned long long)id);
        if (!(text[i] = vs_tracefile_intern(l->trace, json_string_value(f))))
            return vs_json_fail(l, "out of memory");
    }
    return vs_tracefile_site_add(l->trace, l->line, (uint32_t)id, text, json_array_size(frames),
                                 l->err, l->errlen);
}

/* Stage changes, refused allocations and moves become marks; the program's own VMM events
 * (create, map, ...) are not kept. */
static int vs_json_other(const struct vs_json_line *l, json_t *obj, const char *kind)
{
    if (!strcmp(kind, "site"))
        return vs_json_site(l, obj);
    struct vs_tracefile_mark m = {.line = l->line, .alloc = SIZE_MAX};
    if (!strcmp(kind, "oom"))
        m.kind = VS_TF_OOM;
    else if (!strcmp(kind, "demote"))
        m.kind = VS_TF_DEMOTE;
    else if (!strcmp(kind, "promote"))
        m.kind = VS_TF_PROMOTE;
    else if (!strcmp(kind, "stage"))
        m.kind = VS_TF_STAGE_BEGIN;
    else
        return 0;
    uint64_t site = 0, ptr = 0;
    const char *action;
    if (vs_json_u64(l, obj, "t", VS_KEY_REQUIRED, &m.t_ns) ||
        vs_json_u64(l, obj, "size", 0, &m.size) ||
        vs_json_u64(l, obj, "ptr", VS_KEY_HEX, &ptr) || vs_json_u64(l, obj, "site", 0, &site) ||
        vs_json_str(l, obj, "api", &m.api) || vs_json_str(l, obj, "stage", &m.stage) ||
        vs_json_str(l, obj, "tag", &m.tag) || vs_json_str(l, obj, "action", &action))
        return -1;
    if (site > UINT32_MAX)
        return vs_json_fail(l, "key \"site\" is %llu, not a call site id",
                            (unsigned long long)site);
    m.site = (uint32_t)site;
    if (m.kind == VS_TF_STAGE_BEGIN && action && !strcmp(action, "end"))
        m.kind = VS_TF_STAGE_END;
    else if (m.kind == VS_TF_STAGE_BEGIN && action && strcmp(action, "begin"))
        return vs_json_fail(l, "key \"action\" is \"%s\" (expected begin or end)", action);
    if (m.kind == VS_TF_DEMOTE || m.kind == VS_TF_PROMOTE)
        m.alloc = vs_tracefile_live_find(l->trace, ptr);
    return vs_tracefile_mark_add(l->trace, &m, l->err, l->errlen);
}

static int vs_json_header(const struct vs_json_line *l, json_t *obj)
{
    json_t *v = json_object_get(obj, "vramshim_trace");
    if (!v)
        return vs_json_fail(l, "not a vramshim trace: the first line lacks \"vramshim_trace\" "
                               "(expected {\"vramshim_trace\":1,...})");
    if (!json_is_integer(v) || json_integer_value(v) != 1)
        return vs_json_fail(l, "unsupported \"vramshim_trace\" version (this build reads 1)");
    json_t *devices = json_object_get(obj, "devices"), *d;
    size_t i;
    json_array_foreach(devices, i, d) {
        uint64_t ordinal = 0;
        if (vs_json_u64(l, d, "ordinal", 0, &ordinal) ||
            (ordinal == 0 && vs_json_u64(l, d, "total", 0, &l->trace->device_total)))
            return -1;
    }
    return 0;
}

static int vs_json_dev(const struct vs_json_line *l, json_t *obj, uint64_t *dev)
{
    if (vs_json_u64(l, obj, "dev", 0, dev))
        return -1;
    if (*dev > VS_JSON_DEV_MAX)
        return vs_json_fail(l, "key \"dev\" is %llu, not a device ordinal",
                            (unsigned long long)*dev);
    return 0;
}

/* The optional "reserved" of any event: updates its device's figure and the peak of the sum. */
static int vs_json_reserved(struct vs_json_line *l, json_t *obj)
{
    if (!json_object_get(obj, "reserved"))
        return 0;
    uint64_t bytes = 0, dev = 0, t = 0;
    if (vs_json_u64(l, obj, "reserved", 0, &bytes) || vs_json_dev(l, obj, &dev) ||
        vs_json_u64(l, obj, "t", VS_KEY_REQUIRED, &t))
        return -1;
    if (dev >= l->n_reserved) {
        uint64_t *grown = realloc(l->reserved, (dev + 1) * sizeof *grown);
        if (!grown)
            return vs_json_fail(l, "out of memory");
        memset(grown + l->n_reserved, 0, (dev + 1 - l->n_reserved) * sizeof *grown);
        l->reserved = grown;
        l->n_reserved = dev + 1;
    }
    /* The sum over every ordinal cannot overflow while each figure stays below this bound. */
    if (bytes > UINT64_MAX / (VS_JSON_DEV_MAX + 1))
        return vs_json_fail(l, "key \"reserved\" is %llu bytes, more than any device holds",
                            (unsigned long long)bytes);
    l->reserved_sum = l->reserved_sum - l->reserved[dev] + bytes;
    l->reserved[dev] = bytes;
    struct vs_tracefile *trace = l->trace;
    if (!trace->has_reserved || l->reserved_sum > trace->peak_reserved) {
        trace->peak_reserved = l->reserved_sum;
        trace->peak_reserved_t_ns = t;
    }
    trace->has_reserved = true;
    return 0;
}

static int vs_json_event(struct vs_json_line *l, json_t *obj)
{
    json_t *evj = json_object_get(obj, "ev");
    if (!evj)
        return vs_json_fail(l, "missing key \"ev\"");
    if (!json_is_string(evj))
        return vs_json_fail(l, "key \"ev\" must be a string");
    const char *kind = json_string_value(evj);
    if (strcmp(kind, "site") && vs_json_reserved(l, obj))
        return -1;
    struct vs_tracefile_event ev = {.line = l->line};
    if (!strcmp(kind, "alloc")) {
        ev.kind = VS_TF_ALLOC;
    } else if (!strcmp(kind, "free")) {
        ev.kind = VS_TF_FREE;
    } else {
        for (size_t i = 0; i < sizeof vs_other_events / sizeof *vs_other_events; i++)
            if (!strcmp(kind, vs_other_events[i])) {
                l->trace->skipped++;
                return vs_json_other(l, obj, kind);
            }
        return vs_json_fail(l, "unknown event \"%s\" (expected alloc, free, demote, promote, "
                               "stage, oom, map, unmap, create, release or site)", kind);
    }
    uint64_t dev = 0, site = 0;
    const char *tag;
    if (vs_json_u64(l, obj, "t", VS_KEY_REQUIRED, &ev.t_ns) ||
        vs_json_u64(l, obj, "ptr", VS_KEY_REQUIRED | VS_KEY_HEX, &ev.ptr) ||
        vs_json_u64(l, obj, "size", ev.kind == VS_TF_ALLOC ? VS_KEY_REQUIRED : 0, &ev.size) ||
        vs_json_u64(l, obj, "stream", VS_KEY_HEX, &ev.stream) ||
        vs_json_dev(l, obj, &dev) || vs_json_str(l, obj, "api", &ev.api) ||
        vs_json_str(l, obj, "stage", &ev.stage) || vs_json_str(l, obj, "name", &ev.name) ||
        vs_json_str(l, obj, "tag", &tag) || vs_json_u64(l, obj, "site", 0, &site))
        return -1;
    if (site > UINT32_MAX)
        return vs_json_fail(l, "key \"site\" is %llu, not a call site id",
                            (unsigned long long)site);
    ev.site = (uint32_t)site;
    ev.tag = tag;
    ev.dev = (int)dev;
    if (!ev.name)
        ev.name = tag;
    ev.async = ev.api && strstr(ev.api, "Async");
    return vs_tracefile_add(l->trace, &ev, l->err, l->errlen);
}

int vs_tracefile_read_json(struct vs_tracefile *trace, FILE *fp, char *err, size_t errlen)
{
    struct vs_json_line l = {.trace = trace, .err = err, .errlen = errlen};
    struct vs_tracefile_lines in = {0};
    int rc = 0, got;
    while (!rc && (got = vs_tracefile_next_line(trace, fp, &in, err, errlen)) != 0) {
        if (got < 0) {
            rc = -1;
            break;
        }
        l.line = in.line;
        char *buf = in.buf;
        if (buf[strspn(buf, " \t\r")] == '\0')
            continue;
        json_error_t jerr;
        json_t *obj = json_loads(buf, 0, &jerr);
        if (!obj) {
            rc = vs_json_fail(&l, "invalid JSON: %s (column %d)", jerr.text, jerr.column);
            break;
        }
        if (!json_is_object(obj))
            rc = vs_json_fail(&l, "expected a JSON object");
        else if (l.line == 1)
            rc = vs_json_header(&l, obj);
        else
            rc = vs_json_event(&l, obj);
        json_decref(obj);
    }
    free(in.buf);
    free(l.reserved);
    return rc;
}
