/* Environment settings of the shim (see config.h). */
#include "interpose/config.h"

#include <stdlib.h>
#include <string.h>

#include "allocator/log.h"

const char *vs_mode_name(enum vs_mode mode)
{
    return mode == VS_MODE_ARENA ? "arena" : "passthrough";
}

static enum vs_mode read_mode(void)
{
    const char *v = getenv("VRAMSHIM_MODE");
    if (!v || !*v || strcmp(v, "arena") == 0)
        return VS_MODE_ARENA;
    if (strcmp(v, "passthrough") == 0)
        return VS_MODE_PASSTHROUGH;
    vs_log(VS_LOG_ERROR,
           "VRAMSHIM_MODE=\"%s\" is not a mode (expected arena or passthrough); "
           "using passthrough",
           v);
    return VS_MODE_PASSTHROUGH;
}

static bool read_stacks(void)
{
    const char *v = getenv("VRAMSHIM_TRACE_STACKS");
    if (!v || !*v || strcmp(v, "1") == 0)
        return true;
    if (strcmp(v, "0") == 0)
        return false;
    vs_log(VS_LOG_ERROR, "VRAMSHIM_TRACE_STACKS=\"%s\" is not 0 or 1; using 1", v);
    return true;
}

void vs_config_read(struct vs_config *cfg)
{
    cfg->mode = read_mode();
    const char *trace = getenv("VRAMSHIM_TRACE");
    cfg->trace_path = trace && *trace ? trace : NULL;
    cfg->trace_stacks = read_stacks();
    const char *lib = getenv("VRAMSHIM_REAL_LIBCUDA");
    cfg->real_libcuda = lib && *lib ? lib : VS_DEFAULT_LIBCUDA;
}
