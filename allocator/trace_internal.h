/* Shared by the trace writer, formatter and call-site table; not used outside trace_*.c. */
#ifndef VS_ALLOCATOR_TRACE_INTERNAL_H
#define VS_ALLOCATOR_TRACE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <uthash.h>

#include "allocator/trace.h"

#define VS_SITE_FRAMES 16
#define VS_PY_FRAMES 8

/* A call site: the return addresses of the program frames above the shim, innermost first,
 * then the calling thread's Python frames (innermost first) when it runs Python. Sites live
 * until exit; written_gen (guarded by the writer's queue lock) says whether the current trace
 * file already has its "site" line. */
struct vs_site {
    uint64_t hash;
    uint32_t id;
    uint32_t written_gen;
    unsigned nframes, npy;
    uintptr_t frames[VS_SITE_FRAMES];
    char *py[VS_PY_FRAMES]; /* "py:FILE:LINE:QUALNAME" */
    _Atomic uint64_t memo;  /* vs_site_memo() */
    UT_hash_handle hh;
};

/* A Python frame while it is being captured: its code object (a reference the capture holds)
 * and the line executing. */
struct vs_py_frame {
    void *code;
    int line;
};

/* Fills up to max Python frames of the calling thread, innermost first; 0 when the process runs
 * no Python or the thread does not hold the GIL. The caller releases them with vs_py_release. */
unsigned vs_py_capture(struct vs_py_frame *out, unsigned max);
/* "py:FILE:LINE:QUALNAME", malloc'ed (NULL when out of memory); GIL held, as after capture. */
char *vs_py_describe(const struct vs_py_frame *f);
void vs_py_release(struct vs_py_frame *frames, unsigned n);

enum vs_rec_kind { VS_REC_HEADER, VS_REC_SITE, VS_REC_EVENT };

struct vs_trace_rec {
    enum vs_rec_kind kind;
    uint64_t t;
    uint32_t site; /* event: site id, 0 for none */
    union {
        struct vs_trace_event ev; /* VS_REC_EVENT */
        const struct vs_site *s;  /* VS_REC_SITE */
        char *header;             /* VS_REC_HEADER, malloc'ed, freed once written */
    } u;
};

/* Call site of the code that called into the shim; NULL when none could be captured. */
struct vs_site *vs_site_capture(void);
void vs_site_fork_prepare(void);
void vs_site_fork_release(void);

/* The function containing pc (its name and pc's offset in it): dynamic symbols, else the ELF
 * symbol table (vs_elf_function_of). 0 on success, -1 when none. Thread-safe. */
int vs_trace_function_of(uintptr_t pc, char *name, size_t len, uintptr_t *off);

/* The same from the .symtab of the object lm (elf_symtab.c). Thread-safe. */
struct link_map;
int vs_elf_function_of(const struct link_map *lm, uintptr_t pc, char *name, size_t len,
                       uintptr_t *off);

/* Appends rec as one line (with '\n') to buf; returns the bytes written, or 0 when fewer than
 * `room` bytes would not do (the caller flushes and retries with an empty buffer). */
size_t vs_trace_format(const struct vs_trace_rec *rec, char *buf, size_t room);

/* The header line's text (no newline), malloc'ed; NULL when out of memory. */
char *vs_trace_header(const struct vs_driver *drv, int pid, int ppid);

#endif
