/* An LLM server for the two-process demo (issue 15; docs/lending.md): the program that shares a
 * GPU with a video generator. It loads its "weights" once (one cuMemAlloc_v2 per layer, as
 * llama.cpp or PyTorch would hold them, ~5 GB by default), fills them with checksummed sparse
 * data (stripes.h), then answers a "request" every --interval-ms: it allocates a KV cache
 * (--kv-mib), reads every weight back to the host, checks each weight's checksum, frees the
 * cache and prints one line; between requests it is idle. Under vramshim with a lending policy
 * its weights may be in host memory while a peer needs the device: a request must still find
 * them intact.
 *
 *   llm_server [--weights-mib N] [--layers N] [--kv-mib N] [--requests N] [--interval-ms N]
 *              [--corrupt-at N]
 *
 * stdout: "ready: ..." once loaded, one "request N ..." line per request, and last a JSON object
 *   {"program":"llm_server","requests":N,"checksum_failures":N,"request_errors":N,
 *    "weights":N,"weight_bytes":N,"load_error":null|"..."}
 * It stops after --requests requests (0: until SIGINT or SIGTERM, which also end a shorter run
 * early, between requests). --corrupt-at N damages one byte of the first weight before request N,
 * so a test can see a checksum fail. Exit status: 0 every request answered with intact weights,
 * 1 a checksum failed, 2 bad usage or no driver, 3 out of memory loading, 4 another CUDA error
 * (loading, or a request that could not be answered).
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools/demo/lib/cu.h"
#include "tools/demo/lib/demo.h"
#include "tools/demo/lib/stripes.h"

struct weight {
    CUdeviceptr ptr;
    uint64_t bytes, seed, checksum;
};

struct server {
    struct vs_demo_cu cu;
    CUstream stream;
    struct weight *w;
    unsigned layers;
    uint64_t weight_bytes, kv_bytes;
    unsigned char *staging; /* one weight's stripes */
    unsigned long requests, failures, errors;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *err_name(struct server *s, CUresult r)
{
    static char buf[64];
    return vs_demo_cu_error(&s->cu, r, buf, sizeof buf);
}

/* Copies weight i's stripes between the device and the staging buffer (to_device: writes them)
 * and returns their checksum; 0 with *rc set on a CUDA error. */
static uint64_t stripes_io(struct server *s, const struct weight *w, bool to_device, CUresult *rc)
{
    size_t len = vs_demo_stripe_len(w->bytes), n = vs_demo_stripe_count(w->bytes);
    *rc = CUDA_SUCCESS;
    for (size_t i = 0; i < n && *rc == CUDA_SUCCESS; i++) {
        CUdeviceptr at = w->ptr + vs_demo_stripe_offset(w->seed, w->bytes, i);
        if (to_device) {
            vs_demo_stripe_fill(w->seed, i, s->staging + i * len, len);
            *rc = s->cu.memcpy_htod_async(at, s->staging + i * len, len, s->stream);
        } else {
            *rc = s->cu.memcpy_dtoh_async(s->staging + i * len, at, len, s->stream);
        }
    }
    if (*rc == CUDA_SUCCESS)
        *rc = s->cu.stream_synchronize(s->stream);
    return *rc == CUDA_SUCCESS ? vs_demo_hash(0, s->staging, n * len) : 0;
}

/* Allocates and fills every layer's weights (the phase a policy names as the server's load). */
VS_DEMO_PHASE static CUresult llm_load_weights(struct server *s)
{
    uint64_t per = s->weight_bytes / s->layers;
    for (unsigned i = 0; i < s->layers; i++) {
        struct weight *w = &s->w[i];
        char name[32];
        snprintf(name, sizeof name, "llm.layer.%u", i);
        w->bytes = i + 1 < s->layers ? per : s->weight_bytes - per * (s->layers - 1);
        w->seed = vs_demo_seed(name);
        CUresult rc = s->cu.mem_alloc(&w->ptr, w->bytes);
        if (rc == CUDA_SUCCESS)
            w->checksum = stripes_io(s, w, true, &rc);
        if (rc != CUDA_SUCCESS) {
            fprintf(stderr, "llm_server: loading layer %u (%llu bytes): %s\n", i,
                    (unsigned long long)w->bytes, err_name(s, rc));
            return rc;
        }
    }
    return CUDA_SUCCESS;
}

/* One request: a KV cache for its duration and every weight read and checked. */
VS_DEMO_PHASE static void llm_answer_request(struct server *s)
{
    double t0 = now_s();
    unsigned long n = ++s->requests;
    CUdeviceptr kv = 0;
    CUresult rc = s->kv_bytes ? s->cu.mem_alloc(&kv, s->kv_bytes) : CUDA_SUCCESS;
    if (rc == CUDA_SUCCESS && kv)
        rc = s->cu.memset_d32_async(kv, (unsigned)n, s->kv_bytes / 4, s->stream);
    unsigned bad = 0, first_bad = 0;
    for (unsigned i = 0; i < s->layers && rc == CUDA_SUCCESS; i++)
        if (stripes_io(s, &s->w[i], false, &rc) != s->w[i].checksum && rc == CUDA_SUCCESS &&
            bad++ == 0)
            first_bad = i;
    if (kv) {
        CUresult fr = s->cu.stream_synchronize(s->stream);
        if (fr == CUDA_SUCCESS)
            fr = s->cu.mem_free(kv);
        if (rc == CUDA_SUCCESS)
            rc = fr;
    }
    double ms = (now_s() - t0) * 1e3;
    if (rc != CUDA_SUCCESS) {
        s->errors++;
        printf("request %lu: not answered: %s (KV cache %llu bytes) after %.1f ms\n", n,
               err_name(s, rc), (unsigned long long)s->kv_bytes, ms);
    } else if (bad) {
        s->failures++;
        printf("request %lu: checksum FAILED for %u of %u weights (first: llm.layer.%u) in %.1f "
               "ms\n",
               n, bad, s->layers, first_bad, ms);
    } else {
        printf("request %lu: checksums ok (%u weights, %llu MiB) in %.1f ms\n", n, s->layers,
               (unsigned long long)(s->weight_bytes >> 20), ms);
    }
    fflush(stdout);
}

