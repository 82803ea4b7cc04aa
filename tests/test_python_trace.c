/* Python call sites in traces: "py:FILE:LINE:QUALNAME" frames of allocations made with the GIL
 * held (ctypes.PyDLL), with it released (ctypes.CDLL, as PyTorch operators do), from a second
 * thread; VRAMSHIM_TRACE_PYTHON to turn it off; and no deadlock when the allocating thread holds
 * a lock that a thread holding the GIL waits for. */
#include "python_fixture.h"

static struct vs_trace traced(const char *prog, const char *trace_python, const char *name)
{
    char path[256], env_trace[300], env_py[64];
    vs_trace_path(path, sizeof path, name);
    snprintf(env_trace, sizeof env_trace, "VRAMSHIM_TRACE=%s", path);
    snprintf(env_py, sizeof env_py, "VRAMSHIM_TRACE_PYTHON=%s", trace_python ? trace_python : "1");
    const char *env[] = {env_trace, env_py, NULL};
    const char *argv[] = {VS_CLI, "run", "--mode", "passthrough", "--", vs_python(), prog, NULL};
    struct vs_run r = vs_run(argv, 0, env);
    cr_assert_eq(r.status, 0, "%s%s", r.out, r.raw_err);
    cr_expect_str_eq(r.out, "ok\n");
    vs_run_free(&r);
    struct vs_trace t = vs_trace_load(path);
    unlink(path);
    return t;
}

static const char *const trace_prog = VS_PYPROG("py_trace.py");

static int has_site(const struct vs_trace *t, const char *mark, const char *qualname)
{
    return vs_trace_has_py_frame(t, trace_prog, vs_line_of(trace_prog, mark), qualname);
}

Test(python_trace, frames_with_and_without_the_gil_and_from_threads)
{
    struct vs_trace t = traced(trace_prog, NULL, "py_frames");
    cr_expect(has_site(&t, "# site:held", "Model.load_holding_gil"), "GIL held: no frame");
    cr_expect(has_site(&t, "# site:released", "Model.load_releasing_gil"),
              "GIL released: no frame");
    cr_expect(has_site(&t, "# site:thread", "Model.load_in_thread"), "thread: no frame");
    /* the frames further out are there too: the caller of the allocating method */
    cr_expect(vs_trace_has_py_frame(&t, trace_prog,
                                    vs_line_of(trace_prog, "model.load_in_thread(out)"),
                                    "main.<locals>.worker"),
              "no caller frame");
    cr_expect_eq(vs_trace_count(&t, "alloc", "cuMemAlloc_v2"), 3);
    vs_trace_free(&t);
}

Test(python_trace, trace_python_setting)
{
    /* 0: no Python frames at all */
    struct vs_trace t = traced(trace_prog, "0", "py_off");
    cr_expect_eq(vs_trace_py_frames(&t), 0);
    cr_expect_eq(vs_trace_count(&t, "alloc", "cuMemAlloc_v2"), 3);
    vs_trace_free(&t);
    /* held: only threads that hold the GIL */
    t = traced(trace_prog, "held", "py_held");
    cr_expect(has_site(&t, "# site:held", "Model.load_holding_gil"));
    cr_expect(!has_site(&t, "# site:released", "Model.load_releasing_gil"));
    cr_expect(!has_site(&t, "# site:thread", "Model.load_in_thread"));
    vs_trace_free(&t);
}

/* A deadlock would hang: criterion's timeout fails the test instead. */
Test(python_trace, allocation_under_a_lock_a_gil_holder_waits_for, .timeout = 30)
{
    struct vs_trace t = traced(VS_PYPROG("py_deadlock.py"), NULL, "py_deadlock");
    /* one allocation per object the loader iterated over, plus the warm-up */
    cr_expect_gt(vs_trace_count(&t, "alloc", "cuMemAlloc_v2"), 2);
    vs_trace_free(&t);
}
