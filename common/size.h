/* Byte sizes as users read them: "512 B", "1.50 GiB": the largest binary unit that keeps the
 * number at least 1, with two decimals. The one formatter of every layer (header-only, so each
 * layer may include it without linking another: docs/architecture.md, Layers); parsing is
 * policy/size.h's. */
#ifndef VS_COMMON_SIZE_H
#define VS_COMMON_SIZE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Writes bytes into buf[len] and returns buf; 32 bytes hold any value. */
static inline const char *vs_size_format(uint64_t bytes, char *buf, size_t len)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    size_t u = 0;
    while (v >= 1024.0 && u + 1 < sizeof units / sizeof *units) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%llu B", (unsigned long long)bytes);
    else
        snprintf(buf, len, "%.2f %s", v, units[u]);
    return buf;
}

#endif
