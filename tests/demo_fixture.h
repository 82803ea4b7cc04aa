/* Shared by the demo tests (test_demo_*.c): running a shell command with stdout and stderr kept
 * apart, and its last stdout line as JSON. The demo programs run on simcuda from this build. */
#ifndef VS_TESTS_DEMO_FIXTURE_H
#define VS_TESTS_DEMO_FIXTURE_H

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define DM_CLI VS_BUILD_DIR "/vramshim"
#define DM_PROGS VS_BUILD_DIR "/demo"
/* The simulated driver, as `vramshim demo` sets it up (the seed's GPU is set per test). */
#define DM_SIM "LD_LIBRARY_PATH=" VS_BUILD_DIR "/sim "

struct dm_run {
    int status;
    char out[1 << 17], err[1 << 16];
    json_t *last; /* the last stdout line, when it is a JSON object */
};

static inline void dm_slurp(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "r");
    size_t got = f ? fread(buf, 1, n - 1, f) : 0;
    buf[got] = '\0';
    if (f)
        fclose(f);
    unlink(path);
}

/* Runs the formatted shell command; fills r (free r->last with json_decref). */
static inline void dm_sh(struct dm_run *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline void dm_sh(struct dm_run *r, const char *fmt, ...)
{
    char cmd[8192], out_path[] = "/tmp/vs_dm_out_XXXXXX", err_path[] = "/tmp/vs_dm_err_XXXXXX";
    int o = mkstemp(out_path), e = mkstemp(err_path);
    cr_assert(o >= 0 && e >= 0);
    close(o);
    close(e);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd - 64, fmt, ap);
    va_end(ap);
    cr_assert(n > 0 && (size_t)n < sizeof cmd - 64);
    snprintf(cmd + n, sizeof cmd - (size_t)n, " >%s 2>%s", out_path, err_path);
    int st = system(cmd);
    cr_assert(WIFEXITED(st), "%s did not exit normally", cmd);
    r->status = WEXITSTATUS(st);
    dm_slurp(out_path, r->out, sizeof r->out);
    dm_slurp(err_path, r->err, sizeof r->err);
    char *line = r->out, *last = NULL;
    for (char *nl; (nl = strchr(line, '\n')); line = nl + 1)
        if (nl > line)
            last = line;
    r->last = last ? json_loadb(last, (size_t)(strchr(last, '\n') - last), 0, NULL) : NULL;
    if (r->last && !json_is_object(r->last)) {
        json_decref(r->last);
        r->last = NULL;
    }
}

/* The value at a dotted path ("baseline.completed"), or NULL. */
static inline json_t *dm_get(const json_t *o, const char *path)
{
    char key[64];
    const json_t *at = o;
    for (const char *p = path; at && *p;) {
        size_t n = strcspn(p, ".");
        snprintf(key, sizeof key, "%.*s", (int)n, p);
        at = json_object_get(at, key);
        p += n + (p[n] == '.');
    }
    return (json_t *)at;
}

static inline const char *dm_str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "(null)";
}

#endif
