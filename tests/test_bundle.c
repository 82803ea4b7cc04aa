/* The real-GPU bundle (tools/gpu-bundle.sh, tools/gpucheck/), dry-run on the simulated driver: the
 * VMM probe, what the bundle ships, and run.sh's promises: a report comes back whatever happens
 * (no GPU, a failed preflight, a check past its time, a run killed mid-check), each check marked
 * pass, fail, skip or cut off with its reason, nothing of an earlier run reused, details capped.
 * Stand-in checks live in tests/bundle/checks/; the Python helpers' unit tests in
 * tests/bundle/test_gpucheck.py. */
#include <signal.h>

#include "tests/demo_fixture.h"

static struct dm_run r;
static char dir[] = "/tmp/vs_bundle_XXXXXX";

#define SIM "LD_LIBRARY_PATH=" VS_BUILD_DIR "/sim "
/* A PATH without nvidia-smi (this machine has none) but with python3. */
#define NO_SMI "PATH=/usr/bin:/bin "
/* The ASan build's binaries are about three times larger than the real bundle's (18 MiB): the
 * bundle's own limit (48 MiB) is for what travels to a device, which an ASan build never does. */
#ifdef __SANITIZE_ADDRESS__
#define ASAN_LIMIT "VS_BUNDLE_MAX_MIB=160 "
#define BUNDLE_MAX_MIB 160L
#else
#define ASAN_LIMIT ""
#define BUNDLE_MAX_MIB 48L
#endif

static void setup(void)
{
    cr_assert_not_null(mkdtemp(dir));
    /* run.sh's working folder, inside the test's (a test may name another). */
    char work[64];
    snprintf(work, sizeof work, "%s/work", dir);
    setenv("VS_WORK", work, 1);
    /* A fresh bundle, as `make gpu-bundle` builds it. */
    dm_sh(&r, "cd " VS_SOURCE_DIR " && " ASAN_LIMIT "tools/gpu-bundle.sh " VS_BUILD_DIR " %s/b",
          dir);
    cr_assert_eq(r.status, 0, "gpu-bundle.sh failed: %s", r.err);
}

static void teardown(void)
{
    json_decref(r.last);
    r.last = NULL;
    dm_sh(&r, "rm -rf %s /tmp/vs-bundle-work-%d", dir, (int)getpid());
}

TestSuite(bundle, .init = setup, .fini = teardown, .timeout = 240);

/* Replaces the bundle's checks by the stand-ins named (e.g. "10-pass 30-late"). */
static void use_checks(const char *names)
{
    dm_sh(&r, "rm %s/b/checks/* && for n in %s; do cp " VS_SOURCE_DIR
              "/tests/bundle/checks/$n.sh %s/b/checks/; done", dir, names, dir);
    cr_assert_eq(r.status, 0, "%s", r.err);
}

/* The report's JSON, or NULL. */
static json_t *report(void)
{
    char path[256];
    snprintf(path, sizeof path, "%s/report/report.json", dir);
    return json_load_file(path, 0, NULL);
}

/* The check named `name` in the report (borrowed). */
static json_t *check(json_t *rep, const char *name)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(rep, "checks"), i, c) if (!strcmp(dm_str(c, "name"), name))
        return c;
    cr_assert_fail("no check %s in the report", name);
    return NULL;
}

static const char *run_str(json_t *rep, const char *key)
{
    return dm_str(json_object_get(rep, "run"), key);
}

/* The check's status is `status` and its detail contains `detail` (when not NULL). */
static void expect_check(json_t *rep, const char *name, const char *status, const char *detail)
{
    json_t *c = check(rep, name);
    cr_expect_str_eq(dm_str(c, "status"), status, "%s", name);
    if (detail)
        cr_expect(strstr(dm_str(c, "detail"), detail), "%s: %s", name, dm_str(c, "detail"));
}

Test(bundle, vmm_probe_reports_simcuda_and_where_cuinit_came_from)
{
    dm_sh(&r, "SIMCUDA_VRAM=12GiB " SIM VS_BUILD_DIR "/gpucheck/vmm_probe");
    cr_assert_not_null(r.last, "vmm_probe printed no JSON: %s", r.out);
    cr_expect_eq(r.status, 0);
    cr_expect(json_is_true(json_object_get(r.last, "vmm_ok")));
    cr_expect(json_is_true(json_object_get(r.last, "host_numa_ok")));
    cr_expect_eq(json_integer_value(json_object_get(r.last, "total_bytes")), 12LL << 30);
    cr_expect(json_is_true(json_object_get(r.last, "simulated")));
    cr_expect_str_eq(dm_str(r.last, "library"), VS_BUILD_DIR "/sim/libcuda.so.1");
}

