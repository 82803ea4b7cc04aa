/* The trace is complete, parseable and consistent: one file for a multi-threaded program with
 * events in time order, call sites defined before use, every free matching a live allocation,
 * a forked child continuing in its own file, stacks that name the program's functions.
 */
#include "interpose_harness.h"

#include <cuda.h>
#include <uthash.h>

struct live {
    char ptr[32];
    long size;
    UT_hash_handle hh;
};

/* Replays a trace: lines are in time order, sites precede their use, allocations never reuse
 * a live address and frees match a live allocation of the same size. Returns the number of
 * allocations still live at the end. */
static long check_consistent(const struct vs_trace *t)
{
    struct live *set = NULL, *l, *tmp;
    json_int_t last_t = 0;
    size_t sites_cap = 1024;
    char *site_defined = calloc(sites_cap, 1);
    long live_count = 0;
    for (size_t i = 1; i < t->n; i++) {
        json_t *e = t->lines[i];
        const char *ev = vs_str(e, "ev");
        json_int_t site = json_integer_value(json_object_get(e, "site"));
        if (strcmp(ev, "site") == 0) {
            cr_assert(site > 0 && (size_t)site < sites_cap, "line %zu: site id %lld", i + 1,
                      (long long)site);
            cr_assert(!site_defined[site], "line %zu: site %lld defined twice", i + 1,
                      (long long)site);
            cr_assert(json_array_size(json_object_get(e, "frames")) > 0, "line %zu", i + 1);
            site_defined[site] = 1;
            continue;
        }
        json_int_t time = json_integer_value(json_object_get(e, "t"));
        cr_assert_geq(time, last_t, "line %zu: time goes back", i + 1);
        last_t = time;
        cr_assert(site == 0 || ((size_t)site < sites_cap && site_defined[site]),
                  "line %zu: site %lld used before its definition", i + 1, (long long)site);
        const char *ptr = vs_str(e, "ptr");
        long size = (long)json_integer_value(json_object_get(e, "size"));
        HASH_FIND_STR(set, ptr, l);
        if (strcmp(ev, "alloc") == 0) {
            cr_assert(!l, "line %zu: %s allocated while live", i + 1, ptr);
            l = calloc(1, sizeof *l);
            snprintf(l->ptr, sizeof l->ptr, "%s", ptr);
            l->size = size;
            HASH_ADD_STR(set, ptr, l);
            live_count++;
        } else if (strcmp(ev, "free") == 0) {
            cr_assert(l, "line %zu: %s freed but not live", i + 1, ptr);
            cr_assert_eq(l->size, size, "line %zu: free size %ld, allocated %ld", i + 1, size,
                         l->size);
            HASH_DEL(set, l);
            free(l);
            live_count--;
        }
    }
    HASH_ITER(hh, set, l, tmp)
    {
        HASH_DEL(set, l);
        free(l);
    }
    free(site_defined);
    return live_count;
}

static struct vs_run run_traced(const char *prog, const char *path, const char *extra)
{
    char env_trace[300];
    snprintf(env_trace, sizeof env_trace, "VRAMSHIM_TRACE=%s", path);
    const char *env[] = {env_trace, "VRAMSHIM_MODE=passthrough", extra, NULL};
    struct vs_run r = vs_run_prog(prog, 1, env);
    cr_assert_eq(r.status, 0, "%s failed under the shim:\n%s%s", prog, r.out, r.raw_err);
    return r;
}

Test(interpose_trace, eight_threads_one_complete_ordered_file, .timeout = 60)
{
    char path[256];
    vs_trace_path(path, sizeof path, "threads");
    struct vs_run r = run_traced(VS_PROG("interpose_threads_linked"), path, "VS_SECONDS=2");
    vs_assert_driver_saw_each_call_once(r.out);
    struct vs_trace t = vs_trace_load(path);
    const char *allocs[] = {"cuMemAlloc_v2", "cuMemAllocAsync"};
    const char *frees[] = {"cuMemFree_v2", "cuMemFreeAsync"};
    for (int i = 0; i < 2; i++) {
        long n = vs_output_number(r.out, "called", allocs[i]);
        cr_expect_gt(n, 20, "too few %s calls for a concurrency test", allocs[i]);
        cr_expect_eq(vs_trace_count(&t, "alloc", allocs[i]), n, "%s", allocs[i]);
        cr_expect_eq(vs_trace_count(&t, "free", frees[i]),
                     vs_output_number(r.out, "called", frees[i]), "%s", frees[i]);
    }
    cr_expect_eq(check_consistent(&t), 0, "allocations left live at exit");
    vs_trace_free(&t);
    unlink(path);
    vs_run_free(&r);
}

