/* Python frames of a call site, when the process runs Python: the innermost VS_PY_FRAMES
 * frames of the calling thread, as (code object, line) for the site's identity and as
 * "py:FILE:LINE:QUALNAME" text once per new site.
 *
 * Two ways to read them, both through the interpreter's stable C API found by name in the
 * process (no Python headers, no link dependency; Python 3.9+, qualified names from 3.11):
 *  - the thread holds the GIL (ctypes.PyDLL, C extensions that keep it): it walks its own
 *    frames; the code objects stay referenced until vs_py_release.
 *  - the thread has a Python thread state but released the GIL (PyTorch operators and
 *    ctypes.CDLL calls do, before allocating): a helper thread takes the GIL and walks the
 *    waiting thread's frames (a thread that is blocked outside Python cannot change them). The
 *    allocating thread waits at most VS_PY_WAIT_MS and goes on without Python frames after
 *    that, then skips the helper for VS_PY_BACKOFF_MS.
 *
 * Why a helper rather than PyGILState_Ensure in the allocating thread: the allocation may be
 * made under a lock of the program (PyTorch's allocator mutex is held around cudaMallocAsync)
 * while another thread holds the GIL and waits for that lock (a tensor freed from Python takes
 * it). Blocking on the GIL there is a deadlock; a bounded wait is not. The helper holds no lock
 * of ours while it waits for or holds the GIL (our mutex is only taken for short copies), and
 * the allocating thread holds no Python state, so the wait always ends.
 *
 * Never touched: a process without Python, an interpreter that is not initialised or is
 * finalising, threads without a Python thread state, VRAMSHIM_TRACE_PYTHON=0 (`held`: only
 * threads that hold the GIL). The helper ("vramshim-py", all signals blocked) starts on first
 * need, keeps one Python thread state for its life, and is recreated after fork. Code pointers
 * from the helper serve only as identity (the helper drops its references). Known window: a
 * request posted just as another thread starts finalising the interpreter (a daemon thread
 * allocating while the program exits) can reach the interpreter while it tears down.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "allocator/internal.h"
#include "allocator/trace_internal.h"

#ifndef VS_PY_WAIT_MS
#define VS_PY_WAIT_MS 20 /* -D to change at build time */
#endif
#define VS_PY_BACKOFF_MS 1000
#define VS_PY_TEXT 512

static struct {
    int (*is_initialized)(void);
    int (*is_finalizing)(void); /* Py_IsFinalizing (3.13), _Py_IsFinalizing before */
    int (*gil_check)(void);
    int (*gil_ensure)(void);
    void *(*save_thread)(void);        /* PyEval_SaveThread: releases the GIL, keeps the state */
    void (*restore_thread)(void *ts);  /* PyEval_RestoreThread: takes the GIL back */
    void *(*this_tstate)(void);        /* PyGILState_GetThisThreadState, no GIL needed */
    void *(*tstate_frame)(void *ts);   /* new reference */
    void *(*get_frame)(void);          /* borrowed */
    void *(*frame_back)(void *frame);  /* new reference */
    void *(*frame_code)(void *frame);  /* new reference */
    int (*frame_line)(void *frame);
    void (*incref)(void *obj);
    void (*decref)(void *obj);
    void *(*getattr)(void *obj, const char *name); /* new reference */
    const char *(*utf8)(void *str);
    void (*err_clear)(void);
} py;

enum vs_py_reach { VS_PY_OFF, VS_PY_HELD, VS_PY_ALL };
static enum vs_py_reach py_reach;
static pthread_once_t py_once = PTHREAD_ONCE_INIT;

/* How the calling thread's last capture was made, and (helper) the frames' text. */
enum vs_py_via { VS_VIA_NONE, VS_VIA_GIL, VS_VIA_HELPER };
struct vs_py_text {
    void *code;
    int line;
    char text[VS_PY_TEXT];
};
static __thread enum vs_py_via my_via;
static __thread struct vs_py_text my_text[VS_PY_FRAMES];
static __thread unsigned my_ntext;

