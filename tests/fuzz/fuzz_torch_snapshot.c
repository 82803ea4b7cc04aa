/* PyTorch snapshot import (tools/trace/pickle.c, tools/trace/torch_import.c): any bytes give a
 * trace or one error, never a crash, a hang or memory beyond linear in the input. */
#include <stdint.h>
#include <stdio.h>

#include "tools/trace/torch_import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *sink;
    if (!sink && !(sink = fopen("/dev/null", "w")))
        return 0;
    struct vs_torch_counts counts;
    char err[512];
    vs_torch_convert("fuzz.pickle", data, size, 0, false, sink, &counts, err, sizeof err);
    return 0;
}
