/* Reading vramshim JSON Lines traces: good traces replay with the expected counts and peaks,
 * and every kind of malformed input is refused with a "FILE:LINE: what" message and exit
 * status 2, before anything is replayed. */
#include "replay_fixture.h"

TestSuite(trace_json, .fini = fx_cleanup);

#define HEADER                                                                                     \
    "{\"vramshim_trace\":1,\"pid\":7,\"devices\":[{\"ordinal\":0,\"total\":1073741824}]}\n"

/* Expects `replay PATH` to fail on input with exactly "vramshim replay: PATH:MSG". */
static void expect_refused(const char *name, const char *text, const char *msg)
{
    char *path = fx_write(name, text), colon_msg[512];
    snprintf(colon_msg, sizeof colon_msg, ":%s", msg);
    fx_expect_replay_refused(path, colon_msg);
    free(path);
}

Test(trace_json, good_trace_replays_with_hex_and_integer_pointers)
{
    /* Two streams, integer and hex pointers, the writer's "" strings, and events replay skips. */
    char *path = fx_write(
        "good.jsonl", HEADER
        "{\"ev\":\"site\",\"site\":1,\"frames\":[\"libx.so+0x10 f+0x4\"]}\n"
        "{\"t\":10,\"ev\":\"alloc\",\"api\":\"cuMemAllocAsync\",\"ptr\":\"0x7f0000000000\","
        "\"size\":1048576,\"stream\":\"0x10\",\"dev\":0,\"stage\":\"\",\"tag\":\"\",\"site\":1}\n"
        "{\"t\":20,\"ev\":\"alloc\",\"api\":\"cuMemAlloc_v2\",\"ptr\":139637977776128,"
        "\"size\":3145728,\"stream\":0,\"dev\":0,\"stage\":\"decode\",\"tag\":null,\"site\":0}\n"
        "\n"
        "{\"t\":25,\"ev\":\"stage\",\"stage\":\"decode\"}\n"
        "{\"t\":30,\"ev\":\"free\",\"api\":\"cuMemFreeAsync\",\"ptr\":\"0x7f0000000000\","
        "\"stream\":\"0x10\"}\n"
        "{\"t\":40,\"ev\":\"alloc\",\"api\":\"cuMemAllocAsync\",\"ptr\":\"0x7f0000000000\","
        "\"size\":2097152,\"stream\":\"0x10\"}\n"
        "{\"t\":50,\"ev\":\"map\",\"ptr\":\"0x7e0000000000\",\"size\":2097152,\"handle\":\"0x5\"}"
        "\n");
    struct fx_run r = fx_cli("replay %s --vram 1GiB --json", path);
    cr_assert_eq(r.status, 0, "status %d: %s%s", r.status, r.out, r.err);
    cr_expect(strstr(r.out, "\"allocations\": 3"), "%s", r.out);
    cr_expect(strstr(r.out, "\"events\": 4"), "%s", r.out);
    /* 1 MiB + 3 MiB live, then the 1 MiB freed and 2 MiB taken: peak 5 MiB */
    cr_expect(strstr(r.out, "\"peak_live_bytes\": 5242880"), "%s", r.out);
    fx_run_free(&r);
    free(path);
}

Test(trace_json, invalid_json_names_line_and_column)
{
    char *path = fx_write("bad.jsonl", HEADER
        "{\"t\":1,\"ev\":\"alloc\",\"ptr\":\"0x1000\",\"size\":16}\n"
        "{\"t\":2,\"ev\":\"free\",\"ptr\":\"0x1000\"\n");
    struct fx_run r = fx_cli("replay %s --vram 1GiB", path);
    char want[600];
    snprintf(want, sizeof want, "vramshim replay: %s:3: invalid JSON: ", path);
    cr_expect_eq(r.status, 2);
    cr_expect(!strncmp(r.err, want, strlen(want)), "stderr: %s", r.err);
    cr_expect(strstr(r.err, "(column "), "stderr: %s", r.err);
    fx_run_free(&r);
    free(path);
}

