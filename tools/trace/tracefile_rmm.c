/* Reader of RAPIDS RMM memory event logs (logging_resource_adaptor): the CSV header
 * `Thread,Time,Action,Pointer,Size,Stream`, then one row per event. Time is seconds since the
 * epoch ("1634567890.234567") or a time of day ("10:30:45.123456"); Action is allocate or
 * deallocate (older logs: free); failed allocations ("allocate failure") are skipped. RMM is
 * stream-ordered, so every event replays as an async call on its stream. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tools/trace/tracefile.h"

#define VS_RMM_FIELDS 6

static int vs_rmm_u64(const char *s, int base, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!isxdigit((unsigned char)*s))
        return -1;
    unsigned long long v = strtoull(s, &end, base);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

static int vs_rmm_hex(const char *s, uint64_t *out)
{
    return strncmp(s, "0x", 2) ? -1 : vs_rmm_u64(s + 2, 16, out);
}

/* Seconds (with fraction) since the epoch, or HH:MM:SS[.frac] since midnight, to ns. */
static int vs_rmm_time(const char *s, uint64_t *ns)
{
    uint64_t secs = 0, part;
    const char *p = s;
    for (int field = 0;; field++) {
        char *end;
        if (!isdigit((unsigned char)*p))
            return -1;
        part = strtoull(p, &end, 10);
        secs = secs * (field ? 60 : 1) + part;
        p = end;
        if (*p != ':')
            break;
        if (field == 2)
            return -1;
        p++;
    }
    uint64_t frac = 0, scale = 1000000000ull;
    if (*p == '.') {
        for (p++; isdigit((unsigned char)*p); p++)
            if (scale > 1) {
                scale /= 10;
                frac += (uint64_t)(*p - '0') * scale;
            }
    }
    if (*p)
        return -1;
    *ns = secs * 1000000000ull + frac;
    return 0;
}

/* Splits line in place at commas into exactly VS_RMM_FIELDS fields; returns the count found. */
static int vs_rmm_split(char *line, char **fields)
{
    line[strcspn(line, "\r\n")] = '\0';
    int n = 0;
    for (char *p = line;; p++) {
        if (n < VS_RMM_FIELDS)
            fields[n] = p;
        n++;
        p = strchr(p, ',');
        if (!p)
            break;
        *p = '\0';
    }
    return n;
}

static int vs_rmm_row(struct vs_tracefile *trace, unsigned line, char *text, char *err,
                      size_t errlen)
{
    char *f[VS_RMM_FIELDS];
    int n = vs_rmm_split(text, f);
    if (n != VS_RMM_FIELDS)
        return vs_tracefile_error(trace, line, err, errlen,
                           "expected 6 comma-separated fields (" VS_RMM_HEADER "), got %d", n);
    struct vs_tracefile_event ev = {.line = line, .async = true, .api = "rmm"};
    if (!strcmp(f[2], "allocate")) {
        ev.kind = VS_TF_ALLOC;
    } else if (!strcmp(f[2], "deallocate") || !strcmp(f[2], "free")) {
        ev.kind = VS_TF_FREE;
    } else if (!strcmp(f[2], "allocate failure")) {
        trace->skipped++;
        return 0;
    } else {
        return vs_tracefile_error(trace, line, err, errlen,
                           "unknown Action \"%s\" (expected allocate, deallocate, free or "
                           "allocate failure)", f[2]);
    }
    if (vs_rmm_time(f[1], &ev.t_ns))
        return vs_tracefile_error(trace, line, err, errlen,
                           "bad Time \"%s\" (expected seconds like 1634567890.234567 or "
                           "HH:MM:SS.ffffff)", f[1]);
    if (vs_rmm_hex(f[3], &ev.ptr))
        return vs_tracefile_error(trace, line, err, errlen,
                           "bad Pointer \"%s\" (expected hex like 0x7f8a40000000)", f[3]);
    if (vs_rmm_u64(f[4], 10, &ev.size))
        return vs_tracefile_error(trace, line, err, errlen,
                           "bad Size \"%s\" (expected a byte count)", f[4]);
    if (vs_rmm_hex(f[5], &ev.stream))
        return vs_tracefile_error(trace, line, err, errlen,
                           "bad Stream \"%s\" (expected hex like 0x7f8a38001020)", f[5]);
    return vs_tracefile_add(trace, &ev, err, errlen);
}

int vs_tracefile_read_rmm(struct vs_tracefile *trace, FILE *fp, char *err, size_t errlen)
{
    struct vs_tracefile_lines in = {0};
    int rc = 0, got;
    trace->format = VS_TF_RMM;
    while (!rc && (got = vs_tracefile_next_line(trace, fp, &in, err, errlen)) != 0) {
        char *buf = in.buf;
        if (got < 0) {
            rc = -1;
        } else if (in.line == 1) {
            buf[strcspn(buf, "\r")] = '\0';
            if (strcmp(buf, VS_RMM_HEADER))
                rc = vs_tracefile_error(trace, 1, err, errlen,
                                 "neither a vramshim trace (JSON Lines) nor an RMM CSV log "
                                 "(header " VS_RMM_HEADER ")");
        } else if (buf[strspn(buf, " \t\r")] != '\0') {
            rc = vs_rmm_row(trace, in.line, buf, err, errlen);
        }
    }
    free(in.buf);
    return rc;
}
