/* simcuda logging: `simcuda:` lines on stderr, level from SIMCUDA_LOG (default warn).
 *
 * Invariant: logging never allocates and never takes a lock the caller may hold, so any code path
 * may log.
 */
#include "sim.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int log_level = -1; /* resolved on first use; racing threads compute the same value */

static int resolve_level(void)
{
    if (log_level >= 0)
        return log_level;
    const char *env = getenv("SIMCUDA_LOG");
    static const char *const names[] = {"error", "warn", "info", "debug"};
    int level = VS_SIM_LOG_WARN;
    for (int i = 0; env && i < 4; i++)
        if (strcmp(env, names[i]) == 0)
            level = i;
    __atomic_store_n(&log_level, level, __ATOMIC_RELAXED);
    return level;
}

bool vs_sim_log_enabled(enum vs_sim_log_level level)
{
    return (int)level <= resolve_level();
}

void vs_sim_log(enum vs_sim_log_level level, const char *fmt, ...)
{
    if (!vs_sim_log_enabled(level))
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "simcuda: %s\n", line);
}

CUresult vs_sim_unsupported(const char *name, bool *logged)
{
    if (!__atomic_exchange_n(logged, true, __ATOMIC_RELAXED))
        vs_sim_log(VS_SIM_LOG_ERROR, "%s is not supported by the simulated driver", name);
    return CUDA_ERROR_NOT_SUPPORTED;
}