Test(bundle, vmm_probe_reports_a_missing_driver)
{
    dm_sh(&r, "LD_LIBRARY_PATH=/nonexistent " VS_BUILD_DIR "/gpucheck/vmm_probe");
    cr_assert_not_null(r.last, "%s", r.out);
    cr_expect(json_is_false(json_object_get(r.last, "driver_loaded")));
    cr_expect_neq(r.status, 0);
}

Test(bundle, ships_only_what_checks_run_with_origin_search_paths)
{
    /* Every program in bin/ is run by a check or by run.sh (no test program or benchmark rides
     * along), and nothing searches for libraries on the build machine. */
    dm_sh(&r,
          "(cd %s/b && for f in bin/*; do [ -f \"$f\" ] || continue; n=${f#bin/}; "
          "grep -qrw -- \"$n\" checks run.sh check-lib.sh || echo \"unused: $n\"; done; "
          "for f in bin/* bin/lib/* bin/demo/*; do [ -f \"$f\" ] && readelf -d \"$f\" 2>/dev/null "
          "| grep -E 'R(UN)?PATH' | grep -v '\\[\\$ORIGIN' | sed \"s|^|$f: |\"; done)",
          dir);
    cr_expect_null(strstr(r.out, "unused:"), "%s", r.out);
    cr_expect_null(strstr(r.out, "PATH"), "a build-machine search path: %s", r.out);
    dm_sh(&r, "du -sb %s/b | cut -f1", dir);
    cr_expect(atol(r.out) > 0 && atol(r.out) < BUNDLE_MAX_MIB << 20, "bundle size %s", r.out);
    /* The oldest glibc it runs on, from its binaries' symbol versions. */
    dm_sh(&r, "grep -E '^glibc 2\\.[0-9]+$' %s/b/REQUIRES", dir);
    cr_expect_eq(r.status, 0, "REQUIRES: %s", r.out);
    /* Libraries' own dependencies resolve in the bundle too (DT_RPATH $ORIGIN/lib): libspng's
     * libz. */
    dm_sh(&r, "ldd %s/b/bin/vramshim | grep libz.so", dir);
    cr_expect(strstr(r.out, "/b/bin/lib/libz.so.1"), "%s", r.out);
}

Test(bundle, without_a_gpu_the_report_says_so_and_no_check_runs)
{
    use_checks("10-pass");
    dm_sh(&r, NO_SMI "LD_LIBRARY_PATH=/nonexistent %s/b/run.sh %s/report", dir, dir);
    cr_expect_eq(r.status, 0, "%s", r.err);
    json_t *rep = report();
    cr_assert_not_null(rep);
    cr_expect_str_eq(run_str(rep, "gpu"), "none");
    cr_expect(strstr(run_str(rep, "detail"), "no NVIDIA GPU present"), "%s",
              run_str(rep, "detail"));
    cr_expect_str_eq(dm_str(check(rep, "10-pass"), "status"), "skip");
    cr_expect_str_eq(dm_str(check(rep, "10-pass"), "detail"), "no GPU");
    json_decref(rep);
}

