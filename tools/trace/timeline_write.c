/* The timeline as SVG, and as an HTML page around the same SVG with a script for hover and
 * zoom (no network: everything is inline). Classes the page and the tests rely on: `series`
 * (one area per group), `stage` (a stage change), `oom`, `move demote` / `move promote`,
 * `capacity`. */
#include "tools/trace/timeline.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tools/trace/units.h"

/* Layout, in SVG user units. The plot's own coordinates run 0..VS_PW from the trace's start to
 * its end, so the page can zoom by scaling the plot group. */
enum { VS_W = 1200, VS_LEFT = 90, VS_TOP = 40, VS_PW = 1080, VS_PH = 380, VS_LEGEND_ROW = 20 };

static const char *const vs_colours[VS_TIMELINE_SERIES] = {
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};

static void vs_xml(FILE *out, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '&': fputs("&amp;", out); break;
        case '"': fputs("&quot;", out); break;
        default: fputc(*s, out);
        }
    }
}

struct vs_scale {
    double duration_ns, ymax;
};

static double vs_x(const struct vs_scale *sc, uint64_t t)
{
    return sc->duration_ns > 0 ? (double)t / sc->duration_ns * VS_PW : 0.0;
}

static double vs_y(const struct vs_scale *sc, double bytes)
{
    return VS_PH - bytes / sc->ymax * VS_PH;
}

static uint64_t vs_since0(const struct vs_timeline *tl, uint64_t t)
{
    return t > tl->a->t0 ? t - tl->a->t0 : 0;
}

static struct vs_scale vs_timeline_scale(const struct vs_timeline *tl)
{
    double top = (double)tl->a->trace->device_total;
    for (size_t k = 0; k < tl->n; k++) {
        double sum = (double)tl->host[k];
        for (size_t i = 0; i < tl->n_series; i++)
            sum += (double)tl->series[i].v[k];
        if (sum > top)
            top = sum;
    }
    return (struct vs_scale){(double)tl->a->duration, top > 0 ? top * 1.05 : 1.0};
}

/* Memory is a step function: each sample holds until the next. Draws base + add (add NULL: 0)
 * forwards from "M", or backwards continuing the path. */
static void vs_svg_steps(const struct vs_timeline *tl, const struct vs_scale *sc, FILE *out,
                         const double *base, const uint64_t *add, bool backwards)
{
    for (size_t i = 0; i < tl->n; i++) {
        size_t k = backwards ? tl->n - 1 - i : i;
        double y = vs_y(sc, base[k] + (add ? (double)add[k] : 0.0));
        double x = vs_x(sc, tl->t[k]);
        /* the step: along at this sample's level to the next sample's time (forwards), or to
         * this sample's time at the later sample's level (backwards) */
        if (!backwards) {
            fprintf(out, "%c%.2f,%.2f", i ? 'L' : 'M', x, y);
            double next = k + 1 < tl->n ? vs_x(sc, tl->t[k + 1]) : VS_PW;
            fprintf(out, "L%.2f,%.2f", next, y);
        } else {
            double next = k + 1 < tl->n ? vs_x(sc, tl->t[k + 1]) : VS_PW;
            fprintf(out, "L%.2f,%.2fL%.2f,%.2f", next, y, x, y);
        }
    }
}

