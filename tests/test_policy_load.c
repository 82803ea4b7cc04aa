/* Good policy files: every key parsed into the rules the allocator queries, defaults, INI
 * details (continuation lines, comments, BOM, CRLF), the victim rule, and the name registry. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>

#include "policy/size.h"
#include "tests/policy_fixture.h"

static const char every_key[] =
    "; every key\n"
    "[global]\n"
    "eviction = on\n"
    "watermark = 85%\n"
    "ctl = yes\n"
    "\n"
    "[stage load]\n"
    "match = Pipeline.__init__, *load_weights*   ; inline comment\n"
    "\n"
    "[tag vae]\n"
    "match = AutoencoderKL.__init__\n"
    "headroom = 512MiB\n"
    "\n"
    "[stage decode]\n"
    "match = VAE.decode,\n"
    "        *vae_decode*,\n"
    "        sd.cpp::decode_first_stage\n"
    "evict = load, text_encode\n"
    "headroom = 1.5GiB\n"
    "prefetch = vae\n"
    "\n"
    "[stage text_encode]\n"
    "evict = load\n";

Test(policy_load, every_key_of_every_section)
{
    struct vs_policy *p = pf_parse_ok(every_key);
    cr_expect(vs_policy_eviction(p));
    cr_expect_float_eq(vs_policy_watermark(p), 0.85, 1e-12);
    cr_expect(vs_policy_ctl(p));
    cr_expect(vs_policy_has_matches(p));
    cr_assert_eq(vs_policy_rule_count(p), 4);

    const struct vs_policy_rule *load = vs_policy_rule_at(p, 0);
    cr_expect_eq(load->kind, VS_RULE_STAGE);
    cr_expect_str_eq(load->name_str, "load");
    cr_expect_eq(load->line, 7);
    cr_assert_eq(load->n_match, 2);
    cr_expect_str_eq(load->match[0], "Pipeline.__init__");
    cr_expect_str_eq(load->match[1], "*load_weights*");
    cr_expect_not(load->has_headroom);
    cr_expect_eq(load->evict.n + load->prefetch.n, 0);

    const struct vs_policy_rule *vae = vs_policy_rule_at(p, 1);
    cr_expect_eq(vae->kind, VS_RULE_TAG);
    cr_expect_str_eq(vae->name_str, "vae");
    cr_expect(vae->has_headroom);
    cr_expect_eq(vae->headroom, 512ull << 20);

    const struct vs_policy_rule *decode = vs_policy_rule_at(p, 2);
    cr_expect_eq(decode->line, 14);
    cr_assert_eq(decode->n_match, 3);
    cr_expect_str_eq(decode->match[2], "sd.cpp::decode_first_stage");
    cr_expect_str_eq(pf_list(&decode->evict), "load,text_encode");
    cr_expect_str_eq(pf_list(&decode->prefetch), "vae");
    cr_expect_eq(decode->headroom, 3ull << 29);

    const struct vs_policy_rule *te = vs_policy_rule_at(p, 3);
    cr_expect_eq(te->n_match, 0);
    cr_expect_str_eq(pf_list(&te->evict), "load");
    /* Rules are found by the name ids the registry gives. */
    cr_expect_eq(pf_rule(p, "decode"), decode);
    cr_expect_eq(pf_rule(p, "vae"), vae);
    cr_expect_null(vs_policy_rule_of(p, vs_names_intern(pf_names, "runtime_only")));
    cr_expect_null(vs_policy_rule_of(p, 0));
    cr_expect_str_eq(vs_policy_filename(p), "t.ini");
    vs_policy_free(p);
}

Test(policy_load, defaults_of_an_empty_file)
{
    struct vs_policy *p = pf_parse_ok("; nothing but a comment\n");
    cr_expect(vs_policy_eviction(p));
    cr_expect_float_eq(vs_policy_watermark(p), VS_POLICY_DEFAULT_WATERMARK, 1e-12);
    cr_expect_not(vs_policy_ctl(p));
    cr_expect_eq(vs_policy_rule_count(p), 0);
    cr_expect_not(vs_policy_has_matches(p));
    struct vs_policy_match m;
    const char *frames[] = {"a.out+0x10 main+0x4"};
    vs_policy_match_frames(p, frames, 1, &m);
    cr_expect_eq(m.stage, 0);
    cr_expect_eq(m.stage_frame, -1);
    vs_policy_free(p);
}

