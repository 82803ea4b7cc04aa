/* Policy files (docs/policy.md, docs/stages.md): which stage an allocation's call site begins,
 * which tag it gets, and what each stage may demote, keep free and promote.
 *
 * policy/ is pure rules: it parses a file and answers questions; it never touches device memory
 * and never calls the allocator. The allocator (and the shim's C API, the control socket, the
 * CLI) ask it.
 *
 * Life cycle. vs_policy_load() parses and validates a whole file. Any error makes it return
 * NULL: the caller logs every diagnostic and runs without a policy; loading never exits or
 * aborts. A loaded policy is immutable, except for an internal, lock-free cache of frame
 * matches; every query is thread-safe and never blocks, so it is fork-safe too.
 *
 * Names. Stage and tag names share one namespace and one id space, owned by a struct vs_names
 * registry (policy/names.h) that the shim keeps for the whole process: names from the file are
 * interned at load, names used at run time (vramshim_stage_begin, vramshim_tag, ctl) are
 * interned by the caller. Ids are what the arena stores per block; 0 means "none".
 *
 * Rules (what the allocator is expected to do with the answers; README "Policy files"):
 *  - A stage's `evict` names the stages and tags whose allocations are idle while it runs: they
 *    may be demoted under allocation pressure (before an out-of-memory is returned) and, when the
 *    stage has a `headroom`, at its start until that many bytes of device memory are free.
 *    vs_policy_is_victim() decides for one block.
 *  - `prefetch` names what to promote when the stage starts. A prefetched name is never a
 *    victim of the same stage (a block whose stage or tag is prefetched is protected).
 *  - A `[tag NAME]` section's match gives the tag to allocations made under a matching frame;
 *    its evict/headroom/prefetch apply when such an allocation is made, as for a stage start.
 */
#ifndef VS_POLICY_POLICY_H
#define VS_POLICY_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/diag.h"
#include "policy/names.h"

struct vs_policy;

enum vs_rule_kind { VS_RULE_STAGE, VS_RULE_TAG };

/* A list of name ids, in file order, without duplicates. */
struct vs_name_list {
    const uint32_t *ids;
    size_t n;
};

/* One [stage NAME] or [tag NAME] section. */
struct vs_policy_rule {
    enum vs_rule_kind kind;
    uint32_t name;                /* id in the registry */
    const char *name_str;         /* same string as vs_names_str(name) */
    unsigned line;                /* line of the section header */
    const char *const *match;     /* pattern texts, file order */
    size_t n_match;
    struct vs_name_list evict, prefetch;
    bool has_headroom;
    uint64_t headroom;            /* bytes, when has_headroom */
};

/* Defaults of [global] keys a file does not set. */
#define VS_POLICY_DEFAULT_WATERMARK 0.9

/* Parses and validates the policy file at `path`; names in messages are `path` as given.
 * Diagnostics (errors and warnings) are appended to *diags (which may be NULL). Returns NULL on
 * any error; warnings alone still give a policy. */
struct vs_policy *vs_policy_load(const char *path, struct vs_names *names,
                                 struct vs_policy_diags *diags);

/* Same, from text in memory (len bytes); `filename` is used in messages. */
struct vs_policy *vs_policy_parse(const char *text, size_t len, const char *filename,
                                  struct vs_names *names, struct vs_policy_diags *diags);

/* What the shim calls for VRAMSHIM_POLICY: loads path and passes every diagnostic line to sink
 * (which prefixes "vramshim: " and writes it); on failure one more line says the policy is not
 * used. Returns the policy or NULL. */
struct vs_policy *vs_policy_load_reported(const char *path, struct vs_names *names,
                                          void (*sink)(const char *line));

/* Frees the policy. No query may run concurrently or later. NULL is fine. */
void vs_policy_free(struct vs_policy *p);

/* --- [global] --------------------------------------------------------------------------------- */
const char *vs_policy_filename(const struct vs_policy *p);
bool vs_policy_eviction(const struct vs_policy *p);  /* eviction = on (default) */
double vs_policy_watermark(const struct vs_policy *p); /* 0..1 */
bool vs_policy_ctl(const struct vs_policy *p);       /* ctl = on: serve the control socket */

/* --- [decode]: substituting the bundled decoder for the program's VAE decode ------------------ */
enum vs_policy_decode_mode {
    VS_POLICY_DECODE_OFF,
    VS_POLICY_DECODE_EXACT,
    VS_POLICY_DECODE_BLEND,
    VS_POLICY_DECODE_MODES
};
/* "off", "exact", "blend" */
extern const char *const vs_policy_decode_names[VS_POLICY_DECODE_MODES];
enum vs_policy_decode_mode vs_policy_decode(const struct vs_policy *p); /* default off */
uint64_t vs_policy_decode_budget(const struct vs_policy *p); /* 0: none given */

