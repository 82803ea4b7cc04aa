/* The demo generators' main: options, the run's state, allocation with out-of-memory reporting,
 * the final verification and the result line (see demo.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/demo/lib/internal.h"

enum { VS_DEMO_EXIT_OK = 0, VS_DEMO_EXIT_CORRUPT = 1, VS_DEMO_EXIT_USAGE = 2, VS_DEMO_EXIT_OOM = 3,
       VS_DEMO_EXIT_CUDA = 4 };

enum { VS_DEMO_MAX_BAD = 16 };

void vs_demo_json_str(FILE *out, const char *s)
{
    if (!s) {
        fputs("null", out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(out, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(out, "\\u%04x", (unsigned)*s);
        else
            fputc(*s, out);
    }
    fputc('"', out);
}

static const char *vs_demo_api_name(enum vs_demo_api api)
{
    return api == VS_DEMO_API_ASYNC ? "cuMemAllocAsync" : "cuMemAlloc_v2";
}

/* What went wrong, for the result line; all NULL for a run that completed. */
struct vs_demo_failure {
    const char *error, *call, *what;
    uint64_t bytes;
};

/* The result line: one JSON object, the last line on stdout. */
static void vs_demo_result(const struct vs_demo *d, const struct vs_demo_failure *f,
                           const char *const *bad, size_t n_bad)
{
    FILE *o = stdout;
    fputs("{\"scenario\":", o);
    vs_demo_json_str(o, d->s->name);
    fprintf(o, ",\"completed\":%s,\"failed_stage\":", f ? "false" : "true");
    vs_demo_json_str(o, f ? d->stage : NULL);
    fputs(",\"failed_function\":", o);
    vs_demo_json_str(o, f ? d->function : NULL);
    fputs(",\"error\":", o);
    vs_demo_json_str(o, f ? f->error : NULL);
    fputs(",\"call\":", o);
    vs_demo_json_str(o, f ? f->call : NULL);
    fputs(",\"block\":", o);
    vs_demo_json_str(o, f ? f->what : NULL);
    if (f)
        fprintf(o, ",\"request_bytes\":%llu,\"checksums_ok\":null", (unsigned long long)f->bytes);
    else
        fprintf(o, ",\"request_bytes\":null,\"checksums_ok\":%s", n_bad ? "false" : "true");
    fputs(",\"corrupt_weights\":[", o);
    for (size_t i = 0; i < n_bad && i < VS_DEMO_MAX_BAD; i++) {
        fputs(i ? "," : "", o);
        vs_demo_json_str(o, bad[i]);
    }
    fprintf(o, "],\"weights\":%zu,\"weight_bytes\":%llu,\"peak_device_bytes\":%llu,"
               "\"device_total_bytes\":%zu,\"scale\":%.6g,\"steps\":%u,\"api\":\"%s\"}\n",
            d->n_tensors, (unsigned long long)d->weight_bytes, (unsigned long long)d->peak,
            d->total, d->scale, d->steps, vs_demo_api_name(d->s->api));
    fflush(o);
}

void vs_demo_check(struct vs_demo *d, CUresult r, const char *call, const char *what,
                   uint64_t bytes)
{
    if (r == CUDA_SUCCESS)
        return;
    char buf[64];
    struct vs_demo_failure f = {vs_demo_cu_error(&d->cu, r, buf, sizeof buf), call, what, bytes};
    fprintf(stderr, "%s: %s failed in stage %s (%s) for %s (%llu bytes): %s\n", d->s->name, call,
            d->stage, d->function, what, (unsigned long long)bytes, f.error);
    vs_demo_result(d, &f, NULL, 0);
    exit(r == CUDA_ERROR_OUT_OF_MEMORY ? VS_DEMO_EXIT_OOM : VS_DEMO_EXIT_CUDA);
}

uint64_t vs_demo_scaled(const struct vs_demo *d, uint64_t bytes)
{
    uint64_t b = (uint64_t)((double)bytes * d->scale) & ~(uint64_t)511;
    return b ? b : 512;
}

/* Device memory this process has in use now: simcuda counts it per process; a real driver tells
 * only the device's (or the shim, which answers for its arena), less what was in use at the
 * start, so there another process's allocations or releases meanwhile count as well. */
static void vs_demo_note_usage(struct vs_demo *d, const char *what)
{
    uint64_t own;
    if (d->cu.physical_in_use) {
        own = d->cu.physical_in_use(0);
    } else {
        size_t free_b, total;
        vs_demo_check(d, d->cu.mem_get_info(&free_b, &total), "cuMemGetInfo_v2", what, 0);
        size_t used = total - free_b;
        own = used > d->used_at_start ? used - d->used_at_start : 0;
    }
    if (own > d->peak)
        d->peak = own;
}