/* An LLM server's policy: lends its weights when a peer asks, never its KV cache. */
static const char lend_policy[] =
    "[tag weights]\n"
    "match = llm_load_weights\n"
    "[tag kv]\n"
    "match = llm_answer_request\n"
    "[stage serve]\n"
    "[lend]\n"
    "lend = weights,\n"
    "       serve\n"
    "never = kv\n"
    "idle_after = 1.5s\n"
    "wait = 2min\n";

Test(policy_load, lend_section_names_what_a_peer_may_have)
{
    struct vs_policy *p = pf_parse_ok(lend_policy);
    const struct vs_policy_lend *l = vs_policy_lend_rules(p);
    cr_expect_eq(l->line, 6);
    cr_expect_str_eq(pf_list(&l->lend), "weights,serve");
    cr_expect_str_eq(pf_list(&l->never), "kv");
    cr_expect_eq(l->idle_after_ms, 1500);
    cr_expect_eq(l->wait_ms, 120000);
    uint32_t weights = vs_names_find(pf_names, "weights"), kv = vs_names_find(pf_names, "kv"),
             serve = vs_names_find(pf_names, "serve"), other = vs_names_intern(pf_names, "x");
    cr_expect(vs_policy_lends(p, 0, weights));
    cr_expect(vs_policy_lends(p, serve, 0));
    cr_expect(vs_policy_lends(p, serve, other));
    /* never wins over lend, whether it names the block's stage or its tag */
    cr_expect_not(vs_policy_lends(p, serve, kv));
    cr_expect_not(vs_policy_lends(p, 0, kv));
    cr_expect_not(vs_policy_lends(p, other, 0));
    cr_expect_not(vs_policy_lends(p, 0, 0));
    vs_policy_free(p);
}

Test(policy_load, without_lend_section_nothing_is_lent_and_waits_are_short)
{
    struct vs_policy *p = pf_parse_ok("[tag weights]\nmatch = load\n");
    const struct vs_policy_lend *l = vs_policy_lend_rules(p);
    cr_expect_eq(l->line, 0);
    cr_expect_eq(l->lend.n + l->never.n, 0);
    cr_expect_eq(l->idle_after_ms, VS_POLICY_DEFAULT_IDLE_AFTER_MS);
    cr_expect_eq(l->wait_ms, VS_POLICY_DEFAULT_WAIT_MS);
    cr_expect_leq(l->wait_ms, 10000, "a borrower waits a few seconds by default");
    cr_expect_not(vs_policy_lends(p, 0, vs_names_find(pf_names, "weights")));
    vs_policy_free(p);
}

Test(policy_load, durations_take_units_and_their_bounds)
{
    static const struct {
        const char *text;
        uint64_t ms;
    } ok[] = {{"0s", 0}, {"250ms", 250}, {"5s", 5000}, {"1.5 s", 1500}, {"2MIN", 120000},
              {"0.1h", 360000}, {"0.0005s", 0}, {"10min", VS_POLICY_MAX_WAIT_MS}};
    char text[128];
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        snprintf(text, sizeof text, "[lend]\nwait = %s\n", ok[i].text);
        struct vs_policy *p = pf_parse_ok(text);
        cr_expect_eq(vs_policy_lend_rules(p)->wait_ms, ok[i].ms, "%s", ok[i].text);
        vs_policy_free(p);
    }
    uint64_t ms;
    static const char *const bad[] = {"5", "s", "5 sec", "-1s", "1e3ms", "1.s", "5s5", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_eq(vs_policy_duration_parse(bad[i], &ms), VS_SIZE_BAD, "'%s'", bad[i]);
    cr_expect_eq(vs_policy_duration_parse("99999999999999999999ms", &ms), VS_SIZE_TOO_LARGE);
    cr_expect_eq(vs_policy_duration_parse("9999999999999999h", &ms), VS_SIZE_TOO_LARGE);
    cr_expect_eq(vs_policy_duration_parse("1h", &ms), VS_SIZE_OK);
    cr_expect_eq(ms, 3600000);
    struct vs_policy *p = pf_parse("[lend]\nwait = 11min\nidle_after = 25h\n");
    cr_expect_null(p, "waits above their bound are refused");
    vs_policy_free(p);
}

