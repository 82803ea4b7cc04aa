/* Lazy initialisation and lifetime of the shim.
 *
 * Invariants: nothing runs at load time (no constructor); the first hooked driver call, or the
 * first dlsym of a hooked name, runs vs_init() exactly once (pthread_once). It reads the settings,
 * opens the real driver and fills vs_drv from it, sets up routing (route.h: arena
 * or passthrough) and registers fork handlers. The arena runs only on a driver that has every
 * vs_driver entry point it needs (it calls them unchecked); hooks reach the real driver only
 * through VS_FORWARD,
 * which checks for NULL, and never the shim's own hooks. It
 * never calls into the driver, so it is safe from any entry point (cuGetExportTable included,
 * which the shim does not hook at all). At exit the trace is flushed and, at VRAMSHIM_LOG=info, a
 * summary line is written.
 */
#ifndef VS_INTERPOSE_INIT_H
#define VS_INTERPOSE_INIT_H

#include <stdbool.h>

#include "allocator/driver.h"
#include "interpose/config.h"

extern struct vs_config vs_cfg;
/* The real driver: the process's one table of it (allocator/driver.h), filled once by vs_init;
 * the hooks forward through it (VS_FORWARD) and the arenas are given it. */
extern struct vs_driver vs_drv;

/* Runs initialisation once; false while the calling thread is itself initialising (a driver
 * constructor calling back into a hook) or when no real driver could be opened. */
bool vs_init(void);

#endif
