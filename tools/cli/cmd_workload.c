/* `vramshim workload NAME [--small] -o FILE`: writes a generated workload trace. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "tools/cli/commands.h"
#include "tools/trace/units.h"
#include "tools/workloads/workloads.h"

static void vs_workload_usage(FILE *out)
{
    fprintf(out, "usage: vramshim workload NAME [--small] -o FILE   (FILE may be - for stdout)\n"
                 "       vramshim workload --list\n"
                 "\n"
                 "Writes the allocation trace of a realistic model run (vramshim JSON Lines), for\n"
                 "`vramshim replay`. --small scales it down for quick runs. Workloads:\n");
    for (const struct vs_workload *w = vs_workloads; w->name; w++)
        fprintf(out, "  %-18s %s\n", w->name, w->summary);
}

int vs_cmd_workload(int argc, char **argv)
{
    const char *name = NULL, *path = NULL;
    bool small = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            vs_workload_usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--list")) {
            for (const struct vs_workload *w = vs_workloads; w->name; w++)
                printf("%s\n", w->name);
            return 0;
        } else if (!strcmp(argv[i], "--small")) {
            small = true;
        } else if (!strcmp(argv[i], "-o") && i + 1 < argc) {
            path = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "vramshim workload: unknown option '%s'\n", argv[i]);
            return 2;
        } else if (!name) {
            name = argv[i];
        } else {
            fprintf(stderr, "vramshim workload: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!name || !path) {
        vs_workload_usage(stderr);
        return 2;
    }
    const struct vs_workload *w = vs_workload_find(name);
    if (!w) {
        fprintf(stderr, "vramshim workload: unknown workload '%s' (see vramshim workload --list)\n",
                name);
        return 2;
    }
    bool to_stdout = !strcmp(path, "-");
    FILE *out = to_stdout ? stdout : fopen(path, "w");
    if (!out) {
        perror(path);
        return 1;
    }
    uint64_t peak;
    size_t allocs;
    int rc = vs_workload_write(w, small, out, &peak, &allocs);
    if (!to_stdout && fclose(out))
        rc = -1;
    if (rc) {
        fprintf(stderr, "vramshim workload: writing %s failed\n", path);
        return 1;
    }
    char buf[32];
    fprintf(to_stdout ? stderr : stdout, "%s%s: %zu allocations, peak live %s, written to %s\n",
            w->name, small ? " (small)" : "", allocs, vs_size_format(peak, buf, sizeof buf),
            path);
    return 0;
}