/* One request at a time: posted by a waiting thread, answered by the helper. */
struct vs_py_request {
    uint64_t seq;
    void *tstate;
    unsigned n;
    bool done;
    struct vs_py_text *out; /* the requester's my_text */
};
static pthread_mutex_t req_mu;
static pthread_cond_t req_posted;   /* helper waits */
static pthread_cond_t req_answered; /* requesters wait, on CLOCK_MONOTONIC */
static struct vs_py_request *req_slot; /* NULL: free */
static bool req_claimed;               /* the helper works on req_slot */
static uint64_t req_seq;
static bool helper_running, helper_failed;
static uint64_t backoff_until_ns;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void init_sync(void)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&req_mu, NULL);
    pthread_cond_init(&req_posted, NULL);
    pthread_cond_init(&req_answered, &attr);
    pthread_condattr_destroy(&attr);
}

static void after_fork_child(void)
{
    init_sync();
    req_slot = NULL;
    req_claimed = helper_running = false;
}

/* VRAMSHIM_TRACE_PYTHON: 1 (or unset), held or 0; anything else is said once and means 1. */
static void read_reach(void)
{
    const char *env = getenv("VRAMSHIM_TRACE_PYTHON");
    py_reach = VS_PY_ALL;
    if (!env || !*env || !strcmp(env, "1"))
        return;
    if (!strcmp(env, "0"))
        py_reach = VS_PY_OFF;
    else if (!strcmp(env, "held"))
        py_reach = VS_PY_HELD;
    else
        vs_log(VS_LOG_WARN, "VRAMSHIM_TRACE_PYTHON=\"%s\" is not 1, held or 0; using 1", env);
}

static void find_python(void)
{
    read_reach();
#define VS_PY_SYM(field, name) *(void **)&py.field = dlsym(RTLD_DEFAULT, name)
    VS_PY_SYM(is_initialized, "Py_IsInitialized");
    VS_PY_SYM(is_finalizing, "Py_IsFinalizing");
    if (!py.is_finalizing)
        VS_PY_SYM(is_finalizing, "_Py_IsFinalizing");
    VS_PY_SYM(gil_check, "PyGILState_Check");
    VS_PY_SYM(gil_ensure, "PyGILState_Ensure");
    VS_PY_SYM(save_thread, "PyEval_SaveThread");
    VS_PY_SYM(restore_thread, "PyEval_RestoreThread");
    VS_PY_SYM(this_tstate, "PyGILState_GetThisThreadState");
    VS_PY_SYM(tstate_frame, "PyThreadState_GetFrame");
    VS_PY_SYM(get_frame, "PyEval_GetFrame");
    VS_PY_SYM(frame_back, "PyFrame_GetBack");
    VS_PY_SYM(frame_code, "PyFrame_GetCode");
    VS_PY_SYM(frame_line, "PyFrame_GetLineNumber");
    VS_PY_SYM(incref, "Py_IncRef");
    VS_PY_SYM(decref, "Py_DecRef");
    VS_PY_SYM(getattr, "PyObject_GetAttrString");
    VS_PY_SYM(utf8, "PyUnicode_AsUTF8");
    VS_PY_SYM(err_clear, "PyErr_Clear");
#undef VS_PY_SYM
    /* PyFrame_GetBack/GetCode and PyThreadState_GetFrame exist from Python 3.9 on; older
     * interpreters get native frames only. */
    bool held = py.is_initialized && py.gil_check && py.get_frame && py.frame_back &&
                py.frame_code && py.frame_line && py.incref && py.decref && py.getattr &&
                py.utf8 && py.err_clear;
    bool helper = py.is_finalizing && py.gil_ensure && py.save_thread && py.restore_thread &&
                  py.this_tstate &&
                  py.tstate_frame;
    if (!held)
        py_reach = VS_PY_OFF;
    else if (!helper && py_reach == VS_PY_ALL)
        py_reach = VS_PY_HELD;
    if (py_reach == VS_PY_ALL) {
        init_sync();
        pthread_atfork(NULL, NULL, after_fork_child);
    }
}

/* A string attribute of a code object, or NULL (with the Python error cleared). */
static const char *code_attr(void *code, const char *name, void **ref)
{
    *ref = py.getattr(code, name);
    const char *s = *ref ? py.utf8(*ref) : NULL;
    if (!s)
        py.err_clear();
    return s;
}

