/* A stand-in for <criterion/criterion.h> under ThreadSanitizer (`make tsan`).
 *
 * Criterion cannot start in a TSan process: its sandbox library maps its "inheritable arena" at
 * a random address in a range it expects free and gives up when every try lands on memory
 * already mapped, which under TSan is all of it (TSan reserves the shadow and meta ranges at
 * start-up): "Could not initialize inheritable arena: Resource temporarily unavailable". So
 * `make tsan` compiles the threaded tests against this header instead (tests/tsan comes first
 * on the include path): the same Test() bodies and assertions, each test run in a forked child,
 * one at a time, with the summary line tests/run.sh reads. Only what those tests use is here.
 */
#ifndef VS_TSAN_CRITERION_H
#define VS_TSAN_CRITERION_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct vs_mini_test {
    const char *suite, *name;
    void (*fn)(void);
    void (*init)(void);
    void (*fini)(void);
    double timeout;
    struct vs_mini_test *next;
};
struct vs_mini_opts {
    void (*init)(void);
    void (*fini)(void);
    double timeout;
};

static struct vs_mini_test *vs_mini_tests;
static bool vs_mini_expect_failed; /* a cr_expect failed: the test fails when it ends */

#define Test(suite, name, ...)                                                            \
    static void suite##_##name(void);                                                     \
    __attribute__((constructor)) static void suite##_##name##_reg(void)                   \
    {                                                                                     \
        static struct vs_mini_test t;                                                     \
        struct vs_mini_opts o = {__VA_ARGS__};                                            \
        t = (struct vs_mini_test){#suite, #name, suite##_##name, o.init, o.fini,          \
                                  o.timeout, vs_mini_tests};                              \
        vs_mini_tests = &t;                                                               \
    }                                                                                     \
    static void suite##_##name(void)

/* An assertion without a message has an empty format. */
#pragma GCC diagnostic ignored "-Wformat-zero-length"
static inline void vs_mini_fail(const char *file, int line, bool fatal, const char *cond,
                                const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static inline void vs_mini_fail(const char *file, int line, bool fatal, const char *cond,
                                const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[----] %s:%d: Assertion Failed (%s)\n[----]   ", file, line, cond);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (fatal)
        _exit(1);
    vs_mini_expect_failed = true;
}

/* The message arguments are optional, as in criterion. */
#define VS_MINI_CHECK(fatal, cond, ...)                                                   \
    do {                                                                                  \
        if (!(cond))                                                                      \
            vs_mini_fail(__FILE__, __LINE__, fatal, #cond, "" __VA_ARGS__);               \
    } while (0)

#define cr_assert(c, ...) VS_MINI_CHECK(true, (c), __VA_ARGS__)
#define cr_expect(c, ...) VS_MINI_CHECK(false, (c), __VA_ARGS__)
#define cr_assert_eq(a, b, ...) cr_assert((a) == (b), __VA_ARGS__)
#define cr_assert_neq(a, b, ...) cr_assert((a) != (b), __VA_ARGS__)
#define cr_assert_gt(a, b, ...) cr_assert((a) > (b), __VA_ARGS__)
#define cr_assert_geq(a, b, ...) cr_assert((a) >= (b), __VA_ARGS__)
#define cr_assert_lt(a, b, ...) cr_assert((a) < (b), __VA_ARGS__)
#define cr_assert_leq(a, b, ...) cr_assert((a) <= (b), __VA_ARGS__)
#define cr_assert_null(a, ...) cr_assert((a) == NULL, __VA_ARGS__)
#define cr_assert_not_null(a, ...) cr_assert((a) != NULL, __VA_ARGS__)
#define cr_expect_eq(a, b, ...) cr_expect((a) == (b), __VA_ARGS__)
#define cr_expect_gt(a, b, ...) cr_expect((a) > (b), __VA_ARGS__)
#define cr_expect_str_empty(s, ...) cr_expect(!*(s), __VA_ARGS__)

/* Runs every test in its own child, in registration order reversed back to file order. */
int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    struct vs_mini_test *order = NULL;
    for (struct vs_mini_test *t = vs_mini_tests, *n; t; t = n) {
        n = t->next;
        t->next = order;
        order = t;
    }
    int tested = 0, passed = 0, failed = 0, crashed = 0;
    for (struct vs_mini_test *t = order; t; t = t->next) {
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            if (t->init)
                t->init();
            t->fn();
            if (t->fini)
                t->fini();
            fflush(NULL);
            _exit(vs_mini_expect_failed);
        }
        int st = 0;
        waitpid(pid, &st, 0);
        tested++;
        bool ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
        passed += ok;
        failed += WIFEXITED(st) && !ok;
        crashed += !WIFEXITED(st);
        printf("[%s] %s::%s\n", ok ? "PASS" : WIFEXITED(st) ? "FAIL" : "CRASH", t->suite,
               t->name);
    }
    printf("[====] Synthesis: Tested: %d | Passing: %d | Failing: %d | Crashing: %d \n", tested,
           passed, failed, crashed);
    return failed || crashed;
}

#endif
