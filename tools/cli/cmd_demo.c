/* `vramshim demo`: runs the bundled generator programs (tools/demo/) at the seeds' sizes, each
 * first in pass-through mode, where it must run out of memory where its seed did, then under
 * vramshim with its example policy, where it must finish with every weight's checksum intact.
 * Prints a table per scenario (or one JSON object with --json) and writes every run's trace,
 * result line and log to the output folder.
 * Exit status: 0 every scenario behaved as expected, 1 some did not, 2 bad usage or missing
 * pieces. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/cli/commands.h"
#include "tools/cli/demo_run.h"
#include "tools/trace/units.h"

/* In the order they run. */
static const char *const vs_demo_programs[] = {"wan21_t2v", "ovi_fusion", "comfyui_wan22",
                                                "python_wan.py"};
enum { VS_DEMO_N = sizeof vs_demo_programs / sizeof vs_demo_programs[0] };

static void vs_demo_usage(FILE *out)
{
    fprintf(out,
            "usage: vramshim demo [--json] [--scenario NAME] [--device sim|real] [--out DIR]\n"
            "                     [--policy-dir DIR] [--timeout SECONDS]\n"
            "\n"
            "Runs generator programs shaped like pipelines that users reported running out of\n"
            "memory (a text encoder, a DiT denoising loop, a VAE decode with a large workspace),\n"
            "each twice: in pass-through mode, where it runs out of memory where the reported\n"
            "run did, and under vramshim with its\n"
            "example policy, where it finishes with every weight's checksum intact.\n"
            "\n"
            "Scenarios: wan21-t2v-1.3b (11.49 GiB GPU), ovi-fusion (32 GiB), comfyui-wan22-5b\n"
            "(24 GiB, 5 GB held by another process), python-wan21-t2v-1.3b (the Wan one in\n"
            "Python, under the auto-hook `vramshim run` installs).\n"
            "\n"
            "  --json            print one JSON object instead of the tables\n"
            "  --scenario NAME   run only that scenario\n"
            "  --device sim      the simulated driver at the reported GPU sizes (default)\n"
            "  --device real     the real driver at the sizes of the reported failures, another\n"
            "                    process holding the memory this GPU has beyond them\n"
            "  --out DIR         "
            "traces, result lines and logs (default: demo-out next to vramshim)\n"
            "  --policy-dir DIR  the example policies (default: ../policy/examples from vramshim)\n"
            "  --timeout S       seconds a run may take before it is killed (default 300)\n"
            "\n"
            "Exit status: 0 every scenario behaved as expected, 1 some did not, 2 bad usage.\n");
}

struct vs_demo_case {
    struct vs_demo_scenario_info info;
    struct vs_demo_outcome baseline, shim;
    int baseline_rc, shim_rc;
    bool baseline_ok, shim_ok;
};

static const char *vs_demo_str(const json_t *result, const char *key)
{
    return json_string_value(json_object_get(result, key));
}

static uint64_t vs_demo_u64(const json_t *result, const char *key)
{
    return (uint64_t)json_integer_value(json_object_get(result, key));
}

/* The companion (the other process on the GPU, when the scenario runs one) answered every
 * request with intact data and ended cleanly. */
static bool vs_demo_companion_ok(const struct vs_demo_case *c, const struct vs_demo_outcome *o)
{
    const json_t *r = o->companion_result;
    return !c->info.companion[0] ||
           (o->companion_status == 0 && r && vs_demo_u64(r, "requests") > 0 &&
            vs_demo_u64(r, "checksum_failures") == 0 && vs_demo_u64(r, "request_errors") == 0);
}

/* Pass-through must run out of memory in the seed's stage. */
static bool vs_demo_baseline_ok(const struct vs_demo_case *c)
{
    const json_t *r = c->baseline.result;
    return !c->baseline_rc && !c->baseline.completed && vs_demo_companion_ok(c, &c->baseline) &&
           !strcmp(vs_demo_str(r, "failed_stage") ? vs_demo_str(r, "failed_stage") : "",
                   c->info.expected_failure) &&
           !strcmp(vs_demo_str(r, "error") ? vs_demo_str(r, "error") : "",
                   "CUDA_ERROR_OUT_OF_MEMORY");
}

