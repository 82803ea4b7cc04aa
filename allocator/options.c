/* Arena options from the environment. Invariant: a malformed variable never changes a default
 * and is reported in one line naming it. */
#include <stdint.h>
#include <stdlib.h>

#include "allocator/internal.h"
#include "policy/size.h"

void vs_arena_options_from_env(struct vs_arena_options *opt)
{
    *opt = (struct vs_arena_options){.cache_max = SIZE_MAX, .va_chunk = 0};
    const char *v = getenv("VRAMSHIM_CACHE_MAX");
    uint64_t bytes;
    if (!v || !*v)
        return;
    /* Sizes read the same everywhere (policy/size.h): binary units, decimal ones refused. */
    if (vs_policy_size_parse(v, &bytes) != VS_SIZE_OK || bytes > SIZE_MAX) {
        vs_log(VS_LOG_WARN,
               "VRAMSHIM_CACHE_MAX=\"%s\" is not a size (bytes, or with KiB/MiB/GiB/TiB); "
               "caching without a limit",
               v);
        return;
    }
    opt->cache_max = (size_t)bytes;
}
