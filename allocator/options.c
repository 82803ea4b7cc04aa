/* Arena options from the environment. Invariant: a malformed variable never changes a default
 * and is reported in one line naming it. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "allocator/internal.h"

/* "123", "1.5GiB", "64 MiB", "512KiB" (also K/M/G, KB/MB/GB as 1024-based). 0 or -1. */
static int parse_size(const char *text, size_t *out)
{
    static const struct { const char *s; unsigned shift; } units[] = {
        {"", 0}, {"b", 0}, {"k", 10}, {"kb", 10}, {"kib", 10}, {"m", 20}, {"mb", 20},
        {"mib", 20}, {"g", 30}, {"gb", 30}, {"gib", 30}, {"t", 40}, {"tb", 40}, {"tib", 40}};
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || errno || v < 0)
        return -1;
    while (*end == ' ')
        end++;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (!strcasecmp(end, units[i].s)) {
            double bytes = v * (double)((uint64_t)1 << units[i].shift);
            if (bytes >= 18446744073709549568.0)
                return -1;
            *out = (size_t)bytes;
            return 0;
        }
    return -1;
}

void vs_arena_options_from_env(struct vs_arena_options *opt)
{
    *opt = (struct vs_arena_options){.cache_max = SIZE_MAX, .va_chunk = 0};
    const char *v = getenv("VRAMSHIM_CACHE_MAX");
    if (v && *v && parse_size(v, &opt->cache_max) != 0) {
        opt->cache_max = SIZE_MAX;
        vs_alog("VRAMSHIM_CACHE_MAX=\"%s\" is not a size (bytes, or with KiB/MiB/GiB); "
                "caching without a limit", v);
    }
}
