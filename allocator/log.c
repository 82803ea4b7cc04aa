/* The allocator's "vramshim:" log lines: one formatted line to a sink (stderr unless the shim or a
 * test installs one). Invariant: a line is formatted in a stack buffer and handed over whole, so
 * lines from different threads never interleave and logging never allocates.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

#include "allocator/internal.h"

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