/* One stacked area per series, bottom first. */
static void vs_svg_series(const struct vs_timeline *tl, const struct vs_scale *sc, FILE *out)
{
    double *base = calloc(tl->n ? tl->n : 1, sizeof *base);
    double *top = calloc(tl->n ? tl->n : 1, sizeof *top);
    if (!base || !top) {
        free(base);
        free(top);
        return;
    }
    for (size_t i = 0; i < tl->n_series; i++) {
        const struct vs_timeline_series *s = &tl->series[i];
        fprintf(out, "<path class=\"series\" fill=\"%s\" data-name=\"", vs_colours[i]);
        vs_xml(out, s->name);
        fprintf(out, "\" data-site=\"");
        vs_xml(out, s->site);
        fprintf(out, "\" d=\"");
        vs_svg_steps(tl, sc, out, base, s->v, false);
        for (size_t k = 0; k < tl->n; k++)
            top[k] = base[k] + (double)s->v[k];
        vs_svg_steps(tl, sc, out, base, NULL, true);
        memcpy(base, top, tl->n * sizeof *base);
        fprintf(out, "Z\"><title>");
        vs_xml(out, s->name);
        fprintf(out, " (");
        vs_xml(out, s->site);
        fprintf(out, ")</title></path>\n");
    }
    /* live bytes including those demoted to host memory */
    fprintf(out, "<path class=\"live\" fill=\"none\" stroke=\"#333\" stroke-dasharray=\"4 3\" "
                 "vector-effect=\"non-scaling-stroke\" d=\"");
    vs_svg_steps(tl, sc, out, base, tl->host, false);
    fprintf(out, "\"><title>live, including bytes demoted to host memory</title></path>\n");
    free(base);
    free(top);
}

static const char *vs_mark_names[] = {[VS_TF_OOM] = "out of memory", [VS_TF_DEMOTE] = "demote",
                                      [VS_TF_PROMOTE] = "promote",
                                      [VS_TF_STAGE_BEGIN] = "begin", [VS_TF_STAGE_END] = "end"};

/* Stage changes, OOMs and moves, in the plot's coordinates. Stage labels go to `labels` (drawn
 * outside the zoomed group so text keeps its shape), each with its plot x in data-x. */
static void vs_svg_marks(const struct vs_timeline *tl, const struct vs_scale *sc, FILE *out,
                         FILE *labels)
{
    const struct vs_tracefile *tr = tl->a->trace;
    size_t moves = 0;
    char size[32];
    for (size_t i = 0; i < tr->n_marks; i++) {
        const struct vs_tracefile_mark *m = &tr->marks[i];
        double x = vs_x(sc, vs_since0(tl, m->t_ns));
        vs_size_format(m->size, size, sizeof size);
        if (m->kind == VS_TF_STAGE_BEGIN || m->kind == VS_TF_STAGE_END) {
            fprintf(out, "<line class=\"stage\" x1=\"%.2f\" x2=\"%.2f\" y1=\"0\" y2=\"%d\" "
                         "stroke=\"#555\" stroke-dasharray=\"2 3\" "
                         "vector-effect=\"non-scaling-stroke\"><title>stage ", x, x, VS_PH);
            vs_xml(out, m->stage ? m->stage : "?");
            fprintf(out, " %s at %.3f s</title></line>\n", vs_mark_names[m->kind],
                    (double)vs_since0(tl, m->t_ns) / 1e9);
            if (m->kind == VS_TF_STAGE_BEGIN && m->stage) {
                fprintf(labels, "<text class=\"stage-label\" data-x=\"%.2f\" x=\"%.2f\" y=\"%d\" "
                                "font-size=\"11\" fill=\"#333\">", x, VS_LEFT + x + 3,
                        VS_TOP - 6);
                vs_xml(labels, m->stage);
                fprintf(labels, "</text>\n");
            }
        } else if (m->kind == VS_TF_OOM) {
            fprintf(out, "<line class=\"oom\" x1=\"%.2f\" x2=\"%.2f\" y1=\"0\" y2=\"%d\" "
                         "stroke=\"#d00\" stroke-width=\"2\" vector-effect=\"non-scaling-stroke\">"
                         "<title>out of memory at %.3f s (line %u): %s requested", x, x, VS_PH,
                    (double)vs_since0(tl, m->t_ns) / 1e9, m->line, size);
            if (m->stage) {
                fprintf(out, " in stage ");
                vs_xml(out, m->stage);
            }
            fprintf(out, "</title></line>\n");
            fprintf(labels, "<text class=\"oom-label\" data-x=\"%.2f\" x=\"%.2f\" y=\"%d\" "
                            "font-size=\"11\" fill=\"#d00\" text-anchor=\"end\">out of memory "
                            "(%s)</text>\n", x, VS_LEFT + x - 3, VS_TOP + 12, size);
        } else if (moves++ < VS_TIMELINE_MOVES) {
            bool demote = m->kind == VS_TF_DEMOTE;
            fprintf(out, "<line class=\"move %s\" x1=\"%.2f\" x2=\"%.2f\" y1=\"%d\" y2=\"%d\" "
                         "stroke=\"%s\" vector-effect=\"non-scaling-stroke\"><title>%s %s",
                    vs_mark_names[m->kind], x, x, demote ? VS_PH : VS_PH - 8,
                    demote ? VS_PH - 8 : VS_PH - 16, demote ? "#1f5fbf" : "#2a9d3a",
                    vs_mark_names[m->kind], size);
            if (m->api) {
                fprintf(out, " (");
                vs_xml(out, m->api);
                fprintf(out, ")");
            }
            fprintf(out, " at %.3f s</title></line>\n", (double)vs_since0(tl, m->t_ns) / 1e9);
        }
    }
}

