/* `vramshim replay TRACE --vram SIZE [--json] [--policy FILE]`: does the trace fit a device of
 * SIZE through the arena, and how well does it use physical memory compared with the driver's
 * own allocator (pass-through)? Exit status: 0 when it fits through the arena, 1 when it does
 * not, 2 for bad usage or input, 3 when a replay could not run. */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli/commands.h"
#include "tools/trace/replay.h"
#include "policy/policy.h"
#include "policy/size.h"
#include "tools/trace/units.h"

#define VS_REPLAY_RUNS 2

static const enum vs_replay_mode vs_replay_modes[VS_REPLAY_RUNS] = {VS_REPLAY_ARENA,
                                                                   VS_REPLAY_PASSTHROUGH};

static void vs_replay_usage(FILE *out)
{
    fprintf(out,
            "usage: vramshim replay TRACE --vram SIZE [--json] [--policy FILE]\n"
            "\n"
            "Replays the allocations and frees of TRACE (a VRAMSHIM_TRACE file or a RAPIDS RMM\n"
            "CSV log) on the simulated driver with SIZE of device memory (e.g. 12GiB), once\n"
            "through the vramshim arena and once straight to the driver (pass-through), and\n"
            "reports for each: whether it fits (or the first failing event), peak live bytes,\n"
            "peak physical bytes and utilisation = peak live / peak physical.\n"
            "--policy FILE: the arena follows the policy's stages, tags and eviction (demoting\n"
            "to host memory under pressure, headroom, prefetch) and the report adds the bytes\n"
            "demoted and promoted.\n"
            "--json prints one JSON object instead. Exit status: 0 fits through the arena,\n"
            "1 does not fit, 2 bad usage or input, 3 a replay could not run.\n");
}

static json_t *vs_replay_json_run(const struct vs_tracefile *t, const struct vs_replay_result *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "fits", json_boolean(r->fits));
    json_object_set_new(o, "peak_live_bytes", json_integer((json_int_t)r->peak_live_bytes));
    json_object_set_new(o, "peak_physical_bytes",
                        json_integer((json_int_t)r->peak_physical_bytes));
    json_object_set_new(o, "utilisation", json_real(vs_replay_utilisation(r)));
    json_object_set_new(o, "demoted_bytes", json_integer((json_int_t)r->demoted_bytes));
    json_object_set_new(o, "promoted_bytes", json_integer((json_int_t)r->promoted_bytes));
    json_object_set_new(o, "peak_host_bytes", json_integer((json_int_t)r->peak_host_bytes));
    if (r->fits) {
        json_object_set_new(o, "failed_event", json_null());
        return o;
    }
    const struct vs_tracefile_event *ev = &t->events[r->failed];
    char desc[512];
    json_t *f = json_object();
    json_object_set_new(f, "line", json_integer(ev->line));
    json_object_set_new(f, "event", json_string(vs_tracefile_describe(ev, desc, sizeof desc)));
    json_object_set_new(f, "error", json_string(r->error));
    json_object_set_new(f, "log", json_string(r->message));
    json_object_set_new(o, "failed_event", f);
    return o;
}

static void vs_replay_print_json(const struct vs_tracefile *t, uint64_t vram,
                                 const struct vs_replay_result *res)
{
    json_t *o = vs_replay_json_run(t, &res[0]);
    json_object_set_new(o, "trace", json_string(t->path));
    json_object_set_new(o, "format", json_string(t->format == VS_TF_RMM ? "rmm" : "vramshim"));
    json_object_set_new(o, "vram_bytes", json_integer((json_int_t)vram));
    json_object_set_new(o, "events", json_integer((json_int_t)t->n_events));
    json_object_set_new(o, "allocations", json_integer((json_int_t)t->n_allocs));
    json_object_set_new(o, "passthrough", vs_replay_json_run(t, &res[1]));
    char *text = json_dumps(o, JSON_SORT_KEYS | JSON_REAL_PRECISION(6));
    printf("%s\n", text ? text : "{}");
    free(text);
    json_decref(o);
}