CUdeviceptr vs_demo_alloc(struct vs_demo *d, const char *what, uint64_t bytes)
{
    CUdeviceptr p = 0;
    if (d->s->api == VS_DEMO_API_ASYNC)
        vs_demo_check(d, d->cu.mem_alloc_async(&p, bytes, d->stream), "cuMemAllocAsync", what,
                      bytes);
    else
        vs_demo_check(d, d->cu.mem_alloc(&p, bytes), "cuMemAlloc_v2", what, bytes);
    vs_demo_note_usage(d, what);
    return p;
}

void vs_demo_free(struct vs_demo *d, CUdeviceptr p)
{
    if (d->s->api == VS_DEMO_API_ASYNC)
        vs_demo_check(d, d->cu.mem_free_async(p, d->stream), "cuMemFreeAsync", "a block", 0);
    else
        vs_demo_check(d, d->cu.mem_free(p), "cuMemFree_v2", "a block", 0);
}

unsigned char *vs_demo_staging(struct vs_demo *d, size_t len)
{
    if (len > d->staging_len) {
        free(d->staging);
        d->staging = malloc(len);
        if (!d->staging) {
            fprintf(stderr, "%s: out of host memory (%zu bytes)\n", d->s->name, len);
            exit(VS_DEMO_EXIT_USAGE);
        }
        d->staging_len = len;
    }
    return d->staging;
}

void vs_demo_stage(struct vs_demo *d, const char *stage, const char *function)
{
    d->stage = stage;
    d->function = function;
    fprintf(stderr, "%s: stage %s (%s)\n", d->s->name, stage, function);
}

void vs_demo_sync(struct vs_demo *d)
{
    vs_demo_check(d, d->cu.stream_synchronize(d->stream), "cuStreamSynchronize", d->stage, 0);
}

unsigned vs_demo_steps(const struct vs_demo *d)
{
    return d->steps;
}

/* --- options ------------------------------------------------------------------------------- */

static void vs_demo_usage(const struct vs_demo_scenario *s, FILE *out)
{
    fprintf(out,
            "usage: %s [--describe] [--scale X | --fit-device] [--steps N] [--corrupt WEIGHT]\n"
            "\n"
            "%s.\n"
            "Runs the pipeline on device 0 of the CUDA driver libcuda.so.1 resolves to (the\n"
            "simulated one with LD_LIBRARY_PATH=build/sim), and prints one JSON result line.\n"
            "\n"
            "  --describe        print the scenario (GPU size, policy, expected failure, the\n"
            "                    weight names --corrupt takes) as JSON\n"
            "  --scale X         multiply every size by X (default 1: the reported run's sizes)\n"
            "  --fit-device      scale to the device: X = its total memory / %.2f GiB\n"
            "  --steps N         denoising steps (default %u)\n"
            "  --corrupt WEIGHT  damage one byte of WEIGHT after loading it (checks the check)\n"
            "\n"
            "Exit status: 0 completed, checksums intact; 1 a weight's checksum differs; 2 bad\n"
            "usage or no driver; 3 out of memory; 4 another CUDA error.\n",
            s->name, s->title, (double)s->gpu_bytes / (1 << 30), s->steps);
}

static bool vs_demo_print_weight(const char *name, void *first)
{
    fputs(*(bool *)first ? "" : ",", stdout);
    *(bool *)first = false;
    vs_demo_json_str(stdout, name);
    return false;
}

static bool vs_demo_is_weight(const char *name, void *wanted)
{
    return strcmp(name, wanted) == 0;
}

/* `"KEY":"VALUE"` after `lead` ("{" or ","). */
static void vs_demo_json_field(const char *lead, const char *key, const char *value)
{
    printf("%s\"%s\":", lead, key);
    vs_demo_json_str(stdout, value);
}

static void vs_demo_describe(const struct vs_demo_scenario *s)
{
    vs_demo_json_field("{", "scenario", s->name);
    vs_demo_json_field(",", "title", s->title);
    vs_demo_json_field(",", "policy", s->policy);
    vs_demo_json_field(",", "expected_failure", s->expected_failure);
    printf(",\"gpu_bytes\":%llu,\"taken_bytes\":%llu,\"api\":\"%s\",\"steps\":%u",
           (unsigned long long)s->gpu_bytes, (unsigned long long)s->taken_bytes,
           vs_demo_api_name(s->api), s->steps);
    if (s->companion) {
        vs_demo_json_field(",\"companion\":{", "program", s->companion);
        vs_demo_json_field(",", "policy", s->companion_policy);
        vs_demo_json_field(",", "args", s->companion_args);
        fputc('}', stdout);
    }
    fputs(",\"weight_names\":[", stdout);
    bool first = true;
    vs_demo_weight_each(s, vs_demo_print_weight, &first);
    fputs("]}\n", stdout);
}

