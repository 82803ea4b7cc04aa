/* JSON Lines text of trace records (format in trace.h). Runs on the writer thread only. */
#include <dlfcn.h>
#include <link.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "allocator/trace_internal.h"

/* A bounded text buffer; `full` turns every later append into a no-op. */
struct text {
    char *p;
    size_t n, cap;
    int full;
};

__attribute__((format(printf, 2, 3))) static void put(struct text *t, const char *fmt, ...)
{
    if (t->full)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(t->p + t->n, t->cap - t->n, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= t->cap - t->n)
        t->full = 1;
    else
        t->n += (size_t)k;
}

static void put_char(struct text *t, char c)
{
    if (t->full || t->n + 1 >= t->cap)
        t->full = 1;
    else
        t->p[t->n++] = c;
}

/* A JSON string literal; control characters are escaped, other bytes pass as they are. */
static void put_str(struct text *t, const char *s)
{
    put_char(t, '"');
    for (; s && *s && !t->full; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            put_char(t, '\\');
            put_char(t, (char)c);
        } else if (c < 0x20) {
            put(t, "\\u%04x", c);
        } else {
            put_char(t, (char)c);
        }
    }
    put_char(t, '"');
}

static const char *const ev_names[VS_EV_COUNT] = {
    [VS_EV_ALLOC] = "alloc",     [VS_EV_FREE] = "free",   [VS_EV_OOM] = "oom",
    [VS_EV_MAP] = "map",         [VS_EV_UNMAP] = "unmap", [VS_EV_CREATE] = "create",
    [VS_EV_RELEASE] = "release", [VS_EV_STAGE] = "stage",
    [VS_EV_DEMOTE] = "demote",   [VS_EV_PROMOTE] = "promote",
};

static void put_event(struct text *t, uint64_t time, uint32_t site, const struct vs_trace_event *e)
{
    put(t, "{\"t\":%" PRIu64 ",\"ev\":\"%s\",\"api\":", time, ev_names[e->ev]);
    put_str(t, e->api);
    put(t, ",\"ptr\":\"0x%" PRIx64 "\",\"size\":%" PRIu64 ",\"stream\":\"0x%" PRIx64 "\"", e->ptr,
        e->size, e->stream);
    if (e->ev == VS_EV_MAP || e->ev == VS_EV_CREATE || e->ev == VS_EV_RELEASE)
        put(t, ",\"handle\":\"0x%" PRIx64 "\"", e->handle);
    if (e->ev == VS_EV_MAP)
        put(t, ",\"offset\":%" PRIu64, e->offset);
    if (e->ev == VS_EV_STAGE) {
        put(t, ",\"action\":");
        put_str(t, e->action);
    }
    if (e->has_reserved)
        put(t, ",\"reserved\":%" PRIu64, e->reserved);
    put(t, ",\"dev\":%d,\"stage\":", e->dev);
    put_str(t, e->stage ? e->stage : "");
    put(t, ",\"tag\":");
    put_str(t, e->tag ? e->tag : "");
    put(t, ",\"site\":%" PRIu32 "}\n", site);
}

/* One frame's text, symbolised once per distinct address (writer thread only). */
struct frame_name {
    uintptr_t ip;
    char *text;
    UT_hash_handle hh;
};
static struct frame_name *frame_names;

/* The dynamic symbol table when its entry covers pc, else the object's ELF symbol table (static
 * functions, executables without exported symbols). */
int vs_trace_function_of(uintptr_t pc, char *name, size_t len, uintptr_t *off)
{
    Dl_info info;
    const ElfW(Sym) *sym = NULL;
    if (dladdr1((void *)pc, &info, (void **)&sym, RTLD_DL_SYMENT) && info.dli_sname && sym &&
        pc >= (uintptr_t)info.dli_saddr && pc < (uintptr_t)info.dli_saddr + sym->st_size) {
        snprintf(name, len, "%s", info.dli_sname);
        *off = pc - (uintptr_t)info.dli_saddr;
        return 0;
    }
    struct link_map *lm = NULL;
    if (!dladdr1((void *)pc, &info, (void **)&lm, RTLD_DL_LINKMAP) || !lm)
        return -1;
    return vs_elf_function_of(lm, pc, name, len, off);
}

