/* Pass-through mode changes nothing a program sees, the shim is harmless in processes that never
 * touch CUDA, and its settings and messages are what the README promises.
 */
#include "interpose_harness.h"

static void expect_same_output(const char *prog, const char *const *env)
{
    struct vs_run plain = vs_run_prog(prog, 0, env);
    struct vs_run shim = vs_run_prog(prog, 1, env);
    cr_assert_eq(plain.status, 0, "%s failed without the shim:\n%s", prog, plain.raw_err);
    cr_expect_eq(shim.status, plain.status, "%s: exit %d under the shim:\n%s", prog, shim.status,
                 shim.raw_err);
    cr_expect_str_eq(shim.out, plain.out, "%s: output differs under the shim", prog);
    cr_expect_str_eq(shim.err, "", "%s: the shim wrote to stderr", prog);
    vs_run_free(&plain);
    vs_run_free(&shim);
}

Test(interpose_passthrough, linked_program_sees_identical_results)
{
    const char *env[] = {"VRAMSHIM_MODE=passthrough", NULL};
    expect_same_output(VS_PROG("interpose_direct_linked"), env);
}

Test(interpose_passthrough, cudart_like_program_sees_identical_results)
{
    const char *env[] = {"VRAMSHIM_MODE=passthrough", NULL};
    expect_same_output(VS_PROG("interpose_cudart_like"), env);
}

Test(interpose_passthrough, null_argument_to_cuMemGetInfo_gets_the_driver_error)
{
    const char *env[] = {"VRAMSHIM_MODE=passthrough", NULL};
    struct vs_run plain = vs_run_prog(VS_PROG("interpose_direct_linked"), 0, env);
    struct vs_run shim = vs_run_prog(VS_PROG("interpose_direct_linked"), 1, env);
    long err_plain = vs_output_number(plain.out, "meminfo", "null_free");
    cr_assert_neq(err_plain, 0, "the driver accepted free=NULL; the test proves nothing");
    cr_expect_eq(vs_output_number(shim.out, "meminfo", "null_free"), err_plain);
    cr_expect_eq(vs_output_number(shim.out, "meminfo", "null_total"),
                 vs_output_number(plain.out, "meminfo", "null_total"));
    vs_assert_driver_saw_each_call_once(shim.out);
    vs_run_free(&plain);
    vs_run_free(&shim);
}

Test(interpose_passthrough, unknown_mode_is_one_error_line_then_passthrough)
{
    const char *env[] = {"VRAMSHIM_MODE=fastest", NULL};
    struct vs_run plain = vs_run_prog(VS_PROG("interpose_direct_linked"), 0, env);
    struct vs_run shim = vs_run_prog(VS_PROG("interpose_direct_linked"), 1, env);
    cr_expect_eq(shim.status, 0);
    cr_expect_str_eq(shim.err, "vramshim: VRAMSHIM_MODE=\"fastest\" is not a mode (expected "
                               "arena or passthrough); using passthrough\n");
    cr_expect_str_eq(shim.out, plain.out);
    vs_run_free(&plain);
    vs_run_free(&shim);
}

Test(interpose_passthrough, unknown_log_level_is_reported)
{
    const char *env[] = {"VRAMSHIM_LOG=loud", "VRAMSHIM_MODE=passthrough", NULL};
    struct vs_run r = vs_run_prog(VS_PROG("interpose_direct_linked"), 1, env);
    cr_expect_eq(r.status, 0);
    cr_expect_str_eq(r.err, "vramshim: VRAMSHIM_LOG=\"loud\" is not a level (expected error, "
                            "warn, info or debug); using warn\n");
    vs_run_free(&r);
}

Test(interpose_passthrough, harmless_in_processes_without_cuda)
{
    const char *t[] = {"/bin/true", NULL};
    struct vs_run r = vs_run(t, 1, NULL);
    cr_expect_eq(r.status, 0);
    cr_expect_str_eq(r.err, "");
    vs_run_free(&r);

    const char *py[] = {"python3", "-c", "print(1)", NULL};
    const char *env[] = {"VRAMSHIM_LOG=debug", NULL};
    r = vs_run(py, 1, env);
    cr_expect_eq(r.status, 0, "python3 failed under the shim:\n%s", r.raw_err);
    cr_expect_str_eq(r.out, "1\n");
    cr_expect_str_eq(r.err, "", "the shim initialised in a process without CUDA");
    vs_run_free(&r);
}

Test(interpose_passthrough, cuGetExportTable_does_not_initialise_the_shim)
{
    const char *env[] = {"VRAMSHIM_LOG=debug", NULL};
    struct vs_run plain = vs_run_prog(VS_PROG("interpose_export_table"), 0, env);
    struct vs_run shim = vs_run_prog(VS_PROG("interpose_export_table"), 1, env);
    cr_expect_eq(shim.status, 0);
    cr_expect_str_eq(shim.out, plain.out);
    cr_expect(!strstr(shim.err, "vramshim: init:"), "initialised for cuGetExportTable:\n%s",
              shim.err);
    vs_run_free(&plain);
    vs_run_free(&shim);

    /* The same log level does show initialisation once an allocation entry point is used. */
    struct vs_run alloc = vs_run_prog(VS_PROG("interpose_direct_linked"), 1, env);
    cr_expect(strstr(alloc.err, "vramshim: init: real driver "), "%s", alloc.err);
    vs_run_free(&alloc);
}

