/* Every committed fuzz input (tests/fuzz/corpus/NAME: seeds; tests/fuzz/regress/NAME: inputs
 * that once crashed, hung or leaked) replayed through its harness built without libFuzzer
 * (BUILD/fuzz/fuzz_NAME, main from tests/fuzz/replay.c). Under `make asan` the harnesses are
 * sanitized too, so an input that once overflowed a buffer fails here again if the bug returns. */
#include <criterion/criterion.h>
#include <glob.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#define FUZZ_SRC VS_SOURCE_DIR "/tests/fuzz/"

/* Runs harness `name` on every file under FUZZ_SRC/dir/name; returns how many it ran. */
static size_t replay(const char *name, const char *dir)
{
    char pattern[512];
    snprintf(pattern, sizeof pattern, FUZZ_SRC "%s/%s/*", dir, name);
    glob_t g;
    if (glob(pattern, 0, NULL, &g))
        return 0;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        char cmd[1536];
        snprintf(cmd, sizeof cmd, VS_BUILD_DIR "/fuzz/fuzz_%s '%s' 2>&1", name, g.gl_pathv[i]);
        FILE *p = popen(cmd, "r");
        cr_assert(p);
        char out[4096];
        size_t n = fread(out, 1, sizeof out - 1, p);
        out[n] = 0;
        int st = pclose(p);
        cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "fuzz_%s failed on %s:\n%s", name,
                  g.gl_pathv[i], out);
    }
    size_t n = g.gl_pathc;
    globfree(&g);
    return n;
}

Test(fuzz_inputs, every_seed_and_regression_input_runs_clean)
{
    glob_t g;
    cr_assert_eq(glob(FUZZ_SRC "fuzz_*.c", 0, NULL, &g), 0, "no harness in " FUZZ_SRC);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        char name[128];
        const char *base = strrchr(g.gl_pathv[i], '/') + strlen("/fuzz_");
        snprintf(name, sizeof name, "%.*s", (int)(strlen(base) - 2), base);
        size_t seeds = replay(name, "corpus");
        replay(name, "regress");
        cr_expect_gt(seeds, 0, "harness fuzz_%s has no seed corpus in " FUZZ_SRC "corpus/%s", name,
                     name);
    }
    globfree(&g);
}