/* "module+0xOFF symbol+0xOFF", or "module+0xOFF" when no symbol covers the address. */
static char *describe(uintptr_t ip)
{
    Dl_info info;
    char text[640];
    /* ip is a return address: look up ip - 1 so a call ending a function names that function. */
    if (!dladdr((void *)(ip - 1), &info) || !info.dli_fbase) {
        snprintf(text, sizeof text, "?+0x%" PRIxPTR, ip);
        return strdup(text);
    }
    const char *module =
        info.dli_fname && *info.dli_fname ? info.dli_fname : program_invocation_name;
    const char *slash = strrchr(module, '/');
    int k = snprintf(text, sizeof text, "%s+0x%" PRIxPTR, slash ? slash + 1 : module,
                     ip - (uintptr_t)info.dli_fbase);
    char name[512];
    uintptr_t off;
    if (vs_trace_function_of(ip - 1, name, sizeof name, &off) == 0)
        snprintf(text + k, sizeof text - (size_t)k, " %s+0x%" PRIxPTR, name, off + 1);
    return strdup(text);
}

static void put_frame(struct text *t, uintptr_t ip)
{
    struct frame_name *f;
    HASH_FIND(hh, frame_names, &ip, sizeof ip, f);
    if (!f && (f = calloc(1, sizeof *f))) {
        f->ip = ip;
        f->text = describe(ip);
        HASH_ADD(hh, frame_names, ip, sizeof f->ip, f);
    }
    put_str(t, f && f->text ? f->text : "?");
}

static void put_site(struct text *t, const struct vs_site *s)
{
    put(t, "{\"ev\":\"site\",\"site\":%" PRIu32 ",\"frames\":[", s->id);
    for (unsigned i = 0; i < s->nframes; i++) {
        if (i)
            put(t, ",");
        put_frame(t, s->frames[i]);
    }
    for (unsigned i = 0; i < s->npy; i++) {
        if (s->nframes || i)
            put(t, ",");
        put_str(t, s->py[i]);
    }
    put(t, "]}\n");
}

size_t vs_trace_format(const struct vs_trace_rec *rec, char *buf, size_t room)
{
    struct text t = {buf, 0, room, 0};
    switch (rec->kind) {
    case VS_REC_HEADER:
        put(&t, "%s\n", rec->u.header);
        break;
    case VS_REC_SITE:
        put_site(&t, rec->u.s);
        break;
    case VS_REC_EVENT:
        put_event(&t, rec->t, rec->site, &rec->u.ev);
        break;
    }
    return t.full ? 0 : t.n;
}

char *vs_trace_header(const struct vs_driver *drv, int pid, int ppid)
{
    size_t cap = 4096;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    struct text t = {buf, 0, cap, 0};
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct timespec mono;
    clock_gettime(CLOCK_MONOTONIC, &mono);
    uint64_t unix_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
    uint64_t mono_ns = (uint64_t)mono.tv_sec * 1000000000ull + (uint64_t)mono.tv_nsec;
    put(&t,
        "{\"vramshim_trace\":1,\"pid\":%d,\"ppid\":%d,\"clock\":\"monotonic\","
        "\"t0_unix_ns\":%" PRIu64 ",\"t0\":%" PRIu64 ",\"devices\":[",
        pid, ppid, unix_ns, mono_ns);
    int count = 0;
    if (!drv || !drv->cuDeviceGetCount || drv->cuDeviceGetCount(&count) != CUDA_SUCCESS)
        count = 0;
    for (int i = 0; i < count && i < 64; i++) {
        CUdevice dev;
        size_t total = 0;
        if (!drv->cuDeviceGet || drv->cuDeviceGet(&dev, i) != CUDA_SUCCESS ||
            !drv->cuDeviceTotalMem_v2 || drv->cuDeviceTotalMem_v2(&total, dev) != CUDA_SUCCESS)
            total = 0;
        put(&t, "%s{\"ordinal\":%d,\"total\":%zu}", i ? "," : "", i, total);
    }
    put(&t, "]}");
    if (t.full) {
        free(buf);
        return NULL;
    }
    return buf;
}
