/* `vramshim ctl --ledger [--json]`: the peers of every GPU's ledger (allocator/ledger.h) in the
 * user's ledger directory: who runs under the shim on which GPU, what each holds and would lend.
 * Reading a ledger also drops the entries of processes that are gone, as every ledger
 * operation does. Exit status: 0, 1 when a ledger was refused or could not be read (its
 * `vramshim: ledger ...` line is printed; the other GPUs are still listed), 2 bad usage. */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "allocator/ledger.h"
#include "tools/cli/ctl_client.h"
#include "tools/trace/units.h"

/* What a peer wrote, made printable: the ledger checks that strings end, not what they hold. */
const char *vs_ledger_printable(const char *s, char *buf, size_t len)
{
    size_t i = 0;
    for (; s[i] && i + 1 < len; i++)
        buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
    buf[i] = '\0';
    return buf;
}

/* Seconds since the entry's last update; negative when it claims to be from the future. */
static double age_s(const struct vs_ledger_entry *e, const struct timespec *now)
{
    double t = (double)now->tv_sec + now->tv_nsec / 1e9;
    return t - (double)e->updated_ns / 1e9;
}

static void print_text(const char *uuid, const char *path, const struct vs_ledger_entry *v,
                       size_t n, const struct timespec *now)
{
    printf("%s (%s): %zu process%s\n", uuid, path, n, n == 1 ? "" : "es");
    if (!n)
        return;
    printf("  %8s  %-16s %10s %10s %10s %10s %9s  %s\n", "PID", "STAGE", "LIVE", "CACHED",
           "DEMOTED", "LENDABLE", "UPDATED", "SOCKET");
    for (size_t i = 0; i < n; i++) {
        const struct vs_ledger_entry *e = &v[i];
        char st[VS_LEDGER_STAGE_LEN], so[VS_LEDGER_SOCKET_LEN], b[4][32], age[32];
        double a = age_s(e, now);
        if (a < 0)
            snprintf(age, sizeof age, "future");
        else
            snprintf(age, sizeof age, "%.1fs ago", a);
        printf("  %8d  %-16s %10s %10s %10s %10s %9s  %s\n", (int)e->pid,
               e->stage[0] ? vs_ledger_printable(e->stage, st, sizeof st) : "-",
               vs_size_format(e->live, b[0], sizeof b[0]),
               vs_size_format(e->cached, b[1], sizeof b[1]),
               vs_size_format(e->demoted, b[2], sizeof b[2]),
               vs_size_format(e->lendable, b[3], sizeof b[3]), age,
               e->socket[0] ? vs_ledger_printable(e->socket, so, sizeof so) : "-");
    }
}

static json_t *json_gpu(const char *uuid, const char *path, const struct vs_ledger_entry *v,
                        size_t n, const struct timespec *now)
{
    json_t *g = json_object(), *procs = json_array();
    json_object_set_new(g, "uuid", json_string(uuid));
    json_object_set_new(g, "path", json_string(path));
    for (size_t i = 0; i < n; i++) {
        const struct vs_ledger_entry *e = &v[i];
        char st[VS_LEDGER_STAGE_LEN], so[VS_LEDGER_SOCKET_LEN];
        json_t *p = json_object();
        json_object_set_new(p, "pid", json_integer(e->pid));
        json_object_set_new(p, "stage",
                            e->stage[0] ? json_string(vs_ledger_printable(e->stage, st, sizeof st))
                                        : json_null());
        json_object_set_new(p, "live_bytes", json_integer((json_int_t)e->live));
        json_object_set_new(p, "cached_bytes", json_integer((json_int_t)e->cached));
        json_object_set_new(p, "demoted_bytes", json_integer((json_int_t)e->demoted));
        json_object_set_new(p, "lendable_bytes", json_integer((json_int_t)e->lendable));
        json_object_set_new(p, "updated_age_s", json_real(age_s(e, now)));
        const char *sock = e->socket[0] ? vs_ledger_printable(e->socket, so, sizeof so) : NULL;
        json_object_set_new(p, "socket", sock ? json_string(sock) : json_null());
        json_array_append_new(procs, p);
    }
    json_object_set_new(g, "processes", procs);
    return g;
}

int vs_ledger_walk(vs_ledger_fn fn, void *ctx, char *dir, size_t dirlen, bool *failed)
{
    *failed = false;
    if (vs_ledger_dir(dir, dirlen) != 0) {
        fprintf(stderr, "vramshim: ledger directory %s: %s\n", dir, strerror(errno));
        return -1;
    }
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "vramshim: ledger directory %s: %s\n", dir, strerror(errno));
        return -1;
    }
    int found = 0;
    static struct vs_ledger_entry v[VS_LEDGER_ENTRIES];
    for (struct dirent *de; (de = readdir(d));) {
        size_t len = strlen(de->d_name);
        static const char pre[] = "gpu-", suf[] = ".ledger";
        if (len <= sizeof pre - 1 + sizeof suf - 1 || strncmp(de->d_name, pre, sizeof pre - 1) ||
            strcmp(de->d_name + len - (sizeof suf - 1), suf))
            continue;
        char uuid[256];
        snprintf(uuid, sizeof uuid, "%.*s", (int)(len - (sizeof pre - 1) - (sizeof suf - 1)),
                 de->d_name + sizeof pre - 1);
        found++;
        char err[512];
        struct vs_ledger *l = vs_ledger_open(dir, uuid, 0, err, sizeof err);
        int n = l ? vs_ledger_list(l, v, VS_LEDGER_ENTRIES) : -1;
        n = n > VS_LEDGER_ENTRIES ? VS_LEDGER_ENTRIES : n;
        if (n < 0) {
            fprintf(stderr, "%s\n", l ? vs_ledger_error(l) : err);
            *failed = true;
        } else {
            fn(ctx, uuid, vs_ledger_path(l), v, (size_t)n);
        }
        vs_ledger_close(l);
    }
    closedir(d);
    return found;
}

struct listing {
    json_t *gpus; /* NULL: text */
    struct timespec now;
};

static void list_gpu(void *ctx, const char *uuid, const char *path,
                     const struct vs_ledger_entry *v, size_t n)
{
    struct listing *li = ctx;
    if (li->gpus)
        json_array_append_new(li->gpus, json_gpu(uuid, path, v, n, &li->now));
    else
        print_text(uuid, path, v, n, &li->now);
}

int vs_ctl_ledger(int argc, char **argv)
{
    bool json = false;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = true;
        else if (strcmp(argv[i], "--ledger")) {
            fprintf(stderr, "vramshim ctl: --ledger takes only --json, not '%s'\n", argv[i]);
            return 2;
        }
    }
    struct listing li = {.gpus = json ? json_array() : NULL};
    clock_gettime(CLOCK_REALTIME, &li.now);
    char dir[4096];
    bool failed;
    int found = vs_ledger_walk(list_gpu, &li, dir, sizeof dir, &failed);
    if (found < 0) {
        json_decref(li.gpus);
        return 1;
    }
    if (json) {
        json_t *o = json_pack("{s:s, s:o}", "dir", dir, "gpus", li.gpus);
        char *s = json_dumps(o, JSON_INDENT(2));
        printf("%s\n", s ? s : "null");
        free(s);
        json_decref(o);
    } else if (!found) {
        printf("no ledger in %s: no process of this user runs under vramshim with lending\n",
               dir);
    }
    return failed ? 1 : 0;
}
