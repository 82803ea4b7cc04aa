/* `vramshim policy check [--json] [--strict] FILE [FILE...]`: validates policy files
 * (docs/policy.md) the way the shim loads them (VRAMSHIM_POLICY), and shows what each one says.
 * Exit status: 0 every file is valid, 1 some file has errors (or warnings, with --strict),
 * 2 bad usage. Diagnostics go to stderr, summaries to stdout; --json prints one JSON object
 * with both to stdout instead.
 *
 * `vramshim policy match FILE (--trace TRACE | FRAME...)`: which stage and tag the policy gives
 * each frame, or each call site of a VRAMSHIM_TRACE file, so patterns can be tried before a
 * run. Exit status: 0, 1 when FILE or TRACE cannot be used, 2 bad usage. */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy/file.h"
#include "policy/policy.h"
#include "tools/cli/commands.h"
#include "tools/trace/tracefile.h"
#include "tools/trace/units.h"

static void vs_policy_usage(FILE *out)
{
    fprintf(out,
            "usage: vramshim policy check [--json] [--strict] FILE [FILE...]\n"
            "\n"
            "Validates each policy FILE (the INI files VRAMSHIM_POLICY names) exactly as the\n"
            "shim loads it. For a valid file it prints the global settings and every [stage]\n"
            "and [tag] section: the call-site patterns that begin it (match), what it may\n"
            "demote (evict), the device memory it frees when it starts (headroom) and what it\n"
            "promotes (prefetch). Errors and warnings name the file, line, section and key.\n"
            "\n"
            "  --json    print one JSON object: {\"valid\":bool,\"files\":[{\"file\",\"valid\",\n"
            "            \"errors\":[...],\"warnings\":[...],\"policy\":{...}|null}]}\n"
            "  --strict  treat warnings (e.g. names not defined in the file) as errors\n"
            "\n"
            "Exit status: 0 all files valid, 1 some file is not, 2 bad usage.\n"
            "\n"
            "usage: vramshim policy match FILE (--trace TRACE | FRAME...)\n"
            "\n"
            "Shows the stage and tag FILE gives each FRAME (\"module+0xOFF symbol+0xOFF\",\n"
            "a bare symbol, or \"py:FILE:LINE:QUALNAME\"), or each call site of a\n"
            "VRAMSHIM_TRACE file (innermost matching frame first), with the frame that decided.\n"
            "\n"
            "usage: vramshim policy suggest TRACE -o POLICY.ini\n"
            "\n"
            "Writes a starting policy from a trace with call sites: a stage per function under\n"
            "which memory is allocated (in time order), each evicting the stages whose memory\n"
            "stays live but idle while it runs, commented with the bytes involved.\n");
}

static const char *vs_kind_word(enum vs_rule_kind k)
{
    return k == VS_RULE_STAGE ? "stage" : "tag";
}

/* --- text ------------------------------------------------------------------------------------- */

static void vs_print_names(const char *key, const struct vs_name_list *l,
                           const struct vs_names *names)
{
    if (!l->n)
        return;
    printf("    %-10s", key);
    for (size_t i = 0; i < l->n; i++)
        printf("%s%s", i ? ", " : "", vs_names_str(names, l->ids[i]));
    printf("\n");
}

static void vs_print_policy(const struct vs_policy *p, const struct vs_names *names,
                            size_t warnings)
{
    size_t n = vs_policy_rule_count(p), stages = 0;
    for (size_t i = 0; i < n; i++)
        stages += vs_policy_rule_at(p, i)->kind == VS_RULE_STAGE;
    printf("%s: valid: %zu stage%s, %zu tag%s, %zu warning%s\n", vs_policy_filename(p), stages,
           stages == 1 ? "" : "s", n - stages, n - stages == 1 ? "" : "s", warnings,
           warnings == 1 ? "" : "s");
    printf("  global: eviction %s, watermark %.2f, control socket %s\n",
           vs_policy_eviction(p) ? "on" : "off", vs_policy_watermark(p),
           vs_policy_ctl(p) ? "on" : "off");
    if (vs_policy_decode(p) != VS_POLICY_DECODE_OFF || vs_policy_decode_budget(p)) {
        char sz[32];
        printf("  decode: substitute %s, budget %s\n", vs_policy_decode_names[vs_policy_decode(p)],
               vs_policy_decode_budget(p)
                   ? vs_size_format(vs_policy_decode_budget(p), sz, sizeof sz)
                   : "free device memory less a margin");
    }
    const struct vs_policy_lend *l = vs_policy_lend_rules(p);
    if (l->line) {
        printf("  [lend] (line %u): idle_after %.3g s, borrowers wait %.3g s\n", l->line,
               (double)l->idle_after_ms / 1000, (double)l->wait_ms / 1000);
        vs_print_names("lend", &l->lend, names);
        vs_print_names("never", &l->never, names);
    }
    for (size_t i = 0; i < n; i++) {
        const struct vs_policy_rule *r = vs_policy_rule_at(p, i);
        printf("  [%s %s] (line %u)\n", vs_kind_word(r->kind), r->name_str, r->line);
        if (r->n_match) {
            printf("    %-10s", "match");
            for (size_t j = 0; j < r->n_match; j++)
                printf("%s%s", j ? ", " : "", r->match[j]);
            printf("\n");
        }
        vs_print_names("evict", &r->evict, names);
        if (r->has_headroom) {
            char sz[32];
            printf("    %-10s%s (%llu bytes)\n", "headroom",
                   vs_size_format(r->headroom, sz, sizeof sz), (unsigned long long)r->headroom);
        }
        vs_print_names("prefetch", &r->prefetch, names);
    }
}

