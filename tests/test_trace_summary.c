/* `vramshim trace summary` and `trace top`: the numbers a user reads to learn what held memory
 * at the peak and at each out-of-memory, checked on a small trace whose answers are worked out
 * by hand, on a demo's real trace, and the refusals of bad input (exit 1, file and line). */
#include "replay_fixture.h"

TestSuite(trace_summary, .fini = fx_cleanup);

#define MIB "*1048576"
/* A 1 GiB device: weights (512 MiB, loaded from Python under torch) then two decode buffers
 * (256 + 384 MiB) while 128 MiB of the weights sit on host; a 256 MiB request is refused. */
static const char hand_trace[] =
    "{\"vramshim_trace\":1,\"pid\":7,\"devices\":[{\"ordinal\":0,\"total\":1073741824}]}\n"
    "{\"ev\":\"site\",\"site\":1,\"frames\":[\"libvramshim.so+0x10 vs_hook+0x4\","
    "\"libtorch_cuda.so+0x20 c10_alloc+0x8\","
    "\"py:/usr/lib/python3/site-packages/torch/nn/modules/module.py:10:Module.to\","
    "\"py:/home/u/gen.py:42:Pipeline.load_unet\",\"py:/home/u/gen.py:90:main\"]}\n"
    "{\"ev\":\"site\",\"site\":2,\"frames\":[\"prog+0x100 make_buffer+0x10\","
    "\"prog+0x200 decode+0x20\",\"libc.so.6+0x10 __libc_start_main+0x5\"]}\n"
    "{\"t\":1000,\"ev\":\"stage\",\"action\":\"begin\",\"stage\":\"load\"}\n"
    "{\"t\":2000,\"ev\":\"alloc\",\"ptr\":\"0x10000000\",\"size\":536870912,\"stage\":\"load\","
    "\"tag\":\"weights\",\"site\":1}\n"
    "{\"t\":3000,\"ev\":\"stage\",\"action\":\"end\",\"stage\":\"load\"}\n"
    "{\"t\":3000,\"ev\":\"stage\",\"action\":\"begin\",\"stage\":\"decode\"}\n"
    "{\"t\":4000,\"ev\":\"alloc\",\"ptr\":\"0x40000000\",\"size\":268435456,\"stage\":\"decode\","
    "\"tag\":\"work\",\"site\":2}\n"
    "{\"t\":5000,\"ev\":\"demote\",\"api\":\"pressure\",\"ptr\":\"0x10000000\",\"size\":134217728}"
    "\n"
    "{\"t\":6000,\"ev\":\"alloc\",\"ptr\":\"0x60000000\",\"size\":402653184,\"stage\":\"decode\","
    "\"tag\":\"work\",\"site\":2}\n"
    "{\"t\":7000,\"ev\":\"oom\",\"ptr\":\"0x0\",\"size\":268435456,\"stage\":\"decode\","
    "\"tag\":\"work\",\"site\":2}\n"
    "{\"t\":8000,\"ev\":\"free\",\"ptr\":\"0x60000000\"}\n"
    "{\"t\":9000,\"ev\":\"promote\",\"api\":\"prefetch\",\"ptr\":\"0x10000000\",\"size\":134217728}"
    "\n"
    "{\"t\":10000,\"ev\":\"free\",\"ptr\":\"0x40000000\"}\n";

static const char *jstr(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    cr_assert(json_is_string(v), "%s is not a string", key);
    return json_string_value(v);
}

