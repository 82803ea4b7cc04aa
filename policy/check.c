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
    for (size_t i = 0; i < l->n; i++) {
        const struct vs_item *it = &l->v[i];
        bool twice = false;
        for (size_t j = 0; j < i; j++)
            twice |= !strcmp(l->v[j].text, it->text);
        if (twice) {
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
        if (l == &s->prefetch)
            for (size_t j = 0; j < s->evict.n; j++)
                if (!strcmp(s->evict.v[j].text, it->text))
                    vs_diag_add(p->diags, VS_DIAG_ERROR, p->file, it->line, s->label, key,
                                "'%s' is both evicted (line %u) and prefetched", it->text,
                                s->evict.v[j].line);
        if (!read_failed && !vs_parsed_find(p, it->text))
            vs_diag_add(p->diags, VS_DIAG_WARNING, p->file, it->line, s->label, key,
                        "'%s' is not defined in this file; it must be named at run time "
                        "(vramshim_stage_begin, vramshim_tag or vramshim ctl)",
                        it->text);
    }
}

/* The first earlier section of the same kind with the same pattern text, if any. */
static void check_shadowed(struct vs_parsed *p, size_t si)
{
    struct vs_section *s = &p->sects[si];
    for (size_t i = 0; i < s->match.n; i++) {
        const struct vs_item *it = &s->match.v[i];
        for (size_t j = 0; j < si; j++) {
            const struct vs_section *o = &p->sects[j];
            if (o->kind != s->kind)
                continue;
            size_t k;
            for (k = 0; k < o->match.n && strcmp(o->match.v[k].text, it->text); k++)
                ;
            if (k < o->match.n) {
                vs_diag_add(p->diags, VS_DIAG_WARNING, p->file, it->line, s->label, "match",
                            "pattern '%s' is also in [%s] (line %u), which comes first and wins",
                            it->text, o->label, o->match.v[k].line);
                break;
            }
        }
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
    bool rules = false;
    for (size_t i = 0; i < p->n_sects; i++) {
        struct vs_section *s = &p->sects[i];
        check_empty(p, s, &s->match, "match");
        check_empty(p, s, &s->evict, "evict");
        check_empty(p, s, &s->prefetch, "prefetch");
        check_names(p, s, &s->evict, "evict", read_failed);
        check_names(p, s, &s->prefetch, "prefetch", read_failed);
        check_shadowed(p, i);
        rules |= s->evict.n || s->prefetch.n || s->headroom_line;
    }
    if (!p->eviction && rules)
        vs_diag_add(p->diags, VS_DIAG_WARNING, p->file, p->global_key_line[VS_G_EVICTION],
                    "global", "eviction",
                    "eviction is off: the evict, headroom and prefetch keys have no effect");
}
