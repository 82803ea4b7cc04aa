/* Helpers of the stage and control-socket tests (tests/test_stages_*.c, tests/test_ctl_*.c):
 * policy files in /tmp, the "rc NAME VALUE" and "stats JSON" lines the stage programs print, and
 * the stage/alloc events of their traces. Runs programs through interpose_harness.h. */
#ifndef VS_TESTS_STAGES_FIXTURE_H
#define VS_TESTS_STAGES_FIXTURE_H

#include "interpose_harness.h"

#define MiB (1024 * 1024)

/* Writes text to a fresh file /tmp/vs_stages_NAME_PID.ini; returns its path (static buffer
 * per call site: copy it when keeping two). */
static inline const char *vs_write_policy(char *path, size_t len, const char *name,
                                          const char *text)
{
    snprintf(path, len, "/tmp/vs_stages_%s_%d.ini", name, (int)getpid());
    FILE *f = fopen(path, "w");
    cr_assert(f, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
    return path;
}

/* The value of the program's line "rc NAME VALUE"; fails the test when absent. */
static inline long vs_rc(const char *out, const char *name)
{
    char key[128];
    snprintf(key, sizeof key, "rc %s ", name);
    const char *p = strstr(out, key);
    cr_assert(p, "no line '%s' in the output:\n%s", key, out);
    return atol(p + strlen(key));
}

/* The n-th (from 0) "stats JSON" line, parsed; fails the test when absent or not JSON. */
static inline json_t *vs_stats_line(const char *out, int n)
{
    const char *p = out;
    for (int i = 0; p && i <= n; i++) {
        p = strstr(p, "stats ");
        cr_assert(p, "fewer than %d stats lines in:\n%s", n + 1, out);
        if (i < n)
            p++;
    }
    const char *end = strchr(p, '\n');
    json_error_t err;
    json_t *j = json_loadb(p + 6, end ? (size_t)(end - p - 6) : strlen(p + 6), 0, &err);
    cr_assert(json_is_object(j), "stats line is not a JSON object (%s): %s", err.text, p);
    return j;
}

/* stats.KIND.NAME.live_bytes (KIND "stages" or "tags"); -1 when NAME is not listed. */
static inline long long vs_usage(json_t *stats, const char *kind, const char *name,
                                 const char *field)
{
    json_t *u = json_object_get(json_object_get(stats, kind), name);
    return u ? json_integer_value(json_object_get(u, field)) : -1;
}

/* The trace's stage events as "begin:NAME:API end:NAME:API ..." (one space-separated string). */
static inline void vs_stage_events(const struct vs_trace *t, char *buf, size_t len)
{
    buf[0] = 0;
    for (size_t i = 1; i < t->n; i++) {
        if (strcmp(vs_str(t->lines[i], "ev"), "stage") != 0)
            continue;
        size_t k = strlen(buf);
        snprintf(buf + k, len - k, "%s%s:%s:%s", k ? " " : "", vs_str(t->lines[i], "action"),
                 vs_str(t->lines[i], "stage"), vs_str(t->lines[i], "api"));
    }
}

/* The trace's alloc events as "SIZE/STAGE/TAG ..." in order. */
static inline void vs_alloc_events(const struct vs_trace *t, char *buf, size_t len)
{
    buf[0] = 0;
    for (size_t i = 1; i < t->n; i++) {
        if (strcmp(vs_str(t->lines[i], "ev"), "alloc") != 0)
            continue;
        size_t k = strlen(buf);
        snprintf(buf + k, len - k, "%s%lld/%s/%s", k ? " " : "",
                 (long long)json_integer_value(json_object_get(t->lines[i], "size")),
                 vs_str(t->lines[i], "stage"), vs_str(t->lines[i], "tag"));
    }
}

#endif
