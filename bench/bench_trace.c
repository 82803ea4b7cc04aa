/* Reading traces at scale: events per second of `vramshim replay`, `trace import-torch`,
 * `trace timeline` and `trace summary` on synthetic traces of N and 4N events, and how the time
 * per event grows from N to 4N (1.00: linear; the target is below 1.30). Traces are written
 * here: a vramshim trace of a loop of allocations and frees over a few live blocks with stages
 * and call sites, and a PyTorch snapshot pickle of the same shape. Every command runs as a user
 * would run it, its output discarded.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CLI VS_BUILD_DIR "/vramshim"
#define N_SMALL 200000u
#define LINEAR_TARGET 1.30

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* n events: allocations and frees in turn over 64 slots (so about 32 blocks live), 8 stages. */
static int write_trace(const char *path, unsigned n)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "{\"vramshim_trace\":1,\"pid\":1,\"devices\":[{\"ordinal\":0,\"total\":%llu}]}\n",
            24ull << 30);
    for (unsigned s = 1; s <= 8; s++)
        fprintf(f, "{\"ev\":\"site\",\"site\":%u,\"frames\":[\"prog+0x%x phase%u+0x10\","
                   "\"prog+0x100 main+0x20\"]}\n", s, 0x1000 * s, s);
    unsigned live[64] = {0};
    uint64_t t = 1000;
    for (unsigned i = 0; i < n; i++, t += 1000) {
        unsigned slot = (i * 2654435761u) >> 26, stage = 1 + (i / (n / 8 + 1));
        uint64_t ptr = 0x7f0000000000ull + (uint64_t)slot * (1ull << 28);
        if (live[slot]) {
            fprintf(f, "{\"t\":%llu,\"ev\":\"free\",\"ptr\":\"0x%llx\",\"stream\":\"0x0\"}\n",
                    (unsigned long long)t, (unsigned long long)ptr);
            live[slot] = 0;
        } else {
            unsigned size = (1u << 20) * (1 + slot % 16);
            fprintf(f, "{\"t\":%llu,\"ev\":\"alloc\",\"api\":\"cuMemAllocAsync\",\"ptr\":\"0x%llx\","
                       "\"size\":%u,\"stream\":\"0x0\",\"dev\":0,\"stage\":\"s%u\",\"tag\":\"\","
                       "\"site\":%u}\n",
                    (unsigned long long)t, (unsigned long long)ptr, size, stage, stage);
            live[slot] = 1;
        }
    }
    return fclose(f);
}

static void put_str(FILE *f, const char *s)
{
    unsigned n = (unsigned)strlen(s);
    fputc('X', f);
    for (int b = 0; b < 4; b++)
        fputc((int)(n >> (8 * b)) & 0xff, f);
    fputs(s, f);
}

static void put_int(FILE *f, uint32_t v)
{
    fputc('J', f);
    for (int b = 0; b < 4; b++)
        fputc((int)(v >> (8 * b)) & 0xff, f);
}

/* The same loop as a PyTorch snapshot (pickle protocol 2, as pickle.dump writes plain data). */
static int write_snapshot(const char *path, unsigned n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    fputs("\x80\x02}", f);
    put_str(f, "segments");
    fputs("]s", f);
    put_str(f, "device_traces");
    fputs("]](", f);
    unsigned live[64] = {0};
    for (unsigned i = 0; i < n; i++) {
        unsigned slot = (i * 2654435761u) >> 26;
        fputs("}(", f);
        put_str(f, "action");
        put_str(f, live[slot] ? "free_completed" : "alloc");
        put_str(f, "addr");
        put_int(f, 0x10000000u + slot * 0x1000000u);
        put_str(f, "size");
        put_int(f, (1u << 20) * (1 + slot % 16));
        put_str(f, "stream");
        put_int(f, 0);
        put_str(f, "time_us");
        put_int(f, i);
        put_str(f, "frames");
        fputs("]}(", f);
        put_str(f, "filename");
        put_str(f, "/home/me/gen.py");
        put_str(f, "line");
        put_int(f, 10 + slot % 8);
        put_str(f, "name");
        put_str(f, slot % 2 ? "Pipeline.denoise" : "Pipeline.decode");
        fputs("ua", f);
        fputc('u', f);
        live[slot] = !live[slot];
    }
    fputs("eas.", f);
    return fclose(f);
}

/* Seconds `vramshim ARGS` takes, -1 when it fails (exit status above 1: 1 is "does not fit"). */
static double timed(const char *args)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %.2000s >/dev/null 2>&1", CLI, args);
    double t0 = now_s();
    int st = system(cmd);
    double dt = now_s() - t0;
    return st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) > 1 ? -1.0 : dt;
}

int main(void)
{
    char dir[] = "/tmp/vs_bench_trace_XXXXXX";
    if (!mkdtemp(dir))
        return 2;
    static const char *const names[] = {"replay (arena and pass-through)", "trace import-torch",
                                        "trace timeline (HTML)", "trace summary"};
    enum { NCMD = 4 };
    double secs[NCMD][2];
    unsigned sizes[2] = {N_SMALL, 4 * N_SMALL};
    int rc = 0;
    for (int k = 0; k < 2; k++) {
        char trace[128], snap[128], args[NCMD][512];
        snprintf(trace, sizeof trace, "%s/t%d.jsonl", dir, k);
        snprintf(snap, sizeof snap, "%s/s%d.pickle", dir, k);
        if (write_trace(trace, sizes[k]) || write_snapshot(snap, sizes[k]))
            return 2;
        snprintf(args[0], sizeof args[0], "replay %s --vram 24GiB", trace);
        snprintf(args[1], sizeof args[1], "trace import-torch %s -o %s/imported.jsonl", snap, dir);
        snprintf(args[2], sizeof args[2], "trace timeline %s -o %s/t.html", trace, dir);
        snprintf(args[3], sizeof args[3], "trace summary %s", trace);
        for (int c = 0; c < NCMD; c++)
            if ((secs[c][k] = timed(args[c])) < 0) {
                fprintf(stderr, "bench_trace: vramshim %s failed\n", args[c]);
                rc = 1;
            }
    }
    printf("%-32s %12s %12s %10s  %s\n", "command", "events/s N", "events/s 4N", "growth",
           "target");
    for (int c = 0; c < NCMD && !rc; c++) {
        double growth = (secs[c][1] / sizes[1]) / (secs[c][0] / sizes[0]);
        printf("%-32s %12.0f %12.0f %10.2f  < %.2f: %s\n", names[c], sizes[0] / secs[c][0],
               sizes[1] / secs[c][1], growth, LINEAR_TARGET,
               growth < LINEAR_TARGET ? "met" : "NOT met");
    }
    printf("(N = %u events; growth = time per event at 4N / time per event at N)\n", N_SMALL);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        rc = 1;
    return rc;
}
