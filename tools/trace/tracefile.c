/* Trace reading: format detection, the event list, interning, and the pointer liveness checks
 * every format shares (see tracefile.h for the invariants this keeps). */
#include "tools/trace/tracefile.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uthash.h>

#include "policy/file.h"
#include "tools/trace/units.h"

struct vs_tracefile_string {
    UT_hash_handle hh;
    char text[];
};

struct vs_tracefile_strings {
    struct vs_tracefile_string *table;
};

/* Live allocations while reading, keyed by pointer. Only exists during vs_tracefile_read(). */
struct vs_tracefile_live {
    uint64_t ptr;
    size_t alloc;
    UT_hash_handle hh;
};

const char *vs_tracefile_intern(struct vs_tracefile *trace, const char *s)
{
    if (!s)
        return NULL;
    struct vs_tracefile_string *e = NULL;
    HASH_FIND_STR(trace->strings->table, s, e);
    if (e)
        return e->text;
    size_t len = strlen(s);
    e = malloc(sizeof *e + len + 1);
    if (!e)
        return NULL;
    memcpy(e->text, s, len + 1);
    HASH_ADD_KEYPTR(hh, trace->strings->table, e->text, len, e);
    return e->text;
}

size_t vs_tracefile_live_find(const struct vs_tracefile *trace, uint64_t ptr)
{
    struct vs_tracefile_live *live = NULL;
    HASH_FIND(hh, trace->live, &ptr, sizeof ptr, live);
    return live ? live->alloc : SIZE_MAX;
}