/* Frames of vramshim's own Python package (the files of python/vramshim/: the auto-hook,
 * vramshim.stage) are left out of call sites, so that they name the program's functions (a stage
 * begun by the hook has the function, or its caller, as its site). Known by the file's directory
 * name; the answer per code object is cached (GIL held: the GIL guards the cache). The package's
 * code objects live as long as the process, so a cached "hidden" never outlives its code; a cached
 * "shown" whose code died can only be reused by another code of the program. */
#define VS_PY_HIDE_SLOTS 256
static struct {
    void *code;
    bool hidden;
} hide_cache[VS_PY_HIDE_SLOTS];

static bool in_vramshim_package(const char *file)
{
    const char *slash = strrchr(file, '/');
    static const char dir[] = "/vramshim";
    size_t n = sizeof dir - 1;
    return slash && (size_t)(slash - file) >= n && !memcmp(slash - n, dir, n);
}

static bool hidden_code(void *code)
{
    size_t h = ((uintptr_t)code >> 4) % VS_PY_HIDE_SLOTS;
    if (hide_cache[h].code != code) {
        void *ref;
        const char *file = code_attr(code, "co_filename", &ref);
        hide_cache[h].hidden = file && in_vramshim_package(file);
        hide_cache[h].code = code;
        if (ref)
            py.decref(ref);
    }
    return hide_cache[h].hidden;
}

/* Up to max frames from `frame` outwards (vramshim's own left out), each with a reference to
 * its code; GIL held. Consumes the reference to frame when `owned`. */
static unsigned walk(void *frame, bool owned, struct vs_py_frame *out, unsigned max)
{
    unsigned n = 0;
    if (frame && !owned)
        py.incref(frame);
    while (frame && n < max) {
        out[n].code = py.frame_code(frame);
        out[n].line = py.frame_line(frame);
        if (out[n].code && hidden_code(out[n].code))
            py.decref(out[n].code);
        else
            n++;
        void *back = py.frame_back(frame);
        py.decref(frame);
        frame = back;
    }
    if (frame)
        py.decref(frame);
    return n;
}

/* "py:FILE:LINE:QUALNAME" into text; GIL held. */
static void describe(void *code, int line, char *text, size_t size)
{
    void *file_ref, *name_ref = NULL;
    const char *file = code_attr(code, "co_filename", &file_ref);
    /* co_qualname (Class.method) from Python 3.11 on, co_name before. */
    const char *name = code_attr(code, "co_qualname", &name_ref);
    if (!name) {
        if (name_ref)
            py.decref(name_ref);
        name = code_attr(code, "co_name", &name_ref);
    }
    snprintf(text, size, "py:%s:%d:%s", file ? file : "?", line, name ? name : "?");
    if (file_ref)
        py.decref(file_ref);
    if (name_ref)
        py.decref(name_ref);
}

/* --- the helper thread ------------------------------------------------------------------------ */

/* The frames of thread state ts, described; GIL held by the helper. */
static unsigned walk_other(void *ts, struct vs_py_text *out)
{
    struct vs_py_frame f[VS_PY_FRAMES];
    unsigned n = walk(py.tstate_frame(ts), true, f, VS_PY_FRAMES);
    for (unsigned i = 0; i < n; i++) {
        out[i].code = f[i].code;
        out[i].line = f[i].line;
        describe(f[i].code, f[i].line, out[i].text, sizeof out[i].text);
        py.decref(f[i].code);
    }
    return n;
}

static bool still_wanted(struct vs_py_request *r, uint64_t seq)
{
    return req_slot == r && r->seq == seq;
}

static bool python_running(void)
{
    return py.is_initialized() && !py.is_finalizing();
}

static void *helper_main(void *arg)
{
    (void)arg;
    static struct vs_py_text answer[VS_PY_FRAMES];
    /* One thread state for the helper's life (creating one per request costs more than the
     * walk); it holds the GIL only while it answers. */
    void *self = NULL;
    pthread_mutex_lock(&req_mu);
    for (;;) {
        while (!req_slot || req_claimed)
            pthread_cond_wait(&req_posted, &req_mu);
        struct vs_py_request *r = req_slot;
        uint64_t seq = r->seq;
        void *ts = r->tstate;
        req_claimed = true;
        pthread_mutex_unlock(&req_mu);

        unsigned n = 0;
        if (python_running()) {
            if (self) {
                py.restore_thread(self);
            } else {
                py.gil_ensure();
                self = py.this_tstate();
            }
            /* Only while the requester still waits is its thread state alive: it cannot leave
             * C code (that needs the GIL, which this thread now holds). */
            pthread_mutex_lock(&req_mu);
            bool wanted = still_wanted(r, seq);
            pthread_mutex_unlock(&req_mu);
            if (wanted)
                n = walk_other(ts, answer);
            py.save_thread();
        }

        pthread_mutex_lock(&req_mu);
        if (still_wanted(r, seq)) {
            memcpy(r->out, answer, n * sizeof *answer);
            r->n = n;
            r->done = true;
            req_slot = NULL;
        }
        req_claimed = false;
        pthread_cond_broadcast(&req_answered);
    }
    return NULL;
}

