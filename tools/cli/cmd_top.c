/* `vramshim top PID [-d SECONDS] [-n FRAMES]`: a live view of a process under the shim, through
 * its control socket (the `status` request, see docs/stages.md): current stage and stack, live,
 * cached and demoted bytes, allocation and free rates, what it lent and borrowed and the processes
 * of its GPU's ledger (when its ledger is on), bytes per stage and tag, and the last changes seen
 * between two refreshes. On a terminal it redraws in place and `q` quits; otherwise
 * it prints one frame per refresh. Exit status: 0 quit or the process ended, 1 the process
 * cannot be reached, 2 bad usage. */
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "tools/cli/commands.h"
#include "tools/cli/ctl_client.h"
#include "tools/trace/units.h"

enum { VS_TOP_ROWS = 10, VS_TOP_CHANGES = 8 };

static void vs_top_usage(FILE *out)
{
    fprintf(out,
            "usage: vramshim top PID [-d SECONDS] [-n FRAMES]\n"
            "\n"
            "Shows process PID (running under the shim with VRAMSHIM_CTL=1, or ctl = on in its\n"
            "policy) live: current stage, live, cached and demoted bytes, allocations and frees\n"
            "per second, what it lent and borrowed and the other processes of its GPU (when it\n"
            "lends or borrows: docs/lending.md), bytes per stage and tag, and the last changes.\n"
            "Refreshes every SECONDS\n"
            "(default 1); -n stops after FRAMES refreshes. On a terminal, q quits.\n"
            "Exit status: 0 quit or the process ended, 1 it cannot be reached, 2 bad usage.\n");
}

static volatile sig_atomic_t vs_top_stop;

static void vs_top_signal(int sig)
{
    (void)sig;
    vs_top_stop = 1;
}

/* The status of pid, NULL when it cannot be had (why is printed). */
static json_t *vs_top_status(long pid)
{
    int fd = vs_ctl_connect(pid);
    if (fd < 0)
        return NULL;
    char *reply = vs_ctl_exchange(fd, "status\n");
    close(fd);
    json_t *r = reply ? json_loads(reply, 0, NULL) : NULL;
    free(reply);
    json_t *status = json_incref(json_object_get(r, "status"));
    if (r && !status)
        fprintf(stderr, "vramshim top: process %ld answered without a status\n", pid);
    json_decref(r);
    return status;
}

static uint64_t vs_u64(json_t *o, const char *key)
{
    json_int_t v = json_integer_value(json_object_get(o, key));
    return v > 0 ? (uint64_t)v : 0;
}

static uint64_t vs_calls(json_t *status, const char *a, const char *b)
{
    json_t *calls = json_object_get(status, "calls");
    return vs_u64(calls, a) + vs_u64(calls, b);
}

/* What changed between two statuses, as lines for "last changes". */
struct vs_changes {
    char line[VS_TOP_CHANGES][160];
    size_t n; /* lines kept, newest last */
};

__attribute__((format(printf, 2, 3))) static void vs_change(struct vs_changes *c,
                                                            const char *fmt, ...)
{
    if (c->n == VS_TOP_CHANGES) {
        memmove(c->line, c->line + 1, sizeof c->line[0] * (VS_TOP_CHANGES - 1));
        c->n--;
    }
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    size_t k = strftime(c->line[c->n], sizeof c->line[0], "%H:%M:%S  ", &tm);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->line[c->n] + k, sizeof c->line[0] - k, fmt, ap);
    va_end(ap);
    c->n++;
}

/* Live bytes of each name of `kind` ("stages", "tags") that changed by at least 1 MiB. */
static void vs_diff_names(struct vs_changes *c, json_t *was, json_t *now, const char *kind)
{
    const char *name;
    json_t *v;
    json_object_foreach(json_object_get(now, kind), name, v) {
        json_t *old = json_object_get(json_object_get(was, kind), name);
        int64_t d = (int64_t)vs_u64(v, "live_bytes") - (int64_t)vs_u64(old, "live_bytes");
        int64_t m = (int64_t)vs_u64(v, "demoted_bytes") - (int64_t)vs_u64(old, "demoted_bytes");
        char a[32], b[32];
        if (d >= (1 << 20) || d <= -(1 << 20))
            vs_change(c, "%s %s: %s%s live", kind[0] == 's' ? "stage" : "tag",
                      *name ? name : "(none)", d > 0 ? "+" : "-",
                      vs_size_format((uint64_t)(d > 0 ? d : -d), a, sizeof a));
        if (m >= (1 << 20) || m <= -(1 << 20))
            vs_change(c, "%s %s: %s %s", kind[0] == 's' ? "stage" : "tag", *name ? name : "(none)",
                      m > 0 ? "demoted" : "promoted",
                      vs_size_format((uint64_t)(m > 0 ? m : -m), b, sizeof b));
    }
}