static int vs_demo_number(const char *opt, const char *arg, double max, double *out)
{
    char *end;
    errno = 0;
    double v = arg ? strtod(arg, &end) : 0;
    if (!arg || end == arg || *end || errno || !(v > 0) || v > max) {
        fprintf(stderr, "%s: expected a number above 0 and at most %g, got '%s'\n", opt, max,
                arg ? arg : "");
        return -1;
    }
    *out = v;
    return 0;
}

/* Returns -1 to exit with `*status`. */
static int vs_demo_options(struct vs_demo *d, int argc, char **argv, bool *fit, int *status)
{
    *status = VS_DEMO_EXIT_USAGE;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;
        double v;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            vs_demo_usage(d->s, stdout);
            *status = VS_DEMO_EXIT_OK;
            return -1;
        } else if (!strcmp(a, "--describe")) {
            vs_demo_describe(d->s);
            *status = VS_DEMO_EXIT_OK;
            return -1;
        } else if (!strcmp(a, "--fit-device")) {
            *fit = true;
        } else if (!strcmp(a, "--scale")) {
            if (vs_demo_number(a, next, 64, &v))
                return -1;
            d->scale = v;
            i++;
        } else if (!strcmp(a, "--steps")) {
            if (vs_demo_number(a, next, 1000, &v))
                return -1;
            if (v != (unsigned)v) {
                fprintf(stderr, "--steps: expected a whole number, got '%s'\n", next);
                return -1;
            }
            d->steps = (unsigned)v;
            i++;
        } else if (!strcmp(a, "--corrupt")) {
            if (!next) {
                fprintf(stderr, "--corrupt: expected a weight name, e.g. dit.blocks.3\n");
                return -1;
            }
            if (!vs_demo_weight_each(d->s, vs_demo_is_weight, (void *)next)) {
                fprintf(stderr,
                        "%s: --corrupt: no weight named '%s' (--describe lists \"weight_names\")\n",
                        d->s->name, next);
                return -1;
            }
            d->corrupt = next;
            i++;
        } else {
            fprintf(stderr, "%s: unknown option '%s' (see --help)\n", d->s->name, a);
            return -1;
        }
    }
    return 0;
}

int vs_demo_main(const struct vs_demo_scenario *s, int argc, char **argv)
{
    static struct vs_demo run;
    struct vs_demo *d = &run;
    d->s = s;
    d->scale = 1;
    d->steps = s->steps;
    d->stage = "init";
    d->function = "main";
    bool fit = false;
    int status;
    if (vs_demo_options(d, argc, argv, &fit, &status))
        return status;
    char err[256];
    if (vs_demo_cu_open(&d->cu, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", s->name, err);
        return VS_DEMO_EXIT_USAGE;
    }
    vs_demo_check(d, d->cu.stream_create(&d->stream, CU_STREAM_NON_BLOCKING), "cuStreamCreate",
                  "stream", 0);
    size_t free_b;
    vs_demo_check(d, d->cu.mem_get_info(&free_b, &d->total), "cuMemGetInfo_v2", "device", 0);
    d->used_at_start = d->total - free_b;
    if (fit)
        d->scale = (double)d->total / (double)s->gpu_bytes;
    fprintf(stderr, "%s: %s; device %.2f GiB, %.2f GiB in use at start, scale %.4g\n", s->name,
            s->title, (double)d->total / (1 << 30), (double)d->used_at_start / (1 << 30), d->scale);

    s->run(d);

    vs_demo_stage(d, "verify", "vs_demo_main");
    vs_demo_sync(d);
    const char *bad[VS_DEMO_MAX_BAD];
    size_t n_bad = vs_demo_models_verify(d, bad, VS_DEMO_MAX_BAD);
    fprintf(stderr, "%s: completed; %zu weights (%.2f GiB) checked, %zu differ\n", s->name,
            d->n_tensors, (double)d->weight_bytes / (1 << 30), n_bad);
    vs_demo_result(d, NULL, bad, n_bad);
    return n_bad ? VS_DEMO_EXIT_CORRUPT : VS_DEMO_EXIT_OK;
}