static void deadline_of(struct timespec *ts, uint64_t ns)
{
    ts->tv_sec = (time_t)(ns / 1000000000u);
    ts->tv_nsec = (long)(ns % 1000000000u);
}

/* The calling thread's frames read by the helper into my_text; 0 when it did not answer in
 * time (then the helper is skipped for a while). Takes no Python lock. */
static unsigned ask_helper(void *tstate)
{
    uint64_t now = now_ns();
    pthread_mutex_lock(&req_mu);
    if (helper_failed || now < backoff_until_ns) {
        pthread_mutex_unlock(&req_mu);
        return 0;
    }
    if (!helper_running) {
        /* No signal of the program's may land in the helper. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        helper_running = pthread_create(&t, &attr, helper_main, NULL) == 0;
        helper_failed = !helper_running;
        pthread_attr_destroy(&attr);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (helper_running)
            pthread_setname_np(t, "vramshim-py");
        if (helper_failed) {
            pthread_mutex_unlock(&req_mu);
            return 0;
        }
    }
    struct timespec deadline;
    deadline_of(&deadline, now + VS_PY_WAIT_MS * 1000000ull);

    int rc = 0;
    while (req_slot && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&req_answered, &req_mu, &deadline);
    unsigned n = 0;
    if (!req_slot) {
        struct vs_py_request r = {.seq = ++req_seq, .tstate = tstate, .out = my_text};
        req_slot = &r;
        pthread_cond_signal(&req_posted);
        while (!r.done && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&req_answered, &req_mu, &deadline);
        if (r.done) {
            n = r.n;
        } else {
            req_slot = NULL;
            pthread_cond_broadcast(&req_answered);
        }
    }
    if (!n && rc == ETIMEDOUT)
        backoff_until_ns = now_ns() + VS_PY_BACKOFF_MS * 1000000ull;
    pthread_mutex_unlock(&req_mu);
    return n;
}

/* --- the call-site interface (trace_internal.h) ----------------------------------------------- */

unsigned vs_py_capture(struct vs_py_frame *out, unsigned max)
{
    pthread_once(&py_once, find_python);
    my_via = VS_VIA_NONE;
    if (py_reach == VS_PY_OFF || !py.is_initialized())
        return 0;
    if (py.gil_check() == 1) {
        my_via = VS_VIA_GIL;
        return walk(py.get_frame(), false, out, max);
    }
    void *ts;
    if (py_reach != VS_PY_ALL || !python_running() || !(ts = py.this_tstate()))
        return 0;
    unsigned n = ask_helper(ts);
    if (n > max)
        n = max;
    for (unsigned i = 0; i < n; i++) {
        out[i].code = my_text[i].code;
        out[i].line = my_text[i].line;
    }
    my_ntext = n;
    my_via = n ? VS_VIA_HELPER : VS_VIA_NONE;
    return n;
}

char *vs_py_describe(const struct vs_py_frame *f)
{
    if (my_via == VS_VIA_HELPER) {
        for (unsigned i = 0; i < my_ntext; i++)
            if (my_text[i].code == f->code && my_text[i].line == f->line)
                return strdup(my_text[i].text);
        return NULL;
    }
    char text[VS_PY_TEXT];
    describe(f->code, f->line, text, sizeof text);
    return strdup(text);
}

void vs_py_release(struct vs_py_frame *frames, unsigned n)
{
    if (my_via == VS_VIA_GIL)
        for (unsigned i = 0; i < n; i++)
            py.decref(frames[i].code);
    my_via = VS_VIA_NONE;
}
