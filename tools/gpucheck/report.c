/* Writes the GPU bundle's report from run.sh's working folder: `report WORK OUTDIR`.
 *
 * WORK holds (see docs/gpu-checks.md):
 *   run.tsv          the run's header, one "key<TAB>value" per line (date, commit, gpu, ...);
 *                    keys ending in _s are numbers of seconds
 *   NN-name.meta     run.sh's record of one check: state (pending, running, done, timeout,
 *                    skipped), limit_s, seconds_s, exit, reason, log_tail
 *   NN-name.json     what the check wrote: {"name","status","figures","detail"}
 * OUTDIR gets report.json and report.txt, each written to a temporary file and renamed, so a
 * run killed at any moment leaves the previous complete pair.
 *
 * A check's status in the report: its own (pass, fail, skip) when it finished; "cut off" when it
 * ran past its limit or the run stopped during it (with whatever partial figures it had
 * written); "skip" when the run never reached it; "fail" when it wrote no valid result.
 * Exit status 0, or 2 when WORK cannot be read or OUTDIR written.
 */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Reads "key<TAB>value" lines into an object; keys ending in _s hold numbers. */
static json_t *read_tsv(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    json_t *o = json_object();
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] == '\n')
            line[--n] = '\0';
        char *tab = strchr(line, '\t');
        if (!tab)
            continue;
        *tab = '\0';
        const char *key = line, *value = tab + 1;
        size_t klen = strlen(key);
        char *end;
        long long num = strtoll(value, &end, 10);
        if (klen > 2 && !strcmp(key + klen - 2, "_s") && end != value && !*end)
            json_object_set_new(o, key, json_integer(num));
        else
            json_object_set_new(o, key, json_string(value));
    }
    free(line);
    fclose(f);
    return o;
}

static const char *str(const json_t *o, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : dflt;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The check's own result, or NULL with *why set when it is missing or malformed. */
static json_t *check_result(const char *work, const char *name, char *why, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.json", work, name);
    if (access(path, F_OK)) {
        snprintf(why, len, "wrote no result");
        return NULL;
    }
    json_error_t err;
    json_t *j = json_load_file(path, JSON_DISABLE_EOF_CHECK, &err);
    if (!j) {
            snprintf(why, len, "its result %s.json is not JSON (line %d: %s)", name, err.line,
                     err.text);
        return NULL;
    }
    const char *status = str(j, "status", "");
    if (!json_is_object(j) || (strcmp(status, "pass") && strcmp(status, "fail") &&
                               strcmp(status, "skip"))) {
        snprintf(why, len, "its result %s.json has no status pass, fail or skip", name);
        json_decref(j);
        return NULL;
    }
    return j;
}

/* One check's entry in report.json. */
static json_t *check_entry(const char *work, const char *name)
{
    char path[4096], why[512], detail[2048];
    snprintf(path, sizeof path, "%s/%s.meta", work, name);
    json_t *meta = read_tsv(path);
    if (!meta)
        meta = json_object();
    const char *state = str(meta, "state", "pending");
    json_t *res = check_result(work, name, why, sizeof why);
    const char *status, *own = res ? str(res, "detail", "") : "";
    json_t *figures = res && json_is_object(json_object_get(res, "figures"))
                          ? json_incref(json_object_get(res, "figures"))
                          : json_object();
    if (!strcmp(state, "pending")) {
        status = "skip";
        snprintf(detail, sizeof detail, "not reached: the run stopped before this check");
    } else if (!strcmp(state, "skipped")) {
        status = "skip";
        snprintf(detail, sizeof detail, "%s", str(meta, "reason", "skipped by run.sh"));
    } else if (!strcmp(state, "running") || !strcmp(state, "timeout")) {
        status = "cut off";
        snprintf(detail, sizeof detail, "%s%s%s",
                 !strcmp(state, "running") ? "the run stopped during this check"
                                           : "stopped at its time limit (its share of the budget)",
                 res ? "; partial result: " : "", own);
    } else if (res) {
        status = str(res, "status", "fail");
        snprintf(detail, sizeof detail, "%s", own);
    } else {
        status = "fail";
        snprintf(detail, sizeof detail, "%s (exit %s); log ends: %s", why, str(meta, "exit", "?"),
                 str(meta, "log_tail", ""));
    }
    json_t *e = json_pack("{s:s, s:s, s:s, s:o}", "name", name, "status", status, "detail",
                          detail, "figures", figures);
    json_t *v;
    if ((v = json_object_get(meta, "seconds_s")))
        json_object_set(e, "seconds", v);
    if ((v = json_object_get(meta, "limit_s")))
        json_object_set(e, "limit_s", v);
    json_decref(res);
    json_decref(meta);
    return e;
}

/* Figures are measurements: six significant digits say all they know. */
#define VS_REPORT_JSON (JSON_REAL_PRECISION(6) | JSON_PRESERVE_ORDER)

/* Every leaf of v as "path: value" lines, so nested figures appear whole in report.txt. */
static void print_leaves(FILE *f, const char *path, const json_t *v)
{
    if (json_is_object(v) && json_object_size(v)) {
        const char *k;
        const json_t *x;
        json_object_foreach((json_t *)v, k, x) {
            char sub[1024];
            snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", k);
            print_leaves(f, sub, x);
        }
        return;
    }
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | VS_REPORT_JSON);
    fprintf(f, "           %s: %s\n", path, s ? s : "?");
    free(s);
}

