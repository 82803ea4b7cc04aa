/* Helpers of the arena-mode interposer tests (tests/test_interpose_arena_*.c): run a scenario of
 * tests/progs/arena_served_linked under the shim on simcuda and read what it printed.
 */
#ifndef VS_TESTS_INTERPOSE_ARENA_HARNESS_H
#define VS_TESTS_INTERPOSE_ARENA_HARNESS_H

#include <cuda.h>

#include "interpose_harness.h"

#define VS_ARENA_PROG VS_PROG("arena_served_linked")

/* The allocation entry points of the families scenario, in the order it calls them. */
static const char *const vs_alloc_apis[] = {
    "cuMemAlloc_v2",   "cuMemAllocPitch_v2",      "cuMemAllocAsync",
    "cuMemAllocAsync_ptsz", "cuMemAllocFromPoolAsync", "cuMemAllocFromPoolAsync_ptsz",
};
#define VS_N_ALLOC_APIS (sizeof vs_alloc_apis / sizeof *vs_alloc_apis)

/* Runs `scenario` with the shim (shim != 0) or without; env: NULL-terminated additions. */
static inline struct vs_run vs_run_scenario(const char *scenario, int shim, const char *const *env)
{
    const char *argv[] = {VS_ARENA_PROG, scenario, NULL};
    struct vs_run r = vs_run(argv, shim, env);
    cr_assert_eq(r.status, 0, "%s exited %d:\n%s\n%s", scenario, r.status, r.out, r.raw_err);
    return r;
}

/* The value of the output line "<kind> <name> 0x..." as a number; 0 when absent. */
static inline unsigned long long vs_output_hex(const char *out, const char *kind,
                                               const char *name)
{
    char key[256];
    snprintf(key, sizeof key, "%s %s 0x", kind, name);
    for (const char *line = out; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (strncmp(line, key, strlen(key)) == 0)
            return strtoull(line + strlen(key), NULL, 16);
    return 0;
}

/* The output with every "count ..." and "ptr ..." line removed (they differ between runs with and
 * without the shim by design). */
static inline char *vs_facts(const char *out)
{
    char *facts = calloc(1, strlen(out) + 1);
    cr_assert(facts);
    for (const char *line = out; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line + 1) : strlen(line);
        if (strncmp(line, "count ", 6) != 0 && strncmp(line, "ptr ", 4) != 0)
            strncat(facts, line, len);
        line += len;
    }
    return facts;
}

/* Number of lines of `text` containing `needle`. */
static inline int vs_count_lines_with(const char *text, const char *needle)
{
    int n = 0;
    for (const char *line = text; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        const char *end = strchr(line, '\n');
        const char *hit = strstr(line, needle);
        if (hit && (!end || hit < end))
            n++;
    }
    return n;
}

#endif