Test(bundle, whole_bundle_on_simcuda_in_a_small_budget_reports_every_check)
{
    /* The real checks, a stand-in nvidia-smi, simcuda, no PyTorch, 45 s for everything. */
    dm_sh(&r, "mkdir -p %s/smi && printf '#!/bin/sh\\necho Stand-in GPU\\n' > %s/smi/nvidia-smi && "
              "chmod +x %s/smi/nvidia-smi", dir, dir, dir);
    dm_sh(&r, "PATH=%s/smi:$PATH VS_BUDGET_S=45 VS_WORK=/tmp/vs-bundle-work-%d " SIM
              "%s/b/run.sh %s/report", dir, (int)getpid(), dir, dir);
    cr_expect_eq(r.status, 1, "10-driver must fail on simcuda: %s", r.err);
    json_t *rep = report();
    cr_assert_not_null(rep, "no report.json");
    cr_expect_str_eq(run_str(rep, "gpu"), "Stand-in GPU");
    cr_expect_str_eq(run_str(rep, "state"), "complete");
    cr_expect_leq(json_integer_value(dm_get(rep, "run.elapsed_s")), 45);
    cr_expect(strstr(run_str(rep, "torch"), "not importable"), "%s", run_str(rep, "torch"));
    static const char *const names[] = {"10-driver", "20-interpose", "30-arena", "40-evict",
                                        "50-demo", "60-python"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        json_t *c = check(rep, names[i]);
        const char *st = dm_str(c, "status");
        cr_expect(!strcmp(st, "pass") || !strcmp(st, "fail") || !strcmp(st, "skip") ||
                      !strcmp(st, "cut off"), "%s: %s", names[i], st);
        cr_expect(*dm_str(c, "detail"), "%s has no reason", names[i]);
    }
    expect_check(rep, "10-driver", "fail", "simulated driver");
    /* PyTorch missing is said, not passed over. */
    cr_expect(strstr(dm_str(check(rep, "20-interpose"), "detail"), "torch not importable"), "%s",
              dm_str(check(rep, "20-interpose"), "detail"));
    json_decref(rep);
    /* One report and one archive come back. */
    dm_sh(&r, "ls %s/report | tr '\\n' ' '", dir);
    cr_expect_str_eq(r.out, "details.tar.gz report.json report.txt ");
}

Test(bundle, a_run_killed_mid_check_leaves_a_report)
{
    use_checks("10-pass 20-hang 30-late");
    /* run.sh in its own process group, killed (SIGKILL: no chance to clean up) while 20-hang
     * runs; then the group, so no sleep outlives the test. */
    dm_sh(&r,
          NO_SMI SIM
          "VS_WORK=/tmp/vs-bundle-work-%d setsid %s/b/run.sh %s/report "
          ">/dev/null 2>&1 & pg=$!; for i in $(seq 100); do "
          "[ -s /tmp/vs-bundle-work-%d/20-hang/pid ] && break; sleep 0.2; done; kill -KILL -- -$pg",
          (int)getpid(), dir, dir, (int)getpid());
    json_t *rep = report();
    cr_assert_not_null(rep, "no report after the kill");
    expect_check(rep, "10-pass", "pass", NULL);
    expect_check(rep, "20-hang", "cut off", "the run stopped during this check");
    expect_check(rep, "30-late", "skip", "not reached");
    json_decref(rep);
}

Test(bundle, a_signal_stops_the_check_and_writes_the_last_report)
{
    use_checks("10-pass 20-hang 30-late");
    dm_sh(&r,
          "(" NO_SMI SIM "VS_WORK=/tmp/vs-bundle-work-%d %s/b/run.sh %s/report >/dev/null 2>&1 & "
          "pid=$!; for i in $(seq 100); do [ -s /tmp/vs-bundle-work-%d/20-hang/pid ] && break; "
          "sleep 0.2; done; kill -TERM $pid; wait $pid; echo \"exit $?\"; sleep 0.5; "
          "kill -0 $(cat /tmp/vs-bundle-work-%d/20-hang/pid) 2>/dev/null && echo leftover)",
          (int)getpid(), dir, dir, (int)getpid(), (int)getpid());
    cr_expect(strstr(r.out, "exit 1"), "%s", r.out);
    cr_expect_null(strstr(r.out, "leftover"), "the check outlived run.sh");
    json_t *rep = report();
    cr_assert_not_null(rep);
    cr_expect_str_eq(run_str(rep, "state"), "stopped by a signal");
    /* What it had written before it was stopped comes back. */
    expect_check(rep, "20-hang", "cut off", "partial result: first step done");
    cr_expect_eq(json_integer_value(dm_get(check(rep, "20-hang"), "figures.partial")), 1);
    json_decref(rep);
    dm_sh(&r, "test -s %s/report/details.tar.gz", dir);
    cr_expect_eq(r.status, 0, "no details archive");
}