static void vs_diff(struct vs_changes *c, json_t *was, json_t *now)
{
    const char *s0 = json_string_value(json_object_get(was, "stage"));
    const char *s1 = json_string_value(json_object_get(now, "stage"));
    if ((s0 || s1) && (!s0 || !s1 || strcmp(s0, s1)))
        vs_change(c, "stage %s -> %s", s0 ? s0 : "(none)", s1 ? s1 : "(none)");
    vs_diff_names(c, was, now, "stages");
    vs_diff_names(c, was, now, "tags");
}

static void vs_print_names(FILE *out, json_t *status, const char *kind, const char *title)
{
    char a[32], b[32];
    const char *name;
    json_t *v;
    size_t shown = 0;
    fprintf(out, "\n%-24s %12s %12s\n", title, "live", "on host");
    json_object_foreach(json_object_get(status, kind), name, v) {
        if (shown++ == VS_TOP_ROWS) {
            fprintf(out, "  (%zu more)\n", json_object_size(json_object_get(status, kind)) -
                                               VS_TOP_ROWS);
            break;
        }
        fprintf(out, "%-24s %12s %12s\n", *name ? name : "(none)",
                vs_size_format(vs_u64(v, "live_bytes"), a, sizeof a),
                vs_size_format(vs_u64(v, "demoted_bytes"), b, sizeof b));
    }
}

struct vs_top_peers {
    FILE *out;
    long pid;
};

/* One GPU's ledger: its processes, the watched one marked with '*'. */
static void vs_print_peers(void *ctx, const char *uuid, const char *path,
                           const struct vs_ledger_entry *v, size_t n)
{
    (void)path;
    const struct vs_top_peers *p = ctx;
    fprintf(p->out, "\n%s: %zu process%s under vramshim\n", uuid, n, n == 1 ? "" : "es");
    fprintf(p->out, "  %8s  %-16s %10s %10s %10s\n", "pid", "stage", "live", "demoted",
            "lendable");
    for (size_t i = 0; i < n; i++) {
        char st[VS_LEDGER_STAGE_LEN], b[3][32];
        fprintf(p->out, "%c %8d  %-16s %10s %10s %10s\n", v[i].pid == p->pid ? '*' : ' ',
                (int)v[i].pid, v[i].stage[0] ? vs_ledger_printable(v[i].stage, st, sizeof st) : "-",
                vs_size_format(v[i].live, b[0], sizeof b[0]),
                vs_size_format(v[i].demoted, b[1], sizeof b[1]),
                vs_size_format(v[i].lendable, b[2], sizeof b[2]));
    }
}

/* The watched process as a lender and a borrower (its status's "lending"), and the processes of
 * the GPUs' ledgers; nothing when its ledger is off (docs/lending.md). */
static void vs_print_lending(FILE *out, long pid, json_t *status)
{
    json_t *l = json_object_get(status, "lending");
    if (!json_is_true(json_object_get(l, "ledger")))
        return;
    char a[32], b[32];
    uint64_t lends = vs_u64(l, "lends"), borrows = vs_u64(l, "borrows");
    fprintf(out, "\nlent %llu time%s (%s released to the driver), refused %llu%s\n",
            (unsigned long long)lends, lends == 1 ? "" : "s",
            vs_size_format(vs_u64(l, "lent_released_bytes"), a, sizeof a),
            (unsigned long long)vs_u64(l, "lend_refusals"),
            json_is_true(json_object_get(l, "lent_out")) ? ", lent memory not all back" : "");
    fprintf(out, "borrowed %llu time%s (%s released by peers)\n", (unsigned long long)borrows,
            borrows == 1 ? "" : "s", vs_size_format(vs_u64(l, "borrowed_bytes"), b, sizeof b));
    struct vs_top_peers p = {out, pid};
    char dir[4096];
    bool failed;
    vs_ledger_walk(vs_print_peers, &p, dir, sizeof dir, &failed);
}

