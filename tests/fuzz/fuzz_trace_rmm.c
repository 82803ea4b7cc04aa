/* RAPIDS RMM CSV log reader (tools/trace/tracefile_rmm.c). Inputs starting with '{' go to the
 * JSON reader, which fuzz_trace_json covers. */
#include "tests/fuzz/fuzz_file.h"
#include "tools/trace/tracefile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size && data[0] == '{')
        return 0;
    struct vs_tracefile t;
    char err[512];
    if (!vs_tracefile_read(fuzz_file(data, size, ".csv"), &t, err, sizeof err))
        vs_tracefile_free(&t);
    return 0;
}