Test(interpose_trace, fork_child_continues_in_its_own_file)
{
    char path[256], child_path[300];
    vs_trace_path(path, sizeof path, "fork");
    struct vs_run r = run_traced(VS_PROG("interpose_fork_linked"), path, NULL);
    long child = vs_output_number(r.out, "child", "pid");
    cr_assert_gt(child, 0, "%s", r.out);

    struct vs_trace parent = vs_trace_load(path);
    long pairs = vs_output_number(r.out, "parent", "pairs");
    cr_expect_eq(vs_trace_count(&parent, "alloc", "cuMemAlloc_v2"), pairs);
    cr_expect_eq(vs_trace_count(&parent, "free", "cuMemFree_v2"), pairs);
    cr_expect_eq(check_consistent(&parent), 0);

    snprintf(child_path, sizeof child_path, "%s.%ld", path, child);
    struct vs_trace kid = vs_trace_load(child_path);
    cr_expect_eq(json_integer_value(json_object_get(kid.lines[0], "pid")), child);
    cr_expect_eq(json_integer_value(json_object_get(kid.lines[0], "ppid")),
                 json_integer_value(json_object_get(parent.lines[0], "pid")));
    long child_pairs = vs_output_number(r.out, "child", "pairs");
    cr_expect_eq(vs_trace_count(&kid, "alloc", "cuMemAlloc_v2"), child_pairs);
    cr_expect_eq(vs_trace_count(&kid, "free", "cuMemFree_v2"), child_pairs);
    cr_expect_eq(check_consistent(&kid), 0);
    vs_trace_free(&parent);
    vs_trace_free(&kid);
    unlink(path);
    unlink(child_path);
    vs_run_free(&r);
}

Test(interpose_trace, call_sites_name_the_program_functions)
{
    char path[256];
    vs_trace_path(path, sizeof path, "sites");
    struct vs_run r = run_traced(VS_PROG("interpose_direct_linked"), path, NULL);
    struct vs_trace t = vs_trace_load(path);
    /* cuMemCreate is called from own_vmm(), a static function: its name comes from the ELF
     * symbol table, its module is the program. */
    int found = 0;
    for (size_t i = 1; i < t.n; i++) {
        if (strcmp(vs_str(t.lines[i], "api"), "cuMemCreate") != 0)
            continue;
        json_int_t site = json_integer_value(json_object_get(t.lines[i], "site"));
        cr_assert_gt(site, 0);
        for (size_t j = 1; j < i; j++) {
            if (strcmp(vs_str(t.lines[j], "ev"), "site") != 0 ||
                json_integer_value(json_object_get(t.lines[j], "site")) != site)
                continue;
            const char *top =
                json_string_value(json_array_get(json_object_get(t.lines[j], "frames"), 0));
            cr_assert(top, "site %lld has no frames", (long long)site);
            cr_expect(strncmp(top, "interpose_direct_linked+0x", 26) == 0 &&
                          strstr(top, " own_vmm+0x"),
                      "innermost frame is \"%s\"", top);
            found = 1;
        }
    }
    cr_expect(found, "no site for cuMemCreate");
    vs_trace_free(&t);
    unlink(path);
    vs_run_free(&r);
}

Test(interpose_trace, stacks_off_writes_no_sites)
{
    char path[256];
    vs_trace_path(path, sizeof path, "nostacks");
    struct vs_run r =
        run_traced(VS_PROG("interpose_direct_linked"), path, "VRAMSHIM_TRACE_STACKS=0");
    struct vs_trace t = vs_trace_load(path);
    cr_expect_eq(vs_trace_count(&t, "site", NULL), 0);
    cr_expect_gt(vs_trace_count(&t, "alloc", NULL), 0);
    for (size_t i = 1; i < t.n; i++)
        cr_expect_eq(json_integer_value(json_object_get(t.lines[i], "site")), 0);
    vs_trace_free(&t);
    unlink(path);
    vs_run_free(&r);
}

Test(interpose_trace, header_lists_the_devices)
{
    char path[256];
    vs_trace_path(path, sizeof path, "header");
    const char *extra = "SIMCUDA_VRAM=3GiB";
    struct vs_run r = run_traced(VS_PROG("interpose_direct_linked"), path, extra);
    struct vs_trace t = vs_trace_load(path);
    json_t *devices = json_object_get(t.lines[0], "devices");
    cr_assert_eq(json_array_size(devices), 1);
    cr_expect_eq(json_integer_value(json_object_get(json_array_get(devices, 0), "total")),
                 3ll << 30);
    vs_trace_free(&t);
    unlink(path);
    vs_run_free(&r);
}

