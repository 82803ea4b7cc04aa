/* The logger (see log.h) and the handling of broken invariants (vs_assert.h). */
#include "allocator/log.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "allocator/vs_assert.h"

#define PREFIX "vramshim: "

static enum vs_log_level vs_log_threshold = VS_LOG_WARN;
static _Atomic(void (*)(const char *)) sink;

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

void vs_log_set_sink(void (*line_sink)(const char *line))
{
    atomic_store(&sink, line_sink);
}

/* Per thread; the rate limit only in service threads (vs_log_service_thread). */
static __thread struct {
    unsigned lines;               /* vs_log_thread_lines */
    bool service;
    unsigned tokens;              /* lines that may be written now */
    struct timespec refilled;     /* when the last token was added */
    unsigned suppressed, dropped; /* left out since the last line written */
} me __attribute__((tls_model("initial-exec")));

unsigned vs_log_thread_lines(void)
{
    return me.lines;
}

void vs_log_service_thread(void)
{
    me.service = true;
    me.tokens = VS_LOG_BURST;
    clock_gettime(CLOCK_MONOTONIC, &me.refilled);
}

/* One token per second, at most VS_LOG_BURST; false when none is left. */
static bool take_token(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long secs = (long)(now.tv_sec - me.refilled.tv_sec);
    if (secs > 0) {
        unsigned add = secs >= VS_LOG_BURST ? VS_LOG_BURST : (unsigned)secs;
        me.tokens = me.tokens + add > VS_LOG_BURST ? VS_LOG_BURST : me.tokens + add;
        me.refilled.tv_sec += secs;
    }
    if (!me.tokens)
        return false;
    me.tokens--;
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

/* PREFIX and the message into line[size], truncated so that a newline still fits; the length, or
 * 0 when the message cannot be formatted. */
static size_t format_line(char *line, size_t size, const char *fmt, va_list ap)
{
    size_t n = strlen(PREFIX);
    memcpy(line, PREFIX, n);
    int k = vsnprintf(line + n, size - n - 1, fmt, ap);
    if (k < 0)
        return 0;
    return n + ((size_t)k < size - n - 1 ? (size_t)k : size - n - 2);
}

/* One line. A fatal one goes to stderr whatever the level, the sink and the rate limit. */
static void vlog(enum vs_log_level level, bool fatal, const char *fmt, va_list ap)
{
    if (!fatal && !vs_log_enabled(level))
        return;
    me.lines += !fatal;
    bool limited = me.service && !fatal;
    if (limited && !take_token()) {
        me.suppressed++;
        return;
    }
    char line[1024];
    size_t n = format_line(line, sizeof line, fmt, ap);
    if (!n)
        return;
    if (limited && (me.suppressed || me.dropped)) {
        int k =
            snprintf(line + n, sizeof line - n - 1,
                     " (%u earlier lines left out: %u over the rate limit, %u with stderr full)",
                     me.suppressed + me.dropped, me.suppressed, me.dropped);
        n += k > 0 && (size_t)k < sizeof line - n - 1 ? (size_t)k : 0;
    }
    void (*to)(const char *) = fatal ? NULL : atomic_load(&sink);
    if (to) {
        line[n] = '\0';
        to(line);
        me.suppressed = me.dropped = 0;
        return;
    }
    line[n++] = '\n';
    if (!limited) {
        ssize_t w = write(STDERR_FILENO, line, n);
        (void)w; /* nothing sensible to do when stderr is gone */
    } else if (write_nonblocking(line, n)) {
        me.suppressed = me.dropped = 0;
    } else {
        me.dropped++;
    }
}

void vs_log(enum vs_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(level, false, fmt, ap);
    va_end(ap);
}

void vs_log_fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(VS_LOG_ERROR, true, fmt, ap);
    va_end(ap);
}

static bool invariants_fatal(void)
{
#ifdef VS_CHECKED
    return true;
#else
    const char *v = getenv("VRAMSHIM_INVARIANTS");
    return v && strcmp(v, "abort") == 0;
#endif
}

void vs_invariant_failed(atomic_flag *site, const char *file, int line, const char *cond,
                         const char *fmt, ...)
{
    bool fatal = invariants_fatal();
    if (!fatal && atomic_flag_test_and_set(site))
        return;
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!fatal) {
        vs_log(VS_LOG_WARN, "internal invariant broken at %s:%d (%s): %s; carrying on", file, line,
               cond, msg);
        return;
    }
    vs_log_fatal("internal invariant broken at %s:%d (%s): %s", file, line, cond, msg);
    abort();
}