/* vramshim must complete with every checksum intact. */
static bool vs_demo_shim_ok(const struct vs_demo_case *c)
{
    return !c->shim_rc && c->shim.completed && vs_demo_companion_ok(c, &c->shim) &&
           json_is_true(json_object_get(c->shim.result, "checksums_ok"));
}

/* --- JSON ------------------------------------------------------------------------------------- */

static json_t *vs_demo_run_json(const struct vs_demo_outcome *o, int rc)
{
    const json_t *r = o->result;
    json_t *j = json_pack("{s:b, s:i, s:f, s:s, s:s}", "completed", o->completed, "exit_status",
                          o->exit_status, "time_s", o->seconds, "trace", o->trace, "log", o->log);
    json_object_set_new(j, "problem", rc ? json_string(o->problem) : json_null());
    static const char *const copied[] = {"failed_stage", "failed_function", "error", "block",
                                         "request_bytes", "checksums_ok", "corrupt_weights",
                                         "weights", "weight_bytes", "peak_device_bytes",
                                         "device_total_bytes", "scale"};
    for (size_t i = 0; i < sizeof copied / sizeof copied[0]; i++) {
        json_t *v = r ? json_object_get(r, copied[i]) : NULL;
        json_object_set(j, copied[i], v ? v : json_null());
    }
    json_object_set_new(j, "demoted_bytes", json_integer((json_int_t)o->demoted_bytes));
    json_object_set_new(j, "promoted_bytes", json_integer((json_int_t)o->promoted_bytes));
    json_object_set_new(j, "demotions", json_integer(o->demotions));
    json_object_set_new(j, "promotions", json_integer(o->promotions));
    json_t *comp = json_null(), *lines = json_array();
    if (o->companion_log[0] && o->companion_status != -1 && o->companion_result) {
        const json_t *cr = o->companion_result;
        comp = json_pack("{s:i, s:O, s:O, s:O, s:s}", "exit_status", o->companion_status,
                         "requests", json_object_get(cr, "requests"), "checksum_failures",
                         json_object_get(cr, "checksum_failures"), "request_errors",
                         json_object_get(cr, "request_errors"), "log", o->companion_log);
    }
    for (const char *p = o->negotiation, *nl; *p && (nl = strchr(p, '\n')); p = nl + 1)
        json_array_append_new(lines, json_stringn(p, (size_t)(nl - p)));
    json_object_set_new(j, "companion", comp ? comp : json_null());
    json_object_set_new(j, "negotiation", lines);
    return j;
}

/* One scenario as JSON; `skipped` is the reason it did not run (null when it ran). */
static json_t *vs_demo_case_json(const struct vs_demo_case *c)
{
    json_t *j = json_pack(
        "{s:s, s:s, s:s, s:s, s:I, s:I, s:o, s:o, s:b, s:b, s:b}", "name", c->info.name, "title",
        c->info.title, "policy", c->info.policy, "expected_failure", c->info.expected_failure,
        "gpu_bytes", (json_int_t)c->info.gpu_bytes, "taken_bytes", (json_int_t)c->info.taken_bytes,
        "baseline", vs_demo_run_json(&c->baseline, c->baseline_rc), "vramshim",
        vs_demo_run_json(&c->shim, c->shim_rc), "baseline_as_expected", c->baseline_ok,
        "vramshim_as_expected", c->shim_ok, "as_expected", c->baseline_ok && c->shim_ok);
    json_object_set_new(j, "skipped",
                        c->baseline.unfit ? json_string(c->baseline.problem) : json_null());
    return j;
}

static void vs_demo_print_json(const struct vs_demo_case *cases, size_t n, bool real, bool ok)
{
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, vs_demo_case_json(&cases[i]));
    json_t *top = json_pack("{s:s, s:o, s:b}", "device", real ? "real" : "simcuda", "scenarios",
                            list, "ok", ok);
    json_dumpf(top, stdout, JSON_COMPACT);
    putchar('\n');
    json_decref(top);
}