/* --- JSON ------------------------------------------------------------------------------------- */

static json_t *vs_json_names(const struct vs_name_list *l, const struct vs_names *names)
{
    json_t *a = json_array();
    for (size_t i = 0; i < l->n; i++)
        json_array_append_new(a, json_string(vs_names_str(names, l->ids[i])));
    return a;
}

static json_t *vs_json_policy(const struct vs_policy *p, const struct vs_names *names)
{
    json_t *o = json_object(), *stages = json_array(), *tags = json_array();
    json_object_set_new(o, "eviction", json_boolean(vs_policy_eviction(p)));
    json_object_set_new(o, "watermark", json_real(vs_policy_watermark(p)));
    json_object_set_new(o, "ctl", json_boolean(vs_policy_ctl(p)));
    json_object_set_new(o, "decode", json_string(vs_policy_decode_names[vs_policy_decode(p)]));
    json_object_set_new(o, "decode_budget_bytes",
                        vs_policy_decode_budget(p)
                            ? json_integer((json_int_t)vs_policy_decode_budget(p))
                            : json_null());
    const struct vs_policy_lend *l = vs_policy_lend_rules(p);
    json_t *lend = json_object();
    json_object_set_new(lend, "line", l->line ? json_integer(l->line) : json_null());
    json_object_set_new(lend, "lend", vs_json_names(&l->lend, names));
    json_object_set_new(lend, "never", vs_json_names(&l->never, names));
    json_object_set_new(lend, "idle_after_ms", json_integer((json_int_t)l->idle_after_ms));
    json_object_set_new(lend, "wait_ms", json_integer((json_int_t)l->wait_ms));
    json_object_set_new(o, "lend", lend);
    for (size_t i = 0; i < vs_policy_rule_count(p); i++) {
        const struct vs_policy_rule *r = vs_policy_rule_at(p, i);
        json_t *s = json_object(), *match = json_array();
        json_object_set_new(s, "name", json_string(r->name_str));
        json_object_set_new(s, "line", json_integer(r->line));
        for (size_t j = 0; j < r->n_match; j++)
            json_array_append_new(match, json_string(r->match[j]));
        json_object_set_new(s, "match", match);
        json_object_set_new(s, "evict", vs_json_names(&r->evict, names));
        json_object_set_new(s, "headroom_bytes",
                            r->has_headroom ? json_integer((json_int_t)r->headroom) : json_null());
        json_object_set_new(s, "prefetch", vs_json_names(&r->prefetch, names));
        json_array_append_new(r->kind == VS_RULE_STAGE ? stages : tags, s);
    }
    json_object_set_new(o, "stages", stages);
    json_object_set_new(o, "tags", tags);
    return o;
}

static json_t *vs_json_diag(const struct vs_policy_diag *d)
{
    json_t *o = json_object();
    json_object_set_new(o, "file", json_string(d->file));
    json_object_set_new(o, "line", d->line ? json_integer(d->line) : json_null());
    json_object_set_new(o, "section", d->section[0] ? json_string(d->section) : json_null());
    json_object_set_new(o, "key", d->key[0] ? json_string(d->key) : json_null());
    json_object_set_new(o, "message", json_string(d->message));
    json_object_set_new(o, "text", json_string(d->text));
    return o;
}

/* --- check ------------------------------------------------------------------------------------ */

