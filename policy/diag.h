/* Diagnostics of a policy file: every error and warning names the file, the line and, where
 * there is one, the section and key, e.g.
 *   policy.ini:12: [stage decode] key 'headroom': bad size 'two GiB' (expected e.g. 2GiB, 512MiB)
 *   policy.ini:14: warning: [stage decode] key 'evict': 'vae' is not defined in this file ...
 * A list only grows; when memory runs out, further diagnostics are counted but not kept. */
#ifndef VS_POLICY_DIAG_H
#define VS_POLICY_DIAG_H

#include <stdarg.h>
#include <stddef.h>

enum vs_diag_severity { VS_DIAG_ERROR, VS_DIAG_WARNING };

#define VS_DIAG_TEXT 512

struct vs_policy_diag {
    enum vs_diag_severity severity;
    unsigned line;            /* 0: about the whole file */
    char file[256];
    char section[64];         /* "stage decode", "global", or "" */
    char key[64];             /* "" when the diagnostic is not about one key */
    char message[VS_DIAG_TEXT]; /* without the location */
    char text[VS_DIAG_TEXT * 2]; /* the whole line, as printed */
    size_t order;             /* scratch for sorting by line stably */
};

struct vs_policy_diags {
    struct vs_policy_diag *v;
    size_t n, cap;
    size_t errors, warnings; /* counted even when not kept */
};

/* Appends one diagnostic; section/key may be NULL. */
void vs_diag_add(struct vs_policy_diags *d, enum vs_diag_severity sev, const char *file,
                 unsigned line, const char *section, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

void vs_diag_vadd(struct vs_policy_diags *d, enum vs_diag_severity sev, const char *file,
                  unsigned line, const char *section, const char *key, const char *fmt,
                  va_list ap) __attribute__((format(printf, 7, 0)));

/* Frees the kept diagnostics and zeroes the list. */
void vs_policy_diags_free(struct vs_policy_diags *d);

#endif