/* Damages the first byte of layer 0's first stripe (--corrupt-at). */
static void corrupt(struct server *s)
{
    const struct weight *w = &s->w[0];
    vs_demo_stripe_fill(w->seed, 0, s->staging, vs_demo_stripe_len(w->bytes));
    s->staging[0] = (unsigned char)~s->staging[0];
    CUdeviceptr at = w->ptr + vs_demo_stripe_offset(w->seed, w->bytes, 0);
    if (s->cu.memcpy_htod_async(at, s->staging, 1, s->stream) != CUDA_SUCCESS ||
        s->cu.stream_synchronize(s->stream) != CUDA_SUCCESS)
        fprintf(stderr, "llm_server: --corrupt-at: the damaging copy failed\n");
}

/* Sleeps ms, returning early on a signal. */
static void idle(unsigned long ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (!stop && nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int usage(const char *why)
{
    fprintf(stderr, "llm_server: %s\nusage: llm_server [--weights-mib N] [--layers N] [--kv-mib N] "
                    "[--requests N] [--interval-ms N] [--corrupt-at N]\n",
            why);
    return 2;
}

/* Parses the value of option argv[i] into *out (max: the largest accepted). */
static bool number(char **argv, int i, int argc, unsigned long long max, unsigned long long *out)
{
    if (i + 1 >= argc || argv[i + 1][0] < '0' || argv[i + 1][0] > '9')
        return false;
    char *end;
    errno = 0;
    *out = strtoull(argv[i + 1], &end, 10);
    return !*end && !errno && *out <= max;
}

int main(int argc, char **argv)
{
    unsigned long long weights_mib = 5 * 1024, layers = 32, kv_mib = 256, requests = 0,
                       interval_ms = 3000, corrupt_at = 0;
    const struct {
        const char *flag;
        unsigned long long *value, max;
    } opts[] = {
        {"--weights-mib", &weights_mib, 1ULL << 30}, {"--layers", &layers, 4096},
        {"--kv-mib", &kv_mib, 1ULL << 30},           {"--requests", &requests, 1ULL << 40},
        {"--interval-ms", &interval_ms, 86400000},   {"--corrupt-at", &corrupt_at, 1ULL << 40},
    };
    for (int i = 1; i < argc; i += 2) {
        size_t k = 0;
        while (k < sizeof opts / sizeof opts[0] && strcmp(argv[i], opts[k].flag))
            k++;
        char why[160];
        if (k == sizeof opts / sizeof opts[0]) {
            snprintf(why, sizeof why, "unknown option \"%s\"", argv[i]);
            return usage(why);
        }
        if (!number(argv, i, argc, opts[k].max, opts[k].value)) {
            snprintf(why, sizeof why, "%s needs a whole number up to %llu", opts[k].flag,
                     opts[k].max);
            return usage(why);
        }
    }
    if (layers == 0 || weights_mib == 0)
        return usage("--layers and --weights-mib must be at least 1");

    struct server s = {.layers = (unsigned)layers, .weight_bytes = weights_mib << 20,
                       .kv_bytes = kv_mib << 20};
    char err[256];
    if (vs_demo_cu_open(&s.cu, err, sizeof err)) {
        fprintf(stderr, "llm_server: %s\n", err);
        return 2;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    uint64_t biggest = s.weight_bytes - s.weight_bytes / s.layers * (s.layers - 1);
    s.w = calloc(s.layers, sizeof *s.w);
    s.staging = malloc(vs_demo_stripe_count(biggest) * vs_demo_stripe_len(biggest));
    if (!s.w || !s.staging) {
        fprintf(stderr, "llm_server: out of host memory\n");
        free(s.w);
        free(s.staging);
        return 2;
    }
    CUresult rc = s.cu.stream_create(&s.stream, CU_STREAM_NON_BLOCKING);
    if (rc == CUDA_SUCCESS)
        rc = llm_load_weights(&s);
    if (rc == CUDA_SUCCESS) {
        printf("ready: %u weights, %llu MiB, a request every %llu ms\n", s.layers,
               (unsigned long long)(s.weight_bytes >> 20), interval_ms);
        fflush(stdout);
    }
    while (rc == CUDA_SUCCESS && !stop && (requests == 0 || s.requests < requests)) {
        if (corrupt_at && s.requests + 1 == corrupt_at)
            corrupt(&s);
        llm_answer_request(&s);
        if (requests == 0 || s.requests < requests)
            idle(interval_ms);
    }
    printf("{\"program\":\"llm_server\",\"requests\":%lu,\"checksum_failures\":%lu,"
           "\"request_errors\":%lu,\"weights\":%u,\"weight_bytes\":%llu,\"load_error\":",
           s.requests, s.failures, s.errors, s.layers, (unsigned long long)s.weight_bytes);
    if (rc == CUDA_SUCCESS)
        printf("null}\n");
    else
        printf("\"%s\"}\n", err_name(&s, rc));
    free(s.w);
    free(s.staging);
    if (rc != CUDA_SUCCESS)
        return rc == CUDA_ERROR_OUT_OF_MEMORY ? 3 : 4;
    return s.failures ? 1 : s.errors ? 4 : 0;
}
