/* The example policies and `vramshim policy check`: every example validates (no error, no
 * warning) and says what its scenario needs; the CLI's exit codes, messages and JSON. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <glob.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/policy_fixture.h"

#define PC_CLI VS_BUILD_DIR "/vramshim"
#define PC_EXAMPLES VS_SOURCE_DIR "/policy/examples"
#define PC_BAD VS_SOURCE_DIR "/tests/policy_bad"

struct pc_run {
    int status;
    char out[65536], err[65536];
};

static void pc_slurp(int fd, char *buf, size_t n)
{
    lseek(fd, 0, SEEK_SET);
    ssize_t got = read(fd, buf, n - 1);
    buf[got > 0 ? got : 0] = '\0';
    close(fd);
}

/* Runs the CLI with argv (NULL-terminated, without the program), stdout and stderr apart. */
static void pc_cli(struct pc_run *r, const char *const *args)
{
    char out_path[] = "/tmp/vs_pc_out_XXXXXX", err_path[] = "/tmp/vs_pc_err_XXXXXX";
    int out = mkstemp(out_path), err = mkstemp(err_path);
    cr_assert(out >= 0 && err >= 0);
    unlink(out_path);
    unlink(err_path);
    const char *argv[16] = {PC_CLI};
    for (int i = 0; args[i]; i++)
        argv[i + 1] = args[i];
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(out, 1);
        dup2(err, 2);
        execv(PC_CLI, (char *const *)argv);
        _exit(127);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st), "vramshim did not exit normally");
    r->status = WEXITSTATUS(st);
    cr_assert_neq(r->status, 127, "cannot run %s (build the cli target)", PC_CLI);
    pc_slurp(out, r->out, sizeof r->out);
    pc_slurp(err, r->err, sizeof r->err);
}

static struct pc_run pc_r;

/* --- the examples -------------------------------------------------------------------------- */

static struct vs_policy *pc_example(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", PC_EXAMPLES, name);
    if (!pf_names)
        pf_names = vs_names_create();
    struct vs_policy *p = vs_policy_load(path, pf_names, &pf_diags);
    cr_assert(p, "%s: %s", name, pf_diags.n ? pf_diags.v[0].text : "");
    cr_assert_eq(pf_diags.n, 0, "%s: %s", name, pf_diags.v[0].text);
    return p;
}

Test(policy_examples, every_example_is_valid_without_warnings)
{
    glob_t g;
    cr_assert_eq(glob(PC_EXAMPLES "/*.ini", 0, NULL, &g), 0);
    cr_assert_geq(g.gl_pathc, 3);
    const char *args[20] = {"policy", "check", "--strict"};
    size_t n = 3;
    for (size_t i = 0; i < g.gl_pathc && n < 19; i++)
        args[n++] = g.gl_pathv[i];
    args[n] = NULL;
    pc_cli(&pc_r, args);
    cr_expect_eq(pc_r.status, 0, "%s", pc_r.err);
    cr_expect_str_eq(pc_r.err, "");
    for (size_t i = 0; i < g.gl_pathc; i++) {
        char head[600];
        snprintf(head, sizeof head, "%s: valid: ", g.gl_pathv[i]);
        cr_expect(strstr(pc_r.out, head), "no summary for %s", g.gl_pathv[i]);
    }
    globfree(&g);
}

/* The stage a frame begins under a policy, "" when none. */
static const char *pc_stage(const struct vs_policy *p, const char *frame)
{
    const struct vs_policy_rule *r = vs_policy_match_frame(p, frame, VS_RULE_STAGE);
    return r ? r->name_str : "";
}

