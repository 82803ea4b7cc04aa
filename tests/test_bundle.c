/* The real-GPU bundle's pieces, exercised here against simcuda: the VMM probe must report a
 * working driver, device VMM and host-NUMA support, and run.sh must report "no GPU" cleanly on a
 * machine without one. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

/* Runs a shell command and returns its stdout as JSON (NULL when it is not JSON). */
static json_t *run_json(const char *cmd, int *status)
{
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "popen %s", cmd);
    json_error_t err;
    json_t *j = json_loadf(p, JSON_DISABLE_EOF_CHECK, &err);
    *status = pclose(p);
    return j;
}

Test(bundle, vmm_probe_reports_simcuda_capabilities)
{
    int status;
    json_t *j = run_json("SIMCUDA_VRAM=12GiB LD_LIBRARY_PATH=" VS_BUILD_DIR "/sim "
                         VS_BUILD_DIR "/gpucheck/vmm_probe", &status);
    cr_assert_not_null(j, "vmm_probe printed no JSON");
    cr_expect_eq(WEXITSTATUS(status), 0);
    cr_expect(json_is_true(json_object_get(j, "driver_loaded")));
    cr_expect(json_is_true(json_object_get(j, "vmm_ok")), "vmm_error: %s",
              json_string_value(json_object_get(j, "vmm_error")));
    cr_expect(json_is_true(json_object_get(j, "host_numa_ok")), "host_numa_error: %s",
              json_string_value(json_object_get(j, "host_numa_error")));
    cr_expect_eq(json_integer_value(json_object_get(j, "total_bytes")), 12LL << 30);
    cr_expect_eq(json_integer_value(json_object_get(j, "granularity")), 2LL << 20);
    json_decref(j);
}

Test(bundle, vmm_probe_reports_a_missing_driver)
{
    int status;
    json_t *j = run_json("LD_LIBRARY_PATH=/nonexistent " VS_BUILD_DIR "/gpucheck/vmm_probe "
                         "2>/dev/null", &status);
    /* This machine has no NVIDIA driver: the probe must say so, not crash. */
    cr_assert_not_null(j);
    cr_expect(json_is_false(json_object_get(j, "driver_loaded")));
    cr_expect_neq(WEXITSTATUS(status), 0);
    json_decref(j);
}

Test(bundle, run_sh_without_gpu_reports_none_and_succeeds)
{
    char dir[] = "/tmp/vs-bundle-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char cmd[1024];
    /* A bundle skeleton: run.sh, COMMIT and one check that must not run without a GPU. */
    snprintf(cmd, sizeof cmd,
             "mkdir -p %s/checks && cp " VS_SOURCE_DIR "/tools/gpucheck/run.sh %s/ && "
             "echo abc123 > %s/COMMIT && echo 'touch %s/ran' > %s/checks/10-x.sh && "
             "PATH=/usr/bin:/bin %s/run.sh %s/report >/dev/null",
             dir, dir, dir, dir, dir, dir, dir);
    cr_assert_eq(system(cmd), 0, "run.sh failed without a GPU");
    snprintf(cmd, sizeof cmd, "cat %s/report/report.json", dir);
    int status;
    json_t *j = run_json(cmd, &status);
    cr_assert_not_null(j);
    cr_expect_str_eq(json_string_value(json_object_get(j, "detail")), "no NVIDIA GPU present");
    cr_expect_str_eq(json_string_value(json_object_get(j, "commit")), "abc123");
    snprintf(cmd, sizeof cmd, "test ! -e %s/ran", dir);
    cr_expect_eq(system(cmd), 0, "a check ran although no GPU is present");
    json_decref(j);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_expect_eq(system(cmd), 0);
}

Test(bundle, run_sh_reports_each_check_and_counts_failures)
{
    char dir[] = "/tmp/vs-bundle-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char cmd[2048];
    /* A stand-in nvidia-smi, and two checks writing JSON as shell and Python do (spacing). */
    snprintf(cmd, sizeof cmd,
             "mkdir -p %s/checks %s/fake && cp " VS_SOURCE_DIR "/tools/gpucheck/run.sh %s/ && "
             "echo abc123 > %s/COMMIT && "
             "printf '#!/bin/sh\\necho FakeGPU\\n' > %s/fake/nvidia-smi && chmod +x %s/fake/nvidia-smi && "
             "echo 'echo \"{\\\"name\\\":\\\"a\\\",\\\"status\\\":\\\"pass\\\",\\\"figures\\\":{\\\"x\\\":1},"
             "\\\"detail\\\":\\\"fine\\\"}\" > $OUT/10-a.json' > %s/checks/10-a.sh && "
             "echo 'echo \"{\\\"name\\\": \\\"b\\\", \\\"status\\\": \\\"fail\\\", \\\"figures\\\": {}, "
             "\\\"detail\\\": \\\"broken\\\"}\" > $OUT/20-b.json' > %s/checks/20-b.sh && "
             "PATH=%s/fake:/usr/bin:/bin %s/run.sh %s/report >/dev/null 2>&1",
             dir, dir, dir, dir, dir, dir, dir, dir, dir, dir, dir);
    cr_expect_neq(system(cmd), 0, "a failing check must fail run.sh");
    snprintf(cmd, sizeof cmd,
             "grep -q '^pass  10-a .*fine' %s/report/report.txt && "
             "grep -q '^fail  20-b .*broken' %s/report/report.txt && "
             "grep -q '^1 check(s) failed' %s/report/report.txt", dir, dir, dir);
    cr_expect_eq(system(cmd), 0, "report.txt does not list each check's status and detail");
    int status;
    snprintf(cmd, sizeof cmd, "cat %s/report/report.json", dir);
    json_t *j = run_json(cmd, &status);
    cr_assert_not_null(j, "report.json is not JSON");
    cr_expect_eq(json_array_size(json_object_get(j, "checks")), 2);
    cr_expect_str_eq(json_string_value(json_object_get(j, "gpu")), "FakeGPU");
    json_decref(j);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_expect_eq(system(cmd), 0);
}