Test(interpose_trace, unwritable_path_is_one_error_line)
{
    const char *env[] = {"VRAMSHIM_TRACE=/nonexistent-dir/run.jsonl", "VRAMSHIM_MODE=passthrough",
                         NULL};
    struct vs_run plain = vs_run_prog(VS_PROG("interpose_direct_linked"), 0, env);
    struct vs_run r = vs_run_prog(VS_PROG("interpose_direct_linked"), 1, env);
    cr_expect_eq(r.status, 0);
    cr_expect_str_eq(r.out, plain.out);
    cr_expect_str_eq(r.err, "vramshim: cannot open the trace file /nonexistent-dir/run.jsonl: "
                            "No such file or directory; tracing is off\n");
    vs_run_free(&plain);
    vs_run_free(&r);
}

Test(interpose_trace, refused_allocations_are_oom_events_and_null_outputs_pass_through)
{
    char path[256];
    vs_trace_path(path, sizeof path, "oom");
    const char *env[] = {"VRAMSHIM_MODE=passthrough", NULL};
    struct vs_run plain = vs_run_prog(VS_PROG("interpose_oom_linked"), 0, env);
    struct vs_run r = run_traced(VS_PROG("interpose_oom_linked"), path, NULL);
    cr_expect_str_eq(r.out, plain.out);
    cr_assert_eq(vs_output_number(r.out, "oom", "sync"), CUDA_ERROR_OUT_OF_MEMORY, "%s", r.out);
    vs_assert_driver_saw_each_call_once(r.out);
    struct vs_trace t = vs_trace_load(path);
    long total = vs_output_number(r.out, "device", "total");
    const char *apis[] = {"cuMemAlloc_v2", "cuMemAllocAsync"};
    const char *kinds[] = {"sync", "async"};
    for (int i = 0; i < 2; i++) {
        long expected = vs_output_number(r.out, "oom", kinds[i]) == CUDA_ERROR_OUT_OF_MEMORY;
        cr_expect_eq(vs_trace_count(&t, "oom", apis[i]), expected, "%s", apis[i]);
    }
    /* An oom event carries the size that was asked for. */
    for (size_t j = 1; j < t.n; j++)
        if (strcmp(vs_str(t.lines[j], "ev"), "oom") == 0)
            cr_expect_eq(json_integer_value(json_object_get(t.lines[j], "size")), 2 * total);
    /* NULL output pointers get the driver's error (the output matches the run without the shim)
     * and nothing is traced for them. */
    cr_expect_neq(vs_output_number(r.out, "null", "alloc"), 0);
    cr_expect_eq(vs_trace_count(&t, "alloc", NULL), 0);
    cr_expect_eq(vs_trace_count(&t, "create", NULL), 0);
    vs_trace_free(&t);
    unlink(path);
    vs_run_free(&plain);
    vs_run_free(&r);
}

Test(interpose_trace, call_sites_name_the_python_line)
{
    const char *script = VS_SOURCE_DIR "/tests/progs/interpose_python_alloc.py";
    /* The line of the call, found in the script itself. */
    char *text = vs_slurp(script);
    cr_assert(text, "cannot read %s", script);
    const char *mark = strstr(text, "# traced call site");
    cr_assert(mark);
    int line = 1;
    for (const char *c = text; c < mark; c++)
        line += *c == '\n';
    free(text);

    char path[256], env_trace[300], want[512];
    vs_trace_path(path, sizeof path, "python");
    snprintf(env_trace, sizeof env_trace, "VRAMSHIM_TRACE=%s", path);
    const char *env[] = {env_trace, "VRAMSHIM_MODE=passthrough", NULL};
    const char *argv[] = {"python3", script, NULL};
    struct vs_run r = vs_run(argv, 1, env);
    cr_assert_eq(r.status, 0, "%s%s", r.out, r.raw_err);
    cr_expect_str_eq(r.out, "ok\n");

    struct vs_trace t = vs_trace_load(path);
    snprintf(want, sizeof want, "py:%s:%d:", script, line);
    int found = 0;
    for (size_t i = 1; i < t.n; i++) {
        if (strcmp(vs_str(t.lines[i], "ev"), "site") != 0)
            continue;
        json_t *frames = json_object_get(t.lines[i], "frames");
        for (size_t k = 0; k < json_array_size(frames); k++) {
            const char *f = json_string_value(json_array_get(frames, k));
            /* Model.allocate from Python 3.11 on (co_qualname), allocate before. */
            if (f && strncmp(f, want, strlen(want)) == 0 &&
                strcmp(f + strlen(f) - strlen("allocate"), "allocate") == 0)
                found = 1;
        }
    }
    cr_expect(found, "no site frame %s...allocate", want);
    cr_expect_eq(vs_trace_count(&t, "alloc", "cuMemAlloc_v2"), 1);
    vs_trace_free(&t);
    unlink(path);
    vs_run_free(&r);
}