Test(policy_examples, wan21_12gb_moves_the_dit_for_the_t5_and_both_for_the_decode)
{
    struct vs_policy *p = pc_example("wan21-t2v-1.3b-12gb.ini");
    /* The T5 moves to the GPU inside WanT2V.generate while the DiT (loaded in __init__) is
     * resident: that stage may demote the DiT. */
    cr_expect_str_eq(pc_stage(p, "py:/w/Wan2.1/wan/text2video.py:225:WanT2V.generate"),
                     "text_encode");
    cr_expect_str_eq(pc_stage(p, "py:/w/Wan2.1/wan/text2video.py:90:WanT2V.__init__"), "load");
    cr_expect_str_eq(pc_stage(p, "py:/w/Wan2.1/wan/modules/model.py:500:WanModel.forward"),
                     "denoise");
    cr_expect_str_eq(pc_stage(p, "py:/w/Wan2.1/wan/modules/vae.py:650:WanVAE.decode"), "decode");
    cr_expect_str_eq(pc_stage(p, "demo+0x10 vae_decode+0x4"), "decode");
    cr_expect_str_eq(pf_list(&pf_rule(p, "text_encode")->evict), "load");
    cr_expect_str_eq(pf_list(&pf_rule(p, "decode")->evict), "text_encode,load");
    cr_expect_str_eq(pf_list(&pf_rule(p, "decode")->prefetch), "vae");
    cr_expect_str_eq(pf_list(&pf_rule(p, "denoise")->prefetch), "load");
    /* The VAE's weights, made in stage load, stay: the decode protects their tag. */
    uint32_t decode = vs_names_find(pf_names, "decode"), load = vs_names_find(pf_names, "load");
    cr_expect(vs_policy_is_victim(p, decode, load, 0));
    cr_expect_not(vs_policy_is_victim(p, decode, load, vs_names_find(pf_names, "vae")));
    vs_policy_free(p);
}

Test(policy_examples, ovi_decode_frees_room_for_its_6_54_GB_block)
{
    struct vs_policy *p = pc_example("ovi-fusion-32gb.ini");
    const struct vs_policy_rule *d = pf_rule(p, "decode");
    cr_expect(d->has_headroom);
    cr_expect_geq(d->headroom, 6540000000ull, "headroom below the decode's single block");
    cr_expect_str_eq(pc_stage(p, "py:/o/Ovi/ovi/modules/vae2_2.py:900:Wan2_2_VAE.wrapped_decode"),
                     "decode");
    cr_expect_str_eq(pc_stage(p, "py:/o/Ovi/ovi/ovi_fusion_engine.py:60:OviFusionEngine.__init__"),
                     "load");
    uint32_t decode = vs_names_find(pf_names, "decode");
    /* The 25 GB fusion model (stage load) and the 5 GB text encoder (tag) are victims. */
    cr_expect(vs_policy_is_victim(p, decode, vs_names_find(pf_names, "load"), 0));
    cr_expect(vs_policy_is_victim(p, decode, vs_names_find(pf_names, "load"),
                                  vs_names_find(pf_names, "text_encoder")));
    cr_expect_not(vs_policy_is_victim(p, decode, vs_names_find(pf_names, "load"),
                                      vs_names_find(pf_names, "vae")));
    vs_policy_free(p);
}

Test(policy_examples, comfyui_decode_evicts_the_text_encoder_and_the_sampler)
{
    struct vs_policy *p = pc_example("comfyui-wan-vae.ini");
    static const struct {
        const char *frame, *stage;
    } frames[] = {
        {"py:/c/ComfyUI/nodes.py:290:VAEDecode.decode", "decode"},
        {"py:/c/ComfyUI/comfy/sd.py:700:VAE.decode", "decode"},
        {"py:/c/ComfyUI/comfy/sd.py:760:VAE.decode_tiled", "decode"},
        {"py:/c/ComfyUI/comfy/ldm/wan/vae2_2.py:640:WanVAE.decode", "decode"},
        {"py:/c/ComfyUI/comfy/samplers.py:1100:KSampler.sample", "sample"},
        {"py:/c/ComfyUI/comfy/sample.py:40:sample", "sample"},
        {"py:/c/ComfyUI/nodes.py:1500:common_ksampler", "sample"},
        {"py:/c/ComfyUI/nodes.py:70:CLIPTextEncode.encode", "text_encode"},
        {"py:/c/ComfyUI/comfy/sd.py:200:CLIP.encode_from_tokens_scheduled", "text_encode"},
        {"py:/c/ComfyUI/comfy/model_management.py:600:load_models_gpu", ""},
        {"libstable-diffusion.so+0x4f10 "
         "_ZN19StableDiffusionGGML18decode_first_stageEP12ggml_contextP11ggml_tensorb+0x99",
         "decode"},
    };
    for (size_t i = 0; i < sizeof frames / sizeof frames[0]; i++)
        cr_expect_str_eq(pc_stage(p, frames[i].frame), frames[i].stage, "%s", frames[i].frame);
    const struct vs_policy_rule *w = vs_policy_match_frame(
        p, "py:/c/ComfyUI/comfy/model_patcher.py:800:ModelPatcher.load", VS_RULE_TAG);
    cr_assert(w);
    cr_expect_str_eq(w->name_str, "weights");
    cr_expect_str_eq(pf_list(&pf_rule(p, "decode")->evict), "text_encode,sample");
    cr_expect(vs_policy_ctl(p));
    vs_policy_free(p);
}

