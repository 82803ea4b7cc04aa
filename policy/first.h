/* First occurrences of strings owned elsewhere (section names, patterns, list items), in a
 * uthash table: the duplicate and shadowing checks of a policy file stay linear in its size. */
#ifndef VS_POLICY_FIRST_H
#define VS_POLICY_FIRST_H

#include <stdbool.h>
#include <stddef.h>
#include <uthash.h>

struct vs_first {
    const char *text; /* not owned: must outlive the entry */
    size_t owner;     /* the section it was seen in */
    unsigned line;
    UT_hash_handle hh;
};

/* The entry for text, or NULL. */
struct vs_first *vs_first_find(struct vs_first *set, const char *text);

/* Adds text (seen in section owner at line) unless present. Returns the earlier entry, or NULL
 * when text was added; sets *oom (and adds nothing) when memory runs out. */
struct vs_first *vs_first_add(struct vs_first **set, const char *text, size_t owner,
                              unsigned line, bool *oom);

void vs_first_clear(struct vs_first **set);

#endif
