/* vramshim: logging to stderr (see log.h). */
#include "interpose/log.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
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

/* Per service thread (vs_log_service_thread); zero in every other thread. */
static __thread struct {
    bool on;
    unsigned tokens;              /* lines that may be written now */
    struct timespec refilled;     /* when the last token was added */
    unsigned suppressed, dropped; /* left out since the last line written */
} svc __attribute__((tls_model("initial-exec")));

void vs_log_service_thread(void)
{
    svc.on = true;
    svc.tokens = VS_LOG_BURST;
    clock_gettime(CLOCK_MONOTONIC, &svc.refilled);
}

/* One token per second, at most VS_LOG_BURST; false when none is left. */
static bool take_token(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long secs = (long)(now.tv_sec - svc.refilled.tv_sec);
    if (secs > 0) {
        unsigned add = secs >= VS_LOG_BURST ? VS_LOG_BURST : (unsigned)secs;
        svc.tokens = svc.tokens + add > VS_LOG_BURST ? VS_LOG_BURST : svc.tokens + add;
        svc.refilled.tv_sec += secs;
    }
    if (!svc.tokens)
        return false;
    svc.tokens--;
    return true;
}

/* Writes the line to stderr unless that would block. The host's own descriptor is never made
 * non-blocking (the flag would be shared with the host): a pipe, FIFO or terminal is reopened
 * non-blocking through /proc for this one write; a line fits in PIPE_BUF, so it is written whole
 * or not at all. */
static bool write_nonblocking(const char *line, size_t n)
{
    struct stat st;
    if (fstat(STDERR_FILENO, &st) != 0)
        return false;
    if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))
        return write(STDERR_FILENO, line, n) == (ssize_t)n;
    if (S_ISSOCK(st.st_mode))
        return send(STDERR_FILENO, line, n, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)n;
    int fd = open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool ok = write(fd, line, n) == (ssize_t)n;
    close(fd);
    return ok;
}

void vs_log(enum vs_log_level level, const char *fmt, ...)
{
    if (!vs_log_enabled(level))
        return;
    if (svc.on && !take_token()) {
        svc.suppressed++;
        return;
    }
    char line[1024] = "vramshim: ";
    size_t n = strlen(line);
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
    va_end(ap);
    if (k < 0)
        return;
    n += (size_t)k < sizeof line - n - 1 ? (size_t)k : sizeof line - n - 2;
    if (svc.on && (svc.suppressed || svc.dropped)) {
        k = snprintf(line + n, sizeof line - n - 1,
                     " (%u earlier lines left out: %u over the rate limit, %u with stderr full)",
                     svc.suppressed + svc.dropped, svc.suppressed, svc.dropped);
        n += k > 0 && (size_t)k < sizeof line - n - 1 ? (size_t)k : 0;
    }
    line[n++] = '\n';
    if (!svc.on) {
        ssize_t w = write(STDERR_FILENO, line, n);
        (void)w; /* nothing sensible to do when stderr is gone */
    } else if (write_nonblocking(line, n)) {
        svc.suppressed = svc.dropped = 0;
    } else {
        svc.dropped++;
    }
}
