/* `vramshim replay --policy`: the arena replay follows the policy's stages, tags and eviction,
 * so "does it fit" includes what vramshim would demote. Checked on the Wan 2.1 demo: its trace
 * under vramshim does not fit its card without the policy, fits with it, and the replay demotes
 * and promotes exactly what the live run did (read back from the run's own trace). */
#include "replay_fixture.h"

TestSuite(replay_policy, .fini = fx_cleanup);

#define POLICY VS_SOURCE_DIR "/policy/examples/wan21-t2v-1.3b-12gb.ini"

/* Replays trace on the card the run had, with the policy, and compares with the run. */
static void check_policy_replay(const char *trace, json_int_t card, json_t *run)
{
    char vram[32];
    snprintf(vram, sizeof vram, "%lld", (long long)card);
    json_t *rep = fx_cli_json(0, "replay %s --vram %s --json --policy " POLICY, trace, vram);
    cr_expect(json_is_true(json_object_get(rep, "fits")));
    cr_expect_gt(fx_jint(rep, "demoted_bytes"), 0);
    cr_expect_eq(fx_jint(rep, "demoted_bytes"), fx_jint(run, "demoted_bytes"));
    cr_expect_eq(fx_jint(rep, "promoted_bytes"), fx_jint(run, "promoted_bytes"));
    cr_expect_gt(fx_jint(rep, "peak_host_bytes"), 0);
    cr_expect_leq(fx_jint(rep, "peak_physical_bytes"), card);
    json_decref(rep);
}

Test(replay_policy, demo_fits_with_its_policy_and_demotes_what_the_run_did)
{
    fx_demo_wan();
    char trace[512];
    snprintf(trace, sizeof trace, "%s/demo/wan21-t2v-1.3b.vramshim.jsonl", fx_tmpdir());
    json_t *run = fx_cli_json(0, "trace summary %s --json", trace);
    json_int_t card = fx_jint(run, "device_total_bytes");
    char vram[32];
    snprintf(vram, sizeof vram, "%lld", (long long)card);
    json_t *plain = fx_cli_json(1, "replay %s --vram %s --json", trace, vram);
    cr_expect(json_is_false(json_object_get(plain, "fits")), "fits without the policy");
    /* the arena's out-of-memory line comes with the hint a policy would have answered */
    const char *log = json_string_value(
        json_object_get(json_object_get(plain, "failed_event"), "log"));
    cr_expect(log && strstr(log, "\nvramshim: hint: stage load holds "), "%s", log);
    cr_expect(log && strstr(log, "`evict = load` in [stage text_encode]"), "%s", log);
    cr_expect_eq(fx_jint(plain, "demoted_bytes"), 0);
    json_decref(plain);
    check_policy_replay(trace, card, run);

    /* The same run without its recorded stages and tags (as a trace taken in pass-through mode
     * would be): the policy's match patterns on the call sites give them back. */
    char bare[512], cmd[2048];
    snprintf(bare, sizeof bare, "%s/bare.jsonl", fx_tmpdir());
    snprintf(
        cmd, sizeof cmd,
        "sed -e 's/\"stage\":\"[a-z_]*\"/\"stage\":\"\"/' -e 's/\"tag\":\"[a-z_]*\"/\"tag\":\"\"/' "
        "%s | grep -v '\"ev\":\"\\(stage\\|demote\\|promote\\)\"' > %s",
        trace, bare);
    cr_assert_eq(system(cmd), 0);
    check_policy_replay(bare, card, run);
    json_decref(run);
}

Test(replay_policy, text_report_names_the_policy_and_the_moves)
{
    struct fx_run r = fx_cli("replay %s/wan21-vae-decode-small.jsonl --vram 1GiB --policy " POLICY,
                             FX_WORKLOADS);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.out, "policy         " POLICY " (arena only)\n"), "%s", r.out);
    cr_expect(strstr(r.out, "\ndemoted         0 B"), "%s", r.out);
    cr_expect(strstr(r.out, "\npeak on host    0 B"), "%s", r.out);
    fx_run_free(&r);
}

Test(replay_policy, a_bad_policy_is_refused_before_replaying)
{
    char *bad = fx_write("bad.ini", "[stage decode]\nheadroom = two GiB\n");
    struct fx_run r = fx_cli("replay %s/dit-denoise-small.jsonl --vram 1GiB --policy %s",
                             FX_WORKLOADS, bad);
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "bad.ini:2: "), "%s", r.err);
    cr_expect(strstr(r.err, "vramshim replay: the policy "), "%s", r.err);
    cr_expect_str_empty(r.out);
    fx_run_free(&r);
    free(bad);
}
