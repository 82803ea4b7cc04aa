/* Loading a policy: read (read.c), check (check.c), then build the immutable struct vs_policy
 * with interned names and compiled patterns; plus the queries on rules. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy/file.h"
#include "policy/internal.h"
#include "policy/parsed.h"

#define VS_POLICY_MAX_BYTES (1u << 20)
#define VS_POLICY_CACHE_SLOTS 8192 /* frame strings remembered (3/4 of the slots) */

static struct vs_policy *policy_new(const struct vs_parsed *p)
{
    struct vs_policy *pol = calloc(1, sizeof *pol);
    if (!pol)
        return NULL;
    pol->filename = strdup(p->file);
    pol->rules = calloc(p->n_sects ? p->n_sects : 1, sizeof *pol->rules);
    pol->by_name = calloc(p->n_sects ? p->n_sects : 1, sizeof *pol->by_name);
    if (!pol->filename || !pol->rules || !pol->by_name ||
        vs_strtab_init(&pol->cache, VS_POLICY_CACHE_SLOTS, VS_POLICY_CACHE_SLOTS / 4 * 3)) {
        vs_policy_free(pol);
        return NULL;
    }
    pol->eviction = p->eviction;
    pol->ctl = p->ctl;
    pol->watermark = p->watermark;
    pol->decode = p->decode;
    pol->decode_budget = p->decode_budget;
    pol->lend = (struct vs_policy_lend){.line = p->lend_line,
                                        .idle_after_ms = p->idle_after_ms,
                                        .wait_ms = p->wait_ms};
    return pol;
}

/* Interns a list's names, each once. listed[id] (VS_NAMES_CAPACITY + 1 entries) is all zero on
 * entry and on return. Returns false when the registry is full or memory runs out. */
static bool intern_list(struct vs_names *names, const struct vs_list *l, uint8_t *listed,
                        uint32_t **out, struct vs_name_list *pub)
{
    *out = calloc(l->n ? l->n : 1, sizeof **out);
    if (!*out)
        return false;
    size_t n = 0;
    bool ok = true;
    for (size_t i = 0; ok && i < l->n; i++) {
        uint32_t id = vs_names_intern(names, l->v[i].text);
        ok = id != 0;
        if (ok && !listed[id]) {
            listed[id] = 1;
            (*out)[n++] = id;
        }
    }
    for (size_t i = 0; i < n; i++)
        listed[(*out)[i]] = 0;
    *pub = (struct vs_name_list){*out, n};
    return ok;
}

static bool build_rule(struct vs_policy *pol, struct vs_rule *r, const struct vs_section *s,
                       uint8_t *listed)
{
    struct vs_policy_rule *pub = &r->pub;
    pub->kind = s->kind;
    pub->line = s->line;
    pub->name = vs_names_intern(pol->names, s->name);
    pub->name_str = vs_names_str(pol->names, pub->name);
    if (!pub->name)
        return false;
    pub->has_headroom = s->headroom_line != 0;
    pub->headroom = s->headroom;
    r->match_text = calloc(s->match.n ? s->match.n : 1, sizeof *r->match_text);
    r->pats = calloc(s->match.n ? s->match.n : 1, sizeof *r->pats);
    if (!r->match_text || !r->pats)
        return false;
    for (size_t i = 0; i < s->match.n; i++) {
        if (!(r->match_text[i] = strdup(s->match.v[i].text)))
            return false;
        pub->n_match++;
        vs_pattern_compile(&r->pats[i], r->match_text[i]); /* checked by read.c */
    }
    pub->match = (const char *const *)r->match_text;
    pol->has_matches |= s->match.n > 0;
    return intern_list(pol->names, &s->evict, listed, &r->evict, &pub->evict) &&
           intern_list(pol->names, &s->prefetch, listed, &r->prefetch, &pub->prefetch);
}

static int by_name_id(const void *a, const void *b, void *rules)
{
    const struct vs_rule *r = rules;
    uint32_t x = r[*(const size_t *)a].pub.name, y = r[*(const size_t *)b].pub.name;
    return (x > y) - (x < y);
}

/* Names are unique in a policy, so the order is total. */
static void sort_by_name(struct vs_policy *pol)
{
    qsort_r(pol->by_name, pol->n_rules, sizeof *pol->by_name, by_name_id, pol->rules);
}

static int by_line_then_order(const void *a, const void *b)
{
    const struct vs_policy_diag *x = a, *y = b;
    if (x->line != y->line)
        return (x->line > y->line) - (x->line < y->line);
    return (x->order > y->order) - (x->order < y->order);
}

/* Orders this file's diagnostics by line, keeping the order of those on one line. */
static void sort_diags(struct vs_policy_diags *d, size_t from)
{
    if (d->n <= from)
        return; /* d->v may be NULL */
    for (size_t i = from; i < d->n; i++)
        d->v[i].order = i;
    qsort(d->v + from, d->n - from, sizeof *d->v, by_line_then_order);
}