int vs_tracefile_error(const struct vs_tracefile *trace, unsigned line, char *err, size_t errlen,
                   const char *fmt, ...)
{
    int n = snprintf(err, errlen, "%s:%u: ", trace->path, line);
    if (n >= 0 && (size_t)n < errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int vs_tracefile_add(struct vs_tracefile *trace, struct vs_tracefile_event *ev, char *err,
                     size_t errlen)
{
    /* Zero-byte requests get a null pointer from RMM and the driver; there is nothing to replay. */
    if ((ev->kind == VS_TF_ALLOC && ev->size == 0) || (ev->kind == VS_TF_FREE && !ev->ptr)) {
        trace->skipped++;
        return 0;
    }
    struct vs_tracefile_live *live = NULL;
    HASH_FIND(hh, trace->live, &ev->ptr, sizeof ev->ptr, live);
    if (ev->kind == VS_TF_ALLOC) {
        if (live)
            return vs_tracefile_error(
                trace, ev->line, err, errlen,
                "alloc returned 0x%llx, which is still live (allocated at line %u)",
                (unsigned long long)ev->ptr, trace->events[live->alloc].line);
    } else {
        if (!live)
            return vs_tracefile_error(
                trace, ev->line, err, errlen,
                "free of unknown pointer 0x%llx (never allocated, or already freed)",
                (unsigned long long)ev->ptr);
        ev->alloc = live->alloc;
        ev->size = trace->events[live->alloc].size;
        if (!ev->name)
            ev->name = trace->events[live->alloc].name;
    }
    if (trace->n_events == trace->cap_events) {
        size_t cap = trace->cap_events ? trace->cap_events * 2 : 1024;
        struct vs_tracefile_event *grown = realloc(trace->events, cap * sizeof *grown);
        if (!grown)
            return vs_tracefile_error(trace, ev->line, err, errlen, "out of memory");
        trace->events = grown;
        trace->cap_events = cap;
    }
    if (ev->kind == VS_TF_ALLOC) {
        live = malloc(sizeof *live);
        if (!live)
            return vs_tracefile_error(trace, ev->line, err, errlen, "out of memory");
        live->ptr = ev->ptr;
        live->alloc = trace->n_events;
        HASH_ADD(hh, trace->live, ptr, sizeof live->ptr, live);
        trace->n_allocs++;
    } else {
        HASH_DEL(trace->live, live);
        free(live);
    }
    if (ev->dev > trace->max_dev)
        trace->max_dev = ev->dev;
    trace->events[trace->n_events++] = *ev;
    return 0;
}

int vs_tracefile_next_line(const struct vs_tracefile *trace, FILE *fp,
                           struct vs_tracefile_lines *lines, char *err, size_t errlen)
{
    size_t len = 0;
    int c;
    lines->line++;
    while ((c = getc_unlocked(fp)) != EOF && c != '\n') {
        if (!c)
            return vs_tracefile_error(trace, lines->line, err, errlen,
                                      "NUL byte at column %zu: a binary file, not a trace",
                                      len + 1);
        if (len == VS_TRACE_LINE_MAX)
            return vs_tracefile_error(trace, lines->line, err, errlen,
                                      "line longer than %u bytes, the limit for one trace event",
                                      VS_TRACE_LINE_MAX);
        if (len + 1 >= lines->cap) {
            size_t cap = lines->cap ? 2 * lines->cap : 4096;
            if (cap > VS_TRACE_LINE_MAX + 1)
                cap = VS_TRACE_LINE_MAX + 1;
            char *grown = realloc(lines->buf, cap);
            if (!grown)
                return vs_tracefile_error(trace, lines->line, err, errlen, "out of memory");
            lines->buf = grown;
            lines->cap = cap;
        }
        lines->buf[len++] = (char)c;
    }
    if (ferror(fp))
        return vs_tracefile_error(trace, lines->line, err, errlen, "read error: %s",
                                  strerror(errno));
    if (c == EOF && !len) {
        lines->line--;
        return 0;
    }
    if (!lines->buf && !(lines->buf = malloc(lines->cap = 4096)))
        return vs_tracefile_error(trace, lines->line, err, errlen, "out of memory");
    lines->buf[len] = '\0';
    return 1;
}

static void vs_live_clear(struct vs_tracefile *trace)
{
    struct vs_tracefile_live *e, *tmp;
    HASH_ITER(hh, trace->live, e, tmp) {
        HASH_DEL(trace->live, e);
        free(e);
    }
}

void vs_tracefile_free(struct vs_tracefile *trace)
{
    if (trace->strings) {
        struct vs_tracefile_string *e, *tmp;
        HASH_ITER(hh, trace->strings->table, e, tmp) {
            HASH_DEL(trace->strings->table, e);
            free(e);
        }
        free(trace->strings);
    }
    vs_tracefile_marks_free(trace);
    free(trace->events);
    free(trace->path);
    memset(trace, 0, sizeof *trace);
}

int vs_tracefile_read(const char *path, struct vs_tracefile *trace, char *err, size_t errlen)
{
    memset(trace, 0, sizeof *trace);
    char why[128];
    int fd = vs_open_regular(path, why, sizeof why);
    FILE *fp = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (!fp) {
        snprintf(err, errlen, "%s: %s", path, fd >= 0 ? strerror(errno) : why);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    trace->path = strdup(path);
    trace->strings = calloc(1, sizeof *trace->strings);
    int rc = -1;
    if (!trace->path || !trace->strings) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    /* The first byte decides: JSON Lines start with '{', RMM logs with their CSV header. */
    int c = fgetc(fp);
    if (c == EOF) {
        snprintf(err, errlen, "%s: empty file (expected a vramshim trace or an RMM CSV log)", path);
        goto out;
    }
    ungetc(c, fp);
    if (c == '{') {
        trace->format = VS_TF_VRAMSHIM;
        rc = vs_tracefile_read_json(trace, fp, err, errlen);
    } else {
        trace->format = VS_TF_RMM;
        rc = vs_tracefile_read_rmm(trace, fp, err, errlen);
    }
out:
    fclose(fp);
    vs_live_clear(trace);
    if (rc)
        vs_tracefile_free(trace);
    return rc;
}

const char *vs_tracefile_describe(const struct vs_tracefile_event *ev, char *buf, size_t len)
{
    char size[32];
    vs_size_format(ev->size, size, sizeof size);
    int n = snprintf(buf, len, "%s %s at 0x%llx on stream 0x%llx",
                     ev->kind == VS_TF_ALLOC ? "alloc" : "free", size,
                     (unsigned long long)ev->ptr, (unsigned long long)ev->stream);
    if (n < 0 || (size_t)n >= len || (!ev->api && !ev->name))
        return buf;
    snprintf(buf + n, len - (size_t)n, " (%s%s%s)", ev->api ? ev->api : "",
             ev->api && ev->name ? ", " : "", ev->name ? ev->name : "");
    return buf;
}