Test(policy_load, switches_accept_on_off_synonyms)
{
    static const char *const on[] = {"on", "ON", "true", "Yes", "1"};
    static const char *const off[] = {"off", "Off", "false", "no", "0"};
    char text[128];
    for (size_t i = 0; i < 5; i++) {
        snprintf(text, sizeof text, "[global]\neviction = %s\nctl = %s\n", off[i], on[i]);
        struct vs_policy *p = pf_parse_ok(text);
        cr_expect_not(vs_policy_eviction(p), "%s", off[i]);
        cr_expect(vs_policy_ctl(p), "%s", on[i]);
        vs_policy_free(p);
    }
}

Test(policy_load, watermark_bounds_and_percent)
{
    static const struct {
        const char *text;
        double value;
    } ok[] = {{"0", 0}, {"1", 1}, {"0.9", 0.9}, {"90%", 0.9}, {"100%", 1}, {"0%", 0}};
    char text[128];
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        snprintf(text, sizeof text, "[global]\nwatermark = %s\n", ok[i].text);
        struct vs_policy *p = pf_parse_ok(text);
        cr_expect_float_eq(vs_policy_watermark(p), ok[i].value, 1e-12, "%s", ok[i].text);
        vs_policy_free(p);
    }
    static const char *const bad[] = {"-0.1", "1.0001", "101%", "nan", "inf", "0.9x", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text, "[global]\nwatermark = %s\n", bad[i]);
        cr_expect_null(pf_parse(text), "watermark '%s' accepted", bad[i]);
        cr_expect_eq(pf_diags.errors, 1, "%s", bad[i]);
    }
}

Test(policy_load, bom_crlf_and_colon_separator)
{
    struct vs_policy *p =
        pf_parse_ok("\xEF\xBB\xBF[stage decode]\r\nmatch: VAE.decode\r\nheadroom = 1GiB\r\n");
    const struct vs_policy_rule *r = pf_rule(p, "decode");
    cr_assert_eq(r->n_match, 1);
    cr_expect_str_eq(r->match[0], "VAE.decode");
    cr_expect_eq(r->headroom, 1ull << 30);
    vs_policy_free(p);
}

Test(policy_load, list_may_start_on_continuation_lines)
{
    struct vs_policy *p = pf_parse_ok("[stage load]\n"
                                      "[stage decode]\n"
                                      "match =\n"
                                      "    VAE.decode,\n"
                                      "    *vae_decode*,\n"
                                      "evict =\n"
                                      "\tload\n");
    const struct vs_policy_rule *r = pf_rule(p, "decode");
    cr_assert_eq(r->n_match, 2);
    cr_expect_str_eq(r->match[1], "*vae_decode*");
    cr_expect_str_eq(pf_list(&r->evict), "load");
    vs_policy_free(p);
}

Test(policy_load, warnings_alone_still_give_a_policy)
{
    struct vs_policy *p = pf_parse("[stage decode]\nevict = text_encode\n");
    cr_assert(p);
    cr_expect_eq(pf_diags.errors, 0);
    cr_expect_eq(pf_diags.warnings, 1);
    /* A name named only at run time still gets the file's id, so the rule works. */
    cr_expect_str_eq(pf_list(&pf_rule(p, "decode")->evict), "text_encode");
    vs_policy_free(p);
}

