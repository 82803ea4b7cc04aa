/* Every way an unmodified program reaches the driver's allocation entry points is intercepted,
 * and each call reaches the driver exactly once (simcuda's counters) and the trace exactly once.
 */
#include "interpose_harness.h"

static struct vs_trace traced_run(const char *prog, const char *name, struct vs_run *r)
{
    char path[256], env_trace[300];
    vs_trace_path(path, sizeof path, name);
    snprintf(env_trace, sizeof env_trace, "VRAMSHIM_TRACE=%s", path);
    const char *env[] = {env_trace, "VRAMSHIM_MODE=passthrough", NULL};
    *r = vs_run_prog(prog, 1, env);
    cr_assert_eq(r->status, 0, "%s failed under the shim:\n%s%s", prog, r->out, r->raw_err);
    struct vs_trace t = vs_trace_load(path);
    unlink(path);
    return t;
}

static void expect_traced(const struct vs_trace *t, const char *ev, const char *api, long n)
{
    cr_expect_eq(vs_trace_count(t, ev, api), n, "%ld %s events of %s traced, expected %ld",
                 vs_trace_count(t, ev, api), ev, api, n);
}

Test(interpose_paths, cudart_like_loader_through_cuGetProcAddress)
{
    struct vs_run r;
    struct vs_trace t = traced_run(VS_PROG("interpose_cudart_like"), "cudart", &r);
    vs_assert_driver_saw_each_call_once(r.out);
    cr_expect(strstr(r.out, "export_table untouched 1\n"), "cuGetExportTable was replaced:\n%s",
              r.out);
    /* Each entry point the driver resolved is traced under its exact name, never a guess. */
    const char *apis[] = {"cuMemAlloc_v2", "cuMemAllocAsync", "cuMemAllocAsync_ptsz"};
    const char *frees[] = {"cuMemFree_v2", "cuMemFreeAsync", "cuMemFreeAsync_ptsz"};
    for (int i = 0; i < 3; i++) {
        expect_traced(&t, "alloc", apis[i], vs_output_number(r.out, "called", apis[i]));
        expect_traced(&t, "free", frees[i], vs_output_number(r.out, "called", frees[i]));
    }
    cr_expect_eq(vs_output_number(r.out, "called", "cuMemAlloc_v2"), 5);
    vs_trace_free(&t);
    vs_run_free(&r);
}

Test(interpose_paths, program_linked_with_libcuda)
{
    struct vs_run r;
    struct vs_trace t = traced_run(VS_PROG("interpose_direct_linked"), "linked", &r);
    vs_assert_driver_saw_each_call_once(r.out);
    expect_traced(&t, "alloc", "cuMemAlloc_v2", 1);
    expect_traced(&t, "alloc", "cuMemAllocPitch_v2", 1);
    expect_traced(&t, "alloc", "cuMemAllocAsync", 1);
    expect_traced(&t, "alloc", "cuMemAllocFromPoolAsync", 1);
    expect_traced(&t, "free", "cuMemFreeAsync", 2);
    /* Four cuMemFree_v2 calls, two of them invalid (0 and a double free): only two frees. */
    expect_traced(&t, "free", "cuMemFree_v2", 2);
    expect_traced(&t, "create", "cuMemCreate", 1);
    expect_traced(&t, "map", "cuMemMap", 1);
    expect_traced(&t, "unmap", "cuMemUnmap", 1);
    expect_traced(&t, "release", "cuMemRelease", 1);

    /* Frees carry the size of what they free; every event names the device. */
    for (size_t i = 1; i < t.n; i++) {
        json_t *e = t.lines[i];
        if (strcmp(vs_str(e, "ev"), "site") == 0)
            continue;
        cr_expect_eq(json_integer_value(json_object_get(e, "dev")), 0, "line %zu: dev", i + 1);
        if (strcmp(vs_str(e, "api"), "cuMemAlloc_v2") == 0 ||
            strcmp(vs_str(e, "api"), "cuMemAllocAsync") == 0)
            cr_expect_gt(json_integer_value(json_object_get(e, "size")), 0);
    }
    long alloc_bytes = 0, free_bytes = 0;
    for (size_t i = 1; i < t.n; i++) {
        long size = (long)json_integer_value(json_object_get(t.lines[i], "size"));
        if (strcmp(vs_str(t.lines[i], "ev"), "alloc") == 0)
            alloc_bytes += size;
        else if (strcmp(vs_str(t.lines[i], "ev"), "free") == 0)
            free_bytes += size;
    }
    cr_expect_eq(alloc_bytes, free_bytes, "allocated %ld bytes, freed %ld", alloc_bytes,
                 free_bytes);
    vs_trace_free(&t);
    vs_run_free(&r);
}

Test(interpose_paths, dlsym_from_every_kind_of_handle)
{
    struct vs_run r;
    struct vs_trace t = traced_run(VS_PROG("interpose_dlsym"), "dlsym", &r);
    vs_assert_driver_saw_each_call_once(r.out);
    cr_expect(strstr(r.out, "dlsym handle ok\ndlsym default ok\ndlsym next ok\n"), "%s", r.out);
    cr_expect(strstr(r.out, "unhooked same 1\n"), "an unhooked symbol changed:\n%s", r.out);
    cr_expect(strstr(r.out, "missing null 1\n"), "a missing symbol was found:\n%s", r.out);
    expect_traced(&t, "alloc", "cuMemAlloc_v2", 3);
    expect_traced(&t, "free", "cuMemFree_v2", 3);
    vs_trace_free(&t);
    vs_run_free(&r);
}

Test(interpose_paths, per_thread_stream_variants)
{
    struct vs_run r;
    struct vs_trace t = traced_run(VS_PROG("interpose_ptsz_linked"), "ptsz", &r);
    vs_assert_driver_saw_each_call_once(r.out);
    expect_traced(&t, "alloc", "cuMemAllocAsync_ptsz", 1);
    expect_traced(&t, "alloc", "cuMemAllocFromPoolAsync_ptsz", 1);
    expect_traced(&t, "free", "cuMemFreeAsync_ptsz", 2);
    expect_traced(&t, "alloc", "cuMemAllocAsync", 0);
    /* The stream is recorded as passed: 0, the calling thread's per-thread stream here. */
    for (size_t i = 1; i < t.n; i++)
        if (strcmp(vs_str(t.lines[i], "ev"), "alloc") == 0)
            cr_expect_str_eq(vs_str(t.lines[i], "stream"), "0x0");
    vs_trace_free(&t);
    vs_run_free(&r);
}