Test(trace_summary, peaks_groups_moves_and_oom_of_a_known_trace)
{
    char *path = fx_write("hand.jsonl", hand_trace);
    json_t *j = fx_cli_json(0, "trace summary %s --json", path);
    cr_expect_eq(fx_jint(j, "peak_live_bytes"), 1152LL * 1048576);
    cr_expect_float_eq(json_real_value(json_object_get(j, "peak_live_s")), 5e-6, 1e-12);
    cr_expect_eq(fx_jint(j, "peak_device_bytes"), 1024LL * 1048576); /* 128 MiB was on host */
    cr_expect_float_eq(json_real_value(json_object_get(j, "duration_s")), 9e-6, 1e-12);
    cr_expect_eq(fx_jint(j, "demoted_bytes"), 128LL * 1048576);
    cr_expect_eq(fx_jint(j, "promoted_bytes"), 128LL * 1048576);
    json_t *stages = json_object_get(j, "stages");
    cr_assert_eq(json_array_size(stages), 2);
    json_t *decode = json_array_get(stages, 0), *load = json_array_get(stages, 1);
    cr_expect_str_eq(jstr(decode, "name"), "decode");
    cr_expect_eq(fx_jint(decode, "peak_bytes"), 640LL * 1048576);
    cr_expect_eq(fx_jint(decode, "allocations"), 2);
    cr_expect_str_eq(jstr(load, "name"), "load");
    cr_expect_eq(fx_jint(load, "demoted_bytes"), 128LL * 1048576);
    json_t *tags = json_object_get(j, "tags");
    cr_expect_str_eq(jstr(json_array_get(tags, 0), "name"), "work");
    /* The program's own innermost frames: past the shim, torch's C++ and Python frames. */
    json_t *sites = json_object_get(j, "sites_at_peak");
    cr_assert_eq(json_array_size(sites), 2);
    cr_expect_str_eq(jstr(json_array_get(sites, 0), "name"), "make_buffer < decode");
    cr_expect_eq(fx_jint(json_array_get(sites, 0), "bytes"), 640LL * 1048576);
    cr_expect_str_eq(jstr(json_array_get(sites, 1), "name"),
                     "Pipeline.load_unet (gen.py:42) < main (gen.py:90)");
    json_t *ooms = json_object_get(j, "ooms");
    cr_assert_eq(json_array_size(ooms), 1);
    json_t *o = json_array_get(ooms, 0);
    cr_expect_eq(fx_jint(o, "line"), 11);
    cr_expect_eq(fx_jint(o, "requested_bytes"), 256LL * 1048576);
    cr_expect_eq(fx_jint(o, "live_bytes"), 1152LL * 1048576);
    cr_expect_eq(fx_jint(o, "free_bytes"), 0);
    cr_expect_eq(fx_jint(o, "largest_gap_bytes"), 256LL * 1048576);
    json_t *by_stage = json_object_get(o, "by_stage");
    cr_expect_str_eq(jstr(json_array_get(by_stage, 0), "name"), "decode");
    cr_expect_eq(fx_jint(json_array_get(by_stage, 0), "bytes"), 640LL * 1048576);
    cr_expect_eq(fx_jint(json_array_get(by_stage, 1), "bytes"), 512LL * 1048576);
    json_decref(j);
    free(path);
}

Test(trace_summary, text_names_the_oom_and_what_was_live)
{
    char *path = fx_write("hand.jsonl", hand_trace);
    struct fx_run r = fx_cli("trace summary %s", path);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.out, "peak live    1.12 GiB at 5.000 us"), "%s", r.out);
    cr_expect(strstr(r.out, "out of memory 1 at 6.000 us (line 11): 256.00 MiB requested in "
                            "stage decode, tag work, at make_buffer < decode"), "%s", r.out);
    cr_expect(strstr(r.out, "by stage: decode 640.00 MiB, load 512.00 MiB"), "%s", r.out);
    fx_run_free(&r);
    free(path);
}

