/* Fetches and calls cuGetExportTable the way cudart does first thing, and nothing else: the shim
 * must not initialise for it (it is not hooked). Prints the driver's result.
 */
#include <cudaTypedefs.h>

#include "interpose_prog.h"

int main(void)
{
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    PFN_cuGetExportTable_v3000 get =
        lib ? (PFN_cuGetExportTable_v3000)dlsym(lib, "cuGetExportTable") : NULL;
    if (!get) {
        fprintf(stderr, "no cuGetExportTable\n");
        return 1;
    }
    const void *table = NULL;
    CUuuid id = {{0}};
    printf("export_table result %d\n", (int)get(&table, &id));
    return 0;
}
