/* A policy file as read, before names are interned: what load.c produces from the INI text,
 * check.c validates across sections and build.c turns into a struct vs_policy.
 * Every value remembers its line, so later checks can name it. */
#ifndef VS_POLICY_PARSED_H
#define VS_POLICY_PARSED_H

#include <stdbool.h>
#include <stdint.h>

#include "policy/diag.h"
#include "policy/first.h"
#include "policy/policy.h"

struct vs_item {
    char *text;
    unsigned line;
};

struct vs_list {
    struct vs_item *v;
    size_t n, cap;
    size_t given;  /* non-empty items written, kept or refused */
    unsigned line; /* of the key, 0 when the section does not have it */
};

struct vs_section {
    enum vs_rule_kind kind;
    char *name;
    unsigned line;
    char label[64]; /* "stage decode" */
    struct vs_list match, evict, prefetch;
    unsigned headroom_line;
    uint64_t headroom;
};

enum vs_global_key { VS_G_EVICTION, VS_G_WATERMARK, VS_G_CTL, VS_G_COUNT };
enum vs_decode_key { VS_D_SUBSTITUTE, VS_D_BUDGET, VS_D_COUNT };
enum vs_lend_key { VS_L_LEND, VS_L_NEVER, VS_L_IDLE_AFTER, VS_L_WAIT, VS_L_COUNT };

struct vs_parsed {
    const char *file;
    struct vs_policy_diags *diags;
    struct vs_section *sects;
    size_t n_sects, cap_sects;
    struct vs_first *by_name; /* section names (owner: the section's index) */
    unsigned global_line;
    unsigned global_key_line[VS_G_COUNT];
    bool eviction, ctl;
    double watermark;
    unsigned decode_line;
    unsigned decode_key_line[VS_D_COUNT];
    enum vs_policy_decode_mode decode;
    uint64_t decode_budget;
    unsigned lend_line;
    unsigned lend_key_line[VS_L_COUNT]; /* of idle_after and wait; the lists keep their own */
    struct vs_list lend, never;
    uint64_t idle_after_ms, wait_ms;
    bool out_of_memory;
};

/* Reads text into p (p->file, p->diags set by the caller); errors go to p->diags. */
void vs_parsed_read(struct vs_parsed *p, const char *text, size_t len);

/* Checks once the whole file is read: empty lists (a list may start on the key's continuation
 * lines, so this waits for the end), self-eviction, evicted and prefetched at once, undefined
 * names, duplicates, patterns shadowed by an earlier section, rules with eviction off. With
 * `read_failed`, names are not reported as undefined (their section may be the bad one). */
void vs_parsed_check(struct vs_parsed *p, bool read_failed);

void vs_parsed_free(struct vs_parsed *p);

/* The section defining name, NULL when none. */
const struct vs_section *vs_parsed_find(const struct vs_parsed *p, const char *name);

#endif
