/* Eviction (docs/eviction.md; docs/architecture.md, "Layers"): demote live blocks to host memory
 * and promote them back, under the same device addresses, by explicit request, by stage rules and
 * under allocation pressure.
 *
 * Demote: for each run of adjacent granules (2 MiB slots) selected, one host-resident physical
 * allocation is made or reused (cuMemCreate, CU_MEM_LOCATION_TYPE_HOST_NUMA, the device's
 * HOST_NUMA_ID; evict_host.c), the run's contents are copied into it bit for bit, the device
 * granules are unmapped and the host allocation mapped at the same addresses with device
 * read/write access. The application's pointers stay valid; a kernel that still touches the
 * block reads and writes host memory over the bus. The freed device granules go back to the
 * driver (a requested demote: vs_arena_demote) or to the arena's free pool (pressure, headroom,
 * prefetch). Promote is the reverse.
 *
 * Unit: the granule. A granule moves only when every block overlapping it is selected, so a
 * demote never slows down memory the selection did not name; a block's head or tail granule
 * shared with an unselected block stays on the device. A granule of small objects (requests up
 * to 256 KiB, packed in pages grouped by stage and tag: small.c) moves when every live object in
 * it is selected (and, where vs_evict_barrier does not work, none is free). Promote
 * moves every host granule a selected block touches. New blocks avoid host granules.
 *
 * Writes by new owners are never lost: small objects are handed out without the arena lock, so
 * a granule is marked "parking" before its demote checks the objects in it (after a process-wide
 * memory barrier against the hand-out's own check), and stays so while in host memory; a free
 * object of a parking granule is not handed out (it is parked) until the granule is back on the
 * device. So every live
 * object in a moving granule is one the selection named (victims are idle by definition: the
 * program must not touch them during the move), and a block allocated during a move is never
 * in a moving granule. Large blocks are handed out under the arena lock, which the move holds.
 *
 * Ordering: a demote or promote first waits for the device (cuCtxSynchronize), so work queued on
 * any stream before it sees the old placement and finishes before a granule is unmapped; the
 * arena cannot know which streams a kernel used, so nothing cheaper is correct. Copies then run
 * on the legacy stream and are waited for. Both directions copy into the new backing (at a
 * staging VA) before mapping it at the block's VA, so the VA never maps memory that does not
 * hold the block's contents: a copy the program queues meanwhile may run at any moment. Cost:
 * one device synchronisation per call plus the copy at host-link bandwidth; allocation calls of
 * this device wait on the arena lock meanwhile.
 *
 * Transactions: each call moves granules in batches; a driver failure inside a batch undoes that
 * batch exactly (mappings, created handles); batches already done stay done and are counted.
 *
 * Capability: probed once, the first time anything is to be demoted, with a one-granule trial
 * cuMemCreate of host-NUMA memory; where it fails eviction is off for that device (one log line)
 * and demote/promote return CUDA_ERROR_NOT_SUPPORTED.
 *
 * Rules (policy/policy.h): the current stage (vs_arena_set_stage / vs_arena_stage_begin) decides
 * victims with vs_policy_is_victim(). Under pressure, before an allocation fails, victims are
 * demoted, oldest stage first (the order in which stages were first set), until the request
 * fits and memory in use is at or below the watermark. Anti-thrash: a granule promoted while
 * stage S is current is not demoted again by pressure, headroom or prefetch while S is current,
 * and prefetch does not promote past the watermark. Explicit vs_arena_demote/promote ignore both.
 *
 * Prefetch (a rule's first step) fills the device up to the watermark, counting the rule's
 * victims as room. With W the watermark's bytes, U bytes in use, P bytes of the prefetch names in
 * host memory and V bytes of victim granules demotable now (the victims of pressure: never the
 * current stage's or a prefetched name's memory, nor what was promoted in the current stage), it
 * promotes min(P, W - U + V), in granules, after demoting, oldest stage first, just the victim
 * granules that keep U - demoted + promoted <= W; nothing moves when nothing is to come back.
 * Both moves happen under one hold of the arena lock (no allocation takes the room in between);
 * what does not fit stays demoted. A demote failing midway keeps its finished batches and the
 * promotion shrinks to what the watermark still allows.
 *
 * All functions are thread-safe and may be called from any thread.
 */
#ifndef VS_ALLOCATOR_EVICT_H
#define VS_ALLOCATOR_EVICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "allocator/arena.h"

struct vs_policy;
struct vs_names;

/* Process-wide: the policy whose rules pressure, stage starts and tag rules follow (NULL: no
 * rules; explicit demote/promote still work) and the name registry used for trace events and
 * stats (NULL: names print as "#ID"). Both must outlive every arena or a later configure call.
 * These two pointers are the process's only copy (docs/architecture.md, "State and its
 * owners"): the shim's runtime (interpose/runtime.c) loads them and reads them back here. */
void vs_evict_configure(const struct vs_policy *policy, struct vs_names *names);
const struct vs_policy *vs_evict_policy(void);
struct vs_names *vs_evict_names(void);

/* --- explicit requests ------------------------------------------------------------------------ */

