/* Running one demo generator (tools/demo/) for `vramshim demo`: finding the programs, the shim,
 * simcuda and the example policies, running a scenario in pass-through or under vramshim, and
 * reading back its result line and trace.
 *
 * Layout, relative to the directory DIR of the running vramshim executable (/proc/self/exe):
 *   DIR/libvramshim.so, DIR/sim/libcuda.so.1 (build/ only), DIR/demo/PROGRAM   (build/ and the
 *   GPU bundle's bin/ alike), and the policies in DIR/../policy/examples (the source tree for
 *   build/, the bundle's policy/examples for bin/).
 */
#ifndef VS_CLI_DEMO_RUN_H
#define VS_CLI_DEMO_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

enum { VS_DEMO_PATH = 4096 };

struct vs_demo_paths {
    char shim[VS_DEMO_PATH];
    char sim_dir[VS_DEMO_PATH];
    char programs[VS_DEMO_PATH];
    char policies[VS_DEMO_PATH];
    char python[VS_DEMO_PATH]; /* the vramshim Python package's folder (auto-hook) */
};

/* Fills paths (policy_dir overrides the policies' folder when not NULL). Returns 0, or -1 with a
 * message naming what is missing and where it was looked for. `need_sim`: simcuda must exist. */
int vs_demo_paths_find(struct vs_demo_paths *paths, const char *policy_dir, bool need_sim,
                       char *err, size_t errlen);

/* A scenario, as its program describes it (--describe); its policy may not exist. */
struct vs_demo_scenario_info {
    char program[2 * VS_DEMO_PATH];
    char name[64];
    char title[256];
    char policy[2 * VS_DEMO_PATH]; /* full path */
    char expected_failure[64];
    uint64_t gpu_bytes, taken_bytes;
    /* The other process as a program run beside the scenario's on one GPU ("" when the taken
     * memory is modelled instead): its path, its policy's (full path) and its arguments. */
    char companion[2 * VS_DEMO_PATH];
    char companion_policy[2 * VS_DEMO_PATH];
    char companion_args[256];
};

int vs_demo_describe(const struct vs_demo_paths *paths, const char *program,
                     struct vs_demo_scenario_info *info, char *err, size_t errlen);

enum vs_demo_mode { VS_DEMO_BASELINE, VS_DEMO_VRAMSHIM };

struct vs_demo_options {
    bool real_device;   /* the real driver; a vram_holder leaves the scenario's GPU size free */
    const char *out_dir;
    int timeout_s;
};

/* One run's outcome. `problem` is set when the run could not be judged at all (the program
 * could not start, printed no result line, timed out, its trace is unreadable). */
struct vs_demo_outcome {
    bool completed;
    bool unfit;                 /* real device: less memory than the scenario's GPU (problem) */
    int exit_status;            /* the program's, -1 when killed */
    json_t *result;             /* its result line (owned), NULL when none */
    uint64_t demoted_bytes, promoted_bytes; /* from the trace */
    unsigned demotions, promotions;
    double seconds;
    char trace[2 * VS_DEMO_PATH], log[2 * VS_DEMO_PATH];
    char problem[3 * VS_DEMO_PATH];
    /* The companion's run (info.companion set): its exit status (-1 killed or not run), its
     * result line (owned, NULL when none), its log, and the lines of the negotiation: the
     * scenario program's `borrow:` lines and the companion's `lend:` lines, in that order. */
    int companion_status;
    json_t *companion_result;
    char companion_log[2 * VS_DEMO_PATH];
    char negotiation[4096];
};

/* Runs the scenario once (pass-through under the shim, or vramshim with the scenario's policy)
 * with its trace and logs in opts->out_dir. Returns 0 when the run could be judged, -1 with
 * outcome->problem set otherwise. */
int vs_demo_run(const struct vs_demo_paths *paths, const struct vs_demo_scenario_info *info,
                enum vs_demo_mode mode, const struct vs_demo_options *opts,
                struct vs_demo_outcome *outcome);

void vs_demo_outcome_clear(struct vs_demo_outcome *outcome);

/* Sums the demote and promote events of a vramshim trace. Returns 0, or -1 with "PATH:LINE: ..."
 * in err. */
int vs_demo_trace_moves(const char *path, uint64_t *demoted, unsigned *demotions,
                        uint64_t *promoted, unsigned *promotions, char *err, size_t errlen);

#endif
