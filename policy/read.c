/* Reading a policy file's INI text with inih into a struct vs_parsed.
 *
 * inih (the distribution's build) does not give the handler line numbers, calls it only for
 * keys, cuts long lines and names silently and folds indented lines into the previous key. So
 * the text is fed to ini_parse_stream() line by line by our own reader, which knows the line
 * being parsed, classifies it the way inih will (comment, section header, continuation, key)
 * and begins sections itself, so empty and bad sections are reported too. inih still does the
 * key = value splitting, comment stripping and syntax checking.
 *
 * Invariant: inih processes a line completely (calling the handler at most once) before it
 * reads the next, so `lineno` and `kind` describe the line the handler is called for.
 */
#include <ctype.h>
#include <ini.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy/names.h"
#include "policy/parsed.h"
#include "policy/pattern.h"
#include "policy/size.h"

enum vs_line_kind { VS_LINE_BLANK, VS_LINE_HEADER, VS_LINE_CONT, VS_LINE_KEY };

enum vs_rule_key { VS_K_MATCH, VS_K_EVICT, VS_K_HEADROOM, VS_K_PREFETCH, VS_K_COUNT };

static const char *const vs_global_keys[VS_G_COUNT] = {"eviction", "watermark", "ctl"};
static const char *const vs_rule_keys[VS_K_COUNT] = {"match", "evict", "headroom", "prefetch"};
static const char *const vs_decode_keys[VS_D_COUNT] = {"substitute", "budget"};
static const char *const vs_lend_keys[VS_L_COUNT] = {"lend", "never", "idle_after", "wait"};

struct vs_reader {
    struct vs_parsed *p;
    const char *text;
    size_t len, pos;
    unsigned lineno;
    enum vs_line_kind kind;
    bool have_prev_key;  /* inih folds an indented line into the previous key */
    bool seen_header;
    long cur;            /* index of the current section, or one of VS_CUR_* */
};

#define VS_CUR_GLOBAL (-1)
#define VS_CUR_BAD (-2)
#define VS_CUR_DECODE (-3)
#define VS_CUR_LEND (-4)

__attribute__((format(printf, 4, 5))) static void err(struct vs_reader *r, const char *section,
                                                      const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vs_diag_vadd(r->p->diags, VS_DIAG_ERROR, r->p->file, r->lineno, section, key, fmt, ap);
    va_end(ap);
}

static const char *cur_label(const struct vs_reader *r)
{
    return r->cur == VS_CUR_GLOBAL   ? "global"
           : r->cur == VS_CUR_DECODE ? "decode"
           : r->cur == VS_CUR_LEND   ? "lend"
                                     : r->p->sects[r->cur].label;
}

/* --- "did you mean" -------------------------------------------------------------------------- */

static unsigned edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 31 || lb > 31)
        return 99;
    unsigned d[32][32];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = (unsigned)i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = (unsigned)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            unsigned sub = d[i - 1][j - 1] + (tolower((unsigned char)a[i - 1]) !=
                                              tolower((unsigned char)b[j - 1]));
            unsigned del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
            d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
    return d[la][lb];
}

/* The known word closest to word (at most 2 edits), or NULL. */
static const char *closest(const char *word, const char *const *known, size_t n)
{
    const char *best = NULL;
    unsigned best_d = 3;
    for (size_t i = 0; i < n; i++) {
        unsigned dd = edit_distance(word, known[i]);
        if (dd < best_d) {
            best_d = dd;
            best = known[i];
        }
    }
    return best;
}

/* --- lists ------------------------------------------------------------------------------------ */

static bool list_push(struct vs_parsed *p, struct vs_list *l, const char *s, size_t len,
                      unsigned line)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        struct vs_item *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return p->out_of_memory = true, false;
        l->v = v;
        l->cap = cap;
    }
    char *t = strndup(s, len);
    if (!t)
        return p->out_of_memory = true, false;
    l->v[l->n++] = (struct vs_item){t, line};
    return true;
}

/* Splits a comma-separated value into items (patterns, or stage and tag names) and checks each.
 * A trailing comma is allowed, so a list can go on over indented continuation lines. */