/* OUT/results.jsonl gets each scenario's line as soon as it is done, so a run stopped half-way
 * (a time limit on a GPU machine) keeps what it had. */
static void vs_demo_append_result(FILE *results, const struct vs_demo_case *c)
{
    if (!results)
        return;
    json_t *j = vs_demo_case_json(c);
    json_dumpf(j, results, JSON_COMPACT);
    fputc('\n', results);
    fflush(results);
    json_decref(j);
}

/* --- tables ----------------------------------------------------------------------------------- */

static void vs_demo_print_row(const char *label, const struct vs_demo_outcome *o, int rc)
{
    char peak[32] = "-", demoted[32] = "-", promoted[32] = "-", stage[160] = "-", sums[32] = "-";
    const json_t *r = o->result;
    if (rc) {
        printf("  %-13s could not be judged: %s\n", label, o->problem);
        return;
    }
    vs_size_format(vs_demo_u64(r, "peak_device_bytes"), peak, sizeof peak);
    if (o->demotions)
        vs_size_format(o->demoted_bytes, demoted, sizeof demoted);
    if (o->promotions)
        vs_size_format(o->promoted_bytes, promoted, sizeof promoted);
    if (!o->completed) {
        const char *err = vs_demo_str(r, "error");
        snprintf(stage, sizeof stage, "%s (%s%s%s)", vs_demo_str(r, "failed_stage"),
                 vs_demo_str(r, "block") ? vs_demo_str(r, "block") : "?",
                 err && strcmp(err, "CUDA_ERROR_OUT_OF_MEMORY") ? ": " : "",
                 err && strcmp(err, "CUDA_ERROR_OUT_OF_MEMORY") ? err : "");
    } else {
        snprintf(sums, sizeof sums, "%s (%lld)",
                 json_is_true(json_object_get(r, "checksums_ok")) ? "ok" : "CORRUPT",
                 (long long)json_integer_value(json_object_get(r, "weights")));
    }
    printf("  %-13s %-9s %-38s %-11s %-10s %-10s %-10s %6.1f s\n", label,
           o->completed ? "yes" : "no", stage, peak, demoted, promoted, sums, o->seconds);
}

/* The companion's lines under a run's row: its requests, and the negotiation. */
static void vs_demo_print_companion(const char *label, const struct vs_demo_outcome *o)
{
    const json_t *r = o->companion_result;
    if (!o->companion_log[0] || o->companion_status == -1) {
        if (o->companion_log[0])
            printf("    %s: the other process did not end cleanly (log: %s)\n", label,
                   o->companion_log);
        return;
    }
    printf("    %s: the other process answered %lld request%s, %s (exit %d)\n", label,
           (long long)vs_demo_u64(r, "requests"), vs_demo_u64(r, "requests") == 1 ? "" : "s",
           r && !vs_demo_u64(r, "checksum_failures") && !vs_demo_u64(r, "request_errors")
               ? "every checksum ok"
               : "SOME FAILED",
           o->companion_status);
    for (const char *p = o->negotiation, *nl; *p && (nl = strchr(p, '\n')); p = nl + 1)
        printf("    %.*s\n", (int)(nl - p), p);
}

