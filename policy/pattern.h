/* Glob patterns of `match` keys, compiled once at load so matching is cheap: a pattern without
 * wildcards is a string compare, "x*", "*x" and "*x*" are prefix/suffix/substring tests, and
 * only the rest goes through fnmatch(3) (flags 0: '*' and '?' match any character, '[...]'
 * classes, '\' escapes). */
#ifndef VS_POLICY_PATTERN_H
#define VS_POLICY_PATTERN_H

#include <stdbool.h>
#include <stddef.h>

enum vs_pattern_kind { VS_PAT_EXACT, VS_PAT_PREFIX, VS_PAT_SUFFIX, VS_PAT_CONTAINS, VS_PAT_ANY,
                       VS_PAT_GLOB };

struct vs_pattern {
    enum vs_pattern_kind kind;
    const char *text; /* the pattern as written (borrowed: must outlive the pattern) */
    const char *lit;  /* literal part for EXACT..CONTAINS (points into text) */
    size_t lit_len;
};

/* Validates and compiles text. Returns NULL, or a static description of what is wrong
 * ("is empty", "contains a blank", "has an unterminated '['", "ends with a lone '\\'"). */
const char *vs_pattern_compile(struct vs_pattern *p, const char *text);

/* Whether name (NUL-terminated, len bytes) matches. */
bool vs_pattern_match(const struct vs_pattern *p, const char *name, size_t len);

#endif
