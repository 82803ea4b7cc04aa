/* The loaded policy, shared by the files of policy/ (not used outside it).
 *
 * Invariants: everything but `cache` is written once by vs_policy_parse() and read-only after;
 * rules[i].pub's arrays point into rules[i]'s own allocations; by_name holds the rule indices
 * sorted by name id. The cache maps a frame string to the rule indices it matches (see
 * match.c) and only ever gains entries. */
#ifndef VS_POLICY_INTERNAL_H
#define VS_POLICY_INTERNAL_H

#include "policy/pattern.h"
#include "policy/policy.h"
#include "policy/strtab.h"

struct vs_rule {
    struct vs_policy_rule pub;
    char **match_text;
    struct vs_pattern *pats;
    uint32_t *evict, *prefetch;
};

struct vs_policy {
    char *filename;
    struct vs_names *names;
    bool eviction, ctl;
    double watermark;
    enum vs_policy_decode_mode decode;
    uint64_t decode_budget;
    struct vs_policy_lend lend;
    uint32_t *lend_ids, *never_ids; /* lend.lend's and lend.never's arrays */
    struct vs_rule *rules;
    size_t n_rules;
    size_t *by_name;
    bool has_matches;
    struct vs_strtab cache;
};

#endif