static void add_items(struct vs_reader *r, struct vs_list *l, const char *key, const char *value,
                      bool patterns)
{
    const char *s = value;
    for (;;) {
        const char *comma = strchr(s, ',');
        const char *end = comma ? comma : s + strlen(s);
        const char *a = s, *b = end;
        while (a < b && isspace((unsigned char)*a))
            a++;
        while (b > a && isspace((unsigned char)b[-1]))
            b--;
        size_t n = (size_t)(b - a);
        char item[256];
        snprintf(item, sizeof item, "%.*s", (int)(n < 255 ? n : 255), a);
        if (n == 0) {
            if (comma)
                err(r, cur_label(r), key, "empty item in list '%s'", value);
        } else if (patterns) {
            struct vs_pattern pat;
            const char *why = vs_pattern_compile(&pat, item);
            if (n > 255)
                why = "is longer than 255 characters";
            if (why)
                err(r, cur_label(r), key, "pattern '%s' %s", item, why);
            else
                list_push(r->p, l, a, n, r->lineno);
        } else if (!vs_name_valid(a, n)) {
            err(r, cur_label(r), key,
                "'%s' is not a valid stage or tag name (letters, digits and _ . - : / @ +, at "
                "most 40 characters)",
                item);
        } else {
            list_push(r->p, l, a, n, r->lineno);
        }
        l->given += n != 0;
        if (!comma)
            break;
        s = comma + 1;
    }
}

/* --- values ----------------------------------------------------------------------------------- */

static int parse_switch(const char *v)
{
    static const char *const on[] = {"on", "true", "yes", "1"}, *const off[] = {"off", "false",
                                                                                   "no", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (!strcasecmp(v, on[i]))
            return 1;
        if (!strcasecmp(v, off[i]))
            return 0;
    }
    return -1;
}

/* "0.9", "1", "90%": a plain decimal, read without strtod so the host process's locale (a
 * decimal comma) cannot change its meaning. */
static bool parse_share(const char *v, double *out)
{
    double x = 0, scale = 1;
    bool digits = false;
    for (; isdigit((unsigned char)*v); v++, digits = true)
        x = x * 10 + (*v - '0');
    if (*v == '.')
        for (v++; isdigit((unsigned char)*v); v++, digits = true)
            x += (*v - '0') * (scale /= 10);
    if (*v == '%') {
        x /= 100;
        v++;
    }
    *out = x;
    return digits && !*v;
}

static void global_key(struct vs_reader *r, enum vs_global_key k, const char *value)
{
    struct vs_parsed *p = r->p;
    const char *key = vs_global_keys[k];
    if (k == VS_G_WATERMARK) {
        double w;
        if (!parse_share(value, &w)) {
            err(r, "global", key, "bad number '%s' (expected 0..1, e.g. 0.9 or 90%%)", value);
            return;
        }
        if (w < 0 || w > 1) {
            err(r, "global", key, "'%s' is out of range (expected 0..1, e.g. 0.9 or 90%%)",
                value);
            return;
        }
        p->watermark = w;
        return;
    }
    int on = parse_switch(value);
    if (on < 0) {
        err(r, "global", key, "expected on or off, got '%s'", value);
        return;
    }
    if (k == VS_G_EVICTION)
        p->eviction = on;
    else
        p->ctl = on;
}

/* Whether value is a size (else one error). */
static bool size_key(struct vs_reader *r, const char *label, const char *key, const char *value,
                     uint64_t *out)
{
    switch (vs_policy_size_parse(value, out)) {
    case VS_SIZE_OK:
        return true;
    case VS_SIZE_TOO_LARGE:
        err(r, label, key, "size '%s' is too large (at most 16 EiB)", value);
        return false;
    default:
        err(r, label, key, "bad size '%s' (expected e.g. 2GiB, 512MiB)", value);
        return false;
    }
}

static void decode_key(struct vs_reader *r, enum vs_decode_key k, const char *value)
{
    struct vs_parsed *p = r->p;
    const char *key = vs_decode_keys[k];
    if (k == VS_D_BUDGET) {
        if (size_key(r, "decode", key, value, &p->decode_budget) && p->decode_budget == 0)
            err(r, "decode", key, "a budget of 0 bytes fits no decode (expected e.g. 2GiB)");
        return;
    }
    for (int m = 0; m < VS_POLICY_DECODE_MODES; m++)
        if (!strcmp(value, vs_policy_decode_names[m])) {
            p->decode = (enum vs_policy_decode_mode)m;
            return;
        }
    err(r, "decode", key, "expected exact, blend or off, got '%s'", value);
}

