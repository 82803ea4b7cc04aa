/* `vramshim trace timeline`: the HTML page and the SVG, opened in a real headless browser
 * (Debian's chromium, installed by tools/deps.sh). The page must load without console errors,
 * draw as many series, stage lines, OOM markers and move ticks as the trace has, zoom when asked,
 * and give a screenshot. Expected counts come from the trace itself (`trace summary --json` and
 * its stage lines), never from constants. */
#include <sys/stat.h>

#include "replay_fixture.h"

TestSuite(trace_timeline, .fini = fx_cleanup);

#define CHROMIUM "chromium --headless --no-sandbox --disable-gpu --hide-scrollbars " \
                 "--window-size=1240,700 "

static size_t count(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static char *run_out(const char *cmd)
{
    char *out = fx_path("sh.out"), full[4096];
    snprintf(full, sizeof full, "%s >%s", cmd, out);
    cr_assert_eq(system(full), 0, "%s failed", cmd);
    char *text = fx_slurp(out);
    free(out);
    return text;
}

/* What the trace says should be drawn: series by stage, stage lines, OOMs, moves. */
struct expect {
    size_t series, stages, ooms, moves;
};

static struct expect expected(const char *trace)
{
    json_t *j = fx_cli_json(0, "trace summary %s --json", trace);
    struct expect e = {
        .series = json_array_size(json_object_get(j, "stages")),
        .ooms = json_array_size(json_object_get(j, "ooms")),
        .moves = (size_t)(json_integer_value(json_object_get(j, "demotions")) +
                          json_integer_value(json_object_get(j, "promotions"))),
    };
    json_decref(j);
    char *text = fx_slurp(trace);
    e.stages = count(text, "\"ev\":\"stage\"");
    free(text);
    return e;
}

static void check_drawing(const char *dom, struct expect e)
{
    cr_expect_eq(count(dom, "class=\"series\""), e.series, "series");
    cr_expect_eq(count(dom, "class=\"stage\""), e.stages, "stage lines");
    cr_expect_eq(count(dom, "class=\"oom\""), e.ooms, "oom markers");
    cr_expect_eq(count(dom, "class=\"move "), e.moves, "move ticks");
    cr_expect_eq(count(dom, "class=\"capacity\""), 1, "capacity line");
}

/* Loads url in chromium: returns the DOM after scripts ran; fails on any console message. */
static char *browse(const char *url)
{
    char cmd[4096], *log = fx_path("console.log");
    snprintf(cmd, sizeof cmd, CHROMIUM "--enable-logging=stderr --v=0 --dump-dom '%s' 2>%s", url,
             log);
    char *dom = run_out(cmd), *console = fx_slurp(log);
    cr_expect_eq(count(console, ":CONSOLE"), 0, "console messages: %s", console);
    free(console);
    free(log);
    return dom;
}

static void screenshot(const char *url, const char *png)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, CHROMIUM "--screenshot=%s '%s' 2>/dev/null", png, url);
    free(run_out(cmd));
    struct stat st;
    cr_assert_eq(stat(png, &st), 0, "no screenshot %s", png);
    cr_expect_gt(st.st_size, 10000, "screenshot %s is %lld bytes", png, (long long)st.st_size);
}

Test(trace_timeline, html_page_loads_in_chromium_with_every_series_and_marker)
{
    fx_demo_wan();
    const char *runs[] = {"vramshim", "passthrough"};
    for (int i = 0; i < 2; i++) {
        char trace[512], html[512], url[600], png[512];
        snprintf(trace, sizeof trace, "%s/demo/wan21-t2v-1.3b.%s.jsonl", fx_tmpdir(), runs[i]);
        snprintf(html, sizeof html, "%s/%s.html", fx_tmpdir(), runs[i]);
        snprintf(png, sizeof png, "%s/%s.png", fx_tmpdir(), runs[i]);
        struct fx_run r = fx_cli("trace timeline %s -o %s", trace, html);
        cr_assert_eq(r.status, 0, "%s", r.err);
        fx_run_free(&r);
        snprintf(url, sizeof url, "file://%s", html);
        char *dom = browse(url);
        cr_expect(strstr(dom, "data-rendered=\"ok\""), "the script did not finish");
        check_drawing(dom, expected(trace));
        cr_expect(strstr(dom, "data-site=\"vs_demo_alloc &lt; vs_demo_model_load &lt; "),
                  "call site for hover");
        free(dom);
        screenshot(url, png);
    }
    /* the passthrough run ends with its out-of-memory */
    char trace[512];
    snprintf(trace, sizeof trace, "%s/demo/wan21-t2v-1.3b.passthrough.jsonl", fx_tmpdir());
    cr_expect_eq(expected(trace).ooms, 1);
}

Test(trace_timeline, html_zooms_on_a_time_range)
{
    char *html = fx_path("w.html"), url[600];
    struct fx_run r = fx_cli("trace timeline %s/wan21-vae-decode-small.jsonl -o %s --by tag",
                             FX_WORKLOADS, html);
    cr_assert_eq(r.status, 0, "%s", r.err);
    fx_run_free(&r);
    snprintf(url, sizeof url, "file://%s#t=0.001,0.002", html);
    char *dom = browse(url);
    cr_expect(strstr(dom, "showing 0.001000 s to 0.002000 s"), "zoom range not shown");
    cr_expect(strstr(dom, "scale("), "plot not scaled");
    free(dom);
    free(html);
}

Test(trace_timeline, svg_is_the_static_view)
{
    fx_demo_wan();
    char trace[512], svg[512], url[600], png[512];
    snprintf(trace, sizeof trace, "%s/demo/wan21-t2v-1.3b.vramshim.jsonl", fx_tmpdir());
    snprintf(svg, sizeof svg, "%s/t.svg", fx_tmpdir());
    snprintf(png, sizeof png, "%s/t.png", fx_tmpdir());
    struct fx_run r = fx_cli("trace timeline %s -o %s", trace, svg);
    cr_assert_eq(r.status, 0, "%s", r.err);
    fx_run_free(&r);
    char *text = fx_slurp(svg);
    cr_expect(!strstr(text, "<script"), "the SVG has no script");
    check_drawing(text, expected(trace));
    free(text);
    snprintf(url, sizeof url, "file://%s", svg);
    char *dom = browse(url); /* chromium parses it as XML: a malformed file shows an error page */
    cr_expect(!strstr(dom, "error on line"), "%s", dom);
    free(dom);
    screenshot(url, png);
}

Test(trace_timeline, output_name_decides_the_format)
{
    struct fx_run r = fx_cli("trace timeline %s/dit-denoise-small.jsonl -o x.png", FX_WORKLOADS);
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "-o x.png: the name must end in .html or .svg"), "%s", r.err);
    fx_run_free(&r);
    r = fx_cli("trace timeline %s/dit-denoise-small.jsonl", FX_WORKLOADS);
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "-o FILE is required"), "%s", r.err);
    fx_run_free(&r);
}
