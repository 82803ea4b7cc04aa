/* Utilisation (peak live / peak physical, GMLake's metric) of each workload replayed through
 * the arena and through the driver's own stream-ordered pool (pass-through) in the same run, on
 * a simulated 24 GiB device, with the ratio between them and whether the arena reaches the 0.97
 * target; the small workloads again on devices of finer allocation granularity; then, for
 * workloads whose replay is quick, the smallest simulated device each one fits in (bisection in
 * 2 MiB steps, checked on the next larger devices too). Small workloads are the committed CI
 * traces; full ones are generated here. Every replay goes through `vramshim replay --json`, as a
 * user would run it.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CLI VS_BUILD_DIR "/vramshim"
#define VRAM_BYTES (24ull << 30)
#define MIB 1048576.0
/* Bisect only workloads whose replay takes less than this: every workload made here (the full
 * Wan decode, about 3 s a replay and 16 replays, shows the arena's largest saving). */
#define BISECT_MAX_S 5.0
#define NROWS 6
#define TARGET 0.97
#define FULL_BUDGET_S 20.0

static const char *const workloads[] = {"sdxl-vae-decode", "wan21-vae-decode", "dit-denoise"};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Runs a shell command, returns its stdout (NULL when it fails). */
static char *run(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return NULL;
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n = getdelim(&buf, &cap, '\0', p); /* JSON has no NUL: reads everything */
    int st = pclose(p);
    /* replay exits 1 when the arena does not fit: still a result */
    if (n <= 0 || !WIFEXITED(st) || WEXITSTATUS(st) > 1) {
        free(buf);
        return NULL;
    }
    return buf;
}

static double util(json_t *o)
{
    return json_real_value(json_object_get(o, "utilisation"));
}

/* `vramshim replay TRACE --vram BYTES --json` on a device of `granule` bytes of allocation
 * granularity (0: simcuda's default, a GPU's 2 MiB), parsed; NULL when the replay did not run. */
static json_t *replay_granule(const char *trace, unsigned long long vram, size_t granule)
{
    char cmd[1024], env[64] = "";
    if (granule)
        snprintf(env, sizeof env, "SIMCUDA_GRANULE=%zu ", granule);
    snprintf(cmd, sizeof cmd, "%s%s replay '%s' --vram %llu --json 2>/dev/null", env, CLI, trace,
             vram);
    char *out = run(cmd);
    json_t *o = out ? json_loads(out, 0, NULL) : NULL;
    free(out);
    return o;
}

static uint64_t bytes(json_t *o, const char *key)
{
    return (uint64_t)json_integer_value(json_object_get(o, key));
}

static bool fits(json_t *o)
{
    return json_is_true(json_object_get(o, "fits"));
}

#define STEP (2ull << 20)
/* A fit must hold on this many 2 MiB larger devices too: a replay may fit on a device and fail
 * on a slightly larger one (placement differs with the memory left), and a device on which a
 * run fits only by such luck is no size a user can rely on. */
#define STABLE_STEPS 8

/* 1 when the run selected by `pt` (pass-through or arena) fits on a device of vram bytes, 0
 * when not, -1 on a failed replay. */
static int fits_on(const char *trace, uint64_t vram, bool pt)
{
    json_t *o = replay_granule(trace, vram, 0);
    if (!o)
        return -1;
    bool ok = fits(pt ? json_object_get(o, "passthrough") : o);
    json_decref(o);
    return ok;
}

/* Smallest device (2 MiB steps) on which the run fits by bisection, between lo (known or
 * assumed not to fit) and hi (known to fit). 0 on a failed replay. */
static uint64_t bisect_fit(const char *trace, uint64_t lo, uint64_t hi, bool pt)
{
    while (hi - lo > STEP) {
        uint64_t mid = lo + (hi - lo) / STEP / 2 * STEP;
        int ok = fits_on(trace, mid, pt);
        if (ok < 0)
            return 0;
        *(ok ? &hi : &lo) = mid;
    }
    return hi;
}

/* Smallest device from which the run also fits on the STABLE_STEPS next larger ones, between lo
 * and hi (as bisect_fit); *first: what bisection alone found first (which may be lower). 0 on a
 * failed replay. */
static uint64_t smallest_fit(const char *trace, uint64_t lo, uint64_t hi, bool pt,
                             uint64_t *first)
{
    lo = lo / STEP * STEP;
    hi = (hi + STEP - 1) / STEP * STEP;
    uint64_t s = bisect_fit(trace, lo, hi, pt);
    *first = s;
    for (int k = 1; s && k <= STABLE_STEPS && s + k * STEP < hi; k++) {
        int ok = fits_on(trace, s + k * STEP, pt);
        if (ok < 0)
            return 0;
        if (!ok) { /* fails above s: the stable size lies above this failure */
            s = bisect_fit(trace, s + k * STEP, hi, pt);
            k = 0;
        }
    }
    return s;
}

struct row {
    char label[64], trace[512];
    uint64_t live, arena_phys, pt_phys;
    double secs;
};

/* Replays one trace on the big device and prints its row; returns 0, or -1 when the replay
 * did not run. */
