/* Shared set-up of the trace, workload and replay tests: they exercise the `vramshim` CLI the
 * way users do, so each runs BUILD/vramshim in a child and looks at its exit status, stdout and
 * stderr. Input files go to a fresh temporary directory per test process.
 */
#ifndef REPLAY_FIXTURE_H
#define REPLAY_FIXTURE_H

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define FX_CLI VS_BUILD_DIR "/vramshim"
#define FX_WORKLOADS VS_SOURCE_DIR "/tests/workloads"

struct fx_run {
    int status; /* exit status, or 128 + signal */
    char *out, *err;
};

static char fx_dir[256];

/* The per-process scratch directory, created on first use. */
static inline const char *fx_tmpdir(void)
{
    if (!fx_dir[0]) {
        snprintf(fx_dir, sizeof fx_dir, "/tmp/vs-replay-test-XXXXXX");
        cr_assert_not_null(mkdtemp(fx_dir));
    }
    return fx_dir;
}

/* Path of NAME in the scratch directory (static buffer per call site is the caller's). */
static inline char *fx_path(const char *name)
{
    char *p = malloc(512);
    snprintf(p, 512, "%s/%s", fx_tmpdir(), name);
    return p;
}

/* Writes text to NAME in the scratch directory and returns its path (caller frees). */
static inline char *fx_write(const char *name, const char *text)
{
    char *p = fx_path(name);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f, "cannot write %s", p);
    fputs(text, f);
    fclose(f);
    return p;
}

static inline char *fx_slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return strdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    buf[got] = '\0';
    fclose(f);
    return buf;
}

/* Runs `vramshim ARGS` (ARGS formatted, split by the shell) and captures everything. */
__attribute__((format(printf, 1, 2))) static inline struct fx_run fx_cli(const char *fmt, ...)
{
    char args[2048], cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    char *out = fx_path("stdout"), *err = fx_path("stderr");
    snprintf(cmd, sizeof cmd, "%s %s >%s 2>%s", FX_CLI, args, out, err);
    int st = system(cmd);
    struct fx_run r = {
        .status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st),
        .out = fx_slurp(out),
        .err = fx_slurp(err),
    };
    free(out);
    free(err);
    return r;
}

static inline void fx_run_free(struct fx_run *r);

/* Parses text as JSON (the test fails when it is not). */
static inline json_t *fx_json(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    cr_assert_not_null(j, "not JSON (%s): %s", e.text, text);
    return j;
}

/* The integer at key of o (the test fails when there is none). */
static inline json_int_t fx_jint(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    cr_assert(json_is_integer(v), "%s is not an integer", key);
    return json_integer_value(v);
}

/* Runs `vramshim ARGS`, expects exit status `want` and returns its stdout as JSON. */
__attribute__((format(printf, 2, 3))) static inline json_t *fx_cli_json(int want,
                                                                         const char *fmt, ...)
{
    char args[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    struct fx_run r = fx_cli("%s", args);
    cr_assert_eq(r.status, want, "vramshim %s: status %d: %s", args, r.status, r.err);
    json_t *j = fx_json(r.out);
    fx_run_free(&r);
    return j;
}

/* Runs `vramshim demo` for the Wan 2.1 scenario into the scratch folder: its traces are
 * fx_tmpdir()/demo/wan21-t2v-1.3b.passthrough.jsonl (dies of OOM) and ....vramshim.jsonl. */
static inline void fx_demo_wan(void)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s demo --scenario wan21-t2v-1.3b --out %s/demo >/dev/null 2>&1",
             FX_CLI, fx_tmpdir());
    cr_assert_eq(system(cmd), 0, "vramshim demo failed");
}

/* Suite .fini: removes the scratch directory. */
static inline void fx_cleanup(void)
{
    if (!fx_dir[0])
        return;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx_dir);
    cr_expect_eq(system(cmd), 0);
    fx_dir[0] = '\0';
}

static inline void fx_run_free(struct fx_run *r)
{
    free(r->out);
    free(r->err);
}

/* Expects `vramshim replay PATH --vram 1GiB` to fail with exit status 2, nothing on stdout and
 * exactly "vramshim replay: PATH" MSG on stderr (MSG starts with ':'). */
static inline void fx_expect_replay_refused(const char *path, const char *msg)
{
    struct fx_run r = fx_cli("replay %s --vram 1GiB", path);
    char want[1024];
    snprintf(want, sizeof want, "vramshim replay: %s%s\n", path, msg);
    cr_expect_eq(r.status, 2, "exit status %d, stderr: %s", r.status, r.err);
    cr_expect_str_eq(r.err, want);
    cr_expect_str_empty(r.out);
    fx_run_free(&r);
}

#endif