/* Checks one file; appends its JSON object to `files` when given. Returns whether it passes. */
static bool vs_check_file(const char *path, bool strict, json_t *files)
{
    struct vs_names *names = vs_names_create();
    struct vs_policy_diags d = {0};
    struct vs_policy *p = names ? vs_policy_load(path, names, &d) : NULL;
    if (!names)
        vs_diag_add(&d, VS_DIAG_ERROR, path, 0, NULL, NULL, "out of memory");
    bool ok = p && !(strict && d.warnings);
    if (files) {
        json_t *o = json_object(), *errors = json_array(), *warnings = json_array();
        for (size_t i = 0; i < d.n; i++)
            json_array_append_new(d.v[i].severity == VS_DIAG_ERROR ? errors : warnings,
                                  vs_json_diag(&d.v[i]));
        json_object_set_new(o, "file", json_string(path));
        json_object_set_new(o, "valid", json_boolean(ok));
        json_object_set_new(o, "errors", errors);
        json_object_set_new(o, "warnings", warnings);
        json_object_set_new(o, "policy", p ? vs_json_policy(p, names) : json_null());
        json_array_append_new(files, o);
    } else {
        for (size_t i = 0; i < d.n; i++)
            fprintf(stderr, "%s\n", d.v[i].text);
        if (p)
            vs_print_policy(p, names, d.warnings);
        if (!ok)
            fprintf(stderr, "%s: not valid: %zu error%s, %zu warning%s%s\n", path, d.errors,
                    d.errors == 1 ? "" : "s", d.warnings, d.warnings == 1 ? "" : "s",
                    p ? " (--strict)" : "");
    }
    vs_policy_free(p);
    vs_policy_diags_free(&d);
    vs_names_destroy(names);
    return ok;
}

static int vs_policy_check(int argc, char **argv)
{
    bool json = false, strict = false;
    int first = argc;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            vs_policy_usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if (!strcmp(argv[i], "--strict")) {
            strict = true;
        } else if (!strcmp(argv[i], "--")) {
            first = i + 1;
            break;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "vramshim policy check: unknown option '%s'\n", argv[i]);
            vs_policy_usage(stderr);
            return 2;
        } else {
            first = i;
            break;
        }
    }
    if (first >= argc) {
        fprintf(stderr, "vramshim policy check: no FILE given\n");
        vs_policy_usage(stderr);
        return 2;
    }
    json_t *out = json ? json_object() : NULL, *files = json ? json_array() : NULL;
    bool all = true;
    for (int i = first; i < argc; i++) {
        all &= vs_check_file(argv[i], strict, files);
        if (!json && i + 1 < argc)
            printf("\n");
    }
    if (json) {
        json_object_set_new(out, "valid", json_boolean(all));
        json_object_set_new(out, "files", files);
        char *text = json_dumps(out, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
        printf("%s\n", text ? text : "{}");
        free(text);
        json_decref(out);
    }
    return all ? 0 : 1;
}

/* --- match ---------------------------------------------------------------------------------- */

/* One line per frame or site; for a chain of frames, then the frames that decided. */
static void vs_print_match(const struct vs_names *names, const char *what,
                           const char *const *frames, size_t n, const struct vs_policy_match *m)
{
    printf("%s: stage %s, tag %s\n", what, m->stage ? vs_names_str(names, m->stage) : "-",
           m->tag ? vs_names_str(names, m->tag) : "-");
    if (n < 2)
        return;
    if (m->stage_frame >= 0)
        printf("  stage from frame %d: %s\n", m->stage_frame, frames[m->stage_frame]);
    if (m->tag_frame >= 0)
        printf("  tag from frame %d: %s\n", m->tag_frame, frames[m->tag_frame]);
}

/* Matches the frames of every {"ev":"site"} line of a trace. Returns 0, or 1 when it cannot
 * be read. */
/* Marks in hit[] (one flag per match pattern, sections in file order) the patterns that match
 * a name of one of the frames. */
static void vs_mark_hits(const struct vs_policy *p, bool *hit, const char *const *frames,
                         size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < vs_policy_rule_count(p); i++)
        for (size_t j = 0; j < vs_policy_rule_at(p, i)->n_match; j++, k++)
            for (size_t f = 0; f < n && !hit[k]; f++)
                hit[k] = vs_policy_pattern_matches_frame(p, i, j, frames[f]);
}

/* One line per pattern that matched no frame of the trace: a policy that does nothing. */
static void vs_print_unused(const struct vs_policy *p,
                            const bool *hit, const char *path)
{
    size_t k = 0;
    for (size_t i = 0; i < vs_policy_rule_count(p); i++) {
        const struct vs_policy_rule *r = vs_policy_rule_at(p, i);
        for (size_t j = 0; j < r->n_match; j++, k++)
            if (!hit[k])
                printf("warning: [%s %s] pattern '%s' matched no frame of %s\n",
                       r->kind == VS_RULE_STAGE ? "stage" : "tag", r->name_str,
                       r->match[j], path);
    }
}

