/* The allocator's "vramshim:" log lines: one formatted line to a sink (stderr unless the shim or a
 * test installs one). Invariant: a line is formatted in a stack buffer and handed over whole, so
 * lines from different threads never interleave and logging never allocates.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "allocator/internal.h"
#include "allocator/vs_assert.h"

static _Atomic(void (*)(const char *)) log_sink;

void vs_arena_set_log_sink(void (*sink)(const char *line))
{
    atomic_store(&log_sink, sink);
}

void vs_alog(const char *fmt, ...)
{
    char line[512];
    int n = snprintf(line, sizeof line, "vramshim: ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    void (*sink)(const char *) = atomic_load(&log_sink);
    if (sink)
        sink(line);
    else
        fprintf(stderr, "%s\n", line);
}

static bool invariants_fatal(void)
{
#ifdef VS_CHECKED
    return true;
#else
    const char *v = getenv("VRAMSHIM_INVARIANTS");
    return v && strcmp(v, "abort") == 0;
#endif
}

void vs_invariant_failed(atomic_flag *site, const char *file, int line, const char *cond,
                         const char *fmt, ...)
{
    bool fatal = invariants_fatal();
    if (!fatal && atomic_flag_test_and_set(site))
        return;
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!fatal) {
        vs_alog("internal invariant broken at %s:%d (%s): %s; carrying on", file, line, cond, msg);
        return;
    }
    /* Straight to stderr: a test's log sink would keep the line from the report. */
    fprintf(stderr, "vramshim: internal invariant broken at %s:%d (%s): %s\n", file, line, cond,
            msg);
    abort();
}

const char *vs_fmt_bytes(size_t n, char buf[32])
{
    static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, 32, "%zu B", n);
    else
        snprintf(buf, 32, "%.2f %s", v, unit[u]);
    return buf;
}
