/* The workload generators (`vramshim workload`): deterministic, committed small traces current,
 * and sane: activations all freed, only weights and inputs/outputs live at the end, and sizes
 * and peaks matching what the layer tables (ANCHORS §3) say, computed here independently. */
#include <jansson.h>
#include <uthash.h>

#include "replay_fixture.h"

TestSuite(workloads, .fini = fx_cleanup);

static const char *const names[] = {"sdxl-vae-decode", "wan21-vae-decode", "wan22-vae-decode",
                                    "dit-denoise"};

struct live {
    char ptr[24];
    uint64_t size;
    char tag[16];
    UT_hash_handle hh;
};

struct summary {
    uint64_t peak_live;
    uint64_t live_tag[4];          /* bytes live at the end, by tag: see tag_index */
    uint64_t untagged_live_at_end;
    size_t allocs, steps;
    bool time_ordered;
    uint64_t te_live_at_first_dit; /* text encoder bytes live when the DiT starts loading */
    bool saw_dit;
};

static int tag_index(const char *tag)
{
    static const char *const tags[] = {"vae", "io", "dit", "text_encoder"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(tag, tags[i]))
            return i;
    return -1;
}

static void summarise(const char *path, struct summary *s)
{
    memset(s, 0, sizeof *s);
    s->time_ordered = true;
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    struct live *table = NULL, *e, *tmp;
    char *line = NULL;
    size_t cap = 0;
    uint64_t live = 0, te_live = 0, last_t = 0;
    while (getline(&line, &cap, f) > 0) {
        json_t *o = json_loads(line, 0, NULL);
        cr_assert_not_null(o, "%s: not JSON: %s", path, line);
        const char *ev = json_string_value(json_object_get(o, "ev"));
        if (ev) {
            uint64_t t = (uint64_t)json_integer_value(json_object_get(o, "t"));
            s->time_ordered = s->time_ordered && t >= last_t;
            last_t = t;
        }
        if (ev && !strcmp(ev, "alloc")) {
            e = calloc(1, sizeof *e);
            snprintf(e->ptr, sizeof e->ptr, "%s", json_string_value(json_object_get(o, "ptr")));
            e->size = (uint64_t)json_integer_value(json_object_get(o, "size"));
            const char *tag = json_string_value(json_object_get(o, "tag"));
            const char *name = json_string_value(json_object_get(o, "name"));
            snprintf(e->tag, sizeof e->tag, "%s", tag ? tag : "");
            if (!strcmp(e->tag, "dit") && !s->saw_dit) {
                s->saw_dit = true;
                s->te_live_at_first_dit = te_live;
            }
            if (!strcmp(e->tag, "text_encoder"))
                te_live += e->size;
            s->steps += name && !strcmp(name, "scheduler.step");
            HASH_ADD_STR(table, ptr, e);
            live += e->size;
            s->peak_live = live > s->peak_live ? live : s->peak_live;
            s->allocs++;
        } else if (ev && !strcmp(ev, "free")) {
            HASH_FIND_STR(table, json_string_value(json_object_get(o, "ptr")), e);
            cr_assert_not_null(e, "%s: free of a pointer not live: %s", path, line);
            live -= e->size;
            if (!strcmp(e->tag, "text_encoder"))
                te_live -= e->size;
            HASH_DEL(table, e);
            free(e);
        }
        json_decref(o);
    }
    free(line);
    fclose(f);
    HASH_ITER(hh, table, e, tmp) {
        int i = tag_index(e->tag);
        if (i < 0)
            s->untagged_live_at_end += e->size;
        else
            s->live_tag[i] += e->size;
        HASH_DEL(table, e);
        free(e);
    }
}

/* Generates NAME (small or full) into the scratch directory; returns the path. */
static char *generate(const char *name, bool small, const char *suffix)
{
    char file[128];
    snprintf(file, sizeof file, "%s%s%s.jsonl", name, small ? "-small" : "", suffix);
    char *path = fx_path(file);
    struct fx_run r = fx_cli("workload %s %s -o %s", name, small ? "--small" : "", path);
    cr_assert_eq(r.status, 0, "workload %s: %s", name, r.err);
    fx_run_free(&r);
    return path;
}