struct vs_policy *vs_policy_parse(const char *text, size_t len, const char *filename,
                                  struct vs_names *names, struct vs_policy_diags *diags)
{
    struct vs_policy_diags local = {0};
    struct vs_policy_diags *d = diags ? diags : &local;
    size_t first = d->n, errors = d->errors;
    struct vs_parsed p = {.file = filename, .diags = d};
    vs_parsed_read(&p, text, len);
    vs_parsed_check(&p, d->errors != errors);
    struct vs_policy *pol = NULL;
    if (d->errors == errors) {
        pol = policy_new(&p);
        uint8_t *listed = calloc(VS_NAMES_CAPACITY + 1, 1);
        bool ok = pol && listed;
        if (ok) {
            pol->names = names;
            ok = intern_list(names, &p.lend, listed, &pol->lend_ids, &pol->lend.lend) &&
                 intern_list(names, &p.never, listed, &pol->never_ids, &pol->lend.never);
            for (size_t i = 0; ok && i < p.n_sects; i++) {
                ok = build_rule(pol, &pol->rules[i], &p.sects[i], listed);
                pol->n_rules = i + 1;
                pol->by_name[i] = i;
            }
        }
        if (!ok) {
            vs_diag_add(d, VS_DIAG_ERROR, filename, 0, NULL, NULL,
                        "out of memory, or more than %d stage and tag names in the process",
                        VS_NAMES_MAX);
            vs_policy_free(pol);
            pol = NULL;
        } else {
            sort_by_name(pol);
        }
        free(listed);
    }
    sort_diags(d, first);
    vs_parsed_free(&p);
    vs_policy_diags_free(&local);
    return pol;
}

struct vs_policy *vs_policy_load(const char *path, struct vs_names *names,
                                 struct vs_policy_diags *diags)
{
    char why[128];
    int fd = vs_open_regular(path, why, sizeof why);
    FILE *f = fd >= 0 ? fdopen(fd, "rb") : NULL;
    if (!f) {
        if (fd >= 0) {
            snprintf(why, sizeof why, "%s", strerror(errno));
            close(fd);
        }
        vs_diag_add(diags, VS_DIAG_ERROR, path, 0, NULL, NULL, fd == -2 ? "%s" : "cannot open: %s",
                    why);
        return NULL;
    }
    char *buf = malloc(VS_POLICY_MAX_BYTES + 1);
    size_t len = buf ? fread(buf, 1, VS_POLICY_MAX_BYTES + 1, f) : 0;
    bool bad = !buf || ferror(f);
    int err = errno;
    fclose(f);
    struct vs_policy *pol = NULL;
    if (bad)
        vs_diag_add(diags, VS_DIAG_ERROR, path, 0, NULL, NULL, "cannot read: %s",
                    buf ? strerror(err) : "out of memory");
    else if (len > VS_POLICY_MAX_BYTES)
        vs_diag_add(diags, VS_DIAG_ERROR, path, 0, NULL, NULL,
                    "larger than %u bytes: not a policy file", VS_POLICY_MAX_BYTES);
    else
        pol = vs_policy_parse(buf, len, path, names, diags);
    free(buf);
    return pol;
}

void vs_policy_free(struct vs_policy *pol)
{
    if (!pol)
        return;
    for (size_t i = 0; i < pol->n_rules; i++) {
        struct vs_rule *r = &pol->rules[i];
        for (size_t j = 0; j < r->pub.n_match; j++)
            free(r->match_text[j]);
        free(r->match_text);
        free(r->pats);
        free(r->evict);
        free(r->prefetch);
    }
    free(pol->rules);
    free(pol->by_name);
    free(pol->lend_ids);
    free(pol->never_ids);
    free(pol->filename);
    vs_strtab_destroy(&pol->cache);
    free(pol);
}

/* --- queries ------------------------------------------------------------------------------ */

const char *vs_policy_filename(const struct vs_policy *p)
{
    return p->filename;
}

bool vs_policy_eviction(const struct vs_policy *p)
{
    return p->eviction;
}

const char *const vs_policy_decode_names[VS_POLICY_DECODE_MODES] = {"off", "exact", "blend"};

enum vs_policy_decode_mode vs_policy_decode(const struct vs_policy *p)
{
    return p->decode;
}

uint64_t vs_policy_decode_budget(const struct vs_policy *p)
{
    return p->decode_budget;
}

double vs_policy_watermark(const struct vs_policy *p)
{
    return p->watermark;
}

bool vs_policy_ctl(const struct vs_policy *p)
{
    return p->ctl;
}

size_t vs_policy_rule_count(const struct vs_policy *p)
{
    return p->n_rules;
}

const struct vs_policy_rule *vs_policy_rule_at(const struct vs_policy *p, size_t i)
{
    return i < p->n_rules ? &p->rules[i].pub : NULL;
}

const struct vs_policy_rule *vs_policy_rule_of(const struct vs_policy *p, uint32_t name)
{
    size_t lo = 0, hi = p->n_rules;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint32_t id = p->rules[p->by_name[mid]].pub.name;
        if (id == name)
            return &p->rules[p->by_name[mid]].pub;
        if (id < name)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static bool listed(const struct vs_name_list *l, uint32_t id)
{
    for (size_t i = 0; id && i < l->n; i++)
        if (l->ids[i] == id)
            return true;
    return false;
}

bool vs_policy_is_victim(const struct vs_policy *p, uint32_t current, uint32_t block_stage,
                         uint32_t block_tag)
{
    const struct vs_policy_rule *r = vs_policy_rule_of(p, current);
    if (!r || !p->eviction)
        return false;
    if ((current && (block_stage == current || block_tag == current)) ||
        listed(&r->prefetch, block_stage) || listed(&r->prefetch, block_tag))
        return false;
    return listed(&r->evict, block_stage) || listed(&r->evict, block_tag);
}

const struct vs_policy_lend *vs_policy_lend_rules(const struct vs_policy *p)
{
    return &p->lend;
}

bool vs_policy_lends(const struct vs_policy *p, uint32_t block_stage, uint32_t block_tag)
{
    const struct vs_policy_lend *l = &p->lend;
    return (listed(&l->lend, block_stage) || listed(&l->lend, block_tag)) &&
           !listed(&l->never, block_stage) && !listed(&l->never, block_tag);
}

bool vs_policy_has_matches(const struct vs_policy *p)
{
    return p->has_matches;
}
