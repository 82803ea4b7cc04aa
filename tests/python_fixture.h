/* Helpers of the Python tests (tests/test_python_*.c): run `vramshim run` and Python programs
 * of tests/progs on simcuda (interpose_harness.h's vs_run), and find lines in Python sources.
 *
 * The interpreter is $VS_PYTHON when set, else python3 on PATH, so the same tests cover the
 * function-wrapper hook (Python <= 3.11) and sys.monitoring (3.12+):
 * `VS_PYTHON=python3.12 tests/run.sh BUILD python`.
 */
#ifndef VS_TESTS_PYTHON_FIXTURE_H
#define VS_TESTS_PYTHON_FIXTURE_H

#include "interpose_harness.h"

#define VS_CLI VS_BUILD_DIR "/vramshim"
#define VS_PYPROG(name) VS_SOURCE_DIR "/tests/progs/" name

static inline const char *vs_python(void)
{
    const char *p = getenv("VS_PYTHON");
    return p && *p ? p : "python3";
}

/* Whether the interpreter is Python 3.12 or later (the sys.monitoring hook). */
static inline int vs_python_has_monitoring(void)
{
    const char *argv[] = {vs_python(), "-c",
                          "import sys; print(int(sys.version_info >= (3, 12)))", NULL};
    struct vs_run r = vs_run(argv, 0, NULL);
    cr_assert_eq(r.status, 0, "%s does not run: %s", vs_python(), r.raw_err);
    int yes = r.out[0] == '1';
    vs_run_free(&r);
    return yes;
}

/* The interpreter of the cached test environment for Python `version` ("3.11", "3.12"), with
 * torch, diffusers, transformers and accelerate (tools/pyenv.sh; `make test` creates it), as a
 * string to free; NULL, after one line on stderr saying why, when there is none. */
static inline char *vs_pyenv_python(const char *version)
{
    /* `make asan` sets it: PyTorch in a Python process under the ASan shim is not what that run
     * checks (Python and torch are not instrumented), and criterion's workers hang there. */
    const char *skip = getenv("VS_PYENV_SKIP");
    if (skip && *skip) {
        fprintf(stderr, "%s: skipped on Python %s: %s\n", criterion_current_test->name, version,
                skip);
        return NULL;
    }
    const char *argv[] = {VS_SOURCE_DIR "/tools/pyenv.sh", "path", version, NULL};
    struct vs_run r = vs_run(argv, 0, NULL);
    char *path = NULL;
    if (r.status == 0) {
        path = strdup(r.out);
        path[strcspn(path, "\n")] = '\0';
    } else {
        fprintf(stderr, "%s: skipped on Python %s: %s", criterion_current_test->name, version,
                r.out);
    }
    vs_run_free(&r);
    return path;
}

/* Runs check(python, version) with the environment of each Python version (3.11: function
 * wrappers, 3.12: sys.monitoring) that has one. */
static inline void vs_each_pyenv(void (*check)(const char *python, const char *version))
{
    static const char *const versions[] = {"3.11", "3.12"};
    for (size_t i = 0; i < sizeof versions / sizeof *versions; i++) {
        char *python = vs_pyenv_python(versions[i]);
        if (python)
            check(python, versions[i]);
        free(python);
    }
}

/* 1-based number of the line of `file` containing `mark`; fails the test when there is none. */
static inline int vs_line_of(const char *file, const char *mark)
{
    char *text = vs_slurp(file);
    cr_assert(text, "cannot read %s", file);
    const char *at = strstr(text, mark);
    cr_assert(at, "%s has no line with %s", file, mark);
    int line = 1;
    for (const char *c = text; c < at; c++)
        line += *c == '\n';
    free(text);
    return line;
}

/* Whether any "site" line of the trace has the frame "py:FILE:LINE:QUALNAME" (or, before
 * Python 3.11, which has no co_qualname, the same with the last component of QUALNAME). */
static inline int vs_trace_has_py_frame(const struct vs_trace *t, const char *file, int line,
                                        const char *qualname)
{
    const char *dot = strrchr(qualname, '.');
    char want[1024], want_short[1024];
    snprintf(want, sizeof want, "py:%s:%d:%s", file, line, qualname);
    snprintf(want_short, sizeof want_short, "py:%s:%d:%s", file, line, dot ? dot + 1 : qualname);
    for (size_t i = 1; i < t->n; i++) {
        if (strcmp(vs_str(t->lines[i], "ev"), "site") != 0)
            continue;
        json_t *frames = json_object_get(t->lines[i], "frames");
        for (size_t k = 0; k < json_array_size(frames); k++) {
            const char *f = json_string_value(json_array_get(frames, k));
            if (f && (!strcmp(f, want) || !strcmp(f, want_short)))
                return 1;
        }
    }
    return 0;
}

/* Number of "py:" frames in all site lines of the trace. */
static inline int vs_trace_py_frames(const struct vs_trace *t)
{
    int n = 0;
    for (size_t i = 1; i < t->n; i++) {
        json_t *frames = json_object_get(t->lines[i], "frames");
        for (size_t k = 0; k < json_array_size(frames); k++)
            n += !strncmp(json_string_value(json_array_get(frames, k)), "py:", 3);
    }
    return n;
}

#endif