static void vs_frame(FILE *out, bool tty, long pid, json_t *status, double allocs_s,
                     double frees_s, const struct vs_changes *c)
{
    char a[32], b[32], d[32];
    if (tty)
        fputs("\033[H\033[J", out);
    const char *policy = json_string_value(json_object_get(status, "policy"));
    const char *stage = json_string_value(json_object_get(status, "stage"));
    fprintf(out, "vramshim top: pid %ld, %s mode, policy %s%s\n", pid,
            json_string_value(json_object_get(status, "mode")), policy ? policy : "none",
            tty ? "   (q quits)" : "");
    fprintf(out, "stage %s", stage ? stage : "(none)");
    json_t *stack = json_object_get(status, "stack"), *s;
    size_t i;
    if (json_array_size(stack) > 1) {
        fprintf(out, "   stack:");
        json_array_foreach(stack, i, s)
            fprintf(out, "%s%s", i ? " > " : " ", json_string_value(s));
    }
    fprintf(out, "\nlive %s   cached %s   demoted %s   allocs %.0f/s   frees %.0f/s\n",
            vs_size_format(vs_u64(status, "live_bytes"), a, sizeof a),
            vs_size_format(vs_u64(status, "cached_bytes"), b, sizeof b),
            vs_size_format(vs_u64(status, "demoted_bytes"), d, sizeof d), allocs_s, frees_s);
    vs_print_lending(out, pid, status);
    vs_print_names(out, status, "stages", "stage");
    vs_print_names(out, status, "tags", "tag");
    fprintf(out, "\nlast changes\n");
    for (size_t k = 0; k < c->n; k++)
        fprintf(out, "  %s\n", c->line[k]);
    if (!c->n)
        fprintf(out, "  (none yet)\n");
    if (!tty)
        fputc('\n', out);
    fflush(out);
}

/* Waits `ms` for a key; true when it was q. */
static bool vs_top_wait(bool keys, int ms)
{
    struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
    if (poll(&p, keys ? 1 : 0, ms) > 0) {
        char ch;
        if (read(STDIN_FILENO, &ch, 1) == 1 && (ch == 'q' || ch == 'Q'))
            return true;
    }
    return false;
}

int vs_cmd_top(int argc, char **argv)
{
    long pid = 0, frames = 0;
    double interval = 1.0;
    for (int i = 1; i < argc; i++) {
        char *end;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            vs_top_usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "-d") && i + 1 < argc) {
            interval = strtod(argv[++i], &end);
            if (*end || !(interval >= 0.05 && interval <= 3600)) {
                fprintf(stderr, "vramshim top: -d wants seconds between 0.05 and 3600, not '%s'\n",
                        argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "-n") && i + 1 < argc) {
            frames = strtol(argv[++i], &end, 10);
            if (*end || frames <= 0) {
                fprintf(stderr, "vramshim top: -n wants a number of frames, not '%s'\n", argv[i]);
                return 2;
            }
        } else if (!pid && argv[i][0] != '-') {
            pid = strtol(argv[i], &end, 10);
            if (*end || pid <= 0) {
                fprintf(stderr, "vramshim top: '%s' is not a process id\n", argv[i]);
                return 2;
            }
        } else {
            fprintf(stderr, "vramshim top: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!pid) {
        vs_top_usage(stderr);
        return 2;
    }
    json_t *was = vs_top_status(pid);
    if (!was)
        return 1;
    bool tty = isatty(STDOUT_FILENO), keys = isatty(STDIN_FILENO);
    struct termios saved;
    if (keys && tcgetattr(STDIN_FILENO, &saved) == 0) {
        struct termios raw = saved;
        raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
        raw.c_cc[VMIN] = 0;
        raw.c_cc[VTIME] = 0;
        tcsetattr(STDIN_FILENO, TCSANOW, &raw);
    } else {
        keys = false;
    }
    struct sigaction sa = {.sa_handler = vs_top_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    struct vs_changes changes = {.n = 0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    vs_frame(stdout, tty, pid, was, 0, 0, &changes);
    int rc = 0;
    for (long shown = 1; !vs_top_stop && (!frames || shown < frames); shown++) {
        if (vs_top_wait(keys, (int)(interval * 1000)))
            break;
        if (vs_top_stop)
            break;
        json_t *now = vs_top_status(pid);
        if (!now) {
            fprintf(stderr, "vramshim top: process %ld is gone\n", pid);
            break;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double dt = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        t0 = t1;
        vs_diff(&changes, was, now);
        double allocs = (double)(vs_calls(now, "alloc", "alloc_async") -
                                 vs_calls(was, "alloc", "alloc_async")) / (dt > 0 ? dt : 1);
        double frees = (double)(vs_calls(now, "free", "free_async") -
                                vs_calls(was, "free", "free_async")) / (dt > 0 ? dt : 1);
        vs_frame(stdout, tty, pid, now, allocs, frees, &changes);
        json_decref(was);
        was = now;
    }
    json_decref(was);
    if (keys)
        tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    return rc;
}
