/* Traces in memory: the allocations and frees of a vramshim JSON Lines trace (docs/tracing.md) or a
 * RAPIDS RMM CSV log, as one list in file order.
 *
 * Invariants once vs_tracefile_read() succeeded:
 * - events[] holds only allocs and frees, in file order; other event kinds were validated and
 *   counted in `skipped`; stage changes, OOMs and moves are kept as marks, call sites as sites.
 * - every free names the alloc it releases (events[i].alloc), which precedes it, and no pointer
 *   is freed twice or allocated while still live; the free carries the alloc's size.
 * - strings (api, stage, name) are interned in the trace and live as long as it does.
 */
#ifndef VS_TRACE_TRACEFILE_H
#define VS_TRACE_TRACEFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum vs_tracefile_kind { VS_TF_ALLOC, VS_TF_FREE };

enum vs_tracefile_format { VS_TF_VRAMSHIM, VS_TF_RMM };

struct vs_tracefile_event {
    enum vs_tracefile_kind kind;
    bool async;         /* stream-ordered (cuMemAllocAsync/cuMemFreeAsync family, RMM) */
    unsigned line;      /* 1-based line in the source file */
    int dev;
    uint64_t t_ns;
    uint64_t ptr;
    uint64_t size;
    uint64_t stream;    /* 0: the legacy default stream */
    size_t alloc;       /* frees: index of the matching alloc in events[] */
    const char *api;    /* e.g. "cuMemAllocAsync", or NULL */
    const char *stage;  /* NULL when none */
    const char *name;   /* tensor name or tag, NULL when none */
    const char *tag;    /* policy tag, NULL when none */
    uint32_t site;      /* call site id (0: none); its frames are in the trace's sites */
};

/* Events other than allocs and frees, kept for diagnosis (tracefile_marks.c; replay ignores
 * them). A mark comes before events[before] in file order. */
enum vs_tracefile_mark_kind { VS_TF_OOM, VS_TF_DEMOTE, VS_TF_PROMOTE, VS_TF_STAGE_BEGIN,
                              VS_TF_STAGE_END };

struct vs_tracefile_mark {
    enum vs_tracefile_mark_kind kind;
    unsigned line;
    uint32_t site;
    uint64_t t_ns;
    uint64_t size;      /* oom: requested; demote/promote: bytes moved */
    size_t before;
    size_t alloc;       /* demote/promote: the live alloc moved, SIZE_MAX when not one */
    const char *api, *stage, *tag;
};

struct vs_tracefile_sites; /* call sites by id, private to tracefile_marks.c */

struct vs_tracefile_strings; /* interning table, private to trace.c */
struct vs_tracefile_live;    /* live pointers while reading, private to trace.c */

struct vs_tracefile {
    char *path;
    enum vs_tracefile_format format;
    struct vs_tracefile_event *events;
    size_t n_events, cap_events;
    size_t n_allocs;
    size_t skipped;          /* valid events of other kinds (stage, site, map, ...) */
    uint64_t device_total;   /* header's device 0 total, 0 when unknown */
    int max_dev;             /* highest device ordinal used */
    struct vs_tracefile_strings *strings;
    struct vs_tracefile_live *live;   /* only during vs_tracefile_read() */
    struct vs_tracefile_mark *marks;  /* vramshim traces only, in file order */
    size_t n_marks, cap_marks;
    struct vs_tracefile_sites *sites;
    /* The arenas' reserved bytes, from the optional "reserved" key of shim trace events (absent
     * in pass-through, older traces and RMM logs: has_reserved false). Each device keeps its
     * last value; the peak is of their sum, peak_reserved_t_ns when it was first reached. */
    bool has_reserved;
    uint64_t peak_reserved, peak_reserved_t_ns;
};

/* Reads PATH (format detected from its first line). Returns 0, or -1 with a message of the form
 * "PATH:LINE: what is wrong" in err. On failure *trace is left empty (nothing to free). */
int vs_tracefile_read(const char *path, struct vs_tracefile *trace, char *err, size_t errlen);

void vs_tracefile_free(struct vs_tracefile *trace);

/* One line describing an event for people: "alloc 2.00 MiB on stream 0x10 (cuMemAllocAsync,
 * decoder.conv_in.out)". */
const char *vs_tracefile_describe(const struct vs_tracefile_event *ev, char *buf, size_t len);

/* --- for the format readers (trace_json.c, trace_rmm.c) ------------------------------------ */

/* Interns s (NULL stays NULL); returns NULL only when out of memory. */
const char *vs_tracefile_intern(struct vs_tracefile *trace, const char *s);

/* Appends an alloc or free after checking pointer liveness; on a free, fills size and alloc
 * from the live alloc. Returns 0, or -1 with "PATH:LINE: ..." in err. */
int vs_tracefile_add(struct vs_tracefile *trace, struct vs_tracefile_event *ev, char *err,
                     size_t errlen);

/* Writes "PATH:LINE: " and the formatted message into err; returns -1. */
int vs_tracefile_error(const struct vs_tracefile *trace, unsigned line, char *err, size_t errlen,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Longest line a trace may hold: far above any event the shim writes (a site line with a deep
 * stack is a few KiB), small enough that a file without newlines fails at once, in bounded
 * memory. */
#define VS_TRACE_LINE_MAX (1u << 20)

/* A reader's current line: buf (grown up to VS_TRACE_LINE_MAX + 1 bytes) and its 1-based number. */
struct vs_tracefile_lines {
    char *buf;
    size_t cap;
    unsigned line;
};

/* Reads the next line of fp into lines->buf (newline removed, NUL-terminated) and counts it.
 * Returns 1, 0 at end of file, or -1 with "PATH:LINE: ..." in err: a line longer than
 * VS_TRACE_LINE_MAX, a NUL byte (a binary file), a read error, out of memory. */
int vs_tracefile_next_line(const struct vs_tracefile *trace, FILE *fp,
                           struct vs_tracefile_lines *lines, char *err, size_t errlen);

/* Readers of each format: fp is positioned at the start of the file. */
int vs_tracefile_read_json(struct vs_tracefile *trace, FILE *fp, char *err, size_t errlen);
int vs_tracefile_read_rmm(struct vs_tracefile *trace, FILE *fp, char *err, size_t errlen);

/* Appends a mark (its `before` is set here). Returns 0, or -1 with "PATH:LINE: ..." in err. */
int vs_tracefile_mark_add(struct vs_tracefile *trace, struct vs_tracefile_mark *mark, char *err,
                          size_t errlen);

/* Describes call site `id` (frames interned, innermost first). A second description of the same
 * id is refused. Returns 0, or -1 with "PATH:LINE: ..." in err. */
int vs_tracefile_site_add(struct vs_tracefile *trace, unsigned line, uint32_t id,
                          const char *const *frames, size_t n, char *err, size_t errlen);

/* The frames of call site `id`, innermost first; NULL when the trace did not describe it. */
const char *const *vs_tracefile_site_frames(const struct vs_tracefile *trace, uint32_t id,
                                            size_t *n);

/* Index of the live alloc at ptr while reading, SIZE_MAX when none (for the format readers). */
size_t vs_tracefile_live_find(const struct vs_tracefile *trace, uint64_t ptr);

/* Frees the marks and sites (called by vs_tracefile_free). */
void vs_tracefile_marks_free(struct vs_tracefile *trace);

/* Line of the header of an RMM CSV log, as RMM writes it. */
#define VS_RMM_HEADER "Thread,Time,Action,Pointer,Size,Stream"

#endif
