/* Formatting and collecting policy diagnostics (see diag.h for the message shape). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/diag.h"

static void copy(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src ? src : "");
}

void vs_diag_add(struct vs_policy_diags *d, enum vs_diag_severity sev, const char *file,
                 unsigned line, const char *section, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vs_diag_vadd(d, sev, file, line, section, key, fmt, ap);
    va_end(ap);
}

void vs_diag_vadd(struct vs_policy_diags *d, enum vs_diag_severity sev, const char *file,
                  unsigned line, const char *section, const char *key, const char *fmt,
                  va_list ap)
{
    if (!d)
        return;
    if (sev == VS_DIAG_ERROR)
        d->errors++;
    else
        d->warnings++;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        struct vs_policy_diag *v = realloc(d->v, cap * sizeof *v);
        if (!v)
            return;
        d->v = v;
        d->cap = cap;
    }
    struct vs_policy_diag *g = &d->v[d->n++];
    g->severity = sev;
    g->line = line;
    copy(g->file, sizeof g->file, file);
    copy(g->section, sizeof g->section, section);
    copy(g->key, sizeof g->key, key);
    vsnprintf(g->message, sizeof g->message, fmt, ap);

    char where[sizeof g->file + 16];
    if (line)
        snprintf(where, sizeof where, "%s:%u", g->file, line);
    else
        snprintf(where, sizeof where, "%s", g->file);
    char scope[sizeof g->section + sizeof g->key + 16] = "";
    if (g->section[0] && g->key[0])
        snprintf(scope, sizeof scope, "[%s] key '%s': ", g->section, g->key);
    else if (g->section[0])
        snprintf(scope, sizeof scope, "[%s]: ", g->section);
    else if (g->key[0])
        snprintf(scope, sizeof scope, "key '%s': ", g->key);
    snprintf(g->text, sizeof g->text, "%s: %s%s%s", where,
             sev == VS_DIAG_WARNING ? "warning: " : "", scope, g->message);
}

void vs_policy_diags_free(struct vs_policy_diags *d)
{
    if (!d)
        return;
    free(d->v);
    *d = (struct vs_policy_diags){0};
}
