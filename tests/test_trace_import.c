/* `vramshim trace import-torch`: PyTorch memory snapshots (written here by
 * tests/torch_snapshot.py with the standard library's pickle, in the format torch's
 * _memory_viz reads) become traces that summary, timeline and replay read; what they must give
 * is computed by the script from the same events. Bad snapshots are one precise error, exit 1. */
#include "python_fixture.h"
#include "replay_fixture.h"

TestSuite(trace_import, .fini = fx_cleanup);

static void make_snapshots(void)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "python3 %s/tests/torch_snapshot.py %s", VS_SOURCE_DIR, fx_tmpdir());
    cr_assert_eq(system(cmd), 0, "%s failed", cmd);
}

/* Imports NAME.pickle into NAME.jsonl and checks the summary against expected.json. */
static void import_and_check(const char *name)
{
    struct fx_run r = fx_cli("trace import-torch %s/%s.pickle -o %s/%s.jsonl --vram 4GiB",
                             fx_tmpdir(), name, fx_tmpdir(), name);
    cr_assert_eq(r.status, 0, "%s: %s", name, r.err);
    cr_expect(strstr(r.out, "(2 from before the recorded window)"), "%s", r.out);
    fx_run_free(&r);
    char *exp_path = fx_path("expected.json"), *exp_text = fx_slurp(exp_path);
    json_t *want = fx_json(exp_text);
    r = fx_cli("trace summary %s/%s.jsonl --json", fx_tmpdir(), name);
    cr_assert_eq(r.status, 0, "%s", r.err);
    json_t *got = fx_json(r.out);
    cr_expect_eq(fx_jint(got, "allocations"), fx_jint(want, "allocations"));
    cr_expect_eq(fx_jint(got, "frees"), fx_jint(want, "frees"));
    cr_expect_eq(fx_jint(got, "peak_live_bytes"), fx_jint(want, "peak_live_bytes"));
    cr_expect_eq(fx_jint(got, "device_total_bytes"), 4LL << 30);
    json_t *ooms = json_object_get(got, "ooms");
    cr_assert_eq(json_array_size(ooms), 1);
    cr_expect_eq(fx_jint(json_array_get(ooms, 0), "live_bytes"),
                 fx_jint(want, "live_at_oom_bytes"));
    /* Python frames kept, torch's own and C++ frames left out of the label */
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(ooms, 0), "site")),
                     "VAE.decode (gen.py:10) < Pipeline.decode (gen.py:20) < main (gen.py:30)");
    json_t *sites = json_object_get(got, "sites_at_peak");
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(sites, 0), "name")),
                     "UNet.load (gen.py:10) < main (gen.py:20)");
    json_decref(got);
    json_decref(want);
    fx_run_free(&r);
    free(exp_text);
    free(exp_path);
}

Test(trace_import, snapshot_becomes_a_trace_that_summary_reads)
{
    make_snapshots();
    import_and_check("good");
    import_and_check("notimes");
    import_and_check("protocol2");
}

/* "Would my OOM have fit under vramshim, at this card size?": the imported trace replays. */
Test(trace_import, imported_trace_replays_and_draws)
{
    make_snapshots();
    struct fx_run r = fx_cli("trace import-torch %s/good.pickle -o %s/good.jsonl", fx_tmpdir(),
                             fx_tmpdir());
    cr_assert_eq(r.status, 0, "%s", r.err);
    fx_run_free(&r);
    r = fx_cli("replay %s/good.jsonl --vram 2GiB --json", fx_tmpdir());
    cr_assert_eq(r.status, 0, "%s", r.err);
    json_t *j = fx_json(r.out);
    cr_expect(json_is_true(json_object_get(j, "fits")), "%s", r.out);
    json_decref(j);
    fx_run_free(&r);
    r = fx_cli("trace timeline %s/good.jsonl -o %s/good.svg --by site", fx_tmpdir(), fx_tmpdir());
    cr_assert_eq(r.status, 0, "%s", r.err);
    fx_run_free(&r);
    char *svg = fx_path("good.svg"), *text = fx_slurp(svg);
    cr_expect(strstr(text, "class=\"oom\""), "OOM marker");
    cr_expect(strstr(text, "UNet.forward (gen.py:10)"), "call site");
    free(text);
    free(svg);
}

static void expect_refused(const char *file, const char *msg)
{
    struct fx_run r = fx_cli("trace import-torch %s/%s -o %s/out.jsonl", fx_tmpdir(), file,
                             fx_tmpdir());
    char want[1024];
    snprintf(want, sizeof want, "vramshim trace import-torch: %s/%s: %s\n", fx_tmpdir(), file, msg);
    cr_expect_eq(r.status, 1, "%s: status %d", file, r.status);
    cr_expect_str_eq(r.err, want);
    fx_run_free(&r);
    char *out = fx_path("out.jsonl");
    cr_expect_neq(access(out, F_OK), 0, "%s: a half-written trace was left", file);
    free(out);
}

Test(trace_import, bad_snapshots_are_one_precise_error)
{
    make_snapshots();
    free(fx_write("text.pickle", "not a pickle\n"));
    free(fx_write("empty.pickle", ""));
    expect_refused("text.pickle", "byte 0: not a pickle of protocol 2 or later (it would start "
                                  "with byte 0x80)");
    expect_refused("empty.pickle", "byte 0: not a pickle of protocol 2 or later (it would start "
                                   "with byte 0x80)");
    expect_refused("list.pickle", "byte 11: not a PyTorch memory snapshot: expected a dict with "
                                  "'segments' and 'device_traces' lists, found a list (write one "
                                  "with torch.cuda.memory._dump_snapshot() after "
                                  "_record_memory_history())");
    struct fx_run r = fx_cli("trace import-torch %s/global.pickle -o %s/out.jsonl", fx_tmpdir(),
                             fx_tmpdir());
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, "(a reference to a class or function) is not read here"), "%s", r.err);
    cr_expect(strstr(r.err, "global.pickle: byte "), "%s", r.err);
    fx_run_free(&r);
    /* memory and time stay linear in the file, whatever its memo shares */
    r = fx_cli("trace import-torch %s/shared.pickle -o %s/out.jsonl", fx_tmpdir(), fx_tmpdir());
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, "the snapshot reuses its objects (through the pickle memo) more than "
                            "its size allows\n"), "%s", r.err);
    fx_run_free(&r);
    r = fx_cli("trace import-torch %s/truncated.pickle -o %s/out.jsonl", fx_tmpdir(), fx_tmpdir());
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, "(truncated pickle?)\n"), "%s", r.err);
    fx_run_free(&r);
}

/* PyTorch's own reader of snapshots (with the cached test environment's torch) must read the
 * ones this test suite writes, and report what they hold (tests/torch_viz_check.py). */
Test(trace_import, torch_memory_viz_reads_the_test_snapshots)
{
    char *python = vs_pyenv_python("3.11");
    if (!python)
        return;
    make_snapshots();
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "%s -W ignore %s/tests/torch_viz_check.py %s/good.pickle %s/notimes.pickle "
             "%s/protocol2.pickle",
             python, VS_SOURCE_DIR, fx_tmpdir(), fx_tmpdir(), fx_tmpdir());
    free(python);
    cr_expect_eq(system(cmd), 0, "torch.cuda._memory_viz did not read the test snapshots: %s",
                 cmd);
}