static void vs_demo_print_table(const struct vs_demo_case *c, bool real)
{
    char gpu[32], taken[32];
    vs_size_format(c->info.gpu_bytes, gpu, sizeof gpu);
    vs_size_format(c->info.taken_bytes, taken, sizeof taken);
    printf("%s: %s\n", c->info.name, c->info.title);
    printf("  %s GPU %s, %s held by another process; policy %s\n",
           real ? "real device, a process holding all but the memory of the reported failure's"
                : "simulated",
           gpu, taken, c->info.policy);
    if (c->info.companion[0])
        printf("  the other process: %s %s, under vramshim with %s (%s)\n", c->info.companion,
               c->info.companion_args, c->info.companion_policy,
               real ? "the same GPU" : "one shared simulated GPU");
    if (c->baseline.unfit) {
        printf("  skipped: %s\n\n", c->baseline.problem);
        return;
    }
    printf("  %-13s %-9s %-38s %-11s %-10s %-10s %-10s %8s\n", "run", "completed",
           "failed stage (block)", "peak device", "demoted", "promoted", "checksums", "time");
    vs_demo_print_row("pass-through", &c->baseline, c->baseline_rc);
    vs_demo_print_row("vramshim", &c->shim, c->shim_rc);
    if (!c->baseline_rc)
        vs_demo_print_companion("pass-through", &c->baseline);
    if (!c->shim_rc)
        vs_demo_print_companion("vramshim", &c->shim);
    if (c->baseline_ok && c->shim_ok)
        printf("  as expected: pass-through runs out of memory at %s, vramshim completes with "
               "every weight intact\n", c->info.expected_failure);
    if (!c->baseline_ok && !c->baseline_rc)
        printf("  NOT AS EXPECTED: pass-through should run out of memory at %s (log: %s)\n",
               c->info.expected_failure, c->baseline.log);
    if (!c->shim_ok && !c->shim_rc)
        printf("  NOT AS EXPECTED: vramshim should complete with every checksum intact (log: %s)\n",
               c->shim.log);
    if (!c->baseline_rc && !c->shim_rc)
        printf("  traces: %s, %s\n", c->baseline.trace, c->shim.trace);
    putchar('\n');
}

/* --- main ------------------------------------------------------------------------------------- */

static int vs_demo_mkdir(const char *dir)
{
    char path[2 * VS_DEMO_PATH];
    snprintf(path, sizeof path, "%s", dir);
    for (char *p = path + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0755);
            *p = '/';
        }
    if (mkdir(path, 0755) && errno != EEXIST) {
        fprintf(stderr, "vramshim demo: cannot create %s: %s\n", dir, strerror(errno));
        return -1;
    }
    return 0;
}

