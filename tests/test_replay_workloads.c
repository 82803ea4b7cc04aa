/* `vramshim replay` on the committed small workloads: fits on a generous device with the arena
 * using physical memory well, names the first failing event on a device too small for the
 * peak, gives the same answer every run, and explains bad usage; on the full Wan decode the
 * arena fits a device the driver's own pool cannot. */
#include <jansson.h>

#include "replay_fixture.h"

TestSuite(replay, .fini = fx_cleanup);

static const char *const names[] = {"sdxl-vae-decode", "wan21-vae-decode", "wan22-vae-decode",
                                    "dit-denoise"};

static char *workload(const char *name)
{
    char *p = malloc(512);
    snprintf(p, 512, "%s/%s-small.jsonl", FX_WORKLOADS, name);
    return p;
}

static json_t *replay_json(const char *trace, const char *vram, int want_status)
{
    struct fx_run r = fx_cli("replay %s --vram %s --json", trace, vram);
    cr_assert_eq(r.status, want_status, "replay %s --vram %s: status %d: %s", trace, vram,
                 r.status, r.err);
    json_error_t jerr;
    json_t *o = json_loads(r.out, 0, &jerr);
    cr_assert_not_null(o, "not one JSON object: %s (%s)", r.out, jerr.text);
    fx_run_free(&r);
    return o;
}

static uint64_t u64(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    cr_assert(json_is_integer(v), "key %s missing", key);
    return (uint64_t)json_integer_value(v);
}

/* The small workloads hold 100-350 MiB live, so the arena's fixed size-class pages weigh more
 * than at real sizes (where bench_utilisation shows >= 0.99); 0.85 still bounds its overhead. */
Test(replay, small_workloads_fit_and_arena_uses_memory_well)
{
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char *trace = workload(names[i]);
        json_t *o = replay_json(trace, "24GiB", 0);
        json_t *pt = json_object_get(o, "passthrough");
        cr_assert(json_is_object(pt));
        cr_expect(json_is_true(json_object_get(o, "fits")), "%s", names[i]);
        cr_expect(json_is_true(json_object_get(pt, "fits")), "%s", names[i]);
        cr_expect(json_is_null(json_object_get(o, "failed_event")));
        uint64_t live = u64(o, "peak_live_bytes"), phys = u64(o, "peak_physical_bytes");
        cr_expect_eq(live, u64(pt, "peak_live_bytes"), "same trace, same live peak");
        cr_expect_geq(phys, live);
        double ua = json_real_value(json_object_get(o, "utilisation"));
        double up = json_real_value(json_object_get(pt, "utilisation"));
        cr_expect_float_eq(ua, (double)live / (double)phys, 1e-5);
        cr_expect_geq(ua, 0.85, "%s: arena utilisation %.4f", names[i], ua);
        cr_expect_float_eq(up, (double)live / (double)u64(pt, "peak_physical_bytes"), 1e-5);
        json_decref(o);
        free(trace);
    }
}

/* The JSON line of the trace at `line` (1-based). */
static json_t *trace_line(const char *path, unsigned line)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    size_t cap = 0;
    json_t *o = NULL;
    for (unsigned n = 1; getline(&buf, &cap, f) > 0; n++)
        if (n == line) {
            o = json_loads(buf, 0, NULL);
            break;
        }
    free(buf);
    fclose(f);
    cr_assert_not_null(o, "%s has no line %u", path, line);
    return o;
}

Test(replay, names_the_first_failing_event_when_the_peak_cannot_fit)
{
    char *trace = workload("sdxl-vae-decode");
    json_t *o = replay_json(trace, "128MiB", 1); /* the peak of live tensors is 190 MiB */
    cr_expect(json_is_false(json_object_get(o, "fits")));
    cr_expect_leq(u64(o, "peak_live_bytes"), 128u << 20);
    json_t *failed = json_object_get(o, "failed_event");
    cr_assert(json_is_object(failed));
    unsigned line = (unsigned)u64(failed, "line");
    cr_expect_str_eq(json_string_value(json_object_get(failed, "error")),
                     "CUDA_ERROR_OUT_OF_MEMORY");
    json_t *ev = trace_line(trace, line);
    cr_expect_str_eq(json_string_value(json_object_get(ev, "ev")), "alloc");
    const char *desc = json_string_value(json_object_get(failed, "event"));
    cr_expect(strstr(desc, json_string_value(json_object_get(ev, "name"))), "%s", desc);
    cr_expect(strstr(desc, json_string_value(json_object_get(ev, "ptr"))), "%s", desc);

    struct fx_run r = fx_cli("replay %s --vram 128MiB", trace);
    cr_expect_eq(r.status, 1);
    char want[128];
    snprintf(want, sizeof want, "no (line %u)", line);
    cr_expect(strstr(r.out, want), "%s", r.out);
    snprintf(want, sizeof want, "arena: first failing event: line %u: alloc ", line);
    cr_expect(strstr(r.out, want), "%s", r.out);
    cr_expect(strstr(r.out, ": CUDA_ERROR_OUT_OF_MEMORY\n"), "%s", r.out);
    fx_run_free(&r);
    json_decref(ev);
    json_decref(o);
    free(trace);
}

