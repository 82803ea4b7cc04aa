/* Names of native and Python frames (see frame.h). */
#include <string.h>

#include "policy/frame.h"

static bool visit_n(vs_name_visitor visit, void *ctx, const char *s, size_t len)
{
    char buf[VS_FRAME_NAME_MAX + 1];
    if (len == 0 || len > VS_FRAME_NAME_MAX)
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return visit(ctx, buf, len);
}

bool vs_function_names(const char *module, size_t module_len, const char *qualname,
                       size_t qual_len, vs_name_visitor visit, void *ctx)
{
    if (visit_n(visit, ctx, qualname, qual_len))
        return true;
    char buf[VS_FRAME_NAME_MAX + 1];
    /* Dotted suffixes of the module, shortest first: the start of each is just after a dot. */
    size_t start = module_len;
    for (int depth = 0; depth < VS_MODULE_DEPTH && start > 0; depth++) {
        while (start > 0 && module[start - 1] != '.')
            start--;
        size_t mlen = module_len - start;
        if (mlen && mlen + 1 + qual_len <= VS_FRAME_NAME_MAX) {
            memcpy(buf, module + start, mlen);
            buf[mlen] = '.';
            memcpy(buf + mlen + 1, qualname, qual_len);
            buf[mlen + 1 + qual_len] = '\0';
            if (visit(ctx, buf, mlen + 1 + qual_len))
                return true;
        }
        if (start > 0)
            start--; /* step over the dot */
    }
    return false;
}

/* "py:FILE:LINE:QUALNAME". FILE gives a module path only when it ends in ".py". */
static bool python_names(const char *s, vs_name_visitor visit, void *ctx)
{
    const char *q = strrchr(s, ':');
    if (!q)
        return visit_n(visit, ctx, s, strlen(s));
    const char *qual = q + 1;
    size_t qual_len = strlen(qual);
    const char *l = q;
    while (l > s && l[-1] >= '0' && l[-1] <= '9')
        l--;
    if (l == q || l == s || l[-1] != ':') /* no LINE: no FILE either */
        return visit_n(visit, ctx, qual, qual_len);
    const char *file = s;
    size_t file_len = (size_t)(l - 1 - s);
    if (file_len <= 3 || memcmp(file + file_len - 3, ".py", 3) != 0)
        return visit_n(visit, ctx, qual, qual_len);
    file_len -= 3;
    char module[VS_FRAME_NAME_MAX + 1];
    if (file_len > VS_FRAME_NAME_MAX)
        return visit_n(visit, ctx, qual, qual_len);
    size_t m = 0;
    for (size_t i = 0; i < file_len; i++)
        module[m++] = file[i] == '/' ? '.' : file[i];
    static const char init[] = ".__init__";
    if (m >= sizeof init - 1 && memcmp(module + m - (sizeof init - 1), init, sizeof init - 1) == 0)
        m -= sizeof init - 1;
    size_t first = 0;
    while (first < m && module[first] == '.')
        first++;
    return vs_function_names(module + first, m - first, qual, qual_len, visit, ctx);
}

bool vs_frame_names(const char *frame, vs_name_visitor visit, void *ctx)
{
    if (!frame || !*frame)
        return false;
    if (strncmp(frame, "py:", 3) == 0)
        return python_names(frame + 3, visit, ctx);
    const char *sym = strrchr(frame, ' ');
    if (sym)
        sym++;
    else if (strstr(frame, "+0x"))
        return false; /* "module+0xOFF": no symbol */
    else
        sym = frame;
    const char *off = strstr(sym, "+0x");
    size_t len = off ? (size_t)(off - sym) : strlen(sym);
    return visit_n(visit, ctx, sym, len);
}