int vs_cmd_demo(int argc, char **argv)
{
    bool json = false;
    const char *scenario = NULL, *out_dir = NULL, *policy_dir = NULL;
    struct vs_demo_options opts = {.timeout_s = 300};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = !strcmp(a, "--scenario") || !strcmp(a, "--device") || !strcmp(a, "--out") ||
                     !strcmp(a, "--policy-dir") || !strcmp(a, "--timeout");
        if (takes && !next) {
            fprintf(stderr, "vramshim demo: %s needs a value (see vramshim demo --help)\n", a);
            return 2;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            vs_demo_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--scenario")) {
            scenario = argv[++i];
        } else if (!strcmp(a, "--out")) {
            out_dir = argv[++i];
        } else if (!strcmp(a, "--policy-dir")) {
            policy_dir = argv[++i];
        } else if (!strcmp(a, "--device")) {
            if (strcmp(next, "sim") && strcmp(next, "real")) {
                fprintf(stderr, "vramshim demo: --device: expected sim or real, got '%s'\n", next);
                return 2;
            }
            opts.real_device = !strcmp(argv[++i], "real");
        } else if (!strcmp(a, "--timeout")) {
            char *end;
            long t = strtol(next, &end, 10);
            if (end == next || *end || t < 1 || t > 86400) {
                fprintf(stderr, "vramshim demo: --timeout: expected seconds (1 to 86400), got "
                                "'%s'\n", next);
                return 2;
            }
            opts.timeout_s = (int)t;
            i++;
        } else {
            fprintf(stderr, "vramshim demo: unknown option '%s' (see vramshim demo --help)\n", a);
            return 2;
        }
    }
    struct vs_demo_paths paths;
    char err[VS_DEMO_PATH + 128];
    if (vs_demo_paths_find(&paths, policy_dir, !opts.real_device, err, sizeof err)) {
        fprintf(stderr, "vramshim demo: %s\n", err);
        return 2;
    }
    char default_out[VS_DEMO_PATH + 16];
    if (!out_dir) {
        snprintf(default_out, sizeof default_out, "%.*s/demo-out",
                 (int)(strlen(paths.programs) - strlen("/demo")), paths.programs);
        out_dir = default_out;
    }
    if (vs_demo_mkdir(out_dir))
        return 2;
    opts.out_dir = out_dir;

    struct vs_demo_case cases[VS_DEMO_N];
    size_t n = 0;
    for (size_t i = 0; i < VS_DEMO_N; i++) {
        struct vs_demo_case *c = &cases[n];
        memset(c, 0, sizeof *c);
        if (vs_demo_describe(&paths, vs_demo_programs[i], &c->info, err, sizeof err)) {
            fprintf(stderr, "vramshim demo: %s\n", err);
            return 2;
        }
        if (scenario && strcmp(scenario, c->info.name))
            continue;
        if (access(c->info.policy, R_OK)) {
            fprintf(stderr, "vramshim demo: %s: its policy %s cannot be read: %s\n", c->info.name,
                    c->info.policy, strerror(errno));
            return 2;
        }
        n++;
    }
    if (!n) {
        fprintf(stderr, "vramshim demo: no scenario named '%s' (known: wan21-t2v-1.3b, "
                        "ovi-fusion, comfyui-wan22-5b, python-wan21-t2v-1.3b)\n", scenario);
        return 2;
    }
    char results_path[VS_DEMO_PATH + 32];
    snprintf(results_path, sizeof results_path, "%s/results.jsonl", out_dir);
    FILE *results = fopen(results_path, "w");
    if (!results)
        fprintf(stderr, "vramshim demo: cannot write %s: %s\n", results_path, strerror(errno));
    /* A run that cannot be judged (no driver, a crash, a time-out) would fail the same way in
     * every scenario: its reason is said once and the demo stops there. */
    bool ok = true, stopped = false;
    size_t ran = 0, done = 0;
    for (; done < n && !stopped; done++) {
        struct vs_demo_case *c = &cases[done];
        if (!json)
            fprintf(stderr, "vramshim demo: %s: pass-through run...\n", c->info.name);
        c->baseline_rc = vs_demo_run(&paths, &c->info, VS_DEMO_BASELINE, &opts, &c->baseline);
        if (!c->baseline_rc || !c->baseline.unfit) {
            if (c->baseline_rc) {
                c->shim_rc = -1;
            } else {
                if (!json)
                    fprintf(stderr, "vramshim demo: %s: vramshim run...\n", c->info.name);
                c->shim_rc = vs_demo_run(&paths, &c->info, VS_DEMO_VRAMSHIM, &opts, &c->shim);
            }
            c->baseline_ok = vs_demo_baseline_ok(c);
            c->shim_ok = vs_demo_shim_ok(c);
            ok = ok && c->baseline_ok && c->shim_ok;
            ran++;
        }
        const struct vs_demo_outcome *bad = c->baseline_rc && !c->baseline.unfit ? &c->baseline
                                            : c->shim_rc && !c->baseline_rc    ? &c->shim
                                                                               : NULL;
        if (bad) {
            if (!c->shim.problem[0])
                snprintf(c->shim.problem, sizeof c->shim.problem,
                         "not run: the pass-through run could not be judged");
            fprintf(stderr, "vramshim demo: %s: the %s run could not be judged: %s\n",
                    c->info.name, bad == &c->baseline ? "pass-through" : "vramshim", bad->problem);
            if (done + 1 < n)
                fprintf(stderr, "vramshim demo: stopping here; the other scenarios would fail "
                                "the same way\n");
            stopped = true;
        }
        vs_demo_append_result(results, c);
        if (!json)
            vs_demo_print_table(c, opts.real_device);
    }
    if (results)
        fclose(results);
    ok = ok && ran > 0 && !stopped;
    if (!ran && !stopped)
        fprintf(stderr, "vramshim demo: no scenario fits this device\n");
    n = done;
    if (json)
        vs_demo_print_json(cases, n, opts.real_device, ok);
    else
        printf("%s\n", ok ? "demo: every scenario behaved as expected"
                          : "demo: some scenario did not behave as expected");
    for (size_t i = 0; i < n; i++) {
        vs_demo_outcome_clear(&cases[i].baseline);
        vs_demo_outcome_clear(&cases[i].shim);
    }
    return ok ? 0 : 1;
}