Test(replay, arena_fits_where_the_driver_pool_does_not)
{
    /* The full Wan 2.1 decode at 832x480x81 peaks at 7.32 GiB live. In 8 GiB the driver's pool
     * fails: its chunks, kept for reuse, hold freed frames of the wrong sizes. The arena
     * restitches freed granules into each new large block. */
    char *trace = fx_path("wan21-vae-decode.jsonl");
    struct fx_run w = fx_cli("workload wan21-vae-decode -o %s", trace);
    cr_assert_eq(w.status, 0, "%s", w.err);
    fx_run_free(&w);
    json_t *o = replay_json(trace, "8GiB", 0);
    cr_expect(json_is_true(json_object_get(o, "fits")));
    cr_expect(json_is_false(json_object_get(json_object_get(o, "passthrough"), "fits")));
    cr_expect_gt(u64(o, "peak_live_bytes"), 7ull << 30);
    json_decref(o);
    free(trace);
}

Test(replay, same_answer_every_run)
{
    char *trace = workload("wan21-vae-decode");
    struct fx_run a = fx_cli("replay %s --vram 400MiB --json", trace);
    struct fx_run b = fx_cli("replay %s --vram 400MiB --json", trace);
    cr_expect_eq(a.status, b.status);
    cr_expect_str_eq(a.out, b.out);
    fx_run_free(&a);
    fx_run_free(&b);
    free(trace);
}

Test(replay, usage_errors)
{
    char *trace = workload("dit-denoise");
    struct fx_run r = fx_cli("replay %s --vram lots", trace);
    cr_expect_eq(r.status, 2);
    cr_expect_str_eq(r.err, "vramshim replay: --vram 'lots' is not a size (e.g. 12GiB, 512MiB, "
                            "4294967296)\n");
    fx_run_free(&r);
    r = fx_cli("replay %s", trace);
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "usage: vramshim replay TRACE --vram SIZE"), "%s", r.err);
    fx_run_free(&r);
    r = fx_cli("replay %s --vram 24GiB --policy some.ini", trace);
    cr_expect_eq(r.status, 2);
    cr_expect_str_eq(r.err, "vramshim replay: some.ini: cannot open: No such file or directory\n"
                            "vramshim replay: the policy some.ini cannot be used\n");
    fx_run_free(&r);
    free(trace);
}

Test(replay, missing_simulated_driver_is_explained)
{
    char *trace = workload("dit-denoise");
    setenv("VRAMSHIM_SIMCUDA", "/nonexistent/libcuda.so.1", 1); /* this test's process only */
    struct fx_run r = fx_cli("replay %s --vram 1GiB", trace);
    cr_expect_eq(r.status, 3);
    cr_expect(strstr(r.err, "vramshim replay: arena: simulated driver not found at "
                            "/nonexistent/libcuda.so.1 (build it with `make sim`, or set "
                            "VRAMSHIM_SIMCUDA=path/to/libcuda.so.1)\n"), "%s", r.err);
    fx_run_free(&r);
    free(trace);
}

Test(replay, long_traces_report_progress_on_stderr)
{
    /* 60000 events: 30000 allocate/deallocate pairs of an RMM log */
    char *path = fx_path("long.csv");
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("Thread,Time,Action,Pointer,Size,Stream\n", f);
    for (unsigned i = 0; i < 30000; i++) {
        fprintf(f, "1,%u.0,allocate,0x%x,4096,0x0\n", i, 0x10000 + i);
        fprintf(f, "1,%u.5,deallocate,0x%x,4096,0x0\n", i, 0x10000 + i);
    }
    fclose(f);
    struct fx_run r = fx_cli("replay %s --vram 1GiB", path);
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.err, "vramshim replay: arena 50% (30000/60000 events)\n"), "%s", r.err);
    cr_expect(strstr(r.err, "vramshim replay: pass-through 100% (60000/60000 events)\n"), "%s",
              r.err);
    cr_expect(strstr(r.out, "fits            yes                  yes\n"), "%s", r.out);
    fx_run_free(&r);
    free(path);
}
