/* Checks across sections, after the whole file is read (see parsed.h). Errors: an empty list,
 * a section that evicts itself, a name both evicted and prefetched. Warnings: names not defined in the file
 * (they may be named at run time, so this cannot be an error), names listed twice, a pattern
 * that an earlier section of the same kind already claims (the earlier one wins: dead text),
 * and eviction rules in a file that turns eviction off. */
#include <string.h>

#include "policy/parsed.h"

static const char *kind_word(enum vs_rule_kind k)
{
    return k == VS_RULE_STAGE ? "stage" : "tag";
}

static void check_names(struct vs_parsed *p, struct vs_section *s, const struct vs_list *l,
                        const char *key, bool read_failed)
{
    struct vs_first *listed = NULL, *evicted = NULL;
    bool oom = false;
    if (l == &s->prefetch)
        for (size_t j = 0; j < s->evict.n; j++)
            vs_first_add(&evicted, s->evict.v[j].text, 0, s->evict.v[j].line, &oom);
    for (size_t i = 0; i < l->n; i++) {
        const struct vs_item *it = &l->v[i];
        if (vs_first_add(&listed, it->text, 0, it->line, &oom)) {
            vs_diag_add(p->diags, VS_DIAG_WARNING, p->file, it->line, s->label, key,
                        "'%s' is listed twice", it->text);
            continue;
        }
        if (!strcmp(it->text, s->name)) {
            if (l == &s->evict)
                vs_diag_add(p->diags, VS_DIAG_ERROR, p->file, it->line, s->label, key,
                            "a %s cannot evict itself: its own allocations are the ones in use",
                            kind_word(s->kind));
            continue;
        }
        const struct vs_first *ev = vs_first_find(evicted, it->text);
        if (ev)
            vs_diag_add(p->diags, VS_DIAG_ERROR, p->file, it->line, s->label, key,
                        "'%s' is both evicted (line %u) and prefetched", it->text, ev->line);
        if (!read_failed && !vs_parsed_find(p, it->text))
            vs_diag_add(p->diags, VS_DIAG_WARNING, p->file, it->line, s->label, key,
                        "'%s' is not defined in this file; it must be named at run time "
                        "(vramshim_stage_begin, vramshim_tag or vramshim ctl)",
                        it->text);
    }
    vs_first_clear(&listed);
    vs_first_clear(&evicted);
    p->out_of_memory |= oom;
}

/* Warns for each pattern of section si that an earlier section of the same kind already has.
 * patterns holds every pattern of the sections before si, by kind. */
static void check_shadowed(struct vs_parsed *p, size_t si, struct vs_first **patterns)
{
    struct vs_section *s = &p->sects[si];
    for (size_t i = 0; i < s->match.n; i++) {
        const struct vs_item *it = &s->match.v[i];
        const struct vs_first *o = vs_first_add(&patterns[s->kind], it->text, si, it->line,
                                                &p->out_of_memory);
        if (o && o->owner != si)
            vs_diag_add(p->diags, VS_DIAG_WARNING, p->file, it->line, s->label, "match",
                        "pattern '%s' is also in [%s] (line %u), which comes first and wins",
                        it->text, p->sects[o->owner].label, o->line);
    }
}

static void check_empty(struct vs_parsed *p, const struct vs_section *s, const struct vs_list *l,
                        const char *key)
{
    if (l->line && !l->given)
        vs_diag_add(p->diags, VS_DIAG_ERROR, p->file, l->line, s->label, key,
                    "empty list: give at least one %s",
                    l == &s->match ? "pattern, e.g. *VAE.decode*" : "stage or tag name");
}

void vs_parsed_check(struct vs_parsed *p, bool read_failed)
{
    bool rules = false, oom_before = p->out_of_memory; /* the reader reported that one */
    struct vs_first *patterns[2] = {NULL, NULL}; /* by enum vs_rule_kind */
    for (size_t i = 0; i < p->n_sects; i++) {
        struct vs_section *s = &p->sects[i];
        check_empty(p, s, &s->match, "match");
        check_empty(p, s, &s->evict, "evict");
        check_empty(p, s, &s->prefetch, "prefetch");
        check_names(p, s, &s->evict, "evict", read_failed);
        check_names(p, s, &s->prefetch, "prefetch", read_failed);
        check_shadowed(p, i, patterns);
        rules |= s->evict.n || s->prefetch.n || s->headroom_line;
    }
    vs_first_clear(&patterns[0]);
    vs_first_clear(&patterns[1]);
    if (p->out_of_memory && !oom_before)
        vs_diag_add(p->diags, VS_DIAG_ERROR, p->file, 0, NULL, NULL, "out of memory");
    if (!p->eviction && rules)
        vs_diag_add(p->diags, VS_DIAG_WARNING, p->file, p->global_key_line[VS_G_EVICTION],
                    "global", "eviction",
                    "eviction is off: the evict, headroom and prefetch keys have no effect");
}