/* Demotes every live block whose stage or tag is `name` (an id, non-zero). *moved (may be NULL)
 * gets the bytes of granules moved by this call. This is a requested demote (the C API, the
 * control socket, a peer's request to lend): the device granules it frees go back to the driver
 * (cuMemRelease), so another process can have them; free granules held before the call stay
 * cached (up to VRAMSHIM_CACHE_MAX). A refused release keeps that granule cached (one line).
 * Pressure, headroom and prefetch demotes keep what they free cached instead.
 * CUDA_ERROR_NOT_SUPPORTED when eviction is off on this device; other errors from the driver (what
 * moved before the failure stays moved). */
CUresult vs_arena_demote(struct vs_arena *a, uint32_t name, size_t *moved);

/* Promotes every host granule of live blocks whose stage or tag is `name`. Device memory for
 * it comes from free granules, then the driver; CUDA_ERROR_OUT_OF_MEMORY (nothing more moved)
 * when neither has room. */
CUresult vs_arena_promote(struct vs_arena *a, uint32_t name, size_t *moved);

/* Same with any selection: blocks for which pred(info, ctx) is true. */
typedef bool (*vs_block_pred)(const struct vs_block_info *info, void *ctx);
CUresult vs_arena_demote_if(struct vs_arena *a, vs_block_pred pred, void *ctx, size_t *moved);
CUresult vs_arena_promote_if(struct vs_arena *a, vs_block_pred pred, void *ctx, size_t *moved);

/* Bytes of the live block containing dptr that are host-resident now (0 when none or not live). */
size_t vs_arena_block_demoted_bytes(struct vs_arena *a, CUdeviceptr dptr);

/* --- rules ------------------------------------------------------------------------------------ */

/* vs_arena_set_stage(a, stage), then the stage's rule: promote its prefetch names (up to the
 * watermark, demoting its victims to make room: "Prefetch" above), then demote its victims until
 * `headroom` bytes are free (device free + the arena's free granules). Returns the first error of
 * either step (running out of room is not one); the stage is set regardless. */
CUresult vs_arena_stage_begin(struct vs_arena *a, uint32_t stage);

/* Applies the rule of `name` (a stage or tag, e.g. for an allocation that just got a tag whose
 * section has evict/headroom/prefetch) without changing the current stage. No rule: nothing. */
CUresult vs_arena_apply_rule(struct vs_arena *a, uint32_t name);

/* Demotes victims of `rule_name`'s rule (pressure order, anti-thrash respected) until
 * device free + arena free >= bytes. *freed (may be NULL): bytes moved. CUDA_ERROR_OUT_OF_MEMORY
 * when the victims do not suffice (what moved stays moved). */
CUresult vs_arena_make_headroom(struct vs_arena *a, uint32_t rule_name, size_t bytes,
                                size_t *freed);

/* By how much device free + the arena's free granules fall short of `bytes` now (0: not);
 * *ordinal: the arena's device. What a stage's unmet headroom asks peers for (borrow.h). */
size_t vs_arena_headroom_short(struct vs_arena *a, size_t bytes, int *ordinal);

/* --- accounting ------------------------------------------------------------------------------- */

enum vs_evict_state { VS_EVICT_UNPROBED, VS_EVICT_ON, VS_EVICT_OFF };

struct vs_evict_stats {
    enum vs_evict_state state;
    size_t host_bytes;          /* host-resident granules mapped in the arena now */
    uint64_t demotes, promotes; /* granules moved, ever */
    uint64_t demoted_total, promoted_total; /* bytes moved, ever */
};
void vs_arena_evict_stats(struct vs_arena *a, struct vs_evict_stats *st);

/* Live bytes (requested sizes) of the live blocks of one stage or tag (id 0: none) and the
 * part of them in host memory now. */
struct vs_name_usage {
    uint32_t id;
    size_t live_bytes, demoted_bytes;
};

/* A list of them, one entry per id, in the order the ids were first added. */
struct vs_usage_table {
    struct vs_name_usage *v;
    size_t n, cap;
    bool failed; /* out of host memory: an addition was lost */
};
/* Adds to id's entry (appended when new). */
void vs_usage_add(struct vs_usage_table *t, uint32_t id, size_t live_bytes,
                  size_t demoted_bytes);

/* One arena's usage, what the status JSON reports per device (interpose/status.h). */
struct vs_arena_usage {
    int device;                  /* ordinal */
    struct vs_arena_stats arena; /* vs_arena_stats */
    struct vs_evict_stats evict; /* vs_arena_evict_stats */
    size_t demoted_bytes;        /* the stages' demoted bytes, summed */
    size_t lendable_bytes;       /* device-resident bytes of blocks the policy's [lend] gives */
    size_t lent_bytes;           /* host-resident bytes of those blocks */
    struct vs_usage_table stages, tags; /* in the order a walk of the blocks meets them */
};
/* Fills *u by walking the live blocks (arena.mu held meanwhile). False when out of host memory
 * (nothing to free then); else free the tables with vs_arena_usage_free. */
bool vs_arena_usage(struct vs_arena *a, struct vs_arena_usage *u);
void vs_arena_usage_free(struct vs_arena_usage *u);

#endif
