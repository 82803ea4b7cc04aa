/* vramshim: logging to stderr (see log.h). */
#include "interpose/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static enum vs_log_level vs_log_threshold = VS_LOG_WARN;

void vs_log_init(void)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    const char *v = getenv("VRAMSHIM_LOG");
    if (!v || !*v)
        return;
    for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++) {
        if (strcmp(v, names[i]) == 0) {
            vs_log_threshold = (enum vs_log_level)i;
            return;
        }
    }
    vs_log(VS_LOG_ERROR,
           "VRAMSHIM_LOG=\"%s\" is not a level (expected error, warn, info or debug); "
           "using warn",
           v);
}

int vs_log_enabled(enum vs_log_level level)
{
    return level <= vs_log_threshold;
}

void vs_log(enum vs_log_level level, const char *fmt, ...)
{
    if (!vs_log_enabled(level))
        return;
    char line[1024] = "vramshim: ";
    size_t n = strlen(line);
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
    va_end(ap);
    if (k < 0)
        return;
    n += (size_t)k < sizeof line - n - 1 ? (size_t)k : sizeof line - n - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w; /* nothing sensible to do when stderr is gone */
}