Test(trace_json, missing_keys_are_named)
{
    expect_refused("nosize.jsonl", HEADER "{\"t\":1,\"ev\":\"alloc\",\"ptr\":\"0x1000\"}\n",
                   "2: missing key \"size\"");
    expect_refused("noptr.jsonl", HEADER "{\"t\":1,\"ev\":\"free\"}\n",
                   "2: missing key \"ptr\"");
    expect_refused("not.jsonl", HEADER "{\"t\":1,\"ptr\":\"0x1000\",\"size\":4}\n",
                   "2: missing key \"ev\"");
    expect_refused("not.jsonl", HEADER "\n{\"ev\":\"alloc\",\"ptr\":\"0x1000\",\"size\":4}\n",
                   "3: missing key \"t\"");
}

Test(trace_json, wrong_types_are_named)
{
    expect_refused("size.jsonl", HEADER "{\"t\":1,\"ev\":\"alloc\",\"ptr\":1,\"size\":-4}\n",
                   "2: key \"size\" must be a non-negative integer");
    expect_refused("ptr.jsonl", HEADER "{\"t\":1,\"ev\":\"alloc\",\"ptr\":\"7f00\",\"size\":4}\n",
                   "2: key \"ptr\" must be a non-negative integer or a hex string like "
                   "\"0x7f0000000000\"");
    expect_refused("stage.jsonl",
                   HEADER "{\"t\":1,\"ev\":\"alloc\",\"ptr\":1,\"size\":4,\"stage\":3}\n",
                   "2: key \"stage\" must be a string");
    expect_refused("array.jsonl", HEADER "[1,2]\n", "2: expected a JSON object");
}

Test(trace_json, unknown_event_kind)
{
    expect_refused("ev.jsonl", HEADER "{\"t\":1,\"ev\":\"malloc\",\"ptr\":1,\"size\":4}\n",
                   "2: unknown event \"malloc\" (expected alloc, free, demote, promote, stage, "
                   "oom, map, unmap, create, release or site)");
}

Test(trace_json, pointer_liveness)
{
    expect_refused("unknown.jsonl",
                   HEADER "{\"t\":1,\"ev\":\"alloc\",\"ptr\":\"0x1000\",\"size\":4}\n"
                          "{\"t\":2,\"ev\":\"free\",\"ptr\":\"0xdead\"}\n",
                   "3: free of unknown pointer 0xdead (never allocated, or already freed)");
    expect_refused("double.jsonl",
                   HEADER "{\"t\":1,\"ev\":\"alloc\",\"ptr\":\"0x1000\",\"size\":4}\n"
                          "{\"t\":2,\"ev\":\"free\",\"ptr\":\"0x1000\"}\n"
                          "{\"t\":3,\"ev\":\"free\",\"ptr\":\"0x1000\"}\n",
                   "4: free of unknown pointer 0x1000 (never allocated, or already freed)");
    expect_refused("twice.jsonl",
                   HEADER "{\"t\":1,\"ev\":\"alloc\",\"ptr\":\"0x1000\",\"size\":4}\n"
                          "{\"t\":2,\"ev\":\"alloc\",\"ptr\":\"0x1000\",\"size\":8}\n",
                   "3: alloc returned 0x1000, which is still live (allocated at line 2)");
}

Test(trace_json, header_is_checked)
{
    expect_refused("hdr.jsonl", "{\"pid\":1}\n",
                   "1: not a vramshim trace: the first line lacks \"vramshim_trace\" (expected "
                   "{\"vramshim_trace\":1,...})");
    expect_refused("ver.jsonl", "{\"vramshim_trace\":2}\n",
                   "1: unsupported \"vramshim_trace\" version (this build reads 1)");
}

Test(trace_json, missing_and_empty_files)
{
    char *path = fx_path("absent.jsonl");
    struct fx_run r = fx_cli("replay %s --vram 1GiB", path);
    char want[600];
    snprintf(want, sizeof want, "vramshim replay: %s: No such file or directory\n", path);
    cr_expect_eq(r.status, 2);
    cr_expect_str_eq(r.err, want);
    fx_run_free(&r);
    free(path);
    path = fx_write("empty.jsonl", "");
    r = fx_cli("replay %s --vram 1GiB", path);
    snprintf(want, sizeof want,
             "vramshim replay: %s: empty file (expected a vramshim trace or an RMM CSV log)\n",
             path);
    cr_expect_eq(r.status, 2);
    cr_expect_str_eq(r.err, want);
    fx_run_free(&r);
    free(path);
}
