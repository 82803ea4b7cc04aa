/* Time formatting (see units.h). */
#include "tools/trace/units.h"

#include <stdio.h>

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
