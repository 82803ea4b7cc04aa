/* Bad values of the shim's environment variables get one `vramshim:` line naming the variable
 * and the accepted values (README: "A bad value gives one vramshim: line"), and the program
 * runs with the default. */
#include "interpose_harness.h"

#define PROG VS_PROG("interpose_direct_linked")

static void expect_one_line(const char *var, const char *value, const char *want)
{
    char trace[64], env_trace[96], env_var[128];
    strcpy(trace, "/tmp/vs_env_values_XXXXXX");
    int fd = mkstemp(trace);
    cr_assert_geq(fd, 0);
    close(fd);
    snprintf(env_trace, sizeof env_trace, "VRAMSHIM_TRACE=%s", trace);
    snprintf(env_var, sizeof env_var, "%s=%s", var, value);
    /* the trace records call sites, which is when the Python setting is read */
    const char *env[] = {env_trace, env_var, "VRAMSHIM_MODE=passthrough", NULL};
    struct vs_run r = vs_run_prog(PROG, 1, env);
    cr_expect_eq(r.status, 0, "exit %d\n%s%s", r.status, r.out, r.raw_err);
    cr_expect_str_eq(r.err, want);
    unlink(trace);
    vs_run_free(&r);
}

Test(env_values, bad_trace_python_values_are_said_once)
{
    expect_one_line("VRAMSHIM_TRACE_PYTHON", "x",
                    "vramshim: VRAMSHIM_TRACE_PYTHON=\"x\" is not 1, held or 0; using 1\n");
    expect_one_line("VRAMSHIM_TRACE_PYTHON", "yes",
                    "vramshim: VRAMSHIM_TRACE_PYTHON=\"yes\" is not 1, held or 0; using 1\n");
    expect_one_line("VRAMSHIM_TRACE_PYTHON", "held", "");
}
