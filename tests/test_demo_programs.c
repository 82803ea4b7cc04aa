/* The demo generator programs (tools/demo/) on their own, on simcuda without the shim: each
 * seed's pipeline runs out of memory in the stage where the seed did, at the seed's sizes; with
 * room enough it completes and verifies every weight; the checksum catches a damaged weight;
 * bad options get precise messages. */
#include "tests/demo_fixture.h"

static struct dm_run r;

static void dm_teardown(void)
{
    json_decref(r.last);
    r.last = NULL;
}

TestSuite(demo_programs, .fini = dm_teardown);

/* The program's own description: GPU size, memory held by others, expected failure. */
static void dm_describe(const char *program, json_int_t *gpu, json_int_t *taken, char *expected,
                        size_t len)
{
    dm_sh(&r, DM_PROGS "/%s --describe", program);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_not_null(r.last, "no JSON from --describe: %s", r.out);
    cr_assert_eq(json_unpack(r.last, "{s:I, s:I}", "gpu_bytes", gpu, "taken_bytes", taken), 0);
    snprintf(expected, len, "%s", dm_str(r.last, "expected_failure"));
    json_decref(r.last);
    r.last = NULL;
}

static void dm_baseline_fails_where_the_seed_did(const char *program, const char *stage,
                                                 const char *function)
{
    json_int_t gpu, taken;
    char expected[64];
    dm_describe(program, &gpu, &taken, expected, sizeof expected);
    cr_expect_str_eq(expected, stage);
    dm_sh(&r, DM_SIM "SIMCUDA_VRAM=%lld SIMCUDA_VRAM_TAKEN=%lld " DM_PROGS "/%s",
          (long long)gpu, (long long)taken, program);
    cr_expect_eq(r.status, 3, "exit %d: %s", r.status, r.err);
    cr_assert_not_null(r.last, "no result line: %s", r.out);
    cr_expect(json_is_false(json_object_get(r.last, "completed")));
    cr_expect_str_eq(dm_str(r.last, "failed_stage"), stage);
    cr_expect_str_eq(dm_str(r.last, "failed_function"), function);
    cr_expect_str_eq(dm_str(r.last, "error"), "CUDA_ERROR_OUT_OF_MEMORY");
    cr_expect(json_is_null(json_object_get(r.last, "checksums_ok")));
    /* It ran out of memory, not out of device: what it held plus the request is over the GPU. */
    json_int_t peak = json_integer_value(json_object_get(r.last, "peak_device_bytes"));
    json_int_t req = json_integer_value(json_object_get(r.last, "request_bytes"));
    cr_expect_gt(peak + req, gpu - taken);
    cr_expect_lt(peak, gpu - taken);
}

Test(demo_programs, wan21_runs_out_of_memory_loading_the_t5_while_the_dit_is_resident)
{
    dm_baseline_fails_where_the_seed_did("wan21_t2v", "text_encoder_load", "t5_load");
    cr_expect_str_eq(dm_str(r.last, "call"), "cuMemAlloc_v2");
    cr_expect(!strncmp(dm_str(r.last, "block"), "t5.", 3), "%s", dm_str(r.last, "block"));
}

Test(demo_programs, ovi_runs_out_of_memory_at_the_decode_block)
{
    dm_baseline_fails_where_the_seed_did("ovi_fusion", "decode", "vae_decode");
    cr_expect_eq(json_integer_value(json_object_get(r.last, "request_bytes")),
                 6540000000 / 512 * 512);
}

Test(demo_programs, comfyui_runs_out_of_memory_at_the_decode_with_5GB_held_elsewhere)
{
    dm_baseline_fails_where_the_seed_did("comfyui_wan22", "decode", "vae_decode");
    cr_expect_str_eq(dm_str(r.last, "call"), "cuMemAllocAsync");
}

Test(demo_programs, comfyui_fits_without_the_other_process)
{
    /* The 5 GB the other process holds is what makes the decode fail. */
    dm_sh(&r, DM_SIM "SIMCUDA_VRAM=24GiB " DM_PROGS "/comfyui_wan22 --steps 2");
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect(json_is_true(json_object_get(r.last, "completed")));
}

Test(demo_programs, with_room_enough_every_weight_is_verified_intact)
{
    dm_sh(&r, DM_SIM "SIMCUDA_VRAM=64GiB " DM_PROGS "/wan21_t2v --steps 2");
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_assert_not_null(r.last, "%s", r.out);
    cr_expect(json_is_true(json_object_get(r.last, "completed")));
    cr_expect(json_is_true(json_object_get(r.last, "checksums_ok")));
    /* DiT 32 tensors + VAE 2 + T5 25, 16.34 GiB */
    cr_expect_eq(json_integer_value(json_object_get(r.last, "weights")), 59);
    cr_expect_eq(json_integer_value(json_object_get(r.last, "weight_bytes")),
                 (5417LL + 484 + 10835) << 20);
    cr_expect_eq(json_array_size(json_object_get(r.last, "corrupt_weights")), 0);
}

