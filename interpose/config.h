/* The shim's settings, read once from the environment at lazy initialisation.
 *
 *   VRAMSHIM_MODE=arena|passthrough  (default arena: allocations served by the arena, route.h;
 *                                    passthrough forwards every call and only accounts/traces)
 *   VRAMSHIM_TRACE=PATH              JSON Lines trace (allocator/trace.h); unset = no trace
 *   VRAMSHIM_TRACE_STACKS=0|1        call sites in the trace (default 1)
 *   VRAMSHIM_REAL_LIBCUDA=PATH       driver to forward to (default: the libcuda.so.1 the process
 *                                    loads, also used when PATH cannot be opened or lacks driver
 *                                    entry points; init.c)
 * VRAMSHIM_LOG is read by log.c. Bad values give one `vramshim:` error line and the default.
 */
#ifndef VS_INTERPOSE_CONFIG_H
#define VS_INTERPOSE_CONFIG_H

#include <stdbool.h>

enum vs_mode { VS_MODE_ARENA, VS_MODE_PASSTHROUGH };

/* The driver a process loads by default, and the shim's fallback when VRAMSHIM_REAL_LIBCUDA
 * cannot be opened or is no complete driver. */
#define VS_DEFAULT_LIBCUDA "libcuda.so.1"

struct vs_config {
    enum vs_mode mode;
    const char *trace_path; /* NULL: no trace */
    bool trace_stacks;
    const char *real_libcuda; /* never NULL */
};

void vs_config_read(struct vs_config *cfg);

const char *vs_mode_name(enum vs_mode mode);

#endif
