/* Size parsing (see size.h). Exact integer arithmetic: "1.5GiB" is 1610612736, not a double's
 * approximation of it. */
#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "policy/size.h"

#define VS_SIZE_FRACTION_DIGITS 19 /* 10^19 still fits in 64 bits; later digits are below a byte */


/* Reads a run of digits into *v, and 10^(digits kept) into *scale. The whole part keeps every
 * digit (-1 on overflow); a fraction keeps the first VS_SIZE_FRACTION_DIGITS. Returns the number
 * of digits read. */
static int digits(const char **s, bool fraction, uint64_t *v, uint64_t *scale)
{
    int n = 0;
    *v = 0;
    *scale = 1;
    for (; isdigit((unsigned char)**s); (*s)++, n++) {
        uint64_t d = (uint64_t)(**s - '0');
        if (fraction) {
            if (n >= VS_SIZE_FRACTION_DIGITS)
                continue;
            *scale *= 10;
        } else if (*v > (UINT64_MAX - d) / 10) {
            return -1;
        }
        *v = *v * 10 + d;
    }
    return n;
}

/* A number times the factor of its unit, one of n (none: 1, unless unit_required). */
struct vs_unit {
    const char *name;
    uint64_t mul;
};

static enum vs_size_status number_with_unit(const char *text, const struct vs_unit *units,
                                            size_t n, bool unit_required, uint64_t *out)
{
    if (!text)
        return VS_SIZE_BAD;
    const char *s = text;
    while (isspace((unsigned char)*s))
        s++;
    uint64_t whole, frac = 0, scale, frac_scale = 1;
    int nw = digits(&s, false, &whole, &scale);
    if (nw < 0)
        return VS_SIZE_TOO_LARGE;
    if (nw == 0)
        return VS_SIZE_BAD;
    if (*s == '.') {
        s++;
        int nf = digits(&s, true, &frac, &frac_scale);
        if (nf <= 0)
            return VS_SIZE_BAD;
    }
    while (isspace((unsigned char)*s))
        s++;
    const char *unit = s;
    while (isalpha((unsigned char)*s))
        s++;
    size_t ulen = (size_t)(s - unit);
    while (isspace((unsigned char)*s))
        s++;
    if (*s)
        return VS_SIZE_BAD;
    uint64_t mul = 1;
    if (ulen) {
        size_t i;
        for (i = 0; i < n; i++)
            if (ulen == strlen(units[i].name) && strncasecmp(unit, units[i].name, ulen) == 0)
                break;
        if (i == n)
            return VS_SIZE_BAD;
        mul = units[i].mul;
    } else if (unit_required) {
        return VS_SIZE_BAD;
    }
    __extension__ typedef unsigned __int128 u128;
    u128 v = (u128)whole * mul + (u128)frac * mul / frac_scale;
    if (v > UINT64_MAX)
        return VS_SIZE_TOO_LARGE;
    *out = (uint64_t)v;
    return VS_SIZE_OK;
}

enum vs_size_status vs_policy_size_parse(const char *text, uint64_t *out)
{
    static const struct vs_unit units[] = {{"B", 1},
                                           {"KiB", 1ull << 10},
                                           {"MiB", 1ull << 20},
                                           {"GiB", 1ull << 30},
                                           {"TiB", 1ull << 40}};
    return number_with_unit(text, units, sizeof units / sizeof units[0], false, out);
}

enum vs_size_status vs_policy_duration_parse(const char *text, uint64_t *ms)
{
    static const struct vs_unit units[] = {
        {"ms", 1}, {"s", 1000}, {"min", 60000}, {"h", 3600000}};
    return number_with_unit(text, units, sizeof units / sizeof units[0], true, ms);
}