Test(policy_load, names_share_ids_with_runtime_names)
{
    vs_policy_free(pf_parse_ok("")); /* creates the registry */
    uint32_t early = vs_names_intern(pf_names, "decode");
    cr_assert_neq(early, 0);
    struct vs_policy *p = pf_parse_ok("[stage decode]\nmatch = VAE.decode\n");
    cr_expect_eq(vs_policy_rule_at(p, 0)->name, early);
    cr_expect_eq(vs_names_intern(pf_names, "decode"), early);
    vs_policy_free(p);
}

static char rp_lines[8][1100];
static int rp_n;
static void rp_sink(const char *line)
{
    if (rp_n < 8)
        snprintf(rp_lines[rp_n++], sizeof rp_lines[0], "%s", line);
}

Test(policy_load, shim_loader_reports_every_line_and_falls_back)
{
    struct vs_names *n = vs_names_create();
    struct vs_policy *p =
        vs_policy_load_reported(VS_SOURCE_DIR "/tests/policy_bad/eviction_bad.ini", n, rp_sink);
    cr_expect_null(p);
    cr_assert_eq(rp_n, 3);
    cr_expect(strstr(rp_lines[0], "eviction_bad.ini:2: [global] key 'eviction': expected on or "
                                  "off, got 'maybe'"),
              "%s", rp_lines[0]);
    cr_expect(strstr(rp_lines[1], "eviction_bad.ini:3: [global] key 'ctl'"), "%s", rp_lines[1]);
    cr_expect(strstr(rp_lines[2], "eviction_bad.ini not used (2 errors): running without a "
                                  "policy"),
              "%s", rp_lines[2]);
    rp_n = 0;
    p = vs_policy_load_reported(VS_SOURCE_DIR "/policy/examples/ovi-fusion-32gb.ini", n, rp_sink);
    cr_expect(p);
    cr_expect_eq(rp_n, 0);
    vs_policy_free(p);
    vs_names_destroy(n);
}

/* --- victims ---------------------------------------------------------------------------------- */

static const char victims[] = "[stage load]\n"
                              "[stage text_encode]\n"
                              "[tag vae]\n"
                              "[stage decode]\n"
                              "evict = load, text_encode\n"
                              "prefetch = vae\n";

Test(policy_load, victims_follow_evict_and_prefetch)
{
    struct vs_policy *p = pf_parse_ok(victims);
    uint32_t decode = vs_names_find(pf_names, "decode"), load = vs_names_find(pf_names, "load"),
             te = vs_names_find(pf_names, "text_encode"), vae = vs_names_find(pf_names, "vae"),
             other = vs_names_intern(pf_names, "other");
    cr_expect(vs_policy_is_victim(p, decode, load, 0));
    cr_expect(vs_policy_is_victim(p, decode, te, 0));
    cr_expect(vs_policy_is_victim(p, decode, other, te), "tag in the evict list");
    cr_expect_not(vs_policy_is_victim(p, decode, load, vae), "a prefetched tag protects");
    cr_expect_not(vs_policy_is_victim(p, decode, other, 0));
    cr_expect_not(vs_policy_is_victim(p, decode, 0, 0));
    cr_expect_not(vs_policy_is_victim(p, decode, decode, 0), "the running stage's own memory");
    cr_expect_not(vs_policy_is_victim(p, load, te, 0), "load has no evict list");
    cr_expect_not(vs_policy_is_victim(p, other, load, 0), "no rule for a runtime-only stage");
    cr_expect_not(vs_policy_is_victim(p, 0, load, 0));
    vs_policy_free(p);
}

Test(policy_load, eviction_off_makes_nothing_a_victim)
{
    char text[512];
    snprintf(text, sizeof text, "[global]\neviction = off\n%s", victims);
    struct vs_policy *p = pf_parse(text);
    cr_assert(p);
    cr_expect_eq(pf_diags.warnings, 1); /* rules with no effect */
    cr_expect_not(vs_policy_is_victim(p, vs_names_find(pf_names, "decode"),
                                      vs_names_find(pf_names, "load"), 0));
    vs_policy_free(p);
}

/* --- name registry ------------------------------------------------------------------------- */

