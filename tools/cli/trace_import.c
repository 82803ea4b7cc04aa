/* `vramshim trace import-torch SNAPSHOT -o TRACE [--vram SIZE]`. */
#include <stdio.h>
#include <unistd.h>

#include "policy/size.h"
#include "tools/cli/trace_views.h"
#include "tools/trace/torch_import.h"

int vs_trace_import_torch(const struct vs_trace_opts *o)
{
    uint64_t vram = 0;
    if (o->vram && (vs_policy_size_parse(o->vram, &vram) != VS_SIZE_OK || !vram)) {
        fprintf(stderr, "vramshim trace import-torch: --vram '%s' is not a size (e.g. 24GiB)\n",
                o->vram);
        return 2;
    }
    struct vs_torch_counts n;
    char err[1024];
    if (vs_torch_import(o->path, o->out, vram, true, &n, err, sizeof err)) {
        fprintf(stderr, "vramshim trace import-torch: %s\n", err);
        return 1;
    }
    printf("%s: %zu allocations (%zu from before the recorded window), %zu frees, %zu "
           "out-of-memory, %zu call sites, %zu allocator entries skipped; written to %s\n",
           o->path, n.allocs, n.before, n.frees, n.ooms, n.sites, n.skipped, o->out);
    return 0;
}
