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

#include "tests/trace_gen.h"

#define CLI VS_BUILD_DIR "/vramshim"
#define N_SMALL 200000u
#define LINEAR_TARGET 1.30

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
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
        if (tg_write_trace(trace, sizes[k]) || tg_write_snapshot(snap, sizes[k]))
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