Test(bundle, a_check_past_its_share_is_cut_off_and_the_next_still_runs)
{
    use_checks("20-hang 30-late");
    dm_sh(&r, NO_SMI SIM "VS_BUDGET_S=25 %s/b/run.sh %s/report", dir, dir);
    cr_expect_eq(r.status, 1);
    json_t *rep = report();
    cr_assert_not_null(rep);
    expect_check(rep, "20-hang", "cut off", "stopped at its time limit");
    cr_expect_leq(json_integer_value(json_object_get(check(rep, "20-hang"), "limit_s")), 15);
    expect_check(rep, "30-late", "pass", NULL);
    cr_expect_leq(json_integer_value(dm_get(rep, "run.elapsed_s")), 25);
    json_decref(rep);
}

Test(bundle, results_of_an_earlier_run_are_never_reused)
{
    use_checks("50-silent");
    dm_sh(&r, "(mkdir -p /tmp/vs-bundle-work-%d %s/report && echo '{\"name\":\"silent\","
              "\"status\":\"pass\",\"figures\":{},\"detail\":\"old\"}' > /tmp/vs-bundle-work-%d/"
              "50-silent.json && echo OLD > %s/report/report.txt)",
          (int)getpid(), dir, (int)getpid(), dir);
    dm_sh(&r, NO_SMI SIM "VS_WORK=/tmp/vs-bundle-work-%d %s/b/run.sh %s/report", (int)getpid(),
          dir, dir);
    cr_expect_eq(r.status, 1);
    json_t *rep = report();
    cr_assert_not_null(rep);
    expect_check(rep, "50-silent", "fail", "wrote no result (exit 0); log ends: silent: something "
                                          "broke");
    /* Without nvidia-smi the GPU is found through the driver. */
    cr_expect(strstr(run_str(rep, "gpu_found_by"), "the driver"), "%s",
              run_str(rep, "gpu_found_by"));
    cr_expect_str_eq(run_str(rep, "gpu"), "simcuda 24 GiB");
    json_decref(rep);
}

Test(bundle, details_are_capped_and_nested_figures_shown_whole)
{
    use_checks("10-pass 40-big");
    dm_sh(&r, NO_SMI SIM "%s/b/run.sh %s/report", dir, dir);
    cr_expect_eq(r.status, 0, "%s", r.out);
    cr_expect(strstr(r.out, "a.b.c: 5"), "%s", r.out);
    cr_expect(strstr(r.out, "list: [1,2]"), "%s", r.out);
    cr_expect(strstr(r.out, "fine, \"quoted\""), "%s", r.out);
    dm_sh(&r, "(cd %s/report && tar tzf details.tar.gz | sort | tr '\\n' ' '; "
              "stat -c ' size %%s' details.tar.gz)",
          dir);
    cr_expect(strstr(r.out, "details/40-big/trace.jsonl.summary.txt"), "%s", r.out);
    cr_expect(strstr(r.out, "details/40-big/big.log.cut"), "%s", r.out);
    cr_expect_null(strstr(r.out, "trace.jsonl "), "the 3 MiB trace went in whole: %s", r.out);
    const char *size = strstr(r.out, " size ");
    cr_assert_not_null(size, "no details.tar.gz: %s", r.out);
    cr_expect_lt(atol(size + 6), 1L << 20, "%s", r.out);
    dm_sh(&r, "cd %s/report && tar xzOf details.tar.gz details/40-big/trace.jsonl.summary.txt",
          dir);
    cr_expect(strstr(r.out, "30000 \"ev\":\"alloc\""), "%s", r.out);
}

Test(bundle, a_failed_preflight_still_reports)
{
    use_checks("10-pass");
    dm_sh(&r, "(echo 'glibc 9.99' > %s/b/REQUIRES)", dir);
    dm_sh(&r, NO_SMI SIM "%s/b/run.sh %s/report", dir, dir);
    cr_expect_eq(r.status, 1);
    json_t *rep = report();
    cr_assert_not_null(rep);
    cr_expect_str_eq(run_str(rep, "state"), "preflight failed");
    cr_expect(strstr(run_str(rep, "preflight"), "older than the 9.99"), "%s",
              run_str(rep, "preflight"));
    cr_expect_str_eq(dm_str(check(rep, "10-pass"), "status"), "skip");
    json_decref(rep);
}