static void expect_same_file(const char *a, const char *b)
{
    char *x = fx_slurp(a), *y = fx_slurp(b);
    cr_expect(strlen(x) > 0, "%s is empty", a);
    cr_expect(!strcmp(x, y), "%s and %s differ", a, b);
    free(x);
    free(y);
}

Test(workloads, deterministic_and_committed_copies_current)
{
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char *a = generate(names[i], true, ".1"), *b = generate(names[i], true, ".2");
        expect_same_file(a, b);
        char committed[512];
        snprintf(committed, sizeof committed, "%s/%s-small.jsonl", FX_WORKLOADS, names[i]);
        expect_same_file(a, committed);
        free(a);
        free(b);
    }
}

Test(workloads, every_activation_is_freed_and_time_moves_forward)
{
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char *path = generate(names[i], true, "");
        struct summary s;
        summarise(path, &s);
        cr_expect_eq(s.untagged_live_at_end, 0, "%s leaves %llu activation bytes live", names[i],
                     (unsigned long long)s.untagged_live_at_end);
        cr_expect(s.time_ordered, "%s: timestamps go backwards", names[i]);
        cr_expect_gt(s.allocs, 300, "%s: only %zu allocations", names[i], s.allocs);
        free(path);
    }
}

/* SD VAE decoder: 49,490,179 parameters (ANCHORS §3.1), plus post_quant_conv, 1x1 4 -> 4. */
#define SDXL_PARAMS (49490179ull + 4 * 4 + 4)

/* The peak is at up_blocks.3.resnets.0: its 256-channel full-resolution input, the GroupNorm
 * output and the SiLU output are live at once, beside the weights and the latents. */
static void expect_sdxl(bool small, uint64_t side)
{
    char *path = generate("sdxl-vae-decode", small, "");
    struct summary s;
    summarise(path, &s);
    uint64_t weights = SDXL_PARAMS * 2, latents = 4 * (side / 8) * (side / 8) * 2;
    uint64_t full_res_256 = 256 * side * side * 2, image = 3 * side * side * 2;
    cr_expect_eq(s.live_tag[0], weights);
    cr_expect_eq(s.live_tag[1], latents + image);
    cr_expect_eq(s.peak_live, weights + latents + 3 * full_res_256);
    free(path);
}

Test(workloads, sdxl_small_matches_the_layer_table)
{
    expect_sdxl(true, 256);
}

Test(workloads, sdxl_full_matches_the_layer_table)
{
    expect_sdxl(false, 1024);
}

/* Wan 2.1 decoder parameters from ANCHORS §3.2: CausalConv3d 3x3x3 with bias, RMS gammas,
 * 1x1x1 shortcuts where channels change, the mid attention, time_conv (384 -> 768, 3x1x1)
 * in the two temporal upsamplers, the resample Conv2d 3x3 halving channels, conv2 (16 -> 16,
 * 1x1x1) and the latent mean and 1/std (16 each). */
static uint64_t wan_conv3(uint64_t ci, uint64_t co)
{
    return ci * co * 27 + co;
}

static uint64_t wan_res(uint64_t ci, uint64_t co)
{
    return ci + wan_conv3(ci, co) + co + wan_conv3(co, co) + (ci != co ? ci * co + co : 0);
}

static uint64_t wan_params(void)
{
    const uint64_t in[4] = {384, 192, 192, 96}, out[4] = {384, 384, 192, 96};
    uint64_t p = 16 * 16 + 16 + 2 * 16 + wan_conv3(16, 384) + 2 * wan_res(384, 384);
    p += 384 + (384 * 1152 + 1152) + (384 * 384 + 384);
    for (int s = 0; s < 4; s++) {
        p += wan_res(in[s], out[s]) + 2 * wan_res(out[s], out[s]);
        if (s < 2)
            p += 2 * out[s] * out[s] * 3 + 2 * out[s];
        if (s < 3)
            p += out[s] * (out[s] / 2) * 9 + out[s] / 2;
    }
    return p + 96 + wan_conv3(96, 3);
}

