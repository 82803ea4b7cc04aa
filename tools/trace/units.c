/* Byte-size formatting (see units.h). */
#include "tools/trace/units.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const vs_unit_names[] = {"B", "KiB", "MiB", "GiB", "TiB"};

const char *vs_size_format(uint64_t bytes, char *buf, size_t len)
{
    size_t unit = 0;
    double v = (double)bytes;
    while (v >= 1024.0 && unit + 1 < sizeof vs_unit_names / sizeof *vs_unit_names) {
        v /= 1024.0;
        unit++;
    }
    if (unit == 0)
        snprintf(buf, len, "%llu B", (unsigned long long)bytes);
    else
        snprintf(buf, len, "%.2f %s", v, vs_unit_names[unit]);
    return buf;
}

const char *vs_seconds_format(double seconds, char *buf, size_t len)
{
    if (seconds >= 1.0 || seconds == 0.0)
        snprintf(buf, len, "%.3f s", seconds);
    else if (seconds >= 1e-3)
        snprintf(buf, len, "%.3f ms", seconds * 1e3);
    else
        snprintf(buf, len, "%.3f us", seconds * 1e6);
    return buf;
}