static int vs_match_trace(const struct vs_policy *p, const struct vs_names *names,
                          const char *path)
{
    char why[128], err[1024];
    int fd = vs_open_regular(path, why, sizeof why);
    FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (!f) {
        fprintf(stderr, "vramshim policy match: cannot open %s: %s\n", path,
                fd >= 0 ? strerror(errno) : why);
        if (fd >= 0)
            close(fd);
        return 1;
    }
    size_t n_patterns = 0;
    for (size_t i = 0; i < vs_policy_rule_count(p); i++)
        n_patterns += vs_policy_rule_at(p, i)->n_match;
    bool *hit = calloc(n_patterns ? n_patterns : 1, sizeof *hit);
    if (!hit) {
        fclose(f);
        fprintf(stderr, "vramshim policy match: out of memory\n");
        return 1;
    }
    /* the trace reader's bounded lines; only the path of the trace is used */
    struct vs_tracefile t = {.path = (char *)path};
    struct vs_tracefile_lines in = {0};
    size_t sites = 0;
    int got;
    char *workload = NULL; /* the header's "workload": a generated trace */
    while ((got = vs_tracefile_next_line(&t, f, &in, err, sizeof err)) > 0) {
        json_t *o = json_loads(in.buf, 0, NULL);
        const char *w = json_string_value(json_object_get(o, "workload"));
        if (w && json_object_get(o, "vramshim_trace") && !workload)
            workload = strdup(w);
        json_t *frames = json_object_get(o, "frames");
        const char *ev = json_string_value(json_object_get(o, "ev"));
        if (ev && !strcmp(ev, "site") && json_is_array(frames)) {
            size_t n = json_array_size(frames);
            const char **v = calloc(n ? n : 1, sizeof *v);
            for (size_t i = 0; v && i < n; i++)
                v[i] = json_string_value(json_array_get(frames, i));
            if (v) {
                struct vs_policy_match m;
                vs_policy_match_frames(p, v, n, &m);
                char what[64];
                snprintf(what, sizeof what, "site %lld",
                         (long long)json_integer_value(json_object_get(o, "site")));
                vs_print_match(names, what, v, n, &m);
                vs_mark_hits(p, hit, v, n);
                sites++;
            }
            free(v);
        }
        json_decref(o);
    }
    free(in.buf);
    fclose(f);
    if (got < 0) {
        fprintf(stderr, "vramshim policy match: %s\n", err);
        free(workload);
        free(hit);
        return 1;
    }
    if (!sites && workload)
        printf("%s: no call sites: it is the generated workload %s, which has none; match against "
               "a trace recorded with VRAMSHIM_TRACE\n",
               path, workload);
    else if (!sites)
        printf("%s: no call sites (it was recorded with VRAMSHIM_TRACE_STACKS=0; the default, 1, "
               "records them)\n",
               path);
    else
        vs_print_unused(p, hit, path);
    free(workload);
    free(hit);
    return 0;
}

static int vs_policy_match(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        vs_policy_usage(stdout);
        return 0;
    }
    bool trace = argc == 4 && !strcmp(argv[2], "--trace");
    if (argc < 3 || (!trace && argv[2][0] == '-')) {
        fprintf(stderr, "vramshim policy match: give a policy FILE and --trace TRACE or FRAMEs\n");
        vs_policy_usage(stderr);
        return 2;
    }
    struct vs_names *names = vs_names_create();
    struct vs_policy_diags d = {0};
    struct vs_policy *p = names ? vs_policy_load(argv[1], names, &d) : NULL;
    for (size_t i = 0; i < d.n; i++)
        fprintf(stderr, "%s\n", d.v[i].text);
    int rc = 1;
    if (p && trace) {
        rc = vs_match_trace(p, names, argv[3]);
    } else if (p) {
        for (int i = 2; i < argc; i++) {
            struct vs_policy_match m;
            const char *frame[1] = {argv[i]};
            vs_policy_match_frames(p, frame, 1, &m);
            vs_print_match(names, argv[i], frame, 1, &m);
        }
        rc = 0;
    }
    vs_policy_free(p);
    vs_policy_diags_free(&d);
    vs_names_destroy(names);
    return rc;
}

int vs_cmd_policy(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "check"))
        return vs_policy_check(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "match"))
        return vs_policy_match(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "suggest"))
        return vs_policy_suggest(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        vs_policy_usage(stdout);
        return 0;
    }
    if (argc >= 2)
        fprintf(stderr, "vramshim policy: unknown subcommand '%s'\n", argv[1]);
    vs_policy_usage(stderr);
    return 2;
}