static int bench_one(struct row *r, bool *met)
{
    double t0 = now_s();
    json_t *o = replay_granule(r->trace, VRAM_BYTES, 0);
    r->secs = now_s() - t0;
    if (!o) {
        printf("%-24s replay failed: %s\n", r->label, r->trace);
        return -1;
    }
    json_t *pt = json_object_get(o, "passthrough");
    double ua = util(o), up = util(pt);
    r->live = bytes(o, "peak_live_bytes");
    r->arena_phys = bytes(o, "peak_physical_bytes");
    r->pt_phys = bytes(pt, "peak_physical_bytes");
    *met = ua >= TARGET && fits(o);
    printf("%-24s %8.1f MiB %8.1f MiB %8.1f MiB   %.4f   %.4f   %5.2fx   %-7s %5.1f s\n",
           r->label, (double)r->live / MIB, (double)r->arena_phys / MIB, (double)r->pt_phys / MIB,
           ua, up, up > 0 ? ua / up : 0.0, *met ? "met" : "not met", r->secs);
    json_decref(o);
    return 0;
}

/* The small workloads again on devices of finer allocation granularity than a GPU's 2 MiB (which
 * is what real GPUs have): what granule rounding costs the arena and the driver's pool. */
static int finer_granules(const struct row *rows)
{
    static const size_t granules[] = {(size_t)1 << 20, (size_t)512 << 10};
    printf("the small workloads at a finer allocation granularity (simulated only: a GPU's is "
           "2 MiB)\n");
    printf("%-24s %8s %12s %12s %8s %8s\n", "workload", "granule", "arena phys", "pt phys",
           "arena", "pt");
    for (int i = 0; i < NROWS / 2; i++)
        for (size_t k = 0; k < sizeof granules / sizeof *granules; k++) {
            json_t *o = replay_granule(rows[i].trace, VRAM_BYTES, granules[k]);
            if (!o) {
                printf("%-24s replay failed at a %zu KiB granule\n", rows[i].label,
                       granules[k] >> 10);
                return -1;
            }
            json_t *pt = json_object_get(o, "passthrough");
            printf("%-24s %4zu KiB %8.1f MiB %8.1f MiB   %.4f   %.4f\n", rows[i].label,
                   granules[k] >> 10, (double)bytes(o, "peak_physical_bytes") / MIB,
                   (double)bytes(pt, "peak_physical_bytes") / MIB, util(o), util(pt));
            json_decref(o);
        }
    printf("\n");
    return 0;
}

int main(void)
{
    char dir[] = "/tmp/vs-bench-util-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    printf("utilisation = peak live / peak physical on a simulated %.0f GiB device; "
           "target >= %.2f\n", (double)VRAM_BYTES / (MIB * 1024), TARGET);
    printf("%-24s %12s %12s %12s %8s %8s %7s %-7s %7s\n", "workload", "peak live", "arena phys",
           "pt phys", "arena", "pt", "ratio", "target", "time");
    struct row rows[NROWS];
    bool ok[NROWS] = {false};
    int status = 0, met_count = 0, n = 0;
    for (int full = 0; full < 2; full++) {
        for (size_t i = 0; i < sizeof workloads / sizeof *workloads; i++, n++) {
            struct row *r = &rows[n];
            char cmd[1024];
            snprintf(r->label, sizeof r->label, "%s%s", workloads[i], full ? "" : "-small");
            if (full) {
                snprintf(r->trace, sizeof r->trace, "%s/%s.jsonl", dir, workloads[i]);
                snprintf(cmd, sizeof cmd, "%s workload %s -o %s >/dev/null", CLI, workloads[i],
                         r->trace);
                if (system(cmd)) {
                    printf("%-24s generation failed: %s\n", r->label, cmd);
                    status = 1;
                    continue;
                }
            } else {
                snprintf(r->trace, sizeof r->trace, "%s/tests/workloads/%s-small.jsonl",
                         VS_SOURCE_DIR, workloads[i]);
            }
            bool met = false;
            if (bench_one(r, &met)) {
                status = 1;
                continue;
            }
            ok[n] = true;
            met_count += met;
            if (full && r->secs > FULL_BUDGET_S)
                printf("%-24s (slower than the %.0f s budget for full workloads)\n", r->label,
                       FULL_BUDGET_S);
        }
    }
    printf("arena utilisation >= %.2f on %d of %d workloads\n\n", TARGET, met_count, n);
    if (n >= NROWS / 2 && ok[0] && ok[1] && ok[2] && finer_granules(rows))
        status = 1;

    printf("smallest simulated device the run fits in, and on the %d next larger ones too "
           "(2 MiB steps; lucky: it fits on a smaller one, but a larger one fails)\n",
           STABLE_STEPS);
    printf("%-24s %12s %12s %12s %7s\n", "workload", "peak live", "arena", "pass-through",
           "saving");
    for (int i = 0; i < n; i++) {
        if (!ok[i] || rows[i].secs > BISECT_MAX_S)
            continue;
        uint64_t a1, p1;
        uint64_t a = smallest_fit(rows[i].trace, rows[i].live, rows[i].arena_phys, false, &a1);
        uint64_t p = smallest_fit(rows[i].trace, rows[i].live, rows[i].pt_phys, true, &p1);
        if (!a || !p) {
            printf("%-24s replay failed\n", rows[i].label);
            status = 1;
            continue;
        }
        printf("%-24s %8.1f MiB %8.1f MiB %8.1f MiB %6.2fx", rows[i].label,
               (double)rows[i].live / MIB, (double)a / MIB, (double)p / MIB,
               (double)p / (double)a);
        if (a1 < a)
            printf("   (arena lucky at %.0f MiB)", (double)a1 / MIB);
        if (p1 < p)
            printf("   (pass-through lucky at %.0f MiB)", (double)p1 / MIB);
        printf("\n");
    }
    for (int i = 3; i < n; i++)
        unlink(rows[i].trace);
    rmdir(dir);
    return status;
}