/* --- the CLI ------------------------------------------------------------------------------- */

Test(policy_cli, bad_file_exits_1_with_the_precise_message)
{
    pc_cli(&pc_r, (const char *[]){"policy", "check", PC_BAD "/headroom_words.ini", NULL});
    cr_expect_eq(pc_r.status, 1);
    cr_expect_str_eq(pc_r.out, "");
    cr_expect(strstr(pc_r.err, PC_BAD "/headroom_words.ini:3: [stage decode] key 'headroom': "
                               "bad size 'two GiB' (expected e.g. 2GiB, 512MiB)\n"),
              "%s", pc_r.err);
    cr_expect(strstr(pc_r.err, "headroom_words.ini: not valid: 1 error, 0 warnings"), "%s",
              pc_r.err);
}

Test(policy_cli, summary_shows_every_key)
{
    pc_cli(&pc_r, (const char *[]){"policy", "check", PC_EXAMPLES "/ovi-fusion-32gb.ini", NULL});
    cr_expect_eq(pc_r.status, 0, "%s", pc_r.err);
    static const char *const want[] = {
        "valid: 4 stages, 2 tags, 0 warnings",
        "global: eviction on, watermark 0.90, control socket off",
        "[stage decode] (line ",
        "match     *.wrapped_decode, *vae_decode*",
        "evict     load, text_encoder, text_encode, denoise",
        "headroom  6.50 GiB (6979321856 bytes)",
        "prefetch  vae",
        "[tag text_encoder] (line ",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_expect(strstr(pc_r.out, want[i]), "missing '%s' in:\n%s", want[i], pc_r.out);
}

Test(policy_cli, warnings_pass_unless_strict)
{
    const char *file = PC_BAD "/undefined_name.ini";
    pc_cli(&pc_r, (const char *[]){"policy", "check", file, NULL});
    cr_expect_eq(pc_r.status, 0);
    cr_expect(strstr(pc_r.err, "undefined_name.ini:3: warning: [stage decode] key 'evict': "
                               "'text_encoder' is not defined in this file"),
              "%s", pc_r.err);
    cr_expect(strstr(pc_r.out, "valid: 1 stage, 0 tags, 2 warnings"), "%s", pc_r.out);
    pc_cli(&pc_r, (const char *[]){"policy", "check", "--strict", file, NULL});
    cr_expect_eq(pc_r.status, 1);
    cr_expect(strstr(pc_r.err, "not valid: 0 errors, 2 warnings (--strict)"), "%s", pc_r.err);
}

Test(policy_cli, lend_section_in_text_and_json)
{
    pc_cli(&pc_r, (const char *[]){"policy", "check", PC_EXAMPLES "/llm-server-lend.ini", NULL});
    cr_expect_eq(pc_r.status, 0, "%s", pc_r.err);
    cr_expect(strstr(pc_r.out, "  [lend] (line 23): idle_after 5 s, borrowers wait 30 s\n"
                               "    lend      weights\n"
                               "    never     kv\n"),
              "%s", pc_r.out);
    pc_cli(&pc_r, (const char *[]){"policy", "check", "--json",
                                   PC_EXAMPLES "/llm-server-lend.ini", NULL});
    json_error_t je;
    json_t *o = json_loads(pc_r.out, 0, &je);
    cr_assert(o, "not JSON (%s): %s", je.text, pc_r.out);
    json_t *lend = json_object_get(
        json_object_get(json_array_get(json_object_get(o, "files"), 0), "policy"), "lend");
    cr_expect_eq(json_integer_value(json_object_get(lend, "line")), 23);
    cr_expect_str_eq(json_string_value(json_array_get(json_object_get(lend, "lend"), 0)),
                     "weights");
    cr_expect_str_eq(json_string_value(json_array_get(json_object_get(lend, "never"), 0)), "kv");
    cr_expect_eq(json_integer_value(json_object_get(lend, "idle_after_ms")), 5000);
    cr_expect_eq(json_integer_value(json_object_get(lend, "wait_ms")), 30000);
    json_decref(o);
}

Test(policy_cli, json_reports_each_file)
{
    pc_cli(&pc_r, (const char *[]){"policy", "check", "--json",
                                   PC_EXAMPLES "/wan21-t2v-1.3b-12gb.ini",
                                   PC_BAD "/duplicate_key.ini", NULL});
    cr_expect_eq(pc_r.status, 1);
    json_error_t je;
    json_t *o = json_loads(pc_r.out, 0, &je);
    cr_assert(o, "not JSON (%s): %s", je.text, pc_r.out);
    cr_expect(json_is_false(json_object_get(o, "valid")));
    json_t *files = json_object_get(o, "files");
    cr_assert_eq(json_array_size(files), 2);

    json_t *good = json_array_get(files, 0);
    cr_expect(json_is_true(json_object_get(good, "valid")));
    json_t *pol = json_object_get(good, "policy");
    cr_expect(json_is_true(json_object_get(pol, "eviction")));
    json_t *stages = json_object_get(pol, "stages");
    cr_assert_eq(json_array_size(stages), 4);
    json_t *decode = json_array_get(stages, 3);
    cr_expect_str_eq(json_string_value(json_object_get(decode, "name")), "decode");
    cr_expect_eq(json_integer_value(json_object_get(decode, "headroom_bytes")), 3ll << 30);
    cr_expect_str_eq(json_string_value(json_array_get(json_object_get(decode, "evict"), 1)),
                     "load");
    cr_expect_eq(json_array_size(json_object_get(pol, "tags")), 1);

    json_t *bad = json_array_get(files, 1);
    cr_expect(json_is_false(json_object_get(bad, "valid")));
    cr_expect(json_is_null(json_object_get(bad, "policy")));
    json_t *e = json_array_get(json_object_get(bad, "errors"), 0);
    cr_assert(e);
    cr_expect_eq(json_integer_value(json_object_get(e, "line")), 4);
    cr_expect_str_eq(json_string_value(json_object_get(e, "section")), "stage decode");
    cr_expect_str_eq(json_string_value(json_object_get(e, "key")), "headroom");
    cr_expect_str_eq(json_string_value(json_object_get(e, "message")),
                     "given twice (first at line 2)");
    json_decref(o);
}

Test(policy_cli, usage_errors_exit_2)
{
    pc_cli(&pc_r, (const char *[]){"policy", NULL});
    cr_expect_eq(pc_r.status, 2);
    pc_cli(&pc_r, (const char *[]){"policy", "check", NULL});
    cr_expect_eq(pc_r.status, 2);
    cr_expect(strstr(pc_r.err, "no FILE given"), "%s", pc_r.err);
    pc_cli(&pc_r, (const char *[]){"policy", "check", "--bogus", "x.ini", NULL});
    cr_expect_eq(pc_r.status, 2);
    cr_expect(strstr(pc_r.err, "unknown option '--bogus'"), "%s", pc_r.err);
    pc_cli(&pc_r, (const char *[]){"policy", "verify", NULL});
    cr_expect_eq(pc_r.status, 2);
    pc_cli(&pc_r, (const char *[]){"policy", "check", "--help", NULL});
    cr_expect_eq(pc_r.status, 0);
    cr_expect(strstr(pc_r.out, "usage: vramshim policy check"), "%s", pc_r.out);
}

Test(policy_cli, missing_file_exits_1)
{
    pc_cli(&pc_r, (const char *[]){"policy", "check", "/nonexistent/p.ini", NULL});
    cr_expect_eq(pc_r.status, 1);
    cr_expect(strstr(pc_r.err, "/nonexistent/p.ini: cannot open: No such file or directory"),
              "%s", pc_r.err);
}

Test(policy_cli, match_shows_the_stage_of_frames_and_trace_sites)
{
    const char *pol = PC_EXAMPLES "/comfyui-wan-vae.ini";
    pc_cli(&pc_r, (const char *[]){"policy", "match", pol,
                                   "py:/c/ComfyUI/comfy/sd.py:700:VAE.decode",
                                   "demo+0x10 main+0x4", NULL});
    cr_expect_eq(pc_r.status, 0, "%s", pc_r.err);
    cr_expect_str_eq(pc_r.out, "py:/c/ComfyUI/comfy/sd.py:700:VAE.decode: stage decode, tag -\n"
                               "demo+0x10 main+0x4: stage -, tag -\n");

    char trace[] = "/tmp/vs_pc_trace_XXXXXX";
    int fd = mkstemp(trace);
    cr_assert_geq(fd, 0);
    static const char text[] =
        "{\"vramshim_trace\":1,\"pid\":7,\"devices\":[{\"ordinal\":0,\"total\":1024}]}\n"
        "{\"ev\":\"site\",\"site\":1,\"frames\":[\"libtorch.so+0x10 c10_alloc+0x1\","
        "\"py:/c/ComfyUI/comfy/sd.py:700:VAE.decode\","
        "\"py:/c/ComfyUI/comfy/model_patcher.py:800:ModelPatcher.load\"]}\n"
        "{\"t\":5,\"ev\":\"alloc\",\"api\":\"cuMemAlloc_v2\",\"ptr\":\"0x1\",\"size\":4,"
        "\"site\":1}\n"
        "{\"ev\":\"site\",\"site\":2,\"frames\":[\"python3+0x1 main+0x2\"]}\n";
    cr_assert_eq(write(fd, text, sizeof text - 1), (ssize_t)sizeof text - 1);
    close(fd);
    pc_cli(&pc_r, (const char *[]){"policy", "match", pol, "--trace", trace, NULL});
    unlink(trace);
    cr_expect_eq(pc_r.status, 0, "%s", pc_r.err);
    static const char sites[] =
        "site 1: stage decode, tag weights\n"
        "  stage from frame 1: py:/c/ComfyUI/comfy/sd.py:700:VAE.decode\n"
        "  tag from frame 2: py:/c/ComfyUI/comfy/model_patcher.py:800:ModelPatcher.load\n"
        "site 2: stage -, tag -\n";
    cr_expect(!strncmp(pc_r.out, sites, sizeof sites - 1), "%s", pc_r.out);
    /* then one line per pattern that matched no frame, and none for those that did */
    char want[256];
    snprintf(want, sizeof want,
             "\nwarning: [stage text_encode] pattern 'CLIPTextEncode.encode' matched no frame "
             "of %s\n", trace);
    cr_expect(strstr(pc_r.out, want), "%s", pc_r.out);
    cr_expect(!strstr(pc_r.out, "'comfy.sd.VAE.decode*'"), "%s", pc_r.out);
    cr_expect(!strstr(pc_r.out, "'comfy.model_patcher.ModelPatcher.load'"), "%s", pc_r.out);
}

Test(policy_cli, match_with_a_bad_policy_or_usage_fails)
{
    pc_cli(&pc_r, (const char *[]){"policy", "match", PC_BAD "/evict_self.ini", "x", NULL});
    cr_expect_eq(pc_r.status, 1);
    cr_expect(strstr(pc_r.err, "evict_self.ini:3: [stage decode] key 'evict': a stage cannot "
                               "evict itself"),
              "%s", pc_r.err);
    pc_cli(&pc_r, (const char *[]){"policy", "match", PC_EXAMPLES "/ovi-fusion-32gb.ini", NULL});
    cr_expect_eq(pc_r.status, 2);
    pc_cli(&pc_r, (const char *[]){"policy", "match", PC_EXAMPLES "/ovi-fusion-32gb.ini",
                                   "--trace", "/nonexistent/trace.jsonl", NULL});
    cr_expect_eq(pc_r.status, 1);
    cr_expect(strstr(pc_r.err, "cannot open /nonexistent/trace.jsonl"), "%s", pc_r.err);
}