Test(trace_summary, top_at_oom_time_and_peak)
{
    char *path = fx_write("hand.jsonl", hand_trace);
    struct fx_run r = fx_cli("trace top %s --at-oom 1 --by stage", path);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.out, "at out-of-memory 1 (line 11, 256.00 MiB requested): 1.12 GiB live "
                            "(128.00 MiB on host)"), "%s", r.out);
    char *decode = strstr(r.out, "decode"), *load = strstr(r.out, " load");
    cr_expect(decode && load && decode < load, "largest first: %s", r.out);
    cr_expect(strstr(r.out, "640.00 MiB   55.6%          0 B  decode  (make_buffer < decode)"),
              "%s", r.out);
    fx_run_free(&r);
    /* 8.5 us in: the 384 MiB buffer is freed and the weights are back on the device. */
    r = fx_cli("trace top %s --at 0.0000085 --by tag", path);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.out, "768.00 MiB live (0 B on host)"), "%s", r.out);
    fx_run_free(&r);
    r = fx_cli("trace top %s", path);
    cr_expect(strstr(r.out, "at the peak of live bytes: 1.12 GiB live"), "%s", r.out);
    fx_run_free(&r);
    r = fx_cli("trace top %s --at-oom 2", path);
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, "--at-oom 2, but the trace has 1 out-of-memory event\n"), "%s", r.err);
    fx_run_free(&r);
    r = fx_cli("trace top %s --by thread", path);
    cr_expect_eq(r.status, 2);
    fx_run_free(&r);
    free(path);
}

/* The demo's pass-through run of Wan 2.1 on its 12 GB card dies loading the text encoder. */
Test(trace_summary, demo_trace_tells_what_held_memory_at_the_oom)
{
    fx_demo_wan();
    struct fx_run r = fx_cli("trace summary %s/demo/wan21-t2v-1.3b.passthrough.jsonl", fx_tmpdir());
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.out, "out of memory 1 at "), "%s", r.out);
    cr_expect(strstr(r.out, "requested in stage -, tag -, at vs_demo_alloc < vs_demo_model_load "
                            "< t5_load"), "%s", r.out);
    cr_expect(strstr(r.out, "GiB  vs_demo_alloc < vs_demo_model_load < dit_load"), "%s", r.out);
    /* pass-through has no arena: nothing reserved to record */
    cr_expect(strstr(r.out, "\nreserved     not recorded in this trace (pass-through, an older "
                            "shim, an import or an RMM log)\n"), "%s", r.out);
    fx_run_free(&r);
    r = fx_cli("trace summary %s/demo/wan21-t2v-1.3b.vramshim.jsonl --json", fx_tmpdir());
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.out, "\"name\": \"text_encode\""), "%s", r.out);
    cr_expect(!strstr(r.out, "\"demoted_bytes\": 0,\n \"demotions\""), "demotion seen: %s", r.out);
    /* The shim records its arena's physical memory: at the moment of the peak on the device the
     * arena held at least those bytes, and never more than the card. */
    json_t *j = fx_json(r.out);
    cr_assert(json_is_integer(json_object_get(j, "peak_reserved_bytes")), "%s", r.out);
    cr_expect_geq(fx_jint(j, "peak_reserved_bytes"), fx_jint(j, "peak_device_bytes"));
    cr_expect_leq(fx_jint(j, "peak_reserved_bytes"), fx_jint(j, "device_total_bytes"));
    cr_expect_eq(fx_jint(j, "peak_reserved_bytes") % (2 << 20), 0, "whole 2 MiB granules");
    double at = json_real_value(json_object_get(j, "peak_reserved_s"));
    cr_expect(at > 0 && at <= json_real_value(json_object_get(j, "duration_s")), "%f", at);
    json_decref(j);
    fx_run_free(&r);
}

/* "reserved" on events (the shim's arenas, per device, each event carrying its device's figure
 * after it): summary gives the peak of the devices' sum and when it was first reached. */
