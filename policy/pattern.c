/* Compiled glob patterns (see pattern.h). */
#include <ctype.h>
#include <fnmatch.h>
#include <string.h>

#include "policy/pattern.h"

static bool special(char c)
{
    return c == '*' || c == '?' || c == '[' || c == '\\';
}

/* Checks bracket classes and escapes the way fnmatch reads them. */
static const char *check_syntax(const char *s)
{
    for (; *s; s++) {
        if (isspace((unsigned char)*s))
            return "contains a blank";
        if (*s == '\\') {
            if (!s[1])
                return "ends with a lone '\\'";
            s++;
        } else if (*s == '[') {
            const char *c = s + 1;
            if (*c == '!' || *c == '^')
                c++;
            if (*c == ']')
                c++; /* a leading ']' is a member of the class */
            while (*c && *c != ']')
                c++;
            if (!*c)
                return "has an unterminated '['";
            s = c;
        }
    }
    return NULL;
}

const char *vs_pattern_compile(struct vs_pattern *p, const char *text)
{
    if (!text || !*text)
        return "is empty";
    const char *why = check_syntax(text);
    if (why)
        return why;
    size_t len = strlen(text);
    p->text = text;
    size_t lo = 0, hi = len;
    while (lo < len && text[lo] == '*')
        lo++;
    if (lo == len) {
        p->kind = VS_PAT_ANY;
        p->lit = text + len;
        p->lit_len = 0;
        return NULL;
    }
    while (hi > lo && text[hi - 1] == '*')
        hi--;
    /* A trailing "\*" is an escaped star, not a wildcard: leave such patterns to fnmatch. */
    bool plain = true;
    for (size_t i = lo; i < hi; i++)
        plain &= !special(text[i]);
    p->lit = text + lo;
    p->lit_len = hi - lo;
    if (!plain)
        p->kind = VS_PAT_GLOB;
    else if (lo && hi < len)
        p->kind = VS_PAT_CONTAINS;
    else if (lo)
        p->kind = VS_PAT_SUFFIX;
    else if (hi < len)
        p->kind = VS_PAT_PREFIX;
    else
        p->kind = VS_PAT_EXACT;
    return NULL;
}

bool vs_pattern_match(const struct vs_pattern *p, const char *name, size_t len)
{
    switch (p->kind) {
    case VS_PAT_EXACT:
        return len == p->lit_len && memcmp(name, p->lit, len) == 0;
    case VS_PAT_PREFIX:
        return len >= p->lit_len && memcmp(name, p->lit, p->lit_len) == 0;
    case VS_PAT_SUFFIX:
        return len >= p->lit_len && memcmp(name + len - p->lit_len, p->lit, p->lit_len) == 0;
    case VS_PAT_CONTAINS:
        return memmem(name, len, p->lit, p->lit_len) != NULL;
    case VS_PAT_ANY:
        return true;
    case VS_PAT_GLOB:
        return fnmatch(p->text, name, 0) == 0;
    }
    return false;
}
