/* Helpers of the interposer tests (tests/test_interpose_*.c): run a program from
 * build/tests/progs with or without the shim preloaded, capture its output, read its trace.
 *
 * Programs run with LD_LIBRARY_PATH=<build>/sim, so the driver they load is simcuda, and with
 * LD_PRELOAD=<build>/libvramshim.so when `shim` is set. Extra environment entries ("NAME=value")
 * are added to the test's own environment.
 */
#ifndef VS_TESTS_INTERPOSE_HARNESS_H
#define VS_TESTS_INTERPOSE_HARNESS_H

#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define VS_SHIM VS_BUILD_DIR "/libvramshim.so"
#define VS_PROG(name) VS_BUILD_DIR "/tests/progs/" name

struct vs_run {
    int status; /* exit status, or 128 + signal */
    char *out;
    char *err; /* only the "vramshim:" lines of stderr */
    char *raw_err;
};

static inline char *vs_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t k;
    while (buf && (k = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += k;
        if (n + 1 == cap)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    if (buf)
        buf[n] = 0;
    return buf;
}

/* The "vramshim:" lines of a program's stderr (a tool wrapping the program, such as valgrind
 * in `make valgrind`, may add its own lines). */
static inline char *vs_shim_lines(const char *err)
{
    char *out = calloc(1, strlen(err) + 1);
    cr_assert(out);
    for (const char *line = err; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line + 1) : strlen(line);
        if (strncmp(line, "vramshim:", 9) == 0)
            strncat(out, line, len);
        line += len;
    }
    return out;
}

/* Runs argv[0] with argv; env: NULL-terminated "NAME=value" additions. */
static inline struct vs_run vs_run(const char *const *argv, int shim, const char *const *env)
{
    char out_path[] = "/tmp/vs_interpose_outXXXXXX", err_path[] = "/tmp/vs_interpose_errXXXXXX";
    int out = mkstemp(out_path), err = mkstemp(err_path);
    cr_assert(out >= 0 && err >= 0, "cannot create capture files");
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork failed");
    if (pid == 0) {
        dup2(out, 1);
        dup2(err, 2);
        setenv("LD_LIBRARY_PATH", VS_BUILD_DIR "/sim", 1);
        if (shim)
            setenv("LD_PRELOAD", VS_SHIM, 1);
        else
            unsetenv("LD_PRELOAD");
        for (; env && *env; env++)
            putenv((char *)*env);
        execv(argv[0], (char *const *)argv);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    int status;
    cr_assert(waitpid(pid, &status, 0) == pid);
    struct vs_run r = {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
                       vs_slurp(out_path), NULL, vs_slurp(err_path)};
    close(out);
    close(err);
    unlink(out_path);
    unlink(err_path);
    cr_assert(r.out && r.raw_err, "cannot read the captured output");
    r.err = vs_shim_lines(r.raw_err);
    return r;
}

static inline struct vs_run vs_run_prog(const char *prog, int shim, const char *const *env)
{
    const char *argv[] = {prog, NULL};
    return vs_run(argv, shim, env);
}

static inline void vs_run_free(struct vs_run *r)
{
    free(r->out);
    free(r->err);
    free(r->raw_err);
}

/* The number N of the output line "<kind> <name> N" ("called" or "count"); -1 when absent. */
static inline long vs_output_number(const char *out, const char *kind, const char *name)
{
    char key[256];
    snprintf(key, sizeof key, "%s %s ", kind, name);
    for (const char *line = out; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (strncmp(line, key, strlen(key)) == 0)
            return atol(line + strlen(key));
    return -1;
}

/* A trace file, one parsed JSON object per line (lines[0] is the header). */
struct vs_trace {
    json_t **lines;
    size_t n;
};

/* Parses every line; any line that is not a JSON object fails the test with its number. */
static inline struct vs_trace vs_trace_load(const char *path)
{
    FILE *f = fopen(path, "r");
    cr_assert(f, "no trace file %s", path);
    struct vs_trace t = {NULL, 0};
    size_t cap = 0;
    char *line = NULL;
    size_t len = 0;
    ssize_t k;
    while ((k = getline(&line, &len, f)) > 0) {
        json_error_t jerr;
        json_t *j = json_loads(line, 0, &jerr);
        cr_assert(j && json_is_object(j), "%s:%zu: not a JSON object (%s): %s", path, t.n + 1,
                  jerr.text, line);
        if (t.n == cap)
            t.lines = realloc(t.lines, (cap = cap ? cap * 2 : 1024) * sizeof *t.lines);
        t.lines[t.n++] = j;
    }
    free(line);
    fclose(f);
    cr_assert(t.n >= 1, "%s is empty", path);
    cr_assert(json_integer_value(json_object_get(t.lines[0], "vramshim_trace")) == 1,
              "%s: first line is not a trace header", path);
    return t;
}

static inline void vs_trace_free(struct vs_trace *t)
{
    for (size_t i = 0; i < t->n; i++)
        json_decref(t->lines[i]);
    free(t->lines);
}

static inline const char *vs_str(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

/* Events of kind ev (alloc, free, ...) whose api is `api` (any api when NULL). */
static inline long vs_trace_count(const struct vs_trace *t, const char *ev, const char *api)
{
    long n = 0;
    for (size_t i = 1; i < t->n; i++)
        if (strcmp(vs_str(t->lines[i], "ev"), ev) == 0 &&
            (!api || strcmp(vs_str(t->lines[i], "api"), api) == 0))
            n++;
    return n;
}

/* A fresh path for a trace file (not created). */
static inline void vs_trace_path(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "/tmp/vs_trace_%s_%d.jsonl", name, (int)getpid());
    unlink(buf);
}

/* Asserts that for every "called NAME N" line of a program's output the driver counted exactly
 * N calls of NAME: the shim forwarded each call once, never twice, never to another entry point. */
static inline void vs_assert_driver_saw_each_call_once(const char *out)
{
    int lines = 0;
    for (const char *line = out; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        char name[128];
        long n;
        if (sscanf(line, "called %127s %ld", name, &n) != 2)
            continue;
        lines++;
        cr_expect_eq(vs_output_number(out, "count", name), n,
                     "%s: the driver saw %ld calls, the program made %ld", name,
                     vs_output_number(out, "count", name), n);
    }
    cr_assert(lines > 0, "the program reported no calls:\n%s", out);
}

#endif