static int write_atomically(const char *dir, const char *name, json_t *report, int text)
{
    char tmp[4096], final[4096];
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
    snprintf(final, sizeof final, "%s/%s", dir, name);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "report: cannot write %s: %s\n", tmp, strerror(errno));
        return -1;
    }
    if (!text) {
        json_dumpf(report, f, JSON_INDENT(1) | VS_REPORT_JSON);
        fputc('\n', f);
    } else {
        const json_t *h = json_object_get(report, "run");
        fprintf(f, "vramshim GPU report %s: %s\n", str(h, "date", "?"), str(h, "state", "?"));
        const char *k;
        const json_t *x;
        json_object_foreach((json_t *)h, k, x) {
            char *s = json_is_string(x) ? NULL : json_dumps(x, JSON_ENCODE_ANY);
            fprintf(f, "  %s: %s\n", k, s ? s : json_string_value(x));
            free(s);
        }
        const json_t *c;
        size_t i;
        json_array_foreach(json_object_get(report, "checks"), i, c) {
            char took[64] = "";
            if (json_object_get(c, "seconds"))
                snprintf(took, sizeof took, " (%lld s of %lld s)",
                         json_integer_value(json_object_get(c, "seconds")),
                         json_integer_value(json_object_get(c, "limit_s")));
            fprintf(f, "%-8s %s%s: %s\n", str(c, "status", "?"), str(c, "name", "?"), took,
                    str(c, "detail", ""));
            const json_t *fig = json_object_get(c, "figures");
            if (json_object_size(fig))
                print_leaves(f, "", fig);
        }
        const json_t *sum = json_object_get(report, "summary");
        fprintf(f, "summary: %lld pass, %lld fail, %lld skip, %lld cut off\n",
                json_integer_value(json_object_get(sum, "pass")),
                json_integer_value(json_object_get(sum, "fail")),
                json_integer_value(json_object_get(sum, "skip")),
                json_integer_value(json_object_get(sum, "cut off")));
    }
    if (fclose(f) || rename(tmp, final)) {
        fprintf(stderr, "report: cannot write %s: %s\n", final, strerror(errno));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: report WORK OUTDIR   (see tools/gpucheck/report.c)\n");
        return 2;
    }
    const char *work = argv[1], *outdir = argv[2];
    char path[4096];
    snprintf(path, sizeof path, "%s/run.tsv", work);
    json_t *run = read_tsv(path);
    DIR *d = opendir(work);
    if (!run || !d) {
        fprintf(stderr, "report: cannot read %s: %s\n", run ? work : path, strerror(errno));
        return 2;
    }
    char *names[256];
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < sizeof names / sizeof names[0]) {
        size_t len = strlen(de->d_name);
        if (len > 5 && !strcmp(de->d_name + len - 5, ".meta"))
            names[n++] = strndup(de->d_name, len - 5);
    }
    closedir(d);
    qsort(names, n, sizeof names[0], cmp_names);
    json_t *checks = json_array(), *summary = json_pack("{s:i, s:i, s:i, s:i}", "pass", 0,
                                                          "fail", 0, "skip", 0, "cut off", 0);
    for (size_t i = 0; i < n; i++) {
        json_t *e = check_entry(work, names[i]);
        const char *st = str(e, "status", "fail");
        json_object_set_new(summary, st,
                            json_integer(json_integer_value(json_object_get(summary, st)) + 1));
        json_array_append_new(checks, e);
        free(names[i]);
    }
    json_t *report = json_pack("{s:i, s:o, s:o, s:o}", "vramshim_gpu_report", 1, "run", run,
                               "checks", checks, "summary", summary);
    int rc = write_atomically(outdir, "report.json", report, 0) ||
             write_atomically(outdir, "report.txt", report, 1);
    json_decref(report);
    return rc ? 2 : 0;
}