Test(policy_names, validity)
{
    static const char *const ok[] = {"decode", "text_encode", "VAE.decode", "a-b:c/d@e+f", "x",
                                     "0123456789012345678901234567890123456789"};
    static const char *const bad[] = {"", "two words", "a,b", "vae*", "tab\there", "q?",
                                      "01234567890123456789012345678901234567890", "[x]"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        cr_expect(vs_name_valid(ok[i], strlen(ok[i])), "'%s'", ok[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_not(vs_name_valid(bad[i], strlen(bad[i])), "'%s'", bad[i]);
    struct vs_names *n = vs_names_create();
    cr_expect_eq(vs_names_intern(n, "two words"), 0);
    cr_expect_eq(vs_names_intern(n, NULL), 0);
    cr_expect_eq(vs_names_count(n), 0);
    vs_names_destroy(n);
}

Test(policy_names, intern_find_str)
{
    struct vs_names *n = vs_names_create();
    uint32_t a = vs_names_intern(n, "decode"), b = vs_names_intern(n, "denoise");
    cr_expect_neq(a, 0);
    cr_expect_neq(b, 0);
    cr_expect_neq(a, b);
    cr_expect_eq(vs_names_intern(n, "decode"), a);
    cr_expect_eq(vs_names_find(n, "denoise"), b);
    cr_expect_eq(vs_names_find(n, "unknown"), 0);
    cr_expect_str_eq(vs_names_str(n, a), "decode");
    cr_expect_null(vs_names_str(n, 0));
    cr_expect_null(vs_names_str(n, VS_NAMES_CAPACITY + 5));
    cr_expect_eq(vs_names_count(n), 2);
    vs_names_destroy(n);
}

Test(policy_names, full_registry_refuses_new_names_keeps_old_ones)
{
    struct vs_names *n = vs_names_create();
    char name[32];
    size_t got = 0;
    for (size_t i = 0; i < VS_NAMES_CAPACITY; i++) {
        snprintf(name, sizeof name, "stage_%zu", i);
        got += vs_names_intern(n, name) != 0;
    }
    cr_expect_eq(got, VS_NAMES_MAX);
    cr_expect_eq(vs_names_intern(n, "one_more"), 0);
    cr_expect_neq(vs_names_intern(n, "stage_0"), 0, "known names still resolve");
    cr_expect_str_eq(vs_names_str(n, vs_names_find(n, "stage_7")), "stage_7");
    vs_names_destroy(n);
}

#define NT_THREADS 8
#define NT_NAMES 400

struct nt_arg {
    struct vs_names *n;
    uint32_t ids[NT_NAMES];
};

static void *nt_intern(void *arg)
{
    struct nt_arg *a = arg;
    char name[32];
    for (int i = 0; i < NT_NAMES; i++) {
        snprintf(name, sizeof name, "s%d", (i * 7) % NT_NAMES);
        a->ids[(i * 7) % NT_NAMES] = vs_names_intern(a->n, name);
    }
    return NULL;
}

Test(policy_names, concurrent_interning_agrees_on_ids)
{
    struct vs_names *n = vs_names_create();
    static struct nt_arg args[NT_THREADS];
    pthread_t t[NT_THREADS];
    for (int i = 0; i < NT_THREADS; i++) {
        args[i].n = n;
        cr_assert_eq(pthread_create(&t[i], NULL, nt_intern, &args[i]), 0);
    }
    for (int i = 0; i < NT_THREADS; i++)
        pthread_join(t[i], NULL);
    cr_expect_eq(vs_names_count(n), NT_NAMES);
    char name[32];
    for (int k = 0; k < NT_NAMES; k++) {
        snprintf(name, sizeof name, "s%d", k);
        cr_assert_neq(args[0].ids[k], 0);
        cr_expect_str_eq(vs_names_str(n, args[0].ids[k]), name);
        for (int i = 1; i < NT_THREADS; i++)
            cr_expect_eq(args[i].ids[k], args[0].ids[k], "thread %d, name %s", i, name);
    }
    vs_names_destroy(n);
}