static void vs_replay_print_text(const struct vs_tracefile *t, uint64_t vram, const char *policy,
                                 const struct vs_replay_result *res)
{
    char a[32], b[32];
    printf("trace          %s (%s, %zu allocations, %zu frees)\n", t->path,
           t->format == VS_TF_RMM ? "RMM log" : "vramshim trace", t->n_allocs,
           t->n_events - t->n_allocs);
    printf("device memory  %s (simulated)\n", vs_size_format(vram, a, sizeof a));
    if (policy)
        printf("policy         %s (arena only)\n", policy);
    printf("\n");
    printf("%-15s %-20s %s\n", "", "arena", "pass-through");
    char fit[VS_REPLAY_RUNS][32];
    for (int i = 0; i < VS_REPLAY_RUNS; i++) {
        if (res[i].fits)
            snprintf(fit[i], sizeof fit[i], "yes");
        else
            snprintf(fit[i], sizeof fit[i], "no (line %u)", t->events[res[i].failed].line);
    }
    printf("%-15s %-20s %s\n", "fits", fit[0], fit[1]);
    printf("%-15s %-20s %s\n", "peak live", vs_size_format(res[0].peak_live_bytes, a, sizeof a),
           vs_size_format(res[1].peak_live_bytes, b, sizeof b));
    printf("%-15s %-20s %s\n", "peak physical",
           vs_size_format(res[0].peak_physical_bytes, a, sizeof a),
           vs_size_format(res[1].peak_physical_bytes, b, sizeof b));
    printf("%-15s %-20.4f %.4f\n", "utilisation", vs_replay_utilisation(&res[0]),
           vs_replay_utilisation(&res[1]));
    if (policy) {
        printf("%-15s %-20s -\n", "demoted", vs_size_format(res[0].demoted_bytes, a, sizeof a));
        printf("%-15s %-20s -\n", "promoted", vs_size_format(res[0].promoted_bytes, a, sizeof a));
        printf("%-15s %-20s -\n", "peak on host",
               vs_size_format(res[0].peak_host_bytes, a, sizeof a));
    }
    for (int i = 0; i < VS_REPLAY_RUNS; i++) {
        if (res[i].fits)
            continue;
        char desc[512];
        const struct vs_tracefile_event *ev = &t->events[res[i].failed];
        printf("\n%s: first failing event: line %u: %s: %s\n",
               vs_replay_mode_name(vs_replay_modes[i]), ev->line,
               vs_tracefile_describe(ev, desc, sizeof desc), res[i].error);
        if (res[i].message[0])
            printf("%s: %s\n", vs_replay_mode_name(vs_replay_modes[i]), res[i].message);
    }
}

int vs_cmd_replay(int argc, char **argv)
{
    const char *path = NULL, *vram_text = NULL, *policy = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            vs_replay_usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if (!strcmp(argv[i], "--vram") && i + 1 < argc) {
            vram_text = argv[++i];
        } else if (!strcmp(argv[i], "--policy") && i + 1 < argc) {
            policy = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "vramshim replay: unknown option or missing value: '%s'\n", argv[i]);
            return 2;
        } else if (!path) {
            path = argv[i];
        } else {
            fprintf(stderr, "vramshim replay: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!path || !vram_text) {
        fprintf(stderr, "vramshim replay: %s\n\n",
                !path ? "no TRACE given" : "--vram is missing: give the device size to simulate, "
                                           "e.g. --vram 12GiB");
        vs_replay_usage(stderr);
        return 2;
    }
    uint64_t vram = 0;
    enum vs_size_status st = vs_policy_size_parse(vram_text, &vram);
    if (st == VS_SIZE_BAD) {
        fprintf(stderr, "vramshim replay: --vram '%s' is not a size (e.g. 12GiB, 512MiB, "
                        "4294967296)\n", vram_text);
        return 2;
    }
    if (st == VS_SIZE_TOO_LARGE || vram < VS_REPLAY_VRAM_MIN || vram > VS_REPLAY_VRAM_MAX) {
        char lo[32], hi[32];
        fprintf(stderr, "vramshim replay: --vram '%s' is out of range: the simulated device "
                        "holds from %s to %s\n", vram_text,
                vs_size_format(VS_REPLAY_VRAM_MIN, lo, sizeof lo),
                vs_size_format(VS_REPLAY_VRAM_MAX, hi, sizeof hi));
        return 2;
    }
    struct vs_names *names = vs_names_create();
    struct vs_policy *rules = NULL;
    if (policy) {
        struct vs_policy_diags d = {0};
        rules = names ? vs_policy_load(policy, names, &d) : NULL;
        for (size_t k = 0; k < d.n; k++)
            fprintf(stderr, "vramshim replay: %s\n", d.v[k].text);
        vs_policy_diags_free(&d);
        if (!rules) {
            fprintf(stderr, "vramshim replay: the policy %s cannot be used\n", policy);
            vs_names_destroy(names);
            return 2;
        }
    }
    struct vs_tracefile trace;
    char err[1024];
    if (vs_tracefile_read(path, &trace, err, sizeof err)) {
        fprintf(stderr, "vramshim replay: %s\n", err);
        vs_policy_free(rules);
        vs_names_destroy(names);
        return 2;
    }
    vs_replay_set_policy(rules, names, &trace);
    if (trace.max_dev > 0)
        fprintf(stderr, "vramshim replay: the trace uses %d devices; all are replayed on one\n",
                trace.max_dev + 1);
    struct vs_replay_result res[VS_REPLAY_RUNS];
    int status = 0;
    for (int i = 0; i < VS_REPLAY_RUNS; i++) {
        vs_replay_run(&trace, vs_replay_modes[i], vram, true, &res[i]);
        if (!res[i].ran) {
            fprintf(stderr, "vramshim replay: %s: %s\n", vs_replay_mode_name(vs_replay_modes[i]),
                    res[i].message);
            status = 3;
        }
    }
    if (!status) {
        if (json)
            vs_replay_print_json(&trace, vram, res);
        else
            vs_replay_print_text(&trace, vram, policy, res);
        status = res[0].fits ? 0 : 1;
    }
    vs_tracefile_free(&trace);
    vs_policy_free(rules);
    vs_names_destroy(names);
    return status;
}