/* A duration in [0, max_ms] (else one error). */
static void duration_key(struct vs_reader *r, const char *key, const char *value, uint64_t max_ms,
                         uint64_t *out)
{
    uint64_t ms;
    enum vs_size_status st = vs_policy_duration_parse(value, &ms);
    if (st == VS_SIZE_BAD)
        err(r, "lend", key, "bad duration '%s' (expected a number and a unit: ms, s, min or h, "
                            "e.g. 5s)", value);
    else if (st == VS_SIZE_TOO_LARGE || ms > max_ms)
        err(r, "lend", key, "'%s' is too long (at most %" PRIu64 " s)", value, max_ms / 1000);
    else
        *out = ms;
}

static void lend_key(struct vs_reader *r, enum vs_lend_key k, const char *value)
{
    struct vs_parsed *p = r->p;
    const char *key = vs_lend_keys[k];
    if (k == VS_L_IDLE_AFTER)
        duration_key(r, key, value, VS_POLICY_MAX_IDLE_AFTER_MS, &p->idle_after_ms);
    else if (k == VS_L_WAIT)
        duration_key(r, key, value, VS_POLICY_MAX_WAIT_MS, &p->wait_ms);
    else
        add_items(r, k == VS_L_LEND ? &p->lend : &p->never, key, value, false);
}

static void rule_key(struct vs_reader *r, struct vs_section *s, enum vs_rule_key k,
                     const char *value)
{
    const char *key = vs_rule_keys[k];
    if (k == VS_K_HEADROOM) {
        size_key(r, s->label, key, value, &s->headroom);
        return;
    }
    struct vs_list *l = k == VS_K_MATCH ? &s->match : k == VS_K_EVICT ? &s->evict : &s->prefetch;
    add_items(r, l, key, value, k == VS_K_MATCH);
}

/* --- sections ------------------------------------------------------------------------------ */

static void begin_section(struct vs_reader *r, const char *head, size_t len)
{
    struct vs_parsed *p = r->p;
    char h[128];
    snprintf(h, sizeof h, "%.*s", (int)(len < 127 ? len : 127), head);
    char *type = h;
    while (isspace((unsigned char)*type))
        type++;
    char *e = type + strlen(type);
    while (e > type && isspace((unsigned char)e[-1]))
        *--e = '\0';
    char *name = type;
    while (*name && !isspace((unsigned char)*name))
        name++;
    if (*name) {
        *name++ = '\0';
        while (isspace((unsigned char)*name))
            name++;
    }
    r->cur = VS_CUR_BAD;
    r->seen_header = true;
    r->have_prev_key = false;
    char label[128];
    snprintf(label, sizeof label, "%.40s%s%.80s", type, *name ? " " : "", name);

    if (!strcmp(type, "global") || !strcmp(type, "decode") || !strcmp(type, "lend")) {
        unsigned *first = type[0] == 'g'   ? &p->global_line
                          : type[0] == 'd' ? &p->decode_line
                                           : &p->lend_line;
        if (*name)
            err(r, label, NULL, "[%s] takes no name", type);
        else if (*first)
            err(r, label, NULL, "duplicate section (first at line %u)", *first);
        else {
            *first = r->lineno;
            r->cur = type[0] == 'g' ? VS_CUR_GLOBAL : type[0] == 'd' ? VS_CUR_DECODE : VS_CUR_LEND;
        }
        return;
    }
    enum vs_rule_kind kind;
    if (!strcmp(type, "stage"))
        kind = VS_RULE_STAGE;
    else if (!strcmp(type, "tag"))
        kind = VS_RULE_TAG;
    else {
        static const char *const types[] = {"global", "stage", "tag", "decode", "lend"};
        const char *near = closest(type, types, 5);
        char hint[160] = "";
        if (near && strcmp(near, "stage") && strcmp(near, "tag"))
            snprintf(hint, sizeof hint, "; did you mean [%s]?", near);
        else if (near)
            snprintf(hint, sizeof hint, "; did you mean [%s %.80s]?", near, *name ? name : "NAME");
        err(r, label, NULL,
            "unknown section (expected [global], [decode], [lend], [stage NAME] or [tag NAME])%s",
            hint);
        return;
    }
    if (!*name) {
        err(r, label, NULL, "section needs a name, e.g. [%s decode]", type);
        return;
    }
    if (strpbrk(name, " \t")) {
        err(r, label, NULL, "'%s' is not a valid name: names have no blanks", name);
        return;
    }
    if (!vs_name_valid(name, strlen(name))) {
        err(r, label, NULL,
            "'%s' is not a valid name (letters, digits and _ . - : / @ +, at most 40 "
            "characters)",
            name);
        return;
    }
    const struct vs_section *prev = vs_parsed_find(p, name);
    if (prev) {
        err(r, label, NULL, "duplicate name: already defined by [%s] at line %u", prev->label,
            prev->line);
        return;
    }
    if (p->n_sects == p->cap_sects) {
        size_t cap = p->cap_sects ? p->cap_sects * 2 : 8;
        struct vs_section *v = realloc(p->sects, cap * sizeof *v);
        if (!v) {
            p->out_of_memory = true;
            return;
        }
        p->sects = v;
        p->cap_sects = cap;
    }
    struct vs_section *s = &p->sects[p->n_sects];
    *s = (struct vs_section){.kind = kind, .line = r->lineno, .name = strdup(name)};
    if (!s->name) {
        p->out_of_memory = true;
        return;
    }
    vs_first_add(&p->by_name, s->name, p->n_sects, s->line, &p->out_of_memory);
    if (p->out_of_memory) {
        free(s->name);
        return;
    }
    snprintf(s->label, sizeof s->label, "%.63s", label);
    r->cur = (long)p->n_sects++;
}

