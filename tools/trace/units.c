/* Byte-size parsing and formatting (see units.h). */
#include "tools/trace/units.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const vs_unit_names[] = {"B", "KiB", "MiB", "GiB", "TiB"};

int vs_size_parse(const char *text, uint64_t *out)
{
    if (!text || !isdigit((unsigned char)*text))
        return -1;
    uint64_t n = 0;
    const char *p = text;
    for (; isdigit((unsigned char)*p); p++) {
        if (n > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
            return -1;
        n = n * 10 + (uint64_t)(*p - '0');
    }
    while (*p == ' ')
        p++;
    unsigned shift = 0;
    if (*p) {
        static const char prefixes[] = "KMGT";
        const char *u = strchr(prefixes, toupper((unsigned char)*p));
        if (u && *p) {
            shift = 10 * (unsigned)(u - prefixes + 1);
            p++;
            if (*p == 'i' || *p == 'I')
                p++;
            if (*p == 'B' || *p == 'b')
                p++;
        } else if (*p == 'B' || *p == 'b') {
            p++;
        }
        if (*p)
            return -1;
    }
    if (shift && n > (UINT64_MAX >> shift))
        return -1;
    *out = n << shift;
    return 0;
}

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