Test(bundle, python_checks_skip_with_the_reason_without_python)
{
    /* The real Python checks with an interpreter that does not exist: skip, not pass. */
    dm_sh(&r, "cd %s/b/checks && rm 10-* 30-* 40-* 50-* 70-*", dir);
    dm_sh(&r, NO_SMI SIM "VS_PYTHON=/nonexistent/python3 %s/b/run.sh %s/report", dir, dir);
    cr_expect_eq(r.status, 0, "%s", r.out);
    json_t *rep = report();
    cr_assert_not_null(rep);
    cr_expect(strstr(run_str(rep, "python"), "not found"), "%s", run_str(rep, "python"));
    expect_check(rep, "20-interpose", "skip", "no Python interpreter");
    expect_check(rep, "60-python", "skip", "no Python interpreter");
    json_decref(rep);
}

Test(bundle, python_helpers_pass_their_unit_tests_and_every_script_compiles)
{
    dm_sh(&r, "cd " VS_SOURCE_DIR " && PYTHONDONTWRITEBYTECODE=1 python3 -m unittest discover -s "
              "tests/bundle -p 'test_*.py' 2>&1 && for f in tools/gpucheck/*.py "
              "tools/gpucheck/checks/*.py tools/gpucheck/workloads/*.py; do python3 -c "
              "'import sys; compile(open(sys.argv[1]).read(), sys.argv[1], \"exec\")' $f "
              "|| exit 1; done");
    cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
}

Test(bundle, arena_check_runs_compute_sanitizer_when_present)
{
    /* A stand-in compute-sanitizer that finds an error in whatever it runs. */
    dm_sh(&r, "(mkdir -p %s/cs && printf '#!/bin/sh\\necho \"$@\" > %s/cs/args\\nexit 9\\n' > "
              "%s/cs/compute-sanitizer && chmod +x %s/cs/compute-sanitizer && cd %s/b/checks && "
              "rm 10-* 20-* 40-* 50-* 60-* 70-*)", dir, dir, dir, dir, dir);
    dm_sh(&r, "PATH=%s/cs:/usr/bin:/bin " SIM "%s/b/run.sh %s/report", dir, dir, dir);
    cr_expect_eq(r.status, 1, "%s", r.out);
    json_t *rep = report();
    cr_assert_not_null(rep);
    expect_check(rep, "30-arena", "fail", "under compute-sanitizer memcheck: exit 9");
    json_decref(rep);
    dm_sh(&r, "cat %s/cs/args", dir);
    cr_expect(strstr(r.out, "--tool memcheck --leak-check full --error-exitcode 9 "), "%s", r.out);
    cr_expect(strstr(r.out, "/bin/arena_pair_cost --quick"), "%s", r.out);
}

/* The figures of issue 17's table come back from 30-arena and 40-evict (here on simcuda, where
 * they are not GPU figures; the PyTorch part skips without torch, with the reason). */
Test(bundle, arena_and_evict_checks_report_the_allocator_and_link_ratios)
{
    dm_sh(&r, "cd %s/b/checks && rm 10-* 20-* 50-* 60-* 70-*", dir);
    dm_sh(&r, NO_SMI SIM "%s/b/run.sh %s/report", dir, dir);
    json_t *rep = report();
    cr_assert_not_null(rep, "no report: %s", r.err);
    json_t *arena = check(rep, "30-arena"), *evict = check(rep, "40-evict");
    static const char *const pair[] = {"async_ratio", "tiny_async_ratio", "arena_8t_vs_1t",
                                       "arena_8t_one_stream_vs_1t", "driver_8t_vs_1t"};
    for (size_t i = 0; i < sizeof pair / sizeof pair[0]; i++) {
        char path[96];
        snprintf(path, sizeof path, "figures.pair.%s", pair[i]);
        cr_expect_gt(json_number_value(dm_get(arena, path)), 0, "30-arena: no %s", path);
    }
    cr_expect(strstr(dm_str(arena, "detail"), "torch not importable"), "%s",
              dm_str(arena, "detail"));
    static const char *const link[] = {"demote_vs_dtoh", "promote_vs_htod",
                                       "first_demote_vs_dtoh"};
    for (size_t i = 0; i < sizeof link / sizeof link[0]; i++) {
        char path[96];
        snprintf(path, sizeof path, "figures.evict_check.%s", link[i]);
        cr_expect_gt(json_number_value(dm_get(evict, path)), 0, "40-evict: no %s", path);
    }
    cr_expect(json_is_true(dm_get(evict, "figures.evict_check.contents_promoted")));
    json_decref(rep);
}