/* --- the inih callbacks ------------------------------------------------------------------- */

/* Classifies a line as inih will (ini.c: comment, continuation, "[section]", key). */
static void classify(struct vs_reader *r, const char *line, size_t len)
{
    size_t i = 0;
    if (r->lineno == 1 && len >= 3 && !memcmp(line, "\xEF\xBB\xBF", 3))
        i = 3; /* BOM */
    size_t start = i;
    while (i < len && isspace((unsigned char)line[i]))
        i++;
    if (i == len || line[i] == ';' || line[i] == '#') {
        r->kind = VS_LINE_BLANK;
    } else if (r->have_prev_key && i > start) {
        r->kind = VS_LINE_CONT;
    } else if (line[i] == '[') {
        r->kind = VS_LINE_HEADER;
        const char *close = memchr(line + i, ']', len - i);
        if (close)
            begin_section(r, line + i + 1, (size_t)(close - line - i - 1));
        /* else inih reports the syntax error */
    } else {
        r->kind = VS_LINE_KEY;
        r->have_prev_key = memchr(line + i, '=', len - i) || memchr(line + i, ':', len - i);
    }
}

static char *reader(char *str, int num, void *stream)
{
    struct vs_reader *r = stream;
    if (r->pos >= r->len)
        return NULL;
    const char *line = r->text + r->pos;
    const char *nl = memchr(line, '\n', r->len - r->pos);
    size_t len = nl ? (size_t)(nl - line) : r->len - r->pos;
    r->pos += len + (nl != NULL);
    r->lineno++;
    size_t body = len;
    if (body && line[body - 1] == '\r')
        body--;
    classify(r, line, body);
    /* inih needs room for the line, "\n" and NUL; it would cut a longer one silently. */
    size_t room = num > 2 ? (size_t)num - 2 : 0;
    if (body > room) {
        err(r, NULL, NULL,
            "line is %zu characters long, more than the %zu inih reads; split a list over "
            "indented continuation lines",
            body, room);
        body = room;
    }
    memcpy(str, line, body);
    str[body] = '\n';
    str[body + 1] = '\0';
    return str;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    (void)section; /* the reader tracks sections itself (names are not cut at 49 bytes) */
    struct vs_reader *r = user;
    struct vs_parsed *p = r->p;
    if (!r->seen_header) {
        err(r, NULL, name, "outside any section; put it under [global], [decode], [lend], "
                           "[stage NAME] or [tag NAME]");
        return 1;
    }
    if (r->cur == VS_CUR_BAD)
        return 1; /* the section header was reported already */
    bool cont = r->kind == VS_LINE_CONT;
    bool global = r->cur == VS_CUR_GLOBAL, decode = r->cur == VS_CUR_DECODE,
         lend = r->cur == VS_CUR_LEND;
    const char *const *keys = global   ? vs_global_keys
                              : decode ? vs_decode_keys
                              : lend   ? vs_lend_keys
                                       : vs_rule_keys;
    size_t nkeys = global ? VS_G_COUNT : decode ? VS_D_COUNT : lend ? VS_L_COUNT : VS_K_COUNT;
    size_t k;
    for (k = 0; k < nkeys && strcmp(name, keys[k]); k++)
        ;
    if (k == nkeys) {
        const char *near = closest(name, keys, nkeys);
        char known[96] = "";
        for (size_t i = 0; i < nkeys; i++)
            snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "",
                     keys[i]);
        char hint[64] = "";
        if (near)
            snprintf(hint, sizeof hint, "; did you mean '%s'?", near);
        vs_diag_add(p->diags, VS_DIAG_ERROR, p->file, r->lineno, cur_label(r), name,
                    "unknown key (known: %s)%s", known, hint);
        return 1;
    }
    unsigned *seen;
    if (global)
        seen = &p->global_key_line[k];
    else if (decode)
        seen = &p->decode_key_line[k];
    else if (lend)
        seen = k == VS_L_LEND ? &p->lend.line : k == VS_L_NEVER ? &p->never.line
                                                                : &p->lend_key_line[k];
    else {
        struct vs_section *s = &p->sects[r->cur];
        seen = k == VS_K_MATCH ? &s->match.line
               : k == VS_K_EVICT ? &s->evict.line
               : k == VS_K_PREFETCH ? &s->prefetch.line
                                    : &s->headroom_line;
    }
    bool list = lend ? k == VS_L_LEND || k == VS_L_NEVER : !global && !decode && k != VS_K_HEADROOM;
    if (cont) {
        if (!list)
            err(r, cur_label(r), name,
                "indented line '%s' continues this key, which takes one value; remove the "
                "indentation",
                value);
        else if (strchr(value, '='))
            err(r, cur_label(r), name,
                "indented line '%s' continues this key's list; remove the indentation to "
                "start a new key",
                value);
        else if (lend)
            lend_key(r, (enum vs_lend_key)k, value);
        else
            rule_key(r, &p->sects[r->cur], (enum vs_rule_key)k, value);
        return 1;
    }
    if (*seen) {
        err(r, cur_label(r), name, "given twice (first at line %u)", *seen);
        return 1;
    }
    *seen = r->lineno;
    if (global)
        global_key(r, (enum vs_global_key)k, value);
    else if (decode)
        decode_key(r, (enum vs_decode_key)k, value);
    else if (lend)
        lend_key(r, (enum vs_lend_key)k, value);
    else
        rule_key(r, &p->sects[r->cur], (enum vs_rule_key)k, value);
    return 1;
}