static void expect_wan(bool small, uint64_t w, uint64_t h, uint64_t frames)
{
    char *path = generate("wan21-vae-decode", small, "");
    struct summary s;
    summarise(path, &s);
    uint64_t latent_frames = 1 + (frames - 1) / 4;
    cr_expect_eq(s.live_tag[0], wan_params() * 4);
    cr_expect_eq(s.live_tag[1], 16 * latent_frames * (h / 8) * (w / 8) * 4 + 3 * frames * h * w * 4,
                 "latents and the %llu-frame video", (unsigned long long)frames);
    free(path);
}

Test(workloads, wan_small_matches_the_layer_table)
{
    expect_wan(true, 64, 64, 9);
}

Test(workloads, wan_full_decodes_81_frames)
{
    expect_wan(false, 832, 480, 81);
}

/* Wan 2.2 decoder (vae2_2.py, TI2V-5B): z 48, conv1 48 -> 1024, the same mid block at 1024,
 * up blocks 1024->1024 (x2, temporal), 1024->1024 (x2, temporal), 1024->512 (x2), 512->256
 * whose Resample Conv2d keeps the width (DupUp3D has no parameters), head 256 -> 12. The video
 * left live is the unpatchified one (3 channels, 16x). */
static uint64_t wan22_params(void)
{
    const uint64_t in[4] = {1024, 1024, 1024, 512}, out[4] = {1024, 1024, 512, 256};
    uint64_t p = 48 * 48 + 48 + 2 * 48 + wan_conv3(48, 1024) + 2 * wan_res(1024, 1024);
    p += 1024 + (1024 * 3072 + 3072) + (1024 * 1024 + 1024);
    for (int s = 0; s < 4; s++) {
        p += wan_res(in[s], out[s]) + 2 * wan_res(out[s], out[s]);
        if (s < 2)
            p += 2 * out[s] * out[s] * 3 + 2 * out[s];
        if (s < 3)
            p += out[s] * out[s] * 9 + out[s];
    }
    return p + 256 + wan_conv3(256, 12);
}

Test(workloads, wan22_small_matches_the_layer_table)
{
    char *path = generate("wan22-vae-decode", true, "");
    struct summary s;
    summarise(path, &s);
    cr_expect_eq(s.live_tag[0], wan22_params() * 4);
    cr_expect_eq(s.live_tag[1], 48 * 3 * 4 * 4 * 4 + 3 * 9 * 64 * 64 * 4,
                 "latents and the unpatchified 9-frame video");
    free(path);
}

Test(workloads, dit_offloads_the_text_encoder_and_runs_20_steps)
{
    char *path = generate("dit-denoise", true, "");
    struct summary s;
    summarise(path, &s);
    cr_expect(s.saw_dit);
    cr_expect_eq(s.te_live_at_first_dit, 0, "%llu text encoder bytes still live",
                 (unsigned long long)s.te_live_at_first_dit);
    cr_expect_eq(s.live_tag[3], 0);
    cr_expect_gt(s.live_tag[2], 0);
    cr_expect_eq(s.live_tag[1], 16 * 64 * 64 * 2, "only the final latents stay");
    cr_expect_eq(s.steps, 20);
    free(path);
}

Test(workloads, cli_errors)
{
    struct fx_run r = fx_cli("workload sd15-vae -o /dev/null");
    cr_expect_eq(r.status, 2);
    cr_expect_str_eq(r.err, "vramshim workload: unknown workload 'sd15-vae' (see vramshim "
                            "workload --list)\n");
    fx_run_free(&r);
    r = fx_cli("workload --list");
    cr_expect_eq(r.status, 0);
    cr_expect_str_eq(r.out, "sdxl-vae-decode\nwan21-vae-decode\nwan22-vae-decode\ndit-denoise\n");
    fx_run_free(&r);
    r = fx_cli("workload sdxl-vae-decode -o /nonexistent/dir/x.jsonl");
    cr_expect_eq(r.status, 1);
    cr_expect_str_eq(r.err, "/nonexistent/dir/x.jsonl: No such file or directory\n");
    fx_run_free(&r);
}