Test(interpose_passthrough, exit_summary_at_info_level)
{
    const char *env[] = {"VRAMSHIM_LOG=info", "VRAMSHIM_MODE=passthrough", NULL};
    struct vs_run r = vs_run_prog(VS_PROG("interpose_direct_linked"), 1, env);
    cr_expect_eq(r.status, 0);
    /* The calls interpose_direct_linked makes per family. */
    const char *summary = strstr(r.err, "vramshim: summary: mode passthrough; calls: alloc=2 "
                                        "free=4 alloc_async=2 free_async=2 vmm_create=1 "
                                        "vmm_release=1 vmm_map=1 vmm_unmap=1 query=6 ");
    cr_expect(summary, "no summary line:\n%s", r.err);
    cr_expect(strstr(r.err, "live at exit 0 bytes\n"), "%s", r.err);
    const char *peak = strstr(r.err, "peak live ");
    cr_expect(peak && atol(peak + strlen("peak live ")) >= (5l << 20),
              "peak below the 1 MiB + 4 MiB the program holds at once:\n%s", r.err);
    vs_run_free(&r);
}

Test(interpose_passthrough, unopenable_real_driver_path_falls_back_to_the_default)
{
    const char *env[] = {"VRAMSHIM_REAL_LIBCUDA=/nonexistent/libcuda.so.1",
                         "VRAMSHIM_MODE=passthrough", NULL};
    struct vs_run plain = vs_run_prog(VS_PROG("interpose_direct_linked"), 0, env);
    struct vs_run r = vs_run_prog(VS_PROG("interpose_direct_linked"), 1, env);
    cr_expect_eq(r.status, 0, "%s", r.raw_err);
    cr_expect_str_eq(r.out, plain.out);
    cr_expect_str_eq(r.err, "vramshim: cannot open the real driver /nonexistent/libcuda.so.1 "
                            "(/nonexistent/libcuda.so.1: cannot open shared object file: No such "
                            "file or directory); using libcuda.so.1\n");
    vs_run_free(&plain);
    vs_run_free(&r);
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* A library that loads but is no driver (libc) or lacks entry points: one line, then the default
 * driver serves the program as if the variable were unset (its own messages follow); before, the
 * arena's device probe called through a NULL pointer. */
static void expect_default_driver_instead_of(const char *lib, const char *missing)
{
    char var[512];
    snprintf(var, sizeof var, "VRAMSHIM_REAL_LIBCUDA=%s", lib);
    const char *env[] = {var, NULL};
    struct vs_run plain = vs_run_prog(VS_PROG("interpose_direct_linked"), 1, NULL);
    struct vs_run r = vs_run_prog(VS_PROG("interpose_direct_linked"), 1, env);
    cr_expect_eq(r.status, 0, "%s: exit %d\n%s", lib, r.status, r.raw_err);
    cr_expect_str_eq(r.out, plain.out, "%s: output differs", lib);
    char want[768];
    snprintf(want, sizeof want,
             "vramshim: the real driver %s lacks the driver entry points %s; using "
             "libcuda.so.1\n",
             lib, missing);
    cr_expect(!strncmp(r.err, want, strlen(want)), "first line:\n%s\nexpected:\n%s", r.err, want);
    cr_expect_eq(count_lines(r.err), 1 + count_lines(plain.err), "%s", r.err);
    vs_run_free(&plain);
    vs_run_free(&r);
}

Test(interpose_passthrough, real_driver_that_is_no_driver_falls_back_to_the_default)
{
    expect_default_driver_instead_of("libc.so.6", "cuInit, cuDeviceGet, cuDeviceGetCount and 26 "
                                                  "more of the 29");
}

Test(interpose_passthrough, real_driver_with_only_some_entry_points_falls_back_to_the_default)
{
    expect_default_driver_instead_of(VS_BUILD_DIR "/tests/stubs/partial_driver.so",
                                     "cuDeviceGet, cuDeviceGetAttribute, cuDeviceTotalMem_v2 and "
                                     "23 more of the 29");
}

/* The shim's own hooks are never taken for the real driver's (each forward would call itself). */
Test(interpose_passthrough, the_shim_named_as_real_driver_falls_back_to_the_default)
{
    expect_default_driver_instead_of(VS_SHIM, "cuInit, cuDeviceGet, cuDeviceGetCount and 26 "
                                              "more of the 29");
}

/* The default libcuda.so.1 itself lacks entry points the arena needs: one line, the arena is off
 * and every call reaches what the library has (before, the first allocation crashed in the arena
 * through a NULL pointer). */
Test(interpose_passthrough, default_driver_with_only_some_entry_points_is_passed_through)
{
    char dir[] = "/tmp/vs_partial_XXXXXX", link[64], path[96];
    cr_assert(mkdtemp(dir));
    snprintf(link, sizeof link, "%s/libcuda.so.1", dir);
    cr_assert(symlink(VS_BUILD_DIR "/tests/stubs/partial_driver.so", link) == 0);
    snprintf(path, sizeof path, "LD_LIBRARY_PATH=%s", dir);
    const char *env[] = {path, NULL};
    struct vs_run plain = vs_run_prog(VS_PROG("partial_driver_calls"), 0, env);
    struct vs_run r = vs_run_prog(VS_PROG("partial_driver_calls"), 1, env);
    cr_assert_eq(plain.status, 0, "%s", plain.raw_err);
    cr_expect(strstr(plain.out, "cuMemAlloc_v2 100\n"), "%s", plain.out);
    cr_expect_eq(r.status, 0, "exit %d\n%s", r.status, r.raw_err);
    cr_expect_str_eq(r.out, plain.out);
    cr_expect_str_eq(r.err, "vramshim: the real driver libcuda.so.1 lacks the driver entry points "
                            "cuDeviceGet, cuDeviceGetAttribute, cuDeviceTotalMem_v2 and 23 more "
                            "of the 29; the arena is off and calls pass through to what it has\n");
    vs_run_free(&plain);
    vs_run_free(&r);
    unlink(link);
    rmdir(dir);
}
