/* Files that are not regular where the shim or the CLI expects one: a FIFO (or a directory) as
 * VRAMSHIM_POLICY, as VRAMSHIM_TRACE, or given to `vramshim policy check`, is refused with one
 * precise line and never blocks the program. A trace goes into a FIFO only when asked for with
 * VRAMSHIM_TRACE=fifo:PATH, and only while its reader runs. */
#include <fcntl.h>
#include <sys/stat.h>

#include "interpose_harness.h"

#define PROG VS_PROG("interpose_direct_linked")

static char dir[64], fifo[128];

static void make_fifo(void)
{
    strcpy(dir, "/tmp/vs_nonregular_XXXXXX");
    cr_assert(mkdtemp(dir));
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
}

static void cleanup(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

/* A blocked open would hang the program: the timeout turns that into a failure. */
TestSuite(nonregular, .init = make_fifo, .fini = cleanup, .timeout = 60);

static struct vs_run run_with(const char *var, const char *value)
{
    char env_var[300];
    snprintf(env_var, sizeof env_var, "%s=%s", var, value);
    const char *env[] = {env_var, "VRAMSHIM_MODE=passthrough", "VRAMSHIM_TRACE_STACKS=0", NULL};
    struct vs_run r = vs_run_prog(PROG, 1, env);
    cr_expect_eq(r.status, 0, "exit %d\n%s%s", r.status, r.out, r.raw_err);
    return r;
}

Test(nonregular, fifo_as_policy_is_refused)
{
    struct vs_run r = run_with("VRAMSHIM_POLICY", fifo);
    char want[512];
    snprintf(want, sizeof want, "vramshim: %s: is a FIFO, not a regular file\n", fifo);
    cr_expect(strstr(r.err, want), "no line '%s' in:\n%s", want, r.err);
    vs_run_free(&r);
    r = run_with("VRAMSHIM_POLICY", dir);
    snprintf(want, sizeof want, "vramshim: %s: is a directory\n", dir);
    cr_expect(strstr(r.err, want), "no line '%s' in:\n%s", want, r.err);
    vs_run_free(&r);
}

Test(nonregular, fifo_as_trace_is_refused_unless_asked_for)
{
    struct vs_run r = run_with("VRAMSHIM_TRACE", fifo);
    char want[512];
    snprintf(want, sizeof want, "vramshim: the trace path %s is a FIFO, not a regular file; "
             "tracing is off (VRAMSHIM_TRACE=fifo:%s writes into it while its reader runs)\n",
             fifo, fifo);
    cr_expect_str_eq(r.err, want);
    vs_run_free(&r);
}

Test(nonregular, fifo_trace_without_a_reader_is_off)
{
    char value[160];
    snprintf(value, sizeof value, "fifo:%s", fifo);
    struct vs_run r = run_with("VRAMSHIM_TRACE", value);
    char want[512];
    snprintf(want, sizeof want, "vramshim: no process reads the FIFO %s (start its reader "
             "first); tracing is off\n", fifo);
    cr_expect_str_eq(r.err, want);
    vs_run_free(&r);
}

/* The reader holds the FIFO open before the program starts; this trace fits the pipe's buffer. */
Test(nonregular, fifo_trace_with_a_reader_gets_the_trace)
{
    int rd = open(fifo, O_RDONLY | O_NONBLOCK);
    cr_assert_geq(rd, 0);
    char value[160];
    snprintf(value, sizeof value, "fifo:%s", fifo);
    struct vs_run r = run_with("VRAMSHIM_TRACE", value);
    cr_expect_str_eq(r.err, "");
    char buf[65536];
    ssize_t n = read(rd, buf, sizeof buf - 1);
    cr_assert_gt(n, 0);
    buf[n] = 0;
    cr_expect(!strncmp(buf, "{\"vramshim_trace\":1", 19), "%s", buf);
    cr_expect(strstr(buf, "\"ev\":\"alloc\""), "%s", buf);
    close(rd);
    vs_run_free(&r);
}

/* `vramshim policy check PATH`: its exit status, stderr in *err (free it). */
static int policy_check(const char *path, char **err)
{
    const char *argv[] = {VS_BUILD_DIR "/vramshim", "policy", "check", path, NULL};
    struct vs_run r = vs_run(argv, 0, NULL);
    *err = r.raw_err;
    r.raw_err = NULL;
    vs_run_free(&r);
    return r.status;
}

Test(nonregular, policy_check_refuses_fifos_and_directories)
{
    char *err, want[512];
    cr_expect_eq(policy_check(fifo, &err), 1, "%s", err);
    snprintf(want, sizeof want, "%s: is a FIFO, not a regular file\n", fifo);
    cr_expect(strstr(err, want), "no line '%s' in:\n%s", want, err);
    free(err);
    cr_expect_eq(policy_check(dir, &err), 1, "%s", err);
    snprintf(want, sizeof want, "%s: is a directory\n", dir);
    cr_expect(strstr(err, want), "no line '%s' in:\n%s", want, err);
    free(err);
}