Test(demo_programs, a_damaged_weight_fails_its_checksum)
{
    dm_sh(&r, DM_SIM "SIMCUDA_VRAM=64GiB " DM_PROGS "/wan21_t2v --steps 2 --corrupt dit.blocks.7");
    cr_expect_eq(r.status, 1, "%s", r.err);
    cr_assert_not_null(r.last, "%s", r.out);
    cr_expect(json_is_true(json_object_get(r.last, "completed")));
    cr_expect(json_is_false(json_object_get(r.last, "checksums_ok")));
    json_t *bad = json_object_get(r.last, "corrupt_weights");
    cr_assert_eq(json_array_size(bad), 1);
    cr_expect_str_eq(json_string_value(json_array_get(bad, 0)), "dit.blocks.7");
    cr_expect(strstr(r.err, "1 differ"), "%s", r.err);
}

Test(demo_programs, scale_multiplies_every_size)
{
    dm_sh(&r, DM_SIM "SIMCUDA_VRAM=6GiB " DM_PROGS "/wan21_t2v --scale 0.25 --steps 1");
    cr_assert_not_null(r.last, "%s", r.out);
    /* 11.49 GiB * 0.25 is below 6 GiB: everything fits, sizes are a quarter. */
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect_eq(json_integer_value(json_object_get(r.last, "weight_bytes")),
                 (5417LL + 484 + 10835) << 18);
}

Test(demo_programs, bad_options_are_named)
{
    static const struct {
        const char *args, *message;
    } cases[] = {
        {"--steps x", "--steps: expected a number above 0 and at most 1000, got 'x'"},
        {"--steps 1.5", "--steps: expected a whole number, got '1.5'"},
        {"--scale 0", "--scale: expected a number above 0 and at most 64, got '0'"},
        {"--corrupt", "--corrupt: expected a weight name, e.g. dit.blocks.3"},
        {"--frobnicate", "wan21-t2v-1.3b: unknown option '--frobnicate' (see --help)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dm_sh(&r, DM_SIM DM_PROGS "/wan21_t2v %s", cases[i].args);
        cr_expect_eq(r.status, 2, "%s", cases[i].args);
        cr_expect(strstr(r.err, cases[i].message), "%s: got %s", cases[i].args, r.err);
        json_decref(r.last);
        r.last = NULL;
    }
}

/* --describe lists the names --corrupt takes; any other name is refused before the run (here
 * without a driver, which the run would need first). */
Test(demo_programs, corrupt_names_are_listed_and_checked_before_the_run)
{
    const char *programs[] = {"wan21_t2v", "ovi_fusion", "comfyui_wan22"};
    for (size_t i = 0; i < sizeof programs / sizeof *programs; i++) {
        dm_sh(&r, DM_PROGS "/%s --describe", programs[i]);
        cr_assert_not_null(r.last, "%s: %s", programs[i], r.out);
        json_t *names = json_object_get(r.last, "weight_names");
        cr_expect_gt(json_array_size(names), 2, "%s: no weight_names", programs[i]);
        if (i == 0) {
            cr_expect_eq(json_array_size(names), 59); /* as the run's "weights" above */
            bool listed = false;
            for (size_t k = 0; k < json_array_size(names); k++)
                listed |= !strcmp(json_string_value(json_array_get(names, k)), "dit.blocks.7");
            cr_expect(listed, "dit.blocks.7 is not listed");
        }
        json_decref(r.last);
        r.last = NULL;
        dm_sh(&r, "LD_LIBRARY_PATH=/nonexistent " DM_PROGS "/%s --corrupt no.such", programs[i]);
        cr_expect_eq(r.status, 2, "%s", programs[i]);
        cr_expect(strstr(r.err, "--corrupt: no weight named 'no.such' (--describe lists "
                                "\"weight_names\")"),
                  "%s: %s", programs[i], r.err);
        cr_expect(!strstr(r.err, "driver"), "%s: checked after the run began: %s", programs[i],
                  r.err);
    }
}

Test(demo_programs, a_missing_driver_is_reported)
{
    dm_sh(&r, "LD_LIBRARY_PATH=/nonexistent " DM_PROGS "/ovi_fusion");
    if (!strstr(r.err, "cannot load the CUDA driver"))
        cr_skip_test("a CUDA driver is installed on this machine");
    cr_expect_eq(r.status, 2);
}
