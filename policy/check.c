/* Checks across sections, after the whole file is read (see parsed.h). Errors: an empty list,
 * a section that evicts itself, a name both evicted and prefetched, or both lent and never given.
 * Warnings: names not defined in the file (they may be named at run time, so this cannot be an
 * error), names listed twice, a pattern that an earlier section of the same kind already claims
 * (the earlier one wins: dead text), and eviction rules in a file that turns eviction off. */
#include <string.h>

#include "policy/parsed.h"

static const char *kind_word(enum vs_rule_kind k)
{
    return k == VS_RULE_STAGE ? "stage" : "tag";
}

/* The names of list l (key `key` of section `label`): listed twice, listed in `other` too (whose
 * items are `other_word`, l's `word`), undefined. s is l's [stage] or [tag] section, NULL for
 * [lend]. */
static void check_list(struct vs_parsed *p, const struct vs_section *s, const char *label,
                       const struct vs_list *l, const char *key, const struct vs_list *other,
                       const char *other_word, const char *word, bool read_failed)
{
    struct vs_first *listed = NULL, *others = NULL;
    bool oom = false;
    for (size_t j = 0; other && j < other->n; j++)
        vs_first_add(&others, other->v[j].text, 0, other->v[j].line, &oom);
    for (size_t i = 0; i < l->n; i++) {
        const struct vs_item *it = &l->v[i];
        if (vs_first_add(&listed, it->text, 0, it->line, &oom)) {
            vs_diag_add(p->diags, VS_DIAG_WARNING, p->file, it->line, label, key,
                        "'%s' is listed twice", it->text);
            continue;
        }
        if (s && !strcmp(it->text, s->name)) {
            if (l == &s->evict)
                vs_diag_add(p->diags, VS_DIAG_ERROR, p->file, it->line, label, key,
                            "a %s cannot evict itself: its own allocations are the ones in use",
                            kind_word(s->kind));
            continue;
        }
        const struct vs_first *o = vs_first_find(others, it->text);
        if (o)
            vs_diag_add(p->diags, VS_DIAG_ERROR, p->file, it->line, label, key,
                        "'%s' is both %s (line %u) and %s", it->text, other_word, o->line, word);
        if (!read_failed && !vs_parsed_find(p, it->text))
            vs_diag_add(p->diags, VS_DIAG_WARNING, p->file, it->line, label, key,
                        "'%s' is not defined in this file; it must be named at run time "
                        "(vramshim_stage_begin, vramshim_tag or vramshim ctl)",
                        it->text);
    }
    vs_first_clear(&listed);
    vs_first_clear(&others);
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

static void check_empty(struct vs_parsed *p, const char *label, const struct vs_list *l,
                        const char *key, bool patterns)
{
    if (l->line && !l->given)
        vs_diag_add(p->diags, VS_DIAG_ERROR, p->file, l->line, label, key,
                    "empty list: give at least one %s",
                    patterns ? "pattern, e.g. *VAE.decode*" : "stage or tag name");
}

/* [lend]: lists as above; idle_after without anything to lend does nothing. */
static void check_lend(struct vs_parsed *p, bool read_failed)
{
    check_empty(p, "lend", &p->lend, "lend", false);
    check_empty(p, "lend", &p->never, "never", false);
    check_list(p, NULL, "lend", &p->lend, "lend", NULL, NULL, NULL, read_failed);
    check_list(p, NULL, "lend", &p->never, "never", &p->lend, "lent", "never given",
               read_failed);
    if (p->lend_key_line[VS_L_IDLE_AFTER] && !p->lend.line)
        vs_diag_add(p->diags, VS_DIAG_WARNING, p->file, p->lend_key_line[VS_L_IDLE_AFTER], "lend",
                    "idle_after", "has no effect without a lend key: this process lends nothing");
}

void vs_parsed_check(struct vs_parsed *p, bool read_failed)
{
    bool rules = false, oom_before = p->out_of_memory; /* the reader reported that one */
    struct vs_first *patterns[2] = {NULL, NULL}; /* by enum vs_rule_kind */
    for (size_t i = 0; i < p->n_sects; i++) {
        struct vs_section *s = &p->sects[i];
        check_empty(p, s->label, &s->match, "match", true);
        check_empty(p, s->label, &s->evict, "evict", false);
        check_empty(p, s->label, &s->prefetch, "prefetch", false);
        check_list(p, s, s->label, &s->evict, "evict", NULL, NULL, NULL, read_failed);
        check_list(p, s, s->label, &s->prefetch, "prefetch", &s->evict, "evicted", "prefetched",
                   read_failed);
        check_shadowed(p, i, patterns);
        rules |= s->evict.n || s->prefetch.n || s->headroom_line;
    }
    vs_first_clear(&patterns[0]);
    vs_first_clear(&patterns[1]);
    check_lend(p, read_failed);
    if (p->out_of_memory && !oom_before)
        vs_diag_add(p->diags, VS_DIAG_ERROR, p->file, 0, NULL, NULL, "out of memory");
    if (!p->eviction && rules)
        vs_diag_add(p->diags, VS_DIAG_WARNING, p->file, p->global_key_line[VS_G_EVICTION],
                    "global", "eviction",
                    "eviction is off: the evict, headroom and prefetch keys have no effect");
}