void vs_parsed_read(struct vs_parsed *p, const char *text, size_t len)
{
    p->eviction = true;
    p->watermark = VS_POLICY_DEFAULT_WATERMARK;
    p->idle_after_ms = VS_POLICY_DEFAULT_IDLE_AFTER_MS;
    p->wait_ms = VS_POLICY_DEFAULT_WAIT_MS;
    const char *nul = memchr(text, '\0', len);
    if (nul) {
        unsigned line = 1;
        for (const char *c = text; c < nul; c++)
            line += *c == '\n';
        vs_diag_add(p->diags, VS_DIAG_ERROR, p->file, line, NULL, NULL,
                    "contains a NUL byte: not a text file");
        return;
    }
    struct vs_reader r = {.p = p, .text = text, .len = len, .cur = VS_CUR_BAD};
    int bad = ini_parse_stream(reader, &r, handler, &r);
    if (bad > 0) {
        /* Quote the offending line. */
        const char *line = text;
        for (int i = 1; i < bad && line; i++) {
            line = memchr(line, '\n', len - (size_t)(line - text));
            line = line ? line + 1 : NULL;
        }
        size_t n = 0;
        while (line && line + n < text + len && line[n] != '\n' && line[n] != '\r' && n < 60)
            n++;
        vs_diag_add(p->diags, VS_DIAG_ERROR, p->file, (unsigned)bad, NULL, NULL,
                    "syntax error in '%.*s': expected [section], key = value, or a ; comment",
                    (int)n, line ? line : "");
    } else if (bad < 0) {
        p->out_of_memory = true;
    }
    if (p->out_of_memory)
        vs_diag_add(p->diags, VS_DIAG_ERROR, p->file, 0, NULL, NULL, "out of memory");
}

const struct vs_section *vs_parsed_find(const struct vs_parsed *p, const char *name)
{
    const struct vs_first *e = vs_first_find(p->by_name, name);
    return e ? &p->sects[e->owner] : NULL;
}

static void list_free(struct vs_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].text);
    free(l->v);
}

void vs_parsed_free(struct vs_parsed *p)
{
    for (size_t i = 0; i < p->n_sects; i++) {
        free(p->sects[i].name);
        list_free(&p->sects[i].match);
        list_free(&p->sects[i].evict);
        list_free(&p->sects[i].prefetch);
    }
    list_free(&p->lend);
    list_free(&p->never);
    vs_first_clear(&p->by_name);
    free(p->sects);
    p->sects = NULL;
    p->n_sects = p->cap_sects = 0;
}
