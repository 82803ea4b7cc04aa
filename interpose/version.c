/* The version the shim reports through the public API. */
#include "vramshim.h"

__attribute__((visibility("default"))) const char *vramshim_version(void)
{
    return VS_VERSION;
}
