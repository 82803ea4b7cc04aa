/* Set-up of the name registry, the policy and the control socket (see runtime.h). */
#include "interpose/runtime.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "allocator/evict.h"
#include "interpose/ctl_server.h"
#include "interpose/ledger_pub.h"
#include "allocator/log.h"

/* The registry and the policy are created here and owned, as pointers, by the allocator's
 * eviction (vs_evict_configure): read back from there, never kept twice. */
static pthread_once_t rt_once = PTHREAD_ONCE_INIT;

static void policy_line(const char *line)
{
    vs_log(VS_LOG_ERROR, "%s", line);
}

/* VRAMSHIM_CTL: unset, "0" or "1"; anything else is reported and means off. */
static bool ctl_requested(void)
{
    const char *v = getenv("VRAMSHIM_CTL");
    if (!v || !*v || !strcmp(v, "0"))
        return false;
    if (!strcmp(v, "1"))
        return true;
    vs_log(VS_LOG_ERROR, "VRAMSHIM_CTL=\"%s\" is not 0 or 1; the control socket stays off", v);
    return false;
}

/* Runs inside vs_init's initialisation (or after it: the API calls vs_init first), so the log
 * level is already read. */
static void rt_setup(void)
{
    struct vs_names *names = vs_names_create();
    struct vs_policy *policy = NULL;
    if (!names)
        vs_log(VS_LOG_ERROR, "out of memory for the stage registry; stages and tags are off");
    const char *path = getenv("VRAMSHIM_POLICY");
    if (path && *path && names)
        policy = vs_policy_load_reported(path, names, policy_line);
    vs_evict_configure(policy, names);
    if (ctl_requested() || (policy && vs_policy_ctl(policy)))
        vs_ctl_server_start();
    vs_ledger_pub_start(policy);
}

void vs_rt_init(void)
{
    pthread_once(&rt_once, rt_setup);
}

struct vs_names *vs_rt_names(void)
{
    vs_rt_init();
    return vs_evict_names();
}

const struct vs_policy *vs_rt_policy(void)
{
    vs_rt_init();
    return vs_evict_policy();
}

bool vs_rt_matches_sites(void)
{
    const struct vs_policy *p = vs_rt_policy();
    return p && vs_policy_has_matches(p);
}

/* Memo word layout: bit 63 set once computed, tag in bits 32..62, stage in bits 0..31. */
#define MEMO_DONE (1ull << 63)

void vs_rt_match_site(struct vs_site *s, uint32_t *stage, uint32_t *tag)
{
    *stage = *tag = 0;
    if (!s || !vs_rt_matches_sites())
        return;
    _Atomic uint64_t *memo = vs_site_memo(s);
    uint64_t m = atomic_load_explicit(memo, memory_order_acquire);
    if (!(m & MEMO_DONE)) {
        const char *frames[32];
        char text[4096];
        unsigned n = vs_site_match_frames(s, frames, 32, text, sizeof text);
        struct vs_policy_match pm;
        vs_policy_match_frames(vs_evict_policy(), frames, n, &pm);
        m = MEMO_DONE | (uint64_t)pm.tag << 32 | pm.stage;
        /* Two threads computing the same site store the same word. */
        atomic_store_explicit(memo, m, memory_order_release);
    }
    *stage = (uint32_t)m;
    *tag = (uint32_t)(m >> 32) & 0x7fffffffu;
}