/* --- [lend]: what this process gives a peer on the same GPU that asks, and how long it waits
 * for peers when it borrows (docs/lending.md); the shim's interpose/lend.h and borrow.h act on
 * it. */
#define VS_POLICY_DEFAULT_IDLE_AFTER_MS 5000u
#define VS_POLICY_DEFAULT_WAIT_MS 5000u
#define VS_POLICY_MAX_IDLE_AFTER_MS (24u * 3600 * 1000)
#define VS_POLICY_MAX_WAIT_MS (10u * 60 * 1000)
struct vs_policy_lend {
    unsigned line;                   /* of [lend]; 0 when the file has none: it lends nothing */
    struct vs_name_list lend, never; /* stage and tag names */
    uint64_t idle_after_ms;          /* lend only what has been idle this long */
    uint64_t wait_ms;                /* how long a borrower waits for its lenders; 0: never asks */
};
const struct vs_policy_lend *vs_policy_lend_rules(const struct vs_policy *p);

/* Whether a block made in stage `block_stage` with tag `block_tag` (ids, 0 for none) may be lent
 * to a peer: its stage or tag is in `lend` and neither is in `never`. */
bool vs_policy_lends(const struct vs_policy *p, uint32_t block_stage, uint32_t block_tag);

/* --- rules ------------------------------------------------------------------------------------ */
/* Sections in file order: i < vs_policy_rule_count(). */
size_t vs_policy_rule_count(const struct vs_policy *p);
const struct vs_policy_rule *vs_policy_rule_at(const struct vs_policy *p, size_t i);

/* The section of a stage or tag name id; NULL when the file has none (a stage named only at run
 * time: nothing to evict, no headroom, nothing to prefetch). */
const struct vs_policy_rule *vs_policy_rule_of(const struct vs_policy *p, uint32_t name);

/* Whether a block made in stage `block_stage` with tag `block_tag` (ids, 0 for none) may be
 * demoted while the stage or tag `current` applies: eviction is on, current has a rule, the
 * block's stage or tag is in its evict list, neither is in its prefetch list, and neither is
 * `current` itself. */
bool vs_policy_is_victim(const struct vs_policy *p, uint32_t current, uint32_t block_stage,
                         uint32_t block_tag);

/* --- call-site matching ----------------------------------------------------------------------- */
/* Whether any section has a match key: when false, the allocator need not capture stacks for
 * the policy. */
bool vs_policy_has_matches(const struct vs_policy *p);

/* Frames are strings as the trace writes them, innermost first:
 *   native  "module+0xOFF symbol+0xOFF" (the symbol is matched), or a bare "symbol";
 *   Python  "py:FILE:LINE:QUALNAME" (QUALNAME is matched, and MODULE.QUALNAME for every dotted
 *           suffix MODULE of FILE's module path, e.g. "sd", "comfy.sd" for .../comfy/sd.py).
 * The stage (and, independently, the tag) is the one of the innermost frame any pattern matches;
 * when several sections match that frame, the first in the file wins. */
struct vs_policy_match {
    uint32_t stage, tag;         /* name ids, 0 when nothing matched */
    int stage_frame, tag_frame;  /* index of the matching frame, -1 when none */
};
void vs_policy_match_frames(const struct vs_policy *p, const char *const *frames, size_t n,
                            struct vs_policy_match *out);

/* Rule matching one frame string, of the given kind; NULL when none. Results are cached per
 * frame string (lock-free, bounded), so repeated frames cost a hash and a compare. */
const struct vs_policy_rule *vs_policy_match_frame(const struct vs_policy *p, const char *frame,
                                                   enum vs_rule_kind kind);

/* Whether match pattern `pattern` of section `rule` (vs_policy_rule_at) matches a name of frame
 * (for `vramshim policy match --trace`: the patterns that matched nothing). */
bool vs_policy_pattern_matches_frame(const struct vs_policy *p, size_t rule, size_t pattern,
                                     const char *frame);

/* For the Python auto-hook: the rule of `kind` a function with this module ("comfy.sd", may be
 * NULL or "") and qualified name ("VAE.decode") matches; NULL when none. */
const struct vs_policy_rule *vs_policy_match_function(const struct vs_policy *p,
                                                      const char *module, const char *qualname,
                                                      enum vs_rule_kind kind);

#endif
