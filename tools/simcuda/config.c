/* simcuda configuration from the environment (SIMCUDA_*), read once by cuInit.
 *
 * Invariant: a malformed value is reported with the variable name and the text given, and cuInit
 * fails; nothing is silently replaced by a default.
 */
#include "sim.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Parses "12GiB", "512MiB", "64KiB", "1073741824" (also K/M/G/T, KB/MB/GB/TB, 1024-based). Returns
 * 0, or -1 with the problem described in err. */
static int parse_size(const char *text, size_t *out, char *err, size_t errlen)
{
    static const struct {
        const char *suffix;
        unsigned shift;
    } units[] = {{"", 0},   {"B", 0},   {"K", 10},   {"KB", 10},  {"KiB", 10}, {"M", 20},
                 {"MB", 20}, {"MiB", 20}, {"G", 30},  {"GB", 30}, {"GiB", 30}, {"T", 40},
                 {"TB", 40}, {"TiB", 40}};
    const char *p = text;
    while (isspace((unsigned char)*p))
        p++;
    if (!isdigit((unsigned char)*p)) {
        snprintf(err, errlen, "expected a size such as 12GiB, 512MiB or 1073741824");
        return -1;
    }
    errno = 0;
    char *end;
    unsigned long long value = strtoull(p, &end, 10);
    if (errno == ERANGE) {
        snprintf(err, errlen, "number too large");
        return -1;
    }
    while (isspace((unsigned char)*end))
        end++;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcasecmp(end, units[i].suffix) != 0)
            continue;
        if (units[i].shift && value > (~0ULL >> units[i].shift)) {
            snprintf(err, errlen, "size too large");
            return -1;
        }
        *out = (size_t)(value << units[i].shift);
        return 0;
    }
    snprintf(err, errlen, "unknown unit \"%s\" (use KiB, MiB, GiB, TiB or plain bytes)", end);
    return -1;
}

static int load_size(const char *name, size_t fallback, size_t *out)
{
    const char *text = getenv(name);
    *out = fallback;
    if (!text)
        return 0;
    char err[128];
    if (parse_size(text, out, err, sizeof err) != 0) {
        vs_sim_log(VS_SIM_LOG_ERROR, "%s=\"%s\": %s", name, text, err);
        return -1;
    }
    return 0;
}

int vs_sim_config_load(struct vs_sim_config *cfg)
{
    int rc = 0;
    rc |= load_size("SIMCUDA_VRAM", (size_t)24 << 30, &cfg->vram);
    rc |= load_size("SIMCUDA_VRAM_TAKEN", 0, &cfg->vram_taken);
    rc |= load_size("SIMCUDA_HOST_MEM", (size_t)64 << 30, &cfg->host_mem);
    size_t granule;
    if (load_size("SIMCUDA_GRANULE", VS_SIM_GRANULE_DEFAULT, &granule) != 0) {
        rc = -1;
    } else if (granule < ((size_t)64 << 10) || granule > VS_SIM_GRANULE_DEFAULT ||
               (granule & (granule - 1))) {
        vs_sim_log(VS_SIM_LOG_ERROR,
                   "SIMCUDA_GRANULE=\"%s\": expected a power of two from 64KiB to 2MiB",
                   getenv("SIMCUDA_GRANULE"));
        rc = -1;
    } else {
        cfg->granule = granule;
    }
    if (rc == 0 && cfg->vram < cfg->granule) {
        vs_sim_log(VS_SIM_LOG_ERROR, "SIMCUDA_VRAM=\"%s\": at least one granule (%zu KiB) needed",
                   getenv("SIMCUDA_VRAM"), cfg->granule >> 10);
        rc = -1;
    }
    cfg->devices = 1;
    const char *devices = getenv("SIMCUDA_DEVICES");
    if (devices) {
        char *end;
        long n = strtol(devices, &end, 10);
        if (end == devices || *end || n < 1 || n > VS_SIM_MAX_DEVICES) {
            vs_sim_log(VS_SIM_LOG_ERROR, "SIMCUDA_DEVICES=\"%s\": expected a count from 1 to %d",
                       devices, VS_SIM_MAX_DEVICES);
            rc = -1;
        } else {
            cfg->devices = (int)n;
        }
    }
    if (!vs_sim_fault_env_ok())
        rc = -1;
    return rc ? -1 : 0;
}
