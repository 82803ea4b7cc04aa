/* `vramshim policy suggest`: from each demo scenario's run (its recorded stages and tags removed,
 * as a pass-through trace of the whole run would be), a policy that `policy check --strict`
 * accepts and with which `replay` fits the scenario's card, which it does not without. */

#include "replay_fixture.h"

TestSuite(policy_suggest, .fini = fx_cleanup);

static const struct {
    const char *scenario, *program;
} scenarios[] = {
    {"wan21-t2v-1.3b", "wan21_t2v"},
    {"ovi-fusion", "ovi_fusion"},
    {"comfyui-wan22-5b", "comfyui_wan22"},
    {"python-wan21-t2v-1.3b", "python_wan.py"},
};

/* The card the scenario runs on: its GPU less what another process holds. */
static long long usable_bytes(const char *program)
{
    char cmd[1024], *out = fx_path("describe.json");
    snprintf(cmd, sizeof cmd, "%s/demo/%s --describe >%s", VS_BUILD_DIR, program, out);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    char *text = fx_slurp(out);
    json_t *d = fx_json(text);
    long long bytes = (long long)(json_integer_value(json_object_get(d, "gpu_bytes")) -
                                  json_integer_value(json_object_get(d, "taken_bytes")));
    json_decref(d);
    free(text);
    free(out);
    return bytes;
}

Test(policy_suggest, demo_runs_give_policies_that_fit_their_cards, .timeout = 240)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s demo --out %s/demo >/dev/null 2>&1", FX_CLI, fx_tmpdir());
    cr_assert_eq(system(cmd), 0, "vramshim demo failed");
    for (size_t i = 0; i < sizeof scenarios / sizeof *scenarios; i++) {
        const char *s = scenarios[i].scenario;
        char bare[512], ini[512];
        snprintf(bare, sizeof bare, "%s/%s.bare.jsonl", fx_tmpdir(), s);
        snprintf(ini, sizeof ini, "%s/%s.ini", fx_tmpdir(), s);
        snprintf(
            cmd, sizeof cmd,
            "sed -e 's/\"stage\":\"[a-z_]*\"/\"stage\":\"\"/' -e "
            "'s/\"tag\":\"[a-z_]*\"/\"tag\":\"\"/' "
            "%s/demo/%s.vramshim.jsonl | grep -v '\"ev\":\"\\(stage\\|demote\\|promote\\)\"' >%s",
            fx_tmpdir(), s, bare);
        cr_assert_eq(system(cmd), 0);
        struct fx_run r = fx_cli("policy suggest %s -o %s", bare, ini);
        cr_assert_eq(r.status, 0, "%s: %s", s, r.err);
        fx_run_free(&r);
        r = fx_cli("policy check --strict %s", ini);
        cr_expect_eq(r.status, 0, "%s: %s", s, r.err);
        fx_run_free(&r);
        long long card = usable_bytes(scenarios[i].program);
        r = fx_cli("replay %s --vram %lld", bare, card);
        cr_expect_eq(r.status, 1, "%s fits its card without a policy: %s", s, r.out);
        fx_run_free(&r);
        r = fx_cli("replay %s --vram %lld --policy %s", bare, card, ini);
        cr_expect_eq(r.status, 0, "%s does not fit with the suggested policy: %s%s", s, r.out,
                     r.err);
        fx_run_free(&r);
    }
    /* the suggestion names the phases of the C demo, commented with their bytes */
    char *ini = fx_path("wan21-t2v-1.3b.ini"), *text = fx_slurp(ini);
    cr_expect(strstr(text, "[stage t5_load]\nmatch = t5_load\n; dit_load: 5.29 GiB live and idle "
                           "while t5_load runs\n"), "%s", text);
    free(text);
    free(ini);
}

Test(policy_suggest, a_trace_without_call_sites_is_refused)
{
    char *ini = fx_path("x.ini");
    struct fx_run r = fx_cli("policy suggest %s/dit-denoise-small.jsonl -o %s", FX_WORKLOADS, ini);
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, "dit-denoise-small.jsonl: no allocation has a call site with frames of "
                            "the program"), "%s", r.err);
    fx_run_free(&r);
    free(ini);
}
