/* Process-wide state of stages and policies: the name registry, the VRAMSHIM_POLICY policy and
 * the control socket switch, set up once by whichever comes first, the first driver call
 * (vs_init) or the first vramshim_* call, so the C API works before CUDA is used.
 *
 * Invariants: after vs_rt_init() returns, the registry exists (unless out of memory: then every
 * name is refused) and the policy pointer never changes; both live until exit. The pointers
 * themselves are kept by the allocator (vs_evict_configure, allocator/evict.h), which needs them
 * without the interposer; vs_rt_names/vs_rt_policy read them from there.
 */
#ifndef VS_INTERPOSE_RUNTIME_H
#define VS_INTERPOSE_RUNTIME_H

#include <stdbool.h>
#include <stdint.h>

#include "allocator/trace.h"
#include "policy/policy.h"

/* Loads VRAMSHIM_POLICY (errors: its diagnostics on stderr, then no policy), configures eviction
 * with it and starts the control socket when VRAMSHIM_CTL=1 or the policy says ctl = on. Once. */
void vs_rt_init(void);

struct vs_names *vs_rt_names(void);      /* NULL only when out of memory */
const struct vs_policy *vs_rt_policy(void); /* NULL: no policy */

/* Whether allocations need their call site for the policy (it has match rules). */
bool vs_rt_matches_sites(void);

/* Stage and tag ids the policy gives allocations from site s (0: none); computed once per site
 * and kept in the site's memo word. */
void vs_rt_match_site(struct vs_site *s, uint32_t *stage, uint32_t *tag);

#endif