/* A round step giving about `want` ticks over span. */
static double vs_tick_step(double span, int want)
{
    double raw = span / want, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

static void vs_svg_axes(const struct vs_timeline *tl, const struct vs_scale *sc, FILE *out)
{
    char label[32];
    double unit = 1;
    while (unit * 1024 <= sc->ymax && unit < 1099511627776.0)
        unit *= 1024;
    double step = vs_tick_step(sc->ymax / unit, 5) * unit;
    for (double v = 0; v <= sc->ymax; v += step) {
        double y = VS_TOP + vs_y(sc, v);
        fprintf(out, "<line x1=\"%d\" x2=\"%d\" y1=\"%.2f\" y2=\"%.2f\" stroke=\"#eee\"/>"
                     "<text x=\"%d\" y=\"%.2f\" font-size=\"11\" text-anchor=\"end\">%s</text>\n",
                VS_LEFT, VS_LEFT + VS_PW, y, y, VS_LEFT - 6, y + 4,
                vs_size_format((uint64_t)v, label, sizeof label));
    }
    /* time ticks; the page redraws them when zooming */
    fprintf(out, "<g id=\"xticks\">\n");
    double dur = sc->duration_ns / 1e9, tstep = vs_tick_step(dur > 0 ? dur : 1, 8);
    for (double t = 0; dur > 0 && t <= dur + tstep / 1e6; t += tstep)
        fprintf(out, "<text x=\"%.2f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">%g s"
                     "</text>\n", VS_LEFT + t / dur * VS_PW, VS_TOP + VS_PH + 16, t);
    fprintf(out, "</g>\n");
    uint64_t cap = tl->a->trace->device_total;
    if (cap) {
        double y = VS_TOP + vs_y(sc, (double)cap);
        fprintf(out, "<line class=\"capacity\" x1=\"%d\" x2=\"%d\" y1=\"%.2f\" y2=\"%.2f\" "
                     "stroke=\"#d00\" stroke-dasharray=\"8 4\"><title>device capacity %s"
                     "</title></line>\n<text x=\"%d\" y=\"%.2f\" font-size=\"11\" fill=\"#d00\">"
                     "device %s</text>\n",
                VS_LEFT, VS_LEFT + VS_PW, y, y, vs_size_format(cap, label, sizeof label),
                VS_LEFT + 4, y - 4, label);
    }
}

static void vs_svg_legend(const struct vs_timeline *tl, FILE *out)
{
    int y = VS_TOP + VS_PH + 40;
    for (size_t i = 0; i < tl->n_series; i++, y += VS_LEGEND_ROW) {
        fprintf(out, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/>"
                     "<text x=\"%d\" y=\"%d\" font-size=\"12\">", VS_LEFT, y - 10, vs_colours[i],
                VS_LEFT + 18, y);
        vs_xml(out, tl->series[i].name);
        if (tl->by != VS_BY_SITE) {
            fprintf(out, "<tspan fill=\"#666\">  ");
            vs_xml(out, tl->series[i].site);
            fprintf(out, "</tspan>");
        }
        fprintf(out, "</text>\n");
    }
    fprintf(out, "<text x=\"%d\" y=\"%d\" font-size=\"11\" fill=\"#666\">areas: bytes on the "
                 "device by %s; dashed: live including host; red: capacity and out-of-memory; "
                 "ticks: demote (blue), promote (green)%s</text>\n",
            VS_LEFT, y, vs_by_name(tl->by),
            tl->moves_left_out ? "; some moves not drawn" : "");
}

/* The SVG element itself (no XML prolog), shared by both outputs. */
static int vs_svg(const struct vs_timeline *tl, FILE *out)
{
    struct vs_scale sc = vs_timeline_scale(tl);
    int height = VS_TOP + VS_PH + 50 + (int)tl->n_series * VS_LEGEND_ROW;
    char *labels_text = NULL;
    size_t labels_len = 0;
    FILE *labels = open_memstream(&labels_text, &labels_len);
    if (!labels)
        return -1;
    fprintf(out, "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"timeline\" width=\"%d\" "
                 "height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" "
                 "data-duration-ns=\"%.0f\" data-left=\"%d\" data-top=\"%d\" data-width=\"%d\">\n",
            VS_W, height, VS_W, height, sc.duration_ns, VS_LEFT, VS_TOP, VS_PW);
    fprintf(out, "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n<text x=\"%d\" y=\"18\" "
                 "font-size=\"14\">", VS_LEFT);
    vs_xml(out, tl->a->trace->path);
    fprintf(out, ": memory by %s</text>\n", vs_by_name(tl->by));
    vs_svg_axes(tl, &sc, out);
    fprintf(out, "<clipPath id=\"plotclip\"><rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\"/>"
                 "</clipPath>\n<g clip-path=\"url(#plotclip)\"><g id=\"plot\" "
                 "transform=\"translate(%d,%d)\">\n",
            VS_LEFT, VS_TOP - 30, VS_PW, VS_PH + 30, VS_LEFT, VS_TOP);
    vs_svg_series(tl, &sc, out);
    vs_svg_marks(tl, &sc, out, labels);
    fclose(labels);
    fprintf(out, "</g></g>\n<g id=\"labels\">\n%s</g>\n", labels_text ? labels_text : "");
    free(labels_text);
    vs_svg_legend(tl, out);
    fprintf(out, "</svg>\n");
    return ferror(out) ? -1 : 0;
}

int vs_timeline_write_svg(const struct vs_timeline *tl, FILE *out)
{
    fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    return vs_svg(tl, out);
}

/* Hover shows the group, its call site and the time; dragging across the plot zooms on that
 * time range, a double click zooms out; FILE.html#t=A,B opens zoomed on A..B seconds. */
static const char vs_page_script[] =
    "(function () {\n"
    "  var svg = document.getElementById('timeline'), plot = document.getElementById('plot');\n"
    "  var tip = document.getElementById('tip'), info = document.getElementById('range');\n"
    "  var left = +svg.dataset.left, top = +svg.dataset.top, width = +svg.dataset.width;\n"
    "  var dur = +svg.dataset.durationNs / 1e9, x0 = 0, x1 = width, drag = null;\n"
    "  function toPlot(ev) {\n"
    "    var p = svg.createSVGPoint(); p.x = ev.clientX; p.y = ev.clientY;\n"
    "    var q = p.matrixTransform(svg.getScreenCTM().inverse());\n"
    "    return x0 + (q.x - left) / width * (x1 - x0);\n"
    "  }\n"
    "  function secs(x) { return x / width * dur; }\n"
    "  function draw() {\n"
    "    var k = width / (x1 - x0);\n"
    "    plot.setAttribute('transform', 'translate(' + (left - x0 * k) + ',' + top +\n"
    "                      ') scale(' + k + ',1)');\n"
    "    document.querySelectorAll('.stage-label, .oom-label').forEach(function (t) {\n"
    "      t.setAttribute('x', left + (t.dataset.x - x0) * k + (t.classList.contains('oom-label') "
    "? -3 : 3));\n"
    "      t.style.display = t.dataset.x < x0 || t.dataset.x > x1 ? 'none' : '';\n"
    "    });\n"
    "    var g = document.getElementById('xticks'), NS = 'http://www.w3.org/2000/svg';\n"
    "    var y = g.firstElementChild ? g.firstElementChild.getAttribute('y') : 0;\n"
    "    while (g.firstChild) g.removeChild(g.firstChild);\n"
    "    var a = secs(x0), b = secs(x1), raw = (b - a) / 8 || 1;\n"
    "    var p = Math.pow(10, Math.floor(Math.log10(raw))), f = raw / p;\n"
    "    var step = (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;\n"
    "    for (var t = Math.ceil(a / step) * step; t <= b + step / 1e6; t += step) {\n"
    "      var e = document.createElementNS(NS, 'text');\n"
    "      e.setAttribute('x', left + (t - a) / (b - a) * width); e.setAttribute('y', y);\n"
    "      e.setAttribute('font-size', '11'); e.setAttribute('text-anchor', 'middle');\n"
    "      e.textContent = +t.toPrecision(6) + ' s'; g.appendChild(e);\n"
    "    }\n"
    "    info.textContent = 'showing ' + a.toFixed(6) + ' s to ' + b.toFixed(6) + ' s' +\n"
    "      (x0 > 0 || x1 < width ? ' (double-click to zoom out)' : ' (drag to zoom)');\n"
    "  }\n"
    "  document.querySelectorAll('.series, .oom, .move, .stage').forEach(function (el) {\n"
    "    el.addEventListener('mousemove', function (ev) {\n"
    "      var title = el.querySelector('title').textContent;\n"
    "      tip.textContent = (el.dataset.name ? el.dataset.name + '\\n' + el.dataset.site : title) "
    "+\n"
    "        '\\nat ' + secs(toPlot(ev)).toFixed(6) + ' s';\n"
    "      tip.style.left = ev.pageX + 12 + 'px'; tip.style.top = ev.pageY + 12 + 'px';\n"
    "      tip.style.display = 'block';\n"
    "    });\n"
    "    el.addEventListener('mouseleave', function () { tip.style.display = 'none'; });\n"
    "  });\n"
    "  svg.addEventListener('mousedown', function (ev) { drag = toPlot(ev); ev.preventDefault(); "
    "});\n"
    "  svg.addEventListener('mouseup', function (ev) {\n"
    "    if (drag === null) return;\n"
    "    var a = Math.max(0, Math.min(drag, toPlot(ev))), b = Math.min(width, Math.max(drag, "
    "toPlot(ev)));\n"
    "    drag = null;\n"
    "    if (b - a > (x1 - x0) / 500) { x0 = a; x1 = b; draw(); }\n"
    "  });\n"
    "  svg.addEventListener('dblclick', function () { x0 = 0; x1 = width; draw(); });\n"
    "  window.vramshimZoom = function (a, b) { x0 = a / dur * width; x1 = b / dur * width; draw(); "
    "};\n"
    "  var m = /^#t=([0-9.e-]+),([0-9.e-]+)$/.exec(location.hash);\n"
    "  if (m && +m[2] > +m[1]) window.vramshimZoom(+m[1], +m[2]); else draw();\n"
    "  document.body.dataset.rendered = 'ok';\n"
    "})();\n";

int vs_timeline_write_html(const struct vs_timeline *tl, FILE *out)
{
    fprintf(out, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>vramshim timeline: ");
    vs_xml(out, tl->a->trace->path);
    fprintf(out, "</title>\n<style>body{font-family:sans-serif;margin:12px}"
                 "#tip{position:absolute;display:none;white-space:pre;background:#fffbe6;"
                 "border:1px solid #aaa;padding:4px 6px;font-size:12px;pointer-events:none}"
                 "#range{color:#555;font-size:12px}svg{user-select:none}</style></head>\n"
                 "<body>\n<div id=\"range\"></div>\n");
    if (vs_svg(tl, out))
        return -1;
    fprintf(out, "<div id=\"tip\"></div>\n<script>\n%s</script>\n</body></html>\n",
            vs_page_script);
    return ferror(out) ? -1 : 0;
}
