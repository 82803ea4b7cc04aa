/* vramshim JSON Lines trace reader (tools/trace/tracefile_json.c). Inputs that do not start
 * with '{' go to the RMM reader, which fuzz_trace_rmm covers. */
#include "tests/fuzz/fuzz_file.h"
#include "tools/trace/tracefile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!size || data[0] != '{')
        return 0;
    struct vs_tracefile t;
    char err[512];
    if (!vs_tracefile_read(fuzz_file(data, size, ".jsonl"), &t, err, sizeof err))
        vs_tracefile_free(&t);
    return 0;
}