Test(trace_summary, peak_reserved_sums_the_devices_last_figures)
{
    char *path = fx_write(
        "reserved.jsonl",
        "{\"vramshim_trace\":1,\"pid\":7,\"devices\":[]}\n"
        "{\"t\":1000,\"ev\":\"alloc\",\"ptr\":\"0x1000\",\"size\":100,\"dev\":0,\"reserved\":"
        "2097152}\n"
        "{\"t\":2000,\"ev\":\"alloc\",\"ptr\":\"0x2000\",\"size\":100,\"dev\":1,\"reserved\":"
        "4194304}\n"
        "{\"t\":3000,\"ev\":\"stage\",\"action\":\"begin\",\"stage\":\"x\",\"dev\":0,"
        "\"reserved\":6291456}\n"
        "{\"t\":4000,\"ev\":\"free\",\"ptr\":\"0x2000\",\"dev\":1,\"reserved\":2097152}\n"
        "{\"t\":5000,\"ev\":\"free\",\"ptr\":\"0x1000\",\"dev\":0,\"reserved\":8388608}\n");
    json_t *j = fx_cli_json(0, "trace summary %s --json", path);
    /* 2+4, then 6+4 = 10 MiB at 3 us (2 us after the first event), then 6+2, then 8+2 = 10 */
    cr_expect_eq(fx_jint(j, "peak_reserved_bytes"), 10LL * 1048576);
    cr_expect_float_eq(json_real_value(json_object_get(j, "peak_reserved_s")), 2e-6, 1e-12);
    json_decref(j);
    struct fx_run r = fx_cli("trace summary %s", path);
    cr_expect(strstr(r.out, "\npeak reserved 10.00 MiB at 2.000 us"), "%s", r.out);
    fx_run_free(&r);
    free(path);
    /* a trace without the key (older shims, pass-through) */
    path = fx_write("hand.jsonl", hand_trace);
    j = fx_cli_json(0, "trace summary %s --json", path);
    cr_expect(json_is_null(json_object_get(j, "peak_reserved_bytes")));
    cr_expect(json_is_null(json_object_get(j, "peak_reserved_s")));
    json_decref(j);
    free(path);
}

/* msg: what follows the path; a message ending in "..." need only start the error. */
static void expect_bad(const char *name, const char *text, const char *msg)
{
    char *path = fx_write(name, text);
    struct fx_run r = fx_cli("trace summary %s", path);
    char want[1024];
    snprintf(want, sizeof want, "vramshim trace: %s%s\n", path, msg);
    size_t n = strlen(want);
    bool prefix = n > 4 && !strcmp(want + n - 4, "...\n");
    cr_expect_eq(r.status, 1, "status %d: %s", r.status, r.err);
    cr_expect(prefix ? !strncmp(r.err, want, n - 4) && !strchr(r.err, '\n')[1]
                     : !strcmp(r.err, want), "stderr: %s, want %s", r.err, want);
    cr_expect_str_empty(r.out);
    fx_run_free(&r);
    free(path);
}

#define HDR "{\"vramshim_trace\":1,\"pid\":7,\"devices\":[{\"ordinal\":0,\"total\":1073741824}]}\n"

Test(trace_summary, bad_input_is_one_precise_error_and_exit_1)
{
    expect_bad("empty.jsonl", "", ": empty file (expected a vramshim trace or an RMM CSV log)");
    expect_bad("header.jsonl", HDR, ": no events after the header (an empty trace)");
    expect_bad("newer.jsonl", "{\"vramshim_trace\":2,\"pid\":7}\n",
               ":1: unsupported \"vramshim_trace\" version (this build reads 1)");
    expect_bad("truncated.jsonl", HDR "{\"t\":1,\"ev\":\"alloc\",\"ptr\":\"0x1000\",\"size\":16}\n"
               "{\"t\":2,\"ev\":\"free\",\"pt",
               ":3: invalid JSON: premature end of input...");
    expect_bad("dup_site.jsonl",
               HDR "{\"ev\":\"site\",\"site\":1,\"frames\":[]}\n"
                   "{\"ev\":\"site\",\"site\":1,\"frames\":[]}\n",
               ":3: call site 1 is described twice");
    expect_bad("bad_action.jsonl", HDR "{\"t\":1,\"ev\":\"stage\",\"action\":\"pause\"}\n",
               ":2: key \"action\" is \"pause\" (expected begin or end)");
    expect_bad("bad_reserved.jsonl", HDR "{\"t\":1,\"ev\":\"oom\",\"size\":16,\"reserved\":-2}\n",
               ":2: key \"reserved\" must be a non-negative integer");
    expect_bad("huge_reserved.jsonl",
               HDR "{\"t\":1,\"ev\":\"oom\",\"size\":16,\"reserved\":9223372036854775807}\n",
               ":2: key \"reserved\" is 9223372036854775807 bytes, more than any device holds");
}
